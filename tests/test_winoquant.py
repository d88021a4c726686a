"""The quantized Winograd domain (issue 19, item 1): shifts, model semantics, configuration.

The golden model (:class:`~winogen.gen.fixedpoint.TileModel`) is checked against an
independent reference written here with exact rationals (``Fraction``): ``V̂`` and ``Û``
by their definition (``⌊x / 2^s + ½⌋``, clamped), and the output as
``⌊Aᵀ (V̂ 2^sV ⊙ Û 2^sU) A + ½⌋`` with the rational matrices, without the model's
alignment shifts or its output shift. Wide enough domains are exact.
"""

import contextlib
from fractions import Fraction
import math

import numpy as np
import pytest

from winogen.gen.bounds import signed_range, transform_intervals
from winogen.gen.config import TileConfig
from winogen.gen.manifest import to_config
from winogen.gen.params import config_from_params
from winogen.gen.winoquant import (WinogradQuantization, exact_shift, round_half_up_shift,
                                   scale_shift, winograd_shifts)


def _floor_half(x):
    """``⌊x + ½⌋`` of a Fraction."""
    return math.floor(x + Fraction(1, 2))


def _reference(cfg, d, g):
    """The quantized output of one tile ``d`` and filter ``g``, from the definition."""
    q, hw, n = cfg.quantization, cfg.hardware, cfg.n
    top = (1 << (cfg.wino_width - 1)) - 1
    BT = [[Fraction(x) for x in row] for row in hw.BT]
    G = [[Fraction(x) for x in row] for row in hw.G]
    AT = [[Fraction(x) for x in row] for row in hw.AT]
    D2 = Fraction(hw.denominator ** 2)

    def sandwich(M, X):
        rows, inner = len(M), len(X)
        MX = [[sum(M[i][k] * X[k][j] for k in range(inner)) for j in range(inner)]
              for i in range(rows)]
        return [[sum(MX[i][k] * M[j][k] for k in range(inner)) for j in range(rows)]
                for i in range(rows)]

    V = sandwich(BT, [[Fraction(int(x)) for x in row] for row in d])
    U = sandwich(G, [[Fraction(int(x)) for x in row] for row in g])
    prod = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            e = i * n + j
            sv, su = q.v_shifts[e], q.u_shifts[e]
            vq = min(_floor_half(V[i][j] / Fraction(2) ** sv), top)
            uq = min(_floor_half(U[i][j] / D2 / Fraction(2) ** su), top)
            assert -(top + 1) <= vq and -(top + 1) <= uq
            prod[i][j] = Fraction(vq) * Fraction(2) ** sv * Fraction(uq) * Fraction(2) ** su
    Y = sandwich(AT, prod)
    return np.array([[_floor_half(y) for y in row] for row in Y], dtype=np.int64)


def _correlation(d, g):
    r = g.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(d, (r, r), axis=(-2, -1))
    return (windows * g[..., None, None, :, :]).sum(axis=(-2, -1))


