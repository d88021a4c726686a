"""The FPGA target registry (winogen.fpga.targets) and the interface every target implements."""

import json
import re
from importlib import metadata
from pathlib import Path

import pytest

from winogen.fpga import synth as synth_mod
from winogen.fpga import targets
from winogen.fpga.targets import RESOURCE_CLASSES, TARGETS, Device, Target, get_target
from winogen.fpga.targets.base import (describe_over, fit_failure, parse_log_utilisation,
                                       parse_timing)
from winogen.fpga.yosys import SynthError

ALL = sorted(TARGETS)


def test_unknown_target_is_one_clear_line():
    with pytest.raises(SynthError) as exc:
        get_target("vivado")
    message = str(exc.value)
    assert message == f"target must be one of {', '.join(TARGETS)}, not 'vivado'"
    assert "\n" not in message
    for bad in (None, 5, "ECP5", ""):
        with pytest.raises(SynthError, match=r"^target must be one of "):
            get_target(bad)


def test_unknown_target_refused_before_any_file(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"name": "d", "verilog": ["d.v"]}))
    with pytest.raises(SynthError, match=r"^target must be one of .*, not 'asic'$"):
        synth_mod.synth(tmp_path, "asic")
    assert not (tmp_path / "reports").exists()


def test_synth_module_views_follow_the_registry():
    # fpga/cli.py and fpga/explore.py import these; they must list every registered target.
    assert synth_mod.TARGETS == tuple(TARGETS)
    assert synth_mod.TARGETS[0] == "ecp5"  # the default of synth() and the CLI
    assert synth_mod.DEFAULT_FREQ_MHZ == {n: t.default_freq_mhz for n, t in TARGETS.items()
                                          if t.places}
    assert {"ecp5", "ice40", "xilinx7", "nexus"} <= set(TARGETS)


@pytest.mark.parametrize("name", ALL)
def test_every_target_has_the_interface(name):
    t = get_target(name)
    assert isinstance(t, Target) and t.name == name and t.title
    assert t.device_names and t.default_device
    dev = synth_mod.parse_device(name)
    assert isinstance(dev, Device) and dev.target == name and dev.label
    # Surrounding blanks are tolerated, as the CLI passes the user's text.
    assert synth_mod.parse_device(name, f" {t.default_device} ") == dev
    with pytest.raises(SynthError, match=rf"^device must be one of .*not 'nope' \(target {name}"):
        synth_mod.parse_device(name, "nope")

    resources, primitives = t.classify({})
    assert list(resources) == list(RESOURCE_CLASSES) and set(resources.values()) == {0}
    assert list(primitives) == list(RESOURCE_CLASSES)
    assert all(isinstance(p, str) and p for p in primitives.values())
    assert t.dsp_types({}) == {}
    assert set(t.capacity_bels) <= set(RESOURCE_CLASSES)

    script = t.yosys_script("top", ["top.v"], "reports/x", dev, nodsp=False)
    assert script[0] == 'read_verilog "top.v"'
    assert t.stat_command("reports/x") in script
    assert any("-top top" in line for line in script)
    nodsp = t.yosys_script("top", ["top.v"], "reports/x", dev, nodsp=True)
    assert nodsp != script  # nodsp must change the mapping
    if t.dff_retry:
        assert t.yosys_script("top", ["top.v"], "reports/x", dev, False, abc9_dff=True) != script

    if t.places:
        assert t.nextpnr.startswith("yowasp-nextpnr-")
        # Its wheel is a dependency, so installing winogen installs the tool.
        assert metadata.version(t.nextpnr)
        assert t.default_freq_mhz > 0
        assert any(t.netlist_path("reports/x") in line for line in script)
        args = t.nextpnr_args(dev, 123.0)
        for flag in ("--json", "--report", "--freq", "--log"):
            assert flag in args
        assert args[args.index("--freq") + 1] == "123" and "netlist.json" in args
        assert set(t.capacity_bels) >= {"lut", "ff", "dsp"}
    else:
        assert t.default_freq_mhz is None
        assert set(dev.capacity) == set(RESOURCE_CLASSES) - {"carry"}
        assert t.available(dev, {}) == dev.capacity


@pytest.mark.parametrize("name", ALL)
def test_classify_counts_the_target_cells(name):
    t = get_target(name)
    # One cell type per class from the target's own patterns, weights applied.
    cells, expected = {"$scopeinfo_unrelated": 7}, {}
    for k in RESOURCE_CLASSES:
        label, patterns = t.cells[k]
        pattern, weight = next(iter(patterns.items()))
        cell = {r"SB_DFF\w*": "SB_DFFER", r"LUT[1-6]": "LUT6", r"FD[RSCP]E(_1)?": "FDCE",
                r"FD1P3[BDIJ]X": "FD1P3JX", r"MULT(?:ADDSUB|PREADD)?\d+X\d+(?:WIDE)?": "MULT9X9",
                r"(?:P?DP|SP|FIFO)16K": "PDP16K"}.get(pattern, pattern)
        assert re.fullmatch(pattern, cell), (pattern, cell)
        cells[cell] = 3
        expected[k] = 3 * weight
    resources, primitives = t.classify(cells)
    assert resources == expected
    (dsp_cell,) = t.dsp_types(cells)
    assert t.dsp_types(cells) == {dsp_cell: 3} and primitives["dsp"] == dsp_cell


