"""A toy PE kind defined only here: ``p = max(a, b)``, its arithmetic and its component.

Imported by ``test_new_pe_kind.py`` (pytest process) and by ``tb_toy_pe.py`` (the
simulator's Python), each of which calls :func:`register` before building or loading
a configuration of kind ``"toymax"``. Nothing in ``gen/``, ``hw/``, ``sim/`` or the CLI
names it.
"""

import numpy as np
from amaranth.hdl import Mux

from winogen.gen.bounds import Interval
from winogen.gen.pe import PE_KINDS, PEKind, register_pe_kind
from winogen.hw import pe as hw_pe

NAME = "toymax"


class ToyMaxKind(PEKind):
    """``p = max(a, b)``: not bilinear (``max(0, b)`` is not 0), no multiplier."""
    name = NAME
    bilinear = False
    description = "toy: p = max(a, b)"

    def combine(self, a, b):
        return np.maximum(np.asarray(a), np.asarray(b))

    def output_interval(self, a, b):
        return Interval(max(a.lo, b.lo), max(a.hi, b.hi))


class ToyMaxComponent(hw_pe.ProcessingElement):
    """The hardware of :class:`ToyMaxKind`: one comparison and a multiplexer."""
    kind = NAME

    def combine(self, m, a, b):
        return Mux(a > b, a, b)


def register():
    """Register the kind and its component (idempotent: once per process)."""
    if NAME not in PE_KINDS:
        register_pe_kind(ToyMaxKind())
    hw_pe.register_pe_component(ToyMaxComponent)
