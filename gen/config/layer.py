"""Layer engines: configuration and run-time parameters.

:class:`LayerConfig` describes a convolution-layer engine (``WinogradConv``,
the ``DirectConv`` baseline with the same streams, or ``RNSConv``). It composes a
tile configuration (:class:`~winogen.gen.config.TileConfigBase`: the algorithm,
widths, PE kind and pipelining) with the compile-time maxima, the parallelism and
the optional requantization stage, and derives the accumulator width, memory sizes
and the cycle model. :class:`LayerRun` is one layer's run-time parameters, checked
against a config exactly as the hardware checks them.

Every question that depends on the tile's kind (how unused lanes are neutralised,
the stored weight format, the accumulator ranges, the golden model) is asked of the
tile configuration or its :class:`~winogen.gen.pe.PEKind`; nothing here branches
on a PE name.

PE kinds
--------
For a bilinear kind (``"mul"``) a channel lane beyond ``C_in`` is neutralised by
zeroing its input (``pe(0, w) = 0``). For a kind that is not bilinear
(``"adder"``, ``p = -|a - b|``) ``pe(0, w) = -|w|`` is not neutral, so the engine
*masks* such lanes: their PE terms are replaced by 0 before any sum
(:attr:`LayerConfig.masks_lanes`). Zero padding, by contrast, is data: padded
zeros enter the PEs as zeros, as in the reference AdderNet ``adder.py`` (see
:mod:`winogen.gen.addernet`).

Residue (modular) kinds
-----------------------
``tile`` may be an :class:`~winogen.gen.rns.RNSTileConfig`: the core then computes
every Winograd-domain product modulo each modulus, sums over the input lanes and
channel groups modulo each modulus, and converts each output back to signed binary.
Its ``channels`` must equal ``max_cin`` (:meth:`RNSTileConfig.check_layer`), so that
the moduli are checked against the full accumulated range; the weight stream
carries the filters' residues (unsigned, :meth:`LayerConfig.weight_residues`).
"""

from dataclasses import dataclass, fields, replace
from functools import cached_property
import math

import numpy as np

from ..bounds import transform2d_intervals
from ..checks import check_choice, check_int, check_name
from .base import TileConfigBase
from .registry import tile_config_from_json

__all__ = ["LayerConfig", "LayerRun", "ROUNDING_MODES", "RUN_ERRORS", "BRAM_PRIMITIVES"]

ROUNDING_MODES = ("half_even", "half_up")
FILTER_STORES = ("transformed", "raw")
#: How the engine's memories become block RAM: ``"inferred"`` (synthesis infers them from
#: the Verilog), ``"ecp5"`` (Lattice ECP5 ``DP16KD`` instances with their output register).
BRAM_PRIMITIVES = ("inferred", "ecp5")

#: Run-time error codes of the engine's ``status`` port (bit positions).
RUN_ERRORS = {
    "height": 0,        # H out of [1, max_height], or too small for the padding
    "width": 1,         # W out of [1, max_width], or too small for the padding
    "cin": 2,           # C_in out of [1, max_cin] (fixed weights: not their C_in)
    "cout": 3,          # C_out out of [1, max_cout] (fixed weights: not their C_out)
    "padding": 4,       # padding not 0 or r // 2
    "shift": 5,         # shift above max_shift (the output width; 0 without requantization)
    # zero-skipping engines (sparse_lanes) only:
    "entries": 6,       # entries per lane out of [1, max_entries]
    "lane_map": 7,      # the lane map is not a permutation of the n² positions
    "weights": 8,       # a weight entry names a position not of its lane, or a channel
                        # beyond C_in/C_out (set while the layer's weights load)
}


