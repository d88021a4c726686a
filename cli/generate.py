"""``winogen generate``: parameters in, Verilog and a manifest out.

Options default to ``None`` here, so :func:`~winogen.gen.params.config_from_params`
sees which ones the user typed (it refuses those that do not apply) and applies
the real defaults. Everything is checked before the hardware modules are
imported and before any file is written.
"""

import importlib
import sys
import threading
import time

from winogen.gen.config import DSP_PRIMITIVES
from winogen.gen.params import PARAMS
from winogen.gen.pe import PE_KINDS, modular_kinds
from winogen.gen.points import PRESETS

from ._base import UserError, check_output_folder, integer, number, text_value, user_errors

__all__ = ["add_parser", "add_tile_arguments", "add_layer_arguments", "config_from_args",
           "Progress"]

#: The moduli presets, as :data:`winogen.gen.rns.MODULI_PRESETS` (named for the help).
_RNS_PRESETS = ("8bit-primes-4", "8bit-4", "8bit-8", "8bit-primes-8", "special-8", "special-16",
                "16bit-8")


def _width(option):
    return integer(option, "an integer from 2 to 16", 2, 16)


def _stages(option):
    return integer(option, "an integer from 0 to 8", 0, 8)


def add_tile_arguments(p, *, algorithm=True):
    """Options of every command that builds a tile configuration (defaults: ``None``).

    ``algorithm=False`` leaves out ``--algorithm`` (the layer commands name it).
    """
    alg = p.add_argument_group("algorithm")
    alg.add_argument("--m", type=integer("--m"), required=True,
                     help="outputs per tile and dimension")
    alg.add_argument("--r", type=integer("--r"), required=True, help="filter size per dimension")
    pts = alg.add_mutually_exclusive_group()
    pts.add_argument("--points", metavar="LIST", type=text_value("--points", "a list of points"),
                     help="interpolation points, e.g. 0,-1,1,1/2,-3,inf (Winograd only)")
    pts.add_argument("--preset", choices=sorted(PRESETS),
                     help="named point set (default: default; Winograd only)")
    pts.add_argument("--transforms", metavar="FILE.json",
                     type=text_value("--transforms", "a FILE.json"),
                     help="given Winograd matrices instead of points: a JSON file {\"AT\": …, "
                          "\"G\": …, \"BT\": …} of integers and \"p/q\" strings; the manifest "
                          "says whether they are exact (Winograd --pe mul only)")
    if algorithm:
        alg.add_argument("--algorithm", choices=("winograd", "direct"),
                         help="Winograd (n² PEs) or the direct baseline (m²r² PEs) with the "
                              "same streams (default: winograd)")
    alg.add_argument("--pe", choices=sorted(PE_KINDS),
                     help="processing-element kind: "
                          + "; ".join(f"{name}: {kind.description}"
                                      for name, kind in PE_KINDS.items())
                          + " (default: mul)")
    alg.add_argument("--adder-matrices", metavar="{standard,balanced,FILE.json}",
                     type=text_value("--adder-matrices", "standard, balanced or a FILE.json"),
                     help="Winograd transforms of --pe adder engines: the F(2,3) sets standard "
                          "or balanced, or a JSON file {\"AT\": …, \"G\": …, \"BT\": …} of "
                          "integers and \"p/q\" strings (default: standard)")
    num = p.add_argument_group("arithmetic")
    num.add_argument("--data-width", type=_width("--data-width"),
                     help="signed activation width, 2..16 (default: 8)")
    num.add_argument("--weight-width", type=_width("--weight-width"),
                     help="signed weight width, 2..16 (default: 8)")
    num.add_argument("--filter-transform", choices=("online", "offline"),
                     help="transform the filter on chip (online) or load U = G g Gᵀ computed "
                          "by winogen (offline; storage grows by (n/r)²) (default: offline; "
                          "Winograd only)")
    num.add_argument("--keep-scale", choices=("yes", "no"),
                     help="keep the integer scale D² in the output instead of removing it "
                          "exactly in hardware (default: no; Winograd --pe mul only)")
    num.add_argument("--descale", choices=("auto", "shift"),
                     help="remove the scale with a shift and an exact constant division "
                          "(auto), or with shifts only (default: auto; Winograd --pe mul only)")
    num.add_argument("--fold", choices=("A", "G"),
                     help="matrix that absorbs the integer scale numerators (default: A; "
                          "Winograd only)")
    num.add_argument("--wino-width", metavar="W",
                     type=integer("--wino-width", "an integer from 2 to 32", 2, 32),
                     help="quantized Winograd domain: round V = B^T d B (on chip) and "
                          "U = G g G^T / D^2 (offline) to W bits with power-of-two shifts, so "
                          "the multipliers are W x W; below the exact engine's widest "
                          "operand (default: exact; Winograd --pe mul, --filter-transform "
                          "offline)")
    num.add_argument("--wino-scales", metavar="{global,tapwise,FILE.json}",
                     type=text_value("--wino-scales", "global, tapwise or a FILE.json"),
                     help="shifts of the quantized domain: one per operand (global), or one "
                          "per Winograd position and operand (tapwise), both derived from the "
                          "ranges; or a tap-wise scale file {\"v_shifts\": [[n x n]], "
                          "\"u_shifts\": [[n x n]]} (e.g. calibrated on data by python -m "
                          "winogen.nets.wa --calibrate; values beyond W bits saturate) "
                          "(default: global; with --wino-width only)")
    _add_rns_arguments(p)
    pipe = p.add_argument_group("pipelining")
    pipe.add_argument("--pipeline", type=_stages("--pipeline"), metavar="N",
                      help="register stages per transform; the PE gets min(N, 2), the "
                           "descale min(N, 1); --pe rns: the PE and the converter get N when "
                           "N < 2 and keep their defaults from 2 on (default: 2)")
    for block, default in (("input", 2), ("pe", "2; --pe rns: 3, with the product register"),
                           ("output", 2), ("filter", "2; Winograd only"),
                           ("descale", "1; Winograd only")):
        pipe.add_argument(f"--{block}-stages", type=_stages(f"--{block}-stages"), metavar="N",
                          help=f"register stages of the {block} block "
                               f"(overrides --pipeline; default: {default})")
    pipe.add_argument("--dsp", choices=DSP_PRIMITIVES,
                      help="multipliers as plain '*' for any flow (inferred), ECP5 MULT18X18D "
                           "instances whose internal registers hold the PE stages, for Fmax on "
                           "ECP5 (ecp5), or Lattice Nexus MULT9X9 (operands within 9 bits: two "
                           "per 18x18 block) or MULT18X18 instances the same way (nexus); the "
                           "vendor builds take --pe mul only and write a simulation model too "
                           "(default: inferred)")
    p.add_argument("--name", type=text_value("--name", "a Verilog identifier"),
                   help="Verilog module name (default: derived from the parameters)")


