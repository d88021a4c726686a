"""The zero-skipping layer engine (LayerConfig.sparse_lanes): the compressed weight stream
(winogen.gen.sparse), the configuration checks, and under Verilator: bit-exact at 0, 50 and
75 % Winograd-domain sparsity with random stalls on every stream, cycles against the ideal
(nonzeros / multipliers) and against the dense engine, and the run-time checks (entries,
lane map, entries out of range) flagged by the hardware."""

import json

import numpy as np
import pytest

from winogen.gen.config import TileConfig
from winogen.gen.layer import LayerConfig, LayerRun
from winogen.gen.sparse import (check_stream, compress, pack_entry, pack_lane_map,
                                unpack_entry)

from test_specialized import _random_u

QTILE = TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise", filter_transform="offline")


def _engine(lanes=4, **kw):
    args = dict(max_height=8, max_width=8, max_cin=8, max_cout=4, p_in=2, p_out=2,
                output_width=8)
    args.update(kw)
    return LayerConfig(QTILE, sparse_lanes=lanes, **args)


def test_compress_round_trip_and_balance():
    cfg = _engine()
    u = _random_u(QTILE, (4, 8), 0.75, np.random.default_rng(0))
    sw = compress(cfg, u)
    assert sorted(sw.lane_map) == list(range(16))
    assert sw.nonzero == np.count_nonzero(u)
    assert sum(sw.lane_loads) == sw.nonzero + sw.fillers
    # rebuild U from the entries
    back = np.zeros_like(u)
    for beat in sw.beats:
        for k, entry in enumerate(beat):
            e = unpack_entry(cfg, pack_entry(cfg, entry))
            if e["valid"]:
                assert sw.lane_map[k * cfg.lane_slots + e["slot"]] == e["position"]
                back[e["cout_index"], e["cin_index"], e["position"] // 4,
                     e["position"] % 4] += e["value"]
    assert np.array_equal(back, u)
    # the longest lane is within one position's load of the mean
    assert sw.entries <= (sum(sw.lane_loads) / cfg.sparse_lanes) * 1.15 + 8
    run = LayerRun(8, 8, 8, 4, 1, 5, entries=sw.entries,
                   lane_map=pack_lane_map(cfg, sw.lane_map))
    assert run.errors(cfg) == []
    check_stream(cfg, run, sw.beats, sw.lane_map)


def test_stream_checks_refuse_out_of_range_entries():
    cfg = _engine()
    u = _random_u(QTILE, (4, 8), 0.5, np.random.default_rng(1))
    sw = compress(cfg, u)
    run = LayerRun(8, 8, 8, 4, 1, 5, entries=sw.entries,
                   lane_map=pack_lane_map(cfg, sw.lane_map))
    bad = [list(map(dict, beat)) for beat in sw.beats]
    bad[0][0]["position"] = sw.lane_map[cfg.lane_slots]         # lane 1's position
    with pytest.raises(ValueError, match=r"weight beat 0, lane 0: position \d+ is not the "
                                         r"lane's slot"):
        check_stream(cfg, run, bad, sw.lane_map)
    bad = [list(map(dict, beat)) for beat in sw.beats]
    bad[1][2]["cin_index"] = 8
    with pytest.raises(ValueError, match=r"weight beat 1, lane 2: input channel 8 must be in "
                                         r"0..7"):
        check_stream(cfg, run, bad, sw.lane_map)
    with pytest.raises(ValueError, match="lane_map must be a permutation"):
        check_stream(cfg, run, sw.beats, (0,) * 16)


