"""Advanced activation layers recorded from tf-keras 2.21 and Keras 3.15: LeakyReLU, PReLU,
ELU, ThresholdedReLU, Softmax (axes, masks), ReLU (max_value, negative_slope, threshold)."""

from __future__ import annotations

from core import SEED, record_layer


def _mask(shape, p=0.7):
    def make(rng, b):
        m = rng.random((b,) + shape) < p
        m[..., 0] = True
        return m
    return make


def _float_mask(shape):
    def make(rng, b):
        return (rng.random((b,) + shape) < 0.6).astype("float32")
    return make


CASES = [
    ("leaky_relu_default", "LeakyReLU", {}, (5,), None),
    ("leaky_relu_alpha01", "LeakyReLU", {"alpha": 0.1}, (3, 4), None),
    ("leaky_relu_alpha0", "LeakyReLU", {"alpha": 0.0}, (2, 2, 3), None),
    ("leaky_relu_alpha_big", "LeakyReLU", {"alpha": 1.5}, (4,), None),
    ("leaky_relu_float64", "LeakyReLU", {"alpha": 0.2, "dtype": "float64"}, (3,), None),
    ("leaky_relu_rank5", "LeakyReLU", {"alpha": 0.05, "name": "lrelu"}, (2, 1, 2, 2), None),
    ("relu_default", "ReLU", {}, (6,), None),
    ("relu_max6", "ReLU", {"max_value": 6.0}, (3, 3), None),
    ("relu_slope", "ReLU", {"negative_slope": 0.2}, (5,), None),
    ("relu_threshold", "ReLU", {"threshold": 0.5}, (2, 4), None),
    ("relu_all", "ReLU", {"max_value": 2.5, "negative_slope": 0.1, "threshold": 0.3}, (2, 2, 3), None),
    ("relu_slope_threshold", "ReLU", {"negative_slope": 0.3, "threshold": 1.0}, (4,), None),
    ("relu_max_int", "ReLU", {"max_value": 1}, (4,), None),
    ("relu_max0", "ReLU", {"max_value": 0.0, "negative_slope": 0.5}, (3,), None),
    ("elu_default", "ELU", {}, (5,), None),
    ("elu_alpha05", "ELU", {"alpha": 0.5}, (3, 2), None),
    ("elu_alpha_neg", "ELU", {"alpha": -1.0}, (4,), None),
    ("elu_alpha0", "ELU", {"alpha": 0.0}, (2, 2, 2), None),
    ("elu_alpha2_rank4", "ELU", {"alpha": 2.0}, (2, 3, 2), None),
    ("elu_float64", "ELU", {"alpha": 1.3, "dtype": "float64"}, (3,), None),
    ("thresholded_relu_default", "ThresholdedReLU", {}, (6,), None),
    ("thresholded_relu_05", "ThresholdedReLU", {"theta": 0.5}, (3, 2), None),
    ("thresholded_relu_0", "ThresholdedReLU", {"theta": 0.0}, (4,), None),
    ("thresholded_relu_25", "ThresholdedReLU", {"theta": 2.5}, (2, 2, 2), None),
    ("thresholded_relu_int", "ThresholdedReLU", {"theta": 1}, (5,), None),
    ("thresholded_relu_float64", "ThresholdedReLU", {"theta": 0.7, "dtype": "float64"}, (3,), None),
    ("prelu_default", "PReLU", {}, (4,), None),
    ("prelu_rank3", "PReLU", {}, (3, 2), None),
    ("prelu_shared1", "PReLU", {"shared_axes": [1]}, (3, 4), None),
    ("prelu_shared12_rank4", "PReLU", {"shared_axes": [1, 2]}, (3, 3, 2), None),
    ("prelu_shared_int", "PReLU", {"shared_axes": 2}, (2, 3), None),
    ("prelu_init_reg_constraint", "PReLU", {
        "alpha_initializer": {"class_name": "Constant", "config": {"value": 0.25}},
        "alpha_regularizer": {"class_name": "L1", "config": {"l1": 0.01}},
        "alpha_constraint": "non_neg"}, (5,), None),
    ("softmax_default", "Softmax", {}, (5,), None),
    ("softmax_axis1", "Softmax", {"axis": 1}, (4, 3), None),
    ("softmax_axes12", "Softmax", {"axis": [1, 2]}, (3, 2), None),
    ("softmax_axis_list1", "Softmax", {"axis": [-1]}, (2, 4), None),
    ("softmax_mask", "Softmax", {}, (6,), _mask((6,))),
    ("softmax_mask_broadcast", "Softmax", {"axis": -1}, (3, 4), _mask((1, 4))),
    ("softmax_float_mask", "Softmax", {}, (2, 5), _float_mask((2, 5))),
    ("softmax_robust_mask", "Softmax", {"robust_masking": True}, (4,), _float_mask((4,))),
    ("softmax_rank4_axis2", "Softmax", {"axis": 2}, (2, 3, 2), None),
    ("softmax_float64", "Softmax", {"dtype": "float64"}, (4,), None),
]


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for name, cls, kwargs, shape, mask in CASES:
        dtype = "float64" if kwargs.get("dtype") == "float64" else "float32"
        record_layer(rec, keras, name, cls, kwargs, shape, dtype=dtype, mask=mask)


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    for name, cls, kwargs, shape, mask in [
        ("leaky_relu_negative_slope", "LeakyReLU", {"negative_slope": 0.15}, (4,), None),
        ("leaky_relu_default", "LeakyReLU", {}, (3, 2), None),
        ("relu_all", "ReLU", {"max_value": 3.0, "negative_slope": 0.1, "threshold": 0.2}, (5,), None),
        ("elu", "ELU", {"alpha": 0.7}, (4,), None),
        ("prelu_shared", "PReLU", {"shared_axes": [1]}, (3, 2), None),
        ("softmax_axis1_mask", "Softmax", {"axis": 1}, (4, 2), _mask((4, 2))),
        ("softmax_axes", "Softmax", {"axis": [1, 2]}, (2, 3), None),
    ]:
        record_layer(rec, keras, name, cls, kwargs, shape, mask=mask, keras3=True)
