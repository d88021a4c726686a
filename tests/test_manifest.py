"""The manifest module (winogen.gen.manifest): finding, reading, validating, rebuilding.

Every error is one line naming what is wrong; a manifest from a newer schema is refused;
the configuration rebuilt from a generated manifest is the one that generated it.
"""

import json
import os
import re
from pathlib import Path

import pytest

from winogen.gen.config import TileConfig
from winogen.gen.layer import LayerConfig
from winogen.gen.manifest import (ENGINE_KEYS, SCHEMA_VERSION, ManifestError, find_manifest,
                                  read_manifest, simulation_sources, to_config, validate)
from winogen.gen.rns import RNSTileConfig

MINIMAL = {"name": "eng", "verilog": ["eng.v"]}


def write(folder, name, content):
    path = Path(folder) / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def error(path, **kwargs):
    """The ManifestError message of ``read_manifest(path)``, checked to be one user-error line."""
    with pytest.raises(ManifestError) as exc:
        read_manifest(path, **kwargs)
    message = str(exc.value)
    assert "\n" not in message and message
    assert isinstance(exc.value, ValueError) and exc.value.winogen_user_error is True
    return message


# -- finding and reading -------------------------------------------------------------------------

def test_reads_a_folder_and_a_file(tmp_path):
    path = write(tmp_path, "eng.json", MINIMAL)
    assert find_manifest(tmp_path) == path
    assert read_manifest(tmp_path) == MINIMAL
    assert read_manifest(path) == MINIMAL
    assert read_manifest(str(path)) == MINIMAL


def test_missing_folder(tmp_path):
    assert error(tmp_path / "nope").startswith("out_dir must be an existing folder written by "
                                               "the generator, not ")
    with pytest.raises(ManifestError, match=r"^out_dir must be an existing folder"):
        find_manifest(tmp_path / "nope")
    assert error(tmp_path / "nope.json") == f"manifest {tmp_path / 'nope.json'} does not exist"
    assert error("").startswith("manifest path must name")


def test_no_manifest_in_folder(tmp_path):
    assert error(tmp_path) == (f"out_dir {str(tmp_path)!r} holds no manifest: expected "
                               f"<name>.json with keys name and verilog (run the generator first)")


def test_several_manifests(tmp_path):
    write(tmp_path, "a.json", dict(MINIMAL, name="x"))
    write(tmp_path, "b.json", dict(MINIMAL, name="y"))
    assert error(tmp_path) == (f"out_dir {str(tmp_path)!r} must hold one manifest, not several "
                               f"(a.json, b.json)")


def test_the_manifest_named_after_its_design_wins(tmp_path):
    write(tmp_path, "copy.json", MINIMAL)
    path = write(tmp_path, "eng.json", MINIMAL)
    assert find_manifest(tmp_path) == path


def test_corrupt_json_is_reported_as_corrupt(tmp_path):
    path = write(tmp_path, "eng.json", '{\n  "name": "eng",\n  "verilog" ["eng.v"]\n}\n')
    expected = f"manifest {path} is not valid JSON: line 3 column 13: Expecting ':' delimiter"
    assert error(tmp_path) == expected            # not "holds no manifest"
    assert error(path) == expected
    write(tmp_path, "eng.json", "")
    assert error(tmp_path) == f"manifest {path} is not valid JSON: the file is empty"
    path.write_bytes(b'{"name": "\xff"}')
    assert error(path) == f"manifest {path} is not valid JSON: it is not UTF-8 text"


def test_a_corrupt_neighbour_does_not_hide_the_manifest(tmp_path):
    write(tmp_path, "notes.json", "{oops")
    write(tmp_path, "eng.json", MINIMAL)
    assert read_manifest(tmp_path) == MINIMAL
    (tmp_path / "eng.json").unlink()
    write(tmp_path, "other.json", "[")
    assert error(tmp_path) == (f"manifest {tmp_path / 'notes.json'} is not valid JSON: line 1 "
                               f"column 2: Expecting property name enclosed in double quotes "
                               f"(and 1 more damaged JSON file)")


def test_many_foreign_files_are_not_all_listed(tmp_path):
    for i in range(5):
        write(tmp_path, f"data{i}.json", {"values": [i]})
    assert error(tmp_path) == (f"out_dir {str(tmp_path)!r} holds no manifest: data0.json, "
                               f"data1.json, data2.json, ... are not winogen manifests (expected "
                               f"<name>.json with keys name and verilog)")


