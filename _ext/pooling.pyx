# cython: language_level=3
"""Pooling kernels: windowed max/average (rank 1-3) and global max/average (streaming reductions).

Level 2 of the kernel pattern (DESIGN.md): IN arrays are const views, OUT arrays are allocated
by the caller (``klayers.ops.pooling``), shapes are checked here before the GIL is released,
and the work is split with OpenMP ``prange`` over independent output rows.

Every windowed layout is seen as ``x__pdhwc``: ``P`` planes (the batch for channels_last, batch
times channels for channels_first, where ``C`` is then 1), three spatial axes (1-D and 2-D
pooling give the unused ones size 1) and ``C`` contiguous channels. One work item is one output
row ``(p, od, oh)``: for channels_last it is ``OW * C`` contiguous values, read and written in
memory order with the channel loop innermost (a plain vector loop); for channels_first (C == 1)
each window tap sweeps the whole output row (``tap_output_range`` gives its in-bounds outputs).

Semantics are TensorFlow's (recorded from tf-keras 2.21):

* windowed max starts from the lowest finite value and keeps ``v`` when ``v > m``: a NaN never
  wins (a window of NaNs or of -inf gives the lowest finite value), exactly what x86 ``maxps``
  computes, so the loop vectorizes without changing the result;
* windowed average divides the window's sum by the number of taps inside the input (``"same"``
  padding never counts the padding);
* global max propagates NaN (``reduce_max``); global average is ``sum / count`` and, with a
  mask, ``sum(x * mask) / sum(mask)`` (a fully masked row gives 0/0 = NaN, as in Keras).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.float cimport DBL_MAX, FLT_MAX
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc

from _cpu cimport kl_cpu_level, kl_isa_name
from _windows cimport tap_output_range, window_taps

cdef extern from "pool_tiles.h":
    void kpl_row_float(const float* const* xr, int nr, Py_ssize_t W, Py_ssize_t C, Py_ssize_t OW,
                       Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t pw, int mode, Py_ssize_t full,
                       float* orow) noexcept nogil
    void kpl_row_double(const double* const* xr, int nr, Py_ssize_t W, Py_ssize_t C, Py_ssize_t OW,
                        Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t pw, int mode, Py_ssize_t full,
                        double* orow) noexcept nogil
    void kpl_use(int level) noexcept nogil

# input rows (pool depth x height) of a channels_last window held on the stack (more: malloc)
cdef enum:
    KPL_STACK_ROWS = 64

cdef extern from "pool_rows.h":
    void kgp_sum_float(const float* x, Py_ssize_t s_lo, Py_ssize_t s_hi, Py_ssize_t C, float* acc) noexcept nogil
    void kgp_sum_double(const double* x, Py_ssize_t s_lo, Py_ssize_t s_hi, Py_ssize_t C, double* acc) noexcept nogil
    void kgp_use(int level) noexcept nogil


def select_isa(int max_level=2):
    """Use the global average's column sums of the widest rung of the CPU-feature ladder
    (``cpu_features.h``: 0 baseline, 1 AVX2 + FMA, 2 AVX-512) that is at most ``max_level``
    and that this CPU has; returns its name. Import selects the widest; tests force lower levels."""
    cdef int level = kl_cpu_level(max_level)
    kgp_use(level)
    kpl_use(level)
    return kl_isa_name(level).decode()


#: the instruction set chosen at import (the same in every kernel module)
ISA = select_isa()

MODE_MAX = 0
MODE_AVG = 1
#: max pooling where the padding holds zeros (explicit padding: a ZeroPadding folded in)
MODE_MAX_ZERO_PADDED = 2

cdef inline floating _lowest(floating like) noexcept nogil:
    if floating is float:
        return -FLT_MAX
    else:
        return -DBL_MAX


cdef int _pool_row(const floating* x, floating* out, Py_ssize_t r,
                           Py_ssize_t D, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
                           Py_ssize_t OD, Py_ssize_t OH, Py_ssize_t OW,
                           Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw,
                           Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                           Py_ssize_t pd, Py_ssize_t ph, Py_ssize_t pw, int mode) noexcept nogil:
    """Output row ``r`` (= ``(p * OD + od) * OH + oh``): all ``OW * C`` values. ``mode`` 2: max
    where the padding holds zeros (a ZeroPadding folded in): a window with a tap outside the
    input also takes 0, compared the way every tap is. Returns 0, or -1 when out of memory."""
    cdef Py_ssize_t p = r // (OD * OH), rem = r % (OD * OH)
    cdef Py_ssize_t od = rem // OH, oh = rem % OH
    cdef Py_ssize_t d0, dlo, dhi, h0, hlo, hhi, w0, wlo, whi
    cdef Py_ssize_t ow, a, b, e, lo, hi
    cdef const floating* xp
    cdef const floating* xr
    cdef floating* o
    cdef floating v, init
    cdef Py_ssize_t full = kd * kh * kw
    init = _lowest(<floating>0) if mode != 1 else 0
    window_taps(od, sd, pd, 1, kd, D, &d0, &dlo, &dhi)
    window_taps(oh, sh, ph, 1, kh, H, &h0, &hlo, &hhi)
    cdef const floating* xplane = x + p * D * H * W * C
    cdef floating* orow = out + r * OW * C
    if C == 1:
        # channels_first (one value per pixel): each tap sweeps the whole output row, so the
        # inner loop is a plain (strided) vector loop over the row, kept in L1.
        for ow in range(OW):
            orow[ow] = init
        for a in range(dlo, dhi):
            for b in range(hlo, hhi):
                xr = xplane + ((d0 + a) * H + (h0 + b)) * W
                for e in range(kw):
                    tap_output_range(e, sw, pw, 1, W, OW, &lo, &hi)
                    if lo >= hi:
                        continue
                    # xp[j * sw] is input column (lo + j) * sw - pw + e, in bounds for j < hi - lo
                    xp = xr + (lo * sw - pw + e)
                    o = orow + lo
                    if mode != 1:
                        if sw == 1:
                            for ow in range(hi - lo):
                                v = xp[ow]
                                o[ow] = v if v > o[ow] else o[ow]
                        else:
                            for ow in range(hi - lo):
                                v = xp[ow * sw]
                                o[ow] = v if v > o[ow] else o[ow]
                    else:
                        if sw == 1:
                            for ow in range(hi - lo):
                                o[ow] = o[ow] + xp[ow]
                        else:
                            for ow in range(hi - lo):
                                o[ow] = o[ow] + xp[ow * sw]
        if mode == 1:
            for ow in range(OW):
                window_taps(ow, sw, pw, 1, kw, W, &w0, &wlo, &whi)
                orow[ow] = orow[ow] / ((dhi - dlo) * (hhi - hlo) * (whi - wlo))
        elif mode == 2:
            for ow in range(OW):
                window_taps(ow, sw, pw, 1, kw, W, &w0, &wlo, &whi)
                if (dhi - dlo) * (hhi - hlo) * (whi - wlo) < full:
                    orow[ow] = 0 if 0 > orow[ow] else orow[ow]
        return 0
    # channels_last: the window's in-range input rows, then each output pixel reduces its taps
    # in registers (pool_tiles.h), the taps in row then column order
    cdef const floating* stack_rows[KPL_STACK_ROWS]
    cdef const floating** rows = stack_rows
    cdef int nr = 0
    if kd * kh > KPL_STACK_ROWS:
        rows = <const floating**>malloc(kd * kh * sizeof(floating*))
        if rows == NULL:
            return -1
    for a in range(dlo, dhi):
        for b in range(hlo, hhi):
            rows[nr] = xplane + ((d0 + a) * H + (h0 + b)) * W * C
            nr += 1
    if floating is float:
        kpl_row_float(<const float* const*>rows, nr, W, C, OW, kw, sw, pw, mode, full, orow)
    else:
        kpl_row_double(<const double* const*>rows, nr, W, C, OW, kw, sw, pw, mode, full, orow)
    if rows != stack_rows:
        free(rows)
    return 0


def pool_forward(const floating[:, :, :, :, ::1] x__pdhwc, floating[:, :, :, :, ::1] out__pdhwc,
                 pool_size, strides, pad_before, int mode, int n_threads):
    """Windowed max (``mode`` 0), average (1) or max over zero padding (2: the padding holds zeros,
    as after a ZeroPadding layer) pooling over the three spatial axes.

    Args:
        x__pdhwc: ``(P, D, H, W, C)`` input, C-contiguous.
        out__pdhwc: ``(P, OD, OH, OW, C)`` output (written entirely).
        pool_size, strides: three positive ints each.
        pad_before: three ints >= 0, the padding before each spatial axis (the padding after
            is implied by the output size); every output window must hold at least one tap
            (true for Keras's "valid" and "same" output sizes).
        n_threads: OpenMP threads over the ``P * OD * OH`` output rows.
    """
    cdef Py_ssize_t P = x__pdhwc.shape[0], D = x__pdhwc.shape[1], H = x__pdhwc.shape[2]
    cdef Py_ssize_t W = x__pdhwc.shape[3], C = x__pdhwc.shape[4]
    cdef Py_ssize_t OD = out__pdhwc.shape[1], OH = out__pdhwc.shape[2], OW = out__pdhwc.shape[3]
    cdef Py_ssize_t kd, kh, kw, sd, sh, sw, pd, ph, pw
    kd, kh, kw = pool_size
    sd, sh, sw = strides
    pd, ph, pw = pad_before
    if out__pdhwc.shape[0] != P or out__pdhwc.shape[4] != C:
        raise ValueError(f"pool_forward: shape mismatch x={[x__pdhwc.shape[i] for i in range(5)]} out={[out__pdhwc.shape[i] for i in range(5)]}")
    if min(kd, kh, kw, sd, sh, sw) < 1 or min(pd, ph, pw) < 0:
        raise ValueError(f"pool_forward: bad window pool_size={pool_size} strides={strides} pad_before={pad_before}")
    if mode != 0 and mode != 1 and mode != 2:
        raise ValueError(f"pool_forward: unknown mode {mode}")
    for n_in, n_out, k, s, pb in ((D, OD, kd, sd, pd), (H, OH, kh, sh, ph), (W, OW, kw, sw, pw)):
        # the first and last windows must each overlap the input
        if n_out > 0 and (pb >= k or (n_out - 1) * s - pb >= n_in):
            raise ValueError(f"pool_forward: an output window lies outside the input "
                             f"(size {n_in}, output {n_out}, pool {k}, stride {s}, pad {pb})")
    cdef Py_ssize_t rows = P * OD * OH, r
    if rows == 0 or OW == 0 or C == 0:
        return
    cdef const floating* xp = &x__pdhwc[0, 0, 0, 0, 0]
    cdef floating* op = &out__pdhwc[0, 0, 0, 0, 0]
    cdef int nt = max(1, min(n_threads, rows))
    cdef int failed = 0
    with nogil:
        if nt == 1:
            for r in range(rows):
                failed += _pool_row(xp, op, r, D, H, W, C, OD, OH, OW, kd, kh, kw, sd, sh, sw, pd, ph, pw, mode)
        else:
            for r in prange(rows, num_threads=nt, schedule="static"):
                failed += _pool_row(xp, op, r, D, H, W, C, OD, OH, OW, kd, kh, kw, sd, sh, sw, pd, ph, pw, mode)
    if failed:
        raise MemoryError("pool_forward: no memory for a window's row pointers")


cdef inline void _reduce_chunk(const floating* x, const floating* w, floating* acc,
                               Py_ssize_t s_lo, Py_ssize_t s_hi, Py_ssize_t C, int mode) noexcept nogil:
    """acc[0:C] = reduction of rows ``s_lo <= s < s_hi`` of ``x`` (rows of C values);
    ``w`` (per-row weights) is NULL unless the average is masked."""
    cdef Py_ssize_t s, c
    cdef const floating* xr
    cdef floating v, ws
    if mode == 0:
        for c in range(C):
            acc[c] = -INFINITY
        for s in range(s_lo, s_hi):
            xr = x + s * C
            for c in range(C):
                v = xr[c]
                # sticky NaN: once acc is NaN, v > acc is false and v != v too (for a number)
                acc[c] = v if (v > acc[c]) | (v != v) else acc[c]
    elif w == NULL:
        # the sums in registers across the rows (pool_rows.h): the same additions, in row order
        if floating is float:
            kgp_sum_float(x, s_lo, s_hi, C, acc)
        else:
            kgp_sum_double(x, s_lo, s_hi, C, acc)
    else:
        for c in range(C):
            acc[c] = 0
        for s in range(s_lo, s_hi):
            xr = x + s * C
            ws = w[s]
            for c in range(C):
                acc[c] = acc[c] + xr[c] * ws


def global_pool_cl(const floating[:, :, ::1] x__bsc, const floating[:, ::1] mask__bs,
                   floating[:, ::1] out__bc, floating[:, :, ::1] partial__bkc,
                   int mode, int masked, int n_threads):
    """Global max (``mode`` 0) or average (1) over the middle axis of a channels_last input.

    Args:
        x__bsc: ``(B, S, C)``: batch, all spatial positions flattened, channels.
        mask__bs: ``(B, S)`` step weights when ``masked`` (average only:
            ``sum(x * mask) / sum(mask)``), else any array (unused).
        out__bc: ``(B, C)`` output.
        partial__bkc: ``(B, K, C)`` scratch: each of the ``B * K`` work items reduces one of K
            contiguous slices of S (K > 1 lets small batches use every thread); it may share
            memory with ``out__bc`` when K == 1.
        n_threads: OpenMP threads over the ``B * K`` slices.
    """
    cdef Py_ssize_t B = x__bsc.shape[0], S = x__bsc.shape[1], C = x__bsc.shape[2]
    cdef Py_ssize_t K = partial__bkc.shape[1]
    if out__bc.shape[0] != B or out__bc.shape[1] != C or partial__bkc.shape[0] != B or partial__bkc.shape[2] != C or K < 1:
        raise ValueError(f"global_pool_cl: shape mismatch x={[x__bsc.shape[i] for i in range(3)]} out={[out__bc.shape[i] for i in range(2)]} "
                         f"partial={[partial__bkc.shape[i] for i in range(3)]}")
    if masked and (mode != 1 or mask__bs.shape[0] != B or mask__bs.shape[1] != S):
        raise ValueError(f"global_pool_cl: a mask needs mode 1 and shape ({B}, {S}), got {[mask__bs.shape[i] for i in range(2)]}")
    if mode != 0 and mode != 1:
        raise ValueError(f"global_pool_cl: unknown mode {mode}")
    if S == 0 and B * C > 0:
        raise ValueError("global_pool_cl: nothing to reduce (S == 0)")
    if B == 0 or C == 0:
        return
    cdef const floating* xp = &x__bsc[0, 0, 0]
    cdef const floating* wp = NULL
    cdef floating* pp = &partial__bkc[0, 0, 0]
    cdef floating* op = &out__bc[0, 0]
    if masked:
        wp = &mask__bs[0, 0]
    cdef Py_ssize_t items = B * K, i, b, k, c, s
    cdef int nt = max(1, min(n_threads, items))
    cdef floating v, acc, denom = 1
    with nogil:
        if nt == 1:
            for i in range(items):
                b = i // K
                k = i % K
                _reduce_chunk(xp + b * S * C, (wp + b * S) if masked else NULL, pp + i * C,
                              S * k // K, S * (k + 1) // K, C, mode)
        else:
            for i in prange(items, num_threads=nt, schedule="static"):
                _reduce_chunk(xp + (i // K) * S * C, (wp + (i // K) * S) if masked else NULL, pp + i * C,
                              S * (i % K) // K, S * (i % K + 1) // K, C, mode)
        # combine the K partials (K * C values per sample: small next to the input)
        for b in range(B):
            if mode == 1:
                denom = <floating>S
                if masked:
                    denom = 0
                    for s in range(S):
                        denom = denom + wp[b * S + s]
            for c in range(C):
                acc = pp[b * K * C + c]
                for k in range(1, K):
                    v = pp[(b * K + k) * C + c]
                    if mode == 0:
                        acc = v if (v > acc) | (v != v) else acc
                    else:
                        acc = acc + v
                op[b * C + c] = acc if mode == 0 else acc / denom


cdef inline floating _reduce_row(const floating* x, const floating* w, Py_ssize_t S, int mode) noexcept nogil:
    """Reduction of one contiguous row (four independent accumulators for instruction-level
    parallelism: a single running sum would wait on each add)."""
    cdef Py_ssize_t s = 0, s4 = S - S % 4
    cdef floating a0, a1, a2, a3, v
    if mode == 0:
        a0 = a1 = a2 = a3 = -INFINITY
        while s < s4:
            v = x[s]
            a0 = v if (v > a0) | (v != v) else a0
            v = x[s + 1]
            a1 = v if (v > a1) | (v != v) else a1
            v = x[s + 2]
            a2 = v if (v > a2) | (v != v) else a2
            v = x[s + 3]
            a3 = v if (v > a3) | (v != v) else a3
            s = s + 4
        while s < S:
            v = x[s]
            a0 = v if (v > a0) | (v != v) else a0
            s = s + 1
        a0 = a1 if (a1 > a0) | (a1 != a1) else a0
        a0 = a2 if (a2 > a0) | (a2 != a2) else a0
        a0 = a3 if (a3 > a0) | (a3 != a3) else a0
        return a0
    a0 = a1 = a2 = a3 = 0
    if w == NULL:
        while s < s4:
            a0 = a0 + x[s]
            a1 = a1 + x[s + 1]
            a2 = a2 + x[s + 2]
            a3 = a3 + x[s + 3]
            s = s + 4
        while s < S:
            a0 = a0 + x[s]
            s = s + 1
    else:
        while s < s4:
            a0 = a0 + x[s] * w[s]
            a1 = a1 + x[s + 1] * w[s + 1]
            a2 = a2 + x[s + 2] * w[s + 2]
            a3 = a3 + x[s + 3] * w[s + 3]
            s = s + 4
        while s < S:
            a0 = a0 + x[s] * w[s]
            s = s + 1
    return (a0 + a1) + (a2 + a3)


def global_pool_cf(const floating[:, ::1] x__rs, const floating[:, ::1] mask__bs,
                   floating[::1] out__r, Py_ssize_t channels, int mode, int masked, int n_threads):
    """Global max (``mode`` 0) or average (1) of each contiguous row of a channels_first input.

    Args:
        x__rs: ``(R, S)`` with ``R = batch * channels`` rows of ``S`` spatial values.
        mask__bs: ``(R // channels, S)`` step weights when ``masked`` (average only), row
            ``r`` using mask row ``r // channels``.
        out__r: ``(R,)`` output.
        channels: channels per sample (the mask's row stride in rows of x).
        n_threads: OpenMP threads over the rows.
    """
    cdef Py_ssize_t R = x__rs.shape[0], S = x__rs.shape[1]
    if out__r.shape[0] != R or channels < 1 or R % channels:
        raise ValueError(f"global_pool_cf: shape mismatch x={[x__rs.shape[i] for i in range(2)]} out=({out__r.shape[0]},) channels={channels}")
    if masked and (mode != 1 or mask__bs.shape[0] != R // channels or mask__bs.shape[1] != S):
        raise ValueError(f"global_pool_cf: a mask needs mode 1 and shape ({R // channels}, {S}), got {[mask__bs.shape[i] for i in range(2)]}")
    if mode != 0 and mode != 1:
        raise ValueError(f"global_pool_cf: unknown mode {mode}")
    if S == 0 and R > 0:
        raise ValueError("global_pool_cf: nothing to reduce (S == 0)")
    if R == 0:
        return
    cdef const floating* xp = &x__rs[0, 0]
    cdef const floating* wp = NULL
    cdef floating* op = &out__r[0]
    if masked:
        wp = &mask__bs[0, 0]
    cdef Py_ssize_t r, s, b
    cdef int nt = max(1, min(n_threads, R))
    cdef floating denom
    with nogil:
        if nt == 1:
            for r in range(R):
                op[r] = _reduce_row(xp + r * S, (wp + (r // channels) * S) if masked else NULL, S, mode)
        else:
            for r in prange(R, num_threads=nt, schedule="static"):
                op[r] = _reduce_row(xp + r * S, (wp + (r // channels) * S) if masked else NULL, S, mode)
        if mode == 1:
            for b in range(R // channels):
                denom = <floating>S
                if masked:
                    denom = 0
                    for s in range(S):
                        denom = denom + wp[b * S + s]
                for r in range(b * channels, (b + 1) * channels):
                    op[r] = op[r] / denom
