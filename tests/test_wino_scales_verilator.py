"""Given (calibrated) tap-wise shifts under Verilator: values beyond W bits saturate at
both ends, in the tile and the layer engines, bit-exact against the golden models."""

import numpy as np
import pytest

from winogen.gen.config import LayerConfig, TileConfig
from winogen.gen.layer import LayerRun, layer_golden
from winogen.hw.generate import generate_tile, simulation_sources
from winogen.sim import build as vbuild
from winogen.sim.driver import run_layer

pytestmark = pytest.mark.verilator


def given_f43(width=8):
    """F(4,3) lavin with every shift two (V) and one (U) below the derived tap-wise ones:
    every position's V saturates at both ends, as a calibrated scale file lets it."""
    derived = TileConfig(4, 3, 8, 8, preset="lavin", wino_width=width,
                         wino_scales="tapwise").quantization
    return (tuple(max(0, s - 2) for s in derived.v_shifts),
            tuple(s - 1 for s in derived.u_shifts))


def test_given_shifts_tile_engine(tmp_path):
    cfg = TileConfig(4, 3, 8, 8, preset="lavin", wino_width=8, wino_scales=given_f43())
    q = cfg.quantization
    assert q.clips and all(q.v_saturates_low) and all(q.v_saturates)
    vpath, jpath, manifest = generate_tile(cfg, tmp_path)
    assert manifest["quantization"]["scales"] == "given"
    sources = simulation_sources(tmp_path, manifest)
    vbuild.lint(sources, manifest["top"])
    handle = vbuild.build(sources, manifest["top"])
    vbuild.run(handle, "winogen.sim.tb_tile", seed=5,
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_TILES": "60"})


def test_given_shifts_layer_engine():
    cfg = LayerConfig(TileConfig(4, 3, 8, 8, preset="lavin", wino_width=8,
                                 wino_scales=given_f43()),
                      max_height=10, max_width=9, max_cin=3, max_cout=4, p_in=2, p_out=2,
                      output_width=8)
    rng = np.random.default_rng(4)
    for run, x, w in (
            (LayerRun(10, 9, 3, 4, 1, shift=7), rng.integers(-128, 128, (3, 10, 9)),
             rng.integers(-128, 128, (4, 3, 3, 3))),
            # extremes: every V at an end saturates
            (LayerRun(6, 6, 2, 2, 0, shift=9), np.where(rng.random((2, 6, 6)) < 0.5, -128, 127),
             np.where(rng.random((2, 2, 3, 3)) < 0.5, -128, 127))):
        y, _ = run_layer(cfg, x, w, padding=run.padding, shift=run.shift, stall=0.3, seed=3)
        assert np.array_equal(y, layer_golden(cfg, run, x, w))
