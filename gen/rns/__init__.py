"""Residue number system (RNS) arithmetic for exact large-tile Winograd.

After Liu & Mattina, "Efficient Residue Number System Based Winograd
Convolution" (ECCV 2020). Large tiles such as F(10,3) or F(14,3) are useless in
floating point and need very wide integers in binary, because their transforms
grow quickly. In an RNS with pairwise coprime moduli ``m_1 … m_k`` an integer
``x`` is carried as its residues ``x mod m_i``; additions and multiplications
run independently and narrowly per modulus, and the Chinese remainder theorem
(CRT) recovers ``x`` uniquely within the dynamic range of ``M = Π m_i``.

Conventions
-----------
* The dynamic range is signed: ``[-⌊M/2⌋, ⌈M/2⌉ - 1]``. A negative ``x`` is
  represented by ``x mod M`` (``M + x``), so residues are always in ``[0, m_i)``.
* Reduction mod ``m_i`` is a ring homomorphism, so intermediate values may
  wrap freely: only the *final* value must lie in the dynamic range. That is
  why :func:`required_range` bounds the result, not the transform stages.
* Residue arrays put the modulus axis first: shape ``(k,) + x.shape``.

Modules: :mod:`.moduli` (sets, presets, automatic choice), :mod:`.convert` (to and
from residues: CRT, mixed radix), :mod:`.ranges`, :mod:`.transforms`,
:mod:`.reduction` (hardware reduction plans), :mod:`.config`
(:class:`RNSTileConfig`) and :mod:`.model` (golden models, :class:`RNSTileModel`).
Every public name is re-exported here.

Two ways to map a Winograd algorithm into the residue rings (``method``):

``"scaled"``
    The integer matrices of :meth:`ToomCook.hardware` reduced mod each
    modulus. The RNS then computes ``D² Y`` (``D`` per dimension), which is
    reverse converted and divided by ``D²`` exactly. Works with any moduli
    (powers of two and ``2ᵏ ± 1`` included) but ``D²`` widens the range.
``"inverse"``
    Each rational entry ``a/b`` becomes ``a · b⁻¹ mod m_i``. The RNS computes
    ``Y`` itself, so the range is the plain correlation range, but every
    denominator must be invertible mod every modulus (odd moduli without the
    small primes of the points: no ``2ᵏ``, no ``255 = 3·5·17``).
"""

from .common import BOUNDS, METHODS
from .config import (FORWARD_REDUCTIONS, INPUT_TRANSFORMS, MAX_MODULUS, PARTIAL_OPERAND_WIDTH,
                     RNS_METHODS, RNSTileConfig)
from .convert import (converter_levels, from_residues_crt, from_residues_mrc, mixed_radix_digits,
                      to_residues)
from .model import RNSTileModel, rns_winograd_conv2d, rns_winograd_tile
from .moduli import (AUTO_WIDTHS, MODULI_PRESETS, ModuliSet, auto_moduli_candidates,
                     auto_moduli_width, is_special, moduli_preset, reduction_cost, select_moduli)
from .ranges import check_range, required_range, result_range
from .reduction import (FoldStep, ReductionPlan, plan_reduction, residue_constant,
                        residue_port_interval, residue_width)
from .transforms import RNSTransforms, rns_transforms

__all__ = ["ModuliSet", "MODULI_PRESETS", "moduli_preset", "is_special", "METHODS", "BOUNDS",
           "to_residues", "from_residues_crt", "from_residues_mrc", "mixed_radix_digits",
           "check_range", "required_range", "result_range", "RNSTransforms", "rns_transforms",
           "rns_winograd_tile", "rns_winograd_conv2d", "residue_width", "residue_port_interval",
           "residue_constant", "FoldStep", "ReductionPlan", "plan_reduction", "RNS_METHODS",
           "RNSTileConfig", "RNSTileModel", "AUTO_WIDTHS", "auto_moduli_width", "reduction_cost",
           "auto_moduli_candidates", "select_moduli", "FORWARD_REDUCTIONS",
           "PARTIAL_OPERAND_WIDTH", "converter_levels", "INPUT_TRANSFORMS", "MAX_MODULUS"]
