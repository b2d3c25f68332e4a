"""Symbolic tensors: what ``Input`` returns and what layers return when called on them."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import numpy as np


class KerasHistory(NamedTuple):
    """Where a symbolic tensor came from: ``layer._inbound_nodes[node_index].outputs[tensor_index]``."""

    layer: Any
    node_index: int
    tensor_index: int


class KerasTensor:
    """A placeholder with a static shape (``None`` for unknown sizes) and a dtype.

    Layers called on KerasTensors record a Node and return KerasTensors whose shapes come
    from ``compute_output_shape``; a functional ``Model`` is built from them.
    """

    def __init__(self, shape: Tuple[Optional[int], ...], dtype: str = "float32", name: Optional[str] = None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype).name if dtype is not None else "float32"
        self.name = name
        self._keras_history: Optional[KerasHistory] = None
        self._keras_mask: Optional[KerasTensor] = None

    @property
    def node(self):
        layer, node_index, _ = self._keras_history
        return layer._inbound_nodes[node_index]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        origin = f", created by layer '{self._keras_history.layer.name}'" if self._keras_history else ""
        return f"<KerasTensor: shape={self.shape} dtype={self.dtype}{origin}>"

    def __len__(self):
        raise TypeError("KerasTensors are symbolic: len() is unknown. Use .shape.")

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"{self!r} is symbolic (from Input): it has no values. Call the layer or model on "
            "NumPy arrays to compute, or build a Model from symbolic tensors."
        )


def is_keras_tensor(x: Any) -> bool:
    """True for symbolic tensors."""
    return isinstance(x, KerasTensor)
