"""winogen.hw.rns.converter in Amaranth's simulator: mixed-radix conversion and its check."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from winogen.gen.rns import RNSTileConfig, converter_levels, residue_width, to_residues
from winogen.hw.rns import MixedRadixConverter, converter_cuts


@pytest.mark.parametrize("kwargs", [
    dict(m=4, r=3, moduli="8bit-primes-4", redundant_moduli=1, convert_stages=0),
    dict(m=2, r=3, moduli=(251, 253, 255, 256), redundant_moduli=1, convert_stages=0),
])
def test_mixed_radix_converter_and_check(kwargs):
    cfg = RNSTileConfig(**kwargs)
    conv = MixedRadixConverter(cfg)
    R = cfg.result_interval
    rng = np.random.default_rng(3)
    values = [R.lo, R.hi, 0, -1, 1] + [int(v) for v in rng.integers(R.lo, R.hi, 60)]
    mods = cfg.moduli
    sim = Simulator(conv)

    async def bench(ctx):
        for x in values:
            res = [int(v) for v in to_residues(np.array(x), mods)]
            for i, v in enumerate(res):
                ctx.set(conv.r[i], v)
            assert ctx.get(conv.y) == x and ctx.get(conv.error) == 0, x
            # Any change of one residue (the redundant one included) is flagged.
            for i, mi in enumerate(mods):
                for delta in (1, mi - 1, (1 << residue_width(mi)) - 1 - res[i]):
                    if (res[i] + delta) % mi == res[i] % mi:
                        continue
                    bad = list(res)
                    bad[i] = (res[i] + delta) % (1 << residue_width(mi))
                    for j, v in enumerate(bad):
                        ctx.set(conv.r[j], v)
                    if bad[i] % mi != res[i]:
                        assert ctx.get(conv.error) == 1, (x, i, bad[i])
                for j, v in enumerate(res):
                    ctx.set(conv.r[j], v)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("moduli, stages", [
    (moduli, s) for moduli in ((251, 241, 239, 223), (251, 241, 239))
    for s in [*range(converter_levels(len(moduli)) + 1), None]])
def test_mixed_radix_converter_pipelined(moduli, stages):
    """Every staging from 0 to converter_levels registers: one value a clock in, each
    out ``converter_latency`` clocks later with its check (fault-free and one bad residue)."""
    cfg = RNSTileConfig(4, 3, data_width=4, weight_width=4, moduli=moduli, redundant_moduli=1,
                        convert_stages=stages)
    stages = cfg.converter_latency
    assert stages == (converter_levels(len(moduli)) if cfg.convert_stages is None
                      else cfg.convert_stages)
    assert len(converter_cuts(len(cfg.moduli), stages)) == stages
    conv = MixedRadixConverter(cfg)
    assert conv.latency == stages
    R, mods = cfg.result_interval, cfg.moduli
    rng = np.random.default_rng(stages)
    values = [R.lo, R.hi, 0, -1] + [int(v) for v in rng.integers(R.lo, R.hi + 1, 40)]
    beats = []
    for i, x in enumerate(values):
        res = [int(v) for v in to_residues(np.array(x), mods)]
        bad = i % 2 == 1
        if bad:
            ch = i % len(mods)
            res[ch] = (res[ch] + 1) % mods[ch]
        beats.append((res, x, bad))
    sim = Simulator(conv)
    if stages:
        sim.add_clock(1e-6)

    async def bench(ctx):
        seen = []
        for cycle in range(len(beats) + stages):
            if cycle < len(beats):
                for j, v in enumerate(beats[cycle][0]):
                    ctx.set(conv.r[j], v)
            if stages == 0 or cycle >= stages:
                seen.append((ctx.get(conv.y), ctx.get(conv.error)))
            if stages:
                await ctx.tick()
        for (res, x, bad), (y, error) in zip(beats, seen[:len(beats)]):
            assert error == int(bad), (x, res)
            if not bad:
                assert y == x
    sim.add_testbench(bench)
    sim.run()
