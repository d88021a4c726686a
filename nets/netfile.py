"""Networks as files: a JSON description beside an ``.npz`` of int8 weights.

Format ``winogen-network-1``::

    {
      "format": "winogen-network-1",
      "weights": "digits_cnn.npz",            # relative to the JSON file
      "input": {"shape": [1, 16, 16], "dataset": "digits"},
      "layers": [
        {"name": "c1", "type": "conv", "cin": 1, "cout": 8, "kernel": 3, "stride": 1,
         "padding": 1, "shift": 7, "relu": true},
        ...
        {"name": "fc", "type": "dense", "inputs": 256, "outputs": 10, "shift": 6,
         "relu": false}
      ]
    }

* ``conv``: weights ``npz[name]`` of shape (cout, cin, kernel, kernel); any kernel up to
  15, stride 1 or 2, padding below the kernel.
* ``dense``: weights ``npz[name]`` of shape (inputs, outputs), applied to the previous
  map flattened in (C, H, W) order; it runs as an unpadded convolution whose kernel is
  that map (the last layer: its outputs are the logits).
* Every layer's sums go through the engine's requantization: arithmetic right shift by
  ``shift``, round half to even, saturation to int8, then a clamp at 0 if ``relu``.
* ``input.dataset``: ``"digits"`` (:mod:`winogen.nets.digits`, its test split).
* Weights are int8 values (-128..127), in any integer dtype.

Winograd-domain networks (pruned or learned ones, :mod:`winogen.nets.prune`) add a
top-level ``"winograd"`` object::

      "winograd": {"m": 2, "preset": "lavin", "wino_width": 10,
                   "v_shifts": [...], "u_shifts": [...]}

naming the quantized Winograd domain of an F(m, 3) engine (``wino_width`` bits, the given
per-position shifts: :class:`~winogen.gen.config.TileConfig`'s ``wino_scales``). Every
layer's array is then the ``Û`` a quantized offline engine's weight stream carries, in
engine form: (cout, pieces·cin, n, n), ``pieces`` the layer's Decomposable-Winograd
pieces on a 3 × 3 engine (1 for a 3 × 3, stride-1 layer of padding 0 or 1; a dense layer
is the convolution whose kernel is its input map), each position inside the domain's
``Û`` range. Such layers load as ``u`` (with ``k``, ``cin``, ``cout``) instead of ``w``;
:func:`winograd_tile` gives the domain's tile configuration.

:func:`load_network` checks all of it and names the field or array at fault.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FORMAT", "Network", "load_network", "layer_forward_int", "network_forward_int",
           "save_reference_network", "save_winograd_network", "winograd_tile"]

FORMAT = "winogen-network-1"
MAX_KERNEL = 15
DATASETS = ("digits",)


@dataclass(frozen=True)
class Network:
    """A loaded network: ``layers`` as engine layers (dicts: ``name``, ``w`` (C_out, C_in, k,
    k), ``stride``, ``padding``, ``shift``, ``relu``; or ``u``, ``k``, ``cin``, ``cout`` in a
    Winograd-domain network), the input shape, the dataset and the ``winograd`` section
    (None for a network of raw int8 filters)."""
    layers: tuple
    input_shape: tuple
    dataset: str
    path: Path
    winograd: dict = None


#: The engine's kernel size for Winograd-domain networks (F(m, 3)).
WINOGRAD_R = 3


def winograd_tile(section):
    """The quantized offline F(m, 3) tile configuration of a network's ``winograd`` section."""
    from ..gen.config import TileConfig
    return TileConfig(section["m"], WINOGRAD_R, 8, 8, preset=section["preset"],
                      wino_width=section["wino_width"],
                      wino_scales=(tuple(section["v_shifts"]), tuple(section["u_shifts"])),
                      filter_transform="offline")


