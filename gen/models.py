"""Vectorized golden models of a convolution layer: direct and Winograd.

These are the reference the hardware is checked against, so every model here
is whole-layer and vectorized with NumPy: no Python loop runs over pixels,
tiles or batch items. The only loops are over the handful of rows of a
transform matrix, the kernel taps of the direct model, and (in the float
arithmetics) the input channels, where the order of the rounded sums matters.

Conventions
-----------
* Layout NCHW (``N`` batch, ``C`` channels, ``H × W`` pixels); a CHW input
  without batch gives a CHW output. Weights are ``(C_out, C_in, kh, kw)``.
  The 1-D models use NCL and ``(C_out, C_in, k)``.
* Convolution means correlation, as in DNN frameworks (PyTorch ``conv2d``):
  ``y[n, o, i, j] = Σ_c Σ_a Σ_b x[n, c, i + a, j + b] · w[o, c, a, b]`` on the
  zero-padded input, stride 1; the kernel is not flipped.
* Winograd F(m, r) tiles the padded input into ``n × n`` tiles (``n = m + r -
  1``) with stride ``m``; the last row and column of tiles are completed with
  zeros at the bottom/right and the surplus outputs are cropped.

Arithmetic
----------
``"exact"``
    Integer inputs through the integer hardware transforms of
    :meth:`ToomCook.hardware`: ``Y = Aᵀ[Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)]A / D²``, with
    the division checked to be exact. int64 when a worst-case bound derived
    from the matrices and the actual input ranges fits, else Python integers
    (object arrays), so the result is always exact. Below 2**53 the channel
    sums run as a float64 BLAS GEMM, which is exact on such integers.
``"rational"``
    Object arrays of :class:`fractions.Fraction` through the rational
    matrices: exact for any rational input (floats are taken at their exact
    binary value).
``"float64"``, ``"float32"``, ``"float16"``
    Every operation in that dtype with the matrices of
    :meth:`ToomCook.float_matrices` (fractions in ``G``): each product and sum
    is rounded to the dtype, in a fixed order (transform rows in ascending
    column order, channels in ascending order), as a datapath with one
    accumulator would. No BLAS is involved (its blocking and FMA vary by
    machine, and NumPy's float16 matmul accumulates in float32), so results
    are bit-reproducible and a sequential float datapath can be checked
    against them bit for bit.
"""

from fractions import Fraction
import itertools
import math
import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .toomcook import ToomCook
from .checks import check_int

__all__ = ["ARITHMETICS", "pad_input", "output_size", "direct_conv2d", "direct_conv1d",
           "winograd_conv2d", "winograd_conv1d", "winograd_tile", "winograd_tile_exact"]

#: The arithmetic kinds of the Winograd models.
ARITHMETICS = ("exact", "rational", "float64", "float32", "float16")

_FLOAT_DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16}

_INT64_MAX = int(np.iinfo(np.int64).max)

# Integers up to 2**53 are exact in float64, and so is every sum or product
# whose operands and result stay within it, in any order and with or without
# FMA: exact integer GEMMs can then run in float64 BLAS instead of NumPy's
# unblocked int64 loops, bit for bit the same result.
_FLOAT64_EXACT_INT = 2 ** 53

_LAYOUTS = {
    1: ("(N, C, L) or (C, L)", "(C_out, C_in, k)"),
    2: ("(N, C, H, W) or (C, H, W)", "(C_out, C_in, kh, kw)"),
}


# --------------------------------------------------------------------------
# Validation and conversions
# --------------------------------------------------------------------------

def _check_padding(padding):
    return check_int("padding", padding, 0)


def _check_toomcook(tc):
    if not isinstance(tc, ToomCook):
        raise TypeError(f"tc must be a ToomCook, not {tc!r}")
    return tc


