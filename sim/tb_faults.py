"""cocotb testbench: RTL fault campaigns on binary layer engines, cross-checked against the
operation-level fault model.

The registers come from the manifest's ``fault_sites`` (:mod:`winogen.hw.layer.faultsites`),
not from names written here. Each layer of the campaign gets at most one injection per
output beat ``(ty, tx, cog)``: every fault of the model reaches only its own beat, so the
injections of one layer are independent and each beat is classified on its own. For an
injection the testbench picks, with a seeded RNG, a site class (the class with the fewest
injections so far, ties at random), a register of it whose lanes hold live channels, a
bit, and the step (the input-channel group ``cig`` for classes that hold every step, the
tile's last step otherwise); it flips that bit at the edge where the register holds that
step's value (the manifest's ``delay`` after the step's cycle at the core, steps counted
on the manifest's ``reference`` register in ``step_order``), and records the model's
:class:`~winogen.gen.faultmodel.Fault` (a register holding several elements, or an element
shifted left, gives one fault per element it holds, at ``bit + shift``).

After the layer, every output beat of the engine must equal
:meth:`~winogen.gen.faultmodel.LayerFaultModel.forward` given all the layer's faults, and the
injected beat must equal the model given that injection's faults alone (the cross-check);
the model's single-fault output must differ from the fault-free output at that beat only.
Each injection is classified on the engine's beat: ``detected`` (the engine's ``error``
output flags the beat, for engines with one), ``sdc`` (the beat differs from the
fault-free output) or ``masked``. With an ``error`` port the engine's flags must also
equal the model's (``flags["beats"]``: hardened ``dmr`` classes).

Tests
-----
``fault_campaign``
    The campaign.

Environment
-----------
WINOGEN_MANIFEST
    The engine's manifest (with ``fault_sites``).
WINOGEN_FAULT_INJECTIONS
    Injections to make (layers are added until there are that many), default 200.
WINOGEN_FAULT_SEED
    Seed of every random choice (layers, data, faults), default 1.
WINOGEN_FAULT_CLASSES
    Optional comma-separated site classes to inject into (default: every class the
    manifest and the model share).
WINOGEN_FAULT_STALL
    Probability of stream gaps and output back-pressure in every other layer, default 0.1
    (the core never stalls, so the steps just come in bursts).
WINOGEN_FAULT_REPORT
    Optional path: the summary as JSON.
WINOGEN_FAULT_CHECK
    ``0``: report disagreements in the summary without failing the test (default ``1``).
"""

import math
import os
import random
import time
from dataclasses import dataclass, field

import numpy as np

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from ..gen.faultmodel import CLASSIFICATIONS, Fault, LayerFaultModel
from ..gen.layer import LayerRun
from .tb_layer import LayerHarness, golden_beats
from .testbench import close_fault_campaign, engine_manifest

__all__ = ["plan_layer_faults", "CLASSIFICATIONS"]



@dataclass
class Injection:
    """One register flip and the faults of the model it stands for."""
    site: str
    register: str
    bit: int                    # bit of the value (the register's bit lsb + bit)
    step: int                   # the step's index in the layer (step_order)
    beat: int                   # the output beat it reaches
    faults: list = field(default_factory=list)
    copy: int = 0
    width: int = 0              # the value's bits in the register
    lsb: int = 0                # the value's lowest bit in the register
    shifts: list = field(default_factory=list)     # per fault: the element's shift


def _index(site, beat_pos, cout, cin, cig, value):
    """The fault model's index (without the image axis) of ``value`` of a register."""
    ty, tx, cog = beat_pos
    e = value["element"]
    if site == "input_transform":
        return (ty, tx, cog, cin, e)
    if site == "products":
        return (ty, tx, cout, cin, e) + ((value["tap"],) if "tap" in value else ())
    if site in ("lane_sums", "accumulation"):
        return (ty, tx, cout, cig, e)
    return (ty, tx, cout, e)


def plan_layer_faults(config, run, fault_sites, classes, counts, rnd):
    """One injection per output beat of ``run``: a list of :class:`Injection`.

    Parameters
    ----------
    config : LayerConfig
    run : LayerRun
    fault_sites : dict
        The manifest's ``fault_sites``.
    classes : list of str
        The site classes to inject into.
    counts : dict
        Injections per class so far (updated): the class with the fewest goes next.
    rnd : random.Random
    """
    c = config
    rows, cols = run.tile_rows(c), run.tile_cols(c)
    g_in, g_out = math.ceil(run.cin / c.p_in), math.ceil(run.cout / c.p_out)
    plan = []
    beat = 0
    for ty in range(rows):
        for tx in range(cols):
            for cog in range(g_out):
                low = min(counts[k] for k in classes)
                site = rnd.choice([k for k in classes if counts[k] == low])
                spec = fault_sites["classes"][site]
                each = spec["step"] == "each"
                cig = rnd.randrange(g_in) if each else g_in - 1
                live = []
                for reg in spec["registers"]:
                    cout = cog * c.p_out + reg.get("cout_lane", 0)
                    cin = cig * c.p_in + reg.get("cin_lane", 0)
                    if ("cout_lane" in reg and cout >= run.cout) or \
                            ("cin_lane" in reg and cin >= run.cin):
                        continue
                    live.append((reg, cout, cin))
                reg, cout, cin = rnd.choice(live)
                bit = rnd.randrange(reg["width"])
                inj = Injection(site, reg["name"], bit,
                                ((ty * cols + tx) * g_out + cog) * g_in + cig, beat,
                                copy=reg["copy"], width=reg["width"], lsb=reg["lsb"])
                for value in reg["values"]:
                    inj.faults.append(Fault(site, _index(site, (ty, tx, cog), cout, cin, cig,
                                                         value),
                                            bit + value["shift"], 0, reg["copy"]))
                    inj.shifts.append(value["shift"])
                plan.append(inj)
                counts[site] += 1
                beat += 1
    return plan


