"""The built-in recurrent cells: SimpleRNNCell, GRUCell, LSTMCell and their shared base.

A cell holds the weights and the arguments of one step (tf-keras 2.21 ``tf_keras/layers/rnn``);
the maths is :mod:`klayers.ops.recurrent_steps` (one step, the Python paths) and
:func:`klayers.ops.recurrent.rnn_sequence` (the whole sequence, compiled), which an
:class:`~klayers.layers.recurrent.RNN` over the cell reaches through ``_sequence`` / ``_job``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from klayers import activations, constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.node import flatten
from klayers.layers._args import positive_int
from klayers.layers.recurrent._common import _flat_sizes, _rate, _size_tuple, checked_from_config
from klayers.ops import recurrent as rec_ops
from klayers.ops import recurrent_steps as steps


class _Cell(Layer):
    """Shared parts of the built-in cells: argument handling, weights, config, one-step call."""

    _kind = "simple"
    _gates = 1

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, recurrent_constraint: Any = None, bias_constraint: Any = None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, **kwargs: Any):
        kwargs.pop("enable_caching_device", None)
        self._seed = kwargs.pop("seed", None)
        super().__init__(**kwargs)
        if isinstance(units, (int, np.integer)) and not isinstance(units, bool) and units <= 0:
            raise ValueError(
                "Received an invalid value for argument `units`, expected a positive integer, "
                f"got {units}."
            )
        self.units = positive_int(units, "units", f"{type(self).__name__} {self.name}")
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = _rate(dropout, "dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")
        self._dropout_masks: Optional[Tuple[Any, Any]] = None

    @property
    def state_size(self) -> Any:
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def _bias_shape(self) -> Tuple[int, ...]:
        return (self._gates * self.units,)

    def _bias_initializer(self) -> Any:
        return self.bias_initializer

    def build(self, input_shape: Any) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"{type(self).__name__} {self.name}: the last dimension of the inputs must be defined. Received input_shape={tuple(input_shape)}")
        gu = self._gates * self.units
        self.kernel = self.add_weight("kernel", shape=(input_dim, gu), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel", shape=(self.units, gu), initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer, constraint=self.recurrent_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", shape=self._bias_shape(), initializer=self._bias_initializer(),
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def get_initial_state(self, inputs: Any = None, batch_size: Optional[int] = None, dtype: Any = None) -> Any:
        """Zeros of ``(batch_size, units)`` per state."""
        dtype = dtype or self.dtype
        if batch_size is None and inputs is not None:
            batch_size = np.shape(inputs)[0]
        states = [np.zeros((batch_size,) + _size_tuple(s), dtype) for s in _flat_sizes(self.state_size)]
        return states if len(states) > 1 else states[0]

    # -- the whole-sequence fast path (declines with None) ---------------------------------
    def _sequence(self, x: np.ndarray, states: List[np.ndarray], mask: Optional[np.ndarray], go_backwards: bool,
                  zero_output: bool, return_sequences: bool):
        kind, kernel, rkernel, bias = self._plain_weights()
        return rec_ops.rnn_sequence(kind, x, kernel, rkernel, bias, states, mask, self.activation,
                                    self.recurrent_activation, go_backwards, zero_output, return_sequences,
                                    where=f"{type(self).__name__} {self.name}", packed=self._packed_recurrent,
                                    packed_input=self._packed_input)

    def _job(self, x: np.ndarray, states: List[np.ndarray], mask: Optional[np.ndarray], go_backwards: bool,
             zero_output: bool, return_sequences: bool):
        kind, kernel, rkernel, bias = self._plain_weights()
        return rec_ops.rnn_job(kind, x, kernel, rkernel, bias, states, mask, self.activation,
                               self.recurrent_activation, go_backwards, zero_output, return_sequences,
                               where=f"{type(self).__name__} {self.name}", packed=self._packed_recurrent,
                               packed_input=self._packed_input)

    def _packed_recurrent(self) -> Optional[np.ndarray]:
        """The recurrent kernel packed for the compiled steps, made once per weight version
        (an assignment through ``Variable.value``, ``set_weights`` or ``load_weights``; writing
        into the array in place is not seen, as for the inference plan's folded kernels)."""
        return self._packed_of(self.recurrent_kernel, "_rpacked")

    def _packed_input(self) -> Optional[np.ndarray]:
        """The input kernel packed for the compiled projections, made once per weight version
        (as :meth:`_packed_recurrent`)."""
        return self._packed_of(self.kernel, "_wpacked")

    def _packed_of(self, var: Any, slot: str) -> Optional[np.ndarray]:
        key = (id(var.value), var._version)
        cached = self.__dict__.get(slot)
        if cached is None or cached[0] != key:
            cached = (key, rec_ops.pack_recurrent_kernel(var.value))
            self.__dict__[slot] = cached
        return cached[1]

    def _plain_weights(self):
        return (self._kind, self.kernel.value, self.recurrent_kernel.value,
                self.bias.value if self.bias is not None else None)

    def _make_dropout_masks(self, inputs: np.ndarray, h: np.ndarray, training: Any) -> Tuple[Any, Any]:
        """Keras's dropout masks for one call (reused at every step) when ``training``.

        As tf-keras: SimpleRNN draws one input and one state mask whenever a rate is non-zero;
        LSTM / GRU draw one mask per gate (4 / 3) and use them only when ``0 < rate < 1`` --
        every gate's with ``implementation=1``, the first input mask alone with
        ``implementation=2`` (which drops nothing on the state)."""
        if not training or (self.dropout == 0 and self.recurrent_dropout == 0):
            return None, None
        rng = np.random.default_rng(self._seed)
        gated = self._gates > 1

        def masks(shape, rate):
            if rate == 0 or (gated and rate >= 1):
                return None
            n = self._gates if gated else 1
            if rate >= 1:
                return [np.zeros(shape, inputs.dtype)]
            return [(rng.random(shape) >= rate).astype(inputs.dtype) / (1 - rate) for _ in range(n)]

        dp, rdp = masks(inputs.shape, self.dropout), masks(h.shape, self.recurrent_dropout)
        if gated and getattr(self, "implementation", 2) != 1:
            dp, rdp = (dp[:1] if dp else None), None
        return dp, rdp

    def reset_dropout_mask(self) -> None:
        self._dropout_masks = None

    def call(self, inputs: np.ndarray, states: Any, training: Any = None) -> Tuple[np.ndarray, Any]:
        """One step: ``(output, new_states)`` for ``inputs (batch, features)``."""
        flat = [np.asarray(s) for s in flatten(states)] if isinstance(states, (list, tuple)) else [np.asarray(states)]
        if self._dropout_masks is None:
            self._dropout_masks = self._make_dropout_masks(inputs, flat[0], training)
        dp, rdp = self._dropout_masks
        kind, kernel, rkernel, bias = self._plain_weights()
        h_in = [np.asarray(v, kernel.dtype) for v in flat]
        if (dp is not None and len(dp) > 1) or (rdp is not None and len(rdp) > 1):
            # tf-keras's implementation=1 in training: every gate reads its own masked copies
            x, g = np.asarray(inputs, kernel.dtype), self._gates
            last, new = steps.rnn_step(kind, [x * m for m in dp] if dp is not None else [x] * g, h_in, kernel,
                                       rkernel, bias, self.activation, self.recurrent_activation,
                                       h_gates=[h_in[0] * m for m in rdp] if rdp is not None else [h_in[0]] * g)
        else:
            x = inputs if dp is None else inputs * dp[0]
            if rdp is not None:  # SimpleRNN only: LSTM / GRU draw no state mask here
                h_in[0] = h_in[0] * rdp[0]
            last, _, new = rec_ops.rnn_sequence_reference(kind, np.asarray(x, kernel.dtype)[:, None, :], kernel, rkernel,
                                                          bias, h_in, None, self.activation, self.recurrent_activation)
        if len(new) == 1:
            return last, [new[0]] if isinstance(states, (list, tuple)) else new[0]
        return last, new

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({
            "units": self.units,
            "activation": activations.serialize(self.activation),
        })
        if self._gates > 1:
            config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config.update({
            "use_bias": self.use_bias,
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
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
        })
        if self._gates > 1:
            config["implementation"] = self.implementation
        return config

    @classmethod
    def _from_keras3_config(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        config = dict(config)
        config.pop("seed", None)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> _Cell:
        return checked_from_config(cls, lambda: super(_Cell, cls).from_config(config))


class SimpleRNNCell(_Cell):
    """One step of a fully-connected RNN: ``h = activation(x @ kernel + h_prev @ recurrent_kernel + bias)``.

    Weights: ``kernel (input_dim, units)``, ``recurrent_kernel (units, units)``, ``bias (units,)``.
    ``state_size = output_size = units``.
    """

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True, **kwargs: Any):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)


