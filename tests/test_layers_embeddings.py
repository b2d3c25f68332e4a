"""Embedding: lookups, masks, index dtypes, bad indices, weights."""

import numpy as np
import pytest

import klayers
from klayers import layers


def _emb(**kwargs):
    layer = layers.Embedding(5, 3, **kwargs)
    layer.build(None)
    layer.set_weights([np.arange(15, dtype="float32").reshape(5, 3)])
    return layer


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "int16", "float32", "float64"])
def test_lookup_any_index_dtype(dtype):
    idx = np.array([[0, 4, 2]], dtype=dtype)
    y = _emb()(idx)
    assert y.dtype == np.float32 and y.shape == (1, 3, 3)
    np.testing.assert_array_equal(y[0, 1], [12, 13, 14])


def test_float_indices_truncate_like_tf_cast():
    np.testing.assert_array_equal(_emb()(np.array([[2.9, 0.2]]))[0], [[6, 7, 8], [0, 1, 2]])


@pytest.mark.parametrize("bad", [[[5]], [[-1]], [[np.nan]], [[1e10]]], ids=["too-big", "negative", "nan", "huge-float"])
def test_bad_indices_raise_naming_the_layer(bad):
    with pytest.raises(ValueError, match="Embedding embedding"):
        layers.Embedding(5, 3, name="embedding")(np.array(bad))


def test_mask_zero_mask_and_model_propagation():
    inp = klayers.Input((4,), dtype="int32")
    h = layers.Embedding(5, 3, mask_zero=True)(inp)
    out = layers.Dense(2)(h)
    model = klayers.Model(inp, out)
    x = np.array([[1, 0, 2, 0], [3, 3, 0, 1]])
    np.testing.assert_array_equal(model.compute_mask(x, None), x != 0)
    assert layers.Embedding(5, 3).compute_mask(x) is None


@pytest.mark.parametrize("kwargs,shape,expected", [
    ({}, (None, 7), (None, 7, 3)),
    ({"input_length": 7}, (None, 7), (None, 7, 3)),
    ({"input_length": (2, None)}, (None, 2, 6), (None, 2, 6, 3)),
    ({}, (None,), (None, 3)),
])
def test_output_shape(kwargs, shape, expected):
    assert layers.Embedding(5, 3, **kwargs).compute_output_shape(shape) == expected


def test_input_length_mismatch():
    with pytest.raises(ValueError, match="input_length"):
        layers.Embedding(5, 3, input_length=4).compute_output_shape((None, 6))


@pytest.mark.parametrize("kwargs", [{"input_dim": 0, "output_dim": 3}, {"input_dim": 5, "output_dim": -1},
                                    {"input_dim": 2.5, "output_dim": 3}, {"input_dim": 5, "output_dim": 3, "sparse": True}])
def test_bad_config(kwargs):
    with pytest.raises(ValueError):
        layers.Embedding(**kwargs)


def test_wrong_weight_shape():
    layer = _emb()
    with pytest.raises(ValueError, match="not compatible"):
        layer.set_weights([np.zeros((4, 3), "float32")])


def test_config_and_weight_round_trip():
    layer = _emb(mask_zero=True, embeddings_regularizer="l2", input_length=3)
    again = layers.deserialize(layers.serialize(layer))
    again.build(None)
    again.set_weights(layer.get_weights())
    x = np.array([[1, 2, 0]])
    np.testing.assert_array_equal(again(x), layer(x))
    assert again.get_config() == layer.get_config()
