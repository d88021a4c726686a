"""The AXI4-Stream wrapper (winogen.fpga.axis) under Verilator: lint, and layers through it.

Two layer engines are generated (cached by :func:`winogen.sim.driver.engine_files`): a
Winograd F(2,3) P 2×2, and an RNS F(2,3) P 2×1 with requantization, whose output tdata is
padded and whose ``error`` port is passed through. Each wrapper is written into a folder of
its own and built with the engine, the wrapper as the top. The cocotb testbench
:mod:`winogen.sim.tb_axis` drives it with cocotbext-axi's AXI4-Stream source and sink
models, random pauses on every stream, several layers queued back to back, and checks every
output against ``layer_golden`` and ``tlast`` on each layer's last beat.
"""

import json

import numpy as np
import pytest

from winogen.fpga.axis import axis_wrapper
from winogen.gen.config import TileConfig
from winogen.gen.fixedweights import FixedWeights
from winogen.gen.layer import LayerConfig
from winogen.gen.manifest import ENGINE_KEYS, read_manifest
from winogen.gen.rns import RNSTileConfig
from winogen.sim import build as vbuild
from winogen.sim.driver import LAYER_BUILD_ARGS, engine_files

from test_axis import padded_manifest

pytestmark = pytest.mark.verilator

ENGINES = {
    # The plain case: every payload but config's is whole bytes.
    "wino23_p2x2": LayerConfig(TileConfig(2, 3, 8, 8), max_height=12, max_width=12,
                               max_cin=4, max_cout=4, p_in=2, p_out=2),
    # Padded outputs (4 x 7 bits in a 32-bit tdata), unsigned weights (residues) and the
    # error port of a redundant modulus, passed through.
    "rns23_p2x1_requant": LayerConfig(
        RNSTileConfig(2, 3, moduli=(255, 256, 257, 511), redundant_moduli=1, method="scaled",
                      input_transform="residue", channels=3),
        max_height=8, max_width=8, max_cin=3, max_cout=3, p_in=2, p_out=1, output_width=7,
        rounding="half_up"),
    # A weight-specialized engine: no weights stream, so no s_axis_weights.
    "fixed23_3to2": LayerConfig(
        TileConfig(2, 3, 8, 8), max_height=8, max_width=8, max_cin=3, max_cout=2, p_in=3,
        p_out=2, output_width=8,
        fixed_weights=FixedWeights("w", np.arange(-27, 27).reshape(2, 3, 3, 3) * 4)),
}

LAYERS = {
    "wino23_p2x2": [
        # Padding, C_in not a multiple of P_in (lane 1 of group 1 random), C_out = max.
        {"height": 9, "width": 7, "cin": 3, "cout": 4, "padding": 1, "seed": 1},
        # One output beat: tlast on the layer's first beat.
        {"height": 4, "width": 4, "cin": 1, "cout": 1, "padding": 0, "seed": 2},
        # The extremes of the ranges, the largest map, C_out odd (an unused output lane).
        {"height": 12, "width": 12, "cin": 4, "cout": 3, "padding": 1, "seed": 3,
         "pattern": "extreme"},
    ],
    "rns23_p2x1_requant": [
        {"height": 8, "width": 7, "cin": 3, "cout": 3, "padding": 1, "shift": 3, "seed": 11},
        {"height": 4, "width": 4, "cin": 1, "cout": 1, "padding": 0, "shift": 0, "seed": 12},
        {"height": 6, "width": 6, "cin": 2, "cout": 2, "padding": 1, "shift": 5, "seed": 13,
         "pattern": "extreme"},
    ],
    "fixed23_3to2": [
        {"height": 8, "width": 7, "cin": 3, "cout": 2, "padding": 1, "shift": 6, "seed": 21},
        {"height": 5, "width": 8, "cin": 3, "cout": 2, "padding": 0, "shift": 7, "seed": 22,
         "pattern": "extreme"},
    ],
}


@pytest.fixture(scope="module", params=list(ENGINES))
def wrapped(request, tmp_path_factory):
    """The engine's Verilog and manifest, and its wrapper written into a folder of its own."""
    vpath, jpath = engine_files(ENGINES[request.param])
    manifest = read_manifest(jpath, require=ENGINE_KEYS)
    out = tmp_path_factory.mktemp("axis")
    wrapper = out / f"{manifest['top']}_axis.v"
    wrapper.write_text(axis_wrapper(manifest))
    return request.param, vpath, jpath, manifest, wrapper


def test_wrapper_lints(wrapped):
    _, vpath, _, manifest, wrapper = wrapped
    vbuild.lint([vpath, wrapper], f"{manifest['top']}_axis")
    # a weight-specialized engine has no weight stream to wrap
    assert ("s_axis_weights_tdata" in wrapper.read_text()) == ("fixed_weights" not in manifest)


def test_padded_outputs_lint(tmp_path):
    """Several padded payloads and an error port (test_axis.padded_manifest), linted against
    a stub engine with that manifest's ports; and the lint is not blind to a missing pad."""
    manifest = padded_manifest()
    stub = tmp_path / f"{manifest['top']}.v"
    decls = ",\n".join(f"    {p['direction']} wire [{p['width'] - 1}:0] {p['name']}"
                       for p in manifest["ports"])
    assigns = "\n".join(f"    assign {p['name']} = '0;" for p in manifest["ports"]
                        if p["direction"] == "output")
    stub.write_text(f"/* verilator lint_off UNUSEDSIGNAL */\nmodule {manifest['top']} (\n"
                    f"{decls}\n);\n{assigns}\nendmodule\n/* verilator lint_on UNUSEDSIGNAL */\n")
    wrapper = tmp_path / f"{manifest['top']}_axis.v"
    wrapper.write_text(axis_wrapper(manifest))
    vbuild.lint([stub, wrapper], f"{manifest['top']}_axis")
    # The lint is not blind: an unpadded output tdata is a width error.
    wrapper.write_text(axis_wrapper(manifest).replace("{4'd0, outputs__payload_w}",
                                                      "outputs__payload_w"))
    with pytest.raises(vbuild.LintError, match="WIDTH"):
        vbuild.lint([stub, wrapper], f"{manifest['top']}_axis")


def test_layers_through_axi4_stream(wrapped, tmp_path):
    name, vpath, jpath, manifest, wrapper = wrapped
    top = f"{manifest['top']}_axis"
    handle = vbuild.build([vpath, wrapper], top, build_args=LAYER_BUILD_ARGS)
    result = vbuild.run(handle, "winogen.sim.tb_axis", testcase="layers", seed=7,
                        test_dir=tmp_path / "sim",
                        extra_env={"WINOGEN_MANIFEST": str(jpath),
                                   "WINOGEN_LAYERS": json.dumps(LAYERS[name]),
                                   "WINOGEN_AXIS_PAUSE": "0.3", "WINOGEN_AXIS_SEED": "7"})
    assert [n.split(".")[-1] for n in result.passed] == ["layers"]
