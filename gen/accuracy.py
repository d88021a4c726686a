"""Floating-point accuracy of Winograd F(m, r) against direct convolution.

The report runs :func:`~winogen.gen.models.winograd_conv2d` in a float dtype on
two kinds of layer and compares it with the float64 direct convolution of the
same inputs:

* ``"random"``: a layer of normal activations and weights;
* ``"camera"`` / ``"astronaut"``: the scikit-image test pictures (shipped in
  its wheel) scaled to [0, 1] as activations (1 resp. 3 input channels), with
  seeded random normal filters.

Relative error
--------------
The inputs are first rounded to the dtype under test and the float64
reference ``y`` is computed from the rounded values, so only the arithmetic of
the algorithm is measured, not the quantisation of its inputs. For every
output element the error is ``|ŷ − y| / max|y|``, the maximum taken over the
whole layer output: normalising by the output's range rather than by each
element keeps near-zero outputs from dominating, and makes the unit "fractions
of the output's full scale", the unit a fixed-point or float datapath cares
about. ``mean`` is the average over all output elements (the typical error),
``max`` the worst element. A ``direct`` row gives the same errors for a direct
convolution computed in the same dtype with every product and sum rounded, the
floor that Winograd is measured against.

Weights are scaled by ``1/sqrt(C_in r²)`` (He-style) so that outputs are of
order one and float16 keeps its range; relative errors do not depend on it.
"""

import math
import numbers
import warnings

import numpy as np

from .models import direct_conv2d, winograd_conv2d
from .points import PRESETS
from .toomcook import NumericalWarning, ToomCook

__all__ = ["DATASETS", "DTYPES", "ERROR_DEFINITION", "accuracy_table", "format_table",
           "json_ready", "plot_accuracy"]

#: Layers the report can measure.
DATASETS = ("random", "camera", "astronaut")

#: The float dtypes the report accepts.
DTYPES = ("float16", "float32", "float64")

#: One-line definition of the reported error, for tables and JSON.
ERROR_DEFINITION = ("relative error |ŷ − y| / max|y| per output element, y = float64 direct "
                    "convolution of the same inputs rounded to the dtype; mean and max over the layer")


