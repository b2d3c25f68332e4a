/* Softmax rows and column blocks (used by softmax.pyx): a vectorisable float32 exp and the
 * three-pass loops, one variant per rung of the CPU-feature ladder (cpu_features.h), picked by
 * ksm_use(level). The AVX-512 float32 row, the hot case, is written in intrinsics. */
#ifndef KLAYERS_SOFTMAX_ROWS_H
#define KLAYERS_SOFTMAX_ROWS_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stddef.h>
#include "cpu_features.h"

/* exp(t) for t <= 0, -inf or NaN (t = x - max). Below -87 the result (< 1.7e-38) is 0,
   which also gives exp(-inf) = 0: there the reduction below yields garbage bits, which
   the final mask clears. NaN stays NaN (NaN < -87 is false, and the polynomial of NaN
   is NaN). Written with an integer mask instead of ?: because GCC does not if-convert
   (so does not vectorise) a conditional float multiply under its default
   -ftrapping-math. Cephes's expf: Cody-Waite reduction by ln 2, degree-6 polynomial. */
static inline float ksm_expf(float t) {
    union { float f; uint32_t u; } v, y;
    uint32_t under = (uint32_t)0 - (uint32_t)(t < -87.0f);
    float n = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  /* round(t/ln2) */
    float r = t - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v.f = n + 8388735.0f;  /* n + 127 sits in the low mantissa bits of n + 2^23 + 127 */
    v.u <<= 23;            /* 2^n for -126 <= n <= 0 */
    y.f = p * v.f;
    y.u &= ~under;
    return y.f;
}

#if defined(_OPENMP)
#define KSM_SIMD_MAX _Pragma("omp simd reduction(max:m)")
#define KSM_SIMD_SUM _Pragma("omp simd reduction(+:s)")
#define KSM_SIMD _Pragma("omp simd")
#else
#define KSM_SIMD_MAX
#define KSM_SIMD_SUM
#define KSM_SIMD
#endif

/* One row of n values. The max ignores NaN (NaN > m is false); a NaN then makes the sum
   NaN and with it the whole row, as +inf does (inf - inf) and an all -inf row does. */
#define KSM_ROW_BODY(T, EXP, NEG_INF)                                      \
    T m = NEG_INF;                                                         \
    KSM_SIMD_MAX                                                           \
    for (ptrdiff_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;             \
    T s = 0;                                                               \
    KSM_SIMD_SUM                                                           \
    for (ptrdiff_t i = 0; i < n; i++) { T e = EXP(x[i] - m); out[i] = e; s += e; } \
    T inv = (T)1 / s;                                                      \
    KSM_SIMD                                                               \
    for (ptrdiff_t i = 0; i < n; i++) out[i] *= inv;

/* Columns [0, q) of a (n, ld) block: softmax along n for each column; m and s are
   scratch of q values. */
#define KSM_COLS_BODY(T, EXP, NEG_INF)                                     \
    KSM_SIMD                                                               \
    for (ptrdiff_t j = 0; j < q; j++) { m[j] = NEG_INF; s[j] = 0; }       \
    for (ptrdiff_t k = 0; k < n; k++) {                                    \
        const T* xr = x + k * ld;                                          \
        KSM_SIMD                                                           \
        for (ptrdiff_t j = 0; j < q; j++) m[j] = xr[j] > m[j] ? xr[j] : m[j]; \
    }                                                                      \
    for (ptrdiff_t k = 0; k < n; k++) {                                    \
        const T* xr = x + k * ld; T* orow = out + k * ld;                  \
        KSM_SIMD                                                           \
        for (ptrdiff_t j = 0; j < q; j++) { T e = EXP(xr[j] - m[j]); orow[j] = e; s[j] += e; } \
    }                                                                      \
    KSM_SIMD                                                               \
    for (ptrdiff_t j = 0; j < q; j++) s[j] = (T)1 / s[j];                 \
    for (ptrdiff_t k = 0; k < n; k++) {                                    \
        T* orow = out + k * ld;                                            \
        KSM_SIMD                                                           \
        for (ptrdiff_t j = 0; j < q; j++) orow[j] *= s[j];                 \
    }

#define KSM_DEFINE_ROW_F32(SUFFIX, ATTR)                                           \
    ATTR static void ksm_row_f32_##SUFFIX(const float* x, float* out, ptrdiff_t n) \
    { KSM_ROW_BODY(float, ksm_expf, -INFINITY) }
#define KSM_DEFINE(SUFFIX, ATTR)                                                   \
    ATTR static void ksm_row_f64_##SUFFIX(const double* x, double* out, ptrdiff_t n) \
    { KSM_ROW_BODY(double, exp, -INFINITY) }                                       \
    ATTR static void ksm_cols_f32_##SUFFIX(const float* x, float* out, ptrdiff_t n, \
                                           ptrdiff_t q, ptrdiff_t ld, float* m, float* s) \
    { KSM_COLS_BODY(float, ksm_expf, -INFINITY) }                                  \
    ATTR static void ksm_cols_f64_##SUFFIX(const double* x, double* out, ptrdiff_t n, \
                                           ptrdiff_t q, ptrdiff_t ld, double* m, double* s) \
    { KSM_COLS_BODY(double, exp, -INFINITY) }

