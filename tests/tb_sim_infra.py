"""Device, golden model and cocotb testbench for the simulation-infrastructure tests.

The device is a 3-stage pipelined elementwise transform of an array of signed integers,
``y[j] = (x[j] * MUL + j - OFFSET) >> 1``, between two :mod:`amaranth.lib.stream` ports. All
stages share one enable (a global stall): the pipeline advances when its last stage is empty
or being read, so it sustains one transfer per cycle and never drops or duplicates.

This module is imported twice: by pytest (for the device and the model) and by cocotb inside
the simulator (for the tests); parameters reach the latter through ``TB_*`` variables.
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from winogen.gen.bounds import signed_width
from winogen.sim.packing import pack_signed, unpack_signed
from winogen.sim.streams import (StreamProtocolError, StreamSink, StreamSource, stream_get,
                                 stream_put)

MUL = -3
OFFSET = 2
LATENCY = 3


def out_width(width, count):
    """Width of an output element: the exact range of the transform over the input range."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    products = (lo * MUL, hi * MUL)
    return signed_width((min(products) - OFFSET) >> 1, (max(products) + count - 1 - OFFSET) >> 1)


def model(xs):
    """Golden model of one payload: a list of ``count`` signed integers."""
    return [(x * MUL + j - OFFSET) >> 1 for j, x in enumerate(xs)]


class ElementwisePipe(wiring.Component):
    """The device under test.

    Parameters
    ----------
    width : :class:`int`
        Width of an input element.
    count : :class:`int`
        Elements per payload.
    """
    def __init__(self, width=8, count=4):
        self.width = width
        self.count = count
        self.out_width = out_width(width, count)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(width), count))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(self.out_width), count))),
        })

    def elaborate(self, platform):
        m = Module()
        w, n = self.width, self.count
        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        m.d.comb += self.i.ready.eq(en)

        v1, v2, v3 = Signal(), Signal(), Signal()
        p1 = Signal(data.ArrayLayout(signed(w + 2), n))
        q2 = Signal(data.ArrayLayout(signed(w + 3), n))
        y3 = Signal(data.ArrayLayout(signed(self.out_width), n))
        with m.If(en):
            m.d.sync += [v1.eq(self.i.valid), v2.eq(v1), v3.eq(v2)]
            for j in range(n):
                m.d.sync += [
                    p1[j].eq(self.i.payload[j] * MUL),
                    q2[j].eq(p1[j] + (j - OFFSET)),
                    y3[j].eq(q2[j] >> 1),
                ]
        m.d.comb += [self.o.valid.eq(v3), self.o.payload.eq(y3)]
        return m


class FaultyPipe(wiring.Component):
    """:class:`ElementwisePipe` behind fault injection, to prove the stream checker works.

    Input ``fault``: 0 passes the stream through; 1 withdraws ``o.valid`` every other cycle;
    2 flips the payload's least significant bit every other cycle.
    """
    def __init__(self, width=8, count=4):
        self.inner = ElementwisePipe(width, count)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(width), count))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(self.inner.out_width), count))),
            "fault": In(2),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        wiring.connect(m, wiring.flipped(self.i), inner.i)
        toggle = Signal()
        m.d.sync += toggle.eq(~toggle)
        m.d.comb += [
            inner.o.ready.eq(self.o.ready),
            self.o.valid.eq(inner.o.valid & ~((self.fault == 1) & toggle)),
            self.o.payload.eq(inner.o.payload.as_value() ^ ((self.fault == 2) & toggle)),
        ]
        return m


# --- cocotb side ----------------------------------------------------------------------------

def _params():
    return {
        "width": int(os.environ.get("TB_WIDTH", "8")),
        "count": int(os.environ.get("TB_COUNT", "4")),
        "items": int(os.environ.get("TB_ITEMS", "300")),
        # Deliberately wrong model, to prove that a mismatch fails the run.
        "mutate": os.environ.get("TB_MUTATE", "0") == "1",
    }


