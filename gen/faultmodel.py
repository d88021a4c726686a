"""Operation-level fault injection in a layer engine's integer model (issue 18).

:class:`LayerFaultModel` computes one layer the way a binary layer engine
(:mod:`winogen.hw.layer`) does: every operation's result held in a register of the
engine's derived width, in the engine's order of operations, so a bit flipped in one
result propagates exactly as it does in the emitted Verilog. The results are grouped in
*site classes* (:data:`SITE_CLASSES`), each the output of one kind of block:

``input_transform``
    ``V = Bᵀ d B`` (Winograd), per output-channel group, tile, input channel and
    element: the engine transforms a tile again for every group of ``P_out`` output
    channels, so a fault reaches those ``P_out`` channels only.
``filter_transform``
    ``U = G g Gᵀ`` computed by the engine (``filter_transform="online"``): once per filter
    when it loads, or with ``filter_store="raw"`` at every step. Absent when the host
    transforms the filters (offline).
``products``
    The PE outputs: ``pe(V, U)`` per tile, output and input channel and element
    (Winograd); ``pe(d, g)`` per tile, channels, output pixel and tap (direct).
``lane_sums``
    The adder tree over the ``P_in`` input lanes (Winograd, ``P_in > 1``), or over
    ``P_in · r²`` terms (direct), per channel group.
``accumulation``
    The channel accumulator after each input-channel group (a fault in group ``k`` is
    carried through the remaining groups).
``output_transform``
    ``Aᵀ acc A`` (Winograd).
``descale``
    The exact division by ``D²`` (Winograd engines that remove the scale).
``requantization``
    Shift, rounding, saturation (and ReLU) to ``output_width`` (engines that requantize).

Between operations every value is wrapped to the register or node width the hardware
gives it (:mod:`winogen.hw.constmat`'s shift-add nodes, the PE's product register, the
accumulator), so out-of-range values after a fault behave as in the Verilog. Without
faults the model equals :func:`~winogen.gen.layer.layer_golden` (tested).

Faults are placed by :class:`Fault` (exactly one bit of one value) or by a bit error rate
per site class (:func:`winogen.gen.faults.flip_bits`: products at twice the rate of
additions, as in Xue et al.'s injector).

Limits: binary engines (multiply and AdderNet PE kinds); the RNS engines carry their own
check (:mod:`winogen.gen.rns`). Lanes beyond ``C_in`` and output channels beyond
``C_out`` carry no sites: the engine computes them from zero tiles or masks them, and
their results are never output.
"""

from dataclasses import dataclass
from functools import lru_cache
import math

import numpy as np

from .bounds import Interval, matvec_intervals
from .csd import exact_divide_plan, plan_matvec
from .faults import ADD_FACTOR, MUL_FACTOR
from .layer import requantize

#: Copies of a block per hardening scheme (:mod:`winogen.gen.harden` re-exports it).
COPIES_OF = {"tmr": 3, "dmr": 2}

__all__ = ["SITE_CLASSES", "CLASSIFICATIONS", "Fault", "SiteClass", "LayerFaultModel", "TileFaultModel", "wrap"]

#: The classification of a fault's run: the output is unchanged, silently wrong, or flagged
#: by the engine's check (a ``dmr`` comparator, an RNS engine's redundant modulus).
CLASSIFICATIONS = ("masked", "sdc", "detected")

#: Every site class, in data-flow order.
SITE_CLASSES = ("input_transform", "filter_transform", "products", "lane_sums",
                "accumulation", "output_transform", "descale", "requantization")


def wrap(values, width):
    """``values`` reduced to ``width``-bit two's complement (``width`` broadcasts)."""
    v = np.asarray(values, dtype=np.int64)
    w = np.asarray(width, dtype=np.int64)
    half = np.left_shift(np.int64(1), w - 1)
    return ((v + half) & (2 * half - 1)) - half


@dataclass(frozen=True)
class Fault:
    """Exactly one bit flip: bit ``bit`` of the value ``index`` of site class ``site``.

    ``index`` addresses the class's value array (:attr:`SiteClass.axes`), without the
    image axis; ``image`` picks the image of a batch; ``copy`` the copy of a hardened
    block (0 to 2 for ``tmr``, 0 or 1 for ``dmr``).
    """
    site: str
    index: tuple
    bit: int
    image: int = 0
    copy: int = 0


