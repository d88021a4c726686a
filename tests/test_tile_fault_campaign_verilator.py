"""RTL fault injection on binary TILE engines (issue 18): the tile manifest's fault sites and
cocotb campaigns, cross-checked bit for bit against :class:`~winogen.gen.faultmodel.TileFaultModel`.

The manifest tests run without Verilator: every register ``fault_sites`` lists is looked up
in the emitted Verilog by the independent parser of ``test_fault_campaign_verilator``, and
every value of the model's site classes must be held by exactly one register, as wide as
the model's value less its shift. The campaigns (``verilator``) run
:mod:`winogen.sim.tb_tile_faults` through :func:`winogen.sim.faults.rtl_fault_campaign`.
"""

import json
import shutil

import numpy as np
import pytest

from test_fault_campaign_verilator import _clocked_regs
from winogen.gen.config import TileConfig
from winogen.gen.faultmodel import TileFaultModel
from winogen.gen.rns import RNSTileConfig
from winogen.gen.rns.faultmodel import RNSTileFaultModel
from winogen.hw.generate import generate_tile

#: The acceptance engine: F(2,3), filter transformed online (every class a tile has).
F23_ONLINE = TileConfig(2, 3, 8, 8, filter_transform="online")
#: F(4,3) with Lavin & Gray's points: registers holding an element shifted left, a real
#: exact division.
F43_LAVIN = TileConfig(4, 3, 8, 8, preset="lavin")
#: Direct AdderNet: products indexed by output pixel and tap, adder trees as lane sums.
DIRECT_ADDER = TileConfig(2, 3, 6, 6, pe="adder", algorithm="direct")
#: Manifest checks only: one stage per block and none in the PEs and the filter
#: transform (those classes have no register), MULT18X18D PEs (the product is inside the
#: primitive), Winograd AdderNet.
MANIFEST_ONLY = {
    "f43_thin": TileConfig(4, 3, 8, 8, preset="barabasz", input_stages=1, pe_stages=0,
                           output_stages=1, descale_stages=0, filter_transform="online",
                           filter_stages=0),
    "f23_ecp5": TileConfig(2, 3, 8, 8, dsp="ecp5"),
    "f23_adder": TileConfig(2, 3, 6, 6, pe="adder"),
    "direct_f23": TileConfig(2, 3, 8, 8, algorithm="direct"),
}
#: RNS tile engines: the shared binary V and a redundant modulus (the acceptance of the RNS
#: cross-check); residue input transforms, three input channels accumulated, a redundant
#: modulus; special moduli with the scale divided out and no check.
RNS_F23 = RNSTileConfig(2, 3, redundant_moduli=1)
RNS_F23_RESIDUE_C3 = RNSTileConfig(2, 3, input_transform="residue", channels=3,
                                   redundant_moduli=1)
RNS_F23_SCALED = RNSTileConfig(2, 3, moduli=(255, 256, 257), method="scaled")
ENGINES = {"f23_online": F23_ONLINE, "f43_lavin": F43_LAVIN, "direct_adder": DIRECT_ADDER,
           **MANIFEST_ONLY, "rns_f23": RNS_F23, "rns_f23_residue_c3": RNS_F23_RESIDUE_C3,
           "rns_f23_scaled": RNS_F23_SCALED}


