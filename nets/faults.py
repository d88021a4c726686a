"""Model-level fault campaigns on the reference network (issue 18).

Every layer of the network runs through :class:`~winogen.gen.faultmodel.LayerFaultModel`
of one layer engine: the direct engine or a Winograd F(2,3) or F(4,3) engine, with the
same parallelism, widths and 8-bit requantization as ``winogen run-net`` builds, and the
same decomposition of 5×5 and stride-2 layers (:func:`winogen.gen.dwm.dwm_layer`), so
the three engines compute the same integer network and differ only in their operations.
Bit flips land on the operations' results at a bit error rate (BER), products at twice
the rate of additions (Xue et al.'s operation-level model).

Work is split into items (engine, BER, trial, chunk of images), each carrying its own
seed (``SeedSequence([seed, engine, ber, trial, chunk])``), so the results do not depend
on the executor that ran them or on the order. :func:`accuracy_item`,
:func:`layer_error_item` and :func:`vulnerability_item` are the picklable work
functions; :func:`accuracy_campaign`, :func:`layer_error_campaign` and
:func:`vulnerability_campaign` build the items, map them and reduce the results.
"""

import math
from functools import lru_cache

import numpy as np

from ..gen.config import TileConfig
from ..gen.faultmodel import Fault, LayerFaultModel
from ..gen.layer import LayerConfig, LayerRun
from ..sim.network import _engine_input, network_requirements
from .netfile import layer_forward_int

__all__ = ["ENGINES", "engine_config", "network_forward", "accuracy_item", "layer_error_item",
           "vulnerability_item", "accuracy_campaign", "layer_error_campaign",
           "vulnerability_campaign", "default_bers"]

#: The engines a campaign compares: name -> TileConfig arguments (8-bit data and weights).
ENGINES = {
    "direct": dict(m=2, r=3, algorithm="direct"),
    "f23": dict(m=2, r=3),
    "f43": dict(m=4, r=3, preset="lavin"),
}


def default_bers():
    """The BER grid of the campaigns (log-spaced where accuracy falls)."""
    return [0.0, 1e-8, 3e-8, 1e-7, 3e-7, 1e-6, 3e-6, 1e-5]


def engine_config(engine, layers, input_shape, *, p=4, harden=()):
    """The layer engine ``engine`` (a key of :data:`ENGINES`) sized for ``layers``, with the
    hardening ``harden`` (``((class, scheme), ...)`` or specification text)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    need = network_requirements(layers, input_shape, 3)
    tile = TileConfig(data_width=8, weight_width=8, **ENGINES[engine])
    return LayerConfig(tile, p_in=p, p_out=p, output_width=8, harden=harden, **need)


def _engine_layer(layer, a):
    """``(xs, w, padding)``: the engine's input maps (B, C, H, W) for activations ``a``."""
    parts = [_engine_input(layer, x, 3) for x in a]
    return np.stack([p[0] for p in parts]), parts[0][1], parts[0][2]


@lru_cache(maxsize=64)
def _model(config, layer_index, shape, padding, shift, relu, w_bytes, w_shape):
    w = np.frombuffer(w_bytes, dtype=np.int64).reshape(w_shape)
    cin, h, wd = shape
    run = LayerRun(h, wd, cin, w.shape[0], padding, shift, relu)
    return LayerFaultModel(config, run, w)


def _layer_model(config, index, layer, xs, w, padding):
    w = np.ascontiguousarray(w, dtype=np.int64)
    return _model(config, index, xs.shape[1:], padding, layer["shift"], layer["relu"],
                  w.tobytes(), w.shape)


def network_forward(config, layers, images, *, ber=0.0, rng=None, classes=None, counts=None,
                    detected=None):
    """The network's last-layer outputs for ``images`` (N, C, H, W) with faults at ``ber``.

    ``counts`` (a dict), if given, receives the number of flips per site class;
    ``detected`` (a bool array (N,)), if given, is set where a ``dmr`` comparator flagged
    an output beat of the image in any layer.
    """
    a = np.asarray(images, dtype=np.int64)
    for index, layer in enumerate(layers):
        xs, w, padding = _engine_layer(layer, a)
        model = _layer_model(config, index, layer, xs, w, padding)
        flags = {} if detected is not None else None
        a = model.forward(xs, ber=ber if ber else None, rng=rng, classes=classes,
                          counts=counts, flags=flags)
        if detected is not None:
            detected |= flags["beats"].reshape(len(a), -1).any(axis=1)
    return a


