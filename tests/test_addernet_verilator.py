"""AdderNet tile engines as emitted Verilog: bit-exact under Verilator, and no multipliers in Yosys.

Same path as test_tile_verilator.py: generated with the CLI's code path, linted,
built, and run through :mod:`winogen.sim.tb_tile` (random stalls, extremes,
throughput, latency, reset), which rebuilds the configuration and the golden
:class:`~winogen.gen.fixedpoint.TileModel` from the manifest.
"""

import pytest

from winogen.fpga.yosys import cell_counts
from winogen.gen.config import TileConfig
from winogen.hw.generate import generate_tile
from winogen.sim import build as vbuild

CONFIGS = [
    TileConfig(2, 3, 8, 8, pe="adder", adder_matrices="standard"),
    TileConfig(2, 3, 8, 8, pe="adder", adder_matrices="balanced"),
    TileConfig(2, 3, 8, 8, pe="adder", algorithm="direct"),
]


def _id(cfg):
    return cfg.module_name


@pytest.mark.verilator
@pytest.mark.parametrize("cfg", CONFIGS, ids=_id)
def test_adder_tile_bit_exact_under_verilator(cfg, tmp_path):
    vpath, jpath, manifest = generate_tile(cfg, tmp_path)
    assert manifest["latency"] == cfg.latency and manifest["multipliers"] == 0
    vbuild.lint([vpath], manifest["top"])
    handle = vbuild.build([vpath], manifest["top"])
    vbuild.run(handle, "winogen.sim.tb_tile", seed=11,
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_TILES": "40"})


@pytest.mark.synth
@pytest.mark.parametrize("cfg", CONFIGS + [TileConfig(2, 3, 8, 8, pe="adder", filter_transform="online")],
                         ids=lambda c: c.module_name + "_" + c.filter_transform)
def test_adder_engines_have_no_multipliers(cfg, tmp_path):
    vpath, _, manifest = generate_tile(cfg, tmp_path)
    cells = cell_counts([vpath.name], manifest["top"], cwd=tmp_path)
    assert cells.get("$mul", 0) == 0 == manifest["multipliers"]
    assert cells.get("$sub", 0) + cells.get("$neg", 0) > 0
