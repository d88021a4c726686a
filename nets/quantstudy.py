"""The quantized-Winograd study (``winogen accuracy --quantized``): how narrow a Winograd
domain can be, per algorithm, points, scales and training.

Each row is one Winograd domain (F(m, 3) with a point preset, in the monomial or the
Legendre base (:mod:`winogen.gen.basechange`: the engine's integer Winograd-domain values
are then ``γ_i γ_j`` times the monomial ones, rounded on that scale); ``W`` bits with
``global`` or ``tapwise`` power-of-two scales, or exact) and one way of obtaining the network's
weights (``post``: the committed int8 network as it is; ``wa``: Winograd-aware
fine-tuning, :func:`winogen.nets.wa.train_wa`; ``flex``: the same with learned
transforms). Its columns:

* ``image_error``: the relative RMS error, ``RMS(Y − Y_exact) / RMS(Y_exact)``, of one
  3 × 3 layer (8 random int8 filters, seeded, padding 1) on int8 versions of
  scikit-image's sample images (``camera``, ``astronaut``; pixel − 128) against the exact
  int8 direct convolution; the engine's arithmetic is :func:`winogen.nets.wa.winograd_layer`
  (which equals the engine's golden model);
* ``top1``: top-1 of the reference network on its 359 test digits, every layer run that
  way (:func:`winogen.nets.wa.forward_engine`);
* ``multiplier``: the Hadamard multiplier's operand widths.

Hardware columns (LUT4 with soft multipliers, Nexus DSP primitives) come from
``benchmarks/bench_quantized.py``, which synthesizes the tile engines.
"""

import math
import time

import numpy as np

__all__ = ["STUDY_WIDTHS", "TRAININGS", "study_rows", "format_rows", "plot_rows"]

#: ``W`` values of the study; None is the exact domain.
STUDY_WIDTHS = (8, 9, 10, 12, None)
#: How the weights are obtained.
TRAININGS = ("post", "wa", "flex")
#: Filters of the image-error layer.
IMAGE_FILTERS = 8
IMAGE_CROP = 128


def _images():
    """int8 maps (C, H, W) of scikit-image's camera and astronaut, centre crops."""
    from skimage import data
    out = {}
    for name, pixels in (("camera", data.camera()[np.newaxis]),
                         ("astronaut", data.astronaut().transpose(2, 0, 1))):
        h, w = pixels.shape[1:]
        top, left = (h - IMAGE_CROP) // 2, (w - IMAGE_CROP) // 2
        crop = pixels[:, top:top + IMAGE_CROP, left:left + IMAGE_CROP].astype(np.int64)
        out[name] = crop - 128
    return out


def image_error(domain, seed=0):
    """Relative RMS error of the domain's 3 × 3 layer against the exact direct convolution,
    over the sample images (pooled)."""
    from .reference import conv2d_int
    from .wa import winograd_layer
    rng = np.random.default_rng(seed)
    num = den = 0.0
    for x in _images().values():
        w = rng.integers(-127, 128, (IMAGE_FILTERS, x.shape[0], 3, 3))
        exact = conv2d_int(x[None], w, 1, 1).astype(np.float64)
        y = winograd_layer(x[None].astype(np.float64), w.astype(np.float64), 1, domain)
        num += float(np.sum((y - exact) ** 2))
        den += float(np.sum(exact ** 2))
    return math.sqrt(num / den)


def _hardware(tc, base):
    """The integer transforms of ``tc`` in ``base`` (two stages multiplied out)."""
    if base == "monomial":
        return tc.hardware()
    from ..gen.basechange import change_base
    from ..gen.toomcook import HardwareTransforms
    return HardwareTransforms(*change_base(tc, base).effective())


def _domain(tc, width, scales, base="monomial", statistics=None):
    """The domain of a row; ``scales`` ``"calibrated"`` takes tap-wise shifts from
    ``statistics(hardware)`` (:func:`winogen.nets.wa.calibrated_shifts`, 99.9th
    percentile)."""
    from .wa import QuantizedDomain, calibrated_shifts
    if width is None:
        # Exact in any base: the correlation. (The monomial form keeps every value
        # exact in float64; a changed base's products can pass 2^53.)
        return QuantizedDomain(tc.hardware())
    hw = _hardware(tc, base)
    if scales == "calibrated":
        return QuantizedDomain(hw, *calibrated_shifts(*statistics(hw), width), width)
    from ..gen.winoquant import winograd_shifts
    return QuantizedDomain(hw, *winograd_shifts(hw, 8, 8, width, scales), width)


def _multiplier(tc, width, base="monomial"):
    if width is not None:
        return f"{width}x{width}"
    from ..gen.bounds import signed_range, transform_intervals
    hw = _hardware(tc, base)
    widths = [max(iv.width for iv in transform_intervals(M, signed_range(8), dims=2))
              for M in (hw.BT, hw.G)]
    return f"{widths[0]}x{widths[1]}"


