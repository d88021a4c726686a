"""Residue number system (RNS) Winograd tile engine.

One residue channel per modulus ``m_i`` of an :class:`~winogen.gen.rns.RNSTileConfig`
computes, in narrow modular arithmetic,

* ``V_i = Bᵀ d B mod m_i``: by default the exact binary ``V`` is computed once
  (:class:`~winogen.hw.constmat.ConstTransform2D`, shared) and forward converted
  into each channel (:func:`reduce_into`, or with ``forward_reduction="partial"``
  only folded into an 18-bit operand, :func:`fold_into`); with ``input_transform="residue"``
  ``d`` is forward converted and each channel runs :class:`ModTransform2D`
  (CSD shift-add trees of cheap residue constants, one reduction per output),
* ``P_i = U_i ⊙ V_i mod m_i`` with ``n²`` modular multipliers (:class:`ModMulPE`,
  a :class:`~winogen.hw.pe.ProcessingElement`), ``U_i`` streamed in
  offline-transformed residue form,
* optionally ``Σ_c P_i[c] mod m_i`` over input channels,
* ``Y_i = A_iᵀ P_i A_i mod m_i``;

then a mixed-radix converter per output element (:class:`MixedRadixConverter`)
turns the residues into signed binary, checks the redundant modulus if there is
one, and (method ``"scaled"``) :class:`~winogen.hw.constmat.ExactDivider` removes
``D²``. Every constant, range and width comes from :mod:`winogen.gen.rns`.

Reductions never assume their residue inputs are canonical: each block accepts
every value its ports can carry (``residue_port_interval``) and reduces it
exactly. A fault in one channel's register therefore stays a (wrong) residue of
that channel, which is what the redundant-modulus check needs to catch every
single-channel fault.

Modules
-------
:mod:`.arith` (reductions, :class:`ModReduce`, :class:`ModMulPE`, :class:`ModTransform2D`),
:mod:`.converter` (forward conversion of a tile, :class:`MixedRadixConverter`, reverse
conversion), :mod:`.tile` (:class:`RNSTile`), :mod:`.manifest` (the ``rns`` manifest
section, the tile manifest, generation), :mod:`.layer` (the layer engine ``RNSConv`` and
its core ``RNSCore``, imported on first use).
"""

from .arith import ModMulPE, ModReduce, ModTransform2D, fold_into, forward_convert, reduce_into
from .converter import MixedRadixConverter, converter_cuts, residue_inputs, reverse_convert
from .manifest import generate_rns_tile, rns_manifest_section, rns_tile_manifest
from .tile import RNSTile

__all__ = ["reduce_into", "fold_into", "forward_convert", "ModReduce", "ModTransform2D", "ModMulPE",
           "MixedRadixConverter", "converter_cuts", "residue_inputs", "reverse_convert", "RNSTile",
           "rns_manifest_section", "rns_tile_manifest", "generate_rns_tile", "RNSCore", "RNSConv"]


def __getattr__(name):
    # The layer engine builds on winogen.hw.layer, which imports this package's blocks.
    if name in ("RNSCore", "RNSConv"):
        from . import layer
        return getattr(layer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
