"""Winograd-aware training: the reference network with the quantized Winograd engine's
arithmetic in its forward pass (seed: Fernandez-Marques et al., "Searching for
Winograd-aware Quantized Networks", MLSys 2020).

The forward pass (:func:`forward_engine`) computes what the layer engine computes, in
floating point but on integer values, with a straight-through estimator (identity
gradient) for every rounding, so that with the trained int8 weights it gives the engine's
integers exactly (``tests/test_wa.py`` checks it against the engine's golden model):

* each layer as the engine runs it (:func:`engine_inputs`): ``c1`` directly with padding 1,
  the 5 × 5, strided and dense layers as stacked DWM pieces (:mod:`winogen.gen.dwm`) with
  padding 0;
* weights ``w_q = clip(round(w · 2^sw), -127, 127)`` and the requantization shifts of
  :func:`winogen.nets.train.quantize`, fixed from the float network;
* per tile (tiles of ``m × m`` outputs from the padded map's origin): ``V = Bᵀ' d B'``,
  ``V̂`` rounded half up by ``sV`` and clamped to ``W`` bits, ``Û`` = ``U / D²`` rounded
  half up by ``sU`` (``U = G' g G'ᵀ``), ``M = Σ_c V̂ ⊙ Û``, ``Z = Aᵀ' (M · 2^a) A'``,
  ``Y = Z`` rounded half up by ``-min e`` (:mod:`winogen.gen.winoquant`); with an exact
  Winograd domain ``Y`` is the correlation;
* the engine's requantization (round half to even, saturation, ReLU).

The loss uses the last layer's sums before requantization, in real units.
"""


import numpy as np

__all__ = ["QuantizedDomain", "FlexTransforms", "engine_inputs", "engine_activations",
           "engine_kernels", "winograd_layer", "winograd_layer_u",
           "forward_engine", "engine_layers_of", "int8_weights", "train_wa",
           "winograd_statistics", "calibrated_shifts"]


def _ste(fn):
    """``fn`` (a rounding) with the identity as its gradient, for autograd."""
    from autograd.extend import defvjp, primitive
    wrapped = primitive(fn)
    defvjp(wrapped, lambda ans, x: lambda g: g)
    return wrapped


_floor = None
_round_even = None

#: Training images the calibrated shifts are measured on.
CALIBRATION_IMAGES = 300


def _roundings():
    global _floor, _round_even
    if _floor is None:
        _floor = _ste(np.floor)
        _round_even = _ste(np.round)       # NumPy rounds half to even
    return _floor, _round_even


class QuantizedDomain:
    """The Winograd domain of one engine: integer transforms and, when quantized, the
    shifts and width.

    Parameters
    ----------
    hardware : HardwareTransforms
        Integer ``Aᵀ'``, ``G'``, ``Bᵀ'`` and ``D``.
    v_shifts, u_shifts : sequence of int, optional
        ``sV`` and ``sU`` per Winograd position (row-major n²); None for an exact domain.
    width : int, optional
        ``W``.
    """

    def __init__(self, hardware, v_shifts=None, u_shifts=None, width=None):
        self.AT = np.array(hardware.AT, dtype=np.float64)
        self.G = np.array(hardware.G, dtype=np.float64)
        self.BT = np.array(hardware.BT, dtype=np.float64)
        self.D = hardware.denominator
        self.m, self.n = self.AT.shape
        self.r = self.G.shape[1]
        self.quantized = width is not None
        #: Approximate transforms remove D² with a shift that floors (exact ones divide).
        self.floor_descale = False
        if self.quantized:
            n = self.n
            self.width = width
            self.v_shifts_given, self.u_shifts_given = tuple(v_shifts), tuple(u_shifts)
            sv = np.array(v_shifts, dtype=np.int64).reshape(n, n)
            su = np.array(u_shifts, dtype=np.int64).reshape(n, n)
            e = sv + su
            self.v_scale = 2.0 ** -sv
            self.u_scale = 2.0 ** -su / self.D ** 2
            self.align = 2.0 ** (e - e.min())
            self.out_scale = 2.0 ** e.min()
            # Û's range per position in an engine for int8 weights (W bits at most): the
            # weight lanes are that wide, so Winograd-domain weights given directly
            # (pruned ones) are clamped to it; U of int8 weights is always inside.
            from ..gen.winoquant import WinogradQuantization
            uq = WinogradQuantization(hardware, 8, 8, width, "given",
                                      (tuple(v_shifts), tuple(u_shifts))).uq_intervals
            self.u_lo = np.array([iv.lo for iv in uq], dtype=np.float64).reshape(n, n)
            self.u_hi = np.array([iv.hi for iv in uq], dtype=np.float64).reshape(n, n)

    @classmethod
    def of(cls, config):
        """The domain of a tile configuration (its ``quantization``, if it has one)."""
        q = getattr(config, "quantization", None)
        if q:
            return cls(config.hardware, q.v_shifts, q.u_shifts, q.width)
        return cls(config.hardware)


