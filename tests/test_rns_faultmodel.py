"""The RNS tile engine's operation-level fault model (issue 18): fault-free it is
:class:`~winogen.gen.rns.RNSTileModel`; a single flip confined to one residue channel is
flagged by the redundant-modulus check exactly when it changes that channel's output
residues (computed here from the residue arithmetic), and never passes silently."""

import numpy as np
import pytest

from winogen.gen.faultmodel import Fault
from winogen.gen.rns import RNSTileConfig, plan_reduction
from winogen.gen.rns.faultmodel import RNS_SITE_CLASSES, RNSTileFaultModel, hardware_reduce

CONFIGS = {
    "f43_r1": RNSTileConfig(4, 3, redundant_moduli=1),
    "f23_residue_c3_r1": RNSTileConfig(2, 3, input_transform="residue", channels=3,
                                       redundant_moduli=1),
    "f23_c2_r1": RNSTileConfig(2, 3, channels=2, redundant_moduli=1),
    "f23_scaled_special": RNSTileConfig(2, 3, moduli=(255, 256, 257), method="scaled"),
    "f43_plain": RNSTileConfig(4, 3),
}

#: Classes confined to one residue channel.
PER_CHANNEL = ("forward_conversion", "products", "accumulation", "output_transform")


def _data(cfg, tiles, seed):
    rng = np.random.default_rng(seed)
    dv, wv = cfg.data_interval, cfg.weight_interval
    g = rng.integers(wv.lo, wv.hi + 1, (cfg.channels, cfg.r, cfg.r))
    d = rng.integers(dv.lo, dv.hi + 1, (tiles, cfg.channels, cfg.n, cfg.n))
    d[0], d[1] = dv.lo, dv.hi                   # the range's ends
    return g, d


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fault_free_is_the_engine_model(name):
    cfg = CONFIGS[name]
    g, d = _data(cfg, 60, 1)
    flags = {}
    y = RNSTileFaultModel(cfg, g).forward(d, flags=flags)
    assert np.array_equal(y, np.asarray(cfg.golden_model()(d, g)))
    assert not flags["error"].any()


def test_hardware_reduce_is_the_plan():
    """In its interval the hardware reduction is x mod m (and the plan's own evaluation);
    outside it, a value of the interval's width still gives a residue's bits."""
    from winogen.gen.bounds import Interval
    for iv, m in ((Interval(-700, 900), 251), (Interval(-3000, 2500), 241),
                  (Interval(-40, 5000), 257)):
        x = np.arange(iv.lo, iv.hi + 1)
        plan = plan_reduction(iv, m)
        assert np.array_equal(hardware_reduce(x, iv, m), x % m)
        assert [plan.evaluate(int(v)) for v in x[::97]] == list(x[::97] % m)
        wide = np.arange(-(1 << (iv.width - 1)), 1 << (iv.width - 1))
        out = hardware_reduce(wide, iv, m)
        assert out.min() >= 0 and out.max() < (1 << plan.width)


def _effective(cfg, g, d, site, fault, clean_value):
    """Whether the flip changes its channel's output residues: the residue arithmetic of
    the engine, written out here (``delta`` pushed through the channel's ``Aᵀ · A``)."""
    model = cfg.golden_model()
    i = fault.index[0]
    mi = cfg.moduli[i]
    n, mo = cfg.n, cfg.m
    new = clean_value ^ (1 << fault.bit)
    delta = new - clean_value
    AT = np.array(model.AT[i], dtype=object)
    if site == "output_transform":
        return delta % mi != 0
    c, e = fault.index[1], fault.index[2]
    dP = np.zeros((n, n), dtype=object)
    if site in ("products", "accumulation"):
        dP.flat[e] = delta
    else:                                           # V_i: the PE multiplies it by U_i
        U = np.asarray(model.filter_residues(g))[i, c].reshape(-1)
        dP.flat[e] = delta * int(U[e])
    dY = AT.dot(dP).dot(AT.T) % mi
    assert dY.shape == (mo, mo)
    return bool(np.any(dY != 0))


