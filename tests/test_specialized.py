"""The weight-specialized layer engine (fixed_weights, `generate ... --weights FILE.npz`):
the weights file and configuration checks, the ports, the constant-product counts
falling with sparsity, and bit-exactness under Verilator at 0, 50 and 75 % Winograd-domain
sparsity (exact and quantized domains, random stalls on every stream, back-to-back
layers), with the run-time channel checks flagged by the hardware."""

import json
import re

import numpy as np
import pytest

from winogen.gen.config import TileConfig
from winogen.gen.fixedweights import FixedWeights, load_weights_file, specialized_products
from winogen.gen.layer import LayerConfig, LayerRun, layer_golden

QTILE = TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise")
EXACT = TileConfig(2, 3, 8, 8)


def _random_u(tile, shape, sparsity, rng):
    """Û drawn uniformly in each position's range, exactly ``sparsity`` of it zero."""
    n = tile.n
    u = np.zeros((*shape, n, n), dtype=np.int64)
    for k, iv in enumerate(tile.quantization.uq_intervals):
        values = rng.integers(iv.lo, iv.hi + 1, shape)
        values[values == 0] = 1
        u[:, :, k // n, k % n] = values
    flat = u.reshape(-1)
    flat[rng.permutation(flat.size)[:round(sparsity * flat.size)]] = 0
    return u


def _engine(tile, weights, **kw):
    fw = weights if isinstance(weights, FixedWeights) else FixedWeights("u", weights)
    return LayerConfig(tile, max_height=8, max_width=8, max_cin=fw.cin, max_cout=fw.cout,
                       p_in=fw.cin, p_out=fw.cout, fixed_weights=fw, **kw)


# -- weights and configuration ---------------------------------------------------------------

def test_fixed_weights_json_round_trip_and_hash():
    rng = np.random.default_rng(0)
    u = _random_u(QTILE, (3, 2), 0.5, rng)
    cfg = _engine(QTILE, u, output_width=8)
    again = LayerConfig.from_json(json.loads(json.dumps(cfg.to_json())))
    assert again.to_json() == cfg.to_json() and again.fixed_weights == cfg.fixed_weights
    assert again.module_name == cfg.module_name
    assert cfg.fixed_weights.sha256[:8] in cfg.module_name
    changed = np.where(u == 0, 0, u)
    changed[tuple(np.argwhere(u != 0)[0])] *= -1
    assert FixedWeights("u", changed).sha256 != cfg.fixed_weights.sha256
    # a plain engine's JSON has no fixed_weights field
    plain = LayerConfig(QTILE, max_height=8, max_width=8)
    assert "fixed_weights" not in plain.to_json()


def test_weights_file_bad_input(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "w.npz"
    np.savez(path, w=rng.integers(-128, 128, (2, 3, 3, 3)))
    assert load_weights_file(path).kind == "w"
    cases = [
        (dict(w=np.zeros((2, 3, 3, 3)), u=np.zeros((2, 3, 4, 4), dtype=np.int64)),
         r"--weights must hold exactly one array, named w .* or u .*, not \['u', 'w'\]"),
        (dict(x=np.zeros((2, 3, 3, 3), dtype=np.int64)), r"not \['x'\]"),
        (dict(w=np.zeros((2, 3, 3, 3))), r"--weights array w must hold integers, not dtype "
                                         r"float64"),
        (dict(u=np.zeros((2, 3, 4), dtype=np.int64)), r"must have 4 dimensions"),
    ]
    for k, (arrays, message) in enumerate(cases):
        bad = tmp_path / f"bad{k}.npz"
        np.savez(bad, **arrays)
        with pytest.raises(ValueError, match=message):
            load_weights_file(bad)
    with pytest.raises(ValueError, match=r"--weights must name an existing \.npz file"):
        load_weights_file(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"--weights must be a NumPy \.npz file"):
        load_weights_file(tmp_path / "text.npz")


@pytest.mark.parametrize("make, message", [
    (lambda: _engine(QTILE, FixedWeights("w", np.full((2, 2, 3, 3), 200))),
     r"fixed_weights w values must lie in \[-128, 127\], not \[200, 200\]"),
    (lambda: _engine(QTILE, FixedWeights("w", np.zeros((2, 2, 5, 5), dtype=np.int64))),
     r"fixed_weights w \(raw filters\) must have shape \(C_out, C_in, 3, 3\)"),
    (lambda: _engine(EXACT, FixedWeights("u", np.zeros((2, 2, 4, 4), dtype=np.int64))),
     r"fixed_weights u: Winograd-domain weights apply to quantized Winograd domains"),
    (lambda: _engine(QTILE, np.full((2, 2, 4, 4), 10 ** 6)),
     r"at position \(0, 0\) must lie in"),
    (lambda: LayerConfig(QTILE, max_cin=4, max_cout=2, p_in=2, p_out=2,
                         fixed_weights=FixedWeights("u", np.zeros((2, 4, 4, 4), dtype=int))),
     r"p_in must be 4 with these fixed weights .* not 2"),
    (lambda: LayerConfig(QTILE, max_cin=4, max_cout=3, p_in=4, p_out=3,
                         fixed_weights=FixedWeights("u", np.zeros((2, 4, 4, 4), dtype=int))),
     r"max_cout must be 2 with these fixed weights"),
    (lambda: _engine(TileConfig(2, 3, 8, 8, pe="adder"),
                     FixedWeights("w", np.zeros((2, 2, 3, 3), dtype=np.int64))),
     r"fixed_weights apply to Winograd engines of pe='mul', not algorithm='winograd' with "
     r"pe='adder'"),
    (lambda: _engine(TileConfig(2, 3, 8, 8, algorithm="direct"),
                     FixedWeights("w", np.zeros((2, 2, 3, 3), dtype=np.int64))),
     r"fixed_weights apply to Winograd engines"),
    (lambda: _engine(EXACT, FixedWeights("w", np.zeros((2, 2, 3, 3), dtype=np.int64)),
                     filters_per_beat=2),
     r"filters_per_beat does not apply to a weight-specialized engine"),
    (lambda: _engine(EXACT, FixedWeights("w", np.zeros((2, 2, 3, 3), dtype=np.int64)),
                     harden="products:tmr"),
     r"fixed_weights and harden cannot be combined"),
])
def test_specialized_config_refusals(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_run_time_channels_must_be_the_weights():
    cfg = _engine(QTILE, _random_u(QTILE, (3, 2), 0.5, np.random.default_rng(2)))
    assert LayerRun(5, 5, 2, 3, 1).errors(cfg) == []
    assert LayerRun(5, 5, 1, 3, 1).errors(cfg) == ["cin"]
    assert LayerRun(5, 5, 2, 2, 1).errors(cfg) == ["cout"]
    with pytest.raises(ValueError, match=r"cin must be 2 for this engine, not 1"):
        LayerRun(5, 5, 1, 3, 1).check(cfg)


def test_cycle_model_has_no_weight_stream():
    cfg = _engine(QTILE, _random_u(QTILE, (3, 2), 0.5, np.random.default_rng(3)))
    run = LayerRun(8, 8, 2, 3, 1)
    cycles = cfg.cycles(run)
    assert cycles["weights"] == 0
    assert cycles["compute_ideal"] == cycles["tiles"]       # one step per tile
    assert cfg.memory_bits["weights"] == 0


# -- hardware ------------------------------------------------------------------------------

def test_engine_has_no_weight_port_and_the_manifest_names_the_weights(tmp_path):
    from winogen.hw.layer.manifest import generate_layer
    rng = np.random.default_rng(4)
    u = _random_u(QTILE, (3, 2), 0.75, rng)
    cfg = _engine(QTILE, u, output_width=8)
    vpath, _, manifest = generate_layer(cfg, tmp_path)
    ports = {p["name"] for p in manifest["ports"]}
    assert not any(p.startswith("weights") for p in ports)
    assert {"config__payload", "activations__payload", "outputs__payload"} <= ports
    assert "weights" not in manifest["streams"] and "weights" not in manifest["memories"]
    fw = manifest["fixed_weights"]
    assert fw["sha256"] == FixedWeights("u", u).sha256
    assert fw["nonzero"] == np.count_nonzero(u) and fw["products"] == u.size
    assert manifest["multipliers"] == 0
    assert "weights__payload" not in vpath.read_text()


def test_adders_fall_with_sparsity():
    """The constant trees' adders (from the plan, no synthesis) at 0, 50 and 75 % zeros."""
    from winogen.hw.layer.specialized import specialized_adders
    rng = np.random.default_rng(5)
    dense = _random_u(QTILE, (4, 4), 0.0, rng)
    adders = []
    for sparsity in (0.0, 0.5, 0.75):
        u = dense.copy()
        u.reshape(-1)[np.random.default_rng(6).permutation(u.size)[:round(sparsity * u.size)]] = 0
        cfg = _engine(QTILE, u)
        adders.append(specialized_adders(cfg))
        counts = specialized_products(u)
        assert counts["nonzero"] == u.size - round(sparsity * u.size)
    assert adders[0] > adders[1] > adders[2], adders


def _sparse_weights(tile, shape, sparsity, seed):
    if tile.quantization:
        return FixedWeights("u", _random_u(tile, shape, sparsity, np.random.default_rng(seed)))
    # exact engines take raw filters; Winograd-domain zeros come from zero filters
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (*shape, 3, 3))
    w.reshape(-1, 9)[rng.permutation(shape[0] * shape[1])[:round(sparsity * shape[0]
                                                                  * shape[1])]] = 0
    return FixedWeights("w", w)


#: (tile, (C_out, C_in), sparsity, requantize): exact and quantized domains; the cost
#: model's DSP blocks (MULT18X18D) beside the shift-adds.
VERILATOR_CASES = {
    "q_dense": (QTILE, (3, 4), 0.0, True),
    "q_50_dsp_ecp5": (TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise",
                                 dsp="ecp5"), (3, 4), 0.5, True),
    "q_50": (QTILE, (3, 4), 0.5, True),
    "q_75": (QTILE, (3, 4), 0.75, True),
    "exact_50": (EXACT, (2, 3), 0.5, False),
}


@pytest.mark.verilator
@pytest.mark.parametrize("name", list(VERILATOR_CASES))
def test_specialized_engine_bit_exact_under_verilator(name, tmp_path):
    from winogen.sim import build as vbuild
    from winogen.sim.driver import build_engine
    tile, shape, sparsity, requant = VERILATOR_CASES[name]
    fw = _sparse_weights(tile, shape, sparsity, seed=len(name))
    cfg = _engine(tile, fw, **({"output_width": 8} if requant else {}))
    handle, jpath = build_engine(cfg)
    cout, cin = shape
    shift = 6 if requant else 0
    layers = [dict(height=8, width=7, cin=cin, cout=cout, padding=1, shift=shift,
                   relu=requant, stall=0.3, seed=31),
              dict(height=5, width=8, cin=cin, cout=cout, padding=0, shift=shift, stall=0.0,
                   seed=32),
              dict(height=8, width=8, cin=cin, cout=cout, padding=1, shift=shift, stall=0.0,
                   seed=33, pattern="extreme")]
    out = tmp_path / "cycles.json"
    vbuild.run(handle, "winogen.sim.tb_layer", testcase="layers", test_dir=tmp_path / "sim",
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_LAYERS": json.dumps(layers),
                          "WINOGEN_CYCLES_OUT": str(out)})
    report = json.loads(out.read_text())
    assert len(report) == len(layers)
    for entry in report[1:]:
        spec, cycles = entry["spec"], entry["cycles"]
        assert cycles["weights"] == 0
        assert abs(cycles["total"] - cycles["sequence_model"]) <= 2, cycles


