"""Golden models: RNS Winograd tiles and layers, and the bit-exact model of an RNS tile engine."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..checks import check_integer_values
from ..models import (_check_layer, _check_padding, _check_tiles, _check_toomcook,
                      _output_shape, _pad_spatial, _python_ints)
from .common import _FLOAT64_EXACT_INT, _column, _fits_int64, _integer_array
from .config import RNSTileConfig
from .convert import from_residues_crt, to_residues
from .moduli import _as_moduli
from .ranges import check_range, result_range
from .transforms import (_divide_exact, _finish, _mod_transform2d, _operand_interval,
                         rns_transforms)

__all__ = ["rns_winograd_tile", "rns_winograd_conv2d", "RNSTileModel"]


def rns_winograd_tile(d, g, tc, moduli, method="scaled"):
    """Bit-exact RNS F(m × m, r × r) on a batch of tiles.

    Forward conversion of ``d`` and ``g``, per modulus ``V = Bᵀ d B``,
    ``U = G g Gᵀ``, ``U ⊙ V`` and ``Aᵀ (U ⊙ V) A`` all mod ``m_i``, then CRT
    and (``"scaled"``) the exact division by ``D²``.

    Parameters
    ----------
    d : array_like of int, shape (..., n, n)
    g : array_like of int, shape (..., r, r)
        Leading axes broadcast against ``d``'s.
    tc : ToomCook
    moduli : ModuliSet, sequence of int or preset name
    method : str
        ``"scaled"`` or ``"inverse"`` (see :func:`rns_transforms`).

    Returns
    -------
    numpy.ndarray, shape (..., m, m)
        The valid correlation of each tile, int64 (object past int64).

    Raises
    ------
    ValueError
        When the moduli do not cover :func:`result_range` for the actual
        operand ranges (the result could wrap), or ``"inverse"`` cannot apply.
    """
    tc = _check_toomcook(tc)
    ms = _as_moduli(moduli)
    d, g = _integer_array("d", d), _integer_array("g", g)
    _check_tiles(d, g, tc)
    tr = rns_transforms(tc, ms, method)
    check_range(ms, result_range(tc, _operand_interval(d), _operand_interval(g), 1, method))
    AT, G, BT = tr.stacked()
    V = _mod_transform2d(BT, to_residues(d, ms, check=False), ms)
    U = _mod_transform2d(G, to_residues(g, ms, check=False), ms)
    # Broadcast the tile axes of d and g behind the leading modulus axis.
    nd = max(U.ndim, V.ndim)
    U = U.reshape(U.shape[:1] + (1,) * (nd - U.ndim) + U.shape[1:])
    V = V.reshape(V.shape[:1] + (1,) * (nd - V.ndim) + V.shape[1:])
    P = U * V % _column(ms.moduli, nd, AT.dtype)
    y = from_residues_crt(_mod_transform2d(AT, P, ms), ms)
    return _finish(_divide_exact(np.asarray(y), tr.scale_divisor(2)))


def rns_winograd_conv2d(x, w, tc, moduli, padding=0, *, method="scaled"):
    """Bit-exact RNS Winograd convolution (correlation) of a whole layer.

    Same tiling and layout as :func:`winogen.gen.models.winograd_conv2d`
    (NCHW, stride 1, zero padding, last tiles completed with zeros). Per
    modulus the products are summed over input channels in the Winograd
    domain, ``M_i[o] = Σ_c U_i[o, c] ⊙ V_i[c] mod m_i``, so one reverse
    conversion serves all channels.

    Parameters
    ----------
    x : array_like of int, shape (N, C_in, H, W) or (C_in, H, W)
    w : array_like of int, shape (C_out, C_in, r, r)
    tc : ToomCook
    moduli : ModuliSet, sequence of int or preset name
    padding : int
    method : str
        ``"scaled"`` or ``"inverse"``.

    Returns
    -------
    numpy.ndarray, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        int64 (object past int64), equal to the direct correlation.

    Raises
    ------
    ValueError
        When the moduli do not cover :func:`result_range` for the actual
        operand ranges and ``C_in`` channels.
    """
    tc = _check_toomcook(tc)
    ms = _as_moduli(moduli)
    xb, w, batched = _check_layer(x, w, 2)
    padding = _check_padding(padding)
    xb, w = _integer_array("x", xb), _integer_array("w", w)
    if w.shape[2:] != (tc.r, tc.r):
        raise ValueError(f"w must hold {tc.r}×{tc.r} kernels for {tc.name}, not shape {w.shape}")
    m, r, n, k = tc.m, tc.r, tc.n, len(ms)
    out_shape = _output_shape(xb.shape[2:], w.shape[2:], padding)
    batch, c_in, c_out = xb.shape[0], xb.shape[1], w.shape[0]
    tr = rns_transforms(tc, ms, method)
    check_range(ms, result_range(tc, _operand_interval(xb), _operand_interval(w), c_in, method))
    AT, G, BT = tr.stacked()

    # Residues first: padding zeros are residue zeros, and tiles stay narrow.
    rx = to_residues(xb, ms, check=False)                    # (k, N, C, H, W)
    tiles_per_axis = [-(-size // m) for size in out_shape]
    widths = [(padding, t * m + r - 1 - size - padding)
              for t, size in zip(tiles_per_axis, xb.shape[2:])]
    rx = _pad_spatial(rx, widths)
    tiles = sliding_window_view(rx, (n, n), axis=(-2, -1))[..., ::m, ::m, :, :]
    V = _mod_transform2d(BT, tiles, ms)                      # (k, N, C, T1, T2, n, n)
    U = _mod_transform2d(G, to_residues(w, ms, check=False), ms)  # (k, O, C, n, n)

    P, n_tiles = n * n, int(np.prod(tiles_per_axis))
    U = U.reshape(k, c_out, c_in, P).transpose(0, 3, 1, 2)   # (k, P, O, C)
    V = V.reshape(k, batch, c_in, n_tiles, P).transpose(0, 4, 2, 1, 3).reshape(k, P, c_in, -1)
    mods = _column(ms.moduli, 4, AT.dtype)
    top = (max(ms.moduli) - 1) ** 2 * c_in
    if top < _FLOAT64_EXACT_INT:
        # Every partial sum is an integer below 2**53: float64 BLAS is exact.
        Mw = np.matmul(U.astype(np.float64), V.astype(np.float64)).astype(np.int64) % mods
    else:
        if U.dtype != object and not _fits_int64(top):
            U, V, mods = _python_ints(U), _python_ints(V), mods.astype(object)
        Mw = np.matmul(U, V) % mods                          # (k, P, O, N·T)
    Mw = Mw.reshape((k, n, n, c_out, batch) + tuple(tiles_per_axis))
    Mw = Mw.transpose(0, 4, 3, 5, 6, 1, 2)                   # (k, N, O, T1, T2, n, n)
    if Mw.dtype != AT.dtype:
        Mw = _python_ints(Mw) if AT.dtype == object else Mw.astype(AT.dtype)
    Y = from_residues_crt(_mod_transform2d(AT, Mw, ms), ms)  # (N, O, T1, T2, m, m)
    Y = _divide_exact(Y, tr.scale_divisor(2))
    Y = Y.transpose(0, 1, 2, 4, 3, 5).reshape((batch, c_out) + tuple(t * m for t in tiles_per_axis))
    Y = _finish(Y[:, :, :out_shape[0], :out_shape[1]].copy())
    return Y if batched else Y[0]


class RNSTileModel:
    """Bit-exact model of an :class:`RNSTileConfig` engine: weight beats, residues and outputs.

    Parameters
    ----------
    config : RNSTileConfig
    """

    def __init__(self, config):
        if not isinstance(config, RNSTileConfig):
            raise TypeError(f"config must be an RNSTileConfig, not {config!r}")
        self.config = config
        self.AT, self.G, self.BT = (np.array(M, dtype=object) for M in (
            config.transforms.AT, config.transforms.G, config.transforms.BT))

    def _per_modulus(self, mats, x):
        """``M_i X_i M_iᵀ mod m_i`` for x of shape (k, ..., c, c)."""
        out = []
        for i, mi in enumerate(self.config.moduli):
            M = mats[i]
            xi = np.asarray(x[i], dtype=object)
            out.append(np.matmul(np.matmul(M, xi), M.T) % mi)
        return np.stack(out)

    @staticmethod
    def _checked(name, x, size, interval):
        """Integers of the engine's width (``interval``) in tiles of ``size × size``."""
        check_integer_values(name, x, interval)
        x = _integer_array(name, x)
        if x.ndim < 2 or x.shape[-2:] != (size, size):
            raise ValueError(f"{name}s must have shape (..., {size}, {size}), not {x.shape}")
        return x

    def filter_residues(self, g):
        """``U_i = G_i g G_iᵀ mod m_i``: shape (k, ..., n, n) for ``g`` of shape (..., r, r)."""
        g = self._checked("filter", g, self.config.r, self.config.weight_interval)
        return self._per_modulus(self.G, to_residues(g, self.config.moduli, check=False))

    def weight_beat(self, g):
        """The weight-stream elements for filters ``g`` of shape (channels, r, r) (or (r, r)).

        Element ``(i·channels + c)·n² + j`` is ``U_i[c]`` at row-major index ``j``.
        """
        cfg = self.config
        g = np.asarray(g)
        if g.ndim == 2:
            g = g[None]
        if g.shape != (cfg.channels, cfg.r, cfg.r):
            raise ValueError(f"g must have shape ({cfg.channels}, {cfg.r}, {cfg.r}), not {g.shape}")
        return [int(v) for v in self.filter_residues(g).flat]

    def input_residues(self, d):
        """``V_i = B_iᵀ d B_i mod m_i``, shape (k, ..., n, n)."""
        d = self._checked("input tile", d, self.config.n, self.config.data_interval)
        return self._per_modulus(self.BT, to_residues(d, self.config.moduli, check=False))

    def output_residues(self, d, g):
        """Residues of the reconstructed value before descaling, shape (k, T, m, m).

        ``d``: (T, channels, n, n) or (T, n, n); ``g``: (channels, r, r) or (r, r).
        """
        cfg = self.config
        d, g = np.asarray(d), np.asarray(g)
        if d.ndim == 3:
            d = d[:, None]
        if g.ndim == 2:
            g = g[None]
        V = self.input_residues(d)                        # (k, T, C, n, n)
        U = self.filter_residues(g)                       # (k, C, n, n)
        mods = np.array(cfg.moduli, dtype=object).reshape(-1, 1, 1, 1)
        P = (U[:, None] * V).sum(axis=2) % mods           # (k, T, n, n)
        return self._per_modulus(self.AT, P)

    def __call__(self, d, g):
        """Output tiles, shape (T, m, m): the exact correlation summed over channels."""
        cfg = self.config
        y = from_residues_crt(self.output_residues(d, g)[:len(cfg.base_moduli)], cfg.base_moduli)
        y = np.asarray(y, dtype=object)
        return _finish(_divide_exact(y, cfg.scale_divisor))
