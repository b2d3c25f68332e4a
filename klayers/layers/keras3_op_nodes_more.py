"""Keras 3 operation nodes, continued: the rest of the ``keras.ops`` calls a functional model
records (``ops.cumsum``, ``ops.take``, ``ops.split``, ``ops.pad``, ``ops.top_k``, ``ops.norm``,
``ops.one_hot`` ...), built on the bases of :mod:`klayers.layers.keras3_op_nodes`.

Output shapes and dtypes follow Keras 3.15's ``compute_output_spec`` (``keras/src/ops/numpy.py``,
``nn.py``, ``core.py``, ``math.py``, ``linalg.py``), the maths its TensorFlow backend. Operations
with several outputs (``Split``, ``Unstack``, ``TopK``) return a list, flattened as Keras does
(``["split", 0, 1]`` is the second piece). Bad arguments raise ``ValueError`` naming the node.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import numpy as np
from scipy import special

from klayers import activations
from klayers.engine.keras_tensor import KerasTensor
from klayers.layers._keras3_dtypes import result_type
from klayers.layers.keras3_op_nodes import (
    _CORE,
    _MATH,
    _NN,
    _NUMPY,
    _Args,
    _axes,
    _bool_to_int32,
    _err,
    _make,
    _n_args,
    _Params,
    _Reduce,
    _unary,
)
from klayers.layers.keras3_ops import _Binary, _broadcast, _is_number
from klayers.serialization import register_builtins

_LINALG = "keras.src.ops.linalg"


def _name(dtype: Any) -> str:
    return np.dtype(dtype).name


def _int_axis(op: Any, axis: Any, rank: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise _err(op, f"axis must be an int. Received axis={axis!r}.")
    return _axes(op, axis, rank)[0]


def _reduced(shape: Any, axes: Any, keepdims: bool) -> tuple:
    """Keras's ``reduce_shape`` (``axes`` non-negative, or None for every axis)."""
    axes = range(len(shape)) if axes is None else axes
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


# -- binary ---------------------------------------------------------------------------------------
class Mod(_Binary):
    """``keras.ops.mod(x1, x2)``: the floored remainder (the divisor's sign, as ``tf.math.mod``);
    bools compute as int32. TensorFlow's backend converts a number to a tensor first (float32,
    int32), so a number is not weak here: ``mod(float16, 0.7)`` is float32, as Keras predicts."""

    _fn = staticmethod(np.mod)

    def _promote(self, a: Any, b: Any) -> str:
        a, b = (("float32" if isinstance(v, (float, np.floating)) else "int32") if _is_number(v) else v for v in (a, b))
        return _bool_to_int32(result_type(a, b))


# -- unary elementwise ----------------------------------------------------------------------------
def _erfinv(x):
    # TensorFlow computes the half-precision ones in float32
    return special.erfinv(x.astype("float32") if x.dtype.itemsize < 4 else x)


def _log_sigmoid(x):
    return -np.logaddexp(np.zeros((), x.dtype), -x)


UNARY_MORE: Dict[str, type] = {
    "Erf": _unary("Erf", special.erf, module=_MATH, float_only=True),
    "Erfinv": _unary("Erfinv", _erfinv, module=_MATH, float_only=True),
    "LogSigmoid": _unary("LogSigmoid", _log_sigmoid, module=_NN, float_only=True),
    "HardTanh": _unary("HardTanh", lambda x: np.clip(x, -1, 1), module=_NN, float_only=True),
    "Celu": _unary("Celu", None, module=_NN, float_only=True, params=(("alpha", 1.0),),
                   apply=lambda self, x: np.maximum(x, 0) + x.dtype.type(self.alpha) * np.expm1(
                       np.minimum(x, 0) / x.dtype.type(self.alpha))),
    "Isnan": _unary("Isnan", np.isnan, lambda d: "bool"),
    "Isinf": _unary("Isinf", np.isinf, lambda d: "bool"),
    "Isfinite": _unary("Isfinite", np.isfinite, lambda d: "bool"),
    "NanToNum": _unary("NanToNum", None, params=(("nan", 0.0), ("posinf", None), ("neginf", None)),
                       apply=lambda self, x: x if x.dtype.kind != "f" else np.nan_to_num(
                           x, nan=self.nan, posinf=self.posinf, neginf=self.neginf)),
}


# -- one tensor in, shape and dtype of its own ------------------------------------------------------
class _One(_Args):
    """One tensor (then the numbers or lists Keras records after it); ``_call_kwargs`` names
    the keyword arguments Keras records (``pad(x, constant_values=...)``)."""

    _call_kwargs: Tuple[str, ...] = ()
    _n = 1

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        unknown = sorted(set(kwargs) - set(self._call_kwargs))
        if unknown:
            raise _err(self, f"unexpected keyword arguments {unknown}.")
        if not isinstance(inputs, KerasTensor):
            raise _err(self, f"expects a tensor first, received {inputs!r}.")
        self._kwargs = dict(kwargs)
        self._args = (inputs,) + tuple(args)
        _n_args(self, self._args, self._n)
        self._check_args(self._args)
        return _Params._symbolic_call(self, inputs, args, kwargs)  # the Layer's

    def _shape(self, shapes):
        return tuple(shapes[0])

    def _dtype_of(self, args):
        return args[0].dtype


