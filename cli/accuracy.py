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
    p.add_argument("--r", type=integer("--r"), default=None, help="filter size (default 3)")
    p.add_argument("--m", type=_list("--m", "positive integers", cast=int), default=None,
                   help="comma-separated tile sizes (default 2,4,6)")
    names = sorted(PRESETS)
    p.add_argument("--presets", default=["lavin", "barabasz"],
                   type=_list("--presets", f"presets from {', '.join(names)}", names),
                   help="comma-separated point presets (default lavin,barabasz)")
    p.add_argument("--dtype", default=None, choices=DTYPES,
                   help="float16, float32 or float64 (default float32)")
    p.add_argument("--data", default=None,
                   type=_list("--data", f"datasets from {', '.join(DATASETS)}", DATASETS),
                   help=f"comma-separated datasets (default {','.join(DATASETS)})")
    p.add_argument("--channels", type=integer("--channels"), default=None,
                   help="channels of the layers (default 32)")
    p.add_argument("--size", type=integer("--size"), default=None,
                   help="height and width of the random layer (default 64)")
    p.add_argument("--seed", type=integer("--seed", "a non-negative integer", minimum=0),
                   default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    p.add_argument("--plot", metavar="FILE.png", help="also write a PNG of error vs m "
                                                      "(--quantized: top-1 vs W)")
    q = p.add_argument_group(
        "quantized Winograd domains (--quantized)",
        "integer engines whose V and U are rounded to W bits: error on real images "
        "against exact int8 direct convolution and top-1 of the reference network, "
        "post-training or after Winograd-aware training (r = 3)")
    q.add_argument("--quantized", action="store_true",
                   help="run the quantized-domain study instead of the float one")
    q.add_argument("--widths", default=None,
                   type=_list("--widths", "widths from 2 to 24 or exact",
                              [str(w) for w in range(2, 25)] + ["exact"]),
                   help="comma-separated W (default 8,9,10,12,exact)")
    q.add_argument("--scales", default=None,
                   type=_list("--scales", "scales from global, tapwise, calibrated",
                              ["global", "tapwise", "calibrated"]),
                   help="comma-separated scales: global and tapwise derived from the ranges, "
                        "calibrated (tap-wise, from the training images' 99.9th percentile "
                        "of |V|; values beyond saturate) (default global,tapwise)")
    q.add_argument("--bases", default=None,
                   type=_list("--bases", "bases from monomial, legendre",
                              ["monomial", "legendre"]),
                   help="comma-separated polynomial bases of the transforms (default monomial)")
    q.add_argument("--training", default=None,
                   type=_list("--training", "trainings from post, wa, flex",
                              ["post", "wa", "flex"]),
                   help="comma-separated: post (the committed int8 network), wa "
                        "(Winograd-aware fine-tuning), flex (also learning the transforms) "
                        "(default post; wa and flex take minutes per row)")
    q.add_argument("--epochs", type=integer("--epochs"), default=None,
                   help="fine-tuning epochs of wa and flex rows (default 8)")
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


_FLOAT_ONLY = ("r", "dtype", "data", "channels", "size")
_QUANTIZED_ONLY = ("widths", "scales", "bases", "training", "epochs")


def run(args):
    """Print the table (or JSON) and optionally write the plot; return 0."""
    if args.quantized:
        return run_quantized(args)
    for name in _QUANTIZED_ONLY:
        if getattr(args, name) is not None:
            raise UserError(f"--{name} applies to --quantized only")
    for name, default in (("r", 3), ("m", [2, 4, 6]), ("dtype", "float32"),
                          ("data", list(DATASETS)), ("channels", 32), ("size", 64)):
        if getattr(args, name) is None:
            setattr(args, name, default)
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


def run_quantized(args):
    """``--quantized``: the study of :mod:`winogen.nets.quantstudy`."""
    import sys
    import time
    for name in _FLOAT_ONLY:
        if getattr(args, name) is not None:
            raise UserError(f"--{name} does not apply to --quantized (r = 3, the reference "
                            f"network and the sample images)")
    ms = args.m or [2, 4, 6]
    bad = [m for m in ms if m not in (2, 4, 6)]
    if bad:
        raise UserError(f"--m must be among 2, 4, 6 with --quantized, not {bad[0]}")
    training = args.training or ["post"]
    if args.epochs is not None and training == ["post"]:
        raise UserError("--epochs applies to --training wa or flex only")
    if args.plot is not None:
        check_output_file("--plot", args.plot, ".png")
    widths = [None if w == "exact" else int(w) for w in (args.widths or
                                                          ["8", "9", "10", "12", "exact"])]
    from winogen.nets.quantstudy import direct_top1, format_rows, plot_rows, study_rows
    start = time.monotonic()

    def progress(row):
        print(f"  {row['algorithm']} {row['preset']} {row['base']} W {row['width'] or 'exact'} "
              f"{row['scales']} {row['training']}: top-1 {100 * row['top1']:.2f} % "
              f"({time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)

    rows = study_rows(ms, args.presets, widths, args.scales or ["global", "tapwise"], training,
                      args.bases or ["monomial"], epochs=args.epochs or 8, seed=args.seed,
                      progress=progress)
    baseline = direct_top1()
    if args.json:
        print(json.dumps({"direct_int8_top1": baseline, "rows": rows}, indent=2))
    else:
        print(format_rows(rows, baseline))
    if args.plot is not None:
        plot_rows(rows, baseline, args.plot)
    return 0
