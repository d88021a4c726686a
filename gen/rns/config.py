"""The RNS tile engine's configuration."""

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
import numbers

from ..bounds import Interval, transform_intervals
from ..checks import check_choice, check_int
from ..config.base import TileConfigBase
from .common import METHODS
from .convert import converter_levels
from .moduli import ModuliSet, _as_moduli, auto_moduli_width, select_moduli
from .ranges import _need, result_range
from .reduction import plan_reduction, residue_port_interval, residue_width
from .transforms import _inverse_ok, rns_transforms

__all__ = ["RNSTileConfig", "RNS_METHODS", "FORWARD_REDUCTIONS", "PARTIAL_OPERAND_WIDTH",
           "INPUT_TRANSFORMS", "MAX_MODULUS"]


RNS_METHODS = ("auto",) + METHODS

#: Where ``V = Bᵀ d B`` is computed (``RNSTileConfig.input_transform``).
INPUT_TRANSFORMS = ("binary", "residue")

#: Largest modulus of an RNS engine: residues of at most 18 bits, the operand port of one
#: DSP multiplier (as :data:`PARTIAL_OPERAND_WIDTH`). It also keeps every model exact in
#: int64, and the channel sums of :func:`~winogen.gen.rns.rns_winograd_conv2d` exact in
#: float64 (4096 channels of (2¹⁸)² products stay below 2⁵³).
MAX_MODULUS = 1 << 18


#: How the binary ``V`` enters each residue channel (``RNSTileConfig.forward_reduction``).
FORWARD_REDUCTIONS = ("full", "partial")


#: Signed operand width of a partially reduced ``V``: the 18-bit DSP multiplier port
#: (ECP5 MULT18X18D, Xilinx DSP48 B), so a wider operand still takes one DSP block.
PARTIAL_OPERAND_WIDTH = 18