@pytest.mark.verilator
def test_specialized_engine_flags_bad_runs_under_verilator(tmp_path):
    """cin/cout other than the weights' (and the other run-time checks) set status.errors,
    and nothing moves; a valid layer then runs bit-exact."""
    from winogen.sim import build as vbuild
    from winogen.sim.driver import build_engine
    cfg = _engine(QTILE, _sparse_weights(QTILE, (3, 4), 0.5, 7), output_width=8)
    handle, jpath = build_engine(cfg)
    vbuild.run(handle, "winogen.sim.tb_layer", testcase="error_flags",
               test_dir=tmp_path / "sim", extra_env={"WINOGEN_MANIFEST": str(jpath)})


@pytest.mark.verilator
def test_driver_runs_the_fixed_weights_and_refuses_others():
    from winogen.sim.driver import run_layer
    fw = _sparse_weights(QTILE, (2, 2), 0.75, 8)
    cfg = _engine(QTILE, fw, output_width=8)
    x = np.random.default_rng(9).integers(-128, 128, (2, 6, 6))
    y, _ = run_layer(cfg, x, None, padding=1, shift=5, stall=0.2)
    run = LayerRun(6, 6, 2, 2, 1, 5)
    assert np.array_equal(y, layer_golden(cfg, run, x, fw.values, winograd_weights=True))
    with pytest.raises(ValueError, match=r"w must be the weight-specialized engine's own "
                                         r"weights"):
        run_layer(cfg, x, fw.values + (fw.values == 0), padding=1, shift=5,
                  winograd_weights=True)


