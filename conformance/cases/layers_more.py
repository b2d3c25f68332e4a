"""Small layers recorded from tf-keras 2.21 and Keras 3.15: Identity (float and integer inputs; a
mask goes through in Keras 3), the ``Convolution1DTranspose`` alias, and Keras 3's adaptive
pooling layers (``AdaptiveAveragePooling1D/2D/3D``, ``AdaptiveMaxPooling1D/2D/3D``: PyTorch's
bins ``[floor(i * n / out), ceil((i + 1) * n / out))`` on each spatial axis, for output sizes that
divide the input, that do not, and that exceed it), channels last and first, float32 and
float64. Adaptive cases are recorded like the pooling family's (``x_b<batch>`` inputs)."""

from __future__ import annotations

import zlib

import numpy as np
from core import SEED, int_input, record_layer

BATCHES = (1, 3)


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _seq_mask(t):
    def make(rng, b):
        m = rng.random((b, t)) < 0.7
        m[:, 0] = True
        return m
    return make


IDENTITY = [
    # name, kwargs, shape, make_input, dtype
    ("identity_rank2", {}, (4,), None, "float32"),
    ("identity_rank4", {}, (2, 3, 2), None, "float32"),
    ("identity_float64", {"dtype": "float64"}, (3, 2), None, "float64"),
    ("identity_int", {}, (5,), int_input(9), "int32"),
]

CF = "channels_first"
ADAPTIVE = [
    # name, class, kwargs, input shape (no batch), dtype
    ("aap1d_divides", "AdaptiveAveragePooling1D", {"output_size": 3}, (6, 2), "float32"),
    ("aap1d_uneven", "AdaptiveAveragePooling1D", {"output_size": 3}, (7, 2), "float32"),
    ("aap1d_larger", "AdaptiveAveragePooling1D", {"output_size": 5}, (3, 2), "float32"),
    ("aap1d_tuple_cf", "AdaptiveAveragePooling1D", {"output_size": (4,), "data_format": CF}, (2, 10), "float32"),
    ("aap1d_one", "AdaptiveAveragePooling1D", {"output_size": 1}, (5, 3), "float32"),
    ("amp1d_divides", "AdaptiveMaxPooling1D", {"output_size": 2}, (6, 3), "float32"),
    ("amp1d_uneven", "AdaptiveMaxPooling1D", {"output_size": 4}, (10, 2), "float32"),
    ("amp1d_larger_cf", "AdaptiveMaxPooling1D", {"output_size": 7, "data_format": CF}, (2, 4), "float32"),
    ("aap2d_divides", "AdaptiveAveragePooling2D", {"output_size": 2}, (4, 6, 3), "float32"),
    ("aap2d_uneven", "AdaptiveAveragePooling2D", {"output_size": (3, 2)}, (7, 5, 2), "float32"),
    ("aap2d_cf", "AdaptiveAveragePooling2D", {"output_size": (2, 4), "data_format": CF}, (2, 5, 9), "float32"),
    ("aap2d_larger", "AdaptiveAveragePooling2D", {"output_size": (5, 4)}, (3, 2, 2), "float32"),
    ("aap2d_float64", "AdaptiveAveragePooling2D", {"output_size": 3, "dtype": "float64"}, (8, 5, 2), "float64"),
    ("amp2d_divides", "AdaptiveMaxPooling2D", {"output_size": 2}, (4, 4, 2), "float32"),
    ("amp2d_uneven", "AdaptiveMaxPooling2D", {"output_size": (3, 4)}, (8, 11, 2), "float32"),
    ("amp2d_cf_larger", "AdaptiveMaxPooling2D", {"output_size": (4, 3), "data_format": CF}, (3, 3, 5), "float32"),
    ("amp2d_float64", "AdaptiveMaxPooling2D", {"output_size": (2, 3), "dtype": "float64"}, (5, 7, 2), "float64"),
    ("aap3d_divides", "AdaptiveAveragePooling3D", {"output_size": 2}, (4, 4, 2, 2), "float32"),
    ("aap3d_uneven", "AdaptiveAveragePooling3D", {"output_size": (2, 3, 2)}, (5, 7, 3, 2), "float32"),
    ("aap3d_cf", "AdaptiveAveragePooling3D", {"output_size": (3, 2, 2), "data_format": CF}, (2, 4, 5, 3), "float32"),
    ("amp3d_uneven", "AdaptiveMaxPooling3D", {"output_size": (3, 2, 4)}, (5, 3, 6, 2), "float32"),
    ("amp3d_cf", "AdaptiveMaxPooling3D", {"output_size": 2, "data_format": CF}, (2, 3, 5, 4), "float32"),
    # TensorFlow's CPU MaxPool3D / AvgPool3D have no float64 kernel: Keras 3 cannot run the 3-D
    # adaptive layers in float64
    ("amp1d_float64", "AdaptiveMaxPooling1D", {"output_size": 3, "dtype": "float64"}, (8, 2), "float64"),
]


def _adaptive_case(rec, keras, name, class_name, kwargs, input_shape, dtype):
    rng = _rng(name)
    layer = getattr(keras.layers, class_name)(**kwargs)
    arrays = {}
    for b in BATCHES:
        x = (rng.standard_normal((b,) + tuple(input_shape)) * 2).astype(dtype)
        arrays[f"x_b{b}"] = x
        arrays[f"y_b{b}"] = keras.ops.convert_to_numpy(layer(x))
    rec.case(name, arrays=arrays, class_name=class_name, config=layer.get_config(),
             serialized=keras.layers.serialize(layer), n_weights=0, weight_names=[],
             output_shape=list(layer.compute_output_shape((None,) + tuple(input_shape))),
             batches=list(BATCHES), dtype=dtype)


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for name, kwargs, shape, make, dtype in IDENTITY:
        record_layer(rec, keras, name, "Identity", kwargs, shape, dtype=dtype, make_input=make)
    record_layer(rec, keras, "alias_convolution1dtranspose", "Convolution1DTranspose",
                 {"filters": 2, "kernel_size": 3, "strides": 2}, (4, 3))


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    for name, kwargs, shape, make, dtype in IDENTITY:
        record_layer(rec, keras, name, "Identity", kwargs, shape, dtype=dtype, make_input=make, keras3=True)
    record_layer(rec, keras, "identity_mask", "Identity", {}, (5, 3), mask=_seq_mask(5), keras3=True)
    record_layer(rec, keras, "alias_convolution1dtranspose", "Convolution1DTranspose",
                 {"filters": 2, "kernel_size": 3, "strides": 2}, (4, 3), keras3=True)
    for name, class_name, kwargs, shape, dtype in ADAPTIVE:
        _adaptive_case(rec, keras, name, class_name, kwargs, shape, dtype)
