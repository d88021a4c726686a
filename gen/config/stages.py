"""``--pipeline N``: the one mapping from a pipeline depth to a configuration's stage fields."""

from ..checks import check_int
from ..pe import pe_kind

__all__ = ["pipeline_stages"]


def pipeline_stages(n, pe="mul"):
    """The register stages of ``winogen generate --pipeline N``: ``n`` per transform.

    The stage fields of the configuration class of PE kind ``pe``
    (:meth:`~winogen.gen.config.TileConfigBase.pipeline_stages`): for a
    :class:`~winogen.gen.config.TileConfig` the PE keeps at most 2 (its operand and
    result registers), the descaler at most 1; an
    :class:`~winogen.gen.rns.RNSTileConfig` has no filter block (offline residue
    weights) and from ``n = 2`` on keeps its defaults for the PE (operands, product,
    residue) and the mixed-radix converter (a register per level): those keys are
    left out.
    """
    n = check_int("pipeline", n, 0)
    return pe_kind(pe).config_class.pipeline_stages(n)
