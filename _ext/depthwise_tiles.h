/* The depthwise convolution's register-tiled inner loop (used by depthwise.pyx), one variant
 * per rung of the CPU-feature ladder (cpu_features.h), picked by kdw_use(level). */
#ifndef KLAYERS_DEPTHWISE_TILES_H
#define KLAYERS_DEPTHWISE_TILES_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "activation_codes.h"
#include "cpu_features.h"

/* One row of depthwise taps (k0, k1 fixed, every k2) over a run of interior outputs,
   channels_last, multiplier 1. Per output pixel and tile of channels the accumulators stay
   in registers across the K2 taps: one load and one store of the output per row of taps
   instead of one per tap. ``first``: start from ``bias`` (or 0); ``act`` >= 0: apply that
   activation code (the last row of taps). Tiles are QP pixels x U vectors of VS bytes; GCC's
   generic vectors are only lowered well at the width the function is compiled for, hence
   one variant per ISA (baseline SSE2 2 x 4 x 16 B; AVX2 4 x 2 x 32 B and AVX-512
   4 x 2 x 64 B under the ladder's target attributes, picked at import by ``kdw_use``).
   Channels left over from the tiles go one vector at a time, then scalar. */
#define KDW_TILE(T, VT, VU, MT, U, QP)                                                            \
    {                                                                                             \
        VT acc[QP][U], wv[U];                                                                     \
        if (!first) {                                                                             \
            for (int p = 0; p < QP; p++) for (int u = 0; u < U; u++)                              \
                acc[p][u] = *(const VU*)(o + (q + p) * C + c + u * L);                            \
        } else if (bias) {                                                                        \
            for (int p = 0; p < QP; p++) for (int u = 0; u < U; u++)                              \
                acc[p][u] = *(const VU*)(bias + c + u * L);                                       \
        } else {                                                                                  \
            for (int p = 0; p < QP; p++) for (int u = 0; u < U; u++) acc[p][u] = zero;            \
        }                                                                                         \
        for (ptrdiff_t t = 0; t < K2; t++) {                                                      \
            for (int u = 0; u < U; u++) wv[u] = *(const VU*)(w + t * C + c + u * L);              \
            for (int p = 0; p < QP; p++) {                                                        \
                const T* xs = x + off + (q + p) * xstep + t * tapstep + c;                        \
                for (int u = 0; u < U; u++) acc[p][u] += *(const VU*)(xs + u * L) * wv[u];        \
            }                                                                                     \
        }                                                                                         \
        for (int p = 0; p < QP; p++) for (int u = 0; u < U; u++) {                                \
            VT v = acc[p][u];                                                                     \
            if (act == KL_ACT_RELU) {                                                             \
                v = (VT)(~(MT)(v < zero) & (MT)v);                                                \
            } else if (act == KL_ACT_RELU6) {                                                     \
                v = (VT)(~(MT)(v < zero) & (MT)v);                                                \
                MT m = (MT)(v > six);                                                             \
                v = (VT)((m & (MT)six) | (~m & (MT)v));                                           \
            }                                                                                     \
            *(VU*)(o + (q + p) * C + c + u * L) = v;                                              \
        }                                                                                         \
    }

/* QP pixels x U vectors of accumulators: enough independent FMA chains to hide the add
   latency (with one pixel at a time the taps' adds wait on each other: 2.5x slower). */
#define KDW_BODY(T, VT, VU, MT, VS, U, QP)                                                        \
    enum { L = VS / (int)sizeof(T), TL = L * U };                                                 \
    const VT zero = {0}, six = zero + (T)6;                                                       \
    const ptrdiff_t c_tiles = C - C % TL, c_vecs = C - C % L;                                     \
    ptrdiff_t q = 0, c;                                                                           \
    for (; q + QP <= npix; q += QP) {                                                             \
        for (c = 0; c < c_tiles; c += TL) KDW_TILE(T, VT, VU, MT, U, QP)                          \
        for (; c < c_vecs; c += L) KDW_TILE(T, VT, VU, MT, 1, QP)                                 \
    }                                                                                             \
    for (; q < npix; q++) {                                                                       \
        for (c = 0; c < c_tiles; c += TL) KDW_TILE(T, VT, VU, MT, U, 1)                           \
        for (; c < c_vecs; c += L) KDW_TILE(T, VT, VU, MT, 1, 1)                                  \
    }                                                                                             \
    if (c_vecs < C) {                                                                             \
        for (q = 0; q < npix; q++) {                                                              \
            const T* xq = x + off + q * xstep;                                                    \
            T* oq = o + q * C;                                                                    \
            for (c = c_vecs; c < C; c++) {                                                        \
                T v = first ? (bias ? bias[c] : (T)0) : oq[c];                                    \
                for (ptrdiff_t t = 0; t < K2; t++) v += xq[t * tapstep + c] * w[t * C + c];       \
                if (act == KL_ACT_RELU) v = v < 0 ? 0 : v;                                        \
                else if (act == KL_ACT_RELU6) { v = v < 0 ? 0 : v; v = v > 6 ? 6 : v; }           \
                oq[c] = v;                                                                        \
            }                                                                                     \
        }                                                                                         \
    }

