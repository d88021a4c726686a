"""Configuration objects: one object drives the hardware, the models and the tests.

:class:`TileConfig` describes a tile engine (Winograd F(m×m, r×r) or the direct
baseline with the same streams). It validates every parameter up front and
derives everything else — transforms, the range and width of every signal,
multiplier count and latency — from :mod:`winogen.gen.toomcook` and
:mod:`winogen.gen.bounds`. Hardware generators read widths from here and
nowhere else.
"""

from dataclasses import dataclass, field, fields, replace
from functools import cached_property
import numbers

from .addernet import adder_matrices as _adder_matrices, integer_adder_transforms
from .bounds import Interval, signed_range, transform2d_intervals, transform_intervals
from .pe import pe_kind, PE_KINDS
from .points import format_point, parse_points, PRESETS
from .toomcook import HardwareTransforms, ToomCook

__all__ = ["TileConfig", "pipeline_stages", "ALGORITHMS", "FILTER_TRANSFORMS", "DSP_PRIMITIVES",
           "MIN_WIDTH", "MAX_WIDTH"]

ALGORITHMS = ("winograd", "direct")
FILTER_TRANSFORMS = ("online", "offline")
DESCALE_MODES = ("auto", "shift")
# "inferred": multipliers are plain `*` for any flow; "ecp5": PEs instantiate the ECP5
# MULT18X18D with the PE registers inside the block (Yosys does not pack them itself).
DSP_PRIMITIVES = ("inferred", "ecp5")
ECP5_MULT_WIDTH = 18
MIN_WIDTH, MAX_WIDTH = 2, 16


def _check_int(name, value, lo, hi=None):
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        accepted = f"an integer from {lo} to {hi}" if hi is not None else (
            "a positive integer" if lo == 1 else f"an integer of at least {lo}")
        raise ValueError(f"{name} must be {accepted}, not {value!r}")
    return int(value)


def pipeline_stages(n, pe="mul"):
    """The register stages of ``winogen generate --pipeline N``: ``n`` per transform.

    The PE keeps at most 2 (its operand and result registers), the descaler at most 1.
    RNS engines (``pe="rns"``) have no filter block (offline residue weights), and from
    ``n = 2`` on keep their configuration's defaults for the PE (operands, product,
    residue) and the mixed-radix converter (a register per level): those keys are left out.
    """
    n = _check_int("pipeline", n, 0)
    if pe == "rns":
        stages = dict(input_stages=n, output_stages=n, descale_stages=min(n, 1))
        if n < 2:
            stages.update(pe_stages=n, convert_stages=n)
        return stages
    return dict(input_stages=n, output_stages=n, filter_stages=n,
                pe_stages=min(n, 2), descale_stages=min(n, 1))


def parameters_to_json(config, **converters):
    """The fields of a configuration dataclass, JSON-ready and exact.

    ``points`` become the exact strings of the algorithm's points, ``name`` the module
    name; ``converters`` maps other field names to a function of their value.
    """
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name == "points":
            value = [format_point(p) for p in config.toomcook.points]
        elif f.name in converters:
            value = converters[f.name](value)
        out[f.name] = value
    out["name"] = config.module_name
    return out


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


