"""Requantization of the layer engines' results: :class:`Requantizer`."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Requantizer"]


class Requantizer(wiring.Component):
    """Arithmetic right shift by a run-time amount, rounding, saturation, optional ReLU.

    Bit-exact with :func:`winogen.gen.layer.requantize`: with ``f = x >> shift``, the
    rounding bit ``x[shift-1]`` and the sticky bit ``x[0:shift-1] != 0``, half-up adds the
    rounding bit and half-to-even adds ``round & (sticky | f[0])``. With ``relu`` the lower
    saturation bound is 0 instead of ``-2**(output_width-1)``.

    Parameters
    ----------
    input_width, output_width : int
    count : int
        Elements per beat.
    shift_width : int
        Width of the run-time shift (values up to ``input_width`` are meaningful).
    rounding : str
        ``"half_even"`` or ``"half_up"``.
    stages : int
        1: one register after the saturation; 2: also one after the shift (the rounding
        add and the saturation in the second stage).

    Members
    -------
    x : In(ArrayLayout(signed(input_width), count))
    valid : In(1)
    shift : In(unsigned(shift_width))
    relu : In(1)
        With ``x`` and ``shift``.
    y : Out(ArrayLayout(signed(output_width), count))
    y_valid : Out(1)
    """

    def __init__(self, input_width, output_width, count, shift_width, rounding, *, stages=1):
        if rounding not in ("half_even", "half_up"):
            raise ValueError(f"rounding must be one of half_even, half_up, not {rounding!r}")
        if stages not in (1, 2):
            raise ValueError(f"stages must be 1 or 2, not {stages!r}")
        self.stages = stages
        self.input_width = input_width
        self.output_width = output_width
        self.rounding = rounding
        super().__init__({
            "x": In(data.ArrayLayout(signed(input_width), count)),
            "valid": In(1),
            "shift": In(unsigned(shift_width)),
            "relu": In(1),
            "y": Out(data.ArrayLayout(signed(output_width), count)),
            "y_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.input_width
        lo, hi = -(1 << (self.output_width - 1)), (1 << (self.output_width - 1)) - 1
        shift = self.shift
        relu = self.relu
        if self.stages == 2:        # the saturation is in the second stage
            relu = Signal(name="relu_d1")
            m.d.sync += relu.eq(self.relu)
        low = Signal(signed(self.output_width), name="low")
        m.d.comb += low.eq(Mux(relu, 0, lo))
        # Bits of x below the rounding bit: (2**shift - 1) >> 1.
        below = Signal(w, name="below_mask")
        m.d.comb += below.eq((((1 << shift) - 1) >> 1)[:w])
        for e in range(len(self.x)):
            x = Signal(signed(w), name=f"x{e}")
            floor = Signal(signed(w), name=f"floor{e}")
            rnd = Signal(name=f"round{e}")
            sticky = Signal(name=f"sticky{e}")
            q = Signal(signed(w + 1), name=f"rounded{e}")
            split = m.d.sync if self.stages == 2 else m.d.comb
            split += [
                floor.eq(x >> shift),
                rnd.eq(((x << 1) >> shift)[0]),     # x[shift - 1], 0 for shift == 0
                sticky.eq((x.as_unsigned() & below).any()),
            ]
            m.d.comb += x.eq(self.x[e])
            if self.rounding == "half_up":
                m.d.comb += q.eq(floor + rnd)
            else:
                m.d.comb += q.eq(floor + (rnd & (sticky | floor[0])))
            m.d.sync += self.y[e].eq(Mux(q > hi, hi, Mux(q < low, low, q)))
        valid = self.valid
        if self.stages == 2:
            valid_d = Signal(name="valid_d1")
            m.d.sync += valid_d.eq(valid)
            valid = valid_d
        m.d.sync += self.y_valid.eq(valid)
        return m