class _Multi(_One):
    """An operation with several outputs (a list): ``_dtypes`` gives each one's dtype."""

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        outputs = super()._symbolic_call(inputs, args, kwargs)
        for t, dtype in zip(outputs, self._dtypes(inputs.dtype)):
            t.dtype = dtype
        return outputs

    def _dtypes(self, dtype: str) -> List[str]:
        return [dtype] * len(self._shape([self._args[0].shape]))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return list(self._shape([input_shape]))


def _as_dtype(op: Any, dtype: Any) -> Any:
    try:
        return None if dtype is None else _name(dtype)
    except TypeError:
        raise _err(op, f"unknown dtype {dtype!r}.") from None


class _Cumulative(_One):
    """``cumsum`` / ``cumprod(x, axis=None, dtype=None)``: axis None runs over the flattened
    tensor; bools count as int32."""

    _params = (("axis", None), ("dtype", None))

    def _check(self):
        self._target = _as_dtype(self, self.dtype_)

    def _check_args(self, args):
        if self.axis is not None:
            _int_axis(self, self.axis, len(args[0].shape))

    def call(self, x):
        x = np.asarray(x)
        out = _bool_to_int32(self._target or x.dtype.name)
        x = x.astype(out)
        return type(self)._fn(x.ravel() if self.axis is None else x, axis=0 if self.axis is None else self.axis).astype(out)

    def _shape(self, shapes):
        shape = shapes[0]
        if self.axis is not None:
            return tuple(shape)
        return (None,) if None in shape else (math.prod(shape),)

    def _dtype_of(self, args):
        return _bool_to_int32(self._target or args[0].dtype)


Cumsum = _make("Cumsum", _Cumulative, _NUMPY, {"_fn": staticmethod(np.cumsum), "__doc__": _Cumulative.__doc__})
Cumprod = _make("Cumprod", _Cumulative, _NUMPY, {"_fn": staticmethod(np.cumprod), "__doc__": _Cumulative.__doc__})


class _Like(_One):
    """``zeros_like`` / ``ones_like(x, dtype=None)``."""

    _params = (("dtype", None),)

    def _check(self):
        self._target = _as_dtype(self, self.dtype_)

    def call(self, x):
        x = np.asarray(x)
        return np.full(x.shape, type(self)._value, self._target or x.dtype)

    def _dtype_of(self, args):
        return self._target or args[0].dtype


ZerosLike = _make("ZerosLike", _Like, _NUMPY, {"_value": 0, "__doc__": "``keras.ops.zeros_like(x, dtype)``."})
OnesLike = _make("OnesLike", _Like, _NUMPY, {"_value": 1, "__doc__": "``keras.ops.ones_like(x, dtype)``."})


class FullLike(_Like):
    """``keras.ops.full_like(x, fill_value, dtype=None)`` (the value cast to the dtype)."""

    _n = 2

    def _check_args(self, args):
        if not (_is_number(args[1]) or isinstance(args[1], bool)):
            raise _err(self, f"fill_value must be a number, received {args[1]!r}.")

    def call(self, x, fill_value=0):
        x = np.asarray(x)
        return np.full(x.shape, np.asarray(fill_value).astype(self._target or x.dtype))


class Tile(_One):
    """``keras.ops.tile(x, repeats)``."""

    _params = (("repeats", None),)
    _required = ("repeats",)

    def _check(self):
        r = [self.repeats] if isinstance(self.repeats, int) else self.repeats
        if not (isinstance(r, (list, tuple)) and all(isinstance(i, int) and i >= 0 for i in r)):
            raise _err(self, f"repeats must be an int or a list of ints >= 0. Received repeats={self.repeats!r}.")

    def call(self, x):
        return np.tile(x, self.repeats)

    def _shape(self, shapes):
        shape = list(shapes[0])
        reps = [self.repeats] if isinstance(self.repeats, int) else list(self.repeats)
        n = max(len(shape), len(reps))
        shape, reps = [1] * (n - len(shape)) + shape, [1] * (n - len(reps)) + reps
        return tuple(None if d is None else d * r for d, r in zip(shape, reps))


class Repeat(_One):
    """``keras.ops.repeat(x, repeats, axis=None)`` (axis None: of the flattened tensor)."""

    _params = (("repeats", None), ("axis", None))
    _required = ("repeats",)

    def call(self, x):
        return np.repeat(x, self.repeats, axis=self.axis)

    def _shape(self, shapes):
        shape = list(shapes[0])
        reps = [self.repeats] if isinstance(self.repeats, int) else list(self.repeats)
        if self.axis is None:
            if None in shape:
                return (None,)
            size = math.prod(shape)
            if len(reps) not in (1, size):
                raise _err(self, f"{len(reps)} repeats for {size} elements.")
            return (size * reps[0] if len(reps) == 1 else sum(reps),)
        axis = _int_axis(self, self.axis, len(shape))
        if shape[axis] is None:
            return tuple(shape)
        if len(reps) not in (1, shape[axis]):
            raise _err(self, f"{len(reps)} repeats for size {shape[axis]} of axis {self.axis}.")
        shape[axis] = shape[axis] * reps[0] if len(reps) == 1 else sum(reps)
        return tuple(shape)


