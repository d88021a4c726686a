"""Multiplierless constant arithmetic: CSD plans (gen.csd) and their hardware (hw.constmat)."""

from collections import Counter
from fractions import Fraction
import gc
import itertools
import re
import warnings

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import EnableInserter, Module, Signal, UnusedElaboratable, Value
from amaranth.sim import Simulator

from winogen.gen.bounds import (Interval, matvec_intervals, signed_range, transform2d_intervals,
                                transform_intervals)
from winogen.gen.csd import csd_cost, csd_digits, exact_divide_plan, plan_matvec
from winogen.hw.constmat import ConstMatVec, ConstTransform2D, ExactDivider


F23_BT = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
F43_BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
          [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
F23_AT = [[1, 1, 1, 0], [0, 1, -1, -1]]
F43_AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
# CSD matters (7 = 8 - 1, 45 = 64 - 16 - 4 + 1, 85 = 1 + 4 + 16 + 64 shares x + 4x with
# itself); also a zero row, an all-negative row (needs a negator) and a lone constant.
ODD = [[7, -21, 45], [-45, 7, 21], [85, 0, -1], [0, 0, 0], [-1, -4, 0], [0, 3, 0]]

MATRICES = {"F23_BT": F23_BT, "F43_BT": F43_BT, "F23_AT": F23_AT, "F43_AT": F43_AT, "ODD": ODD}
# Asymmetric per-element ranges exercise the per-element widths.
RAGGED = [Interval(-3, 100), Interval(0, 255), Interval(-128, 0), Interval(-7, 7),
          Interval(-200, 50), Interval(1, 9)]


# --- helpers --------------------------------------------------------------------------

def _pack(values, width):
    mask = (1 << width) - 1
    return sum((int(v) & mask) << (i * width) for i, v in enumerate(values))


def _unpack(raw, width, count):
    out = []
    for i in range(count):
        v = (raw >> (i * width)) & ((1 << width) - 1)
        out.append(v - (1 << width) if v >> (width - 1) else v)
    return out


def _simulate(dut, vectors, enables=None):
    """Drive one input vector per cycle; return the output seen in each cycle (before
    its clock edge). A free-running dummy register gives every design a sync domain."""
    top = Module()
    en = Signal(init=1)
    top.submodules.dut = EnableInserter(en)(dut) if enables is not None else dut
    toggle = Signal()
    top.d.sync += toggle.eq(~toggle)
    x, y = Value.cast(dut.x), Value.cast(dut.y)
    scalar = not hasattr(dut.x.shape(), "length")
    w_in = len(x) if scalar else dut.x.shape().elem_shape.width
    w_out = len(y) if scalar else dut.y.shape().elem_shape.width
    n_out = 1 if scalar else dut.y.shape().length
    seen = []

    async def bench(ctx):
        for t, vector in enumerate(vectors):
            if enables is not None:
                ctx.set(en, enables[t])
            ctx.set(x, _pack([vector] if scalar else vector, w_in))
            out = _unpack(ctx.get(y), w_out, n_out)
            seen.append(out[0] if scalar else out)
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def _lags(seen, expected, max_lag):
    """Every lag L for which the output in cycle t is the result for the input of t - L."""
    return [lag for lag in range(max_lag + 1)
            if all(seen[t] == expected[t - lag] for t in range(lag, len(seen)))]


def _random_vectors(rng, intervals, count):
    lo = np.array([iv.lo for iv in intervals])
    hi = np.array([iv.hi for iv in intervals])
    return [list(v) for v in rng.integers(lo, hi + 1, size=(count, len(intervals)))]


def _extreme_vectors(matrix, intervals):
    """All min, all max, alternating signs, and for every output the inputs that
    reach its upper and its lower bound."""
    lo = [iv.lo for iv in intervals]
    hi = [iv.hi for iv in intervals]
    vectors = [lo, hi, [lo[j] if j % 2 else hi[j] for j in range(len(lo))],
               [hi[j] if j % 2 else lo[j] for j in range(len(lo))]]
    for row in matrix:
        vectors.append([h if c > 0 else l for c, l, h in zip(row, lo, hi)])
        vectors.append([l if c > 0 else h for c, l, h in zip(row, lo, hi)])
    return vectors


def _cells(design):
    return Counter(re.findall(r"^\s*cell \\?(\$\w+)", rtlil.convert(design), re.M))


# --- CSD ------------------------------------------------------------------------------

def _min_signed_digit_weight():
    # Fewest nonzero digits of any {-1, 0, 1} representation, by the recurrence on the
    # last digit: independent of the NAF algorithm under test.
    weight = {0: 0, 1: 1, -1: 1}

    def w(k):
        if k not in weight:
            weight[k] = w(k // 2) if k % 2 == 0 else 1 + min(w((k - 1) // 2), w((k + 1) // 2))
        return weight[k]
    return w


def test_csd_digits_exact_non_adjacent_minimal():
    min_weight = _min_signed_digit_weight()
    assert csd_digits(0) == []
    for k in range(-5000, 5001):
        digits = csd_digits(k)
        assert sum(sign << shift for shift, sign in digits) == k
        assert all(sign in (-1, 1) for _, sign in digits)
        shifts = [shift for shift, _ in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:])), (k, digits)
        assert len(digits) == min_weight(k)
        assert len(digits) <= bin(abs(k)).count("1")
        assert csd_cost(k) == max(len(digits) - 1, 0) + (bool(digits) and
                                                        all(s < 0 for _, s in digits))


