# The only place that touches omp_* (openmp_shim.h): with OpenMP these are the real functions,
# without it serial stubs, so every kernel builds from one source either way.
cdef extern from "openmp_shim.h":
    bint KLAYERS_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
