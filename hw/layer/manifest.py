"""The layer engines' manifest, cycle model and generation."""


from ...gen.layer import RUN_ERRORS
from ...gen.toomcook import APPROXIMATE_LAYER_FUNCTION, transforms_manifest
from ..ecp5_ebr import DP16KD_SIM_MODEL_FILE
from ..emit import to_verilog
from ..generate import manifest_common, write_outputs
from .cores import core_latency, lane_sum_stages
from .faultsites import fault_sites
from .engine import (CONFIG_LATENCY, FRONT_STAGES, OUTPUT_QUEUE_LATENCY, REQUANT_STAGES, engine_latency,
                     output_queue_depth)
from .layouts import _check_config, config_layout, memory_shapes, status_layout

__all__ = ["layer_manifest", "binary_layer_fields", "generate_layer"]


_CYCLE_MODEL = {
    "config": "1 beat per layer, taken while a layer slot is free (two slots)",
    "weights": "C_out * ceil(C_in / filters_per_beat) beats (+ filter_stages to drain an "
               "online filter transform), concurrent with the previous layer's compute",
    "activations": "H * ceil(W / pixels_per_beat) * ceil(C_in / P_in) beats",
    "compute_ideal": "tile_rows * tile_cols * ceil(C_in / P_in) * ceil(C_out / P_out) steps, "
                     "tile_rows = ceil(H_out / m), tile_cols = ceil(W_out / m), "
                     "H_out = H + 2 * padding - r + 1",
    "row_period": "per tile row: max(tile_cols * ceil(C_in/P_in) * ceil(C_out/P_out) steps, "
                  "m * ceil(W / pixels_per_beat) * ceil(C_in / P_in) activation beats); the "
                  "larger names the bound (compute or activations)",
    "sequence": "layers back to back, sources always valid, outputs.ready high: "
                "max(first layer's weight beats, beats of its first tile row's rows) + 1 + "
                "sum over layers of tile_rows * row_period + latency",
}


def layer_manifest(config, component, verilog=None):
    """The manifest of a layer engine (a JSON-ready dict).

    The fields every manifest shares come from :func:`~winogen.hw.generate.manifest_common`;
    those that depend on the tile configuration's type (its algorithm section, the weight
    format, the function, the multiplier count, the scale, extra sections such as ``rns``)
    from the engine registry's layer-manifest builder (:mod:`winogen.hw.engines`).

    Parameters
    ----------
    config : LayerConfig
    component : the layer engine generated from ``config`` (its ports are listed)
    verilog : str, optional
        The component's emitted Verilog, for the ``fault_sites`` of binary engines (whose
        register names are resolved against it); converted here when not given.
    """
    from ..engines import engine_for
    c = _check_config(config)
    t = c.tile
    count, wwidth = c.weight_payload
    own = engine_for(c).layer_manifest(c)
    sections = dict(own.get("sections", {}))
    if own.get("fault_sites"):
        if verilog is None:
            verilog = to_verilog(component, c.module_name)
        sections["fault_sites"] = fault_sites(c, verilog)
    from ..generate import DSP_SIMULATION_MODEL
    dsp_model = DSP_SIMULATION_MODEL.get(getattr(t, "dsp", "inferred"))
    ebr = c.bram == "ecp5"
    return manifest_common(
        c, component, "layer",
        algorithm={"name": f"F({c.m}x{c.m}, {c.r}x{c.r})", "kind": c.algorithm,
                   "m": c.m, "r": c.r, "n": c.n, **own["algorithm"]},
        **sections,
        config_fields={name: {"offset": field.offset, "width": field.width}
                       for name, field in config_layout(c)},
        status_fields={name: {"offset": field.offset, "width": field.width}
                       for name, field in status_layout(c)},
        status_errors=dict(c.run_errors),
        streams={
            "config": "one beat per layer, taken while one of the two layer slots is free; a "
                      "failing beat sets status.errors (sticky until the next config beat) and "
                      "fills no slot",
            **({} if c.specialized else {"weights": (
                f"per layer, in config order: C_out*ceil(C_in/{c.filters_per_beat}) "
                f"beats, for co in C_out: for ci in steps of {c.filters_per_beat}: "
                f"filter k of the beat is (co, ci + k) (ignored when ci + k >= C_in); "
                + own["weight_format"])}),
            "activations": (f"per layer, in config order: for y in H: for x in steps of "
                            f"{c.pixels_per_beat}: for g in ceil(C_in/P_in): element "
                            f"k*P_in + i is channel g*P_in + i of pixel (y, x + k) (lanes "
                            f">= C_in and pixels >= W ignored)"),
            "outputs": "per layer, in config order: for ty: for tx: for cog: one beat; element "
                       "j*m*m + i*m + k is Y[cog*P_out + j, ty*m + i, tx*m + k]; positions "
                       "beyond the output map and lanes >= C_out are to be discarded; "
                       "outputs_last is high on each layer's last beat",
        },
        function=own["function"],
        simulation_models=([dsp_model] if dsp_model else []) + ([DP16KD_SIM_MODEL_FILE] if ebr else []),
        target_primitives=list(getattr(t, "dsp_blocks", [])) + (["DP16KD"] if ebr else []),
        flow="each stream carries the layers in config order; the streams are independent "
             "(a layer's weights and activations may arrive in any interleaving), the engine "
             "takes a layer's weights once its config is in and the previous layer's weights "
             "are loaded, and its activations once the previous layer's are in",
        beats={"pixels_per_beat": c.pixels_per_beat, "filters_per_beat": c.filters_per_beat,
               "activation_elements": c.pixels_per_beat * c.p_in,
               "weight_elements": c.filters_per_beat * count,
               "output_elements": c.p_out * c.m * c.m},
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
                         "max_shift": c.max_shift,
                         "relu": "config field relu = 1 clamps the requantized outputs "
                                 "at 0 (the lower saturation bound becomes 0)"}),
        scale=own["scale"],
        memory_bits=c.memory_bits,
        memories=memory_shapes(c),
        cycle_model=dict(_CYCLE_MODEL),
        expected_cycles=_expected_cycles(c),
        latency=engine_latency(c),
        config_latency=CONFIG_LATENCY,
        pipeline={"front": FRONT_STAGES,
                  "core": core_latency(c),
                  "lane_sum_stages": lane_sum_stages(c) if c.algorithm == "winograd" else 0,
                  "requantize": REQUANT_STAGES if c.output_width is not None else 0,
                  "output_queue": OUTPUT_QUEUE_LATENCY,
                  "output_queue_depth": output_queue_depth(c)},
    )


