"""Winograd-aware training (nets/wa.py): its forward pass is the engine's arithmetic."""

import numpy as np
import pytest

from winogen.gen.config import TileConfig
from winogen.gen.dwm import dwm_layer
from winogen.nets import wa
from winogen.nets.digits import load_digits_int8, split
from winogen.nets.reference import forward_int
from winogen.nets.train import load_weights


@pytest.fixture(scope="module")
def reference():
    floats, ints = load_weights()
    x, y = load_digits_int8()
    _, _, xt, yt = split(x, y)
    layers, fc_shape = wa.engine_layers_of(floats, ints)
    return floats, ints, xt[:60], layers, fc_shape


@pytest.mark.parametrize("m", [2, 4])
def test_exact_domain_is_the_integer_network(reference, m):
    """Independent reference: nets.reference.forward_int (direct integer correlations)."""
    floats, ints, xt, layers, fc_shape = reference
    domain = wa.QuantizedDomain.of(TileConfig(m, 3, preset="lavin"))
    _, int8_logits = wa.forward_engine(floats, xt, layers, fc_shape, domain)
    assert np.array_equal(int8_logits, forward_int(ints, xt))
    weights = wa.int8_weights(floats, layers, fc_shape)
    assert all(np.array_equal(weights[k], ints[k]) for k in ("c1", "c2", "c3", "c4"))
    assert np.array_equal(weights["fc"].reshape(10, -1).T, ints["fc"])


@pytest.mark.parametrize("k, stride, padding", [(5, 1, 2), (3, 2, 1), (4, 1, 0), (3, 1, 1)])
def test_engine_inputs_are_the_dwm_stacking(k, stride, padding):
    rng = np.random.default_rng(k * 10 + stride)
    x = rng.integers(-128, 128, (2, 3, 9, 8)).astype(np.float64)
    w = rng.integers(-128, 128, (4, 3, k, k)).astype(np.float64)
    xe, we, pad = wa.engine_inputs({"stride": stride, "padding": padding}, x, w, 3)
    if (k, stride) == (3, 1):
        assert pad == padding and xe is x and we is w
        return
    for i in range(2):
        xs, ws, _ = dwm_layer(x[i], w, stride=stride, padding=padding, engine_r=3)
        assert np.array_equal(xe[i], xs) and np.array_equal(we, ws) and pad == 0


def test_gradients_flow_through_every_rounding(reference):
    """A few steps change every layer's weights and lower the loss on their batch."""
    import autograd.numpy as anp
    from autograd import grad
    floats, ints, xt, layers, fc_shape = reference
    hw = TileConfig(4, 3, preset="lavin").hardware
    n = hw.AT.__len__() + 2
    domain = wa.QuantizedDomain(hw, [1] * n * n, [-3] * n * n, 8)
    labels = np.arange(len(xt)) % 10

    def loss(p):
        logits, _ = wa.forward_engine(p, xt.astype(np.float64), layers, fc_shape, domain, anp)
        return anp.mean(anp.log(anp.sum(anp.exp(logits - logits.max(1, keepdims=True)), 1))
                        + logits.max(1) - logits[anp.arange(len(labels)), labels])

    g = grad(loss)(floats)
    assert all(np.isfinite(g[k]).all() and np.abs(g[k]).sum() > 0 for k in floats)


def test_flex_transforms_start_as_the_algorithm_and_learn(reference):
    """Exact-width flex domain: at the start it is the algorithm's own integer form (same
    outputs as the fixed domain); the matrices get gradients; a moved entry makes the set
    approximate, and the domain is then the generator's integer form of the rounded
    matrices."""
    import autograd.numpy as anp
    from autograd import grad
    from winogen.gen.toomcook import MatrixToomCook, ToomCook
    floats, ints, xt, layers, fc_shape = reference
    tc = ToomCook(2, 3, preset="lavin")
    flex = wa.FlexTransforms(tc, bits=4)
    dom = flex.domain(flex.initial)
    hw = tc.hardware()
    assert all(np.array_equal(getattr(dom, k), np.array(getattr(hw, k))) for k in ("AT", "G", "BT"))
    params = dict(floats, **flex.initial)
    _, a = wa.forward_engine(params, xt, layers, fc_shape, flex)
    _, b = wa.forward_engine(floats, xt, layers, fc_shape, wa.QuantizedDomain(hw))
    assert np.array_equal(a, b)

    def loss(p):
        logits, _ = wa.forward_engine(p, xt[:16].astype(np.float64), layers, fc_shape, flex, anp)
        return anp.mean(logits ** 2)
    g = grad(loss)(params)
    assert all(np.abs(g[k]).sum() > 0 for k in ("AT", "G", "BT"))

    moved = {k: v.copy() for k, v in flex.initial.items()}
    moved["G"][1, 0] += 1 / flex.grid
    given = MatrixToomCook(*flex.given(moved))
    assert not given.exact
    dom = flex.domain(moved)
    assert dom.floor_descale
    assert all(np.array_equal(getattr(dom, k), np.array(getattr(given.hardware(), k)))
               for k in ("AT", "G", "BT"))


