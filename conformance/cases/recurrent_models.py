"""Whole recurrent models recorded from tf-keras 2.21 (and Keras 3.15 for a subset whose configs
differ): masks from Masking and Embedding(mask_zero=True) through LSTM / GRU / SimpleRNN /
Bidirectional, TimeDistributed over Conv2D, Dense, a nested functional model and a nested
Sequential, a stateful Sequential across predict calls and reset_states, and RNNs over a
user-written Python cell and over StackedRNNCells.

A case: the model's ``to_json()``, its weights (randomized, biases included: ``w{i}``), a list of
``calls`` (``x{i}_{k}`` inputs, ``y{i}_{k}`` Keras's predictions, ``reset_before`` where
``reset_states()`` ran first, ``batch_size`` given to predict), and for the mask cases the masks
Keras computes: ``mask_{j}`` per layer ``j`` of ``mask_layers`` (from
``Model(model.inputs, layer.output).compute_mask(x0, None)``), and ``layer_output_masks``, whether
the symbolic model's tensor has a ``_keras_mask`` and its shape (the node API's ``output_mask``).

The padded batches hold, in order: a full sample, pre-, mid- and post-sequence padding and a fully
padded sample, so every mask rule meets every padding position in one call.

``MinimalCell`` is a user-written cell; conformance/checks_models.py defines the same
cell for klayers (the maths is ours, the outputs come from Keras).
"""

from __future__ import annotations

import json
import zlib

import numpy as np

SEED = 8642
T, F, B = 6, 3, 5
VOCAB = 11


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _keep(t=T):
    """(B, t) boolean keep-mask: full, pre-, mid-, post-padded, fully padded."""
    m = np.ones((B, t), bool)
    m[1, :2] = False
    m[2, 2:4] = False
    m[3, t - 2:] = False
    m[4, :] = False
    return m


def _padded_floats(rng, t=T, f=F):
    x = (rng.standard_normal((B, t, f)) * 1.5).astype("float32")
    x[~_keep(t)] = 0.0  # Masking's mask_value
    return x


def _padded_ids(rng, t=T):
    ids = rng.integers(1, VOCAB, size=(B, t)).astype("int32")
    ids[~_keep(t)] = 0
    return ids


def _shape(s):
    if s is None:
        return None
    if hasattr(s, "as_list"):
        return s.as_list()
    return list(s)


def _np(v):
    if isinstance(v, (list, tuple)):
        return [o for item in v for o in _np(item)]
    return [None if v is None else np.asarray(v)]


def _reset(model):
    if hasattr(model, "reset_states"):
        model.reset_states()
    else:  # Keras 3 models have none: each stateful layer resets its own
        for layer in model.layers:
            if hasattr(layer, "reset_states"):
                layer.reset_states()


def _model_weights(model):
    """The weights a model file holds (Keras 3 also lists a stateful RNN's state variables)."""
    return [w for w in model.weights if not getattr(w, "path", "").split("/")[-1].startswith("state")]


def _set_weights(model, rng):
    weights = []
    for w in _model_weights(model):
        value = (rng.standard_normal(tuple(w.shape)) * 0.5).astype("float32")
        w.assign(value)
        weights.append(value)
    return weights


def _mask_info(keras, model, x0):
    """Per layer: Keras's computed output mask values (on x0) and the symbolic mask's shape."""
    import tensorflow as tf

    layers, arrays, symbolic = [], {}, {}
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        outs = layer.output if isinstance(layer.output, list) else [layer.output]
        symbolic[layer.name] = [_shape(getattr(o, "_keras_mask", None).shape)
                                if getattr(o, "_keras_mask", None) is not None else None for o in outs]
        sub = keras.Model(model.inputs, layer.output)
        feed = tf.constant(x0) if len(model.inputs) == 1 else [tf.constant(v) for v in x0]
        masks = _np(sub.compute_mask(feed, None))
        j = len(layers)
        layers.append({"name": layer.name, "n_outputs": len(outs), "has_mask": [m is not None for m in masks]})
        for k, m in enumerate(masks):
            if m is not None:
                arrays[f"mask_{j}_{k}"] = m
    return layers, arrays, symbolic


