"""Locally-connected (unshared-weight) convolution in 1-D and 2-D, and the conversions of
tf-keras's three weight layouts to the one the kernel computes with.

The compute layout is tf-keras's implementation-1 kernel ``(P, F, O)``: ``P`` output
positions (row-major over the output grid), ``F = prod(kernel_size) * cin`` patch features
ordered ``(ky, kx, c)`` for channels_last and ``(c, ky, kx)`` for channels_first (how
``tf_keras.backend.local_conv`` flattens a patch), ``O`` filters. Implementation 2's dense
masked kernel and implementation 3's sparse kernel are gathered into it once
(:func:`positions_kernel`); taps that fall off the input (``"same"`` padding, which only
implementations 2 and 3 accept) hold zeros.

Window ``o`` along an axis covers input ``[o * s - pad, o * s - pad + k)`` clipped to the
input, with ``pad = shapes.connected_pad_before(k, padding)`` (tf-keras's
``conv_connected_inputs``), and the output length is ``shapes.conv_output_length``.
"""

from __future__ import annotations

import functools
import math
from typing import Optional, Sequence, Tuple

import numpy as np

from klayers._ext import local as _local
from klayers.ops import shapes
from klayers.ops.activation import apply_activation, apply_activation_reference
from klayers.ops.common import (
    ACT_LINEAR,
    ACT_RELU,
    ACT_RELU6,
    FLOATS,
    Activation,
    activation_function,
    call_pinned,
    op_threads,
    split_activation,
)

__all__ = ["ACT_LINEAR", "ACT_RELU", "ACT_RELU6", "local_conv", "local_conv_reference", "n_sparse_weights",
           "output_spatial", "positions_bias", "positions_kernel", "window_index"]

#: Bytes of one thread's patch block: with the position's kernel it stays in L2.
_PATCH_BYTES = 96 * 1024

Ints = Sequence[int]


def output_spatial(in_spatial: Ints, kernel_size: Ints, strides: Ints, padding: str) -> Tuple[int, ...]:
    """The output's spatial shape (tf-keras's ``conv_output_length`` per axis:
    :func:`klayers.ops.shapes.connected_output_sizes`)."""
    return shapes.connected_output_sizes(in_spatial, kernel_size, strides, padding)


def window_index(in_spatial: Ints, kernel_size: Ints, strides: Ints, padding: str) -> np.ndarray:
    """``(P, T)`` int64: the flat input position of tap ``t`` of output position ``p``
    (row-major over the spatial axes), or -1 where the tap falls off the input."""
    per_axis = []
    for n, k, s in zip(in_spatial, kernel_size, strides):
        out = shapes.conv_output_length(n, k, padding, s)
        pad = shapes.connected_pad_before(k, padding)
        idx = np.arange(out)[:, None] * s - pad + np.arange(k)[None, :]
        per_axis.append((idx, (idx >= 0) & (idx < n), n))
    flat = np.zeros((1, 1), np.int64)
    valid = np.ones((1, 1), bool)
    for idx, ok, n in per_axis:
        # (P_sofar, T_sofar) x (out_d, k_d) -> (P_sofar * out_d, T_sofar * k_d), row-major
        flat = (flat[:, None, :, None] * n + idx[None, :, None, :]).reshape(flat.shape[0] * idx.shape[0], -1)
        valid = (valid[:, None, :, None] & ok[None, :, None, :]).reshape(flat.shape)
    return np.where(valid, flat, -1)


def n_sparse_weights(in_spatial: Ints, cin: int, filters: int, kernel_size: Ints, strides: Ints, padding: str) -> int:
    """The length of implementation 3's kernel: connected (input, output) value pairs."""
    return int((window_index(in_spatial, kernel_size, strides, padding) >= 0).sum()) * cin * filters


