"""Layer engines in Amaranth's simulator: control, scheduling, tile extraction, requantization.

Tiny engines (F(2,3), 8×8 maps, 4 channels, P 2×2) run whole layers bit-exact against
:func:`~winogen.gen.layer.layer_golden`, with random stalls on every stream; the emitted
Verilog is checked again under Verilator in test_layer_verilator.py.
"""

import json
import math
import random

import numpy as np
import pytest
from amaranth.hdl import EnableInserter, Fragment, Module, Signal
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from winogen.gen.config import TileConfig
from winogen.gen.layer import LayerConfig, LayerRun, RUN_ERRORS, layer_golden, requantize
from winogen.hw.layer.engine import CONFIG_LATENCY
from winogen.hw.layer import (DirectConv, Requantizer, WinogradConv, engine_latency,
                              make_layer_engine, memory_shapes)
from winogen.hw.pe import MultiplyPE
from winogen.sim.amaranth_streams import stream_put
from winogen.sim.driver import (activation_beats, assemble_outputs, config_beat, output_beats,
                                weight_beats)

WINO = LayerConfig(TileConfig(2, 3, 8, 8, preset="lavin"), max_height=8, max_width=8,
                   max_cin=4, max_cout=4, p_in=2, p_out=2)
WINO_ONLINE_RQ = LayerConfig(TileConfig(2, 3, 6, 6, filter_transform="online", input_stages=1,
                                        pe_stages=1, output_stages=1),
                             max_height=7, max_width=6, max_cin=3, max_cout=3, p_in=2, p_out=1,
                             output_width=8, rounding="half_up")
DIRECT_RQ = LayerConfig(TileConfig(2, 3, 8, 8, algorithm="direct"), max_height=8, max_width=8,
                        max_cin=4, max_cout=4, p_in=2, p_out=2, output_width=6)


def random_layer(cfg, run, rng):
    dv, wv = cfg.tile.data_interval, cfg.tile.weight_interval
    x = rng.integers(dv.lo, dv.hi + 1, (run.cin, run.height, run.width))
    w = rng.integers(wv.lo, wv.hi + 1, (run.cout, run.cin, cfg.r, cfg.r))
    return x, w


