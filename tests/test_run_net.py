"""``winogen run-net``: the reference int8 CNN classified by emitted engines under Verilator,
bit-exact against its integer golden model; and its bad input."""

import json

import numpy as np
import pytest

from winogen.cli import main
from winogen.nets.train import WEIGHTS


def _report(capsys):
    return json.loads(capsys.readouterr().out)


def test_golden_only(capsys):
    assert main(["run-net", "--golden-only", "--images", "359", "--json"]) == 0
    report = _report(capsys)
    assert report["images"] == 359 and report["golden_top1"] >= 0.97


@pytest.mark.verilator
@pytest.mark.parametrize("m, images", [(2, 24), (4, 12)])
def test_network_bit_exact_on_the_engine(m, images, capsys):
    """Every layer's outputs and the logits equal the golden model's (F(2,3) and F(4,3),
    P 4x4; the 200-image figures are in the README)."""
    assert main(["run-net", "--images", str(images), "--m", str(m), "--json"]) == 0
    report = _report(capsys)
    assert report["bit_exact"] is True
    assert report["engine_top1"] == report["golden_top1"]
    assert [layer["name"] for layer in report["layers"]] == ["c1", "c2", "c3", "c4", "fc"]
    assert all(layer["mismatches"] == 0 for layer in report["layers"])
    # the 5x5 and stride-2 layers and the 4x4 classifier ran as 4 stacked pieces each
    assert [layer["pieces"] for layer in report["layers"]] == [1, 4, 4, 4, 4]
    print(f"F({m},3): {report['engine']}, top-1 {report['engine_top1']:.4f} on {images} "
          f"images, {report['cycles_per_image']:.0f} cycles/image, "
          f"{report['macs_per_multiplier_cycle']:.3f} MAC/multiplier/cycle, "
          f"{report['wall_seconds']:.0f} s")


def _bad_weights(tmp_path, change):
    data = dict(np.load(WEIGHTS))
    change(data)
    path = tmp_path / "bad.npz"
    np.savez(path, **data)
    return str(path)


@pytest.mark.parametrize("argv, needles", [
    (["--images", "0"], ["--images", "1 to 359"]),
    (["--images", "400"], ["--images", "1 to 359"]),
    (["--m", "3"], ["--m", "2, 4"]),
    (["--lanes", "0"], ["--lanes", "1 to 16"]),
    (["--weights", "missing.npz"], ["--weights", "no such file"]),
    (["--golden-only", "--m", "2"], ["--m", "--golden-only"]),
    (["--golden-only", "--stall", "0.2"], ["--stall", "--golden-only"]),
])
def test_bad_input_one_line(argv, needles, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run-net", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_bad_weights_files(tmp_path, capsys):
    def wrong_shape(d):
        d["c2"] = d["c2"][:, :, :3, :3]

    def out_of_range(d):
        d["c1"] = d["c1"].astype(np.int64) * 300

    def missing_key(d):
        del d["shift_fc"]

    for change, needle in ((wrong_shape, "c2 must have shape (8, 8, 5, 5)"),
                           (out_of_range, "c1 must hold int8 values"),
                           (missing_key, "not a reference-network weights file")):
        path = _bad_weights(tmp_path, change)
        assert main(["run-net", "--golden-only", "--weights", path]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err


def test_unsuitable_engine_is_refused(tmp_path, capsys):
    out = tmp_path / "eng"
    assert main(["generate", "conv", "--m", "2", "--r", "3", "--max-cin", "16",
                 "--output-width", "8", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["run-net", "--engine", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "max_cin >= 64 (it has 16)" in err, err
    assert main(["run-net", "--engine", str(out), "--m", "2"]) == 2
    assert "--m applies to the generated engine" in capsys.readouterr().err