def _inputs(cfg, count, seed):
    rng = np.random.default_rng(seed)
    dv, wv = cfg.data_interval, cfg.weight_interval
    d = rng.integers(dv.lo, dv.hi + 1, (count, cfg.n, cfg.n))
    g = rng.integers(wv.lo, wv.hi + 1, (count, cfg.r, cfg.r))
    # the extremes of every V_ij (rounding carries there) with an extreme filter
    BT = np.array(cfg.hardware.BT)
    corners = []
    for e in range(cfg.n ** 2):
        coeff = np.outer(BT[e // cfg.n], BT[e % cfg.n])
        corners += [np.where(coeff > 0, dv.hi, dv.lo), np.where(coeff > 0, dv.lo, dv.hi)]
    d = np.concatenate([d, np.array(corners)])
    g = np.concatenate([g, np.full((len(corners), cfg.r, cfg.r), wv.lo)])
    return d, g


QUANTIZED = [TileConfig(2, 3, 8, 8, wino_width=8), TileConfig(2, 3, 8, 8, wino_width=9,
                                                                wino_scales="tapwise"),
             TileConfig(4, 3, 8, 8, wino_width=9), TileConfig(4, 3, 8, 8, wino_width=9,
                                                                  wino_scales="tapwise"),
             TileConfig(4, 3, 6, 7, wino_width=6, wino_scales="tapwise", preset="lavin",
                        fold="G"),
             TileConfig(2, 5, 8, 8, wino_width=10, wino_scales="tapwise")]


@pytest.mark.parametrize("cfg", QUANTIZED, ids=lambda c: c.module_name)
def test_model_equals_the_rational_reference(cfg):
    d, g = _inputs(cfg, 25, seed=cfg.n)
    got = cfg.golden_model()(d, g)
    want = np.array([_reference(cfg, dd, gg) for dd, gg in zip(d, g)])
    assert np.array_equal(got, want)


@pytest.mark.parametrize("m, r, preset", [(2, 3, "default"), (2, 3, "lavin"), (3, 2, "default"),
                                          (2, 2, "default")])
def test_a_wide_enough_domain_is_exact(m, r, preset):
    # D a power of two: U / D² is exact at some power-of-two scale, and exact_shift stops there.
    base = TileConfig(m, r, 8, 8, preset=preset)
    d2 = base.hardware.denominator ** 2
    assert d2 & (d2 - 1) == 0
    q = WinogradQuantization(base.hardware, 8, 8, 24, "tapwise")
    assert all(s is not None for s in (exact_shift(base.hardware.G, e, d2)
                                       for e in range(base.n ** 2)))
    d, g = _inputs(base, 40, seed=3)
    model = base.golden_model()
    V = model.input_transform(d)
    U = model.exact_filter_transform(g)
    Vq, Uq = q.quantize_v(V), q.quantize_u(U).astype(np.int64)
    assert np.array_equal(Vq, V)
    Z = model.output_transform(q.align(Vq * Uq))
    assert np.array_equal(q.descale(Z), _correlation(d, g[:, None, None][:, 0, 0]))


def test_the_error_shrinks_with_the_width_and_tapwise_beats_global_on_f43():
    d, g = _inputs(TileConfig(4, 3), 300, seed=5)
    exact = _correlation(d, g)
    errors = {}
    for scales in ("global", "tapwise"):
        for w in (8, 10, 12, 14):
            y = TileConfig(4, 3, wino_width=w, wino_scales=scales).golden_model()(d, g)
            errors[scales, w] = np.abs(y - exact).mean()
    for scales in ("global", "tapwise"):
        assert errors[scales, 8] > errors[scales, 10] > errors[scales, 12] > errors[scales, 14]
    for w in (8, 10, 12):
        assert errors["tapwise", w] < errors["global", w]


def test_scale_shift_is_the_smallest_that_fits():
    for lo, hi, w in [(-128, 127, 8), (-128, 127, 6), (-512, 508, 9), (Fraction(-3, 7), 2, 5),
                      (Fraction(1, 1000), Fraction(1, 3), 4), (-1, 0, 2)]:
        s = scale_shift(lo, hi, w)
        half = 1 << (w - 1)
        assert Fraction(lo) / Fraction(2) ** s >= -half and Fraction(hi) / Fraction(2) ** s < half
        t = s - 1
        assert not (Fraction(lo) / Fraction(2) ** t >= -half
                    and Fraction(hi) / Fraction(2) ** t < half)
    assert scale_shift(-3, 3, 8, minimum=0) == 0
    assert scale_shift(0, 0, 8, minimum=2) == 2


def test_exact_shift():
    # (x0 + x1)·(x0 - x1) coefficients 1: an integer, a multiple of 2^0; over 4: none... 2^-2
    assert exact_shift([[1, 1], [1, -1]], 3, 1) == 0
    assert exact_shift([[2, 2], [1, -1]], 0, 1) == 2
    assert exact_shift([[1, 1], [1, -1]], 0, 4) == -2
    assert exact_shift([[1, 1], [1, -1]], 0, 9) is None


def test_round_half_up_shift_matches_the_definition():
    x = np.arange(-300, 301)
    for s in range(0, 6):
        want = np.array([_floor_half(Fraction(int(v), 2 ** s)) for v in x])
        assert np.array_equal(round_half_up_shift(x, s), want)


def test_global_shifts_are_the_largest_tapwise_ones():
    hw = TileConfig(4, 3).hardware
    tv, tu = winograd_shifts(hw, 8, 8, 9, "tapwise")
    gv, gu = winograd_shifts(hw, 8, 8, 9, "global")
    assert set(gv) == {max(tv)} and set(gu) == {max(tu)}


def test_quantized_ranges_fit_w_bits_and_the_clamp_is_where_rounding_carries():
    cfg = TileConfig(2, 3, 8, 8, wino_width=8)
    q = cfg.quantization
    full = signed_range(8)
    for iv in q.vq_intervals + q.uq_intervals:
        assert full.lo <= iv.lo and iv.hi <= full.hi
    exact = transform_intervals(cfg.hardware.BT, cfg.data_interval, dims=2)
    for sat, iv, s in zip(q.v_saturates, exact, q.v_shifts):
        assert sat == (int(round_half_up_shift(iv.hi, s)) > full.hi)
    assert any(q.v_saturates)
    assert max(iv.width for iv in cfg.pe_a_intervals + cfg.pe_b_intervals) == 8


def test_configuration_round_trip_name_and_payload():
    cfg = TileConfig(4, 3, wino_width=9, wino_scales="tapwise")
    assert cfg.module_name == "wino_f4x4_3x3_mul_d8w8_q9t"
    assert TileConfig(4, 3, wino_width=9).wino_scales == "global"
    again = TileConfig.from_json(cfg.to_json())
    assert again.to_json() == cfg.to_json() and again.quantization == cfg.quantization
    assert cfg.weight_payload == (36, 9)
    # exact engines' parameters are as before: no new keys
    assert "wino_width" not in TileConfig(4, 3).to_json()
    assert config_from_params({"m": 4, "r": 3, "wino_width": 9,
                               "wino_scales": "tapwise"}).to_json() == cfg.to_json()


@pytest.mark.parametrize("changes, needle", [
    (dict(wino_scales="tapwise"), "wino_scales applies with wino_width only"),
    (dict(wino_width=9, wino_scales="channel"), "wino_scales must be one of global, tapwise"),
    (dict(wino_width=1), "wino_width must be an integer from 2 to 11"),
    (dict(wino_width=12), "from 2 to 11 .below the exact Winograd-domain width 12"),
    (dict(wino_width=9.0), "not 9.0"),
    (dict(wino_width=True), "not True"),
    (dict(wino_width=9, pe="adder"), "pe='adder'"),
    (dict(wino_width=9, algorithm="direct"), "Winograd engines only"),
    (dict(m=4, wino_width=9, filter_transform="online"), "filter_transform='offline' when D"),
    (dict(wino_width=9, keep_scale=True), "keep_scale does not apply"),
    (dict(wino_width=9, descale="shift"), "descale does not apply"),
])
def test_refused_configurations(changes, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        TileConfig(**{"m": 2, "r": 3, **changes})


def test_manifest_describes_the_quantization(tmp_path):
    from winogen.hw.generate import generate_tile
    cfg = TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise")
    _, _, manifest = generate_tile(cfg, tmp_path)
    q = manifest["quantization"]
    assert to_config(manifest).to_json() == cfg.to_json()
    flat = [s for row in q["v_shifts"] for s in row]
    assert tuple(flat) == cfg.quantization.v_shifts
    assert q["output_exponent"] == cfg.quantization.output_exponent
    assert manifest["widths"]["Vq"] == manifest["widths"]["Uq"] == 9
    payload = {p["name"]: p for p in manifest["ports"]}["weights__payload"]["packing"]
    assert payload["element_width"] == 9


@pytest.mark.parametrize("cfg", QUANTIZED[:4], ids=lambda c: c.module_name)
def test_error_intervals_hold_every_products_error(cfg):
    # The output range rests on these: each product's error against V · U / D² must lie
    # inside them, the clamped corners included.
    q, model = cfg.quantization, cfg.golden_model()
    d, g = _inputs(cfg, 200, seed=9)
    out = model.run(d, g)
    n, d2 = cfg.n, q.divisor
    for e, iv in enumerate(q.error_intervals):
        i, j = divmod(e, n)
        for k in range(len(d)):
            err = (Fraction(int(out["Vq"][k, i, j]) * 2 ** q.v_shifts[e])
                   * Fraction(int(out["Uq"][k, i, j])) * Fraction(2) ** q.u_shifts[e]
                   - Fraction(int(out["V"][k, i, j]) * int(out["U"][k, i, j]), d2))
            assert iv.lo <= err <= iv.hi


@pytest.mark.parametrize("m, width, scales, preset", [
    (2, 8, "global", "default"), (2, 9, "tapwise", "lavin"), (4, 9, "global", "default"),
    (4, 9, "tapwise", "default"), (6, 10, "tapwise", "default")])
def test_winograd_aware_forward_is_the_layer_golden_model(m, width, scales, preset):
    # nets/wa.py trains through the engine's arithmetic written in floating point: it must
    # give this golden model's integers (random and extreme maps, padding 1).
    from winogen.gen.layer import quantized_winograd_conv2d
    from winogen.nets import wa
    tile = TileConfig(m, 3, wino_width=width, wino_scales=scales, preset=preset)
    rng = np.random.default_rng(m * width)
    w = rng.integers(-128, 128, (4, 3, 3, 3))
    extreme = np.full((3, 11, 10), 127)
    extreme[:, ::2] = -128
    for x in (rng.integers(-128, 128, (3, 11, 10)), extreme):
        want = quantized_winograd_conv2d(tile, x, w, 1)
        got = wa.winograd_layer(x[None].astype(float), w.astype(float), 1,
                                wa.QuantizedDomain.of(tile))[0]
        assert np.array_equal(got, want)


def _approximate_f23(step):
    """Lavin's F(2,3) with one entry of G moved by ``step``: not a convolution."""
    from winogen.gen.toomcook import ToomCook
    M = ToomCook(2, 3, preset="lavin").matrices("G")
    G = [list(row) for row in M.G]
    G[1][0] += step
    return M.AT, G, M.BT


@pytest.mark.parametrize("step", [Fraction(1, 8), Fraction(1, 3)])
def test_quantized_given_transforms_follow_the_same_definition(step):
    # Approximate given transforms (--transforms): the quantized domain folds D² into Uq,
    # so even an odd D (1/3) is accepted, and the model is the same rational definition.
    cfg = TileConfig(2, 3, 8, 8, given_transforms=_approximate_f23(step), wino_width=9,
                     wino_scales="tapwise")
    assert not cfg.toomcook.exact
    with pytest.raises(ValueError, match="power-of-two denominator") if step.denominator == 3 \
            else contextlib.nullcontext():
        TileConfig(2, 3, 8, 8, given_transforms=_approximate_f23(step))
    d, g = _inputs(cfg, 20, seed=4)
    got = cfg.golden_model()(d, g)
    want = np.array([_reference(cfg, dd, gg) for dd, gg in zip(d, g)])
    assert np.array_equal(got, want)



def test_rounded_ranges_stay_exact_beyond_64_bits():
    """Learned transforms can have wide integer forms: the rounded range of a shift is
    computed on Python integers (it overflowed NumPy's int64 on a flex F(6,3) set)."""
    from winogen.gen.bounds import Interval
    from winogen.gen.winoquant import _rounded
    big = (1 << 90) + 5
    assert _rounded(Interval(-big, big), 4) == Interval((-big + 8) >> 4, (big + 8) >> 4)
    assert _rounded(Interval(-3, 3), 0) == Interval(-3, 3)
    assert _rounded(Interval(-3, 3), 1) == Interval(-1, 2)      # half up: -1.5 -> -1, 1.5 -> 2
