"""Element-wise merges (Add, Multiply, Subtract, Maximum, Minimum) of two or more arrays already
brought to one rank by the merge layer (Keras's rule: missing axes inserted after the batch
axis), with NumPy broadcasting.

The compiled kernel (``binary_forward`` in ``_ext/activation.pyx``) takes the pairs that real
models merge: float32 / float64 arrays of one dtype and equal shapes (residual adds), or a
``(batch, 1, ..., 1, channels)`` array against a ``(batch, ..., channels)`` one (squeeze-and-
excitation scaling); any other pair takes NumPy's ufunc. Inputs are folded left to right, as
Keras does.
"""

from __future__ import annotations

from math import prod
from typing import Optional, Sequence, Tuple

import numpy as np

from klayers._ext import activation as _act
from klayers.ops.activation import SERIAL_VALUES
from klayers.ops.common import FLOATS, op_threads

__all__ = ["MERGE_OPS", "merge", "merge_reference"]

#: name -> (kernel code, NumPy ufunc, commutative)
MERGE_OPS = {
    "add": (_act.BINARY_OPS["add"], np.add, True),
    "multiply": (_act.BINARY_OPS["multiply"], np.multiply, True),
    "subtract": (_act.BINARY_OPS["subtract"], np.subtract, False),
    "maximum": (_act.BINARY_OPS["maximum"], np.maximum, True),
    "minimum": (_act.BINARY_OPS["minimum"], np.minimum, True),
}


def _op(op: str, where: str) -> Tuple[int, np.ufunc, bool]:
    try:
        return MERGE_OPS[op]
    except KeyError:
        raise ValueError(f"{where}: unknown merge operation {op!r}; expected one of {sorted(MERGE_OPS)}") from None


def _channel_broadcast(full: Tuple[int, ...], small: Tuple[int, ...]) -> bool:
    """``small`` is ``(batch, 1, ..., 1, channels)`` against ``full`` ``(batch, ..., channels)``."""
    return (len(full) == len(small) >= 3 and small[0] == full[0] and small[-1] == full[-1]
            and all(d == 1 for d in small[1:-1]))


def _pair(a: np.ndarray, b: np.ndarray, code: int, ufunc: np.ufunc, commutative: bool,
          n_threads: Optional[int]) -> np.ndarray:
    if a.dtype != b.dtype or a.dtype not in FLOATS:
        return ufunc(a, b)
    if a.shape != b.shape and commutative and _channel_broadcast(b.shape, a.shape):
        a, b = b, a
    if a.shape == b.shape:
        width = a.shape[-1] if a.ndim else 1
        rows, reps, bcast = (a.size // width if width else 0), 1, False
    elif _channel_broadcast(a.shape, b.shape):
        rows, reps, width, bcast = a.shape[0], prod(a.shape[1:-1]), a.shape[-1], True
    else:
        return ufunc(a, b)
    a_flat = np.ascontiguousarray(a).reshape(-1)
    b_flat = np.ascontiguousarray(b).reshape(-1)
    out = np.empty(a.shape, a.dtype)
    _act.binary_forward(a_flat, b_flat, out.reshape(-1), rows, reps, width, bcast, code, 0,
                        op_threads(n_threads, a.size, SERIAL_VALUES))
    return out


def merge(inputs: Sequence[np.ndarray], op: str, n_threads: Optional[int] = None, where: str = "merge") -> np.ndarray:
    """``inputs[0] <op> inputs[1] <op> ...`` (``op`` a key of ``MERGE_OPS``), with NumPy's
    broadcasting and dtype promotion; the pairs the kernel takes (see the module) run
    compiled and threaded.

    Raises:
        ValueError: no inputs, or an unknown operation.
    """
    code, ufunc, commutative = _op(op, where)
    if not inputs:
        raise ValueError(f"{where}: nothing to merge")
    if len(inputs) == 1:
        return np.array(inputs[0], copy=True)
    out = _pair(inputs[0], inputs[1], code, ufunc, commutative, n_threads)
    for x in inputs[2:]:
        out = _pair(out, x, code, ufunc, commutative, n_threads)
    return out


def merge_reference(inputs: Sequence[np.ndarray], op: str, n_threads: Optional[int] = None,
                    where: str = "merge") -> np.ndarray:
    """NumPy twin of :func:`merge`: the ufunc folded over the inputs."""
    _, ufunc, _ = _op(op, where)
    if not inputs:
        raise ValueError(f"{where}: nothing to merge")
    out = np.array(inputs[0], copy=True)
    for x in inputs[1:]:
        out = ufunc(out, x)
    return out
