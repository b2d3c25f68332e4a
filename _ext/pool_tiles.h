/* One output row of a channels_last windowed pooling (pooling.pyx), one variant per rung of the
 * CPU-feature ladder (cpu_features.h), picked by kpl_use(level).
 *
 * The row's output pixels each reduce a window whose in-range input rows are given (``xr[r]``,
 * ``nr`` of them, each the start of an input row of ``W * C`` values) and whose in-range
 * columns follow from ``ow * sw - pw``. Channels go NV vectors at a time with the window's
 * reduction held in registers across all its taps, so each output is stored once (a plain loop
 * loads and stores the output at every tap). The taps are taken in the same order as the
 * scalar loop (rows, then columns) and the first tap starts the reduction, so the results are
 * those of that loop, bit for bit:
 *
 *   mode 0  max: ``v > m ? v : m`` from the lowest finite value (a NaN never wins);
 *   mode 1  average: the sum of the taps inside the input, divided by their count;
 *   mode 2  max where the padding holds zeros: as mode 0, then ``0 > m ? 0 : m`` when the window
 *           has fewer than ``full`` taps inside the input.
 */
#ifndef KLAYERS_POOL_TILES_H
#define KLAYERS_POOL_TILES_H
#include <float.h>
#include <stddef.h>
#include "cpu_features.h"

#define KPL_LOWEST_float (-FLT_MAX)
#define KPL_LOWEST_double (-DBL_MAX)

/* m = v > m ? v : m on generic vectors (mask select: maxps's own rule) */
#define KPL_VMAX(VT, MT, m, v)                                                                    \
    do {                                                                                          \
        MT k_ = (MT)((v) > (m));                                                                  \
        (m) = (VT)((k_ & (MT)(v)) | (~k_ & (MT)(m)));                                             \
    } while (0)

#define KPL_BLOCK(T, VT, VU, MT, L, NV)                                                           \
    for (; c + NV * L <= C; c += NV * L) {                                                        \
        VT a[NV];                                                                                 \
        int first = 1;                                                                            \
        for (int r = 0; r < nr; r++) {                                                            \
            const T* xs = xr[r] + c;                                                              \
            for (ptrdiff_t e = wlo; e < whi; e++) {                                               \
                const T* xe = xs + (w0 + e) * C;                                                  \
                if (first) {                                                                      \
                    _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                        \
                        VT x_ = *(const VU*)(xe + v * L);                                         \
                        if (mode == 1) {                                                          \
                            a[v] = x_;                                                            \
                        } else {                                                                  \
                            a[v] = lowest;                                                        \
                            KPL_VMAX(VT, MT, a[v], x_);                                           \
                        }                                                                         \
                    }                                                                             \
                    first = 0;                                                                    \
                } else if (mode == 1) {                                                           \
                    _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) a[v] += *(const VU*)(xe + v * L); \
                } else {                                                                          \
                    _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                        \
                        VT x_ = *(const VU*)(xe + v * L);                                         \
                        KPL_VMAX(VT, MT, a[v], x_);                                               \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                                    \
            if (mode == 1) {                                                                      \
                a[v] = a[v] / countv;                                                             \
            } else if (mode == 2 && padded) {                                                     \
                if (first) a[v] = zero;                                                           \
                else KPL_VMAX(VT, MT, a[v], zero);                                                \
            }                                                                                     \
            *(VU*)(o + c + v * L) = a[v];                                                         \
        }                                                                                         \
    }

/* channels c..C-1 of output pixel ``o`` one at a time */
#define KPL_SCALAR_CHANNELS(T)                                                                    \
    for (; c < C; c++) {                                                                          \
        T a = mode == 1 ? (T)0 : KPL_LOWEST_##T;                                                  \
        int first = 1;                                                                            \
        for (int r = 0; r < nr; r++) {                                                            \
            for (ptrdiff_t e = wlo; e < whi; e++) {                                               \
                T x_ = xr[r][(w0 + e) * C + c];                                                   \
                if (mode == 1) a = first ? x_ : a + x_;                                           \
                else a = x_ > a ? x_ : a;                                                         \
                first = 0;                                                                        \
            }                                                                                     \
        }                                                                                         \
        if (mode == 1) a = a / (T)count;                                                          \
        else if (mode == 2 && padded) a = first ? (T)0 : (0 > a ? (T)0 : a);                      \
        o[c] = a;                                                                                 \
    }

