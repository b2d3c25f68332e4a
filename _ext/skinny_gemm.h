/* A GEMM for few rows: C[m * ldc + j] = sum_k A[m * lda + k] * B[k * ldb + j] for m < M, j < N,
 * all row-major, C overwritten.
 *
 * Why: on small maps a convolution's GEMM has a handful of rows (a 3x3 map at batch 1 has 9
 * output pixels) and a large B (the kernel, 9.4 MB for a 3x3 512->512 conv). A BLAS GEMM packs
 * B into panels on every call, which for so few rows costs as much as the multiply, so it runs
 * at a third of the memory bandwidth. This kernel reads B in place, once per pass of KSK_MR
 * rows: a register tile of MR rows x 2 vectors of columns accumulates over all of K while B's
 * tile row streams through, each B vector feeding MR fused multiply-adds.
 *
 * The tile is a function with compile-time MR and NV (always inlined into a switch), so the
 * accumulators live in registers. Variants per rung of the CPU-feature ladder (cpu_features.h):
 * AVX-512 tiles of 12 rows x 32 floats (24 of the 32 zmm registers), AVX2 and baseline tiles of
 * 6 rows x 2 vectors (12 of 16). Column tails narrower than one vector are plain loops.
 */
#ifndef KLAYERS_SKINNY_GEMM_H
#define KLAYERS_SKINNY_GEMM_H
#include <stddef.h>
#include <stdint.h>
#include "activation_codes.h"
#include "act_map.h"
#include "cpu_features.h"

/* the most rows a caller should hand one call (more rows: BLAS's packed GEMM wins) */
#define KSK_MAX_ROWS 16
/* rows of B per block: a block is read as KSK_KB sequential streams (one per row, advancing a
 * tile at a time), which the hardware prefetchers follow; a whole tile column down all of K
 * would cross a page on every row and run at the latency of memory, not its bandwidth */
#define KSK_KB 16

#define KSK_TILE(T, V, U, L, MR, NV)                                                              \
    do {                                                                                          \
        V acc[MR][NV];                                                                            \
        _Pragma("GCC unroll 16") for (int m = 0; m < MR; m++)                                     \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                                  \
                acc[m][v] = first ? (V){0} : (V)(*(const U*)(C + (m0 + m) * ldc + j + v * L));    \
        const T* bk = B + k0 * ldb + j;                                                           \
        const T* ak = A + m0 * lda + k0;                                                          \
        for (ptrdiff_t k = k0; k < k1; k++, bk += ldb, ak++) {                                    \
            V bv[NV];                                                                             \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) bv[v] = *(const U*)(bk + v * L); \
            _Pragma("GCC unroll 16") for (int m = 0; m < MR; m++) {                               \
                T a = ak[m * lda];                                                                \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[m][v] += a * bv[v];      \
            }                                                                                     \
        }                                                                                         \
        _Pragma("GCC unroll 16") for (int m = 0; m < MR; m++)                                     \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                                  \
                *(U*)(C + (m0 + m) * ldc + j + v * L) = acc[m][v];                                \
    } while (0)

#define KSK_CASE(T, V, U, L, MR, NV) case MR: KSK_TILE(T, V, U, L, MR, NV); break;

