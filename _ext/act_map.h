/* Elementwise activations over arrays (activation.pyx): y[i] = act(x[i]) for every code of the
 * one code space (activation_codes.h). float32 runs on the GCC vectors of rnn_act.h (8 lanes, 16 on AVX-512; its
 * Cephes exp, sigmoid and tanh), one variant per rung of the CPU-feature ladder, picked by
 * kl_act_use(level); the erf GELU, softplus and mish call libm per element (no vector log or erf
 * here). float64 calls libm per element. x and y may be the same array.
 *
 * Special values follow the NumPy formulas of klayers.activations, which follow Keras: NaN stays
 * NaN; x * sigmoid(x) at -inf is -inf * 0 = NaN (swish, hard swish, the tanh GELU), as in
 * TensorFlow; exp overflows to inf; elu, selu and softplus saturate. */
#ifndef KLAYERS_ACT_MAP_H
#define KLAYERS_ACT_MAP_H
#include <math.h>
#include "activation_codes.h"
#include "rnn_act.h"

#define KL_SELU_SCALE 1.0507009873554804934193349852946
#define KL_SELU_ALPHA 1.6732632423543772848170429916717
#define KL_SQRT_2_PI 0.7978845608028654  /* sqrt(2 / pi) */
#define KL_SQRT_HALF 0.7071067811865476

/* ---- float64 and the libm float32 maps: one scalar formula per code ---- */
/* max(x, 0) that keeps NaN (as np.maximum / np.logaddexp) */
static inline double kl_pos_d(double x) { return x > 0 ? x : (x == x ? 0.0 : x); }
static inline float kl_pos_f(float x) { return x > 0 ? x : (x == x ? 0.0f : x); }

static inline double kl_act_d(int code, double x) {
    switch (code) {
    case KL_ACT_RELU: return x < 0 ? 0 : x;
    case KL_ACT_RELU6: { double v = x < 0 ? 0 : x; return v > 6 ? 6 : v; }
    case KL_ACT_TANH: return tanh(x);
    case KL_ACT_SIGMOID: return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case KL_ACT_HARD_SIGMOID: { double v = 0.2 * x + 0.5; v = v < 0 ? 0 : v; return v > 1 ? 1 : v; }
    case KL_ACT_HARD_SIGMOID_K3: { double v = x / 6.0 + 0.5; v = v < 0 ? 0 : v; return v > 1 ? 1 : v; }
    case KL_ACT_SWISH: return x * (x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)));
    case KL_ACT_HARD_SWISH: { double v = x / 6.0 + 0.5; v = v < 0 ? 0 : v; return x * (v > 1 ? 1 : v); }
    case KL_ACT_GELU: return 0.5 * x * erfc(-x * KL_SQRT_HALF);
    case KL_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(KL_SQRT_2_PI * (x + 0.044715 * (x * x * x))));
    case KL_ACT_ELU: return x > 0 ? x : expm1(x < 0 ? x : 0 * x);
    case KL_ACT_SELU: return KL_SELU_SCALE * (x > 0 ? x : KL_SELU_ALPHA * expm1(x < 0 ? x : 0 * x));
    case KL_ACT_SOFTPLUS: return kl_pos_d(x) + log1p(exp(-fabs(x)));
    case KL_ACT_SOFTSIGN: return x / (1.0 + fabs(x));
    case KL_ACT_EXPONENTIAL: return exp(x);
    case KL_ACT_MISH: return x * tanh(kl_pos_d(x) + log1p(exp(-fabs(x))));
    default: return x;
    }
}

static inline float kl_act_libm_f(int code, float x) {
    switch (code) {
    case KL_ACT_GELU: return 0.5f * x * erfcf(-x * (float)KL_SQRT_HALF);
    case KL_ACT_SOFTPLUS: return kl_pos_f(x) + log1pf(expf(-fabsf(x)));
    case KL_ACT_MISH: return x * tanhf(kl_pos_f(x) + log1pf(expf(-fabsf(x))));
    default: return (float)kl_act_d(code, x);
    }
}

static void kl_act_map_d(int code, const double* x, double* y, ptrdiff_t n) {
    /* one loop per code, so that the select-only ones vectorise */
    switch (code) {
#define KL_LOOP_D(CODE) case CODE: for (ptrdiff_t i = 0; i < n; i++) y[i] = kl_act_d(CODE, x[i]); break;
    KL_LOOP_D(KL_ACT_RELU) KL_LOOP_D(KL_ACT_RELU6) KL_LOOP_D(KL_ACT_TANH) KL_LOOP_D(KL_ACT_SIGMOID)
    KL_LOOP_D(KL_ACT_HARD_SIGMOID) KL_LOOP_D(KL_ACT_HARD_SIGMOID_K3) KL_LOOP_D(KL_ACT_SWISH)
    KL_LOOP_D(KL_ACT_HARD_SWISH) KL_LOOP_D(KL_ACT_GELU) KL_LOOP_D(KL_ACT_GELU_TANH) KL_LOOP_D(KL_ACT_ELU)
    KL_LOOP_D(KL_ACT_SELU) KL_LOOP_D(KL_ACT_SOFTPLUS) KL_LOOP_D(KL_ACT_SOFTSIGN)
    KL_LOOP_D(KL_ACT_EXPONENTIAL) KL_LOOP_D(KL_ACT_MISH)
#undef KL_LOOP_D
    default: if (x != y) memcpy(y, x, (size_t)n * sizeof(double));
    }
}

