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
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from _act cimport activation_codes, check_gate_act
from _blas cimport gemm, gemv_t
from _skinny cimport KSK_STRIP_BYTES, packed_gemm, packed_gemv, packed_len, select_gemm_isa, strips
from _rnn_act cimport act_inplace as _act, select_gate_isa

cdef enum Cell:
    CELL_SIMPLE = 0
    CELL_GRU_AFTER = 1        # GRU with reset_after=True (Keras 2's default, CuDNN-compatible)
    CELL_GRU_BEFORE = 2       # GRU with reset_after=False: r applies to h before the product
    CELL_LSTM = 3
    CELL_END = 4

# Gate blocks of the kernels, biases and projections (blocks of ``units``), in Keras's order.
cdef enum:
    LSTM_I = 0                # input gate
    LSTM_F = 1                # forget gate
    LSTM_C = 2                # cell candidate
    LSTM_O = 3                # output gate
    GRU_Z = 0                 # update gate
    GRU_R = 1                 # reset gate
    GRU_H = 2                 # candidate state

#: cell name -> code, for klayers.ops.recurrent
CELLS = {"simple": CELL_SIMPLE, "gru": CELL_GRU_AFTER, "gru_before": CELL_GRU_BEFORE, "lstm": CELL_LSTM}
#: the activation codes (name -> code) of every kernel module (_act.pxd)
ACTIVATIONS = activation_codes()


def select_isa(int max_level=2):
    """Use the float32 gate maps of the widest rung of the CPU-feature ladder (``cpu_features.h``:
    0 baseline, 1 AVX2 + FMA, 2 AVX-512) at most ``max_level`` that this CPU has, and the
    packed GEMM of the same rung; its name."""
    select_gemm_isa(max_level)
    return select_gate_isa(max_level)


#: the instruction set chosen at import (the same in every kernel module)
ISA = select_isa()

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
    cdef floating* hh
    cdef floating* i
    cdef floating* f
    cdef floating* g
    cdef floating* o
    cdef floating* h = hn + j0
    cdef const floating* hq = hp + j0
    cdef floating* cc
    cdef Py_ssize_t iz = GRU_Z * u + j0, ir = GRU_R * u + j0, ih = GRU_H * u + j0
    if cell == CELL_SIMPLE:
        z = rec + j0
        for j in range(n):
            h[j] = z[j] + xw[j0 + j] + bias[j0 + j]
        _act(h, n, act)
    elif cell == CELL_LSTM:
        i = rec + LSTM_I * u + j0
        f = rec + LSTM_F * u + j0
        g = rec + LSTM_C * u + j0
        o = rec + LSTM_O * u + j0
        _add3(i, xw + LSTM_I * u + j0, bias + LSTM_I * u + j0, n)
        _add3(f, xw + LSTM_F * u + j0, bias + LSTM_F * u + j0, n)
        _add3(g, xw + LSTM_C * u + j0, bias + LSTM_C * u + j0, n)
        _add3(o, xw + LSTM_O * u + j0, bias + LSTM_O * u + j0, n)
        if j0 == 0 and n == u:
            _act(i, 2 * n, ract)  # i and f are adjacent blocks: one pass
        else:
            _act(i, n, ract)
            _act(f, n, ract)
        _act(g, n, act)
        _act(o, n, ract)
        cc = c + j0
        for j in range(n):
            cc[j] = f[j] * cc[j] + i[j] * g[j]
            h[j] = cc[j]
        _act(h, n, act)
        for j in range(n):
            h[j] = o[j] * h[j]
    elif cell == CELL_GRU_AFTER:
        z = rec + iz
        r = rec + ir
        hh = rec + ih
        for j in range(n):
            z[j] = z[j] + rbias[iz + j] + xw[iz + j] + bias[iz + j]
            r[j] = r[j] + rbias[ir + j] + xw[ir + j] + bias[ir + j]
        if j0 == 0 and n == u:
            _act(z, 2 * n, ract)  # z and r are adjacent blocks: one pass
        else:
            _act(z, n, ract)
            _act(r, n, ract)
        for j in range(n):
            hh[j] = xw[ih + j] + bias[ih + j] + r[j] * (hh[j] + rbias[ih + j])
        _act(hh, n, act)
        for j in range(n):
            h[j] = z[j] * hq[j] + (1 - z[j]) * hh[j]
    else:
        # CELL_GRU_BEFORE: r was applied by _reset_pass, rec's h block is (r * h) @ U_h
        z = rec + iz
        hh = rec + ih
        _add3(z, xw + iz, bias + iz, n)
        _add3(hh, xw + ih, bias + ih, n)
        _act(z, n, ract)
        _act(hh, n, act)
        for j in range(n):
            h[j] = z[j] * hq[j] + (1 - z[j]) * hh[j]


