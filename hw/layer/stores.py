"""The layer engines' on-chip memories: :class:`WeightStore` and :class:`ActivationStore`.

See :mod:`winogen.hw.layer` for their organisation.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..constmat import ConstTransform2D
from ..util import delay
from .layouts import _act_blocks, _check_config, _counter, _index, _memory_depth, _weight_shape

__all__ = ["WeightStore", "ActivationStore"]


class WeightStore(wiring.Component):
    """Filter memory: loads ``C_out·C_in`` filters from the weight stream into its banks.

    With ``filter_transform="online"`` (Winograd) each raw filter goes through a
    :class:`ConstTransform2D` by ``G`` on its way in; the write lands ``filter_stages``
    cycles after the beat. The stream is accepted one beat per cycle.

    Parameters
    ----------
    config : LayerConfig

    Members
    -------
    weights : In(stream.Signature(ArrayLayout(signed(w), k)))
        The weight stream (``config.weight_payload``).
    start : In(1)
        Begin loading (pulse); ``cin``/``cout`` must hold from the next cycle on.
    cin, cout : In(unsigned(...))
    busy : Out(1)
        From the cycle after ``start`` until the last filter is written.
    read_addr : In(unsigned(addr_width))
    read_en : In(1)
        The read ports advance only when high (the compute pipeline's enable).
    read_data : Out(ArrayLayout(ArrayLayout(signed(sw), count), p_out * p_in))
        Filter ``j·p_in + i`` is from bank ``(j, i)``, one cycle after ``read_addr``.
    """

    def __init__(self, config):
        c = self.config = _check_config(config)
        count, width = c.weight_payload
        s_count, s_width = c.stored_weight
        self.depth = _memory_depth(c.cout_groups * c.cin_groups)
        self.addr_width = ceil_log2(self.depth)
        self.online = c.filter_transform == "online"
        super().__init__({
            "weights": In(stream.Signature(data.ArrayLayout(_weight_shape(c, width), count))),
            "start": In(1),
            "cin": In(unsigned(c.max_cin.bit_length())),
            "cout": In(unsigned(c.max_cout.bit_length())),
            "busy": Out(1),
            "read_addr": In(unsigned(self.addr_width)),
            "read_en": In(1),
            "read_data": Out(data.ArrayLayout(data.ArrayLayout(_weight_shape(c, s_width), s_count),
                                              c.p_out * c.p_in)),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        s_count, s_width = c.stored_weight
        cg = c.cin_groups

        loading = Signal()
        ci = Signal(_counter(c.max_cin))
        lane_i = Signal(_index(c.p_in))
        cig = Signal(_index(cg))
        co = Signal(_counter(c.max_cout))
        lane_j = Signal(_index(c.p_out))
        cog_off = Signal(_index(self.depth))     # (co // P_out) * cin_groups
        accept = Signal()
        m.d.comb += [
            self.weights.ready.eq(loading),
            accept.eq(self.weights.valid & self.weights.ready),
        ]
        with m.If(self.start):
            m.d.sync += [loading.eq(1), ci.eq(0), lane_i.eq(0), cig.eq(0), co.eq(0),
                         lane_j.eq(0), cog_off.eq(0)]
        with m.Elif(accept):
            with m.If(ci + 1 < self.cin):
                m.d.sync += ci.eq(ci + 1)
                with m.If(lane_i == c.p_in - 1):
                    m.d.sync += [lane_i.eq(0), cig.eq(cig + 1)]
                with m.Else():
                    m.d.sync += lane_i.eq(lane_i + 1)
            with m.Else():
                m.d.sync += [ci.eq(0), lane_i.eq(0), cig.eq(0)]
                with m.If(co + 1 < self.cout):
                    m.d.sync += co.eq(co + 1)
                    with m.If(lane_j == c.p_out - 1):
                        m.d.sync += [lane_j.eq(0), cog_off.eq(cog_off + cg)]
                    with m.Else():
                        m.d.sync += lane_j.eq(lane_j + 1)
                with m.Else():
                    m.d.sync += loading.eq(0)

        # Write path: the (optional) filter transform is free-running; the write
        # controls are delayed to meet its output.
        addr = Signal(self.addr_width)
        m.d.comb += addr.eq(cog_off + cig)
        if self.online:
            t = c.tile
            m.submodules.filter_transform = ft = ConstTransform2D(
                t.hardware.G, t.weight_interval, stages=t.filter_stages)
            m.d.comb += ft.x.eq(self.weights.payload)
            value, latency = ft.y, ft.latency
        else:
            value, latency = self.weights.payload, 0
        w_valid = delay(m, accept, latency, "write_valid", reset_less=False)
        w_addr = delay(m, addr, latency, "write_addr", reset_less=False)
        w_j = delay(m, lane_j, latency, "write_lane_out", reset_less=False)
        w_i = delay(m, lane_i, latency, "write_lane_in", reset_less=False)
        in_flight = Signal(max(latency, 1))
        if latency:
            m.d.sync += in_flight.eq((in_flight << 1) | accept)
        m.d.comb += self.busy.eq(loading | in_flight.any())

        self.memories = []
        for j in range(c.p_out):
            for i in range(c.p_in):
                mem = Memory(shape=data.ArrayLayout(_weight_shape(c, s_width), s_count),
                             depth=self.depth, init=[])
                m.submodules[f"bank_o{j}_i{i}"] = mem
                self.memories.append(mem)
                wp = mem.write_port()
                rp = mem.read_port()
                for e in range(s_count):
                    m.d.comb += wp.data[e].eq(value[e])
                m.d.comb += [
                    wp.addr.eq(w_addr),
                    wp.en.eq(w_valid & (w_j == j) & (w_i == i)),
                    rp.addr.eq(self.read_addr),
                    rp.en.eq(self.read_en),
                    self.read_data[j * c.p_in + i].eq(rp.data),
                ]
        return m


class ActivationStore(wiring.Component):
    """Activation memory: ``P_in`` lanes × ``n`` row-residue banks of whole image rows.

    See the module docstring for the organisation. The stream is accepted one beat per
    cycle; each beat writes one element in each lane's bank for row residue ``y mod n``.

    Parameters
    ----------
    config : LayerConfig

    Members
    -------
    activations : In(stream.Signature(ArrayLayout(signed(data_width), p_in)))
    start : In(1)
        Begin loading (pulse); ``height``/``width``/``cin`` must hold from the next cycle on.
    height, width, cin : In(unsigned(...))
    busy : Out(1)
        From the cycle after ``start`` until the last beat is written.
    read_addr : In(ArrayLayout(unsigned(addr_width), n))
        Address of each row-residue bank (the same for every lane).
    read_en : In(1)
    read_data : Out(ArrayLayout(ArrayLayout(ArrayLayout(signed(dw), max_width), n), p_in))
        Word of bank ``(i, b)``, one cycle after ``read_addr``.
    """

    def __init__(self, config):
        c = self.config = _check_config(config)
        dw = c.tile.data_width
        self.blocks = _act_blocks(c)
        self.depth = _memory_depth(c.cin_groups * self.blocks)
        self.addr_width = ceil_log2(self.depth)
        row = data.ArrayLayout(signed(dw), c.max_width)
        super().__init__({
            "activations": In(stream.Signature(data.ArrayLayout(signed(dw), c.p_in))),
            "start": In(1),
            "height": In(unsigned(c.max_height.bit_length())),
            "width": In(unsigned(c.max_width.bit_length())),
            "cin": In(unsigned(c.max_cin.bit_length())),
            "busy": Out(1),
            "read_addr": In(data.ArrayLayout(unsigned(self.addr_width), c.n)),
            "read_en": In(1),
            "read_data": Out(data.ArrayLayout(data.ArrayLayout(row, c.n), c.p_in)),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        n = c.n

        loading = Signal()
        x = Signal(_counter(c.max_width))
        y = Signal(_counter(c.max_height))
        yb = Signal(_index(n))                    # y mod n
        yq = Signal(range(self.blocks + 1))      # y // n
        g_base = Signal(_counter(c.max_cin + c.p_in))   # g * P_in
        addr = Signal(self.addr_width)           # g * blocks + y // n
        accept = Signal()
        m.d.comb += [
            self.activations.ready.eq(loading),
            accept.eq(self.activations.valid & self.activations.ready),
        ]
        with m.If(self.start):
            m.d.sync += [loading.eq(1), x.eq(0), y.eq(0), yb.eq(0), yq.eq(0), g_base.eq(0),
                         addr.eq(0)]
        with m.Elif(accept):
            with m.If(g_base + c.p_in < self.cin):
                m.d.sync += [g_base.eq(g_base + c.p_in), addr.eq(addr + self.blocks)]
            with m.Else():
                m.d.sync += g_base.eq(0)
                with m.If(x + 1 < self.width):
                    m.d.sync += [x.eq(x + 1), addr.eq(yq)]
                with m.Else():
                    m.d.sync += x.eq(0)
                    with m.If(y + 1 < self.height):
                        m.d.sync += y.eq(y + 1)
                        with m.If(yb == n - 1):
                            m.d.sync += [yb.eq(0), yq.eq(yq + 1), addr.eq(yq + 1)]
                        with m.Else():
                            m.d.sync += [yb.eq(yb + 1), addr.eq(yq)]
                    with m.Else():
                        m.d.sync += loading.eq(0)
        m.d.comb += self.busy.eq(loading)

        # One element per beat and lane: a one-hot column enable, shared by every bank.
        column = Signal(c.max_width)
        m.d.comb += column.eq(1 << x)
        row_hit = Signal(n)
        for b in range(n):
            m.d.comb += row_hit[b].eq(accept & (yb == b))

        self.memories = []
        for i in range(c.p_in):
            for b in range(n):
                mem = Memory(shape=data.ArrayLayout(signed(c.tile.data_width), c.max_width),
                             depth=self.depth, init=[])
                m.submodules[f"bank_i{i}_r{b}"] = mem
                self.memories.append(mem)
                wp = mem.write_port(granularity=1)
                rp = mem.read_port()
                for k in range(c.max_width):
                    m.d.comb += wp.data[k].eq(self.activations.payload[i])
                m.d.comb += [
                    wp.en.eq(Mux(row_hit[b], column, 0)),
                    wp.addr.eq(addr),
                    rp.addr.eq(self.read_addr[b]),
                    rp.en.eq(self.read_en),
                    self.read_data[i][b].eq(rp.data),
                ]
        return m
