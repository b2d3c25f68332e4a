"""Normalization layers recorded from tf-keras 2.21 and Keras 3.15: BatchNormalization at
inference and one training step (outputs and the updated moving statistics, on TensorFlow's
fused and non-fused paths, with and without a mask), LayerNormalization, Rescaling and
Normalization (static and adapted statistics)."""

from __future__ import annotations

import numpy as np
from core import SEED, int_input, record_layer


def stat_weights(layer, rng):
    """Random weights with positive variances (moving_variance, variance) and an int count."""
    out = []
    for w in layer.weights:
        name = getattr(w, "path", None) or w.name
        shape = tuple(w.shape)
        if "variance" in name:
            out.append((np.abs(rng.standard_normal(shape)) + 0.3).astype("float32" if "64" not in str(w.dtype) else "float64"))
        elif "count" in name:
            out.append(np.asarray(rng.integers(1, 100), dtype="int64").reshape(shape))
        else:
            dt = "float64" if "64" in str(w.dtype) else "float32"
            out.append((rng.standard_normal(shape) * 0.7).astype(dt))
    return out


def _seq_mask(t):
    def make(rng, b):
        m = rng.random((b, t)) < 0.7
        m[:, 0] = True
        return m
    return make


BN = [
    # name, kwargs, shape, training, mask
    ("bn_rank2", {}, (4,), None, None),
    ("bn_rank4_cl", {}, (3, 3, 2), False, None),
    ("bn_rank4_cf", {"axis": 1}, (2, 3, 3), None, None),
    ("bn_axis_list", {"axis": [1, 2]}, (3, 2), None, None),
    ("bn_no_center", {"center": False, "epsilon": 0.01}, (3,), None, None),
    ("bn_no_scale", {"scale": False, "momentum": 0.9}, (2, 3), None, None),
    ("bn_no_center_no_scale", {"center": False, "scale": False}, (5,), None, None),
    ("bn_init_reg_constraint", {
        "beta_initializer": "ones", "gamma_initializer": "zeros",
        "moving_mean_initializer": {"class_name": "Constant", "config": {"value": 0.5}},
        "moving_variance_initializer": "ones",
        "beta_regularizer": "l2", "gamma_regularizer": {"class_name": "L1", "config": {"l1": 0.02}},
        "beta_constraint": "non_neg", "gamma_constraint": {"class_name": "MaxNorm", "config": {"max_value": 2.0}},
    }, (4,), None, None),
    ("bn_float64", {"dtype": "float64"}, (2, 2, 3), None, None),
    ("bn_rank5", {"axis": -1}, (2, 2, 2, 2), None, None),
    ("bn_rank3_axis1", {"axis": 1}, (3, 4), None, None),
    ("bn_train_rank2", {"momentum": 0.8}, (4,), True, None),
    ("bn_train_rank3", {}, (5, 3), True, None),
    ("bn_train_rank3_mask", {"momentum": 0.5}, (5, 3), True, _seq_mask(5)),
    ("bn_train_rank4_fused", {"momentum": 0.7}, (3, 3, 2), True, None),
    ("bn_train_rank4_cf_fused", {"axis": 1, "momentum": 0.6}, (2, 3, 3), True, None),
    ("bn_train_rank5_fused", {}, (2, 2, 2, 3), True, None),
    ("bn_train_axis_list", {"axis": [1, 3], "momentum": 0.5}, (2, 3, 2), True, None),
    ("bn_train_float64", {"dtype": "float64", "momentum": 0.5}, (3, 3, 2), True, None),
    ("bn_train_not_trainable", {"trainable": False}, (3,), True, None),
    ("bn_train_rank4_mask_fused", {"momentum": 0.5}, (3, 3, 2), True, lambda rng, b: rng.random((b, 3, 3)) < 0.5),
    ("bn_train_no_center_scale", {"center": False, "scale": False, "momentum": 0.0}, (4,), True, None),
]

