"""Residue number system (RNS) Winograd tile engine.

One residue channel per modulus ``m_i`` of an :class:`~winogen.gen.rns.RNSTileConfig`
computes, in narrow modular arithmetic,

* ``V_i = Bᵀ d B mod m_i``: by default the exact binary ``V`` is computed once
  (:class:`~winogen.hw.constmat.ConstTransform2D`, shared) and forward converted
  into each channel (:func:`reduce_into`, or with ``forward_reduction="partial"``
  only folded into an 18-bit operand, :func:`fold_into`); with ``input_transform="residue"``
  ``d`` is forward converted and each channel runs :class:`ModTransform2D`
  (CSD shift-add trees of cheap residue constants, one reduction per output),
* ``P_i = U_i ⊙ V_i mod m_i`` with ``n²`` modular multipliers (:class:`ModMulPE`,
  a :class:`~winogen.hw.pe.ProcessingElement`), ``U_i`` streamed in
  offline-transformed residue form,
* optionally ``Σ_c P_i[c] mod m_i`` over input channels,
* ``Y_i = A_iᵀ P_i A_i mod m_i``;

then a mixed-radix converter per output element (:class:`MixedRadixConverter`)
turns the residues into signed binary, checks the redundant modulus if there is
one, and (method ``"scaled"``) :class:`~winogen.hw.constmat.ExactDivider` removes
``D²``. Every constant, range and width comes from :mod:`winogen.gen.rns`.

Reductions never assume their residue inputs are canonical: each block accepts
every value its ports can carry (``residue_port_interval``) and reduces it
exactly. A fault in one channel's register therefore stays a (wrong) residue of
that channel, which is what the redundant-modulus check needs to catch every
single-channel fault.
"""

from amaranth.hdl import EnableInserter, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..gen.bounds import Interval, matvec_intervals
from ..gen.csd import plan_matvec
from ..gen.csd import csd_digits
from ..gen.rns import (PARTIAL_OPERAND_WIDTH, RNSTileConfig, converter_levels, plan_reduction,
                       residue_constant, residue_port_interval, residue_width)
from .constmat import ConstTransform2D, ExactDivider, _emit_program
from .emit import LINT_WAIVERS
from .pe import ProcessingElement

__all__ = ["reduce_into", "fold_into", "forward_convert", "ModReduce", "ModTransform2D", "ModMulPE",
           "MixedRadixConverter", "converter_cuts", "residue_inputs", "reverse_convert", "RNSTile",
           "rns_manifest_section", "rns_tile_manifest", "generate_rns_tile"]


def _check_stages(stages):
    if not isinstance(stages, int) or isinstance(stages, bool) or stages < 0:
        raise ValueError(f"stages must be a non-negative integer, not {stages!r}")
    return stages


def _check_interval(name, value):
    if not isinstance(value, Interval):
        raise TypeError(f"{name} must be an Interval, not {value!r}")
    return value


def _delay(m, value, stages, name):
    """``value`` through ``stages`` registers (no reset: validity is tracked outside)."""
    for i in range(stages):
        reg = Signal.like(value, name=f"{name}_d{i + 1}", reset_less=True)
        m.d.sync += reg.eq(value)
        value = reg
    return value


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
        self.plan = plan_reduction(_check_interval("interval", interval), modulus)
        self.modulus = self.plan.modulus
        self.latency = _check_stages(stages)
        super().__init__({"x": In(signed(interval.width)),
                          "y": Out(unsigned(residue_width(self.modulus)))})

    def elaborate(self, platform):
        m = Module()
        y = reduce_into(m, self.x, self.plan.input, self.modulus, "r")
        m.d.comb += self.y.eq(_delay(m, y, self.latency, "r"))
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
        self.latency = _check_stages(stages)
        self.port = residue_port_interval(self.modulus)
        self.input_interval = self.port if input_interval is None else \
            _check_interval("input_interval", input_interval)
        w = residue_width(self.modulus)
        x_shape = (unsigned(w) if self.input_interval == self.port
                   else signed(self.input_interval.width))
        super().__init__({"x": In(data.ArrayLayout(x_shape, self.cols ** 2)),
                          "y": Out(data.ArrayLayout(unsigned(w), self.rows ** 2))})

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
                y = _delay(m, reduce_into(m, ys[k], ivs[k], mod, f"w{i}_r{k}"), red,
                           f"y{i}_{k}")
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
            _check_interval("a_interval", a_interval)
        a_shape = unsigned(w) if self.a_interval == self.b_interval else (
            signed(self.a_interval.width) if self.a_interval.lo < 0
            else unsigned(max(self.a_interval.hi.bit_length(), 1)))
        self.latency = _check_stages(stages)
        self.output_interval = Interval(0, self.modulus - 1)
        self.product_interval = self.a_interval * self.b_interval
        wiring.Component.__init__(self, {"a": In(a_shape), "b": In(unsigned(w)),
                                         "p": Out(unsigned(w))})

    def combine(self, m, a, b):
        return a * b

    def elaborate(self, platform):
        m = Module()
        a, b, stages = self.a, self.b, self.latency
        if stages >= 2:
            a = _delay(m, a, 1, "a")
            b = _delay(m, b, 1, "b")
            stages -= 1
        iv = self.product_interval
        product = Signal(signed(iv.width) if iv.lo < 0 else unsigned(iv.hi.bit_length()),
                         name="product")
        m.d.comb += product.eq(self.combine(m, a, b))
        if stages >= 2:
            product = _delay(m, product, 1, "product")
            stages -= 1
        term = reduce_into(m, product, self.product_interval, self.modulus, "term")
        m.d.comb += self.p.eq(_delay(m, term, stages, "term"))
        return m


