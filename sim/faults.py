"""RTL fault campaigns from Python: build a binary layer or tile engine with its internal
registers public and run the cocotb campaign of :mod:`winogen.sim.tb_faults` (layer
engines) or :mod:`winogen.sim.tb_tile_faults` (tile engines) on it.

:func:`rtl_fault_campaign` takes a :class:`~winogen.gen.layer.LayerConfig` or a binary
:class:`~winogen.gen.config.TileConfig` (generated and built through the caches of
:mod:`winogen.sim.driver` and :mod:`winogen.sim.build`) or the output folder of ``winogen
generate conv|direct|tile``, and returns the campaign's summary: injections per site class
classified as ``masked``, ``sdc`` or ``detected``, and how many agreed bit for bit with
:class:`~winogen.gen.faultmodel.LayerFaultModel` (:class:`~winogen.gen.faultmodel.TileFaultModel`).
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..gen.checks import check_int
from ..gen.config import TileConfig
from ..gen.faultmodel import CLASSIFICATIONS, SITE_CLASSES
from ..gen.layer import LayerConfig
from ..gen.rns.faultmodel import RNS_SITE_CLASSES
from ..gen.manifest import read_manifest, simulation_sources

__all__ = ["FAULT_BUILD_ARGS", "build_fault_engine", "rtl_fault_campaign", "rtl_campaign_item",
           "campaign_items", "merge_summaries", "check_fault_sites", "TESTBENCHES", "RTL_CHUNK"]

#: Most injections of one work item (one simulation) of a campaign: a larger campaign is
#: split into near-equal items, whatever runs them (:func:`campaign_items`).
RTL_CHUNK = 1000

#: The campaign's testbench module per manifest kind.
TESTBENCHES = {"layer": "winogen.sim.tb_faults", "tile": "winogen.sim.tb_tile_faults",
               "rns_tile": "winogen.sim.tb_tile_faults"}

#: Verilator arguments of a campaign build: the layer builds' own, and every signal public
#: and writable (the campaign flips registers deep in the core).
FAULT_BUILD_ARGS = ("--public-flat-rw",)


def build_fault_engine(engine):
    """Generate (cached) and build (cached) ``engine`` with its registers writable.

    Parameters
    ----------
    engine : LayerConfig, TileConfig or path
        A binary layer or tile engine's configuration, or the generator's output folder
        (or its manifest file).

    Returns
    -------
    (winogen.sim.build.BuildHandle, pathlib.Path)
        The build and the manifest's path.

    Raises
    ------
    ValueError
        If the engine's manifest has no ``fault_sites`` (an RNS engine, or a manifest of
        an older winogen).
    """
    from . import build as vbuild
    from .driver import LAYER_BUILD_ARGS, engine_files
    from ..gen.rns import RNSTileConfig
    if isinstance(engine, (LayerConfig, TileConfig, RNSTileConfig)):
        _, jpath = engine_files(engine)
    elif isinstance(engine, (str, Path)):
        jpath = Path(engine)
    else:
        raise TypeError(f"engine must be a LayerConfig, a TileConfig or the path of a "
                        f"generated engine, not {engine!r}")
    manifest = read_manifest(jpath, require=("top",))
    if jpath.is_dir():
        from ..gen.manifest import find_manifest
        jpath = find_manifest(jpath)
    if manifest.get("kind") not in TESTBENCHES or "fault_sites" not in manifest:
        raise ValueError(f"engine must be a layer or tile engine whose manifest lists "
                         f"fault_sites, not {manifest.get('name')!r} "
                         f"(kind {manifest.get('kind')!r})")
    check_fault_sites(jpath, manifest)
    sources = simulation_sources(jpath.parent, manifest)
    if manifest["kind"] == "rns_tile":
        # Every signal public multiplies an RNS engine's C++ many times over (a small
        # F(2,3) engine did not compile in 45 minutes): only the fault-site registers are
        # made public, by a Verilator control file, and the model is compiled at -O0.
        sources = list(sources) + [_public_registers(manifest)]
        args = tuple(LAYER_BUILD_ARGS)
    else:
        front = tuple(LAYER_BUILD_ARGS) if manifest["kind"] == "layer" else ()
        args = front + FAULT_BUILD_ARGS
    handle = vbuild.build(sources, manifest["top"], build_args=args)
    return handle, jpath


def _public_registers(manifest):
    """A Verilator control file making the registers of ``fault_sites`` public and
    writable (by their names in every module), written once into the build cache."""
    import hashlib
    from .build import cache_root
    names = sorted({reg["name"].split(".")[-1]
                    for site in manifest["fault_sites"]["classes"].values()
                    for reg in site["registers"]})
    text = "`verilator_config\n" + "".join(f'public_flat_rw -module "*" -var "{name}"\n'
                                            for name in names)
    folder = cache_root().parent / "fault-vlt" / hashlib.sha256(text.encode()).hexdigest()[:16]
    path = folder / "faults.vlt"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".faults-{os.getpid()}.vlt"
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def check_fault_sites(jpath, manifest):
    """Refuse a manifest whose ``fault_sites`` name a register the engine's Verilog does not
    have as a clocked ``reg`` of that width (an edited or foreign manifest), before any
    build: ``ValueError`` naming the first such register.
    """
    from ..hw.layer.faultsites import resolve_register, verilog_modules
    text = "\n".join((jpath.parent / name).read_text() for name in manifest["verilog"])
    modules = verilog_modules(text)
    top = manifest["top"]
    sites = manifest["fault_sites"]
    names = [(reg["name"], reg["width"], reg["lsb"])
             for site in sites["classes"].values() for reg in site["registers"]]
    if isinstance(sites.get("reference"), str):
        names.append((sites["reference"], 1, 0))
    for name, width, lsb in names:
        try:
            found = resolve_register(modules, top, name, width, lsb)
        except ValueError as exc:
            raise ValueError(f"the manifest {jpath.name} lists an unknown register: {exc}") \
                from None
        if found != (name, lsb):
            raise ValueError(f"the manifest {jpath.name} lists an unknown register: fault site "
                             f"{name} is an alias of {found[0]}, not a register")


def rtl_fault_campaign(engine, injections, seed=1, *, classes=None, stall=0.1, check=True,
                       report=None, workdir=None, executor=None, chunk=RTL_CHUNK):
    """Run an RTL fault campaign on a binary layer or tile engine under Verilator.

    Layer engines (:mod:`winogen.sim.tb_faults`): each injection flips one bit of one
    register of the manifest's ``fault_sites`` at the cycle it holds a chosen compute
    step's value, at most one per output beat of a layer (random layers are run until
    there are ``injections``); every output beat is compared bit for bit with
    :meth:`~winogen.gen.faultmodel.LayerFaultModel.forward` given the same faults, and each
    injection is classified on its beat. Tile engines (:mod:`winogen.sim.tb_tile_faults`):
    batches of tiles after a filter load, one injection per tile (or one at the filter
    load), every output tile compared with
    :meth:`~winogen.gen.faultmodel.TileFaultModel.forward`.

    Parameters
    ----------
    engine : LayerConfig, TileConfig or path
        A binary layer or tile engine (Winograd or direct, ``mul`` or ``adder`` PEs), as a
        configuration or the generator's output folder.
    injections : int
        Number of injections (at least 1).
    seed : int
        Seed of the layers, data and faults (non-negative).
    classes : list of str, optional
        Site classes to inject into (default: every class the manifest lists).
    stall : float
        Probability in [0, 1) of stream gaps and output back-pressure, in every other layer.
    check : bool
        Fail (``AssertionError``) when an injection disagrees with the model; with
        ``False`` the disagreements are only counted in the summary (``disagree``,
        ``problems``).
    report : path, optional
        Also write the summary there as JSON.
    workdir : path, optional
        Folder for the simulation's logs (kept, one subfolder per work item); a temporary
        folder otherwise.
    executor : winogen.sim.executor.Executor, optional
        Runs the work items (:func:`campaign_items`: at most ``chunk`` injections each, one
        simulation per item); inline by default. The engine is built here first; workers
        reuse that build through the shared build cache (same filesystem and path, as
        :mod:`winogen.sim.executor` says). The items, and so the summary's numbers, depend
        on ``injections``, ``seed`` and ``chunk`` only, not on the executor.
    chunk : int
        Most injections per work item.

    Returns
    -------
    dict
        ``injections``, ``layers`` (tile engines: ``batches`` and ``tiles``), ``flipped`` (flips that happened), ``agree`` and
        ``disagree`` (injections whose beat equals / differs from the model's),
        ``by_class`` (per class: ``injections``, ``masked``, ``sdc``, ``detected``),
        ``totals``, ``seconds`` (the simulations' wall time summed over the items, build
        excluded), ``build_seconds``, ``items`` (work items) and ``item_seeds``.

    Raises
    ------
    AssertionError
        With ``check``, if the campaign fails: an injection disagrees with the model, a beat without a
        fault differs, a flip did not happen, or a class got no injection (the message
        names the first problems).
    """
    from . import build as vbuild
    injections = check_int("injections", injections, 1)
    seed = check_int("seed", seed, 0)
    if isinstance(stall, bool) or not isinstance(stall, (int, float)) or not 0 <= stall < 1:
        raise ValueError(f"stall must be a number in [0, 1), not {stall!r}")
    if not isinstance(check, bool):
        raise TypeError(f"check must be a bool, not {check!r}")
    if classes is not None:
        if isinstance(classes, str):
            classes = [classes]
        classes = list(classes)
        known = tuple(dict.fromkeys(SITE_CLASSES + RNS_SITE_CLASSES))
        bad = [k for k in classes if k not in known]
        if not classes or bad:
            raise ValueError(f"classes must be site classes ({', '.join(known)}), "
                             f"not {classes!r}")
    handle, jpath = build_fault_engine(engine)
    kind = read_manifest(jpath)["kind"]
    if classes is not None:
        listed = read_manifest(jpath)["fault_sites"]["classes"]
        absent = [k for k in classes if k not in listed]
        if absent:
            raise ValueError(f"classes must be among this engine's fault sites "
                             f"({', '.join(listed)}), not {absent!r}")
    chunk = check_int("chunk", chunk, 1)
    if executor is not None:
        from .executor import Executor
        if not isinstance(executor, Executor):
            raise TypeError(f"executor must be a winogen.sim.executor.Executor, not "
                            f"{executor!r}")
    items = campaign_items(jpath, injections, seed, classes=classes, stall=stall, check=check,
                           workdir=workdir, chunk=chunk)
    if executor is None:
        results = [rtl_campaign_item(item) for item in items]
    else:
        results = executor.map(rtl_campaign_item, items)
    summary = merge_summaries(results, seed)
    summary["build_seconds"] = round(handle.seconds, 1)
    if report is not None:
        Path(report).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def campaign_items(manifest, injections, seed, *, classes=None, stall=0.1, check=True,
                   workdir=None, chunk=RTL_CHUNK):
    """The work items of a campaign of ``injections`` on the built engine of ``manifest``.

    ``ceil(injections / chunk)`` items of near-equal size (the first ones one larger); one
    item keeps ``seed``, several get ``SeedSequence([seed, k]).generate_state(1)[0]``
    (item ``k``), so that the items depend on ``injections``, ``seed`` and ``chunk`` only.
    Each item is a dict of plain data (:func:`rtl_campaign_item`).
    """
    import numpy as np
    count = -(-injections // chunk)
    sizes = [injections // count + (k < injections % count) for k in range(count)]
    seeds = [seed] if count == 1 else [
        int(np.random.SeedSequence([seed, k]).generate_state(1)[0]) for k in range(count)]
    return [{"manifest": str(manifest), "injections": n, "seed": s, "index": k,
             "classes": None if classes is None else list(classes), "stall": float(stall),
             "check": check,
             "workdir": None if workdir is None else str(Path(workdir) / f"item{k}")}
            for k, (n, s) in enumerate(zip(sizes, seeds))]


def rtl_campaign_item(item):
    """Work item: one simulation of a campaign (:func:`campaign_items`); returns its summary.

    The engine's build comes from the build cache (made by the caller of
    :func:`rtl_fault_campaign`; made here if absent).
    """
    from . import build as vbuild
    handle, jpath = build_fault_engine(item["manifest"])
    kind = read_manifest(jpath)["kind"]
    keep = item["workdir"] is not None
    folder = Path(item["workdir"]) if keep else Path(tempfile.mkdtemp(prefix="winogen-faults-"))
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "summary.json"
    env = {"WINOGEN_MANIFEST": str(jpath), "WINOGEN_FAULT_INJECTIONS": str(item["injections"]),
           "WINOGEN_FAULT_SEED": str(item["seed"]),
           "WINOGEN_FAULT_STALL": repr(float(item["stall"])),
           "WINOGEN_FAULT_REPORT": str(out),
           "WINOGEN_FAULT_CHECK": "1" if item["check"] else "0"}
    if item["classes"] is not None:
        env["WINOGEN_FAULT_CLASSES"] = ",".join(item["classes"])
    try:
        vbuild.run(handle, TESTBENCHES[kind], testcase="fault_campaign",
                   seed=item["seed"] % 2 ** 31,
                   test_dir=folder / "sim" if keep else None, extra_env=env)
        return json.loads(out.read_text())
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


_SUMMED = ("injections", "layers", "batches", "tiles", "flipped", "agree", "disagree",
           "other_beats_wrong", "flag_mismatches")


def merge_summaries(summaries, seed):
    """One campaign summary from its items' (in item order): counts summed, ``problems``
    joined (each prefixed with its item), ``seconds`` summed."""
    first = summaries[0]
    merged = {"engine": first["engine"], "seed": seed}
    if "kind" in first:
        merged["kind"] = first["kind"]
    for key in _SUMMED:
        if key in first:
            merged[key] = sum(s[key] for s in summaries)
    merged["by_class"] = {}
    for s in summaries:
        for cls, entry in s["by_class"].items():
            slot = merged["by_class"].setdefault(cls, dict.fromkeys(entry, 0))
            for key, value in entry.items():
                slot[key] += value
    merged["totals"] = {x: sum(e[x] for e in merged["by_class"].values())
                        for x in CLASSIFICATIONS}
    merged["problems"] = [p if len(summaries) == 1 else f"item {k}: {p}"
                          for k, s in enumerate(summaries) for p in s["problems"]]
    merged["seconds"] = round(sum(s["seconds"] for s in summaries), 1)
    merged["items"] = len(summaries)
    merged["item_seeds"] = [s["seed"] for s in summaries]
    return merged
