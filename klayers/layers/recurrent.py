"""Recurrent layers: RNN, SimpleRNN, GRU, LSTM, their cells, StackedRNNCells, CuDNNGRU/CuDNNLSTM.

tf-keras 2.21 semantics (``tf_keras/layers/rnn`` and ``backend.rnn``): steps run last to first
with ``go_backwards`` and the sequence output stays in processing order; a masked step carries
every state and outputs the previous output (zeros before any), or zeros with
``zero_output_for_mask``; ``stateful`` layers keep their final states across calls until
``reset_states()``. The built-in cells run the whole time loop in compiled code
(:func:`klayers.ops.recurrent.rnn_sequence`); user-written cells (any object with
``call(inputs, states)`` and ``state_size``) run a Python step loop with the same rules.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from klayers import activations, constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.node import flatten
from klayers.layers._args import positive_int
from klayers.ops import recurrent as rec_ops
from klayers.serialization import register_builtins

__all__ = [
    "RNN", "SimpleRNN", "SimpleRNNCell", "GRU", "GRUCell", "LSTM", "LSTMCell",
    "StackedRNNCells", "CuDNNGRU", "CuDNNLSTM",
]


def _flat_sizes(state_size: Any) -> List[Any]:
    """``state_size`` (an int, a shape, or a nest of them) as a flat list of per-state sizes."""
    if isinstance(state_size, (int, np.integer)):
        return [int(state_size)]
    if isinstance(state_size, (list, tuple)):
        if state_size and all(isinstance(d, (int, np.integer)) or d is None for d in state_size) and getattr(state_size, "_is_shape", False):
            return [tuple(state_size)]
        out: List[Any] = []
        for s in state_size:
            out.extend(_flat_sizes(s))
        return out
    return [state_size]


def _pack_states(state_size: Any, flat: Sequence[Any]) -> Any:
    """Flat states in ``state_size``'s nesting (``tf.nest.pack_sequence_as``), nests as lists:
    a StackedRNNCells of [LSTMCell, GRUCell] packs ``[h, c, h2]`` as ``[[h, c], h2]``."""
    it = iter(flat)

    def take(size: Any) -> Any:
        if isinstance(size, (list, tuple)) and not getattr(size, "_is_shape", False):
            return [take(s) for s in size]
        return next(it)

    return take(state_size)


def _size_tuple(size: Any) -> Tuple[int, ...]:
    return (int(size),) if isinstance(size, (int, np.integer)) else tuple(size)


def _rate(value: Any, arg: str = "dropout") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or np.isnan(value):
        raise ValueError(f"`{arg}` must be a float between 0 and 1. Received {arg}={value!r}")
    return min(1.0, max(0.0, float(value)))


def checked_from_config(cls: type, build: Any) -> Any:
    """Run ``build()`` (a constructor call from a config); a config that does not fit the
    constructor (missing or mistyped arguments) becomes a ValueError naming the class."""
    try:
        return build()
    except (TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"Invalid config for layer {cls.__name__}: {e}") from e


# ---------------------------------------------------------------------------------------------
# Cells
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
                                    where=f"{type(self).__name__} {self.name}")

    def _job(self, x: np.ndarray, states: List[np.ndarray], mask: Optional[np.ndarray], go_backwards: bool,
             zero_output: bool, return_sequences: bool):
        kind, kernel, rkernel, bias = self._plain_weights()
        return rec_ops.rnn_job(kind, x, kernel, rkernel, bias, states, mask, self.activation,
                               self.recurrent_activation, go_backwards, zero_output, return_sequences,
                               where=f"{type(self).__name__} {self.name}")

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
            last, new = self._per_gate_step(np.asarray(inputs, kernel.dtype), h_in, dp, rdp)
        else:
            x = inputs if dp is None else inputs * dp[0]
            if rdp is not None:  # SimpleRNN only: LSTM / GRU draw no state mask here
                h_in[0] = h_in[0] * rdp[0]
            last, _, new = rec_ops.rnn_sequence_reference(kind, np.asarray(x, kernel.dtype)[:, None, :], kernel, rkernel,
                                                          bias, h_in, None, self.activation, self.recurrent_activation)
        if len(new) == 1:
            return last, [new[0]] if isinstance(states, (list, tuple)) else new[0]
        return last, new

    def _per_gate_step(self, x: np.ndarray, h_in: List[np.ndarray], dp: Any, rdp: Any) -> Tuple[np.ndarray, List[np.ndarray]]:
        """tf-keras's ``implementation=1`` step with one dropout mask per gate (training only)."""
        kind, kernel, rkernel, bias = self._plain_weights()
        g, u = self._gates, self.units
        act, ract = self.activation, self.recurrent_activation
        h = h_in[0]
        xs = [x * dp[k] if dp is not None else x for k in range(g)]
        hs = [h * rdp[k] if rdp is not None else h for k in range(g)]
        b_in = b_rec = None
        if bias is not None:
            b_in, b_rec = (bias[0], bias[1]) if bias.ndim == 2 else (bias, None)

        def proj(k, with_bias=True):
            z = xs[k] @ kernel[:, k * u:(k + 1) * u]
            return z + b_in[k * u:(k + 1) * u] if (with_bias and b_in is not None) else z

        def rec(k, hk):
            r = hk @ rkernel[:, k * u:(k + 1) * u]
            return r + b_rec[k * u:(k + 1) * u] if b_rec is not None else r

        if kind == "lstm":
            c = h_in[1]
            i = ract(proj(0) + rec(0, hs[0]))
            f = ract(proj(1) + rec(1, hs[1]))
            c = f * c + i * act(proj(2) + rec(2, hs[2]))
            o = ract(proj(3) + rec(3, hs[3]))
            h_new = o * act(c)
            return h_new, [h_new, c]
        z = ract(proj(0) + rec(0, hs[0]))
        r = ract(proj(1) + rec(1, hs[1]))
        if kind == "gru":  # reset_after
            hh = act(proj(2) + r * rec(2, hs[2]))
        else:
            hh = act(proj(2) + (r * hs[2]) @ rkernel[:, 2 * u:])
        h_new = z * h + (1 - z) * hh
        return h_new, [h_new]

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


