"""The streaming layer engines: two layer slots, the loaders, the scheduler and a
free-running pipeline around a compute core, with an output queue paid for by credits."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ...gen.layer import LayerConfig
from ..winoquant import make_filter_transform
from ..util import delay
from .checker import RunChecker
from ..harden import harden_block
from .cores import DirectCore, WinogradCore, core_latency, has_dmr
from .layouts import (_check_config, _run_layout, _weight_shape, config_layout, status_layout)
from .linebuffer import MEMORY_READ_STAGES, LineBuffer, TileAssembler, row_counter_shape
from .requant import Requantizer
from .schedule import TileScheduler
from .weights import WeightStore

__all__ = ["WinogradConv", "DirectConv", "binary_layer_engine", "make_layer_engine",
           "FRONT_STAGES", "CONFIG_LATENCY", "REQUANT_STAGES", "OUTPUT_QUEUE_LATENCY", "output_queue_depth",
           "engine_latency"]

#: Cycles from a step's issue to its tiles at the core: the step (address) register, the
#: memory read, its registers, the column select and the row rotation.
FRONT_STAGES = 2 + MEMORY_READ_STAGES + 2
#: Edges from a config beat's transfer to ``status.errors`` showing its checks
#: (:attr:`~winogen.gen.layer.LayerConfig.config_latency`).
CONFIG_LATENCY = LayerConfig.config_latency
#: Register stages of the requantizer (shift; rounding and saturation).
REQUANT_STAGES = 2
#: Cycles from a result entering the output queue to ``outputs.valid`` (queue empty).
OUTPUT_QUEUE_LATENCY = 2
#: Submodule names of the compute core and the requantizer (the manifest's fault sites).
CORE_NAME = "core"
REQUANTIZER_NAME = "requantizer"
#: The register that is high in the cycle a step's tiles are at the core's inputs.
CORE_VALID = f"core_valid_d{FRONT_STAGES - 1}"


def _pipeline_latency(config):
    """Cycles from a tile's last step being issued to its result entering the output queue."""
    return (FRONT_STAGES + core_latency(config)
            + (REQUANT_STAGES if config.output_width is not None else 0))


def engine_latency(config):
    """Cycles from the scheduler issuing a tile's last step to its output beat being valid
    (``outputs.ready`` held high)."""
    return _pipeline_latency(config) + OUTPUT_QUEUE_LATENCY


def output_queue_depth(config):
    """Entries of the output queue: every beat in flight has a place, so the pipeline never
    stalls; with ``outputs.ready`` held high a credit comes back before it is missed."""
    return _pipeline_latency(config) + OUTPUT_QUEUE_LATENCY + 4


def _engine_signature(config):
    c = config
    count, width = c.weight_payload
    return {
        "config": In(stream.Signature(config_layout(c))),
        "weights": In(stream.Signature(data.ArrayLayout(_weight_shape(c, width),
                                                        c.filters_per_beat * count))),
        "activations": In(stream.Signature(data.ArrayLayout(
            signed(c.tile.data_width), c.pixels_per_beat * c.p_in))),
        "outputs": Out(stream.Signature(data.ArrayLayout(signed(c.result_width),
                                                         c.p_out * c.m * c.m))),
        "outputs_last": Out(1),
        "status": Out(status_layout(c)),
        # A duplicated block (harden ...:dmr) flags the output beats a mismatch reached.
        **({"error": Out(1)} if has_dmr(c) else {}),
    }


class _Slots:
    """The two layer slots: each holds an accepted layer from its config beat until its last
    output beat leaves; loaders, scheduler and output each walk the slots in order."""

    def __init__(self, config):
        c = config
        counter = row_counter_shape(c)
        self.run = [Signal(_run_layout(c), name=f"slot{s}_run") for s in range(2)]
        self.valid = Signal(2, name="slot_valid")
        self.weights_loaded = Signal(2, name="slot_weights_loaded")
        self.rows_started = Signal(2, name="slot_rows_started")
        self.steps_started = Signal(2, name="slot_steps_started")
        self.first_row = [Signal(counter, name=f"slot{s}_first_row") for s in range(2)]
        self.row_bank = [Signal(range(max(c.n, 2)), name=f"slot{s}_row_bank") for s in range(2)]
        self.row_ring = [Signal(range(max(c.ring_blocks, 2)), name=f"slot{s}_row_ring")
                         for s in range(2)]
        # Which slot each agent is on (or goes to next).
        self.config_ptr = Signal(name="config_slot")
        self.weight_ptr = Signal(name="weight_slot")
        self.row_ptr = Signal(name="row_slot")
        self.step_ptr = Signal(name="step_slot")
        self.output_ptr = Signal(name="output_slot")

    def pick(self, m, values, ptr, name):
        """``values[ptr]`` as a signal of the same shape (a layout keeps its fields)."""
        picked = Signal.like(values[0], name=name)
        m.d.comb += picked.eq(Mux(ptr, values[1], values[0]))
        return picked