cdef inline void _reset_pass(Py_ssize_t u, const floating* xw, floating* rec, const floating* bias,
                             const floating* hp, floating* rh, int ract) noexcept nogil:
    """Reset-before GRU, one row: ``r = ract(xw_r + rec_r + b_r)``, ``rh = r * h``."""
    cdef Py_ssize_t j
    cdef floating* r = rec + GRU_R * u
    _add3(r, xw + GRU_R * u, bias + GRU_R * u, u)
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
    const void* Wp         # the kernel packed in strips (skinny_gemm.h) for the projections, or NULL
    const void* bias       # (G*u,) input bias (zeros when the layer has none)
    const void* rbias      # (G*u,) recurrent bias (reset-after GRU) or NULL
    const void* U          # (u, G*u)
    const void* Up         # U packed in strips (skinny_gemm.h) for the batch GEMMs, or NULL
    const unsigned char* mask   # (B, T) 0/1 or NULL
    void* h                # (B, u) IN initial / OUT final state
    void* c                # (B, u) LSTM carry, likewise; NULL otherwise
    void* last             # (B, u) OUT last output (zeros on entry)
    void* seq              # (B, T, u) OUT outputs in processing order, or NULL


cdef inline Py_ssize_t _gates(int cell) noexcept nogil:
    return 1 if cell == CELL_SIMPLE else (4 if cell == CELL_LSTM else 3)


