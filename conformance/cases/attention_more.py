"""More attention layers recorded from tf-keras 2.21 and Keras 3.15: ``Attention`` (Luong, dot and
concat scores) and ``AdditiveAttention`` (Bahdanau) in both dialects, Keras 3's
``GroupQueryAttention``, and small models saved as files (masks from Embedding(mask_zero)).

* ``Attention`` / ``AdditiveAttention`` cases (``kind: "dense_attention"``) are called as Keras
  calls them: ``layer([query, value(, key)], mask=[query_mask, value_mask(, key_mask)],
  return_attention_scores=..., use_causal_mask=..., training=...)``. Arrays: ``w<i>``
  (randomized weights), ``x<i>_b<b>`` (inputs), ``m<i>_b<b>`` (the masks given; a missing one is
  None), outputs ``y_b<b>``, scores ``s_b<b>``, Keras's ``compute_mask`` ``mask_b<b>``. tf-keras's
  deprecated ``causal=True`` constructor argument is not in its config: ``init_extra`` keeps it.
* ``GroupQueryAttention`` cases (``kind: "mha_call"``, Keras 3 only) are recorded as the
  attention family's MultiHeadAttention cases (same arrays and meta), replayed by the same check.
* Model files (``kind: "model_file"``): as the attention family's.

klayers is never imported here.
"""

from __future__ import annotations

import numpy as np
from attention import _FORMATS, _f, _flat, _padding_mask, _plain, _rng

SEED = 1516
BATCHES = (1, 3)

# -- Attention / AdditiveAttention ----------------------------------------------------------------
#: (name, class, layer kwargs, input shapes without batch [query, value(, key)], options); options:
#: masks (of "query", "value", "key"), causal, scores, training, dtype, keras2 / keras3 (False: skip)
DENSE = [
    ("att_dot", "Attention", {}, [(3, 4), (5, 4)], {}),
    ("att_scale_scores", "Attention", {"use_scale": True}, [(3, 4), (5, 4)], {"scores": True}),
    ("att_key_wide_value", "Attention", {}, [(3, 4), (5, 6), (5, 4)], {"scores": True}),
    ("att_concat", "Attention", {"score_mode": "concat"}, [(3, 4), (5, 4)], {"scores": True}),
    ("att_concat_scale_key", "Attention", {"score_mode": "concat", "use_scale": True}, [(4, 3), (5, 2), (5, 3)], {}),
    ("att_masks", "Attention", {"use_scale": True}, [(4, 3), (5, 3)], {"masks": ("query", "value"), "scores": True}),
    ("att_value_mask", "Attention", {}, [(4, 3), (5, 3)], {"masks": ("value",), "scores": True}),
    ("att_query_mask", "Attention", {}, [(4, 3), (5, 3)], {"masks": ("query",)}),
    ("att_three_masks", "Attention", {}, [(3, 4), (5, 4), (5, 4)], {"masks": ("query", "value", "key")}),
    ("att_causal", "Attention", {}, [(5, 3), (5, 3)], {"causal": True, "scores": True}),
    ("att_causal_longer_value", "Attention", {"score_mode": "concat"}, [(4, 3), (6, 3)],
     {"causal": True, "masks": ("query", "value"), "scores": True}),
    ("att_causal_init", "Attention", {"causal": True}, [(4, 3), (4, 3)], {"scores": True, "keras3": False}),
    ("att_dropout_inference", "Attention", {"dropout": 0.4}, [(3, 4), (5, 4)],
     {"training": False, "masks": ("value",)}),
    ("att_seed_named", "Attention", {"dropout": 0.1, "seed": 7, "name": "luong"}, [(3, 4), (5, 4)],
     {"keras2": False}),
    ("att_float64", "Attention", {"dtype": "float64", "use_scale": True}, [(3, 4), (5, 4)],
     {"dtype": "float64", "masks": ("query", "value"), "scores": True}),
    ("att_rank4", "Attention", {"use_scale": True}, [(2, 3, 4), (2, 5, 4)], {"scores": True, "causal": True}),
    ("add_default", "AdditiveAttention", {}, [(3, 4), (5, 4)], {"scores": True}),
    ("add_no_scale", "AdditiveAttention", {"use_scale": False}, [(3, 4), (5, 4)], {}),
    ("add_key", "AdditiveAttention", {}, [(3, 4), (5, 4), (5, 4)], {"scores": True}),
    ("add_key_wide_value", "AdditiveAttention", {}, [(3, 4), (5, 6), (5, 4)], {"keras2": False}),
    ("add_masks_causal", "AdditiveAttention", {}, [(5, 3), (5, 3)],
     {"masks": ("query", "value"), "causal": True, "scores": True}),
    ("add_value_mask", "AdditiveAttention", {"use_scale": False}, [(4, 3), (6, 3)], {"masks": ("value",)}),
    ("add_dropout_inference", "AdditiveAttention", {"dropout": 0.5}, [(3, 4), (5, 4)],
     {"training": False, "masks": ("query", "value")}),
    ("add_float64", "AdditiveAttention", {"dtype": "float64"}, [(4, 3), (5, 3)],
     {"dtype": "float64", "masks": ("value",), "scores": True}),
]