def _record(rec, keras, name, model, calls, masks=True, custom=None):
    """``calls``: list of dicts ``{"x": [arrays], "reset_before": bool, "batch_size": int}``.
    Nested predictions (a stacked cell's states) are stored flat, ``structure`` their nesting."""
    import tensorflow as tf

    rng = _rng(name)
    weights = _set_weights(model, rng)
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    meta_calls = []
    for i, call in enumerate(calls):
        if call.get("reset_before"):
            _reset(model)
        xs = call["x"]
        feed = xs if len(xs) > 1 else xs[0]
        out = model.predict(feed, batch_size=call.get("batch_size", 32), verbose=0)
        outs = tf.nest.flatten(out)
        for k, x in enumerate(xs):
            arrays[f"x{i}_{k}"] = x
        for k, y in enumerate(outs):
            arrays[f"y{i}_{k}"] = y
        meta_calls.append({"reset_before": bool(call.get("reset_before")), "batch_size": call.get("batch_size", 32),
                           "n_inputs": len(xs), "n_outputs": len(outs), "outputs_are_list": isinstance(out, list),
                           "structure": tf.nest.pack_sequence_as(out, list(range(len(outs))))})
    meta = dict(
        json=json.loads(model.to_json()),
        n_weights=len(weights),
        weight_names=[w.name for w in _model_weights(model)],
        weight_shapes=[list(w.shape) for w in _model_weights(model)],
        model_output_shape=_shape(model.output_shape) if not isinstance(model.output_shape, list)
        else [_shape(s) for s in model.output_shape],
        calls=meta_calls,
        custom=custom,
    )
    if masks:
        x0 = calls[0]["x"]
        layers, mask_arrays, symbolic = _mask_info(keras, model, x0[0] if len(x0) == 1 else x0)
        arrays.update(mask_arrays)
        meta["mask_layers"] = layers
        meta["layer_output_masks"] = symbolic
    rec.case(name, arrays=arrays, **meta)


# -- 1. TimeDistributed --------------------------------------------------------------------------
def _td_cases(rec, keras):
    L = keras.layers
    rng = _rng("td_inputs")

    keras.backend.clear_session()
    m = keras.Sequential([
        L.TimeDistributed(L.Conv2D(4, 3, padding="same", activation="relu"), input_shape=(4, 6, 5, 2)),
        L.TimeDistributed(L.Conv2D(3, (2, 3), strides=2, use_bias=True)),
        L.TimeDistributed(L.Flatten()),
        L.LSTM(3),
    ])
    xs = [(rng.standard_normal((3, 4, 6, 5, 2))).astype("float32")]
    _record(rec, keras, "td_conv2d_channels_last_lstm", m, [{"x": xs}], masks=False)

    keras.backend.clear_session()
    m = keras.Sequential([
        L.TimeDistributed(L.Conv2D(3, 3, data_format="channels_first", dilation_rate=1), input_shape=(3, 2, 7, 6)),
        L.TimeDistributed(L.Conv2D(2, 2, strides=(2, 1), padding="same", data_format="channels_first",
                                   activation="tanh")),
    ])
    xs = [(rng.standard_normal((2, 3, 2, 7, 6))).astype("float32")]
    _record(rec, keras, "td_conv2d_channels_first", m, [{"x": xs}], masks=False)

    keras.backend.clear_session()
    i = keras.Input((T, F))
    h = L.Masking()(i)
    h = L.TimeDistributed(L.Dense(4, activation="tanh"), name="td_dense")(h)
    y = L.LSTM(3, return_sequences=True)(h)
    m = keras.Model(i, [h, y])
    _record(rec, keras, "td_dense_masking_lstm", m, [{"x": [_padded_floats(rng)]}])

    keras.backend.clear_session()
    m = keras.Sequential([L.Masking(input_shape=(T, F)), L.TimeDistributed(L.Dense(2))])
    _record(rec, keras, "td_dense_masking_out", m, [{"x": [_padded_floats(rng)]}])

    keras.backend.clear_session()
    ii = keras.Input((5,))
    inner = keras.Model(ii, L.Dense(3, activation="sigmoid")(L.Dense(4, activation="relu")(ii)), name="inner_fn")
    i = keras.Input((T, 5))
    h = L.TimeDistributed(inner, name="td_inner_fn")(i)
    m = keras.Model(i, L.GRU(2)(h))
    _record(rec, keras, "td_nested_functional", m, [{"x": [rng.standard_normal((3, T, 5)).astype("float32")]}],
            masks=False)

    keras.backend.clear_session()
    inner = keras.Sequential([L.Dense(4, activation="elu", input_shape=(F,)), L.Dense(2)], name="inner_seq")
    m = keras.Sequential([L.Masking(input_shape=(T, F)), L.TimeDistributed(inner), L.SimpleRNN(3)])
    _record(rec, keras, "td_nested_sequential_masked", m, [{"x": [_padded_floats(rng)]}])

    # a hierarchical text model: words -> sentence vectors -> document; TimeDistributed reduces the
    # (sentence, word) mask of the embedding to a sentence mask (any word) for the outer GRU
    for name, sentence in (("td_hierarchical_text", lambda: L.LSTM(4)),
                           ("td_hierarchical_bidi", lambda: L.Bidirectional(L.GRU(2), merge_mode="concat"))):
        keras.backend.clear_session()
        rng = _rng(name + "_x")
        i = keras.Input((4, T), dtype="int32")
        h = L.TimeDistributed(L.Embedding(VOCAB, 3, mask_zero=True), name="td_embedding")(i)
        h = L.TimeDistributed(sentence(), name="td_sentence")(h)
        y = L.Dense(2)(L.GRU(3, name="document")(h))
        ids = np.stack([_padded_ids(rng)[[0, 1, 2, 4]], _padded_ids(rng)[[4, 4, 4, 4]],
                        _padded_ids(rng)[[3, 0, 4, 2]]])  # the second document is empty
        _record(rec, keras, name, keras.Model(i, y), [{"x": [ids]}])

    keras.backend.clear_session()
    ii = keras.Input((6, 6, 1))
    conv = L.Conv2D(2, 3, activation="relu")(ii)
    inner = keras.Model(ii, L.GlobalAveragePooling2D()(conv), name="frame_encoder")
    m = keras.Sequential([L.TimeDistributed(inner, input_shape=(4, 6, 6, 1)), L.LSTM(2, return_sequences=True)])
    _record(rec, keras, "td_nested_conv_model", m, [{"x": [rng.standard_normal((2, 4, 6, 6, 1)).astype("float32")]}],
            masks=False)


