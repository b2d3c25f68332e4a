"""Wrappers: Bidirectional (a recurrent layer run both ways) and TimeDistributed (a layer applied
to every time step). tf-keras 2.21 semantics (``tf_keras/layers/rnn/bidirectional.py``,
``time_distributed.py``)."""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

import numpy as np

from klayers.engine.base_layer import Layer
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.node import flatten
from klayers.ops.recurrent import run_rnn_jobs
from klayers.serialization import register_builtins

__all__ = ["Bidirectional", "TimeDistributed"]


def _serialize(layer: Layer) -> Dict[str, Any]:
    from klayers.serialization import serialize_keras_object

    return serialize_keras_object(layer)


def _deserialize(config: Any, custom_objects: Any = None) -> Layer:
    from klayers.layers import deserialize

    return deserialize(config, custom_objects=custom_objects)


def _required_layer(cls: type, config: Dict[str, Any]) -> Any:
    if not isinstance(config.get("layer"), dict):
        raise ValueError(f"Invalid config for layer {cls.__name__}: `layer` must be a layer config. Received layer={config.get('layer')!r}")
    return config["layer"]


def _checked(cls: type, config: Dict[str, Any]) -> Any:
    try:
        return cls(**config)
    except (TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"Invalid config for layer {cls.__name__}: {e}") from e


