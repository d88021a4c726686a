"""Run one convolution layer on an emitted layer engine under Verilator, from NumPy arrays.

:func:`run_layer` is the user-facing driver: it generates the engine for a
:class:`~winogen.gen.layer.LayerConfig` (cached by configuration), builds it with
:mod:`winogen.sim.build` (cached by Verilog text), streams the given activations and
weights through the cocotb testbench :mod:`winogen.sim.tb_layer` in its driver mode and
returns what the hardware produced, cropped to the output map, with the measured cycles.
It asserts nothing about the values: the caller compares.

The stream formatting functions (:func:`weight_beats`, :func:`activation_beats`,
:func:`assemble_outputs`) are the engine's stream orders written once in Python; the
testbench and the Amaranth-simulator tests use them too.
"""

import functools
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..gen.layer import LayerConfig, LayerRun
from ..gen.manifest import read_manifest
from ..gen.provenance import generator_versions, source_fingerprint

__all__ = ["config_beat", "fixed_engine_weights", "sparse_stream", "complete_run", "weight_beats", "activation_beats", "assemble_outputs", "run_layer_dwm",
           "output_beats", "LAYER_BUILD_ARGS", "engine_files", "build_engine", "run_layer",
           "run_driver"]


def _check_config(config):
    if not isinstance(config, LayerConfig):
        raise TypeError(f"config must be a LayerConfig, not {config!r}")
    return config


def config_beat(run):
    """The ``config`` stream payload of ``run`` (a dict of its fields; ``relu`` only when set:
    the field exists on engines with requantization)."""
    beat = {"height": run.height, "width": run.width, "cin": run.cin, "cout": run.cout,
            "padding": run.padding, "shift": run.shift}
    if run.relu:
        beat["relu"] = 1
    return beat


def fixed_engine_weights(config, w, winograd_weights=False):
    """``(w, winograd_weights)`` to run on ``config``: as given for a programmable engine;
    for a weight-specialized one (``fixed_weights``) its own weights when ``w`` is None,
    else ``w`` after checking that it is exactly those weights."""
    c = _check_config(config)
    if not c.specialized:
        if w is None:
            raise ValueError("w must be given for an engine with a weight stream, not None")
        return w, winograd_weights
    fw = c.fixed_weights
    if w is None:
        return fw.values, fw.kind == "u"
    from ..gen.fixedweights import FixedWeights
    given = FixedWeights("u" if winograd_weights else "w", w)
    if given != fw:
        raise ValueError(f"w must be the weight-specialized engine's own weights "
                         f"({fw.kind}, shape {fw.values.shape}, sha256 {fw.sha256[:12]}), not "
                         f"{given.kind} of shape {given.values.shape}, sha256 "
                         f"{given.sha256[:12]}")
    return w, winograd_weights


def _stored_filters(c, w, winograd_weights):
    """What the engine stores of ``w``: the given ``Û`` (checked), or of raw filters
    (C_out, C_in, r, r) raw ``g``, ``U = G g Gᵀ`` or residues, as the tile's kind decides."""
    if winograd_weights:
        from ..gen.layer import check_winograd_weights
        return check_winograd_weights(c.tile, w)
    w = np.asarray(w, dtype=np.int64)
    if w.ndim != 4 or w.shape[2:] != (c.r, c.r):
        raise ValueError(f"weights must have shape (C_out, C_in, {c.r}, {c.r}), not {w.shape}")
    return c.tile.stored_filters(w)


def sparse_stream(config, w, *, winograd_weights=False):
    """The compressed weight stream (:class:`~winogen.gen.sparse.SparseWeights`) of a
    zero-skipping engine for raw filters ``w`` (C_out, C_in, r, r; the engine's ``U``
    taken of them) or, with ``winograd_weights``, its ``Û`` (C_out, C_in, n, n)."""
    from ..gen.sparse import compress
    c = _check_config(config)
    if not c.sparse:
        raise ValueError(f"sparse_stream needs a zero-skipping engine (sparse_lanes), not "
                         f"{c.module_name}")
    return compress(c, _stored_filters(c, w, winograd_weights))


