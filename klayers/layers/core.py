"""Core layers: Dense, Activation, Lambda, Dropout and its spatial variants, Flatten, Reshape,
Permute, RepeatVector, ActivityRegularization, Masking (tf-keras 2.21 semantics)."""

from __future__ import annotations

import math
import sys
import types
import warnings
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from klayers import activations, constraints, initializers, ops, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec
from klayers.engine.plan import FoldableOp
from klayers.layers._args import positive_int, weight_args_config
from klayers.ops.activation import apply_activation
from klayers.ops.common import activation_code, contiguous
from klayers.ops.dense import dense_call, pack_dense_kernel
from klayers.ops.normalization import fold_affine
from klayers.ops.shapes import normalize_data_format
from klayers.serialization import register_builtins

__all__ = ["Activation", "Dense", "Flatten", "Identity", "Lambda", "Masking", "Permute", "RepeatVector", "Reshape"]


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

    def _fold_spec(self) -> Optional[FoldableOp]:
        """How a BatchNormalization after this layer folds into it at inference (read by the
        inference planner): output units scaled in the kernel, the shift added to the bias.
        None when the layer applies an activation or a subclass overrides ``call``."""
        if type(self).call is not Dense.call or self.activation is not activations.linear:
            return None
        dtype = np.dtype(self._dtype)

        def fold(inv: np.ndarray, shift: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
            bias = self.bias.value if self.use_bias else None
            return fold_affine(self.kernel.value, bias, inv, shift, dtype)

        weights = (self.kernel, self.bias) if self.use_bias else (self.kernel,)
        return FoldableOp(-1, weights, fold, self._run_op, pack_dense_kernel, self._prepare)

    def _run_op(self, x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], act: Any,
                packed: Optional[Callable[[], Optional[np.ndarray]]] = None) -> np.ndarray:
        x = x if x.dtype == kernel.dtype else x.astype(kernel.dtype)
        return ops.dense(x, kernel, bias, act, where=f"Dense {self.name}", packed=packed)

    def _prepare(self, x_shape: Tuple[int, ...], kernel: np.ndarray, bias: Optional[np.ndarray], act: Any,
                 packed: Optional[Callable[[], Optional[np.ndarray]]] = None) -> Callable[[np.ndarray], np.ndarray]:
        return dense_call(x_shape, kernel, bias, act, where=f"Dense {self.name}", packed=packed)

    def _pack_spec(self) -> Optional[FoldableOp]:
        """How the inference planner runs this layer alone on its packed kernel (its own
        activation after); None when a subclass overrides ``call``."""
        if type(self).call is not Dense.call:
            return None

        def fold(inv: Any, shift: Any) -> Tuple[np.ndarray, Optional[np.ndarray]]:
            return self.kernel.value, self.bias.value if self.use_bias else None

        weights = (self.kernel, self.bias) if self.use_bias else (self.kernel,)
        return FoldableOp(-1, weights, fold, self._run_op, pack_dense_kernel, self._prepare)

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

    def _epilogue_code(self) -> Optional[int]:
        """This layer's activation code (``klayers.ops.common``: rectifiers, swish, sigmoid,
        gelu ...), for a preceding op to apply to its own output (read by the inference
        planner); None for activations without a code (softmax, custom callables) and for
        subclasses."""
        code = activation_code(self.activation)
        return code if type(self) is Activation and code >= 0 else None

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

    _arena_safe = False  # user code may keep its inputs

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
        from klayers.serialization.code import func_dump

        if isinstance(fn, types.FunctionType):
            return func_dump(fn), "lambda", fn.__module__
        if callable(fn):
            return getattr(fn, "__name__", type(fn).__name__), "function", getattr(fn, "__module__", None)
        if allow_raw:
            return (list(fn) if isinstance(fn, tuple) else fn), "raw", None
        raise ValueError(f"Invalid input for serialization, type: {type(fn)} ")

    #: (value key, kind key, module key) of each function a Lambda config can hold
    _FUNCTION_KEYS = (("function", "function_type", "module"),
                      ("output_shape", "output_shape_type", "output_shape_module"),
                      ("mask", "mask_type", "mask_module"))

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3 writes marshalled code as a ``__lambda__`` object and a named function as a
        ``function`` object, without the ``*_type`` / ``*_module`` keys; ``output_shape`` and
        ``mask`` only when set."""
        config = dict(config)
        for key, kind_key, module_key in self._FUNCTION_KEYS:
            kind = config.pop(kind_key, None)
            config.pop(module_key, None)
            value = config.get(key)
            if kind == "lambda" and isinstance(value, (list, tuple)) and len(value) == 3:
                code, defaults, closure = value
                config[key] = {"class_name": "__lambda__", "config": {"code": code, "defaults": defaults, "closure": closure}}
            elif kind == "function" and isinstance(value, str):
                config[key] = {"module": "builtins", "class_name": "function", "config": value, "registered_name": "function"}
            if key != "function" and key in config and config[key] is None:
                config.pop(key)
        return config

    @classmethod
    def _from_keras3_config(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3's forms back into tf-keras's (``[code, defaults, closure]`` with kind "lambda",
        plain values "raw"), which :meth:`from_config` takes. The code is not run here."""
        config = dict(config)
        for key, kind_key, module_key in cls._FUNCTION_KEYS:
            value = config.get(key)
            if isinstance(value, dict) and value.get("class_name") == "__lambda__":
                c = value.get("config") or {}
                config[key] = [c.get("code"), c.get("defaults"), c.get("closure")]
                config[kind_key] = "lambda"
                config.setdefault(module_key, None)
            elif key in config and kind_key not in config and key != "function" and not isinstance(value, dict):
                config[kind_key] = "raw"
        return config

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
        from klayers.serialization import get_registered_object, in_safe_mode

        function_type = config.pop(type_key, None)
        module = config.pop(module_key, None)
        value = config.pop(func_key, None)
        if function_type == "function":
            if isinstance(value, dict):
                from klayers.serialization import deserialize_keras_object

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
            from klayers.serialization.code import func_load

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
        return contiguous(x).reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64))) if x.ndim != 1 else x[:, None]

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
        known, unknown = 1, None
        for index, dim in enumerate(output_shape):
            if dim < 0:
                unknown = index
            else:
                known *= dim
        original = math.prod(int(d) for d in input_shape)
        if unknown is not None:
            if known == 0 or original % known != 0:
                raise ValueError(self._size_error(input_shape, output_shape))
            output_shape[unknown] = original // known
        elif original != known:
            raise ValueError(self._size_error(input_shape, output_shape))
        return output_shape

    def _size_error(self, input_shape: Any, output_shape: Any) -> str:
        return (f"Layer {self.name}: total size of new array must be unchanged, input_shape = {list(input_shape)}, "
                f"output_shape = {list(output_shape)}")

    def _reshape_spec(self) -> Optional[Tuple[int, ...]]:
        """The target shape (read by the inference planner, which may take a reshape of a
        pooled ``(batch, channels)`` to ``(1, ..., 1, channels)`` into a fused step); None for
        subclasses that change the maths."""
        return self.target_shape if type(self).call is Reshape.call else None

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
        x = np.asarray(inputs)
        return contiguous(np.broadcast_to(x[:, None, :], (x.shape[0], self.n) + x.shape[1:]))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["n"] = self.n
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


class Identity(Layer):
    """Returns its inputs (an array, or a list of them) unchanged: a placeholder layer. Integer
    inputs stay integers. A mask goes through a layer read from a Keras 3 config (Keras 3's
    Identity supports masking); tf-keras's does not support masking.
    """

    _cast_integer_inputs = False

    @property
    def supports_masking(self) -> bool:
        if self._supports_masking_override is not None:
            return self._supports_masking_override
        return getattr(self, "_keras_dialect", 2) == 3

    @supports_masking.setter
    def supports_masking(self, value: bool) -> None:
        self._supports_masking_override = bool(value)

    def call(self, inputs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

register_builtins("layer", globals(), __all__)
