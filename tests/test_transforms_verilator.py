"""Engines built from given transforms (``--transforms FILE.json``) under Verilator.

An approximate set is not a convolution, so these engines check the model of what the
hardware computes (tile by tile, the scale removed by a shift that floors) rather than
the correlation: the tile testbench compares every output with ``TileModel``, the layer
run with ``layer_golden`` (``winograd_conv2d`` on the engine's tile grid).
"""

from fractions import Fraction

import numpy as np
import pytest

from winogen.gen.config import LayerConfig, TileConfig
from winogen.gen.layer import LayerRun, layer_golden
from winogen.gen.toomcook import ToomCook
from winogen.hw.generate import generate_tile, simulation_sources
from winogen.sim import build as vbuild
from winogen.sim.driver import run_layer

pytestmark = pytest.mark.verilator


def approximate_f23():
    """Lavin's F(2,3) with one entry of G moved by 1/8: dyadic, so D stays a power of 2."""
    M = ToomCook(2, 3, preset="lavin").matrices("G")
    G = [list(row) for row in M.G]
    G[1][0] += Fraction(1, 8)
    return M.AT, G, M.BT


def test_approximate_tile_engine_matches_its_model(tmp_path):
    cfg = TileConfig(2, 3, 8, 8, given_transforms=approximate_f23())
    assert not cfg.toomcook.exact and cfg.hardware.denominator == 8
    vpath, jpath, manifest = generate_tile(cfg, tmp_path)
    assert manifest["algorithm"]["transforms"]["exact"] is False
    sources = simulation_sources(tmp_path, manifest)
    vbuild.lint(sources, manifest["top"])
    handle = vbuild.build(sources, manifest["top"])
    vbuild.run(handle, "winogen.sim.tb_tile", seed=3,
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_TILES": "60"})


def test_approximate_layer_engine_matches_its_model():
    cfg = LayerConfig(TileConfig(2, 3, 8, 8, given_transforms=approximate_f23()), max_height=9,
                      max_width=9, max_cin=3, max_cout=4, p_in=2, p_out=2, output_width=8)
    rng = np.random.default_rng(5)
    for run, x, w in (
            (LayerRun(7, 9, 3, 4, 1, shift=9), rng.integers(-128, 128, (3, 7, 9)),
             rng.integers(-128, 128, (4, 3, 3, 3))),
            # extreme values: every activation and weight at a bound
            (LayerRun(5, 6, 3, 3, 0, shift=12), np.full((3, 5, 6), -128),
             np.where(rng.random((3, 3, 3, 3)) < 0.5, -128, 127))):
        y, _ = run_layer(cfg, x, w, padding=run.padding, shift=run.shift, stall=0.3, seed=1)
        expect = layer_golden(cfg, run, x, w)
        assert np.array_equal(y, expect)
        # ...and it is not the correlation (the set is approximate).
        exact = layer_golden(LayerConfig(TileConfig(2, 3, 8, 8, preset="lavin"), max_height=9,
                                         max_width=9, max_cin=3, max_cout=4, p_in=2, p_out=2,
                                         output_width=8), run, x, w)
        assert not np.array_equal(expect, exact)


def test_learned_transforms_on_a_quantized_layer_engine():
    """A learned-transform file (flex matrices on their grid, moved off the algorithm) on a
    9-bit tap-wise Winograd domain: bit-exact against the golden model, random stalls."""
    from winogen.nets.wa import FlexTransforms
    flex = FlexTransforms(ToomCook(4, 3, preset="lavin"), bits=4, width=9)
    moved = {k: v.copy() for k, v in flex.initial.items()}
    moved["G"][3, 1] += 3 / flex.grid
    moved["BT"][2, 3] -= 2 / flex.grid
    moved["AT"][1, 4] += 5 / flex.grid
    tile = TileConfig(4, 3, 8, 8, given_transforms=flex.given(moved), wino_width=9,
                      wino_scales="tapwise")
    assert not tile.toomcook.exact
    cfg = LayerConfig(tile, max_height=9, max_width=9, max_cin=3, max_cout=4, p_in=2, p_out=2,
                      output_width=8)
    rng = np.random.default_rng(9)
    for run, x, w in (
            (LayerRun(9, 7, 3, 4, 1, shift=6), rng.integers(-128, 128, (3, 9, 7)),
             rng.integers(-128, 128, (4, 3, 3, 3))),
            (LayerRun(6, 6, 2, 3, 0, shift=8), np.full((2, 6, 6), 127),
             np.where(rng.random((3, 2, 3, 3)) < 0.5, -128, 127))):
        y, _ = run_layer(cfg, x, w, padding=run.padding, shift=run.shift, stall=0.3, seed=2)
        assert np.array_equal(y, layer_golden(cfg, run, x, w))


def test_learned_transforms_with_calibrated_shifts_classify_as_trained():
    """What Winograd-aware flex training computes is what the emitted engine computes: a
    learned set whose Bᵀ row content changed (so the calibrated shifts moved with it,
    ``FlexTransforms.shifts``) on the reference network, every layer bit-exact under
    Verilator and the int8 logits equal to the training forward pass's."""
    from winogen.gen.toomcook import MatrixToomCook
    from winogen.nets.digits import load_digits_int8, split
    from winogen.nets.netfile import load_network
    from winogen.nets.train import NETWORK, load_weights
    from winogen.nets.wa import (FlexTransforms, calibrated_shifts, engine_layers_of,
                                 forward_engine, winograd_statistics)
    from winogen.sim.network import network_requirements, run_network
    floats, ints = load_weights()
    layers, fc_shape = engine_layers_of(floats, ints)
    x, y = load_digits_int8()
    x_train, _, x_test, _ = split(x, y)
    tc = ToomCook(2, 3, preset="lavin")
    shifts = calibrated_shifts(*winograd_statistics(tc.hardware(), floats, layers, fc_shape,
                                                    x_train[:20]), 9)
    flex = FlexTransforms(tc, bits=4, width=9, scales=shifts)
    moved = {k: v.copy() for k, v in flex.initial.items()}
    moved["BT"][1, 1] += 1 / flex.grid          # row 1's content falls: its shifts move
    moved["G"][3, 1] -= 2 / flex.grid
    given = flex.given(moved)
    final = flex.shifts(MatrixToomCook(*given).hardware())
    assert final != shifts
    tile = TileConfig(2, 3, 8, 8, given_transforms=given, wino_width=9, wino_scales=final)
    net = list(load_network(NETWORK).layers)
    images = x_test[:3]
    config = LayerConfig(tile, p_in=4, p_out=4, pixels_per_beat=4, filters_per_beat=4,
                         output_width=8, **network_requirements(net, images.shape[1:], 3))
    result = run_network(config, net, images, stall=0.1)
    assert [layer["mismatches"] for layer in result["layers"]] == [0] * len(net)
    _, logits = forward_engine(dict(floats, **moved), images, layers, fc_shape, flex)
    assert np.array_equal(result["outputs"].reshape(len(images), -1), logits)
