# The few-rows and packed GEMMs of skinny_gemm.h, declared once for the conv, dense and
# recurrent kernels, with the helpers they share: the packed length of a K x N matrix, the
# packed GEMM over a range of strips (float32 / float64), and the ISA selection that also picks
# the elementwise maps of the epilogue.
from cython cimport floating

from _cpu cimport kl_cpu_level, kl_isa_name
from _epilogue cimport kl_act_use

cdef extern from "skinny_gemm.h":
    int KSK_MAX_ROWS
    int KSK_STRIP_BYTES
    int KSK_PACKED_MAX_ROWS
    int ksk_use(int level) noexcept nogil
    void ksk_gemm_float(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A, Py_ssize_t lda,
                        const float* B, Py_ssize_t ldb, float* C, Py_ssize_t ldc) noexcept nogil
    void ksk_gemm_double(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double* A, Py_ssize_t lda,
                         const double* B, Py_ssize_t ldb, double* C, Py_ssize_t ldc) noexcept nogil
    void kskp_gemm_float(Py_ssize_t M, Py_ssize_t K, const float* A, Py_ssize_t lda, const float* Bp,
                         Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t N, float* C, Py_ssize_t ldc,
                         const float* bias, int act, const float* R, const Py_ssize_t* ko) noexcept nogil
    void kskp_gemm_double(Py_ssize_t M, Py_ssize_t K, const double* A, Py_ssize_t lda, const double* Bp,
                          Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t N, double* C, Py_ssize_t ldc,
                          const double* bias, int act, const double* R, const Py_ssize_t* ko) noexcept nogil
    void kskv_gemv_float(Py_ssize_t K, const float* x, const float* Bp, Py_ssize_t s0, Py_ssize_t s1,
                         Py_ssize_t N, float* y) noexcept nogil
    void kskv_gemv_double(Py_ssize_t K, const double* x, const double* Bp, Py_ssize_t s0, Py_ssize_t s1,
                          Py_ssize_t N, double* y) noexcept nogil
    void ksk_pack_float(Py_ssize_t K, Py_ssize_t N, const float* B, Py_ssize_t ldb, float* Bp) noexcept nogil
    void ksk_pack_double(Py_ssize_t K, Py_ssize_t N, const double* B, Py_ssize_t ldb, double* Bp) noexcept nogil


cdef inline Py_ssize_t strips(Py_ssize_t n, Py_ssize_t itemsize) noexcept nogil:
    """Strips of a packed matrix with ``n`` columns of ``itemsize``-byte values."""
    cdef Py_ssize_t sw = KSK_STRIP_BYTES // itemsize
    return (n + sw - 1) // sw


cdef inline Py_ssize_t packed_len(Py_ssize_t k, Py_ssize_t n, Py_ssize_t itemsize) noexcept nogil:
    """Values of the packed form of a ``k x n`` matrix (strips padded with zeros)."""
    return strips(n, itemsize) * (KSK_STRIP_BYTES // itemsize) * k


cdef inline void packed_gemm(Py_ssize_t m, Py_ssize_t k, const floating* a, Py_ssize_t lda, const floating* bp,
                             Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t n, floating* c,
                             Py_ssize_t ldc, const floating* bias=NULL, int act=0,
                             const floating* residual=NULL, const Py_ssize_t* ko=NULL) noexcept nogil:
    """C[:, cols] = act(A @ B[:, cols] + bias[cols]) for the columns of strips ``[s0, s1)``
    below ``n``; B packed, ``c`` and ``bias`` (or NULL) indexed from column 0, ``act`` any
    activation code (relu and relu6 in the register tile's store, the others mapped over each
    finished row tile); ``residual`` (or NULL), laid out as ``c``, is added after the bias.
    ``ko`` (or NULL: A's rows contiguous): A[r][j] is read at byte offset ``ko[j]`` from the
    start of row r (``a + r * lda``), a convolution's window read in place."""
    if floating is float:
        kskp_gemm_float(m, k, a, lda, bp, s0, s1, n, c, ldc, bias, act, residual, ko)
    else:
        kskp_gemm_double(m, k, a, lda, bp, s0, s1, n, c, ldc, bias, act, residual, ko)


cdef inline void packed_gemv(Py_ssize_t k, const floating* x, const floating* bp, Py_ssize_t s0, Py_ssize_t s1,
                             Py_ssize_t n, floating* y) noexcept nogil:
    """y[cols] = x @ B[:, cols] for the columns of strips ``[s0, s1)`` below ``n`` (one row; B
    packed, ``y`` indexed from column 0; columns at or past ``n`` untouched)."""
    if floating is float:
        kskv_gemv_float(k, x, bp, s0, s1, n, y)
    else:
        kskv_gemv_double(k, x, bp, s0, s1, n, y)


cdef inline str select_gemm_isa(int max_level):
    """Use the GEMMs and the epilogue's elementwise maps of the widest rung of the CPU-feature
    ladder (cpu_features.h) at most ``max_level`` that this CPU has; its name."""
    cdef int level = kl_cpu_level(max_level)
    ksk_use(level)
    kl_act_use(level)
    return kl_isa_name(level).decode()
