"""``dsp="nexus"``: PEs on Lattice Nexus MULT9X9 (operands within 9 bits) or MULT18X18
instances with their registers.

Bit-exactness under Verilator (through the simulation model, every register mapping) is
in ``test_tile_verilator.py``; here: validation, the netlist, the manifest, the model
against brute force, and the DSP primitives Yosys keeps.
"""

import re

import numpy as np
import pytest

from winogen.cli import main
from winogen.fpga.synth import SynthError, synth
from winogen.gen.config import TileConfig
from winogen.hw.generate import generate_tile, simulation_sources
from winogen.hw.nexus import NEXUS_MULT_SIM_MODEL, NEXUS_SIM_MODEL_FILE, nexus_block

Q9 = dict(m=4, r=3, preset="lavin", wino_width=9, wino_scales="tapwise", dsp="nexus")


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(dsp="dsp48"), r"dsp must be one of inferred, ecp5, nexus, not 'dsp48'"),
    (dict(dsp="nexus", pe="adder"), r"dsp='nexus' applies to multiplying PEs \(pe='mul'\), "
                                    r"not pe='adder'"),
    (dict(m=6, data_width=12, weight_width=12, dsp="nexus"),
     r"dsp='nexus' needs PE operands of at most 18 bits \(one MULT9X9 or MULT18X18 each\)"),
])
def test_config_refuses(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        TileConfig(**(dict(m=2, r=3, preset="lavin") | kwargs))


def test_cli_refuses_in_one_line(tmp_path, capsys):
    status = main(["generate", "tile", "--m", "2", "--r", "3", "--pe", "adder", "--dsp", "nexus",
                   "-o", str(tmp_path / "o")])
    assert status == 2 and not (tmp_path / "o").exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--dsp nexus applies to multiplying PEs" in err


def test_block_choice():
    assert nexus_block(9, 9) == ("MULT9X9", 9)
    assert nexus_block(9, 10) == ("MULT18X18", 18)
    assert nexus_block(18, 2) == ("MULT18X18", 18)
    with pytest.raises(ValueError, match="at most 18 bits wide .* not 19"):
        nexus_block(19, 4)


@pytest.mark.parametrize("kwargs, block, count", [
    (Q9, "MULT9X9", 36),                                       # 9-bit Winograd domain
    (dict(m=2, r=3, preset="lavin", dsp="nexus"), "MULT18X18", 16),   # exact: 10-bit V
])
def test_netlist_and_manifest(tmp_path, kwargs, block, count):
    cfg = TileConfig(**kwargs)
    vpath, _, manifest = generate_tile(cfg, tmp_path)
    text = vpath.read_text()
    instances = re.findall(rf"\b{block}\s+#\((.*?)\)\s*\w+\s*\(", text, re.S)
    assert len(instances) == cfg.multipliers == count
    for params in instances:      # default 2 stages: operands and product in the block
        assert re.search(r'\.REGINPUTA\("REGISTER"\)', params)
        assert re.search(r'\.REGOUTPUT\("REGISTER"\)', params)
    assert not re.search(r"\) \* \$signed", text)       # no inferred multiplier left
    assert manifest["target_primitives"] == cfg.dsp_blocks == [block]
    assert manifest["simulation_models"] == [NEXUS_SIM_MODEL_FILE]
    assert (tmp_path / NEXUS_SIM_MODEL_FILE).read_text() == NEXUS_MULT_SIM_MODEL
    assert simulation_sources(tmp_path, manifest)[-1] == tmp_path / NEXUS_SIM_MODEL_FILE
    assert manifest["latency"] == TileConfig(**(kwargs | dict(dsp="inferred"))).latency


@pytest.mark.verilator
@pytest.mark.parametrize("width", [9, 18])
def test_sim_model_against_brute_force(tmp_path, width):
    """The behavioural model's products, without registers and with both, over edge and
    random operands (tests/tb_nexus_mul.py)."""
    from pathlib import Path
    from tb_nexus_mul import NexusMulBench
    from winogen.hw.emit import to_verilog
    from winogen.sim import build as vbuild
    top = f"nexus_mul{width}"
    vfile = tmp_path / f"{top}.v"
    vfile.write_text(to_verilog(NexusMulBench(width), top))
    model = tmp_path / NEXUS_SIM_MODEL_FILE
    model.write_text(NEXUS_MULT_SIM_MODEL)
    handle = vbuild.build([vfile, model], top)
    vbuild.run(handle, "tb_nexus_mul", python_path=[Path(__file__).parent],
               test_dir=tmp_path / "sim", extra_env={"TB_SEED": "3", "TB_WIDTH": str(width)})


@pytest.mark.synth
def test_yosys_keeps_the_9x9_blocks(tmp_path):
    """synth_nexus keeps every MULT9X9 (nothing re-maps them to MULT18X18), and synthesis
    for another family is refused."""
    _, _, manifest = generate_tile(TileConfig(**Q9), tmp_path)
    report = synth(tmp_path, "nexus", place=False)
    assert report["dsp_types"] == {"MULT9X9": 36}
    with pytest.raises(SynthError, match=r"instantiates the nexus primitive MULT9X9"):
        synth(tmp_path, "ecp5", place=False)
