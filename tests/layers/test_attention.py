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


# -- Attention / AdditiveAttention ---------------------------------------------------------------
def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("make,match", [
    (lambda: L.Attention(score_mode="nope", name="att"), "score_mode"),
    (lambda: L.Attention(dropout=1.5, name="att"), "rate"),
    (lambda: L.AdditiveAttention(dropout="a", name="att"), "rate"),
])
def test_dense_attention_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("cls", [L.Attention, L.AdditiveAttention])
def test_dense_attention_bad_inputs_name_the_layer(cls):
    q, v = _x(2, 3, 4), _x(2, 5, 4)
    cases = [
        ((q,), {}, "must be called on a list of inputs"),
        (([q],), {}, "accepts inputs list of length 2 or 3"),
        (([q, v, v, v],), {}, "accepts inputs list of length 2 or 3"),
        (([q, _x(2, 5, 3)],), {}, "last axis of the query and of the key"),
        (([q, v, _x(2, 4, 4)],), {}, "as many steps"),
        (([_x(2, 4), _x(2, 4)],), {}, "at least 3"),
        (([q, _x(3, 5, 4)],), {}, "batch axes"),
        (([q, v],), {"mask": np.ones((2, 3), bool)}, "mask must be a list"),
        (([q, v],), {"mask": [np.ones((2, 3), bool)]}, "mask must be a list of length 2"),
        (([q, v],), {"mask": [np.ones((2, 4), bool), None]}, "the query mask of shape"),
        (([q, v],), {"mask": [None, np.ones((2, 3), bool)]}, "the value mask of shape"),
    ]
    for args, kwargs, match in cases:
        layer = cls(name="att")
        with pytest.raises(ValueError, match=match) as e:
            layer(*args, **kwargs)
        assert "att" in str(e.value), str(e.value)
    layer = cls(name="att")
    with pytest.raises(ValueError, match="list of inputs") as e:
        layer(klayers.Input((3, 4)))
    assert "att" in str(e.value)
    with pytest.raises(ValueError, match="compute_output_shape expects"):
        layer.compute_output_shape((None, 3, 4))


