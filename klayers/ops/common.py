"""What every op shares: the float dtypes, the activation codes, the thread rule, BLAS pinning.

* **dtypes**: the compiled kernels compute in :data:`FLOATS` (float32, float64); other dtypes go
  to an op's NumPy reference twin (or are cast, as each op documents).
* **activation codes**: one code space for every kernel, defined once in C
  (``_ext/activation_codes.h``) and read here from the compiled modules. This module holds the
  only mapping from :mod:`klayers.activations` functions to codes (:func:`activation_code`),
  the NumPy formula of each code for the reference twins (:func:`activation_function`) and the
  rule that splits a layer's activation into what a GEMM epilogue fuses and what runs after it
  (:func:`split_activation`; ``klayers.ops.activation.apply_activation`` runs the rest, softmax
  through its kernel).
* **threads**: :func:`op_threads` says how many threads an op uses; :func:`blas_pinned` holds
  BLAS to one thread around an OpenMP region whose tasks call BLAS (one level of parallelism at
  a time, DESIGN principle 3). Both build on :mod:`klayers.ops.threads`.
* **the tape**: ops call kernels through :func:`klayers.backend.tape.run` (or the helpers here
  that do: :func:`run_prepared`, :func:`call_pinned`, :func:`contiguous`), so that a model's
  recorded call replays every kernel call and every copy its ops made.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Dict, Optional, Tuple, Union

import numpy as np

from klayers import activations
from klayers._ext import info as _info
from klayers.backend import tape
from klayers.ops.threads import blas_single_threaded, get_num_threads, num_threads, set_num_threads

__all__ = [
    "ACT_ELU", "ACT_EXPONENTIAL", "ACT_GELU", "ACT_GELU_TANH", "ACT_HARD_SIGMOID", "ACT_HARD_SIGMOID_K3",
    "ACT_HARD_SWISH", "ACT_LINEAR", "ACT_MISH", "ACT_RELU", "ACT_RELU6", "ACT_SELU", "ACT_SIGMOID",
    "ACT_SOFTPLUS", "ACT_SOFTSIGN", "ACT_SWISH", "ACT_TANH", "ACTIVATION_CODES", "Activation",
    "ALL_CODES", "EPILOGUE_CODES", "FLOATS", "GATE_CODES", "activation_code", "gate_code",
    "activation_function", "blas_pinned", "blas_single_threaded", "call_pinned", "contiguous", "copy_into", "float_dtype", "get_num_threads",
    "num_threads", "op_threads", "run_prepared", "set_num_threads", "split_activation",
]

# ---------------------------------------------------------------------------------------------
# dtypes

#: The dtypes the compiled kernels compute in.
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a kernel computes in for weights of ``dtype``: itself when it is float32 or
    float64, else float32 (the dtype the kernels fall back to, as Keras's floatx)."""
    return dtype if dtype in FLOATS else FLOATS[0]


# ---------------------------------------------------------------------------------------------
# activation codes

#: name -> code, the compiled kernels' one definition (``_ext/activation_codes.h``).
ACTIVATION_CODES: Dict[str, int] = dict(_info.ACTIVATIONS)
ACT_LINEAR = ACTIVATION_CODES["linear"]
ACT_RELU = ACTIVATION_CODES["relu"]
ACT_RELU6 = ACTIVATION_CODES["relu6"]
ACT_TANH = ACTIVATION_CODES["tanh"]
ACT_SIGMOID = ACTIVATION_CODES["sigmoid"]
ACT_HARD_SIGMOID = ACTIVATION_CODES["hard_sigmoid"]  # Keras 2: clip(0.2 x + 0.5, 0, 1)
ACT_HARD_SIGMOID_K3 = ACTIVATION_CODES["hard_sigmoid_k3"]  # Keras 3: relu6(x + 3) / 6
ACT_SWISH = ACTIVATION_CODES["swish"]
ACT_HARD_SWISH = ACTIVATION_CODES["hard_swish"]
ACT_GELU = ACTIVATION_CODES["gelu"]
ACT_GELU_TANH = ACTIVATION_CODES["gelu_tanh"]
ACT_ELU = ACTIVATION_CODES["elu"]
ACT_SELU = ACTIVATION_CODES["selu"]
ACT_SOFTPLUS = ACTIVATION_CODES["softplus"]
ACT_SOFTSIGN = ACTIVATION_CODES["softsign"]
ACT_EXPONENTIAL = ACTIVATION_CODES["exponential"]
ACT_MISH = ACTIVATION_CODES["mish"]
#: The codes a GEMM epilogue fuses (conv, depthwise, separable, transposed, dense, local kernels).
EPILOGUE_CODES = frozenset({ACT_LINEAR, ACT_RELU, ACT_RELU6})
#: The codes the recurrent kernels take as gate activations.
GATE_CODES = frozenset({ACT_LINEAR, ACT_RELU, ACT_RELU6, ACT_TANH, ACT_SIGMOID, ACT_HARD_SIGMOID,
                        ACT_HARD_SIGMOID_K3})
