"""Transposed convolution (``Conv1DTranspose`` / ``Conv2DTranspose`` / ``Conv3DTranspose``): the
compiled kernel (``_ext/conv_transpose.pyx``) and its NumPy twin. Arguments are checked and
turned into the kernels' named geometry with the helpers of :mod:`klayers.ops.conv`.
"""

from __future__ import annotations

from math import prod
from typing import Optional, Sequence

import numpy as np

from klayers._ext import conv_transpose as _conv_transpose
from klayers.ops import shapes
from klayers.ops.activation import apply_activation
from klayers.ops.common import (
    ACT_LINEAR,
    Activation,
    call_pinned,
    float_dtype,
    op_threads,
    split_activation,
)
from klayers.ops.conv import _bias_arg, _check_input, _flat, _geometry, _reference_epilogue, _tuple
from klayers.ops.shapes import conv_transpose_output_shape

#: Bytes of GEMM output per transposed-conv task. Larger than L2 on purpose: a task recomputes
#: the (k - 1) / s input rows it shares with the next one, and on one core 4 MB beat 2 MB by
#: 10-12 % (Conv2DTranspose 28x28x64 k4 s2: 0.59 against 0.66 ms) and 1 MB by 20 %.
TRANSPOSE_CHUNK_BYTES = 4 << 20

__all__ = ["conv_transpose", "conv_transpose_reference", "conv_transpose_output_shape"]


def _transpose_setup(x, kernel, bias, strides, padding, output_padding, dilation_rate, data_format, where):
    rank = kernel.ndim - 2
    if rank not in (1, 2, 3):
        raise ValueError(f"{where}: kernel must have rank 3-5 (k..., filters, cin), got shape {kernel.shape}")
    _check_input(x, rank, where)
    s, d = _tuple(strides, rank, "strides"), _tuple(dilation_rate, rank, "dilation_rate")
    op = None if output_padding is None else shapes.normalize_tuple(output_padding, rank, "output_padding", allow_zero=True)
    k = tuple(kernel.shape[:rank])
    n, spatial, cin = shapes.split_shape(x.shape, data_format)
    filters = kernel.shape[-2]
    if kernel.shape[-1] != cin:
        raise ValueError(f"{where}: the input has {cin} channels but the kernel expects {kernel.shape[-1]} (shape {kernel.shape})")
    if bias is not None and bias.shape != (filters,):
        raise ValueError(f"{where}: bias must have shape ({filters},), got {bias.shape}")
    if padding not in ("valid", "same"):
        raise ValueError(f"{where}: padding must be 'valid' or 'same', got {padding!r}")
    out = shapes.conv_transpose_output_sizes(spatial, k, padding, op, s, d)
    if any(o <= 0 for o in out):
        raise ValueError(f"{where}: the output would have a non-positive size {out} for input shape {x.shape}")
    pads = shapes.conv_transpose_pads(out, k, padding, s, d)
    return rank, s, d, k, n, spatial, cin, filters, out, pads


def conv_transpose(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], strides: int | Sequence[int] = 1,
                   padding: str = "valid", output_padding: Optional[int | Sequence[int]] = None,
                   dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                   act: Activation = ACT_LINEAR, n_threads: Optional[int] = None,
                   where: str = "conv_transpose") -> np.ndarray:
    """Transposed convolution (the gradient of :func:`conv` with respect to its input).

    Args:
        x: ``(batch, *spatial, cin)`` or channels_first.
        kernel: ``(*kernel_size, filters, cin)`` (Keras's transposed layout).
        output_padding: None or per-axis extra output size (tf-keras's ``deconv_output_length``).

    Returns:
        ``(batch, *out, filters)`` with ``out = n * s + max(k_eff - s, 0)`` ("valid"), ``n * s``
        ("same"), or ``(n - 1) * s + k_eff - 2 * pad + output_padding`` when it is given.
    """
    rank, s, d, k, n, spatial, cin, filters, out, pads = _transpose_setup(
        x, kernel, bias, strides, padding, output_padding, dilation_rate, data_format, where)
    code, rest = split_activation(act)
    dtype = float_dtype(kernel.dtype)
    y = np.empty(shapes.join_shape(n, out, filters, data_format), dtype=dtype)
    geo = _geometry(n, cin, filters, 1, data_format, spatial, out, k, s, d, pads)
    threads = op_threads(n_threads)
    plane_in = prod(spatial[1:]) if rank > 1 else 1
    row_bytes = plane_in * prod(k) * filters * dtype.itemsize
    in_rows = max(1, TRANSPOSE_CHUNK_BYTES // max(1, row_bytes))
    block = max(1, in_rows * s[0])
    # a block recomputes the input rows it shares with its neighbours ((k - 1) / s of them):
    # split for the threads, but only as far as they need (one block per thread)
    if threads > 1 and n * -(-out[0] // block) < threads:
        block = max(1, -(-out[0] * n // threads))
    call_pinned(threads, _conv_transpose.conv_transpose_forward, _flat(x, dtype), _flat(kernel, dtype),
                _bias_arg(bias, dtype), y.reshape(-1), geo, bias is not None, code, int(block), threads)
    return y if rest is None else apply_activation(y, rest, n_threads, inplace=True)


def conv_transpose_reference(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray],
                             strides: int | Sequence[int] = 1, padding: str = "valid",
                             output_padding: Optional[int | Sequence[int]] = None,
                             dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                             act: Activation = ACT_LINEAR, n_threads: Optional[int] = None,
                             where: str = "conv_transpose") -> np.ndarray:
    """NumPy twin of :func:`conv_transpose`: scatter-add ``x @ W[tap]^T`` per tap into a padded
    buffer, then crop the padding."""
    rank, s, d, k, n, spatial, cin, filters, out, pads = _transpose_setup(
        x, kernel, bias, strides, padding, output_padding, dilation_rate, data_format, where)
    code, rest = split_activation(act)
    dtype = float_dtype(kernel.dtype)
    xl = np.asarray(x, dtype=dtype)
    if data_format == "channels_first":
        xl = np.moveaxis(xl, 1, -1)
    full = [shapes.conv_transpose_extent(nn, o, ki, si, di, p) for nn, si, ki, di, o, p in zip(spatial, s, k, d, out, pads)]
    buf = np.zeros((n,) + tuple(full) + (filters,), dtype=dtype)
    for tap in np.ndindex(*k):
        sl = tuple(slice(t * di, t * di + (nn - 1) * si + 1, si) for t, di, si, nn in zip(tap, d, s, spatial))
        buf[(slice(None),) + sl] += xl @ kernel[tap].astype(dtype).T
    y = buf[(slice(None),) + tuple(slice(p, p + o) for p, o in zip(pads, out))]
    if bias is not None:
        y = y + bias.astype(dtype)
    return _reference_epilogue(y, code, rest, data_format)
