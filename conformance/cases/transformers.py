"""Small transformer models as people build them from stock layers, saved by tf-keras 2.21 (``.h5``)
and Keras 3.15 (``.keras``), replayed by loading the file: a ViT-style encoder and a GPT-style causal
decoder (d_model 32, 4 heads, sequence 16).

- ``vit``: patch embedding by a ``Conv2D`` whose strides are its kernel (16x16 image, 4x4 patches),
  ``Reshape`` to 16 patches; a learned class token and a learned position table made without custom
  layers: a ``Dense`` over zeros (``x[:, :1, :1] * 0.0``, a SlicingOpLambda / TFOpLambda in tf-keras,
  GetItem / Multiply operations in Keras 3) is its bias, a constant learned term; the class token is
  concatenated in front, the table added; two pre-norm blocks (``LayerNormalization``,
  ``MultiHeadAttention`` with attention dropout, ``Add``, ``Dense(gelu)`` MLP, ``Add``); the head
  reads the class token ``x[:, 0]``.
- ``gpt``: token ``Embedding`` plus a position ``Embedding`` over a positions input (``0..15``),
  two pre-norm decoder blocks with ``MultiHeadAttention(use_causal_mask=True)`` and a gelu MLP, a
  final ``LayerNormalization`` and a ``Dense`` over the vocabulary (logits at every position).
- ``gpt_padded``: the decoder with ``Embedding(mask_zero=True)`` tokens, right-padded sequences.
  tf-keras combines the causal and the padding masks; Keras 3's ``Add`` drops the padding mask
  (one of its inputs, the position embedding, has none), so its attention is causal only.
- ``bert_block``: a post-norm BERT encoder block over 16 x 32 vectors whose MLP gelu is written as
  BERT writes it, ``0.5 * h * (1.0 + erf(h / sqrt(2)))``: TensorFlow ops in tf-keras (numbers as
  the first argument: ``tf.math.multiply(0.5, y=h)``, ``tf.__operators__.add(1.0, y=...)``), in
  Keras 3 ``0.5 * h`` operation nodes around ``ops.gelu(approximate=False)``; the attention takes
  an explicit ``attention_mask`` input.
- ``masked_merges``: how the two Kerases combine masks in merges, where attention reads them: two
  ``Embedding(mask_zero=True)`` inputs added (tf-keras: AND of the masks, Keras 3: OR), then
  concatenated on the feature axis with an unmasked ``Dense`` term (tf-keras keeps a step where all
  masks keep it, Keras 3 where any does) and concatenated on the time axis with an unmasked
  sequence (Keras 3 only: tf-keras fails there, its mask of the masked input is not broadcast to
  the input's shape); each result feeds a ``MultiHeadAttention``.

Weights are randomized with fan-in scaling (kernels ``N(0, 1/fan_in)``, LayerNorm gammas near 1,
small biases) so that attention is neither uniform nor one-hot and the outputs depend on the inputs.
Case format: ``op_nodes._save_case`` (file, inputs ``x<i>``, Keras's outputs ``y<i>``, output
shapes and dtypes). klayers is never imported here.
"""

from __future__ import annotations

import zlib

import numpy as np
from op_nodes import _save_case

D, HEADS, SEQ, VOCAB, MLP = 32, 4, 16, 50, 64


