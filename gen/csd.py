"""Multiplierless constant arithmetic: CSD recoding and shift-add plans.

A product with a constant integer is a sum of shifted copies of the operand,
one per nonzero digit of the constant. The canonical signed digit (CSD, also
non-adjacent form) recoding uses digits in ``{-1, 0, +1}`` with no two adjacent
nonzero digits; it has the fewest nonzero digits of any signed-digit
representation, hence the fewest adders (``7 = 8 - 1``: one subtractor, not
two adders).

:func:`plan_matvec` turns a constant matrix into an adder *program* for
``y = M x``: the CSD terms of every row, optionally sharing pairs of terms that
recur (``x4 - 4 x2`` is used by two rows of the F(4,3) input transform), then
balanced adder trees over the remaining terms. The program is plain data; the
hardware in :mod:`winogen.hw.constmat` instantiates it one adder per node and
takes every width from :mod:`winogen.gen.bounds`.

:func:`exact_divide_plan` removes a known scale exactly: division by
``2**k * q`` of an exact multiple is a shift followed by a multiplication by the
inverse of ``q`` modulo ``2**out_width``.
"""

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
import heapq
import numbers

from .checks import check_int

__all__ = ["csd_digits", "csd_cost", "Term", "Node", "MatVecPlan", "plan_matvec",
           "ExactDividePlan", "exact_divide_plan"]


def csd_digits(k):
    """Canonical signed digit (non-adjacent form) recoding of an integer.

    Returns
    -------
    list of (int, int)
        ``(shift, sign)`` pairs, shifts strictly increasing, ``sign`` in
        ``{-1, +1}``, no two shifts adjacent, such that
        ``k == sum(sign << shift)``. Empty for ``k == 0``.
    """
    k = check_int("k", k)
    digits = []
    shift = 0
    while k:
        if k & 1:
            # Choose the digit that leaves k divisible by 4: the next digit is then 0.
            digit = 2 - (k & 3)
            digits.append((shift, digit))
            k -= digit
        k >>= 1
        shift += 1
    return digits


def csd_cost(k):
    """Adders/subtractors needed to form ``k * x`` from ``x`` by CSD shift-add.

    One fewer than the number of nonzero CSD digits, plus one negation when
    every digit is negative (``-x``, ``-5 x = -(4 x + x)``); 0 for ``k`` in
    ``{0}`` or a power of two.
    """
    digits = csd_digits(k)
    return _terms_cost([sign for _, sign in digits])


def _terms_cost(signs):
    if not signs:
        return 0
    return len(signs) - 1 + all(sign < 0 for sign in signs)


@dataclass(frozen=True, order=True)
class Term:
    """``sign * (source << shift)``.

    ``source`` indexes the program's values: ``0 .. cols-1`` are the inputs,
    ``cols + i`` is :attr:`MatVecPlan.nodes` ``[i]``.
    """
    source: int
    shift: int
    sign: int


@dataclass(frozen=True)
class Node:
    """One adder, subtractor or negator: the sum of its (one or two) terms.

    ``level`` is the adder depth from the inputs (inputs are level 0). The
    first term of a two-term node is always positive, so a node is ``a + b``,
    ``a - b`` or (one term) ``-a``.
    """
    terms: tuple
    level: int


@dataclass(frozen=True)
class MatVecPlan:
    """A shift-add program for ``y = matrix @ x``.

    Members
    -------
    matrix : tuple of tuple of int
        The constant matrix.
    cols : int
        Number of inputs.
    csd_terms : tuple of tuple of Term
        Each row's CSD terms over the inputs, before sharing.
    terms : tuple of tuple of Term
        Each row's terms after common-subexpression sharing; sources
        ``cols .. cols + len(subexpressions) - 1`` are the shared pairs.
    subexpressions : tuple of tuple of Term
        The shared pairs; they are also the first nodes of :attr:`nodes`.
    nodes : tuple of Node
        Every adder of the program, in dependency order.
    outputs : tuple of (Term or None)
        Row ``i`` is ``outputs[i].source << outputs[i].shift`` (sign always +1);
        ``None`` for an all-zero row.
    adders : int
        Two-input adders/subtractors plus negators: ``len(nodes)``.
    depth : int
        The largest node level (0 if there are no nodes).
    """
    matrix: tuple
    cols: int
    csd_terms: tuple
    terms: tuple
    subexpressions: tuple
    nodes: tuple
    outputs: tuple

    @property
    def rows(self):
        return len(self.matrix)

    @property
    def adders(self):
        return len(self.nodes)

    @property
    def depth(self):
        return max((node.level for node in self.nodes), default=0)

    def level(self, source):
        """Adder depth of a source (0 for an input)."""
        return 0 if source < self.cols else self.nodes[source - self.cols].level

    def coefficients(self, source):
        """The integer vector ``c`` with ``source == c @ x``."""
        return self._coefficients[source]

    @cached_property
    def _coefficients(self):
        return _coefficients(self.cols, self.nodes)

    def evaluate(self, x):
        """Run the program on integer inputs (a reference for tests)."""
        values = [int(v) for v in x]
        if len(values) != self.cols:
            raise ValueError(f"x must have {self.cols} elements, not {len(values)}")
        for node in self.nodes:
            values.append(sum(t.sign * (values[t.source] << t.shift) for t in node.terms))
        return [0 if out is None else values[out.source] << out.shift for out in self.outputs]


