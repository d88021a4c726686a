"""Device and cocotb testbench for ``test_ecp5_ebr.py``: memories of every DP16KD mode.

:class:`EBRBench` holds one :func:`~winogen.hw.ecp5_ebr.ebr_memory` per plan of
:data:`PLANS`, each with its own ports. The testbench writes random words with random
group enables and reads random words every cycle, and compares every read with a
Python model of the memories (:data:`~winogen.hw.ecp5_ebr.EBR_READ_LATENCY` cycles after
the address). Imported by pytest (the device) and by cocotb inside the simulator.
"""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from winogen.gen.ebr import plan_ecp5_ebr
from winogen.hw.ecp5_ebr import EBR_READ_LATENCY, ebr_memory

#: (depth, group widths): one memory per DP16KD mode, plus groups wider than a byte lane
#: and a single wide group (a weight word).
SHAPES = [
    (512, (8, 8)),          # 36-bit mode, two byte lanes
    (512, (12, 12, 5)),     # 36-bit mode, groups spanning lanes and blocks
    (1024, (8, 8, 8)),      # 18-bit mode, two blocks
    (128, (50,)),           # one wide group (36-bit mode, two blocks)
    (2048, (8,)),           # 9-bit mode
    (4096, (5, 3)),         # 4-bit mode, a block per group slice
    (8192, (3,)),           # 2-bit mode
    (16384, (2,)),          # 1-bit mode
]
PLANS = [plan_ecp5_ebr(depth, widths) for depth, widths in SHAPES]


def _abits(plan):
    return (plan.depth - 1).bit_length()


class EBRBench(wiring.Component):
    """Memory ``k``: ports ``wa{k}``, ``wd{k}`` (groups concatenated), ``we{k}`` (one bit per
    group), ``ra{k}``, ``rd{k}``."""

    def __init__(self):
        ports = {}
        for k, plan in enumerate(PLANS):
            ports[f"wa{k}"] = In(_abits(plan))
            ports[f"wd{k}"] = In(sum(plan.group_widths))
            ports[f"we{k}"] = In(len(plan.group_widths))
            ports[f"ra{k}"] = In(_abits(plan))
            ports[f"rd{k}"] = Out(sum(plan.group_widths))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        for k, plan in enumerate(PLANS):
            data, lo = [], 0
            for w in plan.group_widths:
                data.append(getattr(self, f"wd{k}")[lo:lo + w])
                lo += w
            we = getattr(self, f"we{k}")
            groups = ebr_memory(m, plan, write_addr=getattr(self, f"wa{k}"), write_data=data,
                                write_en=[we[g] for g in range(len(plan.group_widths))],
                                read_addr=getattr(self, f"ra{k}"), name=f"mem{k}")
            m.d.comb += getattr(self, f"rd{k}").eq(Cat(*groups))
        return m


@cocotb.test()
async def random_writes_and_reads(dut):
    """Every read returns what the model holds; every mode, byte lanes and group enables."""
    rng = random.Random(int(os.environ.get("TB_SEED", "1")))
    cycles = int(os.environ.get("TB_CYCLES", "3000"))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    # a few addresses per memory, spread over every address bit, so reads hit written words
    addresses = [[rng.randrange(p.depth) for _ in range(24)] + [0, p.depth - 1] for p in PLANS]
    models = [{} for _ in PLANS]
    pending = [[] for _ in PLANS]       # (cycle the data is due, expected value)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    checked = 0
    for cycle in range(cycles):
        # the inputs sampled at the coming edge
        writes = []
        for k, plan in enumerate(PLANS):
            ra = rng.choice(addresses[k])
            wa = rng.choice([a for a in addresses[k] if a != ra])   # no read-write collision
            widths = plan.group_widths
            values = [rng.randrange(1 << w) for w in widths]
            if rng.random() < 0.1:
                values = [(1 << w) - 1 for w in widths]             # all ones
            en = [rng.random() < 0.6 for _ in widths]
            word = models[k].get(ra, None)
            pending[k].append((cycle + EBR_READ_LATENCY - 1, ra, word))
            getattr(dut, f"wa{k}").value = wa
            getattr(dut, f"ra{k}").value = ra
            getattr(dut, f"wd{k}").value = sum(v << sum(widths[:g]) for g, v in enumerate(values))
            getattr(dut, f"we{k}").value = sum(int(e) << g for g, e in enumerate(en))
            writes.append((wa, values, en))
        await RisingEdge(dut.clk)
        for k, (wa, values, en) in enumerate(writes):
            old = models[k].get(wa, [None] * len(values))
            models[k][wa] = [v if e else o for v, e, o in zip(values, en, old)]
        await ReadOnly()
        for k, plan in enumerate(PLANS):
            while pending[k] and pending[k][0][0] == cycle:
                _, ra, word = pending[k].pop(0)
                if word is None or None in word:
                    continue                 # never (fully) written: undefined
                widths = plan.group_widths
                got = int(getattr(dut, f"rd{k}").value)
                expect = sum(v << sum(widths[:g]) for g, v in enumerate(word))
                assert got == expect, (f"memory {k} ({plan.depth}x{widths}, mode "
                                       f"{plan.data_width}): address {ra} read {got:#x}, "
                                       f"expected {expect:#x} at cycle {cycle}")
                checked += 1
        await FallingEdge(dut.clk)
    assert checked > cycles * len(PLANS) // 4, checked
    dut._log.info(f"{checked} reads checked")
