"""Weight-specialized engines against Winograd-domain sparsity: what zeros save.

For each sparsity, a weight-specialized layer engine (``fixed_weights``) is generated
from the same Winograd-domain weights with that fraction of them set to zero (the
largest-magnitude ones kept, as magnitude pruning would), and measured:

* Yosys' coarse cells before technology mapping (``$mul``, ``$add``, ``$sub``:
  :func:`winogen.fpga.yosys.cell_counts`);
* ``synth_ecp5`` resources (LUT4, CCU2C, MULT18X18D, registers), and with
  ``--place`` nextpnr-ecp5's Fmax;
* with ``--simulate``, one layer under Verilator checked bit-exact against the golden model.

The programmable engine of the same shape (``p_in = C_in``, ``p_out = C_out``, one tile per
cycle) is the baseline row, measured in the same run: its multipliers do not care about
zeros. Ratios are against it.

Run ``python benchmarks/bench_specialized.py --help``.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from winogen.fpga.synth import synth
from winogen.fpga.yosys import cell_counts
from winogen.gen.config import TileConfig
from winogen.gen.fixedweights import FixedWeights, specialized_products
from winogen.gen.layer import LayerConfig, LayerRun, layer_golden
from winogen.hw.layer import generate_layer


def _dense_u(tile, cout, cin, seed):
    """Û drawn uniformly in each position's range (no zeros)."""
    rng = np.random.default_rng(seed)
    n = tile.n
    u = np.zeros((cout, cin, n, n), dtype=np.int64)
    for k, iv in enumerate(tile.quantization.uq_intervals):
        values = rng.integers(iv.lo, iv.hi + 1, (cout, cin))
        values[values == 0] = 1
        u[:, :, k // n, k % n] = values
    return u


def _pruned(u, sparsity):
    """``u`` with its ``sparsity`` smallest-magnitude entries set to zero."""
    flat = u.reshape(-1).copy()
    flat[np.argsort(np.abs(flat), kind="stable")[:round(sparsity * flat.size)]] = 0
    return flat.reshape(u.shape)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, default=2, help="F(m, 3) (default 2)")
    ap.add_argument("--wino-width", type=int, default=10,
                    help="quantized Winograd domain width (default 10)")
    ap.add_argument("--channels", default="8:8", help="C_in:C_out (default 8:8)")
    ap.add_argument("--size", type=int, default=16, help="max height and width (default 16)")
    ap.add_argument("--sparsities", default="0,0.5,0.75",
                    help="comma-separated Winograd-domain sparsities (default 0,0.5,0.75)")
    ap.add_argument("--dsp", choices=("inferred", "ecp5"), default="inferred",
                    help="inferred: every constant product a shift-add tree; ecp5: the cost "
                         "model puts long constants in MULT18X18D blocks (default inferred)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the programmable engine of the same shape")
    ap.add_argument("--place", action="store_true", help="also place and route (Fmax)")
    ap.add_argument("--freq", type=float, default=200.0, help="nextpnr constraint, MHz")
    ap.add_argument("--simulate", action="store_true",
                    help="run one layer of each specialized engine under Verilator")
    ap.add_argument("-o", "--output", default=None, help="work folder (default: temporary)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    try:
        cin, cout = (int(v) for v in args.channels.split(":"))
        sparsities = [float(v) for v in args.sparsities.split(",")]
    except ValueError:
        ap.error(f"--channels must be CIN:COUT and --sparsities numbers, not "
                 f"{args.channels!r} and {args.sparsities!r}")
    if any(not 0 <= s < 1 for s in sparsities):
        ap.error(f"--sparsities must lie in [0, 1), not {args.sparsities!r}")
    root = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="winogen-spec-"))
    tile = TileConfig(args.m, 3, 8, 8, preset="lavin" if args.m > 2 else "default",
                      wino_width=args.wino_width, wino_scales="tapwise",
                      filter_transform="offline", dsp=args.dsp)
    dense = _dense_u(tile, cout, cin, seed=1)
    common = dict(max_height=args.size, max_width=args.size, max_cin=cin, max_cout=cout,
                  p_in=cin, p_out=cout, output_width=8)
    engines = [] if args.no_baseline else [("programmable", None, LayerConfig(tile, **common))]
    for s in sparsities:
        fw = FixedWeights("u", _pruned(dense, s))
        engines.append((f"specialized {s:.0%}", fw, LayerConfig(tile, **common,
                                                                fixed_weights=fw)))
    rows = []
    for label, fw, cfg in engines:
        folder = root / cfg.module_name
        t0 = time.monotonic()
        print(f"[{label}] generating {cfg.module_name} ...", file=sys.stderr, flush=True)
        vpath, _, manifest = generate_layer(cfg, folder)
        coarse = cell_counts([vpath.name], manifest["top"], cwd=folder,
                             libraries=["+/ecp5/cells_bb.v"] if args.dsp == "ecp5" else [])
        print(f"[{label}] synth_ecp5{' + nextpnr' if args.place else ''} ...", file=sys.stderr,
              flush=True)
        rep = synth(folder, "ecp5", freq_mhz=args.freq, place=args.place)
        res = rep["resources"]
        row = {"engine": label, "module": cfg.module_name,
               "coarse_mul": coarse.get("$mul", 0),
               "coarse_add_sub": coarse.get("$add", 0) + coarse.get("$sub", 0),
               "lut4": res["lut"], "ccu2c": res.get("carry", 0),
               "mult18x18d": res.get("dsp", 0), "registers": res["ff"],
               "yosys_workaround": rep.get("yosys_workaround"),
               "fmax_mhz": (rep["timing"] or {}).get("fmax_mhz"),
               "wall_s": round(time.monotonic() - t0, 1)}
        if fw is not None:
            counts = specialized_products(fw.core_weights(tile))
            row.update(nonzero=counts["nonzero"], products=counts["products"],
                       adders=manifest["fixed_weights"]["adders"],
                       dsp_products=manifest["fixed_weights"]["dsp_products"])
            if args.simulate:
                from winogen.sim.driver import run_layer
                x = np.random.default_rng(2).integers(-128, 128, (cin, args.size, args.size))
                run = LayerRun(args.size, args.size, cin, cout, 1, 8)
                y, _ = run_layer(cfg, x, None, padding=1, shift=8)
                row["bit_exact"] = bool(np.array_equal(
                    y, layer_golden(cfg, run, x, fw.values, winograd_weights=True)))
        rows.append(row)
    base = next((r for r in rows if r["engine"] == "programmable"), rows[0])
    for r in rows:
        for key in ("lut4", "ccu2c"):
            if r.get(key) and base.get(key):
                r[f"{key}_ratio"] = round(r[key] / base[key], 3)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ["engine", "nonzero", "dsp_products", "coarse_mul", "coarse_add_sub", "adders", "lut4",
            "lut4_ratio", "ccu2c", "mult18x18d", "registers", "fmax_mhz"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "")) for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
