"""``bram="ecp5"``: layer-engine memories on DP16KD block RAMs with their output register.

The plan (``winogen.gen.ebr``) is checked bit by bit; the instantiated blocks and their
simulation model under Verilator against a Python model of the memories, in every mode;
the layer engines built this way are bit-exact in ``test_layer_verilator.py``
(``wino23_p2x2_ecp5`` and the ResNet-18 layer).
"""

import json
import math
import random
import re
from pathlib import Path

import pytest

from winogen.cli import main
from winogen.fpga.synth import SynthError, synth
from winogen.gen.config import TileConfig
from winogen.gen.ebr import ECP5_EBR_BYTE, ECP5_EBR_MODES, plan_ecp5_ebr
from winogen.gen.layer import LayerConfig
from winogen.hw.ecp5_ebr import DP16KD_SIM_MODEL, DP16KD_SIM_MODEL_FILE
from winogen.hw.emit import to_verilog
from winogen.hw.generate import simulation_sources
from winogen.hw.layer import memory_shapes
from winogen.sim import build as vbuild

TESTS = Path(__file__).parent


def _check_plan(plan):
    """Every bit of every group in exactly one block bit; lanes and enables consistent."""
    owner = {}
    for s in plan.slices:
        assert 0 <= s.block < plan.blocks and s.block_lo + s.width <= plan.data_width
        for bit in range(s.width):
            key = (s.block, s.block_lo + bit)
            assert key not in owner, f"two bits in {key}"
            owner[key] = (s.group, s.group_lo + bit)
        if plan.byte_enabled:
            lane = s.block_lo // ECP5_EBR_BYTE
            assert s.block_lo % ECP5_EBR_BYTE == 0 and s.width <= ECP5_EBR_BYTE
            assert plan.lane_groups[s.block][lane] == s.group
        else:
            assert plan.lane_groups[s.block] == (s.group,)
    placed = sorted(owner.values())
    assert placed == sorted((g, b) for g, w in enumerate(plan.group_widths) for b in range(w))
    assert plan.block_depth >= plan.depth


