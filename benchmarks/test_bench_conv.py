"""Convolution benchmarks: klayers alone, each workload at one thread and at all threads."""

from __future__ import annotations

import pytest

from klayers.bench import select

CONV = select(family="conv")


@pytest.mark.parametrize("workload", CONV, ids=[w.name for w in CONV])
def test_conv(bench_layer, workload):
    """Time the layer for one workload."""
    bench_layer(workload)
