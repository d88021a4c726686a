"""Whole networks through one layer engine under Verilator, layer by layer.

A network is a list of layers (dicts: ``name``, ``w`` (C_out, C_in, k, k), ``stride``,
``padding``, ``shift``, ``relu``), as :func:`winogen.nets.netfile.load_network` gives.
A layer may instead carry Winograd-domain weights, ``u`` (C_out, C_in', n, n: the ``Û``
the weight stream of a quantized offline engine carries, in engine form — DWM pieces
stacked as input channels) with its ``k``, ``cin`` and ``cout`` (pruned networks,
:mod:`winogen.nets.prune`); its activations are decomposed the same way.
Each layer runs for every image back to back in one simulation per chunk of images
(:func:`run_layer_batch`); a layer of another kernel size or a stride of 2 runs by the
Decomposable Winograd Method (:func:`winogen.gen.dwm.dwm_layer`: its pieces stacked as
input channels, summed by the engine). Every layer's outputs are compared with the
engine's golden model before they feed the next layer: the integer reference
(correlation, then the engine's requantization) for an engine that computes the
convolution exactly, and :func:`~winogen.gen.layer.layer_golden` on the engine's own
inputs for one that does not (a quantized Winograd domain, approximate given transforms):
:func:`engine_golden_layer`.
"""

import json
import math

import numpy as np

from ..gen.dwm import dwm_layer
from ..gen.layer import LayerConfig, LayerRun
from ..nets.netfile import layer_forward_int
from ..gen.config import TileConfig

__all__ = ["network_requirements", "network_engine_config", "specialized_network_configs", "run_layer_batch", "run_network",
           "computes_the_convolution", "engine_golden_layer", "engine_golden_network"]


def _kernel(layer):
    return layer["k"] if "u" in layer else layer["w"].shape[2]


