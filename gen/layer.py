"""Layer engines: the golden model and requantization (configuration in :mod:`winogen.gen.config`).

:class:`LayerConfig` and :class:`LayerRun` live in :mod:`winogen.gen.config.layer`
and are re-exported here. :func:`layer_golden` is a layer engine's exact output:
the golden convolution of the tile's PE kind
(:meth:`~winogen.gen.pe.PEKind.golden_conv2d`: the exact correlation for multiply
and residue kinds; for ``"adder"`` the AdderNet models of
:mod:`winogen.gen.addernet`), times ``D²`` when the scale is kept, then
:func:`requantize` when the engine has the stage.
"""

import numpy as np

from .checks import check_choice, check_integer_values
from .config.layer import LayerConfig, LayerRun, ROUNDING_MODES, RUN_ERRORS

__all__ = ["LayerConfig", "LayerRun", "ROUNDING_MODES", "requantize", "layer_golden",
           "quantized_winograd_conv2d", "check_winograd_weights", "RUN_ERRORS"]


def requantize(values, shift, width, rounding="half_even", relu=False):
    """Arithmetic right shift with rounding, then saturation to ``width`` signed bits, then
    (with ``relu``) a clamp at 0.

    Exact integer semantics of the hardware stage (NumPy int64 or object arrays).
    """
    check_choice("rounding", rounding, ROUNDING_MODES)
    v = np.asarray(values).astype(object) if np.asarray(values).dtype == object else \
        np.asarray(values, dtype=np.int64)
    if shift == 0:
        q = v
    else:
        floor = v >> shift
        rem = v - (floor << shift)
        half = 1 << (shift - 1)
        if rounding == "half_up":
            q = floor + (rem >= half)
        else:
            q = floor + ((rem > half) | ((rem == half) & (floor & 1 == 1)))
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return np.clip(q, 0 if relu else lo, hi)


def check_winograd_weights(tile, u, shape=None):
    """Winograd-domain weights ``Û`` (C_out, C_in, n, n) given directly (pruned or learned
    ones, instead of raw filters the generator transforms) as an int64 array.

    They exist where the weight stream carries ``Û``: a quantized Winograd domain
    (``wino_width``) with ``filter_transform="offline"``. Each position ``(i, j)`` must lie
    in the engine's ``Û`` range there (``tile.quantization.uq_intervals``): the weight
    lanes and the products are sized for it.
    """
    q = getattr(tile, "quantization", None)
    if not q or tile.filter_transform != "offline":
        raise ValueError("Winograd-domain weights apply to quantized Winograd domains "
                         "(wino_width) with filter_transform='offline', not "
                         f"wino_width={getattr(tile, 'wino_width', None)!r}, "
                         f"filter_transform={getattr(tile, 'filter_transform', None)!r}")
    u = check_integer_values("Winograd-domain weight", u)
    n = tile.n
    want = (*(shape or u.shape[:2]), n, n)
    if u.ndim != 4 or u.shape != want:
        raise ValueError(f"Winograd-domain weights must have shape {want}, not {u.shape}")
    for k, iv in enumerate(q.uq_intervals):
        i, j = divmod(k, n)
        values = u[:, :, i, j]
        if values.size and (values.min() < iv.lo or values.max() > iv.hi):
            raise ValueError(f"Winograd-domain weights at position ({i}, {j}) must lie in "
                             f"[{iv.lo}, {iv.hi}], not [{values.min()}, {values.max()}]")
    return u.astype(np.int64)


