"""cocotb testbench of a layer engine's AXI4-Stream wrapper ``<top>_axis``, with cocotbext-axi.

The wrapper (:func:`winogen.fpga.axis.axis_wrapper`) is driven as a user's AXI4-Stream
fabric would drive it: :class:`cocotbext.axi.AxiStreamSource` on ``s_axis_config``,
``s_axis_weights`` and ``s_axis_activations`` and :class:`cocotbext.axi.AxiStreamSink` on
``m_axis_outputs``, each with random pauses. As in :mod:`winogen.sim.tb_layer`, the
testbench knows nothing but the engine's manifest.

Tests
-----
``layers``
    Queues every layer of ``WINOGEN_LAYERS`` at once, back to back: per layer one config
    beat, its weight beats (:func:`~winogen.sim.driver.weight_beats`, one multi-beat frame)
    and its activation beats (:func:`~winogen.sim.driver.activation_beats`, one frame; lanes
    beyond C_in random). The padding bits of every input ``tdata`` carry random
    values, which the engine must ignore. The sink ends a frame on ``tlast``, so each
    received frame must be exactly one layer's output beats
    (:func:`winogen.sim.driver.output_beats`); a monitor checks independently that ``tlast``
    is high on exactly the last beat of each layer. Every output is compared bit for bit
    with :func:`winogen.gen.layer.layer_golden`; the padding bits of ``m_axis_outputs_tdata``
    must be 0, ``status.errors`` must stay 0 and ``error`` (where present) must never flag a
    beat. Nothing may follow the last layer's outputs.

Environment
-----------
WINOGEN_MANIFEST
    Path of the engine's manifest (the wrapped engine's, ``<name>.json``).
WINOGEN_LAYERS
    JSON list of layer specs ``{"height", "width", "cin", "cout", "padding", "shift",
    "seed"}`` (optional ``"pattern": "extreme"``).
WINOGEN_AXIS_PAUSE
    Probability that each source and the sink pauses in a cycle (default 0.3).
WINOGEN_AXIS_SEED
    Seed of the pause patterns and padding bits (default 0).
"""

import json
import logging
import os
import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from ..fpga.axis import OUTPUT_STREAM, input_streams, tdata_width
from ..gen.layer import LayerRun, layer_golden
from ..gen.manifest import to_config
from .driver import activation_beats, assemble_outputs, config_beat, output_beats, weight_beats
from .packing import pack_signed, pack_unsigned, unpack_signed
from .testbench import engine_manifest

__all__ = ["AxisHarness"]


def _pauses(rng, probability):
    """An endless pause pattern: True (pause this cycle) with ``probability``."""
    while True:
        yield rng.random() < probability