def converter_cuts(moduli_count, stages):
    """The steps of :class:`MixedRadixConverter` followed by a register.

    Steps are digit 0's reduction (0), then for each digit ``j >= 1`` its linear form
    (``2j - 1``) and its reduction (``2j``), the weighted sum (``2k - 1``) and the sign,
    value and check (``2k``). Registers go between the
    :func:`~winogen.gen.rns.converter_levels` groups of similar depth (the first two
    steps together: digit 0 is a conditional subtraction), ``stages`` of them spread
    evenly, the last at the output.
    """
    # Group g (1-based) ends at step g, so a register after group g is a cut at step g.
    groups = converter_levels(moduli_count)
    return {round((s + 1) * groups / stages) for s in range(stages)}


class MixedRadixConverter(wiring.Component):
    """Reverse conversion of one value by mixed radix, with the redundant-modulus check.

    Digit ``a_j = (r_j - Σ_{l<j} a_l W_l) · W_j⁻¹ mod m_j`` (``W_j = m_0 ⋯ m_{j-1}``)
    is one constant linear form and one :class:`ModReduce`; then
    ``X = Σ a_l W_l`` over the non-redundant moduli, ``x = X - M`` when ``X ≥ ⌈M/2⌉``.
    With a redundant modulus (the last), ``error`` is set unless its digit is
    ``0`` (``x ≥ 0``) or ``m_r - 1`` (``x < 0``) and ``x`` lies in the exact result
    range: the value over all moduli must be a legitimate result.

    Parameters
    ----------
    config : RNSTileConfig

    Members
    -------
    r : In(ArrayLayout(unsigned(w_max), k))
        Residue ``i`` modulo ``moduli[i]``, any value of its ``residue_width`` bits.
    y : Out(signed(result_interval.width))
        The reconstructed value (``D²·Y`` for method "scaled"),
        ``converter_latency`` clocks later.
    error : Out(1)
        Only meaningful with a redundant modulus (else 0).
    """

    def __init__(self, config):
        if not isinstance(config, RNSTileConfig):
            raise TypeError(f"config must be an RNSTileConfig, not {config!r}")
        self.config = config
        self.latency = config.converter_latency
        w = max(config.residue_widths)
        super().__init__({"r": In(data.ArrayLayout(unsigned(w), len(config.moduli))),
                          "y": Out(signed(config.result_interval.width)),
                          "error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        mods = cfg.moduli
        k, kb = len(mods), len(cfg.base_moduli)
        # The steps of converter_cuts; a register after a step delays every live value.
        cuts = converter_cuts(k, self.latency)
        live = {("r", j): Signal(unsigned(residue_width(mi)), name=f"r{j}")
                for j, mi in enumerate(mods)}
        for j, sig in enumerate(live.values()):
            m.d.comb += sig.eq(self.r[j])

        def step_done(step, key=None, value=None):
            # ``value`` (stored under ``key``) joins the live values for the register.
            nonlocal live
            if key is not None:
                live[key] = value
            if step in cuts:
                live = {key: _delay(m, sig, 1, f"{key[0]}{key[1]}_l{step}")
                        for key, sig in live.items()}
            return live.pop(key) if key is not None else None

        weights = [1]
        for mi in mods:
            weights.append(weights[-1] * mi)
        for j, mj in enumerate(mods):
            inv = pow(weights[j] % mj, -1, mj) if mj > 1 else 0
            coeffs = [residue_constant(inv, mj)] + [residue_constant(-weights[l] * inv, mj)
                                                     for l in range(j)]
            ports = [residue_port_interval(mj)] + [Interval(0, mods[l] - 1) for l in range(j)]
            operands = [live.pop(("r", j))] + [live[("a", l)] for l in range(j)]
            ys, ivs = _matvec_into(m, plan_matvec([coeffs]), operands, ports, 0, f"s{j}")
            form = step_done(2 * j - 1, ("s", j), ys[0]) if j else ys[0]
            live[("a", j)] = reduce_into(m, form, ivs[0], mj, f"a{j}")
            step_done(2 * j)
        M = cfg.base_moduli.product
        ys, ivs = _matvec_into(m, plan_matvec([weights[:kb]]), [live[("a", l)] for l in range(kb)],
                               [Interval(0, mi - 1) for mi in mods[:kb]], 0, "X")
        unsigned_value = Signal(unsigned(max(M - 1, 1).bit_length()), name="X")
        m.d.comb += unsigned_value.eq(ys[0])      # 0 <= X < M: the digits are canonical
        X = step_done(2 * k - 1, ("X", ""), unsigned_value)
        # Sign, x and the check are three comparisons and a subtraction of X, side by
        # side: the check does not wait for x.
        neg = Signal(name="negative")
        m.d.comb += neg.eq(X >= (M + 1) // 2)
        value = Signal(signed(cfg.result_interval.width), name="value")
        m.d.comb += value.eq(X - Mux(neg, M, 0))
        error = Signal(name="inconsistent")
        if cfg.redundant_moduli:
            R = cfg.result_interval
            digit = live[("a", k - 1)]
            # x in [R.lo, R.hi] is X in [0, R.hi] or in [M + R.lo, M - 1] (R.lo <= 0 <= R.hi).
            m.d.comb += error.eq((digit != Mux(neg, mods[-1] - 1, 0))
                                 | ((X > R.hi) & (X < M + R.lo)))
        if 2 * k in cuts:
            value, error = _delay(m, value, 1, "y"), _delay(m, error, 1, "err")
        m.d.comb += [self.y.eq(value), self.error.eq(error)]
        return m


def _signature(config):
    count, width = config.weight_payload
    members = {
        "tiles": In(stream.Signature(data.ArrayLayout(signed(config.data_width), config.n ** 2))),
        "weights": In(stream.Signature(data.ArrayLayout(unsigned(width), count))),
        "outputs": Out(stream.Signature(data.ArrayLayout(signed(config.output_width),
                                                         config.m ** 2))),
    }
    if config.redundant_moduli:
        members["error"] = Out(1)
    return members


class RNSTile(wiring.Component):
    """RNS Winograd F(m×m, r×r) tile engine: ``k·n²`` modular multipliers.

    Parameters
    ----------
    config : RNSTileConfig

    Members
    -------
    tiles : In(stream.Signature(ArrayLayout(signed(data_width), n*n)))
        One input tile per beat, row-major; with ``channels > 1`` the tiles of
        channels 0 … C-1 of one output tile are consecutive beats.
    weights : In(stream.Signature(ArrayLayout(unsigned(w), k*C*n*n)))
        Offline ``U_i[c] = G_i g_c G_iᵀ mod m_i``; element ``(i·C + c)·n² + j``
        (:meth:`~winogen.gen.rns.RNSTileModel.weight_beat`). A beat applies to
        every output tile whose first channel is accepted after it. It is accepted only
        between channel groups: offered mid-group, it waits while the group's remaining
        tiles are accepted; offered between groups, it goes first (no tile is accepted
        while it is offered).
    outputs : Out(stream.Signature(ArrayLayout(signed(output_width), m*m)))
        ``Y``, row-major: the exact correlation, summed over channels.
    error : Out(1)
        With a redundant modulus: valid with ``outputs.valid``; set when the
        residues of that output tile are inconsistent (a fault).
    """

    def __init__(self, config):
        if not isinstance(config, RNSTileConfig):
            raise TypeError(f"config must be an RNSTileConfig, not {config!r}")
        self.config = config
        super().__init__(_signature(config))

    @property
    def latency(self):
        return self.config.latency

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        n2, mm, C, k = cfg.n ** 2, cfg.m ** 2, cfg.channels, len(cfg.moduli)
        tr = cfg.transforms

        en = Signal()
        m.d.comb += en.eq(~self.outputs.valid | self.outputs.ready)

        # Valid chains: front (input transform, PEs), back (accumulator, output
        # transform, converter, descale).
        tile_accept, weight_accept = Signal(), Signal()
        front_len = cfg.input_stages + cfg.pe_stages
        front = Signal(front_len, name="front_valid") if front_len else None
        if front_len:
            with m.If(en):
                m.d.sync += front.eq((front << 1) | tile_accept)

        def front_at(stages):
            return front[stages - 1] if stages else tile_accept

        at_pe_in = front_at(cfg.input_stages)
        at_pe_out = front_at(front_len)

        # Input-side channel position: weights load only at output-tile boundaries.
        in_first = Signal(init=1)
        if C > 1:
            in_pos = Signal(range(C), name="in_pos")
            with m.If(tile_accept):
                m.d.sync += in_pos.eq(Mux(in_pos == C - 1, 0, in_pos + 1))
            m.d.comb += in_first.eq(in_pos == 0)
        waiting = front[:cfg.input_stages].any() if cfg.input_stages else 0
        # Ordering rule: a weight beat is accepted only between channel groups, and it has
        # priority there; inside a group tiles keep flowing whatever weights.valid says,
        # so a weight beat offered mid-group waits for the group to close instead of
        # blocking the tiles that would close it (which deadlocked).
        weight_blocks_tiles = self.weights.valid & in_first if C > 1 else self.weights.valid
        m.d.comb += [
            self.weights.ready.eq(~waiting & in_first),
            weight_accept.eq(self.weights.valid & self.weights.ready),
            self.tiles.ready.eq(en & ~weight_blocks_tiles),
            tile_accept.eq(self.tiles.valid & self.tiles.ready),
        ]

        # Filter bank: one block of k·n² residues per input channel; the head
        # feeds the PEs and the bank rotates as each tile enters them.
        count, width = cfg.weight_payload
        bank = [Signal(data.ArrayLayout(unsigned(width), k * n2), name=f"filter{c}")
                for c in range(C)]
        with m.If(weight_accept):
            for c in range(C):
                for i in range(k):
                    for j in range(n2):
                        m.d.sync += bank[c][i * n2 + j].eq(
                            self.weights.payload[(i * C + c) * n2 + j])
        if C > 1:
            with m.Elif(en & at_pe_in):
                for c in range(C):
                    m.d.sync += bank[c].eq(bank[(c + 1) % C])
        head = bank[0]

        # Accumulation over channels (back chain stage 1 when C > 1).
        acc_first, acc_last = Signal(), Signal()
        if C > 1:
            acc_pos = Signal(range(C), name="acc_pos")
            with m.If(en & at_pe_out):
                m.d.sync += acc_pos.eq(Mux(acc_pos == C - 1, 0, acc_pos + 1))
            m.d.comb += [acc_first.eq(acc_pos == 0), acc_last.eq(acc_pos == C - 1)]
            back_in = at_pe_out & acc_last
        else:
            back_in = at_pe_out
        descale = cfg.descale_stages if cfg.scale_divisor != 1 else 0
        back_len = int(C > 1) + cfg.output_stages + cfg.converter_latency + descale
        if back_len:
            back = Signal(back_len, name="back_valid")
            with m.If(en):
                m.d.sync += back.eq((back << 1) | back_in)
            m.d.comb += self.outputs.valid.eq(back[-1])
        else:
            m.d.comb += self.outputs.valid.eq(back_in)

        dp = Module()
        inputs = residue_inputs(dp, cfg, self.tiles.payload)
        residues = []                      # per modulus: m² residues of Y_i
        for i, mi in enumerate(cfg.moduli):
            w = residue_width(mi)
            v = inputs[i]
            products = []
            for j in range(n2):
                pe = ModMulPE(mi, stages=cfg.pe_stages, a_interval=cfg.pe_a_intervals[i][j])
                dp.submodules[f"ch{i}_pe{j}"] = pe
                dp.d.comb += [pe.a.eq(v[j]), pe.b.eq(head[i * n2 + j])]
                products.append(pe.p)
            if C > 1:
                port = residue_port_interval(mi)
                summed = []
                for j, p in enumerate(products):
                    acc = Signal(unsigned(w), name=f"ch{i}_acc{j}", reset_less=True)
                    add = reduce_into(dp, acc + p, port + port, mi, f"ch{i}_sum{j}")
                    with dp.If(at_pe_out):
                        dp.d.sync += acc.eq(Mux(acc_first, p, add))
                    summed.append(acc)
                products = summed
            ot = ModTransform2D(tr.AT[i], mi, stages=cfg.output_stages)
            dp.submodules[f"ch{i}_output"] = ot
            for j in range(n2):
                dp.d.comb += ot.x[j].eq(products[j])
            residues.append(ot.y)

        result = Signal(data.ArrayLayout(signed(cfg.output_width), mm), name="result")
        values, error = reverse_convert(dp, cfg, residues)
        for e, y in enumerate(values):
            dp.d.comb += result[e].eq(y)
        m.submodules.datapath = EnableInserter(en)(dp)
        m.d.comb += self.outputs.payload.eq(result)
        if cfg.redundant_moduli:
            m.d.comb += self.error.eq(error)
        return m


def residue_inputs(m, config, tile, prefix=""):
    """Forward conversion of one input tile into every residue channel.

    Emits into ``m`` either one exact binary ``V = Bᵀ d B`` and its reduction modulo each
    modulus (``input_transform="binary"``), or the reduction of ``d`` and a
    :class:`ModTransform2D` per modulus (``"residue"``). ``tile`` holds the ``n²``
    signed elements of ``d``; returns, per modulus, the ``n²`` residues of ``V_i``
    (with ``forward_reduction="partial"``, values congruent to them in
    ``config.pe_a_intervals``), ``config.input_stages`` cycles later.
    """
    cfg, n2 = config, config.n ** 2
    residues = []
    if cfg.input_transform == "binary":
        # One exact binary V = Bᵀ d B shared by every channel.
        shared = ConstTransform2D(cfg.input_matrix, cfg.data_interval, stages=cfg.input_stages)
        m.submodules[f"{prefix}input_transform"] = shared
        m.d.comb += shared.x.eq(tile)
        for i, mi in enumerate(cfg.moduli):
            residues.append([forward_convert(m, cfg, shared.y[j], shared.output_intervals[j],
                                             mi, f"{prefix}ch{i}_v{j}") for j in range(n2)])
        return residues
    for i, mi in enumerate(cfg.moduli):
        it = ModTransform2D(cfg.transforms.BT[i], mi, stages=cfg.input_stages)
        m.submodules[f"{prefix}ch{i}_input"] = it
        for j in range(n2):
            # Forward conversion: the signed input element modulo m_i.
            m.d.comb += it.x[j].eq(reduce_into(m, tile[j], cfg.data_interval, mi,
                                               f"{prefix}ch{i}_d{j}"))
        residues.append([it.y[j] for j in range(n2)])
    return residues


def reverse_convert(m, config, residues, prefix=""):
    """Reverse conversion of output residues: mixed radix, check, scale removal.

    ``residues[i][e]`` is output element ``e`` modulo ``moduli[i]``. Emits a
    :class:`MixedRadixConverter` per element (and an
    :class:`~winogen.hw.constmat.ExactDivider` for method ``"scaled"``) into ``m``;
    returns ``(values, error)``, the signed outputs and the OR of the elements'
    redundant-modulus checks, ``converter_latency + descale_stages`` cycles later.
    """
    cfg = config
    descale = cfg.descale_stages if cfg.scale_divisor != 1 else 0
    values, error = [], 0
    for e in range(len(residues[0])):
        conv = MixedRadixConverter(cfg)
        m.submodules[f"{prefix}convert{e}"] = conv
        for i in range(len(cfg.moduli)):
            m.d.comb += conv.r[i].eq(residues[i][e])
        y, err = conv.y, conv.error
        if cfg.scale_divisor != 1:
            div = ExactDivider(cfg.scale_divisor, cfg.result_interval, stages=descale,
                               output_interval=cfg.output_interval)
            m.submodules[f"{prefix}descale{e}"] = div
            m.d.comb += div.x.eq(y)
            y, err = div.y, _delay(m, err, descale, f"{prefix}err{e}")
        values.append(y)
        error = error | err
    return values, error


# --------------------------------------------------------------------------
# Manifest and generation
# --------------------------------------------------------------------------

def rns_manifest_section(config):
    """The manifest's ``"rns"`` entry: moduli, method, range, matrices, error flag."""
    cfg = config
    tr = cfg.transforms
    return {
        "moduli": list(cfg.moduli),
        "non_redundant": list(cfg.base_moduli.moduli),
        "redundant": list(cfg.moduli[len(cfg.base_moduli):]),
        "product": str(cfg.base_moduli.product),
        "method": cfg.method_used,
        "method_note": ("integer-scaled matrices; the scale D² is divided out exactly "
                        "after reverse conversion" if cfg.method_used == "scaled" else
                        "rational entries a/b mapped to a·b⁻¹ mod m_i"),
        "result_range": [str(cfg.result_interval.lo), str(cfg.result_interval.hi)],
        "reverse_conversion": "mixed radix",
        "residue_widths": list(cfg.residue_widths),
        "input_transform": cfg.input_transform,
        "forward_reduction": cfg.forward_reduction,
        "multiplier": cfg.multiplier_description,
        "matrices": {"AT": [list(map(list, M)) for M in tr.AT],
                     "G": [list(map(list, M)) for M in tr.G],
                     "BT": [list(map(list, M)) for M in tr.BT]},
        "error_flag": ("error is valid with outputs.valid: 1 when the output tile's value "
                       "over all moduli is not a legitimate result (a fault)"
                       if cfg.redundant_moduli else None),
    }


def rns_tile_manifest(config, component):
    """The manifest of an RNS tile engine (a JSON-ready dict)."""
    from .generate import port_table, tool_versions
    cfg = config
    tc = cfg.toomcook
    count, wwidth = cfg.weight_payload
    return {
        "name": cfg.module_name,
        "kind": "rns_tile",
        "verilog": [f"{cfg.module_name}.v"],
        "top": cfg.module_name,
        "parameters": cfg.to_json(),
        "algorithm": {
            "name": f"F({cfg.m}x{cfg.m}, {cfg.r}x{cfg.r})", "kind": "winograd",
            "m": cfg.m, "r": cfg.r, "n": cfg.n, "points": [str(p) for p in tc.points],
            "rational": tc.matrices("G").to_json(),
        },
        "rns": rns_manifest_section(cfg),
        "ports": port_table(component),
        "streams": {
            "tiles": {"shape": [cfg.n, cfg.n], "element_width": cfg.data_width,
                      "description": "input tile d, row-major: element i*n+j is d[i][j]; "
                                     f"{cfg.channels} consecutive beats (channels 0..C-1) "
                                     "per output tile"},
            "weights": {"shape": [len(cfg.moduli), cfg.channels, cfg.n, cfg.n],
                        "element_width": wwidth,
                        "format": "residues U_i[c] = G_i g_c G_i^T mod m_i "
                                  "(winogen.gen.rns.RNSTileModel.weight_beat), unsigned",
                        "description": "a beat applies to every output tile whose first "
                                       "channel is accepted after it"},
            "outputs": {"shape": [cfg.m, cfg.m], "element_width": cfg.output_width,
                        "description": "Y = correlation of the tile with the filter, summed "
                                       "over the channels"},
        },
        "handshake": "a beat transfers on a rising clk edge where valid and ready are both 1; "
                     "valid never waits for ready, and payload is held while valid and not ready",
        "latency": cfg.latency,
        "initiation_interval": cfg.initiation_interval,
        "multipliers": cfg.multipliers,
        "multiplier_width": cfg.multiplier_width,
        "processing_elements": cfg.multipliers,
        "pe": "rns",
        "widths": {"data": cfg.data_width, "weight": cfg.weight_width,
                   "output": cfg.output_width, "weight_payload": wwidth,
                   "result": cfg.result_interval.width},
        "scale": {"divisor": cfg.scale_divisor, "kept": False,
                  "removal": "none" if cfg.scale_divisor == 1 else
                  "exact division after reverse conversion"},
        "lint_waivers": LINT_WAIVERS,
        "tools": tool_versions(),
    }


def generate_rns_tile(config, out_dir):
    """Generate an RNS tile engine into ``out_dir``; return ``(verilog, manifest_path, manifest)``."""
    from .generate import emit_engine
    if not isinstance(config, RNSTileConfig):
        raise TypeError(f"config must be an RNSTileConfig, not {config!r}")
    return emit_engine(config, RNSTile(config), rns_tile_manifest, out_dir)
