"""cocotb testbench: RTL fault campaigns on tile engines (binary and RNS), cross-checked
against the tile fault models.

The registers come from the manifest's ``fault_sites``
(:func:`winogen.hw.layer.faultsites.tile_fault_sites`), not from names written here. The
campaign runs batches: a filter (weight beat), then a run of tiles. A batch carries either
one injection per tile, in the classes that hold a tile's values (each injection reaches
its own output tile only, so the injections are independent and each output tile is
classified on its own), or, for the ``filter_transform`` class of engines that transform
the filter online, a single injection at the weight load, which reaches every tile of the
batch. For an injection the testbench picks, with a seeded RNG, a site class (the class
with the fewest injections so far, ties at random), a register of it and a bit; it flips
that bit at the edge where the register holds that tile's (or that filter's) value: the
manifest's ``delay`` counted from the tile's (the weight beat's) transfer, only edges at
which the datapath advances for tiles, every edge for the filter path. The model's
:class:`~winogen.gen.faultmodel.Fault` of a register holding several elements, or an
element shifted left, is one fault per element, at ``bit + shift``.

After the batch every output tile must equal
:meth:`~winogen.gen.faultmodel.TileFaultModel.forward` given all the batch's faults, and
each injection's tile (every tile, for a filter injection) must equal the model given that
injection's faults alone (the cross-check). Each injection is classified ``detected`` (the
engine's ``error`` output flags its tile: RNS engines with a redundant modulus, whose flags
must equal the model's), ``sdc`` (its tiles differ from the fault-free output, unflagged)
or ``masked``. Random gaps on the input streams and back-pressure on the output stall the
datapath in every other batch (a stalled register keeps its flipped value, as the model
assumes).

RNS tile engines (:class:`~winogen.gen.rns.faultmodel.RNSTileFaultModel`) take ``channels``
tile beats per output tile: a class of step ``each`` is injected at the beat of a random
input channel, a class of step ``last`` at the output tile's last beat; a register of a
residue channel gives the fault's ``modulus``.

Tests
-----
``fault_campaign``
    The campaign.

Environment
-----------
As :mod:`winogen.sim.tb_faults`: ``WINOGEN_MANIFEST``, ``WINOGEN_FAULT_INJECTIONS`` (default
200), ``WINOGEN_FAULT_SEED`` (default 1), ``WINOGEN_FAULT_CLASSES``, ``WINOGEN_FAULT_STALL``
(default 0.1), ``WINOGEN_FAULT_REPORT``, ``WINOGEN_FAULT_CHECK``.
"""

import os
import random
import time
from dataclasses import dataclass, field

import numpy as np

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, ReadWrite, RisingEdge

from ..gen.faultmodel import CLASSIFICATIONS, Fault, TileFaultModel
from .streams import StreamSink, StreamSource
from .testbench import close_fault_campaign, engine_manifest

__all__ = ["plan_tile_faults", "TILES_PER_BATCH", "TILES_PER_FILTER_BATCH"]

#: Tiles of a batch with one injection per tile, and of a batch with a filter injection.
TILES_PER_BATCH = 24
TILES_PER_FILTER_BATCH = 6


@dataclass
class TileInjection:
    """One register flip and the model's faults it stands for."""
    site: str
    register: str
    bit: int                    # bit of the value (the register's bit lsb + bit)
    tile: int                   # the output tile of the batch (0 for a filter injection)
    load: bool                  # at the weight load (every tile of the batch)
    beat: int = 0               # the tile beat it is timed from
    faults: list = field(default_factory=list)
    width: int = 0
    lsb: int = 0
    shifts: list = field(default_factory=list)


