"""Base change (gen/basechange.py): exact factors, integer forms, the Legendre base."""

from fractions import Fraction

import numpy as np
import pytest
from numpy.polynomial import legendre as npleg
from scipy.signal import correlate2d

from winogen.gen import rational as rq
from winogen.gen.basechange import change_base, legendre_matrix
from winogen.gen.toomcook import ToomCook

CASES = [(2, "lavin"), (4, "lavin"), (4, "barabasz"), (6, "lavin")]


@pytest.mark.parametrize("k", range(1, 9))
def test_legendre_matrix_against_numpy(k):
    """Independent reference: numpy.polynomial.legendre.leg2poly."""
    T = legendre_matrix(k)
    for j in range(k):
        coeffs = npleg.leg2poly([0] * j + [1])
        assert [float(T[a][j]) for a in range(k)] == pytest.approx(
            list(coeffs) + [0] * (k - len(coeffs)))


@pytest.mark.parametrize("m, preset", CASES)
@pytest.mark.parametrize("base", ["legendre", "monomial"])
def test_factors_compose_to_the_algorithm(m, preset, base):
    tc = ToomCook(m, 3, preset=preset)
    M = tc.matrices("G")
    assert change_base(tc, base).composed() == (M.AT, M.G, M.BT)


@pytest.mark.parametrize("m, preset", CASES)
def test_integer_engine_is_the_correlation_times_d_squared(m, preset):
    bc = change_base(ToomCook(m, 3, preset=preset))
    hw = bc.hardware
    S_d, S_g, S_y, AT, G, BT = (np.array(hw[k], dtype=object)
                                for k in ("S_d", "S_g", "S_y", "AT", "G", "BT"))
    D2 = hw["denominator"] ** 2
    rng = np.random.default_rng(m)
    n = m + 2
    for _ in range(10):
        d = rng.integers(-128, 128, (n, n)).astype(object)
        g = rng.integers(-128, 128, (3, 3)).astype(object)
        V = BT.dot(S_d.dot(d).dot(S_d.T)).dot(BT.T)            # two stages, as built
        U = G.dot(S_g.dot(g).dot(S_g.T)).dot(G.T)
        Y = S_y.dot(AT.dot(U * V).dot(AT.T)).dot(S_y.T)
        assert (Y % D2 == 0).all()
        assert (Y // D2).astype(np.int64).tolist() == correlate2d(
            d.astype(np.int64), g.astype(np.int64), mode="valid").tolist()


@pytest.mark.parametrize("m, preset", CASES)
def test_v_factors_relate_the_two_winograd_domains(m, preset):
    tc = ToomCook(m, 3, preset=preset)
    bc = change_base(tc)
    BT_eff = np.array(bc.effective()[2], dtype=object)
    BT_mono = np.array(tc.hardware().BT, dtype=object)
    gamma = np.array(bc.v_factors, dtype=object)
    assert (BT_eff == gamma[:, None] * BT_mono).all()


def test_monomial_base_is_the_engine_itself():
    tc = ToomCook(4, 3, preset="lavin")
    AT, G, BT, D = change_base(tc, "monomial").effective()
    hw = tc.hardware()
    assert (AT, G, BT, D) == (hw.AT, hw.G, hw.BT, hw.denominator)
    assert change_base(tc, "monomial").v_factors == (1,) * 6


def test_a_general_base_matrix():
    tc = ToomCook(2, 3, preset="lavin")
    shift = lambda k: [[Fraction(int(a == j or a + 1 == j)) for j in range(k)] for a in range(k)]
    bc = change_base(tc, "monomial", filter_base=shift(3), data_base=shift(4),
                     output_base=shift(2))
    M = tc.matrices("G")
    assert bc.composed() == (M.AT, M.G, M.BT)
    assert bc.S_g == rq.inverse(shift(3))


@pytest.mark.parametrize("kwargs, message", [
    (dict(base="chebyshev"), "base must be one of monomial, legendre or a matrix, not 'chebyshev'"),
    (dict(base=[[1, 0], [0, 1]]), "a base matrix is per polynomial"),
    (dict(filter_base=[[1, 0], [0, 1]]), "a base matrix must be 3 x 3 here, not 2 x 2"),
    (dict(filter_base=[[1, 1, 0], [1, 1, 0], [0, 0, 1]]), "must be invertible, not of rank 2"),
])
def test_bad_bases_are_refused(kwargs, message):
    with pytest.raises(ValueError) as e:
        change_base(ToomCook(2, 3), **kwargs)
    assert message in str(e.value)
