"""Quantized Winograd-domain tile engines under Verilator, bit-exact against TileModel.

F(2,3) and F(4,3) with 8- and 9-bit Winograd domains, global and tap-wise shifts; the
testbench (:mod:`winogen.sim.tb_tile`) adds, for quantized engines, the tiles at both ends
of every ``V_ij``'s range (rounding carries, the clamp) and filters at both ends of the
widest ``U_ij``, with random stalls on every stream.
"""

import pytest

from winogen.gen.config import TileConfig
from winogen.hw.generate import generate_tile, simulation_sources
from winogen.sim import build as vbuild

pytestmark = pytest.mark.verilator

CONFIGS = [
    # 8 bits global: 15 of 16 positions' V can carry past the top (clamped).
    TileConfig(2, 3, 8, 8, wino_width=8, wino_scales="global"),
    TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise", pe_stages=1, descale_stages=0),
    TileConfig(4, 3, 8, 8, wino_width=9, wino_scales="global"),
    TileConfig(4, 3, 8, 8, wino_width=9, wino_scales="tapwise"),
    TileConfig(4, 3, 8, 8, wino_width=8, wino_scales="tapwise", preset="lavin", dsp="ecp5"),
    # Û rounded on chip after the online filter transform (D = 2: a shift).
    TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise", filter_transform="online"),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.module_name + f"_{c.preset}")
def test_quantized_tile_bit_exact_under_verilator(cfg, tmp_path):
    vpath, jpath, manifest = generate_tile(cfg, tmp_path)
    assert manifest["quantization"]["width"] == cfg.wino_width
    sources = simulation_sources(tmp_path, manifest)
    vbuild.lint(sources, manifest["top"])
    handle = vbuild.build(sources, manifest["top"])
    vbuild.run(handle, "winogen.sim.tb_tile", seed=11,
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_TILES": "40"})


# -- layer engines ------------------------------------------------------------------------

from winogen.gen.layer import LayerConfig  # noqa: E402
from winogen.hw.layer import engine_latency  # noqa: E402
from winogen.sim.driver import build_engine  # noqa: E402

LAYER_ENGINES = {
    # F(4,3) tap-wise 9 bits, P 2x2 (C_in 3: a zero lane), full-width outputs (the output
    # shift's rounding is seen in every bit).
    "q9t_wino43_p2x2": LayerConfig(
        TileConfig(4, 3, 8, 8, wino_width=9, wino_scales="tapwise"), max_height=10,
        max_width=10, max_cin=4, max_cout=4, p_in=2, p_out=2),
    # F(2,3) global 8 bits: V's rounding carries (the clamp) at 15 of 16 positions;
    # Û rounded on chip as the filters load (online, D = 2); requantized to 12 bits.
    "q8g_wino23_p2x1_online_requant": LayerConfig(
        TileConfig(2, 3, 8, 8, wino_width=8, filter_transform="online"), max_height=9,
        max_width=9, max_cin=3, max_cout=2, p_in=2, p_out=1, output_width=12,
        rounding="half_up"),
    # Raw filters stored, each transformed and rounded to Û as it is read.
    "q9t_wino23_p1x2_raw": LayerConfig(
        TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise", filter_transform="online"),
        max_height=8, max_width=8, max_cin=2, max_cout=3, p_in=1, p_out=2,
        filter_store="raw"),
    # Nexus MULT9X9 PEs (--dsp nexus) in a layer engine, through their simulation model.
    "q9t_wino23_p2x1_nexus": LayerConfig(
        TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise", dsp="nexus"),
        max_height=8, max_width=8, max_cin=3, max_cout=2, p_in=2, p_out=1),
}


def _layer(h, w, cin, cout, padding, *, shift=0, stall=0.3, seed=0, **extra):
    return dict(height=h, width=w, cin=cin, cout=cout, padding=padding, shift=shift,
                stall=stall, seed=seed, **extra)


LAYERS = {
    "q9t_wino43_p2x2": [
        _layer(9, 10, 3, 4, 1, seed=1),
        _layer(10, 10, 4, 3, 1, seed=2, pattern="extreme"),
        _layer(6, 7, 1, 2, 0, stall=0.0, seed=3),
    ],
    "q8g_wino23_p2x1_online_requant": [
        _layer(9, 8, 3, 2, 1, shift=7, seed=4),
        _layer(7, 9, 3, 2, 1, shift=9, seed=5, pattern="extreme", relu=True),
        _layer(5, 6, 1, 1, 0, shift=6, stall=0.0, seed=6),
    ],
    "q9t_wino23_p1x2_raw": [
        _layer(8, 7, 2, 3, 1, seed=7),
        _layer(8, 8, 2, 3, 1, seed=8, pattern="extreme"),
    ],
    "q9t_wino23_p2x1_nexus": [
        _layer(8, 7, 3, 2, 1, seed=9),
        _layer(8, 8, 3, 2, 1, seed=10, pattern="extreme"),
    ],
}


@pytest.mark.parametrize("name", list(LAYER_ENGINES))
def test_quantized_layer_engine_bit_exact_under_verilator(name, tmp_path):
    import json
    cfg = LAYER_ENGINES[name]
    handle, manifest_path = build_engine(cfg)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["latency"] == engine_latency(cfg)
    assert manifest["quantization"]["width"] == cfg.tile.wino_width
    assert "fault_sites" not in manifest
    cycles_out = tmp_path / "cycles.json"
    vbuild.run(handle, "winogen.sim.tb_layer", testcase="layers", seed=5,
               extra_env={"WINOGEN_MANIFEST": str(manifest_path),
                          "WINOGEN_LAYERS": json.dumps(LAYERS[name]),
                          "WINOGEN_CYCLES_OUT": str(cycles_out)})
    assert len(json.loads(cycles_out.read_text())) == len(LAYERS[name])
