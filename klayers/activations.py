"""Built-in activation functions, as ``tf_keras.activations`` (plus Keras 3's additions).

Every function takes a NumPy array (or anything ``np.asarray`` accepts) and returns a NumPy
array of the same shape. Floating inputs keep their dtype (float32 in, float32 out); other
inputs are cast to :func:`klayers.backend.floatx` first. The exponential-type functions
(softmax, log_softmax, softplus, sigmoid, log_sigmoid, mish ...) are computed so that inputs
of magnitude 1e4 neither overflow nor give NaN.

Two Keras dialects. A few names mean different things in Keras 2 (tf-keras) and Keras 3:

* ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)`` in Keras 2, ``relu6(x + 3) / 6`` in Keras 3;
* ``relu`` / ``leaky_relu``: the slope argument is ``alpha`` in Keras 2, ``negative_slope``
  in Keras 3 (same maths).

The module-level functions are the Keras 2 ones. :func:`get` / :func:`deserialize` return the
Keras 3 objects while ``klayers.serialization.get_dialect() == 3`` (loaders of Keras 3
configs set it with ``dialect_scope(3)``). The Keras 3 objects are reachable directly as
``klayers.activations.keras3.<name>`` and serialize back to the same names
(``serialize(keras3.hard_sigmoid) == "hard_sigmoid"``). Names that exist only in Keras 3
(``celu``, ``glu``, ``sparsemax`` ...) have one meaning and resolve in both dialects.
"""

from __future__ import annotations

import types
from typing import Any, Callable, Dict, Mapping, Optional, Union

import numpy as np
from scipy import special as _special

from klayers import backend
from klayers.serialization import (
    deserialize_keras_object,
    get_dialect,
    registry,
    serialize_keras_object,
)

__all__ = [
    "celu",
    "deserialize",
    "elu",
    "exponential",
    "gelu",
    "get",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serialize",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
    "threshold",
]

ArrayLike = Any
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _f(x: ArrayLike) -> np.ndarray:
    """``x`` as a floating array: floating dtypes kept, anything else cast to floatx."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating):
        return x
    return x.astype(backend.floatx() if backend.floatx() != "bfloat16" else "float32")


def _c(x: np.ndarray, value: float) -> np.generic:
    """A scalar in ``x``'s dtype, so NumPy does not promote float32 to float64."""
    return x.dtype.type(value)


# --------------------------------------------------------------------------- Keras 2 functions


def softmax(x: ArrayLike, axis: Union[int, tuple] = -1) -> np.ndarray:
    """Softmax over ``axis``: ``exp(x) / sum(exp(x), axis)``, max-shifted so no overflow.

    Raises:
        ValueError: ``x`` has rank 0 or 1 (as tf-keras).
    """
    x = _f(x)
    if x.ndim <= 1:
        raise ValueError(f"Cannot apply softmax to a tensor that is 1D. Received input: {x}")
    return backend.softmax(x, axis=axis)


