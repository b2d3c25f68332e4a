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
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange

from _act cimport activation_codes, check_act
from _blas cimport gemm, gemv_t
from _epilogue cimport act_inplace, epilogue
from _ndarray cimport array_data, array_size, float_type
from _skinny cimport KSK_STRIP_BYTES, packed_gemm, packed_len, select_gemm_isa, strips

cnp.import_array()

#: the activation codes (name -> code) of every kernel module (_act.pxd); the epilogue fuses
#: linear, relu and relu6, anything else is applied by the caller
ACTIVATIONS = activation_codes()

cdef enum:
    _ROW_BLOCK = 256

# the largest rows, inputs or units a kernel takes (sizes past it overflow the products)
cdef Py_ssize_t _MAX_DIM = 2147483647

#: rows of ``x`` per task of the packed path (its row tiles share each strip block in L1)
PACKED_ROW_BLOCK = _ROW_BLOCK


def select_isa(int max_level=2):
    """Use the packed GEMM of the widest rung of the CPU-feature ladder (``cpu_features.h``: 0
    baseline, 1 AVX2 + FMA, 2 AVX-512) that is at most ``max_level`` and that this CPU has;
    returns its name. Import selects the widest; tests force lower levels."""
    return select_gemm_isa(max_level)


#: the instruction set chosen at import (the same in every kernel module)
ISA = select_isa()


cdef inline void _packed_task(const floating* x, Py_ssize_t i, const floating* bp, Py_ssize_t s0, Py_ssize_t s1,
                              Py_ssize_t o, floating* out, Py_ssize_t r0, Py_ssize_t rows,
                              const floating* bias, bint use_bias, int act) noexcept nogil:
    packed_gemm(rows, i, x + r0 * i, i, bp, s0, s1, o, out + r0 * o, o, bias if use_bias else NULL, act)


cdef void _packed_run(const floating* xp, const floating* pp, const floating* bp, floating* op, Py_ssize_t b,
                      Py_ssize_t i, Py_ssize_t o, bint use_bias, int act, int n_threads) noexcept nogil:
    """DensePackedKernel's call on checked pointers."""
    cdef Py_ssize_t ns = strips(o, sizeof(floating))
    if b == 0 or o == 0:
        return
    cdef Py_ssize_t nrc = (b + _ROW_BLOCK - 1) // _ROW_BLOCK
    cdef Py_ssize_t ncs = (n_threads + nrc - 1) // nrc
    if ncs > ns:
        ncs = ns
    cdef Py_ssize_t per = (ns + ncs - 1) // ncs
    ncs = (ns + per - 1) // per
    cdef Py_ssize_t tasks = nrc * ncs, t, r0, rows, s0, s1
    cdef int nt = <int>(n_threads if n_threads < tasks else tasks)
    if i == 0:
        for r0 in range(b):
            for t in range(o):
                op[r0 * o + t] = 0
        epilogue(op, b, o, o, bp, False, use_bias, act)
    elif nt == 1:
        for t in range(tasks):
            r0 = (t // ncs) * _ROW_BLOCK
            rows = min(<Py_ssize_t>_ROW_BLOCK, b - r0)
            s0 = (t % ncs) * per
            s1 = min(s0 + per, ns)
            _packed_task(xp, i, pp, s0, s1, o, op, r0, rows, bp, use_bias, act)
    else:
        for t in prange(tasks, num_threads=nt, schedule="dynamic"):
            r0 = (t // ncs) * _ROW_BLOCK
            rows = min(<Py_ssize_t>_ROW_BLOCK, b - r0)
            s0 = (t % ncs) * per
            s1 = min(s0 + per, ns)
            _packed_task(xp, i, pp, s0, s1, o, op, r0, rows, bp, use_bias, act)


cdef class DensePackedKernel:
    """Dense on a packed kernel, prepared: ``DensePackedKernel(packed, bias, rows, inputs, units,
    use_bias, act, n_threads)`` checks the packed kernel (``w``, ``(inputs, units)``, in the
    strips of ``skinny_gemm.h``: ``klayers._ext.conv.pack_kernel``, holding
    ``klayers._ext.conv.packed_size(inputs, units, itemsize)`` values), the bias, the activation
    code and the thread count once (holding the arrays), and ``kernel(x, out)`` then only checks
    its arrays (type, dtype, C order, size) and runs.

    ``kernel(x, out)``: out = act(x @ w + bias) for ``x`` ``(rows, inputs)`` and ``out``
    ``(rows, units)`` (flat or shaped, C-contiguous, the prepared dtype). Tasks: blocks of
    ``PACKED_ROW_BLOCK`` rows times whole-strip column slices, over ``n_threads`` OpenMP
    threads; no BLAS.
    """
    cdef object packed, bias
    cdef const char* pp
    cdef const char* bp
    cdef int typenum, act, n_threads
    cdef bint use_bias
    cdef Py_ssize_t rows, inputs, units

    def __init__(self, packed, bias, Py_ssize_t rows, Py_ssize_t inputs, Py_ssize_t units, bint use_bias,
                 int act, int n_threads):
        where = "DensePackedKernel"
        self.typenum = float_type(getattr(packed, "dtype", None), where)
        cdef Py_ssize_t p_size = array_size(packed, where, "the packed kernel")
        cdef Py_ssize_t b_size = array_size(bias, where, "the bias")
        cdef Py_ssize_t itemsize = 4 if self.typenum == cnp.NPY_FLOAT else 8
        if rows < 0 or inputs < 0 or units < 0 or rows > _MAX_DIM or inputs > _MAX_DIM or units > _MAX_DIM:
            raise ValueError(f"{where}: rows, inputs and units must be in [0, {_MAX_DIM}], got {rows}, {inputs}, {units}")
        if p_size != packed_len(inputs, units, itemsize):
            raise ValueError(f"{where}: the packed kernel has {p_size} values, "
                             f"not {packed_len(inputs, units, itemsize)} for {inputs} inputs and {units} units")
        if use_bias and b_size != units:
            raise ValueError(f"{where}: bias has {b_size} values for {units} units")
        if n_threads < 1:
            raise ValueError(f"{where}: n_threads must be >= 1, got {n_threads}")
        check_act(act, where)
        self.pp = array_data(packed, self.typenum, p_size, False, where, "the packed kernel") if p_size else NULL
        self.bp = array_data(bias, self.typenum, b_size, False, where, "the bias") if use_bias and b_size else NULL
        self.packed, self.bias = packed, bias
        self.rows, self.inputs, self.units = rows, inputs, units
        self.use_bias, self.act, self.n_threads = use_bias, act, n_threads

    def __call__(self, x, out):
        where = "DensePackedKernel"
        cdef const char* xp = array_data(x, self.typenum, self.rows * self.inputs, False, where, "x")
        cdef char* yp = array_data(out, self.typenum, self.rows * self.units, True, where, "out")
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                _packed_run(<const float*>xp, <const float*>self.pp, <const float*>self.bp, <float*>yp, self.rows,
                            self.inputs, self.units, self.use_bias, self.act, self.n_threads)
            else:
                _packed_run(<const double*>xp, <const double*>self.pp, <const double*>self.bp, <double*>yp,
                            self.rows, self.inputs, self.units, self.use_bias, self.act, self.n_threads)


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
    check_act(act, "dense_forward")
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
