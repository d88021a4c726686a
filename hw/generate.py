"""Emission: Verilog plus a JSON manifest that describes it completely.

The manifest is the contract with the user's flow and with every test: ports
with width, direction and bit packing, latency, initiation interval, multiplier
count, the exact matrices, every derived width, and the tool versions.
"""

import json
from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib import data

from ..gen.manifest import HANDSHAKE, SCHEMA_VERSION, simulation_sources
from ..gen.provenance import generator_versions
from ..gen.toomcook import APPROXIMATE_FUNCTION, transforms_manifest
from .ecp5 import MULT18X18D_SIM_MODEL, SIM_MODEL_FILE
from .ecp5_ebr import DP16KD_SIM_MODEL, DP16KD_SIM_MODEL_FILE
from .nexus import NEXUS_MULT_SIM_MODEL, NEXUS_SIM_MODEL_FILE
from .emit import LINT_WAIVERS, to_verilog

__all__ = ["manifest_common", "tile_manifest", "generate_tile", "write_outputs", "port_table",
           "tool_versions", "simulation_sources", "SIMULATION_MODELS"]


#: Text of each simulation-only model a manifest may list under ``simulation_models``.
SIMULATION_MODELS = {SIM_MODEL_FILE: MULT18X18D_SIM_MODEL,
                     DP16KD_SIM_MODEL_FILE: DP16KD_SIM_MODEL,
                     NEXUS_SIM_MODEL_FILE: NEXUS_MULT_SIM_MODEL}
#: The simulation model of each vendor DSP build (``TileConfig.dsp``).
DSP_SIMULATION_MODEL = {"ecp5": SIM_MODEL_FILE, "nexus": NEXUS_SIM_MODEL_FILE}




def tool_versions():
    """Versions of Python and the generator's packages, as the manifest records them."""
    return generator_versions()


def _packing(shape):
    """Packing of a payload shape: element count/width, order, signedness."""
    if isinstance(shape, data.ArrayLayout):
        elem = shape.elem_shape
        return {"elements": shape.length, "element_width": elem.width,
                "signed": elem.signed, "order": "row-major, element 0 in the least significant bits",
                "encoding": "two's complement" if elem.signed else "unsigned"}
    return None


def port_table(component):
    """Every Verilog port of ``component``: name, direction, width and packing."""
    ports = [
        {"name": "clk", "direction": "input", "width": 1, "role": "clock",
         "description": "rising-edge clock"},
        {"name": "rst", "direction": "input", "width": 1, "role": "reset",
         "description": "synchronous active-high reset"},
    ]
    for path, member in component.signature.members.flatten():
        if member.is_signature:
            continue
        name = "__".join(str(p) for p in path)
        direction = "input" if member.flow.name == "In" else "output"
        shape = member.shape
        width = shape.size if isinstance(shape, data.Layout) else Shape.cast(shape).width
        entry = {"name": name, "direction": direction, "width": width}
        stream_name, field = path[0], path[-1]
        entry["stream"] = stream_name
        entry["role"] = {"valid": "valid", "ready": "ready", "payload": "payload"}.get(field, field)
        packing = _packing(shape)
        if packing:
            entry["packing"] = packing
        ports.append(entry)
    return ports


def manifest_common(config, component, kind, **fields):
    """A manifest: the fields every engine's manifest shares, around the engine's own ``fields``.

    Shared: ``name``, ``kind``, ``verilog``, ``top``, ``parameters`` (``config.to_json()``),
    ``ports`` (:func:`port_table`), ``handshake`` (:data:`winogen.gen.manifest.HANDSHAKE`),
    ``lint_waivers``, ``tools`` (:func:`tool_versions`) and ``schema``
    (:data:`winogen.gen.manifest.SCHEMA_VERSION`).
    """
    name = config.module_name
    return {
        "name": name, "kind": kind, "verilog": [f"{name}.v"], "top": name,
        "parameters": config.to_json(),
        **fields,
        "ports": port_table(component),
        "handshake": HANDSHAKE,
        "lint_waivers": LINT_WAIVERS,
        "tools": tool_versions(),
        "schema": SCHEMA_VERSION,
    }


