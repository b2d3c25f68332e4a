/* Column sums of a block of rows for the global average pooling (pooling.pyx): acc[c] = sum of
 * x[s * C + c] over s_lo <= s < s_hi, each channel summed in row order (the same additions, in
 * the same order, as a plain loop). Channels go NV vectors at a time with the sums held in
 * registers across the rows (a plain loop loads and stores every sum at every row); one variant
 * per rung of the CPU-feature ladder (cpu_features.h), picked by kgp_use(level). */
#ifndef KLAYERS_POOL_ROWS_H
#define KLAYERS_POOL_ROWS_H
#include <stddef.h>
#include "cpu_features.h"

#define KGP_BLOCK(T, V, U, L, NV)                                                                 \
    for (; c + NV * L <= C; c += NV * L) {                                                        \
        V a[NV];                                                                                  \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) a[v] = (V){0};                       \
        for (ptrdiff_t s = s_lo; s < s_hi; s++) {                                                 \
            const T* xr = x + s * C + c;                                                          \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) a[v] += *(const U*)(xr + v * L); \
        }                                                                                         \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) *(U*)(acc + c + v * L) = a[v];       \
    }

#define KGP_DEFINE(T, SUF, ATTR, VS)                                                              \
    typedef T kgp_##T##_v_##SUF __attribute__((vector_size(VS)));                                 \
    typedef T kgp_##T##_u_##SUF __attribute__((vector_size(VS), aligned(sizeof(T)), may_alias));  \
    ATTR static void kgp_sum_##T##_##SUF(const T* x, ptrdiff_t s_lo, ptrdiff_t s_hi, ptrdiff_t C, \
                                         T* acc) {                                                \
        enum { L = VS / sizeof(T) };                                                              \
        ptrdiff_t c = 0;                                                                          \
        KGP_BLOCK(T, kgp_##T##_v_##SUF, kgp_##T##_u_##SUF, L, 8)                                  \
        KGP_BLOCK(T, kgp_##T##_v_##SUF, kgp_##T##_u_##SUF, L, 1)                                  \
        for (; c < C; c++) {                                                                      \
            T a = 0;                                                                              \
            for (ptrdiff_t s = s_lo; s < s_hi; s++) a += x[s * C + c];                            \
            acc[c] = a;                                                                           \
        }                                                                                         \
    }

typedef void (*kgp_float_t)(const float*, ptrdiff_t, ptrdiff_t, ptrdiff_t, float*);
typedef void (*kgp_double_t)(const double*, ptrdiff_t, ptrdiff_t, ptrdiff_t, double*);

#if defined(__GNUC__) || defined(__clang__)
KGP_DEFINE(float, base, , 16)
KGP_DEFINE(double, base, , 16)
#if KL_MULTIVERSION && defined(__x86_64__)
#define KGP_MULTIVERSION 1
KGP_DEFINE(float, avx2, KL_TARGET_AVX2, 32)
KGP_DEFINE(double, avx2, KL_TARGET_AVX2, 32)
KGP_DEFINE(float, avx512, KL_TARGET_AVX512, 64)
KGP_DEFINE(double, avx512, KL_TARGET_AVX512, 64)
#else
#define KGP_MULTIVERSION 0
#endif
#else
#define KGP_MULTIVERSION 0
#define KGP_SCALAR(T)                                                                             \
    static void kgp_sum_##T##_base(const T* x, ptrdiff_t s_lo, ptrdiff_t s_hi, ptrdiff_t C, T* acc) { \
        for (ptrdiff_t c = 0; c < C; c++) {                                                       \
            T a = 0;                                                                              \
            for (ptrdiff_t s = s_lo; s < s_hi; s++) a += x[s * C + c];                            \
            acc[c] = a;                                                                           \
        }                                                                                         \
    }
KGP_SCALAR(float)
KGP_SCALAR(double)
#endif

static kgp_float_t kgp_sum_float = kgp_sum_float_base;
static kgp_double_t kgp_sum_double = kgp_sum_double_base;

/* Use the variant of ladder level ``level`` (cpu_features.h; kl_cpu_level checked the CPU). */
static void kgp_use(int level) {
    KL_PICK(KGP_MULTIVERSION, kgp_sum_float, kgp_sum_float, level);
    KL_PICK(KGP_MULTIVERSION, kgp_sum_double, kgp_sum_double, level);
}
#endif