class Flip(_One):
    """``keras.ops.flip(x, axis=None)``."""

    _params = (("axis", None),)

    def _check_args(self, args):
        if self.axis is not None:
            _axes(self, self.axis, len(args[0].shape))

    def call(self, x):
        return np.flip(x, None if self.axis is None else _axes(self, self.axis, np.ndim(x)))


class Roll(_One):
    """``keras.ops.roll(x, shift, axis=None)`` (axis None: of the flattened tensor)."""

    _params = (("shift", None), ("axis", None))
    _required = ("shift",)

    def _check_args(self, args):
        if self.axis is not None:
            _axes(self, self.axis, len(args[0].shape))

    def call(self, x):
        return np.roll(x, self.shift, self.axis if self.axis is None or isinstance(self.axis, int) else tuple(self.axis))


class Sort(_One):
    """``keras.ops.sort(x, axis=-1)`` (axis None: the flattened tensor)."""

    _params = (("axis", -1),)

    def _check_args(self, args):
        if self.axis is not None:
            _int_axis(self, self.axis, len(args[0].shape))

    def call(self, x):
        return np.sort(x, axis=self.axis)

    def _shape(self, shapes):
        shape = shapes[0]
        if self.axis is None:
            return (None,) if None in shape else (math.prod(shape),)
        return tuple(shape)


class Argsort(Sort):
    """``keras.ops.argsort(x, axis=-1)``: int32, ties in index order (as ``tf.argsort``)."""

    def call(self, x):
        return np.argsort(x, axis=self.axis, kind="stable").astype("int32")

    def _dtype_of(self, args):
        return "int32"


class Diff(_One):
    """``keras.ops.diff(a, n=1, axis=-1)`` (bools: ``not_equal`` of neighbours)."""

    _params = (("n", 1), ("axis", -1))

    def _check(self):
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 0:
            raise _err(self, f"n must be an int >= 0. Received n={self.n!r}.")

    def call(self, x):
        return np.diff(x, n=self.n, axis=self.axis)

    def _shape(self, shapes):
        shape = list(shapes[0])
        axis = _int_axis(self, self.axis, len(shape))
        if shape[axis] is not None:
            shape[axis] = max(shape[axis] - self.n, 0)
        return tuple(shape)


class _Band(_One):
    """``tril`` / ``triu(x, k=0)`` of the last two axes."""

    _params = (("k", 0),)

    def _check_args(self, args):
        if len(args[0].shape) < 2:
            raise _err(self, f"expects an input of rank 2 or more, received shape {args[0].shape}.")

    def call(self, x):
        return type(self)._fn(x, int(self.k))


Tril = _make("Tril", _Band, _NUMPY, {"_fn": staticmethod(np.tril), "__doc__": "``keras.ops.tril(x, k=0)``."})
Triu = _make("Triu", _Band, _NUMPY, {"_fn": staticmethod(np.triu), "__doc__": "``keras.ops.triu(x, k=0)``."})


class BroadcastTo(_One):
    """``keras.ops.broadcast_to(x, shape)`` (``shape`` includes the batch axis)."""

    _params = (("shape", None),)
    _required = ("shape",)

    def _check(self):
        if not (isinstance(self.shape, (list, tuple)) and all(isinstance(d, int) and d >= 0 for d in self.shape)):
            raise _err(self, f"shape must be a list of sizes. Received shape={self.shape!r}.")

    def _check_args(self, args):
        x = tuple(args[0].shape)
        try:
            ok = len(x) <= len(self.shape) and _broadcast(x, tuple(self.shape), self.name) == tuple(self.shape)
        except ValueError:
            ok = False
        if not ok:
            raise _err(self, f"cannot broadcast shape {x} to {tuple(self.shape)}.")

    def call(self, x):
        return np.array(np.broadcast_to(x, tuple(self.shape)))

    def _shape(self, shapes):
        return tuple(self.shape)


class Take(_One):
    """``keras.ops.take(x, indices, axis=None)``: indices a tensor, an int or a list; negative
    ones count from the end (axis None: of the flattened tensor)."""

    _params = (("axis", None),)
    _n = 2

    def _check_args(self, args):
        if self.axis is not None:
            _int_axis(self, self.axis, len(args[0].shape))
        idx = args[1]
        if not isinstance(idx, KerasTensor) and np.asarray(idx).dtype.kind not in "iu":
            raise _err(self, f"indices must be integers, received {idx!r}.")

    def call(self, x, indices=None):
        x = np.asarray(x)
        x, axis = (x.ravel(), 0) if self.axis is None else (x, self.axis)
        idx = np.asarray(indices).astype("int64")
        return np.take(x, np.where(idx < 0, idx + x.shape[axis], idx), axis=axis)

    def _shape(self, shapes):
        x = list(shapes[0])
        idx = list(self._args[1].shape) if isinstance(self._args[1], KerasTensor) else list(np.shape(self._args[1]))
        if self.axis is None:
            return tuple(idx)
        axis = _int_axis(self, self.axis, len(x))
        return tuple(x[:axis] + idx + x[axis + 1:])


