"""Residue number system: conversions, presets, validation, ranges and exact RNS Winograd."""

from math import gcd, prod
import random

import numpy as np
import pytest
from scipy.signal import correlate, correlate2d

from winogen.gen.bounds import Interval, signed_range
from winogen.gen.rns import (METHODS, MODULI_PRESETS, ModuliSet, check_range, from_residues_crt,
                             from_residues_mrc, is_special, mixed_radix_digits, moduli_preset,
                             required_range, result_range, rns_transforms, rns_winograd_conv2d,
                             rns_winograd_tile, to_residues)
from winogen.gen.toomcook import ToomCook

SMALL_SETS = [(3, 5, 7), (7, 8, 9)]


def brute_correlate_2d(d, g):
    n, r = len(d), len(g)
    m = n - r + 1
    return [[sum(int(d[i + a][j + b]) * int(g[a][b]) for a in range(r) for b in range(r))
             for j in range(m)] for i in range(m)]


def scipy_conv2d(x, w, padding):
    """Integer correlation of a layer, one scipy call per (output, input) channel pair."""
    xp = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    out = []
    for xi in xp:
        out.append([sum(correlate(xi[c], w[o, c], mode="valid", method="direct")
                        for c in range(x.shape[1])) for o in range(w.shape[0])])
    return np.array(out, dtype=np.int64)


# --------------------------------------------------------------------------
# Moduli sets and presets
# --------------------------------------------------------------------------

def test_moduli_set_members():
    ms = ModuliSet([7, 8, 9])
    assert ms.moduli == (7, 8, 9) and ms.product == 504 and len(ms) == 3
    assert ms.dynamic_range == Interval(-252, 251)
    odd = ModuliSet((3, 5, 7))
    assert odd.dynamic_range == Interval(-52, 52)          # [-⌊M/2⌋, ⌈M/2⌉ - 1], M = 105
    assert ms.bits == 8 and odd.bits == 6
    assert ModuliSet(ms) == ms and moduli_preset("special-8") == ModuliSet((255, 256, 257))
    assert ms.covers(signed_range(8)) and not odd.covers(signed_range(8))


@pytest.mark.parametrize("name", list(MODULI_PRESETS))
def test_presets_are_pairwise_coprime(name):
    mods = MODULI_PRESETS[name]
    assert all(gcd(a, b) == 1 for i, a in enumerate(mods) for b in mods[i + 1:])
    ms = moduli_preset(name)
    assert ms.product == prod(mods)
    if name.startswith("special"):
        assert all(ms.special)


def test_is_special():
    assert [m for m in range(2, 40) if is_special(m)] == [2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33]
    assert ModuliSet.is_special(65537) and not is_special(253) and not is_special(1)
    assert moduli_preset("8bit-4").special == (False, False, True, True)


@pytest.mark.parametrize("moduli,message", [
    ([252, 255], "moduli must be pairwise coprime, not 252 and 255 (gcd 3)"),
    ([251, 256, 256], "moduli must be pairwise coprime, not 256 and 256 (gcd 256)"),
    ([1, 3], "moduli must be integers of at least 2, not 1"),
    ([5, -7], "moduli must be integers of at least 2, not -7"),
    ([5, 7.0], "moduli must be integers of at least 2, not 7.0"),
    ([5, True], "moduli must be integers of at least 2, not True"),
    ([], "moduli must hold at least one modulus, not an empty set"),
    (257, "moduli must be a sequence of integers, not 257"),
])
def test_moduli_validation(moduli, message):
    with pytest.raises(ValueError) as info:
        ModuliSet(moduli)
    assert str(info.value) == message


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"^moduli preset must be one of special-8, .*, not 'x'$"):
        moduli_preset("x")


# --------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mods", SMALL_SETS)
def test_round_trip_exhaustive(mods):
    ms = ModuliSet(mods)
    x = np.arange(ms.dynamic_range.lo, ms.dynamic_range.hi + 1)
    assert x.size == ms.product
    res = to_residues(x, ms)
    assert res.shape == (len(mods), ms.product) and res.dtype == np.int64
    for i, m in enumerate(mods):                           # residues agree with Python's %
        assert res[i].tolist() == [int(v) % m for v in x]
    assert len({tuple(col) for col in res.T}) == ms.product  # a bijection onto the residues
    assert np.array_equal(from_residues_crt(res, ms), x)
    assert np.array_equal(from_residues_mrc(res, ms), x)
    digits = mixed_radix_digits(res, ms)
    assert all(((0 <= digits[i]) & (digits[i] < m)).all() for i, m in enumerate(mods))
    unsigned = digits[0] + mods[0] * digits[1] + mods[0] * mods[1] * digits[2]
    assert np.array_equal(unsigned, x % ms.product)


