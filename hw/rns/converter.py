"""RNS conversions: forward conversion of a tile into every residue channel, and the
mixed-radix reverse conversion with the redundant-modulus check and the scale removal."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...gen.bounds import Interval
from ...gen.csd import plan_matvec
from ...gen.rns import (RNSTileConfig, converter_levels, residue_constant, residue_port_interval,
                        residue_width)
from ..constmat import ConstTransform2D, ExactDivider
from ..util import delay
from .arith import ModTransform2D, _matvec_into, forward_convert, reduce_into

__all__ = ["converter_cuts", "MixedRadixConverter", "residue_inputs", "reverse_convert",
           "INPUT_TRANSFORM_NAME", "CHANNEL_INPUT_NAME", "DESCALE_NAME"]

#: Submodule names (a fault campaign's registers are named after them).
INPUT_TRANSFORM_NAME = "input_transform"       # the shared binary V = Bᵀ d B
CHANNEL_INPUT_NAME = "ch{i}_input"             # residue input transform of channel i
DESCALE_NAME = "descale{e}"                    # exact division of output element e


def converter_cuts(moduli_count, stages):
    """The steps of :class:`MixedRadixConverter` followed by a register.

    Steps are digit 0's reduction (0), then for each digit ``j >= 1`` its linear form
    (``2j - 1``) and its reduction (``2j``), the weighted sum (``2k - 1``) and the sign,
    value and check (``2k``). Registers go between the
    :func:`~winogen.gen.rns.converter_levels` groups of similar depth (the first two
    steps together: digit 0 is a conditional subtraction), ``stages`` of them spread
    evenly, the last at the output.
    """
    # Group g (1-based) ends at step g, so a register after group g is a cut at step g.
    groups = converter_levels(moduli_count)
    return {round((s + 1) * groups / stages) for s in range(stages)}


class MixedRadixConverter(wiring.Component):
    """Reverse conversion of one value by mixed radix, with the redundant-modulus check.

    Digit ``a_j = (r_j - Σ_{l<j} a_l W_l) · W_j⁻¹ mod m_j`` (``W_j = m_0 ⋯ m_{j-1}``)
    is one constant linear form and one :class:`ModReduce`; then
    ``X = Σ a_l W_l`` over the non-redundant moduli, ``x = X - M`` when ``X ≥ ⌈M/2⌉``.
    With a redundant modulus (the last), ``error`` is set unless its digit is
    ``0`` (``x ≥ 0``) or ``m_r - 1`` (``x < 0``) and ``x`` lies in the exact result
    range: the value over all moduli must be a legitimate result.

    Parameters
    ----------
    config : RNSTileConfig

    Members
    -------
    r : In(ArrayLayout(unsigned(w_max), k))
        Residue ``i`` modulo ``moduli[i]``, any value of its ``residue_width`` bits.
    y : Out(signed(result_interval.width))
        The reconstructed value (``D²·Y`` for method "scaled"),
        ``converter_latency`` clocks later.
    error : Out(1)
        Only meaningful with a redundant modulus (else 0).
    """

    def __init__(self, config):
        if not isinstance(config, RNSTileConfig):
            raise TypeError(f"config must be an RNSTileConfig, not {config!r}")
        self.config = config
        self.latency = config.converter_latency
        w = max(config.residue_widths)
        super().__init__({"r": In(data.ArrayLayout(unsigned(w), len(config.moduli))),
                          "y": Out(signed(config.result_interval.width)),
                          "error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        mods = cfg.moduli
        k, kb = len(mods), len(cfg.base_moduli)
        # The steps of converter_cuts; a register after a step delays every live value.
        cuts = converter_cuts(k, self.latency)
        live = {("r", j): Signal(unsigned(residue_width(mi)), name=f"r{j}")
                for j, mi in enumerate(mods)}
        for j, sig in enumerate(live.values()):
            m.d.comb += sig.eq(self.r[j])

        def step_done(step, key=None, value=None):
            # ``value`` (stored under ``key``) joins the live values for the register.
            nonlocal live
            if key is not None:
                live[key] = value
            if step in cuts:
                live = {key: delay(m, sig, 1, f"{key[0]}{key[1]}_l{step}", reset_less=True)
                        for key, sig in live.items()}
            return live.pop(key) if key is not None else None

        weights = [1]
        for mi in mods:
            weights.append(weights[-1] * mi)
        for j, mj in enumerate(mods):
            inv = pow(weights[j] % mj, -1, mj) if mj > 1 else 0
            coeffs = [residue_constant(inv, mj)] + [residue_constant(-weights[l] * inv, mj)
                                                     for l in range(j)]
            ports = [residue_port_interval(mj)] + [Interval(0, mods[l] - 1) for l in range(j)]
            operands = [live.pop(("r", j))] + [live[("a", l)] for l in range(j)]
            ys, ivs = _matvec_into(m, plan_matvec([coeffs]), operands, ports, 0, f"s{j}")
            form = step_done(2 * j - 1, ("s", j), ys[0]) if j else ys[0]
            live[("a", j)] = reduce_into(m, form, ivs[0], mj, f"a{j}")
            step_done(2 * j)
        M = cfg.base_moduli.product
        ys, ivs = _matvec_into(m, plan_matvec([weights[:kb]]), [live[("a", l)] for l in range(kb)],
                               [Interval(0, mi - 1) for mi in mods[:kb]], 0, "X")
        unsigned_value = Signal(unsigned(max(M - 1, 1).bit_length()), name="X")
        m.d.comb += unsigned_value.eq(ys[0])      # 0 <= X < M: the digits are canonical
        X = step_done(2 * k - 1, ("X", ""), unsigned_value)
        # Sign, x and the check are three comparisons and a subtraction of X, side by
        # side: the check does not wait for x.
        neg = Signal(name="negative")
        m.d.comb += neg.eq(X >= (M + 1) // 2)
        value = Signal(signed(cfg.result_interval.width), name="value")
        m.d.comb += value.eq(X - Mux(neg, M, 0))
        error = Signal(name="inconsistent")
        if cfg.redundant_moduli:
            R = cfg.result_interval
            digit = live[("a", k - 1)]
            # x in [R.lo, R.hi] is X in [0, R.hi] or in [M + R.lo, M - 1] (R.lo <= 0 <= R.hi).
            m.d.comb += error.eq((digit != Mux(neg, mods[-1] - 1, 0))
                                 | ((X > R.hi) & (X < M + R.lo)))
        if 2 * k in cuts:
            value = delay(m, value, 1, "y", reset_less=True)
            error = delay(m, error, 1, "err", reset_less=True)
        m.d.comb += [self.y.eq(value), self.error.eq(error)]
        return m


def residue_inputs(m, config, tile, prefix=""):
    """Forward conversion of one input tile into every residue channel.

    Emits into ``m`` either one exact binary ``V = Bᵀ d B`` and its reduction modulo each
    modulus (``input_transform="binary"``), or the reduction of ``d`` and a
    :class:`ModTransform2D` per modulus (``"residue"``). ``tile`` holds the ``n²``
    signed elements of ``d``; returns, per modulus, the ``n²`` residues of ``V_i``
    (with ``forward_reduction="partial"``, values congruent to them in
    ``config.pe_a_intervals``), ``config.input_stages`` cycles later.
    """
    cfg, n2 = config, config.n ** 2
    residues = []
    if cfg.input_transform == "binary":
        # One exact binary V = Bᵀ d B shared by every channel.
        shared = ConstTransform2D(cfg.input_matrix, cfg.data_interval, stages=cfg.input_stages)
        m.submodules[prefix + INPUT_TRANSFORM_NAME] = shared
        m.d.comb += shared.x.eq(tile)
        for i, mi in enumerate(cfg.moduli):
            residues.append([forward_convert(m, cfg, shared.y[j], shared.output_intervals[j],
                                             mi, f"{prefix}ch{i}_v{j}") for j in range(n2)])
        return residues
    for i, mi in enumerate(cfg.moduli):
        it = ModTransform2D(cfg.transforms.BT[i], mi, stages=cfg.input_stages)
        m.submodules[prefix + CHANNEL_INPUT_NAME.format(i=i)] = it
        for j in range(n2):
            # Forward conversion: the signed input element modulo m_i.
            m.d.comb += it.x[j].eq(reduce_into(m, tile[j], cfg.data_interval, mi,
                                               f"{prefix}ch{i}_d{j}"))
        residues.append([it.y[j] for j in range(n2)])
    return residues


def reverse_convert(m, config, residues, prefix=""):
    """Reverse conversion of output residues: mixed radix, check, scale removal.

    ``residues[i][e]`` is output element ``e`` modulo ``moduli[i]``. Emits a
    :class:`MixedRadixConverter` per element (and an
    :class:`~winogen.hw.constmat.ExactDivider` for method ``"scaled"``) into ``m``;
    returns ``(values, error)``, the signed outputs and the OR of the elements'
    redundant-modulus checks, ``converter_latency + descale_stages`` cycles later.
    """
    cfg = config
    descale = cfg.descale_stages if cfg.scale_divisor != 1 else 0
    values, error = [], 0
    for e in range(len(residues[0])):
        conv = MixedRadixConverter(cfg)
        m.submodules[f"{prefix}convert{e}"] = conv
        for i in range(len(cfg.moduli)):
            m.d.comb += conv.r[i].eq(residues[i][e])
        y, err = conv.y, conv.error
        if cfg.scale_divisor != 1:
            div = ExactDivider(cfg.scale_divisor, cfg.result_interval, stages=descale,
                               output_interval=cfg.output_interval)
            m.submodules[prefix + DESCALE_NAME.format(e=e)] = div
            m.d.comb += div.x.eq(y)
            y, err = div.y, delay(m, err, descale, f"{prefix}err{e}", reset_less=True)
        values.append(y)
        error = error | err
    return values, error
