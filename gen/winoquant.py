"""A quantized Winograd domain: ``V`` and ``U`` rounded to ``W`` bits with power-of-two scales.

An exact engine multiplies ``V = Bᵀ d B`` by ``U = G g Gᵀ`` at their full widths
(F(4,3), 8-bit data: 17 × 16-bit products). A quantized engine rounds both to ``W``
bits first, so its Hadamard multipliers are ``W × W``. The numbers, which the golden
model (:class:`~winogen.gen.fixedpoint.TileModel`) and the hardware share exactly:

``V`` (on chip)
    ``V̂_ij = sat(⌊(V_ij + 2^(sV_ij − 1)) / 2^sV_ij⌋)`` for ``sV_ij ≥ 1`` (round half
    up: add half an LSB, then an arithmetic right shift), ``V̂_ij = V_ij`` for
    ``sV_ij = 0``. ``sat`` clamps to ``2^(W−1) − 1``: rounding up can carry one past
    the top of ``W`` bits (a ``V_ij`` within half an LSB of the top); it never passes
    the bottom (``−2^(W−1) + ½`` rounds to ``−2^(W−1)``). The clamp is built only at
    the positions whose exact range reaches the carry (:attr:`WinogradQuantization.v_saturates`).
``U`` (offline, exact rational arithmetic)
    ``Û_ij = sat(⌊U_ij / (D² 2^sU_ij) + ½⌋)``: the *rational* Winograd-domain filter
    ``U_ij / D²`` (the integer transforms' scale ``D²`` folded into ``U``), rounded half
    up at scale ``2^sU_ij``; ``sU_ij`` may be negative (``U / D²`` is small, so it is
    scaled up). Folding ``D²`` into ``U`` leaves the engine nothing to divide by: no
    constant divider, only shifts. The weight stream carries ``Û``.
Products and output
    ``M_ij = V̂_ij Û_ij`` has scale ``2^e_ij``, ``e_ij = sV_ij + sU_ij``. Each is shifted
    left by ``a_ij = e_ij − min e`` (wires) to the common scale ``2^(min e)``, so the
    output transform ``Z = Aᵀ (M ≪ a) A`` is exact on the rounded values, and the output
    is ``Y = ⌊Z / 2^−min e + ½⌋`` (round half up; ``Z ≪ min e`` when ``min e ≥ 0``).
    ``Y`` approximates the correlation ``Σ d g``; with ``W`` at least the exact widths
    and ``D`` a power of two it equals it.

Shifts are derived, not chosen (:func:`scale_shift`): the smallest ``s`` whose
``2^s`` brings the exact range of the value (:mod:`winogen.gen.bounds`) inside
``[−2^(W−1), 2^(W−1))``, but not below the scale at which every value of that position
is already an exact integer (:func:`exact_shift`: ``V`` never shifts left; a ``U_ij /
D²`` that is always a multiple of ``2^t`` never goes below ``t``), since a finer scale
only appends zero bits. ``"global"`` uses the largest per-position shift of each operand at
every position (one ``sV``, one ``sU``); ``"tapwise"`` (Andri et al., HPCA 2023) one
power-of-two shift per Winograd position ``(i, j)`` and operand.
:func:`winograd_shifts` gives them for any integer transforms (built-in, user
matrices, base-changed), so the accuracy study and later transforms reuse them.

Pure Python and NumPy.
"""

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
import math
from math import gcd

import numpy as np

from .bounds import Interval, signed_range, transform2d_intervals, transform_intervals
from .checks import check_choice, check_int, read_json_file

__all__ = ["SCALE_MODES", "GIVEN", "check_given_shifts", "load_scale_file", "MIN_WINO_WIDTH",
           "scale_shift", "exact_shift", "round_half_up_shift",
           "round_half_up_div", "winograd_shifts", "WinogradQuantization"]

#: ``global``: one shift per operand; ``tapwise``: one per Winograd position and operand.
SCALE_MODES = ("global", "tapwise")

#: Narrowest Winograd domain: a sign bit and one magnitude bit.
MIN_WINO_WIDTH = 2

#: ``scales`` of a domain whose shifts are given (a tap-wise scale file, calibrated on
#: data: :func:`winogen.nets.wa.calibrated_shifts`) rather than derived from the ranges.
GIVEN = "given"


