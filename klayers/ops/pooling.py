"""Pooling ops: windowed max/average (rank 1-3) and global max/average, with NumPy twins.

Semantics are TensorFlow's, as tf-keras 2.21 runs them (recorded in the conformance references):

* windowed **max** ignores NaN and never returns less than the lowest finite value (a window of
  NaNs, of ``-inf`` or of padding gives ``-finfo.max``), because TF starts from the lowest value
  and keeps ``v`` only when ``v > m``;
* windowed **average** divides by the number of taps inside the input (``"same"`` padding is not
  counted);
* **global max** propagates NaN (``reduce_max``); **global average** is ``sum / count``, or with a
  mask ``sum(x * mask) / sum(mask)`` (a fully masked sample gives NaN, as in Keras).

Output sizes and padding come from :mod:`klayers.ops.shapes` (``conv_output_length``,
``padding_amounts``): ``"valid"``: ``floor((n - k) / s) + 1``; ``"same"``: ``ceil(n / s)``.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from klayers._ext import pooling as _pooling
from klayers.backend import arena, tape
from klayers.ops import shapes
from klayers.ops.common import FLOATS, contiguous, op_threads
from klayers.ops.shapes import pool_geometry

MODE_MAX = _pooling.MODE_MAX
MODE_AVG = _pooling.MODE_AVG
# Below this many input values (1 MiB of float32) a kernel runs on one thread: waking a sleeping
# OpenMP team costs 60-90 us (a spinning one, see klayers._ext, about 10), a 1 MiB pass about 40.
_MIN_PARALLEL = 1 << 18
# Global pooling of a small batch splits the spatial axis into this many values per slice at least.
_MIN_SLICE = 1 << 13


def _check_mode(mode: int) -> None:
    if mode not in (MODE_MAX, MODE_AVG):
        raise ValueError(f"Unknown pooling mode {mode!r}; expected MODE_MAX ({MODE_MAX}) or MODE_AVG ({MODE_AVG}).")


def _split(x: np.ndarray, rank: int, data_format: str, where: str) -> Tuple[Tuple[int, ...], int]:
    if x.ndim != rank + 2:
        raise ValueError(f"{where}: expected a {rank + 2}-D input (batch, {rank} spatial axes, channels), got shape {x.shape}")
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{where}: unknown data_format {data_format!r}")
    _, spatial, channels = shapes.split_shape(x.shape, data_format)
    return spatial, channels


def _zero_padding(spatial: Sequence[int], pool_size: Sequence[int], strides: Sequence[int], padding: Any,
                  data_format: str, mode: int, where: str) -> Tuple[Tuple[int, ...], list]:
    """``(output sizes, np.pad widths)`` of explicit ``(before, after)`` zero padding per spatial
    axis (max pooling only: a ZeroPadding layer folded into the pooling after it); the pairs
    are checked by :func:`klayers.ops.shapes.conv_output_sizes`, as for a convolution's."""
    if mode != MODE_MAX:
        raise ValueError(f"{where}: explicit zero padding is for max pooling only")
    out = shapes.conv_output_sizes(spatial, pool_size, padding, strides, (1,) * len(spatial), where)
    widths = [(0, 0)] + [tuple(p) for p in padding]
    return out, (widths + [(0, 0)] if data_format == "channels_last" else [(0, 0)] + widths)


