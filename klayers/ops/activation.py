"""A layer's activation, applied through the ops: the one entry point that sends softmax to its
compiled kernel (``klayers.ops.softmax``), every activation with a code (``klayers.ops.common``:
relu, relu6, tanh, sigmoid, the hard sigmoids, swish / silu, hard swish, gelu, elu, selu,
softplus, softsign, exponential, mish) to the elementwise kernel (``_ext/activation.pyx``), and
everything else to the activation function.

Dense, convolution and locally-connected ops fuse linear, relu and relu6 into their kernels'
epilogue and call :func:`apply_activation` for the rest (``klayers.ops.common.split_activation``
says which is which) on their own fresh output, in place; the Activation layer calls it
directly.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from klayers import activations
from klayers._ext import activation as _act
from klayers.backend import arena, tape
from klayers.ops.common import (
    FLOATS,
    Activation,
    activation_code,
    activation_function,
    contiguous,
    op_threads,
)
from klayers.ops.softmax import softmax

__all__ = ["apply_activation", "apply_activation_reference", "SERIAL_VALUES"]

#: Keras 2's and Keras 3's softmax are the same function object
_SOFTMAX = (activations.softmax, activations.keras3.softmax)

#: arrays with fewer values run on one thread (waking the team costs more than it saves)
SERIAL_VALUES = 32768


def apply_activation(y: np.ndarray, fn: Activation, n_threads: Optional[int] = None,
                     inplace: bool = False) -> np.ndarray:
    """``fn(y)``, compiled where a kernel computes ``fn``.

    Args:
        y: an op's output (or any array).
        fn: a layer's activation (any callable) or an activation code
            (``klayers.ops.common.ACTIVATION_CODES``). Softmax (over the last axis, as
            ``activations.softmax``) runs on its kernel; functions with a code on float32 /
            float64 arrays run on the elementwise kernel (the same values as the function up
            to float rounding, NaN and inf where it puts them); other callables are called as
            they are, and so is softmax on inputs of rank below 2, where
            ``activations.softmax`` raises tf-keras's error.
        n_threads: the kernels' threads (default: ``klayers.get_num_threads()`` for large
            inputs, one below ``SERIAL_VALUES`` values).
        inplace: the result may overwrite ``y`` (an op passes its own fresh output).

    Raises:
        ValueError: ``fn`` is an int that is not a code.
    """
    if any(fn is s for s in _SOFTMAX) and isinstance(y, np.ndarray) and y.ndim >= 2:
        return softmax(y, -1, n_threads, where="softmax activation")
    code = activation_code(fn) if callable(fn) else int(fn)
    if code < 0 or not isinstance(y, np.ndarray) or y.dtype not in FLOATS:
        tape.spoil()  # a Python function (or NumPy formula) is not recorded
        return activation_function(fn)(y)
    x = contiguous(y)
    own = inplace and x is y and y.flags.writeable
    out = y if own else arena.empty(y.shape, y.dtype)
    tape.run(_act.activation_forward, x.reshape(-1), out.reshape(-1), code,
             op_threads(n_threads, y.size, SERIAL_VALUES))
    return out


def apply_activation_reference(y: np.ndarray, fn: Activation, n_threads: Optional[int] = None,
                               inplace: bool = False) -> np.ndarray:
    """NumPy twin of :func:`apply_activation`: ``fn(y)``, or the NumPy formula of code ``fn``
    (softmax is ``klayers.backend``'s NumPy formula, the one the softmax kernel's reference
    twin uses); ``y`` is never overwritten."""
    return activation_function(fn)(y)
