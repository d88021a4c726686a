"""``winogen run-net``: the reference int8 CNN through an emitted layer engine under Verilator."""

import json
import sys
import time
from pathlib import Path

import numpy as np

from ._base import UserError, integer, number, shown

__all__ = ["add_parser", "run", "ENGINE_KINDS"]

#: What runs the layers: one programmable engine, or a weight-specialized engine per layer.
ENGINE_KINDS = ("programmable", "specialized", "zero-skip")


def add_parser(sub):
    p = sub.add_parser(
        "run-net", help="classify real images with an int8 CNN on an engine",
        description="Run an int8 CNN (by default the reference network, winogen.nets: "
                    "scikit-learn's digits) layer by layer through a generated layer engine "
                    "under Verilator, compare every "
                    "layer with the integer golden model, and report top-1 accuracy, cycles "
                    "per image per layer and effective multiply-accumulates per multiplier "
                    "per cycle. Layers of other kernels and stride 2 run by the Decomposable "
                    "Winograd Method; dense layers run as convolutions.")
    p.add_argument("--images", type=integer("--images", "an integer from 1 to 359", 1, 359),
                   default=200, help="test images to classify, in the split's order "
                                     "(default: 200)")
    p.add_argument("--m", type=int, choices=(2, 4), default=None,
                   help="Winograd F(m, 3) engine to generate (default: 2)")
    p.add_argument("--lanes", type=integer("--lanes", "an integer from 1 to 16", 1, 16),
                   default=None, help="input and output channels per cycle, P_in = P_out, of "
                                      "the generated engine (default: 4)")
    p.add_argument("--engine", metavar="DIR", default=None,
                   help="use the engine generated into DIR (its manifest) instead of "
                        "generating one; it needs 8-bit data and weights, --output-width 8 "
                        "and the maxima the network needs")
    p.add_argument("--network", metavar="FILE.json", default=None,
                   help="network file (format winogen-network-1: JSON layers beside an .npz "
                        "of int8 weights; README, 'Reference network and run-net'; default: "
                        "the committed reference CNN, nets/data/digits_cnn.json)")
    p.add_argument("--engine-kind", choices=ENGINE_KINDS, default=None,
                   help="programmable: one generated engine with a weight stream runs every "
                        "layer; specialized: one weight-specialized engine per layer, its "
                        "weights built in as constant shift-add products (zero weights cost "
                        "nothing; generate conv --weights); zero-skip: one generated "
                        "zero-skipping engine whose weight stream carries only the nonzero "
                        "Winograd-domain weights (generate conv --sparse-lanes) "
                        "(default: programmable)")
    p.add_argument("--sparse-lanes", type=integer("--sparse-lanes", "a positive integer", 1),
                   default=None, help="multipliers of the generated zero-skipping engine, a "
                                      "divisor of n² (with --engine-kind zero-skip; default: "
                                      "n²/2)")
    p.add_argument("--golden-only", action="store_true",
                   help="run the NumPy integer model only (no engine, no Verilator)")
    p.add_argument("--stall", type=number("--stall", "a probability in [0, 1)", 0.0, 1.0,
                                          open_low=False),
                   default=0.0, help="probability of random stalls on every stream (default: 0)")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(func=run)
    return p


def _network(args):
    from winogen.nets.netfile import load_network
    from winogen.nets.train import NETWORK
    path = Path(args.network) if args.network else NETWORK
    try:
        network = load_network(path)
    except ValueError as exc:
        raise UserError(f"--network: {' '.join(str(exc).split())}") from None
    x = np.zeros((1, *network.input_shape), dtype=np.int64)
    from winogen.nets.netfile import network_forward_int
    out = network_forward_int(network, x)
    if out.shape[2:] != (1, 1):
        raise UserError(f"--network: the last layer must give one logit per class (a 1x1 map, "
                        f"e.g. a dense layer), not a {out.shape[2]}x{out.shape[3]} map")
    return network