def _add_rns_arguments(p):
    kinds = " or ".join(f"--pe {name}" for name in modular_kinds())
    rns = p.add_argument_group(f"residue number system ({kinds} only)")
    mod = rns.add_mutually_exclusive_group()
    mod.add_argument("--moduli", metavar="LIST",
                     type=text_value("--moduli", "a comma-separated list of integers"),
                     help="pairwise coprime moduli, e.g. 251,241,239,223, or auto[-BITS]; the "
                          "last --redundant-moduli of them are redundant (default: 8bit-primes-4)")
    mod.add_argument("--moduli-preset", metavar="NAME",
                     type=text_value("--moduli-preset", "a moduli preset name"),
                     help="named moduli set: " + ", ".join(_RNS_PRESETS) + "; or auto (auto-BITS): "
                          "the fewest, cheapest-to-reduce 8-bit (BITS-bit) primes that cover the "
                          "engine's exact result range, plus the redundant ones")
    rns.add_argument("--redundant-moduli", type=integer("--redundant-moduli", "0 or 1", 0, 1),
                     help="1: check every output tile with a redundant modulus and "
                          "raise the error flag on a fault (default: 0)")
    rns.add_argument("--rns-method", choices=("auto", "scaled", "inverse"),
                     help="rational entries: integer-scaled matrices with the scale divided out "
                          "after reverse conversion, or modular inverses (default: auto, "
                          "inverse when every denominator is invertible)")
    rns.add_argument("--channels", type=integer("--channels", "an integer from 1 to 4096",
                                                1, 4096),
                     help="input channels accumulated mod each modulus per output tile "
                          "(default: 1; tile engines only)")
    rns.add_argument("--rns-input-transform", choices=("binary", "residue"),
                     help="input transform shared in binary, then forward converted, or per "
                          "modulus in residues (default: binary)")
    rns.add_argument("--rns-forward-reduction", choices=("full", "partial"),
                     help="binary input transform: reduce V to canonical residues (b x b-bit "
                          "multipliers), or only fold it into an 18-bit DSP operand and reduce "
                          "the product (smaller forward converters, larger PE reductions) "
                          "(default: full)")
    rns.add_argument("--convert-stages", type=_stages("--convert-stages"), metavar="N",
                     help="register stages of the mixed-radix converter, at most "
                          "one per level: 2k for k moduli (default: one per level; --pipeline "
                          "0 or 1 sets it too)")


