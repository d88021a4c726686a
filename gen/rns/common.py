"""Shared helpers of the RNS modules: methods, integer-array checks and dtypes."""

import numbers

import numpy as np

from ..bounds import Interval
from ..models import _is_integer_array, _python_ints

__all__ = ["METHODS", "BOUNDS"]


#: Ways of mapping a Toom-Cook algorithm into the residue rings.
METHODS = ("scaled", "inverse")


#: How :func:`required_range` bounds the scaled result.
BOUNDS = ("exact", "transform")

_INT64_MAX = int(np.iinfo(np.int64).max)
# Integers below 2**53 are exact in float64, and so is a GEMM whose partial
# sums stay below it: the channel sums can use BLAS, bit for bit the same.
_FLOAT64_EXACT_INT = 2 ** 53


def _check_modulus(m):
    if not isinstance(m, numbers.Integral) or isinstance(m, bool) or m < 2:
        raise ValueError(f"moduli must be integers of at least 2, not {m!r}")
    return int(m)


def _as_interval(value):
    if isinstance(value, Interval):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        return Interval(int(value[0]), int(value[1]))
    raise TypeError(f"expected an Interval or a (lo, hi) pair, not {value!r}")


def _check_method(method):
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    return method


def _fits_int64(*bounds):
    return all(b <= _INT64_MAX for b in bounds)


def _residue_dtype(ms, terms=1):
    """int64 when ``terms`` products of two residues sum without overflow, else object."""
    return np.int64 if _fits_int64((max(ms.moduli) - 1) ** 2 * max(terms, 1)) else object


def _column(values, ndim, dtype):
    """``values`` as a ``(k, 1, …, 1)`` array broadcasting against a residue array."""
    return np.array(values, dtype=dtype).reshape((-1,) + (1,) * (ndim - 1))


def _integer_array(name, x):
    x = np.asarray(x)
    if not _is_integer_array(x):
        raise TypeError(f"{name} must be an array of integers, not an array of {x.dtype}")
    if x.dtype.kind == "u" and x.dtype.itemsize == 8:
        x = _python_ints(x)       # uint64 mixed with int64 would turn into float64
    elif x.dtype.kind in "iu":
        x = x.astype(np.int64)
    return x


def _extremes(x):
    """``(min, max)`` of an integer array as Python ints, ``(0, 0)`` when empty."""
    if x.size == 0:
        return 0, 0
    return int(x.min()), int(x.max())
