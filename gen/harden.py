"""Selective hardening of a layer engine's blocks (issue 18): which block classes are
replicated, and how.

``tmr``
    Three copies of the block and a bitwise majority voter on its outputs: one faulty
    copy is outvoted.
``dmr``
    Two copies and a comparator: the engine's ``error`` output is raised with every
    output beat that a mismatch may have reached (the RNS engines' check, for binary
    engines). The first copy's values go on.

A specification is text ``CLASS:SCHEME[,CLASS:SCHEME...]`` over the site classes of
:mod:`winogen.gen.faultmodel` (:data:`HARDENABLE`), or ``auto:BUDGET`` (the generator
picks the classes; see ``winogen faults``). In a :class:`~winogen.gen.layer.LayerConfig`
it is the tuple ``((class, scheme), ...)`` in data-flow order.
"""

from .faultmodel import COPIES_OF, SITE_CLASSES

__all__ = ["HARDEN_SCHEMES", "HARDENABLE", "COPIES", "parse_harden", "normalize_harden",
           "engine_classes", "harden_tag"]

HARDEN_SCHEMES = ("tmr", "dmr")
#: Copies of a block per scheme.
COPIES = COPIES_OF
#: Classes a layer engine can replicate (the online filter transform is not among them).
HARDENABLE = tuple(c for c in SITE_CLASSES if c != "filter_transform")
_TAGS = {"input_transform": "it", "products": "pe", "lane_sums": "ls", "accumulation": "acc",
         "output_transform": "ot", "descale": "ds", "requantization": "rq"}


def parse_harden(text):
    """``"products:tmr,accumulation:dmr"`` -> ``(("products", "tmr"), ("accumulation", "dmr"))``
    (in data-flow order); ``"auto:0.25"`` -> ``("auto", 0.25)``; ``""`` or ``"none"`` -> ``()``.

    Raises ValueError naming the accepted values.
    """
    if not isinstance(text, str):
        raise TypeError(f"harden must be text, not {text!r}")
    text = text.strip()
    if text in ("", "none"):
        return ()
    if text.startswith("auto:"):
        try:
            budget = float(text[5:])
        except ValueError:
            budget = -1.0
        if not 0 < budget <= 10:
            raise ValueError(f"harden auto:BUDGET needs a budget above 0 and at most 10 (the "
                             f"added LUT4 as a fraction of the engine's), not {text!r}")
        return ("auto", budget)
    pairs = {}
    for item in text.split(","):
        cls, sep, scheme = item.strip().partition(":")
        if not sep or cls not in HARDENABLE or scheme not in HARDEN_SCHEMES:
            raise ValueError(f"harden must be CLASS:SCHEME[,...] with CLASS one of "
                             f"{', '.join(HARDENABLE)} and SCHEME one of "
                             f"{', '.join(HARDEN_SCHEMES)}, or auto:BUDGET, not {text!r}")
        if cls in pairs:
            raise ValueError(f"harden names {cls} twice, in {text!r}")
        pairs[cls] = scheme
    return tuple((c, pairs[c]) for c in HARDENABLE if c in pairs)


def engine_classes(config):
    """The hardenable classes a layer engine has."""
    t = config.tile
    if config.algorithm == "winograd":
        have = ["input_transform", "products"] + (["lane_sums"] if config.p_in > 1 else []) \
            + ["accumulation", "output_transform"] + (["descale"] if t.removes_scale else [])
    else:
        have = ["products", "lane_sums", "accumulation"]
    if config.output_width is not None:
        have.append("requantization")
    return tuple(have)


def normalize_harden(value, config):
    """``value`` (a tuple/list of pairs, a dict or specification text) as the canonical
    tuple, checked against the classes ``config``'s engine has."""
    if value is None or (not isinstance(value, str) and len(value) == 0):
        return ()
    if isinstance(value, str):
        value = parse_harden(value)
        if value and value[0] == "auto":
            raise ValueError("harden auto:BUDGET needs a workload to measure vulnerability on: "
                             "run winogen faults --harden ENGINE=auto:BUDGET, which prints the "
                             "classes it picks, and pass them as CLASS:SCHEME pairs")
    if isinstance(value, dict):
        value = tuple(value.items())
    try:
        pairs = [tuple(p) for p in value]
    except TypeError:
        raise ValueError(f"harden must be pairs (class, scheme), not {value!r}") from None
    text = ",".join(f"{p[0]}:{p[1]}" if len(p) == 2 else "?" for p in pairs)
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"harden must be pairs (class, scheme), not {value!r}")
    canonical = parse_harden(text) if pairs else ()
    if pairs and getattr(config.tile.pe_kind, "modular", False):
        raise ValueError("harden applies to binary engines (RNS engines check themselves with "
                         "a redundant modulus), not to pe='rns'")
    have = engine_classes(config)
    for cls, _ in canonical:
        if cls not in have:
            raise ValueError(f"harden: this engine has no {cls} block (it has "
                             f"{', '.join(have)}), not {cls!r}")
    return canonical


def harden_tag(harden):
    """A short module-name suffix for a hardening, e.g. ``_h_pe3_acc2`` ('' if none)."""
    if not harden:
        return ""
    return "_h_" + "_".join(f"{_TAGS[c]}{3 if s == 'tmr' else 2}" for c, s in harden)
