"""Processing-element kinds: the one seam every engine shares.

A processing element combines one transformed activation ``a`` with one
transformed weight ``b`` into a term ``p``; engines then sum terms (over the
Winograd domain's output transform, or over filter taps and channels). Each PE
kind defines the combine operation, its exact output range, the properties the
engines and models ask instead of branching on a kind's name, and the
configuration class that describes its engines. The hardware PE
(:mod:`winogen.hw.pe`) implements exactly this.

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
``"rns"``
    ``p = a * b mod m_i`` per modulus of a residue number system
    (:mod:`winogen.gen.rns`); its engines are described by
    :class:`~winogen.gen.rns.RNSTileConfig`.

A new kind is one :class:`PEKind` subclass passed to :func:`register_pe_kind`.
"""

import numpy as np


__all__ = ["PEKind", "MultiplyPE", "AbsDiffPE", "ModularMultiplyPE", "PE_KINDS", "pe_kind",
           "is_modular", "modular_kinds", "register_pe_kind", "unregister_pe_kind"]


class PEKind:
    """Arithmetic semantics of one processing-element kind.

    Members
    -------
    name : str
        The kind's CLI name.
    description : str
        One line for the CLI's help.
    uses_multiplier : bool
        Whether the hardware PE holds a multiplier (resource counts, ``dsp`` builds).
    bilinear : bool
        Whether ``combine`` is bilinear (``pe(0, b) == pe(a, 0) == 0`` and
        ``pe(s a, t b) == s t pe(a, b)``): engines may then fold scales into the
        transforms and zero unused lanes. A Winograd engine of a kind that is not
        bilinear uses integer transforms that remove no scale
        (:func:`~winogen.gen.addernet.integer_adder_transforms`).
    masks_lanes : bool
        Whether layer engines mask the PE terms of unused channel lanes to 0 (a zero
        input is not neutral); by default, for kinds that are not bilinear.
    modular : bool
        Whether the PE computes in residue rings (its engines carry residues, not
        binary values).
    weight_signed : bool
        Whether the stored weight elements are signed two's complement (else unsigned
        residues).
    """
    name = None
    description = ""
    uses_multiplier = False
    bilinear = True
    modular = False

    @property
    def masks_lanes(self):
        return not self.bilinear

    @property
    def weight_signed(self):
        return not self.modular

    @property
    def config_class(self):
        """The tile configuration class of this kind's engines (:class:`~winogen.gen.config.TileConfig`)."""
        from .config.tile import TileConfig
        return TileConfig

    def combine(self, a, b):
        """The exact term of each PE for NumPy integer arrays ``a`` and ``b``."""
        raise NotImplementedError

    def output_interval(self, a, b):
        """The exact range of :meth:`combine` for ``a`` in one Interval and ``b`` in another."""
        raise NotImplementedError

    def golden_conv2d(self, tile, x, w, padding):
        """The exact layer output of this kind for ``x`` (C_in, H, W), ``w`` (C_out, C_in, r, r).

        Before any kept scale or requantization. By default the correlation summed of
        :meth:`combine` terms, padded zeros entering the PEs as data.
        """
        from .models import pad_input
        xp = pad_input(np.asarray(x), padding)
        r = w.shape[-1]
        windows = np.lib.stride_tricks.sliding_window_view(xp, (r, r), axis=(-2, -1))
        # windows: (C_in, H', W', r, r); w: (C_out, C_in, r, r)
        terms = self.combine(windows[None], w[:, :, None, None])
        return terms.sum(axis=(1, 4, 5))

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

    def golden_conv2d(self, tile, x, w, padding):
        from .models import direct_conv2d, winograd_conv2d
        if tile.algorithm == "winograd" and not tile.toomcook.exact:
            # Approximate transforms are not a convolution: their result depends on where
            # each output lies in its tile, so the model tiles the layer as the engine does
            # (from the padded map's origin, stride m) and floors the division by D².
            return winograd_conv2d(x, w, tile.toomcook, padding=padding)
        return direct_conv2d(x, w, padding=padding)


class AbsDiffPE(PEKind):
    name = "adder"
    uses_multiplier = False
    bilinear = False
    description = "negated absolute difference, p = -|a - b| (AdderNet)"

    def combine(self, a, b):
        return -np.abs(np.asarray(a) - np.asarray(b))

    def output_interval(self, a, b):
        return -(a - b).abs()

    def golden_conv2d(self, tile, x, w, padding):
        from .addernet import adder_direct_conv2d, adder_winograd_conv2d
        if tile.algorithm == "winograd":
            return adder_winograd_conv2d(x, w, tile.adder_matrices, padding=padding)[0]
        return adder_direct_conv2d(x, w, padding=padding)


class ModularMultiplyPE(MultiplyPE):
    """``p = a * b mod m_i``: one modular multiplier per modulus of a residue number system.

    :meth:`combine` and :meth:`output_interval` are the integer product whose residues
    the PEs hold; the engines reconstruct the exact correlation, so the golden model is
    the multiplier's.
    """
    name = "rns"
    modular = True
    description = "modular multiplier per residue channel, p = a * b mod m (RNS)"

    @property
    def config_class(self):
        from .rns.config import RNSTileConfig
        return RNSTileConfig


PE_KINDS = {kind.name: kind for kind in (MultiplyPE(), AbsDiffPE(), ModularMultiplyPE())}


def register_pe_kind(kind):
    """Add ``kind`` (a :class:`PEKind` instance) to :data:`PE_KINDS`; returns it.

    Its ``name`` must be a new identifier. The configurations, golden models and
    engines then accept ``pe=kind.name`` (the hardware needs its component registered
    beside it, see :mod:`winogen.hw.pe`).
    """
    if not isinstance(kind, PEKind):
        raise TypeError(f"kind must be a PEKind instance, not {kind!r}")
    if not (isinstance(kind.name, str) and kind.name.isidentifier()):
        raise ValueError(f"kind.name must be an identifier, not {kind.name!r}")
    if kind.name in PE_KINDS:
        raise ValueError(f"kind.name must be a new PE kind, not {kind.name!r} (registered)")
    PE_KINDS[kind.name] = kind
    return kind


def unregister_pe_kind(name):
    """Remove the kind called ``name`` from :data:`PE_KINDS` (tests that register a toy kind)."""
    if name not in PE_KINDS:
        raise ValueError(f"name must be a registered PE kind, not {name!r}")
    del PE_KINDS[name]


def pe_kind(name):
    """The :class:`PEKind` called ``name``."""
    if isinstance(name, PEKind):
        return name
    if not isinstance(name, str) or name not in PE_KINDS:
        raise ValueError(f"pe must be one of {', '.join(PE_KINDS)}, not {name!r}")
    return PE_KINDS[name]


def is_modular(name):
    """Whether ``name`` is a registered PE kind that computes in residue rings
    (:attr:`PEKind.modular`); ``False`` for any other value (an unknown name, ``None``)."""
    kind = PE_KINDS.get(name) if isinstance(name, str) else name if isinstance(name, PEKind) \
        else None
    return bool(kind is not None and kind.modular)


def modular_kinds():
    """The names of the registered modular PE kinds (those the RNS options apply to), in
    registration order."""
    return tuple(name for name, kind in PE_KINDS.items() if kind.modular)
