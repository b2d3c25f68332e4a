# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Transposed convolution (rank 1-3) as GEMM + col2im (scatter-add).

Same contract as ``conv.pyx``: const flat IN views, a caller-allocated OUT view, a named
ConvGeometry (``_conv_geometry.pxd``; ``pad_before`` is the padding of the equivalent forward
convolution, output -> input) checked before the GIL is released, the shared epilogue and
activation codes (``_epilogue.pxd``, ``_act.pxd``). The op embeds a rank-1 length L as
``(L, 1, 1)``: tasks split the first axis.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free

from _act cimport activation_codes, check_epilogue_act
from _blas cimport gemm
from _conv_geometry cimport Geom, check_bias_size, check_kernel_size, load_geometry
from _epilogue cimport act_inplace

#: the activation codes (name -> code) of every kernel module (_act.pxd)
ACTIVATIONS = activation_codes()


def conv_transpose_forward(const floating[::1] x, const floating[::1] w, const floating[::1] bias,
                           floating[::1] out, dict geometry, bint use_bias, int act,
                           Py_ssize_t block, int n_threads):
    """Transposed convolution as GEMM + col2im (scatter-add):
    ``out[o] = sum over input i and tap t with o = i*s - p + t*d of x[i] @ W[t]^T``.

    w: the Keras kernel ``(k0, k1, k2, cout, cin)`` flattened, i.e. ``(taps * cout, cin)``.
    The OpenMP tasks are (sample, block of ``block`` output indices on axis 0): each computes the
    GEMM for the input rows that reach its block and scatters only into its own block, so no two
    threads write the same output (the few input rows at block edges are computed twice). The
    caller holds BLAS to one thread when ``n_threads > 1``.
    """
    cdef Geom g
    load_geometry(geometry, &g, x.shape[0], out.shape[0], "conv_transpose_forward")
    if g.groups != 1:
        raise ValueError(f"conv_transpose_forward: geometry groups must be 1, got {g.groups}")
    check_kernel_size(w.shape[0], &g, g.cout * g.cin, "conv_transpose_forward")
    check_bias_size(bias.shape[0], use_bias, g.cout, "conv_transpose_forward")
    check_epilogue_act(act, "conv_transpose_forward")
    if block < 1:
        raise ValueError(f"conv_transpose_forward: block must be >= 1, got {block}")
    cdef Py_ssize_t Pout = g.outd[0] * g.outd[1] * g.outd[2]
    if g.n == 0 or Pout == 0:
        return
    cdef Py_ssize_t C = g.cin, F = g.cout, K0 = g.k[0], K1 = g.k[1], K2 = g.k[2]
    cdef Py_ssize_t TF = K0 * K1 * K2 * F
    cdef Py_ssize_t pin_plane = g.ind[1] * g.ind[2], pout_plane = g.outd[1] * g.outd[2]
    cdef Py_ssize_t Pin = g.ind[0] * pin_plane
    cdef Py_ssize_t nblk = (g.outd[0] + block - 1) // block, total = g.n * nblk
    cdef Py_ssize_t max_in = (block - 1 + (K0 - 1) * g.dil[0]) // g.s[0] + 2
    if max_in > g.ind[0]:
        max_in = g.ind[0]
    cdef const floating* xp = &x[0] if x.shape[0] > 0 else NULL
    cdef const floating* wp = &w[0]
    cdef const floating* bp = &bias[0] if bias.shape[0] > 0 else NULL
    cdef floating* yp = &out[0]
    cdef floating* col = NULL
    cdef floating* dst
    cdef const floating* src
    cdef int failed = 0
    cdef Py_ssize_t task, b, o_lo, o_hi, i_lo, i_hi, num, rows, r, i0, i1, i2, a, bb, cc, q0, q1, q2, f
    with nogil, parallel(num_threads=n_threads):
        col = <floating*>malloc((max_in * pin_plane * TF + 1) * sizeof(floating))
        try:
            for task in prange(total, schedule="dynamic"):
                if col == NULL:
                    failed += 1
                    continue
                b = task // nblk
                o_lo = (task % nblk) * block
                o_hi = o_lo + block
                if o_hi > g.outd[0]:
                    o_hi = g.outd[0]
                # input rows i with i*s - p + a*d in [o_lo, o_hi) for some tap a
                num = o_lo + g.pad[0] - (K0 - 1) * g.dil[0]
                if num <= 0:
                    i_lo = 0
                else:
                    i_lo = (num + g.s[0] - 1) // g.s[0]
                i_hi = (o_hi - 1 + g.pad[0]) // g.s[0] + 1
                if i_hi > g.ind[0]:
                    i_hi = g.ind[0]
                # the block starts from the bias (or zero)
                if not g.cf:
                    dst = yp + b * g.yb + o_lo * g.y0
                    for r in range((o_hi - o_lo) * pout_plane):
                        for f in range(F):
                            dst[r * F + f] = bp[f] if use_bias else 0
                else:
                    for f in range(F):
                        dst = yp + b * g.yb + f * Pout + o_lo * pout_plane
                        for r in range((o_hi - o_lo) * pout_plane):
                            dst[r] = bp[f] if use_bias else 0
                if i_hi > i_lo:
                    rows = (i_hi - i_lo) * pin_plane
                    if not g.cf:
                        gemm(False, True, <int>rows, <int>TF, <int>C, <floating>1.0,
                             xp + b * g.xb + i_lo * pin_plane * C, <int>C, wp, <int>C,
                             <floating>0.0, col, <int>TF)
                    else:
                        gemm(True, True, <int>rows, <int>TF, <int>C, <floating>1.0,
                             xp + b * g.xb + i_lo * pin_plane, <int>Pin, wp, <int>C,
                             <floating>0.0, col, <int>TF)
                    for r in range(rows):
                        i0 = i_lo + r // pin_plane
                        i1 = (r // g.ind[2]) % g.ind[1]
                        i2 = r % g.ind[2]
                        for a in range(K0):
                            q0 = i0 * g.s[0] - g.pad[0] + a * g.dil[0]
                            if q0 < o_lo or q0 >= o_hi:
                                continue
                            for bb in range(K1):
                                q1 = i1 * g.s[1] - g.pad[1] + bb * g.dil[1]
                                if q1 < 0 or q1 >= g.outd[1]:
                                    continue
                                for cc in range(K2):
                                    q2 = i2 * g.s[2] - g.pad[2] + cc * g.dil[2]
                                    if q2 < 0 or q2 >= g.outd[2]:
                                        continue
                                    src = col + r * TF + ((a * K1 + bb) * K2 + cc) * F
                                    if not g.cf:
                                        dst = yp + b * g.yb + q0 * g.y0 + q1 * g.y1 + q2 * F
                                        for f in range(F):
                                            dst[f] = dst[f] + src[f]
                                    else:
                                        dst = yp + b * g.yb + q0 * pout_plane + q1 * g.outd[2] + q2
                                        for f in range(F):
                                            dst[f * Pout] = dst[f * Pout] + src[f]
                if act != 0:
                    if not g.cf:
                        dst = yp + b * g.yb + o_lo * g.y0
                        act_inplace(dst, (o_hi - o_lo) * pout_plane * F, act)
                    else:
                        for f in range(F):
                            dst = yp + b * g.yb + f * Pout + o_lo * pout_plane
                            act_inplace(dst, (o_hi - o_lo) * pout_plane, act)
        finally:
            free(col)
    if failed:
        raise MemoryError("conv_transpose_forward: could not allocate the GEMM scratch")