class TakeAlongAxis(_One):
    """``keras.ops.take_along_axis(x, indices, axis=None)`` (the other axes broadcast)."""

    _params = (("axis", None),)
    _n = 2

    def _check_args(self, args):
        if not isinstance(args[1], KerasTensor) or args[1].dtype[:3] not in ("int", "uin"):
            raise _err(self, f"indices must be an integer tensor, received {args[1]!r}.")
        self._shape([args[0].shape, args[1].shape])

    def call(self, x, indices=None):
        x, idx = np.asarray(x), np.asarray(indices).astype("int64")
        if self.axis is None:
            x, axis = x.ravel(), 0
        else:
            axis = self.axis % x.ndim
        shape = list(np.broadcast_shapes(x.shape[:axis] + (1,) + x.shape[axis + 1:], idx.shape[:axis] + (1,) + idx.shape[axis + 1:]))
        x = np.broadcast_to(x, tuple(shape[:axis] + [x.shape[axis]] + shape[axis + 1:]))
        idx = np.broadcast_to(idx, tuple(shape[:axis] + [idx.shape[axis]] + shape[axis + 1:]))
        return np.take_along_axis(x, np.where(idx < 0, idx + x.shape[axis], idx), axis=axis)

    def _shape(self, shapes):
        x, idx = list(shapes[0]), list(self._args[1].shape)
        if self.axis is None:
            x = [None if None in x else math.prod(x)]
        if len(x) != len(idx):
            raise _err(self, f"x and indices must have the same rank, received shapes {tuple(x)} and {tuple(idx)}.")
        axis = 0 if self.axis is None else _int_axis(self, self.axis, len(x))
        x[axis] = idx[axis]
        return _broadcast(tuple(x), tuple(idx), self.name)


class Pad(_One):
    """``keras.ops.pad(x, pad_width, mode="constant", constant_values=None)``: modes constant,
    reflect and symmetric (those TensorFlow's ``tf.pad`` has)."""

    _params = (("pad_width", None), ("mode", "constant"))
    _required = ("pad_width",)
    _call_kwargs = ("constant_values",)

    def _check(self):
        pw = self.pad_width
        if isinstance(pw, int):
            pw = [[pw, pw]]
        elif isinstance(pw, (list, tuple)) and pw and isinstance(pw[0], int):
            pw = [list(pw)]
        try:
            pairs = [[int(p[0]), int(p[-1])] for p in pw]
            ok = all(len(p) in (1, 2) and len(p) == len(pw[0]) for p in pw) and all(a >= 0 and b >= 0 for a, b in pairs)
        except (TypeError, IndexError):
            ok = False
        if not ok:
            raise _err(self, f"pad_width must be pairs of sizes >= 0. Received pad_width={self.pad_width!r}.")
        self._pairs = pairs
        if self.mode not in ("constant", "reflect", "symmetric"):
            raise _err(self, f"mode {self.mode!r} is not one of TensorFlow's: constant, reflect, symmetric.")

    def _widths(self, rank):
        if len(self._pairs) == 1:
            return self._pairs * rank
        if len(self._pairs) != rank:
            raise _err(self, f"pad_width {self.pad_width!r} has {len(self._pairs)} pairs for an input of rank {rank}.")
        return self._pairs

    def _check_args(self, args):
        self._widths(len(args[0].shape))
        value = self._kwargs.get("constant_values")
        if value is not None and (self.mode != "constant" or not _is_number(value)):
            raise _err(self, f"constant_values must be a number, with mode 'constant'. Received {value!r}.")

    def call(self, x, constant_values=None):
        x = np.asarray(x)
        widths = self._widths(x.ndim)
        if self.mode != "constant":
            return np.pad(x, widths, mode=self.mode)
        return np.pad(x, widths, constant_values=np.asarray(constant_values or 0).astype(x.dtype))

    def _shape(self, shapes):
        return tuple(None if d is None else d + a + b for d, (a, b) in zip(shapes[0], self._widths(len(shapes[0]))))


