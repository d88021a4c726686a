"""winogen.gen.params: flat user parameters → configurations, and messages in option names."""

import pytest

from winogen.gen.config import TileConfig, pipeline_stages
from winogen.gen.layer import LayerConfig
from winogen.gen.params import PARAMS, config_from_params, flag, flag_message
from winogen.gen.rns import RNSTileConfig


@pytest.mark.parametrize("params, expected", [
    ({"m": 2, "r": 3}, TileConfig(2, 3)),
    ({"m": 4, "r": 3, "preset": "lavin", "pipeline": 1, "output_stages": 3},
     TileConfig(4, 3, preset="lavin", **{**pipeline_stages(1), "output_stages": 3})),
    ({"m": 2, "r": 3, "algorithm": "direct", "pe": "adder"},
     TileConfig(2, 3, algorithm="direct", pe="adder")),
    ({"m": 4, "r": 3, "keep_scale": "yes", "dsp": "ecp5", "name": "t"},
     TileConfig(4, 3, keep_scale=True, dsp="ecp5", name="t")),
    ({"m": 2, "r": 3, "pe": "rns", "moduli": "251,241,239", "rns_method": "scaled"},
     RNSTileConfig(2, 3, moduli=(251, 241, 239), method="scaled")),
    ({"m": 2, "r": 3, "pe": "rns", "moduli_preset": "special-8", "pipeline": 1},
     RNSTileConfig(2, 3, moduli="special-8", **pipeline_stages(1, "rns"))),
    ({"engine": "conv", "m": 2, "r": 3, "max_cin": 4, "pin": 2, "output_width": 8,
      "rounding": "half_up", "name": "c"},
     LayerConfig(TileConfig(2, 3), max_cin=4, p_in=2, output_width=8, rounding="half_up",
                 name="c")),
    ({"engine": "direct", "m": 2, "r": 3, "pout": 2},
     LayerConfig(TileConfig(2, 3, algorithm="direct"), p_out=2)),
    ({"engine": "conv", "m": 2, "r": 3, "pe": "rns", "max_cin": 3, "moduli_preset": "auto"},
     LayerConfig(RNSTileConfig(2, 3, moduli="auto", channels=3), max_cin=3)),
])
def test_builds_the_configuration_the_api_would(params, expected):
    assert config_from_params(params) == expected
    # None means "not given": the same configuration.
    assert config_from_params({**params, "descale_stages": None}) == expected


@pytest.mark.parametrize("params, message", [
    ({"m": 2, "r": 3, "algorithm": "direct", "points": "0,1,-1,inf"},
     "--points does not apply to direct engines (Winograd transforms only), not '0,1,-1,inf'"),
    ({"engine": "direct", "m": 2, "r": 3, "keep_scale": "yes"},
     "--keep-scale does not apply to direct engines (Winograd transforms only), not 'yes'"),
    ({"m": 2, "r": 3, "channels": 3}, "--channels applies to --pe rns only, not --pe mul"),
    ({"m": 2, "r": 3, "pe": "rns", "dsp": "ecp5"},
     "--dsp does not apply to --pe rns, not 'ecp5'"),
    ({"m": 2, "r": 3, "max_cin": 4},
     "--max-cin does not apply to tile engines (layer engines only), not 4"),
    ({"engine": "conv", "m": 2, "r": 3, "rounding": "half_up"},
     "--rounding applies with --output-width only (the requantization stage), not 'half_up' "
     "alone"),
    ({"engine": "conv", "m": 2, "r": 3, "pe": "rns", "channels": 2},
     "--channels does not apply to a layer engine (its RNS moduli cover --max-cin channels), "
     "not 2"),
    ({"m": 2, "r": 3, "name": "module"},
     "--name must be a Verilog identifier that is not a keyword, not 'module'"),
    ({"m": 2, "r": 3, "data_width": 1}, "--data-width must be"),
    ({"engine": "conv", "m": 2, "r": 3, "pin": 0}, "--pin must be"),
    ({"m": 2, "r": 3, "pe": "adder", "dsp": "ecp5"},
     "--dsp ecp5 applies to multiplying PEs (--pe mul), not --pe adder"),
    ({"m": 2, "r": 3, "colour": "red"}, "parameter must be one of engine, m, r, "),
])
def test_refuses_in_option_names(params, message):
    with pytest.raises(ValueError) as info:
        config_from_params(params)
    assert str(info.value).startswith(message), str(info.value)
    if not message.startswith("parameter"):    # that one lists the Python names
        assert "p_in" not in str(info.value) and "data_width" not in str(info.value)


def test_flag_message():
    assert flag("p_in") == "--pin" and flag("max_cin") == "--max-cin"
    assert flag("forward_reduction") == "--rns-forward-reduction" and flag("freq_mhz") == "--freq"
    assert flag_message("p_in must divide max_cin, not 3") == "--pin must divide --max-cin, not 3"
    assert flag_message("layer engines take tile.dsp='inferred' only, not 'ecp5'") == \
        "layer engines take --dsp inferred only, not 'ecp5'"
    assert flag_message("n must be at most 16, not 17", "--m 14 --r 5") == \
        "--m 14 --r 5: n must be at most 16, not 17"
    # Prose letters are left alone: only a message's first word or an assignment is a field.
    assert flag_message("m must be positive; n = m + r - 1") == "--m must be positive; n = m + r - 1"


def test_every_parameter_is_an_option_of_the_cli():
    from winogen.cli import build_parser
    parser = build_parser()
    options = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            options.update(action.option_strings)
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                stack.extend(action.choices.values())
    assert {flag(name) for name in PARAMS if name != "engine"} <= options