def test_additive_attention_tf_keras_sizes_its_scale_from_the_value():
    q, v, k = _x(2, 3, 4), _x(2, 5, 6), _x(2, 5, 4)
    with pytest.raises(ValueError, match="sizes the scale of an AdditiveAttention from the value") as e:
        L.AdditiveAttention(name="bahdanau")([q, v, k])
    assert "bahdanau" in str(e.value)
    assert L.AdditiveAttention(use_scale=False)([q, v, k]).shape == (2, 3, 6)  # no scale: no constraint
    with klayers.serialization.dialect_scope(3):
        layer = L.AdditiveAttention()
    assert layer([q, v, k]).shape == (2, 3, 6) and layer.scale.shape == (4,)  # Keras 3: from the query


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_attention_maths(dtype):
    q, v, k = _x(2, 3, 4, dtype=dtype), _x(2, 5, 6, dtype=dtype), _x(2, 5, 4, dtype=dtype)
    q_mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    v_mask = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0]], bool)   # the second: fully masked
    pairs = q[:, :, None, :] + k[:, None, :, :]
    att = L.Attention(use_scale=True, score_mode="concat", dtype=dtype)
    att([q, v, k])
    att.set_weights([np.array(0.7, dtype), np.array(1.3, dtype)])
    with klayers.serialization.dialect_scope(3):  # tf-keras would need the value as wide as the query
        add = L.AdditiveAttention(dtype=dtype)
    add([q, v, k])
    scale = _x(4, dtype=dtype)
    add.set_weights([scale])
    dot = L.Attention(dtype=dtype)
    for layer, raw in ((dot, q @ k.transpose(0, 2, 1)), (att, 1.3 * np.tanh(0.7 * pairs).sum(-1)),
                       (add, (scale * np.tanh(pairs)).sum(-1))):
        y, w = layer([q, v, k], mask=[q_mask, v_mask], return_attention_scores=True)
        want_w = _softmax(np.where(v_mask[:, None, :], raw, raw - 1e9))
        np.testing.assert_allclose(w, want_w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(y, (want_w @ v) * q_mask[..., None], rtol=1e-5, atol=1e-6)
        assert y.dtype == np.dtype(dtype) and not y[0, 2].any()
        if dtype == "float32":   # -1e9 drowns the scores: uniform weights on a fully masked row
            np.testing.assert_allclose(w[1], 0.2, rtol=1e-6)
        else:                    # float64 keeps the scores' own softmax there
            np.testing.assert_allclose(w[1], _softmax(raw[1]), rtol=1e-6)
        causal = layer([q, v, k], use_causal_mask=True, return_attention_scores=True)[1]
        assert not np.triu(causal[0], 1).any() and np.allclose(causal.sum(-1), 1)


def test_dense_attention_masks_in_a_model():
    """Embedding(mask_zero) masks reach Attention as mask=[query_mask, value_mask]; its output
    carries the query's mask, its scores none."""
    a, b = klayers.Input((3,), dtype="int32"), klayers.Input((4,), dtype="int32")
    qa = L.Embedding(9, 5, mask_zero=True, name="ea")(a)
    vb = L.Embedding(9, 5, mask_zero=True, name="eb")(b)
    att = L.Attention(use_scale=True, name="att")
    y, scores = att([qa, vb], return_attention_scores=True)
    assert y._keras_mask is not None and getattr(scores, "_keras_mask", None) is None
    pooled = L.GlobalAveragePooling1D()(y)
    model = klayers.Model([a, b], [pooled, scores])
    ids_a = np.array([[1, 2, 0], [3, 4, 5]], "int32")
    ids_b = np.array([[1, 2, 0, 0], [3, 0, 0, 0]], "int32")
    got, got_scores = model.predict([ids_a, ids_b])
    ea, eb = model.get_layer("ea")(ids_a), model.get_layer("eb")(ids_b)
    want, want_scores = att([ea, eb], mask=[ids_a != 0, ids_b != 0], return_attention_scores=True)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got[0], want[0, :2].mean(0), rtol=1e-5, atol=1e-6)  # pooled over the query mask
    np.testing.assert_array_equal(want_scores[:, :, 2:], 0)


def test_attention_causal_constructor_argument_is_tf_keras_s():
    q = _x(2, 4, 3)
    with pytest.warns(DeprecationWarning, match="use_causal_mask"):
        layer = L.Attention(causal=True)
    np.testing.assert_allclose(layer([q, q]), L.Attention()([q, q], use_causal_mask=True), rtol=1e-6)
    assert "causal" not in layer.get_config()  # as tf-keras writes it