def test_mixed_dsp_types_are_named_in_the_label():
    t = get_target("nexus")
    resources, primitives = t.classify({"MULT9X9": 2, "MULT18X18": 5, "LUT4": 1})
    assert resources["dsp"] == 7
    assert t.dsp_types({"MULT9X9": 2, "MULT18X18": 5}) == {"MULT18X18": 5, "MULT9X9": 2}
    assert primitives["dsp"] == "5×MULT18X18+2×MULT9X9"


def test_count_only_fit():
    t = get_target("xilinx7")
    dev = synth_mod.parse_device("xilinx7", "xc7z010")
    resources, primitives = t.classify({"DSP48E1": dev.capacity["dsp"] + 1, "LUT6": 10})
    (over,) = t.count_fit(dev, resources, primitives)
    assert over == {"resource": "dsp (DSP48E1)", "used": dev.capacity["dsp"] + 1,
                    "available": dev.capacity["dsp"]}
    assert describe_over([over]) == f"dsp (DSP48E1) {dev.capacity['dsp'] + 1}/80"


def test_shared_nextpnr_parsers_on_ice40_style_text():
    log = ("Info: Device utilisation:\nInfo: \t     ICESTORM_LC:   120/  5280     2%\n"
           "Info: \t    ICESTORM_DSP:     9/     8   112%\n"
           "ERROR: Unable to place cell 'x', no BELs remaining to implement cell type "
           "'ICESTORM_DSP'\n")
    util = parse_log_utilisation(log)
    assert util == {"ICESTORM_LC": (120, 5280), "ICESTORM_DSP": (9, 8)}
    assert fit_failure(util, log) == [{"resource": "ICESTORM_DSP", "used": 9, "available": 8}]
    assert fit_failure({"ICESTORM_LC": (1, 2)}, "ERROR: Failed to route net x") == \
        [{"resource": "routing", "used": None, "available": None}]
    assert fit_failure({"ICESTORM_LC": (1, 2)}, "ERROR: something else") is None
    t = parse_timing({}, 50.0)
    assert t["fmax_mhz"] is None and t["critical_path"] is None and t["constraint_mhz"] == 50.0


class _Generic(Target):
    """A count-only toy target, defined only here: Yosys's generic ``synth``."""
    name = "generic"
    title = "Yosys generic synth, counts only"
    default_device = "any"
    device_names = ("any",)
    estimate = "pre-place (Yosys generic cells)"
    cells = {"lut": ("$_AND_/$_OR_/...",
                     {r"\$_(AND|OR|XOR|NOT|MUX|NAND|NOR|XNOR|ANDNOT|ORNOT)_": 1}),
             "ff": ("$_DFF*", {r"\$_S?DFF[CE]*_\w+_": 1})}

    def parse_device(self, text):
        if text != "any":
            raise self.device_error(text)
        return Device("generic", "any", capacity={"lut": 10**6, "ff": 10**6, "dsp": 0,
                                                  "bram": 0})

    def synth_commands(self, name, work_rel, device, nodsp, abc9_dff):
        return [f"synth -top {name}{' -noalumacc' if nodsp else ''}",
                self.stat_command(work_rel)]


@pytest.mark.synth
def test_a_target_defined_elsewhere_runs_through_synth(tmp_path, monkeypatch):
    """A new target is one class plus its registration: synth.py needs no change."""
    from amaranth.back import verilog
    from test_synth import MulAdd
    monkeypatch.setitem(targets.TARGETS, "generic", _Generic())
    design = MulAdd(n_mul=1, width=4)
    (tmp_path / "m.v").write_text(verilog.convert(design, name="m"))
    (tmp_path / "m.json").write_text(json.dumps({"name": "m", "verilog": ["m.v"]}))
    report = synth_mod.synth(tmp_path, "generic", freq_mhz=123)
    assert report["target"] == "generic" and report["timing"] is None
    assert report["resources"]["ff"] == design.register_bits
    assert report["resources"]["lut"] > 0 and report["fits"] is True
    assert report["available"]["ff"] == 10**6 and "nextpnr" not in report["commands"]
    assert json.loads((tmp_path / "reports" / "generic.json").read_text())["design"] == "m"
    assert "no place and route for target generic" in \
        (tmp_path / "reports" / "generic.md").read_text()


def test_help_text_lists_every_target_and_its_default_device():
    text = targets.help_text()
    blocks = text.split("\n\n")
    assert blocks[0].startswith("targets:") and blocks[1].startswith("devices:")
    for name, t in TARGETS.items():
        assert re.search(rf"^  {name} +\S", blocks[0], re.MULTILINE)
        assert f"(default {t.default_device})" in " ".join(blocks[1].split())


def test_flow_sources_cover_every_target_module():
    sources = synth_mod.flow_sources()
    assert all(p.is_file() for p in sources)
    names = {p.name for p in sources}
    assert {"synth.py", "yosys.py", "base.py", "__init__.py"} <= names
    for t in TARGETS.values():
        assert Path(type(t).__module__.replace(".", "/")).name + ".py" in names
