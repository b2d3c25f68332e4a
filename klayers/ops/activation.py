"""A layer's activation, applied through the ops: the one entry point that sends softmax to its
compiled kernel (``klayers.ops.softmax``) and everything else to the activation function.

Dense, convolution and locally-connected ops fuse linear, relu and relu6 into their kernels'
epilogue and call :func:`apply_activation` for the rest (``klayers.ops.common.split_activation``
says which is which); the Activation layer calls it directly.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from klayers import activations
from klayers.ops.softmax import softmax

__all__ = ["apply_activation", "apply_activation_reference"]

#: Keras 2's and Keras 3's softmax are the same function object
_SOFTMAX = (activations.softmax, activations.keras3.softmax)


def apply_activation(y: np.ndarray, fn: Callable[[np.ndarray], np.ndarray],
                     n_threads: Optional[int] = None) -> np.ndarray:
    """``fn(y)``, with softmax (over the last axis, as ``activations.softmax``) computed by the
    compiled kernel. Other functions are called as they are; so is softmax on inputs of rank
    below 2, where ``activations.softmax`` raises tf-keras's error.

    Args:
        y: an op's output.
        fn: a layer's activation (any callable).
        n_threads: threads for the softmax kernel (default: ``klayers.get_num_threads()`` for
            large inputs).
    """
    if any(fn is s for s in _SOFTMAX) and isinstance(y, np.ndarray) and y.ndim >= 2:
        return softmax(y, -1, n_threads, where="softmax activation")
    return fn(y)


def apply_activation_reference(y: np.ndarray, fn: Callable[[np.ndarray], np.ndarray],
                               n_threads: Optional[int] = None) -> np.ndarray:
    """NumPy twin of :func:`apply_activation`: ``fn(y)`` (softmax is ``klayers.backend``'s NumPy
    formula, the one the softmax kernel's reference twin uses)."""
    return fn(y)
