"""AdderNet: golden models, the |a - b| PE, and the adder tile engines in Amaranth's simulator."""

from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from winogen.gen.addernet import (adder_direct_conv2d, adder_matrices, adder_winograd_conv2d,
                                  compare_adder_models, integer_adder_transforms)
from winogen.gen.bounds import Interval
from winogen.gen.config import TileConfig
from winogen.gen.fixedpoint import TileModel
from winogen.gen.layer import LayerConfig
from winogen.gen.pe import PE_KINDS, pe_kind
from winogen.hw.pe import AbsDiffPE, PEArray
from winogen.hw.tile import make_tile_engine

from tile_vectors import tile_vectors
from test_tile import run_engine


def brute_direct(x, w, p):
    N, C, H, W = x.shape
    K, _, r, _ = w.shape
    Ho, Wo = H + 2 * p - r + 1, W + 2 * p - r + 1
    out = np.zeros((N, K, Ho, Wo), dtype=np.int64)
    for n in range(N):
        for k in range(K):
            for i in range(Ho):
                for j in range(Wo):
                    s = 0
                    for c in range(C):
                        for a in range(r):
                            for b in range(r):
                                y, z = i + a - p, j + b - p
                                v = int(x[n, c, y, z]) if 0 <= y < H and 0 <= z < W else 0
                                s += abs(v - int(w[k, c, a, b]))
                    out[n, k, i, j] = -s
    return out


