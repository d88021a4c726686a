"""Convolution-layer engines: on-chip weights and activations, a tile scheduler, a compute core.

:class:`WinogradConv` and :class:`DirectConv` compute one stride-1 convolution layer
(PyTorch ``conv2d`` semantics, zero padding 0 or ``r // 2``) at a time, with the layer
shape chosen at run time up to the compile-time maxima of a
:class:`~winogen.gen.layer.LayerConfig`. They have identical ports and share all the
control, memory and scheduling code; only the compute core differs
(:class:`WinogradCore`, :class:`DirectCore`, one interface).

Streams
-------
``config``
    ``In(stream.Signature(StructLayout({"height", "width", "cin", "cout", "padding",
    "shift"})))``: one beat per layer, accepted only while idle. A beat failing a run-time
    check (:meth:`~winogen.gen.layer.LayerRun.errors`) sets the matching ``status.errors``
    bits (sticky until the next config beat) and the engine stays idle: it accepts no
    weights or activations and emits nothing.
``weights``
    ``In(stream.Signature(ArrayLayout(signed(w), k)))``: ``C_out·C_in`` beats, one filter
    each, ``for co in C_out: for ci in C_in``; raw ``r×r`` row-major (direct engine, or
    Winograd with ``filter_transform="online"``, transformed while loading) or
    ``U = G g Gᵀ`` ``n×n`` (Winograd ``"offline"``).
``activations``
    ``In(stream.Signature(ArrayLayout(signed(data_width), p_in)))``: pixel-major,
    ``for y in H: for x in W: for g in ceil(C_in/P_in)``; lane ``i`` is channel
    ``g·P_in + i`` (lanes ``>= C_in`` are ignored).
``outputs``
    ``Out(stream.Signature(ArrayLayout(signed(result_width), p_out·m·m)))``: one beat per
    ``(ty, tx, cog)``, ``for ty: for tx: for cog``; element ``j·m·m + i·m + k`` is
    ``Y[cog·P_out + j, ty·m + i, tx·m + k]``. Elements outside the output map (edge tiles)
    and lanes ``>= C_out`` carry whatever the zero-extended input gives and are discarded
    by the driver.
``status``
    ``Out(StructLayout({"errors", "busy", "phase"}))``: error bits at the positions of
    :data:`~winogen.gen.layer.RUN_ERRORS`; ``busy`` while a layer is in progress;
    ``phase`` (:data:`PHASES`) for cycle accounting.

Memories
--------
Every memory is an ``amaranth.lib.memory.Memory`` with one write and one read port
(synchronous read), so it maps to block RAM; depths are at least 2 (a one-row memory
would have a zero-width address). :func:`memory_shapes` lists them.

Weights: ``P_out × P_in`` banks; bank ``(j, i)`` holds the filters with
``co ≡ j (mod P_out)``, ``ci ≡ i (mod P_in)`` at address
``(co // P_out)·cin_groups + ci // P_in``; a word is one stored filter (``U`` for Winograd,
``g`` for direct). One read gives the ``P_out·P_in`` filters of a step.

Activations: for each lane ``i`` and row residue ``b`` in ``[0, n)`` a bank whose word is a
whole image row (``max_width`` elements), holding the rows ``y ≡ b (mod n)`` of channel
group ``g`` at address ``g·ceil(max_height/n) + y // n``; writes use element granularity.
Any ``n`` consecutive rows lie in ``n`` different banks, so one read of the ``n`` banks of
every lane gives ``P_in`` whole ``n×n`` tiles per cycle. With the tile's first row
``y0 = ty·m - pad = q0·n + base``, bank ``b`` holds tile row ``(b - base) mod n`` at
row block ``q0 + (b < base)``; the scheduler tracks ``q0`` and ``base`` incrementally.
The tile extractor selects the ``n`` columns ``[tx·m - pad, tx·m - pad + n)`` of each bank
word (a ``max_tile_cols``-way choice by ``tx``), zeroes rows outside ``[0, H)``, columns
outside ``[0, W)`` and lanes ``>= C_in``, then rotates the rows into tile order. Padding
is never stored.

PE kinds
--------
The cores build a ``PEArray`` of the tile's PE kind. A zero input is neutral for a
bilinear kind (``mul``), so zeroed lanes ``>= C_in`` add nothing. For a non-bilinear kind
(``adder``, ``p = -|a - b|``, where ``pe(0, w) = -|w|``) the cores also *mask* the PE terms
of those lanes to 0 before the lane sums (:attr:`~winogen.gen.layer.LayerConfig.masks_lanes`;
lane 0 always holds a channel and is never masked), while padded and out-of-map positions
stay zeros that do enter the PEs, as the AdderNet golden models define. Output lanes
``>= C_out`` need no mask: they are discarded. The Winograd adder core uses the integer
adder transforms of the tile (``A'``, ``G'``, ``B'``, no scale removal).

Pipeline and stalls
-------------------
The scheduler issues one step ``(ty, tx, cog, cig)`` per cycle (``cig`` innermost). Stage
0 computes the bank addresses; the memories answer at stage 1; the extractor registers
the tiles at stage 2; the core follows (Winograd: input transforms, ``P_out·P_in·n²`` PEs,
sum over the ``P_in`` lanes, accumulation over channel groups in the Winograd domain —
the first group loads, later groups add — then, after the last group, one output
transform and the exact scale removal per output tile and channel; direct:
``P_out·P_in·m²·r²`` PEs, adder trees over ``r²·P_in``, spatial accumulation), then the
optional requantization stage. Everything after the scheduler is a free-running pipeline
under one ``EnableInserter(en)``, ``en = ~outputs.valid | outputs.ready``, with a valid bit
per stage; the memory read ports are enabled by ``en`` explicitly (EnableInserter would
gate them too, but the memories also hold the write ports, which must not stall), and
the weight read address is delayed so that the filters arrive exactly at the PEs.

Latency and cycles (:func:`engine_latency`, :meth:`~winogen.gen.layer.LayerConfig.cycles`):
a tile's output beat is valid ``2 + core latency (+ 1 with requantization)`` cycles after
its last step is issued; with ``outputs.ready`` held high the compute phase takes
``tile_rows · tile_cols · ceil(C_in/P_in) · ceil(C_out/P_out)`` steps plus that latency.
The weight phase takes ``C_out·C_in`` beats (plus ``filter_stages`` to drain the online
filter transform) and the activation phase ``H·W·ceil(C_in/P_in)`` beats, one per cycle.
"""

