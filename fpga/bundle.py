"""Hand-off bundle: everything a user's flow needs next to the generated Verilog.

:func:`write_bundle` adds to a generator output folder ``OUT/`` (which already holds
``<name>.v`` and the manifest ``<name>.json``):

``<name>_axis.v`` (layer engines only)
    ``<top>_axis``, the engine's AXI4-Stream wrapper (:func:`winogen.fpga.axis.axis_wrapper`):
    the streams under AXI4-Stream names, ``tdata`` padded to whole bytes, ``tlast`` on each
    layer's last output beat.
``<name>.f``
    File list: the Verilog files, one per line, relative to ``OUT/`` (the wrapper last).
``<name>.core``
    FuseSoC CAPI2 core with targets ``default`` (RTL only), ``lint`` (Verilator
    ``-Wall``), ``synth_ecp5`` (Yosys + nextpnr-ecp5 out of context, edalize ``trellis``
    flow) and ``vivado`` (out-of-context synthesis, edalize ``vivado`` flow).
``<name>.sdc``, ``<name>.xdc``, ``<name>.lpf``
    The clock constraint on port ``clk`` for generic SDC tools, Vivado and nextpnr-ecp5.
``<name>_vivado.tcl``
    Vivado non-project flow: out-of-context synthesis, place, route and reports.
``<name>_vivado_ooc.tcl``
    Sourced by the FuseSoC ``vivado`` target to switch synthesis to out-of-context mode.
``README.md``
    How to instantiate the top (a Verilog template built from the manifest's ports), the
    ports and their packing, the handshake, latency and initiation interval, the files, and
    for layer engines the AXI4-Stream wrapper's port mapping.

The texts come from the plain-text templates in ``winogen/fpga/templates/``; the bundle
references nothing outside ``OUT/``.
"""

from importlib import resources
import json
import math
import numbers
from pathlib import Path
import re
import string

from ..gen.manifest import HANDSHAKE, read_manifest, validate
from .axis import axis_ports, axis_wrapper

__all__ = ["write_bundle", "DEFAULT_PART", "DEFAULT_ECP5_DEVICE", "bundle_files",
           "instantiation_template"]

#: Vivado part used when ``part`` is not given (Digilent Basys 3 / Cmod A7 class Artix-7).
DEFAULT_PART = "xc7a35tcpg236-1"

#: ECP5 part of the ``synth_ecp5`` FuseSoC target when ``ecp5_device`` is not given.
DEFAULT_ECP5_DEVICE = "LFE5U-85F-8"

# AMD/Xilinx ordering codes: family and device, package, speed grade (and temperature):
# xc7a35tcpg236-1, xc7z020clg400-1, xczu9eg-ffvb1156-2-e, xcvu9p-flga2104-2L-e.
_PART_RE = re.compile(r"x[a-z]{1,3}[0-9a-z]+(-[0-9a-z]+)+", re.IGNORECASE)
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


class _Template(string.Template):
    # Tcl and YAML use `$`; `@{key}` never occurs in either.
    delimiter = "@"


def _render(template, **values):
    text = resources.files("winogen.fpga").joinpath("templates", template).read_text()
    return _Template(text).substitute(values)


def _check_freq(freq_mhz):
    if isinstance(freq_mhz, bool) or not isinstance(freq_mhz, numbers.Real) \
            or not math.isfinite(freq_mhz) or not freq_mhz > 0:
        raise ValueError(f"freq_mhz must be a positive number of MHz, not {freq_mhz!r}")
    return float(freq_mhz)


def _check_part(part):
    if part is None:
        return DEFAULT_PART
    if not isinstance(part, str) or not _PART_RE.fullmatch(part):
        raise ValueError(f"part must be an AMD/Xilinx part with package and speed grade "
                         f"such as {DEFAULT_PART}, not {part!r}")
    return part.lower()


