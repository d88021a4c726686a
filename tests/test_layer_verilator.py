"""Emitted layer-engine Verilog under Verilator: lint, bit-exact layers, utilisation, errors, driver.

Nine engines (four multiply, three AdderNet, two RNS) are generated (and linted with ``verilator --lint-only -Wall``), each built
once, and each runs many layers per build — the layer shape is a run-time parameter —
through the cocotb testbench :mod:`winogen.sim.tb_layer`, which compares every output
map bit for bit with :func:`~winogen.gen.layer.layer_golden` (and, on marked layers, with
an independent ``scipy.signal.correlate`` reference). The AdderNet engines (``pe="adder"``:
direct, and Winograd with the standard and the balanced F(2,3) matrices) run multi-channel
layers with padding and C_in not a multiple of P_in (lanes beyond C_in carry random
activations and stale weights, which the engine must mask), against the AdderNet golden
models that ``layer_golden`` calls (themselves checked against brute-force loops in
test_addernet.py). The RNS engines (``RNSConv``: residue arithmetic modulo each modulus,
a redundant modulus checking every output beat) run multi-channel layers with padding,
C_in not a multiple of P_in, random stalls on every stream and extreme values; their
outputs must equal the exact integer correlation and no beat may raise the error flag.
"""

import json

import numpy as np
import pytest

from winogen.gen.config import TileConfig
from winogen.gen.layer import LayerConfig, LayerRun, RUN_ERRORS, layer_golden
from winogen.gen.rns import RNSTileConfig
from winogen.hw.layer import engine_latency, generate_layer, memory_shapes
from winogen.sim import build as vbuild
from winogen.sim.driver import LAYER_BUILD_ARGS, build_engine, engine_files, run_layer

from test_layer import EDGE_CASES

pytestmark = pytest.mark.verilator

