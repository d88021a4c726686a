"""Stream helpers for Amaranth's async testbenches (the fast unit-test simulator).

The cocotb counterparts for emitted Verilog live in :mod:`winogen.sim.streams`.
Both follow the rules of :mod:`amaranth.lib.stream`: a beat transfers on a
clock edge where ``valid`` and ``ready`` are both high; a source never withdraws
``valid`` or changes ``payload`` before the transfer.
"""

import random

__all__ = ["stream_put", "stream_get", "drive_stream", "collect_stream"]


async def stream_put(ctx, stream, payload):
    """Send one beat on ``stream`` and return after it transferred."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Receive one beat from ``stream`` and return its payload."""
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def drive_stream(ctx, stream, payloads, *, stall_prob=0.0, seed=0):
    """Send ``payloads`` in order, idling ``valid`` at random between beats."""
    rng = random.Random(seed)
    for payload in payloads:
        while rng.random() < stall_prob:
            await ctx.tick()
        await stream_put(ctx, stream, payload)


async def collect_stream(ctx, stream, count, *, stall_prob=0.0, seed=1, record_cycles=None):
    """Receive ``count`` beats, dropping ``ready`` at random; return the payloads.

    If ``record_cycles`` is a list, the cycle number of each transfer is
    appended to it (cycle 0 is the first tick awaited here).
    """
    rng = random.Random(seed)
    received = []
    cycle = 0
    while len(received) < count:
        ready = rng.random() >= stall_prob
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if ready and valid:
            received.append(payload)
            if record_cycles is not None:
                record_cycles.append(cycle)
        cycle += 1
    ctx.set(stream.ready, 0)
    return received
