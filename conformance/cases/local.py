"""Locally-connected layers recorded from tf-keras 2.21 (Keras 3 dropped them).

Every case: class_name, Keras's config and ``layers.serialize`` output, the weights Keras holds
(randomized: implementation 2's kernel everywhere, so entries outside the mask must be
ignored; biases too), inputs at two batch sizes and Keras's outputs, ``compute_output_shape``,
and the losses (regularizers). Cases cover implementations 1, 2 and 3, strides (also larger than
the kernel), both data formats, ``"same"`` padding with odd and even kernels (tf-keras centres
its windows at ``kernel // 2``), use_bias on and off, fused and plain activations, float64.
"""

from __future__ import annotations

import zlib

import numpy as np

SEED = 4321


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _case(rec, keras, name, class_name, kwargs, input_shape, dtype="float32", batches=(1, 3)):
    rng = _rng(name)
    layer = getattr(keras.layers, class_name)(**kwargs)
    xs = {b: (rng.standard_normal((b,) + tuple(input_shape)) * 2).astype(dtype) for b in batches}
    layer(xs[batches[0]])  # build
    weights = [(rng.standard_normal(w.shape) * 0.5).astype(w.dtype.as_numpy_dtype) for w in layer.weights]
    layer.set_weights(weights)
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    for b in batches:
        arrays[f"x_b{b}"] = xs[b]
        arrays[f"y_b{b}"] = np.asarray(layer(xs[b]))
    out_shape = layer.compute_output_shape((None,) + tuple(input_shape))
    rec.case(
        name,
        arrays=arrays,
        class_name=class_name,
        config=layer.get_config(),
        serialized=keras.layers.serialize(layer),
        n_weights=len(layer.weights),
        weight_names=[w.name for w in layer.weights],
        weight_shapes=[list(w.shape) for w in layer.weights],
        output_shape=list(out_shape.as_list() if hasattr(out_shape, "as_list") else out_shape),
        losses=[float(v) for v in layer.losses],
        batches=list(batches),
        dtype=dtype,
    )


CF = {"data_format": "channels_first"}
REGS = {
    "kernel_initializer": "he_normal",
    "bias_initializer": {"class_name": "Constant", "config": {"value": 0.25}},
    "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.01}},
    "bias_regularizer": "l1",
    "activity_regularizer": {"class_name": "L1L2", "config": {"l1": 0.001, "l2": 0.002}},
    "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 2.0, "axis": 0}},
    "bias_constraint": "non_neg",
}

LC1D = [
    # name, kwargs, input shape (without batch)
    ("lc1d_impl1_basic", {"filters": 4, "kernel_size": 3}, (10, 3)),
    ("lc1d_impl1_stride2_cf_nobias", {"filters": 3, "kernel_size": 3, "strides": 2, "use_bias": False, **CF}, (4, 11)),
    ("lc1d_impl1_k1_relu", {"filters": 2, "kernel_size": 1, "activation": "relu"}, (5, 4)),
    ("lc1d_impl1_regs_relu6", {"filters": 3, "kernel_size": (2,), "activation": "relu6", "name": "lc_regs", **REGS}, (6, 2)),
    ("lc1d_impl2_relu", {"filters": 5, "kernel_size": 2, "implementation": 2, "activation": "relu"}, (9, 2)),
    ("lc1d_impl2_same_even_cf", {"filters": 3, "kernel_size": 4, "strides": 3, "padding": "same",
                                 "implementation": 2, **CF}, (3, 10)),
    ("lc1d_impl2_same_odd_cl", {"filters": 2, "kernel_size": 3, "padding": "SAME", "implementation": 2}, (7, 3)),
    ("lc1d_impl2_cf_valid_tanh", {"filters": 4, "kernel_size": 3, "strides": 2, "implementation": 2,
                                  "activation": "tanh", **CF}, (2, 9)),
    ("lc1d_impl3_same_stride2_tanh", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same",
                                      "implementation": 3, "activation": "tanh"}, (7, 3)),
    ("lc1d_impl3_cf_valid_nobias", {"filters": 2, "kernel_size": 5, "implementation": 3, "use_bias": False, **CF},
     (2, 9)),
    ("lc1d_impl3_stride_gt_kernel", {"filters": 3, "kernel_size": 2, "strides": 3, "implementation": 3}, (11, 2)),
    ("lc1d_impl3_same_even_cf_sigmoid", {"filters": 2, "kernel_size": 2, "padding": "same", "implementation": 3,
                                         "activation": "sigmoid", **CF}, (3, 5)),
]