ENGINES = {
    # Winograd F(2,3), default points (exact division by 4), raw weights transformed on chip.
    "wino23_p1_online": LayerConfig(TileConfig(2, 3, 8, 8, filter_transform="online"),
                                    max_height=17, max_width=17, max_cin=16, max_cout=8),
    # Winograd F(4,3), offline U, P 4x4, requantization to 8 bits (half to even); 8 pixels
    # per activation beat and 4 filters per weight beat, so that loading outruns compute.
    "wino43_p4_requant": LayerConfig(TileConfig(4, 3, 8, 8, preset="lavin"),
                                     max_height=32, max_width=32, max_cin=16, max_cout=16,
                                     p_in=4, p_out=4, pixels_per_beat=8, filters_per_beat=4,
                                     output_width=8),
    # 3 pixels per beat: beats straddle the m = 2 column blocks at every phase.
    "direct23_p4": LayerConfig(TileConfig(2, 3, 8, 8, algorithm="direct"),
                               max_height=32, max_width=32, max_cin=16, max_cout=16,
                               p_in=4, p_out=4, pixels_per_beat=3),
    # MULT18X18D PEs with their own registers and DP16KD memories with their output
    # registers (the simulation models under Verilator); one weight buffer.
    "wino23_p2x2_ecp5": LayerConfig(TileConfig(2, 3, 8, 8, dsp="ecp5"), max_height=12,
                                    max_width=12, max_cin=4, max_cout=4, p_in=2, p_out=2,
                                    weight_buffers=1, bram="ecp5"),
    # r = 5: padding 0 or 2, so the 2-bit padding field can hold bad values (1, 3).
    "direct25_p1": LayerConfig(TileConfig(2, 5, 6, 6, algorithm="direct"),
                               max_height=12, max_width=12, max_cin=4, max_cout=4,
                               output_width=10, rounding="half_up"),
    # AdderNet: P 2x2 with C_in = 3 masks lane 1 of the second channel group.
    "adder_direct23_p2": LayerConfig(TileConfig(2, 3, 6, 6, pe="adder", algorithm="direct"),
                                     max_height=9, max_width=9, max_cin=4, max_cout=3,
                                     p_in=2, p_out=2, filters_per_beat=2, output_width=8),
    "adder_wino23_std_p2": LayerConfig(TileConfig(2, 3, 6, 6, pe="adder"),
                                       max_height=9, max_width=9, max_cin=4, max_cout=3,
                                       p_in=2, p_out=2),
    "adder_wino23_bal_p2_online": LayerConfig(
        TileConfig(2, 3, 6, 6, pe="adder", adder_matrices="balanced", filter_transform="online"),
        max_height=9, max_width=9, max_cin=4, max_cout=3, p_in=2, p_out=2, output_width=9,
        rounding="half_up"),
    # RNS F(4,3): three 8-bit primes and a redundant one, modular inverses, C_in up to 4
    # accumulated over two channel groups of P_in = 2; the PEs take the unreduced 17-bit V
    # (partial forward reduction).
    "rns_wino43_p2x1": LayerConfig(
        RNSTileConfig(4, 3, moduli=(251, 241, 239, 233), redundant_moduli=1, method="inverse",
                      channels=4, forward_reduction="partial"),
        max_height=10, max_width=10, max_cin=4, max_cout=2, p_in=2, p_out=1),
    # RNS F(2,3): special moduli 2^8-1, 2^8, 2^8+1 with 511 redundant, integer-scaled
    # matrices (D² = 4 divided out after conversion), residue-domain input transforms,
    # P 2x2 and requantization (the error flag travels through the requantizer).
    "rns_wino23_p2x2_requant": LayerConfig(
        RNSTileConfig(2, 3, moduli=(255, 256, 257, 511), redundant_moduli=1, method="scaled",
                      input_transform="residue", channels=3),
        max_height=8, max_width=8, max_cin=3, max_cout=3, p_in=2, p_out=2, output_width=8,
        rounding="half_up"),
    # Hardened (--harden): every block class replicated, tmr and dmr alternating, so the
    # error path is timed from before, at and after the channel accumulator.
    "wino23_p2x2_hardened": LayerConfig(
        TileConfig(2, 3, 8, 8), max_height=8, max_width=8, max_cin=4, max_cout=4, p_in=2,
        p_out=2, output_width=8,
        harden="input_transform:tmr,products:dmr,lane_sums:tmr,accumulation:dmr,"
               "output_transform:tmr,descale:dmr,requantization:tmr"),
    "direct23_p2x2_hardened": LayerConfig(
        TileConfig(2, 3, 8, 8, algorithm="direct"), max_height=8, max_width=8, max_cin=4,
        max_cout=4, p_in=2, p_out=2, output_width=8,
        harden="products:tmr,lane_sums:dmr,accumulation:tmr,requantization:dmr"),
}


def _layer(h, w, cin, cout, padding, *, shift=0, stall=0.3, seed=0, **extra):
    return dict(height=h, width=w, cin=cin, cout=cout, padding=padding, shift=shift,
                stall=stall, seed=seed, **extra)


