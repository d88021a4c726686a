"""``winogen explore``: the command line of :mod:`winogen.fpga.explore`.

Every check (grid values, the combinations, the flow, the output folder, the tools)
runs through :func:`winogen.fpga.explore.prepare` before any work; its errors are
the user's. The sweep itself then runs outside that boundary.
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

from winogen.gen.pe import modular_kinds

from ._base import (UserError, add_executor_arguments, check_executor_args, check_output_folder,
                    executor_from_args, number, shown)
from .synth import check_flow

__all__ = ["add_parser", "run"]

_EPILOG = """\
grid file (TOML): the axes as keys, each a list (or a single value), e.g.
  m = [2, 4]
  r = 3
  widths = [8, "8x4"]            # D, or DxW for different data and weight widths
  algorithms = ["winograd", "direct"]
  pipeline = [1, 2, 3]
  pe = {pe_kinds}
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

invalid values and combinations: a value that no engine accepts (--m x, an unknown
preset) stops the sweep before any work (exit 2). A combination of valid values that
the engine refuses (F(4,3) with --pe adder, --dsp ecp5 with a PE that does not
multiply, --pe rns with the direct algorithm, moduli that do not cover the result
range) is skipped: listed on stderr and in explore.md/explore.json with its message,
and counted in the summary. A grid with no valid combination is an error (exit 2).

RNS engines (--pe rns): --moduli, --redundant-moduli, --rns-method and
--rns-forward-reduction multiply the RNS points only; rows gain moduli,
redundant_moduli, rns_method (the method used), multiplier_width and
rns_forward_reduction.

on a Dask cluster (--executor dask --scheduler ADDRESS): each configuration runs on
a worker, which reads and writes OUT/cache/ itself, so every worker must see OUT at
the same absolute path (a shared filesystem) and run the same winogen and tools (a
worker that does not is refused). The rows are the same as a local run's.

examples:
  winogen explore --m 2,4 --r 3 --widths 8 --pipeline 1,2 --no-place -o explore/
  winogen explore --m 2,4 --r 3 --widths 8 --algorithms winograd --pe mul,rns \\
      --moduli 8bit-primes-4,251:241:239 --redundant-moduli 0,1 --no-place -o explore/
  winogen explore --grid sweep.toml --target ecp5 --device LFE5U-85F-8 --freq 200 -o explore/
  winogen explore --grid sweep.toml --executor dask --scheduler tcp://HOST:8786 \\
      -o /shared/explore/
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