def _engine_config(args, network, layers, input_shape):
    from winogen.sim.network import (network_engine_config, network_requirements,
                                     specialized_network_configs)
    tile = None
    if network.winograd is not None:
        from winogen.nets.netfile import winograd_tile
        tile = winograd_tile(network.winograd)
        if args.m is not None and args.m != tile.m:
            raise UserError(f"--m must be {tile.m} for this network (its winograd section "
                            f"is F({tile.m}, 3)), not {args.m}")
    if args.engine_kind == "specialized":
        for option in ("engine", "lanes"):
            if getattr(args, option) is not None:
                raise UserError(f"--{option} does not apply with --engine-kind specialized "
                                f"(one engine per layer is generated, its channels fixed by "
                                f"the weights)")
        if tile is None:
            m = args.m or 2
            from winogen.gen.config import TileConfig
            tile = TileConfig(m, 3, 8, 8, preset="lavin" if m > 2 else "default")
        return specialized_network_configs(layers, input_shape, tile)
    if args.sparse_lanes is not None and args.engine_kind != "zero-skip":
        raise UserError(f"--sparse-lanes applies with --engine-kind zero-skip only, not "
                        f"{args.sparse_lanes}")
    if args.engine_kind == "zero-skip":
        if args.engine is not None:
            raise UserError("--engine does not apply with --engine-kind zero-skip (the engine "
                            "is generated; use --sparse-lanes and --lanes)")
        m = tile.m if tile is not None else (args.m or 2)
        if tile is None:
            from winogen.gen.config import TileConfig
            tile = TileConfig(m, 3, 8, 8, preset="lavin" if m > 2 else "default",
                              filter_transform="offline")
        n2 = tile.n ** 2
        lanes = args.sparse_lanes or n2 // 2
        if n2 % lanes:
            divisors = ", ".join(str(d) for d in range(1, n2 + 1) if n2 % d == 0)
            raise UserError(f"--sparse-lanes must divide n² = {n2} (one of {divisors}), not "
                            f"{lanes}")
        config = network_engine_config(layers, input_shape, m=m, p=args.lanes or 4,
                                       pixels_per_beat=4, filters_per_beat=1, tile=tile)
        return config.replace(sparse_lanes=lanes)
    if args.engine is None:
        return network_engine_config(layers, input_shape, m=args.m or 2, p=args.lanes or 4,
                                     tile=tile)
    if args.m is not None or args.lanes is not None:
        given = "--m" if args.m is not None else "--lanes"
        raise UserError(f"{given} applies to the generated engine, not with --engine "
                        f"{shown(args.engine)}")
    from winogen.gen.manifest import find_manifest, read_manifest, to_config
    try:
        config = to_config(read_manifest(find_manifest(args.engine)))
    except ValueError as exc:
        raise UserError(f"--engine: {' '.join(str(exc).split())}") from None
    need = network_requirements(layers, input_shape, getattr(config, "r", 3))
    problems = []
    if getattr(config, "output_width", None) != 8 or getattr(config, "r", None) != 3:
        problems.append("r = 3 and --output-width 8")
    elif config.tile.data_width != 8 or config.tile.weight_width != 8:
        problems.append("8-bit data and weights")
    elif not config.tile.pe_kind.bilinear:
        problems.append("a multiplying PE")
    else:
        problems += [f"{k} >= {v} (it has {getattr(config, k)})" for k, v in need.items()
                     if getattr(config, k) < v]
    if not problems and tile is not None and (
            getattr(config.tile, "quantization", None) is None
            or config.tile.to_json() != tile.to_json()):
        problems.append(f"the network's Winograd domain (F({tile.m}, 3), --wino-width "
                        f"{tile.wino_width}, its given shifts, --filter-transform offline)")
    if not problems and config.specialized:
        problems.append("a weight stream (not a weight-specialized engine: use "
                        "--engine-kind specialized)")
    if problems:
        raise UserError(f"--engine: the network needs an engine with {', '.join(problems)}")
    return config