@dataclass(frozen=True)
class SiteClass:
    """One class of fault sites of a layer.

    Members
    -------
    name : str
    axes : tuple of str
        Names of the value array's axes (the image axis first).
    shape : tuple of int
        Shape of the value array for one batch.
    widths : numpy.ndarray
        Register width of every value (broadcasts against ``shape``).
    factor : int
        BER factor (2 for products, 1 for additions).
    """
    name: str
    axes: tuple
    shape: tuple
    widths: np.ndarray
    factor: int

    @property
    def values(self):
        return math.prod(self.shape)

    @property
    def bits(self):
        return int(np.broadcast_to(self.widths, self.shape).sum())


def _apply_faults(name, sc, values, faults, *, ber=None, rng=None, counts=None):
    """``values`` of site class ``sc`` with BER flips (if ``ber``) and the single
    ``faults`` (their ``index``/``bit``/``image``), each wrapped to its register width."""
    from .faults import flip_bits
    if ber is not None:
        w = int(sc.widths) if np.ndim(sc.widths) == 0 else sc.widths
        values, placed = flip_bits(values, w, ber, rng, sc.factor, count="binomial")
        if counts is not None:
            counts[name] = counts.get(name, 0) + len(placed)
    widths = np.broadcast_to(sc.widths, sc.shape)
    for f in faults:
        index = (f.image,) + tuple(f.index)
        width = int(widths[index])
        if not 0 <= f.bit < width:
            raise ValueError(f"bit must be from 0 to {width - 1} at {name}{index}, "
                             f"not {f.bit!r}")
        values = values.copy()
        values[index] = wrap(values[index] ^ (np.int64(1) << f.bit), width)
    return values


# --- Shift-add programs with the hardware's truncations ------------------------------------

@lru_cache(maxsize=None)
def _program(matrix, intervals):
    """The plan of ``matrix`` and, per node, its width (as :class:`ConstMatVec` sizes it)."""
    plan = plan_matvec([list(row) for row in matrix])
    node_widths = [matvec_intervals([plan.coefficients(plan.cols + i)], list(intervals))[0].width
                   for i in range(len(plan.nodes))]
    out_width = max(iv.width for iv in matvec_intervals(plan.matrix, list(intervals)))
    return plan, node_widths, out_width


def _matvec(matrix, intervals, x):
    """``ConstMatVec(matrix, intervals)`` on ``x`` (inputs on the last axis), wrapped like
    the hardware: inputs to their interval widths, every node to its width, outputs to
    the output port's width."""
    matrix = tuple(tuple(int(c) for c in row) for row in matrix)
    intervals = tuple(intervals)
    plan, node_widths, out_width = _program(matrix, intervals)
    values = [wrap(x[..., j], iv.width) for j, iv in enumerate(intervals)]
    for node, width in zip(plan.nodes, node_widths):
        acc = 0
        for t in node.terms:
            term = np.left_shift(values[t.source], t.shift)
            acc = acc + term if t.sign > 0 else acc - term
        values.append(wrap(acc, width))
    zero = np.zeros_like(values[0])
    outs = [zero if out is None else wrap(np.left_shift(values[out.source], out.shift), out_width)
            for out in plan.outputs]
    return np.stack(outs, axis=-1), out_width


def _transform2d(matrix, intervals, x):
    """``ConstTransform2D(matrix, intervals)`` on ``x`` (row-major tiles on the last axis)."""
    matrix = [list(row) for row in matrix]
    rows, cols = len(matrix), len(matrix[0])
    z_iv = [matvec_intervals(matrix, intervals[j::cols]) for j in range(cols)]
    passes = [_matvec(matrix, intervals[j::cols], x[..., j::cols])[0] for j in range(cols)]
    inter_iv = [[z_iv[j][i] for j in range(cols)] for i in range(rows)]
    out_iv = [iv for i in range(rows) for iv in matvec_intervals(matrix, inter_iv[i])]
    port = max(iv.width for iv in out_iv)
    out = []
    for i in range(rows):
        row_in = np.stack([passes[j][..., i] for j in range(cols)], axis=-1)
        out.append(_matvec(matrix, inter_iv[i], row_in)[0])
    return wrap(np.concatenate(out, axis=-1), port), out_iv


