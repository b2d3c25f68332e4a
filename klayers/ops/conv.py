"""Convolution ops (rank 1-3): ``conv``, ``depthwise_conv``, ``separable_conv``, ``conv_transpose``.

Each compiled op validates its arguments, computes output sizes and paddings with
:mod:`klayers.ops.shapes`, allocates the output and calls ``klayers._ext.conv``; each has a
pure-NumPy twin ``*_reference`` with the same signature (the readable oracle the tests compare
against in float32 and float64 at 1 and N threads).

Shapes (Keras's): ``x`` is ``(batch, *spatial, channels)`` (channels_last) or
``(batch, channels, *spatial)`` (channels_first). Kernels: ``conv`` ``(*k, cin // groups, filters)``;
``depthwise_conv`` ``(*k, cin, multiplier)``; ``conv_transpose`` ``(*k, filters, cin)``.
Output size per axis: ``ceil((n - k_eff + 1) / s)`` for "valid", ``ceil(n / s)`` for "same" and
"causal" (all padding before), with ``k_eff = k + (k - 1)(d - 1)``.
"""

from __future__ import annotations

from functools import lru_cache
from math import prod
from typing import Optional, Sequence, Tuple

import numpy as np

from klayers._ext import conv as _conv
from klayers._threads import blas_single_threaded, get_num_threads
from klayers.ops import shapes

ACT_LINEAR = _conv.ACT_LINEAR
ACT_RELU = _conv.ACT_RELU
ACT_RELU6 = _conv.ACT_RELU6

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: Bytes of im2col scratch per OpenMP task. Not sized to L2: OpenBLAS blocks the GEMM for its
#: caches itself, but repacks the whole kernel (K x N, e.g. 590 KB for 3x3 128->128) on every
#: call, so fewer, larger chunks win: on one core 4 MB gave 200-206 GFLOP/s where 1 MB gave
#: 183-186 and 256 KB 145 (3x3 128->128 at 28x28 and 56x56).
CHUNK_BYTES = 4 << 20
#: Implicit GEMM (``conv_direct_forward``: one GEMM per tap and output-row segment, no im2col)
#: when the output rows (the GEMMs' M) are at least this long and the per-group input channels
#: (their K) at least this many. Measured on one core (SkylakeX OpenBLAS, noisy shared machine):
#: with at most 64 filters per group, or 64->128, direct beat im2col for every K from 3 to 256
#: on rows of 16 or more by 15-50 % (3x3 64->64 56x56: 245 against 180 GFLOP/s; cin 3: 100
#: against 82; 128->64: 251 against 173; 256->64: 247 against 164; 64->128: 246 against 207);
#: it tied at width 7 and lost at 14 (185 against 210), where one im2col GEMM over several rows
#: amortises the per-call cost better. With 128 or more filters per group and a tap of more
#: than DIRECT_MAX_TAP_WEIGHTS weights (K x N), im2col's one large GEMM won by 3-8 % in most
#: runs (3x3 128->128 at 28x28: 194 against 180; 64->256: 220 against 213).
DIRECT_MIN_WIDTH = 16
DIRECT_MIN_CIN = 1
DIRECT_MAX_TAP_WEIGHTS = 8192
#: Bytes of output per direct-conv segment (its accumulation over the taps stays in L2).
DIRECT_SEG_BYTES = 256 << 10
#: OpenBLAS (0.3.x, SkylakeX kernels) runs GEMMs of at most 1e6 multiply-adds through its
#: packing-free small-matrix kernels, and those are faster here than any large GEMM: with
#: K = 256, N = 64 on one core, M = 28-56 ran at 240-250 GFLOP/s, M = 784 at 219, and just
#: past the limit (M = 64-128) at 155-165. So row blocks are sized to stay under it where that
#: leaves at least SMALL_GEMM_MIN_ROWS rows (1x1 28x28x256->64: 105 against 120 us;
#: Conv1D 1000x64 k5: five GEMMs of 1000 rows became 5 x 5 of 200). Elsewhere (the
#: Haswell kernels) small GEMMs cost about what large ones do.
SMALL_GEMM_MACS = 950_000
SMALL_GEMM_MIN_ROWS = 16
#: Bytes of output per depthwise block (stays in L1 across the taps).
DW_BLOCK_BYTES = 16 << 10
#: Bytes of depthwise output per fused separable block (the pointwise GEMM's A, still in cache).
SEPARABLE_BLOCK_BYTES = 32 << 10
#: Below this many multiply-adds one thread wins: waking a second one costs more.
SERIAL_MACS = 1 << 18
#: Bytes of GEMM output per transposed-conv task. Larger than L2 on purpose: a task recomputes
#: the (k - 1) / s input rows it shares with the next one, and on one core 4 MB beat 2 MB by
#: 10-12 % (Conv2DTranspose 28x28x64 k4 s2: 0.59 against 0.66 ms) and 1 MB by 20 %.
TRANSPOSE_CHUNK_BYTES = 4 << 20

