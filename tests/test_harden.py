"""Hardening specifications (gen/harden.py) and the LayerConfig field."""

import json

import pytest

from winogen.gen.config import TileConfig
from winogen.gen.harden import engine_classes, harden_tag, parse_harden
from winogen.gen.layer import LayerConfig


def test_parse_orders_by_data_flow():
    assert parse_harden("accumulation:dmr, products:tmr") == (("products", "tmr"),
                                                             ("accumulation", "dmr"))
    assert parse_harden("none") == () and parse_harden("") == ()
    assert parse_harden("auto:0.25") == ("auto", 0.25)


@pytest.mark.parametrize("text, pattern", [
    ("products", "CLASS:SCHEME"), ("products:qmr", "tmr, dmr"), ("adders:tmr", "input_transform"),
    ("products:tmr,products:dmr", "twice"), ("auto:0", "budget"), ("auto:x", "budget"),
])
def test_parse_refuses(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_harden(text)


def test_layer_config_field():
    t = TileConfig(2, 3, 8, 8)
    c = LayerConfig(t, p_in=2, p_out=2, output_width=8, harden="requantization:dmr,products:tmr")
    assert c.harden == (("products", "tmr"), ("requantization", "dmr"))
    assert c.module_name.endswith(harden_tag(c.harden)) and harden_tag(c.harden) == "_h_pe3_rq2"
    again = LayerConfig.from_json(json.loads(json.dumps(c.to_json())))
    assert again.harden == c.harden and again.module_name == c.module_name
    assert engine_classes(LayerConfig(TileConfig(2, 3, 8, 8, algorithm="direct"))) == (
        "products", "lane_sums", "accumulation")
    with pytest.raises(ValueError, match="no output_transform block"):
        LayerConfig(TileConfig(2, 3, 8, 8, algorithm="direct"), harden="output_transform:tmr")
    with pytest.raises(ValueError, match="no lane_sums block"):
        LayerConfig(t, harden="lane_sums:tmr")                     # P_in = 1
    with pytest.raises(ValueError, match="needs a workload"):
        LayerConfig(t, harden="auto:0.5")