def pool_reference(x: np.ndarray, pool_size: Sequence[int], strides: Sequence[int], padding: Any,
                   data_format: str, mode: int, n_threads: Optional[int] = None, where: str = "pooling") -> np.ndarray:
    """NumPy twin of :func:`pool` (the readable oracle; ``n_threads`` is ignored)."""
    _check_mode(mode)
    rank = len(pool_size)
    if not isinstance(padding, str):
        # explicit zero padding: the padded input, pooled "valid"
        _, widths = _zero_padding(_split(x, rank, data_format, where)[0], pool_size, strides, padding, data_format,
                                  mode, where)
        return pool_reference(np.pad(x, widths), pool_size, strides, "valid", data_format, mode, n_threads, where)
    spatial, _ = _split(x, rank, data_format, where)
    out_spatial, before = pool_geometry(spatial, pool_size, strides, padding, where)
    xs = x if data_format == "channels_last" else np.moveaxis(x, 1, -1)
    axes = tuple(range(1, rank + 1))
    pads = [(0, 0)] + [shapes.window_pads(n, o, k, s, b) for n, o, k, s, b in
                       zip(spatial, out_spatial, pool_size, strides, before)] + [(0, 0)]
    lowest = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min

    def windows(a: np.ndarray) -> np.ndarray:
        win = np.lib.stride_tricks.sliding_window_view(a, tuple(pool_size), axis=axes)
        index = (slice(None),) + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out_spatial, strides))
        return win[index]  # (B, *out_spatial, C, *pool_size)

    win_axes = tuple(range(-rank, 0))
    if mode == MODE_MAX:
        # NaN and padding never win; nothing is below the lowest finite value.
        padded = np.pad(xs, pads, constant_values=lowest)
        win = windows(np.where(np.isnan(padded), lowest, padded) if x.dtype.kind == "f" else padded)
        y = np.maximum(win.max(axis=win_axes, initial=lowest), lowest)
    else:
        with np.errstate(invalid="ignore"):  # inf - inf in a window is NaN, as in TensorFlow
            total = windows(np.pad(xs, pads)).sum(axis=win_axes)
        ones = np.pad(np.ones(spatial, dtype=np.int64), pads[1:-1])
        count = np.lib.stride_tricks.sliding_window_view(ones, tuple(pool_size))
        count = count[tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out_spatial, strides))].sum(axis=win_axes)
        y = total / count[None, ..., None].astype(x.dtype)
    y = y.astype(x.dtype, copy=False)
    return y if data_format == "channels_last" else np.moveaxis(y, -1, 1)