class Slice(_One):
    """``keras.ops.slice(inputs, start_indices, shape)`` (every axis, the batch one too; a size
    of -1 runs to the end)."""

    _params = (("shape", None),)
    _required = ("shape",)
    _n = 2

    def _check(self):
        if not (isinstance(self.shape, (list, tuple)) and all(isinstance(d, int) and d >= -1 for d in self.shape)):
            raise _err(self, f"shape must be a list of sizes (-1: to the end). Received shape={self.shape!r}.")

    def _check_args(self, args):
        rank, start = len(args[0].shape), args[1]
        if len(self.shape) != rank:
            raise _err(self, f"shape {list(self.shape)} has {len(self.shape)} sizes for an input of rank {rank}.")
        if isinstance(start, KerasTensor):
            if start.shape not in ((rank,), (None,)):
                raise _err(self, f"start_indices must have {rank} entries, received shape {start.shape}.")
        elif not (isinstance(start, (list, tuple)) and len(start) == rank and all(isinstance(s, int) and s >= 0 for s in start)):
            raise _err(self, f"start_indices must be {rank} ints >= 0, received {start!r}.")

    def call(self, x, start_indices=None):
        x, start = np.asarray(x), [int(s) for s in np.asarray(start_indices).reshape(-1)]
        ends = [n if d == -1 else s + d for s, d, n in zip(start, self.shape, x.shape)]
        if any(s < 0 or e > n or s > e for s, e, n in zip(start, ends, x.shape)):
            raise _err(self, f"slice from {start} of sizes {list(self.shape)} is out of bounds for shape {x.shape}.")
        return x[tuple(slice(s, e) for s, e in zip(start, ends))]

    def _shape(self, shapes):
        start = self._args[1]
        return tuple(d if d != -1 else (None if isinstance(start, KerasTensor) or n is None else n - start[i])
                     for i, (n, d) in enumerate(zip(shapes[0], self.shape)))


class Glu(_One):
    """``keras.ops.glu(x, axis=-1)``: ``a * sigmoid(b)`` of the two halves along ``axis``."""

    _params = (("axis", -1),)

    def call(self, x):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            raise _err(self, f"expects a floating input, received {x.dtype.name} (as TensorFlow).")
        a, b = np.split(x, 2, axis=self.axis)
        return a * activations.sigmoid(b)

    def _shape(self, shapes):
        shape = list(shapes[0])
        axis = _int_axis(self, self.axis, len(shape))
        if shape[axis] is not None:
            if shape[axis] % 2:
                raise _err(self, f"the size {shape[axis]} of axis {self.axis} is not even.")
            shape[axis] //= 2
        return tuple(shape)


class Sparsemax(_One):
    """``keras.ops.sparsemax(x, axis=-1)`` (TensorFlow backend's formula)."""

    _params = (("axis", -1),)

    def _check_args(self, args):
        _int_axis(self, self.axis, len(args[0].shape))

    def call(self, x):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            raise _err(self, f"expects a floating input, received {x.dtype.name} (as TensorFlow).")
        axis = self.axis % x.ndim
        srt = -np.sort(-x, axis=axis)
        csum = np.cumsum(srt, axis=axis)
        r = np.arange(1, x.shape[axis] + 1, dtype=x.dtype).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
        support = srt - (csum - 1) / r > 0
        k = np.sum(support, axis=axis, keepdims=True).astype(x.dtype)
        tau = (np.sum(np.where(support, csum, 0), axis=axis, keepdims=True) - 1) / k
        return np.maximum(x - tau, 0)


class OneHot(_One):
    """``keras.ops.one_hot(x, num_classes, axis=-1, dtype=None)``: indices outside
    ``[0, num_classes)`` give rows of zeros (``tf.one_hot``)."""

    _params = (("num_classes", None), ("axis", -1), ("dtype", None), ("sparse", False))
    _required = ("num_classes",)

    def _check(self):
        self._target = _as_dtype(self, self.dtype_) or "float32"
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise _err(self, f"num_classes must be an int >= 0. Received num_classes={self.num_classes!r}.")
        if self.sparse:
            raise _err(self, "sparse outputs are not supported.")

    def call(self, x):
        x = np.asarray(x).astype("int64")
        out = (x[..., None] == np.arange(self.num_classes)).astype(self._target)
        return out if self.axis == -1 else np.moveaxis(out, -1, self.axis)

    def _shape(self, shapes):
        shape = list(shapes[0])
        if self.axis == -1:
            return tuple(shape + [self.num_classes])
        if not (isinstance(self.axis, int) and 0 <= self.axis < len(shape)):
            raise _err(self, f"axis must be -1 or in [0, {len(shape)}), received {self.axis!r}.")
        return tuple(shape[:self.axis] + [self.num_classes] + shape[self.axis:])

    def _dtype_of(self, args):
        return self._target


# -- reductions -------------------------------------------------------------------------------------
def _var(self, x, axis, keepdims, out):
    # TensorFlow: computed in float32 at least, then cast
    return np.var(x.astype(result_type(x.dtype.name, "float32")), axis=axis, keepdims=keepdims)


def _std_dtype(dtype):
    return "float32" if "int" in dtype or dtype == "bool" else dtype


def _median_dtype(dtype):
    return "float32" if dtype == "int64" else result_type(dtype, float)


REDUCE_MORE: Dict[str, type] = {
    "Var": _make("Var", _Reduce, _NUMPY, {"_rule": staticmethod(lambda d: result_type(d, float)), "_reduce": _var,
                                          "__doc__": "``keras.ops.var(x, axis, keepdims)``."}),
    "Std": _make("Std", _Reduce, _NUMPY, {"_rule": staticmethod(_std_dtype), "_fn": staticmethod(np.std),
                                          "__doc__": "``keras.ops.std(x, axis, keepdims)``."}),
    "Median": _make("Median", _Reduce, _NUMPY, {
        "_rule": staticmethod(_median_dtype), "__doc__": "``keras.ops.median(x, axis, keepdims)``.",
        "_reduce": lambda self, x, axis, keepdims, out: np.quantile(
            x.astype(result_type(x.dtype.name, float)), 0.5, axis=axis, keepdims=keepdims)}),
}


