"""The layer engines' compute cores (one interface): :class:`WinogradCore`, :class:`DirectCore`."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ...gen.bounds import Interval
from ...gen.harden import COPIES
from ...gen.pe import pe_kind as _pe_kind
from ..constmat import (ConstMatVec, ConstTransform2D, ExactDivider, divider_output_register,
                        matvec_output_registers, transform2d_output_registers)
from ..harden import COPY_PREFIX, harden_block
from ..pe import PEArray, pe_component
from ..util import delay
from ..winoquant import RoundShift, VQuantizer
from .layouts import _check_config, _weight_shape

__all__ = ["lane_sum_stages", "core_latency", "ChannelAccumulator", "ACCUMULATOR_STAGES",
           "WinogradCore", "DirectCore", "has_dmr"]


#: Cycles of the channel accumulator: an input register, then the accumulator register.
ACCUMULATOR_STAGES = 2

# Submodule names of the cores' blocks (the fault sites of the manifest name them too).
_INPUT_TRANSFORM = "input_transform{i}"
_PE_ARRAY = "pe_array"
_LANE_SUM = "lane_sum_o{j}_e{e}"
_DIRECT_SUM = "sum_o{j}_k{k}"
_ACCUMULATOR = "accumulator"
_OUTPUT_TRANSFORM = "output_transform{j}"
_DESCALE = "descale_o{j}_e{e}"
_QUANTIZER = "quantizer{i}"


def block_copies(config, site):
    """``(copy, path prefix)`` of each copy of a block of site class ``site``: one copy
    with no prefix, or the copies of :class:`~winogen.hw.harden.Replicated`."""
    scheme = dict(getattr(config, "harden", ())).get(site)
    if scheme is None:
        return [(0, "")]
    return [(k, f"{COPY_PREFIX}{k}.") for k in range(COPIES[scheme])]


def _term_interval(config, interval, lane):
    """The range of a PE term on input lane ``lane`` as the lane sums take it
    (:meth:`_Core._masked_terms`: masked lanes may be 0)."""
    c = config
    if not c.masks_lanes or c.p_in == 1 or lane == 0:
        return interval
    return interval.hull(Interval(0, 0))


def _site(delay, step, registers):
    return {"delay": delay, "step": step, "registers": registers}


def _grouped(found):
    """Output registers (``(path, width, shift)`` or ``None`` per element) grouped by
    register: ``[(path, width, [(element, shift), ...])]``, in element order."""
    groups = {}
    for e, reg in enumerate(found):
        if reg is None:
            continue
        path, width, shift = reg
        groups.setdefault((path, width), []).append((e, shift))
    return [(path, width, values) for (path, width), values in groups.items()]


def _register(name, width, copy, values, **lanes):
    return {"name": name, "width": width, "lsb": 0, "copy": copy, **lanes,
            "values": [{"element": e, "shift": shift} for e, shift in values]}


def lane_sum_stages(config):
    """Registers of the Winograd sum over ``P_in`` lanes: one per two adder levels."""
    levels = ceil_log2(config.p_in)
    return (levels + 1) // 2


def core_latency(config):
    """Cycles from a step's tiles entering the core to its result (on the last group).

    The core is the one the engine registry (:mod:`winogen.hw.engines`) picks for ``config``.
    """
    from ..engines import layer_engine_class
    return layer_engine_class(config).core_class.pipeline_latency(config)


class ChannelAccumulator(wiring.Component):
    """Sums a core's per-step results over the channel groups of one output tile.

    The inputs are registered first (:data:`ACCUMULATOR_STAGES` − 1 registers: the
    partial sums come from the PE array and the accumulator feeds the output transform,
    so the placer needs a register to split that distance). Then a valid step with
    ``first`` loads, a later valid step adds, and ``y_valid`` is set after a valid step
    with ``last``. Free-running.

    Parameters
    ----------
    input_intervals, acc_intervals : list of Interval
        Range of each input element and of each accumulated element (its width).

    Members
    -------
    x : In(ArrayLayout(signed(w_in), count))
    valid, first, last : In(1)
    y : Out(ArrayLayout(signed(w_acc), count))
    y_valid : Out(1)
    """

    def __init__(self, input_intervals, acc_intervals):
        if len(input_intervals) != len(acc_intervals) or not input_intervals:
            raise ValueError(f"input_intervals and acc_intervals must be non-empty and of equal "
                             f"length, not {len(input_intervals)} and {len(acc_intervals)}")
        self.input_intervals = list(input_intervals)
        self.acc_intervals = list(acc_intervals)
        count = len(acc_intervals)
        super().__init__({
            "x": In(data.ArrayLayout(signed(max(iv.width for iv in input_intervals)), count)),
            "valid": In(1), "first": In(1), "last": In(1),
            "y": Out(data.ArrayLayout(signed(max(iv.width for iv in acc_intervals)), count)),
            "y_valid": Out(1),
        })

    #: Name prefix of element ``e``'s input registers (``in_x<e>_d1``, …).
    INPUT_NAME = "in_x{}"

    @staticmethod
    def acc_name(e):
        """Name of element ``e``'s accumulator register."""
        return f"acc{e}"

    @classmethod
    def input_register(cls, e):
        """Name of element ``e``'s last input register (it holds the step's input)."""
        return f"{cls.INPUT_NAME.format(e)}_d{ACCUMULATOR_STAGES - 1}"

    def elaborate(self, platform):
        m = Module()
        front = ACCUMULATOR_STAGES - 1
        valid = delay(m, self.valid, front, "in_valid", reset_less=False)
        first = delay(m, self.first, front, "in_first", reset_less=False)
        last = delay(m, self.last, front, "in_last", reset_less=False)
        for e, (x_iv, acc_iv) in enumerate(zip(self.input_intervals, self.acc_intervals)):
            x = Signal(signed(x_iv.width), name=f"x{e}")
            acc = Signal(signed(acc_iv.width), name=self.acc_name(e), reset_less=True)
            m.d.comb += [x.eq(delay(m, self.x[e][:x_iv.width], front, self.INPUT_NAME.format(e),
                                    reset_less=True)),
                         self.y[e].eq(acc)]
            # The sum of up to max_cin channels lies in acc_iv: truncation is lossless.
            with m.If(valid):
                m.d.sync += acc.eq(Mux(first, x, acc + x))
        m.d.sync += self.y_valid.eq(valid & last)
        return m