def _check_tiles(d, g, tc):
    """Tiles ``d`` (..., n, n) and filters ``g`` (..., r, r) whose leading axes broadcast."""
    if d.ndim < 2 or d.shape[-2:] != (tc.n, tc.n):
        raise ValueError(f"d must have shape (..., {tc.n}, {tc.n}) for {tc.name}, not {d.shape}")
    if g.ndim < 2 or g.shape[-2:] != (tc.r, tc.r):
        raise ValueError(f"g must have shape (..., {tc.r}, {tc.r}) for {tc.name}, not {g.shape}")
    try:
        np.broadcast_shapes(d.shape[:-2], g.shape[:-2])
    except ValueError:
        raise ValueError(f"the leading axes of d and g must broadcast, not shapes {d.shape} "
                         f"and {g.shape}") from None


def _check_arithmetic(arithmetic):
    if not isinstance(arithmetic, str) or arithmetic not in ARITHMETICS:
        raise ValueError(f"arithmetic must be one of {', '.join(ARITHMETICS)}, not {arithmetic!r}")
    return arithmetic


def _as_array(name, value):
    array = np.asarray(value)
    if array.dtype.kind not in "iufO" or array.dtype.kind == "b":
        raise TypeError(f"{name} must be an array of real numbers, not an array of {array.dtype}")
    return array


def _check_layer(x, w, dims):
    """Arrays of a layer: ``x`` with a batch axis added if missing, ``w``, and whether ``x`` had one."""
    x = _as_array("x", x)
    w = _as_array("w", w)
    x_layout, w_layout = _LAYOUTS[dims]
    if x.ndim not in (dims + 1, dims + 2):
        raise ValueError(f"x must have shape {x_layout}, not {x.shape}")
    if w.ndim != dims + 2:
        raise ValueError(f"w must have shape {w_layout}, not {w.shape}")
    batched = x.ndim == dims + 2
    xb = x if batched else x[np.newaxis]
    if xb.shape[1] != w.shape[1]:
        raise ValueError(f"x has {xb.shape[1]} input channels but w expects {w.shape[1]}: "
                         f"x shape {x.shape}, w shape {w.shape}")
    if min(w.shape) < 1:
        raise ValueError(f"w must have at least one output channel, input channel and tap, "
                         f"not shape {w.shape}")
    return xb, w, batched


def _is_integer_array(array):
    if array.dtype.kind in "iu":
        return True
    if array.dtype == object:
        return all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in array.flat)
    return False


def _max_abs(array):
    """``max |array|`` as a Python int (0 for an empty array); no int64 overflow at the minimum."""
    if array.size == 0:
        return 0
    return max(abs(int(array.max())), abs(int(array.min())))


def _python_ints(array):
    """An object array of Python ints, so that no element can wrap around."""
    return np.frompyfunc(int, 1, 1)(array).astype(object) if array.size else array.astype(object)


def _fraction(value):
    if isinstance(value, numbers.Rational):
        return Fraction(value)
    if isinstance(value, numbers.Real):
        return Fraction(float(value))
    raise TypeError(f"rational arithmetic needs real numbers, not {value!r}")


def _fractions(array):
    return np.frompyfunc(_fraction, 1, 1)(array).astype(object) if array.size else array.astype(object)


def _object_matrix(rows):
    return np.array([list(row) for row in rows], dtype=object)


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------

def pad_input(x, padding):
    """Zero-pad the last two (spatial) axes of ``x`` by ``padding`` on every side.

    Parameters
    ----------
    x : array_like, shape (..., H, W)
        Any dtype, object arrays included.
    padding : int
        Non-negative number of zero rows/columns added on each side.

    Returns
    -------
    numpy.ndarray, shape (..., H + 2 padding, W + 2 padding)
    """
    padding = _check_padding(padding)
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 axes (..., H, W), not shape {x.shape}")
    return _pad_spatial(x, [(padding, padding)] * 2)