def tile_manifest(config, component, verilog=None):
    """The manifest of a binary tile engine (a JSON-ready dict).

    Parameters
    ----------
    config : TileConfig
    component : the tile engine generated from ``config``
    verilog : str, optional
        The component's emitted Verilog, for the ``fault_sites`` of engines with ``mul``
        or ``adder`` PEs (register names are resolved against it); converted here when
        not given.
    """
    cfg = config
    tc = cfg.toomcook
    count, wwidth = cfg.weight_payload
    manifest = manifest_common(
        cfg, component, "tile",
        simulation_models=[DSP_SIMULATION_MODEL[cfg.dsp]] if cfg.dsp in DSP_SIMULATION_MODEL
        else [],
        target_primitives=cfg.dsp_blocks,
        algorithm={
            "name": f"F({cfg.m}x{cfg.m}, {cfg.r}x{cfg.r})",
            "kind": cfg.algorithm,
            "m": cfg.m, "r": cfg.r, "n": cfg.n,
            "points": None if tc.points is None else [str(p) for p in tc.points],
            "rational": tc.matrices("G").to_json(),
            "hardware": cfg.hardware.to_json(),
            **({"transforms": transforms_manifest(tc)} if getattr(cfg, "given_transforms", None) is not None else {}),
        },
        streams={
            "tiles": {"shape": [cfg.n, cfg.n], "element_width": cfg.data_width,
                      "description": "input tile d, row-major: element i*n+j is d[i][j]"},
            "weights": {"shape": [cfg.n, cfg.n] if count == cfg.n ** 2 and cfg.algorithm == "winograd"
                        and cfg.filter_transform == "offline" else [cfg.r, cfg.r],
                        "element_width": wwidth,
                        "format": ("transformed U = G g G^T (winogen.gen)" if
                                   cfg.algorithm == "winograd" and cfg.filter_transform == "offline"
                                   else "raw filter g"),
                        "description": "a weight beat applies to every tile accepted after it"},
            "outputs": {"shape": [cfg.m, cfg.m], "element_width": cfg.output_width,
                        "description": (
                            f"Y' = A'^T [-|U' - V'|] A' (Winograd AdderNet, {cfg.adder_output_scale} "
                            f"times the rational result; no scale removed)"
                            if cfg.is_adder_winograd else
                            "Y = -sum |d - g| over each r x r window (AdderNet)"
                            if not cfg.pe_kind.bilinear else
                            APPROXIMATE_FUNCTION if not tc.exact else
                            "Y = correlation of the tile with the filter" if not
                            (cfg.algorithm == "winograd" and cfg.keep_scale) else
                            f"Y * {cfg.scale_divisor} (scale kept)")},
        },
        latency=cfg.latency,
        initiation_interval=cfg.initiation_interval,
        multipliers=cfg.multipliers if cfg.pe_kind.uses_multiplier else 0,
        processing_elements=cfg.multipliers,
        pe=cfg.pe,
        widths={
            "data": cfg.data_width, "weight": cfg.weight_width, "output": cfg.output_width,
        },
        scale={"divisor": cfg.scale_divisor, "kept": bool(cfg.keep_scale),
               "removal": ("none" if cfg.scale_divisor == 1 or cfg.keep_scale else
                           "shift" if cfg.scale_divisor & (cfg.scale_divisor - 1) == 0 else
                           "shift and exact constant division"),
               "adder_output_scale": cfg.adder_output_scale},
        weights={"filter_transform": cfg.filter_transform if cfg.algorithm == "winograd" else "none",
                 "storage_growth": cfg.filter_storage_growth},
    )
    if cfg.algorithm == "winograd":
        manifest["widths"].update({
            "V": cfg.v_width, "U": cfg.u_width,
            "product": max(iv.width for iv in cfg.product_intervals),
            "scaled_output": max(iv.width for iv in cfg.scaled_output_intervals),
        })
        manifest["widths"]["weight_payload"] = wwidth
    if cfg.quantization:
        # No fault model of quantized domains (yet): no fault sites.
        _quantized_manifest(cfg, manifest)
    elif cfg.pe_kind.name in ("mul", "adder") and cfg.toomcook.exact:
        # The registers of the tile fault model's values, for RTL fault campaigns.
        from .layer.faultsites import tile_fault_sites
        if verilog is None:
            verilog = to_verilog(component, cfg.module_name)
        manifest["fault_sites"] = tile_fault_sites(cfg, verilog)
    return manifest


def _quantized_manifest(cfg, manifest):
    """A quantized Winograd domain's entries (exact engines' manifests are left as they were)."""
    q = cfg.quantization
    manifest["quantization"] = q.to_json()
    manifest["widths"].update({"Vq": max(iv.width for iv in cfg.pe_a_intervals),
                               "Uq": cfg.stored_u_width})
    if cfg.filter_transform == "offline":
        manifest["streams"]["weights"]["format"] = (
            "quantized Uq = min(floor(G g G^T / (u_divisor * 2^sU) + 1/2), 2^(W-1)-1) per "
            "position (winogen.gen: TileModel.filter_transform; see quantization)")
    else:
        manifest["streams"]["weights"]["format"] = (
            "raw filter g, transformed and rounded to Uq on chip (see quantization)")
    manifest["streams"]["outputs"]["description"] = (
        "Y ~ correlation of the tile with the filter, computed in a quantized Winograd "
        "domain (see quantization.function); not exact")
    manifest["scale"]["removal"] = (f"folded into Uq; output shift {q.output_shift} "
                                    f"(round half up)" if q.output_shift else
                                    f"folded into Uq; output shifted left by "
                                    f"{q.output_exponent}")


def write_outputs(out_dir, name, verilog_text, manifest):
    """Write ``OUT/<name>.v``, ``OUT/<name>.json`` and the simulation models the
    manifest lists; return the paths of the first two."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        vpath = out / f"{name}.v"
        jpath = out / f"{name}.json"
        vpath.write_text(verilog_text)
        for model in manifest.get("simulation_models", ()):
            (out / model).write_text(SIMULATION_MODELS[model])
        jpath.write_text(json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise ValueError(f"output folder {str(out_dir)!r} is not writable: {exc.strerror}") from None
    return vpath, jpath


def emit_engine(config, component, manifest_of, out_dir):
    """Write ``component``'s Verilog and the manifest ``manifest_of(config, component)``
    into ``out_dir``; return ``(verilog_path, manifest_path, manifest)``.

    A builder with a ``verilog`` parameter is handed the emitted text (to resolve register
    names against it, as the ``fault_sites`` section does)."""
    import inspect
    text = to_verilog(component, config.module_name)
    if "verilog" in inspect.signature(manifest_of).parameters:
        manifest = manifest_of(config, component, verilog=text)
    else:
        manifest = manifest_of(config, component)
    vpath, jpath = write_outputs(out_dir, config.module_name, text, manifest)
    return vpath, jpath, manifest


def generate_tile(config, out_dir):
    """Generate a tile engine into ``out_dir``; return ``(verilog_path, manifest_path, manifest)``.

    The component and its manifest builder are the engine registry's for the configuration's
    type (:mod:`winogen.hw.engines`).
    """
    from .engines import engine_for
    entry = engine_for(config)
    return emit_engine(config, entry.tile(config), entry.tile_manifest, out_dir)
