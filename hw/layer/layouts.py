"""Layouts and shapes of the layer engines: stream payloads, status, memories."""

import math

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from ...gen.layer import LayerConfig, RUN_ERRORS

__all__ = ["PHASES", "config_layout", "status_layout", "memory_shapes"]

#: Values of ``status.phase``.
PHASES = {"idle": 0, "weights": 1, "activations": 2, "compute": 3}


def _check_config(config):
    if not isinstance(config, LayerConfig):
        raise TypeError(f"config must be a LayerConfig, not {config!r}")
    return config


def _weight_shape(config, width):
    """The shape of a weight element: signed, or unsigned for RNS residues."""
    return signed(width) if config.weight_signed else unsigned(width)


def _counter(limit):
    """A counter shape for values ``0..limit`` (never zero-width)."""
    return range(max(limit, 1) + 1)


def _index(count):
    """A shape for indices ``0..count-1`` (at least one bit: Verilog has no empty vectors)."""
    return range(max(count, 2))


def config_layout(config):
    """Payload of the ``config`` stream: the run-time parameters of one layer."""
    c = _check_config(config)
    return data.StructLayout({
        "height": unsigned(c.max_height.bit_length()),
        "width": unsigned(c.max_width.bit_length()),
        "cin": unsigned(c.max_cin.bit_length()),
        "cout": unsigned(c.max_cout.bit_length()),
        "padding": unsigned(max(1, (c.r // 2).bit_length())),
        "shift": unsigned(max(1, c.max_shift.bit_length())),
    })


def status_layout():
    """The ``status`` port: sticky run-time error bits, busy flag, current phase."""
    return data.StructLayout({
        "errors": unsigned(len(RUN_ERRORS)),
        "busy": 1,
        "phase": unsigned(2),
    })


def _run_layout(config):
    """The run-time parameters held while a layer is in progress (the ``config`` beat's
    fields, then the output size)."""
    c = config
    fields = {name: member.shape for name, member in config_layout(c)}
    fields["hout"] = unsigned((c.max_height + 2 * (c.r // 2)).bit_length())
    fields["wout"] = unsigned((c.max_width + 2 * (c.r // 2)).bit_length())
    return data.StructLayout(fields)


def _position_shape(config):
    """Signed shape of tile positions ``ty·m - pad`` and of the rows/columns a tile reads."""
    c = config
    return signed((max(c.max_height, c.max_width) + 2 * c.n + c.m).bit_length() + 1)


def _act_blocks(config):
    """Row blocks per channel group in an activation bank: ``ceil(max_height / n)``."""
    return math.ceil(config.max_height / config.n)


def _memory_depth(rows):
    # A one-row memory would have a zero-width address, which Verilog cannot declare.
    return max(rows, 2)


def memory_shapes(config):
    """The memories an engine instantiates: banks, depth and word of each kind."""
    c = _check_config(config)
    count, width = c.stored_weight
    act_depth = _memory_depth(c.cin_groups * _act_blocks(c))
    w_depth = _memory_depth(c.cout_groups * c.cin_groups)
    return {
        "weights": {"banks": c.p_out * c.p_in, "depth": w_depth,
                    "word_elements": count, "element_width": width,
                    "word_bits": count * width,
                    "bits": c.p_out * c.p_in * w_depth * count * width,
                    "organisation": "bank (j, i) holds co % P_out == j, ci % P_in == i at "
                                    "(co // P_out) * cin_groups + ci // P_in"},
        "activations": {"banks": c.p_in * c.n, "depth": act_depth,
                        "word_elements": c.max_width, "element_width": c.tile.data_width,
                        "word_bits": c.max_width * c.tile.data_width,
                        "bits": c.p_in * c.n * act_depth * c.max_width * c.tile.data_width,
                        "write_granularity_elements": 1,
                        "organisation": "bank (i, b) holds rows y % n == b of lane i, one image "
                                        "row per word, at g * ceil(max_height / n) + y // n"},
    }
