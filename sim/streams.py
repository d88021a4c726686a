"""cocotb 2 drivers and monitors for :mod:`amaranth.lib.stream` ports in emitted Verilog.

A stream member ``name`` of a component appears on the Verilog module as ``name__valid``,
``name__ready`` and ``name__payload``. A transfer happens at a rising clock edge where both
``valid`` and ``ready`` are high. The stream rules this module keeps (as a driver) and checks
(as a monitor): once ``valid`` is asserted it stays asserted, with the payload unchanged, until
the transfer; ``ready`` may come and go freely.

Timing convention: the coroutines here write their inputs right after a rising edge and sample
the handshake in the :class:`~cocotb.triggers.ReadOnly` phase before the next edge, when every
combinational path (including ``ready`` depending on ``valid``) has settled. Call them from the
write phase (e.g. after ``await RisingEdge(clk)``); they return in the write phase.
"""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from .packing import pack_signed, unpack_signed

__all__ = ["pack_signed", "unpack_signed", "stream_handles", "stream_put", "stream_get",
           "StreamSource", "StreamSink", "StreamProtocolError"]


class StreamProtocolError(AssertionError):
    """The device broke a stream rule (``valid`` withdrawn or payload changed while stalled)."""


def stream_handles(dut, name):
    """The ``(valid, ready, payload)`` handles of stream ``name`` on ``dut``.

    Raises
    ------
    AttributeError
        If the top level lacks one of the three signals (the message lists the expected names).
    """
    handles = []
    for part in ("valid", "ready", "payload"):
        signal = f"{name}__{part}"
        try:
            handles.append(getattr(dut, signal))
        except AttributeError:
            raise AttributeError(f"Stream {name!r}: the top level has no signal {signal!r}; "
                                 f"expected {name}__valid, {name}__ready and {name}__payload"
                                 ) from None
    return tuple(handles)


def _check_prob(stall_prob):
    if not isinstance(stall_prob, (int, float)) or not 0.0 <= stall_prob < 1.0:
        raise ValueError(f"stall_prob must be a number in [0, 1), not {stall_prob!r}")
    return float(stall_prob)


def _default_rng(name, role):
    # Reproducible under cocotb's seed, and different for each stream and side.
    return random.Random(f"{getattr(cocotb, 'RANDOM_SEED', 0)}/{name}/{role}")


async def stream_put(dut, name, payload, *, clk=None):
    """Send one payload on input stream ``name``, waiting for the device to accept it.

    Parameters
    ----------
    dut : cocotb handle
        The top level.
    name : :class:`str`
        Stream name (``i`` for ``i__valid``/``i__ready``/``i__payload``).
    payload : :class:`int`
        Packed payload (see :func:`pack_signed`).
    clk : cocotb handle, optional
        Clock; ``dut.clk`` by default.
    """
    clk = dut.clk if clk is None else clk
    valid, ready, data = stream_handles(dut, name)
    data.value = payload
    valid.value = 1
    while True:
        await ReadOnly()
        fire = bool(ready.value)
        await RisingEdge(clk)
        if fire:
            break
    valid.value = 0


async def stream_get(dut, name, *, clk=None):
    """Receive one payload from output stream ``name``.

    Parameters
    ----------
    dut : cocotb handle
        The top level.
    name : :class:`str`
        Stream name.
    clk : cocotb handle, optional
        Clock; ``dut.clk`` by default.

    Returns
    -------
    :class:`int`
        The packed payload (see :func:`unpack_signed`).
    """
    clk = dut.clk if clk is None else clk
    valid, ready, data = stream_handles(dut, name)
    ready.value = 1
    while True:
        await ReadOnly()
        fire = bool(valid.value)
        value = data.value.to_unsigned() if fire else None
        await RisingEdge(clk)
        if fire:
            break
    ready.value = 0
    return value


class _StreamEnd:
    """What a source and a sink share: the port handles, the stall pattern, a background task."""
    role = None

    def __init__(self, dut, name, clk, stall_prob, rng):
        self.name = name
        self.clk = clk
        self.valid, self.ready, self.payload = stream_handles(dut, name)
        self.stall_prob = _check_prob(stall_prob)
        self.rng = _default_rng(name, self.role) if rng is None else rng
        self._task = None

    def _cancel(self):
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None


