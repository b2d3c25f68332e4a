# The one CPU-feature ladder (cpu_features.h): every module that has per-ISA variants of its hot
# loops picks them with kl_cpu_level at import, so all kernels agree on the instruction set.
cdef extern from "cpu_features.h":
    int KL_ISA_BASELINE
    int KL_ISA_AVX2
    int KL_ISA_AVX512
    int kl_cpu_level(int max_level) noexcept nogil
    const char* kl_isa_name(int level) noexcept nogil