def binary_layer_fields(config):
    """The layer manifest's parts for a binary tile (:class:`~winogen.gen.config.TileConfig`):
    the keys :func:`layer_manifest` asks the engine registry for."""
    c, t = config, config.tile
    fields = _quantized_layer_fields(config) if t.quantization else _exact_layer_fields(config)
    if c.specialized:
        fields = _specialized(c, fields)
    if c.sparse:
        fields = _sparse(c, fields)
    return fields


def _sparse(config, fields):
    """A zero-skipping engine's fields: its multipliers, the compressed weight stream and
    the config fields it adds (:mod:`winogen.gen.sparse`)."""
    from ...gen.sparse import entry_fields
    c = config
    offset, layout = 0, {}
    for name, width in entry_fields(c):
        layout[name] = {"offset": offset, "width": width}
        offset += width
    return dict(fields, multipliers=c.sparse_lanes, fault_sites=False,
                weight_format=(f"compressed: per layer, `entries` beats; element k of a beat is "
                               f"lane k's next entry ({offset} bits, sparse.entry)"),
                sections=dict(fields.get("sections", {}), sparse={
                    "lanes": c.sparse_lanes, "slots_per_lane": c.lane_slots,
                    "max_entries": c.max_entries,
                    "entry": layout,
                    "entry_meaning": "valid 0: a no-op (lanes shorter than `entries`); else "
                                     "U[j, i, e] with j = cout_group*P_out + cout_lane, "
                                     "i = cin_group*P_in + cin_lane, position e "
                                     "(row-major n x n) in the lane's `slot`; a lane's "
                                     "entries come in groups of equal (j, e), the group's "
                                     "last has group_end 1; a (j, e) with no nonzero weight "
                                     "is one entry of value 0",
                    "lane_map": "config field: position of lane k's slot s at index "
                                "k*slots_per_lane + s, each index ceil(log2(n*n)) bits, "
                                "index 0 in the least significant bits; a permutation",
                    "errors": "status.errors bit entries (entries 0 or above max_entries), "
                              "lane_map (not a permutation), weights (an entry whose position "
                              "is not its lane's slot or whose channel is beyond C_in/C_out; "
                              "stored as a no-op, sticky until the next config beat)",
                    "cycles": "per tile max(entries, ceil(C_in/P_in), ceil(C_out/P_out)); "
                              "winogen.gen.sparse.compress balances the lanes",
                }))


