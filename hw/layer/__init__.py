"""Convolution-layer engines: on-chip weights and activations, a tile scheduler, a compute core.

:class:`WinogradConv` and :class:`DirectConv` compute one stride-1 convolution layer
(PyTorch ``conv2d`` semantics, zero padding 0 or ``r // 2``) at a time, with the layer
shape chosen at run time up to the compile-time maxima of a
:class:`~winogen.gen.layer.LayerConfig`. They have identical ports and share all the
control, memory and scheduling code; only the compute core differs
(:class:`WinogradCore`, :class:`DirectCore`, one interface).

Streams
-------
``config``
    ``In(stream.Signature(StructLayout({"height", "width", "cin", "cout", "padding",
    "shift"})))``: one beat per layer, accepted only while idle. A beat failing a run-time
    check (:meth:`~winogen.gen.layer.LayerRun.errors`) sets the matching ``status.errors``
    bits (sticky until the next config beat) and the engine stays idle: it accepts no
    weights or activations and emits nothing.
``weights``
    ``In(stream.Signature(ArrayLayout(signed(w), k)))``: ``C_out·C_in`` beats, one filter
    each, ``for co in C_out: for ci in C_in``; raw ``r×r`` row-major (direct engine, or
    Winograd with ``filter_transform="online"``, transformed while loading) or
    ``U = G g Gᵀ`` ``n×n`` (Winograd ``"offline"``).
``activations``
    ``In(stream.Signature(ArrayLayout(signed(data_width), p_in)))``: pixel-major,
    ``for y in H: for x in W: for g in ceil(C_in/P_in)``; lane ``i`` is channel
    ``g·P_in + i`` (lanes ``>= C_in`` are ignored).
``outputs``
    ``Out(stream.Signature(ArrayLayout(signed(result_width), p_out·m·m)))``: one beat per
    ``(ty, tx, cog)``, ``for ty: for tx: for cog``; element ``j·m·m + i·m + k`` is
    ``Y[cog·P_out + j, ty·m + i, tx·m + k]``. Elements outside the output map (edge tiles)
    and lanes ``>= C_out`` carry whatever the zero-extended input gives and are discarded
    by the driver.
``status``
    ``Out(StructLayout({"errors", "busy", "phase"}))``: error bits at the positions of
    :data:`~winogen.gen.layer.RUN_ERRORS`; ``busy`` while a layer is in progress;
    ``phase`` (:data:`PHASES`) for cycle accounting.

Memories
--------
Every memory is an ``amaranth.lib.memory.Memory`` with one write and one read port
(synchronous read), so it maps to block RAM; depths are at least 2 (a one-row memory
would have a zero-width address). :func:`memory_shapes` lists them.

Weights: ``P_out × P_in`` banks; bank ``(j, i)`` holds the filters with
``co ≡ j (mod P_out)``, ``ci ≡ i (mod P_in)`` at address
``(co // P_out)·cin_groups + ci // P_in``; a word is one stored filter (``U`` for Winograd,
``g`` for direct). One read gives the ``P_out·P_in`` filters of a step.

Activations: for each lane ``i`` and row residue ``b`` in ``[0, n)`` a bank whose word is a
whole image row (``max_width`` elements), holding the rows ``y ≡ b (mod n)`` of channel
group ``g`` at address ``g·ceil(max_height/n) + y // n``; writes use element granularity.
Any ``n`` consecutive rows lie in ``n`` different banks, so one read of the ``n`` banks of
every lane gives ``P_in`` whole ``n×n`` tiles per cycle. With the tile's first row
``y0 = ty·m - pad = q0·n + base``, bank ``b`` holds tile row ``(b - base) mod n`` at
row block ``q0 + (b < base)``; the scheduler tracks ``q0`` and ``base`` incrementally.
The tile extractor selects the ``n`` columns ``[tx·m - pad, tx·m - pad + n)`` of each bank
word (a ``max_tile_cols``-way choice by ``tx``), zeroes rows outside ``[0, H)``, columns
outside ``[0, W)`` and lanes ``>= C_in``, then rotates the rows into tile order. Padding
is never stored.

PE kinds
--------
The cores build a ``PEArray`` of the tile's PE kind. A zero input is neutral for a
bilinear kind (``mul``), so zeroed lanes ``>= C_in`` add nothing. For a non-bilinear kind
(``adder``, ``p = -|a - b|``, where ``pe(0, w) = -|w|``) the cores also *mask* the PE terms
of those lanes to 0 before the lane sums (:attr:`~winogen.gen.layer.LayerConfig.masks_lanes`;
lane 0 always holds a channel and is never masked), while padded and out-of-map positions
stay zeros that do enter the PEs, as the AdderNet golden models define. Output lanes
``>= C_out`` need no mask: they are discarded. The Winograd adder core uses the integer
adder transforms of the tile (``A'``, ``G'``, ``B'``, no scale removal).

Pipeline and stalls
-------------------
The scheduler issues one step ``(ty, tx, cog, cig)`` per cycle (``cig`` innermost). Stage
0 computes the bank addresses; the memories answer at stage 1; the extractor registers
the tiles at stage 2; the core follows (Winograd: input transforms, ``P_out·P_in·n²`` PEs,
sum over the ``P_in`` lanes, accumulation over channel groups in the Winograd domain —
the first group loads, later groups add — then, after the last group, one output
transform and the exact scale removal per output tile and channel; direct:
``P_out·P_in·m²·r²`` PEs, adder trees over ``r²·P_in``, spatial accumulation), then the
optional requantization stage. Everything after the scheduler is a free-running pipeline
under one ``EnableInserter(en)``, ``en = ~outputs.valid | outputs.ready``, with a valid bit
per stage; the memory read ports are enabled by ``en`` explicitly (EnableInserter would
gate them too, but the memories also hold the write ports, which must not stall), and
the weight read address is delayed so that the filters arrive exactly at the PEs.

Latency and cycles (:func:`engine_latency`, :meth:`~winogen.gen.layer.LayerConfig.cycles`):
a tile's output beat is valid ``2 + core latency (+ 1 with requantization)`` cycles after
its last step is issued; with ``outputs.ready`` held high the compute phase takes
``tile_rows · tile_cols · ceil(C_in/P_in) · ceil(C_out/P_out)`` steps plus that latency.
The weight phase takes ``C_out·C_in`` beats (plus ``filter_stages`` to drain the online
filter transform) and the activation phase ``H·W·ceil(C_in/P_in)`` beats, one per cycle.

Modules
-------
:mod:`.layouts` (payload and status layouts, memory shapes), :mod:`.checker`
(:class:`RunChecker`), :mod:`.stores` (:class:`WeightStore`, :class:`ActivationStore`),
:mod:`.schedule` (:class:`TileScheduler`, :class:`TileExtractor`), :mod:`.cores`
(:class:`ChannelAccumulator`, :class:`WinogradCore`, :class:`DirectCore`, the latency
model), :mod:`.requant` (:class:`Requantizer`), :mod:`.engine` (:class:`WinogradConv`,
:class:`DirectConv`), :mod:`.manifest` (manifest, cycle model, generation). The RNS layer
engine (``RNSConv``, ``RNSCore``) lives with the other RNS blocks in
:mod:`winogen.hw.rns.layer` and is re-exported here; :mod:`winogen.hw.engines` picks the
engine for a configuration.
"""

from .checker import RunChecker
from .cores import (ChannelAccumulator, DirectCore, WinogradCore, core_latency, engine_latency,
                    lane_sum_stages)
from .engine import DirectConv, WinogradConv, make_layer_engine
from .layouts import PHASES, config_layout, memory_shapes, status_layout
from .manifest import generate_layer, layer_manifest
from .requant import Requantizer
from .schedule import TileExtractor, TileScheduler
from .stores import ActivationStore, WeightStore

__all__ = ["PHASES", "config_layout", "status_layout", "RunChecker", "WeightStore",
           "ActivationStore", "TileScheduler", "TileExtractor", "ChannelAccumulator",
           "Requantizer", "WinogradCore", "DirectCore", "RNSCore", "WinogradConv", "DirectConv",
           "RNSConv",
           "make_layer_engine", "lane_sum_stages", "core_latency", "engine_latency",
           "memory_shapes", "layer_manifest", "generate_layer"]


def __getattr__(name):
    # The RNS layer engine builds on this package's modules, so it is imported on first use
    # (importing it here would be circular).
    if name in ("RNSCore", "RNSConv"):
        from ..rns import layer
        return getattr(layer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