class _LayerEngine(wiring.Component):
    """Slots, loaders, scheduler and pipeline shared by the layer engines."""

    algorithm = None
    core_class = None

    def __new__(cls, config, *, src_loc_at=0):
        # Refuse a configuration before the component exists, so that a refused engine
        # leaves no "created but never used" warning behind.
        cls._check(config)
        return super().__new__(cls, config, src_loc_at=src_loc_at + 1)

    def __init__(self, config, *, src_loc_at=0):
        # `config` is the name of the configuration stream.
        self.layer_config = config
        super().__init__(self._signature(config))

    @classmethod
    def _check(cls, config):
        _check_config(config)
        if config.algorithm != cls.algorithm:
            raise ValueError(f"config.algorithm must be {cls.algorithm!r} for "
                             f"{cls.__name__}, not {config.algorithm!r}")
        t = config.tile
        slack = FRONT_STAGES - 2 - MEMORY_READ_STAGES + t.input_stages
        if config.filter_store == "raw" and t.filter_stages > slack:
            # The transform at read must fit beside the tile path (not lengthen it).
            raise ValueError(f"filter_store='raw' needs filter_stages <= input_stages + "
                             f"{slack - t.input_stages} = {slack}, not {t.filter_stages}")

    @classmethod
    def _signature(cls, config):
        """The component's members (an engine with more ports extends them)."""
        return _engine_signature(config)

    @property
    def latency(self):
        """Cycles from issuing a tile's last step to its output beat (ready held high)."""
        return engine_latency(self.layer_config)

    def elaborate(self, platform):
        m = Module()
        c = self.layer_config
        m.submodules.checker = checker = RunChecker(c)
        wstore = self._weight_store(m)
        m.submodules.line_buffer = lbuf = LineBuffer(c)
        m.submodules.scheduler = sched = TileScheduler(c)
        self.memories = {"weights": wstore, "activations": lbuf}
        slots = _Slots(c)
        self._config_beat(m, checker, slots)
        self._weight_loader(m, wstore, slots)
        self._row_loader(m, lbuf, slots)
        self._steps(m, sched, lbuf, slots)
        queue = self._pipeline(m, wstore, lbuf, sched)
        self._output(m, queue, sched, slots)
        m.d.comb += [
            self.status.busy.eq(slots.valid.any()),
            # (an engine without a weight store drives it itself, or leaves it 0)
            *([self.status.loading_weights.eq(wstore.busy)] if wstore is not None else []),
            self.status.loading_activations.eq(lbuf.busy),
            self.status.computing.eq(sched.active),
        ]
        return m

    def _weight_store(self, m):
        """The weight memory (``None`` in an engine without a weight stream)."""
        m.submodules.weight_store = wstore = WeightStore(self.layer_config)
        return wstore

    def _config_beat(self, m, checker, slots):
        """A config beat is taken while the next slot is free; a valid one fills it, a failing
        one sets ``status.errors`` (sticky until the next beat) and fills nothing.

        The beat is registered, then checked, then acted on (:data:`CONFIG_LATENCY`): the
        checks' adders and comparators sit between registers, not between the port and the
        slots."""
        c = self.layer_config
        errors = Signal(len(c.run_errors), name="errors")
        beat = Signal(config_layout(c), name="config_beat")
        beat_valid = Signal(name="config_beat_valid")
        found = Signal(len(c.run_errors), name="config_errors")
        checked = Signal(name="config_checked")
        ptr = slots.config_ptr
        self._errors = errors       # an engine may flag later errors (sparse: weights)
        m.d.comb += [
            checker.run.eq(beat),
            self.config.ready.eq(~beat_valid & ~checked & ~slots.valid.bit_select(ptr, 1)),
            self.status.errors.eq(errors),
        ]
        with m.If(self.config.valid & self.config.ready):
            m.d.sync += [beat.eq(self.config.payload), beat_valid.eq(1)]
        with m.If(beat_valid):
            m.d.sync += [found.eq(checker.errors), checked.eq(1), beat_valid.eq(0)]
        with m.If(checked):
            m.d.sync += [errors.eq(found), checked.eq(0)]
            with m.If(found == 0):
                m.d.sync += ptr.eq(~ptr)
                for s in range(2):
                    with m.If(ptr == s):
                        run = slots.run[s]
                        m.d.sync += [
                            slots.valid[s].eq(1),
                            run.height.eq(beat.height), run.width.eq(beat.width),
                            run.cin.eq(beat.cin), run.cout.eq(beat.cout),
                            run.padding.eq(beat.padding), run.shift.eq(beat.shift),
                            *([run.relu.eq(beat.relu)] if c.output_width is not None else []),
                            *([run.entries.eq(beat.entries), run.lane_map.eq(beat.lane_map)]
                              if c.sparse else []),
                            # The output size; the checks guarantee H + 2·pad >= r.
                            run.hout.eq(beat.height + (beat.padding << 1) - (c.r - 1)),
                            run.wout.eq(beat.width + (beat.padding << 1) - (c.r - 1)),
                        ]

    def _weight_loader(self, m, wstore, slots):
        """Load each slot's filters into its weight buffer, in slot order."""
        ptr = slots.weight_ptr
        run = slots.pick(m, slots.run, ptr, "weight_run")
        loading = Signal(name="weights_loading")
        wiring.connect(m, wiring.flipped(self.weights), wstore.weights)
        m.d.comb += [wstore.cin.eq(run.cin), wstore.cout.eq(run.cout), wstore.buffer.eq(ptr)]
        # With one weight buffer a layer's filters wait until the previous layer is done.
        buffer_free = (1 if self.layer_config.weight_buffers == 2
                       else ~slots.valid.bit_select(~ptr, 1))
        with m.If(~loading):
            with m.If(slots.valid.bit_select(ptr, 1) & ~slots.weights_loaded.bit_select(ptr, 1)
                      & buffer_free):
                m.d.comb += wstore.start.eq(1)
                m.d.sync += loading.eq(1)
        with m.Elif(~wstore.busy):
            m.d.sync += [loading.eq(0), ptr.eq(~ptr)]
            for s in range(2):
                with m.If(ptr == s):
                    m.d.sync += slots.weights_loaded[s].eq(1)

    def _row_loader(self, m, lbuf, slots):
        """Stream each slot's activations into the line buffer, in slot order; record where
        its rows start."""
        ptr = slots.row_ptr
        run = slots.pick(m, slots.run, ptr, "row_run")
        loading = Signal(name="rows_loading")
        wiring.connect(m, wiring.flipped(self.activations), lbuf.activations)
        m.d.comb += [lbuf.height.eq(run.height), lbuf.width.eq(run.width),
                     lbuf.cin.eq(run.cin), lbuf.padding.eq(run.padding)]
        with m.If(~loading):
            with m.If(slots.valid.bit_select(ptr, 1) & ~slots.rows_started.bit_select(ptr, 1)):
                m.d.comb += lbuf.start.eq(1)
                m.d.sync += loading.eq(1)
                for s in range(2):
                    with m.If(ptr == s):
                        m.d.sync += [slots.rows_started[s].eq(1),
                                     slots.first_row[s].eq(lbuf.row),
                                     slots.row_bank[s].eq(lbuf.row_bank),
                                     slots.row_ring[s].eq(lbuf.row_ring)]
        with m.Elif(~lbuf.busy):
            m.d.sync += [loading.eq(0), ptr.eq(~ptr)]

    def _steps(self, m, sched, lbuf, slots):
        """Start the scheduler on each slot once its filters are in and its rows started."""
        ptr = slots.step_ptr
        running = Signal(name="steps_running")
        layer = sched.layer
        m.d.comb += [
            layer.run.eq(slots.pick(m, slots.run, ptr, "step_run")),
            layer.row.eq(slots.pick(m, slots.first_row, ptr, "step_first_row")),
            layer.row_bank.eq(slots.pick(m, slots.row_bank, ptr, "step_row_bank")),
            layer.row_ring.eq(slots.pick(m, slots.row_ring, ptr, "step_row_ring")),
            layer.buffer.eq(ptr),
            sched.landed.eq(lbuf.landed),
            lbuf.live_low.eq(sched.live_low),
        ]
        # A slot's steps run once: its outputs may still be leaving when the scheduler,
        # done with the next slot, comes back to it.
        ready = (slots.valid.bit_select(ptr, 1) & slots.weights_loaded.bit_select(ptr, 1)
                 & slots.rows_started.bit_select(ptr, 1) & ~slots.steps_started.bit_select(ptr, 1))
        with m.If(~running):
            with m.If(ready):
                m.d.comb += sched.start.eq(1)
                m.d.sync += running.eq(1)
                for s in range(2):
                    with m.If(ptr == s):
                        m.d.sync += slots.steps_started[s].eq(1)
        with m.Elif(~sched.busy):
            m.d.sync += [running.eq(0), ptr.eq(~ptr)]

    def _pipeline(self, m, wstore, lbuf, sched):
        """Tile assembly, the core, the optional requantizer; returns the output queue."""
        c = self.layer_config
        # The step register: the read addresses leave registers for the memories, and every
        # delay below counts from it (one cycle after the issue).
        step = Signal.like(sched.step, name="step_r")
        m.d.sync += step.eq(sched.step)
        m.d.comb += lbuf.read.eq(step.read)

        m.submodules.assembler = asm = TileAssembler(c)
        to_words = 1 + MEMORY_READ_STAGES       # issue -> the words at the assembler
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

        m.submodules[CORE_NAME] = core = self.core_class(c)
        self._connect_weights(m, core, wstore, step)
        m.d.comb += core.tiles.eq(asm.tiles)
        for name in ("valid", "first", "last"):
            m.d.comb += getattr(core, name).eq(
                delay(m, getattr(step, name), FRONT_STAGES - 1, f"core_{name}",
                      reset_less=False))
        assert CORE_VALID == f"core_valid_d{FRONT_STAGES - 1}"     # the delay's last register
        if c.masks_lanes:
            m.d.comb += core.lane_valid.eq(
                delay(m, step.lane_valid, FRONT_STAGES - 1, "core_lane_valid", reset_less=True))

        # What travels beside the core to its result: the layer's shift and last beat.
        to_result = FRONT_STAGES - 1 + core.latency
        shift = delay(m, step.shift, to_result, "shift", reset_less=True)
        layer_last = delay(m, step.layer_last, to_result, "layer_last", reset_less=True)
        error = core.result_error if "result_error" in core.signature.members else None
        if c.output_width is not None:
            relu = delay(m, step.relu, to_result, "relu", reset_less=True)
            rq, scheme = harden_block(c, "requantization", lambda: Requantizer(
                c.full_output_width, c.output_width, c.p_out * c.m * c.m, len(shift),
                c.rounding, stages=REQUANT_STAGES))
            m.submodules[REQUANTIZER_NAME] = rq
            m.d.comb += [rq.x.eq(core.result), rq.valid.eq(core.result_valid),
                         rq.shift.eq(shift), rq.relu.eq(relu)]
            result, result_valid = rq.y, rq.y_valid
            layer_last = delay(m, layer_last, REQUANT_STAGES, "rq_layer_last", reset_less=True)
            if error is not None:
                error = delay(m, error, REQUANT_STAGES, "rq_error", reset_less=True)
            if scheme == "dmr":
                error = rq.mismatch if error is None else error | rq.mismatch
        else:
            result, result_valid = core.result, core.result_valid

        entry = Cat(result.as_value(), layer_last, *([error] if error is not None else []))
        m.submodules.output_queue = queue = SyncFIFOBuffered(
            width=len(entry), depth=output_queue_depth(c))
        m.d.comb += [queue.w_data.eq(entry), queue.w_en.eq(result_valid)]
        return queue

    def _connect_weights(self, m, core, wstore, step):
        """Read each step's filters for the core."""
        filters, transform = self._read_filters(m, wstore)
        # The weight read is issued so that its (registered, maybe transformed) data meets
        # the core.
        w_addr = delay(m, step.weight_addr,
                       FRONT_STAGES - 2 - MEMORY_READ_STAGES + core.weight_delay - transform,
                       "weight_addr", reset_less=True)
        m.d.comb += [wstore.read_addr.eq(w_addr), core.weights.eq(filters)]

    def _read_filters(self, m, wstore):
        """The filters read for the core, and the cycles added on their way: with
        ``filter_store="raw"`` each stored ``r×r`` filter goes through a filter transform
        by ``G`` (``P_out·P_in`` of them)."""
        c = self.layer_config
        if c.filter_store != "raw":
            return wstore.read_data, 0
        t = c.tile
        filters = Signal(data.ArrayLayout(data.ArrayLayout(signed(c.core_weight[1]),
                                                           c.core_weight[0]),
                                          c.p_out * c.p_in), name="read_filters")
        latency = 0
        for k in range(c.p_out * c.p_in):
            ft = make_filter_transform(t, stages=t.filter_stages)
            m.submodules[f"read_filter_transform{k}"] = ft
            m.d.comb += [ft.x.eq(wstore.read_data[k]), filters[k].eq(ft.y)]
            latency = ft.latency
        return filters, latency

    def _output_credits(self):
        """Credits of the output queue: one per beat it holds (an engine may count tiles)."""
        return output_queue_depth(self.layer_config)

    def _credit_beat(self, queue, width):
        """Which leaving beats return a credit: None for every beat, else a condition on the
        queue's entry (an engine whose credits count tiles: a tile's last beat)."""
        return None

    def _output(self, m, queue, sched, slots):
        """The output stream out of the queue; credits keep the queue from overflowing."""
        width = len(self.outputs.payload.as_value())
        m.d.comb += [
            self.outputs.payload.eq(queue.r_data[:width]),
            self.outputs.valid.eq(queue.r_rdy),
            self.outputs_last.eq(queue.r_data[width]),
            queue.r_en.eq(self.outputs.ready),
        ]
        if "error" in self.signature.members:
            m.d.comb += self.error.eq(queue.r_data[width + 1])

        depth = self._output_credits()
        credits = Signal(range(depth + 1), init=depth, name="credits")
        taken = sched.step.valid & sched.step.last
        # The handshake is registered before it returns a credit or frees a slot: ``ready``
        # comes from outside, and the slot logic is far from the output port.
        given = Signal(name="output_given")
        given_last = Signal(name="output_given_last")
        returns = self._credit_beat(queue, width)
        m.d.sync += [given.eq(self.outputs.valid & self.outputs.ready if returns is None
                              else self.outputs.valid & self.outputs.ready & returns),
                     given_last.eq(self.outputs.valid & self.outputs.ready & self.outputs_last)]
        # A second register carries each credit back across the chip, so that the credit
        # counter, inside the scheduler's issue loop, has no far input.
        returned = Signal(name="credit_returned")
        m.d.sync += returned.eq(given)
        remaining = Signal.like(credits, name="credits_next")
        credit = Signal(name="credit", init=1)
        m.d.comb += [remaining.eq(credits - taken + returned), sched.credit.eq(credit)]
        m.d.sync += [credits.eq(remaining), credit.eq(remaining != 0)]

        # A layer's slot is free once its last output beat has left (slot_release_latency).
        ptr = slots.output_ptr
        with m.If(given_last):
            m.d.sync += ptr.eq(~ptr)
            for s in range(2):
                with m.If(ptr == s):
                    m.d.sync += [slots.valid[s].eq(0), slots.weights_loaded[s].eq(0),
                                 slots.rows_started[s].eq(0), slots.steps_started[s].eq(0)]


