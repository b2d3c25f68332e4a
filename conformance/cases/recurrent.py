"""Recurrent layers and cells recorded from tf-keras 2.21 (and Keras 3.15 where configs differ).

A case: the layer's class_name and Keras config, ``layers.serialize`` output, its weights
(randomized, biases included), and a list of calls (``calls``): each call's inputs (``x{i}``),
optional mask (``m{i}``) and initial states (``s{i}_{k}``), and Keras's outputs (``y{i}_{k}``).
A stateful case calls twice, then ``reset_states()`` (``reset_before`` marks it), then again.
CuDNN layers cannot run on a CPU: their outputs come from the equivalent LSTM / GRU(reset_after)
loaded with tf-keras's own weight conversion (``hdf5_format._convert_rnn_weights``).
"""

from __future__ import annotations

import zlib

import numpy as np

SEED = 4321
T, F = 5, 3


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _mask(kind, b, t, rng):
    m = np.ones((b, t), bool)
    for i in range(b):
        if kind == "post":
            m[i, t - 1 - (i % 3):] = False
        elif kind == "pre":
            m[i, : (i % 3) + 1] = False
        elif kind == "mid":
            m[i, 1 + (i % 2): 3 + (i % 2)] = False
        elif kind == "random":
            m[i] = rng.random(t) > 0.4
    if kind == "post" and b > 1:
        m[1, :] = False  # a fully masked sample
    return m


def _to_np(v):
    if isinstance(v, (list, tuple)):
        return [o for item in v for o in _to_np(item)]
    return [np.asarray(v)]


def _states(spec, b, rng, dtype):
    """Random initial states for a (possibly nested) list of state shapes; also returned flat."""
    if isinstance(spec, list):
        nested, flat = [], []
        for s in spec:
            n, f = _states(s, b, rng, dtype)
            nested.append(n)
            flat += f
        return nested, flat
    value = (rng.standard_normal((b,) + tuple(spec)) * 0.7).astype(dtype)
    return value, [value]


def _run_calls(rec, keras, name, layer, class_name, input_shape, batches=(1, 4), mask=None, initial_state=None,
               stateful=False, timesteps=T, convert=None, dtype="float32", extra_meta=None):
    """``initial_state``: number of states to pass as arrays (0/None: none)."""
    rng = _rng(name)
    shape = (timesteps,) + tuple(input_shape)
    b0 = batches[0]
    layer(np.zeros((b0,) + shape, dtype))  # build
    weights = [(rng.standard_normal(w.shape) * 0.5).astype(dtype) for w in layer.weights]
    layer.set_weights(weights)
    if stateful:
        layer.reset_states()
    runner = layer
    if convert is not None:
        runner = convert(weights)
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    calls = []
    plan = [(b, False) for b in batches] if not stateful else [(b0, False), (b0, False), (b0, True)]
    for i, (b, reset) in enumerate(plan):
        x = (rng.standard_normal((b,) + shape) * 1.5).astype(dtype)
        kwargs = {}
        call = {"reset_before": reset}
        arrays[f"x{i}"] = x
        if reset:
            runner.reset_states()
        if mask is not None:
            m = _mask(mask, b, timesteps, rng)
            kwargs["mask"] = m
            arrays[f"m{i}"] = m
        if initial_state:
            nested, states = _states(list(initial_state), b, rng, dtype)
            import tensorflow as tf

            kwargs["initial_state"] = tf.nest.map_structure(tf.constant, nested)
            for k, s in enumerate(states):
                arrays[f"s{i}_{k}"] = s
            call["n_states"] = len(states)
        outs = _to_np(runner(x, **kwargs))
        for k, o in enumerate(outs):
            arrays[f"y{i}_{k}"] = o
        call["n_outputs"] = len(outs)
        calls.append(call)
    out_shape = layer.compute_output_shape((None,) + shape)
    if isinstance(out_shape, list):
        out_shape = [list(s.as_list() if hasattr(s, "as_list") else s) for s in out_shape]
    else:
        out_shape = list(out_shape.as_list() if hasattr(out_shape, "as_list") else out_shape)
    meta = dict(
        class_name=class_name,
        config=layer.get_config(),
        serialized=keras.layers.serialize(getattr(layer, "_layer", layer)),
        n_weights=len(layer.weights),
        weight_names=[w.name for w in layer.weights] if hasattr(layer.weights[0], "name") else None,
        output_shape=out_shape,
        calls=calls,
        stateful=stateful,
        dtype=dtype,
    )
    meta.update(extra_meta or {})
    rec.case(name, arrays=arrays, **meta)


