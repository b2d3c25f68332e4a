# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Convolution kernels: im2col + GEMM (grouped), a 1x1 fast path, direct depthwise loops, and
transposed convolution as GEMM + col2im. Rank 1-3 share one code path: spatial axes are embedded
in three (a rank-1 length L is ``(L, 1, 1)``, rank 2 ``(H, W, 1)``).

Level 2 of the kernel pattern (DESIGN.md): IN arrays are const flat views, the OUT array is
allocated by the caller (klayers.ops.conv); the geometry (a ``geo`` vector, see ``GEO_*``) is
checked here against the array sizes before the GIL is released, so a bad argument is a
ValueError, never a crash. Both data formats are read and written in place through element
strides: channels_first never pays a full transpose.

``geo`` layout (Py_ssize_t): ``[n, cin, cout, groups, channels_first, in0, in1, in2,
out0, out1, out2, k0, k1, k2, s0, s1, s2, d0, d1, d2, p0, p1, p2]`` where ``p`` is the
padding before each axis (for the transposed kernel: the padding of the equivalent forward conv).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memcpy

from _blas cimport gemm
from _windows cimport window_taps

ACT_LINEAR = 0
ACT_RELU = 1
ACT_RELU6 = 2
GEO_LEN = 23


cdef struct Geom:
    Py_ssize_t n, cin, cout, groups
    bint cf
    Py_ssize_t ind[3]
    Py_ssize_t outd[3]
    Py_ssize_t k[3]
    Py_ssize_t s[3]
    Py_ssize_t dil[3]
    Py_ssize_t pad[3]
    # element strides of x (input) and y (output): batch, channel, axis 0, 1, 2
    Py_ssize_t xb, xc, x0, x1, x2
    Py_ssize_t yb, yc, y0, y1, y2


cdef int _unpack(const Py_ssize_t[::1] geo, Geom* g, Py_ssize_t x_size, Py_ssize_t out_size,
                 Py_ssize_t w_size, Py_ssize_t w_expected, str where) except -1:
    cdef int i
    if geo.shape[0] != GEO_LEN:
        raise ValueError(f"{where}: geo must have {GEO_LEN} entries, got {geo.shape[0]}")
    g.n = geo[0]; g.cin = geo[1]; g.cout = geo[2]; g.groups = geo[3]; g.cf = geo[4] != 0
    for i in range(3):
        g.ind[i] = geo[5 + i]; g.outd[i] = geo[8 + i]; g.k[i] = geo[11 + i]
        g.s[i] = geo[14 + i]; g.dil[i] = geo[17 + i]; g.pad[i] = geo[20 + i]
        if g.ind[i] < 0 or g.outd[i] < 0 or g.k[i] < 1 or g.s[i] < 1 or g.dil[i] < 1 or g.pad[i] < 0:
            raise ValueError(f"{where}: bad geometry on axis {i}: in={g.ind[i]} out={g.outd[i]} "
                             f"kernel={g.k[i]} stride={g.s[i]} dilation={g.dil[i]} pad={g.pad[i]}")
    if g.n < 0 or g.cin < 1 or g.cout < 1 or g.groups < 1 or g.cin % g.groups or g.cout % g.groups:
        raise ValueError(f"{where}: bad channels n={g.n} cin={g.cin} cout={g.cout} groups={g.groups}")
    cdef Py_ssize_t pin = g.ind[0] * g.ind[1] * g.ind[2]
    cdef Py_ssize_t pout = g.outd[0] * g.outd[1] * g.outd[2]
    if x_size != g.n * g.cin * pin:
        raise ValueError(f"{where}: input has {x_size} values, geometry needs {g.n * g.cin * pin}")
    if out_size != g.n * g.cout * pout:
        raise ValueError(f"{where}: output has {out_size} values, geometry needs {g.n * g.cout * pout}")
    if w_size != w_expected:
        raise ValueError(f"{where}: kernel has {w_size} values, geometry needs {w_expected}")
    if g.cf:
        g.xb = g.cin * pin; g.xc = pin; g.x0 = g.ind[1] * g.ind[2]; g.x1 = g.ind[2]; g.x2 = 1
        g.yb = g.cout * pout; g.yc = pout; g.y0 = g.outd[1] * g.outd[2]; g.y1 = g.outd[2]; g.y2 = 1
    else:
        g.xb = g.cin * pin; g.xc = 1; g.x2 = g.cin; g.x1 = g.ind[2] * g.cin; g.x0 = g.ind[1] * g.x1
        g.yb = g.cout * pout; g.yc = 1; g.y2 = g.cout; g.y1 = g.outd[2] * g.cout; g.y0 = g.outd[1] * g.y1
    return 0


