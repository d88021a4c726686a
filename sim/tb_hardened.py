"""cocotb testbench: bit flips in the copies of a hardened layer engine's blocks.

``hardened_copy_flips`` runs random layers on an engine built with ``--harden`` and
flips one bit of one datapath register of one copy of a replicated block per layer (the
registers are found by walking the copies' hierarchy; the build must make them public):
every flip into a ``tmr`` block must be masked, every flip into a ``dmr`` block masked or
flagged by ``error``. Environment: WINOGEN_MANIFEST, WINOGEN_FAULT_LAYERS (default 200),
WINOGEN_FAULT_SEED (default 5), WINOGEN_FAULT_REPORT (a JSON summary).
"""

import json
import os
import random
import re
from pathlib import Path

import numpy as np

import cocotb

from ..gen.layer import LayerRun, layer_golden
from .tb_layer import LayerHarness, _flip_at_step, _random_layer, golden_beats
from .testbench import engine_manifest

__all__ = ["hardened_copy_flips"]

#: Datapath registers among a copy's signals (Amaranth's delay/pipeline names,
#: accumulators, the PE operand registers); flipping a combinational net would be undone
#: at once. The control registers a copy carries (valid, first, last) are not a site
#: class: a dmr copy cannot flag a beat that a control fault dropped (README).
_REGISTER_NAME = re.compile(r"(_d[0-9]+|_q|_reg|^acc[0-9]+)$")
_CONTROL_NAME = re.compile(r"(valid|first|last)")


def _copy_registers(handle, path=""):
    """``(path, handle, width)`` of every register under a copy's handle (recursively)."""
    found = []
    for child in handle:
        name = child._name.split(".")[-1]
        sub = f"{path}.{name}" if path else name
        if isinstance(child, cocotb.handle.HierarchyObject):
            found += _copy_registers(child, sub)
        elif _REGISTER_NAME.search(name) and not _CONTROL_NAME.search(name) \
                and hasattr(child, "value"):
            try:
                width = len(child)
            except TypeError:
                width = 1
            found.append((sub, child, width))
    return found


def _hardened_sites(dut, cfg):
    """``(class, scheme, copy, path, handle, width)`` of every register of every copy of a
    hardened block, found by walking the hierarchy (the copies' submodule prefix is
    ``winogen.hw.harden.COPY_PREFIX``)."""
    from ..hw.harden import COPY_PREFIX
    core = dut.core
    blocks = {"input_transform": [f"input_transform{i}" for i in range(cfg.p_in)],
              "products": ["pe_array"], "accumulation": ["accumulator"],
              "output_transform": [f"output_transform{j}" for j in range(cfg.p_out)]}
    n2, mm = cfg.n ** 2, cfg.m ** 2
    if cfg.algorithm == "winograd":
        blocks["lane_sums"] = [f"lane_sum_o{j}_e{e}" for j in range(cfg.p_out) for e in range(n2)]
        blocks["descale"] = [f"descale_o{j}_e{e}" for j in range(cfg.p_out) for e in range(mm)]
    else:
        blocks["lane_sums"] = [f"sum_o{j}_k{k}" for j in range(cfg.p_out) for k in range(mm)]
    sites = []
    for cls, scheme in cfg.harden:
        owners = [dut] if cls == "requantization" else [core]
        names = ["requantizer"] if cls == "requantization" else blocks[cls]
        for owner in owners:
            for name in names:
                block = getattr(owner, name)
                copies = 3 if scheme == "tmr" else 2
                for k in range(copies):
                    copy = getattr(block, f"{COPY_PREFIX}{k}")
                    for path, handle, width in _copy_registers(copy):
                        sites.append((cls, scheme, k, f"{name}.{COPY_PREFIX}{k}.{path}",
                                      handle, width))
    return sites


@cocotb.test()
async def hardened_copy_flips(dut):
    """One bit flip per layer in one register of one copy of a hardened block: every flip
    in a ``tmr`` block is masked (outputs exact, no error), every flip in a ``dmr`` block is
    masked or flagged (no wrong output beat without ``error``)."""
    manifest = engine_manifest()
    h = LayerHarness(dut, manifest)
    c = h.cfg
    assert c.harden, "the hardened fault test needs an engine built with --harden"
    layers = int(os.environ.get("WINOGEN_FAULT_LAYERS", "200"))
    seed = int(os.environ.get("WINOGEN_FAULT_SEED", "5"))
    rnd = random.Random(seed)
    await h.start()
    sites = _hardened_sites(dut, c)
    by_class = {}
    for site in sites:
        by_class.setdefault(site[0], []).append(site)
    classes = sorted(by_class)
    summary = {"layers": layers, "registers": len(sites), "by_class": {}}
    problems = []
    for trial in range(layers):
        run = LayerRun(rnd.randint(c.r, c.max_height), rnd.randint(c.r, c.max_width),
                       rnd.randint(1, c.max_cin), rnd.randint(1, c.max_cout),
                       rnd.choice(c.paddings),
                       rnd.randint(0, c.max_shift) if c.output_width else 0).check(c)
        x, w = _random_layer(c, run, np.random.default_rng(seed * 100003 + trial))
        cls = classes[trial % len(classes)]
        site = rnd.choice(by_class[cls])
        _, scheme, copy, path, handle, width = site
        bit = rnd.randrange(width)
        step = rnd.randrange(c.cycles(run)["compute_ideal"])
        extra = rnd.randrange(manifest["latency"])    # anywhere along the pipeline
        log = {}
        task = cocotb.start_soon(_flip_at_step(h, handle, bit, step, extra, log))
        await h.run_layer(run, x, w, stall=0.0, seed=seed * 100003 + trial)
        task.cancel()
        want, mask = golden_beats(c, run, layer_golden(c, run, x, w))
        got = np.array(h.last_beats, dtype=object)
        wrong = np.any((got != want) & mask, axis=1)
        flags = np.array(h.last_beat_errors, dtype=bool) if h.has_error_port else \
            np.zeros(len(wrong), dtype=bool)
        entry = summary["by_class"].setdefault(f"{cls}/{scheme}", {
            "injections": 0, "masked": 0, "detected": 0, "sdc": 0})
        entry["injections"] += 1
        if not wrong.any() and not flags.any():
            entry["masked"] += 1
        elif (wrong & ~flags).any():
            entry["sdc"] += 1
        else:
            entry["detected"] += 1
        if scheme == "tmr" and (wrong.any() or flags.any()):
            problems.append(f"tmr {path} bit {bit}: {int(wrong.sum())} wrong beats, "
                            f"{int(flags.sum())} flagged")
        if scheme == "dmr" and (wrong & ~flags).any():
            problems.append(f"dmr {path} bit {bit}: {int((wrong & ~flags).sum())} wrong beats "
                            f"without error")
        summary["flipped"] = summary.get("flipped", 0) + bool(log)
    dut._log.info("hardened fault summary %s", json.dumps(summary))
    report = os.environ.get("WINOGEN_FAULT_REPORT")
    if report:
        Path(report).write_text(json.dumps(summary, indent=2) + "\n")
    assert not problems, f"{len(problems)} failures, e.g. {problems[:5]}"
