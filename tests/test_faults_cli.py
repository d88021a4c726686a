"""``winogen faults``: a small campaign end to end (JSON, CSV, PNG plots, table)."""

import csv
import json

from winogen.cli import main


def test_faults_writes_report_csv_and_plots(tmp_path, capsys):
    out = tmp_path / "f"
    argv = ["faults", "-o", str(out), "--engines", "direct,f23", "--images", "6",
            "--bers", "0,1e-4", "--trials", "1", "--flips", "12", "--seed", "5"]
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
