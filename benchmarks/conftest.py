"""pytest-benchmark plumbing shared by every ``test_bench_<family>.py``.

The suites time klayers alone (no TensorFlow needed); ``compare_keras.py`` puts it next to
tf-keras and ONNX Runtime. Each test runs one registered workload (see ``workloads.py``) at
one thread and at all threads. With the project's default ``--benchmark-disable`` each test
only runs its layer once (a smoke test); ``--benchmark-enable`` times it, and the summary at
the end gives each median as GFLOP/s or GB/s. Speed is reported, never asserted.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import pytest

from klayers.bench.engines import build_klayers_layer, first_input, klayers_missing_reason
from klayers.bench.workloads import Workload

#: (workload, threads label, median seconds) of every timed test, for the summary.
_RESULTS: List[Tuple[Workload, str, float]] = []


def _threads_label(threads: Optional[int]) -> str:
    return "all" if threads is None else str(threads)


@pytest.fixture(params=[1, None], ids=["t1", "tall"])
def threads(request: pytest.FixtureRequest) -> Optional[int]:
    """Thread count for klayers: 1, or None for all cores (``klayers.num_threads(None)``)."""
    return request.param


@pytest.fixture
def bench_layer(benchmark: Any, threads: Optional[int]) -> Callable[[Workload], np.ndarray]:
    """``bench_layer(workload)``: build the workload's klayers layer and benchmark ``layer(x)``.

    Skips when klayers does not have the layer yet. The layer is built from the workload's
    Keras config with ``klayers.layers.deserialize``, called once, given seeded weights, then
    timed under ``klayers.num_threads(threads)``; a workload with several inputs calls the
    layer on the list of arrays. Returns the output of the timed call after
    checking its batch size, dtype and finiteness.
    """

    def run(workload: Workload) -> np.ndarray:
        reason = klayers_missing_reason(workload.class_name)
        if reason is not None:
            pytest.skip(reason)
        import klayers

        x = workload.make_input()
        with klayers.num_threads(threads):
            layer, _ = build_klayers_layer(workload, x)
            benchmark.group = workload.name
            benchmark.name = f"{workload.name}[t{_threads_label(threads)}]"
            benchmark.extra_info.update(
                workload=workload.name, threads=_threads_label(threads),
                flops=workload.flops, bytes_moved=workload.bytes_moved, bound=workload.bound,
            )
            out = np.asarray(benchmark(layer, x))
        if benchmark.stats is not None:
            _RESULTS.append((workload, _threads_label(threads), benchmark.stats.stats.median))
        assert out.shape[0] == first_input(x).shape[0]
        assert out.dtype == np.dtype(workload.dtype)
        assert np.isfinite(out).all()
        return out

    return run


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """After a timed run, print each workload's median as a rate (GFLOP/s or GB/s)."""
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("klayers rates (median of each benchmark)")
    width = max(len(w.name) for w, _, _ in _RESULTS)
    for workload, label, median in _RESULTS:
        value, unit = workload.rate(median)
        tr.write_line(f"{workload.name:<{width}}  threads={label:<3}  "
                      f"{median * 1e6:10.1f} us  {value:8.2f} {unit}")