def _coefficients(cols, nodes):
    coeffs = [tuple(int(i == j) for j in range(cols)) for i in range(cols)]
    for node in nodes:
        acc = [0] * cols
        for t in node.terms:
            for j, c in enumerate(coeffs[t.source]):
                acc[j] += t.sign * (c << t.shift)
        coeffs.append(tuple(acc))
    return coeffs


def _check_matrix(matrix):
    try:
        rows = [list(row) for row in matrix]
    except TypeError:
        raise ValueError(f"matrix must be a sequence of rows, not {matrix!r}") from None
    if not rows or not rows[0]:
        raise ValueError(f"matrix must have at least one row and one column, not {matrix!r}")
    cols = len(rows[0])
    result = []
    for i, row in enumerate(rows):
        if len(row) != cols:
            raise ValueError(f"matrix row {i} must have {cols} entries like row 0, not {len(row)}")
        entries = []
        for entry in row:
            # Fraction(4, 1) and numpy integers are fine; 0.5, 4.0 and True are not.
            if isinstance(entry, bool) or not isinstance(entry, numbers.Rational) \
                    or entry.denominator != 1:
                raise ValueError(f"matrix entries must be integers, not {entry!r}")
            entries.append(int(entry))
        result.append(tuple(entries))
    return tuple(result), cols


def _rows_cost(rows):
    return sum(_terms_cost([t.sign for t in row]) for row in rows)


def _pair_keys(p, q):
    """Canonical forms ``(a, da, b, db, rel, flip)`` of the pair ``p + q``.

    The shared value is ``flip * ((a << da) + rel * (b << db))``. A difference
    can be shared either way round (``a - b`` or ``b - a``); which one is better
    depends on the signs of the rows that use it, so both are candidates.
    """
    first, second = (p, q) if (p.source, p.shift) < (q.source, q.shift) else (q, p)
    base = min(p.shift, q.shift)
    rel = first.sign * second.sign
    key = (first.source, first.shift - base, second.source, second.shift - base, rel)
    return [key + (1,)] if rel > 0 else [key + (1,), key + (-1,)]


def _shared_terms(key):
    a, da, b, db, rel, flip = key
    if flip > 0:
        return (Term(a, da, 1), Term(b, db, rel))
    return (Term(b, db, 1), Term(a, da, -1))


def _substitute(row, key, new_source):
    """Replace non-overlapping occurrences of ``key`` in ``row``; returns (row, count)."""
    a, da, b, db, rel, flip = key
    present = {(t.source, t.shift): t for t in row}
    used = set()
    shared = []
    for t in sorted(row):
        if t.source != a or (t.source, t.shift) in used:
            continue
        base = t.shift - da
        if base < 0:
            continue
        partner = present.get((b, base + db))
        if partner is None or partner == t or (b, base + db) in used \
                or partner.sign != t.sign * rel:
            continue
        used.add((a, t.shift))
        used.add((b, base + db))
        shared.append(Term(new_source, base, t.sign * flip))
    if not shared:
        return row, 0
    rest = [t for t in row if (t.source, t.shift) not in used]
    return sorted(rest + shared), len(shared)


def _share(rows, cols):
    """Greedy pairwise common-subexpression elimination.

    Repeatedly shares the pair pattern that lowers the adder count the most
    (one adder for the pair, one fewer per use), until none does. Shared pairs
    may themselves be paired again (``x + 4x`` then ``S + 16 S``).
    """
    rows = [sorted(row) for row in rows]
    subexpressions = []
    cost = _rows_cost(rows)
    while True:
        counts = Counter()
        for row in rows:
            for i, p in enumerate(row):
                for q in row[i + 1:]:
                    counts.update(_pair_keys(p, q))
        new_source = cols + len(subexpressions)
        best = None
        for key in sorted(k for k, n in counts.items() if n >= 2):
            trial = [_substitute(row, key, new_source)[0] for row in rows]
            trial_cost = _rows_cost(trial) + 1
            if trial_cost < cost and (best is None or trial_cost < best[0]):
                best = (trial_cost, key, trial)
        if best is None:
            return rows, subexpressions
        cost, key, rows = best
        subexpressions.append(_shared_terms(key))


def _sum_tree(row, level, emit):
    """The root term of a balanced adder tree summing ``row`` (None for an empty row).

    Always combines the two shallowest pending values; ``emit`` builds (or reuses) an
    adder and returns its source index, ``level`` gives a source's depth.
    """
    if not row:
        return None
    heap = [(level(t.source), n, t) for n, t in enumerate(row)]
    heapq.heapify(heap)
    order = len(heap)
    while len(heap) > 1:
        _, _, p = heapq.heappop(heap)
        _, _, q = heapq.heappop(heap)
        base = min(p.shift, q.shift)
        if p.sign == q.sign:
            sign = p.sign
            node = (Term(p.source, p.shift - base, 1), Term(q.source, q.shift - base, 1))
        else:
            pos, neg = (p, q) if p.sign > 0 else (q, p)
            sign = 1
            node = (Term(pos.source, pos.shift - base, 1),
                    Term(neg.source, neg.shift - base, -1))
        source = emit(node)
        heapq.heappush(heap, (level(source), order, Term(source, base, sign)))
        order += 1
    root = heap[0][2]
    if root.sign < 0:
        root = Term(emit((Term(root.source, 0, -1),)), root.shift, 1)
    return root


