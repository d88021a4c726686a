"""Winograd transforms reduced into each residue ring, and their modular application."""

from dataclasses import dataclass
from fractions import Fraction
from math import gcd, lcm

import numpy as np

from ..bounds import Interval
from ..models import _check_toomcook
from ..toomcook import FRACTION_PLACEMENTS
from .common import _INT64_MAX, _check_method, _column, _extremes, _residue_dtype
from .moduli import ModuliSet, _as_moduli

__all__ = ["RNSTransforms", "rns_transforms"]


@dataclass(frozen=True)
class RNSTransforms:
    """Winograd transforms reduced into each residue ring.

    Members
    -------
    moduli : ModuliSet
    method : str
        ``"scaled"`` or ``"inverse"``.
    AT, G, BT : tuple
        One integer matrix (tuple of tuples, entries in ``[0, m_i)``) per
        modulus, in the order of ``moduli``.
    denominator : int
        ``D`` for ``"scaled"`` (the reverse-converted result is ``D^dims · Y``),
        1 for ``"inverse"``.
    """
    moduli: ModuliSet
    method: str
    AT: tuple
    G: tuple
    BT: tuple
    denominator: int

    def scale_divisor(self, dims=2):
        """What to divide out (exactly) after reverse conversion: ``D^dims``."""
        return self.denominator ** dims

    def stacked(self):
        """``(AT, G, BT)`` as arrays of shape ``(k, rows, cols)`` (int64, or object)."""
        # Each matrix product sums n products of two residues.
        dtype = _residue_dtype(self.moduli, len(self.BT[0]))
        return tuple(np.array(M, dtype=dtype) for M in (self.AT, self.G, self.BT))


def _reduce(matrix, m):
    return tuple(tuple(int(x) % m for x in row) for row in matrix)


def _reduce_rational(matrix, m):
    # a/b -> a·b⁻¹ mod m; the caller has checked that b is invertible.
    return tuple(tuple(Fraction(x).numerator * pow(Fraction(x).denominator, -1, m) % m
                       for x in row) for row in matrix)


def rns_transforms(tc, moduli, method="scaled", *, fractions="G"):
    """The transforms of ``tc`` modulo each modulus.

    Parameters
    ----------
    tc : ToomCook
    moduli : ModuliSet, sequence of int or preset name
    method : str
        ``"scaled"``: :meth:`ToomCook.hardware` matrices reduced mod ``m_i``;
        ``"inverse"``: rational entries ``a/b`` mapped to ``a · b⁻¹ mod m_i``.
    fractions : str
        For ``"inverse"``: where the fractions live (``"G"``, ``"A"`` or
        ``"B"``, see :meth:`ToomCook.matrices`); ``"G"`` keeps them in the
        filter transform, which is usually done offline.

    Returns
    -------
    RNSTransforms

    Raises
    ------
    ValueError
        For ``"inverse"`` when a denominator shares a factor with a modulus,
        naming both.
    """
    tc = _check_toomcook(tc)
    ms = _as_moduli(moduli)
    method = _check_method(method)
    if method == "scaled":
        hw = tc.hardware()
        mats = (hw.AT, hw.G, hw.BT)
        per = [tuple(_reduce(M, m) for m in ms.moduli) for M in mats]
        return RNSTransforms(ms, method, *per, denominator=hw.denominator)
    if fractions not in FRACTION_PLACEMENTS or fractions == "F":
        raise ValueError(f"fractions must be one of G, A, B for method 'inverse', "
                         f"not {fractions!r}")
    wm = tc.matrices(fractions)
    mats = (wm.AT, wm.G, wm.BT)
    dens = sorted({Fraction(x).denominator for M in mats for row in M for x in row})
    for b in dens:
        for m in ms.moduli:
            if gcd(b, m) != 1:
                raise ValueError(
                    f"method 'inverse' needs every denominator of {tc.name} invertible modulo "
                    f"every modulus, not denominator {b} modulo {m} (gcd {gcd(b, m)}); use method "
                    f"'scaled' or moduli coprime to {lcm(*dens)}")
    per = [tuple(_reduce_rational(M, m) for m in ms.moduli) for M in mats]
    return RNSTransforms(ms, method, *per, denominator=1)


def _mod_apply(mats, x, mods, axis):
    """``y_i = (M_i x_i) mod m_i`` along ``axis`` (-2 or -1) of ``x`` of shape (k, ..., a, b)."""
    shape = (mats.shape[0],) + (1,) * (x.ndim - 3) + mats.shape[1:]
    M = mats.reshape(shape)
    y = np.matmul(M, x) if axis == -2 else np.matmul(x, np.swapaxes(M, -1, -2))
    return y % mods


def _mod_transform2d(mats, x, ms):
    """``M_i X_i M_iᵀ mod m_i`` over the last two axes of each ``x[i]``."""
    mods = _column(ms.moduli, x.ndim, mats.dtype)
    return _mod_apply(mats, _mod_apply(mats, x, mods, -2), mods, -1)


def _divide_exact(y, divisor):
    if divisor == 1:
        return y
    if np.any(y % divisor != 0):
        raise AssertionError(f"RNS Winograd result is not divisible by {divisor}: "
                             f"the transforms are inconsistent")
    return y // divisor


def _operand_interval(x):
    lo, hi = _extremes(x)
    return Interval(min(lo, 0), max(hi, 0))


def _finish(y):
    """Python ints back to int64 when every value fits, for convenient comparison."""
    if isinstance(y, np.ndarray) and y.dtype == object and y.size:
        if max(abs(int(y.max())), abs(int(y.min()))) <= _INT64_MAX:
            return y.astype(np.int64)
    return y


def _inverse_ok(tc, ms):
    try:
        rns_transforms(tc, ms, "inverse")
    except ValueError:
        return False
    return True
