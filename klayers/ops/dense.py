"""Dense: ``act(x @ kernel + bias)`` over the last axis of ``x``."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from klayers._ext import dense as _dense
from klayers._threads import blas_single_threaded, get_num_threads

ACT_LINEAR = _dense.ACT_LINEAR
ACT_RELU = _dense.ACT_RELU
ACT_RELU6 = _dense.ACT_RELU6

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_EMPTY = {d: np.empty(0, dtype=d) for d in _FLOATS}
#: Kernels at least this large (elements) make a batch-1 product worth splitting over threads.
_SPLIT_GEMV_MIN = 1 << 20


def _check(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], where: str) -> None:
    if kernel.ndim != 2:
        raise ValueError(f"{where}: kernel must be 2-D (input_dim, units), got shape {kernel.shape}")
    if x.ndim < 1:
        raise ValueError(f"{where}: input must have at least 1 dimension, got a scalar")
    if x.shape[-1] != kernel.shape[0]:
        raise ValueError(
            f"{where}: the last axis of the input ({x.shape[-1]}) does not match the kernel's "
            f"input_dim ({kernel.shape[0]}); input shape {x.shape}, kernel shape {kernel.shape}"
        )
    if bias is not None and bias.shape != (kernel.shape[1],):
        raise ValueError(f"{where}: bias must have shape ({kernel.shape[1]},), got {bias.shape}")


def dense_reference(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], act: int = ACT_LINEAR) -> np.ndarray:
    """NumPy twin of :func:`dense` (the readable oracle)."""
    _check(x, kernel, bias, "dense")
    y = np.matmul(x, kernel)
    if bias is not None:
        y = y + bias
    if act == ACT_RELU:
        y = np.maximum(y, 0)
    elif act == ACT_RELU6:
        y = np.clip(y, 0, 6)
    return y.astype(np.result_type(x.dtype, kernel.dtype), copy=False)


def dense(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], act: int = ACT_LINEAR,
          n_threads: Optional[int] = None, where: str = "dense") -> np.ndarray:
    """``act(x @ kernel + bias)`` with the compiled GEMM kernel.

    Args:
        x: ``(..., input_dim)``, float32 or float64 (same dtype as ``kernel``).
        kernel: ``(input_dim, units)``.
        bias: ``(units,)`` or None.
        act: ``ACT_LINEAR``, ``ACT_RELU`` or ``ACT_RELU6`` (fused); others are applied by the caller.
        n_threads: threads for the epilogue (default: ``klayers.get_num_threads()``); BLAS follows
            ``klayers.set_num_threads``.
        where: the layer name for error messages.

    Returns:
        ``(..., units)`` array of ``kernel.dtype``.
    """
    _check(x, kernel, bias, where)
    dtype = kernel.dtype
    if dtype not in _FLOATS:
        return dense_reference(x.astype(dtype, copy=False), kernel, bias, act)
    lead = x.shape[:-1]
    if x.ndim == 2 and x.dtype == dtype and x.flags.c_contiguous:
        x2 = x
    else:
        x2 = np.ascontiguousarray(x.reshape(math.prod(lead), x.shape[-1]), dtype=dtype)
    w = kernel if kernel.flags.c_contiguous else np.ascontiguousarray(kernel)
    if bias is None:
        b = _EMPTY[dtype]
    else:
        b = bias if bias.flags.c_contiguous and bias.dtype == dtype else np.ascontiguousarray(bias, dtype=dtype)
    out = np.empty((x2.shape[0], w.shape[1]), dtype=dtype)
    threads = n_threads or get_num_threads()
    if x2.shape[0] == 1 and threads > 1 and w.size >= _SPLIT_GEMV_MIN:
        # a large batch-1 GEMV: split by units over OpenMP threads, BLAS on one thread each
        with blas_single_threaded():
            _dense.dense_forward(x2, w, b, out, bias is not None, act, threads)
    else:
        _dense.dense_forward(x2, w, b, out, bias is not None, act, 1)
    return out if x.ndim == 2 else out.reshape(lead + (w.shape[1],))
