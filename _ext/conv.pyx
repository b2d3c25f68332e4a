# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Convolution kernels: implicit GEMM (one GEMM per kernel tap and output-row segment, reading
the input in place), im2col + GEMM (grouped; what the implicit kernel does not take), a 1x1 fast
path, direct depthwise loops (register-tiled per row of taps), and transposed convolution as
GEMM + col2im. Rank 1-3 share one code path: spatial axes are embedded in three; the forward
ops embed a rank-1 length L as ``(1, 1, L)`` and rank 2 as ``(1, H, W)`` so the kernels that
sweep whole rows of the last axis get long rows (the transposed op embeds leading: ``(L, 1, 1)``).
Any embedding is valid input: the kernel's flat layout ``(taps, ...)`` is the same.

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
from _windows cimport tap_output_range, window_taps

cdef extern from *:
    """
    #include <stddef.h>
    #include <stdint.h>
    #include <string.h>
    #if defined(__GNUC__)
    #pragma GCC diagnostic ignored "-Wpsabi"
    #endif
    /* One row of depthwise taps (k0, k1 fixed, every k2) over a run of interior outputs,
       channels_last, multiplier 1. Per output pixel and tile of channels the accumulators stay
       in registers across the K2 taps: one load and one store of the output per row of taps
       instead of one per tap. ``first``: start from ``bias`` (or 0); ``act`` >= 0: apply the
       activation (the last row of taps). Tiles are QP pixels x U vectors of VS bytes; GCC's
       generic vectors are only lowered well at the width the function is compiled for, hence
       one variant per ISA (baseline SSE2 2 x 4 x 16 B; AVX2 4 x 2 x 32 B and AVX-512
       4 x 2 x 64 B under target attributes, picked at import by ``kdw_select``, as softmax.pyx
       does). Channels left over from the tiles go one vector at a time, then scalar. */
    #define KDW_TILE(T, VT, VU, MT, U, QP)                                                        \
        {                                                                                         \
            VT acc[QP][U], wv[U];                                                                 \
            if (!first) {                                                                         \
                for (int p = 0; p < QP; p++) for (int u = 0; u < U; u++)                          \
                    acc[p][u] = *(const VU*)(o + (q + p) * C + c + u * L);                        \
            } else if (bias) {                                                                    \
                for (int p = 0; p < QP; p++) for (int u = 0; u < U; u++)                          \
                    acc[p][u] = *(const VU*)(bias + c + u * L);                                   \
            } else {                                                                              \
                for (int p = 0; p < QP; p++) for (int u = 0; u < U; u++) acc[p][u] = zero;        \
            }                                                                                     \
            for (ptrdiff_t t = 0; t < K2; t++) {                                                  \
                for (int u = 0; u < U; u++) wv[u] = *(const VU*)(w + t * C + c + u * L);          \
                for (int p = 0; p < QP; p++) {                                                    \
                    const T* xs = x + off + (q + p) * xstep + t * tapstep + c;                    \
                    for (int u = 0; u < U; u++) acc[p][u] += *(const VU*)(xs + u * L) * wv[u];    \
                }                                                                                 \
            }                                                                                     \
            for (int p = 0; p < QP; p++) for (int u = 0; u < U; u++) {                            \
                VT v = acc[p][u];                                                                 \
                if (act == 1) {                                                                   \
                    v = (VT)(~(MT)(v < zero) & (MT)v);                                            \
                } else if (act == 2) {                                                            \
                    v = (VT)(~(MT)(v < zero) & (MT)v);                                            \
                    MT m = (MT)(v > six);                                                         \
                    v = (VT)((m & (MT)six) | (~m & (MT)v));                                       \
                }                                                                                 \
                *(VU*)(o + (q + p) * C + c + u * L) = v;                                          \
            }                                                                                     \
        }

    /* QP pixels x U vectors of accumulators: enough independent FMA chains to hide the add
       latency (with one pixel at a time the taps' adds wait on each other: 2.5x slower). */
    #define KDW_BODY(T, VT, VU, MT, VS, U, QP)                                                    \
        enum { L = VS / (int)sizeof(T), TL = L * U };                                             \
        const VT zero = {0}, six = zero + (T)6;                                                   \
        const ptrdiff_t c_tiles = C - C % TL, c_vecs = C - C % L;                                 \
        ptrdiff_t q = 0, c;                                                                       \
        for (; q + QP <= npix; q += QP) {                                                         \
            for (c = 0; c < c_tiles; c += TL) KDW_TILE(T, VT, VU, MT, U, QP)                      \
            for (; c < c_vecs; c += L) KDW_TILE(T, VT, VU, MT, 1, QP)                             \
        }                                                                                         \
        for (; q < npix; q++) {                                                                   \
            for (c = 0; c < c_tiles; c += TL) KDW_TILE(T, VT, VU, MT, U, 1)                       \
            for (; c < c_vecs; c += L) KDW_TILE(T, VT, VU, MT, 1, 1)                              \
        }                                                                                         \
        if (c_vecs < C) {                                                                         \
            for (q = 0; q < npix; q++) {                                                          \
                const T* xq = x + off + q * xstep;                                                \
                T* oq = o + q * C;                                                                \
                for (c = c_vecs; c < C; c++) {                                                    \
                    T v = first ? (bias ? bias[c] : (T)0) : oq[c];                                \
                    for (ptrdiff_t t = 0; t < K2; t++) v += xq[t * tapstep + c] * w[t * C + c];   \
                    if (act == 1) v = v < 0 ? 0 : v;                                              \
                    else if (act == 2) { v = v < 0 ? 0 : v; v = v > 6 ? 6 : v; }                  \
                    oq[c] = v;                                                                    \
                }                                                                                 \
            }                                                                                     \
        }

    #define KDW_DEFINE(T, I, SUF, ATTR, VS, U, QP)                                                \
        typedef T kdw_##T##_v_##SUF __attribute__((vector_size(VS)));                             \
        typedef T kdw_##T##_u_##SUF __attribute__((vector_size(VS), aligned(sizeof(T)), may_alias)); \
        typedef I kdw_##T##_m_##SUF __attribute__((vector_size(VS)));                             \
        ATTR static void kdw_rowtaps_##T##_##SUF(T* o, const T* x, ptrdiff_t off, ptrdiff_t xstep, \
                ptrdiff_t tapstep, const T* w, ptrdiff_t K2, ptrdiff_t npix, ptrdiff_t C,         \
                const T* bias, int first, int act)                                                \
        { KDW_BODY(T, kdw_##T##_v_##SUF, kdw_##T##_u_##SUF, kdw_##T##_m_##SUF, VS, U, QP) }

    typedef void (*kdw_float_t)(float*, const float*, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float*,
                                ptrdiff_t, ptrdiff_t, ptrdiff_t, const float*, int, int);
    typedef void (*kdw_double_t)(double*, const double*, ptrdiff_t, ptrdiff_t, ptrdiff_t, const double*,
                                 ptrdiff_t, ptrdiff_t, ptrdiff_t, const double*, int, int);
    #if defined(__GNUC__) || defined(__clang__)
    KDW_DEFINE(float, int32_t, base, , 16, 4, 2)
    KDW_DEFINE(double, int64_t, base, , 16, 4, 2)
    #if !defined(__clang__) && defined(__x86_64__)
    #define KDW_MULTIVERSION 1
    KDW_DEFINE(float, int32_t, avx2, __attribute__((target("avx2,fma"))), 32, 2, 4)
    KDW_DEFINE(double, int64_t, avx2, __attribute__((target("avx2,fma"))), 32, 2, 4)
    KDW_DEFINE(float, int32_t, avx512, __attribute__((target("avx512f"))), 64, 2, 4)
    KDW_DEFINE(double, int64_t, avx512, __attribute__((target("avx512f"))), 64, 2, 4)
    #else
    #define KDW_MULTIVERSION 0
    #endif
    #else
    #define KDW_MULTIVERSION 0
    /* no GCC vectors: plain loops */
    #define KDW_SCALAR(T)                                                                          \
        static void kdw_rowtaps_##T##_base(T* o, const T* x, ptrdiff_t off, ptrdiff_t xstep,      \
                ptrdiff_t tapstep, const T* w, ptrdiff_t K2, ptrdiff_t npix, ptrdiff_t C,         \
                const T* bias, int first, int act) {                                              \
            for (ptrdiff_t q = 0; q < npix; q++) {                                                \
                const T* xq = x + off + q * xstep;                                                \
                T* oq = o + q * C;                                                                \
                for (ptrdiff_t c = 0; c < C; c++) {                                               \
                    T v = first ? (bias ? bias[c] : (T)0) : oq[c];                                \
                    for (ptrdiff_t t = 0; t < K2; t++) v += xq[t * tapstep + c] * w[t * C + c];   \
                    if (act == 1) v = v < 0 ? 0 : v;                                              \
                    else if (act == 2) { v = v < 0 ? 0 : v; v = v > 6 ? 6 : v; }                  \
                    oq[c] = v;                                                                    \
                }                                                                                 \
            }                                                                                     \
        }
    KDW_SCALAR(float)
    KDW_SCALAR(double)
    #endif

    static kdw_float_t kdw_rowtaps_float = kdw_rowtaps_float_base;
    static kdw_double_t kdw_rowtaps_double = kdw_rowtaps_double_base;
    static const char* kdw_isa = "baseline";

    /* Pick the widest variant the CPU has; level 0 forces the baseline, 1 at most AVX2. */
    static const char* kdw_select(int max_level) {
        kdw_rowtaps_float = kdw_rowtaps_float_base;
        kdw_rowtaps_double = kdw_rowtaps_double_base;
        kdw_isa = "baseline";
    #if KDW_MULTIVERSION
        __builtin_cpu_init();
        if (max_level >= 2 && __builtin_cpu_supports("avx512f")) {
            kdw_rowtaps_float = kdw_rowtaps_float_avx512;
            kdw_rowtaps_double = kdw_rowtaps_double_avx512;
            kdw_isa = "avx512";
        } else if (max_level >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            kdw_rowtaps_float = kdw_rowtaps_float_avx2;
            kdw_rowtaps_double = kdw_rowtaps_double_avx2;
            kdw_isa = "avx2";
        }
    #endif
        return kdw_isa;
    }
    """
    void kdw_rowtaps_float(float* o, const float* x, Py_ssize_t off, Py_ssize_t xstep, Py_ssize_t tapstep,
                           const float* w, Py_ssize_t K2, Py_ssize_t npix, Py_ssize_t C, const float* bias,
                           int first, int act) noexcept nogil
    void kdw_rowtaps_double(double* o, const double* x, Py_ssize_t off, Py_ssize_t xstep, Py_ssize_t tapstep,
                            const double* w, Py_ssize_t K2, Py_ssize_t npix, Py_ssize_t C, const double* bias,
                            int first, int act) noexcept nogil
    const char* kdw_select(int max_level) noexcept nogil


