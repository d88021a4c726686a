"""AdderNet golden models: direct and Winograd adder convolution, exact integers.

AdderNet (Chen et al., "AdderNet: Do We Really Need Multiplications in Deep
Learning?", CVPR 2020) replaces the multiply-accumulate of a convolution by a
negated ℓ1 distance::

    Y[n, k, i, j] = -Σ_{c, a, b} |X_pad[n, c, i + a, j + b] - W[k, c, a, b]|

This is exactly the forward pass of the reference ``adder2d_function`` of
``huawei-noah/AdderNet`` (``adder.py``): the input is unfolded with
``torch.nn.functional.unfold(..., padding=padding)``, so padded positions hold
zeros and **do contribute** ``|0 - w|`` to the sum (they are not skipped).
Stride 1 only here.

Winograd AdderNet (Li et al., "Winograd Algorithm for AdderNet", ICML 2021)
replaces the element-wise product of F(m×m, r×r) by the PE ``-|u - v|``::

    Y_tile = Aᵀ [ -|U - V| ] A,    U = G g Gᵀ,   V = Bᵀ d B

summed over input channels. This is *not* a convolution any more (the ℓ1
distance is not bilinear), so the choice of matrices changes the function.

Exact integer semantics
-----------------------
The matrices are rational (Lavin's ``G`` holds ½). Hardware needs integers, and
since the PE is not bilinear the scale cannot be moved around freely: only a
*positive* factor ``s_i`` applied to row ``i`` of ``G`` **and** row ``i`` of
``Bᵀ`` together, with column ``i`` of ``Aᵀ`` divided by it, leaves the result
unchanged (``|s u - s v| / s = |u - v|``; in 2-D the factors are ``s_i s_j``).
:func:`integer_adder_transforms` therefore takes ``s_i`` = the least common
denominator of row ``i`` of ``G`` and ``Bᵀ``, then multiplies ``Aᵀ`` by the least
common denominator ``k`` of its entries. With the integer matrices
``Aᵀ', G', Bᵀ'`` (all that hardware and :class:`~winogen.gen.fixedpoint.TileModel`
use)::

    U' = G' g G'ᵀ,   V' = Bᵀ' d B',   Y' = Aᵀ' [ -|U' - V'| ] A'  =  k² · Y_tile

exactly, with no division anywhere; ``k²`` is the ``scale`` returned (4 for
both built-in F(2,3) sets). The engine's output *is* ``Y'``; nothing is
removed (a positive constant factor is absorbed by the batch normalisation
that follows every adder layer).

Matrix sets
-----------
``"standard"``
    Lavin & Gray's F(2,3): ``Aᵀ = [[1,1,1,0],[0,1,-1,-1]]``,
    ``G = [[1,0,0],[½,½,½],[½,-½,½],[0,0,1]]``,
    ``Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]`` (integer form:
    ``G' = [[1,0,0],[1,1,1],[1,-1,1],[0,0,1]]``, rows 1 and 2 of ``Bᵀ`` doubled,
    ``Aᵀ' = [[2,1,1,0],[0,1,-1,-2]]``, scale 4).
``"balanced"``
    **Derived here, not copied from Li et al.**: the exact matrices of the
    paper could not be retrieved (no public code of the paper was found; only
    its abstract was available), so this set is derived from the criterion the
    paper states — transform matrices that keep the output features of a tile
    alike ("enhance the representation ability of output features"), made
    precise as: *every output of the tile is the same signed combination of
    the non-positive terms* ``-|u - v|``. With Lavin's ``Aᵀ`` output 0 is
    ``m0 + m1 + m2`` (always ≤ 0, nine like-signed terms in 2-D) while output 1
    is ``m1 - m2 - m3``, so the four outputs of a 2×2 tile have different
    statistics. Flipping the sign of column 2 of ``Aᵀ`` together with row 2 of
    ``Bᵀ`` keeps the multiplicative Winograd identity (the product of the
    three factors is 1) but changes the adder function, and gives
    ``Aᵀ = [[1,1,-1,0],[0,1,1,-1]]``: both rows have the nonzero multiset
    {+1, +1, -1}, the only choice of signs that makes them equal (column 1 is
    [1, 1]; column 2 must then be [-1, 1] and column 3 [0, -1]). In 2-D every
    output then sums nine terms with five ``+`` and four ``-`` signs.
    ``G`` is Lavin's; ``Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,1,-1,0],[0,1,0,-1]]``.
    Integer form ``Aᵀ' = [[2,1,-1,0],[0,1,1,-2]]``, scale 4.
``(AT, G, BT)``
    User matrices (rational entries: ints, Fractions or strings such as
    ``"1/2"``) of shapes ``(m, n)``, ``(n, r)``, ``(n, n)``.
"""

