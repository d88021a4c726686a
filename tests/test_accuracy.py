"""The accuracy report: the published trends, the table, the CLI and its plot."""

import json
import struct

import pytest

from winogen.cli import UserError, build_parser
from winogen.cli.accuracy import run as run_accuracy
from winogen.gen.accuracy import ERROR_DEFINITION, accuracy_table, format_table


@pytest.fixture(scope="module")
def float32_table():
    rows = accuracy_table(3, (2, 4, 6), ("lavin", "barabasz"), "float32", seed=0)
    return {(row["data"], row["m"], row["preset"]): row for row in rows}


def mean(table, data, m, preset):
    return table[data, m, preset]["mean_rel_error"]


def peak(table, data, m, preset):
    return table[data, m, preset]["max_rel_error"]


@pytest.mark.parametrize("data", ["random", "camera", "astronaut"])
@pytest.mark.parametrize("preset", ["lavin", "barabasz"])
def test_error_grows_with_m(float32_table, data, preset):
    means = [mean(float32_table, data, m, preset) for m in (2, 4, 6)]
    assert means[0] < means[1] < means[2], means
    assert peak(float32_table, data, 2, preset) < peak(float32_table, data, 6, preset)
    # F(2,3) is as accurate as direct convolution in the same precision, within 2×.
    assert means[0] < 2 * mean(float32_table, data, None, "direct")


@pytest.mark.parametrize("data", ["random", "astronaut"])
def test_barabasz_points_beat_lavin(float32_table, data):
    # F(4,3): different points (1/2, -3 instead of ±2), a 2-13% lower mean
    # error and a much lower worst case. F(6,3): ±1/2 instead of the canonical
    # ±3, an order of magnitude lower error.
    for m in (4, 6):
        assert mean(float32_table, data, m, "barabasz") < mean(float32_table, data, m, "lavin")
    assert peak(float32_table, data, 4, "barabasz") < peak(float32_table, data, 4, "lavin")


def test_barabasz_points_beat_lavin_on_the_camera_image(float32_table):
    # On the one-channel, smooth camera picture the error is dominated by the
    # DC component, which only the point 1 (in both sets) carries: the mean
    # gain at F(4,3) shrinks to a few percent and is within seed noise, so
    # the robust claim there is the worst case.
    assert peak(float32_table, "camera", 4, "barabasz") < peak(float32_table, "camera", 4, "lavin")
    assert mean(float32_table, "camera", 6, "barabasz") < mean(float32_table, "camera", 6, "lavin")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_trend_holds_for_other_seeds(seed):
    rows = accuracy_table(3, (2, 4, 6), ("lavin", "barabasz"), "float32", seed=seed,
                          datasets=("random",), baseline=False)
    table = {(row["data"], row["m"], row["preset"]): row for row in rows}
    for preset in ("lavin", "barabasz"):
        assert mean(table, "random", 2, preset) < mean(table, "random", 4, preset) \
            < mean(table, "random", 6, preset)
    for m in (4, 6):
        assert mean(table, "random", m, "barabasz") < mean(table, "random", m, "lavin")


def test_rows_skips_and_notes():
    rows = accuracy_table(3, (2, 3, 8), ("barabasz", "lavin"), "float32", channels=2, size=12,
                          datasets=("random",))
    by_key = {(row["m"], row["preset"]): row for row in rows}
    assert by_key[None, "direct"]["algorithm"] == "direct"
    skipped = by_key[3, "barabasz"]
    assert skipped["mean_rel_error"] is None and skipped["max_rel_error"] is None
    assert skipped["note"].startswith("skipped: preset 'barabasz' is defined for tile sizes")
    assert by_key[3, "lavin"]["points"] == "0,1,-1,2,inf"
    assert 0 < by_key[3, "lavin"]["mean_rel_error"] < by_key[3, "lavin"]["max_rel_error"] < 1e-4
    assert by_key[8, "lavin"]["note"] == "tile size 10 > 8: numerically unsafe"
    assert len(rows) == 1 + 3 * 2

    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0] == ("| data | algorithm | preset | points | dtype | mean rel. error | "
                        "max rel. error | note |")
    assert lines[1] == "|---|---|---|---|---|---:|---:|---|"
    assert len(lines) == len(rows) + 2
    assert all(line.startswith("| ") and line.endswith("|") and line.count(" | ") >= 7 for line in lines[2:])
    skipped_line = next(line for line in lines if "skipped" in line)
    assert "| F(3,3) | barabasz | — | float32 | — | — | skipped:" in skipped_line
    lavin_line = next(line for line in lines if "| F(3,3) | lavin |" in line)
    assert f"| {by_key[3, 'lavin']['mean_rel_error']:.2e} |" in lavin_line


def test_validation():
    with pytest.raises(ValueError, match=r"^dtype must be one of float16, float32, float64, not 'int8'$"):
        accuracy_table(dtype="int8")
    with pytest.raises(ValueError, match=r"^presets must be drawn from .*lavin.*, not 'nope'$"):
        accuracy_table(presets=("nope",))
    with pytest.raises(ValueError, match=r"^m must be a positive integer, not 0$"):
        accuracy_table(ms=(2, 0))
    with pytest.raises(ValueError, match=r"^datasets must be drawn from random, camera, astronaut, not 'lena'$"):
        accuracy_table(datasets=("lena",))


def parse(*argv):
    return build_parser().parse_args(["accuracy", *argv])


SMALL = ("--data", "random", "--size", "12", "--channels", "2")


