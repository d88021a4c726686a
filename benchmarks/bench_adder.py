"""Benchmark: multiply and AdderNet layer engines, direct and Winograd, at equal output rate.

Four engines (five with ``--matrices standard,balanced``) share F(m, r), P_in, P_out,
widths and maxima, so each produces ``P_out·m²`` outputs per compute step: the
multiply-direct ``DirectConv``, the adder-direct one (``p = -|x - w|``), the
multiply-Winograd ``WinogradConv`` and the adder-Winograd one
(``Y' = A'ᵀ[-|U' - V'|]A'``). Each is synthesized with Yosys ``synth_ecp5`` twice: with
DSPs (multipliers map to MULT18X18D) and with ``-nodsp`` (multipliers become LUT
logic), and, with ``--place``, placed and routed by nextpnr for Fmax. Cycles per
layer come from the cycle model (the manifest's ``expected_cycles``: config, weights,
activations, compute steps plus pipeline latency, ready held high); ``--simulate``
also runs the layer in Verilator and checks it bit-exact against ``layer_golden``.

    python benchmarks/bench_adder.py [--m 2] [--pin 2 --pout 2] [--layer 16x32x32:16] \\
        [--place [--place-nodsp]] [--freq 100] [--simulate] [-j 2] [--json] [-o DIR]
"""

import argparse
import concurrent.futures
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from winogen.fpga.synth import synth
from winogen.gen.config import TileConfig
from winogen.cli.simulate import parse_random_layer
from winogen.gen.layer import LayerConfig, LayerRun, layer_golden
from winogen.hw.layer import generate_layer

MULTIPLIER_CELLS = ("$mul", "MULT18X18D", "ALU54B", "DSP48E1")


def engines(args, cin, h, w, cout):
    """(label, LayerConfig) of every engine in the comparison."""
    out = []
    kinds = [("mul", "direct", None), ("adder", "direct", None), ("mul", "winograd", None)]
    kinds += [("adder", "winograd", spec) for spec in args.matrices]
    for pe, algorithm, spec in kinds:
        extra = {"adder_matrices": spec} if spec else {}
        tile = TileConfig(args.m, args.r, args.width, args.width, algorithm=algorithm, pe=pe,
                          **extra)
        cfg = LayerConfig(tile, max_height=h, max_width=w, max_cin=cin, max_cout=cout,
                          p_in=args.pin, p_out=args.pout)
        label = f"{pe}-{algorithm}" + (f" ({spec})" if spec else "")
        out.append((label, cfg))
    return out


