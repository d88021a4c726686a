"""winogen.hw.util: the shared parameter checks and delay registers."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from winogen.gen.bounds import Interval
from winogen.hw.constmat import ConstMatVec
from winogen.hw.pe import MultiplyPE
from winogen.hw.rns import ModReduce
from winogen.hw.util import check_interval, check_stages, delay

# The blocks built only to check their parameters are never elaborated.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.mark.parametrize("value", [0, 3, np.int64(2), np.uint8(1)])
def test_check_stages_accepts_any_integral(value):
    assert check_stages(value) == int(value) and type(check_stages(value)) is int


@pytest.mark.parametrize("value", [-1, 1.0, True, "2", None])
def test_check_stages_refuses_with_the_value(value):
    with pytest.raises(ValueError, match=f"stages must be a non-negative integer, not {value!r}"):
        check_stages(value)


@pytest.mark.parametrize("make", [lambda s: ConstMatVec([[1, 1]], [Interval(0, 3)] * 2, stages=s),
                                  lambda s: MultiplyPE(Interval(0, 3), Interval(0, 3), stages=s),
                                  lambda s: ModReduce(Interval(0, 300), 251, stages=s)])
def test_every_block_checks_stages_alike(make):
    assert make(np.int32(1)).latency == 1
    with pytest.raises(ValueError, match="stages must be a non-negative integer, not True"):
        make(True)


def test_check_interval():
    iv = Interval(-1, 1)
    assert check_interval("x", iv) is iv
    with pytest.raises(TypeError, match=r"x must be an Interval, not \(0, 1\)"):
        check_interval("x", (0, 1))


@pytest.mark.parametrize("reset_less", [True, False])
def test_delay_registers_value_by_stages_with_the_stated_reset(reset_less):
    m = Module()
    x = Signal(8)
    y = delay(m, x, 3, "x", reset_less=reset_less)
    assert y.name == "x_d3" and y.reset_less is reset_less
    assert delay(m, x, 0, "z", reset_less=True) is x
    seen = []

    async def bench(ctx):
        for value in range(10):
            ctx.set(x, value)
            await ctx.tick()
            seen.append(ctx.get(y))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # After edge k the third register holds the value set before edge k - 2.
    assert seen == [0, 0] + list(range(8))


def test_delay_states_its_reset_choice():
    with pytest.raises(TypeError, match="reset_less must be a bool, not None"):
        delay(Module(), Signal(2), 1, "x", reset_less=None)
