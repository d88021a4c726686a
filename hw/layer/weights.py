"""The layer engines' double-buffered filter memory: :class:`WeightStore`."""

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..winoquant import make_filter_transform
from ..ecp5_ebr import EBR_READ_LATENCY, ebr_memory
from ..util import delay
from .layouts import _check_config, _counter, _index, _weight_shape, above, at_most
from .linebuffer import MEMORY_READ_STAGES, NO_COLLISIONS

__all__ = ["WeightStore"]


class WeightStore(wiring.Component):
    """Filter memory with two buffers (``weight_buffers``): one layer's filters load while
    another's are read.

    ``P_out × P_in`` banks; bank ``(j, i)`` holds the filters with ``co ≡ j (mod P_out)``,
    ``ci ≡ i (mod P_in)`` of buffer ``buf`` at address ``{buf, co // P_out, ci // P_in}``
    (fields of ``weight_address_fields`` bits). A beat carries ``filters_per_beat``
    filters ``(co, ci + k)``, beats ``for co: for ci in steps of filters_per_beat``; filters
    with ``ci + k >= C_in`` are not written. With ``filter_transform="online"`` each raw
    filter goes through a :class:`ConstTransform2D` by ``G`` on its way in.

    Parameters
    ----------
    config : LayerConfig

    Members
    -------
    weights : In(stream.Signature(ArrayLayout(w, filters_per_beat*k)))
        Element ``f·k + e`` is element ``e`` of the beat's filter ``f``.
    start : In(1)
        Begin loading a layer into buffer ``buffer`` (pulse, only while not ``busy``);
        ``cin``, ``cout``, ``buffer`` must hold until ``busy`` falls.
    cin, cout : In(unsigned(...))
    buffer : In(1)
    busy : Out(1)
        From the cycle after ``start`` until the last filter is written.
    read_addr : In(unsigned(address width))
        ``{buffer, cog, cig}``.
    read_data : Out(ArrayLayout(ArrayLayout(sw, count), p_out * p_in))
        Filter ``j·p_in + i`` of bank ``(j, i)``, through ``MEMORY_READ_STAGES`` registers:
        ``1 + MEMORY_READ_STAGES`` cycles after ``read_addr``.
    """

    def __init__(self, config):
        c = self.config = _check_config(config)
        count, width = c.weight_payload
        s_count, s_width = c.stored_weight
        self.addr_width = sum(c.weight_address_fields)
        # Filters transformed on their way in (not when stored raw and transformed at read).
        self.online = c.filter_transform == "online" and c.filter_store == "transformed"
        super().__init__({
            "weights": In(stream.Signature(data.ArrayLayout(_weight_shape(c, width),
                                                            c.filters_per_beat * count))),
            "start": In(1),
            "cin": In(unsigned(c.max_cin.bit_length())),
            "cout": In(unsigned(c.max_cout.bit_length())),
            "buffer": In(1),
            "busy": Out(1),
            "read_addr": In(unsigned(self.addr_width)),
            "read_data": Out(data.ArrayLayout(data.ArrayLayout(_weight_shape(c, s_width), s_count),
                                              c.p_out * c.p_in)),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        f = c.filters_per_beat
        s_count, s_width = c.stored_weight
        gf, of, bf = c.weight_address_fields

        loading = Signal()
        # Remaining counts with "last" flags one step ahead (no adder feeds a comparison).
        ci_left = Signal(_counter(c.max_cin))       # C_in - ci
        co_left = Signal(_counter(c.max_cout))      # C_out - co
        ci_last, co_last = Signal(), Signal()
        lane_i = Signal(_index(c.p_in))          # lane of the beat's first filter
        cig = Signal(_index(c.cin_groups))
        lane_j = Signal(_index(c.p_out))
        cog = Signal(_index(c.cout_groups))
        accept = Signal()
        m.d.comb += [
            self.weights.ready.eq(loading),
            accept.eq(self.weights.valid & self.weights.ready),
        ]
        one_beat = at_most(self.cin, f)
        with m.If(self.start):
            m.d.sync += [loading.eq(1), ci_left.eq(self.cin), co_left.eq(self.cout),
                         ci_last.eq(one_beat), co_last.eq(at_most(self.cout, 1)),
                         lane_i.eq(0), cig.eq(0), lane_j.eq(0), cog.eq(0)]
        with m.Elif(accept):
            with m.If(~ci_last):
                m.d.sync += [ci_left.eq(ci_left - f), ci_last.eq(at_most(ci_left, 2 * f))]
                with m.If(lane_i == c.p_in - f):
                    m.d.sync += [lane_i.eq(0), cig.eq(cig + 1)]
                with m.Else():
                    m.d.sync += lane_i.eq(lane_i + f)
            with m.Else():
                m.d.sync += [ci_left.eq(self.cin), ci_last.eq(one_beat), lane_i.eq(0),
                             cig.eq(0)]
                with m.If(~co_last):
                    m.d.sync += [co_left.eq(co_left - 1), co_last.eq(at_most(co_left, 2))]
                    with m.If(lane_j == c.p_out - 1):
                        m.d.sync += [lane_j.eq(0), cog.eq(cog + 1)]
                    with m.Else():
                        m.d.sync += lane_j.eq(lane_j + 1)
                with m.Else():
                    m.d.sync += loading.eq(0)

        # Write path: the (optional) filter transform is free-running; the write controls
        # are delayed to meet its output.
        addr = Signal(self.addr_width)
        m.d.comb += addr.eq(Cat(cig[:gf], cog[:of], self.buffer[:bf]))
        count = c.weight_payload[0]
        payload = self.weights.payload
        values = []
        latency = 0
        for k in range(f):
            raw = [payload[k * count + e] for e in range(count)]
            if self.online:
                t = c.tile
                ft = make_filter_transform(t, stages=t.filter_stages)
                m.submodules[f"filter_transform{k}"] = ft
                for e in range(count):
                    m.d.comb += ft.x[e].eq(raw[e])
                values.append([ft.y[e] for e in range(s_count)])
                latency = ft.latency
            else:
                values.append(raw)
        present = Signal(f)
        for k in range(f):
            m.d.comb += present[k].eq(above(ci_left, k))
        # One register more before the memories' write ports (address, enables and data), so
        # no logic sits between the stream handshake and a block RAM input.
        values = [[delay(m, v, 1, f"write_data{k}_{e}", reset_less=True)
                   for e, v in enumerate(filt)] for k, filt in enumerate(values)]
        latency += 1
        w_addr = delay(m, addr, latency, "write_addr", reset_less=False)
        # The bank decode (lane and channel compares) is computed one register earlier and
        # each bank's write enable is a register of its own: in a large engine the banks
        # spread across the chip, and a decode after one shared register added logic to
        # a net that already crosses it.
        early = latency - 1
        e_valid = delay(m, accept, early, "write_valid", reset_less=False)
        e_j = delay(m, lane_j, early, "write_lane_out", reset_less=False)
        e_i = delay(m, lane_i, early, "write_lane_in", reset_less=False)
        e_present = delay(m, present, early, "write_present", reset_less=False)
        in_flight = Signal(latency)
        m.d.sync += in_flight.eq((in_flight << 1) | accept)
        m.d.comb += self.busy.eq(loading | in_flight.any())

        self.memories = []
        word_layout = data.ArrayLayout(_weight_shape(c, s_width), s_count)
        plan = c.ebr_plans["weights"] if c.bram == "ecp5" else None
        if plan is not None:
            words = []
            for k in range(f):
                word = Signal(word_layout, name=f"write_word{k}")
                m.d.comb += [word[e].eq(values[k][e]) for e in range(s_count)]
                words.append(word)
        for j in range(c.p_out):
            for i in range(c.p_in):
                k, base = i % f, i - i % f      # the beat's filter that may land here
                write_en = Signal(name=f"write_en_o{j}_i{i}")
                m.d.sync += write_en.eq(e_valid & (e_j == j) & (e_i == base) & e_present[k])
                if plan is not None:
                    # DP16KD with its output register (see the line buffer)
                    groups = ebr_memory(m, plan, write_addr=w_addr,
                                        write_data=[words[k].as_value()], write_en=[write_en],
                                        read_addr=self.read_addr, name=f"bank_o{j}_i{i}")
                    self.memories.append(plan)
                    m.d.comb += self.read_data[j * c.p_in + i].eq(
                        delay(m, groups[0], 1 + MEMORY_READ_STAGES - EBR_READ_LATENCY,
                              f"filter_o{j}_i{i}", reset_less=True))
                    continue
                mem = Memory(shape=word_layout, depth=1 << self.addr_width, init=[],
                             attrs=NO_COLLISIONS)
                m.submodules[f"bank_o{j}_i{i}"] = mem
                self.memories.append(mem)
                wp = mem.write_port()
                rp = mem.read_port()
                for e in range(s_count):
                    m.d.comb += wp.data[e].eq(values[k][e])
                m.d.comb += [
                    wp.addr.eq(w_addr),
                    wp.en.eq(write_en),
                    rp.addr.eq(self.read_addr),
                ]
                # Block RAM outputs are slow: registered twice (as the line buffer's).
                m.d.comb += self.read_data[j * c.p_in + i].eq(
                    delay(m, rp.data, MEMORY_READ_STAGES, f"filter_o{j}_i{i}",
                          reset_less=True))
        return m
