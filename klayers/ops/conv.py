"""Convolution ops (rank 1-3): ``conv``, ``depthwise_conv``, ``separable_conv`` (and the argument
and geometry helpers that :mod:`klayers.ops.conv_transpose` shares).

Each compiled op validates its arguments, computes output sizes and paddings with
:mod:`klayers.ops.shapes`, allocates the output and calls its kernel (``klayers._ext.conv``,
``.depthwise``) with a named geometry (a dict of the ConvGeometry fields:
batch, in_channels, out_channels, groups, channels_first, in_size, out_size, kernel_size,
strides, dilation_rate, pad_before); each has a pure-NumPy twin ``*_reference`` with the same
signature (the readable oracle the tests compare against in float32 and float64 at 1 and N
threads). ``act`` is an epilogue code or the layer's activation function
(:func:`klayers.ops.common.split_activation`).

Shapes (Keras's): ``x`` is ``(batch, *spatial, channels)`` (channels_last) or
``(batch, channels, *spatial)`` (channels_first). Kernels: ``conv`` ``(*k, cin // groups, filters)``;
``depthwise_conv`` ``(*k, cin, multiplier)``.
Output size per axis: ``ceil((n - k_eff + 1) / s)`` for "valid", ``ceil(n / s)`` for "same" and
"causal" (all padding before), with ``k_eff = k + (k - 1)(d - 1)``.
"""

from __future__ import annotations

from functools import lru_cache
from math import prod
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np

from klayers._ext import conv as _conv
from klayers._ext import depthwise as _depthwise
from klayers.backend import arena, tape
from klayers.ops import shapes
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
    float_dtype,
    op_threads,
    run_prepared,
    split_activation,
)
from klayers.ops.dense import pack_dense_kernel
from klayers.ops.shapes import conv_output_shape

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
#: With a packed kernel, the direct path is taken only from this many input channels per group
#: and output pixels (whole batch) on.
PACKED_OVER_DIRECT_CIN = 16
PACKED_OVER_DIRECT_ROWS = 4096
#: Bytes of output per row chunk of a packed convolution (in L2 when the epilogue runs).
PACKED_OUT_BYTES = 256 << 10
#: Packed kernels from this size stream from L3 or memory: few rows split their channels.
PACKED_STREAM_BYTES = 512 << 10
#: Fewest output channels per slice when ``ConvKernel`` splits a layer's channels between
#: tasks (the GEMM's N; below this OpenBLAS's kernels lose more than the split gains).
MIN_SLICE = 32
#: Bytes of output per depthwise block (stays in L1 across the taps).
DW_BLOCK_BYTES = 16 << 10
#: Narrowest input rows an inverted residual block streams row by row: each thread expands and
#: projects one row at a time, so a narrow row makes GEMMs of few rows that stream the whole
#: expansion kernel per row (MobileNetV2-96 b16: the 48- and 24-wide blocks 2224 -> 1068 us
#: and 1437 -> 960 us fused; the 6- and 3-wide ones slower that way than as three layers).
#: Narrower blocks go by whole samples (IRB_SAMPLE_BYTES of intermediates per task).
IRB_MIN_WIDTH = 16
#: Bytes of expanded and depthwise values per task of whole samples (they stay in cache; at
#: least one sample). MobileNetV2-96 b16, paired: three layers a block 12.6 ms, fused by rows
#: and samples 10.0 (128K), 10.2-10.5 (256K), 11.5 (512K).
IRB_SAMPLE_BYTES = 128 << 10
#: Bytes of depthwise output per fused separable block (the pointwise GEMM's A, still in cache).
SEPARABLE_BLOCK_BYTES = 32 << 10
#: Below this many multiply-adds one thread wins (the team's fork and join cost more than the
#: second thread saves): 1x1 convs at batch 1, 2 threads, paired: 12x12x16->72 (166K) 8.1 us
#: on one thread against 7.0 on two, 6x6x96->24 (83K) 5.0 against 5.1.
SERIAL_MACS = 1 << 17
#: The same for depthwise multiply-adds (a fifth of the arithmetic intensity of a GEMM's, so
#: fewer are worth a second thread): 6x6x384 3x3 (124K) 8.4 us on one against 6.7 on two,
#: 3x3 outputs x 576 3x3 (47K) 4.7 against 5.3.
DW_SERIAL_MACS = 1 << 16

__all__ = [
    "ACT_LINEAR", "ACT_RELU", "ACT_RELU6",
    "ConvCall", "DepthwiseCall", "InvertedResidualCall", "conv", "conv_call", "conv_reference", "pack_conv_kernel",
    "depthwise_call", "inverted_residual_call",
    "depthwise_conv", "depthwise_conv_reference",
    "separable_conv", "separable_conv_reference", "conv_output_shape",
]


# ---------------------------------------------------------------------------------------------
# arguments and geometry
def _tuple(value: int | Sequence[int], rank: int, name: str) -> Tuple[int, ...]:
    return shapes.normalize_tuple(value, rank, name)


def _check_input(x: np.ndarray, rank: int, where: str) -> None:
    if x.ndim != rank + 2:
        raise ValueError(f"{where}: expected an input of rank {rank + 2}, got shape {x.shape}")


