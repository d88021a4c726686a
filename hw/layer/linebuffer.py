"""The activation line buffer: :class:`LineBuffer` (ring of rows, writer, read ports) and
:class:`TileAssembler` (column select, row rotation and masks, two register stages).

Geometry (from :class:`~winogen.gen.layer.LayerConfig`): per input lane, ``n`` row banks
× ``col_banks`` column banks, each a memory of ``m``-element words. Padded column ``xp``
(map column ``xp - padding``) is element ``xp mod m`` of block ``xp // m``; block ``b``
lives in column bank ``b mod col_banks`` at word ``b // col_banks``. Row ``g`` (a count
of every row written since reset, wrapping) lives in row bank ``g mod n`` at ring slot
``(g // n) mod ring_blocks``. The address of a word is the concatenation
``{ring slot, channel group, word}`` (fields of ``act_address_fields`` bits), so no
address arithmetic sits between the counters and the memories. Padding is never stored:
rows and columns outside the map are masked to zero when a tile is assembled.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..ecp5_ebr import EBR_READ_LATENCY, ebr_memory
from ..util import delay
from .layouts import _check_config, _counter, _index, above, at_most

__all__ = ["LineBuffer", "TileAssembler", "row_counter_shape", "wrapped_ge",
           "MEMORY_READ_STAGES", "NO_COLLISIONS"]

#: Memory attributes: a valid read never meets a write to the same word (the ring keeps
#: the rows being read; weights load into the buffer not being read), so Yosys need not
#: emulate read-before-write with logic after the block RAM's output.
NO_COLLISIONS = {"no_rw_check": 1}

#: Registers after every block-RAM read port (the memory's own output register is not
#: used by Yosys): the first can sit next to the memory, the second next to the logic.
MEMORY_READ_STAGES = 2


def row_counter_shape(config):
    """Shape of the wrapping row counters (:attr:`LayerConfig.row_counter_width`)."""
    return unsigned(config.row_counter_width)


def wrapped_ge(a, b, width):
    """``a >= b`` for ``width``-bit wrapping counters whose true distance is below half
    their range (the sign of the difference modulo ``2**width``)."""
    return ~(a - b)[width - 1]


def read_layout(config):
    """One read of the line buffer: a ring slot per row bank, a word per column bank, the
    channel group."""
    c = config
    return data.StructLayout({
        "ring": data.ArrayLayout(_index(c.ring_blocks), c.n),
        "word": data.ArrayLayout(_index(c.col_words), c.col_banks),
        "group": _index(c.cin_groups),
    })


class LineBuffer(wiring.Component):
    """Ring of image rows fed by the activation stream; one word of every bank read per cycle.

    The writer takes one layer at a time (``start``); beats come ``for y: for x in steps of
    pixels_per_beat: for g``, element ``k·P_in + i`` being channel ``g·P_in + i`` of pixel
    ``x + k`` (pixels at or beyond ``width`` are ignored). A beat is accepted only while the
    ring has room for its row and one more: row ``g`` may be written while
    ``g + 1 < live_low + ring_rows``, ``live_low`` being the lowest row the scheduler still
    reads. Writes land two cycles after the beat; ``landed`` counts the rows complete in
    memory (wrapping).

    Parameters
    ----------
    config : LayerConfig

    Members
    -------
    activations : In(stream.Signature(ArrayLayout(signed(dw), pixels_per_beat·p_in)))
    start : In(1)
        Begin a layer (pulse, only while not ``busy``); ``height``, ``width``, ``cin``,
        ``padding`` must hold until ``busy`` falls.
    height, width, cin, padding : In(...)
    busy : Out(1)
        From the cycle after ``start`` until the layer's last beat is accepted.
    row, row_bank, row_ring : Out(...)
        The next row to be written (wrapping count), its row bank and ring slot: sampled
        with ``start``, the layer's first row.
    landed : Out(row counter)
        Rows complete in memory.
    live_low : In(row counter)
        Lowest row still to be read.
    read : In(read_layout(config))
        Addresses of this cycle's read (every bank reads every cycle).
    words : Out(ArrayLayout(lane × row bank × column bank words))
        The words read, through :data:`MEMORY_READ_STAGES` registers: valid
        ``1 + MEMORY_READ_STAGES`` cycles after ``read``.
    """

    def __init__(self, config):
        c = self.config = _check_config(config)
        dw = c.tile.data_width
        word = data.ArrayLayout(signed(dw), c.m)
        words = data.ArrayLayout(data.ArrayLayout(data.ArrayLayout(word, c.col_banks), c.n),
                                 c.p_in)
        counter = row_counter_shape(c)
        super().__init__({
            "activations": In(stream.Signature(
                data.ArrayLayout(signed(dw), c.pixels_per_beat * c.p_in))),
            "start": In(1),
            "height": In(unsigned(c.max_height.bit_length())),
            "width": In(unsigned(c.max_width.bit_length())),
            "cin": In(unsigned(c.max_cin.bit_length())),
            "padding": In(unsigned(max(1, (c.r // 2).bit_length()))),
            "busy": Out(1),
            "row": Out(counter),
            "row_bank": Out(_index(c.n)),
            "row_ring": Out(_index(c.ring_blocks)),
            "landed": Out(counter),
            "live_low": In(counter),
            "read": In(read_layout(c)),
            "words": Out(words),
        })

    def elaborate(self, platform):
        m = Module()
        accept, row_done, beat = self._writer(m)
        self._memories(m, accept, beat)
        # A row is readable once its last write has landed (two cycles after the beat).
        landed_now = delay(m, row_done, 1, "row_landed", reset_less=False)
        with m.If(landed_now):
            m.d.sync += self.landed.eq(self.landed + 1)
        return m

    def _writer(self, m):
        """Beat counters, the ring's room check and the first write stage."""
        c = self.config
        n, mo, q, banks = c.n, c.m, c.pixels_per_beat, c.col_banks
        span = banks * mo
        active = Signal()
        room = Signal()
        # Remaining counts with "last" flags one step ahead (no adder feeds a comparison).
        y_left = Signal(_counter(c.max_height))            # rows left, this one included
        x_left = Signal(_counter(c.max_width))             # pixels left in the row
        ci_left = Signal(_counter(c.max_cin))              # channels left at this group
        y_last, x_last, g_last = Signal(), Signal(), Signal()
        g = Signal(_index(c.cin_groups))
        phase = Signal(range(span))                      # (x0 + padding) mod (col_banks·m)
        word = Signal(_index(c.col_words + 1))           # (x0 + padding) // (col_banks·m)
        accept = Signal()
        m.d.comb += [
            self.busy.eq(active),
            self.activations.ready.eq(active & room),
            accept.eq(self.activations.valid & self.activations.ready),
        ]
        # Room for this row and the next one: row + 1 < live_low + ring_rows, conservative by
        # one row so that the check (a cycle or two behind the counters) never lets a beat
        # overwrite a row still read; one adder level per register.
        width = c.row_counter_width
        next_row = Signal.like(self.row, name="next_row", init=1)     # row + 1
        limit = Signal.like(self.row, name="room_limit")              # live_low + ring_rows
        m.d.sync += [limit.eq(self.live_low + c.ring_rows),
                     room.eq(~wrapped_ge(next_row, limit, width))]

        row_done = Signal()
        m.d.comb += row_done.eq(accept & g_last & x_last)
        groups_one = at_most(self.cin, c.p_in)
        with m.If(self.start):
            m.d.sync += [active.eq(1), y_left.eq(self.height), x_left.eq(self.width),
                         ci_left.eq(self.cin), g.eq(0),
                         y_last.eq(at_most(self.height, 1)), x_last.eq(at_most(self.width, q)),
                         g_last.eq(groups_one), phase.eq(self.padding), word.eq(0)]
        with m.Elif(accept):
            with m.If(~g_last):
                m.d.sync += [g.eq(g + 1), ci_left.eq(ci_left - c.p_in),
                             g_last.eq(at_most(ci_left, 2 * c.p_in))]
            with m.Else():
                m.d.sync += [g.eq(0), ci_left.eq(self.cin), g_last.eq(groups_one)]
                with m.If(~x_last):
                    m.d.sync += [x_left.eq(x_left - q), x_last.eq(at_most(x_left, 2 * q))]
                    # q < col_banks·m, so the phase wraps at most once.
                    with m.If(phase >= span - q if span > q else 1):
                        m.d.sync += [phase.eq(phase + q - span), word.eq(word + 1)]
                    with m.Else():
                        m.d.sync += phase.eq(phase + q)
                with m.Else():
                    m.d.sync += [x_left.eq(self.width), x_last.eq(at_most(self.width, q)),
                                 phase.eq(self.padding), word.eq(0),
                                 y_left.eq(y_left - 1), y_last.eq(at_most(y_left, 2))]
                    with m.If(y_last):
                        m.d.sync += active.eq(0)
        with m.If(row_done):
            m.d.sync += [self.row.eq(next_row), next_row.eq(next_row + 1)]
            with m.If(self.row_bank == n - 1):
                m.d.sync += [self.row_bank.eq(0),
                             self.row_ring.eq(Mux(self.row_ring == c.ring_blocks - 1, 0,
                                                  self.row_ring + 1))]
            with m.Else():
                m.d.sync += self.row_bank.eq(self.row_bank + 1)

        # Stage W0: the beat and where it goes.
        beat = {
            "valid": Signal(name="w0_valid"),
            "data": Signal.like(self.activations.payload, name="w0_data", reset_less=True),
            "phase": Signal.like(phase, name="w0_phase", reset_less=True),
            "word": Signal.like(word, name="w0_word", reset_less=True),
            "group": Signal.like(g, name="w0_group", reset_less=True),
            "bank": Signal.like(self.row_bank, name="w0_bank", reset_less=True),
            "ring": Signal.like(self.row_ring, name="w0_ring", reset_less=True),
            "pixels": Signal(q, name="w0_pixels", reset_less=True),   # pixel k inside the map
        }
        m.d.sync += [
            beat["valid"].eq(accept), beat["data"].eq(self.activations.payload),
            beat["phase"].eq(phase), beat["word"].eq(word), beat["group"].eq(g),
            beat["bank"].eq(self.row_bank), beat["ring"].eq(self.row_ring),
        ]
        for k in range(q):
            m.d.sync += beat["pixels"][k].eq(above(x_left, k))
        return accept, row_done, beat

    def _memories(self, m, accept, beat):
        """Stage W1 (element routing and enables), the memories and their read registers."""
        c = self.config
        n, mo, q, banks = c.n, c.m, c.pixels_per_beat, c.col_banks
        span = banks * mo
        dw = c.tile.data_width
        wf, gf, rf = c.act_address_fields
        depth = 1 << (wf + gf + rf)

        # W1: element e of column bank s takes pixel k = (s·m + e - phase) mod span when
        # k < q; its word is the beat's, plus one where that wraps (s·m + e < phase).
        en = [Signal(mo, name=f"w1_en_s{s}") for s in range(banks)]
        addr = [Signal(wf + gf + rf, name=f"w1_addr_s{s}") for s in range(banks)]
        value = [[[Signal(signed(dw), name=f"w1_data_i{i}_s{s}_e{e}", reset_less=True)
                   for e in range(mo)] for s in range(banks)] for i in range(c.p_in)]
        bank = Signal.like(beat["bank"], name="w1_bank")
        m.d.sync += bank.eq(beat["bank"])
        for s in range(banks):
            wrap = Signal(name=f"w0_wrap_s{s}")
            # The beat's columns in this bank all come from one block (col_banks is large
            # enough), so one word per bank: the next one when the block precedes the phase.
            if s == banks - 1:      # phase < col_banks·m: the last bank never wraps
                m.d.comb += wrap.eq(0)
            else:
                m.d.comb += wrap.eq(beat["phase"] > s * mo + mo - 1)
            word = Signal.like(beat["word"], name=f"w0_word_s{s}")
            m.d.comb += word.eq(beat["word"] + wrap)
            m.d.sync += addr[s].eq(Cat(word[:wf], beat["group"][:gf], beat["ring"][:rf]))
            with m.Switch(beat["phase"]):
                for ph in range(span):
                    with m.Case(ph):
                        for e in range(mo):
                            k = (s * mo + e - ph) % span
                            if k < q:
                                m.d.sync += en[s][e].eq(beat["valid"] & beat["pixels"][k])
                                for i in range(c.p_in):
                                    m.d.sync += value[i][s][e].eq(beat["data"][k * c.p_in + i])
                            else:
                                m.d.sync += en[s][e].eq(0)

        self.memories = []
        plan = c.ebr_plans["activations"] if c.bram == "ecp5" else None
        for i in range(c.p_in):
            for b in range(n):
                for s in range(banks):
                    name = f"bank_i{i}_r{b}_c{s}"
                    write_en = Mux(bank == b, en[s], 0)
                    write_addr = addr[s]
                    read_addr = Cat(self.read.word[s][:wf], self.read.group[:gf],
                                    self.read.ring[b][:rf])
                    if plan is not None:
                        # DP16KD with its output register: the same read latency, short
                        # clock-to-out, one fabric register after it
                        groups = ebr_memory(m, plan, write_addr=write_addr,
                                            write_data=[value[i][s][e] for e in range(mo)],
                                            write_en=[write_en[e] for e in range(mo)],
                                            read_addr=read_addr, name=name)
                        self.memories.append(plan)
                        m.d.comb += self.words[i][b][s].eq(
                            delay(m, Cat(*groups), 1 + MEMORY_READ_STAGES - EBR_READ_LATENCY,
                                  f"word_i{i}_r{b}_c{s}", reset_less=True))
                        continue
                    mem = Memory(shape=data.ArrayLayout(signed(dw), mo), depth=depth, init=[],
                                 attrs=NO_COLLISIONS)
                    m.submodules[name] = mem
                    self.memories.append(mem)
                    wp = mem.write_port(granularity=1)
                    rp = mem.read_port()
                    for e in range(mo):
                        m.d.comb += wp.data[e].eq(value[i][s][e])
                    m.d.comb += [
                        wp.en.eq(write_en),
                        wp.addr.eq(write_addr),
                        rp.addr.eq(read_addr),
                    ]
                    # Block RAM outputs are slow (ECP5: 4.1 ns clock to out, no output
                    # register): two registers, the first placed beside the memory.
                    m.d.comb += self.words[i][b][s].eq(
                        delay(m, rp.data, MEMORY_READ_STAGES, f"word_i{i}_r{b}_c{s}",
                              reset_less=True))


