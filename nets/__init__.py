"""Reference networks: a small int8 CNN on scikit-learn's handwritten digits.

* :mod:`.digits`: the data (1,797 8×8 images inside the scikit-learn wheel), upsampled to
  16×16, int8 inputs, and the fixed train/test split.
* :mod:`.reference`: the architecture (:data:`~.reference.LAYERS`), the float forward pass
  (autograd-differentiable) and the integer forward pass (the golden model of the
  quantized network: integer convolutions, then the engine's requantization: arithmetic
  right shift, round half to even, ReLU, saturation to int8).
* :mod:`.train`: training (autograd, Adam) and power-of-two quantization;
  ``python -m winogen.nets.train`` rewrites the committed weights.

The trained float and int8 weights ship as ``nets/data/digits_cnn.npz``.
"""