def brute_winograd(x, w, spec, p):
    """Rational Li et al. per tile with Fractions, zero-extended tiles, times the scale."""
    AT, G, BT = adder_matrices(spec)
    m, n, r = len(AT), len(BT), len(G[0])
    N, C, H, W = x.shape
    Ho, Wo = H + 2 * p - r + 1, W + 2 * p - r + 1
    th, tw = -(-Ho // m), -(-Wo // m)

    def px(nn, c, y, z):
        y, z = y - p, z - p
        return int(x[nn, c, y, z]) if 0 <= y < H and 0 <= z < W else 0

    def mat(A, X, B):  # A X B with lists
        return [[sum(A[i][a] * X[a][b] * B[b][j] for a in range(len(X)) for b in range(len(X[0])))
                 for j in range(len(B[0]))] for i in range(len(A))]
    T = lambda M: [list(col) for col in zip(*M)]
    out = np.zeros((N, len(w), th * m, tw * m), dtype=object)
    for nn in range(N):
        for k in range(len(w)):
            for ti in range(th):
                for tj in range(tw):
                    acc = [[Fraction(0)] * n for _ in range(n)]
                    for c in range(C):
                        d = [[px(nn, c, ti * m + a, tj * m + b) for b in range(n)] for a in range(n)]
                        U = mat(G, [[int(v) for v in row] for row in w[k, c]], T(G))
                        V = mat(BT, d, T(BT))
                        acc = [[acc[i][j] - abs(U[i][j] - V[i][j]) for j in range(n)] for i in range(n)]
                    Y = mat(AT, acc, T(AT))
                    for i in range(m):
                        for j in range(m):
                            out[nn, k, ti * m + i, tj * m + j] = Y[i][j]
    return out[:, :, :Ho, :Wo]


@pytest.mark.parametrize("shape,p", [((2, 3, 5, 6), 0), ((1, 2, 4, 4), 1), ((1, 1, 7, 5), 2)])
def test_direct_matches_brute_force_including_padding(shape, p):
    rng = np.random.default_rng(1)
    x = rng.integers(-20, 21, shape)
    w = rng.integers(-20, 21, (3, shape[1], 3, 3))
    assert (adder_direct_conv2d(x, w, p) == brute_direct(x, w, p)).all()
    # CHW input: same as N = 1
    assert (adder_direct_conv2d(x[0], w, p) == brute_direct(x[:1], w, p)[0]).all()


def test_padded_zeros_contribute():
    x = np.zeros((1, 3, 3), dtype=np.int64)
    w = np.full((1, 1, 3, 3), 2)
    y = adder_direct_conv2d(x, w, padding=1)
    assert (y == -18).all()            # every tap, padded or not, adds |0 - 2|


@pytest.mark.parametrize("spec", ["standard", "balanced"])
@pytest.mark.parametrize("shape,p", [((1, 2, 6, 6), 1), ((2, 1, 5, 7), 0), ((1, 3, 4, 5), 1)])
def test_winograd_matches_rational_brute_force(spec, shape, p):
    rng = np.random.default_rng(2)
    x = rng.integers(-30, 31, shape)
    w = rng.integers(-30, 31, (2, shape[1], 3, 3))
    y, scale = adder_winograd_conv2d(x, w, spec, p)
    ref = brute_winograd(x, w, spec, p)
    assert scale == 4
    assert (y.astype(object) == ref * scale).all()


def test_integer_transforms_and_balanced_are_valid_winograd():
    for spec in ("standard", "balanced"):
        AT, G, BT = (np.array(M, dtype=object) for M in adder_matrices(spec))
        # the multiplicative identity still holds: F(2,3) computes a correlation
        rng = np.random.default_rng(3)
        d, g = rng.integers(-9, 10, 4), rng.integers(-9, 10, 3)
        assert list(AT.dot(G.dot(g) * BT.dot(d))) == [d[0:3].dot(g), d[1:4].dot(g)]
        ATi, Gi, BTi, scale = integer_adder_transforms(*adder_matrices(spec))
        assert all(isinstance(x, int) for M in (ATi, Gi, BTi) for row in M for x in row)
    bal = adder_matrices("balanced")[0]
    assert sorted(x for x in bal[0] if x) == sorted(x for x in bal[1] if x)


def test_user_matrices_and_shape_validation():
    std = adder_matrices("standard")
    y1, _ = adder_winograd_conv2d(np.ones((1, 4, 4), int), np.ones((1, 1, 3, 3), int), std)
    y2, _ = adder_winograd_conv2d(np.ones((1, 4, 4), int), np.ones((1, 1, 3, 3), int), "standard")
    assert (y1 == y2).all()
    AT, G, BT = std
    with pytest.raises(ValueError, match=r"shapes AT \(2, 4\), G \(4, 3\), BT \(4, 4\)"):
        adder_matrices((AT, G, BT[:3]))
    with pytest.raises(ValueError, match="adder_matrices must be one of"):
        adder_matrices("fancy")
    with pytest.raises(ValueError, match="F\\(2,3\\) only"):
        adder_matrices("balanced", 4, 3)
    with pytest.raises(ValueError, match="weights must have shape"):
        adder_direct_conv2d(np.ones((1, 4, 4), int), np.ones((1, 2, 3, 3), int))
    with pytest.raises(ValueError, match="padding must be"):
        adder_direct_conv2d(np.ones((1, 4, 4), int), np.ones((1, 1, 3, 3), int), padding=-1)


def test_compare_on_real_image():
    res = compare_adder_models("camera", filters=4, size=64)
    for spec in ("standard", "balanced"):
        assert -1 <= res[spec]["correlation"] <= 1 and res[spec]["relative_l1"] >= 0
    res2 = compare_adder_models("astronaut", filters=2, size=32, matrices=(adder_matrices("standard"),))
    assert set(res2) == {"user0"}


def test_pe_kind_semantics():
    assert list(PE_KINDS)[:3] == ["mul", "adder", "rns"]
    kind = pe_kind("adder")
    assert not kind.bilinear and not kind.uses_multiplier and pe_kind("mul").bilinear
    a_iv, b_iv = Interval(-5, 7), Interval(-3, 2)
    a, b = np.meshgrid(np.arange(-5, 8), np.arange(-3, 3))
    p = kind.combine(a, b)
    assert (p == -np.abs(a - b)).all()
    iv = kind.output_interval(a_iv, b_iv)
    assert (iv.lo, iv.hi) == (p.min(), p.max())
    iv = kind.output_interval(Interval(5, 9), Interval(-3, 2))   # never crosses zero
    assert (iv.lo, iv.hi) == (-12, -3)


def test_adder_pe_array_uses_abs_diff_pes():
    # values are checked for every kind in test_tile.py::test_pe_array_registers_and_values
    a_iv, b_iv = [Interval(-100, 50), Interval(-8, 7)], [Interval(-3, 9), Interval(-128, 127)]
    pes = PEArray("adder", a_iv, b_iv, stages=2)
    Fragment.get(pes, None)
    assert all(isinstance(pe, AbsDiffPE) for pe in pes.pes)
    for pe, a, b in zip(pes.pes, a_iv, b_iv):
        terms = [-abs(x - y) for x in range(a.lo, a.hi + 1) for y in range(b.lo, b.hi + 1)]
        assert pe.output_interval == Interval(min(terms), max(terms))


ADDER_CONFIGS = [
    TileConfig(2, 3, 8, 8, pe="adder"),
    TileConfig(2, 3, 8, 8, pe="adder", adder_matrices="balanced"),
    TileConfig(2, 3, 6, 5, pe="adder", adder_matrices="balanced", filter_transform="online"),
    TileConfig(2, 3, 8, 8, pe="adder", algorithm="direct"),
    TileConfig(4, 3, 4, 4, pe="adder", algorithm="direct", pe_stages=0, output_stages=1),
]


@pytest.mark.parametrize("cfg", ADDER_CONFIGS, ids=lambda c: c.module_name + "_" + c.filter_transform)
def test_adder_engine_matches_model_with_stalls(cfg):
    d, g = tile_vectors(cfg, count=20, seed=5)
    expected = TileModel(cfg)(d, g[None])
    got, _ = run_engine(cfg, d, g, stall_in=0.3, stall_out=0.3)
    assert (got == expected).all()
    engine = make_tile_engine(cfg)
    Fragment.get(engine, None)
    assert all(isinstance(pe, AbsDiffPE) for pe in engine.pe_array.pes)


def test_tile_model_matches_golden_layers():
    rng = np.random.default_rng(7)
    for spec in ("standard", "balanced"):
        cfg = TileConfig(2, 3, 8, 8, pe="adder", adder_matrices=spec)
        d = rng.integers(-128, 128, (1, 1, 4, 4))
        g = rng.integers(-128, 128, (1, 1, 3, 3))
        y, _ = adder_winograd_conv2d(d, g, spec)
        assert (TileModel(cfg)(d[0, 0], g[0, 0]) == y[0, 0]).all()
    cfg = TileConfig(2, 3, 8, 8, pe="adder", algorithm="direct")
    assert (TileModel(cfg)(d[0, 0], g[0, 0]) == adder_direct_conv2d(d, g)[0, 0]).all()
    assert cfg.output_interval == Interval(-255 * 9, 0)


def test_config_validation_and_manifest_fields():
    with pytest.raises(ValueError, match="F\\(2,3\\) only"):
        TileConfig(4, 3, pe="adder")
    with pytest.raises(ValueError, match="adder_matrices applies to pe='adder' only"):
        TileConfig(2, 3, adder_matrices="balanced")
    with pytest.raises(ValueError, match="adder_matrices must be one of"):
        TileConfig(2, 3, pe="adder", adder_matrices="fancy")
    with pytest.raises(ValueError, match="must have shapes"):
        TileConfig(4, 3, pe="adder", adder_matrices=adder_matrices("standard"))
    cfg = TileConfig(2, 3, pe="adder", adder_matrices=adder_matrices("balanced"))
    assert not cfg.removes_scale and cfg.scale_divisor == 1 and cfg.adder_output_scale == 4
    again = TileConfig(**{**cfg.to_json(), "name": None})
    assert again.hardware == cfg.hardware == TileConfig(2, 3, pe="adder",
                                                       adder_matrices="balanced").hardware
    assert TileConfig(4, 3, pe="adder", algorithm="direct").multipliers == 144


def test_cli_generates_adder_tile(tmp_path):
    import json
    from winogen.cli import main
    for extra in (["--adder-matrices", "balanced"], ["--algorithm", "direct"]):
        out = tmp_path / extra[-1]
        main(["generate", "tile", "--m", "2", "--r", "3", "--pe", "adder", *extra,
              "--output", str(out)])
        manifest = json.loads(next(out.glob("*.json")).read_text())
        assert manifest["pe"] == "adder" and manifest["multipliers"] == 0


@pytest.mark.parametrize("option,value", [("keep_scale", True), ("descale", "shift")])
def test_winograd_adder_refuses_options_it_would_ignore(option, value):
    with pytest.raises(ValueError, match=f"{option} does not apply to Winograd adder engines"):
        TileConfig(2, 3, 8, 8, pe="adder", **{option: value})


# -- layer level ----------------------------------------------------------------------------------

def brute_requantize(v, shift, width, rounding):
    """Exact rational rounding of v / 2**shift, then saturation (independent of gen.layer)."""
    from fractions import Fraction
    import math
    q = Fraction(int(v), 1 << shift)
    # Python's round() of a Fraction rounds half to even
    q = round(q) if rounding == "half_even" else math.floor(q + Fraction(1, 2))
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return min(max(q, lo), hi)


@pytest.mark.parametrize("spec", ["direct", "standard", "balanced", "user"])
@pytest.mark.parametrize("output_width,rounding", [(None, "half_even"), (7, "half_even"),
                                                   (6, "half_up")])
def test_layer_golden_matches_brute_force_loops(spec, output_width, rounding):
    from winogen.gen.layer import LayerRun, layer_golden
    extra = ({"algorithm": "direct"} if spec == "direct" else
             {"adder_matrices": adder_matrices("standard")} if spec == "user" else
             {"adder_matrices": spec})
    cfg = LayerConfig(TileConfig(2, 3, 5, 4, pe="adder", **extra), max_height=7, max_width=7,
                      max_cin=3, max_cout=2, p_in=2, output_width=output_width,
                      rounding=rounding)
    rng = np.random.default_rng(12)
    shifts = (4, 2, 0) if output_width is not None else (0, 0, 0)   # no requantizer: shift 0
    for run in (LayerRun(5, 7, 3, 2, padding=1, shift=shifts[0]),
                LayerRun(4, 3, 1, 2, padding=0, shift=shifts[1]),
                LayerRun(6, 5, 2, 1, padding=1, shift=shifts[2])):
        x = rng.integers(-16, 16, (run.cin, run.height, run.width))
        w = rng.integers(-8, 8, (run.cout, run.cin, 3, 3))
        if spec == "direct":
            ref = brute_direct(x[None], w, run.padding)[0]
        else:
            ref = brute_winograd(x[None], w, "standard" if spec == "user" else spec,
                                 run.padding)[0] * 4
        if output_width is not None:
            ref = np.vectorize(lambda v: brute_requantize(v, run.shift, output_width, rounding),
                               otypes=[object])(ref)
        got = layer_golden(cfg, run, x, w)
        assert got.shape == ref.shape == run.output_shape(cfg)
        assert (got.astype(object) == ref).all(), (spec, run)
        # every value is in the range the hardware widths were derived from
        if output_width is None:
            iv = cfg.exact_output_interval
            assert iv.lo <= got.min() and got.max() <= iv.hi


def test_cli_adder_layer_engines_and_matrix_file_errors(tmp_path, capsys):
    import json
    from winogen.cli import main
    small = ["--m", "2", "--r", "3", "--max-width", "6", "--max-height", "6", "--max-cin", "2",
             "--max-cout", "2", "--pe", "adder"]
    std = adder_matrices("standard")
    good = {"AT": [[str(x) for x in row] for row in std[0]],
            "G": [[str(x) for x in row] for row in std[1]],
            "BT": [[str(x) for x in row] for row in std[2]]}
    (tmp_path / "good.json").write_text(json.dumps(good))
    for engine, extra in (("direct", []), ("conv", ["--adder-matrices", "balanced"]),
                          ("conv", ["--adder-matrices", str(tmp_path / "good.json")])):
        out = tmp_path / f"{engine}{len(extra)}{extra[-1][-4:] if extra else ''}"
        assert main(["generate", engine, *small, *extra, "-o", str(out)]) == 0
        manifest = json.loads(next(out.glob("*.json")).read_text())
        assert manifest["pe"] == "adder" and manifest["multipliers"] == 0
        assert manifest["kind"] == "layer"
    assert manifest["name"].startswith("winoconv_f2x2_3x3_adder_usr")
    capsys.readouterr()
    bad = dict(good, BT=good["BT"][:3])
    cases = {
        "shape.json": (json.dumps(bad), r"adder matrix file '.*shape\.json': adder matrices must "
                                        r"have shapes AT \(2, 4\), G \(4, 3\), BT \(4, 4\)"),
        "keys.json": (json.dumps({"AT": good["AT"]}), "must hold an object with keys AT, G, BT"),
        "float.json": (json.dumps(dict(good, G=[[0.5] * 3] * 4)), "entries must be integers or "
                                                                  "rationals"),
        "broken.json": ("{", "must hold valid JSON"),
        "divzero.json": (json.dumps(dict(good, G=[["1/0"] * 3] * 4)),
                         r"adder matrix file '.*divzero\.json': matrix entries must be rational "
                         r"numbers, not '1/0'"),
        "zerobt.json": (json.dumps(dict(good, BT=[[0] * 4] * 4)),
                        r"adder matrix file '.*zerobt\.json': BT must be invertible \(rank 4\), "
                        r"not a degenerate matrix of rank 0"),
        "missing.json": (None, "must be a readable JSON file"),
    }
    import re
    for name, (text, message) in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        status = main(["generate", "conv", *small, "--adder-matrices", str(tmp_path / name),
                       "-o", str(tmp_path / "never")])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith("winogen: error: ") and re.search(message, err), err
    # right shape for F(2,3), wrong for F(4,3): TileConfig's check
    status = main(["generate", "conv", *small[:1], "4", *small[2:], "--adder-matrices",
                   str(tmp_path / "good.json"), "-o", str(tmp_path / "never")])
    err = capsys.readouterr().err
    assert status == 2 and "must have shapes AT (4, 6), G (6, 3), BT (6, 6)" in err
    assert not (tmp_path / "never").exists()


def test_explore_grid_takes_adder_layer_engines():
    from winogen.fpga.explore import configurations, normalize_grid
    grid = normalize_grid({"engine": ["layer"], "algorithms": ["winograd", "direct"], "m": [2],
                           "r": [3], "pe": ["mul", "adder"], "widths": ["8"], "pin": [2],
                           "pout": [2], "layer": {"max_height": 8, "max_width": 8,
                                                  "max_cin": 4, "max_cout": 4}})
    points, _ = configurations(grid)
    names = sorted(p.config.module_name for p in points)
    assert names == ["directconv_f2x2_3x3_adder_d8w8_p2x2", "directconv_f2x2_3x3_mul_d8w8_p2x2",
                     "winoconv_f2x2_3x3_adder_sta_d8w8_p2x2", "winoconv_f2x2_3x3_mul_d8w8_p2x2"]
    assert all(p.config.masks_lanes == (p.config.tile.pe == "adder") for p in points)


@pytest.mark.parametrize("key, matrix, message", [
    ("BT", [[0] * 4] * 4, r"^BT must be invertible \(rank 4\), not a degenerate matrix of rank 0$"),
    ("BT", [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
     r"^BT must be invertible \(rank 4\), not a degenerate matrix of rank 3$"),
    ("G", [[1, 1, 1]] * 4, r"^G must be of full column rank 3, not a degenerate matrix of rank 1$"),
    ("AT", [[1, 1, 1, 0]] * 2, r"^AT must be of full row rank 2, not a degenerate matrix of rank 1$"),
    ("G", [["1/0", 0, 0]] + [[0, 1, 0]] * 3, r"^matrix entries must be rational numbers, not '1/0'$"),
])
def test_adder_matrices_refuse_degenerate_and_undefined(key, matrix, message):
    mats = dict(zip(("AT", "G", "BT"), adder_matrices("standard")))
    mats[key] = matrix
    with pytest.raises(ValueError, match=message):
        adder_matrices((mats["AT"], mats["G"], mats["BT"]))


def test_load_adder_matrices_names_the_file(tmp_path):
    import json
    from winogen.gen.addernet import load_adder_matrices
    path = tmp_path / "m.json"
    std = adder_matrices("standard")
    good = {k: [[str(x) for x in row] for row in M] for k, M in zip(("AT", "G", "BT"), std)}
    path.write_text(json.dumps(good))
    assert load_adder_matrices(path, 2, 3) == std
    for bad, message in ((dict(good, AT=[["1/0"] * 4] * 2), "not '1/0'"),
                         (dict(good, BT=[["0"] * 4] * 4), "BT must be invertible")):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=f"^adder matrix file '{path}': .*{message}") as e:
            load_adder_matrices(path, 2, 3)
        assert "\n" not in str(e.value)
