"""Sparse Winograd pruning (winogen.nets.prune): the U-parameterized forward pass is the
engine's, structured spatial pruning zeroes the Winograd positions it claims, the masks hit
their targets, the importance factors are the output contributions, and bad CLI input
gets one line."""

import subprocess
import sys

import numpy as np
import pytest

from winogen.gen.toomcook import ToomCook
from winogen.nets import prune
from winogen.nets.digits import load_digits_int8, split
from winogen.nets.train import load_weights
from winogen.nets.wa import (QuantizedDomain, calibrated_shifts, engine_layers_of,
                             forward_engine, int8_weights, winograd_statistics)


@pytest.fixture(scope="module")
def net():
    floats, ints = load_weights()
    layers, fc_shape = engine_layers_of(floats, ints)
    x, y = load_digits_int8()
    x_train, y_train, x_test, y_test = split(x, y)
    int8 = int8_weights(floats, layers, fc_shape)
    return dict(floats=floats, layers=layers, fc_shape=fc_shape, x_train=x_train,
                y_train=y_train, x_test=x_test[:40], int8=int8,
                kernel_sizes={k: v.shape[2] for k, v in int8.items()})


def _domain(net, m, width=10):
    hw = ToomCook(m, 3, preset="lavin").hardware()
    V, U = winograd_statistics(hw, net["floats"], net["layers"], net["fc_shape"],
                               net["x_train"][:20])
    return QuantizedDomain(hw, *calibrated_shifts(V, U, width), width)


@pytest.mark.parametrize("m", [2, 4])
def test_forward_u_is_the_engine(net, m):
    """Unpruned U through forward_u gives forward_engine's int8 logits exactly (and that one
    equals the engine's golden model: tests/test_wa.py)."""
    dom = _domain(net, m)
    U = prune.winograd_weights(net["int8"], net["layers"], dom)
    _, want = forward_engine(net["floats"], net["x_test"], net["layers"], net["fc_shape"], dom)
    _, got = prune.forward_u(U, net["x_test"], net["layers"], net["fc_shape"], dom,
                             net["kernel_sizes"])
    assert np.array_equal(got, want)


def test_pruned_entries_are_zero_in_the_deployed_weights(net):
    dom = _domain(net, 2)
    U = prune.winograd_weights(net["int8"], net["layers"], dom)
    masks = {k: prune._magnitude_mask(np.abs(v), 0.75) for k, v in U.items()}
    deployed = prune.deployed_u({k: v * masks[k] for k, v in U.items()}, dom)
    for k in U:
        assert not deployed[k][~masks[k]].any()
        assert abs((1 - masks[k].mean()) - 0.75) < 1 / masks[k].size + 1e-12
    assert abs(prune.sparsity(masks) - 0.75) < 1e-2


def test_magnitude_mask_keeps_forced_zeros():
    rng = np.random.default_rng(1)
    score = rng.random((6, 5, 4, 4))
    keep = rng.random(score.shape) > 0.3
    mask = prune._magnitude_mask(score, 0.6, keep=keep)
    assert not mask[~keep].any()
    assert (~mask).sum() == round(0.6 * score.size)
    # the survivors are the largest-scored allowed entries
    assert score[mask].min() >= score[keep & ~mask].max()


@pytest.mark.parametrize("m", [2, 4])
def test_structured_spatial_pruning_zeroes_the_claimed_positions(m):
    """Brute force: G (w ⊙ spatial mask) Gᵀ is exactly zero at every forced position, and
    the forced fraction reaches the target."""
    hw = ToomCook(m, 3, preset="lavin").hardware()
    G = np.array(hw.G, dtype=np.float64)
    rng = np.random.default_rng(m)
    w = rng.normal(size=(5, 3, 3, 3))
    index = np.arange(1, w.size + 1).reshape(w.shape)
    zero, forced = prune.spatial_structured_masks(w, index, G, 0.3)
    wm = w.copy().ravel()
    wm[zero] = 0
    U = np.einsum("ia,ocab,jb->ocij", G, wm.reshape(w.shape), G)
    assert forced.mean() >= 0.3
    assert np.all(U[forced] == 0)
    # and the unforced positions are not all zero by accident of the test
    assert np.count_nonzero(U[~forced]) == (~forced).sum()


