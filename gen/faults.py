"""Operation-level bit flips in two's-complement integers (the fault model of issue 18).

The model of Xue et al. (DAC 2022) and their public operation-level injector: a value
held in ``width``-bit two's complement has bits flipped on the output of the operation
that produced it. With a bit error rate ``ber``, ``round(ber · values · width · factor)``
flips land on bit positions drawn uniformly, with replacement, over all ``values · width``
bits of the array (``factor`` 2 for multiplications, 1 for additions). Every draw is an
XOR: two draws on one value flip two bits, two draws on one bit cancel. (The public
injector writes each draw's single-flipped value back with ``index_put``, so when several
draws hit one value only the last survives; the two agree whenever no value is hit
twice, i.e. at the low BERs where accuracy is still measurable.)

:func:`flip_bits` places faults by BER, :func:`flip_one` places exactly one; both return a
new array and never change their input. Values must fit ``width`` bits; the result does.
"""

import numpy as np

__all__ = ["flip_bits", "flip_one", "flip_count", "MUL_FACTOR", "ADD_FACTOR"]

#: The injector's rate factors: multiplications get twice the additions' BER.
MUL_FACTOR = 2
ADD_FACTOR = 1


def _check_width(width):
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 62:
        raise ValueError(f"width must be an integer from 1 to 62, not {width!r}")


def _as_checked(values, width):
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.integer):
        raise ValueError(f"values must be integers, not {v.dtype}")
    v = v.astype(np.int64)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"values must fit {width}-bit two's complement [{lo}, {hi}], not "
                         f"[{v.min()}, {v.max()}]")
    return v


def _wrap(u, width):
    """Unsigned ``width``-bit patterns back to signed values."""
    sign = np.int64(1) << (width - 1)
    return (u ^ sign) - sign


def flip_count(size, width, ber, factor=ADD_FACTOR):
    """How many flips a BER places on ``size`` values of ``width`` bits."""
    if isinstance(ber, bool) or not isinstance(ber, (int, float)) or not 0 <= ber <= 1:
        raise ValueError(f"ber must be a number in [0, 1], not {ber!r}")
    if factor not in (ADD_FACTOR, MUL_FACTOR):
        raise ValueError(f"factor must be {ADD_FACTOR} (additions) or {MUL_FACTOR} "
                         f"(multiplications), not {factor!r}")
    return int(round(ber * size * width * factor))


def flip_bits(values, width, ber, rng, factor=ADD_FACTOR, *, count="round"):
    """``values`` with random bit flips at bit error rate ``ber``.

    Parameters
    ----------
    values : array of int
        Each fits its ``width``-bit two's complement.
    width : int or array of int
        Bits of the register that holds each value; an array broadcasts against
        ``values`` (registers of different widths, e.g. per Winograd element).
    ber : float
        Bit error rate, in [0, 1].
    rng : numpy.random.Generator
    factor : int
        :data:`ADD_FACTOR` or :data:`MUL_FACTOR`.
    count : str
        ``"round"``: ``round(ber · bits · factor)`` flips, as the public injector places
        them (:func:`flip_count`); ``"binomial"``: a ``Binomial(bits, ber · factor)``
        number of flips, i.e. every bit flips independently. Rounding places no flip at
        all on a small array at a low BER, so campaigns that call this once per layer
        and batch use ``"binomial"``.

    Returns
    -------
    (faulty, positions)
        The faulty array (int64, same shape) and the flipped ``(flat index, bit)`` pairs,
        in draw order.
    """
    if count not in ("round", "binomial"):
        raise ValueError(f"count must be one of round, binomial, not {count!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, not {rng!r}")
    if np.ndim(width) == 0:
        _check_width(width)
        v = _as_checked(values, width)
        widths = None
        bits = v.size * width
    else:
        # Widths broadcast over the leading axes (one width per trailing element, e.g. per
        # Winograd position): draw a bit over blocks of the trailing size without
        # materializing a width per value.
        w = np.asarray(width)
        if not np.issubdtype(w.dtype, np.integer) or w.size == 0 or w.min() < 1 or w.max() > 62:
            raise ValueError(f"width must hold integers from 1 to 62, not {width!r}")
        v = np.asarray(values)
        if not np.issubdtype(v.dtype, np.integer):
            raise ValueError(f"values must be integers, not {v.dtype}")
        while w.ndim and w.shape[0] == 1 and w.ndim > 1:
            w = w[0]
        trailing = v.shape[v.ndim - w.ndim:] if w.ndim else ()
        w = np.broadcast_to(w, trailing).astype(np.int64)
        half = np.left_shift(np.int64(1), w - 1)
        v = v.astype(np.int64)
        if v.size and (np.any(v < -half) or np.any(v >= half)):
            raise ValueError("values must fit their widths' two's complement")
        block = w.reshape(-1)
        ends = np.cumsum(block)
        per_block = int(ends[-1])
        bits = per_block * (v.size // block.size)
        widths = block
    flips = flip_count(bits, 1, ber, factor)
    if count == "binomial":
        flips = int(rng.binomial(bits, min(1.0, ber * factor))) if bits else 0
    draws = rng.integers(0, bits, size=flips) if flips and bits else np.zeros(0, dtype=np.int64)
    flat = v.reshape(-1).copy()
    if widths is None:
        index, bit = draws // width, draws % width
    else:
        outer, within = draws // per_block, draws % per_block
        element = np.searchsorted(ends, within, side="right")
        bit = within - (ends[element] - block[element])
        index = outer * block.size + element
    np.bitwise_xor.at(flat, index, np.int64(1) << bit)
    if widths is None:
        out = _wrap(flat & ((np.int64(1) << width) - 1), width)
    else:
        hv = np.broadcast_to(half, v.shape).reshape(-1)[index]
        flat[index] = ((flat[index] + hv) & (2 * hv - 1)) - hv
        out = flat
    return out.reshape(v.shape), list(zip(index.tolist(), bit.tolist()))


def flip_one(values, width, index, bit):
    """``values`` with bit ``bit`` of element ``index`` (a flat index or a tuple) flipped."""
    _check_width(width)
    v = _as_checked(values, width)
    if isinstance(bit, bool) or not isinstance(bit, int) or not 0 <= bit < width:
        raise ValueError(f"bit must be an integer from 0 to {width - 1}, not {bit!r}")
    flat_index = index if isinstance(index, (int, np.integer)) else \
        np.ravel_multi_index(index, v.shape)
    if not 0 <= flat_index < v.size:
        raise ValueError(f"index must address one of the {v.size} values, not {index!r}")
    mask = (np.int64(1) << width) - 1
    flat = (v.reshape(-1) & mask).copy()
    flat[flat_index] ^= np.int64(1) << bit
    return _wrap(flat, width).reshape(v.shape)