def _norm(x: np.ndarray, ord: Any, axis: Tuple[int, ...], keepdims: bool) -> Any:
    if len(axis) == 1 and ord not in (None, 2, 0, float("inf"), float("-inf")):
        p = x.dtype.type(ord)
        return np.sum(np.abs(x) ** p, axis=axis, keepdims=keepdims) ** (1 / p)
    return np.linalg.norm(x, ord=ord, axis=axis[0] if len(axis) == 1 else axis, keepdims=keepdims)


class Norm(_Reduce):
    """``keras.ops.norm(x, ord=None, axis=None, keepdims=False)``: a vector norm over one
    axis, a matrix norm over two (``fro``, ``nuc``, +-1, +-2, +-inf)."""

    _params = (("ord", None), ("axis", None), ("keepdims", False))

    def _check(self):
        super()._check()
        if isinstance(self.ord, str) and self.ord not in ("fro", "nuc"):
            raise _err(self, f"ord must be a number, 'fro' or 'nuc'. Received ord={self.ord!r}.")
        if not (self.ord is None or isinstance(self.ord, str) or _is_number(self.ord)):
            raise _err(self, f"ord must be a number, 'fro' or 'nuc'. Received ord={self.ord!r}.")

    def _axis(self, rank):
        axes = tuple(range(rank)) if self.axis is None else _axes(self, self.axis, rank)
        if len(axes) == 1 and isinstance(self.ord, str):
            raise _err(self, f"ord {self.ord!r} is not a vector norm.")
        if len(axes) == 2 and self.ord not in (None, "fro", "nuc", float("inf"), float("-inf"), 1, -1, 2, -2):
            raise _err(self, f"ord {self.ord!r} is not a matrix norm.")
        if len(axes) > 2:
            raise _err(self, f"norms are over one or two axes, received axis={self.axis!r} for rank {rank}.")
        return axes

    def _out_dtype(self, dtype):
        return _std_dtype(dtype)

    def _reduce(self, x, axis, keepdims, out):
        dtype = "float32" if x.dtype == np.int64 else result_type(x.dtype.name, float)
        return _norm(x.astype(dtype), self.ord, axis, keepdims)


class Normalize(_One):
    """``keras.ops.normalize(x, axis=-1, order=2, epsilon=None)``: ``x / max(norm, epsilon)``
    (Keras's output spec: float32)."""

    _params = (("axis", -1), ("order", 2), ("epsilon", None))

    def _check(self):
        if isinstance(self.order, bool) or not isinstance(self.order, int) or self.order < 1:
            raise _err(self, f"order must be an int >= 1. Received order={self.order!r}.")

    def _check_args(self, args):
        if self.axis is not None:
            _axes(self, self.axis, len(args[0].shape))

    def call(self, x):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            raise _err(self, f"expects a floating input, received {x.dtype.name} (as TensorFlow).")
        eps = x.dtype.type(1e-7 if self.epsilon is None else self.epsilon)
        axes = tuple(range(x.ndim)) if self.axis is None else _axes(self, self.axis, x.ndim)
        if self.order == 2:
            with np.errstate(divide="ignore"):
                inv = 1 / np.sqrt(np.sum(np.square(x), axis=axes, keepdims=True))
            return (x * np.minimum(inv, 1 / eps)).astype("float32")
        return (x / np.maximum(_norm(x, self.order, axes, True), eps)).astype("float32")

    def _dtype_of(self, args):
        return "float32"


class Quantile(_One):
    """``keras.ops.quantile(x, q, axis=None, method="linear", keepdims=False)``: Keras's call
    interpolates linearly whatever the method."""

    _params = (("axis", None), ("method", "linear"), ("keepdims", False))
    _n = 2

    def _check(self):
        if self.method not in ("linear", "lower", "higher", "midpoint", "nearest"):
            raise _err(self, f"unknown method {self.method!r}.")

    def _check_args(self, args):
        q = args[1]
        if not (isinstance(q, KerasTensor) or _is_number(q) or (isinstance(q, (list, tuple)) and all(_is_number(v) for v in q))):
            raise _err(self, f"q must be a number, a list of numbers or a tensor, received {q!r}.")

    def call(self, x, q=None):
        x = np.asarray(x)
        dtype = result_type(x.dtype.name, float)
        axes = None if self.axis is None else _axes(self, self.axis, x.ndim)
        return np.quantile(x.astype(dtype), np.asarray(q).astype("float64"), axis=axes, keepdims=bool(self.keepdims)).astype(dtype)

    def _shape(self, shapes):
        axes = None if self.axis is None else _axes(self, self.axis, len(shapes[0]))
        shape = _reduced(shapes[0], axes, bool(self.keepdims))
        q = self._args[1]
        if isinstance(q, KerasTensor):
            return (q.shape[0],) + shape if len(q.shape) > 0 else shape
        return (len(q),) + shape if isinstance(q, (list, tuple)) and len(q) > 1 else shape

    def _dtype_of(self, args):
        return _median_dtype(args[0].dtype)