def _positive_int(name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _image(name):
    """``(1, C, 512, 512)`` float64 activations in [0, 1] from scikit-image's bundled data."""
    from skimage import data
    if name == "camera":
        pixels = data.camera()[np.newaxis]
    else:
        pixels = data.astronaut().transpose(2, 0, 1)
    return (pixels.astype(np.float64) / 255.0)[np.newaxis]


def _layer(dataset, rng, r, channels, size):
    """Activations ``(1, C_in, H, W)`` and weights ``(channels, C_in, r, r)`` of one dataset."""
    if dataset == "random":
        x = rng.standard_normal((1, channels, size, size))
    else:
        x = _image(dataset)
    c_in = x.shape[1]
    w = rng.standard_normal((channels, c_in, r, r)) / math.sqrt(c_in * r * r)
    return x, w


def _relative_errors(y, reference):
    """``(mean, max)`` of ``|y − reference| / max|reference|``; inf when ``y`` overflowed."""
    y = y.astype(np.float64)
    if not np.all(np.isfinite(y)):
        return math.inf, math.inf
    error = np.abs(y - reference) / np.abs(reference).max()
    return float(error.mean()), float(error.max())


def _direct_rounded(x, w, padding, dtype):
    """Direct convolution with every product and sum rounded to ``dtype``.

    A loop over input channels and taps (not pixels) with the additions in a
    fixed order; NumPy's float16 matmul would accumulate in float32.
    """
    x = np.pad(x.astype(dtype), [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    w = w.astype(dtype)
    c_out, c_in, r, _ = w.shape
    ho, wo = x.shape[2] - r + 1, x.shape[3] - r + 1
    acc = None
    for c in range(c_in):
        for a in range(r):
            for b in range(r):
                term = w[np.newaxis, :, c, a, b, np.newaxis, np.newaxis] * x[:, c:c + 1, a:a + ho, b:b + wo]
                acc = term if acc is None else acc + term
    return acc


def _row(dataset, algorithm, preset, points, m, r, dtype, errors=(None, None), note=""):
    return {"data": dataset, "algorithm": algorithm, "m": m, "r": r, "preset": preset,
            "points": points, "dtype": dtype, "mean_rel_error": errors[0],
            "max_rel_error": errors[1], "note": note}


def accuracy_table(r=3, ms=(2, 4, 6), presets=("lavin", "barabasz"), dtype="float32", *, seed=0,
                   channels=32, size=64, datasets=DATASETS, baseline=True):
    """Mean and max relative error of float Winograd F(m, r) per point preset.

    Parameters
    ----------
    r : int
        Filter size.
    ms : sequence of int
        Output tile sizes ``m`` to measure.
    presets : sequence of str
        Point presets (see :mod:`winogen.gen.points`). A preset that does not
        define the tile size ``n = m + r - 1`` gives a row with no errors and
        the reason in ``note``.
    dtype : str
        ``"float16"``, ``"float32"`` or ``"float64"``: the arithmetic measured.
    seed : int
        Seeds the random activations and all weights; each dataset draws
        from its own stream, so the rows of one dataset do not depend on
        which others are measured.
    channels : int
        Input and output channels of the random layer, output channels
        (filters) of the image layers. Enough filters make the comparison of
        presets robust on the smooth image data.
    size : int
        Height and width of the random layer; the images are 512 × 512.
    datasets : sequence of str
        Any of ``"random"``, ``"camera"``, ``"astronaut"``.
    baseline : bool
        Add a ``direct`` row per dataset: direct convolution rounded to
        ``dtype``.

    Returns
    -------
    list of dict
        One row per dataset and (m, preset): ``data``, ``algorithm``
        (``"F(m,r)"`` or ``"direct"``), ``m``, ``r``, ``preset``, ``points``,
        ``dtype``, ``mean_rel_error``, ``max_rel_error`` (floats, ``inf``
        after an overflow, ``None`` when skipped) and ``note``. The error is
        defined in :data:`ERROR_DEFINITION`.
    """
    r = _positive_int("r", r)
    ms = _check_ms(ms)
    presets = _check_presets(presets)
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    channels = _positive_int("channels", channels)
    size = _positive_int("size", size)
    if size < r:
        raise ValueError(f"size must be at least r = {r}, not {size!r}")
    datasets = (datasets,) if isinstance(datasets, str) else tuple(datasets)
    for dataset in datasets:
        if dataset not in DATASETS:
            raise ValueError(f"datasets must be drawn from {', '.join(DATASETS)}, not {dataset!r}")

    padding = r // 2
    rows = []
    for index, dataset in enumerate(DATASETS):
        if dataset not in datasets:
            continue
        rng = np.random.default_rng([int(seed), index])
        x, w = _layer(dataset, rng, r, channels, size)
        # Round once to the dtype; the reference sees exactly what Winograd sees.
        x = x.astype(dtype).astype(np.float64)
        w = w.astype(dtype).astype(np.float64)
        reference = direct_conv2d(x, w, padding, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            if baseline:
                errors = _relative_errors(_direct_rounded(x, w, padding, dtype), reference)
                rows.append(_row(dataset, "direct", "direct", None, None, r, dtype, errors,
                                 _overflow_note(errors, dtype)))
            for m in ms:
                for preset in presets:
                    rows.append(_measure(dataset, x, w, reference, m, r, preset, dtype, padding))
    return rows


def _overflow_note(errors, dtype):
    return f"overflow to inf/nan in {dtype}" if errors[0] == math.inf else ""


def _measure(dataset, x, w, reference, m, r, preset, dtype, padding):
    algorithm = f"F({m},{r})"
    try:
        tc = ToomCook(m, r, preset=preset)
    except ValueError as error:
        return _row(dataset, algorithm, preset, None, m, r, dtype, note=f"skipped: {error}")
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NumericalWarning)
        y = winograd_conv2d(x, w, tc, padding, arithmetic=dtype)
    if any(issubclass(item.category, NumericalWarning) for item in caught):
        notes.append(f"tile size {tc.n} > 8: numerically unsafe")
    errors = _relative_errors(y, reference)
    if errors[0] == math.inf:
        notes.append(_overflow_note(errors, dtype))
    return _row(dataset, algorithm, preset, tc.points_text, m, r, dtype, errors, "; ".join(notes))


def _check_ms(ms):
    if isinstance(ms, numbers.Integral):
        ms = (ms,)
    ms = tuple(ms)
    if not ms:
        raise ValueError("ms must hold at least one positive integer, not ()")
    return tuple(_positive_int("m", m) for m in ms)


def _check_presets(presets):
    if isinstance(presets, str):
        presets = (presets,)
    presets = tuple(presets)
    for preset in presets:
        if preset not in PRESETS:
            raise ValueError(f"presets must be drawn from {', '.join(sorted(PRESETS))}, "
                             f"not {preset!r}")
    if not presets:
        raise ValueError("presets must name at least one preset, not ()")
    return presets


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def _format_error(value):
    if value is None:
        return "—"
    if math.isinf(value):
        return "inf"
    return f"{value:.2e}"


def format_table(rows):
    """A Markdown table of :func:`accuracy_table` rows.

    Parameters
    ----------
    rows : list of dict

    Returns
    -------
    str
        Header, separator and one line per row (no trailing newline).
    """
    header = ["data", "algorithm", "preset", "points", "dtype", "mean rel. error",
              "max rel. error", "note"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * 5 + ["---:"] * 2 + ["---"]) + "|"]
    for row in rows:
        cells = [row["data"], row["algorithm"], row["preset"], row["points"] or "—", row["dtype"],
                 _format_error(row["mean_rel_error"]), _format_error(row["max_rel_error"]),
                 row["note"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def json_ready(rows):
    """Non-finite errors become ``None`` (strict JSON has no Infinity); the note says why."""
    def clean(value):
        return None if isinstance(value, float) and not math.isfinite(value) else value
    return [{key: clean(value) for key, value in row.items()} for row in rows]


def plot_accuracy(rows, path):
    """Write a PNG of mean (solid) and max (dashed) relative error vs m, per preset.

    One panel per dataset; the ``direct`` baseline is a dotted horizontal
    line. Uses the Agg canvas directly, so no GUI backend is touched.

    Parameters
    ----------
    rows : list of dict
        :func:`accuracy_table` rows.
    path : str or path-like
        The PNG file to write.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets = list(dict.fromkeys(row["data"] for row in rows))
    figure = Figure(figsize=(4.2 * max(len(datasets), 1), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, max(len(datasets), 1), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets):
        mine = [row for row in rows if row["data"] == dataset]
        presets = list(dict.fromkeys(row["preset"] for row in mine if row["preset"] != "direct"))
        for index, preset in enumerate(presets):
            points = [row for row in mine if row["preset"] == preset
                      and row["mean_rel_error"] is not None and math.isfinite(row["mean_rel_error"])]
            if not points:
                continue
            color = f"C{index}"
            ms = [row["m"] for row in points]
            ax.plot(ms, [row["mean_rel_error"] for row in points], "o-", color=color,
                    label=f"{preset} mean")
            ax.plot(ms, [row["max_rel_error"] for row in points], "s--", color=color,
                    label=f"{preset} max", alpha=0.7)
        for row in mine:
            if row["preset"] == "direct" and row["mean_rel_error"] is not None \
                    and math.isfinite(row["mean_rel_error"]):
                ax.axhline(row["mean_rel_error"], color="gray", linestyle=":", label="direct mean")
        ax.set_xticks(sorted({row["m"] for row in mine if row["m"] is not None}))
        ax.set_yscale("log")
        ax.set_xlabel("m (outputs per tile)")
        ax.set_title(f"{dataset}, {mine[0]['dtype']}, r = {mine[0]['r']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].set_ylabel("relative error |ŷ − y| / max|y|")
    figure.savefig(path, format="png", dpi=100)
