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
    """
    name = None
    uses_multiplier = False
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


PE_KINDS = {kind.name: kind for kind in (MultiplyPE(),)}


def pe_kind(name):
    """The :class:`PEKind` called ``name``."""
    if isinstance(name, PEKind):
        return name
    if name not in PE_KINDS:
        raise ValueError(f"pe must be one of {', '.join(PE_KINDS)}, not {name!r}")
    return PE_KINDS[name]