def plan_tile_faults(fault_sites, axes, classes, counts, tiles, rnd, *, load=False,
                     channels=1):
    """The injections of one batch of ``tiles`` output tiles: a list of
    :class:`TileInjection`.

    ``axes`` maps each class to the model's axes (:attr:`SiteClass.axes`), which say how a
    register and its values make the fault's index. With ``load``, one injection into
    ``filter_transform``; otherwise one per output tile, into the other classes of
    ``classes``, the class with the fewest injections so far (``counts``, updated) first;
    with ``channels`` beats per output tile, a class of step ``each`` at a random one.
    """
    def make(site, tile):
        spec = fault_sites["classes"][site]
        reg = rnd.choice(spec["registers"])
        bit = rnd.randrange(reg["width"])
        cin = rnd.randrange(channels) if spec["step"] == "each" else channels - 1
        inj = TileInjection(site, reg["name"], bit, tile, load, beat=tile * channels + cin,
                            width=reg["width"], lsb=reg["lsb"])
        for value in reg["values"]:
            keys = {"modulus": reg.get("modulus"), "cin": cin, **value}
            index = tuple(keys[axis] for axis in axes[site][1:])
            inj.faults.append(Fault(site, index, bit + value["shift"], tile))
            inj.shifts.append(value["shift"])
        counts[site] += 1
        return inj

    if load:
        return [make("filter_transform", 0)]
    per_tile = [k for k in classes if k != "filter_transform"]
    plan = []
    for t in range(tiles):
        low = min(counts[k] for k in per_tile)
        plan.append(make(rnd.choice([k for k in per_tile if counts[k] == low]), t))
    return plan


class _TileInjector:
    """Counts tile and weight transfers and advancing edges; flips the planned registers
    at the edges the manifest's delays give (one coroutine, one pass per clock)."""

    def __init__(self, dut, fault_sites):
        self.dut = dut
        self.sites = fault_sites
        self.handles = {}
        self.by_beat = {}           # tile beat of the batch -> [injection]
        self.at_load = []
        self.pending = []           # [countdown, counts every edge, handle, mask, injection]
        self.tiles = 0
        self.loads = 0
        self.flipped = []

    def _handle(self, path):
        handle = self.handles.get(path)
        if handle is None:
            handle = self.dut
            for part in path.split("."):
                handle = getattr(handle, part)
            self.handles[path] = handle
        return handle

    def arm(self, plan):
        """Start a batch: its weight beat and tile 0 are the next transfers."""
        assert not self.pending, "flips of the previous batch never happened"
        self.by_beat, self.at_load, self.flipped = {}, [], []
        self.tiles, self.loads = 0, 0
        for inj in plan:
            (self.at_load if inj.load else self.by_beat.setdefault(inj.beat, [])).append(inj)

    def _schedule(self, injections, every_edge):
        for inj in injections:
            delay = self.sites["classes"][inj.site]["delay"]
            assert delay >= 1, f"{inj.site}: delay {delay}"
            self.pending.append([delay, every_edge, self._handle(inj.register),
                                 1 << (inj.lsb + inj.bit), inj])

    async def run(self):
        dut = self.dut
        while True:
            await ReadOnly()
            tile = int(dut.tiles__valid.value) and int(dut.tiles__ready.value)
            weight = int(dut.weights__valid.value) and int(dut.weights__ready.value)
            advance = not int(dut.outputs__valid.value) or int(dut.outputs__ready.value)
            await RisingEdge(dut.clk)
            if weight:
                self._schedule(self.at_load if self.loads == 0 else [], True)
                self.loads += 1
            if tile:
                self._schedule(self.by_beat.get(self.tiles, ()), False)
                self.tiles += 1
            due = []
            for entry in self.pending:
                if entry[1] or advance:
                    entry[0] -= 1
                if entry[0] == 0:
                    due.append(entry)
            if due:
                self.pending = [e for e in self.pending if e[0] > 0]
                # In the edge's time step, after its register updates and before any
                # monitor samples it (ReadOnly): an output register is flipped before the
                # sink can take its value.
                await ReadWrite()
                for _, _, handle, mask, inj in due:
                    handle.value = int(handle.value) ^ mask
                    self.flipped.append(inj)


