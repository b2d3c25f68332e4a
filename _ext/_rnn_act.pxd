# Recurrent gate activations shared by _ext/recurrent.pyx and _ext/convlstm.pyx.
#
# float32 sigmoid/tanh run on GCC vector extensions with an AVX2+FMA clone picked at load time
# (a scalar libm fallback elsewhere); float64 uses libm. Activation codes are the ACT_* of
# klayers.ops.recurrent: 0 linear, 1 tanh, 2 sigmoid, 3 Keras 2 hard_sigmoid, 4 Keras 3
# hard_sigmoid, 5 relu.
from cython cimport floating
from libc.math cimport exp, tanh, fmax, fmin

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__GNUC__)
    #pragma GCC diagnostic ignored "-Wpsabi"
    #endif
    /* AVX2 + FMA and baseline clones of the activation maps, picked at load time */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 12
    #define KL_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
    #else
    #define KL_CLONES
    #endif
    #if defined(__GNUC__) || defined(__clang__)
    #define KL_VECTORS 1
    typedef float kl_v8f __attribute__((vector_size(32)));
    typedef int32_t kl_v8i __attribute__((vector_size(32)));

    static inline kl_v8f kl_sel(kl_v8i m, kl_v8f a, kl_v8f b) {
        return (kl_v8f)((m & (kl_v8i)a) | (~m & (kl_v8i)b));
    }

    /* Cephes expf: Cody-Waite reduction, degree-6 polynomial, 2^n from the exponent bits */
    static inline kl_v8f kl_vexpf(kl_v8f x) {
        const kl_v8f hi = x * 0.0f + 88.3762626647949f;
        x = kl_sel(x < hi, x, hi);
        x = kl_sel(x > -hi, x, -hi);
        kl_v8f fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
        kl_v8i n = __builtin_convertvector(fn, kl_v8i);
        kl_v8f r = x - fn * 0.693359375f;
        r = r - fn * -2.12194440e-4f;
        kl_v8f z = r * r;
        kl_v8f y = r * 1.9875691500E-4f + 1.3981999507E-3f;
        y = y * r + 8.3334519073E-3f;
        y = y * r + 4.1665795894E-2f;
        y = y * r + 1.6666665459E-1f;
        y = y * r + 5.0000001201E-1f;
        y = y * z + r + 1.0f;
        kl_v8i bits = (n + 127) << 23;
        return y * (kl_v8f)bits;
    }

    static inline kl_v8f kl_vsigmoidf(kl_v8f x) {
        kl_v8f s = 1.0f / (1.0f + kl_vexpf(-x));
        return kl_sel(x == x, s, x);
    }

    /* odd polynomial near 0 (full relative precision), 1 - 2 / (exp(2|x|) + 1) elsewhere */
    static inline kl_v8f kl_vtanhf(kl_v8f x) {
        kl_v8i sign = (kl_v8i)x & (int32_t)0x80000000;
        kl_v8f a = (kl_v8f)((kl_v8i)x & 0x7fffffff);
        kl_v8f z = x * x;
        kl_v8f s = z * -5.70498872745E-3f + 2.06390887954E-2f;
        s = s * z - 5.37397155531E-2f;
        s = s * z + 1.33314422036E-1f;
        s = s * z - 3.33332819422E-1f;
        s = s * z * x + x;
        kl_v8f nine = a * 0.0f + 9.0f;
        kl_v8f e = kl_vexpf(2.0f * kl_sel(a < nine, a, nine));
        kl_v8f l = 1.0f - 2.0f / (e + 1.0f);
        l = (kl_v8f)((kl_v8i)l | sign);
        return kl_sel(x == x, kl_sel(a < 0.625f, s, l), x);
    }

    #define KL_MAP(NAME, VF) \
    KL_CLONES static void NAME(float* p, Py_ssize_t n) { \
        Py_ssize_t i = 0; \
        for (; i + 8 <= n; i += 8) { kl_v8f v; memcpy(&v, p + i, 32); v = VF(v); memcpy(p + i, &v, 32); } \
        if (i < n) { kl_v8f v = {0}; memcpy(&v, p + i, 4 * (n - i)); v = VF(v); memcpy(p + i, &v, 4 * (n - i)); } \
    }
    KL_MAP(kl_sigmoid_f, kl_vsigmoidf)
    KL_MAP(kl_tanh_f, kl_vtanhf)
    #else
    #define KL_VECTORS 0
    #include <math.h>
    static void kl_sigmoid_f(float* p, Py_ssize_t n) { for (Py_ssize_t i = 0; i < n; i++) p[i] = 1.0f / (1.0f + expf(-p[i])); }
    static void kl_tanh_f(float* p, Py_ssize_t n) { for (Py_ssize_t i = 0; i < n; i++) p[i] = tanhf(p[i]); }
    #endif
    """
    void kl_sigmoid_f(float* p, Py_ssize_t n) noexcept nogil
    void kl_tanh_f(float* p, Py_ssize_t n) noexcept nogil


cdef inline void act_inplace(floating* p, Py_ssize_t n, int code) noexcept nogil:
    """Apply activation ``code`` to ``p[0:n]`` in place, one simple loop per activation."""
    cdef Py_ssize_t j
    cdef floating v
    if n <= 0 or code == 0:
        return
    if code == 1:
        if floating is float:
            kl_tanh_f(p, n)
        else:
            for j in range(n):
                p[j] = tanh(p[j])
    elif code == 2:
        if floating is float:
            kl_sigmoid_f(p, n)
        else:
            for j in range(n):
                p[j] = 1.0 / (1.0 + exp(-p[j]))
    elif code == 3:
        # fmin(fmax(v, 0), 1) as selects, which vectorise (libm calls do not); NaN -> 0 as fmax
        for j in range(n):
            v = <floating>0.2 * p[j] + <floating>0.5
            v = v if v > 0 else 0
            p[j] = v if v < 1 else 1
    elif code == 4:
        for j in range(n):
            v = p[j] + 3
            v = v if v > 0 else 0
            p[j] = (v if v < 6 else 6) / 6
    elif code == 5:
        for j in range(n):
            p[j] = p[j] if p[j] > 0 else 0
