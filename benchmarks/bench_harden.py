"""Benchmark: what fault tolerance costs, direct against Winograd (issue 18's hardening study).

The reference int8 CNN on the 359 test digits, every layer on one engine model (direct,
F(2,3), F(4,3); P 2 × 2, 8-bit, requantized), operation-level bit flips at a BER:

1. the BER: the smallest of ``--bers`` at which the unprotected direct engine loses more
   than 5 points of top-1;
2. direct: the cheapest of a fixed ladder of ``tmr`` hardenings (products; + lane sums and
   accumulation; + requantization) that keeps top-1 within 1 point of fault-free;
3. Winograd: ``auto`` selective hardening (:func:`winogen.nets.faults.auto_harden`:
   vulnerability per unit of cost, from this run's single-flip study and Yosys block
   costs) at growing budgets, the first within 1 point;
4. Yosys ``synth_ecp5`` (no place and route) of each engine unprotected and hardened:
   LUT4, CCU2C, FF, MULT18X18D; the overhead of each hardening in percent, and the
   Winograd engines' overhead reduction against the direct engine's, beside Xue et al.'s
   27.49 % (DAC'22) and 55.77 % (arXiv 2308.08230).

    python benchmarks/bench_harden.py [--images 359] [--trials 2] [--seed 0] [-o DIR]

Prints a table and writes ``harden.json`` into ``-o DIR`` (default: a temporary folder).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from winogen.fpga.synth import synth
from winogen.hw.layer.manifest import generate_layer
from winogen.nets import faults as F
from winogen.nets.digits import load_digits_int8, split
from winogen.nets.netfile import load_network
from winogen.nets.train import NETWORK

DIRECT_LADDER = ("products:tmr", "products:tmr,lane_sums:tmr,accumulation:tmr",
                 "products:tmr,lane_sums:tmr,accumulation:tmr,requantization:tmr")
BUDGETS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)


def say(text):
    print(text, file=sys.stderr, flush=True)


def accuracy(layers, images, labels, engine, spec, ber, args, p=2):
    """Mean top-1 over ``args.trials`` draws of engine ``engine`` hardened by ``spec``."""
    label = f"{engine}+{spec}" if spec else engine
    rep = F.accuracy_campaign(layers, images, labels, engines=(label,), bers=[ber],
                              trials=args.trials, seed=args.seed,
                              harden={label: (engine, spec)}, chunk=60, p=p)
    return rep["accuracy"][label][0]["mean"]


def synth_counts(config, folder):
    vpath, _, manifest = generate_layer(config, folder)
    rep = synth(folder, "ecp5", place=False)
    r = rep["resources"]
    return {"lut": r["lut"], "carry": r.get("carry", 0), "ff": r["ff"], "dsp": r["dsp"],
            "yosys_s": rep["wall_time_s"].get("yosys")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=359)
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bers", default="1e-6,2e-6,5e-6,1e-5,2e-5")
    ap.add_argument("--engines", default="f23,f43")
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args(argv)
    out = Path(args.output or tempfile.mkdtemp(prefix="winogen-harden-"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    net = load_network(NETWORK)
    layers = list(net.layers)
    x, y = load_digits_int8()
    _, _, xt, yt = split(x, y)
    images, labels = xt[:args.images].astype(np.int64), yt[:args.images]
    shape = images.shape[1:]
    report = {"images": len(images), "trials": args.trials, "seed": args.seed, "p": 2}

    clean = accuracy(layers, images, labels, "direct", (), 0.0, args)
    report["fault_free_top1"] = clean
    say(f"fault-free top-1 {clean * 100:.2f} %")
    ber = None
    report["direct_unprotected"] = {}
    for b in (float(v) for v in args.bers.split(",")):
        a = accuracy(layers, images, labels, "direct", (), b, args)
        report["direct_unprotected"][b] = a
        say(f"direct unprotected, BER {b:g}: {a * 100:.2f} %")
        if clean - a > 0.05:
            ber = b
            break
    if ber is None:
        raise SystemExit("no BER of --bers costs the unprotected direct engine 5 points")
    report["ber"] = ber

    studies = {}
    chosen_direct = None
    for spec in DIRECT_LADDER:
        a = accuracy(layers, images, labels, "direct", spec, ber, args)
        say(f"direct {spec}: {a * 100:.2f} %")
        studies.setdefault("direct", []).append({"harden": spec, "top1": a})
        if clean - a <= 0.01:
            chosen_direct = spec
            break
    report["direct"] = {"ladder": studies["direct"], "chosen": chosen_direct}

    vul = F.vulnerability_campaign(layers, images[:40], engines=tuple(args.engines.split(",")),
                                   flips=300, seed=args.seed, p=2)
    report["vulnerability"] = vul
    report["winograd"] = {}
    for engine in args.engines.split(","):
        config = F.engine_config(engine, layers, shape, p=2)
        costs = F.block_costs_of(config)
        entry = {"unprotected_top1": accuracy(layers, images, labels, engine, (), ber, args),
                 "block_costs": costs, "budgets": []}
        say(f"{engine} unprotected: {entry['unprotected_top1'] * 100:.2f} %")
        entry["chosen"] = None
        for budget in BUDGETS:
            harden, table = F.auto_harden(config, vul["classes"][engine], costs, budget)
            spec = ",".join(f"{c}:{s}" for c, s in harden)
            a = accuracy(layers, images, labels, engine, spec, ber, args) if harden else \
                entry["unprotected_top1"]
            say(f"{engine} auto:{budget}: {spec or '(nothing)'}: {a * 100:.2f} %")
            entry["budgets"].append({"budget": budget, "harden": spec, "top1": a,
                                     "selection": table})
            if clean - a <= 0.01:
                entry["chosen"] = {"budget": budget, "harden": spec}
                break
        report["winograd"][engine] = entry

    # Resources of every engine unprotected and as chosen.
    res = {}
    runs = [("direct", ()), ("direct", chosen_direct or DIRECT_LADDER[-1])]
    for engine in args.engines.split(","):
        ch = report["winograd"][engine]["chosen"]
        runs += [(engine, ()), (engine, ch["harden"] if ch else
                                report["winograd"][engine]["budgets"][-1]["harden"])]
    for engine, spec in runs:
        config = F.engine_config(engine, layers, shape, p=2, harden=spec or ())
        folder = out / f"{engine}_{config.module_name}"
        say(f"synth_ecp5 {config.module_name} ...")
        res[f"{engine}|{spec or ''}"] = synth_counts(config, folder)
        say(f"  {res[f'{engine}|{spec or str()}']}")
    report["resources"] = res

    def overhead(engine, spec):
        base, hard = res[f"{engine}|"], res[f"{engine}|{spec}"]
        pct = {k: (hard[k] - base[k]) / base[k] * 100 if base[k] else None
               for k in ("lut", "carry", "ff", "dsp")}
        weigh = lambda r: r["lut"] + 2 * r["carry"] + F.DSP_AS_LUT4 * r["dsp"]
        pct["lut4_equivalent"] = (weigh(hard) - weigh(base)) / weigh(base) * 100
        return pct

    direct_spec = chosen_direct or DIRECT_LADDER[-1]
    report["overhead"] = {"direct": overhead("direct", direct_spec)}
    for engine in args.engines.split(","):
        ch = report["winograd"][engine]["chosen"]
        spec = ch["harden"] if ch else report["winograd"][engine]["budgets"][-1]["harden"]
        report["overhead"][engine] = overhead(engine, spec)
        d = report["overhead"]["direct"]["lut4_equivalent"]
        report["overhead"][engine]["reduction_vs_direct"] = \
            (1 - report["overhead"][engine]["lut4_equivalent"] / d) * 100 if d else None
    report["paper"] = {"dac22_overhead_reduction": 27.49, "extended_overhead_reduction": 55.77}
    report["wall_seconds"] = round(time.monotonic() - start, 1)
    (out / "harden.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"BER {ber:g}: fault-free {clean * 100:.2f} %, direct unprotected "
          f"{report['direct_unprotected'][ber] * 100:.2f} %")
    print(f"{'engine':8s} {'hardening':60s} {'LUT4 %':>8s} {'CCU2C %':>8s} {'FF %':>8s} "
          f"{'DSP %':>8s} {'LUT4eq %':>9s} {'vs direct':>10s}")
    for engine, o in report["overhead"].items():
        spec = direct_spec if engine == "direct" else (
            (report["winograd"][engine]["chosen"] or {}).get("harden", "(budget exhausted)"))
        fmt = lambda v: f"{v:8.1f}" if v is not None else f"{'-':>8s}"
        red = o.get("reduction_vs_direct")
        print(f"{engine:8s} {spec:60s} {fmt(o['lut'])} {fmt(o['carry'])} {fmt(o['ff'])} "
              f"{fmt(o['dsp'])} {o['lut4_equivalent']:9.1f} "
              f"{(f'{red:9.1f}%' if red is not None else '-'):>10s}")
    print(f"wrote {out / 'harden.json'} ({report['wall_seconds']} s)")


if __name__ == "__main__":
    main()