class LayerFaultModel:
    """A binary layer engine's operation-level integer model of one layer, with faults.

    Parameters
    ----------
    config : LayerConfig
    run : LayerRun
    w : array (C_out, C_in, r, r)
        The layer's weights (raw filters).

    Members
    -------
    sites : dict of str to SiteClass
        The site classes this engine and layer have, for a batch of ``batch`` images
        (set by :meth:`site_classes`).
    """

    def __init__(self, config, run, w):
        from .checks import check_integer_values
        run.check(config)
        t = config.tile
        if t.pe_kind.name not in ("mul", "adder"):
            raise ValueError(f"the fault model covers the mul and adder PE kinds, not "
                             f"{t.pe_kind.name!r}")
        if getattr(t, "quantization", None):
            raise ValueError(f"the fault model covers exact Winograd domains, not "
                             f"wino_width={t.wino_width!r}")
        self.config, self.run, self.tile = config, run, t
        w = check_integer_values("weight", w, t.weight_interval)
        if w.shape != (run.cout, run.cin, config.r, config.r):
            raise ValueError(f"weights must have shape {(run.cout, run.cin, config.r, config.r)}, "
                             f"not {w.shape}")
        self.w = w.astype(np.int64)
        c, r, m = config, config.r, config.m
        self.out_h = run.height + 2 * run.padding - r + 1
        self.out_w = run.width + 2 * run.padding - r + 1
        self.tiles_h, self.tiles_w = math.ceil(self.out_h / m), math.ceil(self.out_w / m)
        self.groups_in = math.ceil(run.cin / c.p_in)
        self.groups_out = math.ceil(run.cout / c.p_out)
        self.winograd = c.algorithm == "winograd"
        self.online = self.winograd and c.filter_transform == "online"
        self.raw = self.online and c.filter_store == "raw"
        if self.winograd:
            hw = t.hardware
            self.BT, self.G, self.AT = hw.BT, hw.G, hw.AT

    # -- site classes -------------------------------------------------------------------------

    def site_classes(self, batch=1):
        """The site classes of this layer for ``batch`` images: name -> :class:`SiteClass`."""
        c, t, run = self.config, self.tile, self.run
        n2, mm, rr = c.n ** 2, c.m ** 2, c.r ** 2
        T = (batch, self.tiles_h, self.tiles_w)
        Ta = ("image", "tile_row", "tile_col")
        widths = lambda ivs: np.array([iv.width for iv in ivs], dtype=np.int64)
        s = {}

        def add(name, axes, shape, w, factor=ADD_FACTOR):
            s[name] = SiteClass(name, tuple(axes), tuple(shape), w, factor)

        if self.winograd:
            add("input_transform", Ta + ("cout_group", "cin", "element"),
                T + (self.groups_out, run.cin, n2), widths(t.pe_a_intervals))
            if self.raw:
                add("filter_transform", Ta + ("cout", "cin", "element"),
                    T + (run.cout, run.cin, n2), widths(t.pe_b_intervals))
            elif self.online:
                add("filter_transform", ("image", "cout", "cin", "element"),
                    (batch, run.cout, run.cin, n2), widths(t.pe_b_intervals))
            add("products", Ta + ("cout", "cin", "element"), T + (run.cout, run.cin, n2),
                widths(t.product_intervals), MUL_FACTOR)
            if c.p_in > 1:
                add("lane_sums", Ta + ("cout", "cin_group", "element"),
                    T + (run.cout, self.groups_in, n2), widths(self._partial_intervals()))
            add("accumulation", Ta + ("cout", "cin_group", "element"),
                T + (run.cout, self.groups_in, n2), widths(c.accumulator_intervals))
            add("output_transform", Ta + ("cout", "element"), T + (run.cout, mm),
                widths(c.scaled_output_intervals))
            if t.removes_scale:
                add("descale", Ta + ("cout", "element"), T + (run.cout, mm),
                    np.int64(c.exact_output_interval.width))
        else:
            add("products", Ta + ("cout", "cin", "element", "tap"), T + (run.cout, run.cin, mm, rr),
                widths(t.product_intervals[:1]), MUL_FACTOR)
            add("lane_sums", Ta + ("cout", "cin_group", "element"),
                T + (run.cout, self.groups_in, mm), np.int64(self._direct_sum_interval().width))
            add("accumulation", Ta + ("cout", "cin_group", "element"),
                T + (run.cout, self.groups_in, mm), widths(c.accumulator_intervals))
        if c.output_width is not None:
            add("requantization", Ta + ("cout", "element"), T + (run.cout, mm),
                np.int64(c.output_width))
        return s

    # -- derived intervals (as the cores build them) --------------------------------------------

    def _lane_intervals(self, product):
        """Ranges of one element's terms on the ``P_in`` lanes as the lane sum takes them:
        a masking core (non-bilinear kinds) may zero every lane but lane 0."""
        masked = product.hull(Interval(0, 0)) if self.config.masks_lanes else product
        return [product] + [masked] * (self.config.p_in - 1)

    def _partial_intervals(self):
        """Winograd: range of each lane sum (``ConstMatVec([[1]*P_in])`` per element)."""
        if self.config.p_in == 1:
            return list(self.tile.product_intervals)
        return [matvec_intervals([[1] * self.config.p_in], self._lane_intervals(iv))[0]
                for iv in self.tile.product_intervals]

    def _direct_tree_intervals(self):
        """Direct: the adder tree's inputs, lane-major then tap."""
        rr = self.config.r ** 2
        return [iv for iv in self._lane_intervals(self.tile.product_intervals[0])
                for _ in range(rr)]

    def _direct_sum_interval(self):
        return matvec_intervals([[1] * len(self._direct_tree_intervals())],
                                self._direct_tree_intervals())[0]

    # -- the forward pass ---------------------------------------------------------------------

    def _tiles(self, x):
        """Input tiles (B, TH, TW, C_in, n, n) of the zero-padded maps ``x`` (B, C_in, H, W)."""
        c, run = self.config, self.run
        p, n, m = run.padding, c.n, c.m
        B = x.shape[0]
        H = self.tiles_h * m + c.r - 1
        W = self.tiles_w * m + c.r - 1
        xp = np.zeros((B, run.cin, H, W), dtype=np.int64)
        hh, ww = min(run.height, H - p), min(run.width, W - p)
        xp[:, :, p:p + hh, p:p + ww] = x[:, :, :hh, :ww]
        win = np.lib.stride_tricks.sliding_window_view(xp, (n, n), axis=(2, 3))
        win = win[:, :, ::m, ::m][:, :, :self.tiles_h, :self.tiles_w]
        return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5))

    def forward(self, x, faults=None, *, ber=None, rng=None, classes=None, record=False,
                counts=None, flags=None):
        """The layer's output for activations ``x`` (B, C_in, H, W) or (C_in, H, W).

        Parameters
        ----------
        faults : list of Fault, optional
            Single bit flips (each at its class, value and bit).
        ber : float, optional
            Bit error rate: flips by :func:`~winogen.gen.faults.flip_bits` in every site
            class of ``classes`` (default: all the layer has).
        rng : numpy.random.Generator
            Needed with ``ber``.
        record : bool
            Also return every site class's values (after its faults), as a dict.
        counts : dict, optional
            Receives the number of BER flips placed per site class (added to its values).
        flags : dict, optional
            Receives ``"beats"``: bool (B, tile rows, tile cols, output-channel groups),
            the output beats a ``dmr`` comparator flags (the engine's ``error`` output).

        Hardened classes (``config.harden``) get independent flips in every copy; a
        ``tmr`` class passes the bitwise majority, a ``dmr`` class the first copy.

        Returns
        -------
        y : array (B, C_out, H_out, W_out) (or without B)
        values : dict (with ``record``)
        """
        from .checks import check_integer_values
        c, t, run = self.config, self.tile, self.run
        single = np.ndim(x) == 3
        x = check_integer_values("activation", x[None] if single else x, t.data_interval)
        if x.shape[1:] != (run.cin, run.height, run.width):
            raise ValueError(f"activations must have shape (B, {run.cin}, {run.height}, "
                             f"{run.width}), not {x.shape}")
        x = x.astype(np.int64)
        B = x.shape[0]
        sites = self.site_classes(B)
        if classes is None:
            classes = list(sites)
        for name in classes:
            if name not in sites:
                raise ValueError(f"site class must be one of {', '.join(sites)} for this engine, "
                                 f"not {name!r}")
        by_class = {}
        for f in faults or ():
            if not isinstance(f, Fault):
                raise TypeError(f"faults must be Fault objects, not {f!r}")
            if f.site not in sites:
                raise ValueError(f"site class must be one of {', '.join(sites)} for this engine, "
                                 f"not {f.site!r}")
            by_class.setdefault(f.site, []).append(f)
        if ber is not None and rng is None:
            raise TypeError("rng is required with ber")
        recorded = {}

        harden = dict(getattr(c, "harden", ()))
        beat_flags = np.zeros((B, self.tiles_h, self.tiles_w, self.groups_out), dtype=bool)

        def copies_of(name, values):
            """The values of each copy of the block of class ``name`` after its own faults
            (one copy unless the class is hardened)."""
            sc = sites[name]
            copies = []
            for k in range(COPIES_OF.get(harden.get(name), 1)):
                mine = [f for f in by_class.get(name, ()) if f.copy == k]
                v = _apply_faults(name, sc, values, mine, ber=ber if name in classes else None,
                                  rng=rng, counts=counts)
                copies.append(v)
            if record:
                recorded[name] = copies[0]
            return copies

        def combine(name, copies):
            """What leaves a (hardened) block: the majority of three copies, or the first
            of two with its mismatches flagged on the output beats they reach."""
            scheme = harden.get(name)
            if scheme == "tmr":
                a, b, c3 = copies
                return (a & b) | (a & c3) | (b & c3)
            if scheme == "dmr":
                self._flag(beat_flags, name, copies[0] != copies[1])
            return copies[0]

        def inject(name, values):
            """Apply the faults of class ``name`` to ``values`` (already wrapped)."""
            if name not in sites:
                return values
            values = combine(name, copies_of(name, values))
            if record:
                recorded[name] = values
            return values

        inject.copies_of, inject.combine = copies_of, combine
        for f in faults or ():
            copies = COPIES_OF.get(harden.get(f.site), 1)
            if not 0 <= f.copy < copies:
                raise ValueError(f"copy must be from 0 to {copies - 1} for {f.site} in this "
                                 f"engine, not {f.copy!r}")

        d = self._tiles(x)                                      # B, TH, TW, Ci, n, n
        if self.winograd:
            acc_final = self._winograd(d, inject)
        else:
            acc_final = self._direct(d, inject)
        y = acc_final                                           # B, TH, TW, Co, m*m
        if c.output_width is not None:
            y = requantize(y, run.shift, c.output_width, c.rounding, relu=run.relu)
            y = inject("requantization", y)
        if flags is not None:
            flags["beats"] = beat_flags
        m = c.m
        y = y.reshape(B, self.tiles_h, self.tiles_w, run.cout, m, m)
        y = y.transpose(0, 3, 1, 4, 2, 5).reshape(B, run.cout, self.tiles_h * m, self.tiles_w * m)
        y = y[:, :, :self.out_h, :self.out_w]
        y = y[0] if single else y
        return (y, recorded) if record else y

    def _flag(self, beat_flags, name, mismatch):
        """Mark the output beats (image, tile row, tile col, output-channel group) that a
        mismatch in class ``name`` reaches: axis 3 is the output channel, or its group
        for the input transform."""
        hit = mismatch.reshape(mismatch.shape[:4] + (-1,)).any(axis=-1)
        if name != "input_transform":
            p_out = self.config.p_out
            pad = self.groups_out * p_out - hit.shape[3]
            hit = np.pad(hit, [(0, 0)] * 3 + [(0, pad)])
            hit = hit.reshape(hit.shape[:3] + (self.groups_out, p_out)).any(axis=-1)
        beat_flags |= hit

    def _lane_groups(self, terms, axis_len, p_in):
        """Split the channel axis (-2) of ``terms`` into groups of ``p_in`` (zero-padded)."""
        pad = self.groups_in * p_in - axis_len
        if pad:
            widths = [(0, 0)] * terms.ndim
            widths[-2] = (0, pad)
            terms = np.pad(terms, widths)
        shape = terms.shape[:-2] + (self.groups_in, p_in, terms.shape[-1])
        return terms.reshape(shape)

    def _accumulate_faulty(self, partial, inject, acc_w):
        """The channel accumulator over axis -2 (groups); returns the last group's value.

        A flip in the value after group ``k`` stays in the register, so groups ``k + 1 ..``
        add to the faulty value: the flips are found on the fault-free sequence, then
        replayed as XOR masks while accumulating again.
        """
        groups = partial.shape[-2]
        clean = np.empty_like(partial)
        acc = None
        for k in range(groups):
            x = partial[..., k, :]
            acc = x if acc is None else wrap(acc + x, acc_w)
            clean[..., k, :] = acc
        if not hasattr(inject, "copies_of"):
            return clean[..., -1, :]
        finals = []
        for faulty in inject.copies_of("accumulation", clean):
            flips = faulty ^ clean
            if not flips.any():
                finals.append(clean[..., -1, :])
                continue
            acc = None
            for k in range(groups):
                x = partial[..., k, :]
                acc = x if acc is None else wrap(acc + x, acc_w)
                acc = wrap(acc ^ flips[..., k, :], acc_w)
            finals.append(acc)
        return inject.combine("accumulation", finals)

    def _winograd(self, d, inject):
        c, t, run = self.config, self.tile, self.run
        n2, p_in, p_out = c.n ** 2, c.p_in, c.p_out
        B, TH, TW = d.shape[:3]
        kind = t.pe_kind
        # Input transform, once per output-channel group (the engine recomputes it).
        d_flat = d.reshape(B, TH, TW, run.cin, n2)
        V1, _ = _transform2d(self.BT, [t.data_interval] * n2, d_flat)
        V1 = wrap(V1, np.array([iv.width for iv in t.pe_a_intervals]))
        V = np.broadcast_to(V1[:, :, :, None], (B, TH, TW, self.groups_out, run.cin, n2))
        V = inject("input_transform", np.array(V))
        # Filter transform.
        g_flat = self.w.reshape(run.cout, run.cin, c.r ** 2)
        u_w = np.array([iv.width for iv in t.pe_b_intervals])
        U1, _ = _transform2d(self.G, [t.weight_interval] * c.r ** 2, g_flat)
        U1 = wrap(U1, u_w)
        if self.raw:
            U = inject("filter_transform", np.array(np.broadcast_to(
                U1, (B, TH, TW, run.cout, run.cin, n2))))
        elif self.online:
            U = inject("filter_transform", np.array(np.broadcast_to(
                U1, (B, run.cout, run.cin, n2))))[:, None, None]
        else:
            U = U1[None, None, None]
        # Products: output channel co uses V of its group co // P_out.
        group_of = np.arange(run.cout) // p_out
        Vc = V[:, :, :, group_of]                               # B,TH,TW,Co,Ci,n2
        P = wrap(kind.combine(Vc, U), np.array([iv.width for iv in t.product_intervals]))
        P = inject("products", P)
        # Lane sums over P_in lanes per input-channel group.
        lanes = self._lane_groups(P, run.cin, p_in)              # B,TH,TW,Co,Gi,p_in,n2
        if p_in > 1:
            per_e = []
            for e in range(n2):
                s, _ = _matvec([[1] * p_in], self._lane_intervals(t.product_intervals[e]),
                               lanes[..., e])
                per_e.append(s[..., 0])
            S = np.stack(per_e, axis=-1)
            S = wrap(S, np.array([iv.width for iv in self._partial_intervals()]))
            S = inject("lane_sums", S)
        else:
            S = lanes[..., 0, :]
        acc = self._accumulate_faulty(S, inject,
                                      np.array([iv.width for iv in c.accumulator_intervals]))
        Ys, _ = _transform2d(self.AT, list(c.accumulator_intervals), acc)
        Ys = wrap(Ys, np.array([iv.width for iv in c.scaled_output_intervals]))
        Ys = inject("output_transform", Ys)
        out_w = c.full_output_width
        if t.removes_scale:
            plan = exact_divide_plan(t.scale_divisor, c.exact_output_interval.width)
            width = plan.out_width
            shifted = wrap(Ys >> plan.shift, width)
            Y = wrap(shifted * plan.multiplier, width)
            Y = inject("descale", Y)
            return wrap(Y, out_w)
        return wrap(Ys, out_w)

    def _direct(self, d, inject):
        c, t, run = self.config, self.tile, self.run
        m, r, p_in = c.m, c.r, c.p_in
        mm, rr = m * m, r * r
        B, TH, TW = d.shape[:3]
        win = np.lib.stride_tricks.sliding_window_view(d, (r, r), axis=(4, 5))
        win = win.reshape(B, TH, TW, 1, run.cin, mm, rr)         # windows per output pixel
        g = self.w.reshape(1, 1, 1, run.cout, run.cin, 1, rr)
        P = wrap(t.pe_kind.combine(win, g), t.product_intervals[0].width)
        P = inject("products", P)                                # B,TH,TW,Co,Ci,mm,rr
        # Tree inputs in the core's order: lane-major, then tap.
        Pt = P.transpose(0, 1, 2, 3, 5, 4, 6)                    # B,TH,TW,Co,mm,Ci,rr
        pad = self.groups_in * p_in - run.cin
        if pad:
            Pt = np.pad(Pt, [(0, 0)] * 5 + [(0, pad), (0, 0)])
        Pt = Pt.reshape(B, TH, TW, run.cout, mm, self.groups_in, p_in * rr)
        S, _ = _matvec([[1] * (p_in * rr)], self._direct_tree_intervals(), Pt)
        S = S[..., 0].transpose(0, 1, 2, 3, 5, 4)                # B,TH,TW,Co,Gi,mm
        S = wrap(S, self._direct_sum_interval().width)
        S = inject("lane_sums", S)
        acc = self._accumulate_faulty(S, inject,
                                      np.array([iv.width for iv in c.accumulator_intervals]))
        return wrap(acc, c.full_output_width)


