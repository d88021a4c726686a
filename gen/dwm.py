"""The Decomposable Winograd Method (Huang et al., AAAI 2020): any kernel and stride on a
stride-1 engine of kernel size ``R``.

A ``k × k`` correlation with stride ``s`` (1 or 2) and zero padding ``pad``,

    y[o, i, j] = Σ_c Σ_{u,v < k} w[o, c, u, v] · xp[c, s·i + u, s·j + v],

splits into *pieces*. Each piece has a phase ``(p, q)`` (``0 <= p, q < s``) and an offset
``(a, b)`` (multiples of ``R``) and takes the sub-kernel

    K[u', v'] = w[s·(a + u') + p, s·(b + v') + q],  0 <= u', v' < R   (0 beyond the kernel)

over the phase-subsampled, shifted input ``X[i', j'] = xp[s·(i' + a) + p, s·(j' + b) + q]``
(0 beyond the padded map). Then ``y = Σ_pieces correlate(X, K)`` with stride 1 and no
padding, on ``H_out + R - 1`` rows and ``W_out + R - 1`` columns of ``X``.

:func:`dwm_layer` stacks the pieces as extra input channels: channel ``piece·C_in + c`` of
the stacked input is piece ``piece``'s ``X`` of channel ``c``, with the matching
sub-kernels. One stride-1, unpadded ``R × R`` layer over ``pieces·C_in`` channels then
computes ``y`` exactly: the engine sums the pieces as it sums channel groups (in the
Winograd domain, before one output transform and one requantization), and the cost is
that the activations are streamed once per piece.
"""

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DWMPiece", "dwm_pieces", "dwm_layer", "MAX_STRIDE"]

#: Strides the decomposition supports.
MAX_STRIDE = 2


@dataclass(frozen=True)
class DWMPiece:
    """One stride-1 piece: input phase ``(p, q)``, offset ``(a, b)`` in phase samples, and the
    size ``(rows, cols)`` of its non-zero sub-kernel (at most ``R × R``)."""
    phase: tuple
    offset: tuple
    size: tuple


def _check(k, stride, engine_r):
    for name, value, lo in (("kernel", k, 1), ("engine_r", engine_r, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if isinstance(stride, bool) or stride not in range(1, MAX_STRIDE + 1):
        raise ValueError(f"stride must be 1 or {MAX_STRIDE}, not {stride!r}")


def dwm_pieces(k, stride, engine_r):
    """The pieces of a ``k × k`` kernel with ``stride`` on an ``engine_r × engine_r`` engine.

    Phases whose sub-kernel is empty (``k < stride``) have no piece; every piece's
    sub-kernel has at least one tap of the kernel.
    """
    _check(k, stride, engine_r)
    pieces = []
    for p in range(stride):
        rows = math.ceil((k - p) / stride)          # taps of this row phase
        for q in range(stride):
            cols = math.ceil((k - q) / stride)
            if rows <= 0 or cols <= 0:
                continue
            for a in range(0, rows, engine_r):
                for b in range(0, cols, engine_r):
                    pieces.append(DWMPiece((p, q), (a, b),
                                           (min(engine_r, rows - a), min(engine_r, cols - b))))
    return pieces


def dwm_layer(x, w, *, stride, padding, engine_r):
    """Stack the DWM pieces of a layer as channels of one stride-1 ``R × R`` layer.

    Parameters
    ----------
    x : array (C_in, H, W)
    w : array (C_out, C_in, k, k)
    stride, padding : int
    engine_r : int
        The engine's kernel size ``R``.

    Returns
    -------
    x_stacked : array (pieces·C_in, H_out + R - 1, W_out + R - 1)
    w_stacked : array (C_out, pieces·C_in, R, R)
    pieces : list of DWMPiece
        The stacked layer, run with padding 0, gives the ``(C_out, H_out, W_out)`` output
        of the original layer exactly.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 3 or w.ndim != 4 or w.shape[1] != x.shape[0] or w.shape[2] != w.shape[3]:
        raise ValueError(f"x must be (C_in, H, W) and w (C_out, C_in, k, k), not {x.shape} "
                         f"and {w.shape}")
    k = w.shape[2]
    pieces = dwm_pieces(k, stride, engine_r)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer, not {padding!r}")
    cin, h, wd = x.shape
    h_out = (h + 2 * padding - k) // stride + 1
    w_out = (wd + 2 * padding - k) // stride + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(f"a {k}x{k} kernel with padding {padding} does not fit a {h}x{wd} map")
    R = engine_r
    hs, ws = h_out + R - 1, w_out + R - 1
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    xs = np.zeros((len(pieces) * cin, hs, ws), dtype=x.dtype)
    wsk = np.zeros((w.shape[0], len(pieces) * cin, R, R), dtype=w.dtype)
    for n, piece in enumerate(pieces):
        (p, q), (a, b), (rows, cols) = piece.phase, piece.offset, piece.size
        phase = xp[:, p::stride, q::stride]
        block = phase[:, a:a + hs, b:b + ws]
        xs[n * cin:(n + 1) * cin, :block.shape[1], :block.shape[2]] = block
        sub = w[:, :, p::stride, q::stride][:, :, a:a + rows, b:b + cols]
        wsk[:, n * cin:(n + 1) * cin, :rows, :cols] = sub
    return xs, wsk, pieces
