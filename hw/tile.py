"""Tile engines: one ``m × m`` output tile per clock from an ``n × n`` input tile.

:class:`WinogradTile` computes ``Y = Aᵀ[pe(U, Bᵀ d B)]A`` (then removes the
integer scale) with ``n²`` PEs; :class:`DirectTile` computes the same outputs
with ``m² r²`` PEs. Both have the same three streams, so they are drop-in
replacements for each other:

``tiles``
    ``In(stream.Signature(ArrayLayout(signed(data_width), n*n)))``: one input
    tile per beat, row-major (element ``i*n + j`` is ``d[i][j]``; element 0 in
    the least significant bits).
``weights``
    ``In(stream.Signature(ArrayLayout(signed(w), k)))``: the filter, row-major.
    Raw ``r × r`` weights (direct engine, or ``filter_transform="online"``), or
    the ``n × n`` transformed filter ``U = G g Gᵀ`` (``"offline"``).
``outputs``
    ``Out(stream.Signature(ArrayLayout(signed(output_width), m*m)))``.

A weight beat applies to every tile accepted after it and to none before it:
while a weight beat is offered, no tile is accepted; the weight is accepted
once no earlier tile is still waiting to read the filter register.

Pipelining: every block is a free-running pipeline of a fixed latency, and the
whole datapath advances on one enable, ``en = ~outputs.valid | outputs.ready``
(a stall freezes every stage, so nothing is dropped or duplicated). With
``outputs.ready`` held high the engine accepts one tile per clock.
"""

from amaranth.hdl import EnableInserter, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..gen.config import TileConfig
from .constmat import ConstMatVec, ConstTransform2D, ExactDivider
from .pe import PEArray
from .winoquant import RoundShift, VQuantizer, make_filter_transform

__all__ = ["WinogradTile", "DirectTile", "binary_tile_engine", "make_tile_engine",
           "DATAPATH_NAME"]

#: Submodule name of the stallable datapath (every block but the filter path is under it).
DATAPATH_NAME = "datapath"


def _signature(config):
    count, width = config.weight_payload
    return {
        "tiles": In(stream.Signature(data.ArrayLayout(signed(config.data_width), config.n ** 2))),
        "weights": In(stream.Signature(data.ArrayLayout(signed(width), count))),
        "outputs": Out(stream.Signature(data.ArrayLayout(signed(config.output_width),
                                                         config.m ** 2))),
    }


