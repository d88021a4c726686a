"""Sparse Winograd: pruning the reference network's Winograd-domain weights.

Two methods, each ending with the network's layers as Winograd-domain weights ``U`` (per
engine-form kernel — DWM pieces included — ``C_out × C_in' × n × n``) with a mask of
zeros, deployed on the quantized Winograd domain (:class:`~winogen.nets.wa.QuantizedDomain`,
``W`` bits, tap-wise shifts calibrated on the dense network) where a zero ``U`` is a zero
``Û`` the engine can skip:

* ``native`` (Li et al., "Enabling Sparse Winograd Convolution by Native Pruning"):
  ``U = G' w G'ᵀ`` of the trained int8 weights, the smallest ``|U|`` set to zero (ranked
  over the whole network, each layer's magnitudes relative to its RMS:
  :func:`global_masks`), then retraining of ``U`` itself in the Winograd domain (masked)
  at a low rate; gradually, each sparsity starting from the previous one's network;
* ``spatial`` (Yu et al., "Spatial-Winograd Pruning Enabling Sparse Winograd
  Convolution"), two steps:

  1. structured spatial pruning: a Winograd position ``(i, j)`` of a kernel is zero for
     every kernel that is zero on ``supp(G'_i) × supp(G'_j)``, so the spatial weights are
     zeroed in such supports (greedily, least weight energy per Winograd zero gained,
     until ``spatial_share`` of the target sparsity is reached), then retrained in the
     spatial domain (no Winograd-domain retraining for this part);
  2. Winograd-domain pruning to the target (:func:`global_masks`), ranked by
     ``|U_ij| · F_ij`` with the importance
     factor matrix ``F_ij = ‖A'ᵀ[:, i]‖ ‖A'ᵀ[:, j]‖ ‖B'ᵀ[i]‖ ‖B'ᵀ[j]‖`` (the RMS contribution
     of ``U_ij`` to the layer's output for independent, equal-variance inputs), then
     retraining in the Winograd domain. The paper also scales the weights' gradients by
     the importance factors (for SGD); with Adam, whose steps are normalized per
     parameter, that scaling has no effect, so it is not done.

Training uses the engine's arithmetic in the forward pass (straight-through roundings,
as :mod:`winogen.nets.wa`): what is evaluated is what the quantized engine computes with
the pruned ``Û`` (:func:`forward_u` with unpruned ``U`` equals
:func:`winogen.nets.wa.forward_engine`, ``tests/test_prune.py``).

``python -m winogen.nets.prune`` runs the study (top-1 against sparsity, and the
output error of a pruned layer on scikit-image's sample images).
"""

import heapq
import math

import numpy as np

__all__ = ["METHODS", "NATIVE_SCORES", "native_scores", "global_masks", "importance_factors", "winograd_weights", "forward_u", "prune_native",
           "spatial_structured_masks", "prune_spatial_winograd", "sparsity", "deployed_u",
           "engine_network", "engine_tile", "image_layer_error"]

METHODS = ("native", "spatial")


def _supports(G):
    """Per row ``i`` of ``G'``, the spatial taps it reads (nonzero columns)."""
    return [frozenset(np.flatnonzero(np.asarray(row, dtype=np.float64))) for row in G]


def importance_factors(domain):
    """``F`` (n × n): the RMS contribution of a unit ``U_ij`` to the output for
    independent unit-variance inputs, ``‖A'ᵀ[:, i]‖ ‖A'ᵀ[:, j]‖ ‖B'ᵀ[i]‖ ‖B'ᵀ[j]‖``."""
    a = np.linalg.norm(domain.AT, axis=0)
    b = np.linalg.norm(domain.BT, axis=1)
    return np.outer(a * b, a * b)


def _engine_kernels(layer, w, r):
    """Engine-form kernels (C_out, C_in', r, r) of ``w`` (C_out, C_in, k, k), and the index
    map: entry ``[o, c, a, b]`` is 1 + the flat index of the original weight, 0 for the
    zero padding of small DWM pieces."""
    from .wa import engine_kernels
    idx = np.arange(1, w.size + 1, dtype=np.float64).reshape(w.shape)
    return engine_kernels(layer, w, r), engine_kernels(layer, idx, r).astype(np.int64)