def positions_kernel(kernel: np.ndarray, implementation: int, in_spatial: Ints, cin: int, filters: int,
                     kernel_size: Ints, strides: Ints, padding: str, data_format: str) -> np.ndarray:
    """tf-keras's kernel for ``implementation`` 1, 2 or 3 in the implementation-1 layout.

    Args:
        kernel: the weight as tf-keras stores it: ``(P, F, O)`` (1); the dense
            ``(*in_spatial, cin, *out_spatial, O)`` / ``(cin, *in_spatial, O, *out_spatial)``
            for channels_last / channels_first (2; entries outside a window are ignored, as
            tf-keras's mask zeroes them); the ``(n,)`` values of the sparse matrix in sorted
            ``(output index, input index)`` order (3).

    Returns:
        A C-contiguous ``(P, F, O)`` array of ``kernel.dtype`` (implementation 1's array
        itself when it already is one).

    Raises:
        ValueError: the kernel's shape does not fit the geometry, or a bad implementation.
    """
    idx = window_index(in_spatial, kernel_size, strides, padding)
    n_pos, n_taps = idx.shape
    n_in = int(np.prod(in_spatial))
    out_spatial = output_spatial(in_spatial, kernel_size, strides, padding)
    cf = data_format == "channels_first"
    feat = n_taps * cin
    if implementation == 1:
        want: Tuple[int, ...] = (n_pos, feat, filters)
        _check_shape(kernel, want, 1)
        return np.ascontiguousarray(kernel)
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    pos = np.arange(n_pos)[:, None]
    if implementation == 2:
        if cf:
            want = (cin,) + tuple(in_spatial) + (filters,) + out_spatial
            _check_shape(kernel, want, 2)
            k2 = kernel.reshape(cin, n_in, filters, n_pos)
            g = k2[:, safe, :, pos]  # advanced axes first: (P, T, cin, O)
        else:
            want = tuple(in_spatial) + (cin,) + out_spatial + (filters,)
            _check_shape(kernel, want, 2)
            k2 = kernel.reshape(n_in, cin, n_pos, filters)
            g = k2[safe, :, pos, :]  # (P, T, cin, O)
        g[~valid] = 0
    elif implementation == 3:
        count = int(valid.sum()) * cin * filters
        _check_shape(kernel, (count,), 3)
        p_, t_, c_, o_ = np.meshgrid(np.arange(n_pos), np.arange(n_taps), np.arange(cin), np.arange(filters),
                                     indexing="ij", sparse=True)
        sp = idx[p_, t_]
        if cf:  # tf-keras flattens (filter, *spatial) / (channel, *spatial)
            out_idx = o_ * n_pos + p_
            in_idx = c_ * n_in + sp
        else:
            out_idx = p_ * filters + o_
            in_idx = sp * cin + c_
        keep = np.broadcast_to(valid[:, :, None, None], (n_pos, n_taps, cin, filters))
        keys = (out_idx.astype(np.int64) * (n_in * cin) + in_idx)[keep]
        # tf-keras stores the values in sorted (output, input) order: value i belongs to the
        # i-th smallest key
        rank = np.empty(keys.size, np.int64)
        rank[np.argsort(keys, kind="stable")] = np.arange(keys.size)
        g = np.zeros((n_pos, n_taps, cin, filters), kernel.dtype)
        g[keep] = kernel[rank]
    else:
        raise ValueError(f"Unrecognized implementation mode: {implementation!r}. Expected 1, 2 or 3.")
    if cf:
        g = g.transpose(0, 2, 1, 3)  # features (c, taps)
    return np.ascontiguousarray(g.reshape(n_pos, feat, filters))


def _check_shape(kernel: np.ndarray, want: Tuple[int, ...], implementation: int) -> None:
    if tuple(kernel.shape) != tuple(want):
        raise ValueError(
            f"The implementation-{implementation} kernel must have shape {tuple(want)} for this layer; "
            f"received shape {tuple(kernel.shape)}"
        )


def positions_bias(bias: np.ndarray, data_format: str) -> np.ndarray:
    """tf-keras's bias ``(*out_spatial, O)`` as the ``(P, O)`` values the kernel adds.

    tf-keras adds it with ``backend.bias_add``, which for channels_first *reshapes* (it does
    not transpose) the bias to ``(1, O, *out_spatial)``; that pairing is kept here.
    """
    n_filters = bias.shape[-1]
    if data_format == "channels_first":
        return np.ascontiguousarray(bias.reshape(n_filters, -1).T)
    return np.ascontiguousarray(bias.reshape(-1, n_filters))


def _geometry(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], kernel_size: Ints, strides: Ints,
              padding: str, data_format: str, where: str):
    """``(channels_first, in_spatial, cin, out_spatial)``, or a ValueError naming ``where``."""
    return _plan(x.shape, kernel.shape, None if bias is None else bias.shape, tuple(kernel_size), tuple(strides),
                 padding, data_format, where)[:4]