def test_mixed_radix_digits_example():
    # 52 = 1 + 3·2 + 15·3 in radices (3, 5, 7)
    assert mixed_radix_digits(to_residues(52, (3, 5, 7), check=False), (3, 5, 7)).tolist() == [1, 2, 3]
    assert from_residues_crt([1, 2, 3], (3, 5, 7)) == 52
    assert from_residues_crt(to_residues(-52, (3, 5, 7)), (3, 5, 7)) == -52


@pytest.mark.parametrize("name", list(MODULI_PRESETS))
def test_round_trip_presets_random_and_extreme(name):
    ms = moduli_preset(name)
    lo, hi = ms.dynamic_range.lo, ms.dynamic_range.hi
    rng = random.Random(name)
    values = [lo, lo + 1, -1, 0, 1, hi - 1, hi] + [rng.randint(lo, hi) for _ in range(2000)]
    x = np.array(values, dtype=object)
    res = to_residues(x, ms)
    crt, mrc = from_residues_crt(res, ms), from_residues_mrc(res, ms)
    assert [int(v) for v in crt] == values and [int(v) for v in mrc] == values
    if ms.product <= 2 ** 63:
        x64 = np.array(values, dtype=np.int64)
        assert np.array_equal(from_residues_crt(to_residues(x64, ms), ms), x64)
    else:
        assert crt.dtype == object                          # past int64: Python ints
    # batched shape and a scalar
    grid = x[:2000].reshape(20, 10, 10)
    assert np.array_equal(from_residues_mrc(to_residues(grid, ms), ms), grid)
    assert from_residues_crt(to_residues(hi, ms), ms) == hi


def test_conversion_validation():
    with pytest.raises(ValueError, match=r"^x must lie in the dynamic range \[-52, 52\] of moduli "
                                         r"\[3, 5, 7\], not 53$"):
        to_residues([0, 53], (3, 5, 7))
    assert to_residues(53, (3, 5, 7), check=False).tolist() == [2, 3, 4]
    with pytest.raises(ValueError, match=r"^residues modulo 5 must lie in \[0, 4\], not 5$"):
        from_residues_crt([[0], [5], [0]], (3, 5, 7))
    with pytest.raises(ValueError, match=r"^res must have shape \(3, \.\.\.\)"):
        from_residues_mrc([1, 2], (3, 5, 7))
    with pytest.raises(TypeError, match="x must be an array of integers"):
        to_residues([1.5], (3, 5, 7))


# --------------------------------------------------------------------------
# Ranges
# --------------------------------------------------------------------------

def test_required_range_values():
    tc = ToomCook(6, 3)
    D2 = tc.hardware().scale_divisor(2)
    y = (signed_range(8) * signed_range(8)).times(9 * 4)   # [-585216, 589824]
    assert required_range(tc, 8, 8, 4, "inverse") == y
    assert required_range(tc, 8, 8, 4, "scaled") == y.scale(D2)
    for m, r in [(2, 3), (4, 3), (6, 3), (10, 3)]:
        tc = ToomCook(m, r)
        exact = required_range(tc, 8, 8, 3, "scaled")
        loose = required_range(tc, 8, 8, 3, "scaled", bound="transform")
        assert loose.lo <= exact.lo and exact.hi <= loose.hi


def test_check_range_f63_accepts_preset_and_rejects_small_set():
    tc = ToomCook(6, 3)
    scaled, inverse = required_range(tc, 8, 8, 4, "scaled"), required_range(tc, 8, 8, 4, "inverse")
    assert scaled.width == 38 and inverse.width == 21
    assert check_range("8bit-8", scaled) == moduli_preset("8bit-8")
    check_range("8bit-primes-4", inverse)
    rns_transforms(tc, "8bit-primes-4", "inverse")
    with pytest.raises(ValueError) as info:
        check_range("8bit-4", scaled)
    msg = str(info.value)
    assert msg.startswith(f"moduli product 4145475840 must cover the result range "
                          f"[{scaled.lo}, {scaled.hi}] (needs ≥ {2 * scaled.hi + 1}, 38 bits), "
                          f"not 4145475840 (31 bits, moduli [251, 253, 255, 256])")
    assert "\n" not in msg
    with pytest.raises(ValueError, match=r"^moduli product 105 must cover the result range \[-128, 127\] "
                                         r"\(needs ≥ 256, 8 bits\)"):
        check_range((3, 5, 7), signed_range(8))


def test_f143_needs():
    tc = ToomCook(14, 3)
    assert required_range(tc, 8, 8, 16, "inverse").width == 23
    assert required_range(tc, 8, 8, 16, "scaled").width == 102
    assert required_range(tc, 8, 8, 16, "scaled", bound="transform").width == 129
    check_range("16bit-8", required_range(tc, 8, 8, 16, "scaled"))
    check_range("8bit-primes-4", required_range(tc, 8, 8, 16, "inverse"))
    with pytest.raises(ValueError, match="must cover the result range"):
        check_range("8bit-8", required_range(tc, 8, 8, 16, "scaled"))


