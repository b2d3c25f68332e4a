"""Core layers: Dense, Activation, Lambda, Dropout and its spatial variants, Flatten, Reshape,
Permute, RepeatVector, ActivityRegularization, Masking (tf-keras 2.21 semantics)."""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any, Callable, Dict, Optional

import numpy as np

from klayers import activations, constraints, initializers, ops, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec
from klayers.ops.activation import apply_activation
from klayers.ops.shapes import normalize_data_format

__all__ = [
    "Activation", "ActivityRegularization", "Dense", "Dropout", "Flatten", "Lambda", "Masking",
    "Permute", "RepeatVector", "Reshape", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
]


def positive_int(value: Any, arg: str, layer: str, allow_zero: bool = False) -> int:
    """``value`` as an int, or a ValueError naming the argument and echoing the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{layer}: `{arg}` must be a positive integer. Received {arg}={value!r}")
    value = int(value)
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"Received an invalid value for `{arg}`, expected a positive integer. Received: {arg}={value}")
    return value


def weight_args_config(layer: Layer, prefixes: Any = ("kernel", "bias")) -> Dict[str, Any]:
    """The serialized ``<prefix>_initializer`` / ``_regularizer`` / ``_constraint`` arguments of a
    layer plus its ``activity_regularizer``, in tf-keras's key order (the block every Dense-like
    layer's config repeats)."""
    config = {f"{p}_initializer": initializers.serialize(getattr(layer, f"{p}_initializer")) for p in prefixes}
    config.update({f"{p}_regularizer": regularizers.serialize(getattr(layer, f"{p}_regularizer")) for p in prefixes})
    config["activity_regularizer"] = regularizers.serialize(layer.activity_regularizer)
    config.update({f"{p}_constraint": constraints.serialize(getattr(layer, f"{p}_constraint")) for p in prefixes})
    return config


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

    def call(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs if inputs.dtype == self.kernel.dtype else inputs.astype(self.kernel.dtype)
        # the op fuses relu / relu6 into its kernel and runs softmax through the softmax kernel
        return ops.dense(x, self.kernel.value, self.bias.value if self.use_bias else None,
                         self.activation, where=f"Dense {self.name}")

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
                **weight_args_config(self),
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
        return apply_activation(inputs, self.activation)

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

    _cast_integer_inputs = False  # user code sees the dtype it was given, as in tf-keras

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



# ---------------------------------------------------------------------------------------------
# Dropout family
# ---------------------------------------------------------------------------------------------
def _is_training(training: Any) -> bool:
    """Keras's learning phase outside ``fit`` is 0: only an explicit truthy ``training`` trains."""
    return bool(training) if training is not None else False


def _check_rate(rate: Any, layer: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise ValueError(f"{layer}: `rate` must be a float between 0 and 1. Received: rate={rate!r}")
    if not 0 <= rate <= 1 or rate != rate:
        raise ValueError(f"Invalid value {rate} received for `rate`, expected a value between 0 and 1.")
    return rate


class _SeededLayer(Layer):
    """A layer that draws random numbers: one NumPy Generator per layer, seeded by ``seed``
    (successive calls draw fresh numbers, as Keras's per-layer generator does)."""

    def __init__(self, seed: Optional[int] = None, **kwargs: Any):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"Layer {self.name}: `seed` must be an integer or None. Received: seed={seed!r}")
        self.seed = seed
        self._rng = np.random.default_rng(seed)


class Dropout(_SeededLayer):
    """Sets a fraction ``rate`` of the inputs to 0 in training, scaling the rest by ``1/(1-rate)``.

    Args:
        rate: fraction dropped, in [0, 1].
        noise_shape: the shape of the keep mask, broadcast against the input (``None`` entries
            take the input's size): ``(batch, 1, features)`` drops the same features at every step.
        seed: seeds the layer's generator.

    ``training`` falsy or None: the identity (a copy-free pass-through). Any rank.
    """

    def __init__(self, rate: float, noise_shape: Any = None, seed: Optional[int] = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate(rate, f"{type(self).__name__} {self.name}")
        if noise_shape is not None:
            if not isinstance(noise_shape, (list, tuple)):
                raise ValueError(f"Layer {self.name}: `noise_shape` must be a tuple or None. Received: noise_shape={noise_shape!r}")
            noise_shape = type(noise_shape)(None if d is None else int(d) for d in noise_shape)
        self.noise_shape = noise_shape
        self.supports_masking = True

    def _get_noise_shape(self, inputs: np.ndarray) -> tuple:
        if self.noise_shape is None:
            return inputs.shape
        if len(self.noise_shape) != inputs.ndim:
            raise ValueError(
                f"Layer {self.name}: noise_shape={tuple(self.noise_shape)} has rank {len(self.noise_shape)}, "
                f"but the input has shape {inputs.shape}."
            )
        shape = tuple(s if d is None else d for d, s in zip(self.noise_shape, inputs.shape))
        for d, s in zip(shape, inputs.shape):
            if d != s and d != 1:
                raise ValueError(f"Layer {self.name}: noise_shape {shape} does not broadcast to the input shape {inputs.shape}.")
        return shape

    def call(self, inputs: np.ndarray, training: Any = None) -> np.ndarray:
        if self.rate == 0 or not _is_training(training):
            return inputs
        x = inputs if inputs.dtype.kind == "f" else inputs.astype(self._dtype)
        if self.rate >= 1:
            return np.zeros_like(x)
        keep = self._rng.random(self._get_noise_shape(x)) >= self.rate
        scale = x.dtype.type(1.0 / (1.0 - self.rate))
        return x * (keep.astype(x.dtype) * scale)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        noise_shape = list(self.noise_shape) if isinstance(self.noise_shape, tuple) else self.noise_shape
        config.update({"rate": self.rate, "noise_shape": noise_shape, "seed": self.seed})
        return config


class SpatialDropout1D(Dropout):
    """Dropout of whole feature maps of a ``(batch, steps, channels)`` input: the mask is
    ``(batch, 1, channels)``."""

    _rank = 1

    def __init__(self, rate: float, **kwargs: Any):
        data_format = kwargs.pop("data_format", None) if self._rank > 1 else None
        super().__init__(rate, **kwargs)
        if self._rank > 1:
            self.data_format = normalize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def _get_noise_shape(self, inputs: np.ndarray) -> tuple:
        ones = (1,) * self._rank
        if self._rank > 1 and self.data_format == "channels_first":
            return (inputs.shape[0], inputs.shape[1]) + ones
        return (inputs.shape[0],) + ones + (inputs.shape[-1],)


class SpatialDropout2D(SpatialDropout1D):
    """Dropout of whole 2D feature maps (``data_format`` channels_last or channels_first).
    Keras 2 does not write ``data_format`` into the config; Keras 3 does (both are read)."""

    _rank = 2

    def __init__(self, rate: float, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(rate, data_format=data_format, **kwargs)


class SpatialDropout3D(SpatialDropout1D):
    """Dropout of whole 3D feature maps (``data_format`` channels_last or channels_first)."""

    _rank = 3

    def __init__(self, rate: float, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(rate, data_format=data_format, **kwargs)


# ---------------------------------------------------------------------------------------------
# Shape layers
# ---------------------------------------------------------------------------------------------
class Flatten(Layer):
    """Flattens every axis but the batch: ``(batch, d1, ..., dn)`` -> ``(batch, d1*...*dn)``.

    ``data_format="channels_first"`` moves axis 1 last before flattening (so the order matches a
    channels_last model); a rank-1 input becomes ``(batch, 1)``.
    """

    def __init__(self, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)
        self.input_spec = InputSpec(min_ndim=1)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs
        if self.data_format == "channels_first" and x.ndim > 2:
            x = np.moveaxis(x, 1, -1)
        # explicit sizes: reshape(0, -1) is ambiguous for an empty batch
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64))) if x.ndim != 1 else x[:, None]

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        if not input_shape:
            return (1,)
        rest = input_shape[1:]
        if all(d is not None for d in rest):
            return (input_shape[0], int(np.prod(rest, dtype=np.int64)))
        return (input_shape[0], None)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Reshape(Layer):
    """Reshapes all but the batch axis to ``target_shape`` (one entry may be -1, inferred)."""

    def __init__(self, target_shape: Any, **kwargs: Any):
        super().__init__(**kwargs)
        try:
            self.target_shape = tuple(int(d) for d in target_shape)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Layer {self.name}: `target_shape` must be a tuple of integers. Received: target_shape={target_shape!r}") from e
        if sum(d < 0 for d in self.target_shape) > 1 or any(d < -1 for d in self.target_shape):
            raise ValueError(
                "There must be at most one unknown dimension in output_shape. "
                f"Received: output_shape={list(self.target_shape)}."
            )

    def _fix_unknown_dimension(self, input_shape: Any, output_shape: Any) -> list:
        output_shape = list(output_shape)
        msg = (f"Layer {self.name}: total size of new array must be unchanged, input_shape = {list(input_shape)}, "
               f"output_shape = {output_shape}")
        known, unknown = 1, None
        for index, dim in enumerate(output_shape):
            if dim < 0:
                unknown = index
            else:
                known *= dim
        original = int(np.prod(input_shape, dtype=np.int64))
        if unknown is not None:
            if known == 0 or original % known != 0:
                raise ValueError(msg)
            output_shape[unknown] = original // known
        elif original != known:
            raise ValueError(msg)
        return output_shape

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        if None in input_shape[1:]:
            return (input_shape[0],) + tuple(None if s == -1 else s for s in self.target_shape)
        return (input_shape[0],) + tuple(self._fix_unknown_dimension(input_shape[1:], self.target_shape))

    def call(self, inputs: np.ndarray) -> np.ndarray:
        shape = self._fix_unknown_dimension(inputs.shape[1:], self.target_shape)
        return inputs.reshape((inputs.shape[0],) + tuple(shape))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["target_shape"] = self.target_shape
        return config


class Permute(Layer):
    """Permutes the non-batch axes: ``dims`` is a permutation of ``1..rank-1`` (``(2, 1)`` swaps
    the two axes of a rank-3 input)."""

    def __init__(self, dims: Any, **kwargs: Any):
        super().__init__(**kwargs)
        try:
            self.dims = tuple(int(d) for d in dims)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Layer {self.name}: `dims` must be a tuple of integers. Received: dims={dims!r}") from e
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(
                "Invalid permutation argument `dims` for Permute Layer. The set of indices in `dims` "
                f"must be consecutive and start from 1. Received dims={dims}"
            )
        self.input_spec = InputSpec(ndim=len(self.dims) + 1)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return np.transpose(inputs, (0,) + self.dims)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["dims"] = self.dims
        return config


class RepeatVector(Layer):
    """Repeats a ``(batch, features)`` input ``n`` times: ``(batch, n, features)``."""

    def __init__(self, n: int, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"Expected an integer value for `n`, got {type(n)}.")
        self.n = int(n)
        self.input_spec = InputSpec(ndim=2)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        return (input_shape[0], self.n, input_shape[1])

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return np.repeat(inputs[:, None, :], self.n, axis=1)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["n"] = self.n
        return config


# ---------------------------------------------------------------------------------------------
# ActivityRegularization, Masking
# ---------------------------------------------------------------------------------------------
class ActivityRegularization(Layer):
    """The identity, adding ``l1 * sum|x| + l2 * sum(x^2)`` (per sample) to ``losses``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.supports_masking = True
        self.l1 = l1
        self.l2 = l2

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"l1": self.l1, "l2": self.l2})
        return config


class Masking(Layer):
    """Masks the time steps whose features all equal ``mask_value``: those steps are zeroed,
    and the output mask ``any(x != mask_value, axis=-1)`` reaches the layers downstream."""

    def __init__(self, mask_value: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.mask_value = mask_value

    def compute_mask(self, inputs: Any, mask: Any = None) -> np.ndarray:
        return np.any(np.asarray(inputs) != self.mask_value, axis=-1)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        keep = np.any(inputs != self.mask_value, axis=-1, keepdims=True)
        return inputs * keep.astype(inputs.dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config