# -- 2. masked models ------------------------------------------------------------------------------
def _rnn(L, kind, rs, u=4):
    if kind == "lstm":
        return L.LSTM(u, return_sequences=rs)
    if kind == "gru":
        return L.GRU(u, return_sequences=rs)
    if kind == "gru_v1":
        return L.GRU(u, return_sequences=rs, reset_after=False)
    if kind == "simplernn":
        return L.SimpleRNN(u, return_sequences=rs)
    mode = kind.split("_")[1]
    return L.Bidirectional(L.LSTM(u, return_sequences=rs), merge_mode=mode)


def _mask_cases(rec, keras):
    L = keras.layers
    kinds = ["lstm", "gru", "gru_v1", "simplernn", "bidi_concat", "bidi_sum"]
    for source in ("masking", "embedding"):
        for kind in kinds:
            for rs in (True, False):
                name = f"{source}_{kind}_{'seq' if rs else 'last'}"
                rng = _rng(name + "_x")
                keras.backend.clear_session()
                if source == "masking":
                    i = keras.Input((T, F))
                    h = L.Masking(mask_value=0.0)(i)
                    x = _padded_floats(rng)
                else:
                    i = keras.Input((T,), dtype="int32")
                    h = L.Embedding(VOCAB, F, mask_zero=True)(i)
                    x = _padded_ids(rng)
                y = _rnn(L, kind, rs)(h)
                if not rs:
                    y = L.Dense(2, activation="tanh")(y)
                _record(rec, keras, name, keras.Model(i, y), [{"x": [x]}])

    # stacked recurrent layers, the mask passing through a sequence output
    keras.backend.clear_session()
    rng = _rng("stacked_x")
    m = keras.Sequential([
        L.Embedding(VOCAB, 4, mask_zero=True, input_length=T),
        L.LSTM(5, return_sequences=True),
        L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
        L.SimpleRNN(2, go_backwards=True),
    ])
    _record(rec, keras, "embedding_stacked_rnns", m, [{"x": [_padded_ids(rng)]}])

    # the text model of the issue, GlobalAveragePooling1D averaging only unmasked steps
    for empty in (True, False):
        name = "text_bilstm_gap" + ("_empty_sample" if empty else "")
        keras.backend.clear_session()
        rng = _rng(name + "_x")
        i = keras.Input((T,), dtype="int32")
        h = L.Embedding(VOCAB, 4, mask_zero=True)(i)
        h = L.Bidirectional(L.LSTM(3, return_sequences=True))(h)
        h = L.GlobalAveragePooling1D()(h)
        y = L.Dense(2, activation="softmax")(h)
        x = _padded_ids(rng)
        if not empty:
            x = x[:4]  # without the fully padded sample (Keras divides 0 by 0 there: NaN)
        _record(rec, keras, name, keras.Model(i, y), [{"x": [x]}])

    # return_state through a mask, states feeding a second RNN as initial states
    keras.backend.clear_session()
    rng = _rng("encoder_decoder_x")
    i = keras.Input((T,), dtype="int32")
    e = L.Embedding(VOCAB, 3, mask_zero=True)(i)
    _, h, c = L.LSTM(4, return_state=True)(e)
    j = keras.Input((T, F))
    d = L.Masking()(j)
    out = L.LSTM(4, return_sequences=True)(d, initial_state=[h, c])
    m = keras.Model([i, j], L.TimeDistributed(L.Dense(2))(out))
    _record(rec, keras, "encoder_decoder_masked_states", m, [{"x": [_padded_ids(rng), _padded_floats(rng)]}])