#define KSK_DEFINE(T, SUF, ATTR, VS, MRMAX)                                                       \
    typedef T ksk_##T##_v_##SUF __attribute__((vector_size(VS)));                                 \
    typedef T ksk_##T##_u_##SUF __attribute__((vector_size(VS), aligned(sizeof(T)), may_alias));  \
    ATTR static void ksk_cols_##T##_##SUF(ptrdiff_t M, ptrdiff_t k0, ptrdiff_t k1, const T* A,    \
            ptrdiff_t lda, const T* B, ptrdiff_t ldb, T* C, ptrdiff_t ldc, ptrdiff_t j, int nv)   \
    {                                                                                             \
        const int first = k0 == 0;                                                                \
        const int L = VS / sizeof(T);                                                             \
        for (ptrdiff_t m0 = 0; m0 < M; m0 += MRMAX) {                                             \
            int mr = (int)(M - m0 < MRMAX ? M - m0 : MRMAX);                                      \
            if (nv == 2) {                                                                        \
                switch (mr) {                                                                     \
                    KSK_CASES_##MRMAX(T, ksk_##T##_v_##SUF, ksk_##T##_u_##SUF, L, 2)              \
                }                                                                                 \
            } else {                                                                              \
                switch (mr) {                                                                     \
                    KSK_CASES_##MRMAX(T, ksk_##T##_v_##SUF, ksk_##T##_u_##SUF, L, 1)              \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    ATTR static void ksk_gemm_##T##_##SUF(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const T* A,      \
            ptrdiff_t lda, const T* B, ptrdiff_t ldb, T* C, ptrdiff_t ldc)                        \
    {                                                                                             \
        const ptrdiff_t L = VS / sizeof(T);                                                       \
        ptrdiff_t j = 0;                                                                          \
        for (ptrdiff_t k0 = 0; k0 < K; k0 += KSK_KB) {                                            \
            ptrdiff_t k1 = k0 + KSK_KB < K ? k0 + KSK_KB : K;                                     \
            for (j = 0; j + 2 * L <= N; j += 2 * L)                                               \
                ksk_cols_##T##_##SUF(M, k0, k1, A, lda, B, ldb, C, ldc, j, 2);                    \
            for (; j + L <= N; j += L) ksk_cols_##T##_##SUF(M, k0, k1, A, lda, B, ldb, C, ldc, j, 1); \
        }                                                                                         \
        if (K == 0) j = 0;                                                                        \
        for (ptrdiff_t m = 0; m < M && j < N; m++) {                                              \
            for (ptrdiff_t jj = j; jj < N; jj++) C[m * ldc + jj] = 0;                             \
            for (ptrdiff_t k = 0; k < K; k++) {                                                   \
                T a = A[m * lda + k];                                                             \
                for (ptrdiff_t jj = j; jj < N; jj++) C[m * ldc + jj] += a * B[k * ldb + jj];      \
            }                                                                                     \
        }                                                                                         \
    }

#define KSK_CASES_6(T, V, U, L, NV)                                                               \
    KSK_CASE(T, V, U, L, 1, NV) KSK_CASE(T, V, U, L, 2, NV) KSK_CASE(T, V, U, L, 3, NV)           \
    KSK_CASE(T, V, U, L, 4, NV) KSK_CASE(T, V, U, L, 5, NV) KSK_CASE(T, V, U, L, 6, NV)
#define KSK_CASES_12(T, V, U, L, NV)                                                              \
    KSK_CASES_6(T, V, U, L, NV)                                                                   \
    KSK_CASE(T, V, U, L, 7, NV) KSK_CASE(T, V, U, L, 8, NV) KSK_CASE(T, V, U, L, 9, NV)           \
    KSK_CASE(T, V, U, L, 10, NV) KSK_CASE(T, V, U, L, 11, NV) KSK_CASE(T, V, U, L, 12, NV)

/* ---- the same over a packed B, any number of rows -----------------------------------------
 * B packed in strips of KSK_STRIP_BYTES (32 floats, 16 doubles) of columns: strip s holds
 * B[k][s * SW + c] at Bp[(s * K + k) * SW + c], zero past column N. A strip is one contiguous
 * K x SW block, so a tile streams it front to back (what the prefetchers like best) and the
 * strips of a task's column slice are one contiguous range: threads that split the columns
 * read disjoint, sequential memory. Layers pack their kernel once (the inference plan does).
 *
 * Each strip is taken KSKP_KC rows of B at a time (KSKP_KC x 128 bytes, in L1 while every
 * row tile of A passes over it); the tile's accumulators start from C after the first block.
 * A strip narrower than SW (the last one, when N is not a multiple) runs over all of K per
 * row tile into a scratch tile, whose first columns are copied out. */
#define KSK_STRIP_BYTES 128
/* with few rows, the packed kernel beats BLAS even without packing counted (ResNet50's 3x3
 * and 6x6 stages at 96x96); the plan packs whatever it runs, so every row count uses it */
#define KSK_PACKED_MAX_ROWS 48
#define KSKP_KC 192
/* rows of a strip ahead that a tile prefetches (the strip streams from L3 or memory) */
#ifndef KSKP_PF
#define KSKP_PF 32
#endif
#ifndef KSKP_PF2
#define KSKP_PF2 256
#endif

/* The tile's store: with ``ep`` (the last block of K) the bias (``bj``: the bias at the tile's
   first column, or NULL) is added and relu / relu6 applied in registers (NaN stays NaN: a
   select on ``v < 0``, as the epilogue); other codes are mapped over the finished rows after. */
#define KSKP_TILE(T, V, U, MT, L, MR, NV, IND)                                                    \
    do {                                                                                          \
        V acc[MR][NV];                                                                            \
        _Pragma("GCC unroll 16") for (int m = 0; m < MR; m++)                                     \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                  \
                acc[m][v] = first ? (V){0} : (V)(*(const U*)(cbase + m * cld + v * L));           \
        const T* bk = bs;                                                                         \
        /* A's rows m0 + m at step k: three bases (rows 0, 4, 8) and the byte offsets of rows     \
           1-3 after each (one stride, three strides): a tile of 12 rows needs no row pointer     \
           per row, which spilled to the stack at every k. IND: A is read in place, the column    \
           of step k at byte offset ko[k] of each row (a convolution's window, no im2col) */      \
        const ptrdiff_t l1 = lda * (ptrdiff_t)sizeof(T), l3 = 3 * l1, l4 = 4 * l1, l8 = 8 * l1;   \
        for (ptrdiff_t k = 0; k < kc; k++, bk += SW) {                                            \
            const char* ab0 = (const char*)ak0 + (IND ? ko[k] : k * (ptrdiff_t)sizeof(T));        \
            const char* ab1 = ab0 + l4;                                                           \
            const char* ab2 = ab0 + l8;                                                           \
            V bv[NV];                                                                             \
            _Pragma("GCC unroll 4") for (int p = 0; p < NV * L * (int)sizeof(T); p += 64) {        \
                __builtin_prefetch((const char*)(bk + KSKP_PF * SW) + p);                         \
                __builtin_prefetch((const char*)(bk + KSKP_PF2 * SW) + p, 0, 2);                  \
            }                                                                                     \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) bv[v] = *(const V*)(bk + v * L); \
            _Pragma("GCC unroll 16") for (int m = 0; m < MR; m++) {                               \
                const char* rb = m < 4 ? ab0 : m < 8 ? ab1 : ab2;                                 \
                const int r = m & 3;                                                              \
                T a = *(const T*)(r == 0 ? rb : r == 1 ? rb + l1 : r == 2 ? rb + 2 * l1 : rb + l3); \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[m][v] += a * bv[v];      \
            }                                                                                     \
        }                                                                                         \
        if (ep && bj) {                                                                           \
            V bb[NV];                                                                             \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) bb[v] = *(const U*)(bj + v * L); \
            _Pragma("GCC unroll 16") for (int m = 0; m < MR; m++)                                 \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[m][v] += bb[v];          \
        }                                                                                         \
        if (ep && rbase)                                                                          \
            _Pragma("GCC unroll 16") for (int m = 0; m < MR; m++)                                 \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                              \
                    acc[m][v] += *(const U*)(rbase + m * cld + v * L);                            \
        if (ep && (act == KL_ACT_RELU || act == KL_ACT_RELU6)) {                                  \
            const V zero = {0}, six = zero + (T)6;                                                \
            _Pragma("GCC unroll 16") for (int m = 0; m < MR; m++)                                 \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                            \
                    V r = (V)(~(MT)(acc[m][v] < zero) & (MT)acc[m][v]);                           \
                    if (act == KL_ACT_RELU6) {                                                    \
                        MT gt = (MT)(r > six);                                                    \
                        r = (V)((gt & (MT)six) | (~gt & (MT)r));                                  \
                    }                                                                             \
                    acc[m][v] = r;                                                                \
                }                                                                                 \
        }                                                                                         \
        _Pragma("GCC unroll 16") for (int m = 0; m < MR; m++)                                     \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                  \
                *(U*)(cbase + m * cld + v * L) = acc[m][v];                                       \
    } while (0)