class _Engine:
    """What the campaign needs of a binary or an RNS tile engine: configuration, packing,
    the fault model and the error flag."""

    def __init__(self, dut, manifest, seed):
        from ..gen.manifest import to_config
        self.rns = manifest["kind"] == "rns_tile"
        if self.rns:
            from .tb_rns import RNSHarness
            self.h = RNSHarness(dut, manifest, seed=seed)
        else:
            from .tb_tile import TileHarness
            self.h = TileHarness(dut, manifest, seed=seed)
        self.cfg = c = to_config(manifest)
        self.channels = c.channels if self.rns else 1
        self.has_error = self.rns and bool(c.redundant_moduli)

    def model(self, g):
        if self.rns:
            from ..gen.rns.faultmodel import RNSTileFaultModel
            return RNSTileFaultModel(self.cfg, g)
        return TileFaultModel(self.cfg, g)

    def weight_beat(self, g):
        return self.h.pack_weights(g) if self.rns else self.h.weight_beat(g)

    def tile_beats(self, d):
        n = self.cfg.n
        if self.rns:
            return [self.h.pack_tile(t) for t in d.reshape(-1, n, n)]
        return [self.h.pack("tiles", t) for t in d]

    def unpack(self, values):
        if self.rns:
            return np.array([self.h.unpack_output(v) for v in values])
        return self.h.unpack_outputs(values)

    def data(self, rnd, batch, tiles):
        """A filter and ``tiles`` output tiles' inputs: extremes in every fifth batch."""
        c = self.cfg
        data = np.random.default_rng([rnd.getrandbits(32), batch])
        dv, wv = c.data_interval, c.weight_interval
        gs = (self.channels, c.r, c.r) if self.rns else (c.r, c.r)
        ds = (tiles, self.channels, c.n, c.n) if self.rns else (tiles, c.n, c.n)
        if batch % 5 == 4:
            return (np.where(data.random(gs) < 0.5, wv.lo, wv.hi),
                    np.where(data.random(ds) < 0.5, dv.lo, dv.hi))
        return data.integers(wv.lo, wv.hi + 1, gs), data.integers(dv.lo, dv.hi + 1, ds)


