"""Operation-level bit flips (``winogen.gen.faults``) against a bit-by-bit reference."""

import numpy as np
import pytest

from winogen.gen.faults import MUL_FACTOR, flip_bits, flip_count, flip_one


def _bits(v, width):
    """Two's-complement bit string of one value, MSB first (the reference's view)."""
    return format(int(v) & ((1 << width) - 1), f"0{width}b")


def _value(bits):
    width = len(bits)
    u = int(bits, 2)
    return u - (1 << width) if bits[0] == "1" else u


@pytest.mark.parametrize("width", [1, 2, 8, 17, 33])
def test_flip_one_matches_bit_strings(width):
    rng = np.random.default_rng(width)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    values = rng.integers(lo, hi + 1, (3, 4))
    values[0, 0], values[0, 1] = lo, hi
    for index in [(0, 0), (0, 1), (2, 3), 5]:
        for bit in range(width):
            got = flip_one(values, width, index, bit)
            flat = values.reshape(-1)
            k = index if isinstance(index, int) else np.ravel_multi_index(index, values.shape)
            s = list(_bits(flat[k], width))
            s[width - 1 - bit] = "1" if s[width - 1 - bit] == "0" else "0"
            expect = flat.copy()
            expect[k] = _value("".join(s))
            assert np.array_equal(got.reshape(-1), expect)
            assert got.min() >= lo and got.max() <= hi
    assert np.array_equal(values, values.copy())     # input untouched


def test_flip_bits_count_positions_and_reproducibility():
    width, ber = 16, 1e-3
    values = np.random.default_rng(0).integers(-(1 << 15), 1 << 15, (50, 40))
    for factor in (1, MUL_FACTOR):
        faulty, positions = flip_bits(values, width, ber, np.random.default_rng(5), factor)
        assert len(positions) == flip_count(values.size, width, ber, factor) \
            == round(ber * values.size * width * factor)
        # the same flips, applied one at a time by flip_one, give the same array
        expect = values.copy()
        for index, bit in positions:
            expect = flip_one(expect, width, int(index), int(bit))
        assert np.array_equal(faulty, expect)
        again, _ = flip_bits(values, width, ber, np.random.default_rng(5), factor)
        assert np.array_equal(faulty, again)
    assert np.array_equal(flip_bits(values, width, 0.0, np.random.default_rng(1))[0], values)


def test_flip_bits_rate_is_uniform_over_bits():
    """At a high BER every bit position is hit about equally often."""
    width = 8
    values = np.zeros(20000, dtype=np.int64)
    faulty, positions = flip_bits(values, width, 0.01, np.random.default_rng(3))
    counts = np.bincount([b for _, b in positions], minlength=width)
    assert counts.sum() == 1600 and counts.min() > 140 and counts.max() < 260


@pytest.mark.parametrize("call, pattern", [
    (lambda: flip_bits([1], 8, 1.5, np.random.default_rng()), r"ber must be a number in \[0, 1\], not 1.5"),
    (lambda: flip_bits([1], 8, -0.1, np.random.default_rng()), r"ber must be a number in \[0, 1\]"),
    (lambda: flip_bits([300], 8, 0.1, np.random.default_rng()), r"values must fit 8-bit two's complement"),
    (lambda: flip_bits([1], 0, 0.1, np.random.default_rng()), r"width must be an integer from 1 to 62"),
    (lambda: flip_bits([1], 8, 0.1, np.random.default_rng(), 3), r"factor must be 1 .* or 2"),
    (lambda: flip_one([1, 2], 8, 2, 0), r"index must address one of the 2 values, not 2"),
    (lambda: flip_one([1, 2], 8, 0, 8), r"bit must be an integer from 0 to 7, not 8"),
    (lambda: flip_bits([1.5], 8, 0.1, np.random.default_rng()), r"values must be integers"),
])
def test_refuses(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_flip_bits_with_a_width_per_element():
    """Per-element widths (broadcast over the leading axes): every draw lands inside its
    value's width, the result is the XOR of the drawn bits wrapped to that width, and a
    binomial count follows BER · factor · bits."""
    rng = np.random.default_rng(4)
    widths = np.array([3, 9, 17, 5])
    lo, hi = -(1 << (widths - 1)), (1 << (widths - 1)) - 1
    values = rng.integers(lo, hi + 1, size=(50, 6, 4))
    faulty, placed = flip_bits(values, widths, 0.01, np.random.default_rng(1), MUL_FACTOR,
                               count="binomial")
    expected = values.reshape(-1).copy()
    for index, bit in placed:
        w = int(widths[index % 4])
        assert 0 <= bit < w
        u = (int(expected[index]) & ((1 << w) - 1)) ^ (1 << bit)
        expected[index] = u - (1 << w) if u >> (w - 1) else u
    assert np.array_equal(faulty.reshape(-1), expected)
    bits = 50 * 6 * int(widths.sum())
    mean = 0.01 * MUL_FACTOR * bits
    assert abs(len(placed) - mean) < 5 * np.sqrt(mean)
    # A value outside its width is refused; so is a count rule that does not exist.
    with pytest.raises(ValueError, match="fit their widths"):
        flip_bits(np.full((2, 4), 4), widths, 0.1, rng)
    with pytest.raises(ValueError, match="count must be one of round, binomial"):
        flip_bits(values, widths, 0.1, rng, count="poisson")
