"""Fixed-point model of a tile engine: the exact integer semantics hardware must match.

For a :class:`~winogen.gen.config.TileConfig` the model computes, for a batch of
``n × n`` input tiles ``d`` (signed ``data_width``-bit) and ``r × r`` filters
``g`` (signed ``weight_width``-bit), every intermediate the hardware holds:

Winograd
    ``V = Bᵀ d B``, ``U = G g Gᵀ`` (integer transforms of ``cfg.hardware``),
    ``P = pe(V, U)`` element-wise, ``Y_scaled = Aᵀ P A``, and the output
    ``Y = Y_scaled / D²`` (exact) or ``Y_scaled`` itself with ``keep_scale``.
Quantized Winograd (``wino_width`` set, :mod:`winogen.gen.winoquant`)
    ``V̂`` = ``V`` rounded half up by ``sV`` and clamped, ``Û`` = ``U / D²`` rounded
    half up by ``sU`` (offline: what the weight stream carries), ``P = V̂ ⊙ Û``,
    ``Z = Aᵀ (P ≪ a) A`` and ``Y = Z`` rounded half up by ``−min e``.
Direct
    ``P[i, j, a, b] = pe(d[i + a, j + b], g[a, b])`` and ``Y = Σ_ab P``.

Every intermediate is checked against the interval the hardware width is
derived from, so running the model on extreme inputs proves the widths.
"""

import numpy as np

from .bounds import Interval
from .checks import check_integer_values

__all__ = ["TileModel", "check_range"]


def _as_int_matrix(rows):
    return np.array(rows, dtype=np.int64)


def check_range(name, values, intervals):
    """Raise AssertionError if any element of ``values`` leaves its interval.

    ``intervals`` is one Interval or a flat sequence matching the trailing
    dimensions of ``values`` (row-major).
    """
    values = np.asarray(values)
    if isinstance(intervals, Interval):
        lo, hi = intervals.lo, intervals.hi
    else:
        # one interval per element of the trailing (row-major) 2-D tile
        values = values.reshape(values.shape[:-2] + (-1,))
        lo = np.array([iv.lo for iv in intervals], dtype=object)
        hi = np.array([iv.hi for iv in intervals], dtype=object)
    if np.any(values < lo) or np.any(values > hi):
        raise AssertionError(f"{name} left its derived range")