def add_layer_arguments(p):
    """Options of the layer engines (on top of :func:`add_tile_arguments`)."""
    lay = p.add_argument_group("layer engine")
    dims = "an integer from 1 to 4096"
    for option, default in (("--max-width", 32), ("--max-height", 32), ("--max-cin", 16),
                            ("--max-cout", 16)):
        what = {"--max-width": "largest feature-map width W",
                "--max-height": "largest feature-map height H",
                "--max-cin": "largest input-channel count",
                "--max-cout": "largest output-channel count"}[option]
        lay.add_argument(option, type=integer(option, dims, 1, 4096),
                         help=f"{what} (default: {default})")
    lay.add_argument("--pin", type=integer("--pin", "an integer from 1 to 64", 1, 64),
                     help="input channels processed per cycle (default: 1)")
    lay.add_argument("--pout", type=integer("--pout", "an integer from 1 to 64", 1, 64),
                     help="output channels processed per cycle (default: 1)")
    lay.add_argument("--pixels-per-beat",
                     type=integer("--pixels-per-beat", "an integer from 1 to 64", 1, 64),
                     help="pixels of one row per activation beat, P_in channels each, so that "
                          "loading keeps up with compute (default: 1)")
    lay.add_argument("--filters-per-beat",
                     type=integer("--filters-per-beat", "an integer from 1 to 64", 1, 64),
                     help="filters per weight beat, consecutive input channels of one output "
                          "channel; must divide --pin (default: 1)")
    lay.add_argument("--weight-buffers", type=int, choices=(1, 2),
                     help="2: the next layer's filters load while this one computes; 1: half "
                          "the weight memory, filters load between layers (default: 2)")
    lay.add_argument("--filter-store", choices=("transformed", "raw"),
                     help="with --filter-transform online: store U (transformed while loading) "
                          "or the raw r x r filters, transformed as read: (r/n)^2 of the weight "
                          "memory and its read bandwidth for P_out x P_in filter transforms "
                          "(default: transformed)")
    lay.add_argument("--bram", choices=("inferred", "ecp5"),
                     help="inferred: plain memories that synthesis maps to block RAM; ecp5: "
                          "Lattice ECP5 DP16KD blocks instantiated with their output register, "
                          "which Yosys never enables (same latency, shorter clock-to-out; "
                          "Verilator needs the DP16KD_sim.v model written beside the Verilog) "
                          "(default: inferred)")
    lay.add_argument("--harden", metavar="SPEC",
                     help="replicate block classes against faults: CLASS:SCHEME[,...], CLASS one "
                          "of input_transform, products, lane_sums, accumulation, "
                          "output_transform, descale, requantization (those the engine has), "
                          "SCHEME tmr (three copies, majority vote) or dmr (two copies; a "
                          "mismatch raises the error output with the output beats it reached) "
                          "(default: none)")
    lay.add_argument("--weights", metavar="FILE.npz",
                     help="a weight-specialized engine (generate conv): the filters of FILE.npz "
                          "are built in as constant shift-add products (zero weights cost "
                          "nothing) and the weight stream disappears; FILE.npz holds one "
                          "integer array, w (C_out, C_in, r, r: raw filters) or u (C_out, "
                          "C_in, n, n: Winograd-domain weights of a quantized domain with "
                          "--filter-transform offline); C_in and C_out become max_cin = P_in "
                          "and max_cout = P_out (default: a programmable engine)")
    lay.add_argument("--sparse-lanes", metavar="K",
                     type=integer("--sparse-lanes", "a positive integer", 1),
                     help="a zero-skipping engine (generate conv, --filter-transform "
                          "offline): K multipliers, a divisor of n², each owning n²/K "
                          "Winograd-domain positions; the weight stream carries only the "
                          "nonzero weights (winogen.gen.sparse) and a tile takes as many "
                          "cycles as the busiest lane's entries (default: a dense engine)")
    lay.add_argument("--output-width", type=integer("--output-width", "an integer from 2 to 32",
                                                    2, 32),
                     help="build the requantization stage: shift, round, saturate "
                          "to this width (default: full-precision outputs)")
    lay.add_argument("--rounding", choices=("half_even", "half_up"),
                     help="rounding of the requantization shift (default: half_even; with "
                          "--output-width only)")


