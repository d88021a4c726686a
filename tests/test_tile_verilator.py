"""Emitted tile-engine Verilog under Verilator: lint, bit-exactness, throughput, latency, reset.

Each configuration is generated with the CLI's own code path, linted with
``verilator --lint-only -Wall``, built once into its own cached folder, and
run through the cocotb testbench :mod:`winogen.sim.tb_tile`, which compares
every output with the fixed-point golden model.
"""

import json

import pytest

from winogen.gen.config import TileConfig
from winogen.hw.generate import generate_tile, simulation_sources
from winogen.sim import build as vbuild

pytestmark = pytest.mark.verilator

# The matrix: F(2,3), F(4,3) with both presets, F(6,3), F(2,5), F(4,2),
# each at 4-, 8- and 12-bit widths; plus the direct baseline and option variants.
SIZES = [(2, 3, "lavin"), (4, 3, "lavin"), (4, 3, "barabasz"), (6, 3, "default"),
         (2, 5, "default"), (4, 2, "default")]
CONFIGS = [TileConfig(m, r, w, w, preset=p) for m, r, p in SIZES for w in (4, 8, 12)]
CONFIGS += [
    TileConfig(4, 3, 8, 8, preset="lavin", filter_transform="online"),
    TileConfig(2, 3, 8, 6, preset="lavin", keep_scale=True),
    TileConfig(4, 3, 8, 8, preset="barabasz", input_stages=1, pe_stages=0, output_stages=1,
               descale_stages=0, filter_transform="online", filter_stages=0),
    TileConfig(2, 3, 8, 8, algorithm="direct"),
    TileConfig(4, 3, 4, 4, algorithm="direct", pe_stages=1, output_stages=1),
    # ECP5 MULT18X18D PEs (through the simulation model), each register mapping:
    # input+output in the block, plus a fabric stage, output only, and none.
    TileConfig(2, 3, 8, 8, preset="lavin", dsp="ecp5"),
    TileConfig(4, 3, 8, 8, preset="lavin", dsp="ecp5", pe_stages=3),
    TileConfig(2, 3, 8, 8, algorithm="direct", dsp="ecp5", pe_stages=1),
    TileConfig(2, 3, 6, 6, preset="lavin", dsp="ecp5", pe_stages=0, output_stages=3),
    # Nexus MULT18X18 (exact F(2,3): 10-bit operands) and MULT9X9 (9-bit quantized
    # F(4,3)) PEs through their simulation model, each register mapping.
    TileConfig(2, 3, 8, 8, preset="lavin", dsp="nexus"),
    TileConfig(2, 3, 8, 8, preset="lavin", dsp="nexus", pe_stages=1),
    TileConfig(4, 3, 8, 8, preset="lavin", wino_width=9, wino_scales="tapwise", dsp="nexus",
               pe_stages=3),
    TileConfig(4, 3, 8, 8, preset="lavin", wino_width=9, wino_scales="tapwise", dsp="nexus",
               pe_stages=0, output_stages=3),
]


def _id(cfg):
    extra = []
    if cfg.filter_transform == "online" and cfg.algorithm == "winograd":
        extra.append("online")
    if cfg.keep_scale:
        extra.append("keep")
    if cfg.latency < 5 or cfg.dsp != "inferred":
        extra.append(f"lat{cfg.latency}")
    preset = "" if cfg.algorithm == "direct" else f"_{cfg.preset}"
    return cfg.module_name + preset + "".join("_" + e for e in extra)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = {}

    def get(cfg):
        key = _id(cfg)
        if key not in cache:
            out = tmp_path_factory.mktemp(key)
            vpath, jpath, manifest = generate_tile(cfg, out)
            sources = simulation_sources(out, manifest)
            vbuild.lint(sources, manifest["top"])
            handle = vbuild.build(sources, manifest["top"])
            cache[key] = (handle, jpath, manifest)
        return cache[key]
    return get


@pytest.mark.parametrize("cfg", CONFIGS, ids=_id)
def test_tile_engine_bit_exact_under_verilator(cfg, built):
    handle, manifest_path, manifest = built(cfg)
    assert manifest["latency"] == cfg.latency
    vbuild.run(handle, "winogen.sim.tb_tile", seed=7,
               extra_env={"WINOGEN_MANIFEST": str(manifest_path), "WINOGEN_TILES": "40"})
