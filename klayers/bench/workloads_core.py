"""Core-family benchmark workloads (issue 3's targets), each at batch 1 and 64: Dense,
BatchNormalization (inference), LayerNormalization, Embedding, Softmax, and the merge layers
Concatenate and Add (two inputs each, see ``workloads.py`` on several inputs).

The Dense family's own table (batch 1 and 256, two sizes, two dtypes) is in ``workloads.py``;
the Dense rows here are one smaller layer at the core family's batch sizes.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from klayers.bench.workloads import SEED, Workload, dense_workload, register

BATCHES = (1, 64)


@dataclasses.dataclass(frozen=True)
class IndexWorkload(Workload):
    """A workload whose input holds indices in ``[0, vocab)`` (as floats of the workload dtype;
    Embedding casts them to int32 as tf-keras does)."""

    vocab: int = 1

    def make_input(self, seed: int = SEED) -> np.ndarray:
        """Seeded integer-valued indices of ``input_shape``."""
        rng = np.random.default_rng(seed)
        return rng.integers(0, self.vocab, size=self.input_shape).astype(self.dtype)


def _core_workloads() -> Iterator[Workload]:
    for b in BATCHES:
        yield dataclasses.replace(dense_workload(b, 256, 256, "relu"), family="core")
    for b in BATCHES:
        # the seeded random weights include negative moving variances: epsilon=1 keeps
        # variance + epsilon positive, so every engine's output is finite
        hw, c = 32, 64
        n = b * hw * hw * c
        yield Workload(
            name=f"batchnorm-b{b}-{hw}x{hw}x{c}-f32", family="core",
            config={"class_name": "BatchNormalization", "config": {"epsilon": 1.0}},
            input_shape=(b, hw, hw, c), flops=2 * n, bytes_moved=8 * n, bound="memory",
        )
    for b in BATCHES:
        seq, vocab, dim = 128, 10000, 128
        yield IndexWorkload(
            name=f"embedding-b{b}-{seq}-{vocab}x{dim}-f32", family="core",
            config={"class_name": "Embedding", "config": {"input_dim": vocab, "output_dim": dim}},
            input_shape=(b, seq), bytes_moved=4 * (b * seq + 2 * b * seq * dim), bound="memory", vocab=vocab,
        )
    for b in BATCHES:
        # a transformer block's normalization: (batch, tokens, features), over features
        rows, cols = 64, 256
        n = b * rows * cols
        yield Workload(
            name=f"layernorm-b{b}-{rows}x{cols}-f32", family="core",
            config={"class_name": "LayerNormalization", "config": {"axis": -1}},
            input_shape=(b, rows, cols), flops=8 * n, bytes_moved=8 * n + 8 * cols, bound="memory",
        )
    for b in BATCHES:
        rows, cols = 64, 256
        n = b * rows * cols
        yield Workload(
            name=f"softmax-b{b}-{rows}x{cols}-f32", family="core",
            config={"class_name": "Softmax", "config": {"axis": -1}},
            input_shape=(b, rows, cols), flops=4 * n, bytes_moved=8 * n, bound="memory",
        )
    # merge layers on two feature maps (a U-Net / DenseNet skip connection)
    hw, c = 16, 64
    for b in BATCHES:
        n = b * hw * hw * c
        yield Workload(
            name=f"concatenate-b{b}-2x{hw}x{hw}x{c}-f32", family="core",
            config={"class_name": "Concatenate", "config": {"axis": -1}},
            input_shape=[(b, hw, hw, c)] * 2, bytes_moved=4 * 4 * n, bound="memory",
        )
    for b in BATCHES:
        n = b * hw * hw * c
        yield Workload(
            name=f"add-b{b}-2x{hw}x{hw}x{c}-f32", family="core",
            config={"class_name": "Add", "config": {}},
            input_shape=[(b, hw, hw, c)] * 2, flops=n, bytes_moved=4 * 3 * n, bound="memory",
        )


register(*_core_workloads())
