# The one GEMM epilogue (bias + activation) of the conv, depthwise, separable, transposed conv,
# dense and locally-connected kernels. relu is written ``0 if v < 0 else v``: NaN stays NaN, as
# tf.nn.relu and np.maximum (fmax would give 0), and the select vectorises. One loop per
# activation so that each one vectorises. Every other code of _act.pxd (tanh, sigmoid, swish,
# gelu ...) runs through the elementwise maps of act_map.h on the block just computed, still in
# cache; the kernels that take them (conv, dense, depthwise and separable: ``check_act``) pick
# the maps' vector variant with ``kl_act_use`` in their ``select_isa``, the others accept linear,
# relu and relu6 only (``check_epilogue_act``).
from cython cimport floating

from _act cimport ACT_LINEAR, ACT_RELU, ACT_RELU6

cdef extern from "act_map.h":
    void kl_act_map_f(int code, const float* x, float* y, Py_ssize_t n) noexcept nogil
    void kl_act_map_d(int code, const double* x, double* y, Py_ssize_t n) noexcept nogil
    void kl_act_use(int level) noexcept nogil


cdef inline void act_map(floating* row, Py_ssize_t n, int act) noexcept nogil:
    """``row[j] = act(row[j])`` for any code, through act_map.h."""
    if floating is float:
        kl_act_map_f(act, row, row, n)
    else:
        kl_act_map_d(act, row, row, n)


cdef inline floating act_value(floating v, int act) noexcept nogil:
    """``act(v)`` for one value (a loop-invariant ``act`` is hoisted by the compiler)."""
    if act == ACT_RELU:
        return 0 if v < 0 else v
    if act == ACT_RELU6:
        v = 0 if v < 0 else v
        return 6 if v > 6 else v
    return v


cdef inline void act_inplace(floating* row, Py_ssize_t n, int act) noexcept nogil:
    """``row[j] = act(row[j])`` (no bias)."""
    cdef Py_ssize_t j
    cdef floating v
    if act == ACT_RELU:
        for j in range(n):
            v = row[j]
            row[j] = 0 if v < 0 else v
    elif act == ACT_RELU6:
        for j in range(n):
            v = row[j]
            v = 0 if v < 0 else v
            row[j] = 6 if v > 6 else v
    elif act != ACT_LINEAR:
        act_map(row, n, act)


cdef inline void bias_act_vec(floating* row, const floating* bias, Py_ssize_t n, int act) noexcept nogil:
    """``row[j] = act(row[j] + bias[j])``."""
    cdef Py_ssize_t j
    cdef floating v
    if act == ACT_RELU:
        for j in range(n):
            v = row[j] + bias[j]
            row[j] = 0 if v < 0 else v
    elif act == ACT_RELU6:
        for j in range(n):
            v = row[j] + bias[j]
            v = 0 if v < 0 else v
            row[j] = 6 if v > 6 else v
    else:
        for j in range(n):
            row[j] = row[j] + bias[j]
        if act != ACT_LINEAR:
            act_map(row, n, act)


cdef inline void bias_act_scalar(floating* row, floating bv, Py_ssize_t n, int act) noexcept nogil:
    """``row[j] = act(row[j] + bv)``."""
    cdef Py_ssize_t j
    cdef floating v
    if act == ACT_RELU:
        for j in range(n):
            v = row[j] + bv
            row[j] = 0 if v < 0 else v
    elif act == ACT_RELU6:
        for j in range(n):
            v = row[j] + bv
            v = 0 if v < 0 else v
            row[j] = 6 if v > 6 else v
    else:
        for j in range(n):
            row[j] = row[j] + bv
        if act != ACT_LINEAR:
            act_map(row, n, act)


cdef inline void epilogue(floating* c, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t ld,
                          const floating* bias, bint bias_per_row, bint use_bias, int act) noexcept nogil:
    """``c[r * ld + j] = act(c + bias)`` on a ``rows x cols`` block; the bias is indexed by column
    (channels last) or by row (channels first); without a bias only the activation runs."""
    cdef Py_ssize_t r
    if not use_bias:
        if act != ACT_LINEAR:
            for r in range(rows):
                act_inplace(c + r * ld, cols, act)
        return
    for r in range(rows):
        if bias_per_row:
            bias_act_scalar(c + r * ld, bias[r], cols, act)
        else:
            bias_act_vec(c + r * ld, bias, cols, act)
