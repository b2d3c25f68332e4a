"""Pooling workloads (family ``pooling``): the issue's list. All are memory-bound: rated in GB/s
of input read plus output written (each input value is read once from memory; overlapping
windows re-read it from cache). ``flops`` counts one compare or add per window tap."""

from __future__ import annotations

from math import prod

import numpy as np

from klayers.bench.workloads import Workload, register

F32 = "float32"


def _out(n, k, s, padding):
    return -(-n // s) if padding == "same" else (n - k) // s + 1


def _pool(name, class_name, input_shape, pool=None, stride=None, padding="valid"):
    """A windowed (``pool`` given) or global pooling layer on a channels_last input."""
    itemsize = np.dtype(F32).itemsize
    batch, spatial, channels = input_shape[0], input_shape[1:-1], input_shape[-1]
    if pool is None:
        config = {}
        out = (batch, channels)
        taps = prod(input_shape)
    else:
        stride = stride or pool
        config = {"pool_size": pool, "strides": stride, "padding": padding}
        out_spatial = tuple(_out(n, pool, stride, padding) for n in spatial)
        out = (batch,) + out_spatial + (channels,)
        taps = prod(out) * pool ** len(spatial)
    return Workload(name=name, family="pooling", config={"class_name": class_name, "config": config},
                    input_shape=tuple(input_shape), dtype=F32, flops=int(taps),
                    bytes_moved=int((prod(input_shape) + prod(out)) * itemsize), bound="memory")


def _workloads():
    yield _pool("maxpool2d-b1-112x112x64-k3s2-same-f32", "MaxPooling2D", (1, 112, 112, 64), 3, 2, "same")
    yield _pool("maxpool2d-b8-112x112x64-k3s2-same-f32", "MaxPooling2D", (8, 112, 112, 64), 3, 2, "same")
    yield _pool("avgpool2d-b1-56x56x128-k2-f32", "AveragePooling2D", (1, 56, 56, 128), 2)
    yield _pool("gap2d-b1-7x7x1280-f32", "GlobalAveragePooling2D", (1, 7, 7, 1280))
    yield _pool("gap2d-b1-56x56x256-f32", "GlobalAveragePooling2D", (1, 56, 56, 256))
    yield _pool("maxpool1d-b1-16384x64-k2-f32", "MaxPooling1D", (1, 16384, 64), 2)
    yield _pool("maxpool3d-b1-16x56x56x32-k2-f32", "MaxPooling3D", (1, 16, 56, 56, 32), 2)


register(*_workloads())