def test_range_validation():
    tc = ToomCook(4, 3)
    with pytest.raises(ValueError, match=r"^channels must be a positive integer, not 0$"):
        required_range(tc, 8, 8, 0)
    with pytest.raises(ValueError, match=r"^method must be one of scaled, inverse, not 'crt'$"):
        required_range(tc, 8, 8, 1, "crt")
    with pytest.raises(ValueError, match=r"^bound must be one of exact, transform, not 'x'$"):
        result_range(tc, signed_range(8), signed_range(8), bound="x")


# --------------------------------------------------------------------------
# Modular transforms
# --------------------------------------------------------------------------

def test_scaled_transforms_are_reduced_hardware_matrices():
    tc = ToomCook(4, 3, preset="lavin")
    hw, tr = tc.hardware(), rns_transforms(tc, (251, 256))
    assert tr.denominator == hw.denominator == 24 and tr.scale_divisor(2) == 576
    for i, m in enumerate((251, 256)):
        assert tr.BT[i] == tuple(tuple(x % m for x in row) for row in hw.BT)
        assert tr.AT[i] == tuple(tuple(x % m for x in row) for row in hw.AT)


def test_inverse_transforms_map_fractions():
    tc = ToomCook(4, 3, preset="lavin")
    tr = rns_transforms(tc, (251, 241), "inverse")
    G = tc.matrices("G").G
    for i, m in enumerate((251, 241)):
        for row, mrow in zip(G, tr.G[i]):
            for q, x in zip(row, mrow):
                assert (x * q.denominator - q.numerator) % m == 0 and 0 <= x < m
    assert tr.denominator == 1


@pytest.mark.parametrize("moduli,den,mod,g", [((251, 256), 4, 256, 4), ((251, 255), 6, 255, 3),
                                              ("8bit-4", 4, 256, 4)])
def test_inverse_refuses_non_invertible_denominator(moduli, den, mod, g):
    tc = ToomCook(4, 3, preset="lavin")                     # denominators 4, 6, 12, 24 (in G)
    with pytest.raises(ValueError) as info:
        rns_transforms(tc, moduli, "inverse")
    assert str(info.value) == (f"method 'inverse' needs every denominator of F(4,3) invertible "
                               f"modulo every modulus, not denominator {den} modulo {mod} (gcd {g}); "
                               f"use method 'scaled' or moduli coprime to 24")
    with pytest.raises(ValueError, match="not denominator"):
        rns_winograd_tile(np.zeros((6, 6), int), np.zeros((3, 3), int), tc, moduli, "inverse")


# --------------------------------------------------------------------------
# Golden models
# --------------------------------------------------------------------------

TILE_CASES = [
    # (m, r, preset, scaled moduli, inverse moduli)
    (4, 3, "lavin", "8bit-8", "8bit-primes-4"),
    (6, 3, "default", "8bit-8", "8bit-primes-4"),
    (6, 3, "lavin", "8bit-8", "8bit-primes-4"),
    (10, 3, "default", "16bit-8", "8bit-primes-8"),
    (10, 3, "lavin", "16bit-8", "8bit-primes-4"),
    (14, 3, "default", "16bit-8", "8bit-primes-4"),
    (14, 3, "lavin", "16bit-8", "8bit-primes-8"),
]


@pytest.mark.parametrize("m,r,preset,scaled,inverse", TILE_CASES)
@pytest.mark.parametrize("method", METHODS)
def test_tile_equals_correlation(m, r, preset, scaled, inverse, method):
    tc = ToomCook(m, r, preset=preset)
    moduli = scaled if method == "scaled" else inverse
    rng = np.random.default_rng(m * 100 + len(preset))
    d = rng.integers(-128, 128, size=(6, tc.n, tc.n))
    g = rng.integers(-128, 128, size=(6, r, r))
    # extremes: every sign pattern that maximises |y|
    d[0], g[0] = -128, -128
    d[1], g[1] = -128, 127
    d[2], g[2] = 127, 127
    y = rns_winograd_tile(d, g, tc, moduli, method)
    assert y.shape == (6, m, m) and y.dtype == np.int64
    for k in range(6):
        assert y[k].tolist() == brute_correlate_2d(d[k], g[k])
        assert np.array_equal(y[k], correlate2d(d[k], g[k], mode="valid"))
    # broadcasting one filter over many tiles
    assert np.array_equal(rns_winograd_tile(d, g[3], tc, moduli, method)[4],
                          correlate2d(d[4], g[3], mode="valid"))


