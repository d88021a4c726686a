"""The tile engine's configuration: Winograd F(m×m, r×r) or the direct baseline.

:class:`TileConfig` describes a tile engine (Winograd F(m×m, r×r) or the direct
baseline with the same streams). It validates every parameter up front and
derives everything else — transforms, the range and width of every signal,
multiplier count and latency — from :mod:`winogen.gen.toomcook` and
:mod:`winogen.gen.bounds`. Hardware generators read widths from here and
nowhere else.
"""

from dataclasses import dataclass
from functools import cached_property

from ..addernet import adder_matrices as _adder_matrices, integer_adder_transforms
from ..bounds import Interval, transform2d_intervals, transform_intervals
from ..checks import check_bool, check_choice
from ..toomcook import HardwareTransforms
from ..winoquant import (GIVEN, MIN_WINO_WIDTH, SCALE_MODES, WinogradQuantization,
                         check_given_shifts)
from .base import TileConfigBase

__all__ = ["TileConfig", "ALGORITHMS", "FILTER_TRANSFORMS", "DESCALE_MODES", "DSP_PRIMITIVES",
           "ECP5_MULT_WIDTH", "VENDOR_DSP", "NEXUS_MULT9_WIDTH"]

ALGORITHMS = ("winograd", "direct")
FILTER_TRANSFORMS = ("online", "offline")
DESCALE_MODES = ("auto", "shift")
# "inferred": multipliers are plain `*` for any flow; "ecp5": PEs instantiate the ECP5
# MULT18X18D with its registers; "nexus": the Lattice Nexus MULT9X9 (operands of at most
# 9 bits; two share one 18 x 18 block) or MULT18X18 with their registers.
DSP_PRIMITIVES = ("inferred", "ecp5", "nexus")
ECP5_MULT_WIDTH = 18
#: Per vendor build: the widest operand its blocks take, and the blocks named in messages.
VENDOR_DSP = {"ecp5": (ECP5_MULT_WIDTH, "one MULT18X18D each"),
              "nexus": (18, "one MULT9X9 or MULT18X18 each")}
#: Operands up to this width take a Nexus MULT9X9 (two per 18 x 18 block).
NEXUS_MULT9_WIDTH = 9


