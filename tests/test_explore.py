"""Design-space exploration (winogen.fpga.explore): sweep, cache, tables, plots, errors."""

import csv
import itertools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from winogen.fpga.explore import (COLUMNS, GRID_KEYS, PUBLISHED, _label, configurations,
                                  cycle_figures, explore, normalize_grid)
from winogen.gen.config import TileConfig
from winogen.gen.rns import MODULI_PRESETS, RNSTileConfig, select_moduli

pytestmark = pytest.mark.synth

WINOGEN = str(Path(sys.executable).with_name("winogen"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Eight tiny engines: F(2,2) and F(2,3) at 4 bits, Winograd and direct, pipeline 1 and 2.
GRID = {"m": [2], "r": [2, 3], "widths": [4], "algorithms": ["winograd", "direct"],
        "pipeline": [1, 2]}
GRID_TOML = """\
m = 2
r = [2, 3]
widths = [4]
algorithms = ["winograd", "direct"]
pipeline = [1, 2]
"""


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(text):
    return None if text == "" else float(text)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore")
    lines = []
    t0 = time.monotonic()
    rows = explore(GRID, out, target="ecp5", place=False, progress=lines.append)
    first = time.monotonic() - t0
    t0 = time.monotonic()
    again = explore(GRID, out, target="ecp5", place=False)
    second = time.monotonic() - t0
    return out, rows, again, first, second, lines


def test_outputs_exist(sweep):
    out = sweep[0]
    for name in ("explore.csv", "explore.json", "explore.md", "plots.json", "lut_vs_dsp.png",
                 "throughput_vs_resources.png", "ops_per_dsp.png", "latency_vs_fmax.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name


def test_rows_cover_the_grid(sweep):
    out, rows, *_ = sweep
    table = read_csv(out / "explore.csv")
    assert list(table[0]) == list(COLUMNS)
    expected = set(itertools.product(GRID["algorithms"], GRID["m"], GRID["r"], GRID["pipeline"]))
    got = [(r["algorithm"], int(r["m"]), int(r["r"]), int(r["pipeline"])) for r in table]
    assert len(got) == len(expected) == len(rows) == 8 and set(got) == expected
    assert len({r["label"] for r in table}) == len(table)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "cached"} for r in rs]
    assert strip(json.loads((out / "explore.json").read_text())["rows"]) == strip(rows)
    assert all(r["error"] == "" and r["fits"] == "True" for r in table)


def test_figures_follow_from_the_configuration(sweep):
    out, rows, *_ = sweep
    for row in rows:
        m, r, n = row["m"], row["r"], row["m"] + row["r"] - 1
        cfg = TileConfig(m, r, 4, 4, algorithm=row["algorithm"],
                         input_stages=row["pipeline"], output_stages=row["pipeline"],
                         filter_stages=row["pipeline"], pe_stages=min(row["pipeline"], 2),
                         descale_stages=min(row["pipeline"], 1))
        assert row["multipliers"] == (n * n if row["algorithm"] == "winograd" else m * m * r * r)
        assert row["latency"] == cfg.latency
        assert row["outputs_per_cycle"] == m * m
        assert row["ops_per_cycle"] == 2 * m * m * r * r
        # 4-bit products still map to MULT18X18D blocks, one per multiplier.
        assert row["dsp"] == row["multipliers"]
        assert row["ops_per_dsp_cycle"] == pytest.approx(row["ops_per_cycle"] / row["dsp"])
        assert row["fmax_mhz"] is None and row["gops"] is None  # not placed
        # The row is the cached synthesis report, not a recomputation.
        (report,) = (out / "cache" / row["key"]).glob("design/reports/ecp5.json")
        res = json.loads(report.read_text())["resources"]
        assert {k: row[k] for k in res} == res
    # Winograd beats direct on operations per DSP for every F(m, r), by (m r / n)².
    for r in GRID["r"]:
        w = [x for x in rows if x["r"] == r and x["algorithm"] == "winograd"]
        d = [x for x in rows if x["r"] == r and x["algorithm"] == "direct"]
        n = 2 + r - 1
        for a, b in zip(w, d):
            assert a["ops_per_dsp_cycle"] / b["ops_per_dsp_cycle"] == pytest.approx((2 * r / n) ** 2)


def test_second_run_is_cached_and_fast(sweep):
    out, rows, again, first, second, lines = sweep
    assert all(not r["cached"] for r in rows) and all(r["cached"] for r in again)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "cached"} for r in rs]
    assert strip(again) == strip(rows)
    assert second < 0.1 * first, (first, second)
    # One progress line per configuration, with its elapsed time.
    done = [ln for ln in lines if ln.startswith("[")]
    assert len(done) == len(rows) and all(" s (total " in ln for ln in done)


