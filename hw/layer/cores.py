"""The layer engines' compute cores (one interface): :class:`WinogradCore`, :class:`DirectCore`."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ...gen.bounds import Interval
from ..constmat import ConstMatVec, ConstTransform2D, ExactDivider
from ..harden import harden_block
from ..pe import PEArray
from ..util import delay
from .layouts import _check_config, _weight_shape

__all__ = ["lane_sum_stages", "core_latency", "ChannelAccumulator", "ACCUMULATOR_STAGES",
           "WinogradCore", "DirectCore", "has_dmr"]


#: Cycles of the channel accumulator: an input register, then the accumulator register.
ACCUMULATOR_STAGES = 2


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

    def elaborate(self, platform):
        m = Module()
        front = ACCUMULATOR_STAGES - 1
        valid = delay(m, self.valid, front, "in_valid", reset_less=False)
        first = delay(m, self.first, front, "in_first", reset_less=False)
        last = delay(m, self.last, front, "in_last", reset_less=False)
        for e, (x_iv, acc_iv) in enumerate(zip(self.input_intervals, self.acc_intervals)):
            x = Signal(signed(x_iv.width), name=f"x{e}")
            acc = Signal(signed(acc_iv.width), name=f"acc{e}", reset_less=True)
            m.d.comb += [x.eq(delay(m, self.x[e][:x_iv.width], front, f"in_x{e}",
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

    def _pe_array(self, m, entry=0):
        """The ``P_out·P_in`` tiles' PEs, lane ``(j·P_in + i)·k + e`` for the tile's PE ``e``."""
        t, lanes = self.config.tile, self.config.p_out * self.config.p_in
        pes, scheme = harden_block(self.config, "products", lambda: PEArray(
            t.pe, t.pe_a_intervals * lanes, t.pe_b_intervals * lanes, stages=t.pe_stages,
            dsp=getattr(t, "dsp", "inferred")))
        m.submodules.pe_array = pes
        self._check_block(pes, scheme, entry + t.pe_stages)
        return pes

    def _check_block(self, block, scheme, at):
        """Record a duplicated block's ``mismatch``, ``at`` cycles after the step enters the
        core (the cycle its outputs hold that step's values)."""
        if scheme == "dmr":
            self._mismatches.append((block.mismatch, at))

    def _error_path(self, m, acc, front, back):
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
        error = tile_error | (acc.mismatch if hasattr(acc, "copies") and acc.scheme == "dmr"
                              else 0)
        terms = [delay(m, error, back, "acc_error", reset_less=False)]
        for k, (mm, at) in enumerate(post):
            terms.append(delay(m, mm, at_acc + back - at, f"post_mismatch{k}",
                               reset_less=False))
        m.d.comb += self.result_error.eq(Cat(*terms).any())

    def _accumulate(self, m, partial, partial_iv, front):
        """Sum ``partial`` (valid ``front`` cycles after the step) over the channel groups."""
        c = self.config
        acc, _ = harden_block(c, "accumulation", lambda: ChannelAccumulator(
            partial_iv, list(c.accumulator_intervals) * c.p_out))
        m.submodules.accumulator = acc
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
        zero = Interval(0, 0)
        for k, iv in enumerate(intervals):
            i = lane_of(k)
            if i == 0:
                continue
            iv = iv.hull(zero)
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

    def elaborate(self, platform):
        m = Module()
        c = self.config
        t = c.tile
        hw = t.hardware
        n2, mm = c.n ** 2, c.m ** 2
        p_in, p_out = c.p_in, c.p_out

        v = []
        for i in range(p_in):
            it, scheme = harden_block(c, "input_transform", lambda: ConstTransform2D(
                hw.BT, t.data_interval, stages=t.input_stages))
            m.submodules[f"input_transform{i}"] = it
            self._check_block(it, scheme, t.input_stages)
            m.d.comb += it.x.eq(self.tiles[i])
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
                m.submodules[f"lane_sum_o{j}_e{e}"] = tree
                self._check_block(tree, scheme, t.input_stages + t.pe_stages + sum_stages)
                for i, k in enumerate(lanes):
                    m.d.comb += tree.x[i].eq(terms[k])
                partial.append(tree.y[0])
                partial_iv.append(tree.output_intervals[0])

        front = t.input_stages + t.pe_stages + sum_stages
        acc = self._accumulate(m, partial, partial_iv, front)
        at_acc = front + ACCUMULATOR_STAGES

        # After the last group: one output transform (and scale removal) per output lane.
        for j in range(p_out):
            ot, scheme = harden_block(c, "output_transform", lambda: ConstTransform2D(
                hw.AT, c.accumulator_intervals, stages=t.output_stages))
            m.submodules[f"output_transform{j}"] = ot
            self._check_block(ot, scheme, at_acc + t.output_stages)
            for e in range(n2):
                m.d.comb += ot.x[e].eq(acc.y[j * n2 + e])
            for e in range(mm):
                if t.removes_scale:
                    div, scheme = harden_block(c, "descale", lambda: ExactDivider(
                        t.scale_divisor, c.scaled_output_intervals[e], stages=t.descale_stages,
                        output_interval=c.exact_output_interval))
                    m.submodules[f"descale_o{j}_e{e}"] = div
                    self._check_block(div, scheme,
                                      at_acc + t.output_stages + t.descale_stages)
                    m.d.comb += [div.x.eq(ot.y[e]), self.result[j * mm + e].eq(div.y)]
                else:
                    # The exact result lies in exact_output_interval: truncation is lossless.
                    m.d.comb += self.result[j * mm + e].eq(ot.y[e])
        back = t.output_stages + (t.descale_stages if t.removes_scale else 0)
        m.d.comb += self.result_valid.eq(delay(m, acc.y_valid, back, "result_valid",
                                               reset_less=False))
        self._error_path(m, acc, front, back)
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
                m.submodules[f"sum_o{j}_k{k}"] = tree
                self._check_block(tree, scheme, t.pe_stages + t.output_stages)
                for x, lane in enumerate(lanes):
                    m.d.comb += tree.x[x].eq(terms[lane])
                partial.append(tree.y[0])
                partial_iv.append(tree.output_intervals[0])

        acc = self._accumulate(m, partial, partial_iv, t.pe_stages + t.output_stages)
        for k in range(p_out * mm):
            m.d.comb += self.result[k].eq(acc.y[k])
        m.d.comb += self.result_valid.eq(acc.y_valid)
        self._error_path(m, acc, t.pe_stages + t.output_stages, 0)
        return m
