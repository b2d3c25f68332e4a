# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Depthwise and separable convolution kernels (rank 1-3): direct loops, register-tiled over the
whole window (``depthwise_tiles.h``, one variant per rung of the CPU-feature ladder, picked at
import by :func:`select_isa`), and the separable convolution fused per block (depthwise outputs go
through their pointwise GEMM while still in cache).

Same contract as ``conv.pyx``: const flat IN views, caller-allocated OUT views, a named
ConvGeometry (``_conv_geometry.pxd``, with ``groups == in_channels`` and ``out_channels ==
in_channels * multiplier``) checked before the GIL is released, the shared epilogue and
activation codes (``_epilogue.pxd``, ``_act.pxd``).
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.string cimport memset, memcpy

from _act cimport ACT_RELU6, activation_codes, check_act
from _blas cimport gemm
from _conv_geometry cimport Geom, check_bias_size, check_kernel_size, input_size, load_geometry, output_size
from _cpu cimport kl_cpu_level, kl_isa_name
from _epilogue cimport act_inplace, epilogue, kl_act_use
from _ndarray cimport array_data, array_size, float_type
from _skinny cimport KSK_STRIP_BYTES, ksk_use, packed_gemm, packed_len, strips
from _windows cimport tap_output_range, window_taps

cnp.import_array()

cdef extern from "depthwise_tiles.h":
    void kdw_window_float(float* o, const float* const* xr, const float* const* wr, int nr, Py_ssize_t off,
                          Py_ssize_t woff, Py_ssize_t xstep, Py_ssize_t tapstep, Py_ssize_t K2, Py_ssize_t npix,
                          Py_ssize_t C, const float* bias, int act) noexcept nogil
    void kdw_window_double(double* o, const double* const* xr, const double* const* wr, int nr, Py_ssize_t off,
                           Py_ssize_t woff, Py_ssize_t xstep, Py_ssize_t tapstep, Py_ssize_t K2, Py_ssize_t npix,
                           Py_ssize_t C, const double* bias, int act) noexcept nogil
    void kdw_use(int level) noexcept nogil

cdef enum:
    # the most rows of taps (k0, k1 pairs in range) the whole-window kernel takes; larger
    # kernels sweep one tap at a time
    _MAX_TAP_ROWS = 64
    # rows per thread below which a block's GEMM shared by threads splits its columns instead
    _SPLIT_ROWS = 24

#: the activation codes (name -> code) of every kernel module (_act.pxd)
ACTIVATIONS = activation_codes()


def select_isa(int max_level=2):
    """Use the depthwise inner loop of the widest rung of the CPU-feature ladder
    (``cpu_features.h``: 0 baseline, 1 AVX2 + FMA, 2 AVX-512) that is at most ``max_level`` and
    that this CPU has; returns its name. Import selects the widest; tests force lower levels."""
    cdef int level = kl_cpu_level(max_level)
    kdw_use(level)
    ksk_use(level)
    kl_act_use(level)
    return kl_isa_name(level).decode()


#: the instruction set chosen at import (the same in every kernel module)
ISA = select_isa()


cdef int _load_depthwise(object geometry, Geom* g, Py_ssize_t x_size, Py_ssize_t out_size, Py_ssize_t w_size,
                         int act, str where) except -1:
    """The geometry of a depthwise convolution: ``groups == in_channels``, kernel ``(taps, cout)``."""
    load_geometry(geometry, g, x_size, out_size, where)
    if g.groups != g.cin:
        raise ValueError(f"{where}: geometry groups ({g.groups}) must equal in_channels ({g.cin})")
    check_kernel_size(w_size, g, g.cout, where)
    check_act(act, where)
    return 0


