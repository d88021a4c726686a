"""The operation-level layer fault model (gen/faultmodel.py) and the network campaigns
(nets/faults.py): fault-free it is the golden layer, and single flips do what the
hardware's arithmetic says they do."""

import numpy as np
import pytest

from winogen.gen.config import TileConfig
from winogen.gen.faultmodel import Fault, LayerFaultModel, SITE_CLASSES, wrap
from winogen.gen.layer import LayerConfig, LayerRun, layer_golden

# (tile arguments, layer arguments, run arguments): every core path of the model.
CASES = {
    "f23_p2x2": (dict(m=2, r=3), dict(p_in=2, p_out=2), dict(cin=5, cout=3, padding=1)),
    "f23_lavin_requant_relu": (dict(m=2, r=3, preset="lavin"), dict(p_in=2, p_out=2, output_width=8),
                               dict(cin=4, cout=4, padding=1, shift=9, relu=True)),
    "f43_p4x2_requant": (dict(m=4, r=3, preset="lavin"), dict(p_in=4, p_out=2, output_width=8),
                         dict(cin=6, cout=5, padding=0, shift=11)),
    "f33_p1x1": (dict(m=3, r=3), dict(p_in=1, p_out=1), dict(cin=2, cout=2, padding=1)),
    "direct_p2x2_requant": (dict(m=2, r=3, algorithm="direct"), dict(p_in=2, p_out=2, output_width=8),
                            dict(cin=3, cout=3, padding=1, shift=7)),
    "direct_p1x1": (dict(m=2, r=3, algorithm="direct"), dict(p_in=1, p_out=1),
                    dict(cin=3, cout=2, padding=1)),
    "f23_online": (dict(m=2, r=3, filter_transform="online"), dict(p_in=2, p_out=2),
                   dict(cin=4, cout=2, padding=1)),
    "f23_online_raw": (dict(m=2, r=3, filter_transform="online"), dict(p_in=2, p_out=2, filter_store="raw"),
                       dict(cin=4, cout=2, padding=1)),
    "f23_keep_scale": (dict(m=2, r=3, keep_scale=True), dict(p_in=2, p_out=1),
                       dict(cin=3, cout=2, padding=1)),
    "f23_adder": (dict(m=2, r=3, data_width=6, weight_width=6, pe="adder"), dict(p_in=2, p_out=2),
                  dict(cin=3, cout=2, padding=1)),
    "direct_adder": (dict(m=2, r=3, data_width=6, weight_width=6, pe="adder", algorithm="direct"),
                     dict(p_in=2, p_out=2), dict(cin=3, cout=2, padding=1)),
}


def _case(name, seed=1, batch=3):
    tk, lk, rk = CASES[name]
    tk = {"data_width": 8, "weight_width": 8, **tk}
    t = TileConfig(**tk)
    c = LayerConfig(t, max_width=16, max_height=16, max_cin=8, max_cout=8, **lk)
    run = LayerRun(height=9, width=11, **rk)
    rng = np.random.default_rng(seed)
    lo, hi = t.data_interval.lo, t.data_interval.hi
    x = rng.integers(lo, hi + 1, size=(batch, run.cin, 9, 11))
    x[0] = rng.choice([lo, hi], size=x[0].shape)          # extreme values: widths are tight
    w = rng.integers(t.weight_interval.lo, t.weight_interval.hi + 1,
                     size=(run.cout, run.cin, 3, 3))
    w[0] = t.weight_interval.lo
    return c, run, x, w


@pytest.mark.parametrize("name", sorted(CASES))
def test_fault_free_model_is_the_golden_layer(name):
    c, run, x, w = _case(name)
    model = LayerFaultModel(c, run, w)
    y, values = model.forward(x, record=True)
    golden = np.stack([layer_golden(c, run, xi, w) for xi in x])
    assert np.array_equal(y, golden)
    # Every class's values fit their register widths.
    for sname, sc in model.site_classes(len(x)).items():
        v = values[sname]
        assert v.shape == sc.shape, sname
        assert np.array_equal(wrap(v, np.broadcast_to(sc.widths, sc.shape)), v), sname
    # BER 0 places nothing.
    counts = {}
    assert np.array_equal(model.forward(x, ber=0.0, rng=np.random.default_rng(0), counts=counts),
                          golden)
    assert sum(counts.values()) == 0