@cocotb.test()
async def fault_campaign(dut):
    """Bit flips in the manifest's fault-site registers, one per output tile (or one per
    filter load): every output tile equals the tile fault model's, each injection
    classified masked or sdc."""
    start = time.monotonic()
    manifest = engine_manifest()
    assert manifest.get("kind") in ("tile", "rns_tile") and "fault_sites" in manifest, \
        "the engine's manifest is not a tile engine's with fault_sites"
    sites = manifest["fault_sites"]
    target = int(os.environ.get("WINOGEN_FAULT_INJECTIONS", "200"))
    seed = int(os.environ.get("WINOGEN_FAULT_SEED", "1"))
    stall = float(os.environ.get("WINOGEN_FAULT_STALL", "0.1"))
    wanted = os.environ.get("WINOGEN_FAULT_CLASSES", "")
    engine = _Engine(dut, manifest, seed)
    c, C = engine.cfg, engine.channels
    rnd = random.Random(seed)
    await engine.h.start()
    injector = _TileInjector(dut, sites)
    cocotb.start_soon(injector.run())
    weights = StreamSource(dut, "weights", dut.clk, rng=random.Random(seed * 3 + 1))
    tiles = StreamSource(dut, "tiles", dut.clk, rng=random.Random(seed * 3 + 2))
    sink = StreamSink(dut, "outputs", dut.clk, rng=random.Random(seed * 3 + 3))
    sink.start()
    from .tb_rns import _ErrorMonitor
    errors = _ErrorMonitor(dut, engine.has_error)

    probe = engine.model(np.zeros((C, c.r, c.r) if engine.rns else (c.r, c.r), dtype=np.int64))
    model_sites = probe.site_classes()
    axes = {k: v.axes for k, v in model_sites.items()}
    classes = [k for k in sites["classes"] if k in model_sites]
    if wanted:
        asked = [k.strip() for k in wanted.split(",") if k.strip()]
        unknown = [k for k in asked if k not in classes]
        assert not unknown, f"WINOGEN_FAULT_CLASSES: {unknown} not among {classes}"
        classes = asked
    assert classes, "no site class to inject into"
    per_tile = [k for k in classes if k != "filter_transform"]
    counts = {k: 0 for k in classes}
    summary = {"engine": manifest["top"], "kind": manifest["kind"], "seed": seed,
               "injections": 0, "batches": 0, "tiles": 0, "flipped": 0, "agree": 0,
               "disagree": 0,
               "by_class": {k: {"injections": 0, **{x: 0 for x in CLASSIFICATIONS},
                                "disagree": 0} for k in classes},
               "other_beats_wrong": 0, "flag_mismatches": 0, "problems": []}
    problems = summary["problems"]
    batch = 0
    while summary["injections"] < target:
        # A filter batch whenever filter_transform has fallen behind the others (or is all).
        load = "filter_transform" in classes and (
            not per_tile or counts["filter_transform"] <= min(counts[k] for k in per_tile)
            // TILES_PER_FILTER_BATCH)
        count = TILES_PER_FILTER_BATCH if load else TILES_PER_BATCH
        g, d = engine.data(rnd, batch, count)
        plan = plan_tile_faults(sites, axes, classes, counts, count, rnd, load=load,
                                channels=C)
        plan = plan[:target - summary["injections"]]
        injector.arm(plan)
        quiet = stall if batch % 2 else 0.0
        for end in (weights, tiles, sink):
            end.stall_prob = quiet
        first, flagged = len(sink.received), len(errors.flags)
        await weights.send([engine.weight_beat(g)])
        await tiles.send(engine.tile_beats(d))
        await sink.wait_for(first + count, timeout_cycles=200 + 20 * count * C)
        # A flip the manifest times later than the output (a wrong delay) still happens.
        await ClockCycles(dut.clk, 2)
        assert len(sink.received) == first + count, "an output tile too many"
        assert injector.tiles == count * C, f"{injector.tiles} beats counted, {count * C} sent"
        assert len(injector.flipped) == len(plan), \
            f"{len(injector.flipped)} of {len(plan)} flips happened"
        got = engine.unpack(sink.received[first:]).reshape(count, -1)
        rtl_flags = np.array(errors.flags[flagged:flagged + count], dtype=bool)
        model = engine.model(g)
        clean = model.forward(d).reshape(count, -1)
        every = [f for inj in plan for f in inj.faults]
        flags = {}
        want = model.forward(d, faults=every, flags=flags).reshape(count, -1)
        model_flags = flags.get("error", np.zeros(count, dtype=bool))
        wrong = np.any(got != want, axis=1)
        injected = {t for inj in plan for t in (range(count) if inj.load else [inj.tile])}
        others = [int(t) for t in np.flatnonzero(wrong) if t not in injected]
        summary["other_beats_wrong"] += len(others)
        if others:
            problems.append(f"batch {batch}: tiles {others[:5]} without a fault differ")
        if (rtl_flags != model_flags).any():
            bad = np.flatnonzero(rtl_flags != model_flags)
            summary["flag_mismatches"] += len(bad)
            problems.append(f"batch {batch}: error flags differ from the model's at tiles "
                            f"{bad[:5].tolist()}")
        widths = {k: np.broadcast_to(v.widths, v.shape)
                  for k, v in model.site_classes(count).items()}
        for inj in plan:
            for f, shift in zip(inj.faults, inj.shifts):
                # The manifest's register is the model's value: as wide, less its shift.
                width = int(widths[f.site][(f.image,) + f.index])
                if inj.width + shift != width:
                    problems.append(f"{inj.register}: {inj.width} bits + shift {shift}, the "
                                    f"model's {f.site}{f.index} has {width}")
            alone_flags = {}
            alone = model.forward(d, faults=inj.faults, flags=alone_flags).reshape(count, -1)
            alone_flags = alone_flags.get("error", np.zeros(count, dtype=bool))
            reach = list(range(count)) if inj.load else [inj.tile]
            changed = set(np.flatnonzero(np.any(alone != clean, axis=1)).tolist())
            agree = bool(np.all(got[reach] == alone[reach])) and changed <= set(reach) \
                and bool(np.all(rtl_flags[reach] == alone_flags[reach]))
            summary["agree" if agree else "disagree"] += 1
            summary["by_class"][inj.site]["disagree"] += not agree
            if not agree and len(problems) < 40:
                t = reach[int(np.argmax(np.any(got[reach] != alone[reach], axis=1)))]
                diff = np.flatnonzero(got[t] != alone[t])
                problems.append(
                    f"batch {batch}: {inj.site} {inj.register} bit {inj.bit} tile {inj.tile} "
                    f"faults {inj.faults}: tile {t} elements {diff.tolist()} rtl "
                    f"{got[t][diff].tolist()} model {alone[t][diff].tolist()} clean "
                    f"{clean[t][diff].tolist()}")
            kind = ("detected" if rtl_flags[reach].any() else
                    "sdc" if np.any(got[reach] != clean[reach]) else "masked")
            entry = summary["by_class"][inj.site]
            entry["injections"] += 1
            entry[kind] += 1
        summary["injections"] += len(plan)
        summary["flipped"] += len(injector.flipped)
        summary["tiles"] += count
        summary["batches"] += 1
        batch += 1
    close_fault_campaign(dut, summary, problems, start, "tile fault campaign")