def config_from_args(args, engine):
    """The configuration of ``engine`` (tile, conv, direct) from parsed options."""
    params = {k: v for k, v in vars(args).items() if k in PARAMS and k != "engine"}
    with user_errors(f"--m {args.m} --r {args.r}"):
        from winogen.gen.params import config_from_params
        return config_from_params({**params, "engine": engine})


def add_output_arguments(p):
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder (created if missing)")
    hand = p.add_argument_group("hand-off bundle")
    hand.add_argument("--bundle", action="store_true",
                      help="also write the hand-off bundle: <name>.f, FuseSoC .core, "
                           ".sdc/.xdc/.lpf constraints, Vivado Tcl, README.md")
    hand.add_argument("--freq", type=number("--freq", "a positive number of MHz", 0.0, 10000.0),
                      metavar="MHZ", help="clock of the bundle's constraints (default: 100; "
                                          "with --bundle only)")
    hand.add_argument("--part", type=text_value("--part", "a Vivado part name"),
                      help="Vivado part of the bundle (default: xc7a35tcpg236-1; with "
                           "--bundle only)")


def check_output_arguments(args):
    """Refuse bundle options without ``--bundle`` and an unusable ``-o``; writes nothing."""
    for option, value in (("--freq", args.freq), ("--part", args.part)):
        if value is not None and not args.bundle:
            raise UserError(f"{option} applies with --bundle only (the hand-off bundle's "
                            f"constraints), not {value!r} alone")
    check_output_folder("-o/--output", args.output)


#: Seconds of silence before :class:`Progress` speaks, then between its lines.
PROGRESS_AFTER = 3.0
PROGRESS_EVERY = 15.0


class Progress:
    """``with Progress(what):`` reports on stderr, once a run has taken a few seconds,
    what it is doing and the elapsed time (``stage(text)`` names the next step)."""

    def __init__(self, what, after=None, every=None, stream=None):
        self.what = what
        self.after = PROGRESS_AFTER if after is None else after
        self.every = PROGRESS_EVERY if every is None else every
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self._done = threading.Event()
        self._shown = False

    def _say(self):
        print(f"winogen generate: [{time.monotonic() - self.start:6.1f} s] {self.what}",
              file=self.stream, flush=True)
        self._shown = True

    def _loop(self):
        if self._done.wait(self.after):
            return
        self._say()
        while not self._done.wait(self.every):
            self._say()

    def stage(self, what):
        self.what = what
        if self._shown:
            self._say()

    def __enter__(self):
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        if self._shown and exc[0] is None:
            print(f"winogen generate: [{time.monotonic() - self.start:6.1f} s] done",
                  file=self.stream, flush=True)
        return False


def _emit(config, kind, out, progress):
    """Elaborate and write ``config``; the hardware generators print nothing themselves.

    A tile of any PE kind goes through :func:`winogen.hw.generate.generate_tile` (the
    engine registry picks its hardware by configuration type)."""
    if kind == "tile":
        module, function = "winogen.hw.generate", "generate_tile"
    else:
        module, function = "winogen.hw.layer", "generate_layer"
    generate = getattr(importlib.import_module(module), function)
    progress.stage(f"elaborating {config.module_name} and emitting Verilog")
    return generate(config, out)


def _tile_summary(config, manifest):
    if config.pe_kind.modular:
        return (f"{manifest['name']}: {manifest['algorithm']['name']} RNS, moduli "
                f"{list(config.moduli)} ({config.redundant_moduli} redundant), method "
                f"{config.method_used}, {config.multipliers} modular multipliers "
                f"({config.multiplier_description}), {config.channels} channel(s), "
                f"latency {manifest['latency']}, output {config.output_width} bits")
    return (f"{manifest['name']}: {manifest['algorithm']['name']} {config.algorithm}, "
            f"{manifest['processing_elements']} PEs ({config.pe}{_quantized(config)}), "
            f"latency {manifest['latency']}, "
            f"II {manifest['initiation_interval']}, output {config.output_width} bits")