def _cases(keras):
    L = keras.layers
    u = 4
    two = [(u,), (u,)]
    one = [(u,)]
    cases = []
    for cls, states in (("SimpleRNN", one), ("GRU", one), ("LSTM", two)):
        low = cls.lower()
        cases += [
            (f"{low}_basic", cls, {"units": u}, {}),
            (f"{low}_seq", cls, {"units": u, "return_sequences": True}, {}),
            (f"{low}_state", cls, {"units": u, "return_state": True, "return_sequences": True}, {}),
            (f"{low}_backwards_seq", cls, {"units": u, "go_backwards": True, "return_sequences": True}, {}),
            (f"{low}_mask_post", cls, {"units": u, "return_sequences": True}, {"mask": "post"}),
            (f"{low}_mask_pre_state", cls, {"units": u, "return_state": True}, {"mask": "pre"}),
            (f"{low}_mask_mid_back", cls, {"units": u, "go_backwards": True, "return_sequences": True}, {"mask": "mid"}),
            (f"{low}_mask_zero_output", cls, {"units": u, "return_sequences": True, "zero_output_for_mask": True}, {"mask": "random"}),
            (f"{low}_initial_state", cls, {"units": u, "return_state": True, "return_sequences": True},
             {"initial_state": states, "mask": "pre"}),
            (f"{low}_stateful", cls, {"units": u, "stateful": True, "return_sequences": True}, {"stateful": True}),
            (f"{low}_len1", cls, {"units": u, "return_state": True}, {"timesteps": 1}),
            (f"{low}_time_major", cls, {"units": u, "time_major": True, "return_sequences": True}, {}),
            (f"{low}_unroll_relu", cls, {"units": u, "unroll": True, "activation": "relu", "use_bias": False}, {}),
        ]
    cases += [
        ("simplernn_linear_reg", "SimpleRNN", {"units": 5, "activation": None, "kernel_regularizer": "l2",
                                               "recurrent_constraint": "max_norm", "dropout": 0.3,
                                               "recurrent_dropout": 0.2}, {}),
        ("gru_reset_before", "GRU", {"units": u, "reset_after": False, "return_sequences": True}, {"mask": "post"}),
        ("gru_reset_before_hard", "GRU", {"units": u, "reset_after": False, "recurrent_activation": "hard_sigmoid",
                                          "implementation": 1, "return_state": True}, {}),
        ("gru_hard_sigmoid", "GRU", {"units": u, "recurrent_activation": "hard_sigmoid", "go_backwards": True}, {}),
        ("gru_softsign", "GRU", {"units": u, "activation": "softsign", "return_sequences": True}, {"mask": "mid"}),
        ("gru_float64", "GRU", {"units": u, "dtype": "float64", "return_sequences": True}, {"dtype": "float64"}),
        ("lstm_no_forget_bias_impl1", "LSTM", {"units": u, "unit_forget_bias": False, "implementation": 1}, {}),
        ("lstm_hard_sigmoid_elu", "LSTM", {"units": u, "recurrent_activation": "hard_sigmoid", "activation": "elu",
                                           "return_sequences": True}, {"mask": "random"}),
        ("lstm_wide", "LSTM", {"units": 40, "return_sequences": True, "dropout": 0.5}, {}),
    ]
    # RNN with cells
    cells = [
        ("rnn_simple_cell", lambda: L.SimpleRNNCell(u), one, "SimpleRNNCell"),
        ("rnn_gru_cell", lambda: L.GRUCell(u, reset_after=False), one, "GRUCell"),
        ("rnn_lstm_cell", lambda: L.LSTMCell(u, unit_forget_bias=False), two, "LSTMCell"),
    ]
    for name, make, states, _cell_name in cells:
        cases += [
            (name, "RNN", {"cell": make, "return_sequences": True}, {}),
            (name + "_state_mask", "RNN", {"cell": make, "return_state": True}, {"mask": "post"}),
            (name + "_back_init", "RNN", {"cell": make, "go_backwards": True, "return_sequences": True},
             {"initial_state": states, "mask": "mid"}),
            (name + "_stateful", "RNN", {"cell": make, "stateful": True}, {"stateful": True}),
            (name + "_len1_b1", "RNN", {"cell": make, "return_state": True}, {"timesteps": 1, "batches": (1,)}),
            (name + "_zero_out", "RNN", {"cell": make, "return_sequences": True, "zero_output_for_mask": True},
             {"mask": "pre"}),
            (name + "_unroll_tm", "RNN", {"cell": make, "unroll": True, "time_major": True}, {}),
        ]
    stacked = lambda: [L.GRUCell(3), L.LSTMCell(u), L.SimpleRNNCell(2)]  # noqa: E731
    cases += [
        ("stacked_cells", "RNN", {"cell": stacked, "return_sequences": True}, {}),
        ("stacked_cells_state_mask", "RNN", {"cell": stacked, "return_state": True}, {"mask": "mid"}),
        ("stacked_cells_back_mask", "RNN", {"cell": stacked, "go_backwards": True, "return_sequences": True},
         {"mask": "post"}),
        ("stacked_cells_init", "RNN", {"cell": stacked, "return_state": True},
         {"initial_state": [(3,), [(u,), (u,)], (2,)]}),
        ("stacked_cells_stateful", "RNN", {"cell": stacked, "stateful": True}, {"stateful": True}),
        ("stacked_cells_zero", "RNN", {"cell": stacked, "return_sequences": True, "zero_output_for_mask": True},
         {"mask": "random"}),
        ("stacked_cells_len1", "RNN", {"cell": stacked}, {"timesteps": 1}),
        ("stacked_cells_b1", "RNN", {"cell": stacked, "return_sequences": True}, {"batches": (1,)}),
        ("stacked_cells_single", "RNN", {"cell": lambda: [L.LSTMCell(u)], "return_sequences": True}, {}),
    ]
    return cases


