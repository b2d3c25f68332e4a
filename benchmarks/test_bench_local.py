"""LocallyConnected1D/2D benchmarks: klayers alone, each workload at one thread and at all threads."""

from __future__ import annotations

import pytest

from klayers.bench import select

LOCAL = select(family="local")


@pytest.mark.parametrize("workload", LOCAL, ids=[w.name for w in LOCAL])
def test_local(bench_layer, workload):
    """Time ``LocallyConnected*(...)(x)`` for one workload."""
    bench_layer(workload)