def test_cli_json_and_plot(tmp_path, capsys):
    png = tmp_path / "accuracy.png"
    args = parse("--r", "3", "--m", "2,4", "--presets", "lavin,barabasz", "--dtype", "float16",
                 "--seed", "7", "--json", "--plot", str(png), *SMALL)
    assert args.func is run_accuracy
    assert run_accuracy(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dtype"] == "float16" and report["seed"] == 7 and report["error"] == ERROR_DEFINITION
    assert [(row["m"], row["preset"]) for row in report["rows"]] == \
        [(None, "direct"), (2, "lavin"), (2, "barabasz"), (4, "lavin"), (4, "barabasz")]
    assert all(row["dtype"] == "float16" and row["mean_rel_error"] > 0 for row in report["rows"])

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    width, height = struct.unpack(">II", data[16:24])
    assert (length, kind) == (13, b"IHDR") and width > 100 and height > 100
    assert data[-8:] == b"IEND\xaeB`\x82"
    import matplotlib.image
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[:2] == (height, width) and pixels.std() > 0


def test_cli_markdown(capsys):
    assert run_accuracy(parse("--m", "2", *SMALL)) == 0
    out = capsys.readouterr().out
    assert out.startswith("| data | algorithm |")
    assert "| random | F(2,3) | barabasz | 0,-1,1,inf | float32 |" in out
    assert out.rstrip().endswith(f"{ERROR_DEFINITION}.")


@pytest.mark.parametrize("argv,message", [
    (("--m", "2,x"), "--m must be a comma-separated list of positive integers, not '2,x'"),
    (("--m", "2,,4"), "--m must be a comma-separated list of positive integers, not '2,,4'"),
    (("--m", "0"), "--m must be a comma-separated list of positive integers, not '0'"),
    (("--m", "1_0"), "--m must be a comma-separated list of positive integers, not '1_0'"),
    (("--r", "three"), "--r must be a positive integer, not 'three'"),
    (("--dtype", "bfloat16"), "--dtype must be one of float16, float32, float64, not 'bfloat16'"),
    (("--presets", "lavin,foo"), "--presets must be a comma-separated list of presets from "
                                 "barabasz, canonical, default, lavin, reciprocal, not 'lavin,foo'"),
    (("--seed", "-1"), "--seed must be a non-negative integer, not '-1'"),
    (("--data", "random,lena"), "--data must be a comma-separated list of datasets from "
                                "random, camera, astronaut, not 'random,lena'"),
])
def test_cli_errors_are_one_line_user_errors(argv, message):
    with pytest.raises(UserError) as info:
        parse(*argv)
    assert str(info.value) == message


@pytest.mark.parametrize("argv,message", [
    (("--plot", "out.jpg"), r"^--plot must be a \.png file name, not 'out\.jpg'$"),
    (("--plot", "{tmp}/missing/err.png"), r"^--plot must be in an existing folder, not .* "
                                          r"\(its folder does not exist\)$"),
    (("--plot", "{tmp}/file/err.png"), r"^--plot must be in a folder, not .* \('file' is a file\)$"),
    (("--plot", "{tmp}/dir.png"), r"^--plot must be a \.png file, not the folder "),
    (("--m", "20"), r"^--m 20 gives no tile to measure with --r 3 and --presets lavin,barabasz: "),
    (("--size", "2", "--r", "3"), r"^--size must be at least --r 3, not 2$"),
])
def test_cli_refuses_before_computing(argv, message, tmp_path, monkeypatch):
    # Nothing is computed: the table would raise if it were reached.
    import winogen.gen.accuracy as accuracy
    monkeypatch.setattr(accuracy, "accuracy_table", lambda *a, **k: pytest.fail("computed"))
    (tmp_path / "file").write_text("")
    (tmp_path / "dir.png").mkdir()
    args = parse(*(a.replace("{tmp}", str(tmp_path)) for a in argv))
    with pytest.raises(UserError, match=message):
        run_accuracy(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png", "file"]


def test_cli_lists_the_datasets_and_dtypes_of_the_report():
    # The CLI names them without importing NumPy; they must not drift apart.
    import winogen.cli.accuracy as cli
    import winogen.gen.accuracy as report
    assert (cli.DATASETS, cli.DTYPES) == (report.DATASETS, report.DTYPES)


def test_quantized_study_cli(tmp_path, capsys):
    """winogen accuracy --quantized: rows per W and scales, the exact row equal to the
    integer network, the table, JSON and plot."""
    from winogen.cli import main
    from winogen.nets.quantstudy import direct_top1
    plot = tmp_path / "q.png"
    assert main(["accuracy", "--quantized", "--m", "2", "--presets", "lavin", "--widths",
                 "6,exact", "--scales", "global,tapwise,calibrated", "--json", "--plot", str(plot)]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["rows"]
    assert [(r["width"], r["scales"]) for r in rows] == [(6, "global"), (6, "tapwise"),
                                                         (6, "calibrated"),
                                                         (None, "-")]
    exact = rows[-1]
    assert exact["top1"] == report["direct_int8_top1"] == direct_top1()
    assert exact["image_error"] == 0 and exact["multiplier"] == "10x12"
    assert all(0 < r["image_error"] < 1 and r["multiplier"] == "6x6" for r in rows[:3])
    assert plot.stat().st_size > 1000


@pytest.mark.parametrize("argv, message", [
    (["--quantized", "--dtype", "float16"], "--dtype does not apply to --quantized"),
    (["--widths", "8"], "--widths applies to --quantized only"),
    (["--quantized", "--m", "3"], "--m must be among 2, 4, 6 with --quantized, not 3"),
    (["--quantized", "--epochs", "3"], "--epochs applies to --training wa or flex only"),
])
def test_quantized_study_refusals(argv, message, capsys):
    from winogen.cli import main
    assert main(["accuracy", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
