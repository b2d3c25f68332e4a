"""Convolution layers recorded from tf-keras 2.21 (and Keras 3.15): Conv1D/2D/3D,
SeparableConv1D/2D, DepthwiseConv1D/2D, Conv1D/2D/3DTranspose, plus DepthwiseConv3D recorded as
Keras's ``Conv3D(groups=channels)``.

Each case: class_name, Keras config, ``layers.serialize`` output, randomized weights (biases
included), inputs at batch 1 and N, outputs and ``compute_output_shape``. TensorFlow's CPU
kernels refuse most channels_first convolutions; such a case is computed by a channels_last
twin layer (same config but the data format, same weights) on transposed inputs, its output
transposed back, and says so with ``via_channels_last: true``; its config is the
channels_first layer's own.
"""

from __future__ import annotations

import zlib

import numpy as np

SEED = 4321


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _to_last(a):
    return np.moveaxis(a, 1, -1)


def _to_first(a):
    return np.moveaxis(a, -1, 1)


def _run(keras, layer, x, class_name, kwargs):
    """Keras's output; channels_first through a channels_last twin when TF's CPU kernels refuse."""
    try:
        return np.asarray(layer(x)), False
    except Exception:  # noqa: BLE001  (TF raises several types for unsupported NCHW kernels)
        if kwargs.get("data_format") != "channels_first":
            raise
    twin_kwargs = dict(kwargs, data_format="channels_last")
    twin_kwargs.pop("name", None)
    twin = getattr(keras.layers, class_name)(**twin_kwargs)
    twin.build(_to_last(x).shape)
    twin.set_weights(layer.get_weights())
    return np.ascontiguousarray(_to_first(np.asarray(twin(np.ascontiguousarray(_to_last(x)))))), True


def _case(rec, keras, name, class_name, kwargs, input_shape, batches=(1, 3), dtype="float32"):
    rng = _rng(name)
    layer = getattr(keras.layers, class_name)(**kwargs)
    xs = {b: (rng.standard_normal((b,) + tuple(input_shape)) * 1.5).astype(dtype) for b in batches}
    try:  # building through a call gives Keras's scoped weight names
        layer(xs[batches[0]])
    except Exception:  # noqa: BLE001
        layer.build((None,) + tuple(input_shape))
    weights = [(rng.standard_normal(w.shape) * 0.5).astype(dtype) for w in layer.weights]
    layer.set_weights(weights)
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    via = False
    for b in batches:
        arrays[f"x_b{b}"] = xs[b]
        arrays[f"y_b{b}"], v = _run(keras, layer, xs[b], class_name, kwargs)
        via = via or v
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
        losses=[float(v) for v in layer.losses] if not via else [],
        batches=list(batches),
        dtype=dtype,
        via_channels_last=via,
    )


REG = {
    "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.002}},
    "bias_regularizer": "l2",
    "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 2.0, "axis": [0, 1]}},
    "bias_constraint": "non_neg",
    "kernel_initializer": "he_normal",
    "bias_initializer": {"class_name": "Constant", "config": {"value": 0.3}},
}
CF = "channels_first"

