"""cocotb testbench for emitted tile engines (Winograd and direct).

The testbench knows nothing but the manifest: ``WINOGEN_MANIFEST`` names the
JSON written next to the Verilog, from which the configuration, the golden
model (:class:`~winogen.gen.fixedpoint.TileModel`) and the port packing are
rebuilt. Every output is compared bit for bit with the model.

Environment
-----------
WINOGEN_MANIFEST
    Path of the engine's manifest.
WINOGEN_TILES
    Random tiles per filter (default 40).
WINOGEN_STALL
    Stall probability on both sides for the stall tests (default 0.3).
"""

import os

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from ..gen.fixedpoint import TileModel
from ..gen.manifest import to_config
from .packing import pack_signed, unpack_signed
from .streams import StreamSink, StreamSource
from .testbench import engine_manifest

__all__ = ["load_config", "TileHarness"]


#: Kept for existing imports: :func:`winogen.gen.manifest.to_config` rebuilds every kind.
load_config = to_config


class TileHarness:
    """Clock, reset, stream drivers and packing for one tile-engine instance."""

    def __init__(self, dut, manifest, *, stall=0.0, seed=0):
        self.dut = dut
        self.manifest = manifest
        self.cfg = to_config(manifest)
        self.model = TileModel(self.cfg)
        self.rng = np.random.default_rng(seed)
        self.stall = stall
        self._ports = {p["name"]: p for p in manifest["ports"]}
        self.clock = Clock(dut.clk, 10, unit="ns")

    async def start(self):
        cocotb.start_soon(self.clock.start())
        await self.reset()

    async def reset(self, cycles=2):
        self.dut.rst.value = 1
        self.dut.tiles__valid.value = 0
        self.dut.weights__valid.value = 0
        self.dut.outputs__ready.value = 0
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def _packing(self, port):
        p = self._ports[f"{port}__payload"]["packing"]
        return p["element_width"], p["elements"]

    def pack(self, port, values):
        width, count = self._packing(port)
        values = [int(v) for v in np.asarray(values).flat]
        assert len(values) == count, (port, len(values), count)
        return pack_signed(values, width)

    def unpack_outputs(self, values):
        width, count = self._packing("outputs")
        m = self.cfg.m
        return np.array([unpack_signed(v, width, count) for v in values],
                        dtype=object).astype(np.int64).reshape(len(values), m, m)

    def weight_beat(self, g):
        cfg = self.cfg
        if cfg.algorithm == "winograd" and cfg.filter_transform == "offline":
            return self.pack("weights", self.model.filter_transform(g))
        return self.pack("weights", g)

    def random_tiles(self, count):
        iv = self.cfg.data_interval
        return self.rng.integers(iv.lo, iv.hi + 1, (count, self.cfg.n, self.cfg.n))

    def random_filter(self):
        iv = self.cfg.weight_interval
        return self.rng.integers(iv.lo, iv.hi + 1, (self.cfg.r, self.cfg.r))

    def extreme_tiles(self):
        lo, hi = self.cfg.data_interval.lo, self.cfg.data_interval.hi
        n = self.cfg.n
        checker = np.indices((n, n)).sum(axis=0) % 2
        return np.array([np.full((n, n), lo), np.full((n, n), hi),
                         np.where(checker, lo, hi), np.where(checker, hi, lo)])

    def extreme_filters(self):
        lo, hi = self.cfg.weight_interval.lo, self.cfg.weight_interval.hi
        r = self.cfg.r
        checker = np.indices((r, r)).sum(axis=0) % 2
        filters = [np.full((r, r), lo), np.full((r, r), hi), np.where(checker, lo, hi)]
        if self.cfg.quantization:
            # U at the top and bottom of the widest position's range: Û's rounding and clamp.
            G = np.array(self.cfg.hardware.G, dtype=np.int64)
            widest = max(range(self.cfg.n ** 2), key=lambda e: self.cfg.u_intervals[e].width)
            filters += _corner_inputs(G, widest, lo, hi)
        return filters

    def extreme_v_tiles(self):
        """Quantized engines: tiles at the top and bottom of every ``V_ij``'s exact range,
        where rounding half up carries (the clamp) or lands on ``−2^(W−1)``."""
        if not self.cfg.quantization:
            return np.zeros((0, self.cfg.n, self.cfg.n), dtype=np.int64)
        BT = np.array(self.cfg.hardware.BT, dtype=np.int64)
        iv = self.cfg.data_interval
        return np.array([t for e in range(self.cfg.n ** 2)
                         for t in _corner_inputs(BT, e, iv.lo, iv.hi)])