def pool(x: np.ndarray, pool_size: Sequence[int], strides: Sequence[int], padding: Any, data_format: str,
         mode: int, n_threads: Optional[int] = None, where: str = "pooling") -> np.ndarray:
    """Max (``MODE_MAX``) or average (``MODE_AVG``) pooling over ``len(pool_size)`` spatial axes.

    Args:
        x: ``(batch, *spatial, channels)`` (``"channels_last"``) or ``(batch, channels, *spatial)``,
            1 to 3 spatial axes; float32/float64 run the compiled kernel, other dtypes the reference.
        pool_size, strides: one positive int per spatial axis.
        padding: ``"valid"`` or ``"same"`` (TensorFlow's: the larger half of the padding after),
            or, for max pooling, explicit zero padding: one ``(before, after)`` pair per spatial
            axis, as a ZeroPadding layer before a "valid" pooling gives (the padded input is
            never made).
        data_format: ``"channels_last"`` or ``"channels_first"``.
        mode: ``MODE_MAX`` or ``MODE_AVG``.
        n_threads: OpenMP threads (default ``klayers.get_num_threads()``, or 1 for a small input).
        where: the layer name for error messages.

    Returns:
        The pooled array, same layout and dtype; spatial sizes ``floor((n - k) / s) + 1``
        (``"valid"``) or ``ceil(n / s)`` (``"same"``).

    Raises:
        ValueError: wrong rank, a stride below 1, or a ``"valid"`` window larger than the input.

    Example::

        y = pool(np.ones((1, 4, 4, 3), "float32"), (2, 2), (2, 2), "valid", "channels_last", MODE_MAX)
        y.shape   # (1, 2, 2, 3)
    """
    _check_mode(mode)
    x = np.asarray(x)
    rank = len(pool_size)
    if not 1 <= rank <= 3 or len(strides) != rank:
        raise ValueError(f"{where}: pool_size and strides must have 1 to 3 equal lengths; got {pool_size}, {strides}")
    if x.dtype not in FLOATS:
        return pool_reference(x, pool_size, strides, padding, data_format, mode, n_threads, where)
    spatial, channels = _split(x, rank, data_format, where)
    kernel_mode = mode
    if isinstance(padding, str):
        out_spatial, before = pool_geometry(spatial, pool_size, strides, padding, where)
    else:
        out_spatial, widths = _zero_padding(spatial, pool_size, strides, padding, data_format, mode, where)
        if any(a >= k or b >= k for (a, b), k in zip(padding, pool_size)):
            # a window could lie wholly in the padding: pad, then pool "valid"
            tape.spoil()  # np.pad is not recorded
            return pool(np.pad(x, widths), pool_size, strides, "valid", data_format, mode, n_threads, where)
        before = tuple(a for a, _ in padding)
        kernel_mode = _pooling.MODE_MAX_ZERO_PADDED
    out = arena.empty(shapes.join_shape(x.shape[0], out_spatial, channels, data_format), x.dtype)
    if out.size == 0:
        return out
    x = contiguous(x)  # the reshapes below are then views
    batch = x.shape[0]
    lead = 3 - rank
    if data_format == "channels_last":
        # 1-D puts the length on the H axis, so that the row split (P * OD * OH) covers it.
        if rank == 1:
            x5 = x.reshape(batch, 1, spatial[0], 1, channels)
            o5 = out.reshape(batch, 1, out_spatial[0], 1, channels)
            geometry = [(1, 1, 0), (pool_size[0], strides[0], before[0]), (1, 1, 0)]
        else:
            x5 = x.reshape((batch,) + (1,) * lead + spatial + (channels,))
            o5 = out.reshape((batch,) + (1,) * lead + out_spatial + (channels,))
            geometry = [(1, 1, 0)] * lead + list(zip(pool_size, strides, before))
    else:
        # Each (sample, channel) plane is one contiguous image: planes are the parallel axis.
        x5 = x.reshape((batch * channels,) + (1,) * lead + spatial + (1,))
        o5 = out.reshape((batch * channels,) + (1,) * lead + out_spatial + (1,))
        geometry = [(1, 1, 0)] * lead + list(zip(pool_size, strides, before))
    x5 = contiguous(x5)
    k, s, b = zip(*geometry)
    threads = op_threads(n_threads, x.size, _MIN_PARALLEL)
    tape.run(_pooling.pool_forward, x5, o5, k, s, b, kernel_mode, threads)
    return out


def _global_checks(x: np.ndarray, data_format: str, mask: Optional[np.ndarray], mode: int, where: str) -> None:
    _check_mode(mode)
    if x.ndim < 3:
        raise ValueError(f"{where}: expected an input with a batch, spatial and channels axes, got shape {x.shape}")
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{where}: unknown data_format {data_format!r}")
    spatial = x.shape[1:-1] if data_format == "channels_last" else x.shape[2:]
    if 0 in spatial:
        raise ValueError(f"{where}: incorrect input shape {x.shape} with dimension 0 at a reduction axis.")
    if mask is not None:
        if mode != MODE_AVG or x.ndim != 3:
            raise ValueError(f"{where}: a mask is supported for the 1-D global average only")
        if np.shape(mask) != (x.shape[0], spatial[0]):
            raise ValueError(f"{where}: the mask must have shape {(x.shape[0], spatial[0])}, got {np.shape(mask)}")


def _keep(y: np.ndarray, x: np.ndarray, data_format: str, keepdims: bool) -> np.ndarray:
    if not keepdims:
        return y
    ones = (1,) * (x.ndim - 2)
    if data_format == "channels_last":
        return y.reshape((x.shape[0],) + ones + (x.shape[-1],))
    return y.reshape((x.shape[0], x.shape[1]) + ones)