def _rng(seed, *keys):
    return np.random.default_rng(np.random.SeedSequence([int(seed), *[int(k) for k in keys]]))


def accuracy_item(item):
    """Work item: top-1 hits of one chunk of images at one BER on one engine.

    ``item`` is a dict: ``engine``, ``layers``, ``images``, ``labels``, ``ber``,
    ``seed`` (a tuple of ints), ``classes`` (None for all). Returns a dict with ``hits``,
    ``images`` and ``flips`` (per site class).
    """
    config = engine_config(item["engine"], item["layers"], item["images"].shape[1:],
                           p=item.get("p", 4), harden=item.get("harden", ()))
    counts = {}
    detected = np.zeros(len(item["images"]), dtype=bool)
    out = network_forward(config, item["layers"], item["images"], ber=item["ber"],
                          rng=_rng(*item["seed"]), classes=item.get("classes"), counts=counts,
                          detected=detected)
    hit = np.argmax(out.reshape(len(out), -1), axis=1) == item["labels"]
    if detected.any():
        # A flagged image is computed again (assumed fault-free): its fault-free answer.
        clean = network_forward(config, item["layers"], item["images"][detected])
        hit[detected] = np.argmax(clean.reshape(len(clean), -1), axis=1) == \
            item["labels"][detected]
    return {"hits": int(np.sum(hit)), "images": len(out), "flips": counts,
            "detected": int(detected.sum())}


def accuracy_campaign(layers, images, labels, *, engines=tuple(ENGINES), bers=None, trials=3,
                      chunk=60, seed=0, classes=None, executor=None, progress=None,
                      harden=None, p=4):
    """Top-1 accuracy of the network against BER for each engine.

    ``engines`` are keys of :data:`ENGINES`, or labels mapped to ``(engine, hardening)``
    by ``harden`` (e.g. ``{"f23+tmr": ("f23", "products:tmr")}``). A ``dmr``-flagged image
    counts with its fault-free answer (it is assumed computed again).

    Returns a dict: ``bers``, ``engines``, and ``accuracy[engine]`` a list (per BER) of
    ``{"mean", "min", "max", "trials", "detected"}`` over the trials (each trial a fresh
    fault draw over all ``images``), plus ``flips_per_image[engine]`` (per BER, per class).
    """
    harden = dict(harden or {})
    bers = default_bers() if bers is None else list(bers)
    items, keys = [], []
    for e, engine in enumerate(engines):
        for b, ber in enumerate(bers):
            for t in range(trials if ber else 1):
                for k, start in enumerate(range(0, len(images), chunk)):
                    base, spec = harden.get(engine, (engine, ()))
                    items.append({"engine": base, "harden": spec, "layers": layers, "p": p,
                                  "images": images[start:start + chunk],
                                  "labels": labels[start:start + chunk], "ber": ber,
                                  "seed": (seed, e, b, t, k), "classes": classes})
                    keys.append((engine, b, t))
    results = _map(executor, accuracy_item, items, progress)
    acc = {engine: [dict(hits=[0] * (trials if ber else 1), flips={}, detected=0)
                    for ber in bers] for engine in engines}
    for (engine, b, t), res in zip(keys, results):
        slot = acc[engine][b]
        slot["hits"][t] += res["hits"]
        slot["detected"] += res["detected"]
        for name, count in res["flips"].items():
            slot["flips"][name] = slot["flips"].get(name, 0) + count
    report = {"bers": bers, "engines": list(engines), "images": len(images), "trials": trials,
              "accuracy": {}, "flips_per_image": {}}
    for engine in engines:
        report["accuracy"][engine] = []
        report["flips_per_image"][engine] = []
        for ber, slot in zip(bers, acc[engine]):
            rates = [h / len(images) for h in slot["hits"]]
            report["accuracy"][engine].append({
                "mean": float(np.mean(rates)), "min": min(rates), "max": max(rates),
                "trials": rates, "detected": slot["detected"] / (len(images) * len(rates))})
            n = len(images) * len(slot["hits"])
            report["flips_per_image"][engine].append(
                {name: count / n for name, count in sorted(slot["flips"].items())})
    return report


