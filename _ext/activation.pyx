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

from _epilogue cimport act_inplace

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


#: the binary operations of ``binary_forward``
BINARY_OPS = {"add": 0, "multiply": 1, "subtract": 2, "maximum": 3, "minimum": 4}


cdef inline void _binary_row(const floating* a, const floating* b, floating* y, Py_ssize_t n, int op) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating u, v
    if op == 0:
        for j in range(n):
            y[j] = a[j] + b[j]
    elif op == 1:
        for j in range(n):
            y[j] = a[j] * b[j]
    elif op == 2:
        for j in range(n):
            y[j] = a[j] - b[j]
    elif op == 3:
        # NaN in either operand gives NaN, as np.maximum
        for j in range(n):
            u = a[j]
            v = b[j]
            y[j] = u if (u >= v or u != u) else v
    else:
        for j in range(n):
            u = a[j]
            v = b[j]
            y[j] = u if (u <= v or u != u) else v


def binary_forward(const floating[::1] a, const floating[::1] b, floating[::1] out, Py_ssize_t rows,
                   Py_ssize_t reps, Py_ssize_t width, bint broadcast, int op, int act, int n_threads):
    """``out = act(a <op> b)``: ``a`` and ``out`` hold ``rows x reps x width`` values; ``b`` the
    same (``broadcast`` 0) or ``rows x width`` repeated over ``reps`` (``broadcast`` 1: the
    squeeze-and-excitation product ``x[n, pixels, c] * s[n, c]``). ``op`` a code of
    ``BINARY_OPS``; ``act`` an activation code applied to the result (0: none). ``out`` may be
    ``a``. Tasks: the ``rows x reps`` rows of ``width`` values, in blocks, over ``n_threads``."""
    check_act(act, "binary_forward")
    if op < 0 or op > 4:
        raise ValueError(f"binary_forward: unknown operation {op} (expected one of {BINARY_OPS})")
    if rows < 0 or reps < 0 or width < 0:
        raise ValueError(f"binary_forward: negative sizes {rows}, {reps}, {width}")
    cdef Py_ssize_t n = rows * reps * width
    if (width and reps and rows and (n // width // reps != rows)) or a.shape[0] != n or out.shape[0] != n:
        raise ValueError(f"binary_forward: a and out must hold {rows} x {reps} x {width} values, "
                         f"got {a.shape[0]} and {out.shape[0]}")
    if b.shape[0] != (rows * width if broadcast else n):
        raise ValueError(f"binary_forward: b holds {b.shape[0]} values, expected "
                         f"{rows * width if broadcast else n}")
    if n_threads < 1:
        raise ValueError(f"binary_forward: n_threads must be >= 1, got {n_threads}")
    if n == 0:
        return
    cdef Py_ssize_t total = rows * reps
    # rows of ``width`` values per task: about BLOCK values
    cdef Py_ssize_t per = max(1, _BLOCK // width)
    cdef Py_ssize_t tasks = (total + per - 1) // per, t, r, r1, row
    cdef const floating* ap = &a[0]
    cdef const floating* bp = &b[0]
    cdef floating* yp = &out[0]
    cdef int nt = <int>max(1, min(<Py_ssize_t>n_threads, tasks))
    with nogil:
        for t in prange(tasks, num_threads=nt, schedule="static"):
            r1 = min(total, (t + 1) * per)
            for row in range(t * per, r1):
                r = row // reps if broadcast else row
                _binary_row(ap + row * width, bp + r * width, yp + row * width, width, op)
                if act != 0:
                    act_inplace(yp + row * width, width, act)