def test_flex_given_shifts_follow_the_integer_form():
    """Given (calibrated) shifts belong to the starting matrices: at the start they are
    kept; when a moved entry changes a row's content, B'ᵀ rescales that row by the
    content ratio and the shifts of its positions move by the nearest power of two of
    it, so that V̂ keeps its scale (the scale file written after training has them)."""
    from winogen.gen.toomcook import MatrixToomCook, ToomCook
    tc = ToomCook(4, 3, preset="lavin")
    n = tc.n
    given = (tuple(range(n * n)), tuple(-x for x in range(n * n)))
    flex = wa.FlexTransforms(tc, bits=4, width=8, scales=given)
    assert flex.shifts(MatrixToomCook(*flex.given(flex.initial)).hardware()) == given
    moved = {k: v.copy() for k, v in flex.initial.items()}
    row = next(i for i in range(n) if np.count_nonzero(moved["BT"][i]) > 1)
    col = int(np.flatnonzero(moved["BT"][row])[0])
    moved["BT"][row, col] += 1 / flex.grid        # the row's content falls to 1 / grid
    hw0 = MatrixToomCook(*flex.given(flex.initial)).hardware()
    hw1 = MatrixToomCook(*flex.given(moved)).hardware()
    size = lambda hw, i: np.abs(np.array(hw.BT[i], dtype=float)).sum()
    factor = size(hw1, row) / size(hw0, row)
    assert factor > 8                              # the integer row grew by the content ratio
    sv, su = flex.shifts(hw1)
    sv, gv = np.array(sv).reshape(n, n), np.array(given[0]).reshape(n, n)
    for i in range(n):
        for j in range(n):
            expect = int(np.round(np.log2(factor) * ((i == row) + (j == row))))
            assert sv[i, j] == max(gv[i, j] + expect, 0)
    dom = flex.domain(moved)
    assert dom.v_shifts_given == tuple(int(x) for x in sv.ravel())


def test_calibrated_shifts_fit_the_percentile_and_every_filter():
    rng = np.random.default_rng(0)
    V = rng.normal(0, 1000, (5000, 4, 4)) * np.arange(1, 17).reshape(4, 4)
    U = rng.normal(0, 0.3, (40, 4, 4))
    sv, su = wa.calibrated_shifts(V, U, 8, percentile=99.0)
    sv, su = np.array(sv).reshape(4, 4), np.array(su).reshape(4, 4)
    p = np.percentile(np.abs(V), 99.0, axis=0)
    top = 127
    assert (p / 2.0 ** sv <= top).all() and ((sv == 0) | (p / 2.0 ** (sv - 1) > top)).all()
    umax = np.abs(U).max(axis=0)
    assert (umax / 2.0 ** su <= top).all() and (umax / 2.0 ** (su - 1) > top).all()
    assert (su < 0).all()             # small filters are scaled up


def test_winograd_statistics_are_the_layers_tiles(reference):
    floats, ints, xt, layers, fc_shape = reference
    hw = TileConfig(2, 3, preset="lavin").hardware
    V, U = wa.winograd_statistics(hw, floats, layers, fc_shape, xt[:4])
    # c1's first tile of image 0 is the zero-padded corner of the image.
    BT = np.array(hw.BT)
    tile = np.zeros((4, 4))
    tile[1:, 1:] = xt[0, 0, :3, :3]
    assert np.array_equal(V[0], BT @ tile @ BT.T)
    assert U.shape[1:] == (4, 4) and np.isfinite(U).all()
    total_filters = sum(w.shape[0] * w.shape[1] for w in
                        (wa.engine_inputs(l, np.zeros((1,) + s), wa._conv_weight(
                            l["name"], floats[l["name"]], fc_shape, np), 3)[1]
                         for l, s in zip(layers, [(1, 16, 16), (8, 16, 16), (8, 16, 16),
                                                  (16, 8, 8), (16, 4, 4)])))
    assert len(U) == total_filters


@pytest.mark.parametrize("m, preset, width, scales", [(2, "lavin", 8, "tapwise"),
                                                      (4, "barabasz", 8, "global")])
def test_quantized_forward_is_the_engines_golden_model(reference, m, preset, width, scales):
    """The training forward pass against the quantized layer engine's golden model
    (gen.layer.layer_golden through sim.network), layer after layer, whole network."""
    from winogen.gen.config import LayerConfig
    from winogen.nets.netfile import load_network
    from winogen.nets.train import NETWORK
    from winogen.sim.network import engine_golden_network, network_requirements
    floats, ints, xt, layers, fc_shape = reference
    net = load_network(NETWORK)
    tile = TileConfig(m, 3, 8, 8, preset=preset, wino_width=width, wino_scales=scales)
    cfg = LayerConfig(tile, p_in=4, p_out=4, output_width=8,
                      **network_requirements(net.layers, net.input_shape, 3))
    golden = engine_golden_network(cfg, list(net.layers), xt[:10])[:, :, 0, 0]
    _, ours = wa.forward_engine(floats, xt[:10], layers, fc_shape, wa.QuantizedDomain.of(tile))
    assert np.array_equal(golden, ours)
    exact = forward_int(ints, xt[:10])
    assert not np.array_equal(ours, exact)        # the domain does round something


def test_adam_rates_give_a_parameter_its_own_step():
    """``rates`` sets a parameter's own learning rate (the flex matrices' --matrix-lr)."""
    import numpy as np
    from winogen.nets.train import adam
    params = {"a": np.ones(3), "b": np.ones(3)}
    gradient = lambda p, xb, yb: {"a": np.ones(3), "b": np.ones(3)}
    loss = lambda p, xb, yb: 0.0
    out = adam(params, gradient, loss, np.zeros((4, 1)), np.zeros(4), epochs=1, lr=1e-2,
               batch=4, rng=np.random.default_rng(0), rates={"b": 0.0})
    assert np.allclose(out["b"], 1.0) and np.allclose(out["a"], 1.0 - 1e-2)


@pytest.mark.parametrize("args, message", [
    (["--matrix-lr", "1e-5"], "--matrix-lr applies to --flex only"),
    (["--flex", "--matrix-lr", "0"], "--matrix-lr must be positive, not 0.0"),
])
def test_cli_matrix_lr_refused(tmp_path, args, message):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "winogen.nets.wa", "--wino-width", "8",
                           "-o", str(tmp_path / "o"), *args], capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()
