# cython: language_level=3
"""Locally-connected (unshared-weight) convolution, 1-D and 2-D, as one matrix product per
output position.

For output position ``p`` the input patch of every sample in a block of rows is gathered into
a per-thread matrix ``patch[rows, F]`` (``F = kh * kw * cin``, zeros where the window hangs
over a ``"same"`` edge), then ``y[rows, O] = patch @ w[p]`` (SGEMM/DGEMM, or GEMV for a single
row) and the epilogue adds the bias, applies a fused activation and scatters into the output
in either data format. Positions (times row blocks) are split across OpenMP threads
(``guided``: a thread that loses its core on a shared machine does not hold the others up);
the caller holds BLAS to one thread around the call (DESIGN principle 3).

Layout (the tf-keras implementation-1 kernel, ``(P, F, O)``): the feature axis of ``w[p]``
is ordered ``(ky, kx, c)`` for channels_last and ``(c, ky, kx)`` for channels_first, which is
exactly how tf-keras's ``backend.local_conv`` flattens a patch in each data format. A 1-D
layer is the 2-D case with ``in_h = kh = out_h = 1``.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from _act cimport activation_codes, check_epilogue_act
from _blas cimport gemm, gemv_t
from _conv_geometry cimport Geom, load_geometry
from _epilogue cimport act_value
from _windows cimport window_taps

#: the activation codes (name -> code) of every kernel module (_act.pxd); the epilogue fuses
#: linear, relu and relu6, anything else is applied by the caller
ACTIVATIONS = activation_codes()


cdef inline void _zero(floating* dst, Py_ssize_t n) noexcept nogil:
    if n > 0:
        memset(dst, 0, n * sizeof(floating))


cdef inline void _gather(const floating* src, floating* dst, bint channels_first,
                         Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t cin,
                         Py_ssize_t kh, Py_ssize_t kw,
                         Py_ssize_t y0, Py_ssize_t ky_lo, Py_ssize_t ky_hi,
                         Py_ssize_t x0, Py_ssize_t kx_lo, Py_ssize_t kx_hi) noexcept nogil:
    """One sample's patch (F values) in the kernel's feature order; taps off the input are 0."""
    cdef Py_ssize_t ky, c, nx = kx_hi - kx_lo
    cdef floating* row
    if channels_first:
        # feature (c, ky, kx): each (c, ky) row of the window is a contiguous run along x
        for c in range(cin):
            for ky in range(kh):
                row = dst + (c * kh + ky) * kw
                if ky < ky_lo or ky >= ky_hi or nx <= 0:
                    _zero(row, kw)
                    continue
                _zero(row, kx_lo)
                memcpy(row + kx_lo, src + (c * in_h + y0 + ky) * in_w + x0 + kx_lo, nx * sizeof(floating))
                _zero(row + kx_hi, kw - kx_hi)
    else:
        # feature (ky, kx, c): each ky row of the window is one contiguous run of kw*cin values
        for ky in range(kh):
            row = dst + ky * kw * cin
            if ky < ky_lo or ky >= ky_hi or nx <= 0:
                _zero(row, kw * cin)
                continue
            _zero(row, kx_lo * cin)
            memcpy(row + kx_lo * cin, src + ((y0 + ky) * in_w + x0 + kx_lo) * cin, nx * cin * sizeof(floating))
            _zero(row + kx_hi * cin, (kw - kx_hi) * cin)


def local_forward(const floating[:, ::1] x__bi, const floating[:, :, ::1] w__pfo,
                  const floating[:, ::1] bias__po, floating[:, ::1] out__bj, dict geometry,
                  bint use_bias, int act, int block_rows, int n_threads):
    """out = act(local_conv(x, w) + bias) for one locally-connected layer.

    ``geometry``: a ConvGeometry (``_conv_geometry.pxd``) with the two spatial axes on axes 1 and
    2 (axis 0 of size 1; a 1-D layer has ``in_h = kh = out_h = 1``), ``groups`` 1, no dilation,
    ``out_channels`` the filters and ``pad_before`` tf-keras's locally-connected padding.

    Shapes (checked by the caller, and again here before the GIL is released):
        x__bi: ``(B, in_h * in_w * cin)``, each row one sample in the data format's order.
        w__pfo: ``(P, F, O)`` with ``P = out_h * out_w``, ``F = kh * kw * cin``.
        bias__po: ``(P, O)`` (the bias of position p, filter o); ignored unless use_bias.
        out__bj: ``(B, P * O)``: per sample ``(P, O)`` for channels_last, ``(O, P)`` for
            channels_first.
    Window of output (oy, ox): rows ``oy * sh - pad_h + [0, kh)``, columns likewise.
    act: an epilogue code of ``ACTIVATIONS``. block_rows: samples per GEMM (bounds the
    per-thread patch buffer); n_threads: OpenMP threads over (position, row block) items.
    """
    cdef Geom g
    load_geometry(geometry, &g, x__bi.shape[0] * x__bi.shape[1], out__bj.shape[0] * out__bj.shape[1],
                  "local_forward")
    if (g.ind[0] != 1 or g.outd[0] != 1 or g.k[0] != 1 or g.groups != 1
            or g.dil[0] != 1 or g.dil[1] != 1 or g.dil[2] != 1):
        raise ValueError(f"local_forward: geometry must have in_size, out_size and kernel_size 1 on axis 0, "
                         f"groups 1 and dilation_rate 1; got {geometry}")
    cdef Py_ssize_t in_h = g.ind[1], in_w = g.ind[2], cin = g.cin, kh = g.k[1], kw = g.k[2]
    cdef Py_ssize_t sh = g.s[1], sw = g.s[2], pad_h = g.pad[1], pad_w = g.pad[2]
    cdef Py_ssize_t out_h = g.outd[1], out_w = g.outd[2]
    cdef bint channels_first = g.cf
    cdef Py_ssize_t B = x__bi.shape[0], P = out_h * out_w
    cdef Py_ssize_t F = kh * kw * cin, O = w__pfo.shape[2]
    if B != g.n or O != g.cout:
        raise ValueError(f"local_forward: shape mismatch: {B} input rows and {O} filters, "
                         f"geometry batch={g.n} out_channels={g.cout}")
    if w__pfo.shape[0] != P or w__pfo.shape[1] != F:
        raise ValueError(f"local_forward: shape mismatch: kernel {tuple(w__pfo.shape)[:3]} for "
                         f"{P} positions of {F} features")
    if out__bj.shape[0] != B or out__bj.shape[1] != P * O:
        raise ValueError(f"local_forward: shape mismatch: out {tuple(out__bj.shape)[:2]}, expected ({B}, {P * O})")
    if use_bias and (bias__po.shape[0] != P or bias__po.shape[1] != O):
        raise ValueError(f"local_forward: bias {tuple(bias__po.shape)[:2]}, expected ({P}, {O})")
    if P > 0 and ((out_h - 1) * sh - pad_h >= in_h or (out_w - 1) * sw - pad_w >= in_w):
        raise ValueError("local_forward: the last window starts past the input")
    check_epilogue_act(act, "local_forward")
    if B == 0 or O == 0 or P == 0:
        return
    if block_rows < 1:
        block_rows = 1
    if block_rows > B:
        block_rows = <int>B
    cdef Py_ssize_t nblk = (B + block_rows - 1) // block_rows
    cdef Py_ssize_t items = P * nblk
    if n_threads < 1:
        n_threads = 1
    if n_threads > items:
        n_threads = <int>items
    # strides of one output value: per position and per filter
    cdef Py_ssize_t op = 1 if channels_first else O
    cdef Py_ssize_t of = P if channels_first else 1

    cdef Py_ssize_t item, p, blk, b0, nb, b, o, oy, ox, y0, x0, ky_lo, ky_hi, kx_lo, kx_hi
    cdef floating* patch = NULL
    cdef floating* ybuf = NULL
    cdef floating* dst
    cdef const floating* wp
    cdef floating v
    cdef int failed[1]
    failed[0] = 0
    with nogil, parallel(num_threads=n_threads):
        patch = <floating*>malloc(block_rows * F * sizeof(floating))
        ybuf = <floating*>malloc(block_rows * O * sizeof(floating))
        try:
            if patch == NULL or ybuf == NULL:
                failed[0] = 1
            for item in prange(items, schedule="guided"):
                if patch == NULL or ybuf == NULL:
                    continue
                p = item // nblk
                blk = item - p * nblk
                b0 = blk * block_rows
                nb = B - b0
                if nb > block_rows:
                    nb = block_rows
                oy = p // out_w
                ox = p - oy * out_w
                # assigned here so that Cython makes them thread-private (they are only
                # written through pointers below, which it does not see)
                y0 = 0
                ky_lo = 0
                ky_hi = 0
                x0 = 0
                kx_lo = 0
                kx_hi = 0
                window_taps(oy, sh, pad_h, 1, kh, in_h, &y0, &ky_lo, &ky_hi)
                window_taps(ox, sw, pad_w, 1, kw, in_w, &x0, &kx_lo, &kx_hi)
                for b in range(nb):
                    _gather(&x__bi[b0 + b, 0], patch + b * F, channels_first, in_h, in_w, cin,
                            kh, kw, y0, ky_lo, ky_hi, x0, kx_lo, kx_hi)
                wp = &w__pfo[p, 0, 0]
                if nb == 1:
                    # one sample: a vector-matrix product streams w[p] once (no GEMM packing)
                    gemv_t(<int>F, <int>O, <floating>1.0, wp, <int>O, patch, <floating>0.0, ybuf)
                else:
                    gemm(False, False, <int>nb, <int>O, <int>F, <floating>1.0, patch, <int>F,
                         wp, <int>O, <floating>0.0, ybuf, <int>O)
                for b in range(nb):
                    dst = &out__bj[b0 + b, 0] + p * op
                    for o in range(O):
                        v = ybuf[b * O + o]
                        if use_bias:
                            v = v + bias__po[p, o]
                        dst[o * of] = act_value(v, act)
        finally:
            free(patch)
            free(ybuf)
    if failed[0]:
        raise MemoryError("local_forward: could not allocate the per-thread patch buffers")
