"""Advanced activation layers: maths, Softmax masks, PReLU weights, activations.get("ReLU"),
bad config and input."""

import numpy as np
import pytest

from klayers import activations, layers
from klayers.ops import softmax as sm

X = np.random.default_rng(0).standard_normal((4, 3, 5)).astype("float32") * 3


@pytest.mark.parametrize("layer,expected", [
    (layers.LeakyReLU(0.2), np.where(X >= 0, X, 0.2 * X)),
    (layers.ReLU(), np.maximum(X, 0)),
    (layers.ReLU(max_value=1.5), np.clip(X, 0, 1.5)),
    (layers.ReLU(negative_slope=0.1, threshold=1.0), np.where(X > 1, X, 0.1 * (X - 1))),
    (layers.ELU(0.5), np.where(X > 0, X, 0.5 * np.expm1(X))),
    (layers.ThresholdedReLU(1.0), np.where(X > 1, X, 0)),
], ids=["leaky", "relu", "relu-max", "relu-slope-threshold", "elu", "thresholded"])
def test_elementwise_maths(layer, expected):
    np.testing.assert_allclose(layer(X), expected, rtol=1e-5, atol=1e-6)


def test_prelu_shared_axes_and_weight_shape():
    layer = layers.PReLU(shared_axes=[1])
    layer(X)
    assert layer.weights[0].shape == (1, 5)
    alpha = np.linspace(0, 1, 5, dtype="float32")[None]
    layer.set_weights([alpha])
    np.testing.assert_allclose(layer(X), np.where(X > 0, X, alpha * X), rtol=1e-6)
    with pytest.raises(ValueError, match="not compatible"):
        layer.set_weights([np.zeros((3, 5), "float32")])
    with pytest.raises(ValueError, match="expected axis"):
        layer(X[..., :4])


def test_softmax_axes_and_mask():
    np.testing.assert_allclose(layers.Softmax(axis=[1, 2])(X).sum((1, 2)), 1, rtol=1e-5)
    mask = np.ones((4, 3, 5), bool)
    mask[:, :, 3:] = False
    y = layers.Softmax()(X, mask=mask)
    assert (y[..., 3:] < 1e-30).all()
    np.testing.assert_allclose(y[..., :3].sum(-1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="does not broadcast"):
        layers.Softmax()(X, mask=np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="out of range"):
        layers.Softmax(axis=3)(X)


def test_activations_get_returns_layers_like_tf_keras():
    relu = activations.get("ReLU")
    assert isinstance(relu, layers.ReLU)
    leaky = activations.get({"class_name": "LeakyReLU", "config": {"alpha": 0.1}})
    assert isinstance(leaky, layers.LeakyReLU) and abs(leaky.alpha - 0.1) < 1e-7
    dense = layers.Dense(3, activation="LeakyReLU")
    assert dense(X).shape == (4, 3, 3)
    assert dense.get_config()["activation"]["class_name"] == "LeakyReLU"
    again = layers.deserialize(layers.serialize(dense))
    assert isinstance(again.activation, layers.LeakyReLU)


@pytest.mark.parametrize("make,match", [
    (lambda: layers.ReLU(max_value=-1), "max_value"),
    (lambda: layers.ReLU(negative_slope=-0.1), "negative_slope"),
    (lambda: layers.ReLU(threshold=None), "threshold"),
    (lambda: layers.LeakyReLU(None), "alpha"),
    (lambda: layers.ELU(None), "Alpha"),
    (lambda: layers.ThresholdedReLU(-1), "theta"),
    (lambda: layers.PReLU(shared_axes=[0]), "shared_axes"),
    (lambda: layers.Softmax(axis="x"), "axis"),
])
def test_bad_config(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_keras3_leaky_relu_config():
    layer = layers.deserialize({"class_name": "LeakyReLU", "config": {
        "name": "l", "negative_slope": 0.25, "trainable": True,
        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}}})
    assert layer.alpha == 0.25


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
@pytest.mark.parametrize("mask_kind", ["bool", "float", "robust"])
def test_softmax_layer_with_mask_matches_keras_formula(dtype, axis, mask_kind):
    """The layer adds ``(1 - mask) * -1e9`` (or replaces by -1e9 when robust / boolean) before
    the kernel, as tf-keras does; masked positions get probability 0."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 7)).astype(dtype)
    keep = rng.random((2, 6, 7)) > 0.3
    keep[..., 0] = keep[:, 0] = True  # every softmax slice keeps something
    mask = keep if mask_kind == "bool" else keep.astype(dtype)
    layer = layers.Softmax(axis=axis, robust_masking=mask_kind == "robust", dtype=dtype)
    got = layer(x, mask=mask)
    masked = np.where(keep, x, x.dtype.type(-1e9)) if mask_kind != "float" else x + (1 - mask) * x.dtype.type(-1e9)
    want = sm.softmax_reference(masked, axis)
    assert got.dtype == np.dtype(dtype)
    tol = 2e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert (got[~keep] == 0).all()
