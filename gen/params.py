"""Flat user-level parameters → an engine configuration, checked in one pass.

:func:`config_from_params` is the one place where the parameters a user typed
(``winogen generate``, ``winogen simulate``, one point of ``winogen explore``)
become a :class:`~winogen.gen.config.TileConfig`,
:class:`~winogen.gen.rns.RNSTileConfig` or :class:`~winogen.gen.layer.LayerConfig`.
The parameter names are the CLI's option names with ``_`` for ``-``
(``data_width`` is ``--data-width``); a missing or ``None`` parameter takes its
default, so a parameter that is present was given by the user. A parameter that
does not apply to the chosen engine is refused, never ignored, and every message
names the option as typed (``--max-cin``, not ``max_cin``).

Pure Python: no Amaranth.
"""

import re

from .config import TileConfig, pipeline_stages
from .pe import is_modular, modular_kinds, pe_kind

__all__ = ["ENGINES", "PARAMS", "VERILOG_KEYWORDS", "config_from_params", "flag",
           "flag_message"]

#: Engines: a tile engine, or the Winograd (``conv``) and direct layer engines.
ENGINES = ("tile", "conv", "direct")

_TILE = ("m", "r", "points", "preset", "transforms", "algorithm", "pe", "adder_matrices",
         "data_width",
         "weight_width", "filter_transform", "keep_scale", "descale", "fold", "pipeline",
         "input_stages", "pe_stages", "output_stages", "filter_stages", "descale_stages",
         "dsp", "wino_width", "wino_scales", "name")
_RNS = ("moduli", "moduli_preset", "redundant_moduli", "rns_method", "channels",
        "rns_input_transform", "rns_forward_reduction", "convert_stages")
_LAYER = ("max_width", "max_height", "max_cin", "max_cout", "pin", "pout", "pixels_per_beat",
          "filters_per_beat", "weight_buffers", "filter_store", "bram", "output_width", "rounding",
          "harden", "weights", "sparse_lanes")
#: What a weights file (``weights``) fixes or removes: the channel counts and parallelism,
#: and the weight stream and memory.
_FIXED_BY_WEIGHTS = ("max_cin", "max_cout", "pin", "pout", "filters_per_beat",
                     "weight_buffers", "filter_store", "harden")

#: Every accepted parameter name.
PARAMS = ("engine",) + _TILE + _RNS + _LAYER

#: Options of the Winograd transforms: nothing to set on a direct engine.
_WINOGRAD_ONLY = ("points", "preset", "transforms", "filter_transform", "keep_scale", "descale",
                  "fold", "adder_matrices", "filter_stages", "descale_stages", "wino_width",
                  "wino_scales")

#: Options of binary Winograd engines that RNS engines (modular PE kinds) do not have.
_NOT_RNS = ("filter_transform", "keep_scale", "descale", "fold", "adder_matrices",
            "transforms", "filter_stages", "dsp", "wino_width", "wino_scales")

#: Longest module name: it names the output files (255 bytes on most file systems).
MAX_NAME = 200

#: Verilog-2005 and SystemVerilog keywords: a module cannot take one of these names.
VERILOG_KEYWORDS = frozenset("""
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config
deassign default defparam design disable edge else end endcase endconfig endfunction
endgenerate endmodule endprimitive endspecify endtable endtask event for force forever fork
function generate genvar highz0 highz1 if ifnone incdir include initial inout input instance
integer join large liblist library localparam macromodule medium module nand negedge nmos nor
noshowcancelled not notif0 notif1 or output parameter pmos posedge primitive pull0 pull1
pulldown pullup pulsestyle_onevent pulsestyle_ondetect rcmos real realtime reg release repeat
rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small specify specparam
strong0 strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1 triand
trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor xnor xor
alias always_comb always_ff always_latch assert assume before bind bins binsof bit break byte
chandle class clocking const constraint context continue cover covergroup coverpoint cross
dist do endclass endclocking endgroup endinterface endpackage endprogram endproperty
endsequence enum expect export extends extern final first_match foreach forkjoin iff
ignore_bins illegal_bins import inside int interface intersect join_any join_none local
logic longint matches modport new null package packed priority program property protected
pure rand randc randcase randsequence ref return sequence shortint shortreal solve static
string struct super tagged this throughout timeprecision timeunit type typedef union unique
var virtual void wait_order wildcard with within
""".split())

# Configuration field -> the parameter (option) a user sets it with, where they differ.
_FIELD_PARAMS = {"p_in": "pin", "p_out": "pout", "fixed_weights": "weights", "method": "rns_method", "point": "points",
                 "input_transform": "rns_input_transform",
                 "forward_reduction": "rns_forward_reduction", "freq_mhz": "freq",
                 "given_transforms": "transforms"}


