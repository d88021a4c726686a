"""Modular arithmetic blocks of the RNS engines: reductions, modular PE, modular transforms.

Reductions never assume their residue inputs are canonical: each block accepts
every value its ports can carry (``residue_port_interval``) and reduces it
exactly. A fault in one channel's register therefore stays a (wrong) residue of
that channel, which is what the redundant-modulus check needs to catch every
single-channel fault.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...gen.bounds import Interval, matvec_intervals
from ...gen.csd import csd_digits, plan_matvec
from ...gen.rns import (PARTIAL_OPERAND_WIDTH, plan_reduction, residue_constant,
                        residue_port_interval, residue_width)
from ..constmat import _emit_program
from ..pe import ProcessingElement
from ..util import check_interval, check_stages, delay

__all__ = ["reduce_into", "fold_into", "forward_convert", "ModReduce", "ModTransform2D",
           "ModMulPE"]


def _times_constant(value, c):
    """``c · value`` as CSD shift-adds (no multiplier cell)."""
    expr = None
    for shift, sign in csd_digits(c):
        term = value.shift_left(shift)
        if expr is None:
            expr = term if sign > 0 else -term
        else:
            expr = expr + term if sign > 0 else expr - term
    return 0 if expr is None else expr


def _emit_folds(m, x, interval, folds, name):
    """Emit the folds of a :class:`~winogen.gen.rns.ReductionPlan` on ``x`` (in ``interval``)."""
    k_max = max([f.k for f in folds], default=0)
    v = Signal(signed(max(interval.width, k_max + 1)), name=f"{name}_v0")
    m.d.comb += v.eq(x)
    for index, fold in enumerate(folds):
        nxt = Signal(signed(max(fold.output.width, k_max + 1)), name=f"{name}_v{index + 1}")
        m.d.comb += nxt.eq(v[:fold.k] + _times_constant(v.shift_right(fold.k), fold.c))
        v = nxt
    return v


def reduce_into(m, x, interval, modulus, name):
    """Emit ``x mod modulus`` (``x`` in ``interval``) into module ``m``; return the residue signal.

    Implements :func:`~winogen.gen.rns.plan_reduction`: each fold replaces
    ``x = h·2ᵏ + l`` by ``l + c·h`` (``c = 2ᵏ mod m``; 0 for ``m = 2ᵏ``, ±1
    for ``2ᵏ ∓ 1``, a few shift-adds otherwise), then the one ``x - j·m`` in
    ``[0, m)`` is selected by ``j_hi - j_lo`` constant comparisons.
    """
    plan = plan_reduction(interval, modulus)
    v = _emit_folds(m, x, plan.input, plan.folds, name)
    mod = plan.modulus
    result = v - plan.j_lo * mod
    for j in range(plan.j_lo + 1, plan.j_hi + 1):
        result = Mux(v >= j * mod, v - j * mod, result)
    y = Signal(unsigned(residue_width(mod)), name=name)
    m.d.comb += y.eq(result)
    return y


def fold_into(m, x, interval, modulus, width, name):
    """Emit a value congruent to ``x`` modulo ``modulus`` within ``width`` signed bits.

    The partial forward conversion (``forward_reduction="partial"``): only the first
    folds of :func:`reduce_into`'s plan (:meth:`~winogen.gen.rns.ReductionPlan.partial`),
    none when ``x`` already fits. Returns ``(signal, interval)``.
    """
    folds, out = plan_reduction(interval, modulus).partial(width)
    v = _emit_folds(m, x, interval, folds, name) if folds else x
    y = Signal(signed(out.width) if out.lo < 0 else unsigned(out.hi.bit_length()), name=name)
    m.d.comb += y.eq(v)
    return y, out


def forward_convert(m, config, x, interval, modulus, name):
    """One binary ``V`` element into the channel of ``modulus``, as ``config`` asks.

    Its canonical residue (:func:`reduce_into`), or with ``forward_reduction="partial"``
    a congruent value within the PE's operand port (:func:`fold_into`).
    """
    if config.forward_reduction == "full":
        return reduce_into(m, x, interval, modulus, name)
    return fold_into(m, x, interval, modulus, PARTIAL_OPERAND_WIDTH, name)[0]


class ModReduce(wiring.Component):
    """``y = x mod m`` for ``x`` in a known interval: folds and a few comparisons.

    See :func:`reduce_into` (which engines call inline, without a submodule).

    Parameters
    ----------
    interval : Interval
        Range of ``x``.
    modulus : int
    stages : int
        Registers at the output.

    Members
    -------
    x : In(signed(interval.width))
    y : Out(unsigned(residue_width(modulus)))
    """

    def __init__(self, interval, modulus, *, stages=0):
        self.plan = plan_reduction(check_interval("interval", interval), modulus)
        self.modulus = self.plan.modulus
        self.latency = check_stages(stages)
        super().__init__({"x": In(signed(interval.width)),
                          "y": Out(unsigned(residue_width(self.modulus)))})

    def elaborate(self, platform):
        m = Module()
        y = reduce_into(m, self.x, self.plan.input, self.modulus, "r")
        m.d.comb += self.y.eq(delay(m, y, self.latency, "r", reset_less=True))
        return m


def _matvec_into(m, plan, inputs, input_intervals, stages, name):
    """Emit the adder program ``plan`` on ``inputs`` (as :class:`ConstMatVec` does) into ``m``.

    Returns ``(outputs, output_intervals)``; outputs arrive ``stages`` cycles later.
    """
    values = []
    for j, (x, iv) in enumerate(zip(inputs, input_intervals)):
        s = Signal(signed(iv.width), name=f"{name}_x{j}")
        m.d.comb += s.eq(x)
        values.append(s)

    def shape_of(source):
        return signed(matvec_intervals([plan.coefficients(source)], input_intervals)[0].width)

    outputs = _emit_program(m, plan, values, stages, shape_of, name)
    return ([0 if out is None else out for out in outputs],
            matvec_intervals(plan.matrix, input_intervals))


def _split_stages(stages, count, priority):
    """Distribute ``stages`` registers over ``count`` blocks, in ``priority`` order."""
    alloc = [0] * count
    for i in range(stages):
        alloc[priority[i % len(priority)]] += 1
    return alloc


class ModTransform2D(wiring.Component):
    """``Y = M X Mᵀ mod m`` for a constant integer matrix, residues in and out.

    Each entry of ``M`` is replaced by its cheapest congruent constant
    (:func:`~winogen.gen.rns.residue_constant`); each pass is a
    shift-add program as :class:`~winogen.hw.constmat.ConstMatVec` builds it, on
    the exact range of its inputs; only the second pass's outputs are reduced
    (:func:`reduce_into`), so there is one reduction per output element.

    Parameters
    ----------
    matrix : rows × cols integers
        Entries are reduced modulo ``modulus``.
    modulus : int
    stages : int
        Registers; the reductions' outputs are registered first, then the
        second and the first pass's adder trees.
    input_interval : Interval, optional
        Range of each input element; by default the residue port range.

    Members
    -------
    x : In(ArrayLayout(signed or unsigned, cols²))
    y : Out(ArrayLayout(unsigned(residue_width(modulus)), rows²))
    """

    def __init__(self, matrix, modulus, *, stages=0, input_interval=None):
        self.modulus = int(modulus)
        self.matrix = [[residue_constant(x, self.modulus) for x in row] for row in matrix]
        self.rows, self.cols = len(self.matrix), len(self.matrix[0])
        self.latency = check_stages(stages)
        self.port = residue_port_interval(self.modulus)
        self.input_interval = self.port if input_interval is None else \
            check_interval("input_interval", input_interval)
        w = residue_width(self.modulus)
        x_shape = (unsigned(w) if self.input_interval == self.port
                   else signed(self.input_interval.width))
        super().__init__({"x": In(data.ArrayLayout(x_shape, self.cols ** 2)),
                          "y": Out(data.ArrayLayout(unsigned(w), self.rows ** 2))})

    @staticmethod
    def output_register(stages, element, rows):
        """Name of the register holding output ``element`` (row-major, ``rows × rows``): the
        reduction's last register, or ``None`` with no stage. Follows :meth:`elaborate`."""
        red = _split_stages(check_stages(stages), 3, (2, 1, 0))[2]
        return f"y{element // rows}_{element % rows}_d{red}" if red else None

    def elaborate(self, platform):
        m = Module()
        rows, cols, mod = self.rows, self.cols, self.modulus
        mv1, mv2, red = _split_stages(self.latency, 3, (2, 1, 0))
        plan = plan_matvec(self.matrix)
        z = [[None] * cols for _ in range(rows)]          # z[i][j] = (M X)[i][j], not reduced
        ziv = [[None] * cols for _ in range(rows)]
        for j in range(cols):
            ys, ivs = _matvec_into(m, plan, [self.x[i * cols + j] for i in range(cols)],
                                   [self.input_interval] * cols, mv1, f"c{j}")
            for i in range(rows):
                z[i][j], ziv[i][j] = ys[i], ivs[i]
        for i in range(rows):
            ys, ivs = _matvec_into(m, plan, z[i], ziv[i], mv2, f"w{i}")
            for k in range(rows):
                y = delay(m, reduce_into(m, ys[k], ivs[k], mod, f"w{i}_r{k}"), red,
                          f"y{i}_{k}", reset_less=True)
                m.d.comb += self.y[i * rows + k].eq(y)
        return m