def winograd_weights(int8, layers, domain):
    """``U = G' w G'ᵀ`` (float, in the engine's integer units) of every layer's engine-form
    int8 kernels (engine form: ``fc`` as its convolution): dict name → (C_out, C_in', n, n)."""
    from .wa import engine_kernels
    return {layer["name"]: np.einsum("ia,ocab,jb->ocij", domain.G,
                                     engine_kernels(layer, np.asarray(int8[layer["name"]],
                                                                      dtype=np.float64),
                                                    domain.r),
                                     domain.G)
            for layer in layers}


def forward_u(U, x, layers, fc_shape, domain, kernel_sizes, anp=np):
    """Logits (real units) and int8 logits of the network whose layers are the
    Winograd-domain weights ``U`` (dict name → (C_out, C_in', n, n), engine form) on the
    quantized ``domain``; ``kernel_sizes`` maps a layer to its ``k`` (for the DWM split of
    its input)."""
    from .digits import INPUT_SHIFT
    from .wa import engine_activations, requantize_float, winograd_layer_u
    a = x.astype(np.float64) if anp is np else x
    sx = INPUT_SHIFT
    for layer in layers:
        xe, pad = engine_activations(layer, a, kernel_sizes[layer["name"]], domain.r, anp)
        y = winograd_layer_u(xe, U[layer["name"]], pad, domain, anp)
        if layer["name"] == "fc":
            logits = anp.reshape(y, (y.shape[0], -1)) * 2.0 ** -(sx + layer["sw"])
        a = requantize_float(y, layer["shift"], layer["relu"], anp)
        sx = sx + layer["sw"] - layer["shift"]
    return logits, anp.reshape(a, (a.shape[0], -1))


def sparsity(masks):
    """Fraction of zero Winograd-domain weights over all layers."""
    total = sum(m.size for m in masks.values())
    return 1.0 - sum(float(np.count_nonzero(m)) for m in masks.values()) / total


def _magnitude_mask(score, target, keep=None):
    """Mask keeping the largest ``score`` entries so that ``target`` of all are zero;
    entries already zero in ``keep`` stay zero."""
    score = np.where(keep if keep is not None else True, score, -np.inf)
    zeros = int(round(target * score.size))
    mask = np.ones(score.shape, dtype=bool)
    if zeros:
        order = np.argsort(score, axis=None, kind="stable")[:zeros]
        mask.flat[order] = False
    if keep is not None:
        mask &= keep
    return mask


def global_masks(scores, target, keep=None):
    """Masks over all layers together: ``target`` of all entries zero, the smallest scores
    first, each layer's scores divided by their RMS (over the entries still allowed) so
    that layers compete on relative size — the large, redundant layers are pruned more
    than the small ones (the first layer has 8 × n² weights); entries outside ``keep``
    stay zero."""
    names = list(scores)
    keep = keep or {k: np.ones(v.shape, dtype=bool) for k, v in scores.items()}
    flat = []
    for k in names:
        allowed = scores[k][keep[k]]
        rms = float(np.sqrt(np.mean(allowed ** 2))) if allowed.size else 1.0
        flat.append(np.where(keep[k], scores[k] / (rms or 1.0), -np.inf).ravel())
    mask = _magnitude_mask(np.concatenate(flat), target)
    out, at = {}, 0
    for k in names:
        size = scores[k].size
        out[k] = mask[at:at + size].reshape(scores[k].shape) & keep[k]
        at += size
    return out


