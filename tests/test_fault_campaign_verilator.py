"""RTL fault injection (issue 18, item 2): the manifest's fault sites and cocotb campaigns on
emitted binary layer engines, cross-checked bit for bit against the fault model.

The manifest tests run without Verilator: every register ``fault_sites`` lists is looked up
in the emitted Verilog text (a clocked ``reg`` of the module the path names, wide enough)
by a parser written here, independent of the one that resolved the names. The campaigns
(``verilator``) build each engine with its registers writable and run
:mod:`winogen.sim.tb_faults` through :func:`winogen.sim.faults.rtl_fault_campaign`: every
injection's output beat must equal :class:`~winogen.gen.faultmodel.LayerFaultModel`'s for
the same fault, and so must every other beat.
"""

import json
import re
import shutil

import pytest

from winogen.gen.config import TileConfig
from winogen.gen.layer import LayerConfig
from winogen.hw.generate import generate_tile
from winogen.hw.layer import generate_layer
from winogen.hw.layer.cores import WinogradCore
from winogen.hw.layer.faultsites import resolve_register, verilog_modules

#: The acceptance engine: F(2,3), P_in = P_out = 2, requantization to 8 bits.
F23_P2X2 = LayerConfig(TileConfig(2, 3, 8, 8), max_height=8, max_width=8, max_cin=4,
                       max_cout=4, p_in=2, p_out=2, output_width=8)
#: Direct AdderNet engine: PE terms of lanes beyond C_in masked (their range includes 0),
#: products indexed by output pixel and tap, lane sums over P_in·r² terms.
DIRECT_ADDER = LayerConfig(TileConfig(2, 3, 6, 6, pe="adder", algorithm="direct"),
                           max_height=8, max_width=8, max_cin=4, max_cout=4, p_in=2, p_out=2,
                           output_width=8)
#: F(4,3) with Lavin & Gray's points: output-transform registers that hold an element
#: shifted left (24 of 32), a real exact division, no requantization (the descaled result
#: is the output), P_in = 1 (no lane sums).
F43_LAVIN = LayerConfig(TileConfig(4, 3, 8, 8, preset="lavin"), max_height=10, max_width=10,
                        max_cin=3, max_cout=4, p_in=1, p_out=2)
#: Hardened: tmr and dmr blocks, copies named by the manifest, the error output per beat.
F23_HARDENED = LayerConfig(
    TileConfig(2, 3, 8, 8), max_height=8, max_width=8, max_cin=4, max_cout=4, p_in=2,
    p_out=2, output_width=8,
    harden="input_transform:tmr,products:dmr,lane_sums:tmr,accumulation:dmr,"
           "output_transform:tmr,descale:dmr,requantization:tmr")

#: More shapes for the manifest checks only: one stage per block (no PE operand registers,
#: an unregistered first transform pass), MULT18X18D PEs with a fabric register after the
#: block, a direct engine whose adder trees have no register (the lane sums are then the
#: accumulator's input registers).
MANIFEST_ONLY = {
    "f23_pipeline1": LayerConfig(TileConfig(2, 3, 8, 8, input_stages=1, pe_stages=1,
                                            output_stages=1, descale_stages=1),
                                 max_height=8, max_width=8, max_cin=4, max_cout=3, p_in=2,
                                 output_width=8),
    "f23_ecp5_pe3": LayerConfig(TileConfig(2, 3, 8, 8, dsp="ecp5", pe_stages=3),
                                max_height=8, max_width=8, max_cin=2, max_cout=2),
    "direct_unregistered_sums": LayerConfig(TileConfig(2, 3, 8, 8, algorithm="direct",
                                                       output_stages=0),
                                            max_height=8, max_width=8, max_cin=4, max_cout=2,
                                            p_in=2),
}

ENGINES = {"f23_p2x2": F23_P2X2, "direct_adder": DIRECT_ADDER, "f43_lavin": F43_LAVIN,
           "f23_hardened": F23_HARDENED, **MANIFEST_ONLY}


# -- the manifest's fault sites, without Verilator ----------------------------------------------

_REG = re.compile(r"^\s*reg\s+(?:\[(\d+):(\d+)\]\s+)?(\w+)\b", re.M)