def _clean_inputs(layers, images):
    """Each layer's fault-free input activations."""
    inputs, a = [], np.asarray(images, dtype=np.int64)
    for layer in layers:
        inputs.append(a)
        a = layer_forward_int(layer, a)
    return inputs


def layer_error_item(item):
    """Work item: one layer's output error at one BER on one engine (fault-free inputs).

    Returns ``abs_sum``, ``abs_max``, ``corrupted`` (outputs that differ) and ``outputs``.
    """
    layers, index = item["layers"], item["layer"]
    layer = layers[index]
    a = item["inputs"]
    config = engine_config(item["engine"], layers, item["input_shape"], p=item.get("p", 4),
                           harden=item.get("harden", ()))
    xs, w, padding = _engine_layer(layer, a)
    model = _layer_model(config, index, layer, xs, w, padding)
    clean = model.forward(xs)
    faulty = model.forward(xs, ber=item["ber"], rng=_rng(*item["seed"]),
                           classes=item.get("classes"))
    err = np.abs(faulty - clean)
    return {"abs_sum": int(err.sum()), "abs_max": int(err.max(initial=0)),
            "corrupted": int(np.count_nonzero(err)), "outputs": int(err.size)}


def layer_error_campaign(layers, images, *, engines=tuple(ENGINES), bers=None, trials=3,
                         chunk=60, seed=0, classes=None, executor=None, progress=None, p=4,
                         harden=None):
    """Every layer's output error against BER for each engine, on fault-free inputs.

    ``engines`` and ``harden`` as in :func:`accuracy_campaign` (outputs a ``dmr``
    comparator flags still count as corrupted here).

    Returns ``bers``, ``layers`` (names) and ``error[engine][layer]``: per BER
    ``mean_abs`` (over all outputs and trials), ``max_abs`` and ``corrupted`` (fraction of
    outputs that differ from the fault-free engine).
    """
    bers = default_bers() if bers is None else list(bers)
    inputs = _clean_inputs(layers, images)
    shape = np.asarray(images).shape[1:]
    harden = dict(harden or {})
    items, keys = [], []
    for e, engine in enumerate(engines):
        base, spec = harden.get(engine, (engine, ()))
        for li in range(len(layers)):
            for b, ber in enumerate(bers):
                for t in range(trials if ber else 1):
                    for k, start in enumerate(range(0, len(images), chunk)):
                        items.append({"engine": base, "harden": spec, "layers": layers,
                                      "layer": li, "p": p,
                                      "inputs": inputs[li][start:start + chunk],
                                      "input_shape": shape, "ber": ber,
                                      "seed": (seed, e, b, t, k, 1000 + li),
                                      "classes": classes})
                        keys.append((engine, li, b))
    results = _map(executor, layer_error_item, items, progress)
    sums = {}
    for key, res in zip(keys, results):
        s = sums.setdefault(key, {"abs_sum": 0, "abs_max": 0, "corrupted": 0, "outputs": 0})
        s["abs_sum"] += res["abs_sum"]
        s["abs_max"] = max(s["abs_max"], res["abs_max"])
        s["corrupted"] += res["corrupted"]
        s["outputs"] += res["outputs"]
    report = {"bers": bers, "engines": list(engines), "layers": [l["name"] for l in layers],
              "error": {}}
    for engine in engines:
        report["error"][engine] = {}
        for li, layer in enumerate(layers):
            rows = []
            for b in range(len(bers)):
                s = sums[(engine, li, b)]
                rows.append({"mean_abs": s["abs_sum"] / s["outputs"], "max_abs": s["abs_max"],
                             "corrupted": s["corrupted"] / s["outputs"]})
            report["error"][engine][layer["name"]] = rows
    return report