def study_rows(ms=(2, 4, 6), presets=("lavin", "barabasz"), widths=STUDY_WIDTHS,
               scales=("global", "tapwise"), trainings=("post",), bases=("monomial",), *,
               epochs=8, lr=1e-3, flex_bits=4, seed=0, progress=None):
    """The study's rows (dicts), one per (algorithm, points, base, W, scales, training).

    The exact domain (``W`` None) has one row per algorithm and training ``post`` (scales
    do not apply to it, and training on it is ordinary quantization-aware training).
    Flex rows start from the monomial base's matrices (learned transforms have no base).
    """
    from ..gen.toomcook import ToomCook
    from .digits import load_digits_int8, split
    from .train import load_weights
    from .wa import (CALIBRATION_IMAGES, FlexTransforms, _accuracy, engine_layers_of,
                     train_wa, winograd_statistics)
    floats, ints = load_weights()
    x, y = load_digits_int8()
    x_train, y_train, x_test, y_test = split(x, y)
    layers, fc_shape = engine_layers_of(floats, ints)
    cache = {}

    def statistics(hw):
        key = (hw.AT, hw.G, hw.BT)
        if key not in cache:
            cache[key] = winograd_statistics(hw, floats, layers, fc_shape,
                                             x_train[:CALIBRATION_IMAGES])
        return cache[key]
    rows = []
    for m in ms:
        for preset in presets:
            tc = ToomCook(m, 3, preset=preset)
            for base, width, scale, training in (
                    (b, w, sc, t) for b in bases for w in widths
                    for sc in (scales if w is not None else ("-",))
                    for t in (trainings if w is not None else ("post",))
                    if not (t == "flex" and b != "monomial")):
                start = time.monotonic()
                domain = _domain(tc, width, scale, base, statistics)
                params = floats
                row = {"algorithm": f"F({m},3)", "m": m, "preset": preset,
                       "points": tc.points_text, "base": base, "width": width,
                       "scales": scale, "training": training,
                       "multiplier": _multiplier(tc, width, base)}
                if training != "post":
                    # Calibrated flex rows start from the calibrated shifts, which then
                    # follow the learned matrices (FlexTransforms.shifts).
                    given = ((domain.v_shifts_given, domain.u_shifts_given)
                             if scale == "calibrated" else scale)
                    used = FlexTransforms(tc, flex_bits, width, given) \
                        if training == "flex" else domain
                    params = train_wa(floats, x_train, y_train, layers, fc_shape,
                                      used, epochs=epochs, lr=lr, seed=seed)
                    domain = used
                row["image_error"] = (image_error(domain, seed) if training == "post"
                                      else None)
                row["top1"] = _accuracy(params, x_test, y_test, layers, fc_shape, domain)
                row["seconds"] = round(time.monotonic() - start, 1)
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def direct_top1():
    """Top-1 of the int8 network with exact convolutions (the rows' baseline)."""
    from .digits import load_digits_int8, split
    from .reference import forward_int
    from .train import load_weights
    _, ints = load_weights()
    x, y = load_digits_int8()
    _, _, x_test, y_test = split(x, y)
    return float(np.mean(np.argmax(forward_int(ints, x_test), axis=1) == y_test))


def format_rows(rows, baseline):
    """A Markdown table; ``baseline``: the int8 direct network's top-1."""
    lines = [f"int8 direct convolution: top-1 {100 * baseline:.2f} %", "",
             "| algorithm | points | base | W | scales | training | multiplier | image error | "
             "top-1 | vs direct |",
             "| --- | --- | --- | ---: | --- | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        err = "—" if r["image_error"] is None else f"{r['image_error']:.2e}"
        lines.append(f"| {r['algorithm']} | {r['preset']} | {r['base']} | {r['width'] or 'exact'} | "
                     f"{r['scales']} | {r['training']} | {r['multiplier']} | {err} | "
                     f"{100 * r['top1']:.2f} | {100 * (r['top1'] - baseline):+.2f} |")
    return "\n".join(lines)


def plot_rows(rows, baseline, path):
    """PNG: top-1 against W, one panel per algorithm, a line per (points, scales, training)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    algorithms = sorted({r["algorithm"] for r in rows})
    fig, axes = plt.subplots(1, len(algorithms), figsize=(5 * len(algorithms), 4),
                             squeeze=False, sharey=True)
    for ax, algorithm in zip(axes[0], algorithms):
        series = {}
        for r in rows:
            if r["algorithm"] == algorithm and r["width"] is not None:
                series.setdefault((r["preset"], r["base"], r["scales"], r["training"]),
                                  []).append(r)
        # Colour per (points, scales), line per base, marker per training: no two
        # series look alike however many there are.
        keys = sorted({(k[0], k[2]) for k in series})
        colours = {k: plt.cm.tab10(i % 10) for i, k in enumerate(keys)}
        for (preset, base, scale, training), rs in sorted(series.items()):
            rs = sorted(rs, key=lambda r: r["width"])
            ax.plot([r["width"] for r in rs], [100 * r["top1"] for r in rs],
                    color=colours[(preset, scale)],
                    linestyle="-" if base == "monomial" else "--",
                    marker={"post": "o", "wa": "s", "flex": "^"}[training],
                    label=f"{preset}, {base}, {scale}, {training}")
        ax.set_xticks(sorted({r["width"] for r in rows if r["width"] is not None}))
        ax.axhline(100 * baseline, color="black", linestyle="--", label="int8 direct")
        ax.set_title(algorithm)
        ax.set_xlabel("Winograd-domain width W (bits)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("top-1 (%)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
