"""Provenance (winogen.gen.provenance): package versions and source fingerprints."""

from importlib import metadata
import platform
import re
import shutil

import pytest

from winogen.gen.provenance import (GENERATOR_PACKAGES, generator_versions, package_version,
                                    package_versions, source_fingerprint)

ABSENT = "winogen-no-such-distribution"


def test_package_version():
    assert package_version("winogen") == metadata.version("winogen")
    assert package_version("amaranth") == metadata.version("amaranth")
    assert package_version(ABSENT) is None
    assert package_version(ABSENT, "unknown") == "unknown"
    with pytest.raises(TypeError, match=r"^package name must be a non-empty string, not ''$"):
        package_version("")


def test_package_versions_keep_order():
    versions = package_versions(["numpy", ABSENT, "winogen"], default="unknown")
    assert list(versions) == ["numpy", ABSENT, "winogen"]
    assert versions == {"numpy": metadata.version("numpy"), ABSENT: "unknown",
                        "winogen": metadata.version("winogen")}
    with pytest.raises(TypeError, match=r"^names must be an iterable of package names"):
        package_versions("numpy")


def test_generator_versions_are_what_a_manifest_records():
    versions = generator_versions()
    assert list(versions) == ["python", *GENERATOR_PACKAGES]
    assert versions["python"] == platform.python_version()
    assert versions["winogen"] == metadata.version("winogen")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "a.py").write_text("A = 1\n")
    (root / "sub" / "b.py").write_text("B = 2\n")
    return root


def test_fingerprint_is_stable_and_hex(tree):
    first = source_fingerprint([tree])
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert source_fingerprint([tree]) == first == source_fingerprint(tree)


def test_fingerprint_changes_with_any_source(tree):
    seen = {source_fingerprint([tree])}

    def changed():
        value = source_fingerprint([tree])
        assert value not in seen
        seen.add(value)

    (tree / "sub" / "b.py").write_text("B = 3\n")            # a subpackage's file edited
    changed()
    (tree / "sub" / "deeper").mkdir()
    (tree / "sub" / "deeper" / "c.py").write_text("")         # a file added, empty
    changed()
    (tree / "sub" / "deeper" / "c.py").rename(tree / "sub" / "c.py")   # moved
    changed()
    (tree / "a.py").rename(tree / "z.py")                     # renamed, same bytes
    changed()


def test_fingerprint_ignores_other_files_and_location(tree, tmp_path):
    before = source_fingerprint([tree])
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "a.cpython-311.py").write_text("cached")
    (tree / "notes.txt").write_text("not a source")
    assert source_fingerprint([tree]) == before
    assert source_fingerprint([tree], suffixes=(".py", ".txt")) != before
    # The same tree elsewhere: no absolute path enters the fingerprint.
    copy = tmp_path / "elsewhere" / "pkg"
    shutil.copytree(tree, copy)
    assert source_fingerprint([copy]) == before


def test_fingerprint_of_packages_modules_and_files(tree):
    package = source_fingerprint(["winogen.gen"])
    assert package == source_fingerprint(["winogen.gen"])
    assert package != source_fingerprint(["winogen.gen", "winogen.hw"])
    module = source_fingerprint(["winogen.gen.provenance"])
    assert module != package
    # Concatenation is unambiguous: two sources differ from one holding both files.
    assert source_fingerprint([tree / "a.py", tree / "sub" / "b.py"]) != source_fingerprint([tree])
    with pytest.raises(ValueError, match=r"^source must name an importable module or package, "
                                         r"not 'winogen.nope'$"):
        source_fingerprint(["winogen.nope"])
    with pytest.raises(ValueError, match=r"^source path must be an existing folder or file"):
        source_fingerprint([tree / "missing"])
    with pytest.raises(TypeError, match=r"^source must be a module or package name or a path"):
        source_fingerprint([3])


def test_engine_cache_key_follows_every_generator_source(tree, monkeypatch):
    """sim.driver's generated-engine cache: a change anywhere in a source tree, subpackages
    included, gives a new key, so a stale engine is never reused."""
    from winogen.sim import driver
    from winogen.gen.layer import LayerConfig
    from winogen.gen.config import TileConfig
    config = LayerConfig(TileConfig(2, 3, 6, 6), max_height=6, max_width=6, max_cin=2, max_cout=2)
    monkeypatch.setattr(driver, "_GENERATOR_SOURCES", (tree,))
    driver._generator_digest.cache_clear()
    try:
        before = driver._engine_key(config)
        (tree / "sub" / "b.py").write_text("B = 4\n")
        driver._generator_digest.cache_clear()
        assert driver._engine_key(config) != before
    finally:
        driver._generator_digest.cache_clear()
    monkeypatch.undo()
    assert driver._GENERATOR_SOURCES == ("winogen.gen", "winogen.hw")