def _train_u(U0, masks, x, y, layers, fc_shape, domain, kernel_sizes, *, epochs, lr, seed,
             progress=None):
    """Retrain Winograd-domain weights under ``masks`` (Adam on ``U / max|U0|`` per layer)."""
    import autograd.numpy as anp
    from autograd import grad
    from autograd.scipy.special import logsumexp
    from .train import adam
    scale = {k: float(np.abs(v).max()) or 1.0 for k, v in U0.items()}

    def loss(p, xb, yb):
        U = {k: p[k] * (scale[k] * masks[k]) for k in p}
        logits, _ = forward_u(U, xb, layers, fc_shape, domain, kernel_sizes, anp)
        return anp.mean(logsumexp(logits, axis=1) - logits[anp.arange(len(yb)), yb])

    params = {k: U0[k] / scale[k] for k in U0}
    if epochs:
        params = adam(params, grad(loss), loss, np.asarray(x, dtype=np.float64), y,
                      epochs=epochs, lr=lr, batch=64, rng=np.random.default_rng(seed),
                      progress=progress)
    return {k: params[k] * scale[k] * masks[k] for k in params}


NATIVE_SCORES = ("magnitude", "importance")


def native_scores(U, domain, score):
    """Pruning scores of native pruning: ``|U|`` or ``|U| · F``."""
    if score not in NATIVE_SCORES:
        raise ValueError(f"score must be one of {', '.join(NATIVE_SCORES)}, not {score!r}")
    F = importance_factors(domain) if score == "importance" else 1.0
    return {k: np.abs(v) * F for k, v in U.items()}


def prune_native(U0, target, x, y, layers, fc_shape, domain, kernel_sizes, *, epochs, lr=3e-4,
                 score="magnitude", seed=0, progress=None):
    """Magnitude-prune the network's ``U`` to ``target`` (:func:`global_masks`; entries
    already zero in ``U0`` count) and retrain it in the Winograd domain; returns
    ``(U, masks)``. Called with increasing targets on its own output, it prunes
    gradually. ``score`` ``"magnitude"`` ranks by ``|U|`` (Li et al.), ``"importance"`` by
    ``|U| · F`` (:func:`importance_factors`)."""
    masks = global_masks(native_scores(U0, domain, score), target)
    return _train_u(U0, masks, x, y, layers, fc_shape, domain, kernel_sizes, epochs=epochs, lr=lr,
                    seed=seed, progress=progress), masks


def spatial_structured_masks(kernels, index, G, target):
    """Step 1 of spatial-Winograd pruning for one layer.

    Parameters
    ----------
    kernels : array (C_out, C_in', r, r)
        Engine-form spatial weights.
    index : array like ``kernels``
        1 + flat index of each entry's original weight (0: DWM padding, always zero).
    G : array (n, r)
    target : float
        Fraction of the layer's Winograd positions to force to zero.

    Returns
    -------
    (spatial_zero, winograd_zero)
        Flat indices of the original weights to zero, and the forced-zero mask
        (C_out, C_in', n, n) of the Winograd positions.
    """
    sup = _supports(G)
    n, r = len(sup), kernels.shape[-1]
    cells = {(i, j): frozenset(a * r + b for a in sup[i] for b in sup[j])
             for i in range(n) for j in range(n)}
    flat_k = kernels.reshape(-1, r * r)
    flat_i = index.reshape(-1, r * r)
    energy = flat_k ** 2
    zero = [set(np.flatnonzero(flat_i[q] == 0)) for q in range(len(flat_k))]
    forced = np.zeros((len(flat_k), n, n), dtype=bool)

    def refresh(q):
        for (i, j), cell in cells.items():
            forced[q, i, j] = cell <= zero[q]

    def best(q):
        """(cost per new zero, cell) of the cheapest support to zero in kernel ``q``."""
        choice = None
        for cell in set(cells.values()):
            missing = cell - zero[q]
            if not missing:
                continue
            gain = sum(1 for c in cells.values() if c <= zero[q] | cell) - int(forced[q].sum())
            cost = float(sum(energy[q, t] for t in missing)) / gain
            if choice is None or cost < choice[0]:
                choice = (cost, cell)
        return choice

    for q in range(len(flat_k)):
        refresh(q)
    goal = int(math.ceil(target * forced.size))
    heap = [(c[0], q, c[1]) for q in range(len(flat_k)) if (c := best(q))]
    heapq.heapify(heap)
    while forced.sum() < goal and heap:
        cost, q, cell = heapq.heappop(heap)
        current = best(q)
        if current is None:
            continue
        if current[0] > cost + 1e-12 or current[1] != cell:
            heapq.heappush(heap, (current[0], q, current[1]))
            continue
        zero[q] |= cell
        refresh(q)
        nxt = best(q)
        if nxt:
            heapq.heappush(heap, (nxt[0], q, nxt[1]))
    spatial = sorted({int(flat_i[q, t]) - 1 for q in range(len(flat_k)) for t in zero[q]
                      if flat_i[q, t] > 0})
    return spatial, forced.reshape(*kernels.shape[:2], n, n)