__all__ = [
    "ACT_LINEAR", "ACT_RELU", "ACT_RELU6",
    "conv", "conv_reference", "depthwise_conv", "depthwise_conv_reference",
    "separable_conv", "separable_conv_reference", "conv_transpose", "conv_transpose_reference",
    "conv_output_shape", "conv_transpose_output_shape",
]


# ---------------------------------------------------------------------------------------------
# arguments and geometry
def _tuple(value: int | Sequence[int], rank: int, name: str) -> Tuple[int, ...]:
    return shapes.normalize_tuple(value, rank, name)


def _split(x_shape: Sequence[int], rank: int, data_format: str) -> Tuple[int, Tuple[int, ...], int]:
    """(batch, spatial, channels) of an input shape."""
    if data_format == "channels_first":
        return x_shape[0], tuple(x_shape[2:]), x_shape[1]
    return x_shape[0], tuple(x_shape[1:-1]), x_shape[-1]


def _join(batch: int, spatial: Sequence[int], channels: int, data_format: str) -> Tuple[int, ...]:
    if data_format == "channels_first":
        return (batch, channels) + tuple(spatial)
    return (batch,) + tuple(spatial) + (channels,)


def _check_input(x: np.ndarray, rank: int, where: str) -> None:
    if x.ndim != rank + 2:
        raise ValueError(f"{where}: expected an input of rank {rank + 2}, got shape {x.shape}")


def _out_sizes(spatial: Sequence[int], k: Sequence[int], padding: str, s: Sequence[int], d: Sequence[int],
               where: str, x_shape: Sequence[int]) -> Tuple[int, ...]:
    out = tuple(shapes.conv_output_length(n, ki, padding, si, di) for n, ki, si, di in zip(spatial, k, s, d))
    if any(o <= 0 for o in out):
        raise ValueError(
            f"One of the dimensions in the output is <= 0 due to downsampling in {where}. Consider "
            f"increasing the input size. Received input shape {list(x_shape)} which would produce "
            "output shape with a zero or negative value in a dimension."
        )
    return out


def _pads(spatial: Sequence[int], k: Sequence[int], padding: str, s: Sequence[int], d: Sequence[int]) -> Tuple[int, ...]:
    return tuple(shapes.padding_amounts(n, ki, padding, si, di)[0] for n, ki, si, di in zip(spatial, k, s, d))


def _pad3(t: Sequence[int], fill: int) -> list:
    return list(t) + [fill] * (3 - len(t))


def _geo(n: int, cin: int, cout: int, groups: int, cf: bool, ins: Sequence[int], outs: Sequence[int],
         k: Sequence[int], s: Sequence[int], d: Sequence[int], p: Sequence[int], last: bool = False) -> np.ndarray:
    """The kernel's geometry vector (see ``_ext/conv.pyx``); rank < 3 embeds in the leading axes,
    or with ``last`` in the trailing ones (a rank-1 length L is ``(1, 1, L)``), which the
    kernels that sweep whole rows of the last axis want."""
    pad = _lead if last else _pad3
    return np.array(
        [n, cin, cout, groups, int(cf)] + pad(ins, 1) + pad(outs, 1) + pad(k, 1) + pad(s, 1)
        + pad(d, 1) + pad(p, 0),
        dtype=np.intp,
    )


def _lead(t: Sequence[int], fill: int) -> list:
    return [fill] * (3 - len(t)) + list(t)


def _dtype_of(x: np.ndarray, kernel: np.ndarray) -> np.dtype:
    return kernel.dtype if kernel.dtype in _FLOATS else np.dtype(np.float32)


