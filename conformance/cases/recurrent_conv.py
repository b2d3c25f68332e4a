"""ConvLSTM1D/2D/3D (and their one-step cells) recorded from tf-keras 2.21 and Keras 3.15.

Layers use the case format of conformance/cases/recurrent.py (a list of calls with masks,
initial states and stateful resets). tf-keras has no public ConvLSTM cell classes: the cell
cases record ``tf_keras.src.layers.rnn.base_conv_lstm.ConvLSTMCell(rank=n)`` (whose config has
no ``rank``) under klayers's names ``ConvLSTM{n}DCell``: config, weights, one step's inputs
``x``, ``h0``, ``c0`` and Keras's new ``h`` / ``c``.
"""

from __future__ import annotations

import numpy as np
from recurrent import _rng, _run_calls, _run_calls3

SEED = 8642
T = 3


def _state_shape(step_shape, filters, kernel, padding, strides, dilation, data_format):
    rank = len(step_shape) - 1
    if data_format == "channels_first":
        spatial = step_shape[1:]
    else:
        spatial = step_shape[:-1]
    k = kernel if isinstance(kernel, tuple) else (kernel,) * rank
    s = strides if isinstance(strides, tuple) else (strides,) * rank
    d = dilation if isinstance(dilation, tuple) else (dilation,) * rank
    out = []
    for n, ki, si, di in zip(spatial, k, s, d):
        keff = ki + (ki - 1) * (di - 1)
        out.append(-(-n // si) if padding == "same" else -(-(n - keff + 1) // si))
    return (filters,) + tuple(out) if data_format == "channels_first" else tuple(out) + (filters,)


def _layer_cases():
    cf = "channels_first"
    return [
        # name, class, step input shape, kwargs, options
        ("convlstm2d_basic", "ConvLSTM2D", (5, 5, 2), {"filters": 3, "kernel_size": 3}, {}),
        ("convlstm2d_same_seq", "ConvLSTM2D", (4, 5, 2), {"filters": 2, "kernel_size": (3, 2), "padding": "same",
                                                          "return_sequences": True}, {}),
        ("convlstm2d_cf_state", "ConvLSTM2D", (2, 5, 4), {"filters": 3, "kernel_size": 2, "data_format": cf,
                                                          "return_state": True, "return_sequences": True}, {}),
        ("convlstm2d_strides_mask", "ConvLSTM2D", (6, 5, 2), {"filters": 2, "kernel_size": 3, "strides": 2,
                                                              "padding": "same", "return_sequences": True},
         {"mask": "post"}),
        ("convlstm2d_dilated_back", "ConvLSTM2D", (6, 6, 1), {"filters": 2, "kernel_size": 2, "dilation_rate": 2,
                                                              "go_backwards": True, "return_sequences": True}, {}),
        ("convlstm2d_init_state_mask", "ConvLSTM2D", (4, 4, 2), {"filters": 2, "kernel_size": 3, "padding": "same",
                                                                 "return_state": True}, {"mask": "random",
                                                                                         "initial_state": True}),
        ("convlstm2d_stateful", "ConvLSTM2D", (4, 4, 2), {"filters": 2, "kernel_size": 2, "stateful": True,
                                                          "return_sequences": True}, {"stateful": True}),
        ("convlstm2d_sigmoid_relu_nobias", "ConvLSTM2D", (4, 4, 3),
         {"filters": 2, "kernel_size": 3, "recurrent_activation": "sigmoid", "activation": "relu",
          "use_bias": False, "unit_forget_bias": False, "padding": "same"}, {}),
        ("convlstm2d_cf_elu_mask_zero", "ConvLSTM2D", (2, 4, 4),
         {"filters": 2, "kernel_size": 3, "data_format": cf, "activation": "elu", "return_sequences": True,
          "zero_output_for_mask": True, "kernel_regularizer": "l2", "dropout": 0.3}, {"mask": "mid"}),
        ("convlstm2d_len1_b1", "ConvLSTM2D", (3, 3, 2), {"filters": 4, "kernel_size": 1, "return_state": True},
         {"timesteps": 1, "batches": (1,)}),
        ("convlstm1d_basic", "ConvLSTM1D", (7, 2), {"filters": 3, "kernel_size": 3}, {}),
        ("convlstm1d_same_seq_back", "ConvLSTM1D", (6, 3), {"filters": 2, "kernel_size": 2, "padding": "same",
                                                            "return_sequences": True, "go_backwards": True},
         {"mask": "pre"}),
        ("convlstm1d_cf_state", "ConvLSTM1D", (2, 8), {"filters": 2, "kernel_size": 3, "strides": 2,
                                                       "data_format": cf, "return_state": True}, {}),
        ("convlstm1d_init_state", "ConvLSTM1D", (5, 2), {"filters": 2, "kernel_size": 2, "dilation_rate": 2,
                                                         "return_sequences": True, "return_state": True},
         {"initial_state": True}),
        ("convlstm1d_stateful", "ConvLSTM1D", (5, 2), {"filters": 2, "kernel_size": 3, "padding": "same",
                                                       "stateful": True}, {"stateful": True}),
        ("convlstm3d_basic", "ConvLSTM3D", (3, 4, 4, 2), {"filters": 2, "kernel_size": 2}, {}),
        ("convlstm3d_same_seq_mask", "ConvLSTM3D", (3, 3, 4, 1), {"filters": 2, "kernel_size": (2, 3, 2),
                                                                  "padding": "same", "return_sequences": True},
         {"mask": "post"}),
        ("convlstm3d_cf_state_back", "ConvLSTM3D", (2, 3, 4, 3), {"filters": 3, "kernel_size": 2, "data_format": cf,
                                                                  "return_state": True, "go_backwards": True}, {}),
        ("convlstm3d_init_stateful", "ConvLSTM3D", (3, 3, 3, 1), {"filters": 2, "kernel_size": 3, "padding": "same",
                                                                  "stateful": True, "strides": 1}, {"stateful": True}),
    ]


def _state_spec(step_shape, kwargs):
    return [_state_shape(step_shape, kwargs["filters"], kwargs["kernel_size"], kwargs.get("padding", "valid"),
                         kwargs.get("strides", 1), kwargs.get("dilation_rate", 1),
                         kwargs.get("data_format", "channels_last"))] * 2


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for name, class_name, step, kwargs, opts in _layer_cases():
        opts = dict(opts)
        layer = getattr(keras.layers, class_name)(**kwargs)
        init = _state_spec(step, kwargs) if opts.pop("initial_state", False) else None
        if opts.get("stateful"):
            _run_calls(rec, keras, name, layer, class_name, step, batches=(2,), stateful=True, timesteps=T)
            continue
        _run_calls(rec, keras, name, layer, class_name, step, batches=opts.pop("batches", (1, 2)),
                   mask=opts.pop("mask", None), initial_state=init, timesteps=opts.pop("timesteps", T))
    _cell_cases(rec, keras)


def _cell_cases(rec, keras):
    from tf_keras.src.layers.rnn.base_conv_lstm import ConvLSTMCell

    specs = [
        ("cell2d_basic", 2, (5, 5, 2), {"filters": 3, "kernel_size": 3, "padding": "same"}),
        ("cell2d_cf_valid", 2, (2, 5, 4), {"filters": 2, "kernel_size": 2, "data_format": "channels_first",
                                           "recurrent_activation": "sigmoid"}),
        ("cell1d_basic", 1, (6, 2), {"filters": 2, "kernel_size": 3, "padding": "same", "use_bias": False}),
        ("cell1d_strided", 1, (7, 3), {"filters": 3, "kernel_size": 2, "strides": 2}),
        ("cell3d_basic", 3, (3, 4, 3, 2), {"filters": 2, "kernel_size": 2, "padding": "same"}),
        ("cell3d_cf", 3, (2, 3, 3, 3), {"filters": 2, "kernel_size": (1, 2, 2), "data_format": "channels_first",
                                        "activation": "relu"}),
    ]
    for name, rank, step, kwargs in specs:
        rng = _rng(name)
        cell = ConvLSTMCell(rank=rank, **kwargs)
        cell.build((None,) + step)
        weights = [(rng.standard_normal(w.shape) * 0.5).astype("float32") for w in cell.weights]
        cell.set_weights(weights)
        b = 2
        x = (rng.standard_normal((b,) + step) * 1.5).astype("float32")
        shape = _state_shape(step, kwargs["filters"], kwargs["kernel_size"], kwargs.get("padding", "valid"),
                             kwargs.get("strides", 1), 1, kwargs.get("data_format", "channels_last"))
        h0 = (rng.standard_normal((b,) + shape) * 0.7).astype("float32")
        c0 = (rng.standard_normal((b,) + shape) * 0.7).astype("float32")
        h, (h2, c) = cell(x, [h0, c0])
        arrays = {f"w{i}": w for i, w in enumerate(weights)}
        arrays.update(x=x, h0=h0, c0=c0, h=np.asarray(h), c=np.asarray(c))
        rec.case(name, arrays=arrays, class_name=f"ConvLSTM{rank}DCell", config=cell.get_config(),
                 n_weights=len(weights), cell=True, dtype="float32")


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    L = keras.layers
    specs = [
        ("convlstm2d_seq_mask", L.ConvLSTM2D(2, 3, padding="same", return_sequences=True), (4, 4, 2),
         {"mask": "post"}),
        ("convlstm2d_hard_sigmoid_state", L.ConvLSTM2D(2, 2, recurrent_activation="hard_sigmoid", return_state=True),
         (4, 5, 2), {}),
        ("convlstm1d_back", L.ConvLSTM1D(3, 2, go_backwards=True), (6, 2), {}),
        ("convlstm3d_basic", L.ConvLSTM3D(2, 2, padding="same"), (2, 3, 3, 2), {}),
    ]
    for name, layer, step, opts in specs:
        _run_calls3(rec, keras, name, layer, type(layer).__name__, step, **opts)
