"""``winogen faults``: operation-level fault campaigns on the reference network."""

import csv
import json
import sys
import time
from pathlib import Path

from ._base import (UserError, add_executor_arguments, check_executor_args, check_output_folder,
                    executor_from_args, integer, shown)

__all__ = ["add_parser", "run"]

STUDIES = ("accuracy", "error", "vulnerability")


def _list(option, parse, accepted):
    """An argparse type: a comma-separated list, each item parsed by ``parse``."""
    import argparse

    def convert(text):
        items = [t.strip() for t in text.split(",")]
        if not text.strip() or any(not t for t in items):
            raise argparse.ArgumentTypeError(f"{option} must be {accepted}, not {shown(text)}")
        try:
            out = [parse(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be {accepted}, not {shown(text)}") \
                from None
        if len(set(out)) != len(out):
            raise argparse.ArgumentTypeError(f"{option} must not repeat a value, not {shown(text)}")
        return out
    return convert


def _ber(text):
    value = float(text)
    if not 0 <= value <= 0.5:
        raise ValueError(text)
    return value


def _member(choices):
    def parse(text):
        if text not in choices:
            raise ValueError(text)
        return text
    return parse


def add_parser(sub):
    from ..gen.faultmodel import SITE_CLASSES
    from ..gen.rns.faultmodel import RNS_SITE_CLASSES
    from ..nets.faults import ENGINES, default_bers
    SITE_CLASSES = tuple(dict.fromkeys(SITE_CLASSES + RNS_SITE_CLASSES))
    p = sub.add_parser(
        "faults", help="fault-injection campaigns: accuracy and output error against BER",
        description="Operation-level fault injection (Xue et al., DAC 2022: bit flips on the "
                    "results of multiplies and adds, multiplies at twice the BER) into the "
                    "integer models of the direct, F(2,3) and F(4,3) layer engines running the "
                    "reference int8 CNN. Every value sits in the register width the engine "
                    "gives it. Studies: top-1 accuracy against BER, each layer's output error "
                    "against BER, and each site class's vulnerability (chance that one flip "
                    "corrupts the layer output, times its bits). Writes faults.json, "
                    "faults.csv and PNG plots into OUT and prints a table.")
    p.add_argument("--rtl", metavar="DIR", default=None,
                   help="instead of the model studies: an RTL campaign on the binary layer "
                        "engine or the tile engine (binary or RNS) generated into DIR "
                        "(winogen generate conv|direct|tile), under Verilator: --injections bit flips at the "
                        "manifest's fault_sites, each output beat (tile) checked against the "
                        "fault model bit for bit, each injection classified masked, sdc or "
                        "detected")
    p.add_argument("--injections", type=integer("--injections", "an integer from 1 to 100000",
                                                 1, 100000),
                   default=None, help="RTL flips with --rtl (default: 1000)")
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="folder for faults.json, faults.csv, accuracy.png, error.png, "
                        "vulnerability.png")
    p.add_argument("--study", type=_list("--study", _member(STUDIES),
                                         f"a comma-separated list of {', '.join(STUDIES)}"),
                   default=list(STUDIES), help=f"studies to run (default: {','.join(STUDIES)})")
    p.add_argument("--engines", type=_list("--engines", _member(tuple(ENGINES)),
                                           f"a comma-separated list of {', '.join(ENGINES)}"),
                   default=list(ENGINES), help=f"engines to compare (default: {','.join(ENGINES)})")
    p.add_argument("--bers", type=_list("--bers", _ber, "a comma-separated list of bit error "
                                                        "rates in [0, 0.5]"),
                   default=None, help="bit error rates (default: "
                                      + ",".join(f"{b:g}" for b in default_bers()) + ")")
    p.add_argument("--classes", type=_list("--classes", _member(SITE_CLASSES),
                                           f"a comma-separated list of {', '.join(SITE_CLASSES)}"),
                   default=None, help="inject only into these site classes (default: every "
                                      "class an engine has); accuracy and error studies")
    p.add_argument("--images", type=integer("--images", "an integer from 1 to 359", 1, 359),
                   default=359, help="test images (default: all 359)")
    p.add_argument("--trials", type=integer("--trials", "an integer from 1 to 100", 1, 100),
                   default=2, help="independent fault draws per BER (default: 2)")
    p.add_argument("--flips", type=integer("--flips", "an integer from 1 to 100000", 1, 100000),
                   default=500, help="single flips per engine and site class in the "
                                     "vulnerability study (default: 500)")
    p.add_argument("--seed", type=integer("--seed", "an integer from 0 to 2**32 - 1", 0,
                                          2 ** 32 - 1),
                   default=0, help="seed of every fault draw (default: 0)")
    p.add_argument("--harden", metavar="ENGINE=SPEC", action="append", default=[],
                   help="also run the accuracy and error studies on ENGINE hardened by SPEC: "
                        "CLASS:tmr|dmr[,...] (as winogen generate --harden) or auto:BUDGET "
                        "(tmr on the classes that remove the most corrupting flips per LUT4, "
                        "within BUDGET x the compute blocks' LUT4; uses this run's "
                        "vulnerability study and a Yosys cost estimate, and prints the "
                        "chosen classes); repeatable")
    p.add_argument("--costs", action="store_true",
                   help="vulnerability study: also rank the classes per LUT4 of their hardware "
                        "(Yosys synth_ecp5 -noflatten per engine, up to a minute each; one "
                        "MULT18X18D counted as 100 LUT4)")
    p.add_argument("--json", action="store_true", help="print the JSON report")
    add_executor_arguments(p, "work items (an engine, a BER, a draw, a chunk of images; "
                              "with --rtl, a simulation of up to 1000 injections) run")
    p.set_defaults(func=run)
    return p


class _Progress:
    """A bar on a terminal, else a line every tenth of the work."""

    def __init__(self, title, stream=None):
        stream = sys.stderr if stream is None else stream      # the current one, not import's
        self.title, self.stream, self.start, self.shown = title, stream, time.monotonic(), -1
        self.tty = stream.isatty()

    def __call__(self, done, total, index=None):
        elapsed = time.monotonic() - self.start
        if self.tty:
            filled = int(30 * done / total)
            self.stream.write(f"\r{self.title} [{'#' * filled}{'.' * (30 - filled)}] "
                              f"{done}/{total} ({elapsed:.0f} s)")
            if done == total:
                self.stream.write("\n")
        else:
            tenth = 10 * done // total
            if tenth == self.shown:
                return
            self.shown = tenth
            self.stream.write(f"{self.title}: {done}/{total} items ({elapsed:.0f} s)\n")
        self.stream.flush()


def run(args):
    from ..nets.digits import load_digits_int8, split
    from ..nets.netfile import load_network
    from ..nets.train import NETWORK
    check_output_folder("--output", args.output)
    if args.rtl is not None:
        return _run_rtl(args)
    if args.injections is not None:
        raise UserError("--injections applies with --rtl only")
    if args.costs and "vulnerability" not in args.study:
        raise UserError("--costs applies to the vulnerability study; add vulnerability to "
                        "--study")
    check_executor_args(args)
    hardened = _parse_hardening(args)
    if args.classes is not None and args.study == ["vulnerability"]:
        raise UserError("--classes does not apply to --study vulnerability (it measures "
                        "every class)")
    import numpy as np
    from ..nets import faults as F
    network = load_network(NETWORK)
    layers = list(network.layers)
    x, y = load_digits_int8()
    _, _, x_test, y_test = split(x, y)
    images, labels = x_test[:args.images].astype(np.int64), y_test[:args.images]
    bers = args.bers if args.bers is not None else F.default_bers()
    for engine in args.engines:
        _check_classes(F, engine, layers, images, args.classes)
    report = {"network": str(NETWORK.name), "images": len(images), "seed": args.seed,
              "engines": args.engines, "bers": bers, "classes": args.classes,
              "fault_model": "operation level: bit flips on the results of every operation "
                             "class, uniformly over the register bits, products at 2x BER; "
                             "binomial number of flips per layer and batch"}
    executor = executor_from_args(args, kind="process")
    with executor:
        _campaigns(args, F, layers, images, labels, bers, hardened, report, executor)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "faults.json").write_text(json.dumps(report, indent=2) + "\n")
    _write_csv(out / "faults.csv", report)
    report["plots"] = _plots(out, report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
        print(f"wrote {out / 'faults.json'}, {out / 'faults.csv'}"
              + "".join(f", {out / f}" for f in report["plots"]))
    return 0


def _campaigns(args, F, layers, images, labels, bers, hardened, report, executor):
    """Run the studies ``args.study`` asks for into ``report``, on ``executor``."""
    report["executor"] = executor.describe()
    common = dict(engines=tuple(args.engines), seed=args.seed, executor=executor)
    start = time.monotonic()
    if "vulnerability" in args.study or any(spec.startswith("auto:") for _, _, spec in hardened):
        vul_engines = tuple(dict.fromkeys(list(args.engines) + [e for _, e, _ in hardened]))
        report["vulnerability"] = F.vulnerability_campaign(
            layers, images, flips=args.flips, progress=_Progress("vulnerability"),
            engines=vul_engines, seed=args.seed, executor=executor)
    variants = {}
    for label, engine, spec in hardened:
        if spec.startswith("auto:"):
            from ..gen.harden import parse_harden
            budget = parse_harden(spec)[1]
            config = F.engine_config(engine, layers, images.shape[1:])
            print(f"{label}: estimating block costs with Yosys ...", file=sys.stderr, flush=True)
            costs = F.block_costs_of(config)
            chosen, table = F.auto_harden(config, report["vulnerability"]["classes"][engine],
                                          costs, budget)
            spec = ",".join(f"{c}:{s}" for c, s in chosen)
            report.setdefault("auto_harden", {})[label] = {"harden": spec, **table}
            print(f"{label}: --harden {spec or '(nothing fits the budget)'}", file=sys.stderr)
        variants[label] = (engine, spec)
    if "accuracy" in args.study:
        report["accuracy"] = F.accuracy_campaign(
            layers, images, labels, bers=bers, trials=args.trials, classes=args.classes,
            progress=_Progress("accuracy"), harden=variants, seed=args.seed,
            engines=tuple(args.engines) + tuple(variants), executor=executor)
    if "error" in args.study:
        report["error"] = F.layer_error_campaign(
            layers, images, bers=[b for b in bers if b], trials=args.trials,
            classes=args.classes, progress=_Progress("layer error"), harden=variants,
            **{**common, "engines": tuple(args.engines) + tuple(variants)})
    if "vulnerability" not in args.study:
        report.pop("vulnerability", None)
    elif args.costs:
        _rank_per_lut(F, layers, images, report["vulnerability"])
    report["wall_seconds"] = round(time.monotonic() - start, 1)


_MODEL_ONLY = ("--study", "--engines", "--bers", "--images", "--trials", "--flips",
               "--harden", "--costs")


def _run_rtl(args):
    """``--rtl DIR``: the RTL campaign of :func:`winogen.sim.faults.rtl_fault_campaign`."""
    from ..gen.manifest import ManifestError, find_manifest
    defaults = {"--study": list(STUDIES), "--engines": None, "--bers": None, "--images": 359,
                "--trials": 2, "--flips": 500, "--harden": [], "--costs": False}
    from ..nets.faults import ENGINES
    defaults["--engines"] = list(ENGINES)
    for flag in _MODEL_ONLY:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value != defaults[flag]:
            raise UserError(f"{flag} does not apply with --rtl (the model studies' option)")
    try:
        manifest_path = find_manifest(args.rtl)
    except (ManifestError, OSError) as exc:
        raise UserError(f"--rtl must be a folder of winogen generate, not {shown(args.rtl)} "
                        f"({exc})") from None
    manifest = json.loads(Path(manifest_path).read_text())
    if "fault_sites" not in manifest:
        raise UserError(f"--rtl must be an engine whose manifest lists fault_sites (generate "
                        f"conv|direct with mul or adder PEs, or tile), not the "
                        f"{manifest.get('kind', '?')} engine in {shown(args.rtl)}")
    from ..sim.faults import check_fault_sites
    try:
        check_fault_sites(Path(manifest_path), manifest)
    except (ValueError, OSError, KeyError) as exc:
        raise UserError(f"--rtl: {exc}") from None
    sites = manifest["fault_sites"]["classes"]
    if args.classes is not None:
        missing = [c for c in args.classes if c not in sites]
        if missing:
            raise UserError(f"--classes: the engine in {shown(args.rtl)} has no "
                            f"{', '.join(missing)} registers")
    check_executor_args(args)
    from ..sim.faults import rtl_fault_campaign
    injections = args.injections or 1000
    # Each work item is one simulation: its time goes to a Verilator process, so local
    # jobs are threads.
    executor = executor_from_args(args, kind="thread")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    with executor:
        print(f"RTL campaign: {injections} flips on {manifest['top']} under Verilator (the "
              f"first build takes a minute; {executor.describe()}) ...", file=sys.stderr,
              flush=True)
        summary = rtl_fault_campaign(args.rtl, injections, seed=args.seed,
                                     classes=args.classes, check=False,
                                     report=out / "faults_rtl.json", workdir=out / "sim",
                                     executor=executor)
        summary["executor"] = executor.describe()
        (out / "faults_rtl.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['injections']} injections, {summary['agree']} agree with the fault "
              f"model bit for bit, {summary['disagree']} disagree")
        print(f"  {'class':18s} {'injections':>10s} {'masked':>8s} {'sdc':>8s} {'detected':>9s}")
        for cls, e in summary["by_class"].items():
            print(f"  {cls:18s} {e['injections']:10d} {e['masked']:8d} {e['sdc']:8d} "
                  f"{e['detected']:9d}")
        print(f"wrote {out / 'faults_rtl.json'}")
    return 0 if summary["disagree"] == 0 else 1


def _rank_per_lut(F, layers, images, vul):
    """Add each class's LUT4-equivalent cost and corrupting flips per LUT4 (Yosys)."""
    vul["ranking_per_lut4"] = {}
    for engine, classes in vul["classes"].items():
        print(f"{engine}: block costs with Yosys ...", file=sys.stderr, flush=True)
        costs = F.block_costs_of(F.engine_config(engine, layers, images.shape[1:]))
        for cls, v in classes.items():
            c = costs["classes"].get(cls, {"logic": 0, "dsp": 0})
            lut = c["logic"] + F.DSP_AS_LUT4 * c["dsp"]
            v["lut4_equivalent"] = lut
            v["corruptions_per_lut4"] = v["expected_corruptions_per_ber"] / lut if lut else None
        vul["ranking_per_lut4"][engine] = sorted(
            (c for c in classes if classes[c]["corruptions_per_lut4"] is not None),
            key=lambda c: -classes[c]["corruptions_per_lut4"])


def _parse_hardening(args):
    """``[(label, engine, spec)]`` of ``--harden ENGINE=SPEC``, checked before any work."""
    from ..gen.harden import parse_harden
    from ..nets.faults import ENGINES
    out = []
    for text in args.harden:
        engine, sep, spec = text.partition("=")
        if not sep or engine not in ENGINES:
            raise UserError(f"--harden must be ENGINE=SPEC with ENGINE one of "
                            f"{', '.join(ENGINES)}, not {shown(text)}")
        try:
            parsed = parse_harden(spec)
        except ValueError as exc:
            raise UserError(f"--harden {engine}=: {exc}") from None
        if not parsed:
            raise UserError(f"--harden needs at least one CLASS:SCHEME or auto:BUDGET, not "
                            f"{shown(text)}")
        if parsed[0] != "auto":
            from ..gen.harden import engine_classes
            from ..gen.config import TileConfig
            from ..gen.layer import LayerConfig
            probe = LayerConfig(TileConfig(data_width=8, weight_width=8, **ENGINES[engine]),
                                p_in=4, p_out=4, output_width=8)
            missing = [c for c, _ in parsed if c not in engine_classes(probe)]
            if missing:
                raise UserError(f"--harden: the {engine} engine has no {', '.join(missing)} "
                                f"(it has {', '.join(engine_classes(probe))})")
        out.append((f"{engine}+{spec}", engine, spec))
    if out and not {"accuracy", "error"} & set(args.study):
        raise UserError("--harden applies to the accuracy and error studies; add one to "
                        "--study")
    if len({label for label, _, _ in out}) != len(out):
        raise UserError("--harden names the same hardening twice")
    return out


def _check_classes(F, engine, layers, images, classes):
    """Refuse a site class an engine does not have (before any work)."""
    if classes is None:
        return
    config = F.engine_config(engine, layers, images.shape[1:])
    have = set()
    a = images[:1]
    for index, layer in enumerate(layers):
        xs, w, padding = F._engine_layer(layer, a)
        have |= set(F._layer_model(config, index, layer, xs, w, padding).site_classes(1))
        from ..nets.netfile import layer_forward_int
        a = layer_forward_int(layer, a)
    missing = [c for c in classes if c not in have]
    if missing:
        raise UserError(f"--classes: the {engine} engine has no {', '.join(missing)} "
                        f"(it has {', '.join(sorted(have))})")


def _rows(report):
    """Flat rows for the CSV: study, engine, ber, layer or site, metric, value."""
    rows = []
    acc = report.get("accuracy")
    if acc:
        for engine in acc["engines"]:
            for ber, a in zip(acc["bers"], acc["accuracy"][engine]):
                for key in ("mean", "min", "max"):
                    rows.append(["accuracy", engine, ber, "network", f"top1_{key}", a[key]])
    err = report.get("error")
    if err:
        for engine in err["engines"]:
            for layer, per_ber in err["error"][engine].items():
                for ber, e in zip(err["bers"], per_ber):
                    for key in ("mean_abs", "max_abs", "corrupted"):
                        rows.append(["error", engine, ber, layer, key, e[key]])
    vul = report.get("vulnerability")
    if vul:
        for engine, classes in vul["classes"].items():
            for site, v in classes.items():
                for key in ("corrupt_probability", "mean_abs_error", "bits_per_image",
                            "expected_corruptions_per_ber"):
                    rows.append(["vulnerability", engine, "", site, key, v[key]])
    return rows


def _write_csv(path, report):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["study", "engine", "ber", "layer_or_site", "metric", "value"])
        w.writerows(_rows(report))


