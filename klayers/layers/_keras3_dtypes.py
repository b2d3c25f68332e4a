"""Keras 3's type promotion (``keras/src/backend/common/dtypes.py`` with the TensorFlow backend
and floatx float32): what dtype ``x + 2.0``, ``concatenate([ints, floats])`` ... give. Python
numbers are "weak": they take a tensor's type where they fit (``int32 + 2`` is int32,
``int32 + 2.0`` float32, ``float16 + 2.0`` float16)."""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

_LATTICE = {
    "bool": ["int"], "uint8": ["int16", "uint16"], "uint16": ["int32", "uint32"], "uint32": ["int64", "uint64"],
    "uint64": ["float"], "int": ["uint8", "int8"], "int8": ["int16"], "int16": ["int32"], "int32": ["int64"],
    "int64": ["float"], "float": ["bfloat16", "float16"], "bfloat16": ["float32"], "float16": ["float32"],
    "float32": ["float64"], "float64": [],
}


def _upper(node: str) -> frozenset:
    out = {node}
    for up in _LATTICE[node]:
        out |= _upper(up)
    return frozenset(out)


_UPPER = {n: _upper(n) for n in _LATTICE}


def dtype_of(v: Any) -> Tuple[str, bool]:
    """``(dtype, weak)``: Python numbers are Keras's weak ``int`` / ``float``."""
    if isinstance(v, bool):
        return "bool", False
    if isinstance(v, int):
        return "int", True
    if isinstance(v, float):
        return "float", True
    if v is int or v is float:
        return ("int" if v is int else "float"), True
    return np.dtype(getattr(v, "dtype", v)).name, False


def result_type(*values: Any) -> str:
    """``keras.backend.result_type`` (floatx float32, TensorFlow backend) of tensors, arrays,
    dtype names and Python numbers."""
    pairs = [dtype_of(v) for v in values]
    dtypes = {d for d, _ in pairs}
    if len(pairs) == 1 or (len(dtypes) == 1 and not all(w for _, w in pairs)):
        out, weak = pairs[0][0], pairs[0][1]
    else:
        try:
            common = frozenset.intersection(*(_UPPER[d] for d in dtypes))
        except KeyError as e:
            raise ValueError(f"dtype {e.args[0]} has no Keras 3 type promotion.") from None
        least = (common & dtypes) or {c for c in common if common <= _UPPER[c]}
        out = next(iter(least))
        weak = out in ("int", "float")
    return {"int": "int32", "float": "float32"}.get(out, out) if weak or out in ("int", "float") else out