def depthwise_isa(int max_level=2):
    """Select the depthwise inner loop's instruction set: the widest of baseline (0), AVX2 +
    FMA (1) and AVX-512 (2) that is at most ``max_level`` and that this CPU has (checked at
    run time; the build flags stay the baseline). Returns the name chosen. Tests force 0 to
    cover the baseline; import selects the widest."""
    return kdw_select(max_level).decode()


depthwise_isa()

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


cdef inline void _bias_act_vec(floating* row, const floating* bias, Py_ssize_t n, int act) noexcept nogil:
    """row[j] = act(row[j] + bias[j]); one loop per activation so each vectorises."""
    cdef Py_ssize_t j
    cdef floating v
    if act == 1:
        for j in range(n):
            v = row[j] + bias[j]
            row[j] = 0 if v < 0 else v  # keeps NaN, as TensorFlow
    elif act == 2:
        for j in range(n):
            v = row[j] + bias[j]
            v = 0 if v < 0 else v
            row[j] = 6 if v > 6 else v
    else:
        for j in range(n):
            row[j] = row[j] + bias[j]


cdef inline void _bias_act_scalar(floating* row, floating bv, Py_ssize_t n, int act) noexcept nogil:
    """row[j] = act(row[j] + bv)."""
    cdef Py_ssize_t j
    cdef floating v
    if act == 1:
        for j in range(n):
            v = row[j] + bv
            row[j] = 0 if v < 0 else v  # keeps NaN, as TensorFlow
    elif act == 2:
        for j in range(n):
            v = row[j] + bv
            v = 0 if v < 0 else v
            row[j] = 6 if v > 6 else v
    else:
        for j in range(n):
            row[j] = row[j] + bv


