"""The kernel-twin checker: a compiled op of ``klayers.ops`` against its NumPy reference twin.

Every compiled op ``X`` in ``klayers.ops`` has a readable NumPy twin ``X_reference`` with the
same signature (DESIGN.md, principle 2). :func:`check_kernel_twin` asserts that signature, then
runs the op and its twin on the same case in float32 and float64, at 1 and ``N_THREADS``
threads, and compares them with a tolerance fit for the dtype. The ``kernel_twin`` fixture of
``tests/conftest.py`` runs one (dtype, threads) pair per test id instead, so that a failure
names the pair.

Example::

    def make_case(dtype):
        rng = np.random.default_rng(0)
        return (rng.standard_normal((3, 8)).astype(dtype),), {"axis": -1}

    check_kernel_twin(klayers.ops.softmax.softmax, make_case)
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

import klayers

#: "N" of "1 and N threads": every core this process may run on, at least 2.
N_THREADS = max(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2))

#: The (dtype, threads) pairs every op runs in.
TWIN_RUNS: Tuple[Tuple[str, int], ...] = tuple(
    (dtype, threads) for dtype in ("float32", "float64") for threads in (1, N_THREADS)
)

#: Default relative tolerance per dtype; the absolute one is this times the largest magnitude
#: of the reference's finite values (at least 1), so that rounding is judged relative to scale.
TOLERANCES: Dict[str, float] = {"float32": 1e-5, "float64": 1e-12}


#: ``make_case(dtype) -> (args, kwargs)``: one call of the op and its twin, arrays in ``dtype``.
CaseBuilder = Callable[[np.dtype], Tuple[Sequence[Any], Mapping[str, Any]]]


def op_name(op: Callable) -> str:
    """``"module.name"`` of an op (``klayers.ops.softmax.softmax``)."""
    return f"{op.__module__}.{op.__qualname__}"


def twin_of(op: Callable) -> Callable:
    """The NumPy twin ``<name>_reference`` that sits beside ``op`` in its module.

    Raises:
        AssertionError: the module has no such function.
    """
    module = sys.modules[op.__module__]
    twin = getattr(module, f"{op.__name__}_reference", None)
    assert callable(twin), f"{op_name(op)} has no NumPy twin {op.__name__}_reference in {op.__module__}"
    return twin


def assert_same_signature(op: Callable, twin: Callable) -> None:
    """The op and its twin take the same parameters, defaults and annotations."""
    got, want = inspect.signature(twin), inspect.signature(op)
    assert got == want, f"{op_name(twin)}{got} differs from its op {op_name(op)}{want}"


def _snapshot(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return [_snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    return value


def _assert_unchanged(before: Any, after: Any, what: str) -> None:
    if isinstance(before, np.ndarray):
        np.testing.assert_array_equal(after, before, err_msg=f"{what} was overwritten by the op")
    elif isinstance(before, list):
        for i, (b, a) in enumerate(zip(before, after)):
            _assert_unchanged(b, a, f"{what}[{i}]")
    elif isinstance(before, dict):
        for k in before:
            _assert_unchanged(before[k], after[k], f"{what}[{k!r}]")


def _flatten(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _flatten(v)]
    return [value]


def assert_twin_outputs_close(got: Any, want: Any, dtype: str, tol: Optional[float] = None, exact: bool = False,
                              where: str = "") -> None:
    """``got`` (the op's result: an array, None, or nested lists / tuples of them) equals
    ``want`` (the twin's) in structure, shapes and dtypes, and in value within ``tol`` relative
    to the scale of ``want`` (``exact``: bit for bit); NaN and infinities must sit at the same
    places. A floating output must be of ``dtype``."""
    assert type(got) is type(want) or not isinstance(want, (list, tuple)), (
        f"{where}: the op returned a {type(got).__name__}, its twin a {type(want).__name__}")
    got_l, want_l = _flatten(got), _flatten(want)
    assert len(got_l) == len(want_l), f"{where}: {len(got_l)} outputs, the twin gives {len(want_l)}"
    rtol = TOLERANCES[dtype] if tol is None else tol
    for i, (g, w) in enumerate(zip(got_l, want_l)):
        what = f"{where} output {i}"
        if w is None:
            assert g is None, f"{what}: the op returned a value where its twin returns None"
            continue
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"{what}: shape {g.shape}, the twin's {w.shape}"
        assert g.dtype == w.dtype, f"{what}: dtype {g.dtype}, the twin's {w.dtype}"
        if w.dtype.kind == "f":
            assert w.dtype == np.dtype(dtype), f"{what}: a {dtype} case gave {w.dtype}"
        if exact:
            np.testing.assert_array_equal(g, w, err_msg=what)
            continue
        finite = np.abs(w[np.isfinite(w)]) if w.dtype.kind in "fc" else np.abs(w)
        scale = max(1.0, float(finite.max(initial=0.0)))
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * scale, equal_nan=True, err_msg=what)


def check_kernel_twin(op: Callable, make_case: CaseBuilder, *, twin: Optional[Callable] = None,
                      runs: Iterable[Tuple[str, int]] = TWIN_RUNS, tol: Optional[Mapping[str, float]] = None,
                      exact: bool = False) -> Any:
    """Assert that ``op`` and its NumPy twin agree: the same signature, and in each of ``runs``
    (default: float32 and float64 at 1 and :data:`N_THREADS` threads) the same results.

    Args:
        op: a compiled op of ``klayers.ops`` (``klayers.ops.softmax.softmax``).
        make_case: ``make_case(np.dtype) -> (args, kwargs)``: the call to make, with its arrays
            in that dtype. It is called once per run (both functions get the same objects).
        twin: the reference; default ``<op name>_reference`` from the op's module.
        runs: ``(dtype name, threads)`` pairs. The op runs inside ``klayers.num_threads(threads)``
            and, when it takes ``n_threads`` and the case does not set it, with ``n_threads=threads``
            (so small cases take the threaded path of ops that honour an explicit count).
        tol: relative tolerance per dtype name (default :data:`TOLERANCES`); the absolute
            tolerance is ``tol`` times the reference's largest finite magnitude (at least 1).
        exact: compare bit for bit (max pooling, copies).

    Also checked: the op leaves its input arrays unchanged, returns the twin's structure
    (None where the twin gives None), shapes and dtypes, and floating outputs of the case's
    dtype.

    Returns:
        The op's result in the last run (for further checks of the caller).
    """
    twin = twin_of(op) if twin is None else twin
    assert_same_signature(op, twin)
    takes_threads = "n_threads" in inspect.signature(op).parameters
    ran, got = 0, None
    for dtype, threads in runs:
        args, kwargs = make_case(np.dtype(dtype))
        args, kwargs = tuple(args), dict(kwargs)
        before = _snapshot([list(args), kwargs])
        op_kwargs = dict(kwargs)
        if takes_threads and "n_threads" not in kwargs:
            op_kwargs["n_threads"] = threads
        with klayers.num_threads(threads):
            got = op(*args, **op_kwargs)
        _assert_unchanged(before, [list(args), kwargs], f"{op_name(op)}: an input")
        want = twin(*args, **kwargs)
        tolerance = None if tol is None else tol[dtype]
        assert_twin_outputs_close(got, want, dtype, tolerance, exact, where=f"{op_name(op)} [{dtype}, {threads} threads]")
        ran += 1
    assert ran, "check_kernel_twin was given no runs"
    return got
