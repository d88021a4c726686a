"""Operation-level fault injection in an RNS tile engine's model, with its redundant-modulus
check (issue 18).

:class:`RNSTileFaultModel` computes what an :class:`~winogen.gen.rns.RNSTileConfig` tile
engine (:mod:`winogen.hw.rns.tile`) computes, in the engine's order of operations and with
every result held in the register width the engine gives it, so a bit flipped in one
result propagates as it does in the Verilog:

``input_transform``
    ``V = Bᵀ d B``: with ``input_transform="binary"`` the exact binary ``V`` that every
    residue channel shares (one register per element, its exact range's width); with
    ``"residue"`` each channel's ``B_iᵀ d_i B_i mod m_i`` (residue width).
``forward_conversion``
    (binary input transform) ``V mod m_i``, per channel: the PE's operand register.
``products``
    ``U_i ⊙ V_i mod m_i``, per channel: the modular PE's reduced product.
``accumulation``
    (``channels > 1``) the channel's accumulator after each input channel (a flip stays
    in the register and is carried through the remaining channels).
``output_transform``
    ``A_iᵀ P_i A_i mod m_i``, per channel: the residues the reverse converter takes.
``descale``
    (method ``"scaled"``) the exact division by ``D²`` after the converter.

A residue register holds any value of its bits, not only ``[0, m_i)``; every block after it
reduces whatever it holds exactly (:mod:`winogen.hw.rns.arith`), so a flipped residue
stays a (wrong) residue of its own channel. The one exception is the shared binary ``V``:
a flipped value can leave the exact range the forward converters' reduction plans were
made for, and the model then executes each plan as the hardware does
(:func:`hardware_reduce`: folds, comparisons, truncation to the residue's bits).

The reverse converter reconstructs each output element from the non-redundant moduli and,
with a redundant modulus, checks that the value over *all* moduli lies in the exact result
range (:class:`~winogen.hw.rns.converter.MixedRadixConverter`); an output tile is flagged
when any element fails. A fault confined to one channel that changes the channel's output
residues is therefore always flagged; faults in the shared binary ``V`` or after the
converter are not confined to a channel and can pass silently.

Limits: ``forward_reduction="full"`` (a partially reduced operand feeds a wide product
whose reduction plan a flip can leave; not modelled).
"""

import numpy as np

from ..csd import exact_divide_plan
from ..faultmodel import SiteClass, _apply_faults, _transform2d, wrap
from ..faults import ADD_FACTOR, MUL_FACTOR
from .config import RNSTileConfig
from .convert import from_residues_crt
from .reduction import plan_reduction, residue_width

__all__ = ["RNS_SITE_CLASSES", "RNSTileFaultModel", "hardware_reduce"]

#: The site classes of an RNS tile engine, in data-flow order.
RNS_SITE_CLASSES = ("input_transform", "forward_conversion", "products", "accumulation",
                    "output_transform", "descale")


def hardware_reduce(x, interval, modulus):
    """``x`` reduced by the hardware's plan for values in ``interval`` (as
    :func:`winogen.hw.rns.arith.reduce_into` emits it), for any ``x`` of the interval's
    width: each fold on its signal's width, then ``x - j·m`` for the largest planned ``j``
    with ``x >= j·m`` (else the smallest), truncated to the residue's unsigned bits. Equal to
    ``x mod m`` for ``x`` in ``interval``."""
    plan = plan_reduction(interval, modulus)
    k_max = max([f.k for f in plan.folds], default=0)
    v = wrap(np.asarray(x, dtype=np.int64), max(interval.width, k_max + 1))
    for fold in plan.folds:
        low = v & ((1 << fold.k) - 1)
        v = wrap(low + fold.c * (v >> fold.k), max(fold.output.width, k_max + 1))
    j = np.full(v.shape, plan.j_lo, dtype=np.int64)
    for t in range(plan.j_lo + 1, plan.j_hi + 1):
        j = np.where(v >= t * modulus, t, j)
    return (v - j * modulus) & ((1 << residue_width(modulus)) - 1)