class Average(_One):
    """``keras.ops.average(x, axis=None, weights=None)``: weights (a keyword tensor) of x's
    shape or of the size of ``axis``."""

    _params = (("axis", None),)
    _call_kwargs = ("weights",)

    def _check_args(self, args):
        w = self._kwargs.get("weights")
        x = tuple(args[0].shape)
        if self.axis is not None:
            _int_axis(self, self.axis, len(x))
        if w is None:
            return
        if not isinstance(w, KerasTensor):
            raise _err(self, f"weights must be a tensor, received {w!r}.")

        def same(a, b):
            return len(a) == len(b) and all(i is None or j is None or i == j for i, j in zip(a, b))

        if not (same(x, w.shape) or (self.axis is not None and same((x[self.axis],), w.shape))):
            raise _err(self, f"weights of shape {w.shape} fit neither x's shape {x} nor its axis {self.axis}.")

    def call(self, x, weights=None):
        x = np.asarray(x)
        if weights is None:
            return np.mean(x.astype(result_type(x.dtype.name, float)), axis=self.axis)
        w = np.asarray(weights)
        dtype = result_type(x.dtype.name, w.dtype.name, float)
        x, w = x.astype(dtype), w.astype(dtype)
        if self.axis is None or x.ndim == w.ndim:
            return np.sum(x * w, axis=self.axis) / np.sum(w, axis=self.axis)
        return np.tensordot(x, w, [[self.axis], [0]]) / np.sum(w)

    def _shape(self, shapes):
        if self.axis is None:
            return ()
        return _reduced(shapes[0], (self.axis % len(shapes[0]),), False)

    def _dtype_of(self, args):
        w = self._kwargs.get("weights")
        return result_type(args[0].dtype, float) if w is None else result_type(args[0].dtype, w.dtype, float)


class Resize(_One):
    """``keras.ops.image.resize(images, size, interpolation="bilinear", ...)``: TensorFlow's
    ``tf.image.resize`` (half-pixel centres) for ``bilinear`` and ``nearest`` without antialias,
    cropping or padding; integer images are rounded back to their dtype (as Keras)."""

    _params = (("size", None), ("interpolation", "bilinear"), ("antialias", False), ("crop_to_aspect_ratio", False),
               ("pad_to_aspect_ratio", False), ("fill_mode", "constant"), ("fill_value", 0.0), ("data_format", None))
    _required = ("size",)

    def _check(self):
        if not (isinstance(self.size, (list, tuple)) and len(self.size) == 2 and all(isinstance(d, int) and d > 0 for d in self.size)):
            raise _err(self, f"size must be (height, width). Received size={self.size!r}.")
        if self.interpolation not in ("bilinear", "nearest") or self.antialias:
            raise _err(self, f"klayers resizes with 'bilinear' or 'nearest' and no antialias, received "
                             f"interpolation={self.interpolation!r}, antialias={self.antialias!r}.")
        if self.crop_to_aspect_ratio or self.pad_to_aspect_ratio:
            raise _err(self, "crop_to_aspect_ratio and pad_to_aspect_ratio are not supported.")
        if self.data_format not in (None, "channels_last", "channels_first"):
            raise _err(self, f"unknown data_format {self.data_format!r}.")

    def _check_args(self, args):
        if len(args[0].shape) not in (3, 4):
            raise _err(self, f"expects images of rank 3 or 4, received shape {args[0].shape}.")

    def _hw(self, rank):
        return (rank - 2, rank - 1) if self.data_format == "channels_first" else (rank - 3, rank - 2)

    def call(self, images):
        x = np.asarray(images)
        out = x.dtype
        if self.interpolation == "bilinear" and out.kind != "f":
            x = x.astype("float32")
        for axis, n in reversed(list(zip(self._hw(x.ndim), self.size))):  # along the width first, as TensorFlow
            x = self._resize_axis(x, axis, n)
        if out.kind in "iu" and x.dtype != out:
            # Keras rounds (half to even) and saturates integer images back to their dtype
            info = np.iinfo(out)
            x = np.clip(np.round(x), info.min, info.max)
        return x.astype(out, copy=False)

    def _resize_axis(self, x, axis, n):
        size = x.shape[axis]
        scale = np.float32(size) / np.float32(n)
        centre = (np.arange(n, dtype="float32") + np.float32(0.5)) * scale
        if self.interpolation == "nearest":
            return np.take(x, np.clip(np.floor(centre).astype("int64"), 0, size - 1), axis=axis)
        pos = centre - np.float32(0.5)
        floor = np.floor(pos)
        lower = np.maximum(floor.astype("int64"), 0)
        upper = np.minimum(np.ceil(pos).astype("int64"), size - 1)
        lerp = (pos - floor).astype(x.dtype).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
        a, b = np.take(x, lower, axis=axis), np.take(x, upper, axis=axis)
        return a + (b - a) * lerp

    def _shape(self, shapes):
        shape = list(shapes[0])
        h, w = self._hw(len(shape))
        shape[h], shape[w] = self.size
        return tuple(shape)



