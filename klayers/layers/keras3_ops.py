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
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.node import Node
from klayers.layers._keras3_dtypes import result_type
from klayers.serialization import register_builtins


class _Op(Layer):
    """A weightless elementwise operation of a Keras 3 graph."""

    _fn: Any = None
    _bool_output = False

    def __init__(self, name: str = None, **kwargs: Any):
        kwargs.pop("dtype", None)
        super().__init__(name=name, trainable=False, **kwargs)
        self._autocast = False  # an operation computes in its inputs' dtypes (Keras 3's promotion)

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


class _Binary(_Op):
    """A broadcasting elementwise operation of two operands, one of which may be a number
    (``x + 3.0``, ``x * y``, ``1.0 - x``: Keras 3 records the number where it stood)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if (len(args) == 2 and not kwargs and _is_number(args[0]) and isinstance(args[1], KerasTensor)):
            # a number first (``1.0 - x``): the node keeps the operands in Keras's order
            self._other = args[0]
            outputs = KerasTensor(self.compute_output_shape(args[1].shape), dtype=args[1].dtype)
            Node(self, call_args=args, outputs=outputs)
            self.built = True
            return outputs
        return super().__call__(*args, **kwargs)

    #: "bool" (comparisons), "float" (true division: result_type(x, y, float)), or None
    _result: Any = None

    def _promote(self, a: Any, b: Any) -> str:
        """Keras 3's dtype of ``op(a, b)`` (a number is weak: ``int32 + 2.0`` is float32)."""
        return result_type(a, b, float) if self._result == "float" else result_type(a, b)

    def call(self, x: Any, y: Any = None) -> Any:
        # a 0-d array here is a number of the node's config (Keras's weak type)
        x, y = (v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else np.asarray(v) if not _is_number(v) else v
                for v in (x, y))
        dtype = self._promote(x, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            return type(self)._fn(np.asarray(x).astype(dtype, copy=False), np.asarray(y).astype(dtype, copy=False))

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        if len(args) != 1 or kwargs:
            raise ValueError(f"Keras 3 operation {type(self).__name__} {self.name}: expected two operands, "
                             f"received {1 + len(args)} and keyword arguments {sorted(kwargs)}.")
        if not (_is_number(args[0]) or isinstance(args[0], KerasTensor)):
            raise ValueError(f"Keras 3 operation {type(self).__name__} {self.name}: an operand must be a "
                             f"tensor or a number. Received {args[0]!r}.")
        self._other = args[0]
        return super()._symbolic_call(inputs, args, kwargs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        other = getattr(self, "_other", None)
        return _broadcast(tuple(input_shape), tuple(getattr(other, "shape", ())), self.name)

    def _output_dtype(self, inputs: Any) -> str:
        other = getattr(self, "_other", None)
        if self._result == "bool":
            return "bool"
        return self._promote(inputs, inputs if other is None else other)

    #: class names whose node ``op(x, <number>)`` is an element-wise ``x <op> number``
    _SCALAR_OPS = {"Add": "add", "Multiply": "multiply"}

    def _scalar_spec(self, node: Any) -> Any:
        """``(op, number)`` when ``node`` (one of this layer's nodes) computes ``x + number`` or
        ``x * number`` with the tensor first (read by the inference planner, which folds Keras
        3's hard sigmoid ``ReLU(6)(x + 3) * (1 / 6)``, as tf-keras's, into one kernel)."""
        op = self._SCALAR_OPS.get(type(self).__name__)
        args = node.call_args
        if (op is None or node.call_kwargs or len(args) != 2 or not isinstance(args[0], KerasTensor)
                or not _is_number(args[1])):
            return None
        return op, float(args[1])


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)


def _broadcast(a: tuple, b: tuple, name: str) -> tuple:
    """NumPy's broadcast of two shapes with unknown (None) sizes."""
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1 or y is None or x == y:
            out.append(x)
        elif x is None:
            out.append(y)
        else:
            raise ValueError(f"Operation {name}: shapes {a} and {b} do not broadcast.")
    return tuple(out)


def _binary(name: str, fn: Any, doc: str, result: Any = None) -> type:
    cls = type(name + "Op", (_Binary,), {"_fn": staticmethod(fn), "__doc__": doc, "__module__": __name__,
                                         "_result": result})
    cls.__name__ = cls.__qualname__ = name  # Keras 3's class name (the merge layers' names too)
    cls._keras_module = "keras.src.ops.numpy"
    cls._keras_registered_name = name
    return cls


#: Keras 3's binary ``keras.ops.numpy`` operations, by class name: what ``x + 3.0``,
#: ``x * y`` ... record in a functional model (MobileNetV3's hard sigmoid, ConvNeXt's residuals).
BINARY_OPS: Dict[str, type] = {
    name: _binary(name, fn, f"``keras.ops.{op}(x, y)``.", result)
    for name, op, fn, result in (
        ("Add", "add", np.add, None),
        ("Subtract", "subtract", np.subtract, None),
        ("Multiply", "multiply", np.multiply, None),
        ("Divide", "divide", np.divide, "float"),
        ("TrueDivide", "true_divide", np.true_divide, "float"),
        ("Maximum", "maximum", np.maximum, None),
        ("Minimum", "minimum", np.minimum, None),
        ("Power", "power", np.power, None),
        ("FloorDivide", "floor_divide", np.floor_divide, None),
        ("Greater", "greater", np.greater, "bool"),
        ("GreaterEqual", "greater_equal", np.greater_equal, "bool"),
        ("Less", "less", np.less, "bool"),
        ("LessEqual", "less_equal", np.less_equal, "bool"),
        ("LogicalAnd", "logical_and", np.logical_and, "bool"),
        ("LogicalOr", "logical_or", np.logical_or, "bool"),
    )
}

#: Keras 3 op classes by class name.
# Keras 3 names the class ``Any``; klayers's name keeps typing.Any usable in this module.
AnyOp.__name__ = AnyOp.__qualname__ = "Any"
KERAS3_OPS: Dict[str, type] = {"NotEqual": NotEqual, "Equal": Equal, "Any": AnyOp, **BINARY_OPS}
__all__: List[str] = []  # graph nodes, not public layers
# the mask operations under their names among the layers too (no layer is called so); every
# operation under its name among Keras 3's operations, which a config's module selects
register_builtins("layer", KERAS3_OPS, ["NotEqual", "Equal", "Any"])
register_builtins("keras3_op", KERAS3_OPS, list(KERAS3_OPS))

NotEqual._keras_module = "keras.src.ops.numpy"
NotEqual._keras_registered_name = "NotEqual"
Equal._keras_module = "keras.src.ops.numpy"
Equal._keras_registered_name = "Equal"
AnyOp._keras_module = "keras.src.ops.numpy"
AnyOp._keras_registered_name = "Any"
