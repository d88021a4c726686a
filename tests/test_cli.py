"""The `winogen` command line: help, outputs, and one-line errors with exit status 2."""

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from winogen.gen.toomcook import ToomCook

WINOGEN = str(Path(sys.executable).with_name("winogen"))


def run(*args, cwd=None):
    return subprocess.run([WINOGEN, *args], capture_output=True, text=True, cwd=cwd)


def test_help_lists_subcommands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("matrices", "accuracy", "generate", "synth", "explore"):
        assert command in out.stdout


def test_matrices_json_is_exact_and_matches_the_api():
    out = run("matrices", "--m", "4", "--r", "3", "--points", "0,-1,1,1/2,-3,inf", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    tc = ToomCook(4, 3, "0,-1,1,1/2,-3,inf")
    mats = tc.matrices("G")
    assert data["points"] == ["0", "-1", "1", "1/2", "-3", "inf"]
    assert [[Fraction(x) for x in row] for row in data["G"]] == mats.G
    assert [[Fraction(x) for x in row] for row in data["BT"]] == mats.BT
    assert data["scale"] == ["1"] * 6


def test_matrices_integer_form_has_scale():
    out = run("matrices", "--m", "2", "--r", "3", "--preset", "lavin", "--form", "integer", "--json")
    data = json.loads(out.stdout)
    assert all(Fraction(x).denominator == 1 for row in data["G"] for x in row)
    assert [Fraction(s) for s in data["scale"]] == list(ToomCook(2, 3, preset="lavin").integer().scale)
    text = run("matrices", "--m", "2", "--r", "3", "--preset", "lavin")
    assert "Bᵀ" in text.stdout and "1/2" in text.stdout


@pytest.mark.parametrize("args,needle", [
    (["matrices", "--m", "0", "--r", "3"], "--m must be a positive integer, not '0'"),
    (["matrices", "--m", "2", "--r", "0"], "--r must be a positive integer, not '0'"),
    (["matrices", "--m", "12", "--r", "6"], "must be at most 16, not 17"),
    (["matrices", "--m", "2", "--r", "3", "--points", "0,1,1,inf"], "points must be distinct"),
    (["matrices", "--m", "2", "--r", "3", "--points", "0,1,x,inf"], "not 'x'"),
    (["matrices", "--m", "2", "--r", "3", "--points", "0,1,inf"], "exactly n = m + r - 1 = 4"),
    (["matrices", "--m", "2", "--r", "3", "--points", "0,1,-1,2,inf"], "exactly n = m + r - 1 = 4"),
    (["matrices", "--m", "2", "--r", "3", "--preset", "nope"], "--preset must be one of barabasz, canonical, default, lavin, reciprocal, not 'nope'"),
    (["generate", "tile", "--m", "4", "--r", "3", "--data-width", "1", "-o", "x"],
     "--data-width must be an integer from 2 to 16, not '1'"),
    (["generate", "tile", "--m", "4", "--r", "3", "--weight-width", "33", "-o", "x"],
     "--weight-width must be an integer from 2 to 16, not '33'"),
    (["generate", "tile", "--m", "14", "--r", "5", "-o", "x"], "must be at most 16, not 18"),
    (["generate", "tile", "--m", "4", "--r", "3", "--preset", "barabasz", "--descale", "shift",
      "-o", "x"], "exact division by 168"),
    (["generate", "tile", "--m", "4", "--r", "3", "--pipeline", "0", "-o", "x"],
     "must add up to at least 1"),
    (["nonsense"], "COMMAND must be one of matrices, accuracy, generate, simulate, run-net, synth, explore, faults, not 'nonsense'"),
])
def test_bad_input_is_one_line_exit_2(args, needle, tmp_path):
    out = run(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("winogen: error: ")
    assert needle in lines[0]
    assert "Traceback" not in out.stderr


def test_generate_tile_writes_verilog_and_manifest(tmp_path):
    out = run("generate", "tile", "--m", "2", "--r", "3", "--preset", "lavin", "-o", str(tmp_path / "o"))
    assert out.returncode == 0, out.stderr
    manifest = json.loads((tmp_path / "o" / "wino_f2x2_3x3_mul_d8w8.json").read_text())
    assert manifest["multipliers"] == 16
    assert manifest["initiation_interval"] == 1
    verilog = (tmp_path / "o" / manifest["verilog"][0]).read_text()
    assert "module wino_f2x2_3x3_mul_d8w8" in verilog
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["tiles__payload"]["width"] == 16 * 8
    assert ports["outputs__payload"]["width"] == 4 * manifest["widths"]["output"]


def test_generate_into_unwritable_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = run("generate", "tile", "--m", "2", "--r", "3", "-o", str(blocker / "sub"))
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "not writable" in out.stderr
    assert not (blocker.parent / "sub").exists() and blocker.read_text() == "not a folder"


LAYER_ARGS = ["--m", "2", "--r", "5", "--data-width", "6", "--weight-width", "6",
              "--max-height", "12", "--max-width", "12", "--max-cin", "4", "--max-cout", "4",
              "--output-width", "10", "--rounding", "half_up"]


def test_generate_conv_and_direct_write_manifests(tmp_path):
    for engine in ("conv", "direct"):
        out = run("generate", engine, *LAYER_ARGS, "--pin", "2", "-o", str(tmp_path / engine))
        assert out.returncode == 0, out.stderr
        manifests = list((tmp_path / engine).glob("*.json"))
        assert len(manifests) == 1
        manifest = json.loads(manifests[0].read_text())
        assert manifest["parameters"]["tile"]["algorithm"] == ("winograd" if engine == "conv" else "direct")
        assert manifest["parameters"]["p_in"] == 2
        assert (tmp_path / engine / manifest["verilog"][0]).is_file()


@pytest.mark.verilator
def test_simulate_random_layer_passes_against_the_golden_model():
    # The same engine as test_layer_verilator's direct25_p1 build: a cache hit there.
    out = run("simulate", "direct", *LAYER_ARGS, "--random-layer", "3x9x11:4", "--padding", "2",
              "--shift", "3", "--stall", "0.2", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["pass"] is True and report["mismatches"] == 0
    assert report["cycles"]["compute"] >= report["cycles"]["compute_ideal"] > 0


@pytest.mark.parametrize("args,needle", [
    (["--random-layer", "3x9"], "--random-layer must look like CINxHxW:COUT"),
    (["--random-layer", "5x9x9:4"], "--random-layer: cin must be 1..4 for this engine, not 5"),
    (["--random-layer", "3x13x9:4"], "--random-layer: height must be 1..12 for this engine, not 13"),
    (["--random-layer", "3x9x9:4", "--padding", "1"], "--padding: padding must be 0 or 2"),
])
def test_simulate_refuses_impossible_layers(args, needle):
    out = run("simulate", "direct", *LAYER_ARGS, *args)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert needle in out.stderr


@pytest.mark.parametrize("pe, n", [("mul", 0), ("mul", 3), ("rns", 1), ("rns", 3)])
def test_pipeline_sets_every_block_and_stage_options_override_it(pe, n):
    from winogen.cli import build_parser
    from winogen.cli.generate import config_from_args
    from winogen.gen.rns import converter_levels
    argv = ["generate", "tile", "--m", "2", "--r", "3", "--pe", pe, "--pipeline", str(n),
            "--output-stages", "1", "-o", "x"]
    cfg = config_from_args(build_parser().parse_args(argv), "tile")
    assert (cfg.input_stages, cfg.output_stages) == (n, 1)
    assert cfg.descale_stages == min(n, 1)
    if pe == "rns":
        # The PE and the converter follow N below 2, and from 2 on keep their defaults:
        # operand, product and residue registers; a register per converter level.
        assert cfg.pe_stages == (n if n < 2 else 3)
        assert cfg.convert_stages == (None if n >= 2 else n)
        assert cfg.converter_latency == (n if n < 2 else converter_levels(len(cfg.moduli)))
        assert not hasattr(cfg, "filter_stages")
    else:
        assert (cfg.pe_stages, cfg.filter_stages) == (min(n, 2), n)


def test_markdown_table_prints_empty_cells_for_missing_values():
    from winogen.gen.report import markdown_table
    rows = [{"engine": "a", "fmax": 101.5}, {"engine": "b", "fmax": None}, {"engine": "c"}]
    assert markdown_table(rows, ["engine", "fmax"]).splitlines() == [
        "| engine | fmax |", "|---|---|", "| a | 101.5 |", "| b |  |", "| c |  |"]


def test_version():
    from importlib import metadata
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"winogen {metadata.version('winogen')}"


@pytest.mark.parametrize("error", [KeyError("tile"), ValueError("an internal check failed")])
def test_internal_error_is_a_traceback_and_exit_1(error, tmp_path, monkeypatch, capsys):
    # A bug below the CLI, even one raising ValueError, is not the user's mistake.
    import winogen.hw.generate
    from winogen.cli import main

    def broken(config, out):
        raise error
    monkeypatch.setattr(winogen.hw.generate, "generate_tile", broken)
    status = main(["generate", "tile", "--m", "2", "--r", "3", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 1
    assert "Traceback (most recent call last)" in err and type(error).__name__ in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("winogen: internal error (") and "please report it" in last
    # The same command with a user mistake stays one line, exit 2.
    assert main(["generate", "tile", "--m", "2", "--r", "x", "-o", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "winogen: error: --r must be a positive integer, not 'x'"]


def test_internal_error_in_config_construction(monkeypatch, capsys, tmp_path):
    import winogen.gen.params
    from winogen.cli import main

    def broken(params):
        raise KeyError("pe")
    monkeypatch.setattr(winogen.gen.params, "config_from_params", broken)
    assert main(["generate", "tile", "--m", "2", "--r", "3", "-o", str(tmp_path / "o")]) == 1
    assert "KeyError: 'pe'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_generate_reports_progress_on_long_runs(tmp_path, monkeypatch, capsys):
    import time
    import winogen.cli.generate as generate
    import winogen.hw.generate
    from winogen.cli import main
    real = winogen.hw.generate.generate_tile

    def slow(config, out):
        time.sleep(0.5)
        return real(config, out)
    monkeypatch.setattr(winogen.hw.generate, "generate_tile", slow)
    monkeypatch.setattr(generate, "PROGRESS_AFTER", 0.2)
    monkeypatch.setattr(generate, "PROGRESS_EVERY", 60.0)
    assert main(["generate", "tile", "--m", "2", "--r", "3", "-o", str(tmp_path / "o")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("winogen generate: [") and \
        lines[0].endswith("s] elaborating wino_f2x2_3x3_mul_d8w8 and emitting Verilog")
    assert lines[1].endswith("s] done")
    # Short runs stay silent.
    monkeypatch.setattr(winogen.hw.generate, "generate_tile", real)
    monkeypatch.setattr(generate, "PROGRESS_AFTER", 30.0)
    assert main(["generate", "tile", "--m", "2", "--r", "3", "-o", str(tmp_path / "p")]) == 0
    assert capsys.readouterr().err == ""
