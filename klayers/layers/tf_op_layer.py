"""tf-keras's ``TFOpLambda``: TensorFlow functions called on symbolic tensors in a functional
model (``x * 2.0``, ``tf.nn.relu(x)``, ``tf.concat([a, b], -1)``) are saved as layers
``{"class_name": "TFOpLambda", "config": {"function": "math.multiply", ...}}``.

klayers maps the commonest of these names to NumPy (the table below); the function is looked
up by name in that table only, never imported; a name missing from the table is refused with an
error naming it. The class is registered as a layer (configs name it), but it is not part of
``klayers.layers.__all__``: Keras does not export it either.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import numpy as np
from scipy import special as _special

from klayers import activations
from klayers.engine.base_layer import Layer
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.node import Node, flatten, map_structure
from klayers.ops.softmax import softmax as softmax_op
from klayers.serialization import register_builtins


def _reduce(fn: Callable) -> Callable:
    def op(x, axis=None, keepdims=False, **_):
        return fn(x, axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=bool(keepdims))
    return op


def _softmax(x, axis=-1, **_):
    # tf.nn.softmax: any rank, axis None means the last one; the compiled kernel (NumPy for floats
    # it does not take)
    return softmax_op(np.asarray(x), -1 if axis is None else axis)


def _cast_like(fn: Callable) -> Callable:
    def op(x, y, **_):
        out = fn(x, y)
        # TF converts a number to the tensor's dtype: ``x``'s, or ``y``'s when ``x`` is the
        # number (tf-keras's ``2.0 * t`` is ``tf.math.multiply(2.0, y=t)``)
        ref = y if np.ndim(x) == 0 and isinstance(y, np.ndarray) and np.ndim(y) > 0 else x
        if isinstance(ref, np.ndarray) and np.issubdtype(ref.dtype, np.floating):
            return out.astype(ref.dtype, copy=False)
        return out
    return op


def _compare(fn: Callable) -> Callable:
    def op(x, y, **_):
        x = np.asarray(x)
        return fn(x, np.asarray(y).astype(x.dtype) if np.ndim(y) == 0 else y)  # TF converts y to x's type
    return op


def _where(condition, x=None, y=None, **_):
    if x is None or y is None:
        raise ValueError("tf.where(condition) without x and y is not supported by klayers.")
    x = np.asarray(x)
    y = np.asarray(y) if not np.isscalar(y) else np.asarray(y, dtype=x.dtype)
    x = x if x.ndim else x.astype(y.dtype)
    return np.where(np.asarray(condition, dtype=bool), x, y)


def _matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False, **_):
    a, b = np.asarray(a), np.asarray(b)
    if transpose_a or adjoint_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b or adjoint_b:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


def _silu(features, beta=1.0, **_):
    x = np.asarray(features)
    return x * activations.sigmoid(x * x.dtype.type(beta))


def _slice_spec(spec):
    """tf-keras's SlicingOpLambda ``slice_spec``: slices as ``{"start", "stop", "step"}`` dicts,
    ``{"class_name": "__ellipsis__"}``, None (a new axis) and ints; a list is one index per axis."""
    def one(k):
        if isinstance(k, dict):
            if k.get("class_name") == "__ellipsis__":
                return Ellipsis
            if set(k) == {"start", "stop", "step"} and all(v is None or isinstance(v, int) for v in k.values()):
                return slice(k["start"], k["stop"], k["step"])
            raise ValueError(f"SlicingOpLambda: unsupported slice {k!r}.")
        if k is None or k is Ellipsis or isinstance(k, (int, slice)) and not isinstance(k, bool):
            return k
        raise ValueError(f"SlicingOpLambda: unsupported index {k!r} (integers, slices, None and ... only).")
    return tuple(one(k) for k in spec) if isinstance(spec, (list, tuple)) else one(spec)


#: tf-keras's TFOpLambda ``function`` names -> NumPy implementations (TensorFlow's semantics).
FUNCTIONS: Dict[str, Callable] = {
    "math.add": _cast_like(np.add), "__operators__.add": _cast_like(np.add),
    "math.subtract": _cast_like(np.subtract), "__operators__.sub": _cast_like(np.subtract),
    "math.multiply": _cast_like(np.multiply), "__operators__.mul": _cast_like(np.multiply),
    "math.truediv": _cast_like(np.true_divide), "math.divide": _cast_like(np.true_divide),
    "__operators__.truediv": _cast_like(np.true_divide),
    "math.maximum": _cast_like(np.maximum), "math.minimum": _cast_like(np.minimum),
    "math.pow": _cast_like(np.power), "math.squared_difference": _cast_like(lambda x, y: np.square(x - y)),
    "math.negative": lambda x, **_: -x, "__operators__.neg": lambda x, **_: -x,
    "math.abs": lambda x, **_: np.abs(x), "math.exp": lambda x, **_: np.exp(x),
    "math.log": lambda x, **_: np.log(x), "math.sqrt": lambda x, **_: np.sqrt(x),
    "math.rsqrt": lambda x, **_: 1.0 / np.sqrt(x), "math.square": lambda x, **_: np.square(x),
    "math.tanh": lambda x, **_: np.tanh(x), "nn.tanh": lambda x, **_: np.tanh(x),
    "math.sigmoid": lambda x, **_: 1.0 / (1.0 + np.exp(-x)), "nn.sigmoid": lambda x, **_: 1.0 / (1.0 + np.exp(-x)),
    "nn.relu": lambda x, **_: np.maximum(x, 0), "nn.relu6": lambda x, **_: np.clip(x, 0, 6),
    "nn.softmax": _softmax, "math.softmax": _softmax,
    "math.reduce_mean": _reduce(np.mean), "math.reduce_sum": _reduce(np.sum),
    "math.reduce_max": _reduce(np.max), "math.reduce_min": _reduce(np.min), "math.reduce_prod": _reduce(np.prod),
    "concat": lambda values, axis, **_: np.concatenate(values, axis=axis),
    "stack": lambda values, axis=0, **_: np.stack(values, axis=axis),
    "reshape": lambda tensor, shape, **_: np.reshape(tensor, shape),
    "expand_dims": lambda input, axis, **_: np.expand_dims(input, axis),  # noqa: A002 - TF's name
    "squeeze": lambda input, axis=None, **_: np.squeeze(input, axis=tuple(axis) if isinstance(axis, list) else axis),  # noqa: A002
    "compat.v1.squeeze": lambda input, axis=None, **_: np.squeeze(input, axis=tuple(axis) if isinstance(axis, list) else axis),  # noqa: A002
    "transpose": lambda a, perm=None, **_: np.transpose(a, perm),
    "identity": lambda input, **_: np.asarray(input),  # noqa: A002
    **{f"math.{k}": _compare(fn) for k, fn in (("greater", np.greater), ("greater_equal", np.greater_equal),
                                               ("less", np.less), ("less_equal", np.less_equal),
                                               ("equal", np.equal), ("not_equal", np.not_equal))},
    "__operators__.getitem": lambda tensor, slice_spec, **_: np.asarray(tensor)[_slice_spec(slice_spec)],
    "cast": lambda x, dtype, **_: np.asarray(x).astype(np.dtype(dtype)),
    "clip_by_value": lambda t, clip_value_min, clip_value_max, **_: np.clip(t, clip_value_min, clip_value_max).astype(np.asarray(t).dtype),
    "where": _where, "where_v2": _where,
    "linalg.matmul": _matmul, "matmul": _matmul,
    "compat.v1.transpose": lambda a, perm=None, **_: np.transpose(a, perm),
    "math.reduce_any": _reduce(np.any), "math.reduce_all": _reduce(np.all),
    "math.argmax": lambda input, axis=None, output_type="int64", **_: np.argmax(input, 0 if axis is None else axis).astype(output_type),  # noqa: A002
    "math.argmin": lambda input, axis=None, output_type="int64", **_: np.argmin(input, 0 if axis is None else axis).astype(output_type),  # noqa: A002
    "nn.gelu": lambda features, approximate=False, **_: activations.gelu(features, approximate=bool(approximate)),
    "nn.silu": _silu, "nn.swish": _silu,
    "nn.leaky_relu": lambda features, alpha=0.2, **_: activations.leaky_relu(features, alpha=float(alpha)),
    "nn.elu": lambda features, **_: activations.elu(features), "nn.selu": lambda features, **_: activations.selu(features),
    "math.softplus": lambda features, **_: activations.softplus(features), "nn.softplus": lambda features, **_: activations.softplus(features),
    "nn.log_softmax": lambda logits, axis=None, **_: activations.log_softmax(logits, -1 if axis is None else axis),
    "math.log_softmax": lambda logits, axis=None, **_: activations.log_softmax(logits, -1 if axis is None else axis),
    "math.erf": lambda x, **_: _special.erf(x).astype(np.asarray(x).dtype),
    "math.log1p": lambda x, **_: np.log1p(x), "math.sin": lambda x, **_: np.sin(x), "math.cos": lambda x, **_: np.cos(x),
    "math.floor": lambda x, **_: np.floor(x), "math.ceil": lambda x, **_: np.ceil(x), "math.round": lambda x, **_: np.round(x),
    "math.sign": lambda x, **_: np.sign(x), "math.reciprocal": lambda x, **_: np.reciprocal(x),
}
#: The name of each function's first argument in TensorFlow (how tf-keras passes the tensor).
_FIRST_ARG = {"concat": "values", "stack": "values", "reshape": "tensor", "expand_dims": "input", "squeeze": "input",
              "compat.v1.squeeze": "input", "transpose": "a", "identity": "input", "__operators__.getitem": "tensor",
              "cast": "x", "clip_by_value": "t", "where": "condition", "where_v2": "condition", "linalg.matmul": "a",
              "matmul": "a", "compat.v1.transpose": "a"}


class TFOpLambda(Layer):
    """A TensorFlow function node of a tf-keras functional model, computed with NumPy.

    Raises:
        ValueError: ``function`` is not in :data:`FUNCTIONS` (the message names it).
    """

    def __init__(self, function: str, **kwargs: Any):
        kwargs.pop("dtype", None)
        super().__init__(**kwargs)
        if function not in FUNCTIONS:
            raise ValueError(
                f"TFOpLambda {self.name!r}: the TensorFlow function tf.{function} is not supported by klayers "
                f"(supported: {', '.join('tf.' + k for k in sorted(FUNCTIONS))})."
            )
        self.function = function
        self._fn = FUNCTIONS[function]
        self._next_shape: Any = None

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("name", None)
        kwargs.pop("training", None)
        kwargs.pop("mask", None)
        first = _FIRST_ARG.get(self.function)
        if first is not None:
            kwargs[first] = inputs
            return self._fn(*args, **kwargs)
        return self._fn(inputs, *args, **kwargs)

    #: function names whose node ``f(x, y=<number>)`` is an element-wise ``x <op> number``
    _SCALAR_OPS = {"__operators__.add": "add", "math.add": "add", "__operators__.mul": "multiply",
                   "math.multiply": "multiply"}

    def _scalar_spec(self, node: Any) -> Any:
        """``(op, number)`` when ``node`` (one of this layer's nodes) computes ``x + number`` or
        ``x * number`` on one float tensor (read by the inference planner, which folds tf-keras's
        hard sigmoid ``ReLU(6)(x + 3) * (1 / 6)`` into one kernel); None otherwise."""
        op = self._SCALAR_OPS.get(self.function)
        kwargs = {k: v for k, v in node.call_kwargs.items() if not (k == "name" and v is None)}
        if (op is None or len(node.call_args) != 1 or not isinstance(node.call_args[0], KerasTensor)
                or set(kwargs) != {"y"} or isinstance(kwargs["y"], bool) or not isinstance(kwargs["y"], (int, float))):
            return None
        return op, float(kwargs["y"])

    def _convert_inputs(self, inputs: Any) -> Any:
        return map_structure(lambda x: np.asarray(x) if x is not None else None, inputs)

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        # The output shape depends on the call's arguments (axis, keepdims, shape ...): run the
        # function once on small arrays of the symbolic shapes (unknown dimensions set to 2).
        def dummy(t):
            if isinstance(t, KerasTensor):
                return np.ones(tuple(2 if d is None else d for d in t.shape), dtype=t.dtype)
            return t

        out = self.call(map_structure(dummy, inputs), *map_structure(dummy, list(args)), **map_structure(dummy, dict(kwargs)))
        out = np.asarray(out)
        batch_unknown = any(isinstance(t, KerasTensor) and t.shape and t.shape[0] is None for t in flatten((inputs, args, kwargs)))
        shape = tuple(out.shape)
        if batch_unknown and shape:
            shape = (None,) + shape[1:]
        self._next_shape = shape
        self._next_dtype = str(out.dtype)
        if not any(isinstance(t, KerasTensor) for t in flatten(inputs)):
            # a number first, the tensors after it: ``1.0 - t`` is ``tf.math.subtract(1.0, y=t)``
            # (``["_CONSTANT_VALUE", -1, 1.0, {"y": ...}]`` in the file)
            self._maybe_build_from_shape(())
            outputs = KerasTensor(tuple(None if d is None else int(d) for d in shape), dtype=self._next_dtype)
            Node(self, call_args=(inputs,) + tuple(args), call_kwargs=kwargs, outputs=outputs)
            return outputs
        return super()._symbolic_call(inputs, args, kwargs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self._next_shape is not None:
            return self._next_shape
        return super().compute_output_shape(input_shape)

    def _output_dtype(self, inputs: Any) -> str:
        return getattr(self, "_next_dtype", None) or self._dtype

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "trainable": self.trainable, "dtype": self._dtype, "function": self.function}

    def get_build_config(self):
        return None


class SlicingOpLambda(TFOpLambda):
    """``x[:, 0]``, ``x[..., 1:3]`` ... on a symbolic tensor of a tf-keras model: function
    ``__operators__.getitem`` with the index in the node's ``slice_spec``."""


TFOpLambda._keras_module = "tf_keras.src.layers.core.tf_op_layer"
TFOpLambda._keras_registered_name = "TFOpLambda"
SlicingOpLambda._keras_module = "tf_keras.src.layers.core.tf_op_layer"
SlicingOpLambda._keras_registered_name = "SlicingOpLambda"
__all__: List[str] = []  # graph nodes, not public layers
register_builtins("layer", globals(), ["TFOpLambda", "SlicingOpLambda"])