def _synth_one(cfg, folder, nodsp, args):
    place = args.place and (args.place_nodsp or not nodsp)
    old = folder / "reports" / "ecp5.json"
    if args.reuse and old.is_file():
        rep = json.loads(old.read_text())
        same = (rep["parameters"] == json.loads(json.dumps(cfg.to_json()))
                and rep["nodsp"] == nodsp and (rep["timing"] is not None) == place
                and (not place or rep["timing"]["constraint_mhz"] == args.freq))
        if same:
            return rep, rep["wall_time_s"]["total"]
    generate_layer(cfg, folder)
    t0 = time.monotonic()
    rep = synth(folder, "ecp5", freq_mhz=args.freq, place=place, nodsp=nodsp)
    return rep, time.monotonic() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, default=2)
    ap.add_argument("--r", type=int, default=3)
    ap.add_argument("--width", type=int, default=8, help="data and weight width (default 8)")
    ap.add_argument("--pin", type=int, default=2)
    ap.add_argument("--pout", type=int, default=2)
    ap.add_argument("--layer", default="16x32x32:16",
                    help="CINxHxW:COUT, also the engines' maxima (default 16x32x32:16)")
    ap.add_argument("--matrices", default="standard",
                    help="adder-Winograd matrix sets, comma-separated (default standard)")
    ap.add_argument("--place", action="store_true",
                    help="also place and route the engines with DSPs (Fmax)")
    ap.add_argument("--place-nodsp", action="store_true",
                    help="with --place, also place and route the -nodsp runs (slow: the "
                         "multiply engines' multipliers become tens of thousands of LUTs)")
    ap.add_argument("--freq", type=float, default=100.0, help="nextpnr constraint, MHz")
    ap.add_argument("--simulate", action="store_true",
                    help="run the layer in Verilator and check it against layer_golden")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="synthesis runs in parallel")
    ap.add_argument("--variants", default="dsp,nodsp",
                    help="synthesis variants to run: dsp, nodsp or both (default dsp,nodsp)")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse reports already in -o made with the same engine and options")
    ap.add_argument("-o", "--output", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    args.matrices = [s.strip() for s in args.matrices.split(",") if s.strip()]
    cin, h, w, cout = parse_random_layer(args.layer)
    root = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="winogen-bench-adder-"))
    run = LayerRun(h, w, cin, cout, padding=args.r // 2)
    configs = engines(args, cin, h, w, cout)

    measured = {}
    if args.simulate:
        from winogen.sim.driver import run_layer
        rng = np.random.default_rng(0)
        for label, cfg in configs:
            t = cfg.tile
            x = rng.integers(t.data_interval.lo, t.data_interval.hi + 1, (cin, h, w))
            wts = rng.integers(t.weight_interval.lo, t.weight_interval.hi + 1,
                               (cout, cin, args.r, args.r))
            print(f"[{label}] simulating {args.layer} ...", file=sys.stderr, flush=True)
            y, cycles = run_layer(cfg, x, wts, padding=run.padding)
            if not np.array_equal(y, layer_golden(cfg, run, x, wts)):
                raise SystemExit(f"{label}: engine output differs from the golden model")
            measured[label] = cycles["total"]

    jobs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        variants = [v.strip() for v in args.variants.split(",")]
        if not variants or set(variants) - {"dsp", "nodsp"}:
            ap.error(f"variants must be dsp, nodsp or dsp,nodsp, not {args.variants!r}")
        for label, cfg in configs:
            for nodsp in [v == "nodsp" for v in variants]:
                folder = root / f"{cfg.module_name}{'_nodsp' if nodsp else ''}"
                place = args.place and (args.place_nodsp or not nodsp)
                print(f"[{label}] synth_ecp5{' -nodsp' if nodsp else ''} "
                      f"{'+ nextpnr ' if place else ''}...", file=sys.stderr, flush=True)
                jobs[label, nodsp] = pool.submit(_synth_one, cfg, folder, nodsp, args)
        reports = {key: job.result() for key, job in jobs.items()}

    rows = []
    for label, cfg in configs:
        from winogen.hw.layer import engine_latency
        cyc = cfg.cycles(run)
        model = cfg.sequence_cycles([run], engine_latency(cfg))
        row = {"engine": label, "module": cfg.module_name, "pes": cfg.multipliers}
        for nodsp in (False, True):
            if (label, nodsp) not in reports:
                continue
            rep, seconds = reports[label, nodsp]
            res = rep["resources"]
            mults = {c: rep["cells"].get(c, 0) for c in MULTIPLIER_CELLS if rep["cells"].get(c)}
            tag = "nodsp_" if nodsp else ""
            row.update({f"{tag}lut4": res["lut"], f"{tag}ff": res["ff"],
                        f"{tag}mult18x18d": res["dsp"], f"{tag}dp16kd": res["bram"],
                        f"{tag}ccu2c": res["carry"],
                        f"{tag}fmax_mhz": (rep.get("timing") or {}).get("fmax_mhz"),
                        f"{tag}multiplier_cells": mults,
                        f"{tag}synth_seconds": round(seconds, 1)})
        row["compute_steps"] = cyc["compute_ideal"]
        row["layer_cycles_model"] = model
        row["layer_cycles_measured"] = measured.get(label)
        rows.append(row)

    if args.json:
        print(json.dumps({"layer": args.layer, "m": args.m, "r": args.r, "width": args.width,
                          "p_in": args.pin, "p_out": args.pout, "freq_mhz": args.freq,
                          "rows": rows}, indent=2))
        return 0
    fmt = lambda v: "—" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
    print(f"F({args.m},{args.r}), P_in = {args.pin}, P_out = {args.pout}, {args.width}-bit, "
          f"layer {args.layer} padding {run.padding}; ECP5 (Yosys synth_ecp5"
          f"{', nextpnr LFE5U-85F-8 at ' + fmt(args.freq) + ' MHz' if args.place else ''})\n")
    print("| engine | PEs | LUT4 | FF | MULT18X18D | DP16KD | Fmax MHz | LUT4 -nodsp | FF -nodsp "
          "| MULT18X18D -nodsp | DP16KD -nodsp | Fmax MHz -nodsp | cycles / layer |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        cycles = r["layer_cycles_model"] if r["layer_cycles_measured"] is None else \
            f"{r['layer_cycles_measured']} (model {r['layer_cycles_model']})"
        print("| " + " | ".join(fmt(r.get(k)) for k in (
            "engine", "pes", "lut4", "ff", "mult18x18d", "dp16kd", "fmax_mhz", "nodsp_lut4",
            "nodsp_ff", "nodsp_mult18x18d", "nodsp_dp16kd", "nodsp_fmax_mhz")) + f" | {cycles} |")
    by = {r["engine"]: r for r in rows}
    if "nodsp_lut4" in by.get("mul-direct", {}) and "nodsp_lut4" in by.get("adder-direct", {}):
        a, m = by["adder-direct"], by["mul-direct"]
        print(f"\nadder-direct / mul-direct LUT4 with -nodsp: {a['nodsp_lut4'] / m['nodsp_lut4']:.3f}"
              f"; multiplier cells in adder engines: "
              f"{sum(sum(r.get(k, {}).values()) for r in rows if r['engine'].startswith('adder') for k in ('multiplier_cells', 'nodsp_multiplier_cells'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