# the elementwise kernel (klayers.ops.activation) takes every code

#: An activation as an op takes it: a code, or a function (of klayers.activations or any callable).
Activation = Union[int, Callable[[np.ndarray], np.ndarray]]

_k3 = activations.keras3
# id(function) -> code; Keras 2 and Keras 3 functions that compute the same maths share a code
# (Keras 3's linear, tanh, sigmoid and relu6 are the Keras 2 objects themselves).
_CODE_OF: Dict[int, int] = {
    id(fn): code for fn, code in [
        (activations.linear, ACT_LINEAR), (_k3.linear, ACT_LINEAR),
        (activations.relu, ACT_RELU), (_k3.relu, ACT_RELU),
        (activations.relu6, ACT_RELU6), (_k3.relu6, ACT_RELU6),
        (activations.tanh, ACT_TANH), (_k3.tanh, ACT_TANH),
        (activations.sigmoid, ACT_SIGMOID), (_k3.sigmoid, ACT_SIGMOID),
        (activations.hard_sigmoid, ACT_HARD_SIGMOID), (_k3.hard_sigmoid, ACT_HARD_SIGMOID_K3),
        # called with x alone: silu's beta is 1, gelu's approximate False, elu's alpha 1
        (activations.swish, ACT_SWISH), (activations.silu, ACT_SWISH), (_k3.silu, ACT_SWISH),
        (activations.hard_silu, ACT_HARD_SWISH), (activations.gelu, ACT_GELU),
        (activations.elu, ACT_ELU), (activations.selu, ACT_SELU), (activations.softplus, ACT_SOFTPLUS),
        (activations.softsign, ACT_SOFTSIGN), (activations.exponential, ACT_EXPONENTIAL),
        (activations.mish, ACT_MISH),
    ]
}

#: The NumPy formula of each code (the reference twins'; the kernels compute the same).
_FUNCTION_OF: Dict[int, Callable[[np.ndarray], np.ndarray]] = {
    ACT_LINEAR: lambda x: x,
    ACT_RELU: lambda x: np.maximum(x, 0),  # NaN stays NaN, as the kernels' epilogue
    ACT_RELU6: lambda x: np.clip(x, 0, 6),
    ACT_TANH: np.tanh,
    ACT_SIGMOID: lambda x: 1.0 / (1.0 + np.exp(-x)),
    ACT_HARD_SIGMOID: lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    ACT_HARD_SIGMOID_K3: lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    ACT_SWISH: activations.swish,
    ACT_HARD_SWISH: activations.hard_silu,
    ACT_GELU: activations.gelu,
    ACT_GELU_TANH: lambda x: activations.gelu(x, approximate=True),
    ACT_ELU: activations.elu,
    ACT_SELU: activations.selu,
    ACT_SOFTPLUS: activations.softplus,
    ACT_SOFTSIGN: activations.softsign,
    ACT_EXPONENTIAL: activations.exponential,
    ACT_MISH: activations.mish,
}


def activation_code(fn: Callable) -> int:
    """The kernels' code for a :mod:`klayers.activations` function (either dialect), or -1 when no
    kernel computes it (any other callable: the caller applies it)."""
    return _CODE_OF.get(id(fn), -1)


def gate_code(fn: Activation) -> int:
    """The recurrent kernels' code for a gate activation (a function or a code), or -1 when they
    do not compute it (:data:`GATE_CODES`; the caller then runs the NumPy reference)."""
    code = activation_code(fn) if callable(fn) else int(fn)
    return code if code in GATE_CODES else -1


def activation_function(act: Activation) -> Callable[[np.ndarray], np.ndarray]:
    """The NumPy formula of code ``act`` (a callable is returned as it is).

    Raises:
        ValueError: ``act`` is not a code of :data:`ACTIVATION_CODES`.
    """
    if callable(act):
        return act
    try:
        return _FUNCTION_OF[int(act)]
    except KeyError:
        raise ValueError(f"Unknown activation code {act!r}; expected one of {ACTIVATION_CODES}") from None


