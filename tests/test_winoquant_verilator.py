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
