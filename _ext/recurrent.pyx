# cython: language_level=3
"""Recurrent time loops (SimpleRNN, GRU, LSTM) entirely in compiled code, plus the LSTM
point-wise update that ConvLSTM runs after its convolutions.

Work comes as *tasks* (:func:`rnn_run`): one task is a block of batch rows of one layer (a
whole layer, half a batch, one direction of a Bidirectional layer). A task computes its own
input projections ``x @ kernel`` in time chunks small enough to stay in cache (one GEMM per
chunk, the chunk's inputs copied time-major first), then runs its steps: per step the
recurrent product ``h @ recurrent_kernel`` (GEMM, or GEMV at batch 1), then the gates of
every row, each gate block through one vectorised loop (bias adds fused), the Keras mask
rule (a masked step carries the state; its output is the previous output, or zeros with
``zero_output``) and the output writes. Tasks are independent (no step-by-step
synchronisation), so several of them run on several cores with single-threaded BLAS (the
caller holds BLAS so); a lone batch-1 task with wide weights instead splits its units across
threads at every step (``split_units``: each thread keeps its column slice of the
recurrent kernel hot in its own cache).

float32 sigmoid / tanh use an inline Cephes-style exp on 8-lane GCC vectors (relative error
below 2e-7, NaN propagates); float64 uses libm exactly.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, tanh, fmax, fmin
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from _blas cimport gemm, gemv_t

from _rnn_act cimport act_inplace as _act

CELL_SIMPLE = 0
CELL_GRU_AFTER = 1
CELL_GRU_BEFORE = 2
CELL_LSTM = 3

ACT_LINEAR = 0
ACT_TANH = 1
ACT_SIGMOID = 2
ACT_HARD_SIGMOID = 3      # Keras 2: clip(0.2 x + 0.5, 0, 1)
ACT_HARD_SIGMOID_K3 = 4   # Keras 3: relu6(x + 3) / 6
ACT_RELU = 5

#: elements of input projections a task keeps per time chunk (about 256 KB of float32)
cdef enum:
    CHUNK_ELEMS = 65536


cdef inline void _add3(floating* p, const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        p[j] = p[j] + a[j] + b[j]


cdef void _row(int cell, Py_ssize_t u, Py_ssize_t j0, Py_ssize_t n, const floating* xw, floating* rec,
               const floating* bias, const floating* rbias, const floating* hp, floating* hn, floating* c,
               int act, int ract) noexcept nogil:
    """Gates of units ``j0 .. j0+n`` of one row. ``xw`` (input projection without bias), ``rec``
    (recurrent product, overwritten), ``bias`` / ``rbias`` point at the row's first gate block
    (blocks of ``u``, Keras's order); ``hp`` / ``hn`` / ``c`` at the row's state. Writes
    ``hn[j0:j0+n]`` and updates ``c`` (LSTM)."""
    cdef Py_ssize_t j
    cdef floating* z
    cdef floating* r
    cdef floating* g
    cdef floating* o
    cdef floating* h = hn + j0
    cdef const floating* hq = hp + j0
    cdef floating* cc
    if cell == 0:
        z = rec + j0
        for j in range(n):
            h[j] = z[j] + xw[j0 + j] + bias[j0 + j]
        _act(h, n, act)
    elif cell == 3:
        z = rec + j0
        r = rec + u + j0
        g = rec + 2 * u + j0
        o = rec + 3 * u + j0
        _add3(z, xw + j0, bias + j0, n)
        _add3(r, xw + u + j0, bias + u + j0, n)
        _add3(g, xw + 2 * u + j0, bias + 2 * u + j0, n)
        _add3(o, xw + 3 * u + j0, bias + 3 * u + j0, n)
        if j0 == 0 and n == u:
            _act(z, 2 * n, ract)
        else:
            _act(z, n, ract)
            _act(r, n, ract)
        _act(g, n, act)
        _act(o, n, ract)
        cc = c + j0
        for j in range(n):
            cc[j] = r[j] * cc[j] + z[j] * g[j]
            h[j] = cc[j]
        _act(h, n, act)
        for j in range(n):
            h[j] = o[j] * h[j]
    elif cell == 1:
        z = rec + j0
        r = rec + u + j0
        g = rec + 2 * u + j0
        for j in range(n):
            z[j] = z[j] + rbias[j0 + j] + xw[j0 + j] + bias[j0 + j]
            r[j] = r[j] + rbias[u + j0 + j] + xw[u + j0 + j] + bias[u + j0 + j]
        if j0 == 0 and n == u:
            _act(z, 2 * n, ract)
        else:
            _act(z, n, ract)
            _act(r, n, ract)
        for j in range(n):
            g[j] = xw[2 * u + j0 + j] + bias[2 * u + j0 + j] + r[j] * (g[j] + rbias[2 * u + j0 + j])
        _act(g, n, act)
        for j in range(n):
            h[j] = z[j] * hq[j] + (1 - z[j]) * g[j]
    else:
        # reset-before GRU: r was applied by _reset_pass, rec's last block is (r * h) @ U_h
        z = rec + j0
        g = rec + 2 * u + j0
        _add3(z, xw + j0, bias + j0, n)
        _add3(g, xw + 2 * u + j0, bias + 2 * u + j0, n)
        _act(z, n, ract)
        _act(g, n, act)
        for j in range(n):
            h[j] = z[j] * hq[j] + (1 - z[j]) * g[j]


cdef inline void _reset_pass(Py_ssize_t u, const floating* xw, floating* rec, const floating* bias,
                             const floating* hp, floating* rh, int ract) noexcept nogil:
    """Reset-before GRU, one row: ``r = ract(xw_r + rec_r + b_r)``, ``rh = r * h``."""
    cdef Py_ssize_t j
    cdef floating* r = rec + u
    _add3(r, xw + u, bias + u, u)
    _act(r, u, ract)
    for j in range(u):
        rh[j] = r[j] * hp[j]


ctypedef struct Task:
    int cell
    int act
    int ract
    int go_backwards
    int zero_output
    int split_units
    int n_threads
    int failed
    Py_ssize_t B
    Py_ssize_t T
    Py_ssize_t F
    Py_ssize_t u
    const void* x          # (B, T, F) inputs; or (B, T, G*u) projections when kernel is NULL
    const void* kernel     # (F, G*u) or NULL
    const void* bias       # (G*u,) input bias (zeros when the layer has none)
    const void* rbias      # (G*u,) recurrent bias (reset-after GRU) or NULL
    const void* U          # (u, G*u)
    const unsigned char* mask   # (B, T) 0/1 or NULL
    void* h                # (B, u) IN initial / OUT final state
    void* c                # (B, u) LSTM carry, likewise; NULL otherwise
    void* last             # (B, u) OUT last output (zeros on entry)
    void* seq              # (B, T, u) OUT outputs in processing order, or NULL


cdef inline Py_ssize_t _gates(int cell) noexcept nogil:
    return 1 if cell == 0 else (4 if cell == 3 else 3)


cdef void _run_task(Task* tk, floating* kind) noexcept nogil:
    """Run one task (its own input projections, then every step); ``kind`` only selects the
    dtype. Sets ``tk.failed`` when scratch cannot be allocated."""
    cdef int cell = tk.cell
    cdef Py_ssize_t B = tk.B, T = tk.T, F = tk.F, u = tk.u
    cdef Py_ssize_t G = _gates(cell)
    cdef Py_ssize_t GU = G * u
    cdef const floating* x = <const floating*>tk.x
    cdef const floating* W = <const floating*>tk.kernel
    cdef const floating* bias = <const floating*>tk.bias
    cdef const floating* rbias = <const floating*>tk.rbias
    cdef const floating* U = <const floating*>tk.U
    cdef const unsigned char* mask = tk.mask
    cdef floating* h = <floating*>tk.h
    cdef floating* c = <floating*>tk.c
    cdef floating* last = <floating*>tk.last
    cdef floating* seq = <floating*>tk.seq
    cdef Py_ssize_t Tc = T
    cdef Py_ssize_t s, k, n, t, t_lo, b, j, q, j0, j1, chunk, nchunks
    cdef Py_ssize_t tstride, bstride, toff
    cdef const floating* base
    cdef const floating* xrow
    cdef floating* hp
    cdef floating* hn
    cdef floating* tmp
    cdef floating* xwc = NULL
    cdef floating* xt = NULL
    cdef floating* rec = NULL
    cdef floating* hbuf = NULL
    cdef floating* rh = NULL
    cdef bint masked
    if B <= 0 or T <= 0 or u <= 0:
        return
    if W != NULL:
        Tc = CHUNK_ELEMS // (B * GU)
        if Tc < 1:
            Tc = 1
        if Tc > T:
            Tc = T
        xwc = <floating*>malloc(Tc * B * GU * sizeof(floating))
        if B > 1:
            xt = <floating*>malloc(Tc * B * F * sizeof(floating) + 1)
    rec = <floating*>malloc(B * GU * sizeof(floating))
    hbuf = <floating*>malloc(B * u * sizeof(floating))
    rh = <floating*>malloc(B * u * sizeof(floating))
    if rec == NULL or hbuf == NULL or rh == NULL or (W != NULL and (xwc == NULL or (B > 1 and xt == NULL))):
        tk.failed = 1
        free(xwc)
        free(xt)
        free(rec)
        free(hbuf)
        free(rh)
        return
    hp = h
    hn = hbuf
    nchunks = tk.n_threads if tk.split_units and tk.n_threads > 1 else 1
    chunk = (u + nchunks - 1) // nchunks
    s = 0
    while s < T:
        n = Tc if T - s > Tc else T - s
        t_lo = T - s - n if tk.go_backwards else s
        if W != NULL:
            # this chunk's projections, time-major: row (t - t_lo) * B + b
            if B == 1:
                gemm(False, False, <int>n, <int>GU, <int>F, <floating>1.0, x + t_lo * F, <int>F, W, <int>GU,
                     <floating>0.0, xwc, <int>GU)
            else:
                for k in range(n):
                    for b in range(B):
                        memcpy(xt + (k * B + b) * F, x + (b * T + t_lo + k) * F, F * sizeof(floating))
                gemm(False, False, <int>(n * B), <int>GU, <int>F, <floating>1.0, xt, <int>F, W, <int>GU,
                     <floating>0.0, xwc, <int>GU)
            base = xwc
            tstride = B * GU
            bstride = GU
            toff = t_lo
        else:
            base = x
            tstride = GU
            bstride = T * GU
            toff = 0
        for k in range(n):
            t = T - 1 - (s + k) if tk.go_backwards else s + k
            if nchunks > 1:
                # batch 1, units split across threads; every thread reads the whole previous h
                masked = mask != NULL and mask[t] == 0
                xrow = base + (t - toff) * tstride
                for q in prange(nchunks, num_threads=nchunks, schedule='static'):
                    j0 = q * chunk
                    j1 = j0 + chunk
                    if j1 > u:
                        j1 = u
                    if j0 < j1:
                        if masked:
                            memcpy(hn + j0, hp + j0, (j1 - j0) * sizeof(floating))
                            if tk.zero_output:
                                memset(last + j0, 0, (j1 - j0) * sizeof(floating))
                        else:
                            for j in range(G):
                                gemv_t(<int>u, <int>(j1 - j0), <floating>1.0, U + j * u + j0, <int>GU,
                                       hp, <floating>0.0, rec + j * u + j0)
                            _row(cell, u, j0, j1 - j0, xrow, rec, bias, rbias, hp, hn, c, tk.act, tk.ract)
                            memcpy(last + j0, hn + j0, (j1 - j0) * sizeof(floating))
                        if seq != NULL:
                            memcpy(seq + (s + k) * u + j0, last + j0, (j1 - j0) * sizeof(floating))
            else:
                if cell == 2:
                    if B == 1:
                        gemv_t(<int>u, <int>(2 * u), <floating>1.0, U, <int>GU, hp, <floating>0.0, rec)
                    else:
                        gemm(False, False, <int>B, <int>(2 * u), <int>u, <floating>1.0, hp, <int>u, U, <int>GU,
                             <floating>0.0, rec, <int>GU)
                    for b in range(B):
                        _reset_pass(u, base + (t - toff) * tstride + b * bstride, rec + b * GU, bias,
                                    hp + b * u, rh + b * u, tk.ract)
                    if B == 1:
                        gemv_t(<int>u, <int>u, <floating>1.0, U + 2 * u, <int>GU, rh, <floating>0.0, rec + 2 * u)
                    else:
                        gemm(False, False, <int>B, <int>u, <int>u, <floating>1.0, rh, <int>u, U + 2 * u, <int>GU,
                             <floating>0.0, rec + 2 * u, <int>GU)
                elif B == 1:
                    gemv_t(<int>u, <int>GU, <floating>1.0, U, <int>GU, hp, <floating>0.0, rec)
                else:
                    gemm(False, False, <int>B, <int>GU, <int>u, <floating>1.0, hp, <int>u, U, <int>GU,
                         <floating>0.0, rec, <int>GU)
                for b in range(B):
                    masked = mask != NULL and mask[b * T + t] == 0
                    if masked:
                        memcpy(hn + b * u, hp + b * u, u * sizeof(floating))
                        if tk.zero_output:
                            memset(last + b * u, 0, u * sizeof(floating))
                    else:
                        _row(cell, u, 0, u, base + (t - toff) * tstride + b * bstride, rec + b * GU, bias, rbias,
                             hp + b * u, hn + b * u, c + b * u if c != NULL else NULL, tk.act, tk.ract)
                        if mask != NULL:
                            memcpy(last + b * u, hn + b * u, u * sizeof(floating))
                    if seq != NULL:
                        memcpy(seq + (b * T + s + k) * u, last + b * u if masked else hn + b * u,
                               u * sizeof(floating))
            tmp = hp
            hp = hn
            hn = tmp
        s += n
    if hp != h:
        memcpy(h, hp, B * u * sizeof(floating))
    if mask == NULL and nchunks == 1:
        memcpy(last, h, B * u * sizeof(floating))
    free(xwc)
    free(xt)
    free(rec)
    free(hbuf)
    free(rh)


cdef int _run_tasks(list specs, int n_threads, floating* kind) except -1:
    """Build the Task structs from ``specs`` (see :func:`rnn_run`) and run them."""
    cdef Py_ssize_t n = len(specs), i
    cdef Task* tasks = <Task*>malloc((n if n > 0 else 1) * sizeof(Task))
    cdef const floating[:, :, ::1] x3
    cdef const floating[:, ::1] w2
    cdef const floating[::1] b1
    cdef const unsigned char[:, ::1] m2
    cdef floating[:, ::1] s2
    cdef floating[:, :, ::1] s3
    cdef Py_ssize_t G, GU, B, T, u
    cdef int failed = 0
    cdef bint split
    if tasks == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            sp = specs[i]
            (cell, act, ract, go_backwards, zero_output, split, x, kernel, bias, rbias, U, mask,
             h, c, last, seq) = sp
            tasks[i].cell = cell
            tasks[i].act = act
            tasks[i].ract = ract
            tasks[i].go_backwards = go_backwards
            tasks[i].zero_output = zero_output
            tasks[i].split_units = split
            tasks[i].n_threads = n_threads
            tasks[i].failed = 0
            G = _gates(cell)
            w2 = U
            u = w2.shape[0]
            GU = G * u
            if w2.shape[1] != GU:
                raise ValueError(f"rnn_run: recurrent kernel shape ({u}, {w2.shape[1]}) does not fit {G} gates")
            tasks[i].U = &w2[0, 0]
            x3 = x
            B, T = x3.shape[0], x3.shape[1]
            tasks[i].B, tasks[i].T, tasks[i].u = B, T, u
            tasks[i].x = &x3[0, 0, 0] if x3.size else NULL
            if kernel is not None:
                w2 = kernel
                if w2.shape[0] != x3.shape[2] or w2.shape[1] != GU:
                    raise ValueError("rnn_run: kernel does not fit the inputs")
                tasks[i].F = w2.shape[0]
                tasks[i].kernel = &w2[0, 0]
            else:
                if x3.shape[2] != GU:
                    raise ValueError("rnn_run: projections do not fit the gates")
                tasks[i].F = GU
                tasks[i].kernel = NULL
            b1 = bias
            if b1.shape[0] != GU:
                raise ValueError("rnn_run: bias shape mismatch")
            tasks[i].bias = &b1[0]
            if rbias is not None:
                b1 = rbias
                if b1.shape[0] != GU:
                    raise ValueError("rnn_run: recurrent bias shape mismatch")
                tasks[i].rbias = &b1[0]
            elif cell == 1:
                raise ValueError("rnn_run: a reset-after GRU needs its recurrent bias")
            else:
                tasks[i].rbias = NULL
            if mask is not None:
                m2 = mask
                if m2.shape[0] != B or m2.shape[1] != T:
                    raise ValueError("rnn_run: mask shape mismatch")
                tasks[i].mask = &m2[0, 0] if m2.size else NULL
            else:
                tasks[i].mask = NULL
            s2 = h
            if s2.shape[0] != B or s2.shape[1] != u:
                raise ValueError("rnn_run: state shape mismatch")
            tasks[i].h = &s2[0, 0] if s2.size else NULL
            if cell == 3:
                s2 = c
                if s2.shape[0] != B or s2.shape[1] != u:
                    raise ValueError("rnn_run: carry shape mismatch")
                tasks[i].c = &s2[0, 0] if s2.size else NULL
            else:
                tasks[i].c = NULL
            s2 = last
            if s2.shape[0] != B or s2.shape[1] != u:
                raise ValueError("rnn_run: last-output shape mismatch")
            tasks[i].last = &s2[0, 0] if s2.size else NULL
            if seq is not None:
                s3 = seq
                if s3.shape[0] != B or s3.shape[1] != T or s3.shape[2] != u:
                    raise ValueError("rnn_run: sequence output shape mismatch")
                tasks[i].seq = &s3[0, 0, 0] if s3.size else NULL
            else:
                tasks[i].seq = NULL
            if split and (B != 1 or cell == 2 or n != 1):
                raise ValueError("rnn_run: split_units needs one batch-1 task (not a reset-before GRU)")
        with nogil:
            if n == 1:
                _run_task(&tasks[0], kind)
            else:
                for i in prange(n, num_threads=n_threads if n_threads < n else n, schedule='dynamic'):
                    _run_task(&tasks[i], kind)
        for i in range(n):
            failed = failed or tasks[i].failed
        if failed:
            raise MemoryError("rnn_run: could not allocate the recurrent scratch")
    finally:
        free(tasks)
    return 0


def rnn_run(list specs, bint double, int n_threads):
    """Run recurrent tasks, several at once on ``n_threads`` threads.

    Each spec is a tuple ``(cell, act, ract, go_backwards, zero_output, split_units, x, kernel,
    bias, rbias, recurrent_kernel, mask, h, c, last, seq)`` of one dtype (``double``: float64):
    x ``(B, T, F)`` (or the projections ``(B, T, G*u)`` with kernel None); kernel ``(F, G*u)``;
    bias ``(G*u,)``; rbias ``(G*u,)`` for a reset-after GRU, else None; recurrent_kernel
    ``(u, G*u)``; mask ``(B, T)`` uint8 (input time order) or None; h, c (LSTM only, else None)
    ``(B, u)`` IN initial / OUT final states; last ``(B, u)`` OUT (zeros on entry); seq
    ``(B, T, u)`` OUT outputs in processing order, or None. ``split_units``: one batch-1 task
    whose units are split across ``n_threads`` threads each step. BLAS must be single-threaded
    when more than one thread runs (the caller holds it so). Every array C-contiguous.
    """
    if double:
        _run_tasks[double](specs, n_threads, NULL)
    else:
        _run_tasks[float](specs, n_threads, NULL)


def lstm_pointwise(floating[:, ::1] z__ng, const floating[:, ::1] zh__ng, floating[:, ::1] c__nf,
                   floating[:, ::1] h__nf, floating[:, ::1] tmp__nf, int act, int ract, int n_threads):
    """The LSTM update of N positions with F units each, for ConvLSTM after its convolutions.

    ``z`` (N, 4F) the input-convolution gates (bias included; overwritten), ``zh`` (N, 4F) the
    recurrent-convolution gates, both in Keras's block order i, f, c, o; ``c`` (N, F) the
    carry, updated in place; ``h`` (N, F) OUT the new output; ``tmp`` (N, F) scratch.
    ``c = ract(f) * c + ract(i) * act(zc)``, ``h = ract(o) * act(c)``.
    """
    cdef Py_ssize_t N = z__ng.shape[0], G4 = z__ng.shape[1], F = G4 // 4
    if G4 != 4 * F or zh__ng.shape[0] != N or zh__ng.shape[1] != G4:
        raise ValueError("lstm_pointwise: gate arrays must both be (N, 4F)")
    if (c__nf.shape[0] != N or c__nf.shape[1] != F or h__nf.shape[0] != N or h__nf.shape[1] != F
            or tmp__nf.shape[0] != N or tmp__nf.shape[1] != F):
        raise ValueError("lstm_pointwise: state arrays must be (N, F)")
    if N == 0 or F == 0:
        return
    cdef Py_ssize_t rows = (N + n_threads - 1) // n_threads if n_threads > 1 else N
    cdef Py_ssize_t nblk = (N + rows - 1) // rows
    cdef Py_ssize_t q
    with nogil:
        for q in prange(nblk, num_threads=n_threads if n_threads > 1 else 1, schedule='static'):
            _lstm_pointwise_rows(&z__ng[0, 0], &zh__ng[0, 0], &c__nf[0, 0], &h__nf[0, 0], &tmp__nf[0, 0],
                                 q * rows, (q + 1) * rows if (q + 1) * rows < N else N, F, act, ract)


cdef void _lstm_pointwise_rows(floating* z, const floating* zh, floating* c, floating* h, floating* tmp,
                               Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t F, int act, int ract) noexcept nogil:
    cdef Py_ssize_t r, j, n = r1 - r0
    cdef floating* zr
    cdef const floating* hr
    if n <= 0:
        return
    z += r0 * 4 * F
    zh += r0 * 4 * F
    c += r0 * F
    h += r0 * F
    tmp += r0 * F
    for j in range(n * 4 * F):
        z[j] = z[j] + zh[j]
    # the candidate block aside, then one recurrent-activation pass over everything
    for r in range(n):
        memcpy(tmp + r * F, z + r * 4 * F + 2 * F, F * sizeof(floating))
    _act(z, n * 4 * F, ract)
    _act(tmp, n * F, act)
    for r in range(n):
        zr = z + r * 4 * F
        for j in range(F):
            c[r * F + j] = zr[F + j] * c[r * F + j] + zr[j] * tmp[r * F + j]
            h[r * F + j] = c[r * F + j]
    _act(h, n * F, act)
    for r in range(n):
        zr = z + r * 4 * F
        for j in range(F):
            h[r * F + j] = zr[3 * F + j] * h[r * F + j]