/* ---- float32 on vectors ---- */
#if KL_VECTORS
#define KL_AI static inline __attribute__((always_inline))
/* the vector functions on one vector type (V floats, I int32 lanes, S the suffix of rnn_act.h's
   functions on it): the same operations lane by lane at every width */
#define KL_ACT_FUNCS(V, I, S)                                                                     \
KL_AI V kl_vclip01_##S(V v) {                                                                     \
    const V zero = {0}, one = zero + 1.0f;                                                        \
    v = kl_sel_##S(v < zero, zero, v);                                                            \
    return kl_sel_##S(v > one, one, v);                                                           \
}                                                                                                 \
/* exp(x) over the whole float range: exp(x / 2)^2 (kl_vexpf clamps |x| at 88.38, short of the   \
 * largest finite exp): overflows to inf above 88.72, underflows through the subnormals to 0 */   \
KL_AI V kl_vexpf_full_##S(V x) {                                                                  \
    V h = kl_vexpf_##S(x * 0.5f);                                                                 \
    return kl_sel_##S(x == x, h * h, x);                                                          \
}                                                                                                 \
/* expm1 for x <= 0: a Taylor polynomial near 0 (where exp(x) - 1 cancels), exp(x) - 1 beyond */ \
KL_AI V kl_vexpm1_neg_##S(V x) {                                                                  \
    V p = x * (1.0f / 5040) + (1.0f / 720);                                                       \
    p = p * x + (1.0f / 120);                                                                     \
    p = p * x + (1.0f / 24);                                                                      \
    p = p * x + (1.0f / 6);                                                                       \
    p = p * x + 0.5f;                                                                             \
    p = p * x * x + x;                                                                            \
    V e = kl_vexpf_##S(x) - 1.0f;                                                                 \
    const V zero = {0}, lim = zero - 0.25f;                                                       \
    return kl_sel_##S(x == x, kl_sel_##S(x > lim, p, e), x);                                      \
}                                                                                                 \
/* always inlined with a constant code: the switch folds away in each loop below (and no         \
 * vector crosses a call between functions compiled for different instruction sets) */           \
