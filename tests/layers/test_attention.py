"""EinsumDense and MultiHeadAttention: bad input refused with errors naming the layer, the GEMM
path of ``einsum_dense`` against ``np.einsum``, the masked softmaxes of both Kerases, masks
reaching a MultiHeadAttention in a model, and files the other Keras would read differently.
(Outputs against real Keras: ``conformance/cases/attention.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

import klayers
from klayers import layers as L
from klayers.ops.attention import einsum_dense, masked_softmax, matmul_layout

RNG = np.random.default_rng(15)


def _x(*shape, dtype="float32"):
    return RNG.standard_normal(shape).astype(dtype)


# -- EinsumDense -----------------------------------------------------------------------------------
@pytest.mark.parametrize("equation", ["abc", "ab,bc", "ab->b", "a...b,bc->a...c", "ab,bc,cd->ad", "...ab,bc->ac",
                                      "1b,bc->1c", 3])
def test_einsum_dense_refuses_an_equation_keras_cannot_parse(equation):
    with pytest.raises(ValueError, match="EinsumDense \"bad\".*(Invalid einsum equation|must be a string)"):
        L.EinsumDense(equation, 4, name="bad")
    with pytest.raises(ValueError, match="bad"):
        L.deserialize({"class_name": "EinsumDense", "config": {"equation": equation, "output_shape": 4, "name": "bad"}})


@pytest.mark.parametrize("kwargs,shape,match", [
    ({"equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "x"}, (2, 3), "Bias dimension 'x'"),
    ({"equation": "abc,cd->abd", "output_shape": (5, 4)}, (2, 3, 6), "do not match at shared dimension 'b'"),
    ({"equation": "ab,bc->ad", "output_shape": 4}, (2, 3), "Dimension 'd' was specified in the output"),
    ({"equation": "ab,bcx->ac", "output_shape": 4}, (2, 3), "Weight dimension 'x'"),
    ({"equation": "abc,cd->abd", "output_shape": (None, 4)}, (2, 3), "does not fit"),
])
def test_einsum_dense_bad_build_names_the_layer(kwargs, shape, match):
    layer = L.EinsumDense(name="proj", **kwargs)
    with pytest.raises(ValueError, match=match) as e:
        layer(np.ones(shape, "float32"))
    assert "proj" in str(e.value)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("equation,x,k,b", [
    ("abc,cde->abde", (2, 5, 4), (4, 3, 2), (3, 2)),
    ("abcd,cde->abe", (2, 5, 3, 2), (3, 2, 4), (4,)),
    ("...b,bc->...c", (2, 3, 4), (4, 5), (5,)),
    ("abc,cd->abd", (2, 3, 4), (4, 5), (3, 1)),       # a bias that is not the output axes: added after
    ("ab...,bc->ac...", (2, 3, 4), (3, 5), (5, 1)),   # not a matrix product: np.einsum
    ("abc,dc->abd", (2, 3, 4), (5, 4), None),
])
def test_einsum_dense_matches_numpy_einsum(dtype, equation, x, k, b):
    xv, kv = _x(*x, dtype=dtype), _x(*k, dtype=dtype)
    bv = None if b is None else _x(*b, dtype=dtype)
    want = np.einsum(equation, xv.astype("float64"), kv.astype("float64")) + (0 if bv is None else bv)
    got = einsum_dense(xv, kv, bv, equation, np.tanh)
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape
    np.testing.assert_allclose(got, np.tanh(want), rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)


def test_matmul_layout_only_for_free_contracted_output_order():
    assert matmul_layout("abc,cde->abde") == (1, 2, 3, False)
    assert matmul_layout("...b,bc->...c") == (1, 1, 1, True)
    for eq in ("abc,dc->abd", "ab...,bc->ac...", "abc,cd->adb", "ab,ab->ab"):
        assert matmul_layout(eq) is None, eq


# -- masked softmax --------------------------------------------------------------------------------
def test_masked_softmax_of_each_keras():
    scores = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "float64")
    mask = np.array([[True, False, True], [False, False, False]])
    add = masked_softmax(scores, mask, "add")
    where = masked_softmax(scores, mask, "where")
    fill = masked_softmax(scores, mask, "fill")
    kept = np.exp([1.0, 3.0]) / np.exp([1.0, 3.0]).sum()
    for p in (add, where, fill):
        np.testing.assert_allclose(p[0], [kept[0], 0, kept[1]], atol=1e-12)
    np.testing.assert_allclose(add[1], np.exp(scores[1]) / np.exp(scores[1]).sum(), rtol=1e-6)  # -1e9 added to all
    np.testing.assert_array_equal(where[1], 0)   # Keras 3's Softmax zeroes a fully masked row
    np.testing.assert_allclose(fill[1], 1 / 3)   # Keras 3's dot_product_attention: uniform
    with pytest.raises(ValueError, match="masking must be one of"):
        masked_softmax(scores, mask, "nope")


# -- MultiHeadAttention ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"num_heads": 0, "key_dim": 2}, "num_heads"),
    ({"num_heads": 2, "key_dim": "a"}, "key_dim"),
    ({"num_heads": 2, "key_dim": 2, "value_dim": -1}, "value_dim"),
    ({"num_heads": 2, "key_dim": 2, "dropout": 1.5}, "rate"),
    ({"num_heads": 2, "key_dim": 2, "attention_axes": "time"}, "attention_axes"),
    ({"num_heads": 2, "key_dim": 2, "output_shape": "wide"}, "output_shape"),
])
def test_mha_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.MultiHeadAttention(**kwargs)


def test_mha_bad_inputs_name_the_layer():
    q, v = _x(2, 4, 6), _x(2, 5, 6)
    layer = L.MultiHeadAttention(2, 3, name="attn")
    layer(q, v)
    cases = [
        (dict(query_mask=np.ones((2, 5), bool)), "the query mask of shape"),
        (dict(value_mask=np.ones((2, 4), bool)), "the value mask of shape"),
        (dict(attention_mask=np.ones((2, 3, 5), bool)), "does not broadcast"),
        (dict(attention_mask=np.ones((1, 2, 2, 4, 5), bool)), "more axes"),
        (dict(key=_x(2, 4, 6)), "the key of shape"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match) as e:
            layer(q, v, **kwargs)
        assert "attn" in str(e.value), str(e.value)
    with pytest.raises(ValueError, match="does not match the shape the layer was built for") as e:
        layer(_x(2, 4, 7), v)
    assert "attn" in str(e.value)
    with pytest.raises(ValueError, match="except the last one") as e:
        L.MultiHeadAttention(2, 3, name="attn")(q, v, key=_x(2, 4, 6))
    assert "attn" in str(e.value)
    with pytest.raises(ValueError, match="attention axis 3 is out of range") as e:
        L.MultiHeadAttention(2, 3, attention_axes=3, name="attn")(q, v)
    assert "attn" in str(e.value)
    with pytest.raises(ValueError, match="at least 3 axes"):
        L.MultiHeadAttention(2, 3)(_x(2, 6), _x(2, 6))


def test_mha_masks_reach_the_layer_in_a_model():
    """Embedding(mask_zero) masks the value of a cross attention given as another argument:
    the model passes it as value_mask, as tf-keras reads the value's _keras_mask."""
    a, b = klayers.Input((3,), dtype="int32"), klayers.Input((4,), dtype="int32")
    qa = L.Embedding(9, 6, name="ea")(a)
    vb = L.Embedding(9, 6, mask_zero=True, name="eb")(b)
    mha = L.MultiHeadAttention(2, 3, name="mha")
    model = klayers.Model([a, b], mha(qa, vb))
    ids_a = RNG.integers(0, 9, (2, 3)).astype("int32")
    ids_b = np.array([[1, 2, 0, 0], [3, 0, 0, 0]], "int32")
    got = np.array(model.predict([ids_a, ids_b]))
    ea, eb = model.get_layer("ea")(ids_a), model.get_layer("eb")(ids_b)
    np.testing.assert_allclose(got, mha(ea, eb, value_mask=ids_b != 0), rtol=1e-6, atol=1e-6)
    assert not np.allclose(got, mha(ea, eb), atol=1e-4)  # the mask changed the output
    np.testing.assert_allclose(np.array(model.predict([ids_a, ids_b])), got, rtol=1e-6, atol=1e-6)  # planned again


def test_a_file_the_other_keras_would_read_differently_is_refused(tmp_path):
    tokens = klayers.Input((4,), dtype="int32")
    x = L.Embedding(9, 4, mask_zero=True)(tokens)
    y, scores = L.MultiHeadAttention(2, 2)(x, x, return_attention_scores=True)
    model = klayers.Model(tokens, [y, scores])
    with pytest.raises(ValueError, match="weight a fully masked query row differently"):
        model.save(str(tmp_path / "m.keras"))
    model.save(str(tmp_path / "m.h5"))  # the tf-keras meaning, for tf-keras: fine
