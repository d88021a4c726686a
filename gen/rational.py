"""Small exact linear algebra over :class:`fractions.Fraction` (no floats anywhere)."""

from fractions import Fraction
from math import gcd, lcm

__all__ = ["Matrix", "to_fraction_matrix", "identity", "matmul", "transpose", "inverse",
           "content", "is_integer_matrix", "as_int_rows", "format_matrix"]


def to_fraction_matrix(rows):
    return [[Fraction(x) for x in row] for row in rows]


def identity(n):
    return [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]


def transpose(a):
    return [list(col) for col in zip(*a)]


def matmul(a, b):
    bt = transpose(b)
    return [[sum((x * y for x, y in zip(row, col)), Fraction(0)) for col in bt] for row in a]


def inverse(a):
    """Exact inverse by Gauss-Jordan elimination; raises ZeroDivisionError if singular."""
    n = len(a)
    aug = [list(row) + ident for row, ident in zip(to_fraction_matrix(a), identity(n))]
    for col in range(n):
        pivot = next((r for r in range(col, n) if aug[r][col] != 0), None)
        if pivot is None:
            raise ZeroDivisionError("matrix is singular")
        aug[col], aug[pivot] = aug[pivot], aug[col]
        p = aug[col][col]
        aug[col] = [x / p for x in aug[col]]
        for r in range(n):
            if r != col and aug[r][col] != 0:
                f = aug[r][col]
                aug[r] = [x - f * y for x, y in zip(aug[r], aug[col])]
    return [row[n:] for row in aug]


def content(vector):
    """The positive rational ``c`` with ``vector / c`` a primitive integer vector.

    A primitive vector has coprime integer entries; 0 for the zero vector.
    """
    nonzero = [Fraction(x) for x in vector if x != 0]
    if not nonzero:
        return Fraction(0)
    den = lcm(*(x.denominator for x in nonzero))
    num = 0
    for x in nonzero:
        num = gcd(num, int(x * den))
    return Fraction(num, den)


def is_integer_matrix(a):
    return all(Fraction(x).denominator == 1 for row in a for x in row)


def as_int_rows(a):
    """Rows as tuples of ``int``; raises ValueError for a non-integer entry."""
    if not is_integer_matrix(a):
        raise ValueError("matrix has non-integer entries")
    return tuple(tuple(int(x) for x in row) for row in a)


def format_matrix(a):
    """Rows of exact strings (``"1/2"``), the JSON form of a rational matrix."""
    return [[str(Fraction(x)) for x in row] for row in a]


Matrix = list