@functools.lru_cache(maxsize=512)
def _plan(x_shape: Tuple[int, ...], k_shape: Tuple[int, ...], b_shape: Optional[Tuple[int, ...]],
          kernel_size: Tuple[int, ...], strides: Tuple[int, ...], padding: str, data_format: str, where: str):
    """Checks shapes and works out the kernel's geometry once per distinct call signature
    (a batch-1 call is tens of microseconds: Python overhead matters)."""
    rank = len(kernel_size)
    if rank not in (1, 2) or len(strides) != rank:
        raise ValueError(f"{where}: kernel_size and strides must both have 1 or 2 entries; "
                         f"received kernel_size={kernel_size}, strides={strides}")
    if len(x_shape) != rank + 2:
        raise ValueError(f"{where}: expected an input of rank {rank + 2}, received shape {x_shape}")
    if min(kernel_size) < 1 or min(strides) < 1 or max(max(kernel_size), max(strides)) > shapes.MAX_DIM:
        raise ValueError(f"{where}: kernel_size and strides must be integers in [1, {shapes.MAX_DIM}]; "
                         f"received kernel_size={kernel_size}, strides={strides}")
    if padding not in ("valid", "same") or data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{where}: padding must be 'valid' or 'same' and data_format 'channels_last' or "
                         f"'channels_first'; received padding={padding!r}, data_format={data_format!r}")
    cf = data_format == "channels_first"
    in_spatial = tuple(x_shape[2:]) if cf else tuple(x_shape[1:-1])
    cin = int(x_shape[1] if cf else x_shape[-1])
    out_spatial = output_spatial(in_spatial, kernel_size, strides, padding)
    if min(out_spatial) <= 0:
        raise ValueError(f"{where}: the input's spatial shape {in_spatial} is smaller than the window "
                         f"{kernel_size} (output shape would be {out_spatial})")
    n_pos = math.prod(out_spatial)
    feat = math.prod(kernel_size) * cin
    if len(k_shape) != 3 or tuple(k_shape[:2]) != (n_pos, feat):
        raise ValueError(f"{where}: the kernel must have shape ({n_pos}, {feat}, filters) for an input of shape "
                         f"{x_shape}; received {k_shape}")
    if b_shape is not None and tuple(b_shape) != (n_pos, k_shape[2]):
        raise ValueError(f"{where}: the bias must have shape ({n_pos}, {k_shape[2]}); received {b_shape}")
    if rank == 1:  # 1-D is 2-D with one row
        in_hw, k_hw, s_hw, out_hw = (1, in_spatial[0]), (1, kernel_size[0]), (1, strides[0]), (1, out_spatial[0])
    else:
        in_hw, k_hw, s_hw, out_hw = in_spatial, kernel_size, strides, out_spatial
    pads = tuple(shapes.connected_pad_before(k, padding) for k in k_hw)
    # the kernel's named geometry (_ext/_conv_geometry.pxd), the two axes on axes 1 and 2
    geometry = dict(batch=x_shape[0], in_channels=cin, out_channels=k_shape[2], groups=1, channels_first=cf,
                    in_size=(1,) + tuple(in_hw), out_size=(1,) + tuple(out_hw), kernel_size=(1,) + tuple(k_hw),
                    strides=(1,) + tuple(s_hw), dilation_rate=(1, 1, 1), pad_before=(0,) + pads)
    return cf, in_spatial, cin, out_spatial, geometry, math.prod(in_spatial) * cin


def _finish_shape(y: np.ndarray, batch: int, out_spatial: Tuple[int, ...], filters: int, cf: bool) -> np.ndarray:
    return y.reshape((batch, filters) + out_spatial if cf else (batch,) + out_spatial + (filters,))


