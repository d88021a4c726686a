"""Configuration objects: one object drives the hardware, the models and the tests.

* :mod:`.base` — :class:`TileConfigBase`: the fields, validation, JSON round trip
  and layer hooks every tile configuration shares;
* :mod:`.tile` — :class:`TileConfig`, the binary tile engine (Winograd or direct);
* :mod:`.layer` — :class:`LayerConfig` and :class:`LayerRun`, the layer engines;
* :mod:`.stages` — :func:`pipeline_stages`, ``--pipeline N`` for every configuration;
* :mod:`.registry` — the configuration class of a PE kind or of JSON parameters.

The RNS tile configuration lives with its number system in :mod:`winogen.gen.rns`.
"""

from ..checks import check_choice as _check_choice, check_int as _check_int
from .base import MAX_STAGES, MAX_WIDTH, MIN_WIDTH, TileConfigBase, parameters_to_json
from .layer import LayerConfig, LayerRun, ROUNDING_MODES, RUN_ERRORS
from .registry import config_class, tile_config_from_json
from .stages import pipeline_stages
from .tile import (ALGORITHMS, DESCALE_MODES, DSP_PRIMITIVES, ECP5_MULT_WIDTH, NEXUS_MULT9_WIDTH, VENDOR_DSP, FILTER_TRANSFORMS,
                   TileConfig)

__all__ = ["TileConfig", "TileConfigBase", "pipeline_stages", "ALGORITHMS", "FILTER_TRANSFORMS",
           "DSP_PRIMITIVES", "NEXUS_MULT9_WIDTH", "VENDOR_DSP", "MIN_WIDTH", "MAX_WIDTH", "config_class", "tile_config_from_json",
           "LayerConfig", "LayerRun"]
