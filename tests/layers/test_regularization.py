"""Regularization layers (Dropout, SpatialDropout1D/2D/3D, ActivityRegularization): training-mode
statistics, seeds, noise shapes, losses and bad input."""

import numpy as np
import pytest

from klayers import layers

RNG = np.random.default_rng(0)


def _x(*shape, dtype="float32"):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_training_drops_rate_and_scales(rate):
    x = np.ones((200, 500), "float32")
    y = layers.Dropout(rate, seed=3)(x, training=True)
    kept = y != 0
    assert abs(1 - kept.mean() - rate) < 0.01
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)
    assert abs(y.mean() - 1) < 0.02  # the expectation is preserved
    assert y.dtype == np.float32



@pytest.mark.parametrize("training", [None, False, 0])
def test_dropout_inference_is_identity(training):
    x = _x(3, 4)
    np.testing.assert_array_equal(layers.Dropout(0.5)(x, training=training), x)



def test_dropout_seed_reproducible_and_fresh_per_call():
    x = np.ones((10, 50), "float32")
    a, b = layers.Dropout(0.5, seed=7), layers.Dropout(0.5, seed=7)
    first = a(x, training=True)
    np.testing.assert_array_equal(first, b(x, training=True))
    assert not np.array_equal(first, a(x, training=True))



def test_dropout_noise_shape_broadcasts():
    x = np.ones((50, 6, 40), "float32")
    y = layers.Dropout(0.5, noise_shape=(None, 1, 40), seed=1)(x, training=True)
    assert (y == y[:, :1, :]).all()  # same mask at every step
    assert 0.4 < (y[:, 0] != 0).mean() < 0.6
    with pytest.raises(ValueError, match="noise_shape"):
        layers.Dropout(0.5, noise_shape=(None, 2, 40))(x, training=True)



@pytest.mark.parametrize("cls,shape,fmt,kept_axes", [
    (layers.SpatialDropout1D, (40, 7, 30), None, (0, 2)),
    (layers.SpatialDropout2D, (40, 3, 4, 30), "channels_last", (0, 3)),
    (layers.SpatialDropout2D, (40, 30, 3, 4), "channels_first", (0, 1)),
    (layers.SpatialDropout3D, (20, 2, 3, 2, 30), "channels_last", (0, 4)),
    (layers.SpatialDropout3D, (20, 30, 2, 3, 2), "channels_first", (0, 1)),
], ids=["1d", "2d-cl", "2d-cf", "3d-cl", "3d-cf"])
def test_spatial_dropout_drops_whole_feature_maps(cls, shape, fmt, kept_axes):
    kwargs = {} if fmt is None else {"data_format": fmt}
    y = cls(0.5, seed=2, **kwargs)(np.ones(shape, "float32"), training=True)
    other = tuple(a for a in range(len(shape)) if a not in kept_axes)
    maps = y != 0
    assert (maps.all(axis=other) == maps.any(axis=other)).all()
    assert 0.4 < maps.mean() < 0.6
    np.testing.assert_allclose(y[maps], 2.0)



@pytest.mark.parametrize("cls,shape", [
    (layers.SpatialDropout1D, (2, 3)), (layers.SpatialDropout2D, (2, 3, 4)), (layers.SpatialDropout3D, (2, 3, 4, 5)),
])
def test_spatial_dropout_wrong_rank(cls, shape):
    with pytest.raises(ValueError, match="expected ndim"):
        cls(0.5)(np.ones(shape, "float32"))



@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "half"])
def test_dropout_bad_rate(rate):
    with pytest.raises(ValueError):
        layers.Dropout(rate)



def test_activity_regularization_losses():
    x = _x(4, 3)
    layer = layers.ActivityRegularization(l1=0.1, l2=0.01)
    np.testing.assert_array_equal(layer(x), x)
    expected = (0.1 * np.abs(x).sum() + 0.01 * np.square(x).sum()) / 4
    np.testing.assert_allclose(layer.losses, [expected], rtol=1e-5)
