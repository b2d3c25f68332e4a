"""Dense: ``act(x @ kernel + bias)`` over the last axis of ``x``."""

from __future__ import annotations

import math
from typing import Callable, Optional, Tuple

import numpy as np

from klayers._ext import conv as _conv
from klayers._ext import dense as _dense
from klayers.backend import arena, tape
from klayers.ops.activation import apply_activation, apply_activation_reference
from klayers.ops.common import (
    ACT_LINEAR,
    ACT_RELU,
    ACT_RELU6,
    ALL_CODES,
    FLOATS,
    Activation,
    activation_function,
    call_pinned,
    contiguous,
    op_threads,
    run_prepared,
    split_activation,
)

__all__ = ["ACT_LINEAR", "ACT_RELU", "ACT_RELU6", "dense", "dense_call", "dense_reference", "pack_dense_kernel"]

_EMPTY = {d: np.empty(0, dtype=d) for d in FLOATS}
#: Kernels at least this large (elements) make a batch-1 product worth splitting over threads.
_SPLIT_GEMV_MIN = 1 << 20
#: Products of fewer multiply-adds run on one thread (waking the team costs more).
SERIAL_MACS = 1 << 18
#: Fewest rows for which a packed kernel is used (at one row it streams the kernel a little
#: faster than BLAS's GEMV: 2048 x 1000 154 us against 172, cold from L3, 2 threads).
PACKED_MIN_ROWS = 1


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


def dense_reference(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], act: Activation = ACT_LINEAR,
                    n_threads: Optional[int] = None, where: str = "dense",
                    packed: Optional[Callable[[], Optional[np.ndarray]]] = None) -> np.ndarray:
    """NumPy twin of :func:`dense` (the readable oracle; ``packed`` is ignored: it only gives
    ``kernel`` in another layout)."""
    _check(x, kernel, bias, where)
    code, rest = split_activation(act)
    y = np.matmul(x, kernel)
    if bias is not None:
        y = y + bias
    y = activation_function(code)(y).astype(np.result_type(x.dtype, kernel.dtype), copy=False)
    return y if rest is None else apply_activation_reference(y, rest)


def pack_dense_kernel(kernel: np.ndarray) -> Optional[np.ndarray]:
    """``kernel`` (``(input_dim, units)``, float32 or float64) in the column strips of the packed
    GEMM (``_ext/skinny_gemm.h``), for :func:`dense`'s ``packed``; None for other dtypes or
    ranks. The one packing of a matrix: convolutions (their kernel as ``(taps * cin, filters)``)
    and recurrent kernels use it too."""
    if kernel.ndim != 2 or np.dtype(kernel.dtype) not in FLOATS:
        return None
    k, n = kernel.shape
    out = np.empty(_conv.packed_size(k, n, kernel.dtype.itemsize), kernel.dtype)
    _conv.pack_kernel(np.ascontiguousarray(kernel).reshape(-1), k, n, out)
    return out


