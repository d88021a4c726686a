"""The zero-skipping layer engine: the Hadamard stage spends cycles on nonzero weights only.

:class:`SparseConv` keeps :class:`~winogen.hw.layer.engine.WinogradConv`'s slots, line
buffer, tile assembler, scheduler, requantizer and output queue; its weight stream and its
core differ (:mod:`winogen.gen.sparse` defines the compressed stream):

* **Entry memories.** A layer's weights are ``entries`` beats of ``K = sparse_lanes``
  entries (one per lane), stored per lane in two buffers (the next layer's load while the
  current one computes). Each entry is checked as it is stored: a position that is not
  the lane's slot, or a channel beyond the run's ``C_in``/``C_out``, sets
  ``status.errors`` bit ``weights`` and is stored as a no-op.
* **V buffers.** The scheduler issues ``ceil(C_in / P_in)`` steps per tile (the output
  channels are the lanes' business); the input transforms' ``V`` is written into three
  tile buffers, each lane's bank holding the positions of its slots (the layer's lane map
  routes them).
* **Lanes.** For each tile, every lane runs through its ``entries`` entries in lockstep,
  one per cycle: read ``V[i, e]`` of the entry's channel and slot, multiply by the entry's
  value, add to a running sum; a group's last entry writes the sum to ``M[j, e]`` in the
  lane's half of the tile's M buffer (two buffers).
* **Output.** For each group of ``P_out`` output channels, ``M`` is gathered from the lanes
  (the inverse lane map), transformed by ``Aᵀ · A`` and descaled as in the dense core: one
  output beat per cycle.

Tiles overlap: while the lanes work on one tile, the next tile's ``V`` loads and the
previous tile's outputs leave, so a tile takes ``max(entries, C_in/P_in, C_out/P_out)``
cycles. The output queue's credits count tiles.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...gen.layer import RUN_ERRORS
from ...gen.sparse import entry_fields
from ..util import delay
from .engine import FRONT_STAGES, REQUANT_STAGES, _LayerEngine, _engine_signature
from .linebuffer import MEMORY_READ_STAGES, NO_COLLISIONS, TileAssembler
from .requant import Requantizer
from .specialized import winograd_inputs, winograd_outputs

__all__ = ["SparseConv", "SparseCore", "V_BUFFERS", "QUEUE_TILES", "lane_latency"]

#: Tile buffers of V: one being read by the lanes, one loaded, one loading.
V_BUFFERS = 3
#: Tiles whose output beats the output queue has room for (its credits count tiles).
QUEUE_TILES = 6


def entry_layout(config):
    return data.StructLayout({name: unsigned(width) if name != "value" else signed(width)
                              for name, width in entry_fields(config)})


def lane_latency(config):
    """Cycles from an entry's index to its sum being written: entry read, V read, operand
    select, ``pe_stages`` product registers, accumulation."""
    return 3 + config.tile.pe_stages + 1


def _bits(count):
    return max(1, (count - 1).bit_length())


class SparseCore(wiring.Component):
    """The zero-skipping core (see the module's description).

    Members
    -------
    tiles, valid, first, last : In
        A step's tiles and flags, as the dense core's (``last``: the tile's last channel
        group).
    slot : In(1)
        The step's layer slot.
    shift, relu, layer_last : In
        The tile's, with the step (taken with ``last``).
    slot_entries, slot_map, slot_cout : In, one per slot
        Each slot's layer: entries per lane, lane map, ``C_out``.
    entry_we, entry_addr, entry_data : In
        Writes into the entry memories (``entry_data``: one entry per lane).
    tile_done : Out(1)
        The lanes have read a tile's V buffer for the last time (it is free).
    result, result_valid, result_shift, result_relu, result_layer_last, result_tile_last :
        Out: one output beat (``P_out`` channels), its requantization parameters, whether
        it is its layer's last and its tile's last.
    """

    @classmethod
    def pipeline_latency(cls, config):
        """Cycles from a tile's last step at the core to its first result, the lanes idle and
        ``entries`` 1: V write, start, the lanes, the output queue of tiles, the M read, the
        gather, the output transform and descaling."""
        t = config.tile
        return (t.input_stages + 2 + lane_latency(config) + 3 + 1 + t.output_stages
                + (t.descale_stages if t.removes_scale else 0))

    def __init__(self, config):
        c = self.config = config
        n2 = c.n * c.n
        self.entry_depth_bits = _bits(c.max_entries) + 1       # + the buffer bit
        shift_shape = unsigned(max(1, c.max_shift.bit_length()))
        super().__init__({
            "tiles": In(data.ArrayLayout(data.ArrayLayout(signed(c.tile.data_width), n2),
                                         c.p_in)),
            "valid": In(1), "first": In(1), "last": In(1),
            "slot": In(1), "shift": In(shift_shape), "relu": In(1), "layer_last": In(1),
            "slot_entries": In(data.ArrayLayout(unsigned(_bits(c.max_entries + 1)), 2)),
            "slot_map": In(data.ArrayLayout(data.ArrayLayout(unsigned(_bits(n2)), n2), 2)),
            "slot_cout": In(data.ArrayLayout(unsigned(c.max_cout.bit_length()), 2)),
            "entry_we": In(1),
            "entry_addr": In(unsigned(self.entry_depth_bits)),
            "entry_data": In(data.ArrayLayout(entry_layout(c), c.sparse_lanes)),
            "tile_done": Out(1),
            "result": Out(data.ArrayLayout(signed(c.full_output_width), c.p_out * c.m * c.m)),
            "result_valid": Out(1),
            "result_shift": Out(shift_shape),
            "result_relu": Out(1),
            "result_layer_last": Out(1),
            "result_tile_last": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        t = c.tile
        n2, K, slots = c.n * c.n, c.sparse_lanes, c.lane_slots
        vw = max(iv.width for iv in t.pe_a_intervals)
        gbits = _bits(c.cin_groups)
        vbits = _bits(V_BUFFERS)

        # -- V: input transforms, then into the lanes' banks --------------------------------
        v = winograd_inputs(m, c, self.tiles)
        d = t.input_stages
        at_v = {name: delay(m, getattr(self, name), d, f"v_{name}", reset_less=False)
                for name in ("valid", "first", "last", "slot", "shift", "relu", "layer_last")}
        group = Signal(range(max(c.cin_groups, 2)), name="v_group")
        v_buf = Signal(range(V_BUFFERS), name="v_buf")          # the tile being written
        with m.If(at_v["valid"]):
            m.d.sync += group.eq(Mux(at_v["last"], 0, group + 1))
            with m.If(at_v["last"]):
                m.d.sync += v_buf.eq(Mux(v_buf == V_BUFFERS - 1, 0, v_buf + 1))
        cur_group = Mux(at_v["first"], 0, group)
        v_map = Signal.like(self.slot_map[0], name="v_map")
        m.d.comb += v_map.eq(Mux(at_v["slot"], self.slot_map[1], self.slot_map[0]))

        # Per tile buffer: ready (all groups written) and its layer's parameters.
        v_ready = Signal(V_BUFFERS, name="v_ready")
        meta = [Signal(data.StructLayout({"slot": 1, "shift": len(self.shift), "relu": 1,
                                          "layer_last": 1}), name=f"v_meta{b}")
                for b in range(V_BUFFERS)]
        with m.If(at_v["valid"] & at_v["last"]):
            for b in range(V_BUFFERS):
                with m.If(v_buf == b):
                    m.d.sync += [v_ready[b].eq(1), meta[b].slot.eq(at_v["slot"]),
                                 meta[b].shift.eq(at_v["shift"]), meta[b].relu.eq(at_v["relu"]),
                                 meta[b].layer_last.eq(at_v["layer_last"])]

        v_banks = {}
        for k in range(K):
            for i in range(c.p_in):
                mem = Memory(shape=data.ArrayLayout(signed(vw), slots),
                             depth=1 << (gbits + vbits), init=[], attrs=NO_COLLISIONS)
                m.submodules[f"v_bank_l{k}_i{i}"] = mem
                wp, rp = mem.write_port(), mem.read_port()
                for s in range(slots):
                    pos = v_map[k * slots + s]
                    value = Signal(signed(vw), name=f"v_route_l{k}_i{i}_s{s}")
                    with m.Switch(pos):
                        for e in range(n2):
                            with m.Case(e):
                                m.d.comb += value.eq(v[i][e])
                    m.d.comb += wp.data[s].eq(value)
                m.d.comb += [wp.en.eq(at_v["valid"]), wp.addr.eq(Cat(cur_group, v_buf))]
                v_banks[k, i] = rp

        # -- the lanes' sequencer ------------------------------------------------------------
        # Tiles go through the V buffers and the M buffers in turn; a tile starts when its V
        # is complete and its M buffer is free, right after the previous one when it can.
        running = Signal(name="mac_running")
        idx = Signal(range(c.max_entries + 1), name="mac_index")
        mac_buf = Signal(range(V_BUFFERS), name="mac_vbuf")      # tile the lanes read
        m_buf = Signal(name="mac_mbuf")                          # M buffer they write
        m_busy = Signal(2, name="m_busy")                        # M buffer not yet output
        cur = Signal.like(meta[0], name="mac_meta")
        length = Signal.like(self.slot_entries[0], name="mac_entries")
        vb_next = Signal.like(mac_buf, name="mac_vbuf_next")
        m.d.comb += vb_next.eq(Mux(mac_buf == V_BUFFERS - 1, 0, mac_buf + 1))

        def meta_of(b):
            return Mux(b == 0, meta[0], Mux(b == 1, meta[1], meta[2]))
        last_entry = Signal(name="mac_last_entry")
        m.d.comb += last_entry.eq(running & (idx == length - 1))
        issue = Signal(name="mac_issue")           # an entry index goes to the lanes
        tile_first = Signal(name="mac_tile_first")
        m.d.comb += [issue.eq(running), tile_first.eq(running & (idx == 0))]
        free_m = Signal(2, name="m_free_now")      # set by the output stage
        start_m = Signal(2, name="m_start_now")

        def start(b, mb):
            mt = Signal.like(meta[0], name=None)
            m.d.comb += mt.eq(meta_of(b))
            m.d.sync += [running.eq(1), idx.eq(0), cur.eq(mt),
                         length.eq(Mux(mt.slot, self.slot_entries[1], self.slot_entries[0]))]
            m.d.comb += start_m.bit_select(mb, 1).eq(1)
        with m.If(running):
            with m.If(last_entry):
                # The tile is done with its V buffer.
                m.d.comb += self.tile_done.eq(1)
                m.d.sync += [mac_buf.eq(vb_next), m_buf.eq(~m_buf)]
                for b in range(V_BUFFERS):
                    with m.If(mac_buf == b):
                        m.d.sync += v_ready[b].eq(0)
                with m.If(v_ready.bit_select(vb_next, 1) & ~m_busy.bit_select(~m_buf, 1)):
                    start(vb_next, ~m_buf)
                with m.Else():
                    m.d.sync += running.eq(0)
            with m.Else():
                m.d.sync += idx.eq(idx + 1)
        with m.Elif(v_ready.bit_select(mac_buf, 1) & ~m_busy.bit_select(m_buf, 1)):
            start(mac_buf, m_buf)
        m.d.sync += m_busy.eq((m_busy | start_m) & ~free_m)

        # -- entry memories --------------------------------------------------------------
        # The lanes' stage registers: L1 entry read, L2 V read, L3 operand, then the product.
        tags = {"valid": issue, "tile_first": tile_first, "tile_last": last_entry,
                "mbuf": m_buf, "vbuf": mac_buf, "slot": cur.slot, "shift": cur.shift,
                "relu": cur.relu, "layer_last": cur.layer_last}
        at = lambda name, cycles: delay(m, tags[name], cycles, f"lane_{name}{cycles}",
                                        reset_less=name != "valid")
        elayout = entry_layout(c)
        pe = t.pe_stages
        acc_w = max(iv.width for iv in c.accumulator_intervals)
        m_banks = {}
        for k in range(K):
            mem = Memory(shape=elayout, depth=1 << self.entry_depth_bits, init=[],
                         attrs=NO_COLLISIONS)
            m.submodules[f"entries_l{k}"] = mem
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.en.eq(self.entry_we), wp.addr.eq(self.entry_addr),
                         wp.data.eq(self.entry_data[k]),
                         rp.addr.eq(Cat(idx[:self.entry_depth_bits - 1], cur.slot))]
            entry1 = Signal(elayout, name=f"entry1_l{k}")
            m.d.comb += entry1.eq(rp.data)                        # L1
            valid1 = at("valid", 1)
            for i in range(c.p_in):
                m.d.comb += v_banks[k, i].addr.eq(Cat(entry1.cin_group[:gbits], at("vbuf", 1)))
            entry2 = Signal(elayout, name=f"entry2_l{k}")
            m.d.sync += entry2.eq(entry1)                         # L2: V words arrive
            lane_word = Signal(data.ArrayLayout(signed(vw), slots), name=f"vword_l{k}")
            with m.Switch(entry2.cin_lane):
                for i in range(c.p_in):
                    with m.Case(i):
                        m.d.comb += lane_word.eq(v_banks[k, i].data)
            operand = Signal(signed(vw), name=f"operand_l{k}")
            weight = Signal(signed(c.core_weight[1]), name=f"weight_l{k}")
            entry3 = Signal(elayout, name=f"entry3_l{k}")
            m.d.sync += [operand.eq(lane_word[entry2.slot] if slots > 1 else lane_word[0]),
                         weight.eq(entry2.value), entry3.eq(entry2)]   # L3
            product = Signal(signed(vw + c.core_weight[1]), name=f"product_l{k}")
            m.d.comb += product.eq(operand * weight)
            p = delay(m, product, pe, f"product_l{k}", reset_less=True)
            entry_p = delay(m, entry3, pe, f"entry_l{k}", reset_less=True)
            d_acc = 3 + pe
            valid_p = at("valid", d_acc) & entry_p.valid
            first_p = at("tile_first", d_acc)
            acc = Signal(signed(acc_w), name=f"acc_l{k}")
            fresh = Signal(name=f"fresh_l{k}", init=1)
            total = Signal(signed(acc_w), name=f"total_l{k}")
            m.d.comb += total.eq(Mux(fresh | first_p, 0, acc) + p)
            with m.If(valid_p):
                m.d.sync += [acc.eq(total), fresh.eq(entry_p.group_end)]
            # M write (L = lane_latency): the group's sum into the lane's bank
            for jj in range(c.p_out):
                mb = Memory(shape=data.ArrayLayout(signed(acc_w), slots),
                            depth=1 << (_bits(c.cout_groups) + 1), init=[], attrs=NO_COLLISIONS)
                m.submodules[f"m_bank_l{k}_o{jj}"] = mb
                wp = mb.write_port(granularity=1)
                for s in range(slots):
                    m.d.comb += wp.data[s].eq(total)
                write = valid_p & entry_p.group_end & (entry_p.cout_lane == jj)
                for s in range(slots):
                    m.d.comb += wp.en[s].eq(write & (entry_p.slot == s if slots > 1 else 1))
                m.d.comb += wp.addr.eq(Cat(entry_p.cout_group[:_bits(c.cout_groups)],
                                           at("mbuf", d_acc)))
                m_banks[k, jj] = mb.read_port()
            del valid1

        # -- output: a tile's M buffers out, one group of P_out channels per cycle -------------
        done = at("tile_last", lane_latency(c) - 1)     # the tile's last sums are written
        done_meta = {name: at(name, lane_latency(c) - 1)
                     for name in ("mbuf", "slot", "shift", "relu", "layer_last")}
        # A queue of finished tiles (at most two: one per M buffer).
        q_valid = Signal(2, name="out_q_valid")
        q_meta = [Signal(data.StructLayout({"mbuf": 1, "slot": 1, "shift": len(self.shift),
                                            "relu": 1, "layer_last": 1}), name=f"out_q{b}")
                  for b in range(2)]
        out_busy = Signal(name="out_busy")
        out = Signal.like(q_meta[0], name="out_tile")
        og = Signal(range(max(c.cout_groups, 2)), name="out_group")
        co_left = Signal(range(c.max_cout + 1), name="out_co_left")
        out_last = Signal(name="out_group_last")
        m.d.comb += out_last.eq(co_left <= c.p_out)
        head = Signal(name="out_q_head")
        tail = Signal(name="out_q_tail")
        with m.If(done):
            m.d.sync += tail.eq(~tail)
            for b in range(2):
                with m.If(tail == b):
                    m.d.sync += [q_valid[b].eq(1), q_meta[b].mbuf.eq(done_meta["mbuf"]),
                                 q_meta[b].slot.eq(done_meta["slot"]),
                                 q_meta[b].shift.eq(done_meta["shift"]),
                                 q_meta[b].relu.eq(done_meta["relu"]),
                                 q_meta[b].layer_last.eq(done_meta["layer_last"])]
        head_valid = q_valid.bit_select(head, 1)
        head_meta = Signal.like(q_meta[0], name="out_head_meta")
        m.d.comb += head_meta.eq(Mux(head, q_meta[1], q_meta[0]))
        read = Signal(name="out_read")            # this cycle reads group og of `out`
        m.d.comb += read.eq(out_busy)
        with m.If(~out_busy):
            with m.If(head_valid):
                m.d.sync += [out_busy.eq(1), out.eq(head_meta), og.eq(0),
                             co_left.eq(Mux(head_meta.slot, self.slot_cout[1],
                                            self.slot_cout[0])),
                             head.eq(~head)]
                for b in range(2):
                    with m.If(head == b):
                        m.d.sync += q_valid[b].eq(0)
        with m.Else():
            m.d.sync += [og.eq(og + 1), co_left.eq(co_left - c.p_out)]
            with m.If(out_last):
                m.d.sync += out_busy.eq(0)
                m.d.comb += free_m.bit_select(out.mbuf, 1).eq(1)
        # q_valid set and cleared in the same cycle on different entries: no conflict, as
        # the tail never reaches the head while both are valid (two M buffers).
        for (k, jj), rp in m_banks.items():
            m.d.comb += rp.addr.eq(Cat(og[:_bits(c.cout_groups)], out.mbuf))
        # One cycle later: the words; gather each position from its lane and slot.
        r_valid = delay(m, read, 1, "out_read", reset_less=False)
        r_meta = delay(m, out.as_value(), 1, "out_meta", reset_less=True)
        r_last = delay(m, out_last, 1, "out_last", reset_less=True)
        r_meta = data.View(q_meta[0].shape(), r_meta)
        inv_map = Signal.like(self.slot_map[0], name="out_map")
        m.d.comb += inv_map.eq(Mux(r_meta.slot, self.slot_map[1], self.slot_map[0]))
        gathered = Signal(data.ArrayLayout(data.ArrayLayout(signed(acc_w), n2), c.p_out),
                          name="out_m")
        for jj in range(c.p_out):
            for e in range(n2):
                value = Signal(signed(acc_w), name=f"gather_o{jj}_e{e}")
                # position e lives in the lane/slot q with lane_map[q] == e
                for qq in range(n2):
                    k, s = divmod(qq, slots)
                    with m.If(inv_map[qq] == e):
                        m.d.comb += value.eq(m_banks[k, jj].data[s])
                m.d.sync += gathered[jj][e].eq(value)
        g_valid = delay(m, r_valid, 1, "gather_valid", reset_less=False)
        g_meta = data.View(q_meta[0].shape(),
                           delay(m, r_meta.as_value(), 1, "gather_meta", reset_less=True))
        g_last = delay(m, r_last, 1, "gather_last", reset_less=True)

        for j in range(c.p_out):
            winograd_outputs(m, c, j, gathered[j], list(c.accumulator_intervals),
                             self.result)
        back = t.output_stages + (t.descale_stages if t.removes_scale else 0)
        m.d.comb += [
            self.result_valid.eq(delay(m, g_valid, back, "result_valid", reset_less=False)),
            self.result_shift.eq(delay(m, g_meta.shift, back, "result_shift", reset_less=True)),
            self.result_relu.eq(delay(m, g_meta.relu, back, "result_relu", reset_less=True)),
            self.result_tile_last.eq(delay(m, g_last, back, "result_tile_last",
                                           reset_less=True)),
            self.result_layer_last.eq(delay(m, g_last & g_meta.layer_last, back,
                                            "result_layer_last", reset_less=True)),
        ]
        return m


class SparseConv(_LayerEngine):
    """Zero-skipping Winograd convolution-layer engine (``LayerConfig.sparse_lanes``).

    Parameters
    ----------
    config : LayerConfig
        With ``sparse_lanes`` (kept as ``layer_config``).

    Members
    -------
    config : In(stream.Signature(config_layout(config)))
        With the fields ``entries`` and ``lane_map`` (:mod:`winogen.gen.sparse`).
    weights : In(stream.Signature(ArrayLayout(unsigned(entry_width), sparse_lanes)))
        Element ``k`` is lane ``k``'s entry (:func:`winogen.gen.sparse.pack_entry`).
    activations, outputs, outputs_last, status
        As :class:`~winogen.hw.layer.engine.WinogradConv`.
    """

    algorithm = "winograd"
    core_class = SparseCore

    @classmethod
    def _check(cls, config):
        super()._check(config)
        if not config.sparse:
            raise ValueError("SparseConv needs a LayerConfig with sparse_lanes, not "
                             "sparse_lanes=None")

    @classmethod
    def _signature(cls, config):
        members = _engine_signature(config)
        width = sum(w for _, w in entry_fields(config))
        members["weights"] = In(stream.Signature(data.ArrayLayout(unsigned(width),
                                                                  config.sparse_lanes)))
        return members

    def _weight_store(self, m):
        return None

    def elaborate(self, platform):
        self._core = None
        return super().elaborate(platform)

    def _weight_loader(self, m, wstore, slots):
        """Each slot's ``entries`` beats into the entry memories (buffer = slot), each entry
        checked: a bad one is stored as a no-op and sets ``status.errors`` bit ``weights``."""
        c = self.layer_config
        self._slots = slots
        ptr = slots.weight_ptr
        run = slots.pick(m, slots.run, ptr, "weight_run")
        loading = Signal(name="weights_loading")
        count = Signal(range(c.max_entries + 1), name="weights_count")
        beat = Signal.like(self.weights.payload, name="weights_beat")
        beat_valid = Signal(name="weights_beat_valid")
        beat_addr = Signal(range(c.max_entries + 1), name="weights_beat_addr")
        beat_buf = Signal(name="weights_beat_buffer")
        self._entry_write = (beat_valid, beat_addr, beat, beat_buf, run)
        m.d.comb += self.weights.ready.eq(loading)
        m.d.sync += beat_valid.eq(0)
        with m.If(~loading):
            with m.If(slots.valid.bit_select(ptr, 1) & ~slots.weights_loaded.bit_select(ptr, 1)):
                m.d.sync += [loading.eq(1), count.eq(0)]
        with m.Else():
            with m.If(self.weights.valid):
                m.d.sync += [beat.eq(self.weights.payload), beat_valid.eq(1),
                             beat_addr.eq(count), beat_buf.eq(ptr), count.eq(count + 1)]
                with m.If(count == run.entries - 1):
                    m.d.sync += [loading.eq(0), ptr.eq(~ptr)]
                    for s in range(2):
                        with m.If(ptr == s):
                            m.d.sync += slots.weights_loaded[s].eq(1)
        m.d.comb += self.status.loading_weights.eq(loading)

    def _steps(self, m, sched, lbuf, slots):
        super()._steps(m, sched, lbuf, slots)
        # One step per channel group: the output channels are the lanes' (C_out <= P_out
        # as the scheduler sees it).
        m.d.comb += sched.layer.run.cout.eq(1)

    def _pipeline(self, m, wstore, lbuf, sched):
        c = self.layer_config
        slots = self._slots
        step = Signal.like(sched.step, name="step_r")
        m.d.sync += step.eq(sched.step)
        m.d.comb += lbuf.read.eq(step.read)
        m.submodules.assembler = asm = TileAssembler(c)
        to_words = 1 + MEMORY_READ_STAGES
        m.d.comb += [
            asm.words.eq(lbuf.words),
            asm.col_phase.eq(delay(m, step.col_phase, to_words, "col_phase", reset_less=True)),
            asm.col_valid.eq(delay(m, step.col_valid, to_words, "col_valid", reset_less=True)),
            asm.lane_valid.eq(delay(m, step.lane_valid, to_words, "lane_valid",
                                    reset_less=True)),
            asm.row_phase.eq(delay(m, step.row_phase, to_words + 1, "row_phase",
                                   reset_less=True)),
            asm.row_valid.eq(delay(m, step.row_valid, to_words + 1, "row_valid",
                                   reset_less=True)),
        ]
        m.submodules.core = core = SparseCore(c)
        self._core = core
        m.d.comb += core.tiles.eq(asm.tiles)
        for name in ("valid", "first", "last"):
            m.d.comb += getattr(core, name).eq(
                delay(m, getattr(step, name), FRONT_STAGES - 1, f"core_{name}",
                      reset_less=False))
        # the step's slot: the weight buffer bit the scheduler carries
        slot_bit = step.weight_addr[-1]
        for name, value in (("slot", slot_bit), ("shift", step.shift),
                            ("relu", step.relu if c.output_width is not None else 0),
                            ("layer_last", step.layer_last)):
            m.d.comb += getattr(core, name).eq(
                delay(m, value, FRONT_STAGES - 1, f"core_{name}", reset_less=True))
        for s in range(2):
            run = slots.run[s]
            m.d.comb += [core.slot_entries[s].eq(run.entries), core.slot_cout[s].eq(run.cout)]
            for q in range(c.n * c.n):
                b = _bits(c.n * c.n)
                m.d.comb += core.slot_map[s][q].eq(run.lane_map[q * b:(q + 1) * b])
        self._entries(m, core)

        # Hold a new tile while every V buffer is taken.
        in_flight = Signal(range(V_BUFFERS + 1), name="tiles_in_flight")
        started = sched.step.valid & sched.step.first
        m.d.sync += in_flight.eq(in_flight + started - core.tile_done)
        m.d.comb += sched.hold.eq(in_flight == V_BUFFERS)

        if c.output_width is not None:
            rq = Requantizer(c.full_output_width, c.output_width, c.p_out * c.m * c.m,
                             len(core.result_shift), c.rounding, stages=REQUANT_STAGES)
            m.submodules.requantizer = rq
            m.d.comb += [rq.x.eq(core.result), rq.valid.eq(core.result_valid),
                         rq.shift.eq(core.result_shift), rq.relu.eq(core.result_relu)]
            result, result_valid = rq.y, rq.y_valid
            layer_last = delay(m, core.result_layer_last, REQUANT_STAGES, "rq_layer_last",
                               reset_less=True)
            tile_last = delay(m, core.result_tile_last, REQUANT_STAGES, "rq_tile_last",
                              reset_less=True)
        else:
            result, result_valid = core.result, core.result_valid
            layer_last, tile_last = core.result_layer_last, core.result_tile_last
        entry = Cat(result.as_value(), layer_last, tile_last)
        m.submodules.output_queue = queue = SyncFIFOBuffered(
            width=len(entry), depth=QUEUE_TILES * c.cout_groups)
        m.d.comb += [queue.w_data.eq(entry), queue.w_en.eq(result_valid)]
        return queue

    def _entries(self, m, core):
        """Check each stored beat's entries against the run and the lane map."""
        c = self.layer_config
        beat_valid, beat_addr, beat, beat_buf, _ = self._entry_write
        # The beat's own layer (the loader's pointer has moved on after a layer's last beat).
        run = self._slots.pick(m, self._slots.run, beat_buf, "entry_run")
        n2, K, slots = c.n * c.n, c.sparse_lanes, c.lane_slots
        b = _bits(n2)
        elayout = entry_layout(c)
        bad = Signal(name="weights_bad")
        flags = []
        for k in range(K):
            e = data.View(elayout, beat[k])
            ok = Signal(name=f"entry_ok_l{k}")
            mapped = Signal(b, name=f"entry_slot_pos_l{k}")
            with m.Switch(e.slot):
                for s in range(slots):
                    with m.Case(s):
                        q = k * slots + s
                        m.d.comb += mapped.eq(run.lane_map[q * b:(q + 1) * b])
                with m.Default():
                    m.d.comb += mapped.eq(n2)      # no such slot: never a position
            cin = e.cin_group * c.p_in + e.cin_lane
            cout = e.cout_group * c.p_out + e.cout_lane
            m.d.comb += ok.eq((mapped == e.position) & (e.position < n2)
                              & (e.cin_lane < c.p_in) & (cin < run.cin)
                              & (e.cout_lane < c.p_out) & (cout < run.cout))
            m.d.comb += core.entry_data[k].eq(Mux(ok | ~e.valid, beat[k], 0))
            flags.append(e.valid & ~ok)
        m.d.comb += [bad.eq(beat_valid & Cat(*flags).any()), core.entry_we.eq(beat_valid),
                     core.entry_addr.eq(Cat(beat_addr[:core.entry_depth_bits - 1], beat_buf))]
        self._weights_bad = bad

    def _output_credits(self):
        return QUEUE_TILES          # credits count tiles: a tile's last step takes one

    def _credit_beat(self, queue, width):
        return queue.r_data[width + 1]      # a tile's last beat gives it back

    def _output(self, m, queue, sched, slots):
        super()._output(m, queue, sched, slots)
        # an entry out of range: sticky in status.errors until the next config beat
        with m.If(self._weights_bad):
            m.d.sync += self._errors[RUN_ERRORS["weights"]].eq(1)
