"""The sweep's PNG plots and ``plots.json`` (what each plot holds, read back)."""

import hashlib
import json
import math
from pathlib import Path

from ...gen.pe import is_modular
from .report import PUBLISHED

__all__ = ["write_plots"]

_PLOT_FILES = {"lut_vs_dsp": "lut_vs_dsp.png",
               "throughput_vs_resources": "throughput_vs_resources.png",
               "ops_per_dsp": "ops_per_dsp.png",
               "latency_vs_fmax": "latency_vs_fmax.png"}

# --- Plots ----------------------------------------------------------------------------------

def _pareto(points):
    """Indices of the points not dominated under (minimize x, maximize y), sorted by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _save(fig, out, plots, name, panels, omitted):
    """Write plot ``name``'s PNG into ``out`` and record it (file, panels, omitted rows) in ``plots``."""
    fig.savefig(out / _PLOT_FILES[name], dpi=110)
    plots[name] = {"file": _PLOT_FILES[name], "panels": panels, "omitted": omitted}


def _panel_record(ax, title, xlabel, ylabel, labels):
    """What a panel holds, read back from its data artists (gid "data")."""
    xy = []
    for coll in ax.collections:
        if coll.get_gid() == "data":
            xy += [[float(a), float(b)] for a, b in coll.get_offsets()]
    for patch in ax.patches:
        if patch.get_gid() == "data":
            xy.append([float(patch.get_x() + patch.get_width() / 2), float(patch.get_height())])
    front = []
    for line in ax.lines:
        if line.get_gid() == "pareto":
            front = [[float(a), float(b)] for a, b in zip(*line.get_data())]
    return {"title": title, "x": xlabel, "y": ylabel, "points": len(xy), "xy": xy,
            "labels": labels, "pareto": front}


def _style(row):
    color = "C4" if is_modular(row.get("pe")) else "C0" if row["algorithm"] == "winograd" else "C1"
    marker = {0: "v", 1: "o", 2: "s", 3: "D"}.get(row["pipeline"], "^")
    return color, marker