def elu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """Exponential linear unit: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    return backend.elu(_f(x), alpha)


def selu(x: ArrayLike) -> np.ndarray:
    """Scaled ELU: ``scale * elu(x, alpha)`` with ``alpha=1.67326324``, ``scale=1.05070098``."""
    x = _f(x)
    return _c(x, _SELU_SCALE) * backend.elu(x, _SELU_ALPHA)


def softplus(x: ArrayLike) -> np.ndarray:
    """``log(exp(x) + 1)``, computed as ``logaddexp(x, 0)`` (stable)."""
    return backend.softplus(_f(x))


def softsign(x: ArrayLike) -> np.ndarray:
    """``x / (abs(x) + 1)``."""
    return backend.softsign(_f(x))


def swish(x: ArrayLike) -> np.ndarray:
    """Swish / SiLU: ``x * sigmoid(x)``."""
    x = _f(x)
    return x * backend.sigmoid(x)


def relu(
    x: ArrayLike,
    alpha: float = 0.0,
    max_value: Optional[float] = None,
    threshold: float = 0.0,
    *,
    negative_slope: Optional[float] = None,
) -> np.ndarray:
    """Rectified linear unit (tf-keras): ``max_value`` for ``x >= max_value``, ``x`` for
    ``threshold < x < max_value``, else ``alpha * (x - threshold)``.

    ``negative_slope`` (Keras 3's name for ``alpha``) is accepted as a keyword alias.
    """
    if negative_slope is not None:
        alpha = negative_slope
    return backend.relu(_f(x), alpha=alpha, max_value=max_value, threshold=threshold)


def gelu(x: ArrayLike, approximate: bool = False) -> np.ndarray:
    """Gaussian error linear unit: ``x * P(X <= x)`` for ``X ~ N(0, 1)`` (``approximate=False``),
    or the tanh approximation ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    x = _f(x)
    if approximate:
        with np.errstate(over="ignore"):
            inner = _c(x, np.sqrt(2.0 / np.pi)) * (x + _c(x, 0.044715) * (x * x * x))
        return _c(x, 0.5) * x * (_c(x, 1.0) + np.tanh(inner))
    # erfc keeps the far negative tail accurate (as TF's gelu)
    return (_c(x, 0.5) * x * _special.erfc(-x / _c(x, np.sqrt(2.0)))).astype(x.dtype, copy=False)


def tanh(x: ArrayLike) -> np.ndarray:
    """Hyperbolic tangent."""
    return backend.tanh(_f(x))


def sigmoid(x: ArrayLike) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-x))`` (stable for large ``|x|``)."""
    return backend.sigmoid(_f(x))


def exponential(x: ArrayLike) -> np.ndarray:
    """``exp(x)`` (``inf`` where it overflows, as Keras)."""
    x = _f(x)
    with np.errstate(over="ignore"):
        return np.exp(x)


def hard_sigmoid(x: ArrayLike) -> np.ndarray:
    """Keras 2's hard sigmoid: ``clip(0.2 x + 0.5, 0, 1)``. (Keras 3's is
    :func:`keras3.hard_sigmoid <_k3_hard_sigmoid>`: ``relu6(x + 3) / 6``.)"""
    return backend.hard_sigmoid(_f(x))


def linear(x: ArrayLike) -> ArrayLike:
    """Identity: returns ``x`` unchanged."""
    return x


def mish(x: ArrayLike) -> np.ndarray:
    """Mish: ``x * tanh(softplus(x))``."""
    x = _f(x)
    return x * np.tanh(backend.softplus(x))


def leaky_relu(x: ArrayLike, alpha: float = 0.2, *, negative_slope: Optional[float] = None) -> np.ndarray:
    """Leaky ReLU (``tf.nn.leaky_relu``): ``x`` for ``x >= 0`` else ``alpha * x``.
    ``negative_slope`` (Keras 3's name) is accepted as a keyword alias."""
    if negative_slope is not None:
        alpha = negative_slope
    x = _f(x)
    return np.where(x >= 0, x, _c(x, alpha) * x)


def log_softmax(x: ArrayLike, axis: Optional[int] = -1) -> np.ndarray:
    """``x - logsumexp(x, axis)`` (``axis=None`` means the last axis, as ``tf.nn.log_softmax``)."""
    x = _f(x)
    axis = -1 if axis is None else axis
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def relu6(x: ArrayLike) -> np.ndarray:
    """``min(max(x, 0), 6)``."""
    x = _f(x)
    return np.clip(x, _c(x, 0.0), _c(x, 6.0))


def silu(x: ArrayLike, beta: float = 1.0) -> np.ndarray:
    """SiLU / swish (``tf.nn.silu``): ``x * sigmoid(beta * x)``."""
    x = _f(x)
    return x * backend.sigmoid(x if beta == 1.0 else _c(x, beta) * x)


# --------------------------------------------------------------------------- Keras 3 additions


def celu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """Continuously-differentiable ELU: ``max(x, 0) + alpha * expm1(min(x, 0) / alpha)``."""
    x = _f(x)
    a = _c(x, alpha)
    return np.maximum(x, _c(x, 0)) + a * np.expm1(np.minimum(x, _c(x, 0)) / a)


def glu(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Gated linear unit: split ``x`` in halves ``a, b`` along ``axis``, return ``a * sigmoid(b)``.

    Raises:
        ValueError: the size of ``axis`` is odd.
    """
    x = _f(x)
    if x.shape[axis] % 2 != 0:
        raise ValueError(f"axis size must be divisible by 2. Received: x.shape={x.shape} with axis={axis}")
    a, b = np.split(x, 2, axis)
    return a * backend.sigmoid(b)


def hard_shrink(x: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """``x`` where ``|x| > threshold``, else 0."""
    x = _f(x)
    return np.where(np.abs(x) > _c(x, threshold), x, _c(x, 0))


def hard_silu(x: ArrayLike) -> np.ndarray:
    """Hard SiLU / hard swish (Keras 3): ``x * relu6(x + 3) / 6``."""
    x = _f(x)
    return x * _k3_hard_sigmoid(x)


hard_swish = hard_silu


def hard_tanh(x: ArrayLike) -> np.ndarray:
    """``clip(x, -1, 1)``."""
    x = _f(x)
    return np.clip(x, _c(x, -1), _c(x, 1))


def log_sigmoid(x: ArrayLike) -> np.ndarray:
    """``log(sigmoid(x)) = -softplus(-x)`` (stable)."""
    x = _f(x)
    return -backend.softplus(-x)


def soft_shrink(x: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """``x - threshold`` above ``threshold``, ``x + threshold`` below ``-threshold``, else 0."""
    x = _f(x)
    t = _c(x, threshold)
    return np.where(x > t, x - t, np.where(x < -t, x + t, _c(x, 0)))


def sparse_plus(x: ArrayLike) -> np.ndarray:
    """0 for ``x <= -1``, ``(x + 1)^2 / 4`` for ``-1 < x < 1``, ``x`` for ``x >= 1``."""
    x = _f(x)
    with np.errstate(over="ignore"):
        mid = _c(x, 0.25) * (x + _c(x, 1)) ** 2
    return np.where(x <= -1, _c(x, 0), np.where(x < 1, mid, x))


def sparse_sigmoid(x: ArrayLike) -> np.ndarray:
    """0 for ``x <= -1``, ``(x + 1) / 2`` for ``-1 < x < 1``, 1 for ``x >= 1``."""
    x = _f(x)
    return np.where(x <= -1, _c(x, 0), np.where(x >= 1, _c(x, 1), _c(x, 0.5) * (x + _c(x, 1))))


def sparsemax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Sparsemax (Martins & Astudillo 2016): the Euclidean projection of ``x`` onto the
    probability simplex along ``axis``; outputs are non-negative, sum to 1, often exactly 0."""
    x = _f(x)
    z = -np.sort(-x, axis=axis)
    cumsum = np.cumsum(z, axis=axis)
    r_shape = [1] * x.ndim
    r_shape[axis] = -1
    r = np.arange(1, x.shape[axis] + 1, dtype=x.dtype).reshape(r_shape)
    support = z - (cumsum - 1) / r > 0
    k = np.sum(support, axis=axis, keepdims=True)
    tau = (np.sum(np.where(support, cumsum, _c(x, 0)), axis=axis, keepdims=True) - 1) / k.astype(x.dtype)
    return np.maximum(x - tau, _c(x, 0))


def squareplus(x: ArrayLike, b: float = 4) -> np.ndarray:
    """``(x + sqrt(x^2 + b)) / 2``."""
    x = _f(x)
    with np.errstate(over="ignore"):
        return (x + np.sqrt(x * x + _c(x, b))) / _c(x, 2)


def tanh_shrink(x: ArrayLike) -> np.ndarray:
    """``x - tanh(x)``."""
    x = _f(x)
    return x - np.tanh(x)


def threshold(x: ArrayLike, threshold: float, default_value: float) -> np.ndarray:
    """``x`` where ``x > threshold``, else ``default_value``."""
    x = _f(x)
    return np.where(x > threshold, x, _c(x, default_value))


# --------------------------------------------------------------------------- Keras 3 variants


def _k3_relu(
    x: ArrayLike, negative_slope: float = 0.0, max_value: Optional[float] = None, threshold: float = 0.0
) -> np.ndarray:
    """Keras 3's relu: tf-keras's maths with ``alpha`` named ``negative_slope``."""
    return backend.relu(_f(x), alpha=negative_slope, max_value=max_value, threshold=threshold)


def _k3_leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> np.ndarray:
    """Keras 3's leaky_relu: ``x`` for ``x >= 0`` else ``negative_slope * x``."""
    return leaky_relu(x, alpha=negative_slope)


def _k3_hard_sigmoid(x: ArrayLike) -> np.ndarray:
    """Keras 3's hard sigmoid: ``relu6(x + 3) / 6`` = ``clip(x / 6 + 0.5, 0, 1)``."""
    x = _f(x)
    return np.clip(x / _c(x, 6.0) + _c(x, 0.5), _c(x, 0), _c(x, 1))


def _k3_silu(x: ArrayLike) -> np.ndarray:
    """Keras 3's silu / swish: ``x * sigmoid(x)``."""
    return swish(x)


for _fn, _name in ((_k3_relu, "relu"), (_k3_leaky_relu, "leaky_relu"), (_k3_hard_sigmoid, "hard_sigmoid"), (_k3_silu, "silu")):
    _fn.__name__ = _fn.__qualname__ = _name

_KERAS3_ONLY = [
    celu, glu, hard_shrink, hard_silu, hard_tanh, log_sigmoid, soft_shrink, sparse_plus,
    sparse_sigmoid, sparsemax, squareplus, tanh_shrink, threshold,
]  # fmt: skip

#: name -> function, as ``tf_keras.activations.deserialize`` resolves names (Keras 2).
KERAS2_OBJECTS: Dict[str, Callable] = {
    fn.__name__: fn
    for fn in [softmax, elu, selu, softplus, softsign, swish, relu, gelu, tanh, sigmoid, exponential,
               hard_sigmoid, linear, mish, leaky_relu, log_softmax, relu6, silu] + _KERAS3_ONLY
}  # fmt: skip
KERAS2_OBJECTS["hard_swish"] = hard_silu

#: name -> function, as ``keras.activations.get`` resolves names (Keras 3.15).
KERAS3_OBJECTS: Dict[str, Callable] = {
    fn.__name__: fn
    for fn in [_k3_relu, _k3_leaky_relu, relu6, softmax, celu, elu, selu, softplus, softsign,
               squareplus, soft_shrink, sparse_plus, _k3_silu, gelu, glu, tanh, tanh_shrink,
               threshold, sigmoid, sparse_sigmoid, exponential, _k3_hard_sigmoid, hard_silu,
               hard_tanh, hard_shrink, linear, mish, log_softmax, log_sigmoid, sparsemax]
}  # fmt: skip
KERAS3_OBJECTS["swish"] = _k3_silu
KERAS3_OBJECTS["hard_swish"] = hard_silu

#: The Keras 3 activation functions by attribute: ``keras3.hard_sigmoid(x)`` is ``relu6(x+3)/6``.
keras3 = types.SimpleNamespace(**KERAS3_OBJECTS)

_BUILTINS = {id(fn) for fn in list(KERAS2_OBJECTS.values()) + list(KERAS3_OBJECTS.values())}
_TF_ACTIVATIONS_V2 = {"softmax_v2": "softmax"}
# tf-keras's ``silu`` is ``tf.nn.silu``, whose ``__name__`` is ``swish``: it serializes as "swish".
_SERIALIZED_NAMES = {id(silu): "swish"}


def _module_objects() -> Dict[str, Callable]:
    return KERAS3_OBJECTS if get_dialect() == 3 else KERAS2_OBJECTS


def serialize(activation: Callable, use_legacy_format: bool = False) -> Union[str, Dict[str, Any]]:
    """The config of an activation, as ``tf_keras.activations.serialize``.

    A built-in function (of either dialect) gives its name (``"relu"``); a custom function
    gives what tf-keras 2.21 writes, ``{"module": "builtins", "class_name": "function",
    "config": <registered name, e.g. "MyPkg>my_act">, "registered_name": "function"}``; a
    callable object with ``get_config`` gives its object config.

    Raises:
        ValueError: ``activation`` cannot be serialized (no name and no ``get_config``).
    """
    name = getattr(activation, "__name__", None)
    if name in _TF_ACTIVATIONS_V2:
        return _TF_ACTIVATIONS_V2[name]
    if id(activation) in _BUILTINS:
        return _SERIALIZED_NAMES.get(id(activation), name)
    if isinstance(activation, types.FunctionType):
        # tf-keras serializes a custom function through its class (``function``, module
        # ``builtins``): registered_name is "function", config the registered name.
        return {
            "module": "builtins",
            "class_name": "function",
            "config": registry.get_registered_name(activation),
            "registered_name": "function",
        }
    try:
        fn_config = serialize_keras_object(activation)
    except TypeError as e:
        raise ValueError(
            f"Unknown activation function '{activation}' cannot be serialized due to invalid "
            "function name. Make sure to use an activation name that matches the references "
            "defined in activations.py or use `@klayers.saving.register_keras_serializable()` "
            "to register any custom activations."
        ) from e
    if not isinstance(fn_config, dict) or "config" not in fn_config:
        raise ValueError(f"Unknown activation function '{activation}' cannot be serialized. config={fn_config}")
    return fn_config


def deserialize(
    name: Union[str, Dict[str, Any]],
    custom_objects: Optional[Mapping[str, Any]] = None,
    use_legacy_format: bool = False,
) -> Callable:
    """The activation function a name or config denotes (Keras 3 meanings inside
    ``dialect_scope(3)``). Custom objects, the custom-object scope and registered functions
    are consulted first.

    Raises:
        ValueError: unknown name (the message names it).
    """
    fn = deserialize_keras_object(
        name,
        module_objects=_module_objects(),
        custom_objects=custom_objects,
        printable_module_name="activation function",
    )
    if isinstance(fn, str) or not callable(fn):
        raise ValueError(f"Unknown activation function '{name}' cannot be deserialized.")
    return fn


def get(identifier: Union[None, str, Dict[str, Any], Callable]) -> Callable:
    """Resolve an activation identifier: None gives :func:`linear`, a name or config is
    deserialized (dialect-aware), a callable passes through unchanged.

    Raises:
        ValueError: an unknown name.
        TypeError: anything else that is not callable.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret activation function identifier: {identifier}")
