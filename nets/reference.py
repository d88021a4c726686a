"""The reference CNN: architecture, float forward pass and integer (golden) forward pass.

Four convolutions without bias, each followed by ReLU, then a dense classifier:

====  ======  ======  =====  ======  =======  ==========
name  C_in    C_out   k      stride  padding  output
====  ======  ======  =====  ======  =======  ==========
c1    1       8       3      1       1        8×16×16
c2    8       8       5      1       2        8×16×16
c3    8       16      3      2       1        16×8×8
c4    16      16      3      2       1        16×4×4
fc    256     10      —      —       —        10 logits
====  ======  ======  =====  ======  =======  ==========

Quantized, every tensor is int8 with a power-of-two scale: a convolution's int32 sums
are requantized by the engine's stage (:func:`winogen.gen.layer.requantize`: arithmetic
right shift by the layer's ``shift``, round half to even, saturate to 8 bits) and
clamped at 0 (ReLU). The classifier's sums are requantized too (``shift_fc``, no ReLU):
the logits are int8, so the whole network runs on one engine with 8-bit outputs (the
classifier as the 4 × 4 unpadded convolution of the last map: its network file,
:mod:`.netfile`); the predicted class is the first index of the largest logit.
"""

import numpy as np

from ..gen.layer import requantize

__all__ = ["LAYERS", "CLASSES", "FC_MAP", "conv_output_size", "conv2d_float", "forward_float",
           "conv2d_int", "forward_int"]

#: The convolutions, in order.
LAYERS = (
    dict(name="c1", cin=1, cout=8, k=3, stride=1, padding=1),
    dict(name="c2", cin=8, cout=8, k=5, stride=1, padding=2),
    dict(name="c3", cin=8, cout=16, k=3, stride=2, padding=1),
    dict(name="c4", cin=16, cout=16, k=3, stride=2, padding=1),
)
CLASSES = 10
#: Channels and size of the last map, which the classifier reads (flattened C, H, W).
FC_MAP = (16, 4, 4)


def conv_output_size(size, k, stride, padding):
    return (size + 2 * padding - k) // stride + 1


def _patches(anp, x, k, stride, padding):
    """``x`` (N, C, H, W) -> (N, C, k·k, Ho, Wo) windows (works on autograd arrays)."""
    n, c, h, w = x.shape
    if padding:
        zr = anp.zeros((n, c, padding, w), dtype=x.dtype)
        x = anp.concatenate([zr, x, zr], axis=2)
        zc = anp.zeros((n, c, h + 2 * padding, padding), dtype=x.dtype)
        x = anp.concatenate([zc, x, zc], axis=3)
    ho = conv_output_size(h, k, stride, padding)
    wo = conv_output_size(w, k, stride, padding)
    return anp.stack([x[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
                      for i in range(k) for j in range(k)], axis=2)


def conv2d_float(x, w, stride, padding, anp=np):
    """Correlation of ``x`` (N, C, H, W) with ``w`` (O, C, k, k); ``anp``: numpy or
    ``autograd.numpy``."""
    k = w.shape[-1]
    p = _patches(anp, x, k, stride, padding)
    return anp.einsum("nckhw,ock->nohw", p, anp.reshape(w, (w.shape[0], w.shape[1], k * k)))


def forward_float(params, x, anp=np):
    """Logits (N, 10) of float inputs ``x`` (N, 1, 16, 16); ``params``: ``c1`` … ``c4``, ``fc``."""
    a = x
    for layer in LAYERS:
        a = anp.maximum(conv2d_float(a, params[layer["name"]], layer["stride"],
                                     layer["padding"], anp), 0.0)
    return anp.dot(anp.reshape(a, (a.shape[0], -1)), params["fc"])


def conv2d_int(x, w, stride, padding):
    """Exact integer correlation (int64) of ``x`` (N, C, H, W) with ``w`` (O, C, k, k)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    return conv2d_float(x, w, stride, padding, np)


def forward_int(qparams, x_q, *, return_activations=False):
    """Integer logits (N, 10), int8, of int8 inputs ``x_q`` (N, 1, 16, 16).

    ``qparams``: int8 weights ``c1`` … ``c4``, ``fc`` and the shifts ``shift_c1`` …
    ``shift_c4``, ``shift_fc``. With ``return_activations``, also the int8 output of every
    convolution.
    """
    a = np.asarray(x_q, dtype=np.int64)
    acts = []
    for layer in LAYERS:
        acc = conv2d_int(a, qparams[layer["name"]], layer["stride"], layer["padding"])
        a = np.maximum(requantize(acc, int(qparams[f"shift_{layer['name']}"]), 8), 0)
        acts.append(a)
    sums = a.reshape(a.shape[0], -1) @ np.asarray(qparams["fc"], dtype=np.int64)
    logits = requantize(sums, int(qparams["shift_fc"]), 8)
    return (logits, acts) if return_activations else logits