def _quantized(tile):
    """``", 9 x 9, tapwise"``: a quantized Winograd domain's multipliers and scaling."""
    q = getattr(tile, "quantization", None)
    if not q:
        return ""
    return f", {tile.pe_a_width} x {tile.stored_u_width}, {q.scales}"


def layer_summary(cfg, manifest):
    if cfg.sparse:
        return (f"{manifest['name']}: zero-skipping layer engine F({cfg.m},{cfg.r}), "
                f"{cfg.sparse_lanes} multipliers ({cfg.lane_slots} Winograd-domain positions "
                f"each; {cfg.tile.pe}{_quantized(cfg.tile)}), P_in {cfg.p_in} x P_out "
                f"{cfg.p_out}, max {cfg.max_cin}x{cfg.max_height}x{cfg.max_width} -> "
                f"{cfg.max_cout}, up to {cfg.max_entries} entries per lane, outputs "
                f"{cfg.result_width} bits")
    fixed = manifest.get("fixed_weights")
    if fixed:
        return (f"{manifest['name']}: weight-specialized layer engine F({cfg.m},{cfg.r}), "
                f"{cfg.max_cin} -> {cfg.max_cout} channels, {fixed['nonzero']} of "
                f"{fixed['products']} constant products built ({fixed['sparsity']:.1%} zero "
                f"weights), {fixed['adders']} adders in their trees "
                f"({cfg.tile.pe}{_quantized(cfg.tile)}), max {cfg.max_height}x{cfg.max_width}, "
                f"outputs {cfg.result_width} bits, weights sha256 {fixed['sha256'][:12]}")
    return (f"{manifest['name']}: {cfg.algorithm} layer engine F({cfg.m},{cfg.r}), "
            f"P_in {cfg.p_in} x P_out {cfg.p_out}, {cfg.multipliers} PEs "
            f"({cfg.tile.pe}{_quantized(cfg.tile)}), "
            f"max {cfg.max_cin}x{cfg.max_height}x{cfg.max_width} -> {cfg.max_cout}, "
            f"outputs {cfg.result_width} bits")


def run(args):
    """Check everything, then elaborate, emit and (``--bundle``) write the bundle."""
    config = config_from_args(args, args.engine)
    check_output_arguments(args)
    kind = "tile" if args.engine == "tile" else "layer"
    with Progress(f"elaborating {config.module_name}") as progress:
        vpath, jpath, manifest = _emit(config, kind, args.output, progress)
        summary = _tile_summary(config, manifest) if kind != "layer" \
            else layer_summary(config, manifest)
        written = [vpath, jpath]
        if args.bundle:
            progress.stage("writing the hand-off bundle")
            bundle = importlib.import_module("winogen.fpga.bundle")
            written += bundle.write_bundle(args.output, manifest,
                                           freq_mhz=100.0 if args.freq is None else args.freq,
                                           part=args.part)
    print(summary)
    given = manifest["algorithm"].get("transforms")
    if given is not None:
        print("given transforms: exact (the correlation)" if given["exact"] else
              f"given transforms: approximate, identity error {given['identity_error']}, tile "
              f"error {given['tile_error']:.3g} (RMS, relative); the engine computes "
              f"floor(A'^T (U' * V') A' / D^2), not the correlation")
    for path in written:
        print(f"wrote {path}")
    return 0


def add_parser(sub):
    p = sub.add_parser("generate", help="generate Verilog and a manifest",
                       description="Generate an engine as Verilog plus a JSON manifest.")
    kinds = p.add_subparsers(dest="engine", metavar="ENGINE", parser_class=type(p))
    kinds.required = True
    t = kinds.add_parser("tile", help="one m×m output tile per clock (Winograd or direct)",
                         description="A tile engine: n×n input tiles in, m×m output tiles out, "
                                     "one per clock, with valid/ready streams.")
    add_tile_arguments(t)
    add_output_arguments(t)
    t.set_defaults(func=run)
    for engine, text in (("conv", "Winograd layer engine (WinogradConv)"),
                         ("direct", "direct-convolution layer engine (DirectConv), same streams")):
        e = kinds.add_parser(engine, help=text,
                             description=f"A {text}: whole feature maps in, output maps out, "
                                         f"P_in x P_out channel parallelism, BRAM buffers.")
        add_tile_arguments(e, algorithm=False)
        add_layer_arguments(e)
        add_output_arguments(e)
        e.set_defaults(func=run)
    return p