class GRUCell(_Cell):
    """One GRU step (gates z, r, h in Keras's order).

    ``reset_after=True`` (tf-keras 2's default, cuDNN-compatible): ``hh = act(x W_h + b_h +
    r * (h R_h + rb_h))`` with a bias of shape ``(2, 3*units)`` (input then recurrent);
    ``reset_after=False``: ``hh = act(x W_h + b_h + (r * h) R_h)`` with a ``(3*units,)`` bias.
    Then ``h = z * h_prev + (1 - z) * hh``.
    """

    _gates = 3

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, reset_after: bool = True, **kwargs: Any):
        implementation = kwargs.pop("implementation", 2)
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, **kwargs)
        self.implementation = implementation
        self.reset_after = bool(reset_after)
        self._kind = "gru" if self.reset_after else "gru_before"

    def _bias_shape(self) -> Tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["reset_after"] = self.reset_after
        return config


class LSTMCell(_Cell):
    """One LSTM step (gates i, f, c, o in Keras's order): ``c = f * c_prev + i * act(zc)``,
    ``h = o * act(c)``. ``unit_forget_bias`` initializes the forget-gate bias to ones.
    ``state_size = [units, units]`` (h, c)."""

    _kind = "lstm"
    _gates = 4

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, unit_forget_bias: bool = True, **kwargs: Any):
        implementation = kwargs.pop("implementation", 2)
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.implementation = 1 if implementation == 0 else implementation

    @property
    def state_size(self) -> Any:
        return [self.units, self.units]

    def _bias_initializer(self) -> Any:
        if not self.unit_forget_bias:
            return self.bias_initializer
        return _ForgetBias(self.bias_initializer, self.units)


class _ForgetBias:
    """LSTM bias initializer with ``unit_forget_bias``: [init(u), ones(u), init(2u)]."""

    def __init__(self, init: Any, units: int):
        self.init, self.units = init, units

    def __call__(self, shape: Any, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        u = self.units
        return np.concatenate([np.asarray(self.init((u,), dtype=dtype)), np.ones((u,), dtype),
                               np.asarray(self.init((2 * u,), dtype=dtype))])