import math

from amaranth.hdl import EnableInserter, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..gen.bounds import Interval
from ..gen.layer import LayerConfig, RUN_ERRORS
from .constmat import ConstMatVec, ConstTransform2D, ExactDivider
from .emit import LINT_WAIVERS
from .generate import emit_engine, port_table, tool_versions
from .pe import PEArray
from .rns import (ModMulPE, ModTransform2D, reduce_into, residue_inputs, reverse_convert,
                  rns_manifest_section)
from ..gen.rns import residue_port_interval, residue_width

__all__ = ["PHASES", "config_layout", "status_layout", "RunChecker", "WeightStore",
           "ActivationStore", "TileScheduler", "TileExtractor", "ChannelAccumulator",
           "Requantizer", "WinogradCore", "DirectCore", "RNSCore", "WinogradConv", "DirectConv",
           "RNSConv",
           "make_layer_engine", "lane_sum_stages", "core_latency", "engine_latency",
           "memory_shapes", "layer_manifest", "generate_layer"]

#: Values of ``status.phase``.
PHASES = {"idle": 0, "weights": 1, "activations": 2, "compute": 3}


def _check_config(config):
    if not isinstance(config, LayerConfig):
        raise TypeError(f"config must be a LayerConfig, not {config!r}")
    return config


def _weight_shape(config, width):
    """The shape of a weight element: signed, or unsigned for RNS residues."""
    return signed(width) if config.weight_signed else unsigned(width)


def _counter(limit):
    """A counter shape for values ``0..limit`` (never zero-width)."""
    return range(max(limit, 1) + 1)


def _index(count):
    """A shape for indices ``0..count-1`` (at least one bit: Verilog has no empty vectors)."""
    return range(max(count, 2))