cdef void _split_step(Task* tk, int cell, Py_ssize_t G, Py_ssize_t u, Py_ssize_t j0, Py_ssize_t j1, bint masked,
                      bint packed_split, Py_ssize_t sw, const floating* xrow, const floating* U, floating* rec,
                      const floating* bias, const floating* rbias, const floating* hp, floating* hn, floating* c,
                      floating* last, floating* seq_row) noexcept nogil:
    """One thread's units ``j0 <= j < j1`` of one batch-1 step (units split across threads)."""
    cdef Py_ssize_t j, GU = G * u
    if j0 >= j1:
        return
    if masked:
        memcpy(hn + j0, hp + j0, (j1 - j0) * sizeof(floating))
        if tk.zero_output:
            memset(last + j0, 0, (j1 - j0) * sizeof(floating))
    else:
        for j in range(G):
            if packed_split:
                # this thread's strips of gate block j (whole strips: chunk and u are multiples
                # of the strip width)
                packed_gemv(u, hp, <const floating*>tk.Up, (j * u + j0) // sw, (j * u + j1 + sw - 1) // sw,
                            j * u + j1, rec)
            else:
                gemv_t(<int>u, <int>(j1 - j0), <floating>1.0, U + j * u + j0, <int>GU, hp, <floating>0.0,
                       rec + j * u + j0)
        _row(cell, u, j0, j1 - j0, xrow, rec, bias, rbias, hp, hn, c, tk.act, tk.ract)
        memcpy(last + j0, hn + j0, (j1 - j0) * sizeof(floating))
    if seq_row != NULL:
        memcpy(seq_row + j0, last + j0, (j1 - j0) * sizeof(floating))


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
    cdef Py_ssize_t s, k, n, t, t_lo, b, j, q, j0, j1, chunk, nchunks, sw
    cdef bint packed_split
    cdef Py_ssize_t tstride, bstride, toff
    cdef const floating* base
    cdef const floating* xrow
    cdef floating* hp
    cdef floating* hn
    cdef floating* tmp
    cdef floating* hq
    cdef floating* hm
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
    sw = KSK_STRIP_BYTES // sizeof(floating)
    packed_split = nchunks > 1 and tk.Up != NULL and u % sw == 0
    if packed_split:
        chunk = (chunk + sw - 1) // sw * sw
    s = 0
    while s < T:
        n = Tc if T - s > Tc else T - s
        t_lo = T - s - n if tk.go_backwards else s
        if W != NULL:
            # this chunk's projections, time-major: row (t - t_lo) * B + b
            if B == 1:
                xrow = x + t_lo * F
            else:
                for k in range(n):
                    for b in range(B):
                        memcpy(xt + (k * B + b) * F, x + (b * T + t_lo + k) * F, F * sizeof(floating))
                xrow = xt
            if tk.Wp != NULL:
                # the packed kernel (kept by the layer per weight version): no BLAS packing per chunk
                packed_gemm(n * B, F, xrow, F, <const floating*>tk.Wp, 0, strips(GU, sizeof(floating)), GU, xwc, GU)
            else:
                gemm(False, False, <int>(n * B), <int>GU, <int>F, <floating>1.0, xrow, <int>F, W, <int>GU,
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
        if nchunks > 1:
            # batch 1, units split across threads, one parallel region for the whole chunk of
            # steps (the team is forked once, each step ends at its loop's barrier); every
            # thread reads the whole previous h and swaps its own copies of the two pointers
            with parallel(num_threads=nchunks):
                hq = hp
                hm = hn
                for k in range(n):
                    t = T - 1 - (s + k) if tk.go_backwards else s + k
                    masked = mask != NULL and mask[t] == 0
                    xrow = base + (t - toff) * tstride
                    for q in prange(nchunks, schedule='static'):
                        _split_step(tk, cell, G, u, q * chunk, min(u, q * chunk + chunk), masked, packed_split, sw,
                                    xrow, U, rec, bias, rbias, hq, hm, c, last,
                                    seq + (s + k) * u if seq != NULL else <floating*>NULL)
                    tmp = hq
                    hq = hm
                    hm = tmp
            if n % 2:
                tmp = hp
                hp = hn
                hn = tmp
            s += n
            continue
        for k in range(n):
            t = T - 1 - (s + k) if tk.go_backwards else s + k
            if cell == CELL_GRU_BEFORE:
                # z and r blocks first (h's block needs r * h)
                if B == 1:
                    gemv_t(<int>u, <int>(GRU_H * u), <floating>1.0, U, <int>GU, hp, <floating>0.0, rec)
                else:
                    gemm(False, False, <int>B, <int>(GRU_H * u), <int>u, <floating>1.0, hp, <int>u, U, <int>GU,
                         <floating>0.0, rec, <int>GU)
                for b in range(B):
                    _reset_pass(u, base + (t - toff) * tstride + b * bstride, rec + b * GU, bias,
                                hp + b * u, rh + b * u, tk.ract)
                if B == 1:
                    gemv_t(<int>u, <int>u, <floating>1.0, U + GRU_H * u, <int>GU, rh, <floating>0.0,
                           rec + GRU_H * u)
                else:
                    gemm(False, False, <int>B, <int>u, <int>u, <floating>1.0, rh, <int>u, U + GRU_H * u, <int>GU,
                         <floating>0.0, rec + GRU_H * u, <int>GU)
            elif B == 1 and tk.Up != NULL:
                # one row over the packed strips (8 accumulators in flight, all gates at once)
                packed_gemv(u, hp, <const floating*>tk.Up, 0, strips(GU, sizeof(floating)), GU, rec)
            elif B == 1:
                gemv_t(<int>u, <int>GU, <floating>1.0, U, <int>GU, hp, <floating>0.0, rec)
            elif tk.Up != NULL:
                # the packed recurrent kernel stays in this core's cache across the steps,
                # where a BLAS GEMM would pack it again at every step
                packed_gemm(B, u, hp, u, <const floating*>tk.Up, 0, strips(GU, sizeof(floating)), GU, rec, GU)
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


#: the keys of one task spec of :func:`rnn_run`
TASK_KEYS = ("cell", "act", "ract", "go_backwards", "zero_output", "split_units", "x", "kernel", "packed_kernel", "bias",
             "rbias", "recurrent_kernel", "packed_recurrent_kernel", "mask", "h", "c", "last", "seq")


cdef int _load_task(dict sp, Task* t, Py_ssize_t n_tasks, int n_threads, floating* kind) except -1:
    """Check one task spec (see :func:`rnn_run`) and fill ``t`` with its sizes and pointers. The
    memoryviews are only read here: the arrays stay alive in ``specs`` while the task runs."""
    cdef const floating[:, :, ::1] x3
    cdef const floating[:, ::1] w2
    cdef const floating[::1] b1
    cdef const unsigned char[:, ::1] m2
    cdef floating[:, ::1] s2
    cdef floating[:, :, ::1] s3
    cdef Py_ssize_t G, GU, B, T, u
    missing = [k for k in TASK_KEYS if k not in sp]
    if missing:
        raise ValueError(f"rnn_run: a task spec lacks {missing}")
    cell = sp["cell"]
    if not (CELL_SIMPLE <= cell < CELL_END):
        raise ValueError(f"rnn_run: unknown cell code {cell} (expected 0 to {CELL_END - 1})")
    check_gate_act(sp["act"], "rnn_run")
    check_gate_act(sp["ract"], "rnn_run")
    t.cell = cell
    t.act = sp["act"]
    t.ract = sp["ract"]
    t.go_backwards = sp["go_backwards"]
    t.zero_output = sp["zero_output"]
    t.split_units = sp["split_units"]
    t.n_threads = n_threads
    t.failed = 0
    G = _gates(t.cell)
    w2 = sp["recurrent_kernel"]
    u = w2.shape[0]
    GU = G * u
    if w2.shape[1] != GU:
        raise ValueError(f"rnn_run: recurrent kernel shape ({u}, {w2.shape[1]}) does not fit {G} gates")
    t.U = &w2[0, 0] if w2.size else NULL
    t.Up = NULL
    packed = sp["packed_recurrent_kernel"]
    if packed is not None:
        b1 = packed
        if b1.shape[0] != packed_len(u, GU, sizeof(floating)):
            raise ValueError(f"rnn_run: the packed recurrent kernel has {b1.shape[0]} values, "
                             f"not {packed_len(u, GU, sizeof(floating))}")
        t.Up = &b1[0] if b1.shape[0] else NULL
    x3 = sp["x"]
    B, T = x3.shape[0], x3.shape[1]
    t.B, t.T, t.u = B, T, u
    t.x = &x3[0, 0, 0] if x3.size else NULL
    if sp["kernel"] is not None:
        w2 = sp["kernel"]
        if w2.shape[0] != x3.shape[2] or w2.shape[1] != GU:
            raise ValueError("rnn_run: kernel does not fit the inputs")
        t.F = w2.shape[0]
        t.kernel = &w2[0, 0] if w2.size else NULL
        t.Wp = NULL
        if sp["packed_kernel"] is not None:
            b1 = sp["packed_kernel"]
            if b1.shape[0] != packed_len(t.F, GU, sizeof(floating)):
                raise ValueError(f"rnn_run: the packed kernel has {b1.shape[0]} values, "
                                 f"not {packed_len(t.F, GU, sizeof(floating))}")
            t.Wp = &b1[0] if b1.shape[0] else NULL
    else:
        t.Wp = NULL
        if x3.shape[2] != GU:
            raise ValueError("rnn_run: projections do not fit the gates")
        t.F = GU
        t.kernel = NULL
    b1 = sp["bias"]
    if b1.shape[0] != GU:
        raise ValueError("rnn_run: bias shape mismatch")
    t.bias = &b1[0] if GU else NULL
    if sp["rbias"] is not None:
        b1 = sp["rbias"]
        if b1.shape[0] != GU:
            raise ValueError("rnn_run: recurrent bias shape mismatch")
        t.rbias = &b1[0] if GU else NULL
    elif t.cell == CELL_GRU_AFTER:
        raise ValueError("rnn_run: a reset-after GRU needs its recurrent bias")
    else:
        t.rbias = NULL
    if sp["mask"] is not None:
        m2 = sp["mask"]
        if m2.shape[0] != B or m2.shape[1] != T:
            raise ValueError("rnn_run: mask shape mismatch")
        t.mask = &m2[0, 0] if m2.size else NULL
    else:
        t.mask = NULL
    s2 = sp["h"]
    if s2.shape[0] != B or s2.shape[1] != u:
        raise ValueError("rnn_run: state shape mismatch")
    t.h = &s2[0, 0] if s2.size else NULL
    if t.cell == CELL_LSTM:
        s2 = sp["c"]
        if s2.shape[0] != B or s2.shape[1] != u:
            raise ValueError("rnn_run: carry shape mismatch")
        t.c = &s2[0, 0] if s2.size else NULL
    else:
        t.c = NULL
    s2 = sp["last"]
    if s2.shape[0] != B or s2.shape[1] != u:
        raise ValueError("rnn_run: last-output shape mismatch")
    t.last = &s2[0, 0] if s2.size else NULL
    if sp["seq"] is not None:
        s3 = sp["seq"]
        if s3.shape[0] != B or s3.shape[1] != T or s3.shape[2] != u:
            raise ValueError("rnn_run: sequence output shape mismatch")
        t.seq = &s3[0, 0, 0] if s3.size else NULL
    else:
        t.seq = NULL
    if t.split_units and (B != 1 or t.cell == CELL_GRU_BEFORE or n_tasks != 1):
        raise ValueError("rnn_run: split_units needs one batch-1 task (not a reset-before GRU)")
    return 0


cdef int _run_tasks(list specs, int n_threads, floating* kind) except -1:
    """Build the Task structs from ``specs`` (see :func:`rnn_run`) and run them."""
    cdef Py_ssize_t n = len(specs), i
    cdef Task* tasks = <Task*>malloc((n if n > 0 else 1) * sizeof(Task))
    cdef int failed = 0
    if tasks == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            if type(specs[i]) is not dict:
                raise TypeError(f"rnn_run: a task spec is a dict with the keys {TASK_KEYS}")
            _load_task(specs[i], &tasks[i], n, n_threads, kind)
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

    Each spec is a dict (keys ``TASK_KEYS``) of arrays of one dtype (``double``: float64):
    ``cell`` a code of ``CELLS``; ``act`` / ``ract`` activation codes (``ACTIVATIONS``);
    ``go_backwards``, ``zero_output``, ``split_units`` flags; ``x`` ``(B, T, F)`` (or the
    projections ``(B, T, G*u)`` with ``kernel`` None); ``kernel`` ``(F, G*u)``; ``bias``
    ``(G*u,)``; ``rbias`` ``(G*u,)`` for a reset-after GRU, else None; ``recurrent_kernel``
    ``(u, G*u)``; ``mask`` ``(B, T)`` uint8 (input time order) or None; ``h``, ``c`` (LSTM only,
    else None) ``(B, u)`` IN initial / OUT final states; ``last`` ``(B, u)`` OUT (zeros on
    entry); ``seq`` ``(B, T, u)`` OUT outputs in processing order, or None. ``split_units``: one
    batch-1 task whose units are split across ``n_threads`` threads each step. Gate blocks are in
    Keras's order (LSTM i, f, c, o; GRU z, r, h). BLAS must be single-threaded when more than one
    thread runs (the caller holds it so). Every array C-contiguous. ``packed_recurrent_kernel``:
    None, or ``recurrent_kernel`` packed as ``klayers._ext.conv.pack_kernel`` packs a
    ``(u, G*u)`` matrix; the batch (B > 1) steps of cells other than the reset-before GRU then
    multiply it with the packed GEMM instead of BLAS. ``packed_kernel``: None, or ``kernel``
    packed so (``(F, G*u)``); the input projections then use the packed GEMM instead of BLAS
    (which would pack the kernel again for every chunk of steps).
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
    check_gate_act(act, "lstm_pointwise")
    check_gate_act(ract, "lstm_pointwise")
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
        memcpy(tmp + r * F, z + r * 4 * F + LSTM_C * F, F * sizeof(floating))
    _act(z, n * 4 * F, ract)
    _act(tmp, n * F, act)
    for r in range(n):
        zr = z + r * 4 * F
        for j in range(F):
            c[r * F + j] = zr[LSTM_F * F + j] * c[r * F + j] + zr[LSTM_I * F + j] * tmp[r * F + j]
            h[r * F + j] = c[r * F + j]
    _act(h, n * F, act)
    for r in range(n):
        zr = z + r * 4 * F
        for j in range(F):
            h[r * F + j] = zr[LSTM_O * F + j] * h[r * F + j]
