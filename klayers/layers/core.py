"""Core layers: Dense, Activation, Lambda."""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any, Callable, Dict, Optional

import numpy as np

from klayers import activations, constraints, initializers, ops, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec

__all__ = ["Activation", "Dense", "Lambda"]


def positive_int(value: Any, arg: str, layer: str, allow_zero: bool = False) -> int:
    """``value`` as an int, or a ValueError naming the argument and echoing the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{layer}: `{arg}` must be a positive integer. Received {arg}={value!r}")
    value = int(value)
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"Received an invalid value for `{arg}`, expected a positive integer. Received: {arg}={value}")
    return value


class Dense(Layer):
    """``activation(dot(input, kernel) + bias)`` over the last axis of the input.

    Args:
        units: output size (positive integer).
        activation: name, callable or None (linear).
        use_bias: whether to add ``bias``.
        kernel_initializer / bias_initializer / *_regularizer / *_constraint: as in Keras.
        input_dim: Keras 2's shorthand for ``input_shape=(input_dim,)``.

    Input ``(batch, ..., input_dim)`` -> output ``(batch, ..., units)``. Weights: ``kernel``
    ``(input_dim, units)`` then ``bias`` ``(units,)``. Computed by one fused GEMM kernel
    (``klayers._ext.dense``).

    Example::

        layer = Dense(4, activation="relu")
        y = layer(np.ones((2, 3), "float32"))   # (2, 4)
    """

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = positive_int(units, "units", f"Dense {self.name}", allow_zero=False)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        last_dim = input_shape[-1] if len(input_shape) else None
        if last_dim is None:
            raise ValueError(
                "The last dimension of the inputs to a Dense layer should be defined. Found None. "
                f"Full input shape received: {tuple(input_shape)}"
            )
        self.input_spec = InputSpec(min_ndim=2, axes={-1: last_dim})
        self.kernel = self.add_weight(
            "kernel", shape=(last_dim, self.units), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                "bias", shape=(self.units,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        self.built = True

    def _fused_activation(self) -> int:
        if self.activation is activations.linear:
            return ops.ACT_LINEAR
        if self.activation is activations.relu:
            return ops.ACT_RELU
        if self.activation is activations.relu6:
            return ops.ACT_RELU6
        return -1

    def call(self, inputs: np.ndarray) -> np.ndarray:
        act = self._fused_activation()
        x = inputs if inputs.dtype == self.kernel.dtype else inputs.astype(self.kernel.dtype)
        y = ops.dense(x, self.kernel.value, self.bias.value if self.use_bias else None,
                      max(act, ops.ACT_LINEAR), where=f"Dense {self.name}")
        return y if act >= 0 else self.activation(y)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        if len(input_shape) < 1 or input_shape[-1] is None:
            raise ValueError(
                "The last dimension of the input shape of a Dense layer should be defined. "
                f"Found None. Received: input_shape={input_shape}"
            )
        return input_shape[:-1] + (self.units,)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
            }
        )
        return config


class Activation(Layer):
    """Applies ``activation`` element-wise (a name, a config or a callable)."""

    def __init__(self, activation: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.activation = activations.get(activation)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return self.activation(inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


class Lambda(Layer):
    """Wraps a Python function as a layer: ``function(inputs, **arguments)``.

    Args:
        function: the function (NumPy in, NumPy out).
        output_shape: a shape tuple (without batch), or a function of the input shape; by
            default inferred by running the function.
        mask: a mask array, or a function ``mask(inputs, mask)``.
        arguments: extra keyword arguments for ``function``.

    Configs store named functions by name (resolved through ``custom_objects``) and lambdas as
    marshalled code, which is only loaded with ``safe_mode=False``.
    """

    def __init__(self, function: Callable, output_shape: Any = None, mask: Any = None,
                 arguments: Optional[Dict[str, Any]] = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not callable(function):
            raise ValueError(f"Lambda {self.name}: `function` must be callable, got {function!r}")
        self.function = function
        self.arguments = arguments or {}
        self._output_shape = output_shape
        if mask is not None:
            self.supports_masking = True
        self.mask = mask

    def call(self, inputs: Any, mask: Any = None, training: Any = None) -> Any:
        kwargs = dict(self.arguments)
        code = getattr(self.function, "__code__", None)
        if code is not None:
            names = code.co_varnames[: code.co_argcount]
            if "mask" in names and mask is not None:
                kwargs["mask"] = mask
            if "training" in names:
                kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self._output_shape is None:
            return super().compute_output_shape(input_shape)
        if callable(self._output_shape):
            return tuple(self._output_shape(input_shape))
        shape = tuple(self._output_shape)
        batch = input_shape[0][0] if isinstance(input_shape, list) else input_shape[0]
        return (batch,) + shape

    def get_config(self) -> Dict[str, Any]:
        config = Layer.get_config(self)
        fn, fn_type, fn_module = self._serialize_function(self.function)
        shape, shape_type, shape_module = self._serialize_function(self._output_shape, allow_raw=True)
        config.update(
            {
                "function": fn, "function_type": fn_type, "module": fn_module,
                "output_shape": shape, "output_shape_type": shape_type, "output_shape_module": shape_module,
            }
        )
        if self.mask is not None:
            mask, mask_type, mask_module = self._serialize_function(self.mask, allow_raw=True)
            config.update({"mask": mask, "mask_type": mask_type, "mask_module": mask_module})
        config["arguments"] = self.arguments
        return config

    @staticmethod
    def _serialize_function(fn: Any, allow_raw: bool = False):
        """tf-keras's rule: every Python function (def or lambda) is stored as marshalled code;
        other callables by name; plain values (shapes) raw."""
        from klayers.utils.generic import func_dump

        if isinstance(fn, types.FunctionType):
            return func_dump(fn), "lambda", fn.__module__
        if callable(fn):
            return getattr(fn, "__name__", type(fn).__name__), "function", getattr(fn, "__module__", None)
        if allow_raw:
            return (list(fn) if isinstance(fn, tuple) else fn), "raw", None
        raise ValueError(f"Invalid input for serialization, type: {type(fn)} ")

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = None) -> Lambda:
        """Rebuild; a marshalled lambda needs ``safe_mode=False`` (it runs code from the config)."""
        config = dict(config)
        function = cls._parse_function(config, custom_objects, "function", "module", "function_type")
        if "output_shape_type" in config:
            output_shape = cls._parse_function(config, custom_objects, "output_shape", "output_shape_module", "output_shape_type")
        else:
            output_shape = config.pop("output_shape", None)
        if "mask_type" in config:
            config["mask"] = cls._parse_function(config, custom_objects, "mask", "mask_module", "mask_type")
        config["function"] = function
        config["output_shape"] = tuple(output_shape) if isinstance(output_shape, list) else output_shape
        return super().from_config(config)

    @staticmethod
    def _parse_function(config: Dict[str, Any], custom_objects, func_key: str, module_key: str, type_key: str) -> Any:
        from klayers.saving.object_registration import get_registered_object
        from klayers.saving.serialization import in_safe_mode

        function_type = config.pop(type_key, None)
        module = config.pop(module_key, None)
        value = config.pop(func_key, None)
        if function_type == "function":
            if isinstance(value, dict):
                from klayers.saving.serialization import deserialize_keras_object

                return deserialize_keras_object(value, custom_objects=custom_objects, printable_module_name="function in Lambda layer")
            fn = get_registered_object(value, custom_objects)
            if fn is None:
                raise ValueError(
                    f"Unknown function in Lambda layer: '{value}' (module {module!r}). Pass it in "
                    "`custom_objects` when loading."
                )
            return fn
        if function_type == "lambda":
            safe = in_safe_mode()
            if safe is None or safe:
                raise ValueError(
                    f"Requested the deserialization of a Lambda layer ('{config.get('name')}') with a "
                    "Python `lambda` inside it. This carries a potential risk of arbitrary code "
                    "execution and thus it is disallowed by default. If you trust the source of the "
                    "saved model, you can pass `safe_mode=False` to the loading function in order to "
                    "allow Lambda layer loading."
                )
            from klayers.utils.generic import func_load

            globs = dict(vars(sys.modules[__name__]))
            if module in sys.modules:
                globs.update(sys.modules[module].__dict__)
            elif module is not None:
                warnings.warn(f"{module} is not loaded, but a Lambda layer uses it. It may cause errors.", UserWarning)
            if custom_objects:
                globs.update(custom_objects)
            return func_load(value, globs=globs)
        if function_type == "raw" or function_type is None:
            return value
        raise TypeError(f"Unknown function type: {function_type}")

