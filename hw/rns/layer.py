"""The RNS layer engine: :class:`RNSConv`, the layer engine's control, memories and
scheduler around :class:`RNSCore`, which reuses the RNS tile's blocks
(:func:`~winogen.hw.rns.converter.residue_inputs`,
:func:`~winogen.hw.rns.converter.reverse_convert`) and accumulates modulo each modulus.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib.wiring import Out

from ...gen.rns import RNSTileConfig, residue_port_interval, residue_width
from ..constmat import ConstMatVec
from ..layer.cores import WinogradCore, lane_sum_stages
from ..layer.engine import _LayerEngine
from ..layer.layouts import _check_config
from ..util import delay
from .arith import ModMulPE, ModTransform2D, reduce_into
from .converter import residue_inputs, reverse_convert
from .manifest import rns_manifest_section

__all__ = ["RNSCore", "RNSConv", "rns_layer_fields"]


class RNSCore(WinogradCore):
    """RNS Winograd core: per input lane a forward conversion into every residue channel,
    ``P_out·P_in·k·n²`` modular multipliers, lane sums and channel-group accumulation
    modulo each modulus, then per output lane ``k`` modular output transforms and a
    reverse converter per output element.

    Each modulus's accumulator takes ``(Σ_lanes P + (first ? 0 : acc)) mod m_i`` in one
    reduction. With a redundant modulus, ``result_error`` (valid with ``result``) is the
    OR of the step's converter checks.

    Parameters
    ----------
    config : LayerConfig
        With an :class:`~winogen.gen.rns.RNSTileConfig` tile.

    Members
    -------
    result_error : Out(1)
        Besides the :class:`_Core` members.
    """

    def __init__(self, config):
        if not isinstance(_check_config(config).tile, RNSTileConfig):
            raise ValueError(f"config.tile must be an RNSTileConfig for RNSCore, "
                             f"not {config.tile!r}")
        super().__init__(config)

    @classmethod
    def _signature(cls, config):
        return {**super()._signature(config), "result_error": Out(1)}

    @classmethod
    def pipeline_latency(cls, config):
        t = config.tile
        return (t.input_stages + t.pe_stages + lane_sum_stages(config) + 1 + t.output_stages
                + t.converter_latency + (t.descale_stages if t.scale_divisor != 1 else 0))

    def elaborate(self, platform):
        m = Module()
        c = self.config
        t = c.tile
        n2, mm, k = c.n ** 2, c.m ** 2, len(t.moduli)
        p_in, p_out = c.p_in, c.p_out

        # v[i][mod][e]: lane i's V residues.
        v = [residue_inputs(m, t, self.tiles[i], f"lane{i}_") for i in range(p_in)]

        sum_stages = lane_sum_stages(c)
        front = t.input_stages + t.pe_stages + sum_stages
        valid = delay(m, self.valid, front, "valid", reset_less=False)
        first = delay(m, self.first, front, "first", reset_less=False)
        last = delay(m, self.last, front, "last", reset_less=False)
        acc_valid = Signal(name="acc_valid")
        m.d.sync += acc_valid.eq(valid & last)

        outputs = []                    # per output lane j: per modulus, m² residues
        for j in range(p_out):
            per_modulus = []
            for mod, mi in enumerate(t.moduli):
                port = residue_port_interval(mi)
                accumulated = []
                for e in range(n2):
                    terms = []
                    for i in range(p_in):
                        pe = ModMulPE(mi, stages=t.pe_stages, a_interval=t.pe_a_intervals[mod][e])
                        m.submodules[f"pe_o{j}_i{i}_ch{mod}_{e}"] = pe
                        m.d.comb += [pe.a.eq(v[i][mod][e]),
                                     pe.b.eq(self.weights[j * p_in + i][mod * n2 + e])]
                        terms.append(pe.p)
                    if p_in == 1:
                        lane_sum, lane_iv = terms[0], port
                    else:
                        tree = ConstMatVec([[1] * p_in], [port] * p_in, stages=sum_stages)
                        m.submodules[f"lane_sum_o{j}_ch{mod}_{e}"] = tree
                        for i, term in enumerate(terms):
                            m.d.comb += tree.x[i].eq(term)
                        lane_sum, lane_iv = tree.y[0], tree.output_intervals[0]
                    acc = Signal(unsigned(residue_width(mi)), name=f"acc_o{j}_ch{mod}_{e}",
                                 reset_less=True)
                    total = reduce_into(m, lane_sum + Mux(first, 0, acc), lane_iv + port, mi,
                                        f"sum_o{j}_ch{mod}_{e}")
                    with m.If(valid):
                        m.d.sync += acc.eq(total)
                    accumulated.append(acc)
                ot = ModTransform2D(t.transforms.AT[mod], mi, stages=t.output_stages)
                m.submodules[f"output_transform_o{j}_ch{mod}"] = ot
                for e in range(n2):
                    m.d.comb += ot.x[e].eq(accumulated[e])
                per_modulus.append([ot.y[e] for e in range(mm)])
            outputs.append(per_modulus)

        error = 0
        for j in range(p_out):
            values, err = reverse_convert(m, t, outputs[j], f"o{j}_")
            for e, y in enumerate(values):
                m.d.comb += self.result[j * mm + e].eq(y)
            error = error | err
        back = t.output_stages + t.converter_latency + (
            t.descale_stages if t.scale_divisor != 1 else 0)
        result_valid = delay(m, acc_valid, back, "result_valid", reset_less=False)
        m.d.comb += [self.result_valid.eq(result_valid),
                     self.result_error.eq(error)]
        return m


class RNSConv(_LayerEngine):
    """RNS Winograd convolution-layer engine, with :class:`WinogradConv`'s streams.

    The weight stream carries each filter's residues ``U_i = G_i g G_iᵀ mod m_i``
    (unsigned; :meth:`~winogen.gen.layer.LayerConfig.weight_residues`), and the
    outputs are the exact correlation (or its requantization).

    Parameters
    ----------
    config : LayerConfig
        With an :class:`~winogen.gen.rns.RNSTileConfig` tile whose ``channels`` is
        ``max_cin``.

    Members
    -------
    config, activations, outputs, status
        As :class:`WinogradConv`.
    weights : In(stream.Signature(ArrayLayout(unsigned(w), k*n*n)))
    error : Out(1)
        With a redundant modulus: valid with ``outputs.valid``; set when any output
        of the beat failed the redundant-modulus check (a fault in one residue channel).
    """

    algorithm = "winograd"
    core_class = RNSCore

    @classmethod
    def _check(cls, config):
        super()._check(config)
        if not isinstance(config.tile, RNSTileConfig):
            raise ValueError(f"config.tile must be an RNSTileConfig for RNSConv, "
                             f"not {config.tile!r}")

    @classmethod
    def _signature(cls, config):
        members = super()._signature(config)
        if config.tile.redundant_moduli:
            members["error"] = Out(1)
        return members


def rns_layer_fields(config):
    """The RNS parts of a layer engine's manifest (see :func:`~winogen.hw.layer.layer_manifest`)."""
    t = config.tile
    return {
        "algorithm": {},
        "sections": {"rns": rns_manifest_section(t)},
        "weight_format": ("residues U_i = G_i g G_i^T mod m_i, element i*n*n + j for modulus i "
                          "and row-major index j, unsigned (winogen.gen.layer.LayerConfig."
                          "weight_residues)"),
        "function": (f"correlation with zero padding (PyTorch conv2d, stride 1), exact: computed "
                     f"modulo {list(t.moduli)} and reverse converted"),
        "multipliers": config.multipliers,
        "scale": {"divisor": t.scale_divisor, "kept": False, "removal":
                  "none" if t.scale_divisor == 1 else "exact division after reverse conversion"},
    }