def simulate(cfg, jobs, *, stall_in=0.0, stall_out=0.0, seed=0):
    """Run ``jobs`` — (LayerRun, x, w) — in sequence on one engine; return outputs and status.

    Each job's result is (output map or None, errors seen after its config beat, cycles in
    the compute phase). A job whose run fails its checks sends only its config beat and then
    checks that the engine stays idle and takes no activations.
    """
    dut = make_layer_engine(cfg)
    results = []
    rng = random.Random(seed)

    async def tb(ctx):
        nprng = np.random.default_rng(seed)
        for run, x, w in jobs:
            await stream_put(ctx, dut.config, config_beat(run))
            for _ in range(CONFIG_LATENCY):
                await ctx.tick()
            errors = ctx.get(dut.status.errors)
            if run.errors(cfg):
                # Never starts: no weight or activation is taken, nothing comes out.
                ctx.set(dut.weights.valid, 1)
                ctx.set(dut.activations.valid, 1)
                ctx.set(dut.outputs.ready, 1)
                for _ in range(6):
                    assert not ctx.get(dut.weights.ready)
                    assert not ctx.get(dut.activations.ready)
                    assert not ctx.get(dut.outputs.valid)
                    assert not ctx.get(dut.status.busy)
                    assert ctx.get(dut.config.ready)
                    await ctx.tick()
                ctx.set(dut.weights.valid, 0)
                ctx.set(dut.activations.valid, 0)
                ctx.set(dut.outputs.ready, 0)
                results.append((None, errors, None))
                continue
            expect = output_beats(cfg, run)
            received = []
            wbeats = weight_beats(cfg, w)
            abeats = activation_beats(cfg, x, rng=nprng)
            # Drive weights, then activations, while collecting outputs.
            pending = [(dut.weights, b) for b in wbeats] + [(dut.activations, b) for b in abeats]
            index = 0
            compute_cycles = 0
            while len(received) < expect or index < len(pending):
                offer = index < len(pending) and rng.random() >= stall_in
                if offer:
                    port, beat = pending[index]
                    ctx.set(port.valid, 1)
                    ctx.set(port.payload, beat)
                ready = rng.random() >= stall_out
                ctx.set(dut.outputs.ready, ready)
                took = offer and ctx.get(port.ready)
                out_valid = ctx.get(dut.outputs.valid)
                payload = ctx.get(dut.outputs.payload)
                compute_cycles += ctx.get(dut.status.computing)
                await ctx.tick()
                if offer:
                    ctx.set(port.valid, 0)
                if took:
                    index += 1
                if out_valid and ready:
                    received.append(list(payload))
                assert compute_cycles < 50 * expect + 200, "compute does not finish"
            ctx.set(dut.outputs.ready, 1)
            # Back to idle after the last beat; nothing more comes out.
            for _ in range(3):
                assert not ctx.get(dut.outputs.valid), "extra output beat"
                await ctx.tick()
            assert not ctx.get(dut.status.busy)
            ctx.set(dut.outputs.ready, 0)
            results.append((assemble_outputs(cfg, run, received), errors, compute_cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return results


def check_jobs(cfg, runs, *, seed, **kwargs):
    rng = np.random.default_rng(seed)
    jobs = [(run, *random_layer(cfg, run, rng)) for run in runs]
    results = simulate(cfg, jobs, seed=seed, **kwargs)
    for (run, x, w), (y, errors, _) in zip(jobs, results):
        assert errors == 0, f"{run}: status.errors = {errors:#b}"
        golden = layer_golden(cfg, run, x, w)
        assert y.shape == golden.shape, (run, y.shape, golden.shape)
        assert (y == golden).all(), f"{run}: {np.argwhere(y != golden)[:5].tolist()}"
    return results


def test_winograd_layers_bit_exact_with_stalls():
    runs = [LayerRun(8, 8, 4, 4, padding=1), LayerRun(5, 7, 3, 1, padding=0),
            LayerRun(7, 5, 1, 3, padding=1), LayerRun(3, 3, 2, 2, padding=0),
            LayerRun(1, 2, 4, 4, padding=1)]
    check_jobs(WINO, runs, seed=1, stall_in=0.3, stall_out=0.4)


def test_direct_layers_with_requantization_half_even():
    runs = [LayerRun(8, 8, 4, 4, padding=1, shift=7), LayerRun(6, 5, 3, 3, padding=0, shift=0),
            LayerRun(4, 8, 1, 2, padding=1, shift=4)]
    check_jobs(DIRECT_RQ, runs, seed=2, stall_in=0.25, stall_out=0.25)


def test_online_filter_transform_requantization_half_up():
    runs = [LayerRun(7, 6, 3, 3, padding=1, shift=6), LayerRun(5, 6, 2, 1, padding=0, shift=3),
            LayerRun(7, 3, 1, 2, padding=1, shift=WINO_ONLINE_RQ.max_shift)]
    check_jobs(WINO_ONLINE_RQ, runs, seed=3, stall_in=0.2, stall_out=0.3)


def test_full_rate_compute_with_ready_high():
    """With 4 pixels per beat loading outruns compute: after the first tile row's rows the
    scheduler issues one step per cycle (``computing`` counts from its start to its last step)."""
    cfg = WINO.replace(pixels_per_beat=4)
    run = LayerRun(8, 8, 4, 4, padding=1)
    results = check_jobs(cfg, [run], seed=4)
    cycles = cfg.cycles(run)
    assert cycles["bound"] == "compute"
    # the first tile row's beats, then one step per cycle (landing and the row check: 4)
    limit = cycles["compute_ideal"] + cycles["first_tile_row_beats"] + 4
    assert results[0][2] <= limit, (results[0][2], limit)


def test_error_flags_block_the_layer_then_a_valid_one_runs():
    cfg = WINO
    bad = [LayerRun(9, 4, 2, 2), LayerRun(4, 4, 5, 2), LayerRun(4, 4, 0, 2),
           LayerRun(4, 4, 2, 0), LayerRun(2, 4, 1, 1, padding=0),
           LayerRun(4, 4, 1, 1, shift=cfg.max_shift + 1), LayerRun(0, 9, 0, 5)]
    good = LayerRun(6, 6, 3, 2, padding=1)
    rng = np.random.default_rng(5)
    jobs = []
    for run in bad + [good]:
        x = np.zeros((max(run.cin, 1), max(run.height, 1), max(run.width, 1)), dtype=int)
        w = np.zeros((max(run.cout, 1), max(run.cin, 1), 3, 3), dtype=int)
        jobs.append((run, x, w))
    jobs[-1] = (good, *random_layer(cfg, good, rng))
    results = simulate(cfg, jobs, seed=5, stall_out=0.2)
    for (run, _, _), (y, errors, _) in zip(jobs[:-1], results[:-1]):
        expected = sum(1 << RUN_ERRORS[name] for name in run.errors(cfg))
        assert expected and errors == expected, (run, run.errors(cfg), f"{errors:#b}")
        assert y is None
    y, errors, _ = results[-1]
    assert errors == 0
    assert (y == layer_golden(cfg, good, jobs[-1][1], jobs[-1][2])).all()


def test_bad_padding_flag_on_r5():
    # With r = 3 the 1-bit padding field only holds valid values; r = 5 has 1 and 3 bad.
    cfg = LayerConfig(TileConfig(2, 5, 6, 6, algorithm="direct"), max_height=6, max_width=6,
                      max_cin=2, max_cout=2)
    bad = [LayerRun(6, 6, 1, 1, padding=1), LayerRun(6, 6, 1, 1, padding=3),
           LayerRun(3, 6, 1, 1, padding=0)]
    good = LayerRun(4, 3, 2, 2, padding=2)
    rng = np.random.default_rng(6)
    jobs = [(run, None, None) for run in bad] + [(good, *random_layer(cfg, good, rng))]
    results = simulate(cfg, jobs, seed=6)
    for run, (_, errors, _) in zip(bad, results):
        assert errors == sum(1 << RUN_ERRORS[name] for name in run.errors(cfg)), run
    assert "padding" in bad[0].errors(cfg) and "height" in bad[2].errors(cfg)
    assert (results[-1][0] == layer_golden(cfg, good, jobs[-1][1], jobs[-1][2])).all()


EDGE_CASES = [
    # one-row memories (one channel group, one row block), tiny maps
    (LayerConfig(TileConfig(2, 3, 4, 4), max_height=4, max_width=4, max_cin=1, max_cout=1),
     [LayerRun(4, 4, 1, 1, 1), LayerRun(3, 3, 1, 1, 0), LayerRun(1, 1, 1, 1, 1)]),
    # r = 1: no padding, n = m
    (LayerConfig(TileConfig(2, 1, 4, 4), max_height=5, max_width=3, max_cin=3, max_cout=2,
                 p_in=2), [LayerRun(5, 3, 3, 2, 0), LayerRun(1, 1, 1, 1, 0)]),
    # m = 1 direct, P_in = max_cin, P_out not dividing max_cout
    (LayerConfig(TileConfig(1, 3, 5, 5, algorithm="direct"), max_height=5, max_width=6,
                 max_cin=3, max_cout=3, p_in=3, p_out=2),
     [LayerRun(5, 6, 3, 3, 1), LayerRun(3, 4, 2, 1, 0)]),
    # even r, requantization to a narrow width
    (LayerConfig(TileConfig(3, 2, 5, 5), max_height=7, max_width=5, max_cin=2, max_cout=3,
                 p_out=3, output_width=4), [LayerRun(7, 5, 2, 3, 1, shift=3),
                                            LayerRun(2, 2, 1, 2, 0, shift=1)]),
    # scale kept, online transform, mostly combinational stages
    (LayerConfig(TileConfig(4, 3, 6, 6, keep_scale=True, input_stages=0, pe_stages=1,
                            output_stages=0, descale_stages=0, filter_transform="online",
                            filter_stages=0),
                 max_height=9, max_width=9, max_cin=5, max_cout=2, p_in=2, p_out=2),
     [LayerRun(9, 9, 5, 2, 1), LayerRun(3, 9, 3, 1, 0)]),
]


@pytest.mark.parametrize("cfg, runs", EDGE_CASES, ids=lambda v: getattr(v, "module_name", ""))
def test_edge_configurations(cfg, runs):
    check_jobs(cfg, runs, seed=8, stall_in=0.3, stall_out=0.3)


@pytest.mark.parametrize("stages", [1, 2])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("rounding", ["half_even", "half_up"])
def test_requantizer_matches_requantize(rounding, relu, stages):
    width, out_width, count = 12, 5, 8
    dut = Requantizer(width, out_width, count, 4, rounding, stages=stages)
    rng = np.random.default_rng(7)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    cases = []
    for shift in range(width + 1):
        # ties, extremes and random values
        ties = [(k << shift) + (1 << (shift - 1)) if shift else k for k in (-3, -2, -1, 0, 1, 2)]
        values = [v for v in ties if lo <= v <= hi] + [lo, hi]
        values += rng.integers(lo, hi + 1, count - len(values) % count + count).tolist()
        values = values[:len(values) - len(values) % count]
        cases += [(shift, values[k:k + count]) for k in range(0, len(values), count)]
    got = []

    async def tb(ctx):
        for shift, values in cases + [(0, [0] * count)] * (stages - 1):
            ctx.set(dut.x, values)
            ctx.set(dut.shift, shift)
            ctx.set(dut.relu, relu)
            ctx.set(dut.valid, 1)
            await ctx.tick()
            got.append(list(ctx.get(dut.y)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    got = got[stages - 1:]      # one result per case, stages - 1 ticks late
    assert len(got) == len(cases)
    for (shift, values), y in zip(cases, got):
        assert y == requantize(np.array(values), shift, out_width, rounding,
                               relu=relu).tolist(), shift


def test_enable_inserter_gates_memory_read_ports():
    # The engine enables its read ports explicitly; this pins down the Amaranth behaviour
    # that would apply if a memory sat under the pipeline's EnableInserter.
    top = Module()
    inner = Module()
    inner.submodules.mem = mem = Memory(shape=8, depth=4, init=[10, 11, 12, 13])
    rp = mem.read_port()
    addr = Signal(2)
    en = Signal()
    inner.d.comb += rp.addr.eq(addr)
    top.submodules.inner = EnableInserter(en)(inner)
    seen = []

    async def tb(ctx):
        for a, e in [(1, 1), (2, 0), (3, 0), (3, 1), (0, 0)]:
            ctx.set(addr, a)
            ctx.set(en, e)
            await ctx.tick()
            seen.append(ctx.get(rp.data))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert seen == [11, 11, 11, 13, 13]


def test_structure_multipliers_memories_and_widths():
    for cfg in (WINO, WINO_ONLINE_RQ, DIRECT_RQ):
        engine = make_layer_engine(cfg)
        assert isinstance(engine, WinogradConv if cfg.algorithm == "winograd" else DirectConv)
        frag = Fragment.get(engine, None)
        pes = [sub for sub in _walk(frag) if isinstance(sub, MultiplyPE)]
        assert len(pes) == cfg.multipliers
        shapes = memory_shapes(cfg)
        mems = engine.memories
        assert len(mems["weights"].memories) == shapes["weights"]["banks"]
        assert len(mems["activations"].memories) == shapes["activations"]["banks"]
        assert all(mem.depth == shapes["activations"]["depth"]
                   for mem in mems["activations"].memories)
        assert all(mem.depth == shapes["weights"]["depth"] for mem in mems["weights"].memories)
        total = shapes["weights"]["bits"]
        count, width = cfg.stored_weight
        assert total >= cfg.memory_bits["weights"] and width == shapes["weights"]["element_width"]
        assert engine.outputs.payload.shape().size == cfg.result_width * cfg.p_out * cfg.m ** 2


def _walk(fragment):
    # elaboratables of the hierarchy (origins of the fragments)
    for sub, _, _ in fragment.subfragments:
        origins = getattr(sub, "origins", None) or ()
        yield from origins
        yield from _walk(sub)


def test_engine_rejects_wrong_config():
    with pytest.raises(ValueError, match="config.algorithm must be 'winograd'"):
        WinogradConv(DIRECT_RQ)
    with pytest.raises(ValueError, match="config.algorithm must be 'direct'"):
        DirectConv(WINO)
    with pytest.raises(TypeError, match="config must be a LayerConfig"):
        WinogradConv(TileConfig(2, 3))


# -- AdderNet layer engines (pe="adder") ----------------------------------------------------------

ADDER_ENGINES = [
    LayerConfig(TileConfig(2, 3, 6, 6, pe="adder", algorithm="direct"), max_height=6,
                max_width=6, max_cin=3, max_cout=3, p_in=2, p_out=2, output_width=8),
    LayerConfig(TileConfig(2, 3, 6, 6, pe="adder"), max_height=6, max_width=6, max_cin=3,
                max_cout=3, p_in=2, p_out=2),
    LayerConfig(TileConfig(2, 3, 6, 6, pe="adder", adder_matrices="balanced",
                           filter_transform="online"),
                max_height=6, max_width=6, max_cin=3, max_cout=3, p_in=2, p_out=2,
                output_width=9, rounding="half_up"),
]


@pytest.mark.parametrize("cfg", ADDER_ENGINES, ids=lambda c: c.module_name)
def test_adder_layers_bit_exact_with_masked_lanes(cfg):
    # C_in = 3 and 1 on P_in = 2: lane 1 of the last group holds random activations and
    # never-written or stale weights; pe(x, w) = -|x - w| is not 0 there, so only masking
    # the terms gives the golden output. Padding 1 feeds zeros that do count.
    runs = [LayerRun(6, 5, 3, 3, padding=1, shift=2), LayerRun(5, 6, 1, 2, padding=0, shift=1),
            LayerRun(4, 4, 2, 3, padding=1, shift=0), LayerRun(6, 6, 3, 1, padding=1, shift=3)]
    if cfg.output_width is None:
        # no requantizer: the engine takes shift 0 only
        runs = [r.__class__(**{**r.__dict__, "shift": 0}) for r in runs]
    check_jobs(cfg, runs, seed=9, stall_in=0.3, stall_out=0.3)
    assert cfg.masks_lanes


def test_engine_without_requantizer_flags_a_shift():
    """Without a requantizer the shift field is 1 bit and 1 is flagged, not ignored."""
    assert WINO.max_shift == 0 and WINO.output_width is None
    bad = LayerRun(4, 4, 1, 1, shift=1)
    assert bad.errors(WINO) == ["shift"]
    results = simulate(WINO, [(bad, None, None)])
    assert results[0][1] == 1 << RUN_ERRORS["shift"]


def test_adder_layer_widths_come_from_the_pe_interval():
    from winogen.gen.bounds import Interval, transform2d_intervals
    t = TileConfig(2, 3, 8, 8, pe="adder", algorithm="direct")
    cfg = LayerConfig(t, max_cin=5)
    term = t.pe_kind.output_interval(t.data_interval, t.weight_interval)
    assert term == Interval(-255, 0)
    assert cfg.accumulator_intervals == [Interval(-255 * 9 * 5, 0)] * 4
    assert cfg.exact_output_interval == Interval(-255 * 9 * 5, 0)
    w = LayerConfig(TileConfig(2, 3, 8, 8, pe="adder", adder_matrices="balanced"), max_cin=5)
    assert w.accumulator_intervals == [iv.times(5) for iv in w.tile.product_intervals]
    assert all(iv.hi == 0 for iv in w.accumulator_intervals)
    # the adder Winograd output is A'ᵀ M A' as is (no division): its range, not r²·C_in terms
    outs = transform2d_intervals(w.tile.hardware.AT, w.accumulator_intervals)
    assert w.exact_output_interval == Interval(min(i.lo for i in outs), max(i.hi for i in outs))
    assert w.full_output_width == w.exact_output_interval.width
    assert not w.tile.removes_scale and w.tile.scale_divisor == 1
    mul = LayerConfig(TileConfig(2, 3, 8, 8), max_cin=5)
    assert not mul.masks_lanes and cfg.masks_lanes and w.masks_lanes
    names = {c.module_name for c in (cfg, w, LayerConfig(TileConfig(2, 3, 8, 8, pe="adder")),
                                     mul)}
    assert len(names) == 4     # the matrix set is part of the name


def test_adder_layer_config_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="keep_scale does not apply to Winograd adder engines"):
        LayerConfig(TileConfig(2, 3, pe="adder", keep_scale=True))
    with pytest.raises(ValueError, match="F\\(2,3\\) only"):
        LayerConfig(TileConfig(4, 3, pe="adder"))
    with pytest.raises(TypeError, match="tile must be a TileConfig or an RNSTileConfig, not 'adder'"):
        LayerConfig("adder")
    with pytest.raises(ValueError, match="p_in must be an integer from 1 to 4, not 5"):
        LayerConfig(TileConfig(2, 3, pe="adder", algorithm="direct"), max_cin=4, p_in=5)


def test_adder_layer_manifest():
    from winogen.hw.layer import layer_manifest
    cfg = ADDER_ENGINES[1]
    engine = make_layer_engine(cfg)
    manifest = layer_manifest(cfg, engine)
    assert manifest["pe"] == "adder" and manifest["multipliers"] == 0
    assert manifest["processing_elements"] == cfg.multipliers == 2 * 2 * 16
    assert manifest["unused_lanes"] == "PE terms masked to 0"
    assert manifest["scale"]["adder_output_scale"] == 4 and manifest["scale"]["divisor"] == 1
    assert manifest["algorithm"]["hardware"]["AT"] == [[2, 1, 1, 0], [0, 1, -1, -2]]
    assert "adder_winograd_conv2d" in manifest["function"]
    again = LayerConfig.from_json(json.loads(json.dumps(manifest["parameters"])))
    assert again.to_json() == cfg.to_json() and again.tile.hardware == cfg.tile.hardware
    Fragment.get(engine, None)