def test_unreadable_file(tmp_path):
    (tmp_path / "eng.json").mkdir()               # a folder where the file should be
    assert " holds no manifest: " in error(tmp_path / "eng.json")   # a folder: searched
    assert error(tmp_path) == f"manifest {tmp_path / 'eng.json'} cannot be read: Is a directory"


def test_not_a_winogen_manifest(tmp_path):
    path = write(tmp_path, "data.json", {"weights": [1, 2, 3]})
    assert error(tmp_path) == (f"out_dir {str(tmp_path)!r} holds no manifest: data.json is not "
                               f"a winogen manifest (expected <name>.json with keys name and "
                               f"verilog)")
    assert error(path) == (f"manifest {path} is not a winogen manifest: it holds an object with "
                           f"none of the keys schema, name, kind, verilog")
    write(tmp_path, "data.json", [1, 2])
    assert error(path) == f"manifest {path} is not a winogen manifest: it holds a JSON list"


@pytest.mark.parametrize("schema", [SCHEMA_VERSION + 1, 3, 99])
def test_newer_schema_is_refused_in_one_line(tmp_path, schema):
    # A newer manifest may have renamed anything: refused before any other check.
    path = write(tmp_path, "eng.json", {"schema": schema, "design": "renamed"})
    expected = (f"manifest {path} was written by a newer winogen (manifest schema {schema}; "
                f"this one reads up to {SCHEMA_VERSION})")
    assert error(tmp_path) == expected
    assert error(path) == expected
    with pytest.raises(ManifestError, match=r"^manifest was written by a newer winogen"):
        validate({"schema": schema, **MINIMAL})


@pytest.mark.parametrize("schema", [0, -1, "1", 1.0, True, None])
def test_malformed_schema(tmp_path, schema):
    path = write(tmp_path, "eng.json", dict(MINIMAL, schema=schema))
    assert error(path) == f"manifest {path}: schema must be a positive integer, not {schema!r}"


def test_no_schema_reads_as_schema_1(tmp_path):
    assert "schema" not in MINIMAL
    assert validate(dict(MINIMAL)) == MINIMAL
    assert validate(dict(MINIMAL, schema=1)) == dict(MINIMAL, schema=1)


def test_missing_required_keys(tmp_path):
    path = write(tmp_path, "eng.json", {"schema": 1, "name": "eng"})
    assert error(tmp_path) == f"manifest {path} lacks the required key verilog"
    write(tmp_path, "eng.json", {"kind": "tile"})
    assert error(path) == f"manifest {path} lacks the required keys name, verilog"
    write(tmp_path, "eng.json", MINIMAL)
    missing = ", ".join(ENGINE_KEYS)
    assert error(path, require=ENGINE_KEYS) == f"manifest {path} lacks the required keys {missing}"


@pytest.mark.parametrize("changes, pattern", [
    ({"name": "2bad"}, r"name must be a Verilog identifier, not '2bad'$"),
    ({"name": 7}, r"name must be a Verilog identifier, not 7$"),
    ({"verilog": []}, r"verilog must be a non-empty list of file names, not \[\]$"),
    ({"verilog": [3]}, r"verilog must be a non-empty list of file names, not \[3\]$"),
])
def test_malformed_fields(tmp_path, changes, pattern):
    path = write(tmp_path, "eng.json", dict(MINIMAL, **changes))
    assert re.search(rf"^manifest {re.escape(str(path))}: {pattern}", error(path))
    with pytest.raises(ManifestError, match=rf"^manifest {pattern}"):
        validate(dict(MINIMAL, **changes))


def test_long_values_are_not_echoed_whole(tmp_path):
    path = write(tmp_path, "eng.json", dict(MINIMAL, name="x" * 5000 + "-"))
    assert len(error(path)) < 200 + len(str(path))


def test_validate_in_memory():
    with pytest.raises(ManifestError, match=r"^manifest must be a dict \(the generator's "
                                            r"manifest\), not \[1\]$"):
        validate([1])
    with pytest.raises(TypeError, match=r"^require must be an iterable of keys"):
        validate(MINIMAL, require="ports")


def test_simulation_sources(tmp_path):
    manifest = dict(MINIMAL, simulation_models=["model.v"])
    assert simulation_sources(tmp_path, manifest) == [tmp_path / "eng.v", tmp_path / "model.v"]
    assert simulation_sources(str(tmp_path), MINIMAL) == [tmp_path / "eng.v"]
    from winogen.hw.generate import simulation_sources as reexported
    assert reexported is simulation_sources