class RNSTileFaultModel:
    """An RNS tile engine's operation-level model of one filter bank and a batch of output
    tiles, with faults and the redundant-modulus check.

    Parameters
    ----------
    config : RNSTileConfig
        With ``forward_reduction="full"``.
    g : array (channels, r, r) or (r, r)
        The filters of the input channels.
    """

    def __init__(self, config, g):
        from ..checks import check_integer_values
        if not isinstance(config, RNSTileConfig):
            raise TypeError(f"config must be an RNSTileConfig, not {config!r}")
        if config.forward_reduction != "full":
            raise ValueError(f"the RNS fault model covers forward_reduction 'full', not "
                             f"{config.forward_reduction!r}")
        c = config
        g = check_integer_values("filter", g, c.weight_interval)
        if g.ndim == 2:
            g = g[None]
        if g.shape != (c.channels, c.r, c.r):
            raise ValueError(f"the filters must have shape ({c.channels}, {c.r}, {c.r}), "
                             f"not {g.shape}")
        self.config = c
        self.g = g.astype(np.int64)
        self.moduli = np.array(c.moduli, dtype=np.int64)
        self.k = len(c.moduli)
        tr = c.transforms
        self.AT = [np.array(M, dtype=np.int64) for M in tr.AT]
        self.BT = [np.array(M, dtype=np.int64) for M in tr.BT]
        self.U = np.stack([np.array(u, dtype=np.int64).reshape(c.channels, -1)
                           for u in c.golden_model().filter_residues(self.g)])  # k, C, n2
        self.widths = np.array(c.residue_widths, dtype=np.int64)
        if c.input_transform == "binary":
            # The shared transform's registers, as ConstTransform2D sizes them.
            _, ivs = _transform2d(c.input_matrix, [c.data_interval] * c.n ** 2,
                                  np.zeros((1, c.n ** 2), dtype=np.int64))
            self.v_widths = np.array([iv.width for iv in ivs], dtype=np.int64)

    def site_classes(self, batch=1):
        """The site classes for ``batch`` output tiles: name -> :class:`SiteClass`.

        Axes: ``tile``, then ``modulus`` (the residue channel, redundant ones last) for
        per-channel classes, ``cin`` (the input channel) and ``element`` (``n²``
        Winograd-domain elements, or ``m²`` outputs).
        """
        c = self.config
        n2, mm, C, k = c.n ** 2, c.m ** 2, c.channels, self.k
        w = self.widths.reshape(1, k, 1, 1)
        s = {}

        def add(name, axes, shape, widths, factor=ADD_FACTOR):
            s[name] = SiteClass(name, tuple(axes), tuple(shape), widths, factor)

        per = ("tile", "modulus", "cin", "element")
        if c.input_transform == "binary":
            add("input_transform", ("tile", "cin", "element"), (batch, C, n2), self.v_widths)
            add("forward_conversion", per, (batch, k, C, n2), w)
        else:
            add("input_transform", per, (batch, k, C, n2), w)
        add("products", per, (batch, k, C, n2), w, MUL_FACTOR)
        if C > 1:
            add("accumulation", per, (batch, k, C, n2), w)
        add("output_transform", ("tile", "modulus", "element"), (batch, k, mm),
            self.widths.reshape(1, k, 1))
        if c.scale_divisor != 1:
            add("descale", ("tile", "element"), (batch, mm), np.int64(c.output_interval.width))
        return s

    def _transform(self, mats, x, i):
        """``M_i X M_iᵀ`` (not reduced) on the row-major last axis of ``x``."""
        M = mats[i]
        rows, cols = M.shape
        X = x.reshape(x.shape[:-1] + (cols, cols))
        return (M @ X @ M.T).reshape(x.shape[:-1] + (rows * rows,))

    def forward(self, d, faults=None, *, ber=None, rng=None, classes=None, record=False,
                counts=None, flags=None):
        """The engine's output tiles (B, m, m) for input tiles ``d`` (B, channels, n, n)
        (or (B, n, n) with one channel).

        Parameters
        ----------
        faults : list of Fault, optional
            Single bit flips (``Fault.image`` is the output tile; ``index`` the class's
            axes after the tile axis).
        ber, rng, classes, counts, record
            As :meth:`winogen.gen.faultmodel.LayerFaultModel.forward`.
        flags : dict, optional
            Receives ``"error"``: per output tile, whether the redundant-modulus check
            flags it (always False without a redundant modulus).
        """
        from ..checks import check_integer_values
        c = self.config
        d = check_integer_values("input tile", d, c.data_interval)
        if d.ndim == 3:
            d = d[:, None]
        if d.ndim != 4 or d.shape[1:] != (c.channels, c.n, c.n):
            raise ValueError(f"input tiles must have shape (B, {c.channels}, {c.n}, {c.n}), "
                             f"not {d.shape}")
        d = d.astype(np.int64)
        B, C, k = d.shape[0], c.channels, self.k
        n2 = c.n ** 2
        sites = self.site_classes(B)
        classes = list(sites) if classes is None else list(classes)
        for name in classes + [f.site for f in faults or ()]:
            if name not in sites:
                raise ValueError(f"site class must be one of {', '.join(sites)} for this "
                                 f"engine, not {name!r}")
        if ber is not None and rng is None:
            raise TypeError("rng is required with ber")
        recorded = {}

        def inject(name, values):
            sc = sites[name]
            residues = name not in ("descale",) and not (
                name == "input_transform" and c.input_transform == "binary")
            if residues:
                # Unsigned residue registers: flipped as two's complement of their width
                # (the same bits), read back unsigned.
                values = wrap(values, np.broadcast_to(sc.widths, values.shape))
            values = _apply_faults(name, sc, values,
                                   [f for f in faults or () if f.site == name],
                                   ber=ber if name in classes else None, rng=rng,
                                   counts=counts)
            if residues:
                values = values & ((np.int64(1) << np.broadcast_to(sc.widths, values.shape))
                                   - 1)
            if record:
                recorded[name] = values
            return values

        mods = self.moduli.reshape(1, k, 1, 1)
        flat = d.reshape(B, C, n2)
        if c.input_transform == "binary":
            V, ivs = _transform2d(c.input_matrix, [c.data_interval] * n2, flat)
            V = inject("input_transform", wrap(V, self.v_widths))
            Vi = np.stack([np.stack([hardware_reduce(V[..., j], ivs[j], int(mi))
                                     for j in range(n2)], axis=-1)
                           for mi in c.moduli], axis=1)                   # B, k, C, n2
            Vi = inject("forward_conversion", Vi)
        else:
            Vi = np.stack([self._transform(self.BT, flat % mi, i) % mi
                           for i, mi in enumerate(c.moduli)], axis=1)
            Vi = inject("input_transform", Vi)
        P = inject("products", (Vi % mods) * self.U[None] % mods)         # B, k, C, n2
        if C > 1:
            acc = self._accumulate(P, inject, mods)
        else:
            acc = P[:, :, 0]
        Y = np.stack([self._transform(self.AT, acc[:, i] % mi, i) % mi
                      for i, mi in enumerate(c.moduli)], axis=1)          # B, k, mm
        Y = inject("output_transform", Y)
        y, error = self._convert(Y)
        if c.scale_divisor != 1:
            plan = exact_divide_plan(c.scale_divisor, c.output_interval.width)
            y = wrap(wrap(y >> plan.shift, plan.out_width) * plan.multiplier, plan.out_width)
            y = inject("descale", y)
        y = wrap(y, c.output_width).reshape(B, c.m, c.m)
        if flags is not None:
            flags["error"] = error
        return (y, recorded) if record else y

    def _accumulate(self, P, inject, mods):
        """The channel accumulators: ``acc_c = acc_{c-1} + P_c mod m_i`` (reduced from any
        register value); a flip after channel ``c`` is carried on."""
        C = P.shape[2]
        m = mods[:, :, 0]                                                 # 1, k, 1
        clean = np.empty_like(P)
        acc = None
        for ch in range(C):
            acc = P[:, :, ch] if acc is None else (acc + P[:, :, ch]) % m
            clean[:, :, ch] = acc
        faulty = inject("accumulation", clean)
        flips = faulty ^ clean
        if not flips.any():
            return clean[:, :, -1]
        acc = None
        for ch in range(C):
            acc = P[:, :, ch] if acc is None else (acc + P[:, :, ch]) % m
            acc = acc ^ flips[:, :, ch]
        return acc

    def _convert(self, Y):
        """Reverse conversion of the output residues (B, k, mm), any register values:
        ``(values, error)``, the signed value from the non-redundant moduli (as wide as the
        result range) and, per tile, the redundant-modulus check."""
        c = self.config
        B, k, mm = Y.shape
        R = c.result_interval
        canon = (Y % self.moduli.reshape(1, k, 1)).transpose(1, 0, 2)     # k, B, mm
        base = len(c.base_moduli.moduli)
        M = c.base_moduli.product
        X = np.asarray(from_residues_crt(canon[:base], c.base_moduli), dtype=object)
        # from_residues_crt returns the signed value; the converter's X is unsigned.
        X = X % M
        value = np.where(X >= (M + 1) // 2, X - M, X)
        value = wrap(value.astype(np.int64), R.width)
        if not c.redundant_moduli:
            return value, np.zeros(B, dtype=bool)
        Mf = c.moduli_set.product
        full = np.asarray(from_residues_crt(canon, c.moduli_set), dtype=object) % Mf
        signed = np.where(full <= R.hi, full, full - Mf)
        bad = (signed < R.lo) | (signed > R.hi)
        return value, np.asarray(bad, dtype=bool).reshape(B, mm).any(axis=1)