class FlexTransforms:
    """Learned ("flex") transforms: ``Aᵀ``, ``G``, ``Bᵀ`` as trained parameters, used
    through their rounding to a grid of ``1 / (2^bits · L)`` (straight-through; ``L`` the
    least common denominator of the starting matrices, so that they lie on the grid), so
    that the forward pass is the engine built from the rounded matrices
    (``--transforms``) exactly.

    Per step the rounded matrices give the integer form the generator derives
    (:class:`~winogen.gen.toomcook.MatrixToomCook`: per Winograd index a content ``c``,
    ``Bᵀ' = Bᵀ / c_B``, ``G' = G / c_G``, ``Aᵀ' = Aᵀ · c_G c_B D``), and, for a quantized
    domain, the shifts of :func:`winogen.gen.winoquant.winograd_shifts`; those are
    constants of the step (no gradient through them), the matrices' entries are not.

    Parameters
    ----------
    tc : ToomCook
        The starting point (its rational matrices, fractions in ``G``).
    bits : int
        Extra fractional bits of the deployed matrices (their denominators divide
        ``2^bits · L``).
    width : int, optional
        ``W`` of a quantized domain; None for an exact-width one.
    scales : str or tuple
        ``"global"`` or ``"tapwise"`` (derived from each step's matrices), or given shifts
        ``(sV, sU)`` for the starting matrices (calibrated). Given shifts follow the
        matrices' integer form: when a step's row contents (or ``D``) change, ``Bᵀ'`` and
        ``G'`` rescale rows by a factor unrelated to the learned entries' small moves, so
        each position's shift moves by the nearest power of two of its operand's rescaling
        (:meth:`shifts`); the scale file written after training holds the final ones.
    data_width, weight_width : int
    """

    def __init__(self, tc, bits=6, width=None, scales="tapwise", data_width=8,
                 weight_width=8):
        from math import lcm
        M = tc.matrices("G")
        self.initial = {name: np.array([[float(x) for x in row] for row in mat])
                        for name, mat in (("AT", M.AT), ("G", M.G), ("BT", M.BT))}
        self.grid = (1 << bits) * lcm(*(x.denominator for mat in (M.AT, M.G, M.BT)
                                        for row in mat for x in row))
        self.bits, self.width, self.scales = bits, width, scales
        self.widths = (data_width, weight_width)
        self.m, self.r = tc.m, tc.r
        self._start_sizes = self._operand_sizes(tc.hardware())

    @staticmethod
    def _operand_sizes(hw):
        """Per Winograd position: the L1 sizes of ``V``'s and ``U/D²``'s operand rows (the
        factor by which an integer form scales that position's values)."""
        bt = np.abs(np.array(hw.BT, dtype=np.float64)).sum(axis=1)
        g = np.abs(np.array(hw.G, dtype=np.float64)).sum(axis=1)
        return np.outer(bt, bt), np.outer(g, g) / float(hw.denominator) ** 2

    def shifts(self, hw):
        """``(sV, sU)`` of a step whose integer form is ``hw``: derived, or the given ones
        moved by ``round(log2)`` of each position's rescaling since the start."""
        if self.width is None:
            return None, None
        if not isinstance(self.scales, tuple):
            from ..gen.winoquant import winograd_shifts
            return winograd_shifts(hw, *self.widths, self.width, self.scales)
        v_size, u_size = self._operand_sizes(hw)
        v_move = np.round(np.log2(v_size / self._start_sizes[0])).astype(np.int64).ravel()
        u_move = np.round(np.log2(u_size / self._start_sizes[1])).astype(np.int64).ravel()
        sv = np.maximum(np.array(self.scales[0]) + v_move, 0)
        su = np.array(self.scales[1]) + u_move
        return tuple(int(x) for x in sv), tuple(int(x) for x in su)

    def rounded(self, mats):
        """The matrices on the grid, as integer numerators (NumPy; no gradient)."""
        return {k: np.floor(np.asarray(v) * self.grid + 0.5) for k, v in mats.items()}

    def given(self, mats):
        """``(AT, G, BT)`` as exact Fractions: what ``--transforms`` takes."""
        from fractions import Fraction
        r = self.rounded(mats)
        return tuple([[Fraction(int(x), self.grid) for x in row] for row in r[k]]
                     for k in ("AT", "G", "BT"))

    def domain(self, mats, anp=np):
        """The :class:`QuantizedDomain` of this step (matrices differentiable in ``mats``)."""
        from autograd.tracer import getval
        from ..gen import rational as rq
        from ..gen.toomcook import MatrixToomCook
        floor, _ = _roundings() if anp is not np else (np.floor, None)
        # Integer numerators on the grid (straight-through rounding).
        num = {k: floor(v * self.grid + 0.5) for k, v in mats.items()}
        tc = MatrixToomCook(*self.given({k: getval(v) for k, v in mats.items()}),
                            m=self.m, r=self.r)
        hw = tc.hardware()
        n = tc.n
        AT, G, BT = tc.given
        # Contents times the grid: integers (the gcd of a row's numerators).
        k_g = np.array([int(rq.content(G[i]) * self.grid) for i in range(n)], dtype=np.float64)
        k_b = np.array([int(rq.content(BT[i]) * self.grid) for i in range(n)], dtype=np.float64)
        dom = QuantizedDomain(hw, *self.shifts(hw), self.width)
        # The same integer matrices as differentiable functions of the parameters; each
        # is one exact division of integers, so its value is exactly the generator's.
        dom.BT = num["BT"] / k_b[:, None]
        dom.G = num["G"] / k_g[:, None]
        dom.AT = num["AT"] * (k_g * k_b * hw.denominator)[None, :] / float(self.grid) ** 3
        dom.floor_descale = not tc.exact
        dom.exact_transforms = tc.exact
        return dom


