"""Core layers recorded from tf-keras 2.21: Dense and Activation (more in later issues).

Each case: the layer's class_name and Keras config (``get_config``), ``layers.serialize`` output,
the weights Keras holds (randomized, biases included), inputs at batch 1 and N, and Keras's
outputs and ``compute_output_shape``.
"""

from __future__ import annotations

import inspect
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
    _core_more(rec, keras)


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
    _core_more_keras3(rec, keras)


# ---------------------------------------------------------------------------------------------
# A general layer case (used by the core, embeddings, merge, advanced_activations,
# normalization and noise families): one or several inputs, float or integer, optional input
# masks, training mode, and the weights as Keras holds them after the call.
# ---------------------------------------------------------------------------------------------
def normal_input(scale=2.0):
    def make(rng, shape, dtype):
        return (rng.standard_normal(shape) * scale).astype(dtype)
    return make


def int_input(high, low=0):
    def make(rng, shape, dtype):
        return rng.integers(low, high, size=shape).astype(dtype)
    return make


def default_weights(layer, rng):
    return [(rng.standard_normal(tuple(w.shape)) * 0.5).astype(_np_dtype(w)) for w in layer.weights]


def _np_dtype(w):
    d = w.dtype
    return np.dtype(getattr(d, "as_numpy_dtype", d))


def _to_np(x):
    if x is None:
        return None
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def _shape_list(s):
    s = s.as_list() if hasattr(s, "as_list") else s
    if isinstance(s, (list, tuple)) and s and isinstance(s[0], (list, tuple)) or (isinstance(s, list) and s and hasattr(s[0], "as_list")):
        return [_shape_list(t) for t in s]
    return list(s)


def record_layer(rec, keras, name, class_name, kwargs, input_shape, *, dtype="float32", batches=(1, 4),
                 make_input=None, weights=default_weights, mask=None, training=None, weight_names=True,
                 keras3=False, layer=None):
    """Record one layer case.

    ``input_shape``: a shape without batch, or a list of them (several inputs). ``make_input(rng,
    shape, dtype)`` draws each input; ``mask(rng, batch)`` gives the mask(s) passed to the call.
    ``training``: passed to the call; in training the weights are reset before each batch and
    Keras's weights after the call are recorded (``wt<b>_<i>``).
    """
    rng = _rng(name)
    make_input = make_input or normal_input()
    multi = isinstance(input_shape, list)
    shapes = input_shape if multi else [input_shape]
    if layer is None:
        layer = getattr(keras.layers, class_name)(**kwargs)
    xs = {b: [make_input(rng, (b,) + tuple(s), dtype) for s in shapes] for b in batches}
    masks = {b: (mask(rng, b) if mask else None) for b in batches}

    def inp(b):
        return xs[b] if multi else xs[b][0]

    layer(inp(batches[0]))  # build
    ws = weights(layer, rng)
    if ws:
        if keras3:
            for w, v in zip(layer.weights, ws):
                w.assign(v)
            if hasattr(layer, "finalize_state"):  # what Keras 3 does after loading weights
                layer.finalize_state()
        else:
            layer.set_weights(ws)
    arrays = {f"w{i}": w for i, w in enumerate(ws)}
    for b in batches:
        for i, x in enumerate(xs[b]):
            arrays[f"x{i}_b{b}"] = x
        call_kwargs = {}
        if masks[b] is not None:
            if "mask" in inspect.signature(layer.call).parameters:
                call_kwargs["mask"] = masks[b]
            for i, m in enumerate(masks[b] if isinstance(masks[b], list) else [masks[b]]):
                if m is not None:
                    arrays[f"m{i}_b{b}"] = m
        if training is not None:
            call_kwargs["training"] = training
        if ws and training:
            if keras3:
                for w, v in zip(layer.weights, ws):
                    w.assign(v)
            else:
                layer.set_weights(ws)
        out = layer(inp(b), **call_kwargs)
        arrays[f"y_b{b}"] = _to_np(out)
        import tensorflow as tf

        def tensor(v):
            return None if v is None else tf.constant(v)
        tin = [tensor(x) for x in xs[b]]
        tmask = [tensor(m) for m in masks[b]] if isinstance(masks[b], list) else tensor(masks[b])
        out_mask = layer.compute_mask(tin if multi else tin[0], tmask)
        if out_mask is not None:
            arrays[f"mask_b{b}"] = _to_np(out_mask)
        if training:
            for i, w in enumerate(layer.weights):
                arrays[f"wt{b}_{i}"] = _to_np(w if keras3 else w.numpy())
    in_shapes = [(None,) + tuple(s) for s in shapes]
    out_shape = layer.compute_output_shape(in_shapes if multi else in_shapes[0])
    meta = dict(
        class_name=class_name,
        config=layer.get_config(),
        serialized=keras.layers.serialize(layer),
        n_weights=len(layer.weights),
        n_inputs=len(shapes) if multi else 0,
        output_shape=_shape_list(out_shape),
        batches=list(batches),
        dtype=dtype,
        training=training,
        masks=[b for b in batches if masks[b] is not None],
    )
    if weight_names:
        meta["weight_names"] = [w.path if keras3 else w.name for w in layer.weights]
    if not keras3:
        meta["losses"] = [float(v) for v in layer.losses]
    rec.case(name, arrays=arrays, **meta)
    return layer


