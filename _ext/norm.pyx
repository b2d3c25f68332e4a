# cython: language_level=3
"""Normalization kernels.

- ``layer_norm_rows``: layer normalization over the trailing axes: for every row of
  ``x (R, N)``, ``out = (x - mean) / sqrt(var + epsilon) * gamma + beta`` with the biased
  variance.
- ``channel_affine``: ``out[p, c, q] = x[p, c, q] * scale[c] + shift[c]``, the inference pass
  of BatchNormalization once its per-channel coefficients are known (Q = 1 is channels-last).

Level 2 of the kernel pattern (see DESIGN.md): const IN views, caller-allocated OUT view,
shapes checked here before the GIL is released, rows split over threads with ``prange``.
A row is three passes that stay in L1 (mean; variance about the mean, as ``tf.nn.moments``
computes it; normalize), written in C (``layer_norm_rows.h``) so that the two reductions
vectorise (``omp simd reduction``) and the loops are compiled for AVX-512, AVX2+FMA and baseline
x86-64, one picked at import on the CPU-feature ladder shared by every kernel module
(``cpu_features.h``).
NaN and inf propagate to their row as they do in TensorFlow.
"""
from cython cimport floating
from cython.parallel cimport prange

from _cpu cimport kl_cpu_level, kl_isa_name

cdef extern from "layer_norm_rows.h":
    void kln_row_f32(const float* x, const float* g, const float* b, float* out, Py_ssize_t n,
                     float eps) noexcept nogil
    void kln_row_f64(const double* x, const double* g, const double* b, double* out, Py_ssize_t n,
                     double eps) noexcept nogil
    void kaf_vec_f32(const float* x, const float* a, const float* b, float* out, Py_ssize_t n) noexcept nogil
    void kaf_vec_f64(const double* x, const double* a, const double* b, double* out, Py_ssize_t n) noexcept nogil
    void kaf_one_f32(const float* x, float a, float b, float* out, Py_ssize_t n) noexcept nogil
    void kaf_one_f64(const double* x, double a, double b, double* out, Py_ssize_t n) noexcept nogil
    void kln_use(int level) noexcept nogil


def select_isa(int max_level=2):
    """Use the loops of the widest rung of the CPU-feature ladder (``cpu_features.h``: 0 baseline,
    1 AVX2 + FMA, 2 AVX-512) that is at most ``max_level`` and that this CPU has; returns its
    name. Import selects the widest; tests force lower levels."""
    cdef int level = kl_cpu_level(max_level)
    kln_use(level)
    return kl_isa_name(level).decode()


#: the instruction set chosen at import (the same in every kernel module)
ISA = select_isa()


cdef inline void _row(const floating* x, const floating* g, const floating* b, floating* out,
                      Py_ssize_t n, double eps) noexcept nogil:
    if floating is float:
        kln_row_f32(x, g, b, out, n, <float>eps)
    else:
        kln_row_f64(x, g, b, out, n, eps)


def layer_norm_rows(const floating[:, ::1] x__rn, const floating[::1] gamma__n,
                    const floating[::1] beta__n, floating[:, ::1] out__rn,
                    bint use_gamma, bint use_beta, double epsilon, int n_threads):
    """out__rn[r] = (x__rn[r] - mean) / sqrt(var + epsilon) * gamma__n + beta__n, per row r.

    Shapes (checked by the caller, again here): x and out (R, N); gamma and beta (N,), or
    any length (e.g. 0) when ``use_gamma`` / ``use_beta`` is false. ``epsilon`` is rounded
    to the dtype, as TensorFlow adds it in the input's dtype.
    """
    cdef Py_ssize_t R = x__rn.shape[0], N = x__rn.shape[1], r
    if out__rn.shape[0] != R or out__rn.shape[1] != N:
        raise ValueError(f"layer_norm_rows: shape mismatch x=({R}, {N}) out=({out__rn.shape[0]}, {out__rn.shape[1]})")
    if (use_gamma and gamma__n.shape[0] != N) or (use_beta and beta__n.shape[0] != N):
        raise ValueError(f"layer_norm_rows: gamma/beta need {N} values, got {gamma__n.shape[0]} and {beta__n.shape[0]}")
    if R == 0 or N == 0:
        return
    cdef const floating* xp = &x__rn[0, 0]
    cdef floating* op = &out__rn[0, 0]
    cdef const floating* gp = &gamma__n[0] if use_gamma else NULL
    cdef const floating* bp = &beta__n[0] if use_beta else NULL
    cdef int nt = <int>max(1, min(<Py_ssize_t>n_threads, R))
    with nogil:
        if nt == 1:
            for r in range(R):
                _row(xp + r * N, gp, bp, op + r * N, N, epsilon)
        else:
            for r in prange(R, num_threads=nt, schedule="static"):
                _row(xp + r * N, gp, bp, op + r * N, N, epsilon)


cdef inline void _affine_task(const floating* x, const floating* a, const floating* b, floating* out,
                              Py_ssize_t t, Py_ssize_t C, Py_ssize_t Q) noexcept nogil:
    # Q == 1: task t is row p = t, scaled by the vectors a and b; else task t is the row
    # (p, c) = divmod(t, C) of Q values, scaled by the scalars a[c] and b[c]
    cdef Py_ssize_t c
    if Q == 1:
        if floating is float:
            kaf_vec_f32(x + t * C, a, b, out + t * C, C)
        else:
            kaf_vec_f64(x + t * C, a, b, out + t * C, C)
    else:
        c = t % C
        if floating is float:
            kaf_one_f32(x + t * Q, a[c], b[c], out + t * Q, Q)
        else:
            kaf_one_f64(x + t * Q, a[c], b[c], out + t * Q, Q)


def channel_affine(const floating[:, :, ::1] x__pcq, const floating[::1] scale__c,
                   const floating[::1] shift__c, floating[:, :, ::1] out__pcq, int n_threads):
    """out__pcq[p, c, q] = x__pcq[p, c, q] * scale__c[c] + shift__c[c].

    Shapes (checked by the caller, again here): x and out (P, C, Q), scale and shift (C,).
    Work is split over threads by rows: P rows of C values when Q == 1, else P*C rows of Q.
    """
    cdef Py_ssize_t P = x__pcq.shape[0], C = x__pcq.shape[1], Q = x__pcq.shape[2], t
    if out__pcq.shape[0] != P or out__pcq.shape[1] != C or out__pcq.shape[2] != Q:
        raise ValueError(f"channel_affine: shape mismatch x=({P}, {C}, {Q}) "
                         f"out=({out__pcq.shape[0]}, {out__pcq.shape[1]}, {out__pcq.shape[2]})")
    if scale__c.shape[0] != C or shift__c.shape[0] != C:
        raise ValueError(f"channel_affine: scale/shift need {C} values, got {scale__c.shape[0]} and {shift__c.shape[0]}")
    if P == 0 or C == 0 or Q == 0:
        return
    cdef const floating* xp = &x__pcq[0, 0, 0]
    cdef floating* op = &out__pcq[0, 0, 0]
    cdef const floating* ap = &scale__c[0]
    cdef const floating* bp = &shift__c[0]
    cdef Py_ssize_t tasks = P if Q == 1 else P * C
    cdef int nt = <int>max(1, min(<Py_ssize_t>n_threads, tasks))
    with nogil:
        if nt == 1:
            for t in range(tasks):
                _affine_task(xp, ap, bp, op, t, C, Q)
        else:
            for t in prange(tasks, num_threads=nt, schedule="static"):
                _affine_task(xp, ap, bp, op, t, C, Q)
