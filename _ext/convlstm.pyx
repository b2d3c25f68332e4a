# cython: language_level=3
"""The whole ConvLSTM time loop in one compiled call (issue #7).

:func:`convlstm_run` takes the input convolution of every step (computed before, as one
convolution with time folded into the batch, bias included), and runs every step without
returning to Python: per step and per block of output positions of one sample, the
recurrent convolution (strides 1, "same", no dilation: Keras's ConvLSTM rule) as im2col
into per-thread scratch and one GEMM against the recurrent kernel seen as
``(taps * F, 4F)``, then the fused LSTM update (the same arithmetic, in the same order, as
``recurrent.lstm_pointwise``), the Keras mask rule (a masked sample keeps ``h`` and ``c`` and
repeats its previous output, or zeros with ``zero_output``) and the output writes. Each step
is one ``prange`` over (sample, row block): a step reads the whole previous ``h`` of its
sample (the neighbours of its rows), so ``h`` is double-buffered and steps are sequential.
BLAS must be single-threaded when more than one thread runs (the caller holds it so).

The activation maps are a copy of ``recurrent.pyx``'s (float32: inline Cephes-style exp on
8-lane GCC vectors; float64: libm), so both kernels round alike.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, tanh, fmax, fmin
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from _blas cimport gemm
from _openmp cimport omp_get_thread_num

from _rnn_act cimport act_inplace as _act

cdef void _step_block(const floating* zx, const floating* U, const floating* hp, floating* hn, floating* c,
                      floating* last, floating* seq, floating* col, floating* zg, floating* tmp,
                      Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t F, const Py_ssize_t* g,
                      bint masked, bint has_mask, bint zero_output, int act, int ract) noexcept nogil:
    """Rows ``r0 .. r1`` of one sample at one step. ``zx`` ``(P, 4F)`` this step's input gates,
    ``hp`` / ``hn`` ``(P, F)`` previous / new output, ``c`` ``(P, F)`` the carry (in place),
    ``last`` ``(P, F)`` the running output, ``seq`` ``(P, F)`` this step's slot or NULL;
    ``g``: out sizes o1, o2, o3, kernel k1, k2, k3, pads p1, p2, p3 (rank < 3 padded in front)."""
    cdef Py_ssize_t n = r1 - r0, G4 = 4 * F, taps = g[3] * g[4] * g[5], K = taps * F
    cdef Py_ssize_t r, p, i1, i2, i3, a, b_, d0, d1, s1, s2, j
    cdef floating* crow
    cdef floating* zr
    cdef floating* hr
    cdef floating* cr
    cdef floating* tr
    cdef const floating* xr
    if n <= 0:
        return
    if masked:
        memcpy(hn + r0 * F, hp + r0 * F, n * F * sizeof(floating))
        if zero_output:
            memset(last + r0 * F, 0, n * F * sizeof(floating))
        if seq != NULL:
            memcpy(seq + r0 * F, last + r0 * F, n * F * sizeof(floating))
        return
    # im2col of the previous output around rows r0 .. r1 (zeros outside: "same" padding)
    for r in range(n):
        p = r0 + r
        i3 = p % g[2]
        i2 = (p // g[2]) % g[1]
        i1 = p // (g[2] * g[1])
        crow = col + r * K
        # taps along the last axis read one contiguous run of hp: one copy per (a, b)
        d0 = g[8] - i3 if g[8] > i3 else 0
        d1 = g[2] + g[8] - i3 if g[2] + g[8] - i3 < g[5] else g[5]
        for a in range(g[3]):
            s1 = i1 + a - g[6]
            for b_ in range(g[4]):
                s2 = i2 + b_ - g[7]
                if 0 <= s1 < g[0] and 0 <= s2 < g[1] and d0 < d1:
                    if d0 > 0:
                        memset(crow, 0, d0 * F * sizeof(floating))
                    memcpy(crow + d0 * F, hp + ((s1 * g[1] + s2) * g[2] + i3 + d0 - g[8]) * F,
                           (d1 - d0) * F * sizeof(floating))
                    if d1 < g[5]:
                        memset(crow + d1 * F, 0, (g[5] - d1) * F * sizeof(floating))
                else:
                    memset(crow, 0, g[5] * F * sizeof(floating))
                crow = crow + g[5] * F
    gemm(False, False, <int>n, <int>G4, <int>K, <floating>1.0, col, <int>K, U, <int>G4, <floating>0.0, zg, <int>G4)
    # the LSTM update, as lstm_pointwise: z + zh, candidate aside, one ract pass, then c and h
    xr = zx + r0 * G4
    for j in range(n * G4):
        zg[j] = xr[j] + zg[j]
    for r in range(n):
        memcpy(tmp + r * F, zg + r * G4 + 2 * F, F * sizeof(floating))
    if F >= 8:
        # only the i, f, o blocks (the candidate went aside), one vector-friendly run each
        for r in range(n):
            _act(zg + r * G4, 2 * F, ract)
            _act(zg + r * G4 + 3 * F, F, ract)
    else:
        _act(zg, n * G4, ract)
    _act(tmp, n * F, act)
    hr = hn + r0 * F
    cr = c + r0 * F
    for r in range(n):
        zr = zg + r * G4
        for j in range(F):
            cr[r * F + j] = zr[F + j] * cr[r * F + j] + zr[j] * tmp[r * F + j]
            hr[r * F + j] = cr[r * F + j]
    _act(hr, n * F, act)
    for r in range(n):
        zr = zg + r * G4
        for j in range(F):
            hr[r * F + j] = zr[3 * F + j] * hr[r * F + j]
    if has_mask:
        memcpy(last + r0 * F, hr, n * F * sizeof(floating))
    if seq != NULL:
        memcpy(seq + r0 * F, hr, n * F * sizeof(floating))


def convlstm_run(const floating[:, :, :, ::1] zx__btpg, const floating[:, ::1] u__kg, const Py_ssize_t[::1] geo,
                 mask, floating[:, :, ::1] h__bpf, floating[:, :, ::1] c__bpf, floating[:, :, ::1] last__bpf,
                 seq, bint go_backwards, bint zero_output, int act, int ract, Py_ssize_t rows, int n_threads):
    """Run every ConvLSTM step (channels_last, positions flattened).

    ``zx`` ``(B, T, P, 4F)`` input-convolution gates with bias, input time order; ``u``
    ``(taps * F, 4F)`` the recurrent kernel ``(*k, F, 4F)`` flattened; ``geo`` ``(9,)``: out
    sizes o1, o2, o3 (``P = o1 * o2 * o3``), kernel sizes k1, k2, k3, "same" pads before
    p1, p2, p3 (rank < 3 padded in front with 1, 1, 0); ``mask`` ``(B, T)`` uint8 or None;
    ``h``, ``c`` ``(B, P, F)`` IN initial / OUT final states; ``last`` ``(B, P, F)`` OUT (zeros on
    entry); ``seq`` ``(B, T, P, F)`` OUT outputs in processing order, or None; ``rows``: output
    positions per block (one GEMM); ``act`` / ``ract``: activation codes of ``recurrent.pyx``.
    """
    cdef Py_ssize_t B = zx__btpg.shape[0], T = zx__btpg.shape[1], P = zx__btpg.shape[2]
    cdef Py_ssize_t G4 = zx__btpg.shape[3], F = G4 // 4
    cdef const unsigned char[:, ::1] m2
    cdef floating[:, :, :, ::1] s4
    cdef const unsigned char* mp = NULL
    cdef floating* sp = NULL
    cdef Py_ssize_t g[9]
    cdef Py_ssize_t i, taps, K, bps, nblk, q, b, r0, r1, s, t, tid, per
    cdef int nt
    cdef floating* scratch
    cdef floating* hbuf
    cdef floating* hp
    cdef floating* hn
    cdef floating* tp
    cdef const floating* zxp
    cdef const floating* up
    cdef floating* h0
    cdef floating* cp
    cdef floating* lp
    if geo.shape[0] != 9:
        raise ValueError("convlstm_run: geo must have 9 entries")
    for i in range(9):
        g[i] = geo[i]
    taps = g[3] * g[4] * g[5]
    K = taps * F
    if G4 != 4 * F or g[0] * g[1] * g[2] != P or min(g[0], g[1], g[2], g[3], g[4], g[5]) < 1:
        raise ValueError("convlstm_run: gates must be (B, T, P, 4F) with P = o1 * o2 * o3")
    if min(g[6], g[7], g[8]) < 0 or g[6] >= g[3] or g[7] >= g[4] or g[8] >= g[5]:
        raise ValueError("convlstm_run: bad padding")
    if u__kg.shape[0] != K or u__kg.shape[1] != G4:
        raise ValueError(f"convlstm_run: recurrent kernel must be ({K}, {G4}), got "
                         f"({u__kg.shape[0]}, {u__kg.shape[1]})")
    if (h__bpf.shape[0] != B or h__bpf.shape[1] != P or h__bpf.shape[2] != F
            or c__bpf.shape[0] != B or c__bpf.shape[1] != P or c__bpf.shape[2] != F
            or last__bpf.shape[0] != B or last__bpf.shape[1] != P or last__bpf.shape[2] != F):
        raise ValueError("convlstm_run: states must be (B, P, F)")
    if mask is not None:
        m2 = mask
        if m2.shape[0] != B or m2.shape[1] != T:
            raise ValueError("convlstm_run: mask must be (B, T)")
        if m2.size:
            mp = &m2[0, 0]
    if seq is not None:
        s4 = seq
        if s4.shape[0] != B or s4.shape[1] != T or s4.shape[2] != P or s4.shape[3] != F:
            raise ValueError("convlstm_run: seq must be (B, T, P, F)")
        if s4.size:
            sp = &s4[0, 0, 0, 0]
    if B == 0 or T == 0 or P == 0 or F == 0:
        return
    if rows < 1 or rows > P:
        rows = P
    bps = (P + rows - 1) // rows
    nblk = B * bps
    nt = n_threads if n_threads > 1 else 1
    if nt > nblk:
        nt = <int>nblk
    per = rows * (K + G4 + F)
    scratch = <floating*>malloc(nt * per * sizeof(floating))
    hbuf = <floating*>malloc(B * P * F * sizeof(floating))
    if scratch == NULL or hbuf == NULL:
        free(scratch)
        free(hbuf)
        raise MemoryError("convlstm_run: could not allocate the scratch")
    zxp = &zx__btpg[0, 0, 0, 0]
    up = &u__kg[0, 0]
    h0 = &h__bpf[0, 0, 0]
    cp = &c__bpf[0, 0, 0]
    lp = &last__bpf[0, 0, 0]
    hp = h0
    hn = hbuf
    with nogil:
        for s in range(T):
            t = T - 1 - s if go_backwards else s
            for q in prange(nblk, num_threads=nt, schedule='static'):
                b = q // bps
                r0 = (q % bps) * rows
                r1 = r0 + rows
                if r1 > P:
                    r1 = P
                tid = omp_get_thread_num()
                _step_block(zxp + (b * T + t) * P * G4, up, hp + b * P * F, hn + b * P * F,
                            cp + b * P * F, lp + b * P * F,
                            sp + (b * T + s) * P * F if sp != NULL else NULL,
                            scratch + tid * per, scratch + tid * per + rows * K,
                            scratch + tid * per + rows * (K + G4), r0, r1, F, g,
                            mp != NULL and mp[b * T + t] == 0, mp != NULL, zero_output, act, ract)
            tp = hp
            hp = hn
            hn = tp
        if hp != h0:
            memcpy(h0, hp, B * P * F * sizeof(floating))
        if mp == NULL:
            memcpy(lp, h0, B * P * F * sizeof(floating))
    free(scratch)
    free(hbuf)