def _core_signature(config):
    c = config
    dw = c.tile.data_width
    count, width = c.core_weight
    members = {
        "tiles": In(data.ArrayLayout(data.ArrayLayout(signed(dw), c.n * c.n), c.p_in)),
        "weights": In(data.ArrayLayout(data.ArrayLayout(_weight_shape(c, width), count),
                                       c.p_out * c.p_in)),
        "valid": In(1), "first": In(1), "last": In(1),
        "lane_valid": In(c.p_in),
        "result": Out(data.ArrayLayout(signed(c.full_output_width), c.p_out * c.m * c.m)),
        "result_valid": Out(1),
    }
    if has_dmr(c):
        members["result_error"] = Out(1)
    return members


def has_dmr(config):
    """Whether a block of the engine is duplicated and compared (it then has ``error``)."""
    return any(scheme == "dmr" for _, scheme in getattr(config, "harden", ()))


class _Core(wiring.Component):
    """The compute core interface (free-running: the engine never stalls it).

    Members
    -------
    tiles : In(ArrayLayout(ArrayLayout(signed(dw), n*n), p_in))
        The step's input tiles.
    weights : In(ArrayLayout(ArrayLayout(signed(sw), count), p_out*p_in))
        The step's stored filters, sampled ``weight_delay`` cycles after ``tiles``.
    valid, first, last : In(1)
        The step's flags, with ``tiles``.
    lane_valid : In(p_in)
        Per input lane: its channel is ``< C_in``, with ``tiles``. Used by non-bilinear
        PE kinds (:attr:`~winogen.gen.layer.LayerConfig.masks_lanes`), whose terms on
        unused lanes are masked to 0; bilinear kinds get zero tiles there instead.
    result : Out(ArrayLayout(signed(full_output_width), p_out*m*m))
        The output tile of each output channel lane, ``latency`` cycles after the step
        with ``last``.
    result_valid : Out(1)
    """

    algorithm = None

    def __init__(self, config):
        self.config = _check_config(config)
        if config.algorithm != self.algorithm:
            raise ValueError(f"config.algorithm must be {self.algorithm!r} for "
                             f"{type(self).__name__}, not {config.algorithm!r}")
        super().__init__(self._signature(config))
        self._mismatches = []       # (mismatch signal, cycles after the step entered)

    @classmethod
    def _signature(cls, config):
        """The component's members (a core with more ports extends them)."""
        return _core_signature(config)

    @classmethod
    def pipeline_latency(cls, config):
        """Cycles from a step's tiles entering this core to its result (on the last group)."""
        raise NotImplementedError

    @property
    def latency(self):
        return self.pipeline_latency(self.config)

    @classmethod
    def fault_registers(cls, config):
        """The registers that hold the fault model's values
        (:class:`~winogen.gen.faultmodel.LayerFaultModel`), by site class.

        Derived from the names and stage counts this core builds with (no elaboration).

        Returns
        -------
        dict
            Site class -> ``{"delay", "step", "registers"}``: ``delay`` is the number of
            clock edges after the cycle in which a step's tiles are at the core's inputs
            (``valid`` high) at which the registers hold that step's values; ``step`` is
            ``"each"`` (every step's values, input-channel group ``cig``) or ``"last"``
            (the tile's values after its last step); each register is ``{"name"`` (path
            relative to the core), ``"width"``, ``"lsb"``, ``"copy"`` (hardened copy),
            ``"cout_lane"``/``"cin_lane"`` where the class has them, ``"values"``: the
            elements it holds, each ``{"element", "shift"}`` (the element is the
            register shifted left by ``shift``)``}``. A class whose values no register
            holds alone (e.g. 0 stages) is left out.
        """
        raise NotImplementedError

    @staticmethod
    def _pe_registers(config, entry, value_of):
        """The products' registers: ``value_of(lane)`` gives a PE's lanes and value keys."""
        c, t = config, config.tile
        lanes = c.p_out * c.p_in
        a_ivs, b_ivs = t.pe_a_intervals * lanes, t.pe_b_intervals * lanes
        dsp = getattr(t, "dsp", "inferred")
        pe_class = pe_component(t.pe_kind.name, dsp)
        name = pe_class.output_register(t.pe_stages)
        if name is None:
            return None
        kind = _pe_kind(t.pe)
        regs = []
        for copy, prefix in block_copies(c, "products"):
            for k in range(len(a_ivs)):
                width = kind.output_interval(a_ivs[k], b_ivs[k]).width
                lanes_k, value = value_of(k)
                regs.append({"name": f"{_PE_ARRAY}.{prefix}{PEArray.pe_name(k)}.{name}",
                             "width": width, "lsb": 0, "copy": copy, **lanes_k,
                             "values": [{**value, "shift": 0}]})
        return _site(entry + t.pe_stages, "each", regs)

    @staticmethod
    def _sum_registers(config, tree_name, term_ivs, stages, at, acc_element):
        """Lane sums: each tree's output register, or (trees without registers) the
        accumulator's input register one cycle later."""
        c = config
        regs, fallback = [], False
        for copy, prefix in block_copies(c, "lane_sums"):
            for (j, e), ivs in term_ivs.items():
                (reg,) = matvec_output_registers([[1] * len(ivs)], ivs, stages)
                if reg is None:
                    fallback = True
                    break
                regs.append(_register(f"{tree_name(j, e)}.{prefix}{reg[0]}", reg[1], copy,
                                      [(e, reg[2])], cout_lane=j))
        if not fallback:
            return _site(at, "each", regs)
        if dict(getattr(c, "harden", ())).get("accumulation") or \
                dict(getattr(c, "harden", ())).get("lane_sums"):
            return None     # a copy's input register is not the model's lane sum
        from ...gen.bounds import matvec_intervals
        regs = []
        for (j, e), ivs in term_ivs.items():
            width = matvec_intervals([[1] * len(ivs)], ivs)[0].width
            regs.append(_register(
                f"{_ACCUMULATOR}.{ChannelAccumulator.input_register(acc_element(j, e))}",
                width, 0, [(e, 0)], cout_lane=j))
        return _site(at + ACCUMULATOR_STAGES - 1, "each", regs)

    @staticmethod
    def _acc_registers(config, at, count):
        c = config
        n = count // c.p_out
        regs = [_register(f"{_ACCUMULATOR}.{prefix}{ChannelAccumulator.acc_name(j * n + e)}",
                          c.accumulator_intervals[e].width, copy, [(e, 0)], cout_lane=j)
                for copy, prefix in block_copies(c, "accumulation")
                for j in range(c.p_out) for e in range(n)]
        return _site(at, "each", regs)

    def _pe_array(self, m, entry=0):
        """The ``P_out·P_in`` tiles' PEs, lane ``(j·P_in + i)·k + e`` for the tile's PE ``e``."""
        t, lanes = self.config.tile, self.config.p_out * self.config.p_in
        pes, scheme = harden_block(self.config, "products", lambda: PEArray(
            t.pe, t.pe_a_intervals * lanes, t.pe_b_intervals * lanes, stages=t.pe_stages,
            dsp=getattr(t, "dsp", "inferred")))
        m.submodules[_PE_ARRAY] = pes
        self._check_block(pes, scheme, entry + t.pe_stages)
        return pes

    def _check_block(self, block, scheme, at):
        """Record a duplicated block's ``mismatch``, ``at`` cycles after the step enters the
        core (the cycle its outputs hold that step's values)."""
        if scheme == "dmr":
            self._mismatches.append((block.mismatch, at))

    def _error_path(self, m, front, back):
        """``result_error``: mismatches before the accumulator (OR over a tile's channel
        groups, like the sums), the accumulator's own, and those after it, each delayed
        to meet the result ``back`` cycles after the accumulator's output."""
        if "result_error" not in self.signature.members:
            return
        pre = [delay(m, mm, front - at, f"mismatch{k}", reset_less=False)
               for k, (mm, at) in enumerate(self._mismatches) if at <= front]
        post = [(mm, at) for mm, at in self._mismatches if at > front]
        hold = ACCUMULATOR_STAGES - 1          # the accumulator's input register
        flag = delay(m, Cat(*pre).any() if pre else 0, hold, "pre_error", reset_less=False)
        valid = delay(m, self.valid, front + hold, "err_valid", reset_less=False)
        first = delay(m, self.first, front + hold, "err_first", reset_less=False)
        tile_error = Signal(name="tile_error")
        with m.If(valid):
            m.d.sync += tile_error.eq(Mux(first, flag, tile_error | flag))
        at_acc = front + ACCUMULATOR_STAGES    # acc.y (and y_valid) hold the finished tile
        terms = [delay(m, tile_error, back, "acc_error", reset_less=False)]
        for k, (mm, at) in enumerate(post):
            terms.append(delay(m, mm, at_acc + back - at, f"post_mismatch{k}",
                               reset_less=False))
        m.d.comb += self.result_error.eq(Cat(*terms).any())

    def _accumulate(self, m, partial, partial_iv, front):
        """Sum ``partial`` (valid ``front`` cycles after the step) over the channel groups."""
        c = self.config
        acc, scheme = harden_block(c, "accumulation", lambda: ChannelAccumulator(
            partial_iv, list(c.accumulator_intervals) * c.p_out))
        m.submodules[_ACCUMULATOR] = acc
        # Compared where the finished tile is read out (a flip in any group persists).
        self._check_block(acc, scheme, front + ACCUMULATOR_STAGES)
        for k, value in enumerate(partial):
            m.d.comb += acc.x[k].eq(value)
        m.d.comb += [acc.valid.eq(delay(m, self.valid, front, "valid", reset_less=False)),
                     acc.first.eq(delay(m, self.first, front, "first", reset_less=False)),
                     acc.last.eq(delay(m, self.last, front, "last", reset_less=False))]
        return acc

    def _masked_terms(self, m, pes, lane_of, cycles):
        """The PE terms, those of lanes beyond ``C_in`` replaced by 0 when the kind needs it.

        ``lane_of(k)`` is the input lane of PE ``k``; ``cycles`` the cycles from ``tiles``
        to the PE outputs. Lane 0 always holds a channel (``C_in >= 1``) and is never
        masked. Returns ``(terms, intervals)``; a masked term's range includes 0.
        """
        c = self.config
        terms, intervals = list(pes.p), list(pes.output_intervals)
        if not c.masks_lanes or c.p_in == 1:
            return terms, intervals
        keep = delay(m, self.lane_valid, cycles, "lane_valid", reset_less=False)
        for k, iv in enumerate(intervals):
            i = lane_of(k)
            if i == 0:
                continue
            iv = _term_interval(c, iv, i)
            term = Signal(signed(iv.width), name=f"term{k}")
            m.d.comb += term.eq(Mux(keep[i], pes.p[k], 0))
            terms[k], intervals[k] = term, iv
        return terms, intervals