def _clean_values(cfg, g, d):
    """Per class, the fault-free register values (B, k, C, n²) / (B, k, m²), from
    :class:`RNSTileModel`'s residues."""
    model = cfg.golden_model()
    mods = np.array(cfg.moduli, dtype=object).reshape(-1, 1, 1, 1)
    V = np.asarray(model.input_residues(d), dtype=object).reshape(len(cfg.moduli), len(d),
                                                                   cfg.channels, -1)
    U = np.asarray(model.filter_residues(g), dtype=object).reshape(len(cfg.moduli), 1,
                                                                   cfg.channels, -1)
    P = U * V % mods
    acc = np.cumsum(P, axis=2) % mods
    Y = np.asarray(model.output_residues(d, g), dtype=object).reshape(len(cfg.moduli),
                                                                      len(d), -1)
    move = lambda a: np.moveaxis(a, 0, 1).astype(np.int64)
    return {"forward_conversion": move(V), "input_transform": move(V), "products": move(P),
            "accumulation": move(acc), "output_transform": move(Y)}


@pytest.mark.parametrize("name", ["f43_r1", "f23_residue_c3_r1", "f23_c2_r1"])
def test_a_single_channel_flip_is_flagged_exactly_when_it_matters(name):
    """One flip per output tile, in every per-channel class, every channel (the redundant
    one included), uniformly over the register's bits: the check flags a tile exactly
    when the flip changes its channel's output residues, and no tile is silently wrong."""
    cfg = CONFIGS[name]
    tiles = 300
    g, d = _data(cfg, tiles, 2)
    fm = RNSTileFaultModel(cfg, g)
    clean = fm.forward(d)
    values = _clean_values(cfg, g, d)
    rng = np.random.default_rng(3)
    sites = fm.site_classes(tiles)
    per_channel = [k for k in sites if k in PER_CHANNEL or
                   (k == "input_transform" and cfg.input_transform == "residue")]
    assert len(per_channel) >= 3
    tally = {}
    for site in per_channel:
        sc = sites[site]
        faults, effective = [], []
        for t in range(tiles):
            index = tuple(int(rng.integers(s)) for s in sc.shape[1:])
            width = int(np.broadcast_to(sc.widths, sc.shape)[(t,) + index])
            f = Fault(site, index, int(rng.integers(width)), t)
            faults.append(f)
            effective.append(_effective(cfg, g, d, site, f, int(values[site][(t,) + index])))
        flags = {}
        y = fm.forward(d, faults=faults, flags=flags)
        wrong = np.any(y != clean, axis=(1, 2))
        effective = np.array(effective)
        assert np.array_equal(flags["error"], effective), site
        assert not np.any(wrong & ~flags["error"]), f"{site}: silent data corruption"
        tally[site] = (int(effective.sum()), int(wrong.sum()))
        assert effective.sum() > tiles // 2, site
    print(tally)


def test_shared_and_unchecked_sites_classify():
    """Faults outside the residue channels (the shared binary V; no redundant modulus) are
    classified by the same forward pass: without a check nothing is detected."""
    cfg = CONFIGS["f23_scaled_special"]
    g, d = _data(cfg, 200, 4)
    fm = RNSTileFaultModel(cfg, g)
    clean = fm.forward(d)
    rng = np.random.default_rng(5)
    for site in fm.site_classes(1):
        flags = {}
        y = fm.forward(d, ber=2e-3, rng=rng, classes=[site], flags=flags)
        assert not flags["error"].any(), site
    f = Fault("input_transform", (0, 5), 0, 7)
    y = fm.forward(d, faults=[f])
    # V's element 5 (row 1, column 1) reaches every output of F(2,3): one LSB changes them.
    assert np.any(y[7] != clean[7]) and np.array_equal(np.delete(y, 7, 0), np.delete(clean, 7, 0))


def test_refuses():
    with pytest.raises(TypeError, match="config must be an RNSTileConfig"):
        RNSTileFaultModel(object(), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="forward_reduction 'full', not 'partial'"):
        RNSTileFaultModel(RNSTileConfig(4, 3, forward_reduction="partial"), np.zeros((3, 3)))
    fm = RNSTileFaultModel(CONFIGS["f43_plain"], np.zeros((3, 3), dtype=int))
    with pytest.raises(ValueError, match="site class must be one of"):
        fm.forward(np.zeros((1, 6, 6), dtype=int), faults=[Fault("descale", (0,), 0)])
    assert set(fm.site_classes()) <= set(RNS_SITE_CLASSES)
