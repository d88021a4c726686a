"""The grid of a sweep: its axes, parsing of a TOML file, checking and defaults."""

import importlib.util
import numbers
import re
import sys
from pathlib import Path

from ...gen.config import ALGORITHMS, DSP_PRIMITIVES, FILTER_TRANSFORMS
from ...gen.pe import PE_KINDS, is_modular, modular_kinds
from ...gen.points import PRESETS
from ...gen.rns import (FORWARD_REDUCTIONS, MODULI_PRESETS, RNS_METHODS, ModuliSet,
                        auto_moduli_width)

__all__ = ["GRID_KEYS", "LAYER_KEYS", "RUN_KEYS", "RNS_KEYS", "PE_CHOICES", "layers_available",
           "normalize_grid", "load_grid"]

#: Grid axes: key -> (help, default). Values are lists; a scalar means a one-element list.
GRID_KEYS = {
    "engine": ("engine kinds: tile, layer", None),
    "m": ("output tile sizes", [2]),
    "r": ("filter sizes", [3]),
    "presets": ("interpolation point presets", ["default"]),
    "widths": ("data widths; D sets data and weight width, DxW sets them apart", [8]),
    "pe": ("processing-element kinds: " + ", ".join(PE_KINDS) + " ("
           + ", ".join(modular_kinds()) + ": residue number system engines, Winograd only)",
           ["mul"]),
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

#: Grid axes of RNS engines (modular PE kinds) only: other PE kinds take their first value and
#: are not repeated.
RNS_KEYS = ("moduli", "redundant_moduli", "rns_method", "rns_forward_reduction")

#: PE kinds of the ``pe`` axis: the kinds of :data:`winogen.gen.pe.PE_KINDS` (at import).
PE_CHOICES = tuple(sorted(PE_KINDS))

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
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        value = int(value)      # plain digits only: int() would read "1_0" as 10
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
        g[key] = list(dict.fromkeys(_AXES[key](key, v) for v in values))
    if "engine" in given:
        engines = [_choice_value("engine", v, ("tile", "layer"))
                   for v in _as_list("engine", given["engine"])]
    else:
        engines = ["layer"] if ("pin" in given or "pout" in given) else ["tile"]
    g["engine"] = list(dict.fromkeys(engines))
    for key in RNS_KEYS:
        if key in given and not any(is_modular(pe) for pe in g["pe"]):
            kinds = " or pe ".join(modular_kinds())
            raise ValueError(f"{key} applies to pe {kinds} only, not to pe {g['pe']!r}")
    if "layer" in g["engine"] and not layers_available():
        raise ValueError("engine must be tile in this installation (winogen.hw.layer is not "
                         "available), not 'layer'")
    if g["engine"] == ["tile"] and ("pin" in given or "pout" in given):
        raise ValueError(f"pin and pout apply to layer engines only, not to engine "
                         f"{g['engine']!r}")
    g["layer"] = _layer_table(given.get("layer", {}))
    g["run"] = _run_table(given.get("run", {}))
    return g


def _choices(choices):
    return lambda key, value: _choice_value(key, value, choices)


# How each axis reads one value.
_AXES = {
    "m": lambda key, v: _int_value(key, v, 1), "r": lambda key, v: _int_value(key, v, 1),
    "pin": lambda key, v: _int_value(key, v, 1), "pout": lambda key, v: _int_value(key, v, 1),
    "pipeline": lambda key, v: _int_value(key, v, 0, 8),
    "widths": lambda key, v: _width_value(v),
    "presets": _choices(sorted(PRESETS)),
    "pe": lambda key, v: _choice_value(key, v, tuple(sorted(PE_KINDS))),   # registered now
    "moduli": lambda key, v: _moduli_value(v),
    "redundant_moduli": lambda key, v: _int_value(key, v, 0, 1),
    "rns_method": _choices(RNS_METHODS), "rns_forward_reduction": _choices(FORWARD_REDUCTIONS),
    "algorithms": _choices(ALGORITHMS), "filter_transforms": _choices(FILTER_TRANSFORMS),
    "dsp": _choices(DSP_PRIMITIVES),
}


def _layer_table(table):
    """The ``layer`` table: the layer engines' maxima and requantization."""
    layer = dict(LAYER_KEYS)
    if not hasattr(table, "items"):
        raise ValueError(f"layer must be a table of {', '.join(LAYER_KEYS)}, not {table!r}")
    for key, value in table.items():
        if key not in LAYER_KEYS:
            raise ValueError(f"layer key must be one of {', '.join(LAYER_KEYS)}, not {key!r}")
        if key == "rounding":
            layer[key] = _choice_value(key, value, ("half_even", "half_up"))
        elif key == "output_width":
            layer[key] = None if value in (None, "none", "") else _int_value(key, value, 2, 32)
        else:
            layer[key] = _int_value(key, value, 1, 4096)
    return layer


def _run_table(table):
    """The ``run`` table: the workload of the cycle model."""
    run = {}
    if not hasattr(table, "items"):
        raise ValueError(f"run must be a table of {', '.join(RUN_KEYS)}, not {table!r}")
    for key, value in table.items():
        if key not in RUN_KEYS:
            raise ValueError(f"run key must be one of {', '.join(RUN_KEYS)}, not {key!r}")
        if key == "padding" and value in ("same", "valid"):
            run[key] = value
        else:
            run[key] = _int_value(key, value, 0 if key == "padding" else 1)
    return run


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