# Messages that name what an option sets in words rather than by its field name.
_PHRASES = (("adder matri", "--adder-matrices"), ("transforms file", "--transforms"),
            ("scale file", "--wino-scales"),
            ("moduli", "--moduli"))


def flag(name):
    """The command-line option of a parameter or configuration field: ``--max-cin``."""
    return "--" + _FIELD_PARAMS.get(name, name).replace("_", "-")


_FIELDS = sorted(set(PARAMS) - {"engine"} | set(_FIELD_PARAMS), key=len, reverse=True)
_ASSIGNED = re.compile(r"(?<![\w-])(?:tile\.)?(" + "|".join(_FIELDS)
                       + r")=(?:'([^']*)'|(True|False|None|[\w.-]+))")
_UNDERSCORED = re.compile(r"(?<![\w-])(" + "|".join(f for f in _FIELDS if "_" in f)
                          + r")(?![\w-])")
_LEADING = re.compile(r"^(" + "|".join(_FIELDS) + r")(?= )")


def flag_message(message, context=""):
    """A configuration's message rewritten in option names: ``p_in`` → ``--pin``.

    ``dsp='ecp5'`` becomes ``--dsp ecp5``; a field name that opens the message or
    holds an underscore becomes its option. A message that still names no option is
    prefixed with ``context`` (e.g. ``"--m 14 --r 5"``), the options it is about.
    """
    text = " ".join(str(message).split())
    if text.startswith(("harden", "--harden")):
        # Its block-class names (input_transform, ...) are not option names.
        return "--harden" + text[len("harden") + 2 * text.startswith("--"):]
    text = _ASSIGNED.sub(lambda mo: f"{flag(mo.group(1))} "
                         f"{mo.group(2) if mo.group(2) is not None else mo.group(3)}", text)
    text = _UNDERSCORED.sub(lambda mo: flag(mo.group(1)), text)
    text = _LEADING.sub(lambda mo: flag(mo.group(1)), text)
    named = re.search(r"(?<![\w-])--[a-z]", text)
    for phrase, option in _PHRASES:
        if phrase in text and not named:
            text = f"{option}: {text}"
            break
    if context and not re.search(r"(?<![\w-])--[a-z]", text):
        text = f"{context}: {text}"
    return text


class _Params:
    """The given parameters; remembers which were given, for 'does not apply'."""

    def __init__(self, params):
        if not hasattr(params, "items"):
            raise ValueError(f"params must be a mapping of parameter names to values, "
                             f"not {params!r}")
        unknown = [k for k in params if k not in PARAMS]
        if unknown:
            raise ValueError(f"parameter must be one of {', '.join(PARAMS)}, "
                             f"not {unknown[0]!r}")
        self.given = {k: v for k, v in params.items() if v is not None}

    def get(self, name, default=None):
        return self.given.get(name, default)

    def only(self, names, where, given):
        for name in names:
            if name in self.given:
                raise ValueError(f"{flag(name)} applies to {where} only, not {given}")

    def refuse(self, names, why):
        for name in names:
            if name in self.given:
                raise ValueError(f"{flag(name)} does not apply to {why}, "
                                 f"not {_shown(self.given[name])}")


def _shown(value):
    text = repr(value)
    length = len(value) if isinstance(value, str) else len(text)
    return text if len(text) <= 100 else text[:90] + f"…' ({length} characters)"


def config_from_params(params):
    """The configuration of an engine from flat user-level parameters.

    Parameters
    ----------
    params : mapping
        Names of :data:`PARAMS` to values as a user gives them (``keep_scale``:
        ``"yes"``/``"no"`` or a bool; ``moduli``: ``"251,241,239"``, ``"auto-10"``, a
        preset name or a tuple; ``adder_matrices``: ``"standard"``, ``"balanced"``, a
        ``FILE.json`` or ``(AT, G, BT)``; ``transforms``: a ``FILE.json`` or ``(AT, G,
        BT)``). ``engine`` is ``"tile"`` (the default),
        ``"conv"`` or ``"direct"``. ``None`` or a missing name takes the default.

    Returns
    -------
    TileConfig, RNSTileConfig or LayerConfig

    Raises
    ------
    ValueError
        One line naming the option: a bad value, an option that does not apply to
        the engine, or a combination the configuration refuses.
    """
    p = _Params(params)
    engine = p.get("engine", "tile")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {_shown(engine)}")
    try:
        if engine == "tile":
            p.refuse(_LAYER, "tile engines (layer engines only)")
            return _tile(p, p.get("algorithm", "winograd"))
        return _layer(p, engine)
    except ValueError as exc:   # a TypeError is a caller's bug, not a value to report
        raise ValueError(flag_message(exc)) from None


