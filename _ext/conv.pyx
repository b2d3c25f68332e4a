# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Forward convolution kernels (rank 1-3, groups): implicit GEMM (one GEMM per kernel tap and
output-row segment, reading the input in place), im2col + GEMM (grouped; what the implicit
kernel does not take), a 1x1 fast path, and with a packed kernel the packed GEMM reading each
window that lies inside the input in place (a table of the window's offsets instead of an
im2col copy; border windows gathered through im2col). Depthwise and separable convolutions are in
``depthwise.pyx``, transposed ones in ``conv_transpose.pyx``.

Rank 1-3 share one code path: spatial axes are embedded in three; the ops embed a rank-1 length L
as ``(1, 1, L)`` and rank 2 as ``(1, H, W)`` so that the kernels that sweep whole rows of the last
axis get long rows. Any embedding is valid input: the kernel's flat layout ``(taps, ...)`` is the
same.

Level 2 of the kernel pattern (DESIGN.md): IN arrays are const flat views, the OUT array is
allocated by the caller (klayers.ops.conv); the geometry is a named ConvGeometry
(``_conv_geometry.pxd``) checked against the array sizes before the GIL is released, so a bad
argument is a ValueError, never a crash. Both data formats are read and written in place
through element strides: channels_first never pays a full transpose. The bias and activation
are the shared epilogue (``_epilogue.pxd``; activation codes of ``_act.pxd``).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memcpy

cimport numpy as cnp

from _act cimport activation_codes, check_act
from _blas cimport gemm
from _conv_geometry cimport Geom, check_bias_size, check_kernel_size, input_size, load_geometry, output_size
from _epilogue cimport epilogue
from _skinny cimport (KSK_MAX_ROWS, KSK_PACKED_MAX_ROWS, KSK_STRIP_BYTES, ksk_gemm_double, ksk_gemm_float,
                      ksk_pack_double, ksk_pack_float, packed_gemm, packed_len, select_gemm_isa, strips)
from _ndarray cimport array_data, array_size, float_type
from _windows cimport tap_output_range, window_taps

cnp.import_array()

#: the activation codes (name -> code) of every kernel module (_act.pxd)
ACTIVATIONS = activation_codes()

#: GEMMs of at most this many rows run through the few-rows kernel (skinny_gemm.h), not BLAS
SKINNY_ROWS = KSK_MAX_ROWS
#: with a packed kernel and at most this many rows in all, one row chunk whose channels the
#: threads split (klayers.ops.conv._im2col_tiles)
PACKED_ROWS = KSK_PACKED_MAX_ROWS
#: bytes of columns per strip of a packed kernel (``pack_kernel``)
STRIP_BYTES = KSK_STRIP_BYTES
#: with a packed kernel (channels_last, one group), outputs whose window lies inside the input
#: are computed by the packed GEMM reading the window in place (no im2col) from this many
#: outputs per row on: each row's run streams the packed kernel once, so short rows lose
#: against im2col's long chunks (9x9 b16: 3x3 64->96 188 against 255 GF/s, 288->384 219
#: against 276; 12x12 and wider won everywhere measured, 3x3 128->128 274 against 260)
IMPLICIT_MIN_WIDTH = 12


def packed_size(k, n, itemsize):
    """Elements of the packed form of a ``k x n`` kernel matrix (``pack_kernel``) of
    ``itemsize``-byte floats (4 or 8)."""
    k, n, itemsize = int(k), int(n), int(itemsize)
    if itemsize not in (4, 8) or k < 0 or n < 0:
        raise ValueError(f"packed_size: needs k, n >= 0 and an itemsize of 4 or 8, got {k}, {n}, {itemsize}")
    return packed_len(k, n, itemsize)


def pack_kernel(const floating[::1] w, Py_ssize_t k, Py_ssize_t n, floating[::1] out):
    """``out`` = the row-major ``k x n`` matrix ``w`` (a Keras kernel flattened to
    ``(taps * cin, cout)``) in the strips the few-rows kernel streams (skinny_gemm.h)."""
    if k < 0 or n < 0 or w.shape[0] != (<object>k) * (<object>n):
        raise ValueError(f"pack_kernel: the kernel has {w.shape[0]} elements, not {k} x {n}")
    if out.shape[0] != packed_size(k, n, sizeof(floating)):
        raise ValueError(f"pack_kernel: out has {out.shape[0]} elements, "
                         f"not {packed_size(k, n, sizeof(floating))}")
    if k == 0 or n == 0:
        return
    with nogil:
        if floating is float:
            ksk_pack_float(k, n, &w[0], n, &out[0])
        else:
            ksk_pack_double(k, n, &w[0], n, &out[0])


