"""Processing elements: the swappable seam of every engine.

A PE takes one transformed activation ``a`` and one transformed weight ``b``
and produces one term ``p``, exactly as :mod:`winogen.gen.pe` defines for its
kind; engines sum the terms. Every PE kind has the same ports and parameters,
so every engine works with every kind:

=========  ========================================
``a``      ``In(signed(w_a))``
``b``      ``In(signed(w_b))``
``p``      ``Out(signed(w_p))``, ``latency`` cycles later
=========  ========================================

PEs are free-running pipelines; engines stall them with ``EnableInserter``.
"""

from amaranth.hdl import Mux, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..gen.bounds import Interval
from ..gen.pe import pe_kind as _pe_kind

__all__ = ["ProcessingElement", "MultiplyPE", "AbsDiffPE", "PE_COMPONENTS", "make_pe", "PEArray"]


def _check_interval(name, value):
    if not isinstance(value, Interval):
        raise TypeError(f"{name} must be an Interval, not {value!r}")
    return value


def _check_stages(stages):
    if not isinstance(stages, int) or isinstance(stages, bool) or stages < 0:
        raise ValueError(f"stages must be a non-negative integer, not {stages!r}")
    return stages


class ProcessingElement(wiring.Component):
    """Base of the PE components: ports, widths and the register placement.

    Parameters
    ----------
    a_interval, b_interval : Interval
        Ranges of the operands; port widths are their widths.
    stages : int
        Register stages. With one stage the result is registered; with two or
        more the operands are registered too (the input and output registers
        of DSP blocks such as MULT18X18D and DSP48E1); further stages trail.

    Members
    -------
    a : In(signed(w_a))
    b : In(signed(w_b))
    p : Out(signed(w_p))
    output_interval : Interval
    latency : int
    """
    kind = None

    def __init__(self, a_interval, b_interval, *, stages=0):
        self.a_interval = _check_interval("a_interval", a_interval)
        self.b_interval = _check_interval("b_interval", b_interval)
        self.latency = _check_stages(stages)
        self.output_interval = _pe_kind(self.kind).output_interval(a_interval, b_interval)
        super().__init__({
            "a": In(signed(a_interval.width)),
            "b": In(signed(b_interval.width)),
            "p": Out(signed(self.output_interval.width)),
        })

    def combine(self, m, a, b):
        """Return the (combinational) term for operands ``a`` and ``b``."""
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        stages = self.latency
        if stages >= 2:
            a_reg = Signal.like(self.a, name="a_reg")
            b_reg = Signal.like(self.b, name="b_reg")
            m.d.sync += [a_reg.eq(a), b_reg.eq(b)]
            a, b = a_reg, b_reg
            stages -= 1
        value = Signal(signed(self.output_interval.width), name="term")
        m.d.comb += value.eq(self.combine(m, a, b))
        for i in range(stages):
            reg = Signal.like(value, name=f"term_d{i + 1}")
            m.d.sync += reg.eq(value)
            value = reg
        m.d.comb += self.p.eq(value)
        return m


class MultiplyPE(ProcessingElement):
    """``p = a * b``: one signed multiplier (a ``$mul`` cell, a DSP block on FPGAs)."""
    kind = "mul"

    def combine(self, m, a, b):
        return a * b


class AbsDiffPE(ProcessingElement):
    """``p = -|a - b|``: one subtractor and a conditional negation, no multiplier (AdderNet)."""
    kind = "adder"

    def combine(self, m, a, b):
        diff = Signal(signed(max(a.shape().width, b.shape().width) + 1), name="diff")
        m.d.comb += diff.eq(a - b)
        # -|diff|: diff itself when negative, its negation otherwise
        return Mux(diff[-1], diff, -diff)


PE_COMPONENTS = {cls.kind: cls for cls in (MultiplyPE, AbsDiffPE)}


def make_pe(kind, a_interval, b_interval, *, stages=0):
    """The PE component of ``kind`` (a name of :data:`winogen.gen.pe.PE_KINDS`)."""
    name = _pe_kind(kind).name
    if name not in PE_COMPONENTS:
        raise ValueError(f"pe must be one of {', '.join(PE_COMPONENTS)} in hardware, not {name!r}")
    return PE_COMPONENTS[name](a_interval, b_interval, stages=stages)


class PEArray(wiring.Component):
    """A row of independent PEs: ``p[i] = pe(a[i], b[i])``.

    Parameters
    ----------
    kind : str
        PE kind.
    a_intervals, b_intervals : list of Interval
        Per-element operand ranges (equal lengths).
    stages : int
        Register stages of every PE.

    Members
    -------
    a : In(ArrayLayout(signed(w_a), count))
    b : In(ArrayLayout(signed(w_b), count))
    p : Out(ArrayLayout(signed(w_p), count))
    output_intervals : list of Interval
    latency : int
    """

    def __init__(self, kind, a_intervals, b_intervals, *, stages=0):
        if len(a_intervals) != len(b_intervals) or not a_intervals:
            raise ValueError(f"a_intervals and b_intervals must be non-empty and of equal length, "
                             f"not {len(a_intervals)} and {len(b_intervals)}")
        self.kind = kind
        self.latency = _check_stages(stages)
        self.pes = [make_pe(kind, a, b, stages=stages) for a, b in zip(a_intervals, b_intervals)]
        self.output_intervals = [pe.output_interval for pe in self.pes]
        count = len(self.pes)
        super().__init__({
            "a": In(data.ArrayLayout(signed(max(iv.width for iv in a_intervals)), count)),
            "b": In(data.ArrayLayout(signed(max(iv.width for iv in b_intervals)), count)),
            "p": Out(data.ArrayLayout(signed(max(iv.width for iv in self.output_intervals)), count)),
        })

    def elaborate(self, platform):
        m = Module()
        for i, pe in enumerate(self.pes):
            m.submodules[f"pe{i}"] = pe
            m.d.comb += [pe.a.eq(self.a[i]), pe.b.eq(self.b[i]), self.p[i].eq(pe.p)]
        return m
