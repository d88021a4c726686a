"""``winogen simulate``: a random layer through an emitted engine under Verilator."""

import argparse
import importlib
import json
import re
import sys

from ._base import UserError, integer, number, shown
from .generate import add_layer_arguments, add_tile_arguments, config_from_args

__all__ = ["add_parser", "parse_random_layer", "run"]


def parse_random_layer(text):
    """``"CINxHxW:COUT"`` → (cin, height, width, cout).

    Raises
    ------
    ValueError
        For text of another shape.
    """
    match = re.fullmatch(r"([0-9]+)x([0-9]+)x([0-9]+):([0-9]+)", text or "")
    if not match:
        raise ValueError(f"--random-layer must look like CINxHxW:COUT (e.g. 3x16x16:8), "
                         f"not {shown(text)}")
    return tuple(int(v) for v in match.groups())


def _random_layer(text):
    try:
        return parse_random_layer(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub):
    p = sub.add_parser("simulate", help="run a layer through an emitted engine under Verilator",
                       description="Generate a layer engine, build it with Verilator (cached), "
                                   "stream a random layer through it and compare with the golden "
                                   "model. Prints pass/fail and the measured cycles.")
    kinds = p.add_subparsers(dest="engine", metavar="ENGINE", parser_class=type(p))
    kinds.required = True
    for engine, text in (("conv", "Winograd layer engine"),
                         ("direct", "direct-convolution layer engine")):
        e = kinds.add_parser(engine, help=text, description=f"Simulate a {text}.")
        add_tile_arguments(e, algorithm=False)
        add_layer_arguments(e)
        e.add_argument("--random-layer", required=True, metavar="CINxHxW:COUT",
                       type=_random_layer, help="random layer to run, e.g. 3x16x16:8")
        e.add_argument("--kernel", type=integer("--kernel", "an integer from 1 to 15", 1, 15),
                       default=None, help="kernel size k of the layer (default: the engine's "
                                          "r); another k runs by the Decomposable Winograd "
                                          "Method: pieces of at most r x r stacked as input "
                                          "channels (multiplying PEs only)")
        e.add_argument("--stride", type=int, choices=(1, 2), default=1,
                       help="stride of the layer (default: 1; 2 runs by the Decomposable "
                            "Winograd Method)")
        e.add_argument("--padding", type=integer("--padding", "0 or r // 2", 0), default=None,
                       help="run-time padding (default: k // 2, 'same'; with --kernel or "
                            "--stride any amount below k)")
        e.add_argument("--shift", type=integer("--shift", "an integer from 0 to 63", 0, 63),
                       default=None, help="requantization shift (default: 0; with "
                                          "--output-width only)")
        e.add_argument("--stall", type=number("--stall", "a probability in [0, 1)", 0.0, 1.0,
                                              open_low=False),
                       default=0.0, help="probability of random stalls on every stream "
                                         "(default: 0)")
        e.add_argument("--seed", type=integer("--seed", "a non-negative integer", 0), default=0,
                       help="random seed (default: 0)")
        e.add_argument("--json", action="store_true", help="print a JSON report")
        e.set_defaults(func=run)
    return p


def run(args):
    import numpy as np
    from winogen.gen.layer import LayerRun, layer_golden
    config = config_from_args(args, args.engine)
    if args.shift is not None and args.output_width is None:
        raise UserError(f"--shift applies with --output-width only (the requantization "
                        f"stage), not {args.shift} alone")
    cin, height, width, cout = args.random_layer
    kernel = config.r if args.kernel is None else args.kernel
    if kernel != config.r or args.stride != 1:
        return _run_dwm(args, config, kernel)
    padding = config.r // 2 if args.padding is None else args.padding
    shift = args.shift or 0
    try:
        run_ = LayerRun(height, width, cin, cout, padding, shift).check(config, weights=False)
    except ValueError as exc:
        # "cin must be 1..4 for this engine, not 5": name the option that set it.
        text = " ".join(str(exc).split())
        word = text.split(" ", 1)[0]
        option = f"--{word}" if word in ("padding", "shift") else "--random-layer"
        raise UserError(f"{option}: {text}") from None
    rng = np.random.default_rng(args.seed)
    t = config.tile
    x = rng.integers(t.data_interval.lo, t.data_interval.hi + 1, (cin, height, width))
    w = rng.integers(t.weight_interval.lo, t.weight_interval.hi + 1, (cout, cin, t.r, t.r))
    driver = importlib.import_module("winogen.sim.driver")
    print(f"simulating {cin}x{height}x{width} -> {cout} (padding {padding}) on "
          f"{config.module_name} under Verilator (first build takes a minute) ...",
          file=sys.stderr, flush=True)
    y, cycles = driver.run_layer(config, x, w, padding=padding, shift=shift,
                                 stall=args.stall, seed=args.seed)
    expected = layer_golden(config, run_, x, w)
    ok = y.shape == expected.shape and bool(np.all(y == expected))
    ideal = cycles.get("compute_ideal")
    utilization = ideal / cycles["total"] if ideal and cycles.get("total") else None
    report = {"engine": config.module_name, "layer": [cin, height, width, cout],
              "padding": padding, "pass": ok, "cycles": cycles, "utilization": utilization,
              "mismatches": int(np.sum(y != expected)) if y.shape == expected.shape else None}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{'PASS' if ok else 'FAIL'}: output {y.shape} "
              f"{'bit-exact against' if ok else 'differs from'} the golden model")
        print("cycles: " + ", ".join(f"{k} {v}" for k, v in cycles.items()))
        if utilization is not None:
            print(f"utilization {100 * utilization:.1f}%: ideal steps (tiles x channel passes "
                  f"= {ideal}) over the cycles from the config beat to the last output beat")
    return 0 if ok else 1