KSM_DEFINE_ROW_F32(base, )
KSM_DEFINE(base, )
#if KL_MULTIVERSION
#define KSM_MULTIVERSION 1
#include <immintrin.h>
KSM_DEFINE_ROW_F32(avx2, KL_TARGET_AVX2)
KSM_DEFINE(avx2, KL_TARGET_AVX2)
KSM_DEFINE(avx512, KL_TARGET_AVX512)

/* The float32 row, the hot case, in AVX-512 intrinsics: the same algorithm and constants
   as ksm_expf, with vrndscaleps for the rounding and vscalefps for p * 2^n (about 12 %
   fewer instructions than what GCC makes of the portable code). Masked loads and stores
   take the tail; the max pass fills masked lanes with -inf. */
KL_TARGET_AVX512 static inline __m512 ksm_exp512(__m512 t) {
    __mmask16 keep = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-87.0f), _CMP_NLT_UQ);  /* NaN kept */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), t);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps(keep, p, n);  /* 0 below -87, so exp(-inf) = 0 */
}

KL_TARGET_AVX512 static void ksm_row_f32_avx512(const float* x, float* out, ptrdiff_t n) {
    const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
    ptrdiff_t i, full = n & ~(ptrdiff_t)15;
    __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1u);
    /* max ignores NaN (vmaxps returns its second operand then); the sum below is NaN */
    __m512 vm = neg_inf;
    for (i = 0; i < full; i += 16) vm = _mm512_max_ps(_mm512_loadu_ps(x + i), vm);
    if (tail) vm = _mm512_max_ps(_mm512_mask_loadu_ps(neg_inf, tail, x + i), vm);
    __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vm));
    __m512 vs = _mm512_setzero_ps();
    for (i = 0; i < full; i += 16) {
        __m512 e = ksm_exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
        _mm512_storeu_ps(out + i, e);
        vs = _mm512_add_ps(vs, e);
    }
    if (tail) {
        __m512 e = ksm_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), m));
        _mm512_mask_storeu_ps(out + i, tail, e);
        vs = _mm512_mask_add_ps(vs, tail, vs, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vs));
    for (i = 0; i < full; i += 16) _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(out + i), inv));
    if (tail) _mm512_mask_storeu_ps(out + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, out + i), inv));
}
#else
#define KSM_MULTIVERSION 0
#endif

typedef void (*ksm_row_f32_t)(const float*, float*, ptrdiff_t);
typedef void (*ksm_row_f64_t)(const double*, double*, ptrdiff_t);
typedef void (*ksm_cols_f32_t)(const float*, float*, ptrdiff_t, ptrdiff_t, ptrdiff_t, float*, float*);
typedef void (*ksm_cols_f64_t)(const double*, double*, ptrdiff_t, ptrdiff_t, ptrdiff_t, double*, double*);
static ksm_row_f32_t ksm_row_f32 = ksm_row_f32_base;
static ksm_row_f64_t ksm_row_f64 = ksm_row_f64_base;
static ksm_cols_f32_t ksm_cols_f32 = ksm_cols_f32_base;
static ksm_cols_f64_t ksm_cols_f64 = ksm_cols_f64_base;
/* Use the variants of ladder level ``level`` (cpu_features.h; kl_cpu_level checked the CPU). */
static void ksm_use(int level) {
    ksm_row_f32 = ksm_row_f32_base; ksm_row_f64 = ksm_row_f64_base;
    ksm_cols_f32 = ksm_cols_f32_base; ksm_cols_f64 = ksm_cols_f64_base;
#if KSM_MULTIVERSION
    if (level >= KL_ISA_AVX512) {
        ksm_row_f32 = ksm_row_f32_avx512; ksm_row_f64 = ksm_row_f64_avx512;
        ksm_cols_f32 = ksm_cols_f32_avx512; ksm_cols_f64 = ksm_cols_f64_avx512;
    } else if (level >= KL_ISA_AVX2) {
        ksm_row_f32 = ksm_row_f32_avx2; ksm_row_f64 = ksm_row_f64_avx2;
        ksm_cols_f32 = ksm_cols_f32_avx2; ksm_cols_f64 = ksm_cols_f64_avx2;
    }
#else
    (void)level;
#endif
}
#endif