cdef inline void _epilogue(floating* c, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t ld,
                           const floating* bias, bint bias_per_row, bint use_bias, int act) noexcept nogil:
    """c[r * ld + j] = act(c + bias) on a rows x cols block; bias indexed by column (channels
    last) or by row (channels first)."""
    cdef Py_ssize_t r
    if not use_bias and act == 0:
        return
    for r in range(rows):
        if not use_bias:
            _bias_act_scalar(c + r * ld, <floating>0, cols, act)
        elif bias_per_row:
            _bias_act_scalar(c + r * ld, bias[r], cols, act)
        else:
            _bias_act_vec(c + r * ld, bias, cols, act)


cdef void _im2col(const floating* x, Geom* g, Py_ssize_t b, Py_ssize_t p0, Py_ssize_t rows,
                  Py_ssize_t c0, Py_ssize_t cg, floating* col) noexcept nogil:
    """col[r, (k0, k1, k2), ci] = x[b, c0 + ci, tap position of output pixel p0 + r] (0 outside).

    When the taps along the last axis lie next to each other in memory (channels_last, one
    group, no dilation on that axis) each (k0, k1) row of the window is one memcpy."""
    cdef Py_ssize_t r, o0, o1, o2, st0, st1, st2, lo0, hi0, lo1, hi1, lo2, hi2
    cdef Py_ssize_t a, bb, cc, ci, i0, i1, i2
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
                        memcpy(dst + lo2 * blk2, base + i0 * g.x0 + i1 * g.x1 + (st2 + lo2) * g.x2,
                               (hi2 - lo2) * blk2 * sizeof(floating))
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


