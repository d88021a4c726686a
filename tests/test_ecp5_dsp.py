"""``dsp="ecp5"``: PEs on MULT18X18D instances with their internal registers.

Bit-exactness of these engines under Verilator (with the simulation model) is
in ``test_tile_verilator.py``; here: validation, the netlist, the manifest, and
the Fmax goal the option exists for.
"""

import json
import re

import pytest

from winogen.fpga.synth import SynthError, synth
from winogen.cli import main
from winogen.gen.config import TileConfig
from winogen.hw.ecp5 import MULT18X18D_SIM_MODEL, SIM_MODEL_FILE
from winogen.hw.generate import generate_tile, simulation_sources


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(dsp="dsp48"), r"dsp must be one of inferred, ecp5, nexus, not 'dsp48'"),
    (dict(dsp="ecp5", pe="adder"), r"dsp='ecp5' applies to multiplying PEs \(pe='mul'\), "
                                   r"not pe='adder'"),
    # F(6,3) at 12 bits: V and U are wider than a MULT18X18D operand.
    (dict(m=6, data_width=12, weight_width=12, dsp="ecp5"),
     r"dsp='ecp5' needs PE operands of at most 18 bits .* is \d+ bits"),
])
def test_config_refuses(kwargs, pattern):
    args = dict(m=2, r=3, preset="lavin") | kwargs
    with pytest.raises(ValueError, match=pattern):
        TileConfig(**args)


def test_cli_refuses_in_one_line(tmp_path, capsys):
    status = main(["generate", "tile", "--m", "2", "--r", "3", "--pe", "adder", "--dsp", "ecp5",
                   "-o", str(tmp_path / "o")])
    assert status == 2 and not (tmp_path / "o").exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--dsp ecp5 applies to multiplying PEs" in err


@pytest.fixture(scope="module")
def f23(tmp_path_factory):
    cfg = TileConfig(2, 3, 8, 8, preset="lavin", dsp="ecp5")
    out = tmp_path_factory.mktemp("f23_ecp5")
    vpath, _, manifest = generate_tile(cfg, out)
    return cfg, out, vpath.read_text(), manifest


def test_netlist_and_manifest(f23):
    cfg, out, text, manifest = f23
    instances = re.findall(r"MULT18X18D\s+#\((.*?)\)\s*\w+\s*\(", text, re.S)
    assert len(instances) == cfg.multipliers == 16
    for params in instances:
        # Both operands and the product registered inside the block, on its CE0.
        assert re.search(r'\.REG_INPUTA_CLK\("CLK0"\)', params)
        assert re.search(r'\.REG_INPUTB_CLK\("CLK0"\)', params)
        assert re.search(r'\.REG_OUTPUT_CLK\("CLK0"\)', params)
        assert re.search(r'\.REG_PIPELINE_CLK\("NONE"\)', params)
    assert not re.search(r"\) \* \$signed", text)   # no inferred multiplier left
    assert manifest["target_primitives"] == ["MULT18X18D"]
    assert manifest["simulation_models"] == [SIM_MODEL_FILE]
    assert (out / SIM_MODEL_FILE).read_text() == MULT18X18D_SIM_MODEL
    assert simulation_sources(out, manifest) == [out / manifest["verilog"][0], out / SIM_MODEL_FILE]
    assert manifest["latency"] == TileConfig(2, 3, 8, 8, preset="lavin").latency


def test_inferred_build_has_no_primitive(tmp_path):
    _, _, manifest = generate_tile(TileConfig(2, 3, preset="lavin"), tmp_path)
    assert manifest["simulation_models"] == [] and manifest["target_primitives"] == []
    text = (tmp_path / manifest["verilog"][0]).read_text()
    assert "MULT18X18D" not in text and len(re.findall(r"\) \* \$signed", text)) == 16


def test_synth_refuses_other_targets(f23):
    _, out, _, _ = f23
    with pytest.raises(SynthError, match=r"synthesize it for target ecp5.*not target 'ice40'"):
        synth(out, "ice40")
    with pytest.raises(SynthError, match=r"which nodsp forbids"):
        synth(out, "ecp5", nodsp=True)


@pytest.mark.synth
def test_f23_tile_meets_200_mhz_on_lfe5u_85f_8(f23):
    """Issue 5's goal: at least 200 MHz for the 8-bit F(2,3) tile after nextpnr."""
    cfg, out, _, _ = f23
    report = synth(out, "ecp5", device="LFE5U-85F-8", freq_mhz=200)
    assert report["resources"]["dsp"] == report["cells"]["MULT18X18D"] == cfg.multipliers
    assert report["timing"]["fmax_mhz"] >= 200, report["timing"]
    assert json.loads((out / "reports" / "ecp5.json").read_text())["timing"]["met"] is True


def test_layer_engines_take_the_ecp5_build(tmp_path):
    """The layer pipeline never stalls, so its PEs can be MULT18X18D with their own registers
    (bit-exact under Verilator in test_layer_verilator.py)."""
    out = tmp_path / "o"
    assert main(["generate", "conv", "--m", "2", "--r", "3", "--dsp", "ecp5", "--pin", "2",
                 "--max-cin", "4", "--max-cout", "2", "--max-width", "8", "--max-height", "8",
                 "-o", str(out)]) == 0
    manifest = json.loads(next(out.glob("*.json")).read_text())
    assert manifest["target_primitives"] == ["MULT18X18D"]
    assert manifest["simulation_models"] == [SIM_MODEL_FILE]
    assert (out / SIM_MODEL_FILE).read_text() == MULT18X18D_SIM_MODEL
    text = (out / manifest["verilog"][0]).read_text()
    assert len(re.findall(r"\bMULT18X18D\b\s+#", text)) == manifest["multipliers"] == 2 * 16
