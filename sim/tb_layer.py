"""cocotb testbench for emitted layer engines (Winograd and direct).

Like :mod:`winogen.sim.tb_tile`, the testbench knows nothing but the manifest: the
:class:`~winogen.gen.layer.LayerConfig`, the port packing and the status fields are
rebuilt from it. Many layers run in sequence on one build (the layer shape is a run-time
parameter), each bit-exact against :func:`~winogen.gen.layer.layer_golden`.

Tests
-----
``layers``
    Runs the layers of ``WINOGEN_LAYERS`` in order: random activations and weights (the
    extremes of the ranges for a ``"pattern": "extreme"`` spec), config, weights and
    activations driven with random gaps and the outputs taken with random back-pressure
    (probability ``stall``), output map reassembled and cropped, compared with
    ``layer_golden`` and, for specs with ``"scipy": true``, with a ``scipy.signal.correlate``
    reference. Cycles of each phase go to ``WINOGEN_CYCLES_OUT``.
``sequence``
    The layers of ``WINOGEN_LAYERS`` back to back: config, weight and activation streams
    each carry all of them at once (random gaps and back-pressure of the first spec's
    ``stall``), every layer bit-exact, ``outputs_last`` on each layer's last beat; the
    sequence's cycles go to ``WINOGEN_CYCLES_OUT``.
``error_flags``
    Every out-of-range config representable in the config fields (height and width above
    the maxima or too small, C_in/C_out 0 or above the maxima, bad padding, shift too
    large) sets exactly the bits of :meth:`~winogen.gen.layer.LayerRun.errors`, starts
    nothing, accepts no weights or activations and emits nothing; then a valid layer runs.
``fault_injection``
    RNS engines with a redundant modulus: ``WINOGEN_CLEAN`` fault-free layers, then
    ``WINOGEN_FAULT_LAYERS`` layers with one bit flipped, right after a random compute step
    reaches the core, in one residue channel's register (a channel accumulator or a PE's product register, chosen
    at random, the redundant channel included). Every output beat is compared with the
    golden model: a wrong beat must carry the error flag, and a fault-free layer must be
    exact and unflagged. A summary goes to ``WINOGEN_FAULT_REPORT``.
``driver``
    The mode of :func:`winogen.sim.driver.run_layer`: streams ``x.npy``/``w.npy`` with the
    parameters of ``run.json`` from ``WINOGEN_DRIVER_DIR`` and writes what the hardware
    produced to ``y.npy`` and the cycles to ``cycles.json`` there; asserts nothing about
    the values.

Environment
-----------
WINOGEN_MANIFEST
    Path of the engine's manifest.
WINOGEN_LAYERS
    JSON list of layer specs ``{"height", "width", "cin", "cout", "padding", "shift",
    "stall", "seed"}`` (optional ``"scipy"``, ``"pattern"``).
WINOGEN_CYCLES_OUT
    Optional path: a JSON list with the measured and modelled cycles of each layer.
WINOGEN_DRIVER_DIR
    Folder of the driver mode.
WINOGEN_FAULT_LAYERS, WINOGEN_CLEAN, WINOGEN_FAULT_SEED, WINOGEN_FAULT_REPORT
    The fault-injection mode's layer counts, seed and summary file.
"""

import json
import os
import random
from pathlib import Path

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer

from ..gen.layer import LayerRun, RUN_ERRORS, layer_golden
from ..gen.manifest import to_config
from ..gen.rns import residue_width
from .driver import (activation_beats, assemble_outputs, complete_run, output_beats,
                     weight_beats)
from .packing import pack_signed, pack_unsigned, unpack_signed
from .streams import StreamSink, StreamSource
from .testbench import engine_manifest

__all__ = ["load_config", "LayerHarness", "scipy_reference"]


#: Kept for existing imports: :func:`winogen.gen.manifest.to_config` rebuilds every kind.
load_config = to_config