# -- 3. stateful ---------------------------------------------------------------------------------
def _stateful_cases(rec, keras):
    L = keras.layers
    for name, make in (
        ("stateful_lstm_sequential", lambda: [L.LSTM(4, stateful=True, return_sequences=True,
                                                     batch_input_shape=(2, 4, F)), L.Dense(2)]),
        ("stateful_gru_last", lambda: [L.GRU(3, stateful=True, batch_input_shape=(2, 4, F))]),
        ("stateful_two_lstms", lambda: [L.LSTM(4, stateful=True, return_sequences=True, batch_input_shape=(2, 4, F)),
                                        L.LSTM(3, stateful=True)]),
    ):
        keras.backend.clear_session()
        m = keras.Sequential(make())
        rng = _rng(name + "_x")
        xs = [(rng.standard_normal((2, 4, F)) * 1.5).astype("float32") for _ in range(3)]
        calls = [{"x": [xs[0]], "batch_size": 2}, {"x": [xs[1]], "batch_size": 2},
                 {"x": [xs[2]], "batch_size": 2, "reset_before": True}]
        _record(rec, keras, name, m, calls, masks=False)
    # masked steps carry the kept states from one call into the next (a fully padded sample keeps them whole)
    for name, make in (
        ("stateful_masked_lstm", lambda: [L.Masking(batch_input_shape=(2, T, F)),
                                          L.LSTM(4, stateful=True, return_sequences=True)]),
        ("stateful_masked_bidi_gru", lambda: [L.Masking(batch_input_shape=(2, T, F)),
                                              L.Bidirectional(L.GRU(3, stateful=True), merge_mode="sum")]),
        ("stateful_bidi_lstm_seq", lambda: [L.Bidirectional(L.LSTM(3, stateful=True, return_sequences=True),
                                                            batch_input_shape=(2, T, F)), L.Dense(2)]),
    ):
        keras.backend.clear_session()
        m = keras.Sequential(make())
        rng = _rng(name + "_x")
        x = _padded_floats(rng)
        calls = [{"x": [x[[1, 3]]], "batch_size": 2}, {"x": [x[[2, 4]]], "batch_size": 2},
                 {"x": [x[[0, 4]]], "batch_size": 2}, {"x": [x[[3, 1]]], "batch_size": 2, "reset_before": True}]
        _record(rec, keras, name, m, calls, masks=False)
    # one predict over two batches: the state flows from the first batch into the second
    keras.backend.clear_session()
    m = keras.Sequential([L.LSTM(3, stateful=True, batch_input_shape=(2, 4, F))])
    rng = _rng("stateful_multi_batch_x")
    xs = [(rng.standard_normal((4, 4, F)) * 1.5).astype("float32") for _ in range(2)]
    _record(rec, keras, "stateful_predict_two_batches", m,
            [{"x": [xs[0]], "batch_size": 2}, {"x": [xs[1]], "batch_size": 2, "reset_before": True}], masks=False)


