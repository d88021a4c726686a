"""Multiplierless constant-matrix arithmetic: adders, subtractors and shifts only.

The adder programs come from :mod:`winogen.gen.csd` and every width from
:mod:`winogen.gen.bounds`; this module only instantiates them. The components
are free-running pipelines in the ``sync`` domain with a latency of exactly
``stages`` cycles and no handshake: a stall is applied from outside by wrapping
them in :class:`~amaranth.hdl.EnableInserter`.
"""

import numbers

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..gen.bounds import Interval, matvec_intervals
from ..gen.csd import exact_divide_plan, plan_matvec
from .util import check_stages

__all__ = ["ConstMatVec", "ConstTransform2D", "ExactDivider", "program_output_registers",
           "matvec_output_registers", "transform2d_output_registers", "divider_output_register"]


def _check_intervals(name, intervals, count):
    if isinstance(intervals, Interval):
        return [intervals] * count
    try:
        intervals = list(intervals)
    except TypeError:
        raise TypeError(f"{name} must be an Interval or a sequence of Intervals, "
                        f"not {intervals!r}") from None
    for interval in intervals:
        if not isinstance(interval, Interval):
            raise TypeError(f"{name} must contain only Intervals, not {interval!r}")
    if len(intervals) != count:
        raise ValueError(f"{name} must have {count} intervals, not {len(intervals)}")
    return intervals


