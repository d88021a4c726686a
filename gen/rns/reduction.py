"""Hardware plans: residue widths, cheap residue constants and modular reduction by folds."""

from dataclasses import dataclass

from ..bounds import Interval, signed_width
from .common import _as_interval, _check_modulus

__all__ = ["residue_width", "residue_port_interval", "residue_constant", "FoldStep",
           "ReductionPlan", "plan_reduction"]


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
    from ..csd import csd_digits
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