def _build(keras, class_name, kwargs):
    kwargs = dict(kwargs)
    if "cell" in kwargs:
        cell = kwargs["cell"]()
        if isinstance(cell, list):
            cell = keras.layers.StackedRNNCells(cell)
        kwargs["cell"] = cell
    return getattr(keras.layers, class_name)(**kwargs)


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for name, class_name, kwargs, opts in _cases(keras):
        opts = dict(opts)
        layer = _build(keras, class_name, kwargs)
        _run_calls(rec, keras, name, layer, class_name, (F,), batches=opts.pop("batches", (1, 4)),
                   mask=opts.pop("mask", None), initial_state=opts.pop("initial_state", None),
                   stateful=opts.pop("stateful", False), timesteps=opts.pop("timesteps", T),
                   dtype=opts.pop("dtype", "float32"))
    _cudnn_cases(rec, keras)


def _cudnn_cases(rec, keras):
    from tf_keras.api._v1.keras import layers as L1
    from tf_keras.src.saving.legacy.hdf5_format import _convert_rnn_weights

    u = 4
    specs = [
        ("cudnnlstm_basic", "CuDNNLSTM", {"units": u}, None),
        ("cudnnlstm_seq_state", "CuDNNLSTM", {"units": u, "return_sequences": True, "return_state": True}, None),
        ("cudnnlstm_back_init", "CuDNNLSTM", {"units": u, "go_backwards": True, "return_state": True}, [(u,), (u,)]),
        ("cudnnlstm_no_forget", "CuDNNLSTM", {"units": 6, "unit_forget_bias": False, "return_sequences": True}, None),
        ("cudnngru_basic", "CuDNNGRU", {"units": u}, None),
        ("cudnngru_seq_state", "CuDNNGRU", {"units": u, "return_sequences": True, "return_state": True}, None),
        ("cudnngru_back_init", "CuDNNGRU", {"units": u, "go_backwards": True, "return_sequences": True}, [(u,)]),
        ("cudnngru_wide", "CuDNNGRU", {"units": 7, "return_state": True}, None),
    ]
    for name, class_name, kwargs, init in specs:
        layer = getattr(L1, class_name)(**kwargs)
        layer.build((None, T, F))
        plain_kwargs = {k: v for k, v in kwargs.items() if k not in ("unit_forget_bias",)}

        def convert(weights, class_name=class_name, plain_kwargs=plain_kwargs):
            if class_name == "CuDNNLSTM":
                plain = keras.layers.LSTM(**plain_kwargs)
            else:
                plain = keras.layers.GRU(reset_after=True, recurrent_activation="sigmoid", **plain_kwargs)
            plain.build((None, T, F))
            plain.set_weights(_convert_rnn_weights(plain, weights))
            return plain

        _run_calls(rec, keras, name, _BuiltLayer(layer), class_name, (F,), initial_state=init, convert=convert)


