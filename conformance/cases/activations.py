"""Activation conformance cases: outputs on seeded inputs (with large magnitudes), names,
serialization, for tf-keras 2.21 (``record``) and Keras 3.15 (``record_keras3``)."""

from __future__ import annotations

import numpy as np

# A row of extreme and edge values, then seeded normal rows: (4, 16).
EDGE = [-1e4, -100.0, -20.0, -5.0, -2.5, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.5, 5.0, 100.0, 1e4]


def inputs(dtype: str = "float32") -> np.ndarray:
    rng = np.random.default_rng(1234)
    x = np.concatenate([np.array([EDGE]), rng.standard_normal((3, 16)) * 3.0], axis=0)
    return x.astype(dtype)


def inputs3d(dtype: str = "float32") -> np.ndarray:
    rng = np.random.default_rng(99)
    return (rng.standard_normal((2, 3, 4)) * 4.0).astype(dtype)


# (function name, kwargs, input kind)
K2_CASES = [
    ("softmax", {}, "2d"),
    ("softmax", {"axis": 0}, "2d"),
    ("softmax", {"axis": 1}, "3d"),
    ("softmax", {"axis": [1, 2]}, "3d"),
    ("elu", {}, "2d"),
    ("elu", {"alpha": 0.5}, "2d"),
    ("selu", {}, "2d"),
    ("softplus", {}, "2d"),
    ("softsign", {}, "2d"),
    ("swish", {}, "2d"),
    ("relu", {}, "2d"),
    ("relu", {"alpha": 0.1}, "2d"),
    ("relu", {"max_value": 6.0}, "2d"),
    ("relu", {"max_value": 4.5}, "2d"),
    ("relu", {"threshold": 1.0}, "2d"),
    ("relu", {"alpha": 0.1, "max_value": 5.0, "threshold": 0.5}, "2d"),
    ("relu", {"alpha": 0.3, "threshold": -1.0}, "2d"),
    ("gelu", {}, "2d"),
    ("gelu", {"approximate": True}, "2d"),
    ("tanh", {}, "2d"),
    ("sigmoid", {}, "2d"),
    ("exponential", {}, "2d"),
    ("hard_sigmoid", {}, "2d"),
    ("linear", {}, "2d"),
    ("mish", {}, "2d"),
    ("leaky_relu", {}, "2d"),
    ("leaky_relu", {"alpha": 0.05}, "2d"),
    ("log_softmax", {}, "2d"),
    ("log_softmax", {"axis": 0}, "2d"),
    ("relu6", {}, "2d"),
    ("silu", {}, "2d"),
    ("silu", {"beta": 2.0}, "2d"),
]
F64 = ["softmax", "sigmoid", "tanh", "softplus", "gelu", "elu", "selu", "log_softmax", "hard_sigmoid", "mish"]

K3_CASES = [
    ("relu", {}, "2d"),
    ("relu", {"negative_slope": 0.1}, "2d"),
    ("relu", {"max_value": 6.0}, "2d"),
    ("relu", {"negative_slope": 0.1, "max_value": 5.0, "threshold": 0.5}, "2d"),
    ("leaky_relu", {}, "2d"),
    ("leaky_relu", {"negative_slope": 0.05}, "2d"),
    ("relu6", {}, "2d"),
    ("softmax", {}, "2d"),
    ("softmax", {"axis": 0}, "2d"),
    ("celu", {}, "2d"),
    ("celu", {"alpha": 0.5}, "2d"),
    ("elu", {}, "2d"),
    ("elu", {"alpha": 0.5}, "2d"),
    ("selu", {}, "2d"),
    ("softplus", {}, "2d"),
    ("softsign", {}, "2d"),
    ("squareplus", {}, "2d"),
    ("squareplus", {"b": 1.0}, "2d"),
    ("soft_shrink", {}, "2d"),
    ("soft_shrink", {"threshold": 1.0}, "2d"),
    ("sparse_plus", {}, "2d"),
    ("silu", {}, "2d"),
    ("swish", {}, "2d"),
    ("gelu", {}, "2d"),
    ("gelu", {"approximate": True}, "2d"),
    ("glu", {}, "2d"),
    ("glu", {"axis": 0}, "2d"),
    ("tanh", {}, "2d"),
    ("tanh_shrink", {}, "2d"),
    ("threshold", {"threshold": 0.5, "default_value": -1.0}, "2d"),
    ("sigmoid", {}, "2d"),
    ("sparse_sigmoid", {}, "2d"),
    ("exponential", {}, "2d"),
    ("hard_sigmoid", {}, "2d"),
    ("hard_silu", {}, "2d"),
    ("hard_swish", {}, "2d"),
    ("hard_tanh", {}, "2d"),
    ("hard_shrink", {}, "2d"),
    ("hard_shrink", {"threshold": 1.5}, "2d"),
    ("linear", {}, "2d"),
    ("mish", {}, "2d"),
    ("log_softmax", {}, "2d"),
    ("log_softmax", {"axis": 0}, "2d"),
    ("log_sigmoid", {}, "2d"),
    ("sparsemax", {}, "2d"),
    ("sparsemax", {"axis": 1}, "3d"),
]