# -- to_config ----------------------------------------------------------------------------------

def test_to_config_errors(tmp_path):
    with pytest.raises(ManifestError, match=r"^manifest lacks the required keys kind, parameters$"):
        to_config(MINIMAL)
    with pytest.raises(ManifestError, match=r"^manifest kind must be one of tile, rns_tile, "
                                            r"layer, not 'fft'$"):
        to_config(dict(MINIMAL, kind="fft", parameters={}))
    with pytest.raises(ManifestError, match=r"^manifest parameters must be a JSON object"):
        to_config(dict(MINIMAL, kind="tile", parameters=[2, 3]))
    bad = dict(MINIMAL, kind="tile", parameters=dict(TileConfig(2, 3).to_json(), m=0))
    with pytest.raises(ManifestError, match=r"^manifest parameters do not make a valid tile "
                                            r"configuration: ") as exc:
        to_config(bad)
    assert "\n" not in str(exc.value)
    unknown = dict(MINIMAL, kind="tile", parameters=dict(TileConfig(2, 3).to_json(), bogus=1))
    with pytest.raises(ManifestError, match=r"bogus"):
        to_config(unknown)
    rns = dict(RNSTileConfig(2, 3, moduli="8bit-primes-4").to_json())
    del rns["moduli"]
    with pytest.raises(ManifestError, match=r"rns_tile configuration: 'moduli' is missing$"):
        to_config(dict(MINIMAL, kind="rns_tile", parameters=rns))
    path = write(tmp_path, "eng.json", dict(MINIMAL, kind="layer", parameters={}))
    with pytest.raises(ManifestError, match=rf"^manifest {re.escape(str(path))}: "
                                            r"parameters do not make a valid layer"):
        to_config(read_manifest(path), source=path)


def _generate(kind, config, out):
    if kind == "tile":
        from winogen.hw.generate import generate_tile
        return generate_tile(config, out)
    if kind == "rns_tile":
        from winogen.hw.rns import generate_rns_tile
        return generate_rns_tile(config, out)
    from winogen.hw.layer import generate_layer
    return generate_layer(config, out)


@pytest.mark.parametrize("kind, config", [
    ("tile", TileConfig(2, 3, 8, 8, filter_transform="online")),
    ("tile", TileConfig(2, 3, 4, 4, pe="adder", adder_matrices="balanced")),
    ("rns_tile", RNSTileConfig(2, 3, moduli="8bit-primes-4", redundant_moduli=1, channels=2)),
    ("layer", LayerConfig(TileConfig(2, 3, 6, 6), max_height=6, max_width=6, max_cin=2,
                          max_cout=2, output_width=8)),
], ids=["tile", "adder-tile", "rns-tile", "layer"])
def test_round_trip_through_a_generated_manifest(tmp_path, kind, config):
    _, jpath, manifest = _generate(kind, config, tmp_path)
    read = read_manifest(tmp_path, require=ENGINE_KEYS)
    assert read == json.loads(json.dumps(manifest))
    assert read["kind"] == kind
    rebuilt = to_config(read)
    # Equal as the manifest states it (the generator resolves defaults such as points).
    assert type(rebuilt) is type(config)
    assert rebuilt.to_json() == config.to_json() == read["parameters"]
    assert rebuilt.module_name == read["name"]
    assert read_manifest(jpath) == read
    assert simulation_sources(tmp_path, read)[0] == tmp_path / f"{config.module_name}.v"


def test_testbench_reads_the_manifest_from_its_environment(tmp_path, monkeypatch):
    from winogen.sim.testbench import MANIFEST_ENV, engine_manifest
    monkeypatch.delenv(MANIFEST_ENV, raising=False)
    with pytest.raises(ManifestError, match=rf"^{MANIFEST_ENV} must name the engine's manifest"):
        engine_manifest()
    path = write(tmp_path, "eng.json", {"schema": SCHEMA_VERSION + 1})
    monkeypatch.setenv(MANIFEST_ENV, os.fspath(path))
    with pytest.raises(ManifestError, match=r"was written by a newer winogen"):
        engine_manifest()
    write(tmp_path, "eng.json", MINIMAL)
    with pytest.raises(ManifestError, match=r"lacks the required keys kind, top"):
        engine_manifest()