def _run_dwm(args, config, kernel):
    """A layer of another kernel size or stride 2, by the Decomposable Winograd Method."""
    import numpy as np
    from winogen.gen.dwm import dwm_layer
    from winogen.gen.layer import LayerRun, layer_golden
    option = "--kernel" if kernel != config.r else "--stride"
    if not config.tile.pe_kind.bilinear:
        raise UserError(f"{option} {getattr(args, option[2:])} needs a multiplying PE (the "
                        f"Decomposable Winograd Method pads sub-kernels with zero taps, which "
                        f"-|x - w| does not ignore), not --pe {config.tile.pe}")
    cin, height, width, cout = args.random_layer
    padding = kernel // 2 if args.padding is None else args.padding
    if padding >= kernel:
        raise UserError(f"--padding must be below the kernel size {kernel}, not {padding}")
    shift = args.shift or 0
    if min(height, width) + 2 * padding < kernel:
        raise UserError(f"--random-layer: a {kernel}x{kernel} kernel with padding {padding} "
                        f"does not fit a {height}x{width} map")
    rng = np.random.default_rng(args.seed)
    t = config.tile
    x = rng.integers(t.data_interval.lo, t.data_interval.hi + 1, (cin, height, width))
    w = rng.integers(t.weight_interval.lo, t.weight_interval.hi + 1, (cout, cin, kernel, kernel))
    xs, ws, pieces = dwm_layer(x, w, stride=args.stride, padding=padding, engine_r=t.r)
    try:
        run_ = LayerRun(xs.shape[1], xs.shape[2], xs.shape[0], cout, 0, shift).check(config, weights=False)
    except ValueError as exc:
        text = " ".join(str(exc).split())
        raise UserError(f"--random-layer: as {len(pieces)} pieces of at most {t.r}x{t.r} the "
                        f"layer runs as {xs.shape[0]} channels of {xs.shape[1]}x{xs.shape[2]}: "
                        f"{text}") from None
    driver = importlib.import_module("winogen.sim.driver")
    print(f"simulating {cin}x{height}x{width} -> {cout}, {kernel}x{kernel} stride {args.stride} "
          f"(padding {padding}) as {len(pieces)} stacked pieces on {config.module_name} under "
          f"Verilator (first build takes a minute) ...", file=sys.stderr, flush=True)
    y, cycles = driver.run_layer_dwm(config, x, w, stride=args.stride, padding=padding,
                                     shift=shift, stall=args.stall, seed=args.seed)
    expected = layer_golden(config, run_, xs, ws)
    ok = y.shape == expected.shape and bool(np.all(y == expected))
    report = {"engine": config.module_name, "layer": [cin, height, width, cout],
              "kernel": kernel, "stride": args.stride, "padding": padding,
              "pieces": len(pieces), "pass": ok, "cycles": cycles,
              "mismatches": int(np.sum(y != expected)) if y.shape == expected.shape else None}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{'PASS' if ok else 'FAIL'}: output {y.shape} "
              f"{'bit-exact against' if ok else 'differs from'} the golden model "
              f"({len(pieces)} pieces summed in the engine's channel accumulation)")
        print("cycles: " + ", ".join(f"{k} {v}" for k, v in cycles.items()))
    return 0 if ok else 1
