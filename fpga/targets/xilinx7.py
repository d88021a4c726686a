"""Xilinx 7-series: ``synth_xilinx -family xc7`` resource counts only.

No place and route and no Fmax: the counts are compared with the data-sheet capacity of
the chosen part, a pre-place estimate.
"""

import re

from .base import Device, Target

__all__ = ["Xilinx7"]

# Data-sheet capacities (DS180 Artix-7/Kintex-7, DS190 Zynq-7000): slice LUTs, slice FFs,
# DSP48E1 slices, 36 Kb block RAMs.
_PARTS = {
    "xc7a35t": dict(lut=20800, ff=41600, dsp=90, bram36=50),
    "xc7a50t": dict(lut=32600, ff=65200, dsp=120, bram36=75),
    "xc7a75t": dict(lut=47200, ff=94400, dsp=180, bram36=105),
    "xc7a100t": dict(lut=63400, ff=126800, dsp=240, bram36=135),
    "xc7a200t": dict(lut=134600, ff=269200, dsp=740, bram36=365),
    "xc7z010": dict(lut=17600, ff=35200, dsp=80, bram36=60),
    "xc7z020": dict(lut=53200, ff=106400, dsp=220, bram36=140),
    "xc7k325t": dict(lut=203800, ff=407600, dsp=840, bram36=445),
}
# Accepts ordering codes too: xc7a35tcpg236-1 -> xc7a35t.
_RE = re.compile(r"(?P<dev>xc7[akz]\d+t?)(?P<rest>[a-z]{2,3}\d+)?(?:-\d+[a-z]?)?",
                 re.IGNORECASE)


class Xilinx7(Target):
    name = "xilinx7"
    title = "Yosys synth_xilinx -family xc7 resource counts only: a pre-place estimate, no Fmax"
    default_device = "xc7a35t"
    device_names = tuple(_PARTS)
    device_hint = "; ordering codes like xc7a35tcpg236-1 also accepted"
    estimate = "pre-place (Yosys only)"
    cells = {"lut": ("LUT1..LUT6", {r"LUT[1-6]": 1}),
             "ff": ("FDRE/FDSE/FDCE/FDPE", {r"FD[RSCP]E(_1)?": 1}),
             "dsp": ("DSP48E1", {"DSP48E1": 1}),
             # In 18 Kb units so that mixed RAMB18E1/RAMB36E1 use adds up.
             "bram": ("RAMB18E1+2*RAMB36E1 (18 Kb units)", {"RAMB18E1": 1, "RAMB36E1": 2}),
             "carry": ("CARRY4", {"CARRY4": 1})}

    def parse_device(self, text):
        """``xc7a35t``, ``xc7a100t``, ``xc7z020``, ordering codes like ``xc7a35tcpg236-1``."""
        m = _RE.fullmatch(text)
        if m is None or m["dev"].lower() not in _PARTS:
            raise self.device_error(text)
        name = m["dev"].lower()
        cap = _PARTS[name]
        return Device("xilinx7", name, package=m["rest"].lower() if m["rest"] else None,
                      capacity={"lut": cap["lut"], "ff": cap["ff"], "dsp": cap["dsp"],
                                "bram": cap["bram36"] * 2})

    # Yosys's ABC9 reintegration can fail an assertion here too (an AdderNet Winograd layer
    # engine: ``count_id(wire->name) == 0``); synth_xilinx -dff maps it.
    dff_retry = True

    def synth_commands(self, name, work_rel, device, nodsp, abc9_dff):
        # -noiopad/-noclkbuf: count the block as it would sit inside a larger design.
        return [f"synth_xilinx -family xc7 -top {name} -flatten -noiopad -noclkbuf"
                f"{' -nodsp' if nodsp else ''}{' -dff' if abc9_dff else ''}",
                self.stat_command(work_rel)]
