"""Pooling benchmarks: klayers alone, each workload at one thread and at all threads."""

from __future__ import annotations

import pytest

from klayers.bench import select

POOLING = select(family="pooling")


@pytest.mark.parametrize("workload", POOLING, ids=[w.name for w in POOLING])
def test_pooling(bench_layer, workload):
    """Time one pooling layer on one input."""
    bench_layer(workload)