def _block(L, x, name, causal):
    h = L.LayerNormalization(epsilon=1e-6, name=f"{name}_ln1")(x)
    a = L.MultiHeadAttention(HEADS, D // HEADS, dropout=0.1, name=f"{name}_mha")(h, h, use_causal_mask=causal)
    x = L.Add(name=f"{name}_res1")([x, a])
    h = L.LayerNormalization(epsilon=1e-6, name=f"{name}_ln2")(x)
    h = L.Dense(MLP, activation="gelu", name=f"{name}_mlp_in")(h)
    h = L.Dense(D, name=f"{name}_mlp_out")(L.Dropout(0.1, name=f"{name}_drop")(h))
    return L.Add(name=f"{name}_res2")([x, h])


def vit(keras, rng):
    L = keras.layers
    img = keras.Input((16, 16, 3), name="image")
    patches = L.Conv2D(D, 4, strides=4, name="patch_embed")(img)
    x = L.Reshape((SEQ, D), name="patches")(patches)
    zeros = x[:, :1, :1] * 0.0
    cls = L.Dense(D, name="class_token")(zeros)  # (batch, 1, D): its bias
    x = L.Concatenate(axis=1, name="with_class")([cls, x])
    pos = L.Reshape((SEQ + 1, D), name="pos_table")(L.Dense((SEQ + 1) * D, name="pos_embed")(zeros))
    x = L.Add(name="add_pos")([x, pos])
    for i in range(2):
        x = _block(L, x, f"enc{i}", causal=False)
    x = L.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    y = L.Dense(10, name="head")(x[:, 0])
    return keras.Model(img, y, name="vit"), [rng.standard_normal((3, 16, 16, 3)).astype("float32")]


def _gpt(keras, rng, mask_zero):
    L = keras.layers
    tokens = keras.Input((SEQ,), dtype="int32", name="tokens")
    positions = keras.Input((SEQ,), dtype="int32", name="positions")
    x = L.Embedding(VOCAB, D, mask_zero=mask_zero, name="tok_embed")(tokens)
    x = L.Add(name="add_pos")([x, L.Embedding(SEQ, D, name="pos_embed")(positions)])
    for i in range(2):
        x = _block(L, x, f"dec{i}", causal=True)
    x = L.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    logits = L.Dense(VOCAB, name="lm_head")(x)
    b = 3
    ids = rng.integers(1, VOCAB, size=(b, SEQ))
    if mask_zero:
        ids[0, 11:] = 0
        ids[1, 5:] = 0
    pos = np.tile(np.arange(SEQ), (b, 1))
    return keras.Model([tokens, positions], logits), [ids.astype("int32"), pos.astype("int32")]


def gpt(keras, rng):
    return _gpt(keras, rng, mask_zero=False)


def gpt_padded(keras, rng):
    return _gpt(keras, rng, mask_zero=True)


def bert_block(keras, rng):
    L = keras.layers
    x = keras.Input((SEQ, D), name="hidden")
    mask = keras.Input((SEQ, SEQ), dtype="bool", name="attention_mask")
    a = L.MultiHeadAttention(HEADS, D // HEADS, name="mha")(x, x, attention_mask=mask)
    h = L.LayerNormalization(epsilon=1e-12, name="ln1")(L.Add(name="res1")([x, a]))
    f = L.Dense(MLP, name="mlp_in")(h)
    if hasattr(keras, "ops"):  # Keras 3: no erf operation klayers knows; its exact gelu
        f = 2.0 * (0.5 * keras.ops.gelu(f, approximate=False))
    else:
        import tensorflow as tf

        f = 0.5 * f * (1.0 + tf.math.erf(f / float(np.sqrt(2.0))))
    f = L.Dense(D, name="mlp_out")(f)
    y = L.LayerNormalization(epsilon=1e-12, name="ln2")(L.Add(name="res2")([h, f]))
    b = 3
    keep = rng.random((b, SEQ, SEQ)) < 0.8
    keep[:, :, 0] = True
    return keras.Model([x, mask], y, name="bert_block"), [rng.standard_normal((b, SEQ, D)).astype("float32"), keep]


def masked_merges(keras, rng):
    L = keras.layers
    a = keras.Input((8,), dtype="int32", name="ids_a")
    b = keras.Input((8,), dtype="int32", name="ids_b")
    s = keras.Input((4, D), name="memory")
    ea = L.Embedding(VOCAB, D, mask_zero=True, name="embed_a")(a)
    eb = L.Embedding(VOCAB, D, mask_zero=True, name="embed_b")(b)
    summed = L.Add(name="sum")([ea, eb])
    wide = L.Concatenate(axis=-1, name="cat_features")([summed, L.Dense(8, name="side")(ea)])
    wide = L.Dense(D, name="narrow")(wide)
    y1 = L.MultiHeadAttention(HEADS, 8, name="mha_sum")(summed, summed)
    y2 = L.MultiHeadAttention(HEADS, 8, name="mha_wide")(wide, wide)
    outs = [y1, y2]
    if hasattr(keras, "ops"):
        longer = L.Concatenate(axis=1, name="cat_time")([summed, s])
        outs.append(L.MultiHeadAttention(HEADS, 8, name="mha_time")(longer, longer))
    ids_a = rng.integers(1, VOCAB, size=(3, 8))
    ids_b = rng.integers(1, VOCAB, size=(3, 8))
    ids_a[0, 5:] = 0
    ids_b[0, 3:] = 0
    ids_a[1, 2:] = 0
    ids_b[2, 6:] = 0
    ids_a[2, 4:] = 0
    mem = rng.standard_normal((3, 4, D)).astype("float32")
    inputs = [a, b, s] if len(outs) == 3 else [a, b]
    xs = [ids_a.astype("int32"), ids_b.astype("int32"), mem][: len(inputs)]
    return keras.Model(inputs, outs, name="masked_merges"), xs


CASES = [("vit", vit), ("gpt", gpt), ("gpt_padded", gpt_padded), ("bert_block", bert_block),
         ("masked_merges", masked_merges)]


def _randomize(model, rng):
    values = []
    for w in model.weights:
        shape = tuple(int(d) for d in w.shape)
        name = w.name.split("/")[-1]
        if len(shape) >= 2 and "embeddings" not in name:
            fan_in = int(np.prod(shape)) // shape[-1]
            values.append((rng.standard_normal(shape) / np.sqrt(fan_in)).astype("float32"))
        elif "embeddings" in name:
            values.append(rng.standard_normal(shape).astype("float32"))
        elif "gamma" in name:
            values.append((1.0 + 0.2 * rng.standard_normal(shape)).astype("float32"))
        else:
            values.append((0.2 * rng.standard_normal(shape)).astype("float32"))
    model.set_weights(values)


def _record(rec, keras, keras3):
    for name, build in CASES:
        keras.backend.clear_session()
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        model, xs = build(keras, rng)
        _randomize(model, rng)
        _save_case(rec, name, model, xs, keras3=keras3)


def record(rec):
    import tf_keras as keras

    _record(rec, keras, keras3=False)


def record_keras3(rec):
    import keras

    _record(rec, keras, keras3=True)