def plan_matvec(matrix, *, share=True):
    """Plan ``y = matrix @ x`` as shift-add trees of CSD terms.

    Each row's terms (after optional sharing) are summed by a tree that always
    combines the two shallowest pending values, which gives balanced trees of
    minimum depth. Signs are carried along, so ``-a - b`` costs one adder and
    one final negation only if every term of a row is negative; a common shift
    is factored out of each adder so that adders stay narrow. Identical adders
    are built once.

    Parameters
    ----------
    matrix : sequence of sequences of int
        The constant matrix (rows x cols).
    share : bool
        Share recurring pairs of terms between and within rows.

    Returns
    -------
    MatVecPlan
    """
    matrix, cols = _check_matrix(matrix)
    csd_terms = tuple(
        tuple(sorted(Term(j, shift, sign) for j, c in enumerate(row)
                     for shift, sign in csd_digits(c)))
        for row in matrix)
    if share:
        terms, subexpressions = _share(csd_terms, cols)
    else:
        terms, subexpressions = csd_terms, []

    nodes = []
    index = {}   # terms -> source: identical adders are built once

    def level(source):
        return 0 if source < cols else nodes[source - cols].level

    def emit(node_terms):
        node_terms = tuple(node_terms)
        if node_terms not in index:
            lvl = 1 + max(level(t.source) for t in node_terms)
            nodes.append(Node(node_terms, lvl))
            index[node_terms] = cols + len(nodes) - 1
        return index[node_terms]

    for a, b in subexpressions:
        emit((a, b))

    outputs = [_sum_tree(row, level, emit) for row in terms]

    plan = MatVecPlan(matrix=matrix, cols=cols, csd_terms=csd_terms,
                      terms=tuple(tuple(row) for row in terms),
                      subexpressions=tuple(subexpressions), nodes=tuple(nodes),
                      outputs=tuple(outputs))
    # The program is checked symbolically: each output's coefficient vector is its row.
    coeffs = _coefficients(cols, plan.nodes)
    for row, out in zip(matrix, plan.outputs):
        got = (0,) * cols if out is None else tuple(c << out.shift for c in coeffs[out.source])
        assert got == row, (row, got)
    return plan


@dataclass(frozen=True)
class ExactDividePlan:
    """``y = x / divisor`` for exact multiples, as a shift and a modular product.

    Members
    -------
    divisor : int
        ``2**shift * odd``.
    shift : int
        ``k``, the power of two removed by an arithmetic right shift.
    odd : int
        ``q``, the odd part of the divisor.
    inverse : int
        ``q**-1 mod 2**out_width``, in ``[0, 2**out_width)``.
    multiplier : int
        The value of :attr:`terms`; congruent to :attr:`inverse` modulo
        ``2**out_width`` and cheaper in CSD (it may be negative).
    terms : list of (int, int)
        ``(shift, sign)`` CSD digits of the inverse with shift below ``out_width``.
    out_width : int
        Signed width of the quotient; all arithmetic is modulo ``2**out_width``.
    """
    divisor: int
    shift: int
    odd: int
    inverse: int
    multiplier: int
    terms: tuple
    out_width: int

    @property
    def plan(self):
        """The shift-add program of ``multiplier * x`` (one row, one input)."""
        return plan_matvec([[self.multiplier]])


def exact_divide_plan(divisor, out_width):
    """Plan an exact division whose quotient fits in ``out_width`` signed bits.

    For ``x = divisor * y`` with ``divisor = 2**k * q`` (``q`` odd):
    ``x >> k == q * y`` exactly, and ``q * y * q**-1 == y (mod 2**out_width)``,
    so ``y`` is the low ``out_width`` bits of ``(x >> k) * q**-1``, read as
    signed. CSD digits at or above ``out_width`` vanish modulo ``2**out_width``
    and are dropped.

    Parameters
    ----------
    divisor : int
        Positive divisor.
    out_width : int
        Signed width that holds every quotient.

    Returns
    -------
    ExactDividePlan
    """
    divisor = check_int("divisor", divisor, 1)
    out_width = check_int("out_width", out_width, 1)
    shift = (divisor & -divisor).bit_length() - 1
    odd = divisor >> shift
    modulus = 1 << out_width
    inverse = pow(odd, -1, modulus)
    terms = tuple((s, g) for s, g in csd_digits(inverse) if s < out_width)
    multiplier = sum(g << s for s, g in terms)
    return ExactDividePlan(divisor=divisor, shift=shift, odd=odd, inverse=inverse,
                           multiplier=multiplier, terms=terms, out_width=out_width)