class StackedRNNCells(Layer):
    """Several cells run as one: each step feeds one cell's output to the next.

    ``state_size`` is the cells' state sizes in order. ``call`` takes the states flat or nested
    per cell and returns them nested per cell (``[[h, c], h2]`` for ``[LSTMCell, GRUCell]``), as
    tf-keras does; an ``RNN`` over it returns its states (``return_state``, ``states``) so nested.
    """

    def __init__(self, cells: Sequence[Any], **kwargs: Any):
        for cell in cells:
            if "call" not in dir(cell):
                raise ValueError(f"All cells must have a `call` method. Received cell without a `call` method: {cell}")
            if "state_size" not in dir(cell):
                raise ValueError(f"All cells must have a `state_size` attribute. Received cell without a `state_size`: {cell}")
        super().__init__(**kwargs)
        self.cells = list(cells)

    @property
    def state_size(self) -> tuple:
        return tuple(c.state_size for c in self.cells)

    @property
    def output_size(self) -> Any:
        last = self.cells[-1]
        if getattr(last, "output_size", None) is not None:
            return last.output_size
        sizes = _flat_sizes(last.state_size)
        return sizes[0]

    def get_initial_state(self, inputs: Any = None, batch_size: Optional[int] = None, dtype: Any = None) -> List[Any]:
        return [_initial_states_of(c, batch_size, dtype or self.dtype) for c in self.cells]

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        for cell in self.cells:
            _build_cell(cell, shape)
            out = getattr(cell, "output_size", None)
            if out is None:
                out = _flat_sizes(cell.state_size)[0]
            shape = (shape[0],) + _size_tuple(out)
        for w in self.weights:
            if not w.name.startswith(self.name + "/"):
                w.name = f"{self.name}/{w.name}"
        self.built = True

    def call(self, inputs: Any, states: Any, training: Any = None) -> Tuple[Any, List[Any]]:
        flat = list(flatten(states))
        new_states: List[Any] = []
        x = inputs
        pos = 0
        for cell in self.cells:
            n = len(_flat_sizes(cell.state_size))
            cell_states = flat[pos:pos + n]
            pos += n
            x, ns = _cell_step(cell, x, cell_states, training)
            new_states.extend(flatten(ns) if isinstance(ns, (list, tuple)) else [ns])
        return x, _pack_states(self.state_size, new_states)

    def _sequence(self, x, states, mask, go_backwards, zero_output, return_sequences):
        if not all(hasattr(c, "_sequence") for c in self.cells):
            return None
        pos = 0
        finals: List[np.ndarray] = []
        last = None
        for i, cell in enumerate(self.cells):
            n = len(_flat_sizes(cell.state_size))
            is_last = i == len(self.cells) - 1
            # Layer by layer is exact: at a masked step every state is carried, so what a lower
            # cell outputs there never reaches the result.
            res = cell._sequence(x, states[pos:pos + n], mask, go_backwards if i == 0 else False,
                                 zero_output if is_last else False, True if not is_last else return_sequences)
            if res is None:
                return None
            last, seq, st = res
            finals.extend(st)
            pos += n
            if not is_last:
                x = seq
                if go_backwards and i == 0 and mask is not None:
                    mask = mask[:, ::-1]
        return last, seq if return_sequences else None, finals

    def get_config(self) -> Dict[str, Any]:
        from klayers.serialization import serialize_keras_object

        config = super().get_config()
        config["cells"] = [serialize_keras_object(c) for c in self.cells]
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> StackedRNNCells:
        from klayers.layers import deserialize

        config = dict(config)
        cells = config.pop("cells", None)
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(f"StackedRNNCells: `cells` must be a non-empty list of cell configs. Received cells={cells!r}")
        cells = [deserialize(c, custom_objects=custom_objects) for c in cells]
        return checked_from_config(cls, lambda: cls(cells, **config))