def _check_manifest(out, manifest):
    """The manifest's name, top, Verilog files (relative, existing) and ports, checked.

    :func:`winogen.gen.manifest.validate` checks what every reader needs (a manifest of a
    schema this winogen reads, a Verilog identifier as name, a list of Verilog files);
    the checks here are the bundle's own: files inside ``out``, usable in Tcl and YAML.
    """
    validate(manifest, require=("ports",))
    name = manifest["name"]
    top = manifest.get("top", name)
    if not isinstance(top, str) or not _IDENT_RE.fullmatch(top):
        raise ValueError(f"manifest top must be a Verilog identifier, not {top!r}")
    verilog = manifest["verilog"]
    if isinstance(verilog, str):
        verilog = [verilog]
    files = []
    for v in verilog:
        p = Path(v)
        resolved = (p if p.is_absolute() else out / p).resolve()
        try:
            rel = resolved.relative_to(out.resolve()).as_posix()
        except ValueError:
            raise ValueError(f"manifest verilog files must lie inside {str(out)!r} so that the "
                             f"bundle is self-contained, not {v!r}") from None
        if not resolved.is_file():
            raise ValueError(f"manifest verilog file must exist in {str(out)!r}, not {v!r}")
        if any(c in rel for c in ' "{}[]$;\n\\'):
            raise ValueError(f"verilog file names must not contain spaces or Tcl/YAML "
                             f"special characters, not {rel!r}")
        files.append(rel)
    ports = manifest.get("ports")
    if not isinstance(ports, list) or not ports:
        raise ValueError(f"manifest ports must be a non-empty list, not {ports!r}")
    for port in ports:
        ok = (isinstance(port, dict) and isinstance(port.get("name"), str)
              and _IDENT_RE.fullmatch(port["name"])
              and port.get("direction") in ("input", "output", "inout")
              and isinstance(port.get("width"), int) and port["width"] >= 1)
        if not ok:
            raise ValueError(f"manifest ports must each have a name, a direction "
                             f"(input/output/inout) and a positive width, not {port!r}")
    clocks = [p["name"] for p in ports if p.get("role") == "clock"] or \
        [p["name"] for p in ports if p["name"] == "clk"]
    if len(clocks) != 1:
        raise ValueError(f"manifest ports must hold exactly one clock (role clock or name clk), "
                         f"not {len(clocks)}")
    return name, top, files, ports, clocks[0]


def bundle_files(name, *, axis=False):
    """File names :func:`write_bundle` writes for a design ``name``, each with its purpose.

    With ``axis`` (a layer engine's bundle) the AXI4-Stream wrapper ``<name>_axis.v`` comes
    first.
    """
    wrapper = {f"{name}_axis.v": "AXI4-Stream wrapper of the engine (see below)"} if axis else {}
    return {
        **wrapper,
        f"{name}.f": "file list of the Verilog sources, one per line",
        f"{name}.core": "FuseSoC CAPI2 core: targets default, lint, synth_ecp5, vivado",
        f"{name}.sdc": "clock constraint for SDC-reading tools",
        f"{name}.xdc": "clock constraint for Vivado",
        f"{name}.lpf": "clock constraint for nextpnr-ecp5 / Lattice Diamond",
        f"{name}_vivado.tcl": "Vivado non-project flow: out-of-context synth, place, route, reports",
        f"{name}_vivado_ooc.tcl": "sourced by the FuseSoC vivado target: out-of-context synthesis",
        "README.md": "this file",
    }


def _range(width):
    return f"[{width - 1}:0] " if width > 1 else ""


