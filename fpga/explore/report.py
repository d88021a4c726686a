"""The sweep's tables: ``explore.csv``, ``explore.json`` and the Markdown report."""

from ...gen.pe import is_modular

__all__ = ["COLUMNS", "PUBLISHED", "render_markdown"]

#: Published GOPS per DSP block of FPGA Winograd accelerators, for the Markdown comparison.
PUBLISHED = (
    {"design": "WinoCNN", "gops_per_dsp": 1.33, "note": "kernel-sharing Winograd systolic array"},
    {"design": "WinoGen (DAC'24)", "gops_per_dsp": 3.80, "note": "best reported configuration"},
)

#: Columns of ``explore.csv`` in order (the RNS columns are empty for other PE kinds).
COLUMNS = (
    "label", "kind", "algorithm", "m", "r", "n", "preset", "data_width", "weight_width", "pe",
    "filter_transform", "pipeline", "dsp_build", "input_stages", "pe_stages", "output_stages",
    "filter_stages", "descale_stages", "p_in", "p_out", "name", "multipliers",
    "processing_elements", "lut", "ff", "dsp", "bram", "carry", "fits", "fmax_mhz",
    "constraint_mhz", "timing_met", "latency", "latency_ns", "initiation_interval",
    "outputs_per_cycle", "macs_per_cycle", "ops_per_cycle", "ops_per_dsp_cycle", "gops",
    "gops_per_dsp", "layer_cycles", "compute_cycles", "workload", "target", "part",
    "estimate", "cached", "seconds", "key", "error",
    "moduli", "redundant_moduli", "rns_method", "multiplier_width", "rns_forward_reduction",
)

def _json_grid(g):
    out = dict(g)
    out["widths"] = [f"{d}x{w}" for d, w in g["widths"]]
    return out


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return value


# --- Markdown -------------------------------------------------------------------------------

def _fmt(value, digits=2):
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(rows, meta, plots=None):
    """The ``explore.md`` report: results table, best figures, published comparison, plots."""
    place = meta.get("place")
    lines = [f"# Design-space exploration: {len(rows)} configurations on {meta.get('part')} "
             f"({meta.get('target')})", ""]
    if place:
        lines.append(f"- Flow: Yosys + nextpnr place and route at a {meta['freq_mhz']:g} MHz "
                     f"constraint; resources are post-synthesis counts, Fmax post-route.")
    else:
        lines.append("- Flow: Yosys synthesis only (no place and route): resources are "
                     "post-synthesis counts; no Fmax, so no GOPS.")
    invalid = meta.get("invalid_skipped") or []
    lines.append(f"- Cached results reused: {meta.get('cached', 0)} of {len(rows)}"
                 + (f"; failed: {meta['failed']}" if meta.get("failed") else "")
                 + (f"; duplicate combinations dropped: {meta['duplicates_dropped']}"
                    if meta.get("duplicates_dropped") else "")
                 + (f"; invalid combinations skipped: {len(invalid)} (see below)"
                    if invalid else ""))
    versions = meta.get("versions") or {}
    lines.append("- Tools: " + ", ".join(f"{k} {v}" for k, v in versions.items()
                                         if k != "sources" and v))
    lines.append("- Operations = 2 × MACs of the equivalent direct convolution (tile: "
                 "2·m²·r² per cycle at II 1; layer: cycle model of the whole layer).")
    ok = [r for r in rows if not r.get("error")]
    lines += _results(rows, invalid)
    lines += _best(ok)
    lines += _comparison(ok, meta)
    if plots:
        lines += ["## Plots", ""]
        for key, p in plots["plots"].items():
            lines.append(f"![{key}]({p['file']})")
            for o in p.get("omitted", []):
                lines.append(f"- not in `{p['file']}`: {o['label']} ({o['reason']})")
            lines.append("")
    return "\n".join(lines)