def dense_call(x_shape: Tuple[int, ...], kernel: np.ndarray, bias: Optional[np.ndarray],
               act: Activation = ACT_LINEAR, n_threads: Optional[int] = None, where: str = "dense",
               packed: Optional[Callable[[], Optional[np.ndarray]]] = None) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`dense` of inputs of shape ``x_shape`` with these weights, prepared: the checks, the
    activation split, the packed kernel and the thread count are settled once; the returned
    callable only allocates the output and runs the packed GEMM (the inference plan keeps one
    per input shape). Without a usable packed kernel it is :func:`dense` itself."""
    x_shape = tuple(x_shape)
    dtype = kernel.dtype
    _check(np.empty(x_shape, dtype if dtype in FLOATS else np.float32), kernel, bias, where)
    pk = packed() if packed is not None and dtype in FLOATS else None
    if pk is None or pk.dtype != dtype or kernel.ndim != 2:
        return lambda x: dense(x, kernel, bias, act, n_threads, where, packed)
    code, rest = split_activation(act, ALL_CODES)
    lead, features, units = x_shape[:-1], x_shape[-1], kernel.shape[1]
    rows = math.prod(lead)
    b = _EMPTY[dtype] if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    use_bias = bias is not None
    threads = op_threads(n_threads, rows * kernel.size, SERIAL_MACS)

    alloc = arena.allocator((rows, units), dtype)
    kernel = _dense.DensePackedKernel(pk, b, rows, features, units, use_bias, code, threads)
    out_shape = lead + (units,)

    def call(x: np.ndarray) -> np.ndarray:
        if x.shape != x_shape:
            raise ValueError(f"{where}: this call was prepared for inputs of shape {x_shape}, got {x.shape}")
        y = alloc(out_shape, dtype)
        run_prepared(kernel, x, y, dtype)
        return y if rest is None else apply_activation(y, rest, n_threads, inplace=True)
    return call


def dense(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], act: Activation = ACT_LINEAR,
          n_threads: Optional[int] = None, where: str = "dense",
          packed: Optional[Callable[[], Optional[np.ndarray]]] = None) -> np.ndarray:
    """``act(x @ kernel + bias)`` with the compiled GEMM kernel.

    Args:
        x: ``(..., input_dim)``, float32 or float64 (same dtype as ``kernel``).
        kernel: ``(input_dim, units)``.
        bias: ``(units,)`` or None.
        act: an activation code (``klayers.ops.common.ACTIVATION_CODES``) or the layer's
            activation function: every code (and every function with one) runs in the
            kernel's epilogue; any other function runs after it (softmax through its kernel:
            ``klayers.ops.activation.apply_activation``).
        n_threads: threads for a large batch-1 product (default: ``klayers.get_num_threads()``);
            BLAS follows ``klayers.set_num_threads``.
        where: the layer name for error messages.
        packed: None, or a function returning ``pack_dense_kernel(kernel)`` of this very
            ``kernel`` (a cache the caller keeps per weight version, as the inference plan
            does); called once per call, when the inputs are float32 / float64 and at least
            ``PACKED_MIN_ROWS`` rows: the product then streams the packed strips (the packed
            GEMM, threads splitting rows and strips; no BLAS).

    Returns:
        ``(..., units)`` array of ``kernel.dtype``.

    Example::

        dense(np.ones((2, 3), "float32"), np.ones((3, 4), "float32"), None).shape  # (2, 4), all 3.0
    """
    _check(x, kernel, bias, where)
    code, rest = split_activation(act, ALL_CODES)  # every code runs in the kernel's epilogue
    dtype = kernel.dtype
    if dtype not in FLOATS:
        return dense_reference(x.astype(dtype, copy=False), kernel, bias, act, n_threads, where)
    lead = x.shape[:-1]
    if x.ndim == 2 and x.dtype == dtype and x.flags.c_contiguous:
        x2 = x
    else:
        x2 = contiguous(x, dtype).reshape(math.prod(lead), x.shape[-1])
    w = kernel if kernel.flags.c_contiguous else np.ascontiguousarray(kernel)
    if bias is None:
        b = _EMPTY[dtype]
    else:
        b = bias if bias.flags.c_contiguous and bias.dtype == dtype else np.ascontiguousarray(bias, dtype=dtype)
    out = arena.empty((x2.shape[0], w.shape[1]), dtype)
    if packed is not None and x2.shape[0] >= PACKED_MIN_ROWS:
        pk = packed()
        if pk is not None and pk.dtype == dtype:
            threads = op_threads(n_threads, x2.shape[0] * w.size, SERIAL_MACS)
            tape.run(_dense.DensePackedKernel(pk, b, x2.shape[0], x2.shape[1], w.shape[1], bias is not None, code,
                                              threads), x2, out)
            y = out if x.ndim == 2 else out.reshape(lead + (w.shape[1],))
            return y if rest is None else apply_activation(y, rest, n_threads, inplace=True)
    # one level of parallelism: the kernel splits the units over OpenMP threads, BLAS on one
    # thread in each (a batch-1 GEMV from _SPLIT_GEMV_MIN weights, a GEMM from SERIAL_MACS)
    rows = x2.shape[0]
    threads = (op_threads(n_threads) if w.size >= _SPLIT_GEMV_MIN else 1) if rows == 1 else \
        op_threads(n_threads, rows * w.size, SERIAL_MACS)
    call_pinned(threads, _dense.dense_forward, x2, w, b, out, bias is not None, code, threads)
    y = out if x.ndim == 2 else out.reshape(lead + (w.shape[1],))
    return y if rest is None else apply_activation(y, rest, n_threads, inplace=True)
