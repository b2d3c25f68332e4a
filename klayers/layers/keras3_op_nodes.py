"""More Keras 3 operation nodes: the ``keras.ops`` calls people write inside functional models
(``ops.mean(x, axis=1)``, ``x[:, 0]``, ``ops.concatenate([a, b])``, ``ops.relu(x)``, ...).

Each is a small weightless layer built from a table by one factory per kind (unary, reduction,
parametrized), with Keras 3.15's output shapes and dtypes (``compute_output_spec`` of
``keras/src/ops/numpy.py``, ``nn.py``, ``core.py``, ``math.py``) and the maths of its
TensorFlow backend. The binary ones (``Add`` ... ``Power``, ``Matmul``) extend
:class:`klayers.layers.keras3_ops._Binary`. Bad arguments raise ``ValueError`` naming the node.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from klayers import activations
from klayers.engine.keras_tensor import KerasTensor
from klayers.layers._keras3_dtypes import dtype_of as _dtype_of
from klayers.layers._keras3_dtypes import result_type
from klayers.layers.keras3_ops import _Binary, _broadcast, _is_number, _Op
from klayers.ops.softmax import softmax as _softmax
from klayers.serialization import register_builtins

_NUMPY, _NN, _CORE, _MATH = "keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.core", "keras.src.ops.math"

def _floating(dtype: str) -> str:
    """Sqrt, Exp, Log, Sin ...: a float dtype stays, anything else becomes float32."""
    return dtype if dtype in ("float16", "bfloat16", "float32", "float64") else "float32"


def _same(dtype: str) -> str:
    return dtype


def _bool_to_int32(dtype: str) -> str:
    return "int32" if dtype == "bool" else dtype


def _accumulate(dtype: str) -> str:
    """Sum and Prod: small integers and bools accumulate in 32 bits (as JAX)."""
    return {"bool": "int32", "int8": "int32", "int16": "int32", "uint8": "uint32", "uint16": "uint32"}.get(dtype, dtype)


def _err(op: Any, message: str) -> ValueError:
    return ValueError(f"Keras 3 operation {type(op).__name__} {op.name}: {message}")


def _axes(op: Any, axis: Any, rank: int) -> Tuple[int, ...]:
    """``axis`` (an int or a list of ints) as non-negative axes of a rank-``rank`` tensor."""
    items = [axis] if isinstance(axis, int) else list(axis)
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, int) or not -rank <= a < rank:
            raise _err(op, f"axis {a!r} is out of range for an input of rank {rank}.")
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise _err(op, f"repeated axis in {axis!r}.")
    return tuple(out)


class _Params(_Op):
    """An operation with constructor arguments, written to its config as Keras writes them
    (every argument, defaults included, as given)."""

    _params: Tuple[Tuple[str, Any], ...] = ()
    _required: Tuple[str, ...] = ()

    def __init__(self, *args: Any, name: str = None, **kwargs: Any):
        names = [p for p, _ in self._params]
        if len(args) > len(names):
            raise ValueError(f"Keras 3 operation {type(self).__name__}: too many arguments {args!r}.")
        values = dict(self._params)
        values.update(zip(names, args))
        for p in names:
            if p in kwargs:
                values[p] = kwargs.pop(p)
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        missing = [p for p in self._required if values.get(p) is None]
        if missing:
            raise _err(self, f"missing argument {missing[0]!r}.")
        for p in names:
            setattr(self, _attr(p), values[p])
        self._check()

    def _check(self) -> None:
        """Validate the arguments (raise :func:`_err`)."""

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, **{p: getattr(self, _attr(p)) for p, _ in self._params}}

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        # an argument named dtype (Cast, Prod) is a dtype name, not the layer's dtype policy
        return dict(config, dtype=self.dtype_) if "dtype" in dict(self._params) else config


def _attr(param: str) -> str:
    # ``dtype`` (Cast, Prod) is the Layer's own property: the argument is kept as ``dtype_``
    return "dtype_" if param == "dtype" else param


def _make(name: str, base: type, module: str, attrs: Dict[str, Any]) -> type:
    cls = type(name + "Op", (base,), dict(attrs, __module__=__name__))
    cls.__name__ = cls.__qualname__ = name  # Keras 3's class name
    cls._keras_module = module
    cls._keras_registered_name = name
    return cls


# -- unary elementwise ----------------------------------------------------------------------------
class _Unary(_Params):
    """``fn(x)`` elementwise; ``_rule`` maps the input dtype to the output's (and the one the
    maths runs in); ``_float_only``: TensorFlow's kernel takes floats only."""

    _rule: Callable[[str], str] = staticmethod(_same)
    _float_only = False

    def call(self, x: Any) -> Any:
        x = np.asarray(x)
        out = type(self)._rule(x.dtype.name)
        if self._float_only and x.dtype.kind != "f":
            raise _err(self, f"expects a floating input, received {x.dtype.name} (as TensorFlow).")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = self._apply(x.astype(out, copy=False) if out != "bool" else x)
        return np.asarray(y).astype(out, copy=False)

    def _apply(self, x: np.ndarray) -> Any:
        return type(self)._fn(x)

    def _output_dtype(self, inputs: Any) -> str:
        return type(self)._rule(inputs.dtype)