/* the window columns of output column ow: input columns w0 + e for wlo <= e < whi */
#define KPL_PIXEL_HEAD(T)                                                                         \
    ptrdiff_t w0 = ow * sw - pw, wlo = w0 < 0 ? -w0 : 0, whi = W - w0;                            \
    if (whi > kw) whi = kw;                                                                       \
    if (wlo > kw) wlo = kw;                                                                       \
    ptrdiff_t count = nr * (whi > wlo ? whi - wlo : 0);                                           \
    int padded = count < full;                                                                    \
    T* o = orow + ow * C;                                                                         \
    ptrdiff_t c = 0;

#define KPL_DEFINE(T, SUF, ATTR, VS, MT_ELEM)                                                     \
    typedef T kpl_##T##_v_##SUF __attribute__((vector_size(VS)));                                 \
    typedef T kpl_##T##_u_##SUF __attribute__((vector_size(VS), aligned(sizeof(T)), may_alias));  \
    typedef MT_ELEM kpl_##T##_m_##SUF __attribute__((vector_size(VS)));                           \
    ATTR static void kpl_row_##T##_##SUF(const T* const* xr, int nr, ptrdiff_t W, ptrdiff_t C,     \
                                         ptrdiff_t OW, ptrdiff_t kw, ptrdiff_t sw, ptrdiff_t pw,  \
                                         int mode, ptrdiff_t full, T* orow) {                     \
        typedef kpl_##T##_v_##SUF VT;                                                             \
        typedef kpl_##T##_u_##SUF VU;                                                             \
        typedef kpl_##T##_m_##SUF MT;                                                             \
        enum { L = VS / sizeof(T) };                                                              \
        const VT zero = {0};                                                                      \
        const VT lowest = zero + KPL_LOWEST_##T;                                                  \
        for (ptrdiff_t ow = 0; ow < OW; ow++) {                                                   \
            KPL_PIXEL_HEAD(T)                                                                     \
            const VT countv = zero + (T)count;                                                    \
            KPL_BLOCK(T, VT, VU, MT, L, 4)                                                        \
            KPL_BLOCK(T, VT, VU, MT, L, 1)                                                        \
            KPL_SCALAR_CHANNELS(T)                                                                \
        }                                                                                         \
    }

typedef void (*kpl_float_t)(const float* const*, int, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                            ptrdiff_t, ptrdiff_t, int, ptrdiff_t, float*);
typedef void (*kpl_double_t)(const double* const*, int, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                             ptrdiff_t, ptrdiff_t, int, ptrdiff_t, double*);

#if defined(__GNUC__) || defined(__clang__)
KPL_DEFINE(float, base, , 16, int)
KPL_DEFINE(double, base, , 16, long long)
#else
/* no generic vectors: channels one at a time */
#define KPL_SCALAR(T)                                                                             \
    static void kpl_row_##T##_base(const T* const* xr, int nr, ptrdiff_t W, ptrdiff_t C,          \
                                   ptrdiff_t OW, ptrdiff_t kw, ptrdiff_t sw, ptrdiff_t pw,        \
                                   int mode, ptrdiff_t full, T* orow) {                           \
        for (ptrdiff_t ow = 0; ow < OW; ow++) {                                                   \
            KPL_PIXEL_HEAD(T)                                                                     \
            KPL_SCALAR_CHANNELS(T)                                                                \
        }                                                                                         \
    }
KPL_SCALAR(float)
KPL_SCALAR(double)
#endif
#if KL_MULTIVERSION && defined(__x86_64__)
#define KPL_MULTIVERSION 1
KPL_DEFINE(float, avx2, KL_TARGET_AVX2, 32, int)
KPL_DEFINE(double, avx2, KL_TARGET_AVX2, 32, long long)
KPL_DEFINE(float, avx512, KL_TARGET_AVX512, 64, int)
KPL_DEFINE(double, avx512, KL_TARGET_AVX512, 64, long long)
#else
#define KPL_MULTIVERSION 0
#endif

static kpl_float_t kpl_row_float = kpl_row_float_base;
static kpl_double_t kpl_row_double = kpl_row_double_base;

/* Use the variant of ladder level ``level`` (cpu_features.h; kl_cpu_level checked the CPU). */
static void kpl_use(int level) {
    KL_PICK(KPL_MULTIVERSION, kpl_row_float, kpl_row_float, level);
    KL_PICK(KPL_MULTIVERSION, kpl_row_double, kpl_row_double, level);
}
#endif
