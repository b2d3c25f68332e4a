# Row-major GEMM/GEMV over scipy.linalg.cython_blas, fused over float32/float64.
#
# BLAS is column-major; a row-major matrix is its transpose seen column-major, so
# C = op(A) @ op(B) (row-major) is computed as C^T = op(B)^T @ op(A)^T (column-major).
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """C[m, n] = alpha * op(A)[m, k] @ op(B)[k, n] + beta * C, all row-major.

    lda/ldb/ldc are row strides in elements (op(A) is A or A^T as stored)."""
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    if m <= 0 or n <= 0:
        return
    if floating is float:
        sgemm(&ta, &tb, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda, &beta, c, &ldc)


cdef inline void gemv_t(int m, int n, floating alpha, const floating* a, int lda,
                        const floating* x, floating beta, floating* y) noexcept nogil:
    """y[n] = alpha * x[m] @ A[m, n] + beta * y, A row-major (a vector times a matrix)."""
    cdef char t = b'N'
    cdef int one = 1
    if m <= 0 or n <= 0:
        return
    if floating is float:
        sgemv(&t, &n, &m, &alpha, <float*>a, &lda, <float*>x, &one, &beta, y, &one)
    else:
        dgemv(&t, &n, &m, &alpha, <double*>a, &lda, <double*>x, &one, &beta, y, &one)
