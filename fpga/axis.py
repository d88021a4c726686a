"""AXI4-Stream wrapper of a layer engine: the same streams under AXI4-Stream names.

:func:`axis_wrapper` writes a Verilog module ``<top>_axis`` that instantiates the layer
engine ``<top>`` and renames its ports; it adds no logic besides the reset inversion and
the byte padding of ``tdata``:

======================================  =====================================================
``<top>_axis``                          ``<top>``
======================================  =====================================================
``aclk``                                ``clk``
``aresetn`` (synchronous, active low)   ``rst = ~aresetn``
``s_axis_<S>_tdata``                    ``<S>__payload`` (low bits), S = config, weights,
                                        activations
``s_axis_<S>_tvalid`` / ``_tready``     ``<S>__valid`` / ``<S>__ready``
``m_axis_outputs_tdata``                ``outputs__payload`` (low bits), zero-extended
``m_axis_outputs_tvalid`` / ``_tready`` ``outputs__valid`` / ``outputs__ready``
``m_axis_outputs_tlast``                ``outputs_last``: the last output beat of each layer
any other port (``status``, ``error``)  the same name, passed through
======================================  =====================================================

AXI4-Stream ``tdata`` is a whole number of bytes, so each ``tdata`` is the payload's width
rounded up to a multiple of 8 (:func:`tdata_width`); the payload keeps its packing in the
low bits. The high bits of an input ``tdata`` are ignored; those of
``m_axis_outputs_tdata`` are 0. There is no ``tkeep`` (every byte of every beat is
meaningful) and no ``tlast`` on the inputs (the engine counts beats from the config beat).
The handshake is the engine's own, which is AXI4-Stream's: a beat transfers on a rising
edge where ``tvalid`` and ``tready`` are both 1.

Widths come from the manifest's ``ports``; nothing here is specific to one engine.
"""

import re

from ..gen.manifest import validate

__all__ = ["INPUT_STREAMS", "input_streams", "OUTPUT_STREAM", "LAST_PORT", "axis_wrapper", "axis_module_name",
           "axis_ports", "tdata_width"]

#: The engine's input streams, each an AXI4-Stream slave ``s_axis_<name>``.
INPUT_STREAMS = ("config", "weights", "activations")

#: The engine's output stream, the AXI4-Stream master ``m_axis_outputs``.
OUTPUT_STREAM = "outputs"