# -- several outputs --------------------------------------------------------------------------------
class Split(_Multi):
    """``keras.ops.split(x, indices_or_sections, axis=0)``: a list of tensors."""

    _params = (("indices_or_sections", None), ("axis", 0))
    _required = ("indices_or_sections",)

    def _check(self):
        s = self.indices_or_sections
        if not ((isinstance(s, int) and not isinstance(s, bool) and s > 0)
                or (isinstance(s, (list, tuple)) and all(isinstance(i, int) for i in s))):
            raise _err(self, f"indices_or_sections must be an int > 0 or a list of ints. Received {s!r}.")

    def call(self, x):
        s = self.indices_or_sections
        return np.split(x, s if isinstance(s, int) else list(s), axis=self.axis)

    def _shape(self, shapes):
        shape = list(shapes[0])
        axis = _int_axis(self, self.axis, len(shape))
        size, s = shape[axis], self.indices_or_sections
        if isinstance(s, int):
            if size is not None and size % s:
                raise _err(self, f"the size {size} of axis {self.axis} does not split into {s} equal sections.")
            sizes = [None if size is None else size // s] * s
        else:
            bounds = [0] + list(s) + [size]
            sizes = [None if a is None or b is None else b - a for a, b in zip(bounds, bounds[1:])]
        return [tuple(shape[:axis] + [n] + shape[axis + 1:]) for n in sizes]


class Unstack(_Multi):
    """``keras.ops.unstack(x, num=None, axis=0)``: a list of ``x.shape[axis]`` tensors."""

    _params = (("num", None), ("axis", 0))

    def call(self, x):
        x = np.asarray(x)
        return [np.take(x, i, axis=self.axis) for i in range(x.shape[self.axis])]

    def _shape(self, shapes):
        shape = list(shapes[0])
        axis = _int_axis(self, self.axis, len(shape))
        num = self.num if self.num is not None else shape[axis]
        if num is None:
            raise _err(self, f"cannot infer num from shape {tuple(shape)}: give num or a known size of axis {self.axis}.")
        if shape[axis] is not None and num != shape[axis]:
            raise _err(self, f"num={num} differs from the size {shape[axis]} of axis {self.axis}.")
        return [tuple(shape[:axis] + shape[axis + 1:])] * num


class TopK(_Multi):
    """``keras.ops.top_k(x, k, sorted=True)``: the k largest values of the last axis and their
    int32 indices (ties: the lower index first, as ``tf.math.top_k``). With ``sorted=False``
    TensorFlow's order is unspecified; klayers returns them sorted."""

    _params = (("k", None), ("sorted", True))
    _required = ("k",)

    def _check(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0:
            raise _err(self, f"k must be an int >= 0. Received k={self.k!r}.")

    def _check_args(self, args):
        shape = args[0].shape
        if not shape or (shape[-1] is not None and shape[-1] < self.k):
            raise _err(self, f"k={self.k} is more than the last axis of shape {shape}.")

    def call(self, x):
        x = np.asarray(x)
        if x.dtype == bool:
            raise _err(self, "expects a numeric input, received bool (as TensorFlow).")
        key = -(x.astype("int64") if x.dtype.kind in "iu" else x)
        idx = np.argsort(key, axis=-1, kind="stable")[..., :self.k]
        return [np.take_along_axis(x, idx, axis=-1), idx.astype("int32")]

    def _shape(self, shapes):
        shape = tuple(shapes[0])
        return [shape[:-1] + (self.k,)] * 2

    def _dtypes(self, dtype):
        return [dtype, "int32"]


OPS_MORE: Dict[str, type] = {**UNARY_MORE, **REDUCE_MORE, "Cumsum": Cumsum, "Cumprod": Cumprod,
                             "ZerosLike": ZerosLike, "OnesLike": OnesLike, "Tril": Tril, "Triu": Triu}
for _cls, _module in ((Mod, _NUMPY), (FullLike, _NUMPY), (Tile, _NUMPY), (Repeat, _NUMPY), (Flip, _NUMPY),
                      (Roll, _NUMPY), (Sort, _NUMPY), (Argsort, _NUMPY), (Diff, _NUMPY), (BroadcastTo, _NUMPY),
                      (Take, _NUMPY), (TakeAlongAxis, _NUMPY), (Pad, _NUMPY), (Quantile, _NUMPY), (Average, _NUMPY),
                      (Split, _NUMPY), (Slice, _CORE), (Unstack, _CORE), (Glu, _NN), (Sparsemax, _NN), (OneHot, _NN),
                      (Normalize, _NN), (Norm, _LINALG), (TopK, _MATH),
                      (Resize, "keras.src.ops.image")):
    _cls._keras_module, _cls._keras_registered_name = _module, _cls.__name__
    OPS_MORE[_cls.__name__] = _cls
__all__: List[str] = []  # graph nodes, not public layers
register_builtins("keras3_op", OPS_MORE, list(OPS_MORE))