class TileFaultModel:
    """A binary tile engine's (:mod:`winogen.hw.tile`) operation-level integer model, with
    faults: one filter ``g`` (r, r), a batch of tiles.

    Site classes (axes after the tile axis): ``input_transform`` (element),
    ``filter_transform`` (element; online filter transform only, once per filter load),
    ``products`` (element; direct: output pixel, tap), ``lane_sums`` (direct: the adder
    tree per output pixel), ``output_transform`` (element, Winograd) and ``descale``
    (element; engines that remove the scale). The tile engine has no channel
    accumulation and no requantization.
    """

    def __init__(self, config, g):
        from .checks import check_integer_values
        if config.pe_kind.name not in ("mul", "adder"):
            raise ValueError(f"the fault model covers the mul and adder PE kinds, not "
                             f"{config.pe_kind.name!r}")
        self.config = config
        g = check_integer_values("filter", g, config.weight_interval)
        if g.shape != (config.r, config.r):
            raise ValueError(f"the filter must have shape {(config.r, config.r)}, not {g.shape}")
        self.g = g.astype(np.int64)
        self.winograd = config.algorithm == "winograd"

    def site_classes(self, batch=1):
        """The site classes for ``batch`` tiles: name -> :class:`SiteClass`."""
        c = self.config
        n2, mm, rr = c.n ** 2, c.m ** 2, c.r ** 2
        widths = lambda ivs: np.array([iv.width for iv in ivs], dtype=np.int64)
        s = {}

        def add(name, axes, shape, w, factor=ADD_FACTOR):
            s[name] = SiteClass(name, tuple(axes), tuple(shape), w, factor)

        if self.winograd:
            add("input_transform", ("tile", "element"), (batch, n2), widths(c.pe_a_intervals))
            if c.filter_transform == "online":
                add("filter_transform", ("load", "element"), (1, n2), widths(c.pe_b_intervals))
            add("products", ("tile", "element"), (batch, n2), widths(c.product_intervals),
                MUL_FACTOR)
            add("output_transform", ("tile", "element"), (batch, mm),
                widths(c.scaled_output_intervals))
            if c.removes_scale:
                add("descale", ("tile", "element"), (batch, mm), np.int64(c.output_interval.width))
        else:
            add("products", ("tile", "element", "tap"), (batch, mm, rr),
                widths(c.product_intervals[:1]), MUL_FACTOR)
            add("lane_sums", ("tile", "element"), (batch, mm),
                np.int64(matvec_intervals([[1] * rr], [c.product_intervals[0]] * rr)[0].width))
        return s

    def forward(self, d, faults=None, *, ber=None, rng=None, classes=None, record=False,
                counts=None, flags=None):
        """The engine's output tiles (B, m, m) for input tiles ``d`` (B, n, n); the fault
        arguments are those of :meth:`LayerFaultModel.forward` (``Fault.image`` is the
        tile's index in the batch; ``filter_transform`` faults use index ``(element,)``
        and image 0). ``flags``, if given, receives ``"error"``: per tile, False (a binary
        tile engine has no check; the argument matches the RNS model's)."""
        from .checks import check_integer_values
        c = self.config
        d = check_integer_values("input tile", d, c.data_interval)
        if d.ndim != 3 or d.shape[1:] != (c.n, c.n):
            raise ValueError(f"input tiles must have shape (B, {c.n}, {c.n}), not {d.shape}")
        d = d.astype(np.int64)
        B = d.shape[0]
        sites = self.site_classes(B)
        classes = list(sites) if classes is None else list(classes)
        for name in classes + [f.site for f in faults or ()]:
            if name not in sites:
                raise ValueError(f"site class must be one of {', '.join(sites)} for this engine, "
                                 f"not {name!r}")
        if ber is not None and rng is None:
            raise TypeError("rng is required with ber")
        recorded = {}

        def inject(name, values):
            values = _apply_faults(name, sites[name], values,
                                   [f for f in faults or () if f.site == name],
                                   ber=ber if name in classes else None, rng=rng, counts=counts)
            if record:
                recorded[name] = values
            return values

        n2, mm, rr = c.n ** 2, c.m ** 2, c.r ** 2
        kind = c.pe_kind
        if self.winograd:
            hw = c.hardware
            V, _ = _transform2d(hw.BT, [c.data_interval] * n2, d.reshape(B, n2))
            V = inject("input_transform", wrap(V, np.array([iv.width for iv in c.pe_a_intervals])))
            U, _ = _transform2d(hw.G, [c.weight_interval] * rr, self.g.reshape(1, rr))
            U = wrap(U, np.array([iv.width for iv in c.pe_b_intervals]))
            if c.filter_transform == "online":
                U = inject("filter_transform", U)
            P = wrap(kind.combine(V, U), np.array([iv.width for iv in c.product_intervals]))
            P = inject("products", P)
            Ys, _ = _transform2d(hw.AT, list(c.product_intervals), P)
            Ys = inject("output_transform",
                        wrap(Ys, np.array([iv.width for iv in c.scaled_output_intervals])))
            if c.removes_scale:
                plan = exact_divide_plan(c.scale_divisor, c.output_interval.width)
                Y = wrap(wrap(Ys >> plan.shift, plan.out_width) * plan.multiplier, plan.out_width)
                Y = inject("descale", Y)
            else:
                Y = Ys
        else:
            win = np.lib.stride_tricks.sliding_window_view(d, (c.r, c.r), axis=(1, 2))
            P = wrap(kind.combine(win.reshape(B, mm, rr), self.g.reshape(1, 1, rr)),
                     c.product_intervals[0].width)
            P = inject("products", P)
            S, _ = _matvec([[1] * rr], [c.product_intervals[0]] * rr, P)
            Y = inject("lane_sums", S[..., 0])
        y = wrap(Y, c.output_width).reshape(B, c.m, c.m)
        if flags is not None:
            flags["error"] = np.zeros(B, dtype=bool)
        return (y, recorded) if record else y
