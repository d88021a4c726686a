"""Processing elements: the swappable seam of every engine.

A PE takes one transformed activation ``a`` and one transformed weight ``b``
and produces one term ``p``, exactly as :mod:`winogen.gen.pe` defines for its
kind; engines sum the terms. Every PE kind has the same ports and parameters,
so every engine works with every kind:

=========  ========================================
``a``      ``In(signed(w_a))``
``b``      ``In(signed(w_b))``
``p``      ``Out(signed(w_p))``, ``latency`` cycles later
``en``     ``In(1, init=1)``: advance the registers
=========  ========================================

PEs are free-running pipelines. Engines stall them with ``EnableInserter`` and
also drive ``en``, which reaches the registers inside vendor primitives (an
``Instance`` is beyond ``EnableInserter``'s reach).

Multiplying PEs come in three builds (``TileConfig.dsp``): ``"inferred"`` writes
``a * b`` for any flow; ``"ecp5"`` instantiates a MULT18X18D whose own registers
hold the PE's stages (:mod:`winogen.hw.ecp5`); ``"nexus"`` a Lattice Nexus MULT9X9 or
MULT18X18 the same way (:mod:`winogen.hw.nexus`). :data:`VENDOR_PE_COMPONENTS` maps a
build to its PE class.
"""

from amaranth.hdl import Mux, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..gen.config import DSP_PRIMITIVES
from ..gen.pe import pe_kind as _pe_kind
from .ecp5 import MULT18X18D_WIDTH, mult18x18d
from .nexus import NEXUS_MULT_WIDTH, nexus_mult
from .util import check_interval, check_stages, delay

__all__ = ["ProcessingElement", "MultiplyPE", "ECP5MultiplyPE", "NexusMultiplyPE", "AbsDiffPE",
           "PE_COMPONENTS", "VENDOR_PE_COMPONENTS", "pe_component", "register_pe_component",
           "make_pe", "PEArray"]


#: Name of a PE's term and (with a suffix ``_d<k>``) of its result registers.
_TERM = "term"


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
    en : In(1, init=1)
        Clock enable of the PE's registers.
    output_interval : Interval
    latency : int
    """
    kind = None

    def __init__(self, a_interval, b_interval, *, stages=0):
        self.a_interval = check_interval("a_interval", a_interval)
        self.b_interval = check_interval("b_interval", b_interval)
        self.latency = check_stages(stages)
        self.output_interval = _pe_kind(self.kind).output_interval(a_interval, b_interval)
        super().__init__({
            "a": In(signed(a_interval.width)),
            "b": In(signed(b_interval.width)),
            "p": Out(signed(self.output_interval.width)),
            "en": In(1, init=1),
        })

    def combine(self, m, a, b):
        """Return the (combinational) term for operands ``a`` and ``b``."""
        raise NotImplementedError

    @classmethod
    def output_register(cls, stages):
        """Name of the register holding the term ``p`` (its last register), or ``None``
        when no register of the fabric holds it (``stages`` 0, or inside a primitive).

        Follows :meth:`elaborate`'s placement: a fault campaign flips this register."""
        stages = check_stages(stages)
        trailing = stages - (stages >= 2)          # the operand registers come first
        return f"{_TERM}_d{trailing}" if trailing else None

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        stages = self.latency
        if stages >= 2:
            a_reg = Signal.like(self.a, name="a_reg")
            b_reg = Signal.like(self.b, name="b_reg")
            with m.If(self.en):
                m.d.sync += [a_reg.eq(a), b_reg.eq(b)]
            a, b = a_reg, b_reg
            stages -= 1
        value = Signal(signed(self.output_interval.width), name=_TERM)
        m.d.comb += value.eq(self.combine(m, a, b))
        m.d.comb += self.p.eq(delay(m, value, stages, _TERM, reset_less=False, enable=self.en))
        return m


class MultiplyPE(ProcessingElement):
    """``p = a * b``: one signed multiplier (a ``$mul`` cell, a DSP block on FPGAs)."""
    kind = "mul"

    def combine(self, m, a, b):
        return a * b


class _VendorMultiplyPE(MultiplyPE):
    """``p = a * b`` on a vendor multiplier block with the PE's registers inside it.

    Two or more stages use the block's input and output registers; one stage, the
    output register; further stages trail in the fabric. The latency is that of
    :class:`MultiplyPE`. Subclasses name the block's operand limit and builder.
    """
    max_width = None
    block_name = None

    def __init__(self, a_interval, b_interval, *, stages=0):
        super().__init__(a_interval, b_interval, stages=stages)
        for name, iv in (("a_interval", a_interval), ("b_interval", b_interval)):
            if iv.width > self.max_width:
                raise ValueError(f"{name} must fit a {self.max_width}-bit {self.block_name} "
                                 f"operand, not {iv.width} bits wide ({iv})")

    @staticmethod
    def _block_registers(stages):
        """The block registers used for ``stages`` (an ECP5 block's pipeline register is
        left out, see :meth:`elaborate`)."""
        return {0: (), 1: ("output",)}.get(stages, ("input", "output"))

    @classmethod
    def output_register(cls, stages):
        # Only registers after the block are in the fabric (and in the Verilog as regs).
        stages = check_stages(stages)
        used = len(cls._block_registers(stages))
        return f"{_TERM}_d{stages}" if stages > used else None

    def block(self, m, registers):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        # A further stage does more good as a fabric register next to the adders the
        # product feeds (the route out of the DSP slice is long) than as a block's
        # pipeline register.
        used = self._block_registers(self.latency)
        product = self.block(m, used)
        m.d.comb += self.p.eq(delay(m, product, self.latency - len(used), _TERM,
                                    reset_less=False, enable=self.en, first=len(used) + 1))
        return m