def test_pngs_are_valid(sweep):
    out = sweep[0]
    plots = json.loads((out / "plots.json").read_text())
    assert set(plots["plots"]) == {"lut_vs_dsp", "throughput_vs_resources", "ops_per_dsp",
                                   "latency_vs_fmax"}
    for entry in plots["plots"].values():
        path = out / entry["file"]
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        pixels = mpimg.imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300
        assert np.ptp(pixels[..., :3]) > 0.5  # something is drawn


def test_plots_hold_every_row(sweep):
    out = sweep[0]
    table = read_csv(out / "explore.csv")
    plots = json.loads((out / "plots.json").read_text())["plots"]
    rows_by_label = {r["label"]: r for r in table}

    def pairs(xkey, ykey):
        return sorted((num(r[xkey]), num(r[ykey])) for r in table)

    for entry in plots.values():
        assert entry["omitted"] == []
        for panel in entry["panels"]:
            assert panel["points"] == len(table)
            assert sorted(panel["labels"]) == sorted(rows_by_label)
    (panel,) = plots["lut_vs_dsp"]["panels"]
    assert sorted(map(tuple, panel["xy"])) == pairs("dsp", "lut")
    for panel in plots["throughput_vs_resources"]["panels"]:
        assert panel["y"] == "ops_per_cycle"  # no Fmax without place and route
        assert sorted(map(tuple, panel["xy"])) == pairs(panel["x"], "ops_per_cycle")
        # The marked front is exactly the non-dominated set (fewer resources, more ops).
        pts = [(num(r[panel["x"]]), num(r["ops_per_cycle"])) for r in table]
        front = {p for p in pts if not any(q[0] <= p[0] and q[1] >= p[1] and q != p
                                           for q in pts)}
        assert set(map(tuple, panel["pareto"])) == front
    (panel,) = plots["ops_per_dsp"]["panels"]
    heights = [y for _, y in sorted(panel["xy"])]
    assert heights == pytest.approx([num(rows_by_label[lab]["ops_per_dsp_cycle"])
                                     for lab in panel["labels"]])
    (panel,) = plots["latency_vs_fmax"]["panels"]
    assert panel["x"] == "pipeline"  # Fmax not measured
    assert sorted(map(tuple, panel["xy"])) == pairs("pipeline", "latency")


def test_markdown_table_and_comparison(sweep):
    out = sweep[0]
    text = (out / "explore.md").read_text()
    table = read_csv(out / "explore.csv")
    for row in table:
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {row['label']} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == row["lut"] and cells[4] == row["dsp"]
    for pub in PUBLISHED:
        assert pub["design"] in text and f"{pub['gops_per_dsp']:.2f}" in text
    best = max(table, key=lambda r: float(r["ops_per_dsp_cycle"]))
    assert f"**{float(best['ops_per_dsp_cycle']):.2f}** ({best['label']}" in text