def _winograd_section(path, spec):
    """The checked ``winograd`` section, and its tile configuration."""
    section = spec["winograd"]
    if not isinstance(section, dict):
        _fail(path, f"winograd must be an object, not {section!r}")
    known = ("m", "preset", "wino_width", "v_shifts", "u_shifts")
    extra = sorted(set(section) - set(known))
    if extra:
        _fail(path, f"winograd has no field {extra[0]!r} (fields: {', '.join(known)})")
    from ..gen.points import PRESETS
    _int(path, "winograd.m", section.get("m"), 1, 8)
    if section.get("preset") not in PRESETS:
        _fail(path, f"winograd.preset must be one of {', '.join(sorted(PRESETS))}, not "
                    f"{section.get('preset')!r}")
    _int(path, "winograd.wino_width", section.get("wino_width"), 2, 32)
    for key in ("v_shifts", "u_shifts"):
        values = section.get(key)
        if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                   for v in values):
            _fail(path, f"winograd.{key} must be a list of integers, not {values!r}")
    try:
        tile = winograd_tile(section)
    except ValueError as exc:
        _fail(path, f"winograd: {exc}")
    return dict(section), tile


def _winograd_layer(path, where, name, weights, tile, k, stride, padding, cin, cout, shift,
                    relu):
    """A layer of Winograd-domain weights ``Û`` in engine form, checked."""
    from ..gen.dwm import dwm_pieces
    from ..gen.layer import check_winograd_weights
    direct = k == WINOGRAD_R and stride == 1 and padding in (0, WINOGRAD_R // 2)
    pieces = 1 if direct else len(dwm_pieces(k, stride, WINOGRAD_R))
    n = tile.n
    want = (cout, pieces * cin, n, n)
    if weights.shape != want:
        _fail(path, f"{where}: Winograd-domain weights must have shape {want} (C_out, "
                    f"{pieces} pieces x C_in, n, n), not {weights.shape}")
    try:
        u = check_winograd_weights(tile, weights)
    except ValueError as exc:
        _fail(path, f"{where}: {exc}")
    return dict(name=name, u=u, k=k, cin=cin, cout=cout, stride=stride, padding=padding,
                shift=shift, relu=relu)


def _fail(path, text):
    raise ValueError(f"{path.name}: {text}")


def _int(path, where, value, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < lo \
            or (hi is not None and value > hi):
        span = f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}"
        _fail(path, f"{where} must be {span}, not {value!r}")
    return value


def load_network(path):
    """Read and check a ``winogen-network-1`` JSON file and its weights.

    Raises
    ------
    ValueError
        Naming the file and the field or array at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such network file {str(path)!r}")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail(path, f"not JSON ({exc})")
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        _fail(path, f"format must be {FORMAT!r}, not {spec.get('format') if isinstance(spec, dict) else spec!r}")
    weights_name = spec.get("weights")
    if not isinstance(weights_name, str):
        _fail(path, f"weights must name an .npz file, not {weights_name!r}")
    wpath = path.parent / weights_name
    if not wpath.is_file():
        _fail(path, f"weights file {str(wpath)!r} does not exist")
    try:
        arrays = dict(np.load(wpath))
    except (OSError, ValueError) as exc:
        _fail(path, f"weights file {wpath.name!r} is not a readable .npz ({exc})")
    inp = spec.get("input")
    if not isinstance(inp, dict):
        _fail(path, f"input must be an object with shape and dataset, not {inp!r}")
    shape = inp.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3):
        _fail(path, f"input.shape must be [C, H, W], not {shape!r}")
    shape = tuple(_int(path, "input.shape", v, 1, 4096) for v in shape)
    if inp.get("dataset") not in DATASETS:
        _fail(path, f"input.dataset must be one of {', '.join(DATASETS)}, not "
                    f"{inp.get('dataset')!r}")
    section, tile = _winograd_section(path, spec) if "winograd" in spec else (None, None)
    specs = spec.get("layers")
    if not isinstance(specs, list) or not specs:
        _fail(path, f"layers must be a non-empty list, not {specs!r}")
    layers, c, h, w = [], *shape
    for i, layer in enumerate(specs):
        where = f"layers[{i}]"
        if not isinstance(layer, dict):
            _fail(path, f"{where} must be an object, not {layer!r}")
        name = layer.get("name")
        if not isinstance(name, str) or not name:
            _fail(path, f"{where}.name must be a non-empty string, not {name!r}")
        where = f"layer {name!r}"
        if name not in arrays:
            _fail(path, f"{where}: the weights file has no array {name!r}")
        weights = arrays[name]
        if not np.issubdtype(weights.dtype, np.integer):
            _fail(path, f"{where}: weights must be integers, not {weights.dtype}")
        if tile is None and weights.size and (weights.min() < -128 or weights.max() > 127):
            _fail(path, f"{where}: weights must be int8 values (-128..127), not "
                        f"[{weights.min()}, {weights.max()}]")
        shift = _int(path, f"{where}.shift", layer.get("shift"), 0, 63)
        relu = layer.get("relu", False)
        if not isinstance(relu, bool):
            _fail(path, f"{where}.relu must be true or false, not {relu!r}")
        kind = layer.get("type")
        if kind == "conv":
            cin = _int(path, f"{where}.cin", layer.get("cin"), 1)
            cout = _int(path, f"{where}.cout", layer.get("cout"), 1)
            k = _int(path, f"{where}.kernel", layer.get("kernel"), 1, MAX_KERNEL)
            stride = layer.get("stride", 1)
            if stride not in (1, 2) or isinstance(stride, bool):
                _fail(path, f"{where}.stride must be 1 or 2, not {stride!r}")
            padding = _int(path, f"{where}.padding", layer.get("padding", 0), 0, k - 1)
            if cin != c:
                _fail(path, f"{where}.cin must be {c} (the previous layer's channels), "
                            f"not {cin}")
            h2, w2 = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
            if tile is not None:
                if h2 < 1 or w2 < 1:
                    _fail(path, f"{where}: a {k}x{k} kernel with padding {padding} does not "
                                f"fit its {h}x{w} input")
                layers.append(_winograd_layer(path, where, name, weights, tile, k, stride,
                                              padding, cin, cout, shift, relu))
                c, h, w = cout, h2, w2
                continue
            if weights.shape != (cout, cin, k, k):
                _fail(path, f"{where}: weights must have shape {(cout, cin, k, k)}, not "
                            f"{weights.shape}")
            h2, w2 = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
            if h2 < 1 or w2 < 1:
                _fail(path, f"{where}: a {k}x{k} kernel with padding {padding} does not fit "
                            f"its {h}x{w} input")
            layers.append(dict(name=name, w=weights.astype(np.int64), stride=stride,
                               padding=padding, shift=shift, relu=relu))
            c, h, w = cout, h2, w2
        elif kind == "dense":
            inputs = _int(path, f"{where}.inputs", layer.get("inputs"), 1)
            outputs = _int(path, f"{where}.outputs", layer.get("outputs"), 1)
            if inputs != c * h * w:
                _fail(path, f"{where}.inputs must be {c * h * w} (the previous map, {c}x{h}x"
                            f"{w}, flattened), not {inputs}")
            if h > MAX_KERNEL or w > MAX_KERNEL:
                _fail(path, f"{where}: its input map {h}x{w} is larger than a "
                            f"{MAX_KERNEL}x{MAX_KERNEL} kernel")
            if tile is not None:
                if h != w:
                    _fail(path, f"{where}: its input map must be square to run as a "
                                f"convolution, not {h}x{w}")
                layers.append(_winograd_layer(path, where, name, weights, tile, h, 1, 0, c,
                                              outputs, shift, relu))
                c, h, w = outputs, 1, 1
                continue
            if weights.shape != (inputs, outputs):
                _fail(path, f"{where}: weights must have shape {(inputs, outputs)}, not "
                            f"{weights.shape}")
            conv = weights.astype(np.int64).T.reshape(outputs, c, h, w)
            if h != w:
                _fail(path, f"{where}: its input map must be square to run as a convolution, "
                            f"not {h}x{w}")
            layers.append(dict(name=name, w=conv, stride=1, padding=0, shift=shift, relu=relu))
            c, h, w = outputs, 1, 1
        else:
            _fail(path, f"{where}.type must be conv or dense, not {kind!r}")
    return Network(tuple(layers), shape, inp["dataset"], path, section)


def layer_forward_int(layer, x):
    """One layer of the integer golden model on images ``x`` (N, C, H, W): the strided
    correlation with zero padding, then the engine's requantization to int8."""
    from ..gen.layer import requantize
    from .reference import conv2d_int
    acc = conv2d_int(x, layer["w"], layer["stride"], layer["padding"])
    return requantize(acc, layer["shift"], 8, relu=layer["relu"])


def network_forward_int(network, x):
    """The integer golden model of the whole network (int8 outputs of the last layer).

    A Winograd-domain network has no exact convolution to compute: its golden model is
    the quantized engine's (:func:`winogen.gen.layer.layer_golden` on each layer's engine
    inputs, :func:`winogen.sim.network.engine_golden_network`)."""
    a = np.asarray(x, dtype=np.int64)
    if network.winograd is not None:
        from ..gen.layer import LayerConfig
        from ..sim.network import engine_golden_network, network_requirements
        need = network_requirements(network.layers, a.shape[1:], WINOGRAD_R)
        config = LayerConfig(winograd_tile(network.winograd), output_width=8, **need)
        return engine_golden_network(config, network.layers, a)
    for layer in network.layers:
        a = layer_forward_int(layer, a)
    return a


def save_winograd_network(json_path, base, weights, section):
    """Write a Winograd-domain network: ``base``'s layers (a loaded :class:`Network` of raw
    filters, e.g. the reference CNN) with ``weights`` (layer name -> ``Û`` in engine form)
    and the ``winograd`` section ``section``; the ``.npz`` beside the JSON shares its stem.
    The result loads (and is checked) with :func:`load_network`."""
    json_path = Path(json_path)
    spec = json.loads(Path(base.path).read_text())
    spec["weights"] = json_path.with_suffix(".npz").name
    spec["winograd"] = {"m": int(section["m"]), "preset": section["preset"],
                        "wino_width": int(section["wino_width"]),
                        "v_shifts": [int(v) for v in section["v_shifts"]],
                        "u_shifts": [int(v) for v in section["u_shifts"]]}
    names = [layer["name"] for layer in spec["layers"]]
    np.savez_compressed(json_path.with_suffix(".npz"),
                        **{k: np.asarray(weights[k], dtype=np.int64) for k in names})
    json_path.write_text(json.dumps(spec, indent=2) + "\n")
    return load_network(json_path)


def save_reference_network(qparams, json_path, weights_name):
    """Write the reference CNN's int8 weights ``qparams`` as a network file (JSON beside
    ``weights_name`` in the same folder)."""
    from .digits import SIZE
    from .reference import CLASSES, FC_MAP, LAYERS
    json_path = Path(json_path)
    layers = [dict(name=l["name"], type="conv", cin=l["cin"], cout=l["cout"], kernel=l["k"],
                   stride=l["stride"], padding=l["padding"],
                   shift=int(qparams[f"shift_{l['name']}"]), relu=True) for l in LAYERS]
    layers.append(dict(name="fc", type="dense", inputs=int(np.prod(FC_MAP)), outputs=CLASSES,
                       shift=int(qparams["shift_fc"]), relu=False))
    spec = {"format": FORMAT, "weights": weights_name,
            "input": {"shape": [1, SIZE, SIZE], "dataset": "digits"}, "layers": layers}
    names = [l["name"] for l in layers]
    np.savez_compressed(json_path.parent / weights_name,
                        **{k: np.asarray(qparams[k], dtype=np.int8) for k in names})
    json_path.write_text(json.dumps(spec, indent=2) + "\n")
