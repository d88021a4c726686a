"""The Decomposable Winograd Method (``winogen.gen.dwm``) against direct strided correlation
(scipy), for every kernel up to 7 × 7, strides 1 and 2, and engines of r = 3 and 5."""

import numpy as np
import pytest
from scipy.signal import correlate

from winogen.gen.dwm import dwm_layer, dwm_pieces


def _direct(x, w, stride, padding):
    """Independent reference: scipy's correlation of the padded map, subsampled."""
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding))).astype(np.int64)
    out = []
    for o in range(w.shape[0]):
        full = sum(correlate(xp[c], w[o, c].astype(np.int64), mode="valid", method="direct")
                   for c in range(x.shape[0]))
        out.append(full[::stride, ::stride])
    return np.array(out)


def _stride1(x, w):
    """Unpadded stride-1 correlation (what the engine computes), also by scipy."""
    return _direct(x, w, 1, 0)


@pytest.mark.parametrize("engine_r", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", range(1, 8))
def test_stacked_layer_equals_direct(k, stride, engine_r):
    rng = np.random.default_rng(100 * k + 10 * stride + engine_r)
    for padding in sorted({0, k // 2, k - 1}):
        h, wd = rng.integers(k, k + 9, 2)
        x = rng.integers(-128, 128, (3, h, wd))
        w = rng.integers(-128, 128, (2, 3, k, k))
        xs, ws, pieces = dwm_layer(x, w, stride=stride, padding=padding, engine_r=engine_r)
        assert ws.shape[2:] == (engine_r, engine_r) and xs.shape[0] == 3 * len(pieces)
        assert np.array_equal(_stride1(xs, ws), _direct(x, w, stride, padding))


def test_pieces_cover_every_tap_once():
    for k in range(1, 10):
        for stride in (1, 2):
            for engine_r in (2, 3):
                taps = set()
                for piece in dwm_pieces(k, stride, engine_r):
                    (p, q), (a, b), (rows, cols) = piece.phase, piece.offset, piece.size
                    assert 1 <= rows <= engine_r and 1 <= cols <= engine_r
                    for u in range(rows):
                        for v in range(cols):
                            tap = (stride * (a + u) + p, stride * (b + v) + q)
                            assert tap not in taps and max(tap) < k
                            taps.add(tap)
                assert taps == {(u, v) for u in range(k) for v in range(k)}


def test_piece_counts():
    # 3x3 stride 1 on a 3x3 engine is itself; 5x5 splits 3+2 per axis (4 pieces), 7x7
    # 3+3+1 (9); stride 2 has one piece per phase while the phase kernels fit (k <= 6), and
    # 7x7's phase kernels 4x4, 4x3, 3x4, 3x3 take 4 + 2 + 2 + 1
    assert len(dwm_pieces(3, 1, 3)) == 1
    assert len(dwm_pieces(5, 1, 3)) == 4 and len(dwm_pieces(7, 1, 3)) == 9
    assert len(dwm_pieces(3, 2, 3)) == len(dwm_pieces(5, 2, 3)) == 4
    assert len(dwm_pieces(7, 2, 3)) == 4 + 2 + 2 + 1


@pytest.mark.parametrize("args, pattern", [
    (dict(k=3, stride=3, engine_r=3), r"stride must be 1 or 2, not 3"),
    (dict(k=0, stride=1, engine_r=3), r"kernel must be a positive integer, not 0"),
])
def test_refuses(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        dwm_pieces(**args)


def test_map_too_small_is_refused():
    with pytest.raises(ValueError, match=r"a 7x7 kernel with padding 0 does not fit a 5x5 map"):
        dwm_layer(np.zeros((1, 5, 5)), np.zeros((1, 1, 7, 7)), stride=1, padding=0, engine_r=3)