def instantiation_template(top, ports, instance="u_engine"):
    """Verilog declarations and an instance of ``top`` connecting every port by name.

    Parameters
    ----------
    top : str
        Module name.
    ports : list of dict
        The manifest's ``ports`` (``name``, ``direction``, ``width``).
    instance : str
        Instance name.

    Returns
    -------
    str
    """
    name_w = max(len(p["name"]) for p in ports)
    decl_w = max(len(_range(p["width"])) for p in ports)
    lines = []
    for p in ports:
        decl = f"wire {_range(p['width']):<{decl_w}}{p['name']};"
        lines.append(f"{decl:<{name_w + decl_w + 6}}  // {p['direction']}")
    lines.append("")
    lines.append(f"{top} {instance} (")
    conns = [f"  .{p['name']:<{name_w}} ({p['name']})" for p in ports]
    lines.append(",\n".join(conns))
    lines.append(");")
    return "\n".join(lines)


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _packing_text(port):
    pk = port.get("packing")
    if not pk:
        return ""
    sign = "signed" if pk.get("signed") else "unsigned"
    return f"{pk['elements']} × {pk['element_width']}-bit {sign}, element 0 in bits " \
           f"[{pk['element_width'] - 1}:0]"


def _port_table(ports):
    rows = ["| Port | Direction | Width | Stream | Role | Packing |",
            "| --- | --- | ---: | --- | --- | --- |"]
    for p in ports:
        role = p.get("role", "")
        desc = p.get("description")
        rows.append(f"| `{p['name']}` | {p['direction']} | {p['width']} | "
                    f"{_md(p.get('stream', ''))} | {_md(role)}{' (' + _md(desc) + ')' if desc else ''} "
                    f"| {_md(_packing_text(p))} |")
    return "\n".join(rows)


def _streams_text(manifest):
    streams = manifest.get("streams") or {}
    if not streams:
        return "See the manifest."
    lines = []
    for sname, info in streams.items():
        if isinstance(info, dict):
            parts = []
            if "shape" in info:
                parts.append("×".join(str(s) for s in info["shape"]) + " elements")
            if "element_width" in info:
                parts.append(f"{info['element_width']} bits each")
            for key in ("format", "description"):
                if info.get(key):
                    parts.append(str(info[key]))
            lines.append(f"- `{sname}`: " + "; ".join(parts))
        else:
            lines.append(f"- `{sname}`: {info}")
    return "\n".join(lines)


def _timing_text(manifest):
    lines = []
    latency = manifest.get("latency")
    ii = manifest.get("initiation_interval")
    if manifest.get("kind") == "tile":
        lines.append(f"- Latency: {latency} cycles from accepting an input tile to its output "
                     f"beat being valid (with `outputs__ready` held high).")
        lines.append(f"- Initiation interval: {ii} (one tile per clock); back-pressure on "
                     f"`outputs` stalls the whole pipeline, nothing is dropped.")
    else:
        if latency is not None:
            lines.append(f"- Latency: {latency} cycles from issuing a step to its output beat.")
        if ii is not None:
            lines.append(f"- Initiation interval: {ii}.")
    model = manifest.get("cycle_model")
    if isinstance(model, dict):
        lines.append("- Cycle model (with ready held high):")
        lines += [f"  - {k}: {v}" for k, v in model.items()]
    if manifest.get("multipliers") is not None:
        lines.append(f"- Multipliers: {manifest['multipliers']}.")
    return "\n".join(lines) or "See the manifest."


def _summary(manifest, name):
    alg = manifest.get("algorithm") or {}
    kind = manifest.get("kind", "engine")
    what = f"{alg.get('name', '')} {alg.get('kind', '')}".strip()
    params = manifest.get("parameters") or {}
    widths = manifest.get("widths") or {}
    text = f"A {kind} engine" + (f", {what}" if what else "")
    if widths.get("data") is not None:
        text += f", {widths['data']}-bit data and {widths.get('weight')}-bit weights"
    if params.get("pe"):
        text += f", PE `{params['pe']}`"
    text += "."
    primitives = manifest.get("target_primitives") or []
    if primitives:
        family = "Nexus" if any(p.startswith("MULT9X9") or p == "MULT18X18"
                                for p in primitives) else "ECP5"
        flag = "`--dsp nexus`" if family == "Nexus" else "`--dsp ecp5` or `--bram ecp5`"
        text += (f" It instantiates the Lattice {family} primitive{'s' if len(primitives) > 1 else ''} "
                 f"{', '.join(f'`{p}`' for p in primitives)} (generated with {flag}): "
                 f"synthesize it for {family} only; simulators also need the model files listed "
                 f"below, which are not for synthesis.")
    return text


