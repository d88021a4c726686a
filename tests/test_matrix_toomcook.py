"""Given transform matrices (gen/matrixfile.py, MatrixToomCook): the exact identity check,
the measured error of approximate sets, the integer forms, and the file's errors."""

import json
from fractions import Fraction

import numpy as np
import pytest
from scipy.signal import correlate2d

from winogen.gen.addernet import load_adder_matrices
from winogen.gen.toomcook import MatrixToomCook, ToomCook, load_transforms

CASES = [(2, 3, "lavin"), (4, 3, "lavin"), (4, 3, "barabasz"), (6, 3, "default"),
         (2, 5, "default"), (3, 2, "default")]


def _given(tc, fractions="G"):
    M = tc.matrices(fractions)
    return M.AT, M.G, M.BT


@pytest.mark.parametrize("m, r, preset", CASES)
@pytest.mark.parametrize("fractions", ["G", "A", "B"])
def test_point_built_matrices_are_exact_and_give_the_same_hardware(m, r, preset, fractions):
    tc = ToomCook(m, r, preset=preset)
    given = MatrixToomCook(*_given(tc, fractions))
    assert given.exact and given.identity_error == 0
    assert given.hardware() == tc.hardware()
    assert given.integer().scale == tc.integer().scale
    assert given.tile_error() < 1e-12


