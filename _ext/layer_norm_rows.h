/* Layer-normalization rows and per-channel affine maps (used by norm.pyx), one variant per rung
 * of the CPU-feature ladder (cpu_features.h), picked by kln_use(level). */
#ifndef KLAYERS_LAYER_NORM_ROWS_H
#define KLAYERS_LAYER_NORM_ROWS_H
#include <math.h>
#include <stddef.h>
#include "cpu_features.h"

#if defined(_OPENMP)
#define KLN_SIMD_SUM _Pragma("omp simd reduction(+:s)")
#define KLN_SIMD _Pragma("omp simd")
#else
#define KLN_SIMD_SUM
#define KLN_SIMD
#endif

/* g or b may be NULL (scale=False / center=False). The two sums accumulate in double
   (ACC) for float32 too: a long row (N in the millions) keeps its mean and variance
   accurate, and the row sits in L1 so the wider adds cost little. */
#define KLN_ROW_BODY(T, ACC, SQRT)                                             \
    ACC s = 0;                                                                 \
    KLN_SIMD_SUM                                                               \
    for (ptrdiff_t i = 0; i < n; i++) s += (ACC)x[i];                          \
    const T mean = (T)(s / (ACC)n);                                            \
    s = 0;                                                                     \
    KLN_SIMD_SUM                                                               \
    for (ptrdiff_t i = 0; i < n; i++) { ACC d = (ACC)x[i] - (ACC)mean; s += d * d; } \
    const T rstd = (T)1 / SQRT((T)(s / (ACC)n) + eps);                         \
    if (g && b) {                                                              \
        KLN_SIMD                                                               \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = (x[i] - mean) * rstd * g[i] + b[i]; \
    } else if (g) {                                                            \
        KLN_SIMD                                                               \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = (x[i] - mean) * rstd * g[i]; \
    } else if (b) {                                                            \
        KLN_SIMD                                                               \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = (x[i] - mean) * rstd + b[i]; \
    } else {                                                                   \
        KLN_SIMD                                                               \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = (x[i] - mean) * rstd;       \
    }

#define KLN_DEFINE(SUFFIX, ATTR)                                                     \
    ATTR static void kln_row_f32_##SUFFIX(const float* x, const float* g, const float* b, \
                                          float* out, ptrdiff_t n, float eps)        \
    { KLN_ROW_BODY(float, double, sqrtf) }                                                   \
    ATTR static void kln_row_f64_##SUFFIX(const double* x, const double* g, const double* b, \
                                          double* out, ptrdiff_t n, double eps)      \
    { KLN_ROW_BODY(double, double, sqrt) }                                                   \
    ATTR static void kaf_vec_f32_##SUFFIX(const float* x, const float* a, const float* b, \
                                          float* out, ptrdiff_t n)                   \
    { KLN_SIMD for (ptrdiff_t i = 0; i < n; i++) out[i] = x[i] * a[i] + b[i]; }      \
    ATTR static void kaf_vec_f64_##SUFFIX(const double* x, const double* a, const double* b, \
                                          double* out, ptrdiff_t n)                  \
    { KLN_SIMD for (ptrdiff_t i = 0; i < n; i++) out[i] = x[i] * a[i] + b[i]; }      \
    ATTR static void kaf_one_f32_##SUFFIX(const float* x, float a, float b, float* out, ptrdiff_t n) \
    { KLN_SIMD for (ptrdiff_t i = 0; i < n; i++) out[i] = x[i] * a + b; }            \
    ATTR static void kaf_one_f64_##SUFFIX(const double* x, double a, double b, double* out, ptrdiff_t n) \
    { KLN_SIMD for (ptrdiff_t i = 0; i < n; i++) out[i] = x[i] * a + b; }

KLN_DEFINE(base, )
#if KL_MULTIVERSION
#define KLN_MULTIVERSION 1
KLN_DEFINE(avx2, KL_TARGET_AVX2)
KLN_DEFINE(avx512, KL_TARGET_AVX512)
#else
#define KLN_MULTIVERSION 0
#endif

typedef void (*kln_row_f32_t)(const float*, const float*, const float*, float*, ptrdiff_t, float);
typedef void (*kln_row_f64_t)(const double*, const double*, const double*, double*, ptrdiff_t, double);
typedef void (*kaf_vec_f32_t)(const float*, const float*, const float*, float*, ptrdiff_t);
typedef void (*kaf_vec_f64_t)(const double*, const double*, const double*, double*, ptrdiff_t);
typedef void (*kaf_one_f32_t)(const float*, float, float, float*, ptrdiff_t);
typedef void (*kaf_one_f64_t)(const double*, double, double, double*, ptrdiff_t);
static kln_row_f32_t kln_row_f32 = kln_row_f32_base;
static kln_row_f64_t kln_row_f64 = kln_row_f64_base;
static kaf_vec_f32_t kaf_vec_f32 = kaf_vec_f32_base;
static kaf_vec_f64_t kaf_vec_f64 = kaf_vec_f64_base;
static kaf_one_f32_t kaf_one_f32 = kaf_one_f32_base;
static kaf_one_f64_t kaf_one_f64 = kaf_one_f64_base;

#define KLN_USE(SUFFIX)                                                         \
    kln_row_f32 = kln_row_f32_##SUFFIX; kln_row_f64 = kln_row_f64_##SUFFIX;     \
    kaf_vec_f32 = kaf_vec_f32_##SUFFIX; kaf_vec_f64 = kaf_vec_f64_##SUFFIX;     \
    kaf_one_f32 = kaf_one_f32_##SUFFIX; kaf_one_f64 = kaf_one_f64_##SUFFIX;

/* Use the variants of ladder level ``level`` (cpu_features.h; kl_cpu_level checked the CPU). */
static void kln_use(int level) {
    KLN_USE(base)
#if KLN_MULTIVERSION
    if (level >= KL_ISA_AVX512) {
        KLN_USE(avx512)
    } else if (level >= KL_ISA_AVX2) {
        KLN_USE(avx2)
    }
#else
    (void)level;
#endif
}
#endif
