"""Merge layers recorded from tf-keras 2.21 and Keras 3.15: Add, Subtract, Multiply, Average,
Maximum, Minimum, Concatenate, Dot; broadcasting and mixed ranks, masks merged, and
functional models whose output masks come from merged masked inputs."""

from __future__ import annotations

from core import SEED, _rng, int_input, record_layer, record_model


def two_masks(shape0, shape1=None, none_second=False):
    shape1 = shape1 or shape0

    def make(rng, b):
        m0 = rng.random((b,) + shape0) < 0.7
        m1 = None if none_second else rng.random((b,) + shape1) < 0.7
        return [m0, m1]
    return make


ELEMENTWISE = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]


def _elementwise_cases(cls):
    n = 2 if cls == "Subtract" else 3
    low = cls.lower()
    return [
        (f"{low}_rank2", cls, {}, [(4,), (4,)], None),
        (f"{low}_rank3_many", cls, {}, [(3, 2)] * n, None),
        (f"{low}_broadcast_ones", cls, {}, [(1, 4), (3, 4)], None),
        (f"{low}_mixed_rank", cls, {}, [(4,), (3, 4)], None),
        (f"{low}_masks", cls, {}, [(5, 2), (5, 2)], two_masks((5,))),
        (f"{low}_one_mask", cls, {"name": f"{low}_named"}, [(3, 2), (3, 2)], two_masks((3,), none_second=True)),
        (f"{low}_float64", cls, {"dtype": "float64"}, [(2, 2, 2), (2, 2, 2)], None),
    ]


OTHER = [
    ("concatenate_last", "Concatenate", {}, [(3,), (4,)], None),
    ("concatenate_axis1", "Concatenate", {"axis": 1}, [(2, 3), (4, 3), (1, 3)], None),
    ("concatenate_rank4_axis2", "Concatenate", {"axis": 2}, [(2, 1, 3), (2, 3, 3)], None),
    ("concatenate_neg2", "Concatenate", {"axis": -2}, [(2, 3), (2, 3)], None),
    ("concatenate_masks_time", "Concatenate", {"axis": 1}, [(4, 2), (3, 2)], lambda rng, b: [rng.random((b, 4)) < 0.6, rng.random((b, 3)) < 0.6]),
    ("concatenate_mask_and_none", "Concatenate", {}, [(4, 2), (4, 3)], two_masks((4,), none_second=True)),
    ("concatenate_masks_features", "Concatenate", {"name": "cat"}, [(5, 2), (5, 3)], two_masks((5,), (5,))),
    ("concatenate_single", "Concatenate", {}, [(3,)], None),
    ("dot_axes1", "Dot", {"axes": 1}, [(4,), (4,)], None),
    ("dot_axes1_normalize", "Dot", {"axes": 1, "normalize": True}, [(5,), (5,)], None),
    ("dot_rank3_axes22", "Dot", {"axes": (2, 2)}, [(3, 4), (2, 4)], None),
    ("dot_rank3_axes12", "Dot", {"axes": [1, 2]}, [(3, 4), (2, 3)], None),
    ("dot_neg_axes", "Dot", {"axes": -1, "normalize": True}, [(2, 3), (4, 3)], None),
    ("dot_rank2_rank3", "Dot", {"axes": (1, 2)}, [(3,), (4, 3)], None),
    ("dot_rank3_rank2", "Dot", {"axes": (2, 1)}, [(4, 3), (3,)], None),
    ("dot_masks", "Dot", {"axes": 2}, [(3, 2), (3, 2)], two_masks((3,))),
    ("dot_rank4", "Dot", {"axes": (3, 1)}, [(2, 2, 3), (3, 2)], None),
]


def _models(rec, keras):
    L = keras.layers
    # two masked sequences added: the output mask is the AND of the two masks
    a, b = keras.Input((6,), dtype="int32"), keras.Input((6,), dtype="int32")
    ea = L.Embedding(9, 4, mask_zero=True, name="emb_a")(a)
    eb = L.Embedding(9, 4, mask_zero=True, name="emb_b")(b)
    h = L.Add(name="add_ab")([L.Dense(4, name="dense_a")(ea), eb])
    out = L.Activation("tanh", name="tanh")(h)
    rng = _rng("model_embedding_add")
    record_model(rec, keras, "model_embedding_add", keras.Model([a, b], out), [
        int_input(9)(rng, (3, 6), "int32"), int_input(9)(rng, (3, 6), "int32")])
    # a masked sequence concatenated on the features with an unmasked one
    a, c = keras.Input((5,), dtype="int32"), keras.Input((5, 2))
    ea = L.Embedding(6, 3, mask_zero=True, name="emb_c")(a)
    cat = L.Concatenate(name="cat_feat")([ea, c])
    out = L.Dense(2, name="dense_cat")(cat)
    rng = _rng("model_embedding_concatenate")
    record_model(rec, keras, "model_embedding_concatenate", keras.Model([a, c], out), [
        int_input(6)(rng, (2, 5), "int32"), rng.standard_normal((2, 5, 2)).astype("float32")])
    # masked sequences concatenated along time
    a, b = keras.Input((4,), dtype="int32"), keras.Input((3,), dtype="int32")
    emb = L.Embedding(5, 2, mask_zero=True, name="emb_shared")
    out = L.Concatenate(axis=1, name="cat_time")([emb(a), emb(b)])
    out = L.Multiply(name="mul_self")([out, out])
    rng = _rng("model_concatenate_time")
    record_model(rec, keras, "model_concatenate_time", keras.Model([a, b], out), [
        int_input(5)(rng, (2, 4), "int32"), int_input(5)(rng, (2, 3), "int32")])
    # Masking -> Dense -> Maximum with an unmasked branch; the Dot drops the mask
    x = keras.Input((4, 3))
    m = L.Masking(name="mask_x")(x)
    d = L.Dense(3, name="dense_x")(m)
    mx = L.Maximum(name="max_x")([d, x])
    out = L.Dot(axes=2, name="dot_x")([mx, x])
    rng = _rng("model_masking_maximum_dot")
    xv = rng.standard_normal((2, 4, 3)).astype("float32")
    xv[0, 1] = 0
    xv[1, 3] = 0
    model = keras.Model(x, [mx, out])
    record_model(rec, keras, "model_masking_maximum_dot", model, xv)


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    cases = [c for cls in ELEMENTWISE for c in _elementwise_cases(cls)] + OTHER
    for name, cls, kwargs, shapes, mask in cases:
        dtype = "float64" if kwargs.get("dtype") == "float64" else "float32"
        record_layer(rec, keras, name, cls, kwargs, list(shapes), dtype=dtype, mask=mask)
    _models(rec, keras)


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    for name, cls, kwargs, shapes, mask in [
        ("add", "Add", {}, [(3, 2), (3, 2)], None),
        ("subtract", "Subtract", {}, [(4,), (4,)], None),
        ("average", "Average", {}, [(4,), (4,), (4,)], None),
        ("concatenate_axis1", "Concatenate", {"axis": 1}, [(2, 3), (4, 3)], None),
        ("dot_normalize", "Dot", {"axes": (2, 2), "normalize": True}, [(3, 4), (2, 4)], None),
        ("maximum_minimum", "Minimum", {}, [(2, 2), (2, 2)], None),
        ("multiply", "Multiply", {}, [(3,), (3,)], None),
        ("maximum", "Maximum", {}, [(3,), (3,)], None),
    ]:
        record_layer(rec, keras, name, cls, kwargs, list(shapes), mask=mask, keras3=True)