class ECP5MultiplyPE(_VendorMultiplyPE):
    """``p = a * b`` on an ECP5 MULT18X18D with the PE's registers inside the block."""
    max_width = MULT18X18D_WIDTH
    block_name = "MULT18X18D"

    def block(self, m, registers):
        return mult18x18d(m, self.a, self.b, registers=registers, enable=self.en)


class NexusMultiplyPE(_VendorMultiplyPE):
    """``p = a * b`` on a Nexus MULT9X9 (both operands within 9 bits) or MULT18X18, with
    the PE's registers inside the block."""
    max_width = NEXUS_MULT_WIDTH
    block_name = "MULT18X18"

    def block(self, m, registers):
        return nexus_mult(m, self.a, self.b, registers=registers, enable=self.en)


class AbsDiffPE(ProcessingElement):
    """``p = -|a - b|``: one subtractor and a conditional negation, no multiplier (AdderNet)."""
    kind = "adder"

    def combine(self, m, a, b):
        diff = Signal(signed(max(a.shape().width, b.shape().width) + 1), name="diff")
        m.d.comb += diff.eq(a - b)
        # -|diff|: diff itself when negative, its negation otherwise
        return Mux(diff[-1], diff, -diff)


#: The registry of PE components: kind name -> :class:`ProcessingElement` subclass.
#: ``rns`` is not here: its modular PE (:class:`winogen.hw.rns.ModMulPE`) takes a
#: modulus and is built by the RNS engines themselves.
PE_COMPONENTS = {cls.kind: cls for cls in (MultiplyPE, AbsDiffPE)}
#: Vendor builds of the multiplying PE: ``TileConfig.dsp`` -> class.
VENDOR_PE_COMPONENTS = {"ecp5": ECP5MultiplyPE, "nexus": NexusMultiplyPE}


def pe_component(kind, dsp="inferred"):
    """The PE class an engine of PE ``kind`` and build ``dsp`` instantiates."""
    return VENDOR_PE_COMPONENTS.get(dsp) or PE_COMPONENTS[_pe_kind(kind).name]


def register_pe_component(cls):
    """Register ``cls`` (a :class:`ProcessingElement` subclass) as the hardware of the PE
    kind ``cls.kind``, which must be registered in :mod:`winogen.gen.pe`; returns ``cls``.

    Usable as a class decorator. Registering the same class again is a no-op.
    """
    if not (isinstance(cls, type) and issubclass(cls, ProcessingElement)):
        raise TypeError(f"cls must be a ProcessingElement subclass, not {cls!r}")
    name = _pe_kind(cls.kind).name          # refuses a kind gen/ does not know
    if PE_COMPONENTS.get(name, cls) is not cls:
        raise ValueError(f"cls.kind must be a PE kind without a component, not {name!r} "
                         f"(built by {PE_COMPONENTS[name].__name__})")
    PE_COMPONENTS[name] = cls
    return cls


def make_pe(kind, a_interval, b_interval, *, stages=0, dsp="inferred"):
    """The PE component of ``kind`` (a name of :data:`winogen.gen.pe.PE_KINDS`).

    ``dsp`` (:data:`~winogen.gen.config.DSP_PRIMITIVES`) picks how a multiplying
    kind is built; other kinds have one build.
    """
    name = _pe_kind(kind).name
    if name not in PE_COMPONENTS:
        raise ValueError(f"pe must be one of {', '.join(PE_COMPONENTS)} in hardware, not {name!r}")
    if dsp not in DSP_PRIMITIVES:
        raise ValueError(f"dsp must be one of {', '.join(DSP_PRIMITIVES)}, not {dsp!r}")
    if dsp in VENDOR_PE_COMPONENTS:
        if name != MultiplyPE.kind:
            raise ValueError(f"dsp={dsp!r} applies to multiplying PEs (pe='mul'), not pe={name!r}")
        return VENDOR_PE_COMPONENTS[dsp](a_interval, b_interval, stages=stages)
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
    dsp : str
        Build of multiplying PEs (see :func:`make_pe`).

    Members
    -------
    a : In(ArrayLayout(signed(w_a), count))
    b : In(ArrayLayout(signed(w_b), count))
    p : Out(ArrayLayout(signed(w_p), count))
    en : In(1, init=1)
        Clock enable of every PE.
    output_intervals : list of Interval
    latency : int
    """

    def __init__(self, kind, a_intervals, b_intervals, *, stages=0, dsp="inferred"):
        if len(a_intervals) != len(b_intervals) or not a_intervals:
            raise ValueError(f"a_intervals and b_intervals must be non-empty and of equal length, "
                             f"not {len(a_intervals)} and {len(b_intervals)}")
        self.kind = kind
        self.latency = check_stages(stages)
        self.pes = [make_pe(kind, a, b, stages=stages, dsp=dsp)
                    for a, b in zip(a_intervals, b_intervals)]
        self.output_intervals = [pe.output_interval for pe in self.pes]
        count = len(self.pes)
        super().__init__({
            "a": In(data.ArrayLayout(signed(max(iv.width for iv in a_intervals)), count)),
            "b": In(data.ArrayLayout(signed(max(iv.width for iv in b_intervals)), count)),
            "p": Out(data.ArrayLayout(signed(max(iv.width for iv in self.output_intervals)), count)),
            "en": In(1, init=1),
        })

    @staticmethod
    def pe_name(i):
        """Submodule name of PE ``i``."""
        return f"pe{i}"

    def elaborate(self, platform):
        m = Module()
        for i, pe in enumerate(self.pes):
            m.submodules[self.pe_name(i)] = pe
            m.d.comb += [pe.a.eq(self.a[i]), pe.b.eq(self.b[i]), self.p[i].eq(pe.p),
                         pe.en.eq(self.en)]
        return m
