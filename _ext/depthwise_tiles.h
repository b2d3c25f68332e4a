/* The depthwise convolution's register-tiled inner loop (used by depthwise.pyx), one variant
 * per rung of the CPU-feature ladder (cpu_features.h), picked by kdw_use(level). GCC's generic
 * vectors are only lowered well at the width the function is compiled for, hence one variant
 * per ISA (pixels x vectors: baseline SSE2 2 x 2 of 16 B, AVX2 4 x 2 of 32 B, AVX-512 6 x 2 of
 * 64 B; short runs 2 x U2 and 1 x U1), under the ladder's target attributes. Channels left over from the tiles go one vector at a time,
 * then scalar. */
#ifndef KLAYERS_DEPTHWISE_TILES_H
#define KLAYERS_DEPTHWISE_TILES_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "activation_codes.h"
#include "cpu_features.h"

/* The whole window at once: every in-range row of taps (``nr`` of them: input rows ``xr[r]``,
   weight rows ``wr[r] + woff``, K2 taps each) accumulates into registers, so each output is
   stored once, with its bias and relu / relu6 (other codes: the caller maps the block after).
   Tiles of QP pixels x U vectors; each tap's weight vectors feed QP pixels. */
#define KDWW_TILE(T, VT, VU, MT, U, QP)                                                           \
    {                                                                                             \
        VT acc[QP][U];                                                                            \
        _Pragma("GCC unroll 8") for (int u = 0; u < U; u++) {                                                             \
            VT b0 = zero;                                                                         \
            if (bias) b0 = *(const VU*)(bias + c + u * L);                                        \
            _Pragma("GCC unroll 8") for (int p = 0; p < QP; p++) acc[p][u] = b0;                                          \
        }                                                                                         \
        for (int r = 0; r < nr; r++) {                                                            \
            const T* xs0 = xr[r] + off + q * xstep + c;                                           \
            const T* ws0 = wr[r] + woff + c;                                                      \
            for (ptrdiff_t t = 0; t < K2; t++) {                                                  \
                VT wv[U];                                                                         \
                _Pragma("GCC unroll 8") for (int u = 0; u < U; u++) wv[u] = *(const VU*)(ws0 + t * C + u * L);            \
                _Pragma("GCC unroll 8") for (int p = 0; p < QP; p++) {                                                    \
                    const T* xs = xs0 + p * xstep + t * tapstep;                                  \
                    _Pragma("GCC unroll 8") for (int u = 0; u < U; u++) acc[p][u] += *(const VU*)(xs + u * L) * wv[u];    \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        _Pragma("GCC unroll 8") for (int p = 0; p < QP; p++) _Pragma("GCC unroll 8") for (int u = 0; u < U; u++) {                                \
            VT v = acc[p][u];                                                                     \
            if (act == KL_ACT_RELU || act == KL_ACT_RELU6) v = (VT)(~(MT)(v < zero) & (MT)v);     \
            if (act == KL_ACT_RELU6) {                                                            \
                MT m = (MT)(v > six);                                                             \
                v = (VT)((m & (MT)six) | (~m & (MT)v));                                           \
            }                                                                                     \
            *(VU*)(o + (q + p) * C + c + u * L) = v;                                              \
        }                                                                                         \
    }

/* Pixels go QP at a time (U vectors of channels each), then two at a time (U2 vectors), then
   one (U1 vectors): a short run (a small map, a border pixel) still keeps QP x U independent
   accumulators in flight instead of waiting on one chain of adds per vector. */
#define KDWW_BODY(T, VT, VU, MT, VS, U, QP, U2, U1)                                               \
    enum { L = VS / (int)sizeof(T) };                                                             \
    const VT zero = {0}, six = zero + (T)6;                                                       \
    const ptrdiff_t c_vecs = C - C % L;                                                           \
    ptrdiff_t q = 0, c;                                                                           \
    for (; q + QP <= npix; q += QP) {                                                             \
        for (c = 0; c + U * L <= c_vecs; c += U * L) KDWW_TILE(T, VT, VU, MT, U, QP)              \
        for (; c < c_vecs; c += L) KDWW_TILE(T, VT, VU, MT, 1, QP)                                \
    }                                                                                             \
    for (; q + 2 <= npix; q += 2) {                                                               \
        for (c = 0; c + U2 * L <= c_vecs; c += U2 * L) KDWW_TILE(T, VT, VU, MT, U2, 2)            \
        for (; c < c_vecs; c += L) KDWW_TILE(T, VT, VU, MT, 1, 2)                                 \
    }                                                                                             \
    for (; q < npix; q++) {                                                                       \
        for (c = 0; c + U1 * L <= c_vecs; c += U1 * L) KDWW_TILE(T, VT, VU, MT, U1, 1)            \
        for (; c < c_vecs; c += L) KDWW_TILE(T, VT, VU, MT, 1, 1)                                 \
    }                                                                                             \
    if (c_vecs < C) KDWW_SCALAR_TAIL(T, c_vecs)

#define KDWW_SCALAR_TAIL(T, c_from)                                                               \
    for (ptrdiff_t qq = 0; qq < npix; qq++) {                                                     \
        for (ptrdiff_t cc = (c_from); cc < C; cc++) {                                             \
            T v = bias ? bias[cc] : (T)0;                                                         \
            for (int r = 0; r < nr; r++) {                                                        \
                const T* xs = xr[r] + off + qq * xstep + cc;                                      \
                const T* ws = wr[r] + woff + cc;                                                  \
                for (ptrdiff_t t = 0; t < K2; t++) v += xs[t * tapstep] * ws[t * C];              \
            }                                                                                     \
            if (act == KL_ACT_RELU || act == KL_ACT_RELU6) v = v < 0 ? 0 : v;                     \
            if (act == KL_ACT_RELU6) v = v > 6 ? 6 : v;                                           \
            o[qq * C + cc] = v;                                                                   \
        }                                                                                         \
    }

#define KDWW_DEFINE(T, I, SUF, ATTR, VS, U, QP, U2, U1)                                           \
    ATTR static void kdw_window_##T##_##SUF(T* o, const T* const* xr, const T* const* wr, int nr, \
            ptrdiff_t off, ptrdiff_t woff, ptrdiff_t xstep, ptrdiff_t tapstep, ptrdiff_t K2,      \
            ptrdiff_t npix, ptrdiff_t C, const T* bias, int act)                                  \
    { KDWW_BODY(T, kdw_##T##_v_##SUF, kdw_##T##_u_##SUF, kdw_##T##_m_##SUF, VS, U, QP, U2, U1) }

typedef void (*kdww_float_t)(float*, const float* const*, const float* const*, int, ptrdiff_t, ptrdiff_t,
                             ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float*, int);
typedef void (*kdww_double_t)(double*, const double* const*, const double* const*, int, ptrdiff_t, ptrdiff_t,
                              ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const double*, int);

#define KDW_TYPES(T, I, SUF, VS)                                                                  \
    typedef T kdw_##T##_v_##SUF __attribute__((vector_size(VS)));                                 \
    typedef T kdw_##T##_u_##SUF __attribute__((vector_size(VS), aligned(sizeof(T)), may_alias));  \
    typedef I kdw_##T##_m_##SUF __attribute__((vector_size(VS)));

#if defined(__GNUC__) || defined(__clang__)
KDW_TYPES(float, int32_t, base, 16)
KDW_TYPES(double, int64_t, base, 16)
KDWW_DEFINE(float, int32_t, base, , 16, 2, 2, 2, 4)
KDWW_DEFINE(double, int64_t, base, , 16, 2, 2, 2, 4)
#if KL_MULTIVERSION && defined(__x86_64__)
#define KDW_MULTIVERSION 1
KDW_TYPES(float, int32_t, avx2, 32)
KDW_TYPES(double, int64_t, avx2, 32)
KDW_TYPES(float, int32_t, avx512, 64)
KDW_TYPES(double, int64_t, avx512, 64)
KDWW_DEFINE(float, int32_t, avx2, KL_TARGET_AVX2, 32, 2, 4, 3, 6)
KDWW_DEFINE(double, int64_t, avx2, KL_TARGET_AVX2, 32, 2, 4, 3, 6)
KDWW_DEFINE(float, int32_t, avx512, KL_TARGET_AVX512, 64, 2, 6, 6, 8)
KDWW_DEFINE(double, int64_t, avx512, KL_TARGET_AVX512, 64, 2, 6, 6, 8)
#else
#define KDW_MULTIVERSION 0
#endif
#else
#define KDW_MULTIVERSION 0
/* no GCC vectors: plain loops */
#define KDWW_SCALAR(T)                                                                            \
    static void kdw_window_##T##_base(T* o, const T* const* xr, const T* const* wr, int nr,       \
            ptrdiff_t off, ptrdiff_t woff, ptrdiff_t xstep, ptrdiff_t tapstep, ptrdiff_t K2,      \
            ptrdiff_t npix, ptrdiff_t C, const T* bias, int act) { KDWW_SCALAR_TAIL(T, 0) }
KDWW_SCALAR(float)
KDWW_SCALAR(double)
#endif

static kdww_float_t kdw_window_float = kdw_window_float_base;
static kdww_double_t kdw_window_double = kdw_window_double_base;

/* Use the variant of ladder level ``level`` (cpu_features.h; kl_cpu_level checked the CPU). */
static void kdw_use(int level) {
    KL_PICK(KDW_MULTIVERSION, kdw_window_float, kdw_window_float, level);
    KL_PICK(KDW_MULTIVERSION, kdw_window_double, kdw_window_double, level);
}
#endif
