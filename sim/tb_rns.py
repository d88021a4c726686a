"""cocotb testbench for emitted RNS tile engines (:class:`~winogen.hw.rns.RNSTile`).

Driven by the manifest alone (``WINOGEN_MANIFEST``): the configuration is
rebuilt with :meth:`RNSTileConfig.from_json`, and every output tile is compared
with the integer direct correlation (:func:`winogen.gen.models.direct_conv2d`),
which the RNS golden model (:class:`~winogen.gen.rns.RNSTileModel`) must also
reproduce. With a redundant modulus every fault-free tile must leave ``error`` low.

Tests
-----
``extremes_and_random_with_stalls``, ``throughput_and_latency``
    Run on every build.
``weights_at_random_points``
    Multi-channel builds: weight beats offered at random points of the tile stream
    (inside channel groups too) with random stalls on every stream; checks the
    ordering rule (a weight beat is accepted only between channel groups, no deadlock)
    and every output against the golden model under the filter of its group.
``fault_injection``
    Needs a build with ``--public-flat-rw``: flips one bit of one residue
    channel's register (PE output, input- or output-transform result,
    accumulator) per tile while tiles stream at full rate, predicts from the
    residue model whether the flip changes that channel's output residues, and
    requires ``error`` exactly on the changed tiles; an unflagged tile must be
    exact. ``WINOGEN_FAULTS`` sets the number of faults (default 1000), and a
    fault-free stretch of ``WINOGEN_CLEAN`` tiles (default 300) precedes them.

Environment
-----------
WINOGEN_MANIFEST, WINOGEN_TILES (random output tiles per filter, default 40),
WINOGEN_STALL (default 0.3), WINOGEN_FAULTS, WINOGEN_CLEAN, WINOGEN_FAULT_SEED.
"""

import json
import os
import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer

from ..gen.models import direct_conv2d
from ..gen.manifest import to_config
from ..gen.rns import RNSTileModel, residue_width
from .packing import pack_signed, pack_unsigned, unpack_signed
from .streams import StreamSink, StreamSource
from .testbench import engine_manifest as _manifest

__all__ = ["load_rns_config", "RNSHarness"]


#: Kept for existing imports: :func:`winogen.gen.manifest.to_config` rebuilds every kind.
load_rns_config = to_config


class RNSHarness:
    """Clock, reset, packing, vectors and references for one RNS tile engine."""

    def __init__(self, dut, manifest, *, seed=0):
        self.dut = dut
        self.manifest = manifest
        self.cfg = to_config(manifest)
        self.model = RNSTileModel(self.cfg)
        self.rng = np.random.default_rng(seed)
        self.has_error = bool(self.cfg.redundant_moduli)

    async def start(self):
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        await self.reset()

    async def reset(self, cycles=2):
        dut = self.dut
        dut.rst.value = 1
        dut.tiles__valid.value = 0
        dut.weights__valid.value = 0
        dut.outputs__ready.value = 0
        await ClockCycles(dut.clk, cycles)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    # -- packing -----------------------------------------------------------------------------

    def pack_tile(self, d):
        return pack_signed([int(v) for v in np.asarray(d).flat], self.cfg.data_width)

    def pack_weights(self, g):
        return pack_unsigned(self.model.weight_beat(g), self.cfg.weight_payload[1])

    def unpack_output(self, value):
        cfg = self.cfg
        return np.array(unpack_signed(value, cfg.output_width, cfg.m ** 2),
                        dtype=np.int64).reshape(cfg.m, cfg.m)

    # -- vectors and references ------------------------------------------------------------

    def random_tiles(self, count):
        cfg, iv = self.cfg, self.cfg.data_interval
        return self.rng.integers(iv.lo, iv.hi + 1, (count, cfg.channels, cfg.n, cfg.n))

    def random_filter(self):
        cfg, iv = self.cfg, self.cfg.weight_interval
        return self.rng.integers(iv.lo, iv.hi + 1, (cfg.channels, cfg.r, cfg.r))

    def extreme_tiles(self):
        cfg = self.cfg
        lo, hi = cfg.data_interval.lo, cfg.data_interval.hi
        checker = np.indices((cfg.n, cfg.n)).sum(axis=0) % 2
        planes = [np.full((cfg.n, cfg.n), lo), np.full((cfg.n, cfg.n), hi),
                  np.where(checker, lo, hi), np.where(checker, hi, lo)]
        return np.array([[p] * cfg.channels for p in planes])

    def extreme_filters(self):
        cfg = self.cfg
        lo, hi = cfg.weight_interval.lo, cfg.weight_interval.hi
        checker = np.indices((cfg.r, cfg.r)).sum(axis=0) % 2
        return [np.array([p] * cfg.channels) for p in
                (np.full((cfg.r, cfg.r), lo), np.full((cfg.r, cfg.r), hi),
                 np.where(checker, lo, hi))]

    def expected(self, d, g):
        """Direct integer correlation of tiles ``d`` (T, C, n, n) with ``g`` (C, r, r).

        Also checks that the RNS golden model agrees with it.
        """
        ref = np.array([direct_conv2d(t.astype(np.int64), g[None].astype(np.int64))[0]
                        for t in d], dtype=np.int64)
        model = np.asarray(self.model(d, g), dtype=np.int64)
        assert (model == ref).all(), "RNS golden model differs from the direct correlation"
        return ref