#define KSKP_CASE(T, V, U, MT, L, MR, NV, IND) case MR: KSKP_TILE(T, V, U, MT, L, MR, NV, IND); break;
#define KSKP_CASES_1(T, V, U, MT, L, NV, IND) KSKP_CASE(T, V, U, MT, L, 1, NV, IND)
#define KSKP_CASES_3(T, V, U, MT, L, NV, IND)                                                     \
    KSKP_CASE(T, V, U, MT, L, 1, NV, IND) KSKP_CASE(T, V, U, MT, L, 2, NV, IND)                   \
    KSKP_CASE(T, V, U, MT, L, 3, NV, IND)
#define KSKP_CASES_6(T, V, U, MT, L, NV, IND)                                                     \
    KSKP_CASES_3(T, V, U, MT, L, NV, IND)                                                         \
    KSKP_CASE(T, V, U, MT, L, 4, NV, IND) KSKP_CASE(T, V, U, MT, L, 5, NV, IND)                   \
    KSKP_CASE(T, V, U, MT, L, 6, NV, IND)
#define KSKP_CASES_12(T, V, U, MT, L, NV, IND)                                                    \
    KSKP_CASES_6(T, V, U, MT, L, NV, IND) KSKP_CASE(T, V, U, MT, L, 7, NV, IND)                   \
    KSKP_CASE(T, V, U, MT, L, 8, NV, IND) KSKP_CASE(T, V, U, MT, L, 9, NV, IND)                   \
    KSKP_CASE(T, V, U, MT, L, 10, NV, IND) KSKP_CASE(T, V, U, MT, L, 11, NV, IND)                 \
    KSKP_CASE(T, V, U, MT, L, 12, NV, IND)
