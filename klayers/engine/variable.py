"""Variable: a named weight array owned by a layer."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

#: Bumped by every ``Variable.value`` assignment anywhere: a cheap "did any weight change" test.
_WEIGHTS_VERSION = [0]


class Variable(NDArrayOperatorsMixin):
    """A layer weight: ``value`` (a NumPy array) plus Keras's ``name``, ``trainable``,
    ``constraint`` and ``regularizer``.

    Behaves as an array in NumPy expressions (``x @ layer.kernel``), so custom layers written
    for Keras read naturally; kernels use ``.value`` directly.
    """

    def __init__(
        self,
        value: np.ndarray,
        name: str,
        trainable: bool = True,
        constraint: Optional[Callable] = None,
        regularizer: Optional[Callable] = None,
    ):
        self._version = 0
        self.value = value
        self.name = name
        self.trainable = trainable
        self.constraint = constraint
        self.regularizer = regularizer

    @property
    def value(self) -> np.ndarray:
        """The weight's array."""
        return self._value

    @value.setter
    def value(self, value: np.ndarray) -> None:
        # every assignment (set_weights, assign, load_weights, a training-mode BatchNorm) bumps
        # the versions that the fused inference plans (klayers.engine.fusion) check
        self._value = value
        self._version += 1
        _WEIGHTS_VERSION[0] += 1

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def ndim(self) -> int:
        return self.value.ndim

    def numpy(self) -> np.ndarray:
        """A copy of the value."""
        return self.value.copy()

    def assign(self, value: Any) -> Variable:
        """Set the value (same shape; cast to the variable's dtype)."""
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(f"Cannot assign value of shape {value.shape} to variable '{self.name}' of shape {self.value.shape}")
        self.value = np.array(value, dtype=self.value.dtype, copy=True, order="C")
        return self

    def __array__(self, dtype=None, copy=None):
        if dtype is not None:
            return self.value.astype(dtype)
        return self.value

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(x.value if isinstance(x, Variable) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getitem__(self, item):
        return self.value[item]

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return f"<klayers.Variable '{self.name}' shape={self.value.shape} dtype={self.value.dtype}>"
