"""``winogen faults``: a small campaign end to end (JSON, CSV, PNG plots, table)."""

import csv
import json

import pytest

from winogen.cli import main


def test_faults_writes_report_csv_and_plots(tmp_path, capsys):
    out = tmp_path / "f"
    argv = ["faults", "-o", str(out), "--engines", "direct,f23", "--images", "3",
            "--bers", "0,1e-4", "--trials", "1", "--flips", "5", "--seed", "5"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "top-1 accuracy" in table and "site-class vulnerability" in table
    report = json.loads((out / "faults.json").read_text())
    for name in ("accuracy.png", "error.png", "vulnerability.png"):
        assert (out / name).stat().st_size > 5000, name
    acc = report["accuracy"]["accuracy"]
    assert set(acc) == {"direct", "f23"} and all(len(v) == 2 for v in acc.values())
    # Fault-free accuracy is the integer network's, equal for both engines.
    assert acc["direct"][0]["mean"] == acc["f23"][0]["mean"]
    assert set(report["vulnerability"]["classes"]["direct"]) == {
        "products", "lane_sums", "accumulation", "requantization"}
    assert "input_transform" in report["vulnerability"]["classes"]["f23"]
    rows = list(csv.DictReader(open(out / "faults.csv")))
    assert {r["study"] for r in rows} == {"accuracy", "error", "vulnerability"}
    # --seed makes it reproducible.
    again = tmp_path / "g"
    assert main([*argv[:2], str(again), *argv[3:]]) == 0
    second = json.loads((again / "faults.json").read_text())
    for key in ("accuracy", "error", "vulnerability"):
        assert second[key] == report[key], key


def test_faults_harden_variant(tmp_path, capsys):
    """--harden ENGINE=SPEC adds a hardened variant to the accuracy study."""
    out = tmp_path / "h"
    assert main(["faults", "-o", str(out), "--study", "accuracy", "--engines", "f23",
                 "--images", "12", "--bers", "0,1e-5", "--trials", "1",
                 "--harden", "f23=products:tmr,accumulation:dmr"]) == 0
    acc = json.loads((out / "faults.json").read_text())["accuracy"]
    label = "f23+products:tmr,accumulation:dmr"
    assert acc["engines"] == ["f23", label]
    # Fault-free, hardening changes nothing.
    assert acc["accuracy"][label][0]["mean"] == acc["accuracy"]["f23"][0]["mean"]
    assert "detected" in acc["accuracy"][label][1]


@pytest.mark.synth
def test_auto_harden_picks_within_budget():
    """auto:BUDGET: Yosys block costs, the vulnerability study, a greedy choice that fits."""
    import numpy as np
    from winogen.nets import faults as F
    from winogen.nets.digits import load_digits_int8, split
    from winogen.nets.netfile import load_network
    from winogen.nets.train import NETWORK
    layers = list(load_network(NETWORK).layers)
    x, y = load_digits_int8()
    images = split(x, y)[2][:4].astype(np.int64)
    config = F.engine_config("f23", layers, images.shape[1:], p=2)
    costs = F.block_costs_of(config)
    assert costs["classes"]["products"]["dsp"] == 4 * 16          # P 2x2, n² = 16
    assert {"input_transform", "lane_sums", "accumulation"} <= set(costs["classes"])
    vul = F.vulnerability_campaign(layers, images, engines=("f23",), flips=60, seed=2, p=2)
    for budget in (0.25, 1.0, 3.0):
        harden, table = F.auto_harden(config, vul["classes"]["f23"], costs, budget)
        assert table["spent"] <= table["limit"]
        assert sum(r["cost"] for r in table["rows"] if r["chosen"]) == table["spent"]
        assert [c for c, _ in harden] == [r["class"] for r in table["rows"] if r["chosen"]
                                          ] or set(c for c, _ in harden) == {
            r["class"] for r in table["rows"] if r["chosen"]}
    assert len(F.auto_harden(config, vul["classes"]["f23"], costs, 3.0)[0]) >= \
        len(F.auto_harden(config, vul["classes"]["f23"], costs, 0.25)[0])


def test_faults_same_figures_on_two_processes(tmp_path, capsys):
    """-j 2 (spawned processes) gives the figures of the inline run: every work item
    carries its own seed."""
    argv = ["--engines", "f23", "--images", "4", "--bers", "0,1e-4", "--trials", "2",
            "--flips", "5", "--seed", "9", "--study", "accuracy,vulnerability"]
    reports = []
    for jobs, name in (("1", "a"), ("2", "b")):
        assert main(["faults", "-o", str(tmp_path / name), "-j", jobs, *argv]) == 0
        reports.append(json.loads((tmp_path / name / "faults.json").read_text()))
    for key in ("accuracy", "vulnerability"):
        assert reports[0][key] == reports[1][key], key
    assert "2" in reports[1]["executor"] and reports[0]["executor"] != reports[1]["executor"]


@pytest.mark.synth
def test_vulnerability_per_lut4(tmp_path, capsys):
    """--costs: every class of the engine gets a LUT4-equivalent cost from Yosys and a rank
    per LUT4; the hardened variant also enters the error study."""
    out = tmp_path / "c"
    assert main(["faults", "-o", str(out), "--engines", "f23", "--images", "3",
                 "--bers", "1e-4", "--trials", "1", "--flips", "10", "--costs",
                 "--study", "error,vulnerability", "--harden", "f23=products:tmr"]) == 0
    report = json.loads((out / "faults.json").read_text())
    classes = report["vulnerability"]["classes"]["f23"]
    for name, v in classes.items():
        # A class with no LUT (F(2,3)'s descale by 4 is a shift) has no rate per LUT4.
        assert v["lut4_equivalent"] >= 0, name
        assert (v["corruptions_per_lut4"] is None) == (v["lut4_equivalent"] == 0), name
    assert classes["products"]["lut4_equivalent"] >= 100 * 16 * 16     # 256 MULT18X18D
    assert sorted(report["vulnerability"]["ranking_per_lut4"]["f23"]) == sorted(
        c for c in classes if classes[c]["lut4_equivalent"])
    assert "per LUT4" in capsys.readouterr().out
    assert set(report["error"]["error"]) == {"f23", "f23+products:tmr"}