def _clocked_regs(verilog, top):
    """module path (relative to top, '' for top) -> {reg: width} of its clocked registers."""
    found = {}
    for match in re.finditer(r"^module (\S+)\s*\(.*?^endmodule", verilog, re.M | re.S):
        name, body = match.group(1).lstrip("\\"), match.group(0)
        if name != top and not name.startswith(top + "."):
            continue
        clocked = set(re.findall(r"^\s*(\w+) <=", body, re.M))
        found[name[len(top) + 1:]] = {reg: (int(hi) - int(lo) + 1 if hi else 1)
                                      for hi, lo, reg in _REG.findall(body) if reg in clocked}
    return found


class _Emitted(dict):
    """Engines generated on first use: under xdist each worker builds only what its tests
    ask for."""

    def __init__(self, factory):
        super().__init__()
        self._factory = factory

    def __missing__(self, name):
        cfg = ENGINES[name]
        vpath, _, manifest = generate_layer(cfg, self._factory.mktemp(name))
        self[name] = (cfg, vpath.read_text(), manifest)
        return self[name]


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    return _Emitted(tmp_path_factory)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_fault_sites_exist_in_the_verilog(emitted, name):
    cfg, verilog, manifest = emitted[name]
    sites = manifest["fault_sites"]
    regs = _clocked_regs(verilog, manifest["top"])
    *scope, ref = sites["reference"].split(".")
    assert regs[".".join(scope)].get(ref) == 1, sites["reference"]
    assert sites["step_order"] == "for ty: for tx: for cog: for cig"
    assert sites["classes"], "no site class"
    for cls, spec in sites["classes"].items():
        assert spec["delay"] >= 1 and spec["step"] in ("each", "last"), cls
        names = set()
        for reg in spec["registers"]:
            *scope, signal = reg["name"].split(".")
            module = ".".join(scope)
            assert module in regs, f"{cls}: no module {module!r}"
            assert signal in regs[module], f"{cls}: {reg['name']} is not a clocked reg"
            assert regs[module][signal] >= reg["lsb"] + reg["width"], (cls, reg)
            if reg["lsb"] == 0 and cls != "requantization" and "ecp5" not in name:
                # (a MULT18X18D's fabric register is wider than the product it holds)
                assert regs[module][signal] == reg["width"], (cls, reg)
            key = (reg["name"], reg["lsb"])
            assert key not in names, f"{cls}: {key} listed twice"
            names.add(key)
            assert reg["values"], reg


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_fault_sites_cover_every_value(emitted, name):
    """Every lane and element of a class is held by exactly one register per copy (where
    the class has registers), and the classes are those the core has."""
    cfg, _, manifest = emitted[name]
    classes = manifest["fault_sites"]["classes"]
    n2, mm, rr = cfg.n ** 2, cfg.m ** 2, cfg.r ** 2
    copies = {k: {"tmr": 3, "dmr": 2}[s] for k, s in cfg.harden}
    expect = {}
    if cfg.algorithm == "winograd":
        expect["input_transform"] = cfg.p_in * n2
        expect["products"] = cfg.p_out * cfg.p_in * n2
        if cfg.p_in > 1:
            expect["lane_sums"] = cfg.p_out * n2
        expect["accumulation"] = cfg.p_out * n2
        expect["output_transform"] = cfg.p_out * mm
        if cfg.tile.removes_scale:
            expect["descale"] = cfg.p_out * mm
    else:
        expect["products"] = cfg.p_out * cfg.p_in * mm * rr
        expect["lane_sums"] = cfg.p_out * mm
        expect["accumulation"] = cfg.p_out * mm
    if cfg.output_width is not None:
        expect["requantization"] = cfg.p_out * mm
    if getattr(cfg.tile, "dsp", "inferred") == "ecp5" and cfg.tile.pe_stages <= 2:
        del expect["products"]          # inside the MULT18X18D: no fabric register
    assert set(classes) == set(expect)
    for cls, count in expect.items():
        held = []
        for reg in classes[cls]["registers"]:
            for v in reg["values"]:
                held.append((reg["copy"], reg.get("cout_lane"), reg.get("cin_lane"),
                             v["element"], v.get("tap")))
        assert len(held) == len(set(held)) == count * copies.get(cls, 1), cls


