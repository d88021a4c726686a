"""Bit-growth bounds: sound (no reachable value escapes) and tight (the extremes are reached)."""

import itertools

import numpy as np
import pytest

from winogen.gen.bounds import (Interval, matvec_intervals, signed_range, signed_width,
                                transform2d_intervals, transform_bits, transform_intervals)
from winogen.gen.toomcook import ToomCook


def test_signed_width():
    assert signed_width(-128, 127) == 8
    assert signed_width(-129, 127) == 9
    assert signed_width(0, 128) == 9
    assert signed_width(0, 0) == 1
    assert signed_range(4) == Interval(-8, 7)
    with pytest.raises(ValueError, match="width must be a positive integer, not 0"):
        signed_range(0)


@pytest.mark.parametrize("m,r,preset", [(2, 3, "lavin"), (4, 3, "lavin"), (4, 3, "barabasz")])
def test_1d_bound_is_exact_by_enumeration(m, r, preset):
    # With 3-bit inputs every input vector can be enumerated: the bound must be
    # exactly the min and max over all of them.
    BT = np.array(ToomCook(m, r, preset=preset).hardware().BT)
    n = BT.shape[0]
    values = range(-4, 4)
    inputs = np.array(list(itertools.product(values, repeat=n)))
    outputs = inputs @ BT.T
    intervals = matvec_intervals(BT.tolist(), signed_range(3))
    for i, iv in enumerate(intervals):
        assert (iv.lo, iv.hi) == (outputs[:, i].min(), outputs[:, i].max())
    assert transform_bits(BT.tolist(), 3) == max(iv.width for iv in intervals)


@pytest.mark.parametrize("m,r", [(2, 3), (4, 3), (6, 3)])
def test_2d_bound_is_reached_and_never_exceeded(m, r):
    # The extreme input for output (i, j) is sign(B_ik B_jl) times the range end;
    # random inputs never leave the bound.
    BT = np.array(ToomCook(m, r).hardware().BT)
    n = BT.shape[0]
    width = 8
    iv = signed_range(width)
    bounds = transform_intervals(BT.tolist(), iv, dims=2)
    per_element = transform2d_intervals(BT.tolist(), [iv] * (n * n))
    assert bounds == per_element
    rng = np.random.default_rng(0)
    X = rng.integers(iv.lo, iv.hi + 1, (500, n, n))
    Y = np.einsum("ia,tab,jb->tij", BT, X, BT).reshape(500, -1)
    for k, b in enumerate(bounds):
        assert Y[:, k].min() >= b.lo and Y[:, k].max() <= b.hi
        i, j = divmod(k, n)
        sign = np.sign(np.outer(BT[i], BT[j]))
        top = np.where(sign > 0, iv.hi, iv.lo)
        bottom = np.where(sign > 0, iv.lo, iv.hi)
        assert (BT[i] @ top @ BT[j]) == b.hi
        assert (BT[i] @ bottom @ BT[j]) == b.lo


def test_interval_arithmetic():
    a, b = Interval(-3, 5), Interval(-2, 4)
    assert a + b == Interval(-5, 9)
    assert a - b == Interval(-7, 7)
    assert a * b == Interval(-12, 20)
    assert (-a) == Interval(-5, 3)
    assert a.abs() == Interval(0, 5)
    assert a.times(3) == Interval(-9, 15)
    assert a.scale(-2) == Interval(-10, 6)
    with pytest.raises(ValueError):
        Interval(2, 1)
