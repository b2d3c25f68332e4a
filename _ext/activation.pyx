# cython: language_level=3
"""Elementwise activations: ``out[i] = act(x[i])`` for every code of the one activation-code
space (``activation_codes.h``: relu, relu6, tanh, sigmoid, both hard sigmoids, swish, hard
swish, both GELUs, elu, selu, softplus, softsign, exponential, mish).

Level 2 of the kernel pattern (see DESIGN.md): a const IN view, a caller-allocated OUT view of
the same length (it may be the same array: the map runs in place), checked here before the GIL
is released; ``n_threads`` splits the array into blocks of ``BLOCK`` values over OpenMP
threads. float32 runs on 8-lane vectors (``act_map.h`` over ``rnn_act.h``'s Cephes exp and
tanh, compiled for every rung of the CPU-feature ladder and picked at import); the erf GELU,
softplus and mish call libm per value, as float64 does for every code. Special values follow
``klayers.activations`` (the NumPy formulas, which follow Keras). Results do not depend on the
thread count: every value is computed by the same code wherever its block runs.
"""
from cython cimport floating
from cython.parallel cimport prange

from _act cimport activation_codes, check_act
from _cpu cimport kl_cpu_level, kl_isa_name

cdef extern from "act_map.h":
    void kl_act_map_f(int code, const float* x, float* y, Py_ssize_t n) noexcept nogil
    void kl_act_map_d(int code, const double* x, double* y, Py_ssize_t n) noexcept nogil
    void kl_act_use(int level) noexcept nogil

ACTIVATIONS = activation_codes()

cdef enum:
    _BLOCK = 4096

#: values per task (16 KiB of float32: in L1 while it is mapped)
BLOCK = _BLOCK


def select_isa(int max_level=2):
    """Use the float32 maps of the widest rung of the CPU-feature ladder (``cpu_features.h``: 0
    baseline, 1 AVX2 + FMA, 2 AVX-512) that is at most ``max_level`` and that this CPU has;
    returns its name. Import selects the widest; tests force lower levels."""
    cdef int level = kl_cpu_level(max_level)
    kl_act_use(level)
    return kl_isa_name(level).decode()


#: the instruction set chosen at import (the same in every kernel module)
ISA = select_isa()


cdef inline void _map(int act, const floating* x, floating* y, Py_ssize_t n) noexcept nogil:
    if floating is float:
        kl_act_map_f(act, x, y, n)
    else:
        kl_act_map_d(act, x, y, n)


def activation_forward(const floating[::1] x, floating[::1] out, int act, int n_threads):
    """``out[i] = act(x[i])`` for activation code ``act`` (``ACTIVATIONS``); ``out`` has ``x``'s
    length and may be ``x`` itself. ``n_threads`` > 1 splits the blocks over threads (the
    caller keeps small arrays on one thread)."""
    check_act(act, "activation_forward")
    cdef Py_ssize_t n = x.shape[0], nb, b, lo
    if out.shape[0] != n:
        raise ValueError(f"activation_forward: out has {out.shape[0]} values, x has {n}")
    if n_threads < 1:
        raise ValueError(f"activation_forward: n_threads must be >= 1, got {n_threads}")
    if n == 0:
        return
    cdef const floating* xp = &x[0]
    cdef floating* yp = &out[0]
    nb = (n + _BLOCK - 1) // _BLOCK
    cdef int nt = <int>max(1, min(<Py_ssize_t>n_threads, nb))
    with nogil:
        if nt == 1:
            _map(act, xp, yp, n)
        else:
            for b in prange(nb, num_threads=nt, schedule="static"):
                lo = b * _BLOCK
                _map(act, xp + lo, yp + lo, min(<Py_ssize_t>_BLOCK, n - lo))
