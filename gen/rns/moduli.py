"""Moduli sets: validation, named presets and the automatic choice of moduli."""

from itertools import combinations
from math import gcd, prod
import numbers

from ..bounds import Interval
from .common import _as_interval, _check_modulus
from .reduction import _csd_weight, plan_reduction, residue_width

__all__ = ["ModuliSet", "MODULI_PRESETS", "moduli_preset", "is_special", "AUTO_WIDTHS",
           "auto_moduli_width", "reduction_cost", "auto_moduli_candidates",
           "select_moduli"]


#: Named moduli sets. "special-k" are the {2ᵏ-1, 2ᵏ, 2ᵏ+1} sets of cheap
#: end-around-carry hardware; "8bit-*"/"16bit-*" are the largest pairwise
#: coprime moduli of that width; "*-primes-*" are odd primes, coprime to
#: every denominator of F(m, r) up to n = 16 (largest prime factor 17), so
#: they also serve method "inverse". "8bit-primes-4" takes the four 8-bit
#: primes p whose fold constant 2⁸ mod p (5, 15, 17, 33) has two CSD digits:
#: their reductions are the cheapest of any 8-bit prime (233's 23 needs three).
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
    ranks moduli as the synthesized PEs do.
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