def _train_spatial(floats, masks, x, y, layers, fc_shape, domain, *, epochs, lr, seed,
                   progress=None):
    """Retrain float spatial weights under spatial ``masks`` with the engine's arithmetic
    (int8 weights, Winograd domain) in the forward pass."""
    import autograd.numpy as anp
    from autograd import grad
    from autograd.scipy.special import logsumexp
    from .train import adam
    from .wa import forward_engine

    def loss(p, xb, yb):
        logits, _ = forward_engine({k: p[k] * masks[k] for k in p}, xb, layers, fc_shape,
                                   domain, anp)
        return anp.mean(logsumexp(logits, axis=1) - logits[anp.arange(len(yb)), yb])

    params = {k: np.array(v, dtype=np.float64) for k, v in floats.items()}
    if epochs:
        params = adam(params, grad(loss), loss, np.asarray(x, dtype=np.float64), y,
                      epochs=epochs, lr=lr, batch=64, rng=np.random.default_rng(seed),
                      progress=progress)
    return {k: params[k] * masks[k] for k in params}


def prune_spatial_winograd(floats, target, x, y, layers, fc_shape, domain, kernel_sizes, *,
                           spatial_share=0.5, spatial_epochs, epochs, lr=1e-3, seed=0,
                           progress=None):
    """Spatial-Winograd pruning to ``target``; returns ``(U, masks, spatial_sparsity)``
    where ``spatial_sparsity`` is the Winograd-domain sparsity step 1 reached."""
    from .wa import _conv_weight, int8_weights
    spatial_masks, forced = {}, {}
    for layer in layers:
        name = layer["name"]
        w = _conv_weight(name, np.asarray(floats[name]), fc_shape, np)
        we, wi = _engine_kernels(layer, w, domain.r)
        zero, forced[name] = spatial_structured_masks(we, wi, domain.G,
                                                      spatial_share * target)
        mask = np.ones(w.size)
        mask[zero] = 0.0
        mask = mask.reshape(w.shape)
        if name == "fc":          # back to the dense layer's (C·H·W, classes) layout
            mask = mask.reshape(mask.shape[0], -1).T
        spatial_masks[name] = mask
    step1 = 1.0 - sum(float((~f).sum()) for f in forced.values()) / \
        sum(f.size for f in forced.values())
    trained = _train_spatial(floats, spatial_masks, x, y, layers, fc_shape, domain,
                             epochs=spatial_epochs, lr=lr, seed=seed, progress=progress)
    U0 = winograd_weights(int8_weights(trained, layers, fc_shape), layers, domain)
    F = importance_factors(domain)
    masks = global_masks({k: np.abs(v) * F for k, v in U0.items()}, target,
                         keep={k: ~f for k, f in forced.items()})
    U = _train_u(U0, masks, x, y, layers, fc_shape, domain, kernel_sizes, epochs=epochs,
                 lr=lr / 3, seed=seed + 1, progress=progress)
    return U, masks, step1


def deployed_u(U, domain):
    """The engine's ``Û`` (int64) of float Winograd-domain weights on a quantized domain:
    ``U / D²`` rounded half up by ``sU`` and clamped to each position's ``Û`` range
    (``domain.u_lo``/``u_hi``: what the engine's weight lanes hold)."""
    return {k: np.clip(np.floor(v * domain.u_scale + 0.5), domain.u_lo,
                       domain.u_hi).astype(np.int64)
            for k, v in U.items()}