LAYERS = {
    "wino23_p1_online": [
        _layer(5, 7, 1, 1, 0, seed=1),
        _layer(17, 9, 3, 8, 1, seed=2, scipy=True),
        _layer(8, 8, 16, 1, 1, stall=0.2, seed=3, pattern="extreme"),
        _layer(6, 5, 3, 8, 0, stall=0.0, seed=4),
    ],
    "wino43_p4_requant": [
        _layer(5, 7, 3, 8, 1, shift=5, seed=11),
        _layer(17, 9, 16, 1, 0, shift=12, seed=12, relu=True),
        _layer(7, 5, 1, 8, 0, shift=0, seed=13),       # mostly saturated
        _layer(12, 12, 16, 16, 1, shift=14, stall=0.2, seed=14, pattern="extreme"),
    ],
    "direct23_p4": [
        _layer(17, 9, 16, 8, 1, seed=21, scipy=True),
        _layer(5, 7, 3, 1, 0, seed=22),
        _layer(6, 6, 1, 8, 1, seed=23, pattern="extreme"),
        _layer(32, 32, 16, 16, 1, stall=0.0, seed=24),
    ],
    "wino23_p2x2_ecp5": [
        _layer(12, 12, 4, 4, 1, seed=121, scipy=True),
        _layer(5, 9, 3, 1, 0, seed=122, pattern="extreme"),
        _layer(7, 6, 2, 3, 1, stall=0.0, seed=123),
    ],
    "direct25_p1": [
        _layer(9, 11, 3, 2, 2, shift=6, seed=31),
        _layer(5, 7, 1, 1, 0, shift=0, seed=32, relu=True),
        _layer(12, 12, 4, 4, 2, shift=9, stall=0.0, seed=33, pattern="extreme"),
    ],
    "adder_direct23_p2": [
        _layer(9, 8, 3, 3, 1, shift=3, seed=71),
        _layer(7, 9, 4, 2, 1, shift=4, seed=72, pattern="extreme", relu=True),
        _layer(5, 6, 1, 3, 0, shift=1, stall=0.0, seed=73),
    ],
    "adder_wino23_std_p2": [
        _layer(9, 8, 3, 3, 1, seed=81),
        _layer(6, 7, 4, 1, 0, seed=82, pattern="extreme"),
        _layer(5, 5, 1, 2, 1, stall=0.0, seed=83),
    ],
    "adder_wino23_bal_p2_online": [
        _layer(9, 8, 3, 3, 1, shift=3, seed=91),
        _layer(7, 6, 4, 2, 1, shift=5, seed=92, pattern="extreme"),
        _layer(6, 5, 3, 1, 0, shift=2, stall=0.0, seed=93),
    ],
    "rns_wino43_p2x1": [
        _layer(9, 8, 3, 2, 1, seed=101, scipy=True),
        _layer(10, 10, 4, 2, 1, seed=102, pattern="extreme"),
        _layer(6, 7, 1, 1, 0, stall=0.0, seed=103),
    ],
    "wino23_p2x2_hardened": [
        _layer(8, 7, 3, 3, 1, shift=6, seed=131),
        _layer(8, 8, 4, 4, 1, shift=9, seed=132, pattern="extreme", relu=True),
        _layer(5, 6, 2, 3, 0, shift=4, stall=0.0, seed=133),
    ],
    "direct23_p2x2_hardened": [
        _layer(8, 7, 3, 3, 1, shift=6, seed=141),
        _layer(8, 8, 4, 4, 1, shift=9, seed=142, pattern="extreme"),
        _layer(5, 6, 2, 3, 0, shift=4, stall=0.0, seed=143),
    ],
    "rns_wino23_p2x2_requant": [
        _layer(8, 7, 3, 3, 1, shift=6, seed=111),
        _layer(8, 8, 3, 2, 1, shift=9, seed=112, pattern="extreme", relu=True),
        _layer(5, 6, 2, 3, 0, shift=4, stall=0.0, seed=113),
    ],
}

UTILISATION_LAYER = _layer(32, 32, 16, 16, 1, shift=10, stall=0.0, seed=41)


@pytest.fixture(scope="session")
def engine():
    """Generate (cached, linted on generation) and build (cached) an engine by name."""
    built = {}

    def get(name):
        if name not in built:
            handle, manifest_path = build_engine(ENGINES[name])
            built[name] = (handle, manifest_path, json.loads(manifest_path.read_text()))
        return built[name]
    return get


def _run_of(spec):
    return LayerRun(spec["height"], spec["width"], spec["cin"], spec["cout"], spec["padding"],
                    spec["shift"], spec.get("relu", False))