def vulnerability_item(item):
    """Work item: ``count`` single bit flips in one site class of one layer, one per copy
    of one image, each flip drawn uniformly over the class's bits.

    Returns ``flips``, ``corrupted`` (flips that change the layer's output) and
    ``abs_sum`` (summed absolute output error).
    """
    layers, index = item["layers"], item["layer"]
    layer = layers[index]
    config = engine_config(item["engine"], layers, item["input_shape"], p=item.get("p", 4))
    xs, w, padding = _engine_layer(layer, item["inputs"][None])
    xs = np.repeat(xs, item["count"], axis=0)
    model = _layer_model(config, index, layer, xs, w, padding)
    sc = model.site_classes(1)[item["site"]]
    widths = np.broadcast_to(sc.widths, sc.shape)[0].reshape(-1)
    ends = np.cumsum(widths)
    rng = _rng(*item["seed"])
    draws = rng.integers(0, int(ends[-1]), size=item["count"])
    flat = np.searchsorted(ends, draws, side="right")
    bits = draws - (ends[flat] - widths[flat])
    shape = sc.shape[1:]
    faults = [Fault(item["site"], tuple(int(i) for i in np.unravel_index(f, shape)), int(bit), im)
              for im, (f, bit) in enumerate(zip(flat, bits))]
    clean = model.forward(xs[:1])
    faulty = model.forward(xs, faults=faults)
    err = np.abs(faulty - clean).reshape(len(faults), -1)
    return {"flips": len(faults), "corrupted": int(np.count_nonzero(err.any(axis=1))),
            "abs_sum": int(err.sum())}