@pytest.mark.parametrize("m, r, preset", CASES[:4])
def test_integer_form_computes_the_correlation_exactly(m, r, preset):
    """Independent reference: scipy's correlate2d on random integer tiles."""
    hw = MatrixToomCook(*_given(ToomCook(m, r, preset=preset))).hardware()
    AT, G, BT = (np.array(x, dtype=object) for x in (hw.AT, hw.G, hw.BT))
    rng = np.random.default_rng(m * 10 + r)
    n = m + r - 1
    for _ in range(20):
        d = rng.integers(-128, 128, (n, n)).astype(object)
        g = rng.integers(-128, 128, (r, r)).astype(object)
        Y = AT.dot((G.dot(g).dot(G.T)) * (BT.dot(d).dot(BT.T))).dot(AT.T)
        expect = correlate2d(d.astype(np.int64), g.astype(np.int64), mode="valid")
        assert (Y % hw.scale_divisor() == 0).all()
        assert (Y // hw.scale_divisor()).astype(np.int64).tolist() == expect.tolist()


def test_a_perturbed_entry_is_approximate_with_the_error_it_makes():
    AT, G, BT = _given(ToomCook(4, 3, preset="lavin"))
    G = [list(row) for row in G]
    delta = Fraction(1, 64)
    G[1][0] += delta
    given = MatrixToomCook(AT, G, BT)
    assert not given.exact
    # Only index 1's triple changed, by delta in G[1][0]: the tensor moves by
    # AT[j][1] * delta * BT[1][l] for k = 0.
    expect = max(abs(AT[j][1] * delta * BT[1][l]) for j in range(4) for l in range(6))
    assert given.identity_error == expect
    err = given.tile_error()
    assert 0 < err < 1
    assert given.tile_error(seed=1) != err and given.tile_error() == err   # seeded
    data = given.to_json()
    assert data["exact"] is False and data["identity_error"] == str(expect)
    assert data["tile_error"] == err and "points" not in data


def test_a_scaled_triple_stays_exact():
    """Scaling (column i of AT, row i of G, row i of BT) by factors whose product is 1
    keeps the algorithm (the identity tensor is unchanged)."""
    AT, G, BT = (list(map(list, M)) for M in _given(ToomCook(2, 3, preset="lavin")))
    for j in range(2):
        AT[j][1] *= 3
    G[1] = [x / 6 for x in G[1]]
    BT[1] = [x * 2 for x in BT[1]]
    assert MatrixToomCook(AT, G, BT).exact


@pytest.mark.parametrize("change, message", [
    (lambda AT, G, BT: (AT, G, BT[:-1]), "transforms must have shapes AT (2, 4), G (4, 3), "
                                          "BT (4, 4)"),
    (lambda AT, G, BT: (AT, [[0, 0, 0]] + list(G[1:]), BT),
     "Winograd-domain index 0 must take part in the result, not have an all-zero row 0 of G"),
    (lambda AT, G, BT: (AT, G, [BT[0]] * 4), "BT must be invertible (rank 4), not a "
                                             "degenerate matrix of rank 1"),
    (lambda AT, G, BT: (AT, [[True, 0, 0]] + list(G[1:]), BT),
     "matrix entries must be rational numbers, not True"),
])
def test_bad_matrices_are_refused(change, message):
    with pytest.raises(ValueError) as e:
        MatrixToomCook(*change(*_given(ToomCook(2, 3, preset="lavin"))))
    assert message in str(e.value)


def test_a_linear_form_is_refused():
    given = MatrixToomCook(*_given(ToomCook(2, 3)))
    with pytest.raises(ValueError, match="needs interpolation points"):
        given.linear()


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_transforms_file_round_trip(tmp_path):
    tc = ToomCook(4, 3, preset="barabasz")
    M = tc.matrices("G").to_json()
    path = _write(tmp_path / "t.json", {k: M[k] for k in ("AT", "G", "BT")})
    given = load_transforms(path, 4, 3)
    assert given.exact and given.hardware() == tc.hardware() and given.source == "t.json"
    assert "t.json" in given.points_text


@pytest.mark.parametrize("data, message", [
    ({"AT": [[1]], "G": [[1]]}, "must hold an object with keys AT, G, BT (and optionally "
     "exact), not ['AT', 'G']"),
    ({"AT": [[1.5]], "G": [[1]], "BT": [[1]]},
     "AT entries must be integers or rationals as strings such as \"1/2\", not 1.5"),
    ({"AT": [[1, 1, 1, 0], [0, 1, -1, -1]], "G": [[1, 0, 0]], "BT": [[1]]},
     "transforms must have shapes"),
])
def test_transforms_file_errors_name_the_file(tmp_path, data, message):
    path = _write(tmp_path / "bad.json", data)
    with pytest.raises(ValueError) as e:
        load_transforms(path, 2, 3)
    assert str(e.value).startswith(f"transforms file {str(path)!r}") and message in str(e.value)


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(ValueError, match="must be a readable JSON file"):
        load_transforms(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="must hold valid JSON"):
        load_transforms(bad)


def test_adder_matrix_files_keep_their_label(tmp_path):
    path = _write(tmp_path / "a.json", {"AT": [[1.5]], "G": [[1]], "BT": [[1]]})
    with pytest.raises(ValueError, match="^adder matrix file"):
        load_adder_matrices(path)


# -- engines from given transforms (TileConfig.transforms, --transforms) ----------------

from winogen.cli import main as cli_main                      # noqa: E402
from winogen.gen.config import TileConfig                     # noqa: E402
from winogen.gen.fixedpoint import TileModel                  # noqa: E402


def _perturbed():
    AT, G, BT = _given(ToomCook(2, 3, preset="lavin"))
    G = [list(row) for row in G]
    G[1][0] += Fraction(1, 8)
    return AT, G, BT


def test_exact_transforms_file_builds_the_preset_engine(tmp_path, capsys):
    """Given the matrices of preset lavin, the engine is the preset's (Verilog equal up to
    the module name)."""
    M = ToomCook(2, 3, preset="lavin").matrices("G").to_json()
    path = _write(tmp_path / "lavin.json", {k: M[k] for k in ("AT", "G", "BT")})
    for args, folder in ((["--transforms", str(path)], "given"), (["--preset", "lavin"], "preset")):
        assert cli_main(["generate", "tile", "--m", "2", "--r", "3", *args, "--name", "top",
                         "-o", str(tmp_path / folder)]) == 0
    assert "given transforms: exact" in capsys.readouterr().out
    given = json.loads((tmp_path / "given" / "top.json").read_text())
    assert given["algorithm"]["transforms"]["exact"] is True
    assert given["algorithm"]["points"] is None
    assert (tmp_path / "given" / "top.v").read_text() == (tmp_path / "preset" / "top.v").read_text()


def test_approximate_tile_model_floors_the_integer_form():
    cfg = TileConfig(2, 3, 8, 8, given_transforms=_perturbed())
    hw = cfg.hardware
    assert cfg.scale_divisor == hw.denominator ** 2 == 64
    rng = np.random.default_rng(0)
    d = rng.integers(-128, 128, (200, 4, 4))
    g = rng.integers(-128, 128, (200, 3, 3))
    AT, G, BT = (np.array(x) for x in (hw.AT, hw.G, hw.BT))
    Ys = np.einsum("ai,tij,bj->tab", AT, (G @ g @ G.T) * (BT @ d @ BT.T), AT)
    out = TileModel(cfg)(d, g)
    assert np.array_equal(out, np.floor_divide(Ys, 64))
    assert (Ys % 64 != 0).any()                        # the floor does something
    assert cfg.output_interval.lo <= out.min() and out.max() <= cfg.output_interval.hi
    # Extreme inputs stay within the derived output range.
    for dv, gv in ((-128, -128), (127, -128), (-128, 127), (127, 127)):
        y = TileModel(cfg)(np.full((4, 4), dv), np.full((3, 3), gv))
        assert cfg.output_interval.lo <= y.min() and y.max() <= cfg.output_interval.hi


def test_module_names_tell_transforms_apart():
    exact = TileConfig(2, 3, given_transforms=_given(ToomCook(2, 3, preset="lavin")))
    approx = TileConfig(2, 3, given_transforms=_perturbed())
    assert exact.module_name != approx.module_name != TileConfig(2, 3).module_name
    assert TileConfig.from_json(approx.to_json()).to_json() == approx.to_json()


@pytest.mark.parametrize("args, message", [
    (["--transforms", "{approx}", "--keep-scale", "yes"],
     "--keep-scale does not apply to approximate transforms"),
    (["--transforms", "{approx}", "--preset", "lavin"], "not allowed with argument --transforms"),
    (["--transforms", "{approx}", "--pe", "adder"], "--transforms applies to --pe mul only, "
                                                    "not --pe adder"),
    (["--transforms", "{approx}", "--algorithm", "direct"],
     "--transforms does not apply to direct engines"),
    (["--transforms", "{dyadic3}"], "approximate transforms must have a power-of-two "
                                    "denominator D"),
    (["--transforms", "matrices.txt"], "--transforms must be a FILE.json, not 'matrices.txt'"),
    (["--transforms", "{missing}"], "must be a readable JSON file"),
])
def test_cli_refuses_in_one_line(tmp_path, capsys, args, message):
    AT, G, BT = _perturbed()
    files = {"approx": _write(tmp_path / "a.json", {"AT": [[str(x) for x in r] for r in AT],
                                                    "G": [[str(x) for x in r] for r in G],
                                                    "BT": [[str(x) for x in r] for r in BT]}),
             "dyadic3": _write(tmp_path / "b.json", {
                 "AT": [[str(x) for x in r] for r in AT],
                 "G": [[str(x + (Fraction(1, 3) if (i, j) == (1, 0) else 0)) for j, x in
                        enumerate(r)] for i, r in enumerate(_given(ToomCook(2, 3,
                                                                             preset="lavin"))[1])],
                 "BT": [[str(x) for x in r] for r in BT]}),
             "missing": tmp_path / "none.json"}
    argv = [a.format(**files) for a in args]
    try:
        status = cli_main(["generate", "tile", "--m", "2", "--r", "3", *argv,
                           "-o", str(tmp_path / "o")])
    except SystemExit as e:                  # argparse's own refusals
        status = e.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists()


def test_a_claim_of_exactness_is_checked(tmp_path):
    AT, G, BT = _perturbed()
    rows = {k: [[str(x) for x in r] for r in M] for k, M in (("AT", AT), ("G", G), ("BT", BT))}
    path = _write(tmp_path / "claim.json", {**rows, "exact": True})
    with pytest.raises(ValueError, match=r"claims to be exact, but its identity .* is 1/8 at"):
        load_transforms(path)
    assert not load_transforms(_write(tmp_path / "ok.json", {**rows, "exact": False})).exact
    exact = {k: [[str(x) for x in r] for r in M]
             for k, M in zip(("AT", "G", "BT"), _given(ToomCook(2, 3, preset="lavin")))}
    with pytest.raises(ValueError, match="claims to be approximate"):
        load_transforms(_write(tmp_path / "e.json", {**exact, "exact": False}))
    with pytest.raises(ValueError, match="exact must be true or false, not 'yes'"):
        load_transforms(_write(tmp_path / "y.json", {**exact, "exact": "yes"}))
    # adder matrix files take no claim
    with pytest.raises(ValueError, match=r"keys AT, G, BT, not \['AT', 'BT', 'G', 'exact'\]"):
        load_adder_matrices(_write(tmp_path / "a.json", {**exact, "exact": True}))