def _flat(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def _bias_arg(bias: Optional[np.ndarray], dtype: np.dtype) -> np.ndarray:
    return np.empty(0, dtype=dtype) if bias is None else _flat(bias, dtype)


def _apply_act(y: np.ndarray, act: int) -> np.ndarray:
    if act == ACT_RELU:
        return np.maximum(y, 0)
    if act == ACT_RELU6:
        return np.clip(y, 0, 6)
    return y


def _threads(n_threads: Optional[int]) -> int:
    return int(n_threads or get_num_threads())


def conv_output_shape(x_shape: Sequence[Optional[int]], kernel_size: Sequence[int], filters: int,
                      strides: Sequence[int], padding: str, dilation_rate: Sequence[int],
                      data_format: str, where: str = "conv") -> Tuple[Optional[int], ...]:
    """Keras's ``compute_output_shape`` for a convolution (None sizes stay None)."""
    rank = len(kernel_size)
    batch, spatial, _ = _split(tuple(x_shape), rank, data_format)
    out = tuple(shapes.conv_output_length(n, k, padding, s, d)
                for n, k, s, d in zip(spatial, kernel_size, strides, dilation_rate))
    if any(o is not None and o <= 0 for o in out):
        raise ValueError(
            f"One of the dimensions in the output is <= 0 due to downsampling in {where}. Consider "
            f"increasing the input size. Received input shape {list(x_shape)} which would produce "
            "output shape with a zero or negative value in a dimension."
        )
    return _join(batch, out, filters, data_format)


def conv_transpose_output_shape(x_shape: Sequence[Optional[int]], kernel_size: Sequence[int], filters: int,
                                strides: Sequence[int], padding: str, dilation_rate: Sequence[int],
                                output_padding: Optional[Sequence[int]], data_format: str) -> Tuple[Optional[int], ...]:
    """Keras's ``compute_output_shape`` for a transposed convolution."""
    rank = len(kernel_size)
    batch, spatial, _ = _split(tuple(x_shape), rank, data_format)
    op = output_padding if output_padding is not None else (None,) * rank
    out = tuple(shapes.deconv_output_length(n, k, padding, o, s, d)
                for n, k, o, s, d in zip(spatial, kernel_size, op, strides, dilation_rate))
    return _join(batch, out, filters, data_format)


# ---------------------------------------------------------------------------------------------
# conv
def _key(value):
    """A hashable form of an int-or-sequence argument (the plan caches key on it)."""
    return tuple(value) if isinstance(value, (list, tuple, np.ndarray)) else value


@lru_cache(maxsize=1024)
def _conv_plan(x_shape, k_shape, strides, padding, dilation_rate, groups, data_format, where):
    """Validated geometry of a forward convolution, and the kernel's ``geo`` vector (read-only).
    Cached: a layer calls with the same shapes every time, and this arithmetic in Python cost
    about as much as a small convolution itself."""
    rank = len(k_shape) - 2
    if rank not in (1, 2, 3):
        raise ValueError(f"{where}: kernel must have rank 3-5 (k..., cin // groups, filters), got shape {k_shape}")
    if len(x_shape) != rank + 2:
        raise ValueError(f"{where}: expected an input of rank {rank + 2}, got shape {x_shape}")
    s, d = _tuple(strides, rank, "strides"), _tuple(dilation_rate, rank, "dilation_rate")
    k = tuple(k_shape[:rank])
    n, spatial, cin = _split(x_shape, rank, data_format)
    filters = k_shape[-1]
    if groups < 1 or cin % groups or filters % groups:
        raise ValueError(f"{where}: groups={groups} must divide the input channels ({cin}) and filters ({filters})")
    if k_shape[-2] * groups != cin:
        raise ValueError(
            f"{where}: the input has {cin} channels but the kernel expects {k_shape[-2] * groups} "
            f"(kernel shape {k_shape}, groups={groups})"
        )
    if padding == "causal" and rank != 1:
        raise ValueError(f"{where}: causal padding is only supported for rank-1 convolutions")
    out = _out_sizes(spatial, k, padding, s, d, where, x_shape)
    pads = _pads(spatial, k, padding, s, d)
    geo = _geo(n, cin, filters, groups, data_format == "channels_first", spatial, out, k, s, d, pads, last=True)
    geo.setflags(write=False)
    return rank, s, d, k, n, spatial, cin, filters, out, pads, geo


def _conv_setup(x, kernel, bias, strides, padding, dilation_rate, groups, data_format, where):
    plan = _conv_plan(tuple(x.shape), tuple(kernel.shape), _key(strides), padding, _key(dilation_rate),
                      groups, data_format, where)
    filters = plan[7]
    if bias is not None and bias.shape != (filters,):
        raise ValueError(f"{where}: bias must have shape ({filters},), got {bias.shape}")
    return plan


def conv(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], strides: int | Sequence[int] = 1,
         padding: str = "valid", dilation_rate: int | Sequence[int] = 1, groups: int = 1,
         data_format: str = "channels_last", act: int = ACT_LINEAR, n_threads: Optional[int] = None,
         where: str = "conv") -> np.ndarray:
    """``act(conv(x, kernel) + bias)`` for rank 1-3 (rank from ``kernel.ndim - 2``).

    Args:
        x: ``(batch, *spatial, cin)`` or channels_first ``(batch, cin, *spatial)``.
        kernel: ``(*kernel_size, cin // groups, filters)``.
        bias: ``(filters,)`` or None.
        padding: "valid", "same" or "causal" (rank 1: all ``k_eff - 1`` padding before).
        act: ``ACT_LINEAR`` / ``ACT_RELU`` / ``ACT_RELU6`` fused into the epilogue.

    Returns:
        ``(batch, *out, filters)`` (or channels_first) of the kernel's dtype.

    Example::

        y = conv(np.ones((1, 5, 5, 3), "float32"), np.ones((3, 3, 3, 8), "float32"), None)  # (1, 3, 3, 8)
    """
    rank, s, d, k, n, spatial, cin, filters, out, pads, geo = _conv_setup(
        x, kernel, bias, strides, padding, dilation_rate, groups, data_format, where)
    dtype = _dtype_of(x, kernel)
    cf = data_format == "channels_first"
    y = np.empty(_join(n, out, filters, data_format), dtype=dtype)
    taps = prod(k)
    cg = cin // groups
    p_out = prod(out)
    threads = _serial_if_small(_threads(n_threads), n * p_out * taps * cg * (filters // groups))
    pointwise = taps == 1 and groups == 1 and all(si == 1 for si in s) and not any(pads)
    fg = filters // groups
    if (not pointwise and cg >= DIRECT_MIN_CIN and out[-1] >= DIRECT_MIN_WIDTH
            and (fg <= 64 or cg * fg <= DIRECT_MAX_TAP_WEIGHTS) and (not cf or s[-1] == 1)):
        cap = _small_gemm_rows(cg, fg) or DIRECT_SEG_BYTES // (filters * dtype.itemsize)
        kernel_fn, block = _conv.conv_direct_forward, _segment(n * p_out // out[-1], out[-1], cap, threads)
    else:
        kernel_fn, block = _conv.conv_forward, _im2col_rows(
            n, p_out, taps * cg * dtype.itemsize, threads, _small_gemm_rows(taps * cg, fg))
    args = (_flat(x, dtype), _flat(kernel, dtype), _bias_arg(bias, dtype), y.reshape(-1), geo,
            bias is not None, int(act), int(block), threads)
    if threads == 1:
        kernel_fn(*args)
    else:
        with blas_single_threaded():
            kernel_fn(*args)
    return y


def _serial_if_small(threads: int, macs: int) -> int:
    return 1 if macs < SERIAL_MACS else threads


def _small_gemm_rows(k: int, n: int) -> int:
    """The most GEMM rows (M) that keep ``M * k * n`` within ``SMALL_GEMM_MACS``, or 0 when
    fewer than ``SMALL_GEMM_MIN_ROWS`` would, or when the small kernels are not the faster side
    (more than 64 columns and more than DIRECT_MAX_TAP_WEIGHTS weights: 1x1 128->128 ran at
    178 GFLOP/s in blocks of 57 rows and 212 in one GEMM; 64->128 at 201 against 184)."""
    if n > 64 and k * n > DIRECT_MAX_TAP_WEIGHTS:
        return 0
    rows = SMALL_GEMM_MACS // max(1, k * n)
    return rows if rows >= SMALL_GEMM_MIN_ROWS else 0


def _segment(rows: int, width: int, cap: int, threads: int) -> int:
    """Outputs per task along the last axis: whole rows of at most ``cap``, split further when
    there are too few rows to give every thread a few tasks."""
    nseg = -(-width // max(16, cap))
    if threads > 1 and rows * nseg < 4 * threads:
        nseg = max(nseg, -(-4 * threads // max(rows, 1)))
    return max(1, -(-width // nseg))


def _im2col_rows(n: int, p_out: int, row_bytes: int, threads: int, small_rows: int = 0) -> int:
    """Output pixels per im2col (or 1x1) chunk: the column block fits ``CHUNK_BYTES`` and, when
    ``small_rows``, the chunk's GEMM stays small (see ``SMALL_GEMM_MACS``); enough tasks for
    every thread but chunks no smaller than the GEMM likes."""
    rows = max(8, CHUNK_BYTES // max(1, row_bytes))
    if small_rows:
        rows = min(rows, small_rows)
    tasks_wanted = 2 * threads
    if n * -(-p_out // rows) < tasks_wanted:
        rows = max(16, -(-p_out * n // tasks_wanted))
    rows = min(rows, max(p_out, 1))
    # few tasks: make their count a multiple of the threads so no core idles at the end
    per_sample = -(-p_out // rows)
    if threads > 1 and n * per_sample < 8 * threads:
        while (n * per_sample) % threads and per_sample < p_out:
            per_sample += 1
        rows = -(-p_out // per_sample)
    return rows


def conv_reference(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], strides: int | Sequence[int] = 1,
                   padding: str = "valid", dilation_rate: int | Sequence[int] = 1, groups: int = 1,
                   data_format: str = "channels_last", act: int = ACT_LINEAR, n_threads: Optional[int] = None,
                   where: str = "conv") -> np.ndarray:
    """NumPy twin of :func:`conv`: zero-pad, then one tensordot per kernel tap and group."""
    rank, s, d, k, n, spatial, cin, filters, out = _conv_setup(
        x, kernel, bias, strides, padding, dilation_rate, groups, data_format, where)[:9]
    dtype = _dtype_of(x, kernel)
    xl = np.asarray(x, dtype=dtype)
    if data_format == "channels_first":
        xl = np.moveaxis(xl, 1, -1)
    pads = [shapes.padding_amounts(nn, ki, padding, si, di) for nn, ki, si, di in zip(spatial, k, s, d)]
    xp = np.pad(xl, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)])
    cg, fg = cin // groups, filters // groups
    y = np.zeros((n,) + tuple(out) + (filters,), dtype=dtype)
    for tap in np.ndindex(*k):
        sl = tuple(slice(t * di, t * di + (o - 1) * si + 1, si) for t, di, si, o in zip(tap, d, s, out))
        patch = xp[(slice(None),) + sl]
        for g in range(groups):
            y[..., g * fg:(g + 1) * fg] += patch[..., g * cg:(g + 1) * cg] @ kernel[tap][:, g * fg:(g + 1) * fg].astype(dtype)
    if bias is not None:
        y += bias.astype(dtype)
    y = _apply_act(y, act)
    if data_format == "channels_first":
        y = np.moveaxis(y, -1, 1)
    return np.ascontiguousarray(y)


# ---------------------------------------------------------------------------------------------
# depthwise
@lru_cache(maxsize=1024)
def _depthwise_plan(x_shape, k_shape, strides, padding, dilation_rate, data_format, where):
    """Validated geometry of a depthwise convolution and its ``geo`` (cached as :func:`_conv_plan`)."""
    rank = len(k_shape) - 2
    if rank not in (1, 2, 3):
        raise ValueError(f"{where}: depthwise kernel must have rank 3-5 (k..., cin, multiplier), got shape {k_shape}")
    if len(x_shape) != rank + 2:
        raise ValueError(f"{where}: expected an input of rank {rank + 2}, got shape {x_shape}")
    s, d = _tuple(strides, rank, "strides"), _tuple(dilation_rate, rank, "dilation_rate")
    k = tuple(k_shape[:rank])
    n, spatial, cin = _split(x_shape, rank, data_format)
    if k_shape[-2] != cin:
        raise ValueError(f"{where}: the input has {cin} channels but the depthwise kernel has {k_shape[-2]} (shape {k_shape})")
    mult = k_shape[-1]
    if mult < 1:
        raise ValueError(f"{where}: depth multiplier must be >= 1, got kernel shape {k_shape}")
    out = _out_sizes(spatial, k, padding, s, d, where, x_shape)
    geo = _geo(n, cin, cin * mult, cin, data_format == "channels_first", spatial, out, k, s, d,
               _pads(spatial, k, padding, s, d), last=True)
    geo.setflags(write=False)
    return rank, s, d, k, n, spatial, cin, mult, out, geo


def _depthwise_setup(x, kernel, bias, strides, padding, dilation_rate, data_format, where):
    plan = _depthwise_plan(tuple(x.shape), tuple(kernel.shape), _key(strides), padding, _key(dilation_rate),
                           data_format, where)
    cm = plan[6] * plan[7]
    if bias is not None and bias.shape != (cm,):
        raise ValueError(f"{where}: bias must have shape ({cm},), got {bias.shape}")
    return plan


def depthwise_conv(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], strides: int | Sequence[int] = 1,
                   padding: str = "valid", dilation_rate: int | Sequence[int] = 1,
                   data_format: str = "channels_last", act: int = ACT_LINEAR, n_threads: Optional[int] = None,
                   where: str = "depthwise_conv") -> np.ndarray:
    """Depthwise convolution: output channel ``c * multiplier + m`` is input channel ``c`` convolved
    with ``kernel[..., c, m]``.

    Args:
        x: ``(batch, *spatial, cin)`` or channels_first.
        kernel: ``(*kernel_size, cin, multiplier)``.
        bias: ``(cin * multiplier,)`` or None.

    Returns:
        ``(batch, *out, cin * multiplier)`` (or channels_first).
    """
    rank, s, d, k, n, spatial, cin, mult, out, geo = _depthwise_setup(
        x, kernel, bias, strides, padding, dilation_rate, data_format, where)
    dtype = _dtype_of(x, kernel)
    cf = data_format == "channels_first"
    y = np.empty(_join(n, out, cin * mult, data_format), dtype=dtype)
    p_out = prod(out)
    threads = _serial_if_small(_threads(n_threads), n * p_out * cin * mult * prod(k) // 4)
    rows = n * (p_out // out[-1]) * (cin * mult if cf else 1)
    per_out = dtype.itemsize * (1 if cf else cin * mult)
    blk = _segment(rows, out[-1], DW_BLOCK_BYTES // per_out, threads)
    _conv.depthwise_forward(_flat(x, dtype), _flat(kernel, dtype), _bias_arg(bias, dtype), y.reshape(-1), geo,
                            bias is not None, int(act), int(blk), threads)
    return y


def depthwise_conv_reference(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray],
                             strides: int | Sequence[int] = 1, padding: str = "valid",
                             dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                             act: int = ACT_LINEAR, n_threads: Optional[int] = None,
                             where: str = "depthwise_conv") -> np.ndarray:
    """NumPy twin of :func:`depthwise_conv` (zero-pad, one broadcast multiply-add per tap)."""
    rank, s, d, k, n, spatial, cin, mult, out = _depthwise_setup(
        x, kernel, bias, strides, padding, dilation_rate, data_format, where)[:9]
    dtype = _dtype_of(x, kernel)
    xl = np.asarray(x, dtype=dtype)
    if data_format == "channels_first":
        xl = np.moveaxis(xl, 1, -1)
    pads = [shapes.padding_amounts(nn, ki, padding, si, di) for nn, ki, si, di in zip(spatial, k, s, d)]
    xp = np.pad(xl, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)])
    y = np.zeros((n,) + tuple(out) + (cin, mult), dtype=dtype)
    for tap in np.ndindex(*k):
        sl = tuple(slice(t * di, t * di + (o - 1) * si + 1, si) for t, di, si, o in zip(tap, d, s, out))
        y += xp[(slice(None),) + sl][..., None] * kernel[tap].astype(dtype)
    y = y.reshape((n,) + tuple(out) + (cin * mult,))
    if bias is not None:
        y += bias.astype(dtype)
    y = _apply_act(y, act)
    if data_format == "channels_first":
        y = np.moveaxis(y, -1, 1)
    return np.ascontiguousarray(y)


# ---------------------------------------------------------------------------------------------
# separable = depthwise (strides, dilation, padding) then a 1x1 pointwise conv with bias
def separable_conv(x: np.ndarray, depthwise_kernel: np.ndarray, pointwise_kernel: np.ndarray,
                   bias: Optional[np.ndarray], strides: int | Sequence[int] = 1, padding: str = "valid",
                   dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                   act: int = ACT_LINEAR, n_threads: Optional[int] = None, where: str = "separable_conv") -> np.ndarray:
    """``act(pointwise(depthwise(x)) + bias)``; pointwise kernel ``(1, ..., cin * multiplier, filters)``.

    channels_last runs one fused kernel (``separable_forward``: each block of depthwise outputs
    goes through its pointwise GEMM while still in cache); channels_first runs the depthwise
    and 1x1 ops in turn.
    """
    if padding == "causal":
        rank = depthwise_kernel.ndim - 2
        _check_input(x, rank, where)
        keff = shapes.effective_kernel(depthwise_kernel.shape[0], _tuple(dilation_rate, rank, "dilation_rate")[0])
        axis = 2 if data_format == "channels_first" else 1
        widths = [(0, 0)] * x.ndim
        widths[axis] = (keff - 1, 0)
        x, padding = np.pad(x, widths), "valid"
    if data_format == "channels_first":
        mid = depthwise_conv(x, depthwise_kernel, None, strides, padding, dilation_rate, data_format,
                             ACT_LINEAR, n_threads, where)
        return conv(mid, pointwise_kernel, bias, 1, "valid", 1, 1, data_format, act, n_threads, where)
    # channels_last: one fused kernel (depthwise block -> pointwise GEMM while it is in cache)
    rank, s, d, k, n, spatial, cin, mult, out, geo = _depthwise_setup(
        x, depthwise_kernel, None, strides, padding, dilation_rate, data_format, where)
    cm = cin * mult
    filters = pointwise_kernel.shape[-1]
    if pointwise_kernel.shape != (1,) * rank + (cm, filters):
        raise ValueError(f"{where}: pointwise kernel must have shape {(1,) * rank + (cm, '<filters>')}, "
                         f"got {pointwise_kernel.shape}")
    if bias is not None and bias.shape != (filters,):
        raise ValueError(f"{where}: bias must have shape ({filters},), got {bias.shape}")
    dtype = _dtype_of(x, depthwise_kernel)
    p_out = prod(out)
    mid = np.empty(n * p_out * cm, dtype=dtype)
    y = np.empty(_join(n, out, filters, data_format), dtype=dtype)
    threads = _serial_if_small(_threads(n_threads), n * p_out * cm * (filters + prod(k)))
    cap = SEPARABLE_BLOCK_BYTES // (cm * dtype.itemsize)
    blk = _segment(n * (p_out // out[-1]), out[-1], min(cap, _small_gemm_rows(cm, filters) or cap), threads)
    args = (_flat(x, dtype), _flat(depthwise_kernel, dtype), _flat(pointwise_kernel, dtype), _bias_arg(bias, dtype),
            mid, y.reshape(-1), geo, bias is not None, int(act), int(blk), threads)
    if threads == 1:
        _conv.separable_forward(*args)
    else:
        with blas_single_threaded():
            _conv.separable_forward(*args)
    return y


def separable_conv_reference(x: np.ndarray, depthwise_kernel: np.ndarray, pointwise_kernel: np.ndarray,
                             bias: Optional[np.ndarray], strides: int | Sequence[int] = 1, padding: str = "valid",
                             dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                             act: int = ACT_LINEAR, n_threads: Optional[int] = None,
                             where: str = "separable_conv") -> np.ndarray:
    """NumPy twin of :func:`separable_conv`."""
    if padding == "causal":
        rank = depthwise_kernel.ndim - 2
        _check_input(x, rank, where)
        keff = shapes.effective_kernel(depthwise_kernel.shape[0], _tuple(dilation_rate, rank, "dilation_rate")[0])
        axis = 2 if data_format == "channels_first" else 1
        widths = [(0, 0)] * x.ndim
        widths[axis] = (keff - 1, 0)
        x, padding = np.pad(x, widths), "valid"
    mid = depthwise_conv_reference(x, depthwise_kernel, None, strides, padding, dilation_rate, data_format,
                                   ACT_LINEAR, n_threads, where)
    return conv_reference(mid, pointwise_kernel, bias, 1, "valid", 1, 1, data_format, act, n_threads, where)


# ---------------------------------------------------------------------------------------------
# transposed
def _transpose_setup(x, kernel, bias, strides, padding, output_padding, dilation_rate, data_format, where):
    rank = kernel.ndim - 2
    if rank not in (1, 2, 3):
        raise ValueError(f"{where}: kernel must have rank 3-5 (k..., filters, cin), got shape {kernel.shape}")
    _check_input(x, rank, where)
    s, d = _tuple(strides, rank, "strides"), _tuple(dilation_rate, rank, "dilation_rate")
    op = None if output_padding is None else shapes.normalize_tuple(output_padding, rank, "output_padding", allow_zero=True)
    k = tuple(kernel.shape[:rank])
    n, spatial, cin = _split(x.shape, rank, data_format)
    filters = kernel.shape[-2]
    if kernel.shape[-1] != cin:
        raise ValueError(f"{where}: the input has {cin} channels but the kernel expects {kernel.shape[-1]} (shape {kernel.shape})")
    if bias is not None and bias.shape != (filters,):
        raise ValueError(f"{where}: bias must have shape ({filters},), got {bias.shape}")
    if padding not in ("valid", "same"):
        raise ValueError(f"{where}: padding must be 'valid' or 'same', got {padding!r}")
    out = tuple(shapes.deconv_output_length(nn, ki, padding, None if op is None else oi, si, di)
                for nn, ki, oi, si, di in zip(spatial, k, op or (None,) * rank, s, d))
    if any(o <= 0 for o in out):
        raise ValueError(f"{where}: the output would have a non-positive size {out} for input shape {x.shape}")
    # TensorFlow pads the equivalent forward conv (output -> input) as its own padding rule says
    pads = tuple(shapes.padding_amounts(o, ki, padding, si, di)[0] for o, ki, si, di in zip(out, k, s, d))
    return rank, s, d, k, n, spatial, cin, filters, out, pads


def conv_transpose(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], strides: int | Sequence[int] = 1,
                   padding: str = "valid", output_padding: Optional[int | Sequence[int]] = None,
                   dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                   act: int = ACT_LINEAR, n_threads: Optional[int] = None, where: str = "conv_transpose") -> np.ndarray:
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
    dtype = _dtype_of(x, kernel)
    y = np.empty(_join(n, out, filters, data_format), dtype=dtype)
    geo = _geo(n, cin, filters, 1, data_format == "channels_first", spatial, out, k, s, d, pads)
    threads = _threads(n_threads)
    plane_in = prod(spatial[1:]) if rank > 1 else 1
    row_bytes = plane_in * prod(k) * filters * dtype.itemsize
    in_rows = max(1, TRANSPOSE_CHUNK_BYTES // max(1, row_bytes))
    block = max(1, in_rows * s[0])
    # a block recomputes the input rows it shares with its neighbours ((k - 1) / s of them):
    # split for the threads, but only as far as they need (one block per thread)
    if threads > 1 and n * -(-out[0] // block) < threads:
        block = max(1, -(-out[0] * n // threads))
    args = (_flat(x, dtype), _flat(kernel, dtype), _bias_arg(bias, dtype), y.reshape(-1), geo,
            bias is not None, int(act), int(block), threads)
    if threads == 1:
        _conv.conv_transpose_forward(*args)
    else:
        with blas_single_threaded():
            _conv.conv_transpose_forward(*args)
    return y


def conv_transpose_reference(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray],
                             strides: int | Sequence[int] = 1, padding: str = "valid",
                             output_padding: Optional[int | Sequence[int]] = None,
                             dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                             act: int = ACT_LINEAR, n_threads: Optional[int] = None,
                             where: str = "conv_transpose") -> np.ndarray:
    """NumPy twin of :func:`conv_transpose`: scatter-add ``x @ W[tap]^T`` per tap into a padded
    buffer, then crop the padding."""
    rank, s, d, k, n, spatial, cin, filters, out, pads = _transpose_setup(
        x, kernel, bias, strides, padding, output_padding, dilation_rate, data_format, where)
    dtype = _dtype_of(x, kernel)
    xl = np.asarray(x, dtype=dtype)
    if data_format == "channels_first":
        xl = np.moveaxis(xl, 1, -1)
    full = [max((nn - 1) * si + (ki - 1) * di + 1, o + p) for nn, si, ki, di, o, p in zip(spatial, s, k, d, out, pads)]
    buf = np.zeros((n,) + tuple(full) + (filters,), dtype=dtype)
    for tap in np.ndindex(*k):
        sl = tuple(slice(t * di, t * di + (nn - 1) * si + 1, si) for t, di, si, nn in zip(tap, d, s, spatial))
        buf[(slice(None),) + sl] += xl @ kernel[tap].astype(dtype).T
    y = buf[(slice(None),) + tuple(slice(p, p + o) for p, o in zip(pads, out))]
    if bias is not None:
        y = y + bias.astype(dtype)
    y = _apply_act(y, act)
    if data_format == "channels_first":
        y = np.moveaxis(y, -1, 1)
    return np.ascontiguousarray(y)