from fractions import Fraction
from math import lcm

import numpy as np

from .checks import check_int
from .matrixfile import check_full_rank, check_shapes, parse_matrix, read_matrix_file

__all__ = ["ADDER_MATRIX_SETS", "adder_matrices", "load_adder_matrices", "integer_adder_transforms",
           "adder_direct_conv2d", "adder_winograd_conv2d", "compare_adder_models"]

_H = Fraction(1, 2)

#: The named F(2,3) matrix sets, rational, as (Aᵀ, G, Bᵀ).
ADDER_MATRIX_SETS = {
    "standard": (
        ((1, 1, 1, 0), (0, 1, -1, -1)),
        ((1, 0, 0), (_H, _H, _H), (_H, -_H, _H), (0, 0, 1)),
        ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
    ),
    "balanced": (
        ((1, 1, -1, 0), (0, 1, 1, -1)),
        ((1, 0, 0), (_H, _H, _H), (_H, -_H, _H), (0, 0, 1)),
        ((1, 0, -1, 0), (0, 1, 1, 0), (0, 1, -1, 0), (0, 1, 0, -1)),
    ),
}


def adder_matrices(spec, m=None, r=None):
    """The rational ``(Aᵀ, G, Bᵀ)`` for ``spec``: a set name or user matrices.

    Parameters
    ----------
    spec : str or tuple
        ``"standard"``, ``"balanced"`` (F(2,3) only) or ``(AT, G, BT)``.
    m, r : int, optional
        The tile's output and filter size, checked against the matrices.

    Raises
    ------
    ValueError
        For unknown names, wrong sizes, or shapes other than ``AT (m, n)``,
        ``G (n, r)``, ``BT (n, n)`` with ``n = m + r - 1``.
    """
    if isinstance(spec, str):
        if spec not in ADDER_MATRIX_SETS:
            raise ValueError(f"adder_matrices must be one of {', '.join(ADDER_MATRIX_SETS)} "
                             f"or (AT, G, BT), not {spec!r}")
        if (m, r) not in ((None, None), (2, 3)):
            raise ValueError(f"the {spec!r} adder matrices are F(2,3) only: m and r must be 2 "
                             f"and 3, not {m} and {r} (give (AT, G, BT) for other sizes)")
        AT, G, BT = ADDER_MATRIX_SETS[spec]
        return tuple(tuple(tuple(Fraction(x) for x in row) for row in M) for M in (AT, G, BT))
    if not isinstance(spec, (tuple, list)) or len(spec) != 3:
        raise ValueError(f"adder_matrices must be one of {', '.join(ADDER_MATRIX_SETS)} "
                         f"or (AT, G, BT), not {spec!r}")
    AT, G, BT = (parse_matrix(nm, M) for nm, M in zip(("AT", "G", "BT"), spec))
    check_shapes(AT, G, BT, m, r, what="adder matrices")
    check_full_rank(AT, G, BT)
    return AT, G, BT


def load_adder_matrices(path, m=None, r=None):
    """User matrices ``(Aᵀ, G, Bᵀ)`` from a JSON file, validated as :func:`adder_matrices` does.

    The file format is :mod:`winogen.gen.matrixfile`'s: one object ``{"AT": [[...]], "G":
    [[...]], "BT": [[...]]}``; entries are integers or exact rationals as strings
    (``"1/2"``). Floats are refused (they are not exact).

    Raises
    ------
    ValueError
        If the file cannot be read, is not such an object, or the matrices have the wrong
        shapes; the message names the file.
    """
    rows = read_matrix_file(path, "adder matrix file")
    try:
        return adder_matrices(rows, m, r)
    except ValueError as e:
        raise ValueError(f"adder matrix file {str(path)!r}: {e}") from None


