"""Layouts and shapes of the layer engines: stream payloads, status, memories."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from ...gen.layer import LayerConfig, RUN_ERRORS

__all__ = ["config_layout", "status_layout", "memory_shapes"]


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


def at_most(value, limit):
    """``value <= limit`` for a constant ``limit``; a constant 1 where the width makes it true
    (Verilog lint flags constant comparisons)."""
    return 1 if limit >= (1 << len(value)) - 1 else value <= limit


def above(value, limit):
    """``value > limit`` for a constant ``limit``; a constant 0 where the width makes it false."""
    return 0 if limit >= (1 << len(value)) - 1 else value > limit


def config_layout(config):
    """Payload of the ``config`` stream: the run-time parameters of one layer."""
    c = _check_config(config)
    fields = {
        "height": unsigned(c.max_height.bit_length()),
        "width": unsigned(c.max_width.bit_length()),
        "cin": unsigned(c.max_cin.bit_length()),
        "cout": unsigned(c.max_cout.bit_length()),
        "padding": unsigned(max(1, (c.r // 2).bit_length())),
        "shift": unsigned(max(1, c.max_shift.bit_length())),
    }
    if c.output_width is not None:
        fields["relu"] = unsigned(1)    # clamp the requantized outputs at 0
    if c.sparse:                        # zero-skipping engines (winogen.gen.sparse)
        n2 = c.n * c.n
        fields["entries"] = unsigned(c.max_entries.bit_length())
        fields["lane_map"] = unsigned(n2 * max(1, (n2 - 1).bit_length()))
    return data.StructLayout(fields)


def status_layout(config=None):
    """The ``status`` port: sticky run-time error bits (at :data:`RUN_ERRORS`' positions;
    ``config.run_errors`` of them, the six shared ones without a configuration),
    ``busy`` (a layer is accepted and its outputs are not all out), and what runs now:
    ``loading_weights``, ``loading_activations``, ``computing`` (steps being issued)."""
    return data.StructLayout({
        "errors": unsigned(len(config.run_errors) if config is not None else 6),
        "busy": 1,
        "loading_weights": 1,
        "loading_activations": 1,
        "computing": 1,
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


def memory_shapes(config):
    """The memories an engine instantiates: banks, depth and word of each kind, and with
    ``bram="ecp5"`` their DP16KD blocks (``ecp5_blocks``; None when synthesis infers them)."""
    c = _check_config(config)
    count, width = c.stored_weight
    act_depth = 1 << sum(c.act_address_fields)
    w_depth = 1 << sum(c.weight_address_fields)
    wf, gf, rf = c.act_address_fields
    cf, of, _ = c.weight_address_fields
    plans = c.ebr_plans if c.bram == "ecp5" else None
    blocks = lambda kind, banks: (None if plans is None or kind not in plans else
                                  dict(plans[kind].as_dict(), blocks_per_bank=plans[kind].blocks,
                                       blocks=banks * plans[kind].blocks))
    shapes = {
        "weights": {"banks": c.p_out * c.p_in, "depth": w_depth,
                    "word_elements": count, "element_width": width,
                    "word_bits": count * width,
                    "bits": c.p_out * c.p_in * w_depth * count * width,
                    "address_fields": {"cig": cf, "cog": of, "buffer": c.weight_address_fields[2]},
                    "ecp5_blocks": blocks("weights", c.p_out * c.p_in),
                    "organisation": "bank (j, i) holds co % P_out == j, ci % P_in == i of "
                                    "buffer b at address {b, co // P_out, ci // P_in}"},
        "activations": {"banks": c.p_in * c.n * c.col_banks, "depth": act_depth,
                        "word_elements": c.m, "element_width": c.tile.data_width,
                        "word_bits": c.m * c.tile.data_width,
                        "bits": c.p_in * c.n * c.col_banks * act_depth * c.m
                        * c.tile.data_width,
                        "write_granularity_elements": 1,
                        "row_banks": c.n, "col_banks": c.col_banks,
                        "ring_rows": c.ring_rows, "col_words": c.col_words,
                        "address_fields": {"word": wf, "group": gf, "ring": rf},
                        "ecp5_blocks": blocks("activations", c.p_in * c.n * c.col_banks),
                        "organisation": "line buffer: bank (i, b, s) holds lane i of rows "
                                        "g % n == b (g counts every row written), padded "
                                        "columns xp with (xp // m) % col_banks == s, element "
                                        "xp % m of word {(g // n) % ring_blocks, channel group, "
                                        "(xp // m) // col_banks}"},
    }
    if c.specialized:           # the weights are constants: no weight memory
        del shapes["weights"]
    return shapes
