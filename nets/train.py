"""Train the reference CNN (autograd, Adam) and quantize it to int8 with power-of-two scales.

``python -m winogen.nets.train [--epochs N] [--seed S] [--out FILE.npz]`` trains on the
fixed training split, quantizes, prints float and int8 top-1 on the test split and writes
the weights (by default over the committed ``nets/data/digits_cnn.npz``, and then the int8
network as a network file, ``digits_cnn.json`` + ``digits_cnn_int8.npz``).

Quantization (every scale a power of two, so that the engine's shift applies it exactly):

* weights of layer ``l``: ``w_q = clip(round(w · 2^sw_l), -127, 127)`` with the largest
  ``sw_l`` that keeps ``max |w| · 2^sw_l <= 127``;
* activations: the input's real value is ``x_q / 2^7``; the output of layer ``l`` gets the
  largest ``sy_l`` with ``max(a_l) · 2^sy_l <= 127`` over the training images (float
  network);
* layer ``l``'s requantization shift is ``sx_l + sw_l - sy_l`` (``sx_l = sy_{l-1}``);
  the classifier's, ``sx + sw_fc - sy_fc`` with ``sy_fc`` from its largest logit magnitude.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from .digits import INPUT_SHIFT, load_digits_int8, split
from .reference import CLASSES, LAYERS, conv2d_float, forward_float, forward_int

__all__ = ["WEIGHTS", "NETWORK", "train_float", "quantize", "accuracy", "load_weights", "main"]

#: The committed weights (float and int8), and the int8 network as a network file.
WEIGHTS = Path(__file__).with_name("data") / "digits_cnn.npz"
NETWORK = Path(__file__).with_name("data") / "digits_cnn.json"
NETWORK_WEIGHTS = "digits_cnn_int8.npz"


def _init(seed):
    rng = np.random.default_rng(seed)
    params = {}
    for layer in LAYERS:
        fan_in = layer["cin"] * layer["k"] ** 2
        params[layer["name"]] = rng.normal(0, math.sqrt(2 / fan_in),
                                           (layer["cout"], layer["cin"], layer["k"], layer["k"]))
    fc_in = LAYERS[-1]["cout"] * 4 * 4
    params["fc"] = rng.normal(0, math.sqrt(1 / fc_in), (fc_in, CLASSES))
    return params


def train_float(x_train, y_train, *, epochs, seed=0, batch=64, lr=0.01, progress=None):
    """Float parameters after ``epochs`` of Adam on cross-entropy; ``x_train`` int8."""
    import autograd.numpy as anp
    from autograd import grad
    from autograd.scipy.special import logsumexp

    def loss(params, xb, yb):
        logits = forward_float(params, xb, anp)
        return anp.mean(logsumexp(logits, axis=1) - logits[anp.arange(len(yb)), yb])

    return adam(_init(seed), grad(loss), loss, x_train.astype(np.float64) / 2 ** INPUT_SHIFT,
                y_train, epochs=epochs, lr=lr, batch=batch, rng=np.random.default_rng(seed + 1),
                progress=progress)


def adam(params, gradient, loss, x, y, *, epochs, lr, batch, rng, progress=None, rates=None):
    """Mini-batch Adam with cosine learning-rate decay, in place on ``params`` (dict of
    arrays); returns them. ``gradient(params, xb, yb)`` and ``loss`` take the same
    arguments; ``progress(epoch, epochs, loss on the first 256 samples)`` after each epoch;
    ``rates`` maps a parameter to its own learning rate (default ``lr``)."""
    rates = rates or {}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        rate = lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))     # cosine decay
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            g = gradient(params, x[idx], y[idx])
            step += 1
            for k in params:
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
                mhat, vhat = m[k] / (1 - 0.9 ** step), v[k] / (1 - 0.999 ** step)
                own = rate * rates[k] / lr if k in rates else rate
                params[k] = params[k] - own * mhat / (np.sqrt(vhat) + 1e-8)
        if progress is not None:
            progress(epoch + 1, epochs, float(loss(params, x[:256], y[:256])))
    return params


def _pow2_scale(peak, limit=127):
    """The largest ``s`` with ``peak · 2^s <= limit``."""
    return math.floor(math.log2(limit / peak))


def quantize(params, x_calib):
    """int8 weights and shifts (see the module) from float ``params`` and int8 images."""
    q = {}
    a = x_calib.astype(np.float64) / 2 ** INPUT_SHIFT
    sx = INPUT_SHIFT
    for layer in LAYERS:
        name = layer["name"]
        w = params[name]
        sw = _pow2_scale(np.abs(w).max())
        q[name] = np.clip(np.round(w * 2.0 ** sw), -127, 127).astype(np.int8)
        a = np.maximum(conv2d_float(a, w, layer["stride"], layer["padding"]), 0.0)
        sy = _pow2_scale(a.max())
        shift = sx + sw - sy
        if shift < 0:
            raise ValueError(f"layer {name}: the requantization shift would be {shift} < 0")
        q[f"shift_{name}"] = np.int64(shift)
        sx = sy
    sfc = _pow2_scale(np.abs(params["fc"]).max())
    q["fc"] = np.clip(np.round(params["fc"] * 2.0 ** sfc), -127, 127).astype(np.int8)
    logits = a.reshape(a.shape[0], -1) @ params["fc"]
    shift = sx + sfc - _pow2_scale(np.abs(logits).max())
    if shift < 0:
        raise ValueError(f"the classifier's requantization shift would be {shift} < 0")
    q["shift_fc"] = np.int64(shift)
    return q


def accuracy(logits, y):
    return float(np.mean(np.argmax(logits, axis=1) == y))


def load_weights(path=WEIGHTS):
    """``(float params, int8 params and shifts)`` from a weights file."""
    data = np.load(path)
    names = [layer["name"] for layer in LAYERS] + ["fc"]
    floats = {k: data[f"float_{k}"] for k in names}
    ints = {k: data[k] for k in names}
    ints.update({f"shift_{name}": int(data[f"shift_{name}"]) for name in names})
    return floats, ints


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m winogen.nets.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default: 30)")
    p.add_argument("--seed", type=int, default=0, help="initialization seed (default: 0)")
    p.add_argument("--out", type=Path, default=WEIGHTS, help=f"weights file (default: {WEIGHTS})")
    p.add_argument("--train-images", type=int, default=None,
                   help="train on the first N training images only (quick checks; default: "
                        "all 1,438)")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be a positive integer, not {args.epochs}")
    if args.train_images is not None and args.train_images < 1:
        p.error(f"--train-images must be a positive integer, not {args.train_images}")
    x, y = load_digits_int8()
    x_train, y_train, x_test, y_test = split(x, y)
    if args.train_images is not None:
        x_train, y_train = x_train[:args.train_images], y_train[:args.train_images]
    start = time.monotonic()

    def progress(epoch, epochs, loss):
        print(f"epoch {epoch}/{epochs}: loss {loss:.4f} ({time.monotonic() - start:.0f} s)",
              file=sys.stderr, flush=True)

    params = train_float(x_train, y_train, epochs=args.epochs, seed=args.seed, progress=progress)
    q = quantize(params, x_train)
    float_acc = accuracy(forward_float(params, x_test.astype(np.float64) / 2 ** INPUT_SHIFT),
                         y_test)
    int_acc = accuracy(forward_int(q, x_test), y_test)
    print(f"test top-1: float {100 * float_acc:.2f} %, int8 {100 * int_acc:.2f} % "
          f"({len(y_test)} images)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **{f"float_{k}": v.astype(np.float32) for k, v in params.items()},
                        **q, epochs=args.epochs, seed=args.seed)
    print(f"wrote {args.out}")
    if args.out == WEIGHTS:
        from .netfile import save_reference_network
        save_reference_network(q, NETWORK, NETWORK_WEIGHTS)
        print(f"wrote {NETWORK} and {NETWORK.with_name(NETWORK_WEIGHTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
