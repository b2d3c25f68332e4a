"""Unit tests for klayers.activations: maths, dtypes, stability, dialects, get/serialize."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from klayers import activations as A
from klayers.serialization import custom_object_scope, dialect_scope

X = np.array([[-1e4, -30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0, 1e4]], dtype=np.float32)
ELEMENTWISE = [n for n in A.__all__ if n not in ("get", "serialize", "deserialize", "threshold", "glu", "softmax", "log_softmax", "sparsemax", "linear")]



def test_the_elementwise_table_is_not_empty():
    assert {"relu", "sigmoid", "tanh", "elu", "gelu", "softplus"} <= set(ELEMENTWISE)  # a filter gone wrong fails


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_preserved_and_finite(name, dtype):
    x = X.astype(dtype)
    y = getattr(A, name)(x)
    assert y.dtype == np.dtype(dtype) and y.shape == x.shape
    if name != "exponential":
        assert np.all(np.isfinite(y)), name


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "sparsemax"])
def test_normalizers_stable_at_large_magnitude(name):
    y = getattr(A, name)(X)
    assert np.all(np.isfinite(y)) and y.dtype == np.float32
    probs = np.exp(y) if name == "log_softmax" else y
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    assert probs[0, -1] == pytest.approx(1.0)


REFERENCE = [
    ("sigmoid", {}, lambda x: special.expit(x)),
    ("softplus", {}, lambda x: np.logaddexp(x, 0)),
    ("relu", {"alpha": 0.1, "max_value": 5.0, "threshold": 0.5},
     lambda x: np.where(x >= 5.0, 5.0, np.where(x > 0.5, x, 0.1 * (x - 0.5)))),
    ("hard_sigmoid", {}, lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    ("elu", {"alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * np.expm1(np.minimum(x, 0)))),
    ("gelu", {}, lambda x: 0.5 * x * (1 + special.erf(x / np.sqrt(2)))),
    ("gelu", {"approximate": True}, lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    ("leaky_relu", {"alpha": 0.05}, lambda x: np.where(x >= 0, x, 0.05 * x)),
    ("celu", {"alpha": 2.0}, lambda x: np.maximum(x, 0) + 2.0 * np.expm1(np.minimum(x, 0) / 2.0)),
    ("hard_silu", {}, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
    ("squareplus", {"b": 1.0}, lambda x: (x + np.sqrt(x * x + 1.0)) / 2),
    ("soft_shrink", {"threshold": 1.0}, lambda x: np.sign(x) * np.maximum(np.abs(x) - 1.0, 0)),
    ("tanh_shrink", {}, lambda x: x - np.tanh(x)),
]


@pytest.mark.parametrize("name,kwargs,ref", REFERENCE, ids=[f"{r[0]}-{i}" for i, r in enumerate(REFERENCE)])
def test_against_formula(name, kwargs, ref):
    x = np.linspace(-8, 8, 97)
    np.testing.assert_allclose(getattr(A, name)(x, **kwargs), ref(x), rtol=1e-12, atol=1e-12)


def test_threshold_glu_linear():
    x = np.array([[-1.0, 0.2, 0.7, 3.0]])
    np.testing.assert_array_equal(A.threshold(x, 0.5, -9.0), [[-9.0, -9.0, 0.7, 3.0]])
    np.testing.assert_allclose(A.glu(x), x[:, :2] * special.expit(x[:, 2:]))
    with pytest.raises(ValueError, match="divisible by 2"):
        A.glu(np.ones((2, 3)))
    assert A.linear(x) is x
    with pytest.raises(ValueError, match="1D"):
        A.softmax(np.ones(3))


def test_dialects():
    x = np.array([-4.0, -1.0, 0.0, 1.0, 4.0], dtype=np.float32)
    assert A.get("hard_sigmoid") is A.hard_sigmoid
    with dialect_scope(3):
        k3 = A.get("hard_sigmoid")
        assert A.get("relu") is A.keras3.relu
        np.testing.assert_allclose(A.get("leaky_relu")(x, negative_slope=0.5), np.where(x >= 0, x, 0.5 * x))
    np.testing.assert_allclose(k3(x), np.clip(x / 6 + 0.5, 0, 1), rtol=1e-6)
    assert not np.allclose(k3(x), A.hard_sigmoid(x))
    assert A.serialize(k3) == "hard_sigmoid" and A.serialize(A.keras3.relu) == "relu"
    # Keras 3-only names resolve in both dialects
    assert A.get("celu") is A.celu and A.get("hard_swish") is A.hard_silu


def test_get_serialize_deserialize():
    assert A.get(None) is A.linear
    assert A.get(abs) is abs
    assert A.serialize(A.relu) == "relu" and A.serialize(A.silu) == "swish"
    assert A.deserialize("softmax") is A.softmax
    with pytest.raises(ValueError, match="no_such_act"):
        A.get("no_such_act")
    with pytest.raises(TypeError):
        A.get(3)

    def my_act(x):
        return x

    with custom_object_scope({"my_act": my_act}):
        assert A.get("my_act") is my_act
    assert A.serialize(my_act)["config"] == "my_act"