def test_fault_site_delays_follow_the_pipeline(emitted):
    """The delays of F(2,3) P 2×2 from the stage counts (defaults: 2 input, 2 PE, 1 lane
    sum, 2 accumulator, 2 output, 1 descale, 2 requantizer stages)."""
    sites = emitted["f23_p2x2"][2]["fault_sites"]["classes"]
    assert {k: (v["delay"], v["step"]) for k, v in sites.items()} == {
        "input_transform": (2, "each"), "products": (4, "each"), "lane_sums": (5, "each"),
        "accumulation": (7, "each"), "output_transform": (9, "last"),
        "descale": (10, "last"), "requantization": (12, "last")}
    assert emitted["f23_p2x2"][2]["pipeline"]["core"] == 10
    direct = emitted["direct_unregistered_sums"][2]["fault_sites"]["classes"]
    assert direct["lane_sums"]["registers"][0]["name"].startswith("core.accumulator.in_x")
    assert direct["lane_sums"]["delay"] == direct["accumulation"]["delay"] - 1


def test_fault_site_shifts(emitted):
    """Registers that hold an element shifted left say so; the element is that much wider."""
    lavin = emitted["f43_lavin"][2]["fault_sites"]["classes"]["output_transform"]
    shifted = [r for r in lavin["registers"] if r["values"][0]["shift"]]
    assert len(shifted) == 24
    adder = WinogradCore.fault_registers(LayerConfig(
        TileConfig(2, 3, 6, 6, pe="adder"), max_height=8, max_width=8, max_cin=3, max_cout=3,
        p_in=2, p_out=2))["input_transform"]
    assert sum(r["values"][0]["shift"] == 1 for r in adder["registers"]) == 16


def test_fault_sites_inside_a_primitive_are_left_out():
    """MULT18X18D PEs with at most two stages keep the product inside the primitive: no
    register of the fabric holds it, so the class is left out (with three, the fabric
    register after the block is listed: see f23_ecp5_pe3)."""
    sites = WinogradCore.fault_registers(LayerConfig(
        TileConfig(2, 3, 8, 8, dsp="ecp5"), max_height=8, max_width=8, max_cin=2, max_cout=2))
    assert "products" not in sites and "accumulation" in sites


def test_resolve_register_refuses(emitted):
    cfg, verilog, manifest = emitted["f23_p2x2"]
    modules = verilog_modules(verilog)
    top = manifest["top"]
    # an alias of a register resolves to it; a net, a missing name or module do not
    assert resolve_register(modules, top, "core.descale_o0_e0.d_v0_d1", 21) == \
        ("core.descale_o0_e0.y", 0)
    with pytest.raises(ValueError, match="not a register"):
        resolve_register(modules, top, "core.descale_o0_e0.shifted", 21)
    with pytest.raises(ValueError, match="no module"):
        resolve_register(modules, top, "core.nothing.y", 1)
    with pytest.raises(ValueError, match="fewer than"):
        resolve_register(modules, top, "core.descale_o0_e0.y", 22)


