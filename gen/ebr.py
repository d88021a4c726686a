"""Tiling a memory onto Lattice ECP5 block RAMs (``DP16KD``), in plain Python.

A memory here is ``depth`` words, each made of *write groups*: runs of bits written
together (one write enable each, e.g. one line-buffer element, or a whole weight word).
:func:`plan_ecp5_ebr` picks one ``DP16KD`` data-width mode for the memory and places
every bit of every group in one block:

* the 36- and 18-bit modes have byte enables over 9-bit byte lanes: each group takes
  ``ceil(width / 9)`` whole lanes, lanes are filled in order, and a lane's enable is its
  group's enable, so groups share blocks;
* the narrower modes (9, 4, 2, 1 bits) have one write enable per block: each block holds
  bits of one group only.

The mode is the one with the fewest blocks among those deep enough (the widest on a
tie). :mod:`winogen.hw.ecp5_ebr` instantiates the plan; the manifest reports it.
"""

import math
from dataclasses import dataclass

__all__ = ["ECP5_EBR_MODES", "ECP5_EBR_ADDRESS_BITS", "ECP5_EBR_BYTE", "EBRSlice", "EBRPlan",
           "plan_ecp5_ebr"]

#: ``DP16KD`` data-width modes as ``(data bits, words)``: 18 Kibit each, 16 Kibit below 9 bits.
ECP5_EBR_MODES = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
#: Width of the ``AD`` address buses; a mode of ``2**k`` words uses ``AD[13 : 14 - k]``.
ECP5_EBR_ADDRESS_BITS = 14
#: Byte-lane width of the byte-enabled (36- and 18-bit) modes.
ECP5_EBR_BYTE = 9


@dataclass(frozen=True)
class EBRSlice:
    """Bits ``[group_lo, group_lo + width)`` of write group ``group`` are bits
    ``[block_lo, block_lo + width)`` of block ``block``'s data word."""
    group: int
    group_lo: int
    width: int
    block: int
    block_lo: int


@dataclass(frozen=True)
class EBRPlan:
    """Where a memory's bits live in ``DP16KD`` blocks (see :func:`plan_ecp5_ebr`).

    Attributes
    ----------
    depth : int
        Words of the memory.
    group_widths : tuple of int
    data_width, block_depth : int
        The ``DP16KD`` mode used by every block.
    blocks : int
    slices : tuple of EBRSlice
    lane_groups : tuple of tuple
        Byte-enabled modes: for each block, the write group of each byte lane (``None``:
        unused lane). Other modes: for each block, its one group, as a 1-tuple.
    """
    depth: int
    group_widths: tuple
    data_width: int
    block_depth: int
    blocks: int
    slices: tuple
    lane_groups: tuple

    @property
    def byte_enabled(self):
        return self.data_width in (18, 36)

    @property
    def address_shift(self):
        """Low ``AD`` bits below the word address (byte enables or unused)."""
        return ECP5_EBR_ADDRESS_BITS - int(math.log2(self.block_depth))

    def as_dict(self):
        """The plan's summary for a manifest."""
        return {"primitive": "DP16KD", "mode": f"{self.block_depth}x{self.data_width}",
                "blocks": self.blocks, "output_register": True}


def _byte_lane_plan(depth, widths, data_width, block_depth):
    lanes_per_block = data_width // ECP5_EBR_BYTE
    slices, lane_group = [], []
    for g, width in enumerate(widths):
        for lo in range(0, width, ECP5_EBR_BYTE):
            lane = len(lane_group)
            slices.append(EBRSlice(g, lo, min(ECP5_EBR_BYTE, width - lo), lane // lanes_per_block,
                                   (lane % lanes_per_block) * ECP5_EBR_BYTE))
            lane_group.append(g)
    blocks = math.ceil(len(lane_group) / lanes_per_block)
    lane_group += [None] * (blocks * lanes_per_block - len(lane_group))
    lanes = tuple(tuple(lane_group[b * lanes_per_block:(b + 1) * lanes_per_block])
                  for b in range(blocks))
    return EBRPlan(depth, tuple(widths), data_width, block_depth, blocks, tuple(slices), lanes)


def _per_group_plan(depth, widths, data_width, block_depth):
    slices, owner = [], []
    for g, width in enumerate(widths):
        for lo in range(0, width, data_width):
            slices.append(EBRSlice(g, lo, min(data_width, width - lo), len(owner), 0))
            owner.append((g,))
    return EBRPlan(depth, tuple(widths), data_width, block_depth, len(owner), tuple(slices),
                   tuple(owner))


def plan_ecp5_ebr(depth, group_widths):
    """Place a memory of ``depth`` words of write groups ``group_widths`` bits in DP16KDs.

    Parameters
    ----------
    depth : int
        Words, at most 16384 (one block deep: deeper memories would need a read
        multiplexer after the blocks, on the path this mapping exists to shorten).
    group_widths : sequence of int
        Bits of each write group, in word order.

    Returns
    -------
    EBRPlan
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth:
        raise ValueError(f"depth must be a positive integer, not {depth!r}")
    widths = tuple(group_widths)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"group_widths must be positive integers, not {group_widths!r}")
    deepest = ECP5_EBR_MODES[-1][1]
    if depth > deepest:
        raise ValueError(f"depth must be at most {deepest} words (one DP16KD deep), not {depth!r}")
    plans = []
    for data_width, block_depth in ECP5_EBR_MODES:
        if block_depth < depth:
            continue
        build = _byte_lane_plan if data_width in (18, 36) else _per_group_plan
        plans.append(build(depth, widths, data_width, block_depth))
    return min(plans, key=lambda p: (p.blocks, -p.data_width))