def _pad_spatial(x, widths):
    """Zero-pad the last ``len(widths)`` axes by ``(before, after)`` pairs."""
    if all(before == 0 and after == 0 for before, after in widths):
        return x
    if x.dtype == object:
        # np.pad would insert numpy.int64 zeros, which wrap around (or turn
        # Fractions into floats) when mixed with the exact Python objects.
        lead = x.shape[:x.ndim - len(widths)]
        core = tuple(s + b + a for s, (b, a) in zip(x.shape[x.ndim - len(widths):], widths))
        out = np.zeros(lead + core, dtype=object)            # Python int 0
        out[(Ellipsis,) + tuple(slice(b, b + s) for s, (b, a)
                                in zip(x.shape[x.ndim - len(widths):], widths))] = x
        return out
    pad = [(0, 0)] * (x.ndim - len(widths)) + list(widths)
    return np.pad(x, pad, mode="constant", constant_values=0)


def output_size(h, w, r, padding):
    """Spatial size of a stride-1 convolution output.

    Parameters
    ----------
    h, w : int
        Input height and width (positive).
    r : int or tuple of int
        Kernel size ``r × r``, or ``(kh, kw)``.
    padding : int
        Zero padding on every side (non-negative).

    Returns
    -------
    tuple of int
        ``(h + 2 padding - kh + 1, w + 2 padding - kw + 1)``.

    Raises
    ------
    ValueError
        If the padded input is smaller than the kernel.
    """
    padding = _check_padding(padding)
    h, w = check_int("h", h, 1), check_int("w", w, 1)
    kh, kw = (r, r) if isinstance(r, numbers.Integral) else tuple(r)
    for value in (kh, kw):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"r must be a positive integer or a pair of them, not {r!r}")
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"a {h}×{w} input padded by {padding} is smaller than the {kh}×{kw} kernel")
    return int(ho), int(wo)


def _output_shape(spatial, kernel, padding):
    if len(spatial) == 2:
        return output_size(spatial[0], spatial[1], tuple(kernel), padding)
    (length,), (k,) = spatial, kernel
    out = length + 2 * padding - k + 1
    if out < 1:
        raise ValueError(f"a length-{length} input padded by {padding} is shorter than the "
                         f"length-{k} kernel")
    return (out,)


# --------------------------------------------------------------------------
# Direct convolution
# --------------------------------------------------------------------------

def _direct_dtype(x, w, dtype):
    """The accumulation dtype of the direct model: int64, object or a float dtype."""
    if dtype is None:
        if x.dtype == object or w.dtype == object:
            return np.dtype(object)
        if x.dtype.kind in "iu" and w.dtype.kind in "iu":
            return np.dtype(np.int64)
        return np.result_type(x.dtype, w.dtype, np.float16)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be int64, object or a float dtype, not {dtype!r}") from None
    if dt != np.int64 and dt != object and dt.kind != "f":
        raise ValueError(f"dtype must be int64, object or a float dtype, not {dtype!r}")
    return dt


def _direct(x, w, padding, dtype, dims):
    xb, w, batched = _check_layer(x, w, dims)
    padding = _check_padding(padding)
    kernel = w.shape[2:]
    out_shape = _output_shape(xb.shape[2:], kernel, padding)
    dt = _direct_dtype(xb, w, dtype)
    if dt == np.int64:
        if not (_is_integer_array(xb) and _is_integer_array(w)):
            raise ValueError(f"dtype int64 needs integer x and w, not {xb.dtype} and {w.dtype}")
        taps = int(np.prod(kernel))
        bx, bw = _max_abs(xb), _max_abs(w)
        bound = w.shape[1] * taps * bx * bw
        if bound > _INT64_MAX:
            raise OverflowError(
                f"the worst-case accumulator bound {bound} ({w.shape[1]} channels × {taps} taps × "
                f"max|x| {bx} × max|w| {bw}) exceeds int64; pass dtype=object for exact "
                f"Python integers")
        # Every partial sum is bounded by `bound` too, so float64 is exact here.
        carrier = np.float64 if bound <= _FLOAT64_EXACT_INT else np.int64
        xb, w = xb.astype(carrier), w.astype(carrier)
    elif dt == object:
        # Python ints stay exact; Fractions and floats keep their own arithmetic.
        xb = _python_ints(xb) if _is_integer_array(xb) else xb.astype(object)
        w = _python_ints(w) if _is_integer_array(w) else w.astype(object)
    else:
        xb, w = xb.astype(dt), w.astype(dt)
    xp = _pad_spatial(xb, [(padding, padding)] * dims)
    # One (C_out × C_in) by (C_in × N·pixels) product per kernel tap: a BLAS
    # GEMM in float, and no im2col copy of the input.
    acc = None
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = (slice(None), slice(None)) + tuple(slice(t, t + o) for t, o in zip(tap, out_shape))
        term = np.tensordot(w[(slice(None), slice(None)) + tap], xp[window], axes=([1], [1]))
        acc = term if acc is None else acc + term
    y = np.moveaxis(acc, 0, 1)                              # (C_out, N, ...) -> (N, C_out, ...)
    y = np.ascontiguousarray(y, dtype=dt) if dt != object else y
    return y if batched else y[0]


