"""Element-wise merges (Add, Multiply, Subtract, Maximum, Minimum) of two or more arrays already
brought to one rank by the merge layer (Keras's rule: missing axes inserted after the batch
axis), with NumPy broadcasting.

The compiled kernel (``binary_forward`` in ``_ext/activation.pyx``) takes the pairs that real
models merge: float32 / float64 arrays of one dtype and equal shapes (residual adds), or a
``(batch, 1, ..., 1, channels)`` array against a ``(batch, ..., channels)`` one (squeeze-and-
excitation scaling), from ``SERIAL_VALUES`` values on; any other pair takes NumPy's ufunc. Inputs are folded left to right, as
Keras does.
"""

from __future__ import annotations

from math import prod
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from klayers._ext import activation as _act
from klayers.backend import arena, tape
from klayers.ops.activation import SERIAL_VALUES, apply_activation
from klayers.ops.common import (
    ACT_LINEAR,
    ACTIVATION_CODES,
    ALL_CODES,
    FLOATS,
    Activation,
    activation_code,
    activation_function,
    contiguous,
    op_threads,
)

__all__ = ["MERGE_OPS", "concatenate", "merge", "merge_reference"]

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
          n_threads: Optional[int], act: int = ACT_LINEAR) -> np.ndarray:
    # small arrays: NumPy's ufunc costs less than the kernel's call (16K values: 7 us against 9.5)
    if a.dtype != b.dtype or a.dtype not in FLOATS or max(a.size, b.size) < SERIAL_VALUES:
        out = _ufunc(ufunc, a, b)
        return out if act == ACT_LINEAR else apply_activation(out, act, n_threads, inplace=True)
    if a.shape != b.shape and commutative and _channel_broadcast(b.shape, a.shape):
        a, b = b, a
    if a.shape == b.shape:
        width = a.shape[-1] if a.ndim else 1
        rows, reps, bcast = (a.size // width if width else 0), 1, False
    elif _channel_broadcast(a.shape, b.shape):
        rows, reps, width, bcast = a.shape[0], prod(a.shape[1:-1]), a.shape[-1], True
    else:
        out = _ufunc(ufunc, a, b)
        return out if act == ACT_LINEAR else apply_activation(out, act, n_threads, inplace=True)
    a_flat = contiguous(a).reshape(-1)
    b_flat = contiguous(b).reshape(-1)
    out = arena.empty(a.shape, a.dtype)
    tape.run(_act.binary_forward, a_flat, b_flat, out.reshape(-1), rows, reps, width, bcast, code, act,
             op_threads(n_threads, a.size, SERIAL_VALUES))
    return out


def _ufunc_into(ufunc: np.ufunc, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, silently, as Keras
        ufunc(a, b, out=out)


def _ufunc(ufunc: np.ufunc, a: Any, b: Any) -> np.ndarray:
    """``ufunc(a, b)`` (NumPy's broadcasting and promotion), recorded as a call into its result."""
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, silently, as Keras
        out = ufunc(a, b)
    if tape.recording() is not None:
        if isinstance(out, np.ndarray):
            tape.note(_ufunc_into, ufunc, a, b, out)
        else:
            tape.spoil()
    return out


def merge(inputs: Sequence[np.ndarray], op: str, n_threads: Optional[int] = None, where: str = "merge",
          act: Activation = ACT_LINEAR) -> np.ndarray:
    """``act(inputs[0] <op> inputs[1] <op> ...)`` (``op`` a key of ``MERGE_OPS``), with NumPy's
    broadcasting and dtype promotion; the pairs the kernel takes (see the module) run
    compiled and threaded, with an activation code fused into the last pair.

    Args:
        act: an activation code (``klayers.ops.common.ACTIVATION_CODES``) applied to the
            result (the inference plan folds ``Add`` + ``Activation("relu")`` so).

    Raises:
        ValueError: no inputs, an unknown operation or activation code.
    """
    code, ufunc, commutative = _op(op, where)
    if not inputs:
        raise ValueError(f"{where}: nothing to merge")
    act_code = _act_code(act, where)
    if len(inputs) == 1:
        out = np.array(inputs[0], copy=True)
        return out if act_code == ACT_LINEAR else apply_activation(out, act_code, n_threads, inplace=True)
    last = len(inputs) - 2
    out = _pair(inputs[0], inputs[1], code, ufunc, commutative, n_threads, act_code if last == 0 else ACT_LINEAR)
    for i, x in enumerate(inputs[2:], 1):
        out = _pair(out, x, code, ufunc, commutative, n_threads, act_code if i == last else ACT_LINEAR)
    return out


def concatenate(inputs: Sequence[np.ndarray], axis: int, where: str = "concatenate",
                act: Activation = ACT_LINEAR) -> np.ndarray:
    """``act(np.concatenate(inputs, axis))``, the result in a buffer of the active arena (a
    model call's) when there is one: NumPy's dtype promotion and shape errors.

    Raises:
        ValueError: no inputs, shapes that do not match off ``axis``, an unknown activation code.
    """
    if not inputs:
        raise ValueError(f"{where}: nothing to concatenate")
    act_code = _act_code(act, where)
    rank = np.ndim(inputs[0])
    if any(np.ndim(x) != rank for x in inputs):
        raise ValueError(f"{where}: inputs of ranks {[np.ndim(x) for x in inputs]}; they must have one rank")
    if not -rank <= axis < rank:
        raise ValueError(f"{where}: axis={axis} is out of range for inputs of rank {rank}")
    shape = list(np.shape(inputs[0]))
    shape[axis] = sum(np.shape(x)[axis] for x in inputs)
    try:
        out = arena.empty(shape, np.result_type(*inputs))
        tape.run(_concatenate_into, list(inputs), axis, out)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    return out if act_code == ACT_LINEAR else apply_activation(out, act_code, inplace=True)


def _concatenate_into(inputs: List[Any], axis: int, out: np.ndarray) -> None:
    np.concatenate(inputs, axis=axis, out=out)


def _act_code(act: Activation, where: str) -> int:
    code = activation_code(act) if callable(act) else int(act)
    if code not in ALL_CODES:
        raise ValueError(f"{where}: the activation {act!r} has no kernel code; expected one of {ACTIVATION_CODES}")
    return code


def merge_reference(inputs: Sequence[np.ndarray], op: str, n_threads: Optional[int] = None,
                    where: str = "merge", act: Activation = ACT_LINEAR) -> np.ndarray:
    """NumPy twin of :func:`merge`: the ufunc folded over the inputs, then the activation's
    NumPy formula."""
    _, ufunc, _ = _op(op, where)
    if not inputs:
        raise ValueError(f"{where}: nothing to merge")
    act_code = _act_code(act, where)
    out = np.array(inputs[0], copy=True)
    for x in inputs[1:]:
        out = ufunc(out, x)
    return out if act_code == ACT_LINEAR else activation_function(act_code)(out)
