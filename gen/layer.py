"""Layer engines: configuration, run-time parameters, cycle model and golden model.

:class:`LayerConfig` describes a convolution-layer engine (``WinogradConv`` or
the ``DirectConv`` baseline with the same streams). It composes a
:class:`~winogen.gen.config.TileConfig` — the algorithm, widths, PE kind and
pipelining — with the compile-time maxima, the parallelism and the optional
requantization stage, and derives the accumulator width, memory sizes and the
cycle model. :class:`LayerRun` is one layer's run-time parameters, checked
against a config exactly as the hardware checks them.

PE kinds
--------
Every PE kind of :mod:`winogen.gen.pe` is accepted. For a bilinear kind
(``"mul"``) a channel lane beyond ``C_in`` is neutralised by zeroing its input
(``pe(0, w) = 0``). For a non-bilinear kind (``"adder"``, ``p = -|a - b|``)
``pe(0, w) = -|w|`` is not neutral, so the engine *masks* such lanes: their PE
terms are replaced by 0 before any sum (:attr:`LayerConfig.masks_lanes`). Zero
padding, by contrast, is data: padded zeros enter the PEs as zeros, as in the
reference AdderNet ``adder.py`` (see :mod:`winogen.gen.addernet`). The golden
model of an adder layer is :func:`~winogen.gen.addernet.adder_direct_conv2d`
(direct) or :func:`~winogen.gen.addernet.adder_winograd_conv2d` with the tile's
matrices (Winograd: no scale is removed, the output is ``k²`` times the rational
Winograd-AdderNet value), then the same requantization.

RNS engines
-----------
``tile`` may be an :class:`~winogen.gen.rns.RNSTileConfig` (``pe == "rns"``): the
core then computes every Winograd-domain product modulo each modulus, sums over
the input lanes and channel groups modulo each modulus, and converts each output
back to signed binary (:mod:`winogen.hw.rns`). Its ``channels`` must equal
``max_cin``, so that the moduli are checked against the full accumulated range;
the weight stream carries the filters' residues ``U_i = G_i g G_iᵀ mod m_i``
(unsigned, :meth:`LayerConfig.weight_residues`). The golden model is the exact
integer correlation, as for multiply engines.
"""

from dataclasses import dataclass, field, fields, replace
from functools import cached_property
import math
import numbers

import numpy as np

from .bounds import Interval, signed_range, transform2d_intervals
from .config import TileConfig, _check_choice, _check_int
from .rns import RNSTileConfig, RNSTileModel

__all__ = ["LayerConfig", "LayerRun", "ROUNDING_MODES", "requantize", "layer_golden",
           "RUN_ERRORS"]

ROUNDING_MODES = ("half_even", "half_up")

#: Run-time error codes of the engine's ``status`` port (bit positions).
RUN_ERRORS = {
    "height": 0,        # H out of [1, max_height], or too small for the padding
    "width": 1,         # W out of [1, max_width], or too small for the padding
    "cin": 2,           # C_in out of [1, max_cin]
    "cout": 3,          # C_out out of [1, max_cout]
    "padding": 4,       # padding not 0 or r // 2
    "shift": 5,         # requantization shift beyond the accumulator width
}


