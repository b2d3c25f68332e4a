"""Ops: argument normalization, output shapes, and dispatch to compiled kernels.

Every compiled op has a NumPy reference twin (``*_reference``) with the same signature; tests
compare them in float32 and float64 at 1 and N threads. What every op shares (float dtypes,
activation codes, the thread rule, BLAS pinning) is :mod:`klayers.ops.common`; all output-shape
and padding arithmetic is :mod:`klayers.ops.shapes`.
"""

from klayers.ops.common import ACT_LINEAR, ACT_RELU, ACT_RELU6
from klayers.ops.dense import dense, dense_reference

__all__ = ["ACT_LINEAR", "ACT_RELU", "ACT_RELU6", "dense", "dense_reference"]
