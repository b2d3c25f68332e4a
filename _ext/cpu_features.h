/* The one CPU-feature ladder of every kernel module.
 *
 * Kernels are built for the baseline of the target (SSE2 on x86-64); their hot loops are also
 * compiled for wider instruction sets under GCC target attributes (KL_TARGET_AVX2,
 * KL_TARGET_AVX512) and one variant is picked at import by kl_cpu_level(), checked at run
 * time on the CPU the process runs on. Every module climbs this same ladder, so all kernels
 * of one process agree on the instruction set (tests force a lower level to cover the others):
 *
 *   level 0  baseline   the build's own flags
 *   level 1  avx2       AVX2 + FMA (Haswell and later)
 *   level 2  avx512     AVX-512 F + DQ on top of level 1 (Skylake-X and later)
 *
 * Other compilers and targets (clang, non-x86) get level 0 only: KL_MULTIVERSION is 0 there and
 * the target macros expand to nothing, so the variants collapse into the baseline one.
 */
#ifndef KLAYERS_CPU_FEATURES_H
#define KLAYERS_CPU_FEATURES_H

#if defined(__GNUC__)
/* vector arguments of the generic-vector helpers: the ABI note is about other compilers */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define KL_MULTIVERSION 1
#define KL_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define KL_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx2,fma")))
#else
#define KL_MULTIVERSION 0
#define KL_TARGET_AVX2
#define KL_TARGET_AVX512
#endif

enum { KL_ISA_BASELINE = 0, KL_ISA_AVX2 = 1, KL_ISA_AVX512 = 2 };

/* ``ptr = fn_avx512 / fn_avx2 / fn_base`` for ladder level ``level``, where the header built
   those variants (``mv``: its own multiversion flag, a macro that is 0 or 1), else fn_base:
   the one body of every header's ``*_use(level)``. */
#define KL_PICK(mv, ptr, fn, level) KL_PICK_(mv, ptr, fn, level)
#define KL_PICK_(mv, ptr, fn, level) KL_PICK_##mv(ptr, fn, level)
#define KL_PICK_1(ptr, fn, level)                                                                 \
    ((ptr) = (level) >= KL_ISA_AVX512 ? fn##_avx512 : (level) >= KL_ISA_AVX2 ? fn##_avx2 : fn##_base)
#define KL_PICK_0(ptr, fn, level) ((void)(level), (ptr) = fn##_base)

/* The highest level <= max_level that this CPU supports (0 when not multiversioned). */
static int kl_cpu_level(int max_level) {
#if KL_MULTIVERSION
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (max_level >= KL_ISA_AVX512 && avx2 && __builtin_cpu_supports("avx512f")
            && __builtin_cpu_supports("avx512dq"))
        return KL_ISA_AVX512;
    if (max_level >= KL_ISA_AVX2 && avx2)
        return KL_ISA_AVX2;
#else
    (void)max_level;
#endif
    return KL_ISA_BASELINE;
}

static const char* kl_isa_name(int level) {
    return level == KL_ISA_AVX512 ? "avx512" : (level == KL_ISA_AVX2 ? "avx2" : "baseline");
}

#endif
