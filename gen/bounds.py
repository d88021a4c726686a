"""Worst-case bit growth, derived from the matrices.

Every width in the generated hardware comes from here. A value is described by
the closed integer interval it can take; the width is the smallest two's
complement width holding that interval. For a linear map ``y = M x`` with
integer ``M`` and ``x_j`` in ``[lo_j, hi_j]`` (intervals containing 0), the
exact range of ``y_i`` is the sum over ``j`` of the range of ``M_ij * x_j``:
the positive and negative parts of row ``i`` of ``M`` (its row norms, split by
sign) times the input extremes. The bound is tight: it is reached by an input.
"""

from dataclasses import dataclass
from fractions import Fraction
import numbers

from .checks import check_int

__all__ = ["Interval", "signed_range", "signed_width", "matvec_intervals", "transform_intervals",
           "transform2d_intervals",
           "matrix_row_norms", "transform_bits"]


def signed_range(width):
    """The interval of a ``width``-bit two's complement integer."""
    check_int("width", width, 1)
    return Interval(-(1 << (width - 1)), (1 << (width - 1)) - 1)


def signed_width(lo, hi=None):
    """The smallest two's complement width (at least 1) holding ``[lo, hi]``."""
    if hi is None:
        lo, hi = lo if isinstance(lo, tuple) else (lo.lo, lo.hi)
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


@dataclass(frozen=True)
class Interval:
    """A closed integer interval ``[lo, hi]``, with the arithmetic that bounds need."""
    lo: int
    hi: int

    def __post_init__(self):
        if self.lo > self.hi:
            raise ValueError(f"Interval lower bound {self.lo} exceeds upper bound {self.hi}")

    @classmethod
    def of_signed(cls, width):
        return signed_range(width)

    @classmethod
    def of_unsigned(cls, width):
        check_int("width", width, 1)
        return cls(0, (1 << width) - 1)

    @property
    def width(self):
        """Signed (two's complement) width that holds the interval."""
        return signed_width(self.lo, self.hi)

    @property
    def magnitude(self):
        return max(abs(self.lo), abs(self.hi))

    def __add__(self, other):
        other = _as_interval(other)
        return Interval(self.lo + other.lo, self.hi + other.hi)

    __radd__ = __add__

    def __neg__(self):
        return Interval(-self.hi, -self.lo)

    def __sub__(self, other):
        return self + (-_as_interval(other))

    def __rsub__(self, other):
        return _as_interval(other) - self

    def __mul__(self, other):
        other = _as_interval(other)
        corners = [self.lo * other.lo, self.lo * other.hi, self.hi * other.lo, self.hi * other.hi]
        return Interval(min(corners), max(corners))

    __rmul__ = __mul__

    def scale(self, k):
        """The interval of ``k * x`` for an integer constant ``k``."""
        return self * Interval(k, k)

    def shift_left(self, amount):
        return Interval(self.lo << amount, self.hi << amount)

    def hull(self, other):
        other = _as_interval(other)
        return Interval(min(self.lo, other.lo), max(self.hi, other.hi))

    def abs(self):
        if self.lo >= 0:
            return self
        if self.hi <= 0:
            return -self
        return Interval(0, max(-self.lo, self.hi))

    def times(self, count):
        """The interval of a sum of ``count`` values each in this interval."""
        if not isinstance(count, numbers.Integral) or count < 0:
            raise ValueError(f"count must be a non-negative integer, not {count!r}")
        return Interval(self.lo * count, self.hi * count)

    def __contains__(self, value):
        return self.lo <= value <= self.hi


def _as_interval(value):
    if isinstance(value, Interval):
        return value
    if isinstance(value, numbers.Integral):
        return Interval(int(value), int(value))
    raise TypeError(f"Expected an Interval or an integer, not {value!r}")


def matvec_intervals(matrix, inputs):
    """Exact output intervals of ``y = matrix @ x`` for an integer ``matrix``.

    Parameters
    ----------
    matrix : sequence of sequences of int
        Rows of the constant matrix.
    inputs : Interval or sequence of Interval
        The range of each input element (one interval for all, or one each).

    Returns
    -------
    list of Interval
        The tight range of each output element.
    """
    rows = [list(row) for row in matrix]
    ncols = len(rows[0]) if rows else 0
    if isinstance(inputs, Interval):
        inputs = [inputs] * ncols
    inputs = list(inputs)
    if len(inputs) != ncols:
        raise ValueError(f"inputs must have {ncols} intervals, not {len(inputs)}")
    result = []
    for row in rows:
        acc = Interval(0, 0)
        for coeff, x in zip(row, inputs):
            if Fraction(coeff).denominator != 1:
                raise ValueError(f"matrix entries must be integers, not {coeff!r}")
            acc = acc + x.scale(int(coeff))
        result.append(acc)
    return result


def matrix_row_norms(matrix):
    """The (positive-part, negative-part) ℓ1 norms of each row of ``matrix``."""
    norms = []
    for row in matrix:
        pos = sum(Fraction(c) for c in row if c > 0)
        neg = sum(-Fraction(c) for c in row if c < 0)
        norms.append((pos, neg))
    return norms


def transform_bits(matrix, input_width, dims=1):
    """Worst-case output width of an integer transform of signed inputs.

    ``dims=1`` bounds ``M x``; ``dims=2`` bounds ``M X Mᵀ``, whose coefficient
    for output ``(i, j)`` is the outer product of rows ``i`` and ``j`` (so its
    row norms multiply).

    Returns
    -------
    int
        The signed width that holds every output for every input of
        ``input_width`` bits.
    """
    return max(iv.width for iv in transform_intervals(matrix, signed_range(input_width), dims))


def transform_intervals(matrix, element, dims=1):
    """Output intervals of the 1-D (``M x``) or 2-D (``M X Mᵀ``) transform.

    ``element`` is the interval of every input element. The 2-D result is
    returned row-major as a flat list of ``rows**2`` intervals.
    """
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 or 2, not {dims!r}")
    rows = [list(row) for row in matrix]
    ncols = len(rows[0])
    first = matvec_intervals(rows, [element] * ncols)
    if dims == 1:
        return first
    # Y = M X Mᵀ: first M along columns (each column of X is in `element`),
    # giving Z = M X with Z[i, :] in first[i]; then Y[i, :] = M Z[i, :]ᵀ.
    out = []
    for i in range(len(rows)):
        out.extend(matvec_intervals(rows, [first[i]] * ncols))
    return out


def transform2d_intervals(matrix, elements):
    """Output intervals of ``M X Mᵀ`` when each element of ``X`` has its own range.

    Parameters
    ----------
    matrix : rows × cols integer matrix ``M``
    elements : sequence of Interval
        The ``cols × cols`` element ranges of ``X``, row-major.

    Returns
    -------
    list of Interval
        ``rows × rows`` ranges, row-major. Tight: the first pass combines
        elements of one column of ``X`` and the second pass combines values that
        depend on disjoint columns, so every extreme is reachable.
    """
    rows = [list(row) for row in matrix]
    ncols = len(rows[0])
    elements = list(elements)
    if len(elements) != ncols * ncols:
        raise ValueError(f"elements must hold {ncols * ncols} intervals, not {len(elements)}")
    # Z = M X: Z[i][l] combines column l of X.
    columns = [[elements[k * ncols + l] for k in range(ncols)] for l in range(ncols)]
    z = [matvec_intervals(rows, columns[l]) for l in range(ncols)]  # z[l][i]
    out = []
    for i in range(len(rows)):
        out.extend(matvec_intervals(rows, [z[l][i] for l in range(ncols)]))
    return out
