"""Benchmark: design-space sweep of tile engines with place and route (winogen explore).

Sweeps F(2,3), F(4,3), F(6,3) at 8 bits, Winograd against direct, pipeline 1/2/3, on an
ECP5 LFE5U-85F-8 at a 200 MHz constraint (Yosys + nextpnr out of context), and writes
the explore report (CSV, JSON, Markdown, plots) to ``--out``.

The sizes run smallest first, each as one :func:`winogen.fpga.explore.explore` call over
everything so far; results are cached per configuration, so the report after each size
covers all finished configurations, an interrupted run resumes where it stopped, and
``--budget-min`` stops before starting a size once the budget is spent.

    python benchmarks/bench_explore.py [--sizes 2x3,4x3,6x3] [--pipeline 1,2,3] [--width 8]
        [--device LFE5U-85F-8] [--freq 200] [--no-place] [--jobs 1] [--budget-min 20]
        [--out build/bench_explore]
"""

import argparse
import sys
import time
from pathlib import Path

from winogen.fpga.explore import explore

from bench_tiles import parse_sizes  # the benchmarks folder is on sys.path when run as a script


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2x3,4x3,6x3", help="F(m,r) list (default 2x3,4x3,6x3)")
    ap.add_argument("--pipeline", default="1,2,3", help="pipeline settings (default 1,2,3)")
    ap.add_argument("--width", type=int, default=8, help="data and weight width (default 8)")
    ap.add_argument("--algorithms", default="winograd,direct")
    ap.add_argument("--device", default="LFE5U-85F-8")
    ap.add_argument("--freq", type=float, default=200.0, help="constraint in MHz (default 200)")
    ap.add_argument("--no-place", dest="place", action="store_false")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--budget-min", type=float, default=None,
                    help="do not start another size after this many minutes")
    ap.add_argument("--out", default="build/bench_explore", help="output folder")
    args = ap.parse_args(argv)

    start = time.monotonic()
    sizes = parse_sizes(args.sizes)

    def progress(line):
        print(f"[{time.monotonic() - start:7.1f} s] {line}", file=sys.stderr, flush=True)

    rows, done = [], []
    for m, r in sizes:
        if args.budget_min is not None and time.monotonic() - start > 60 * args.budget_min:
            progress(f"budget of {args.budget_min:g} min spent: not starting F({m},{r})")
            break
        done.append((m, r))
        # The grid of every size so far: finished ones come from the cache, so the report
        # this call writes covers everything done. (Sizes with different r cross-multiply.)
        grid = {"m": list(dict.fromkeys(m for m, _ in done)),
                "r": list(dict.fromkeys(r for _, r in done)), "widths": args.width,
                "algorithms": args.algorithms, "pipeline": args.pipeline}
        rows = explore(grid, args.out, target="ecp5", device=args.device, place=args.place,
                       freq_mhz=args.freq, jobs=args.jobs, progress=progress)
    print((Path(args.out) / "explore.md").read_text())
    progress(f"done: {len(rows)} configurations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