@dataclass(frozen=True)
class TileConfig:
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
        Processing-element kind (see :mod:`winogen.gen.pe`).
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
        flow maps) or ``"ecp5"`` (an ECP5 ``MULT18X18D`` instance whose input and
        output registers hold the PE's stages; needs operands of at most 18 bits,
        and a simulation model, which the generator writes next to the Verilog).
    adder_matrices : str or tuple
        Winograd transforms of ``pe="adder"`` engines (see
        :mod:`winogen.gen.addernet`): ``"standard"`` (Lavin's F(2,3)),
        ``"balanced"`` (F(2,3)) or user matrices ``(AT, G, BT)``. The engine
        computes ``Aᵀ'[-|U' - V'|]A'`` with the integer matrices of
        :func:`~winogen.gen.addernet.integer_adder_transforms` and removes no
        scale (the PE is not bilinear); ``points``, ``preset``, ``fold``,
        ``keep_scale`` and ``descale`` do not apply to it.
    name : str, optional
        Verilog module name; derived from the parameters by default.
    """
    m: int
    r: int
    data_width: int = 8
    weight_width: int = 8
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
    name: str = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("m", _check_int("m", self.m, 1))
        set_("r", _check_int("r", self.r, 1))
        set_("data_width", _check_int("data_width", self.data_width, MIN_WIDTH, MAX_WIDTH))
        set_("weight_width", _check_int("weight_width", self.weight_width, MIN_WIDTH, MAX_WIDTH))
        _check_choice("algorithm", self.algorithm, ALGORITHMS)
        _check_choice("filter_transform", self.filter_transform, FILTER_TRANSFORMS)
        _check_choice("descale", self.descale, DESCALE_MODES)
        _check_choice("fold", self.fold, ("A", "G"))
        _check_choice("preset", self.preset, tuple(sorted(PRESETS)))
        pe_kind(self.pe)
        if isinstance(self.adder_matrices, str):
            if self.adder_matrices not in ("standard", "balanced"):
                raise ValueError(f"adder_matrices must be one of standard, balanced or (AT, G, BT), "
                                 f"not {self.adder_matrices!r}")
        else:
            # user matrices: normalised to exact rationals (JSON round trip: strings)
            set_("adder_matrices", _adder_matrices(self.adder_matrices, self.m, self.r))
        if self.adder_matrices != "standard" and self.pe != "adder":
            raise ValueError(f"adder_matrices applies to pe='adder' only, not pe={self.pe!r}")
        if self.pe == "adder" and self.algorithm == "winograd":
            _adder_matrices(self.adder_matrices, self.m, self.r)
            # The adder transforms fix their own matrices and never remove a scale:
            # options that would silently do nothing are refused instead.
            for option, value, default in (("keep_scale", self.keep_scale, False),
                                           ("descale", self.descale, "auto")):
                if value != default:
                    raise ValueError(f"{option} does not apply to Winograd adder engines (they "
                                     f"remove no scale), not {value!r}")
        if not isinstance(self.keep_scale, bool):
            raise TypeError(f"keep_scale must be a bool, not {self.keep_scale!r}")
        for stage in ("input_stages", "pe_stages", "output_stages", "filter_stages",
                      "descale_stages"):
            set_(stage, _check_int(stage, getattr(self, stage), 0, 8))
        if self.points is not None:
            set_("points", parse_points(self.points))
        # Builds and validates the algorithm (n <= 16, points) eagerly.
        tc = self.toomcook
        if self.algorithm == "winograd" and not self.keep_scale and self.descale == "shift":
            d = self.hardware.denominator
            if d & (d - 1):
                raise ValueError(
                    f"points {tc.points_text} need an exact division by {d}² to remove the scale, "
                    f"which descale='shift' cannot do; use points whose denominator is a power "
                    f"of two (e.g. preset lavin for F(2,3)), descale='auto' or keep_scale=True")
        _check_choice("dsp", self.dsp, DSP_PRIMITIVES)
        if self.dsp == "ecp5":
            self._check_ecp5_dsp()
        if self.latency < 1:
            raise ValueError("the register stages of the engine must add up to at least 1, not 0 "
                             "(set --pipeline or a --*-stages option to 1 or more)")
        if self.name is not None and not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"name must be a Verilog identifier, not {self.name!r}")

    def _check_ecp5_dsp(self):
        if not self.pe_kind.uses_multiplier:
            raise ValueError(f"dsp='ecp5' applies to multiplying PEs (pe='mul'), not pe={self.pe!r}")
        for name, intervals in (("activation", self.pe_a_intervals), ("weight", self.pe_b_intervals)):
            width = max(iv.width for iv in intervals)
            if width > ECP5_MULT_WIDTH:
                raise ValueError(
                    f"dsp='ecp5' needs PE operands of at most {ECP5_MULT_WIDTH} bits (one MULT18X18D "
                    f"each), but the {name} operand of this engine is {width} bits; use dsp='inferred' "
                    f"(Yosys then splits wide products over several blocks), narrower widths or a "
                    f"smaller tile, not dsp={self.dsp!r}")

    @property
    def pe_a_intervals(self):
        """Ranges of the PE's activation operands (``V`` in Winograd, ``d`` in direct engines)."""
        if self.algorithm == "winograd":
            return self.v_intervals
        return [self.data_interval] * self.multipliers

    @property
    def pe_b_intervals(self):
        """Ranges of the PE's weight operands (``U`` in Winograd, ``g`` in direct engines)."""
        if self.algorithm == "winograd":
            return self.u_intervals
        return [self.weight_interval] * self.multipliers

    # -- derived algorithm ---------------------------------------------------------------------

    @property
    def n(self):
        return self.m + self.r - 1

    @cached_property
    def toomcook(self):
        return ToomCook(self.m, self.r, self.points, preset=self.preset)

    @cached_property
    def hardware(self):
        if self.is_adder_winograd:
            AT, G, BT, _ = self._adder_transforms
            return HardwareTransforms(AT=AT, G=G, BT=BT, denominator=1)
        return self.toomcook.hardware(self.fold)

    @property
    def is_adder_winograd(self):
        return self.pe == "adder" and self.algorithm == "winograd"

    @cached_property
    def _adder_transforms(self):
        return integer_adder_transforms(*_adder_matrices(self.adder_matrices, self.m, self.r))

    @property
    def adder_output_scale(self):
        """``k²``: an adder Winograd output over the rational ``Aᵀ[-|U-V|]A`` (else None)."""
        return self._adder_transforms[3] if self.is_adder_winograd else None

    @property
    def pe_kind(self):
        return pe_kind(self.pe)

    @property
    def module_name(self):
        if self.name:
            return self.name
        tag = "wino" if self.algorithm == "winograd" else "direct"
        pe = self.pe
        if self.is_adder_winograd:
            pe += "_" + (self.adder_matrices[:3] if isinstance(self.adder_matrices, str) else "usr")
        dsp = "_ecp5" if self.dsp == "ecp5" else ""
        return (f"{tag}_f{self.m}x{self.m}_{self.r}x{self.r}_{pe}_d{self.data_width}"
                f"w{self.weight_width}{dsp}")

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
        return self.algorithm == "winograd" and not self.keep_scale and self.scale_divisor != 1

    # -- derived ranges (the source of every hardware width) ----------------------------------

    @property
    def data_interval(self):
        return signed_range(self.data_width)

    @property
    def weight_interval(self):
        return signed_range(self.weight_width)

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
            return [kind.output_interval(v, u) for v, u in zip(self.v_intervals, self.u_intervals)]
        term = kind.output_interval(self.data_interval, self.weight_interval)
        return [term] * (self.m ** 2 * self.r ** 2)

    @cached_property
    def scaled_output_intervals(self):
        """Ranges of ``Aᵀ M A`` before the scale is removed (Winograd only)."""
        return transform2d_intervals(self.hardware.AT, self.product_intervals)

    @cached_property
    def output_interval(self):
        """Range of every output element as it leaves the engine."""
        if self.algorithm == "winograd" and (self.keep_scale or self.is_adder_winograd):
            # adder: the output is Aᵀ'[-|U' - V'|]A' as is (no scale is ever removed)
            lo = min(iv.lo for iv in self.scaled_output_intervals)
            hi = max(iv.hi for iv in self.scaled_output_intervals)
            return Interval(lo, hi)
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
    def output_width(self):
        return self.output_interval.width

    @property
    def weight_payload(self):
        """(element count, element width) of one weight-stream beat."""
        if self.algorithm == "winograd" and self.filter_transform == "offline":
            return self.n ** 2, self.u_width
        return self.r ** 2, self.weight_width

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

    def replace(self, **changes):
        return replace(self, **changes)

    def to_json(self):
        """The parameters, JSON-ready and exact (points as strings)."""
        return parameters_to_json(self, adder_matrices=lambda v: v if isinstance(v, str) else
                                  [[[str(x) for x in row] for row in M] for M in v])