def split_activation(act: Activation, fuse: frozenset = EPILOGUE_CODES) -> Tuple[int, Optional[Activation]]:
    """``(epilogue code, rest)`` for an op's ``act`` argument: what a GEMM epilogue fuses, and the
    function to apply after the kernel (None when the epilogue does everything).

    ``act`` is a code or a function: the codes in ``fuse`` (codes or functions of either
    dialect that have them) fuse: by default linear, relu and relu6, which every epilogue
    computes; the conv and dense kernels take :data:`ALL_CODES`. Any other code or function
    runs after a linear epilogue (through ``klayers.ops.activation.apply_activation``: the
    elementwise kernel for codes and the functions that have one, softmax through its kernel).

    Raises:
        ValueError: an int that is not a code.
    """
    fused = (_FUSED if fuse is EPILOGUE_CODES else _FUSED_ALL if fuse is ALL_CODES else {}).get(id(act))
    if fused is not None:  # the functions that fuse (alive for good: no other object has their id)
        return fused
    if callable(act):
        code = activation_code(act)
        return (code, None) if code in fuse else (ACT_LINEAR, act)
    if isinstance(act, bool) or int(act) not in _FUNCTION_OF:
        raise ValueError(f"Unknown activation code {act!r}; expected a function or one of {ACTIVATION_CODES}")
    return (int(act), None) if int(act) in fuse else (ACT_LINEAR, int(act))


_FUSED: Dict[int, Tuple[int, None]] = {key: (code, None) for key, code in _CODE_OF.items() if code in EPILOGUE_CODES}
# the epilogue codes themselves: CPython's small ints are single objects, so a code passed as a
# plain int takes this fast path too (any other int-like value takes the checked path below)
_FUSED.update({id(code): (code, None) for code in EPILOGUE_CODES})
#: Every code: what the conv and dense kernels' epilogues compute (the elementwise maps on the
#: block just computed, for the codes past relu6).
ALL_CODES = frozenset(_FUNCTION_OF)
_FUSED_ALL: Dict[int, Tuple[int, None]] = {key: (code, None) for key, code in _CODE_OF.items()}
_FUSED_ALL.update({id(code): (code, None) for code in ALL_CODES})


# ---------------------------------------------------------------------------------------------
# threads


def op_threads(n_threads: Optional[int] = None, work: int = 0, serial_below: int = 0) -> int:
    """How many threads an op uses: ``n_threads`` when given (tests and callers that split work
    themselves), else ``klayers.get_num_threads()``, except that ``work`` below ``serial_below``
    (the op's break-even, measured in the op's own unit of work) runs on one thread: waking a
    sleeping OpenMP team costs about 10 us, more on a loaded machine.

    Raises:
        ValueError: ``n_threads`` is given and below 1.
    """
    if n_threads:
        if n_threads < 1:
            raise ValueError(f"n_threads must be a positive integer or None. Received n_threads={n_threads!r}")
        return int(n_threads)
    if work < serial_below:
        return 1
    return get_num_threads()


_NOTHING = contextlib.nullcontext()


def blas_pinned(threads: int) -> ContextManager:
    """Context for a kernel call on ``threads`` OpenMP threads whose tasks call BLAS: BLAS held to
    one thread while it runs when ``threads > 1`` (one level of parallelism at a time), nothing
    otherwise. ``with blas_pinned(threads): kernel(..., threads)``; :func:`call_pinned` is the
    same for one call, without the context manager's cost on the serial path."""
    return blas_single_threaded() if threads > 1 else _NOTHING


def run_prepared(kernel: Callable, x: np.ndarray, out: np.ndarray, dtype: Any) -> None:
    """``kernel(x, out)`` of a prepared kernel (which checks its arrays before it runs), ``x``
    copied to a C-contiguous array of ``dtype`` only when the kernel refuses it as it is
    (the call and the copy recorded on the tape)."""
    try:
        tape.run(kernel, x, out)
    except ValueError:
        tape.run(kernel, contiguous(x, dtype), out)


def copy_into(dst: np.ndarray, src: Any) -> None:
    """``dst[...] = src`` (broadcast, cast as ``np.asarray(src, dst.dtype)`` would): a copy an
    op records on the tape (``tape.run(copy_into, dst, src)``)."""
    np.copyto(dst, src, casting="unsafe")


def contiguous(x: Any, dtype: Any = None) -> np.ndarray:
    """``np.ascontiguousarray(x, dtype)``; a copy it makes is recorded on the tape (replayed,
    it copies the then current values of ``x``)."""
    c = np.ascontiguousarray(x, dtype=dtype)
    if c is not x and tape.recording() is not None:
        if isinstance(x, np.ndarray) and not np.may_share_memory(c, x):
            tape.note(copy_into, c, x)
        elif not isinstance(x, np.ndarray):
            tape.spoil()  # made from a Python object: nothing to copy from on a replay
    return c


def call_pinned(threads: int, kernel: Callable, *args: Any) -> Any:
    """``kernel(*args)``, with BLAS held to one thread while it runs when ``threads > 1``
    (recorded on the tape)."""
    if threads > 1:
        with blas_single_threaded():
            out = kernel(*args)
    else:
        out = kernel(*args)
    tape.note(call_pinned, threads, kernel, *args)
    return out
