# cython: language_level=3
"""The whole ConvLSTM time loop in one compiled call (issue #7).

:func:`convlstm_run` takes the input convolution of every step (computed before, as one
convolution with time folded into the batch, bias included), and runs every step without
returning to Python: per step and per block of output positions of one sample, the
recurrent convolution (strides 1, "same", no dilation: Keras's ConvLSTM rule) as im2col
into per-thread scratch (windows from ``_windows.pxd``, the primitive every conv kernel uses)
and one GEMM against the recurrent kernel seen as ``(taps * F, 4F)``, then the fused LSTM
update (the same arithmetic, in the same order, as ``recurrent.lstm_pointwise``), the Keras
mask rule (a masked sample keeps ``h`` and ``c`` and repeats its previous output, or zeros
with ``zero_output``) and the output writes. Each step is one ``prange`` over (sample, row
block): a step reads the whole previous ``h`` of its sample (the neighbours of its rows), so
``h`` is double-buffered and steps are sequential. BLAS must be single-threaded when more
than one thread runs (the caller holds it so).

The gate activations are ``_rnn_act.pxd``'s, as in ``recurrent.pyx`` (float32: inline
Cephes-style exp on 8-lane GCC vectors; float64: libm), so both kernels round alike; the
activation codes are the shared ones of ``_act.pxd``.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from _act cimport activation_codes, check_gate_act
from _blas cimport gemm
from _named cimport geometry_error
from _openmp cimport omp_get_thread_num
from _rnn_act cimport act_inplace as _act, select_gate_isa
from _windows cimport window_taps

#: the activation codes (name -> code) of every kernel module (_act.pxd)
ACTIVATIONS = activation_codes()


def select_isa(int max_level=2):
    """Use the float32 gate maps of the widest rung of the CPU-feature ladder (``cpu_features.h``:
    0 baseline, 1 AVX2 + FMA, 2 AVX-512) at most ``max_level`` that this CPU has; its name."""
    return select_gate_isa(max_level)


#: the instruction set chosen at import (the same in every kernel module)
ISA = select_isa()


# Gate blocks of the recurrent kernel and the gates (blocks of F), in Keras's order.
cdef enum:
    LSTM_I = 0
    LSTM_F = 1
    LSTM_C = 2
    LSTM_O = 3


cdef struct SameConvGeometry:
    # the recurrent convolution: strides 1, dilation 1, "same" padding; rank < 3 is embedded in
    # three axes with sizes 1 (and padding 0) in front
    Py_ssize_t size[3]          # the output positions per axis (= the state's spatial shape)
    Py_ssize_t kernel_size[3]
    Py_ssize_t pad_before[3]


cdef void _step_block(const floating* zx, const floating* U, const floating* hp, floating* hn, floating* c,
                      floating* last, floating* seq, floating* col, floating* zg, floating* tmp,
                      Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t F, const SameConvGeometry* g,
                      bint masked, bint has_mask, bint zero_output, int act, int ract) noexcept nogil:
    """Rows ``r0 .. r1`` of one sample at one step. ``zx`` ``(P, 4F)`` this step's input gates,
    ``hp`` / ``hn`` ``(P, F)`` previous / new output, ``c`` ``(P, F)`` the carry (in place),
    ``last`` ``(P, F)`` the running output, ``seq`` ``(P, F)`` this step's slot or NULL."""
    cdef Py_ssize_t n = r1 - r0, G4 = 4 * F
    cdef Py_ssize_t n0 = g.size[0], n1 = g.size[1], n2 = g.size[2]
    cdef Py_ssize_t k0 = g.kernel_size[0], k1 = g.kernel_size[1], k2 = g.kernel_size[2]
    cdef Py_ssize_t K = k0 * k1 * k2 * F
    cdef Py_ssize_t r, p, a, b_, j
    cdef Py_ssize_t st0, lo0, hi0, st1, lo1, hi1, st2, lo2, hi2
    cdef floating* crow
    cdef floating* zr
    cdef floating* hr
    cdef floating* cr
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
        window_taps(p // (n2 * n1), 1, g.pad_before[0], 1, k0, n0, &st0, &lo0, &hi0)
        window_taps((p // n2) % n1, 1, g.pad_before[1], 1, k1, n1, &st1, &lo1, &hi1)
        window_taps(p % n2, 1, g.pad_before[2], 1, k2, n2, &st2, &lo2, &hi2)
        crow = col + r * K
        # the taps along the last axis read one contiguous run of hp: one copy per (a, b)
        for a in range(k0):
            for b_ in range(k1):
                if lo0 <= a < hi0 and lo1 <= b_ < hi1 and lo2 < hi2:
                    if lo2 > 0:
                        memset(crow, 0, lo2 * F * sizeof(floating))
                    memcpy(crow + lo2 * F, hp + (((st0 + a) * n1 + st1 + b_) * n2 + st2 + lo2) * F,
                           (hi2 - lo2) * F * sizeof(floating))
                    if hi2 < k2:
                        memset(crow + hi2 * F, 0, (k2 - hi2) * F * sizeof(floating))
                else:
                    memset(crow, 0, k2 * F * sizeof(floating))
                crow = crow + k2 * F
    gemm(False, False, <int>n, <int>G4, <int>K, <floating>1.0, col, <int>K, U, <int>G4, <floating>0.0, zg, <int>G4)
    # the LSTM update, as lstm_pointwise: z + zh, candidate aside, one ract pass, then c and h
    xr = zx + r0 * G4
    for j in range(n * G4):
        zg[j] = xr[j] + zg[j]
    for r in range(n):
        memcpy(tmp + r * F, zg + r * G4 + LSTM_C * F, F * sizeof(floating))
    if F >= 8:
        # only the i, f, o blocks (the candidate went aside), one vector-friendly run each
        for r in range(n):
            _act(zg + r * G4 + LSTM_I * F, 2 * F, ract)  # i and f are adjacent
            _act(zg + r * G4 + LSTM_O * F, F, ract)
    else:
        _act(zg, n * G4, ract)
    _act(tmp, n * F, act)
    hr = hn + r0 * F
    cr = c + r0 * F
    for r in range(n):
        zr = zg + r * G4
        for j in range(F):
            cr[r * F + j] = zr[LSTM_F * F + j] * cr[r * F + j] + zr[LSTM_I * F + j] * tmp[r * F + j]
            hr[r * F + j] = cr[r * F + j]
    _act(hr, n * F, act)
    for r in range(n):
        zr = zg + r * G4
        for j in range(F):
            hr[r * F + j] = zr[LSTM_O * F + j] * hr[r * F + j]
    if has_mask:
        memcpy(last + r0 * F, hr, n * F * sizeof(floating))
    if seq != NULL:
        memcpy(seq + r0 * F, hr, n * F * sizeof(floating))


cdef int _load_geometry(object geometry, SameConvGeometry* g, Py_ssize_t P) except -1:
    if type(geometry) is not dict:
        raise TypeError(f"convlstm_run: geometry must be a dict with keys size, kernel_size, pad_before; "
                        f"got {type(geometry).__name__}")
    try:
        g[0] = geometry
    except (ValueError, IndexError, TypeError, OverflowError) as e:
        raise geometry_error(geometry, {"size": 3, "kernel_size": 3, "pad_before": 3}, e, "convlstm_run") from None
    cdef int i
    for i in range(3):
        if not (1 <= g.size[i] <= P and 1 <= g.kernel_size[i] <= 2147483647
                and 0 <= g.pad_before[i] < g.kernel_size[i]):
            raise ValueError(f"convlstm_run: geometry must have 1 <= size, 1 <= kernel_size and "
                             f"0 <= pad_before < kernel_size on every axis; got size={tuple(g.size)}, "
                             f"kernel_size={tuple(g.kernel_size)}, pad_before={tuple(g.pad_before)}")
    if (g.size[1] > P // g.size[0] or g.size[2] > P // (g.size[0] * g.size[1])
            or g.size[0] * g.size[1] * g.size[2] != P):
        raise ValueError(f"convlstm_run: gates have {P} positions, geometry size={tuple(g.size)}")
    return 0


def convlstm_run(const floating[:, :, :, ::1] zx__btpg, const floating[:, ::1] u__kg, dict geometry,
                 mask, floating[:, :, ::1] h__bpf, floating[:, :, ::1] c__bpf, floating[:, :, ::1] last__bpf,
                 seq, bint go_backwards, bint zero_output, int act, int ract, Py_ssize_t rows, int n_threads):
    """Run every ConvLSTM step (channels_last, positions flattened).

    ``zx`` ``(B, T, P, 4F)`` input-convolution gates with bias, input time order; ``u``
    ``(taps * F, 4F)`` the recurrent kernel ``(*k, F, 4F)`` flattened; ``geometry`` a dict with
    the named three-axis sizes of the recurrent convolution: ``size`` (the positions per axis,
    ``P = prod(size)``), ``kernel_size`` and ``pad_before`` ("same" padding; rank < 3 embedded
    with sizes 1, padding 0 in front); ``mask`` ``(B, T)`` uint8 or None; ``h``, ``c`` ``(B, P, F)``
    IN initial / OUT final states; ``last`` ``(B, P, F)`` OUT (zeros on entry); ``seq``
    ``(B, T, P, F)`` OUT outputs in processing order, or None; ``rows``: output positions per
    block (one GEMM); ``act`` / ``ract``: activation codes (``ACTIVATIONS``, _act.pxd). Gates in
    Keras's order i, f, c, o.
    """
    cdef Py_ssize_t B = zx__btpg.shape[0], T = zx__btpg.shape[1], P = zx__btpg.shape[2]
    cdef Py_ssize_t G4 = zx__btpg.shape[3], F = G4 // 4
    cdef const unsigned char[:, ::1] m2
    cdef floating[:, :, :, ::1] s4
    cdef const unsigned char* mp = NULL
    cdef floating* sp = NULL
    cdef SameConvGeometry g
    cdef Py_ssize_t taps, K, bps, nblk, q, b, r0, r1, s, t, tid, per
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
    if G4 != 4 * F or P < 1:
        raise ValueError("convlstm_run: gates must be (B, T, P, 4F) with P >= 1")
    _load_geometry(geometry, &g, P)
    check_gate_act(act, "convlstm_run")
    check_gate_act(ract, "convlstm_run")
    taps = g.kernel_size[0] * g.kernel_size[1] * g.kernel_size[2]
    K = taps * F
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
                            scratch + tid * per + rows * (K + G4), r0, r1, F, &g,
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