#define KDW_DEFINE(T, I, SUF, ATTR, VS, U, QP)                                                    \
    typedef T kdw_##T##_v_##SUF __attribute__((vector_size(VS)));                                 \
    typedef T kdw_##T##_u_##SUF __attribute__((vector_size(VS), aligned(sizeof(T)), may_alias));  \
    typedef I kdw_##T##_m_##SUF __attribute__((vector_size(VS)));                                 \
    ATTR static void kdw_rowtaps_##T##_##SUF(T* o, const T* x, ptrdiff_t off, ptrdiff_t xstep,    \
            ptrdiff_t tapstep, const T* w, ptrdiff_t K2, ptrdiff_t npix, ptrdiff_t C,             \
            const T* bias, int first, int act)                                                    \
    { KDW_BODY(T, kdw_##T##_v_##SUF, kdw_##T##_u_##SUF, kdw_##T##_m_##SUF, VS, U, QP) }

typedef void (*kdw_float_t)(float*, const float*, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float*,
                            ptrdiff_t, ptrdiff_t, ptrdiff_t, const float*, int, int);
typedef void (*kdw_double_t)(double*, const double*, ptrdiff_t, ptrdiff_t, ptrdiff_t, const double*,
                             ptrdiff_t, ptrdiff_t, ptrdiff_t, const double*, int, int);
#if defined(__GNUC__) || defined(__clang__)
KDW_DEFINE(float, int32_t, base, , 16, 4, 2)
KDW_DEFINE(double, int64_t, base, , 16, 4, 2)
#if KL_MULTIVERSION && defined(__x86_64__)
#define KDW_MULTIVERSION 1
KDW_DEFINE(float, int32_t, avx2, KL_TARGET_AVX2, 32, 2, 4)
KDW_DEFINE(double, int64_t, avx2, KL_TARGET_AVX2, 32, 2, 4)
KDW_DEFINE(float, int32_t, avx512, KL_TARGET_AVX512, 64, 2, 4)
KDW_DEFINE(double, int64_t, avx512, KL_TARGET_AVX512, 64, 2, 4)
#else
#define KDW_MULTIVERSION 0
#endif
#else
#define KDW_MULTIVERSION 0
/* no GCC vectors: plain loops */
#define KDW_SCALAR(T)                                                                             \
    static void kdw_rowtaps_##T##_base(T* o, const T* x, ptrdiff_t off, ptrdiff_t xstep,          \
            ptrdiff_t tapstep, const T* w, ptrdiff_t K2, ptrdiff_t npix, ptrdiff_t C,             \
            const T* bias, int first, int act) {                                                  \
        for (ptrdiff_t q = 0; q < npix; q++) {                                                    \
            const T* xq = x + off + q * xstep;                                                    \
            T* oq = o + q * C;                                                                    \
            for (ptrdiff_t c = 0; c < C; c++) {                                                   \
                T v = first ? (bias ? bias[c] : (T)0) : oq[c];                                    \
                for (ptrdiff_t t = 0; t < K2; t++) v += xq[t * tapstep + c] * w[t * C + c];       \
                if (act == KL_ACT_RELU) v = v < 0 ? 0 : v;                                        \
                else if (act == KL_ACT_RELU6) { v = v < 0 ? 0 : v; v = v > 6 ? 6 : v; }           \
                oq[c] = v;                                                                        \
            }                                                                                     \
        }                                                                                         \
    }
KDW_SCALAR(float)
KDW_SCALAR(double)
#endif

static kdw_float_t kdw_rowtaps_float = kdw_rowtaps_float_base;
static kdw_double_t kdw_rowtaps_double = kdw_rowtaps_double_base;

/* Use the variant of ladder level ``level`` (cpu_features.h; kl_cpu_level checked the CPU). */
static void kdw_use(int level) {
    kdw_rowtaps_float = kdw_rowtaps_float_base;
    kdw_rowtaps_double = kdw_rowtaps_double_base;
#if KDW_MULTIVERSION
    if (level >= KL_ISA_AVX512) {
        kdw_rowtaps_float = kdw_rowtaps_float_avx512;
        kdw_rowtaps_double = kdw_rowtaps_double_avx512;
    } else if (level >= KL_ISA_AVX2) {
        kdw_rowtaps_float = kdw_rowtaps_float_avx2;
        kdw_rowtaps_double = kdw_rowtaps_double_avx2;
    }
#else
    (void)level;
#endif
}
#endif
