"""NumPy versions of the element-wise, reduction and shape helpers of ``tf_keras.backend``
that user code (Lambda layers, custom activations) calls. Every function takes and returns
NumPy arrays; nothing here is symbolic."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import special as _special

from klayers.backend.config import _dtype

ArrayLike = Any
Axis = Union[None, int, Sequence[int]]

__all__ = [
    "abs",
    "all",
    "any",
    "argmax",
    "argmin",
    "batch_dot",
    "cast",
    "clip",
    "concatenate",
    "constant",
    "cos",
    "dot",
    "elu",
    "equal",
    "exp",
    "expand_dims",
    "flatten",
    "gather",
    "greater",
    "greater_equal",
    "hard_sigmoid",
    "int_shape",
    "is_keras_tensor",
    "l2_normalize",
    "less",
    "less_equal",
    "log",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "ndim",
    "not_equal",
    "ones",
    "ones_like",
    "permute_dimensions",
    "pow",
    "prod",
    "relu",
    "repeat_elements",
    "reshape",
    "round",
    "shape",
    "sigmoid",
    "sign",
    "sin",
    "softmax",
    "softplus",
    "softsign",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "sum",
    "switch",
    "tanh",
    "tile",
    "transpose",
    "var",
    "zeros",
    "zeros_like",
]

_builtin_abs, _builtin_max, _builtin_min, _builtin_round = abs, max, min, round
_builtin_all, _builtin_any, _builtin_pow, _builtin_sum = all, any, pow, sum

def constant(value: ArrayLike, dtype: Optional[str] = None, shape: Optional[Sequence[int]] = None) -> np.ndarray:
    """An array of ``value`` (broadcast to ``shape`` when given), dtype defaults to floatx."""
    arr = np.asarray(value, dtype=_dtype(dtype))
    if shape is not None:
        arr = np.broadcast_to(arr, tuple(shape)).copy() if arr.size != int(np.prod(shape)) else arr.reshape(tuple(shape))
    return arr


def zeros(shape: Sequence[int], dtype: Optional[str] = None) -> np.ndarray:
    """Zeros of ``shape``, dtype defaults to floatx."""
    return np.zeros(tuple(shape), dtype=_dtype(dtype))


def ones(shape: Sequence[int], dtype: Optional[str] = None) -> np.ndarray:
    """Ones of ``shape``, dtype defaults to floatx."""
    return np.ones(tuple(shape), dtype=_dtype(dtype))


def zeros_like(x: ArrayLike, dtype: Optional[str] = None) -> np.ndarray:
    """Zeros with ``x``'s shape (and dtype unless given)."""
    return np.zeros_like(np.asarray(x), dtype=None if dtype is None else np.dtype(dtype))


def ones_like(x: ArrayLike, dtype: Optional[str] = None) -> np.ndarray:
    """Ones with ``x``'s shape (and dtype unless given)."""
    return np.ones_like(np.asarray(x), dtype=None if dtype is None else np.dtype(dtype))


def cast(x: ArrayLike, dtype: str) -> np.ndarray:
    """``x`` converted to ``dtype``."""
    return np.asarray(x).astype(np.dtype(dtype))


def int_shape(x: Any) -> Optional[Tuple[Optional[int], ...]]:
    """The shape as a tuple of ints (None entries for unknown dimensions of symbolic tensors)."""
    shape_attr = getattr(x, "shape", None)
    if shape_attr is None:
        return np.shape(x)
    return tuple(None if d is None else int(d) for d in shape_attr)


def shape(x: ArrayLike) -> np.ndarray:
    """The shape as an int32 array (Keras returns the dynamic shape tensor)."""
    return np.asarray(np.shape(x), dtype="int32")


def ndim(x: Any) -> int:
    """The number of axes of ``x``."""
    return len(int_shape(x))


def is_keras_tensor(x: Any) -> bool:
    """True for a symbolic tensor from ``klayers.Input`` (an object with ``_keras_history``)."""
    return hasattr(x, "_keras_history")


def reshape(x: ArrayLike, shape: Sequence[int]) -> np.ndarray:
    """``x`` reshaped (one entry may be -1)."""
    return np.reshape(x, tuple(shape))