def engine_network(deployed, layers, int8):
    """The pruned network as :mod:`winogen.sim.network` layers of Winograd-domain weights
    (``u`` = the deployed ``Û``, engine form) for a quantized offline layer engine."""
    out = []
    for layer in layers:
        w = int8[layer["name"]]
        out.append(dict(name=layer["name"], u=deployed[layer["name"]], k=int(w.shape[2]),
                        cin=int(w.shape[1]), cout=int(w.shape[0]), stride=layer["stride"],
                        padding=layer["padding"], shift=layer["shift"], relu=layer["relu"]))
    return out


def engine_tile(m, preset, domain):
    """The quantized tile configuration whose engine computes ``domain`` (its width and
    given shifts, offline filter transform: the weight stream carries ``Û``)."""
    from ..gen.config import TileConfig
    return TileConfig(m, 3, 8, 8, preset=preset, wino_width=domain.width,
                      wino_scales=(tuple(domain.v_shifts_given), tuple(domain.u_shifts_given)),
                      filter_transform="offline")


def image_layer_error(U_dense, U_pruned, layers, domain):
    """Relative RMS error of the pruned ``c2`` layer against the dense one, both on the
    quantized domain, on scikit-image's ``camera`` image (centre crop, pixel − 128)
    through the dense network's ``c1``."""
    from .quantstudy import _images
    from .wa import engine_activations, requantize_float, winograd_layer_u
    img = _images()["camera"][None].astype(np.float64)         # (1, 1, H, W)
    c1, c2 = layers[0], layers[1]
    xe, pad = engine_activations(c1, img, 3, domain.r)
    a = requantize_float(winograd_layer_u(xe, U_dense["c1"], pad, domain), c1["shift"], True)
    xe, pad = engine_activations(c2, a, 5, domain.r)
    ref = winograd_layer_u(xe, U_dense["c2"], pad, domain)
    y = winograd_layer_u(xe, U_pruned["c2"], pad, domain)
    return float(np.sqrt(np.sum((y - ref) ** 2) / np.sum(ref ** 2)))