class _ErrorMonitor:
    """Records ``error`` (or 0 without one) at every transfer on ``outputs``."""

    def __init__(self, dut, has_error):
        self.dut, self.has_error = dut, has_error
        self.flags = []
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        dut = self.dut
        while True:
            await ReadOnly()
            if dut.outputs__valid.value and dut.outputs__ready.value:
                self.flags.append(int(dut.error.value) if self.has_error else 0)
            await RisingEdge(dut.clk)

    def stop(self):
        self._task.cancel()


async def _run_batches(h, batches, stall):
    dut = h.dut
    weights = StreamSource(dut, "weights", dut.clk, stall_prob=stall)
    tiles = StreamSource(dut, "tiles", dut.clk, stall_prob=stall)
    sink = StreamSink(dut, "outputs", dut.clk, stall_prob=stall)
    errors = _ErrorMonitor(dut, h.has_error)
    sink.start()
    expected = []
    for g, d in batches:
        await weights.send([h.pack_weights(g)])
        await tiles.send([h.pack_tile(t) for tile in d for t in tile])
        expected.append(h.expected(d, g))
    expected = np.concatenate(expected)
    await sink.wait_for(len(expected), timeout_cycles=200 + 20 * len(expected) * h.cfg.channels)
    await ClockCycles(dut.clk, h.cfg.latency + 4)
    sink.stop()
    errors.stop()
    got = np.array([h.unpack_output(v) for v in sink.received])
    return expected, got, errors.flags


