"""A new PE kind in two files: the toy kind of ``toy_pe.py`` (its arithmetic and its
component) runs through the tile engine and a layer engine under Verilator, bit-exact
against its own model, with no engine, testbench or CLI module edited."""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import toy_pe
from winogen.gen.config import LayerConfig, TileConfig
from winogen.gen.layer import LayerRun, layer_golden
from winogen.hw.generate import generate_tile, simulation_sources
from winogen.sim import build as vbuild
from winogen.sim.driver import build_engine

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def toy_kind():
    toy_pe.register()


def test_toy_kind_model_is_its_own_arithmetic():
    cfg = TileConfig(2, 3, 4, 4, algorithm="direct", pe=toy_pe.NAME)
    rng = np.random.default_rng(0)
    d, g = rng.integers(-8, 8, (3, 4, 4)), rng.integers(-8, 8, (3, 3, 3))
    windows = np.lib.stride_tricks.sliding_window_view(d, (3, 3), axis=(-2, -1))
    expect = np.maximum(windows, g[:, None, None]).sum(axis=(-2, -1))
    assert (cfg.golden_model()(d, g) == expect).all()
    # the Winograd form takes the integer transforms of a kind that is not bilinear
    wino = TileConfig(2, 3, 4, 4, pe=toy_pe.NAME)
    assert wino.is_adder_winograd and wino.scale_divisor == 1


@pytest.mark.verilator
@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
def test_toy_kind_tile_engine_under_verilator(algorithm, tmp_path):
    cfg = TileConfig(2, 3, 6, 6, algorithm=algorithm, pe=toy_pe.NAME)
    _, jpath, manifest = generate_tile(cfg, tmp_path)
    sources = simulation_sources(tmp_path, manifest)
    vbuild.lint(sources, manifest["top"])
    handle = vbuild.build(sources, manifest["top"])
    vbuild.run(handle, "tb_toy_pe", testcase="extremes_and_random_with_stalls", seed=3,
               python_path=[str(TESTS)],
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_TILES": "20"})


@pytest.mark.verilator
def test_toy_kind_layer_engine_under_verilator(tmp_path):
    # P_in = 2 and C_in = 3: the second channel group has an unused lane, which a kind
    # that is not bilinear must mask (max(0, w) is not 0).
    cfg = LayerConfig(tile=TileConfig(2, 3, 5, 5, algorithm="direct", pe=toy_pe.NAME),
                      max_height=6, max_width=6, max_cin=4, max_cout=2, p_in=2, p_out=1)
    assert cfg.masks_lanes
    rng = np.random.default_rng(5)
    x = rng.integers(-16, 16, (3, 5, 6))
    w = rng.integers(-16, 16, (2, 3, 3, 3))
    run = LayerRun(5, 6, 3, 2, padding=1)
    # A fresh generation: the engine cache keys on winogen's sources, not on this test's.
    handle, jpath = build_engine(cfg, cache_dir=tmp_path)
    folder = Path(tempfile.mkdtemp(prefix="winogen-toy-"))
    try:
        np.save(folder / "x.npy", x)
        np.save(folder / "w.npy", w)
        (folder / "run.json").write_text(json.dumps(
            {"padding": 1, "shift": 0, "stall": 0.2, "seed": 1}) + "\n")
        vbuild.run(handle, "tb_toy_pe", testcase="driver", seed=1, test_dir=folder / "sim",
                   python_path=[str(TESTS)],
                   extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_DRIVER_DIR": str(folder)})
        y = np.load(folder / "y.npy", allow_pickle=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    expect = layer_golden(cfg, run, x, w)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    by_hand = np.array([[[np.maximum(xp[:, i:i + 3, j:j + 3], w[o]).sum() for j in range(6)]
                         for i in range(5)] for o in range(2)])
    assert (expect == by_hand).all()
    assert (y == expect).all()