#: The engine's port that becomes ``m_axis_outputs_tlast``.
LAST_PORT = "outputs_last"

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def tdata_width(width):
    """The ``tdata`` width carrying a ``width``-bit payload: ``width`` rounded up to bytes.

    Parameters
    ----------
    width : int
        Payload width in bits (positive).

    Returns
    -------
    int
    """
    return -(-width // 8) * 8


def axis_module_name(manifest):
    """The wrapper's module name (and file stem): ``<top>_axis``."""
    return f"{manifest.get('top', manifest.get('name'))}_axis"


def input_streams(manifest):
    """The engine's input streams: :data:`INPUT_STREAMS`, without ``weights`` for a
    weight-specialized engine (its manifest's ``fixed_weights``: the weights are built in)."""
    return tuple(s for s in INPUT_STREAMS if s != "weights" or "fixed_weights" not in manifest)


def _required_ports(streams=INPUT_STREAMS):
    """``(name, direction, width or None)`` of every engine port the wrapper connects."""
    ports = [("clk", "input", 1), ("rst", "input", 1)]
    for s in streams:
        ports += [(f"{s}__payload", "input", None), (f"{s}__valid", "input", 1),
                  (f"{s}__ready", "output", 1)]
    s = OUTPUT_STREAM
    ports += [(f"{s}__payload", "output", None), (f"{s}__valid", "output", 1),
              (f"{s}__ready", "input", 1), (LAST_PORT, "output", 1)]
    return ports


def _check(manifest):
    """The engine's top and its ports by name, checked; ValueError naming what is wrong."""
    validate(manifest, require=("kind", "ports"))
    name = manifest["name"]
    if manifest["kind"] != "layer":
        raise ValueError(f"manifest {name} must describe a layer engine (kind 'layer') for an "
                         f"AXI4-Stream wrapper, not kind {manifest['kind']!r}")
    top = manifest.get("top", name)
    if not isinstance(top, str) or not _IDENT_RE.fullmatch(top):
        raise ValueError(f"manifest {name}: top must be a Verilog identifier, not {top!r}")
    ports = manifest["ports"]
    if not isinstance(ports, list) or not all(
            isinstance(p, dict) and isinstance(p.get("name"), str)
            and _IDENT_RE.fullmatch(p["name"]) and p.get("direction") in ("input", "output")
            and isinstance(p.get("width"), int) and not isinstance(p["width"], bool)
            and p["width"] >= 1 for p in ports):
        raise ValueError(f"manifest {name}: ports must be a list of ports, each with a name, "
                         f"a direction (input/output) and a positive width")
    by_name = {p["name"]: p for p in ports}
    required = _required_ports(input_streams(manifest))
    missing = [n for n, _, _ in required if n not in by_name]
    if missing:
        what = "port" + "s" * (len(missing) > 1)
        hint = (f" ({LAST_PORT} marks each layer's last output beat and becomes "
                f"m_axis_outputs_tlast)" if LAST_PORT in missing else "")
        raise ValueError(f"manifest {name} lacks the {what} {', '.join(missing)} that the "
                         f"AXI4-Stream wrapper connects{hint}")
    for n, direction, width in required:
        p = by_name[n]
        if p["direction"] != direction or (width is not None and p["width"] != width):
            want = f"a {width}-bit {direction}" if width else f"an {direction}"
            raise ValueError(f"manifest {name}: port {n} must be {want} for the AXI4-Stream "
                             f"wrapper, not a {p['width']}-bit {p['direction']}")
    return top, by_name


def axis_ports(manifest):
    """The wrapper's ports, in order, each mapped to the engine port it carries.

    Parameters
    ----------
    manifest : dict
        A layer engine's manifest (``<name>.json``).

    Returns
    -------
    list of dict
        ``name``, ``direction``, ``width``, ``engine`` (the engine port, or ``None`` for
        ``aresetn``, which drives ``rst`` inverted) and ``payload_width`` (``tdata`` only:
        the width of the payload in its low bits).

    Raises
    ------
    ValueError
        As :func:`axis_wrapper`.
    """
    _, by_name = _check(manifest)
    ports = [{"name": "aclk", "direction": "input", "width": 1, "engine": "clk"},
             {"name": "aresetn", "direction": "input", "width": 1, "engine": None}]

    def stream(prefix, s, data_dir, ready_dir):
        payload = by_name[f"{s}__payload"]["width"]
        return [
            {"name": f"{prefix}_{s}_tdata", "direction": data_dir,
             "width": tdata_width(payload), "engine": f"{s}__payload",
             "payload_width": payload},
            {"name": f"{prefix}_{s}_tvalid", "direction": data_dir, "width": 1,
             "engine": f"{s}__valid"},
            {"name": f"{prefix}_{s}_tready", "direction": ready_dir, "width": 1,
             "engine": f"{s}__ready"},
        ]

    streams = input_streams(manifest)
    for s in streams:
        ports += stream("s_axis", s, "input", "output")
    ports += stream("m_axis", OUTPUT_STREAM, "output", "input")
    ports.append({"name": f"m_axis_{OUTPUT_STREAM}_tlast", "direction": "output", "width": 1,
                  "engine": LAST_PORT})
    mapped = {n for n, _, _ in _required_ports(streams)}
    ports += [{"name": p["name"], "direction": p["direction"], "width": p["width"],
               "engine": p["name"]} for p in manifest["ports"] if p["name"] not in mapped]
    names = [p["name"] for p in ports]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"manifest {manifest['name']}: engine ports {', '.join(clash)} clash "
                         f"with the AXI4-Stream wrapper's port names")
    return ports


