"""Which configuration class describes an engine: by PE kind, or from its JSON parameters."""

from ..pe import PE_KINDS, pe_kind

__all__ = ["config_class", "tile_config_from_json"]


def config_class(pe):
    """The tile configuration class of PE kind ``pe`` (a name or a :class:`~winogen.gen.pe.PEKind`)."""
    return pe_kind(pe).config_class


def tile_config_from_json(params):
    """The tile configuration of a ``to_json()`` object (a manifest's parameters).

    The class is the one of the object's ``pe``; an object without ``pe`` (the RNS
    configurations store none) is claimed by the class whose ``JSON_KEYS`` it holds.
    """
    params = dict(params)
    if "pe" in params:
        cls = config_class(params["pe"])
    else:
        classes = {kind.config_class for kind in PE_KINDS.values()}
        claims = [c for c in classes if c.JSON_KEYS and c.JSON_KEYS <= params.keys()]
        if len(claims) != 1:
            raise ValueError(f"tile parameters must name a pe or hold the keys of one "
                             f"configuration class, not keys {sorted(params)}")
        cls = claims[0]
    return cls.from_json(params)
