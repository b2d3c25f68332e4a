"""Weight regularizers, as ``tf_keras.regularizers`` (tf-keras 2.21), over NumPy.

``regularizer(x)`` returns the penalty for the weight array ``x`` as a 0-d NumPy array of
``x``'s float dtype. Factors are stored as float32 (``backend.cast_to_floatx``) exactly as
tf-keras does, so ``get_config`` gives tf-keras's float32-rounded floats
(``L2(0.01).get_config() == {"l2": 0.009999999776482582}``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Mapping, Optional, Union

import numpy as np

from klayers import backend
from klayers.serialization import (
    deserialize_keras_object,
    serialize_typed_object,
)

__all__ = [
    "L1",
    "L1L2",
    "L2",
    "OrthogonalRegularizer",
    "Regularizer",
    "deserialize",
    "get",
    "l1",
    "l1_l2",
    "l2",
    "orthogonal_regularizer",
    "serialize",
]


def _check_penalty_number(x: Any) -> None:
    if not isinstance(x, (float, int)):
        raise ValueError(
            f"Value {x} is not a valid regularization penalty number, expected an int or float value."
        )
    if math.isinf(x) or math.isnan(x):
        raise ValueError(
            f"Value {x} is not a valid regularization penalty number, an infinite number or NaN "
            "are not valid values."
        )


def _float(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(backend.floatx())


class Regularizer:
    """Base class: ``__call__(x)`` returns a scalar penalty (0 here); subclasses with
    arguments implement ``get_config``."""

    def __call__(self, x: Any) -> Any:
        return 0.0

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> Regularizer:
        """Instantiate from :meth:`get_config`'s output."""
        return cls(**config)

    def get_config(self) -> Dict[str, Any]:
        """The constructor arguments; the base class has none to give.

        Raises:
            NotImplementedError: always, on the base class (as tf-keras).
        """
        raise NotImplementedError(f"{self} does not implement get_config()")


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x^2)`` (None factors mean 0).

    Raises:
        ValueError: a factor that is not a finite int or float.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        l1 = 0.0 if l1 is None else l1
        l2 = 0.0 if l2 is None else l2
        _check_penalty_number(l1)
        _check_penalty_number(l2)
        self.l1 = backend.cast_to_floatx(l1)
        self.l2 = backend.cast_to_floatx(l2)

    def __call__(self, x: Any) -> np.ndarray:
        x = _float(x)
        t = x.dtype.type
        penalty = t(0.0)
        if self.l1:
            penalty = penalty + t(self.l1) * np.sum(np.abs(x), dtype=x.dtype)
        if self.l2:
            penalty = penalty + t(self.l2) * np.sum(np.square(x), dtype=x.dtype)
        return np.asarray(penalty, dtype=x.dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"l1": float(self.l1), "l2": float(self.l2)}


class L1(Regularizer):
    """``l1 * sum(|x|)``; ``l`` is accepted as an alias of ``l1``.

    Raises:
        TypeError: unknown keyword arguments.
        ValueError: a factor that is not a finite int or float.
    """

    def __init__(self, l1: float = 0.01, **kwargs: Any):
        l1 = kwargs.pop("l", l1)
        if kwargs:
            raise TypeError(f"Argument(s) not recognized: {kwargs}")
        l1 = 0.01 if l1 is None else l1
        _check_penalty_number(l1)
        self.l1 = backend.cast_to_floatx(l1)

    def __call__(self, x: Any) -> np.ndarray:
        x = _float(x)
        return np.asarray(x.dtype.type(self.l1) * np.sum(np.abs(x), dtype=x.dtype), dtype=x.dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"l1": float(self.l1)}


class L2(Regularizer):
    """``l2 * sum(x^2)``; ``l`` is accepted as an alias of ``l2``.

    Raises:
        TypeError: unknown keyword arguments.
        ValueError: a factor that is not a finite int or float.
    """

    def __init__(self, l2: float = 0.01, **kwargs: Any):
        l2 = kwargs.pop("l", l2)
        if kwargs:
            raise TypeError(f"Argument(s) not recognized: {kwargs}")
        l2 = 0.01 if l2 is None else l2
        _check_penalty_number(l2)
        self.l2 = backend.cast_to_floatx(l2)

    def __call__(self, x: Any) -> np.ndarray:
        x = _float(x)
        return np.asarray(x.dtype.type(self.l2) * np.sum(np.square(x), dtype=x.dtype), dtype=x.dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"l2": float(self.l2)}


