"""Exact Toom-Cook generator: identities, presets, published matrices, validation."""

from fractions import Fraction
import random
import warnings

import pytest

from winogen.gen import rational as rq
from winogen.gen.points import INF, MAX_TILE, PRESETS, parse_points, preset_points
from winogen.gen.toomcook import FRACTION_PLACEMENTS, NumericalWarning, ToomCook


def brute_correlate_1d(d, g):
    m = len(d) - len(g) + 1
    return [sum(d[j + k] * g[k] for k in range(len(g))) for j in range(m)]


def brute_correlate_2d(d, g):
    n, r = len(d), len(g)
    m = n - r + 1
    return [[sum(d[i + a][j + b] * g[a][b] for a in range(r) for b in range(r))
             for j in range(m)] for i in range(m)]


def rand_frac(rng):
    return Fraction(rng.randint(-50, 50), rng.choice([1, 1, 2, 3, 7]))


def winograd_1d(mats, d, g):
    u = [sum(gi * x for gi, x in zip(row, g)) for row in mats.G]
    v = [sum(bi * x for bi, x in zip(row, d)) for row in mats.BT]
    mm = [s * a * b for s, a, b in zip(mats.scale, u, v)]
    return [sum(a * x for a, x in zip(row, mm)) for row in mats.AT]


def winograd_2d(mats, d, g):
    G, BT, AT = mats.G, mats.BT, mats.AT
    U = rq.matmul(rq.matmul(G, g), rq.transpose(G))
    V = rq.matmul(rq.matmul(BT, d), rq.transpose(BT))
    n = len(BT)
    M = [[mats.scale[i] * mats.scale[j] * U[i][j] * V[i][j] for j in range(n)] for i in range(n)]
    return rq.matmul(rq.matmul(AT, M), rq.transpose(AT))


ALL_SIZES = [(m, r) for m in range(1, 15) for r in range(1, 8) if m + r - 1 <= MAX_TILE]


def point_sets(m, r):
    n = m + r - 1
    sets = [preset_points("lavin", n), preset_points("default", n)]
    rng = random.Random(n * 100 + m)
    # random distinct rational points, with and without infinity
    pool = sorted({Fraction(rng.randint(-9, 9), rng.randint(1, 4)) for _ in range(60)})
    rng.shuffle(pool)
    sets.append(tuple(pool[:n]))
    sets.append(tuple(pool[:n - 1]) + (INF,))
    return sets