@dataclass(frozen=True)
class RNSTileConfig(TileConfigBase):
    """An RNS Winograd tile engine: the one object behind its model, hardware, manifest and tests.

    Every residue channel (one per modulus) computes ``V = Bᵀ d B``,
    ``P = U ⊙ V`` (modular multipliers), optionally ``Σ_c P_c`` over
    ``channels`` input channels, and ``Aᵀ P A``, all mod its modulus; a
    mixed-radix converter turns the residues back into signed binary, and
    method ``"scaled"`` divides the known scale ``D²`` out exactly.

    Parameters
    ----------
    m, r : int
        Output tile and filter size; ``n = m + r - 1 <= 16``.
    data_width, weight_width : int
        Signed widths of activations and weights, 2 to 16.
    moduli : str or sequence of int
        A preset name of :data:`MODULI_PRESETS`, pairwise coprime moduli, or
        ``"auto"`` / ``"auto-BITS"``: the fewest, cheapest 8-bit (``BITS``-bit)
        primes that cover this engine's result range, plus the redundant ones
        (:func:`select_moduli`); the resolved tuple is stored. The last
        ``redundant_moduli`` of them are redundant.
    method : str
        ``"scaled"``, ``"inverse"`` (see :func:`rns_transforms`) or
        ``"auto"``: ``"inverse"`` when every denominator is invertible
        modulo every modulus (the smaller range), else ``"scaled"``.
    redundant_moduli : int
        0 or 1. With 1, the engine checks each output tile: the value
        reconstructed from all moduli must lie in the exact result range
        (the redundant digit agrees with the reduced-set value), else the
        ``error`` flag rises. Any fault confined to one residue channel is
        then detected, and a tile without the flag is exact.
    channels : int
        Input channels accumulated (mod each modulus, in the Winograd domain)
        per output tile, 1 to 4096 (the tile engine holds that many filters
        in registers; a layer engine's ``max_cin``).
    input_transform : str
        ``"binary"`` (default): ``V = Bᵀ d B`` is computed once, exactly, in
        binary (the integer ``Bᵀ`` whose residues the channels use, see
        :attr:`input_matrix`), and each channel's forward converter reduces
        ``V`` modulo its modulus; every channel shares the adder trees.
        ``"residue"``: ``d`` is forward converted first and each channel
        computes ``B_iᵀ d_i B_i mod m_i`` with its own residue constants.
    forward_reduction : str
        With the binary input transform: ``"full"`` (default) reduces every ``V``
        element to its canonical residue, so the multipliers are ``b × b``-bit
        (``b`` the residue width); ``"partial"`` only folds it
        (:meth:`ReductionPlan.partial`) until it fits
        :data:`PARTIAL_OPERAND_WIDTH` signed bits, one DSP port, and the PE reduces
        the wider product: each forward converter shrinks to at most a fold or two
        while the multipliers widen to that operand (see :attr:`pe_a_intervals`) and the
        PEs reduce wider products (see the README for the measured trade-off).
    points, preset : optional
        Interpolation points, as for :class:`~winogen.gen.config.TileConfig`.
    input_stages, pe_stages, accumulate_stages, output_stages, convert_stages, descale_stages : int
        Register stages of each block (0 to 8; ``accumulate_stages`` is 1
        when ``channels > 1`` and ignored otherwise). ``convert_stages`` is
        at most :func:`converter_levels` (``2k`` for ``k`` moduli); the default,
        ``None``, registers every level (:attr:`converter_latency`). ``pe_stages``
        defaults to 3, one more than a binary engine's PE: the product register
        between the residue multiplier and its reduction.
    name : str, optional
        Verilog module name.
    """
    moduli: object = "8bit-primes-4"
    method: str = "auto"
    redundant_moduli: int = 0
    channels: int = 1
    input_transform: str = "binary"
    forward_reduction: str = "full"
    points: object = None
    preset: str = "default"
    input_stages: int = 2
    pe_stages: int = 3
    output_stages: int = 2
    convert_stages: object = None
    descale_stages: int = 1
    name: str = None

    STAGES = ("input_stages", "pe_stages", "output_stages", "descale_stages")
    JSON_KEYS = frozenset({"moduli"})

    def __post_init__(self):
        self._validate_common()
        check_choice("method", self.method, RNS_METHODS)
        self._set("redundant_moduli", check_int("redundant_moduli", self.redundant_moduli, 0, 1))
        self._set("channels", check_int("channels", self.channels, 1, 4096))
        self._resolve_moduli()
        check_choice("input_transform", self.input_transform, INPUT_TRANSFORMS)
        check_choice("forward_reduction", self.forward_reduction, FORWARD_REDUCTIONS)
        if self.forward_reduction == "partial" and self.input_transform != "binary":
            raise ValueError("forward_reduction 'partial' needs input_transform 'binary' (the "
                             "residue-domain transform outputs canonical residues), "
                             f"not {self.input_transform!r}")
        k = len(self.moduli)
        if self.redundant_moduli >= k:
            raise ValueError(f"redundant_moduli must leave at least one non-redundant modulus, "
                             f"not {self.redundant_moduli} of {k} moduli {list(self.moduli)}")
        if self.convert_stages is not None:
            levels = converter_levels(k)
            cs = self.convert_stages
            if not (isinstance(cs, numbers.Integral) and not isinstance(cs, bool)
                    and 0 <= cs <= levels):
                raise ValueError(f"convert_stages must be None or an integer from 0 to {levels} "
                                 f"(the mixed-radix converter's levels for {k} moduli), "
                                 f"not {cs!r}")
            self._set("convert_stages", int(self.convert_stages))
        self._check_range()
        if self.input_transform == "binary":
            self.input_matrix                      # refuses a Bᵀ with fractions
            self.pe_a_intervals                    # refuses a V no fold brings within the port
        if self.latency < 1:
            raise ValueError("the register stages of the engine must add up to at least 1, not 0")

    def _resolve_moduli(self):
        auto_width = auto_moduli_width(self.moduli)
        if auto_width is not None:
            # Primes above 17 invert every denominator: "auto" resolves to "inverse".
            method = "scaled" if self.method == "scaled" else "inverse"
            R = result_range(self.toomcook, self.data_interval, self.weight_interval,
                             self.channels, method)
            self._set("moduli", select_moduli(R, auto_width, self.redundant_moduli))
        self._set("moduli", _as_moduli(self.moduli).moduli)
        # Before any transform or plan is derived: a huge modulus would elaborate for minutes.
        for mi in self.moduli:
            if mi > MAX_MODULUS:
                raise ValueError(f"moduli of an RNS engine must be at most {MAX_MODULUS} "
                                 f"(residues of {residue_width(MAX_MODULUS)} bits, one DSP "
                                 f"multiplier port), not {mi} ({residue_width(mi)} bits)")

    def _check_range(self):
        tc = self.toomcook                        # validates n <= 16 and the points
        if self.method == "inverse":
            rns_transforms(tc, self.moduli_set, "inverse")   # one line naming the denominator
        base = self.base_moduli
        R = self.result_interval
        if not base.covers(R):
            need = _need(R)
            hint = ""
            if self.method_used == "scaled" and _inverse_ok(tc, self.moduli_set):
                inv = result_range(tc, self.data_interval, self.weight_interval, self.channels,
                                   "inverse")
                hint = f"; method 'inverse' needs {(_need(inv) - 1).bit_length()} bits"
            what = "non-redundant moduli" if self.redundant_moduli else "moduli"
            raise ValueError(
                f"{what} {list(base.moduli)} must cover the {self.method_used} result range "
                f"[{R.lo}, {R.hi}] of {tc.name} with {self.data_width}-bit data, "
                f"{self.weight_width}-bit weights and {self.channels} channel(s) (needs ≥ {need}, "
                f"{(need - 1).bit_length()} bits), not product {base.product} "
                f"({base.bits} bits){hint}")
        if self.redundant_moduli:
            M, size = self.moduli_set.product, R.hi - R.lo + 1
            for mi in self.moduli:
                if M // mi < size:
                    raise ValueError(
                        f"redundant moduli must detect every single-channel fault: the product "
                        f"of the moduli other than {mi} must be at least the result range's "
                        f"{size} values, not {M // mi}")

    # -- algorithm and number system -----------------------------------------------------------

    @property
    def algorithm(self):
        return "winograd"

    @property
    def pe(self):
        return "rns"

    @cached_property
    def moduli_set(self):
        return ModuliSet(self.moduli)

    @cached_property
    def base_moduli(self):
        """The non-redundant moduli: their product covers the result range."""
        return ModuliSet(self.moduli[:len(self.moduli) - self.redundant_moduli])

    @cached_property
    def method_used(self):
        if self.method != "auto":
            return self.method
        return "inverse" if _inverse_ok(self.toomcook, self.moduli_set) else "scaled"

    @cached_property
    def transforms(self):
        """:class:`RNSTransforms` for every modulus (redundant ones included)."""
        return rns_transforms(self.toomcook, self.moduli_set, self.method_used)

    @property
    def scale_divisor(self):
        return self.transforms.scale_divisor(2)

    @cached_property
    def input_matrix(self):
        """The integer ``Bᵀ`` whose residues are :attr:`transforms`' ``BT``."""
        if self.method_used == "scaled":
            BT = self.toomcook.hardware().BT
        else:
            BT = self.toomcook.matrices("G").BT
        if any(Fraction(x).denominator != 1 for row in BT for x in row):
            raise ValueError(f"input_transform 'binary' needs an integer Bᵀ, not one with "
                             f"fractions (points {self.toomcook.points_text}); use 'residue'")
        return tuple(tuple(int(x) for x in row) for row in BT)

    @cached_property
    def v_intervals(self):
        """Exact ranges of the binary ``V = Bᵀ d B`` (input_transform "binary"), row-major."""
        return transform_intervals(self.input_matrix, self.data_interval, dims=2)

    @cached_property
    def result_interval(self):
        """Exact range of the reverse-converted value (``D²·Y`` for method "scaled")."""
        return result_range(self.toomcook, self.data_interval, self.weight_interval,
                            self.channels, self.method_used)

    @cached_property
    def output_interval(self):
        """Exact range of an output element: the correlation summed over the channels."""
        return (self.data_interval * self.weight_interval).times(self.r * self.r * self.channels)

    @property
    def residue_widths(self):
        return tuple(residue_width(mi) for mi in self.moduli)

    @property
    def weight_payload(self):
        """(element count, element width) of a weight beat: ``U`` residues of every channel."""
        return len(self.moduli) * self.channels * self.n ** 2, max(self.residue_widths)

    @property
    def multipliers(self):
        """Modular multipliers: ``n²`` per modulus."""
        return len(self.moduli) * self.n ** 2

    @cached_property
    def pe_a_intervals(self):
        """Per modulus, per ``V`` element (row-major): the range of the PE's ``a`` operand.

        The residue port range (:func:`residue_port_interval`) unless
        ``forward_reduction`` is ``"partial"``, where it is the range of ``V`` after
        :meth:`ReductionPlan.partial` (possibly no fold at all).
        """
        n2 = self.n ** 2
        if self.forward_reduction == "full":
            return tuple((residue_port_interval(mi),) * n2 for mi in self.moduli)
        return tuple(tuple(plan_reduction(iv, mi).partial(PARTIAL_OPERAND_WIDTH)[1]
                           for iv in self.v_intervals) for mi in self.moduli)

    @property
    def multiplier_operands(self):
        """(a, b) bit widths of the widest modular multiplier: ``V`` (signed when it can be
        negative) by the unsigned ``U`` residue."""
        a = max((iv.width if iv.lo < 0 else max(iv.hi.bit_length(), 1))
                 for ivs in self.pe_a_intervals for iv in ivs)
        return a, max(self.residue_widths)

    @property
    def multiplier_width(self):
        """Widest multiplier port: the residue width, or the partially reduced ``V``'s."""
        return max(self.multiplier_operands)

    @property
    def multiplier_description(self):
        """e.g. ``"8x8 unsigned"`` or ``"13x8 signed x unsigned"``."""
        a, b = self.multiplier_operands
        signed_a = any(iv.lo < 0 for ivs in self.pe_a_intervals for iv in ivs)
        return f"{a}x{b} " + ("signed x unsigned" if signed_a else "unsigned")

    @property
    def accumulates(self):
        return self.channels > 1

    @property
    def converter_latency(self):
        """Register stages of the reverse converter: ``convert_stages``, or by default
        one per :func:`converter_levels`."""
        if self.convert_stages is None:
            return converter_levels(len(self.moduli))
        return self.convert_stages

    @property
    def latency(self):
        """Cycles from accepting a tile (the last channel's) to its output."""
        return (self.input_stages + self.pe_stages + int(self.accumulates) + self.output_stages
                + self.converter_latency
                + (self.descale_stages if self.scale_divisor != 1 else 0))

    @property
    def initiation_interval(self):
        """Input beats per output tile at full rate (one tile beat per channel)."""
        return self.channels

    @property
    def module_name(self):
        if self.name:
            return self.name
        tag = f"rns{len(self.moduli)}" + (f"r{self.redundant_moduli}" if self.redundant_moduli else "")
        ch = f"_c{self.channels}" if self.channels > 1 else ""
        ch += "_rin" if self.input_transform == "residue" else ""
        ch += "_pfr" if self.forward_reduction == "partial" else ""
        return (f"{tag}_f{self.m}x{self.m}_{self.r}x{self.r}_{self.method_used[:3]}"
                f"_d{self.data_width}w{self.weight_width}{ch}")

    def golden_model(self):
        from .model import RNSTileModel
        return RNSTileModel(self)

    # -- layer hooks: an RNS layer core accumulates residues over every input channel ----------

    def check_layer(self, layer):
        if self.channels != layer.max_cin:
            # The moduli must cover the sum over every input channel of the layer.
            raise ValueError(f"tile.channels of an RNS layer must equal max_cin ({layer.max_cin}), "
                             f"not {self.channels}")

    @property
    def stored_weight(self):
        """Residues of every modulus: element ``i·n² + j`` is ``U_i`` at row-major index ``j``."""
        return len(self.moduli) * self.n ** 2, self.weight_payload[1]

    @property
    def layer_filter_transform(self):
        return "offline"

    def stored_filters(self, w):
        """The stored filters of ``w`` (..., r, r): shape (..., k·n²), unsigned residues."""
        import numpy as np
        U = self.golden_model().filter_residues(w)              # (k, ..., n, n)
        U = np.moveaxis(U, 0, -3)                                 # (..., k, n, n)
        return U.reshape(U.shape[:-3] + (-1,))

    def layer_accumulator_intervals(self, channels):
        # Residues: the accumulators hold sums modulo each modulus.
        return [Interval(0, max(self.moduli) - 1)] * (self.n ** 2)

    def layer_output_interval(self, channels):
        return self.output_interval               # its channels are the layer's max_cin

    def layer_module_name(self, p_in, p_out):
        pe = f"{len(self.moduli)}r{self.redundant_moduli}_{self.method_used[:3]}" + (
            "_rin" if self.input_transform == "residue" else "") + (
            "_pfr" if self.forward_reduction == "partial" else "")
        return (f"rnsconv_f{self.m}x{self.m}_{self.r}x{self.r}_{pe}_d{self.data_width}"
                f"w{self.weight_width}_p{p_in}x{p_out}")

    @classmethod
    def pipeline_stages(cls, n):
        # No filter block (offline residue weights); from n = 2 on the PE and the converter
        # keep their defaults (operands, product, residue; a register per converter level).
        stages = dict(input_stages=n, output_stages=n, descale_stages=min(n, 1))
        if n < 2:
            stages.update(pe_stages=n, convert_stages=n)
        return stages

    def _json_converters(self):
        return {"moduli": list}

    @classmethod
    def from_json(cls, params):
        params = dict(params)
        params["moduli"] = tuple(params["moduli"])
        return cls(**params)
