"""Forward and reverse conversion: residues, the Chinese remainder theorem, mixed radix."""

import numpy as np

from ..models import _python_ints
from .common import _extremes, _fits_int64, _integer_array, _residue_dtype
from .moduli import _as_moduli

__all__ = ["to_residues", "from_residues_crt", "from_residues_mrc",
           "mixed_radix_digits", "converter_levels"]


def to_residues(x, moduli, *, check=True):
    """Forward conversion: the residues ``x mod m_i`` of signed integers.

    Parameters
    ----------
    x : int or array_like of int
        Integer array (any integer dtype or object of Python ints).
    moduli : ModuliSet, sequence of int or preset name
    check : bool
        Refuse values outside the dynamic range (they would alias). Pass
        False to reduce arbitrary integers (a homomorphism, as hardware does).

    Returns
    -------
    numpy.ndarray, shape (k,) + x.shape
        Residues in ``[0, m_i)``: int64 unless a modulus exceeds int64
        arithmetic (then object). A negative ``x`` maps to ``M + x``.
    """
    ms = _as_moduli(moduli)
    x = _integer_array("x", x)
    if check:
        lo, hi = _extremes(x)
        dr = ms.dynamic_range
        if lo < dr.lo or hi > dr.hi:
            bad = lo if lo < dr.lo else hi
            raise ValueError(f"x must lie in the dynamic range [{dr.lo}, {dr.hi}] of moduli "
                             f"{list(ms.moduli)}, not {bad}")
    dtype = _residue_dtype(ms)
    if dtype is object and x.dtype != object:
        x = _python_ints(x)
    # Python and NumPy % both return the sign of the (positive) divisor.
    out = np.stack([x % m for m in ms.moduli])
    return out.astype(dtype) if dtype is np.int64 else out


def _check_residues(res, ms):
    res = _integer_array("res", res)
    if res.ndim < 1 or res.shape[0] != len(ms):
        raise ValueError(f"res must have shape ({len(ms)}, ...) for moduli {list(ms.moduli)}, "
                         f"not {res.shape}")
    for i, m in enumerate(ms.moduli):
        lo, hi = _extremes(res[i])
        if lo < 0 or hi >= m:
            raise ValueError(f"residues modulo {m} must lie in [0, {m - 1}], "
                             f"not {lo if lo < 0 else hi}")
    dtype = _residue_dtype(ms)
    if dtype is object and res.dtype != object:
        res = _python_ints(res)
    return res.astype(dtype) if dtype is np.int64 else res


def _signed(x, ms):
    """``x`` in ``[0, M)`` to the signed dynamic range."""
    return np.where(x > ms.dynamic_range.hi, x - ms.product, x)


def _result(x, ms):
    """int64 when the dynamic range fits, else object; a Python int for a scalar."""
    if x.ndim == 0:
        return int(x)
    if _fits_int64(ms.product) and x.dtype == object:
        return x.astype(np.int64)
    return x


def from_residues_crt(res, moduli):
    """Reverse conversion by the Chinese remainder theorem.

    ``x = Σ_i M_i · |r_i · M_i⁻¹|_{m_i}  mod M`` with ``M_i = M / m_i``; each
    term is below ``M``, so only the final sum needs a reduction mod ``M``.

    Parameters
    ----------
    res : array_like of int, shape (k, ...)
        Residues, ``res[i]`` in ``[0, m_i)``.
    moduli : ModuliSet, sequence of int or preset name

    Returns
    -------
    numpy.ndarray of shape ``res.shape[1:]`` or int
        The signed values in the dynamic range: int64 when ``M`` fits in
        int64, else object of Python ints.
    """
    ms = _as_moduli(moduli)
    res = _check_residues(res, ms)
    if res.dtype != object and not _fits_int64(len(ms) * ms.product):
        res = _python_ints(res)
    x = 0
    for i, (m, (Mi, ci)) in enumerate(zip(ms.moduli, ms._crt)):
        x = x + (res[i] * ci % m) * Mi
    # 0-d inputs come back as plain ints: keep the dtype the bounds were checked for.
    return _result(_signed(np.asarray(x % ms.product, dtype=res.dtype), ms), ms)


def mixed_radix_digits(res, moduli):
    """The mixed-radix digits of the residues (the digits hardware converters produce).

    ``x = a_0 + a_1 m_0 + a_2 m_0 m_1 + … + a_{k-1} m_0 ⋯ m_{k-2}`` with
    ``0 ≤ a_i < m_i`` and ``x`` in ``[0, M)``. Digit ``a_i`` follows from the
    residues by ``a_i = |(… (r_i - a_0) m_0⁻¹ - a_1) m_1⁻¹ … - a_{i-1}) m_{i-1}⁻¹|_{m_i}``:
    only arithmetic mod ``m_i``, no wide operations. The top digit tells the
    sign: ``x`` is negative iff ``x ≥ ⌈M/2⌉``.

    Parameters
    ----------
    res : array_like of int, shape (k, ...)
    moduli : ModuliSet, sequence of int or preset name

    Returns
    -------
    numpy.ndarray, shape (k, ...)
        ``a_i`` in ``[0, m_i)``, same dtype as the residues.
    """
    ms = _as_moduli(moduli)
    res = _check_residues(res, ms)
    digits = []
    for i, m in enumerate(ms.moduli):
        t = res[i]
        for j, inv in enumerate(ms._mrc_inv[i]):
            t = (t - digits[j] % m) % m * inv % m
        digits.append(t)
    return np.stack(digits)


def from_residues_mrc(res, moduli):
    """Reverse conversion by mixed radix: :func:`mixed_radix_digits`, then Horner.

    Parameters
    ----------
    res : array_like of int, shape (k, ...)
    moduli : ModuliSet, sequence of int or preset name

    Returns
    -------
    numpy.ndarray of shape ``res.shape[1:]`` or int
        The signed values in the dynamic range, as :func:`from_residues_crt`.
    """
    ms = _as_moduli(moduli)
    a = mixed_radix_digits(res, ms)
    if a.dtype != object and not _fits_int64(ms.product):
        a = _python_ints(a)
    x = a[-1]
    for i in range(len(ms) - 2, -1, -1):
        x = x * ms.moduli[i] + a[i]
    return _result(_signed(np.asarray(x, dtype=a.dtype), ms), ms)


def converter_levels(moduli_count):
    """Register levels of the mixed-radix reverse converter for ``moduli_count`` moduli.

    Digit ``j >= 1`` is two levels, its constant linear form and its reduction; digit
    0 (a conditional subtraction) shares a level with digit 1's form; then the
    weighted sum is one level and the sign with the redundant check another: ``2k``.
    (With one modulus, digit 0 and the trivial weighted sum are the first level.)
    ``convert_stages`` registers at most one per level; the default is one per level.
    """
    return 2 * moduli_count
