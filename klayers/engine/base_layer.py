"""Layer: the one place every klayers layer goes through (Keras 2 / tf-keras 2.21 semantics).

Called on NumPy arrays a layer computes eagerly (building itself on the first call); called
on symbolic tensors (from ``Input``) it records a :class:`Node` and returns symbolic tensors
whose shapes come from ``compute_output_shape``.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from klayers import constraints, initializers, regularizers
from klayers.engine import input_spec as input_spec_lib
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.layer_utils import (
    all_sublayers,
    concrete_shape,
    error_naming_layer,
    is_number_tree,
    is_shape,
    map_shapes,
    normalize_dtype,
    restore_layer,
    shape_to_list,
    shape_to_tuple,
    to_snake_case,
    unique_object_name,
)
from klayers.engine.node import Node, flatten, map_structure
from klayers.engine.node_api import NodeAPI
from klayers.engine.variable import Variable
from klayers.engine.weights_api import WeightsAPI
from klayers.serialization import register_builtins

#: The largest single weight klayers allocates: a config asking for more is refused before any
#: allocation (a model file is untrusted input).
MAX_WEIGHT_BYTES = 8 * 2**30

_BUILD_LOCK = threading.RLock()

_ALLOWED_KWARGS = {
    "input_dim", "input_shape", "batch_input_shape", "batch_size", "weights",
    "activity_regularizer", "autocast", "implementation",
}


def _shape_of(x: Any) -> Tuple[Optional[int], ...]:
    return tuple(x.shape)


class Layer(WeightsAPI, NodeAPI):
    """Base class of every layer (Keras 2 API).

    Subclasses override ``build(input_shape)`` (create weights with :meth:`add_weight`),
    ``call(inputs, training=None, mask=None)`` (NumPy in, NumPy out),
    ``compute_output_shape(input_shape)`` and ``get_config()``.

    Args:
        trainable: whether the layer's weights are trainable.
        name: the layer name (unique by default: ``dense``, ``dense_1`` ...).
        dtype: the compute and weight dtype (default ``backend.floatx()``, float32).
        input_shape / batch_input_shape / batch_size / input_dim: declare the input of a
            first layer of a Sequential model.
        weights: initial weights, set after the layer is built.
        activity_regularizer: penalty on the layer's outputs, collected in ``losses``.
    """

    _keras_module = "keras.layers"
    #: Whether a float layer casts integer and boolean inputs to its dtype (as it casts other
    #: floats); layers that consume indices or user code (Embedding, Lambda) keep them.
    _cast_integer_inputs = True
    #: Whether the layer keeps nothing it is given or returns past its call (true of klayers's
    #: own layers; Lambda runs user code). The inference arena reuses a buffer after its last
    #: reader only when that reader, and every layer it tracks, says so.
    _arena_safe = True
    #: Whether ``compute_mask`` (overridden) gives None whenever no mask comes in (a layer that
    #: only consumes masks): the plan then need not ask it for one on unmasked inputs.
    _no_mask_from_nothing = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # klayers's own layers serialize under Keras's module name; user subclasses do not.
        if cls.__module__.startswith("klayers.") and "_keras_module" not in cls.__dict__:
            cls._keras_module = "keras.layers"

    def __init__(self, trainable: bool = True, name: Optional[str] = None, dtype: Any = None,
                 dynamic: bool = False, **kwargs: Any):
        for k in kwargs:
            if k not in _ALLOWED_KWARGS:
                raise TypeError(f"Keyword argument not understood: {k!r} (layer {type(self).__name__})")
        object.__setattr__(self, "_self_tracked_layers", [])
        self._trainable_weights: List[Variable] = []
        self._non_trainable_weights: List[Variable] = []
        self._inbound_nodes: List[Node] = []
        self._outbound_nodes: List[Node] = []
        self._activity_losses: List[float] = []
        self._trainable = bool(trainable)
        self._dtype = normalize_dtype(dtype)
        self._np_dtype = np.dtype(self._dtype)
        self._dtype_config = dtype if isinstance(dtype, dict) else None
        self.built = False
        self.input_spec = None
        self.stateful = False
        self.dynamic = dynamic
        self._build_input_shape = None
        self._supports_masking_override: Optional[bool] = None
        if name is None:
            name = unique_object_name(to_snake_case(type(self).__name__))
        elif not isinstance(name, str):
            raise TypeError(f"Layer name must be a string. Received name={name!r}")
        self.name = name
        self.activity_regularizer = regularizers.get(kwargs.pop("activity_regularizer", None))
        self._autocast = kwargs.get("autocast", True)
        if "input_dim" in kwargs and "input_shape" not in kwargs:
            kwargs["input_shape"] = (kwargs["input_dim"],)
        if "input_shape" in kwargs or "batch_input_shape" in kwargs:
            if "batch_input_shape" in kwargs:
                batch_input_shape = tuple(kwargs["batch_input_shape"])
            else:
                batch_input_shape = (kwargs.get("batch_size"),) + tuple(kwargs["input_shape"])
            self._batch_input_shape = tuple(None if d is None else int(d) for d in batch_input_shape)
        self._initial_weights = kwargs.get("weights")

    # -- attributes -----------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") or name in ("_layers",):
            tracked = self.__dict__.get("_self_tracked_layers")
            if tracked is not None:
                candidates = value if isinstance(value, (list, tuple)) else [value]
                for v in candidates:
                    if isinstance(v, Layer) and v is not self and all(v is not t for t in tracked):
                        tracked.append(v)
        object.__setattr__(self, name, value)

    @property
    def dtype(self) -> str:
        return self._dtype

    @property
    def compute_dtype(self) -> str:
        return self._dtype

    @property
    def variable_dtype(self) -> str:
        return self._dtype

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self._flatten_layers_list:
            layer.trainable = value

    @property
    def supports_masking(self) -> bool:
        if self._supports_masking_override is not None:
            return self._supports_masking_override
        return type(self).compute_mask is not Layer.compute_mask

    @supports_masking.setter
    def supports_masking(self, value: bool) -> None:
        self._supports_masking_override = bool(value)

    @property
    def _flatten_layers_list(self) -> List[Layer]:
        return list(self._self_tracked_layers)

    # -- weights --------------------------------------------------------------------------
    def add_weight(
        self,
        name: Optional[str] = None,
        shape: Sequence[int] = (),
        dtype: Any = None,
        initializer: Any = None,
        regularizer: Any = None,
        trainable: Optional[bool] = None,
        constraint: Any = None,
        **kwargs: Any,
    ) -> Variable:
        """Create, initialize and track a weight; returns the :class:`Variable`.

        ``initializer`` / ``regularizer`` / ``constraint`` take what ``klayers.initializers.get``
        (etc.) take: names, config dicts, instances or callables. The default initializer is
        ``glorot_uniform`` for floating weights, as in Keras.
        """
        for k in kwargs:
            if k not in ("use_resource", "synchronization", "aggregation", "partitioner", "caching_device", "getter", "experimental_autocast"):
                raise TypeError(f"Unknown keyword argument: {k!r} (add_weight of layer {self.name})")
        shape = tuple(int(d) for d in (shape or ()))
        if any(d < 0 for d in shape):
            raise ValueError(f"Layer {self.name}: weight '{name}' has a negative dimension: shape={shape}")
        dtype = normalize_dtype(dtype if dtype is not None else self._dtype)
        n_bytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
        if n_bytes > MAX_WEIGHT_BYTES:
            raise ValueError(
                f"Layer {self.name}: weight '{name}' of shape {shape} would take {n_bytes / 2**30:.1f} GiB "
                f"(more than the {MAX_WEIGHT_BYTES / 2**30:.0f} GiB klayers allows for one weight); check the "
                "layer's arguments (units, filters, kernel_size ...)."
            )
        if initializer is None:
            initializer = "glorot_uniform" if np.dtype(dtype).kind == "f" else "zeros"
        init = initializers.get(initializer)
        value = np.array(init(shape, dtype=dtype), dtype=dtype, order="C", copy=True)
        if value.shape != shape:
            value = np.broadcast_to(value, shape).copy()
        if trainable is None:
            trainable = True
        var = Variable(
            value,
            name=f"{self.name}/{name}:0",
            trainable=bool(trainable),
            constraint=constraints.get(constraint),
            regularizer=regularizers.get(regularizer),
        )
        (self._trainable_weights if trainable else self._non_trainable_weights).append(var)
        return var

    # -- the Keras hooks --------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        """Create the weights for inputs of ``input_shape`` (a tuple, or a list of tuples)."""
        self._build_input_shape = input_shape
        self.built = True

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """The computation, on NumPy arrays. The base layer is the identity."""
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Output shape for ``input_shape``. The base implementation runs ``call`` on zeros
        (unknown sizes taken as 1) and reports the batch axis as unknown."""
        def concrete(shape):
            return tuple(1 if d is None else d for d in shape)

        shapes_are_list = isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (tuple, list))
        if shapes_are_list:
            dummy = [np.zeros(concrete(s), dtype=self._dtype) for s in input_shape]
        else:
            dummy = np.zeros(concrete(input_shape), dtype=self._dtype)
        self._maybe_build(dummy)
        out = self._call_with_context(dummy, training=False, mask=None)
        return map_structure(lambda o: (None,) + tuple(np.shape(o)[1:]), out)

    def compute_output_signature(self, input_signature: Any) -> Any:
        return self.compute_output_shape(input_signature)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The output mask: the input mask carried over when the layer supports masking."""
        if not self.supports_masking:
            if any(m is not None for m in flatten(mask)):
                raise TypeError(f"Layer {self.name} does not support masking, but was passed an input_mask: {mask}")
            return None
        return mask

    def get_config(self) -> Dict[str, Any]:
        """The layer's constructor arguments (Keras 2's base keys: name, trainable, dtype,
        batch_input_shape when given)."""
        # A dtype policy dict (Keras 3, or Keras 2 mixed precision) is written back as it came:
        # it is also what tells a later reader which Keras's meanings the config carries.
        dtype = dict(self._dtype_config) if self._dtype_config else self._dtype
        config: Dict[str, Any] = {"name": self.name, "trainable": self.trainable, "dtype": dtype}
        if hasattr(self, "_batch_input_shape"):
            config["batch_input_shape"] = list(self._batch_input_shape)
        sig = inspect.signature(type(self).__init__)
        extra = [
            p for p in list(sig.parameters)[1:]
            if p not in ("name", "trainable", "dtype", "dynamic")
            and sig.parameters[p].kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        ]
        if extra and type(self).get_config is Layer.get_config:
            raise NotImplementedError(
                f"Layer {type(self).__name__} has arguments {extra} in `__init__` and therefore "
                "must override `get_config()`."
            )
        return config

    def get_build_config(self) -> Optional[Dict[str, Any]]:
        if self._build_input_shape is not None:
            return {"input_shape": shape_to_list(self._build_input_shape)}
        return None

    def build_from_config(self, config: Dict[str, Any]) -> None:
        shape = config.get("input_shape")
        if shape is not None and not self.built:
            self._maybe_build_from_shape(shape_to_tuple(shape))

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> Layer:
        """``cls(**config)``, with a ValueError naming an argument the layer does not take."""
        if not isinstance(config, dict):
            raise ValueError(f"The config of layer {cls.__name__} must be a dict, got {type(config).__name__}.")
        config = dict(config)
        try:
            return cls(**config)
        except TypeError as e:
            # A config is data: every way it can be wrong is a ValueError naming the layer.
            msg = str(e)
            if "not understood" in msg or "unexpected keyword argument" in msg:
                raise ValueError(f"Unknown config key for layer {cls.__name__}: {msg}") from e
            if "missing" in msg and "required" in msg:
                raise ValueError(f"Missing config key for layer {cls.__name__}: {msg}") from e
            raise ValueError(f"Invalid config for layer {cls.__name__}: {msg}") from e
        except OverflowError as e:  # int(inf) and friends: still a bad value in the config
            raise ValueError(f"Invalid config for layer {cls.__name__}: {e}") from e

    # -- calling --------------------------------------------------------------------------
    @classmethod
    def _call_signature(cls) -> inspect.Signature:
        sig = cls.__dict__.get("_cached_call_sig")
        if sig is None:
            sig = inspect.signature(cls.call)
            type.__setattr__(cls, "_cached_call_sig", sig)
        return sig

    def _call_arg_names(self) -> List[str]:
        return [p for p in self._call_signature().parameters if p != "self"]

    def _expects(self, arg: str) -> bool:
        """Whether ``call`` takes ``arg`` (``training`` also through ``**kwargs``); cached per class."""
        cls = type(self)
        flags = cls.__dict__.get("_cached_call_flags")
        if flags is None:
            params = self._call_signature().parameters
            var_kw = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())
            flags = {"training": "training" in params or var_kw, "mask": "mask" in params}
            type.__setattr__(cls, "_cached_call_flags", flags)
        known = flags.get(arg)
        return known if known is not None else arg in self._call_signature().parameters

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and type(args[0]) is np.ndarray:
            return self._eager_call(args[0], want_mask=False)[0]  # the common case, fast
        if len(args) == 1 and not kwargs and type(args[0]) is list and all(type(t) is np.ndarray for t in args[0]):
            return self._eager_call(args[0], want_mask=False)[0]  # a merge layer's list: no KerasTensor
        if args:
            inputs, args = args[0], args[1:]
        elif "inputs" in kwargs:
            inputs = kwargs.pop("inputs")
        else:
            raise TypeError(f"Layer {self.name}.__call__() missing its inputs")
        if any(isinstance(t, KerasTensor) for t in flatten((inputs, args, kwargs))):
            return self._symbolic_call(inputs, args, kwargs)
        training = kwargs.pop("training", None)
        mask = kwargs.pop("mask", None)
        outputs, _ = self._eager_call(inputs, args, kwargs, training, mask, want_mask=False)
        return outputs

    def _convert_inputs(self, inputs: Any) -> Any:
        if type(inputs) is np.ndarray and inputs.dtype == self._np_dtype:
            return inputs
        if type(inputs) is list and all(type(x) is np.ndarray and x.dtype == self._np_dtype for x in inputs):
            return list(inputs)  # what convert() below would give, without its per-array checks

        def convert(x):
            if x is None:
                return None
            if isinstance(x, Variable):
                x = x.value
            try:
                x = np.asarray(x)
            except (ValueError, TypeError) as e:
                raise TypeError(f"Layer {self.name}: inputs could not be converted to an array ({e}).") from e
            if x.dtype.kind not in "biuf":
                raise TypeError(
                    f"Layer {self.name}: inputs must be real numbers (boolean, integer or floating "
                    f"arrays); received an array of dtype {x.dtype}."
                )
            if self._autocast and x.dtype.name != self._dtype and self._np_dtype.kind == "f":
                # Integer and boolean arrays are numbers to a float layer: NumPy's bool and
                # fixed-width int arithmetic (True + True == True, int8 wrap-around) would
                # silently give another answer than the float path.
                if x.dtype.kind == "f" or self._cast_integer_inputs:
                    x = x.astype(self._dtype)
            return x

        if isinstance(inputs, (list, tuple)) and is_number_tree(inputs):
            # nested Python numbers are one array (a batch), not a list of scalar inputs
            return convert(inputs)
        return map_structure(convert, inputs)

    def _maybe_build_from_shape(self, input_shape: Any) -> None:
        if self.built:
            return
        with _BUILD_LOCK:  # two threads calling a fresh layer at once build it once
            if self.built:
                return
            self._build_locked(input_shape)

    def _build_locked(self, input_shape: Any) -> None:
        self.build(input_shape)
        self._build_input_shape = input_shape
        self.built = True
        if self._initial_weights is not None:
            weights, self._initial_weights = self._initial_weights, None
            self.set_weights(weights)

    def _maybe_build(self, inputs: Any) -> None:
        if self.built:
            return
        shapes = map_structure(_shape_of, inputs)
        if isinstance(shapes, tuple) and shapes and isinstance(shapes[0], tuple):
            shapes = list(shapes)
        self._maybe_build_from_shape(shapes)

    def _call_with_context(self, inputs: Any, *args: Any, training: Any = None, mask: Any = None, **kwargs: Any) -> Any:
        if not args and not kwargs and mask is None and training is None and not self._expects("training"):
            return self.call(inputs)
        if self._expects("training"):
            kwargs["training"] = training
        if mask is not None and self._expects("mask"):
            kwargs["mask"] = mask
        return self.call(inputs, *args, **kwargs)

    def _eager_call(self, inputs: Any, args=(), kwargs=None, training: Any = None, mask: Any = None,
                    want_mask: bool = True):
        """Compute on arrays: returns ``(outputs, output_mask)`` (the mask only when ``want_mask``)."""
        kwargs = dict(kwargs) if kwargs else {}
        inputs = self._convert_inputs(inputs)
        input_spec_lib.assert_input_compatibility(self.input_spec, inputs, self.name)
        try:
            self._maybe_build(inputs)
            outputs = self._call_with_context(inputs, *args, training=training, mask=mask, **kwargs)
        except (ValueError, TypeError, IndexError) as e:
            named = error_naming_layer(e, self)
            if named is None:
                raise
            raise named from e
        if self.activity_regularizer is not None:
            losses = []
            for o in flatten(outputs):
                batch = o.shape[0] if o.ndim else 1
                losses.append(float(self.activity_regularizer(o)) / max(batch, 1))
            self._activity_losses = losses
        elif self._activity_losses:
            self._activity_losses = []
        out_mask = self.compute_mask(inputs, mask) if want_mask and self.supports_masking else None
        return outputs, out_mask

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        for t in flatten(inputs):
            if not isinstance(t, KerasTensor):
                raise ValueError(
                    f"Layer {self.name} was called with a mix of symbolic tensors and arrays: {inputs!r}. "
                    "Wrap constants in the layer or pass them as inputs."
                )
        input_spec_lib.assert_input_compatibility(self.input_spec, inputs, self.name)
        input_shapes = map_structure(lambda t: t.shape, inputs)
        if isinstance(input_shapes, tuple) and input_shapes and isinstance(input_shapes[0], tuple):
            input_shapes = list(input_shapes)
        self._maybe_build_from_shape(input_shapes)
        output_shapes = self._symbolic_output_shapes(input_shapes, args, kwargs)
        dtype = self._output_dtype(inputs)

        def make(shape):
            return KerasTensor(tuple(None if d is None else int(d) for d in shape), dtype=dtype)

        if is_shape(output_shapes):
            outputs = make(output_shapes)
        else:
            outputs = map_shapes(make, output_shapes)
        Node(self, call_args=(inputs,) + tuple(args), call_kwargs=kwargs, outputs=outputs)
        self._set_symbolic_masks(inputs, outputs, kwargs.get("mask"))
        return outputs

    def _symbolic_output_shapes(self, input_shapes: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        """The output shapes of a symbolic call: ``compute_output_shape`` of the first argument's
        shapes. A layer whose weights or outputs depend on its other arguments (the value of
        an attention layer, ``return_attention_scores``) reads them here (symbolic tensors)."""
        return self.compute_output_shape(input_shapes)

    def _arg_masks(self, args: tuple, kwargs: Dict[str, Any], mask_of: Any) -> Dict[str, Any]:
        """Keras 3's rule for masks of several arguments: when ``call`` takes ``<arg>_mask`` for
        an argument ``<arg>``, it is given the mask of the tensor passed as ``<arg>``
        (``mask_of(tensor)``); explicit ones in ``kwargs`` win. ``args`` start at the first."""
        names = type(self).__dict__.get("_cached_masked_args")
        if names is None:
            params = [p for p in self._call_signature().parameters if p != "self"]
            names = tuple((i, p) for i, p in enumerate(params) if p + "_mask" in params)
            type.__setattr__(type(self), "_cached_masked_args", names)
        if not names:
            return {}
        out: Dict[str, Any] = {}
        for i, name in names:
            t = args[i] if i < len(args) else kwargs.get(name)
            if t is None or kwargs.get(name + "_mask") is not None:
                continue
            m = mask_of(t)
            if m is not None:
                out[name + "_mask"] = m
        return out

    def _set_symbolic_masks(self, inputs: Any, outputs: Any, explicit_mask: Any = None) -> None:
        """Attach ``_keras_mask`` to symbolic outputs, as tf-keras's ``_set_mask_metadata`` does:
        which outputs carry a mask and its shape (the output's leading axes). Found by asking
        ``compute_mask`` about zeros of the inputs' shapes (unknown sizes taken as 2)."""
        if not self.supports_masking:
            return
        flat_out = flatten(outputs)
        in_masks = map_structure(lambda t: getattr(t, "_keras_mask", None), inputs)
        if explicit_mask is not None:
            in_masks = explicit_mask
        dummy_mask = None
        if any(m is not None for m in flatten(in_masks)):
            dummy_mask = map_structure(lambda m: None if m is None else np.ones(concrete_shape(m.shape), bool), in_masks)
        try:
            dummy = map_structure(lambda t: np.zeros(concrete_shape(t.shape), dtype=t.dtype), inputs)
            out_mask = self._symbolic_mask_probe(dummy, dummy_mask)
        except Exception:  # noqa: BLE001 - a mask that cannot be probed is left unknown
            return
        masks = [out_mask] if len(flat_out) == 1 else (list(out_mask) if isinstance(out_mask, (list, tuple)) else [out_mask] * len(flat_out))
        for t, m in zip(flat_out, masks):
            if m is not None and hasattr(m, "ndim"):
                t._keras_mask = KerasTensor(t.shape[: m.ndim], dtype="bool")

    def _symbolic_mask_probe(self, dummy_inputs: Any, dummy_mask: Any) -> Any:
        return self.compute_mask(dummy_inputs, dummy_mask)

    def _output_dtype(self, inputs: Any) -> str:
        return self._dtype

    def reset_states(self) -> None:
        for layer in self._flatten_layers_list:
            if hasattr(layer, "reset_states"):
                layer.reset_states()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    # -- pickling: config + weights, so a layer or model travels to another process ----------
    def __reduce__(self):
        if any(getattr(layer, "stateful", False) for layer in [self] + all_sublayers(self)):
            raise TypeError(
                f"Layer {self.name} is (or contains) a stateful layer: its states live in this "
                "process and cannot be pickled. Rebuild the model with stateful=False to ship it."
            )
        classes = {type(layer).__name__: type(layer) for layer in [self] + all_sublayers(self)}
        weights = self.get_weights() if self.built else None
        return (restore_layer, (type(self), self.get_config(), self._build_input_shape, weights, classes))


register_builtins("layer", globals(), ["Layer"])

__all__ = ["Layer"]
