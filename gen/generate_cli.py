"""``winogen generate``: parameters in, Verilog and a manifest out.

The hardware modules are imported only when a generate command runs, so the
rest of the CLI (and all of :mod:`winogen.gen`) works without Amaranth.
"""

import argparse
import importlib
import sys

from .cli import int_argument
from .config import DSP_PRIMITIVES, TileConfig, pipeline_stages
from .pe import PE_KINDS
from .points import PRESETS
from .rns import MODULI_PRESETS as _RNS_PRESETS

__all__ = ["add_generate_parser", "add_simulate_parser", "tile_config_from_args",
           "add_tile_arguments", "add_layer_arguments", "layer_config_from_args",
           "parse_random_layer"]


def _width(name):
    return int_argument(name, "an integer from 2 to 16")


def _stages(name):
    return int_argument(name, "an integer from 0 to 8")


def _int(name):
    return int_argument(name)


def _adder_matrices(text):
    """``--adder-matrices``: a set name, or a JSON file of user matrices (shapes checked)."""
    if text in ("standard", "balanced"):
        return text
    if not text.endswith(".json"):
        raise argparse.ArgumentTypeError(f"adder_matrices must be standard, balanced or a "
                                         f"FILE.json, not {text!r}")
    from .addernet import load_adder_matrices
    try:
        return load_adder_matrices(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_tile_arguments(p, *, algorithm=True):
    """Arguments shared by every command that builds a :class:`TileConfig`.

    ``algorithm=False`` leaves out ``--algorithm`` (the layer commands name it).
    """
    alg = p.add_argument_group("algorithm")
    alg.add_argument("--m", type=_int("m"), required=True, help="outputs per tile and dimension")
    alg.add_argument("--r", type=_int("r"), required=True, help="filter size per dimension")
    pts = alg.add_mutually_exclusive_group()
    pts.add_argument("--points", metavar="LIST",
                     help="interpolation points, e.g. 0,-1,1,1/2,-3,inf")
    pts.add_argument("--preset", choices=sorted(PRESETS), default="default",
                     help="named point set (default: %(default)s)")
    if algorithm:
        alg.add_argument("--algorithm", choices=("winograd", "direct"), default="winograd",
                         help="Winograd (n² PEs) or the direct baseline (m²r² PEs) with the "
                              "same streams (default: %(default)s)")
    alg.add_argument("--pe", choices=sorted(PE_KINDS) + ["rns"], default="mul",
                     help="processing-element kind; rns: residue number system engine with "
                          "modular multipliers (default: %(default)s)")
    alg.add_argument("--adder-matrices", type=_adder_matrices, default="standard",
                     metavar="{standard,balanced,FILE.json}",
                     help="Winograd transforms of --pe adder engines: the F(2,3) sets standard "
                          "or balanced, or a JSON file {\"AT\": …, \"G\": …, \"BT\": …} of "
                          "integers and \"p/q\" strings (default: %(default)s)")
    num = p.add_argument_group("arithmetic")
    num.add_argument("--data-width", type=_width("data_width"), default=8,
                     help="signed activation width, 2..16 (default: %(default)s)")
    num.add_argument("--weight-width", type=_width("weight_width"), default=8,
                     help="signed weight width, 2..16 (default: %(default)s)")
    num.add_argument("--filter-transform", choices=("online", "offline"), default="offline",
                     help="transform the filter on chip (online) or load U = G g Gᵀ computed "
                          "by winogen (offline; storage grows by (n/r)²) (default: %(default)s)")
    num.add_argument("--keep-scale", choices=("yes", "no"), default="no",
                     help="keep the integer scale D² in the output instead of removing it "
                          "exactly in hardware (default: %(default)s)")
    num.add_argument("--descale", choices=("auto", "shift"), default="auto",
                     help="remove the scale with a shift and an exact constant division "
                          "(auto), or with shifts only (default: %(default)s)")
    num.add_argument("--fold", choices=("A", "G"), default="A",
                     help="matrix that absorbs the integer scale numerators (default: %(default)s)")
    rns = p.add_argument_group("residue number system (--pe rns)")
    mod = rns.add_mutually_exclusive_group()
    mod.add_argument("--moduli", metavar="LIST", default=None,
                     help="pairwise coprime moduli, e.g. 251,241,239,223, or auto[-BITS]; the "
                          "last --redundant-moduli of them are redundant (default: 8bit-primes-4)")
    mod.add_argument("--moduli-preset", metavar="NAME", default=None,
                     help="named moduli set: " + ", ".join(_RNS_PRESETS) + "; or auto (auto-BITS): "
                          "the fewest, cheapest-to-reduce 8-bit (BITS-bit) primes that cover the "
                          "engine's exact result range, plus the redundant ones")
    rns.add_argument("--redundant-moduli", type=int_argument("redundant_moduli", "0 or 1"),
                     default=None, help="1: check every output tile with a redundant modulus and "
                                        "raise the error flag on a fault (default: 0)")
    rns.add_argument("--rns-method", choices=("auto", "scaled", "inverse"), default=None,
                     help="rational entries: integer-scaled matrices with the scale divided out "
                          "after reverse conversion, or modular inverses (default: auto, "
                          "inverse when every denominator is invertible)")
    rns.add_argument("--channels", type=_int("channels"), default=None,
                     help="input channels accumulated mod each modulus per output tile "
                          "(default: 1)")
    rns.add_argument("--rns-input-transform", choices=("binary", "residue"), default=None,
                     help="input transform shared in binary, then forward converted, or per "
                          "modulus in residues (default: binary)")
    rns.add_argument("--rns-forward-reduction", choices=("full", "partial"), default=None,
                     help="binary input transform: reduce V to canonical residues (b x b-bit "
                          "multipliers), or only fold it into an 18-bit DSP operand and reduce "
                          "the product (smaller forward converters, larger PE reductions) "
                          "(default: full)")
    rns.add_argument("--convert-stages", type=_stages("convert_stages"), default=None,
                     metavar="N", help="register stages of the mixed-radix converter, at most "
                          "one per level: 2k for k moduli (default: one per level; --pipeline "
                          "0 or 1 sets it too)")
    pipe = p.add_argument_group("pipelining")
    pipe.add_argument("--pipeline", type=_stages("pipeline"), default=None, metavar="N",
                      help="register stages per transform; the PE gets min(N, 2), the "
                           "descale min(N, 1); --pe rns: the PE and the converter get N when "
                           "N < 2 and keep their defaults from 2 on (default: 2)")
    for block, default in (("input", 2), ("pe", "2; --pe rns: 3, with the product register"),
                           ("output", 2), ("filter", 2), ("descale", 1)):
        pipe.add_argument(f"--{block}-stages", type=_stages(f"{block}_stages"), default=None,
                          metavar="N", help=f"register stages of the {block} block "
                                            f"(overrides --pipeline; default: {default})")
    pipe.add_argument("--dsp", choices=DSP_PRIMITIVES, default="inferred",
                      help="multipliers as plain '*' for any flow (inferred), or ECP5 MULT18X18D "
                           "instances whose internal registers hold the PE stages, for Fmax on "
                           "ECP5 (ecp5; writes a simulation model too) (default: %(default)s)")
    p.add_argument("--name", help="Verilog module name (default: derived from the parameters)")


_RNS_OPTIONS = ("moduli", "moduli_preset", "redundant_moduli", "rns_method", "channels",
                "rns_input_transform", "rns_forward_reduction", "convert_stages")


def _rns_config_from_args(args, stages):
    from .rns import RNSTileConfig, auto_moduli_width
    defaults = {"algorithm": "winograd", "filter_transform": "offline", "keep_scale": "no",
                "descale": "auto", "fold": "A", "adder_matrices": "standard"}
    for option, default in defaults.items():
        value = getattr(args, option, default)
        if value != default:
            raise ValueError(f"--{option.replace('_', '-')} does not apply to --pe rns, "
                             f"not {value!r}")
    if args.filter_stages is not None:
        raise ValueError(f"--filter-stages does not apply to --pe rns (offline residue weights), "
                         f"not {args.filter_stages!r}")
    if args.convert_stages is not None:
        stages["convert_stages"] = args.convert_stages
    moduli = "8bit-primes-4"
    if args.moduli is not None and auto_moduli_width(args.moduli) is not None:
        moduli = args.moduli
    elif args.moduli is not None:
        try:
            moduli = tuple(int(x) for x in args.moduli.split(","))
        except ValueError:
            raise ValueError(f"moduli must be a comma-separated list of integers, "
                             f"not {args.moduli!r}") from None
    elif args.moduli_preset is not None:
        moduli = args.moduli_preset
    optional = {"redundant_moduli": args.redundant_moduli, "method": args.rns_method,
                "channels": args.channels, "input_transform": args.rns_input_transform,
                "forward_reduction": args.rns_forward_reduction}
    return RNSTileConfig(
        m=args.m, r=args.r, data_width=args.data_width, weight_width=args.weight_width,
        moduli=moduli, points=args.points, preset=args.preset, name=args.name,
        **{k: v for k, v in optional.items() if v is not None}, **stages)


def tile_config_from_args(args):
    """The :class:`TileConfig` (or, for ``--pe rns``, :class:`~winogen.gen.rns.RNSTileConfig`)."""
    if args.pe != "rns":
        for option in _RNS_OPTIONS:
            if getattr(args, option, None) is not None:
                raise ValueError(f"--{option.replace('_', '-')} applies to --pe rns only, "
                                 f"not --pe {args.pe}")
    stages = {} if args.pipeline is None else pipeline_stages(args.pipeline, args.pe)
    for block in ("input", "pe", "output", "filter", "descale"):
        value = getattr(args, f"{block}_stages")
        if value is not None:
            stages[f"{block}_stages"] = value
    if args.pe == "rns":
        return _rns_config_from_args(args, stages)
    return TileConfig(
        m=args.m, r=args.r, data_width=args.data_width, weight_width=args.weight_width,
        points=args.points, preset=args.preset, algorithm=args.algorithm, pe=args.pe,
        filter_transform=args.filter_transform, keep_scale=args.keep_scale == "yes",
        descale=args.descale, fold=args.fold, name=args.name,
        adder_matrices=args.adder_matrices, dsp=args.dsp, **stages)


def _cmd_generate_tile(args):
    config = tile_config_from_args(args)   # validate before importing the hardware
    if args.pe == "rns":
        rns = importlib.import_module("winogen.hw.rns")
        vpath, jpath, manifest = rns.generate_rns_tile(config, args.output)
        print(f"{manifest['name']}: {manifest['algorithm']['name']} RNS, moduli "
              f"{list(config.moduli)} ({config.redundant_moduli} redundant), method "
              f"{config.method_used}, {config.multipliers} modular multipliers "
              f"({config.multiplier_description}), {config.channels} channel(s), latency {manifest['latency']}, "
              f"output {config.output_width} bits")
        print(f"wrote {vpath}")
        print(f"wrote {jpath}")
        _write_bundle(args, manifest)
        return 0
    generate = importlib.import_module("winogen.hw.generate")
    vpath, jpath, manifest = generate.generate_tile(config, args.output)
    print(f"{manifest['name']}: {manifest['algorithm']['name']} {config.algorithm}, "
          f"{manifest['processing_elements']} PEs ({config.pe}), latency {manifest['latency']}, "
          f"II {manifest['initiation_interval']}, output {config.output_width} bits")
    print(f"wrote {vpath}")
    print(f"wrote {jpath}")
    _write_bundle(args, manifest)
    return 0


def _add_output_arguments(p):
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder (created if missing)")
    hand = p.add_argument_group("hand-off bundle")
    hand.add_argument("--bundle", action="store_true",
                      help="also write the hand-off bundle: <name>.f, FuseSoC .core, "
                           ".sdc/.xdc/.lpf constraints, Vivado Tcl, README.md")
    hand.add_argument("--freq", type=float, default=100.0, metavar="MHZ",
                      help="clock of the bundle's constraints (default: %(default)s)")
    hand.add_argument("--part", default=None,
                      help="Vivado part of the bundle (default: xc7a35tcpg236-1)")


def _write_bundle(args, manifest):
    if args.bundle:
        bundle = importlib.import_module("winogen.fpga.bundle")
        for path in bundle.write_bundle(args.output, manifest, freq_mhz=args.freq, part=args.part):
            print(f"wrote {path}")


def add_layer_arguments(p):
    """Arguments of the layer engines (on top of :func:`add_tile_arguments`)."""
    lay = p.add_argument_group("layer engine")
    lay.add_argument("--max-width", type=_int("max_width"), default=32,
                     help="largest feature-map width W (default: %(default)s)")
    lay.add_argument("--max-height", type=_int("max_height"), default=32,
                     help="largest feature-map height H (default: %(default)s)")
    lay.add_argument("--max-cin", type=_int("max_cin"), default=16,
                     help="largest input-channel count (default: %(default)s)")
    lay.add_argument("--max-cout", type=_int("max_cout"), default=16,
                     help="largest output-channel count (default: %(default)s)")
    lay.add_argument("--pin", type=_int("p_in"), default=1,
                     help="input channels processed per cycle (default: %(default)s)")
    lay.add_argument("--pout", type=_int("p_out"), default=1,
                     help="output channels processed per cycle (default: %(default)s)")
    lay.add_argument("--output-width", type=int_argument("output_width", "an integer from 2 to 32"),
                     default=None, help="build the requantization stage: shift, round, saturate "
                                        "to this width (default: full-precision outputs)")
    lay.add_argument("--rounding", choices=("half_even", "half_up"), default="half_even",
                     help="rounding of the requantization shift (default: %(default)s)")


def layer_config_from_args(args, algorithm):
    from .layer import LayerConfig
    if args.pe == "rns":
        if algorithm != "winograd":
            raise ValueError(f"--pe rns needs a Winograd engine (generate conv), "
                             f"not generate {args.engine}")
        if args.channels is not None:
            raise ValueError(f"--channels does not apply to a layer engine (its RNS moduli "
                             f"cover --max-cin channels), not {args.channels!r}")
    tile_args = argparse.Namespace(**{**vars(args), "algorithm": algorithm, "name": None,
                                      "channels": args.max_cin if args.pe == "rns" else None})
    tile = tile_config_from_args(tile_args)
    return LayerConfig(tile=tile, max_height=args.max_height, max_width=args.max_width,
                       max_cin=args.max_cin, max_cout=args.max_cout, p_in=args.pin,
                       p_out=args.pout, output_width=args.output_width,
                       rounding=args.rounding, name=args.name)


def _layer_summary(cfg, manifest):
    return (f"{manifest['name']}: {cfg.algorithm} layer engine F({cfg.m},{cfg.r}), "
            f"P_in {cfg.p_in} x P_out {cfg.p_out}, {cfg.multipliers} PEs ({cfg.tile.pe}), "
            f"max {cfg.max_cin}x{cfg.max_height}x{cfg.max_width} -> {cfg.max_cout}, "
            f"outputs {cfg.result_width} bits")


def _cmd_generate_layer(args):
    config = layer_config_from_args(args, "winograd" if args.engine == "conv" else "direct")
    layer = importlib.import_module("winogen.hw.layer")
    vpath, jpath, manifest = layer.generate_layer(config, args.output)
    print(_layer_summary(config, manifest))
    print(f"wrote {vpath}")
    print(f"wrote {jpath}")
    _write_bundle(args, manifest)
    return 0


def parse_random_layer(text):
    """``"CINxHxW:COUT"`` → (cin, height, width, cout)."""
    import re
    match = re.fullmatch(r"\s*(\d+)x(\d+)x(\d+):(\d+)\s*", text or "")
    if not match:
        raise ValueError(f"random_layer must look like CINxHxW:COUT (e.g. 3x16x16:8), not {text!r}")
    return tuple(int(v) for v in match.groups())


def _cmd_simulate_layer(args):
    import numpy as np
    from .layer import LayerRun, layer_golden
    config = layer_config_from_args(args, "winograd" if args.engine == "conv" else "direct")
    cin, height, width, cout = parse_random_layer(args.random_layer)
    padding = config.r // 2 if args.padding is None else args.padding
    run = LayerRun(height, width, cin, cout, padding, args.shift).check(config)
    if not 0.0 <= args.stall < 1.0:
        raise ValueError(f"stall must be a probability in [0, 1), not {args.stall!r}")
    rng = np.random.default_rng(args.seed)
    t = config.tile
    x = rng.integers(t.data_interval.lo, t.data_interval.hi + 1, (cin, height, width))
    w = rng.integers(t.weight_interval.lo, t.weight_interval.hi + 1, (cout, cin, t.r, t.r))
    driver = importlib.import_module("winogen.sim.driver")
    print(f"simulating {cin}x{height}x{width} -> {cout} (padding {padding}) on "
          f"{config.module_name} under Verilator (first build takes a minute) ...",
          file=sys.stderr, flush=True)
    y, cycles = driver.run_layer(config, x, w, padding=padding, shift=args.shift,
                                 stall=args.stall, seed=args.seed)
    expected = layer_golden(config, run, x, w)
    ok = y.shape == expected.shape and bool(np.all(y == expected))
    ideal = cycles.get("compute_ideal")
    utilization = ideal / cycles["compute"] if ideal and cycles.get("compute") else None
    report = {"engine": config.module_name, "layer": [cin, height, width, cout],
              "padding": padding, "pass": ok, "cycles": cycles, "utilization": utilization,
              "mismatches": int(np.sum(y != expected)) if y.shape == expected.shape else None}
    if args.json:
        import json
        print(json.dumps(report, indent=2))
    else:
        print(f"{'PASS' if ok else 'FAIL'}: output {y.shape} "
              f"{'bit-exact against' if ok else 'differs from'} the golden model")
        print("cycles: " + ", ".join(f"{k} {v}" for k, v in cycles.items()))
        if utilization is not None:
            print(f"compute utilization {100 * utilization:.1f}% of ideal "
                  f"(tiles x channel passes = {ideal})")
    return 0 if ok else 1


def add_simulate_parser(sub):
    p = sub.add_parser("simulate", help="run a layer through an emitted engine under Verilator",
                       description="Generate a layer engine, build it with Verilator (cached), "
                                   "stream a random layer through it and compare with the golden "
                                   "model. Prints pass/fail and the measured cycles.")
    kinds = p.add_subparsers(dest="engine", metavar="ENGINE", parser_class=type(p))
    kinds.required = True
    for engine, text in (("conv", "Winograd layer engine"), ("direct", "direct-convolution layer engine")):
        e = kinds.add_parser(engine, help=text, description=f"Simulate a {text}.")
        add_tile_arguments(e, algorithm=False)
        add_layer_arguments(e)
        e.add_argument("--random-layer", required=True, metavar="CINxHxW:COUT",
                       help="random layer to run, e.g. 3x16x16:8")
        e.add_argument("--padding", type=int_argument("padding", "0 or r // 2"), default=None,
                       help="run-time padding (default: r // 2, 'same')")
        e.add_argument("--shift", type=int_argument("shift", "a non-negative integer"), default=0,
                       help="requantization shift (with --output-width)")
        e.add_argument("--stall", type=float, default=0.0,
                       help="probability of random stalls on every stream (default: 0)")
        e.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
        e.add_argument("--json", action="store_true", help="print a JSON report")
        e.set_defaults(func=_cmd_simulate_layer)
    return p


def add_generate_parser(sub):
    p = sub.add_parser("generate", help="generate Verilog and a manifest",
                       description="Generate an engine as Verilog plus a JSON manifest.")
    kinds = p.add_subparsers(dest="engine", metavar="ENGINE", parser_class=type(p))
    kinds.required = True
    t = kinds.add_parser("tile", help="one m×m output tile per clock (Winograd or direct)",
                         description="A tile engine: n×n input tiles in, m×m output tiles out, "
                                     "one per clock, with valid/ready streams.")
    add_tile_arguments(t)
    _add_output_arguments(t)
    t.set_defaults(func=_cmd_generate_tile)
    for engine, text in (("conv", "Winograd layer engine (WinogradConv)"),
                         ("direct", "direct-convolution layer engine (DirectConv), same streams")):
        e = kinds.add_parser(engine, help=text,
                             description=f"A {text}: whole feature maps in, output maps out, "
                                         f"P_in x P_out channel parallelism, BRAM buffers.")
        add_tile_arguments(e, algorithm=False)
        add_layer_arguments(e)
        _add_output_arguments(e)
        e.set_defaults(func=_cmd_generate_layer)
    add_simulate_parser(sub)
    return p