def direct_conv2d(x, w, padding=0, *, dtype=None):
    """Direct 2-D convolution (correlation) of a layer, PyTorch ``conv2d`` semantics.

    Parameters
    ----------
    x : array_like, shape (N, C_in, H, W) or (C_in, H, W)
        Activations.
    w : array_like, shape (C_out, C_in, kh, kw)
        Weights; not flipped.
    padding : int
        Zero padding on every side, stride 1.
    dtype : dtype, optional
        Accumulation type. Default: int64 for integer inputs (exact; run as
        float64 BLAS when the bound below is at most 2**53, where that is
        exact), object for object inputs, else the common float type of
        ``x`` and ``w``. ``object`` computes with exact Python integers (or
        the objects given, e.g. Fractions).

    Returns
    -------
    numpy.ndarray, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        ``H_out, W_out = output_size(H, W, (kh, kw), padding)``.

    Raises
    ------
    OverflowError
        In int64 when the worst-case accumulator bound
        ``C_in · kh · kw · max|x| · max|w|`` exceeds int64.
    ValueError
        For malformed shapes, channel mismatches or a bad ``padding``/``dtype``.
    """
    return _direct(x, w, padding, dtype, dims=2)


def direct_conv1d(x, w, padding=0, *, dtype=None):
    """Direct 1-D convolution (correlation) of a layer, PyTorch ``conv1d`` semantics.

    Parameters
    ----------
    x : array_like, shape (N, C_in, L) or (C_in, L)
    w : array_like, shape (C_out, C_in, k)
    padding : int
        Zero padding at both ends, stride 1.
    dtype : dtype, optional
        As for :func:`direct_conv2d`.

    Returns
    -------
    numpy.ndarray, shape (N, C_out, L + 2 padding - k + 1) or without ``N``
    """
    return _direct(x, w, padding, dtype, dims=1)


# --------------------------------------------------------------------------
# Winograd building blocks
# --------------------------------------------------------------------------

def _apply_rows(matrix, x, axis):
    """``y[..., i, ...] = Σ_k matrix[i][k] · x[..., k, ...]`` along ``axis``.

    Written as explicit scaled additions so that in floating point every
    product and every sum is rounded to ``x``'s dtype in one fixed order
    (ascending ``k``), and exact for ints and Fractions. Zero coefficients
    are skipped and ±1 costs no multiply, as in hardware; neither changes a
    value.
    """
    xs = np.moveaxis(x, axis, 0)
    rows = []
    for row in matrix:
        acc = None
        for k, coeff in enumerate(row):
            if coeff == 0:
                continue
            term = xs[k] if coeff == 1 else -xs[k] if coeff == -1 else coeff * xs[k]
            acc = term if acc is None else acc + term
        rows.append(np.zeros_like(xs[0]) if acc is None else acc)
    return np.moveaxis(np.stack(rows), 0, axis)


def _transform(matrix, x, dims):
    """``M x`` (1-D) or ``M X Mᵀ`` (2-D) over the last ``dims`` axes of ``x``."""
    for axis in range(-dims, 0):
        x = _apply_rows(matrix, x, axis)
    return x