@pytest.mark.parametrize("m,r", ALL_SIZES)
def test_identity_1d_every_size_and_point_set(m, r):
    rng = random.Random(m * 31 + r)
    for pts in point_sets(m, r):
        tc = ToomCook(m, r, pts)
        for fractions in FRACTION_PLACEMENTS:
            mats = tc.matrices(fractions)
            for _ in range(2):
                d = [rand_frac(rng) for _ in range(tc.n)]
                g = [rand_frac(rng) for _ in range(r)]
                assert winograd_1d(mats, d, g) == brute_correlate_1d(d, g), (tc, fractions)
        # the integer form really is integer, and so is the hardware form
        assert tc.integer().is_integer
        hw = tc.hardware()
        d = [rng.randint(-100, 100) for _ in range(tc.n)]
        g = [rng.randint(-100, 100) for _ in range(r)]
        u = [sum(a * b for a, b in zip(row, g)) for row in hw.G]
        v = [sum(a * b for a, b in zip(row, d)) for row in hw.BT]
        y = [sum(a * x * w for a, x, w in zip(row, u, v)) for row in hw.AT]
        assert all(yi % hw.denominator == 0 for yi in y)
        assert [yi // hw.denominator for yi in y] == brute_correlate_1d(d, g)


@pytest.mark.parametrize("m,r", [(2, 3), (4, 3), (6, 3), (2, 5), (4, 2), (3, 4), (10, 3), (14, 3), (1, 1), (5, 1)])
def test_identity_2d(m, r):
    rng = random.Random(m * 7 + r)
    for pts in point_sets(m, r):
        tc = ToomCook(m, r, pts)
        for fractions in ("G", "F"):
            mats = tc.matrices(fractions)
            d = [[rand_frac(rng) for _ in range(tc.n)] for _ in range(tc.n)]
            g = [[rand_frac(rng) for _ in range(r)] for _ in range(r)]
            assert winograd_2d(mats, d, g) == brute_correlate_2d(d, g)


@pytest.mark.parametrize("m,r", [(2, 3), (4, 3), (3, 2), (6, 3)])
def test_linear_convolution_form(m, r):
    rng = random.Random(5)
    lin = ToomCook(m, r).linear()
    g = [rand_frac(rng) for _ in range(r)]
    h = [rand_frac(rng) for _ in range(m)]
    pg = [sum(a * b for a, b in zip(row, g)) for row in lin.G]
    ph = [sum(a * b for a, b in zip(row, h)) for row in lin.H]
    s = [sum(c * x * y for c, x, y in zip(row, pg, ph)) for row in lin.C]
    expected = [sum(g[k] * h[t - k] for k in range(r) if 0 <= t - k < m) for t in range(m + r - 1)]
    assert s == expected


def equal_up_to_rescaling(ours, published):
    """Aᵀ columns, G rows and Bᵀ rows may be rescaled by α, β, γ with αβγ = 1."""
    AT, G, BT = (rq.to_fraction_matrix(M) for M in ours)
    PAT, PG, PBT = (rq.to_fraction_matrix(M) for M in published)
    n = len(BT)

    def ratio(u, v):
        ratios = {a / b for a, b in zip(u, v) if b != 0}
        zeros_match = all((a == 0) == (b == 0) for a, b in zip(u, v))
        return ratios.pop() if zeros_match and len(ratios) == 1 else None

    for i in range(n):
        alpha = ratio([row[i] for row in AT], [row[i] for row in PAT])
        beta = ratio(G[i], PG[i])
        gamma = ratio(BT[i], PBT[i])
        if None in (alpha, beta, gamma) or alpha * beta * gamma != 1:
            return False
    return True


LAVIN_F23 = (
    [[1, 1, 1, 0], [0, 1, -1, -1]],
    [[1, 0, 0], ["1/2", "1/2", "1/2"], ["1/2", "-1/2", "1/2"], [0, 0, 1]],
    [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
)
# Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016), F(4x4, 3x3).
LAVIN_F43 = (
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    [["1/4", 0, 0], ["-1/6", "-1/6", "-1/6"], ["-1/6", "1/6", "-1/6"],
     ["1/24", "1/12", "1/6"], ["1/24", "-1/12", "1/6"], [0, 0, 1]],
    [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
     [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
)


@pytest.mark.parametrize("m,published", [(2, LAVIN_F23), (4, LAVIN_F43)])
def test_canonical_preset_matches_lavin_gray(m, published):
    tc = ToomCook(m, 3, preset="lavin")
    mats = tc.matrices("G")
    assert equal_up_to_rescaling((mats.AT, mats.G, mats.BT), published)
    # and the comparison is not vacuous: a perturbed matrix does not match
    bad = [list(row) for row in published[2]]
    bad[0][0] = 3
    assert not equal_up_to_rescaling((mats.AT, mats.G, mats.BT), (published[0], published[1], bad))


def test_presets():
    assert preset_points("barabasz", 6) == parse_points("0,-1,1,1/2,-3,inf")
    assert set(preset_points("barabasz", 8)) == set(parse_points("0,1/2,-1/2,1,-1,2,-2,inf"))
    assert preset_points("lavin", 4) == parse_points("0,1,-1,inf")
    assert preset_points("lavin", 6) == parse_points("0,1,-1,2,-2,inf")
    for name in PRESETS:
        if name != "barabasz":
            for n in range(1, MAX_TILE + 1):
                pts = preset_points(name, n)
                assert len(set(map(str, pts))) == n
    with pytest.raises(ValueError, match=r"preset 'barabasz' is defined for tile sizes .* not 5"):
        preset_points("barabasz", 5)


def test_float_warning_beyond_f63():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ToomCook(6, 3).float_matrices("float32")
    with pytest.warns(NumericalWarning, match="numerically unsafe"):
        ToomCook(7, 3).float_matrices("float32")


@pytest.mark.parametrize("kwargs,message", [
    (dict(m=0, r=3), "m must be a positive integer, not 0"),
    (dict(m=2, r=0), "r must be a positive integer, not 0"),
    (dict(m=-1, r=3), "m must be a positive integer, not -1"),
    (dict(m=2.5, r=3), "m must be a positive integer, not 2.5"),
    (dict(m=12, r=6), r"tile size n = m \+ r - 1 must be at most 16, not 17"),
    (dict(m=2, r=3, points="0,1,1,inf"), "points must be distinct"),
    (dict(m=2, r=3, points="0,1,x,inf"), "point must be a number, a fraction like 1/2, or inf, not 'x'"),
    (dict(m=2, r=3, points="0,1,inf"), "points must hold exactly n = m \\+ r - 1 = 4"),
    (dict(m=2, r=3, points="0,1,-1,2,inf"), "points must hold exactly n = m \\+ r - 1 = 4"),
    (dict(m=2, r=3, points="0,1,inf,inf"), "points must be distinct"),
    (dict(m=2, r=3, preset="nope"), "preset must be one of"),
])
def test_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ToomCook(**kwargs)


def test_json_is_exact_strings():
    js = ToomCook(4, 3, "0,-1,1,1/2,-3,inf").to_json("rational")
    assert js["points"] == ["0", "-1", "1", "1/2", "-3", "inf"]
    assert all(isinstance(x, str) for row in js["G"] for x in row)
    assert "1/3" in js["G"][0]
    ji = ToomCook(4, 3, preset="lavin").to_json("integer")
    assert ji["hardware"]["denominator"] == 24
    assert all(Fraction(x).denominator == 1 for row in ji["BT"] for x in row)