def _random_items(rng, width, count, items):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    pick = lambda: rng.choice((lo, hi, 0, -1)) if rng.random() < 0.25 else rng.randint(lo, hi)
    return [[pick() for _ in range(count)] for _ in range(items)]


def _expected(items, ow, mutate=False):
    out = [pack_signed(model(xs), ow) for xs in items]
    if mutate:
        out[len(out) // 2] ^= 1
    return out


async def _start(dut):
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    dut.rst.value = 1
    Clock(dut.clk, 10, unit="ns").start()
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def _check_stream(got, want, what):
    # Names the first difference, which says drop/duplicate/reorder/corruption at a glance.
    for index, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"{what}: payload {index} is {g:#x}, expected {w:#x}"
    assert len(got) == len(want), f"{what}: received {len(got)} payloads, expected {len(want)}"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def random_stalls(dut):
    """Random gaps on the input and back-pressure on the output: output equals model."""
    p = _params()
    ow = len(dut.o__payload) // p["count"]
    rng = random.Random(cocotb.RANDOM_SEED)
    items = _random_items(rng, p["width"], p["count"], p["items"])
    await _start(dut)
    source = StreamSource(dut, "i", dut.clk, stall_prob=0.3)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=0.4)
    sink.start()
    await source.start(pack_signed(xs, p["width"]) for xs in items)
    await sink.wait_for(len(items), timeout_cycles=20 * len(items))
    await ClockCycles(dut.clk, 20)  # nothing more may come out
    _check_stream(sink.received, _expected(items, ow, p["mutate"]), "random_stalls")
    assert source.sent == [pack_signed(xs, p["width"]) for xs in items]
    # Gaps, output back-pressure and its propagation to the input all really happened.
    assert source.gap_cycles > 0 and sink.backpressure_cycles > 0 and source.wait_cycles > 0


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def full_throughput(dut):
    """Without stalls the pipeline takes one payload per cycle and has latency 3."""
    p = _params()
    ow = len(dut.o__payload) // p["count"]
    items = _random_items(random.Random(1), p["width"], p["count"], 64)
    await _start(dut)
    sink = StreamSink(dut, "o", dut.clk)
    sink.start()
    await StreamSource(dut, "i", dut.clk).send(pack_signed(xs, p["width"]) for xs in items)
    await sink.wait_for(len(items), timeout_cycles=LATENCY + 2)
    # Payload k goes in at edge k + 1 and comes out LATENCY edges later, one per cycle.
    assert sink.transfer_cycles == [k + 1 + LATENCY for k in range(len(items))]
    _check_stream(sink.received, _expected(items, ow), "full_throughput")


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def reset_mid_stream(dut):
    """A reset in the middle of a stalled stream leaves nothing behind."""
    p = _params()
    ow = len(dut.o__payload) // p["count"]
    rng = random.Random(cocotb.RANDOM_SEED + 1)
    first = _random_items(rng, p["width"], p["count"], 60)
    second = _random_items(rng, p["width"], p["count"], 60)
    await _start(dut)

    source = StreamSource(dut, "i", dut.clk, stall_prob=0.2)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=0.5)
    sink.start()
    source.start(pack_signed(xs, p["width"]) for xs in first)
    await sink.wait_for(20, timeout_cycles=1000)
    await ClockCycles(dut.clk, rng.randrange(1, 4))
    # Data is in flight (the source is mid-stream, the sink is stalling) when reset hits.
    assert len(source.sent) < len(first)
    source.stop()
    sink.stop()
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await ReadOnly()
    assert dut.o__valid.value == 0, "output still valid after a reset edge"
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    # What came out before the reset was right, and in order.
    before = sink.received
    _check_stream(before, _expected(first, ow)[:len(before)], "before reset")

    for _ in range(5):  # the pipeline is empty: nothing comes out on its own
        await ReadOnly()
        assert dut.o__valid.value == 0, "stale output after reset"
        await RisingEdge(dut.clk)

    source = StreamSource(dut, "i", dut.clk, stall_prob=0.3)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=0.3)
    sink.start()
    await source.start(pack_signed(xs, p["width"]) for xs in second)
    await sink.wait_for(len(second), timeout_cycles=2000)
    await ClockCycles(dut.clk, 10)
    _check_stream(sink.received, _expected(second, ow), "after reset")


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def put_get(dut):
    """One payload at a time with :func:`stream_put` / :func:`stream_get`."""
    p = _params()
    ow = len(dut.o__payload) // p["count"]
    lo, hi = -(1 << (p["width"] - 1)), (1 << (p["width"] - 1)) - 1
    await _start(dut)
    for xs in ([lo] * p["count"], [hi] * p["count"], [lo, hi, 0, -1][:p["count"]]):
        await stream_put(dut, "i", pack_signed(xs, p["width"]))
        got = unpack_signed(await stream_get(dut, "o"), ow, p["count"])
        assert got == model(xs), f"{xs} -> {got}, expected {model(xs)}"
    # Three in (the pipeline holds them while the output stalls), then three out, in order.
    batch = [[k - 1] * p["count"] for k in range(3)]
    for xs in batch:
        await stream_put(dut, "i", pack_signed(xs, p["width"]))
    await ClockCycles(dut.clk, 5)
    for xs in batch:
        assert unpack_signed(await stream_get(dut, "o"), ow, p["count"]) == model(xs)


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def sink_catches_fault(dut):
    """On :class:`FaultyPipe` with ``TB_FAULT`` 1 or 2, the sink must raise the right error."""
    fault = int(os.environ["TB_FAULT"])
    p = _params()
    await _start(dut)
    dut.fault.value = fault
    sink = StreamSink(dut, "o", dut.clk, stall_prob=0.5)
    task = sink.start()
    StreamSource(dut, "i", dut.clk).start(
        pack_signed([k % 7] * p["count"], p["width"]) for k in range(100))
    try:
        await task
    except StreamProtocolError as error:
        expected = {1: "valid withdrawn before transfer", 2: "payload changed"}[fault]
        assert expected in str(error), str(error)
    else:
        assert False, "the sink monitor ended without an error"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def trace(dut):
    """Replay a fixed cycle-by-cycle stimulus and record the ports, to compare with Amaranth.

    ``TB_TRACE_IN`` names a JSON file ``{"items": [...], "offer": [...], "ready": [...]}``;
    the recorded trace goes to the JSON file ``TB_TRACE_OUT``.
    """
    stimulus = json.loads(open(os.environ["TB_TRACE_IN"]).read())
    await _start(dut)
    rows = run_trace_cycles(stimulus)
    trace = []
    while True:
        try:
            inputs = rows.send(trace[-1][2:4] if trace else None)
        except StopIteration:
            break
        dut.i__valid.value, dut.i__payload.value, dut.o__ready.value = inputs
        await ReadOnly()
        trace.append([int(dut.i__valid.value), int(dut.o__ready.value),
                      int(dut.i__ready.value), int(dut.o__valid.value),
                      dut.o__payload.value.to_unsigned() if dut.o__valid.value else None])
        await RisingEdge(dut.clk)
    with open(os.environ["TB_TRACE_OUT"], "w") as f:
        json.dump(trace, f)


def run_trace_cycles(stimulus):
    """The stimulus of :func:`trace` as a generator, shared by both simulators.

    Yields ``(i_valid, i_payload, o_ready)`` for each cycle and is sent back the sampled
    ``[i_ready, o_valid]`` of the previous cycle; an offered payload is held until accepted.
    """
    items, offer, ready = stimulus["items"], stimulus["offer"], stimulus["ready"]
    index, holding, feedback = 0, False, None
    i_valid = 0
    for cycle in range(len(offer)):
        if feedback is not None and i_valid and feedback[0]:
            index, holding = index + 1, False
        if not holding and index < len(items) and offer[cycle]:
            holding = True
        i_valid = int(holding)
        payload = items[index] if holding else 0
        feedback = yield (i_valid, payload, int(ready[cycle]))