def test_tile_exact_bound_is_enough():
    # A set covering the tight scaled range, but not the stage-by-stage bound,
    # is exact even for the extreme inputs: only the final value must not wrap.
    tc = ToomCook(4, 3, preset="lavin")
    exact = result_range(tc, signed_range(8), signed_range(8), 1, "scaled")
    loose = result_range(tc, signed_range(8), signed_range(8), 1, "scaled", bound="transform")
    ms = ModuliSet((256, 255, 253, 251))                    # 32 bits
    assert ms.covers(exact) and not ms.covers(loose)
    for dv, gv in [(-128, -128), (-128, 127), (127, 127)]:
        d, g = np.full((6, 6), dv), np.full((3, 3), gv)
        assert np.array_equal(rns_winograd_tile(d, g, tc, ms), correlate2d(d, g, mode="valid"))
    with pytest.raises(ValueError, match="must cover the result range"):
        rns_winograd_tile(np.full((6, 6), -128), np.full((3, 3), -128), tc, (251, 253, 255))


def test_tile_validation():
    tc = ToomCook(4, 3)
    with pytest.raises(ValueError, match=r"^d must have shape \(\.\.\., 6, 6\) for F\(4,3\)"):
        rns_winograd_tile(np.zeros((5, 5), int), np.zeros((3, 3), int), tc, "8bit-8")
    with pytest.raises(TypeError, match="d must be an array of integers"):
        rns_winograd_tile(np.zeros((6, 6)), np.zeros((3, 3), int), tc, "8bit-8")


@pytest.mark.parametrize("m,preset,method,moduli", [
    (4, "lavin", "scaled", "8bit-8"),
    (4, "lavin", "inverse", "8bit-primes-4"),
    (6, "default", "scaled", "8bit-8"),
    (6, "default", "inverse", "8bit-primes-4"),
    (10, "default", "scaled", "16bit-8"),
    (14, "default", "inverse", "8bit-primes-4"),
    (14, "default", "scaled", "16bit-8"),
])
def test_layer_equals_correlation(m, preset, method, moduli):
    tc = ToomCook(m, 3, preset=preset)
    rng = np.random.default_rng(m)
    x = rng.integers(-128, 128, size=(2, 4, 13, 17))
    w = rng.integers(-128, 128, size=(3, 4, 3, 3))
    x[0, :, 0, :] = -128                                    # an extreme row
    w[0] = -128
    for padding in (0, 1):
        y = rns_winograd_conv2d(x, w, tc, moduli, padding, method=method)
        assert y.dtype == np.int64
        assert np.array_equal(y, scipy_conv2d(x, w, padding)), (padding, method)
    # without a batch axis
    assert np.array_equal(rns_winograd_conv2d(x[1], w, tc, moduli, 1, method=method),
                          scipy_conv2d(x[1:], w, 1)[0])


def test_layer_range_check_counts_channels():
    tc = ToomCook(6, 3)
    x = np.full((1, 16, 8, 8), -128)
    w = np.full((1, 16, 3, 3), -128)
    with pytest.raises(ValueError, match="must cover the result range"):
        rns_winograd_conv2d(x, w, tc, "special-8", method="scaled")
    y = rns_winograd_conv2d(x, w, tc, "8bit-8", padding=1, method="scaled")
    assert np.array_equal(y, scipy_conv2d(x, w, 1))


def test_rns_engine_refuses_moduli_beyond_the_bound_at_once():
    import time
    from winogen.gen.rns import MAX_MODULUS, RNSTileConfig
    big = (1 << 66) + 1                       # a 67-bit modulus
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"^moduli of an RNS engine must be at most {MAX_MODULUS} "
                                         r"\(residues of 18 bits, one DSP multiplier port\), "
                                         rf"not {big} \(67 bits\)$"):
        RNSTileConfig(2, 3, moduli=(big, 251))
    assert time.perf_counter() - start < 1.0
    # the bound itself is accepted (18-bit residues)
    assert RNSTileConfig(2, 3, moduli=(MAX_MODULUS - 1, MAX_MODULUS - 3)).moduli[0] == MAX_MODULUS - 1


def test_rns_model_refuses_out_of_range_and_non_integers():
    from winogen.gen.rns import RNSTileConfig, RNSTileModel
    model = RNSTileModel(RNSTileConfig(2, 3))
    with pytest.raises(ValueError, match=r"^filter values must lie in \[-128, 127\], not \[1000, 1000\]$"):
        model.filter_residues(np.full((3, 3), 1000))
    with pytest.raises(TypeError, match="^filter values must be integers, not float64$"):
        model.weight_beat(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match=r"^input tile values must lie in \[-128, 127\]"):
        model.input_residues(np.full((4, 4), -129))
    with pytest.raises(ValueError, match=r"^input tiles must have shape \(\.\.\., 4, 4\)"):
        model(np.zeros((1, 3, 3), dtype=int), np.zeros((3, 3), dtype=int))