def _geometry(n: int, cin: int, cout: int, groups: int, data_format: str, ins: Sequence[int],
              outs: Sequence[int], k: Sequence[int], s: Sequence[int], d: Sequence[int], p: Sequence[int],
              last: bool = False) -> dict:
    """The kernels' named geometry (``_ext/_conv_geometry.pxd``: ConvGeometry), rank 1-3 embedded
    in three axes (:func:`klayers.ops.shapes.embed3`; ``last``: trailing)."""
    return dict(batch=n, in_channels=cin, out_channels=cout, groups=groups,
                channels_first=data_format == "channels_first",
                in_size=shapes.embed3(ins, 1, last), out_size=shapes.embed3(outs, 1, last),
                kernel_size=shapes.embed3(k, 1, last), strides=shapes.embed3(s, 1, last),
                dilation_rate=shapes.embed3(d, 1, last), pad_before=shapes.embed3(p, 0, last))


def _flat(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def _bias_arg(bias: Optional[np.ndarray], dtype: np.dtype) -> np.ndarray:
    return np.empty(0, dtype=dtype) if bias is None else _flat(bias, dtype)


def _reference_epilogue(y: np.ndarray, code: int, rest, data_format: str) -> np.ndarray:
    """The reference twins' epilogue: the code's NumPy formula, then the rest, channels_first
    moved back."""
    y = activation_function(code)(y)
    if data_format == "channels_first":
        y = np.moveaxis(y, -1, 1)
    y = np.ascontiguousarray(y)
    return y if rest is None else apply_activation_reference(y, rest)


# ---------------------------------------------------------------------------------------------
# conv
def _key(value):
    """A hashable form of an int-or-sequence argument (the plan caches key on it)."""
    return tuple(value) if isinstance(value, (list, tuple, np.ndarray)) else value


@lru_cache(maxsize=1024)
def _conv_plan(x_shape, k_shape, strides, padding, dilation_rate, groups, data_format, where):
    """Validated geometry of a forward convolution, and the kernel's named geometry. Cached: a layer calls with the same shapes every time, and this arithmetic in Python cost
    about as much as a small convolution itself."""
    rank = len(k_shape) - 2
    if rank not in (1, 2, 3):
        raise ValueError(f"{where}: kernel must have rank 3-5 (k..., cin // groups, filters), got shape {k_shape}")
    if len(x_shape) != rank + 2:
        raise ValueError(f"{where}: expected an input of rank {rank + 2}, got shape {x_shape}")
    s, d = _tuple(strides, rank, "strides"), _tuple(dilation_rate, rank, "dilation_rate")
    k = tuple(k_shape[:rank])
    n, spatial, cin = shapes.split_shape(x_shape, data_format)
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
    out = shapes.conv_output_sizes(spatial, k, padding, s, d, where, x_shape)
    pads = shapes.pads_before(spatial, k, padding, s, d)
    geo = _geometry(n, cin, filters, groups, data_format, spatial, out, k, s, d, pads, last=True)
    return rank, s, d, k, n, spatial, cin, filters, out, pads, geo


def _conv_setup(x, kernel, bias, strides, padding, dilation_rate, groups, data_format, where):
    """:func:`_conv_plan` of ``x`` (an array, or its shape as a tuple) and ``kernel``, and the bias checked."""
    plan = _conv_plan(x if isinstance(x, tuple) else tuple(x.shape), tuple(kernel.shape), _key(strides), padding, _key(dilation_rate),
                      groups, data_format, where)
    filters = plan[7]
    if bias is not None and bias.shape != (filters,):
        raise ValueError(f"{where}: bias must have shape ({filters},), got {bias.shape}")
    return plan


def pack_conv_kernel(kernel: np.ndarray, groups: int = 1) -> Optional[np.ndarray]:
    """``kernel`` (``(*kernel_size, cin // groups, filters)``) packed for :func:`conv`'s
    ``packed`` argument: the ``(taps * cin, filters)`` matrix in the column strips that the
    few-rows GEMM streams (``_ext/skinny_gemm.h``). None when the kernel is grouped or not
    floating point (nothing would use it). Pack once per kernel (the inference plan does, at
    the first call that uses it) and hand it to :func:`conv` with that kernel."""
    if groups != 1 or kernel.ndim < 3:
        return None
    return pack_dense_kernel(kernel.reshape(-1, kernel.shape[-1]))


def conv(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], strides: int | Sequence[int] = 1,
         padding: str = "valid", dilation_rate: int | Sequence[int] = 1, groups: int = 1,
         data_format: str = "channels_last", act: Activation = ACT_LINEAR, n_threads: Optional[int] = None,
         where: str = "conv", packed: Optional[Callable[[], Optional[np.ndarray]]] = None) -> np.ndarray:
    """``act(conv(x, kernel) + bias)`` for rank 1-3 (rank from ``kernel.ndim - 2``).

    Args:
        x: ``(batch, *spatial, cin)`` or channels_first ``(batch, cin, *spatial)``.
        kernel: ``(*kernel_size, cin // groups, filters)``.
        bias: ``(filters,)`` or None.
        padding: "valid", "same" or "causal" (rank 1: all ``k_eff - 1`` padding before).
        act: an activation code (``klayers.ops.common.ACTIVATION_CODES``) or the layer's
            activation function: every code (and every function with one) runs in the
            kernel's epilogue on the block just computed; other functions run after.
        n_threads: OpenMP threads (default ``klayers.get_num_threads()``; small work: one).
        packed: None, or a function returning ``pack_conv_kernel(kernel, groups)`` of this
            very ``kernel`` (typically from a cache the caller keeps per weight version). It is
            called only when the packed form is used (channels_last, one group, on the
            im2col and 1x1 paths): the convolution's GEMMs then stream the packed strips
            instead of ``kernel``, at every map size and batch (0.8-1.4x BLAS's time with
            its own packing of the kernel on every call; far less on small maps).

    Returns:
        ``(batch, *out, filters)`` (or channels_first) of the kernel's dtype, with
        ``out = ceil((n - k_eff + 1) / s)`` ("valid") or ``ceil(n / s)`` ("same", "causal").

    Example::

        y = conv(np.ones((1, 5, 5, 3), "float32"), np.ones((3, 3, 3, 8), "float32"), None)  # (1, 3, 3, 8)
    """
    return conv_call(x.shape, kernel, bias, strides, padding, dilation_rate, groups, data_format, act, n_threads,
                     where, packed)(x)