/* the tiles of mr rows over one strip (B at bs_, C at cb_, the bias at bj_, the residual at
   rb_), NT vectors of columns at a time: a strip of NV vectors is NV / NT tiles side by side
   (AVX2: 6 rows x 2 of its 4 vectors, 12 accumulators, 2 of B and A's broadcast in 15 of the
   16 registers); A contiguous (ko NULL) or read at the offsets ko */
#define KSKP_SWITCH(T, SUF, L, NT, MRMAX)                                                         \
    _Pragma("GCC unroll 2") for (int h = 0; h < NV / NT; h++) {                                   \
        const T* bs = bs_ + h * NT * L;                                                           \
        T* cbase = cb_ + h * NT * L;                                                              \
        const T* bj = bj_ ? bj_ + h * NT * L : NULL;                                              \
        const T* rbase = rb_ ? rb_ + h * NT * L : NULL;                                           \
        if (ko) {                                                                                 \
            switch (mr) {                                                                         \
                KSKP_CASES_##MRMAX(T, kskp_##T##_v_##SUF, kskp_##T##_u_##SUF, kskp_##T##_m_##SUF, L, NT, 1) \
            }                                                                                     \
        } else {                                                                                  \
            switch (mr) {                                                                         \
                KSKP_CASES_##MRMAX(T, kskp_##T##_v_##SUF, kskp_##T##_u_##SUF, kskp_##T##_m_##SUF, L, NT, 0) \
            }                                                                                     \
        }                                                                                         \
    }

/* the scalar epilogue of one value (a strip narrower than SW, the plain loops) */
#define KSKP_EP1(v, act)                                                                          \
    do {                                                                                          \
        if ((act) == KL_ACT_RELU || (act) == KL_ACT_RELU6) (v) = (v) < 0 ? 0 : (v);               \
        if ((act) == KL_ACT_RELU6) (v) = (v) > 6 ? 6 : (v);                                       \
    } while (0)

static inline void kskp_act_float(int act, float* p, ptrdiff_t n) { kl_act_map_f(act, p, p, n); }
static inline void kskp_act_double(int act, double* p, ptrdiff_t n) { kl_act_map_d(act, p, p, n); }

/* The codes the tile does not apply in registers: mapped over rows [m0, m1) of columns [c0, c1). */
#define KSKP_MAP_ROWS(T, C, ldc, m0, m1, c0, c1, act)                                             \
    do {                                                                                          \
        if ((act) > KL_ACT_RELU6 && (c1) > (c0))                                                  \
            for (ptrdiff_t mm = (m0); mm < (m1); mm++)                                            \
                kskp_act_##T((act), (C) + mm * (ldc) + (c0), (c1) - (c0));                        \
    } while (0)

/* C[m][j] = act(sum_k A[m][k] * B[k][j] + bias[j] + R[m][j]) for m < M and the columns of
   strips [s0, s1) below N; ``bias`` (indexed by column from 0) and ``R`` (a residual laid out as
   C, added after the bias: a conv's output summed with a shortcut before the activation) may
   be NULL, ``act`` any code (0: linear). When all of K is one block, row tiles go outer: a tile of A stays in registers and
   L1 while the strips pass, and C is written a whole row range at a time. */