# -- GroupQueryAttention ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"head_dim": 2, "num_query_heads": 3, "num_key_value_heads": 2}, "divisible"),
    ({"head_dim": 0, "num_query_heads": 2, "num_key_value_heads": 1}, "head_dim"),
    ({"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1, "sliding_window": 0}, "sliding_window"),
    ({"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1, "dropout": 0.1, "flash_attention": True},
     "Dropout is not supported when flash attention"),
])
def test_gqa_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.GroupQueryAttention(**kwargs)


def test_gqa_bad_inputs_name_the_layer():
    q, v = _x(2, 4, 6), _x(2, 5, 6)
    layer = L.GroupQueryAttention(2, 4, 2, name="gqa")
    layer(q, v)
    for kwargs, match in [
        (dict(query_mask=np.ones((2, 5), bool)), "the query mask of shape"),
        (dict(value_mask=np.ones((2, 4), bool)), "the value mask of shape"),
        (dict(attention_mask=np.ones((2, 3, 5), bool)), "does not broadcast"),
        (dict(attention_mask=np.ones((1, 2, 2, 4, 5), bool)), "more axes"),
    ]:
        with pytest.raises(ValueError, match=match) as e:
            layer(q, v, **kwargs)
        assert "gqa" in str(e.value), str(e.value)
    with pytest.raises(ValueError, match="does not match the shape the layer was built for") as e:
        layer(_x(2, 4, 7), v)
    assert "gqa" in str(e.value)
    with pytest.raises(ValueError, match="except the last one") as e:
        L.GroupQueryAttention(2, 4, 2, name="gqa")(q, v, key=_x(2, 4, 6))
    assert "gqa" in str(e.value)
    with pytest.raises(ValueError, match="3 axes") as e:
        L.GroupQueryAttention(2, 4, 2, name="gqa")(_x(2, 6), _x(2, 6))
    assert "gqa" in str(e.value)
    with pytest.raises(ValueError, match="last dimension of `query_shape` and `value_shape`"):
        layer.compute_output_shape((None, 4, 6), (None, 5, 3))
    with pytest.raises(ValueError, match="Returning attention scores is not supported"):
        L.GroupQueryAttention(2, 2, 1, flash_attention=True)(q, v, return_attention_scores=True)


@pytest.mark.parametrize("masks", [False, True])
def test_gqa_is_multi_head_attention_with_shared_key_value_heads(masks):
    """One key/value head serving 4 query heads is Keras 3's MultiHeadAttention with that head's
    key and value kernels repeated over the heads."""
    q, v = _x(2, 4, 6), _x(2, 5, 6)
    gqa = L.GroupQueryAttention(3, 4, 1)
    gqa(q, v)
    weights = [_x(*w.shape) for w in gqa.weights]
    gqa.set_weights(weights)
    with klayers.serialization.dialect_scope(3):
        mha = L.MultiHeadAttention(4, 3)
    mha(q, v)
    mha.set_weights([np.repeat(w, 4, axis=-2) if i in (2, 3, 4, 5) else w for i, w in enumerate(weights)])
    kw = dict(query_mask=np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool),
              value_mask=np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], bool)) if masks else {}
    for extra in ({}, {"return_attention_scores": True}, {"use_causal_mask": True}):
        ours, theirs = gqa(q, v, **kw, **extra), mha(q, v, **kw, **extra)
        for a, b in zip(ours if extra.get("return_attention_scores") else [ours],
                        theirs if extra.get("return_attention_scores") else [theirs]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gqa_masks_in_a_model_and_pickling():
    import pickle

    tokens = klayers.Input((5,), dtype="int32")
    x = L.Embedding(9, 6, mask_zero=True, name="embed")(tokens)
    gqa = L.GroupQueryAttention(2, 4, 2, name="gqa")
    y = gqa(x, x)
    assert y._keras_mask is not None
    model = klayers.Model(tokens, y)
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], "int32")
    e = model.get_layer("embed")(ids)
    np.testing.assert_allclose(model.predict(ids), gqa(e, e, query_mask=ids != 0, value_mask=ids != 0),
                               rtol=1e-5, atol=1e-6)
    again = pickle.loads(pickle.dumps(gqa))
    np.testing.assert_array_equal(again(e, e), gqa(e, e))
    assert L.GroupQueryAttention(2, 2, 1).name.startswith("grouped_query_attention")  # Keras 3's own name
    assert L.deserialize({"class_name": "GroupedQueryAttention",  # Keras 3's legacy .h5 writer's name
                          "config": {"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1}}).head_dim == 2


def test_a_keras3_additive_attention_with_a_wide_value_is_not_written_for_tf_keras(tmp_path):
    q, v, k = klayers.Input((3, 4)), klayers.Input((5, 6)), klayers.Input((5, 4))
    with klayers.serialization.dialect_scope(3):
        layer = L.AdditiveAttention()
    model = klayers.Model([q, v, k], layer([q, v, k]))
    with pytest.raises(ValueError, match="sizes an AdditiveAttention's scale from the value"):
        model.save(str(tmp_path / "m.h5"))
    model.save(str(tmp_path / "m.keras"))
    x = [_x(2, 3, 4), _x(2, 5, 6), _x(2, 5, 4)]
    np.testing.assert_allclose(klayers.models.load_model(str(tmp_path / "m.keras")).predict(x), model.predict(x),
                               rtol=1e-6)