def complete_run(config, run, w, *, winograd_weights=False):
    """``run`` with the fields the weights decide: a zero-skipping engine's ``entries`` and
    ``lane_map`` (:func:`sparse_stream`); ``run`` itself for other engines."""
    c = _check_config(config)
    if not c.sparse:
        return run
    from dataclasses import replace
    from ..gen.sparse import pack_lane_map
    sw = sparse_stream(c, w, winograd_weights=winograd_weights)
    return replace(run, entries=sw.entries, lane_map=pack_lane_map(c, sw.lane_map))


def weight_beats(config, w, *, winograd_weights=False):
    """Weight-stream payloads for filters ``w`` (C_out, C_in, r, r),
    ``for co: for ci in steps of filters_per_beat``.

    Each filter is raw ``r×r`` row-major, or ``U = G g Gᵀ`` (``n×n``) for a Winograd engine
    whose filter transform is offline (residues for RNS); filter ``k`` of a beat is
    ``(co, ci + k)``, zeros beyond ``C_in``. Each payload is a list of ints. With
    ``winograd_weights``, ``w`` is already the ``Û`` (C_out, C_in, n, n) of a quantized
    offline engine (:func:`winogen.gen.layer.check_winograd_weights`), sent as it is.
    """
    c = _check_config(config)
    if c.specialized:           # the weights are built in: no weight stream
        return []
    if c.sparse:                # the nonzero entries, one per lane per beat
        from ..gen.sparse import pack_entry
        sw = sparse_stream(c, w, winograd_weights=winograd_weights)
        return [[pack_entry(c, e) for e in beat] for beat in sw.beats]
    w = _stored_filters(c, w, winograd_weights)
    f = c.filters_per_beat
    cout, cin = w.shape[:2]
    groups = math.ceil(cin / f)
    flat = np.zeros((cout, groups * f, w[0, 0].size), dtype=object)
    flat[:, :cin] = w.reshape(cout, cin, -1)
    return [[int(v) for v in flat[co, g * f:(g + 1) * f].flat]
            for co in range(cout) for g in range(groups)]


def activation_beats(config, x, *, rng=None):
    """Activation-stream payloads for ``x`` (C_in, H, W):
    ``for y: for x in steps of pixels_per_beat: for g``.

    Element ``k·P_in + i`` is channel ``g·P_in + i`` of pixel ``(y, x + k)``. Lanes beyond
    ``C_in`` and pixels beyond ``W`` are zero, or random values from ``rng`` (a
    :class:`numpy.random.Generator`) to check that the engine ignores them.
    """
    c = _check_config(config)
    x = np.asarray(x, dtype=np.int64)
    cin, height, width = x.shape
    q = c.pixels_per_beat
    groups, blocks = math.ceil(cin / c.p_in), math.ceil(width / q)
    padded = np.zeros((groups * c.p_in, height, blocks * q), dtype=np.int64)
    if rng is not None:
        iv = c.tile.data_interval
        padded[:] = rng.integers(iv.lo, iv.hi + 1, padded.shape)
    padded[:cin, :, :width] = x
    # (y, block, g, pixel, lane) order
    beats = padded.reshape(groups, c.p_in, height, blocks, q).transpose(2, 3, 0, 4, 1)
    return beats.reshape(-1, q * c.p_in).tolist()


def output_beats(config, run):
    """The number of output beats of ``run``."""
    c = _check_config(config)
    return run.tile_rows(c) * run.tile_cols(c) * math.ceil(run.cout / c.p_out)