def _model(cfg):
    """The fault model of ``cfg`` with zero filters (its site classes)."""
    if isinstance(cfg, RNSTileConfig):
        return RNSTileFaultModel(cfg, np.zeros((cfg.channels, cfg.r, cfg.r), dtype=np.int64))
    return TileFaultModel(cfg, np.zeros((cfg.r, cfg.r), dtype=np.int64))


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            vpath, _, manifest = generate_tile(ENGINES[name], tmp_path_factory.mktemp(name))
            cache[name] = (ENGINES[name], vpath.read_text(), manifest)
        return cache[name]
    return get


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_tile_fault_sites_are_registers_of_the_verilog(emitted, name):
    cfg, verilog, manifest = emitted(name)
    sites = manifest["fault_sites"]
    regs = _clocked_regs(verilog, manifest["top"])
    assert sites["reference"] == {"each": "tiles", "last": "tiles", "load": "weights"}
    assert sites["classes"], "no site class"
    for cls, spec in sites["classes"].items():
        step = ("load" if cls == "filter_transform" else
                "last" if cls in ("output_transform", "descale") and
                isinstance(cfg, RNSTileConfig) else "each")
        assert spec["delay"] >= 1 and spec["step"] == step, cls
        for reg in spec["registers"]:
            *scope, signal = reg["name"].split(".")
            module = ".".join(scope)
            assert signal in regs.get(module, {}), f"{cls}: {reg['name']} is not a clocked reg"
            assert regs[module][signal] >= reg["lsb"] + reg["width"], (cls, reg)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_tile_fault_sites_hold_every_value_of_the_model(emitted, name):
    """Every value of a listed class is held by exactly one register, whose width plus the
    value's shift is the model's width of that value; a class is left out only where no
    register holds it (no stage, or inside a DSP primitive)."""
    cfg, _, manifest = emitted(name)
    classes = manifest["fault_sites"]["classes"]
    model = _model(cfg).site_classes(1)
    unlisted = set(model) - set(classes)
    assert set(classes) <= set(model)
    expect_unlisted = set()
    if cfg.pe_stages == 0 or (getattr(cfg, "dsp", None) == "ecp5" and cfg.pe_stages <= 2):
        expect_unlisted.add("products")
    for cls, stages in (("filter_transform", "filter_stages"), ("descale", "descale_stages"),
                        ("input_transform", "input_stages")):
        if cls in model and getattr(cfg, stages) == 0:
            expect_unlisted.add(cls)
    assert unlisted == expect_unlisted
    for cls, spec in classes.items():
        sc = model[cls]
        widths = np.broadcast_to(sc.widths, sc.shape)[0]
        held = []
        for reg in spec["registers"]:
            for value in reg["values"]:
                keys = {"modulus": reg.get("modulus"), **value}
                cins = range(cfg.channels) if "cin" in sc.axes else [None]
                for cin in cins:
                    index = tuple({**keys, "cin": cin}[axis] for axis in sc.axes[1:])
                    held.append(index)
                assert reg["width"] + value["shift"] == widths[index], (cls, reg)
        assert sorted(held) == sorted(np.ndindex(*sc.shape[1:])), cls


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_tile_fault_site_delays_follow_the_stages(emitted, name):
    """Each class's delay is the sum of the stage counts up to its block; the last block's
    is the engine's latency."""
    cfg, _, manifest = emitted(name)
    classes = manifest["fault_sites"]["classes"]
    if isinstance(cfg, RNSTileConfig):
        front = cfg.input_stages + cfg.pe_stages
        acc = front + (cfg.channels > 1)
        at = {"input_transform": cfg.input_stages, "forward_conversion": cfg.input_stages + 1,
              "products": front, "accumulation": acc,
              "output_transform": acc + cfg.output_stages, "descale": cfg.latency}
    elif cfg.algorithm == "winograd":
        at = {"input_transform": cfg.input_stages, "filter_transform": cfg.filter_stages,
              "products": cfg.input_stages + cfg.pe_stages,
              "output_transform": cfg.input_stages + cfg.pe_stages + cfg.output_stages,
              "descale": cfg.latency}
    else:
        at = {"products": cfg.pe_stages, "lane_sums": cfg.latency}
    assert {k: v["delay"] for k, v in classes.items()} == {k: at[k] for k in classes}
    assert max(v["delay"] for k, v in classes.items() if k != "filter_transform") \
        <= cfg.latency


def test_rtl_campaign_refuses_an_rns_tile_without_sites_and_a_foreign_register(tmp_path):
    from winogen.gen.rns import RNSTileConfig
    from winogen.sim.faults import rtl_fault_campaign
    generate_tile(RNSTileConfig(2, 3, forward_reduction="partial"), tmp_path / "rns")
    with pytest.raises(ValueError, match="layer or tile engine whose manifest lists "
                                         "fault_sites"):
        rtl_fault_campaign(tmp_path / "rns", 10)
    _, jpath, manifest = generate_tile(F23_ONLINE, tmp_path / "edited")
    manifest["fault_sites"]["classes"]["products"]["registers"][3]["name"] = \
        "datapath.pe_array.pe3.nothing"
    jpath.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"lists an unknown register: fault site "
                                         r"datapath\.pe_array\.pe3\.nothing: 'nothing' is not "
                                         r"a register"):
        rtl_fault_campaign(tmp_path / "edited", 10)


# -- campaigns under Verilator ------------------------------------------------------------------

def _campaign(cfg, injections, seed, tmp_path, **kw):
    from winogen.sim.faults import rtl_fault_campaign
    summary = rtl_fault_campaign(cfg, injections, seed, report=tmp_path / "summary.json", **kw)
    print(json.dumps({k: v for k, v in summary.items() if k != "problems"}, indent=1))
    return summary


def _check_agreement(summary, injections, classes, per_class):
    assert summary["injections"] == summary["flipped"] == summary["agree"] == injections
    assert summary["disagree"] == 0 and summary["other_beats_wrong"] == 0
    assert not summary["problems"]
    assert set(summary["by_class"]) == set(classes)
    for cls, entry in summary["by_class"].items():
        assert entry["injections"] >= per_class, cls
        assert entry["masked"] + entry["sdc"] == entry["injections"], cls
        assert entry["detected"] == 0, cls          # a binary tile engine has no check


def _listed(cfg):
    from winogen.sim.driver import engine_files
    return list(json.loads(engine_files(cfg)[1].read_text())["fault_sites"]["classes"])


