"""The reference network (``winogen.nets``): data, integer convolution, committed weights,
accuracy goals, and that the training script trains."""

import numpy as np
import pytest
from scipy.signal import correlate

from winogen.gen.layer import requantize
from winogen.nets.digits import INPUT_SHIFT, load_digits_int8, split
from winogen.nets.reference import (LAYERS, conv2d_int, conv_output_size, forward_float,
                                    forward_int)
from winogen.nets.train import WEIGHTS, accuracy, load_weights, main, quantize, train_float


@pytest.fixture(scope="module")
def data():
    x, y = load_digits_int8()
    return split(x, y)


def test_data_and_split(data):
    x_train, y_train, x_test, y_test = data
    assert x_train.dtype == np.int8 and x_train.shape[1:] == (1, 16, 16)
    assert len(x_train) + len(x_test) == 1797 and len(x_test) >= 200
    assert x_train.min() >= 0 and x_train.max() == 127
    # the split is fixed: the same seed gives the same images
    x, y = load_digits_int8()
    assert np.array_equal(split(x, y)[3], y_test)
    assert set(np.unique(y_test)) == set(range(10))


@pytest.mark.parametrize("stride, padding, k", [(1, 0, 3), (1, 2, 5), (2, 1, 3), (2, 2, 5)])
def test_conv2d_int_matches_scipy(stride, padding, k):
    rng = np.random.default_rng(k * 10 + stride)
    x = rng.integers(-128, 128, (2, 3, 11, 9))
    w = rng.integers(-128, 128, (4, 3, k, k))
    got = conv2d_int(x, w, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    for n in range(2):
        for o in range(4):
            full = sum(correlate(xp[n, c], w[o, c], mode="valid", method="direct")
                       for c in range(3))
            ref = full[::stride, ::stride]
            assert ref.shape == (conv_output_size(11, k, stride, padding),
                                 conv_output_size(9, k, stride, padding))
            assert np.array_equal(got[n, o], ref)


def test_forward_int_is_the_requantized_pipeline(data):
    """forward_int, rebuilt step by step from conv2d_int and the engine's requantize."""
    _, q = load_weights()
    x = data[2][:16]
    logits, acts = forward_int(q, x, return_activations=True)
    a = x.astype(np.int64)
    for layer, act in zip(LAYERS, acts):
        acc = conv2d_int(a, q[layer["name"]], layer["stride"], layer["padding"])
        a = np.clip(requantize(acc, q[f"shift_{layer['name']}"], 8), 0, 127)
        assert np.array_equal(a, act) and a.min() >= 0 and a.max() <= 127
    sums = a.reshape(16, -1) @ q["fc"].astype(np.int64)
    assert np.array_equal(requantize(sums, q["shift_fc"], 8), logits)


def test_committed_weights_meet_the_goals(data):
    """Float top-1 >= 97 % on the test split; int8 within 1 point of float."""
    floats, q = load_weights(WEIGHTS)
    _, _, x_test, y_test = data
    float_acc = accuracy(forward_float(floats, x_test.astype(np.float64) / 2 ** INPUT_SHIFT),
                         y_test)
    int_acc = accuracy(forward_int(q, x_test), y_test)
    print(f"test top-1 ({len(y_test)} images): float {100 * float_acc:.2f} %, "
          f"int8 {100 * int_acc:.2f} %")
    assert float_acc >= 0.97
    assert int_acc >= float_acc - 0.01
    for layer in LAYERS:
        assert q[layer["name"]].dtype == np.int8
        assert q[layer["name"]].shape == (layer["cout"], layer["cin"], layer["k"], layer["k"])
    # the int8 weights are the committed float weights quantized (the script's rule)
    x_train = data[0]
    requant = quantize({k: v.astype(np.float64) for k, v in floats.items()}, x_train)
    for k, v in requant.items():
        assert np.array_equal(np.asarray(v), np.asarray(q[k])), k


def test_training_script_trains(tmp_path, capsys):
    """Three epochs from scratch on 300 images: the loss falls and the test accuracy is far
    above chance (10 %); the script end to end on 50 images."""
    losses = []
    x, y = load_digits_int8()
    x_train, y_train, x_test, y_test = split(x, y)
    params = train_float(x_train[:300], y_train[:300], epochs=3, seed=3,
                         progress=lambda e, n, loss: losses.append(loss))
    assert losses[-1] < losses[0]
    acc = accuracy(forward_float(params, x_test.astype(np.float64) / 2 ** INPUT_SHIFT), y_test)
    assert acc > 0.6, acc
    out = tmp_path / "w.npz"
    assert main(["--epochs", "1", "--train-images", "50", "--out", str(out)]) == 0
    assert "int8" in capsys.readouterr().out and out.exists()
    floats, q = load_weights(out)
    assert set(q) >= {"c1", "fc", "shift_c4", "shift_fc"}
