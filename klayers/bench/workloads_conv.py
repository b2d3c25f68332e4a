"""Convolution-family workloads (family ``conv``): the issue's list plus one of each layer.

FLOPs count a multiply-add as 2: ``2·batch·out_pixels·k_taps·(cin/groups)·filters`` for a conv,
``2·batch·in_pixels·k_taps·cin·filters`` for a transposed conv, ``2·batch·out_pixels·k_taps·
channels·multiplier`` for a depthwise one (memory-bound: rated in GB/s of input + output).
"""

from __future__ import annotations

from math import prod

import numpy as np

from klayers.bench.workloads import Workload, register

F32 = "float32"


def _conv(name, class_name, config, input_shape, flops, bytes_moved=None, bound="compute"):
    return Workload(name=name, family="conv", config={"class_name": class_name, "config": config},
                    input_shape=input_shape, dtype=F32, flops=int(flops),
                    bytes_moved=None if bytes_moved is None else int(bytes_moved), bound=bound)


def _conv2d(batch, hw, cin, cout, k, stride=1, padding="same"):
    out = -(-hw // stride) if padding == "same" else (hw - k) // stride + 1
    return _conv(f"conv2d-b{batch}-{hw}x{hw}x{cin}-k{k}s{stride}-{cout}-f32", "Conv2D",
                 {"filters": cout, "kernel_size": k, "strides": stride, "padding": padding, "activation": "relu"},
                 (batch, hw, hw, cin), 2 * batch * out * out * k * k * cin * cout)


def _workloads():
    yield _conv2d(1, 56, 64, 64, 3)
    yield _conv2d(8, 56, 64, 64, 3)
    yield _conv2d(1, 28, 256, 64, 1)
    yield _conv2d(1, 56, 64, 128, 3, stride=2)
    # a narrow map (rows shorter than the implicit-GEMM kernel wants: the im2col path)
    yield _conv2d(1, 14, 256, 256, 3)
    itemsize = np.dtype(F32).itemsize
    n, hw, c = 1, 112, 32
    yield _conv("dwconv2d-b1-112x112x32-k3-f32", "DepthwiseConv2D",
                {"kernel_size": 3, "padding": "same", "activation": "relu6"}, (n, hw, hw, c),
                2 * n * hw * hw * 9 * c, 2 * n * hw * hw * c * itemsize, bound="memory")
    # MobileNet's downsampling depthwise: stride 2, 64 channels (input read once, output 1/4)
    yield _conv("dwconv2d-b1-112x112x64-k3s2-f32", "DepthwiseConv2D",
                {"kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu6"}, (1, 112, 112, 64),
                2 * 56 * 56 * 9 * 64, (112 * 112 + 56 * 56) * 64 * itemsize, bound="memory")
    yield _conv("sepconv2d-b1-56x56x64-k3-128-f32", "SeparableConv2D",
                {"filters": 128, "kernel_size": 3, "padding": "same", "activation": "relu"}, (1, 56, 56, 64),
                2 * 56 * 56 * (9 * 64 + 64 * 128))
    yield _conv("conv2dt-b1-28x28x64-k4s2-64-f32", "Conv2DTranspose",
                {"filters": 64, "kernel_size": 4, "strides": 2, "padding": "same"}, (1, 28, 28, 64),
                2 * 28 * 28 * 16 * 64 * 64)
    yield _conv("conv1d-b1-1000x64-k5-64-f32", "Conv1D",
                {"filters": 64, "kernel_size": 5, "padding": "causal", "activation": "relu"}, (1, 1000, 64),
                2 * 1000 * 5 * 64 * 64)
    yield _conv("conv3d-b1-16x32x32x16-k3-32-f32", "Conv3D",
                {"filters": 32, "kernel_size": 3, "padding": "same"}, (1, 16, 32, 32, 16),
                2 * prod((16, 32, 32)) * 27 * 16 * 32)
    yield _conv("dwconv1d-b1-1000x64-k5-f32", "DepthwiseConv1D",
                {"kernel_size": 5, "padding": "same"}, (1, 1000, 64),
                2 * 1000 * 5 * 64, 2 * 1000 * 64 * itemsize, bound="memory")
    yield _conv("sepconv1d-b1-1000x64-k5-64-f32", "SeparableConv1D",
                {"filters": 64, "kernel_size": 5, "padding": "same"}, (1, 1000, 64),
                2 * 1000 * (5 * 64 + 64 * 64))
    yield _conv("conv1dt-b1-500x64-k4s2-64-f32", "Conv1DTranspose",
                {"filters": 64, "kernel_size": 4, "strides": 2, "padding": "same"}, (1, 500, 64),
                2 * 500 * 4 * 64 * 64)
    yield _conv("conv3dt-b1-8x16x16x32-k3s2-16-f32", "Conv3DTranspose",
                {"filters": 16, "kernel_size": 3, "strides": 2, "padding": "same"}, (1, 8, 16, 16, 32),
                2 * prod((8, 16, 16)) * 27 * 32 * 16)


register(*_workloads())