class _Injector:
    """Counts the steps on the reference register and flips the planned registers at the
    edges the manifest's delays give (one coroutine, one pass per clock)."""

    def __init__(self, dut, fault_sites):
        self.dut = dut
        self.sites = fault_sites
        self.reference = self._handle(fault_sites["reference"])
        self.handles = {}
        self.schedule = {}          # step -> [(delay, handle, mask, injection)]
        self.pending = {}           # edge -> [(handle, mask, injection)]
        self.step = 0
        self.flipped = []

    def _handle(self, path):
        handle = self.dut
        for part in path.split("."):
            handle = getattr(handle, part)
        return handle

    def arm(self, plan):
        """Start a layer: step 0 is the next step at the core."""
        assert not self.pending, "flips of the previous layer never happened"
        self.step, self.schedule, self.flipped = 0, {}, []
        for inj in plan:
            delay = self.sites["classes"][inj.site]["delay"]
            assert delay >= 1, f"{inj.site}: delay {delay}"
            handle = self.handles.get(inj.register)
            if handle is None:
                handle = self.handles[inj.register] = self._handle(inj.register)
            mask = 1 << (inj.lsb + inj.bit)
            self.schedule.setdefault(inj.step, []).append((delay, handle, mask, inj))

    async def run(self):
        edge = 0
        while True:
            await RisingEdge(self.dut.clk)
            edge += 1
            due = self.pending.pop(edge, None)
            if due:
                await Timer(1, unit="ns")           # after the edge's register updates
                for handle, mask, inj in due:
                    handle.value = int(handle.value) ^ mask
                    self.flipped.append(inj)
            await ReadOnly()
            if int(self.reference.value):
                for delay, handle, mask, inj in self.schedule.get(self.step, ()):
                    self.pending.setdefault(edge + delay, []).append((handle, mask, inj))
                self.step += 1


