"""The base every tile configuration shares: fields, validation, JSON round trip, layer hooks.

A tile configuration (:class:`~winogen.gen.config.TileConfig`,
:class:`~winogen.gen.rns.RNSTileConfig`, or a new engine's) is a frozen dataclass
deriving from :class:`TileConfigBase`. The base validates the fields every engine
has (tile size, operand widths, points, register stages, name) and answers the
questions the layer engine, the models and the manifest ask, so that none of them
branches on the configuration's type or PE kind:

* :attr:`TileConfigBase.pe_kind` — the :class:`~winogen.gen.pe.PEKind` (its
  ``bilinear``, ``masks_lanes``, ``modular``, ``weight_signed``, golden model);
* the layer hooks (:meth:`TileConfigBase.check_layer`, :attr:`stored_weight`,
  :meth:`layer_accumulator_intervals`, :meth:`layer_output_interval`, …);
* :meth:`TileConfigBase.golden_model` and the JSON round trip.
"""

from dataclasses import dataclass, fields, replace
from functools import cached_property

from ..bounds import signed_range
from ..checks import check_choice, check_int, check_name
from ..pe import pe_kind
from ..points import format_point, parse_points, PRESETS

__all__ = ["TileConfigBase", "parameters_to_json", "MIN_WIDTH", "MAX_WIDTH", "MAX_STAGES"]

MIN_WIDTH, MAX_WIDTH = 2, 16
#: Most register stages of one block.
MAX_STAGES = 8


def parameters_to_json(config, **converters):
    """The fields of a configuration dataclass, JSON-ready and exact.

    ``points`` become the exact strings of the algorithm's points, ``name`` the module
    name; ``converters`` maps other field names to a function of their value.
    """
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name == "points":
            points = config.toomcook.points
            value = None if points is None else [format_point(p) for p in points]
        elif f.name in converters:
            value = converters[f.name](value)
        out[f.name] = value
    out["name"] = config.module_name
    return out


@dataclass(frozen=True)
class TileConfigBase:
    """Fields and behaviour shared by every tile configuration.

    Parameters
    ----------
    m, r : int
        Output tile size and filter size; ``n = m + r - 1 <= 16``.
    data_width, weight_width : int
        Signed two's complement widths of activations and weights, 2 to 16.

    Subclasses add ``points``, ``preset``, ``name`` and the stage fields named by
    :attr:`STAGES`, which :meth:`_validate_common` checks, and a ``pe`` (field or
    property) naming their PE kind.
    """
    m: int
    r: int
    data_width: int = 8
    weight_width: int = 8

    #: The register-stage fields (each 0 to :data:`MAX_STAGES`).
    STAGES = ()
    #: Keys whose presence in a JSON parameter object names this class (when "pe" is absent).
    JSON_KEYS = frozenset()

    def _set(self, key, value):
        object.__setattr__(self, key, value)

    def _validate_common(self):
        """Check and normalise the shared fields (before any derived property is used)."""
        self._set("m", check_int("m", self.m, 1))
        self._set("r", check_int("r", self.r, 1))
        self._set("data_width", check_int("data_width", self.data_width, MIN_WIDTH, MAX_WIDTH))
        self._set("weight_width",
                  check_int("weight_width", self.weight_width, MIN_WIDTH, MAX_WIDTH))
        check_choice("preset", self.preset, tuple(sorted(PRESETS)))
        if self.points is not None:
            self._set("points", parse_points(self.points))
        for stage in self.STAGES:
            self._set(stage, check_int(stage, getattr(self, stage), 0, MAX_STAGES))
        check_name("name", self.name)
        kind = pe_kind(self.pe)
        if not isinstance(self, kind.config_class):
            raise ValueError(f"pe={kind.name!r} engines are described by a "
                             f"{kind.config_class.__name__}, not a {type(self).__name__}")

    # -- algorithm and kind -----------------------------------------------------------------

    @property
    def n(self):
        return self.m + self.r - 1

    @cached_property
    def toomcook(self):
        from ..toomcook import MatrixToomCook, ToomCook
        given = getattr(self, "given_transforms", None)
        if given is not None:
            return MatrixToomCook(*given, m=self.m, r=self.r)
        return ToomCook(self.m, self.r, self.points, preset=self.preset)

    @property
    def pe_kind(self):
        """The :class:`~winogen.gen.pe.PEKind` of the engine's processing elements."""
        return pe_kind(self.pe)

    @property
    def data_interval(self):
        return signed_range(self.data_width)

    @property
    def weight_interval(self):
        return signed_range(self.weight_width)

    @property
    def output_width(self):
        return self.output_interval.width

    def golden_model(self):
        """The bit-exact model of this engine (``model(d, g)`` gives its output tiles)."""
        raise NotImplementedError

    # -- layer hooks (asked by LayerConfig instead of branching on the type) -----------------

    @property
    def keeps_scale(self):
        """Whether the outputs are ``D²`` times the correlation."""
        return False

    def check_layer(self, layer):
        """Refuse a :class:`~winogen.gen.config.LayerConfig` this tile cannot serve."""

    @property
    def stored_weight(self):
        """(elements, width) of one stored filter of a layer engine."""
        raise NotImplementedError

    @property
    def layer_weight_payload(self):
        """(elements, width) of one weight beat of a layer engine: one filter."""
        return self.stored_weight

    def stored_filters(self, w):
        """What the weight stream carries for raw filters ``w`` (..., r, r)."""
        raise NotImplementedError

    @property
    def layer_filter_transform(self):
        """``"online"``/``"offline"`` (Winograd) or None (direct) in a layer engine."""
        return None

    def layer_accumulator_intervals(self, channels):
        """Range of each accumulator element of a layer core summing ``channels`` channels."""
        raise NotImplementedError

    def layer_output_interval(self, channels):
        """Range of one layer output (before requantization) summed over ``channels``."""
        raise NotImplementedError

    def layer_module_name(self, p_in, p_out):
        """The default Verilog name of a layer engine around this tile."""
        raise NotImplementedError

    # -- stages, copies and JSON -------------------------------------------------------------

    @classmethod
    def pipeline_stages(cls, n):
        """The stage fields of ``winogen generate --pipeline n`` (see :func:`pipeline_stages`)."""
        return {stage: n for stage in cls.STAGES}

    def replace(self, **changes):
        return replace(self, **changes)

    def _json_converters(self):
        return {}

    def to_json(self):
        """The parameters, JSON-ready and exact (points as strings)."""
        return parameters_to_json(self, **self._json_converters())

    @classmethod
    def from_json(cls, params):
        """The configuration of :meth:`to_json`'s output (``name`` kept as given)."""
        return cls(**dict(params))