def scipy_reference(x, w, padding):
    """Independent reference: ``scipy.signal.correlate`` per channel pair, summed."""
    from scipy.signal import correlate
    x = np.pad(np.asarray(x, dtype=np.int64), ((0, 0), (padding, padding), (padding, padding)))
    w = np.asarray(w, dtype=np.int64)
    cout, cin = w.shape[:2]
    out = []
    for co in range(cout):
        acc = sum(correlate(x[ci], w[co, ci], mode="valid", method="direct")
                  for ci in range(cin))
        out.append(acc)
    return np.array(out, dtype=np.int64)


class _Record:
    def __init__(self):
        self.cycle = 0
        self.first = {}              # first cycle of each activity
        self.last = {}               # last cycle of each activity
        self.counts = {}             # cycles of each activity
        self.output_last = []        # outputs_last of every output beat, in order
        self.beat_errors = []        # the error flag of every output beat, in order

    def mark(self, name):
        self.first.setdefault(name, self.cycle)
        self.last[name] = self.cycle
        self.counts[name] = self.counts.get(name, 0) + 1

    def span(self, name):
        return self.last[name] - self.first[name] + 1 if name in self.first else 0


class LayerHarness:
    """Clock, reset, stream drivers, packing and cycle accounting for one engine instance."""

    def __init__(self, dut, manifest):
        self.dut = dut
        self.manifest = manifest
        self.cfg = to_config(manifest)
        self.ports = {p["name"]: p for p in manifest["ports"]}
        self.status_fields = manifest["status_fields"]
        self.clock = Clock(dut.clk, 10, unit="ns")
        # RNS engines with a redundant modulus flag inconsistent output beats.
        self.has_error_port = "error" in self.ports
        # A weight-specialized engine has no weight stream.
        self.input_streams = [name for name in ("config", "weights", "activations")
                              if f"{name}__valid" in self.ports]

    async def start(self):
        cocotb.start_soon(self.clock.start())
        await self.reset()

    async def reset(self, cycles=2):
        dut = self.dut
        dut.rst.value = 1
        for name in self.input_streams:
            getattr(dut, f"{name}__valid").value = 0
        dut.outputs__ready.value = 0
        await ClockCycles(dut.clk, cycles)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    # -- packing -----------------------------------------------------------------------------

    def pack(self, port, values):
        p = self.ports[f"{port}__payload"]["packing"]
        values = list(values)
        assert len(values) == p["elements"], (port, len(values), p["elements"])
        pack = pack_signed if p["signed"] else pack_unsigned
        return pack(values, p["element_width"])

    def pack_config(self, run):
        """The config payload of ``run``; each field must fit its width."""
        value = 0
        for name, field in self.manifest["config_fields"].items():
            v = int(getattr(run, name))
            assert 0 <= v < (1 << field["width"]), (name, v, field)
            value |= v << field["offset"]
        return value

    def representable(self, run):
        return all(0 <= getattr(run, name) < (1 << field["width"])
                   for name, field in self.manifest["config_fields"].items())

    def status(self, name):
        field = self.status_fields[name]
        return (int(self.dut.status.value) >> field["offset"]) & ((1 << field["width"]) - 1)

    def unpack_outputs(self, values):
        p = self.ports["outputs__payload"]["packing"]
        return [unpack_signed(v, p["element_width"], p["elements"]) for v in values]

    # -- one layer ---------------------------------------------------------------------------

    async def _monitor(self, rec):
        """Per cycle: the handshakes of every stream and what the status says runs."""
        dut = self.dut
        while True:
            await ReadOnly()
            for name in (*self.input_streams, "outputs"):
                if int(getattr(dut, f"{name}__valid").value) and \
                        int(getattr(dut, f"{name}__ready").value):
                    rec.mark(name)
            if self.status("computing"):
                rec.mark("computing")
            if int(dut.outputs__valid.value) and int(dut.outputs__ready.value):
                rec.output_last.append(int(dut.outputs_last.value))
                if self.has_error_port:
                    rec.beat_errors.append(int(dut.error.value))
            await RisingEdge(dut.clk)
            rec.cycle += 1

    async def run_layer(self, run, x, w, *, stall=0.0, seed=0, strict=True,
                        winograd_weights=False):
        """Stream one layer through the engine; return (output map, status errors, cycles).

        With ``strict`` a config beat flagged as erroneous fails the test; otherwise the
        layer stops there and ``(None, errors, {})`` is returned.
        """
        run = complete_run(self.cfg, run, w, winograd_weights=winograd_weights)
        if not strict:
            # A config beat alone first, to read its error flags before anything else moves.
            errors = await self._config_errors(run, seed)
            if errors:
                return None, errors, {}
            ys, cycles = await self.run_layers([(run, x, w)], stall=stall, seed=seed,
                                               configured=True,
                                               winograd_weights=winograd_weights)
            return ys[0], 0, cycles
        ys, cycles = await self.run_layers([(run, x, w)], stall=stall, seed=seed,
                                           winograd_weights=winograd_weights)
        return ys[0], 0, cycles

    async def _config_errors(self, run, seed):
        dut = self.dut
        config = StreamSource(dut, "config", dut.clk, rng=random.Random(f"{seed}/config"))
        await config.send([self.pack_config(run)])
        await self.config_settled()
        await ReadOnly()
        errors = self.status("errors")
        await RisingEdge(dut.clk)
        return errors

    async def config_settled(self):
        """Wait (after a config beat's transfer edge) until ``status.errors`` shows its checks:
        the manifest's ``config_latency`` edges after the transfer."""
        await ClockCycles(self.dut.clk, self.manifest["config_latency"])

    async def run_layers(self, jobs, *, stall=0.0, seed=0, configured=False,
                         winograd_weights=False):
        """Stream layers ``jobs`` (``(run, x, w)`` each) back to back: every stream carries
        all layers in order, with random gaps and back-pressure of probability ``stall``.

        Returns the output maps and the measured cycles (the whole sequence: from the first
        config beat to the last output beat, and each stream's first-to-last span).
        """
        dut, cfg = self.dut, self.cfg
        clk = dut.clk
        rng = np.random.default_rng(seed)
        config = StreamSource(dut, "config", clk, stall_prob=stall,
                              rng=random.Random(f"{seed}/config"))
        weights = (StreamSource(dut, "weights", clk, stall_prob=stall,
                                rng=random.Random(f"{seed}/weights"))
                   if "weights" in self.input_streams else None)
        acts = StreamSource(dut, "activations", clk, stall_prob=stall,
                            rng=random.Random(f"{seed}/activations"))
        sink = StreamSink(dut, "outputs", clk, stall_prob=stall,
                          rng=random.Random(f"{seed}/outputs"))
        cbeats, wbeats, abeats, counts = [], [], [], []
        # a zero-skipping engine's config beat carries what its weights decide
        jobs = [(complete_run(cfg, run, w, winograd_weights=winograd_weights), x, w)
                for run, x, w in jobs]
        for run, x, w in jobs:
            cbeats.append(self.pack_config(run))
            wbeats += [self.pack("weights", b)
                       for b in weight_beats(cfg, w, winograd_weights=winograd_weights)]
            # lanes beyond C_in and pixels beyond W carry random values: the engine must
            # ignore them
            abeats += [self.pack("activations", b) for b in activation_beats(cfg, x, rng=rng)]
            counts.append(output_beats(cfg, run))
        rec = _Record()
        monitor = cocotb.start_soon(self._monitor(rec))
        sink.start()
        tasks = [acts.start(abeats)] + ([weights.start(wbeats)] if weights else [])
        if not configured:
            tasks.append(config.start(cbeats))
        ideal = sum(cfg.cycles(run)["compute_ideal"] for run, _, _ in jobs)
        loads = sum(cfg.cycles(run)["activations"] + cfg.cycles(run)["weights"]
                    for run, _, _ in jobs)
        await sink.wait_for(sum(counts), timeout_cycles=int((20 * (ideal + loads) + 500)
                                                             * (1 + 4 * stall)))
        for task in tasks:
            await task
        errors = self.status("errors")
        assert errors == 0, f"status.errors = {errors:#b} for valid layers"
        # back to idle, and nothing more comes out
        await ClockCycles(clk, 6)
        await ReadOnly()
        assert not self.status("busy"), "engine still busy after the last output beat"
        await RisingEdge(clk)
        sink.stop()
        monitor.cancel()
        assert len(sink.received) == sum(counts), (f"{len(sink.received)} output beats, "
                                                   f"expected {sum(counts)}")
        ends = list(np.cumsum(counts) - 1)
        lasts = [i for i, flag in enumerate(rec.output_last) if flag]
        assert lasts == ends, f"outputs_last on beats {lasts}, expected {ends}"
        beats = self.unpack_outputs(sink.received)
        ys, start = [], 0
        for (run, _, _), count in zip(jobs, counts):
            ys.append(assemble_outputs(cfg, run, beats[start:start + count]))
            start += count
        self.last_beats = beats
        first = rec.first.get("config", 0) if not configured else 0
        cycles = {
            "total": rec.last["outputs"] - first + 1,
            "weights": rec.span("weights"),
            "activations": rec.span("activations"),
            "compute": rec.last["outputs"] - rec.first["computing"] + 1,
            "compute_ideal": ideal,
            "sequence_model": cfg.sequence_cycles([run for run, _, _ in jobs],
                                                  self.manifest["latency"]),
            "latency": self.manifest["latency"],
        }
        if self.has_error_port:
            cycles["flagged_beats"] = sum(rec.beat_errors)
            self.last_beat_errors = rec.beat_errors
        cycles["utilisation"] = ideal / cycles["total"]
        return ys, cycles