class _TileEngine(wiring.Component):
    """Stream control shared by the tile engines (see the module docstring)."""

    algorithm = None

    def __new__(cls, config, *, src_loc_at=0):
        # Refuse a configuration before the component exists, so that a refused engine
        # leaves no "created but never used" warning behind.
        if not isinstance(config, TileConfig):
            raise TypeError(f"config must be a TileConfig, not {config!r}")
        if config.algorithm != cls.algorithm:
            raise ValueError(f"config.algorithm must be {cls.algorithm!r} for "
                             f"{cls.__name__}, not {config.algorithm!r}")
        return super().__new__(cls, config, src_loc_at=src_loc_at + 1)

    def __init__(self, config, *, src_loc_at=0):
        self.config = config
        super().__init__(_signature(config))

    def _build_blocks(self):
        """Create the datapath blocks (at elaboration, so unused engines warn about nothing)."""
        raise NotImplementedError

    @property
    def latency(self):
        return self.config.latency

    @classmethod
    def fault_registers(cls, config):
        """The registers that hold the values of the tile fault model
        (:class:`~winogen.gen.faultmodel.TileFaultModel`), by site class.

        Derived from the names and stage counts the blocks are built with (no elaboration),
        in the format of :meth:`winogen.hw.layer.cores.WinogradCore.fault_registers`, with
        names relative to the engine's top module and delays counted from the cycle a
        tile (or, for ``filter_transform``, a weight beat) is accepted: ``step`` is
        ``"each"`` (every tile; edges at which the datapath advances) or ``"load"`` (the
        weight beat; every edge, the filter path never stalls). A class whose values no
        register holds alone is left out.
        """
        raise NotImplementedError

    # Subclasses fill these in.
    def _datapath(self, m, tile, filter_reg):
        """Build the stallable datapath; return the output array value."""
        raise NotImplementedError

    def _filter_path(self, m):
        """Return (filter value to latch, load latency in cycles)."""
        return self.weights.payload, 0

    def _filter_readers(self):
        """Pipeline stages (indices into the valid chain) whose tiles still read the filter."""
        return 0

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        latency = cfg.latency
        self._build_blocks()

        en = Signal()            # advance the datapath this cycle
        m.d.comb += en.eq(~self.outputs.valid | self.outputs.ready)

        # Filter register, loaded through the (possibly pipelined) filter path.
        filter_value, load_latency = self._filter_path(m)
        filter_reg = Signal.like(filter_value, name="filter_reg", reset_less=False)
        loading = Signal()
        weight_accept = Signal()
        if load_latency:
            in_flight = Signal(load_latency, name="weight_in_flight")
            m.d.sync += in_flight.eq((in_flight << 1) | weight_accept)
            m.d.comb += loading.eq(in_flight.any())
            with m.If(in_flight[-1]):
                m.d.sync += filter_reg.eq(filter_value)
        else:
            with m.If(weight_accept):
                m.d.sync += filter_reg.eq(filter_value)

        # Valid chain of the stallable datapath.
        valid = Signal(latency, name="stage_valid")
        tile_accept = Signal()
        with m.If(en):
            m.d.sync += valid.eq((valid << 1) | tile_accept)
        m.d.comb += self.outputs.valid.eq(valid[-1])

        readers = self._filter_readers()
        tiles_waiting_for_filter = valid[:readers].any() if readers else 0
        m.d.comb += [
            self.weights.ready.eq(~loading & ~tiles_waiting_for_filter),
            weight_accept.eq(self.weights.valid & self.weights.ready),
            # A pending weight beat has priority, so a busy tile stream cannot starve it.
            self.tiles.ready.eq(en & ~loading & ~self.weights.valid),
            tile_accept.eq(self.tiles.valid & self.tiles.ready),
        ]

        datapath = Module()
        result = self._datapath(datapath, self.tiles.payload, filter_reg)
        m.submodules[DATAPATH_NAME] = EnableInserter(en)(datapath)
        # EnableInserter cannot reach into vendor primitives: the PEs take `en` as a port.
        m.d.comb += [self.pe_array.en.eq(en), self.outputs.payload.eq(result)]
        return m


