"""Core layers recorded from tf-keras 2.21: Dense and Activation (more in later issues).

Each case: the layer's class_name and Keras config (``get_config``), ``layers.serialize`` output,
the weights Keras holds (randomized, biases included), inputs at batch 1 and N, and Keras's
outputs and ``compute_output_shape``.
"""

from __future__ import annotations

import zlib

import numpy as np

SEED = 1234


def _randomize(layer, rng):
    weights = [rng.standard_normal(w.shape).astype(w.dtype.as_numpy_dtype) * 0.5 for w in layer.weights]
    layer.set_weights(weights)
    return weights


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _layer_case(rec, keras, name, class_name, kwargs, input_shape, dtype="float32", batches=(1, 5), int_input=False):
    rng = _rng(name)
    layer = getattr(keras.layers, class_name)(**kwargs)
    xs = {}
    for b in batches:
        shape = (b,) + tuple(input_shape)
        if int_input:
            xs[b] = rng.integers(-3, 4, size=shape).astype(dtype)
        else:
            xs[b] = (rng.standard_normal(shape) * 2).astype(dtype)
    layer(xs[batches[0]])  # build
    arrays = {f"w{i}": w for i, w in enumerate(_randomize(layer, rng))}
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
        output_shape=list(out_shape.as_list() if hasattr(out_shape, "as_list") else out_shape),
        losses=[float(v) for v in layer.losses],
        batches=list(batches),
        dtype=dtype,
    )


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    dense = [
        ("dense_basic", {"units": 4}, (3,)),
        ("dense_relu", {"units": 7, "activation": "relu"}, (5,)),
        ("dense_tanh_nobias", {"units": 3, "activation": "tanh", "use_bias": False}, (6,)),
        ("dense_softmax", {"units": 5, "activation": "softmax"}, (4,)),
        ("dense_rank3", {"units": 6, "activation": "sigmoid"}, (4, 3)),
        ("dense_rank4_elu", {"units": 2, "activation": "elu"}, (2, 3, 5)),
        ("dense_hard_sigmoid", {"units": 8, "activation": "hard_sigmoid"}, (8,)),
        ("dense_relu6_k2name", {"units": 4, "activation": "relu6"}, (3,)),
        ("dense_gelu", {"units": 4, "activation": "gelu"}, (3,)),
        ("dense_selu_init_reg", {
            "units": 9, "activation": "selu", "kernel_initializer": "lecun_normal",
            "bias_initializer": {"class_name": "Constant", "config": {"value": 0.3}},
            "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.002}},
            "bias_regularizer": "l2", "activity_regularizer": "l1",
            "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 2.0, "axis": 0}},
            "bias_constraint": "non_neg",
        }, (10,)),
        ("dense_input_dim", {"units": 3, "input_dim": 4, "name": "named_dense"}, (4,)),
        ("dense_input_shape", {"units": 3, "input_shape": (2, 4), "activation": "swish"}, (2, 4)),
        ("dense_wide", {"units": 300, "activation": "relu"}, (129,)),
        ("dense_one_unit", {"units": 1, "activation": "linear"}, (1,)),
        ("dense_trainable_false", {"units": 3, "trainable": False}, (3,)),
    ]
    for name, kwargs, shape in dense:
        _layer_case(rec, keras, name, "Dense", kwargs, shape)
    _layer_case(rec, keras, "dense_float64", "Dense", {"units": 5, "activation": "relu", "dtype": "float64"}, (7,), dtype="float64")
    _layer_case(rec, keras, "dense_int_input", "Dense", {"units": 3}, (4,), dtype="int32", int_input=True)
    activation = [
        ("activation_relu", {"activation": "relu"}, (4, 3)),
        ("activation_softmax", {"activation": "softmax"}, (6,)),
        ("activation_hard_sigmoid", {"activation": "hard_sigmoid"}, (5,)),
        ("activation_linear", {"activation": "linear"}, (2, 2, 2)),
        ("activation_exponential", {"activation": "exponential"}, (3,)),
        ("activation_softplus", {"activation": "softplus"}, (3, 3)),
    ]
    for name, kwargs, shape in activation:
        _layer_case(rec, keras, name, "Activation", kwargs, shape)
    _lambda_cases(rec, keras)


def square_plus(x, k=1.0):
    """The function wrapped by the Lambda cases (the replay defines the same one)."""
    return x * x + k


def _lambda_cases(rec, keras):
    cases = [
        ("lambda_named_function", {"function": square_plus, "arguments": {"k": 0.5}}, (3,)),
        ("lambda_named_output_shape", {"function": square_plus, "output_shape": (2, 2)}, (2, 2)),
        ("lambda_python_lambda", {"function": lambda x: x * 2.0 + 1.0}, (4,)),
    ]
    for name, kwargs, shape in cases:
        _layer_case(rec, keras, name, "Lambda", kwargs, shape)


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    for name, class_name, kwargs, shape in [
        ("dense_basic", "Dense", {"units": 4}, (3,)),
        ("dense_hard_sigmoid", "Dense", {"units": 8, "activation": "hard_sigmoid"}, (8,)),
        ("dense_gelu", "Dense", {"units": 4, "activation": "gelu"}, (3,)),
        ("dense_rank3_relu", "Dense", {"units": 6, "activation": "relu"}, (4, 3)),
        ("activation_hard_sigmoid", "Activation", {"activation": "hard_sigmoid"}, (5,)),
        ("activation_hard_silu", "Activation", {"activation": "hard_silu"}, (5,)),
        ("activation_leaky_relu", "Activation", {"activation": "leaky_relu"}, (5,)),
    ]:
        rng = _rng(name)
        layer = getattr(keras.layers, class_name)(**kwargs)
        arrays = {}
        x = (rng.standard_normal((5,) + shape) * 3).astype("float32")
        layer(x)
        for i, w in enumerate(layer.weights):
            value = (rng.standard_normal(w.shape) * 0.5).astype("float32")
            w.assign(value)
            arrays[f"w{i}"] = value
        arrays["x_b5"] = x
        arrays["y_b5"] = keras.ops.convert_to_numpy(layer(x))
        rec.case(
            name,
            arrays=arrays,
            class_name=class_name,
            config=layer.get_config(),
            serialized=keras.layers.serialize(layer),
            n_weights=len(layer.weights),
            output_shape=list(layer.compute_output_shape((None,) + shape)),
            batches=[5],
            dtype="float32",
        )