# -- 4. user-written and stacked cells -----------------------------------------------------------
def _minimal_cell_class(keras):
    import tensorflow as tf

    class MinimalCell(keras.layers.Layer):
        """h' = tanh(c') * sigmoid(z), c' = 0.5 c + tanh(z), z = x K + h R + b; states [h, c]."""

        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = [units, units]
            self.output_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform")
            self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(self.units, self.units),
                                                    initializer="orthogonal")
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
            self.built = True

        def call(self, inputs, states):
            h, c = states
            z = tf.matmul(inputs, self.kernel) + tf.matmul(h, self.recurrent_kernel) + self.bias
            c2 = 0.5 * c + tf.tanh(z)
            out = tf.tanh(c2) * tf.sigmoid(z)
            return out, [out, c2]

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units})
            return config

    return MinimalCell


def _cell_cases(rec, keras):
    L = keras.layers
    MinimalCell = _minimal_cell_class(keras)
    custom = {"MinimalCell": "MinimalCell"}
    specs = [
        ("custom_cell_seq", lambda: L.RNN(MinimalCell(4), return_sequences=True), "plain"),
        ("custom_cell_state_masked", lambda: L.RNN(MinimalCell(3), return_state=True), "masking"),
        ("custom_cell_backwards_masked", lambda: L.RNN(MinimalCell(3), go_backwards=True, return_sequences=True),
         "masking"),
        ("custom_cell_zero_output", lambda: L.RNN(MinimalCell(3), return_sequences=True, zero_output_for_mask=True),
         "embedding"),
        ("custom_cell_stacked_with_lstm", lambda: L.RNN([MinimalCell(3), L.LSTMCell(2)], return_sequences=True),
         "masking"),
        ("custom_cell_bidirectional", lambda: L.Bidirectional(L.RNN(MinimalCell(2), return_sequences=True)),
         "embedding"),
        ("stacked_lstm_gru_cells", lambda: L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3)]),
                                                 return_sequences=True), "masking"),
        ("stacked_lstm_gru_cells_state", lambda: L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2, reset_after=False)]),
                                                       return_state=True), "embedding"),
        ("stacked_lstm_gru_cells_back", lambda: L.RNN([L.LSTMCell(3), L.GRUCell(4)], go_backwards=True), "plain"),
    ]
    for name, make, source in specs:
        keras.backend.clear_session()
        rng = _rng(name + "_x")
        if source == "embedding":
            i = keras.Input((T,), dtype="int32")
            h = L.Embedding(VOCAB, F, mask_zero=True)(i)
            x = _padded_ids(rng)
        else:
            i = keras.Input((T, F))
            h = L.Masking()(i) if source == "masking" else i
            x = _padded_floats(rng) if source == "masking" else (rng.standard_normal((B, T, F)) * 1.5).astype("float32")
        y = make()(h)
        uses_custom = name.startswith("custom")
        _record(rec, keras, name, keras.Model(i, y), [{"x": [x]}], masks=source != "plain",
                custom=custom if uses_custom else None)


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    _td_cases(rec, keras)
    _mask_cases(rec, keras)
    _stateful_cases(rec, keras)
    _cell_cases(rec, keras)