class WinogradTile(_TileEngine):
    """Winograd F(m×m, r×r) tile engine with ``n²`` PEs.

    Parameters
    ----------
    config : TileConfig
        With ``algorithm="winograd"``.

    Members
    -------
    tiles : In(stream.Signature(ArrayLayout(signed(data_width), n*n)))
    weights : In(stream.Signature(ArrayLayout(signed(w), k)))
    outputs : Out(stream.Signature(ArrayLayout(signed(output_width), m*m)))
    """

    algorithm = "winograd"

    def _build_blocks(self):
        cfg = self.config
        hw = cfg.hardware
        q = cfg.quantization
        self.input_transform = ConstTransform2D(hw.BT, cfg.data_interval, stages=cfg.input_stages)
        # A quantized domain rounds V to W bits between the input transform and the PEs
        # (combinational: the PEs' operand registers follow).
        self.quantizer = VQuantizer(q) if q else None
        self.pe_array = PEArray(cfg.pe, cfg.pe_a_intervals, cfg.pe_b_intervals,
                                stages=cfg.pe_stages, dsp=cfg.dsp)
        # Quantized: each product enters shifted left to the common scale 2^(min e).
        self.output_transform = ConstTransform2D(
            hw.AT, q.aligned_intervals(cfg.product_intervals) if q else cfg.product_intervals,
            stages=cfg.output_stages)
        self.filter_transform = None
        if cfg.filter_transform == "online":
            self.filter_transform = make_filter_transform(cfg, stages=cfg.filter_stages)
        self.dividers = None
        if q and cfg.removes_scale:
            self.dividers = [RoundShift(iv, q.output_shift, stages=cfg.descale_stages)
                             for iv in cfg.scaled_output_intervals]
        elif cfg.removes_scale:
            self.dividers = [ExactDivider(cfg.scale_divisor, iv, stages=cfg.descale_stages,
                                          output_interval=cfg.output_interval)
                             for iv in cfg.scaled_output_intervals]

    @classmethod
    def fault_registers(cls, config):
        from .constmat import divider_output_register, transform2d_output_registers
        from .layer.cores import _grouped, _register, _site
        c = config
        hw = c.hardware
        sites = {}

        def transform(block, matrix, element, stages, at, step):
            regs = [_register(f"{block}.{sub}.{sig}", width, 0, values)
                    for (sub, sig), width, values in _grouped(
                        [None if r is None else ((r[0], r[1]), r[2], r[3])
                         for r in transform2d_output_registers(matrix, element, stages)])]
            return _site(at, step, regs) if regs else None

        put = lambda name, site: site is not None and sites.__setitem__(name, site)
        put("input_transform", transform(f"{DATAPATH_NAME}.input_transform", hw.BT,
                                         c.data_interval, c.input_stages, c.input_stages,
                                         "each"))
        if c.filter_transform == "online":
            put("filter_transform", transform("filter_transform", hw.G, c.weight_interval,
                                              c.filter_stages, c.filter_stages, "load"))
        at = c.input_stages + c.pe_stages
        put("products", _pe_sites(c, at, lambda k: {"element": k}))
        at += c.output_stages
        put("output_transform", transform(f"{DATAPATH_NAME}.output_transform", hw.AT,
                                          list(c.product_intervals), c.output_stages, at,
                                          "each"))
        if c.removes_scale:
            at += c.descale_stages
            reg = divider_output_register(c.scale_divisor, c.output_interval.width,
                                          c.descale_stages)
            if reg is not None:
                put("descale", _site(at, "each", [
                    _register(f"{DATAPATH_NAME}.descale{e}.{reg[0]}", reg[1], 0, [(e, reg[2])])
                    for e in range(c.m ** 2)]))
        return sites

    def _filter_path(self, m):
        if self.filter_transform is None:
            return self.weights.payload, 0
        m.submodules.filter_transform = ft = self.filter_transform
        m.d.comb += ft.x.eq(self.weights.payload)
        # U leaves the filter transform `filter_stages` cycles after the weight beat.
        return ft.y, ft.latency

    def _filter_readers(self):
        # Tiles still inside the input transform have not latched U yet.
        return self.config.input_stages

    def _datapath(self, m, tile, filter_reg):
        cfg = self.config
        m.submodules.input_transform = it = self.input_transform
        m.submodules.pe_array = pes = self.pe_array
        m.submodules.output_transform = ot = self.output_transform
        q = cfg.quantization
        if q:
            m.submodules.quantizer = vq = self.quantizer
            m.d.comb += [it.x.eq(tile), vq.x.eq(it.y), pes.a.eq(vq.y), pes.b.eq(filter_reg)]
            for e, shift in enumerate(q.align_shifts):
                m.d.comb += ot.x[e].eq(pes.p[e] << shift)
        else:
            m.d.comb += [
                it.x.eq(tile),
                pes.a.eq(it.y),
                pes.b.eq(filter_reg),
                ot.x.eq(pes.p),
            ]
        if self.dividers is None:
            if q:
                # No output shift right: Z (<< min e) is the output, element by element
                # (the output's range is narrower than Z's: truncation is lossless).
                result = Signal(data.ArrayLayout(signed(cfg.output_width), cfg.m ** 2),
                                name="descaled")
                for i in range(cfg.m ** 2):
                    m.d.comb += result[i].eq(ot.y[i] << max(q.output_exponent, 0))
                return result
            return ot.y
        result = Signal(data.ArrayLayout(signed(cfg.output_width), cfg.m ** 2), name="descaled")
        for i, div in enumerate(self.dividers):
            m.submodules[f"descale{i}"] = div
            m.d.comb += [div.x.eq(ot.y[i]), result[i].eq(div.y)]
        return result