def _build_cell(cell: Any, step_shape: Tuple[Any, ...]) -> None:
    if isinstance(cell, Layer) and not type(cell).__module__.startswith("klayers."):
        # tf-keras's RNN.build calls a user cell's build() directly: the cell records a
        # build_config (its config then carries one) only if its build() calls Layer.build.
        if not cell.built:
            cell.build(tuple(step_shape))
            cell.built = True
    elif isinstance(cell, Layer):
        cell._maybe_build_from_shape(tuple(step_shape))
    elif hasattr(cell, "build") and not getattr(cell, "built", False):
        cell.build(tuple(step_shape))
        try:
            cell.built = True
        except AttributeError:
            pass


def _initial_states_of(cell: Any, batch: int, dtype: Any) -> Any:
    fn = getattr(cell, "get_initial_state", None)
    if fn is not None:
        return fn(inputs=None, batch_size=batch, dtype=dtype)
    states = [np.zeros((batch,) + _size_tuple(s), dtype) for s in _flat_sizes(cell.state_size)]
    return states if len(states) > 1 else states[0]


def _cell_step(cell: Any, x: np.ndarray, states: List[np.ndarray], training: Any) -> Tuple[np.ndarray, Any]:
    """One step of any cell (built-in, stacked, or user-written), states given flat."""
    if isinstance(cell, Layer):
        call = cell.call
        if cell._expects("training"):
            return call(x, states, training=training)
        return call(x, states)
    return cell.call(x, states)


