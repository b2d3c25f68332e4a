"""Core-family benchmarks (Dense, BatchNormalization, LayerNormalization, Embedding, Softmax,
Concatenate, Add; see ``workloads_core.py``): klayers alone, each workload at one thread and at
all threads."""

from __future__ import annotations

import pytest

from klayers.bench import select

CORE = select(family="core")


@pytest.mark.parametrize("workload", CORE, ids=[w.name for w in CORE])
def test_core(bench_layer, workload):
    """Time ``layer(x)`` for one workload."""
    bench_layer(workload)
