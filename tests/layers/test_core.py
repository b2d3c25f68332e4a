"""Core layers (Flatten, Reshape, Permute, RepeatVector, Masking, Lambda): shapes, mask
propagation through models, Lambda code and callables in configs, and bad input."""

import numpy as np
import pytest

import klayers
from klayers import layers

RNG = np.random.default_rng(0)


def _x(*shape, dtype="float32"):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("layer,shape,expected", [
    (layers.Flatten(), (2, 3, 4), (2, 12)),
    (layers.Flatten(), (2,), (2, 1)),
    (layers.Reshape((-1, 3)), (2, 4, 3), (2, 4, 3)),
    (layers.Permute((3, 1, 2)), (2, 3, 4, 5), (2, 5, 3, 4)),
    (layers.RepeatVector(4), (2, 3), (2, 4, 3)),
], ids=["flatten", "flatten-rank1", "reshape", "permute", "repeat"])
def test_shape_layers(layer, shape, expected):
    y = layer(_x(*shape))
    assert y.shape == expected
    assert tuple(layer.compute_output_shape((None,) + shape[1:])) == (None,) + expected[1:]


def test_flatten_channels_first_orders_like_channels_last():
    x = _x(2, 3, 4, 5)
    np.testing.assert_array_equal(layers.Flatten(data_format="channels_first")(x),
                                  np.moveaxis(x, 1, -1).reshape(2, -1))


@pytest.mark.parametrize("make,shape,match", [
    (lambda: layers.Reshape((5, -1)), (2, 12), "total size"),
    (lambda: layers.Reshape((5, 5)), (2, 12), "total size"),
    (lambda: layers.Permute((1, 2)), (2, 3), "expected ndim=3"),
    (lambda: layers.RepeatVector(2), (2, 3, 4), "expected ndim=2"),
], ids=["reshape-minus1", "reshape-size", "permute-rank", "repeat-rank"])
def test_shape_layers_bad_input(make, shape, match):
    with pytest.raises(ValueError, match=match):
        make()(_x(*shape))


@pytest.mark.parametrize("make,match", [
    (lambda: layers.Reshape((-1, -1)), "at most one unknown"),
    (lambda: layers.Permute((0, 1)), "consecutive"),
    (lambda: layers.Permute((1, 3)), "consecutive"),
    (lambda: layers.Flatten(data_format="nchw"), "data_format"),
])
def test_shape_layers_bad_config(make, match):
    with pytest.raises(ValueError, match=match):
        make()
    with pytest.raises(TypeError):
        layers.RepeatVector(2.5)


def test_masking_mask_reaches_following_layers():
    x = _x(3, 5, 2)
    x[0, 1] = 0
    x[2, 4] = 0
    inp = klayers.Input((5, 2))
    h = layers.Masking()(inp)
    h = layers.Dense(3)(h)
    out = layers.ReLU()(h)
    model = klayers.Model(inp, out)
    mask = model.compute_mask(x, None)
    expected = np.ones((3, 5), bool)
    expected[0, 1] = expected[2, 4] = False
    np.testing.assert_array_equal(mask, expected)
    y = layers.Masking()(x)
    assert (y[0, 1] == 0).all()


def test_masking_into_flatten_drops_the_mask_as_keras():
    inp = klayers.Input((5, 2))
    out = layers.Flatten()(layers.Masking()(inp))
    model = klayers.Model(inp, out)
    assert model(_x(2, 5, 2)).shape == (2, 10)  # tf-keras 2.21 drops the mask silently here
    assert model.compute_mask(_x(2, 5, 2), None) is None


# -- Lambda -----------------------------------------------------------------------------------
def double(x):
    return x * 2


class Doubler:
    """A callable object: Keras stores it by name ("function" type), resolved by custom_objects."""

    __name__ = "doubler"

    def __call__(self, x):
        return x * 2


def test_lambda_callable_object_round_trip_by_name():
    layer = layers.Lambda(Doubler(), name="dbl")
    config = layers.serialize(layer)
    assert config["config"]["function"] == "doubler" and config["config"]["function_type"] == "function"
    again = layers.deserialize(config, custom_objects={"doubler": Doubler()})
    np.testing.assert_allclose(again(np.ones((1, 2), "float32")), 2.0)
    with pytest.raises(ValueError, match="Unknown function in Lambda layer: 'doubler'"):
        layers.deserialize(config)


def test_lambda_def_is_stored_as_code_like_keras():
    config = layers.serialize(layers.Lambda(double))
    assert config["config"]["function_type"] == "lambda"
    with pytest.raises(ValueError, match="safe_mode=False"):
        layers.deserialize(config)
    np.testing.assert_allclose(layers.deserialize(config, safe_mode=False)(np.ones((1, 2), "float32")), 2.0)


def test_lambda_code_needs_safe_mode_false():
    layer = layers.Lambda(lambda x: x + 1, output_shape=(3,), name="plus_one")
    config = layers.serialize(layer)
    assert config["config"]["function_type"] == "lambda"
    with pytest.raises(ValueError, match="plus_one.*safe_mode=False"):
        layers.deserialize(config)
    again = layers.deserialize(config, safe_mode=False)
    np.testing.assert_allclose(again(np.zeros((2, 3), "float32")), 1.0)
    assert again.compute_output_shape((None, 3)) == (None, 3)


def test_lambda_arguments_and_mask():
    layer = layers.Lambda(lambda x, k: x * k, arguments={"k": 3.0}, mask=lambda inputs, mask: inputs > 0)
    x = np.array([[1.0, -1.0]], "float32")
    np.testing.assert_allclose(layer(x), [[3.0, -3.0]])
    np.testing.assert_array_equal(layer.compute_mask(x), [[True, False]])
