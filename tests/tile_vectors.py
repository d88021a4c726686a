"""Test vectors for tile engines, shared by the Amaranth and the Verilator tests.

Random tiles plus the extreme tiles that reach the derived bounds: all
minimum, all maximum, and alternating signs (a checkerboard of min and max),
each against extreme filters.
"""

import numpy as np

from winogen.gen.fixedpoint import TileModel


def extreme_tiles(cfg):
    lo, hi = cfg.data_interval.lo, cfg.data_interval.hi
    n = cfg.n
    checker = np.indices((n, n)).sum(axis=0) % 2
    return [np.full((n, n), lo), np.full((n, n), hi),
            np.where(checker, lo, hi), np.where(checker, hi, lo)]


def tile_vectors(cfg, count, seed):
    """``count`` tiles (extremes first) and one random filter, as int64 arrays."""
    rng = np.random.default_rng(seed)
    d = list(extreme_tiles(cfg))
    d += list(rng.integers(cfg.data_interval.lo, cfg.data_interval.hi + 1,
                           (max(count - len(d), 0), cfg.n, cfg.n)))
    g = rng.integers(cfg.weight_interval.lo, cfg.weight_interval.hi + 1, (cfg.r, cfg.r))
    return np.array(d[:count], dtype=np.int64), g.astype(np.int64)


def extreme_filters(cfg):
    lo, hi = cfg.weight_interval.lo, cfg.weight_interval.hi
    r = cfg.r
    checker = np.indices((r, r)).sum(axis=0) % 2
    return [np.full((r, r), lo), np.full((r, r), hi), np.where(checker, lo, hi)]


def weight_beat(cfg, g):
    """The weight-stream elements for filter ``g``: raw, or U = G g Gᵀ when offline."""
    if cfg.algorithm == "winograd" and cfg.filter_transform == "offline":
        return [int(x) for x in TileModel(cfg).filter_transform(g).flat]
    return [int(x) for x in np.asarray(g).flat]