def test_structured_pruning_counts_dwm_padding_as_zero():
    """Taps that are DWM padding (index 0) are zero already: positions whose support lies
    in them are forced for free."""
    hw = ToomCook(2, 3, preset="lavin").hardware()
    G = np.array(hw.G, dtype=np.float64)
    w = np.ones((1, 1, 3, 3))
    index = np.arange(1, 10).reshape(1, 1, 3, 3)
    index[..., 0, :] = 0                    # first row of the piece is padding
    w[..., 0, :] = 0
    _, forced = prune.spatial_structured_masks(w, index, G, 0.0)
    assert forced[0, 0, 0].all()            # G row 0 reads tap 0 only: U[0, :] = 0


@pytest.mark.parametrize("m", [2, 4])
def test_importance_factors_are_output_contributions(m):
    """F_ij² = E‖Aᵀ (e_ij ⊙ Bᵀ d B) A‖² for d of independent unit-variance entries,
    computed exactly as Σ over the basis of d."""
    hw = ToomCook(m, 3, preset="lavin").hardware()
    dom = QuantizedDomain(hw)
    n = dom.n
    F = prune.importance_factors(dom)
    for i, j in [(0, 0), (1, n - 1), (n - 1, n - 2)]:
        total = 0.0
        for a in range(n):
            for b in range(n):
                d = np.zeros((n, n))
                d[a, b] = 1
                V = dom.BT @ d @ dom.BT.T
                E = np.zeros((n, n))
                E[i, j] = V[i, j]
                total += float(np.sum((dom.AT @ E @ dom.AT.T) ** 2))
        assert np.isclose(F[i, j] ** 2, total)


def test_spatial_winograd_reaches_the_target_without_training(net):
    dom = _domain(net, 2)
    U, masks, step1 = prune.prune_spatial_winograd(
        net["floats"], 0.75, net["x_train"][:8], net["y_train"][:8], net["layers"],
        net["fc_shape"], dom, net["kernel_sizes"], spatial_epochs=0, epochs=0)
    assert 0.375 <= step1 <= 0.75 + 1e-9
    assert abs(prune.sparsity(masks) - 0.75) < 1e-2
    deployed = prune.deployed_u(U, dom)
    assert all(not deployed[k][~masks[k]].any() for k in masks)


@pytest.mark.parametrize("args, flag", [
    (["--sparsities", "0.5,1.5"], "--sparsities"),
    (["--methods", "native,lottery"], "--methods"),
    (["--methods", "native", "--spatial-share", "0.3"], "--spatial-share"),
    (["--wino-width", "1"], "--wino-width"),
    (["--m", "2,x"], "--m"),
    (["--epochs", "-1"], "--epochs"),
    (["--methods", "spatial", "--native-score", "importance"], "--native-score"),
    (["--lr", "0"], "--lr"),
])
def test_cli_bad_input(tmp_path, args, flag):
    proc = subprocess.run([sys.executable, "-m", "winogen.nets.prune", "-o", str(tmp_path),
                           *args], capture_output=True, text=True)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert flag in last and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())


def test_global_masks_hit_the_target_and_favour_large_layers():
    rng = np.random.default_rng(3)
    scores = {"small": rng.random((2, 1, 4, 4)), "large": rng.random((16, 16, 4, 4))}
    keep = {k: rng.random(v.shape) > 0.1 for k, v in scores.items()}
    masks = prune.global_masks(scores, 0.8, keep=keep)
    total = sum(v.size for v in scores.values())
    zeros = sum(int((~m).sum()) for m in masks.values())
    assert zeros == round(0.8 * total)
    assert all(not masks[k][~keep[k]].any() for k in scores)
    # with scores of equal distribution, each layer keeps about the same fraction
    assert abs(masks["large"].mean() - 0.2) < 0.05


def test_native_scores():
    dom = QuantizedDomain(ToomCook(4, 3, preset="lavin").hardware())
    U = {"a": np.ones((2, 3, 6, 6))}
    assert np.array_equal(prune.native_scores(U, dom, "magnitude")["a"], U["a"])
    F = prune.importance_factors(dom)
    assert np.allclose(prune.native_scores(U, dom, "importance")["a"], F)
    with pytest.raises(ValueError, match=r"score must be one of magnitude, importance, not 'x'"):
        prune.native_scores(U, dom, "x")
