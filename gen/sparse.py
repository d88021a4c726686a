"""The zero-skipping engine's compressed weight stream (``LayerConfig.sparse_lanes``).

A zero-skipping layer engine has ``K = sparse_lanes`` multipliers. Each owns ``n²/K``
Winograd-domain positions of every tile (its *slots*); which positions is chosen per layer
by the lane map (a config field), so that the work is balanced. For each tile, lane ``k``
runs through its own list of entries, one per cycle, all lanes in lockstep:

* an entry is one nonzero weight ``U[j, i, e]`` (output channel ``j``, input channel ``i``,
  position ``e`` owned by the lane): the lane multiplies it by ``V[i, e]`` of the tile and
  adds the product to a running sum;
* a lane's entries come in *groups* of equal ``(j, e)``; the entry that ends a group
  (``group_end``) writes the sum to ``M[j, e]``, the Winograd-domain result;
* a ``(j, e)`` whose weights are all zero still needs ``M[j, e] = 0``: it is one entry of
  value 0 (a *filler*);
* lanes with fewer entries than the longest are padded with invalid entries (``valid``
  0), which do nothing.

So a tile takes ``entries`` = the longest lane's list, in cycles. :func:`compress` builds
the stream: the lane map that balances the lanes (positions by decreasing load, each to
the least-loaded lane with a free slot), the entries and the beats (beat ``s`` carries
entry ``s`` of every lane, element ``k`` for lane ``k``). :func:`check_stream` refuses what
the hardware would flag (``status.errors`` bit ``weights``).
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["check_layer", "SparseWeights", "entry_fields", "pack_entry", "unpack_entry",
           "compress", "check_stream", "pack_lane_map", "unpack_lane_map"]


def _bits(count):
    """Bits of an index ``0..count-1`` (at least one)."""
    return max(1, (count - 1).bit_length())


def entry_fields(config):
    """``[(name, width)]`` of one entry, LSB first: ``valid``, ``group_end``, ``position``
    ``e``, ``slot`` (the lane's slot holding ``e``), output channel ``j`` as ``cout_group``
    ``j // P_out`` and ``cout_lane`` ``j % P_out``, input channel ``i`` as ``cin_group``
    ``i // P_in`` and ``cin_lane`` ``i % P_in`` (the engine's memory banks: no division in
    hardware), ``value`` (two's complement of the stored ``U`` width)."""
    c = config
    return [("valid", 1), ("group_end", 1), ("position", _bits(c.n * c.n)),
            ("slot", _bits(c.lane_slots)),
            ("cout_group", _bits(c.cout_groups)), ("cout_lane", _bits(c.p_out)),
            ("cin_group", _bits(c.cin_groups)), ("cin_lane", _bits(c.p_in)),
            ("value", c.core_weight[1])]


def _split(config, entry):
    """An entry dict (``cout_index``/``cin_index``) with the packed fields added."""
    c = config
    out = dict(entry)
    j, i = entry.get("cout_index", 0), entry.get("cin_index", 0)
    out.update(cout_group=j // c.p_out, cout_lane=j % c.p_out, cin_group=i // c.p_in,
               cin_lane=i % c.p_in)
    return out


def entry_width(config):
    return sum(width for _, width in entry_fields(config))


def check_layer(layer):
    """``layer.sparse_lanes`` checked against the rest of the
    :class:`~winogen.gen.config.LayerConfig` (a divisor of ``n²``, a binary Winograd tile
    of ``pe="mul"`` with offline weights, no option that describes another engine)."""
    from .checks import check_int
    t = layer.tile
    n2 = layer.n * layer.n
    lanes = check_int("sparse_lanes", layer.sparse_lanes, 1, n2)
    if n2 % lanes:
        divisors = [d for d in range(1, n2 + 1) if n2 % d == 0]
        raise ValueError(f"sparse_lanes must divide n² = {n2} (one of "
                         f"{', '.join(map(str, divisors))}), not {lanes}")
    layer.require_winograd_mul("sparse_lanes")
    if t.layer_filter_transform != "offline":
        raise ValueError(f"sparse_lanes need filter_transform='offline' (the stream "
                         f"carries the nonzero U), not {t.layer_filter_transform!r}")
    for key, allowed in (("fixed_weights", None), ("harden", ()), ("filters_per_beat", 1),
                         ("weight_buffers", 2), ("filter_store", "transformed"),
                         ("bram", "inferred")):
        if getattr(layer, key) != allowed:
            raise ValueError(f"{key} does not apply to a zero-skipping engine "
                             f"(sparse_lanes), not {getattr(layer, key)!r}")
    if getattr(t, "dsp", "inferred") != "inferred":
        raise ValueError(f"dsp must be 'inferred' with sparse_lanes, not {t.dsp!r}")
    return lanes


def pack_entry(config, entry):
    """One entry (a dict of ``valid``, ``group_end``, ``position``, ``slot``, ``cout_index``,
    ``cin_index``, ``value``) as its unsigned integer (:func:`entry_fields`)."""
    value, offset = 0, 0
    entry = _split(config, entry)
    for name, width in entry_fields(config):
        v = int(entry.get(name, 0))
        if name == "value":
            v &= (1 << width) - 1
        elif not 0 <= v < (1 << width):
            raise ValueError(f"entry field {name} must fit {width} bits, not {v}")
        value |= v << offset
        offset += width
    return value


def unpack_entry(config, value):
    """The dict of an entry's packed integer (with ``cout_index`` and ``cin_index``)."""
    out, offset = {}, 0
    for name, width in entry_fields(config):
        v = (value >> offset) & ((1 << width) - 1)
        if name == "value" and v >> (width - 1):
            v -= 1 << width
        out[name] = v
        offset += width
    out["cout_index"] = out["cout_group"] * config.p_out + out["cout_lane"]
    out["cin_index"] = out["cin_group"] * config.p_in + out["cin_lane"]
    return out


def pack_lane_map(config, lane_map):
    """The lane map (position of lane ``k``'s slot ``s`` at index ``k·slots + s``) as the
    config field's integer: index ``q`` in bits ``q·b .. q·b + b - 1``, ``b`` the position
    width."""
    b = _bits(config.n * config.n)
    return sum(int(e) << (q * b) for q, e in enumerate(lane_map))


def unpack_lane_map(config, value):
    n2 = config.n * config.n
    b = _bits(n2)
    return tuple((value >> (q * b)) & ((1 << b) - 1) for q in range(n2))


@dataclass(frozen=True)
class SparseWeights:
    """A layer's compressed weight stream.

    Attributes
    ----------
    entries : int
        Beats of the layer (the longest lane's list): the config field ``entries`` and the
        cycles each tile takes.
    lane_map : tuple of int
        Position of lane ``k``'s slot ``s`` at ``k·slots + s`` (a permutation of the
        ``n²`` positions): the config field ``lane_map`` (:func:`pack_lane_map`).
    beats : list of list of dict
        ``beats[s][k]``: entry ``s`` of lane ``k``.
    nonzero : int
        Nonzero weights (entries that multiply something).
    fillers : int
        Entries of value 0 for ``(j, e)`` with no nonzero weight.
    lane_loads : tuple of int
        Valid entries of each lane.
    """
    entries: int
    lane_map: tuple
    beats: list
    nonzero: int
    fillers: int
    lane_loads: tuple

    @property
    def ideal(self):
        """Cycles per tile if the nonzero weights were spread perfectly: ``nonzero / K``."""
        return self.nonzero / len(self.lane_loads)


def _balance(loads, lanes, slots):
    """Positions into ``lanes`` lanes of ``slots`` each, longest processing time first."""
    owned = [[] for _ in range(lanes)]
    total = [0] * lanes
    for e in sorted(range(len(loads)), key=lambda e: (-loads[e], e)):
        k = min((k for k in range(lanes) if len(owned[k]) < slots), key=lambda k: (total[k], k))
        owned[k].append(e)
        total[k] += loads[e]
    return [sorted(p) for p in owned]


def compress(config, u):
    """The compressed stream of Winograd-domain weights ``u`` (C_out, C_in, n, n), the
    engine's stored form (``U`` or ``Û``), for a zero-skipping engine ``config``."""
    c = config
    u = np.asarray(u, dtype=np.int64)
    n2, lanes = c.n * c.n, c.sparse_lanes
    slots = n2 // lanes
    cout, cin = u.shape[:2]
    flat = u.reshape(cout, cin, n2)
    nz = flat != 0
    # Each (j, e) costs its nonzero weights, or one filler if it has none.
    group_cost = np.maximum(nz.sum(axis=1), 1)            # (cout, n2)
    owned = _balance(group_cost.sum(axis=0).tolist(), lanes, slots)
    lists, fillers = [], 0
    for positions in owned:
        entries = []
        for j in range(cout):
            for slot, e in enumerate(positions):
                ids = np.flatnonzero(nz[j, :, e])
                if ids.size == 0:
                    fillers += 1
                    entries.append(dict(valid=1, group_end=1, position=e, slot=slot,
                                        cout_index=j, cin_index=0, value=0))
                    continue
                for q, i in enumerate(ids.tolist()):
                    entries.append(dict(valid=1, group_end=int(q == ids.size - 1), position=e,
                                        slot=slot, cout_index=j, cin_index=i,
                                        value=int(flat[j, i, e])))
        lists.append(entries)
    length = max(len(entries) for entries in lists)
    nop = dict(valid=0, group_end=0, position=0, slot=0, cout_index=0, cin_index=0, value=0)
    beats = [[lists[k][s] if s < len(lists[k]) else nop for k in range(lanes)]
             for s in range(length)]
    lane_map = tuple(e for positions in owned for e in positions)
    return SparseWeights(length, lane_map, beats, int(nz.sum()), fillers,
                         tuple(len(entries) for entries in lists))


def check_stream(config, run, beats, lane_map):
    """Refuse a compressed stream the hardware would flag (``status.errors`` bit
    ``weights``): an entry naming a position not of its lane (out of range, or another
    lane's), a channel beyond the run's ``C_in``/``C_out``, or a value outside the stored
    ``U`` range of its position. ``beats`` as :attr:`SparseWeights.beats` (dicts)."""
    c = config
    n2, lanes = c.n * c.n, c.sparse_lanes
    slots = n2 // lanes
    intervals = (c.tile.quantization.uq_intervals if getattr(c.tile, "quantization", None)
                 else c.tile.u_intervals)
    if sorted(lane_map) != list(range(n2)):
        raise ValueError(f"lane_map must be a permutation of the {n2} positions, not "
                         f"{list(lane_map)}")
    for s, beat in enumerate(beats):
        if len(beat) != lanes:
            raise ValueError(f"weight beat {s} must carry {lanes} entries, not {len(beat)}")
        for k, entry in enumerate(beat):
            if not entry.get("valid"):
                continue
            e, j, i = entry["position"], entry["cout_index"], entry["cin_index"]
            mine = lane_map[k * slots:(k + 1) * slots]
            slot = entry.get("slot", 0)
            if not 0 <= slot < slots or mine[slot] != e:
                raise ValueError(f"weight beat {s}, lane {k}: position {e} is not the lane's "
                                 f"slot {slot} (the lane's positions: {list(mine)}, of "
                                 f"0..{n2 - 1})")
            if not 0 <= j < run.cout:
                raise ValueError(f"weight beat {s}, lane {k}: output channel {j} must be in "
                                 f"0..{run.cout - 1}")
            if not 0 <= i < run.cin:
                raise ValueError(f"weight beat {s}, lane {k}: input channel {i} must be in "
                                 f"0..{run.cin - 1}")
            iv = intervals[e]
            if not iv.lo <= entry["value"] <= iv.hi:
                raise ValueError(f"weight beat {s}, lane {k}: value {entry['value']} must lie "
                                 f"in [{iv.lo}, {iv.hi}] at position {e}")
    return beats