def test_rtl_fault_campaign_refuses(tmp_path):
    from winogen.sim.faults import rtl_fault_campaign
    with pytest.raises(ValueError, match="injections must be a positive integer, not 0"):
        rtl_fault_campaign(F23_P2X2, 0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        rtl_fault_campaign(F23_P2X2, 10, -1)
    with pytest.raises(ValueError, match=r"stall must be a number in \[0, 1\), not 1"):
        rtl_fault_campaign(F23_P2X2, 10, stall=1)
    with pytest.raises(ValueError, match="classes must be site classes"):
        rtl_fault_campaign(F23_P2X2, 10, classes=["pe"])
    with pytest.raises(TypeError, match="check must be a bool"):
        rtl_fault_campaign(F23_P2X2, 10, check=1)
    with pytest.raises(TypeError, match="engine must be a LayerConfig, a TileConfig"):
        rtl_fault_campaign(F23_P2X2.tile.toomcook, 10)
    from winogen.gen.rns import RNSTileConfig
    generate_tile(RNSTileConfig(2, 3, forward_reduction="partial"), tmp_path)
    with pytest.raises(ValueError, match="layer or tile engine whose manifest lists "
                                         "fault_sites"):
        rtl_fault_campaign(tmp_path, 10)


# -- campaigns under Verilator ------------------------------------------------------------------

def _campaign(cfg, injections, seed, tmp_path, **kw):
    from winogen.sim.faults import rtl_fault_campaign
    summary = rtl_fault_campaign(cfg, injections, seed, report=tmp_path / "summary.json", **kw)
    print(json.dumps({k: v for k, v in summary.items() if k != "problems"}, indent=1))
    return summary


def _check_agreement(summary, injections, classes, per_class):
    assert summary["injections"] == summary["flipped"] == summary["agree"] == injections
    assert summary["disagree"] == 0 and summary["other_beats_wrong"] == 0
    assert summary["flag_mismatches"] == 0 and not summary["problems"]
    assert set(summary["by_class"]) == set(classes)
    for cls, entry in summary["by_class"].items():
        assert entry["injections"] >= per_class, cls
        assert entry["masked"] + entry["sdc"] + entry["detected"] == entry["injections"], cls


@pytest.mark.verilator
def test_f23_campaign_agrees_with_the_model(tmp_path):
    """The acceptance: 1,000 injections on the F(2,3) P 2×2 layer engine, every one equal
    to the model's faulty output bit for bit, at least 10 in every site class."""
    summary = _campaign(F23_P2X2, 1000, 1, tmp_path)
    _check_agreement(summary, 1000, ["input_transform", "products", "lane_sums",
                                     "accumulation", "output_transform", "descale",
                                     "requantization"], 10)
    totals = summary["totals"]
    assert totals["detected"] == 0                   # no error output: nothing detects
    # Flips do corrupt outputs (and many are masked: cropped edge positions, requantized
    # away, clamped by ReLU or saturation)
    assert totals["sdc"] >= 100 and totals["masked"] >= 100
    assert all(e["sdc"] > 0 for e in summary["by_class"].values())


@pytest.mark.verilator
@pytest.mark.parametrize("name", ["direct_adder", "f43_lavin"])
def test_small_campaigns_agree_with_the_model(name, tmp_path):
    cfg = ENGINES[name]
    summary = _campaign(cfg, 150, 2, tmp_path)
    classes = json.loads(_manifest_path(cfg).read_text())["fault_sites"]["classes"]
    _check_agreement(summary, 150, list(classes), 10)
    assert summary["totals"]["sdc"] > 0


@pytest.mark.verilator
def test_hardened_campaign_agrees_with_the_model(tmp_path):
    """Flips in the copies of hardened blocks (Fault.copy): every beat and every error flag
    as the model says; tmr masks every flip, dmr lets none through unflagged."""
    summary = _campaign(F23_HARDENED, 140, 3, tmp_path)
    _check_agreement(summary, 140, [c for c, _ in F23_HARDENED.harden], 10)
    for cls, scheme in F23_HARDENED.harden:
        entry = summary["by_class"][cls]
        assert entry["sdc"] == 0, cls
        if scheme == "tmr":
            assert entry["masked"] == entry["injections"], cls
        else:
            assert entry["detected"] > 0, cls


def _manifest_path(cfg):
    from winogen.sim.driver import engine_files
    return engine_files(cfg)[1]


@pytest.mark.verilator
@pytest.mark.parametrize("shift", [-1, 1])
def test_campaign_catches_a_wrong_delay(shift, tmp_path):
    """The cross-check has teeth: the same build (the manifest is not a Verilator source)
    with every delay of the manifest off by one cycle disagrees with the model in every
    site class."""
    jpath = _manifest_path(F23_P2X2)
    out = tmp_path / "engine"
    shutil.copytree(jpath.parent, out)
    manifest = json.loads(jpath.read_text())
    for spec in manifest["fault_sites"]["classes"].values():
        spec["delay"] += shift
    (out / jpath.name).write_text(json.dumps(manifest))
    summary = _campaign(out, 280, 4, tmp_path, check=False)
    assert summary["disagree"] >= 50 and summary["problems"]
    for cls, entry in summary["by_class"].items():
        assert entry["disagree"] > 0, cls


@pytest.mark.verilator
def test_cli_rtl_campaign(tmp_path, capsys):
    """winogen faults --rtl DIR: the campaign on a generated engine, its table and JSON."""
    from winogen.cli import main
    generate_layer(F23_P2X2, tmp_path / "engine")
    assert main(["faults", "--rtl", str(tmp_path / "engine"), "--injections", "70",
                 "--seed", "4", "-o", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "70 injections, 70 agree with the fault model bit for bit, 0 disagree" in text
    summary = json.loads((tmp_path / "out" / "faults_rtl.json").read_text())
    assert summary["agree"] == 70 and set(summary["by_class"]) == {
        "input_transform", "products", "lane_sums", "accumulation", "output_transform",
        "descale", "requantization"}