def _row_norms(matrix):
    return [sum(abs(int(c)) for c in row) for row in matrix]


def _exact_bound(hw, channels, bound_d, bound_g, dims):
    """Worst-case magnitude of every intermediate of the integer Winograd pipeline.

    Partial sums of a transform row are bounded by the row's ℓ1 norm times the
    input bound, so bounding each stage's outputs bounds all its partial sums.
    """
    bt, g = _row_norms(hw.BT), _row_norms(hw.G)
    positions = list(itertools.product(range(len(bt)), repeat=dims))
    prod = lambda norms, idx: math.prod(norms[i] for i in idx)
    v = {p: prod(bt, p) * bound_d for p in positions}
    u = {p: prod(g, p) * bound_g for p in positions}
    acc = {p: channels * u[p] * v[p] for p in positions}
    worst = max([*v.values(), *u.values(), *acc.values()], default=0)
    # Output transform stage by stage: along the first axis, then the second.
    at = [[abs(int(c)) for c in row] for row in hw.AT]
    stage = acc
    for axis in range(dims):
        nxt = {}
        for p in itertools.product(*[range(len(at)) if a <= axis else range(len(bt))
                                     for a in range(dims)]):
            nxt[p] = sum(at[p[axis]][k] * stage[p[:axis] + (k,) + p[axis + 1:]]
                         for k in range(len(bt)))
        stage = nxt
        worst = max(worst, max(stage.values()))
    return worst


def _matrices(tc, arithmetic):
    """``(AT, G, BT, divisor)`` in the form ``arithmetic`` computes with."""
    if arithmetic == "exact":
        hw = tc.hardware()
        return hw.AT, hw.G, hw.BT, hw.denominator
    if arithmetic == "rational":
        mats = tc.matrices("G")
        return (_object_matrix(mats.AT), _object_matrix(mats.G), _object_matrix(mats.BT), 1)
    AT, G, BT, _ = tc.float_matrices(arithmetic, fractions="G")
    return AT, G, BT, 1


def _prepare(x, w, tc, arithmetic, channels, dims):
    """Convert the operands for ``arithmetic``.

    Returns
    -------
    x, w : numpy.ndarray
    matrices : tuple
        ``(AT, G, BT, divisor)`` with ``divisor = D**dims`` (1 unless exact).
    accumulate : str
        How to sum over channels: the arithmetic's name, or ``"int64 via
        float64"`` when every exact intermediate fits in 2**53.
    """
    AT, G, BT, divisor = _matrices(tc, arithmetic)
    accumulate = arithmetic
    if arithmetic == "exact":
        if not (_is_integer_array(x) and _is_integer_array(w)):
            raise ValueError(f"arithmetic 'exact' needs integer x and w, not {x.dtype} and "
                             f"{w.dtype}; use 'rational' or a float arithmetic")
        bound = _exact_bound(tc.hardware(), channels, _max_abs(x), _max_abs(w), dims)
        if bound <= _INT64_MAX:
            x, w = x.astype(np.int64), w.astype(np.int64)
            if bound <= _FLOAT64_EXACT_INT:
                accumulate = "int64 via float64"
        else:
            x, w = _python_ints(x), _python_ints(w)
    elif arithmetic == "rational":
        x, w = _fractions(x), _fractions(w)
    else:
        dt = _FLOAT_DTYPES[arithmetic]
        x, w = x.astype(dt), w.astype(dt)
    # The integer result carries D per dimension: Y·D^dims.
    return x, w, (AT, G, BT, divisor ** dims), accumulate


def _divide_exact(y, divisor, exact=True):
    """``y / divisor`` for integer ``y`` known to be divisible; checked, never rounded.

    For approximate transforms (``exact`` false: given matrices that are not a Winograd
    algorithm) the result is not divisible in general; it is then floored, as the
    hardware's arithmetic right shift by ``log2(divisor)`` does.
    """
    if divisor == 1:
        return y
    if not exact:
        return y // divisor
    # Object arrays (Python ints) have no divmod ufunc loop; % and // do.
    if np.any(y % divisor != 0):
        raise AssertionError(f"Winograd integer output is not divisible by {divisor}: "
                             f"the transforms are inconsistent")
    return y // divisor