class ConvCall:
    """One convolution with everything but its input decided (:func:`conv_call`): call it on
    an input of the shape it was made for. ``kernel`` is the kernel's prepared form (the
    compiled ``ConvKernel``: its arrays and geometry checked once) or, on the direct path, a
    function of ``(x, out)``; ``weights`` is the (possibly sliced) kernel it multiplies."""

    __slots__ = ("x_shape", "shape", "dtype", "kernel", "weights", "pin", "rest", "n_threads", "alloc")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self.x_shape:
            raise ValueError(f"conv: this call was prepared for inputs of shape {self.x_shape}, got {x.shape}")
        y = self.alloc(self.shape, self.dtype)
        if self.pin > 1:
            call_pinned(self.pin, self.kernel, contiguous(x, self.dtype), y)
        else:
            run_prepared(self.kernel, x, y, self.dtype)
        return y if self.rest is None else apply_activation(y, self.rest, self.n_threads, inplace=True)

    def with_residual(self, x: np.ndarray, residual: np.ndarray, act: int) -> Optional[np.ndarray]:
        """``act(conv(x) + residual)`` in one pass (the residual added in the packed GEMM's
        register tiles, after the bias; ``act`` an activation code replacing the call's own,
        which must be linear), or None when this call's path has no such epilogue (not the
        packed kernel) or ``residual`` is not an array of the output's shape and dtype."""
        kernel = self.kernel
        if (type(kernel) is not _conv.ConvKernel or not kernel.has_packed or self.rest is not None
                or kernel.act != ACT_LINEAR or type(residual) is not np.ndarray
                or residual.shape != self.shape or residual.dtype != self.dtype):
            return None
        if x.shape != self.x_shape:
            raise ValueError(f"conv: this call was prepared for inputs of shape {self.x_shape}, got {x.shape}")
        y = self.alloc(self.shape, self.dtype)
        tape.run(kernel, contiguous(x, self.dtype), y, contiguous(residual), int(act))
        return y