def test_cli_with_toml_grid_reuses_the_cache(sweep, tmp_path):
    # A copy of the cache: the sweep's own folder stays as the other tests expect it.
    out = tmp_path / "copy"
    shutil.copytree(sweep[0] / "cache", out / "cache")
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID_TOML)
    # A clock without place and route would be ignored: refused, before any work.
    run = subprocess.run([WINOGEN, "explore", "--grid", str(grid), "--no-place", "--freq", "150",
                          "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.splitlines() == [
        "winogen: error: --freq does not apply with --no-place, not 150"]
    run = subprocess.run([WINOGEN, "explore", "--grid", str(grid), "--no-place",
                          "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    progress = [ln for ln in run.stderr.splitlines() if "] " in ln]
    assert len(progress) == 8 and all(": cached " in ln for ln in progress)
    assert "8 configurations" in run.stdout


def test_nodsp_is_a_different_configuration(sweep, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(sweep[0] / "cache", out / "cache")
    grid = {"m": 2, "r": 2, "widths": 4, "algorithms": ["winograd", "direct"], "pipeline": 1}
    rows = explore(grid, out, place=False, nodsp=True, jobs=2)  # two at once
    assert [r["algorithm"] for r in rows] == ["winograd", "direct"]
    for row in rows:
        assert not row["cached"] and row["dsp"] == 0 and row["lut"] > 0
        assert row["ops_per_dsp_cycle"] is None
    plots = json.loads((out / "plots.json").read_text())["plots"]
    assert plots["lut_vs_dsp"]["panels"][0]["points"] == 2
    assert plots["ops_per_dsp"]["panels"][0]["points"] == 0
    assert plots["ops_per_dsp"]["omitted"] == [
        {"label": r["label"], "reason": "no DSP blocks used (multipliers in LUT logic)"}
        for r in rows]


def test_dsp_build_axis(tmp_path):
    grid = {"m": 2, "r": 3, "widths": 8, "algorithms": "winograd", "pipeline": 2,
            "pe": ["mul", "adder"], "dsp": ["inferred", "ecp5"]}
    rows = explore(grid, tmp_path, place=False)
    # The adder PE has one build: its two grid points collapse into one row.
    assert [(r["pe"], r["dsp_build"]) for r in rows] == [
        ("mul", "inferred"), ("mul", "ecp5"), ("adder", "inferred")]
    inferred, ecp5, adder = rows
    assert ecp5["label"].endswith(" ecp5") and ecp5["name"].endswith("_ecp5")
    assert ecp5["dsp"] == inferred["dsp"] == inferred["multipliers"] == 16
    assert ecp5["latency"] == inferred["latency"]
    # The PE registers moved into the blocks.
    assert ecp5["ff"] < inferred["ff"]
    assert adder["dsp"] == 0 and adder["error"] in ("", None)


def test_placed_sweep_reports_fmax_and_gops(tmp_path):
    grid = {"m": 2, "r": 2, "widths": 4, "algorithms": ["winograd", "direct"], "pipeline": 1}
    rows = explore(grid, tmp_path, place=True, freq_mhz=100)
    plots = json.loads((tmp_path / "plots.json").read_text())["plots"]
    for row in rows:
        assert row["fmax_mhz"] > 0 and row["constraint_mhz"] == 100
        assert row["timing_met"] == (row["fmax_mhz"] >= 100)
        assert row["gops"] == pytest.approx(row["ops_per_cycle"] * row["fmax_mhz"] / 1000)
        assert row["gops_per_dsp"] == pytest.approx(row["gops"] / row["dsp"])
        assert row["latency_ns"] == pytest.approx(row["latency"] * 1000 / row["fmax_mhz"])
    (panel,) = plots["latency_vs_fmax"]["panels"]
    assert panel["x"] == "fmax_mhz"
    assert sorted(map(tuple, panel["xy"])) == sorted((r["fmax_mhz"], r["latency"]) for r in rows)
    assert [p["y"] for p in plots["throughput_vs_resources"]["panels"]] == ["gops", "gops"]
    gops_panel = plots["ops_per_dsp"]["panels"][1]
    assert sorted(y for _, y in gops_panel["xy"]) == pytest.approx(
        sorted(r["gops_per_dsp"] for r in rows))
    text = (tmp_path / "explore.md").read_text()
    best = max(rows, key=lambda r: r["gops_per_dsp"])
    assert f"| this sweep, best: {best['label']} | {best['gops_per_dsp']:.2f} |" in text


def test_layer_cycle_model():
    from winogen.gen.layer import LayerConfig, LayerRun
    layer = LayerConfig(TileConfig(2, 3, 8, 8), max_height=8, max_width=6, max_cin=4,
                        max_cout=2, p_in=2, p_out=1)
    fig = cycle_figures(layer, latency=10)
    # Same padding: 8x6 outputs in 4x3 tiles of 2x2, 2 input-channel groups, 2 outputs.
    compute = 4 * 3 * 2 * 2
    # the streaming engine's row-level model (checked against Verilator in
    # test_layer_verilator.py): loading overlaps compute, so the layer takes less than
    # its phases one after another and at least its activation beats and its compute
    total = layer.sequence_cycles([LayerRun(8, 6, 4, 2, padding=1)], 10)
    serial = 1 + 4 * 2 + 8 * 6 * 2 + compute + 10
    assert max(8 * 6 * 2, compute) < total < serial
    assert fig["compute_cycles"] == compute and fig["layer_cycles"] == total
    assert fig["outputs_per_cycle"] == pytest.approx(2 * 8 * 6 / total)
    assert fig["macs_per_cycle"] == pytest.approx(2 * 8 * 6 * 4 * 9 / total)
    valid = cycle_figures(layer, 10, LayerRun(8, 6, 4, 2, padding=0))
    assert valid["compute_cycles"] == 3 * 2 * 2 * 2
    tile = cycle_figures(TileConfig(4, 3), latency=7)
    assert tile["outputs_per_cycle"] == 16 and tile["macs_per_cycle"] == 16 * 9


@pytest.mark.parametrize("grid, message", [
    ({"m": [2], "foo": [1]}, r"^grid key must be one of .*, not 'foo'$"),
    ({"m": [0]}, r"^m must be positive integers, not 0$"),
    ({"m": "2,x"}, r"^m must be positive integers, not 'x'$"),
    ({"widths": ["8y4"]}, r"^widths must be integers from 2 to 16 or DxW pairs such as 8x4, "
                          r"not '8y4'$"),
    ({"algorithms": ["fft"]}, r"^algorithms must be among winograd, direct, not 'fft'$"),
    ({"pipeline": [9]}, r"^pipeline must be integers from 0 to 8, not 9$"),
    ({"dsp": ["dsp48"]}, r"^dsp must be among inferred, ecp5, nexus, not 'dsp48'$"),
    ({"m": [2], "r": [3], "algorithms": "direct", "pipeline": 0},
     r"^configuration direct F\(2,3\) 8x8-bit, pipeline 0 is invalid: "),
    ({"layer": {"max_depth": 3}}, r"^layer key must be one of .*, not 'max_depth'$"),
    ({"m": []}, r"^m must list at least one value, not \[\]$"),
    ({"pe": ["nand"]}, r"^pe must be among adder, mul, rns, not 'nand'$"),
    ({"pe": "rns", "moduli": "special-8,foo"},
     r"^moduli must be preset names \(special-8, .*\), auto\[-BITS\] or colon-separated "
     r"integers of at least "
     r"2 such as 251:241:239, not 'foo'$"),
    ({"pe": "rns", "moduli": "4:6"}, r"^moduli must be pairwise coprime, not 4 and 6 \(gcd 2\)$"),
    ({"pe": "rns", "moduli": "auto-99"}, r"^moduli 'auto-BITS' takes BITS from 6 to 16, "
                                         r"not 'auto-99'$"),
    ({"pe": "rns", "redundant_moduli": "0,2"},
     r"^redundant_moduli must be integers from 0 to 1, not 2$"),
    ({"pe": "rns", "rns_method": ["crt"]},
     r"^rns_method must be among auto, scaled, inverse, not 'crt'$"),
    ({"pe": ["mul", "adder"], "moduli": "special-8"},
     r"^moduli applies to pe rns only, not to pe \['mul', 'adder'\]$"),
    ({"pe": "rns", "algorithms": "direct"},
     r"^configuration direct F\(2,3\) 8x8-bit rns 8bit-primes-4, pipeline 2 is invalid: "
     r"--pe rns needs a Winograd engine, not --algorithm direct$"),
    # The same rule for every axis: adder engines are F(2,3) only, ecp5 builds multiply.
    ({"m": [4], "pe": "adder", "algorithms": "winograd"},
     r"^configuration winograd F\(4,3\) 8x8-bit adder, pipeline 2 is invalid: .*F\(2,3\)"),
    ({"pe": "adder", "dsp": "ecp5", "algorithms": "winograd"},
     r"^configuration winograd F\(2,3\) 8x8-bit adder, pipeline 2, dsp ecp5 is invalid: "
     r"--dsp ecp5 applies "
     r"to multiplying PEs \(--pe mul\), not --pe adder$"),
    # With no valid combination left, a rejected RNS combination is an error.
    ({"pe": "rns", "widths": 6, "moduli": ["7:11:13", "5:7"]},
     r"^configuration winograd F\(2,3\) 6x6-bit rns 7:11:13, pipeline 2 is invalid: --moduli "
     r"\[7, 11, 13\] must cover the inverse result range \[-8928, 9216\] of F\(2,3\) .* "
     r"\(and 3 more invalid combinations\)$"),
])
def test_bad_grid(grid, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        explore(grid, tmp_path, place=False)
    assert not (tmp_path / "explore.csv").exists()


def test_bad_flow_and_output(tmp_path):
    with pytest.raises(ValueError, match=r"^freq_mhz must be a positive number of MHz, not -1$"):
        explore({"m": 2}, tmp_path, freq_mhz=-1)
    with pytest.raises(ValueError, match=r"^target must be one of ecp5, ice40, xilinx7, nexus, not 'asic'$"):
        explore({"m": 2}, tmp_path, target="asic")
    with pytest.raises(ValueError, match=r"^jobs must be an integer from 1 to 64, not 0$"):
        explore({"m": 2}, tmp_path, jobs=0)
    with pytest.raises(ValueError, match=r"^device must be one of "):
        explore({"m": 2}, tmp_path, device="LFE5U-99F")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"^output folder must be writable, not "):
        explore({"m": 2}, blocker / "sub", place=False)


def test_without_layer_engines(monkeypatch):
    import argparse
    from winogen.cli import explore as cli
    from winogen.fpga import explore as mod
    monkeypatch.setattr(mod.grid, "layers_available", lambda: False)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    p = cli.add_parser(sub)
    assert "Tile engines only" in p.description
    flags = {flag for action in p._actions for flag in action.option_strings}
    assert "--pin" not in flags and "--layer" not in flags and "--m" in flags
    with pytest.raises(ValueError, match=r"^engine must be tile in this installation "):
        mod.normalize_grid({"pin": [2]})
    assert mod.normalize_grid({"m": [2]})["engine"] == ["tile"]


def test_cli_errors_are_one_line(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('m = [2]\ncolour = "red"\n')
    run = subprocess.run([WINOGEN, "explore", "--grid", str(grid), "-o", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"winogen: error: --grid '{grid}': grid key must be one of {', '.join(GRID_KEYS)}"
        f", layer, run, not 'colour'"]
    grid.write_text("m = [2\n")
    run = subprocess.run([WINOGEN, "explore", "--grid", str(grid), "-o", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1
    assert run.stderr.startswith("winogen: error: --grid must be a valid TOML file, not ")


# --- RNS engines ------------------------------------------------------------------------------

#: Columns of explore.csv before the RNS columns were appended (their order is kept).
NON_RNS_COLUMNS = (
    "label", "kind", "algorithm", "m", "r", "n", "preset", "data_width", "weight_width", "pe",
    "filter_transform", "pipeline", "dsp_build", "input_stages", "pe_stages", "output_stages",
    "filter_stages", "descale_stages", "p_in", "p_out", "name", "multipliers",
    "processing_elements", "lut", "ff", "dsp", "bram", "carry", "fits", "fmax_mhz",
    "constraint_mhz", "timing_met", "latency", "latency_ns", "initiation_interval",
    "outputs_per_cycle", "macs_per_cycle", "ops_per_cycle", "ops_per_dsp_cycle", "gops",
    "gops_per_dsp", "layer_cycles", "compute_cycles", "workload", "target", "part",
    "estimate", "cached", "seconds", "key", "error",
)
RNS_COLUMNS = ("moduli", "redundant_moduli", "rns_method", "multiplier_width",
               "rns_forward_reduction")

# F(2,3) at 6 bits, multiply and RNS engines: five syntheses (about 45 s). The RNS axes
# multiply the RNS points only, and direct RNS engines do not exist; special-8 with a
# redundant modulus leaves 255·256 < the 17-bit scaled result range: skipped, reported.
RNS_GRID = {"m": 2, "r": 3, "widths": 6, "algorithms": ["winograd", "direct"],
            "pe": ["mul", "rns"], "moduli": ["special-8", "63:64:65:31"],
            "redundant_moduli": [0, 1], "pipeline": 1}
RNS_ARGS = ["--m", "2", "--r", "3", "--widths", "6", "--pe", "mul,rns",
            "--moduli", "special-8,63:64:65:31", "--redundant-moduli", "0,1", "--pipeline", "1"]
RNS_STAGES = dict(input_stages=1, pe_stages=1, output_stages=1, convert_stages=1,
                  descale_stages=1)


def rns_config(moduli, redundant):
    spec = moduli if moduli in MODULI_PRESETS else tuple(int(m) for m in moduli.split(":"))
    return RNSTileConfig(2, 3, 6, 6, moduli=spec, redundant_moduli=redundant, **RNS_STAGES)


def special8_redundant_error():
    """The configuration's message, in option names as the sweep reports it."""
    from winogen.gen.params import flag_message
    with pytest.raises(ValueError) as info:
        rns_config("special-8", 1)
    return flag_message(info.value)


@pytest.fixture(scope="module")
def rns_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore_rns")
    lines = []
    rows = explore(RNS_GRID, out, target="ecp5", place=False, progress=lines.append)
    return out, rows, lines


def test_rns_sweep_rows(rns_sweep):
    out, rows, _ = rns_sweep
    # One multiply point per algorithm, whatever the RNS axes hold.
    assert [(r["algorithm"], r["pe"], r["moduli"], r["redundant_moduli"]) for r in rows] == [
        ("winograd", "mul", None, None), ("winograd", "rns", "special-8", 0),
        ("winograd", "rns", "63:64:65:31", 0), ("winograd", "rns", "63:64:65:31", 1),
        ("direct", "mul", None, None)]
    for row in rows:
        assert row["error"] is None and row["fits"] and row["lut"] > 0
        if row["pe"] != "rns":
            assert all(row[c] is None for c in RNS_COLUMNS)
            continue
        cfg = rns_config(row["moduli"], row["redundant_moduli"])
        assert row["multipliers"] == len(cfg.moduli) * 4 ** 2 == cfg.multipliers
        assert row["rns_method"] == cfg.method_used
        assert row["multiplier_width"] == cfg.multiplier_width
        assert (row["name"], row["latency"]) == (cfg.module_name, cfg.latency)
        assert row["outputs_per_cycle"] == 4 and row["ops_per_cycle"] == 2 * 4 * 9
        assert row["dsp"] > 0 and row["dsp_build"] == "inferred"
        assert row["filter_transform"] == "offline" and row["filter_stages"] is None
        (report,) = (out / "cache" / row["key"]).glob("design/reports/ecp5.json")
        assert json.loads(report.read_text())["resources"]["lut"] == row["lut"]
    # Method auto: both sets hold an even modulus (256, 64), so no inverse of 2: scaled.
    assert [r["rns_method"] for r in rows[1:4]] == ["scaled", "scaled", "scaled"]
    assert [r["multiplier_width"] for r in rows[1:4]] == [9, 7, 7]
    assert [r["label"] for r in rows] == [
        "W F(2,3) 6b p1", "W F(2,3) 6b rns special-8 p1", "W F(2,3) 6b rns 63:64:65:31 p1",
        "W F(2,3) 6b rns 63:64:65:31+r p1", "D F(2,3) 6b p1"]


def test_rns_columns_in_csv_json_markdown(rns_sweep):
    out, rows, _ = rns_sweep
    table = read_csv(out / "explore.csv")
    assert tuple(table[0]) == COLUMNS == NON_RNS_COLUMNS + RNS_COLUMNS
    assert [tuple(r[c] for c in RNS_COLUMNS) for r in table] == [
        ("", "", "", "", ""), ("special-8", "0", "scaled", "9", "full"),
        ("63:64:65:31", "0", "scaled", "7", "full"), ("63:64:65:31", "1", "scaled", "7", "full"),
        ("", "", "", "", "")]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "cached"} for r in rs]
    assert strip(json.loads((out / "explore.json").read_text())["rows"]) == strip(rows)
    text = (out / "explore.md").read_text()
    header = next(ln for ln in text.splitlines() if ln.startswith("| Configuration |"))
    assert header.endswith("| Moduli | Redundant | RNS method | Mult bits | Fwd reduction |")
    for row in rows:
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {row['label']} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1:3] == [str(row["multipliers"]), str(row["lut"])]
        assert cells[-len(RNS_COLUMNS):] == (["—"] * len(RNS_COLUMNS) if row["pe"] != "rns"
                                             else [str(row[c]) for c in RNS_COLUMNS])
    plots = json.loads((out / "plots.json").read_text())["plots"]
    (panel,) = plots["lut_vs_dsp"]["panels"]
    assert panel["labels"] == [r["label"] for r in rows] and plots["lut_vs_dsp"]["omitted"] == []


def test_rns_auto_moduli_resolve_per_configuration():
    """moduli "auto" is kept as written in the grid and resolved by each configuration."""
    grid = normalize_grid({"m": [2, 4], "r": 3, "widths": 8, "pe": "rns",
                           "algorithms": "winograd", "moduli": ["auto", "auto-12"],
                           "redundant_moduli": 1})
    assert grid["moduli"] == ["auto", "auto-12"]
    points, _ = configurations(grid)
    assert len(points) == 4
    for point in points:
        text = point.values["moduli"]
        width = 8 if text == "auto" else 12
        expected = select_moduli(point.tile.result_interval, width, 1)
        assert point.tile.moduli == expected
        assert point.tile.module_name in {p.tile.module_name for p in points}


def test_rns_forward_reduction_axis():
    """rns_forward_reduction multiplies the RNS points only and reaches the configuration."""
    grid = normalize_grid({"m": 6, "r": 3, "widths": 8, "pe": ["mul", "rns"],
                           "algorithms": "winograd", "rns_forward_reduction": "full,partial"})
    points, _ = configurations(grid)
    rns = [p for p in points if p.rns]
    assert len(points) == 3 and [p.tile.forward_reduction for p in rns] == ["full", "partial"]
    assert [_label(p) for p in rns] == ["W F(6,3) 8b rns 8bit-primes-4 p2",
                                        "W F(6,3) 8b rns 8bit-primes-4 partial p2"]
    assert rns[1].tile.multiplier_width == 18 > rns[0].tile.multiplier_width
    with pytest.raises(ValueError, match=r"^rns_forward_reduction must be among full, partial, "
                                         r"not 'lazy'$"):
        normalize_grid({"pe": "rns", "rns_forward_reduction": "lazy"})


def test_rns_invalid_combination_is_reported(rns_sweep):
    out, rows, lines = rns_sweep
    message = special8_redundant_error()
    assert message.startswith("--moduli: non-redundant moduli [255, 256] must cover the scaled result "
                              "range [-35712, 36864] of F(2,3) ")
    what = "tile winograd F(2,3) 6x6-bit rns special-8+r, pipeline 1"
    # The direct algorithm with each of the four RNS points is invalid too, and listed.
    assert lines[0].startswith("5 configurations (5 invalid combinations skipped), ecp5 ")
    assert lines[1] == f"skipped: {what} is invalid: {message}"
    direct = [ln for ln in lines[2:6] if ln.startswith("skipped: tile direct F(2,3) 6x6-bit rns ")]
    assert len(direct) == 4 and all(ln.endswith(" is invalid: --pe rns needs a Winograd engine, "
                                                "not --algorithm direct") for ln in direct)
    assert not any("special-8+r" in r["label"] for r in rows)
    meta = json.loads((out / "explore.json").read_text())
    assert meta["invalid_skipped"][0] == {"kind": "tile", "configuration": what[5:],
                                          "error": message}
    assert len(meta["invalid_skipped"]) == 5
    text = (out / "explore.md").read_text()
    assert "invalid combinations skipped: 5 (see below)" in text
    assert f"- {what}: {message}\n" in text


def test_rns_cli_reuses_the_cache_and_reports_invalid(rns_sweep, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(rns_sweep[0] / "cache", out / "cache")
    run = subprocess.run([WINOGEN, "explore", *RNS_ARGS, "--no-place", "-o", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    progress = [ln for ln in run.stderr.splitlines() if ln.startswith("winogen explore: [")]
    assert len(progress) == 5 and all(": cached " in ln for ln in progress)
    assert f"winogen explore: skipped: tile winograd F(2,3) 6x6-bit rns special-8+r, pipeline 1 " \
           f"is invalid: {special8_redundant_error()}" in run.stderr.splitlines()
    assert run.stdout.startswith("5 configurations in ")
    assert ", 5 invalid combinations skipped; report " in run.stdout
    # Nothing valid: one line, exit status 2.
    run = subprocess.run([WINOGEN, "explore", "--pe", "rns", "--widths", "6", "--moduli", "7:11:13",
                          "--algorithms", "winograd", "--no-place", "-o", str(tmp_path / "bad")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "winogen: error: configuration winograd F(2,3) 6x6-bit rns 7:11:13, pipeline 2 is "
        "invalid: --moduli [7, 11, 13] must cover the inverse result range [-8928, 9216] of F(2,3) "
        "with 6-bit data, 6-bit weights and 1 channel(s) (needs ≥ 18433, 15 bits), not product "
        "1001 (9 bits)"]


def test_non_rns_sweep_is_unchanged(sweep, rns_sweep, tmp_path):
    out, rows, *_ = sweep
    table = read_csv(out / "explore.csv")
    assert tuple(table[0]) == NON_RNS_COLUMNS + RNS_COLUMNS
    assert all(r[c] == "" for r in table for c in RNS_COLUMNS)
    assert all(set(r) == set(COLUMNS) and r["pe"] == "mul" for r in rows)
    # A multiply point has the same cache key with or without the RNS axes in the grid.
    copy = tmp_path / "copy"
    shutil.copytree(rns_sweep[0] / "cache", copy / "cache")
    mul_only = {k: v for k, v in RNS_GRID.items() if k not in ("moduli", "redundant_moduli")}
    mul_only["pe"] = "mul"
    again = explore(mul_only, copy, place=False)
    assert all(r["cached"] for r in again)
    assert [r["key"] for r in again] == [rns_sweep[1][0]["key"], rns_sweep[1][4]["key"]]


def test_rns_layer_and_method_axes():
    g = normalize_grid({"engine": ["tile", "layer"], "m": 2, "r": 3, "widths": 6,
                        "pe": ["rns", "mul"], "algorithms": "winograd", "moduli": "special-8",
                        "rns_method": ["auto", "scaled"], "pin": [1, 2],
                        "layer": {"max_cin": 3, "max_cout": 2, "max_height": 4, "max_width": 4}})
    points, duplicates = configurations(g)
    # auto picks scaled for special-8: the two method values give one engine (of each kind).
    assert duplicates == 3
    rns = [p for p in points if p.tile.pe == "rns"]
    assert [(p.kind, p.config.p_in if p.kind == "layer" else None) for p in rns] == [
        ("tile", None), ("layer", 1), ("layer", 2)]
    tile, layer1, layer2 = rns
    assert tile.tile.channels == 1 and tile.tile.method == "scaled"
    # An RNS layer's moduli cover max_cin channels.
    assert layer1.tile.channels == layer2.tile.channels == 3
    assert layer2.config.multipliers == 3 * 16 * 2
    assert _label(layer2) == "W F(2,3) 6b rns special-8 scaled p2 P2x1"
    figures = cycle_figures(tile.config, latency=7)
    assert figures["outputs_per_cycle"] == 4 and figures["macs_per_cycle"] == 4 * 9


def test_invalid_combinations_are_skipped_and_listed_on_every_axis():
    """One rule: a combination `winogen generate` would refuse is skipped and listed, an
    invalid value stops the sweep (test_bad_grid)."""
    g = normalize_grid({"m": [2, 4], "r": 3, "pe": ["mul", "adder"], "dsp": ["inferred", "ecp5"],
                        "algorithms": "winograd"})
    invalid = []
    points, _ = configurations(g, invalid)
    assert sorted((p.tile.m, p.tile.pe, p.tile.dsp) for p in points) == [
        (2, "adder", "inferred"), (2, "mul", "ecp5"), (2, "mul", "inferred"),
        (4, "mul", "ecp5"), (4, "mul", "inferred")]
    assert [item["configuration"] for item in invalid] == [
        "winograd F(2,3) 8x8-bit adder, pipeline 2, dsp ecp5",
        "winograd F(4,3) 8x8-bit adder, pipeline 2",
        "winograd F(4,3) 8x8-bit adder, pipeline 2, dsp ecp5"]
    assert invalid[0]["error"] == ("--dsp ecp5 applies to multiplying PEs (--pe mul), "
                                   "not --pe adder")
    assert "F(2,3) only" in invalid[1]["error"]
    # Without a list to fill (the Python API's strict mode), the first one raises.
    with pytest.raises(ValueError, match=r"^configuration winograd F\(2,3\) 8x8-bit adder, "
                                         r"pipeline 2, dsp ecp5 is invalid: --dsp ecp5 "):
        configurations(g)