@pytest.mark.parametrize("make, message", [
    (lambda: _engine(lanes=5), r"sparse_lanes must divide n² = 16 \(one of 1, 2, 4, 8, 16\), "
                               r"not 5"),
    (lambda: _engine(lanes=32), r"sparse_lanes must be an integer from 1 to 16, not 32"),
    (lambda: LayerConfig(TileConfig(2, 3, 8, 8, filter_transform="online"), sparse_lanes=4),
     r"sparse_lanes need filter_transform='offline'"),
    (lambda: LayerConfig(TileConfig(2, 3, 8, 8, pe="adder", filter_transform="offline"),
                         sparse_lanes=4), r"sparse_lanes apply to Winograd engines of pe='mul'"),
    (lambda: _engine(filters_per_beat=2), r"filters_per_beat does not apply to a "
                                          r"zero-skipping engine"),
])
def test_sparse_config_refusals(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_run_checks_entries_and_lane_map():
    cfg = _engine()
    ident = pack_lane_map(cfg, tuple(range(16)))
    assert LayerRun(8, 8, 8, 4, 1, entries=10, lane_map=ident).errors(cfg) == []
    assert LayerRun(8, 8, 8, 4, 1, entries=0, lane_map=ident).errors(cfg) == ["entries"]
    assert LayerRun(8, 8, 8, 4, 1, entries=cfg.max_entries + 1,
                    lane_map=ident).errors(cfg) == ["entries"]
    dup = pack_lane_map(cfg, (0,) + tuple(range(15)))
    assert LayerRun(8, 8, 8, 4, 1, entries=10, lane_map=dup).errors(cfg) == ["lane_map"]


# -- hardware -------------------------------------------------------------------------------

def _tb(cfg, u, layers, tmp_path, testcase="layers"):
    """Run tb_layer's ``testcase`` on the engine with Û ``u`` shared by ``layers``."""
    from winogen.sim import build as vbuild
    from winogen.sim.driver import build_engine
    handle, jpath = build_engine(cfg)
    np.save(tmp_path / "u.npy", u)
    out = tmp_path / "cycles.json"
    vbuild.run(handle, "winogen.sim.tb_layer", testcase=testcase, test_dir=tmp_path / "sim",
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_LAYERS": json.dumps(layers),
                          "WINOGEN_CYCLES_OUT": str(out),
                          "WINOGEN_SPARSE_U": str(tmp_path / "u.npy")})
    return json.loads(out.read_text()) if out.exists() else None


@pytest.mark.verilator
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.75])
def test_sparse_engine_bit_exact_under_verilator(sparsity, tmp_path):
    """Three layers of one engine (random stalls on every stream in the first), bit-exact;
    with no stalls, a 16 -> 8, 16 x 16 layer takes at most 1.15x the ideal nonzeros / K
    cycles per tile at 50 and 75 % sparsity, as the cycle model predicts."""
    cfg = _engine(lanes=4, max_height=16, max_width=16, max_cin=16, max_cout=8)
    u = _random_u(QTILE, (8, 16), sparsity, np.random.default_rng(int(100 * sparsity)))
    layers = [dict(height=9, width=7, cin=16, cout=8, padding=1, shift=6, relu=True,
                   stall=0.3, seed=1),
              dict(height=16, width=16, cin=16, cout=8, padding=1, shift=6, stall=0.0,
                   seed=2),
              dict(height=6, width=8, cin=16, cout=8, padding=0, shift=7, stall=0.0, seed=3,
                   pattern="extreme")]
    report = _tb(cfg, u, layers, tmp_path)
    sw = compress(cfg, u)
    cycles = report[1]["cycles"]
    run = LayerRun(16, 16, 16, 8, 1)
    tiles = run.tile_rows(cfg) * run.tile_cols(cfg)
    ideal = tiles * sw.nonzero / cfg.sparse_lanes
    print(f"sparsity {sparsity}: {cycles['total']} cycles (model {cycles['sequence_model']}), "
          f"ideal {ideal:.0f} ({cycles['total'] / ideal:.3f}x); {sw.entries} entries per tile "
          f"for nonzero/K {sw.ideal:.1f}, {sw.fillers} fillers")
    assert abs(cycles["total"] - cycles["sequence_model"]) <= 0.01 * cycles["total"], cycles
    if sparsity:
        assert cycles["total"] <= 1.15 * ideal, (cycles, ideal)