@cocotb.test()
async def extremes_and_random_with_stalls(dut):
    """Extreme and random tiles and filters, random stalls on all streams, no error flag."""
    h = RNSHarness(dut, _manifest(), seed=1)
    await h.start()
    stall = float(os.environ.get("WINOGEN_STALL", "0.3"))
    count = int(os.environ.get("WINOGEN_TILES", "40"))
    batches = [(g, h.extreme_tiles()) for g in h.extreme_filters()]
    batches.append((h.random_filter(), np.concatenate([h.extreme_tiles(), h.random_tiles(count)])))
    batches.append((h.random_filter(), h.random_tiles(count // 2)))
    expected, got, flags = await _run_batches(h, batches, stall)
    assert got.shape == expected.shape, f"received {got.shape[0]} tiles, expected {expected.shape[0]}"
    bad = np.argwhere(np.any(got != expected, axis=(1, 2)))
    assert bad.size == 0, (f"{bad.size} tiles differ; first at {bad[0][0]}: got "
                           f"{got[bad[0][0]].tolist()}, expected {expected[bad[0][0]].tolist()}")
    assert len(flags) == len(expected) and not any(flags), \
        f"error flag raised on {sum(flags)} fault-free tiles"
    dut._log.info("%d output tiles bit-exact, no error flag", len(expected))


@cocotb.test()
async def throughput_and_latency(dut):
    """Ready held high: one tile beat per clock, one output per C beats, the manifest's latency."""
    manifest = _manifest()
    h = RNSHarness(dut, manifest, seed=2)
    await h.start()
    cfg = h.cfg
    g = h.random_filter()
    d = h.random_tiles(24)
    beats = [h.pack_tile(t) for tile in d for t in tile]
    await StreamSource(dut, "weights", dut.clk).send([h.pack_weights(g)])
    dut.outputs__ready.value = 1
    accepts, outs, values = [], [], []
    cycle = index = 0
    while len(values) < len(d) and cycle < 10 * len(beats) + 100:
        dut.tiles__valid.value = int(index < len(beats))
        if index < len(beats):
            dut.tiles__payload.value = beats[index]
        await ReadOnly()
        if dut.tiles__valid.value and dut.tiles__ready.value:
            accepts.append(cycle)
            index += 1
        if dut.outputs__valid.value:
            outs.append(cycle)
            values.append(dut.outputs__payload.value.to_unsigned())
            assert not (h.has_error and int(dut.error.value)), "error flag on a fault-free tile"
        await RisingEdge(dut.clk)
        cycle += 1
    dut.tiles__valid.value = 0
    assert len(values) == len(d)
    got = np.array([h.unpack_output(v) for v in values])
    assert (got == h.expected(d, g)).all()
    assert np.all(np.diff(accepts) == 1), f"tile beats accepted at cycles {accepts}"
    assert np.all(np.diff(outs) == cfg.channels), f"outputs at cycles {outs}"
    measured = outs[0] - accepts[cfg.channels - 1]
    assert measured == manifest["latency"], (f"measured latency {measured}, manifest says "
                                             f"{manifest['latency']}")
    dut._log.info("II %d beat(s) per output tile, latency %d", cfg.channels, measured)


class _TransferMonitor:
    """Records, in order, every transfer on ``weights`` (``"w"``) and ``tiles`` (``"t"``)."""

    def __init__(self, dut):
        self.dut = dut
        self.events = []
        self.tiles = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        dut = self.dut
        while True:
            await ReadOnly()
            weight = bool(dut.weights__valid.value and dut.weights__ready.value)
            tile = bool(dut.tiles__valid.value and dut.tiles__ready.value)
            # The order of a weight and a tile accepted at one edge would be ambiguous.
            assert not (weight and tile), "a weight beat and a tile accepted at the same edge"
            if weight:
                self.events.append("w")
            if tile:
                self.events.append("t")
                self.tiles += 1
            await RisingEdge(dut.clk)

    def stop(self):
        self._task.cancel()


async def _offer_weights_at(h, source, monitor, filters, points):
    """Offer ``filters[i]`` once ``points[i]`` tile beats have been accepted."""
    for g, point in zip(filters, points):
        while monitor.tiles < point:
            await RisingEdge(h.dut.clk)
        await source.send([h.pack_weights(g)])


@cocotb.test()
async def weights_at_random_points(dut):
    """Weight beats offered at random tile counts, mid-group included, random stalls everywhere.

    The ordering rule for ``channels > 1``: a weight beat is accepted only between channel
    groups and applies to every group that starts after it. The run must finish (no
    deadlock), no weight may be accepted inside a group, and every output tile must equal
    the golden model under the filter in force when its group started (zeros after reset).
    """
    h = RNSHarness(dut, _manifest(), seed=3)
    cfg = h.cfg
    C = cfg.channels
    await h.start()
    stall = float(os.environ.get("WINOGEN_STALL", "0.3"))
    groups = int(os.environ.get("WINOGEN_TILES", "40"))
    d = np.concatenate([h.extreme_tiles(), h.random_tiles(groups)])
    beats = [h.pack_tile(t) for tile in d for t in tile]
    rnd = random.Random(int(os.environ.get("WINOGEN_SEED", "3")))
    count = max(4, len(d) // 4)
    # Half the points inside a group (not a multiple of C), the other half anywhere.
    points = sorted([rnd.randrange(len(beats)) for _ in range(count // 2)]
                    + [rnd.randrange(len(d)) * C + rnd.randrange(1, C) for _ in range(count // 2)])
    assert any(p % C for p in points), "no weight beat offered mid-group"
    filters = [h.random_filter() for _ in points]
    monitor = _TransferMonitor(dut)
    weights = StreamSource(dut, "weights", dut.clk, stall_prob=stall,
                           rng=random.Random(rnd.random()))
    tiles = StreamSource(dut, "tiles", dut.clk, stall_prob=stall, rng=random.Random(rnd.random()))
    sink = StreamSink(dut, "outputs", dut.clk, stall_prob=stall, rng=random.Random(rnd.random()))
    errors = _ErrorMonitor(dut, h.has_error)
    sink.start()
    weight_task = cocotb.start_soon(_offer_weights_at(h, weights, monitor, filters, points))
    tiles.start(beats)
    await sink.wait_for(len(d), timeout_cycles=400 + 40 * len(beats))
    await weight_task
    await ClockCycles(dut.clk, cfg.latency + 4)
    for task in (sink, errors, monitor):
        task.stop()

    # Replay the accepted order: the filter of each group is the last weight before it.
    current = np.zeros((C, cfg.r, cfg.r), dtype=np.int64)
    accepted_filters = iter(filters)
    group_filters, accepted = [], 0
    for event in monitor.events:
        if event == "w":
            assert accepted % C == 0, (f"weight beat accepted inside a channel group (after "
                                       f"{accepted} tile beats, C = {C})")
            current = next(accepted_filters)
        else:
            if accepted % C == 0:
                group_filters.append(current)
            accepted += 1
    assert accepted == len(beats) and len(group_filters) == len(d)
    expected = np.concatenate([h.expected(d[i:i + 1], g) for i, g in enumerate(group_filters)])
    got = np.array([h.unpack_output(v) for v in sink.received[:len(d)]])
    assert len(sink.received) == len(d), f"received {len(sink.received)} of {len(d)} tiles"
    bad = np.argwhere(np.any(got != expected, axis=(1, 2)))
    assert bad.size == 0, (f"{bad.size} tiles differ; first at {bad[0][0]}: got "
                           f"{got[bad[0][0]].tolist()}, expected {expected[bad[0][0]].tolist()}")
    assert len(errors.flags) == len(d) and not any(errors.flags), "error flag on a fault-free tile"
    mid = sum(1 for p in points if p % C)
    dut._log.info("%d output tiles bit-exact; %d weight beats, %d offered mid-group",
                  len(d), len(points), mid)


# --------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------

def _fault_sites(dut, cfg):
    """Single-channel registers to corrupt: ``(handle, channel, kind, element, depth)``.

    ``depth`` is the register's position along the pipeline: after the edge
    that accepted tile ``t``, plus ``depth - 1`` edges, it holds tile ``t``'s value.
    """
    dp = dut.datapath
    n2, mm = cfg.n ** 2, cfg.m ** 2
    sites = []
    ins, pes, outs = cfg.input_stages, cfg.pe_stages, cfg.output_stages
    for i in range(len(cfg.moduli)):
        if pes >= 1:
            for j in range(n2):
                pe = getattr(dp, f"ch{i}_pe{j}")
                sites.append((getattr(pe, f"term_d{pes - (pes >= 2) - (pes >= 3)}"),
                              i, "P", j, ins + pes))
        if cfg.input_transform == "residue" and ins >= 1:
            it = getattr(dp, f"ch{i}_input")
            for j in range(n2):
                sites.append((getattr(it, f"y{j // cfg.n}_{j % cfg.n}_d1"), i, "V", j, ins))
        elif pes >= 2:                         # the PE's operand register holds V mod m_i
            for j in range(n2):
                pe = getattr(dp, f"ch{i}_pe{j}")
                sites.append((pe.a_d1, i, "V", j, ins + 1))
        if outs >= 1:
            ot = getattr(dp, f"ch{i}_output")
            depth = ins + pes + int(cfg.channels > 1) + outs
            for j in range(mm):
                sites.append((getattr(ot, f"y{j // cfg.m}_{j % cfg.m}_d1"), i, "Y", j, depth))
    return sites


def _effective(h, g, site_kind, channel, element, delta):
    """Whether adding ``delta`` to one residue changes the channel's output residues."""
    cfg, model = h.cfg, h.model
    mi = cfg.moduli[channel]
    n, mo = cfg.n, cfg.m
    if site_kind == "Y":
        return delta % mi != 0
    dP = np.zeros((n, n), dtype=object)
    if site_kind == "P":
        dP.flat[element] = delta
    else:                                      # V: the PE multiplies by U
        U = model.filter_residues(g[None] if g.ndim == 2 else g)[channel]
        dP.flat[element] = delta * int(np.asarray(U).reshape(-1, n * n)[0][element])
    AT = model.AT[channel]
    dY = AT.dot(dP).dot(AT.T) % mi
    assert dY.shape == (mo, mo)
    return bool(np.any(dY != 0))


@cocotb.test(skip=False)
async def fault_injection(dut):
    """One bit flip per tile in one residue channel: flagged exactly when effective, never silent."""
    manifest = _manifest()
    h = RNSHarness(dut, manifest, seed=int(os.environ.get("WINOGEN_FAULT_SEED", "5")))
    cfg = h.cfg
    assert cfg.redundant_moduli and cfg.channels == 1, "fault test needs redundant_moduli=1, C=1"
    faults = int(os.environ.get("WINOGEN_FAULTS", "1000"))
    clean = int(os.environ.get("WINOGEN_CLEAN", "300"))
    await h.start()
    sites = _fault_sites(dut, cfg)
    rnd = random.Random(int(os.environ.get("WINOGEN_FAULT_SEED", "5")))
    # Every fourth fault lands in an output-transform register (every flip there is
    # effective); the rest anywhere, channels (the redundant one included) uniformly.
    by_kind = {}
    for s in sites:
        by_kind.setdefault(s[2], []).append(s)
    g = h.random_filter()
    total = clean + faults
    d = h.random_tiles(total)
    d[:4] = h.extreme_tiles()
    expected = h.expected(d, g)
    plan = {}                                  # injection cycle -> [(tile, site)]
    for t in range(clean, total):
        site = rnd.choice(by_kind["Y"]) if t % 4 == 0 and "Y" in by_kind else rnd.choice(sites)
        plan.setdefault(t + site[4] - 1, []).append((t, site))
    await StreamSource(dut, "weights", dut.clk).send([h.pack_weights(g)])
    beats = [h.pack_tile(tile[0]) for tile in d]
    dut.outputs__ready.value = 1
    injected = {}                              # tile -> (channel, kind, delta, effective)
    values, flags = [], []
    cycle = 0
    while len(values) < total and cycle < total + 10 * cfg.latency + 50:
        dut.tiles__valid.value = int(cycle < total)
        if cycle < total:
            dut.tiles__payload.value = beats[cycle]
        await ReadOnly()
        assert cycle >= total or dut.tiles__ready.value, "tile refused at full rate"
        if dut.outputs__valid.value:
            values.append(dut.outputs__payload.value.to_unsigned())
            flags.append(int(dut.error.value))
        await RisingEdge(dut.clk)
        for t, (handle, channel, kind, element, depth) in plan.get(cycle, []):
            await Timer(1, unit="ns")          # registers have settled after the edge
            old = int(handle.value)
            width = residue_width(cfg.moduli[channel])
            new = old ^ (1 << rnd.randrange(width))
            handle.value = new
            injected[t] = (channel, kind, new - old,
                           _effective(h, g, kind, channel, element, new - old))
        cycle += 1
    dut.tiles__valid.value = 0
    assert len(values) == total, f"received {len(values)} of {total} tiles"
    got = np.array([h.unpack_output(v) for v in values])
    wrong = np.any(got != expected, axis=(1, 2))
    assert not any(flags[:clean]) and not wrong[:clean].any(), "fault-free stretch failed"
    assert len(injected) == faults, f"injected {len(injected)} of {faults} faults"
    effective = [t for t, f in injected.items() if f[3]]
    missed = [t for t in effective if not flags[t]]
    false = [t for t, f in injected.items() if not f[3] and flags[t]]
    silent = [t for t in range(total) if wrong[t] and not flags[t]]
    kinds = {}
    for t, (channel, kind, _, eff) in injected.items():
        key = f"{kind}/ch{channel}"
        kinds.setdefault(key, [0, 0])
        kinds[key][0] += 1
        kinds[key][1] += eff
    summary = {"faults": faults, "effective": len(effective), "flagged": sum(flags[clean:]),
               "missed": len(missed), "flag_without_effect": len(false),
               "wrong_and_unflagged": len(silent), "wrong_outputs": int(wrong.sum()),
               "clean_tiles": clean, "clean_false_alarms": int(sum(flags[:clean])),
               "by_site": kinds}
    dut._log.info("fault summary %s", json.dumps(summary))
    report = os.environ.get("WINOGEN_FAULT_REPORT")
    if report:
        with open(report, "w") as f:
            json.dump(summary, f, indent=2)
    assert not silent, f"{len(silent)} wrong output tiles without the error flag: {silent[:5]}"
    assert not missed, f"{len(missed)} effective faults not flagged, e.g. tiles {missed[:5]}"
    assert not false, f"{len(false)} faults without effect flagged, e.g. tiles {false[:5]}"
