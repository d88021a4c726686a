"""Streaming convolution-layer engines: a line buffer, double-buffered filters, a tile
scheduler and a free-running pipeline around a compute core.

:class:`WinogradConv` and :class:`DirectConv` (and ``RNSConv``) compute stride-1
convolution layers (PyTorch ``conv2d`` semantics, zero padding 0 or ``r // 2``) back to
back, each layer's shape chosen at run time up to the compile-time maxima of a
:class:`~winogen.gen.layer.LayerConfig`. They share all the control, memory and
scheduling code; only the compute core differs (:class:`WinogradCore`,
:class:`DirectCore`, ``RNSCore``: one interface).

The README's "Layer engine interface" section is the user's reference for the streams,
their order and the ordering rules between layers; the manifest repeats it per engine.

Dataflow
--------
- Two layer *slots*. A config beat is taken while the next slot is free; a valid one
  fills it, a failing one only sets ``status.errors``. A slot frees when its layer's last
  output beat (``outputs_last``) leaves.
- The *weight loader* fills each slot's weight buffer in turn (:class:`WeightStore`, two
  buffers), so the next layer's filters load while the current one computes.
- The *row loader* streams each slot's activations into the :class:`LineBuffer`, a ring
  of ``ring_blocks·n`` rows; a beat waits only while the ring has no room (the scheduler
  reports the lowest row it still reads). The next layer's rows follow the current
  layer's in the ring, so they load while its last tile rows compute.
- The :class:`TileScheduler` issues one step ``(ty, tx, cog, cig)`` per cycle (``cig``
  innermost) once the slot's filters are in and the tile row's rows have landed.
- The pipeline never stalls: a step that completes a tile takes a *credit* of the
  output queue (a :class:`~amaranth.lib.fifo.SyncFIFOBuffered` deep enough for every
  beat in flight), and a credit comes back when a beat leaves. Back-pressure on
  ``outputs`` therefore stops the scheduler, not the datapath: there is no global clock
  enable, and vendor multipliers with their own registers (``dsp="ecp5"``) work as in
  the tile engines.

Pipeline
--------
Issue (addresses from the scheduler's registers) → memory read → read register →
column select and column/lane masks (:class:`TileAssembler`) → row rotation and row
masks → the core (Winograd: input transforms, ``P_out·P_in·n²`` PEs, lane sums,
Winograd-domain accumulation over channel groups, output transform and exact scale
removal after the last group; direct: ``P_out·P_in·m²·r²`` PEs, adder trees, spatial
accumulation) → the optional requantizer (two stages) → the output queue. The weight
read is issued ``2 + weight_delay`` cycles after the step so that its registered data
meets the core. :func:`engine_latency` counts the cycles from a tile's last step to its
output beat.

PE kinds
--------
A zero input is neutral for a bilinear kind (``mul``), so lanes ``>= C_in`` get zero
tiles. For a non-bilinear kind (``adder``, ``p = -|a - b|``) the cores also *mask* the
PE terms of those lanes to 0 before the lane sums (lane 0 always holds a channel),
while padded and out-of-map positions stay zeros that do enter the PEs, as the
AdderNet golden models define.

Modules
-------
:mod:`.layouts` (payload and status layouts, memory shapes), :mod:`.checker`
(:class:`RunChecker`), :mod:`.linebuffer` (:class:`LineBuffer`, :class:`TileAssembler`),
:mod:`.weights` (:class:`WeightStore`), :mod:`.schedule` (:class:`TileScheduler`),
:mod:`.cores` (:class:`ChannelAccumulator`, :class:`WinogradCore`, :class:`DirectCore`),
:mod:`.requant` (:class:`Requantizer`), :mod:`.engine` (:class:`WinogradConv`,
:class:`DirectConv`, latency), :mod:`.manifest` (manifest, cycle model, generation).
The RNS layer engine (``RNSConv``, ``RNSCore``) lives with the other RNS blocks in
:mod:`winogen.hw.rns.layer` and is re-exported here; :mod:`winogen.hw.engines` picks the
engine for a configuration.
"""

from .checker import RunChecker
from .cores import ChannelAccumulator, DirectCore, WinogradCore, core_latency, lane_sum_stages
from .engine import (DirectConv, WinogradConv, engine_latency, make_layer_engine,
                     output_queue_depth)
from .layouts import config_layout, memory_shapes, status_layout
from .linebuffer import LineBuffer, TileAssembler
from .manifest import generate_layer, layer_manifest
from .requant import Requantizer
from .schedule import TileScheduler
from .weights import WeightStore

__all__ = ["config_layout", "status_layout", "RunChecker", "WeightStore", "LineBuffer",
           "TileAssembler", "TileScheduler", "ChannelAccumulator",
           "Requantizer", "WinogradCore", "DirectCore", "RNSCore", "WinogradConv", "DirectConv",
           "RNSConv", "make_layer_engine", "lane_sum_stages", "core_latency", "engine_latency",
           "output_queue_depth", "memory_shapes", "layer_manifest", "generate_layer"]


def __getattr__(name):
    # The RNS layer engine builds on this package's modules, so it is imported on first use
    # (importing it here would be circular).
    if name in ("RNSCore", "RNSConv"):
        from ..rns import layer
        return getattr(layer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
