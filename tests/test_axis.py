"""The AXI4-Stream wrapper's text (winogen.fpga.axis), without a simulator.

A manifest here is written by hand in the shape :func:`winogen.hw.generate.port_table` gives
(tests/test_axis_verilator.py lints and simulates the wrapper of a generated engine).
"""

import copy
import re

import pytest

from winogen.fpga.axis import axis_ports, axis_wrapper, tdata_width
from winogen.gen.manifest import ManifestError


def _stream(name, payload, into, packing=None):
    out = "output" if into == "input" else "input"
    entry = {"name": f"{name}__payload", "direction": into, "width": payload,
             "stream": name, "role": "payload"}
    if packing:
        entry["packing"] = packing
    return [entry,
            {"name": f"{name}__valid", "direction": into, "width": 1, "stream": name,
             "role": "valid"},
            {"name": f"{name}__ready", "direction": out, "width": 1, "stream": name,
             "role": "ready"}]


def padded_manifest():
    """A layer manifest whose config, activation and output payloads are not whole bytes
    (20, 12 and 84 bits), with an RNS engine's ``error`` port."""
    ports = [{"name": "clk", "direction": "input", "width": 1, "role": "clock"},
             {"name": "rst", "direction": "input", "width": 1, "role": "reset"},
             *_stream("config", 20, "input"),
             *_stream("weights", 96, "input", {"elements": 16, "element_width": 6,
                                               "signed": True}),
             *_stream("activations", 12, "input", {"elements": 2, "element_width": 6,
                                                   "signed": True}),
             *_stream("outputs", 84, "output", {"elements": 4, "element_width": 21,
                                                "signed": True}),
             {"name": "outputs_last", "direction": "output", "width": 1,
              "stream": "outputs_last", "role": "outputs_last"},
             {"name": "status", "direction": "output", "width": 9, "stream": "status",
              "role": "status"},
             {"name": "error", "direction": "output", "width": 1, "stream": "error",
              "role": "error"}]
    return {"name": "eng", "kind": "layer", "verilog": ["eng.v"], "top": "eng",
            "ports": ports, "tools": {"winogen": "0.1.0"}, "schema": 1}


@pytest.mark.parametrize("width, expected", [(1, 8), (7, 8), (8, 8), (9, 16), (20, 24),
                                             (168, 168), (169, 176)])
def test_tdata_width(width, expected):
    assert tdata_width(width) == expected


def test_ports_and_padding():
    manifest = padded_manifest()
    ports = {p["name"]: p for p in axis_ports(manifest)}
    assert list(ports) == [
        "aclk", "aresetn",
        "s_axis_config_tdata", "s_axis_config_tvalid", "s_axis_config_tready",
        "s_axis_weights_tdata", "s_axis_weights_tvalid", "s_axis_weights_tready",
        "s_axis_activations_tdata", "s_axis_activations_tvalid", "s_axis_activations_tready",
        "m_axis_outputs_tdata", "m_axis_outputs_tvalid", "m_axis_outputs_tready",
        "m_axis_outputs_tlast", "status", "error"]
    widths = {n: p["width"] for n, p in ports.items() if p["width"] > 1}
    assert widths == {"s_axis_config_tdata": 24, "s_axis_weights_tdata": 96,
                      "s_axis_activations_tdata": 16, "m_axis_outputs_tdata": 88, "status": 9}
    directions = {n: p["direction"] for n, p in ports.items()}
    assert [n for n, d in directions.items() if d == "output"] == [
        "s_axis_config_tready", "s_axis_weights_tready", "s_axis_activations_tready",
        "m_axis_outputs_tdata", "m_axis_outputs_tvalid", "m_axis_outputs_tlast", "status",
        "error"]

    text = axis_wrapper(manifest)
    assert re.search(r"^module eng_axis \($", text, re.MULTILINE)
    assert text.count("endmodule") == 1 and re.search(r"^    eng u_engine \($", text,
                                                      re.MULTILINE)

    def conn(port):
        (found,) = re.findall(rf"^\s+\.{port}\s+\((.*)\),?$", text, re.MULTILINE)
        return found
    assert conn("clk") == "aclk" and conn("rst") == "~aresetn"
    assert conn("config__payload") == "s_axis_config_tdata[19:0]"
    assert conn("weights__payload") == "s_axis_weights_tdata"           # whole bytes
    assert conn("activations__payload") == "s_axis_activations_tdata[11:0]"
    assert conn("outputs__payload") == "outputs__payload_w"
    assert "assign m_axis_outputs_tdata = {4'd0, outputs__payload_w};" in text
    assert conn("outputs_last") == "m_axis_outputs_tlast"
    assert conn("status") == "status" and conn("error") == "error"
    for s in ("config", "weights", "activations", "outputs"):
        assert conn(f"{s}__valid").endswith(f"_{s}_tvalid")
        assert conn(f"{s}__ready").endswith(f"_{s}_tready")
    # Only the padded inputs' bits are waived as unused, each between lint_off and lint_on.
    waived = re.findall(r"lint_off UNUSEDSIGNAL \*/\n\s+input wire \[\d+:0\]\s+(\w+),?\n"
                        r"\s+/\* verilator lint_on UNUSEDSIGNAL", text)
    assert waived == ["s_axis_config_tdata", "s_axis_activations_tdata"]
    # No logic besides the inversion and the padding.
    assert text.count("assign") == 1 and "always" not in text and " reg " not in text


