"""Tile engines in Amaranth's simulator: fast unit tests of the whole engine and its blocks.

The same engines are checked again as emitted Verilog under Verilator in
test_tile_verilator.py; these tests cover more configurations quickly.
"""

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from winogen.gen.config import TileConfig
from winogen.gen.fixedpoint import TileModel
from winogen.hw.pe import PEArray, MultiplyPE
from winogen.hw.tile import DirectTile, WinogradTile, make_tile_engine
from winogen.sim.amaranth_streams import collect_stream, drive_stream, stream_put

from tile_vectors import tile_vectors, weight_beat


def run_engine(cfg, d, g, *, stall_in=0.0, stall_out=0.0, seed=0):
    """Stream tiles ``d`` through the engine with filter ``g``; return outputs and cycles."""
    dut = make_tile_engine(cfg)
    results, cycles = [], []

    async def source(ctx):
        await stream_put(ctx, dut.weights, weight_beat(cfg, g))
        await drive_stream(ctx, dut.tiles, [[int(x) for x in t.flat] for t in d],
                           stall_prob=stall_in, seed=seed)

    async def sink(ctx):
        got = await collect_stream(ctx, dut.outputs, len(d), stall_prob=stall_out,
                                   seed=seed + 1, record_cycles=cycles)
        results.extend(np.array([list(p) for p in got]).reshape(len(d), cfg.m, cfg.m))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return np.array(results), cycles


CONFIGS = [
    TileConfig(2, 3, 8, 8, preset="lavin"),
    TileConfig(4, 3, 8, 8, preset="lavin", filter_transform="online"),
    TileConfig(4, 3, 4, 4, preset="barabasz"),
    TileConfig(6, 3, 12, 12),
    TileConfig(2, 5, 8, 8, keep_scale=True),
    TileConfig(4, 2, 8, 6, fold="G"),
    TileConfig(3, 3, 5, 7, input_stages=0, pe_stages=0, output_stages=1, descale_stages=0),
    TileConfig(2, 3, 8, 8, algorithm="direct"),
    TileConfig(4, 3, 4, 4, algorithm="direct", pe_stages=0, output_stages=1),
    # Quantized Winograd domains: no output shift (Z narrowed to the output), a rounding
    # output shift, the clamp, and no registers around the rounding.
    TileConfig(4, 3, 8, 8, wino_width=9),
    TileConfig(4, 3, 8, 8, wino_width=9, wino_scales="tapwise"),
    TileConfig(2, 3, 8, 8, wino_width=8, input_stages=0, pe_stages=0, output_stages=1),
    TileConfig(2, 3, 8, 8, wino_width=8, wino_scales="tapwise", filter_transform="online"),
    # Given shifts one below the derived ones: Û rounded on chip saturates at both ends.
    TileConfig(2, 3, 8, 8, wino_width=8, filter_transform="online", wino_scales=(
        tuple(max(s - 1, 0) for s in TileConfig(2, 3, wino_width=8, wino_scales="tapwise")
              .quantization.v_shifts),
        tuple(s - 1 for s in TileConfig(2, 3, wino_width=8, wino_scales="tapwise")
              .quantization.u_shifts))),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.module_name + ("_online" if c.filter_transform == "online" else ""))
def test_engine_matches_fixed_point_model_with_stalls(cfg):
    d, g = tile_vectors(cfg, count=24, seed=3)
    expected = TileModel(cfg)(d, g[None])
    got, _ = run_engine(cfg, d, g, stall_in=0.3, stall_out=0.3)
    assert got.shape == expected.shape
    assert (got == expected).all()


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[1], CONFIGS[7]], ids=lambda c: c.module_name)
def test_full_throughput_with_ready_high(cfg):
    d, g = tile_vectors(cfg, count=16, seed=4)
    got, cycles = run_engine(cfg, d, g)
    assert (got == TileModel(cfg)(d, g[None])).all()
    # one tile per cycle once the pipeline is full
    assert np.all(np.diff(cycles) == 1)


def test_weight_beat_applies_only_to_later_tiles():
    cfg = TileConfig(2, 3, 6, 6, preset="lavin", filter_transform="online")
    d, g1 = tile_vectors(cfg, count=6, seed=5)
    _, g2 = tile_vectors(cfg, count=1, seed=6)
    dut = make_tile_engine(cfg)
    results = []

    async def source(ctx):
        await stream_put(ctx, dut.weights, weight_beat(cfg, g1))
        for t in d[:3]:
            await stream_put(ctx, dut.tiles, [int(x) for x in t.flat])
        await stream_put(ctx, dut.weights, weight_beat(cfg, g2))
        for t in d[3:]:
            await stream_put(ctx, dut.tiles, [int(x) for x in t.flat])

    async def sink(ctx):
        got = await collect_stream(ctx, dut.outputs, 6, stall_prob=0.5, seed=2)
        results.extend(np.array([list(p) for p in got]).reshape(6, cfg.m, cfg.m))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    model = TileModel(cfg)
    expected = np.concatenate([model(d[:3], g1[None]), model(d[3:], g2[None])])
    assert (np.array(results) == expected).all()


def test_multiplier_count_and_pe_seam():
    for cfg in CONFIGS:
        engine = make_tile_engine(cfg)
        Fragment.get(engine, None)  # elaborate: the blocks exist from then on
        assert len(engine.pe_array.pes) == cfg.multipliers
        assert all(isinstance(pe, MultiplyPE) for pe in engine.pe_array.pes)
    assert TileConfig(4, 3).multipliers == 36
    assert TileConfig(4, 3, algorithm="direct").multipliers == 144


@pytest.mark.parametrize("kind", ["mul", "adder"])
def test_pe_array_registers_and_values(kind):
    # Per-element ranges differ; the extremes of each range are among the samples.
    from winogen.gen.bounds import Interval
    from winogen.gen.pe import pe_kind
    a_iv, b_iv = [Interval(-100, 50), Interval(-8, 7)], [Interval(-3, 9), Interval(-128, 127)]
    pes = PEArray(kind, a_iv, b_iv, stages=2)
    samples = [(-100, 9, -8, -128), (50, -3, 7, 127), (0, 0, -1, 1), (3, 3, 5, 5)]
    out = []

    async def tb(ctx):
        for a0, b0, a1, b1 in samples + [(0, 0, 0, 0)] * 2:
            ctx.set(pes.a, [a0, a1])
            ctx.set(pes.b, [b0, b1])
            await ctx.tick()
            out.append(list(ctx.get(pes.p)))

    sim = Simulator(pes)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    combine = pe_kind(kind).combine
    # latency 2: the term of sample k appears after tick k + 2
    for k, (a0, b0, a1, b1) in enumerate(samples):
        assert out[k + 1] == [int(combine(a0, b0)), int(combine(a1, b1))]


def test_engine_rejects_wrong_config():
    with pytest.raises(ValueError, match="config.algorithm must be 'winograd'"):
        WinogradTile(TileConfig(2, 3, algorithm="direct"))
    with pytest.raises(ValueError, match="config.algorithm must be 'direct'"):
        DirectTile(TileConfig(2, 3))
    with pytest.raises(TypeError, match="config must be a TileConfig"):
        WinogradTile({"m": 2})