def _unary(name: str, fn: Callable, rule: Callable = _same, module: str = _NUMPY, float_only: bool = False,
           params: Tuple = (), apply: Callable = None) -> type:
    attrs: Dict[str, Any] = {"_fn": staticmethod(fn), "_rule": staticmethod(rule), "_float_only": float_only,
                             "_params": params, "__doc__": f"``keras.ops`` {name}."}
    if apply is not None:
        attrs["_apply"] = apply
    return _make(name, _Unary, module, attrs)


def _round(self: Any, x: np.ndarray) -> Any:
    # TensorFlow: integers kept for decimals >= 0; otherwise x * 10**d rounded half to even / 10**d
    d = int(self.decimals)
    if x.dtype.kind in "iub":
        if d >= 0:
            return x
        f = np.float32(10.0 ** d)
        return np.round(x.astype("float32") * f) / f
    f = x.dtype.type(10.0 ** d)
    return np.round(x * f) / f if d else np.round(x)


def _relu6(x):
    return np.clip(x, 0, 6).astype(x.dtype, copy=False)


def _softplus(x):
    return activations.softplus(x)


_UNARY_TABLE = [
    ("Negative", np.negative, _same), ("Abs", np.abs, _same), ("Absolute", np.abs, _same),
    ("Sign", np.sign, _same), ("Square", np.square, _bool_to_int32),
    ("Sqrt", np.sqrt, _floating), ("Exp", np.exp, _floating), ("Expm1", np.expm1, _floating),
    ("Log", np.log, _floating), ("Log1p", np.log1p, _floating), ("Sin", np.sin, _floating),
    ("Cos", np.cos, _floating), ("Tan", np.tan, _floating), ("Tanh", np.tanh, _floating),
    ("Floor", np.floor, _floating), ("Ceil", np.ceil, _floating), ("Reciprocal", np.reciprocal, _floating),
    ("LogicalNot", np.logical_not, lambda d: "bool"),
]
UNARY_OPS: Dict[str, type] = {name: _unary(name, fn, rule) for name, fn, rule in _UNARY_TABLE}
UNARY_OPS["Round"] = _unary("Round", None, params=(("decimals", 0),), apply=_round)
UNARY_OPS["Rsqrt"] = _unary("Rsqrt", lambda x: 1 / np.sqrt(x), _floating, _MATH)
# nn activations as operations: the input's dtype, floats only where TensorFlow's kernel is
_NN_TABLE = [
    ("Relu", lambda x: np.maximum(x, 0).astype(x.dtype, copy=False), False),
    ("Relu6", _relu6, False),
    ("Sigmoid", activations.sigmoid, True), ("Silu", activations.swish, True),
    ("HardSigmoid", activations.keras3.hard_sigmoid, True), ("HardSilu", activations.hard_silu, True),
    ("Softplus", _softplus, True), ("Softsign", activations.softsign, True), ("Selu", activations.selu, True),
]
NN_OPS: Dict[str, type] = {name: _unary(name, fn, module=_NN, float_only=f) for name, fn, f in _NN_TABLE}
NN_OPS["Elu"] = _unary("Elu", None, module=_NN, float_only=True, params=(("alpha", 1.0),),
                       apply=lambda self, x: activations.elu(x, float(self.alpha)))