KL_AI V kl_vact_f_##S(int code, V x) {                                                            \
    const V zero = {0};                                                                           \
    switch (code) {                                                                               \
    case KL_ACT_RELU: return kl_sel_##S(x < zero, zero, x);                                       \
    case KL_ACT_RELU6: { V v = kl_sel_##S(x < zero, zero, x); const V six = zero + 6.0f; return kl_sel_##S(v > six, six, v); } \
    case KL_ACT_TANH: return kl_vtanhf_##S(x);                                                    \
    case KL_ACT_SIGMOID: return kl_vsigmoidf_##S(x);                                              \
    case KL_ACT_HARD_SIGMOID: return kl_vclip01_##S(x * 0.2f + 0.5f);                             \
    case KL_ACT_HARD_SIGMOID_K3: return kl_vclip01_##S(x / 6.0f + 0.5f);                          \
    case KL_ACT_SWISH: {                                                                          \
        /* sigmoid is 0 below -88.7 (as NumPy's expit in float32), so -inf gives -inf * 0 = NaN */ \
        const V lo = zero - 88.7f;                                                                \
        V s = kl_sel_##S(x < lo, zero, kl_vsigmoidf_##S(x));                                      \
        return x * s;                                                                             \
    }                                                                                             \
    case KL_ACT_HARD_SWISH: return x * kl_vclip01_##S(x / 6.0f + 0.5f);                           \
    case KL_ACT_GELU_TANH: return 0.5f * x * (1.0f + kl_vtanhf_##S((float)KL_SQRT_2_PI * (x + 0.044715f * (x * x * x)))); \
    case KL_ACT_ELU: {                                                                            \
        V m = kl_vexpm1_neg_##S(kl_sel_##S(x < zero, x, zero));                                   \
        return kl_sel_##S(x == x, kl_sel_##S(x > zero, x, m), x);                                 \
    }                                                                                             \
    case KL_ACT_SELU: {                                                                           \
        V m = (float)KL_SELU_ALPHA * kl_vexpm1_neg_##S(kl_sel_##S(x < zero, x, zero));            \
        return kl_sel_##S(x == x, (float)KL_SELU_SCALE * kl_sel_##S(x > zero, x, m), x);          \
    }                                                                                             \
    case KL_ACT_SOFTSIGN: {                                                                       \
        V a = (V)((I)x & 0x7fffffff);                                                             \
        return x / (1.0f + a);                                                                    \
    }                                                                                             \
    case KL_ACT_EXPONENTIAL: return kl_vexpf_full_##S(x);                                         \
    default: return x;                                                                            \
    }                                                                                             \
}
KL_ACT_FUNCS(kl_v8f, kl_v8i, 8)
KL_ACT_FUNCS(kl_v16f, kl_v16i, 16)

#define KL_ACT_LOOP_F(CODE, S, V, W)                                                              \
    case CODE: {                                                                                  \
        ptrdiff_t i = 0;                                                                          \
        for (; i + W <= n; i += W) {                                                              \
            V v; memcpy(&v, x + i, 4 * W); v = kl_vact_f_##S(CODE, v); memcpy(y + i, &v, 4 * W);  \
        }                                                                                         \
        if (i < n) {                                                                              \
            V v = {0}; memcpy(&v, x + i, 4 * (n - i)); v = kl_vact_f_##S(CODE, v);                \
            memcpy(y + i, &v, 4 * (n - i));                                                       \
        }                                                                                         \
        break;                                                                                    \
    }
#define KL_ACT_MAP_F(SUFFIX, ATTR, S, V, W)                                                       \
    ATTR static void kl_act_map_f_##SUFFIX(int code, const float* x, float* y, ptrdiff_t n) {    \
        switch (code) {                                                                           \
        KL_ACT_LOOP_F(KL_ACT_RELU, S, V, W) KL_ACT_LOOP_F(KL_ACT_RELU6, S, V, W)                  \
        KL_ACT_LOOP_F(KL_ACT_TANH, S, V, W) KL_ACT_LOOP_F(KL_ACT_SIGMOID, S, V, W)                \
        KL_ACT_LOOP_F(KL_ACT_HARD_SIGMOID, S, V, W) KL_ACT_LOOP_F(KL_ACT_HARD_SIGMOID_K3, S, V, W) \
        KL_ACT_LOOP_F(KL_ACT_SWISH, S, V, W) KL_ACT_LOOP_F(KL_ACT_HARD_SWISH, S, V, W)            \
        KL_ACT_LOOP_F(KL_ACT_GELU_TANH, S, V, W) KL_ACT_LOOP_F(KL_ACT_ELU, S, V, W)               \
        KL_ACT_LOOP_F(KL_ACT_SELU, S, V, W) KL_ACT_LOOP_F(KL_ACT_SOFTSIGN, S, V, W)               \
        KL_ACT_LOOP_F(KL_ACT_EXPONENTIAL, S, V, W)                                                \
        default: if (x != y) memcpy(y, x, (size_t)n * sizeof(float));                             \
        }                                                                                         \
    }
KL_ACT_MAP_F(base, , 8, kl_v8f, 8)
#if KL_GATE_MULTIVERSION
KL_ACT_MAP_F(avx2, KL_TARGET_AVX2, 8, kl_v8f, 8)
KL_ACT_MAP_F(avx512, KL_TARGET_AVX512, 16, kl_v16f, 16)
#endif
#else
static void kl_act_map_f_base(int code, const float* x, float* y, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) y[i] = (float)kl_act_d(code, x[i]);
}
#endif

typedef void (*kl_act_map_f_t)(int, const float*, float*, ptrdiff_t);
static kl_act_map_f_t kl_act_vec_f = kl_act_map_f_base;

/* Use the float32 variants of ladder level ``level`` (cpu_features.h). */
static void kl_act_use(int level) {
    kl_act_vec_f = kl_act_map_f_base;
#if KL_VECTORS && KL_GATE_MULTIVERSION
    if (level >= KL_ISA_AVX512)
        kl_act_vec_f = kl_act_map_f_avx512;
    else if (level >= KL_ISA_AVX2)
        kl_act_vec_f = kl_act_map_f_avx2;
#else
    (void)level;
#endif
}

static void kl_act_map_f(int code, const float* x, float* y, ptrdiff_t n) {
    if (code == KL_ACT_GELU || code == KL_ACT_SOFTPLUS || code == KL_ACT_MISH) {
        switch (code) {
#define KL_LOOP_F(CODE) case CODE: for (ptrdiff_t i = 0; i < n; i++) y[i] = kl_act_libm_f(CODE, x[i]); break;
        KL_LOOP_F(KL_ACT_GELU) KL_LOOP_F(KL_ACT_SOFTPLUS) KL_LOOP_F(KL_ACT_MISH)
#undef KL_LOOP_F
        }
        return;
    }
    if (code == KL_ACT_LINEAR) {
        if (x != y) memcpy(y, x, (size_t)n * sizeof(float));
        return;
    }
    kl_act_vec_f(code, x, y, n);
}
#endif