def _run(engine, name, layers, tmp_path, testcase="layers"):
    handle, manifest_path, manifest = engine(name)
    cycles_out = tmp_path / f"{name}-cycles.json"
    vbuild.run(handle, "winogen.sim.tb_layer", testcase=testcase, seed=5,
               extra_env={"WINOGEN_MANIFEST": str(manifest_path),
                          "WINOGEN_LAYERS": json.dumps(layers),
                          "WINOGEN_CYCLES_OUT": str(cycles_out)})
    return manifest, (json.loads(cycles_out.read_text()) if cycles_out.exists() else None)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layers_bit_exact(name, engine, tmp_path):
    cfg = ENGINES[name]
    manifest, report = _run(engine, name, LAYERS[name], tmp_path)
    assert manifest["latency"] == engine_latency(cfg)
    assert manifest["memories"] == json.loads(json.dumps(memory_shapes(cfg)))
    assert len(report) == len(LAYERS[name])
    for entry in report:
        spec, cycles = entry["spec"], entry["cycles"]
        run = LayerRun(spec["height"], spec["width"], spec["cin"], spec["cout"],
                       spec["padding"], spec["shift"])
        model = cfg.cycles(run)
        assert cycles["compute_ideal"] == model["compute_ideal"]
        if spec["stall"] == 0.0:
            # no gaps, ready held high: the weights at one beat per cycle, and the whole
            # layer as the row-level model predicts it
            drain = cfg.tile.filter_stages if cfg.filter_transform == "online" else 0
            assert cycles["weights"] <= model["weights"] + drain + 2
            assert abs(cycles["total"] - cycles["sequence_model"]) <= 2, cycles
        print(name, spec, cycles)


#: The overlap engines: the acceptance's F(2,3) P 2x2 (its synthesis figures are in the
#: README) and F(4,3) P 4x4 with enough pixels per beat (``wino43_p4_requant``).
OVERLAP_ENGINES = {
    "wino23_p2x2": LayerConfig(TileConfig(2, 3, 8, 8), max_height=32, max_width=32,
                               max_cin=16, max_cout=16, p_in=2, p_out=2),
}


def _overlap_engine(engine, name):
    if name in ENGINES:
        return ENGINES[name], engine(name)
    cfg = OVERLAP_ENGINES[name]
    handle, jpath = build_engine(cfg)
    return cfg, (handle, jpath, json.loads(jpath.read_text()))


@pytest.mark.parametrize("name", ["wino23_p2x2", "wino43_p4_requant"])
def test_three_layers_back_to_back_overlap(name, engine, tmp_path):
    """Three 16->16 32x32 layers (padding 1) streamed back to back with ready held high take
    at most 1.05x their ideal compute steps, as the sequence model predicts, bit-exact."""
    cfg, (handle, jpath, manifest) = _overlap_engine(engine, name)
    shift = 10 if cfg.output_width is not None else 0
    layers = [_layer(32, 32, 16, 16, 1, shift=shift, stall=0.0, seed=41 + k) for k in range(3)]
    out = tmp_path / "cycles.json"
    vbuild.run(handle, "winogen.sim.tb_layer", testcase="sequence", test_dir=tmp_path / "sim",
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_LAYERS": json.dumps(layers),
                          "WINOGEN_CYCLES_OUT": str(out)})
    cycles = json.loads(out.read_text())[0]["cycles"]
    run = LayerRun(32, 32, 16, 16, 1)
    ratio = cycles["total"] / cycles["compute_ideal"]
    macs = 3 * 16 * 16 * 32 * 32 * cfg.r ** 2
    ops = 2 * macs / (cfg.multipliers * cycles["total"])
    theory = 2 * cfg.m ** 2 * cfg.r ** 2 / cfg.n ** 2
    print(f"{name}: 3 layers in {cycles['total']} cycles for {cycles['compute_ideal']} ideal "
          f"steps ({ratio:.4f}x; model {cycles['sequence_model']}); {ops:.3f} ops per "
          f"multiplier per cycle (theory {theory:.3f}); bound: {cfg.cycles(run)['bound']}")
    assert abs(cycles["total"] - cycles["sequence_model"]) <= 2, cycles
    assert ratio <= 1.05, cycles