def _blocks_in_mode(depth, widths, data_width, block_depth):
    """Block count of a mode, counted directly: byte lanes shared, else whole blocks."""
    if block_depth < depth:
        return None
    if data_width in (18, 36):
        return math.ceil(sum(math.ceil(w / 9) for w in widths) / (data_width // 9))
    return sum(math.ceil(w / data_width) for w in widths)


@pytest.mark.parametrize("seed", range(200))
def test_plan_places_every_bit_once_in_the_fewest_blocks(seed):
    rng = random.Random(seed)
    depth = rng.choice([1, 7, 128, 512, 513, 1024, 1500, 2048, 4096, 5000, 8192, 16384])
    widths = [rng.randint(1, 40) for _ in range(rng.randint(1, 6))]
    plan = plan_ecp5_ebr(depth, widths)
    _check_plan(plan)
    counts = [c for c in (_blocks_in_mode(depth, widths, w, d) for w, d in ECP5_EBR_MODES)
              if c is not None]
    assert plan.blocks == min(counts)


def test_plan_examples():
    # the F(2,3) P 2x2 engine's memories: a line-buffer word of two 8-bit elements, and a
    # 192-bit weight word, both in the 36-bit mode (the counts Yosys infers as well)
    act = plan_ecp5_ebr(512, (8, 8))
    assert (act.data_width, act.blocks, act.lane_groups) == (36, 1, ((0, 1, None, None),))
    weights = plan_ecp5_ebr(128, (192,))
    assert (weights.data_width, weights.blocks) == (36, 6)
    assert plan_ecp5_ebr(16384, (3,)).data_width == 1


@pytest.mark.parametrize("args, pattern", [
    ((16385, (8,)), r"depth must be at most 16384 words \(one DP16KD deep\), not 16385"),
    ((0, (8,)), r"depth must be a positive integer, not 0"),
    ((16, ()), r"group_widths must be positive integers, not \(\)"),
    ((16, (8, 0)), r"group_widths must be positive integers"),
])
def test_plan_refuses(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        plan_ecp5_ebr(*args)


def test_config_refuses():
    with pytest.raises(ValueError, match=r"bram must be one of inferred, ecp5, not 'm20k'"):
        LayerConfig(TileConfig(2, 3), bram="m20k")
    wide = LayerConfig(TileConfig(2, 3), max_width=4096, max_cin=64)
    depth = 1 << sum(wide.act_address_fields)
    assert depth > 16384
    with pytest.raises(ValueError, match=rf"bram='ecp5' needs memories of at most 16384 words "
                                         rf".* line buffer memories have {depth} "):
        wide.replace(bram="ecp5")


def test_cli_refuses_in_one_line(tmp_path, capsys):
    status = main(["generate", "conv", "--m", "2", "--r", "3", "--bram", "ecp5",
                   "--max-width", "4096", "--max-cin", "64", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and not (tmp_path / "o").exists()
    assert len(err.splitlines()) == 1 and "--bram ecp5" in err and "16384 words" in err


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory):
    out = tmp_path_factory.mktemp("ebr_engine")
    assert main(["generate", "conv", "--m", "2", "--r", "3", "--bram", "ecp5", "--pin", "2",
                 "--max-cin", "4", "--max-cout", "2", "--max-width", "8",
                 "--max-height", "8", "-o", str(out)]) == 0
    manifest = json.loads(next(out.glob("*.json")).read_text())
    return out, manifest


def test_netlist_and_manifest(small_engine):
    out, manifest = small_engine
    assert manifest["target_primitives"] == ["DP16KD"]
    assert manifest["simulation_models"] == [DP16KD_SIM_MODEL_FILE]
    assert (out / DP16KD_SIM_MODEL_FILE).read_text() == DP16KD_SIM_MODEL
    assert simulation_sources(out, manifest)[-1] == out / DP16KD_SIM_MODEL_FILE
    text = (out / manifest["verilog"][0]).read_text()
    instances = re.findall(r"\bDP16KD\s+#\((.*?)\)\s*\w+\s*\(", text, re.S)
    blocks = sum(kind["ecp5_blocks"]["blocks"] for kind in manifest["memories"].values())
    assert len(instances) == blocks > 0
    for params in instances:
        assert re.search(r'\.REGMODE_A\("OUTREG"\)', params)
        assert re.search(r'\.REGMODE_B\("OUTREG"\)', params)
    # no line-buffer or weight memory left to infer (the small output queue stays)
    assert not re.search(r"reg \[[^]]*\] bank_\w+ \[", text)
    cfg = LayerConfig(TileConfig(2, 3), max_height=8, max_width=8, max_cin=4, max_cout=2,
                      p_in=2, bram="ecp5")
    assert manifest["memories"] == json.loads(json.dumps(memory_shapes(cfg)))


def test_inferred_build_lists_no_blocks(tmp_path):
    cfg = LayerConfig(TileConfig(2, 3), max_height=8, max_width=8, max_cin=4, max_cout=4)
    assert all(kind["ecp5_blocks"] is None for kind in memory_shapes(cfg).values())


def test_synth_refuses_other_targets(small_engine):
    out, _ = small_engine
    with pytest.raises(SynthError, match=r"generated with --bram ecp5\).*regenerate with "
                                         r"--bram inferred, not target 'ice40'"):
        synth(out, "ice40")
    # block RAM is no DSP: nodsp does not forbid it (refused only for the target)
    with pytest.raises(SynthError, match=r"not target 'nexus'"):
        synth(out, "nexus", nodsp=True)


@pytest.mark.verilator
def test_blocks_and_model_under_verilator(tmp_path):
    """Random writes with random group enables and reads, every cycle, in every mode."""
    from tb_ecp5_ebr import EBRBench
    top = "ebr_bench"
    vfile = tmp_path / f"{top}.v"
    vfile.write_text(to_verilog(EBRBench(), top))
    model = tmp_path / DP16KD_SIM_MODEL_FILE
    model.write_text(DP16KD_SIM_MODEL)
    handle = vbuild.build([vfile, model], top)
    vbuild.run(handle, "tb_ecp5_ebr", python_path=[TESTS], test_dir=tmp_path / "sim",
               extra_env={"TB_SEED": "7", "TB_CYCLES": "3000"})


@pytest.mark.synth
def test_f23_p2x2_layer_meets_200_mhz_on_lfe5u_85f_8(tmp_path):
    """Issue 16's goal: the 8-bit F(2,3) P 2x2 layer engine (32 x 32, 16 -> 16) at 200 MHz
    or more after nextpnr, at most half the previous engine's 18,382 LUT4 and 88 DP16KD."""
    out = tmp_path / "f23"
    assert main(["generate", "conv", "--m", "2", "--r", "3", "--max-width", "32",
                 "--max-height", "32", "--max-cin", "16", "--max-cout", "16", "--pin", "2",
                 "--pout", "2", "--dsp", "ecp5", "--bram", "ecp5", "--pe-stages", "3",
                 "-o", str(out)]) == 0
    manifest = json.loads(next(out.glob("*.json")).read_text())
    report = synth(out, "ecp5", device="LFE5U-85F-8", freq_mhz=200)
    blocks = sum(kind["ecp5_blocks"]["blocks"] for kind in manifest["memories"].values())
    assert report["cells"]["DP16KD"] == blocks <= 88 // 2
    assert report["resources"]["lut"] <= 18382 // 2
    assert report["resources"]["dsp"] == manifest["multipliers"]
    assert report["timing"]["fmax_mhz"] >= 200, report["timing"]
