"""Attention layers recorded from tf-keras 2.21 and Keras 3.15: EinsumDense, MultiHeadAttention,
and small models saved as files (masks from Embedding(mask_zero), a transformer encoder block).

* EinsumDense cases go through ``core.record_layer`` (one input).
* MultiHeadAttention cases (``kind: "mha_call"``) are called as Keras calls them: ``layer(query,
  value, key=..., attention_mask=..., return_attention_scores=..., use_causal_mask=...,
  training=...)``, with Keras masks attached to the input tensors (``_keras_mask`` in tf-keras,
  ``set_keras_mask`` in Keras 3) when a case has them. Arrays: ``w<i>`` (randomized weights),
  ``q_b<b>`` / ``v_b<b>`` / ``k_b<b>`` / ``am_b<b>`` (attention mask) / ``qm_b<b>`` / ``vm_b<b>`` /
  ``km_b<b>`` (Keras masks), outputs ``y_b<b>`` and scores ``s_b<b>``.
* Model files (``kind: "model_file"``): the models are saved in every format the Keras writes
  (as ``files.py``: ``.h5`` + ``.w.h5`` from tf-keras; ``.keras`` + ``.weights.h5`` + ``.h5`` from
  Keras 3) next to the case's arrays; the replay loads the files.

klayers is never imported here.
"""

from __future__ import annotations

import zlib

import numpy as np
from core import record_layer

