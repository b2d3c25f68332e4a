"""Keras 3 operations that appear as nodes of saved functional graphs.

Keras 3 records calls of ``keras.ops`` inside a functional model as graph nodes of their own
(``{"module": "keras.src.ops.numpy", "class_name": "NotEqual", ...}``). The commonest is the
one Keras 3 inserts itself: ``Embedding(mask_zero=True)`` in a functional model becomes
``not_equal(tokens, 0)``, whose output is passed as the ``mask`` of the next layers. klayers
rebuilds these nodes as small layers (no weights), registered under Keras's class names (any
Keras 3 model config may hold them) but not part of ``klayers.layers.__all__``.
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from klayers.engine.base_layer import Layer
from klayers.serialization import register_builtins


class _Op(Layer):
    """A weightless elementwise operation of a Keras 3 graph."""

    _fn: Any = None
    _bool_output = False

    def __init__(self, name: str = None, **kwargs: Any):
        kwargs.pop("dtype", None)
        super().__init__(name=name, trainable=False, **kwargs)

    def call(self, x: Any, y: Any = None) -> Any:
        return type(self)._fn(x, y)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def _output_dtype(self, inputs: Any) -> str:
        return "bool" if self._bool_output else getattr(inputs, "dtype", self._dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name}

    def get_build_config(self):
        return None


class NotEqual(_Op):
    """``keras.ops.not_equal(x, y)``."""

    _fn = staticmethod(np.not_equal)
    _bool_output = True


class Equal(_Op):
    """``keras.ops.equal(x, y)``."""

    _fn = staticmethod(np.equal)
    _bool_output = True


class AnyOp(_Op):
    """``keras.ops.any(x, axis, keepdims)``: Keras 3 writes Masking's mask as
    ``any(not_equal(x, mask_value), axis=-1)``."""

    _bool_output = True

    def __init__(self, axis: Any = None, keepdims: bool = False, name: str = None, **kwargs: Any):
        super().__init__(name=name, **kwargs)
        if axis is not None and not isinstance(axis, (int, list, tuple)):
            raise ValueError(f"Any {self.name}: axis must be an int, a list of ints or None. Received axis={axis!r}")
        self.axis = [axis] if isinstance(axis, int) else (list(axis) if axis is not None else None)
        self.keepdims = bool(keepdims)

    def call(self, x: Any) -> Any:
        axis = tuple(self.axis) if self.axis is not None else None
        return np.any(x, axis=axis, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = list(input_shape)
        axes = range(len(shape)) if self.axis is None else [a % len(shape) for a in self.axis]
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i not in axes)

    def get_config(self) -> Dict[str, Any]:
        axis = self.axis[0] if self.axis is not None and len(self.axis) == 1 else self.axis
        return {"axis": axis, "keepdims": self.keepdims, "name": self.name}


#: Keras 3 op classes by class name.
# Keras 3 names the class ``Any``; klayers's name keeps typing.Any usable in this module.
AnyOp.__name__ = AnyOp.__qualname__ = "Any"
KERAS3_OPS: Dict[str, type] = {"NotEqual": NotEqual, "Equal": Equal, "Any": AnyOp}
__all__: List[str] = []  # graph nodes, not public layers
register_builtins("layer", KERAS3_OPS, list(KERAS3_OPS))

NotEqual._keras_module = "keras.src.ops.numpy"
NotEqual._keras_registered_name = "NotEqual"
Equal._keras_module = "keras.src.ops.numpy"
Equal._keras_registered_name = "Equal"
AnyOp._keras_module = "keras.src.ops.numpy"
AnyOp._keras_registered_name = "Any"
