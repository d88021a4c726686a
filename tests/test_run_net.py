"""``winogen run-net``: the reference int8 CNN classified by emitted engines under Verilator,
bit-exact against its integer golden model; and its bad input."""

import json

import numpy as np
import pytest

from winogen.cli import main
from winogen.nets.train import NETWORK


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


def _bad_network(tmp_path, change_spec=None, change_weights=None):
    """A copy of the committed network file with its JSON or weights changed."""
    spec = json.loads(NETWORK.read_text())
    weights = dict(np.load(NETWORK.parent / spec["weights"]))
    if change_weights:
        change_weights(weights)
    np.savez(tmp_path / spec["weights"], **weights)
    if change_spec:
        change_spec(spec)
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    return str(path)


def _set(layer, key, value):
    def change(spec):
        spec["layers"][layer][key] = value
    return change


@pytest.mark.parametrize("argv, needles", [
    (["--images", "0"], ["--images", "1 to 359"]),
    (["--images", "400"], ["--images", "1 to 359"]),
    (["--m", "3"], ["--m", "2, 4"]),
    (["--lanes", "0"], ["--lanes", "1 to 16"]),
    (["--network", "missing.json"], ["--network", "no such network file"]),
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


def _drop(key):
    def change(d):
        del d[key]
    return change


@pytest.mark.parametrize("spec, weights, needle", [
    (None, lambda d: d.update(c2=d["c2"][:, :, :3, :3]),
     "layer 'c2': weights must have shape (8, 8, 5, 5), not (8, 8, 3, 3)"),
    (None, lambda d: d.update(c1=d["c1"].astype(np.int64) * 300),
     "layer 'c1': weights must be int8 values (-128..127)"),
    (None, _drop("fc"), "layer 'fc': the weights file has no array 'fc'"),
    (_set(1, "kernel", 9), None, "layer 'c2': weights must have shape (8, 8, 9, 9)"),
    (_set(2, "stride", 3), None, "layer 'c3'.stride must be 1 or 2, not 3"),
    (_set(0, "kernel", 16), None, "layer 'c1'.kernel must be an integer from 1 to 15"),
    (_set(1, "cin", 4), None, "layer 'c2'.cin must be 8 (the previous layer's channels)"),
    (_set(4, "inputs", 100), None, "layer 'fc'.inputs must be 256"),
    (_set(0, "relu", "yes"), None, "layer 'c1'.relu must be true or false"),
    (_set(3, "type", "pool"), None, "layer 'c4'.type must be conv or dense"),
    (lambda s: s.update(format="other"), None, "format must be 'winogen-network-1'"),
    (lambda s: s.update(weights="none.npz"), None, "does not exist"),
    (lambda s: s["layers"].pop(), None, "the last layer must give one logit per class"),
])
def test_bad_network_files(spec, weights, needle, tmp_path, capsys):
    path = _bad_network(tmp_path, spec, weights)
    assert main(["run-net", "--golden-only", "--network", path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--network" in err and needle in err, err


def test_committed_network_file_is_the_reference_network():
    """The network file gives forward_int's logits (its loader's golden model)."""
    from winogen.nets.digits import load_digits_int8, split
    from winogen.nets.netfile import load_network, network_forward_int
    from winogen.nets.reference import forward_int
    from winogen.nets.train import load_weights
    x, y = load_digits_int8()
    images = split(x, y)[2][:32]
    net = load_network(NETWORK)
    assert np.array_equal(network_forward_int(net, images)[:, :, 0, 0],
                          forward_int(load_weights()[1], images))


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


@pytest.mark.verilator
def test_network_on_a_given_engine(tmp_path, capsys):
    """``--engine DIR``: an engine generated by the user (here the same parameters as the
    default F(2,3) engine, so its Verilator build is shared)."""
    out = tmp_path / "eng"
    assert main(["generate", "conv", "--m", "2", "--r", "3", "--pin", "4", "--pout", "4",
                 "--pixels-per-beat", "4", "--filters-per-beat", "4", "--output-width", "8",
                 "--max-cin", "64", "--max-cout", "16", "--max-height", "18",
                 "--max-width", "18", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["run-net", "--engine", str(out), "--images", "6", "--json"]) == 0
    report = _report(capsys)
    assert report["bit_exact"] is True and report["engine"] == "winoconv_f2x2_3x3_mul_d8w8_p4x4"
