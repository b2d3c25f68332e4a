"""Bidirectional and TimeDistributed recorded from tf-keras 2.21 and Keras 3.15 (same case format
as conformance/cases/recurrent.py: a list of calls with masks, initial states, stateful resets)."""

from __future__ import annotations

from recurrent import SEED, F, _run_calls, _run_calls3


def _cases(keras):
    L = keras.layers
    u = 3
    return [
        ("bidi_lstm_concat_seq", lambda: L.Bidirectional(L.LSTM(u, return_sequences=True)), {}),
        ("bidi_gru_sum", lambda: L.Bidirectional(L.GRU(u), merge_mode="sum"), {}),
        ("bidi_simple_mul_seq", lambda: L.Bidirectional(L.SimpleRNN(u, return_sequences=True), merge_mode="mul"), {}),
        ("bidi_lstm_ave", lambda: L.Bidirectional(L.LSTM(u), merge_mode="ave"), {"mask": "post"}),
        ("bidi_none_seq", lambda: L.Bidirectional(L.GRU(u, return_sequences=True), merge_mode=None), {}),
        ("bidi_state", lambda: L.Bidirectional(L.LSTM(u, return_state=True)), {}),
        ("bidi_none_state_seq", lambda: L.Bidirectional(L.GRU(u, return_state=True, return_sequences=True),
                                                        merge_mode=None), {"mask": "mid"}),
        ("bidi_mask_seq", lambda: L.Bidirectional(L.LSTM(u, return_sequences=True)), {"mask": "post"}),
        ("bidi_mask_pre", lambda: L.Bidirectional(L.SimpleRNN(u)), {"mask": "pre"}),
        ("bidi_init_state", lambda: L.Bidirectional(L.LSTM(u, return_state=True, return_sequences=True)),
         {"initial_state": [(u,), (u,), (u,), (u,)], "mask": "random"}),
        ("bidi_backward_layer", lambda: L.Bidirectional(L.LSTM(u, return_sequences=True),
                                                        backward_layer=L.GRU(2, go_backwards=True,
                                                                             return_sequences=True)), {}),
        ("bidi_stateful", lambda: L.Bidirectional(L.GRU(u, stateful=True)), {"stateful": True}),
        ("bidi_len1_b1", lambda: L.Bidirectional(L.LSTM(u), merge_mode="sum"), {"timesteps": 1, "batches": (1,)}),
        ("bidi_rnn_cell", lambda: L.Bidirectional(L.RNN(L.GRUCell(u), return_sequences=True), merge_mode="ave"),
         {"mask": "random"}),
        ("td_dense", lambda: L.TimeDistributed(L.Dense(4)), {}),
        ("td_dense_relu_mask", lambda: L.TimeDistributed(L.Dense(2, activation="relu")), {"mask": "mid"}),
        ("td_dense_b1", lambda: L.TimeDistributed(L.Dense(5, use_bias=False)), {"batches": (1,), "timesteps": 1}),
        ("td_sequential", lambda: L.TimeDistributed(keras.Sequential([L.Dense(4, activation="tanh"), L.Dense(2)])),
         {}),
    ]


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for name, make, opts in _cases(keras):
        opts = dict(opts)
        layer = make()
        _run_calls(rec, keras, name, layer, type(layer).__name__, (F,), batches=opts.pop("batches", (1, 4)),
                   mask=opts.pop("mask", None), initial_state=opts.pop("initial_state", None),
                   stateful=opts.pop("stateful", False), timesteps=opts.pop("timesteps", 5))


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    L = keras.layers
    specs = [
        ("bidi_lstm_concat_seq", L.Bidirectional(L.LSTM(3, return_sequences=True)), {"mask": "post"}),
        ("bidi_gru_none_state", L.Bidirectional(L.GRU(3, return_state=True), merge_mode=None), {}),
        ("bidi_backward_layer", L.Bidirectional(L.LSTM(3), backward_layer=L.GRU(2, go_backwards=True),
                                                merge_mode="concat"), {}),
        ("td_dense", L.TimeDistributed(L.Dense(4)), {}),
        ("td_dense_mask", L.TimeDistributed(L.Dense(2, activation="hard_sigmoid")), {"mask": "mid"}),
    ]
    for name, layer, opts in specs:
        _run_calls3(rec, keras, name, layer, type(layer).__name__, (F,), **opts)
