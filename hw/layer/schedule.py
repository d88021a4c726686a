"""Scheduling: :class:`TileScheduler` issues the steps, :class:`TileExtractor` cuts the tiles."""

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .layouts import (_act_blocks, _check_config, _counter, _index, _position_shape,
                      _run_layout)

__all__ = ["TileScheduler", "TileExtractor"]


def _step_layout(config, act_addr_width, weight_addr_width):
    c = config
    return data.StructLayout({
        "valid": 1,
        "first": 1,                 # first channel group: the accumulator loads
        "last": 1,                  # last channel group: the tile's result is complete
        "act_addr": data.ArrayLayout(unsigned(act_addr_width), c.n),
        "row_valid": unsigned(c.n),     # per bank: its row lies in [0, H)
        "base": _index(c.n),
        "col_tile": _index(c.max_tile_cols),
        "col_valid": unsigned(c.n),     # per tile column: it lies in [0, W)
        "lane_valid": unsigned(c.p_in),  # per lane: channel < C_in
        "weight_addr": unsigned(weight_addr_width),
    })


class TileScheduler(wiring.Component):
    """Issues one compute step ``(ty, tx, cog, cig)`` per advancing cycle, and where it reads.

    Steps run ``for ty: for tx: for cog: for cig``. Every position is tracked
    incrementally (no run-time division): ``y0 = ty·m - pad = q0·n + base``,
    ``x0 = tx·m - pad``, the channel bases and the memory offsets.

    Parameters
    ----------
    config : LayerConfig
    act_addr_width, weight_addr_width : int
        Address widths of the activation and weight banks.

    Members
    -------
    start : In(1)
        Begin a layer (pulse); ``run`` must hold from the next cycle on.
    run : In(run layout)
        Held run-time parameters (with the output size ``hout``, ``wout``).
    advance : In(1)
        Issue the current step (if any) this cycle.
    step : Out(step layout)
        The current step: flags, bank addresses and masks, weight address.
    active : Out(1)
        Steps remain to be issued.
    """

    def __init__(self, config, act_addr_width, weight_addr_width):
        c = self.config = _check_config(config)
        self.blocks = _act_blocks(c)
        super().__init__({
            "start": In(1),
            "run": In(_run_layout(c)),
            "advance": In(1),
            "step": Out(_step_layout(c, act_addr_width, weight_addr_width)),
            "active": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        state = self._state()
        self._drive_step(m, state)
        self._advance(m, state)
        return m

    def _state(self):
        """The scheduler's registers (a step's position) and its wrap conditions."""
        c, run = self.config, self.run
        n, mo = c.n, c.m
        pos = _position_shape(c)
        active = Signal()
        oy = Signal(_counter(c.max_height + 2 * n))     # ty * m
        ox = Signal(_counter(c.max_width + 2 * n))      # tx * m
        tx = Signal.like(self.step.col_tile, name="tx")
        y0 = Signal(pos)                                # ty * m - pad
        x0 = Signal(pos)                                # tx * m - pad
        q0 = Signal(pos)                                # y0 // n
        base = Signal(_index(n))                         # y0 mod n
        ci_base = Signal(_counter(c.max_cin + c.p_in))  # cig * P_in
        cig = Signal(_index(c.cin_groups))
        cig_off = Signal(_counter(c.cin_groups * self.blocks))     # cig * blocks
        co_base = Signal(_counter(c.max_cout + c.p_out))           # cog * P_out
        cog_off = Signal(_counter(c.cout_groups * c.cin_groups))   # cog * cin_groups

        cig_last = ci_base + c.p_in >= run.cin
        cog_last = co_base + c.p_out >= run.cout
        tx_last = ox + mo >= run.wout
        ty_last = oy + mo >= run.hout
        return SimpleNamespace(active=active, oy=oy, ox=ox, tx=tx, y0=y0, x0=x0, q0=q0,
                               base=base, ci_base=ci_base, cig=cig, cig_off=cig_off,
                               co_base=co_base, cog_off=cog_off, cig_last=cig_last,
                               cog_last=cog_last, tx_last=tx_last, ty_last=ty_last)

    def _drive_step(self, m, st):
        """The step's fields, combinationally from the state: flags, addresses, masks."""
        c, run, step = self.config, self.run, self.step
        n = c.n
        pos = _position_shape(c)
        active, tx, y0, x0, q0, base = st.active, st.tx, st.y0, st.x0, st.q0, st.base
        ci_base, cig, cig_off, cog_off = st.ci_base, st.cig, st.cig_off, st.cog_off
        m.d.comb += [
            self.active.eq(active),
            step.valid.eq(active),
            step.first.eq(ci_base == 0),
            step.last.eq(st.cig_last),
            step.base.eq(base),
            step.col_tile.eq(tx),
            step.weight_addr.eq(cog_off + cig),
        ]
        for b in range(n):
            # Bank b holds tile row (b - base) mod n, in row block q0 + (b < base).
            row = Signal(pos, name=f"row{b}")
            block = Signal(pos, name=f"block{b}")
            ok = Signal(name=f"row_ok{b}")
            if b == n - 1:      # base <= n - 1 always (and no constant comparisons in Verilog)
                m.d.comb += [row.eq(y0 + b - base), block.eq(q0)]
            else:
                m.d.comb += [row.eq(y0 + Mux(base <= b, b - base, b + n - base)),
                             block.eq(q0 + (base > b))]
            m.d.comb += [
                ok.eq((row >= 0) & (row < run.height)),
                step.row_valid[b].eq(ok),
                # Rows outside the map are masked; read address 0 instead of out of range.
                step.act_addr[b].eq(Mux(ok, cig_off + block, 0)),
            ]
        for k in range(n):
            col = x0 + k
            m.d.comb += step.col_valid[k].eq((col >= 0) & (col < run.width))
        for i in range(c.p_in):
            m.d.comb += step.lane_valid[i].eq(ci_base + i < run.cin)

    def _advance(self, m, st):
        """Start and advance the state: ``cig`` innermost, then ``cog``, ``tx``, ``ty``."""
        c, run = self.config, self.run
        n, mo = c.n, c.m
        active, oy, ox, tx, y0, x0, q0, base = (st.active, st.oy, st.ox, st.tx, st.y0, st.x0,
                                                st.q0, st.base)
        ci_base, cig, cig_off, co_base, cog_off = (st.ci_base, st.cig, st.cig_off, st.co_base,
                                                   st.cog_off)
        cig_last, cog_last, tx_last, ty_last = st.cig_last, st.cog_last, st.tx_last, st.ty_last
        pad = run.padding
        with m.If(self.start):
            m.d.sync += [active.eq(1), oy.eq(0), ox.eq(0), tx.eq(0), y0.eq(-pad), x0.eq(-pad),
                         ci_base.eq(0), cig.eq(0), cig_off.eq(0), co_base.eq(0), cog_off.eq(0)]
            with m.If(pad == 0):
                m.d.sync += [q0.eq(0), base.eq(0)]
            with m.Else():
                m.d.sync += [q0.eq(-1), base.eq(n - pad)]
        with m.Elif(self.advance & active):
            with m.If(~cig_last):
                m.d.sync += [ci_base.eq(ci_base + c.p_in), cig.eq(cig + 1),
                             cig_off.eq(cig_off + self.blocks)]
            with m.Else():
                m.d.sync += [ci_base.eq(0), cig.eq(0), cig_off.eq(0)]
                with m.If(~cog_last):
                    m.d.sync += [co_base.eq(co_base + c.p_out),
                                 cog_off.eq(cog_off + c.cin_groups)]
                with m.Else():
                    m.d.sync += [co_base.eq(0), cog_off.eq(0)]
                    with m.If(~tx_last):
                        m.d.sync += [ox.eq(ox + mo), x0.eq(x0 + mo), tx.eq(tx + 1)]
                    with m.Else():
                        m.d.sync += [ox.eq(0), x0.eq(-pad), tx.eq(0)]
                        with m.If(~ty_last):
                            m.d.sync += [oy.eq(oy + mo), y0.eq(y0 + mo)]
                            # m <= n, so base + m wraps at most once.
                            with m.If(base + mo >= n):
                                m.d.sync += [base.eq(base + mo - n), q0.eq(q0 + 1)]
                            with m.Else():
                                m.d.sync += base.eq(base + mo)
                        with m.Else():
                            m.d.sync += active.eq(0)


class TileExtractor(wiring.Component):
    """Cuts the ``P_in`` input tiles of a step out of the bank rows; one register stage.

    For each lane and bank, the ``n`` tile columns ``tx·m - pad + k`` are chosen from the
    row word by ``tx`` (``max_tile_cols`` candidates each, for either padding), masked
    (row outside ``[0, H)``, column outside ``[0, W)``, lane ``>= C_in``: zero), and the
    ``n`` bank rows are rotated into tile order (tile row ``k`` is bank ``(k + base) mod n``).

    Parameters
    ----------
    config : LayerConfig

    Members
    -------
    rows : In(ArrayLayout(ArrayLayout(ArrayLayout(signed(dw), max_width), n), p_in))
    base, col_tile, padding, row_valid, col_valid, lane_valid : In(...)
        From the step, one stage after the scheduler (with the memory data).
    tiles : Out(ArrayLayout(ArrayLayout(signed(dw), n*n), p_in))
        Registered, row-major tiles.
    """

    def __init__(self, config):
        c = self.config = _check_config(config)
        dw = c.tile.data_width
        row = data.ArrayLayout(signed(dw), c.max_width)
        super().__init__({
            "rows": In(data.ArrayLayout(data.ArrayLayout(row, c.n), c.p_in)),
            "base": In(_index(c.n)),
            "col_tile": In(_index(c.max_tile_cols)),
            "padding": In(1),
            "row_valid": In(c.n),
            "col_valid": In(c.n),
            "lane_valid": In(c.p_in),
            "tiles": Out(data.ArrayLayout(data.ArrayLayout(signed(dw), c.n * c.n), c.p_in)),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        n, mo, p = c.n, c.m, c.r // 2
        dw = c.tile.data_width
        tiles = max(c.max_tile_cols, 1)

        def element(word, index):
            return word[index] if 0 <= index < c.max_width else 0

        for i in range(c.p_in):
            picked = []          # picked[b][k]: column k of the tile from bank b
            for b in range(n):
                word = self.rows[i][b]
                cols = []
                for k in range(n):
                    value = Signal(signed(dw), name=f"col_i{i}_b{b}_k{k}")
                    keep = self.lane_valid[i] & self.row_valid[b] & self.col_valid[k]
                    with m.Switch(self.col_tile):
                        for t in range(tiles):
                            with m.Case(t):
                                unpadded = element(word, t * mo + k)
                                if p:
                                    m.d.comb += value.eq(Mux(self.padding,
                                                             element(word, t * mo + k - p),
                                                             unpadded))
                                else:
                                    m.d.comb += value.eq(unpadded)
                    masked = Signal(signed(dw), name=f"tile_i{i}_b{b}_k{k}")
                    m.d.comb += masked.eq(Mux(keep, value, 0))
                    cols.append(masked)
                picked.append(cols)
            for row in range(n):
                with m.Switch(self.base):
                    for base in range(n):
                        with m.Case(base):
                            bank = (row + base) % n
                            for k in range(n):
                                m.d.sync += self.tiles[i][row * n + k].eq(picked[bank][k])
        return m
