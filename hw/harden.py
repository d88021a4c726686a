"""Hardened blocks: a block replicated behind one interface (``tmr``: majority vote,
``dmr``: compare), for the selective hardening of :mod:`winogen.gen.harden`.

:class:`Replicated` builds ``copies`` instances of a block from a factory, feeds them the
same inputs and presents the block's own signature. ``tmr``: every output is the bitwise
majority of the three copies' outputs (combinational, after the copies' output
registers), so a fault in any one copy's registers is outvoted. ``dmr``: the outputs are
the first copy's, and ``mismatch`` is high while any output of the two copies differs.

Synthesis would merge identical copies (Yosys's ``opt_merge``, Vivado's equivalent
register removal). Each copy is therefore its own module, named ``redundant_copy<k>``,
and :func:`winogen.hw.emit.emit_verilog` marks those modules ``keep_hierarchy`` and
``dont_touch`` in the Verilog.
"""

from amaranth.hdl import Cat, Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..gen.harden import COPIES, HARDEN_SCHEMES

__all__ = ["Replicated", "COPY_PREFIX", "harden_block"]

#: Submodule name prefix of the copies (their Verilog modules end in it plus the index).
COPY_PREFIX = "redundant_copy"


class Replicated(wiring.Component):
    """``COPIES[scheme]`` copies of ``factory()`` behind the block's signature.

    Parameters
    ----------
    factory : callable
        Returns a new block (a :class:`wiring.Component` whose members are flat ``In`` and
        ``Out`` ports).
    scheme : str
        ``"tmr"`` or ``"dmr"``.

    Members
    -------
    the block's members
    mismatch : Out(1)
        ``dmr`` only: an output of the two copies differs.

    Other attributes (``latency``, ``output_intervals``, ...) are the first copy's.
    """

    def __init__(self, factory, scheme):
        if scheme not in HARDEN_SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(HARDEN_SCHEMES)}, not {scheme!r}")
        copies = [factory() for _ in range(COPIES[scheme])]
        self.__dict__["copies"] = copies
        self.scheme = scheme
        members = dict(copies[0].signature.members)
        if "mismatch" in members:
            raise ValueError("the block already has a member named mismatch")
        if scheme == "dmr":
            members["mismatch"] = Out(1)
        super().__init__(members)

    def __getattr__(self, name):
        # Only reached for what the component itself lacks: the block's own attributes.
        copies = self.__dict__.get("copies")
        if copies is None or name.startswith("__") or name in copies[0].signature.members:
            raise AttributeError(name)
        return getattr(copies[0], name)

    def elaborate(self, platform):
        m = Module()
        copies = self.copies
        for k, block in enumerate(copies):
            m.submodules[f"{COPY_PREFIX}{k}"] = block
        outputs = []
        for name, member in copies[0].signature.members.items():
            mine = getattr(self, name)
            if member.flow == In:
                for block in copies:
                    m.d.comb += getattr(block, name).eq(mine)
            else:
                outputs.append(name)
        differ = []
        for name in outputs:
            values = [Value.cast(getattr(block, name)) for block in copies]
            mine = Value.cast(getattr(self, name))
            if self.scheme == "tmr":
                a, b, c = values
                m.d.comb += mine.eq((a & b) | (a & c) | (b & c))
            else:
                m.d.comb += mine.eq(values[0])
                differ.append(values[0] != values[1])
        if self.scheme == "dmr":
            m.d.comb += self.mismatch.eq(Cat(*differ).any() if differ else 0)
        return m


def harden_block(config, site, factory):
    """``factory()``, replicated if ``config.harden`` hardens ``site``; and its scheme."""
    scheme = dict(getattr(config, "harden", ())).get(site)
    if scheme is None:
        return factory(), None
    return Replicated(factory, scheme), scheme
