"""Any kernel and stride on the F(m,3) layer engines (the Decomposable Winograd Method),
bit-exact under Verilator against direct strided correlation (scipy) and the engine's
requantization.

``wino43_p4_requant`` (F(4,3), P 4x4) and ``direct23_p4`` (direct, m = 2, P 4x4) have the
same 576 multipliers, so their cycles for the same layer compare at equal multipliers.
"""

import numpy as np
import pytest
from scipy.signal import correlate

from winogen.gen.dwm import dwm_pieces
from winogen.gen.layer import requantize
from winogen.sim.driver import run_layer_dwm

from test_layer_verilator import ENGINES

pytestmark = pytest.mark.verilator

LAYERS = {   # (k, stride): C_in, C_out, H, W
    (5, 1): (3, 5, 11, 13),
    (7, 1): (1, 4, 12, 10),
    (3, 2): (3, 6, 15, 12),
    (5, 2): (3, 4, 16, 13),
}


def _reference(cfg, x, w, stride, padding, shift):
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding))).astype(np.int64)
    y = np.array([sum(correlate(xp[c], w[o, c].astype(np.int64), mode="valid", method="direct")
                      for c in range(x.shape[0]))[::stride, ::stride]
                  for o in range(w.shape[0])])
    if cfg.output_width is not None:
        y = requantize(y, shift, cfg.output_width, cfg.rounding)
    return y


@pytest.mark.parametrize("name", ["wino23_p1_online", "wino43_p4_requant", "direct23_p4"])
@pytest.mark.parametrize("k, stride", list(LAYERS))
def test_dwm_layer_bit_exact(name, k, stride, tmp_path):
    cfg = ENGINES[name]
    cin, cout, h, wd = LAYERS[(k, stride)]
    rng = np.random.default_rng(1000 * k + 100 * stride + len(name))
    x = rng.integers(cfg.tile.data_interval.lo, cfg.tile.data_interval.hi + 1, (cin, h, wd))
    w = rng.integers(cfg.tile.weight_interval.lo, cfg.tile.weight_interval.hi + 1,
                     (cout, cin, k, k))
    padding = k // 2
    shift = 9 if cfg.output_width is not None else 0
    y, cycles = run_layer_dwm(cfg, x, w, stride=stride, padding=padding, shift=shift,
                              stall=0.1, seed=k + stride)
    assert np.array_equal(y, _reference(cfg, x, w, stride, padding, shift))
    macs = cout * cin * k * k * y.shape[1] * y.shape[2]
    print(f"{name} {k}x{k} stride {stride}, {cin}->{cout}, {h}x{wd}: bit-exact; "
          f"{cycles['pieces']} pieces ({cycles['stacked_cin']} channels), cycles "
          f"{cycles['total']} (compute steps {cycles['compute_ideal']}), "
          f"ideal MACs/multipliers {macs / cfg.multipliers:.0f}")


@pytest.mark.parametrize("k, stride", list(LAYERS))
def test_dwm_cycles_at_equal_multipliers(k, stride, tmp_path):
    """As many input channels as max_cin = 16 holds after stacking the pieces, 16 output
    channels, a 28 x 28 map, every stream ready: the F(4,3) engine against the direct
    engine of the same 576 multipliers (measured cycles beside the ideal, the layer's
    multiply-accumulates / multipliers)."""
    cin = ENGINES["wino43_p4_requant"].max_cin // len(dwm_pieces(k, stride, 3))
    cout, h, wd = 16, 28, 28
    rng = np.random.default_rng(7 * k + stride)
    figures = {}
    for name in ("wino43_p4_requant", "direct23_p4"):
        cfg = ENGINES[name]
        x = rng.integers(-128, 128, (cin, h, wd))
        w = rng.integers(-128, 128, (cout, cin, k, k))
        shift = 12 if cfg.output_width is not None else 0
        y, cycles = run_layer_dwm(cfg, x, w, stride=stride, padding=k // 2, shift=shift)
        assert np.array_equal(y, _reference(cfg, x, w, stride, k // 2, shift))
        assert cfg.multipliers == 576
        macs = cout * cin * k * k * y.shape[1] * y.shape[2]
        figures[name] = (cycles["total"], macs / cfg.multipliers)
    (wino, ideal), (direct, _) = figures["wino43_p4_requant"], figures["direct23_p4"]
    print(f"{k}x{k} stride {stride}, {cin}->{cout}, {h}x{wd}: F(4,3) {wino} cycles, direct "
          f"{direct} cycles (x{direct / wino:.2f}), ideal MACs/576 = {ideal:.0f} "
          f"(F(4,3) at {ideal / wino:.2f} of it)")


def test_simulate_cli_runs_any_kernel_and_stride(capsys):
    """``winogen simulate conv --kernel 5 --stride 2`` end to end (the engine of
    ``wino23_p1_online``: its build is shared)."""
    import json
    from winogen.cli import main
    status = main(["simulate", "conv", "--m", "2", "--r", "3", "--filter-transform", "online",
                   "--max-height", "17", "--max-width", "17", "--max-cin", "16",
                   "--max-cout", "8", "--random-layer", "3x13x11:5", "--kernel", "5",
                   "--stride", "2", "--stall", "0.2", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and report["pass"] is True and report["mismatches"] == 0
    assert report["pieces"] == 4 and report["cycles"]["stacked_cin"] == 12