def test_site_classes_follow_the_engine():
    have = {}
    for name in CASES:
        c, run, x, w = _case(name)
        have[name] = set(LayerFaultModel(c, run, w).site_classes())
        assert have[name] <= set(SITE_CLASSES)
    assert "filter_transform" not in have["f23_p2x2"]
    assert "filter_transform" in have["f23_online"] and "filter_transform" in have["f23_online_raw"]
    assert "lane_sums" not in have["f33_p1x1"]
    assert "descale" not in have["f23_keep_scale"] and "descale" in have["f23_p2x2"]
    assert "requantization" in have["f43_p4x2_requant"] and "requantization" not in have["f23_p2x2"]
    assert have["direct_p2x2_requant"] == {"products", "lane_sums", "accumulation", "requantization"}


def test_requantization_flip_changes_one_output_by_that_bit():
    c, run, x, w = _case("direct_p2x2_requant")
    model = LayerFaultModel(c, run, w)
    clean = model.forward(x)
    fault = Fault("requantization", (1, 2, 2, 3), 5, image=1)   # tile (1, 2), co 2, element 3
    y = model.forward(x, faults=[fault])
    diff = np.argwhere(y != clean)
    m = c.m
    assert diff.tolist() == [[1, 2, 1 * m + 3 // m, 2 * m + 3 % m]]
    got, want = y[tuple(diff[0])], clean[tuple(diff[0])]
    assert (int(got) ^ int(want)) & 0xFF == 1 << 5


def test_accumulator_flip_on_an_early_group_is_carried():
    """A flip after group 0 of 3 (C_in 5, P_in 2) reaches the output exactly like the same
    flip after the last group when no register wraps: the accumulator adds to it."""
    c, run, x, w = _case("f23_keep_scale")
    model = LayerFaultModel(c, run, w)
    clean = model.forward(x)
    early = model.forward(x, faults=[Fault("accumulation", (0, 0, 1, 0, 5), 3)])
    last = model.forward(x, faults=[Fault("accumulation", (0, 0, 1, 1, 5), 3)])
    assert not np.array_equal(early, clean)
    # With kept scale the output is Aᵀ acc A: the tile of co 1 changes by Aᵀ (±8 e_5) A.
    AT = np.array(c.tile.hardware.AT, dtype=np.int64)
    values = model.forward(x, record=True)[1]["accumulation"]
    for y, group in ((early, 0), (last, 1)):
        before = values[0, 0, 0, 1, group, 5]
        delta = int(wrap(before ^ 8, c.accumulator_intervals[5].width)) - int(before)
        E = np.zeros((4, 4), dtype=np.int64)
        E[1, 1] = delta
        want = clean.copy()
        want[0, 1, 0:2, 0:2] += AT @ E @ AT.T
        assert np.array_equal(y, want), group


def test_product_flip_matches_the_transform_of_its_delta():
    """Products of a multiply engine: output tile changes by Aᵀ ΔP A / D² (exact when the
    flip keeps a multiple of D² — a flip at bit >= log2 D² with D² a power of two)."""
    c, run, x, w = _case("f23_p2x2")
    model = LayerFaultModel(c, run, w)
    clean, values = model.forward(x, record=True)
    P = values["products"]
    D2 = c.tile.scale_divisor
    assert D2 & (D2 - 1) == 0
    bit = D2.bit_length() + 1
    index = (1, 1, 2, 4, 6)                        # tile (1, 1), co 2, ci 4, element 6
    y = model.forward(x, faults=[Fault("products", index, bit)])
    delta = int(wrap(P[(0,) + index] ^ (1 << bit), c.tile.product_intervals[6].width)) \
        - int(P[(0,) + index])
    E = np.zeros((4, 4), dtype=np.int64)
    E[6 // 4, 6 % 4] = delta
    AT = np.array(c.tile.hardware.AT, dtype=np.int64)
    want = clean.copy()
    want[0, 2, 2:4, 2:4] += (AT @ E @ AT.T) // D2
    assert np.array_equal(y, want)


def test_input_transform_flip_reaches_one_output_channel_group():
    c, run, x, w = _case("f23_p2x2")                  # C_out 3, P_out 2: groups {0, 1}, {2}
    model = LayerFaultModel(c, run, w)
    clean = model.forward(x)
    y = model.forward(x, faults=[Fault("input_transform", (2, 3, 0, 1, 5), 9)])
    changed = sorted({int(co) for co in np.argwhere(y != clean)[:, 1]})
    assert changed and set(changed) <= {0, 1}


def test_ber_faults_are_reproducible_and_counted():
    c, run, x, w = _case("f43_p4x2_requant")
    model = LayerFaultModel(c, run, w)
    a_counts, b_counts = {}, {}
    a = model.forward(x, ber=1e-3, rng=np.random.default_rng(7), counts=a_counts)
    b = model.forward(x, ber=1e-3, rng=np.random.default_rng(7), counts=b_counts)
    assert np.array_equal(a, b) and a_counts == b_counts
    sites = model.site_classes(len(x))
    # Binomial counts: within 5 sigma of BER · factor · bits for every class.
    for name, count in a_counts.items():
        mean = 1e-3 * sites[name].factor * sites[name].bits
        assert abs(count - mean) <= 5 * np.sqrt(mean) + 1, (name, count, mean)
    only = {}
    model.forward(x, ber=1e-3, rng=np.random.default_rng(7), classes=["products"], counts=only)
    assert set(only) == {"products"}


@pytest.mark.parametrize("fault, pattern", [
    (Fault("lane_sums", (0, 0, 0, 0, 0), 0), "site class must be one of"),
    (Fault("products", (0, 0, 0, 0, 0), 99), "bit must be from 0 to"),
])
def test_bad_faults_are_refused(fault, pattern):
    c, run, x, w = _case("f33_p1x1")
    with pytest.raises(ValueError, match=pattern):
        LayerFaultModel(c, run, w).forward(x, faults=[fault])


def test_ber_needs_rng_and_a_class_the_engine_has():
    c, run, x, w = _case("f23_p2x2")
    with pytest.raises(TypeError, match="rng is required"):
        LayerFaultModel(c, run, w).forward(x, ber=1e-3)
    with pytest.raises(ValueError, match="site class must be one of"):
        LayerFaultModel(c, run, w).forward(x, ber=1e-3, rng=np.random.default_rng(0),
                                           classes=["requantization"])


def test_network_engines_fault_free_are_the_integer_network():
    """direct, F(2,3) and F(4,3) engine models give the reference network's integers."""
    from winogen.nets import faults as F
    from winogen.nets.digits import load_digits_int8, split
    from winogen.nets.netfile import load_network, network_forward_int
    from winogen.nets.train import NETWORK
    net = load_network(NETWORK)
    x, y = load_digits_int8()
    images = split(x, y)[2][:6].astype(np.int64)
    golden = network_forward_int(net, images)
    for engine in F.ENGINES:
        config = F.engine_config(engine, list(net.layers), images.shape[1:])
        assert np.array_equal(F.network_forward(config, list(net.layers), images), golden), engine


def test_accuracy_campaign_is_reproducible():
    from winogen.nets import faults as F
    from winogen.nets.digits import load_digits_int8, split
    from winogen.nets.netfile import load_network
    from winogen.nets.train import NETWORK
    net = load_network(NETWORK)
    x, y = load_digits_int8()
    _, _, xt, yt = split(x, y)
    images, labels = xt[:8].astype(np.int64), yt[:8]
    kw = dict(engines=("f23",), bers=[0.0, 1e-4], trials=2, chunk=4, seed=3)
    a = F.accuracy_campaign(list(net.layers), images, labels, **kw)
    b = F.accuracy_campaign(list(net.layers), images, labels, **kw)
    assert a == b
    assert len(a["accuracy"]["f23"]) == 2 and a["accuracy"]["f23"][0]["trials"] == [
        float(np.mean(np.argmax(F.network_forward(
            F.engine_config("f23", list(net.layers), images.shape[1:]), list(net.layers),
            images).reshape(8, -1), axis=1) == labels))]
    assert sum(a["flips_per_image"]["f23"][1].values()) > 0


@pytest.mark.parametrize("kw", [
    dict(m=2, r=3), dict(m=4, r=3, preset="lavin"), dict(m=3, r=3, filter_transform="online"),
    dict(m=2, r=3, keep_scale=True), dict(m=2, r=3, algorithm="direct"),
    dict(m=2, r=3, data_width=6, weight_width=6, pe="adder"),
], ids=lambda kw: "_".join(f"{k}{v}" for k, v in kw.items()))
def test_tile_fault_model(kw):
    """Fault-free: the tile golden model (TileModel); a flip in the last class changes
    one output by exactly that bit."""
    from winogen.gen.faultmodel import TileFaultModel
    from winogen.gen.fixedpoint import TileModel
    t = TileConfig(**{"data_width": 8, "weight_width": 8, **kw})
    rng = np.random.default_rng(2)
    lo, hi = t.data_interval.lo, t.data_interval.hi
    d = rng.integers(lo, hi + 1, size=(40, t.n, t.n))
    d[0] = hi
    d[1] = rng.choice([lo, hi], size=(t.n, t.n))
    g = rng.integers(t.weight_interval.lo, t.weight_interval.hi + 1, size=(t.r, t.r))
    model = TileFaultModel(t, g)
    clean = model.forward(d)
    assert np.array_equal(clean, TileModel(t)(d, g[None].repeat(len(d), 0)))
    last = list(model.site_classes())[-1]
    y = model.forward(d, faults=[Fault(last, (3,), 2, image=7)])
    diff = np.argwhere(y != clean)
    assert diff.tolist() == [[7, 3 // t.m, 3 % t.m]]
    assert (int(y[7].flat[3]) ^ int(clean[7].flat[3])) & ((1 << t.output_width) - 1) == 1 << 2
    counts = {}
    model.forward(d, ber=1e-2, rng=np.random.default_rng(0), counts=counts)
    assert set(counts) == set(model.site_classes())


def _hardened(name, harden):
    c, run, x, w = _case(name)
    return c.replace(harden=harden), c, run, x, w


@pytest.mark.parametrize("name", ["f23_lavin_requant_relu", "direct_p2x2_requant"])
def test_hardened_model_tmr_masks_and_dmr_flags_one_flip(name):
    from winogen.gen.harden import engine_classes
    c0, run, x, w = _case(name)
    classes = engine_classes(c0)
    plain = LayerFaultModel(c0, run, w)
    clean = plain.forward(x)
    sites = plain.site_classes(len(x))
    rng = np.random.default_rng(3)
    for scheme in ("tmr", "dmr"):
        hard = LayerFaultModel(c0.replace(harden=tuple((k, scheme) for k in classes)), run, w)
        flags = {}
        assert np.array_equal(hard.forward(x, flags=flags), clean)
        assert not flags["beats"].any()
        for cls in classes:
            sc = sites[cls]
            for _ in range(4):
                index = tuple(int(rng.integers(0, n)) for n in sc.shape[1:])
                width = int(np.broadcast_to(sc.widths, sc.shape)[(0,) + index])
                bit, image = int(rng.integers(0, width)), int(rng.integers(0, len(x)))
                unprotected = plain.forward(x, faults=[Fault(cls, index, bit, image)])
                for copy in range(3 if scheme == "tmr" else 2):
                    flags = {}
                    y = hard.forward(x, faults=[Fault(cls, index, bit, image, copy)], flags=flags)
                    if scheme == "tmr":
                        assert np.array_equal(y, clean), (cls, copy)
                        assert not flags["beats"].any()
                        continue
                    # DMR: the first copy goes on; exactly the beat of (image, tile, group).
                    assert np.array_equal(y, unprotected if copy == 0 else clean), (cls, copy)
                    group = index[2] if cls == "input_transform" else index[2] // c0.p_out
                    want = np.zeros_like(flags["beats"])
                    want[image, index[0], index[1], group] = True
                    assert np.array_equal(flags["beats"], want), (cls, copy)


def test_hardened_model_draws_faults_in_every_copy():
    c0, run, x, w = _case("f23_p2x2")
    hard = LayerFaultModel(c0.replace(harden="products:tmr"), run, w)
    counts = {}
    hard.forward(x, ber=1e-3, rng=np.random.default_rng(1), counts=counts)
    sc = hard.site_classes(len(x))["products"]
    mean = 3 * 1e-3 * sc.factor * sc.bits
    assert abs(counts["products"] - mean) < 5 * np.sqrt(mean)
    with pytest.raises(ValueError, match="copy must be from 0 to 2"):
        hard.forward(x, faults=[Fault("products", (0, 0, 0, 0, 0), 1, 0, 3)])
    with pytest.raises(ValueError, match="copy must be from 0 to 0"):
        LayerFaultModel(c0, run, w).forward(x, faults=[Fault("products", (0, 0, 0, 0, 0), 1, 0, 1)])