def flatten(x: ArrayLike) -> np.ndarray:
    """``x`` as a 1-D array."""
    return np.reshape(x, (-1,))


def permute_dimensions(x: ArrayLike, pattern: Sequence[int]) -> np.ndarray:
    """Axes of ``x`` reordered as ``pattern`` (a permutation of ``range(ndim)``)."""
    return np.transpose(x, tuple(pattern))


def transpose(x: ArrayLike) -> np.ndarray:
    """All axes reversed (a matrix transpose for 2-D ``x``)."""
    return np.transpose(x)


def expand_dims(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """``x`` with a new length-1 axis at ``axis``."""
    return np.expand_dims(x, axis)


def squeeze(x: ArrayLike, axis: int) -> np.ndarray:
    """``x`` with the length-1 ``axis`` removed."""
    return np.squeeze(x, axis)


def concatenate(tensors: Sequence[ArrayLike], axis: int = -1) -> np.ndarray:
    """Arrays joined along ``axis``."""
    return np.concatenate([np.asarray(t) for t in tensors], axis=axis)


def stack(x: Sequence[ArrayLike], axis: int = 0) -> np.ndarray:
    """Arrays stacked along a new ``axis``."""
    return np.stack([np.asarray(t) for t in x], axis=axis)


def tile(x: ArrayLike, n: Sequence[int]) -> np.ndarray:
    """``x`` repeated ``n[i]`` times along axis ``i``."""
    return np.tile(x, n)


def repeat_elements(x: ArrayLike, rep: int, axis: int) -> np.ndarray:
    """Each element repeated ``rep`` times along ``axis`` (``np.repeat``)."""
    return np.repeat(x, rep, axis=axis)


def gather(reference: ArrayLike, indices: ArrayLike) -> np.ndarray:
    """Rows of ``reference`` at ``indices`` (along axis 0)."""
    return np.take(reference, np.asarray(indices), axis=0)


def switch(condition: ArrayLike, then_expression: ArrayLike, else_expression: ArrayLike) -> np.ndarray:
    """Element-wise ``then`` where ``condition`` is true, ``else`` elsewhere."""
    then_v = then_expression() if callable(then_expression) else then_expression
    else_v = else_expression() if callable(else_expression) else else_expression
    return np.where(condition, then_v, else_v)


# ---------------------------------------------------------------- reductions


def _reduce(fn, x: ArrayLike, axis: Axis, keepdims: bool) -> np.ndarray:
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return np.asarray(fn(np.asarray(x), axis=axis, keepdims=keepdims))


def sum(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    """Sum over ``axis`` (all axes when None)."""
    return _reduce(np.sum, x, axis, keepdims)


def prod(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    """Product over ``axis`` (all axes when None)."""
    return _reduce(np.prod, x, axis, keepdims)


def mean(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    """Mean over ``axis`` (all axes when None)."""
    return _reduce(np.mean, x, axis, keepdims)


def max(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    """Maximum over ``axis`` (all axes when None)."""
    return _reduce(np.max, x, axis, keepdims)


def min(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    """Minimum over ``axis`` (all axes when None)."""
    return _reduce(np.min, x, axis, keepdims)


def var(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    """Population variance over ``axis``."""
    return _reduce(np.var, x, axis, keepdims)


def std(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    """Population standard deviation over ``axis``."""
    return _reduce(np.std, x, axis, keepdims)


def any(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    """Logical OR over ``axis``."""
    return _reduce(np.any, x, axis, keepdims)


def all(x: ArrayLike, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    """Logical AND over ``axis``."""
    return _reduce(np.all, x, axis, keepdims)


def argmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Index of the maximum along ``axis``."""
    return np.argmax(x, axis=axis)


def argmin(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Index of the minimum along ``axis``."""
    return np.argmin(x, axis=axis)


# ---------------------------------------------------------------- linear algebra


def dot(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Keras's ``K.dot``: contracts the last axis of ``x`` with the second-to-last of ``y``
    (the last when ``y`` is 1-D); ``(2, 3, 4) . (4, 5) -> (2, 3, 5)``,
    ``(2, 3) . (7, 3, 5) -> (2, 7, 5)``."""
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim <= 2 or x.ndim < 2:
        return np.tensordot(x, y, axes=([x.ndim - 1], [_builtin_max(y.ndim - 2, 0)]))
    return np.tensordot(x, y, axes=([x.ndim - 1], [y.ndim - 2]))


def batch_dot(x: ArrayLike, y: ArrayLike, axes: Union[None, int, Sequence[int]] = None) -> np.ndarray:
    """Per-sample dot product of ``x`` and ``y`` (batch axis 0), contracting ``axes``
    (default: last axis of ``x`` with the second-to-last of ``y``, or the last when ``y``
    is 2-D). A result of rank 1 is returned as ``(batch, 1)``, as Keras does."""
    x, y = np.asarray(x), np.asarray(y)
    if isinstance(axes, int):
        axes = (axes, axes)
    if axes is None:
        axes = (x.ndim - 1, y.ndim - 1 if y.ndim == 2 else y.ndim - 2)
    ax, ay = (a % n for a, n in zip(axes, (x.ndim, y.ndim)))
    if ax == 0 or ay == 0:
        raise ValueError(f"Cannot perform batch_dot over axis 0. Received: axes={axes}")
    out = np.stack([np.tensordot(x[i], y[i], axes=([ax - 1], [ay - 1])) for i in range(x.shape[0])])
    if out.ndim == 1:
        out = out[:, None]
    return out


def l2_normalize(x: ArrayLike, axis: Axis = None) -> np.ndarray:
    """``x / sqrt(max(sum(x**2, axis), 1e-12))`` as ``tf.math.l2_normalize``."""
    x = np.asarray(x)
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    sq = np.sum(np.square(x), axis=axis, keepdims=True)
    return x / np.sqrt(np.maximum(sq, np.asarray(1e-12, dtype=sq.dtype)))


# ---------------------------------------------------------------- element-wise


def _same_float(x: ArrayLike) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(_dtype(None))


def abs(x: ArrayLike) -> np.ndarray:
    """Element-wise absolute value."""
    return np.abs(x)


def square(x: ArrayLike) -> np.ndarray:
    """Element-wise square."""
    return np.square(x)


def sqrt(x: ArrayLike) -> np.ndarray:
    """Element-wise square root, negative inputs clipped to 0 (as tf-keras's ``K.sqrt``)."""
    x = _same_float(x)
    return np.sqrt(np.maximum(x, x.dtype.type(0)))


def exp(x: ArrayLike) -> np.ndarray:
    """Element-wise exponential."""
    return np.exp(_same_float(x))


def log(x: ArrayLike) -> np.ndarray:
    """Element-wise natural logarithm."""
    return np.log(_same_float(x))


def pow(x: ArrayLike, a: float) -> np.ndarray:
    """Element-wise ``x ** a``."""
    x = np.asarray(x)
    return np.power(x, np.asarray(a, dtype=x.dtype))


def sign(x: ArrayLike) -> np.ndarray:
    """Element-wise sign (-1, 0 or 1)."""
    return np.sign(x)


def round(x: ArrayLike) -> np.ndarray:
    """Element-wise rounding, half to even."""
    return np.round(x)


def sin(x: ArrayLike) -> np.ndarray:
    """Element-wise sine."""
    return np.sin(_same_float(x))


def cos(x: ArrayLike) -> np.ndarray:
    """Element-wise cosine."""
    return np.cos(_same_float(x))


def clip(x: ArrayLike, min_value: Optional[float], max_value: Optional[float]) -> np.ndarray:
    """Element-wise clip to ``[min_value, max_value]``; None bounds mean unbounded, and a
    ``max_value`` below ``min_value`` is raised to it (as tf-keras's ``K.clip``)."""
    x = np.asarray(x)
    if max_value is not None and min_value is not None and max_value < min_value:
        max_value = min_value
    lo = -np.inf if min_value is None else min_value
    hi = np.inf if max_value is None else max_value
    return np.clip(x, np.asarray(lo, x.dtype) if np.isfinite(lo) else lo, np.asarray(hi, x.dtype) if np.isfinite(hi) else hi).astype(x.dtype, copy=False)


def maximum(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Element-wise maximum."""
    return np.maximum(x, y)


def minimum(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Element-wise minimum."""
    return np.minimum(x, y)


def equal(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Element-wise ``x == y``."""
    return np.equal(x, y)


def not_equal(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Element-wise ``x != y``."""
    return np.not_equal(x, y)


def greater(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Element-wise ``x > y``."""
    return np.greater(x, y)


def greater_equal(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Element-wise ``x >= y``."""
    return np.greater_equal(x, y)


def less(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Element-wise ``x < y``."""
    return np.less(x, y)


def less_equal(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Element-wise ``x <= y``."""
    return np.less_equal(x, y)


# ---------------------------------------------------------------- activations (the maths lives here)


def tanh(x: ArrayLike) -> np.ndarray:
    """Element-wise hyperbolic tangent."""
    return np.tanh(_same_float(x))


def sigmoid(x: ArrayLike) -> np.ndarray:
    """Element-wise logistic ``1 / (1 + exp(-x))``, without overflow for large ``|x|``."""
    x = _same_float(x)
    return _special.expit(x).astype(x.dtype, copy=False)


def hard_sigmoid(x: ArrayLike) -> np.ndarray:
    """Keras 2's piecewise-linear sigmoid: ``clip(0.2 * x + 0.5, 0, 1)``."""
    x = _same_float(x)
    t = x.dtype.type
    return np.clip(x * t(0.2) + t(0.5), t(0), t(1))


def softplus(x: ArrayLike) -> np.ndarray:
    """Element-wise ``log(1 + exp(x))``, stable for large ``|x|``."""
    x = _same_float(x)
    return np.logaddexp(x, x.dtype.type(0))


def softsign(x: ArrayLike) -> np.ndarray:
    """Element-wise ``x / (1 + |x|)``."""
    x = _same_float(x)
    return x / (x.dtype.type(1) + np.abs(x))


def elu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """Element-wise ``x`` for ``x > 0`` and ``alpha * (exp(x) - 1)`` otherwise."""
    x = _same_float(x)
    neg = np.expm1(np.minimum(x, x.dtype.type(0)))
    return np.where(x > 0, x, x.dtype.type(alpha) * neg)


def relu(
    x: ArrayLike, alpha: float = 0.0, max_value: Optional[float] = None, threshold: float = 0.0
) -> np.ndarray:
    """tf-keras's rectifier: ``max_value`` for ``x >= max_value``, ``x`` for
    ``threshold < x < max_value``, ``alpha * (x - threshold)`` otherwise (``0`` for the
    default ``alpha=0``)."""
    x = _same_float(x)
    t = x.dtype.type
    if alpha != 0.0 and max_value is None and threshold == 0:
        return np.where(x >= 0, x, t(alpha) * x)
    negative_part = None
    if alpha != 0.0:
        negative_part = np.maximum(-x + t(threshold), t(0)) if threshold != 0 else np.maximum(-x, t(0))
    if threshold != 0:
        # NaN stays NaN (tf-keras computes x * cast(x > threshold), and NaN * 0 is NaN)
        out = np.where(x <= t(threshold), t(0), x)
    else:
        out = np.maximum(x, t(0))
    if max_value is not None:
        out = np.clip(out, t(0), t(max_value))
    if negative_part is not None:
        out = out - t(alpha) * negative_part
    return out


def softmax(x: ArrayLike, axis: Union[int, Tuple[int, ...]] = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x), axis)`` computed with the max subtracted (no overflow): the one
    NumPy softmax of klayers (``klayers.ops.softmax``'s reference twin; the compiled kernel
    computes the same). A slice holding NaN or +inf, or only -inf, comes out NaN, as in
    TensorFlow."""
    x = _same_float(x)
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    with np.errstate(invalid="ignore"):  # inf - inf in an all -inf or +inf slice: NaN, silently as TF
        out = x - np.max(x, axis=axis, keepdims=True)
        np.exp(out, out=out)
        out /= np.sum(out, axis=axis, keepdims=True)
    return out
