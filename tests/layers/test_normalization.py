"""Normalization layers: BatchNormalization inference and training (batch statistics, moving
averages, masks, frozen layers), LayerNormalization, Rescaling, Normalization, bad input."""

import warnings

import numpy as np
import pytest

import klayers
from klayers import layers

RNG = np.random.default_rng(0)


def _bn(axis=-1, shape=(6, 4), **kwargs):
    layer = layers.BatchNormalization(axis=axis, **kwargs)
    x = RNG.standard_normal(shape).astype("float32") * 2 + 1
    layer(x)
    return layer, x


def test_bn_inference_uses_moving_statistics():
    layer, x = _bn()
    gamma, beta = RNG.standard_normal(4).astype("float32"), RNG.standard_normal(4).astype("float32")
    mean, var = RNG.standard_normal(4).astype("float32"), RNG.random(4).astype("float32") + 0.5
    layer.set_weights([gamma, beta, mean, var])
    np.testing.assert_allclose(layer(x), gamma * (x - mean) / np.sqrt(var + 1e-3) + beta, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,axis,unbiased", [((8, 4), -1, False), ((4, 3, 3, 2), -1, True), ((4, 2, 3, 3), 1, True),
                                                 ((5, 3, 2), -1, False), ((4, 3, 3, 2), [1, 3], False)],
                         ids=["rank2", "rank4-fused", "rank4-cf-fused", "rank3", "two-axes"])
def test_bn_training_step(shape, axis, unbiased):
    layer, x = _bn(axis=axis, shape=shape, momentum=0.9)
    axes = [axis] if isinstance(axis, int) else axis
    axes = [a % len(shape) for a in axes]
    red = tuple(i for i in range(len(shape)) if i not in axes)
    y = layer(x, training=True)
    np.testing.assert_allclose(y.mean(axis=red), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=red), 1, rtol=1e-2)
    n = np.prod([shape[i] for i in red])
    batch_var = x.var(axis=red, keepdims=len(axes) > 1) * (n / (n - 1) if unbiased else 1)
    np.testing.assert_allclose(layer.moving_mean.value, 0.1 * x.mean(axis=red, keepdims=len(axes) > 1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.value, 0.9 + 0.1 * batch_var, rtol=1e-5)


def test_bn_frozen_layer_runs_in_inference_mode():
    layer, x = _bn(trainable=False)
    before = layer.get_weights()
    np.testing.assert_allclose(layer(x, training=True), layer(x), rtol=1e-6)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bn_training_with_mask_uses_masked_moments():
    layer, x = _bn(shape=(3, 5, 2), momentum=0.0)
    mask = RNG.random((3, 5)) < 0.6
    mask[:, 0] = True
    layer(x, training=True, mask=mask)
    np.testing.assert_allclose(layer.moving_mean.value, x[mask].mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.value, x[mask].var(0), rtol=1e-4)


def test_bn_mask_ignored_on_fused_path_with_warning():
    layer, x = _bn(shape=(2, 3, 3, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer(x, training=True, mask=np.ones((2, 3, 3), bool))
    assert any("fused" in str(w.message) for w in caught)


def test_bn_in_a_model_training_flag():
    inp = klayers.Input((4,))
    model = klayers.Model(inp, layers.BatchNormalization(momentum=0.5)(inp))
    x = RNG.standard_normal((16, 4)).astype("float32") + 3
    model(x, training=True)
    np.testing.assert_allclose(model.layers[1].moving_mean.value, 0.5 * x.mean(0), rtol=1e-5)


@pytest.mark.parametrize("make,x,match", [
    (lambda: layers.BatchNormalization(axis=3), np.zeros((2, 3), "float32"), "axis"),
    (lambda: layers.BatchNormalization(axis=[1, 1]), np.zeros((2, 3), "float32"), "duplicate"),
    (lambda: layers.LayerNormalization(axis=2), np.zeros((2, 3), "float32"), "axis"),
])
def test_bad_axis(make, x, match):
    with pytest.raises(ValueError, match=match):
        make()(x)


def test_bn_wrong_channels_and_weights():
    layer, _ = _bn()
    with pytest.raises(ValueError, match="expected axis"):
        layer(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match="not compatible"):
        layer.set_weights([np.zeros(3, "float32")] * 4)


@pytest.mark.parametrize("kwargs", [{"renorm": True}, {"virtual_batch_size": 2}, {"axis": "x"}, {"momentum": 2.0}])
def test_bn_unsupported_or_bad_config(kwargs):
    with pytest.raises((ValueError, TypeError)):
        layers.BatchNormalization(**kwargs)


@pytest.mark.parametrize("axis", [-1, [1, 2], 1])
def test_layer_normalization(axis):
    x = RNG.standard_normal((3, 4, 5)).astype("float32") * 3 + 2
    y = layers.LayerNormalization(axis=axis, epsilon=1e-6)(x)
    axes = tuple(np.atleast_1d(np.array(axis)) % 3)
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=axes), 1, rtol=1e-3)


def test_rescaling_and_int_input():
    y = layers.Rescaling(1 / 255.0, offset=-0.5)(np.array([[0, 255]], "uint8"))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[-0.5, 0.5]], rtol=1e-6)
    with pytest.raises(ValueError, match="broadcast"):
        layers.Rescaling([1.0, 2.0])(np.zeros((2, 3), "float32"))