LN = [
    ("ln_default", {}, (5,)),
    ("ln_rank3", {}, (3, 4)),
    ("ln_axes12", {"axis": [1, 2]}, (3, 2)),
    ("ln_axis1_rank3", {"axis": 1}, (4, 3)),
    ("ln_no_center_scale", {"center": False, "scale": False, "epsilon": 1e-6}, (6,)),
    ("ln_small_eps_rank4", {"axis": -1, "epsilon": 1e-6}, (2, 2, 3)),
    ("ln_init_reg", {"beta_initializer": "ones", "gamma_initializer": "zeros", "beta_regularizer": "l1",
                     "gamma_regularizer": "l2", "beta_constraint": "non_neg", "gamma_constraint": "unit_norm"}, (4,)),
    ("ln_float64", {"dtype": "float64", "axis": [-2, -1]}, (2, 3)),
]

RESCALING = [
    ("rescaling_255", {"scale": 1.0 / 255}, (4, 4, 3), int_input(256), "uint8"),
    ("rescaling_offset", {"scale": 1.0 / 127.5, "offset": -1.0}, (3, 2), None, "float32"),
    ("rescaling_per_channel", {"scale": [0.5, 2.0, -1.0], "offset": [0.0, 1.0, 0.5]}, (2, 3), None, "float32"),
    ("rescaling_int_scale", {"scale": 2, "offset": 1}, (5,), int_input(10), "int32"),
    ("rescaling_rank2", {"scale": 0.1}, (6,), None, "float32"),
    ("rescaling_float64", {"scale": 3.0, "offset": 0.25, "dtype": "float64"}, (2, 2), None, "float64"),
]

NORMALIZATION = [
    ("norm_scalar", {"mean": 1.0, "variance": 4.0}, (3,)),
    ("norm_per_feature", {"mean": [0.5, -1.0, 2.0], "variance": [1.0, 0.25, 9.0]}, (3,)),
    ("norm_axis_none", {"axis": None, "mean": 0.3, "variance": 2.0}, (2, 3)),
    ("norm_invert", {"mean": [1.0, 2.0], "variance": [4.0, 0.5], "invert": True}, (2,)),
    ("norm_adapted", {}, (4,)),
    ("norm_adapted_axes", {"axis": (1, 2)}, (2, 3)),
    ("norm_adapted_axis1", {"axis": 1}, (3, 2)),
    ("norm_zero_variance", {"mean": 0.0, "variance": 0.0}, (3,)),
    ("norm_adapted_invert", {"invert": True, "axis": -1}, (2, 3)),
]


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for name, kwargs, shape, training, mask in BN:
        dtype = "float64" if kwargs.get("dtype") == "float64" else "float32"
        record_layer(rec, keras, name, "BatchNormalization", kwargs, shape, dtype=dtype, training=training,
                     mask=mask, weights=stat_weights)
    for name, kwargs, shape in LN:
        dtype = "float64" if kwargs.get("dtype") == "float64" else "float32"
        record_layer(rec, keras, name, "LayerNormalization", kwargs, shape, dtype=dtype)
    for name, kwargs, shape, make, dtype in RESCALING:
        record_layer(rec, keras, name, "Rescaling", kwargs, shape, dtype=dtype, make_input=make)
    for name, kwargs, shape in NORMALIZATION:
        # tf-keras names the adapted weights "mean:0" ... without the layer prefix
        record_layer(rec, keras, name, "Normalization", kwargs, shape, weights=stat_weights, weight_names=False)


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    for name, cls, kwargs, shape, training, mask in [
        ("bn_inference", "BatchNormalization", {}, (3, 3, 2), None, None),
        ("bn_train_rank4", "BatchNormalization", {"momentum": 0.7}, (3, 3, 2), True, None),
        ("bn_train_rank3_mask", "BatchNormalization", {"momentum": 0.5}, (5, 3), True, _seq_mask(5)),
        ("bn_axis1", "BatchNormalization", {"axis": 1, "center": False}, (2, 3), None, None),
        ("ln_default", "LayerNormalization", {}, (3, 4), None, None),
        ("ln_axes", "LayerNormalization", {"axis": [1, 2], "scale": False}, (3, 2), None, None),
        ("rescaling", "Rescaling", {"scale": 0.5, "offset": 1.0}, (4,), None, None),
        ("norm_static", "Normalization", {"mean": [1.0, 2.0], "variance": [4.0, 1.0]}, (2,), None, None),
        ("norm_adapted", "Normalization", {"axis": -1}, (3,), None, None),
    ]:
        record_layer(rec, keras, name, cls, kwargs, shape, training=training, mask=mask, weights=stat_weights, keras3=True)