def _accumulate_channels(U, V, accumulate):
    """``M[p, o, t] = Σ_c U[p, o, c] · V[p, c, t]`` for every Winograd position ``p``."""
    if accumulate == "int64 via float64":
        return np.matmul(U.astype(np.float64), V.astype(np.float64)).astype(np.int64)
    if accumulate not in _FLOAT_DTYPES:
        return np.matmul(U, V)                               # exact: any order will do
    # Floats: channel by channel, each product and sum rounded, in a fixed order.
    acc = U[:, :, 0, np.newaxis] * V[:, np.newaxis, 0, :]
    for c in range(1, U.shape[2]):
        acc = acc + U[:, :, c, np.newaxis] * V[:, np.newaxis, c, :]
    return acc


def _winograd(x, w, tc, padding, arithmetic, dims):
    tc = _check_toomcook(tc)
    arithmetic = _check_arithmetic(arithmetic)
    xb, w, batched = _check_layer(x, w, dims)
    padding = _check_padding(padding)
    if w.shape[2:] != (tc.r,) * dims:
        kernel = "×".join([str(tc.r)] * dims)
        raise ValueError(f"w must hold {kernel} kernels for {tc.name}, not shape {w.shape}")
    m, r, n = tc.m, tc.r, tc.n
    out_shape = _output_shape(xb.shape[2:], w.shape[2:], padding)
    batch, c_in, c_out = xb.shape[0], xb.shape[1], w.shape[0]
    xb, w, (AT, G, BT, divisor), accumulate = _prepare(xb, w, tc, arithmetic, c_in, dims)

    # Pad by `padding`, then complete the last tiles with zeros at the end.
    tiles_per_axis = [-(-size // m) for size in out_shape]
    widths = [(padding, t * m + r - 1 - size - padding)
              for t, size in zip(tiles_per_axis, xb.shape[2:])]
    xp = _pad_spatial(xb, widths)
    axes = tuple(range(-dims, 0))
    tiles = sliding_window_view(xp, (n,) * dims, axis=axes)[(Ellipsis,) + (slice(None, None, m),) * dims
                                                            + (slice(None),) * dims]
    # tiles: (N, C_in, T..., n...). Both transforms act on the trailing n axes.
    V = _transform(BT, tiles, dims)
    U = _transform(G, w, dims)                               # (C_out, C_in, n...)

    positions, n_tiles = n ** dims, int(np.prod(tiles_per_axis))
    U = np.ascontiguousarray(U.reshape(c_out, c_in, positions).transpose(2, 0, 1))  # BLAS-ready
    V = V.reshape(batch, c_in, n_tiles, positions).transpose(3, 1, 0, 2).reshape(positions, c_in, -1)
    M = _accumulate_channels(U, V, accumulate)               # (positions, C_out, N·tiles)
    M = M.reshape((positions, c_out, batch, n_tiles)).transpose(2, 1, 3, 0)
    M = M.reshape((batch, c_out, *tiles_per_axis) + (n,) * dims)

    Y = _divide_exact(_transform(AT, M, dims), divisor,      # (N, C_out, T..., m...)
                      getattr(tc, "exact", True))
    # Interleave tile and in-tile axes: (T1, m, T2, m) -> (T1·m, T2·m), then crop.
    order = [0, 1] + [a for d in range(dims) for a in (2 + d, 2 + dims + d)]
    Y = Y.transpose(order).reshape((batch, c_out) + tuple(t * m for t in tiles_per_axis))
    Y = Y[(slice(None), slice(None)) + tuple(slice(0, s) for s in out_shape)]
    Y = np.ascontiguousarray(Y) if Y.dtype != object else Y.copy()
    return Y if batched else Y[0]


# --------------------------------------------------------------------------
# Winograd models
# --------------------------------------------------------------------------

def winograd_conv2d(x, w, tc, padding=0, *, arithmetic="exact"):
    """Winograd convolution (correlation) of a whole layer with F(m, r).

    The input is padded by ``padding``, then completed with zeros at the
    bottom/right to a whole number of ``n × n`` tiles taken with stride
    ``m``; all tiles of all channels are transformed at once (``V = Bᵀ d
    B``), the filters once (``U = G g Gᵀ``), the products accumulated over
    input channels in the Winograd domain (``M[o] = Σ_c U[o, c] ⊙ V[c]``)
    and every output tile transformed back (``Aᵀ M A``) and cropped.

    Parameters
    ----------
    x : array_like, shape (N, C_in, H, W) or (C_in, H, W)
        Activations: integers for ``"exact"``, rationals (ints, Fractions,
        floats) for ``"rational"``, any reals for the float arithmetics.
    w : array_like, shape (C_out, C_in, r, r)
        Weights, ``r = tc.r``; not flipped.
    tc : ToomCook
        The algorithm F(m, r) and its points.
    padding : int
        Zero padding on every side, stride 1.
    arithmetic : str
        ``"exact"``, ``"rational"``, ``"float64"``, ``"float32"`` or
        ``"float16"`` (see the module docstring).

    Returns
    -------
    numpy.ndarray, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        int64 (or object of Python ints past int64) for ``"exact"``, object
        of Fraction for ``"rational"``, else the float dtype. Equal to
        :func:`direct_conv2d` exactly in the exact arithmetics.
    """
    return _winograd(x, w, tc, padding, arithmetic, dims=2)


def winograd_conv1d(x, w, tc, padding=0, *, arithmetic="exact"):
    """Winograd 1-D convolution (correlation) of a layer with F(m, r).

    Parameters
    ----------
    x : array_like, shape (N, C_in, L) or (C_in, L)
    w : array_like, shape (C_out, C_in, r)
    tc : ToomCook
    padding : int
        Zero padding at both ends, stride 1.
    arithmetic : str
        As for :func:`winograd_conv2d`; ``"exact"`` divides by ``D``.

    Returns
    -------
    numpy.ndarray, shape (N, C_out, L + 2 padding - r + 1) or without ``N``
    """
    return _winograd(x, w, tc, padding, arithmetic, dims=1)


def winograd_tile(d, g, tc, *, arithmetic="exact"):
    """F(m × m, r × r) on a batch of single tiles: ``Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A``.

    Parameters
    ----------
    d : array_like, shape (..., n, n)
        Input tiles, ``n = tc.n``.
    g : array_like, shape (..., r, r)
        Filters, ``r = tc.r``; the leading axes broadcast against ``d``'s.
    tc : ToomCook
    arithmetic : str
        As for :func:`winograd_conv2d`.

    Returns
    -------
    numpy.ndarray, shape (..., m, m)
        The valid correlation of each tile with its filter.
    """
    tc = _check_toomcook(tc)
    arithmetic = _check_arithmetic(arithmetic)
    d, g = _as_array("d", d), _as_array("g", g)
    _check_tiles(d, g, tc)
    d, g, (AT, G, BT, divisor), _ = _prepare(d, g, tc, arithmetic, 1, 2)
    M = _transform(G, g, 2) * _transform(BT, d, 2)
    return _divide_exact(_transform(AT, M, 2), divisor)


def winograd_tile_exact(d, g, tc):
    """Exact integer F(m × m, r × r) on a batch of tiles: :func:`winograd_tile` with ``"exact"``.

    Parameters
    ----------
    d : array_like of int, shape (..., n, n)
    g : array_like of int, shape (..., r, r)
    tc : ToomCook

    Returns
    -------
    numpy.ndarray, shape (..., m, m)
        int64, or Python ints in an object array when int64 could overflow.
    """
    return winograd_tile(d, g, tc, arithmetic="exact")
