"""Convolutional LSTMs: ConvLSTM1D/2D/3D and their cells (tf-keras 2.21 ``base_conv_lstm.py``,
``base_conv_rnn.py``).

A ConvLSTM is an LSTM whose input and recurrent transformations are convolutions: gates
``i, f, c, o`` (Keras's order along the kernel's last axis, blocks of ``filters``) are
``conv(x_t, kernel) + bias + conv(h, recurrent_kernel)`` where the recurrent convolution always
uses ``strides=1``, ``padding="same"`` and no dilation. ``recurrent_activation`` defaults to
Keras 2's ``hard_sigmoid``. Masks, ``go_backwards``, ``initial_state``, ``stateful`` and
``return_state`` follow :class:`klayers.layers.RNN`.

The cells hold the weights and the geometry; the sequence runs in
:func:`klayers.ops.convlstm_loop.convlstm` (the input convolution of every step at once, then
the compiled time loop, or the Python step loop for custom activations and cells with
``compiled_loop = False``, which the tests use as the reference).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from klayers import activations, constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.node import flatten
from klayers.layers._args import positive_int
from klayers.layers.recurrent._common import _rate, checked_from_config
from klayers.layers.recurrent.base import RNN
from klayers.ops import convlstm_loop, shapes

__all__ = ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "ConvLSTM1DCell", "ConvLSTM2DCell", "ConvLSTM3DCell"]


class _ConvLSTMCell(Layer):
    """One ConvLSTM step on ``(batch, *spatial, channels)`` (or channels_first) inputs.

    Weights: ``kernel (*kernel_size, channels, 4*filters)``, ``recurrent_kernel (*kernel_size,
    filters, 4*filters)``, ``bias (4*filters,)``. States ``[h, c]``, each shaped like the
    output ``(batch, *out, filters)``. ``call(inputs, states)`` returns ``(h, [h, c])``.
    """

    rank = 2
    #: Run the time loop in one compiled call (False: the Python step loop, the reference).
    compiled_loop = True

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: Optional[str] = None, dilation_rate: Any = 1, activation: Any = "tanh",
                 recurrent_activation: Any = "hard_sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", unit_forget_bias: bool = True, kernel_regularizer: Any = None,
                 recurrent_regularizer: Any = None, bias_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, **kwargs: Any):
        kwargs.pop("seed", None)
        kwargs.pop("rank", None)
        super().__init__(**kwargs)
        where = f"{type(self).__name__} {self.name}"
        self.filters = positive_int(filters, "filters", where)
        self.kernel_size = shapes.normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = shapes.normalize_tuple(strides, self.rank, "strides", allow_zero=True)
        self.padding = shapes.normalize_padding(padding, ("valid", "same"))
        self.data_format = shapes.normalize_data_format(data_format)
        self.dilation_rate = shapes.normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        if any(s == 0 for s in self.strides):
            raise ValueError(f"{where}: strides must be positive. Received strides={self.strides}")
        if any(s != 1 for s in self.strides) and any(d != 1 for d in self.dilation_rate):
            raise ValueError(
                f"{where}: strides > 1 not supported in conjunction with dilation_rate > 1. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = _rate(dropout, "dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")

    @property
    def state_size(self) -> Tuple[int, int]:
        return (self.filters, self.filters)

    @property
    def output_size(self) -> int:
        return self.filters

    # -- geometry -----------------------------------------------------------------------------
    def _channel_axis(self) -> int:
        return 1 if self.data_format == "channels_first" else -1

    def _spatial(self, shape: Tuple[Any, ...]) -> Tuple[Any, ...]:
        """Spatial dims of a per-step shape ``(batch, ...)``."""
        return tuple(shape[2:]) if self.data_format == "channels_first" else tuple(shape[1:-1])

    def output_spatial(self, step_shape: Tuple[Any, ...]) -> Tuple[Any, ...]:
        return tuple(shapes.conv_output_length(n, k, self.padding, s, d) for n, k, s, d in
                     zip(self._spatial(step_shape), self.kernel_size, self.strides, self.dilation_rate))

    def state_shape(self, batch: Any, out_spatial: Tuple[Any, ...]) -> Tuple[Any, ...]:
        if self.data_format == "channels_first":
            return (batch, self.filters) + tuple(out_spatial)
        return (batch,) + tuple(out_spatial) + (self.filters,)

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        where = f"{type(self).__name__} {self.name}"
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{where}: expected a step input of rank {self.rank + 2}, got shape {input_shape}")
        input_dim = input_shape[self._channel_axis()]
        if input_dim is None:
            raise ValueError(
                "The channel dimension of the inputs (last axis) should be defined. Found None. "
                f"Full input shape received: input_shape={input_shape}"
            )
        F = self.filters
        self.kernel = self.add_weight("kernel", shape=self.kernel_size + (input_dim, 4 * F),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", shape=self.kernel_size + (F, 4 * F),
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        self.bias = None
        if self.use_bias:
            init = self.bias_initializer
            if self.unit_forget_bias:
                base = self.bias_initializer

                def init(shape, dtype=None, **kwargs):
                    return np.concatenate([np.asarray(base((F,), dtype=dtype)), np.ones((F,), dtype),
                                           np.asarray(base((2 * F,), dtype=dtype))])

            self.bias = self.add_weight("bias", shape=(4 * F,), initializer=init, regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        self.built = True

    # -- computing ----------------------------------------------------------------------------
    def _where(self) -> str:
        return f"{type(self).__name__} {self.name}"

    def _sequence(self, x: np.ndarray, states: List[np.ndarray], mask: Optional[np.ndarray], go_backwards: bool,
                  zero_output: bool, return_sequences: bool):
        """The whole sequence ``(batch, time, ...)``: ``(last, outputs or None, [h, c])``
        (:func:`klayers.ops.convlstm_loop.convlstm`)."""
        return convlstm_loop.convlstm(
            x, self.kernel.value, self.recurrent_kernel.value, self.bias.value if self.bias is not None else None,
            states, mask, self.activation, self.recurrent_activation, self.strides, self.padding,
            self.dilation_rate, self.data_format, go_backwards, zero_output, return_sequences,
            compiled=self.compiled_loop, where=self._where())

    def call(self, inputs: np.ndarray, states: Any, training: Any = None) -> Tuple[np.ndarray, List[np.ndarray]]:
        """One step: ``(h, [h, c])`` for ``inputs (batch, *spatial, channels)``."""
        flat = [np.asarray(s) for s in flatten(states)]
        if len(flat) != 2:
            raise ValueError(f"{self._where()}: expected the states [h, c], got {len(flat)} arrays")
        x = np.asarray(inputs)[:, None]
        _, _, (h, c) = self._sequence(x, flat, None, False, False, False)
        return h, [h, c]

    def get_initial_state(self, inputs: Any = None, batch_size: Optional[int] = None, dtype: Any = None) -> Any:
        """Zero states shaped like the output of ``inputs`` (one step ``(batch, *spatial, channels)``)."""
        if inputs is None:
            raise ValueError(f"{self._where()}: the initial state of a convolutional cell needs the inputs")
        shape = np.shape(inputs)
        out = self.state_shape(shape[0], self.output_spatial(shape))
        return [np.zeros(out, dtype or self.dtype) for _ in range(2)]

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(_cell_keys(self))
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> _ConvLSTMCell:
        return checked_from_config(cls, lambda: cls(**config))


def _cell_keys(cell: _ConvLSTMCell, activity_regularizer: Any = False) -> Dict[str, Any]:
    keys = {
        "filters": cell.filters,
        "kernel_size": cell.kernel_size,
        "strides": cell.strides,
        "padding": cell.padding,
        "data_format": cell.data_format,
        "dilation_rate": cell.dilation_rate,
        "activation": activations.serialize(cell.activation),
        "recurrent_activation": activations.serialize(cell.recurrent_activation),
        "use_bias": cell.use_bias,
        "kernel_initializer": initializers.serialize(cell.kernel_initializer),
        "recurrent_initializer": initializers.serialize(cell.recurrent_initializer),
        "bias_initializer": initializers.serialize(cell.bias_initializer),
        "unit_forget_bias": cell.unit_forget_bias,
        "kernel_regularizer": regularizers.serialize(cell.kernel_regularizer),
        "recurrent_regularizer": regularizers.serialize(cell.recurrent_regularizer),
        "bias_regularizer": regularizers.serialize(cell.bias_regularizer),
    }
    if activity_regularizer is not False:
        keys["activity_regularizer"] = regularizers.serialize(activity_regularizer)
    keys.update({
        "kernel_constraint": constraints.serialize(cell.kernel_constraint),
        "recurrent_constraint": constraints.serialize(cell.recurrent_constraint),
        "bias_constraint": constraints.serialize(cell.bias_constraint),
        "dropout": cell.dropout,
        "recurrent_dropout": cell.recurrent_dropout,
    })
    return keys


class ConvLSTM1DCell(_ConvLSTMCell):
    """One ConvLSTM1D step (rank-1 convolutions) on ``(batch, steps, channels)``."""

    rank = 1


class ConvLSTM2DCell(_ConvLSTMCell):
    """One ConvLSTM2D step (rank-2 convolutions) on ``(batch, rows, cols, channels)``."""

    rank = 2


class ConvLSTM3DCell(_ConvLSTMCell):
    """One ConvLSTM3D step (rank-3 convolutions) on ``(batch, d1, d2, d3, channels)``."""

    rank = 3


_CELL_ARGS = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation",
              "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
              "bias_initializer", "unit_forget_bias", "kernel_regularizer", "recurrent_regularizer",
              "bias_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
              "recurrent_dropout")


class _ConvLSTM(RNN):
    """A ConvLSTM over ``(batch, time, *spatial, channels)`` (or ``(batch, time, channels,
    *spatial)``): output ``(batch, [time,] *out, filters)`` with Keras's convolution output
    sizes; states ``[h, c]`` shaped like one output step."""

    _cell_class: type = ConvLSTM2DCell

    def __init__(self, filters: int, kernel_size: Any, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, activity_regularizer: Any = None,
                 unroll: bool = False, **kwargs: Any):
        if unroll:
            raise TypeError(f"Unrolling is not possible with convolutional RNNs. Received: unroll={unroll}")
        cell_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _CELL_ARGS}
        seed = kwargs.pop("seed", None)
        cell = self._cell_class(filters, kernel_size, name="conv_lstm_cell", dtype=kwargs.get("dtype"), seed=seed,
                                **cell_kwargs)
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, **kwargs)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self._out_spatial: Optional[Tuple[Any, ...]] = None

    def __getattr__(self, name: str) -> Any:
        if name in _CELL_ARGS:
            cell = self.__dict__.get("cell")
            if cell is not None:
                return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    @property
    def rank(self) -> int:
        return self.cell.rank

    def _min_rank(self) -> int:
        return self.cell.rank + 3

    def build(self, input_shape: Any) -> None:
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (tuple, list)):
            input_shape = input_shape[0]
        input_shape = tuple(input_shape)
        self._check_rank(len(input_shape), input_shape)
        self._out_spatial = self.cell.output_spatial((input_shape[0],) + input_shape[2:])
        super().build(input_shape)

    def _prefix_weight_names(self) -> None:
        # tf-keras builds the cell in the layer's own scope: "conv_lstm2d/kernel:0"
        for w in self.weights:
            w.name = f"{self.name}/{w.name.split('/')[-1]}"

    def _state_shape(self, batch: Any) -> Tuple[Any, ...]:
        return self.cell.state_shape(batch, self._out_spatial)

    def reset_states(self, states: Any = None) -> None:
        """Zero the kept states of a stateful layer (or set them to ``states``)."""
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        batch = self._stateful_batch
        if not batch or self._out_spatial is None or None in self._out_spatial:
            raise ValueError(
                "If a RNN is stateful, it needs to know its batch size. Specify the batch size of your input "
                "tensors: \n- If using a Sequential model, specify the batch size by passing a `batch_input_shape` "
                "argument to your first layer.\n- If using the functional API, specify the time dimension by "
                "passing a `batch_shape` argument to your Input layer.\nThe same thing goes for the number of "
                "rows and columns."
            )
        want = self._state_shape(batch)
        if states is None:
            self._states = [np.zeros(want, self.dtype) for _ in range(2)]
            return
        flat = [np.asarray(s) for s in flatten(states if isinstance(states, (list, tuple)) else [states])]
        if len(flat) != 2:
            raise ValueError(f"Layer {self.name} expects 2 states, but it received {len(flat)} state values. "
                             f"States received: {states}")
        for i, v in enumerate(flat):
            if v.shape != want:
                raise ValueError(f"State {i} is incompatible with layer {self.name}: expected shape={want}, "
                                 f"found shape={v.shape}")
        self._states = [np.array(v, dtype=self.dtype) for v in flat]

    def _initial_state(self, x: np.ndarray, initial_state: Any) -> List[np.ndarray]:
        batch = x.shape[0]
        if self._out_spatial is None:
            self._out_spatial = self.cell.output_spatial((batch,) + x.shape[2:])
        want = self._state_shape(batch)
        if self.stateful:
            if self._states is None or self._states[0].shape != want:
                self._stateful_batch = batch
                self.reset_states()
            if initial_state is None or any(np.any(s != 0) for s in self._states):
                return [np.asarray(s, self.dtype) for s in self._states]
        if initial_state is None:
            return [np.zeros(want, self.dtype) for _ in range(2)]
        flat = [np.asarray(s) for s in flatten(initial_state)]
        if len(flat) != 2:
            raise ValueError(f"Layer has 2 states but was passed {len(flat)} initial states. "
                             f"Received: initial_state={[getattr(s, 'shape', s) for s in flat]}")
        for i, s in enumerate(flat):
            if s.shape != want:
                raise ValueError(f"Layer {self.name}: initial state {i} must have shape {want}, got {s.shape}")
        return [np.asarray(s, self.dtype) for s in flat]

    def _run(self, x: np.ndarray, states: List[np.ndarray], mask: Optional[np.ndarray], training: Any,
             constants: Any) -> Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]:
        # tf-keras's ConvRNN.call never passes zero_output_for_mask to backend.rnn: the key is
        # kept in the config but masked steps always repeat the previous output. Dropout only
        # acts in training, which inference does not reproduce.
        return self.cell._sequence(x, states, mask, self.go_backwards, False, self.return_sequences)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (tuple, list)):
            input_shape = input_shape[0]
        input_shape = tuple(input_shape)
        out_spatial = self.cell.output_spatial((input_shape[0],) + input_shape[2:])
        step = self.cell.state_shape(input_shape[0], out_spatial)
        out = step[:1] + (input_shape[1],) + step[1:] if self.return_sequences else step
        if self.return_state:
            return [out, step, step]
        return out

    def get_config(self) -> Dict[str, Any]:
        config = self._base_rnn_config()
        config.update(_cell_keys(self.cell, self.activity_regularizer))
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> _ConvLSTM:
        return checked_from_config(cls, lambda: cls(**config))


class ConvLSTM1D(_ConvLSTM):
    """1D convolutional LSTM: inputs ``(batch, time, steps, channels)`` (channels_last).

    Example: ``ConvLSTM1D(4, 3)`` on ``(2, 5, 10, 3)`` gives ``(2, 8, 4)``."""

    _cell_class = ConvLSTM1DCell


class ConvLSTM2D(_ConvLSTM):
    """2D convolutional LSTM: inputs ``(batch, time, rows, cols, channels)`` (channels_last).

    Example: ``ConvLSTM2D(8, 3, padding="same")`` on ``(1, 10, 16, 16, 3)`` gives ``(1, 16, 16, 8)``."""

    _cell_class = ConvLSTM2DCell


class ConvLSTM3D(_ConvLSTM):
    """3D convolutional LSTM: inputs ``(batch, time, d1, d2, d3, channels)`` (channels_last)."""

    _cell_class = ConvLSTM3DCell
