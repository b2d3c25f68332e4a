"""Softmax over one axis (or several, by the reference): ``exp(x - max) / sum(exp(x - max))``.

``softmax`` dispatches to the compiled kernel (``klayers._ext.softmax``): the last axis as
rows, any other single axis as a ``(P, N, Q)`` strided view; several axes, float16 and other
dtypes go to ``softmax_reference``. Special values follow tf-keras on CPU: a slice holding NaN
or +inf is all NaN, a slice of only -inf is all NaN, a -inf entry among finite ones gets 0.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np

from klayers import backend
from klayers._ext import softmax as _softmax
from klayers.backend import tape
from klayers.ops.common import FLOATS, contiguous, op_threads

Axis = Union[int, Sequence[int]]

#: Below this many values the kernel runs on one thread: waking a second OpenMP thread
#: (passive wait) costs about 10 us, more on a loaded machine, while a 64x256 float32
#: softmax takes about 4 us on one thread (AVX-512).
PARALLEL_MIN_SIZE = 1 << 17


def _axes(x: np.ndarray, axis: Axis, where: str) -> tuple:
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    if not axes:
        raise ValueError(f"{where}: axis must name at least one axis. Received axis={axis!r}")
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise ValueError(f"{where}: axis must be an int or a list of ints. Received axis={axis!r}")
        if not -x.ndim <= a < x.ndim:
            raise ValueError(f"{where}: axis {a} is out of range for an input of shape {x.shape}.")
        out.append(int(a) % x.ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{where}: axis holds a repeated axis. Received axis={axis!r}")
    return tuple(out)


def softmax_reference(x: np.ndarray, axis: Axis = -1, n_threads: Optional[int] = None,
                      where: str = "softmax") -> np.ndarray:
    """NumPy twin of :func:`softmax` (the readable oracle); same signature and result. The
    formula is ``klayers.backend.softmax``'s, the one NumPy softmax of klayers."""
    x = np.asarray(x)
    axes = _axes(x, axis, where)
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    return backend.softmax(x, axes)


def softmax(x: np.ndarray, axis: Axis = -1, n_threads: Optional[int] = None,
            where: str = "softmax") -> np.ndarray:
    """Softmax of ``x`` along ``axis``.

    Args:
        x: any shape; float32 / float64 use the compiled kernel, other floats the reference
            (integers are computed in float32).
        axis: an int, or a list/tuple of distinct ints (the softmax runs over the joint slice).
        n_threads: threads (default: ``klayers.get_num_threads()``, but inputs under
            :data:`PARALLEL_MIN_SIZE` values run on one thread; ``klayers.ops.common.op_threads``).
        where: the layer name for error messages.

    Returns:
        A new array of ``x``'s shape and (floating) dtype; each slice along ``axis`` sums to 1.

    Raises:
        ValueError: an axis out of range, repeated, or not an int.

    Example:
        >>> softmax(np.array([[1.0, 1.0]], np.float32)).tolist()
        [[0.5, 0.5]]
    """
    x = np.asarray(x)
    if type(axis) is int and -x.ndim <= axis < x.ndim:  # the common case, checked cheaply
        axes = (axis % x.ndim,)
    else:
        axes = _axes(x, axis, where)
    if len(axes) != 1 or x.dtype not in FLOATS or x.size == 0:
        tape.spoil()  # the NumPy formula is not recorded
        return softmax_reference(x, axes, n_threads, where)
    a = axes[0]
    shape = x.shape
    x = contiguous(x)
    out = np.empty(shape, dtype=x.dtype)
    nt = op_threads(n_threads, x.size, PARALLEL_MIN_SIZE)
    n = shape[a]
    q = math.prod(shape[a + 1:])
    if q == 1:
        rows = x.size // n
        tape.run(_softmax.softmax_rows, x.reshape(rows, n), out.reshape(rows, n), nt)
    else:
        p = math.prod(shape[:a])
        tape.run(_softmax.softmax_strided, x.reshape(p, n, q), out.reshape(p, n, q), nt)
    return out
