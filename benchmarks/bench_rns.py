"""Benchmark: RNS Winograd tile engines against binary Winograd and direct tiles.

Every engine computes m² outputs per clock; "equal output rate" columns divide by
m² (per output per clock). Columns: multipliers and their width, LUT4/FF/CCU2C/
MULT18X18D from Yosys ``synth_ecp5``, Fmax from nextpnr (``--place``), and the
converters' share of the LUTs: the forward converters (binary V into every
channel) and the reverse converters (mixed radix, redundant check, descale) are
synthesized alone, as combinational blocks, with the same flow.

    python benchmarks/bench_rns.py [--place] [--freq 200] [--json] [--out DIR]
    python benchmarks/bench_rns.py --faults 5000     # long fault-injection sweep (Verilator)
    python benchmarks/bench_rns.py --layer-faults 1000   # the same on the RNS layer engine
    python benchmarks/bench_rns.py --converter-fmax      # reverse converter Fmax per staging
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from winogen.fpga.synth import synth
from winogen.gen.report import markdown_table
from winogen.gen.config import TileConfig
from winogen.gen.rns import RNSTileConfig, converter_levels
from winogen.hw.constmat import ExactDivider
from winogen.hw.emit import to_verilog
from winogen.hw.generate import generate_tile, write_outputs
from winogen.hw.rns import MixedRadixConverter, forward_convert, generate_rns_tile

ENGINES = [
    ("direct F(4,3)", TileConfig(4, 3, 8, 8, algorithm="direct")),
    ("binary F(4,3)", TileConfig(4, 3, 8, 8)),
    # The same moduli on the binary engine's tile: the smallest RNS engine that fits the
    # LFE5U-85F's 156 multipliers (4 x 36), so it has an Fmax.
    ("RNS F(4,3)", RNSTileConfig(4, 3, moduli="8bit-primes-4", redundant_moduli=1)),
    ("RNS F(4,3) partial", RNSTileConfig(4, 3, moduli="8bit-primes-4", redundant_moduli=1,
                                         forward_reduction="partial")),
    ("RNS F(6,3)", RNSTileConfig(6, 3, moduli="8bit-primes-4", redundant_moduli=1)),
    # The same with V only folded into an 18-bit DSP operand (forward_reduction="partial").
    ("RNS F(6,3) partial", RNSTileConfig(6, 3, moduli="8bit-primes-4", redundant_moduli=1,
                                         forward_reduction="partial")),
    # Large tile, n = 12: the three non-redundant moduli of the preset (251, 241, 239).
    ("RNS F(10,3)", RNSTileConfig(10, 3, moduli=(251, 241, 239))),
]


class ForwardConverters(wiring.Component):
    """The RNS tile's forward converters alone: binary V (n²) into every channel
    (reduced, or with ``forward_reduction="partial"`` folded into the PE operand)."""

    def __init__(self, cfg):
        self.cfg = cfg
        w = max(iv.width for iv in cfg.v_intervals)
        super().__init__({"v": In(data.ArrayLayout(signed(w), cfg.n ** 2)),
                          "r": Out(data.ArrayLayout(signed(cfg.multiplier_width + 1),
                                                    len(cfg.moduli) * cfg.n ** 2))})

    def elaborate(self, platform):
        m = Module()
        cfg, n2 = self.cfg, self.cfg.n ** 2
        for i, mi in enumerate(cfg.moduli):
            for j in range(n2):
                y = forward_convert(m, cfg, self.v[j], cfg.v_intervals[j], mi, f"c{i}_{j}")
                m.d.comb += self.r[i * n2 + j].eq(y)
        return m


class ReverseConverters(wiring.Component):
    """The RNS tile's reverse converters alone: m² mixed-radix converters and descalers."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.cfg_comb = cfg.replace(convert_stages=0)
        k, mm = len(cfg.moduli), cfg.m ** 2
        super().__init__({"r": In(data.ArrayLayout(data.ArrayLayout(
                              signed(max(cfg.residue_widths) + 1), k), mm)),
                          "y": Out(data.ArrayLayout(signed(cfg.output_width), mm)),
                          "error": Out(mm)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg_comb
        for e in range(cfg.m ** 2):
            conv = MixedRadixConverter(cfg)
            m.submodules[f"convert{e}"] = conv
            for i in range(len(cfg.moduli)):
                m.d.comb += conv.r[i].eq(self.r[e][i])
            y = conv.y
            if cfg.scale_divisor != 1:
                div = ExactDivider(cfg.scale_divisor, cfg.result_interval,
                                   output_interval=cfg.output_interval)
                m.submodules[f"descale{e}"] = div
                m.d.comb += div.x.eq(y)
                y = div.y
            m.d.comb += [self.y[e].eq(y), self.error[e].eq(conv.error)]
        return m


class RegisteredConverter(wiring.Component):
    """One :class:`MixedRadixConverter` between input and output registers, so that
    nextpnr times its paths register to register (the engine's situation)."""

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({"r": In(data.ArrayLayout(signed(max(cfg.residue_widths) + 1),
                                                   len(cfg.moduli))),
                          "y": Out(signed(cfg.result_interval.width)), "error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.convert = conv = MixedRadixConverter(self.cfg)
        m.d.sync += [conv.r.eq(self.r), self.y.eq(conv.y), self.error.eq(conv.error)]
        return m


def converter_fmax(args):
    """Fmax of one reverse converter per ``convert_stages``, against the default (a
    register per level: ``convert_stages=None``)."""
    root = Path(args.out or tempfile.mkdtemp(prefix="winogen-bench-mrc-"))
    base_cfg = RNSTileConfig(4, 3, moduli="8bit-primes-4", redundant_moduli=1)
    k = len(base_cfg.moduli)
    rows, base = [], None
    chosen = args.converter_stages or list(range(converter_levels(k) + 1))
    for stages in [base_cfg.convert_stages] + [s for s in chosen
                                               if s != base_cfg.convert_stages]:
        cfg = base_cfg.replace(convert_stages=stages)
        name = f"mrc_{cfg.module_name}_s{cfg.converter_latency}"
        print(f"[converter, convert_stages={stages}] synthesizing and placing ...",
              file=sys.stderr, flush=True)
        row = {"convert_stages": stages, "converter_latency": cfg.converter_latency,
               "moduli": list(cfg.moduli)}
        row.update(_synth(_emit(RegisteredConverter(cfg), name, root / name), args, True))
        base = base or row["fmax_mhz"]
        row["fmax_vs_default"] = round(row["fmax_mhz"] / base, 2)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ["convert_stages", "converter_latency", "fmax_mhz", "fmax_vs_default", "lut4", "ff",
            "ccu2c"]
    rows = [dict(row, convert_stages="default (every level)") if row["convert_stages"] is None
            else row for row in rows]
    print(markdown_table(rows, cols))
    return 0


def _emit(component, name, out):
    text = to_verilog(component, name)
    write_outputs(out, name, text, {"name": name, "verilog": [f"{name}.v"], "top": name})
    return out


def _synth(out, args, place):
    rep = synth(out, "ecp5", freq_mhz=args.freq, place=place,
                progress=lambda s: print(f"    {s}", file=sys.stderr, flush=True))
    res, t = rep["resources"], rep.get("timing") or {}
    row = {"lut4": res["lut"], "ff": res["ff"], "ccu2c": res["carry"], "mult18x18d": res["dsp"],
           "fmax_mhz": None if t.get("fmax_mhz") is None else round(t["fmax_mhz"], 1)}
    if not rep["fits"]:
        row["fmax_mhz"] = "does not fit: " + rep["message"].split(": ", 1)[-1]
    return row


def compare(args):
    root = Path(args.out or tempfile.mkdtemp(prefix="winogen-bench-rns-"))
    rows, reverse_lut4 = [], {}
    for label, cfg in ENGINES:
        if args.only and not any(s in label for s in args.only):
            continue
        out = root / cfg.module_name
        t0 = time.monotonic()
        print(f"[{label}] generating {cfg.module_name} ...", file=sys.stderr, flush=True)
        rns = isinstance(cfg, RNSTileConfig)
        (generate_rns_tile if rns else generate_tile)(cfg, out)
        print(f"[{label}] synthesizing ...", file=sys.stderr, flush=True)
        row = {"engine": label, "name": cfg.module_name, "outputs_per_cycle": cfg.m ** 2,
               "multipliers": cfg.multipliers,
               "multiplier_width": (cfg.multiplier_description if rns
                                    else f"{cfg.v_width}x{cfg.u_width} signed"
                                    if cfg.algorithm == "winograd"
                                    else f"{cfg.data_width}x{cfg.weight_width} signed"),
               "moduli": list(cfg.moduli) if rns else None,
               "latency": cfg.latency}
        row.update(_synth(out, args, args.place))
        if rns:
            fwd = _emit(ForwardConverters(cfg), f"{cfg.module_name}_fwd",
                        root / "fwd" / cfg.module_name)
            row["forward_lut4"] = _synth(fwd, args, False)["lut4"]
            # The reverse converters do not depend on the forward reduction: synthesize once.
            key = cfg.replace(forward_reduction="full").module_name
            if key not in reverse_lut4:
                rev = _emit(ReverseConverters(cfg), f"{key}_rev", root / "rev" / key)
                reverse_lut4[key] = _synth(rev, args, False)["lut4"]
            row["reverse_lut4"] = reverse_lut4[key]
            row["converter_lut_share"] = round((row["forward_lut4"] + row["reverse_lut4"])
                                               / row["lut4"], 3)
        mm = cfg.m ** 2
        row["multipliers_per_output"] = round(row["multipliers"] / mm, 2)
        row["lut4_per_output"] = round(row["lut4"] / mm, 1)
        row["dsp_per_output"] = round(row["mult18x18d"] / mm, 2)
        row["seconds"] = round(time.monotonic() - t0, 1)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ["engine", "outputs_per_cycle", "multipliers", "multiplier_width",
            "multipliers_per_output", "mult18x18d", "dsp_per_output", "lut4", "lut4_per_output",
            "ff", "ccu2c", "fmax_mhz", "forward_lut4", "reverse_lut4", "converter_lut_share",
            "latency"]
    print(markdown_table(rows, cols))
    return 0


def faults(args):
    """A long fault-injection sweep on the F(4,3) redundant engine (Verilator)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import test_rns_verilator as T
    from winogen.sim import build as vbuild
    cfg = RNSTileConfig(4, 3, moduli="8bit-primes-4", redundant_moduli=1)
    vpath, jpath, manifest = T.generated(cfg)
    vlt = vpath.with_name("faults.vlt")
    vlt.write_text(T.FAULT_VLT)
    handle = vbuild.build([vpath, vlt], manifest["top"])
    report = Path(tempfile.mkdtemp()) / "faults.json"
    vbuild.run(handle, "winogen.sim.tb_rns", seed=args.seed, testcase="fault_injection",
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_FAULTS": str(args.faults),
                          "WINOGEN_CLEAN": str(args.faults), "WINOGEN_FAULT_SEED": str(args.seed),
                          "WINOGEN_FAULT_REPORT": str(report)})
    print(report.read_text())
    return 0


def layer_faults(args):
    """A long fault-injection sweep on the RNS F(4,3) layer engine (Verilator)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import test_layer_verilator as T
    from winogen.sim import build as vbuild
    handle, jpath = T.fault_build(T.ENGINES["rns_wino43_p2x1"])
    report = Path(tempfile.mkdtemp()) / "layer_faults.json"
    vbuild.run(handle, "winogen.sim.tb_layer", seed=args.seed, testcase="fault_injection",
               extra_env={"WINOGEN_MANIFEST": str(jpath),
                          "WINOGEN_FAULT_LAYERS": str(args.layer_faults),
                          "WINOGEN_CLEAN": str(max(args.layer_faults // 10, 1)),
                          "WINOGEN_FAULT_SEED": str(args.seed),
                          "WINOGEN_FAULT_REPORT": str(report)})
    print(report.read_text())
    return 0


def _stage_list(text):
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be integers separated by commas, not {text!r}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--place", action="store_true", help="also place and route (Fmax)")
    ap.add_argument("--freq", type=float, default=200.0, help="nextpnr constraint in MHz")
    ap.add_argument("--only", action="append", default=None, metavar="TEXT",
                    help="only the engines whose label contains TEXT (repeatable), e.g. 'RNS F(6'")
    ap.add_argument("--json", action="store_true", help="print JSON rows")
    ap.add_argument("--out", default=None, help="keep the generated designs here")
    ap.add_argument("--faults", type=int, default=None,
                    help="instead: run this many injected faults (and as many clean tiles)")
    ap.add_argument("--layer-faults", type=int, default=None, metavar="N",
                    help="instead: N layers of the RNS layer engine, one injected fault each "
                         "(and N/10 fault-free layers)")
    ap.add_argument("--seed", type=int, default=5, help="fault sweep seed")
    ap.add_argument("--converter-fmax", action="store_true",
                    help="instead: Fmax of one registered reverse converter (F(4,3), preset "
                         "moduli + redundant) for every convert_stages, against the default")
    ap.add_argument("--converter-stages", type=_stage_list, default=None, metavar="LIST",
                    help="with --converter-fmax: only these convert_stages, e.g. 2,4,6")
    args = ap.parse_args(argv)
    if args.converter_fmax:
        return converter_fmax(args)
    if args.layer_faults:
        return layer_faults(args)
    return faults(args) if args.faults else compare(args)


if __name__ == "__main__":
    sys.exit(main())