cdef int _unpack_conv(const Py_ssize_t[::1] geo, Geom* g, Py_ssize_t x_size, Py_ssize_t out_size,
                      Py_ssize_t w_size, Py_ssize_t bias_size, bint use_bias, str where) except -1:
    """_unpack for a (grouped) forward convolution: kernel ``(taps, cin // groups, cout)``."""
    cdef Py_ssize_t wexp = 0
    if geo.shape[0] == GEO_LEN and geo[3] > 0:
        wexp = geo[11] * geo[12] * geo[13] * (geo[1] // geo[3]) * geo[2]
    _unpack(geo, g, x_size, out_size, w_size, wexp, where)
    if use_bias and bias_size != g.cout:
        raise ValueError(f"{where}: bias has {bias_size} values for {g.cout} filters")
    return 0


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
    _unpack_conv(geo, &g, x.shape[0], out.shape[0], w.shape[0], bias.shape[0], use_bias, "conv_forward")
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
        _epilogue(yp + ybase + q_lo * F, q_hi - q_lo, F, F, bp, False, use_bias, act)
    else:
        _epilogue(yp + ybase + q_lo, F, q_hi - q_lo, P, bp, True, use_bias, act)


def conv_direct_forward(const floating[::1] x, const floating[::1] w, const floating[::1] bias,
                        floating[::1] out, const Py_ssize_t[::1] geo, bint use_bias, int act,
                        Py_ssize_t seg, int n_threads):
    """out = act(conv(x, w) + bias) as implicit GEMM: no im2col, one GEMM per kernel tap and
    output-row segment, reading the input rows in place (same arguments as :func:`conv_forward`).

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
    _unpack_conv(geo, &g, x.shape[0], out.shape[0], w.shape[0], bias.shape[0], use_bias, "conv_direct_forward")
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


def depthwise_forward(const floating[::1] x, const floating[::1] w, const floating[::1] bias,
                      floating[::1] out, const Py_ssize_t[::1] geo, bint use_bias, int act,
                      Py_ssize_t blk, int n_threads):
    """Depthwise convolution by direct loops: out channel ``f = c * mult + m`` reads input
    channel ``c``. ``geo`` has ``groups == cin`` and ``cout == cin * mult``; w is the Keras
    kernel ``(k0, k1, k2, cin, mult)`` flattened, i.e. ``(taps, cout)``.

    A task is a block of ``blk`` outputs of one output row (last spatial axis; channels_first:
    of one channel's row). It starts the block from the bias, then sweeps each tap over the
    block's outputs whose input is in range (``tap_output_range``: no bounds test inside), with
    the channels (channels_last) or the row's pixels (channels_first) innermost and contiguous,
    so the multiply-adds vectorise; the block stays in L1 across the taps.
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
    if blk < 1:
        raise ValueError(f"depthwise_forward: blk must be >= 1, got {blk}")
    cdef Py_ssize_t P = g.outd[0] * g.outd[1] * g.outd[2]
    if g.n == 0 or P == 0:
        return
    cdef const floating* xp = &x[0]
    cdef const floating* wp = &w[0]
    cdef const floating* bp = &bias[0] if bias.shape[0] > 0 else NULL
    cdef floating* yp = &out[0]
    cdef Py_ssize_t nblk = (g.outd[2] + blk - 1) // blk
    cdef Py_ssize_t rows = g.n * g.outd[0] * g.outd[1] * (g.cout if g.cf else 1)
    cdef Py_ssize_t task
    with nogil:
        for task in prange(rows * nblk, num_threads=n_threads, schedule="dynamic"):
            if g.cf:
                _dw_block_cf(xp, wp, bp, yp, &g, task // nblk, (task % nblk) * blk, blk, use_bias, act)
            else:
                _dw_block_cl(xp, wp, bp, yp, &g, task // nblk, (task % nblk) * blk, blk, use_bias, act)


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


cdef inline void _dw_rowtaps(floating* o, const floating* x, Py_ssize_t off, Py_ssize_t xstep,
                             Py_ssize_t tapstep, const floating* w, Py_ssize_t K2, Py_ssize_t npix,
                             Py_ssize_t C, const floating* bias, int first, int act) noexcept nogil:
    if floating is float:
        kdw_rowtaps_float(o, x, off, xstep, tapstep, w, K2, npix, C, bias, first, act)
    else:
        kdw_rowtaps_double(o, x, off, xstep, tapstep, w, K2, npix, C, bias, first, act)


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
        _bias_act_scalar(orow + q_lo * F, <floating>0, (q_hi - q_lo) * F, act)


cdef inline void _dw_border(floating* orow, const floating* xrow, const floating* wrow, Geom* g,
                            Py_ssize_t q, const floating* bias, int first, int act) noexcept nogil:
    """One border output of a row of taps: only its in-range taps along the last axis (possibly
    none: then it is just started from the bias and, on the last row of taps, activated)."""
    cdef Py_ssize_t st2, lo2, hi2, C = g.cin
    window_taps(q, g.s[2], g.pad[2], g.dil[2], g.k[2], g.ind[2], &st2, &lo2, &hi2)
    if hi2 < lo2:
        hi2 = lo2
    _dw_rowtaps(orow + q * C, xrow, (st2 + lo2 * g.dil[2]) * C if hi2 > lo2 else 0, 0, g.dil[2] * C,
                wrow + lo2 * C, hi2 - lo2, 1, C, bias, first, act)


cdef void _dw_block_cl(const floating* xp, const floating* wp, const floating* bp, floating* yp,
                       Geom* g, Py_ssize_t r, Py_ssize_t q_lo, Py_ssize_t blk, bint use_bias,
                       int act) noexcept nogil:
    """Outputs ``q_lo <= o2 < q_lo + blk`` of output row ``r`` (sample, o0, o1), channels_last.
    With multiplier 1 everything goes through the register-tiled ``kdw_rowtaps``, one call per
    in-range (k0, k1): the outputs whose taps along the last axis are all in range in one run,
    each border output with its own in-range taps. Multipliers > 1 take the per-tap sweep."""
    cdef Py_ssize_t C = g.cin, F = g.cout, K1 = g.k[1], K2 = g.k[2], s2 = g.s[2], d2 = g.dil[2]
    cdef Py_ssize_t b = r // (g.outd[0] * g.outd[1]), o0 = (r // g.outd[1]) % g.outd[0], o1 = r % g.outd[1]
    cdef Py_ssize_t q_hi = q_lo + blk, qa, qb, q, a, bb, cc, lo, hi
    cdef Py_ssize_t st0, st1, lo0, hi0, lo1, hi1
    cdef floating* orow = yp + b * g.yb + o0 * g.y0 + o1 * g.y1
    cdef const floating* xrow
    cdef const floating* wrow
    cdef const floating* bias = bp if use_bias else NULL
    cdef int first = 1, last_act
    if q_hi > g.outd[2]:
        q_hi = g.outd[2]
    window_taps(o0, g.s[0], g.pad[0], g.dil[0], g.k[0], g.ind[0], &st0, &lo0, &hi0)
    window_taps(o1, g.s[1], g.pad[1], g.dil[1], K1, g.ind[1], &st1, &lo1, &hi1)
    if F != C or lo0 >= hi0 or lo1 >= hi1:
        _dw_sweep_cl(xp, wp, bp, orow, g, b, st0, lo0, hi0, st1, lo1, hi1, q_lo, q_hi, use_bias, act)
        return
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
    for a in range(lo0, hi0):
        for bb in range(lo1, hi1):
            xrow = xp + b * g.xb + (st0 + a * g.dil[0]) * g.x0 + (st1 + bb * g.dil[1]) * g.x1
            wrow = wp + (a * K1 + bb) * K2 * F
            last_act = act if (a == hi0 - 1 and bb == hi1 - 1) else -1
            if qb > qa:
                _dw_rowtaps(orow + qa * F, xrow, (qa * s2 - g.pad[2]) * C, s2 * C, d2 * C, wrow, K2, qb - qa, C,
                            bias, first, last_act)
            for q in range(q_lo, qa):
                _dw_border(orow, xrow, wrow, g, q, bias, first, last_act)
            for q in range(qb, q_hi):
                _dw_border(orow, xrow, wrow, g, q, bias, first, last_act)
            first = 0


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
        _bias_act_scalar(orow + q_lo, <floating>0, q_hi - q_lo, act)


def separable_forward(const floating[::1] x, const floating[::1] dw, const floating[::1] pw,
                      const floating[::1] bias, floating[::1] mid, floating[::1] out,
                      const Py_ssize_t[::1] geo, bint use_bias, int act, Py_ssize_t blk, int n_threads):
    """Separable convolution, channels_last, fused per block: each task computes the depthwise
    outputs of ``blk`` pixels of one output row into ``mid`` (as :func:`depthwise_forward`, no
    bias, no activation) and, while they are still in cache, their pointwise GEMM
    ``out[pixels] = act(mid[pixels] @ pw + bias)``. One parallel region, and the intermediate
    never makes a round trip through memory.

    ``geo``: the depthwise geometry (``groups == cin``, ``cout == cin * mult``; channels_last).
    dw: ``(taps, cin * mult)`` flattened; pw: ``(cin * mult, filters)``; mid: caller-allocated
    scratch of ``n * out_pixels * cin * mult``; out: ``n * out_pixels * filters``; bias:
    ``(filters,)``. The caller holds BLAS to one thread when ``n_threads > 1``.
    """
    cdef Geom g
    cdef Py_ssize_t wexp = 0
    if geo.shape[0] == GEO_LEN:
        wexp = geo[11] * geo[12] * geo[13] * geo[2]
    _unpack(geo, &g, x.shape[0], mid.shape[0], dw.shape[0], wexp, "separable_forward")
    if g.groups != g.cin:
        raise ValueError(f"separable_forward: groups ({g.groups}) must equal cin ({g.cin})")
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
            _epilogue(yp + pix * F, q_hi - q_lo, F, F, bp, False, use_bias, act)


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
