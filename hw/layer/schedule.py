"""Scheduling: :class:`TileScheduler` issues the compute steps of one layer at a time."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .layouts import (_check_config, _counter, _index, _position_shape, _run_layout, above,
                      at_most)
from .linebuffer import read_layout, row_counter_shape, wrapped_ge

__all__ = ["TileScheduler", "step_layout"]


def step_layout(config):
    """What the scheduler issues with each step (the fields the pipeline carries)."""
    c = config
    return data.StructLayout({
        "valid": 1,
        "first": 1,                     # first channel group: the accumulator loads
        "last": 1,                      # last channel group: the tile's result is complete
        "layer_last": 1,                # the layer's last step: its last output beat
        "read": read_layout(c),
        "col_phase": _index(c.col_banks),
        "col_valid": unsigned(c.n),     # per tile column: it lies in the map
        "lane_valid": unsigned(c.p_in),  # per lane: channel < C_in
        "row_phase": _index(c.n),
        "row_valid": unsigned(c.n),     # per tile row: it lies in the map
        "weight_addr": unsigned(sum(c.weight_address_fields)),
        "shift": unsigned(max(1, c.max_shift.bit_length())),
        **({"relu": 1} if c.output_width is not None else {}),
    })


def layer_start_layout(config):
    """A layer as the scheduler takes it: the held run and where its rows are."""
    c = config
    return data.StructLayout({
        "run": _run_layout(c),
        "row": row_counter_shape(c),     # the layer's first row (wrapping count)
        "row_bank": _index(c.n),
        "row_ring": _index(c.ring_blocks),
        "buffer": 1,                     # its weight buffer
    })


class TileScheduler(wiring.Component):
    """Issues one step ``(ty, tx, cog, cig)`` per cycle (``cig`` innermost) when it can.

    A step is issued when the rows of its tile row have landed in the line buffer and,
    for a step that completes a tile (``last``), an output credit is available
    (``credit``). Every position is tracked incrementally (no run-time division). The
    rows a tile row needs and the next tile row's are compared with ``landed`` every
    cycle, so that moving to the next tile row costs no cycle when its rows are in.

    Parameters
    ----------
    config : LayerConfig

    Members
    -------
    start : In(1)
        Begin ``layer`` (pulse, only while not ``active``).
    layer : In(layer_start_layout(config))
    landed : In(row counter)
        Rows complete in the line buffer.
    credit : In(1)
        An output beat may be started.
    hold : In(1)
        Zero-skipping engines only: no tile may start (its first step waits: the V buffers
        are all taken).
    step : Out(step_layout(config))
        The step issued this cycle (``valid``) and its addresses and masks.
    active : Out(1)
        Steps of the layer remain to be issued.
    busy : Out(1)
        ``active``, or a layer is starting (``START_CYCLES`` after ``start``).
    live_low : Out(row counter)
        The lowest row still to be read (the line buffer may overwrite those below).
    """

    def __init__(self, config):
        c = self.config = _check_config(config)
        super().__init__({
            "start": In(1),
            "layer": In(layer_start_layout(c)),
            "landed": In(row_counter_shape(c)),
            "credit": In(1),
            **({"hold": In(1)} if c.sparse else {}),
            "step": Out(step_layout(c)),
            "active": Out(1),
            "busy": Out(1),
            "live_low": Out(row_counter_shape(c)),
        })

    def elaborate(self, platform):
        m = Module()
        st = self._state(m)
        issue = self._drive_step(m, st)
        self._advance(m, st, issue)
        return m

    # Timing discipline: every loop bound is a *remaining* count compared with constants,
    # every "last" flag is a register computed one step ahead, and every run-time bound a
    # mask compares with is precomputed at the layer's start: no stage holds an adder feeding
    # a comparison.

    def _state(self, m):
        c = self.config
        n = c.n
        pos = _position_shape(c)
        counter = row_counter_shape(c)
        run = Signal(_run_layout(c), name="run")
        st = SimpleNamespace(
            run=run,
            buffer=Signal(name="buffer"),
            first_row=Signal(counter, name="first_row"),    # G
            end_row=Signal(counter, name="end_row"),        # G + H
            end_less_m=Signal(counter, name="end_less_m"),  # G + H - m
            y0=Signal(pos, name="y0"),                      # ty·m - pad
            base=Signal(_index(n), name="base"),            # (G + y0) mod n
            ring=Signal(_index(c.ring_blocks), name="ring"),  # ((G + y0) // n) mod D
            need=Signal(counter, name="need"),              # rows this tile row needs
            need_next=Signal(counter, name="need_next"),
            rows_ok=Signal(name="rows_ok"),
            rows_next_ok=Signal(name="rows_next_ok"),
            live_next=Signal(counter, name="live_next"),    # G + y0 + m
            xp=Signal(_counter(c.padded_width + c.m), name="xp"),   # tx·m
            txq=Signal(_index(c.col_words + 1), name="txq"),
            txr=Signal(_index(c.col_banks), name="txr"),
            cig=Signal(_index(c.cin_groups), name="cig"),
            cog=Signal(_index(c.cout_groups), name="cog"),
            # remaining counts: C_in - cig·P_in, C_out - cog·P_out, W_out - tx·m, H_out - ty·m
            ci_left=Signal(_counter(c.max_cin), name="ci_left"),
            co_left=Signal(_counter(c.max_cout), name="co_left"),
            wo_left=Signal(_counter(c.padded_width), name="wo_left"),
            ho_left=Signal(_counter(c.max_height + 2 * n), name="ho_left"),
            cig_last=Signal(name="cig_last"), cog_last=Signal(name="cog_last"),
            tx_last=Signal(name="tx_last"), ty_last=Signal(name="ty_last"),
            # per tile row t / tile column k: the bounds its mask compares with
            row_below=[Signal(pos, name=f"row_below{t}") for t in range(n)],   # H - t
            col_from=[Signal(pos, name=f"col_from{k}") for k in range(n)],     # pad - k
            col_below=[Signal(pos, name=f"col_below{k}") for k in range(n)],   # W + pad - k
            # the column mask of the current tile column, of the next and of column 0,
            # kept in registers so that no comparison sits before the step register
            xp_ahead=Signal(_counter(c.padded_width + 2 * c.m), name="xp_ahead"),  # xp + m
            col_ok=Signal(n, name="col_ok"),
            col_ok0=Signal(n, name="col_ok0"),
        )
        return st

    def _drive_step(self, m, st):
        """The step's fields, combinationally from the state; returns the issue condition."""
        c, step = self.config, self.step
        n, run = c.n, st.run
        gf, of, bf = c.weight_address_fields
        issue = Signal(name="issue")
        m.d.comb += [
            issue.eq(self.active & st.rows_ok & (self.credit | ~st.cig_last)
                     if not c.sparse else
                     self.active & st.rows_ok & (self.credit | ~st.cig_last)
                     & ~(self.hold & (st.cig == 0))),
            step.valid.eq(issue),
            step.first.eq(st.cig == 0),
            step.last.eq(st.cig_last),
            step.layer_last.eq(st.cig_last & st.cog_last & st.tx_last & st.ty_last),
            step.read.group.eq(st.cig),
            step.col_phase.eq(st.txr),
            step.row_phase.eq(st.base),
            step.weight_addr.eq(Cat(st.cig[:gf], st.cog[:of], st.buffer[:bf])),
            step.shift.eq(run.shift),
            *([step.relu.eq(run.relu)] if c.output_width is not None else []),
        ]
        for b in range(n):
            # Row bank b holds tile row (b - base) mod n, one ring slot further when b < base.
            ring = Signal.like(st.ring, name=f"ring{b}")
            if b == n - 1:      # base <= n - 1 (and no constant comparisons in Verilog)
                m.d.comb += ring.eq(st.ring)
            else:
                m.d.comb += ring.eq(Mux(st.base > b,
                                        Mux(st.ring == c.ring_blocks - 1, 0, st.ring + 1),
                                        st.ring))
            m.d.comb += step.read.ring[b].eq(ring)
        for s in range(c.col_banks):
            if s == c.col_banks - 1:    # txr <= col_banks - 1
                m.d.comb += step.read.word[s].eq(st.txq)
            else:
                m.d.comb += step.read.word[s].eq(Mux(st.txr > s, st.txq + 1, st.txq))
        for t in range(n):
            m.d.comb += step.row_valid[t].eq((st.y0 >= -t) & (st.y0 < st.row_below[t]))
        m.d.comb += step.col_valid.eq(st.col_ok)
        for i in range(c.p_in):
            m.d.comb += step.lane_valid[i].eq(above(st.ci_left, i))
        return issue

    def _advance(self, m, st, issue):
        """Start a layer; advance ``cig``, then ``cog``, ``tx``, ``ty``."""
        c, mo = self.config, self.config.m
        run = st.run
        # The rows each tile row needs are compared with the landed rows every cycle.
        w = c.row_counter_width
        m.d.sync += [st.rows_ok.eq(st.rows_ok | wrapped_ge(self.landed, st.need, w)),
                     st.rows_next_ok.eq(wrapped_ge(self.landed, st.need_next, w))]
        self._start(m, st)
        with m.If(issue):
            with m.If(~st.cig_last):
                m.d.sync += [st.cig.eq(st.cig + 1), st.ci_left.eq(st.ci_left - c.p_in),
                             st.cig_last.eq(at_most(st.ci_left, 2 * c.p_in))]
            with m.Else():
                m.d.sync += [st.cig.eq(0), st.ci_left.eq(run.cin),
                             st.cig_last.eq(at_most(run.cin, c.p_in))]
                with m.If(~st.cog_last):
                    m.d.sync += [st.cog.eq(st.cog + 1), st.co_left.eq(st.co_left - c.p_out),
                                 st.cog_last.eq(at_most(st.co_left, 2 * c.p_out))]
                with m.Else():
                    m.d.sync += [st.cog.eq(0), st.co_left.eq(run.cout),
                                 st.cog_last.eq(at_most(run.cout, c.p_out))]
                    with m.If(~st.tx_last):
                        m.d.sync += [st.xp.eq(st.xp + mo), st.wo_left.eq(st.wo_left - mo),
                                     st.tx_last.eq(at_most(st.wo_left, 2 * mo)),
                                     st.xp_ahead.eq(st.xp_ahead + mo)]
                        for k in range(c.n):
                            m.d.sync += st.col_ok[k].eq((st.xp_ahead >= st.col_from[k]) &
                                                        (st.xp_ahead < st.col_below[k]))
                        with m.If(st.txr == c.col_banks - 1):
                            m.d.sync += [st.txr.eq(0), st.txq.eq(st.txq + 1)]
                        with m.Else():
                            m.d.sync += st.txr.eq(st.txr + 1)
                    with m.Else():
                        m.d.sync += [st.xp_ahead.eq(mo), st.col_ok.eq(st.col_ok0)]
                        m.d.sync += [st.xp.eq(0), st.txq.eq(0), st.txr.eq(0),
                                     st.wo_left.eq(run.wout), st.tx_last.eq(at_most(run.wout, mo))]
                        with m.If(~st.ty_last):
                            self._next_tile_row(m, st)
                        with m.Else():
                            m.d.sync += [self.active.eq(0), self.live_low.eq(st.end_row)]

    #: Cycles from ``start`` to the first step can issue (the layer is latched, then its
    #: sums, then what depends on them: one adder level per cycle).
    START_CYCLES = 3

    def _start(self, m, st):
        """Three cycles: latch the layer; its sums and flags; the values built on them."""
        c, layer = self.config, self.layer
        n, mo = c.n, c.m
        counter = row_counter_shape(c)
        phase = Signal(2, name="start_phase")     # 1: sums, 2: dependents (0: idle)
        row = Signal(counter, name="start_row")
        bank = Signal.like(layer.row_bank, name="start_bank")
        ring = Signal.like(layer.row_ring, name="start_ring")
        rows0 = Signal(range(n + mo + 1), name="start_rows0")       # min(H, n - pad)
        rows1 = Signal(range(n + mo + 1), name="start_rows1")       # min(H, n + m - pad)
        lr = st.run
        pad = lr.padding
        with m.If(self.start):
            m.d.sync += [phase.eq(1), st.run.eq(layer.run), st.buffer.eq(layer.buffer),
                         row.eq(layer.row), bank.eq(layer.row_bank), ring.eq(layer.row_ring)]
        with m.If(phase == 1):
            m.d.sync += [
                phase.eq(2),
                st.first_row.eq(row), st.end_row.eq(row + lr.height),
                rows0.eq(self._rows_within(lr.height, pad, n)),
                rows1.eq(self._rows_within(lr.height, pad, n + mo)),
                st.live_next.eq(row + mo - pad),
                st.y0.eq(-pad), st.rows_ok.eq(0), st.rows_next_ok.eq(0),
                st.xp.eq(0), st.txq.eq(0), st.txr.eq(0), st.cig.eq(0), st.cog.eq(0),
                st.ci_left.eq(lr.cin), st.co_left.eq(lr.cout),
                st.wo_left.eq(lr.wout), st.ho_left.eq(lr.hout),
                st.cig_last.eq(at_most(lr.cin, c.p_in)), st.cog_last.eq(at_most(lr.cout, c.p_out)),
                st.tx_last.eq(at_most(lr.wout, mo)), st.ty_last.eq(at_most(lr.hout, mo)),
            ]
            for t in range(n):
                m.d.sync += st.row_below[t].eq(lr.height - t)
            for k in range(n):
                m.d.sync += [st.col_from[k].eq(pad - k), st.col_below[k].eq(lr.width + pad - k)]
            # The first tile row starts `pad` rows above the layer's first row.
            with m.If(bank >= pad):
                m.d.sync += [st.base.eq(bank - pad), st.ring.eq(ring)]
            with m.Else():
                m.d.sync += [st.base.eq(bank + n - pad),
                             st.ring.eq(Mux(ring == 0, c.ring_blocks - 1, ring - 1))]
        with m.If(phase == 2):
            m.d.sync += [
                phase.eq(0), self.active.eq(1),
                # `need` is set only now: until the next cycle's comparison, no rows are in
                st.rows_ok.eq(0), st.rows_next_ok.eq(0),
                st.end_less_m.eq(st.end_row - mo),
                st.need.eq(st.first_row + rows0), st.need_next.eq(st.first_row + rows1),
                st.xp_ahead.eq(mo),
            ]
            for k in range(n):      # xp = 0 now; the bounds were set in phase 1
                mask0 = (st.col_from[k] <= 0) & (st.col_below[k] > 0)
                m.d.sync += [st.col_ok[k].eq(mask0), st.col_ok0[k].eq(mask0)]
        m.d.comb += self.busy.eq(self.active | (phase != 0))

    def _rows_within(self, height, pad, limit):
        """``min(height, limit - pad)`` with no adder before the comparison: ``pad`` of an
        accepted layer is 0 or ``r // 2`` (the config check refuses others), so each case
        compares ``height`` with a constant."""
        half = self.config.r // 2
        per_pad = [Mux(height < limit - p, height, limit - p) for p in (0, half)]
        return Mux(pad == 0, per_pad[0], per_pad[1])

    def _next_tile_row(self, m, st):
        c = self.config
        n, mo = c.n, c.m
        m.d.sync += [
            st.y0.eq(st.y0 + mo),
            st.ho_left.eq(st.ho_left - mo), st.ty_last.eq(at_most(st.ho_left, 2 * mo)),
            st.need.eq(st.need_next),
            # need_next + m, capped at the layer's end (compared before the add)
            st.need_next.eq(Mux(wrapped_ge(st.need_next, st.end_less_m, c.row_counter_width),
                                st.end_row, st.need_next + mo)),
            st.rows_ok.eq(st.rows_next_ok), st.rows_next_ok.eq(0),
            # Rows below the new tile row's first are no longer read.
            self.live_low.eq(st.live_next), st.live_next.eq(st.live_next + mo),
        ]
        # m <= n, so base + m wraps at most once.
        with m.If(st.base >= n - mo if n > mo else 1):
            m.d.sync += [st.base.eq(st.base + mo - n),
                         st.ring.eq(Mux(st.ring == c.ring_blocks - 1, 0, st.ring + 1))]
        with m.Else():
            m.d.sync += st.base.eq(st.base + mo)