class StreamSource(_StreamEnd):
    """Drives an input stream of the device, with random gaps between payloads.

    Parameters
    ----------
    dut : cocotb handle
        The top level.
    name : :class:`str`
        Stream name.
    clk : cocotb handle
        Clock.
    stall_prob : :class:`float`
        Probability, each cycle before a payload is offered, of waiting one more cycle with
        ``valid`` low. Once offered, a payload stays on the port until accepted.
    rng : :class:`random.Random`, optional
        Source of the stall pattern; by default seeded from cocotb's seed and ``name``.
    garbage : :class:`bool`
        Drive random payloads while ``valid`` is low, so that a device sampling the payload
        without ``valid`` is caught.

    Attributes
    ----------
    sent : :class:`list` of :class:`int`
        Payloads accepted by the device, in order.
    gap_cycles : :class:`int`
        Cycles spent with ``valid`` low by choice (random gaps).
    wait_cycles : :class:`int`
        Cycles spent offering a payload the device did not accept (back-pressure seen).
    """
    role = "source"

    def __init__(self, dut, name, clk, *, stall_prob=0.0, rng=None, garbage=True):
        super().__init__(dut, name, clk, stall_prob, rng)
        self.garbage = bool(garbage)
        self.width = len(self.payload)
        self.sent = []
        self.gap_cycles = 0
        self.wait_cycles = 0
        self.idle()

    def idle(self):
        """Withdraw ``valid`` (only legal between transfers, or around a reset)."""
        self.valid.value = 0
        if self.garbage:
            self.payload.value = self.rng.getrandbits(self.width)

    async def send(self, values):
        """Send each of ``values`` (packed payload integers), returning after the last transfer."""
        for value in values:
            while self.stall_prob and self.rng.random() < self.stall_prob:
                self.idle()
                await RisingEdge(self.clk)
                self.gap_cycles += 1
            self.payload.value = value
            self.valid.value = 1
            while True:
                await ReadOnly()
                fire = bool(self.ready.value)
                await RisingEdge(self.clk)
                if fire:
                    break
                self.wait_cycles += 1
            self.sent.append(value)
            self.idle()

    def start(self, values):
        """Start :meth:`send` in the background.

        Returns
        -------
        :class:`cocotb.task.Task`
            Await it to wait for the last transfer.
        """
        self._task = cocotb.start_soon(self.send(list(values)))
        return self._task

    def stop(self):
        """Cancel a background :meth:`send` and withdraw ``valid``, e.g. before a reset."""
        self._cancel()
        self.idle()


class StreamSink(_StreamEnd):
    """Receives an output stream of the device with random back-pressure, checking the rules.

    Parameters
    ----------
    dut : cocotb handle
        The top level.
    name : :class:`str`
        Stream name.
    clk : cocotb handle
        Clock.
    stall_prob : :class:`float`
        Probability of holding ``ready`` low in any cycle.
    rng : :class:`random.Random`, optional
        Source of the stall pattern; by default seeded from cocotb's seed and ``name``.

    Attributes
    ----------
    received : :class:`list` of :class:`int`
        Payloads transferred, in order.
    cycles : :class:`int`
        Clock edges monitored.
    transfer_cycles : :class:`list` of :class:`int`
        For each received payload, the number of the edge it was transferred at (the first
        edge after :meth:`start` is 1).
    backpressure_cycles : :class:`int`
        Edges at which the device offered a payload and the sink refused it.

    Raises
    ------
    StreamProtocolError
        From the background task (failing the test) when ``valid`` is withdrawn or the payload
        changes before a transfer.
    """
    role = "sink"

    def __init__(self, dut, name, clk, *, stall_prob=0.0, rng=None):
        super().__init__(dut, name, clk, stall_prob, rng)
        self.received = []
        self.cycles = 0
        self.transfer_cycles = []
        self.backpressure_cycles = 0
        self.ready.value = 0

    async def _monitor(self):
        pending = None  # payload offered but not taken at the previous edge
        while True:
            self.ready.value = int(self.rng.random() >= self.stall_prob)
            await ReadOnly()
            valid = bool(self.valid.value)
            ready = bool(self.ready.value)
            value = self.payload.value.to_unsigned() if valid else None
            if pending is not None:
                if not valid:
                    raise StreamProtocolError(
                        f"Stream {self.name!r}: valid withdrawn before transfer, "
                        f"cycle {self.cycles}")
                if value != pending:
                    raise StreamProtocolError(
                        f"Stream {self.name!r}: payload changed from {pending:#x} to "
                        f"{value:#x} while stalled, cycle {self.cycles}")
            await RisingEdge(self.clk)
            self.cycles += 1
            if valid and ready:
                self.received.append(value)
                self.transfer_cycles.append(self.cycles)
                pending = None
            else:
                self.backpressure_cycles += valid
                pending = value

    def start(self):
        """Start receiving in the background.

        Returns
        -------
        :class:`cocotb.task.Task`
        """
        self._task = cocotb.start_soon(self._monitor())
        return self._task

    def stop(self):
        """Stop receiving and drop ``ready`` (e.g. before a reset)."""
        self._cancel()
        self.ready.value = 0

    async def wait_for(self, count, *, timeout_cycles):
        """Wait until ``count`` payloads have been received in total.

        Parameters
        ----------
        count : :class:`int`
            Total number of payloads to wait for.
        timeout_cycles : :class:`int`
            Give up after this many clock cycles.

        Raises
        ------
        AssertionError
            If fewer than ``count`` payloads arrived in time (the message says how many did).
        """
        for _ in range(timeout_cycles):
            if len(self.received) >= count:
                return
            await RisingEdge(self.clk)
        if len(self.received) < count:
            raise AssertionError(f"Stream {self.name!r}: received {len(self.received)} of "
                                 f"{count} payloads within {timeout_cycles} cycles")
