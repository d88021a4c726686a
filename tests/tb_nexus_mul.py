"""Device and cocotb testbench for ``test_nexus_dsp.py``: the Nexus multiplier models.

:class:`NexusMulBench` holds two :func:`~winogen.hw.nexus.nexus_mult` blocks of one operand
width, one without registers and one with its input and output registers. The testbench
applies edge and random operand pairs every cycle and checks the combinational product at
once and the registered one two cycles later, against Python's integer product.
"""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from winogen.hw.nexus import nexus_mult


class NexusMulBench(wiring.Component):
    def __init__(self, width):
        self.width = width
        super().__init__({"a": In(signed(width)), "b": In(signed(width)),
                          "p_comb": Out(signed(2 * width)), "p_reg": Out(signed(2 * width))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.p_comb.eq(nexus_mult(m, self.a, self.b, name="comb")),
            self.p_reg.eq(nexus_mult(m, self.a, self.b, registers=("input", "output"),
                                     name="reg")),
        ]
        return m


@cocotb.test()
async def products(dut):
    width = int(os.environ["TB_WIDTH"])
    rnd = random.Random(int(os.environ["TB_SEED"]))
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    edges = [lo, lo + 1, -1, 0, 1, hi]
    pairs = [(a, b) for a in edges for b in edges]
    pairs += [(rnd.randint(lo, hi), rnd.randint(lo, hi)) for _ in range(500)]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    history = []
    for a, b in pairs + [(0, 0)] * 2:
        dut.a.value, dut.b.value = a, b
        history.append(a * b)
        await ReadOnly()
        assert dut.p_comb.value.to_signed() == a * b, (a, b)
        if len(history) > 2:
            assert dut.p_reg.value.to_signed() == history[-3], history[-3]
        await FallingEdge(dut.clk)