#: Mixed shapes back to back: a small layer after a large one (the large one's outputs still
#: leave while the small one is done), paddings and channel counts changing every layer.
MIXED = {
    "wino23_p1_online": [(9, 7, 3, 4, 1), (4, 4, 1, 1, 0), (9, 7, 3, 4, 1), (5, 17, 16, 2, 1)],
    "wino43_p4_requant": [(12, 9, 16, 16, 1), (6, 6, 1, 1, 0), (17, 5, 3, 5, 1),
                          (6, 7, 2, 9, 0)],
    "direct25_p1": [(12, 12, 4, 4, 2), (5, 5, 1, 1, 0), (7, 9, 2, 3, 2)],
    "adder_direct23_p2": [(9, 8, 3, 3, 1), (3, 3, 1, 1, 0), (8, 9, 4, 2, 1)],
    "rns_wino23_p2x2_requant": [(8, 7, 3, 3, 1), (4, 4, 1, 1, 0), (8, 7, 3, 3, 1)],
}


@pytest.mark.parametrize("name", list(MIXED))
def test_mixed_layers_back_to_back_with_stalls(name, engine, tmp_path):
    """Layers of different shapes streamed back to back with random gaps and back-pressure
    on every stream: each bit-exact, outputs_last on each layer's last beat, no extra beat."""
    cfg = ENGINES[name]
    layers = [_layer(h, w, ci, co, p, shift=min(4 + k, cfg.max_shift), stall=0.3,
                     seed=200 + k)
              for k, (h, w, ci, co, p) in enumerate(MIXED[name])]
    handle, jpath, _ = engine(name)
    out = tmp_path / "cycles.json"
    vbuild.run(handle, "winogen.sim.tb_layer", testcase="sequence", test_dir=tmp_path / "sim",
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_LAYERS": json.dumps(layers),
                          "WINOGEN_CYCLES_OUT": str(out)})
    cycles = json.loads(out.read_text())[0]["cycles"]
    print(name, cycles)
    assert cycles["compute_ideal"] == sum(cfg.cycles(_run_of(spec))["compute_ideal"]
                                          for spec in layers)


#: A ResNet-18 layer shape on the F(4,3) P 4x4 engine: raw filters stored and transformed
#: as read (U would need 224 DP16KD of read bandwidth), two weight buffers, 8 pixels per
#: beat, requantization to 8 bits; DP16KD block RAMs instantiated (``bram="ecp5"``), so the
#: block count below is the engine's, not an estimate.
RESNET = LayerConfig(TileConfig(4, 3, 8, 8, preset="lavin", filter_transform="online"),
                     max_height=56, max_width=56, max_cin=64, max_cout=64, p_in=4, p_out=4,
                     pixels_per_beat=8, filters_per_beat=4, filter_store="raw", output_width=8,
                     bram="ecp5")
#: Heights far above the ring (3n rows): only the height field's width bounds them.
TALL = LayerConfig(TileConfig(2, 3, 8, 8), max_height=1024, max_width=16, max_cin=2,
                   max_cout=2, p_in=2, p_out=2, pixels_per_beat=2)