class TileAssembler(wiring.Component):
    """Forms the ``P_in`` ``n×n`` tiles of a step from the words read; two register stages.

    Stage 1: tile column ``k`` of row bank ``b`` is element ``k mod m`` of column bank
    ``(col_phase + k // m) mod col_banks``, zeroed outside the map's columns and on lanes
    ``>= C_in``. Stage 2: tile row ``t`` is row bank ``(t + row_phase) mod n``, zeroed
    outside the map's rows.

    Parameters
    ----------
    config : LayerConfig

    Members
    -------
    words : In(LineBuffer words)
    col_phase : In(index of col_banks)
    col_valid : In(n)
    lane_valid : In(p_in)
        With ``words``.
    row_phase : In(index of n)
    row_valid : In(n)
        One cycle after ``words`` (tile-row order).
    tiles : Out(ArrayLayout(ArrayLayout(signed(dw), n*n), p_in))
        Row-major tiles, two cycles after ``words``.
    """

    def __init__(self, config):
        c = self.config = _check_config(config)
        dw = c.tile.data_width
        word = data.ArrayLayout(signed(dw), c.m)
        super().__init__({
            "words": In(data.ArrayLayout(data.ArrayLayout(data.ArrayLayout(word, c.col_banks),
                                                          c.n), c.p_in)),
            "col_phase": In(_index(c.col_banks)),
            "col_valid": In(c.n),
            "lane_valid": In(c.p_in),
            "row_phase": In(_index(c.n)),
            "row_valid": In(c.n),
            "tiles": Out(data.ArrayLayout(data.ArrayLayout(signed(dw), c.n * c.n), c.p_in)),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        n, mo, banks = c.n, c.m, c.col_banks
        dw = c.tile.data_width
        for i in range(c.p_in):
            cols = [[Signal(signed(dw), name=f"col_i{i}_b{b}_k{k}", reset_less=True)
                     for k in range(n)] for b in range(n)]
            for b in range(n):
                for k in range(n):
                    keep = self.col_valid[k] & self.lane_valid[i]
                    with m.Switch(self.col_phase):
                        for ph in range(banks):
                            with m.Case(ph):
                                s = (ph + k // mo) % banks
                                m.d.sync += cols[b][k].eq(
                                    Mux(keep, self.words[i][b][s][k % mo], 0))
            for t in range(n):
                with m.Switch(self.row_phase):
                    for ph in range(n):
                        with m.Case(ph):
                            b = (t + ph) % n
                            for k in range(n):
                                m.d.sync += self.tiles[i][t * n + k].eq(
                                    Mux(self.row_valid[t], cols[b][k], 0))
        return m