def _sentence(text):
    text = str(text).strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _yaml_quote(text):
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


def _axis_text(manifest, name, top):
    """The README's section on the AXI4-Stream wrapper of a layer engine."""
    ports = axis_ports(manifest)
    rows = ["| Wrapper port | Direction | Width | Engine port |",
            "| --- | --- | ---: | --- |"]
    for p in ports:
        engine = "`rst` = `~aresetn`" if p["engine"] is None else f"`{p['engine']}`"
        if "payload_width" in p and p["payload_width"] != p["width"]:
            engine += f" in bits [{p['payload_width'] - 1}:0]"
        rows.append(f"| `{p['name']}` | {p['direction']} | {p['width']} | {engine} |")
    return _render("axis.md.tmpl", name=name, top=top, axis_top=f"{top}_axis",
                   port_table="\n".join(rows),
                   instantiation=instantiation_template(f"{top}_axis", ports, "u_axis"))


def _texts(manifest, name, top, files, ports, clock, sim_models, *, freq, part, dev, axis):
    """The text of every file of the bundle, by file name."""
    # The wrapper joins the RTL file lists; its text is written below.
    rtl = files + ([f"{name}_axis.v"] if axis else [])
    version = (manifest.get("tools") or {}).get("winogen") or "unknown"
    # A CAPI2 VLNV version must be numeric dotted; "unknown" would not parse.
    vlnv_version = version if re.fullmatch(r"\d+(\.\d+)*", str(version)) else "0"
    vlnv = f"winogen:engines:{name}:{vlnv_version}"
    period = f"{1000.0 / freq:.3f}"
    freq_text = f"{freq:g}"
    alg = manifest.get("algorithm") or {}
    description = f"winogen {manifest.get('kind', 'engine')} engine {name}" + \
        (f": {alg.get('name')} {alg.get('kind', '')}".rstrip() if alg.get("name") else "")
    values = dict(name=name, top=top, version=version, vlnv=vlnv, freq=freq_text,
                  period=period, clock=clock, part=part, ecp5_part=dev.label)
    purposes = bundle_files(name, axis=axis)

    texts = {
        f"{name}.f": "".join(f"{f}\n" for f in rtl),
        f"{name}.core": _render(
            "core.tmpl", **values, description=_yaml_quote(description),
            rtl_files="\n".join(f"      - {f}" for f in rtl),
            sim_fileset="".join(["  sim_models:\n    file_type: verilogSource\n    files:\n"]
                                + [f"      - {f}\n" for f in sim_models]) if sim_models else "",
            lint_extra=", sim_models" if sim_models else "",
            # Quoted: YAML would read "8" as an integer, edalize wants strings.
            nextpnr_options=", ".join(f'"{a}"' for a in [*dev.nextpnr_args, "--out-of-context",
                                                         "--freq", freq_text])),
        f"{name}.sdc": _render("constraints.sdc.tmpl", **values),
        f"{name}.xdc": _render("constraints.xdc.tmpl", **values),
        f"{name}.lpf": _render("constraints.lpf.tmpl", **values),
        f"{name}_vivado.tcl": _render(
            "vivado.tcl.tmpl", **values,
            read_verilog="\n".join(f"read_verilog [file join $script_dir {f}]" for f in rtl)),
        f"{name}_vivado_ooc.tcl": _render("vivado_ooc.tcl.tmpl", **values),
    }
    if axis:
        texts[f"{name}_axis.v"] = axis_wrapper(manifest)
    manifest_file = f"{name}.json"
    table = dict(purposes)
    table.update({f: "Verilog source" + (" (top module)" if i == 0 else "")
                  for i, f in enumerate(files)})
    table.update({f: "behavioural simulation model of a vendor primitive (simulation and "
                     "lint only, not for synthesis)" for f in sim_models})
    table[manifest_file] = "manifest: ports, packing, widths, latency, parameters, tool versions"
    order = files + sim_models + [manifest_file] + list(purposes)
    file_table = "\n".join(f"| `{f}` | {_md(table[f])} |" for f in order)
    texts["README.md"] = _render(
        "README.md.tmpl", **values, summary=_summary(manifest, name), file_table=file_table,
        instantiation=instantiation_template(top, ports), port_table=_port_table(ports),
        streams=_streams_text(manifest),
        handshake=_sentence(manifest.get("handshake") or HANDSHAKE),
        timing=_timing_text(manifest),
        axis=_axis_text(manifest, name, top) if axis else "")
    return texts