def assemble_outputs(config, run, beats):
    """The output map (C_out, H_out, W_out) from the output payloads (lists of ints).

    Beats come ``for ty: for tx: for cog``; element ``j·m·m + i·m + k`` is
    ``Y[cog·P_out + j, ty·m + i, tx·m + k]``. Edge-tile positions beyond the map and
    lanes beyond ``C_out`` are cropped.
    """
    c = _check_config(config)
    rows, cols = run.tile_rows(c), run.tile_cols(c)
    groups = math.ceil(run.cout / c.p_out)
    expected = rows * cols * groups
    if len(beats) != expected:
        raise ValueError(f"expected {expected} output beats, not {len(beats)}")
    mo = c.m
    a = np.array(beats, dtype=object).reshape(rows, cols, groups, c.p_out, mo, mo)
    # -> (cog, j, ty, i, tx, k)
    y = a.transpose(2, 3, 0, 4, 1, 5).reshape(groups * c.p_out, rows * mo, cols * mo)
    cout, hout, wout = run.output_shape(c)
    y = y[:cout, :hout, :wout]
    try:
        return y.astype(np.int64)
    except OverflowError:
        return y


# -- the Verilator driver ------------------------------------------------------------------------

#: Verilator arguments of layer-engine builds (after :data:`winogen.sim.build.DEFAULT_BUILD_ARGS`,
#: with only the top level public). Verilator's ``merge_cond`` pass, which only merges
#: adjacent ``if`` chains, is quadratic on these wide datapaths (63 of 74 s of Verilator on a
#: 576-PE engine, 8.5 s without it); the model is compiled at ``-O0`` (5x faster to compile
#: than ``-O1`` on the 17 MB of C++ of that engine; the simulation is dominated by Python).
LAYER_BUILD_ARGS = ("-fno-merge-cond", "-CFLAGS", "-O0")


#: The packages whose sources the emitted Verilog depends on (every module, subpackages too).
_GENERATOR_SOURCES = ("winogen.gen", "winogen.hw")


@functools.lru_cache(maxsize=None)
def _generator_digest():
    """Digest of everything the emitted Verilog depends on besides the configuration."""
    material = {"versions": generator_versions(),
                "sources": source_fingerprint(_GENERATOR_SOURCES)}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _engine_key(config):
    material = {"config": config.to_json(), "generator": _generator_digest()}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _generated(config, root):
    from ..gen.manifest import simulation_sources
    from ..hw.generate import generate_tile
    from ..hw.layer import generate_layer
    from .build import lint
    generate = generate_layer if isinstance(config, LayerConfig) else generate_tile
    out = Path(root) / f"{config.module_name}-{_engine_key(config)}"
    vpath, jpath = out / f"{config.module_name}.v", out / f"{config.module_name}.json"
    if not (vpath.is_file() and jpath.is_file()):
        # Generate and lint in a fresh folder, then move it into place: concurrent callers
        # see nothing or a complete, linted pair.
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".gen-", dir=out.parent))
        try:
            _, _, manifest = generate(config, tmp)
            lint(simulation_sources(tmp, manifest), manifest["top"])
            try:
                os.replace(tmp, out)
            except OSError:
                if not (vpath.is_file() and jpath.is_file()):
                    raise
                # another process won the race; its files are identical
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return vpath, jpath


def engine_files(config, *, cache_dir=None):
    """The generated and linted Verilog and manifest of ``config``, made once per configuration.

    Generation (and ``verilator --lint-only -Wall``) runs once per configuration and version
    of the generator (every source file of :mod:`winogen.gen` and :mod:`winogen.hw`,
    subpackages included, and the tool versions are part of the key; see
    :func:`winogen.gen.provenance.source_fingerprint`).

    Parameters
    ----------
    config : LayerConfig or tile configuration
        A layer engine, or a tile engine (:func:`winogen.hw.generate.generate_tile`).
    cache_dir : path, optional

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        Verilog file and manifest, under ``<cache>/engines`` (``cache_dir`` or the parent of
        :func:`winogen.sim.build.cache_root`).

    Raises
    ------
    winogen.sim.build.LintError
        If the emitted Verilog does not lint clean.
    """
    from ..gen.config.base import TileConfigBase
    from .build import cache_root
    if not isinstance(config, TileConfigBase):
        _check_config(config)
    root = Path(cache_dir) if cache_dir is not None else cache_root().parent / "engines"
    return _generated(config, str(root.resolve()))