# ---------------------------------------------------------------------------------------------
class RNN(Layer):
    """Runs a cell over the time axis of ``(batch, timesteps, ...)`` inputs.

    Args:
        cell: a cell (``call(inputs, states)`` + ``state_size``), or a list of cells (stacked).
        return_sequences: output every step ``(batch, timesteps, units)`` instead of the last.
        return_state: also return the final states (a list ``[output, *states]``).
        go_backwards: process the sequence last step first (outputs in processing order).
        stateful: keep the final states as the next call's initial states (fixed batch size).
        unroll: accepted (the compiled loop is the same).
        time_major: inputs and outputs are ``(timesteps, batch, ...)``.
        zero_output_for_mask: masked steps output zeros instead of the previous output.

    Call: ``layer(x, mask=None, initial_state=None, training=None)``; ``initial_state`` is a
    list of arrays (or symbolic tensors in a functional model).
    """

    def __init__(self, cell: Any, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 time_major: bool = False, **kwargs: Any):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if "call" not in dir(cell):
            raise ValueError(f"Argument `cell` should have a `call` method. The RNN was passed: cell={cell}")
        if "state_size" not in dir(cell):
            raise ValueError(
                "The RNN cell should have a `state_size` attribute (tuple of integers, one integer per "
                f"RNN state). Received: cell={cell}"
            )
        self.zero_output_for_mask = bool(kwargs.pop("zero_output_for_mask", False))
        num_constants = kwargs.pop("num_constants", 0)
        if "input_shape" not in kwargs and ("input_dim" in kwargs or "input_length" in kwargs):
            kwargs["input_shape"] = (kwargs.pop("input_length", None), kwargs.pop("input_dim", None))
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.time_major = bool(time_major)
        self._states: Optional[List[np.ndarray]] = None
        self._stateful_batch: Optional[int] = None
        self._num_constants = num_constants
        self.supports_masking = True

    # -- states ---------------------------------------------------------------------------
    @property
    def states(self) -> List[Any]:
        """The kept states (None before a stateful layer is built); a StackedRNNCells's
        nested per cell (``[[h, c], h2]``), as tf-keras's."""
        if self._states is None:
            return self._nest_states([None for _ in _flat_sizes(self.cell.state_size)])
        return self._nest_states(self._states)

    @states.setter
    def states(self, states: Any) -> None:
        if states is not None and isinstance(self.cell, StackedRNNCells):
            states = list(flatten(states))
        self._states = states

    def _nest_states(self, flat: List[Any]) -> List[Any]:
        """Flat states (or their shapes) as tf-keras structures them after the output:
        nested per cell for a StackedRNNCells (``[[h, c], h2]``), flat for any other cell."""
        if isinstance(self.cell, StackedRNNCells):
            return _pack_states(self.cell.state_size, flat)
        return flat

    def reset_states(self, states: Any = None) -> None:
        """Zero the kept states of a stateful layer (or set them to ``states``).

        Raises:
            AttributeError: the layer is not stateful.
            ValueError: the batch size is unknown, or ``states`` do not fit.
        """
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        batch = self._stateful_batch
        if not batch:
            raise ValueError(
                "If a RNN is stateful, it needs to know its batch size. Specify the batch size of your "
                "input tensors: \n- If using a Sequential model, specify the batch size by passing a "
                "`batch_input_shape` argument to your first layer.\n- If using the functional API, specify "
                "the batch size by passing a `batch_shape` argument to your Input layer."
            )
        sizes = _flat_sizes(self.cell.state_size)
        if states is None:
            self._states = [np.zeros((batch,) + _size_tuple(s), self.dtype) for s in sizes]
            return
        flat = [np.asarray(s) for s in flatten(states if isinstance(states, (list, tuple)) else [states])]
        if len(flat) != len(sizes):
            raise ValueError(f"Layer {self.name} expects {len(sizes)} states, but it received {len(flat)} state values. States received: {states}")
        new = []
        for i, (v, s) in enumerate(zip(flat, sizes)):
            want = (batch,) + _size_tuple(s)
            if v.shape != want:
                raise ValueError(f"State {i} is incompatible with layer {self.name}: expected shape={want} but found shape={v.shape}")
            new.append(np.array(v, dtype=self.dtype))
        self._states = new

    # -- building -------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (tuple, list)):
            input_shape = input_shape[0]
        input_shape = tuple(input_shape)
        self._check_rank(len(input_shape), input_shape)
        batch_index, time_index = (1, 0) if self.time_major else (0, 1)
        step_shape = (input_shape[batch_index],) + input_shape[2:]
        _build_cell(self.cell, step_shape)
        self._prefix_weight_names()
        if self.stateful:
            self._stateful_batch = input_shape[batch_index]
            self.reset_states()
        self.built = True

    def _prefix_weight_names(self) -> None:
        for w in self.weights:
            if not w.name.startswith(self.name + "/"):
                w.name = f"{self.name}/{w.name}"

    def _min_rank(self) -> int:
        return 3

    def _check_rank(self, ndim: int, shape: Any) -> None:
        want = self._min_rank()
        if ndim < want if want == 3 else ndim != want:
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: expected ndim={want}, '
                f"found ndim={ndim}. Full shape received: {tuple(shape)}"
            )

    # -- calling --------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        inputs = args[0] if args else kwargs.pop("inputs")
        args = args[1:]
        initial_state = kwargs.pop("initial_state", None)
        constants = kwargs.pop("constants", None)
        if args:
            initial_state = args[0] if initial_state is None else initial_state
            args = args[1:]
        if isinstance(inputs, list) and len(inputs) > 1 and initial_state is None and constants is None:
            n_const = self._num_constants
            initial_state = inputs[1:len(inputs) - n_const] or None
            constants = inputs[len(inputs) - n_const:] if n_const else None
            inputs = inputs[0]
        if initial_state is not None and not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        extra = list(flatten(initial_state)) if initial_state is not None else []
        if constants is not None:
            constants = list(constants) if isinstance(constants, (list, tuple)) else [constants]
            self._num_constants = len(constants)
            extra += constants
        if extra:
            symbolic = [isinstance(t, KerasTensor) for t in extra]
            if any(symbolic) or isinstance(inputs, KerasTensor):
                if not all(symbolic) or not isinstance(inputs, KerasTensor):
                    raise ValueError(
                        "The initial state or constants of an RNN layer cannot be specified via a mix of "
                        "Keras tensors and non-Keras tensors (a \"Keras tensor\" is a tensor that was returned "
                        f"by a Keras layer or by `Input`). Received: initial_state={initial_state}, constants={constants}"
                    )
                return super().__call__([inputs] + extra, *args, **kwargs)
            if initial_state is not None:
                kwargs["initial_state"] = initial_state
            if constants is not None:
                kwargs["constants"] = constants
        return super().__call__(inputs, *args, **kwargs)

    def _split_inputs(self, inputs: Any, initial_state: Any, constants: Any):
        if isinstance(inputs, list):
            n_const = self._num_constants
            rest = inputs[1:]
            if n_const:
                constants = rest[len(rest) - n_const:]
                rest = rest[:len(rest) - n_const]
            initial_state = rest or initial_state
            inputs = inputs[0]
        return inputs, initial_state, constants

    def _initial_state(self, x: np.ndarray, initial_state: Any) -> List[np.ndarray]:
        batch = x.shape[0]
        sizes = _flat_sizes(self.cell.state_size)
        if self.stateful:
            if self._states is None or self._states[0].shape[0] != batch:
                self._stateful_batch = batch
                self.reset_states()
            # tf-keras: initial_state only counts while every kept state is zero
            if initial_state is None or any(np.any(s != 0) for s in self._states):
                return [np.asarray(s, self.dtype) for s in self._states]
        if initial_state is None:
            init = _initial_states_of(self.cell, batch, self.dtype)
            flat = flatten(init) if isinstance(init, (list, tuple)) else [init]
            return [np.asarray(s, self.dtype) for s in flat]
        flat = [np.asarray(s) for s in flatten(initial_state)]
        if len(flat) != len(sizes):
            raise ValueError(
                f"Layer has {len(sizes)} states but was passed {len(flat)} initial states. "
                f"Received: initial_state={[getattr(s, 'shape', s) for s in flat]}"
            )
        for i, (s, size) in enumerate(zip(flat, sizes)):
            want = (batch,) + _size_tuple(size)
            if s.shape != want:
                raise ValueError(f"Layer {self.name}: initial state {i} must have shape {want}, got {s.shape}")
        return [np.asarray(s, self.dtype) for s in flat]

    def _prepare(self, inputs: Any, mask: Any, initial_state: Any, constants: Any):
        """Batch-major inputs, initial states, a (batch, time) boolean mask, constants."""
        inputs, initial_state, constants = self._split_inputs(inputs, initial_state, constants)
        x = np.asarray(inputs)
        self._check_rank(x.ndim, x.shape)
        if mask is not None:
            mask = flatten(mask)[0] if isinstance(mask, (list, tuple)) else mask
        if self.time_major:
            x = np.swapaxes(x, 0, 1)
            if mask is not None:
                mask = np.swapaxes(np.asarray(mask), 0, 1)
        if mask is not None:
            mask = np.asarray(mask).astype(bool)
            if mask.ndim > 2:
                mask = mask.reshape(mask.shape[:2])
        states = self._initial_state(x, initial_state)
        return x, states, mask, constants

    def _finish(self, last: np.ndarray, seq: Optional[np.ndarray], final: List[np.ndarray]) -> Any:
        """Keep stateful states; the layer's output(s) from the loop's results."""
        if self.stateful:
            self._states = [np.array(s, dtype=self.dtype) for s in final]
        output = seq if self.return_sequences else last
        if self.return_sequences and self.time_major:
            output = np.ascontiguousarray(np.swapaxes(output, 0, 1))
        if self.return_state:
            return [output] + self._nest_states(list(final))
        return output

    def call(self, inputs: Any, mask: Any = None, training: Any = None, initial_state: Any = None,
             constants: Any = None) -> Any:
        x, states, mask, constants = self._prepare(inputs, mask, initial_state, constants)
        return self._finish(*self._run(x, states, mask, training, constants))

    def _job(self, inputs: Any, mask: Any = None, training: Any = None, initial_state: Any = None) -> Any:
        """The compiled recurrence of one call, prepared but not run (``klayers.ops.recurrent.RnnJob``),
        or None when this layer's call takes another path. Run it with ``run_rnn_jobs``, then
        ``self._finish(*job.result())`` is what ``call`` returns."""
        if not hasattr(self.cell, "_job") or self._uses_dropout(training) or self._num_constants:
            return None
        x, states, mask, _ = self._prepare(inputs, mask, initial_state, None)
        return self.cell._job(x, states, mask, self.go_backwards, self.zero_output_for_mask, self.return_sequences)

    def _uses_dropout(self, training: Any) -> bool:
        if not training:
            return False
        cells = self.cell.cells if isinstance(self.cell, StackedRNNCells) else [self.cell]
        return any(getattr(c, "dropout", 0) or getattr(c, "recurrent_dropout", 0) for c in cells)

    def _run(self, x: np.ndarray, states: List[np.ndarray], mask: Optional[np.ndarray], training: Any,
             constants: Any) -> Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]:
        if hasattr(self.cell, "_sequence") and not constants and not self._uses_dropout(training):
            res = self.cell._sequence(x, states, mask, self.go_backwards, self.zero_output_for_mask,
                                      self.return_sequences)
            if res is not None:
                return res
        return self._python_loop(x, states, mask, training, constants)

    def _python_loop(self, x: np.ndarray, states: List[np.ndarray], mask: Optional[np.ndarray], training: Any,
                     constants: Any) -> Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]:
        """``backend.rnn``'s step loop for any cell (user-written cells run here)."""
        cells = self.cell.cells if isinstance(self.cell, StackedRNNCells) else [self.cell]
        for c in cells:
            if hasattr(c, "reset_dropout_mask"):
                c.reset_dropout_mask()
        T = x.shape[1]
        outputs: List[np.ndarray] = []
        prev = None
        flat_states = list(states)
        kwargs = {}
        if isinstance(self.cell, Layer):
            if self.cell._expects("training"):
                kwargs["training"] = training
        elif "training" in getattr(getattr(self.cell.call, "__code__", None), "co_varnames", ()):
            kwargs["training"] = training
        if constants:
            kwargs["constants"] = constants
        for s in range(T):
            t = T - 1 - s if self.go_backwards else s
            out, new = self.cell.call(x[:, t], list(flat_states), **kwargs)
            out = np.asarray(out)
            new_flat = [np.asarray(v) for v in (flatten(new) if isinstance(new, (list, tuple)) else [new])]
            if mask is not None:
                m = mask[:, t]
                if prev is None:
                    prev = np.zeros_like(out)
                mo = m.reshape((-1,) + (1,) * (out.ndim - 1))
                out = np.where(mo, out, 0 if self.zero_output_for_mask else prev).astype(out.dtype)
                new_flat = [np.where(m.reshape((-1,) + (1,) * (n.ndim - 1)), n, o).astype(n.dtype)
                            for n, o in zip(new_flat, flat_states)]
            prev = out
            flat_states = new_flat
            outputs.append(out)
        if not outputs:
            raise ValueError(f"Layer {self.name}: the input sequence has no time steps.")
        seq = np.stack(outputs, axis=1) if self.return_sequences else None
        return outputs[-1], seq, flat_states

    # -- shapes, masks, config ----------------------------------------------------------------
    def compute_output_shape(self, input_shape: Any) -> Any:
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (tuple, list)):
            input_shape = input_shape[0]
        input_shape = tuple(input_shape)
        batch, time = input_shape[0], input_shape[1]
        if self.time_major:
            batch, time = time, batch
        out_size = getattr(self.cell, "output_size", None)
        if out_size is None:
            out_size = _flat_sizes(self.cell.state_size)[0]
        dims = _size_tuple(out_size)
        if self.return_sequences:
            out = (time, batch) + dims if self.time_major else (batch, time) + dims
        else:
            out = (batch,) + dims
        if self.return_state:
            # flat, as tf-keras's (its symbolic outputs nest a StackedRNNCells's states: _symbolic_call)
            return [out] + [(batch,) + _size_tuple(s) for s in _flat_sizes(self.cell.state_size)]
        return out

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        outputs = super()._symbolic_call(inputs, args, kwargs)
        if self.return_state and isinstance(self.cell, StackedRNNCells) and isinstance(outputs, list):
            # tf-keras's layer.output: [y, [h, c], h2]; the tensors keep their flat indices
            nested = [outputs[0]] + self._nest_states(outputs[1:])
            self._inbound_nodes[-1].outputs = nested
            return nested
        return outputs

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        out_mask = mask if self.return_sequences else None
        if self.return_state:  # one per top-level state entry (a stacked cell's [h, c] is one)
            return [out_mask] + [None for _ in self.states]
        return out_mask

    def get_output_mask_at(self, node_index: int) -> Any:
        # tf-keras: one mask per top-level output; a nested entry (a stacked cell's [h, c]) has none
        output = self.get_output_at(node_index)
        if isinstance(output, list):
            return [getattr(x, "_keras_mask", None) for x in output]
        return getattr(output, "_keras_mask", None)

    def _base_rnn_config(self) -> Dict[str, Any]:
        config = Layer.get_config(self)
        config.update({
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "time_major": self.time_major,
        })
        if self._num_constants:
            config["num_constants"] = self._num_constants
        if self.zero_output_for_mask:
            config["zero_output_for_mask"] = self.zero_output_for_mask
        return config

    def get_config(self) -> Dict[str, Any]:
        from klayers.serialization import serialize_keras_object

        config = self._base_rnn_config()
        config["cell"] = serialize_keras_object(self.cell)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> RNN:
        from klayers.layers import deserialize

        config = dict(config)
        if "cell" not in config:
            raise ValueError(f"Invalid config for layer {cls.__name__}: missing `cell`.")
        cell = deserialize(config.pop("cell"), custom_objects=custom_objects)
        return checked_from_config(cls, lambda: cls(cell, **config))

    @classmethod
    def _from_keras3_config(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        config = dict(config)
        config.pop("seed", None)
        if not config.get("zero_output_for_mask", False):
            config.pop("zero_output_for_mask", None)
        config.pop("use_cudnn", None)
        return config


class _CellLayer(RNN):
    """A layer that owns one built-in cell and forwards its arguments (SimpleRNN, GRU, LSTM)."""

    _cell_class: type = SimpleRNNCell
    _cell_name = "simple_rnn_cell"
    _cell_keys: Tuple[str, ...] = ()

    def __init__(self, units: int, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 time_major: bool = False, activity_regularizer: Any = None, **kwargs: Any):
        cell_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in self._cell_keys}
        seed = kwargs.pop("seed", None)
        kwargs.pop("enable_caching_device", None)
        kwargs.pop("use_cudnn", None)
        cell = self._cell_class(units, name=self._cell_name, dtype=kwargs.get("dtype"),
                                trainable=kwargs.get("trainable", True), seed=seed, **cell_kwargs)
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, time_major=time_major,
                         **kwargs)
        self.activity_regularizer = regularizers.get(activity_regularizer)

    def __getattr__(self, name: str) -> Any:
        if name in type(self)._cell_keys or name in ("units",):
            cell = self.__dict__.get("cell")
            if cell is not None:
                return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def get_config(self) -> Dict[str, Any]:
        config = self._base_rnn_config()
        cell_config = self.cell.get_config()
        for k in ("name", "trainable", "dtype"):
            cell_config.pop(k, None)
        # tf-keras puts activity_regularizer among the cell's keys, after bias_regularizer
        ordered: Dict[str, Any] = {}
        for k, v in cell_config.items():
            ordered[k] = v
            if k == "bias_regularizer":
                ordered["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        config.update(ordered)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> RNN:
        return checked_from_config(cls, lambda: cls(**config))


_COMMON = ("activation", "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer",
           "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
           "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout")


class SimpleRNN(_CellLayer):
    """Fully-connected RNN (:class:`SimpleRNNCell`) over a sequence. Weights: ``kernel``,
    ``recurrent_kernel``, ``bias``. Example: ``SimpleRNN(4)(np.ones((2, 5, 3), "float32"))`` is ``(2, 4)``."""

    _cell_class = SimpleRNNCell
    _cell_name = "simple_rnn_cell"
    _cell_keys = _COMMON

    def __init__(self, units: int, activation: Any = "tanh", **kwargs: Any):
        kwargs.pop("implementation", None)
        super().__init__(units, activation=activation, **kwargs)


class GRU(_CellLayer):
    """Gated recurrent unit over a sequence (:class:`GRUCell`; ``reset_after`` True by default,
    with a ``(2, 3*units)`` bias)."""

    _cell_class = GRUCell
    _cell_name = "gru_cell"
    _cell_keys = _COMMON + ("recurrent_activation", "reset_after", "implementation")

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 reset_after: bool = True, **kwargs: Any):
        kwargs.setdefault("implementation", 2)
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         reset_after=reset_after, **kwargs)


class LSTM(_CellLayer):
    """Long short-term memory over a sequence (:class:`LSTMCell`); states ``[h, c]``."""

    _cell_class = LSTMCell
    _cell_name = "lstm_cell"
    _cell_keys = _COMMON + ("recurrent_activation", "unit_forget_bias", "implementation")

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 unit_forget_bias: bool = True, **kwargs: Any):
        kwargs.setdefault("implementation", 2)
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         unit_forget_bias=unit_forget_bias, **kwargs)


# ---------------------------------------------------------------------------------------------
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

register_builtins("layer", globals(), __all__)
