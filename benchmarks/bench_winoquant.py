"""Output error and widths of quantized Winograd domains (``--wino-width``) on random data.

For each engine and width W, the golden model (:class:`~winogen.gen.fixedpoint.TileModel`,
bit-exact with the hardware) computes ``--tiles`` uniform random 8-bit tiles against as
many uniform random 8-bit filters (NumPy ``default_rng(seed)``, drawn afresh per engine),
with one shift per operand (``global``) and one per Winograd position (``tapwise``).
Reported: mean |Y − exact| over mean |exact| (the exact correlation computed with a
sliding window, no winogen code), and the output width the engine derives. Widths not
below the exact engine's widest operand are refused by the configuration and skipped.

Usage::

    python benchmarks/bench_winoquant.py [--tiles 2000] [--seed 0] [--json]
"""

import argparse
import json

import numpy as np

from winogen.gen.config import TileConfig

ENGINES = ((2, 3), (4, 3), (6, 3))
WIDTHS = (8, 9, 10, 12)


def measure(tiles, seed):
    rows = []
    for m, r in ENGINES:
        base = TileConfig(m, r)
        rng = np.random.default_rng(seed)
        d = rng.integers(-128, 128, (tiles, base.n, base.n))
        g = rng.integers(-128, 128, (tiles, r, r))
        windows = np.lib.stride_tricks.sliding_window_view(d, (r, r), axis=(-2, -1))
        exact = (windows * g[:, None, None]).sum(axis=(-2, -1))
        for w in WIDTHS:
            row = {"engine": f"F({m},{r})", "W": w}
            for scales in ("global", "tapwise"):
                try:
                    cfg = TileConfig(m, r, wino_width=w, wino_scales=scales)
                except ValueError:
                    break
                y = cfg.golden_model()(d, g)
                row[scales] = float(np.abs(y - exact).mean() / np.abs(exact).mean())
                row[f"{scales}_output_bits"] = cfg.output_width
            else:
                rows.append(row)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = measure(args.tiles, args.seed)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| engine | W | global | tapwise | output bits (global, tapwise; exact 19) |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row['engine']} | {row['W']} | {row['global']:.3g} | {row['tapwise']:.3g} | "
              f"{row['global_output_bits']}, {row['tapwise_output_bits']} |")


if __name__ == "__main__":
    main()
