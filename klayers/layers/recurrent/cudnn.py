"""Keras 2's CuDNNGRU and CuDNNLSTM computed on the CPU: the weights stay in the CuDNN layout
(both bias vectors) and are converted once to the plain layout the compiled loop runs."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from klayers import constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.node import flatten
from klayers.layers._args import positive_int
from klayers.layers.recurrent._common import checked_from_config
from klayers.layers.recurrent.base import RNN
from klayers.ops import recurrent as rec_ops


class _CuDNNCell(Layer):
    """The weights of a CuDNN layer, kept in Keras 2's CuDNN layout (both bias vectors), with
    the plain-layout twin the compiled loop uses (converted when the weights change, as
    ``hdf5_format._convert_rnn_weights`` converts them)."""

    def __init__(self, owner: Any, gates: int, **kwargs: Any):
        super().__init__(**kwargs)
        self._owner = owner
        self._gates = gates
        self._plain_cache: Any = None

    @property
    def units(self) -> int:
        return self._owner.units

    @property
    def state_size(self) -> Any:
        return [self.units, self.units] if self._gates == 4 else self.units

    @property
    def output_size(self) -> int:
        return self.units

    def build(self, input_shape: Any) -> None:
        o = self._owner
        input_dim = input_shape[-1]
        gu = self._gates * self.units
        self.kernel = self.add_weight("kernel", shape=(input_dim, gu), initializer=o.kernel_initializer,
                                      regularizer=o.kernel_regularizer, constraint=o.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", shape=(self.units, gu),
                                                initializer=o.recurrent_initializer,
                                                regularizer=o.recurrent_regularizer, constraint=o.recurrent_constraint)
        bias_init = o.bias_initializer
        if self._gates == 4 and o.unit_forget_bias:
            u = self.units
            base = bias_init

            def bias_init(shape, dtype=None, **kwargs):
                return np.concatenate([np.asarray(base((5 * u,), dtype=dtype)), np.ones((u,), dtype),
                                       np.asarray(base((2 * u,), dtype=dtype))])

        self.bias = self.add_weight("bias", shape=(2 * gu,), initializer=bias_init,
                                    regularizer=o.bias_regularizer, constraint=o.bias_constraint)
        self.built = True

    def _plain_weights(self):
        key = (id(self.kernel.value), id(self.recurrent_kernel.value), id(self.bias.value))
        if self._plain_cache is None or self._plain_cache[0] != key:
            k, r, b = self.kernel.value, self.recurrent_kernel.value, self.bias.value
            g = self._gates
            # per gate: the input block is the C-order reshape of its transpose; the recurrent
            # block is stored transposed
            kernel = np.hstack([blk.T.reshape(blk.shape, order="F") for blk in np.hsplit(k, g)])
            rkernel = np.hstack([blk.T for blk in np.hsplit(r, g)])
            if g == 4:
                bias = np.sum(np.split(b, 2), axis=0)
                kind = "lstm"
            else:
                bias = b.reshape(2, -1)
                kind = "gru"
            plain = (kind, np.ascontiguousarray(kernel), np.ascontiguousarray(rkernel), np.ascontiguousarray(bias))
            self._plain_cache = (key, plain)
        return self._plain_cache[1]

    def _sequence(self, x, states, mask, go_backwards, zero_output, return_sequences):
        kind, kernel, rkernel, bias = self._plain_weights()
        return rec_ops.rnn_sequence(kind, x, kernel, rkernel, bias, states, mask, rec_ops.ACT_TANH,
                                    rec_ops.ACT_SIGMOID, go_backwards, zero_output, return_sequences,
                                    where=f"{type(self._owner).__name__} {self._owner.name}")

    def _job(self, x, states, mask, go_backwards, zero_output, return_sequences):
        kind, kernel, rkernel, bias = self._plain_weights()
        return rec_ops.rnn_job(kind, x, kernel, rkernel, bias, states, mask, rec_ops.ACT_TANH,
                               rec_ops.ACT_SIGMOID, go_backwards, zero_output, return_sequences,
                               where=f"{type(self._owner).__name__} {self._owner.name}")

    def call(self, inputs: np.ndarray, states: Any) -> Any:
        kind, kernel, rkernel, bias = self._plain_weights()
        flat = [np.asarray(s, kernel.dtype) for s in (flatten(states) if isinstance(states, (list, tuple)) else [states])]
        last, _, new = rec_ops.rnn_sequence_reference(kind, np.asarray(inputs, kernel.dtype)[:, None], kernel,
                                                      rkernel, bias, flat)
        return last, new


class _CuDNNRNN(RNN):
    """Keras 2's CuDNNGRU / CuDNNLSTM, computed on the CPU. No masking (as in tf-keras)."""

    _gates = 3

    def __init__(self, units: int, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, time_major: bool = False,
                 unit_forget_bias: bool = True, **kwargs: Any):
        self.units = positive_int(units, "units", type(self).__name__)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.unit_forget_bias = bool(unit_forget_bias)
        cell = _CuDNNCell(self, self._gates, name="cudnn_cell", dtype=kwargs.get("dtype"))
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, time_major=time_major, **kwargs)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.supports_masking = False

    def _prefix_weight_names(self) -> None:
        # tf-keras's CuDNN layers name their weights without any scope: "kernel:0"
        for w in self.weights:
            w.name = w.name.split("/")[-1]

    @property
    def kernel(self):
        return self.cell.kernel

    @property
    def recurrent_kernel(self):
        return self.cell.recurrent_kernel

    @property
    def bias(self):
        return self.cell.bias

    def call(self, inputs: Any, mask: Any = None, training: Any = None, initial_state: Any = None) -> Any:
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        if mask is not None:
            raise ValueError("Masking is not supported for CuDNN RNNs.")
        return super().call(inputs, None, training, initial_state)

    def get_config(self) -> Dict[str, Any]:
        config = Layer.get_config(self)
        config.update({
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "time_major": self.time_major,
            "units": self.units,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        })
        if self._gates == 4:
            config["unit_forget_bias"] = self.unit_forget_bias
        config.update({
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        })
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> RNN:
        return checked_from_config(cls, lambda: cls(**config))


class CuDNNGRU(_CuDNNRNN):
    """Keras 2's CuDNNGRU on the CPU: a reset-after GRU with sigmoid/tanh. Weights in the
    CuDNN layout: ``kernel (input_dim, 3u)``, ``recurrent_kernel (u, 3u)``, ``bias (6u,)``."""

    _gates = 3

    def __init__(self, units: int, **kwargs: Any):
        if "unit_forget_bias" in kwargs:
            raise TypeError("Keyword argument not understood: 'unit_forget_bias' (layer CuDNNGRU)")
        super().__init__(units, **kwargs)


class CuDNNLSTM(_CuDNNRNN):
    """Keras 2's CuDNNLSTM on the CPU: an LSTM with sigmoid/tanh. Weights in the CuDNN layout:
    ``kernel (input_dim, 4u)``, ``recurrent_kernel (u, 4u)``, ``bias (8u,)``."""

    _gates = 4