def _results(rows, invalid):
    """The results table, its notes and the skipped combinations."""
    lines = ["", "## Results", ""]
    cols = [("label", "Configuration"), ("multipliers", "Mult"), ("lut", "LUT"), ("ff", "FF"),
            ("dsp", "DSP"), ("bram", "BRAM"), ("carry", "Carry"), ("fits", "Fits"),
            ("fmax_mhz", "Fmax MHz"), ("latency", "Latency"),
            ("outputs_per_cycle", "Out/cycle"), ("ops_per_dsp_cycle", "Ops/DSP/cycle"),
            ("gops", "GOPS"), ("gops_per_dsp", "GOPS/DSP")]
    if any(r["kind"] == "layer" for r in rows):
        cols.insert(-4, ("layer_cycles", "Layer cycles"))
    if any(is_modular(r.get("pe")) for r in rows):
        cols += [("moduli", "Moduli"), ("redundant_moduli", "Redundant"),
                 ("rns_method", "RNS method"), ("multiplier_width", "Mult bits"),
                 ("rns_forward_reduction", "Fwd reduction")]
    lines.append("| " + " | ".join(h for _, h in cols) + " |")
    lines.append("|---|" + "---:|" * (len(cols) - 1))
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['label']} | failed: {row['error']} |" + " |" * (len(cols) - 2))
            continue
        cells = [_fmt(row[k], 1 if k == "fmax_mhz" else 2) for k, _ in cols]
        lines.append("| " + " | ".join(cells) + " |")
    workloads = sorted({r["workload"] for r in rows if r.get("workload")})
    if workloads:
        lines += ["", f"Layer rows: one layer of {', '.join(workloads)} (H x W x C_in -> C_out); "
                      f"cycles of every phase (configuration, weights, activations, compute, "
                      f"drain) with ready held high."]
    if any(is_modular(r.get("pe")) for r in rows):
        lines += ["", "RNS rows: Mult counts the modular multipliers (n² per modulus, of "
                      "Mult bits each); a label's moduli end in +r with a redundant modulus."]
    if invalid:
        lines += ["", "## Invalid combinations (skipped)", ""]
        lines += [f"- {item['kind']} {item['configuration']}: {item['error']}"
                  for item in invalid]
    return lines


def _best(ok):
    """The best figures of the sweep."""
    lines = ["", "## Best of this sweep", ""]
    if ok:
        best = max((r for r in ok if r["ops_per_dsp_cycle"] is not None),
                   key=lambda r: r["ops_per_dsp_cycle"], default=None)
        if best:
            lines.append(f"- Most operations per DSP per cycle: **{best['ops_per_dsp_cycle']:.2f}** "
                         f"({best['label']}, {best['dsp']} DSPs)")
        fastest = max((r for r in ok if r["gops"] is not None), key=lambda r: r["gops"],
                      default=None)
        if fastest:
            lines.append(f"- Highest throughput: **{fastest['gops']:.2f} GOPS** "
                         f"({fastest['label']} at {fastest['fmax_mhz']:.1f} MHz)")
        for alg in ("winograd", "direct"):
            mine = [r for r in ok if r["algorithm"] == alg and r["ops_per_dsp_cycle"]]
            if mine:
                lines.append(f"- {alg}: ops/DSP/cycle from "
                             f"{min(r['ops_per_dsp_cycle'] for r in mine):.2f} to "
                             f"{max(r['ops_per_dsp_cycle'] for r in mine):.2f}")
    return lines


def _comparison(ok, meta):
    """The published accelerators beside the best of this sweep, and the caveats."""
    lines = ["", "## Comparison with published Winograd accelerators", "",
             "| Design | GOPS/DSP | Note |", "|---|---:|---|"]
    for pub in PUBLISHED:
        lines.append(f"| {pub['design']} | {pub['gops_per_dsp']:.2f} | {pub['note']} |")
    best_g = max((r for r in ok if r["gops_per_dsp"] is not None),
                 key=lambda r: r["gops_per_dsp"], default=None)
    if best_g:
        lines.append(f"| this sweep, best: {best_g['label']} | {best_g['gops_per_dsp']:.2f} | "
                     f"{best_g['fmax_mhz']:.1f} MHz on {meta.get('part')}, "
                     f"{best_g['dsp']} DSPs |")
    else:
        lines.append("| this sweep | — | needs place and route (Fmax); rerun without "
                     "--no-place |")
    lines += ["",
              "Caveats: the published figures are whole accelerators (buffers, control, "
              "off-chip traffic) on Xilinx devices, whose DSP slices differ from ECP5 "
              "MULT18X18D blocks (and can pack two 8-bit multiplies sharing an operand); "
              "here each multiplier is one MULT18X18D as Yosys maps it. Tile-engine "
              "figures exclude memories and I/O; layer-engine figures include every phase "
              "of the cycle model. GOPS/DSP scales with Fmax, so compare at similar "
              "clocks.", ""]
    return lines