def _delay(m, value, cycles, name):
    """``value`` delayed by ``cycles`` registers of the ``sync`` domain."""
    for k in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{k + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def config_layout(config):
    """Payload of the ``config`` stream: the run-time parameters of one layer."""
    c = _check_config(config)
    return data.StructLayout({
        "height": unsigned(c.max_height.bit_length()),
        "width": unsigned(c.max_width.bit_length()),
        "cin": unsigned(c.max_cin.bit_length()),
        "cout": unsigned(c.max_cout.bit_length()),
        "padding": unsigned(max(1, (c.r // 2).bit_length())),
        "shift": unsigned(max(1, c.max_shift.bit_length())),
    })


def status_layout():
    """The ``status`` port: sticky run-time error bits, busy flag, current phase."""
    return data.StructLayout({
        "errors": unsigned(len(RUN_ERRORS)),
        "busy": 1,
        "phase": unsigned(2),
    })


def _run_layout(config):
    """The run-time parameters held while a layer is in progress (plus the output size)."""
    c = config
    return data.StructLayout({
        "height": unsigned(c.max_height.bit_length()),
        "width": unsigned(c.max_width.bit_length()),
        "cin": unsigned(c.max_cin.bit_length()),
        "cout": unsigned(c.max_cout.bit_length()),
        "padding": unsigned(max(1, (c.r // 2).bit_length())),
        "shift": unsigned(max(1, c.max_shift.bit_length())),
        "hout": unsigned((c.max_height + 2 * (c.r // 2)).bit_length()),
        "wout": unsigned((c.max_width + 2 * (c.r // 2)).bit_length()),
    })


def _position_shape(config):
    """Signed shape of tile positions ``ty·m - pad`` and of the rows/columns a tile reads."""
    c = config
    return signed((max(c.max_height, c.max_width) + 2 * c.n + c.m).bit_length() + 1)


def _act_blocks(config):
    """Row blocks per channel group in an activation bank: ``ceil(max_height / n)``."""
    return math.ceil(config.max_height / config.n)


def _memory_depth(rows):
    # A one-row memory would have a zero-width address, which Verilog cannot declare.
    return max(rows, 2)


def memory_shapes(config):
    """The memories an engine instantiates: banks, depth and word of each kind."""
    c = _check_config(config)
    count, width = c.stored_weight
    act_depth = _memory_depth(c.cin_groups * _act_blocks(c))
    w_depth = _memory_depth(c.cout_groups * c.cin_groups)
    return {
        "weights": {"banks": c.p_out * c.p_in, "depth": w_depth,
                    "word_elements": count, "element_width": width,
                    "word_bits": count * width,
                    "bits": c.p_out * c.p_in * w_depth * count * width,
                    "organisation": "bank (j, i) holds co % P_out == j, ci % P_in == i at "
                                    "(co // P_out) * cin_groups + ci // P_in"},
        "activations": {"banks": c.p_in * c.n, "depth": act_depth,
                        "word_elements": c.max_width, "element_width": c.tile.data_width,
                        "word_bits": c.max_width * c.tile.data_width,
                        "bits": c.p_in * c.n * act_depth * c.max_width * c.tile.data_width,
                        "write_granularity_elements": 1,
                        "organisation": "bank (i, b) holds rows y % n == b of lane i, one image "
                                        "row per word, at g * ceil(max_height / n) + y // n"},
    }


# -- run-time checks ---------------------------------------------------------------------------


class RunChecker(wiring.Component):
    """The run-time checks of :meth:`~winogen.gen.layer.LayerRun.errors`, combinationally.

    Parameters
    ----------
    config : LayerConfig

    Members
    -------
    run : In(config_layout(config))
    errors : Out(unsigned(len(RUN_ERRORS)))
        Bit ``RUN_ERRORS[name]`` set when check ``name`` fails.
    """

    def __init__(self, config):
        self.config = _check_config(config)
        super().__init__({
            "run": In(config_layout(config)),
            "errors": Out(unsigned(len(RUN_ERRORS))),
        })

    def elaborate(self, platform):
        m = Module()
        c, run = self.config, self.run
        pad_ok = Signal()
        m.d.comb += pad_ok.eq(0)
        for p in c.paddings:
            with m.If(run.padding == p):
                m.d.comb += pad_ok.eq(1)
        # A bad padding is not counted against the map size, exactly as in LayerRun.errors.
        eff = Mux(pad_ok, run.padding << 1, 0)

        def above(value, limit):
            # A field too narrow to exceed its limit gets no (constant) comparison.
            return value > limit if limit < (1 << len(value)) - 1 else 0

        def bad_size(value, limit):
            return (value == 0) | above(value, limit) | (value + eff < c.r)

        bits = {
            "height": bad_size(run.height, c.max_height),
            "width": bad_size(run.width, c.max_width),
            "cin": (run.cin == 0) | above(run.cin, c.max_cin),
            "cout": (run.cout == 0) | above(run.cout, c.max_cout),
            "padding": ~pad_ok,
            "shift": above(run.shift, c.max_shift),
        }
        for name, bit in RUN_ERRORS.items():
            m.d.comb += self.errors[bit].eq(bits[name])
        return m


# -- memories ----------------------------------------------------------------------------------


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
        w_valid = _delay(m, accept, latency, "write_valid")
        w_addr = _delay(m, addr, latency, "write_addr")
        w_j = _delay(m, lane_j, latency, "write_lane_out")
        w_i = _delay(m, lane_i, latency, "write_lane_in")
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


# -- scheduling and tile extraction ------------------------------------------------------------


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
        c, run, step = self.config, self.run, self.step
        n, mo = c.n, c.m
        pos = _position_shape(c)

        active = Signal()
        oy = Signal(_counter(c.max_height + 2 * n))     # ty * m
        ox = Signal(_counter(c.max_width + 2 * n))      # tx * m
        tx = Signal.like(step.col_tile, name="tx")
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

        m.d.comb += [
            self.active.eq(active),
            step.valid.eq(active),
            step.first.eq(ci_base == 0),
            step.last.eq(cig_last),
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
        return m


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


# -- compute cores -----------------------------------------------------------------------------


def lane_sum_stages(config):
    """Registers of the Winograd sum over ``P_in`` lanes: one per two adder levels."""
    levels = ceil_log2(config.p_in)
    return (levels + 1) // 2


def core_latency(config):
    """Cycles from a step's tiles entering the core to its result (on the last group)."""
    t = config.tile
    if config.is_rns:
        return (t.input_stages + t.pe_stages + lane_sum_stages(config) + 1 + t.output_stages
                + t.converter_latency + (t.descale_stages if t.scale_divisor != 1 else 0))
    if t.algorithm == "winograd":
        return (t.input_stages + t.pe_stages + lane_sum_stages(config) + 1 + t.output_stages
                + (t.descale_stages if t.removes_scale else 0))
    return t.pe_stages + t.output_stages + 1


def engine_latency(config):
    """Cycles from the scheduler issuing a tile's last step to its output beat being valid.

    Stage 0 addresses the memories, stage 1 is their data, the tiles are registered at
    stage 2, then the core and the optional requantization register.
    """
    return 2 + core_latency(config) + (1 if config.output_width is not None else 0)


class ChannelAccumulator(wiring.Component):
    """Sums a core's per-step results over the channel groups of one output tile.

    A valid step with ``first`` loads, a later valid step adds; the register is the
    stage, and ``y_valid`` is set after a valid step with ``last``. Free-running under
    the engine's enable.

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
        for e, (x_iv, acc_iv) in enumerate(zip(self.input_intervals, self.acc_intervals)):
            x = Signal(signed(x_iv.width), name=f"x{e}")
            acc = Signal(signed(acc_iv.width), name=f"acc{e}", reset_less=True)
            m.d.comb += [x.eq(self.x[e]), self.y[e].eq(acc)]
            # The sum of up to max_cin channels lies in acc_iv: truncation is lossless.
            with m.If(self.valid):
                m.d.sync += acc.eq(Mux(self.first, x, acc + x))
        m.d.sync += self.y_valid.eq(self.valid & self.last)
        return m


def _core_signature(config):
    c = config
    dw = c.tile.data_width
    count, width = c.stored_weight
    members = {
        "tiles": In(data.ArrayLayout(data.ArrayLayout(signed(dw), c.n * c.n), c.p_in)),
        "weights": In(data.ArrayLayout(data.ArrayLayout(_weight_shape(c, width), count),
                                       c.p_out * c.p_in)),
        "valid": In(1), "first": In(1), "last": In(1),
        "lane_valid": In(c.p_in),
        "result": Out(data.ArrayLayout(signed(c.full_output_width), c.p_out * c.m * c.m)),
        "result_valid": Out(1),
    }
    if c.is_rns:
        members["result_error"] = Out(1)
    return members


class _Core(wiring.Component):
    """The compute core interface (free-running; the engine stalls it from outside).

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
        super().__init__(_core_signature(config))

    @property
    def latency(self):
        return core_latency(self.config)

    def _pe_array(self, m):
        """The ``P_out·P_in`` tiles' PEs, lane ``(j·P_in + i)·k + e`` for the tile's PE ``e``."""
        t, lanes = self.config.tile, self.config.p_out * self.config.p_in
        m.submodules.pe_array = pes = PEArray(t.pe, t.pe_a_intervals * lanes,
                                              t.pe_b_intervals * lanes, stages=t.pe_stages)
        return pes

    def _accumulate(self, m, partial, partial_iv, front):
        """Sum ``partial`` (valid ``front`` cycles after the step) over the channel groups."""
        c = self.config
        m.submodules.accumulator = acc = ChannelAccumulator(
            partial_iv, list(c.accumulator_intervals) * c.p_out)
        for k, value in enumerate(partial):
            m.d.comb += acc.x[k].eq(value)
        m.d.comb += [acc.valid.eq(_delay(m, self.valid, front, "valid")),
                     acc.first.eq(_delay(m, self.first, front, "first")),
                     acc.last.eq(_delay(m, self.last, front, "last"))]
        return acc

    def _masked_terms(self, m, pes, lane_of, delay):
        """The PE terms, those of lanes beyond ``C_in`` replaced by 0 when the kind needs it.

        ``lane_of(k)`` is the input lane of PE ``k``; ``delay`` the cycles from ``tiles``
        to the PE outputs. Lane 0 always holds a channel (``C_in >= 1``) and is never
        masked. Returns ``(terms, intervals)``; a masked term's range includes 0.
        """
        c = self.config
        terms, intervals = list(pes.p), list(pes.output_intervals)
        if not c.masks_lanes or c.p_in == 1:
            return terms, intervals
        keep = _delay(m, self.lane_valid, delay, "lane_valid")
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
            it = ConstTransform2D(hw.BT, t.data_interval, stages=t.input_stages)
            m.submodules[f"input_transform{i}"] = it
            m.d.comb += it.x.eq(self.tiles[i])
            v.append(it.y)

        pes = self._pe_array(m)
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
                tree = ConstMatVec([[1] * p_in], [term_iv[k] for k in lanes],
                                   stages=sum_stages)
                m.submodules[f"lane_sum_o{j}_e{e}"] = tree
                for i, k in enumerate(lanes):
                    m.d.comb += tree.x[i].eq(terms[k])
                partial.append(tree.y[0])
                partial_iv.append(tree.output_intervals[0])

        acc = self._accumulate(m, partial, partial_iv, t.input_stages + t.pe_stages + sum_stages)

        # After the last group: one output transform (and scale removal) per output lane.
        for j in range(p_out):
            ot = ConstTransform2D(hw.AT, c.accumulator_intervals, stages=t.output_stages)
            m.submodules[f"output_transform{j}"] = ot
            for e in range(n2):
                m.d.comb += ot.x[e].eq(acc.y[j * n2 + e])
            for e in range(mm):
                if t.removes_scale:
                    div = ExactDivider(t.scale_divisor, c.scaled_output_intervals[e],
                                       stages=t.descale_stages,
                                       output_interval=c.exact_output_interval)
                    m.submodules[f"descale_o{j}_e{e}"] = div
                    m.d.comb += [div.x.eq(ot.y[e]), self.result[j * mm + e].eq(div.y)]
                else:
                    # The exact result lies in exact_output_interval: truncation is lossless.
                    m.d.comb += self.result[j * mm + e].eq(ot.y[e])
        back = t.output_stages + (t.descale_stages if t.removes_scale else 0)
        m.d.comb += self.result_valid.eq(_delay(m, acc.y_valid, back, "result_valid"))
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
                tree = ConstMatVec([[1] * (p_in * rr)], [term_iv[lane] for lane in lanes],
                                   stages=t.output_stages)
                m.submodules[f"sum_o{j}_k{k}"] = tree
                for x, lane in enumerate(lanes):
                    m.d.comb += tree.x[x].eq(terms[lane])
                partial.append(tree.y[0])
                partial_iv.append(tree.output_intervals[0])

        acc = self._accumulate(m, partial, partial_iv, t.pe_stages + t.output_stages)
        for k in range(p_out * mm):
            m.d.comb += self.result[k].eq(acc.y[k])
        m.d.comb += self.result_valid.eq(acc.y_valid)
        return m


class RNSCore(WinogradCore):
    """RNS Winograd core: per input lane a forward conversion into every residue channel,
    ``P_out·P_in·k·n²`` modular multipliers, lane sums and channel-group accumulation
    modulo each modulus, then per output lane ``k`` modular output transforms and a
    reverse converter per output element.

    Each modulus's accumulator takes ``(Σ_lanes P + (first ? 0 : acc)) mod m_i`` in one
    reduction. With a redundant modulus, ``result_error`` (valid with ``result``) is the
    OR of the step's converter checks.

    Parameters
    ----------
    config : LayerConfig
        With an :class:`~winogen.gen.rns.RNSTileConfig` tile.

    Members
    -------
    result_error : Out(1)
        Besides the :class:`_Core` members.
    """

    def __init__(self, config):
        if not _check_config(config).is_rns:
            raise ValueError(f"config.tile must be an RNSTileConfig for RNSCore, "
                             f"not {config.tile!r}")
        super().__init__(config)

    def elaborate(self, platform):
        m = Module()
        c = self.config
        t = c.tile
        n2, mm, k = c.n ** 2, c.m ** 2, len(t.moduli)
        p_in, p_out = c.p_in, c.p_out

        # v[i][mod][e]: lane i's V residues.
        v = [residue_inputs(m, t, self.tiles[i], f"lane{i}_") for i in range(p_in)]

        sum_stages = lane_sum_stages(c)
        front = t.input_stages + t.pe_stages + sum_stages
        valid = _delay(m, self.valid, front, "valid")
        first = _delay(m, self.first, front, "first")
        last = _delay(m, self.last, front, "last")
        acc_valid = Signal(name="acc_valid")
        m.d.sync += acc_valid.eq(valid & last)

        outputs = []                    # per output lane j: per modulus, m² residues
        for j in range(p_out):
            per_modulus = []
            for mod, mi in enumerate(t.moduli):
                port = residue_port_interval(mi)
                accumulated = []
                for e in range(n2):
                    terms = []
                    for i in range(p_in):
                        pe = ModMulPE(mi, stages=t.pe_stages, a_interval=t.pe_a_intervals[mod][e])
                        m.submodules[f"pe_o{j}_i{i}_ch{mod}_{e}"] = pe
                        m.d.comb += [pe.a.eq(v[i][mod][e]),
                                     pe.b.eq(self.weights[j * p_in + i][mod * n2 + e])]
                        terms.append(pe.p)
                    if p_in == 1:
                        lane_sum, lane_iv = terms[0], port
                    else:
                        tree = ConstMatVec([[1] * p_in], [port] * p_in, stages=sum_stages)
                        m.submodules[f"lane_sum_o{j}_ch{mod}_{e}"] = tree
                        for i, term in enumerate(terms):
                            m.d.comb += tree.x[i].eq(term)
                        lane_sum, lane_iv = tree.y[0], tree.output_intervals[0]
                    acc = Signal(unsigned(residue_width(mi)), name=f"acc_o{j}_ch{mod}_{e}",
                                 reset_less=True)
                    total = reduce_into(m, lane_sum + Mux(first, 0, acc), lane_iv + port, mi,
                                        f"sum_o{j}_ch{mod}_{e}")
                    with m.If(valid):
                        m.d.sync += acc.eq(total)
                    accumulated.append(acc)
                ot = ModTransform2D(t.transforms.AT[mod], mi, stages=t.output_stages)
                m.submodules[f"output_transform_o{j}_ch{mod}"] = ot
                for e in range(n2):
                    m.d.comb += ot.x[e].eq(accumulated[e])
                per_modulus.append([ot.y[e] for e in range(mm)])
            outputs.append(per_modulus)

        error = 0
        for j in range(p_out):
            values, err = reverse_convert(m, t, outputs[j], f"o{j}_")
            for e, y in enumerate(values):
                m.d.comb += self.result[j * mm + e].eq(y)
            error = error | err
        back = t.output_stages + t.converter_latency + (
            t.descale_stages if t.scale_divisor != 1 else 0)
        m.d.comb += [self.result_valid.eq(_delay(m, acc_valid, back, "result_valid")),
                     self.result_error.eq(error)]
        return m


# -- requantization ------------------------------------------------------------------------------


class Requantizer(wiring.Component):
    """Arithmetic right shift by a run-time amount, rounding, saturation; one register stage.

    Bit-exact with :func:`winogen.gen.layer.requantize`: with ``f = x >> shift``, the
    rounding bit ``x[shift-1]`` and the sticky bit ``x[0:shift-1] != 0``, half-up adds the
    rounding bit and half-to-even adds ``round & (sticky | f[0])``.

    Parameters
    ----------
    input_width, output_width : int
    count : int
        Elements per beat.
    shift_width : int
        Width of the run-time shift (values up to ``input_width`` are meaningful).
    rounding : str
        ``"half_even"`` or ``"half_up"``.

    Members
    -------
    x : In(ArrayLayout(signed(input_width), count))
    valid : In(1)
    shift : In(unsigned(shift_width))
    y : Out(ArrayLayout(signed(output_width), count))
    y_valid : Out(1)
    """

    def __init__(self, input_width, output_width, count, shift_width, rounding):
        if rounding not in ("half_even", "half_up"):
            raise ValueError(f"rounding must be one of half_even, half_up, not {rounding!r}")
        self.input_width = input_width
        self.output_width = output_width
        self.rounding = rounding
        super().__init__({
            "x": In(data.ArrayLayout(signed(input_width), count)),
            "valid": In(1),
            "shift": In(unsigned(shift_width)),
            "y": Out(data.ArrayLayout(signed(output_width), count)),
            "y_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.input_width
        lo, hi = -(1 << (self.output_width - 1)), (1 << (self.output_width - 1)) - 1
        shift = self.shift
        # Bits of x below the rounding bit: (2**shift - 1) >> 1.
        below = Signal(w, name="below_mask")
        m.d.comb += below.eq((((1 << shift) - 1) >> 1)[:w])
        for e in range(len(self.x)):
            x = Signal(signed(w), name=f"x{e}")
            floor = Signal(signed(w), name=f"floor{e}")
            rnd = Signal(name=f"round{e}")
            sticky = Signal(name=f"sticky{e}")
            q = Signal(signed(w + 1), name=f"rounded{e}")
            m.d.comb += [
                x.eq(self.x[e]),
                floor.eq(x >> shift),
                rnd.eq(((x << 1) >> shift)[0]),     # x[shift - 1], 0 for shift == 0
                sticky.eq((x.as_unsigned() & below).any()),
            ]
            if self.rounding == "half_up":
                m.d.comb += q.eq(floor + rnd)
            else:
                m.d.comb += q.eq(floor + (rnd & (sticky | floor[0])))
            m.d.sync += self.y[e].eq(Mux(q > hi, hi, Mux(q < lo, lo, q)))
        m.d.sync += self.y_valid.eq(self.valid)
        return m


# -- engines -------------------------------------------------------------------------------------


def _engine_signature(config):
    c = config
    count, width = c.weight_payload
    return {
        "config": In(stream.Signature(config_layout(c))),
        "weights": In(stream.Signature(data.ArrayLayout(_weight_shape(c, width), count))),
        "activations": In(stream.Signature(data.ArrayLayout(signed(c.tile.data_width),
                                                            c.p_in))),
        "outputs": Out(stream.Signature(data.ArrayLayout(signed(c.result_width),
                                                         c.p_out * c.m * c.m))),
        "status": Out(status_layout()),
        **({"error": Out(1)} if c.is_rns and c.tile.redundant_moduli else {}),
    }


class _LayerEngine(wiring.Component):
    """Control, memories, scheduler and pipeline shared by the layer engines."""

    algorithm = None
    core_class = None

    def __init__(self, config):
        # A component refused here was never meant to be elaborated: no unused warning.
        self._MustUse__silence = True
        _check_config(config)
        if config.algorithm != self.algorithm:
            raise ValueError(f"config.algorithm must be {self.algorithm!r} for "
                             f"{type(self).__name__}, not {config.algorithm!r}")
        # `config` is the name of the configuration stream.
        self.layer_config = config
        self._MustUse__silence = False
        super().__init__(_engine_signature(config))

    @property
    def latency(self):
        """Cycles from issuing a tile's last step to its output beat (ready held high)."""
        return engine_latency(self.layer_config)

    def elaborate(self, platform):
        m = Module()
        c = self.layer_config

        m.submodules.checker = checker = RunChecker(c)
        m.submodules.weight_store = wstore = WeightStore(c)
        m.submodules.activation_store = astore = ActivationStore(c)
        m.submodules.scheduler = sched = TileScheduler(c, astore.addr_width, wstore.addr_width)
        self.memories = {"weights": wstore, "activations": astore}

        phase = Signal(2, name="phase")
        errors = Signal(len(RUN_ERRORS), name="errors")
        run = Signal(_run_layout(c), name="run")
        en = Signal(name="en")      # advance the compute pipeline this cycle
        m.d.comb += en.eq(~self.outputs.valid | self.outputs.ready)

        # -- control -----------------------------------------------------------------------
        cfg_in = self.config.payload
        m.d.comb += [
            checker.run.eq(cfg_in),
            self.config.ready.eq(phase == PHASES["idle"]),
            self.status.errors.eq(errors),
            self.status.busy.eq(phase != PHASES["idle"]),
            self.status.phase.eq(phase),
        ]
        with m.If(self.config.valid & self.config.ready):
            m.d.sync += errors.eq(checker.errors)
            with m.If(checker.errors == 0):
                # The output size; the checks guarantee H + 2·pad >= r.
                m.d.sync += [
                    run.height.eq(cfg_in.height), run.width.eq(cfg_in.width),
                    run.cin.eq(cfg_in.cin), run.cout.eq(cfg_in.cout),
                    run.padding.eq(cfg_in.padding), run.shift.eq(cfg_in.shift),
                    run.hout.eq(cfg_in.height + (cfg_in.padding << 1) - (c.r - 1)),
                    run.wout.eq(cfg_in.width + (cfg_in.padding << 1) - (c.r - 1)),
                    phase.eq(PHASES["weights"]),
                ]
                m.d.comb += wstore.start.eq(1)

        wiring.connect(m, wiring.flipped(self.weights), wstore.weights)
        wiring.connect(m, wiring.flipped(self.activations), astore.activations)
        m.d.comb += [
            wstore.cin.eq(run.cin), wstore.cout.eq(run.cout),
            astore.height.eq(run.height), astore.width.eq(run.width), astore.cin.eq(run.cin),
            sched.run.eq(run),
            sched.advance.eq(en),
        ]

        # Output beats owed by steps already issued: compute ends when none are.
        outstanding = Signal(range(self.latency + 3), name="outstanding")
        issue_last = en & sched.step.valid & sched.step.last
        beat = self.outputs.valid & self.outputs.ready
        m.d.sync += outstanding.eq(outstanding + issue_last - beat)

        with m.Switch(phase):
            with m.Case(PHASES["weights"]):
                with m.If(~wstore.busy):
                    m.d.sync += phase.eq(PHASES["activations"])
                    m.d.comb += astore.start.eq(1)
            with m.Case(PHASES["activations"]):
                with m.If(~astore.busy):
                    m.d.sync += phase.eq(PHASES["compute"])
                    m.d.comb += sched.start.eq(1)
            with m.Case(PHASES["compute"]):
                with m.If(~sched.active & (outstanding == 0)):
                    m.d.sync += phase.eq(PHASES["idle"])

        # -- compute pipeline: one enable for every stage ---------------------------------
        pipe = Module()
        step = sched.step
        s1 = Signal(step.shape(), name="step_s1")
        pipe.d.sync += [
            s1.valid.eq(step.valid), s1.first.eq(step.first), s1.last.eq(step.last),
            s1.row_valid.eq(step.row_valid), s1.base.eq(step.base),
            s1.col_tile.eq(step.col_tile), s1.col_valid.eq(step.col_valid),
            s1.lane_valid.eq(step.lane_valid),
        ]
        m.d.comb += [astore.read_addr.eq(step.act_addr), astore.read_en.eq(en)]

        pipe.submodules.extractor = ext = TileExtractor(c)
        pipe.d.comb += [
            ext.rows.eq(astore.read_data),
            ext.base.eq(s1.base), ext.col_tile.eq(s1.col_tile),
            ext.padding.eq(run.padding != 0),
            ext.row_valid.eq(s1.row_valid), ext.col_valid.eq(s1.col_valid),
            ext.lane_valid.eq(s1.lane_valid),
        ]
        pipe.submodules.core = core = self.core_class(c)
        # The weight read is issued so that its data (one cycle later) meets the core.
        w_addr = _delay(pipe, step.weight_addr, 1 + core.weight_delay, "weight_addr")
        m.d.comb += [wstore.read_addr.eq(w_addr), wstore.read_en.eq(en)]
        pipe.d.comb += core.weights.eq(wstore.read_data)
        pipe.d.comb += core.tiles.eq(ext.tiles)
        pipe.d.sync += [core.valid.eq(s1.valid), core.first.eq(s1.first),
                        core.last.eq(s1.last)]
        if c.masks_lanes:
            pipe.d.sync += core.lane_valid.eq(s1.lane_valid)

        if c.output_width is not None:
            pipe.submodules.requantizer = rq = Requantizer(
                c.full_output_width, c.output_width, c.p_out * c.m * c.m,
                len(run.shift), c.rounding)
            pipe.d.comb += [rq.x.eq(core.result), rq.valid.eq(core.result_valid),
                            rq.shift.eq(run.shift)]
            result, result_valid = rq.y, rq.y_valid
        else:
            result, result_valid = core.result, core.result_valid
        pipe.d.comb += [self.outputs.payload.eq(result), self.outputs.valid.eq(result_valid)]
        if "error" in self.signature.members:
            # The redundant-modulus check travels with its beat, through the requantizer.
            rq_stages = 1 if c.output_width is not None else 0
            pipe.d.comb += self.error.eq(_delay(pipe, core.result_error, rq_stages, "error"))
        m.submodules.pipeline = EnableInserter(en)(pipe)
        return m


class WinogradConv(_LayerEngine):
    """Winograd convolution-layer engine.

    Parameters
    ----------
    config : LayerConfig
        With a Winograd tile (kept as ``layer_config``: ``config`` is the stream).

    Members
    -------
    config : In(stream.Signature(config_layout(config)))
    weights : In(stream.Signature(ArrayLayout(signed(w), k)))
    activations : In(stream.Signature(ArrayLayout(signed(data_width), p_in)))
    outputs : Out(stream.Signature(ArrayLayout(signed(result_width), p_out*m*m)))
    status : Out(status_layout())
    """

    algorithm = "winograd"
    core_class = WinogradCore


class DirectConv(_LayerEngine):
    """Direct convolution-layer engine (the baseline), with :class:`WinogradConv`'s ports.

    Parameters
    ----------
    config : LayerConfig
        With a direct tile.

    Members
    -------
    config, weights, activations, outputs, status
        As :class:`WinogradConv`.
    """

    algorithm = "direct"
    core_class = DirectCore


class RNSConv(_LayerEngine):
    """RNS Winograd convolution-layer engine, with :class:`WinogradConv`'s streams.

    The weight stream carries each filter's residues ``U_i = G_i g G_iᵀ mod m_i``
    (unsigned; :meth:`~winogen.gen.layer.LayerConfig.weight_residues`), and the
    outputs are the exact correlation (or its requantization).

    Parameters
    ----------
    config : LayerConfig
        With an :class:`~winogen.gen.rns.RNSTileConfig` tile whose ``channels`` is
        ``max_cin``.

    Members
    -------
    config, activations, outputs, status
        As :class:`WinogradConv`.
    weights : In(stream.Signature(ArrayLayout(unsigned(w), k*n*n)))
    error : Out(1)
        With a redundant modulus: valid with ``outputs.valid``; set when any output
        of the beat failed the redundant-modulus check (a fault in one residue channel).
    """

    algorithm = "winograd"
    core_class = RNSCore


def make_layer_engine(config):
    """The layer engine component for ``config`` (Winograd, RNS Winograd or direct)."""
    _check_config(config)
    if config.is_rns:
        return RNSConv(config)
    return WinogradConv(config) if config.algorithm == "winograd" else DirectConv(config)


# -- manifest and generation ---------------------------------------------------------------------


_CYCLE_MODEL = {
    "config": "1 (accepted only while idle)",
    "weights": "C_in * C_out beats (+ filter_stages to drain an online filter transform)",
    "activations": "H * W * ceil(C_in / P_in) beats",
    "compute_ideal": "tile_rows * tile_cols * ceil(C_in / P_in) * ceil(C_out / P_out) steps, "
                     "tile_rows = ceil(H_out / m), tile_cols = ceil(W_out / m), "
                     "H_out = H + 2 * padding - r + 1",
    "compute": "compute_ideal + latency with outputs.ready held high (one step per cycle)",
}


def layer_manifest(config, component):
    """The manifest of a layer engine (a JSON-ready dict).

    Parameters
    ----------
    config : LayerConfig
    component : WinogradConv or DirectConv
        The engine generated from ``config`` (its ports are listed).
    """
    c = _check_config(config)
    t = c.tile
    count, wwidth = c.weight_payload
    offline = c.filter_transform == "offline"
    manifest = {
        "name": c.module_name,
        "kind": "layer",
        "verilog": [f"{c.module_name}.v"],
        "top": c.module_name,
        "parameters": c.to_json(),
        "algorithm": {"name": f"F({c.m}x{c.m}, {c.r}x{c.r})", "kind": c.algorithm,
                      "m": c.m, "r": c.r, "n": c.n,
                      **({"hardware": t.hardware.to_json()}
                         if c.algorithm == "winograd" and not c.is_rns else {})},
        **({"rns": rns_manifest_section(t)} if c.is_rns else {}),
        "ports": port_table(component),
        "config_fields": {name: {"offset": field.offset, "width": field.width}
                          for name, field in config_layout(c)},
        "status_fields": {name: {"offset": field.offset, "width": field.width}
                          for name, field in status_layout()},
        "status_errors": dict(RUN_ERRORS),
        "phases": dict(PHASES),
        "streams": {
            "config": "one beat per layer, accepted only while idle; a failing beat sets "
                      "status.errors (sticky until the next config beat) and starts nothing",
            "weights": (f"C_out*C_in beats, for co in C_out: for ci in C_in; one filter per beat, "
                        + ("residues U_i = G_i g G_i^T mod m_i, element i*n*n + j for modulus i "
                           "and row-major index j, unsigned (winogen.gen.layer.LayerConfig."
                           "weight_residues)" if c.is_rns else
                           "U = G g G^T, n x n row-major (winogen.gen)" if offline else
                           "raw r x r row-major")),
            "activations": "for y in H: for x in W: for g in ceil(C_in/P_in): lane i is channel "
                           "g*P_in + i (lanes >= C_in ignored)",
            "outputs": "for ty: for tx: for cog: one beat; element j*m*m + i*m + k is "
                       "Y[cog*P_out + j, ty*m + i, tx*m + k]; positions beyond the output map "
                       "and lanes >= C_out are to be discarded",
        },
        "function": _function(c),
        "handshake": "a beat transfers on a rising clk edge where valid and ready are both 1; "
                     "valid never waits for ready, and payload is held while valid and not ready",
        "flow": "config -> C_out*C_in weight beats -> activation beats -> compute (output "
                "beats) -> idle",
        "paddings": list(c.paddings),
        "multipliers": c.multipliers if c.is_rns or t.pe_kind.uses_multiplier else 0,
        "processing_elements": c.multipliers,
        "pe": t.pe,
        "unused_lanes": ("PE terms masked to 0" if c.masks_lanes else "inputs zeroed"),
        "widths": {
            "data": t.data_width, "weight": t.weight_width, "weight_payload": wwidth,
            "stored_weight": c.stored_weight[1],
            "accumulator": c.accumulator_width,
            "full_output": c.full_output_width, "result": c.result_width,
            "shift": config_layout(c)["shift"].width,
        },
        "requantization": (None if c.output_width is None else
                           {"output_width": c.output_width, "rounding": c.rounding,
                            "max_shift": c.max_shift}),
        "scale": ({"divisor": t.scale_divisor, "kept": False, "removal":
                   "none" if t.scale_divisor == 1 else "exact division after reverse conversion"}
                  if c.is_rns else
                  {"divisor": t.scale_divisor, "kept": bool(t.keep_scale),
                   "adder_output_scale": t.adder_output_scale}),
        "memory_bits": c.memory_bits,
        "memories": memory_shapes(c),
        "cycle_model": dict(_CYCLE_MODEL),
        "expected_cycles": _expected_cycles(c),
        "latency": engine_latency(c),
        "pipeline": {"address": 1, "memory_read": 1, "tile_register": 1,
                     "core": core_latency(c),
                     "lane_sum_stages": lane_sum_stages(c) if c.algorithm == "winograd" else 0,
                     "requantize": 1 if c.output_width is not None else 0},
        "lint_waivers": LINT_WAIVERS,
        "tools": tool_versions(),
    }
    return manifest


def _function(config):
    """What the engine computes, before the optional requantization (manifest text)."""
    t = config.tile
    if config.is_rns:
        return (f"correlation with zero padding (PyTorch conv2d, stride 1), exact: computed "
                f"modulo {list(t.moduli)} and reverse converted")
    if t.is_adder_winograd:
        return (f"Winograd AdderNet per output tile: Y' = A'^T [sum over C_in of -|U' - V'|] A', "
                f"U' = G' g G'^T, V' = B'^T d B' (algorithm.hardware), d the zero-padded input "
                f"tile (zeros also beyond the map), {t.adder_output_scale} times the rational "
                f"result, no scale removed (winogen.gen.addernet.adder_winograd_conv2d)")
    if t.pe == "adder":
        return ("AdderNet: Y = -sum over C_in, r x r of |x - w|, padded zeros included "
                "(winogen.gen.addernet.adder_direct_conv2d)")
    if t.algorithm == "winograd" and t.keep_scale:
        return f"correlation with zero padding, times {t.scale_divisor} (scale kept)"
    return "correlation with zero padding (PyTorch conv2d, stride 1)"


def _expected_cycles(config):
    """The cycle model evaluated on the largest layer, padding r//2 ("same")."""
    from ..gen.layer import LayerRun
    c = config
    run = LayerRun(c.max_height, c.max_width, c.max_cin, c.max_cout, padding=c.r // 2)
    cycles = c.cycles(run)
    cycles["compute"] = cycles["compute_ideal"] + engine_latency(c)
    return {"layer": {"height": run.height, "width": run.width, "cin": run.cin,
                      "cout": run.cout, "padding": run.padding}, **cycles}


def generate_layer(config, out_dir):
    """Generate a layer engine into ``out_dir``: ``OUT/<name>.v`` and ``OUT/<name>.json``.

    Returns
    -------
    (pathlib.Path, pathlib.Path, dict)
        The Verilog file, the manifest file and the manifest.
    """
    _check_config(config)
    return emit_engine(config, make_layer_engine(config), layer_manifest, out_dir)