def build_engine(config, *, cache_dir=None):
    """Generate (cached), lint and build (cached) the engine; return ``(handle, manifest_path)``."""
    from . import build as vbuild
    from ..gen.manifest import simulation_sources
    vpath, jpath = engine_files(config, cache_dir=cache_dir)
    manifest = read_manifest(jpath, require=("top",))
    sources = simulation_sources(vpath.parent, manifest)
    return vbuild.build(sources, manifest["top"], build_args=LAYER_BUILD_ARGS), jpath


def run_layer(config, x, w, *, padding=0, shift=0, relu=False, stall=0.0, seed=0,
              workdir=None, winograd_weights=False):
    """Run one layer on the emitted engine for ``config`` under Verilator.

    Parameters
    ----------
    config : LayerConfig
    x : array_like, shape (C_in, H, W)
        Activations (integers in the data width).
    w : array_like, shape (C_out, C_in, r, r), or None
        Raw weights (integers in the weight width); transformed here when the engine
        expects offline-transformed filters. A weight-specialized engine
        (``fixed_weights``) takes None (its own weights) or exactly its weights.
    padding, shift : int
        Run-time padding (0 or ``r // 2``) and requantization shift.
    relu : bool
        Clamp the requantized outputs at 0 (engines with requantization).
    stall : float
        Probability of random gaps on the input streams and of back-pressure on the
        output stream, each cycle.
    seed : int
        Seed of the stall patterns.
    workdir : path, optional
        Folder for the run (arrays, logs); a temporary folder by default, removed after.
    winograd_weights : bool
        ``w`` is the ``Û`` (C_out, C_in, n, n) the weight stream carries (quantized offline
        engines: pruned or learned Winograd-domain weights), not raw filters.

    Returns
    -------
    y : numpy.ndarray, shape (C_out, H_out, W_out)
        What the hardware produced.
    cycles : dict
        Measured cycles: ``total`` (config beat to last output beat), each stream's span
        (``weights``, ``activations``; ``compute`` from the scheduler's start to the last
        output beat), the ideal steps ``compute_ideal`` and the model's ``sequence_model``.

    Raises
    ------
    ValueError
        If the arrays do not fit the engine (shape, maxima, value ranges).
    RuntimeError
        If the engine flags the layer (``status.errors``), which the checks above exclude.
    AssertionError
        If the simulation fails (e.g. a stream protocol violation or a missing output).
    """
    c = _check_config(config)
    w, winograd_weights = fixed_engine_weights(c, w, winograd_weights)
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 3 or w.ndim != 4:
        raise ValueError(f"x must be (C_in, H, W) and w (C_out, C_in, r, r), not {x.shape} "
                         f"and {w.shape}")
    run = complete_run(c, LayerRun(x.shape[1], x.shape[2], x.shape[0], w.shape[0], padding,
                                   shift, relu), w, winograd_weights=winograd_weights).check(c)
    checks = [("x", x, c.tile.data_interval)]
    if winograd_weights:
        from ..gen.layer import check_winograd_weights
        w = check_winograd_weights(c.tile, w, (run.cout, run.cin))
    else:
        if w.shape[1:] != (run.cin, c.r, c.r):
            raise ValueError(f"w must have shape ({run.cout}, {run.cin}, {c.r}, {c.r}), not {w.shape}")
        checks.append(("w", w, c.tile.weight_interval))
    for name, values, iv in checks:
        if values.size and (values.min() < iv.lo or values.max() > iv.hi):
            raise ValueError(f"{name} must lie in [{iv.lo}, {iv.hi}] for this engine, not "
                             f"[{values.min()}, {values.max()}]")

    def write(folder):
        np.save(folder / "x.npy", x.astype(np.int64))
        np.save(folder / "w.npy", w.astype(np.int64))

    def read(folder):
        cycles = json.loads((folder / "cycles.json").read_text())
        errors = cycles.pop("errors")
        if errors:
            raise RuntimeError(f"the engine flagged the layer as invalid (status.errors = "
                               f"{errors:#b}, bits as in winogen.gen.layer.RUN_ERRORS)")
        return np.load(folder / "y.npy", allow_pickle=False), cycles

    params = {"padding": padding, "shift": shift, "relu": bool(relu), "stall": stall,
              "seed": seed, "winograd_weights": bool(winograd_weights)}
    return run_driver(c, "driver", params, write, read, seed=seed, workdir=workdir)


