"""Fixtures shared by every floor of the test tree (the helpers they wrap: tests/helpers/).

``kernel_twin``: the kernel-twin checker bound to one (dtype, threads) pair; a test that takes
it runs once per pair of :data:`tests.helpers.TWIN_RUNS` (float32 and float64, 1 and N threads),
with ids such as ``float32-1thread`` and ``float64-Nthreads``. Call it as
``kernel_twin(op, make_case, **options)`` (options: :func:`tests.helpers.check_kernel_twin`).

``run_layer_test`` needs no fixture: import it from :mod:`tests.helpers`.

Every test runs with the inference arena lending buffers of any size (``arena.MIN_BYTES = 0``):
the small models of the tests then reuse buffers from step to step and call to call as big
ones do.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from klayers.backend import arena
from tests.helpers import TWIN_RUNS, check_kernel_twin


@pytest.fixture(autouse=True)
def _arena_lends_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arena, "MIN_BYTES", 0)


def _run_id(run: tuple) -> str:
    # "N", not the count: a test id must not depend on the machine's cores
    dtype, threads = run
    return f"{dtype}-{'1thread' if threads == 1 else 'Nthreads'}"


@pytest.fixture(params=TWIN_RUNS, ids=[_run_id(r) for r in TWIN_RUNS])
def kernel_twin(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``check(op, make_case, **options)`` for this test id's (dtype, threads) pair, returning
    the op's result; the pair is also on the function as ``check.dtype`` (a ``np.dtype``) and
    ``check.threads``."""
    dtype, threads = request.param

    def check(op: Callable, make_case: Callable[[np.dtype], Any], **options: Any) -> Any:
        return check_kernel_twin(op, make_case, runs=[(dtype, threads)], **options)

    check.dtype = np.dtype(dtype)
    check.threads = threads
    return check