class ModMulPE(ProcessingElement):
    """``p = a · b mod m``: one residue multiplier and a :class:`ModReduce`.

    The PE seam's ports and ``stages`` knob (:class:`~winogen.hw.pe.ProcessingElement`),
    with unsigned residue operands. One stage registers the result; two also
    register the operands; three also register the product before the
    reduction (the DSP's output register); further stages trail.

    Parameters
    ----------
    modulus : int
    stages : int
    a_interval : Interval, optional
        Range of ``a``: by default the residue port range; a wider one takes a
        partially reduced operand (``forward_reduction="partial"``, any value
        congruent to the residue), and the reduction after the product covers it.

    Members
    -------
    a : In(unsigned(residue_width(modulus)))
        Signed when ``a_interval`` reaches below 0.
    b : In(unsigned(residue_width(modulus)))
    p : Out(unsigned(residue_width(modulus)))
    """
    kind = "rns"

    def __init__(self, modulus, *, stages=0, a_interval=None):
        self.modulus = int(modulus)
        w = residue_width(self.modulus)
        self.b_interval = residue_port_interval(self.modulus)
        self.a_interval = self.b_interval if a_interval is None else \
            check_interval("a_interval", a_interval)
        a_shape = unsigned(w) if self.a_interval == self.b_interval else (
            signed(self.a_interval.width) if self.a_interval.lo < 0
            else unsigned(max(self.a_interval.hi.bit_length(), 1)))
        self.latency = check_stages(stages)
        self.output_interval = Interval(0, self.modulus - 1)
        self.product_interval = self.a_interval * self.b_interval
        wiring.Component.__init__(self, {"a": In(a_shape), "b": In(unsigned(w)),
                                         "p": Out(unsigned(w))})

    def combine(self, m, a, b):
        return a * b

    @classmethod
    def output_register(cls, stages):
        """Name of the register holding the reduced product ``p`` (its last register), or
        ``None`` when no register follows the reduction. Follows :meth:`elaborate`."""
        stages = check_stages(stages)
        trailing = stages - (stages >= 2) - (stages >= 3)   # operands, then the product
        return f"term_d{trailing}" if trailing else None

    @classmethod
    def operand_register(cls, stages):
        """Name of the register holding operand ``a`` (two stages or more), else ``None``."""
        return "a_d1" if check_stages(stages) >= 2 else None

    def elaborate(self, platform):
        m = Module()
        a, b, stages = self.a, self.b, self.latency
        if stages >= 2:
            a = delay(m, a, 1, "a", reset_less=True)
            b = delay(m, b, 1, "b", reset_less=True)
            stages -= 1
        iv = self.product_interval
        product = Signal(signed(iv.width) if iv.lo < 0 else unsigned(iv.hi.bit_length()),
                         name="product")
        m.d.comb += product.eq(self.combine(m, a, b))
        if stages >= 2:
            product = delay(m, product, 1, "product", reset_less=True)
            stages -= 1
        term = reduce_into(m, product, self.product_interval, self.modulus, "term")
        m.d.comb += self.p.eq(delay(m, term, stages, "term", reset_less=True))
        return m