def global_pool_reference(x: np.ndarray, data_format: str, mode: int, keepdims: bool = False,
                          mask: Optional[np.ndarray] = None, n_threads: Optional[int] = None,
                          where: str = "global pooling") -> np.ndarray:
    """NumPy twin of :func:`global_pool` (the readable oracle; ``n_threads`` is ignored)."""
    x = np.asarray(x)
    _global_checks(x, data_format, mask, mode, where)
    axes = tuple(range(1, x.ndim - 1)) if data_format == "channels_last" else tuple(range(2, x.ndim))
    with np.errstate(invalid="ignore", divide="ignore"):  # inf - inf, 0 / 0: NaN as in TensorFlow
        if mode == MODE_MAX:
            y = np.max(x, axis=axes)
        elif mask is None:
            y = np.sum(x, axis=axes) / np.asarray(np.prod([x.shape[a] for a in axes]), dtype=x.dtype)
        else:
            m = np.asarray(mask).astype(x.dtype)
            m = m[:, :, None] if data_format == "channels_last" else m[:, None, :]
            y = np.sum(x * m, axis=axes) / np.sum(m, axis=axes)
    return _keep(y.astype(x.dtype, copy=False), x, data_format, keepdims)


def global_pool(x: np.ndarray, data_format: str, mode: int, keepdims: bool = False,
                mask: Optional[np.ndarray] = None, n_threads: Optional[int] = None,
                where: str = "global pooling") -> np.ndarray:
    """Max (``MODE_MAX``) or average (``MODE_AVG``) over every spatial axis (a streaming reduction).

    Args:
        x: ``(batch, *spatial, channels)`` or ``(batch, channels, *spatial)``, one or more spatial
            axes; float32/float64 run the compiled kernel, other dtypes the reference.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        mode: ``MODE_MAX`` (NaN propagates) or ``MODE_AVG``.
        keepdims: keep the spatial axes with size 1.
        mask: ``(batch, steps)`` for a 1-D average only: ``sum(x * mask) / sum(mask)`` over steps.
        n_threads: OpenMP threads (default ``klayers.get_num_threads()``, or 1 for a small input).
        where: the layer name for error messages.

    Returns:
        ``(batch, channels)``, or with ``keepdims`` the input's rank with spatial sizes 1.

    Raises:
        ValueError: a spatial axis of size 0, a mask of the wrong shape or for the wrong mode.

    Example::

        global_pool(np.ones((2, 7, 7, 8), "float32"), "channels_last", MODE_AVG).shape   # (2, 8)
    """
    x = np.asarray(x)
    if x.dtype not in FLOATS:
        return global_pool_reference(x, data_format, mode, keepdims, mask, n_threads, where)
    _global_checks(x, data_format, mask, mode, where)
    x = contiguous(x)  # the reshapes below are then views
    batch = x.shape[0]
    threads = op_threads(n_threads, x.size, _MIN_PARALLEL)
    masked = mask is not None
    if masked:
        tape.spoil()  # the mask's conversion is not recorded
    if data_format == "channels_last":
        channels = x.shape[-1]
        steps = math.prod(x.shape[1:-1])
        x3 = np.ascontiguousarray(x.reshape(batch, steps, channels))
        m = (np.ascontiguousarray(np.asarray(mask).astype(x.dtype, copy=False).reshape(batch, steps)) if masked
             else np.empty((0, 0), dtype=x.dtype))
        out = np.empty((batch, channels), dtype=x.dtype)
        # A batch smaller than the team splits the spatial axis too (partial results combined after).
        slices = 1
        if batch < threads:
            slices = max(1, min(-(-threads // max(batch, 1)), steps * channels // _MIN_SLICE, steps))
        partial = out.reshape(batch, 1, channels) if slices == 1 else np.empty((batch, slices, channels), x.dtype)
        if out.size:
            tape.run(_pooling.global_pool_cl, x3, m, out, partial, mode, masked, threads)
    else:
        channels = x.shape[1]
        steps = math.prod(x.shape[2:])
        x2 = np.ascontiguousarray(x.reshape(batch * channels, steps))
        m = (np.ascontiguousarray(np.asarray(mask).astype(x.dtype, copy=False).reshape(batch, steps)) if masked
             else np.empty((0, 0), dtype=x.dtype))
        out = np.empty((batch, channels), dtype=x.dtype)
        if out.size:
            tape.run(_pooling.global_pool_cf, x2, m, out.reshape(-1), max(channels, 1), mode, masked, threads)
    return _keep(out, x, data_format, keepdims)


def adaptive_bins(n: int, out: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` of the ``out`` bins of adaptive pooling over ``n`` values (PyTorch's
    ``[floor(i * n / out), ceil((i + 1) * n / out))``), computed in float32 as Keras 3's
    TensorFlow backend computes them, and clipped to the input."""
    f = np.float32
    starts = np.floor(np.arange(out, dtype=f) * f(n) / f(out)).astype(np.int64)
    ends = np.ceil(np.arange(1, out + 1, dtype=f) * f(n) / f(out)).astype(np.int64)
    return np.minimum(starts, n - 1), np.minimum(ends, n)


def adaptive_pool(x: np.ndarray, output_size: Sequence[int], data_format: str, mode: int,
                  where: str = "adaptive pooling") -> np.ndarray:
    """Keras 3's adaptive max / average pooling to ``output_size`` (one size per spatial axis).

    Axis by axis (as Keras 3's TensorFlow backend does), output ``i`` pools the bin
    ``[floor(i * n / out), ceil((i + 1) * n / out))`` (:func:`adaptive_bins`): the bins have
    ``small = ceil(n / out)`` or ``small + 1`` values, so a stride-1 "valid" pooling with each of
    the two windows (:func:`pool`, TensorFlow's NaN semantics for max) and a gather of the
    bins' starts gives them all. An output size above the input size repeats values.

    Args:
        x: ``(batch, *spatial, channels)`` or ``(batch, channels, *spatial)``, 1 to 3 spatial axes.
        output_size: one positive int per spatial axis.
        data_format, mode: as for :func:`pool`.

    Raises:
        ValueError: the wrong rank or a non-positive output size.
    """
    _check_mode(mode)
    rank = len(output_size)
    x = np.asarray(x)
    if x.ndim != rank + 2:
        raise ValueError(f"{where}: expected a {rank + 2}-D input (batch, {rank} spatial axes, channels), got shape {x.shape}")
    if any(int(o) < 1 for o in output_size):
        raise ValueError(f"{where}: `output_size` must be positive. Received: output_size={tuple(output_size)}")
    tape.spoil()  # the gathers are NumPy
    if data_format == "channels_first":
        x = np.moveaxis(x, 1, -1)
    elif data_format != "channels_last":
        raise ValueError(f"{where}: unknown data_format {data_format!r}")
    x = contiguous(x)
    ones = (1,) * rank
    for a, out in enumerate(output_size):
        n = x.shape[1 + a]
        if n == 0:
            raise ValueError(f"{where}: spatial axis {a} of the input is empty (shape {x.shape}).")
        small = -(-n // int(out))
        starts, ends = adaptive_bins(n, int(out))
        parts = []
        for k in (small, small + 1):
            if k <= n:
                window = list(ones)
                window[a] = k
                parts.append(pool(x, window, ones, "valid", "channels_last", mode, where=where))
        combined = np.concatenate(parts, axis=1 + a) if len(parts) > 1 else parts[0]
        index = np.where(ends - starts == small + 1, starts + max(1, n - small + 1), starts)
        x = contiguous(np.take(combined, index, axis=1 + a))
    if data_format == "channels_first":
        x = contiguous(np.moveaxis(x, -1, 1))
    return x


__all__ = ["MODE_AVG", "MODE_MAX", "adaptive_bins", "adaptive_pool", "global_pool", "global_pool_reference", "pool",
           "pool_geometry", "pool_reference"]
