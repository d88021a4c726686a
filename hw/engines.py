"""The engine registry: a tile configuration's type → the hardware that implements it.

Each entry names, for one configuration type, the tile engine component, the tile
manifest builder, the layer engine class (for a :class:`~winogen.gen.layer.LayerConfig`
whose ``tile`` is of that type) and the layer manifest's type-dependent parts.
:func:`~winogen.hw.generate.generate_tile`, :func:`~winogen.hw.tile.make_tile_engine`,
:func:`~winogen.hw.layer.make_layer_engine`, :func:`~winogen.hw.layer.generate_layer` and
:func:`~winogen.hw.layer.core_latency` dispatch through :func:`engine_for`; none of them
branches on the kind of arithmetic.

Lookup follows the configuration's class hierarchy (its ``__mro__``), so a subclass of a
registered configuration type gets its base's engines unless it registers its own.
A new engine is one :func:`register_engine` call beside its components.
"""

from dataclasses import dataclass
from typing import Callable

__all__ = ["EngineEntry", "register_engine", "engine_for", "layer_engine_class",
           "registered_types"]


@dataclass(frozen=True)
class EngineEntry:
    """The hardware of one tile configuration type.

    Attributes
    ----------
    config_type : type
    tile : callable
        ``tile(config)``: the tile engine component.
    tile_manifest : callable
        ``tile_manifest(config, component)``: its manifest (a JSON-ready dict).
    layer_engine : callable or None
        ``layer_engine(layer_config)``: the layer engine *class* (its ``core_class`` is the
        compute core) for a layer whose tile is of this type; ``None`` if there is none.
    layer_manifest : callable or None
        ``layer_manifest(layer_config)``: the layer manifest's type-dependent parts, a dict
        with the keys ``algorithm`` (entries added to the algorithm section),
        ``weight_format``, ``function``, ``multipliers``, ``scale`` and optionally
        ``sections`` (further top-level sections), as
        :func:`~winogen.hw.layer.layer_manifest` reads them.
    """
    config_type: type
    tile: Callable
    tile_manifest: Callable
    layer_engine: Callable = None
    layer_manifest: Callable = None


_REGISTRY = {}
_BUILTINS_LOADED = False


def register_engine(config_type, *, tile, tile_manifest, layer_engine=None, layer_manifest=None):
    """Register the hardware of tile configuration type ``config_type`` (see :class:`EngineEntry`).

    Registering a type again replaces its entry.
    """
    if not isinstance(config_type, type):
        raise TypeError(f"config_type must be a class, not {config_type!r}")
    for name, value in (("tile", tile), ("tile_manifest", tile_manifest)):
        if not callable(value):
            raise TypeError(f"{name} must be callable, not {value!r}")
    if (layer_engine is None) != (layer_manifest is None):
        raise ValueError("layer_engine and layer_manifest must be given together")
    entry = EngineEntry(config_type, tile, tile_manifest, layer_engine, layer_manifest)
    _REGISTRY[config_type] = entry
    return entry


def _load_builtins():
    """Register the engines winogen ships (imported on first use: no import cycle)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from ..gen.config import TileConfig
    from ..gen.rns import RNSTileConfig
    from .generate import tile_manifest
    from .layer.engine import binary_layer_engine
    from .layer.manifest import binary_layer_fields
    from .rns.layer import RNSConv, rns_layer_fields
    from .rns.manifest import rns_tile_manifest
    from .rns.tile import RNSTile
    from .tile import binary_tile_engine
    register_engine(TileConfig, tile=binary_tile_engine, tile_manifest=tile_manifest,
                    layer_engine=binary_layer_engine, layer_manifest=binary_layer_fields)
    register_engine(RNSTileConfig, tile=RNSTile, tile_manifest=rns_tile_manifest,
                    layer_engine=lambda config: RNSConv, layer_manifest=rns_layer_fields)


def registered_types():
    """The registered tile configuration types."""
    _load_builtins()
    return tuple(_REGISTRY)


def engine_for(config):
    """The :class:`EngineEntry` of ``config``: a tile configuration, or a layer configuration
    (looked up by its ``tile``).

    Raises
    ------
    TypeError
        If no registered type is among the configuration's classes.
    """
    _load_builtins()
    from ..gen.layer import LayerConfig
    tile = config.tile if isinstance(config, LayerConfig) else config
    for cls in type(tile).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    names = " or ".join(t.__name__ for t in _REGISTRY)
    raise TypeError(f"config must be a {names} (or a LayerConfig of one), not {config!r}")


def layer_engine_class(config):
    """The layer engine class for the :class:`~winogen.gen.layer.LayerConfig` ``config``."""
    entry = engine_for(config)
    if entry.layer_engine is None:
        raise ValueError(f"config.tile must be a tile configuration with a layer engine, "
                         f"not a {type(config.tile).__name__}")
    return entry.layer_engine(config)
