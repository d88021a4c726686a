"""``winogen accuracy``: floating-point error of Winograd F(m, r) against direct convolution."""

import argparse
import json
import re

from winogen.gen.points import PRESETS

from ._base import UserError, check_output_file, integer, shown

__all__ = ["add_parser", "run", "DATASETS", "DTYPES"]

#: As :data:`winogen.gen.accuracy.DATASETS` and ``DTYPES`` (not imported: NumPy-free help).
DATASETS = ("random", "camera", "astronaut")
DTYPES = ("float16", "float32", "float64")


def _list(option, what, choices=None, cast=None):
    """An argparse type: a comma-separated list of ``what``."""
    def parse(text):
        items = [item.strip() for item in text.split(",")]
        ok = all(items) and (choices is None or all(i in choices for i in items))
        if ok and cast is not None:
            ok = all(re.fullmatch(r"[0-9]+", i) and int(i) >= 1 for i in items)
            items = [int(i) for i in items] if ok else items
        if not ok:
            raise argparse.ArgumentTypeError(f"{option} must be a comma-separated list of "
                                             f"{what}, not {shown(text)}")
        return list(dict.fromkeys(items))
    return parse


def add_parser(sub):
    p = sub.add_parser(
        "accuracy", help="floating-point error of Winograd F(m, r) vs direct convolution",
        description="Mean and max relative error of float Winograd F(m, r) against the float64 "
                    "direct convolution, on random data and real images, per point preset.")
    p.add_argument("--r", type=integer("--r"), default=3, help="filter size (default 3)")
    p.add_argument("--m", type=_list("--m", "positive integers", cast=int), default=[2, 4, 6],
                   help="comma-separated tile sizes (default 2,4,6)")
    names = sorted(PRESETS)
    p.add_argument("--presets", default=["lavin", "barabasz"],
                   type=_list("--presets", f"presets from {', '.join(names)}", names),
                   help="comma-separated point presets (default lavin,barabasz)")
    p.add_argument("--dtype", default="float32", choices=DTYPES,
                   help="float16, float32 or float64 (default float32)")
    p.add_argument("--data", default=list(DATASETS),
                   type=_list("--data", f"datasets from {', '.join(DATASETS)}", DATASETS),
                   help=f"comma-separated datasets (default {','.join(DATASETS)})")
    p.add_argument("--channels", type=integer("--channels"), default=32,
                   help="channels of the layers (default 32)")
    p.add_argument("--size", type=integer("--size"), default=64,
                   help="height and width of the random layer (default 64)")
    p.add_argument("--seed", type=integer("--seed", "a non-negative integer", minimum=0),
                   default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    p.add_argument("--plot", metavar="FILE.png", help="also write a PNG of error vs m")
    p.set_defaults(func=run)
    return p


def _check_tiles(r, ms, presets):
    """Refuse a tile size that no requested preset defines: nothing would be measured."""
    from winogen.gen.toomcook import ToomCook
    for m in ms:
        errors = []
        for preset in presets:
            try:
                ToomCook(m, r, preset=preset)
            except ValueError as exc:
                errors.append(" ".join(str(exc).split()))
        if len(errors) == len(presets):
            raise UserError(f"--m {m} gives no tile to measure with --r {r} and --presets "
                            f"{','.join(presets)}: {errors[0]}")


def run(args):
    """Print the table (or JSON) and optionally write the plot; return 0."""
    from winogen.gen.accuracy import ERROR_DEFINITION, accuracy_table, format_table, json_ready
    if args.size < args.r:
        raise UserError(f"--size must be at least --r {args.r}, not {args.size}")
    if args.plot is not None:
        check_output_file("--plot", args.plot, ".png")
    _check_tiles(args.r, args.m, args.presets)
    rows = accuracy_table(args.r, args.m, args.presets, args.dtype, seed=args.seed,
                          channels=args.channels, size=args.size, datasets=args.data)
    if args.json:
        print(json.dumps({"r": args.r, "dtype": args.dtype, "seed": args.seed,
                          "channels": args.channels, "size": args.size,
                          "error": ERROR_DEFINITION, "rows": json_ready(rows)},
                         indent=2, ensure_ascii=False))
    else:
        print(format_table(rows))
        print()
        print(f"{ERROR_DEFINITION}.")
    if args.plot is not None:
        from winogen.gen.accuracy import plot_accuracy
        plot_accuracy(rows, args.plot)
    return 0