def test_no_error_port_without_one():
    manifest = padded_manifest()
    manifest["ports"] = [p for p in manifest["ports"] if p["name"] != "error"]
    assert "error" not in axis_wrapper(manifest)


def _without(name):
    manifest = padded_manifest()
    manifest["ports"] = [p for p in manifest["ports"] if p["name"] != name]
    return manifest


def _changed(name, **fields):
    manifest = padded_manifest()
    for p in manifest["ports"]:
        if p["name"] == name:
            p.update(fields)
    return manifest


@pytest.mark.parametrize("manifest, message", [
    (_without("outputs_last"), r"^manifest eng lacks the port outputs_last that the "
                               r"AXI4-Stream wrapper connects \(outputs_last marks each "
                               r"layer's last output beat and becomes m_axis_outputs_tlast\)$"),
    (_without("weights__ready"), r"^manifest eng lacks the port weights__ready that the "
                                 r"AXI4-Stream wrapper connects$"),
    (_without("config__payload"), r"lacks the port config__payload "),
    (_without("clk"), r"lacks the port clk "),
    (dict(padded_manifest(), kind="tile"), r"^manifest eng must describe a layer engine "
                                           r"\(kind 'layer'\) for an AXI4-Stream wrapper, "
                                           r"not kind 'tile'$"),
    (dict(padded_manifest(), kind="rns_tile"), r"must describe a layer engine"),
    (_changed("outputs_last", width=2), r"^manifest eng: port outputs_last must be a 1-bit "
                                        r"output for the AXI4-Stream wrapper, not a 2-bit "
                                        r"output$"),
    (_changed("outputs__ready", direction="output"), r"port outputs__ready must be a 1-bit "
                                                     r"input .* not a 1-bit output$"),
    (_changed("weights__payload", direction="output"), r"port weights__payload must be an "
                                                       r"input"),
    (dict(padded_manifest(), ports="clk"), r"ports must be a list of ports"),
    (dict(padded_manifest(), top="2eng"), r"top must be a Verilog identifier"),
])
def test_refuses(manifest, message):
    with pytest.raises(ValueError, match=message):
        axis_wrapper(manifest)
    with pytest.raises(ValueError, match=message):
        axis_ports(manifest)


def test_refuses_what_is_not_a_manifest():
    with pytest.raises(ManifestError, match=r"^manifest must be a dict"):
        axis_wrapper([])
    manifest = padded_manifest()
    del manifest["kind"]
    with pytest.raises(ManifestError, match=r"lacks the required key kind$"):
        axis_wrapper(manifest)


def test_port_name_clash():
    manifest = padded_manifest()
    manifest["ports"].append({"name": "aclk", "direction": "input", "width": 1})
    with pytest.raises(ValueError, match=r"engine ports aclk clash with the AXI4-Stream "
                                         r"wrapper's port names$"):
        axis_wrapper(manifest)


def test_manifest_not_changed():
    manifest = padded_manifest()
    before = copy.deepcopy(manifest)
    axis_wrapper(manifest)
    assert manifest == before
