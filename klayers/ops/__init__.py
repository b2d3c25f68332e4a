"""Ops: argument normalization, output shapes, and dispatch to compiled kernels.

Every compiled op has a NumPy reference twin (``*_reference``) with the same signature; tests
compare them in float32 and float64 at 1 and N threads.
"""

from klayers.ops.dense import ACT_LINEAR, ACT_RELU, ACT_RELU6, dense, dense_reference

__all__ = ["ACT_LINEAR", "ACT_RELU", "ACT_RELU6", "dense", "dense_reference"]
