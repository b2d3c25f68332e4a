"""The RNN layer: runs a cell over the time axis (states, masks, initial and kept states,
``go_backwards``, ``return_state``); the base of SimpleRNN, GRU, LSTM, the CuDNN layers and the
ConvLSTMs.

tf-keras 2.21 semantics (``tf_keras/layers/rnn`` and ``backend.rnn``): steps run last to first
with ``go_backwards`` and the sequence output stays in processing order; a masked step carries
every state and outputs the previous output (zeros before any), or zeros with
``zero_output_for_mask``; ``stateful`` layers keep their final states across calls until
``reset_states()``. The built-in cells run the whole time loop in compiled code
(:func:`klayers.ops.recurrent.rnn_sequence`); user-written cells (any object with
``call(inputs, states)`` and ``state_size``) run a Python step loop with the same rules
(:func:`klayers.ops.recurrent_steps.step_loop`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from klayers.backend import tape
from klayers.engine.base_layer import Layer
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.layer_serialization import deserialize
from klayers.engine.node import flatten
from klayers.layers.recurrent._common import (
    _build_cell,
    _flat_sizes,
    _initial_states_of,
    _pack_states,
    _size_tuple,
    checked_from_config,
)
from klayers.layers.recurrent.stacked import StackedRNNCells
from klayers.ops import recurrent_steps as steps
from klayers.ops.common import contiguous
from klayers.serialization import serialize_keras_object


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

    # an output mask only passes an input mask on (compute_mask)
    _no_mask_from_nothing = True

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
            tape.spoil()  # the states carry over to the next call: not a recording's to replay
            self._states = [np.array(s, dtype=self.dtype) for s in final]
        output = seq if self.return_sequences else last
        if self.return_sequences and self.time_major:
            output = contiguous(np.swapaxes(output, 0, 1))
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
        tape.spoil()  # the step loop in Python is not recorded
        return self._python_loop(x, states, mask, training, constants)

    def _python_loop(self, x: np.ndarray, states: List[np.ndarray], mask: Optional[np.ndarray], training: Any,
                     constants: Any) -> Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]:
        """``backend.rnn``'s step loop for any cell (user-written cells run here)."""
        cells = self.cell.cells if isinstance(self.cell, StackedRNNCells) else [self.cell]
        for c in cells:
            if hasattr(c, "reset_dropout_mask"):
                c.reset_dropout_mask()
        kwargs = {}
        if isinstance(self.cell, Layer):
            if self.cell._expects("training"):
                kwargs["training"] = training
        elif "training" in getattr(getattr(self.cell.call, "__code__", None), "co_varnames", ()):
            kwargs["training"] = training
        if constants:
            kwargs["constants"] = constants

        def step(x_t: np.ndarray, flat_states: List[np.ndarray]) -> Tuple[np.ndarray, List[np.ndarray]]:
            out, new = self.cell.call(x_t, list(flat_states), **kwargs)
            return np.asarray(out), [np.asarray(v) for v in (flatten(new) if isinstance(new, (list, tuple)) else [new])]

        last, seq, final = steps.step_loop(step, x, list(states), mask, self.go_backwards, self.zero_output_for_mask,
                                           self.return_sequences)
        if last is None:
            raise ValueError(f"Layer {self.name}: the input sequence has no time steps.")
        return last, seq, final

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
        config = self._base_rnn_config()
        config["cell"] = serialize_keras_object(self.cell)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> RNN:
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