def quantized_winograd_conv2d(tile, x, w, padding, *, winograd_weights=False):
    """A quantized Winograd layer (``tile.wino_width`` set) as its engine computes it.

    The zero-padded input is cut into the engine's ``n × n`` tiles (stride ``m``; zeros
    beyond the map, as the line buffer masks them); per tile and output channel,
    ``Σ_cin V̂ ⊙ Û`` is summed in the Winograd domain, shifted to the common scale,
    transformed by ``Aᵀ · A`` and rounded by the output shift
    (:class:`~winogen.gen.winoquant.WinogradQuantization`); the tiles' outputs beyond
    the map are dropped. A tile's rounding depends on its own inputs only.

    Parameters
    ----------
    tile : TileConfig
    x : ndarray (C_in, H, W)
    w : ndarray (C_out, C_in, r, r)
        Raw filters, or with ``winograd_weights`` the ``Û`` (C_out, C_in, n, n) the weight
        stream carries (:func:`check_winograd_weights`).
    padding : int

    Returns
    -------
    ndarray (C_out, H + 2 padding − r + 1, W + 2 padding − r + 1)
    """
    from .models import pad_input
    t, q = tile, tile.quantization
    model = t.golden_model()
    m, r, n = t.m, t.r, t.n
    xp = pad_input(np.asarray(x), padding)
    out_h, out_w = xp.shape[-2] - r + 1, xp.shape[-1] - r + 1
    rows, cols = -(-out_h // m), -(-out_w // m)
    grid = np.zeros(xp.shape[:-2] + (rows * m + r - 1, cols * m + r - 1), dtype=np.int64)
    grid[..., :xp.shape[-2], :xp.shape[-1]] = xp
    tiles = np.lib.stride_tricks.sliding_window_view(grid, (n, n), axis=(-2, -1))[..., ::m, ::m,
                                                                                   :, :]
    vq = q.quantize_v(model.input_transform(tiles))             # (C_in, rows, cols, n, n)
    uq = w if winograd_weights else model.filter_transform(w)    # (C_out, C_in, n, n)
    acc = np.einsum("iyxab,oiab->oyxab", vq.astype(np.int64), uq.astype(np.int64))
    y = q.descale(model.output_transform(q.align(acc)))          # (C_out, rows, cols, m, m)
    y = y.transpose(0, 1, 3, 2, 4).reshape(y.shape[0], rows * m, cols * m)
    return y[:, :out_h, :out_w]


def layer_golden(config, run, x, w, *, winograd_weights=False):
    """The engine's exact output for activations ``x`` (C_in, H, W) and weights ``w`` (C_out, C_in, r, r).

    The tile's PE kind gives the exact layer output
    (:meth:`~winogen.gen.pe.PEKind.golden_conv2d`). Multiply and residue engines:
    the exact integer correlation with zero padding (the Winograd and RNS engines
    compute the same numbers exactly), scaled by ``D²`` if the scale is kept. Adder
    engines: :func:`~winogen.gen.addernet.adder_direct_conv2d` (direct; padded zeros
    contribute ``|0 - w|``) or :func:`~winogen.gen.addernet.adder_winograd_conv2d`
    with the tile's matrices (Winograd; its integer form, ``k²`` times the rational
    value). Quantized Winograd domains (``wino_width``):
    :func:`quantized_winograd_conv2d`, the engine's own approximation. Then requantized
    when the engine has the stage. With ``winograd_weights``, ``w`` is the ``Û`` (C_out,
    C_in, n, n) the weight stream carries (:func:`check_winograd_weights`).
    """
    run.check(config, weights=False)
    t = config.tile
    x = check_integer_values("activation", x, t.data_interval)
    if x.shape != (run.cin, run.height, run.width):
        raise ValueError(f"activations must have shape {(run.cin, run.height, run.width)}, not {x.shape}")
    if winograd_weights:
        w = check_winograd_weights(t, w, (run.cout, run.cin))
    else:
        w = check_integer_values("weight", w, t.weight_interval)
        if w.shape != (run.cout, run.cin, config.r, config.r):
            raise ValueError(f"weights must have shape {(run.cout, run.cin, config.r, config.r)}, not {w.shape}")
    x, w = x.astype(np.int64), w.astype(np.int64)
    if getattr(t, "quantization", None):
        y = quantized_winograd_conv2d(t, x, w, run.padding, winograd_weights=winograd_weights)
    else:
        y = t.pe_kind.golden_conv2d(t, x, w, run.padding)
    if config.keeps_scale:
        y = y * t.scale_divisor
    if config.output_width is not None:
        y = requantize(y, run.shift, config.output_width, config.rounding, relu=run.relu)
    return y
