# The one sliding-window primitive: which taps of a (strided, dilated, padded) window fall
# inside the input. Conv (im2col), pooling and locally-connected kernels all use it, so padding
# arithmetic lives here and in klayers/ops/shapes.py only.
#
# Race warning: inside a ``prange`` body Cython makes a variable thread-private only when the
# body *assigns* it. Out-parameters written through pointers (``&start``) are not assignments:
# call these helpers from a ``cdef`` function whose locals hold the results (each call has its own
# stack), or assign the variables in the loop body first.


cdef inline void window_taps(Py_ssize_t out_index, Py_ssize_t stride, Py_ssize_t pad_before,
                             Py_ssize_t dilation, Py_ssize_t kernel, Py_ssize_t in_size,
                             Py_ssize_t* start, Py_ssize_t* k_lo, Py_ssize_t* k_hi) noexcept nogil:
    """For output position ``out_index``: ``start`` = the input index of tap 0
    (``out_index * stride - pad_before``), and the taps ``k_lo <= k < k_hi`` whose input index
    ``start + k * dilation`` lies in ``[0, in_size)`` (empty when k_lo >= k_hi)."""
    cdef Py_ssize_t s = out_index * stride - pad_before
    cdef Py_ssize_t lo = 0, hi
    start[0] = s
    if s < 0:
        lo = (-s + dilation - 1) // dilation
    if in_size - s <= 0:
        hi = 0
    else:
        hi = (in_size - s + dilation - 1) // dilation
    if hi > kernel:
        hi = kernel
    if lo > kernel:
        lo = kernel
    k_lo[0] = lo
    k_hi[0] = hi


cdef inline void tap_output_range(Py_ssize_t tap, Py_ssize_t stride, Py_ssize_t pad_before,
                                  Py_ssize_t dilation, Py_ssize_t in_size, Py_ssize_t out_size,
                                  Py_ssize_t* o_lo, Py_ssize_t* o_hi) noexcept nogil:
    """The converse of ``window_taps``: the outputs ``o_lo <= o < o_hi`` whose tap ``tap`` (input
    index ``o * stride - pad_before + tap * dilation``) lies in ``[0, in_size)`` (empty when
    o_lo >= o_hi). Lets a kernel sweep one tap over a whole output row without bounds tests."""
    cdef Py_ssize_t first = pad_before - tap * dilation    # o * stride >= first
    cdef Py_ssize_t last = in_size - 1 + first              # o * stride <= last
    cdef Py_ssize_t lo = 0, hi
    if first > 0:
        lo = (first + stride - 1) // stride
    if last < 0:
        hi = 0
    else:
        hi = last // stride + 1
    if hi > out_size:
        hi = out_size
    if lo > out_size:
        lo = out_size
    o_lo[0] = lo
    o_hi[0] = hi