CONV1D = [
    ("valid", {"filters": 4, "kernel_size": 3}, (9, 3)),
    ("same_stride2_odd", {"filters": 5, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}, (11, 2)),
    ("causal_dilated", {"filters": 3, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}, (10, 4)),
    ("same_dilated", {"filters": 3, "kernel_size": 2, "padding": "same", "dilation_rate": 3, "activation": "relu6"}, (8, 2)),
    ("stride_gt_kernel", {"filters": 2, "kernel_size": 2, "strides": 3, "use_bias": False}, (10, 3)),
    ("groups", {"filters": 6, "kernel_size": 3, "groups": 2, "padding": "same", "activation": "tanh"}, (7, 4)),
    ("channels_first", {"filters": 4, "kernel_size": 3, "data_format": CF, "padding": "same"}, (3, 8)),
    ("channels_first_causal", {"filters": 2, "kernel_size": 2, "data_format": CF, "padding": "causal", "strides": 2}, (3, 7)),
    ("reg_init", dict(REG, filters=3, kernel_size=2, activity_regularizer="l1"), (5, 2)),
    ("kernel_eq_input", {"filters": 3, "kernel_size": 5}, (5, 2)),
]
CONV2D = [
    ("valid", {"filters": 4, "kernel_size": 3}, (6, 5, 3)),
    ("same_stride2_odd", {"filters": 5, "kernel_size": (3, 2), "strides": (2, 3), "padding": "same", "activation": "relu"}, (7, 9, 2)),
    ("same_dilated", {"filters": 3, "kernel_size": 3, "padding": "same", "dilation_rate": (2, 1), "activation": "relu6"}, (7, 6, 2)),
    ("valid_dilated", {"filters": 3, "kernel_size": 2, "dilation_rate": 2, "use_bias": False}, (6, 6, 3)),
    ("stride_gt_kernel", {"filters": 2, "kernel_size": 2, "strides": 3}, (8, 7, 3)),
    ("groups", {"filters": 6, "kernel_size": 3, "groups": 3, "padding": "same", "activation": "sigmoid"}, (5, 5, 6)),
    ("pointwise", {"filters": 7, "kernel_size": 1, "activation": "relu"}, (4, 3, 5)),
    ("pointwise_stride2", {"filters": 3, "kernel_size": 1, "strides": 2}, (5, 5, 4)),
    ("channels_first", {"filters": 4, "kernel_size": 3, "data_format": CF, "padding": "same", "activation": "relu"}, (3, 6, 5)),
    ("channels_first_pointwise", {"filters": 3, "kernel_size": 1, "data_format": CF}, (4, 3, 3)),
    ("channels_first_groups", {"filters": 4, "kernel_size": 2, "data_format": CF, "groups": 2, "strides": 2}, (4, 5, 5)),
    ("reg_init", dict(REG, filters=3, kernel_size=2, activity_regularizer="l2"), (4, 4, 2)),
    ("one_pixel", {"filters": 2, "kernel_size": 3, "padding": "same"}, (1, 1, 3)),
]
CONV3D = [
    ("valid", {"filters": 3, "kernel_size": 2}, (4, 4, 3, 2)),
    ("same_stride2", {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}, (5, 4, 5, 2)),
    ("same_dilated", {"filters": 2, "kernel_size": 2, "padding": "same", "dilation_rate": 2}, (4, 5, 4, 2)),
    ("stride_gt_kernel", {"filters": 2, "kernel_size": 1, "strides": (2, 3, 2), "use_bias": False}, (5, 5, 4, 3)),
    ("groups", {"filters": 4, "kernel_size": 2, "groups": 2, "activation": "relu6"}, (3, 3, 3, 4)),
    ("channels_first", {"filters": 3, "kernel_size": 2, "data_format": CF, "padding": "same"}, (2, 4, 3, 3)),
    ("reg_init", dict(REG, filters=2, kernel_size=2), (3, 3, 3, 2)),
    ("anisotropic", {"filters": 2, "kernel_size": (1, 3, 2), "strides": (1, 2, 1)}, (2, 5, 4, 2)),
]
DW_REG = {
    "depthwise_regularizer": {"class_name": "L2", "config": {"l2": 0.01}},
    "bias_regularizer": "l1",
    "depthwise_constraint": "non_neg",
    "depthwise_initializer": "he_uniform",
    "bias_initializer": "ones",
}
DW1D = [
    ("valid", {"kernel_size": 3}, (8, 3)),
    ("multiplier", {"kernel_size": 3, "depth_multiplier": 2, "padding": "same", "activation": "relu"}, (7, 2)),
    ("stride2_odd", {"kernel_size": 2, "strides": 2, "padding": "same"}, (9, 3)),
    ("same_dilated", {"kernel_size": 3, "dilation_rate": 2, "padding": "same", "use_bias": False}, (8, 2)),
    ("stride_gt_kernel", {"kernel_size": 1, "strides": 3, "depth_multiplier": 3}, (10, 2)),
    ("channels_first", {"kernel_size": 3, "data_format": CF, "depth_multiplier": 2}, (3, 7)),
    ("reg_init", dict(DW_REG, kernel_size=2), (6, 3)),
    ("relu6", {"kernel_size": 4, "activation": "relu6"}, (4, 4)),
]
DW2D = [
    ("valid", {"kernel_size": 3}, (6, 5, 3)),
    ("multiplier", {"kernel_size": 3, "depth_multiplier": 2, "padding": "same", "activation": "relu"}, (5, 5, 2)),
    ("stride2_odd", {"kernel_size": (3, 2), "strides": 2, "padding": "same"}, (7, 5, 3)),
    ("same_dilated", {"kernel_size": 3, "dilation_rate": 2, "padding": "same", "use_bias": False}, (6, 7, 2)),
    ("stride_gt_kernel", {"kernel_size": 2, "strides": 3, "depth_multiplier": 3}, (8, 7, 2)),
    ("channels_first", {"kernel_size": 3, "data_format": CF, "depth_multiplier": 2, "padding": "same"}, (3, 5, 4)),
    ("reg_init", dict(DW_REG, kernel_size=2), (4, 4, 3)),
    ("relu6_one_pixel", {"kernel_size": 3, "activation": "relu6", "padding": "same"}, (1, 1, 4)),
]
SEP_REG = {
    "depthwise_regularizer": {"class_name": "L2", "config": {"l2": 0.01}},
    "pointwise_regularizer": "l1",
    "bias_regularizer": "l2",
    "pointwise_constraint": {"class_name": "UnitNorm", "config": {"axis": 0}},
    "depthwise_initializer": "he_uniform",
    "pointwise_initializer": "lecun_normal",
}
SEP1D = [
    ("valid", {"filters": 4, "kernel_size": 3}, (8, 3)),
    ("multiplier_same", {"filters": 3, "kernel_size": 3, "depth_multiplier": 2, "padding": "same", "activation": "relu"}, (7, 2)),
    ("causal_dilated", {"filters": 2, "kernel_size": 2, "padding": "causal", "dilation_rate": 3}, (9, 3)),
    ("stride2_odd", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same", "use_bias": False}, (9, 2)),
    ("stride_gt_kernel", {"filters": 2, "kernel_size": 1, "strides": 3}, (10, 3)),
    ("channels_first", {"filters": 3, "kernel_size": 3, "data_format": CF, "depth_multiplier": 2}, (2, 8)),
    ("reg_init", dict(SEP_REG, filters=2, kernel_size=2), (6, 3)),
    ("same_dilated_relu6", {"filters": 4, "kernel_size": 3, "dilation_rate": 2, "padding": "same", "activation": "relu6"}, (7, 2)),
]
SEP2D = [
    ("valid", {"filters": 4, "kernel_size": 3}, (6, 5, 3)),
    ("multiplier_same", {"filters": 3, "kernel_size": 3, "depth_multiplier": 2, "padding": "same", "activation": "relu"}, (5, 5, 2)),
    ("stride2_odd", {"filters": 3, "kernel_size": (3, 2), "strides": 2, "padding": "same", "use_bias": False}, (7, 5, 2)),
    ("same_dilated", {"filters": 2, "kernel_size": 2, "dilation_rate": 2, "padding": "same"}, (6, 6, 3)),
    ("stride_gt_kernel", {"filters": 2, "kernel_size": 1, "strides": 3}, (7, 8, 3)),
    ("channels_first", {"filters": 3, "kernel_size": 3, "data_format": CF, "depth_multiplier": 2, "padding": "same"}, (2, 5, 4)),
    ("reg_init", dict(SEP_REG, filters=2, kernel_size=2), (4, 4, 3)),
    ("relu6", {"filters": 5, "kernel_size": 3, "activation": "relu6"}, (5, 5, 2)),
]
TR1D = [
    ("valid", {"filters": 3, "kernel_size": 3}, (5, 2)),
    ("same_stride2", {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}, (5, 3)),
    ("valid_stride3_k2", {"filters": 2, "kernel_size": 2, "strides": 3}, (4, 2)),
    ("output_padding", {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1}, (4, 3)),
    ("same_output_padding", {"filters": 2, "kernel_size": 4, "strides": 3, "padding": "same", "output_padding": 2}, (4, 2)),
    ("same_dilated", {"filters": 3, "kernel_size": 3, "dilation_rate": 2, "padding": "same", "use_bias": False}, (6, 2)),
    ("channels_first", {"filters": 2, "kernel_size": 3, "strides": 2, "data_format": CF}, (3, 5)),
    ("reg_init", dict(REG, filters=2, kernel_size=2, activation="relu6"), (4, 2)),
]
TR2D = [
    ("valid", {"filters": 3, "kernel_size": 3}, (4, 3, 2)),
    ("k4_s2_same", {"filters": 3, "kernel_size": 4, "strides": 2, "padding": "same", "activation": "relu"}, (3, 4, 2)),
    ("valid_stride3_k2", {"filters": 2, "kernel_size": 2, "strides": 3}, (3, 3, 2)),
    ("output_padding", {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": (1, 0)}, (3, 4, 3)),
    ("same_output_padding", {"filters": 2, "kernel_size": (3, 2), "strides": (2, 3), "padding": "same", "output_padding": (1, 2)}, (3, 3, 2)),
    ("same_dilated", {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same", "use_bias": False}, (5, 4, 2)),
    ("channels_first", {"filters": 2, "kernel_size": 3, "strides": 2, "data_format": CF, "padding": "same"}, (3, 4, 3)),
    ("reg_init", dict(REG, filters=2, kernel_size=2, activation="relu6"), (3, 3, 2)),
]
TR3D = [
    ("valid", {"filters": 2, "kernel_size": 2}, (3, 3, 2, 2)),
    ("same_stride2", {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}, (2, 3, 2, 2)),
    ("valid_stride3_k2", {"filters": 2, "kernel_size": 2, "strides": 3}, (2, 2, 2, 2)),
    ("output_padding", {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": (1, 0, 1)}, (2, 2, 3, 2)),
    ("same_dilated", {"filters": 2, "kernel_size": 2, "dilation_rate": 2, "padding": "same", "use_bias": False}, (3, 3, 3, 2)),
    ("channels_first", {"filters": 2, "kernel_size": 2, "strides": 2, "data_format": CF}, (2, 2, 3, 2)),
    ("reg_init", dict(REG, filters=2, kernel_size=2), (2, 2, 2, 2)),
    ("relu6_same", {"filters": 3, "kernel_size": (2, 3, 1), "padding": "same", "activation": "relu6"}, (2, 3, 3, 2)),
]
TABLES = [
    ("conv1d", "Conv1D", CONV1D), ("conv2d", "Conv2D", CONV2D), ("conv3d", "Conv3D", CONV3D),
    ("dwconv1d", "DepthwiseConv1D", DW1D), ("dwconv2d", "DepthwiseConv2D", DW2D),
    ("sepconv1d", "SeparableConv1D", SEP1D), ("sepconv2d", "SeparableConv2D", SEP2D),
    ("conv1dt", "Conv1DTranspose", TR1D), ("conv2dt", "Conv2DTranspose", TR2D), ("conv3dt", "Conv3DTranspose", TR3D),
]
ALIASES = [
    ("alias_convolution1d", "Convolution1D", {"filters": 2, "kernel_size": 2}, (4, 2)),
    ("alias_convolution2d", "Convolution2D", {"filters": 2, "kernel_size": 2}, (3, 3, 2)),
    ("alias_convolution3d", "Convolution3D", {"filters": 2, "kernel_size": 2}, (2, 2, 2, 2)),
    ("alias_separableconvolution1d", "SeparableConvolution1D", {"filters": 2, "kernel_size": 2}, (4, 2)),
    ("alias_separableconvolution2d", "SeparableConvolution2D", {"filters": 2, "kernel_size": 2}, (3, 3, 2)),
    ("alias_convolution2dtranspose", "Convolution2DTranspose", {"filters": 2, "kernel_size": 2}, (3, 3, 2)),
    ("alias_convolution3dtranspose", "Convolution3DTranspose", {"filters": 2, "kernel_size": 2}, (2, 2, 2, 2)),
]
# DepthwiseConv3D as Keras's Conv3D(groups=channels, filters=channels * multiplier):
# (name, depthwise kwargs, input shape)
DW3D = [
    ("valid", {"kernel_size": 2}, (3, 4, 3, 3)),
    ("multiplier_same", {"kernel_size": 3, "depth_multiplier": 2, "padding": "same", "activation": "relu"}, (3, 3, 4, 2)),
    ("stride2_odd", {"kernel_size": 3, "strides": 2, "padding": "same"}, (5, 3, 5, 2)),
    ("same_dilated", {"kernel_size": 2, "dilation_rate": 2, "padding": "same", "use_bias": False}, (4, 4, 3, 3)),
    ("stride_gt_kernel", {"kernel_size": 1, "strides": (2, 3, 2), "depth_multiplier": 3}, (5, 5, 4, 2)),
    ("channels_first", {"kernel_size": 2, "data_format": CF, "depth_multiplier": 2}, (2, 3, 4, 3)),
    ("relu6", {"kernel_size": (1, 2, 3), "activation": "relu6"}, (2, 3, 4, 4)),
    ("anisotropic_stride", {"kernel_size": 2, "strides": (1, 2, 1)}, (3, 5, 3, 2)),
]


def _dw3d_cases(rec, keras):
    for suffix, kwargs, shape in DW3D:
        name = f"dwconv3d_{suffix}"
        rng = _rng(name)
        cf = kwargs.get("data_format") == CF
        channels = shape[0] if cf else shape[-1]
        mult = kwargs.get("depth_multiplier", 1)
        conv_kwargs = {k: v for k, v in kwargs.items() if k != "depth_multiplier"}
        conv_kwargs.update(filters=channels * mult, groups=channels)
        layer = keras.layers.Conv3D(**conv_kwargs)
        layer.build((None,) + shape)
        weights = [(rng.standard_normal(w.shape) * 0.5).astype("float32") for w in layer.weights]
        layer.set_weights(weights)
        k = layer.kernel_size
        arrays = {"w0": weights[0].reshape(k + (channels, mult))}
        if len(weights) > 1:
            arrays["w1"] = weights[1]
        via = False
        for b in (1, 2):
            x = (rng.standard_normal((b,) + shape) * 1.5).astype("float32")
            arrays[f"x_b{b}"] = x
            arrays[f"y_b{b}"], v = _run(keras, layer, x, "Conv3D", conv_kwargs)
            via = via or v
        out_shape = layer.compute_output_shape((None,) + shape)
        rec.case(
            name, arrays=arrays, class_name="DepthwiseConv3D", depthwise_kwargs=kwargs,
            keras_conv3d_config=layer.get_config(), n_weights=len(weights),
            output_shape=list(out_shape.as_list()), batches=[1, 2], dtype="float32",
            via_channels_last=via,
        )


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for prefix, class_name, table in TABLES:
        for suffix, kwargs, shape in table:
            _case(rec, keras, f"{prefix}_{suffix}", class_name, kwargs, shape)
    for name, class_name, kwargs, shape in ALIASES:
        _case(rec, keras, name, class_name, kwargs, shape)
    _case(rec, keras, "conv2d_float64", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": "same", "dtype": "float64"},
          (5, 4, 2), dtype="float64")
    _case(rec, keras, "dwconv2d_float64", "DepthwiseConv2D", {"kernel_size": 3, "dtype": "float64", "depth_multiplier": 2},
          (5, 4, 2), dtype="float64")
    _case(rec, keras, "conv2dt_float64", "Conv2DTranspose", {"filters": 3, "kernel_size": 3, "strides": 2, "dtype": "float64"},
          (3, 3, 2), dtype="float64")
    _dw3d_cases(rec, keras)


def _case3(rec, keras, name, class_name, kwargs, shape, batches=(1, 3)):
    rng = _rng(name)
    layer = getattr(keras.layers, class_name)(**kwargs)
    layer.build((None,) + tuple(shape))
    arrays = {}
    for i, w in enumerate(layer.weights):
        value = (rng.standard_normal(w.shape) * 0.5).astype("float32")
        w.assign(value)
        arrays[f"w{i}"] = value
    via = False
    for b in batches:
        x = (rng.standard_normal((b,) + tuple(shape)) * 1.5).astype("float32")
        arrays[f"x_b{b}"] = x
        try:
            arrays[f"y_b{b}"] = keras.ops.convert_to_numpy(layer(x))
        except Exception:  # noqa: BLE001
            if kwargs.get("data_format") != CF:
                raise
            twin = getattr(keras.layers, class_name)(**dict(kwargs, data_format="channels_last"))
            twin.build((None,) + _to_last(x).shape[1:])
            twin.set_weights([np.asarray(w) for w in layer.weights])
            arrays[f"y_b{b}"] = np.ascontiguousarray(_to_first(keras.ops.convert_to_numpy(twin(np.ascontiguousarray(_to_last(x))))))
            via = True
    rec.case(
        name, arrays=arrays, class_name=class_name, config=layer.get_config(),
        serialized=keras.layers.serialize(layer), n_weights=len(layer.weights),
        output_shape=list(layer.compute_output_shape((None,) + tuple(shape))),
        batches=list(batches), dtype="float32", via_channels_last=via,
    )


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    cases = [
        ("conv1d_causal", "Conv1D", {"filters": 3, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}, (8, 2)),
        ("conv2d_groups_relu", "Conv2D", {"filters": 4, "kernel_size": 3, "groups": 2, "activation": "relu", "padding": "same"}, (5, 5, 4)),
        ("conv2d_channels_first", "Conv2D", {"filters": 3, "kernel_size": 3, "data_format": CF, "strides": 2}, (2, 7, 6)),
        ("conv3d_same", "Conv3D", {"filters": 2, "kernel_size": 2, "padding": "same"}, (3, 3, 3, 2)),
        ("dwconv1d_mult", "DepthwiseConv1D", {"kernel_size": 3, "depth_multiplier": 2}, (7, 3)),
        ("dwconv2d_same", "DepthwiseConv2D", {"kernel_size": 3, "padding": "same", "activation": "relu6"}, (5, 4, 3)),
        ("sepconv1d_same", "SeparableConv1D", {"filters": 3, "kernel_size": 3, "padding": "same", "depth_multiplier": 2}, (7, 2)),
        ("sepconv2d_stride", "SeparableConv2D", {"filters": 3, "kernel_size": 3, "strides": 2}, (7, 6, 2)),
        ("conv1dt_stride", "Conv1DTranspose", {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (5, 3)),
        ("conv2dt_output_padding", "Conv2DTranspose", {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1}, (3, 4, 2)),
        ("conv3dt_valid", "Conv3DTranspose", {"filters": 2, "kernel_size": 2, "strides": 2}, (2, 2, 2, 2)),
        ("conv2dt_dilated_same", "Conv2DTranspose", {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (4, 4, 2)),
    ]
    for name, class_name, kwargs, shape in cases:
        _case3(rec, keras, name, class_name, kwargs, shape)
