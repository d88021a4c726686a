"""The weight-specialized layer engine: the filters are built in as constant products.

:class:`SpecializedConv` is :class:`~winogen.hw.layer.engine.WinogradConv` without a
weight stream or weight memory; its core (:class:`SpecializedCore`) computes, per tile
and per Winograd-domain position ``e``, ``M[:, e] = U[:, :, e] · V[:, e]`` for all
``C_out × C_in`` channel pairs at once with one constant matrix-vector product
(:class:`~winogen.hw.constmat.ConstMatVec`: CSD shift-add trees with shared
subexpressions). A zero weight is no term of any tree, a power of two is a wire, and
every adder is as wide as the exact range of what it sums, computed from the constants.
"""

from functools import lru_cache

import numpy as np
from amaranth.hdl import Module

from ...gen.bounds import Interval, transform2d_intervals
from ...gen.csd import plan_matvec
from ..constmat import ConstMatVec, ConstTransform2D, ExactDivider
from ..pe import make_pe
from ..util import delay
from ..winoquant import RoundShift, VQuantizer
from .cores import _Core, _core_signature
from .engine import WinogradConv, _engine_signature

__all__ = ["SpecializedCore", "SpecializedConv", "hadamard_stages", "hadamard_latency",
           "position_matrices", "position_dsp", "specialized_adders"]

#: Adder levels per register of the constant products' trees.
LEVELS_PER_STAGE = 2


def _dsp_mask(config):
    from ...gen.fixedweights import dsp_products
    c = config
    return dsp_products(c.fixed_weights.core_weights(c.tile), getattr(c.tile, "dsp", "inferred"))