def _dense_case(rec, keras, name, class_name, kwargs, shapes, opts, keras3):
    import tensorflow as tf

    rng = _rng(name)
    dtype = opts.get("dtype", "float32")
    layer = getattr(keras.layers, class_name)(**kwargs)
    which = ("query", "value", "key")
    n_masks = 0
    if opts.get("masks"):
        n_masks = 3 if "key" in opts["masks"] else 2
    data = {}
    for b in BATCHES:
        xs = [_f(rng, (b,) + s, dtype, 1.5) for s in shapes]
        masks = []
        for i in range(n_masks):
            if which[i] in opts["masks"]:
                steps = shapes[i][:-1]
                m = _padding_mask(rng, b * int(np.prod(steps[:-1])), steps[-1], full_row=(which[i] != "query"))
                masks.append(m.reshape((b,) + steps))
            else:
                masks.append(None)
        data[b] = (xs, masks)

    def call(b):
        xs, masks = data[b]
        kw = {}
        if n_masks:
            kw["mask"] = [None if m is None else tf.constant(m) for m in masks]
        if opts.get("scores"):
            kw["return_attention_scores"] = True
        if opts.get("causal"):
            kw["use_causal_mask"] = True
        if "training" in opts:
            kw["training"] = opts["training"]
        out = layer([tf.constant(x) for x in xs], **kw)
        return out if isinstance(out, (tuple, list)) else (out, None)

    call(BATCHES[0])  # build
    ws = [(rng.standard_normal(tuple(w.shape)) * 0.5 + 1.0).astype(dtype) for w in layer.weights]
    if keras3:
        for w, value in zip(layer.weights, ws):
            w.assign(value)
    else:
        layer.set_weights(ws)
    arrays = {f"w{i}": w for i, w in enumerate(ws)}
    for b in BATCHES:
        xs, masks = data[b]
        for i, x in enumerate(xs):
            arrays[f"x{i}_b{b}"] = x
        for i, m in enumerate(masks):
            if m is not None:
                arrays[f"m{i}_b{b}"] = m
        y, s = call(b)
        arrays[f"y_b{b}"] = np.asarray(y)
        if s is not None:
            arrays[f"s_b{b}"] = np.asarray(s)
        if n_masks:
            out_mask = layer.compute_mask([tf.constant(x) for x in xs],
                                          [None if m is None else tf.constant(m) for m in masks])
            if out_mask is not None:
                arrays[f"mask_b{b}"] = np.asarray(out_mask)
    shape = layer.compute_output_shape([(None,) + s for s in shapes])
    init_extra = {k: v for k, v in kwargs.items() if k == "causal"}
    rec.case(
        name, arrays=arrays, kind="dense_attention", class_name=class_name, config=_plain(layer.get_config()),
        serialized=_plain(keras.layers.serialize(layer)), n_weights=len(layer.weights),
        weight_names=[w.path if keras3 else w.name for w in layer.weights], batches=list(BATCHES), dtype=dtype,
        n_inputs=len(shapes), n_masks=n_masks, output_shape=list(_plain(shape)), scores=bool(opts.get("scores")),
        causal=bool(opts.get("causal")), training=opts.get("training"), init_extra=init_extra,
    )


