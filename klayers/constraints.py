"""Weight constraints, as ``tf_keras.constraints`` (tf-keras 2.21), over NumPy.

``constraint(w)`` returns a new NumPy array: the projection of ``w`` that the optimizer
applies after each update. Norms use :func:`klayers.backend.epsilon` as tf-keras does.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from klayers import backend
from klayers.serialization import (
    deserialize_keras_object,
    serialize_typed_object,
)

__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "RadialConstraint",
    "UnitNorm",
    "deserialize",
    "get",
    "max_norm",
    "maxnorm",
    "min_max_norm",
    "non_neg",
    "nonneg",
    "radial_constraint",
    "serialize",
    "unit_norm",
    "unitnorm",
]

Axis = Union[int, Sequence[int]]


def _axis(axis: Axis) -> Union[int, tuple]:
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _norms(w: np.ndarray, axis: Axis) -> np.ndarray:
    return np.sqrt(np.sum(np.square(w), axis=_axis(axis), keepdims=True))


def _float(w: Any) -> np.ndarray:
    w = np.asarray(w)
    return w if np.issubdtype(w.dtype, np.floating) else w.astype(backend.floatx())


class Constraint:
    """Base class: ``__call__(w)`` returns the constrained weight (``w`` itself here)."""

    def __call__(self, w: Any) -> Any:
        return w

    def get_config(self) -> Dict[str, Any]:
        """The constructor arguments as a JSON-able dict."""
        return {}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> Constraint:
        """Instantiate from :meth:`get_config`'s output."""
        return cls(**config)


class MaxNorm(Constraint):
    """Rescale the slices along ``axis`` whose L2 norm exceeds ``max_value``:
    ``w * clip(n, 0, max_value) / (epsilon + n)``. For a Dense kernel ``(in, out)`` use
    ``axis=0``; for a Conv2D kernel ``(h, w, in, out)`` use ``axis=[0, 1, 2]``."""

    def __init__(self, max_value: float = 2, axis: Axis = 0):
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w: Any) -> np.ndarray:
        w = _float(w)
        norms = _norms(w, self.axis)
        desired = backend.clip(norms, 0, self.max_value)
        return w * (desired / (w.dtype.type(backend.epsilon()) + norms))

    def get_config(self) -> Dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Zero the negative entries: ``w * (w >= 0)``."""

    def __call__(self, w: Any) -> np.ndarray:
        w = _float(w)
        return w * (w >= 0).astype(w.dtype)


class UnitNorm(Constraint):
    """Scale slices along ``axis`` to unit L2 norm: ``w / (epsilon + ||w||)``."""

    def __init__(self, axis: Axis = 0):
        self.axis = axis

    def __call__(self, w: Any) -> np.ndarray:
        w = _float(w)
        return w / (w.dtype.type(backend.epsilon()) + _norms(w, self.axis))

    def get_config(self) -> Dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move slice norms ``n`` along ``axis`` toward ``[min_value, max_value]``:
    ``desired = rate * clip(n, min_value, max_value) + (1 - rate) * n``, returns
    ``w * desired / (epsilon + n)`` (``rate=1`` enforces the bounds strictly)."""

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Axis = 0):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w: Any) -> np.ndarray:
        w = _float(w)
        t = w.dtype.type
        norms = _norms(w, self.axis)
        desired = t(self.rate) * backend.clip(norms, self.min_value, self.max_value) + t(1 - self.rate) * norms
        return w * (desired / (t(backend.epsilon()) + norms))

    def get_config(self) -> Dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


class RadialConstraint(Constraint):
    """Make each ``(k, k)`` spatial slice of a ``(k, k, in, out)`` kernel radially symmetric,
    exactly as tf-keras computes it: every square ring around the centre takes one value
    read from the kernel's diagonal. For odd ``k`` (``s = k // 2``) the centre takes
    ``w[s-1, s-1]`` and ring ``d`` takes ``w[s+d-1, s+d-1]``; for even ``k`` (``s = k / 2``)
    the central 2x2 block takes ``w[s-1, s-1]`` and ring ``d`` takes ``w[s+d, s+d]``.
    (The odd case reads one diagonal entry before the centre; this reproduces tf-keras.)

    Raises:
        ValueError: ``w`` is not rank 4, or its two spatial sizes differ (or are 1).
    """

    def __call__(self, w: Any) -> np.ndarray:
        w = _float(w)
        if w.ndim != 4:
            raise ValueError(f"The weight tensor must have rank 4. Received weight tensor with shape: {w.shape}")
        k, k2 = w.shape[0], w.shape[1]
        if k != k2 or k < 2:
            raise ValueError(f"RadialConstraint needs square spatial kernels of size >= 2. Received shape: {w.shape}")
        start = k // 2
        i = np.arange(k)
        if k % 2:
            dist = np.abs(i - start)
            ring = np.maximum.outer(dist, dist)
            src = np.where(ring == 0, start - 1, start + ring - 1)
        else:
            dist = np.maximum(np.maximum(start - 1 - i, i - start), 0)
            ring = np.maximum.outer(dist, dist)
            src = np.where(ring == 0, start - 1, start + ring)
        return w[src, src]


for _cls in (Constraint, MaxNorm, NonNeg, UnitNorm, MinMaxNorm, RadialConstraint):
    _cls._keras_module = "keras.constraints"

max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm
radial_constraint = RadialConstraint
maxnorm = max_norm
nonneg = non_neg
unitnorm = unit_norm

#: Names ``tf_keras.constraints.get`` resolves (its module globals).
ALL_OBJECTS: Dict[str, type] = {
    "Constraint": Constraint,
    "MaxNorm": MaxNorm,
    "NonNeg": NonNeg,
    "UnitNorm": UnitNorm,
    "MinMaxNorm": MinMaxNorm,
    "RadialConstraint": RadialConstraint,
    "max_norm": MaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
    "min_max_norm": MinMaxNorm,
    "radial_constraint": RadialConstraint,
    "maxnorm": MaxNorm,
    "nonneg": NonNeg,
    "unitnorm": UnitNorm,
}


def serialize(constraint: Optional[Constraint], use_legacy_format: bool = False) -> Optional[Dict[str, Any]]:
    """``{"module": "keras.constraints", "class_name", "config", "registered_name": None}``
    for built-ins (custom classes carry their module and registered name); None for None."""
    return serialize_typed_object(constraint, Constraint, "constraints", use_legacy_format)


def deserialize(
    config: Union[str, Dict[str, Any]],
    custom_objects: Optional[Mapping[str, Any]] = None,
    use_legacy_format: bool = False,
) -> Any:
    """The constraint a name or config describes.

    Raises:
        ValueError: unknown name (the message names it).
    """
    return deserialize_keras_object(
        config, module_objects=ALL_OBJECTS, custom_objects=custom_objects, printable_module_name="constraint"
    )


def get(identifier: Union[None, str, Dict[str, Any], Callable]) -> Any:
    """Resolve a constraint identifier: None gives None, a name (``"max_norm"``,
    ``"NonNeg"`` ...) a default instance, a config its instance; callables pass through.

    Raises:
        ValueError: an unknown name or an identifier of another kind.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return deserialize({"class_name": identifier, "config": {}})
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret constraint function identifier: {identifier}")