def _network_error(err, engine):
    """Per BER: mean absolute error and corrupted fraction averaged over the layers."""
    per_layer = list(err["error"][engine].values())
    return ([sum(l[b]["mean_abs"] for l in per_layer) / len(per_layer) for b in range(len(err["bers"]))],
            [sum(l[b]["corrupted"] for l in per_layer) / len(per_layer) for b in range(len(err["bers"]))])


def _plots(out, report):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)
    acc = report.get("accuracy")
    if acc:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        bers = acc["bers"]
        for engine in acc["engines"]:
            pts = [(b, a["mean"] * 100) for b, a in zip(bers, acc["accuracy"][engine]) if b]
            line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=engine)
            clean = [a["mean"] * 100 for b, a in zip(bers, acc["accuracy"][engine]) if not b]
            if clean:
                ax.axhline(clean[0], color=line.get_color(), linestyle=":", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("bit error rate (products at 2x)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(f"Reference CNN, {acc['images']} test images, mean of {acc['trials']} draws")
        ax.legend()
        ax.grid(alpha=0.3)
        save(fig, "accuracy.png")
    err = report.get("error")
    if err:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        for engine in err["engines"]:
            mae, corrupted = _network_error(err, engine)
            a1.plot(err["bers"], mae, marker="o", label=engine)
            a2.plot(err["bers"], [c * 100 for c in corrupted], marker="o", label=engine)
        for ax, label in ((a1, "mean |error| per output (int8 LSB)"),
                          (a2, "outputs corrupted (%)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("bit error rate")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle("Layer output error, averaged over the network's layers (fault-free inputs)")
        save(fig, "error.png")
    vul = report.get("vulnerability")
    if vul:
        import numpy as np
        sites = [s for s in ("input_transform", "filter_transform", "products", "lane_sums",
                             "accumulation", "output_transform", "descale", "requantization")
                 if any(s in vul["classes"][e] for e in vul["classes"])]
        fig, ax = plt.subplots(figsize=(8, 4.2))
        engines = list(vul["classes"])
        width = 0.8 / len(engines)
        for k, engine in enumerate(engines):
            vals = [vul["classes"][engine].get(s, {}).get("expected_corruptions_per_ber", 0)
                    for s in sites]
            ax.bar(np.arange(len(sites)) + k * width, vals, width, label=engine)
        ax.set_xticks(np.arange(len(sites)) + width * (len(engines) - 1) / 2)
        ax.set_xticklabels(sites, rotation=25, ha="right")
        ax.set_ylabel("corrupting flips per image per unit BER")
        ax.set_yscale("log")
        ax.set_title("Site-class vulnerability: bits x factor x P(one flip corrupts)")
        ax.legend()
        save(fig, "vulnerability.png")
    return files


def _print_table(report):
    acc = report.get("accuracy")
    if acc:
        print("top-1 accuracy (%) against BER, mean over draws:")
        print("  " + "BER".ljust(10) + "".join(e.rjust(10) for e in acc["engines"]))
        for b, ber in enumerate(acc["bers"]):
            print("  " + f"{ber:g}".ljust(10)
                  + "".join(f"{acc['accuracy'][e][b]['mean'] * 100:10.1f}" for e in acc["engines"]))
    err = report.get("error")
    if err:
        print("layer output error, mean |error| per output / outputs corrupted, over layers:")
        print("  " + "BER".ljust(10) + "".join(e.rjust(20) for e in err["engines"]))
        table = {e: _network_error(err, e) for e in err["engines"]}
        for b, ber in enumerate(err["bers"]):
            print("  " + f"{ber:g}".ljust(10) + "".join(
                f"{table[e][0][b]:10.4f} {table[e][1][b] * 100:8.3f}%" for e in err["engines"]))
    vul = report.get("vulnerability")
    if vul:
        print("site-class vulnerability (P(one flip corrupts the layer output), bits per image, "
              "share of corrupting flips):")
        for engine, classes in vul["classes"].items():
            total = sum(v["expected_corruptions_per_ber"] for v in classes.values())
            print(f"  {engine}:")
            for site in vul["ranking"][engine]:
                v = classes[site]
                per_lut = (f"  {v['corruptions_per_lut4']:10.1f} per LUT4"
                           if v.get("corruptions_per_lut4") is not None else "")
                print(f"    {site:18s} {v['corrupt_probability']:6.3f} {v['bits_per_image']:>11,d} "
                      f"{v['expected_corruptions_per_ber'] / total * 100:6.1f}%{per_lut}")
