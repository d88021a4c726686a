"""Time the golden layer models on a ResNet-18-sized layer against independent references.

The layer is ResNet-18's conv2_x: 64 → 64 channels, 56 × 56, 3 × 3 kernels,
padding 1, batch 1, with int8-range integer activations and weights. Timed in
the same run:

* the references, which share no code with winogen: ``scipy.signal.correlate``
  once per (output, input) channel pair, summed; and a NumPy im2col (a
  ``sliding_window_view`` of the patches contracted with ``einsum``);
* winogen's direct model (int64 and float32);
* winogen's Winograd model for F(2,3) and F(4,3): exact (int64) and float32.

Exact results must equal the scipy reference bit for bit; float32 results must
be within 1e-5 of the output's full scale. Each entry is the best of
``--repeat`` runs.

BLAS runs single-threaded unless ``--threads`` says otherwise: the references
are single-threaded, and on a busy machine a multithreaded OpenBLAS can spend
a hundred times longer spinning than computing on small batched GEMMs.

Usage::

    python benchmarks/bench_models.py [--repeat 3] [--seed 0] [--batch 1] [--threads 1] [--json]
"""

import argparse
import json
import os
import platform
import sys
import time


def _threads_from_argv(argv):
    """``--threads N`` must act before NumPy loads BLAS, so read it ahead of argparse."""
    for index, arg in enumerate(argv):
        if arg == "--threads" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


if __name__ == "__main__":
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = _threads_from_argv(sys.argv[1:])

import numpy as np  # noqa: E402  (after the thread settings)
import scipy  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402
from scipy.signal import correlate  # noqa: E402

from winogen.gen.models import direct_conv2d, winograd_conv2d  # noqa: E402
from winogen.gen.toomcook import ToomCook  # noqa: E402

C_IN = C_OUT = 64
SIZE = 56
KERNEL = 3
PADDING = 1
FLOAT_TOLERANCE = 1e-5


def scipy_reference(x, w, padding):
    """Per channel pair ``scipy.signal.correlate`` (direct, exact for ints), summed over inputs."""
    xp = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    out = np.empty((x.shape[0], w.shape[0], xp.shape[2] - w.shape[2] + 1, xp.shape[3] - w.shape[3] + 1),
                   dtype=np.result_type(x, w))
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            out[n, o] = sum(correlate(xp[n, c], w[o, c], mode="valid", method="direct")
                            for c in range(w.shape[1]))
    return out


def einsum_im2col(x, w, padding):
    """NumPy im2col: a strided view of every patch contracted with the weights."""
    xp = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    patches = sliding_window_view(xp, w.shape[2:], axis=(2, 3))   # (N, C, Ho, Wo, kh, kw)
    return np.einsum("nchwij,ocij->nohw", patches, w, optimize=True)


def best_time(function, repeat):
    """``(best seconds, result)`` over ``repeat`` runs."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def progress(message):
    print(message, file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per entry, best taken (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--batch", type=int, default=1, help="batch size N (default 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads, set before NumPy loads (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be a positive integer, not {args.repeat!r}")
    if args.batch < 1:
        parser.error(f"--batch must be a positive integer, not {args.batch!r}")

    rng = np.random.default_rng(args.seed)
    x = rng.integers(-128, 128, (args.batch, C_IN, SIZE, SIZE), dtype=np.int64)
    w = rng.integers(-128, 128, (C_OUT, C_IN, KERNEL, KERNEL), dtype=np.int64)
    xf, wf = x.astype(np.float32), w.astype(np.float32)
    f23, f43 = ToomCook(2, 3, preset="lavin"), ToomCook(4, 3, preset="lavin")

    entries = [
        ("reference", "scipy.signal.correlate per channel pair", "int64", lambda: scipy_reference(x, w, PADDING)),
        ("reference", "numpy einsum im2col", "int64", lambda: einsum_im2col(x, w, PADDING)),
        ("winogen", "direct_conv2d", "int64", lambda: direct_conv2d(x, w, PADDING)),
        ("winogen", "direct_conv2d", "float32", lambda: direct_conv2d(xf, wf, PADDING)),
        ("winogen", "winograd_conv2d F(2,3)", "exact int64", lambda: winograd_conv2d(x, w, f23, PADDING)),
        ("winogen", "winograd_conv2d F(4,3)", "exact int64", lambda: winograd_conv2d(x, w, f43, PADDING)),
        ("winogen", "winograd_conv2d F(2,3)", "float32",
         lambda: winograd_conv2d(xf, wf, f23, PADDING, arithmetic="float32")),
        ("winogen", "winograd_conv2d F(4,3)", "float32",
         lambda: winograd_conv2d(xf, wf, f43, PADDING, arithmetic="float32")),
    ]

    progress(f"layer: N={args.batch}, {C_IN}->{C_OUT} channels, {SIZE}x{SIZE}, {KERNEL}x{KERNEL}, "
             f"padding {PADDING}, int8-range integers; best of {args.repeat}; "
             f"BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    results, reference = [], None
    for kind, name, arithmetic, function in entries:
        progress(f"  timing {name} ({arithmetic}) ...")
        seconds, y = best_time(function, args.repeat)
        if reference is None:
            reference, reference_seconds = y, seconds
            scale = float(np.abs(reference).max())
        if y.dtype.kind in "iu" or y.dtype == object:
            agrees = bool(np.array_equal(y, reference))
            check = "bit-exact" if agrees else "MISMATCH"
        else:
            error = float(np.abs(y.astype(np.float64) - reference).max() / scale)
            agrees = error <= FLOAT_TOLERANCE
            check = f"max err {error:.1e}" + ("" if agrees else " MISMATCH")
        results.append({"kind": kind, "model": name, "arithmetic": arithmetic, "seconds": seconds,
                        "relative_time": seconds / reference_seconds,
                        "speedup": reference_seconds / seconds, "agrees": agrees, "check": check})
        progress(f"    {seconds:.4f} s, {check}")

    if args.json:
        print(json.dumps({"layer": {"batch": args.batch, "c_in": C_IN, "c_out": C_OUT, "size": SIZE,
                                    "kernel": KERNEL, "padding": PADDING},
                          "repeat": args.repeat, "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                          "numpy": np.__version__, "scipy": scipy.__version__,
                          "python": platform.python_version(), "results": results}, indent=2))
    else:
        print("| kind | model | arithmetic | seconds | time / scipy ref | speedup vs scipy ref | check |")
        print("|---|---|---|---:|---:|---:|---|")
        for r in results:
            print(f"| {r['kind']} | {r['model']} | {r['arithmetic']} | {r['seconds']:.4f} | "
                  f"{r['relative_time']:.3f} | {r['speedup']:.1f}× | {r['check']} |")
    return 0 if all(r["agrees"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
