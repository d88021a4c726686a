"""Given tap-wise shifts (--wino-scales FILE.json): the file, the configuration, the model's
saturation at both ends, and one-line refusals."""

import json

import numpy as np
import pytest

from winogen.cli import main
from winogen.gen.config import TileConfig
from winogen.gen.fixedpoint import TileModel
from winogen.gen.winoquant import load_scale_file


def derived(m=4, width=8):
    q = TileConfig(m, 3, 8, 8, preset="lavin", wino_width=width, wino_scales="tapwise").quantization
    return q.v_shifts, q.u_shifts


def grid(values, n):
    return [list(values[i * n:(i + 1) * n]) for i in range(n)]


def test_the_derived_shifts_given_back_are_the_tapwise_engine():
    sv, su = derived()
    given = TileConfig(4, 3, 8, 8, preset="lavin", wino_width=8, wino_scales=(sv, su))
    tapwise = TileConfig(4, 3, 8, 8, preset="lavin", wino_width=8, wino_scales="tapwise")
    assert not given.quantization.clips
    rng = np.random.default_rng(1)
    d, g = rng.integers(-128, 128, (50, 6, 6)), rng.integers(-128, 128, (50, 3, 3))
    assert np.array_equal(TileModel(given)(d, g), TileModel(tapwise)(d, g))
    assert given.output_interval == tapwise.output_interval
    assert given.module_name != tapwise.module_name
    assert TileConfig.from_json(given.to_json()).to_json() == given.to_json()


def test_smaller_shifts_saturate_both_ends_in_the_model():
    sv, su = derived()
    cfg = TileConfig(4, 3, 8, 8, preset="lavin", wino_width=8,
                     wino_scales=(tuple(max(0, s - 3) for s in sv), tuple(s - 2 for s in su)))
    q = cfg.quantization
    assert q.clips and q.output_bound(cfg.output_interval) is None
    rng = np.random.default_rng(2)
    d = np.where(rng.random((200, 6, 6)) < 0.5, -128, 127)
    g = np.where(rng.random((200, 3, 3)) < 0.5, -128, 127)
    run = TileModel(cfg).run(d, g)
    V = run["V"]
    expect = np.clip(np.floor(V / 2.0 ** np.array(q.v_shifts).reshape(6, 6) + 0.5), -128, 127)
    assert np.array_equal(run["Vq"], expect)
    assert run["Vq"].min() == -128 and run["Vq"].max() == 127
    assert run["Uq"].min() == -128 and run["Uq"].max() == 127
    assert cfg.output_interval.lo <= run["Y"].min() and run["Y"].max() <= cfg.output_interval.hi


def test_scale_file_round_trip(tmp_path):
    sv, su = derived()
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"v_shifts": grid(sv, 6), "u_shifts": grid(su, 6)}))
    assert load_scale_file(path, 6) == (sv, su)
    out = tmp_path / "o"
    assert main(["generate", "tile", "--m", "4", "--r", "3", "--preset", "lavin",
                 "--wino-width", "8", "--wino-scales", str(path), "--name", "t",
                 "-o", str(out)]) == 0
    manifest = json.loads((out / "t.json").read_text())
    assert manifest["quantization"]["scales"] == "given"
    assert manifest["quantization"]["v_shifts"] == grid(sv, 6)


@pytest.mark.parametrize("data, message", [
    ({"v_shifts": [[0] * 4] * 4, "u_shifts": [[0] * 6] * 6},
     "--wino-scales: scale file '{path}': v_shifts must be 6 x 6 (one shift per Winograd "
     "position), not 4 rows of [4] entries"),
    ({"v_shifts": [0] * 35, "u_shifts": [0] * 36},
     "v_shifts must hold 6 x 6 = 36 shifts (one per Winograd position), not 35"),
    ({"v_shifts": [[-1] * 6] * 6, "u_shifts": [[0] * 6] * 6},
     "v_shifts must be at least 0"),
    ({"v_shifts": [[0.5] * 6] * 6, "u_shifts": [[0] * 6] * 6},
     "v_shifts entries must be integers, not 0.5"),
    ({"v": 1}, "must hold an object with keys v_shifts, u_shifts, not ['v']"),
])
def test_bad_scale_files_are_one_line(tmp_path, capsys, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    status = main(["generate", "tile", "--m", "4", "--r", "3", "--wino-width", "8",
                   "--wino-scales", str(path), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and message.format(path=path) in err[0], err
    assert not (tmp_path / "o").exists()


def test_scale_files_need_json(tmp_path, capsys):
    status = main(["generate", "tile", "--m", "4", "--r", "3", "--wino-width", "8",
                   "--wino-scales", "scales.txt", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and "--wino-scales must be global, tapwise or a FILE.json, not " \
                          "'scales.txt'" in err