def check_given_shifts(shifts, n, where="wino_shifts"):
    """``(sV, sU)`` as two tuples of ``n²`` ints (``sV ≥ 0``); from lists, flat or n × n.

    Raises
    ------
    ValueError
        Naming the operand, for a wrong count, a non-integer or a negative ``sV``.
    """
    if not isinstance(shifts, (tuple, list)) or len(shifts) != 2:
        raise ValueError(f"{where} must be a pair (v_shifts, u_shifts), not {shifts!r}")
    out = []
    for name, values in zip(("v_shifts", "u_shifts"), shifts):
        flat = values
        if isinstance(values, (tuple, list)) and values and all(
                isinstance(row, (tuple, list)) for row in values):
            flat = [x for row in values for x in row]
            if len(values) != n or any(len(row) != n for row in values):
                raise ValueError(f"{where}: {name} must be {n} x {n} (one shift per Winograd "
                                 f"position), not {len(values)} rows of "
                                 f"{sorted({len(row) for row in values})} entries")
        if not isinstance(flat, (tuple, list)) or len(flat) != n * n:
            count = len(flat) if isinstance(flat, (tuple, list)) else flat
            raise ValueError(f"{where}: {name} must hold {n} x {n} = {n * n} shifts (one per "
                             f"Winograd position), not {count!r}")
        for x in flat:
            if isinstance(x, bool) or not isinstance(x, int):
                raise ValueError(f"{where}: {name} entries must be integers, not {x!r}")
        if name == "v_shifts" and min(flat) < 0:
            raise ValueError(f"{where}: v_shifts must be at least 0 (V is an integer: a left "
                             f"shift adds no information), not {min(flat)}")
        out.append(tuple(int(x) for x in flat))
    return tuple(out)


def load_scale_file(path, n):
    """``(sV, sU)`` of a tap-wise scale file ``{"v_shifts": [[…]], "u_shifts": [[…]]}``
    (n × n integers each; ``n`` None: the two lists as they are, for the configuration
    to check); messages name the file."""
    where = f"scale file {str(path)!r}"
    data = read_json_file(path, where)
    if not isinstance(data, dict) or set(data) != {"v_shifts", "u_shifts"}:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{where} must hold an object with keys v_shifts, u_shifts, "
                         f"not {got!r}")
    if n is None:
        return (data["v_shifts"], data["u_shifts"])
    return check_given_shifts((data["v_shifts"], data["u_shifts"]), n, where)


def scale_shift(lo, hi, width, minimum=None):
    """The smallest integer ``s`` with ``lo / 2^s ≥ −2^(W−1)`` and ``hi / 2^s < 2^(W−1)``.

    ``lo`` and ``hi`` are exact (int or Fraction); ``minimum`` bounds ``s`` from below
    (0 for integer values that are not to be scaled up). A range of only 0 takes
    ``minimum`` (or 0).
    """
    lo, hi, top = Fraction(lo), Fraction(hi), Fraction(1 << (width - 1))
    if lo == 0 and hi == 0:
        return 0 if minimum is None else minimum

    def fits(s):
        scale = Fraction(2) ** s
        return lo / scale >= -top and hi / scale < top

    s = 0
    while not fits(s):
        s += 1
    while fits(s - 1) and (minimum is None or s - 1 >= minimum):
        s -= 1
    return s if minimum is None else max(s, minimum)


