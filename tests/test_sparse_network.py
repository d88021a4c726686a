"""Winograd-domain networks (a network file with a `winograd` section: pruned Û per layer)
and `winogen run-net` on them: the loader against nets.prune's own forward pass, bad files
refused in one line, and (Verilator) the pruned reference network classified by the
programmable quantized engine and by weight-specialized engines, bit-exact."""

import json

import numpy as np
import pytest

from winogen.cli import main


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """The reference network, 75 % of its F(2,3) Winograd-domain weights pruned by magnitude
    (no retraining), as a network file; and nets.prune's forward pass for it."""
    from winogen.gen.toomcook import ToomCook
    from winogen.nets import prune
    from winogen.nets.digits import load_digits_int8, split
    from winogen.nets.netfile import load_network, save_winograd_network
    from winogen.nets.train import NETWORK, load_weights
    from winogen.nets.wa import (QuantizedDomain, calibrated_shifts, engine_layers_of,
                                 int8_weights, winograd_statistics)
    floats, ints = load_weights()
    layers, fc_shape = engine_layers_of(floats, ints)
    x, y = load_digits_int8()
    x_train, _, x_test, _ = split(x, y)
    hw = ToomCook(2, 3, preset="lavin").hardware()
    shifts = calibrated_shifts(*winograd_statistics(hw, floats, layers, fc_shape,
                                                    x_train[:20]), 10)
    domain = QuantizedDomain(hw, *shifts, 10)
    int8 = int8_weights(floats, layers, fc_shape)
    U = prune.winograd_weights(int8, layers, domain)
    masks = prune.global_masks(prune.native_scores(U, domain, "magnitude"), 0.75)
    U = {k: v * masks[k] for k, v in U.items()}
    path = tmp_path_factory.mktemp("pruned") / "pruned.json"
    net = save_winograd_network(path, load_network(NETWORK), prune.deployed_u(U, domain),
                                dict(m=2, preset="lavin", wino_width=10,
                                     v_shifts=list(shifts[0]), u_shifts=list(shifts[1])))

    def forward(images):
        return prune.forward_u(U, images, layers, fc_shape, domain,
                               {k: v.shape[2] for k, v in int8.items()})[1]
    return path, net, forward, x_test


def test_winograd_network_file_gives_the_training_forward_pass(pruned):
    from winogen.nets.netfile import network_forward_int
    path, net, forward, x_test = pruned
    assert [layer["u"].shape for layer in net.layers] == [
        (8, 1, 4, 4), (8, 32, 4, 4), (16, 32, 4, 4), (16, 64, 4, 4), (10, 64, 4, 4)]
    zeros = sum(int(np.sum(layer["u"] == 0)) for layer in net.layers)
    assert abs(zeros / sum(layer["u"].size for layer in net.layers) - 0.75) < 0.02
    images = x_test[:40]
    assert np.array_equal(network_forward_int(net, images).reshape(40, -1), forward(images))


def test_golden_only_on_a_winograd_network(pruned, capsys):
    path, net, forward, x_test = pruned
    assert main(["run-net", "--network", str(path), "--golden-only", "--images", "100",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    from winogen.nets.digits import load_digits_int8, split
    _, _, _, y_test = split(*load_digits_int8())
    assert report["golden_top1"] == float(np.mean(np.argmax(forward(x_test[:100]), 1)
                                                  == y_test[:100]))


def _changed(tmp_path, path, change_spec=None, change_weights=None):
    spec = json.loads(path.read_text())
    weights = dict(np.load(path.with_suffix(".npz")))
    if change_weights:
        change_weights(weights)
    np.savez(tmp_path / "bad.npz", **weights)
    spec["weights"] = "bad.npz"
    if change_spec:
        change_spec(spec)
    out = tmp_path / "bad.json"
    out.write_text(json.dumps(spec))
    return str(out)


def _section(key, value):
    def change(spec):
        spec["winograd"][key] = value
    return change


@pytest.mark.parametrize("spec, weights, needle", [
    (None, lambda d: d.update(c2=d["c2"][:, :8]),
     "layer 'c2': Winograd-domain weights must have shape (8, 32, 4, 4) (C_out, 4 pieces x "
     "C_in, n, n), not (8, 8, 4, 4)"),
    (None, lambda d: d.update(c1=d["c1"] * 0 + 10 ** 6),
     "layer 'c1': Winograd-domain weights at position (0, 0) must lie in"),
    (None, lambda d: d.update(c3=d["c3"].astype(np.float64)),
     "layer 'c3': weights must be integers, not float64"),
    (_section("wino_width", "ten"), None, "winograd.wino_width must be an integer from 2 to 32"),
    (_section("preset", "nope"), None, "winograd.preset must be one of"),
    (_section("v_shifts", [0, 1]), None, "winograd:"),
    (_section("rounding", "up"), None, "winograd has no field 'rounding'"),
    (lambda s: s.update(winograd=[2]), None, "winograd must be an object"),
])
def test_bad_winograd_network_files(pruned, spec, weights, needle, tmp_path, capsys):
    path = _changed(tmp_path, pruned[0], spec, weights)
    assert main(["run-net", "--golden-only", "--network", path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--network" in err and needle in err, err


@pytest.mark.parametrize("argv, needle", [
    (["--engine-kind", "specialized", "--lanes", "2"],
     "--lanes does not apply with --engine-kind specialized"),
    (["--m", "4"], "--m must be 2 for this network (its winograd section is F(2, 3)), not 4"),
    (["--golden-only", "--engine-kind", "specialized"],
     "--engine-kind does not apply with --golden-only"),
    (["--engine-kind", "sparse"], "--engine-kind"),
    (["--engine-kind", "zero-skip", "--sparse-lanes", "5"],
     "--sparse-lanes must divide n² = 16 (one of 1, 2, 4, 8, 16), not 5"),
    (["--sparse-lanes", "4"], "--sparse-lanes applies with --engine-kind zero-skip only"),
    (["--engine-kind", "zero-skip", "--engine", "x"],
     "--engine does not apply with --engine-kind zero-skip"),
])
def test_run_net_engine_kind_bad_input(pruned, argv, needle, capsys):
    assert main(["run-net", "--network", str(pruned[0]), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


@pytest.mark.slow
def test_given_engine_must_have_the_networks_domain(pruned, tmp_path, capsys):
    out = tmp_path / "eng"
    assert main(["generate", "conv", "--m", "2", "--r", "3", "--max-cin", "64",
                 "--max-cout", "16", "--output-width", "8", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["run-net", "--network", str(pruned[0]), "--engine", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "the network's Winograd domain" in err, err


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["specialized", "zero-skip"])
def test_pruned_network_classified_on_the_engines(pruned, kind, capsys):
    """The 75 %-pruned network through run-net: every layer bit-exact, the classifications
    equal the golden model's (one weight-specialized engine per layer; the zero-skipping
    engine). The programmable engine runs the same network in test_prune_verilator.py."""
    path, net, forward, x_test = pruned
    images = 6
    assert main(["run-net", "--network", str(path), "--engine-kind", kind, "--images",
                 str(images), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bit_exact"] is True and report["engine_kind"] == kind
    assert report["engine_top1"] == report["golden_top1"]
    assert all(layer["mismatches"] == 0 for layer in report["layers"])
    if kind == "specialized":
        nonzero = [int(np.count_nonzero(layer["u"])) for layer in net.layers]
        assert [layer["multipliers"] for layer in report["layers"]] == nonzero
