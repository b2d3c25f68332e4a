# The geometry of a convolution (conv, depthwise, separable, transposed): named at the boundary,
# checked once, then read by the kernels through element strides.
#
# klayers.ops builds the geometry as a dict with the keys of ConvGeometry (Cython converts it to
# the struct field by field; a missing, short, long or non-integer field is an error naming it). Rank 1-3
# convolutions embed their spatial axes in three (sizes 1, strides 1, padding 0 elsewhere).
# ``load_geometry`` checks every field and the array sizes against them before a kernel
# releases the GIL, so a bad argument is a ValueError, never a crash. Both data formats are
# read and written in place through the element strides of Geom.
from _named cimport geometry_error


cdef struct ConvGeometry:
    Py_ssize_t batch
    Py_ssize_t in_channels
    Py_ssize_t out_channels
    Py_ssize_t groups              # in_channels for depthwise (out_channels = in_channels * multiplier)
    bint channels_first
    Py_ssize_t in_size[3]
    Py_ssize_t out_size[3]
    Py_ssize_t kernel_size[3]
    Py_ssize_t strides[3]
    Py_ssize_t dilation_rate[3]
    Py_ssize_t pad_before[3]       # transposed: the padding of the equivalent forward conv


cdef struct Geom:
    # the checked ConvGeometry, in the kernels' short names
    Py_ssize_t n, cin, cout, groups
    bint cf
    Py_ssize_t ind[3]
    Py_ssize_t outd[3]
    Py_ssize_t k[3]
    Py_ssize_t s[3]
    Py_ssize_t dil[3]
    Py_ssize_t pad[3]
    # element strides of x (input) and y (output): batch, channel, axis 0, 1, 2
    Py_ssize_t xb, xc, x0, x1, x2
    Py_ssize_t yb, yc, y0, y1, y2


#: the largest size, stride, dilation or padding on one axis (as klayers.ops.shapes.MAX_DIM)
cdef enum:
    GEOMETRY_MAX_DIM = 2147483647


cdef inline dict conv_geometry_fields():
    """The fields of ConvGeometry: name -> number of axes (0: a scalar)."""
    return {"batch": 0, "in_channels": 0, "out_channels": 0, "groups": 0, "channels_first": 0, "in_size": 3,
            "out_size": 3, "kernel_size": 3, "strides": 3, "dilation_rate": 3, "pad_before": 3}


cdef inline tuple _axes3(const Py_ssize_t* v):
    return (v[0], v[1], v[2])


cdef inline bint _in_range(const Py_ssize_t* v, Py_ssize_t lo) noexcept nogil:
    return (lo <= v[0] <= GEOMETRY_MAX_DIM and lo <= v[1] <= GEOMETRY_MAX_DIM
            and lo <= v[2] <= GEOMETRY_MAX_DIM)