# -- command line ----------------------------------------------------------------------------

def _cli(*argv):
    """``winogen ARGV`` as the console script runs it: (status, stdout, stderr)."""
    import contextlib
    import io
    from types import SimpleNamespace
    from winogen.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as e:
            status = e.code
    return SimpleNamespace(returncode=status, stdout=out.getvalue(), stderr=err.getvalue())


def test_cli_generates_a_specialized_engine(tmp_path):
    rng = np.random.default_rng(10)
    w = rng.integers(-128, 128, (4, 3, 3, 3))
    np.savez(tmp_path / "w.npz", w=w)
    out = tmp_path / "out"
    r = _cli("generate", "conv", "--m", "2", "--r", "3", "--weights", str(tmp_path / "w.npz"),
             "--output-width", "8", "--max-width", "8", "--max-height", "8", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "weight-specialized layer engine F(2,3), 3 -> 4 channels" in r.stdout
    manifest = json.loads(next(out.glob("*.json")).read_text())
    assert manifest["fixed_weights"]["sha256"] == FixedWeights("w", w).sha256
    assert manifest["parameters"]["max_cin"] == 3 and manifest["parameters"]["p_out"] == 4


@pytest.mark.parametrize("arrays, extra, message", [
    (dict(w=np.zeros((2, 2, 3, 3))), (), "--weights array w must hold integers, not dtype "
                                         "float64"),
    (dict(w=np.full((2, 2, 3, 3), 200)), (), "--weights w values must lie in [-128, 127], not "
                                             "[200, 200]"),
    (dict(w=np.ones((2, 2, 5, 5), dtype=np.int64)), (),
     "--weights w (raw filters) must have shape (C_out, C_in, 3, 3), not (2, 2, 5, 5)"),
    (dict(u=np.ones((2, 2, 4, 4), dtype=np.int64)), (), "--weights u: Winograd-domain weights "
                                                        "apply to quantized Winograd domains"),
    (dict(w=np.ones((2, 2, 3, 3), dtype=np.int64)), ("--pin", "2"),
     "--pin does not apply to weight-specialized engines"),
    (dict(w=np.ones((2, 2, 3, 3), dtype=np.int64)), ("--max-cout", "2"),
     "--max-cout does not apply to weight-specialized engines"),
    (dict(w=np.ones((2, 2, 3, 3), dtype=np.int64)), ("--harden", "products:tmr"),
     "--harden does not apply to weight-specialized engines"),
])
def test_cli_refuses_bad_weights(tmp_path, arrays, extra, message):
    np.savez(tmp_path / "w.npz", **arrays)
    out = tmp_path / "out"
    r = _cli("generate", "conv", "--m", "2", "--r", "3", "--weights", str(tmp_path / "w.npz"),
             *extra, "-o", str(out))
    assert r.returncode == 2
    lines = [line for line in r.stderr.strip().splitlines() if line.startswith("winogen:")]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_cli_weights_only_for_conv(tmp_path):
    np.savez(tmp_path / "w.npz", w=np.ones((2, 2, 3, 3), dtype=np.int64))
    r = _cli("generate", "direct", "--m", "2", "--r", "3", "--weights",
             str(tmp_path / "w.npz"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "--weights applies to generate conv only" in r.stderr


@pytest.mark.slow
def test_cost_model_puts_long_constants_in_dsp_blocks(tmp_path):
    """With --dsp ecp5, products of 3+ CSD digits are MULT18X18D instances (one $mul-free
    instance each), the rest shift-adds; with --dsp inferred, none."""
    from winogen.gen.csd import csd_digits
    from winogen.gen.fixedweights import DSP_MIN_DIGITS
    from winogen.hw.layer.manifest import generate_layer
    u = _random_u(QTILE, (3, 4), 0.5, np.random.default_rng(12))
    want = sum(len(csd_digits(int(v))) >= DSP_MIN_DIGITS for v in u.ravel())
    assert want > 0
    tile = TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise", dsp="ecp5")
    vpath, _, manifest = generate_layer(_engine(tile, u), tmp_path / "dsp")
    assert manifest["fixed_weights"]["dsp_products"] == want == manifest["multipliers"]
    assert len(re.findall(r"^\s*MULT18X18D\b", vpath.read_text(), re.M)) == want
    _, _, plain = generate_layer(_engine(QTILE, u), tmp_path / "plain")
    assert plain["fixed_weights"]["dsp_products"] == 0
    assert plain["fixed_weights"]["adders"] > manifest["fixed_weights"]["adders"]