@pytest.mark.verilator
def test_dense_weights_against_the_dense_engine(tmp_path):
    """Dense weights: the zero-skipping engine with 16 multipliers (one lane per position)
    against WinogradConv P 1x1 (16 multipliers) on the same layer: within 5 %."""
    from winogen.sim.driver import run_layer
    zs = _engine(lanes=16, max_height=16, max_width=16, max_cin=16, max_cout=8, p_in=1,
                 p_out=1)
    dense = LayerConfig(QTILE, max_height=16, max_width=16, max_cin=16, max_cout=8,
                        output_width=8)
    rng = np.random.default_rng(7)
    u = _random_u(QTILE, (8, 16), 0.0, rng)
    x = rng.integers(-128, 128, (16, 16, 16))
    y_zs, c_zs = run_layer(zs, x, u, padding=1, shift=6, winograd_weights=True)
    y_d, c_d = run_layer(dense, x, u, padding=1, shift=6, winograd_weights=True)
    assert np.array_equal(y_zs, y_d)
    print(f"dense weights: zero-skipping {c_zs['total']} cycles, dense engine "
          f"{c_d['total']} ({c_zs['total'] / c_d['total']:.4f}x)")
    assert c_zs["total"] <= 1.05 * c_d["total"], (c_zs, c_d)


@pytest.mark.verilator
def test_sparse_engine_flags_bad_runs_under_verilator(tmp_path):
    """entries and lane_map out of range (and the other run-time checks) set status.errors
    and start nothing; a valid layer then runs bit-exact."""
    cfg = _engine()
    _tb(cfg, _random_u(QTILE, (4, 8), 0.5, np.random.default_rng(3)), [], tmp_path,
        testcase="error_flags")


@pytest.mark.verilator
def test_entry_out_of_range_is_flagged_by_the_hardware(tmp_path):
    """A compressed stream naming another lane's position, or a channel beyond C_in: the
    driver refuses it before sending; sent anyway, status.errors bit weights goes up (and
    the next config beat clears it)."""
    from winogen.sim import build as vbuild
    from winogen.sim.driver import build_engine
    cfg = _engine(max_cin=16)           # C_in 8 of 16: a channel beyond C_in is encodable
    u = _random_u(QTILE, (4, 8), 0.5, np.random.default_rng(4))
    handle, jpath = build_engine(cfg)
    np.save(tmp_path / "u.npy", u)
    vbuild.run(handle, "winogen.sim.tb_sparse", testcase="bad_entries",
               test_dir=tmp_path / "sim",
               extra_env={"WINOGEN_MANIFEST": str(jpath),
                          "WINOGEN_SPARSE_U": str(tmp_path / "u.npy")})


def test_cli_generates_a_zero_skipping_engine(tmp_path, capsys):
    from winogen.cli import main
    out = tmp_path / "zs"
    assert main(["generate", "conv", "--m", "2", "--r", "3", "--sparse-lanes", "4",
                 "--pin", "2", "--pout", "2", "--max-width", "8", "--max-height", "8",
                 "--max-cin", "8", "--max-cout", "4", "--output-width", "8",
                 "-o", str(out)]) == 0
    assert "zero-skipping layer engine F(2,3), 4 multipliers" in capsys.readouterr().out
    manifest = json.loads(next(out.glob("*.json")).read_text())
    assert manifest["sparse"]["lanes"] == 4 and manifest["multipliers"] == 4
    assert {"entries", "lane_map"} <= set(manifest["config_fields"])
    assert manifest["status_errors"]["weights"] == 8


@pytest.mark.parametrize("argv, needle", [
    (["--sparse-lanes", "3"], "--sparse-lanes must divide n² = 16"),
    (["--sparse-lanes", "4", "--filter-transform", "online"],
     "--sparse-lanes need --filter-transform offline"),
    (["--sparse-lanes", "4", "--harden", "products:tmr"],
     "--harden does not apply to a zero-skipping engine"),
])
def test_cli_refuses_bad_sparse_options(argv, needle, tmp_path, capsys):
    from winogen.cli import main
    assert main(["generate", "conv", "--m", "2", "--r", "3", *argv,
                 "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "o").exists()