def _scatter(ax, rows, xs, ys, annotate=True):
    for i, (row, x, y) in enumerate(zip(rows, xs, ys)):
        color, marker = _style(row)
        ax.scatter([x], [y], c=color, marker=marker, s=36, gid="data", zorder=3)
        if (annotate is True or i in annotate) and len(rows) <= 24:
            ax.annotate(row["label"], (x, y), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")


def _legend(ax, rows):
    from matplotlib.lines import Line2D
    handles = []
    for alg, color in (("winograd", "C0"), ("direct", "C1"), ("winograd rns", "C4")):
        if any(_style(r)[0] == color for r in rows):
            handles.append(Line2D([], [], color=color, marker="o", linestyle="", label=alg))
    for p in sorted({r["pipeline"] for r in rows}):
        _, marker = _style({"algorithm": "", "pipeline": p})
        handles.append(Line2D([], [], color="gray", marker=marker, linestyle="",
                              label=f"pipeline {p}"))
    ax.legend(handles=handles, fontsize=7, loc="best")


def _usable(rows, *keys):
    kept, omitted = [], []
    for row in rows:
        missing = [k for k in keys if row.get(k) is None]
        if row.get("error"):
            omitted.append({"label": row["label"], "reason": "failed (see the table)"})
        elif missing:
            omitted.append({"label": row["label"], "reason": f"no {', '.join(missing)}"})
        else:
            kept.append(row)
    return kept, omitted


def write_plots(rows, out_dir, meta=None):
    """Write the four PNG plots and ``plots.json``; return the plots record.

    ``lut_vs_dsp.png``: LUTs against DSP blocks. ``throughput_vs_resources.png``: GOPS at
    the achieved Fmax (operations per cycle without place and route) against LUTs and
    against DSPs, Pareto fronts (fewest resources for the most throughput) marked.
    ``ops_per_dsp.png``: effective operations per DSP per cycle per configuration (and GOPS
    per DSP with the published figures when placed). ``latency_vs_fmax.png``: latency in
    cycles against the achieved Fmax, the pipelining trade-off (against the pipeline
    setting when nothing was placed).

    Rows that cannot appear in a plot (failed, or a figure missing) are listed under
    ``omitted`` of that plot in ``plots.json``. Rendering is skipped when the rows and
    this module are unchanged since the files were written.

    Parameters
    ----------
    rows : list of dict
        :func:`explore` rows.
    out_dir : path-like
    meta : dict, optional
        Sweep settings (``target``, ``part``, ``place``).

    Returns
    -------
    dict
        The content of ``plots.json``.
    """
    out = Path(out_dir)
    meta = meta or {}
    stable = [{k: v for k, v in r.items() if k not in ("cached", "seconds")} for r in rows]
    digest = hashlib.sha256((json.dumps(stable, sort_keys=True, default=str)
                             + Path(__file__).read_text()).encode()).hexdigest()[:20]
    record_path = out / "plots.json"
    try:
        old = json.loads(record_path.read_text())
        if old.get("digest") == digest and \
                all((out / p["file"]).is_file() for p in old["plots"].values()):
            return old
    except (OSError, ValueError, KeyError, AttributeError):
        pass

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def figure(ncols=1, width=6.4):
        fig = Figure(figsize=(width * ncols, 4.6), layout="constrained")
        FigureCanvasAgg(fig)
        return fig, fig.subplots(1, ncols, squeeze=False)[0]

    where = f"{meta.get('part', '')} ({meta.get('target', '')})".strip()
    plots = {}
    for plot in (_plot_lut_vs_dsp, _plot_throughput, _plot_ops_per_dsp, _plot_latency):
        plot(rows, out, plots, figure, where)
    record = {"rows": len(rows), "digest": digest, "plots": plots}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def _plot_lut_vs_dsp(rows, out, plots, figure, where):
    """LUTs against DSP blocks."""
    kept, omitted = _usable(rows, "lut", "dsp")
    fig, (ax,) = figure()
    _scatter(ax, kept, [r["dsp"] for r in kept], [r["lut"] for r in kept])
    ax.set_xlabel("DSP blocks")
    ax.set_ylabel("LUTs")
    ax.set_title(f"LUTs vs DSPs, {where}", fontsize=9)
    ax.grid(alpha=0.3)
    _legend(ax, kept or rows)
    panels = [_panel_record(ax, "LUTs vs DSPs", "dsp", "lut", [r["label"] for r in kept])]
    _save(fig, out, plots, "lut_vs_dsp", panels, omitted)


def _plot_throughput(rows, out, plots, figure, where):
    """Throughput against LUTs and DSPs, Pareto fronts marked."""
    placed = any(r.get("gops") is not None for r in rows)
    ykey, ylabel = ("gops", "GOPS at achieved Fmax") if placed else \
        ("ops_per_cycle", "operations per cycle (not placed: no Fmax)")
    kept, omitted = _usable(rows, ykey, "lut", "dsp")
    fig, axes = figure(2, 5.2)
    panels = []
    for ax, xkey, xlabel in ((axes[0], "lut", "LUTs"), (axes[1], "dsp", "DSP blocks")):
        xs = [r[xkey] for r in kept]
        ys = [r[ykey] for r in kept]
        front = _pareto(list(zip(xs, ys)))
        # Only the front is labelled: it is what the plot is read for, and labels of
        # coinciding points elsewhere would pile up.
        _scatter(ax, kept, xs, ys, annotate=set(front))
        if front:
            fx, fy = [xs[i] for i in front], [ys[i] for i in front]
            ax.step(fx, fy, where="post", color="k", linewidth=1, gid="pareto",
                    label="Pareto front")
            ax.scatter(fx, fy, facecolors="none", edgecolors="k", s=110, zorder=4,
                       gid="pareto_markers")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"throughput vs {xlabel}", fontsize=9)
        ax.grid(alpha=0.3)
        panels.append(_panel_record(ax, f"throughput vs {xlabel}", xkey, ykey,
                                    [r["label"] for r in kept]))
        panels[-1]["pareto_labels"] = [kept[i]["label"] for i in front]
    _legend(axes[0], kept or rows)
    fig.suptitle(f"Throughput vs resources, {where} (ops = 2 x MACs of direct convolution)",
                 fontsize=9)
    _save(fig, out, plots, "throughput_vs_resources", panels, omitted)