def add_parser(subparsers):
    """Register the ``explore`` subcommand; its defaults carry ``func=run``."""
    from winogen.fpga.explore import grid as grid_module
    from winogen.fpga.targets import TARGETS
    layers = grid_module.layers_available()
    description = ("Sweep a grid of engine configurations: generate each one, synthesize it "
                   "(and place and route it), cache the result, and write a CSV/JSON/Markdown "
                   "table and plots of resources, throughput and the pipelining trade-off.")
    if not layers:
        description += (" Tile engines only: the layer engine generator (winogen.hw.layer) "
                        "is not available in this installation.")
    p = subparsers.add_parser(
        "explore", help="design-space exploration: sweep, synthesize, tabulate, plot",
        description=description,
        epilog=_EPILOG.format(layer_toml=_LAYER_TOML if layers else "",
                              pe_kinds=json.dumps(["mul", *modular_kinds()])),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", metavar="FILE.toml", help="grid file (see below)")
    axes = p.add_argument_group("grid axes (comma-separated lists)")
    for key, (text, default) in grid_module.GRID_KEYS.items():
        if key in ("pin", "pout", "engine") and not layers:
            continue
        dflt = ",".join(str(d) for d in default) if default else \
            "layer if --pin/--pout are given, else tile"
        axes.add_argument(_flag(key), dest=key, metavar="LIST", default=None,
                          help=f"{text} (default: {dflt})")
    if layers:
        axes.add_argument("--layer", metavar="HxWxCINxCOUT", default=None, type=_layer,
                          help="layer engine maxima, also the cycle-model workload "
                               "(default: 16x16x8x8)")
    targets = tuple(TARGETS)
    defaults = ", ".join(f"{name} {t.default_freq_mhz:g}" for name, t in TARGETS.items()
                         if t.places)
    count_only = "".join(f" or {name}" for name, t in TARGETS.items() if not t.places)
    group = p.add_argument_group("flow")
    group.add_argument("--target", default="ecp5", choices=targets,
                       metavar="{" + ",".join(targets) + "}",
                       help="FPGA family and flow (default: ecp5)")
    group.add_argument("--device", default=None, help="part (see winogen synth --help)")
    group.add_argument("--freq", type=number("--freq", "a positive number of MHz", 0.0, 10000.0),
                       default=None, metavar="MHZ",
                       help=f"clock constraint for place and route (default: {defaults}; "
                            f"not with --no-place{count_only})")
    group.add_argument("--no-place", dest="place", action="store_false",
                       help="Yosys only: resource counts without Fmax (fast)")
    group.add_argument("--nodsp", action="store_true", help="map multipliers to LUT logic")
    group.add_argument("--retry-failed", action="store_true",
                       help="rerun configurations whose cached result is a tool failure")
    add_executor_arguments(p, "configurations synthesized in parallel")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.set_defaults(func=run)
    return p


def _flag(key):
    return "--" + key.replace("_", "-")


def _layer(text):
    parts = text.lower().split("x")
    if len(parts) != 4 or not all(re.fullmatch(r"[0-9]+", v) and 1 <= int(v) <= 4096
                                  for v in parts):
        raise argparse.ArgumentTypeError(f"--layer must be HxWxCINxCOUT of integers from 1 "
                                         f"to 4096 such as 16x16x8x8, not {shown(text)}")
    return dict(zip(("max_height", "max_width", "max_cin", "max_cout"), map(int, parts)))


def _grid(args):
    """The grid: the file's keys, overridden by the command-line lists."""
    from winogen.fpga.explore import GRID_KEYS, load_grid
    grid = {}
    if args.grid is not None:
        try:
            grid = dict(load_grid(args.grid))
        except ValueError as exc:
            text = " ".join(str(exc).split())
            raise UserError("--" + text if text.startswith("grid ") else f"--grid: {text}") \
                from None
    for key in GRID_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            grid[key] = value
    if getattr(args, "layer", None) is not None:
        table = grid.get("layer", {})
        grid["layer"] = {**(table if hasattr(table, "items") else {}), **args.layer}
    return grid


def _user_message(exc, args):
    """A grid message in the options typed: ``m must …`` → ``--m must …``."""
    from winogen.fpga.explore import GRID_KEYS
    text = " ".join(str(exc).split())
    word = text.split(" ", 1)[0]
    if word in GRID_KEYS and getattr(args, word, None) is not None:
        return _flag(word) + text[len(word):]
    if args.grid is not None and not re.search(r"(?<![\w-])--[a-z]", text):
        return f"--grid {shown(args.grid)}: {text}"    # a key of the file
    return text


def run(args):
    """Check everything, then sweep; return 0, or 1 when a configuration failed."""
    from winogen.fpga.explore import explore, prepare
    from winogen.fpga.explore.sweep import WorkerSetupError
    check_flow(args.target, args.device, args.freq, args.place)
    check_executor_args(args)
    check_output_folder("-o/--output", args.output)
    grid = _grid(args)
    options = dict(target=args.target, device=args.device, place=args.place,
                   freq_mhz=args.freq, nodsp=args.nodsp)
    try:
        prepared = prepare(grid, args.output, **options)
    except ValueError as exc:
        raise UserError(_user_message(exc, args)) from None
    # Connected last among the checks (a scheduler that does not answer takes its
    # timeout), still before any file is written. Threads locally: the work waits on
    # the tools' processes.
    executor = executor_from_args(args, kind="thread")
    start = time.monotonic()
    skipped = []

    def progress(line):
        if line.startswith("skipped: "):
            skipped.append(line)
        print(f"winogen explore: {line}", file=sys.stderr, flush=True)

    with executor:
        try:
            rows = explore(grid, args.output, retry_failed=args.retry_failed,
                           progress=progress, prepared=prepared, executor=executor, **options)
        except WorkerSetupError as exc:   # the cluster's setup, not a bug
            raise UserError(f"--scheduler {args.scheduler}: {exc}") from None
    failed = [r for r in rows if r["error"]]
    print(f"{len(rows)} configurations in {time.monotonic() - start:.1f} s"
          + (f", {len(failed)} failed" if failed else "")
          + (f", {len(skipped)} invalid combination{'s' if len(skipped) != 1 else ''} "
             f"skipped" if skipped else "")
          + f"; report {Path(args.output) / 'explore.md'}")
    return 1 if failed else 0