@pytest.mark.parametrize("cfg, layer", [
    (RESNET, _layer(56, 56, 64, 64, 1, shift=12, stall=0.0, seed=301)),
    (TALL, _layer(1000, 16, 2, 2, 1, stall=0.1, seed=302)),
    (OVERLAP_ENGINES["wino23_p2x2"], _layer(32, 32, 16, 16, 1, stall=0.0, seed=303)),
], ids=["resnet18_64x56x56", "tall_16x1000", "f23_p2x2_16x32x32"])
def test_big_layers_bit_exact(cfg, layer, tmp_path):
    """Layers far larger than any buffer: a ResNet-18 64->64 56x56 layer and a 1000-row map."""
    import time
    handle, jpath = build_engine(cfg)
    shapes = memory_shapes(cfg)
    out = tmp_path / "cycles.json"
    start = time.monotonic()
    vbuild.run(handle, "winogen.sim.tb_layer", testcase="layers", test_dir=tmp_path / "sim",
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_LAYERS": json.dumps([layer]),
                          "WINOGEN_CYCLES_OUT": str(out)})
    wall = time.monotonic() - start
    cycles = json.loads(out.read_text())[0]["cycles"]
    print(f"{cfg.module_name} {layer['height']}x{layer['width']} {layer['cin']}->"
          f"{layer['cout']}: bit-exact in {wall:.1f} s wall (build excluded), cycles {cycles}; "
          f"memory banks {shapes['activations']['banks']} activation "
          f"({shapes['activations']['word_bits']} x {shapes['activations']['depth']}), "
          f"{shapes['weights']['banks']} weight ({shapes['weights']['word_bits']} x "
          f"{shapes['weights']['depth']})")
    if cfg.bram == "ecp5":
        blocks = {k: v["ecp5_blocks"]["blocks"] for k, v in shapes.items()}
        print(f"DP16KD instantiated: {blocks} = {sum(blocks.values())}")
    if layer["stall"] == 0.0:
        assert abs(cycles["total"] - cycles["sequence_model"]) <= 2, cycles
    # the goal for the 16->16 32x32 layer (the larger ones take longer)
    assert wall < 60 or layer["cin"] * layer["height"] > 16 * 32, wall


def test_error_flags_then_valid_layer(engine, tmp_path):
    name = "direct25_p1"
    _run(engine, name, [_layer(7, 6, 3, 2, 2, shift=4, seed=51)], tmp_path,
         testcase="error_flags")
    # the testbench exercises every check, including a bad padding on this r = 5 engine
    # (a dense engine's six; the zero-skipping engine's three more: test_sparse_engine.py)
    assert set(ENGINES[name].run_errors) == {"height", "width", "cin", "cout", "padding",
                                             "shift"}
    assert set(RUN_ERRORS) - set(ENGINES[name].run_errors) == {"entries", "lane_map",
                                                                "weights"}


def test_run_layer_driver(tmp_path):
    cfg = ENGINES["wino23_p1_online"]
    rng = np.random.default_rng(61)
    x = rng.integers(-128, 128, (3, 9, 6))
    w = rng.integers(-128, 128, (2, 3, 3, 3))
    y, cycles = run_layer(cfg, x, w, padding=1, stall=0.2, seed=3, workdir=tmp_path / "run")
    run = LayerRun(9, 6, 3, 2, padding=1)
    assert y.shape == run.output_shape(cfg)
    assert (y == layer_golden(cfg, run, x, w)).all()
    assert cycles["compute_ideal"] == cfg.cycles(run)["compute_ideal"]
    assert cycles["compute"] >= cycles["compute_ideal"]
    with pytest.raises(ValueError, match="padding must be 0 or 1"):
        run_layer(cfg, x, w, padding=2)


@pytest.mark.parametrize("cfg", [cfg for cfg, _ in EDGE_CASES], ids=lambda c: c.module_name)
def test_edge_configurations_lint_clean(cfg, tmp_path):
    # one-row memories, r = 1, m = 1, even r, scale kept: no empty vectors, no constant compares
    vpath, _, manifest = generate_layer(cfg, tmp_path)
    vbuild.lint([vpath], manifest["top"])


#: Verilator control file of the layer fault build: only the registers the testbench
#: corrupts (channel accumulators, PE product registers) and the step-valid chain it times
#: the flips by are public.
LAYER_FAULT_VLT = """`verilator_config
public_flat_rw -module "*" -var "acc_o*"
public_flat_rw -module "*" -var "term_d*"
public_flat_rd -module "*" -var "core_valid_d*"
"""