def local_conv_reference(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], kernel_size: Ints,
                         strides: Ints, padding: str, data_format: str, act: Activation = ACT_LINEAR,
                         n_threads: Optional[int] = None, where: str = "local_conv") -> np.ndarray:
    """NumPy twin of :func:`local_conv` (the readable oracle; ``n_threads`` is ignored)."""
    code, rest = split_activation(act)
    cf, in_spatial, cin, out_spatial = _geometry(x, kernel, bias, kernel_size, strides, padding, data_format, where)
    batch, n_in = x.shape[0], math.prod(in_spatial)
    idx = window_index(in_spatial, kernel_size, strides, padding)
    idx = np.where(idx >= 0, idx, n_in)  # -> the appended zero position
    dtype = np.result_type(x.dtype, kernel.dtype)
    if cf:
        xs = np.concatenate([x.reshape(batch, cin, n_in), np.zeros((batch, cin, 1), x.dtype)], axis=2)
        patches = xs[:, :, idx].transpose(0, 2, 1, 3)  # (B, P, cin, T)
    else:
        xs = np.concatenate([x.reshape(batch, n_in, cin), np.zeros((batch, 1, cin), x.dtype)], axis=1)
        patches = xs[:, idx, :]  # (B, P, T, cin)
    patches = patches.reshape(batch, idx.shape[0], -1)
    y = np.einsum("bpf,pfo->bpo", patches, kernel)
    if bias is not None:
        y = y + bias
    y = activation_function(code)(y)
    if cf:
        y = y.transpose(0, 2, 1)
    y = _finish_shape(np.ascontiguousarray(y, dtype=dtype), batch, out_spatial, kernel.shape[2], cf)
    return y if rest is None else apply_activation_reference(y, rest)


def local_conv(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], kernel_size: Ints,
               strides: Ints, padding: str, data_format: str, act: Activation = ACT_LINEAR,
               n_threads: Optional[int] = None, where: str = "local_conv") -> np.ndarray:
    """``act(local_conv(x, kernel) + bias)`` with the compiled kernel (one GEMM per position).

    Args:
        x: ``(batch, *spatial, cin)`` (channels_last) or ``(batch, cin, *spatial)``, 1 or 2
            spatial axes, float32 or float64 (cast to ``kernel.dtype``).
        kernel: ``(P, F, O)``, the implementation-1 layout (:func:`positions_kernel`).
        bias: ``(P, O)`` (:func:`positions_bias`) or None.
        kernel_size, strides: one int per spatial axis.
        padding: ``"valid"`` or ``"same"`` (tf-keras's locally-connected windows).
        data_format: ``"channels_last"`` or ``"channels_first"``.
        act: ``ACT_LINEAR``, ``ACT_RELU`` or ``ACT_RELU6`` (fused), or the layer's activation
            function (linear / relu / relu6 fuse; others run after the kernel).
        n_threads: OpenMP threads over output positions (default ``klayers.get_num_threads()``);
            BLAS runs single-threaded inside.
        where: the layer name for error messages.

    Returns:
        ``(batch, *out_spatial, O)`` or ``(batch, O, *out_spatial)`` of ``kernel.dtype``, with
        ``out_spatial = shapes.conv_output_length(n, k, padding, s)`` per axis.

    Example::

        w = np.ones((8, 3 * 2, 4), "float32")             # 1-D: 10 steps, k=3 -> 8 positions
        y = local_conv(np.ones((1, 10, 2), "float32"), w, None, (3,), (1,), "valid", "channels_last")
        y.shape                                           # (1, 8, 4), every value 6.0
    """
    dtype = kernel.dtype
    if dtype not in FLOATS:
        return local_conv_reference(x.astype(dtype, copy=False), kernel, bias, kernel_size, strides, padding,
                                    data_format, act, where=where)
    code, rest = split_activation(act)
    cf, _, _, out_spatial, geometry, row = _plan(x.shape, kernel.shape, None if bias is None else bias.shape,
                                                 tuple(kernel_size), tuple(strides), padding, data_format, where)
    batch = x.shape[0]
    n_pos, feat, filters = kernel.shape
    x2 = np.ascontiguousarray(x, dtype=dtype).reshape(batch, row)
    w = np.ascontiguousarray(kernel)
    b = np.ascontiguousarray(bias, dtype=dtype) if bias is not None else np.empty((0, 0), dtype)
    out = np.empty((batch, n_pos * filters), dtype)
    block_rows = max(1, min(batch, _PATCH_BYTES // max(1, feat * dtype.itemsize)))
    # one task (position, row block) leaves BLAS its threads
    items = n_pos * ((batch + block_rows - 1) // block_rows) if batch > 0 else 0
    threads = op_threads(n_threads) if items > 1 else 1
    call_pinned(threads, _local.local_forward, x2, w, b, out, geometry, bias is not None, code, block_rows, threads)
    y = _finish_shape(out, batch, out_spatial, filters, cf)
    return y if rest is None else apply_activation(y, rest, n_threads, inplace=True)