class DirectTile(_TileEngine):
    """Direct-convolution tile engine with ``m² r²`` PEs and the Winograd engine's streams.

    Parameters
    ----------
    config : TileConfig
        With ``algorithm="direct"``.
    """

    algorithm = "direct"

    def _build_blocks(self):
        cfg = self.config
        mm, rr = cfg.m ** 2, cfg.r ** 2
        self.pe_array = PEArray(cfg.pe, cfg.pe_a_intervals, cfg.pe_b_intervals,
                                stages=cfg.pe_stages, dsp=cfg.dsp)
        term = self.pe_array.output_intervals[0]
        self.adder_trees = [ConstMatVec([[1] * rr], [term] * rr, stages=cfg.output_stages)
                            for _ in range(mm)]

    @classmethod
    def fault_registers(cls, config):
        from ..gen.bounds import matvec_intervals
        from .constmat import matvec_output_registers
        from .layer.cores import _register, _site
        c = config
        mm, rr = c.m ** 2, c.r ** 2
        sites = {}
        pes = _pe_sites(c, c.pe_stages, lambda k: {"element": k // rr, "tap": k % rr})
        if pes is not None:
            sites["products"] = pes
        term = c.pe_kind.output_interval(c.pe_a_intervals[0], c.pe_b_intervals[0])
        (reg,) = matvec_output_registers([[1] * rr], [term] * rr, c.output_stages)
        if reg is not None:
            width = matvec_intervals([[1] * rr], [term] * rr)[0].width
            assert reg[1] == width, (reg, width)
            sites["lane_sums"] = _site(c.pe_stages + c.output_stages, "each", [
                _register(f"{DATAPATH_NAME}.sum{k}.{reg[0]}", reg[1], 0, [(k, reg[2])])
                for k in range(mm)])
        return sites

    def _datapath(self, m, tile, filter_reg):
        cfg = self.config
        n, r, mo = cfg.n, cfg.r, cfg.m
        m.submodules.pe_array = pes = self.pe_array
        # PE (i, j, a, b) multiplies d[i + a][j + b] by g[a][b].
        lane = 0
        for i in range(mo):
            for j in range(mo):
                for a in range(r):
                    for b in range(r):
                        m.d.comb += [pes.a[lane].eq(tile[(i + a) * n + (j + b)]),
                                     pes.b[lane].eq(filter_reg[a * r + b])]
                        lane += 1
        result = Signal(data.ArrayLayout(signed(cfg.output_width), mo * mo), name="sums")
        for k, tree in enumerate(self.adder_trees):
            m.submodules[f"sum{k}"] = tree
            for t in range(r * r):
                m.d.comb += tree.x[t].eq(pes.p[k * r * r + t])
            m.d.comb += result[k].eq(tree.y[0])
        return result


def _pe_sites(config, at, value_of):
    """The products' registers of a tile engine's PE array: ``value_of(lane)`` is the
    fault model's value keys of PE ``lane`` (``None``: no fabric register holds them)."""
    from .layer.cores import _site
    from .pe import pe_component
    c = config
    pe_class = pe_component(c.pe_kind.name, c.dsp)
    name = pe_class.output_register(c.pe_stages)
    if name is None:
        return None
    regs = [{"name": f"{DATAPATH_NAME}.pe_array.{PEArray.pe_name(k)}.{name}",
             "width": c.pe_kind.output_interval(a, b).width, "lsb": 0, "copy": 0,
             "values": [{**value_of(k), "shift": 0}]}
            for k, (a, b) in enumerate(zip(c.pe_a_intervals, c.pe_b_intervals))]
    return _site(at, "each", regs)


def binary_tile_engine(config):
    """The tile engine of a :class:`~winogen.gen.config.TileConfig`: Winograd or direct."""
    return WinogradTile(config) if config.algorithm == "winograd" else DirectTile(config)


def make_tile_engine(config):
    """The tile engine component for ``config``, as the engine registry
    (:mod:`winogen.hw.engines`) picks it from the configuration's type."""
    from .engines import engine_for
    return engine_for(config).tile(config)
