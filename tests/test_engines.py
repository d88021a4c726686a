"""The engine registry (winogen.hw.engines) and the manifest fields every engine shares."""

import dataclasses
import gc
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable

from winogen.gen.config import TileConfig
from winogen.gen.layer import LayerConfig
from winogen.gen.manifest import HANDSHAKE, SCHEMA_VERSION
from winogen.gen.rns import RNSTileConfig
from winogen.hw import engines
from winogen.hw.generate import generate_tile, tile_manifest
from winogen.hw.layer import (DirectConv, DirectCore, RNSConv, RNSCore, WinogradConv, WinogradCore,
                              core_latency, layer_manifest, make_layer_engine)
from winogen.hw.rns import RNSTile, rns_tile_manifest
from winogen.hw.tile import DirectTile, WinogradTile, make_tile_engine

TILE = TileConfig(2, 3, 8, 8)
DIRECT = TileConfig(2, 3, 8, 8, algorithm="direct")
RNS = RNSTileConfig(2, 3, moduli="auto", redundant_moduli=1)
SMALL = dict(max_height=6, max_width=6, max_cin=2, max_cout=2)


def test_tile_dispatch_by_configuration_type():
    assert type(make_tile_engine(TILE)) is WinogradTile
    assert type(make_tile_engine(DIRECT)) is DirectTile
    assert type(make_tile_engine(RNS)) is RNSTile
    assert engines.engine_for(RNS).tile_manifest is rns_tile_manifest
    assert engines.engine_for(TILE).tile_manifest is tile_manifest
    assert {TileConfig, RNSTileConfig} <= set(engines.registered_types())


def test_layer_dispatch_by_tile_type():
    cases = [(LayerConfig(TILE, **SMALL), WinogradConv, WinogradCore),
             (LayerConfig(DIRECT, **SMALL), DirectConv, DirectCore),
             (LayerConfig(dataclasses.replace(RNS, channels=2), **SMALL), RNSConv, RNSCore)]
    for config, engine, core in cases:
        assert engines.layer_engine_class(config) is engine
        assert type(make_layer_engine(config)) is engine and engine.core_class is core
        assert core_latency(config) == core.pipeline_latency(config)


def test_unregistered_configuration_is_refused_with_one_line():
    with pytest.raises(TypeError, match=r"config must be a TileConfig or RNSTileConfig "
                                        r"\(or a LayerConfig of one\), not 'tile'"):
        make_tile_engine("tile")


def test_a_registered_subclass_dispatches_to_its_own_entry(tmp_path):
    """A new configuration type is one register_engine call: generate_tile then uses its
    component and manifest builder without any change to the engines."""

    @dataclasses.dataclass(frozen=True)
    class ToyConfig(TileConfig):
        pass

    toy = ToyConfig(2, 3, 8, 8, name="toy")
    assert engines.engine_for(toy).config_type is TileConfig   # inherited from its base

    def toy_manifest(config, component):
        return {**tile_manifest(config, component), "toy": True}

    engines.register_engine(ToyConfig, tile=WinogradTile, tile_manifest=toy_manifest)
    try:
        assert engines.engine_for(toy).tile_manifest is toy_manifest
        with pytest.raises(ValueError, match="with a layer engine"):
            engines.layer_engine_class(LayerConfig(toy, **SMALL))
        _, jpath, manifest = generate_tile(toy, tmp_path)
        assert manifest["toy"] is True and jpath.is_file()
    finally:
        del engines._REGISTRY[ToyConfig]
    with pytest.raises(ValueError, match="layer_engine and layer_manifest must be given together"):
        engines.register_engine(ToyConfig, tile=WinogradTile, tile_manifest=toy_manifest,
                                layer_engine=lambda c: WinogradConv)


def test_every_manifest_shares_the_common_fields():
    manifests = [tile_manifest(TILE, make_tile_engine(TILE)),
                 rns_tile_manifest(RNS, make_tile_engine(RNS))]
    for tile in (TILE, dataclasses.replace(RNS, channels=2)):
        layer = LayerConfig(tile, **SMALL)
        manifests.append(layer_manifest(layer, make_layer_engine(layer)))
    for manifest in manifests:
        assert manifest["schema"] == SCHEMA_VERSION and manifest["handshake"] == HANDSHAKE
        assert manifest["top"] == manifest["name"] and manifest["verilog"] == [
            manifest["name"] + ".v"]
        assert {"ports", "parameters", "tools", "lint_waivers", "kind"} <= set(manifest)
    assert "rns" in manifests[1] and "rns" in manifests[3] and "rns" not in manifests[2]


@pytest.mark.parametrize("make", [lambda: DirectTile(TILE), lambda: WinogradTile(DIRECT),
                                  lambda: WinogradConv(LayerConfig(DIRECT, **SMALL)),
                                  lambda: RNSConv(LayerConfig(TILE, **SMALL))])
def test_refused_engine_leaves_no_unused_warning(make):
    gc.collect()            # earlier tests' unused components warn now, not below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="must be"):
            make()
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, UnusedElaboratable)]
