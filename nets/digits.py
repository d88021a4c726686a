"""scikit-learn's handwritten digits as int8 16×16 images, with a fixed train/test split.

The 8×8 images hold 0…16; each pixel is repeated 2×2 (nearest-neighbour upsampling to
16×16) and scaled by 8, saturating at 127: ``x_q = min(8·pixel, 127)``, an int8 value
whose real value is ``x_q / 128`` (a power-of-two input scale, so the float network is
trained on exactly the values the integer network sees).
"""

import numpy as np

__all__ = ["SIZE", "INPUT_SHIFT", "SPLIT_SEED", "TEST_FRACTION", "load_digits_int8", "split"]

SIZE = 16
#: The input's real value is ``x_q / 2**INPUT_SHIFT``.
INPUT_SHIFT = 7
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def load_digits_int8():
    """All 1,797 images as ``(x, y)``: ``x`` int8 ``(N, 1, 16, 16)``, ``y`` int64 labels."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    small = digits.images.astype(np.int64)                     # (N, 8, 8), 0..16
    big = small.repeat(SIZE // 8, axis=1).repeat(SIZE // 8, axis=2)
    x = np.minimum(big * 8, 127).astype(np.int8)[:, None]
    return x, digits.target.astype(np.int64)


def split(x, y, *, seed=SPLIT_SEED, test_fraction=TEST_FRACTION):
    """A fixed shuffled split: ``(x_train, y_train, x_test, y_test)``."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]
