"""Dense benchmarks: klayers alone, each workload at one thread and at all threads."""

from __future__ import annotations

import pytest

from klayers.bench import select

DENSE = select(family="dense")


@pytest.mark.parametrize("workload", DENSE, ids=[w.name for w in DENSE])
def test_dense(bench_layer, workload):
    """Time ``Dense(...)(x)`` for one workload."""
    bench_layer(workload)