def _dense_cases(rec, keras, keras3):
    for name, cls, kw, shapes, opts in DENSE:
        if opts.get("keras3" if keras3 else "keras2", True):
            _dense_case(rec, keras, name, cls, kw, shapes, opts, keras3)


# -- GroupQueryAttention (Keras 3) ----------------------------------------------------------------
#: (name, layer kwargs, query shape, value shape or None (self-attention), key shape or None,
#: options as the attention family's MHA cases)
H2 = {"head_dim": 3, "num_query_heads": 4, "num_key_value_heads": 2}
GQA = [
    ("gqa_self", H2, (5, 8), None, None, {}),
    ("gqa_cross_scores_one_kv_head", {"head_dim": 2, "num_query_heads": 3, "num_key_value_heads": 1},
     (4, 6), (7, 6), None, {"scores": True}),
    ("gqa_key_nobias", dict(H2, use_bias=False), (4, 6), (5, 6), (5, 3), {}),
    ("gqa_equal_heads", {"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 2}, (3, 4), (5, 4), None,
     {"scores": True}),
    ("gqa_attention_mask", H2, (4, 6), (5, 6), None, {"attention_mask": True, "scores": True}),
    ("gqa_attention_mask_fused", H2, (4, 6), (5, 6), None, {"attention_mask": True}),
    ("gqa_causal_fused", H2, (5, 6), None, None, {"causal": True}),
    ("gqa_causal_scores", H2, (5, 6), None, None, {"causal": True, "scores": True}),
    ("gqa_masks_fused", H2, (4, 6), (5, 6), None, {"masks": ("query", "value")}),
    ("gqa_masks_scores", H2, (4, 6), (5, 6), None, {"masks": ("query", "value"), "scores": True}),
    ("gqa_key_mask_causal", H2, (4, 6), (5, 6), (5, 4), {"masks": ("value", "key"), "causal": True}),
    ("gqa_masks_attention_mask_causal", H2, (4, 6), (4, 6), None,
     {"masks": ("query", "value"), "attention_mask": True, "causal": True, "scores": True}),
    ("gqa_dropout_inference", dict(H2, dropout=0.3), (4, 6), (5, 6), None, {"masks": ("query",), "training": False}),
    ("gqa_gate", dict(H2, use_gate=True), (4, 6), (5, 6), None, {"masks": ("value",)}),
    ("gqa_sliding_window", dict(H2, sliding_window=2), (5, 6), None, None, {"causal": True, "scores": True}),
    ("gqa_sliding_window_fused", dict(H2, sliding_window=3), (6, 6), None, None, {}),
    ("gqa_initializers", dict(H2, kernel_initializer="he_normal", bias_initializer="ones", kernel_regularizer="l2",
                              name="gqa", flash_attention=False), (3, 4), (3, 4), None, {}),
    ("gqa_float64", dict(H2, dtype="float64"), (4, 6), (5, 6), None,
     {"dtype": "float64", "masks": ("query", "value"), "scores": True}),
]


def _gqa_case(rec, keras, name, kwargs, q_shape, v_shape, k_shape, opts):
    import tensorflow as tf

    rng = _rng(name)
    dtype = opts.get("dtype", "float32")
    self_attention = v_shape is None
    layer = keras.layers.GroupQueryAttention(**kwargs)
    data = {}
    for b in BATCHES:
        d = {"q": _f(rng, (b,) + q_shape, dtype, 1.5)}
        d["v"] = d["q"] if self_attention else _f(rng, (b,) + v_shape, dtype, 1.5)
        if k_shape is not None:
            d["k"] = _f(rng, (b,) + k_shape, dtype, 1.5)
        t, s = q_shape[0], (v_shape or q_shape)[0]
        if opts.get("attention_mask"):
            am = rng.random((b, t, s)) < 0.7
            am[:, :, 0] = True
            if b > 1:
                am[-1, 0, :] = False  # a fully masked query row
            d["am"] = am
        for which in opts.get("masks", ()):
            steps = t if which == "query" else s
            d[which[0] + "m"] = _padding_mask(rng, b, steps, full_row=(which != "query"))
        data[b] = d

    def tensor(x, mask=None):
        x = tf.constant(x)
        if mask is not None:
            x._keras_mask = tf.constant(mask)  # what keras.src.backend.set_keras_mask does
        return x

    def call(d):
        q = tensor(d["q"], d.get("qm"))
        v = q if self_attention and "vm" not in d else tensor(d["v"], d.get("vm"))
        kw = {}
        if "k" in d:
            kw["key"] = tensor(d["k"], d.get("km"))
        if "am" in d:
            kw["attention_mask"] = tf.constant(d["am"])
        if opts.get("scores"):
            kw["return_attention_scores"] = True
        if opts.get("causal"):
            kw["use_causal_mask"] = True
        if "training" in opts:
            kw["training"] = opts["training"]
        out = layer(q, v, **kw)
        return out if isinstance(out, (tuple, list)) else (out, None)

    call(data[BATCHES[0]])  # build
    ws = [(rng.standard_normal(tuple(w.shape)) * 0.5).astype(dtype) for w in layer.weights]
    for w, value in zip(layer.weights, ws):
        w.assign(value)
    arrays = {f"w{i}": w for i, w in enumerate(ws)}
    for b in BATCHES:
        for key, value in data[b].items():
            arrays[f"{key}_b{b}"] = value
        y, s = call(data[b])
        arrays[f"y_b{b}"] = np.asarray(y)
        if s is not None:
            arrays[f"s_b{b}"] = np.asarray(s)
    shape = layer.compute_output_shape((None,) + q_shape, (None,) + (v_shape or q_shape),
                                       None if k_shape is None else (None,) + k_shape)
    rec.case(
        name, arrays=arrays, kind="mha_call", class_name="GroupQueryAttention", config=_plain(layer.get_config()),
        serialized=_plain(keras.layers.serialize(layer)), n_weights=len(layer.weights),
        weight_names=[w.path for w in layer.weights], batches=list(BATCHES), dtype=dtype,
        output_shape=list(shape), self_attention=self_attention, key=k_shape is not None,
        scores=bool(opts.get("scores")), causal=bool(opts.get("causal")), training=opts.get("training"),
        masks=sorted(opts.get("masks", ())), attention_mask=bool(opts.get("attention_mask")),
    )


# -- model files -----------------------------------------------------------------------------------
def _ids(rng, vocab, shape, pad):
    ids = rng.integers(1, vocab, size=shape)
    for row, start in pad.items():
        ids[row, start:] = 0
    return ids.astype("int32")


def luong_embedding_masks(keras, rng):
    L = keras.layers
    a = keras.Input((4,), dtype="int32", name="target")
    b = keras.Input((6,), dtype="int32", name="source")
    qa = L.Embedding(15, 5, mask_zero=True, name="embed_target")(a)
    vb = L.Embedding(15, 5, mask_zero=True, name="embed_source")(b)
    y = L.Attention(use_scale=True, name="luong")([qa, vb])
    y = L.GlobalAveragePooling1D(name="pool")(y)  # averages over the query mask
    out = L.Dense(3, name="head")(y)
    ids_a = _ids(rng, 15, (4, 4), {0: 3, 2: 1})
    ids_b = _ids(rng, 15, (4, 6), {1: 2, 3: 0})  # the last row: all padding
    return keras.Model([a, b], out, name="luong_embedding_masks"), [ids_a, ids_b]


def bahdanau_scores_causal(keras, rng):
    L = keras.layers
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    x = L.Embedding(12, 4, mask_zero=True, name="embed")(tokens)
    y, scores = L.AdditiveAttention(name="bahdanau")([x, x], return_attention_scores=True, use_causal_mask=True)
    y = L.Dense(2, name="head")(y)
    ids = _ids(rng, 12, (3, 5), {0: 4, 1: 2})
    return keras.Model(tokens, [y, scores], name="bahdanau_scores_causal"), ids


def luong_concat_key(keras, rng):
    L = keras.layers
    q = keras.Input((4, 6), name="query")
    v = keras.Input((5, 3), name="value")
    k = keras.Input((5, 6), name="key")
    y = L.Attention(score_mode="concat", use_scale=True, name="concat")([q, v, k], use_causal_mask=True)
    out = L.LayerNormalization(name="norm")(L.Dense(6, name="proj")(y))
    return keras.Model([q, v, k], out, name="luong_concat_key"), [_f(rng, (3, 4, 6)), _f(rng, (3, 5, 3)),
                                                                  _f(rng, (3, 5, 6))]


def gqa_embedding_masks(keras, rng):
    L = keras.layers
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    x = L.Embedding(20, 8, mask_zero=True, name="embed")(tokens)
    x = L.GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2, name="gqa")(x, x)
    out = L.Dense(3, name="head")(L.GlobalAveragePooling1D(name="pool")(x))
    ids = _ids(rng, 20, (4, 6), {0: 4, 1: 2, 3: 0})  # a sequence of padding only
    return keras.Model(tokens, out, name="gqa_embedding_masks"), ids


