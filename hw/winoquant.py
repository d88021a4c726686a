"""The quantized Winograd domain's hardware: rounding shifts (:mod:`winogen.gen.winoquant`).

:class:`RoundShift` is ``y = clamp(⌊x / 2^s + ½⌋, bottom, top)``: add half an LSB, shift
right arithmetically, and clamp only where the range says the result can pass an end.
:class:`VQuantizer` applies one per Winograd position to ``V = Bᵀ d B`` (the shifts
``sV_ij``); the tile and layer engines use :class:`RoundShift` again for the output
``Y = ⌊Z / 2^−min e + ½⌋``. Every shift, range and width comes from
:class:`~winogen.gen.winoquant.WinogradQuantization`.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..gen.bounds import Interval
from .constmat import ConstTransform2D
from .util import check_interval, check_stages, delay

__all__ = ["RoundShift", "VQuantizer", "UQuantizer", "QuantizedFilterTransform",
           "make_filter_transform"]


class RoundShift(wiring.Component):
    """``y = min(⌊x / 2^shift + ½⌋, top)`` (round half up), ``stages`` cycles later.

    Parameters
    ----------
    input_interval : Interval
        Range of ``x``.
    shift : int
        Right shift, at least 0 (0 is a wire).
    top, bottom : int, optional
        Clamps of the result (each built only when the rounded range passes it).
    stages : int
        Registers after the rounding (0: combinational).

    Members
    -------
    x : In(signed(input width))
    y : Out(signed(output width))
    output_interval : Interval
    """

    def __init__(self, input_interval, shift, *, top=None, bottom=None, stages=0):
        self.input_interval = check_interval("input_interval", input_interval)
        if not isinstance(shift, int) or isinstance(shift, bool) or shift < 0:
            raise ValueError(f"shift must be a non-negative integer, not {shift!r}")
        self.shift = shift
        self.latency = check_stages(stages)
        half = (1 << (shift - 1)) if shift else 0
        # The sum before the shift: the rounding adder's range.
        self.sum_interval = input_interval + half
        lo, hi = self.sum_interval.lo >> shift, self.sum_interval.hi >> shift
        self.saturates = top is not None and hi > top
        self.saturates_low = bottom is not None and lo < bottom
        self.output_interval = Interval(max(lo, bottom) if self.saturates_low else lo,
                                        min(hi, top) if self.saturates else hi)
        self.top, self.bottom = top, bottom
        super().__init__({
            "x": In(signed(input_interval.width)),
            "y": Out(signed(self.output_interval.width)),
        })

    def elaborate(self, platform):
        m = Module()
        total = Signal(signed(self.sum_interval.width), name="rounded")
        half = (1 << (self.shift - 1)) if self.shift else 0
        m.d.comb += total.eq(self.x + half)
        value = Signal(signed(self.output_interval.width), name="shifted")
        shifted = total.shift_right(self.shift)
        # Derived shifts: only a carry from rounding passes the top (the range says so);
        # given (calibrated) shifts: either end (each clamp is built only where needed).
        clamped = shifted
        if self.saturates:
            clamped = Mux(shifted > self.top, self.top, clamped)
        if self.saturates_low:
            clamped = Mux(shifted < self.bottom, self.bottom, clamped)
        m.d.comb += value.eq(clamped)
        m.d.comb += self.y.eq(delay(m, value, self.latency, "rs", reset_less=True))
        return m


class VQuantizer(wiring.Component):
    """``V̂_ij``: ``V_ij`` rounded half up by ``sV_ij`` and clamped to ``W`` bits (combinational).

    Parameters
    ----------
    quantization : WinogradQuantization

    Members
    -------
    x : In(ArrayLayout(signed(V width), n²))
    y : Out(ArrayLayout(signed(W), n²))
    """

    def __init__(self, quantization):
        q = quantization
        self.quantization = q
        self.rounders = [RoundShift(iv, s, top=q.top, bottom=q.bottom)
                         for iv, s in zip(q.exact_v_intervals, q.v_shifts)]
        for r, iv in zip(self.rounders, q.vq_intervals):
            assert r.output_interval == iv, "hardware and gen/ disagree on a V̂ range"
        count = len(self.rounders)
        super().__init__({
            "x": In(data.ArrayLayout(signed(max(iv.width for iv in q.exact_v_intervals)), count)),
            "y": Out(data.ArrayLayout(signed(max(iv.width for iv in q.vq_intervals)), count)),
        })

    def elaborate(self, platform):
        m = Module()
        for e, r in enumerate(self.rounders):
            m.submodules[f"q{e}"] = r
            m.d.comb += [r.x.eq(self.x[e]), self.y[e].eq(r.y)]
        return m


class UQuantizer(wiring.Component):
    """``Û_ij`` on chip from the integer ``U = G g Gᵀ`` (online filter transform, ``D`` a
    power of two): ``U_ij`` rounded half up by ``t_ij = 2·log2(D) + sU_ij``, or shifted left
    by ``−t_ij`` (exact), and clamped where the range passes ``W`` bits -- the offline
    definition, since ``D²`` is a power of two (combinational).

    Parameters
    ----------
    quantization : WinogradQuantization

    Members
    -------
    x : In(ArrayLayout(signed(U width), n²))
    y : Out(ArrayLayout(signed(W), n²))
    """

    def __init__(self, quantization):
        q = quantization
        self.shifts = q.u_online_shifts
        # A left shift (t <= 0) is exact; it enters a 0-shift RoundShift for its clamps
        # (built only where given shifts let the value pass W bits).
        self.rounders = [RoundShift(iv, t, top=q.top, bottom=q.bottom) if t > 0 else
                         RoundShift(iv.shift_left(-t), 0, top=q.top, bottom=q.bottom)
                         for iv, t in zip(q.exact_u_intervals, self.shifts)]
        for r, want in zip(self.rounders, q.uq_intervals):
            assert r.output_interval == want, "hardware and gen/ disagree on a Û range"
        count = len(self.shifts)
        super().__init__({
            "x": In(data.ArrayLayout(signed(max(iv.width for iv in q.exact_u_intervals)), count)),
            "y": Out(data.ArrayLayout(signed(max(iv.width for iv in q.uq_intervals)), count)),
        })

    def elaborate(self, platform):
        m = Module()
        for e, (r, t) in enumerate(zip(self.rounders, self.shifts)):
            m.submodules[f"q{e}"] = r
            m.d.comb += [r.x.eq(self.x[e] if t > 0 else self.x[e] << -t), self.y[e].eq(r.y)]
        return m


class QuantizedFilterTransform(wiring.Component):
    """The online filter transform of a quantized domain: ``Û`` of raw ``g``
    (:class:`ConstTransform2D` by ``G``, then :class:`UQuantizer`); ``latency`` that of
    the transform.

    Parameters
    ----------
    tile : TileConfig
        With ``wino_width`` and ``filter_transform="online"``.
    stages : int
    """

    def __init__(self, tile, *, stages=0):
        self.transform = ConstTransform2D(tile.hardware.G, tile.weight_interval, stages=stages)
        self.quantizer = UQuantizer(tile.quantization)
        self.latency = self.transform.latency
        super().__init__({
            "x": In(self.transform.x.shape()),
            "y": Out(self.quantizer.y.shape()),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.transform = ft = self.transform
        m.submodules.quantizer = uq = self.quantizer
        m.d.comb += [ft.x.eq(self.x), uq.x.eq(ft.y), self.y.eq(uq.y)]
        return m


def make_filter_transform(tile, *, stages):
    """The online filter transform of ``tile``: ``U = G g Gᵀ`` (:class:`ConstTransform2D`),
    or ``Û`` in a quantized domain (:class:`QuantizedFilterTransform`)."""
    if getattr(tile, "quantization", None):
        return QuantizedFilterTransform(tile, stages=stages)
    return ConstTransform2D(tile.hardware.G, tile.weight_interval, stages=stages)