def record_model(rec, keras, name, model, inputs, keras3=False):
    """Record a functional model: config, weights, outputs and Keras's output mask(s)."""
    arrays = {}
    rng = _rng(name)
    ws = [(rng.standard_normal(w.shape) * 0.5).astype(_np_dtype(w)) for w in model.weights]
    model.set_weights(ws)
    for i, w in enumerate(ws):
        arrays[f"w{i}"] = w
    inputs = inputs if isinstance(inputs, list) else [inputs]
    for i, x in enumerate(inputs):
        arrays[f"x{i}"] = x
    out = model(inputs if len(inputs) > 1 else inputs[0])
    outs = out if isinstance(out, (list, tuple)) else [out]
    for i, o in enumerate(outs):
        arrays[f"y{i}"] = _to_np(o)
        m = getattr(o, "_keras_mask", None)
        if m is not None:
            arrays[f"mask{i}"] = _to_np(m)
    rec.case(name, arrays=arrays, class_name=type(model).__name__, model_config=model.get_config(),
             n_weights=len(model.weights), n_inputs=len(inputs), n_outputs=len(outs))


def masking_input(rng, shape, dtype):
    """Normal values with some whole time steps equal to 0 (what Masking masks)."""
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    if len(shape) >= 3:
        drop = rng.random(shape[:-1]) < 0.35
        x[drop] = 0
    return x


