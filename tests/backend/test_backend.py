"""Unit tests for klayers.backend: config, random draws, and each NumPy helper."""

from __future__ import annotations

import numpy as np
import pytest

from klayers import backend as K


def test_config_roundtrip():
    assert K.floatx() == "float32" and K.epsilon() == 1e-7 and K.image_data_format() == "channels_last"
    try:
        K.set_floatx("float64")
        assert K.floatx() == "float64" and K.zeros((2,)).dtype == np.float64
        K.set_epsilon(1e-5)
        assert K.epsilon() == 1e-5
        K.set_image_data_format("channels_first")
        assert K.image_data_format() == "channels_first"
    finally:
        K.set_floatx("float32")
        K.set_epsilon(1e-7)
        K.set_image_data_format("channels_last")
    with pytest.raises(ValueError):
        K.set_floatx("int8")
    with pytest.raises(ValueError):
        K.set_image_data_format("nhwc")
    assert K.cast_to_floatx(0.01) == np.float32(0.01) and isinstance(K.cast_to_floatx(1), np.float32)


@pytest.mark.parametrize("fn,kwargs", [(K.random_normal, {"mean": 1.0, "stddev": 2.0}), (K.random_uniform, {"minval": -1.0, "maxval": 3.0}), (K.truncated_normal, {"mean": 1.0, "stddev": 2.0})])
def test_random_seeded_and_distributed(fn, kwargs):
    a = fn((200, 300), seed=5, **kwargs)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, fn((200, 300), seed=5, **kwargs))
    assert not np.array_equal(a, fn((200, 300), seed=6, **kwargs))
    assert fn((3,), dtype="float64", **kwargs).dtype == np.float64
    if fn is K.random_uniform:
        assert a.min() >= -1.0 and a.max() < 3.0 and abs(a.mean() - 1.0) < 0.02
    else:
        assert abs(a.mean() - 1.0) < 0.03
    if fn is K.truncated_normal:
        assert a.min() >= -3.0 and a.max() <= 5.0


X = np.arange(-3, 3, dtype=np.float32).reshape(2, 3)

ELEMENTWISE = [
    (K.abs, np.abs), (K.square, np.square), (K.exp, np.exp), (K.sign, np.sign), (K.round, np.round),
    (K.sin, np.sin), (K.cos, np.cos), (K.tanh, np.tanh), (K.softsign, lambda x: x / (1 + np.abs(x))),
    (K.sigmoid, lambda x: 1 / (1 + np.exp(-x))), (K.softplus, lambda x: np.log1p(np.exp(x))),
    (K.relu, lambda x: np.maximum(x, 0)), (K.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    (K.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1)), (K.sqrt, lambda x: np.sqrt(np.maximum(x, 0))),
    (lambda x: K.log(np.abs(x) + 1), lambda x: np.log(np.abs(x) + 1)), (lambda x: K.pow(x, 3), lambda x: x**3),
    (lambda x: K.clip(x, -1, 1.5), lambda x: np.clip(x, -1, 1.5)), (lambda x: K.maximum(x, 0.5), lambda x: np.maximum(x, 0.5)),
    (lambda x: K.minimum(x, 0.5), lambda x: np.minimum(x, 0.5)), (lambda x: K.softmax(x), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    (lambda x: K.l2_normalize(x, axis=1), lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)),
]


@pytest.mark.parametrize("fn,ref", ELEMENTWISE, ids=[f"ew{i}" for i in range(len(ELEMENTWISE))])
def test_elementwise(fn, ref):
    np.testing.assert_allclose(fn(X), ref(X.astype(np.float64)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "var", "std", "any", "all"])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (1, True), ([0, 1], False), (0, False)])
def test_reductions(name, axis, keepdims):
    ref_axis = tuple(axis) if isinstance(axis, list) else axis
    np.testing.assert_allclose(getattr(K, name)(X, axis=axis, keepdims=keepdims), getattr(np, name)(X, axis=ref_axis, keepdims=keepdims), rtol=1e-6)


def test_comparisons_and_arg():
    for fn, ref in [(K.equal, np.equal), (K.not_equal, np.not_equal), (K.greater, np.greater), (K.greater_equal, np.greater_equal), (K.less, np.less), (K.less_equal, np.less_equal)]:
        np.testing.assert_array_equal(fn(X, 0), ref(X, 0))
    np.testing.assert_array_equal(K.argmax(X), [2, 2])
    np.testing.assert_array_equal(K.argmin(X, axis=0), [0, 0, 0])
    np.testing.assert_array_equal(K.switch(X > 0, X, -X), np.abs(X))


def test_shapes_and_construction():
    assert K.int_shape(X) == (2, 3) and K.ndim(X) == 2
    np.testing.assert_array_equal(K.shape(X), [2, 3])
    assert K.reshape(X, (3, -1)).shape == (3, 2) and K.flatten(X).shape == (6,)
    assert K.permute_dimensions(np.zeros((2, 3, 4)), (2, 0, 1)).shape == (4, 2, 3)
    np.testing.assert_array_equal(K.transpose(X), X.T)
    assert K.expand_dims(X, 1).shape == (2, 1, 3) and K.squeeze(np.zeros((2, 1, 3)), 1).shape == (2, 3)
    assert K.concatenate([X, X], axis=0).shape == (4, 3) and K.stack([X, X], axis=1).shape == (2, 2, 3)
    assert K.tile(X, (2, 1)).shape == (4, 3) and K.repeat_elements(X, 2, axis=1).shape == (2, 6)
    np.testing.assert_array_equal(K.gather(X, [1, 1]), X[[1, 1]])
    assert K.zeros((2,)).dtype == np.float32 and K.ones((2,), dtype="int32").dtype == np.int32
    np.testing.assert_array_equal(K.zeros_like(X), 0 * X)
    np.testing.assert_array_equal(K.ones_like(X), 1 + 0 * X)
    np.testing.assert_array_equal(K.constant(2.0, shape=(2, 2)), np.full((2, 2), 2.0))
    assert K.cast(X, "int32").dtype == np.int32
    assert not K.is_keras_tensor(X)


def test_dot_and_batch_dot():
    a, b = np.random.default_rng(0).standard_normal((2, 3, 4)), np.random.default_rng(1).standard_normal((4, 5))
    np.testing.assert_allclose(K.dot(a, b), a @ b)
    c = np.random.default_rng(2).standard_normal((7, 4, 5))
    assert K.dot(a[0], c).shape == (3, 7, 5)
    np.testing.assert_allclose(K.dot(a[0], c), np.einsum("ik,jkl->ijl", a[0], c))
    x, y = np.random.default_rng(3).standard_normal((4, 3, 5)), np.random.default_rng(4).standard_normal((4, 5, 2))
    np.testing.assert_allclose(K.batch_dot(x, y), x @ y)
    u, v = np.ones((4, 3)), np.full((4, 3), 2.0)
    np.testing.assert_allclose(K.batch_dot(u, v, axes=1), np.full((4, 1), 6.0))
    with pytest.raises(ValueError):
        K.batch_dot(u, v, axes=0)


def test_clear_session_resets_unseeded_generator():
    K.clear_session()
    a = K.random_normal((3,))
    assert a.shape == (3,) and not np.array_equal(a, K.random_normal((3,)))
