"""A pruned reference network (75 % Winograd-domain zeros) classified by the emitted
quantized layer engine under Verilator: every layer bit-exact against the golden model,
the logits equal to the training forward pass (winogen.nets.prune.forward_u)."""

import numpy as np
import pytest

from winogen.gen.layer import LayerConfig
from winogen.gen.toomcook import ToomCook
from winogen.nets import prune
from winogen.nets.digits import load_digits_int8, split
from winogen.nets.train import load_weights
from winogen.nets.wa import (QuantizedDomain, calibrated_shifts, engine_layers_of,
                             int8_weights, winograd_statistics)
from winogen.sim.network import network_requirements, run_network


@pytest.mark.verilator
def test_pruned_network_on_the_quantized_engine_under_verilator():
    floats, ints = load_weights()
    layers, fc_shape = engine_layers_of(floats, ints)
    x, y = load_digits_int8()
    x_train, _, x_test, _ = split(x, y)
    hw = ToomCook(2, 3, preset="lavin").hardware()
    domain = QuantizedDomain(hw, *calibrated_shifts(*winograd_statistics(
        hw, floats, layers, fc_shape, x_train[:20]), 10), 10)
    int8 = int8_weights(floats, layers, fc_shape)
    U = prune.winograd_weights(int8, layers, domain)
    masks = prune.global_masks(prune.native_scores(U, domain, "magnitude"), 0.75)
    U = {k: v * masks[k] for k, v in U.items()}
    deployed = prune.deployed_u(U, domain)
    assert abs(1 - sum(np.count_nonzero(v) for v in deployed.values())
               / sum(v.size for v in deployed.values()) - 0.75) < 0.02
    net = prune.engine_network(deployed, layers, int8)
    images = x_test[:4]
    config = LayerConfig(prune.engine_tile(2, "lavin", domain), p_in=4, p_out=4,
                         pixels_per_beat=4, filters_per_beat=4, output_width=8,
                         **network_requirements(net, images.shape[1:], 3))
    result = run_network(config, net, images, stall=0.1)
    assert [layer["mismatches"] for layer in result["layers"]] == [0] * len(net)
    _, logits = prune.forward_u(U, images, layers, fc_shape, domain,
                                {k: v.shape[2] for k, v in int8.items()})
    assert np.array_equal(result["outputs"].reshape(len(images), -1), logits)
