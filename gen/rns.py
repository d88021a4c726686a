"""Residue number system (RNS) arithmetic for exact large-tile Winograd.

After Liu & Mattina, "Efficient Residue Number System Based Winograd
Convolution" (ECCV 2020). Large tiles such as F(10,3) or F(14,3) are useless in
floating point and need very wide integers in binary, because their transforms
grow quickly. In an RNS with pairwise coprime moduli ``m_1 … m_k`` an integer
``x`` is carried as its residues ``x mod m_i``; additions and multiplications
run independently and narrowly per modulus, and the Chinese remainder theorem
(CRT) recovers ``x`` uniquely within the dynamic range of ``M = Π m_i``.

Conventions
-----------
* The dynamic range is signed: ``[-⌊M/2⌋, ⌈M/2⌉ - 1]``. A negative ``x`` is
  represented by ``x mod M`` (``M + x``), so residues are always in ``[0, m_i)``.
* Reduction mod ``m_i`` is a ring homomorphism, so intermediate values may
  wrap freely: only the *final* value must lie in the dynamic range. That is
  why :func:`required_range` bounds the result, not the transform stages.
* Residue arrays put the modulus axis first: shape ``(k,) + x.shape``.

Two ways to map a Winograd algorithm into the residue rings (``method``):

``"scaled"``
    The integer matrices of :meth:`ToomCook.hardware` reduced mod each
    modulus. The RNS then computes ``D² Y`` (``D`` per dimension), which is
    reverse converted and divided by ``D²`` exactly. Works with any moduli
    (powers of two and ``2ᵏ ± 1`` included) but ``D²`` widens the range.
``"inverse"``
    Each rational entry ``a/b`` becomes ``a · b⁻¹ mod m_i``. The RNS computes
    ``Y`` itself, so the range is the plain correlation range, but every
    denominator must be invertible mod every modulus (odd moduli without the
    small primes of the points: no ``2ᵏ``, no ``255 = 3·5·17``).
"""

from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from fractions import Fraction
from math import gcd, lcm, prod
import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .bounds import Interval, signed_range, signed_width, transform2d_intervals, transform_intervals
from .models import (_check_layer, _check_padding, _check_tiles, _check_toomcook,
                     _is_integer_array, _output_shape, _pad_spatial, _python_ints)
from .toomcook import FRACTION_PLACEMENTS

__all__ = ["ModuliSet", "MODULI_PRESETS", "moduli_preset", "is_special", "METHODS", "BOUNDS",
           "to_residues", "from_residues_crt", "from_residues_mrc", "mixed_radix_digits",
           "check_range", "required_range", "result_range", "RNSTransforms", "rns_transforms",
           "rns_winograd_tile", "rns_winograd_conv2d", "residue_width", "residue_port_interval",
           "residue_constant", "FoldStep", "ReductionPlan", "plan_reduction", "RNS_METHODS",
           "RNSTileConfig", "RNSTileModel", "AUTO_WIDTHS", "auto_moduli_width", "reduction_cost",
           "auto_moduli_candidates", "select_moduli", "FORWARD_REDUCTIONS",
           "PARTIAL_OPERAND_WIDTH", "converter_levels"]

#: Ways of mapping a Toom-Cook algorithm into the residue rings.
METHODS = ("scaled", "inverse")

#: How :func:`required_range` bounds the scaled result.
BOUNDS = ("exact", "transform")

_INT64_MAX = int(np.iinfo(np.int64).max)
# Integers below 2**53 are exact in float64, and so is a GEMM whose partial
# sums stay below it: the channel sums can use BLAS, bit for bit the same.
_FLOAT64_EXACT_INT = 2 ** 53

#: Named moduli sets. "special-k" are the {2ᵏ-1, 2ᵏ, 2ᵏ+1} sets of cheap
#: end-around-carry hardware; "8bit-*"/"16bit-*" are the largest pairwise
#: coprime moduli of that width; "*-primes-*" are odd primes, coprime to
#: every denominator of F(m, r) up to n = 16 (largest prime factor 17), so
#: they also serve method "inverse". "8bit-primes-4" takes the four 8-bit
#: primes p whose fold constant 2⁸ mod p (5, 15, 17, 33) has two CSD digits:
#: their reductions are the cheapest of any 8-bit prime (233's 23 needs three
#: and, in Yosys synth_ecp5, 2.7× the LUTs per modular multiplier).
MODULI_PRESETS = {
    "special-8": (255, 256, 257),
    "8bit-4": (251, 253, 255, 256),
    "8bit-8": (256, 255, 253, 251, 247, 241, 239, 233),
    "8bit-primes-4": (251, 241, 239, 223),
    "8bit-primes-8": (251, 241, 239, 233, 229, 227, 223, 211),
    "special-16": (65535, 65536, 65537),
    "16bit-8": (65536, 65535, 65533, 65531, 65527, 65521, 65519, 65509),
}


def is_special(m):
    """Whether ``m`` is ``2ᵏ - 1``, ``2ᵏ`` or ``2ᵏ + 1`` (k ≥ 1): adders with end-around carry."""
    if not isinstance(m, numbers.Integral) or isinstance(m, bool) or m < 2:
        return False
    m = int(m)
    return any(x > 0 and x & (x - 1) == 0 for x in (m - 1, m, m + 1))


def _check_modulus(m):
    if not isinstance(m, numbers.Integral) or isinstance(m, bool) or m < 2:
        raise ValueError(f"moduli must be integers of at least 2, not {m!r}")
    return int(m)


