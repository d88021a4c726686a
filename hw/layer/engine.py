"""The layer engines: control, memories, scheduler and pipeline around a core."""

from amaranth.hdl import EnableInserter, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...gen.layer import RUN_ERRORS
from ..util import delay
from .checker import RunChecker
from .cores import DirectCore, WinogradCore, engine_latency
from .layouts import (PHASES, _check_config, _run_layout, _weight_shape, config_layout,
                      status_layout)
from .requant import Requantizer
from .schedule import TileExtractor, TileScheduler
from .stores import ActivationStore, WeightStore

__all__ = ["WinogradConv", "DirectConv", "binary_layer_engine", "make_layer_engine"]


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
    }


class _LayerEngine(wiring.Component):
    """Control, memories, scheduler and pipeline shared by the layer engines."""

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
        m.submodules.weight_store = wstore = WeightStore(c)
        m.submodules.activation_store = astore = ActivationStore(c)
        m.submodules.scheduler = sched = TileScheduler(c, astore.addr_width, wstore.addr_width)
        self.memories = {"weights": wstore, "activations": astore}

        phase = Signal(2, name="phase")
        errors = Signal(len(RUN_ERRORS), name="errors")
        run = Signal(_run_layout(c), name="run")
        en = Signal(name="en")      # advance the compute pipeline this cycle
        m.d.comb += en.eq(~self.outputs.valid | self.outputs.ready)
        self._control(m, checker, wstore, astore, sched, phase, errors, run, en)
        m.submodules.pipeline = EnableInserter(en)(self._pipeline(m, wstore, astore, sched,
                                                                  run, en))
        return m

    def _control(self, m, checker, wstore, astore, sched, phase, errors, run, en):
        """The configuration beat, the phases (weights, activations, compute) and the
        output beats still owed."""
        c = self.layer_config
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

    def _pipeline(self, m, wstore, astore, sched, run, en):
        """The compute pipeline: tile extraction, the core, the optional requantizer.

        Returns the pipeline's module, which the caller stalls with one enable (``en``);
        the memory read ports in ``m`` are enabled by ``en`` explicitly.
        """
        c = self.layer_config
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
        w_addr = delay(pipe, step.weight_addr, 1 + core.weight_delay, "weight_addr",
                       reset_less=False)
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
            pipe.d.comb += self.error.eq(delay(pipe, core.result_error, rq_stages, "error",
                                               reset_less=False))
        return pipe


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


def binary_layer_engine(config):
    """The layer engine class of a layer with a binary tile: Winograd or direct."""
    return WinogradConv if config.algorithm == "winograd" else DirectConv


def make_layer_engine(config):
    """The layer engine component for ``config``, as the engine registry
    (:mod:`winogen.hw.engines`) picks it from the tile configuration's type and algorithm."""
    from ..engines import layer_engine_class
    return layer_engine_class(_check_config(config))(config)
