"""winogen.hw.rns.arith in Amaranth's simulator: the modular PE, folds and reductions."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from winogen.gen.bounds import Interval
from winogen.gen.rns import residue_width
from winogen.hw.rns import ModMulPE, ModReduce, fold_into


def _run_comb(dut, cases, check):
    sim = Simulator(dut)

    async def bench(ctx):
        for case in cases:
            check(ctx, case)

    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("mod,wide", [(251, False), (255, False), (256, False), (257, False),
                                      (7, False), (251, True), (223, True), (257, True)])
def test_mod_mul_pe(mod, wide):
    """p = a·b mod m for every corner and random operands; with ``wide`` a signed 18-bit a."""
    w = residue_width(mod)
    rng = np.random.default_rng(mod)
    if wide:
        a_iv = Interval(-(1 << 17), (1 << 17) - 1)      # a partially reduced V
        pe = ModMulPE(mod, stages=0, a_interval=a_iv)
        assert pe.a.shape() == signed(18) and pe.product_interval == a_iv * pe.b_interval
        pairs = [(a_iv.lo, (1 << w) - 1), (a_iv.hi, (1 << w) - 1), (-1, 1), (0, 5)] + \
            [(int(rng.integers(a_iv.lo, a_iv.hi + 1)), int(rng.integers(0, 1 << w)))
             for _ in range(200)]
    else:
        pe = ModMulPE(mod, stages=0)
        pairs = [(0, 0), ((1 << w) - 1, (1 << w) - 1), (mod - 1, mod - 1)] + \
            [tuple(int(v) for v in rng.integers(0, 1 << w, 2)) for _ in range(200)]
    sim = Simulator(pe)

    async def bench(ctx):
        for a, b in pairs:
            ctx.set(pe.a, a)
            ctx.set(pe.b, b)
            assert ctx.get(pe.p) == a * b % mod, (a, b)
    sim.add_testbench(bench)
    sim.run()


def test_fold_into_keeps_the_residue():
    iv = Interval(-(1 << 21), (1 << 21) - 1)
    m = Module()
    x = Signal(signed(22))
    y, out = fold_into(m, x, iv, 239, 18, "v")
    assert out.width <= 18 and len(y) <= 18
    sim = Simulator(m)

    async def bench(ctx):
        for value in (iv.lo, iv.hi, 0, -1, 1 << 20, -(1 << 20) + 7, 987654):
            ctx.set(x, value)
            got = ctx.get(y)
            assert got in out and (got - value) % 239 == 0, value
    sim.add_testbench(bench)
    sim.run()


def test_mod_reduce_component():
    red = ModReduce(Interval(-300, 70000), 253)
    sim = Simulator(red)

    async def bench(ctx):
        for x in (-300, -1, 0, 252, 253, 70000, 12345):
            ctx.set(red.x, x)
            assert ctx.get(red.y) == x % 253
    sim.add_testbench(bench)
    sim.run()