class WinogradConv(_LayerEngine):
    """Winograd convolution-layer engine.

    Parameters
    ----------
    config : LayerConfig
        With a Winograd tile (kept as ``layer_config``: ``config`` is the stream).

    Members
    -------
    config : In(stream.Signature(config_layout(config)))
    weights : In(stream.Signature(ArrayLayout(w, filters_per_beat*k)))
        Element ``f·k + e`` is element ``e`` of the beat's filter ``f``.
    activations : In(stream.Signature(ArrayLayout(signed(data_width), pixels_per_beat*p_in)))
    outputs : Out(stream.Signature(ArrayLayout(signed(result_width), p_out*m*m)))
    outputs_last : Out(1)
        With ``outputs.valid``: the beat is its layer's last.
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
    config, weights, activations, outputs, outputs_last, status
        As :class:`WinogradConv`.
    """

    algorithm = "direct"
    core_class = DirectCore


def binary_layer_engine(config):
    """The layer engine class of a layer with a binary tile: Winograd, weight-specialized
    Winograd (``fixed_weights``) or direct."""
    if config.specialized:
        from .specialized import SpecializedConv
        return SpecializedConv
    if config.sparse:
        from .sparse import SparseConv
        return SparseConv
    return WinogradConv if config.algorithm == "winograd" else DirectConv


def make_layer_engine(config):
    """The layer engine component for ``config``, as the engine registry
    (:mod:`winogen.hw.engines`) picks it from the tile configuration's type and algorithm."""
    from ..engines import layer_engine_class
    return layer_engine_class(_check_config(config))(config)