@pytest.mark.verilator
def test_f23_tile_campaign_agrees_with_the_model(tmp_path):
    """400 injections on the F(2,3) tile engine (filter transformed online), in every class,
    each output tile equal to the model's faulty output bit for bit."""
    summary = _campaign(F23_ONLINE, 400, 1, tmp_path)
    _check_agreement(summary, 400, ["input_transform", "filter_transform", "products",
                                    "output_transform", "descale"], 10)
    assert summary["totals"]["sdc"] >= 200
    assert all(e["sdc"] > 0 for e in summary["by_class"].values())


@pytest.mark.verilator
@pytest.mark.parametrize("cfg", [F43_LAVIN, DIRECT_ADDER], ids=["f43_lavin", "direct_adder"])
def test_small_tile_campaigns_agree_with_the_model(cfg, tmp_path):
    summary = _campaign(cfg, 120, 2, tmp_path)
    _check_agreement(summary, 120, _listed(cfg), 20)
    assert summary["totals"]["sdc"] > 0


@pytest.mark.verilator
@pytest.mark.parametrize("shift", [-1, 1])
def test_tile_campaign_catches_a_wrong_delay(shift, tmp_path):
    """The cross-check has teeth: the same build with every delay off by one cycle
    disagrees with the model in every site class."""
    from winogen.sim.driver import engine_files
    jpath = engine_files(F23_ONLINE)[1]
    out = tmp_path / "engine"
    shutil.copytree(jpath.parent, out)
    manifest = json.loads(jpath.read_text())
    for spec in manifest["fault_sites"]["classes"].values():
        spec["delay"] += shift
    (out / jpath.name).write_text(json.dumps(manifest))
    summary = _campaign(out, 150, 4, tmp_path, check=False)
    assert summary["disagree"] >= 50 and summary["problems"]
    for cls, entry in summary["by_class"].items():
        assert entry["disagree"] > 0, cls


@pytest.mark.verilator
def test_cli_rtl_campaign_on_a_tile_engine(tmp_path, capsys):
    """winogen faults --rtl DIR on a generated tile engine: its table and JSON."""
    from winogen.cli import main
    generate_tile(DIRECT_ADDER, tmp_path / "engine")
    assert main(["faults", "--rtl", str(tmp_path / "engine"), "--injections", "60",
                 "--seed", "4", "-o", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "60 injections, 60 agree with the fault model bit for bit, 0 disagree" in text
    summary = json.loads((tmp_path / "out" / "faults_rtl.json").read_text())
    assert summary["agree"] == 60 and set(summary["by_class"]) == {"products", "lane_sums"}
    assert summary["kind"] == "tile" and summary["executor"] == "local, 1 job (inline)"


@pytest.mark.verilator
def test_rns_tile_campaign_agrees_with_the_model(tmp_path):
    """RNS F(2,3) with a redundant modulus: every output tile and every error flag equal
    RNSTileFaultModel's; every flip confined to a residue channel is detected, while flips
    in the shared binary V mostly pass silently (they change every channel alike)."""
    summary = _campaign(RNS_F23, 200, 1, tmp_path)
    assert summary["injections"] == summary["flipped"] == summary["agree"] == 200
    assert summary["disagree"] == summary["flag_mismatches"] == 0 and not summary["problems"]
    by = summary["by_class"]
    assert set(by) == {"input_transform", "forward_conversion", "products", "output_transform"}
    for cls in ("forward_conversion", "products", "output_transform"):
        assert by[cls]["sdc"] == 0 and by[cls]["detected"] >= 40, cls
    assert by["input_transform"]["sdc"] > by["input_transform"]["detected"]


@pytest.mark.verilator
@pytest.mark.parametrize("cfg", [RNS_F23_RESIDUE_C3, RNS_F23_SCALED],
                         ids=["rns_residue_c3", "rns_scaled_special"])
def test_small_rns_campaigns_agree_with_the_model(cfg, tmp_path):
    summary = _campaign(cfg, 100, 2, tmp_path)
    assert summary["agree"] == 100 and summary["flag_mismatches"] == 0
    assert set(summary["by_class"]) == set(_listed(cfg))
    detected = summary["totals"]["detected"]
    assert (detected > 0) == bool(cfg.redundant_moduli)


@pytest.mark.verilator
def test_rns_campaign_catches_a_wrong_delay(tmp_path):
    from winogen.sim.driver import engine_files
    jpath = engine_files(RNS_F23)[1]
    out = tmp_path / "engine"
    shutil.copytree(jpath.parent, out)
    manifest = json.loads(jpath.read_text())
    for spec in manifest["fault_sites"]["classes"].values():
        spec["delay"] += 1
    (out / jpath.name).write_text(json.dumps(manifest))
    summary = _campaign(out, 100, 4, tmp_path, check=False)
    assert summary["disagree"] >= 50
    for cls, entry in summary["by_class"].items():
        assert entry["disagree"] > 0, cls
