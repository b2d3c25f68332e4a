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


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "int16", "uint32", "uint64", "bool", "float16",
                                   "float32", "float64"])
def test_lookup_any_index_dtype(dtype):
    idx = np.array([[0, 4, 2]] if dtype != "bool" else [[0, 1, 1]], dtype=dtype)
    y = _emb()(idx)
    assert y.dtype == np.float32 and y.shape == (1, 3, 3)
    np.testing.assert_array_equal(y[0, 1], [12, 13, 14] if dtype != "bool" else [3, 4, 5])


def test_float_indices_truncate_like_tf_cast():
    np.testing.assert_array_equal(_emb()(np.array([[2.9, 0.2]]))[0], [[6, 7, 8], [0, 1, 2]])


BAD_INDICES = [
    ([[5]], None, "index 5 "), ([[-1]], None, "index -1 "), ([[np.nan]], None, "NaN"),
    ([[1e10]], None, "index 10000000000.0 "), ([[0, -1.0, 2]], "float32", "index -1.0 "),
    ([[0, 2, np.inf]], "float32", "index inf "), ([[1, -3]], "int8", "index -3 "),
    ([[0, 2**32 + 1]], "uint64", "index 4294967297 "), ([[0, -2**40]], "int64", "index -1099511627776 "),
    ([[3, 2**31 + 2]], "uint32", "index 2147483650 "), ([[4, 300]], "int16", "index 300 "),
]


@pytest.mark.parametrize("bad,dtype,match", BAD_INDICES, ids=[f"{b}-{d}" for b, d, _ in BAD_INDICES])
def test_bad_indices_raise_naming_the_layer(bad, dtype, match):
    with pytest.raises(ValueError, match="Embedding embedding: " + match.replace("+", "\\+")):
        layers.Embedding(5, 3, name="embedding")(np.array(bad, dtype=dtype))


def test_float_indices_just_above_minus_one_truncate_to_zero():
    # tf.cast truncates toward zero, so -0.5 reads row 0 and only -1 and below are refused
    np.testing.assert_array_equal(_emb()(np.array([[-0.5, 4.9]], "float32"))[0], [[0, 1, 2], [12, 13, 14]])


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


def test_float_index_fast_check_limits():
    from klayers.layers.embeddings import _float_bits_limit

    # the limit is the largest float <= input_dim, so the one-pass check never accepts too much
    assert _float_bits_limit(5, np.float32) == np.array(5.0, np.float32).view(np.uint32)
    big = 2**24 + 1  # not a float32: 2**24 (below it) is the limit, not 2**24 + 2
    assert _float_bits_limit(big, np.float32) == np.array(2.0**24, np.float32).view(np.uint32)
    assert _float_bits_limit(big, np.float64) == np.array(float(big)).view(np.uint64)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_float_indices_negative_zero_and_fractions_take_the_exact_path(dtype):
    idx = np.array([[-0.0, -0.9, 4.99, 1.0]], dtype=dtype)
    np.testing.assert_array_equal(_emb()(idx)[0, :, 0], [0, 0, 12, 3])
