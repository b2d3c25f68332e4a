# cython: language_level=3
"""Softmax over one axis: ``out = exp(x - max) / sum(exp(x - max))``.

Level 2 of the kernel pattern (see DESIGN.md): const IN views, caller-allocated OUT views,
shapes checked here before the GIL is released, ``n_threads`` for the OpenMP split. Two
layouts, both C-contiguous:

- ``softmax_rows``: ``x (R, N)``, softmax along N (the last-axis case). Each row is three
  passes (max; exp and sum; scale), all in L1 for rows up to several thousand values. Rows
  are split over threads with ``prange``.
- ``softmax_strided``: ``x (P, N, Q)``, softmax along N with Q > 1 (any other axis). The
  work is split into (p, column block) tasks; each task runs the same three passes over a
  block of up to ``_QBLOCK`` contiguous columns, so every inner loop is a contiguous,
  vectorisable loop over columns.

The elementwise exp is written in C (``softmax_rows.h``) because it must vectorise:
glibc's ``expf`` is a scalar call, so the float32 path uses a branch-free Cephes-style
``expf`` (range reduction by ln 2, degree-6 polynomial, about 1 ulp), and the row loops are
compiled three times (AVX-512, AVX2+FMA, baseline x86-64) and picked once on the CPU-feature
ladder (``cpu_features.h``, shared by every kernel module), so a baseline build still uses the vectors of the CPU it runs on
(the AVX-512 float32 row, the hot case, is written in intrinsics: vrndscaleps, vscalefps).
float64 uses libm's ``exp`` (accuracy first; no float64 peer is benchmarked).

Special values follow tf-keras on CPU (TensorFlow's Eigen kernel; NumPy's
``exp(x - max) / sum`` gives the same): a row holding NaN or +inf is all NaN, a row of only
-inf is all NaN, a -inf entry among finite ones gets 0. Results do not depend on the thread
count (one row or block is always computed by one thread with the same code).
"""
from cython cimport floating
from cython.parallel cimport prange

from _cpu cimport kl_cpu_level, kl_isa_name

cdef extern from "softmax_rows.h":
    void ksm_row_f32(const float* x, float* out, Py_ssize_t n) noexcept nogil
    void ksm_row_f64(const double* x, double* out, Py_ssize_t n) noexcept nogil
    void ksm_cols_f32(const float* x, float* out, Py_ssize_t n, Py_ssize_t q, Py_ssize_t ld,
                      float* m, float* s) noexcept nogil
    void ksm_cols_f64(const double* x, double* out, Py_ssize_t n, Py_ssize_t q, Py_ssize_t ld,
                      double* m, double* s) noexcept nogil
    void ksm_use(int level) noexcept nogil
    float ksm_expf(float t) noexcept nogil

# Columns per task of the strided kernel: scratch of 2 x 256 values lives on the stack.
cdef enum:
    _QBLOCK = 256


def select_isa(int max_level=2):
    """Use the loops of the widest rung of the CPU-feature ladder (``cpu_features.h``: 0 baseline,
    1 AVX2 + FMA, 2 AVX-512) that is at most ``max_level`` and that this CPU has; returns its
    name. Import selects the widest; tests force lower levels."""
    cdef int level = kl_cpu_level(max_level)
    ksm_use(level)
    return kl_isa_name(level).decode()


#: the instruction set chosen at import (the same in every kernel module)
ISA = select_isa()


def expf(const float[::1] t, float[::1] out):
    """The kernel's float32 exp on ``t <= 0`` (or -inf / NaN), for tests; ``out`` same length."""
    if out.shape[0] != t.shape[0]:
        raise ValueError("expf: out must have the length of t")
    cdef Py_ssize_t i
    for i in range(t.shape[0]):
        out[i] = ksm_expf(t[i])


cdef inline void _row(const floating* x, floating* out, Py_ssize_t n) noexcept nogil:
    if floating is float:
        ksm_row_f32(x, out, n)
    else:
        ksm_row_f64(x, out, n)


def softmax_rows(const floating[:, ::1] x__rn, floating[:, ::1] out__rn, int n_threads):
    """out__rn[r] = softmax(x__rn[r]) for every row r.

    Shapes (checked by the caller, again here): x and out (R, N). ``n_threads`` > 1 splits
    the rows over threads (the caller keeps small inputs on one thread).
    """
    cdef Py_ssize_t R = x__rn.shape[0], N = x__rn.shape[1], r
    if out__rn.shape[0] != R or out__rn.shape[1] != N:
        raise ValueError(f"softmax_rows: shape mismatch x=({R}, {N}) out=({out__rn.shape[0]}, {out__rn.shape[1]})")
    if R == 0 or N == 0:
        return
    cdef const floating* xp = &x__rn[0, 0]
    cdef floating* op = &out__rn[0, 0]
    cdef int nt = <int>max(1, min(<Py_ssize_t>n_threads, R))
    with nogil:
        if nt == 1:
            for r in range(R):
                _row(xp + r * N, op + r * N, N)
        else:
            for r in prange(R, num_threads=nt, schedule="static"):
                _row(xp + r * N, op + r * N, N)


cdef inline void _cols_task(const floating* x, floating* out, Py_ssize_t t, Py_ssize_t nblocks,
                            Py_ssize_t N, Py_ssize_t Q) noexcept nogil:
    cdef floating m[_QBLOCK]
    cdef floating s[_QBLOCK]
    cdef Py_ssize_t p = t // nblocks, j0 = (t % nblocks) * _QBLOCK
    cdef Py_ssize_t q = min(<Py_ssize_t>_QBLOCK, Q - j0)
    cdef Py_ssize_t off = p * N * Q + j0
    if floating is float:
        ksm_cols_f32(x + off, out + off, N, q, Q, m, s)
    else:
        ksm_cols_f64(x + off, out + off, N, q, Q, m, s)


def softmax_strided(const floating[:, :, ::1] x__pnq, floating[:, :, ::1] out__pnq, int n_threads):
    """out__pnq[p, :, q] = softmax(x__pnq[p, :, q]) for every p and q (softmax along axis 1).

    Shapes (checked by the caller, again here): x and out (P, N, Q).
    """
    cdef Py_ssize_t P = x__pnq.shape[0], N = x__pnq.shape[1], Q = x__pnq.shape[2], t
    if out__pnq.shape[0] != P or out__pnq.shape[1] != N or out__pnq.shape[2] != Q:
        raise ValueError(f"softmax_strided: shape mismatch x=({P}, {N}, {Q}) "
                         f"out=({out__pnq.shape[0]}, {out__pnq.shape[1]}, {out__pnq.shape[2]})")
    if P == 0 or N == 0 or Q == 0:
        return
    cdef const floating* xp = &x__pnq[0, 0, 0]
    cdef floating* op = &out__pnq[0, 0, 0]
    cdef Py_ssize_t nblocks = (Q + _QBLOCK - 1) // _QBLOCK, tasks = P * nblocks
    cdef int nt = <int>max(1, min(<Py_ssize_t>n_threads, tasks))
    with nogil:
        if nt == 1:
            for t in range(tasks):
                _cols_task(xp, op, t, nblocks, N, Q)
        else:
            for t in prange(tasks, num_threads=nt, schedule="static"):
                _cols_task(xp, op, t, nblocks, N, Q)