#define KSKP_DEFINE(T, SUF, ATTR, VS, MRMAX, NT)                                                  \
    typedef T kskp_##T##_v_##SUF __attribute__((vector_size(VS), aligned(sizeof(T))));            \
    typedef T kskp_##T##_u_##SUF __attribute__((vector_size(VS), aligned(sizeof(T)), may_alias)); \
    typedef KSKP_INT_##T kskp_##T##_m_##SUF __attribute__((vector_size(VS)));                     \
    ATTR static void kskp_narrow_##T##_##SUF(ptrdiff_t M, ptrdiff_t K, const T* A, ptrdiff_t lda, \
            const T* bs0, ptrdiff_t m0, int mr, ptrdiff_t j, ptrdiff_t width, T* C, ptrdiff_t ldc, \
            const T* bias, int act, const T* R, const ptrdiff_t* ko)                              \
    {                                                                                             \
        enum { L = VS / sizeof(T), SW = KSK_STRIP_BYTES / sizeof(T), NV = SW / L };               \
        T tmp[MRMAX * SW];                                                                        \
        const int first = 1, ep = 0;                                                              \
        const T* bj_ = NULL;                                                                      \
        const T* rb_ = NULL;                                                                      \
        const ptrdiff_t kc = K, cld = SW;                                                         \
        const T* bs_ = bs0;                                                                       \
        const T* ak0 = A + m0 * lda;                                                              \
        T* cb_ = tmp;                                                                             \
        (void)M; (void)ep;                                                                        \
        KSKP_SWITCH(T, SUF, L, NT, MRMAX)                                                         \
        for (int m = 0; m < mr; m++)                                                              \
            for (ptrdiff_t c = 0; c < width; c++) {                                               \
                T v = tmp[m * SW + c] + (bias ? bias[j + c] : (T)0);                              \
                if (R) v += R[(m0 + m) * ldc + j + c];                                            \
                KSKP_EP1(v, act);                                                                 \
                C[(m0 + m) * ldc + j + c] = v;                                                    \
            }                                                                                     \
    }                                                                                             \
    ATTR static void kskp_gemm_##T##_##SUF(ptrdiff_t M, ptrdiff_t K, const T* A, ptrdiff_t lda,   \
            const T* Bp, ptrdiff_t s0, ptrdiff_t s1, ptrdiff_t N, T* C, ptrdiff_t ldc,            \
            const T* bias, int act, const T* R, const ptrdiff_t* KO)                              \
    {                                                                                             \
        enum { L = VS / sizeof(T), SW = KSK_STRIP_BYTES / sizeof(T), NV = SW / L };               \
        const ptrdiff_t c0 = s0 * SW, c1 = s1 * SW < N ? s1 * SW : N;                             \
        /* rows in ceil(M / MRMAX) tiles of nearly equal height (the first M % tiles of them one  \
           row taller): 8 rows as 6 + 2 leave the short tile's 4 accumulator chains waiting on    \
           the FMA latency, 4 + 4 keep both units busy */                                         \
        const ptrdiff_t nt_ = (M + MRMAX - 1) / MRMAX, q_ = nt_ ? M / nt_ : 0, r_ = nt_ ? M % nt_ : 0; \
        if (K <= KSKP_KC) {                                                                       \
            const int first = 1, ep = 1;                                                          \
            const ptrdiff_t kc = K, cld = ldc;                                                    \
            const ptrdiff_t* ko = KO;                                                             \
            for (ptrdiff_t t_ = 0, m0 = 0; t_ < nt_; m0 += q_ + (t_ < r_), t_++) {                \
                int mr = (int)(q_ + (t_ < r_));                                                   \
                const T* ak0 = A + m0 * lda;                                                      \
                for (ptrdiff_t s = s0; s < s1; s++) {                                             \
                    const T* bs_ = Bp + s * K * SW;                                               \
                    ptrdiff_t j = s * SW;                                                         \
                    if (N - j < SW) {                                                             \
                        kskp_narrow_##T##_##SUF(M, K, A, lda, bs_, m0, mr, j, N - j, C, ldc, bias, act, R, KO); \
                        continue;                                                                 \
                    }                                                                             \
                    T* cb_ = C + m0 * ldc + j;                                                    \
                    const T* bj_ = bias ? bias + j : NULL;                                        \
                    const T* rb_ = R ? R + m0 * ldc + j : NULL;                                   \
                    KSKP_SWITCH(T, SUF, L, NT, MRMAX)                                             \
                }                                                                                 \
                KSKP_MAP_ROWS(T, C, ldc, m0, m0 + mr, c0, c1, act);                               \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        for (ptrdiff_t s = s0; s < s1; s++) {                                                     \
            const T* bs0 = Bp + s * K * SW;                                                       \
            ptrdiff_t j = s * SW;                                                                 \
            if (N - j < SW) {                                                                     \
                for (ptrdiff_t t_ = 0, m0 = 0; t_ < nt_; m0 += q_ + (t_ < r_), t_++)              \
                    kskp_narrow_##T##_##SUF(M, K, A, lda, bs0, m0, (int)(q_ + (t_ < r_)), j, N - j, \
                        C, ldc, bias, act, R, KO);                                                \
                continue;                                                                         \
            }                                                                                     \
            const T* bj_ = bias ? bias + j : NULL;                                                \
            ptrdiff_t k0 = 0;                                                                     \
            do {                                                                                  \
                ptrdiff_t kc = K - k0 < KSKP_KC ? K - k0 : KSKP_KC;                               \
                const int first = k0 == 0, ep = k0 + kc == K;                                     \
                const T* bs_ = bs0 + k0 * SW;                                                     \
                for (ptrdiff_t t_ = 0, m0 = 0; t_ < nt_; m0 += q_ + (t_ < r_), t_++) {            \
                    int mr = (int)(q_ + (t_ < r_));                                               \
                    T* cb_ = C + m0 * ldc + j;                                                    \
                    const ptrdiff_t cld = ldc;                                                    \
                    const T* rb_ = R ? R + m0 * ldc + j : NULL;                                   \
                    const T* ak0 = A + m0 * lda + (KO ? 0 : k0);                                  \
                    const ptrdiff_t* ko = KO ? KO + k0 : NULL;                                    \
                    KSKP_SWITCH(T, SUF, L, NT, MRMAX)                                             \
                }                                                                                 \
                k0 += KSKP_KC;                                                                    \
            } while (k0 < K);                                                                     \
        }                                                                                         \
        KSKP_MAP_ROWS(T, C, ldc, 0, M, c0, c1, act);                                              \
    }

/* The packed GEMM's one-row case, y[j] = sum_k x[k] * B[k][j] for the columns of strips
   [s0, s1) below N: a batch-1 recurrent step. One row gives each strip's tile a single chain of
   adds per vector, so GS strips go at once (GS x NV independent accumulators: 8 in flight), the
   k loop streaming the GS strips side by side; strips left over go one at a time with the even
   and odd rows in separate accumulators. Columns at or past N are never written. */
#define KSKV_DEFINE(T, SUF, ATTR, VS, GS)                                                         \
    ATTR static void kskv_gemv_##T##_##SUF(ptrdiff_t K, const T* x, const T* Bp, ptrdiff_t s0,    \
            ptrdiff_t s1, ptrdiff_t N, T* y)                                                      \
    {                                                                                             \
        typedef T V __attribute__((vector_size(VS), aligned(sizeof(T))));                         \
        typedef T U __attribute__((vector_size(VS), aligned(sizeof(T)), may_alias));              \
        enum { L = VS / sizeof(T), SW = KSK_STRIP_BYTES / sizeof(T), NV = SW / L };               \
        T tmp[SW];                                                                                \
        ptrdiff_t s = s0;                                                                         \
        for (; s + GS <= s1; s += GS) {                                                           \
            V acc[GS][NV];                                                                        \
            _Pragma("GCC unroll 8") for (int g = 0; g < GS; g++)                                  \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[g][v] = (V){0};          \
            const T* b = Bp + s * K * SW;                                                         \
            for (ptrdiff_t k = 0; k < K; k++) {                                                   \
                T a = x[k];                                                                       \
                _Pragma("GCC unroll 8") for (int g = 0; g < GS; g++)                              \
                    _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                          \
                        acc[g][v] += a * *(const V*)(b + (g * K + k) * SW + v * L);               \
            }                                                                                     \
            _Pragma("GCC unroll 8") for (int g = 0; g < GS; g++) {                                \
                ptrdiff_t j = (s + g) * SW, width = N - j < SW ? N - j : SW;                      \
                if (width == SW) {                                                                \
                    _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) *(U*)(y + j + v * L) = acc[g][v]; \
                } else if (width > 0) {                                                           \
                    _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) *(U*)(tmp + v * L) = acc[g][v]; \
                    for (ptrdiff_t c = 0; c < width; c++) y[j + c] = tmp[c];                      \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        for (; s < s1; s++) {                                                                     \
            V a0[NV], a1[NV];                                                                     \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) a0[v] = a1[v] = (V){0};          \
            const T* b = Bp + s * K * SW;                                                         \
            ptrdiff_t k = 0;                                                                      \
            for (; k + 1 < K; k += 2) {                                                           \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                            \
                    a0[v] += x[k] * *(const V*)(b + k * SW + v * L);                              \
                    a1[v] += x[k + 1] * *(const V*)(b + (k + 1) * SW + v * L);                    \
                }                                                                                 \
            }                                                                                     \
            if (k < K)                                                                            \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) a0[v] += x[k] * *(const V*)(b + k * SW + v * L); \
            ptrdiff_t j = s * SW, width = N - j < SW ? N - j : SW;                                \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) *(U*)(tmp + v * L) = a0[v] + a1[v]; \
            for (ptrdiff_t c = 0; c < width; c++) y[j + c] = tmp[c];                              \
        }                                                                                         \
    }