def select_isa(int max_level=2):
    """Use the few-rows GEMMs of the widest rung of the CPU-feature ladder (``cpu_features.h``:
    0 baseline, 1 AVX2 + FMA, 2 AVX-512) that is at most ``max_level`` and that this CPU has;
    returns its name. Import selects the widest; tests force lower levels."""
    return select_gemm_isa(max_level)


#: the instruction set chosen at import (the same in every kernel module)
ISA = select_isa()


cdef inline void _gemm_nn(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* a, Py_ssize_t lda,
                          const floating* b, Py_ssize_t ldb, floating* c, Py_ssize_t ldc) noexcept nogil:
    """C = A @ B, row-major: few rows through the kernel that streams B unpacked, else BLAS."""
    if m <= KSK_MAX_ROWS:
        if floating is float:
            ksk_gemm_float(m, n, k, a, lda, b, ldb, c, ldc)
        else:
            ksk_gemm_double(m, n, k, a, lda, b, ldb, c, ldc)
    else:
        gemm(False, False, <int>m, <int>n, <int>k, <floating>1.0, a, <int>lda, b, <int>ldb, <floating>0.0,
             c, <int>ldc)


cdef int _load_conv(object geometry, Geom* g, Py_ssize_t x_size, Py_ssize_t out_size, Py_ssize_t w_size,
                    Py_ssize_t bias_size, bint use_bias, int act, str where) except -1:
    """The geometry of a (grouped) forward convolution: kernel ``(taps, cin // groups, cout)``."""
    load_geometry(geometry, g, x_size, out_size, where)
    check_kernel_size(w_size, g, (g.cin // g.groups) * g.cout, where)
    check_bias_size(bias_size, use_bias, g.cout, where)
    check_act(act, where)
    return 0


cdef void _im2col(const floating* x, Geom* g, Py_ssize_t b, Py_ssize_t p0, Py_ssize_t rows,
                  Py_ssize_t c0, Py_ssize_t cg, floating* col) noexcept nogil:
    """col[r, (k0, k1, k2), ci] = x[b, c0 + ci, tap position of output pixel p0 + r] (0 outside).

    When the taps along the last axis lie next to each other in memory (channels_last, one
    group, no dilation on that axis) each (k0, k1) row of the window is one memcpy."""
    cdef Py_ssize_t r, o0, o1, o2, st0, st1, st2, lo0, hi0, lo1, hi1, lo2, hi2
    cdef Py_ssize_t a, bb, cc, ci, i0, i1, i2, run
    cdef Py_ssize_t K0 = g.k[0], K1 = g.k[1], K2 = g.k[2]
    cdef Py_ssize_t blk2 = cg, blk1 = K2 * cg, blk0 = K1 * K2 * cg
    cdef const floating* src
    cdef const floating* base = x + b * g.xb + c0 * g.xc
    cdef floating* dst
    cdef Py_ssize_t xc = g.xc
    cdef bint merged = xc == 1 and cg == g.cin and g.dil[2] == 1
    o2 = p0 % g.outd[2]
    o1 = (p0 // g.outd[2]) % g.outd[1]
    o0 = p0 // (g.outd[2] * g.outd[1])
    window_taps(o0, g.s[0], g.pad[0], g.dil[0], K0, g.ind[0], &st0, &lo0, &hi0)
    window_taps(o1, g.s[1], g.pad[1], g.dil[1], K1, g.ind[1], &st1, &lo1, &hi1)
    for r in range(rows):
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
                if merged:
                    if lo2 > 0:
                        memset(dst, 0, lo2 * blk2 * sizeof(floating))
                    if hi2 > lo2:
                        run = (hi2 - lo2) * blk2
                        src = base + i0 * g.x0 + i1 * g.x1 + (st2 + lo2) * g.x2
                        if run <= 32:
                            # a stem's few channels: a call to memcpy costs more than the copy
                            for ci in range(run):
                                dst[lo2 * blk2 + ci] = src[ci]
                        else:
                            memcpy(dst + lo2 * blk2, src, run * sizeof(floating))
                    if hi2 < K2:
                        memset(dst + hi2 * blk2, 0, (K2 - hi2) * blk2 * sizeof(floating))
                    dst += blk1
                    continue
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
        # next output pixel: the axis-0/1 windows change only when a row ends
        o2 += 1
        if o2 == g.outd[2]:
            o2 = 0
            o1 += 1
            if o1 == g.outd[1]:
                o1 = 0
                o0 += 1
                window_taps(o0, g.s[0], g.pad[0], g.dil[0], K0, g.ind[0], &st0, &lo0, &hi0)
            window_taps(o1, g.s[1], g.pad[1], g.dil[1], K1, g.ind[1], &st1, &lo1, &hi1)


cdef int _check_tiling(Geom* g, Py_ssize_t chunk_rows, Py_ssize_t col_slice, bint has_packed,
                       Py_ssize_t packed_len_, Py_ssize_t w_len, Py_ssize_t itemsize, str where) except -1:
    """The task tiling of a forward convolution, and its packed kernel (when given) against
    the geometry: a whole number of strips per column slice, one group, channels_last."""
    if chunk_rows < 1 or col_slice < 1:
        raise ValueError(f"{where}: chunk_rows and col_slice must be >= 1, got {chunk_rows}, {col_slice}")
    cdef Py_ssize_t SW = KSK_STRIP_BYTES // itemsize
    if has_packed:
        if g.cf or g.groups != 1:
            raise ValueError(f"{where}: a packed kernel needs channels_last and one group")
        if packed_len_ != packed_size(w_len // g.cout if g.cout else 0, g.cout, itemsize):
            raise ValueError(f"{where}: the packed kernel has {packed_len_} elements, not "
                             f"{packed_size(w_len // g.cout if g.cout else 0, g.cout, itemsize)}")
        if col_slice % SW and col_slice < g.cout:
            raise ValueError(f"{where}: col_slice {col_slice} is not a whole number of {SW}-column strips")
    return 0


cdef inline bint _pointwise(Geom* g) noexcept nogil:
    """A 1x1, stride-1, unpadded, ungrouped convolution: the input rows are the GEMM's A as
    they lie (no im2col, no window offsets)."""
    return (g.k[0] * g.k[1] * g.k[2] == 1 and g.groups == 1 and g.s[0] == 1 and g.s[1] == 1
            and g.s[2] == 1 and g.pad[0] == 0 and g.pad[1] == 0 and g.pad[2] == 0
            and g.outd[0] == g.ind[0] and g.outd[1] == g.ind[1] and g.outd[2] == g.ind[2])


cdef void _implicit_rows(const floating* xp, Geom* g, const floating* pp, const Py_ssize_t* koff,
                         Py_ssize_t i_lo, Py_ssize_t i_hi, Py_ssize_t r0, Py_ssize_t rows, Py_ssize_t f0,
                         Py_ssize_t fw, floating* col, floating* tmp, Py_ssize_t* dst, floating* yp,
                         const floating* bp, int act, const floating* rp) noexcept nogil:
    """Output pixels ``r0 <= r < r0 + rows`` (counted across the batch, channels_last) of a
    convolution with a packed kernel, channels ``[f0, f0 + fw)``. The run of each output row
    whose windows lie inside the input (rows ``i_lo <= o2 < i_hi`` of an output row whose
    axis-0 and axis-1 windows do) goes through the packed GEMM reading the input in place
    (row r of A at its window's first tap, ``s2 * x2`` apart, step k at byte offset
    ``koff[k]``); the other pixels are gathered through im2col into ``col`` (their output rows
    in ``dst``) and multiplied in one GEMM into ``tmp`` (``2 * rows x cout``: outputs, then
    their residual rows), then scattered. The sums run in the same order either way."""
    cdef Py_ssize_t SW = KSK_STRIP_BYTES // sizeof(floating)
    cdef Py_ssize_t W = g.outd[2], F = g.cout, P = g.outd[0] * g.outd[1] * g.outd[2]
    cdef Py_ssize_t Kc = g.k[0] * g.k[1] * g.k[2] * g.cin
    cdef Py_ssize_t s0 = f0 // SW, s1 = strips(f0 + fw, sizeof(floating)), n = f0 + fw
    cdef Py_ssize_t done = 0, nb = 0, r, b, p, o0, o1, o2, seg, a, e, st0, st1, lo, hi, i
    cdef bint inside
    while done < rows:
        r = r0 + done
        b = r // P
        p = r % P
        o2 = p % W
        o1 = (p // W) % g.outd[1]
        o0 = p // (W * g.outd[1])
        seg = W - o2
        if seg > rows - done:
            seg = rows - done
        window_taps(o0, g.s[0], g.pad[0], g.dil[0], g.k[0], g.ind[0], &st0, &lo, &hi)
        inside = lo == 0 and hi == g.k[0]
        window_taps(o1, g.s[1], g.pad[1], g.dil[1], g.k[1], g.ind[1], &st1, &lo, &hi)
        inside = inside and lo == 0 and hi == g.k[1]
        # [a, e): the outputs of this row read in place; the rest of the segment is gathered
        a = o2 + seg
        e = o2 + seg
        if inside:
            a = i_lo if i_lo > o2 else o2
            e = i_hi if i_hi < o2 + seg else o2 + seg
            if e <= a:
                a = o2 + seg
                e = o2 + seg
        if a > o2:
            _im2col(xp, g, b, p, a - o2, 0, g.cin, col + nb * Kc)
            for i in range(a - o2):
                dst[nb + i] = r + i
            nb = nb + a - o2
        if e > a:
            packed_gemm(e - a, Kc, xp + b * g.xb + st0 * g.x0 + st1 * g.x1 + (a * g.s[2] - g.pad[2]) * g.x2,
                        g.s[2] * g.x2, pp, s0, s1, n, yp + (r + a - o2) * F, F, bp, act,
                        rp + (r + a - o2) * F if rp != NULL else NULL, koff)
        if o2 + seg > e:
            _im2col(xp, g, b, p + e - o2, o2 + seg - e, 0, g.cin, col + nb * Kc)
            for i in range(o2 + seg - e):
                dst[nb + i] = r + e - o2 + i
            nb = nb + o2 + seg - e
        done += seg
    if nb == 0:
        return
    if rp != NULL:
        # the gathered rows' residual, after their outputs (C must not alias it: a GEMM over
        # several blocks of K stores partial sums before the last block adds the residual)
        for i in range(nb):
            memcpy(tmp + (rows + i) * F + f0, rp + dst[i] * F + f0, fw * sizeof(floating))
    packed_gemm(nb, Kc, col, Kc, pp, s0, s1, n, tmp, F, bp, act, tmp + rows * F if rp != NULL else NULL)
    for i in range(nb):
        memcpy(yp + dst[i] * F + f0, tmp + i * F + f0, fw * sizeof(floating))


cdef int _conv_run(const floating* xp, const floating* wp, const floating* bp, floating* yp, Geom* gp,
                   bint use_bias, int act, Py_ssize_t chunk_rows, Py_ssize_t col_slice, int n_threads,
                   const floating* pp, const floating* rp, const Py_ssize_t* koff, Py_ssize_t i_lo,
                   Py_ssize_t i_hi) noexcept nogil:
    """ConvKernel's call on checked pointers (``pp``, ``rp``: the packed kernel and the residual, or
    NULL; ``koff``: the window's byte offsets when the packed GEMM reads inside windows in place,
    those of the output rows ``i_lo <= o2 < i_hi`` (``_implicit_rows``), or NULL); returns the
    number of tasks that found no scratch memory (0 on success)."""
    cdef Geom g = gp[0]
    cdef Py_ssize_t SW = KSK_STRIP_BYTES // sizeof(floating)
    cdef Py_ssize_t P = g.outd[0] * g.outd[1] * g.outd[2]
    if g.n == 0 or P == 0 or g.cout == 0:
        return 0
    cdef Py_ssize_t T = g.k[0] * g.k[1] * g.k[2]
    cdef Py_ssize_t cg = g.cin // g.groups, fg = g.cout // g.groups, Kc = T * cg
    cdef Py_ssize_t F = g.cout
    # rows counted across the batch (channels_last) or within a sample (channels_first)
    cdef Py_ssize_t span = P if g.cf else g.n * P
    cdef Py_ssize_t R = chunk_rows if chunk_rows < span else span
    cdef Py_ssize_t CS = col_slice if col_slice < fg else fg
    cdef Py_ssize_t ncs = (fg + CS - 1) // CS
    cdef Py_ssize_t nc = (span + R - 1) // R
    cdef Py_ssize_t total = (g.n if g.cf else 1) * nc * ncs
    cdef Py_ssize_t task, ch, b, r0, rows, gi, f0, fw, seg, r, done
    cdef floating* col = NULL
    cdef floating* tmp = NULL
    cdef Py_ssize_t* dst = NULL
    cdef int failed = 0
    cdef bint pointwise = _pointwise(&g)
    with parallel(num_threads=n_threads):
        col = <floating*>malloc((1 if pointwise else R * Kc) * sizeof(floating))
        # reading windows in place: the gathered pixels' outputs and destinations
        tmp = <floating*>malloc((2 * R * F if koff != NULL else 1) * sizeof(floating))
        dst = <Py_ssize_t*>malloc((R if koff != NULL else 1) * sizeof(Py_ssize_t))
        try:
            for task in prange(total, schedule="static"):
                if col == NULL or tmp == NULL or dst == NULL:
                    failed += 1
                    continue
                ch = task // ncs
                f0 = (task % ncs) * CS
                fw = fg - f0
                if fw > CS:
                    fw = CS
                b = ch // nc if g.cf else 0
                r0 = (ch % nc) * R
                rows = span - r0
                if rows > R:
                    rows = R
                if pointwise:
                    # 1x1: the input rows are the GEMM operand as they lie (no im2col)
                    if not g.cf:
                        if pp != NULL:
                            # bias and activation in the GEMM's register tiles
                            packed_gemm(rows, g.cin, xp + r0 * g.cin, g.cin, pp, f0 // SW, strips(f0 + fw, sizeof(floating)), f0 + fw,
                                        yp + r0 * F, F, bp if use_bias else NULL, act,
                                        rp + r0 * F if rp != NULL else NULL)
                        else:
                            _gemm_nn(rows, fw, g.cin, xp + r0 * g.cin, g.cin, wp + f0, F, yp + r0 * F + f0, F)
                            epilogue(yp + r0 * F + f0, rows, fw, F, bp + f0 if bp != NULL else NULL,
                                     False, use_bias, act)
                    else:
                        gemm(True, False, <int>fw, <int>rows, <int>g.cin, <floating>1.0, wp + f0, <int>F,
                             xp + b * g.xb + r0, <int>P, <floating>0.0, yp + b * g.yb + f0 * P + r0, <int>P)
                        epilogue(yp + b * g.yb + f0 * P + r0, fw, rows, P, bp + f0 if bp != NULL else NULL,
                                 True, use_bias, act)
                    continue
                if koff != NULL:
                    _implicit_rows(xp, &g, pp, koff, i_lo, i_hi, r0, rows, f0, fw, col, tmp, dst, yp,
                                   bp if use_bias else NULL, act, rp)
                    continue
                for gi in range(g.groups):
                    if g.cf:
                        _im2col(xp, &g, b, r0, rows, gi * cg, cg, col)
                    else:
                        # a chunk of batch-wide rows: one im2col run per sample it touches
                        done = 0
                        while done < rows:
                            r = r0 + done
                            seg = P - r % P
                            if seg > rows - done:
                                seg = rows - done
                            _im2col(xp, &g, r // P, r % P, seg, gi * cg, cg, col + done * Kc)
                            done = done + seg
                    # the slice's output is still in cache: bias and activation right after
                    if not g.cf:
                        if pp != NULL:
                            packed_gemm(rows, Kc, col, Kc, pp, f0 // SW, strips(f0 + fw, sizeof(floating)), f0 + fw, yp + r0 * F, F,
                                        bp if use_bias else NULL, act, rp + r0 * F if rp != NULL else NULL)
                        else:
                            _gemm_nn(rows, fw, Kc, col, Kc, wp + gi * fg + f0, F, yp + r0 * F + gi * fg + f0, F)
                            epilogue(yp + r0 * F + gi * fg + f0, rows, fw, F,
                                     bp + gi * fg + f0 if bp != NULL else NULL, False, use_bias, act)
                    else:
                        gemm(True, True, <int>fw, <int>rows, <int>Kc, <floating>1.0, wp + gi * fg + f0, <int>F,
                             col, <int>Kc, <floating>0.0, yp + b * g.yb + (gi * fg + f0) * P + r0, <int>P)
                        epilogue(yp + b * g.yb + (gi * fg + f0) * P + r0, fw, rows, P,
                                 bp + gi * fg + f0 if bp != NULL else NULL, True, use_bias, act)
        finally:
            free(col)
            free(tmp)
            free(dst)
    return failed


cdef inline void _direct_tap(const floating* xin, const floating* wp, floating* yp, Geom* g,
                             Py_ssize_t tap, Py_ssize_t cc, Py_ssize_t lo, Py_ssize_t hi,
                             Py_ssize_t ybase, floating beta) noexcept nogil:
    """One kernel tap over outputs ``lo <= o2 < hi`` of one output row, every group:
    ``y[row, lo:hi] (+)= x[input row, o2 * s - p + cc * d] @ W[tap]``. ``xin`` points at the
    input row (sample, i0, i1, axis-2 index 0, channel 0), ``ybase`` is the output row's offset."""
    cdef Py_ssize_t gi, C = g.cin, F = g.cout, cg = g.cin // g.groups, fg = g.cout // g.groups
    cdef Py_ssize_t P = g.outd[0] * g.outd[1] * g.outd[2]
    cdef Py_ssize_t off = lo * g.s[2] - g.pad[2] + cc * g.dil[2]
    cdef const floating* wt = wp + tap * cg * F
    for gi in range(g.groups):
        if not g.cf:
            # the input pixels of the row, s * C apart, are the GEMM's A rows as they lie
            gemm(False, False, <int>(hi - lo), <int>fg, <int>cg, <floating>1.0, xin + off * C + gi * cg,
                 <int>(g.s[2] * C), wt + gi * fg, <int>F, beta, yp + ybase + lo * F + gi * fg, <int>F)
        else:
            # stride 1: the channel planes' row segments are B's rows (W^T @ x)
            gemm(True, False, <int>fg, <int>(hi - lo), <int>cg, <floating>1.0, wt + gi * fg, <int>F,
                 xin + off + gi * cg * g.xc, <int>g.xc, beta, yp + ybase + gi * fg * P + lo, <int>P)


cdef void _direct_task(const floating* xp, const floating* wp, const floating* bp, floating* yp,
                       Geom* g, Py_ssize_t task, Py_ssize_t seg, Py_ssize_t nseg, Py_ssize_t cfull,
                       bint use_bias, int act) noexcept nogil:
    """Segment ``task % nseg`` (``seg`` outputs along the last axis) of output row
    ``task // nseg``: one GEMM per tap whose inputs are in range, accumulated in place."""
    cdef Py_ssize_t r = task // nseg
    cdef Py_ssize_t q_lo = (task % nseg) * seg, q_hi = q_lo + seg
    cdef Py_ssize_t b = r // (g.outd[0] * g.outd[1]), o0 = (r // g.outd[1]) % g.outd[0], o1 = r % g.outd[1]
    cdef Py_ssize_t K1 = g.k[1], K2 = g.k[2], F = g.cout
    cdef Py_ssize_t P = g.outd[0] * g.outd[1] * g.outd[2]
    cdef Py_ssize_t st0, lo0, hi0, st1, lo1, hi1, lo, hi, a, bb, cc, f
    cdef Py_ssize_t ybase = b * g.yb + o0 * g.y0 + o1 * g.y1
    cdef const floating* xin
    cdef floating beta = 1
    if q_hi > g.outd[2]:
        q_hi = g.outd[2]
    window_taps(o0, g.s[0], g.pad[0], g.dil[0], g.k[0], g.ind[0], &st0, &lo0, &hi0)
    window_taps(o1, g.s[1], g.pad[1], g.dil[1], K1, g.ind[1], &st1, &lo1, &hi1)
    if cfull >= 0 and lo0 < hi0 and lo1 < hi1:
        # a tap that covers the whole row writes first (beta 0): no zeroing pass
        xin = xp + b * g.xb + (st0 + lo0 * g.dil[0]) * g.x0 + (st1 + lo1 * g.dil[1]) * g.x1
        _direct_tap(xin, wp, yp, g, (lo0 * K1 + lo1) * K2 + cfull, cfull, q_lo, q_hi, ybase, 0)
    elif not g.cf:
        memset(yp + ybase + q_lo * F, 0, (q_hi - q_lo) * F * sizeof(floating))
    else:
        for f in range(F):
            memset(yp + ybase + f * P + q_lo, 0, (q_hi - q_lo) * sizeof(floating))
    for a in range(lo0, hi0):
        for bb in range(lo1, hi1):
            xin = xp + b * g.xb + (st0 + a * g.dil[0]) * g.x0 + (st1 + bb * g.dil[1]) * g.x1
            for cc in range(K2):
                if cc == cfull and a == lo0 and bb == lo1:
                    continue
                tap_output_range(cc, g.s[2], g.pad[2], g.dil[2], g.ind[2], g.outd[2], &lo, &hi)
                if lo < q_lo:
                    lo = q_lo
                if hi > q_hi:
                    hi = q_hi
                if hi > lo:
                    _direct_tap(xin, wp, yp, g, (a * K1 + bb) * K2 + cc, cc, lo, hi, ybase, beta)
    # the segment is still in cache: bias and activation now
    if not g.cf:
        epilogue(yp + ybase + q_lo * F, q_hi - q_lo, F, F, bp, False, use_bias, act)
    else:
        epilogue(yp + ybase + q_lo, F, q_hi - q_lo, P, bp, True, use_bias, act)


def conv_direct_forward(const floating[::1] x, const floating[::1] w, const floating[::1] bias,
                        floating[::1] out, dict geometry, bint use_bias, int act,
                        Py_ssize_t seg, int n_threads):
    """out = act(conv(x, w) + bias) as implicit GEMM: no im2col, one GEMM per kernel tap and
    output-row segment, reading the input rows in place (the geometry and tiling of :class:`ConvKernel`).

    Each output row (last spatial axis) is split into segments of ``seg`` outputs; a task is one
    segment, and for each tap ``(k0, k1, k2)`` whose input row is in range it runs
    ``y[seg] += x[row, o * s - p + k2 * d, :] @ W[tap]`` over the outputs whose input is inside
    (``tap_output_range``): channels_last A rows are ``s * cin`` apart; channels_first (needs
    stride 1 on the last axis) computes ``W[tap]^T @ x[:, row segment]``. The GEMMs are small
    (M = segment length, K = cin / groups), which OpenBLAS runs at nearly its large-GEMM rate,
    and the input is read where it lies: no scratch, no copies. The caller holds BLAS to one
    thread when ``n_threads > 1``.
    """
    cdef Geom g
    _load_conv(geometry, &g, x.shape[0], out.shape[0], w.shape[0], bias.shape[0], use_bias, act,
               "conv_direct_forward")
    if seg < 1:
        raise ValueError(f"conv_direct_forward: seg must be >= 1, got {seg}")
    if g.cf and g.s[2] != 1:
        raise ValueError(f"conv_direct_forward: channels_first needs stride 1 on the last axis, got {g.s[2]}")
    cdef Py_ssize_t P = g.outd[0] * g.outd[1] * g.outd[2]
    if g.n == 0 or P == 0:
        return
    cdef Py_ssize_t nseg = (g.outd[2] + seg - 1) // seg
    cdef Py_ssize_t total = g.n * g.outd[0] * g.outd[1] * nseg
    cdef Py_ssize_t cfull = -1, cc, lo, hi, task
    for cc in range(g.k[2]):
        tap_output_range(cc, g.s[2], g.pad[2], g.dil[2], g.ind[2], g.outd[2], &lo, &hi)
        if lo == 0 and hi == g.outd[2]:
            cfull = cc
            break
    cdef const floating* xp = &x[0]
    cdef const floating* wp = &w[0]
    cdef const floating* bp = &bias[0] if bias.shape[0] > 0 else NULL
    cdef floating* yp = &out[0]
    with nogil:
        for task in prange(total, num_threads=n_threads, schedule="dynamic"):
            _direct_task(xp, wp, bp, yp, &g, task, seg, nseg, cfull, use_bias, act)


cdef class ConvKernel:
    """The forward convolution, prepared: ``ConvKernel(w, bias, geometry, use_bias, act,
    chunk_rows, col_slice, n_threads, packed=None)`` checks the geometry, weights, bias, packed
    kernel, tiling and thread count once (holding the arrays), and ``kernel(x, out)`` then only
    checks its arrays (type, dtype, C order, size) and runs: no memoryview or geometry
    conversion per call. The inference plan keeps one per layer and input signature.

    ``kernel(x, out)``: out = act(conv(x, w) + bias), x and out (flat or shaped, C-contiguous,
    the prepared dtype) in the layout ``geometry`` says (a ConvGeometry: batch, in_channels,
    out_channels, groups, channels_first, in_size, out_size, kernel_size, strides,
    dilation_rate, pad_before; three axes each). ``kernel(x, out, residual, act)``: ``residual``
    (needs a packed kernel), an array laid out as ``out``, is added after the bias and before
    the activation, in the GEMM's register tiles (a residual block's ``act(conv(x) + shortcut)``
    in one pass); ``act``, when not -1, replaces the prepared activation code.

    w: the Keras kernel ``(k0, k1, k2, cin // groups, cout)`` flattened. bias: ``(cout,)``
    (may be empty when ``use_bias`` is 0). The output is tiled into tasks of the OpenMP loop,
    each one single-threaded GEMM per group (the caller holds BLAS to one thread when
    ``n_threads > 1`` and there is no packed kernel): ``chunk_rows`` output pixels
    (channels_last: counted across the batch, so a chunk may span samples; channels_first:
    within one sample) times ``col_slice`` output channels of each group. Splitting the
    channels is what keeps every thread busy on small maps, where there are fewer row chunks
    than threads, and each task's GEMM then packs only its own slice of the kernel. The 1x1,
    stride-1, unpadded, ungrouped case skips im2col: each task's GEMM reads the input rows in
    place (channels_first: ``W^T @ x[b, :, chunk]``).

    ``packed``: optionally, ``w`` as ``pack_kernel`` packs it (channels_last, one group only);
    every task then multiplies the packed strips (skinny_gemm.h), and ``col_slice`` must be a
    whole number of strips. Without it, GEMMs of at most ``SKINNY_ROWS`` rows run through the
    few-rows kernel over ``w`` in place, others through BLAS.
    """
    cdef Geom g
    cdef object w, bias, packed
    cdef const char* wp
    cdef const char* bp
    cdef const char* pp
    cdef int typenum, n_threads
    cdef readonly int act
    cdef bint use_bias
    cdef Py_ssize_t chunk_rows, col_slice, x_size, out_size
    cdef Py_ssize_t* koff
    cdef Py_ssize_t i_lo, i_hi

    def __cinit__(self):
        self.koff = NULL

    def __dealloc__(self):
        free(self.koff)

    def __init__(self, w, bias, dict geometry, bint use_bias, int act, Py_ssize_t chunk_rows,
                 Py_ssize_t col_slice, int n_threads, packed=None):
        where = "ConvKernel"
        self.typenum = float_type(getattr(w, "dtype", None), where)
        cdef Py_ssize_t w_size = array_size(w, where, "the kernel")
        cdef Py_ssize_t b_size = array_size(bias, where, "the bias")
        cdef Py_ssize_t p_size = 0 if packed is None else array_size(packed, where, "the packed kernel")
        _load_conv(geometry, &self.g, -1, -1, w_size, b_size, use_bias, act, where)
        _check_tiling(&self.g, chunk_rows, col_slice, p_size > 0, p_size, w_size,
                      4 if self.typenum == cnp.NPY_FLOAT else 8, where)
        if n_threads < 1:
            raise ValueError(f"{where}: n_threads must be >= 1, got {n_threads}")
        self.x_size, self.out_size = input_size(&self.g), output_size(&self.g)
        self.wp = array_data(w, self.typenum, w_size, False, where, "the kernel")
        self.bp = array_data(bias, self.typenum, b_size, False, where, "the bias") if b_size else NULL
        self.pp = array_data(packed, self.typenum, p_size, False, where, "the packed kernel") if p_size else NULL
        self.w, self.bias, self.packed = w, bias, packed if p_size else None
        self.use_bias, self.act, self.chunk_rows, self.col_slice, self.n_threads = use_bias, act, chunk_rows, col_slice, n_threads
        self._plan_implicit(4 if self.typenum == cnp.NPY_FLOAT else 8)

    cdef int _plan_implicit(self, Py_ssize_t itemsize) except -1:
        """With a packed kernel (channels_last, one group, not the 1x1 path) and rows of at least
        IMPLICIT_MIN_WIDTH outputs: the window's byte offsets (``koff``, one per GEMM step: tap
        ``(a, b, c)``, channel ``ci``) and the outputs ``i_lo <= o2 < i_hi`` of a row whose
        axis-2 window lies inside the input."""
        cdef Geom* g = &self.g
        cdef Py_ssize_t K0 = g.k[0], K1 = g.k[1], K2 = g.k[2], a, bb, cc, ci, k, last
        if self.pp == NULL or g.cf or g.groups != 1 or _pointwise(g) or g.outd[2] < IMPLICIT_MIN_WIDTH:
            return 0
        self.koff = <Py_ssize_t*>malloc(K0 * K1 * K2 * g.cin * sizeof(Py_ssize_t) + 1)
        if self.koff == NULL:
            raise MemoryError("ConvKernel: could not allocate the window offsets")
        k = 0
        for a in range(K0):
            for bb in range(K1):
                for cc in range(K2):
                    for ci in range(g.cin):
                        self.koff[k] = (a * g.dil[0] * g.x0 + bb * g.dil[1] * g.x1 + cc * g.dil[2] * g.x2 + ci) * itemsize
                        k += 1
        # o2 * s - pad >= 0 and o2 * s - pad + (K2 - 1) * dil <= in - 1
        self.i_lo = (g.pad[2] + g.s[2] - 1) // g.s[2]
        last = g.ind[2] - 1 - (K2 - 1) * g.dil[2] + g.pad[2]
        self.i_hi = last // g.s[2] + 1 if last >= 0 else 0
        if self.i_hi > g.outd[2]:
            self.i_hi = g.outd[2]
        if self.i_lo > self.i_hi:
            self.i_lo = self.i_hi
        return 0

    @property
    def reads_in_place(self):
        """Whether the packed GEMM reads windows inside the input in place (no im2col for them)."""
        return self.koff != NULL

    @property
    def has_packed(self):
        """Whether the kernel multiplies packed strips (the only path that takes a residual)."""
        return self.pp != NULL

    def __call__(self, x, out, residual=None, int act=-1):
        where = "ConvKernel"
        if act == -1:
            act = self.act
        else:
            check_act(act, where)
        cdef const char* xp = array_data(x, self.typenum, self.x_size, False, where, "input")
        cdef char* yp = array_data(out, self.typenum, self.out_size, True, where, "output")
        cdef const char* rp = NULL
        if residual is not None:
            if self.pp == NULL:
                raise ValueError(f"{where}: a residual needs a packed kernel")
            rp = array_data(residual, self.typenum, self.out_size, False, where, "the residual")
        cdef int failed
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                failed = _conv_run(<const float*>xp, <const float*>self.wp, <const float*>self.bp, <float*>yp,
                                   &self.g, self.use_bias, act, self.chunk_rows, self.col_slice,
                                   self.n_threads, <const float*>self.pp, <const float*>rp, self.koff,
                                   self.i_lo, self.i_hi)
            else:
                failed = _conv_run(<const double*>xp, <const double*>self.wp, <const double*>self.bp, <double*>yp,
                                   &self.g, self.use_bias, act, self.chunk_rows, self.col_slice,
                                   self.n_threads, <const double*>self.pp, <const double*>rp, self.koff,
                                   self.i_lo, self.i_hi)
        if failed:
            raise MemoryError(f"{where}: could not allocate the im2col scratch")
