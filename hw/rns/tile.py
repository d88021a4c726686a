"""The RNS tile engine, :class:`RNSTile`."""

from amaranth.hdl import EnableInserter, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...gen.rns import RNSTileConfig, residue_port_interval, residue_width
from .arith import ModMulPE, ModTransform2D, reduce_into
from .converter import residue_inputs, reverse_convert

__all__ = ["RNSTile", "PE_NAME", "ACC_NAME", "OUTPUT_NAME"]

#: Submodule and register names of the datapath (a fault campaign's registers too).
PE_NAME = "ch{i}_pe{j}"
ACC_NAME = "ch{i}_acc{j}"
OUTPUT_NAME = "ch{i}_output"


def _signature(config):
    count, width = config.weight_payload
    members = {
        "tiles": In(stream.Signature(data.ArrayLayout(signed(config.data_width), config.n ** 2))),
        "weights": In(stream.Signature(data.ArrayLayout(unsigned(width), count))),
        "outputs": Out(stream.Signature(data.ArrayLayout(signed(config.output_width),
                                                         config.m ** 2))),
    }
    if config.redundant_moduli:
        members["error"] = Out(1)
    return members


class RNSTile(wiring.Component):
    """RNS Winograd F(m×m, r×r) tile engine: ``k·n²`` modular multipliers.

    Parameters
    ----------
    config : RNSTileConfig

    Members
    -------
    tiles : In(stream.Signature(ArrayLayout(signed(data_width), n*n)))
        One input tile per beat, row-major; with ``channels > 1`` the tiles of
        channels 0 … C-1 of one output tile are consecutive beats.
    weights : In(stream.Signature(ArrayLayout(unsigned(w), k*C*n*n)))
        Offline ``U_i[c] = G_i g_c G_iᵀ mod m_i``; element ``(i·C + c)·n² + j``
        (:meth:`~winogen.gen.rns.RNSTileModel.weight_beat`). A beat applies to
        every output tile whose first channel is accepted after it. It is accepted only
        between channel groups: offered mid-group, it waits while the group's remaining
        tiles are accepted; offered between groups, it goes first (no tile is accepted
        while it is offered).
    outputs : Out(stream.Signature(ArrayLayout(signed(output_width), m*m)))
        ``Y``, row-major: the exact correlation, summed over channels.
    error : Out(1)
        With a redundant modulus: valid with ``outputs.valid``; set when the
        residues of that output tile are inconsistent (a fault).
    """

    def __init__(self, config):
        if not isinstance(config, RNSTileConfig):
            raise TypeError(f"config must be an RNSTileConfig, not {config!r}")
        self.config = config
        super().__init__(_signature(config))

    @property
    def latency(self):
        return self.config.latency

    @classmethod
    def fault_registers(cls, config):
        """The registers that hold the values of the RNS fault model
        (:class:`~winogen.gen.rns.faultmodel.RNSTileFaultModel`), by site class.

        In the format of :meth:`winogen.hw.tile.WinogradTile.fault_registers`; a register of
        a residue channel names its ``modulus`` (channel index). ``step`` is ``"each"``
        (every tile beat: the input channel's values) or ``"last"`` (the output tile's last
        channel beat: its output residues and descaled outputs); delays count the edges at
        which the datapath advances from that beat's transfer.
        """
        from ..constmat import divider_output_register, transform2d_output_registers
        from ..layer.cores import _grouped, _register, _site
        from ..tile import DATAPATH_NAME
        from .arith import ModMulPE, ModTransform2D
        from .converter import CHANNEL_INPUT_NAME, DESCALE_NAME, INPUT_TRANSFORM_NAME
        c = config
        n2, mm, k = c.n ** 2, c.m ** 2, len(c.moduli)
        ins, pes = c.input_stages, c.pe_stages
        dp = DATAPATH_NAME
        sites = {}

        def residue(path, i, e):
            return {**_register(path, residue_width(c.moduli[i]), 0, [(e, 0)]), "modulus": i}

        if c.input_transform == "binary":
            regs = [_register(f"{dp}.{INPUT_TRANSFORM_NAME}.{sub}.{sig}", width, 0, values)
                    for (sub, sig), width, values in _grouped(
                        [None if r is None else ((r[0], r[1]), r[2], r[3])
                         for r in transform2d_output_registers(c.input_matrix,
                                                               c.data_interval, ins)])]
            if regs:
                sites["input_transform"] = _site(ins, "each", regs)
            name = ModMulPE.operand_register(pes)
            if name is not None:
                sites["forward_conversion"] = _site(ins + 1, "each", [
                    residue(f"{dp}.{PE_NAME.format(i=i, j=j)}.{name}", i, j)
                    for i in range(k) for j in range(n2)])
        else:
            regs = [residue(f"{dp}.{CHANNEL_INPUT_NAME.format(i=i)}.{name}", i, j)
                    for i in range(k) for j in range(n2)
                    for name in [ModTransform2D.output_register(ins, j, c.n)] if name]
            if regs:
                sites["input_transform"] = _site(ins, "each", regs)
        name = ModMulPE.output_register(pes)
        if name is not None:
            sites["products"] = _site(ins + pes, "each", [
                residue(f"{dp}.{PE_NAME.format(i=i, j=j)}.{name}", i, j)
                for i in range(k) for j in range(n2)])
        at = ins + pes
        if c.channels > 1:
            at += 1
            sites["accumulation"] = _site(at, "each", [
                residue(f"{dp}.{ACC_NAME.format(i=i, j=j)}", i, j)
                for i in range(k) for j in range(n2)])
        regs = [residue(f"{dp}.{OUTPUT_NAME.format(i=i)}.{name}", i, e)
                for i in range(k) for e in range(mm)
                for name in [ModTransform2D.output_register(c.output_stages, e, c.m)] if name]
        if regs:
            sites["output_transform"] = _site(at + c.output_stages, "last", regs)
        if c.scale_divisor != 1:
            reg = divider_output_register(c.scale_divisor, c.output_interval.width,
                                          c.descale_stages)
            if reg is not None:
                sites["descale"] = _site(c.latency, "last", [
                    _register(f"{dp}.{DESCALE_NAME.format(e=e)}.{reg[0]}", reg[1], 0,
                              [(e, reg[2])]) for e in range(mm)])
        return sites

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        m.d.comb += en.eq(~self.outputs.valid | self.outputs.ready)
        tile_accept, weight_accept, at_pe_in, at_pe_out = self._handshake(m, en)
        head = self._filter_bank(m, en, weight_accept, at_pe_in)
        acc_first = self._back_chain(m, en, at_pe_out)
        dp = Module()
        result, error = self._datapath(dp, head, at_pe_out, acc_first)
        m.submodules.datapath = EnableInserter(en)(dp)
        m.d.comb += self.outputs.payload.eq(result)
        if self.config.redundant_moduli:
            m.d.comb += self.error.eq(error)
        return m

    def _handshake(self, m, en):
        """The front valid chain (input transform, PEs) and the two streams' ``ready``.

        Returns ``(tile_accept, weight_accept, at_pe_in, at_pe_out)``: the transfers, and
        the valid bits of the tiles entering and leaving the PEs.
        """
        cfg = self.config
        C = cfg.channels
        tile_accept, weight_accept = Signal(), Signal()
        front_len = cfg.input_stages + cfg.pe_stages
        front = Signal(front_len, name="front_valid") if front_len else None
        if front_len:
            with m.If(en):
                m.d.sync += front.eq((front << 1) | tile_accept)

        def front_at(stages):
            return front[stages - 1] if stages else tile_accept

        at_pe_in = front_at(cfg.input_stages)
        at_pe_out = front_at(front_len)

        # Input-side channel position: weights load only at output-tile boundaries.
        in_first = Signal(init=1)
        if C > 1:
            in_pos = Signal(range(C), name="in_pos")
            with m.If(tile_accept):
                m.d.sync += in_pos.eq(Mux(in_pos == C - 1, 0, in_pos + 1))
            m.d.comb += in_first.eq(in_pos == 0)
        waiting = front[:cfg.input_stages].any() if cfg.input_stages else 0
        # Ordering rule: a weight beat is accepted only between channel groups, and it has
        # priority there; inside a group tiles keep flowing whatever weights.valid says,
        # so a weight beat offered mid-group waits for the group to close instead of
        # blocking the tiles that would close it (which deadlocked).
        weight_blocks_tiles = self.weights.valid & in_first if C > 1 else self.weights.valid
        m.d.comb += [
            self.weights.ready.eq(~waiting & in_first),
            weight_accept.eq(self.weights.valid & self.weights.ready),
            self.tiles.ready.eq(en & ~weight_blocks_tiles),
            tile_accept.eq(self.tiles.valid & self.tiles.ready),
        ]
        return tile_accept, weight_accept, at_pe_in, at_pe_out

    def _filter_bank(self, m, en, weight_accept, at_pe_in):
        """One block of ``k·n²`` residues per input channel; returns the head, which feeds
        the PEs. The bank rotates as each tile enters them."""
        cfg = self.config
        n2, C, k = cfg.n ** 2, cfg.channels, len(cfg.moduli)
        count, width = cfg.weight_payload
        bank = [Signal(data.ArrayLayout(unsigned(width), k * n2), name=f"filter{c}")
                for c in range(C)]
        with m.If(weight_accept):
            for c in range(C):
                for i in range(k):
                    for j in range(n2):
                        m.d.sync += bank[c][i * n2 + j].eq(
                            self.weights.payload[(i * C + c) * n2 + j])
        if C > 1:
            with m.Elif(en & at_pe_in):
                for c in range(C):
                    m.d.sync += bank[c].eq(bank[(c + 1) % C])
        return bank[0]

    def _back_chain(self, m, en, at_pe_out):
        """The channel position of the accumulators and the back valid chain (accumulator,
        output transform, converter, descale), which drives ``outputs.valid``.

        Returns ``acc_first``: the tile leaving the PEs is a group's first channel.
        """
        cfg = self.config
        C = cfg.channels
        acc_first, acc_last = Signal(), Signal()
        if C > 1:
            acc_pos = Signal(range(C), name="acc_pos")
            with m.If(en & at_pe_out):
                m.d.sync += acc_pos.eq(Mux(acc_pos == C - 1, 0, acc_pos + 1))
            m.d.comb += [acc_first.eq(acc_pos == 0), acc_last.eq(acc_pos == C - 1)]
            back_in = at_pe_out & acc_last
        else:
            back_in = at_pe_out
        descale = cfg.descale_stages if cfg.scale_divisor != 1 else 0
        back_len = int(C > 1) + cfg.output_stages + cfg.converter_latency + descale
        if back_len:
            back = Signal(back_len, name="back_valid")
            with m.If(en):
                m.d.sync += back.eq((back << 1) | back_in)
            m.d.comb += self.outputs.valid.eq(back[-1])
        else:
            m.d.comb += self.outputs.valid.eq(back_in)
        return acc_first

    def _datapath(self, dp, head, at_pe_out, acc_first):
        """Forward conversion, modular PEs, accumulation, output transforms and reverse
        conversion into ``dp`` (stalled from outside); returns ``(result, error)``."""
        cfg = self.config
        n2, mm, C = cfg.n ** 2, cfg.m ** 2, cfg.channels
        tr = cfg.transforms
        inputs = residue_inputs(dp, cfg, self.tiles.payload)
        residues = []                      # per modulus: m² residues of Y_i
        for i, mi in enumerate(cfg.moduli):
            w = residue_width(mi)
            v = inputs[i]
            products = []
            for j in range(n2):
                pe = ModMulPE(mi, stages=cfg.pe_stages, a_interval=cfg.pe_a_intervals[i][j])
                dp.submodules[PE_NAME.format(i=i, j=j)] = pe
                dp.d.comb += [pe.a.eq(v[j]), pe.b.eq(head[i * n2 + j])]
                products.append(pe.p)
            if C > 1:
                port = residue_port_interval(mi)
                summed = []
                for j, p in enumerate(products):
                    acc = Signal(unsigned(w), name=ACC_NAME.format(i=i, j=j), reset_less=True)
                    add = reduce_into(dp, acc + p, port + port, mi, f"ch{i}_sum{j}")
                    with dp.If(at_pe_out):
                        dp.d.sync += acc.eq(Mux(acc_first, p, add))
                    summed.append(acc)
                products = summed
            ot = ModTransform2D(tr.AT[i], mi, stages=cfg.output_stages)
            dp.submodules[OUTPUT_NAME.format(i=i)] = ot
            for j in range(n2):
                dp.d.comb += ot.x[j].eq(products[j])
            residues.append(ot.y)

        result = Signal(data.ArrayLayout(signed(cfg.output_width), mm), name="result")
        values, error = reverse_convert(dp, cfg, residues)
        for e, y in enumerate(values):
            dp.d.comb += result[e].eq(y)
        return result, error
