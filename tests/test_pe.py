"""PE kinds (winogen.gen.pe): the registry and the properties engines ask instead of names."""

import numpy as np
import pytest

from winogen.gen.bounds import Interval
from winogen.gen.config import LayerConfig, TileConfig, config_class, pipeline_stages
from winogen.gen.layer import LayerRun, layer_golden
from winogen.gen.models import direct_conv2d
from winogen.gen.pe import (PE_KINDS, MultiplyPE, PEKind, pe_kind, register_pe_kind,
                            unregister_pe_kind)
from winogen.gen.rns import RNSTileConfig


def test_registered_kinds_and_their_properties():
    mul, adder, rns = (pe_kind(name) for name in ("mul", "adder", "rns"))
    assert mul.bilinear and mul.uses_multiplier and not mul.masks_lanes and mul.weight_signed
    assert not adder.bilinear and adder.masks_lanes and not adder.uses_multiplier
    assert rns.modular and rns.bilinear and not rns.masks_lanes and not rns.weight_signed
    assert not mul.modular and not adder.modular
    assert config_class("mul") is TileConfig and config_class("adder") is TileConfig
    assert config_class("rns") is RNSTileConfig


def test_config_class_of_kind_is_enforced():
    with pytest.raises(ValueError, match="^pe='rns' engines are described by a RNSTileConfig, "
                                         "not a TileConfig$"):
        TileConfig(2, 3, pe="rns")
    assert RNSTileConfig(2, 3).pe_kind is pe_kind("rns")


def test_pipeline_stages_dispatch_on_config_class():
    assert pipeline_stages(1, "rns") == RNSTileConfig.pipeline_stages(1)
    assert "filter_stages" not in pipeline_stages(3, "rns")
    assert pipeline_stages(3, "adder") == TileConfig.pipeline_stages(3)
    with pytest.raises(ValueError, match="^pe must be one of"):
        pipeline_stages(1, "nope")


def test_layer_properties_come_from_the_tile():
    mul = LayerConfig(tile=TileConfig(2, 3), max_cin=4)
    adder = LayerConfig(tile=TileConfig(2, 3, pe="adder"), max_cin=4)
    rns = LayerConfig(tile=RNSTileConfig(2, 3, channels=4), max_cin=4)
    assert (mul.masks_lanes, adder.masks_lanes, rns.masks_lanes) == (False, True, False)
    assert (mul.weight_signed, adder.weight_signed, rns.weight_signed) == (True, True, False)
    assert rns.filter_transform == "offline" and rns.accumulator_intervals[0].lo == 0
    assert rns.stored_weight == (4 * 16, 8) and rns.multipliers == 4 * 16
    with pytest.raises(ValueError, match="tile.channels of an RNS layer must equal max_cin"):
        LayerConfig(tile=RNSTileConfig(2, 3), max_cin=4)
    for layer in (mul, adder, rns):
        back = LayerConfig.from_json(layer.to_json())
        assert type(back.tile) is type(layer.tile) and back.to_json() == layer.to_json()


class _MaxPE(PEKind):
    """A toy kind that is bilinear in nothing: p = max(a, b)."""
    name = "toymax_unit"   # not tests/toy_pe.py's kind, which stays registered in its process
    bilinear = False

    def combine(self, a, b):
        return np.maximum(np.asarray(a), np.asarray(b))

    def output_interval(self, a, b):
        return Interval(max(a.lo, b.lo), max(a.hi, b.hi))


@pytest.fixture
def toy_kind():
    kind = register_pe_kind(_MaxPE())
    yield kind
    unregister_pe_kind(kind.name)


def test_register_pe_kind_reaches_configs_models_and_layer_golden(toy_kind):
    assert PE_KINDS["toymax_unit"] is toy_kind
    cfg = TileConfig(2, 3, 4, 4, algorithm="direct", pe="toymax_unit")
    rng = np.random.default_rng(1)
    d = rng.integers(-8, 8, (5, 4, 4))
    g = rng.integers(-8, 8, (5, 3, 3))
    y = cfg.golden_model()(d, g)
    windows = np.lib.stride_tricks.sliding_window_view(d, (3, 3), axis=(-2, -1))
    assert (y == np.maximum(windows, g[:, None, None]).sum(axis=(-2, -1))).all()
    layer = LayerConfig(tile=cfg, max_height=6, max_width=6, max_cin=2, max_cout=2)
    assert layer.masks_lanes
    run = LayerRun(6, 6, 2, 2, padding=1)
    x = rng.integers(-8, 8, (2, 6, 6))
    w = rng.integers(-8, 8, (2, 2, 3, 3))
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    expect = np.zeros((2, 6, 6), dtype=np.int64)
    for o in range(2):
        for i in range(6):
            for j in range(6):
                expect[o, i, j] = np.maximum(xp[:, i:i + 3, j:j + 3], w[o]).sum()
    assert (layer_golden(layer, run, x, w) == expect).all()


def test_register_pe_kind_refuses_bad_kinds():
    with pytest.raises(ValueError, match="^kind.name must be a new PE kind, not 'mul'"):
        register_pe_kind(MultiplyPE())
    with pytest.raises(TypeError, match="^kind must be a PEKind instance"):
        register_pe_kind("mul")
    with pytest.raises(ValueError, match="^name must be a registered PE kind"):
        unregister_pe_kind("nope")


def test_layer_golden_of_mul_is_the_correlation():
    layer = LayerConfig(tile=TileConfig(2, 3), max_height=5, max_width=5, max_cin=2, max_cout=2)
    rng = np.random.default_rng(2)
    x, w = rng.integers(-128, 128, (2, 5, 5)), rng.integers(-128, 128, (2, 2, 3, 3))
    run = LayerRun(5, 5, 2, 2, padding=1)
    assert (layer_golden(layer, run, x, w) == direct_conv2d(x, w, padding=1)).all()


def test_stored_filters_follow_the_weight_format():
    rng = np.random.default_rng(4)
    w = rng.integers(-128, 128, (2, 3, 3, 3))
    offline, online = TileConfig(2, 3), TileConfig(2, 3, filter_transform="online")
    direct = TileConfig(2, 3, algorithm="direct")
    assert (offline.stored_filters(w) == offline.golden_model().filter_transform(w)).all()
    assert (online.stored_filters(w) == w).all() and (direct.stored_filters(w) == w).all()
    rns = RNSTileConfig(2, 3, channels=3)
    layer = LayerConfig(tile=rns, max_cin=3)
    assert layer.weight_residues(w).shape == (2, 3, 4 * 16)
    assert (layer.weight_residues(w) < max(rns.moduli)).all()
    with pytest.raises(ValueError, match=r"^filter values must lie in \[-128, 127\]"):
        direct.stored_filters(w * 2)