def _core_more(rec, keras):
    """Dropout family, shape layers, ActivityRegularization, Masking (tf-keras 2.21)."""
    for name, cls, kw, shape, train in [
        ("dropout_inference", "Dropout", {"rate": 0.5}, (4,), None),
        ("dropout_training_false", "Dropout", {"rate": 0.3, "noise_shape": [None, 1, 5], "seed": 7}, (3, 5), False),
        ("dropout_rate0_training", "Dropout", {"rate": 0.0}, (2, 3), True),
        ("dropout_rank4", "Dropout", {"rate": 0.9, "seed": 1}, (2, 3, 2), None),
        ("dropout_noise_shape", "Dropout", {"rate": 0.2, "noise_shape": (None, 1)}, (6,), False),
        ("dropout_named", "Dropout", {"rate": 1.0, "name": "drop_all"}, (3,), False),
        ("spatial_dropout1d", "SpatialDropout1D", {"rate": 0.4}, (5, 3), None),
        ("spatial_dropout1d_seed", "SpatialDropout1D", {"rate": 0.1, "seed": 3}, (2, 6), False),
        ("spatial_dropout1d_rate0", "SpatialDropout1D", {"rate": 0.0}, (4, 2), True),
        ("spatial_dropout2d", "SpatialDropout2D", {"rate": 0.3}, (4, 4, 2), None),
        ("spatial_dropout2d_cf", "SpatialDropout2D", {"rate": 0.5, "data_format": "channels_first"}, (2, 3, 3), False),
        ("spatial_dropout2d_seed", "SpatialDropout2D", {"rate": 0.25, "seed": 11}, (3, 2, 5), None),
        ("spatial_dropout3d", "SpatialDropout3D", {"rate": 0.3}, (2, 2, 2, 3), None),
        ("spatial_dropout3d_cf", "SpatialDropout3D", {"rate": 0.5, "data_format": "channels_first"}, (2, 3, 2, 2), False),
        ("spatial_dropout3d_seed", "SpatialDropout3D", {"rate": 0.0, "seed": 2}, (1, 2, 2, 2), True),
        ("flatten_rank3", "Flatten", {}, (3, 4), None),
        ("flatten_rank2", "Flatten", {}, (5,), None),
        ("flatten_rank4", "Flatten", {}, (2, 3, 4), None),
        ("flatten_cf", "Flatten", {"data_format": "channels_first"}, (2, 3, 4), None),
        ("flatten_cf_rank3", "Flatten", {"data_format": "channels_first"}, (3, 2), None),
        ("flatten_cl_rank5", "Flatten", {"data_format": "channels_last"}, (2, 1, 2, 3), None),
        ("reshape_basic", "Reshape", {"target_shape": (3, 4)}, (12,), None),
        ("reshape_minus1", "Reshape", {"target_shape": (-1, 2)}, (3, 4), None),
        ("reshape_flat", "Reshape", {"target_shape": (24,)}, (2, 3, 4), None),
        ("reshape_minus1_first", "Reshape", {"target_shape": (2, -1, 3)}, (12,), None),
        ("reshape_rank4", "Reshape", {"target_shape": [2, 2, 2]}, (8,), None),
        ("reshape_same", "Reshape", {"target_shape": (5,)}, (5,), None),
        ("permute_21", "Permute", {"dims": (2, 1)}, (3, 4), None),
        ("permute_312", "Permute", {"dims": (3, 1, 2)}, (2, 3, 4), None),
        ("permute_identity", "Permute", {"dims": (1, 2)}, (3, 2), None),
        ("permute_231", "Permute", {"dims": [2, 3, 1]}, (2, 3, 4), None),
        ("permute_rank5", "Permute", {"dims": (4, 3, 2, 1)}, (2, 1, 3, 2), None),
        ("permute_1", "Permute", {"dims": (1,)}, (4,), None),
        ("repeat_vector_3", "RepeatVector", {"n": 3}, (4,), None),
        ("repeat_vector_1", "RepeatVector", {"n": 1}, (2,), None),
        ("repeat_vector_5", "RepeatVector", {"n": 5}, (1,), None),
        ("repeat_vector_named", "RepeatVector", {"n": 2, "name": "rv"}, (3,), None),
        ("repeat_vector_wide", "RepeatVector", {"n": 4, "dtype": "float64"}, (7,), None),
        ("repeat_vector_zero", "RepeatVector", {"n": 0}, (3,), None),
        ("activity_reg_l1", "ActivityRegularization", {"l1": 0.1}, (4,), None),
        ("activity_reg_l2", "ActivityRegularization", {"l2": 0.05}, (3, 2), None),
        ("activity_reg_both", "ActivityRegularization", {"l1": 0.01, "l2": 0.2}, (2, 2, 2), None),
        ("activity_reg_default", "ActivityRegularization", {}, (3,), None),
        ("activity_reg_int_l", "ActivityRegularization", {"l1": 1, "l2": 0}, (2,), None),
        ("activity_reg_rank4", "ActivityRegularization", {"l2": 1.5}, (1, 2, 3), None),
    ]:
        dtype = "float64" if kw.get("dtype") == "float64" else "float32"
        record_layer(rec, keras, name, cls, kw, shape, dtype=dtype, training=train)
    for name, kw, shape in [
        ("masking_default", {}, (5, 3)),
        ("masking_value", {"mask_value": 1.0}, (4, 2)),
        ("masking_rank4", {}, (2, 3, 2)),
        ("masking_neg", {"mask_value": -1.0}, (6, 1)),
        ("masking_rank2", {}, (4,)),
        ("masking_named", {"mask_value": 0.0, "name": "pad_mask"}, (3, 4)),
    ]:
        value = kw.get("mask_value", 0.0)

        def make(rng, shape, dtype, value=value):
            x = masking_input(rng, shape, dtype)
            x[x == 0] = value
            if len(shape) == 2:
                x[0, :] = value
            return x
        record_layer(rec, keras, name, "Masking", kw, shape, make_input=make)
    # models: a mask from Masking flows through Dense and an element-wise layer
    rng = _rng("model_masking_dense")
    inp = keras.Input((5, 3))
    h = keras.layers.Masking(name="masking_m")(inp)
    h = keras.layers.Dense(4, activation="tanh", name="dense_m")(h)
    h = keras.layers.ReLU(name="relu_m")(h)
    out = keras.layers.Dropout(0.5, name="drop_m")(h)
    model = keras.Model(inp, out, name="masked_dense")
    record_model(rec, keras, "model_masking_dense", model, masking_input(rng, (3, 5, 3), "float32"))


def _core_more_keras3(rec, keras):
    for name, cls, kw, shape, train in [
        ("dropout_noise_shape", "Dropout", {"rate": 0.3, "noise_shape": (None, 1, 3), "seed": 2}, (2, 3), False),
        ("spatial_dropout1d", "SpatialDropout1D", {"rate": 0.2}, (3, 2), None),
        ("spatial_dropout2d_cf", "SpatialDropout2D", {"rate": 0.5, "data_format": "channels_first"}, (2, 3, 3), False),
        ("spatial_dropout3d", "SpatialDropout3D", {"rate": 0.1}, (2, 2, 2, 2), None),
        ("flatten_cf", "Flatten", {"data_format": "channels_first"}, (2, 3, 2), None),
        ("reshape_minus1", "Reshape", {"target_shape": (-1, 2)}, (3, 4), None),
        ("permute_312", "Permute", {"dims": (3, 1, 2)}, (2, 3, 4), None),
        ("repeat_vector", "RepeatVector", {"n": 3}, (4,), None),
        ("activity_regularization", "ActivityRegularization", {"l1": 0.1, "l2": 0.01}, (3,), None),
    ]:
        record_layer(rec, keras, name, cls, kw, shape, training=train, keras3=True)
    record_layer(rec, keras, "masking", "Masking", {"mask_value": 0.0}, (5, 3), make_input=masking_input, keras3=True)