class _BuiltLayer:
    """A CuDNN layer already built: the recorder may read its config and set its weights but
    never call it (tf-keras has no CPU kernel for it)."""

    def __init__(self, layer):
        self._layer = layer

    def __call__(self, x, **kwargs):
        return None

    def __getattr__(self, name):
        return getattr(self._layer, name)


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    L = keras.layers
    u = 4
    specs = [
        ("simplernn_seq_mask", L.SimpleRNN(u, return_sequences=True), {"mask": "post"}),
        ("simplernn_state_back", L.SimpleRNN(u, return_state=True, go_backwards=True), {}),
        ("gru_basic", L.GRU(u), {}),
        ("gru_reset_before_hard", L.GRU(u, reset_after=False, recurrent_activation="hard_sigmoid",
                                        return_sequences=True), {"mask": "mid"}),
        ("gru_seed_dropout", L.GRU(u, dropout=0.2, seed=3, return_state=True), {}),
        ("lstm_basic", L.LSTM(u), {}),
        ("lstm_hard_sigmoid_seq", L.LSTM(u, recurrent_activation="hard_sigmoid", return_sequences=True,
                                         zero_output_for_mask=True), {"mask": "random"}),
        ("lstm_init_state", L.LSTM(u, return_state=True), {"initial_state": [(u,), (u,)]}),
        ("lstm_stateful", L.LSTM(u, stateful=True, return_sequences=True), {"stateful": True}),
        ("rnn_lstm_cell", L.RNN(L.LSTMCell(u, seed=1), return_sequences=True), {}),
        ("rnn_gru_cell", L.RNN(L.GRUCell(u, reset_after=False), go_backwards=True), {"mask": "pre"}),
        ("rnn_simple_cell", L.RNN(L.SimpleRNNCell(u), return_state=True), {}),
        ("rnn_stacked", L.RNN(L.StackedRNNCells([L.GRUCell(3), L.LSTMCell(u)]), return_sequences=True), {}),
    ]
    for name, layer, opts in specs:
        class_name = type(layer).__name__
        _run_calls3(rec, keras, name, layer, class_name, (F,), **opts)


def _run_calls3(rec, keras, name, layer, class_name, input_shape, mask=None, initial_state=None, stateful=False):
    rng = _rng(name)
    shape = (T,) + tuple(input_shape)
    b0 = 3 if stateful else 1
    batches = (3,) if stateful else (1, 4)
    layer(np.zeros((b0,) + shape, "float32"))
    arrays = {}
    non_state = [w for w in layer.weights if "state" not in w.path.split("/")[-1]] if stateful else layer.weights
    for i, w in enumerate(non_state):
        value = (rng.standard_normal(tuple(w.shape)) * 0.5).astype("float32")
        w.assign(value)
        arrays[f"w{i}"] = value
    if stateful:
        layer.reset_states()
    calls = []
    plan = [(b, False) for b in batches] if not stateful else [(3, False), (3, False), (3, True)]
    for i, (b, reset) in enumerate(plan):
        x = (rng.standard_normal((b,) + shape) * 1.5).astype("float32")
        arrays[f"x{i}"] = x
        kwargs = {}
        call = {"reset_before": reset}
        if reset:
            layer.reset_states()
        if mask is not None:
            m = _mask(mask, b, T, rng)
            kwargs["mask"] = m
            arrays[f"m{i}"] = m
        if initial_state:
            states = [(rng.standard_normal((b,) + tuple(s)) * 0.7).astype("float32") for s in initial_state]
            kwargs["initial_state"] = states
            for k, s in enumerate(states):
                arrays[f"s{i}_{k}"] = s
            call["n_states"] = len(states)
        outs = layer(x, **kwargs)
        outs = [keras.ops.convert_to_numpy(o) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]
        for k, o in enumerate(outs):
            arrays[f"y{i}_{k}"] = o
        call["n_outputs"] = len(outs)
        calls.append(call)
    rec.case(
        name,
        arrays=arrays,
        class_name=class_name,
        config=layer.get_config(),
        serialized=keras.layers.serialize(layer),
        n_weights=len(non_state),
        weight_names=None,
        output_shape=None,
        calls=calls,
        stateful=stateful,
        dtype="float32",
    )