def write_bundle(out_dir, manifest=None, *, freq_mhz=100.0, part=None, ecp5_device=None):
    """Write the hand-off bundle of a generated design into its output folder.

    Parameters
    ----------
    out_dir : path-like
        Generator output folder holding the manifest's Verilog files.
    manifest : dict, optional
        The generator's manifest (``generate_tile`` / ``generate_layer``); read from
        ``out_dir/<name>.json`` when None. Written to ``out_dir/<name>.json`` if that
        file is missing, so the bundle is complete.
    freq_mhz : float
        Clock constraint in MHz for every constraint file and flow.
    part : str, optional
        AMD/Xilinx part for the Vivado flows; default :data:`DEFAULT_PART`.
    ecp5_device : str, optional
        ECP5 part of the ``synth_ecp5`` FuseSoC target, in any spelling
        :func:`winogen.fpga.synth.parse_device` accepts; default
        :data:`DEFAULT_ECP5_DEVICE`.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of :func:`bundle_files` (with ``axis`` for a layer
        engine; plus the manifest if it was written).

    Raises
    ------
    ValueError
        On a bad parameter, a malformed manifest, Verilog files missing or outside
        ``out_dir``, a layer engine's manifest that the AXI4-Stream wrapper refuses (one
        without ``outputs_last``, see :func:`winogen.fpga.axis.axis_wrapper`), or an
        unwritable folder.
    """
    from .synth import parse_device, SynthError
    freq = _check_freq(freq_mhz)
    part = _check_part(part)
    out = Path(out_dir)
    if not out.is_dir():
        raise ValueError(f"out_dir must be an existing folder written by the generator, "
                         f"not {str(out_dir)!r}")
    if manifest is None:
        manifest = read_manifest(out, require=("ports",))
    name, top, files, ports, clock = _check_manifest(out, manifest)
    sim_models = [m for m in manifest.get("simulation_models") or []
                  if isinstance(m, str) and (out / m).is_file() and "/" not in m]
    try:
        dev = parse_device("ecp5", DEFAULT_ECP5_DEVICE if ecp5_device is None else ecp5_device)
    except SynthError as exc:
        raise ValueError(f"ecp5_device must be an ECP5 part such as {DEFAULT_ECP5_DEVICE}, "
                         f"not {ecp5_device!r} ({exc})") from None

    # Layer engines get the AXI4-Stream wrapper; a manifest it refuses fails here, before
    # anything is written.
    axis = manifest.get("kind") == "layer"
    texts = _texts(manifest, name, top, files, ports, clock, sim_models, freq=freq, part=part,
                   dev=dev, axis=axis)
    purposes = bundle_files(name, axis=axis)
    manifest_file = f"{name}.json"
    write_manifest = not (out / manifest_file).is_file()

    written = []
    try:
        for fname in purposes:
            path = out / fname
            path.write_text(texts[fname])
            written.append(path)
        if write_manifest:
            path = out / manifest_file
            path.write_text(json.dumps(manifest, indent=2) + "\n")
            written.append(path)
    except OSError as exc:
        raise ValueError(f"out_dir must be a writable folder, not {str(out_dir)!r} "
                         f"({exc.strerror or exc})") from None
    return written
