"""AdderNet engines as emitted Verilog: bit-exact under Verilator, and no multipliers in Yosys.

The layer engines' Verilator tests are in test_layer_verilator.py (same engine
fixture and testbench as the multiply layer engines).

Same path as test_tile_verilator.py: generated with the CLI's code path, linted,
built, and run through :mod:`winogen.sim.tb_tile` (random stalls, extremes,
throughput, latency, reset), which rebuilds the configuration and the golden
:class:`~winogen.gen.fixedpoint.TileModel` from the manifest.
"""

import pytest

from winogen.fpga.synth import synth
from winogen.fpga.yosys import cell_counts
from winogen.gen.config import TileConfig
from winogen.gen.layer import LayerConfig
from winogen.hw.generate import generate_tile
from winogen.hw.layer import generate_layer
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


LAYER_CONFIGS = [
    # the smallest layer engines (synthesis is slow); P_in = 2 includes the lane masks
    LayerConfig(TileConfig(2, 3, 4, 4, pe="adder", algorithm="direct"), max_height=4,
                max_width=4, max_cin=2, max_cout=1, p_in=2),
    LayerConfig(TileConfig(2, 3, 4, 4, pe="adder", adder_matrices="balanced"), max_height=4,
                max_width=4, max_cin=2, max_cout=1, p_in=2),
]


@pytest.mark.synth
@pytest.mark.parametrize("cfg,target", [(LAYER_CONFIGS[0], "ecp5"), (LAYER_CONFIGS[1], "xilinx7")],
                         ids=["direct-ecp5", "winograd-xilinx7"])
def test_adder_layer_engines_synthesize_without_multipliers(cfg, target, tmp_path):
    # DSPs allowed: any multiplier in the netlist would become a MULT18X18D or DSP48E1.
    _, _, manifest = generate_layer(cfg, tmp_path)
    report = synth(tmp_path, target, place=False)
    cells = report["cells"]
    for cell in ("$mul", "$macc", "MULT18X18D", "ALU54B", "DSP48E1"):
        assert cells.get(cell, 0) == 0, (cfg.module_name, cell, cells.get(cell))
    assert report["resources"]["dsp"] == 0 == manifest["multipliers"]
    assert report["resources"]["lut"] > 0 and manifest["processing_elements"] == cfg.multipliers
