"""The manifest: the JSON file that describes an emitted engine completely.

Every engine's manifest (``OUT/<name>.json``) carries ``schema``, the version of
its format. Builders (in :mod:`winogen.hw`) stamp it; readers (simulation,
synthesis, bundle) go through :func:`read_manifest` and :func:`validate`, which
refuse a manifest from a newer schema with one line. A manifest without
``schema`` was written before the field existed and is read as schema 1.

Every error is a :class:`ManifestError`: a :class:`ValueError` whose message is
one line naming the file and what is wrong with it.

This module imports no Amaranth.
"""

import json
from pathlib import Path
import re

__all__ = ["SCHEMA_VERSION", "HANDSHAKE", "ENGINE_KEYS", "ManifestError", "find_manifest",
           "read_manifest", "validate", "to_config", "simulation_sources"]

#: Version of the manifest format; bump it when a reader could misread an older one.
SCHEMA_VERSION = 1

#: The stream handshake every engine obeys, as the manifest states it.
HANDSHAKE = ("a beat transfers on a rising clk edge where valid and ready are both 1; "
             "valid never waits for ready, and payload is held while valid and not ready")

#: Keys every manifest has: what synthesis and the bundle need to find the design.
_REQUIRED = ("name", "verilog")

#: Keys a reader that rebuilds and drives the engine needs besides those (the testbenches).
ENGINE_KEYS = ("kind", "top", "parameters", "ports", "latency")

# A JSON object holding none of these is some other file, not a manifest.
_SIGNATURE = ("schema", "name", "kind", "verilog")

#: The engine kinds a manifest names, each rebuilt by :func:`to_config`.
_KINDS = ("tile", "rns_tile", "layer")

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


class ManifestError(ValueError):
    """A manifest is missing, unreadable, malformed or from a newer winogen.

    The message is a single line suitable for ``winogen: error: <message>``.
    """
    #: The CLI prints it as one line with exit status 2, without a traceback.
    winogen_user_error = True


def _short(value, limit=60):
    """``repr(value)``, cut to ``limit`` characters: a malformed file may hold huge values."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 5] + " ...>"


def _who(source):
    return "manifest" if source is None else f"manifest {source}"


def _field_error(source, text):
    return ManifestError(f"manifest {text}" if source is None else f"manifest {source}: {text}")


def _load(path):
    """The JSON value of the file ``path``; ManifestError if unreadable or not JSON."""
    who = _who(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"{who} is not valid JSON: it is not UTF-8 text") from None
    except OSError as exc:
        raise ManifestError(f"{who} cannot be read: {exc.strerror or exc}") from None
    if not text.strip():
        raise ManifestError(f"{who} is not valid JSON: the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{who} is not valid JSON: line {exc.lineno} column {exc.colno}: "
                            f"{exc.msg}") from None
    except RecursionError:
        raise ManifestError(f"{who} is not valid JSON: it is nested too deeply") from None


def _looks_like_manifest(data):
    # The generator's manifests always had name and verilog; a newer one states its schema.
    return isinstance(data, dict) and (("name" in data and "verilog" in data)
                                       or isinstance(data.get("schema"), int)
                                       or data.get("kind") in _KINDS)


def _find(out):
    """``(path, data)`` of the one manifest in folder ``out``."""
    found, broken, foreign = [], [], []
    for path in sorted(out.glob("*.json")):
        try:
            data = _load(path)
        except ManifestError as exc:
            broken.append(exc)
            continue
        (found if _looks_like_manifest(data) else foreign).append((path, data))
    # The manifest is named after the design; prefer that when several JSON files qualify.
    named = [(p, d) for p, d in found if p.stem == d.get("name")]
    found = named or found
    if len(found) > 1:
        names = ", ".join(p.name for p, _ in found)
        raise ManifestError(f"out_dir {str(out)!r} must hold one manifest, not several ({names})")
    if found:
        return found[0]
    if broken:
        # The manifest is there but damaged: say so rather than "no manifest".
        more = len(broken) - 1
        more = f" (and {more} more damaged JSON file{'s' * (more > 1)})" if more else ""
        raise ManifestError(f"{broken[0]}{more}")
    if foreign:
        names = ", ".join(p.name for p, _ in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        verb = "is not a winogen manifest" if len(foreign) == 1 else "are not winogen manifests"
        raise ManifestError(f"out_dir {str(out)!r} holds no manifest: {names} {verb} "
                            f"(expected <name>.json with keys name and verilog)")
    raise ManifestError(f"out_dir {str(out)!r} holds no manifest: expected <name>.json "
                        f"with keys name and verilog (run the generator first)")


def find_manifest(out_dir):
    """The path of the manifest ``OUT/<name>.json`` in the generator's output folder.

    Of the folder's ``*.json`` files, those holding an object with ``name`` and
    ``verilog`` (or an integer ``schema``, or an engine ``kind``) are manifests; if
    several are, the one whose file name is its ``name``. A damaged JSON file is
    reported as such when no manifest is found.

    Raises
    ------
    ManifestError
        If ``out_dir`` is not a folder, holds no manifest, holds several, or its only
        manifest-like file is not valid JSON.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise ManifestError(f"out_dir must be an existing folder written by the generator, "
                            f"not {str(out_dir)!r}")
    return _find(out)[0]