def _plot_ops_per_dsp(rows, out, plots, figure, where):
    """Effective operations per DSP per cycle (and GOPS per DSP when placed)."""
    kept, omitted = _usable(rows, "ops_per_dsp_cycle")
    for o in omitted:
        if o["reason"] == "no ops_per_dsp_cycle":
            o["reason"] = "no DSP blocks used (multipliers in LUT logic)"
    kept_g = [r for r in kept if r.get("gops_per_dsp") is not None]
    fig, axes = figure(2 if kept_g else 1, max(6.4, 0.45 * len(kept) + 2))
    panels = []
    bar_sets = [(axes[0], kept, "ops_per_dsp_cycle", "ops per DSP per cycle")]
    if kept_g:
        bar_sets.append((axes[1], kept_g, "gops_per_dsp", "GOPS per DSP at achieved Fmax"))
    for ax, rs, key, ylabel in bar_sets:
        xs = list(range(len(rs)))
        for x, row in zip(xs, rs):
            color, _ = _style(row)
            ax.bar([x], [row[key]], color=color, gid="data")
        ax.set_xticks(xs, [r["label"] for r in rs], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
        if key == "gops_per_dsp":
            for i, pub in enumerate(PUBLISHED):
                ax.axhline(pub["gops_per_dsp"], color=f"C{i + 2}", linestyle="--",
                           linewidth=1, label=f"{pub['design']} {pub['gops_per_dsp']:.2f}")
            ax.legend(fontsize=7)
        ax.set_title(ylabel, fontsize=9)
        panels.append(_panel_record(ax, ylabel, "configuration", key, [r["label"] for r in rs]))
    fig.suptitle(f"Effective operations (2 x direct MACs) per DSP, {where}", fontsize=9)
    _save(fig, out, plots, "ops_per_dsp", panels, omitted)


def _plot_latency(rows, out, plots, figure, where):
    """Latency against Fmax: the pipelining trade-off."""
    any_fmax = any(r.get("fmax_mhz") is not None for r in rows)
    xkey, xlabel = ("fmax_mhz", "achieved Fmax (MHz)") if any_fmax else \
        ("pipeline", "pipeline setting (Fmax not measured: no place and route)")
    kept, omitted = _usable(rows, xkey, "latency")
    fig, (ax,) = figure()
    # Lines join the pipeline variants of one engine, so the trade-off reads as a curve.
    families = {}
    for row in kept:
        fam = (row["kind"], row["algorithm"], row["m"], row["r"], row["preset"],
               row["data_width"], row["weight_width"], row["pe"], row["filter_transform"],
               row["p_in"], row["p_out"], row["moduli"],
               row["redundant_moduli"], row["rns_method"], row["rns_forward_reduction"])
        families.setdefault(fam, []).append(row)
    for fam_rows in families.values():
        fam_rows.sort(key=lambda r: r["pipeline"])
        if len(fam_rows) > 1:
            color, _ = _style(fam_rows[0])
            ax.plot([r[xkey] for r in fam_rows], [r["latency"] for r in fam_rows],
                    color=color, alpha=0.4, linewidth=1)
    _scatter(ax, kept, [r[xkey] for r in kept], [r["latency"] for r in kept])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("latency (cycles)")
    if any_fmax:
        ax.set_title(f"Latency vs Fmax, {where}", fontsize=9)
    else:
        ax.set_title(f"Latency vs pipeline setting (Fmax not measured), {where}", fontsize=9)
        ax.set_xticks(sorted({r["pipeline"] for r in kept}))
    ax.grid(alpha=0.3)
    _legend(ax, kept or rows)
    panels = [_panel_record(ax, "latency vs Fmax", xkey, "latency", [r["label"] for r in kept])]
    _save(fig, out, plots, "latency_vs_fmax", panels, omitted)
