"""Thread control: one setting for OpenMP kernels and BLAS together.

``set_num_threads(n)`` fixes how many threads klayers's OpenMP loops use and limits the
BLAS that scipy's ``cython_blas`` calls (through threadpoolctl) to the same number, so a
process never runs more compute threads than asked. Inside a ``prange`` region that calls
BLAS per chunk, :func:`blas_single_threaded` holds BLAS to one thread (one level of
parallelism at a time, DESIGN principle 3). ``klayers`` re-exports ``set_num_threads``,
``get_num_threads`` and ``num_threads``; the ops reach all of this through
:mod:`klayers.ops.common` (``op_threads``, ``call_pinned``, ``blas_pinned``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator, Optional

import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS our kernels call, for threadpoolctl)
from threadpoolctl import ThreadpoolController

from klayers._ext import info as _info
from klayers.backend import tape

_lock = threading.RLock()
_num_threads: Optional[int] = None
_controller: Optional[ThreadpoolController] = None


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def blas_controller() -> ThreadpoolController:
    """The threadpoolctl controller of the BLAS libraries loaded in this process."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


_DEFAULT_THREADS = _cpu_count()


def get_num_threads() -> int:
    """The number of threads klayers computes with (default: all cores this process may use)."""
    return _num_threads if _num_threads is not None else _DEFAULT_THREADS


def set_num_threads(n: Optional[int]) -> None:
    """Use ``n`` threads for OpenMP kernels and for BLAS (``None``: back to all cores).

    Raises:
        ValueError: ``n`` is not a positive integer or None.
    """
    global _num_threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_num_threads expects a positive integer or None. Received n={n!r}")
    with _lock:
        _num_threads = n
        tape.SETTINGS[0] = get_num_threads()  # recorded model calls ran on their count
        blas_controller().limit(limits=get_num_threads(), user_api="blas")


@contextlib.contextmanager
def num_threads(n: Optional[int]) -> Iterator[None]:
    """Context manager: compute with ``n`` threads inside, restore the previous setting after."""
    with _lock:
        previous = _num_threads
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


_single_lock = threading.Lock()
_single_depth = 0
_blas_libs: Optional[list] = None


def _blas_lib_controllers() -> list:
    global _blas_libs
    if _blas_libs is None:
        _blas_libs = [lc for lc in blas_controller().lib_controllers if lc.user_api == "blas"]
    return _blas_libs


@contextlib.contextmanager
def blas_single_threaded() -> Iterator[None]:
    """Hold BLAS to one thread around an OpenMP region whose chunks each call BLAS.

    Re-entrant and thread-safe: the first caller drops BLAS to one thread, the last one to
    leave restores klayers's thread count. Talks to the BLAS libraries directly (about 1 us),
    not through threadpoolctl's limiter (about 10 us), as batch-1 kernels call it per layer."""
    global _single_depth
    libs = _blas_lib_controllers()
    with _single_lock:
        _single_depth += 1
        if _single_depth == 1:
            for lc in libs:
                lc.set_num_threads(1)
    try:
        yield
    finally:
        with _single_lock:
            _single_depth -= 1
            if _single_depth == 0:
                n = get_num_threads()
                for lc in libs:
                    lc.set_num_threads(n)


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP (a serial build runs every op on one thread)."""
    return bool(_info.openmp_enabled())
