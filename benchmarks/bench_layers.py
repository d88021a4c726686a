"""Benchmark: Winograd and direct layer engines at equal output rate, on one layer.

Both engines share streams, memories and scheduler; with the same m, P_in and
P_out they produce outputs at the same rate, the direct one with r²/n²·m²
times the multipliers. For each engine: Yosys ``synth_ecp5`` resources (and
nextpnr Fmax with ``--place``), cycles measured in Verilator on a
C_in → C_out, H × W layer, and effective MACs per multiplier per cycle
(the layer's MACs ÷ multipliers ÷ compute cycles).

    python benchmarks/bench_layers.py [--m 2] [--pin 2 --pout 2] [--layer 16x32x32:16] [--place]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from winogen.fpga.synth import synth
from winogen.gen.report import markdown_table
from winogen.gen.config import TileConfig
from winogen.cli.simulate import parse_random_layer
from winogen.gen.layer import LayerConfig, LayerRun, layer_golden
from winogen.hw.layer import generate_layer
from winogen.sim.driver import run_layer


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, default=2)
    ap.add_argument("--r", type=int, default=3)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--pin", type=int, default=2)
    ap.add_argument("--pout", type=int, default=2)
    ap.add_argument("--layer", default="16x32x32:16", help="CINxHxW:COUT (default 16x32x32:16)")
    ap.add_argument("--place", action="store_true", help="also place and route (Fmax)")
    ap.add_argument("--freq", type=float, default=150.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cin, h, w, cout = parse_random_layer(args.layer)
    root = Path(tempfile.mkdtemp(prefix="winogen-bench-layers-"))
    rng = np.random.default_rng(0)
    rows = []
    for algorithm in ("direct", "winograd"):
        tile = TileConfig(args.m, args.r, args.width, args.width, algorithm=algorithm)
        cfg = LayerConfig(tile, max_height=h, max_width=w, max_cin=cin, max_cout=cout,
                          p_in=args.pin, p_out=args.pout)
        run = LayerRun(h, w, cin, cout, padding=args.r // 2)
        x = rng.integers(tile.data_interval.lo, tile.data_interval.hi + 1, (cin, h, w))
        wts = rng.integers(tile.weight_interval.lo, tile.weight_interval.hi + 1, (cout, cin, args.r, args.r))
        print(f"[{algorithm}] simulating {args.layer} ...", file=sys.stderr, flush=True)
        y, cycles = run_layer(cfg, x, wts, padding=run.padding)
        assert np.array_equal(y, layer_golden(cfg, run, x, wts)), "engine output differs from the golden model"
        out = root / cfg.module_name
        generate_layer(cfg, out)
        print(f"[{algorithm}] synthesizing {cfg.module_name} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        rep = synth(out, "ecp5", freq_mhz=args.freq, place=args.place,
                    progress=lambda s: print(f"    {s}", file=sys.stderr, flush=True))
        res = rep["resources"]
        macs = cin * cout * run.output_shape(cfg)[1] * run.output_shape(cfg)[2] * args.r ** 2
        total = cycles["total"]
        rows.append({
            "engine": cfg.module_name, "algorithm": algorithm, "multipliers": cfg.multipliers,
            "lut4": res["lut"], "ff": res["ff"], "mult18x18d": res["dsp"], "dp16kd": res["bram"],
            "fmax_mhz": (rep.get("timing") or {}).get("fmax_mhz"),
            "compute_cycles": cycles["compute"], "ideal_cycles": cycles["compute_ideal"],
            "layer_cycles": total,
            "macs_per_multiplier_per_cycle": round(macs / cfg.multipliers / total, 3),
            "bit_exact": True, "synth_seconds": round(time.monotonic() - t0, 1),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = list(rows[0])
    print(markdown_table(rows, cols))
    base, wino = rows
    print(f"\nWinograd/direct: multipliers {wino['multipliers'] / base['multipliers']:.3f}, "
          f"MULT18X18D {wino['mult18x18d'] / max(base['mult18x18d'], 1):.3f}, "
          f"compute cycles {wino['compute_cycles'] / base['compute_cycles']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