def fault_build(cfg):
    """``(handle, manifest_path)``: the engine built with :data:`LAYER_FAULT_VLT` (cached)."""
    vpath, jpath = engine_files(cfg)
    vlt = vpath.with_name("layer_faults.vlt")
    vlt.write_text(LAYER_FAULT_VLT)
    top = json.loads(jpath.read_text())["top"]
    return vbuild.build([vpath, vlt], top, build_args=LAYER_BUILD_ARGS), jpath


def test_rns_layer_fault_injection(tmp_path):
    """200 layers, each with one bit flipped in one residue channel of the RNS core during
    the compute phase (accumulators and PE products, the redundant channel included), and 20
    fault-free layers: no wrong output beat without the error flag, no false alarm."""
    cfg = ENGINES["rns_wino43_p2x1"]
    handle, jpath = fault_build(cfg)
    report = tmp_path / "faults.json"
    vbuild.run(handle, "winogen.sim.tb_layer", testcase="fault_injection", seed=3,
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_FAULT_LAYERS": "200",
                          "WINOGEN_CLEAN": "20", "WINOGEN_FAULT_SEED": "3",
                          "WINOGEN_FAULT_REPORT": str(report)})
    summary = json.loads(report.read_text())
    print(summary)
    assert summary["injected"] == 200
    assert summary["wrong_and_unflagged"] == 0 and summary["clean_false_alarms"] == 0
    assert summary["clean_wrong"] == 0
    # The flips reached the outputs and every channel, the redundant one included, at both
    # kinds of site. Many flips are masked: they hit a register holding no live value (the
    # layers are small, so the pipeline is often still filling) or an element beyond the
    # map, and are overwritten or cropped; seed 3 corrupts 35 of the 200 layers.
    assert summary["wrong_layers"] >= 20 and summary["flagged_layers"] >= summary["wrong_layers"]
    sites = summary["by_site"]
    assert {k.split("/")[1] for k in sites} == {f"ch{i}" for i in range(len(cfg.tile.moduli))}
    assert {k.split("/")[0] for k in sites} == {"acc", "P"}


#: The hardened build: every signal of every copy of a replicated block is public (the
#: testbench finds the registers by walking the copies), and the step-valid chain.
HARDENED_FAULT_VLT = """`verilator_config
public_flat_rw -module "*redundant_copy*" -var "*"
public_flat_rd -module "*" -var "core_valid_d*"
"""


@pytest.mark.parametrize("name", ["wino23_p2x2_hardened", "direct23_p2x2_hardened"])
def test_hardened_fault_injection(name, tmp_path):
    """One bit flip per layer in one register of one copy of a hardened block, 150 layers
    spread over the block classes: every flip into a tmr block is masked, every flip into a
    dmr block is masked or flagged by the error output."""
    cfg = ENGINES[name]
    vpath, jpath = engine_files(cfg)
    vlt = vpath.with_name("hardened_faults.vlt")
    vlt.write_text(HARDENED_FAULT_VLT)
    handle = vbuild.build([vpath, vlt], json.loads(jpath.read_text())["top"],
                          build_args=LAYER_BUILD_ARGS)
    report = tmp_path / "faults.json"
    vbuild.run(handle, "winogen.sim.tb_hardened", testcase="hardened_copy_flips", seed=3,
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_FAULT_LAYERS": "150",
                          "WINOGEN_FAULT_SEED": "7", "WINOGEN_FAULT_REPORT": str(report)})
    summary = json.loads(report.read_text())
    print(json.dumps(summary, indent=1))
    classes = {key.split("/")[0] for key in summary["by_class"]}
    assert classes == {c for c, _ in cfg.harden}
    assert summary["flipped"] >= 0.9 * summary["layers"]
    for key, entry in summary["by_class"].items():
        assert entry["sdc"] == 0, key
        if key.endswith("/tmr"):
            assert entry["detected"] == 0 and entry["masked"] == entry["injections"], key
    # The dmr comparators do flag: some flips reach the outputs.
    assert sum(e["detected"] for k, e in summary["by_class"].items() if k.endswith("/dmr")) > 0