class ModuliSet:
    """A validated set of pairwise coprime moduli.

    Parameters
    ----------
    moduli : sequence of int
        At least one integer ≥ 2, pairwise coprime; the order is kept (it is
        the digit order of the mixed-radix conversion).

    Members
    -------
    moduli : tuple of int
    product : int
        ``M``, the number of distinct representable values.
    dynamic_range : Interval
        ``[-⌊M/2⌋, ⌈M/2⌉ - 1]``.
    bits : int
        The widest two's complement width the dynamic range holds: ``⌊log2 M⌋``.
    """

    def __init__(self, moduli):
        if isinstance(moduli, ModuliSet):
            moduli = moduli.moduli
        if isinstance(moduli, (str, bytes)) or not hasattr(moduli, "__iter__"):
            raise ValueError(f"moduli must be a sequence of integers, not {moduli!r}")
        mods = tuple(_check_modulus(m) for m in moduli)
        if not mods:
            raise ValueError("moduli must hold at least one modulus, not an empty set")
        for i, a in enumerate(mods):
            for b in mods[i + 1:]:
                g = gcd(a, b)
                if g != 1:
                    raise ValueError(f"moduli must be pairwise coprime, not {a} and {b} (gcd {g})")
        self.moduli = mods
        self.product = prod(mods)
        M = self.product
        self.dynamic_range = Interval(-(M // 2), (M + 1) // 2 - 1)
        self.bits = M.bit_length() - 1
        # CRT weights: M_i = M / m_i and c_i = M_i⁻¹ mod m_i.
        self._crt = tuple((M // m, pow(M // m, -1, m)) for m in mods)
        # Mixed radix: inv[i][j] = m_j⁻¹ mod m_i for j < i.
        self._mrc_inv = tuple(tuple(pow(mods[j], -1, mods[i]) for j in range(i))
                              for i in range(len(mods)))

    is_special = staticmethod(is_special)

    @property
    def special(self):
        """Per modulus, whether it is of the cheap form ``2ᵏ - 1``, ``2ᵏ``, ``2ᵏ + 1``."""
        return tuple(is_special(m) for m in self.moduli)

    def covers(self, interval):
        """Whether every value of ``interval`` is representable."""
        iv = _as_interval(interval)
        return self.dynamic_range.lo <= iv.lo and iv.hi <= self.dynamic_range.hi

    def __iter__(self):
        return iter(self.moduli)

    def __len__(self):
        return len(self.moduli)

    def __getitem__(self, i):
        return self.moduli[i]

    def __eq__(self, other):
        return isinstance(other, ModuliSet) and other.moduli == self.moduli

    def __hash__(self):
        return hash(self.moduli)

    def __repr__(self):
        return f"ModuliSet({list(self.moduli)})"


def moduli_preset(name):
    """The :class:`ModuliSet` of a name in :data:`MODULI_PRESETS`."""
    if not isinstance(name, str) or name not in MODULI_PRESETS:
        raise ValueError(f"moduli preset must be one of {', '.join(MODULI_PRESETS)}, "
                         f"or auto[-BITS], not {name!r}")
    return ModuliSet(MODULI_PRESETS[name])


# --------------------------------------------------------------------------
# Automatic choice of moduli
# --------------------------------------------------------------------------

#: Residue widths ``auto-BITS`` may ask for: from 6 bits (primes 37 … 61) to 16.
AUTO_WIDTHS = range(6, 17)

#: Primes up to this bound divide a denominator of some F(m, r) with n ≤ 16; the automatic
#: choice uses larger primes only, so method "inverse" always applies.
_DENOMINATOR_PRIMES = 17


def auto_moduli_width(value):
    """The residue width of ``"auto"`` (8) or ``"auto-BITS"``; ``None`` for anything else.

    Raises ``ValueError`` for ``"auto-BITS"`` with ``BITS`` outside :data:`AUTO_WIDTHS`.
    """
    if not isinstance(value, str) or not (value == "auto" or value.startswith("auto-")):
        return None
    text = value[5:] or "8"
    if not text.isdigit() or int(text) not in AUTO_WIDTHS:
        raise ValueError(f"moduli 'auto-BITS' takes BITS from {AUTO_WIDTHS.start} to "
                         f"{AUTO_WIDTHS.stop - 1}, not {value!r}")
    return int(text)


def _is_prime(p):
    return p >= 2 and all(p % q for q in range(2, int(p ** 0.5) + 1))


def reduction_cost(m, width=None):
    """Shift-add cost of reducing a product of two residue-port values modulo ``m``.

    The CSD digits of every fold constant of :func:`plan_reduction` plus its final
    comparisons: 5 for 251 (two folds by 5 = 4 + 1, one comparison), 10 for 233 (three
    folds by 23 = 32 - 8 - 1, one comparison). This is the hardware's own plan, so it
    ranks moduli as the synthesized PEs do (``synth_ecp5``: 34 LUT4 for 251, 139 for 233).
    """
    w = residue_width(m) if width is None else width
    plan = plan_reduction(Interval(0, ((1 << w) - 1) ** 2), m)
    return sum(_csd_weight(f.c) for f in plan.folds if f.c) + plan.comparisons


def auto_moduli_candidates(width=8):
    """The ``width``-bit primes above 17, cheapest :func:`reduction_cost` first (then larger)."""
    primes = [p for p in range((1 << (width - 1)) + 1, 1 << width)
              if p > _DENOMINATOR_PRIMES and _is_prime(p)]
    return sorted(primes, key=lambda p: (reduction_cost(p, width), -p))


def _detects_single_faults(moduli, size):
    total = prod(moduli)
    return all(total // mi >= size for mi in moduli)


def select_moduli(interval, width=8, redundant_moduli=0):
    """The cheapest ``width``-bit prime moduli whose product covers ``interval``.

    Fewest moduli first (each costs a whole residue channel), then the lowest total
    :func:`reduction_cost`, then the largest product; the primes exceed 17, so every
    Toom-Cook denominator up to n = 16 is invertible. ``redundant_moduli`` more (the
    cheapest left) are appended so that any single-channel fault is detected.

    Returns a tuple of moduli, the redundant ones last; raises ``ValueError`` when the
    ``width``-bit primes cannot cover ``interval``.
    """
    iv = _as_interval(interval)
    cands = auto_moduli_candidates(width)
    cost = {p: reduction_cost(p, width) for p in cands}
    largest = sorted(cands, reverse=True)
    need = 1
    while need <= len(cands) and not ModuliSet(largest[:need]).covers(iv):
        need += 1
    if need > len(cands):
        raise ValueError(f"moduli 'auto-{width}' cannot cover the result range [{iv.lo}, {iv.hi}]: "
                         f"all {len(cands)} {width}-bit primes above 17 hold "
                         f"{ModuliSet(cands).bits} bits; use wider moduli")
    pool = cands[:need + 6]                  # enough cheap primes to choose from
    best = None
    for combo in combinations(pool, need):
        if ModuliSet(combo).covers(iv):
            key = (sum(cost[p] for p in combo), -prod(combo))
            if best is None or key < best[0]:
                best = (key, combo)
    if best is None:                          # only the largest primes cover
        base = tuple(largest[:need])
    else:
        base = tuple(sorted(best[1], reverse=True))
    chosen = list(base)
    size = iv.hi - iv.lo + 1
    for _ in range(redundant_moduli):
        extra = next((p for p in cands if p not in chosen
                      and _detects_single_faults(chosen + [p], size)), None)
        if extra is None:
            raise ValueError(f"moduli 'auto-{width}' has no {width}-bit prime left that makes "
                             f"{chosen} detect every single-channel fault; use wider moduli")
        chosen.append(extra)
    return tuple(chosen)


def _as_moduli(moduli):
    """A :class:`ModuliSet` from a set, a sequence of ints or a preset name."""
    if isinstance(moduli, ModuliSet):
        return moduli
    if isinstance(moduli, str):
        return moduli_preset(moduli)
    return ModuliSet(moduli)


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


# --------------------------------------------------------------------------
# Forward and reverse conversion
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Ranges
# --------------------------------------------------------------------------

def _need(iv):
    """The smallest ``M`` whose signed dynamic range holds ``iv``."""
    return max(2 * max(-iv.lo, 0), 2 * max(iv.hi, 0) + 1, 1)


def check_range(moduli, interval):
    """Refuse a moduli set whose dynamic range does not cover ``interval``.

    Parameters
    ----------
    moduli : ModuliSet, sequence of int or preset name
    interval : Interval or (lo, hi)
        The values that must be representable (see :func:`required_range`).

    Returns
    -------
    ModuliSet
        The validated set.

    Raises
    ------
    ValueError
        When ``M`` is too small, naming both ranges.
    """
    ms = _as_moduli(moduli)
    iv = _as_interval(interval)
    if not ms.covers(iv):
        need = _need(iv)
        raise ValueError(f"moduli product {ms.product} must cover the result range "
                         f"[{iv.lo}, {iv.hi}] (needs ≥ {need}, {(need - 1).bit_length()} bits), "
                         f"not {ms.product} ({ms.bits} bits, moduli {list(ms.moduli)})")
    return ms


def result_range(tc, data_interval, weight_interval, channels=1, method="scaled",
                 bound="exact"):
    """Range of the value the RNS must represent, for given operand ranges.

    Parameters
    ----------
    tc : ToomCook
    data_interval, weight_interval : Interval
        Ranges of the activations and weights.
    channels : int
        Input channels summed in the Winograd domain before reverse conversion.
    method : str
        ``"scaled"``: the result carries ``D²``; ``"inverse"``: it is ``Y``.
    bound : str
        ``"exact"`` (default): the tight range of the final value, ``D²`` (or
        1) times the correlation range ``channels · r² · [d]·[g]``. Enough,
        because only the final value must not wrap. ``"transform"``: the
        interval bound of ``Aᵀ[Σ (G g Gᵀ) ⊙ (Bᵀ d B)]A`` stage by stage
        (:func:`~winogen.gen.bounds.transform2d_intervals`), what a binary
        datapath of the scaled result would need; never smaller. Method
        ``"inverse"`` has no integer stages and always uses ``"exact"``.

    Returns
    -------
    Interval
    """
    tc = _check_toomcook(tc)
    method = _check_method(method)
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {', '.join(BOUNDS)}, not {bound!r}")
    if not isinstance(channels, numbers.Integral) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"channels must be a positive integer, not {channels!r}")
    d_iv, w_iv = _as_interval(data_interval), _as_interval(weight_interval)
    hw = tc.hardware()
    if method == "scaled" and bound == "transform":
        # Operand intervals must contain 0 for the row-norm bounds of bounds.py.
        d_iv, w_iv = d_iv.hull(0), w_iv.hull(0)
        u = transform_intervals(hw.G, w_iv, dims=2)
        v = transform_intervals(hw.BT, d_iv, dims=2)
        out = transform2d_intervals(hw.AT, [(a * b).times(channels) for a, b in zip(u, v)])
        return Interval(min(iv.lo for iv in out), max(iv.hi for iv in out))
    y = (d_iv * w_iv).times(tc.r * tc.r * channels)
    return y.scale(hw.scale_divisor(2)) if method == "scaled" else y


def required_range(tc, data_width, weight_width, channels=1, method="scaled", bound="exact"):
    """Range the moduli must cover for ``data_width``/``weight_width``-bit signed operands.

    :func:`result_range` for the full two's complement ranges; pass the
    result to :func:`check_range`. ``required_range(...).width`` is the range
    in bits.
    """
    return result_range(tc, signed_range(data_width), signed_range(weight_width), channels,
                        method, bound)


# --------------------------------------------------------------------------
# Modular transforms
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Golden models
# --------------------------------------------------------------------------

def rns_winograd_tile(d, g, tc, moduli, method="scaled"):
    """Bit-exact RNS F(m × m, r × r) on a batch of tiles.

    Forward conversion of ``d`` and ``g``, per modulus ``V = Bᵀ d B``,
    ``U = G g Gᵀ``, ``U ⊙ V`` and ``Aᵀ (U ⊙ V) A`` all mod ``m_i``, then CRT
    and (``"scaled"``) the exact division by ``D²``.

    Parameters
    ----------
    d : array_like of int, shape (..., n, n)
    g : array_like of int, shape (..., r, r)
        Leading axes broadcast against ``d``'s.
    tc : ToomCook
    moduli : ModuliSet, sequence of int or preset name
    method : str
        ``"scaled"`` or ``"inverse"`` (see :func:`rns_transforms`).

    Returns
    -------
    numpy.ndarray, shape (..., m, m)
        The valid correlation of each tile, int64 (object past int64).

    Raises
    ------
    ValueError
        When the moduli do not cover :func:`result_range` for the actual
        operand ranges (the result could wrap), or ``"inverse"`` cannot apply.
    """
    tc = _check_toomcook(tc)
    ms = _as_moduli(moduli)
    d, g = _integer_array("d", d), _integer_array("g", g)
    _check_tiles(d, g, tc)
    tr = rns_transforms(tc, ms, method)
    check_range(ms, result_range(tc, _operand_interval(d), _operand_interval(g), 1, method))
    AT, G, BT = tr.stacked()
    V = _mod_transform2d(BT, to_residues(d, ms, check=False), ms)
    U = _mod_transform2d(G, to_residues(g, ms, check=False), ms)
    # Broadcast the tile axes of d and g behind the leading modulus axis.
    nd = max(U.ndim, V.ndim)
    U = U.reshape(U.shape[:1] + (1,) * (nd - U.ndim) + U.shape[1:])
    V = V.reshape(V.shape[:1] + (1,) * (nd - V.ndim) + V.shape[1:])
    P = U * V % _column(ms.moduli, nd, AT.dtype)
    y = from_residues_crt(_mod_transform2d(AT, P, ms), ms)
    return _finish(_divide_exact(np.asarray(y), tr.scale_divisor(2)))


def rns_winograd_conv2d(x, w, tc, moduli, padding=0, *, method="scaled"):
    """Bit-exact RNS Winograd convolution (correlation) of a whole layer.

    Same tiling and layout as :func:`winogen.gen.models.winograd_conv2d`
    (NCHW, stride 1, zero padding, last tiles completed with zeros). Per
    modulus the products are summed over input channels in the Winograd
    domain, ``M_i[o] = Σ_c U_i[o, c] ⊙ V_i[c] mod m_i``, so one reverse
    conversion serves all channels.

    Parameters
    ----------
    x : array_like of int, shape (N, C_in, H, W) or (C_in, H, W)
    w : array_like of int, shape (C_out, C_in, r, r)
    tc : ToomCook
    moduli : ModuliSet, sequence of int or preset name
    padding : int
    method : str
        ``"scaled"`` or ``"inverse"``.

    Returns
    -------
    numpy.ndarray, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        int64 (object past int64), equal to the direct correlation.

    Raises
    ------
    ValueError
        When the moduli do not cover :func:`result_range` for the actual
        operand ranges and ``C_in`` channels.
    """
    tc = _check_toomcook(tc)
    ms = _as_moduli(moduli)
    xb, w, batched = _check_layer(x, w, 2)
    padding = _check_padding(padding)
    xb, w = _integer_array("x", xb), _integer_array("w", w)
    if w.shape[2:] != (tc.r, tc.r):
        raise ValueError(f"w must hold {tc.r}×{tc.r} kernels for {tc.name}, not shape {w.shape}")
    m, r, n, k = tc.m, tc.r, tc.n, len(ms)
    out_shape = _output_shape(xb.shape[2:], w.shape[2:], padding)
    batch, c_in, c_out = xb.shape[0], xb.shape[1], w.shape[0]
    tr = rns_transforms(tc, ms, method)
    check_range(ms, result_range(tc, _operand_interval(xb), _operand_interval(w), c_in, method))
    AT, G, BT = tr.stacked()

    # Residues first: padding zeros are residue zeros, and tiles stay narrow.
    rx = to_residues(xb, ms, check=False)                    # (k, N, C, H, W)
    tiles_per_axis = [-(-size // m) for size in out_shape]
    widths = [(padding, t * m + r - 1 - size - padding)
              for t, size in zip(tiles_per_axis, xb.shape[2:])]
    rx = _pad_spatial(rx, widths)
    tiles = sliding_window_view(rx, (n, n), axis=(-2, -1))[..., ::m, ::m, :, :]
    V = _mod_transform2d(BT, tiles, ms)                      # (k, N, C, T1, T2, n, n)
    U = _mod_transform2d(G, to_residues(w, ms, check=False), ms)  # (k, O, C, n, n)

    P, n_tiles = n * n, int(np.prod(tiles_per_axis))
    U = U.reshape(k, c_out, c_in, P).transpose(0, 3, 1, 2)   # (k, P, O, C)
    V = V.reshape(k, batch, c_in, n_tiles, P).transpose(0, 4, 2, 1, 3).reshape(k, P, c_in, -1)
    mods = _column(ms.moduli, 4, AT.dtype)
    top = (max(ms.moduli) - 1) ** 2 * c_in
    if top < _FLOAT64_EXACT_INT:
        # Every partial sum is an integer below 2**53: float64 BLAS is exact.
        Mw = np.matmul(U.astype(np.float64), V.astype(np.float64)).astype(np.int64) % mods
    else:
        if U.dtype != object and not _fits_int64(top):
            U, V, mods = _python_ints(U), _python_ints(V), mods.astype(object)
        Mw = np.matmul(U, V) % mods                          # (k, P, O, N·T)
    Mw = Mw.reshape((k, n, n, c_out, batch) + tuple(tiles_per_axis))
    Mw = Mw.transpose(0, 4, 3, 5, 6, 1, 2)                   # (k, N, O, T1, T2, n, n)
    if Mw.dtype != AT.dtype:
        Mw = _python_ints(Mw) if AT.dtype == object else Mw.astype(AT.dtype)
    Y = from_residues_crt(_mod_transform2d(AT, Mw, ms), ms)  # (N, O, T1, T2, m, m)
    Y = _divide_exact(Y, tr.scale_divisor(2))
    Y = Y.transpose(0, 1, 2, 4, 3, 5).reshape((batch, c_out) + tuple(t * m for t in tiles_per_axis))
    Y = _finish(Y[:, :, :out_shape[0], :out_shape[1]].copy())
    return Y if batched else Y[0]


# --------------------------------------------------------------------------
# Hardware plans: modular reduction and residue constants
# --------------------------------------------------------------------------

def residue_width(m):
    """Bits of an unsigned residue modulo ``m``: ``(m - 1).bit_length()`` (at least 1)."""
    return max((int(m) - 1).bit_length(), 1)


def residue_port_interval(m):
    """Range of a residue port modulo ``m``: every value its ``residue_width`` bits can hold.

    Hardware blocks accept any value of the port (not only ``[0, m)``) and
    reduce it exactly, so a corrupted residue is still some residue of the
    same channel: a fault stays confined to its channel.
    """
    return Interval(0, (1 << residue_width(m)) - 1)


def _csd_weight(k):
    from .csd import csd_digits
    return len(csd_digits(k))


def residue_constant(value, m):
    """The cheapest integer congruent to ``value`` mod ``m`` for shift-add hardware.

    Among ``value mod m`` and ``value mod m - m``: fewest nonzero CSD digits,
    then the smaller magnitude.
    """
    v = int(value) % m
    return min((v, v - m), key=lambda c: (_csd_weight(c), abs(c)))


@dataclass(frozen=True)
class FoldStep:
    """``x = h·2ᵏ + l`` (``l`` the low ``k`` bits) becomes ``l + c·h``, congruent mod ``m``.

    Members
    -------
    k : int
    c : int
        ``2ᵏ mod m``, as a cheap signed representative.
    input, high, output : Interval
        Ranges of ``x``, of ``h = x >> k`` and of ``l + c·h``.
    """
    k: int
    c: int
    input: Interval
    high: Interval
    output: Interval


@dataclass(frozen=True)
class ReductionPlan:
    """Exact reduction of an integer in ``input`` to ``[0, m)``, without division.

    Folds (:class:`FoldStep`) shrink the range with shift-adds: for special
    moduli they cost nothing or one adder (``2ᵏ``: ``c = 0``, keep the low
    bits; ``2ᵏ - 1``: ``c = 1``, end-around carry; ``2ᵏ + 1``: ``c = -1``);
    for a generic ``m = 2ᵏ - c`` with small ``c`` a few shift-adds. Then the
    result is ``x - j·m`` for the one ``j`` in ``[j_lo, j_hi]`` that lands in
    ``[0, m)``: ``j_hi - j_lo`` constant comparisons.
    """
    modulus: int
    input: Interval
    folds: tuple
    final: Interval
    j_lo: int
    j_hi: int

    @property
    def width(self):
        return residue_width(self.modulus)

    @property
    def comparisons(self):
        return self.j_hi - self.j_lo

    def partial(self, width):
        """The first folds that bring the value within ``width`` signed bits.

        Returns ``(folds, interval)``: a prefix of :attr:`folds` and the range of the
        (congruent, not yet canonical) value after it. Raises ``ValueError`` when
        even every fold leaves a wider value.
        """
        current, taken = self.input, []
        for fold in self.folds:
            if signed_width(current) <= width:
                break
            taken.append(fold)
            current = fold.output
        if signed_width(current) > width:
            raise ValueError(f"width must hold the folded value {current} modulo {self.modulus}, "
                             f"not {width}")
        return tuple(taken), current

    def evaluate(self, x):
        """The plan executed on Python ints, as hardware does (for tests)."""
        x = int(x)
        if x not in self.input:
            raise ValueError(f"x must lie in {self.input}, not {x}")
        for f in self.folds:
            x = (x & ((1 << f.k) - 1)) + f.c * (x >> f.k)
        j = self.j_lo
        for t in range(self.j_lo + 1, self.j_hi + 1):
            if x >= t * self.modulus:
                j = t
        return x - j * self.modulus


def _fold_choices(m):
    """(k, c) fold options for ``m``: ``2ᵏ ≡ c`` with k near the width of ``m``."""
    bl = m.bit_length()
    out = []
    for k in (bl - 1, bl):
        if k >= 1:
            out.append((k, residue_constant(1 << k, m)))
    return out


def _candidates(iv, m):
    return iv.hi // m - iv.lo // m + 1


def plan_reduction(interval, m):
    """A :class:`ReductionPlan` for values in ``interval`` modulo ``m``.

    Parameters
    ----------
    interval : Interval
        Range of the value to reduce (any sign).
    m : int
        Modulus, at least 2.
    """
    m = _check_modulus(m)
    iv = _as_interval(interval)
    folds = []
    current = iv
    for _ in range(64):
        if _candidates(current, m) <= 2:
            break
        best = None
        for k, c in _fold_choices(m):
            high = Interval(current.lo >> k, current.hi >> k)
            out = Interval(0, (1 << k) - 1) + high.scale(c)
            cost = (_candidates(out, m), _csd_weight(c), k)
            if best is None or cost < best[0]:
                best = (cost, FoldStep(k, c, current, high, out))
        step = best[1]
        if _candidates(step.output, m) >= _candidates(current, m):
            break
        folds.append(step)
        current = step.output
    return ReductionPlan(m, iv, tuple(folds), current, current.lo // m, current.hi // m)


# --------------------------------------------------------------------------
# RNS tile engine configuration
# --------------------------------------------------------------------------

RNS_METHODS = ("auto",) + METHODS

#: How the binary ``V`` enters each residue channel (``RNSTileConfig.forward_reduction``).
FORWARD_REDUCTIONS = ("full", "partial")

#: Signed operand width of a partially reduced ``V``: the 18-bit DSP multiplier port
#: (ECP5 MULT18X18D, Xilinx DSP48 B), so a wider operand still takes one DSP block.
PARTIAL_OPERAND_WIDTH = 18


def converter_levels(moduli_count):
    """Register levels of the mixed-radix reverse converter for ``moduli_count`` moduli.

    Digit ``j >= 1`` is two levels, its constant linear form and its reduction; digit
    0 (a conditional subtraction) shares a level with digit 1's form; then the
    weighted sum is one level and the sign with the redundant check another: ``2k``.
    (With one modulus, digit 0 and the trivial weighted sum are the first level.)
    ``convert_stages`` registers at most one per level; the default is one per level.
    """
    return 2 * moduli_count


def _check_count(name, value, lo, hi=None):
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        accepted = f"an integer from {lo} to {hi}" if hi is not None else (
            "a positive integer" if lo == 1 else f"an integer of at least {lo}")
        raise ValueError(f"{name} must be {accepted}, not {value!r}")
    return int(value)


def _inverse_ok(tc, ms):
    try:
        rns_transforms(tc, ms, "inverse")
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class RNSTileConfig:
    """An RNS Winograd tile engine: the one object behind its model, hardware, manifest and tests.

    Every residue channel (one per modulus) computes ``V = Bᵀ d B``,
    ``P = U ⊙ V`` (modular multipliers), optionally ``Σ_c P_c`` over
    ``channels`` input channels, and ``Aᵀ P A``, all mod its modulus; a
    mixed-radix converter turns the residues back into signed binary, and
    method ``"scaled"`` divides the known scale ``D²`` out exactly.

    Parameters
    ----------
    m, r : int
        Output tile and filter size; ``n = m + r - 1 <= 16``.
    data_width, weight_width : int
        Signed widths of activations and weights, 2 to 16.
    moduli : str or sequence of int
        A preset name of :data:`MODULI_PRESETS`, pairwise coprime moduli, or
        ``"auto"`` / ``"auto-BITS"``: the fewest, cheapest 8-bit (``BITS``-bit)
        primes that cover this engine's result range, plus the redundant ones
        (:func:`select_moduli`); the resolved tuple is stored. The last
        ``redundant_moduli`` of them are redundant.
    method : str
        ``"scaled"``, ``"inverse"`` (see :func:`rns_transforms`) or
        ``"auto"``: ``"inverse"`` when every denominator is invertible
        modulo every modulus (the smaller range), else ``"scaled"``.
    redundant_moduli : int
        0 or 1. With 1, the engine checks each output tile: the value
        reconstructed from all moduli must lie in the exact result range
        (the redundant digit agrees with the reduced-set value), else the
        ``error`` flag rises. Any fault confined to one residue channel is
        then detected, and a tile without the flag is exact.
    channels : int
        Input channels accumulated (mod each modulus, in the Winograd domain)
        per output tile, 1 to 4096 (the tile engine holds that many filters
        in registers; a layer engine's ``max_cin``).
    input_transform : str
        ``"binary"`` (default): ``V = Bᵀ d B`` is computed once, exactly, in
        binary (the integer ``Bᵀ`` whose residues the channels use, see
        :attr:`input_matrix`), and each channel's forward converter reduces
        ``V`` modulo its modulus; every channel shares the adder trees.
        ``"residue"``: ``d`` is forward converted first and each channel
        computes ``B_iᵀ d_i B_i mod m_i`` with its own residue constants.
    forward_reduction : str
        With the binary input transform: ``"full"`` (default) reduces every ``V``
        element to its canonical residue, so the multipliers are ``b × b``-bit
        (``b`` the residue width); ``"partial"`` only folds it
        (:meth:`ReductionPlan.partial`) until it fits
        :data:`PARTIAL_OPERAND_WIDTH` signed bits, one DSP port, and the PE reduces
        the wider product: each forward converter shrinks to at most a fold or two
        while the multipliers widen to that operand (see :attr:`pe_a_intervals`) and the
        PEs reduce wider products (in ``synth_ecp5`` the latter outweighs the former:
        +12 to +17 % LUT4 for F(6,3) and F(4,3)).
    points, preset : optional
        Interpolation points, as for :class:`~winogen.gen.config.TileConfig`.
    input_stages, pe_stages, accumulate_stages, output_stages, convert_stages, descale_stages : int
        Register stages of each block (0 to 8; ``accumulate_stages`` is 1
        when ``channels > 1`` and ignored otherwise). ``convert_stages`` is
        at most :func:`converter_levels` (``2k`` for ``k`` moduli); the default,
        ``None``, registers every level (:attr:`converter_latency`): on ECP5, 2.35 × the
        Fmax of two stages for the preset with a redundant modulus (converter alone). ``pe_stages``
        defaults to 3, one more than a binary engine's PE: the product register
        between the residue multiplier and its reduction (1.38 × the RNS F(4,3)
        engine's Fmax on ECP5, for 16 FF per multiplier).
    name : str, optional
        Verilog module name.
    """
    m: int
    r: int
    data_width: int = 8
    weight_width: int = 8
    moduli: object = "8bit-primes-4"
    method: str = "auto"
    redundant_moduli: int = 0
    channels: int = 1
    input_transform: str = "binary"
    forward_reduction: str = "full"
    points: object = None
    preset: str = "default"
    input_stages: int = 2
    pe_stages: int = 3
    output_stages: int = 2
    convert_stages: object = None
    descale_stages: int = 1
    name: str = None

    def __post_init__(self):
        from .config import MAX_WIDTH, MIN_WIDTH
        from .points import parse_points, PRESETS
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("m", _check_count("m", self.m, 1))
        set_("r", _check_count("r", self.r, 1))
        set_("data_width", _check_count("data_width", self.data_width, MIN_WIDTH, MAX_WIDTH))
        set_("weight_width", _check_count("weight_width", self.weight_width, MIN_WIDTH, MAX_WIDTH))
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(sorted(PRESETS))}, "
                             f"not {self.preset!r}")
        if self.points is not None:
            set_("points", parse_points(self.points))
        if not isinstance(self.method, str) or self.method not in RNS_METHODS:
            raise ValueError(f"method must be one of {', '.join(RNS_METHODS)}, not {self.method!r}")
        set_("redundant_moduli", _check_count("redundant_moduli", self.redundant_moduli, 0, 1))
        set_("channels", _check_count("channels", self.channels, 1, 4096))
        auto_width = auto_moduli_width(self.moduli)
        if auto_width is not None:
            # Primes above 17 invert every denominator: "auto" resolves to "inverse".
            method = "scaled" if self.method == "scaled" else "inverse"
            R = result_range(self.toomcook, self.data_interval, self.weight_interval,
                             self.channels, method)
            set_("moduli", select_moduli(R, auto_width, self.redundant_moduli))
        set_("moduli", _as_moduli(self.moduli).moduli)
        if self.input_transform not in ("binary", "residue"):
            raise ValueError(f"input_transform must be one of binary, residue, "
                             f"not {self.input_transform!r}")
        if self.forward_reduction not in FORWARD_REDUCTIONS:
            raise ValueError(f"forward_reduction must be one of {', '.join(FORWARD_REDUCTIONS)}, "
                             f"not {self.forward_reduction!r}")
        if self.forward_reduction == "partial" and self.input_transform != "binary":
            raise ValueError("forward_reduction 'partial' needs input_transform 'binary' (the "
                             "residue-domain transform outputs canonical residues), "
                             f"not {self.input_transform!r}")
        for stage in ("input_stages", "pe_stages", "output_stages", "descale_stages"):
            set_(stage, _check_count(stage, getattr(self, stage), 0, 8))
        if self.name is not None and not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"name must be a Verilog identifier, not {self.name!r}")
        k = len(self.moduli)
        if self.redundant_moduli >= k:
            raise ValueError(f"redundant_moduli must leave at least one non-redundant modulus, "
                             f"not {self.redundant_moduli} of {k} moduli {list(self.moduli)}")
        if self.convert_stages is not None:
            levels = converter_levels(k)
            cs = self.convert_stages
            if not (isinstance(cs, numbers.Integral) and not isinstance(cs, bool)
                    and 0 <= cs <= levels):
                raise ValueError(f"convert_stages must be None or an integer from 0 to {levels} "
                                 f"(the mixed-radix converter's levels for {k} moduli), "
                                 f"not {cs!r}")
            set_("convert_stages", int(cs))
        tc = self.toomcook                        # validates n <= 16 and the points
        if self.method == "inverse":
            rns_transforms(tc, self.moduli_set, "inverse")   # one line naming the denominator
        base = self.base_moduli
        R = self.result_interval
        if not base.covers(R):
            need = _need(R)
            hint = ""
            if self.method_used == "scaled" and _inverse_ok(tc, self.moduli_set):
                inv = result_range(tc, self.data_interval, self.weight_interval, self.channels,
                                   "inverse")
                hint = f"; method 'inverse' needs {(_need(inv) - 1).bit_length()} bits"
            what = "non-redundant moduli" if self.redundant_moduli else "moduli"
            raise ValueError(
                f"{what} {list(base.moduli)} must cover the {self.method_used} result range "
                f"[{R.lo}, {R.hi}] of {tc.name} with {self.data_width}-bit data, "
                f"{self.weight_width}-bit weights and {self.channels} channel(s) (needs ≥ {need}, "
                f"{(need - 1).bit_length()} bits), not product {base.product} "
                f"({base.bits} bits){hint}")
        if self.redundant_moduli:
            M, size = self.moduli_set.product, R.hi - R.lo + 1
            for mi in self.moduli:
                if M // mi < size:
                    raise ValueError(
                        f"redundant moduli must detect every single-channel fault: the product "
                        f"of the moduli other than {mi} must be at least the result range's "
                        f"{size} values, not {M // mi}")
        if self.input_transform == "binary":
            self.input_matrix                      # refuses a Bᵀ with fractions
            self.pe_a_intervals                    # refuses a V no fold brings within the port
        if self.latency < 1:
            raise ValueError("the register stages of the engine must add up to at least 1, not 0")

    # -- algorithm and number system -----------------------------------------------------------

    @property
    def n(self):
        return self.m + self.r - 1

    @property
    def algorithm(self):
        return "winograd"

    @property
    def pe(self):
        return "rns"

    @cached_property
    def toomcook(self):
        from .toomcook import ToomCook
        return ToomCook(self.m, self.r, self.points, preset=self.preset)

    @cached_property
    def moduli_set(self):
        return ModuliSet(self.moduli)

    @cached_property
    def base_moduli(self):
        """The non-redundant moduli: their product covers the result range."""
        return ModuliSet(self.moduli[:len(self.moduli) - self.redundant_moduli])

    @cached_property
    def method_used(self):
        if self.method != "auto":
            return self.method
        return "inverse" if _inverse_ok(self.toomcook, self.moduli_set) else "scaled"

    @cached_property
    def transforms(self):
        """:class:`RNSTransforms` for every modulus (redundant ones included)."""
        return rns_transforms(self.toomcook, self.moduli_set, self.method_used)

    @property
    def scale_divisor(self):
        return self.transforms.scale_divisor(2)

    @cached_property
    def input_matrix(self):
        """The integer ``Bᵀ`` whose residues are :attr:`transforms`' ``BT``."""
        if self.method_used == "scaled":
            BT = self.toomcook.hardware().BT
        else:
            BT = self.toomcook.matrices("G").BT
        if any(Fraction(x).denominator != 1 for row in BT for x in row):
            raise ValueError(f"input_transform 'binary' needs an integer Bᵀ, not one with "
                             f"fractions (points {self.toomcook.points_text}); use 'residue'")
        return tuple(tuple(int(x) for x in row) for row in BT)

    @cached_property
    def v_intervals(self):
        """Exact ranges of the binary ``V = Bᵀ d B`` (input_transform "binary"), row-major."""
        return transform_intervals(self.input_matrix, self.data_interval, dims=2)

    @property
    def data_interval(self):
        return signed_range(self.data_width)

    @property
    def weight_interval(self):
        return signed_range(self.weight_width)

    @cached_property
    def result_interval(self):
        """Exact range of the reverse-converted value (``D²·Y`` for method "scaled")."""
        return result_range(self.toomcook, self.data_interval, self.weight_interval,
                            self.channels, self.method_used)

    @cached_property
    def output_interval(self):
        """Exact range of an output element: the correlation summed over the channels."""
        return (self.data_interval * self.weight_interval).times(self.r * self.r * self.channels)

    @property
    def output_width(self):
        return self.output_interval.width

    @property
    def residue_widths(self):
        return tuple(residue_width(mi) for mi in self.moduli)

    @property
    def weight_payload(self):
        """(element count, element width) of a weight beat: ``U`` residues of every channel."""
        return len(self.moduli) * self.channels * self.n ** 2, max(self.residue_widths)

    @property
    def multipliers(self):
        """Modular multipliers: ``n²`` per modulus."""
        return len(self.moduli) * self.n ** 2

    @cached_property
    def pe_a_intervals(self):
        """Per modulus, per ``V`` element (row-major): the range of the PE's ``a`` operand.

        The residue port range (:func:`residue_port_interval`) unless
        ``forward_reduction`` is ``"partial"``, where it is the range of ``V`` after
        :meth:`ReductionPlan.partial` (possibly no fold at all).
        """
        n2 = self.n ** 2
        if self.forward_reduction == "full":
            return tuple((residue_port_interval(mi),) * n2 for mi in self.moduli)
        return tuple(tuple(plan_reduction(iv, mi).partial(PARTIAL_OPERAND_WIDTH)[1]
                           for iv in self.v_intervals) for mi in self.moduli)

    @property
    def multiplier_operands(self):
        """(a, b) bit widths of the widest modular multiplier: ``V`` (signed when it can be
        negative) by the unsigned ``U`` residue."""
        a = max((iv.width if iv.lo < 0 else max(iv.hi.bit_length(), 1))
                 for ivs in self.pe_a_intervals for iv in ivs)
        return a, max(self.residue_widths)

    @property
    def multiplier_width(self):
        """Widest multiplier port: the residue width, or the partially reduced ``V``'s."""
        return max(self.multiplier_operands)

    @property
    def multiplier_description(self):
        """e.g. ``"8x8 unsigned"`` or ``"13x8 signed x unsigned"``."""
        a, b = self.multiplier_operands
        signed_a = any(iv.lo < 0 for ivs in self.pe_a_intervals for iv in ivs)
        return f"{a}x{b} " + ("signed x unsigned" if signed_a else "unsigned")

    @property
    def accumulates(self):
        return self.channels > 1

    @property
    def converter_latency(self):
        """Register stages of the reverse converter: ``convert_stages``, or by default
        one per :func:`converter_levels`."""
        if self.convert_stages is None:
            return converter_levels(len(self.moduli))
        return self.convert_stages

    @property
    def latency(self):
        """Cycles from accepting a tile (the last channel's) to its output."""
        return (self.input_stages + self.pe_stages + int(self.accumulates) + self.output_stages
                + self.converter_latency
                + (self.descale_stages if self.scale_divisor != 1 else 0))

    @property
    def initiation_interval(self):
        """Input beats per output tile at full rate (one tile beat per channel)."""
        return self.channels

    @property
    def module_name(self):
        if self.name:
            return self.name
        tag = f"rns{len(self.moduli)}" + (f"r{self.redundant_moduli}" if self.redundant_moduli else "")
        ch = f"_c{self.channels}" if self.channels > 1 else ""
        ch += "_rin" if self.input_transform == "residue" else ""
        ch += "_pfr" if self.forward_reduction == "partial" else ""
        return (f"{tag}_f{self.m}x{self.m}_{self.r}x{self.r}_{self.method_used[:3]}"
                f"_d{self.data_width}w{self.weight_width}{ch}")

    def replace(self, **changes):
        from dataclasses import replace
        return replace(self, **changes)

    def to_json(self):
        from .config import parameters_to_json
        return parameters_to_json(self, moduli=list)

    @classmethod
    def from_json(cls, params):
        params = dict(params)
        params["moduli"] = tuple(params["moduli"])
        return cls(**params)


class RNSTileModel:
    """Bit-exact model of an :class:`RNSTileConfig` engine: weight beats, residues and outputs.

    Parameters
    ----------
    config : RNSTileConfig
    """

    def __init__(self, config):
        if not isinstance(config, RNSTileConfig):
            raise TypeError(f"config must be an RNSTileConfig, not {config!r}")
        self.config = config
        self.AT, self.G, self.BT = (np.array(M, dtype=object) for M in (
            config.transforms.AT, config.transforms.G, config.transforms.BT))

    def _per_modulus(self, mats, x):
        """``M_i X_i M_iᵀ mod m_i`` for x of shape (k, ..., c, c)."""
        out = []
        for i, mi in enumerate(self.config.moduli):
            M = mats[i]
            xi = np.asarray(x[i], dtype=object)
            out.append(np.matmul(np.matmul(M, xi), M.T) % mi)
        return np.stack(out)

    def filter_residues(self, g):
        """``U_i = G_i g G_iᵀ mod m_i``: shape (k, ..., n, n) for ``g`` of shape (..., r, r)."""
        g = _integer_array("g", g)
        return self._per_modulus(self.G, to_residues(g, self.config.moduli, check=False))

    def weight_beat(self, g):
        """The weight-stream elements for filters ``g`` of shape (channels, r, r) (or (r, r)).

        Element ``(i·channels + c)·n² + j`` is ``U_i[c]`` at row-major index ``j``.
        """
        cfg = self.config
        g = np.asarray(g)
        if g.ndim == 2:
            g = g[None]
        if g.shape != (cfg.channels, cfg.r, cfg.r):
            raise ValueError(f"g must have shape ({cfg.channels}, {cfg.r}, {cfg.r}), not {g.shape}")
        return [int(v) for v in self.filter_residues(g).flat]

    def input_residues(self, d):
        """``V_i = B_iᵀ d B_i mod m_i``, shape (k, ..., n, n)."""
        return self._per_modulus(self.BT, to_residues(_integer_array("d", d), self.config.moduli,
                                                     check=False))

    def output_residues(self, d, g):
        """Residues of the reconstructed value before descaling, shape (k, T, m, m).

        ``d``: (T, channels, n, n) or (T, n, n); ``g``: (channels, r, r) or (r, r).
        """
        cfg = self.config
        d, g = np.asarray(d), np.asarray(g)
        if d.ndim == 3:
            d = d[:, None]
        if g.ndim == 2:
            g = g[None]
        V = self.input_residues(d)                        # (k, T, C, n, n)
        U = self.filter_residues(g)                       # (k, C, n, n)
        mods = np.array(cfg.moduli, dtype=object).reshape(-1, 1, 1, 1)
        P = (U[:, None] * V).sum(axis=2) % mods           # (k, T, n, n)
        return self._per_modulus(self.AT, P)

    def __call__(self, d, g):
        """Output tiles, shape (T, m, m): the exact correlation summed over channels."""
        cfg = self.config
        y = from_residues_crt(self.output_residues(d, g)[:len(cfg.base_moduli)], cfg.base_moduli)
        y = np.asarray(y, dtype=object)
        return _finish(_divide_exact(y, cfg.scale_divisor))