def _corner_inputs(M, e, lo, hi):
    """The inputs ``x`` with the largest and the smallest ``(M x Mᵀ)[e]``, ``x`` in [lo, hi]."""
    n = len(M)
    coeff = np.outer(M[e // n], M[e % n])
    return [np.where(coeff > 0, hi, lo), np.where(coeff > 0, lo, hi)]


async def _run_batches(h, batches, stall):
    """Send (filter, tiles) batches through one source pair; return expected and received."""
    weights = StreamSource(h.dut, "weights", h.dut.clk, stall_prob=stall)
    tiles = StreamSource(h.dut, "tiles", h.dut.clk, stall_prob=stall)
    sink = StreamSink(h.dut, "outputs", h.dut.clk, stall_prob=stall)
    sink.start()
    expected = []
    for g, d in batches:
        await weights.send([h.weight_beat(g)])
        await tiles.send([h.pack("tiles", t) for t in d])
        expected.append(h.model(d, g[None]))
    expected = np.concatenate(expected)
    await sink.wait_for(len(expected), timeout_cycles=200 + 20 * len(expected))
    # nothing extra may trickle out afterwards
    await ClockCycles(h.dut.clk, h.cfg.latency + 4)
    sink.stop()
    return expected, h.unpack_outputs(sink.received)


@cocotb.test()
async def extremes_and_random_with_stalls(dut):
    """Extreme and random tiles against extreme and random filters, random stalls on all streams."""
    manifest = engine_manifest()
    stall = float(os.environ.get("WINOGEN_STALL", "0.3"))
    h = TileHarness(dut, manifest, seed=1)
    await h.start()
    count = int(os.environ.get("WINOGEN_TILES", "40"))
    extremes = np.concatenate([h.extreme_tiles(), h.extreme_v_tiles()])
    batches = [(g, extremes) for g in h.extreme_filters()]
    batches.append((h.random_filter(), np.concatenate([h.extreme_tiles(), h.random_tiles(count)])))
    batches.append((h.random_filter(), h.random_tiles(count // 2)))
    expected, got = await _run_batches(h, batches, stall)
    assert got.shape == expected.shape, f"received {got.shape[0]} tiles, expected {expected.shape[0]}"
    mismatches = np.argwhere(np.any(got != expected, axis=(1, 2)))
    assert mismatches.size == 0, (f"{mismatches.size} tiles differ; first at index "
                                  f"{mismatches[0][0]}: got {got[mismatches[0][0]].tolist()}, "
                                  f"expected {expected[mismatches[0][0]].tolist()}")


@cocotb.test()
async def throughput_and_latency(dut):
    """With ready held high: one tile per clock, and the manifest's latency, measured."""
    manifest = engine_manifest()
    h = TileHarness(dut, manifest, seed=2)
    await h.start()
    g = h.random_filter()
    d = h.random_tiles(32)
    weights = StreamSource(dut, "weights", dut.clk)
    await weights.send([h.weight_beat(g)])
    dut.outputs__ready.value = 1
    accept_cycles, output_cycles, outputs = [], [], []
    cycle = 0
    index = 0
    while len(outputs) < len(d) and cycle < 10 * len(d) + 100:
        if index < len(d):
            dut.tiles__valid.value = 1
            dut.tiles__payload.value = h.pack("tiles", d[index])
        else:
            dut.tiles__valid.value = 0
        await ReadOnly()
        if dut.tiles__valid.value and dut.tiles__ready.value:
            accept_cycles.append(cycle)
            index += 1
        if dut.outputs__valid.value:
            output_cycles.append(cycle)
            outputs.append(dut.outputs__payload.value.to_unsigned())
        await RisingEdge(dut.clk)
        cycle += 1
    dut.tiles__valid.value = 0
    assert len(outputs) == len(d)
    assert (h.unpack_outputs(outputs) == h.model(d, g[None])).all()
    assert np.all(np.diff(accept_cycles) == 1), f"input accepted at cycles {accept_cycles}"
    assert np.all(np.diff(output_cycles) == 1), f"output produced at cycles {output_cycles}"
    measured = output_cycles[0] - accept_cycles[0]
    assert measured == manifest["latency"], (f"measured latency {measured} cycles, "
                                             f"manifest says {manifest['latency']}")
    dut._log.info("throughput 1 tile/cycle over %d tiles, latency %d cycles", len(d), measured)


@cocotb.test()
async def reset_in_mid_stream(dut):
    """A reset while tiles are in flight: afterwards only the new stream's results come out."""
    manifest = engine_manifest()
    h = TileHarness(dut, manifest, seed=3)
    await h.start()
    weights = StreamSource(dut, "weights", dut.clk)
    tiles = StreamSource(dut, "tiles", dut.clk, stall_prob=0.2)
    sink = StreamSink(dut, "outputs", dut.clk, stall_prob=0.5)
    await weights.send([h.weight_beat(h.random_filter())])
    sink.start()
    tiles.start([h.pack("tiles", t) for t in h.random_tiles(30)])
    await ClockCycles(dut.clk, 12)
    tiles.stop()
    sink.stop()
    await h.reset(cycles=3)
    # the pipeline must be empty: nothing valid for a whole latency while ready is high
    dut.outputs__ready.value = 1
    for _ in range(h.cfg.latency + 3):
        await ReadOnly()
        assert not dut.outputs__valid.value, "stale output after reset"
        await RisingEdge(dut.clk)
    dut.outputs__ready.value = 0
    g = h.random_filter()
    d = np.concatenate([h.extreme_tiles(), h.random_tiles(12)])
    expected, got = await _run_batches(h, [(g, d)], 0.3)
    assert got.shape == expected.shape and (got == expected).all()
