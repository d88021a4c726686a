"""``winogen generate``: parameters in, Verilog and a manifest out.

The hardware modules are imported only when a generate command runs, so the
rest of the CLI (and all of :mod:`winogen.gen`) works without Amaranth.
"""

import argparse
import importlib
import sys

from .cli import int_argument
from .config import TileConfig
from .pe import PE_KINDS
from .points import PRESETS

__all__ = ["add_generate_parser", "tile_config_from_args", "add_tile_arguments"]


def _width(name):
    return int_argument(name, "an integer from 2 to 16")


def _stages(name):
    return int_argument(name, "an integer from 0 to 8")


def _int(name):
    return int_argument(name)


def add_tile_arguments(p):
    """Arguments shared by every command that builds a :class:`TileConfig`."""
    alg = p.add_argument_group("algorithm")
    alg.add_argument("--m", type=_int("m"), required=True, help="outputs per tile and dimension")
    alg.add_argument("--r", type=_int("r"), required=True, help="filter size per dimension")
    pts = alg.add_mutually_exclusive_group()
    pts.add_argument("--points", metavar="LIST",
                     help="interpolation points, e.g. 0,-1,1,1/2,-3,inf")
    pts.add_argument("--preset", choices=sorted(PRESETS), default="default",
                     help="named point set (default: %(default)s)")
    alg.add_argument("--algorithm", choices=("winograd", "direct"), default="winograd",
                     help="Winograd (n² PEs) or the direct baseline (m²r² PEs) with the same "
                          "streams (default: %(default)s)")
    alg.add_argument("--pe", choices=sorted(PE_KINDS), default="mul",
                     help="processing-element kind (default: %(default)s)")
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
    pipe = p.add_argument_group("pipelining")
    pipe.add_argument("--pipeline", type=_stages("pipeline"), default=None, metavar="N",
                      help="register stages per transform; the PE gets min(N, 2) and the "
                           "descale min(N, 1) (default: 2)")
    for block, default in (("input", 2), ("pe", 2), ("output", 2), ("filter", 2), ("descale", 1)):
        pipe.add_argument(f"--{block}-stages", type=_stages(f"{block}_stages"), default=None,
                          metavar="N", help=f"register stages of the {block} block "
                                            f"(overrides --pipeline; default: {default})")
    p.add_argument("--name", help="Verilog module name (default: derived from the parameters)")


def tile_config_from_args(args):
    stages = {}
    if args.pipeline is not None:
        n = args.pipeline
        stages = dict(input_stages=n, output_stages=n, filter_stages=n,
                      pe_stages=min(n, 2), descale_stages=min(n, 1))
    for block in ("input", "pe", "output", "filter", "descale"):
        value = getattr(args, f"{block}_stages")
        if value is not None:
            stages[f"{block}_stages"] = value
    return TileConfig(
        m=args.m, r=args.r, data_width=args.data_width, weight_width=args.weight_width,
        points=args.points, preset=args.preset, algorithm=args.algorithm, pe=args.pe,
        filter_transform=args.filter_transform, keep_scale=args.keep_scale == "yes",
        descale=args.descale, fold=args.fold, name=args.name, **stages)


def _cmd_generate_tile(args):
    config = tile_config_from_args(args)   # validate before importing the hardware
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
    return p
