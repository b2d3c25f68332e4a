# cython: language_level=3
"""Dense: out = act(x @ kernel + bias) as one GEMM with the bias and a simple activation fused.

Level 2 of the kernel pattern (see DESIGN.md): IN arrays are const views, the OUT array is
allocated by the caller (klayers.ops.dense), shapes are checked again here before the GIL is
released. With ``n_threads`` > 1 the product is split by output units over OpenMP threads,
each a single-threaded BLAS call over its own slice of the kernel (the caller holds BLAS to
one thread then; DESIGN principle 3: one level of parallelism at a time): at batch 1 a GEMV
per slice (memory-bound: each core keeps its slice hot in its own cache, as DESIGN.md's notes
on batch-1 recurrent steps describe), at larger batches a GEMM per slice. BLAS's own thread
pool is never used: its threads and the OpenMP team (which spins for a while after every
kernel, klayers/_ext/__init__.py) would take turns on the same cores: a Dense at batch 16
right after a pooling kernel took 1.6x its time.
"""
from cython cimport floating
from cython.parallel cimport prange

from _act cimport activation_codes, check_epilogue_act
from _blas cimport gemm, gemv_t
from _epilogue cimport act_inplace

#: the activation codes (name -> code) of every kernel module (_act.pxd); the epilogue fuses
#: linear, relu and relu6, anything else is applied by the caller
ACTIVATIONS = activation_codes()


def dense_forward(const floating[:, ::1] x__bi, const floating[:, ::1] w__io,
                  const floating[::1] bias__o, floating[:, ::1] out__bo,
                  int use_bias, int act, int n_threads):
    """out__bo = act(x__bi @ w__io + bias__o).

    Shapes (checked by the caller, again here): x (B, I), w (I, O), bias (O,) (ignored when
    use_bias is 0, may then be length 0), out (B, O). act: an epilogue code of ``ACTIVATIONS``
    (linear, relu, relu6; the shared epilogue of _epilogue.pxd).
    """
    cdef Py_ssize_t b = x__bi.shape[0], i = x__bi.shape[1], o = w__io.shape[1]
    if w__io.shape[0] != i or out__bo.shape[0] != b or out__bo.shape[1] != o:
        raise ValueError(f"dense_forward: shape mismatch x=({b}, {i}) w=({w__io.shape[0]}, {o}) out=({out__bo.shape[0]}, {out__bo.shape[1]})")
    if use_bias and bias__o.shape[0] != o:
        raise ValueError(f"dense_forward: bias has {bias__o.shape[0]} values for {o} units")
    check_epilogue_act(act, "dense_forward")
    if b == 0 or o == 0:
        return
    cdef Py_ssize_t r, c
    cdef floating* row
    cdef floating beta = 0
    cdef Py_ssize_t t, c0, cw, blk, nblk
    with nogil:
        # The bias is written first and the GEMM accumulates onto it (beta = 1): one pass less.
        if use_bias:
            for r in range(b):
                row = &out__bo[r, 0]
                for c in range(o):
                    row[c] = bias__o[c]
            beta = 1
        if i == 0:
            if not use_bias:
                for r in range(b):
                    for c in range(o):
                        out__bo[r, c] = 0
        elif b == 1 and n_threads > 1 and o >= 64 * n_threads:
            # Units split across threads; blocks are multiples of 16 columns (64-byte lines).
            blk = ((o + n_threads - 1) // n_threads + 15) // 16 * 16
            nblk = (o + blk - 1) // blk
            for t in prange(nblk, num_threads=n_threads, schedule="static"):
                c0 = t * blk
                cw = o - c0 if o - c0 < blk else blk
                gemv_t(<int>i, <int>cw, <floating>1.0, &w__io[0, c0], <int>o, &x__bi[0, 0], beta, &out__bo[0, c0])
        elif b == 1:
            # One row is a vector-matrix product: GEMV streams the kernel once, where a
            # one-row GEMM pays its packing overhead (about 10x slower at batch 1).
            gemv_t(<int>i, <int>o, <floating>1.0, &w__io[0, 0], <int>o, &x__bi[0, 0], beta, &out__bo[0, 0])
        elif n_threads > 1 and o >= 32 * n_threads:
            # Units split across OpenMP threads, each a single-threaded BLAS GEMM over its
            # columns (the caller holds BLAS to one thread): BLAS's own thread pool never
            # runs beside the OpenMP team that the kernels before and after keep spinning.
            blk = ((o + n_threads - 1) // n_threads + 15) // 16 * 16
            nblk = (o + blk - 1) // blk
            for t in prange(nblk, num_threads=n_threads, schedule="static"):
                c0 = t * blk
                cw = o - c0 if o - c0 < blk else blk
                gemm(False, False, <int>b, <int>cw, <int>i, <floating>1.0, &x__bi[0, 0], <int>i,
                     &w__io[0, c0], <int>o, beta, &out__bo[0, c0], <int>o)
        else:
            gemm(False, False, <int>b, <int>o, <int>i, <floating>1.0, &x__bi[0, 0], <int>i,
                 &w__io[0, 0], <int>o, beta, &out__bo[0, 0], <int>o)
        # The activation pass is memory-bound and short next to the GEMM; it stays on this
        # thread so that no OpenMP team spins while BLAS's threads work (one level at a time).
        for r in range(b):
            act_inplace(&out__bo[r, 0], o, act)