def _random_layer(cfg, run, rng, pattern="random"):
    """Activations (and weights) of ``run``: random, or the extremes of the ranges; a
    weight-specialized engine's own weights."""
    dv, wv = cfg.tile.data_interval, cfg.tile.weight_interval
    xs, ws = (run.cin, run.height, run.width), (run.cout, run.cin, cfg.r, cfg.r)
    if pattern == "extreme":
        # the extremes: every product at its bound, in both signs
        x = np.where(rng.random(xs) < 0.5, dv.lo, dv.hi)
        w = np.where(rng.random(ws) < 0.5, wv.lo, wv.hi)
    else:
        x, w = rng.integers(dv.lo, dv.hi + 1, xs), rng.integers(wv.lo, wv.hi + 1, ws)
    if cfg.specialized:
        w = cfg.fixed_weights.values
    return x, w


def _fixed_u(cfg):
    """Whether the engine's weights are Winograd-domain ``Û`` (fixed weights of kind u, or
    ``WINOGEN_SPARSE_U`` given)."""
    return (cfg.specialized and cfg.fixed_weights.kind == "u") or bool(
        os.environ.get("WINOGEN_SPARSE_U"))


def _given_u(w):
    """``Û`` of ``WINOGEN_SPARSE_U`` (an ``.npy``: every layer's Winograd-domain weights,
    e.g. pruned ones for a zero-skipping engine) in place of ``w``, if given."""
    path = os.environ.get("WINOGEN_SPARSE_U")
    return np.load(path) if path else w