cdef inline Py_ssize_t product(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """``a * b`` for non-negative sizes, or -1 when it does not fit a Py_ssize_t."""
    if a < 0 or b < 0 or (a != 0 and b > (<Py_ssize_t>(<size_t>-1 >> 1)) // a):
        return -1
    return a * b


cdef inline int load_geometry(object geometry, Geom* g, Py_ssize_t x_size, Py_ssize_t out_size,
                              str where) except -1:
    """Convert ``geometry`` (a dict, see ConvGeometry), check it and the input and output sizes
    (``batch * channels * prod(sizes)`` values each; -1: a prepared kernel's, taken from the
    geometry, whose arrays come per call), fill ``g``; ValueError naming the problem."""
    cdef ConvGeometry a
    cdef int i
    if type(geometry) is not dict:
        raise TypeError(f"{where}: geometry must be a dict with the fields of ConvGeometry, "
                        f"got {type(geometry).__name__}")
    try:
        a = geometry
    except (ValueError, IndexError, TypeError, OverflowError) as e:
        raise geometry_error(geometry, conv_geometry_fields(), e, where) from None
    if not (_in_range(a.in_size, 0) and _in_range(a.out_size, 0) and _in_range(a.kernel_size, 1)
            and _in_range(a.strides, 1) and _in_range(a.dilation_rate, 1) and _in_range(a.pad_before, 0)):
        for name, v, lo in (("in_size", _axes3(a.in_size), 0), ("out_size", _axes3(a.out_size), 0),
                            ("kernel_size", _axes3(a.kernel_size), 1), ("strides", _axes3(a.strides), 1),
                            ("dilation_rate", _axes3(a.dilation_rate), 1), ("pad_before", _axes3(a.pad_before), 0)):
            if min(v) < lo or max(v) > GEOMETRY_MAX_DIM:
                raise ValueError(f"{where}: geometry {name} must be in [{lo}, {GEOMETRY_MAX_DIM}] on every "
                                 f"axis, got {name}={v}")
    if not (0 <= a.batch <= GEOMETRY_MAX_DIM and 1 <= a.in_channels <= GEOMETRY_MAX_DIM
            and 1 <= a.out_channels <= GEOMETRY_MAX_DIM and 1 <= a.groups <= GEOMETRY_MAX_DIM):
        raise ValueError(f"{where}: geometry batch must be in [0, {GEOMETRY_MAX_DIM}] and in_channels, "
                         f"out_channels and groups in [1, {GEOMETRY_MAX_DIM}], got batch={a.batch}, "
                         f"in_channels={a.in_channels}, out_channels={a.out_channels}, groups={a.groups}")
    if a.in_channels % a.groups or a.out_channels % a.groups:
        raise ValueError(f"{where}: geometry groups={a.groups} must divide in_channels={a.in_channels} "
                         f"and out_channels={a.out_channels}")
    g.n = a.batch
    g.cin = a.in_channels
    g.cout = a.out_channels
    g.groups = a.groups
    g.cf = a.channels_first
    for i in range(3):
        g.ind[i] = a.in_size[i]
        g.outd[i] = a.out_size[i]
        g.k[i] = a.kernel_size[i]
        g.s[i] = a.strides[i]
        g.dil[i] = a.dilation_rate[i]
        g.pad[i] = a.pad_before[i]
    # sizes that do not fit a Py_ssize_t come out -1: never equal to an array's size
    cdef Py_ssize_t pi = product(product(g.ind[0], g.ind[1]), g.ind[2])
    cdef Py_ssize_t po = product(product(g.outd[0], g.outd[1]), g.outd[2])
    cdef Py_ssize_t want_x = product(product(g.n, g.cin), pi), want_y = product(product(g.n, g.cout), po)
    if product(g.cin, pi) < 0 or product(g.cout, po) < 0:
        raise ValueError(f"{where}: geometry too large: {g.cin} * prod({_axes3(g.ind)}) input or "
                         f"{g.cout} * prod({_axes3(g.outd)}) output values per sample")
    if want_x < 0 or (x_size != want_x and x_size != -1):
        raise ValueError(f"{where}: input has {x_size} values, geometry needs batch * in_channels * "
                         f"prod(in_size) = {g.n} * {g.cin} * prod({_axes3(g.ind)})")
    if want_y < 0 or (out_size != want_y and out_size != -1):
        raise ValueError(f"{where}: output has {out_size} values, geometry needs batch * out_channels * "
                         f"prod(out_size) = {g.n} * {g.cout} * prod({_axes3(g.outd)})")
    if g.cf:
        g.xb = g.cin * pi; g.xc = pi; g.x0 = g.ind[1] * g.ind[2]; g.x1 = g.ind[2]; g.x2 = 1
        g.yb = g.cout * po; g.yc = po; g.y0 = g.outd[1] * g.outd[2]; g.y1 = g.outd[2]; g.y2 = 1
    else:
        g.xb = g.cin * pi; g.xc = 1; g.x2 = g.cin; g.x1 = g.ind[2] * g.cin; g.x0 = g.ind[1] * g.x1
        g.yb = g.cout * po; g.yc = 1; g.y2 = g.cout; g.y1 = g.outd[2] * g.cout; g.y0 = g.outd[1] * g.y1
    return 0


cdef inline int check_kernel_size(Py_ssize_t w_size, Geom* g, Py_ssize_t per_tap, str where) except -1:
    """The kernel holds ``prod(kernel_size) * per_tap`` values."""
    cdef Py_ssize_t want = product(product(product(g.k[0], g.k[1]), g.k[2]), per_tap)
    if want < 0 or w_size != want:
        raise ValueError(f"{where}: kernel has {w_size} values, geometry needs prod(kernel_size) * {per_tap} "
                         f"= prod({_axes3(g.k)}) * {per_tap}")
    return 0


cdef inline int check_bias_size(Py_ssize_t bias_size, bint use_bias, Py_ssize_t channels, str where) except -1:
    """With ``use_bias``, the bias holds one value per output channel."""
    if use_bias and bias_size != channels:
        raise ValueError(f"{where}: bias has {bias_size} values for {channels} output channels")
    return 0


cdef inline Py_ssize_t input_size(Geom* g) noexcept nogil:
    """Values of the input of a loaded geometry (``batch * in_channels * prod(in_size)``)."""
    return g.n * g.cin * g.ind[0] * g.ind[1] * g.ind[2]


cdef inline Py_ssize_t output_size(Geom* g) noexcept nogil:
    """Values of the output of a loaded geometry (``batch * out_channels * prod(out_size)``)."""
    return g.n * g.cout * g.outd[0] * g.outd[1] * g.outd[2]
