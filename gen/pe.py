"""Processing-element arithmetic: the one seam every engine shares.

A processing element combines one transformed activation ``a`` with one
transformed weight ``b`` into a term ``p``; engines then sum terms (over the
Winograd domain's output transform, or over filter taps and channels). Each PE
kind defines the combine operation, its exact output range, and its name in
hardware. The hardware PE (:mod:`winogen.hw.pe`) implements exactly this.

Kinds
-----
``"mul"``
    ``p = a * b`` — the multiply-accumulate engines.
``"adder"``
    ``p = -|a - b|`` — AdderNet (Chen et al., 2020): engines sum negated
    absolute differences instead of products. Not bilinear: ``pe(0, b)`` is
    ``-|b|``, not 0, and scaling an operand does not scale the term, so an
    engine can neither remove a Winograd scale by dividing the result nor
    treat zero inputs as neutral.
"""

import numpy as np

from .bounds import Interval

__all__ = ["PEKind", "PE_KINDS", "pe_kind"]


class PEKind:
    """Arithmetic semantics of one processing-element kind.

    Members
    -------
    name : str
        The kind's CLI name.
    uses_multiplier : bool
        Whether the hardware PE holds a multiplier.
    bilinear : bool
        Whether ``combine`` is bilinear (``pe(0, b) == pe(a, 0) == 0`` and
        ``pe(s a, t b) == s t pe(a, b)``): engines may then fold scales into the
        transforms and zero unused lanes.
    """
    name = None
    uses_multiplier = False
    bilinear = True
    description = ""

    def combine(self, a, b):
        """The exact term of each PE for NumPy integer arrays ``a`` and ``b``."""
        raise NotImplementedError

    def output_interval(self, a, b):
        """The exact range of :meth:`combine` for ``a`` in one Interval and ``b`` in another."""
        raise NotImplementedError

    def __repr__(self):
        return f"PEKind({self.name!r})"


class MultiplyPE(PEKind):
    name = "mul"
    uses_multiplier = True
    description = "signed multiplier, p = a * b"

    def combine(self, a, b):
        return np.asarray(a) * np.asarray(b)

    def output_interval(self, a, b):
        return a * b


class AbsDiffPE(PEKind):
    name = "adder"
    uses_multiplier = False
    bilinear = False
    description = "negated absolute difference, p = -|a - b| (AdderNet)"

    def combine(self, a, b):
        return -np.abs(np.asarray(a) - np.asarray(b))

    def output_interval(self, a, b):
        return -(a - b).abs()


PE_KINDS = {kind.name: kind for kind in (MultiplyPE(), AbsDiffPE())}


def pe_kind(name):
    """The :class:`PEKind` called ``name``."""
    if isinstance(name, PEKind):
        return name
    if name not in PE_KINDS:
        raise ValueError(f"pe must be one of {', '.join(PE_KINDS)}, not {name!r}")
    return PE_KINDS[name]
