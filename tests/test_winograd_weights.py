"""Winograd-domain weights given directly (pruned or learned Û, `winograd_weights=True`):
the golden model against raw filters and against the independent float implementation of
winogen.nets, the range checks, and the quantized layer engine under Verilator with 75 %
of Û zero."""

import numpy as np
import pytest

from winogen.gen.config import TileConfig
from winogen.gen.layer import LayerConfig, LayerRun, check_winograd_weights, layer_golden

TILE = TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise")
ENGINE = LayerConfig(TILE, max_height=8, max_width=8, max_cin=4, max_cout=4, p_in=2, p_out=2)


def _random_u(tile, shape, sparsity, rng):
    """Û drawn uniformly in each position's range, ``sparsity`` of it zero."""
    n = tile.n
    u = np.zeros((*shape, n, n), dtype=np.int64)
    for k, iv in enumerate(tile.quantization.uq_intervals):
        u[:, :, k // n, k % n] = rng.integers(iv.lo, iv.hi + 1, shape)
    u[rng.random(u.shape) < sparsity] = 0
    return u


def test_winograd_weights_of_raw_filters_give_the_raw_golden():
    rng = np.random.default_rng(0)
    run = LayerRun(7, 6, 3, 2, 1, 0).check(ENGINE)
    x = rng.integers(-128, 128, (3, 7, 6))
    w = rng.integers(-128, 128, (2, 3, 3, 3))
    u = np.array(TILE.stored_filters(w), dtype=np.int64)
    assert np.array_equal(layer_golden(ENGINE, run, x, u, winograd_weights=True),
                          layer_golden(ENGINE, run, x, w))


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_weights_golden_equals_the_float_network_arithmetic(m):
    """gen's integer model and nets.wa's float implementation (an independent code path)
    agree on pruned Û."""
    from winogen.nets.wa import QuantizedDomain, winograd_layer_u
    tile = TileConfig(m, 3, 8, 8, wino_width=9, wino_scales="tapwise", preset="lavin")
    cfg = LayerConfig(tile, max_height=10, max_width=10, max_cin=3, max_cout=3)
    rng = np.random.default_rng(m)
    run = LayerRun(9, 10, 3, 3, 1, 0).check(cfg)
    x = rng.integers(-128, 128, (3, 9, 10))
    u = _random_u(tile, (3, 3), 0.75, rng)
    q = tile.quantization
    dom = QuantizedDomain(tile.hardware, q.v_shifts, q.u_shifts, 9)
    # U such that the float path's Û (U·u_scale rounded half up) is exactly u
    y = winograd_layer_u(x[None].astype(np.float64), u / dom.u_scale, 1, dom)[0]
    assert np.array_equal(layer_golden(cfg, run, x, u, winograd_weights=True), y)


@pytest.mark.parametrize("change, message", [
    (lambda u: u[:, :, :3], r"must have shape \(2, 3, 4, 4\)"),
    (lambda u: u.astype(np.float64), r"must be integers, not float64"),
    (lambda u: _set(u, (0, 0, 1, 2), 10 ** 6), r"at position \(1, 2\) must lie in \["),
])
def test_winograd_weights_bad_input(change, message):
    rng = np.random.default_rng(1)
    u = change(_random_u(TILE, (2, 3), 0.5, rng))
    with pytest.raises((ValueError, TypeError), match=message):
        check_winograd_weights(TILE, u, (2, 3))


def _set(u, idx, value):
    u = u.copy()
    u[idx] = value
    return u


def test_winograd_weights_need_a_quantized_offline_engine():
    exact = LayerConfig(TileConfig(2, 3, 8, 8), max_height=8, max_width=8, max_cin=2,
                        max_cout=2)
    run = LayerRun(4, 4, 2, 2, 1, 0).check(exact)
    with pytest.raises(ValueError, match=r"apply to quantized Winograd domains .* not "
                                         r"wino_width=None"):
        layer_golden(exact, run, np.zeros((2, 4, 4), dtype=np.int64),
                     np.zeros((2, 2, 4, 4), dtype=np.int64), winograd_weights=True)


@pytest.mark.verilator
@pytest.mark.parametrize("sparsity, stall, seed", [(0.75, 0.3, 3), (0.0, 0.2, 4)])
def test_pruned_layer_on_the_quantized_engine_under_verilator(sparsity, stall, seed):
    """Pruned Û through the emitted quantized layer engine's weight stream (random stalls
    on every stream): bit-exact against the golden model."""
    from winogen.sim.driver import run_layer
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (4, 8, 7))
    x[:, 0, :] = -128                                  # extremes
    u = _random_u(TILE, (3, 4), sparsity, rng)
    assert abs((u == 0).mean() - sparsity) < 0.1
    run = LayerRun(8, 7, 4, 3, 1, 0).check(ENGINE)
    y, _ = run_layer(ENGINE, x, u, padding=1, stall=stall, seed=seed, winograd_weights=True)
    assert np.array_equal(y, layer_golden(ENGINE, run, x, u, winograd_weights=True))