def test_csd_numpy_and_fraction_integers():
    assert csd_digits(np.int64(-21)) == csd_digits(-21)
    assert plan_matvec([[Fraction(4, 1), np.int32(-3)]]).matrix == ((4, -3),)


@pytest.mark.parametrize("name", MATRICES)
def test_plan_evaluates_and_sharing_never_costs(name):
    matrix = np.array(MATRICES[name])
    rng = np.random.default_rng(1)
    shared, plain = plan_matvec(matrix), plan_matvec(matrix, share=False)
    for x in rng.integers(-10**6, 10**6, size=(50, matrix.shape[1])):
        assert shared.evaluate(x) == list(matrix @ x)
        assert plain.evaluate(x) == list(matrix @ x)
    # Without sharing, every row is one tree over its CSD terms (plus a negator when
    # all are negative); identical adders may only merge.
    unshared = sum(max(len(row) - 1, 0) + (bool(row) and all(t.sign < 0 for t in row))
                   for row in plain.csd_terms)
    assert plain.adders <= unshared
    assert shared.adders <= plain.adders
    for node in shared.nodes:
        # a + b, a - b or -a: never -a - b, which would need a negator too.
        signs = [t.sign for t in node.terms]
        assert signs in ([1, 1], [1, -1], [-1])
        assert node.level == 1 + max(shared.level(t.source) for t in node.terms)


def test_sharing_pays_on_lavin_f43():
    # x4 - 4 x2 and x3 - 4 x1 are used by rows 1 and 2, x4 - x2 and x3 - x1 by rows 3
    # and 4: the textbook hand optimization.
    assert plan_matvec(F43_BT).adders < plan_matvec(F43_BT, share=False).adders
    assert len(plan_matvec(F43_BT).subexpressions) >= 4


def test_exact_divide_plan_properties():
    for divisor in range(1, 130):
        for width in range(1, 20):
            plan = exact_divide_plan(divisor, width)
            assert plan.divisor == divisor == plan.odd << plan.shift and plan.odd % 2 == 1
            assert (plan.odd * plan.inverse) % (1 << width) == 1
            assert 0 <= plan.inverse < 1 << width
            assert all(shift < width for shift, _ in plan.terms)
            assert plan.multiplier == sum(g << s for s, g in plan.terms)
            assert plan.multiplier % (1 << width) == plan.inverse
            assert plan.plan.evaluate([1]) == [plan.multiplier]


# --- ConstMatVec ----------------------------------------------------------------------

@pytest.mark.parametrize("name", MATRICES)
@pytest.mark.parametrize("ranged", ["uniform", "ragged"])
def test_matvec_bit_exact_and_tight(name, ranged):
    matrix = np.array(MATRICES[name])
    cols = matrix.shape[1]
    intervals = [signed_range(8)] * cols if ranged == "uniform" else RAGGED[:cols]
    dut = ConstMatVec(MATRICES[name], signed_range(8) if ranged == "uniform" else intervals)

    assert dut.output_intervals == matvec_intervals(matrix.tolist(), intervals)
    assert dut.x.shape().elem_shape.width == max(iv.width for iv in intervals)
    assert dut.y.shape().elem_shape.width == max(iv.width for iv in dut.output_intervals)
    assert dut.latency == 0

    vectors = _extreme_vectors(matrix, intervals) + \
        _random_vectors(np.random.default_rng(2), intervals, 200)
    seen = _simulate(dut, vectors)
    assert seen == [list(matrix @ np.array(v)) for v in vectors]
    # Every output reaches both ends of its interval: the intervals, hence widths, are tight.
    for i, iv in enumerate(dut.output_intervals):
        assert {iv.lo, iv.hi} <= {y[i] for y in seen}
    observed = [v for y in seen for v in y]
    assert dut.y.shape().elem_shape.width == Interval(min(observed), max(observed)).width


