"""RNS tile engine: configuration, reduction plans, golden model, CLI.

Its blocks are tested beside their modules: test_rns_arith.py, test_rns_converter.py.
"""

import json
from math import prod
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from winogen.gen.bounds import Interval
from winogen.gen.config import TileConfig
from winogen.gen.layer import LayerConfig, LayerRun, layer_golden
from winogen.gen.models import direct_conv2d
from winogen.gen.rns import (ModuliSet, RNSTileConfig, RNSTileModel, from_residues_crt,
                             plan_reduction, reduction_cost, residue_constant, residue_width,
                             select_moduli)

WINOGEN = str(Path(sys.executable).with_name("winogen"))

MODULI = [2, 3, 7, 8, 9, 15, 17, 131, 211, 223, 233, 241, 251, 253, 255, 256, 257, 65535, 65536, 65537]


# --------------------------------------------------------------------------
# Reduction plans and constants
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mod", MODULI)
def test_reduction_plan_exhaustive_on_residue_products(mod):
    """Every product of two residue-port values (the PE's input range), reduced exactly."""
    w = residue_width(mod)
    hi = ((1 << w) - 1) ** 2
    plan = plan_reduction(Interval(0, hi), mod)
    xs = range(0, hi + 1) if hi < 70000 else \
        list(range(0, 70000)) + list(range(hi - 70000, hi + 1)) + \
        list(np.random.default_rng(mod).integers(0, hi + 1, 20000))
    assert all(plan.evaluate(x) == x % mod for x in xs)
    assert plan.comparisons <= 2


@pytest.mark.parametrize("mod", MODULI)
def test_reduction_plan_signed_wide(mod):
    iv = Interval(-(1 << 40), (1 << 40) - 3)
    plan = plan_reduction(iv, mod)
    rng = np.random.default_rng(1)
    xs = [iv.lo, iv.hi, 0, -1] + [int(x) for x in rng.integers(iv.lo, iv.hi, 3000)]
    assert all(plan.evaluate(x) == x % mod for x in xs)


def test_special_moduli_fold_cheaply():
    # 2ᵏ: keep the low bits; 2ᵏ-1: end-around carry (c = 1); 2ᵏ+1: c = -1.
    assert [(f.k, f.c) for f in plan_reduction(Interval(0, 65535), 256).folds] == [(8, 0)]
    assert {f.c for f in plan_reduction(Interval(0, 65535), 255).folds} == {1}
    assert {f.c for f in plan_reduction(Interval(0, 66000), 257).folds} == {-1}
    assert residue_constant(250, 251) == -1 and residue_constant(5, 251) == 5


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

def test_config_derives_method_ranges_and_json_round_trip():
    cfg = RNSTileConfig(4, 3, moduli="8bit-primes-4", redundant_moduli=1, channels=2)
    assert cfg.method_used == "inverse" and cfg.scale_divisor == 1
    assert cfg.base_moduli.moduli == (251, 241, 239)
    assert cfg.result_interval == Interval(-2 * 9 * 128 * 128 + 2 * 9 * 128, 2 * 9 * 128 * 128)
    assert cfg.multipliers == 4 * 36 and cfg.multiplier_width == 8
    assert cfg.weight_payload == (4 * 2 * 36, 8)
    again = RNSTileConfig.from_json(json.loads(json.dumps(cfg.to_json())))
    assert again.to_json() == cfg.to_json() and again.toomcook.points == cfg.toomcook.points
    scaled = RNSTileConfig(2, 3, moduli=(251, 253, 255, 256), redundant_moduli=1)
    assert scaled.method_used == "scaled" and scaled.scale_divisor == 4
    assert scaled.converter_latency == 8   # a register per level: two per digit, sum, sign
    assert scaled.latency == 2 + 3 + 2 + 8 + 1   # the PE registers its product too