def run_driver(config, testcase, params, write, read, *, seed=0, workdir=None):
    """Build the engine (cached), fill a run folder and run a ``tb_layer`` driver testcase.

    ``write(folder)`` saves the arrays, ``params`` goes to ``run.json``, and
    ``read(folder)``'s result is returned once the simulation ends. A temporary folder
    (``workdir`` None) is removed afterwards.
    """
    from . import build as vbuild
    handle, jpath = build_engine(config)
    keep = workdir is not None
    folder = Path(workdir) if keep else Path(tempfile.mkdtemp(prefix="winogen-run-"))
    folder.mkdir(parents=True, exist_ok=True)
    write(folder)
    (folder / "run.json").write_text(json.dumps(params) + "\n")
    try:
        vbuild.run(handle, "winogen.sim.tb_layer", testcase=testcase, seed=seed,
                   test_dir=folder / "sim",
                   extra_env={"WINOGEN_MANIFEST": str(jpath),
                              "WINOGEN_DRIVER_DIR": str(folder)})
        return read(folder)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def run_layer_dwm(config, x, w, *, stride=1, padding=0, shift=0, relu=False, stall=0.0,
                  seed=0, workdir=None):
    """Run a layer of any kernel size and stride 1 or 2 on the engine (the Decomposable
    Winograd Method, :mod:`winogen.gen.dwm`).

    The layer's pieces are stacked as input channels (:func:`~winogen.gen.dwm.dwm_layer`) and
    run as one unpadded ``r × r`` layer of ``pieces·C_in`` channels, so the engine sums the
    pieces in its channel accumulation and requantizes once.

    Parameters
    ----------
    config : LayerConfig
    x : array_like, shape (C_in, H, W)
    w : array_like, shape (C_out, C_in, k, k)
        Any ``k``.
    stride : int
        1 or 2.
    padding : int
        Any non-negative amount (the stacked input carries it; the engine runs unpadded).
    shift, relu, stall, seed, workdir
        As in :func:`run_layer`.

    Returns
    -------
    y : numpy.ndarray, shape (C_out, H_out, W_out)
    cycles : dict
        As in :func:`run_layer`, plus ``pieces`` and ``stacked_cin`` (the channels the
        engine ran).
    """
    from ..gen.dwm import dwm_layer
    c = _check_config(config)
    if not c.tile.pe_kind.bilinear:
        raise ValueError(f"the Decomposable Winograd Method needs a bilinear PE (a zero tap "
                         f"must contribute nothing, which -|x - w| does not), not "
                         f"pe={c.tile.pe!r}")
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 3 or w.ndim != 4:
        raise ValueError(f"x must be (C_in, H, W) and w (C_out, C_in, k, k), not {x.shape} "
                         f"and {w.shape}")
    xs, ws, pieces = dwm_layer(x, w, stride=stride, padding=padding, engine_r=c.r)
    if xs.shape[0] > c.max_cin:
        raise ValueError(f"a {w.shape[2]}x{w.shape[2]} stride-{stride} layer of {x.shape[0]} "
                         f"input channels runs as {len(pieces)} pieces, {xs.shape[0]} channels: "
                         f"more than this engine's max_cin = {c.max_cin}")
    y, cycles = run_layer(c, xs, ws, padding=0, shift=shift, relu=relu, stall=stall,
                          seed=seed, workdir=workdir)
    cycles.update(pieces=len(pieces), stacked_cin=int(xs.shape[0]))
    return y, cycles