def vulnerability_campaign(layers, images, *, engines=tuple(ENGINES), flips=200, seed=0,
                           executor=None, progress=None, p=4):
    """Per site class: the chance that one flip corrupts the layer output, the mean absolute
    error per flip, and the class's bits per image (its exposure at a given BER).

    Flips are spread over the network's layers and over ``images`` (fault-free inputs).
    Returns ``classes[engine][site] = {"flips", "corrupt_probability", "mean_abs_error",
    "bits_per_image", "factor", "expected_corruptions_per_ber"}`` where the last is
    ``factor · bits · corrupt_probability`` summed over layers (the class's share of
    corrupted outputs at a small BER), and ``ranking[engine]`` orders the classes by it.
    """
    inputs = _clean_inputs(layers, images)
    shape = np.asarray(images).shape[1:]
    items, keys = [], []
    per_layer = max(1, flips // len(layers))
    for e, engine in enumerate(engines):
        config = engine_config(engine, layers, shape, p=p)
        for li, layer in enumerate(layers):
            xs, w, padding = _engine_layer(layer, inputs[li][:1])
            sites = _layer_model(config, li, layer, xs, w, padding).site_classes(1)
            for s, (name, sc) in enumerate(sites.items()):
                for k in range(math.ceil(per_layer / 50)):
                    image = (k * 7 + li) % len(images)
                    count = min(50, per_layer - 50 * k)
                    items.append({"engine": engine, "layers": layers, "layer": li, "p": p,
                                  "inputs": inputs[li][image], "input_shape": shape,
                                  "site": name, "count": count,
                                  "seed": (seed, e, li, s, k, 2000)})
                    keys.append((engine, li, name, sc.bits, sc.factor))
    results = _map(executor, vulnerability_item, items, progress)
    acc = {}
    for (engine, li, name, bits, factor), res in zip(keys, results):
        slot = acc.setdefault(engine, {}).setdefault(name, {}).setdefault(
            li, {"flips": 0, "corrupted": 0, "abs_sum": 0, "bits": bits, "factor": factor})
        for key in ("flips", "corrupted", "abs_sum"):
            slot[key] += res[key]
    report = {"engines": list(engines), "layers": [l["name"] for l in layers], "classes": {},
              "ranking": {}}
    for engine, by_site in acc.items():
        out = {}
        for name, by_layer in by_site.items():
            f = sum(s["flips"] for s in by_layer.values())
            out[name] = {
                "flips": f,
                "corrupt_probability": sum(s["corrupted"] for s in by_layer.values()) / f,
                "mean_abs_error": sum(s["abs_sum"] for s in by_layer.values()) / f,
                "bits_per_image": sum(s["bits"] for s in by_layer.values()),
                "factor": next(iter(by_layer.values()))["factor"],
                "expected_corruptions_per_ber": sum(
                    s["factor"] * s["bits"] * s["corrupted"] / s["flips"]
                    for s in by_layer.values()),
            }
        report["classes"][engine] = out
        report["ranking"][engine] = sorted(out, key=lambda n: -out[n]["expected_corruptions_per_ber"])
    return report


def _map(executor, fn, items, progress):
    if executor is None:
        results = []
        for i, item in enumerate(items):
            results.append(fn(item))
            if progress is not None:
                progress(i + 1, len(items), i)
        return results
    return executor.map(fn, items, progress=progress)


#: In a hardening budget, one MULT18X18D counts as this many LUT4 (a soft multiplier of
#: the engines' 8- to 12-bit operands).
DSP_AS_LUT4 = 100


def block_costs_of(config):
    """Per-site-class costs of ``config``'s engine (Yosys, :mod:`winogen.fpga.block_costs`)."""
    import tempfile
    from ..fpga.block_costs import block_costs
    from ..hw.layer.manifest import generate_layer
    with tempfile.TemporaryDirectory(prefix="winogen-costs-") as tmp:
        vpath, _, manifest = generate_layer(config, tmp)
        return block_costs(vpath, manifest["top"])


def _output_bits(config, cls):
    """Bits leaving one instance set of a class per cycle (what a voter or comparator sees)."""
    c, t = config, config.tile
    n2, mm = c.n ** 2, c.m ** 2
    w = lambda ivs: sum(iv.width for iv in ivs)
    if c.algorithm == "winograd":
        table = {"input_transform": c.p_in * w(t.pe_a_intervals),
                 "products": c.p_in * c.p_out * w(t.product_intervals),
                 "lane_sums": c.p_out * w(t.product_intervals) + c.p_out * n2,
                 "accumulation": c.p_out * w(c.accumulator_intervals),
                 "output_transform": c.p_out * w(c.scaled_output_intervals),
                 "descale": c.p_out * mm * c.full_output_width}
    else:
        table = {"products": c.p_in * c.p_out * mm * c.r ** 2 * t.product_intervals[0].width,
                 "lane_sums": c.p_out * mm * c.full_output_width,
                 "accumulation": c.p_out * mm * c.accumulator_width}
    table["requantization"] = c.p_out * mm * (c.output_width or 0)
    return table[cls]


def hardening_cost(config, costs, cls, scheme):
    """Added ``{"logic", "ff", "dsp", "budget"}`` of hardening class ``cls`` with ``scheme``:
    the extra copies, plus a voter (one LUT4 per output bit) or a comparator (one LUT4 per
    two output bits); ``budget`` = logic + :data:`DSP_AS_LUT4` × DSP."""
    block = costs["classes"].get(cls, {"logic": 0, "ff": 0, "dsp": 0})
    extra = 2 if scheme == "tmr" else 1
    bits = _output_bits(config, cls)
    logic = extra * block["logic"] + (bits if scheme == "tmr" else bits // 2)
    out = {"logic": logic, "ff": extra * block["ff"], "dsp": extra * block["dsp"]}
    out["budget"] = logic + DSP_AS_LUT4 * out["dsp"]
    return out


def auto_harden(config, vulnerability, costs, budget):
    """The ``tmr`` classes that remove the most corrupting flips per unit of cost, within
    ``budget`` × the compute blocks' own logic (LUT4 estimate, DSPs weighted).

    ``vulnerability`` is one engine's entry of :func:`vulnerability_campaign`'s
    ``classes``. Greedy by benefit / cost, where the benefit of a class is its expected
    corrupting flips per unit BER (masked by ``tmr``). Returns ``(harden, table)``.
    """
    from ..gen.harden import engine_classes
    total = costs["total"]["logic"] + DSP_AS_LUT4 * costs["total"]["dsp"]
    limit = budget * total
    rows = []
    for cls in engine_classes(config):
        v = vulnerability.get(cls)
        if v is None:
            continue
        cost = hardening_cost(config, costs, cls, "tmr")
        rows.append({"class": cls, "benefit": v["expected_corruptions_per_ber"],
                     "cost": cost["budget"], "ratio": v["expected_corruptions_per_ber"]
                     / max(cost["budget"], 1)})
    rows.sort(key=lambda r: -r["ratio"])
    chosen, spent = [], 0
    for row in rows:
        row["chosen"] = spent + row["cost"] <= limit
        if row["chosen"]:
            chosen.append(row["class"])
            spent += row["cost"]
    from ..gen.harden import HARDENABLE
    harden = tuple((c, "tmr") for c in HARDENABLE if c in chosen)
    return harden, {"budget": budget, "limit": limit, "spent": spent, "engine_cost": total,
                    "rows": rows}