def _case_name(fn: str, kwargs: dict, kind: str, dtype: str) -> str:
    parts = [fn] + [f"{k}={v}" for k, v in sorted(kwargs.items())]
    if kind != "2d":
        parts.append(kind)
    if dtype != "float32":
        parts.append(dtype)
    return "-".join(parts).replace(" ", "").replace("[", "").replace("]", "").replace(",", "_")


def _x(kind: str, dtype: str) -> np.ndarray:
    return inputs(dtype) if kind == "2d" else inputs3d(dtype)


def my_custom_activation(x):
    return x * 2.0


def record(rec) -> None:
    import tensorflow as tf
    import tf_keras
    from tf_keras import activations

    for fn_name, kwargs, kind in K2_CASES:
        for dtype in ["float32"] + (["float64"] if fn_name in F64 and not kwargs else []):
            x = _x(kind, dtype)
            fn = activations.get(fn_name)
            y = np.asarray(fn(tf.constant(x), **kwargs))
            rec.case(
                _case_name(fn_name, kwargs, kind, dtype),
                arrays={"x": x, "y": y},
                fn=fn_name,
                kwargs=kwargs,
                dtype=dtype,
                out_dtype=str(y.dtype),
                serialized=activations.serialize(fn),
            )
    # get/serialize/deserialize behaviour
    public = sorted(n for n in dir(tf_keras.activations) if not n.startswith("_"))
    get_none = activations.get(None).__name__
    try:
        activations.get("abcd")
        unknown = None
    except Exception as e:  # noqa: BLE001 - record what Keras raises
        unknown = type(e).__name__
    registered = tf_keras.saving.register_keras_serializable(package="KlayersTest")(my_custom_activation)
    custom_registered = activations.serialize(registered)
    tf_keras.saving.get_custom_objects().clear()

    def unregistered_activation(x):
        return x

    custom_unregistered = activations.serialize(unregistered_activation)
    rec.case(
        "api",
        public=public,
        get_none=get_none,
        unknown_error=unknown,
        custom_registered=custom_registered,
        custom_unregistered=custom_unregistered,
        serialize_dict={"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "relu"},
        deserialize_dict=activations.deserialize(
            {"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "relu"}
        ).__name__,
    )


def record_keras3(rec) -> None:
    import keras
    from keras import activations, ops

    for fn_name, kwargs, kind in K3_CASES:
        x = _x(kind, "float32")
        fn = activations.get(fn_name)
        y = np.asarray(ops.convert_to_numpy(fn(ops.convert_to_tensor(x), **kwargs)))
        rec.case(
            _case_name(fn_name, kwargs, kind, "float32"),
            arrays={"x": x, "y": y},
            fn=fn_name,
            kwargs=kwargs,
            dtype="float32",
            out_dtype=str(y.dtype),
            serialized=activations.serialize(fn),
        )
    public = sorted(n for n in dir(keras.activations) if not n.startswith("_"))
    try:
        activations.get("abcd")
        unknown = None
    except Exception as e:  # noqa: BLE001
        unknown = type(e).__name__
    rec.case("api", public=public, get_none=activations.get(None).__name__, unknown_error=unknown)