def _pad_to(anp, x, rows, cols, top=0, left=0):
    """``x`` (..., H, W) with ``top``/``left`` zero rows/columns before it and zeros after
    it up to ``rows`` × ``cols`` (differentiable: concatenation only)."""
    *lead, h, w = x.shape
    parts = []
    if top:
        parts.append(anp.zeros((*lead, top, w)))
    parts.append(x)
    if rows - top - h > 0:
        parts.append(anp.zeros((*lead, rows - top - h, w)))
    x = anp.concatenate(parts, axis=-2) if len(parts) > 1 else x
    parts = []
    if left:
        parts.append(anp.zeros((*lead, rows, left)))
    parts.append(x)
    if cols - left - w > 0:
        parts.append(anp.zeros((*lead, rows, cols - left - w)))
    return anp.concatenate(parts, axis=-1) if len(parts) > 1 else x


def _direct(k, stride, padding, engine_r):
    """Whether the engine runs a ``k × k`` layer as it is (else as DWM pieces)."""
    return k == engine_r and stride == 1 and padding in (0, engine_r // 2)


def engine_activations(layer, x, k, engine_r, anp=np):
    """``(x, padding)`` the engine reads for ``layer`` (kernel ``k × k``) on images ``x``
    (N, C, H, W): ``x`` itself, or the DWM pieces' inputs stacked as channels."""
    from ..gen.dwm import dwm_pieces
    stride, padding = layer["stride"], layer["padding"]
    if _direct(k, stride, padding, engine_r):
        return x, padding
    n, c, h, wd = x.shape
    h_out = (h + 2 * padding - k) // stride + 1
    w_out = (wd + 2 * padding - k) // stride + 1
    hs, ws = h_out + engine_r - 1, w_out + engine_r - 1
    xp = _pad_to(anp, x, h + 2 * padding, wd + 2 * padding, padding, padding)
    xs = []
    for piece in dwm_pieces(k, stride, engine_r):
        (p, q), (a, b) = piece.phase, piece.offset
        block = xp[:, :, p::stride, q::stride][:, :, a:a + hs, b:b + ws]
        xs.append(_pad_to(anp, block, hs, ws))
    return anp.concatenate(xs, axis=1), 0


def engine_kernels(layer, w, engine_r, anp=np):
    """The ``engine_r × engine_r`` kernels the engine runs for ``layer``'s weights ``w``
    (C_out, C_in, k, k): ``w`` itself, or its DWM pieces stacked as input channels."""
    from ..gen.dwm import dwm_pieces
    k, stride = w.shape[2], layer["stride"]
    if _direct(k, stride, layer["padding"], engine_r):
        return w
    wk = []
    for piece in dwm_pieces(k, stride, engine_r):
        (p, q), (a, b), (rows, cols) = piece.phase, piece.offset, piece.size
        sub = w[:, :, p::stride, q::stride][:, :, a:a + rows, b:b + cols]
        wk.append(_pad_to(anp, sub, engine_r, engine_r))
    return anp.concatenate(wk, axis=1)


def engine_inputs(layer, x, w, engine_r, anp=np):
    """``(x, w, padding)`` as the engine runs ``layer`` on images ``x`` (N, C, H, W) with
    weights ``w`` (C_out, C_in, k, k): the layer itself (a stride-1 ``engine_r`` kernel
    with padding 0 or ``engine_r // 2``), or its DWM pieces stacked as input channels
    (:func:`winogen.gen.dwm.dwm_layer`, here with differentiable array operations)."""
    xe, padding = engine_activations(layer, x, w.shape[2], engine_r, anp)
    return xe, engine_kernels(layer, w, engine_r, anp), padding


def winograd_layer(x, w, padding, domain, anp=np):
    """The engine's layer output before requantization, for integer-valued ``x`` (N, C, H,
    W) and ``w`` (C_out, C, r, r): stride 1, zero ``padding``, tile by tile."""
    U = anp.einsum("ia,ocab,jb->ocij", domain.G, w, domain.G)
    return winograd_layer_u(x, U, padding, domain, anp)


def winograd_layer_u(x, U, padding, domain, anp=np):
    """:func:`winograd_layer` with the Winograd-domain weights ``U = G' w G'ᵀ`` (C_out, C,
    n, n) given (any values, e.g. pruned ones; quantized to ``Û`` as the engine's weight
    stream carries them)."""
    floor, _ = _roundings() if anp is not np else (np.floor, None)
    dm = domain
    m, n = dm.m, dm.n
    _, _, h, wd = x.shape
    h_out, w_out = h + 2 * padding - dm.r + 1, wd + 2 * padding - dm.r + 1
    ty, tx = -(-h_out // m), -(-w_out // m)
    xp = _pad_to(anp, x, ty * m + n - m, tx * m + n - m, padding, padding)
    tiles = anp.stack([anp.stack([xp[:, :, i * m:i * m + n, j * m:j * m + n]
                                  for j in range(tx)], axis=2) for i in range(ty)], axis=2)
    V = anp.einsum("ia,nctsab,jb->nctsij", dm.BT, tiles, dm.BT)
    if dm.quantized:
        top = 2.0 ** (dm.width - 1)
        V = anp.clip(floor(V * dm.v_scale + 0.5), -top, top - 1)
        U = anp.clip(floor(U * dm.u_scale + 0.5), dm.u_lo, dm.u_hi)
    M = anp.einsum("nctsij,ocij->notsij", V, U)
    if dm.quantized:
        Z = anp.einsum("ai,notsij,bj->notsab", dm.AT, M * dm.align, dm.AT)
        Y = Z * dm.out_scale
        Y = floor(Y + 0.5) if dm.out_scale < 1 else Y
    else:
        # Exact: the integer result divided by D², an exact division (floored for
        # approximate transforms, as the engine's shift does).
        Y = anp.einsum("ai,notsij,bj->notsab", dm.AT, M, dm.AT) / dm.D ** 2
        Y = floor(Y) if dm.floor_descale else Y
    # (N, O, Ty, Tx, m, m) -> (N, O, Ty·m, Tx·m), cropped to the output map
    Y = anp.concatenate([anp.concatenate([Y[:, :, i, j] for j in range(tx)], axis=-1)
                         for i in range(ty)], axis=-2)
    return Y[:, :, :h_out, :w_out]


def requantize_float(y, shift, relu, anp=np):
    """The engine's requantization on integer-valued floats: ``y / 2^shift`` rounded half
    to even, saturated to int8, clamped at 0 with ``relu``."""
    _, round_even = _roundings() if anp is not np else (None, np.round)
    q = round_even(y / 2.0 ** shift)
    return anp.clip(q, 0.0 if relu else -128.0, 127.0)


def engine_layers_of(params, qparams):
    """The reference network's layers in engine form (the dense classifier as the 4 × 4
    convolution of the last map) with float weights, their weight scales ``sw`` and the
    shifts of ``qparams``."""
    from .reference import CLASSES, FC_MAP, LAYERS
    from .train import _pow2_scale
    layers = []
    for layer in LAYERS:
        w = params[layer["name"]]
        layers.append(dict(name=layer["name"], stride=layer["stride"],
                           padding=layer["padding"], relu=True,
                           shift=int(qparams[f"shift_{layer['name']}"]),
                           sw=_pow2_scale(np.abs(w).max())))
    layers.append(dict(name="fc", stride=1, padding=0, relu=False,
                       shift=int(qparams["shift_fc"]),
                       sw=_pow2_scale(np.abs(params["fc"]).max())))
    return layers, (CLASSES, *FC_MAP)


def winograd_statistics(hardware, params, layers, fc_shape, images):
    """The exact Winograd-domain values the network's layers give the engine.

    Returns
    -------
    V : array (tiles, n, n)
        ``Bᵀ' d B'`` of every input tile of every layer on ``images`` (the activations of
        the exact integer network).
    U : array (filters, n, n)
        ``U / D²`` (``U = G' g G'ᵀ``) of every filter of every layer: what the weight
        stream's ``Û`` approximates.
    """
    domain = QuantizedDomain(hardware)
    m, n = domain.m, domain.n
    a = np.asarray(images, dtype=np.float64)
    Vs, Us = [], []
    for layer in layers:
        w = _conv_weight(layer["name"], params[layer["name"]], fc_shape, np)
        wq = np.clip(np.round(w * 2.0 ** layer["sw"]), -127, 127)
        xe, we, pad = engine_inputs(layer, a, wq, domain.r)
        _, _, h, wd = xe.shape
        ty = -(-(h + 2 * pad - domain.r + 1) // m)
        tx = -(-(wd + 2 * pad - domain.r + 1) // m)
        xp = _pad_to(np, xe, ty * m + n - m, tx * m + n - m, pad, pad)
        for i in range(ty):
            for j in range(tx):
                tile = xp[:, :, i * m:i * m + n, j * m:j * m + n]
                Vs.append(np.einsum("ia,ncab,jb->ncij", domain.BT, tile,
                                    domain.BT).reshape(-1, n, n))
        Us.append(np.einsum("ia,ocab,jb->ocij", domain.G, we, domain.G).reshape(-1, n, n)
                  / domain.D ** 2)
        a = requantize_float(winograd_layer(xe, we, pad, domain), layer["shift"],
                             layer["relu"])
    return np.concatenate(Vs), np.concatenate(Us)


def calibrated_shifts(V, U, width, percentile=99.9):
    """Tap-wise shifts from the values a network gives (:func:`winograd_statistics`):
    per position, the smallest ``sV ≥ 0`` that brings the ``percentile``-th percentile of
    ``|V|`` inside ``W`` bits (larger values saturate), and the smallest ``sU`` that
    brings the largest ``|U / D²|`` inside (no filter saturates: they are known).

    Returns
    -------
    (tuple, tuple)
        ``sV`` and ``sU``, row-major ``n²`` each.
    """
    top = 2 ** (width - 1) - 1
    v = np.percentile(np.abs(V), percentile, axis=0)
    u = np.abs(U).max(axis=0)
    sv = np.maximum(np.ceil(np.log2(np.maximum(v, 1e-300) / top)), 0)
    su = np.ceil(np.log2(np.maximum(u, 1e-300) / top))
    su = np.where(u > 0, su, 0)
    return (tuple(int(x) for x in sv.ravel()), tuple(int(x) for x in su.ravel()))


def _conv_weight(name, w, fc_shape, anp):
    if name != "fc":
        return w
    classes, c, h, wd = fc_shape
    # fc is (C·H·W, classes) in (C, H, W) order: the convolution's (classes, C, H, W).
    return anp.reshape(anp.transpose(w), (classes, c, h, wd))


def forward_engine(params, x, layers, fc_shape, domain, anp=np):
    """Logits (N, classes) in real units and the int8 logits of int8 images ``x``.

    Parameters
    ----------
    params : dict
        Float weights ``c1`` … ``c4`` (C_out, C_in, k, k) and ``fc`` (C·H·W, classes).
    x : array (N, 1, H, W)
        int8 images.
    layers, fc_shape :
        From :func:`engine_layers_of`.
    domain : QuantizedDomain or FlexTransforms
        The Winograd domain; with :class:`FlexTransforms`, ``params`` also holds the
        learned ``AT``, ``G`` and ``BT``.
    anp : module
        ``numpy`` (evaluation) or ``autograd.numpy`` (training).

    Returns
    -------
    (logits, int8_logits)
        ``logits``: the last layer's sums times ``2^-(sx + sw)`` (real units, for the
        loss); ``int8_logits``: after the engine's requantization (N, classes).
    """
    from .digits import INPUT_SHIFT
    _, round_even = _roundings() if anp is not np else (None, np.round)
    if isinstance(domain, FlexTransforms):
        domain = domain.domain({k: params[k] for k in ("AT", "G", "BT")}, anp)
    a = x.astype(np.float64) if anp is np else x
    sx = INPUT_SHIFT
    for layer in layers:
        w = _conv_weight(layer["name"], params[layer["name"]], fc_shape, anp)
        wq = anp.clip(round_even(w * 2.0 ** layer["sw"]), -127.0, 127.0)
        xe, we, pad = engine_inputs(layer, a, wq, domain.r, anp)
        y = winograd_layer(xe, we, pad, domain, anp)
        if layer["name"] == "fc":
            logits = anp.reshape(y, (y.shape[0], -1)) * 2.0 ** -(sx + layer["sw"])
        a = requantize_float(y, layer["shift"], layer["relu"], anp)
        sx = sx + layer["sw"] - layer["shift"]
    return logits, anp.reshape(a, (a.shape[0], -1))


def int8_weights(params, layers, fc_shape):
    """The int8 weights the trained float ``params`` deploy as (engine form: ``fc`` as
    its convolution), as int64 arrays."""
    out = {}
    for layer in layers:
        w = _conv_weight(layer["name"], np.asarray(params[layer["name"]]), fc_shape, np)
        out[layer["name"]] = np.clip(np.round(w * 2.0 ** layer["sw"]), -127, 127).astype(np.int64)
    return out


def train_wa(params, x_train, y_train, layers, fc_shape, domain, *, epochs, lr=1e-3, batch=64,
             seed=0, progress=None, matrix_lr=None):
    """Fine-tune float ``params`` with :func:`forward_engine` in the forward pass (Adam,
    cosine decay); returns the new parameters (with :class:`FlexTransforms`, also the
    learned ``AT``, ``G``, ``BT``, starting from the algorithm's own, at ``matrix_lr`` when
    given: the matrices move the Winograd domain's ranges, which fixed shifts do not
    follow)."""
    import autograd.numpy as anp
    from autograd import grad
    from autograd.scipy.special import logsumexp

    def loss(p, xb, yb):
        logits, _ = forward_engine(p, xb, layers, fc_shape, domain, anp)
        return anp.mean(logsumexp(logits, axis=1) - logits[anp.arange(len(yb)), yb])

    gradient = grad(loss)
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    if isinstance(domain, FlexTransforms):
        for k, v in domain.initial.items():
            params.setdefault(k, v.copy())
    from .train import adam
    rates = ({k: matrix_lr for k in ("AT", "G", "BT")}
             if matrix_lr is not None and isinstance(domain, FlexTransforms) else None)
    return adam(params, gradient, loss, np.asarray(x_train, dtype=np.float64), y_train,
                epochs=epochs, lr=lr, batch=batch, rng=np.random.default_rng(seed),
                progress=progress, rates=rates)


def _accuracy(params, x, y, layers, fc_shape, domain):
    _, int8_logits = forward_engine(params, x, layers, fc_shape, domain)
    return float(np.mean(np.argmax(int8_logits, axis=1) == y))


def main(argv=None):
    """``python -m winogen.nets.wa``: Winograd-aware fine-tuning of the reference network."""
    import argparse
    import json
    import sys
    import time
    from pathlib import Path
    from ..gen.points import PRESETS
    from ..gen.toomcook import ToomCook
    from ..gen.winoquant import SCALE_MODES, MIN_WINO_WIDTH, winograd_shifts
    from .digits import load_digits_int8, split
    from .netfile import save_reference_network
    from .train import WEIGHTS, load_weights

    p = argparse.ArgumentParser(
        prog="python -m winogen.nets.wa",
        description="Fine-tune the reference network with the quantized Winograd engine's "
                    "arithmetic in its forward pass (Winograd-aware training) and write the "
                    "int8 network (and, with --flex, the learned transforms) for generate "
                    "and run-net.")
    p.add_argument("--m", type=int, default=4, help="F(m, 3) (default: 4)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="lavin",
                   help="interpolation points (default: lavin)")
    p.add_argument("--wino-width", type=int, required=True, metavar="W",
                   help="Winograd-domain width W (V and U rounded to W bits)")
    p.add_argument("--wino-scales", choices=SCALE_MODES + ("calibrated",), default="tapwise",
                   help="one shift per operand (global) or per Winograd position (tapwise; "
                        "default), derived from the ranges; or calibrated: tap-wise shifts "
                        "from the training images' statistics (--percentile), written as "
                        "scales.json for generate --wino-scales")
    p.add_argument("--percentile", type=float, default=None,
                   help="with --wino-scales calibrated: the percentile of |V| per position "
                        "that must fit W bits (larger values saturate; default 99.9)")
    p.add_argument("--flex", action="store_true",
                   help="also learn AT, G, BT (written as transforms.json for --transforms)")
    p.add_argument("--flex-bits", type=int, default=4,
                   help="extra fractional bits of learned matrix entries (default: 4)")
    p.add_argument("--matrix-lr", type=float, default=None,
                   help="with --flex: the learned matrices' own Adam rate (default: --lr)")
    p.add_argument("--epochs", type=int, default=8, help="fine-tuning epochs (default: 8)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="shuffling seed (default: 0)")
    p.add_argument("--weights", type=Path, default=WEIGHTS,
                   help="float weights to start from (default: the committed ones)")
    p.add_argument("--train-images", type=int, default=None,
                   help="fine-tune on the first N training images only (quick checks)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="folder for wa_net.json, wa_net_int8.npz, wa_report.json "
                        "(transforms.json with --flex, scales.json with calibrated scales)")
    args = p.parse_args(argv)
    for flag, value, lo in (("--m", args.m, 1), ("--wino-width", args.wino_width, MIN_WINO_WIDTH),
                            ("--epochs", args.epochs, 1), ("--flex-bits", args.flex_bits, 0),
                            ("--train-images", args.train_images or 1, 1)):
        if value < lo:
            p.error(f"{flag} must be an integer of at least {lo}, not {value}")
    if not args.flex and args.flex_bits != 4:
        p.error("--flex-bits applies to --flex only")
    if args.matrix_lr is not None and not args.flex:
        p.error("--matrix-lr applies to --flex only")
    if args.matrix_lr is not None and not args.matrix_lr > 0:
        p.error(f"--matrix-lr must be positive, not {args.matrix_lr}")
    if not args.lr > 0:
        p.error(f"--lr must be positive, not {args.lr}")
    if args.percentile is not None and args.wino_scales != "calibrated":
        p.error("--percentile applies to --wino-scales calibrated only")
    percentile = 99.9 if args.percentile is None else args.percentile
    if not 0 < percentile <= 100:
        p.error(f"--percentile must be in (0, 100], not {percentile}")
    try:
        floats, ints = load_weights(args.weights)
        tc = ToomCook(args.m, 3, preset=args.preset)
    except (OSError, ValueError) as exc:
        p.error(str(exc))
    x, y = load_digits_int8()
    x_train, y_train, x_test, y_test = split(x, y)
    if args.train_images is not None:
        x_train, y_train = x_train[:args.train_images], y_train[:args.train_images]
    layers, fc_shape = engine_layers_of(floats, ints)
    hw = tc.hardware()
    if args.wino_scales == "calibrated":
        V, U = winograd_statistics(hw, floats, layers, fc_shape, x_train[:CALIBRATION_IMAGES])
        scales = calibrated_shifts(V, U, args.wino_width, percentile)
    else:
        scales = args.wino_scales
    shifts = scales if isinstance(scales, tuple) else \
        winograd_shifts(hw, 8, 8, args.wino_width, scales)
    fixed = QuantizedDomain(hw, *shifts, args.wino_width)
    domain = FlexTransforms(tc, args.flex_bits, args.wino_width, scales) \
        if args.flex else fixed
    report = {"algorithm": f"F({args.m},3)", "preset": args.preset,
              "wino_width": args.wino_width, "wino_scales": args.wino_scales,
              "flex": args.flex, "epochs": args.epochs, "lr": args.lr,
              "matrix_lr": args.matrix_lr, "seed": args.seed,
              "test_images": len(y_test),
              "exact_int8": _accuracy(floats, x_test, y_test, layers, fc_shape,
                                      QuantizedDomain(hw)),
              "post_training": _accuracy(floats, x_test, y_test, layers, fc_shape, fixed)}
    print(f"test top-1 before: exact int8 {100 * report['exact_int8']:.2f} %, "
          f"W = {args.wino_width} {args.wino_scales} {100 * report['post_training']:.2f} %",
          flush=True)
    start = time.monotonic()

    def progress(epoch, epochs, loss):
        print(f"epoch {epoch}/{epochs}: loss {loss:.4f} ({time.monotonic() - start:.0f} s)",
              file=sys.stderr, flush=True)

    params = train_wa(floats, x_train, y_train, layers, fc_shape, domain, epochs=args.epochs,
                      lr=args.lr, seed=args.seed, progress=progress,
                      matrix_lr=args.matrix_lr)
    report["winograd_aware"] = _accuracy(params, x_test, y_test, layers, fc_shape, domain)
    report["train_seconds"] = round(time.monotonic() - start, 1)
    print(f"test top-1 after Winograd-aware training: {100 * report['winograd_aware']:.2f} %")
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    weights = int8_weights(params, layers, fc_shape)
    q = {name: weights[name] for name in weights}
    q["fc"] = weights["fc"].reshape(weights["fc"].shape[0], -1).T
    q.update({f"shift_{layer['name']}": layer["shift"] for layer in layers})
    save_reference_network(q, out / "wa_net.json", "wa_net_int8.npz")
    written = [out / "wa_net.json", out / "wa_net_int8.npz"]
    if args.flex:
        AT, G, BT = domain.given(params)
        from ..gen.toomcook import MatrixToomCook
        learned = MatrixToomCook(AT, G, BT)
        if isinstance(scales, tuple):
            scales = domain.shifts(learned.hardware())    # they followed the matrices
        (out / "transforms.json").write_text(json.dumps(
            {name: [[str(v) for v in row] for row in M]
             for name, M in (("AT", AT), ("G", G), ("BT", BT))}, indent=1) + "\n")
        report["transforms"] = {"exact": learned.exact,
                                "identity_error": str(learned.identity_error),
                                "tile_error": learned.tile_error()}
        written.append(out / "transforms.json")
    if isinstance(scales, tuple):
        n = tc.n
        (out / "scales.json").write_text(json.dumps(
            {name: [list(v[i * n:(i + 1) * n]) for i in range(n)]
             for name, v in (("v_shifts", scales[0]), ("u_shifts", scales[1]))}) + "\n")
        report["calibration"] = {"percentile": percentile, "images": CALIBRATION_IMAGES}
        written.append(out / "scales.json")
    (out / "wa_report.json").write_text(json.dumps(report, indent=2) + "\n")
    written.append(out / "wa_report.json")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
