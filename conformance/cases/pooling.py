"""Pooling layers recorded from tf-keras 2.21 (and a few from Keras 3.15).

Each layer case: class_name (aliases included, as a config may name them), Keras's config and
``layers.serialize`` output, inputs at batch 1 and N and Keras's outputs, and
``compute_output_shape``. Special inputs: ``nan`` cases put NaN, +-inf in the input (what
TensorFlow's max does with them is the spec), ``masked`` cases give GlobalAveragePooling1D a mask
(pre-, post-, mid-sequence and fully masked samples), ``error`` cases record that Keras refuses
an input (window larger than the input, wrong rank).
"""

from __future__ import annotations

import zlib

import numpy as np

BATCHES = (1, 3)


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _input(rng, shape, dtype, special):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    if special == "nan":
        flat = x.reshape(-1)
        idx = rng.permutation(flat.size)
        k = max(1, flat.size // 6)
        flat[idx[:k]] = np.nan
        flat[idx[k:k + k // 2 + 1]] = -np.inf
        flat[idx[k + k // 2 + 1:k + k // 2 + 2]] = np.inf
        # whole windows of NaN (the first two rows, or channels, of sample 0) and of -inf (the
        # last row, or channel, of the last sample)
        x[0, :2] = np.nan
        x[-1, -1] = -np.inf
    return x


def _layer_case(rec, keras, name, class_name, kwargs, input_shape, dtype="float32", special=None,
                batches=BATCHES):
    rng = _rng(name)
    layer = getattr(keras.layers, class_name)(**kwargs)
    arrays = {}
    for b in batches:
        x = _input(rng, (b,) + tuple(input_shape), dtype, special)
        arrays[f"x_b{b}"] = x
        arrays[f"y_b{b}"] = np.asarray(layer(x))
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
        losses=[],
        batches=list(batches),
        dtype=dtype,
        special=special,
    )


def _masked_case(rec, keras, name, kwargs, input_shape, masks):
    """GlobalAveragePooling1D called with a (batch, steps) boolean mask."""
    import tensorflow as tf

    rng = _rng(name)
    layer = keras.layers.GlobalAveragePooling1D(**kwargs)
    mask = np.asarray(masks, dtype=bool)
    x = _input(rng, (mask.shape[0],) + tuple(input_shape), "float32", None)
    y = np.asarray(layer(tf.constant(x), mask=tf.constant(mask)))
    rec.case(name, arrays={"x": x, "mask": mask, "y": y}, kind="masked", class_name="GlobalAveragePooling1D",
             config=layer.get_config(), output_mask=None if layer.compute_mask(x, mask) is None else "mask")


def _error_case(rec, keras, name, class_name, kwargs, input_shape):
    """Record how Keras refuses this input: the exception of a symbolic call on
    ``keras.Input(input_shape[1:])`` (the case's spec) and what an eager call does (TensorFlow's
    eager average pooling returns an empty output for a window larger than the input, where its
    max pooling and every symbolic call raise; klayers raises in both)."""
    layer = getattr(keras.layers, class_name)(**kwargs)
    try:
        layer(keras.Input(batch_shape=tuple(input_shape)))
    except Exception as e:  # noqa: BLE001  (whatever Keras raises is the record)
        symbolic = (type(e).__name__, " ".join(str(e).split())[:300])
    else:
        raise AssertionError(f"{name}: Keras accepted the symbolic input")
    layer = getattr(keras.layers, class_name)(**kwargs)
    try:
        eager = ("output", list(np.asarray(layer(np.zeros(input_shape, "float32"))).shape))
    except Exception as e:  # noqa: BLE001
        eager = (type(e).__name__, " ".join(str(e).split())[:300])
    rec.case(name, kind="error", class_name=class_name, config=layer.get_config(), input_shape=list(input_shape),
             keras_error=symbolic[0], keras_message=symbolic[1], eager=eager)


# (name suffix, kwargs, input shape without batch, extras)
WINDOW_1D = [
    ("default_odd", {}, (9, 3), {}),
    ("p3_s1", {"pool_size": 3, "strides": 1}, (7, 4), {}),
    ("p2_s3", {"pool_size": 2, "strides": 3}, (10, 2), {}),
    ("p3_s2_same", {"pool_size": 3, "strides": 2, "padding": "same"}, (9, 3), {}),
    ("p4_s3_same", {"pool_size": 4, "strides": 3, "padding": "SAME"}, (10, 2), {}),
    ("p5_same_short", {"pool_size": 5, "padding": "same"}, (3, 2), {}),
    ("p3_cf", {"pool_size": 3, "data_format": "channels_first"}, (3, 11), {}),
    ("p2_s1_same_cf", {"pool_size": 2, "strides": 1, "padding": "same", "data_format": "channels_first"}, (4, 7), {}),
    ("p3_s2_same_f64", {"pool_size": 3, "strides": 2, "padding": "same", "dtype": "float64"}, (8, 3), {"dtype": "float64"}),
    ("p2_nan", {"pool_size": 2}, (8, 5), {"special": "nan"}),
    ("p3_s1_same_nan", {"pool_size": 3, "strides": 1, "padding": "same"}, (7, 4), {"special": "nan"}),
    ("p4_wide", {"pool_size": 4, "strides": 2}, (12, 37), {}),
]
WINDOW_2D = [
    ("default", {}, (6, 6, 3), {}),
    ("p3_s2_same", {"pool_size": 3, "strides": 2, "padding": "same"}, (7, 7, 4), {}),
    ("p2x3_s1x2", {"pool_size": (2, 3), "strides": (1, 2)}, (5, 7, 2), {}),
    ("p3x2_s2x3_same", {"pool_size": (3, 2), "strides": (2, 3), "padding": "same"}, (7, 8, 3), {}),
    ("p2_s3", {"pool_size": 2, "strides": 3}, (8, 7, 2), {}),
    ("p4_s3_same", {"pool_size": (4, 4), "strides": (3, 3), "padding": "same"}, (5, 5, 2), {}),
    ("p3_s1_same_cf", {"pool_size": 3, "strides": 1, "padding": "same", "data_format": "channels_first"}, (3, 5, 6), {}),
    ("p2_cf", {"pool_size": (2, 2), "data_format": "channels_first"}, (2, 7, 5), {}),
    ("p3x2_s2x1_cf", {"pool_size": (3, 2), "strides": (2, 1), "data_format": "channels_first"}, (3, 7, 6), {}),
    ("p2_f64", {"pool_size": 2, "strides": 1, "padding": "same", "dtype": "float64"}, (5, 4, 3), {"dtype": "float64"}),
    ("p2_nan", {}, (6, 6, 3), {"special": "nan"}),
    ("p3_s2_same_nan", {"pool_size": 3, "strides": 2, "padding": "same"}, (7, 7, 4), {"special": "nan"}),
    ("p2_wide", {"pool_size": 2}, (4, 4, 37), {}),
]
WINDOW_3D = [
    ("default", {}, (4, 4, 4, 2), {}),
    ("p3_s2_same", {"pool_size": 3, "strides": 2, "padding": "same"}, (5, 5, 5, 2), {}),
    ("p2x3x1_s1x2x1", {"pool_size": (2, 3, 1), "strides": (1, 2, 1)}, (4, 5, 3, 2), {}),
    ("p1x2x3_s2x3x1_same", {"pool_size": (1, 2, 3), "strides": (2, 3, 1), "padding": "same"}, (3, 5, 6, 2), {}),
    ("p2_s3", {"pool_size": 2, "strides": 3}, (5, 7, 4, 1), {}),
    ("p2_s1", {"pool_size": 2, "strides": 1}, (3, 4, 3, 3), {}),
    ("p2_cf", {"pool_size": 2, "data_format": "channels_first"}, (2, 4, 5, 3), {}),
    ("p3x2x2_s1x2x1_same_cf", {"pool_size": (3, 2, 2), "strides": (1, 2, 1), "padding": "same",
                               "data_format": "channels_first"}, (3, 4, 3, 5), {}),
    ("p3x1x2_s2x1x3_cf", {"pool_size": (3, 1, 2), "strides": (2, 1, 3), "data_format": "channels_first"},
     (2, 5, 3, 7), {}),
    ("p2_nan", {"pool_size": 2}, (4, 4, 4, 3), {"special": "nan"}),
]
GLOBAL = {
    1: [
        ("default", {}, (5, 3), {}),
        ("keepdims", {"keepdims": True}, (6, 4), {}),
        ("cf", {"data_format": "channels_first"}, (3, 7), {}),
        ("cf_keepdims", {"data_format": "channels_first", "keepdims": True}, (4, 5), {}),
        ("one_step", {}, (1, 5), {}),
        ("long", {}, (257, 3), {}),
        ("f64", {"dtype": "float64"}, (6, 3), {"dtype": "float64"}),
        ("nan", {}, (6, 4), {"special": "nan"}),
    ],
    2: [
        ("default", {}, (4, 5, 3), {}),
        ("keepdims", {"keepdims": True}, (3, 3, 4), {}),
        ("cf", {"data_format": "channels_first"}, (3, 4, 5), {}),
        ("cf_keepdims", {"data_format": "channels_first", "keepdims": True}, (2, 3, 3), {}),
        ("one_pixel", {}, (1, 1, 6), {}),
        ("large", {}, (9, 11, 24), {}),
        ("f64", {"dtype": "float64"}, (3, 4, 2), {"dtype": "float64"}),
        ("nan", {}, (4, 4, 5), {"special": "nan"}),
    ],
    3: [
        ("default", {}, (3, 4, 2, 3), {}),
        ("keepdims", {"keepdims": True}, (2, 3, 3, 4), {}),
        ("cf", {"data_format": "channels_first"}, (3, 2, 4, 3), {}),
        ("cf_keepdims", {"data_format": "channels_first", "keepdims": True}, (2, 3, 2, 2), {}),
        ("one_voxel", {}, (1, 1, 1, 5), {}),
        ("large", {}, (5, 6, 7, 8), {}),
        ("f64", {"dtype": "float64"}, (2, 3, 2, 2), {"dtype": "float64"}),
        ("nan", {}, (3, 3, 3, 4), {"special": "nan"}),
    ],
}
ALIASES = [
    ("MaxPool1D", {"pool_size": 3, "strides": 2}, (8, 3)),
    ("MaxPool2D", {"pool_size": 2, "padding": "same"}, (5, 5, 2)),
    ("MaxPool3D", {"pool_size": 2}, (4, 4, 4, 1)),
    ("AvgPool1D", {"pool_size": 3, "padding": "same"}, (7, 3)),
    ("AvgPool2D", {"pool_size": 3, "strides": 2, "padding": "same"}, (5, 6, 2)),
    ("AvgPool3D", {"pool_size": (2, 1, 2)}, (4, 3, 4, 2)),
    ("GlobalMaxPool1D", {"keepdims": True}, (5, 3)),
    ("GlobalMaxPool2D", {}, (4, 3, 2)),
    ("GlobalMaxPool3D", {"data_format": "channels_first"}, (2, 3, 2, 2)),
    ("GlobalAvgPool1D", {}, (5, 3)),
    ("GlobalAvgPool2D", {"keepdims": True}, (3, 4, 2)),
    ("GlobalAvgPool3D", {}, (2, 2, 3, 2)),
]
MASKS = [
    ("post", {}, (5, 3), [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]),
    ("pre", {}, (4, 2), [[0, 0, 1, 1], [0, 1, 1, 1]]),
    ("mid", {}, (6, 4), [[1, 0, 1, 0, 1, 1], [1, 1, 0, 0, 1, 0]]),
    ("all_masked", {}, (3, 2), [[0, 0, 0], [1, 0, 1]]),
    ("keepdims", {"keepdims": True}, (5, 3), [[1, 1, 0, 0, 1], [0, 1, 1, 1, 1]]),
    ("cf", {"data_format": "channels_first"}, (3, 5), [[1, 1, 1, 0, 0], [0, 1, 0, 1, 1]]),
    ("cf_keepdims", {"data_format": "channels_first", "keepdims": True}, (2, 4), [[1, 1, 0, 1], [1, 0, 0, 0]]),
]
ERRORS = [
    ("max2d_window_larger", "MaxPooling2D", {"pool_size": 4}, (1, 3, 5, 2)),
    ("avg1d_window_larger", "AveragePooling1D", {"pool_size": 6}, (2, 5, 3)),
    ("max3d_window_larger", "MaxPooling3D", {"pool_size": (2, 2, 3)}, (1, 3, 3, 2, 1)),
    ("max2d_wrong_rank", "MaxPooling2D", {}, (2, 4, 4)),
    ("avg3d_wrong_rank", "AveragePooling3D", {}, (2, 4, 4, 4)),
    ("gap2d_wrong_rank", "GlobalAveragePooling2D", {}, (2, 4, 3)),
    ("gmp1d_wrong_rank", "GlobalMaxPooling1D", {}, (2, 4, 3, 1)),
    ("gap1d_zero_steps", "GlobalAveragePooling1D", {}, (2, 0, 3)),
]


def record(rec):
    import tf_keras as keras

    for rank, table in ((1, WINDOW_1D), (2, WINDOW_2D), (3, WINDOW_3D)):
        for kind in ("MaxPooling", "AveragePooling"):
            for suffix, kwargs, shape, extra in table:
                name = f"{kind.lower()}{rank}d_{suffix}"
                _layer_case(rec, keras, name, f"{kind}{rank}D", kwargs, shape, **extra)
    for rank, table in GLOBAL.items():
        for kind in ("GlobalMaxPooling", "GlobalAveragePooling"):
            for suffix, kwargs, shape, extra in table:
                name = f"{kind.lower()}{rank}d_{suffix}"
                _layer_case(rec, keras, name, f"{kind}{rank}D", kwargs, shape, **extra)
    for alias, kwargs, shape in ALIASES:
        _layer_case(rec, keras, f"alias_{alias.lower()}", alias, kwargs, shape)
    for suffix, kwargs, shape, masks in MASKS:
        _masked_case(rec, keras, f"globalaveragepooling1d_masked_{suffix}", kwargs, shape, masks)
    for name, class_name, kwargs, shape in ERRORS:
        _error_case(rec, keras, f"error_{name}", class_name, kwargs, shape)


def record_keras3(rec):
    import keras

    cases = [
        ("MaxPooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}, (8, 3)),
        ("AveragePooling1D", {"pool_size": 2, "data_format": "channels_first"}, (3, 7)),
        ("MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}, (7, 7, 4)),
        ("AveragePooling2D", {"pool_size": (3, 2), "strides": (2, 3), "padding": "same"}, (7, 8, 3)),
        ("MaxPooling3D", {"pool_size": 2}, (4, 4, 4, 2)),
        ("AveragePooling3D", {"pool_size": 3, "strides": 2, "padding": "same"}, (5, 5, 5, 2)),
        ("GlobalMaxPooling1D", {"keepdims": True}, (5, 3)),
        ("GlobalAveragePooling1D", {"data_format": "channels_first"}, (3, 7)),
        ("GlobalMaxPooling2D", {"data_format": "channels_first"}, (3, 4, 5)),
        ("GlobalAveragePooling2D", {"keepdims": True}, (4, 5, 3)),
        ("GlobalMaxPooling3D", {}, (3, 4, 2, 3)),
        ("GlobalAveragePooling3D", {"keepdims": True, "data_format": "channels_first"}, (2, 3, 2, 2)),
        ("MaxPool2D", {"pool_size": 2}, (5, 5, 2)),
        ("GlobalAvgPool1D", {}, (5, 3)),
    ]
    for class_name, kwargs, shape in cases:
        _layer_case(rec, keras, f"k3_{class_name.lower()}", class_name, kwargs, shape)
