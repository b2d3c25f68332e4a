/* float32 sigmoid / tanh over arrays for the recurrent gates (used through _rnn_act.pxd by
 * recurrent.pyx and convlstm.pyx): an inline Cephes-style exp on GCC vectors (8 lanes; 16 on AVX-512; relative
 * error below 2e-7, NaN propagates, +-Inf saturate), one variant per rung of the CPU-feature ladder
 * (cpu_features.h), picked by kl_gate_use(level); a scalar libm fallback without GCC vectors.
 * float64 gates use libm (in _rnn_act.pxd). */
#ifndef KLAYERS_RNN_ACT_H
#define KLAYERS_RNN_ACT_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cpu_features.h"

typedef void (*kl_map_f_t)(float*, ptrdiff_t);

#if defined(__GNUC__) || defined(__clang__)
#define KL_VECTORS 1
/* the vector helpers below are always inlined: a vector argument must not cross a call between
 * functions compiled for different instruction sets (the ABIs differ) */
typedef float kl_v8f __attribute__((vector_size(32)));
typedef int32_t kl_v8i __attribute__((vector_size(32)));
typedef float kl_v16f __attribute__((vector_size(64)));
typedef int32_t kl_v16i __attribute__((vector_size(64)));

/* sel, exp, sigmoid and tanh on one vector type (V floats, I their int32 lanes): the same
   operations lane by lane at every width, so 8 and 16 lanes give the same values */
#define KL_GATE_FUNCS(V, I, S)                                                                 \
static inline __attribute__((always_inline)) V kl_sel_##S(I m, V a, V b) {                   \
    return (V)((m & (I)a) | (~m & (I)b));                                                      \
}                                                                                              \
/* Cephes expf: Cody-Waite reduction, degree-6 polynomial, 2^n from the exponent bits */       \
static inline __attribute__((always_inline)) V kl_vexpf_##S(V x) {                            \
    /* constants broadcast from a zero vector: x * 0 would be NaN for an infinite x */         \
    const V zero = {0}, hi = zero + 88.3762626647949f;                                         \
    x = kl_sel_##S(x < hi, x, hi);                                                             \
    x = kl_sel_##S(x > -hi, x, -hi);                                                           \
    V fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;                             \
    I n = __builtin_convertvector(fn, I);                                                      \
    V r = x - fn * 0.693359375f;                                                               \
    r = r - fn * -2.12194440e-4f;                                                              \
    V z = r * r;                                                                               \
    V y = r * 1.9875691500E-4f + 1.3981999507E-3f;                                             \
    y = y * r + 8.3334519073E-3f;                                                              \
    y = y * r + 4.1665795894E-2f;                                                              \
    y = y * r + 1.6666665459E-1f;                                                              \
    y = y * r + 5.0000001201E-1f;                                                              \
    y = y * z + r + 1.0f;                                                                      \
    I bits = (n + 127) << 23;                                                                  \
    return y * (V)bits;                                                                        \
}                                                                                              \
static inline __attribute__((always_inline)) V kl_vsigmoidf_##S(V x) {                        \
    V s = 1.0f / (1.0f + kl_vexpf_##S(-x));                                                    \
    return kl_sel_##S(x == x, s, x);                                                           \
}                                                                                              \
/* odd polynomial near 0 (full relative precision), 1 - 2 / (exp(2|x|) + 1) elsewhere */      \
static inline __attribute__((always_inline)) V kl_vtanhf_##S(V x) {                           \
    I sign = (I)x & (int32_t)0x80000000;                                                       \
    V a = (V)((I)x & 0x7fffffff);                                                              \
    V z = x * x;                                                                               \
    V s = z * -5.70498872745E-3f + 2.06390887954E-2f;                                          \
    s = s * z - 5.37397155531E-2f;                                                             \
    s = s * z + 1.33314422036E-1f;                                                             \
    s = s * z - 3.33332819422E-1f;                                                             \
    s = s * z * x + x;                                                                         \
    const V zero = {0}, nine = zero + 9.0f;                                                    \
    V e = kl_vexpf_##S(2.0f * kl_sel_##S(a < nine, a, nine));                                  \
    V l = 1.0f - 2.0f / (e + 1.0f);                                                            \
    l = kl_sel_##S(a < nine, l, zero + 1.0f);  /* tanh(9) rounds to 1 in float32 */            \
    l = (V)((I)l | sign);                                                                      \
    return kl_sel_##S(x == x, kl_sel_##S(a < 0.625f, s, l), x);                                \
}
KL_GATE_FUNCS(kl_v8f, kl_v8i, 8)
KL_GATE_FUNCS(kl_v16f, kl_v16i, 16)
/* the 8-lane functions by the names act_map.h uses */
#define kl_sel kl_sel_8
#define kl_vexpf kl_vexpf_8
#define kl_vsigmoidf kl_vsigmoidf_8
#define kl_vtanhf kl_vtanhf_8

