"""Recurrent benchmarks (LSTM / GRU / SimpleRNN / Bidirectional): klayers alone, each workload at
one thread and at all threads."""

from __future__ import annotations

import pytest

from klayers.bench import select

RECURRENT = select(family="recurrent")


@pytest.mark.parametrize("workload", RECURRENT, ids=[w.name for w in RECURRENT])
def test_recurrent(bench_layer, workload):
    """Time one recurrent layer over a 100-step sequence."""
    bench_layer(workload)