def gqa_decoder_block(keras, rng):
    L = keras.layers
    inp = keras.Input((6, 8), name="sequence")
    att, scores = L.GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=1, use_gate=True,
                                        dropout=0.1, name="gqa")(inp, inp, use_causal_mask=True,
                                                                 return_attention_scores=True)
    h = L.LayerNormalization(epsilon=1e-6, name="norm")(L.Add(name="residual")([inp, att]))
    return keras.Model(inp, [h, scores], name="gqa_decoder_block"), _f(rng, (3, 6, 8))


MODELS = [("luong_embedding_masks", luong_embedding_masks, True),
          ("bahdanau_scores_causal", bahdanau_scores_causal, True),
          ("luong_concat_key", luong_concat_key, True),
          ("gqa_embedding_masks", gqa_embedding_masks, False),
          ("gqa_decoder_block", gqa_decoder_block, False)]


def _model_cases(rec, keras, keras3):
    for name, build, both in MODELS:
        if not (both or keras3):
            continue
        keras.backend.clear_session()
        rng = _rng(name)
        model, inputs = build(keras, rng)
        model.set_weights([(rng.standard_normal(tuple(int(d) for d in w.shape)) * 0.5).astype("float32")
                           for w in model.weights])
        wanted = ["model_keras", "weights_keras", "model_h5"] if keras3 else ["model_h5", "weights_h5"]
        files = {}
        for key in wanted:
            files[key] = name + _FORMATS[key]
            path = rec.path(files[key])
            if key.startswith("weights"):
                model.save_weights(path)
            elif key == "model_h5" and not keras3:
                model.save(path, save_format="h5")
            else:
                model.save(path)
        outputs = _flat(model.predict(inputs, verbose=0))
        arrays = {f"x{i}": x for i, x in enumerate(_flat(inputs))}
        arrays.update({f"y{i}": np.asarray(y) for i, y in enumerate(outputs)})
        rec.case(
            name, arrays=arrays, kind="model_file", files=files,
            classes=sorted({keras.layers.serialize(layer)["class_name"] for layer in model.layers}),
            model_class=type(model).__name__, layer_names=[layer.name for layer in model.layers],
            n_weights=len(model.weights), weight_shapes=[[int(d) for d in w.shape] for w in model.weights],
            n_inputs=len(_flat(inputs)), n_outputs=len(outputs), compiled=False, unsafe=False,
        )


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    _dense_cases(rec, keras, keras3=False)
    _model_cases(rec, keras, keras3=False)


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    _dense_cases(rec, keras, keras3=True)
    for name, kw, q, v, k, opts in GQA:
        _gqa_case(rec, keras, name, kw, q, v, k, opts)
    _model_cases(rec, keras, keras3=True)
