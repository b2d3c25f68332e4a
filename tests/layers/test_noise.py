"""Noise layers: identity at inference; in training the distributions Keras gives (seeded)."""

import numpy as np
import pytest

from klayers import layers

X = np.random.default_rng(0).standard_normal((400, 250)).astype("float32")


@pytest.mark.parametrize("layer", [layers.GaussianNoise(0.5), layers.GaussianDropout(0.3), layers.AlphaDropout(0.3)],
                         ids=lambda lay: type(lay).__name__)
@pytest.mark.parametrize("training", [None, False])
def test_inference_identity(layer, training):
    np.testing.assert_array_equal(layer(X, training=training), X)


@pytest.mark.parametrize("stddev", [0.1, 1.0, 3.0])
def test_gaussian_noise_statistics(stddev):
    noise = layers.GaussianNoise(stddev, seed=1)(X, training=True) - X
    assert abs(noise.mean()) < 5 * stddev / np.sqrt(X.size)
    assert abs(noise.std() / stddev - 1) < 0.01


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_gaussian_dropout_statistics(rate):
    factor = layers.GaussianDropout(rate, seed=2)(np.ones_like(X), training=True)
    assert abs(factor.mean() - 1) < 0.02
    assert abs(factor.std() - np.sqrt(rate / (1 - rate))) < 0.02 * np.sqrt(rate / (1 - rate)) + 0.005


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.6])
def test_alpha_dropout_keeps_selu_statistics(rate):
    y = layers.AlphaDropout(rate, seed=3)(X, training=True)
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    dropped_value = a * alpha_p - a * alpha_p * rate
    assert abs(np.isclose(y, dropped_value, atol=1e-6).mean() - rate) < 0.01


def test_alpha_dropout_noise_shape():
    rate, alpha_p = 0.5, -1.6732632423543772 * 1.0507009873554805
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    y = layers.AlphaDropout(rate, noise_shape=(None, 1), seed=4)(X[:, :10], training=True)
    dropped = np.isclose(y, a * alpha_p - a * alpha_p * rate, atol=1e-6)
    assert (dropped.all(axis=1) == dropped.any(axis=1)).all()  # whole rows dropped together
    assert 0.4 < dropped.all(axis=1).mean() < 0.6


def test_seed_reproducible():
    a = layers.GaussianNoise(1.0, seed=9)(X, training=True)
    np.testing.assert_array_equal(a, layers.GaussianNoise(1.0, seed=9)(X, training=True))


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_degenerate_rates_are_identity(rate):
    np.testing.assert_array_equal(layers.GaussianDropout(rate)(X, training=True), X)
    np.testing.assert_array_equal(layers.AlphaDropout(rate)(X, training=True), X)


@pytest.mark.parametrize("make", [lambda: layers.GaussianNoise(-1.0), lambda: layers.GaussianDropout(2.0),
                                  lambda: layers.AlphaDropout(-0.5), lambda: layers.GaussianNoise(0.1, seed="x")])
def test_bad_config(make):
    with pytest.raises(ValueError):
        make()