NN_OPS["LeakyRelu"] = _unary("LeakyRelu", None, module=_NN, float_only=True, params=(("negative_slope", 0.2),),
                             apply=lambda self, x: activations.leaky_relu(x, alpha=float(self.negative_slope)))
NN_OPS["Gelu"] = _unary("Gelu", None, module=_NN, float_only=True, params=(("approximate", True),),
                        apply=lambda self, x: activations.gelu(x, approximate=bool(self.approximate)))


def _softmax_apply(self: Any, x: np.ndarray) -> Any:
    axis = _axes(self, self.axis, x.ndim) if self.axis is not None else tuple(range(x.ndim))
    if type(self).__name__ == "LogSoftmax":
        shifted = x - np.max(x, axis=axis, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return _softmax(x, axis if len(axis) > 1 else axis[0])


for _name in ("Softmax", "LogSoftmax"):
    NN_OPS[_name] = _unary(_name, None, module=_NN, float_only=True, params=(("axis", -1),), apply=_softmax_apply)


# -- reductions -------------------------------------------------------------------------------------
class _Reduce(_Params):
    """``fn(x, axis, keepdims)``; ``axis`` None reduces every axis (the batch one too)."""

    _rule: Callable[[str], str] = staticmethod(_same)
    _params = (("axis", None), ("keepdims", False))

    def _check(self) -> None:
        a = self.axis
        if not (a is None or (isinstance(a, int) and not isinstance(a, bool))
                or (isinstance(a, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in a))):
            raise _err(self, f"axis must be an int, a list of ints or None. Received axis={a!r}.")

    def _axis(self, rank: int) -> Any:
        return None if self.axis is None else _axes(self, self.axis, rank)

    def call(self, x: Any) -> Any:
        x = np.asarray(x)
        out = self._out_dtype(x.dtype.name)
        return np.asarray(self._reduce(x, self._axis(x.ndim), bool(self.keepdims), out)).astype(out, copy=False)

    def _reduce(self, x: np.ndarray, axis: Any, keepdims: bool, out: str) -> Any:
        return type(self)._fn(x.astype(out, copy=False), axis=axis, keepdims=keepdims)

    def _out_dtype(self, dtype: str) -> str:
        return type(self)._rule(dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = list(input_shape)
        axes = self._axis(len(shape))
        axes = range(len(shape)) if axes is None else axes
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i not in axes)

    def _output_dtype(self, inputs: Any) -> str:
        return self._out_dtype(inputs.dtype)


def _mean_dtype(dtype: str) -> str:
    return result_type(dtype, "float32") if dtype == "bool" or "int" in dtype else dtype


def _extreme(self: Any, x: np.ndarray, axis: Any, keepdims: bool, out: str) -> Any:
    # bool max / min are any / all (TensorFlow); `initial` joins the result
    if x.dtype == bool:
        y = (np.any if type(self).__name__ == "Max" else np.all)(x, axis=axis, keepdims=keepdims)
    else:
        y = type(self)._fn(x, axis=axis, keepdims=keepdims)
    if self.initial is not None:
        y = (np.maximum if type(self).__name__ == "Max" else np.minimum)(y, np.asarray(self.initial).astype(x.dtype))
    return y


def _reduction(name: str, fn: Callable, rule: Callable, extra: Tuple = (), **attrs: Any) -> type:
    return _make(name, _Reduce, attrs.pop("module", _NUMPY),
                 dict(attrs, _fn=staticmethod(fn), _rule=staticmethod(rule), _params=_Reduce._params + extra,
                      __doc__=f"``keras.ops`` {name}(x, axis, keepdims)."))


REDUCE_OPS: Dict[str, type] = {
    "Mean": _reduction("Mean", np.mean, _mean_dtype),
    "Sum": _reduction("Sum", np.sum, _accumulate),
    "Max": _reduction("Max", np.max, _same, (("initial", None),), _reduce=_extreme),
    "Min": _reduction("Min", np.min, _same, (("initial", None),), _reduce=_extreme),
    "Prod": _reduction("Prod", np.prod, _accumulate, (("dtype", None),),
                       _out_dtype=lambda self, d: np.dtype(self.dtype_).name if self.dtype_ else _accumulate(d)),
    "All": _reduction("All", np.all, lambda d: "bool"),
    "Argmax": _reduction("Argmax", np.argmax, lambda d: "int32",
                         _reduce=lambda self, x, axis, keepdims, out: _arg(np.argmax, x, axis, keepdims)),
    "Argmin": _reduction("Argmin", np.argmin, lambda d: "int32",
                         _reduce=lambda self, x, axis, keepdims, out: _arg(np.argmin, x, axis, keepdims)),
    "Logsumexp": _reduction("Logsumexp", None, _floating, module=_MATH,
                            _reduce=lambda self, x, axis, keepdims, out: _logsumexp(x.astype(out), axis, keepdims)),
}


def _arg(fn: Callable, x: np.ndarray, axis: Any, keepdims: bool) -> Any:
    if axis is None:
        return fn(x, keepdims=keepdims)
    if len(axis) != 1:
        raise ValueError(f"argmax / argmin take one axis, received {axis}.")
    return fn(x, axis=axis[0], keepdims=keepdims)


def _logsumexp(x: np.ndarray, axis: Any, keepdims: bool) -> Any:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


# -- operations with arguments and shapes of their own ----------------------------------------------
class _Args(_Params):
    """An operation whose call takes more than one argument (tensors, numbers, an index key):
    the symbolic call keeps them (``self._args``) for the output shape and dtype."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and not isinstance(args[0], (KerasTensor, list, tuple)) and any(isinstance(a, KerasTensor) for a in args[1:]):
            # a number first (``where(c, 1.0, x)`` has the condition first; this is for safety)
            raise _err(self, f"the first argument must be a tensor, received {args[0]!r}.")
        return super().__call__(*args, **kwargs)

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        if kwargs:
            raise _err(self, f"unexpected keyword arguments {sorted(kwargs)}.")
        self._args = (inputs,) + tuple(args)
        self._check_args(self._args)
        return super()._symbolic_call(inputs, args, kwargs)

    def _check_args(self, args: tuple) -> None:
        """Raise :func:`_err` for a wrong number or kind of arguments."""

    def compute_output_shape(self, input_shape: Any) -> Any:
        def shape(a):
            if isinstance(a, (list, tuple)) and a and all(isinstance(t, KerasTensor) for t in a):
                return [t.shape for t in a]
            return a.shape if isinstance(a, KerasTensor) else ()
        return self._shape([shape(a) for a in self._args])

    def _output_dtype(self, inputs: Any) -> str:
        return self._dtype_of(self._args)


def _n_args(op: Any, args: tuple, n: int) -> None:
    if len(args) != n:
        raise _err(op, f"expected {n} argument{'s' if n > 1 else ''}, received {len(args)}.")


def _tensor_list(op: Any, args: tuple) -> None:
    _n_args(op, args, 1)
    if not (isinstance(args[0], (list, tuple)) and args[0] and all(isinstance(t, KerasTensor) for t in args[0])):
        raise _err(op, f"expects a list of tensors, received {args[0]!r}.")


class Reshape(_Args):
    """``keras.ops.reshape(x, newshape)`` (the batch axis included in ``newshape``)."""

    _params = (("newshape", None),)
    _required = ("newshape",)

    def _check(self) -> None:
        s = self.newshape
        s = [s] if isinstance(s, int) else s
        if not (isinstance(s, (list, tuple)) and all(isinstance(d, int) and d >= -1 for d in s) and list(s).count(-1) <= 1):
            raise _err(self, f"newshape must be a list of sizes with at most one -1. Received newshape={self.newshape!r}.")

    def _check_args(self, args):
        _n_args(self, args, 1)

    def call(self, x: Any) -> Any:
        return np.reshape(x, self.newshape)

    def _shape(self, shapes):
        (shape,), new = shapes, [self.newshape] if isinstance(self.newshape, int) else list(self.newshape)
        if None in shape:
            return tuple(None if d == -1 else d for d in new)
        size, known = math.prod(shape), math.prod(d for d in new if d != -1)
        if (-1 not in new and known != size) or (-1 in new and (known == 0 or size % known)):
            raise _err(self, f"cannot reshape {shape} to {tuple(new)}.")
        return tuple(size // known if d == -1 else d for d in new)

    def _dtype_of(self, args):
        return args[0].dtype


class Transpose(_Args):
    """``keras.ops.transpose(x, axes)``."""

    _params = (("axes", None),)

    def _check_args(self, args):
        _n_args(self, args, 1)
        if self.axes is not None and sorted(_axes(self, self.axes, len(args[0].shape))) != list(range(len(args[0].shape))):
            raise _err(self, f"axes {self.axes!r} is not a permutation of the input's {len(args[0].shape)} axes.")

    def call(self, x: Any) -> Any:
        return np.transpose(x, self.axes)

    def _shape(self, shapes):
        shape = shapes[0]
        return tuple(shape[a] for a in (self.axes if self.axes is not None else reversed(range(len(shape)))))

    def _dtype_of(self, args):
        return args[0].dtype


class ExpandDims(_Args):
    """``keras.ops.expand_dims(x, axis)`` (an int or a list of ints)."""

    _params = (("axis", None),)
    _required = ("axis",)

    def _check_args(self, args):
        _n_args(self, args, 1)
        self._shape([args[0].shape])

    def call(self, x: Any) -> Any:
        return np.expand_dims(x, self.axis if isinstance(self.axis, int) else tuple(self.axis))

    def _shape(self, shapes):
        shape = list(shapes[0])
        axes = _axes(self, self.axis, len(shape) + len([self.axis] if isinstance(self.axis, int) else self.axis))
        out = iter(shape)
        return tuple(1 if i in axes else next(out) for i in range(len(shape) + len(axes)))

    def _dtype_of(self, args):
        return args[0].dtype


class Squeeze(_Args):
    """``keras.ops.squeeze(x, axis=None)``."""

    _params = (("axis", None),)

    def _check_args(self, args):
        _n_args(self, args, 1)
        self._shape([args[0].shape])

    def call(self, x: Any) -> Any:
        x = np.asarray(x)
        return np.squeeze(x, None if self.axis is None else _axes(self, self.axis, x.ndim))

    def _shape(self, shapes):
        shape = shapes[0]
        if self.axis is None:
            return tuple(d for d in shape if d != 1)
        axes = _axes(self, self.axis, len(shape))
        if any(shape[a] not in (1, None) for a in axes):
            raise _err(self, f"cannot squeeze axis {self.axis!r} of shape {tuple(shape)}: its size is not 1.")
        return tuple(d for i, d in enumerate(shape) if i not in axes)

    def _dtype_of(self, args):
        return args[0].dtype


class Concatenate(_Args):
    """``keras.ops.concatenate([x1, x2, ...], axis=0)``: the dtypes promoted as Keras 3."""

    _params = (("axis", 0),)

    def _check_args(self, args):
        _tensor_list(self, args)
        self._shape([[t.shape for t in args[0]]])

    def call(self, xs: Any) -> Any:
        dtype = result_type(*[np.asarray(x) for x in xs])
        return np.concatenate([np.asarray(x).astype(dtype, copy=False) for x in xs], axis=self.axis)

    def _shape(self, shapes):
        shapes = shapes[0]
        if len({len(s) for s in shapes}) != 1:
            raise _err(self, f"inputs of different ranks {shapes}.")
        (axis,) = _axes(self, self.axis, len(shapes[0]))
        out = []
        for i, dims in enumerate(zip(*shapes)):
            if i == axis:
                out.append(None if None in dims else sum(dims))
                continue
            known = {d for d in dims if d is not None}
            if len(known) > 1:
                raise _err(self, f"shapes {shapes} differ off the concatenation axis {self.axis}.")
            out.append(known.pop() if known else None)
        return tuple(out)

    def _dtype_of(self, args):
        return result_type(*args[0])


class Stack(_Args):
    """``keras.ops.stack([x1, x2, ...], axis=0)``."""

    _params = (("axis", 0),)

    def _check_args(self, args):
        _tensor_list(self, args)
        self._shape([[t.shape for t in args[0]]])

    def call(self, xs: Any) -> Any:
        dtype = result_type(*[np.asarray(x) for x in xs])
        return np.stack([np.asarray(x).astype(dtype, copy=False) for x in xs], axis=self.axis)

    def _shape(self, shapes):
        shapes = shapes[0]
        if len({len(s) for s in shapes}) != 1 or any(
                len({d for d in dims if d is not None}) > 1 for dims in zip(*shapes)):
            raise _err(self, f"stacks tensors of different shapes {shapes}.")
        (axis,) = _axes(self, self.axis, len(shapes[0]) + 1)
        shape = [next((d for d in dims if d is not None), None) for dims in zip(*shapes)]
        return tuple(shape[:axis] + [len(shapes)] + shape[axis:])

    def _dtype_of(self, args):
        return result_type(*args[0])


class Cast(_Args):
    """``keras.ops.cast(x, dtype)`` (TensorFlow's cast: floats truncate toward zero)."""

    _params = (("dtype", None),)
    _required = ("dtype",)

    def _check(self) -> None:
        try:
            self._target = np.dtype(self.dtype_).name
        except TypeError:
            raise _err(self, f"unknown dtype {self.dtype_!r}.") from None

    def _check_args(self, args):
        _n_args(self, args, 1)

    def call(self, x: Any) -> Any:
        return np.asarray(x).astype(self._target)

    def _shape(self, shapes):
        return tuple(shapes[0])

    def _dtype_of(self, args):
        return self._target


class ConvertToTensor(_Args):
    """``keras.ops.convert_to_tensor(x, dtype, sparse, ragged)``: what Keras 3 writes for the
    output mask of an attention layer (``compute_mask`` converts the query's mask); the input,
    cast to ``dtype`` when one is given."""

    _params = (("dtype", None), ("sparse", None), ("ragged", None))

    def _check(self) -> None:
        try:
            self._target = None if self.dtype_ is None else np.dtype(self.dtype_).name
        except TypeError:
            raise _err(self, f"unknown dtype {self.dtype_!r}.") from None
        if self.sparse or self.ragged:
            raise _err(self, "sparse and ragged tensors are not supported.")

    def _check_args(self, args):
        _n_args(self, args, 1)

    def call(self, x: Any) -> Any:
        x = np.asarray(x)
        return x if self._target is None else x.astype(self._target)

    def _shape(self, shapes):
        return tuple(shapes[0])

    def _dtype_of(self, args):
        return self._target or _dtype_of(args[0])[0]


class Clip(_Args):
    """``keras.ops.clip(x, x_min, x_max)`` (bool inputs clip as int32)."""

    _params = (("x_min", None), ("x_max", None))
    _required = ("x_min", "x_max")

    def _check(self) -> None:
        if not (_is_number(self.x_min) and _is_number(self.x_max)):
            raise _err(self, f"x_min and x_max must be numbers. Received {self.x_min!r}, {self.x_max!r}.")

    def _check_args(self, args):
        _n_args(self, args, 1)

    def call(self, x: Any) -> Any:
        x = np.asarray(x)
        out = _bool_to_int32(x.dtype.name)
        return np.clip(x.astype(out), self.x_min, self.x_max).astype(out, copy=False)

    def _shape(self, shapes):
        return tuple(shapes[0])

    def _dtype_of(self, args):
        return _bool_to_int32(args[0].dtype)


class Where(_Args):
    """``keras.ops.where(condition, x1, x2)`` (a number may stand for x1 or x2)."""

    def _check_args(self, args):
        _n_args(self, args, 3)
        for a in args[1:]:
            if not (isinstance(a, KerasTensor) or _is_number(a) or isinstance(a, bool)):
                raise _err(self, f"x1 and x2 must be tensors or numbers, received {a!r}.")

    def call(self, condition: Any, x1: Any = None, x2: Any = None) -> Any:
        if x1 is None or x2 is None:
            raise _err(self, "where(condition) without x1 and x2 is not supported by klayers.")
        dtype = result_type(*(v if _is_number(v) else np.asarray(v) for v in (x1, x2)))
        return np.where(np.asarray(condition).astype(bool), np.asarray(x1).astype(dtype), np.asarray(x2).astype(dtype))

    def _shape(self, shapes):
        return functools.reduce(lambda a, b: _broadcast(a, tuple(b), self.name), shapes[1:], tuple(shapes[0]))

    def _dtype_of(self, args):
        return result_type(*args[1:])


class Einsum(_Args):
    """``keras.ops.einsum(subscripts, *operands)``: the output shape from the subscripts."""

    _params = (("subscripts", None),)
    _required = ("subscripts",)

    def _check(self) -> None:
        if not isinstance(self.subscripts, str):
            raise _err(self, f"subscripts must be a string. Received {self.subscripts!r}.")

    def _check_args(self, args):
        if not all(isinstance(a, KerasTensor) for a in args) or self.subscripts.split("->")[0].count(",") + 1 != len(args):
            raise _err(self, f"subscripts {self.subscripts!r} do not match {len(args)} operands.")
        self._shape([a.shape for a in args])

    def call(self, *operands: Any) -> Any:
        dtype = result_type(*[np.asarray(o) for o in operands])
        return np.einsum(self.subscripts, *[np.asarray(o).astype(dtype, copy=False) for o in operands])

    def _shape(self, shapes):
        # NumPy's einsum on arrays of the shapes, unknown sizes taken as 2, then as 3: sizes
        # that change are unknown
        outs = []
        for n in (2, 3):
            try:
                arrays = [np.zeros(tuple(n if d is None else d for d in s), "float32") for s in shapes]
                outs.append(np.einsum(self.subscripts, *arrays).shape)
            except ValueError as e:
                raise _err(self, f"subscripts {self.subscripts!r} do not fit the operand shapes {shapes} ({e}).") from None
        return tuple(a if a == b else None for a, b in zip(*outs))

    def _dtype_of(self, args):
        return result_type(*args)


def _decode_key(op: Any, key: Any) -> Any:
    """A ``GetItem`` key as Keras 3 serializes it (``{"class_name": "__slice__"}``,
    ``"__ellipsis__"``, ints, None) -> a Python index."""
    if isinstance(key, dict):
        cls, cfg = key.get("class_name"), key.get("config") or {}
        if cls == "__ellipsis__":
            return Ellipsis
        if cls == "__slice__" and set(cfg) <= {"start", "stop", "step"}:
            parts = [cfg.get(k) for k in ("start", "stop", "step")]
            if all(p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts) and parts[2] != 0:
                return slice(*parts)
        raise _err(op, f"unsupported index {key!r}.")
    if isinstance(key, (list, tuple)):
        return tuple(_decode_key(op, k) for k in key)
    if isinstance(key, (slice, type(Ellipsis))) or key is None or (isinstance(key, int) and not isinstance(key, bool)):
        return key
    raise _err(op, f"unsupported index {key!r} (integers, slices, None and ... only).")


class GetItem(_Args):
    """``x[key]`` on a symbolic tensor (``x[:, 0]``, ``x[..., 1:3]``, ``x[:, ::2]``, ``x[:, None]``)."""

    def _check_args(self, args):
        _n_args(self, args, 2)
        self._shape([args[0].shape, None])

    def call(self, x: Any, key: Any = None) -> Any:
        return np.asarray(x)[_decode_key(self, key)]

    def _shape(self, shapes):
        # Keras 3's GetItem.compute_output_spec
        key = _decode_key(self, self._args[1])
        remaining, out = list(shapes[0]), []
        keys = list(key) if isinstance(key, tuple) else [key]
        if keys.count(Ellipsis) > 1:
            raise _err(self, f"an index has at most one ellipsis. Received {key!r}.")
        if Ellipsis not in keys:
            keys.append(Ellipsis)
        while keys:
            k = keys.pop(0)
            if k is Ellipsis:
                consumed = len(remaining) - (len(keys) - keys.count(None))
                out += remaining[:consumed]
                remaining = remaining[consumed:]
                continue
            if k is None:
                out.append(1)
                continue
            if not remaining:
                raise _err(self, f"too many indices {key!r} for shape {tuple(shapes[0])}.")
            length = remaining.pop(0)
            if isinstance(k, int):
                if length is not None and not -length <= k < length:
                    raise _err(self, f"index {k} is out of bounds for shape {tuple(shapes[0])}.")
            else:
                out.append(None if length is None else len(range(*k.indices(length))))
        return tuple(out)

    def _dtype_of(self, args):
        return args[0].dtype


class Matmul(_Binary):
    """``keras.ops.matmul(x1, x2)`` (two tensors; int8 x int8 gives int32)."""

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        if len(args) != 1 or kwargs or not isinstance(args[0], KerasTensor):
            raise _err(self, "expects two tensors.")
        return super()._symbolic_call(inputs, args, kwargs)

    def _promote(self, a: Any, b: Any) -> str:
        da, db = _dtype_of(a)[0], _dtype_of(b)[0]
        return "int32" if da == db == "int8" else result_type(a, b)

    def call(self, x: Any, y: Any = None) -> Any:
        out = self._promote(np.asarray(x), np.asarray(y))
        return np.matmul(np.asarray(x).astype(out), np.asarray(y).astype(out))

    def compute_output_shape(self, input_shape: Any) -> Any:
        a, b = list(input_shape), list(self._other.shape)
        if not a or not b:
            raise _err(self, "matmul needs operands of rank 1 or more.")
        a1, b1 = len(a) == 1, len(b) == 1
        a, b = ([1] + a if a1 else a), (b + [1] if b1 else b)
        if a[-1] is not None and b[-2] is not None and a[-1] != b[-2]:
            raise _err(self, f"inner sizes differ: {tuple(input_shape)} @ {tuple(self._other.shape)}.")
        out = list(_broadcast(tuple(a[:-2]), tuple(b[:-2]), self.name)) + ([] if a1 else [a[-2]]) + ([] if b1 else [b[-1]])
        return tuple(out)


MORE_OPS: Dict[str, type] = {**UNARY_OPS, **NN_OPS, **REDUCE_OPS}
for _cls, _module in ((Reshape, _NUMPY), (Transpose, _NUMPY), (ExpandDims, _NUMPY), (Squeeze, _NUMPY),
                      (Concatenate, _NUMPY), (Stack, _NUMPY), (Cast, _CORE), (ConvertToTensor, _CORE), (Clip, _NUMPY), (Where, _NUMPY),
                      (Einsum, _NUMPY), (GetItem, _NUMPY), (Matmul, _NUMPY)):
    _cls._keras_module, _cls._keras_registered_name = _module, _cls.__name__
    MORE_OPS[_cls.__name__] = _cls
__all__: List[str] = []  # graph nodes, not public layers
register_builtins("keras3_op", MORE_OPS, list(MORE_OPS))
# a mask operation (attention layers' output masks): Keras 3's legacy .h5 writer writes it with no
# module, so it is looked up among the layers too, as NotEqual is
register_builtins("layer", {"ConvertToTensor": ConvertToTensor}, ["ConvertToTensor"])