class TileModel:
    """Bit-exact integer model of one tile engine.

    Parameters
    ----------
    config : TileConfig

    Members
    -------
    config : TileConfig
    """

    def __init__(self, config):
        self.config = config
        hw = config.hardware
        self._AT, self._G, self._BT = (_as_int_matrix(M) for M in (hw.AT, hw.G, hw.BT))
        # int64 suffices while every derived width does; beyond, exact Python ints.
        widest = max(iv.width for iv in self._all_intervals())
        self._dtype = np.int64 if widest <= 62 else object

    def _all_intervals(self):
        c = self.config
        if c.algorithm == "direct":
            return [c.output_interval] + list(c.product_intervals)
        return list(c.v_intervals) + list(c.u_intervals) + list(c.product_intervals) + \
            list(c.scaled_output_intervals)

    def _checked(self, name, x, size, interval):
        """``x`` as this model's dtype: integers in ``interval``, trailing shape ``size × size``."""
        x = check_integer_values(name, x, interval)
        if x.shape[-2:] != (size, size):
            raise ValueError(f"{name}s must have shape (..., {size}, {size}), not {x.shape}")
        return x.astype(self._dtype)

    def _check_inputs(self, d, g):
        c = self.config
        return (self._checked("input tile", d, c.n, c.data_interval),
                self._checked("filter", g, c.r, c.weight_interval))

    def filter_transform(self, g):
        """What offline weights carry for filters of shape ``(..., r, r)``: ``U = G g Gᵀ``,
        or ``Û`` (:meth:`quantized_filter`) in a quantized engine.

        ``g`` must hold integers of the engine's weight width.
        """
        u = self.exact_filter_transform(g)
        return self.quantized_filter(u) if self.config.quantization else u

    def exact_filter_transform(self, g):
        """``U = G g Gᵀ`` (integer transforms) for filters of shape ``(..., r, r)``."""
        c = self.config
        g = self._checked("filter", g, c.r, c.weight_interval)
        G = self._G.astype(self._dtype)
        return np.einsum("ia,...ab,jb->...ij", G, g, G)

    def quantized_filter(self, u):
        """``Û`` of integer ``U = G g Gᵀ`` (..., n, n): ``U / D²`` rounded to ``W`` bits."""
        return self.config.quantization.quantize_u(u).astype(self._dtype)

    def input_transform(self, d):
        """``V = Bᵀ d B`` for tiles of shape ``(..., n, n)`` of the engine's data width."""
        c = self.config
        d = self._checked("input tile", d, c.n, c.data_interval)
        BT = self._BT.astype(self._dtype)
        return np.einsum("ia,...ab,jb->...ij", BT, d, BT)

    def output_transform(self, p):
        """``Aᵀ P A`` for Winograd-domain products of shape ``(..., n, n)`` (integers)."""
        p = self._checked("product", p, self.config.n, None)
        AT = self._AT.astype(self._dtype)
        return np.einsum("ia,...ab,jb->...ij", AT, p, AT)

    def run(self, d, g):
        """All intermediates for tiles ``d`` (..., n, n) and filters ``g`` (..., r, r).

        ``d`` and ``g`` broadcast against each other over the leading axes.

        Returns
        -------
        dict
            ``"Y"`` (..., m, m) always; Winograd also ``"V"``, ``"U"``, ``"P"``,
            ``"Y_scaled"`` (quantized: ``Z``, and ``"Vq"``, ``"Uq"``); direct also ``"P"``
            (..., m, m, r, r).
        """
        c = self.config
        d, g = self._check_inputs(d, g)
        kind = c.pe_kind
        if c.algorithm == "direct":
            windows = np.lib.stride_tricks.sliding_window_view(d, (c.r, c.r), axis=(-2, -1))
            P = kind.combine(windows, g[..., None, None, :, :])
            Y = P.sum(axis=(-2, -1))
            check_range("output", Y, c.output_interval)
            return {"P": P, "Y": Y}
        V = self.input_transform(d)
        U = self.exact_filter_transform(g)
        check_range("V", V, c.v_intervals)
        check_range("U", U, c.u_intervals)
        q = c.quantization
        if q:
            out = {"V": V, "U": U}
            V, U = q.quantize_v(V), self.quantized_filter(U)
            check_range("Vq", V, c.pe_a_intervals)
            check_range("Uq", U, c.pe_b_intervals)
            P = kind.combine(V, U)
            check_range("P", P, c.product_intervals)
            Z = self.output_transform(q.align(P))
            check_range("Y_scaled", Z, c.scaled_output_intervals)
            Y = q.descale(Z)
            check_range("output", Y, c.output_interval)
            return {**out, "Vq": V, "Uq": U, "P": P, "Y_scaled": Z, "Y": Y}
        P = kind.combine(V, U)
        check_range("P", P, c.product_intervals)
        Ys = self.output_transform(P)
        check_range("Y_scaled", Ys, c.scaled_output_intervals)
        if c.keep_scale or c.scale_divisor == 1:
            Y = Ys
        else:
            D2 = c.scale_divisor
            # Exact transforms divide exactly; approximate ones (given matrices) floor, as
            # the engine's arithmetic shift does (their D is a power of two).
            if c.toomcook.exact and np.any(Ys % D2 != 0):
                raise AssertionError("the Winograd result is not a multiple of D²; the algorithm is wrong")
            Y = Ys // D2
        check_range("output", Y, c.output_interval)
        return {"V": V, "U": U, "P": P, "Y_scaled": Ys, "Y": Y}

    def __call__(self, d, g):
        """The engine output ``Y`` for tiles ``d`` and filters ``g``."""
        return self.run(d, g)["Y"]