cdef inline floating _act(floating v, int act) noexcept nogil:
    if act == 1:
        return v if v > 0 else 0
    if act == 2:
        return 0 if v < 0 else (6 if v > 6 else v)
    return v


cdef inline void _epilogue(floating* c, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t ld,
                           const floating* bias, bint bias_per_row, bint use_bias, int act) noexcept nogil:
    """c[r * ld + j] = act(c + bias) on a rows x cols block; bias indexed by column (channels
    last) or by row (channels first)."""
    cdef Py_ssize_t r, j
    cdef floating* row
    cdef floating bv
    if not use_bias and act == 0:
        return
    for r in range(rows):
        row = c + r * ld
        if use_bias and bias_per_row:
            bv = bias[r]
            for j in range(cols):
                row[j] = _act(row[j] + bv, act)
        elif use_bias:
            for j in range(cols):
                row[j] = _act(row[j] + bias[j], act)
        else:
            for j in range(cols):
                row[j] = _act(row[j], act)


cdef void _im2col(const floating* x, Geom* g, Py_ssize_t b, Py_ssize_t p0, Py_ssize_t rows,
                  Py_ssize_t c0, Py_ssize_t cg, floating* col) noexcept nogil:
    """col[r, (k0, k1, k2), ci] = x[b, c0 + ci, tap position of output pixel p0 + r] (0 outside)."""
    cdef Py_ssize_t r, p, o0, o1, o2, st0, st1, st2, lo0, hi0, lo1, hi1, lo2, hi2
    cdef Py_ssize_t a, bb, cc, ci, i0, i1, i2
    cdef Py_ssize_t K0 = g.k[0], K1 = g.k[1], K2 = g.k[2]
    cdef Py_ssize_t blk2 = cg, blk1 = K2 * cg, blk0 = K1 * K2 * cg
    cdef const floating* src
    cdef const floating* base = x + b * g.xb + c0 * g.xc
    cdef floating* dst
    cdef Py_ssize_t xc = g.xc
    for r in range(rows):
        p = p0 + r
        o2 = p % g.outd[2]
        o1 = (p // g.outd[2]) % g.outd[1]
        o0 = p // (g.outd[2] * g.outd[1])
        window_taps(o0, g.s[0], g.pad[0], g.dil[0], K0, g.ind[0], &st0, &lo0, &hi0)
        window_taps(o1, g.s[1], g.pad[1], g.dil[1], K1, g.ind[1], &st1, &lo1, &hi1)
        window_taps(o2, g.s[2], g.pad[2], g.dil[2], K2, g.ind[2], &st2, &lo2, &hi2)
        dst = col + r * K0 * blk0
        for a in range(K0):
            if a < lo0 or a >= hi0:
                memset(dst, 0, blk0 * sizeof(floating))
                dst += blk0
                continue
            i0 = st0 + a * g.dil[0]
            for bb in range(K1):
                if bb < lo1 or bb >= hi1:
                    memset(dst, 0, blk1 * sizeof(floating))
                    dst += blk1
                    continue
                i1 = st1 + bb * g.dil[1]
                for cc in range(K2):
                    if cc < lo2 or cc >= hi2:
                        memset(dst, 0, blk2 * sizeof(floating))
                    else:
                        i2 = st2 + cc * g.dil[2]
                        src = base + i0 * g.x0 + i1 * g.x1 + i2 * g.x2
                        if xc == 1:
                            memcpy(dst, src, cg * sizeof(floating))
                        else:
                            for ci in range(cg):
                                dst[ci] = src[ci * xc]
                    dst += blk2


def conv_forward(const floating[::1] x, const floating[::1] w, const floating[::1] bias,
                 floating[::1] out, const Py_ssize_t[::1] geo, bint use_bias, int act,
                 Py_ssize_t chunk_rows, int n_threads):
    """out = act(conv(x, w) + bias), x and out flat in the layout ``geo`` says.

    w: the Keras kernel ``(k0, k1, k2, cin // groups, cout)`` flattened. bias: ``(cout,)``
    (may be empty when ``use_bias`` is 0). ``chunk_rows``: output pixels per im2col chunk
    (each chunk is one task of the OpenMP loop with a single-threaded GEMM per group; the
    caller holds BLAS to one thread when ``n_threads > 1``). The 1x1, stride-1, unpadded,
    ungrouped case skips im2col: each chunk's GEMM reads the input rows in place (channels_first:
    ``W^T @ x[b, :, chunk]``). It is threaded by the same OpenMP chunks rather than by BLAS:
    on the shared 2-core machine a 2-thread OpenBLAS GEMM of 784x256x64 took 8-18 ms against
    0.26 ms on one thread, while the OpenMP split stays near the one-thread time or better.
    """
    cdef Geom g
    cdef Py_ssize_t wexp = 0
    if geo.shape[0] == GEO_LEN and geo[3] > 0:
        wexp = geo[11] * geo[12] * geo[13] * (geo[1] // geo[3]) * geo[2]
    _unpack(geo, &g, x.shape[0], out.shape[0], w.shape[0], wexp, "conv_forward")
    if use_bias and bias.shape[0] != g.cout:
        raise ValueError(f"conv_forward: bias has {bias.shape[0]} values for {g.cout} filters")
    if chunk_rows < 1:
        raise ValueError(f"conv_forward: chunk_rows must be >= 1, got {chunk_rows}")
    cdef Py_ssize_t P = g.outd[0] * g.outd[1] * g.outd[2]
    if g.n == 0 or P == 0:
        return
    cdef Py_ssize_t T = g.k[0] * g.k[1] * g.k[2]
    cdef Py_ssize_t cg = g.cin // g.groups, fg = g.cout // g.groups, Kc = T * cg
    cdef Py_ssize_t F = g.cout, R = chunk_rows if chunk_rows < P else P
    cdef Py_ssize_t nc = (P + R - 1) // R, total = g.n * nc
    cdef Py_ssize_t ch, b, p0, rows, gi
    cdef const floating* xp = &x[0]
    cdef const floating* wp = &w[0]
    cdef const floating* bp = &bias[0] if bias.shape[0] > 0 else NULL
    cdef floating* yp = &out[0]
    cdef floating* col = NULL
    cdef int failed = 0
    cdef bint pointwise = (T == 1 and g.groups == 1 and g.s[0] == 1 and g.s[1] == 1 and g.s[2] == 1
                           and g.pad[0] == 0 and g.pad[1] == 0 and g.pad[2] == 0
                           and g.outd[0] == g.ind[0] and g.outd[1] == g.ind[1] and g.outd[2] == g.ind[2])
    with nogil, parallel(num_threads=n_threads):
        col = <floating*>malloc((1 if pointwise else R * Kc) * sizeof(floating))
        try:
            for ch in prange(total, schedule="dynamic"):
                if col == NULL:
                    failed += 1
                    continue
                b = ch // nc
                p0 = (ch % nc) * R
                rows = P - p0
                if rows > R:
                    rows = R
                if pointwise:
                    # 1x1: the input rows are the GEMM operand as they lie (no im2col)
                    if not g.cf:
                        gemm(False, False, <int>rows, <int>F, <int>g.cin, <floating>1.0, xp + (b * P + p0) * g.cin,
                             <int>g.cin, wp, <int>F, <floating>0.0, yp + (b * P + p0) * F, <int>F)
                    else:
                        gemm(True, False, <int>F, <int>rows, <int>g.cin, <floating>1.0, wp, <int>F,
                             xp + b * g.xb + p0, <int>P, <floating>0.0, yp + b * g.yb + p0, <int>P)
                for gi in range(0 if pointwise else g.groups):
                    _im2col(xp, &g, b, p0, rows, gi * cg, cg, col)
                    if not g.cf:
                        gemm(False, False, <int>rows, <int>fg, <int>Kc, <floating>1.0, col, <int>Kc,
                             wp + gi * fg, <int>F, <floating>0.0, yp + (b * P + p0) * F + gi * fg, <int>F)
                    else:
                        gemm(True, True, <int>fg, <int>rows, <int>Kc, <floating>1.0, wp + gi * fg, <int>F,
                             col, <int>Kc, <floating>0.0, yp + b * g.yb + gi * fg * P + p0, <int>P)
                # the chunk's output is still in cache: bias and activation now
                if not g.cf:
                    _epilogue(yp + (b * P + p0) * F, rows, F, F, bp, False, use_bias, act)
                else:
                    _epilogue(yp + b * g.yb + p0, F, rows, P, bp, True, use_bias, act)
        finally:
            free(col)
    if failed:
        raise MemoryError("conv_forward: could not allocate the im2col scratch")


def depthwise_forward(const floating[::1] x, const floating[::1] w, const floating[::1] bias,
                      floating[::1] out, const Py_ssize_t[::1] geo, bint use_bias, int act,
                      int n_threads):
    """Depthwise convolution by direct loops: out channel ``f = c * mult + m`` reads input
    channel ``c``. ``geo`` has ``groups == cin`` and ``cout == cin * mult``; w is the Keras
    kernel ``(k0, k1, k2, cin, mult)`` flattened, i.e. ``(taps, cout)``.

    channels_last: OpenMP over output rows, channels innermost (contiguous, vectorizable);
    channels_first: OpenMP over (sample, output channel) planes.
    """
    cdef Geom g
    cdef Py_ssize_t wexp = 0
    if geo.shape[0] == GEO_LEN:
        wexp = geo[11] * geo[12] * geo[13] * geo[2]
    _unpack(geo, &g, x.shape[0], out.shape[0], w.shape[0], wexp, "depthwise_forward")
    if g.groups != g.cin:
        raise ValueError(f"depthwise_forward: groups ({g.groups}) must equal cin ({g.cin})")
    if use_bias and bias.shape[0] != g.cout:
        raise ValueError(f"depthwise_forward: bias has {bias.shape[0]} values for {g.cout} channels")
    cdef Py_ssize_t P = g.outd[0] * g.outd[1] * g.outd[2]
    if g.n == 0 or P == 0:
        return
    cdef const floating* xp = &x[0]
    cdef const floating* wp = &w[0]
    cdef const floating* bp = &bias[0] if bias.shape[0] > 0 else NULL
    cdef floating* yp = &out[0]
    cdef Py_ssize_t task
    if not g.cf:
        with nogil:
            for task in prange(g.n * g.outd[0] * g.outd[1], num_threads=n_threads, schedule="static"):
                _dw_row_cl(xp, wp, bp, yp, &g, task, use_bias, act)
    else:
        with nogil:
            for task in prange(g.n * g.cout, num_threads=n_threads, schedule="static"):
                _dw_plane_cf(xp, wp, bp, yp, &g, task, use_bias, act)


cdef void _dw_row_cl(const floating* xp, const floating* wp, const floating* bp, floating* yp,
                     Geom* g, Py_ssize_t task, bint use_bias, int act) noexcept nogil:
    """One output row (sample, axis-0 index, axis-1 index) of a channels_last depthwise conv:
    per output pixel, the taps in range, channels innermost."""
    cdef Py_ssize_t C = g.cin, F = g.cout, M = g.cout // g.cin, K1 = g.k[1], K2 = g.k[2]
    cdef Py_ssize_t b = task // (g.outd[0] * g.outd[1])
    cdef Py_ssize_t o0 = (task // g.outd[1]) % g.outd[0], o1 = task % g.outd[1], o2, f, c, m, a, bb, cc
    cdef Py_ssize_t st0, st1, st2, lo0, hi0, lo1, hi1, lo2, hi2
    cdef floating* o
    cdef const floating* xs
    cdef const floating* wt
    cdef floating xv
    window_taps(o0, g.s[0], g.pad[0], g.dil[0], g.k[0], g.ind[0], &st0, &lo0, &hi0)
    window_taps(o1, g.s[1], g.pad[1], g.dil[1], K1, g.ind[1], &st1, &lo1, &hi1)
    for o2 in range(g.outd[2]):
        o = yp + b * g.yb + o0 * g.y0 + o1 * g.y1 + o2 * g.y2
        if use_bias:
            for f in range(F):
                o[f] = bp[f]
        else:
            for f in range(F):
                o[f] = 0
        window_taps(o2, g.s[2], g.pad[2], g.dil[2], K2, g.ind[2], &st2, &lo2, &hi2)
        for a in range(lo0, hi0):
            for bb in range(lo1, hi1):
                for cc in range(lo2, hi2):
                    xs = (xp + b * g.xb + (st0 + a * g.dil[0]) * g.x0 + (st1 + bb * g.dil[1]) * g.x1
                          + (st2 + cc * g.dil[2]) * g.x2)
                    wt = wp + ((a * K1 + bb) * K2 + cc) * F
                    if M == 1:
                        for c in range(C):
                            o[c] += xs[c] * wt[c]
                    else:
                        for c in range(C):
                            xv = xs[c]
                            for m in range(M):
                                o[c * M + m] += xv * wt[c * M + m]
        if act != 0:
            for f in range(F):
                o[f] = _act(o[f], act)


cdef void _dw_plane_cf(const floating* xp, const floating* wp, const floating* bp, floating* yp,
                       Geom* g, Py_ssize_t task, bint use_bias, int act) noexcept nogil:
    """One (sample, output channel) plane of a channels_first depthwise conv."""
    cdef Py_ssize_t F = g.cout, M = g.cout // g.cin, K1 = g.k[1], K2 = g.k[2]
    cdef Py_ssize_t b = task // F, f = task % F
    cdef Py_ssize_t plane_in = g.ind[0] * g.ind[1] * g.ind[2], P = g.outd[0] * g.outd[1] * g.outd[2]
    cdef const floating* xs = xp + b * g.xb + (f // M) * plane_in
    cdef floating* o = yp + b * g.yb + f * P
    cdef Py_ssize_t o0, o1, o2, a, bb, cc, st0, st1, st2, lo0, hi0, lo1, hi1, lo2, hi2
    cdef floating acc
    for o0 in range(g.outd[0]):
        window_taps(o0, g.s[0], g.pad[0], g.dil[0], g.k[0], g.ind[0], &st0, &lo0, &hi0)
        for o1 in range(g.outd[1]):
            window_taps(o1, g.s[1], g.pad[1], g.dil[1], K1, g.ind[1], &st1, &lo1, &hi1)
            for o2 in range(g.outd[2]):
                window_taps(o2, g.s[2], g.pad[2], g.dil[2], K2, g.ind[2], &st2, &lo2, &hi2)
                acc = bp[f] if use_bias else 0
                for a in range(lo0, hi0):
                    for bb in range(lo1, hi1):
                        for cc in range(lo2, hi2):
                            acc = acc + (xs[(st0 + a * g.dil[0]) * g.x0 + (st1 + bb * g.dil[1]) * g.x1 + st2 + cc * g.dil[2]]
                                         * wp[((a * K1 + bb) * K2 + cc) * F + f])
                o[(o0 * g.outd[1] + o1) * g.outd[2] + o2] = _act(acc, act)


def conv_transpose_forward(const floating[::1] x, const floating[::1] w, const floating[::1] bias,
                           floating[::1] out, const Py_ssize_t[::1] geo, bint use_bias, int act,
                           Py_ssize_t block, int n_threads):
    """Transposed convolution as GEMM + col2im (scatter-add):
    ``out[o] = sum over input i and tap t with o = i*s - p + t*d of x[i] @ W[t]^T``.

    w: the Keras kernel ``(k0, k1, k2, cout, cin)`` flattened, i.e. ``(taps * cout, cin)``.
    The OpenMP tasks are (sample, block of ``block`` output indices on axis 0): each computes the
    GEMM for the input rows that reach its block and scatters only into its own block, so no two
    threads write the same output (the few input rows at block edges are computed twice). The
    caller holds BLAS to one thread when ``n_threads > 1``.
    """
    cdef Geom g
    cdef Py_ssize_t wexp = 0
    if geo.shape[0] == GEO_LEN:
        wexp = geo[11] * geo[12] * geo[13] * geo[2] * geo[1]
    _unpack(geo, &g, x.shape[0], out.shape[0], w.shape[0], wexp, "conv_transpose_forward")
    if g.groups != 1:
        raise ValueError("conv_transpose_forward: groups must be 1")
    if use_bias and bias.shape[0] != g.cout:
        raise ValueError(f"conv_transpose_forward: bias has {bias.shape[0]} values for {g.cout} filters")
    if block < 1:
        raise ValueError(f"conv_transpose_forward: block must be >= 1, got {block}")
    cdef Py_ssize_t Pout = g.outd[0] * g.outd[1] * g.outd[2]
    if g.n == 0 or Pout == 0:
        return
    cdef Py_ssize_t C = g.cin, F = g.cout, K0 = g.k[0], K1 = g.k[1], K2 = g.k[2]
    cdef Py_ssize_t TF = K0 * K1 * K2 * F
    cdef Py_ssize_t pin_plane = g.ind[1] * g.ind[2], pout_plane = g.outd[1] * g.outd[2]
    cdef Py_ssize_t Pin = g.ind[0] * pin_plane
    cdef Py_ssize_t nblk = (g.outd[0] + block - 1) // block, total = g.n * nblk
    cdef Py_ssize_t max_in = (block - 1 + (K0 - 1) * g.dil[0]) // g.s[0] + 2
    if max_in > g.ind[0]:
        max_in = g.ind[0]
    cdef const floating* xp = &x[0] if x.shape[0] > 0 else NULL
    cdef const floating* wp = &w[0]
    cdef const floating* bp = &bias[0] if bias.shape[0] > 0 else NULL
    cdef floating* yp = &out[0]
    cdef floating* col = NULL
    cdef floating* dst
    cdef const floating* src
    cdef int failed = 0
    cdef Py_ssize_t task, b, o_lo, o_hi, i_lo, i_hi, num, rows, r, i0, i1, i2, a, bb, cc, q0, q1, q2, f
    with nogil, parallel(num_threads=n_threads):
        col = <floating*>malloc((max_in * pin_plane * TF + 1) * sizeof(floating))
        try:
            for task in prange(total, schedule="dynamic"):
                if col == NULL:
                    failed += 1
                    continue
                b = task // nblk
                o_lo = (task % nblk) * block
                o_hi = o_lo + block
                if o_hi > g.outd[0]:
                    o_hi = g.outd[0]
                # input rows i with i*s - p + a*d in [o_lo, o_hi) for some tap a
                num = o_lo + g.pad[0] - (K0 - 1) * g.dil[0]
                if num <= 0:
                    i_lo = 0
                else:
                    i_lo = (num + g.s[0] - 1) // g.s[0]
                i_hi = (o_hi - 1 + g.pad[0]) // g.s[0] + 1
                if i_hi > g.ind[0]:
                    i_hi = g.ind[0]
                # the block starts from the bias (or zero)
                if not g.cf:
                    dst = yp + b * g.yb + o_lo * g.y0
                    for r in range((o_hi - o_lo) * pout_plane):
                        for f in range(F):
                            dst[r * F + f] = bp[f] if use_bias else 0
                else:
                    for f in range(F):
                        dst = yp + b * g.yb + f * Pout + o_lo * pout_plane
                        for r in range((o_hi - o_lo) * pout_plane):
                            dst[r] = bp[f] if use_bias else 0
                if i_hi > i_lo:
                    rows = (i_hi - i_lo) * pin_plane
                    if not g.cf:
                        gemm(False, True, <int>rows, <int>TF, <int>C, <floating>1.0,
                             xp + b * g.xb + i_lo * pin_plane * C, <int>C, wp, <int>C,
                             <floating>0.0, col, <int>TF)
                    else:
                        gemm(True, True, <int>rows, <int>TF, <int>C, <floating>1.0,
                             xp + b * g.xb + i_lo * pin_plane, <int>Pin, wp, <int>C,
                             <floating>0.0, col, <int>TF)
                    for r in range(rows):
                        i0 = i_lo + r // pin_plane
                        i1 = (r // g.ind[2]) % g.ind[1]
                        i2 = r % g.ind[2]
                        for a in range(K0):
                            q0 = i0 * g.s[0] - g.pad[0] + a * g.dil[0]
                            if q0 < o_lo or q0 >= o_hi:
                                continue
                            for bb in range(K1):
                                q1 = i1 * g.s[1] - g.pad[1] + bb * g.dil[1]
                                if q1 < 0 or q1 >= g.outd[1]:
                                    continue
                                for cc in range(K2):
                                    q2 = i2 * g.s[2] - g.pad[2] + cc * g.dil[2]
                                    if q2 < 0 or q2 >= g.outd[2]:
                                        continue
                                    src = col + r * TF + ((a * K1 + bb) * K2 + cc) * F
                                    if not g.cf:
                                        dst = yp + b * g.yb + q0 * g.y0 + q1 * g.y1 + q2 * F
                                        for f in range(F):
                                            dst[f] = dst[f] + src[f]
                                    else:
                                        dst = yp + b * g.yb + q0 * pout_plane + q1 * g.outd[2] + q2
                                        for f in range(F):
                                            dst[f * Pout] = dst[f * Pout] + src[f]
                if act != 0:
                    if not g.cf:
                        dst = yp + b * g.yb + o_lo * g.y0
                        _epilogue(dst, 1, (o_hi - o_lo) * pout_plane * F, 0, bp, False, False, act)
                    else:
                        for f in range(F):
                            dst = yp + b * g.yb + f * Pout + o_lo * pout_plane
                            _epilogue(dst, 1, (o_hi - o_lo) * pout_plane, 0, bp, False, False, act)
        finally:
            free(col)
    if failed:
        raise MemoryError("conv_transpose_forward: could not allocate the GEMM scratch")