class WinogradCore(_Core):
    """Winograd core: ``P_in`` input transforms, ``P_out·P_in·n²`` PEs, lane sums,
    Winograd-domain accumulation, ``P_out`` output transforms and exact scale removal.

    Parameters
    ----------
    config : LayerConfig
        With a Winograd tile.
    """

    algorithm = "winograd"

    @classmethod
    def pipeline_latency(cls, config):
        t = config.tile
        return (t.input_stages + t.pe_stages + lane_sum_stages(config) + ACCUMULATOR_STAGES
                + t.output_stages + (t.descale_stages if t.removes_scale else 0))

    @property
    def weight_delay(self):
        # U meets V at the PEs, after the input transform (RNS: and forward conversion).
        return self.config.tile.input_stages

    @classmethod
    def fault_registers(cls, config):
        c = _check_config(config)
        t = c.tile
        if getattr(t, "quantization", None):
            # The fault model (and so the sites' values) covers exact Winograd domains.
            raise ValueError(f"fault sites cover exact Winograd domains, not "
                             f"wino_width={t.wino_width!r}")
        hw = t.hardware
        n2, mm, p_in, p_out = c.n ** 2, c.m ** 2, c.p_in, c.p_out
        sites = {}

        def put(name, site):
            if site is not None and site["registers"]:
                sites[name] = site

        regs = [_register(f"{_INPUT_TRANSFORM.format(i=i)}.{prefix}{sub}.{sig}", width, copy,
                          values, cin_lane=i)
                for copy, prefix in block_copies(c, "input_transform")
                for i in range(p_in)
                for (sub, sig), width, values in _grouped(
                    [None if r is None else ((r[0], r[1]), r[2], r[3])
                     for r in transform2d_output_registers(hw.BT, t.data_interval,
                                                           t.input_stages)])]
        put("input_transform", _site(t.input_stages, "each", regs))
        put("products", cls._pe_registers(
            c, t.input_stages,
            lambda k: ({"cout_lane": k // n2 // p_in, "cin_lane": k // n2 % p_in},
                       {"element": k % n2})))
        sum_stages = lane_sum_stages(c)
        front = t.input_stages + t.pe_stages + sum_stages
        if p_in > 1:
            product = [_pe_kind(t.pe).output_interval(a, b)
                       for a, b in zip(t.pe_a_intervals, t.pe_b_intervals)]
            put("lane_sums", cls._sum_registers(
                c, lambda j, e: _LANE_SUM.format(j=j, e=e),
                {(j, e): [_term_interval(c, product[e], i) for i in range(p_in)]
                 for j in range(p_out) for e in range(n2)},
                sum_stages, front, lambda j, e: j * n2 + e))
        at_acc = front + ACCUMULATOR_STAGES
        put("accumulation", cls._acc_registers(c, at_acc, p_out * n2))
        ot = _grouped([None if r is None else ((r[0], r[1]), r[2], r[3])
                       for r in transform2d_output_registers(hw.AT, c.accumulator_intervals,
                                                             t.output_stages)])
        regs = [_register(f"{_OUTPUT_TRANSFORM.format(j=j)}.{prefix}{sub}.{sig}", width, copy,
                          values, cout_lane=j)
                for copy, prefix in block_copies(c, "output_transform")
                for j in range(p_out) for (sub, sig), width, values in ot]
        put("output_transform", _site(at_acc + t.output_stages, "last", regs))
        if t.removes_scale:
            reg = divider_output_register(t.scale_divisor, c.exact_output_interval.width,
                                          t.descale_stages)
            regs = [] if reg is None else [
                _register(f"{_DESCALE.format(j=j, e=e)}.{prefix}{reg[0]}", reg[1], copy,
                          [(e, reg[2])], cout_lane=j)
                for copy, prefix in block_copies(c, "descale")
                for j in range(p_out) for e in range(mm)]
            put("descale", _site(at_acc + t.output_stages + t.descale_stages, "last", regs))
        return sites

    def elaborate(self, platform):
        m = Module()
        c = self.config
        t = c.tile
        hw = t.hardware
        n2, mm = c.n ** 2, c.m ** 2
        p_in, p_out = c.p_in, c.p_out
        q = t.quantization

        v = []
        for i in range(p_in):
            it, scheme = harden_block(c, "input_transform", lambda: ConstTransform2D(
                hw.BT, t.data_interval, stages=t.input_stages))
            m.submodules[_INPUT_TRANSFORM.format(i=i)] = it
            self._check_block(it, scheme, t.input_stages)
            m.d.comb += it.x.eq(self.tiles[i])
            if q:
                # V rounded to W bits before the PEs (combinational; their operand registers
                # follow), as in the tile engine.
                vq = VQuantizer(q)
                m.submodules[_QUANTIZER.format(i=i)] = vq
                m.d.comb += vq.x.eq(it.y)
                v.append(vq.y)
            else:
                v.append(it.y)

        pes = self._pe_array(m, t.input_stages)
        for j in range(p_out):
            for i in range(p_in):
                for e in range(n2):
                    lane = (j * p_in + i) * n2 + e
                    m.d.comb += [pes.a[lane].eq(v[i][e]),
                                 pes.b[lane].eq(self.weights[j * p_in + i][e])]

        # Non-bilinear PEs: the terms of lanes beyond C_in are masked to 0.
        terms, term_iv = self._masked_terms(m, pes, lambda k: (k // n2) % p_in,
                                            t.input_stages + t.pe_stages)

        # Sum over the P_in input lanes, per output lane and Winograd-domain element.
        sum_stages = lane_sum_stages(c)
        partial, partial_iv = [], []
        for j in range(p_out):
            for e in range(n2):
                lanes = [(j * p_in + i) * n2 + e for i in range(p_in)]
                if p_in == 1:
                    partial.append(terms[lanes[0]])
                    partial_iv.append(term_iv[lanes[0]])
                    continue
                tree, scheme = harden_block(c, "lane_sums", lambda: ConstMatVec(
                    [[1] * p_in], [term_iv[k] for k in lanes], stages=sum_stages))
                m.submodules[_LANE_SUM.format(j=j, e=e)] = tree
                self._check_block(tree, scheme, t.input_stages + t.pe_stages + sum_stages)
                for i, k in enumerate(lanes):
                    m.d.comb += tree.x[i].eq(terms[k])
                partial.append(tree.y[0])
                partial_iv.append(tree.output_intervals[0])

        front = t.input_stages + t.pe_stages + sum_stages
        acc = self._accumulate(m, partial, partial_iv, front)
        at_acc = front + ACCUMULATOR_STAGES

        # After the last group: one output transform (and scale removal) per output lane.
        # Quantized: the accumulated products enter shifted to the common scale (wires).
        ot_in = q.aligned_intervals(c.accumulator_intervals) if q else c.accumulator_intervals
        align = q.align_shifts if q else [0] * n2
        for j in range(p_out):
            ot, scheme = harden_block(c, "output_transform", lambda: ConstTransform2D(
                hw.AT, ot_in, stages=t.output_stages))
            m.submodules[_OUTPUT_TRANSFORM.format(j=j)] = ot
            self._check_block(ot, scheme, at_acc + t.output_stages)
            for e in range(n2):
                m.d.comb += ot.x[e].eq(acc.y[j * n2 + e] << align[e] if q else
                                       acc.y[j * n2 + e])
            for e in range(mm):
                if q:
                    # Round half up by the output shift (q.output_shift 0: a wire, or a
                    # left shift when the common scale is above 1).
                    if t.removes_scale:
                        rs = RoundShift(c.scaled_output_intervals[e], q.output_shift,
                                        stages=t.descale_stages)
                        m.submodules[_DESCALE.format(j=j, e=e)] = rs
                        m.d.comb += [rs.x.eq(ot.y[e]), self.result[j * mm + e].eq(rs.y)]
                    else:
                        m.d.comb += self.result[j * mm + e].eq(
                            ot.y[e] << max(q.output_exponent, 0))
                elif t.removes_scale:
                    div, scheme = harden_block(c, "descale", lambda: ExactDivider(
                        t.scale_divisor, c.scaled_output_intervals[e], stages=t.descale_stages,
                        output_interval=c.exact_output_interval))
                    m.submodules[_DESCALE.format(j=j, e=e)] = div
                    self._check_block(div, scheme,
                                      at_acc + t.output_stages + t.descale_stages)
                    m.d.comb += [div.x.eq(ot.y[e]), self.result[j * mm + e].eq(div.y)]
                else:
                    # The exact result lies in exact_output_interval: truncation is lossless.
                    m.d.comb += self.result[j * mm + e].eq(ot.y[e])
        back = t.output_stages + (t.descale_stages if t.removes_scale else 0)
        m.d.comb += self.result_valid.eq(delay(m, acc.y_valid, back, "result_valid",
                                               reset_less=False))
        self._error_path(m, front, back)
        return m


class DirectCore(_Core):
    """Direct core: ``P_out·P_in·m²·r²`` PEs on the ``n×n`` windows, adder trees over
    ``r²·P_in`` terms per output, spatial accumulation over channel groups.

    Parameters
    ----------
    config : LayerConfig
        With a direct tile.
    """

    algorithm = "direct"

    @classmethod
    def pipeline_latency(cls, config):
        t = config.tile
        return t.pe_stages + t.output_stages + ACCUMULATOR_STAGES

    @property
    def weight_delay(self):
        return 0

    @classmethod
    def fault_registers(cls, config):
        c = _check_config(config)
        t = c.tile
        mo, r, p_in, p_out = c.m, c.r, c.p_in, c.p_out
        mm, rr = mo * mo, r * r
        sites = {}
        pes = cls._pe_registers(
            c, 0, lambda k: ({"cout_lane": k // (mm * rr) // p_in,
                              "cin_lane": k // (mm * rr) % p_in},
                             {"element": k // rr % mm, "tap": k % rr}))
        if pes is not None:
            sites["products"] = pes
        product = _pe_kind(t.pe).output_interval(t.pe_a_intervals[0], t.pe_b_intervals[0])
        front = t.pe_stages + t.output_stages
        sums = cls._sum_registers(
            c, lambda j, k: _DIRECT_SUM.format(j=j, k=k),
            {(j, k): [_term_interval(c, product, i) for i in range(p_in) for _ in range(rr)]
             for j in range(p_out) for k in range(mm)},
            t.output_stages, front, lambda j, k: j * mm + k)
        if sums is not None:
            sites["lane_sums"] = sums
        sites["accumulation"] = cls._acc_registers(c, front + ACCUMULATOR_STAGES, p_out * mm)
        return sites

    def elaborate(self, platform):
        m = Module()
        c = self.config
        t = c.tile
        n, mo, r = c.n, c.m, c.r
        mm, rr = mo * mo, r * r
        p_in, p_out = c.p_in, c.p_out

        pes = self._pe_array(m)
        # PE (j, i, k = (oi, oj), a, b) multiplies d_i[oi + a][oj + b] by g_ji[a][b].
        for j in range(p_out):
            for i in range(p_in):
                for oi in range(mo):
                    for oj in range(mo):
                        for a in range(r):
                            for b in range(r):
                                lane = (((j * p_in + i) * mm + oi * mo + oj) * r + a) * r + b
                                m.d.comb += [
                                    pes.a[lane].eq(self.tiles[i][(oi + a) * n + oj + b]),
                                    pes.b[lane].eq(self.weights[j * p_in + i][a * r + b]),
                                ]
        # Non-bilinear PEs: the terms of lanes beyond C_in are masked to 0.
        terms, term_iv = self._masked_terms(m, pes, lambda k: (k // (mm * rr)) % p_in,
                                            t.pe_stages)
        partial, partial_iv = [], []
        for j in range(p_out):
            for k in range(mm):
                lanes = [((j * p_in + i) * mm + k) * rr + tap
                         for i in range(p_in) for tap in range(rr)]
                tree, scheme = harden_block(c, "lane_sums", lambda: ConstMatVec(
                    [[1] * (p_in * rr)], [term_iv[lane] for lane in lanes],
                    stages=t.output_stages))
                m.submodules[_DIRECT_SUM.format(j=j, k=k)] = tree
                self._check_block(tree, scheme, t.pe_stages + t.output_stages)
                for x, lane in enumerate(lanes):
                    m.d.comb += tree.x[x].eq(terms[lane])
                partial.append(tree.y[0])
                partial_iv.append(tree.output_intervals[0])

        acc = self._accumulate(m, partial, partial_iv, t.pe_stages + t.output_stages)
        for k in range(p_out * mm):
            m.d.comb += self.result[k].eq(acc.y[k])
        m.d.comb += self.result_valid.eq(acc.y_valid)
        self._error_path(m, t.pe_stages + t.output_stages, 0)
        return m
