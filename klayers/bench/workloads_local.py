"""Locally-connected workloads (LocallyConnected1D / 2D, tf-keras only): the issue's shapes at
batch 1 (a matrix-vector product per output position: streams the unshared weights, memory-bound)
and batch 32 (a small GEMM per position), for each of tf-keras's implementation modes 1, 2, 3.

klayers runs the same kernel for every mode (the weights are converted to mode 1's layout
once); tf-keras's modes differ a lot (2 multiplies a dense masked kernel, 3 a sparse one), so the
rows show which mode a Keras user would have to pick. FLOPs and bytes count the useful work of
mode 1 (``2 * batch * positions * window * cin * filters``; input, unshared kernel, bias,
output once each), whatever the mode.
"""

from __future__ import annotations

from typing import Iterator, Sequence, Tuple

import numpy as np

from klayers.bench.workloads import Workload, register

#: (class name, spatial input shape, cin, filters, kernel size)
LOCAL_SHAPES: Sequence[Tuple[str, Tuple[int, ...], int, int, int]] = [
    ("LocallyConnected1D", (100,), 64, 64, 3),
    ("LocallyConnected2D", (16, 16), 32, 32, 3),
]
LOCAL_BATCHES: Sequence[int] = [1, 32]
LOCAL_IMPLEMENTATIONS: Sequence[int] = [1, 2, 3]


def local_workload(class_name: str, spatial: Tuple[int, ...], cin: int, filters: int, kernel: int,
                   batch: int, implementation: int, dtype: str = "float32") -> Workload:
    """``<class_name>(filters, kernel, implementation=...)`` on a ``(batch, *spatial, cin)`` input."""
    out = tuple(n - kernel + 1 for n in spatial)
    positions = int(np.prod(out))
    feat = kernel ** len(spatial) * cin
    itemsize = np.dtype(dtype).itemsize
    flops = 2 * batch * positions * feat * filters + batch * positions * filters
    nbytes = itemsize * (batch * int(np.prod(spatial)) * cin + positions * feat * filters
                         + 2 * positions * filters + batch * positions * filters)
    tag = "lc1d" if len(spatial) == 1 else "lc2d"
    shape = "x".join(str(d) for d in spatial)
    short = {"float32": "f32", "float64": "f64"}.get(dtype, dtype)
    return Workload(
        name=f"{tag}-b{batch}-{shape}x{cin}-k{kernel}-{filters}-impl{implementation}-{short}",
        family="local",
        config={"class_name": class_name,
                "config": {"filters": filters, "kernel_size": kernel, "implementation": implementation}},
        input_shape=(batch,) + tuple(spatial) + (cin,),
        dtype=dtype,
        flops=flops,
        bytes_moved=nbytes,
        bound="memory" if batch < 16 else "compute",
    )


def _local_workloads() -> Iterator[Workload]:
    for class_name, spatial, cin, filters, kernel in LOCAL_SHAPES:
        for batch in LOCAL_BATCHES:
            for implementation in LOCAL_IMPLEMENTATIONS:
                yield local_workload(class_name, spatial, cin, filters, kernel, batch, implementation)


register(*_local_workloads())