/* NAME_SUFFIX(p, n): p[i] = VF(p[i]) over W-lane vectors of type V (a short tail: one vector
   padded with zeros) */
#define KL_MAP(NAME, VF, SUFFIX, ATTR, V, W)                                                   \
    ATTR static void NAME##_##SUFFIX(float* p, ptrdiff_t n) {                                  \
        ptrdiff_t i = 0;                                                                       \
        for (; i + W <= n; i += W) {                                                           \
            V v; memcpy(&v, p + i, 4 * W); v = VF(v); memcpy(p + i, &v, 4 * W);                \
        }                                                                                      \
        if (i < n) {                                                                           \
            V v = {0}; memcpy(&v, p + i, 4 * (n - i)); v = VF(v); memcpy(p + i, &v, 4 * (n - i)); \
        }                                                                                      \
    }
KL_MAP(kl_sigmoid_f, kl_vsigmoidf_8, base, , kl_v8f, 8)
KL_MAP(kl_tanh_f, kl_vtanhf_8, base, , kl_v8f, 8)
#if KL_MULTIVERSION
#define KL_GATE_MULTIVERSION 1
KL_MAP(kl_sigmoid_f, kl_vsigmoidf_8, avx2, KL_TARGET_AVX2, kl_v8f, 8)
KL_MAP(kl_tanh_f, kl_vtanhf_8, avx2, KL_TARGET_AVX2, kl_v8f, 8)
KL_MAP(kl_sigmoid_f, kl_vsigmoidf_16, avx512, KL_TARGET_AVX512, kl_v16f, 16)
KL_MAP(kl_tanh_f, kl_vtanhf_16, avx512, KL_TARGET_AVX512, kl_v16f, 16)
#else
#define KL_GATE_MULTIVERSION 0
#endif
#else
#define KL_VECTORS 0
#define KL_GATE_MULTIVERSION 0
#include <math.h>
static void kl_sigmoid_f_base(float* p, ptrdiff_t n) { for (ptrdiff_t i = 0; i < n; i++) p[i] = 1.0f / (1.0f + expf(-p[i])); }
static void kl_tanh_f_base(float* p, ptrdiff_t n) { for (ptrdiff_t i = 0; i < n; i++) p[i] = tanhf(p[i]); }
#endif

static kl_map_f_t kl_sigmoid_f = kl_sigmoid_f_base;
static kl_map_f_t kl_tanh_f = kl_tanh_f_base;

/* Use the variants of ladder level ``level`` (cpu_features.h; kl_cpu_level checked the CPU). */
static void kl_gate_use(int level) {
    KL_PICK(KL_GATE_MULTIVERSION, kl_sigmoid_f, kl_sigmoid_f, level);
    KL_PICK(KL_GATE_MULTIVERSION, kl_tanh_f, kl_tanh_f, level);
}
#endif