def exact_shift(matrix, e, divisor):
    """The largest ``s`` at which ``(M x Mᵀ)[e] / divisor`` is an integer multiple of ``2^s``
    for every integer ``x``, or None (an odd factor of ``divisor`` that no coefficient cancels).

    A smaller shift only appends zero bits: :func:`winograd_shifts` never goes below it, so
    a wide enough domain is exact and no position carries constant zero LSBs.
    """
    n = len(matrix)
    row_i, row_j = matrix[e // n], matrix[e % n]
    k = 0
    for a in row_i:
        for b in row_j:
            k = gcd(k, abs(int(a) * int(b)))
    if k == 0:
        return None
    ratio = Fraction(k, divisor)
    q = ratio.denominator
    if q & (q - 1):
        return None
    p = ratio.numerator
    return (p & -p).bit_length() - 1 - (q.bit_length() - 1)


def round_half_up_shift(x, shift):
    """``⌊x / 2^shift + ½⌋`` for integer arrays or ints and ``shift ≥ 0`` (element-wise
    array of shifts allowed): add half an LSB, then shift right arithmetically."""
    x = np.asarray(x)
    shift = np.asarray(shift)
    half = np.where(shift > 0, np.left_shift(np.ones_like(x), np.maximum(shift - 1, 0)), 0)
    return np.right_shift(x + half, shift)


def round_half_up_div(num, den):
    """``⌊num / den + ½⌋`` for integers (``den > 0``), exactly."""
    return (2 * num + den) // (2 * den)


def _rounded(iv, shift):
    """The range of ``⌊x / 2^shift + ½⌋`` for ``x`` in ``iv`` (monotone; Python integers,
    so bounds of any width stay exact)."""
    half = 1 << (shift - 1) if shift > 0 else 0
    return Interval(*((int(v) + half) >> shift for v in (iv.lo, iv.hi)))


def winograd_shifts(hardware, data_width, weight_width, width, scales="global"):
    """Per-position shifts ``(sV, sU)`` of a Winograd domain of ``width`` bits.

    Parameters
    ----------
    hardware : HardwareTransforms
        Integer ``Aᵀ``, ``G``, ``Bᵀ`` and ``D`` (:meth:`ToomCook.hardware`, or user
        and base-changed transforms in the same form).
    data_width, weight_width : int
        Signed widths of ``d`` and ``g``.
    width : int
        ``W``, the width of ``V̂`` and ``Û``.
    scales : str
        ``"global"`` (the default, as ``TileConfig.wino_scales``) or ``"tapwise"``.

    Returns
    -------
    tuple of two tuples of int
        ``sV`` (each ≥ 0) and ``sU`` (any sign), row-major ``n²`` each: ``V̂ = V / 2^sV``
        and ``Û = (U / D²) / 2^sU``, rounded.
    """
    check_choice("scales", scales, SCALE_MODES)
    width = check_int("width", width, MIN_WINO_WIDTH)
    d2 = hardware.denominator ** 2
    v_ivs = transform_intervals(hardware.BT, signed_range(data_width), dims=2)
    u_ivs = transform_intervals(hardware.G, signed_range(weight_width), dims=2)
    sv = [scale_shift(iv.lo, iv.hi, width, minimum=exact_shift(hardware.BT, e, 1))
          for e, iv in enumerate(v_ivs)]
    su = [scale_shift(Fraction(iv.lo, d2), Fraction(iv.hi, d2), width,
                      minimum=exact_shift(hardware.G, e, d2))
          for e, iv in enumerate(u_ivs)]
    if scales == "global":
        sv, su = [max(sv)] * len(sv), [max(su)] * len(su)
    return tuple(sv), tuple(su)


@dataclass(frozen=True)
class WinogradQuantization:
    """The quantized Winograd domain of one tile engine: shifts, ranges and the arithmetic.

    Parameters
    ----------
    hardware : HardwareTransforms
    data_width, weight_width, width : int
    scales : str
        ``"global"`` or ``"tapwise"`` (shifts derived from the ranges: nothing saturates
        but a rounding carry), or ``"given"``.
    given : tuple, optional
        With ``"given"``: ``(sV, sU)`` (:func:`check_given_shifts`). Shifts below the
        derived ones let values pass ``W`` bits: ``V̂`` and ``Û`` then saturate at both
        ends, and the output range is the transform's.

    Members
    -------
    v_shifts, u_shifts : tuple of int
        ``sV_ij`` and ``sU_ij``, row-major.
    """
    hardware: object
    data_width: int
    weight_width: int
    width: int
    scales: str
    given: tuple = None

    @cached_property
    def _shifts(self):
        if self.scales == GIVEN:
            return check_given_shifts(self.given, len(self.hardware.BT))
        return winograd_shifts(self.hardware, self.data_width, self.weight_width, self.width,
                               self.scales)

    @property
    def bottom(self):
        """The smallest ``W``-bit value (the lower clamp of given shifts)."""
        return -(1 << (self.width - 1))

    @cached_property
    def clips(self):
        """Whether a value can pass ``W`` bits by more than a rounding carry (given shifts
        below the derived ones): then both ends saturate and no error bound holds."""
        return any(_rounded(iv, s).lo < self.bottom or _rounded(iv, s).hi > self.top + 1
                   for iv, s in zip(self.exact_v_intervals, self.v_shifts)) or any(
            self._quantize_u_value(iv.lo, s, clamp=False) < self.bottom
            or self._quantize_u_value(iv.hi, s, clamp=False) > self.top
            for iv, s in zip(self.exact_u_intervals, self.u_shifts))

    @property
    def v_shifts(self):
        return self._shifts[0]

    @property
    def u_shifts(self):
        return self._shifts[1]

    @property
    def divisor(self):
        """``D²``, folded into ``Û``."""
        return self.hardware.denominator ** 2

    @property
    def top(self):
        """The largest ``W``-bit value (the clamp)."""
        return (1 << (self.width - 1)) - 1

    @cached_property
    def exact_v_intervals(self):
        return transform_intervals(self.hardware.BT, signed_range(self.data_width), dims=2)

    @cached_property
    def exact_u_intervals(self):
        return transform_intervals(self.hardware.G, signed_range(self.weight_width), dims=2)

    @cached_property
    def v_saturates(self):
        """Per position: whether rounding can carry ``V̂`` past ``2^(W−1) − 1`` (a clamp)."""
        return tuple(_rounded(iv, s).hi > self.top
                     for iv, s in zip(self.exact_v_intervals, self.v_shifts))

    @cached_property
    def v_saturates_low(self):
        """Per position: whether ``V̂`` can pass ``−2^(W−1)`` (given shifts only)."""
        return tuple(_rounded(iv, s).lo < self.bottom
                     for iv, s in zip(self.exact_v_intervals, self.v_shifts))

    @cached_property
    def v_rounded_intervals(self):
        """Range of ``V + 2^(s−1)`` (before the shift: the rounding adder's width)."""
        return [iv + ((1 << (s - 1)) if s else 0)
                for iv, s in zip(self.exact_v_intervals, self.v_shifts)]

    @cached_property
    def vq_intervals(self):
        """Ranges of ``V̂`` (row-major; within ``W`` bits)."""
        out = []
        for iv, s in zip(self.exact_v_intervals, self.v_shifts):
            r = _rounded(iv, s)
            out.append(Interval(max(r.lo, self.bottom), min(r.hi, self.top)))
        return out

    def _quantize_u_value(self, u, s, clamp=True):
        num, den = u << max(-s, 0), self.divisor << max(s, 0)
        q = round_half_up_div(num, den)
        return min(max(q, self.bottom), self.top) if clamp else q

    @cached_property
    def uq_intervals(self):
        """Ranges of ``Û`` (row-major; within ``W`` bits)."""
        return [Interval(self._quantize_u_value(iv.lo, s), self._quantize_u_value(iv.hi, s))
                for iv, s in zip(self.exact_u_intervals, self.u_shifts)]

    @property
    def u_online_shifts(self):
        """``t_ij = 2·log2(D) + sU_ij``: the right shift (left when negative) from the integer
        ``U = G g Gᵀ`` to ``Û`` when ``D`` is a power of two (online filter transforms)."""
        d = self.hardware.denominator
        if d & (d - 1):
            raise ValueError(f"an online quantized filter transform needs a power-of-two D, "
                             f"not D = {d}")
        return tuple(2 * (d.bit_length() - 1) + s for s in self.u_shifts)

    @property
    def exponents(self):
        """``e_ij = sV_ij + sU_ij``: the scale ``2^e_ij`` of product ``M_ij``."""
        return tuple(v + u for v, u in zip(self.v_shifts, self.u_shifts))

    @property
    def output_exponent(self):
        """``min e``: the common scale of the aligned products and of ``Z``."""
        return min(self.exponents)

    @property
    def align_shifts(self):
        """``a_ij = e_ij − min e``: left shifts bringing each product to the common scale."""
        return tuple(e - self.output_exponent for e in self.exponents)

    @property
    def output_shift(self):
        """Right shift (round half up) from ``Z`` to the output; 0 when ``min e ≥ 0``."""
        return max(-self.output_exponent, 0)

    def product_intervals(self, combine):
        """Ranges of ``M = pe(V̂, Û)`` for the PE kind's ``combine`` interval rule."""
        return [combine(v, u) for v, u in zip(self.vq_intervals, self.uq_intervals)]

    def aligned_intervals(self, products):
        return [iv.shift_left(a) for iv, a in zip(products, self.align_shifts)]

    def transformed_intervals(self, products):
        """Ranges of ``Z = Aᵀ (M ≪ a) A`` for product ranges ``products``."""
        return transform2d_intervals(self.hardware.AT, self.aligned_intervals(products))

    def output_of(self, iv):
        """The range of the output for ``Z`` in ``iv``."""
        if self.output_exponent >= 0:
            return iv.shift_left(self.output_exponent)
        return _rounded(iv, self.output_shift)

    @cached_property
    def error_intervals(self):
        """Per position, the range of ``V̂ 2^sV · Û 2^sU − V · U / D²`` (exact rationals).

        Rounding half up moves a value by ``(−½, ½]`` LSB; the clamp (a value in
        ``[top + ½, top + 1)``) by ``(−1, −½]``: each operand's error lies in
        ``(−1, ½] · 2^s``, and the product's in ``V·eU + u·eV + eV·eU``.
        """
        half, one = Fraction(1, 2), Fraction(1)
        out = []
        for v, u, sv, su in zip(self.exact_v_intervals, self.exact_u_intervals,
                                self.v_shifts, self.u_shifts):
            ev = Interval(0, 0) if sv == 0 else Interval(-one * 2 ** sv, half * 2 ** sv)
            eu = Interval(-one * Fraction(2) ** su, half * Fraction(2) ** su)
            ur = Interval(Fraction(u.lo, self.divisor), Fraction(u.hi, self.divisor))
            out.append(v * eu + ur * ev + ev * eu)
        return out

    def output_bound(self, exact, channels=1):
        """A range of the output from the exact result's range ``exact`` (the correlation
        summed over ``channels`` channels) and the quantization error: ``Y = ⌊Y_exact +
        Aᵀ E A + ½⌋`` with ``E`` the products' errors (:attr:`error_intervals`) summed over
        the channels. Often far narrower than the transform's range of ``Z``. None when
        values saturate (:attr:`clips`): the error is then not bounded by rounding."""
        if self.clips:
            return None
        err = transform2d_intervals(self.hardware.AT,
                                    [e.hull(0).times(channels) for e in self.error_intervals])
        lo = min(e.lo for e in err) + exact.lo
        hi = max(e.hi for e in err) + exact.hi
        return Interval(math.floor(lo + Fraction(1, 2)), math.floor(hi + Fraction(1, 2)))

    # -- the arithmetic (NumPy integer arrays, trailing n × n) ------------------------------

    def _per_position(self, values):
        n = len(self.hardware.BT)
        return np.array(values, dtype=np.int64).reshape(n, n)

    def quantize_v(self, v):
        """``V̂`` of ``V`` (..., n, n): round half up by ``sV``, clamp to ``W`` bits."""
        q = round_half_up_shift(v, self._per_position(self.v_shifts))
        return np.clip(q, self.bottom, self.top)

    def quantize_u(self, u):
        """``Û`` of the integer ``U = G g Gᵀ`` (..., n, n), exactly (Python integers)."""
        u = np.asarray(u)
        shifts = np.broadcast_to(self._per_position(self.u_shifts), u.shape)
        out = np.empty(u.shape, dtype=object)
        for idx in np.ndindex(u.shape):
            out[idx] = self._quantize_u_value(int(u[idx]), int(shifts[idx]))
        return out

    def align(self, p):
        """``M ≪ a`` for products ``p`` (..., n, n)."""
        return np.left_shift(p, self._per_position(self.align_shifts))

    def descale(self, z):
        """The output of ``Z`` (..., m, m): ``⌊Z / 2^−min e + ½⌋`` or ``Z ≪ min e``."""
        if self.output_exponent >= 0:
            return np.left_shift(z, self.output_exponent)
        return round_half_up_shift(z, self.output_shift)

    def to_json(self):
        """The shifts and what the engine computes, for the manifest."""
        n = len(self.hardware.BT)

        def grid(values):
            return [list(values[i * n:(i + 1) * n]) for i in range(n)]
        return {
            "width": self.width, "scales": self.scales,
            "rounding": "half_up",
            "v_shifts": grid(self.v_shifts), "u_shifts": grid(self.u_shifts),
            "v_saturates": grid([bool(s) for s in self.v_saturates]),
            "v_saturates_low": grid([bool(s) for s in self.v_saturates_low]),
            "align_shifts": grid(self.align_shifts),
            "output_exponent": self.output_exponent,
            "u_divisor": self.divisor,
            "function": (
                "V = B^T d B; Vq[i][j] = clamp(floor((V[i][j] + 2^(sV[i][j]-1)) / 2^sV[i][j]), "
                "-2^(W-1), 2^(W-1)-1) (V[i][j] itself when sV[i][j] = 0); weights carry "
                "Uq[i][j] = clamp(floor(U[i][j] / (u_divisor * 2^sU[i][j]) + 1/2), -2^(W-1), "
                "2^(W-1)-1) with "
                "U = G g G^T; M = Vq * Uq; Z = A^T (M << align_shifts) A; "
                "Y = floor(Z / 2^-output_exponent + 1/2) (Z << output_exponent when it is "
                ">= 0)"),
        }