def position_matrices(config):
    """The constant matrix of each Winograd-domain position ``e`` (row-major ``n×n``):
    ``U[:, :, i, j]``, ``C_out × C_in`` (tuples, for :func:`~winogen.gen.csd.plan_matvec`),
    without the products the cost model puts in DSP blocks (:func:`position_dsp`)."""
    c = config
    u = np.where(_dsp_mask(c), 0, c.fixed_weights.core_weights(c.tile))
    n = c.n
    return tuple(tuple(tuple(int(v) for v in row) for row in u[:, :, e // n, e % n])
                 for e in range(n * n))


def position_dsp(config):
    """Per position, the products in DSP blocks: ``[(j, i, constant)]``
    (:func:`winogen.gen.fixedweights.dsp_products`)."""
    c = config
    u = c.fixed_weights.core_weights(c.tile)
    mask = _dsp_mask(c)
    n = c.n
    return [[(j, i, int(u[j, i, e // n, e % n])) for j in range(u.shape[0])
             for i in range(u.shape[1]) if mask[j, i, e // n, e % n]] for e in range(n * n)]


def hadamard_latency(config):
    """Cycles from V to ``M``: the trees' stages; with DSP products, the longer of the trees
    and the DSP blocks' registers, then one register adding them up."""
    t = config.tile
    if not any(position_dsp(config)):
        return hadamard_stages(config)
    return max(hadamard_stages(config), t.pe_stages) + 1


#: Largest number of CSD terms of one position's matrix whose recurring pairs are shared
#: (:func:`~winogen.gen.csd.plan_matvec`'s greedy search is slow beyond it; sharing across
#: channels of trained weights saves little).
SHARE_TERMS = 256


def _shares(matrix):
    from ...gen.csd import csd_digits
    return sum(len(csd_digits(v)) for row in matrix for v in row) <= SHARE_TERMS


@lru_cache(maxsize=64)
def _plan(matrix):
    return plan_matvec(matrix, share=_shares(matrix))


def position_plans(config):
    """The shift-add program (:class:`~winogen.gen.csd.MatVecPlan`) of each position."""
    return [_plan(matrix) for matrix in position_matrices(config)]


def hadamard_stages(config):
    """Registers of the constant products' trees: one per :data:`LEVELS_PER_STAGE` adder
    levels of the deepest position's tree (at least one)."""
    depth = max(plan.depth for plan in position_plans(config))
    return max(1, -(-depth // LEVELS_PER_STAGE))


def specialized_adders(config):
    """Adders, subtractors and negators of all positions' trees."""
    return sum(plan.adders for plan in position_plans(config))


def winograd_inputs(m, config, tiles):
    """``V`` of each input lane's tile (the input transform, then a quantized domain's
    rounding to W bits), as the dense core computes it; returns one list per lane."""
    t, q = config.tile, config.tile.quantization
    v = []
    for i in range(config.p_in):
        it = ConstTransform2D(t.hardware.BT, t.data_interval, stages=t.input_stages)
        m.submodules[f"input_transform{i}"] = it
        m.d.comb += it.x.eq(tiles[i])
        if q:
            vq = VQuantizer(q)
            m.submodules[f"quantizer{i}"] = vq
            m.d.comb += vq.x.eq(it.y)
            v.append(vq.y)
        else:
            v.append(it.y)
    return v


def winograd_outputs(m, config, j, sums, intervals, result):
    """Output lane ``j``: ``Aᵀ M A`` of the Winograd-domain sums ``sums`` (ranges
    ``intervals``; a quantized domain's alignment shifts first), then the exact scale
    removal or the quantized rounding, into elements ``j·m² ..`` of ``result``."""
    c, t = config, config.tile
    hw, q = t.hardware, t.quantization
    n2, mm = c.n ** 2, c.m ** 2
    align = q.align_shifts if q else [0] * n2
    ot_in = q.aligned_intervals(intervals) if q else intervals
    ot = ConstTransform2D(hw.AT, ot_in, stages=t.output_stages)
    m.submodules[f"output_transform{j}"] = ot
    for e in range(n2):
        m.d.comb += ot.x[e].eq(sums[e] << align[e] if q else sums[e])
    scaled = (q.transformed_intervals(intervals) if q
              else transform2d_intervals(hw.AT, intervals))
    for e in range(mm):
        out = result[j * mm + e]
        if q and t.removes_scale:
            rs = RoundShift(scaled[e], q.output_shift, stages=t.descale_stages)
            m.submodules[f"descale_o{j}_e{e}"] = rs
            m.d.comb += [rs.x.eq(ot.y[e]), out.eq(rs.y)]
        elif q:
            m.d.comb += out.eq(ot.y[e] << max(q.output_exponent, 0))
        elif t.removes_scale:
            div = ExactDivider(t.scale_divisor, scaled[e], stages=t.descale_stages,
                               output_interval=c.exact_output_interval)
            m.submodules[f"descale_o{j}_e{e}"] = div
            m.d.comb += [div.x.eq(ot.y[e]), out.eq(div.y)]
        else:
            m.d.comb += out.eq(ot.y[e])


class SpecializedCore(_Core):
    """Weight-specialized Winograd core: ``C_in`` input transforms, one constant
    ``C_out × C_in`` matrix-vector product per position, ``C_out`` output transforms and
    the exact scale removal (or the quantized domain's alignment and rounding).

    One step per tile (every channel pair at once): no channel accumulation.

    Parameters
    ----------
    config : LayerConfig
        With ``fixed_weights``.
    """

    algorithm = "winograd"

    def __init__(self, config):
        if not config.specialized:
            raise ValueError("SpecializedCore needs a LayerConfig with fixed_weights, not "
                             "fixed_weights=None")
        super().__init__(config)

    @classmethod
    def _signature(cls, config):
        members = _core_signature(config)
        del members["weights"]
        return members

    @classmethod
    def pipeline_latency(cls, config):
        t = config.tile
        return (t.input_stages + hadamard_latency(config) + t.output_stages
                + (t.descale_stages if t.removes_scale else 0))

    @classmethod
    def fault_registers(cls, config):
        raise ValueError("fault sites cover programmable engines, not a weight-specialized "
                         "one (fixed_weights)")

    def elaborate(self, platform):
        m = Module()
        c = self.config
        t = c.tile
        n2 = c.n ** 2

        v = winograd_inputs(m, c, self.tiles)

        # M[j][e] = sum_i U[j, i, e] V[i][e]: one constant tree per position, and the
        # products the cost model gives DSP blocks added after it.
        stages = hadamard_stages(c)
        latency = hadamard_latency(c)
        dsp = position_dsp(c)
        sums = [[None] * n2 for _ in range(c.p_out)]
        sum_iv = [[None] * n2 for _ in range(c.p_out)]
        for e, matrix in enumerate(position_matrices(c)):
            tree = ConstMatVec(matrix, [t.pe_a_intervals[e]] * c.p_in, stages=stages,
                               share=_shares(matrix))
            m.submodules[f"products_e{e}"] = tree
            for i in range(c.p_in):
                m.d.comb += tree.x[i].eq(v[i][e])
            if not dsp[e]:
                for j in range(c.p_out):
                    sums[j][e] = delay(m, tree.y[j], latency - stages, f"m_o{j}_e{e}",
                                       reset_less=True) if latency > stages else tree.y[j]
                    sum_iv[j][e] = tree.output_intervals[j]
                continue
            # The DSP blocks' products, aligned with the tree, then one adder tree per row.
            front = latency - 1
            terms = [delay(m, tree.y[j], front - stages, f"tree_o{j}_e{e}", reset_less=True)
                     for j in range(c.p_out)]
            term_iv = list(tree.output_intervals)
            rows = [[0] * (c.p_out + len(dsp[e])) for _ in range(c.p_out)]
            for j in range(c.p_out):
                rows[j][j] = 1
            for k, (j, i, constant) in enumerate(dsp[e]):
                pe = make_pe(t.pe, t.pe_a_intervals[e], Interval(constant, constant),
                             stages=t.pe_stages, dsp=t.dsp)
                m.submodules[f"dsp_e{e}_o{j}_i{i}"] = pe
                m.d.comb += [pe.a.eq(v[i][e]), pe.b.eq(constant)]
                terms.append(delay(m, pe.p, front - t.pe_stages, f"dsp_e{e}_o{j}_i{i}",
                                   reset_less=True))
                term_iv.append(pe.output_interval)
                rows[j][c.p_out + k] = 1
            adder = ConstMatVec(rows, term_iv, stages=1)
            m.submodules[f"dsp_sum_e{e}"] = adder
            for k, term in enumerate(terms):
                m.d.comb += adder.x[k].eq(term)
            for j in range(c.p_out):
                sums[j][e] = adder.y[j]
                sum_iv[j][e] = adder.output_intervals[j]

        for j in range(c.p_out):
            winograd_outputs(m, c, j, sums[j], sum_iv[j], self.result)
        m.d.comb += self.result_valid.eq(
            delay(m, self.valid & self.last, self.latency, "result_valid", reset_less=False))
        return m


class SpecializedConv(WinogradConv):
    """Weight-specialized Winograd convolution-layer engine: :class:`WinogradConv`'s
    ``config``, ``activations``, ``outputs``, ``outputs_last`` and ``status``, no
    ``weights`` stream.

    Parameters
    ----------
    config : LayerConfig
        With ``fixed_weights`` (kept as ``layer_config``).
    """

    core_class = SpecializedCore

    @classmethod
    def _check(cls, config):
        super()._check(config)
        if not config.specialized:
            raise ValueError("SpecializedConv needs a LayerConfig with fixed_weights, not "
                             "fixed_weights=None")

    @classmethod
    def _signature(cls, config):
        members = _engine_signature(config)
        del members["weights"]
        return members

    def _weight_store(self, m):
        return None

    def _weight_loader(self, m, wstore, slots):
        # The filters are built in: a filled slot's weights are "loaded".
        for s in range(2):
            m.d.sync += slots.weights_loaded[s].eq(slots.valid[s])

    def _connect_weights(self, m, core, wstore, step):
        pass