def conv_call(x_shape: Tuple[int, ...], kernel: np.ndarray, bias: Optional[np.ndarray],
              strides: int | Sequence[int] = 1, padding: str = "valid", dilation_rate: int | Sequence[int] = 1,
              groups: int = 1, data_format: str = "channels_last", act: Activation = ACT_LINEAR,
              n_threads: Optional[int] = None, where: str = "conv",
              packed: Optional[Callable[[], Optional[np.ndarray]]] = None) -> ConvCall:
    """:func:`conv` of inputs of shape ``x_shape`` with these weights, prepared: the checks,
    the geometry, the path (direct, im2col or 1x1, packed or not), the tiling and the thread
    count are settled here once, and the returned :class:`ConvCall` only allocates the output
    and runs the kernel (the inference plan keeps one per input shape). Arguments as
    :func:`conv`; ``kernel``, ``bias`` and the packed kernel are held by the call."""
    x_shape = tuple(x_shape)
    rank, s, d, k, n, spatial, cin, filters, out, pads, geo = _conv_setup(
        x_shape, kernel, bias, strides, padding, dilation_rate, groups, data_format, where)
    live = _live_taps(spatial, k, s, d, out, shapes.axis_paddings(spatial, k, padding, s, d))
    if live is not None:
        # taps that only ever read padding are dropped: the kernel sliced, the padding moved
        (lo, hi), explicit = live
        sliced = np.ascontiguousarray(kernel[tuple(slice(a, b) for a, b in zip(lo, hi))])
        repacked = (lambda: pack_conv_kernel(sliced, groups)) if packed is not None else None
        return conv_call(x_shape, sliced, bias, s, explicit, d, groups, data_format, act, n_threads, where, repacked)
    code, rest = split_activation(act, ALL_CODES)  # every code runs in the kernels' epilogue
    dtype = float_dtype(kernel.dtype)
    cf = data_format == "channels_first"
    taps = prod(k)
    cg = cin // groups
    p_out = prod(out)
    threads = op_threads(n_threads, n * p_out * taps * cg * (filters // groups), SERIAL_MACS)
    pointwise = taps == 1 and groups == 1 and all(si == 1 for si in s) and not any(pads)
    fg = filters // groups
    call = ConvCall()
    call.x_shape, call.shape, call.dtype = x_shape, shapes.join_shape(n, out, filters, data_format), dtype
    call.alloc = arena.allocator(call.shape, dtype)
    w, b = _flat(kernel, dtype), _bias_arg(bias, dtype)
    call.weights = w
    call.rest, call.n_threads = rest, n_threads
    head = (geo, bias is not None, code)
    # with a packed kernel, the packed GEMM beats the per-tap GEMMs of the direct path on few
    # input channels (stems: 3x3 3->32 at 96x96 b16 730 us against 1420), on fewer than
    # PACKED_OVER_DIRECT_ROWS output pixels (3x3 64->64 at 24x24 b1: 149 against 171), and
    # wherever its columns fill a strip, since it reads the windows inside the input in place
    # (ConvKernel, no im2col for them): 3x3 at b16, 47x47 32->32 281 against 198 GF/s, 24x24
    # 64->64 269 against 247; 96x96 16->16 (half a strip) 144 against 173
    packable = packed is not None and not cf and groups == 1
    full_strips = fg * dtype.itemsize >= _conv.STRIP_BYTES
    if (not pointwise and cg >= DIRECT_MIN_CIN and out[-1] >= DIRECT_MIN_WIDTH
            and (fg <= 64 or cg * fg <= DIRECT_MAX_TAP_WEIGHTS) and (not cf or s[-1] == 1)
            and not (packable and (cg < PACKED_OVER_DIRECT_CIN or n * p_out < PACKED_OVER_DIRECT_ROWS
                                   or (full_strips and out[-1] >= _conv.IMPLICIT_MIN_WIDTH)))):
        cap = _small_gemm_rows(cg, fg) or DIRECT_SEG_BYTES // (filters * dtype.itemsize)
        seg = _segment(n * p_out // out[-1], out[-1], cap, threads)
        post = head + (int(seg), threads)
        call.kernel = lambda xx, yy: _conv.conv_direct_forward(xx.reshape(-1), w, b, yy.reshape(-1), *post)
        call.pin = threads
        return call
    pk = None
    if packable:
        pk = packed()
        if pk is not None and pk.dtype != dtype:
            pk = None
    rows, cols = _im2col_tiles(n, p_out, taps * cg, fg, dtype.itemsize, threads,
                               0 if pk is not None else _small_gemm_rows(taps * cg, fg), cf, pk is not None)
    call.kernel = _conv.ConvKernel(w, b, *head, rows, cols, threads, pk)
    call.pin = 1 if pk is not None else threads  # the packed GEMM calls no BLAS: nothing to pin
    return call


def _live_taps(spatial, k, s, d, out, pairs):
    """``((lo, hi), explicit padding)`` when some taps of the kernel read only padding at every
    output (a 3x3 "same" convolution on a 1x1 map uses its centre tap alone): the live taps
    ``lo[i] <= t < hi[i]`` per axis and the explicit ``(before, after)`` padding that gives the
    sliced kernel the same outputs; None when every tap is live."""
    lo, hi, explicit = [], [], []
    for n, kk, si, di, o, (before, _) in zip(spatial, k, s, d, out, pairs):
        # tap t reads input indices t * d - before + q * s for q < o: live when that range meets [0, n)
        a = next((t for t in range(kk) if (o - 1) * si - before + t * di >= 0), kk)
        b = next((t + 1 for t in reversed(range(kk)) if t * di - before < n), 0)
        if b <= a:
            return None  # no live tap at all: leave the zero-output case to the kernels
        new_before = before - a * di
        new_after = (o - 1) * si + (b - a - 1) * di + 1 - n - new_before
        if new_before < 0 or new_after < 0:
            return None
        lo.append(a)
        hi.append(b)
        explicit.append((new_before, new_after))
    if all(a == 0 and b == kk for a, b, kk in zip(lo, hi, k)):
        return None
    return (tuple(lo), tuple(hi)), tuple(explicit)


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


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@lru_cache(maxsize=1024)
def _im2col_tiles(n: int, p_out: int, kc: int, fg: int, itemsize: int, threads: int,
                  small_rows: int, cf: bool, packed: bool = False) -> Tuple[int, int]:
    """``(rows, channels)`` of each task of ``ConvKernel``: output pixels per im2col (or 1x1)
    chunk and output channels per slice of each group.

    channels_last chunks count rows across the whole batch. With a packed kernel and at most
    ``PACKED_ROWS`` rows in all (small maps at small batches: ResNet50's 3x3 and 6x6 stages at
    96x96), one chunk of every row and the channels split evenly between the threads, in
    whole strips: each thread streams its own contiguous part of the packed kernel once; but
    a kernel under ``PACKED_STREAM_BYTES`` stays in cache, and there the threads split the
    rows instead (1x1 96->576 on a 6x6 map: 19 us against 24 split by channels, 28 on one
    thread). Memoised: a model asks the same few questions on every call.
    Otherwise, when there are at least twice as many row chunks as threads (large maps, large
    batches) the channels are not split. On small maps there are fewer rows than threads
    want, and every task's BLAS GEMM packs the kernel slice it multiplies: ``ConvKernel``
    over 2 row chunks of one 6x6 map packs the 2.4 MB kernel of a 3x3 256->256 conv twice,
    over 2 channel slices once. The split minimises that traffic, ``row chunks x kernel +
    channel slices x im2col block``, over the tilings whose task count is a multiple of the
    threads, with slices of at least ``MIN_SLICE`` channels (whole strips of a packed
    kernel, which the packed GEMM streams once per row chunk).
    """
    if cf:
        return _im2col_rows(n, p_out, kc * itemsize, threads, small_rows), fg
    span = n * p_out
    sw = _conv.STRIP_BYTES // itemsize
    step = sw if packed else 16  # a packed kernel's slices are whole strips
    if packed and span <= _conv.PACKED_ROWS and kc * fg * itemsize < PACKED_STREAM_BYTES:
        # a kernel that stays in cache: the threads split the rows and each reads all of it
        return max(1, -(-span // threads)), fg
    if packed and span <= _conv.PACKED_ROWS:
        strips = -(-fg // sw)
        per = -(-strips // max(1, min(threads, strips)))
        return max(1, span), per * sw
    cap = max(8, CHUNK_BYTES // max(1, kc * itemsize))
    if small_rows:
        cap = min(cap, small_rows)
    if packed:
        # the chunk's output stays in cache for the epilogue after its GEMM
        cap = min(cap, max(16, PACKED_OUT_BYTES // max(1, fg * itemsize)))
    natural = -(-span // cap)
    if threads == 1:
        return max(1, min(cap, span)), fg
    if natural >= 2 * threads or small_rows:
        tasks = -(-max(natural, 2 * threads) // threads) * threads
        return max(1, min(cap, -(-span // tasks))), fg
    best: Optional[Tuple[int, int, int, int]] = None
    for rt in range(max(1, natural), 2 * threads + 1):
        rows = -(-span // rt)
        if rows > cap:
            continue
        for ncs in range(1, 2 * threads + 1):
            cs = fg if ncs == 1 else -(-_ceil_div(fg, ncs) // step) * step
            if ncs > 1 and (cs < MIN_SLICE or cs >= fg):
                continue
            tasks = -(-span // rows) * -(-fg // cs)
            if tasks < threads or tasks % threads:
                continue
            cost = tasks // -(-fg // cs) * kc * fg + -(-fg // cs) * span * kc
            if best is None or (cost, tasks) < (best[0], best[1]):
                best = (cost, tasks, rows, cs)
    if best is None:
        return _im2col_rows(1, span, kc * itemsize, threads, 0), fg
    return best[2], best[3]


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
                   data_format: str = "channels_last", act: Activation = ACT_LINEAR,
                   n_threads: Optional[int] = None, where: str = "conv",
                   packed: Optional[Callable[[], Optional[np.ndarray]]] = None) -> np.ndarray:
    """NumPy twin of :func:`conv`: zero-pad, then one tensordot per kernel tap and group
    (``packed`` is ignored: it only gives ``kernel`` in another layout)."""
    rank, s, d, k, n, spatial, cin, filters, out = _conv_setup(
        x, kernel, bias, strides, padding, dilation_rate, groups, data_format, where)[:9]
    code, rest = split_activation(act)
    dtype = float_dtype(kernel.dtype)
    xl = np.asarray(x, dtype=dtype)
    if data_format == "channels_first":
        xl = np.moveaxis(xl, 1, -1)
    pads = shapes.axis_paddings(spatial, k, padding, s, d)
    xp = np.pad(xl, [(0, 0)] + pads + [(0, 0)])
    cg, fg = cin // groups, filters // groups
    y = np.zeros((n,) + tuple(out) + (filters,), dtype=dtype)
    for tap in np.ndindex(*k):
        sl = tuple(slice(t * di, t * di + (o - 1) * si + 1, si) for t, di, si, o in zip(tap, d, s, out))
        patch = xp[(slice(None),) + sl]
        for g in range(groups):
            y[..., g * fg:(g + 1) * fg] += patch[..., g * cg:(g + 1) * cg] @ kernel[tap][:, g * fg:(g + 1) * fg].astype(dtype)
    if bias is not None:
        y += bias.astype(dtype)
    return _reference_epilogue(y, code, rest, data_format)


# ---------------------------------------------------------------------------------------------
# depthwise
@lru_cache(maxsize=1024)
def _depthwise_plan(x_shape, k_shape, strides, padding, dilation_rate, data_format, where):
    """Validated geometry of a depthwise convolution and its kernel geometry (cached as :func:`_conv_plan`)."""
    rank = len(k_shape) - 2
    if rank not in (1, 2, 3):
        raise ValueError(f"{where}: depthwise kernel must have rank 3-5 (k..., cin, multiplier), got shape {k_shape}")
    if len(x_shape) != rank + 2:
        raise ValueError(f"{where}: expected an input of rank {rank + 2}, got shape {x_shape}")
    s, d = _tuple(strides, rank, "strides"), _tuple(dilation_rate, rank, "dilation_rate")
    k = tuple(k_shape[:rank])
    n, spatial, cin = shapes.split_shape(x_shape, data_format)
    if k_shape[-2] != cin:
        raise ValueError(f"{where}: the input has {cin} channels but the depthwise kernel has {k_shape[-2]} (shape {k_shape})")
    mult = k_shape[-1]
    if mult < 1:
        raise ValueError(f"{where}: depth multiplier must be >= 1, got kernel shape {k_shape}")
    out = shapes.conv_output_sizes(spatial, k, padding, s, d, where, x_shape)
    geo = _geometry(n, cin, cin * mult, cin, data_format, spatial, out, k, s, d,
                    shapes.pads_before(spatial, k, padding, s, d), last=True)
    return rank, s, d, k, n, spatial, cin, mult, out, geo


def _depthwise_setup(x, kernel, bias, strides, padding, dilation_rate, data_format, where):
    plan = _depthwise_plan(x if isinstance(x, tuple) else tuple(x.shape), tuple(kernel.shape), _key(strides),
                           padding, _key(dilation_rate), data_format, where)
    cm = plan[6] * plan[7]
    if bias is not None and bias.shape != (cm,):
        raise ValueError(f"{where}: bias must have shape ({cm},), got {bias.shape}")
    return plan


def depthwise_conv(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], strides: int | Sequence[int] = 1,
                   padding: str = "valid", dilation_rate: int | Sequence[int] = 1,
                   data_format: str = "channels_last", act: Activation = ACT_LINEAR,
                   n_threads: Optional[int] = None, where: str = "depthwise_conv") -> np.ndarray:
    """Depthwise convolution: output channel ``c * multiplier + m`` is input channel ``c`` convolved
    with ``kernel[..., c, m]``.

    Args:
        x: ``(batch, *spatial, cin)`` or channels_first.
        kernel: ``(*kernel_size, cin, multiplier)``.
        bias: ``(cin * multiplier,)`` or None.

    Returns:
        ``(batch, *out, cin * multiplier)`` (or channels_first).
    """
    return depthwise_call(x.shape, kernel, bias, strides, padding, dilation_rate, data_format, act, n_threads,
                          where)(x)


class DepthwiseCall:
    """One depthwise convolution with everything but its input decided (:func:`depthwise_call`):
    call it on an input of the shape it was made for (``kernel``: the compiled
    ``DepthwiseKernel``, its arrays and geometry checked once)."""

    __slots__ = ("x_shape", "shape", "dtype", "kernel", "rest", "n_threads", "alloc")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self.x_shape:
            raise ValueError(f"depthwise_conv: this call was prepared for inputs of shape {self.x_shape}, got {x.shape}")
        y = self.alloc(self.shape, self.dtype)
        run_prepared(self.kernel, x, y, self.dtype)
        return y if self.rest is None else apply_activation(y, self.rest, self.n_threads, inplace=True)


def depthwise_call(x_shape: Tuple[int, ...], kernel: np.ndarray, bias: Optional[np.ndarray],
                   strides: int | Sequence[int] = 1, padding: Any = "valid",
                   dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                   act: Activation = ACT_LINEAR, n_threads: Optional[int] = None,
                   where: str = "depthwise_conv") -> DepthwiseCall:
    """:func:`depthwise_conv` of inputs of shape ``x_shape`` with these weights, prepared: the
    checks, the geometry, the tiling and the thread count are settled once, and the returned
    :class:`DepthwiseCall` only allocates the output and runs the kernel (the inference plan
    keeps one per input shape). ``padding`` may also be explicit ``(before, after)`` pairs (a
    ZeroPadding folded in)."""
    x_shape = tuple(x_shape)
    rank, s, d, k, n, spatial, cin, mult, out, geo = _depthwise_setup(
        x_shape, kernel, bias, strides, padding, dilation_rate, data_format, where)
    code, rest = split_activation(act, ALL_CODES)  # every code runs in the kernel
    dtype = float_dtype(kernel.dtype)
    cf = data_format == "channels_first"
    p_out = prod(out)
    threads = op_threads(n_threads, n * p_out * cin * mult * prod(k), DW_SERIAL_MACS)
    rows = n * (p_out // out[-1]) * (cin * mult if cf else 1)
    per_out = dtype.itemsize * (1 if cf else cin * mult)
    blk = _segment(rows, out[-1], DW_BLOCK_BYTES // per_out, threads)
    call = DepthwiseCall()
    call.x_shape, call.shape, call.dtype = x_shape, shapes.join_shape(n, out, cin * mult, data_format), dtype
    call.alloc = arena.allocator(call.shape, dtype)
    call.kernel = _depthwise.DepthwiseKernel(_flat(kernel, dtype), _bias_arg(bias, dtype), geo, bias is not None, code,
                                             int(blk), threads)
    call.rest, call.n_threads = rest, n_threads
    return call


class InvertedResidualCall:
    """An inverted residual block with everything but its input decided
    (:func:`inverted_residual_call`): call it on an input of the shape it was made for."""

    __slots__ = ("x_shape", "shape", "dtype", "kernel", "alloc")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self.x_shape:
            raise ValueError(f"inverted_residual: this call was prepared for inputs of shape {self.x_shape}, "
                             f"got {x.shape}")
        y = self.alloc(self.shape, self.dtype)
        run_prepared(self.kernel, x, y, self.dtype)
        return y


def inverted_residual_call(x_shape: Tuple[int, ...], expand: Optional[Tuple[Any, ...]], depthwise: Tuple[Any, ...],
                           project: Tuple[Any, ...], residual: bool, n_threads: Optional[int] = None,
                           squeeze: Optional[Tuple[Tuple[Any, ...], Tuple[Any, ...]]] = None,
                           where: str = "inverted residual block") -> Optional[InvertedResidualCall]:
    """MobileNet's inverted residual block on channels_last inputs of shape ``x_shape``
    ``(n, h, w, cin)``, prepared as one kernel (``_ext.depthwise.InvertedResidualKernel``: the
    expanded and depthwise tensors are never made whole):
    ``d = act_d(depthwise(act_e(conv1x1(x, ke) + be), kd) + bd)``, optionally
    ``d = d * act_2(act_1(mean(d) @ k1 + b1) @ k2 + b2)`` (squeeze-and-excitation), then
    ``act_p(conv1x1(d, kp) + bp [+ x])``.

    Args:
        expand: ``(kernel (1, 1, cin, ce), bias or None, activation code, packed kernel)``, or
            None (no expansion: ``cin == ce``).
        depthwise: ``(kernel (kh, kw, ce, 1), bias or None, activation code, strides, padding)``,
            padding "valid", "same" or explicit ``(before, after)`` pairs.
        project: ``(kernel (1, 1, ce, cout), bias or None, activation code, packed kernel)``;
            the activation is applied after the residual.
        residual: add the block's input (stride 1, ``cin == cout``).
        squeeze: ``((k1 (ce, cr), b1 or None, code), (k2 (cr, ce), b2 or None, code))`` or None.

    Returns:
        The prepared call, or None when the block does not fit the kernel (another dtype than
        float32/float64, a kernel not packed, a multiplier or dilation other than 1): the
        caller then runs the layers' own calls.
    """
    (kd, bd, ad, strides, padding), (kp, bp, aq, pp) = depthwise, project
    dtype = np.dtype(kd.dtype)
    if (dtype not in FLOATS or len(x_shape) != 4 or pp is None or pp.dtype != dtype or kp.dtype != dtype
            or kd.shape[-1] != 1 or kp.shape[:2] != (1, 1) or kd.ndim != 4):
        return None
    if expand is not None:
        ke, be, ae, pe = expand
        if pe is None or pe.dtype != dtype or ke.dtype != dtype or ke.shape[:2] != (1, 1):
            return None
    n, h, w, cin = x_shape
    ce, cout = kd.shape[2], kp.shape[-1]
    if (expand is not None and (ke.shape[2] != cin or ke.shape[3] != ce)) or (expand is None and cin != ce) \
            or kp.shape[2] != ce:
        raise ValueError(f"{where}: kernels of shapes {None if expand is None else ke.shape}, {kd.shape}, "
                         f"{kp.shape} do not chain on {cin} input channels")
    mid = (n, h, w, ce)
    _, _, _, k, _, _, _, _, out, geo = _depthwise_setup(mid, kd, bd, strides, padding, 1, "channels_last", where)
    if residual and (tuple(out) != (h, w) or cin != cout):
        raise ValueError(f"{where}: a residual needs the output's shape {(n, h, w, cin)}, got {(n,) + tuple(out) + (cout,)}")
    ho, wo = out
    macs = (n * h * w * cin * ce if expand is not None else 0) + n * ho * wo * ce * (k[0] * k[1] + cout)
    threads = op_threads(n_threads, macs, SERIAL_MACS)
    samples = 0
    if w < IRB_MIN_WIDTH or squeeze is not None or expand is None:
        # tasks of whole samples, as many as fit IRB_SAMPLE_BYTES, every thread one; fewer
        # samples than threads: one sample at a time, shared by the threads phase by phase
        per_sample = ((h * w if expand is not None else 0) + ho * wo) * ce * dtype.itemsize
        samples = max(1, min(IRB_SAMPLE_BYTES // per_sample, -(-n // threads))) if n >= threads else -1

    gate = None
    if squeeze is not None:
        (k1, b1, a1), (k2, b2, a2) = squeeze
        if k1.dtype != dtype or k2.dtype != dtype or k1.shape != (ce, k2.shape[0]) or k2.shape != (k1.shape[1], ce):
            raise ValueError(f"{where}: squeeze-and-excitation kernels of shapes {k1.shape}, {k2.shape} do not "
                             f"fit {ce} channels")
        gate = ((pack_dense_kernel(k1), _bias_arg(b1, dtype), int(a1)), (pack_dense_kernel(k2), _bias_arg(b2, dtype), int(a2)))
    call = InvertedResidualCall()
    call.x_shape, call.shape, call.dtype = tuple(x_shape), (n, ho, wo, cout), dtype
    call.alloc = arena.allocator(call.shape, dtype)
    call.kernel = _depthwise.InvertedResidualKernel(
        None if expand is None else (pe, _bias_arg(be, dtype), int(ae)), (_flat(kd, dtype), _bias_arg(bd, dtype), int(ad)), geo, gate,
        (pp, _bias_arg(bp, dtype), int(aq)), cout, bool(residual), threads, samples)
    return call


def depthwise_conv_reference(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray],
                             strides: int | Sequence[int] = 1, padding: str = "valid",
                             dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                             act: Activation = ACT_LINEAR, n_threads: Optional[int] = None,
                             where: str = "depthwise_conv") -> np.ndarray:
    """NumPy twin of :func:`depthwise_conv` (zero-pad, one broadcast multiply-add per tap)."""
    rank, s, d, k, n, spatial, cin, mult, out = _depthwise_setup(
        x, kernel, bias, strides, padding, dilation_rate, data_format, where)[:9]
    code, rest = split_activation(act)
    dtype = float_dtype(kernel.dtype)
    xl = np.asarray(x, dtype=dtype)
    if data_format == "channels_first":
        xl = np.moveaxis(xl, 1, -1)
    pads = shapes.axis_paddings(spatial, k, padding, s, d)
    xp = np.pad(xl, [(0, 0)] + pads + [(0, 0)])
    y = np.zeros((n,) + tuple(out) + (cin, mult), dtype=dtype)
    for tap in np.ndindex(*k):
        sl = tuple(slice(t * di, t * di + (o - 1) * si + 1, si) for t, di, si, o in zip(tap, d, s, out))
        y += xp[(slice(None),) + sl][..., None] * kernel[tap].astype(dtype)
    y = y.reshape((n,) + tuple(out) + (cin * mult,))
    if bias is not None:
        y += bias.astype(dtype)
    return _reference_epilogue(y, code, rest, data_format)


# ---------------------------------------------------------------------------------------------
# separable = depthwise (strides, dilation, padding) then a 1x1 pointwise conv with bias
def _causal_as_valid(x, depthwise_kernel, padding, dilation_rate, data_format, where):
    """A rank-1 "causal" separable convolution as "valid" on the input padded in front."""
    if padding != "causal":
        return x, padding
    rank = depthwise_kernel.ndim - 2
    _check_input(x, rank, where)
    axis = 2 if data_format == "channels_first" else 1
    widths = [(0, 0)] * x.ndim
    widths[axis] = shapes.padding_amounts(x.shape[axis], depthwise_kernel.shape[0], "causal", 1,
                                          _tuple(dilation_rate, rank, "dilation_rate")[0])
    return np.pad(x, widths), "valid"


def separable_conv(x: np.ndarray, depthwise_kernel: np.ndarray, pointwise_kernel: np.ndarray,
                   bias: Optional[np.ndarray], strides: int | Sequence[int] = 1, padding: str = "valid",
                   dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                   act: Activation = ACT_LINEAR, n_threads: Optional[int] = None,
                   where: str = "separable_conv") -> np.ndarray:
    """``act(pointwise(depthwise(x)) + bias)``; pointwise kernel ``(1, ..., cin * multiplier, filters)``.

    channels_last runs one fused kernel (``separable_forward``: each block of depthwise outputs
    goes through its pointwise GEMM while still in cache); channels_first runs the depthwise
    and 1x1 ops in turn.
    """
    x, padding = _causal_as_valid(x, depthwise_kernel, padding, dilation_rate, data_format, where)
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
    code, rest = split_activation(act, ALL_CODES)
    dtype = float_dtype(depthwise_kernel.dtype)
    p_out = prod(out)
    mid = np.empty(n * p_out * cm, dtype=dtype)
    y = np.empty(shapes.join_shape(n, out, filters, data_format), dtype=dtype)
    threads = op_threads(n_threads, n * p_out * cm * (filters + prod(k)), SERIAL_MACS)
    cap = SEPARABLE_BLOCK_BYTES // (cm * dtype.itemsize)
    blk = _segment(n * (p_out // out[-1]), out[-1], min(cap, _small_gemm_rows(cm, filters) or cap), threads)
    call_pinned(threads, _depthwise.separable_forward, _flat(x, dtype), _flat(depthwise_kernel, dtype),
                _flat(pointwise_kernel, dtype), _bias_arg(bias, dtype), mid, y.reshape(-1), geo, bias is not None,
                code, int(blk), threads)
    return y if rest is None else apply_activation(y, rest, n_threads, inplace=True)


def separable_conv_reference(x: np.ndarray, depthwise_kernel: np.ndarray, pointwise_kernel: np.ndarray,
                             bias: Optional[np.ndarray], strides: int | Sequence[int] = 1, padding: str = "valid",
                             dilation_rate: int | Sequence[int] = 1, data_format: str = "channels_last",
                             act: Activation = ACT_LINEAR, n_threads: Optional[int] = None,
                             where: str = "separable_conv") -> np.ndarray:
    """NumPy twin of :func:`separable_conv`."""
    x, padding = _causal_as_valid(x, depthwise_kernel, padding, dilation_rate, data_format, where)
    mid = depthwise_conv_reference(x, depthwise_kernel, None, strides, padding, dilation_rate, data_format,
                                   ACT_LINEAR, n_threads, where)
    return conv_reference(mid, pointwise_kernel, bias, 1, "valid", 1, 1, data_format, act, n_threads, where)
