"""The README's layer-interface section promises only what a generated manifest holds.

Every ``code`` span of the section that names a manifest key path (``widths.data``,
``algorithm.hardware.G``, ``status_errors.shift``, …) must resolve in a generated
manifest; a ``<port>.<field>`` span (``status.busy``) must name a field of that port; a
``winogen.…`` span must import. A span that is none of these fails, so the section cannot
drift from the manifest unnoticed.
"""

import importlib
import re
from pathlib import Path

import numpy as np
import pytest

from winogen.gen.config import TileConfig
from winogen.gen.fixedweights import FixedWeights
from winogen.gen.layer import LayerConfig, RUN_ERRORS
from winogen.hw.layer import generate_layer

README = Path(__file__).resolve().parent.parent / "README.md"

CONFIGS = {
    "binary_requant": LayerConfig(TileConfig(2, 3, 8, 8), max_height=8, max_width=8,
                                  max_cin=4, max_cout=4, p_in=2, p_out=2, pixels_per_beat=2,
                                  filters_per_beat=2, output_width=8),
    "quantized": LayerConfig(TileConfig(2, 3, 8, 8, wino_width=9, wino_scales="tapwise"),
                             max_height=8, max_width=8, max_cin=4, max_cout=4),
    # The sparse engines: weight-specialized (no weights stream) and zero-skipping.
    "specialized": LayerConfig(TileConfig(2, 3, 8, 8), max_height=8, max_width=8, max_cin=2,
                               max_cout=2, p_in=2, p_out=2, fixed_weights=FixedWeights(
                                   "w", np.arange(36).reshape(2, 2, 3, 3) - 18)),
    "zero_skipping": LayerConfig(TileConfig(2, 3, 8, 8), max_height=8, max_width=8,
                                 max_cin=4, max_cout=4, p_in=2, p_out=2, sparse_lanes=4),
}


def _section():
    text = README.read_text()
    start = text.index("## The layer engines' interface")
    end = text.index("\n## ", start + 1)
    return text[start:end]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    out = {}
    for name, cfg in CONFIGS.items():
        _, _, manifest = generate_layer(cfg, tmp_path_factory.mktemp(name))
        out[name] = manifest
    return out


def _resolve(manifest, path):
    node = manifest
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _python_name(dotted):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_name_the_section_promises_is_in_a_manifest(manifests):
    spans = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`",
                           _section()))
    assert len(spans) >= 25, sorted(spans)
    binary = manifests["binary_requant"]
    ports = {p["name"] for p in binary["ports"]}
    unresolved = []
    for span in sorted(spans):
        path = span.split(".")
        if path[0] == "winogen":
            _python_name(span)
        elif any(path[0] in m for m in manifests.values()):
            if not any(_resolve(m, path) for m in manifests.values()):
                unresolved.append(span)
        elif path[0] in ports and len(path) == 2:
            fields = binary[f"{path[0]}_fields"]
            if path[1] not in fields:
                unresolved.append(span)
        else:
            unresolved.append(span)
    assert not unresolved, f"README names missing from the manifests: {unresolved}"


def test_error_bits_and_fields_are_the_ones_the_section_lists(manifests):
    section = _section()
    binary = manifests["binary_requant"]
    assert binary["status_errors"] == CONFIGS["binary_requant"].run_errors
    for name in RUN_ERRORS:             # the zero-skipping engine's too
        assert f"`status_errors.{name}`" in section
    for name in binary["config_fields"]:
        assert f"`config_fields.{name}`" in section
    for name in binary["status_fields"]:
        assert f"`status_fields.{name}`" in section
    stream_ports = {p["stream"] for p in binary["ports"] if "stream" in p}
    for stream in stream_ports:
        assert f"| `{stream}` |" in section, stream
