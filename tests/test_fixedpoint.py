"""TileModel (winogen.gen.fixedpoint): its data entry points refuse what the hardware cannot hold."""

import numpy as np
import pytest

from winogen.gen.config import TileConfig
from winogen.gen.fixedpoint import TileModel

CFG = TileConfig(2, 3)           # 8-bit data and weights


@pytest.mark.parametrize("call, name, good_shape", [
    ("filter_transform", "filter", (3, 3)),
    ("input_transform", "input tile", (4, 4)),
])
def test_transforms_refuse_out_of_range_and_non_integers(call, name, good_shape):
    f = getattr(TileModel(CFG), call)
    too_big = np.full(good_shape, 1000)
    with pytest.raises(ValueError, match=rf"^{name} values must lie in \[-128, 127\], not \[1000, 1000\]$"):
        f(too_big)
    with pytest.raises(TypeError, match=rf"^{name} values must be integers, not float64$"):
        f(np.full(good_shape, np.nan))
    with pytest.raises(TypeError, match=rf"^{name} values must be integers, not 1.5$"):
        f(np.full(good_shape, 1.5, dtype=object))
    with pytest.raises(ValueError, match=rf"^{name}s must have shape"):
        f(np.zeros((2, 2), dtype=int))
    ok = np.full(good_shape, -128)
    assert f(ok).shape == (4, 4)


def test_output_transform_and_run_refuse_floats():
    model = TileModel(CFG)
    with pytest.raises(TypeError, match="^product values must be integers, not float64$"):
        model.output_transform(np.zeros((4, 4)))
    with pytest.raises(TypeError, match="^input tile values must be integers"):
        model(np.zeros((4, 4)), np.zeros((3, 3), dtype=int))
    with pytest.raises(ValueError, match=r"^filter values must lie in \[-128, 127\]"):
        model(np.zeros((4, 4), dtype=int), np.full((3, 3), 128))


def test_filter_transform_matches_run():
    rng = np.random.default_rng(3)
    d, g = rng.integers(-128, 128, (6, 4, 4)), rng.integers(-128, 128, (6, 3, 3))
    model = TileModel(CFG)
    out = model.run(d, g)
    assert (model.filter_transform(g) == out["U"]).all()
    assert (model.input_transform(d) == out["V"]).all()
