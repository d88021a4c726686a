"""The layer engines' manifest, cycle model and generation."""


from ...gen.layer import RUN_ERRORS
from ..generate import emit_engine, manifest_common
from .cores import core_latency, engine_latency, lane_sum_stages
from .layouts import PHASES, _check_config, config_layout, memory_shapes, status_layout

__all__ = ["layer_manifest", "binary_layer_fields", "generate_layer"]


_CYCLE_MODEL = {
    "config": "1 (accepted only while idle)",
    "weights": "C_in * C_out beats (+ filter_stages to drain an online filter transform)",
    "activations": "H * W * ceil(C_in / P_in) beats",
    "compute_ideal": "tile_rows * tile_cols * ceil(C_in / P_in) * ceil(C_out / P_out) steps, "
                     "tile_rows = ceil(H_out / m), tile_cols = ceil(W_out / m), "
                     "H_out = H + 2 * padding - r + 1",
    "compute": "compute_ideal + latency with outputs.ready held high (one step per cycle)",
}


def layer_manifest(config, component):
    """The manifest of a layer engine (a JSON-ready dict).

    The fields every manifest shares come from :func:`~winogen.hw.generate.manifest_common`;
    those that depend on the tile configuration's type (its algorithm section, the weight
    format, the function, the multiplier count, the scale, extra sections such as ``rns``)
    from the engine registry's layer-manifest builder (:mod:`winogen.hw.engines`).

    Parameters
    ----------
    config : LayerConfig
    component : the layer engine generated from ``config`` (its ports are listed)
    """
    from ..engines import engine_for
    c = _check_config(config)
    t = c.tile
    count, wwidth = c.weight_payload
    own = engine_for(c).layer_manifest(c)
    return manifest_common(
        c, component, "layer",
        algorithm={"name": f"F({c.m}x{c.m}, {c.r}x{c.r})", "kind": c.algorithm,
                   "m": c.m, "r": c.r, "n": c.n, **own["algorithm"]},
        **own.get("sections", {}),
        config_fields={name: {"offset": field.offset, "width": field.width}
                       for name, field in config_layout(c)},
        status_fields={name: {"offset": field.offset, "width": field.width}
                       for name, field in status_layout()},
        status_errors=dict(RUN_ERRORS),
        phases=dict(PHASES),
        streams={
            "config": "one beat per layer, accepted only while idle; a failing beat sets "
                      "status.errors (sticky until the next config beat) and starts nothing",
            "weights": ("C_out*C_in beats, for co in C_out: for ci in C_in; one filter per beat, "
                        + own["weight_format"]),
            "activations": "for y in H: for x in W: for g in ceil(C_in/P_in): lane i is channel "
                           "g*P_in + i (lanes >= C_in ignored)",
            "outputs": "for ty: for tx: for cog: one beat; element j*m*m + i*m + k is "
                       "Y[cog*P_out + j, ty*m + i, tx*m + k]; positions beyond the output map "
                       "and lanes >= C_out are to be discarded",
        },
        function=own["function"],
        flow="config -> C_out*C_in weight beats -> activation beats -> compute (output "
             "beats) -> idle",
        paddings=list(c.paddings),
        multipliers=own["multipliers"],
        processing_elements=c.multipliers,
        pe=t.pe,
        unused_lanes=("PE terms masked to 0" if c.masks_lanes else "inputs zeroed"),
        widths={
            "data": t.data_width, "weight": t.weight_width, "weight_payload": wwidth,
            "stored_weight": c.stored_weight[1],
            "accumulator": c.accumulator_width,
            "full_output": c.full_output_width, "result": c.result_width,
            "shift": config_layout(c)["shift"].width,
        },
        requantization=(None if c.output_width is None else
                        {"output_width": c.output_width, "rounding": c.rounding,
                         "max_shift": c.max_shift}),
        scale=own["scale"],
        memory_bits=c.memory_bits,
        memories=memory_shapes(c),
        cycle_model=dict(_CYCLE_MODEL),
        expected_cycles=_expected_cycles(c),
        latency=engine_latency(c),
        pipeline={"address": 1, "memory_read": 1, "tile_register": 1,
                  "core": core_latency(c),
                  "lane_sum_stages": lane_sum_stages(c) if c.algorithm == "winograd" else 0,
                  "requantize": 1 if c.output_width is not None else 0},
    )


def binary_layer_fields(config):
    """The layer manifest's parts for a binary tile (:class:`~winogen.gen.config.TileConfig`):
    the keys :func:`layer_manifest` asks the engine registry for."""
    c, t = config, config.tile
    return {
        "algorithm": {"hardware": t.hardware.to_json()} if c.algorithm == "winograd" else {},
        "weight_format": ("U = G g G^T, n x n row-major (winogen.gen)"
                          if c.filter_transform == "offline" else "raw r x r row-major"),
        "function": _function(c),
        "multipliers": c.multipliers if t.pe_kind.uses_multiplier else 0,
        "scale": {"divisor": t.scale_divisor, "kept": bool(t.keep_scale),
                  "adder_output_scale": t.adder_output_scale},
    }


def _function(config):
    """What a binary engine computes, before the optional requantization (manifest text)."""
    t = config.tile
    if t.is_adder_winograd:
        return (f"Winograd AdderNet per output tile: Y' = A'^T [sum over C_in of -|U' - V'|] A', "
                f"U' = G' g G'^T, V' = B'^T d B' (algorithm.hardware), d the zero-padded input "
                f"tile (zeros also beyond the map), {t.adder_output_scale} times the rational "
                f"result, no scale removed (winogen.gen.addernet.adder_winograd_conv2d)")
    if not t.pe_kind.bilinear:
        return ("AdderNet: Y = -sum over C_in, r x r of |x - w|, padded zeros included "
                "(winogen.gen.addernet.adder_direct_conv2d)")
    if t.algorithm == "winograd" and t.keep_scale:
        return f"correlation with zero padding, times {t.scale_divisor} (scale kept)"
    return "correlation with zero padding (PyTorch conv2d, stride 1)"


def _expected_cycles(config):
    """The cycle model evaluated on the largest layer, padding r//2 ("same")."""
    from ...gen.layer import LayerRun
    c = config
    run = LayerRun(c.max_height, c.max_width, c.max_cin, c.max_cout, padding=c.r // 2)
    cycles = c.cycles(run)
    cycles["compute"] = cycles["compute_ideal"] + engine_latency(c)
    return {"layer": {"height": run.height, "width": run.width, "cin": run.cin,
                      "cout": run.cout, "padding": run.padding}, **cycles}


def generate_layer(config, out_dir):
    """Generate a layer engine into ``out_dir``: ``OUT/<name>.v`` and ``OUT/<name>.json``.

    Returns
    -------
    (pathlib.Path, pathlib.Path, dict)
        The Verilog file, the manifest file and the manifest.
    """
    from .engine import make_layer_engine
    _check_config(config)
    return emit_engine(config, make_layer_engine(config), layer_manifest, out_dir)