@pytest.mark.parametrize("name,stages", [("F23_BT", 1), ("F43_BT", 1), ("F43_BT", 2),
                                         ("F43_BT", 3), ("F43_BT", 5), ("ODD", 2), ("ODD", 3),
                                         ("ODD", 4), ("ODD", 7), ("F23_AT", 2),
                                         ("F23_AT", 0)])
def test_matvec_latency_equals_stages(name, stages):
    matrix = np.array(MATRICES[name])
    dut = ConstMatVec(MATRICES[name], signed_range(10), stages=stages)
    assert dut.latency == stages
    vectors = _extreme_vectors(matrix, [signed_range(10)] * matrix.shape[1]) + \
        _random_vectors(np.random.default_rng(stages), [signed_range(10)] * matrix.shape[1], 40)
    seen = _simulate(dut, vectors)
    assert _lags(seen, [list(matrix @ np.array(v)) for v in vectors], stages + 3) == [stages]


def test_matvec_stalls_under_enable_inserter():
    # The engine stalls the pipeline from outside: with enable low nothing moves.
    stages = 3
    matrix = np.array(F43_BT)
    rng = np.random.default_rng(5)
    vectors = _random_vectors(rng, [signed_range(8)] * 6, 80)
    enables = [int(e) for e in rng.integers(0, 2, size=80)]
    seen = _simulate(ConstMatVec(F43_BT, signed_range(8), stages=stages), vectors, enables)
    taken = []   # vectors captured by an enabled clock edge, in order
    for t, (vector, en) in enumerate(zip(vectors, enables)):
        if len(taken) >= stages:
            assert seen[t] == list(matrix @ np.array(taken[-stages]))
        if en:
            taken.append(vector)


# --- ConstTransform2D -----------------------------------------------------------------