class Wrapper(Layer):
    """A layer that wraps another one (``layer``), serialized under the ``layer`` key."""

    def __init__(self, layer: Layer, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError(f"Please initialize `{type(self).__name__}` layer with a `keras.layers.Layer` instance. Received: {layer}")
        super().__init__(**kwargs)
        self.layer = layer

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["layer"] = _serialize(self.layer)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> Wrapper:
        config = copy.deepcopy(dict(config))
        config["layer"] = _deserialize(_required_layer(cls, config), custom_objects)
        return _checked(cls, config)


class TimeDistributed(Wrapper):
    """Applies ``layer`` to every time step: input ``(batch, time, ...)``, the layer sees
    ``(batch * time, ...)``; the mask (reshaped) goes to the layer when it takes one.

    Weights are the wrapped layer's. Example: ``TimeDistributed(Dense(8))`` on ``(2, 10, 16)``
    gives ``(2, 10, 8)``.
    """

    def __init__(self, layer: Layer, **kwargs: Any):
        super().__init__(layer, **kwargs)
        self.supports_masking = True

    def _check(self, shape: Any) -> None:
        if len(shape) < 3:
            raise ValueError(
                "`TimeDistributed` Layer should be passed an `input_shape` with at least 3 dimensions, "
                f"received: {tuple(shape)}"
            )

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        self._check(input_shape)
        self.layer._maybe_build_from_shape((input_shape[0],) + input_shape[2:])
        # tf-keras names the wrapped weights under the wrapper: "time_distributed/kernel:0"
        for w in self.layer.weights:
            parts = w.name.split("/")
            if parts[0] == self.layer.name:
                w.name = "/".join([self.name] + parts[1:])
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        input_shape = tuple(input_shape)
        self._check(input_shape)
        inner = self.layer.compute_output_shape((input_shape[0],) + input_shape[2:])
        inner = tuple(inner)
        return (inner[0], input_shape[1]) + inner[1:]

    def call(self, inputs: np.ndarray, training: Any = None, mask: Any = None) -> np.ndarray:
        x = np.asarray(inputs)
        self._check(x.shape)
        B, T = x.shape[:2]
        inner_x = x.reshape((B * T,) + x.shape[2:])
        kwargs = {}
        if mask is not None and self.layer._expects("mask"):
            m = np.asarray(mask)
            kwargs["mask"] = m.reshape((B * T,) + m.shape[2:])
        y = self.layer(inner_x, training=training, **kwargs)
        if mask is not None and not type(self.layer).__module__.startswith("klayers."):
            # tf-keras runs a user-written layer step by step under backend.rnn: a masked step
            # repeats the previous step's output (zeros before any)
            y = np.asarray(y).reshape((B, T) + np.shape(y)[1:])
            m = np.asarray(mask).reshape(B, T, -1).any(axis=-1) if np.ndim(mask) > 2 else np.asarray(mask, bool)
            prev = np.zeros_like(y[:, 0])
            out = np.empty_like(y)
            for t in range(T):
                mt = m[:, t].reshape((B,) + (1,) * (y.ndim - 2))
                prev = np.where(mt, y[:, t], prev)
                out[:, t] = prev
            return out
        return np.asarray(y).reshape((B, T) + np.shape(y)[1:])

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if getattr(self, "_keras_dialect", 2) == 3:
            # Keras 3's TimeDistributed has no compute_mask: an input mask goes on unchanged and
            # the wrapped layer never makes one (recorded: a wrapped Embedding(mask_zero=True)
            # masks nothing there). A config from Keras 3 keeps that meaning.
            return mask
        x = np.asarray(inputs) if not isinstance(inputs, KerasTensor) else None
        if x is None:
            return mask
        B, T = x.shape[:2]
        if mask is None:
            # tf-keras asks the inner layer even without an input mask: a wrapped
            # Embedding(mask_zero=True) or Masking makes its own (batch, time, ...) mask
            out = self.layer.compute_mask(x.reshape((B * T,) + x.shape[2:]), None)
            if out is None:
                return None
            out = np.asarray(out)
            return out.reshape((B, T) + out.shape[1:])
        m = np.asarray(mask)
        inner_mask = m.reshape((B * T,) + m.shape[2:])
        out = None
        if self.layer.supports_masking:
            out = self.layer.compute_mask(x.reshape((B * T,) + x.shape[2:]), inner_mask)
        if out is None:
            out = m
            while out.ndim > 2:
                out = out.any(axis=-1)
            return out
        out = np.asarray(out)
        return out.reshape((B, T) + out.shape[1:])


_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


class Bidirectional(Wrapper):
    """Runs a recurrent layer forwards and a copy (or ``backward_layer``) backwards, then merges.

    Args:
        layer: an RNN layer (``RNN``, ``LSTM``, ``GRU`` ...).
        merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"``, or None (a list of
            both outputs).
        backward_layer: the backward layer (its ``go_backwards`` must differ from ``layer``'s).

    The backward sequence output is reversed to input order before merging; with
    ``return_state`` the output is followed by the forward then the backward states;
    ``initial_state`` is split in halves (forward first). Both layers output zeros at masked
    steps when they return sequences (tf-keras forces ``zero_output_for_mask``).
    """

    def __init__(self, layer: Layer, merge_mode: Optional[str] = "concat", weights: Any = None,
                 backward_layer: Optional[Layer] = None, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError(f"Please initialize `Bidirectional` layer with a `tf.keras.layers.Layer` instance. Received: {layer}")
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(f"`backward_layer` need to be a `tf.keras.layers.Layer` instance. Received: {backward_layer}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Invalid merge mode. Received: {merge_mode}. Merge mode should be one of "
                '{"sum", "mul", "ave", "concat", None}'
            )
        super().__init__(layer, **kwargs)
        self.forward_layer = self._recreate(layer)
        if backward_layer is None:
            self.backward_layer = self._recreate(layer, go_backwards=True)
        else:
            self.backward_layer = backward_layer
            self._backward_layer_config = _serialize(backward_layer)
        self.forward_layer.name = "forward_" + self.forward_layer.name
        self.backward_layer.name = "backward_" + self.backward_layer.name
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError(
                "Forward layer and backward layer should have different `go_backwards` value."
                f"forward_layer.go_backwards = {self.forward_layer.go_backwards},"
                f"backward_layer.go_backwards = {self.backward_layer.go_backwards}"
            )
        for a in ("stateful", "return_sequences", "return_state"):
            fv, bv = getattr(self.forward_layer, a), getattr(self.backward_layer, a)
            if fv != bv:
                raise ValueError(
                    "Forward layer and backward layer are expected to have the same value for attribute "
                    f'"{a}", got "{fv}" for forward layer and "{bv}" for backward layer'
                )
        for lyr in (self.forward_layer, self.backward_layer):
            if getattr(lyr, "zero_output_for_mask", None) is not None:
                lyr.zero_output_for_mask = lyr.return_sequences
        self.merge_mode = merge_mode
        if weights:
            nw = len(weights)
            self.forward_layer._initial_weights = weights[: nw // 2]
            self.backward_layer._initial_weights = weights[nw // 2:]
        self.stateful = layer.stateful
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.supports_masking = True
        self._num_constants = 0
        # the wrapped original is only a template: its weights are the copies'
        self._self_tracked_layers[:] = [self.forward_layer, self.backward_layer]

    @staticmethod
    def _recreate(layer: Layer, go_backwards: bool = False) -> Layer:
        config = layer.get_config()
        if go_backwards:
            config["go_backwards"] = not config["go_backwards"]
        return type(layer).from_config(config)

    def build(self, input_shape: Any) -> None:
        shape = input_shape
        for lyr in (self.forward_layer, self.backward_layer):
            lyr._maybe_build_from_shape(shape)
            for w in lyr.weights:
                if not w.name.startswith(self.name + "/"):
                    w.name = f"{self.name}/{w.name}"
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        out = self.forward_layer.compute_output_shape(input_shape)
        if self.return_state:
            state_shapes = [tuple(s) for s in out[1:]]
            out = out[0]
        out = tuple(out)
        if self.merge_mode == "concat":
            out = out[:-1] + (None if out[-1] is None else out[-1] * 2,)
        elif self.merge_mode is None:
            out = [out, out]
        if self.return_state:
            if self.merge_mode is None:
                return out + state_shapes + state_shapes
            return [out] + state_shapes + state_shapes
        return out

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        inputs = args[0] if args else kwargs.pop("inputs")
        initial_state = kwargs.pop("initial_state", None)
        if initial_state is not None:
            flat = list(flatten(initial_state))
            if any(isinstance(t, KerasTensor) for t in flat):
                return super().__call__([inputs] + flat, *args[1:], **kwargs)
            kwargs["initial_state"] = flat
        return super().__call__(inputs, *args[1:], **kwargs)

    def call(self, inputs: Any, training: Any = None, mask: Any = None, initial_state: Any = None) -> Any:
        if isinstance(inputs, list) and len(inputs) > 1:
            states = inputs[1:]
            inputs = inputs[0]
            half = len(states) // 2
            fwd_state, bwd_state = states[:half], states[half:]
        elif initial_state is not None:
            half = len(initial_state) // 2
            fwd_state, bwd_state = list(initial_state[:half]), list(initial_state[half:])
        else:
            fwd_state = bwd_state = None
        if isinstance(inputs, list):
            inputs = inputs[0]
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        both = self._concurrent(inputs, mask, training, fwd_state or None, bwd_state or None)
        if both is not None:
            y, y_rev = both
        else:
            kw: Dict[str, Any] = {"training": training}
            if mask is not None:
                kw["mask"] = mask
            y = self.forward_layer(inputs, initial_state=fwd_state or None, **kw)
            y_rev = self.backward_layer(inputs, initial_state=bwd_state or None, **kw)
        states: List[Any] = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            axis = 0 if getattr(self.forward_layer, "time_major", False) else 1
            y_rev = np.flip(y_rev, axis)
        if self.merge_mode == "concat":
            output: Any = np.concatenate([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            output = y + y_rev
        elif self.merge_mode == "ave":
            output = (y + y_rev) / 2
        elif self.merge_mode == "mul":
            output = y * y_rev
        else:
            output = [y, np.ascontiguousarray(y_rev)]
        if self.return_state:
            if self.merge_mode is None:
                return output + states
            return [output] + states
        return output

    def _concurrent(self, inputs: Any, mask: Any, training: Any, fwd_state: Any, bwd_state: Any) -> Any:
        """Both directions' outputs from one kernel call (one direction per core), or None when
        either layer takes another path (a user-written cell, dropout, constants, dtypes)."""
        fwd, bwd = self.forward_layer, self.backward_layer
        if not (hasattr(fwd, "_job") and hasattr(bwd, "_job") and fwd.built and bwd.built):
            return None
        x = np.asarray(inputs)
        if x.dtype != np.dtype(fwd.dtype) or x.dtype != np.dtype(bwd.dtype):
            return None
        jf = fwd._job(x, mask, training, fwd_state)
        if jf is None:
            return None
        jb = bwd._job(x, mask, training, bwd_state)
        if jb is None or jb.kernel.dtype != jf.kernel.dtype:
            return None
        run_rnn_jobs([jf, jb])
        return fwd._finish(*jf.result()), bwd._finish(*jb.result())

    def reset_states(self, states: Any = None) -> None:
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        if states is None:
            self.forward_layer.reset_states()
            self.backward_layer.reset_states()
            return
        if not isinstance(states, (list, tuple)):
            raise ValueError(f"Unrecognized value for `states`. Expected `states` to be list or tuple. Received: {states}")
        half = len(states) // 2
        self.forward_layer.reset_states(states[:half])
        self.backward_layer.reset_states(states[half:])

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        outputs = super()._symbolic_call(inputs, args, kwargs)
        nest = getattr(self.forward_layer, "_nest_states", None)
        if self.return_state and nest is not None and isinstance(outputs, list):
            # each direction's states as its RNN nests them (a StackedRNNCells's per cell), as tf-keras's
            k = 2 if self.merge_mode is None else 1
            states = outputs[k:]
            half = len(states) // 2
            nested = outputs[:k] + list(nest(states[:half])) + list(nest(states[half:]))
            self._inbound_nodes[-1].outputs = nested
            return nested
        return outputs

    def get_output_mask_at(self, node_index: int) -> Any:
        # tf-keras: one mask per top-level output; a nested entry (a stacked cell's [h, c]) has none
        output = self.get_output_at(node_index)
        if isinstance(output, list):
            return [getattr(x, "_keras_mask", None) for x in output]
        return getattr(output, "_keras_mask", None)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if isinstance(mask, list):
            mask = mask[0]
        if self.return_sequences:
            output_mask: Any = [mask, mask] if not self.merge_mode else mask
        else:
            output_mask = [None, None] if not self.merge_mode else None
        if self.return_state:
            n = len(self.forward_layer.states)
            state_mask = [None] * n
            if isinstance(output_mask, list):
                return output_mask + state_mask * 2
            return [output_mask] + state_mask * 2
        return output_mask

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["merge_mode"] = self.merge_mode
        if self._num_constants:
            config["num_constants"] = self._num_constants
        if hasattr(self, "_backward_layer_config"):
            config["backward_layer"] = self._backward_layer_config
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> Bidirectional:
        config = copy.deepcopy(dict(config))
        config.pop("num_constants", None)
        config["layer"] = _deserialize(_required_layer(cls, config), custom_objects)
        if config.get("backward_layer") is not None:
            config["backward_layer"] = _deserialize(config["backward_layer"], custom_objects)
        return _checked(cls, config)

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3 writes the forward and backward layers themselves (named forward_*/backward_*),
        the backward one always: the layers go in as objects, for the writer to serialize."""
        config = dict(config)
        config["layer"] = self.forward_layer
        config["backward_layer"] = self.backward_layer
        return config

    @classmethod
    def _from_keras3_config(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        # Keras 3 names the wrapped layers forward_*/backward_* and always writes backward_layer
        config = copy.deepcopy(dict(config))
        for key, prefix in (("layer", "forward_"), ("backward_layer", "backward_")):
            inner = config.get(key)
            if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
                name = inner["config"].get("name", "")
                if name.startswith(prefix):
                    inner["config"]["name"] = name[len(prefix):]
        return config

register_builtins("layer", globals(), __all__)