def _direct(layer, engine_r):
    """Whether the layer runs as it is (no decomposition) on an ``engine_r`` engine."""
    return (_kernel(layer) == engine_r and layer["stride"] == 1
            and layer["padding"] in (0, engine_r // 2))


def _engine_input(layer, x, engine_r):
    """``(x, w, padding)`` the engine runs for ``layer`` on one image ``x`` (C, H, W)
    (``w`` is ``Û`` for a layer of Winograd-domain weights)."""
    w = layer.get("u", layer.get("w"))
    if _direct(layer, engine_r):
        return x, w, layer["padding"]
    if "u" in layer:                    # the activations' pieces only
        k = layer["k"]
        xs, _, _ = dwm_layer(x, np.zeros((1, x.shape[0], k, k), dtype=np.int64),
                             stride=layer["stride"], padding=layer["padding"],
                             engine_r=engine_r)
        return xs, w, 0
    xs, ws, _ = dwm_layer(x, w, stride=layer["stride"], padding=layer["padding"],
                          engine_r=engine_r)
    return xs, ws, 0


def _output_shape(layer, shape):
    """(C_out, H_out, W_out) of ``layer`` on an input of ``shape`` (C, H, W)."""
    k, s, p = _kernel(layer), layer["stride"], layer["padding"]
    cout = layer["cout"] if "u" in layer else layer["w"].shape[0]
    return cout, (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1


def computes_the_convolution(config):
    """Whether the engine's layer output is the exact correlation (then requantized)."""
    t = config.tile
    return t.toomcook.exact and not getattr(t, "quantization", None)


def engine_golden_layer(config, layer, a):
    """What the engine of ``config`` gives for ``layer`` on images ``a`` (N, C, H, W):
    :func:`~winogen.nets.netfile.layer_forward_int` when it computes the convolution,
    else :func:`~winogen.gen.layer.layer_golden` on each image's engine inputs."""
    if computes_the_convolution(config) and "u" not in layer:
        return layer_forward_int(layer, a)
    from ..gen.layer import layer_golden
    outs = []
    for x in a:
        xe, we, pad = _engine_input(layer, x, config.r)
        run = LayerRun(xe.shape[1], xe.shape[2], xe.shape[0], we.shape[0], pad,
                       layer["shift"], layer["relu"])
        outs.append(layer_golden(config, run, xe, we, winograd_weights="u" in layer))
    return np.stack(outs)


def engine_golden_network(config, layers, images):
    """The last layer's outputs of the engine's golden model, layer after layer."""
    a = np.asarray(images, dtype=np.int64)
    for layer in layers:
        a = engine_golden_layer(config, layer, a)
    return a


def network_requirements(layers, input_shape, engine_r):
    """The engine maxima a network needs: ``max_cin``, ``max_cout``, ``max_height``,
    ``max_width`` (after stacking the decomposed layers' pieces)."""
    shape = tuple(input_shape)
    need = dict(max_cin=1, max_cout=1, max_height=1, max_width=1)
    for layer in layers:
        x = np.zeros(shape, dtype=np.int64)
        xe, we, _ = _engine_input(layer, x, engine_r)
        need["max_cin"] = max(need["max_cin"], xe.shape[0])
        need["max_cout"] = max(need["max_cout"], we.shape[0])
        need["max_height"] = max(need["max_height"], xe.shape[1])
        need["max_width"] = max(need["max_width"], xe.shape[2])
        shape = _output_shape(layer, shape)
    return need


def network_engine_config(layers, input_shape, *, m=2, p=4, pixels_per_beat=4,
                          filters_per_beat=4, dsp="inferred", tile=None):
    """A Winograd F(m, 3) engine with 8-bit data, weights and outputs, P_in = P_out = ``p``,
    sized for the network (``tile``: its tile configuration instead of an exact one, e.g.
    a Winograd-domain network's quantized domain)."""
    need = network_requirements(layers, input_shape, 3)
    if tile is None:
        tile = TileConfig(m, 3, 8, 8, preset="lavin" if m > 2 else "default", dsp=dsp)
    return LayerConfig(tile, p_in=p, p_out=p, pixels_per_beat=pixels_per_beat,
                       filters_per_beat=filters_per_beat, output_width=8, **need)


def specialized_network_configs(layers, input_shape, tile):
    """One weight-specialized engine per layer (:mod:`winogen.gen.fixedweights`): the layer's
    weights in engine form (DWM pieces stacked as input channels) built in, sized for its
    input map, 8-bit outputs. Raw filters on an exact tile, or ``Û`` on a quantized one."""
    from ..gen.fixedweights import FixedWeights
    shape, configs = tuple(input_shape), []
    for layer in layers:
        xe, we, _ = _engine_input(layer, np.zeros(shape, dtype=np.int64), tile.r)
        fixed = FixedWeights("u" if "u" in layer else "w", we)
        configs.append(LayerConfig(
            tile, max_height=xe.shape[1], max_width=xe.shape[2], max_cin=fixed.cin,
            max_cout=fixed.cout, p_in=fixed.cin, p_out=fixed.cout, output_width=8,
            fixed_weights=fixed, name=f"{layer['name']}_w{fixed.sha256[:8]}"))
        shape = _output_shape(layer, shape)
    return configs


def run_layer_batch(config, xs, w, *, padding=0, shift=0, relu=False, stall=0.0, seed=0,
                    workdir=None, winograd_weights=False):
    """Run the same layer on each activation map of ``xs`` back to back, one simulation
    (``w`` the ``Û`` the weight stream carries with ``winograd_weights``).

    Returns the output maps (a list) and the cycles of the whole sequence (as
    :func:`winogen.sim.driver.run_layer` reports them for one layer).
    """
    from .driver import fixed_engine_weights, run_driver
    c = config
    w, winograd_weights = fixed_engine_weights(c, w, winograd_weights)
    xs = [np.asarray(x) for x in xs]
    w = np.asarray(w)
    for x in xs:
        LayerRun(x.shape[1], x.shape[2], x.shape[0], w.shape[0], padding, shift,
                 relu).check(c, weights=False)
    if winograd_weights:
        from ..gen.layer import check_winograd_weights
        w = check_winograd_weights(c.tile, w, (w.shape[0], xs[0].shape[0]))

    def write(folder):
        np.savez(folder / "x.npz", **{f"x{k}": x.astype(np.int64) for k, x in enumerate(xs)})
        np.save(folder / "w.npy", w.astype(np.int64))

    def read(folder):
        ys = np.load(folder / "y.npz")
        return ([ys[f"y{k}"] for k in range(len(xs))],
                json.loads((folder / "cycles.json").read_text()))

    params = {"padding": padding, "shift": shift, "relu": bool(relu), "stall": stall,
              "seed": seed, "winograd_weights": bool(winograd_weights)}
    return run_driver(c, "driver_batch", params, write, read, seed=seed, workdir=workdir)


def run_network(config, layers, images, *, chunk=50, stall=0.0, seed=0, progress=None):
    """Run ``images`` (N, C, H, W) through the network on the engine of ``config`` (or on
    one engine per layer: a list of configurations, e.g.
    :func:`specialized_network_configs`).

    Returns a dict: ``outputs`` (the last layer's outputs, N × C_out × H × W), and per
    layer ``name``, ``pieces``, ``cycles`` (sum over the chunks' sequences),
    ``cycles_per_image``, ``compute_ideal`` (engine steps), ``macs`` (multiply-accumulates
    of the layer as defined) and ``mismatches`` (elements differing from
    :func:`~winogen.nets.netfile.layer_forward_int` on the engine's own inputs).
    """
    configs = list(config) if isinstance(config, (list, tuple)) else [config] * len(layers)
    if len(configs) != len(layers):
        raise ValueError(f"config must be one configuration or one per layer ({len(layers)}), "
                         f"not {len(configs)}")
    a = np.asarray(images, dtype=np.int64)
    n = len(a)
    report = []
    for index, layer in enumerate(layers):
        c = configs[index]
        expected = engine_golden_layer(c, layer, a)
        outs, total, ideal = [], 0, 0
        for start in range(0, n, chunk):
            batch = [_engine_input(layer, x, c.r) for x in a[start:start + chunk]]
            ys, cycles = run_layer_batch(c, [b[0] for b in batch], batch[0][1],
                                         padding=batch[0][2], shift=layer["shift"],
                                         relu=layer["relu"], stall=stall,
                                         seed=seed + 7 * index + start,
                                         winograd_weights="u" in layer)
            outs += ys
            total += cycles["total"]
            ideal += cycles["compute_ideal"]
            if progress is not None:
                progress(layer["name"], min(start + chunk, n), n)
        out = np.stack(outs)
        k = _kernel(layer)
        cin = layer["cin"] if "u" in layer else layer["w"].shape[1]
        cout = layer["cout"] if "u" in layer else layer["w"].shape[0]
        report.append({
            "name": layer["name"], "kernel": k, "stride": layer["stride"],
            "pieces": 1 if _direct(layer, c.r) else batch[0][0].shape[0] // cin,
            "cycles": total, "cycles_per_image": total / n, "compute_ideal": ideal,
            "macs": int(cout * cin * k * k * math.prod(out.shape[2:]) * n),
            "mismatches": int(np.sum(out != expected)),
            "engine": c.module_name, "multipliers": c.multipliers,
        })
        a = out
    return {"outputs": a, "layers": report}