@dataclass(frozen=True)
class LayerConfig:
    """A convolution-layer engine.

    Parameters
    ----------
    tile : TileConfig
        Algorithm (Winograd or direct), widths, PE kind, filter transform
        (online: raw weights are transformed while loading; offline: the weight
        stream carries U) and pipelining of the compute core.
    max_height, max_width, max_cin, max_cout : int
        Compile-time maxima of the layer shape.
    p_in, p_out : int
        Input channels and output channels processed per cycle.
    output_width : int, optional
        With a value, the requantization stage is built: arithmetic right
        shift by a run-time amount, rounding, saturation to this width.
    rounding : str
        ``"half_even"`` or ``"half_up"`` (requantization only).
    name : str, optional
        Verilog module name.
    """
    tile: TileConfig
    max_height: int = 32
    max_width: int = 32
    max_cin: int = 16
    max_cout: int = 16
    p_in: int = 1
    p_out: int = 1
    output_width: int = None
    rounding: str = "half_even"
    name: str = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        if not isinstance(self.tile, (TileConfig, RNSTileConfig)):
            raise TypeError(f"tile must be a TileConfig or an RNSTileConfig, not {self.tile!r}")
        if not self.is_rns and self.tile.dsp != "inferred":
            # The layer cores do not drive the PEs' clock enable (tile engines do).
            raise ValueError(f"layer engines take tile.dsp='inferred' only, not {self.tile.dsp!r}")
        for key in ("max_height", "max_width"):
            set_(key, _check_int(key, getattr(self, key), 1, 4096))
        for key in ("max_cin", "max_cout"):
            set_(key, _check_int(key, getattr(self, key), 1, 4096))
        set_("p_in", _check_int("p_in", self.p_in, 1, self.max_cin))
        set_("p_out", _check_int("p_out", self.p_out, 1, self.max_cout))
        if self.output_width is not None:
            set_("output_width", _check_int("output_width", self.output_width, 2, 32))
        _check_choice("rounding", self.rounding, ROUNDING_MODES)
        if self.name is not None and not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"name must be a Verilog identifier, not {self.name!r}")
        if self.is_rns and self.tile.channels != self.max_cin:
            # The moduli must cover the sum over every input channel of the layer.
            raise ValueError(f"tile.channels of an RNS layer must equal max_cin ({self.max_cin}), "
                             f"not {self.tile.channels}")
        if min(self.max_height, self.max_width) + 2 * (self.tile.r // 2) < self.tile.r:
            raise ValueError(f"max_height and max_width must be at least {self.tile.r - 2 * (self.tile.r // 2)} "
                             f"for r = {self.tile.r}, not {min(self.max_height, self.max_width)}")

    # -- shape ------------------------------------------------------------------------------------

    @property
    def m(self):
        return self.tile.m

    @property
    def r(self):
        return self.tile.r

    @property
    def n(self):
        return self.tile.n

    @property
    def algorithm(self):
        return self.tile.algorithm

    @property
    def is_rns(self):
        """Whether the core computes in a residue number system (``tile`` an RNSTileConfig)."""
        return isinstance(self.tile, RNSTileConfig)

    @property
    def keeps_scale(self):
        """Whether the outputs are ``D²`` times the correlation (Winograd, scale kept)."""
        return self.algorithm == "winograd" and not self.is_rns and self.tile.keep_scale

    @property
    def masks_lanes(self):
        """Whether unused channel lanes are masked at the PE terms (non-bilinear PE kinds).

        A bilinear kind gets zero inputs on those lanes instead (``pe(0, w) = 0``).
        """
        # Modular multiplication is bilinear too: a zero tile gives zero residues.
        return not self.is_rns and not self.tile.pe_kind.bilinear

    @property
    def module_name(self):
        if self.name:
            return self.name
        tag = "winoconv" if self.algorithm == "winograd" else "directconv"
        t = self.tile
        pe = t.pe
        if self.is_rns:
            tag = "rnsconv"
            pe = f"{len(t.moduli)}r{t.redundant_moduli}_{t.method_used[:3]}" + (
                "_rin" if t.input_transform == "residue" else "") + (
                "_pfr" if t.forward_reduction == "partial" else "")
        elif t.is_adder_winograd:
            pe += "_" + (t.adder_matrices[:3] if isinstance(t.adder_matrices, str) else "usr")
        return (f"{tag}_f{t.m}x{t.m}_{t.r}x{t.r}_{pe}_d{t.data_width}w{t.weight_width}"
                f"_p{self.p_in}x{self.p_out}")

    @property
    def paddings(self):
        """Accepted run-time paddings: 0 ("valid") and r // 2 ("same" for odd r)."""
        return tuple(sorted({0, self.r // 2}))

    @property
    def cin_groups(self):
        return math.ceil(self.max_cin / self.p_in)

    @property
    def cout_groups(self):
        return math.ceil(self.max_cout / self.p_out)

    @property
    def max_tile_rows(self):
        """Output tile rows of the largest layer (padding r//2 gives the most)."""
        return math.ceil((self.max_height + 2 * (self.r // 2) - self.r + 1) / self.m)

    @property
    def max_tile_cols(self):
        return math.ceil((self.max_width + 2 * (self.r // 2) - self.r + 1) / self.m)

    # -- arithmetic ranges -------------------------------------------------------------------------

    @cached_property
    def accumulator_intervals(self):
        """Range of each accumulator element after summing ``max_cin`` channels.

        Winograd: ``n²`` Winograd-domain elements; direct: one per output. Each
        term's range comes from the PE kind's ``output_interval``, widened to
        contain 0 (a masked or zeroed lane adds 0).
        """
        t = self.tile
        zero = Interval(0, 0)
        if self.is_rns:
            # Residues: the accumulators hold sums modulo each modulus.
            return [Interval(0, max(t.moduli) - 1)] * (self.n ** 2)
        if t.algorithm == "winograd":
            return [iv.hull(zero).times(self.max_cin) for iv in t.product_intervals]
        term = t.pe_kind.output_interval(t.data_interval, t.weight_interval).hull(zero)
        return [term.times(self.max_cin * self.r ** 2)] * (self.m ** 2)

    @property
    def accumulator_width(self):
        return max(iv.width for iv in self.accumulator_intervals)

    @cached_property
    def scaled_output_intervals(self):
        """Ranges of ``Aᵀ M A`` of the accumulated tile (Winograd only)."""
        return transform2d_intervals(self.tile.hardware.AT, self.accumulator_intervals)

    @cached_property
    def exact_output_interval(self):
        """Range of one output before requantization.

        ``r² · max_cin`` PE terms, except for Winograd engines that keep the scale
        and Winograd adder engines, whose output is ``Aᵀ M A`` of the accumulated
        tile as is (:attr:`scaled_output_intervals`).
        """
        t = self.tile
        if self.is_rns:
            return t.output_interval               # its channels are max_cin
        term = t.pe_kind.output_interval(t.data_interval, t.weight_interval)
        if t.algorithm == "winograd" and (t.keep_scale or t.is_adder_winograd):
            lo = min(iv.lo for iv in self.scaled_output_intervals)
            hi = max(iv.hi for iv in self.scaled_output_intervals)
            return Interval(lo, hi)
        return term.times(self.r ** 2 * self.max_cin)

    @property
    def full_output_width(self):
        return self.exact_output_interval.width

    @property
    def result_width(self):
        """Width of each element on the output stream."""
        return self.output_width if self.output_width is not None else self.full_output_width

    @property
    def max_shift(self):
        """Largest meaningful requantization shift."""
        return self.full_output_width

    @property
    def weight_payload(self):
        """(elements, width) of one weight beat: one filter, raw or transformed."""
        if self.is_rns:
            return self.stored_weight
        return self.tile.weight_payload

    @property
    def weight_signed(self):
        """Whether weight elements are signed (RNS engines stream unsigned residues)."""
        return not self.is_rns

    @property
    def filter_transform(self):
        """Winograd engines: ``"online"`` (raw filters transformed while loading) or
        ``"offline"`` (the stream carries transformed filters); direct engines: None."""
        if self.is_rns:
            return "offline"
        return self.tile.filter_transform if self.algorithm == "winograd" else None

    @property
    def stored_weight(self):
        """(elements, width) of one stored filter: U for Winograd, g for direct."""
        t = self.tile
        if self.is_rns:
            # Residues of every modulus, element i·n² + j is U_i at row-major index j.
            return len(t.moduli) * self.n ** 2, t.weight_payload[1]
        if t.algorithm == "winograd":
            return self.n ** 2, t.u_width
        return self.r ** 2, t.weight_width

    # -- resources and cycles -------------------------------------------------------------------

    @property
    def multipliers(self):
        """PEs in the compute core."""
        per_pair = self.n ** 2 if self.algorithm == "winograd" else self.m ** 2 * self.r ** 2
        if self.is_rns:
            per_pair *= len(self.tile.moduli)      # modular multipliers
        return per_pair * self.p_in * self.p_out

    @property
    def memory_bits(self):
        """Bits of on-chip storage: activations and weights."""
        act = self.max_cin * self.max_height * self.max_width * self.tile.data_width
        count, width = self.stored_weight
        wts = self.max_cin * self.max_cout * count * width
        return {"activations": act, "weights": wts}

    def cycles(self, run):
        """Predicted cycles of each phase of ``run`` (a :class:`LayerRun`), with ready held high."""
        run.check(self)
        tiles = run.tile_rows(self) * run.tile_cols(self)
        passes = math.ceil(run.cin / self.p_in) * math.ceil(run.cout / self.p_out)
        return {
            "config": 1,
            "weights": run.cin * run.cout,
            "activations": run.height * run.width * math.ceil(run.cin / self.p_in),
            "compute_ideal": tiles * passes,
            "tiles": tiles,
            "channel_passes": passes,
        }

    def weight_residues(self, w):
        """The stored RNS filters of ``w`` (..., r, r): shape (..., k·n²), unsigned residues."""
        if not self.is_rns:
            raise ValueError(f"weight_residues needs an RNS engine, not pe={self.tile.pe!r}")
        U = RNSTileModel(self.tile).filter_residues(w)          # (k, ..., n, n)
        U = np.moveaxis(U, 0, -3)                                 # (..., k, n, n)
        return U.reshape(U.shape[:-3] + (-1,))

    def replace(self, **changes):
        return replace(self, **changes)

    def to_json(self):
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tile"}
        out["tile"] = self.tile.to_json()
        out["name"] = self.module_name
        return out

    @classmethod
    def from_json(cls, data):
        data = dict(data)
        tile = dict(data.pop("tile"))
        tile.pop("name", None)
        data.pop("name", None)
        if "moduli" in tile:
            return cls(tile=RNSTileConfig.from_json(tile), **data)
        return cls(tile=TileConfig(**tile), **data)


@dataclass(frozen=True)
class LayerRun:
    """Run-time parameters of one layer, as written to the engine's config stream.

    Parameters
    ----------
    height, width, cin, cout : int
    padding : int
        0 or ``r // 2``.
    shift : int
        Requantization right shift (ignored without requantization).
    """
    height: int
    width: int
    cin: int
    cout: int
    padding: int = 0
    shift: int = 0

    def errors(self, config):
        """The names of the run-time checks this run fails on ``config`` (the hardware's flags)."""
        c = config
        bad = []
        pad_ok = self.padding in c.paddings
        eff = 2 * self.padding if pad_ok else 0
        if not (1 <= self.height <= c.max_height) or self.height + eff < c.r:
            bad.append("height")
        if not (1 <= self.width <= c.max_width) or self.width + eff < c.r:
            bad.append("width")
        if not 1 <= self.cin <= c.max_cin:
            bad.append("cin")
        if not 1 <= self.cout <= c.max_cout:
            bad.append("cout")
        if not pad_ok:
            bad.append("padding")
        if not 0 <= self.shift <= c.max_shift:
            bad.append("shift")
        return bad

    def check(self, config):
        bad = self.errors(config)
        if bad:
            c = config
            limits = {"height": f"1..{c.max_height}", "width": f"1..{c.max_width}",
                      "cin": f"1..{c.max_cin}", "cout": f"1..{c.max_cout}",
                      "padding": " or ".join(map(str, c.paddings)), "shift": f"0..{c.max_shift}"}
            name = bad[0]
            raise ValueError(f"{name} must be {limits[name]} for this engine, not "
                             f"{getattr(self, name)!r}")
        return self

    def output_shape(self, config):
        r = config.r
        return (self.cout, self.height + 2 * self.padding - r + 1,
                self.width + 2 * self.padding - r + 1)

    def tile_rows(self, config):
        return math.ceil(self.output_shape(config)[1] / config.m)

    def tile_cols(self, config):
        return math.ceil(self.output_shape(config)[2] / config.m)


def requantize(values, shift, width, rounding="half_even"):
    """Arithmetic right shift with rounding, then saturation to ``width`` signed bits.

    Exact integer semantics of the hardware stage (NumPy int64 or object arrays).
    """
    _check_choice("rounding", rounding, ROUNDING_MODES)
    v = np.asarray(values).astype(object) if np.asarray(values).dtype == object else \
        np.asarray(values, dtype=np.int64)
    if shift == 0:
        q = v
    else:
        floor = v >> shift
        rem = v - (floor << shift)
        half = 1 << (shift - 1)
        if rounding == "half_up":
            q = floor + (rem >= half)
        else:
            q = floor + ((rem > half) | ((rem == half) & (floor & 1 == 1)))
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return np.clip(q, lo, hi)


def layer_golden(config, run, x, w):
    """The engine's exact output for activations ``x`` (C_in, H, W) and weights ``w`` (C_out, C_in, r, r).

    Multiply engines: the exact integer correlation with zero padding (the
    Winograd engine computes the same numbers exactly), scaled by ``D²`` if the
    scale is kept. Adder engines: :func:`~winogen.gen.addernet.adder_direct_conv2d`
    (direct; padded zeros contribute ``|0 - w|``) or
    :func:`~winogen.gen.addernet.adder_winograd_conv2d` with the tile's matrices
    (Winograd; its integer form, ``k²`` times the rational value). Then
    requantized when the engine has the stage.
    """
    from .addernet import adder_direct_conv2d, adder_winograd_conv2d
    from .models import direct_conv2d
    run.check(config)
    x = np.asarray(x)
    w = np.asarray(w)
    if x.shape != (run.cin, run.height, run.width):
        raise ValueError(f"activations must have shape {(run.cin, run.height, run.width)}, not {x.shape}")
    if w.shape != (run.cout, run.cin, config.r, config.r):
        raise ValueError(f"weights must have shape {(run.cout, run.cin, config.r, config.r)}, not {w.shape}")
    t = config.tile
    x, w = x.astype(np.int64), w.astype(np.int64)
    if t.pe == "adder":
        if t.algorithm == "winograd":
            y, _ = adder_winograd_conv2d(x, w, t.adder_matrices, padding=run.padding)
        else:
            y = adder_direct_conv2d(x, w, padding=run.padding)
    elif t.pe in ("mul", "rns"):
        # RNS engines are exact: the residues reconstruct the integer correlation.
        y = direct_conv2d(x, w, padding=run.padding)
    else:
        raise ValueError(f"layer_golden has no model for pe={t.pe!r}")
    if config.keeps_scale:
        y = y * t.scale_divisor
    if config.output_width is not None:
        y = requantize(y, run.shift, config.output_width, config.rounding)
    return y