def _extreme_tiles(matrix, intervals):
    rows, cols = len(matrix), len(matrix[0])
    lo = [iv.lo for iv in intervals]
    hi = [iv.hi for iv in intervals]
    tiles = [lo, hi, [lo[e] if (e // cols + e % cols) % 2 else hi[e] for e in range(cols * cols)]]
    for i, k in itertools.product(range(rows), repeat=2):
        sign = [matrix[i][e // cols] * matrix[k][e % cols] for e in range(cols * cols)]
        tiles.append([hi[e] if sign[e] > 0 else lo[e] for e in range(cols * cols)])
        tiles.append([lo[e] if sign[e] > 0 else hi[e] for e in range(cols * cols)])
    return tiles


def _transform(matrix, tile):
    m = np.array(matrix)
    n = m.shape[1]
    return list((m @ np.array(tile).reshape(n, n) @ m.T).reshape(-1))


@pytest.mark.parametrize("name", ["F23_BT", "F43_BT", "F23_AT", "ODD"])
def test_transform2d_bit_exact_and_tight(name):
    matrix = MATRICES[name]
    cols = len(matrix[0])
    element = signed_range(8)
    dut = ConstTransform2D(matrix, element)
    assert dut.output_intervals == transform_intervals(matrix, element, dims=2)
    assert dut.y.shape().length == len(matrix) ** 2
    assert dut.y.shape().elem_shape.width == max(iv.width for iv in dut.output_intervals)
    assert dut.adders == (len(matrix) + cols) * plan_matvec(matrix).adders

    tiles = _extreme_tiles(matrix, [element] * cols * cols) + \
        _random_vectors(np.random.default_rng(3), [element] * cols * cols, 60)
    seen = _simulate(dut, tiles)
    assert seen == [_transform(matrix, tile) for tile in tiles]
    for e, iv in enumerate(dut.output_intervals):
        assert {iv.lo, iv.hi} <= {y[e] for y in seen}


def test_transform2d_per_element_ranges():
    # An elementwise product feeding the output transform has per-position ranges.
    matrix = F23_AT
    rng = np.random.default_rng(4)
    intervals = [Interval(-int(a), int(b)) for a, b in rng.integers(0, 300, size=(16, 2))]
    dut = ConstTransform2D(matrix, intervals)
    assert dut.output_intervals == transform2d_intervals(matrix, intervals)
    tiles = _extreme_tiles(matrix, intervals) + _random_vectors(rng, intervals, 40)
    seen = _simulate(dut, tiles)
    assert seen == [_transform(matrix, tile) for tile in tiles]
    for e, iv in enumerate(dut.output_intervals):
        assert {iv.lo, iv.hi} <= {y[e] for y in seen}


@pytest.mark.parametrize("stages", [1, 2, 3, 6])
def test_transform2d_latency_equals_stages(stages):
    dut = ConstTransform2D(F43_BT, signed_range(6), stages=stages)
    assert dut.latency == stages
    assert sum(dut.stages_split) == stages
    tiles = _random_vectors(np.random.default_rng(stages), [signed_range(6)] * 36, 30)
    seen = _simulate(dut, tiles)
    assert _lags(seen, [_transform(F43_BT, t) for t in tiles], stages + 3) == [stages]


# --- ExactDivider ---------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [1, 4, 9, 36, 100])
@pytest.mark.parametrize("interval", [signed_range(16), Interval(-1000, 5000)])
@pytest.mark.parametrize("stages", [0, 2])
def test_exact_divider(divisor, interval, stages):
    dut = ExactDivider(divisor, interval, stages=stages)
    lo, hi = dut.output_interval.lo, dut.output_interval.hi
    assert divisor * (lo - 1) < interval.lo <= divisor * lo <= divisor * hi <= interval.hi \
        < divisor * (hi + 1)
    assert len(dut.y) == dut.output_interval.width
    rng = np.random.default_rng(divisor)
    quotients = [lo, hi, lo + 1, hi - 1, 0] + [int(q) for q in rng.integers(lo, hi + 1, 300)]
    seen = _simulate(dut, [divisor * q for q in quotients])
    assert _lags(seen, quotients, stages + 2) == [stages]
    if divisor == 1:
        assert dut.adders == 0


# --- netlist --------------------------------------------------------------------------

@pytest.mark.parametrize("design", [
    lambda: ConstMatVec(ODD, signed_range(12), stages=2),
    lambda: ConstMatVec(F43_AT, signed_range(12)),
    lambda: ConstTransform2D(F43_BT, signed_range(8), stages=3),
    lambda: ExactDivider(100, signed_range(20), stages=1),
    lambda: ExactDivider(9, signed_range(16)),
])
def test_no_multipliers_and_adders_as_counted(design):
    dut = design()
    cells = _cells(dut)
    assert "$mul" not in cells
    assert cells["$add"] + cells["$sub"] + cells["$neg"] == dut.adders


# --- validation -----------------------------------------------------------------------

@pytest.fixture
def rejected():
    """Components refused by __init__ were never meant to be elaborated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        yield
        gc.collect()


def test_validation(rejected):
    with pytest.raises(ValueError, match=r"^stages must be a non-negative integer, not -1$"):
        ConstMatVec(F23_BT, signed_range(8), stages=-1)
    with pytest.raises(ValueError, match=r"^stages must be a non-negative integer, not 1.5$"):
        ConstTransform2D(F23_BT, signed_range(8), stages=1.5)
    with pytest.raises(ValueError, match=r"^stages must be a non-negative integer, not True$"):
        ExactDivider(4, signed_range(8), stages=True)
    with pytest.raises(ValueError, match=r"^matrix entries must be integers, not 0.5$"):
        ConstMatVec([[1, 0.5]], signed_range(8))
    with pytest.raises(ValueError, match=r"^matrix entries must be integers, not Fraction\(1, 2\)$"):
        plan_matvec([[Fraction(1, 2)]])
    with pytest.raises(ValueError, match=r"^matrix row 1 must have 2 entries like row 0, not 1$"):
        ConstMatVec([[1, 2], [3]], signed_range(8))
    with pytest.raises(ValueError, match=r"^matrix must have at least one row and one column"):
        ConstMatVec([], signed_range(8))
    with pytest.raises(ValueError, match=r"^matrix must be a sequence of rows, not 3$"):
        plan_matvec(3)
    with pytest.raises(ValueError, match=r"^inputs must have 4 intervals, not 3$"):
        ConstMatVec(F23_BT, [signed_range(8)] * 3)
    with pytest.raises(TypeError, match=r"^inputs must contain only Intervals, not 8$"):
        ConstMatVec(F23_BT, [8] * 4)
    with pytest.raises(ValueError, match=r"^element must have 16 intervals, not 4$"):
        ConstTransform2D(F23_BT, [signed_range(8)] * 4)
    with pytest.raises(ValueError, match=r"^divisor must be a positive integer, not 0$"):
        ExactDivider(0, signed_range(8))
    with pytest.raises(ValueError, match=r"^input_interval must contain a multiple of 4, not "):
        ExactDivider(4, Interval(1, 3))
    with pytest.raises(TypeError, match=r"^input_interval must be an Interval, not 8$"):
        ExactDivider(4, 8)
    with pytest.raises(ValueError, match=r"^out_width must be a positive integer, not 0$"):
        exact_divide_plan(3, 0)
    with pytest.raises(ValueError, match=r"^k must be an integer, not 1.5$"):
        csd_digits(1.5)