def _tile(p, algorithm, channels=None, named=True):
    """The tile configuration; ``channels`` and ``named=False`` for a layer's tile (its
    channels come from ``max_cin``, its name is the layer's)."""
    pe = p.get("pe", "mul")
    if algorithm == "direct":
        p.refuse(_WINOGRAD_ONLY, "direct engines (Winograd transforms only)")
    if not is_modular(pe):    # the RNS options: modular PE kinds only
        p.only(_RNS, " or ".join(f"--pe {name}" for name in modular_kinds()), f"--pe {pe}")
    if pe != "adder":
        p.only(("adder_matrices",), "--pe adder", f"--pe {pe}")
    else:
        p.only(("transforms",), "--pe mul", f"--pe {pe}")
    if p.get("transforms") is not None:
        for other in ("points", "preset"):
            if p.get(other) is not None:
                raise ValueError(f"--transforms replaces the interpolation points: give "
                                 f"--transforms or {flag(other)}, not both")
    name = p.get("name") if named else None
    if name is not None:
        _check_name(name)
    stages = {} if p.get("pipeline") is None else pipeline_stages(p.get("pipeline"), pe)
    for block in ("input", "pe", "output", "filter", "descale", "convert"):
        if p.get(f"{block}_stages") is not None:
            stages[f"{block}_stages"] = p.get(f"{block}_stages")
    common = dict(m=p.get("m"), r=p.get("r"), data_width=p.get("data_width", 8),
                  weight_width=p.get("weight_width", 8), name=name)
    if algorithm != "direct":
        common.update(points=p.get("points"), preset=p.get("preset", "default"))
    if is_modular(pe):
        return _rns_tile(p, pe_kind(pe), common, stages, channels)
    stages.pop("convert_stages", None)
    keep = p.get("keep_scale", "no")
    if keep not in ("yes", "no", True, False):
        raise ValueError(f"--keep-scale must be one of yes, no, not {_shown(keep)}")
    optional = {"filter_transform": p.get("filter_transform"), "descale": p.get("descale"),
                "fold": p.get("fold"), "dsp": p.get("dsp"),
                "wino_width": p.get("wino_width"),
                "wino_scales": _wino_scales(p.get("wino_scales"), p.get("m"), p.get("r")),
                "adder_matrices": _adder_matrices(p.get("adder_matrices")),
                "given_transforms": _transforms(p.get("transforms"), p.get("m"), p.get("r"))}
    return TileConfig(**common, algorithm=algorithm, pe=pe, keep_scale=keep in ("yes", True),
                      **{k: v for k, v in optional.items() if v is not None}, **stages)


def _check_name(name):
    if isinstance(name, str) and name in VERILOG_KEYWORDS:
        raise ValueError(f"--name must be a Verilog identifier that is not a keyword, "
                         f"not {name!r}")
    if isinstance(name, str) and not 1 <= len(name) <= MAX_NAME:
        raise ValueError(f"--name must be a Verilog identifier of 1 to {MAX_NAME} characters "
                         f"(it names the output files), not {_shown(name)}")


def _adder_matrices(value):
    if isinstance(value, str) and value not in ("standard", "balanced"):
        if not value.endswith(".json"):
            raise ValueError(f"--adder-matrices must be standard, balanced or a FILE.json, "
                             f"not {_shown(value)}")
        from .addernet import load_adder_matrices
        return load_adder_matrices(value)
    return value


def _transforms(value, m, r):
    """``--transforms FILE.json`` (or matrices ``(AT, G, BT)`` given in the API)."""
    if isinstance(value, str):
        if not value.endswith(".json"):
            raise ValueError(f"--transforms must be a FILE.json, not {_shown(value)}")
        from .toomcook import load_transforms
        return load_transforms(value, m, r).given
    return value


def _wino_scales(value, m, r):
    """``--wino-scales global|tapwise|FILE.json`` (a tap-wise scale file: given shifts)."""
    if isinstance(value, str) and value not in ("global", "tapwise"):
        if not value.endswith(".json"):
            raise ValueError(f"--wino-scales must be global, tapwise or a FILE.json, "
                             f"not {_shown(value)}")
        from .winoquant import load_scale_file
        sizes_known = all(isinstance(v, int) and not isinstance(v, bool) for v in (m, r))
        return load_scale_file(value, m + r - 1 if sizes_known else None)
    return value