class AxisHarness:
    """Clock, reset, the cocotbext-axi sources and sink, packing and the tlast monitor.

    Parameters
    ----------
    dut
        The ``<top>_axis`` wrapper.
    manifest : dict
        The wrapped engine's manifest.
    pause : float
        Pause probability of every source and of the sink, per cycle.
    seed : int
        Seed of the pause patterns and of the input padding bits.
    """

    def __init__(self, dut, manifest, *, pause=0.3, seed=0):
        self.dut = dut
        self.manifest = manifest
        self.cfg = to_config(manifest)
        self.ports = {p["name"]: p for p in manifest["ports"]}
        self.pause = pause
        self.seed = seed
        self.junk = random.Random(f"{seed}/padding")
        self.streams = input_streams(manifest)      # no weights: weight-specialized
        self.widths = {s: self.ports[f"{s}__payload"]["width"]
                       for s in (*self.streams, OUTPUT_STREAM)}
        self.last_beats = []        # index of each transferred output beat with tlast high
        self.flagged_beats = []     # index of each transferred output beat with error high
        self.beats = 0              # output beats transferred so far

    async def start(self):
        """Start the clock, reset (``aresetn`` low), then start the AXI4-Stream models."""
        dut = self.dut
        cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
        # Before and during reset nothing drives a stream: the models start after it, so
        # that no beat is offered while the engine is in reset.
        for s in self.streams:
            getattr(dut, f"s_axis_{s}_tvalid").value = 0
        dut.m_axis_outputs_tready.value = 0
        dut.aresetn.value = 0
        await ClockCycles(dut.aclk, 3)
        dut.aresetn.value = 1
        await RisingEdge(dut.aclk)
        self.sources = {}
        for s in self.streams:
            bus = AxiStreamBus.from_prefix(dut, f"s_axis_{s}")
            assert len(bus.tdata) == tdata_width(self.widths[s]), (s, len(bus.tdata))
            src = AxiStreamSource(bus, dut.aclk, dut.aresetn, reset_active_level=False)
            src.log.setLevel(logging.WARNING)   # not every frame into the log
            src.set_pause_generator(_pauses(random.Random(f"{self.seed}/{s}"), self.pause))
            self.sources[s] = src
        bus = AxiStreamBus.from_prefix(dut, f"m_axis_{OUTPUT_STREAM}")
        assert len(bus.tdata) == tdata_width(self.widths[OUTPUT_STREAM]), len(bus.tdata)
        self.sink = AxiStreamSink(bus, dut.aclk, dut.aresetn, reset_active_level=False)
        self.sink.log.setLevel(logging.WARNING)
        self.sink.set_pause_generator(_pauses(random.Random(f"{self.seed}/outputs"),
                                              self.pause))
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        """Record which transferred output beats carry tlast (and error); status.errors = 0."""
        dut = self.dut
        has_error = "error" in self.ports
        errors = self.manifest["status_fields"]["errors"]
        while True:
            await RisingEdge(dut.aclk)
            await ReadOnly()
            status = (int(dut.status.value) >> errors["offset"]) & ((1 << errors["width"]) - 1)
            assert status == 0, f"status.errors = {status:#b} during a valid layer"
            if int(dut.m_axis_outputs_tvalid.value) and int(dut.m_axis_outputs_tready.value):
                if int(dut.m_axis_outputs_tlast.value):
                    self.last_beats.append(self.beats)
                if has_error and int(dut.error.value):
                    self.flagged_beats.append(self.beats)
                self.beats += 1

    # -- packing -------------------------------------------------------------------------

    def tdata(self, stream, payload):
        """``payload`` (an int of the payload's width) as ``tdata`` bytes, with random padding
        bits above it (the wrapper must ignore them)."""
        width = self.widths[stream]
        assert 0 <= payload < (1 << width), (stream, payload)
        total = tdata_width(width)
        value = payload | (self.junk.getrandbits(total - width) << width if total > width else 0)
        return value.to_bytes(total // 8, "little")

    def pack(self, stream, values):
        p = self.ports[f"{stream}__payload"]["packing"]
        pack = pack_signed if p["signed"] else pack_unsigned
        return pack(values, p["element_width"])

    def pack_config(self, run):
        value = 0
        for name, v in config_beat(run).items():
            field = self.manifest["config_fields"][name]
            assert 0 <= v < (1 << field["width"]), (name, v, field)
            value |= v << field["offset"]
        return value

    def unpack_outputs(self, frame):
        """The output beats of one received frame: lists of ints; the padding must be 0."""
        width = self.widths[OUTPUT_STREAM]
        nbytes = tdata_width(width) // 8
        data = bytes(frame.tdata)
        assert len(data) % nbytes == 0, (len(data), nbytes)
        p = self.ports[f"{OUTPUT_STREAM}__payload"]["packing"]
        beats = []
        for i in range(0, len(data), nbytes):
            value = int.from_bytes(data[i:i + nbytes], "little")
            assert value >> width == 0, f"output beat {i // nbytes}: padding bits are not 0"
            beats.append(unpack_signed(value, p["element_width"], p["elements"]))
        return beats

    # -- layers --------------------------------------------------------------------------

    def queue_layer(self, run, x, w, rng):
        """Queue one layer's config, weight and activation beats on the sources."""
        cfg = self.cfg
        self.sources["config"].send_nowait(
            AxiStreamFrame(self.tdata("config", self.pack_config(run))))
        if "weights" in self.sources:
            self.sources["weights"].send_nowait(AxiStreamFrame(b"".join(
                self.tdata("weights", self.pack("weights", b)) for b in weight_beats(cfg, w))))
        # lanes beyond C_in carry random values: the engine must ignore them
        self.sources["activations"].send_nowait(AxiStreamFrame(b"".join(
            self.tdata("activations", self.pack("activations", b))
            for b in activation_beats(cfg, x, rng=rng))))


def _random_layer(cfg, run, rng, pattern="random"):
    dv, wv = cfg.tile.data_interval, cfg.tile.weight_interval
    xs, ws = (run.cin, run.height, run.width), (run.cout, run.cin, cfg.r, cfg.r)
    if pattern == "extreme":
        x, w = (np.where(rng.random(xs) < 0.5, dv.lo, dv.hi),
                np.where(rng.random(ws) < 0.5, wv.lo, wv.hi))
    else:
        x, w = rng.integers(dv.lo, dv.hi + 1, xs), rng.integers(wv.lo, wv.hi + 1, ws)
    if cfg.specialized:         # the engine's own weights
        w = cfg.fixed_weights.values
    return x, w


@cocotb.test()
async def layers(dut):
    """The layers of WINOGEN_LAYERS back to back through the wrapper, bit-exact, tlast per layer."""
    manifest = engine_manifest()
    h = AxisHarness(dut, manifest, pause=float(os.environ.get("WINOGEN_AXIS_PAUSE", "0.3")),
                    seed=int(os.environ.get("WINOGEN_AXIS_SEED", "0")))
    specs = json.loads(os.environ.get("WINOGEN_LAYERS", "[]"))
    assert specs, "WINOGEN_LAYERS must list at least one layer"
    await h.start()
    cfg = h.cfg

    layers = []
    for spec in specs:
        run = LayerRun(spec["height"], spec["width"], spec["cin"], spec["cout"],
                       spec.get("padding", 0), spec.get("shift", 0)).check(cfg)
        rng = np.random.default_rng(spec.get("seed", 0))
        x, w = _random_layer(cfg, run, rng, spec.get("pattern", "random"))
        h.queue_layer(run, x, w, rng)
        layers.append((spec, run, x, w))

    expected_last, total = [], 0
    for spec, run, x, w in layers:
        beats = output_beats(cfg, run)
        total += beats
        expected_last.append(total - 1)
        # Generous: every stream pauses, and the inputs of this layer come first.
        model = cfg.cycles(run)
        budget = 10 * (model["weights"] + model["activations"] + model["compute_ideal"]) + 2000
        frame = await with_timeout(h.sink.recv(), budget * 10, "ns")
        got = h.unpack_outputs(frame)
        assert len(got) == beats, (f"{spec}: the frame ended by tlast holds {len(got)} output "
                                   f"beats, expected {beats}")
        y = assemble_outputs(cfg, run, got)
        golden = layer_golden(cfg, run, x, w, winograd_weights=cfg.specialized
                              and cfg.fixed_weights.kind == "u")
        bad = np.argwhere(y != golden)
        assert bad.size == 0, (f"{spec}: {len(bad)} outputs differ, first at {bad[0].tolist()}: "
                               f"got {y[tuple(bad[0])]}, expected {golden[tuple(bad[0])]}")
        dut._log.info("layer %s: %d output beats, bit-exact", spec, beats)

    # Nothing follows the last layer; every source has delivered everything.
    await ClockCycles(dut.aclk, 4 * cfg.r + 40)
    assert h.sink.empty() and h.beats == total, f"{h.beats} output beats, expected {total}"
    for s, src in h.sources.items():
        assert src.idle(), f"s_axis_{s}: beats left unaccepted"
    assert h.last_beats == expected_last, (f"tlast on output beats {h.last_beats}, expected on "
                                           f"{expected_last} (each layer's last)")
    assert not h.flagged_beats, f"error flagged on output beats {h.flagged_beats}"