SEED = 1515


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _f(rng, shape, dtype="float32", scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _padding_mask(rng, batch, steps, full_row=True):
    """Keras masks with trailing padding; the last row of a batch of 2+ is fully padded."""
    lengths = rng.integers(1, steps + 1, size=batch)
    if full_row and batch > 1:
        lengths[-1] = 0
    return np.arange(steps)[None, :] < lengths[:, None]


# -- EinsumDense ---------------------------------------------------------------------------------
EINSUM = [
    ("einsum_ab_bc", {"equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "c"}, (3,)),
    ("einsum_sequence_relu", {"equation": "abc,cd->abd", "output_shape": (None, 6), "bias_axes": "d",
                              "activation": "relu"}, (5, 4)),
    ("einsum_ellipsis_left", {"equation": "...b,bc->...c", "output_shape": 5, "bias_axes": "c",
                              "activation": "tanh"}, (2, 3, 4)),
    ("einsum_heads", {"equation": "abc,cde->abde", "output_shape": (None, 2, 3), "bias_axes": "de"}, (5, 4)),
    ("einsum_merge_heads", {"equation": "abcd,cde->abe", "output_shape": (None, 6), "bias_axes": "e"}, (4, 2, 3)),
    ("einsum_bias_inner_axis", {"equation": "abc,cd->abd", "output_shape": (3, 5), "bias_axes": "b"}, (3, 4)),
    ("einsum_ellipsis_right", {"equation": "ab...,bc->ac...", "output_shape": 4, "bias_axes": "c"}, (3, 2, 5)),
    ("einsum_two_contracted", {"equation": "abc,bcd->ad", "output_shape": 7}, (3, 4)),
    ("einsum_no_bias_initializers", {"equation": "abc,cd->abd", "output_shape": (None, 3),
                                     "kernel_initializer": "he_normal", "kernel_regularizer": "l2",
                                     "name": "proj"}, (2, 5)),
    ("einsum_transposed_kernel", {"equation": "abc,dc->abd", "output_shape": (None, 3), "bias_axes": "d"}, (4, 5)),
]


def _einsum_cases(rec, keras, keras3):
    for name, kw, shape in EINSUM:
        record_layer(rec, keras, name, "EinsumDense", kw, shape, batches=(1, 3), keras3=keras3)
    record_layer(rec, keras, "einsum_float64", "EinsumDense",
                 {"equation": "abc,cd->abd", "output_shape": (None, 4), "bias_axes": "d", "dtype": "float64"},
                 (3, 5), dtype="float64", batches=(2,), keras3=keras3)


# -- MultiHeadAttention --------------------------------------------------------------------------
#: (name, layer kwargs, query shape, value shape, key shape or None, options); options:
#: masks ("query", "value", "key"), attention_mask, causal, scores, training, dtype, keras2/keras3
MHA = [
    ("mha_self", {"num_heads": 2, "key_dim": 3}, (5, 8), None, None, {}),
    ("mha_cross_value_dim_nobias", {"num_heads": 3, "key_dim": 4, "value_dim": 2, "use_bias": False},
     (4, 6), (7, 6), None, {"scores": True}),
    ("mha_key", {"num_heads": 2, "key_dim": 3}, (4, 6), (5, 6), (5, 3), {}),
    ("mha_output_shape_int", {"num_heads": 2, "key_dim": 2, "output_shape": 5}, (3, 4), (6, 4), None, {}),
    ("mha_output_shape_2d", {"num_heads": 1, "key_dim": 4, "output_shape": (2, 3)}, (3, 4), (3, 4), None, {}),
    ("mha_attention_axes_2d", {"num_heads": 2, "key_dim": 2, "attention_axes": (1, 2)}, (3, 4, 5), (2, 3, 5), None,
     {"scores": True}),
    ("mha_attention_axis_int", {"num_heads": 2, "key_dim": 3, "attention_axes": 2}, (3, 4, 5), (3, 2, 5), None,
     {"scores": True}),
    ("mha_attention_mask", {"num_heads": 2, "key_dim": 3}, (4, 6), (5, 6), None,
     {"attention_mask": True, "scores": True}),
    ("mha_attention_mask_fused", {"num_heads": 2, "key_dim": 3}, (4, 6), (5, 6), None, {"attention_mask": True}),
    ("mha_causal", {"num_heads": 2, "key_dim": 3}, (5, 6), None, None, {"causal": True, "scores": True}),
    ("mha_causal_fused", {"num_heads": 2, "key_dim": 3}, (5, 6), None, None, {"causal": True}),
    ("mha_masks_scores", {"num_heads": 2, "key_dim": 3}, (4, 6), (5, 6), None,
     {"masks": ("query", "value"), "scores": True}),
    ("mha_masks_fused", {"num_heads": 2, "key_dim": 3}, (4, 6), (5, 6), None, {"masks": ("query", "value")}),
    ("mha_key_mask", {"num_heads": 1, "key_dim": 3}, (4, 6), (5, 6), (5, 4),
     {"masks": ("value", "key"), "causal": True}),
    ("mha_masks_and_attention_mask", {"num_heads": 2, "key_dim": 2}, (4, 6), (4, 6), None,
     {"masks": ("query", "value"), "attention_mask": True, "causal": True}),
    ("mha_dropout_inference", {"num_heads": 2, "key_dim": 3, "dropout": 0.3}, (4, 6), (5, 6), None,
     {"masks": ("query",), "training": False}),
    ("mha_initializers", {"num_heads": 2, "key_dim": 3, "kernel_initializer": "he_normal",
                          "bias_initializer": "ones", "kernel_regularizer": "l2", "name": "attn"},
     (3, 4), (3, 4), None, {}),
    ("mha_float64", {"num_heads": 2, "key_dim": 3, "dtype": "float64"}, (4, 6), (5, 6), None,
     {"dtype": "float64", "masks": ("query", "value"), "scores": True}),
    ("mha_robust_masking", {"num_heads": 2, "key_dim": 3, "softmax_robust_masking": True}, (4, 6), (5, 6), None,
     {"masks": ("query", "value"), "scores": True, "keras3": False}),
    ("mha_gate", {"num_heads": 2, "key_dim": 3, "use_gate": True}, (4, 6), (5, 6), None,
     {"masks": ("value",), "keras2": False}),
    ("mha_sliding_window", {"num_heads": 2, "key_dim": 3, "sliding_window": 2}, (5, 6), None, None,
     {"causal": True, "scores": True, "keras2": False}),
]


def _mha_case(rec, keras, name, kwargs, q_shape, v_shape, k_shape, opts, keras3):
    import tensorflow as tf

    rng = _rng(name)
    dtype = opts.get("dtype", "float32")
    self_attention = v_shape is None
    batches = (1, 3)
    layer = keras.layers.MultiHeadAttention(**kwargs)
    data = {}
    for b in batches:
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
            if keras3:
                x._keras_mask = tf.constant(mask)  # what keras.src.backend.set_keras_mask does
            else:
                x._keras_mask = tf.constant(mask)
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

    call(data[batches[0]])  # build
    ws = [(rng.standard_normal(tuple(w.shape)) * 0.5).astype(dtype) for w in layer.weights]
    if keras3:
        for w, value in zip(layer.weights, ws):
            w.assign(value)
    else:
        layer.set_weights(ws)
    arrays = {f"w{i}": w for i, w in enumerate(ws)}
    for b in batches:
        for key, value in data[b].items():
            arrays[f"{key}_b{b}"] = value
        y, s = call(data[b])
        arrays[f"y_b{b}"] = np.asarray(y)
        if s is not None:
            arrays[f"s_b{b}"] = np.asarray(s)
    out_shape = None
    try:
        shape = layer.compute_output_shape((None,) + q_shape, (None,) + (v_shape or q_shape),
                                           None if k_shape is None else (None,) + k_shape)
        out_shape = list(shape.as_list() if hasattr(shape, "as_list") else shape)
    except ValueError:
        pass
    rec.case(
        name, arrays=arrays, kind="mha_call", class_name="MultiHeadAttention", config=_plain(layer.get_config()),
        serialized=_plain(keras.layers.serialize(layer)), n_weights=len(layer.weights),
        weight_names=[w.path if keras3 else w.name for w in layer.weights], batches=list(batches), dtype=dtype,
        output_shape=out_shape, self_attention=self_attention, key=k_shape is not None,
        scores=bool(opts.get("scores")), causal=bool(opts.get("causal")), training=opts.get("training"),
        masks=sorted(opts.get("masks", ())), attention_mask=bool(opts.get("attention_mask")),
    )


def _mha_cases(rec, keras, keras3):
    for name, kw, q, v, k, opts in MHA:
        if opts.get("keras3" if keras3 else "keras2", True):
            _mha_case(rec, keras, name, kw, q, v, k, opts, keras3)


# -- model files -----------------------------------------------------------------------------------
def masked_self_attention(keras, rng):
    L = keras.layers
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    x = L.Embedding(20, 8, mask_zero=True, name="embed")(tokens)
    x = L.MultiHeadAttention(2, 4, name="self_attention")(x, x)
    out = L.GlobalAveragePooling1D(name="pool")(x)
    ids = rng.integers(1, 20, size=(4, 6))
    ids[0, 4:] = 0
    ids[1, 2:] = 0
    ids[3, :] = 0  # a sequence of padding only
    return keras.Model(tokens, out, name="masked_self_attention"), ids.astype("int32")


def masked_cross_attention(keras, rng):
    L = keras.layers
    a = keras.Input((4,), dtype="int32", name="target")
    b = keras.Input((5,), dtype="int32", name="source")
    qa = L.Embedding(12, 6, mask_zero=True, name="embed_target")(a)
    vb = L.Embedding(12, 6, mask_zero=True, name="embed_source")(b)
    y, scores = L.MultiHeadAttention(3, 2, value_dim=3, name="cross_attention")(qa, vb, return_attention_scores=True)
    y = L.Dense(3, name="head")(y)
    ids_a = rng.integers(1, 12, size=(3, 4))
    ids_a[0, 3:] = 0
    ids_b = rng.integers(1, 12, size=(3, 5))
    ids_b[1, 2:] = 0
    ids_b[2, :] = 0
    return keras.Model([a, b], [y, scores], name="masked_cross_attention"), [ids_a.astype("int32"), ids_b.astype("int32")]


def transformer_encoder(keras, rng):
    L = keras.layers
    inp = keras.Input((6, 8), name="sequence")
    att = L.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.1, name="mha")(inp, inp, use_causal_mask=True)
    att = L.Dropout(0.1, name="drop")(att)
    h = L.LayerNormalization(epsilon=1e-6, name="norm1")(L.Add(name="residual1")([inp, att]))
    f = L.Dense(16, activation="relu", name="ffn_in")(h)
    f = L.EinsumDense("abc,cd->abd", output_shape=(None, 8), bias_axes="d", name="ffn_out")(f)
    out = L.LayerNormalization(epsilon=1e-6, name="norm2")(L.Add(name="residual2")([h, f]))
    return keras.Model(inp, out, name="transformer_encoder"), _f(rng, (3, 6, 8))


MODELS = [("masked_self_attention", masked_self_attention), ("masked_cross_attention", masked_cross_attention),
          ("transformer_encoder", transformer_encoder)]
_FORMATS = {"model_h5": ".h5", "weights_h5": ".w.h5", "model_keras": ".keras", "weights_keras": ".weights.h5"}


def _plain(config):
    """A config with tf-keras's TensorShapes (MultiHeadAttention's query_shape ...) as lists."""
    if isinstance(config, dict):
        return {k: _plain(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [_plain(v) for v in config]
    if hasattr(config, "as_list"):
        return config.as_list() if config.rank is not None else None
    return config


def _flat(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _model_cases(rec, keras, keras3):
    for name, build in MODELS:
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
            classes=sorted({type(layer).__name__ for layer in model.layers}),
            model_class=type(model).__name__, layer_names=[layer.name for layer in model.layers],
            n_weights=len(model.weights), weight_shapes=[[int(d) for d in w.shape] for w in model.weights],
            n_inputs=len(_flat(inputs)), n_outputs=len(outputs), compiled=False, unsafe=False,
        )


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    _einsum_cases(rec, keras, keras3=False)
    _mha_cases(rec, keras, keras3=False)
    _model_cases(rec, keras, keras3=False)


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    _einsum_cases(rec, keras, keras3=True)
    _mha_cases(rec, keras, keras3=True)
    _model_cases(rec, keras, keras3=True)
