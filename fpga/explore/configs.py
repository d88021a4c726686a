"""The configurations of a grid: one engine per valid combination of its axes."""

import itertools
import json

from ...gen.params import config_from_params
from ...gen.pe import is_modular
from ...gen.rns import MODULI_PRESETS, auto_moduli_width
from .grid import RNS_KEYS

__all__ = ["configurations"]

class _Point:
    """One configuration of the sweep: the config object and the grid values it came from."""

    def __init__(self, kind, config, values):
        self.kind = kind
        self.config = config
        self.values = values
        self.tile = config if kind == "tile" else config.tile

    @property
    def rns(self):
        """Whether the engine is an RNS engine (its PE kind is modular)."""
        return self.tile.pe_kind.modular

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
    text = f"{values['algorithm']} F({values['m']},{values['r']})"
    if values["algorithm"] == "winograd" and values.get("preset", "default") != "default":
        text += f":{values['preset']}"
    text += f" {d}x{w}-bit"
    if values["pe"] != "mul":
        text += f" {values['pe']}"
    if is_modular(values["pe"]):
        method = values["rns_method"]
        text += f" {_rns_tag(values, None if method == 'auto' else method)}"
    if values["algorithm"] == "winograd" and values.get("filter_transform") == "online":
        text += " online filter"
    text += f", pipeline {values['pipeline']}"
    if values.get("dsp", "inferred") != "inferred":
        text += f", dsp {values['dsp']}"
    if kind == "layer":
        text += f", P {values['pin']}x{values['pout']}"
    return text


def configurations(grid, invalid=None):
    """The distinct configurations of a normalized grid, in grid order.

    Each combination of the axes becomes flat parameters for
    :func:`~winogen.gen.params.config_from_params`, the same function that checks
    ``winogen generate``, so a combination is valid here exactly when ``generate``
    accepts it. Axes that do not apply to a combination are not crossed with it: the
    ``pin``/``pout`` axes beyond their first value for tiles, the RNS axes
    (:data:`RNS_KEYS`) beyond their first value for other PE kinds, the points and the
    filter transform for the direct algorithm (normalized, so duplicates collapse).

    Parameters
    ----------
    grid : dict
        From :func:`normalize_grid`.
    invalid : list, optional
        With a list, every combination the configuration rejects (F(4,3) with ``pe``
        ``adder``, ``dsp`` ``ecp5`` with a PE that does not multiply, ``pe`` ``rns`` with
        the direct algorithm, moduli that do not cover the result range, ...) is left
        out and recorded there as ``{"kind", "configuration", "error"}`` (its
        description and the one-line message). Without it, the first one raises.

    Returns
    -------
    points : list of _Point
    duplicates : int
        Combinations dropped because they give the same hardware as an earlier one
        (method ``auto`` is the method it picks).

    Raises
    ------
    ValueError
        Naming the combination: without ``invalid``, at the first invalid one; with
        it, when no combination is valid (with the count of the others).
    """
    points, seen, dup, rejected = [], set(), 0, []
    axes = ("engine", "algorithms", "m", "r", "presets", "widths", "pe", "filter_transforms",
            "pipeline", "dsp", "pin", "pout") + RNS_KEYS
    for combo in itertools.product(*(grid[a] for a in axes)):
        v = dict(zip(("engine", "algorithm", "m", "r", "preset", "widths", "pe",
                      "filter_transform", "pipeline", "dsp", "pin", "pout") + RNS_KEYS, combo))
        kind = v["engine"]
        if kind == "tile" and (v["pin"], v["pout"]) != (grid["pin"][0], grid["pout"][0]):
            continue  # parallelism axes do not apply to tiles
        if not is_modular(v["pe"]):
            if any(v[k] != grid[k][0] for k in RNS_KEYS):
                continue  # nor the RNS axes to other PE kinds
            for k in RNS_KEYS:
                v[k] = None
        if v["algorithm"] == "direct":
            # Not used by the direct engine: normalize so duplicates collapse.
            v["preset"], v["filter_transform"] = "default", "offline"
        if is_modular(v["pe"]):
            v["show_method"] = len(grid["rns_method"]) > 1   # in the label
        try:
            config = _config(v, kind, grid["layer"])
        except ValueError as exc:
            message = " ".join(str(exc).split())
            if invalid is None:
                raise ValueError(f"configuration {_describe(v, kind)} is invalid: "
                                 f"{message}") from None
            item = {"kind": kind, "configuration": _describe(v, kind), "error": message}
            if item not in rejected:    # combinations an axis that does not apply repeats
                rejected.append(item)
            continue
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
    if invalid is not None:
        invalid.extend(rejected)
    return points, dup


def _params(v, kind, layer):
    """The flat parameters of one combination (only the options that apply to it)."""
    params = {"m": v["m"], "r": v["r"], "data_width": v["widths"][0],
              "weight_width": v["widths"][1], "pe": v["pe"], "pipeline": v["pipeline"]}
    if kind == "tile":
        params["engine"] = "tile"
        params["algorithm"] = v["algorithm"]
    else:
        params["engine"] = "conv" if v["algorithm"] == "winograd" else "direct"
        params.update(max_height=layer["max_height"], max_width=layer["max_width"],
                      max_cin=layer["max_cin"], max_cout=layer["max_cout"],
                      pin=v["pin"], pout=v["pout"])
        if layer.get("output_width") is not None:
            params.update(output_width=layer["output_width"], rounding=layer["rounding"])
    if v["algorithm"] != "direct":
        params["preset"] = v["preset"]
        # The no-op values stay unset, so an engine without the option takes them.
        if v["filter_transform"] != "offline":
            params["filter_transform"] = v["filter_transform"]
    if v["dsp"] != "inferred":
        params["dsp"] = v["dsp"]
    if is_modular(v["pe"]):
        spec = _moduli_spec(v["moduli"])
        params["moduli_preset" if isinstance(spec, str) else "moduli"] = \
            spec if isinstance(spec, str) else ",".join(map(str, spec))
        params.update(redundant_moduli=v["redundant_moduli"], rns_method=v["rns_method"],
                      rns_forward_reduction=v["rns_forward_reduction"])
    return params


def _config(v, kind, layer):
    params = _params(v, kind, layer)
    config = config_from_params(params)
    tile = config if kind == "tile" else config.tile
    if tile.pe_kind.modular and tile.method != tile.method_used:
        # auto: the same hardware as the method it picks
        config = config_from_params({**params, "rns_method": tile.method_used})
    return config


def _count(n, noun):
    """``1 combination``, ``2 combinations``: the plural by an ``s`` on the last word."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _moduli_spec(text):
    """The ``moduli`` argument of :class:`~winogen.gen.rns.RNSTileConfig` for a grid value."""
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