cdef void _depthwise_run(const floating* xp, const floating* wp, const floating* bp, floating* yp, Geom* gp,
                         bint use_bias, int act, Py_ssize_t blk, int n_threads) noexcept nogil:
    """DepthwiseKernel's call on checked pointers."""
    cdef Geom g = gp[0]
    cdef Py_ssize_t P = g.outd[0] * g.outd[1] * g.outd[2]
    if g.n == 0 or P == 0:
        return
    cdef Py_ssize_t nblk = (g.outd[2] + blk - 1) // blk
    cdef Py_ssize_t rows = g.n * g.outd[0] * g.outd[1] * (g.cout if g.cf else 1)
    cdef Py_ssize_t task
    if n_threads == 1 or rows * nblk == 1:
        for task in range(rows * nblk):
            if g.cf:
                _dw_block_cf(xp, wp, bp, yp, &g, task // nblk, (task % nblk) * blk, blk, use_bias, act)
            else:
                _dw_block_cl(xp, wp, bp, yp, &g, task // nblk, (task % nblk) * blk, blk, use_bias, act)
        return
    for task in prange(rows * nblk, num_threads=n_threads, schedule="static"):
        if g.cf:
            _dw_block_cf(xp, wp, bp, yp, &g, task // nblk, (task % nblk) * blk, blk, use_bias, act)
        else:
            _dw_block_cl(xp, wp, bp, yp, &g, task // nblk, (task % nblk) * blk, blk, use_bias, act)


cdef class DepthwiseKernel:
    """The depthwise convolution, prepared: ``DepthwiseKernel(w, bias, geometry, use_bias, act,
    blk, n_threads)`` checks the geometry, weights, bias, block and thread count once (holding
    the arrays), and ``kernel(x, out)`` then only checks its arrays (type, dtype, C order, size)
    and runs: no memoryview or geometry conversion per call.

    ``kernel(x, out)``: direct loops, out channel ``f = c * mult + m`` reads input channel ``c``;
    x and out (flat or shaped, C-contiguous, the prepared dtype) in the layout ``geometry`` says,
    with ``groups == in_channels`` and ``out_channels == in_channels * mult``; w is the Keras
    kernel ``(k0, k1, k2, cin, mult)`` flattened, i.e. ``(taps, cout)``; bias ``(cout,)`` (may
    be empty when ``use_bias`` is 0).

    A task is a block of ``blk`` outputs of one output row (last spatial axis; channels_first:
    of one channel's row). It starts the block from the bias, then sweeps each tap over the
    block's outputs whose input is in range (``tap_output_range``: no bounds test inside), with
    the channels (channels_last) or the row's pixels (channels_first) innermost and contiguous,
    so the multiply-adds vectorise; the block stays in L1 across the taps.
    """
    cdef Geom g
    cdef object w, bias
    cdef const char* wp
    cdef const char* bp
    cdef int typenum, act, n_threads
    cdef bint use_bias
    cdef Py_ssize_t blk, x_size, out_size

    def __init__(self, w, bias, dict geometry, bint use_bias, int act, Py_ssize_t blk, int n_threads):
        where = "DepthwiseKernel"
        self.typenum = float_type(getattr(w, "dtype", None), where)
        cdef Py_ssize_t w_size = array_size(w, where, "the kernel")
        cdef Py_ssize_t b_size = array_size(bias, where, "the bias")
        _load_depthwise(geometry, &self.g, -1, -1, w_size, act, where)
        check_bias_size(b_size, use_bias, self.g.cout, where)
        if blk < 1:
            raise ValueError(f"{where}: blk must be >= 1, got {blk}")
        if n_threads < 1:
            raise ValueError(f"{where}: n_threads must be >= 1, got {n_threads}")
        self.x_size, self.out_size = input_size(&self.g), output_size(&self.g)
        self.wp = array_data(w, self.typenum, w_size, False, where, "the kernel")
        self.bp = array_data(bias, self.typenum, b_size, False, where, "the bias") if b_size else NULL
        self.w, self.bias = w, bias
        self.use_bias, self.act, self.blk, self.n_threads = use_bias, act, blk, n_threads

    def __call__(self, x, out):
        where = "DepthwiseKernel"
        cdef const char* xp = array_data(x, self.typenum, self.x_size, False, where, "input")
        cdef char* yp = array_data(out, self.typenum, self.out_size, True, where, "output")
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                _depthwise_run(<const float*>xp, <const float*>self.wp, <const float*>self.bp, <float*>yp, &self.g,
                               self.use_bias, self.act, self.blk, self.n_threads)
            else:
                _depthwise_run(<const double*>xp, <const double*>self.wp, <const double*>self.bp, <double*>yp,
                               &self.g, self.use_bias, self.act, self.blk, self.n_threads)


cdef inline void _dw_tap_cl(floating* o, const floating* xs, Py_ssize_t xstep, const floating* wt,
                            Py_ssize_t npix, Py_ssize_t C, Py_ssize_t M) noexcept nogil:
    """o[q, c * M + m] += xs[q * xstep + c] * wt[c * M + m] for q < npix (one tap, a block)."""
    cdef Py_ssize_t q, c, m, F = C * M
    cdef floating xv
    if M == 1:
        for q in range(npix):
            for c in range(C):
                o[c] = o[c] + xs[c] * wt[c]
            o += F
            xs += xstep
    else:
        for q in range(npix):
            for c in range(C):
                xv = xs[c]
                for m in range(M):
                    o[c * M + m] = o[c * M + m] + xv * wt[c * M + m]
            o += F
            xs += xstep


cdef inline void _dw_window(floating* o, const floating** xr, const floating** wr, int nr, Py_ssize_t off,
                            Py_ssize_t woff, Py_ssize_t xstep, Py_ssize_t tapstep, Py_ssize_t K2, Py_ssize_t npix,
                            Py_ssize_t C, const floating* bias, int act) noexcept nogil:
    if floating is float:
        kdw_window_float(o, xr, wr, nr, off, woff, xstep, tapstep, K2, npix, C, bias, act)
    else:
        kdw_window_double(o, xr, wr, nr, off, woff, xstep, tapstep, K2, npix, C, bias, act)


cdef void _dw_sweep_cl(const floating* xp, const floating* wp, const floating* bp, floating* orow,
                       Geom* g, Py_ssize_t b, Py_ssize_t st0, Py_ssize_t lo0, Py_ssize_t hi0,
                       Py_ssize_t st1, Py_ssize_t lo1, Py_ssize_t hi1, Py_ssize_t q_lo, Py_ssize_t q_hi,
                       bint use_bias, int act) noexcept nogil:
    """Outputs ``q_lo <= o2 < q_hi`` of a row, channels_last, any multiplier: start from the
    bias, sweep each tap over the outputs whose input is in range, then the activation."""
    cdef Py_ssize_t C = g.cin, F = g.cout, M = g.cout // g.cin, K1 = g.k[1], K2 = g.k[2]
    cdef Py_ssize_t q, a, bb, cc, lo, hi
    cdef const floating* xrow
    if q_hi <= q_lo:
        return
    if use_bias:
        for q in range(q_lo, q_hi):
            memcpy(orow + q * F, bp, F * sizeof(floating))
    else:
        memset(orow + q_lo * F, 0, (q_hi - q_lo) * F * sizeof(floating))
    for a in range(lo0, hi0):
        for bb in range(lo1, hi1):
            xrow = xp + b * g.xb + (st0 + a * g.dil[0]) * g.x0 + (st1 + bb * g.dil[1]) * g.x1
            for cc in range(K2):
                tap_output_range(cc, g.s[2], g.pad[2], g.dil[2], g.ind[2], g.outd[2], &lo, &hi)
                if lo < q_lo:
                    lo = q_lo
                if hi > q_hi:
                    hi = q_hi
                if hi > lo:
                    _dw_tap_cl(orow + lo * F, xrow + (lo * g.s[2] - g.pad[2] + cc * g.dil[2]) * C,
                               g.s[2] * C, wp + ((a * K1 + bb) * K2 + cc) * F, hi - lo, C, M)
    if act != 0:
        act_inplace(orow + q_lo * F, (q_hi - q_lo) * F, act)


cdef void _dw_block_cl(const floating* xp, const floating* wp, const floating* bp, floating* yp,
                       Geom* g, Py_ssize_t r, Py_ssize_t q_lo, Py_ssize_t blk, bint use_bias,
                       int act) noexcept nogil:
    """Outputs ``q_lo <= o2 < q_lo + blk`` of output row ``r`` (sample, o0, o1), channels_last.
    With multiplier 1 everything goes through the register-tiled whole-window kernel
    (``kdw_window``): the in-range rows of taps (k0, k1) are listed once, then the outputs
    whose taps along the last axis are all in range go in one run, each border output with its
    own in-range taps; every output is stored once, with its bias and relu / relu6 (other
    activations map the block after, still in L1). Multipliers > 1 and kernels of more than
    ``_MAX_TAP_ROWS`` rows of taps take the per-tap sweep."""
    cdef Py_ssize_t C = g.cin, F = g.cout, K1 = g.k[1], K2 = g.k[2], s2 = g.s[2], d2 = g.dil[2]
    cdef Py_ssize_t b = r // (g.outd[0] * g.outd[1]), o0 = (r // g.outd[1]) % g.outd[0], o1 = r % g.outd[1]
    cdef Py_ssize_t q_hi = q_lo + blk, qa, qb, q, a, bb, cc, lo, hi, st2, lo2, hi2
    cdef Py_ssize_t st0, st1, lo0, hi0, lo1, hi1
    cdef floating* orow = yp + b * g.yb + o0 * g.y0 + o1 * g.y1
    cdef const floating* xr[_MAX_TAP_ROWS]
    cdef const floating* wr[_MAX_TAP_ROWS]
    cdef int nr = 0
    cdef const floating* bias = bp if use_bias else NULL
    cdef int tile_act = act if act <= ACT_RELU6 else 0
    if q_hi > g.outd[2]:
        q_hi = g.outd[2]
    window_taps(o0, g.s[0], g.pad[0], g.dil[0], g.k[0], g.ind[0], &st0, &lo0, &hi0)
    window_taps(o1, g.s[1], g.pad[1], g.dil[1], K1, g.ind[1], &st1, &lo1, &hi1)
    if hi0 < lo0:
        hi0 = lo0
    if hi1 < lo1:
        hi1 = lo1
    if F != C or (hi0 - lo0) * (hi1 - lo1) > _MAX_TAP_ROWS:
        _dw_sweep_cl(xp, wp, bp, orow, g, b, st0, lo0, hi0, st1, lo1, hi1, q_lo, q_hi, use_bias, act)
        return
    for a in range(lo0, hi0):
        for bb in range(lo1, hi1):
            xr[nr] = xp + b * g.xb + (st0 + a * g.dil[0]) * g.x0 + (st1 + bb * g.dil[1]) * g.x1
            wr[nr] = wp + (a * K1 + bb) * K2 * F
            nr += 1
    # interior: outputs where every tap along the last axis is in range
    qa, qb = q_lo, q_hi
    for cc in range(K2):
        tap_output_range(cc, s2, g.pad[2], d2, g.ind[2], g.outd[2], &lo, &hi)
        if lo > qa:
            qa = lo
        if hi < qb:
            qb = hi
    if qb <= qa:
        qa = qb = q_lo
    if qb > qa:
        _dw_window(orow + qa * F, xr, wr, nr, (qa * s2 - g.pad[2]) * C, 0, s2 * C, d2 * C, K2, qb - qa, C,
                   bias, tile_act)
    for q in range(q_lo, q_hi):
        if qa <= q < qb:
            continue
        window_taps(q, s2, g.pad[2], d2, K2, g.ind[2], &st2, &lo2, &hi2)
        if hi2 < lo2:
            hi2 = lo2
        _dw_window(orow + q * C, xr, wr, nr, (st2 + lo2 * d2) * C, lo2 * C, 0, d2 * C, hi2 - lo2, 1, C,
                   bias, tile_act)
    if act > ACT_RELU6:
        act_inplace(orow + q_lo * F, (q_hi - q_lo) * F, act)


cdef void _dw_block_cf(const floating* xp, const floating* wp, const floating* bp, floating* yp,
                       Geom* g, Py_ssize_t r, Py_ssize_t q_lo, Py_ssize_t blk, bint use_bias,
                       int act) noexcept nogil:
    """Outputs ``q_lo <= o2 < q_lo + blk`` of row ``r`` (sample, channel f, o0, o1), channels_first."""
    cdef Py_ssize_t F = g.cout, M = g.cout // g.cin, K1 = g.k[1], K2 = g.k[2], s2 = g.s[2]
    cdef Py_ssize_t o1 = r % g.outd[1], o0 = (r // g.outd[1]) % g.outd[0]
    cdef Py_ssize_t f = (r // (g.outd[0] * g.outd[1])) % F, b = r // (g.outd[0] * g.outd[1] * F)
    cdef Py_ssize_t q_hi = q_lo + blk, q, a, bb, cc, lo, hi, off
    cdef Py_ssize_t st0, st1, lo0, hi0, lo1, hi1
    cdef floating* orow = yp + b * g.yb + f * g.yc + o0 * g.y0 + o1 * g.y1
    cdef const floating* xrow
    cdef floating wv, b0 = bp[f] if use_bias else 0
    if q_hi > g.outd[2]:
        q_hi = g.outd[2]
    for q in range(q_lo, q_hi):
        orow[q] = b0
    window_taps(o0, g.s[0], g.pad[0], g.dil[0], g.k[0], g.ind[0], &st0, &lo0, &hi0)
    window_taps(o1, g.s[1], g.pad[1], g.dil[1], K1, g.ind[1], &st1, &lo1, &hi1)
    for a in range(lo0, hi0):
        for bb in range(lo1, hi1):
            for cc in range(K2):
                tap_output_range(cc, s2, g.pad[2], g.dil[2], g.ind[2], g.outd[2], &lo, &hi)
                if lo < q_lo:
                    lo = q_lo
                if hi > q_hi:
                    hi = q_hi
                if hi <= lo:
                    continue
                wv = wp[((a * K1 + bb) * K2 + cc) * F + f]
                # input index of output q: q * s2 + off (in range for lo <= q < hi)
                off = cc * g.dil[2] - g.pad[2]
                xrow = (xp + b * g.xb + (f // M) * g.xc + (st0 + a * g.dil[0]) * g.x0
                        + (st1 + bb * g.dil[1]) * g.x1 + lo * s2 + off)
                if s2 == 1:
                    for q in range(hi - lo):
                        orow[lo + q] = orow[lo + q] + xrow[q] * wv
                else:
                    for q in range(hi - lo):
                        orow[lo + q] = orow[lo + q] + xrow[q * s2] * wv
    if act != 0:
        act_inplace(orow + q_lo, q_hi - q_lo, act)


def separable_forward(const floating[::1] x, const floating[::1] dw, const floating[::1] pw,
                      const floating[::1] bias, floating[::1] mid, floating[::1] out,
                      dict geometry, bint use_bias, int act, Py_ssize_t blk, int n_threads):
    """Separable convolution, channels_last, fused per block: each task computes the depthwise
    outputs of ``blk`` pixels of one output row into ``mid`` (as :class:`DepthwiseKernel`, no
    bias, no activation) and, while they are still in cache, their pointwise GEMM
    ``out[pixels] = act(mid[pixels] @ pw + bias)``. One parallel region, and the intermediate
    never makes a round trip through memory.

    ``geometry``: the depthwise geometry (``groups == in_channels``, ``out_channels ==
    in_channels * mult``; channels_last).
    dw: ``(taps, cin * mult)`` flattened; pw: ``(cin * mult, filters)``; mid: caller-allocated
    scratch of ``n * out_pixels * cin * mult``; out: ``n * out_pixels * filters``; bias:
    ``(filters,)``. The caller holds BLAS to one thread when ``n_threads > 1``.
    """
    cdef Geom g
    _load_depthwise(geometry, &g, x.shape[0], mid.shape[0], dw.shape[0], act, "separable_forward")
    if g.cf:
        raise ValueError("separable_forward: channels_last only")
    cdef Py_ssize_t P = g.outd[0] * g.outd[1] * g.outd[2]
    cdef Py_ssize_t Cm = g.cout
    if Cm == 0 or pw.shape[0] % Cm or pw.shape[0] == 0:
        raise ValueError(f"separable_forward: pointwise kernel has {pw.shape[0]} values, not a multiple of {Cm}")
    cdef Py_ssize_t F = pw.shape[0] // Cm
    if out.shape[0] != g.n * P * F:
        raise ValueError(f"separable_forward: output has {out.shape[0]} values, geometry needs {g.n * P * F}")
    if use_bias and bias.shape[0] != F:
        raise ValueError(f"separable_forward: bias has {bias.shape[0]} values for {F} filters")
    if blk < 1:
        raise ValueError(f"separable_forward: blk must be >= 1, got {blk}")
    if g.n == 0 or P == 0:
        return
    cdef const floating* xp = &x[0]
    cdef const floating* dwp = &dw[0]
    cdef const floating* pwp = &pw[0]
    cdef const floating* bp = &bias[0] if bias.shape[0] > 0 else NULL
    cdef floating* mp = &mid[0]
    cdef floating* yp = &out[0]
    cdef Py_ssize_t nblk = (g.outd[2] + blk - 1) // blk
    cdef Py_ssize_t rows = g.n * g.outd[0] * g.outd[1]
    cdef Py_ssize_t task, r, q_lo, q_hi, pix
    with nogil:
        for task in prange(rows * nblk, num_threads=n_threads, schedule="dynamic"):
            r = task // nblk
            q_lo = (task % nblk) * blk
            q_hi = q_lo + blk
            if q_hi > g.outd[2]:
                q_hi = g.outd[2]
            _dw_block_cl(xp, dwp, NULL, mp, &g, r, q_lo, blk, False, 0)
            pix = r * g.outd[2] + q_lo
            gemm(False, False, <int>(q_hi - q_lo), <int>F, <int>Cm, <floating>1.0, mp + pix * Cm, <int>Cm,
                 pwp, <int>F, <floating>0.0, yp + pix * F, <int>F)
            epilogue(yp + pix * F, q_hi - q_lo, F, F, bp, False, use_bias, act)


cdef struct Block:
    # the checked arrays and sizes of an inverted residual block (InvertedResidualKernel); the
    # pointers are float* or double* by the kernel's dtype; NULL biases: none
    Py_ssize_t cin, cout, cr, ring_w, samples
    const void* pe      # packed (cin, ce) expansion, or NULL: none (cin == ce)
    const void* be
    const void* wd      # depthwise kernel (kh * kw, ce)
    const void* bd
    const void* s1      # squeeze-and-excitation: packed (ce, cr) reduction, or NULL: none
    const void* sb1
    const void* s2      # packed (cr, ce) expansion of the gate
    const void* sb2
    const void* pp      # packed (ce, cout) projection
    const void* bq
    int ae, ad, sa1, sa2, aq
    bint residual


cdef void _irb_rows(const floating* xp, floating* yp, Geom* g, Block* k, Py_ssize_t r_lo, Py_ssize_t r_hi,
                    floating* ring, Py_ssize_t* tags) noexcept nogil:
    """Output rows ``r_lo <= r < r_hi`` (sample, row) of a block with an expansion and no
    squeeze-and-excitation, with one thread's ring of ``kh`` expanded rows (``ring``, zeroed
    here, then ``Wo * ce`` for the depthwise row) and its tags (which input row each slot holds)."""
    cdef Py_ssize_t H = g.ind[1], W = g.ind[2], Ho = g.outd[1], Wo = g.outd[2], ce = g.cin
    cdef Py_ssize_t kh = g.k[1], kw = g.k[2], sh = g.s[1], sw = g.s[2], pt = g.pad[1], pl = g.pad[2]
    cdef Py_ssize_t cin = k.cin, cout = k.cout, ring_row = k.ring_w * ce, r, n, oh, a, ih, slot, key
    cdef int tile_act = k.ad if k.ad <= ACT_RELU6 else 0
    cdef floating* dwrow = ring + kh * ring_row
    cdef const floating* wd = <const floating*>k.wd
    cdef const floating* xr[_MAX_TAP_ROWS]
    cdef const floating* wr[_MAX_TAP_ROWS]
    cdef int nr
    # the ring's rows: expanded input rows with their zero borders (the padding; never written)
    memset(ring, 0, kh * ring_row * sizeof(floating))
    for slot in range(kh):
        tags[slot] = -1
    for r in range(r_lo, r_hi):
        n = r // Ho
        oh = r % Ho
        nr = 0
        for a in range(kh):
            ih = oh * sh - pt + a
            if ih < 0 or ih >= H:
                continue
            key = n * H + ih
            slot = ih % kh
            if tags[slot] != key:
                # expand input row ih (a 1x1 GEMM, bias and activation in its tiles)
                packed_gemm(W, cin, xp + key * W * cin, cin, <const floating*>k.pe, 0, strips(ce, sizeof(floating)),
                            ce, ring + slot * ring_row + pl * ce, ce, <const floating*>k.be, k.ae,
                            <const floating*>NULL)
                tags[slot] = key
            xr[nr] = ring + slot * ring_row
            wr[nr] = wd + a * kw * ce
            nr = nr + 1
        # the depthwise row over the ring (zero borders: every tap of every output in range)
        _dw_window(dwrow, xr, wr, nr, 0, 0, sw * ce, ce, kw, Wo, ce, <const floating*>k.bd, tile_act)
        if k.ad > ACT_RELU6:
            act_inplace(dwrow, Wo * ce, k.ad)
        # project (a 1x1 GEMM), the block's input added in its tiles
        packed_gemm(Wo, ce, dwrow, ce, <const floating*>k.pp, 0, strips(cout, sizeof(floating)), cout,
                    yp + r * Wo * cout, cout, <const floating*>k.bq, k.aq,
                    xp + r * Wo * cin if k.residual else <const floating*>NULL)


cdef inline void _column_means(const floating* d, Py_ssize_t P, Py_ssize_t ce, Py_ssize_t c0, Py_ssize_t c1,
                               floating inv, floating* pooled) noexcept nogil:
    """pooled[c] = mean over the ``P`` pixels of channel c of ``d``, for ``c0 <= c < c1``."""
    cdef Py_ssize_t q, c
    for c in range(c0, c1):
        pooled[c] = 0
    for q in range(P):
        for c in range(c0, c1):
            pooled[c] = pooled[c] + d[q * ce + c]
    for c in range(c0, c1):
        pooled[c] = pooled[c] * inv


cdef inline void _scale_rows(floating* d, Py_ssize_t npix, Py_ssize_t ce, const floating* gate) noexcept nogil:
    """d[q, c] *= gate[c] for ``npix`` pixels of ``ce`` channels."""
    cdef Py_ssize_t q, c
    for q in range(npix):
        for c in range(ce):
            d[q * ce + c] = d[q * ce + c] * gate[c]


cdef inline void _gate(Block* k, Py_ssize_t ce, const floating* pooled, floating* hidden,
                       floating* gate) noexcept nogil:
    """The squeeze-and-excitation gate of one sample from its pooled depthwise output: the
    reduction product and activation, then the product back to ``ce`` channels and activation."""
    packed_gemm(1, ce, pooled, ce, <const floating*>k.s1, 0, strips(k.cr, sizeof(floating)), k.cr, hidden, k.cr,
                <const floating*>k.sb1, k.sa1, <const floating*>NULL)
    packed_gemm(1, k.cr, hidden, k.cr, <const floating*>k.s2, 0, strips(ce, sizeof(floating)), ce, gate, ce,
                <const floating*>k.sb2, k.sa2, <const floating*>NULL)


cdef void _irb_samples(const floating* xp, floating* yp, Geom* g, Block* k, Py_ssize_t s0, Py_ssize_t s1,
                       floating* scratch) noexcept nogil:
    """Samples ``s0 <= s < s1`` of the block, whole: the expansion of all their pixels as one
    GEMM into ``scratch`` (none: the depthwise reads the input), the depthwise rows after it,
    the squeeze-and-excitation gate of each sample (its mean over the pixels through the two
    products) scaling its depthwise output, the projection of all their outputs as one GEMM
    (residual in its tiles). The intermediates stay in cache."""
    cdef Geom band = g[0]
    cdef Py_ssize_t H = g.ind[1], W = g.ind[2], Ho = g.outd[1], Wo = g.outd[2], ce = g.cin
    cdef Py_ssize_t cin = k.cin, cout = k.cout, m = s1 - s0, r, j
    cdef const floating* e = xp + s0 * H * W * cin
    cdef floating* d = scratch + (m * H * W * ce if k.pe != NULL else 0)
    cdef floating* pooled = d + m * Ho * Wo * ce
    cdef floating* hidden = pooled + ce
    cdef floating* gate = hidden + k.cr
    cdef floating* dj
    cdef floating inv = <floating>1 / <floating>(Ho * Wo)
    band.n = m
    if k.pe != NULL:
        packed_gemm(m * H * W, cin, e, cin, <const floating*>k.pe, 0, strips(ce, sizeof(floating)), ce, scratch, ce,
                    <const floating*>k.be, k.ae, <const floating*>NULL)
        e = scratch
    for r in range(m * Ho):
        _dw_block_cl(e, <const floating*>k.wd, <const floating*>k.bd, d, &band, r, 0, Wo, k.bd != NULL, k.ad)
    if k.s1 != NULL:
        for j in range(m):
            dj = d + j * Ho * Wo * ce
            _column_means(dj, Ho * Wo, ce, 0, ce, inv, pooled)
            _gate(k, ce, pooled, hidden, gate)
            _scale_rows(dj, Ho * Wo, ce, gate)
    packed_gemm(m * Ho * Wo, ce, d, ce, <const floating*>k.pp, 0, strips(cout, sizeof(floating)), cout,
                yp + s0 * Ho * Wo * cout, cout, <const floating*>k.bq, k.aq,
                xp + s0 * H * W * cin if k.residual else <const floating*>NULL)


cdef inline void _gemm_part(Py_ssize_t m, Py_ssize_t kk, const floating* a, const floating* bp, Py_ssize_t n,
                            floating* c, const floating* bias, int act, const floating* res, Py_ssize_t part,
                            Py_ssize_t parts) noexcept nogil:
    """Part ``part`` of ``parts`` of ``c = act(a @ B + bias [+ res])`` (``m`` rows, B packed
    ``kk x n``): a run of rows when there are enough for every part's tiles, else a run of
    strips (a few rows stream the whole kernel: each part takes its own columns)."""
    cdef Py_ssize_t ns = strips(n, sizeof(floating)), r0, r1
    if m >= parts * _SPLIT_ROWS:
        r0 = m * part // parts
        r1 = m * (part + 1) // parts
        packed_gemm(r1 - r0, kk, a + r0 * kk, kk, bp, 0, ns, n, c + r0 * n, n, bias, act,
                    res + r0 * n if res != NULL else <const floating*>NULL)
    else:
        r0 = ns * part // parts
        r1 = ns * (part + 1) // parts
        if r1 > r0:
            packed_gemm(m, kk, a, kk, bp, r0, r1, n, c, n, bias, act, res)


cdef int _irb_split(const floating* xp, floating* yp, Geom* gp, Block* k, int nt) noexcept nogil:
    """The block sample by sample, each sample's work shared by the ``nt`` threads phase by
    phase (batch 1): the expansion's rows (or strips), the depthwise rows, the gate's column
    sums and products, the scaling, the projection's rows (or strips); every phase ends at the
    parallel loop's barrier. Returns 1 when the scratch could not be allocated."""
    cdef Py_ssize_t H = gp.ind[1], W = gp.ind[2], Ho = gp.outd[1], Wo = gp.outd[2], ce = gp.cin
    cdef Py_ssize_t cin = k.cin, cout = k.cout, P = Ho * Wo, nb = (ce + 63) // 64
    cdef Py_ssize_t n, t, r
    cdef Geom band = gp[0]
    cdef floating* scratch = <floating*>malloc(((H * W if k.pe != NULL else 0) + P + 2) * ce * sizeof(floating)
                                              + k.cr * sizeof(floating))
    cdef floating* e
    cdef floating* d
    cdef floating* pooled
    cdef floating* hidden
    cdef floating* gate
    cdef const floating* xs
    cdef floating inv = <floating>1 / <floating>P
    if scratch == NULL:
        return 1
    d = scratch + (H * W * ce if k.pe != NULL else 0)
    pooled = d + P * ce
    gate = pooled + ce
    hidden = gate + ce
    band.n = 1
    with parallel(num_threads=nt):
        for n in range(gp.n):
            xs = xp + n * H * W * cin
            e = scratch if k.pe != NULL else <floating*>xs
            if k.pe != NULL:
                for t in prange(nt, schedule="static"):
                    _gemm_part(H * W, cin, xs, <const floating*>k.pe, ce, scratch, <const floating*>k.be, k.ae,
                               <const floating*>NULL, t, nt)
            for r in prange(Ho, schedule="static"):
                _dw_block_cl(e, <const floating*>k.wd, <const floating*>k.bd, d, &band, r, 0, Wo, k.bd != NULL, k.ad)
            if k.s1 != NULL:
                for t in prange(nb, schedule="static"):
                    _column_means(d, P, ce, t * 64, min(ce, t * 64 + 64), inv, pooled)
                for t in prange(1, schedule="static"):
                    _gate(k, ce, pooled, hidden, gate)
                for r in prange(Ho, schedule="static"):
                    _scale_rows(d + r * Wo * ce, Wo, ce, gate)
            for t in prange(nt, schedule="static"):
                _gemm_part(P, ce, d, <const floating*>k.pp, cout, yp + n * P * cout, <const floating*>k.bq, k.aq,
                           xs if k.residual else <const floating*>NULL, t, nt)
    free(scratch)
    return 0


cdef int _irb_run(const floating* xp, floating* yp, Geom* gp, Block* k, int n_threads) noexcept nogil:
    """InvertedResidualKernel's call on checked pointers: with ``k.samples`` 0, each thread one
    contiguous run of output rows; else tasks of that many whole samples. Returns the number
    of tasks that found no scratch memory (0 on success)."""
    cdef Py_ssize_t R = gp.n * gp.outd[1], t, samples = k.samples, ce = gp.cin
    cdef Py_ssize_t kh = gp.k[1], scratch = kh * k.ring_w * ce + gp.outd[2] * ce
    cdef Py_ssize_t tasks = (gp.n + samples - 1) // samples if samples > 0 else R
    cdef int nt = <int>(n_threads if n_threads < tasks else tasks)
    cdef int failed = 0
    cdef floating* ring
    cdef Py_ssize_t* tags
    if R == 0:
        return 0
    if samples < 0:
        return _irb_split(xp, yp, gp, k, n_threads)
    if samples > 0:
        scratch = (samples * ((gp.ind[1] * gp.ind[2] if k.pe != NULL else 0) + gp.outd[1] * gp.outd[2]) * ce
                   + 2 * ce + k.cr)
    with parallel(num_threads=nt):
        ring = <floating*>malloc(scratch * sizeof(floating))
        tags = <Py_ssize_t*>malloc(kh * sizeof(Py_ssize_t))
        try:
            # row runs: one per thread; sample runs: ``samples`` whole samples each
            for t in prange(tasks if samples > 0 else nt, schedule="static"):
                if ring == NULL or tags == NULL:
                    failed += 1
                    continue
                if samples > 0:
                    _irb_samples(xp, yp, gp, k, t * samples, min(gp.n, (t + 1) * samples), ring)
                else:
                    _irb_rows(xp, yp, gp, k, R * t // nt, R * (t + 1) // nt, ring, tags)
        finally:
            free(ring)
            free(tags)
    return failed


cdef class InvertedResidualKernel:
    """MobileNet's inverted residual block in one pass, prepared: a 1x1 expansion (``cin`` ->
    ``ce`` channels, bias and activation; or none, ``cin == ce``), a depthwise convolution
    (multiplier 1, explicit padding, any stride; bias and activation), optionally a
    squeeze-and-excitation (EfficientNet, MobileNetV3: the depthwise output's mean over the
    pixels -> a product to ``cr`` channels and activation -> a product back to ``ce`` and
    activation, the gate scaling the depthwise output) and a 1x1 projection (``ce`` -> ``cout``,
    bias and activation, plus the block's input when ``residual``), channels_last. The
    expanded and depthwise tensors are never made whole.

    With ``samples`` 0 (an expansion, no squeeze-and-excitation), each thread takes a
    contiguous run of output rows, keeps the ``kh`` expanded input rows its window needs in a
    ring (each expanded once per run; zero borders are the padding), and sends each depthwise
    row straight through the projection while it is in cache. With ``samples`` > 0 (narrow
    rows, where a row's GEMMs would have too few rows, and any block with a
    squeeze-and-excitation, which needs a sample's whole depthwise output), tasks are runs of
    that many whole samples: each expands all their pixels as one GEMM into a scratch that
    stays in cache, runs the depthwise rows, gates them, and projects all their outputs as one
    GEMM. With ``samples`` -1 (batch 1), the samples go one after the other, each shared by
    all threads phase by phase: the expansion's rows (or its columns, on few rows), the
    depthwise rows, the gate, the projection's rows (or columns).

    ``InvertedResidualKernel(expand, depthwise, geometry, squeeze, project, cout, residual,
    n_threads, samples=0)``: ``expand`` is ``(packed (cin, ce), bias, act)`` or None;
    ``depthwise`` ``(kernel (kh * kw * ce,), bias, act)``; ``geometry`` the depthwise
    convolution's (a ConvGeometry with ``in_channels == out_channels == groups == ce``, rank 2
    embedded as ``(1, H, W)``, dilation 1); ``squeeze`` ``((packed (ce, cr), bias, act),
    (packed (cr, ce), bias, act))`` or None; ``project`` ``(packed (ce, cout), bias, act)``.
    Packed kernels are ``klayers._ext.conv.pack_kernel``'s; a bias may be empty (none);
    activations are codes. ``residual`` needs stride 1, equal sizes and ``cin == cout``.
    ``kernel(x, out)``: ``x`` ``(N, H, W, cin)`` and ``out`` ``(N, Ho, Wo, cout)``, flat or
    shaped, C-contiguous, the prepared dtype.
    """
    cdef Geom g
    cdef Block k
    cdef object arrays
    cdef int typenum, n_threads
    cdef Py_ssize_t x_size, out_size

    def __init__(self, expand, depthwise, dict geometry, squeeze, project, Py_ssize_t cout, bint residual,
                 int n_threads, Py_ssize_t samples=0):
        where = "InvertedResidualKernel"
        wd, bd, ad = depthwise
        self.typenum = float_type(getattr(wd, "dtype", None), where)
        cdef Py_ssize_t wd_size = array_size(wd, where, "the depthwise kernel")
        _load_depthwise(geometry, &self.g, -1, -1, wd_size, ad, where)
        cdef Geom* g = &self.g
        if g.cf or g.cout != g.cin or g.k[0] != 1 or g.ind[0] != 1 or g.dil[1] != 1 or g.dil[2] != 1:
            raise ValueError(f"{where}: the depthwise geometry must be channels_last, rank 2 (as (1, H, W)), "
                             f"multiplier 1, dilation 1")
        if g.k[1] > _MAX_TAP_ROWS:
            raise ValueError(f"{where}: a {g.k[1]}x{g.k[2]} window is too large")
        if cout < 1 or cout > 2147483647:
            raise ValueError(f"{where}: cout must be in [1, 2147483647], got {cout}")
        if n_threads < 1:
            raise ValueError(f"{where}: n_threads must be >= 1, got {n_threads}")
        if samples < -1 or samples > 2147483647:
            raise ValueError(f"{where}: samples must be in [-1, 2147483647], got {samples}")
        cdef Py_ssize_t ce = g.cin
        keep = [wd]
        self.k.cin, self.k.cout, self.k.samples, self.k.residual = ce, cout, samples, residual
        self.k.wd = array_data(wd, self.typenum, wd_size, False, where, "the depthwise kernel")
        self.k.bd = self._bias(bd, ce, "depthwise", keep)
        self.k.ad = ad
        self.k.pe = NULL
        self.k.be = NULL
        self.k.ae = 0
        if expand is not None:
            pe, be, ae = expand
            self.k.cin = self._rows(pe, ce, "expansion")
            self.k.pe = self._packed(pe, self.k.cin, ce, "expansion", keep)
            self.k.be = self._bias(be, ce, "expansion", keep)
            check_act(ae, where)
            self.k.ae = ae
        self.k.s1 = self.k.sb1 = self.k.s2 = self.k.sb2 = NULL
        self.k.sa1 = self.k.sa2 = 0
        self.k.cr = 0
        if squeeze is not None:
            (p1, b1, a1), (p2, b2, a2) = squeeze
            # the reduced width: the rows of the gate's packed (cr, ce) matrix
            cr = self.k.cr = self._rows(p2, ce, "gate")
            self.k.s1 = self._packed(p1, ce, cr, "reduction", keep)
            self.k.sb1 = self._bias(b1, cr, "reduction", keep)
            self.k.s2 = self._packed(p2, cr, ce, "gate", keep)
            self.k.sb2 = self._bias(b2, ce, "gate", keep)
            check_act(a1, where)
            check_act(a2, where)
            self.k.sa1, self.k.sa2 = a1, a2
            if samples == 0:
                raise ValueError(f"{where}: a squeeze-and-excitation needs whole samples (samples other than 0)")
        if expand is None and samples == 0:
            raise ValueError(f"{where}: a block without an expansion needs whole samples (samples other than 0)")
        pp, bq, aq = project
        self.k.pp = self._packed(pp, ce, cout, "projection", keep)
        self.k.bq = self._bias(bq, cout, "projection", keep)
        check_act(aq, where)
        self.k.aq = aq
        if residual and (g.s[1] != 1 or g.s[2] != 1 or g.outd[1] != g.ind[1] or g.outd[2] != g.ind[2]
                         or self.k.cin != cout):
            raise ValueError(f"{where}: a residual needs stride 1, equal sizes and as many input as output channels")
        # padded columns the windows reach: the input, its padding before, whatever lies after
        self.k.ring_w = max((g.outd[2] - 1) * g.s[2] + g.k[2], g.pad[2] + g.ind[2])
        self.x_size = g.n * g.ind[1] * g.ind[2] * self.k.cin
        self.out_size = g.n * g.outd[1] * g.outd[2] * cout
        self.arrays = keep
        self.n_threads = n_threads

    cdef const void* _bias(self, b, Py_ssize_t channels, str name, list keep) except? NULL:
        cdef Py_ssize_t n = array_size(b, "InvertedResidualKernel", f"the {name} bias")
        if n not in (0, channels):
            raise ValueError(f"InvertedResidualKernel: the {name} bias has {n} values for {channels} channels")
        if n == 0:
            return NULL
        keep.append(b)
        return array_data(b, self.typenum, n, False, "InvertedResidualKernel", f"the {name} bias")

    cdef Py_ssize_t _rows(self, p, Py_ssize_t cols, str name) except -1:
        """The rows of a packed matrix of ``cols`` columns (whole strips each), from its length."""
        cdef Py_ssize_t itemsize = 4 if self.typenum == cnp.NPY_FLOAT else 8
        cdef Py_ssize_t per_row = KSK_STRIP_BYTES // itemsize * strips(cols, itemsize)
        cdef Py_ssize_t n = array_size(p, "InvertedResidualKernel", f"the packed {name}")
        if n == 0 or n % per_row:
            raise ValueError(f"InvertedResidualKernel: the packed {name} has {n} values, not a whole number of "
                             f"rows of {cols} packed columns")
        return n // per_row

    cdef const void* _packed(self, p, Py_ssize_t rows, Py_ssize_t cols, str name, list keep) except NULL:
        cdef Py_ssize_t itemsize = 4 if self.typenum == cnp.NPY_FLOAT else 8
        cdef Py_ssize_t n = array_size(p, "InvertedResidualKernel", f"the packed {name}")
        if n != packed_len(rows, cols, itemsize) or n == 0:
            raise ValueError(f"InvertedResidualKernel: the packed {name} has {n} values, not "
                             f"{packed_len(rows, cols, itemsize)} for {rows} -> {cols}")
        keep.append(p)
        return array_data(p, self.typenum, n, False, "InvertedResidualKernel", f"the packed {name}")

    def __call__(self, x, out):
        where = "InvertedResidualKernel"
        cdef const char* xp = array_data(x, self.typenum, self.x_size, False, where, "input")
        cdef char* yp = array_data(out, self.typenum, self.out_size, True, where, "output")
        cdef int failed
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                failed = _irb_run(<const float*>xp, <float*>yp, &self.g, &self.k, self.n_threads)
            else:
                failed = _irb_run(<const double*>xp, <double*>yp, &self.g, &self.k, self.n_threads)
        if failed:
            raise MemoryError(f"{where}: could not allocate its scratch")
