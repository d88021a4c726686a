"""The manifest of RNS engines: the ``rns`` section, the tile manifest, generation."""

from ...gen.rns import RNSTileConfig

__all__ = ["rns_manifest_section", "rns_tile_manifest", "generate_rns_tile"]


def rns_manifest_section(config):
    """The manifest's ``"rns"`` entry: moduli, method, range, matrices, error flag."""
    cfg = config
    tr = cfg.transforms
    return {
        "moduli": list(cfg.moduli),
        "non_redundant": list(cfg.base_moduli.moduli),
        "redundant": list(cfg.moduli[len(cfg.base_moduli):]),
        "product": str(cfg.base_moduli.product),
        "method": cfg.method_used,
        "method_note": ("integer-scaled matrices; the scale D² is divided out exactly "
                        "after reverse conversion" if cfg.method_used == "scaled" else
                        "rational entries a/b mapped to a·b⁻¹ mod m_i"),
        "result_range": [str(cfg.result_interval.lo), str(cfg.result_interval.hi)],
        "reverse_conversion": "mixed radix",
        "residue_widths": list(cfg.residue_widths),
        "input_transform": cfg.input_transform,
        "forward_reduction": cfg.forward_reduction,
        "multiplier": cfg.multiplier_description,
        "matrices": {"AT": [list(map(list, M)) for M in tr.AT],
                     "G": [list(map(list, M)) for M in tr.G],
                     "BT": [list(map(list, M)) for M in tr.BT]},
        "error_flag": ("error is valid with outputs.valid: 1 when the output tile's value "
                       "over all moduli is not a legitimate result (a fault)"
                       if cfg.redundant_moduli else None),
    }


def rns_tile_manifest(config, component, verilog=None):
    """The manifest of an RNS tile engine (a JSON-ready dict).

    ``verilog``: the component's emitted Verilog, for the ``fault_sites`` of engines with
    full forward reduction (register names are resolved against it); converted here when
    not given.
    """
    from ..generate import manifest_common
    cfg = config
    tc = cfg.toomcook
    count, wwidth = cfg.weight_payload
    manifest = manifest_common(
        cfg, component, "rns_tile",
        algorithm={
            "name": f"F({cfg.m}x{cfg.m}, {cfg.r}x{cfg.r})", "kind": "winograd",
            "m": cfg.m, "r": cfg.r, "n": cfg.n, "points": [str(p) for p in tc.points],
            "rational": tc.matrices("G").to_json(),
        },
        rns=rns_manifest_section(cfg),
        streams={
            "tiles": {"shape": [cfg.n, cfg.n], "element_width": cfg.data_width,
                      "description": "input tile d, row-major: element i*n+j is d[i][j]; "
                                     f"{cfg.channels} consecutive beats (channels 0..C-1) "
                                     "per output tile"},
            "weights": {"shape": [len(cfg.moduli), cfg.channels, cfg.n, cfg.n],
                        "element_width": wwidth,
                        "format": "residues U_i[c] = G_i g_c G_i^T mod m_i "
                                  "(winogen.gen.rns.RNSTileModel.weight_beat), unsigned",
                        "description": "a beat applies to every output tile whose first "
                                       "channel is accepted after it"},
            "outputs": {"shape": [cfg.m, cfg.m], "element_width": cfg.output_width,
                        "description": "Y = correlation of the tile with the filter, summed "
                                       "over the channels"},
        },
        latency=cfg.latency,
        initiation_interval=cfg.initiation_interval,
        multipliers=cfg.multipliers,
        multiplier_width=cfg.multiplier_width,
        processing_elements=cfg.multipliers,
        pe="rns",
        widths={"data": cfg.data_width, "weight": cfg.weight_width,
                "output": cfg.output_width, "weight_payload": wwidth,
                "result": cfg.result_interval.width},
        scale={"divisor": cfg.scale_divisor, "kept": False,
               "removal": "none" if cfg.scale_divisor == 1 else
               "exact division after reverse conversion"},
    )
    if cfg.forward_reduction == "full":
        # The registers of the RNS fault model's values, for RTL fault campaigns.
        from ..emit import to_verilog
        from ..layer.faultsites import tile_fault_sites
        if verilog is None:
            verilog = to_verilog(component, cfg.module_name)
        manifest["fault_sites"] = tile_fault_sites(cfg, verilog)
    return manifest


def generate_rns_tile(config, out_dir):
    """Generate an RNS tile engine into ``out_dir``.

    Returns ``(verilog_path, manifest_path, manifest)``; the same as
    :func:`~winogen.hw.generate.generate_tile`, which also takes an RNS configuration.
    """
    from ..generate import generate_tile
    if not isinstance(config, RNSTileConfig):
        raise TypeError(f"config must be an RNSTileConfig, not {config!r}")
    return generate_tile(config, out_dir)