@pytest.mark.parametrize("kwargs,message", [
    (dict(moduli=(252, 255)), "moduli must be pairwise coprime, not 252 and 255 (gcd 3)"),
    (dict(moduli=(251, 253, 255, 256)),
     "moduli [251, 253, 255, 256] must cover the scaled result range [-4129284096, 4161798144] "
     "of F(4,3) with 8-bit data, 8-bit weights and 1 channel(s) (needs ≥ 8323596289, 33 bits), "
     "not product 4145475840 (31 bits)"),
    (dict(moduli=(251, 241, 239, 233), redundant_moduli=1, channels=64, data_width=12),
     "non-redundant moduli [251, 241, 239] must cover the inverse result range"),
    (dict(moduli=(251, 253, 255, 256), method="inverse"),
     "method 'inverse' needs every denominator of F(4,3) invertible modulo every modulus, "
     "not denominator 2 modulo 256 (gcd 2)"),
    (dict(moduli=(251, 241, 239, 5), redundant_moduli=1),
     "redundant moduli must detect every single-channel fault"),
    (dict(redundant_moduli=2), "redundant_moduli must be an integer from 0 to 1, not 2"),
    (dict(channels=0), "channels must be an integer from 1 to 4096, not 0"),
    (dict(method="magic"), "method must be one of auto, scaled, inverse, not 'magic'"),
    (dict(input_transform="x"), "input_transform must be one of binary, residue, not 'x'"),
    (dict(convert_stages=9), "convert_stages must be None or an integer from 0 to 8 (the "
     "mixed-radix converter's levels for 4 moduli), not 9"),
    (dict(forward_reduction="lazy"),
     "forward_reduction must be one of full, partial, not 'lazy'"),
    (dict(forward_reduction="partial", input_transform="residue"),
     "forward_reduction 'partial' needs input_transform 'binary'"),
])
def test_config_refuses_with_one_line(kwargs, message):
    with pytest.raises(ValueError) as info:
        RNSTileConfig(4, 3, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------
# Automatic moduli
# --------------------------------------------------------------------------

def _brute_force_moduli(interval, width):
    """Every set of width-bit primes above 17, the fewest that cover, then the cheapest."""
    from itertools import combinations
    primes = [p for p in range(18, 1 << width) if p > (1 << (width - 1))
              and all(p % q for q in range(2, p))]
    cost = {p: reduction_cost(p, width) for p in primes}

    def covers(c):   # distinct primes are coprime; range [-(M // 2), (M + 1) // 2 - 1]
        M = prod(c)
        return -(M // 2) <= interval.lo and interval.hi <= (M + 1) // 2 - 1
    for k in range(1, len(primes) + 1):
        covering = [c for c in combinations(primes, k) if covers(c)]
        if covering:
            best = min(sum(cost[p] for p in c) for c in covering)
            return k, best, [c for c in covering if sum(cost[p] for p in c) == best]
    raise AssertionError("no set covers")


@pytest.mark.parametrize("bits,width", [(19, 8), (25, 8), (13, 7), (27, 9)])
def test_select_moduli_is_the_cheapest_smallest_covering_set(bits, width):
    iv = Interval(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    chosen = select_moduli(iv, width)
    k, cost, best = _brute_force_moduli(iv, width)
    assert len(chosen) == k and ModuliSet(chosen).covers(iv)
    assert sum(reduction_cost(p, width) for p in chosen) == cost
    assert max(prod(c) for c in best) == prod(chosen)   # ties: the largest product
    assert all(residue_width(p) == width and p > 17 for p in chosen)


def test_select_moduli_redundant_detects_single_faults():
    iv = Interval(-(1 << 18), (1 << 18) - 1)
    base, with_r = select_moduli(iv, 8), select_moduli(iv, 8, redundant_moduli=1)
    assert with_r[:-1] == base and with_r[-1] not in base
    total, size = prod(with_r), iv.hi - iv.lo + 1
    assert all(total // mi >= size for mi in with_r)


def test_reduction_cost_ranks_as_the_synthesized_pe():
    # synth_ecp5 LUT4 per ModMulPE (this repository's measurement): 251 34, 241 44, 239 47,
    # 223 52, 233 139. The plan-based cost orders them the same way.
    costs = [reduction_cost(p) for p in (251, 241, 239, 223, 233)]
    assert costs == sorted(costs) and costs[0] < costs[-1]


def test_auto_moduli_config_resolves_and_round_trips():
    cfg = RNSTileConfig(6, 3, moduli="auto", redundant_moduli=1, channels=4)
    assert cfg.moduli == select_moduli(cfg.result_interval, 8, 1)
    assert cfg.method_used == "inverse" and cfg.base_moduli.covers(cfg.result_interval)
    again = RNSTileConfig.from_json(json.loads(json.dumps(cfg.to_json())))
    assert again.moduli == cfg.moduli and again.to_json() == cfg.to_json()
    wide = RNSTileConfig(4, 3, moduli="auto-12")
    assert all(residue_width(p) == 12 for p in wide.moduli)


@pytest.mark.parametrize("moduli,message", [
    ("auto-3", "moduli 'auto-BITS' takes BITS from 6 to 16, not 'auto-3'"),
    ("auto-x", "moduli 'auto-BITS' takes BITS from 6 to 16, not 'auto-x'"),
    ("nope", "moduli preset must be one of special-8, "),
])
def test_auto_moduli_refusals(moduli, message):
    with pytest.raises(ValueError) as info:
        RNSTileConfig(4, 3, moduli=moduli)
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"^moduli 'auto-6' cannot cover the result range "):
        RNSTileConfig(4, 3, 16, 16, moduli="auto-6", channels=4096)


def test_partial_forward_reduction_derives_operands_from_the_folds():
    """Partial: V is folded only until it fits the 18-bit DSP port; the PE operand range is
    the fold's exact output range, and every value in it is congruent to V."""
    full = RNSTileConfig(6, 3, moduli="8bit-primes-4", redundant_moduli=1)
    part = full.replace(forward_reduction="partial")
    assert max(iv.width for iv in part.v_intervals) == 20       # wider than the port
    assert full.multiplier_description == "8x8 unsigned"
    assert part.multiplier_description == "18x8 signed x unsigned"
    assert part.module_name == full.module_name + "_pfr"
    for mi, ivs in zip(part.moduli, part.pe_a_intervals):
        for v_iv, a_iv in zip(part.v_intervals, ivs):
            folds, out = plan_reduction(v_iv, mi).partial(18)
            assert out == a_iv and a_iv.width <= 18
            assert bool(folds) == (v_iv.width > 18)
            x = np.array([v_iv.lo, v_iv.hi, 0, -1, 12345 % (v_iv.hi + 1)], dtype=object)
            for f in folds:                                      # the hardware's folds
                x = (x & ((1 << f.k) - 1)) + f.c * (x >> f.k)
            assert all(int(y) in a_iv for y in x)
    # F(4,3)'s 17-bit V fits the port: no fold at all.
    f43 = RNSTileConfig(4, 3, forward_reduction="partial")
    assert f43.pe_a_intervals[0] == tuple(f43.v_intervals)


@pytest.mark.parametrize("kwargs", [
    dict(m=4, r=3, moduli="8bit-primes-4", redundant_moduli=1, channels=3),
    dict(m=6, r=3, moduli="special-16"),
    dict(m=2, r=3, moduli=(251, 253, 255, 256), redundant_moduli=1),
    dict(m=10, r=3, moduli=(251, 241, 239)),
    dict(m=14, r=3, moduli="8bit-primes-4", redundant_moduli=1),
])
def test_model_equals_direct_correlation_on_extremes(kwargs):
    cfg = RNSTileConfig(**kwargs)
    model = RNSTileModel(cfg)
    rng = np.random.default_rng(0)
    lo, hi = cfg.data_interval.lo, cfg.data_interval.hi
    glo, ghi = cfg.weight_interval.lo, cfg.weight_interval.hi
    shape = (cfg.channels, cfg.n, cfg.n)
    d = np.array([np.full(shape, lo), np.full(shape, hi)] +
                 list(rng.integers(lo, hi + 1, (6,) + shape)))
    for g in (np.full((cfg.channels, cfg.r, cfg.r), glo), np.full((cfg.channels, cfg.r, cfg.r), ghi),
              rng.integers(glo, ghi + 1, (cfg.channels, cfg.r, cfg.r))):
        expected = np.array([direct_conv2d(t, g[None])[0] for t in d])
        assert (np.asarray(model(d, g), dtype=np.int64) == expected).all()
        # The residues the converter receives reconstruct the same values.
        res = model.output_residues(d, g)
        y = from_residues_crt(res[:len(cfg.base_moduli)], cfg.base_moduli)
        assert (np.asarray(y, dtype=object) == expected * cfg.scale_divisor).all()


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([WINOGEN, *args], capture_output=True, text=True)


def test_cli_generates_rns_tile(tmp_path):
    out = _cli("generate", "tile", "--m", "2", "--r", "3", "--pe", "rns", "--moduli",
               "251,253,255,256", "--redundant-moduli", "1", "-o", str(tmp_path))
    assert out.returncode == 0, out.stderr
    manifest = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert manifest["rns"]["moduli"] == [251, 253, 255, 256]
    assert manifest["rns"]["redundant"] == [256] and manifest["rns"]["method"] == "scaled"
    assert manifest["multipliers"] == 64 and manifest["multiplier_width"] == 8
    assert any(p["name"] == "error" for p in manifest["ports"])
    cfg = RNSTileConfig.from_json(manifest["parameters"])
    assert cfg.module_name == manifest["name"] and "method scaled" in out.stdout


def test_cli_generates_partially_reduced_rns_tile(tmp_path):
    out = _cli("generate", "tile", "--m", "6", "--r", "3", "--pe", "rns",
               "--rns-forward-reduction", "partial", "-o", str(tmp_path))
    assert out.returncode == 0, out.stderr
    manifest = json.loads(next(tmp_path.glob("*.json")).read_text())
    cfg = RNSTileConfig.from_json(manifest["parameters"])
    assert cfg.forward_reduction == "partial" and manifest["rns"]["forward_reduction"] == "partial"
    assert manifest["rns"]["multiplier"] == cfg.multiplier_description == "18x8 signed x unsigned"
    assert manifest["multiplier_width"] == 18 and "(18x8 signed x unsigned)" in out.stdout


def test_cli_chooses_moduli_automatically(tmp_path):
    out = _cli("generate", "tile", "--m", "4", "--r", "3", "--pe", "rns", "--moduli-preset",
               "auto", "--redundant-moduli", "1", "-o", str(tmp_path))
    assert out.returncode == 0, out.stderr
    manifest = json.loads(next(tmp_path.glob("*.json")).read_text())
    cfg = RNSTileConfig.from_json(manifest["parameters"])
    assert manifest["rns"]["moduli"] == list(cfg.moduli) == list(
        select_moduli(cfg.result_interval, 8, 1))
    assert f"moduli {list(cfg.moduli)}" in out.stdout


@pytest.mark.parametrize("args,needle", [
    (["--m", "4", "--r", "3", "--pe", "rns", "--moduli", "252,255"],
     "moduli must be pairwise coprime, not 252 and 255 (gcd 3)"),
    (["--m", "4", "--r", "3", "--pe", "rns", "--moduli", "251,253,255,256"],
     "must cover the scaled result range"),
    (["--m", "4", "--r", "3", "--pe", "rns", "--moduli", "251,253,255,256", "--rns-method",
      "inverse"], "not denominator 2 modulo 256 (gcd 2)"),
    (["--m", "4", "--r", "3", "--pe", "rns", "--moduli", "251,x"],
     "moduli must be a comma-separated list of integers, not '251,x'"),
    (["--m", "4", "--r", "3", "--pe", "rns", "--moduli-preset", "nope"],
     "--moduli-preset must be one of"),
    (["--m", "4", "--r", "3", "--moduli", "251,241"], "--moduli applies to --pe rns only"),
    (["--m", "4", "--r", "3", "--pe", "rns", "--keep-scale", "yes"],
     "--keep-scale does not apply to --pe rns"),
    (["--m", "4", "--r", "3", "--pe", "rns", "--rns-forward-reduction", "partial",
      "--rns-input-transform", "residue"],
     "--rns-forward-reduction 'partial' needs --rns-input-transform 'binary'"),
    (["--m", "4", "--r", "3", "--rns-forward-reduction", "partial"],
     "--rns-forward-reduction applies to --pe rns only"),
    (["--m", "4", "--r", "3", "--pe", "rns", "--moduli", "auto-99"],
     "moduli 'auto-BITS' takes BITS from 6 to 16, not 'auto-99'"),
])
def test_cli_refuses_invalid_rns_with_one_line(args, needle, tmp_path):
    out = _cli("generate", "tile", *args, "-o", str(tmp_path))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


def test_cli_generates_rns_layer_engine(tmp_path):
    out = _cli("generate", "conv", "--m", "2", "--r", "3", "--pe", "rns", "--moduli",
               "251,241,239,233", "--redundant-moduli", "1", "--max-cin", "5", "--max-cout", "2",
               "--max-height", "8", "--max-width", "8", "--pin", "2", "-o", str(tmp_path))
    assert out.returncode == 0, out.stderr
    manifest = json.loads(next(tmp_path.glob("*.json")).read_text())
    cfg = LayerConfig.from_json(manifest["parameters"])
    assert cfg.tile.pe_kind.modular and cfg.tile.channels == 5 and cfg.module_name == manifest["name"]
    assert manifest["rns"]["moduli"] == [251, 241, 239, 233]
    assert manifest["multipliers"] == 2 * 4 * 16            # P_in · k · n²
    ports = {p["name"]: p for p in manifest["ports"]}
    assert "error" in ports and ports["weights__payload"]["packing"]["signed"] is False
    assert ports["weights__payload"]["packing"]["elements"] == 4 * 16


@pytest.mark.parametrize("args,needle", [
    (["direct", "--pe", "rns"], "--pe rns needs a Winograd engine (generate conv), "
                                "not generate direct"),
    (["conv", "--pe", "rns", "--channels", "4"], "--channels does not apply to a layer engine"),
    # 64 channels of 8-bit F(6,3) need more than the three 8-bit primes' 24 bits.
    (["conv", "--m", "6", "--pe", "rns", "--moduli", "251,241,239", "--max-cin", "64"],
     "must cover the inverse result range"),
])
def test_cli_refuses_invalid_rns_layer_with_one_line(args, needle, tmp_path):
    engine, *rest = args
    if "--m" not in rest:
        rest = ["--m", "4", *rest]
    out = _cli("generate", engine, *rest, "--r", "3", "-o", str(tmp_path))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


# --------------------------------------------------------------------------
# RNS layer engine configuration
# --------------------------------------------------------------------------

def _rns_layer(**kwargs):
    tile = RNSTileConfig(4, 3, moduli=(251, 241, 239, 233), redundant_moduli=1, channels=6)
    return LayerConfig(tile=tile, **{"max_cin": 6, "max_cout": 3, "p_in": 2, **kwargs})


def test_rns_layer_config_derives_from_the_tile():
    cfg = _rns_layer()
    t = cfg.tile
    assert cfg.tile.pe_kind.modular and not cfg.masks_lanes and not cfg.keeps_scale
    assert cfg.stored_weight == cfg.weight_payload == (4 * 36, 8) and not cfg.weight_signed
    assert cfg.multipliers == 2 * 4 * 36 and cfg.filter_transform == "offline"
    # The exact result of 6 channels: r² · C_in products of 8-bit values.
    assert cfg.exact_output_interval == Interval(-128 * 127, 128 * 128).times(9 * 6)
    assert cfg.full_output_width == t.output_width
    assert cfg.module_name == "rnsconv_f4x4_3x3_4r1_inv_d8w8_p2x1"
    back = LayerConfig.from_json(json.loads(json.dumps(cfg.to_json())))
    assert back.tile.pe_kind.modular and back.module_name == cfg.module_name and back.tile.moduli == t.moduli


def test_rns_layer_config_refuses_a_tile_for_other_channel_counts():
    tile = RNSTileConfig(4, 3, moduli="8bit-primes-4", channels=2)
    with pytest.raises(ValueError, match=r"^tile.channels of an RNS layer must equal max_cin "
                                         r"\(4\), not 2$"):
        LayerConfig(tile=tile, max_cin=4)
    with pytest.raises(TypeError, match="tile must be a TileConfig or an RNSTileConfig, not 3"):
        LayerConfig(tile=3)


def test_rns_layer_weight_residues_and_golden():
    cfg = _rns_layer()
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, (3, 6, 3, 3))
    x = rng.integers(-128, 128, (6, 7, 9))
    U = cfg.weight_residues(w)
    assert U.shape == (3, 6, 4 * 36)
    # Element i·n² + j of filter (co, ci) is U_i[j] = (G g Gᵀ)_j modulo moduli[i], computed
    # here from the rational G of the Toom-Cook algorithm, independently of the RNS model.
    from fractions import Fraction
    G = np.array(cfg.tile.toomcook.matrices("G").G, dtype=object)
    for co, ci in ((0, 0), (2, 5)):
        exact = (G @ w[co, ci].astype(object) @ G.T).flatten()
        for i, mi in enumerate(cfg.tile.moduli):
            expect = [int(Fraction(v).numerator * pow(Fraction(v).denominator, -1, mi) % mi)
                      for v in exact]
            assert U[co, ci, i * 36:(i + 1) * 36].tolist() == expect
    run = LayerRun(7, 9, 6, 3, padding=1)
    assert (layer_golden(cfg, run, x, w) == direct_conv2d(x, w, padding=1)).all()
    with pytest.raises(ValueError, match="weight_residues needs an RNS engine, not pe='mul'"):
        LayerConfig(tile=TileConfig(2, 3)).weight_residues(w)