def _plot(rows, dense, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    from itertools import cycle
    for (alg, method), style in zip(sorted({(r["algorithm"], r["method"]) for r in rows}),
                                    cycle(("o-", "s--", "^-", "v--", "D-.", "x:"))):
        pts = sorted((r["sparsity"], r["top1"]) for r in rows
                     if (r["algorithm"], r["method"]) == (alg, method))
        ax.plot([100 * p[0] for p in pts], [100 * p[1] for p in pts], style,
                label=f"{alg} {method}")
    for alg, top1 in dense.items():
        ax.axhline(100 * top1, color="grey", lw=0.6)
    ax.set_xlabel("Winograd-domain sparsity (%)")
    ax.set_ylabel("top-1 on the 359 test digits (%)")
    ax.set_title("Pruned reference network on the quantized Winograd engine")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    """``python -m winogen.nets.prune``: the sparse-Winograd study."""
    import argparse
    import json
    import sys
    import time
    from pathlib import Path
    from ..gen.points import PRESETS
    from ..gen.toomcook import ToomCook
    from ..gen.winoquant import MIN_WINO_WIDTH
    from .digits import load_digits_int8, split
    from .netfile import load_network, save_winograd_network
    from .train import NETWORK, load_weights
    from .wa import (CALIBRATION_IMAGES, QuantizedDomain, calibrated_shifts, engine_layers_of,
                     int8_weights, winograd_statistics)

    p = argparse.ArgumentParser(
        prog="python -m winogen.nets.prune",
        description="Prune the reference network's Winograd-domain weights (native and "
                    "spatial-Winograd pruning), retrain with the quantized engine's "
                    "arithmetic in the forward pass, and report top-1 and a layer's output "
                    "error on a real image against Winograd-domain sparsity.")
    p.add_argument("--m", default="2,4",
                   help="comma-separated output tile sizes of F(m, 3) (default: 2,4)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="lavin",
                   help="interpolation points (default: lavin)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated methods, of {', '.join(METHODS)} (default: both)")
    p.add_argument("--sparsities", default="0.5,0.75,0.9",
                   help="comma-separated Winograd-domain sparsities in (0, 1) "
                        "(default: 0.5,0.75,0.9)")
    p.add_argument("--wino-width", type=int, default=10, metavar="W",
                   help="width of the deployed Winograd domain (tap-wise shifts calibrated "
                        "on the dense network; default: 10)")
    p.add_argument("--native-score", choices=NATIVE_SCORES, default="magnitude",
                   help="native pruning's ranking: |U| (magnitude, Li et al.; default) or "
                        "|U| times the importance factors (importance)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate of the Winograd-domain retraining (default: "
                        "3e-4 native, 1e-3 spatial, whose Winograd step uses a third)")
    p.add_argument("--epochs", type=int, default=5,
                   help="Winograd-domain retraining epochs per run (default: 5)")
    p.add_argument("--spatial-epochs", type=int, default=2,
                   help="spatial retraining epochs of spatial-Winograd step 1 (default: 2)")
    p.add_argument("--spatial-share", type=float, default=0.5,
                   help="fraction of the target sparsity step 1 reaches by structured "
                        "spatial pruning (default: 0.5)")
    p.add_argument("--train-images", type=int, default=None,
                   help="retrain on the first N training images only (quick checks)")
    p.add_argument("--seed", type=int, default=0, help="shuffling seed (default: 0)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="folder for prune_report.json, prune_top1.png and the deployed "
                        "pruned networks (pruned_F<m>_<method>_<sparsity>.json + .npz: "
                        "network files with a winograd section, for winogen run-net)")
    args = p.parse_args(argv)

    def ints(flag, text, lo):
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            p.error(f"{flag} must be comma-separated integers, not {text!r}")
        if any(v < lo for v in values):
            p.error(f"{flag} values must be at least {lo}, not {text!r}")
        return values

    ms = ints("--m", args.m, 1)
    methods = args.methods.split(",")
    for method in methods:
        if method not in METHODS:
            p.error(f"--methods must name {', '.join(METHODS)}, not {method!r}")
    try:
        targets = sorted(float(v) for v in args.sparsities.split(","))
    except ValueError:
        p.error(f"--sparsities must be comma-separated numbers, not {args.sparsities!r}")
    if any(not 0 < t < 1 for t in targets):
        p.error(f"--sparsities must lie in (0, 1), not {args.sparsities!r}")
    if args.wino_width < MIN_WINO_WIDTH:
        p.error(f"--wino-width must be at least {MIN_WINO_WIDTH}, not {args.wino_width}")
    for flag, value in (("--epochs", args.epochs), ("--spatial-epochs", args.spatial_epochs)):
        if value < 0:
            p.error(f"{flag} must be a non-negative integer, not {value}")
    if not 0 <= args.spatial_share <= 1:
        p.error(f"--spatial-share must lie in [0, 1], not {args.spatial_share}")
    if "spatial" not in methods and (args.spatial_share != 0.5 or args.spatial_epochs != 2):
        p.error("--spatial-share and --spatial-epochs apply to --methods spatial only")
    if "native" not in methods and args.native_score != "magnitude":
        p.error("--native-score applies to --methods native only")
    if args.lr is not None and not args.lr > 0:
        p.error(f"--lr must be positive, not {args.lr}")
    if args.train_images is not None and args.train_images < 1:
        p.error(f"--train-images must be at least 1, not {args.train_images}")

    floats, qints = load_weights()
    base_network = load_network(NETWORK)
    x, y = load_digits_int8()
    x_train, y_train, x_test, y_test = split(x, y)
    if args.train_images is not None:
        x_train, y_train = x_train[:args.train_images], y_train[:args.train_images]
    layers, fc_shape = engine_layers_of(floats, qints)
    int8 = int8_weights(floats, layers, fc_shape)
    kernel_sizes = {k: v.shape[2] for k, v in int8.items()}
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    rows, dense = [], {}
    start = time.monotonic()

    def say(text):
        print(f"[{time.monotonic() - start:6.0f} s] {text}", file=sys.stderr, flush=True)

    def progress(epoch, epochs, loss):
        say(f"  epoch {epoch}/{epochs}: loss {loss:.4f}")

    def top1(U, domain):
        _, logits = forward_u(U, x_test, layers, fc_shape, domain, kernel_sizes)
        return float(np.mean(np.argmax(logits, axis=1) == y_test))

    for m in ms:
        alg = f"F({m},3)"
        hw = ToomCook(m, 3, preset=args.preset).hardware()
        shifts = calibrated_shifts(*winograd_statistics(hw, floats, layers, fc_shape,
                                                        x_train[:CALIBRATION_IMAGES]),
                                   args.wino_width)
        domain = QuantizedDomain(hw, *shifts, args.wino_width)
        U_dense = winograd_weights(int8, layers, domain)
        dense[alg] = top1(U_dense, domain)
        say(f"{alg} W = {args.wino_width} dense: top-1 {100 * dense[alg]:.2f} %")
        for method in methods:
            for target in targets:
                t0 = time.monotonic()
                say(f"{alg} {method} {target:.0%} ...")
                row = dict(algorithm=alg, method=method, target=target)
                if method == "native":
                    # Gradual: each target starts from the previous target's network.
                    start_u = native_u if target > targets[0] else U_dense
                    masks0 = global_masks(native_scores(start_u, domain, args.native_score),
                                          target)
                    row["top1_before_retraining"] = top1(
                        {k: v * masks0[k] for k, v in start_u.items()}, domain)
                    U, masks = prune_native(start_u, target, x_train, y_train, layers,
                                            fc_shape, domain, kernel_sizes, epochs=args.epochs,
                                            lr=args.lr or 3e-4, score=args.native_score,
                                            seed=args.seed, progress=progress)
                    native_u = U
                else:
                    U, masks, step1 = prune_spatial_winograd(
                        floats, target, x_train, y_train, layers, fc_shape, domain,
                        kernel_sizes, spatial_share=args.spatial_share,
                        spatial_epochs=args.spatial_epochs, epochs=args.epochs,
                        lr=args.lr or 1e-3, seed=args.seed, progress=progress)
                    row["spatial_step_sparsity"] = step1
                deployed = deployed_u(U, domain)
                row.update(sparsity=1.0 - sum(int(np.count_nonzero(v)) for v in deployed.values())
                           / sum(v.size for v in deployed.values()),
                           layer_sparsity={k: 1.0 - np.count_nonzero(v) / v.size
                                           for k, v in deployed.items()},
                           top1=top1(U, domain),
                           image_error_c2=image_layer_error(U_dense, U, layers, domain),
                           seconds=round(time.monotonic() - t0, 1))
                row["delta_vs_dense"] = row["top1"] - dense[alg]
                rows.append(row)
                say(f"  top-1 {100 * row['top1']:.2f} % at {100 * row['sparsity']:.1f} % "
                    f"sparsity (c2 image error {row['image_error_c2']:.4f})")
                # A network file (winogen-network-1 with a winograd section): `winogen
                # run-net --network` classifies with it on the sparse engines.
                name = f"pruned_F{m}_{method}_{int(round(100 * target))}.json"
                save_winograd_network(out / name, base_network, deployed, dict(
                    m=m, preset=args.preset, wino_width=args.wino_width,
                    v_shifts=list(shifts[0]), u_shifts=list(shifts[1])))
    report = dict(preset=args.preset, wino_width=args.wino_width, epochs=args.epochs,
                  native_score=args.native_score, lr=args.lr,
                  spatial_epochs=args.spatial_epochs, spatial_share=args.spatial_share,
                  seed=args.seed, test_images=len(y_test), train_images=len(y_train),
                  dense=dense, rows=rows)
    (out / "prune_report.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(rows, dense, out / "prune_top1.png")
    print(f"| F | method | target | sparsity | top-1 (%) | vs dense | c2 image error | s |")
    print(f"|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['algorithm']} | {r['method']} | {r['target']:.0%} | "
              f"{100 * r['sparsity']:.1f} | {100 * r['top1']:.2f} | "
              f"{100 * r['delta_vs_dense']:+.2f} | {r['image_error_c2']:.4f} | {r['seconds']} |")
    for name in ("prune_report.json", "prune_top1.png"):
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