def _rns_tile(p, kind, common, stages, channels):
    """The tile of the modular PE kind ``kind``: an RNS engine, its ``kind.config_class``."""
    from .rns import MODULI_PRESETS, auto_moduli_width
    if p.get("algorithm", "winograd") != "winograd":
        raise ValueError(f"--pe {kind.name} needs a Winograd engine, not --algorithm "
                         f"{p.get('algorithm')}")
    p.refuse(_NOT_RNS, f"--pe {kind.name}")
    if "moduli" in p.given and "moduli_preset" in p.given:
        raise ValueError("--moduli and --moduli-preset exclude each other; give one")
    preset = p.get("moduli_preset")
    if preset is not None and preset not in MODULI_PRESETS and auto_moduli_width(preset) is None:
        raise ValueError(f"--moduli-preset must be one of {', '.join(MODULI_PRESETS)}, auto or "
                         f"auto-BITS, not {_shown(preset)}")
    moduli = p.get("moduli_preset", p.get("moduli", "8bit-primes-4"))
    if isinstance(moduli, str) and "moduli" in p.given and auto_moduli_width(moduli) is None:
        if not re.fullmatch(r" *[0-9]+ *(, *[0-9]+ *)*", moduli):
            raise ValueError(f"--moduli must be a comma-separated list of integers, "
                             f"not {_shown(moduli)}")
        moduli = tuple(int(x) for x in moduli.split(","))
    if channels is not None:
        if "channels" in p.given:
            raise ValueError(f"--channels does not apply to a layer engine (its RNS moduli "
                             f"cover --max-cin channels), not {p.get('channels')!r}")
    else:
        channels = p.get("channels")
    optional = {"redundant_moduli": p.get("redundant_moduli"), "method": p.get("rns_method"),
                "channels": channels, "input_transform": p.get("rns_input_transform"),
                "forward_reduction": p.get("rns_forward_reduction")}
    return kind.config_class(**common, moduli=moduli,
                         **{k: v for k, v in optional.items() if v is not None}, **stages)


def _layer(p, engine):
    from .layer import LayerConfig
    algorithm = "winograd" if engine == "conv" else "direct"
    if "algorithm" in p.given:
        raise ValueError(f"--algorithm does not apply to layer engines (generate conv is "
                         f"Winograd, generate direct is direct), not {_shown(p.get('algorithm'))}")
    modular = is_modular(p.get("pe"))
    if modular and engine != "conv":
        raise ValueError(f"--pe {p.get('pe')} needs a Winograd engine (generate conv), not "
                         f"generate {engine}")
    if "rounding" in p.given and "output_width" not in p.given:
        raise ValueError(f"--rounding applies with --output-width only (the requantization "
                         f"stage), not {_shown(p.get('rounding'))} alone")
    fixed = None
    if "sparse_lanes" in p.given and engine != "conv":
        raise ValueError(f"--sparse-lanes applies to generate conv only (zero-skipping "
                         f"Winograd engines), not generate {engine}")
    if "weights" in p.given and "sparse_lanes" in p.given:
        raise ValueError("--sparse-lanes does not apply with --weights (a weight-specialized "
                         "engine skips its zero weights at generation time), not both")
    if "weights" in p.given:
        if engine != "conv":
            raise ValueError(f"--weights applies to generate conv only (weight-specialized "
                             f"Winograd engines), not generate {engine}")
        p.refuse(_FIXED_BY_WEIGHTS, "weight-specialized engines (--weights: the file fixes "
                                    "C_in = max_cin = P_in and C_out = max_cout = P_out, and "
                                    "there is no weight stream)")
        fixed = p.get("weights")
        if not hasattr(fixed, "core_weights"):           # a path, not a FixedWeights
            from .fixedweights import load_weights_file
            fixed = load_weights_file(fixed)
        p.given.update(max_cin=fixed.cin, max_cout=fixed.cout, pin=fixed.cin, pout=fixed.cout)
    max_cin = p.get("max_cin", 16)
    tile = _tile(p, algorithm, channels=max_cin if modular else None, named=False)
    if p.get("name") is not None:
        _check_name(p.get("name"))
    optional = {"max_height": p.get("max_height"), "max_width": p.get("max_width"),
                "max_cin": p.get("max_cin"), "max_cout": p.get("max_cout"),
                "p_in": p.get("pin"), "p_out": p.get("pout"),
                "pixels_per_beat": p.get("pixels_per_beat"),
                "filters_per_beat": p.get("filters_per_beat"),
                "weight_buffers": p.get("weight_buffers"),
                "filter_store": p.get("filter_store"),
                "bram": p.get("bram"),
                "output_width": p.get("output_width"), "rounding": p.get("rounding"),
                "harden": p.get("harden"),
                "name": p.get("name"), "fixed_weights": fixed,
                "sparse_lanes": p.get("sparse_lanes")}
    return LayerConfig(tile=tile, **{k: v for k, v in optional.items() if v is not None})