def _checked(cfg, run):
    """``run`` checked against ``cfg``; a zero-skipping engine's ``entries`` and ``lane_map``
    come from the weights later (:func:`~winogen.sim.driver.complete_run`)."""
    if cfg.sparse:
        from dataclasses import replace
        from ..gen.sparse import pack_lane_map
        replace(run, entries=1, lane_map=pack_lane_map(cfg, tuple(range(cfg.n * cfg.n)))
                ).check(cfg)
    else:
        run.check(cfg)
    return run


def _run_of(spec):
    return LayerRun(spec["height"], spec["width"], spec["cin"], spec["cout"],
                    spec.get("padding", 0), spec.get("shift", 0), spec.get("relu", False))


async def _harness_and_specs(dut):
    """The started harness and the layer specs of ``WINOGEN_LAYERS`` (at least one)."""
    h = LayerHarness(dut, engine_manifest())
    await h.start()
    specs = json.loads(os.environ.get("WINOGEN_LAYERS", "[]"))
    assert specs, "WINOGEN_LAYERS must list at least one layer"
    return h, specs


@cocotb.test()
async def layers(dut):
    """The layers of WINOGEN_LAYERS, in sequence, bit-exact against layer_golden."""
    h, specs = await _harness_and_specs(dut)
    report = []
    for spec in specs:
        run = _checked(h.cfg, _run_of(spec))
        seed = spec.get("seed", 0)
        x, w = _random_layer(h.cfg, run, np.random.default_rng(seed), spec.get("pattern", "random"))
        w = _given_u(w)
        y, _, cycles = await h.run_layer(run, x, w, stall=spec.get("stall", 0.0), seed=seed,
                                         winograd_weights=_fixed_u(h.cfg))
        assert cycles.get("flagged_beats", 0) == 0, f"{spec}: error flag without a fault"
        _check_layer(h.cfg, spec, run, x, w, y)
        if spec.get("scipy"):
            ref = scipy_reference(x, w, run.padding)
            assert h.cfg.output_width is None and not h.cfg.keeps_scale
            assert (y == ref).all(), f"{spec}: differs from scipy.signal.correlate"
        dut._log.info("layer %s: cycles %s", spec, cycles)
        report.append({"spec": spec, "cycles": cycles})
    out = os.environ.get("WINOGEN_CYCLES_OUT")
    if out:
        Path(out).write_text(json.dumps(report, indent=2) + "\n")


