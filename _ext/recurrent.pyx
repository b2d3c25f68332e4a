# cython: language_level=3
"""Recurrent time loops (SimpleRNN, GRU, LSTM) entirely in compiled code.

The caller (klayers.ops.recurrent) has already computed every time step's input projection
``xw = x @ kernel + input_bias`` with one GEMM; this kernel runs the recurrence: per step the
recurrent product ``h @ recurrent_kernel`` (GEMM, or GEMV at batch 1), then one fused pass of
gate non-linearities, the Keras mask rule (masked steps carry the state; their output is the
previous output, or zeros with ``zero_output``) and the output writes.

Level 2 of the kernel pattern: const IN views, caller-allocated OUT and scratch views, shapes
checked before the GIL is released, ``n_threads``. At batch 1 with wide layers the units are
split across threads (each thread multiplies by its own column slice of the recurrent kernel,
which stays hot in its core's cache; BLAS is single-threaded there, the caller holds it so);
otherwise one BLAS call per step and BLAS threads it.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expf, expm1f, fabsf, tanh, fmax, fmin

from _blas cimport gemm, gemv_t

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


cdef inline floating _act(floating x, int code) noexcept nogil:
    cdef float t
    if code == 1:
        if floating is float:
            # glibc's tanhf is several times slower than expm1f; this form keeps full
            # relative precision near 0
            t = expm1f(-2 * fabsf(x))
            t = -t / (t + 2)
            return t if x >= 0 else -t
        else:
            return tanh(x)
    if code == 2:
        if floating is float:
            return 1.0 / (1.0 + expf(-x))
        else:
            return 1.0 / (1.0 + exp(-x))
    if code == 3:
        return fmin(fmax(<floating>0.2 * x + <floating>0.5, 0), 1)
    if code == 4:
        return fmin(fmax(x + 3, 0), 6) / 6
    if code == 5:
        return fmax(x, 0)
    return x


cdef inline void _gates(int cell, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t u,
                        const floating* xw, const floating* rec, const floating* rbias,
                        const floating* hp, floating* hn, floating* c, floating* last,
                        floating* seq, bint masked, bint zero_output, bint use_rbias,
                        int act, int ract) noexcept nogil:
    """Units j0..j1 of one sample: new state from the projections, mask rule, outputs.

    ``xw`` / ``rec`` point at the sample's row (gate blocks of ``u`` each, Keras's order),
    ``hp`` the previous h (read only), ``hn`` the new h (written), ``c`` the LSTM carry
    (updated in place), ``last`` the previous output (updated), ``seq`` this step's output row
    or NULL."""
    cdef Py_ssize_t j
    cdef floating z, r, hh, h, ig, fg, og, cc, rb
    for j in range(j0, j1):
        if masked:
            hn[j] = hp[j]
            if zero_output:
                last[j] = 0
            if seq != NULL:
                seq[j] = last[j]
            continue
        if cell == 0:
            h = _act(xw[j] + rec[j], act)
        elif cell == 1:
            z = rec[j]
            r = rec[u + j]
            rb = rec[2 * u + j]
            if use_rbias:
                z = z + rbias[j]
                r = r + rbias[u + j]
                rb = rb + rbias[2 * u + j]
            z = _act(xw[j] + z, ract)
            r = _act(xw[u + j] + r, ract)
            hh = _act(xw[2 * u + j] + r * rb, act)
            h = z * hp[j] + (1 - z) * hh
        elif cell == 2:
            # rec holds z's recurrent term and, in its last block, (r * h) @ U_h
            z = _act(xw[j] + rec[j], ract)
            hh = _act(xw[2 * u + j] + rec[2 * u + j], act)
            h = z * hp[j] + (1 - z) * hh
        else:
            ig = _act(xw[j] + rec[j], ract)
            fg = _act(xw[u + j] + rec[u + j], ract)
            cc = fg * c[j] + ig * _act(xw[2 * u + j] + rec[2 * u + j], act)
            og = _act(xw[3 * u + j] + rec[3 * u + j], ract)
            c[j] = cc
            h = og * _act(cc, act)
        hn[j] = h
        last[j] = h
        if seq != NULL:
            seq[j] = h


def rnn_forward(int cell, const floating[:, :, ::1] xw__btg, const floating[:, ::1] u__ug,
                const floating[::1] rbias__g, const unsigned char[:, ::1] mask__bt,
                floating[:, ::1] h__bu, floating[:, ::1] c__bu, floating[:, ::1] last__bu,
                floating[:, :, ::1] seq__btu, floating[:, ::1] hbuf__bu,
                floating[:, ::1] rec__bg, floating[:, ::1] rh__bu,
                int act, int ract, bint go_backwards, bint zero_output, bint use_mask,
                bint return_sequences, bint split_units, int n_threads):
    """Run the recurrence over all T steps.

    Shapes (G gate blocks: 1 SimpleRNN, 3 GRU, 4 LSTM): xw (B, T, G*u) input projections with
    the input bias; u (u, G*u) recurrent kernel; rbias (G*u,) recurrent bias (GRU reset_after;
    length 0 when unused); mask (B, T) 0/1 in input time order (ignored unless use_mask);
    h (B, u) IN initial / OUT final state; c (B, u) the LSTM carry, likewise (unused otherwise);
    last (B, u) OUT the last output (must hold zeros on entry); seq (B, T, u) OUT every step's
    output in processing order (unused unless return_sequences); hbuf (B, u), rec (B, G*u), rh
    (B, u) scratch. ``split_units`` (batch 1 only, BLAS held single-threaded by the caller):
    threads take slices of the units.
    """
    cdef Py_ssize_t B = xw__btg.shape[0], T = xw__btg.shape[1], GU = xw__btg.shape[2]
    cdef Py_ssize_t u = u__ug.shape[0]
    cdef Py_ssize_t G = 1 if cell == 0 else (4 if cell == 3 else 3)
    if GU != G * u or u__ug.shape[1] != GU:
        raise ValueError(f"rnn_forward: xw has {GU} columns, recurrent kernel {u__ug.shape[1]}, expected {G} x {u}")
    if h__bu.shape[0] != B or h__bu.shape[1] != u or last__bu.shape[0] != B or last__bu.shape[1] != u:
        raise ValueError("rnn_forward: state / last shape mismatch")
    if hbuf__bu.shape[0] != B or hbuf__bu.shape[1] != u or rec__bg.shape[0] != B or rec__bg.shape[1] != GU:
        raise ValueError("rnn_forward: scratch shape mismatch")
    if cell == 3 and (c__bu.shape[0] != B or c__bu.shape[1] != u):
        raise ValueError("rnn_forward: carry shape mismatch")
    if cell == 2 and (rh__bu.shape[0] != B or rh__bu.shape[1] != u):
        raise ValueError("rnn_forward: reset-before scratch shape mismatch")
    if use_mask and (mask__bt.shape[0] != B or mask__bt.shape[1] != T):
        raise ValueError("rnn_forward: mask shape mismatch")
    if return_sequences and (seq__btu.shape[0] != B or seq__btu.shape[1] != T or seq__btu.shape[2] != u):
        raise ValueError("rnn_forward: sequence output shape mismatch")
    cdef bint use_rbias = cell == 1 and rbias__g.shape[0] == GU
    if split_units and (B != 1 or cell == 2):
        split_units = False
    if B == 0 or T == 0 or u == 0:
        return
    cdef Py_ssize_t s, t, b, j, g, k, chunk, j0, j1
    cdef int nchunks = n_threads if n_threads > 0 else 1
    cdef floating* hp = &h__bu[0, 0]
    cdef floating* hn = &hbuf__bu[0, 0]
    cdef floating* tmp
    cdef floating* cptr = &c__bu[0, 0] if cell == 3 else NULL
    cdef floating* seqrow
    cdef const floating* rb = &rbias__g[0] if use_rbias else NULL
    cdef bint masked
    cdef floating r
    chunk = (u + nchunks - 1) // nchunks
    with nogil:
        for s in range(T):
            t = T - 1 - s if go_backwards else s
            if split_units:
                for k in prange(nchunks, num_threads=nchunks, schedule='static'):
                    j0 = k * chunk
                    j1 = j0 + chunk
                    if j1 > u:
                        j1 = u
                    if j0 < j1:
                        for g in range(G):
                            gemv_t(<int>u, <int>(j1 - j0), <floating>1.0, &u__ug[0, g * u + j0], <int>GU,
                                   hp, <floating>0.0, &rec__bg[0, g * u + j0])
                        _gates(cell, j0, j1, u, &xw__btg[0, t, 0], &rec__bg[0, 0], rb, hp, hn,
                               cptr, &last__bu[0, 0],
                               &seq__btu[0, s, 0] if return_sequences else NULL,
                               use_mask and mask__bt[0, t] == 0, zero_output, use_rbias, act, ract)
            else:
                if cell == 2:
                    # reset-before GRU: r first, then (r * h) @ U_h
                    if B == 1:
                        gemv_t(<int>u, <int>(2 * u), <floating>1.0, &u__ug[0, 0], <int>GU, hp,
                               <floating>0.0, &rec__bg[0, 0])
                    else:
                        gemm(False, False, <int>B, <int>(2 * u), <int>u, <floating>1.0, hp, <int>u,
                             &u__ug[0, 0], <int>GU, <floating>0.0, &rec__bg[0, 0], <int>GU)
                    for b in range(B):
                        for j in range(u):
                            r = _act(xw__btg[b, t, u + j] + rec__bg[b, u + j], ract)
                            rh__bu[b, j] = r * hp[b * u + j]
                    if B == 1:
                        gemv_t(<int>u, <int>u, <floating>1.0, &u__ug[0, 2 * u], <int>GU, &rh__bu[0, 0],
                               <floating>0.0, &rec__bg[0, 2 * u])
                    else:
                        gemm(False, False, <int>B, <int>u, <int>u, <floating>1.0, &rh__bu[0, 0], <int>u,
                             &u__ug[0, 2 * u], <int>GU, <floating>0.0, &rec__bg[0, 2 * u], <int>GU)
                elif B == 1:
                    gemv_t(<int>u, <int>GU, <floating>1.0, &u__ug[0, 0], <int>GU, hp,
                           <floating>0.0, &rec__bg[0, 0])
                else:
                    gemm(False, False, <int>B, <int>GU, <int>u, <floating>1.0, hp, <int>u,
                         &u__ug[0, 0], <int>GU, <floating>0.0, &rec__bg[0, 0], <int>GU)
                for b in range(B):
                    masked = use_mask and mask__bt[b, t] == 0
                    seqrow = &seq__btu[b, s, 0] if return_sequences else NULL
                    _gates(cell, 0, u, u, &xw__btg[b, t, 0], &rec__bg[b, 0], rb, hp + b * u, hn + b * u,
                           cptr + b * u if cell == 3 else NULL, &last__bu[b, 0], seqrow,
                           masked, zero_output, use_rbias, act, ract)
            tmp = hp
            hp = hn
            hn = tmp
        if hp != &h__bu[0, 0]:
            for b in range(B):
                for j in range(u):
                    h__bu[b, j] = hp[b * u + j]
