# Recurrent gate activations shared by recurrent.pyx and convlstm.pyx, on the one activation-code
# space (_act.pxd): linear, relu and relu6 are the epilogue's loops (_epilogue.pxd); float32
# sigmoid / tanh run on GCC vector extensions (rnn_act.h, one variant per rung of the
# CPU-feature ladder, chosen by ``select_gate_isa``); float64 uses libm.
from cython cimport floating
from libc.math cimport exp, tanh

from _act cimport (ACT_HARD_SIGMOID, ACT_HARD_SIGMOID_K3, ACT_LINEAR, ACT_RELU, ACT_RELU6, ACT_SIGMOID,
                   ACT_TANH)
from _cpu cimport kl_cpu_level, kl_isa_name
from _epilogue cimport act_inplace as _epilogue_act

cdef extern from "rnn_act.h":
    void kl_sigmoid_f(float* p, Py_ssize_t n) noexcept nogil
    void kl_tanh_f(float* p, Py_ssize_t n) noexcept nogil
    void kl_gate_use(int level) noexcept nogil


cdef inline str select_gate_isa(int max_level):
    """Use the float32 gate maps of the widest ladder rung <= ``max_level`` this CPU has."""
    cdef int level = kl_cpu_level(max_level)
    kl_gate_use(level)
    return kl_isa_name(level).decode()


cdef inline void act_inplace(floating* p, Py_ssize_t n, int code) noexcept nogil:
    """Apply activation ``code`` to ``p[0:n]`` in place, one simple loop per activation."""
    cdef Py_ssize_t j
    cdef floating v
    if n <= 0 or code == ACT_LINEAR:
        return
    if code == ACT_TANH:
        if floating is float:
            kl_tanh_f(p, n)
        else:
            for j in range(n):
                p[j] = tanh(p[j])
    elif code == ACT_SIGMOID:
        if floating is float:
            kl_sigmoid_f(p, n)
        else:
            for j in range(n):
                p[j] = 1.0 / (1.0 + exp(-p[j]))
    elif code == ACT_HARD_SIGMOID:
        # clip as selects, which vectorise (libm calls do not); written so that NaN stays NaN,
        # as tf.clip_by_value and the NumPy twin keep it
        for j in range(n):
            v = <floating>0.2 * p[j] + <floating>0.5
            v = 0 if v < 0 else v
            p[j] = 1 if v > 1 else v
    elif code == ACT_HARD_SIGMOID_K3:
        for j in range(n):
            v = p[j] + 3
            v = 0 if v < 0 else v
            p[j] = (6 if v > 6 else v) / 6
    elif code == ACT_RELU or code == ACT_RELU6:
        _epilogue_act(p, n, code)