def _specialized(config, fields):
    """A weight-specialized engine's fields: no multipliers, no weight stream, its weights'
    hash and constant-product counts (:mod:`winogen.gen.fixedweights`)."""
    from ...gen.fixedweights import DSP_MIN_DIGITS, specialized_products
    from .specialized import hadamard_latency, position_dsp, specialized_adders
    c = config
    fw = c.fixed_weights
    counts = specialized_products(fw.core_weights(c.tile))
    in_dsp = sum(len(products) for products in position_dsp(c))
    return dict(fields, multipliers=in_dsp, fault_sites=False,
                weight_format="none: the weights are built in (fixed_weights)",
                sections=dict(fields.get("sections", {}), fixed_weights={
                    "kind": fw.kind, "shape": list(fw.values.shape), "sha256": fw.sha256,
                    "core_weights": "U = G g G^T (Uq on a quantized domain) of w, or u as "
                                    "given; C_out x C_in x n x n",
                    **counts, "zero": counts["products"] - counts["nonzero"],
                    "sparsity": 1 - counts["nonzero"] / counts["products"],
                    "adders": specialized_adders(c),
                    "dsp_products": in_dsp,
                    "hadamard_latency": hadamard_latency(c),
                    "products_as": "CSD shift-add trees, one constant C_out x C_in matrix per "
                                   "Winograd-domain position, shared subexpressions "
                                   "(winogen.gen.csd.plan_matvec); zero weights are no term",
                    "cost_model": (f"with --dsp other than inferred, a product whose constant "
                                   f"has {DSP_MIN_DIGITS} or more nonzero CSD digits is a DSP "
                                   f"block (winogen.gen.fixedweights.dsp_products); the rest "
                                   f"are shift-adds"),
                    "run_time": f"cin must be {fw.cin} and cout {fw.cout} (status.errors "
                                f"otherwise)"}))


def _exact_layer_fields(config):
    c, t = config, config.tile
    return {
        "algorithm": {"hardware": t.hardware.to_json(),
                      **({"transforms": transforms_manifest(t.toomcook)}
                         if getattr(t, "given_transforms", None) is not None else {})}
                     if c.algorithm == "winograd" else {},
        "weight_format": ("U = G g G^T, n x n row-major (winogen.gen)"
                          if c.filter_transform == "offline" else "raw r x r row-major"),
        "function": _function(c),
        "multipliers": c.multipliers if t.pe_kind.uses_multiplier else 0,
        "scale": {"divisor": t.scale_divisor, "kept": bool(t.keep_scale),
                  "adder_output_scale": t.adder_output_scale},
        # The binary cores describe their registers for RTL fault campaigns.
        "fault_sites": True,
    }


def _quantized_layer_fields(config):
    """A quantized Winograd domain's layer fields (exact engines' manifests are unchanged)."""
    c, t = config, config.tile
    q = t.quantization
    return {
        "algorithm": {"hardware": t.hardware.to_json()},
        "weight_format": ("quantized Uq (quantization.function), n x n row-major (winogen.gen: "
                          "TileConfig.stored_filters)" if c.filter_transform == "offline" else
                          "raw r x r row-major, rounded to Uq on chip (quantization.function)"),
        "function": ("quantized Winograd domain per output tile (quantization.function, with "
                     "M summed over C_in before the alignment shifts), d the zero-padded input "
                     "tile (zeros also beyond the map); approximates the correlation with zero "
                     "padding (winogen.gen.layer.quantized_winograd_conv2d)"),
        "multipliers": c.multipliers,
        "scale": {"divisor": t.scale_divisor, "kept": False, "adder_output_scale": None,
                  "removal": "folded into Uq"},
        "sections": {"quantization": q.to_json()},
        # The fault model covers exact domains only: no fault sites.
        "fault_sites": False,
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
    if t.algorithm == "winograd" and not t.toomcook.exact:
        return APPROXIMATE_LAYER_FUNCTION
    if t.algorithm == "winograd" and t.keep_scale:
        return f"correlation with zero padding, times {t.scale_divisor} (scale kept)"
    return "correlation with zero padding (PyTorch conv2d, stride 1)"


def _expected_cycles(config):
    """The cycle model evaluated on the largest layer, padding r//2 ("same")."""
    from ...gen.layer import LayerRun
    c = config
    run = LayerRun(c.max_height, c.max_width, c.max_cin, c.max_cout, padding=c.r // 2)
    if c.sparse:                # dense weights: every lane's entries
        from ...gen.sparse import pack_lane_map
        run = LayerRun(c.max_height, c.max_width, c.max_cin, c.max_cout, padding=c.r // 2,
                       entries=c.max_entries,
                       lane_map=pack_lane_map(c, tuple(range(c.n * c.n))))
    cycles = c.cycles(run)
    cycles["layer_alone"] = c.sequence_cycles([run], engine_latency(c))
    cycles["three_layers"] = c.sequence_cycles([run] * 3, engine_latency(c))
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
    component = make_layer_engine(config)
    # emit_engine's steps, with the Verilog handed to the manifest (fault_sites).
    text = to_verilog(component, config.module_name)
    manifest = layer_manifest(config, component, verilog=text)
    vpath, jpath = write_outputs(out_dir, config.module_name, text, manifest)
    return vpath, jpath, manifest