class OrthogonalRegularizer(Regularizer):
    """Penalizes non-orthogonal rows (``mode="rows"``) or columns (``"columns"``) of a 2-D
    weight: with the vectors L2-normalized, ``factor * mean_{i<j} |<v_i, v_j>|``
    (tf-keras: ``factor * 0.5 * sum(|off-diagonal of V V^T|) / (n (n - 1) / 2)``).

    Raises:
        ValueError: an invalid ``factor`` or ``mode``; ``__call__`` on a non-2-D input.
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        _check_penalty_number(factor)
        self.factor = backend.cast_to_floatx(factor)
        if mode not in {"rows", "columns"}:
            raise ValueError(
                'Invalid value for argument `mode`. Expected one of {"rows", "columns"}. '
                f"Received: mode={mode}"
            )
        self.mode = mode

    def __call__(self, inputs: Any) -> np.ndarray:
        x = _float(inputs)
        if x.ndim != 2:
            raise ValueError(f"Inputs to OrthogonalRegularizer must have rank 2. Received: inputs.shape == {x.shape}")
        v = backend.l2_normalize(x, axis=1 if self.mode == "rows" else 0)
        if self.mode == "columns":
            v = v.T
        product = v @ v.T
        size = v.shape[0]
        off_diagonal = product * (1.0 - np.eye(size, dtype=x.dtype))
        num_pairs = size * (size - 1.0) / 2.0
        t = x.dtype.type
        return np.asarray(t(self.factor) * t(0.5) * np.sum(np.abs(off_diagonal)) / t(num_pairs), dtype=x.dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"factor": float(self.factor), "mode": self.mode}


for _cls in (Regularizer, L1L2, L1, L2, OrthogonalRegularizer):
    _cls._keras_module = "keras.regularizers"


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """An :class:`L1L2` with both factors (default 0.01 each)."""
    return L1L2(l1=l1, l2=l2)


l1 = L1
l2 = L2
orthogonal_regularizer = OrthogonalRegularizer

#: Names ``tf_keras.regularizers.deserialize`` resolves (its module globals).
ALL_OBJECTS: Dict[str, Any] = {
    "Regularizer": Regularizer,
    "L1L2": L1L2,
    "L1": L1,
    "L2": L2,
    "OrthogonalRegularizer": OrthogonalRegularizer,
    "l1": L1,
    "l2": L2,
    "orthogonal_regularizer": OrthogonalRegularizer,
    "l1_l2": l1_l2,
}


def serialize(regularizer: Optional[Regularizer], use_legacy_format: bool = False) -> Optional[Dict[str, Any]]:
    """``{"module": "keras.regularizers", "class_name", "config", "registered_name": None}``
    for built-ins (custom classes carry their module and registered name); None for None."""
    return serialize_typed_object(regularizer, Regularizer, "regularizers", use_legacy_format)


def deserialize(
    config: Union[str, Dict[str, Any]],
    custom_objects: Optional[Mapping[str, Any]] = None,
    use_legacy_format: bool = False,
) -> Any:
    """The regularizer a name or config describes; ``"l1_l2"`` is ``L1L2(0.01, 0.01)``.

    Raises:
        ValueError: unknown name (tf-keras returns the unknown string itself; klayers raises).
    """
    if config == "l1_l2":
        return L1L2(l1=0.01, l2=0.01)
    obj = deserialize_keras_object(
        config, module_objects=ALL_OBJECTS, custom_objects=custom_objects, printable_module_name="regularizer"
    )
    if obj is l1_l2:
        return l1_l2()
    return obj


def get(identifier: Union[None, str, Dict[str, Any], Callable]) -> Any:
    """Resolve a regularizer identifier: None gives None, a name (``"l1"``, ``"L2"``,
    ``"l1_l2"`` ...) a default instance, a config its instance; callables pass through.

    Raises:
        ValueError: an unknown name or an identifier of another kind.
    """
    if identifier is None:
        return None
    if isinstance(identifier, (dict, str)):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer identifier: {identifier}")