def _range(width):
    return f"[{width - 1}:0] " if width > 1 else ""


def axis_wrapper(manifest):
    """Verilog text of ``<top>_axis``, the AXI4-Stream wrapper of a layer engine.

    Parameters
    ----------
    manifest : dict
        A layer engine's manifest (``<name>.json``, as :func:`winogen.hw.layer.generate_layer`
        writes it): ``kind`` ``"layer"`` and ``ports`` holding the ``config``, ``weights``,
        ``activations`` and ``outputs`` streams, ``clk``, ``rst`` and ``outputs_last``.

    Returns
    -------
    str
        One module, ``<top>_axis``, to be read together with the engine's Verilog files;
        it lints clean under ``verilator --lint-only -Wall``.

    Raises
    ------
    ValueError
        If ``manifest`` is not a manifest (:class:`winogen.gen.manifest.ManifestError`), not
        a layer engine's, or lacks a port the wrapper connects (``outputs_last`` among
        them), or such a port has the wrong direction or width; the message names it.
    """
    top, _ = _check(manifest)
    ports = axis_ports(manifest)
    module = f"{top}_axis"
    version = (manifest.get("tools") or {}).get("winogen", "unknown")
    decl_w = max(len(f"{p['direction']} wire {_range(p['width'])}") for p in ports)

    lines = [
        f"// {module}: AXI4-Stream wrapper of {top}, generated by winogen {version}.",
        "// Do not edit: regenerate instead.",
        "// aresetn is synchronous and active low (rst = ~aresetn). Each tdata is its payload",
        "// rounded up to whole bytes, the payload in the low bits: the high bits of an input",
        "// tdata are ignored, those of m_axis_outputs_tdata are 0. m_axis_outputs_tlast is",
        "// high on the last output beat of each layer. No tkeep; no tlast on the inputs.",
        f"module {module} (",
    ]
    body = []
    for p in ports:
        decl = f"{p['direction']} wire {_range(p['width'])}"
        text = f"    {decl:<{decl_w}}{p['name']}"
        pad = p["width"] - p.get("payload_width", p["width"])
        if pad and p["direction"] == "input":
            # The padding bits are read by nothing, by definition.
            body.append("    /* verilator lint_off UNUSEDSIGNAL */")
            body.append(text)
            body.append("    /* verilator lint_on UNUSEDSIGNAL */")
        else:
            body.append(text)
    # Commas between ports, none after the last (the lint comments are not ports).
    port_lines = [i for i, ln in enumerate(body) if not ln.lstrip().startswith("/*")]
    for i in port_lines[:-1]:
        body[i] += ","
    lines += body
    lines.append(");")
    lines.append("")

    conns = []
    for p in ports:
        engine, width = p["engine"], p.get("payload_width", p["width"])
        if engine is None:
            conns.append(("rst", "~aresetn"))
        elif "payload_width" in p and p["direction"] == "input" and width != p["width"]:
            conns.append((engine, f"{p['name']}[{width - 1}:0]"))
        elif "payload_width" in p and p["direction"] == "output" and width != p["width"]:
            wire = f"{engine}_w"
            lines.append(f"    wire {_range(width)}{wire};")
            lines.append(f"    assign {p['name']} = {{{p['width'] - width}'d0, {wire}}};")
            lines.append("")
            conns.append((engine, wire))
        else:
            conns.append((engine, p["name"]))
    name_w = max(len(e) for e, _ in conns)
    lines.append(f"    {top} u_engine (")
    lines.append(",\n".join(f"        .{e:<{name_w}} ({s})" for e, s in conns))
    lines.append("    );")
    lines.append("")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