def integer_adder_transforms(AT, G, BT):
    """Integer ``(Aᵀ', G', Bᵀ', scale)`` with ``Aᵀ'[-|U' - V'|]A' = scale · Aᵀ[-|U - V|]A``.

    See the module docstring: row ``i`` of ``G`` and ``Bᵀ`` are multiplied by the
    positive least common denominator ``s_i`` of both rows, column ``i`` of ``Aᵀ``
    divided by it, and ``Aᵀ`` is made integer by its common denominator ``k``;
    ``scale = k²``.
    """
    AT, G, BT = (tuple(tuple(Fraction(x) for x in row) for row in M) for M in (AT, G, BT))
    n = len(G)
    s = [lcm(*(x.denominator for x in G[i] + BT[i])) for i in range(n)]
    G2 = [[x * s[i] for x in G[i]] for i in range(n)]
    BT2 = [[x * s[i] for x in BT[i]] for i in range(n)]
    AT2 = [[row[i] / s[i] for i in range(n)] for row in AT]
    k = lcm(*(x.denominator for row in AT2 for x in row))
    AT2 = [[x * k for x in row] for row in AT2]
    as_int = lambda M: tuple(tuple(int(x) for x in row) for row in M)
    return as_int(AT2), as_int(G2), as_int(BT2), k * k


def _nchw(x, name):
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.integer) or x.dtype == object):
        raise TypeError(f"{name} values must be integers, not {x.dtype}")
    if x.ndim == 3:
        return x[None], True
    if x.ndim == 4:
        return x, False
    raise ValueError(f"{name} must have shape (N, C, H, W) or (C, H, W), not {x.shape}")


def _check_padding(padding):
    return check_int("padding", padding, 0)


def _check_weights(w, c):
    w = np.asarray(w)
    if not (np.issubdtype(w.dtype, np.integer) or w.dtype == object):
        raise TypeError(f"weight values must be integers, not {w.dtype}")
    if w.ndim != 4 or w.shape[1] != c or w.shape[2] != w.shape[3]:
        raise ValueError(f"weights must have shape (K, {c}, r, r), not {w.shape}")
    return w


def adder_direct_conv2d(x, w, padding=0):
    """AdderNet layer, exactly as ``adder.py``'s forward pass (stride 1).

    Parameters
    ----------
    x : array of int, shape (N, C, H, W) or (C, H, W)
    w : array of int, shape (K, C, r, r)
    padding : int
        Zero padding on every side; padded zeros contribute ``|0 - w|``.

    Returns
    -------
    array of int64, shape (N, K, H + 2p - r + 1, W + 2p - r + 1) (no N for CHW input)
    """
    x, chw = _nchw(x, "x")
    w = _check_weights(w, x.shape[1])
    p = _check_padding(padding)
    r = w.shape[2]
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (p, p), (p, p)))
    if xp.shape[2] < r or xp.shape[3] < r:
        raise ValueError(f"the padded input ({xp.shape[2]}×{xp.shape[3]}) must be at least "
                         f"{r}×{r}")
    win = np.lib.stride_tricks.sliding_window_view(xp, (r, r), axis=(2, 3))  # N C Ho Wo r r
    out = np.stack([-np.abs(win - wk[None, :, None, None].astype(np.int64)).sum(axis=(1, 4, 5))
                    for wk in w], axis=1)
    return out[0] if chw else out