def record_keras3(rec):
    """The same kinds of models written by Keras 3 (its config dialect; outputs only)."""
    import keras

    keras.utils.set_random_seed(SEED)
    L = keras.layers

    def masked(name, source, make, tail=None):
        keras.backend.clear_session()
        rng = _rng(name + "_x")
        if source == "embedding":
            i = keras.Input((T,), dtype="int32")
            h = L.Embedding(VOCAB, F, mask_zero=True)(i)
            x = _padded_ids(rng)
        else:
            i = keras.Input((T, F))
            h = L.Masking()(i)
            x = _padded_floats(rng)
        y = make()(h)
        if tail is not None:
            y = tail()(y)
        _record(rec, keras, name, keras.Model(i, y), [{"x": [x]}], masks=False)

    masked("masking_lstm_seq", "masking", lambda: L.LSTM(4, return_sequences=True))
    masked("masking_gru_last", "masking", lambda: L.GRU(4), lambda: L.Dense(2, activation="tanh"))
    masked("embedding_gru_v1_seq", "embedding", lambda: L.GRU(3, reset_after=False, return_sequences=True))
    masked("embedding_simplernn_last", "embedding", lambda: L.SimpleRNN(4))
    masked("masking_bidi_sum_seq", "masking", lambda: L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum"))
    masked("embedding_bidi_concat_last", "embedding", lambda: L.Bidirectional(L.LSTM(3)), lambda: L.Dense(2))
    masked("stacked_lstm_gru_cells", "masking",
           lambda: L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3)]), return_sequences=True))

    keras.backend.clear_session()
    rng = _rng("text_x")
    i = keras.Input((T,), dtype="int32")
    h = L.Embedding(VOCAB, 4, mask_zero=True)(i)
    h = L.Bidirectional(L.LSTM(3, return_sequences=True))(h)
    y = L.Dense(2, activation="softmax")(L.GlobalAveragePooling1D()(h))
    _record(rec, keras, "text_bilstm_gap", keras.Model(i, y), [{"x": [_padded_ids(rng)[:4]]}], masks=False)

    keras.backend.clear_session()
    rng = _rng("td_x")
    m = keras.Sequential([
        keras.Input((4, 6, 5, 2)),
        L.TimeDistributed(L.Conv2D(4, 3, padding="same", activation="relu")),
        L.TimeDistributed(L.Flatten()),
        L.LSTM(3),
    ])
    _record(rec, keras, "td_conv2d_channels_last_lstm", m, [{"x": [rng.standard_normal((3, 4, 6, 5, 2)).astype("float32")]}],
            masks=False)

    keras.backend.clear_session()
    inner = keras.Sequential([keras.Input((F,)), L.Dense(4, activation="elu"), L.Dense(2)], name="inner_seq")
    m = keras.Sequential([keras.Input((T, F)), L.Masking(), L.TimeDistributed(inner), L.SimpleRNN(3)])
    _record(rec, keras, "td_nested_sequential_masked", m, [{"x": [_padded_floats(rng)]}], masks=False)

    # the user-written cell, in keras.ops
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="conformance")
    class MinimalCell(L.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = [units, units]
            self.output_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units))
            self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(self.units, self.units))
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

        def call(self, inputs, states):
            h, c = states
            z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel) + self.bias
            c2 = 0.5 * c + ops.tanh(z)
            out = ops.tanh(c2) * ops.sigmoid(z)
            return out, [out, c2]

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units})
            return config

    masked("custom_cell_backwards_masked", "embedding",
           lambda: L.RNN(MinimalCell(3), go_backwards=True, return_sequences=True))
    rec.annotate("custom_cell_backwards_masked", custom={"conformance>MinimalCell": "MinimalCell"})

    keras.backend.clear_session()
    rng = _rng("td_hierarchical_text_x")
    i = keras.Input((4, T), dtype="int32")
    h = L.TimeDistributed(L.Embedding(VOCAB, 3, mask_zero=True), name="td_embedding")(i)
    h = L.TimeDistributed(L.LSTM(4), name="td_sentence")(h)
    y = L.Dense(2)(L.GRU(3, name="document")(h))
    ids = np.stack([_padded_ids(rng)[[0, 1, 2, 4]], _padded_ids(rng)[[4, 4, 4, 4]], _padded_ids(rng)[[3, 0, 4, 2]]])
    _record(rec, keras, "td_hierarchical_text", keras.Model(i, y), [{"x": [ids]}], masks=False)

    keras.backend.clear_session()
    m = keras.Sequential([keras.Input(batch_shape=(2, 4, F)), L.LSTM(4, stateful=True, return_sequences=True),
                          L.Dense(2)])
    rng = _rng("stateful_x")
    xs = [(rng.standard_normal((2, 4, F)) * 1.5).astype("float32") for _ in range(3)]
    _record(rec, keras, "stateful_lstm_sequential", m,
            [{"x": [xs[0]], "batch_size": 2}, {"x": [xs[1]], "batch_size": 2},
             {"x": [xs[2]], "batch_size": 2, "reset_before": True}], masks=False)