def _random_run(c, rnd):
    """A layer of the engine's larger shapes (many output beats per layer)."""
    h = rnd.randint(max(c.r, c.max_height // 2), c.max_height)
    w = rnd.randint(max(c.r, c.max_width // 2), c.max_width)
    return LayerRun(h, w, rnd.randint(1, c.max_cin), rnd.randint(1, c.max_cout),
                    rnd.choice(c.paddings),
                    rnd.randint(0, c.max_shift) if c.output_width is not None else 0,
                    bool(rnd.getrandbits(1)) if c.output_width is not None else False).check(c)


def _beats(c, run, y):
    beats, mask = golden_beats(c, run, y)
    return beats.astype(np.int64), mask


@cocotb.test()
async def fault_campaign(dut):
    """Bit flips in the manifest's fault-site registers, one per output beat: every beat
    equals the fault model's, each injection classified masked / sdc / detected."""
    start = time.monotonic()
    manifest = engine_manifest()
    assert "fault_sites" in manifest, "the engine's manifest has no fault_sites"
    sites = manifest["fault_sites"]
    h = LayerHarness(dut, manifest)
    c = h.cfg
    target = int(os.environ.get("WINOGEN_FAULT_INJECTIONS", "200"))
    seed = int(os.environ.get("WINOGEN_FAULT_SEED", "1"))
    stall = float(os.environ.get("WINOGEN_FAULT_STALL", "0.1"))
    wanted = os.environ.get("WINOGEN_FAULT_CLASSES", "")
    rnd = random.Random(seed)
    await h.start()
    injector = _Injector(dut, sites)
    cocotb.start_soon(injector.run())

    probe = LayerFaultModel(c, LayerRun(c.r, c.r, 1, 1), np.zeros((1, 1, c.r, c.r), int))
    model_classes = set(probe.site_classes())
    classes = [k for k in sites["classes"] if k in model_classes]
    if wanted:
        asked = [k.strip() for k in wanted.split(",") if k.strip()]
        unknown = [k for k in asked if k not in classes]
        assert not unknown, f"WINOGEN_FAULT_CLASSES: {unknown} not among {classes}"
        classes = asked
    assert classes, "no site class to inject into"
    counts = {k: 0 for k in classes}
    summary = {"engine": manifest["top"], "seed": seed, "injections": 0, "layers": 0,
               "flipped": 0, "agree": 0, "disagree": 0,
               "by_class": {k: {"injections": 0, **{x: 0 for x in CLASSIFICATIONS},
                                "disagree": 0} for k in classes},
               "other_beats_wrong": 0, "flag_mismatches": 0, "problems": []}
    problems = summary["problems"]
    layer = 0
    while summary["injections"] < target:
        run = _random_run(c, rnd)
        data = np.random.default_rng([seed, layer])
        pattern = "extreme" if layer % 5 == 4 else "random"
        dv, wv = c.tile.data_interval, c.tile.weight_interval
        xs, ws = (run.cin, run.height, run.width), (run.cout, run.cin, c.r, c.r)
        if pattern == "extreme":
            x = np.where(data.random(xs) < 0.5, dv.lo, dv.hi)
            w = np.where(data.random(ws) < 0.5, wv.lo, wv.hi)
        else:
            x, w = data.integers(dv.lo, dv.hi + 1, xs), data.integers(wv.lo, wv.hi + 1, ws)
        model = LayerFaultModel(c, run, w)
        plan = plan_layer_faults(c, run, sites, classes, counts, rnd)
        plan = plan[:target - summary["injections"]]
        injector.arm(plan)
        await h.run_layer(run, x, w, stall=stall if layer % 2 else 0.0, seed=seed * 7919 + layer)
        steps = run.tile_rows(c) * run.tile_cols(c) * math.ceil(run.cin / c.p_in) \
            * math.ceil(run.cout / c.p_out)
        assert injector.step == steps, f"{injector.step} steps counted, {steps} expected"
        assert len(injector.flipped) == len(plan), \
            f"{len(injector.flipped)} of {len(plan)} flips happened"
        got = np.array(h.last_beats, dtype=object).astype(np.int64)
        rtl_flags = (np.array(h.last_beat_errors, dtype=bool) if h.has_error_port
                     else np.zeros(len(got), dtype=bool))
        clean, mask = _beats(c, run, model.forward(x))
        every = [f for inj in plan for f in inj.faults]
        flags = {}
        want, _ = _beats(c, run, model.forward(x, faults=every, flags=flags))
        model_flags = flags["beats"][0].reshape(-1)
        wrong = np.any((got != want) & mask, axis=1)
        injected = {inj.beat for inj in plan}
        others = [b for b in np.flatnonzero(wrong) if b not in injected]
        summary["other_beats_wrong"] += len(others)
        if others:
            problems.append(f"layer {layer} {run}: beats {others[:5]} without a fault differ")
        if (rtl_flags != model_flags).any():
            bad = np.flatnonzero(rtl_flags != model_flags)
            summary["flag_mismatches"] += len(bad)
            problems.append(f"layer {layer}: error flags differ from the model's at beats "
                            f"{bad[:5].tolist()}")
        widths = {k: np.broadcast_to(v.widths, v.shape)
                  for k, v in model.site_classes().items()}
        for inj in plan:
            b = inj.beat
            for f, shift in zip(inj.faults, inj.shifts):
                # The manifest's register is the model's value: as wide, less its shift.
                width = int(widths[f.site][(0,) + f.index])
                if inj.width + shift != width:
                    problems.append(f"{inj.register}: {inj.width} bits + shift {shift}, the "
                                    f"model's {f.site}{f.index} has {width}")
            alone, _ = _beats(c, run, model.forward(x, faults=inj.faults))
            reach = np.flatnonzero(np.any((alone != clean) & mask, axis=1))
            agree = bool(np.all((got[b] == alone[b]) | ~mask[b])) and set(reach) <= {b}
            summary["agree" if agree else "disagree"] += 1
            summary["by_class"][inj.site]["disagree"] += not agree
            if not agree and len(problems) < 40:
                diff = np.flatnonzero((got[b] != alone[b]) & mask[b])
                problems.append(
                    f"layer {layer} {run}: {inj.site} {inj.register} bit {inj.bit} step "
                    f"{inj.step} faults {inj.faults}: beat {b} elements {diff.tolist()} "
                    f"rtl {got[b][diff].tolist()} model {alone[b][diff].tolist()} clean "
                    f"{clean[b][diff].tolist()}; model reaches beats {reach.tolist()}")
            if rtl_flags[b]:
                kind = "detected"
            elif np.any((got[b] != clean[b]) & mask[b]):
                kind = "sdc"
            else:
                kind = "masked"
            entry = summary["by_class"][inj.site]
            entry["injections"] += 1
            entry[kind] += 1
        summary["injections"] += len(plan)
        summary["flipped"] += len(injector.flipped)
        summary["layers"] += 1
        layer += 1
    close_fault_campaign(dut, summary, problems, start, "fault campaign")