def golden_beats(config, run, golden):
    """``golden`` (C_out, H_out, W_out) as output beats, and the mask of their defined elements.

    The inverse of :func:`~winogen.sim.driver.assemble_outputs`: beat ``b`` of tile order
    ``for ty: for tx: for cog``, element ``j·m·m + i·m + k``; edge positions beyond the map
    and lanes beyond C_out are undefined (mask 0).
    """
    c = config
    rows, cols = run.tile_rows(c), run.tile_cols(c)
    groups, mo = -(-run.cout // c.p_out), c.m
    full = np.zeros((groups * c.p_out, rows * mo, cols * mo), dtype=object)
    mask = np.zeros(full.shape, dtype=bool)
    cout, hout, wout = golden.shape
    full[:cout, :hout, :wout] = golden
    mask[:cout, :hout, :wout] = True

    def beats(a):
        return (a.reshape(groups, c.p_out, rows, mo, cols, mo).transpose(2, 4, 0, 1, 3, 5)
                .reshape(rows * cols * groups, c.p_out * mo * mo))
    return beats(full), beats(mask)


def _fault_sites(dut, cfg):
    """Single-channel registers of an RNS layer core: ``(name, handle, modulus)``."""
    core, t = dut.core, cfg.tile
    sites = []
    for j in range(cfg.p_out):
        for mod, mi in enumerate(t.moduli):
            for e in range(cfg.n ** 2):
                sites.append((f"acc/ch{mod}", getattr(core, f"acc_o{j}_ch{mod}_{e}"), mi))
                if t.pe_stages >= 1:
                    for i in range(cfg.p_in):
                        pe = getattr(core, f"pe_o{j}_i{i}_ch{mod}_{e}")
                        reg = f"term_d{t.pe_stages - (t.pe_stages >= 2) - (t.pe_stages >= 3)}"
                        sites.append((f"P/ch{mod}", getattr(pe, reg), mi))
    return sites


async def _flip_during_compute(h, site, bit, step, extra, log):
    """Wait for the ``step``-th compute step to reach the core, then ``extra`` cycles, then
    flip ``bit`` of the register (so that the flip meets live values: compute steps come in
    bursts as the rows stream in)."""
    await _flip_at_step(h, site[1], bit, step, extra, {})
    log.update(site=site[0], bit=bit, step=step, extra=extra)


def _check_layer(cfg, spec, run, x, w, y):
    golden = layer_golden(cfg, run, x, w, winograd_weights=_fixed_u(cfg))
    assert y.shape == golden.shape, (spec, y.shape, golden.shape)
    bad = np.argwhere(y != golden)
    assert bad.size == 0, (f"{spec}: {len(bad)} outputs differ, first at {bad[0].tolist()}: "
                           f"got {y[tuple(bad[0])]}, expected {golden[tuple(bad[0])]}")


@cocotb.test()
async def sequence(dut):
    """The layers of WINOGEN_LAYERS back to back: every stream carries all of them at once
    (the first spec's ``stall`` and ``seed`` apply), each layer bit-exact; the whole
    sequence's cycles go to ``WINOGEN_CYCLES_OUT``."""
    h, specs = await _harness_and_specs(dut)
    jobs = []
    for spec in specs:
        run = _checked(h.cfg, _run_of(spec))
        jobs.append((run, *_random_layer(h.cfg, run, np.random.default_rng(spec.get("seed", 0)),
                                         spec.get("pattern", "random"))))
    ys, cycles = await h.run_layers(jobs, stall=specs[0].get("stall", 0.0),
                                    seed=specs[0].get("seed", 0))
    for spec, (run, x, w), y in zip(specs, jobs, ys):
        _check_layer(h.cfg, spec, run, x, w, y)
    dut._log.info("sequence of %d layers: cycles %s", len(specs), cycles)
    out = os.environ.get("WINOGEN_CYCLES_OUT")
    if out:
        Path(out).write_text(json.dumps([{"specs": specs, "cycles": cycles}], indent=2) + "\n")


@cocotb.test()
async def fault_injection(dut):
    """One bit flip per layer in one residue channel: no wrong output beat goes unflagged."""
    manifest = engine_manifest()
    h = LayerHarness(dut, manifest)
    c = h.cfg
    assert c.tile.pe_kind.modular and h.has_error_port, "fault test needs an RNS engine with a redundant modulus"
    layers = int(os.environ.get("WINOGEN_FAULT_LAYERS", "200"))
    clean = int(os.environ.get("WINOGEN_CLEAN", "20"))
    seed = int(os.environ.get("WINOGEN_FAULT_SEED", "5"))
    rnd = random.Random(seed)
    await h.start()
    sites = _fault_sites(dut, c)
    summary = {"faulty_layers": layers, "clean_layers": clean, "injected": 0,
               "flagged_layers": 0, "wrong_layers": 0, "wrong_beats": 0, "flagged_beats": 0,
               "wrong_and_unflagged": 0, "clean_false_alarms": 0, "clean_wrong": 0,
               "by_site": {}}
    for trial in range(clean + layers):
        run = LayerRun(rnd.randint(c.r, c.max_height), rnd.randint(c.r, c.max_width),
                       rnd.randint(1, c.max_cin), rnd.randint(1, c.max_cout),
                       rnd.choice(c.paddings)).check(c)
        x, w = _random_layer(c, run, np.random.default_rng(seed * 100003 + trial))
        log, task = {}, None
        if trial >= clean:
            site = rnd.choice(sites)
            bit = rnd.randrange(residue_width(site[2]))
            step = rnd.randrange(c.cycles(run)["compute_ideal"])
            extra = rnd.randrange(c.tile.pe_stages + 2)
            task = cocotb.start_soon(_flip_during_compute(h, site, bit, step, extra, log))
        await h.run_layer(run, x, w, stall=0.0, seed=seed * 100003 + trial)
        if task is not None:
            task.cancel()
        want, mask = golden_beats(c, run, layer_golden(c, run, x, w))
        got = np.array(h.last_beats, dtype=object)
        wrong = np.any((got != want) & mask, axis=1)
        flags = np.array(h.last_beat_errors, dtype=bool)
        if trial < clean:
            summary["clean_false_alarms"] += int(flags.sum())
            summary["clean_wrong"] += int(wrong.sum())
            continue
        summary["injected"] += bool(log)
        summary["wrong_beats"] += int(wrong.sum())
        summary["flagged_beats"] += int(flags.sum())
        summary["wrong_and_unflagged"] += int((wrong & ~flags).sum())
        summary["wrong_layers"] += bool(wrong.any())
        summary["flagged_layers"] += bool(flags.any())
        if log:
            entry = summary["by_site"].setdefault(log["site"], [0, 0])
            entry[0] += 1
            entry[1] += bool(flags.any())
    dut._log.info("layer fault summary %s", json.dumps(summary))
    report = os.environ.get("WINOGEN_FAULT_REPORT")
    if report:
        Path(report).write_text(json.dumps(summary, indent=2) + "\n")
    assert summary["wrong_and_unflagged"] == 0, "wrong output beats without the error flag"
    assert summary["clean_false_alarms"] == 0 and summary["clean_wrong"] == 0


async def _flip_at_step(h, handle, bit, step, extra, log):
    """After the ``step``-th compute step reaches the core and ``extra`` more cycles, flip
    ``bit`` of ``handle``."""
    dut = h.dut
    seen = 0
    while True:
        await ReadOnly()
        if int(dut.core_valid_d3.value):
            seen += 1
            if seen > step:
                break
        await RisingEdge(dut.clk)
    for _ in range(extra + 1):
        await RisingEdge(dut.clk)
    await Timer(1, unit="ns")                  # registers have settled after the edge
    old = int(handle.value)
    handle.value = old ^ (1 << bit)
    log["flipped"] = True


def _bad_runs(h):
    c = h.cfg
    p = max(c.paddings)
    fixed = c.specialized       # the weights fix C_in and C_out
    ok = dict(height=min(c.max_height, 4 + 2 * c.r), width=min(c.max_width, 3 + c.r),
              cin=c.max_cin if fixed else 1, cout=c.max_cout if fixed else 1, padding=p,
              shift=0)
    runs = [*([dict(ok, cin=c.max_cin - 1), dict(ok, cout=c.max_cout - 1)] if fixed else []),
        dict(ok, height=c.max_height + 1), dict(ok, width=c.max_width + 1),
        dict(ok, height=0), dict(ok, cin=0), dict(ok, cout=0),
        dict(ok, cin=c.max_cin + 1), dict(ok, cout=c.max_cout + 1),
        dict(ok, padding=0, height=c.r - 1), dict(ok, padding=0, width=c.r - 1),
        dict(ok, shift=c.max_shift + 1),
        dict(ok, height=0, width=0, cin=0, cout=0),
    ]
    width = h.manifest["config_fields"]["padding"]["width"]
    runs += [dict(ok, padding=v) for v in range(1 << width) if v not in c.paddings]
    if c.sparse:
        from ..gen.sparse import pack_lane_map
        n2 = c.n * c.n
        ident = pack_lane_map(c, tuple(range(n2)))
        runs = [dict(r, entries=1, lane_map=ident) for r in runs]
        runs += [dict(ok, entries=0, lane_map=ident),
                 dict(ok, entries=c.max_entries + 1, lane_map=ident),
                 dict(ok, entries=1, lane_map=pack_lane_map(c, (1,) + tuple(range(1, n2))))]
    runs = [LayerRun(**r) for r in runs]
    return [r for r in runs if r.errors(c) and h.representable(r)]


@cocotb.test()
async def error_flags(dut):
    """Out-of-range configs set the right error bits and start nothing; a valid one runs."""
    manifest = engine_manifest()
    h = LayerHarness(dut, manifest)
    await h.start()
    c = h.cfg
    bad = _bad_runs(h)
    flagged = set()
    for run in bad:
        config = StreamSource(dut, "config", dut.clk)
        await config.send([h.pack_config(run)])
        await h.config_settled()
        # Offer weights and activations and take outputs: nothing may move.
        for name in h.input_streams[1:]:
            getattr(dut, f"{name}__valid").value = 1
        dut.outputs__ready.value = 1
        for _ in range(8):
            await ReadOnly()
            expected = sum(1 << RUN_ERRORS[name] for name in run.errors(c))
            errors = h.status("errors")
            assert errors == expected, f"{run}: errors {errors:#b}, expected {expected:#b}"
            for name in h.input_streams[1:]:
                assert not int(getattr(dut, f"{name}__ready").value), f"{run}: {name} accepted"
            assert not int(dut.outputs__valid.value), f"{run}: output produced"
            assert not h.status("busy")
            assert int(dut.config__ready.value), f"{run}: config not ready when idle"
            await RisingEdge(dut.clk)
        for name in h.input_streams[1:]:
            getattr(dut, f"{name}__valid").value = 0
        dut.outputs__ready.value = 0
        flagged.update(run.errors(c))
        dut._log.info("%s -> %s", run, run.errors(c))
    for name in ("height", "width", "cin", "cout"):
        assert name in flagged, f"no representable bad config exercised {name!r}"
    # Errors are sticky until the next config beat, which clears them.
    spec = json.loads(os.environ.get("WINOGEN_LAYERS", "[]"))
    fixed = c.specialized
    run = _run_of(spec[0]) if spec else LayerRun(
        min(c.max_height, 7), min(c.max_width, 5), c.max_cin if fixed else min(c.max_cin, 3),
        c.max_cout if fixed else min(c.max_cout, 2), max(c.paddings))
    given = _given_u(None)
    if given is not None:           # the given Û decide the channel counts
        from dataclasses import replace
        run = replace(run, cin=given.shape[1], cout=given.shape[0])
    x, w = _random_layer(c, run, np.random.default_rng(11))
    w = _given_u(w)
    y, errors, _ = await h.run_layer(run, x, w, stall=0.2, seed=11,
                                     winograd_weights=_fixed_u(c))
    assert errors == 0
    assert (y == layer_golden(c, run, x, w, winograd_weights=_fixed_u(c))).all(), \
        "valid layer after errors differs"


@cocotb.test()
async def driver(dut):
    """Driver mode: stream the arrays of WINOGEN_DRIVER_DIR and save what comes out."""
    folder = Path(os.environ["WINOGEN_DRIVER_DIR"])
    manifest = engine_manifest()
    h = LayerHarness(dut, manifest)
    await h.start()
    x = np.load(folder / "x.npy")
    w = np.load(folder / "w.npy")
    params = json.loads((folder / "run.json").read_text())
    run = LayerRun(x.shape[1], x.shape[2], x.shape[0], w.shape[0], params["padding"],
                   params["shift"], params.get("relu", False))
    y, errors, cycles = await h.run_layer(run, x, w, stall=params["stall"], seed=params["seed"],
                                          strict=False,
                                          winograd_weights=params.get("winograd_weights", False))
    if y is not None:
        np.save(folder / "y.npy", np.asarray(y, dtype=np.int64))
    (folder / "cycles.json").write_text(json.dumps({"errors": errors, **cycles}, indent=2) + "\n")


@cocotb.test()
async def driver_batch(dut):
    """Batch driver mode: the layers of WINOGEN_DRIVER_DIR back to back, one simulation.

    ``x.npz`` holds the activations ``x0``, ``x1``, … of each layer, ``w.npy`` the weights
    they share (``Û`` with ``winograd_weights``), ``run.json`` the shared ``padding``,
    ``shift``, ``relu``, ``stall``, ``seed`` and ``winograd_weights``. Saves ``y.npz`` (``y0``, …) and ``cycles.json`` (the whole sequence).
    """
    folder = Path(os.environ["WINOGEN_DRIVER_DIR"])
    h = LayerHarness(dut, engine_manifest())
    await h.start()
    xs = np.load(folder / "x.npz")
    w = np.load(folder / "w.npy")
    params = json.loads((folder / "run.json").read_text())
    jobs = []
    for k in range(len(xs.files)):
        x = xs[f"x{k}"]
        run = LayerRun(x.shape[1], x.shape[2], x.shape[0], w.shape[0], params["padding"],
                       params["shift"], params["relu"])
        _checked(h.cfg, run)
        jobs.append((run, x, w))
    ys, cycles = await h.run_layers(jobs, stall=params["stall"], seed=params["seed"],
                                    winograd_weights=params.get("winograd_weights", False))
    np.savez(folder / "y.npz", **{f"y{k}": np.asarray(y, dtype=np.int64) for k, y in enumerate(ys)})
    (folder / "cycles.json").write_text(json.dumps(cycles, indent=2) + "\n")