#define KSKP_INT_float int32_t
#define KSKP_INT_double int64_t

#define KSKP_SCALAR(T)                                                                            \
    static void kskp_gemm_##T##_base(ptrdiff_t M, ptrdiff_t K, const T* A, ptrdiff_t lda,         \
            const T* Bp, ptrdiff_t s0, ptrdiff_t s1, ptrdiff_t N, T* C, ptrdiff_t ldc,            \
            const T* bias, int act, const T* R, const ptrdiff_t* KO) {                            \
        enum { SW = KSK_STRIP_BYTES / sizeof(T) };                                                \
        for (ptrdiff_t s = s0; s < s1; s++) {                                                     \
            ptrdiff_t j = s * SW, width = N - j < SW ? N - j : SW;                                \
            for (ptrdiff_t m = 0; m < M; m++) {                                                   \
                T acc[SW];                                                                        \
                for (ptrdiff_t c = 0; c < SW; c++) acc[c] = 0;                                    \
                for (ptrdiff_t k = 0; k < K; k++) {                                               \
                    T a = KO ? *(const T*)((const char*)(A + m * lda) + KO[k]) : A[m * lda + k];  \
                    const T* b = Bp + (s * K + k) * SW;                                           \
                    for (ptrdiff_t c = 0; c < SW; c++) acc[c] += a * b[c];                        \
                }                                                                                 \
                for (ptrdiff_t c = 0; c < width; c++) {                                           \
                    T v = acc[c] + (bias ? bias[j + c] : (T)0);                                   \
                    if (R) v += R[m * ldc + j + c];                                               \
                    KSKP_EP1(v, act);                                                             \
                    C[m * ldc + j + c] = v;                                                       \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        KSKP_MAP_ROWS(T, C, ldc, 0, M, s0 * SW, s1 * SW < N ? s1 * SW : N, act);                  \
    }

/* Bp = B (K x N, row stride ldb) packed in strips (see above); Bp holds ksk_packed_size. */
#define KSK_PACK(T)                                                                               \
    static void ksk_pack_##T(ptrdiff_t K, ptrdiff_t N, const T* B, ptrdiff_t ldb, T* Bp) {        \
        enum { SW = KSK_STRIP_BYTES / sizeof(T) };                                                \
        ptrdiff_t ns = (N + SW - 1) / SW;                                                         \
        for (ptrdiff_t s = 0; s < ns; s++)                                                        \
            for (ptrdiff_t k = 0; k < K; k++)                                                     \
                for (ptrdiff_t c = 0; c < SW; c++)                                                \
                    Bp[(s * K + k) * SW + c] = s * SW + c < N ? B[k * ldb + s * SW + c] : (T)0;   \
    }
KSK_PACK(float)
KSK_PACK(double)

typedef void (*ksk_float_t)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const float*, ptrdiff_t, const float*,
                            ptrdiff_t, float*, ptrdiff_t);
typedef void (*ksk_double_t)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const double*, ptrdiff_t, const double*,
                             ptrdiff_t, double*, ptrdiff_t);