def adder_winograd_conv2d(x, w, matrices="standard", padding=0):
    """Winograd AdderNet layer (Li et al.) in the exact integer form of the hardware.

    The zero-padded input is cut into ``n × n`` tiles with stride ``m`` starting
    at the top left; where the last tiles reach past the padded input they read
    zeros (which, unlike for a convolution, change the whole tile's outputs);
    the output is cropped to the direct layer's size. Per tile and filter:
    ``Y' = Σ_c Aᵀ'[-|G' g_c G'ᵀ - Bᵀ' d_c B'|]A'`` with the integer matrices of
    :func:`integer_adder_transforms`, i.e. ``scale`` times the rational result.

    Parameters
    ----------
    x : array of int, shape (N, C, H, W) or (C, H, W)
    w : array of int, shape (K, C, r, r)
    matrices : str or tuple
        ``"standard"``, ``"balanced"`` or ``(AT, G, BT)`` (see :func:`adder_matrices`).
    padding : int

    Returns
    -------
    y : array of int64, shape (N, K, Ho, Wo) (no N for CHW input)
    scale : int
        ``k²``: ``y`` divided by it is the rational Winograd-AdderNet output.
    """
    x, chw = _nchw(x, "x")
    w = _check_weights(w, x.shape[1])
    p = _check_padding(padding)
    AT, G, BT = adder_matrices(matrices)
    m, n, r = len(AT), len(BT), len(G[0])
    if w.shape[2] != r:
        raise ValueError(f"weights must have shape (K, {x.shape[1]}, {r}, {r}) for these "
                         f"matrices, not {w.shape}")
    ATi, Gi, BTi, scale = (np.array(M, dtype=np.int64) if not isinstance(M, int) else M
                           for M in integer_adder_transforms(AT, G, BT))
    N, C, H, W = x.shape
    Ho, Wo = H + 2 * p - r + 1, W + 2 * p - r + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"the padded input ({H + 2 * p}×{W + 2 * p}) must be at least {r}×{r}")
    th, tw = -(-Ho // m), -(-Wo // m)
    xp = np.zeros((N, C, th * m + r - 1, tw * m + r - 1), dtype=np.int64)
    xp[:, :, p:p + H, p:p + W] = x
    tiles = np.lib.stride_tricks.sliding_window_view(xp, (n, n), axis=(2, 3))[:, :, ::m, ::m]
    V = np.einsum("ia,nctuab,jb->nctuij", BTi, tiles, BTi)
    U = np.einsum("ia,kcab,jb->kcij", Gi, w.astype(np.int64), Gi)
    out = np.empty((N, len(w), th * m, tw * m), dtype=np.int64)
    for k in range(len(w)):
        M = -np.abs(U[k][None, :, None, None] - V).sum(axis=1)       # N th tw n n
        Y = np.einsum("ia,ntuab,jb->ntuij", ATi, M, ATi)             # N th tw m m
        out[:, k] = Y.transpose(0, 1, 3, 2, 4).reshape(N, th * m, tw * m)
    out = out[:, :, :Ho, :Wo]
    return (out[0] if chw else out), scale


def compare_adder_models(image="camera", *, filters=8, size=128, matrices=("standard", "balanced"),
                         padding=1, weight_range=(0, 255), seed=0):
    """Winograd AdderNet against direct AdderNet on a real image.

    Parameters
    ----------
    image : str or array
        ``"camera"`` or ``"astronaut"`` (from ``skimage.data``; colour images are
        converted to 8-bit grey) or a 2-D integer array.
    filters : int
        Random integer 3×3 filters drawn uniformly from ``weight_range``
        (inclusive); the default matches the image's range, as trained adder
        weights match their inputs' distribution.
    size : int
        The image is cut to its top-left ``size × size`` block (None: all).
    matrices : sequence
        Matrix sets to compare (names or (AT, G, BT)).

    Returns
    -------
    dict
        Per matrix set (its name, or ``"user{i}"``): ``correlation`` (Pearson, over
        every output) and ``relative_l1`` (``‖Y_w / scale - Y_d‖₁ / ‖Y_d‖₁``).
    """
    if isinstance(image, str):
        from skimage import data, color, util
        if image not in ("camera", "astronaut"):
            raise ValueError(f"image must be one of camera, astronaut, or an array, not {image!r}")
        img = getattr(data, image)()
        if img.ndim == 3:
            img = util.img_as_ubyte(color.rgb2gray(img))
    else:
        img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D, not of shape {img.shape}")
    if size is not None:
        img = img[:size, :size]
    x = img.astype(np.int64)[None]
    rng = np.random.default_rng(seed)
    lo, hi = weight_range
    w = rng.integers(lo, hi + 1, (filters, 1, 3, 3))
    direct = adder_direct_conv2d(x, w, padding).astype(np.float64)
    results = {}
    for i, spec in enumerate(matrices):
        y, scale = adder_winograd_conv2d(x, w, spec, padding)
        y = y.astype(np.float64) / scale
        key = spec if isinstance(spec, str) else f"user{i}"
        results[key] = {
            "correlation": float(np.corrcoef(y.ravel(), direct.ravel())[0, 1]),
            "relative_l1": float(np.abs(y - direct).sum() / np.abs(direct).sum()),
        }
    return results