LC2D = [
    ("lc2d_impl1_basic", {"filters": 4, "kernel_size": 3}, (6, 7, 2)),
    ("lc2d_impl1_cf_stride_nobias", {"filters": 3, "kernel_size": (2, 3), "strides": (2, 1), "use_bias": False, **CF},
     (3, 7, 6)),
    ("lc2d_impl1_odd_strides", {"filters": 2, "kernel_size": (3, 1), "strides": (3, 2), "activation": "relu"},
     (7, 5, 1)),
    ("lc2d_impl1_regs", {"filters": 3, "kernel_size": 2, "name": "lc2_regs", **REGS}, (4, 5, 2)),
    ("lc2d_impl2_same_stride2_relu", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same",
                                      "implementation": 2, "activation": "relu"}, (5, 6, 2)),
    ("lc2d_impl2_cf_valid_sigmoid", {"filters": 2, "kernel_size": (3, 2), "strides": (1, 2), "implementation": 2,
                                     "activation": "sigmoid", **CF}, (2, 5, 7)),
    ("lc2d_impl2_cf_same_even_nobias", {"filters": 2, "kernel_size": (2, 4), "padding": "same", "implementation": 2,
                                        "use_bias": False, **CF}, (3, 4, 5)),
    ("lc2d_impl3_valid_nobias", {"filters": 3, "kernel_size": 2, "implementation": 3, "use_bias": False}, (5, 5, 3)),
    ("lc2d_impl3_cf_same_even", {"filters": 2, "kernel_size": (2, 4), "strides": (2, 3), "padding": "same",
                                 "implementation": 3, **CF}, (2, 6, 7)),
    ("lc2d_impl3_same_relu6", {"filters": 2, "kernel_size": 3, "padding": "same", "implementation": 3,
                               "activation": "relu6"}, (5, 4, 2)),
    ("lc2d_impl3_cf_valid_stride", {"filters": 3, "kernel_size": (3, 2), "strides": (2, 2), "implementation": 3,
                                    **CF}, (2, 7, 6)),
]


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for name, kwargs, shape in LC1D:
        _case(rec, keras, name, "LocallyConnected1D", kwargs, shape)
    for name, kwargs, shape in LC2D:
        _case(rec, keras, name, "LocallyConnected2D", kwargs, shape)
    # float64 for each implementation, and one bigger batch
    _case(rec, keras, "lc1d_impl2_float64", "LocallyConnected1D",
          {"filters": 3, "kernel_size": 3, "implementation": 2, "dtype": "float64"}, (8, 2), dtype="float64")
    _case(rec, keras, "lc2d_impl1_float64_b7", "LocallyConnected2D",
          {"filters": 3, "kernel_size": 2, "strides": (1, 2), "dtype": "float64"}, (4, 5, 3), dtype="float64",
          batches=(1, 7))
    _case(rec, keras, "lc2d_impl3_float64", "LocallyConnected2D",
          {"filters": 2, "kernel_size": 2, "implementation": 3, "padding": "same", "dtype": "float64", **CF},
          (2, 3, 4), dtype="float64")
    record_model_files(rec, keras)


def _model_file_case(rec, keras, name, input_shape, stack, fmt, batch=3):
    """A model of stacked locally-connected layers saved by tf-keras (``.h5`` or ``.keras``);
    the file's bytes are kept as a uint8 array, with an input and tf-keras's prediction."""
    import os
    import tempfile

    rng = _rng(name)
    inp = keras.Input(input_shape)
    y = inp
    for kwargs in stack:
        y = getattr(keras.layers, kwargs.pop("class_name"))(**kwargs)(y)
    model = keras.Model(inp, y)
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype("float32") for w in model.get_weights()])
    x = rng.standard_normal((batch,) + tuple(input_shape)).astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model." + fmt)
        model.save(path) if fmt == "keras" else model.save(path, save_format="h5")
        with open(path, "rb") as f:
            data = np.frombuffer(f.read(), np.uint8)
    rec.case(name, arrays={"model_file": data, "x": x, "y": np.asarray(model(x))}, kind="model_file", fmt=fmt,
             class_names=sorted({layer.__class__.__name__ for layer in model.layers}),
             n_weights=len(model.weights))


def record_model_files(rec, keras):
    stack_1d = [
        {"class_name": "LocallyConnected1D", "filters": 4, "kernel_size": 3, "padding": "same", "implementation": 2,
         "activation": "relu"},
        {"class_name": "LocallyConnected1D", "filters": 3, "kernel_size": 2, "strides": 2, "implementation": 3},
        {"class_name": "LocallyConnected1D", "filters": 2, "kernel_size": 2, "implementation": 1, "use_bias": False},
    ]
    stack_2d = [
        {"class_name": "LocallyConnected2D", "filters": 3, "kernel_size": 3, "padding": "same", "implementation": 3,
         "data_format": "channels_first"},
        {"class_name": "LocallyConnected2D", "filters": 2, "kernel_size": (2, 3), "implementation": 2,
         "data_format": "channels_first", "activation": "tanh"},
        {"class_name": "LocallyConnected2D", "filters": 2, "kernel_size": 2, "implementation": 1,
         "data_format": "channels_first"},
    ]
    for fmt in ("h5", "keras"):
        _model_file_case(rec, keras, f"model_lc1d_stack_{fmt}", (12, 3), [dict(d) for d in stack_1d], fmt)
        _model_file_case(rec, keras, f"model_lc2d_stack_cf_{fmt}", (2, 7, 6), [dict(d) for d in stack_2d], fmt)