@dataclass(frozen=True)
class LayerConfig:
    """A convolution-layer engine.

    Parameters
    ----------
    tile : TileConfig or RNSTileConfig
        Algorithm (Winograd or direct), widths, PE kind, filter transform
        (online: raw weights are transformed while loading; offline: the weight
        stream carries U) and pipelining of the compute core: any
        :class:`~winogen.gen.config.TileConfigBase`.
    max_height, max_width, max_cin, max_cout : int
        Compile-time maxima of the layer shape.
    p_in, p_out : int
        Input channels and output channels processed per cycle.
    pixels_per_beat : int
        Pixels of one image row carried by each activation beat (``P_in`` channels
        each), so that loading can keep up with compute (:meth:`cycles` says which
        stream bounds a layer).
    filters_per_beat : int
        Filters carried by each weight beat (consecutive input channels of one output
        channel); must divide ``p_in``.
    weight_buffers : int
        2: the next layer's filters load while the current layer computes; 1: half the
        weight memory, and a layer's filters load only once the previous layer is done.
    filter_store : str
        Winograd with ``filter_transform="online"``: ``"transformed"`` stores ``U`` (the
        transform runs while loading), ``"raw"`` stores the ``r×r`` filters and transforms
        each filter as it is read (``P_out·P_in`` filter transforms, ``(r/n)²`` of the
        memory and of its read bandwidth: large ``P`` and ``m`` engines fit block RAM).
    bram : str
        ``"inferred"``: plain memories that synthesis maps; ``"ecp5"``: ``DP16KD`` block RAMs
        instantiated with their output register (Yosys never enables it), the same read
        latency with a short clock-to-output. Every memory must then be at most 16384 words.
    output_width : int, optional
        With a value, the requantization stage is built: arithmetic right
        shift by a run-time amount, rounding, saturation to this width.
    rounding : str
        ``"half_even"`` or ``"half_up"`` (requantization only).
    harden : tuple of (str, str)
        Block classes replicated against faults, with their scheme: ``"tmr"`` (three
        copies, majority vote) or ``"dmr"`` (two copies, mismatches raise ``error``);
        see :mod:`winogen.gen.harden`. Text ``"products:tmr,accumulation:dmr"`` is
        accepted too. Binary engines only.
    name : str, optional
        Verilog module name.
    sparse_lanes : int, optional
        A zero-skipping engine (:mod:`winogen.gen.sparse`) with this many multipliers
        (a divisor of ``n²``): the weight stream carries only the nonzero Winograd-domain
        weights, each lane owns ``n²/sparse_lanes`` positions (the lane map, a config
        field) and spends one cycle per entry. Winograd engines of ``pe="mul"`` with
        ``filter_transform="offline"``.
    fixed_weights : FixedWeights, optional
        A weight-specialized engine (:mod:`winogen.gen.fixedweights`): the filters are
        built in as constant products (zeros cost nothing), there is no weight stream, and
        the run-time ``cin``/``cout`` must be the weights' ``C_in``/``C_out``, which must
        equal ``p_in = max_cin`` and ``p_out = max_cout``. Winograd engines of
        ``pe="mul"`` only. Its JSON form (``FixedWeights.to_json``) is accepted too.
    """
    tile: TileConfigBase
    max_height: int = 32
    max_width: int = 32
    max_cin: int = 16
    max_cout: int = 16
    p_in: int = 1
    p_out: int = 1
    pixels_per_beat: int = 1
    filters_per_beat: int = 1
    weight_buffers: int = 2
    filter_store: str = "transformed"
    bram: str = "inferred"
    output_width: int = None
    rounding: str = "half_even"
    harden: tuple = ()
    name: str = None
    fixed_weights: object = None
    sparse_lanes: int = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        if not isinstance(self.tile, TileConfigBase):
            raise TypeError(f"tile must be a TileConfig or an RNSTileConfig, not {self.tile!r}")
        for key in ("max_height", "max_width"):
            set_(key, check_int(key, getattr(self, key), 1, 4096))
        for key in ("max_cin", "max_cout"):
            set_(key, check_int(key, getattr(self, key), 1, 4096))
        set_("p_in", check_int("p_in", self.p_in, 1, self.max_cin))
        set_("p_out", check_int("p_out", self.p_out, 1, self.max_cout))
        set_("pixels_per_beat", check_int("pixels_per_beat", self.pixels_per_beat, 1,
                                          self.max_width))
        set_("filters_per_beat", check_int("filters_per_beat", self.filters_per_beat, 1,
                                           self.p_in))
        check_choice("weight_buffers", self.weight_buffers, (1, 2))
        check_choice("filter_store", self.filter_store, FILTER_STORES)
        if self.filter_store == "raw" and self.algorithm != "winograd":
            raise ValueError(f"filter_store='raw' applies to Winograd engines (a direct engine "
                             f"stores raw filters already), not {self.filter_store!r}")
        if self.filter_store == "raw" and (self.tile.layer_filter_transform != "online"
                                           or self.tile.pe_kind.modular):
            raise ValueError(f"filter_store='raw' applies to binary Winograd engines with "
                             f"filter_transform='online', not {self.filter_store!r} with "
                             f"filter_transform={self.tile.layer_filter_transform!r} and "
                             f"pe={self.tile.pe!r}")
        check_choice("bram", self.bram, BRAM_PRIMITIVES)
        if self.p_in % self.filters_per_beat:
            raise ValueError(f"filters_per_beat must divide p_in = {self.p_in}, not "
                             f"{self.filters_per_beat!r}")
        if self.output_width is not None:
            set_("output_width", check_int("output_width", self.output_width, 2, 32))
        check_choice("rounding", self.rounding, ROUNDING_MODES)
        check_name("name", self.name)
        self.tile.check_layer(self)
        if min(self.max_height, self.max_width) + 2 * (self.tile.r // 2) < self.tile.r:
            raise ValueError(f"max_height and max_width must be at least {self.tile.r - 2 * (self.tile.r // 2)} "
                             f"for r = {self.tile.r}, not {min(self.max_height, self.max_width)}")
        if self.bram == "ecp5":
            self._check_ecp5_bram()
        from ..harden import normalize_harden
        set_("harden", normalize_harden(self.harden, self))
        if self.fixed_weights is not None:
            self._check_fixed_weights()
        if self.sparse_lanes is not None:
            self._check_sparse()

    def _check_sparse(self):
        from ..sparse import check_layer
        object.__setattr__(self, "sparse_lanes", check_layer(self))

    def require_winograd_mul(self, field):
        """Refuse ``field`` (a zero-skipping or weight-specialized engine's) unless the tile
        is a binary Winograd one of ``pe="mul"``."""
        t = self.tile
        kind = t.pe_kind
        if (self.algorithm != "winograd" or kind.modular or not kind.bilinear
                or not kind.uses_multiplier or getattr(t, "is_adder_winograd", False)):
            raise ValueError(f"{field} apply to Winograd engines of pe='mul', not "
                             f"algorithm={self.algorithm!r} with pe={t.pe!r}")

    @property
    def run_errors(self):
        """The run-time error bits this engine has (:data:`RUN_ERRORS`' names and positions):
        the first six, and the zero-skipping engine's three more."""
        names = list(RUN_ERRORS)[:6] + (["entries", "lane_map", "weights"] if self.sparse
                                        else [])
        return {name: RUN_ERRORS[name] for name in names}

    @property
    def sparse(self):
        """Whether this is a zero-skipping engine (``sparse_lanes``)."""
        return self.sparse_lanes is not None

    @property
    def lane_slots(self):
        """Winograd-domain positions each zero-skipping lane owns: ``n² / sparse_lanes``."""
        return self.n * self.n // self.sparse_lanes

    @property
    def max_entries(self):
        """Most entries of one lane per tile: every ``(j, i)`` of its positions."""
        return self.max_cout * self.max_cin * self.lane_slots

    def _check_fixed_weights(self):
        from ..fixedweights import check_layer
        object.__setattr__(self, "fixed_weights", check_layer(self))

    @property
    def specialized(self):
        """Whether the weights are built in (``fixed_weights``)."""
        return self.fixed_weights is not None

    def _check_ecp5_bram(self):
        from ..ebr import ECP5_EBR_MODES
        deepest = ECP5_EBR_MODES[-1][1]
        memories = [("line buffer", self.act_address_fields, "max_width and max_cin")]
        if self.fixed_weights is None:
            memories.append(("weight", self.weight_address_fields, "max_cin and max_cout"))
        for what, fields_, cause in memories:
            depth = 1 << sum(fields_)
            if depth > deepest:
                raise ValueError(f"bram='ecp5' needs memories of at most {deepest} words (one "
                                 f"DP16KD deep), but this engine's {what} memories have {depth} "
                                 f"({cause}); use a larger p_in/p_out, smaller maxima or "
                                 f"bram='inferred', not bram={self.bram!r}")

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
    def keeps_scale(self):
        """Whether the outputs are ``D²`` times the correlation (Winograd, scale kept)."""
        return self.tile.keeps_scale

    @property
    def masks_lanes(self):
        """Whether unused channel lanes are masked at the PE terms (the PE kind's ``masks_lanes``).

        Otherwise they get zero inputs (``pe(0, w) = 0`` for a bilinear kind; a zero tile
        gives zero residues in a modular one).
        """
        return self.tile.pe_kind.masks_lanes

    @property
    def module_name(self):
        if self.name:
            return self.name
        from ..harden import harden_tag
        fixed = f"_w{self.fixed_weights.sha256[:8]}" if self.specialized else ""
        sparse = f"_zs{self.sparse_lanes}" if self.sparse else ""
        return (self.tile.layer_module_name(self.p_in, self.p_out) + harden_tag(self.harden)
                + fixed + sparse)

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

        Winograd: ``n²`` Winograd-domain elements; direct: one per output (the tile's
        :meth:`~winogen.gen.config.TileConfigBase.layer_accumulator_intervals`).
        """
        return self.tile.layer_accumulator_intervals(self.max_cin)

    @property
    def accumulator_width(self):
        return max(iv.width for iv in self.accumulator_intervals)

    @cached_property
    def scaled_output_intervals(self):
        """Ranges of ``Aᵀ M A`` of the accumulated tile (binary Winograd only; quantized:
        of the accumulated products shifted to the common scale)."""
        q = getattr(self.tile, "quantization", None)
        if q:
            return q.transformed_intervals(self.accumulator_intervals)
        return transform2d_intervals(self.tile.hardware.AT, self.accumulator_intervals)

    @cached_property
    def exact_output_interval(self):
        """Range of one output before requantization (the tile's
        :meth:`~winogen.gen.config.TileConfigBase.layer_output_interval` of ``max_cin``)."""
        return self.tile.layer_output_interval(self.max_cin)

    @property
    def full_output_width(self):
        return self.exact_output_interval.width

    @property
    def result_width(self):
        """Width of each element on the output stream."""
        return self.output_width if self.output_width is not None else self.full_output_width

    @property
    def max_shift(self):
        """Largest accepted ``shift``: the full output width with requantization; 0 without
        it (an engine with no requantizer flags any other shift rather than ignore it)."""
        return self.full_output_width if self.output_width is not None else 0

    @property
    def weight_payload(self):
        """(elements, width) of one weight beat: one filter, raw or transformed."""
        return self.tile.layer_weight_payload

    @property
    def weight_signed(self):
        """Whether weight elements are signed (the PE kind's ``weight_signed``; residues are not)."""
        return self.tile.pe_kind.weight_signed

    @property
    def filter_transform(self):
        """Winograd engines: ``"online"`` (raw filters transformed while loading) or
        ``"offline"`` (the stream carries transformed filters); direct engines: None."""
        return self.tile.layer_filter_transform

    @property
    def core_weight(self):
        """(elements, width) of one filter as the compute core takes it (U, g or residues)."""
        return self.tile.stored_weight

    @property
    def stored_weight(self):
        """(elements, width) of one stored filter: U for Winograd, g for direct, residues."""
        if self.filter_store == "raw":
            return self.r ** 2, self.tile.weight_width
        return self.tile.stored_weight

    # -- line buffer geometry ---------------------------------------------------------------------
    #
    # Activations are kept in a ring of ``ring_rows`` image rows per input lane. A row is
    # split into blocks of ``m`` padded columns (column ``x`` of the map is padded column
    # ``x + padding``); block ``b`` lives in column bank ``b mod col_banks`` at word
    # ``b // col_banks``. Row ``g`` (counted over every row ever written) lives in row bank
    # ``g mod n`` at ring slot ``(g // n) mod ring_blocks``. A tile's ``n`` rows then lie in
    # ``n`` different row banks and its ``n`` columns in ``col_banks`` different column
    # banks, and a beat's ``pixels_per_beat`` columns in different column banks too.

    @property
    def padded_width(self):
        """Columns of the widest padded row: ``max_width + 2·(r // 2)``."""
        return self.max_width + 2 * (self.r // 2)

    @property
    def col_banks(self):
        """Column banks of the line buffer: enough that a tile's ``n`` columns and a beat's
        pixels each fall in different banks (at least 2)."""
        m, n, q = self.m, self.n, self.pixels_per_beat
        return max(2, (n - 1) // m + 1, -(-(q - 1) // m) + 1)

    @property
    def col_words(self):
        """Words of one row in a column bank: ``ceil(ceil(padded_width / m) / col_banks)``."""
        return math.ceil(math.ceil(self.padded_width / self.m) / self.col_banks)

    #: Ring slots per row bank: ``ring_blocks·n >= 2n + m`` rows, so that the rows of the
    #: next tile row (and of the next layer's first tile row) load while a tile row computes.
    ring_blocks = 3

    #: Cycles the scheduler takes to start a layer (one adder level per cycle).
    scheduler_start = 2

    #: Edges from a config beat's transfer to ``status.errors`` showing its checks (the
    #: beat is registered, checked, then acted on).
    config_latency = 2

    #: Edges from a layer's last output beat leaving to its slot being free (the output
    #: handshake is registered first: it comes from the ``ready`` port).
    slot_release_latency = 2

    @property
    def ring_rows(self):
        return self.ring_blocks * self.n

    @property
    def row_counter_width(self):
        """Width of the wrapping row counters (twice the largest distance compared)."""
        return (self.max_height + 2 * self.ring_rows + self.n).bit_length() + 1

    @property
    def act_address_fields(self):
        """Bit widths of the line-buffer address fields ``(word, channel group, ring slot)``."""
        return ((self.col_words - 1).bit_length(), (self.cin_groups - 1).bit_length(),
                (self.ring_blocks - 1).bit_length())

    @property
    def weight_address_fields(self):
        """Bit widths of the weight-bank address fields ``(cig, cog, buffer)``."""
        return ((self.cin_groups - 1).bit_length(), (self.cout_groups - 1).bit_length(),
                self.weight_buffers - 1)

    @property
    def ebr_plans(self):
        """With ``bram="ecp5"``: the DP16KD tiling of one bank of each memory kind
        (:func:`~winogen.gen.ebr.plan_ecp5_ebr`): a line-buffer word has one write group per
        element, a weight word is written whole."""
        from ..ebr import plan_ecp5_ebr
        count, width = self.stored_weight
        plans = {"activations": plan_ecp5_ebr(1 << sum(self.act_address_fields),
                                              (self.tile.data_width,) * self.m)}
        if not self.specialized:
            plans["weights"] = plan_ecp5_ebr(1 << sum(self.weight_address_fields),
                                             (count * width,))
        return plans

    # -- resources and cycles -------------------------------------------------------------------

    @property
    def multipliers(self):
        """PEs in the compute core (a weight-specialized core: its nonzero constant
        products)."""
        if self.specialized:
            # its nonzero constant products (those in DSP blocks: specialized_dsp_products)
            return int(np.count_nonzero(self.fixed_weights.core_weights(self.tile)))
        if self.sparse:
            return self.sparse_lanes
        return self.tile.multipliers * self.p_in * self.p_out

    @property
    def memory_bits(self):
        """Bits of on-chip storage (the memories' full depth): activations and weights."""
        act_depth = 1 << sum(self.act_address_fields)
        act = self.p_in * self.n * self.col_banks * act_depth * self.m * self.tile.data_width
        count, width = self.stored_weight
        w_depth = 1 << sum(self.weight_address_fields)
        wts = 0 if self.specialized else self.p_in * self.p_out * w_depth * count * width
        return {"activations": act, "weights": wts}

    def cycles(self, run):
        """Predicted beats and steps of ``run`` (a :class:`LayerRun`), and which stream bounds it.

        ``compute_ideal`` is one step per cycle; ``activations`` and ``weights`` are beats at
        one per cycle; ``row_period`` compares, per tile row, the activation beats of its
        ``m`` new rows with its compute steps: the larger bounds the layer in a sequence.
        """
        run.check(self)
        tiles = run.tile_rows(self) * run.tile_cols(self)
        cin_g, cout_g = math.ceil(run.cin / self.p_in), math.ceil(run.cout / self.p_out)
        passes = cin_g * cout_g
        if self.sparse:
            # A tile: C_in/P_in steps load its V, `entries` cycles of the lanes, C_out/P_out
            # output beats; each runs beside the others' of the neighbouring tiles.
            passes = max(run.entries, cin_g, cout_g)
        row_beats = math.ceil(run.width / self.pixels_per_beat) * cin_g
        row_compute = run.tile_cols(self) * passes
        row_load = self.m * row_beats
        first_rows = min(run.height, self.n - run.padding)
        return {
            "config": 1,
            "weights": (0 if self.specialized else run.entries if self.sparse
                        else run.cout * math.ceil(run.cin / self.filters_per_beat)),
            "activations": run.height * row_beats,
            "compute_ideal": tiles * passes,
            "tiles": tiles,
            "channel_passes": passes,
            "first_tile_row_beats": first_rows * row_beats,
            "row_period": max(row_compute, row_load),
            "bound": "activations" if row_load > row_compute else "compute",
        }

    def sequence_cycles(self, runs, latency):
        """Predicted cycles from the first config beat to the last output beat of layers
        ``runs`` streamed back to back, every source always valid and ``outputs.ready`` high.

        A row-level model of the engine's rules: a layer's config is taken when its slot is
        free (the layer two before has left), its weights load after the previous layer's
        (and the online filter transform's stages to drain), its rows after the
        previous layer's, each row waiting for ring room (the scheduler's lowest live row);
        a tile row computes once its rows have landed and the previous tile row is issued,
        in ``tile_cols · channel passes`` cycles; the last beat leaves ``latency`` cycles
        after the layer's last step.
        """
        n, mo, cap = self.n, self.m, self.ring_rows
        # the write register, and the filter transform when filters are transformed on loading
        filter_drain = 0 if self.specialized else 1 + (
            self.tile.filter_stages if self.filter_transform == "online"
            and self.filter_store == "transformed" else 0)
        live = [(0, 0)]                      # (time, lowest live row), both non-decreasing
        weights_free = writer = compute = 0
        landed, next_row, first_row = [], 0, 0
        ends = []

        def room_from(row):
            # A row is written once row + 1 < live_low + ring_rows.
            return next(t for t, low in live if row + 2 - cap <= low)

        for k, run in enumerate(runs):
            cyc = self.cycles(run)
            row_beats = cyc["activations"] // run.height
            slot_free = ((ends[k - 2] + self.slot_release_latency if k >= 2 else 0) + 1
                         + self.config_latency)
            # one weight buffer: the previous layer must be done (its slot free)
            buffer_free = (ends[k - 1] + self.slot_release_latency + 1
                           if k >= 1 and self.weight_buffers == 1 else 0)
            weights_free = (max(weights_free, slot_free, buffer_free) + cyc["weights"]
                            + filter_drain)
            writer = max(writer, slot_free)
            t = max(compute, weights_free) + 2 + self.scheduler_start
            for ty in range(run.tile_rows(self)):
                y0 = ty * mo - run.padding
                need = first_row + min(run.height, y0 + n)
                while next_row < need:
                    writer = max(writer, room_from(next_row)) + row_beats
                    landed.append(writer + 2)
                    next_row += 1
                t = max(t, landed[need - 1] + 1)
                live.append((t, first_row + max(0, y0)))
                t += run.tile_cols(self) * cyc["channel_passes"]
            first_row += run.height
            live.append((t, first_row))
            compute = t
            ends.append(t + latency)
        return ends[-1]

    def weight_residues(self, w):
        """The stored filters of ``w`` (..., r, r) of a modular engine: (..., k·n²) unsigned residues."""
        if not self.tile.pe_kind.modular:
            raise ValueError(f"weight_residues needs an RNS engine, not pe={self.tile.pe!r}")
        return self.tile.stored_filters(w)

    def replace(self, **changes):
        return replace(self, **changes)

    def to_json(self):
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tile"}
        out["harden"] = [list(pair) for pair in self.harden]      # JSON's form
        if self.specialized:
            out["fixed_weights"] = self.fixed_weights.to_json()
        else:
            out.pop("fixed_weights")
        if not self.sparse:
            out.pop("sparse_lanes")
        out["tile"] = self.tile.to_json()
        out["name"] = self.module_name
        return out

    @classmethod
    def from_json(cls, data):
        data = dict(data)
        tile = dict(data.pop("tile"))
        tile.pop("name", None)
        data.pop("name", None)
        return cls(tile=tile_config_from_json(tile), **data)


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
    relu : bool
        Clamp the requantized outputs at 0 (ReLU); engines with requantization only.
    """
    height: int
    width: int
    cin: int
    cout: int
    padding: int = 0
    shift: int = 0
    relu: bool = False
    entries: int = 0
    lane_map: int = 0

    def errors(self, config, *, weights=True):
        """The names of the run-time checks this run fails on ``config`` (the hardware's flags).

        ``weights=False`` leaves out the fields a zero-skipping engine's weights decide
        (``entries``, ``lane_map``): what a layer computes does not depend on them."""
        c = config
        bad = []
        pad_ok = self.padding in c.paddings
        eff = 2 * self.padding if pad_ok else 0
        if not (1 <= self.height <= c.max_height) or self.height + eff < c.r:
            bad.append("height")
        if not (1 <= self.width <= c.max_width) or self.width + eff < c.r:
            bad.append("width")
        fixed = c.specialized      # the weights fix C_in and C_out
        if not 1 <= self.cin <= c.max_cin or (fixed and self.cin != c.max_cin):
            bad.append("cin")
        if not 1 <= self.cout <= c.max_cout or (fixed and self.cout != c.max_cout):
            bad.append("cout")
        if not pad_ok:
            bad.append("padding")
        if not 0 <= self.shift <= c.max_shift:
            bad.append("shift")
        if c.sparse and weights:
            if not 1 <= self.entries <= c.max_entries:
                bad.append("entries")
            from ..sparse import unpack_lane_map
            n2 = c.n * c.n
            if (self.lane_map >> (n2 * max(1, (n2 - 1).bit_length())) != 0
                    or sorted(unpack_lane_map(c, self.lane_map)) != list(range(n2))):
                bad.append("lane_map")
        return bad

    def check(self, config, *, weights=True):
        """``self`` if :meth:`errors` finds nothing, else ``ValueError`` naming the first."""
        if self.relu not in (False, True, 0, 1):
            raise ValueError(f"relu must be a bool, not {self.relu!r}")
        if self.relu and config.output_width is None:
            raise ValueError(f"relu applies with the requantization stage (output_width) "
                             f"only, not relu={self.relu!r} on an engine without it")
        bad = self.errors(config, weights=weights)
        if bad:
            c = config
            limits = {"height": f"1..{c.max_height}", "width": f"1..{c.max_width}",
                      "cin": f"{c.max_cin}" if c.specialized else f"1..{c.max_cin}",
                      "cout": f"{c.max_cout}" if c.specialized else f"1..{c.max_cout}",
                      "padding": " or ".join(map(str, c.paddings)), "shift": f"0..{c.max_shift}",
                      "entries": f"1..{c.max_entries}" if c.sparse else "0",
                      "lane_map": "a permutation of the n² positions (winogen.gen.sparse)"}
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