@dataclass(frozen=True)
class TileConfig(TileConfigBase):
    """A tile engine: ``m × m`` outputs per cycle from ``n × n`` input tiles.

    Parameters
    ----------
    m, r : int
        Output tile size and filter size; ``n = m + r - 1 <= 16``.
    data_width, weight_width : int
        Signed two's complement widths of activations and weights, 2 to 16.
    points : str or tuple, optional
        Interpolation points (see :class:`~winogen.gen.toomcook.ToomCook`);
        defaults to ``preset``.
    preset : str
        Named point set used when ``points`` is None.
    algorithm : str
        ``"winograd"`` (n² PEs) or ``"direct"`` (m²r² PEs, same streams).
    pe : str
        Processing-element kind (see :mod:`winogen.gen.pe`) whose engines this class
        describes (the residue kind has its own, :class:`~winogen.gen.rns.RNSTileConfig`).
    filter_transform : str
        ``"online"``: raw r×r weights are transformed on chip; ``"offline"``:
        the weight stream carries U = G g Gᵀ computed by :mod:`winogen.gen`.
    keep_scale : bool
        Keep the integer scale ``D²`` in the output instead of removing it.
    fold : str
        Which transform absorbs the integer scale numerators: ``"A"`` (keeps the
        Hadamard operands narrow) or ``"G"`` (keeps the output transform small).
    descale : str
        ``"auto"``: remove ``D²`` by a shift and, for odd factors, an exact
        constant division; ``"shift"``: allow shifts only (refuses odd ``D``).
    input_stages, pe_stages, output_stages, filter_stages, descale_stages : int
        Register stages of each block (the pipelining knobs).
    dsp : str
        How multiplying PEs are built: ``"inferred"`` (a ``*`` any synthesis
        flow maps), ``"ecp5"`` (an ECP5 ``MULT18X18D`` instance whose input and
        output registers hold the PE's stages) or ``"nexus"`` (a Lattice Nexus
        ``MULT9X9`` where both operands fit 9 bits, else ``MULT18X18``, the same way);
        the vendor builds need operands of at most 18 bits and a simulation model,
        which the generator writes next to the Verilog.
    adder_matrices : str or tuple
        Winograd transforms of PE kinds that are not bilinear (``pe="adder"``, see
        :mod:`winogen.gen.addernet`): ``"standard"`` (Lavin's F(2,3)),
        ``"balanced"`` (F(2,3)) or user matrices ``(AT, G, BT)``. The engine
        computes ``Aᵀ'[-|U' - V'|]A'`` with the integer matrices of
        :func:`~winogen.gen.addernet.integer_adder_transforms` and removes no
        scale (the PE is not bilinear); ``points``, ``preset``, ``fold``,
        ``keep_scale`` and ``descale`` do not apply to it.
    given_transforms : tuple, optional
        Given Winograd matrices ``(AT, G, BT)`` of a multiplying engine in place of
        ``points`` (a transforms file, learned transforms; see
        :class:`~winogen.gen.toomcook.MatrixToomCook`). Exact sets behave as
        point-built ones. Approximate sets are not a convolution: the engine computes
        their integer form, and removes the scale ``D²`` by an arithmetic shift
        (floor), so ``D`` must be a power of two; the models do the same.
    wino_width : int, optional
        ``W``: round the Winograd-domain operands ``V = Bᵀ d B`` (on chip) and
        ``U = G g Gᵀ / D²`` (offline) to ``W`` bits with power-of-two scales, so the
        Hadamard multipliers are ``W × W`` (:mod:`winogen.gen.winoquant`). From 2 to
        one less than the exact engine's widest operand; ``None`` (default): exact.
        Needs a multiplying PE kind, no ``keep_scale`` and the default ``descale`` (the
        engine divides by nothing: ``D²`` is in ``Û``); ``filter_transform="online"``
        (``Û`` rounded on chip by a shift) needs ``D`` a power of two.
    wino_scales : str or tuple, optional
        With ``wino_width``: ``"global"`` (one shift per operand, the default) or
        ``"tapwise"`` (one per Winograd position and operand, Andri et al. 2023), both
        derived from the ranges; or given tap-wise shifts ``(sV, sU)`` (n² each, e.g.
        calibrated on data: a scale file), with which values may saturate at both ends.
    name : str, optional
        Verilog module name; derived from the parameters by default.
    """
    points: object = None
    preset: str = "default"
    algorithm: str = "winograd"
    pe: str = "mul"
    filter_transform: str = "offline"
    keep_scale: bool = False
    descale: str = "auto"
    fold: str = "A"
    input_stages: int = 2
    pe_stages: int = 2
    output_stages: int = 2
    filter_stages: int = 2
    descale_stages: int = 1
    dsp: str = "inferred"
    adder_matrices: object = "standard"
    given_transforms: object = None
    wino_width: int = None
    wino_scales: str = None
    name: str = None

    STAGES = ("input_stages", "pe_stages", "output_stages", "filter_stages", "descale_stages")

    def __post_init__(self):
        check_choice("algorithm", self.algorithm, ALGORITHMS)
        check_choice("filter_transform", self.filter_transform, FILTER_TRANSFORMS)
        check_choice("descale", self.descale, DESCALE_MODES)
        check_choice("fold", self.fold, ("A", "G"))
        self._validate_common()
        self._check_adder_options()
        self._check_transforms()
        check_bool("keep_scale", self.keep_scale)
        # Builds and validates the algorithm (n <= 16, points) eagerly.
        tc = self.toomcook
        self._check_quantization()
        if self.algorithm == "winograd" and not self.keep_scale and self.descale == "shift":
            d = self.hardware.denominator
            if d & (d - 1):
                raise ValueError(
                    f"points {tc.points_text} need an exact division by {d}² to remove the scale, "
                    f"which descale='shift' cannot do; use points whose denominator is a power "
                    f"of two (e.g. preset lavin for F(2,3)), descale='auto' or keep_scale=True")
        check_choice("dsp", self.dsp, DSP_PRIMITIVES)
        if self.dsp in VENDOR_DSP:
            self._check_vendor_dsp()
        if self.latency < 1:
            raise ValueError("the register stages of the engine must add up to at least 1, not 0 "
                             "(set --pipeline or a --*-stages option to 1 or more)")

    def _check_adder_options(self):
        if isinstance(self.adder_matrices, str):
            if self.adder_matrices not in ("standard", "balanced"):
                raise ValueError(f"adder_matrices must be one of standard, balanced or (AT, G, BT), "
                                 f"not {self.adder_matrices!r}")
        else:
            # user matrices: normalised to exact rationals (JSON round trip: strings)
            self._set("adder_matrices", _adder_matrices(self.adder_matrices, self.m, self.r))
        if self.adder_matrices != "standard" and self.pe_kind.bilinear:
            raise ValueError(f"adder_matrices applies to pe='adder' only, not pe={self.pe!r}")
        if self.is_adder_winograd:
            _adder_matrices(self.adder_matrices, self.m, self.r)
            # The adder transforms fix their own matrices and never remove a scale:
            # options that would silently do nothing are refused instead.
            for option, value, default in (("keep_scale", self.keep_scale, False),
                                           ("descale", self.descale, "auto")):
                if value != default:
                    raise ValueError(f"{option} does not apply to Winograd adder engines (they "
                                     f"remove no scale), not {value!r}")

    def _check_transforms(self):
        if self.given_transforms is None:
            return
        if self.algorithm != "winograd" or not self.pe_kind.bilinear:
            raise ValueError(f"given_transforms applies to Winograd engines of multiplying PEs "
                             f"(AdderNet engines take adder_matrices), not algorithm="
                             f"{self.algorithm!r}, pe={self.pe!r}")
        if self.points is not None or self.preset != "default":
            raise ValueError("given_transforms replace the interpolation points: give "
                             "given_transforms, points or preset, not given_transforms with "
                             + ("points" if self.points is not None else f"preset={self.preset!r}"))
        from ..toomcook import MatrixToomCook
        given = MatrixToomCook(*self.given_transforms, m=self.m, r=self.r)   # validates
        # normalised to exact rationals (JSON round trip: strings)
        self._set("given_transforms", given.given)
        d = given.hardware(self.fold).denominator
        if not given.exact and not self.keep_scale and d & (d - 1) and self.wino_width is None:
            # (A quantized domain folds D² into Uq and divides by nothing.)
            raise ValueError(f"approximate transforms must have a power-of-two denominator D "
                             f"(the engine removes D² by a shift, which floors), not D = {d}; "
                             f"use dyadic entries (p/2^k) or keep_scale=True")
        if not given.exact and self.keep_scale:
            raise ValueError("keep_scale does not apply to approximate transforms (their "
                             "result is defined with D² removed by a shift), not True")

    def _check_quantization(self):
        if self.wino_width is None:
            if self.wino_scales is not None:
                raise ValueError(f"wino_scales applies with wino_width only (a quantized "
                                 f"Winograd domain), not {self.wino_scales!r} alone")
            return
        if self.wino_scales is None:
            self._set("wino_scales", "global")
        if isinstance(self.wino_scales, (tuple, list)):
            # given tap-wise shifts (normalised: two tuples of n² ints; JSON: lists)
            self._set("wino_scales", check_given_shifts(self.wino_scales, self.n,
                                                        "wino_scales"))
        else:
            check_choice("wino_scales", self.wino_scales, SCALE_MODES)
        if self.algorithm != "winograd":
            raise ValueError(f"wino_width applies to Winograd engines only, not "
                             f"algorithm={self.algorithm!r}")
        if not self.pe_kind.bilinear or not self.pe_kind.uses_multiplier:
            raise ValueError(f"wino_width applies to multiplying PEs (pe='mul'): a quantized "
                             f"Winograd domain moves power-of-two scales through the products, "
                             f"which pe={self.pe!r} does not keep; not wino_width={self.wino_width!r}")
        d = self.hardware.denominator
        if self.filter_transform != "offline" and d & (d - 1):
            # Online, Û = U / (D² 2^sU) rounded: a shift only when D is a power of two.
            raise ValueError(f"wino_width needs filter_transform='offline' when D is not a power "
                             f"of two (Û = G g Gᵀ / D² rounded, which on chip would need a "
                             f"division by {d}²), not {self.filter_transform!r}")
        for option, value, default in (("keep_scale", self.keep_scale, False),
                                       ("descale", self.descale, "auto")):
            if value != default:
                raise ValueError(f"{option} does not apply with wino_width (D² is folded into "
                                 f"the quantized U; the engine only shifts), not {value!r}")
        exact = max(max(iv.width for iv in ivs) for ivs in (self.v_intervals, self.u_intervals))
        if isinstance(self.wino_width, bool) or not isinstance(self.wino_width, int) or \
                not MIN_WINO_WIDTH <= self.wino_width < exact:
            raise ValueError(f"wino_width must be an integer from {MIN_WINO_WIDTH} to {exact - 1} "
                             f"(below the exact Winograd-domain width {exact} of this engine), "
                             f"not {self.wino_width!r}")

    @cached_property
    def quantization(self):
        """The :class:`~winogen.gen.winoquant.WinogradQuantization` of a quantized engine
        (``wino_width`` set), else None."""
        if self.wino_width is None:
            return None
        if isinstance(self.wino_scales, tuple):
            return WinogradQuantization(self.hardware, self.data_width, self.weight_width,
                                        self.wino_width, GIVEN, self.wino_scales)
        return WinogradQuantization(self.hardware, self.data_width, self.weight_width,
                                    self.wino_width, self.wino_scales)

    def _check_vendor_dsp(self):
        limit, blocks = VENDOR_DSP[self.dsp]
        if not self.pe_kind.uses_multiplier:
            raise ValueError(f"dsp={self.dsp!r} applies to multiplying PEs (pe='mul'), not "
                             f"pe={self.pe!r}")
        for name, intervals in (("activation", self.pe_a_intervals), ("weight", self.pe_b_intervals)):
            width = max(iv.width for iv in intervals)
            if width > limit:
                raise ValueError(
                    f"dsp={self.dsp!r} needs PE operands of at most {limit} bits ({blocks}), "
                    f"but the {name} operand of this engine is {width} bits; use dsp='inferred' "
                    f"(Yosys then splits wide products over several blocks), narrower widths or a "
                    f"smaller tile, not dsp={self.dsp!r}")

    @property
    def dsp_blocks(self):
        """The vendor multiplier primitives the PEs instantiate (sorted names; empty for
        ``dsp="inferred"`` and for PEs without multipliers)."""
        if self.dsp == "ecp5":
            return ["MULT18X18D"]
        if self.dsp == "nexus":
            return sorted({"MULT9X9" if max(a.width, b.width) <= NEXUS_MULT9_WIDTH
                           else "MULT18X18"
                           for a, b in zip(self.pe_a_intervals, self.pe_b_intervals)})
        return []

    @property
    def pe_a_intervals(self):
        """Ranges of the PE's activation operands (``V`` in Winograd, ``d`` in direct engines)."""
        if self.algorithm == "winograd":
            return self.quantization.vq_intervals if self.quantization else self.v_intervals
        return [self.data_interval] * self.multipliers

    @property
    def pe_b_intervals(self):
        """Ranges of the PE's weight operands (``U`` in Winograd, ``g`` in direct engines)."""
        if self.algorithm == "winograd":
            return self.quantization.uq_intervals if self.quantization else self.u_intervals
        return [self.weight_interval] * self.multipliers

    # -- derived algorithm ---------------------------------------------------------------------

    @cached_property
    def hardware(self):
        if self.is_adder_winograd:
            AT, G, BT, _ = self._adder_transforms
            return HardwareTransforms(AT=AT, G=G, BT=BT, denominator=1)
        return self.toomcook.hardware(self.fold)

    @property
    def is_adder_winograd(self):
        """Whether this is a Winograd engine of a PE kind that is not bilinear: its
        transforms are the integer adder matrices and it removes no scale."""
        return not self.pe_kind.bilinear and self.algorithm == "winograd"

    @cached_property
    def _adder_transforms(self):
        return integer_adder_transforms(*_adder_matrices(self.adder_matrices, self.m, self.r))

    @property
    def adder_output_scale(self):
        """``k²``: an adder Winograd output over the rational ``Aᵀ[-|U-V|]A`` (else None)."""
        return self._adder_transforms[3] if self.is_adder_winograd else None

    def _pe_tag(self):
        pe = self.pe
        if self.is_adder_winograd:
            pe += "_" + (self.adder_matrices[:3] if isinstance(self.adder_matrices, str) else "usr")
        if self.given_transforms is not None:
            # Different matrices must give different module names.
            import hashlib
            text = repr([[str(x) for row in M for x in row] for M in self.given_transforms])
            pe += "_t" + hashlib.sha256(text.encode()).hexdigest()[:6]
        return pe

    @property
    def module_name(self):
        if self.name:
            return self.name
        tag = "wino" if self.algorithm == "winograd" else "direct"
        dsp = f"_{self.dsp}" if self.dsp in VENDOR_DSP else ""
        return (f"{tag}_f{self.m}x{self.m}_{self.r}x{self.r}_{self._pe_tag()}_d{self.data_width}"
                f"w{self.weight_width}{self._quant_tag()}{dsp}")

    def _quant_tag(self):
        """``_q9g`` / ``_q9t``: a quantized Winograd domain of 9 bits, global / tap-wise;
        ``_q9s`` and a hash for given shifts."""
        if self.wino_width is None:
            return ""
        if isinstance(self.wino_scales, tuple):
            import hashlib
            digest = hashlib.sha256(repr(self.wino_scales).encode()).hexdigest()[:6]
            return f"_q{self.wino_width}s{digest}"
        return f"_q{self.wino_width}{self.wino_scales[0]}"

    @property
    def multipliers(self):
        """PEs in the product stage (multipliers when the PE kind multiplies)."""
        return self.n ** 2 if self.algorithm == "winograd" else self.m ** 2 * self.r ** 2

    @property
    def scale_divisor(self):
        """``D²``: the integer scale of the output transform's result."""
        return self.hardware.denominator ** 2 if self.algorithm == "winograd" else 1

    @property
    def removes_scale(self):
        """Whether a descale block follows the output transform (its ``descale_stages``):
        the exact division by ``D²``, or a quantized engine's rounding right shift."""
        if self.quantization:
            return self.quantization.output_shift > 0
        return self.algorithm == "winograd" and not self.keep_scale and self.scale_divisor != 1

    # -- derived ranges (the source of every hardware width) ----------------------------------

    @cached_property
    def v_intervals(self):
        """Ranges of the transformed input ``V = Bᵀ d B`` (row-major n×n)."""
        return transform_intervals(self.hardware.BT, self.data_interval, dims=2)

    @cached_property
    def u_intervals(self):
        """Ranges of the transformed filter ``U = G g Gᵀ`` (row-major n×n)."""
        return transform_intervals(self.hardware.G, self.weight_interval, dims=2)

    @cached_property
    def product_intervals(self):
        """Ranges of the PE outputs (Winograd: n² elements; direct: m²·r² terms)."""
        kind = self.pe_kind
        if self.algorithm == "winograd":
            return [kind.output_interval(v, u)
                    for v, u in zip(self.pe_a_intervals, self.pe_b_intervals)]
        term = kind.output_interval(self.data_interval, self.weight_interval)
        return [term] * (self.m ** 2 * self.r ** 2)

    @cached_property
    def scaled_output_intervals(self):
        """Ranges of ``Aᵀ M A`` before the scale is removed (Winograd only; quantized:
        ``Z = Aᵀ (M ≪ a) A`` of the aligned products)."""
        if self.quantization:
            return self.quantization.transformed_intervals(self.product_intervals)
        return transform2d_intervals(self.hardware.AT, self.product_intervals)

    @property
    def _output_is_transform(self):
        # Kept scale, or a kind that is not bilinear: the output is Aᵀ M A as is.
        return self.algorithm == "winograd" and (self.keep_scale or self.is_adder_winograd)

    @cached_property
    def output_interval(self):
        """Range of every output element as it leaves the engine."""
        if self._output_is_transform:
            return _hull(self.scaled_output_intervals)
        if self.quantization:
            # An approximation of the correlation: within the transform's range of Z,
            # rounded, and within the exact range widened by the quantization error.
            q = self.quantization
            rounded = _hull([q.output_of(iv) for iv in self.scaled_output_intervals])
            if not self.toomcook.exact:
                return rounded      # approximate transforms: no exact result to widen
            term = self.pe_kind.output_interval(self.data_interval, self.weight_interval)
            return _meet(rounded, q.output_bound(term.times(self.r ** 2)))
        if not self.toomcook.exact:
            return _floor_divided(_hull(self.scaled_output_intervals), self.scale_divisor)
        # The exact result is a sum of r² PE terms: tight, and smaller than the
        # transform bound divided by D².
        term = self.pe_kind.output_interval(self.data_interval, self.weight_interval)
        return term.times(self.r ** 2)

    @property
    def v_width(self):
        return max(iv.width for iv in self.v_intervals)

    @property
    def u_width(self):
        return max(iv.width for iv in self.u_intervals)

    @property
    def weight_payload(self):
        """(element count, element width) of one weight-stream beat."""
        if self.algorithm == "winograd" and self.filter_transform == "offline":
            return self.n ** 2, self.stored_u_width
        return self.r ** 2, self.weight_width

    @property
    def pe_a_width(self):
        """Width of the PEs' activation operands (``V``, ``V̂`` or ``d``)."""
        return max(iv.width for iv in self.pe_a_intervals)

    @property
    def stored_u_width(self):
        """Width of the offline filters the weight stream carries: ``U`` or ``Û``."""
        return max(iv.width for iv in self.pe_b_intervals)

    @property
    def filter_storage_growth(self):
        """Storage of offline-transformed weights relative to raw ones: (n/r)² in elements."""
        if self.algorithm != "winograd" or self.filter_transform != "offline":
            return 1.0
        return (self.n / self.r) ** 2

    # -- latency ---------------------------------------------------------------------------------

    @property
    def latency(self):
        """Cycles from accepting an input tile to its output being valid."""
        if self.algorithm == "direct":
            return self.pe_stages + self.output_stages
        return (self.input_stages + self.pe_stages + self.output_stages
                + (self.descale_stages if self.removes_scale else 0))

    @property
    def initiation_interval(self):
        return 1

    def golden_model(self):
        from ..fixedpoint import TileModel
        return TileModel(self)

    # -- layer hooks -----------------------------------------------------------------------------

    @property
    def keeps_scale(self):
        return self.algorithm == "winograd" and self.keep_scale

    @property
    def stored_weight(self):
        if self.algorithm == "winograd":
            return self.n ** 2, self.stored_u_width
        return self.r ** 2, self.weight_width

    @property
    def layer_weight_payload(self):
        return self.weight_payload

    def stored_filters(self, w):
        """The stored filters of raw filters ``w`` (..., r, r): ``U = G g Gᵀ`` when the
        weight stream carries transformed filters (Winograd, offline), else ``w``."""
        if self.layer_filter_transform == "offline":
            return self.golden_model().filter_transform(w)
        from ..checks import check_integer_values
        return check_integer_values("filter", w, self.weight_interval)

    @property
    def layer_filter_transform(self):
        return self.filter_transform if self.algorithm == "winograd" else None

    def layer_accumulator_intervals(self, channels):
        # Each term's range widened to contain 0: a masked or zeroed lane adds 0.
        zero = Interval(0, 0)
        if self.algorithm == "winograd":
            return [iv.hull(zero).times(channels) for iv in self.product_intervals]
        term = self.pe_kind.output_interval(self.data_interval, self.weight_interval).hull(zero)
        return [term.times(channels * self.r ** 2)] * (self.m ** 2)

    def check_layer(self, layer):
        if self.quantization and layer.harden:
            # The fault model (gen/faultmodel.py) and the fault sites describe exact domains.
            raise ValueError(f"harden does not apply to a quantized Winograd domain "
                             f"(--wino-width {self.wino_width}: the fault model covers exact "
                             f"ones), not {layer.harden!r}")

    def layer_output_interval(self, channels):
        if self.quantization:
            q = self.quantization
            rounded = _hull([q.output_of(iv) for iv in
                             q.transformed_intervals(self.layer_accumulator_intervals(channels))])
            if not self.toomcook.exact:
                return rounded
            term = self.pe_kind.output_interval(self.data_interval, self.weight_interval)
            return _meet(rounded, q.output_bound(term.times(self.r ** 2 * channels), channels))
        if self._output_is_transform or not self.toomcook.exact:
            scaled = _hull(transform2d_intervals(self.hardware.AT,
                                                 self.layer_accumulator_intervals(channels)))
            return scaled if self._output_is_transform else \
                _floor_divided(scaled, self.scale_divisor)
        term = self.pe_kind.output_interval(self.data_interval, self.weight_interval)
        return term.times(self.r ** 2 * channels)

    def layer_module_name(self, p_in, p_out):
        tag = "winoconv" if self.algorithm == "winograd" else "directconv"
        return (f"{tag}_f{self.m}x{self.m}_{self.r}x{self.r}_{self._pe_tag()}_d{self.data_width}"
                f"w{self.weight_width}{self._quant_tag()}_p{p_in}x{p_out}")

    @classmethod
    def pipeline_stages(cls, n):
        # The PE keeps at most 2 (operand and result registers), the descaler at most 1.
        return dict(input_stages=n, output_stages=n, filter_stages=n,
                    pe_stages=min(n, 2), descale_stages=min(n, 1))

    def _json_converters(self):
        matrices = lambda v: [[[str(x) for x in row] for row in M] for M in v]
        return {"adder_matrices": lambda v: v if isinstance(v, str) else matrices(v),
                "given_transforms": lambda v: None if v is None else matrices(v),
                "wino_scales": lambda v: [list(x) for x in v] if isinstance(v, tuple) else v}

    def to_json(self):
        out = super().to_json()
        if self.wino_width is None:
            # Exact engines' parameters stay as they were (their manifests unchanged).
            del out["wino_width"], out["wino_scales"]
        return out


def _floor_divided(interval, divisor):
    # Floor division is monotone: the ends map to the ends.
    return Interval(interval.lo // divisor, interval.hi // divisor)


def _meet(a, b):
    """The intersection of two intervals that both hold a value (two sound bounds); ``b``
    may be None (no second bound)."""
    if b is None:
        return a
    return Interval(max(a.lo, b.lo), min(a.hi, b.hi))


def _hull(intervals):
    return Interval(min(iv.lo for iv in intervals), max(iv.hi for iv in intervals))