def run(args):
    from winogen.nets.digits import load_digits_int8, split
    from winogen.nets.netfile import network_forward_int
    if args.golden_only:
        for option in ("engine", "m", "lanes", "engine_kind", "sparse_lanes"):
            if getattr(args, option) is not None:
                raise UserError(f"--{option.replace('_', '-')} does not apply with --golden-only "
                                f"(no engine runs)")
        if args.stall:
            raise UserError("--stall does not apply with --golden-only (no engine runs)")
    network = _network(args)
    x, y = load_digits_int8()        # the one dataset of the format ("digits")
    _, _, x_test, y_test = split(x, y)
    if x_test.shape[1:] != network.input_shape:
        raise UserError(f"--network: input.shape must be {list(x_test.shape[1:])} for the "
                        f"{network.dataset} dataset, not {list(network.input_shape)}")
    images, labels = x_test[:args.images].astype(np.int64), y_test[:args.images]
    layers = list(network.layers)
    # the engine options are checked (and the engines configured) before any long work
    config = None if args.golden_only else _engine_config(args, network, layers,
                                                          images.shape[1:])
    golden = network_forward_int(network, images)[:, :, 0, 0]
    report = {"images": len(images),
              "golden_top1": float(np.mean(np.argmax(golden, axis=1) == labels))}
    if args.golden_only:
        return _print(args, report)
    configs = config if isinstance(config, list) else [config]
    from winogen.sim.network import (computes_the_convolution, engine_golden_network,
                                     run_network)
    if network.winograd is not None:
        report["golden"] = ("the quantized engine's golden model (winogen.gen.layer."
                            "layer_golden per layer): a Winograd-domain network")
    elif not computes_the_convolution(configs[0]):
        # A quantized or approximate engine is checked against its own golden model.
        golden = engine_golden_network(configs[0], layers, images)[:, :, 0, 0]
        report.update({"network_top1": report["golden_top1"],
                       "golden_top1": float(np.mean(np.argmax(golden, axis=1) == labels)),
                       "golden": "the engine's golden model (winogen.gen.layer.layer_golden "
                                 "per layer): the engine does not compute the exact "
                                 "convolution"})
    start = time.monotonic()

    def progress(name, done, total):
        print(f"  {name}: {done}/{total} images ({time.monotonic() - start:.0f} s)",
              file=sys.stderr, flush=True)

    specialized = args.engine_kind == "specialized"
    what = (f"{len(configs)} weight-specialized engines" if specialized
            else configs[0].module_name)
    print(f"running {len(images)} images on {what} under Verilator (the first "
          f"build takes a few minutes) ...", file=sys.stderr, flush=True)
    result = run_network(config, layers, images, stall=args.stall, progress=progress)
    logits = result["outputs"][:, :, 0, 0]
    # A weight-specialized engine's "multipliers" are its nonzero constant products.
    multipliers = (sum(c.multipliers for c in configs) if specialized
                   else configs[0].multipliers)
    for layer in result["layers"]:
        layer["macs_per_multiplier_cycle"] = layer["macs"] / (layer["multipliers"]
                                                              * layer["cycles"])
    total_cycles = sum(layer["cycles"] for layer in result["layers"])
    total_macs = sum(layer["macs"] for layer in result["layers"])
    report.update({
        "engine_kind": args.engine_kind or "programmable",
        "engine": what if specialized else configs[0].module_name,
        "multipliers": multipliers,
        "engine_top1": float(np.mean(np.argmax(logits, axis=1) == labels)),
        "bit_exact": bool(np.array_equal(logits, golden))
                     and all(layer["mismatches"] == 0 for layer in result["layers"]),
        "layers": result["layers"], "cycles_per_image": total_cycles / len(images),
        "macs_per_multiplier_cycle": (None if specialized
                                      else total_macs / (multipliers * total_cycles)),
        "wall_seconds": time.monotonic() - start,
    })
    return _print(args, report)


def _print(args, report):
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        if "network_top1" in report:
            print(f"integer network (exact convolutions): top-1 "
                  f"{100 * report['network_top1']:.2f} % on {report['images']} test images")
        print(f"golden model{' of the engine' if 'network_top1' in report else ''}: top-1 "
              f"{100 * report['golden_top1']:.2f} % on {report['images']} test images")
        if "engine" in report:
            units = ("nonzero constant products" if report["engine_kind"] == "specialized"
                     else "multipliers")
            print(f"{report['engine']} ({report['multipliers']} {units}): top-1 "
                  f"{100 * report['engine_top1']:.2f} %, "
                  f"{'bit-exact against' if report['bit_exact'] else 'DIFFERS from'} the golden model "
                  f"({report['wall_seconds']:.0f} s)")
            print(f"{'layer':6} {'k':>2} {'s':>2} {'pieces':>6} {'cycles/image':>13} "
                  f"{'MAC/mult/cycle':>15} {'mismatches':>10}")
            for layer in report["layers"]:
                print(f"{layer['name']:6} {layer['kernel']:>2} {layer['stride']:>2} "
                      f"{layer['pieces']:>6} {layer['cycles_per_image']:>13.0f} "
                      f"{layer['macs_per_multiplier_cycle']:>15.3f} {layer['mismatches']:>10}")
            per_mult = report["macs_per_multiplier_cycle"]
            print(f"whole network: {report['cycles_per_image']:.0f} cycles per image"
                  + (f", {per_mult:.3f} MAC per multiplier per cycle" if per_mult else
                     " (layers pipelined one engine each: the slowest layer sets the rate)"))
    if "engine" in report and not report["bit_exact"]:
        return 1
    return 0
