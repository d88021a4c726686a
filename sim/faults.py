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
import shutil
import tempfile
from pathlib import Path

from ..gen.checks import check_int
from ..gen.config import TileConfig
from ..gen.faultmodel import SITE_CLASSES
from ..gen.layer import LayerConfig
from ..gen.manifest import read_manifest, simulation_sources

__all__ = ["FAULT_BUILD_ARGS", "build_fault_engine", "rtl_fault_campaign", "TESTBENCHES"]

#: The campaign's testbench module per manifest kind.
TESTBENCHES = {"layer": "winogen.sim.tb_faults", "tile": "winogen.sim.tb_tile_faults"}

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
    if isinstance(engine, (LayerConfig, TileConfig)):
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
        raise ValueError(f"engine must be a binary layer or tile engine whose manifest lists "
                         f"fault_sites, not {manifest.get('name')!r} "
                         f"(kind {manifest.get('kind')!r})")
    sources = simulation_sources(jpath.parent, manifest)
    front = tuple(LAYER_BUILD_ARGS) if manifest["kind"] == "layer" else ()
    handle = vbuild.build(sources, manifest["top"], build_args=front + FAULT_BUILD_ARGS)
    return handle, jpath


def rtl_fault_campaign(engine, injections, seed=1, *, classes=None, stall=0.1, check=True,
                       report=None, workdir=None):
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
        Folder for the simulation's logs (kept); a temporary folder otherwise.

    Returns
    -------
    dict
        ``injections``, ``layers`` (tile engines: ``batches`` and ``tiles``), ``flipped`` (flips that happened), ``agree`` and
        ``disagree`` (injections whose beat equals / differs from the model's),
        ``by_class`` (per class: ``injections``, ``masked``, ``sdc``, ``detected``),
        ``totals``, ``seconds`` (the simulation's wall time, build excluded),
        ``build_seconds``.

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
        bad = [k for k in classes if k not in SITE_CLASSES]
        if not classes or bad:
            raise ValueError(f"classes must be site classes ({', '.join(SITE_CLASSES)}), "
                             f"not {classes!r}")
    handle, jpath = build_fault_engine(engine)
    kind = read_manifest(jpath)["kind"]
    if classes is not None:
        listed = read_manifest(jpath)["fault_sites"]["classes"]
        absent = [k for k in classes if k not in listed]
        if absent:
            raise ValueError(f"classes must be among this engine's fault sites "
                             f"({', '.join(listed)}), not {absent!r}")
    keep = workdir is not None
    folder = Path(workdir) if keep else Path(tempfile.mkdtemp(prefix="winogen-faults-"))
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "summary.json"
    env = {"WINOGEN_MANIFEST": str(jpath), "WINOGEN_FAULT_INJECTIONS": str(injections),
           "WINOGEN_FAULT_SEED": str(seed), "WINOGEN_FAULT_STALL": repr(float(stall)),
           "WINOGEN_FAULT_REPORT": str(out), "WINOGEN_FAULT_CHECK": "1" if check else "0"}
    if classes is not None:
        env["WINOGEN_FAULT_CLASSES"] = ",".join(classes)
    try:
        vbuild.run(handle, TESTBENCHES[kind], testcase="fault_campaign", seed=seed,
                   test_dir=folder / "sim" if keep else None, extra_env=env)
        summary = json.loads(out.read_text())
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    summary["build_seconds"] = round(handle.seconds, 1)
    if report is not None:
        Path(report).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