def read_manifest(path, *, require=()):
    """Read and :func:`validate` a manifest.

    Parameters
    ----------
    path : path-like
        The generator's output folder (the manifest is found as :func:`find_manifest`
        does) or the manifest file itself.
    require : iterable of str
        Keys the caller needs besides ``name`` and ``verilog`` (for instance
        :data:`ENGINE_KEYS`).

    Returns
    -------
    dict
        The manifest as written (a manifest without ``schema`` is schema 1).

    Raises
    ------
    ManifestError
        With one line: the folder or file is missing, the folder holds no manifest or
        several, the file is not valid JSON or not a winogen manifest, it was written by
        a newer winogen, or it lacks a required key.
    """
    if isinstance(path, str) and not path:
        raise ManifestError("manifest path must name the generator's output folder or its "
                            "<name>.json, not ''")
    p = Path(path)
    if p.is_dir():
        p, data = _find(p)
    elif p.is_file():
        data = _load(p)
    elif p.suffix == ".json":
        raise ManifestError(f"manifest {p} does not exist")
    else:
        raise ManifestError(f"out_dir must be an existing folder written by the generator, "
                            f"not {str(path)!r}")
    return validate(data, source=p, require=require)


def _check_schema(manifest, source):
    schema = manifest.get("schema", 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise _field_error(source, f"schema must be a positive integer, not {_short(schema)}")
    if schema > SCHEMA_VERSION:
        raise ManifestError(f"{_who(source)} was written by a newer winogen (manifest schema "
                            f"{schema}; this one reads up to {SCHEMA_VERSION})")


def validate(manifest, *, source=None, require=()):
    """Check that ``manifest`` is a winogen manifest this version can read; return it.

    Checked in this order, so that the first message is the useful one: a JSON object
    with at least one manifest key; ``schema`` (absent means 1) not newer than
    :data:`SCHEMA_VERSION`; the keys ``name``, ``verilog`` and ``require`` present;
    ``name`` a Verilog identifier; ``verilog`` a non-empty list of file names.

    Parameters
    ----------
    manifest : object
        The parsed JSON.
    source : path-like or str, optional
        Where it came from, for the messages.
    require : iterable of str
        Further keys the caller needs.

    Raises
    ------
    ManifestError
    """
    if isinstance(require, str):
        raise TypeError(f"require must be an iterable of keys, not the string {require!r}")
    if not isinstance(manifest, dict) or not any(k in manifest for k in _SIGNATURE):
        what = (f"an object with none of the keys {', '.join(_SIGNATURE)}"
                if isinstance(manifest, dict) else f"a JSON {type(manifest).__name__}")
        if source is None:
            raise ManifestError(f"manifest must be a dict (the generator's manifest), "
                                f"not {_short(manifest)}")
        raise ManifestError(f"{_who(source)} is not a winogen manifest: it holds {what}")
    _check_schema(manifest, source)
    missing = [k for k in dict.fromkeys((*_REQUIRED, *require)) if k not in manifest]
    if missing:
        raise ManifestError(f"{_who(source)} lacks the required key{'s' * (len(missing) > 1)} "
                            f"{', '.join(missing)}")
    name = manifest["name"]
    if not isinstance(name, str) or not _IDENT_RE.fullmatch(name):
        raise _field_error(source, f"name must be a Verilog identifier, not {_short(name)}")
    verilog = manifest["verilog"]
    if isinstance(verilog, str):
        verilog = [verilog]
    if not isinstance(verilog, list) or not verilog or \
            not all(isinstance(v, str) and v for v in verilog):
        raise _field_error(source, f"verilog must be a non-empty list of file names, "
                                   f"not {_short(manifest['verilog'])}")
    return manifest


def _config_class(kind):
    # Imported here: gen.config, gen.rns and gen.layer are heavy and import each other.
    if kind == "tile":
        from .config import TileConfig
        return TileConfig
    if kind == "rns_tile":
        from .rns import RNSTileConfig
        return RNSTileConfig
    if kind == "layer":
        from .layer import LayerConfig
        return LayerConfig
    return None


def to_config(manifest, *, source=None):
    """The configuration a manifest was generated from.

    ``manifest["kind"]`` chooses the class (``tile``: :class:`~winogen.gen.config.TileConfig`,
    ``rns_tile``: :class:`~winogen.gen.rns.RNSTileConfig`, ``layer``:
    :class:`~winogen.gen.layer.LayerConfig`), rebuilt from ``manifest["parameters"]``.

    Raises
    ------
    ManifestError
        If the manifest is not valid (see :func:`validate`), its kind is unknown, or its
        parameters do not make a valid configuration of that kind.
    """
    validate(manifest, source=source, require=("kind", "parameters"))
    kind, params = manifest["kind"], manifest["parameters"]
    cls = _config_class(kind) if isinstance(kind, str) else None
    if cls is None:
        raise _field_error(source, f"kind must be one of {', '.join(_KINDS)}, not {_short(kind)}")
    if not isinstance(params, dict):
        raise _field_error(source, f"parameters must be a JSON object, not {_short(params)}")
    from_json = getattr(cls, "from_json", None)
    try:
        return from_json(params) if from_json is not None else cls(**params)
    except (TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, KeyError):
            reason = f"{_short(exc.args[0] if exc.args else None)} is missing"
        else:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _field_error(source, f"parameters do not make a valid {kind} configuration: "
                                   f"{reason}") from None


def simulation_sources(out_dir, manifest):
    """Every Verilog file a simulator needs for the design in ``out_dir`` (design, then models)."""
    out = Path(out_dir)
    return [out / v for v in manifest["verilog"]] + [out / v for v in
                                                     manifest.get("simulation_models", ())]
