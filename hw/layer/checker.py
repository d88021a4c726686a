"""The run-time checks of a layer's configuration beat, in hardware."""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...gen.layer import RUN_ERRORS
from .layouts import _check_config, config_layout

__all__ = ["RunChecker"]


class RunChecker(wiring.Component):
    """The run-time checks of :meth:`~winogen.gen.layer.LayerRun.errors`, combinationally.

    Parameters
    ----------
    config : LayerConfig

    Members
    -------
    run : In(config_layout(config))
    errors : Out(unsigned(len(RUN_ERRORS)))
        Bit ``RUN_ERRORS[name]`` set when check ``name`` fails.
    """

    def __init__(self, config):
        self.config = _check_config(config)
        super().__init__({
            "run": In(config_layout(config)),
            "errors": Out(unsigned(len(config.run_errors))),
        })

    def elaborate(self, platform):
        m = Module()
        c, run = self.config, self.run
        pad_ok = Signal()
        m.d.comb += pad_ok.eq(0)
        for p in c.paddings:
            with m.If(run.padding == p):
                m.d.comb += pad_ok.eq(1)
        # A bad padding is not counted against the map size, exactly as in LayerRun.errors.
        eff = Mux(pad_ok, run.padding << 1, 0)

        def above(value, limit):
            # A field too narrow to exceed its limit gets no (constant) comparison.
            return value > limit if limit < (1 << len(value)) - 1 else 0

        def bad_size(value, limit):
            return (value == 0) | above(value, limit) | (value + eff < c.r)

        def bad_channels(value, limit):
            if c.specialized:       # the built-in weights fix both channel counts
                return value != limit
            return (value == 0) | above(value, limit)

        bits = {
            "height": bad_size(run.height, c.max_height),
            "width": bad_size(run.width, c.max_width),
            "cin": bad_channels(run.cin, c.max_cin),
            "cout": bad_channels(run.cout, c.max_cout),
            "padding": ~pad_ok,
            "shift": above(run.shift, c.max_shift),
            "entries": 0, "lane_map": 0,
            "weights": 0,           # flagged while the weights load (sparse engines)
        }
        if c.sparse:
            n2 = c.n * c.n
            b = max(1, (n2 - 1).bit_length())
            bits["entries"] = (run.entries == 0) | above(run.entries, c.max_entries)
            # n² slots for n² positions: a permutation iff every position appears.
            missing = [~Cat(*[run.lane_map[q * b:(q + 1) * b] == e for q in range(n2)]).any()
                       for e in range(n2)]
            bits["lane_map"] = Cat(*missing).any()
        for name, bit in c.run_errors.items():
            m.d.comb += self.errors[bit].eq(bits[name])
        return m