def _boundaries(depth, stages):
    """Adder levels after which a pipeline register is placed.

    ``stages <= depth``: the levels are cut into ``stages`` groups as even as
    possible (longer groups first), with a register after each group, so the
    output is registered. ``stages > depth``: a register after every level;
    the remaining ``stages - depth`` registers trail at the output.
    """
    if stages > depth:
        return list(range(1, depth + 1))
    sizes = [depth // stages + (i < depth % stages) for i in range(stages)]
    cuts, level = [], 0
    for size in sizes:
        level += size
        cuts.append(level)
    return cuts


def _node_register(name, source):
    """Name of the register right after the adder node ``source`` (at a stage boundary)."""
    return f"{name}_n{source}_q"


def _pass_register(name, source, stage):
    """Name of the pass-through register that holds ``source`` in pipeline stage ``stage``."""
    return f"{name}_v{source}_d{stage}"


def program_output_registers(plan, stages, name):
    """The register that holds each output of ``plan`` emitted with ``stages`` registers.

    Follows :func:`_emit_program`'s placement and naming (it uses the same helpers), so
    a fault campaign can find the register of an output without elaborating anything.

    Parameters
    ----------
    plan : MatVecPlan
    stages : int
    name : str
        The name prefix given to :func:`_emit_program`.

    Returns
    -------
    list
        Per output row: ``None`` when the output is a constant zero or not held in a
        register (combinational at the output: ``stages`` is 0 or the node's value is
        still a net in the last stage), else ``(signal, source, shift)``: the output is
        the register ``signal``, which holds program value ``source``, shifted left by
        ``shift``. Several rows may name the same register (a shared node).
    """
    cuts = _boundaries(plan.depth, stages)
    found = []
    for out in plan.outputs:
        if out is None:
            found.append(None)
            continue
        level = plan.level(out.source)
        first = sum(cut <= level for cut in cuts)
        if stages > first:
            found.append((_pass_register(name, out.source, stages), out.source, out.shift))
        elif out.source >= plan.cols and level in cuts:
            found.append((_node_register(name, out.source), out.source, out.shift))
        else:
            found.append(None)
    return found


def _emit_program(m, plan, inputs, stages, shape_of, name):
    """Instantiate ``plan`` on ``inputs``; returns each output at ``stages`` cycles.

    Node ``i`` computed at adder level ``L`` reads its operands as they are in
    pipeline stage ``#{cuts < L}``; an operand produced earlier is delayed by
    pass-through registers (shared between readers), so every path from input
    to output crosses exactly ``stages`` registers. Datapath registers have no
    reset: validity is tracked by whoever drives the pipeline.
    """
    cuts = _boundaries(plan.depth, stages)
    cols = plan.cols

    def ready(level):   # stage at which a value of this level leaves its group
        return sum(cut <= level for cut in cuts)

    def stage(level):   # stage in which a node of this level is computed
        return sum(cut < level for cut in cuts)

    chains = {}         # source -> [value at ready(level), +1 cycle, +2 cycles, ...]

    def at(source, when):
        chain = chains[source]
        first = ready(plan.level(source))
        assert when >= first
        while len(chain) <= when - first:
            prev = chain[-1]
            reg = Signal.like(prev, name=_pass_register(name, source, first + len(chain)),
                              reset_less=True)
            m.d.sync += reg.eq(prev)
            chain.append(reg)
        return chain[when - first]

    for source, value in enumerate(inputs):
        chains[source] = [value]

    for index, node in enumerate(plan.nodes):
        source = cols + index
        operands = [at(t.source, stage(node.level)).shift_left(t.shift) for t in node.terms]
        if len(operands) == 1:
            expr = -operands[0] if node.terms[0].sign < 0 else operands[0]
        elif node.terms[1].sign < 0:
            expr = operands[0] - operands[1]
        else:
            expr = operands[0] + operands[1]
        # The node's range is known exactly, so truncating the wider sum is lossless.
        comb = Signal(shape_of(source), name=f"{name}_n{source}")
        m.d.comb += comb.eq(expr)
        if node.level in cuts:
            reg = Signal(shape_of(source), name=_node_register(name, source), reset_less=True)
            m.d.sync += reg.eq(comb)
            chains[source] = [reg]
        else:
            chains[source] = [comb]

    return [None if out is None else at(out.source, stages).shift_left(out.shift)
            for out in plan.outputs]


def matvec_output_registers(matrix, inputs, stages):
    """The register of each output of ``ConstMatVec(matrix, inputs, stages=stages)``.

    Returns
    -------
    list
        Per row: ``None`` (no register holds it alone, see
        :func:`program_output_registers`) or ``(signal, width, shift)``: the row's value is
        the ``width``-bit register ``signal`` shifted left by ``shift``.
    """
    plan = plan_matvec(matrix)
    intervals = _check_intervals("inputs", inputs, plan.cols)
    found = []
    for reg in program_output_registers(plan, check_stages(stages), "t"):
        if reg is None:
            found.append(None)
            continue
        signal, source, shift = reg
        width = matvec_intervals([plan.coefficients(source)], intervals)[0].width
        found.append((signal, width, shift))
    return found


def transform2d_output_registers(matrix, element, stages):
    """The register of each output element of ``ConstTransform2D(matrix, element,
    stages=stages)`` (row-major).

    Returns
    -------
    list
        Per element: ``None`` or ``(submodule, signal, width, shift)``, the register being
        ``signal`` of the second pass's submodule ``submodule`` (``row<i>``).
    """
    plan = plan_matvec(matrix)
    rows, cols = plan.rows, plan.cols
    stages = check_stages(stages)
    element = _check_intervals("element", element, cols * cols)
    z = [matvec_intervals(plan.matrix, element[j::cols]) for j in range(cols)]
    found = []
    for i in range(rows):
        for reg in matvec_output_registers(plan.matrix, [z[j][i] for j in range(cols)],
                                           stages - stages // 2):
            found.append(None if reg is None else (f"row{i}", *reg))
    return found


def divider_output_register(divisor, output_width, stages):
    """The register of ``ExactDivider(divisor, …, stages=stages)``'s quotient of
    ``output_width`` bits: ``None`` or ``(signal, width, shift)``."""
    plan = exact_divide_plan(divisor, output_width)
    reg = program_output_registers(plan.plan, check_stages(stages), "d")[0]
    return None if reg is None else (reg[0], plan.out_width, reg[2])


class ConstMatVec(wiring.Component):
    """Product ``y = M x`` with a constant integer matrix, by shift-add trees.

    Each row is a balanced tree of the CSD terms of its entries, with pairs of
    terms that recur across (or within) rows shared (:func:`~winogen.gen.csd.plan_matvec`).
    Every adder output is a signal exactly as wide as the range of its value,
    computed from the input ranges by :func:`~winogen.gen.bounds.matvec_intervals`.
    ``stages`` registers are placed evenly across the adder levels; values that
    skip levels go through matching registers, so the latency is exactly
    ``stages``. More stages than adder levels add registers at the output.

    Parameters
    ----------
    matrix : sequence of sequences of int
        The constant matrix, ``rows x cols``.
    inputs : Interval or sequence of Interval
        The range of every input element, or of each one.
    stages : int
        Pipeline registers (latency in cycles); 0 is purely combinational.
    share : bool
        Share recurring pairs of terms (:func:`~winogen.gen.csd.plan_matvec`); its greedy
        search grows fast with the number of terms, so large matrices may turn it off.

    Members
    -------
    x : ``In(data.ArrayLayout(signed(w_in), cols))``
        Input vector; ``w_in`` is the widest input interval.
    y : ``Out(data.ArrayLayout(signed(w_out), rows))``
        Output vector, ``stages`` cycles after ``x``; ``w_out`` is the widest
        output interval.

    Attributes
    ----------
    plan : MatVecPlan
        The adder program.
    input_intervals, output_intervals : list of Interval
        Range of each input and (tight) range of each output element.
    latency : int
        Equal to ``stages``.
    adders : int
        Adders, subtractors and negators instantiated.
    """

    def __init__(self, matrix, inputs, *, stages=0, share=True):
        self._stages = check_stages(stages)
        self.plan = plan_matvec(matrix, share=share)
        self.input_intervals = _check_intervals("inputs", inputs, self.plan.cols)
        self.output_intervals = matvec_intervals(self.plan.matrix, self.input_intervals)
        w_in = max(iv.width for iv in self.input_intervals)
        w_out = max(iv.width for iv in self.output_intervals)
        super().__init__({
            "x": In(data.ArrayLayout(signed(w_in), self.plan.cols)),
            "y": Out(data.ArrayLayout(signed(w_out), self.plan.rows)),
        })

    @property
    def latency(self):
        return self._stages

    @property
    def adders(self):
        return self.plan.adders

    def elaborate(self, platform):
        m = Module()
        plan = self.plan

        # Inputs narrower than the port (per-element ranges) are truncated: lossless.
        inputs = []
        for j, interval in enumerate(self.input_intervals):
            x = Signal(signed(interval.width), name=f"x{j}")
            m.d.comb += x.eq(self.x[j])
            inputs.append(x)

        def shape_of(source):
            coeffs = plan.coefficients(source)
            return signed(matvec_intervals([coeffs], self.input_intervals)[0].width)

        outputs = _emit_program(m, plan, inputs, self._stages, shape_of, "t")
        for i, out in enumerate(outputs):
            m.d.comb += self.y[i].eq(0 if out is None else out)
        return m


class ConstTransform2D(wiring.Component):
    """Two-sided transform ``Y = M X Mᵀ`` with a constant integer matrix.

    ``X`` is ``cols x cols`` and ``Y`` is ``rows x rows``, both flattened
    row-major (element ``i * n + j`` is row ``i``, column ``j``; element 0 in
    the least significant bits). The first pass ``Z = M X`` is one
    :class:`ConstMatVec` per column of ``X``; the second pass computes row ``i``
    of ``Y`` as ``M`` times row ``i`` of ``Z``, one :class:`ConstMatVec` per row,
    each sized by the ranges of its own row of ``Z`` (they differ per row).

    Both passes use the same adder program and so have the same depth:
    ``stages // 2`` registers go to the first pass and the rest
    (``stages - stages // 2``) to the second, so an odd stage count registers
    the output.

    Parameters
    ----------
    matrix : sequence of sequences of int
        The constant matrix, ``rows x cols``.
    element : Interval or sequence of Interval
        The range of every element of ``X``, or of each (row-major).
    stages : int
        Pipeline registers (latency in cycles); 0 is purely combinational.

    Members
    -------
    x : ``In(data.ArrayLayout(signed(w_in), cols * cols))``
        Input tile, row-major.
    y : ``Out(data.ArrayLayout(signed(w_out), rows * rows))``
        Output tile, row-major, ``stages`` cycles after ``x``; ``w_out`` is
        the widest output interval.

    Attributes
    ----------
    plan : MatVecPlan
        The adder program of one 1-D pass (both passes use it).
    input_intervals, output_intervals : list of Interval
        Ranges of each element of ``X`` and (tight) of ``Y``, row-major.
    intermediate_intervals : list of list of Interval
        ``intermediate_intervals[i][j]`` is the range of ``Z[i][j]``.
    latency : int
        Equal to ``stages``.
    stages_split : (int, int)
        Registers in the first and second pass.
    adders : int
        ``(cols + rows) * plan.adders``.
    """

    def __init__(self, matrix, element, *, stages=0):
        self._stages = check_stages(stages)
        self.plan = plan_matvec(matrix)
        rows, cols = self.plan.rows, self.plan.cols
        self.input_intervals = _check_intervals("element", element, cols * cols)
        # z[j] is column j of Z = M X; its intervals are exact, so are Y's.
        z = [matvec_intervals(self.plan.matrix, self.input_intervals[j::cols])
             for j in range(cols)]
        self.intermediate_intervals = [[z[j][i] for j in range(cols)] for i in range(rows)]
        self.output_intervals = [iv for i in range(rows)
                                 for iv in matvec_intervals(self.plan.matrix,
                                                            self.intermediate_intervals[i])]
        self.stages_split = (self._stages // 2, self._stages - self._stages // 2)
        w_in = max(iv.width for iv in self.input_intervals)
        w_out = max(iv.width for iv in self.output_intervals)
        super().__init__({
            "x": In(data.ArrayLayout(signed(w_in), cols * cols)),
            "y": Out(data.ArrayLayout(signed(w_out), rows * rows)),
        })

    @property
    def latency(self):
        return self._stages

    @property
    def adders(self):
        return (self.plan.rows + self.plan.cols) * self.plan.adders

    def elaborate(self, platform):
        m = Module()
        rows, cols = self.plan.rows, self.plan.cols
        first, second = self.stages_split

        passes = []
        for j in range(cols):
            col = ConstMatVec(self.plan.matrix, self.input_intervals[j::cols], stages=first)
            m.submodules[f"col{j}"] = col
            for i in range(cols):
                m.d.comb += col.x[i].eq(self.x[i * cols + j])
            passes.append(col)

        for i in range(rows):
            row = ConstMatVec(self.plan.matrix, self.intermediate_intervals[i], stages=second)
            m.submodules[f"row{i}"] = row
            for j in range(cols):
                m.d.comb += row.x[j].eq(passes[j].y[i])
            for k in range(rows):
                m.d.comb += self.y[i * rows + k].eq(row.y[k])
        return m


class ExactDivider(wiring.Component):
    """Exact division ``y = x / divisor`` of values known to be multiples of it.

    Removes the scale of a Winograd transform without a divider or multiplier:
    with ``divisor = 2**k * q`` (``q`` odd) and ``w`` the width of the
    quotient, ``y`` is the low ``w`` bits of ``(x >> k) * q**-1``, read as
    signed; the product by the constant inverse is a CSD shift-add program
    (:func:`~winogen.gen.csd.exact_divide_plan`) computed modulo ``2**w``, so
    every adder is ``w`` bits wide. A divisor of 1 is a wire (plus ``stages``
    registers); a power of two is a shift. The result is meaningless for
    inputs that are not exact multiples.

    Parameters
    ----------
    divisor : int
        Positive divisor.
    input_interval : Interval
        The range of ``x``; it must contain a multiple of ``divisor``.
    stages : int
        Pipeline registers (latency in cycles); 0 is purely combinational.
    output_interval : Interval, optional
        The range of the quotient when it is known to be narrower than
        ``input_interval / divisor``; the result is exact whenever the true
        quotient lies in it.

    Members
    -------
    x : ``In(signed(input_interval.width))``
        Dividend.
    y : ``Out(signed(w))``
        Quotient, ``stages`` cycles after ``x``.

    Attributes
    ----------
    divide_plan : ExactDividePlan
        Shift, odd part, inverse and its CSD terms.
    output_interval : Interval
        Range of the quotient: the multiples of ``divisor`` in
        ``input_interval``, divided.
    latency : int
        Equal to ``stages``.
    adders : int
        Adders, subtractors and negators instantiated.
    """

    def __init__(self, divisor, input_interval, *, stages=0, output_interval=None):
        self._stages = check_stages(stages)
        if isinstance(divisor, bool) or not isinstance(divisor, numbers.Integral) or divisor < 1:
            raise ValueError(f"divisor must be a positive integer, not {divisor!r}")
        if not isinstance(input_interval, Interval):
            raise TypeError(f"input_interval must be an Interval, not {input_interval!r}")
        divisor = int(divisor)
        lo, hi = -(-input_interval.lo // divisor), input_interval.hi // divisor
        if lo > hi:
            raise ValueError(f"input_interval must contain a multiple of {divisor}, "
                             f"not {input_interval!r}")
        self.output_interval = Interval(lo, hi)
        if output_interval is not None:
            # A tighter range known from elsewhere (e.g. the exact convolution bound)
            # narrows every adder: the arithmetic is modulo 2**width anyway.
            if not isinstance(output_interval, Interval):
                raise TypeError(f"output_interval must be an Interval, not {output_interval!r}")
            self.output_interval = output_interval
        self.divide_plan = exact_divide_plan(divisor, self.output_interval.width)
        self._plan = self.divide_plan.plan
        super().__init__({
            "x": In(signed(input_interval.width)),
            "y": Out(signed(self.output_interval.width)),
        })

    @property
    def latency(self):
        return self._stages

    @property
    def adders(self):
        return self._plan.adders

    def elaborate(self, platform):
        m = Module()
        width = self.divide_plan.out_width
        # Exact multiple: the arithmetic shift drops only zeros; then only the
        # low `width` bits matter, as the product is taken modulo 2**width.
        shifted = Signal(signed(width))
        m.d.comb += shifted.eq(self.x.shift_right(self.divide_plan.shift))
        outputs = _emit_program(m, self._plan, [shifted], self._stages,
                                lambda source: signed(width), "d")
        m.d.comb += self.y.eq(outputs[0])
        return m