def test_normalization_static_adapt_and_invert():
    x = RNG.standard_normal((100, 3)).astype("float32") * [1, 2, 3] + [0, 1, 2]
    layer = layers.Normalization()
    layer.adapt(x)
    y = layer(x)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1, rtol=1e-4)
    assert layer.get_weights()[2] == 100
    inv = layers.Normalization(mean=layer.get_weights()[0], variance=layer.get_weights()[1], invert=True)
    np.testing.assert_allclose(inv(y), x, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        layers.Normalization(mean=1.0)


# -- the layers against the NumPy formulas (the kernels' own tests: tests/ops/test_normalization.py)
@pytest.mark.parametrize("axis", [-1, [1, 2], [2, 1], 1])
def test_layer_normalization_kernel_and_numpy_paths_agree(axis):
    x = RNG.standard_normal((4, 3, 8)).astype("float32")
    layer = layers.LayerNormalization(axis=axis)
    layer(x)
    layer.set_weights([RNG.standard_normal(w.shape).astype("float32") for w in layer.get_weights()])
    axes = tuple(a % 3 for a in ([axis] if isinstance(axis, int) else axis))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    shape = [1] * 3
    for a in layer.axis:
        shape[a] = x.shape[a]
    # tf-keras reshapes (does not transpose) gamma/beta of unsorted axes to the broadcast shape
    gamma, beta = (w.reshape(shape) for w in layer.get_weights())
    np.testing.assert_allclose(layer(x), (x - mean) / np.sqrt(var + 1e-3) * gamma + beta, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis,shape", [(-1, (2, 5, 5, 3)), (1, (2, 3, 5, 5)), (-1, (4, 3)), (2, (2, 4, 3))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bn_inference_kernel_matches_numpy_formula(axis, shape, dtype):
    layer = layers.BatchNormalization(axis=axis, dtype=dtype)
    x = RNG.standard_normal(shape).astype(dtype)
    layer(x)
    c = shape[axis]
    gamma, beta, mean = (RNG.standard_normal(c).astype(dtype) for _ in range(3))
    var = (RNG.random(c) + 0.1).astype(dtype)
    layer.set_weights([gamma, beta, mean, var])
    bshape = [1] * len(shape)
    bshape[axis] = c
    want = (x - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + 1e-3) * gamma.reshape(bshape) + beta.reshape(bshape)
    got = layer(x)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