typedef void (*kskp_float_t)(ptrdiff_t, ptrdiff_t, const float*, ptrdiff_t, const float*, ptrdiff_t,
                             ptrdiff_t, ptrdiff_t, float*, ptrdiff_t, const float*, int, const float*,
                             const ptrdiff_t*);
typedef void (*kskp_double_t)(ptrdiff_t, ptrdiff_t, const double*, ptrdiff_t, const double*, ptrdiff_t,
                              ptrdiff_t, ptrdiff_t, double*, ptrdiff_t, const double*, int, const double*,
                              const ptrdiff_t*);

#if defined(__GNUC__) && !defined(__clang__)
KSK_DEFINE(float, base, , 16, 6)
KSK_DEFINE(double, base, , 16, 6)
KSKP_SCALAR(float)
KSKP_SCALAR(double)
KSKV_DEFINE(float, base, , 16, 1)
KSKV_DEFINE(double, base, , 16, 1)
#if KL_MULTIVERSION && defined(__x86_64__)
KSK_DEFINE(float, avx2, KL_TARGET_AVX2, 32, 6)
KSK_DEFINE(double, avx2, KL_TARGET_AVX2, 32, 6)
KSK_DEFINE(float, avx512, KL_TARGET_AVX512, 64, 12)
KSK_DEFINE(double, avx512, KL_TARGET_AVX512, 64, 12)
KSKP_DEFINE(float, avx2, KL_TARGET_AVX2, 32, 6, 2)
KSKP_DEFINE(double, avx2, KL_TARGET_AVX2, 32, 6, 2)
KSKP_DEFINE(float, avx512, KL_TARGET_AVX512, 64, 12, 2)
KSKP_DEFINE(double, avx512, KL_TARGET_AVX512, 64, 12, 2)
KSKV_DEFINE(float, avx2, KL_TARGET_AVX2, 32, 2)
KSKV_DEFINE(double, avx2, KL_TARGET_AVX2, 32, 1)
KSKV_DEFINE(float, avx512, KL_TARGET_AVX512, 64, 4)
KSKV_DEFINE(double, avx512, KL_TARGET_AVX512, 64, 2)
#define KSK_MULTIVERSION 1
#else
#define KSK_MULTIVERSION 0
#endif
#else
#define KSK_MULTIVERSION 0
/* other compilers: plain loops (the callers still get the right answer) */
#define KSK_SCALAR(T)                                                                             \
    static void ksk_gemm_##T##_base(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const T* A,            \
            ptrdiff_t lda, const T* B, ptrdiff_t ldb, T* C, ptrdiff_t ldc) {                      \
        for (ptrdiff_t m = 0; m < M; m++) {                                                       \
            for (ptrdiff_t j = 0; j < N; j++) C[m * ldc + j] = 0;                                 \
            for (ptrdiff_t k = 0; k < K; k++) {                                                   \
                T a = A[m * lda + k];                                                             \
                for (ptrdiff_t j = 0; j < N; j++) C[m * ldc + j] += a * B[k * ldb + j];           \
            }                                                                                     \
        }                                                                                         \
    }
KSK_SCALAR(float)
KSK_SCALAR(double)
KSKP_SCALAR(float)
KSKP_SCALAR(double)
#define KSKV_SCALAR(T)                                                                            \
    static void kskv_gemv_##T##_base(ptrdiff_t K, const T* x, const T* Bp, ptrdiff_t s0,          \
            ptrdiff_t s1, ptrdiff_t N, T* y) {                                                    \
        enum { SW = KSK_STRIP_BYTES / sizeof(T) };                                                \
        for (ptrdiff_t s = s0; s < s1; s++)                                                       \
            for (ptrdiff_t c = 0; c < SW && s * SW + c < N; c++) {                                \
                T a = 0;                                                                          \
                for (ptrdiff_t k = 0; k < K; k++) a += x[k] * Bp[(s * K + k) * SW + c];           \
                y[s * SW + c] = a;                                                                \
            }                                                                                     \
    }
KSKV_SCALAR(float)
KSKV_SCALAR(double)
#endif

static ksk_float_t ksk_gemm_float = ksk_gemm_float_base;
static ksk_double_t ksk_gemm_double = ksk_gemm_double_base;
typedef void (*kskv_float_t)(ptrdiff_t, const float*, const float*, ptrdiff_t, ptrdiff_t, ptrdiff_t, float*);
typedef void (*kskv_double_t)(ptrdiff_t, const double*, const double*, ptrdiff_t, ptrdiff_t, ptrdiff_t, double*);
static kskv_float_t kskv_gemv_float = kskv_gemv_float_base;
static kskv_double_t kskv_gemv_double = kskv_gemv_double_base;
static kskp_float_t kskp_gemm_float = kskp_gemm_float_base;
static kskp_double_t kskp_gemm_double = kskp_gemm_double_base;

/* Pick the variant for ``level`` (kl_cpu_level's answer); returns the level used. */
static int ksk_use(int level) {
#if KSK_MULTIVERSION
    if (level >= KL_ISA_AVX512) {
        ksk_gemm_float = ksk_gemm_float_avx512;
        ksk_gemm_double = ksk_gemm_double_avx512;
        kskp_gemm_float = kskp_gemm_float_avx512;
        kskv_gemv_float = kskv_gemv_float_avx512;
        kskv_gemv_double = kskv_gemv_double_avx512;
        kskp_gemm_double = kskp_gemm_double_avx512;
        return KL_ISA_AVX512;
    }
    if (level >= KL_ISA_AVX2) {
        ksk_gemm_float = ksk_gemm_float_avx2;
        ksk_gemm_double = ksk_gemm_double_avx2;
        kskp_gemm_float = kskp_gemm_float_avx2;
        kskv_gemv_float = kskv_gemv_float_avx2;
        kskv_gemv_double = kskv_gemv_double_avx2;
        kskp_gemm_double = kskp_gemm_double_avx2;
        return KL_ISA_AVX2;
    }
#else
    (void)level;
#endif
    ksk_gemm_float = ksk_gemm_float_base;
    ksk_gemm_double = ksk_gemm_double_base;
    kskp_gemm_float = kskp_gemm_float_base;
    kskv_gemv_float = kskv_gemv_float_base;
    kskv_gemv_double = kskv_gemv_double_base;
    kskp_gemm_double = kskp_gemm_double_base;
    return KL_ISA_BASELINE;
}
#endif
