"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot, and the
functional forms ``add`` ... ``dot`` (tf-keras 2.21 semantics: shape rules, broadcasting, masks).

Output masks differ between the Kerases, and a layer read from a Keras 3 file follows Keras 3:
tf-keras ANDs the masks that are there (an unmasked input counts as all-True), Keras 3's element-
wise merges give no mask when any input has none and OR the masks otherwise; Concatenate keeps a
position where all (tf-keras) or any (Keras 3) of the concatenated masks keep it. So
``Add()([Embedding(mask_zero=True)(ids), positions])`` passes the padding mask on in tf-keras and
drops it in Keras 3 (the attention after it then sees no padding)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from klayers.engine.base_layer import Layer
from klayers.engine.node import flatten
from klayers.ops.merge import concatenate as concatenate_op
from klayers.ops.merge import merge as merge_op
from klayers.serialization import register_builtins

__all__ = [
    "Add", "Average", "Concatenate", "Dot", "Maximum", "Minimum", "Multiply", "Subtract",
    "add", "average", "concatenate", "dot", "maximum", "minimum", "multiply", "subtract",
]


def _keras3(layer: Layer) -> bool:
    return getattr(layer, "_keras_dialect", 2) == 3


def _masked_inputs(layer: Layer) -> bool:
    """Whether a mask reaches ``layer`` in a model (a mask argument, or an input carrying one)."""
    for node in layer._inbound_nodes:
        if node.call_kwargs.get("mask") is not None:
            return True
        values = list(node.call_args) + list(node.call_kwargs.values())
        if any(getattr(t, "_keras_mask", None) is not None for t in flatten(values)):
            return True
    return False


def _is_shape_list(input_shape: Any) -> bool:
    return isinstance(input_shape, (list, tuple)) and len(input_shape) > 0 and all(
        isinstance(s, (list, tuple)) for s in input_shape
    )


class _Merge(Layer):
    """Element-wise merge of a list of inputs with Keras's broadcasting rule: shapes are matched
    from the last axis, a 1 broadcasts, and an input of lower rank gets its missing axes inserted
    after the batch axis. The output mask is the logical AND of the input masks (tf-keras), or
    None when an input has none and else their OR (Keras 3)."""

    _exact_inputs: Optional[int] = None

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _where(self) -> str:
        return f"{type(self).__name__} layer {self.name!r}"

    def _compute_elemwise_op_output_shape(self, shape1: Any, shape2: Any) -> Any:
        if shape1 is None or shape2 is None:
            return None
        if len(shape1) < len(shape2):
            return self._compute_elemwise_op_output_shape(shape2, shape1)
        if not shape2:
            return tuple(shape1)
        output_shape = list(shape1[: -len(shape2)])
        for i, j in zip(shape1[-len(shape2):], shape2):
            if i is None or j is None:
                output_shape.append(None)
            elif i == 1:
                output_shape.append(j)
            elif j == 1:
                output_shape.append(i)
            else:
                if i != j:
                    raise ValueError(
                        f"{self._where()}: inputs have incompatible shapes. Received shapes {tuple(shape1)} and {tuple(shape2)}"
                    )
                output_shape.append(i)
        return tuple(output_shape)

    def _check_shapes(self, input_shape: Any) -> Any:
        if not _is_shape_list(input_shape):
            raise ValueError(
                f"{self._where()}: a merge layer should be called on a list of inputs. "
                f"Received: input_shape={input_shape} (not a list of shapes)"
            )
        n = self._exact_inputs
        if n is not None and len(input_shape) != n:
            raise ValueError(
                f"A `{type(self).__name__}` layer should be called on exactly {n} inputs. "
                f"Received: input_shape={[tuple(s) for s in input_shape]} (layer {self.name!r})"
            )
        batch_sizes = {s[0] for s in input_shape if s} - {None}
        if len(batch_sizes) > 1:
            raise ValueError(
                f"{self._where()}: cannot merge tensors with different batch sizes. Got tensors with shapes "
                f"{[tuple(s) for s in input_shape]}"
            )
        output_shape = tuple(input_shape[0][1:])
        for shape in input_shape[1:]:
            output_shape = self._compute_elemwise_op_output_shape(output_shape, tuple(shape[1:]))
        return output_shape

    def build(self, input_shape: Any) -> None:
        self._check_shapes(input_shape)
        self.built = True

    #: the input shapes of the last call that passed ``_check_shapes`` (a speed cache only:
    #: the checks depend on nothing but the shapes and the layer's fixed config)
    _checked_shapes: Optional[tuple] = None

    def _check_shapes_once(self, inputs: Sequence[np.ndarray]) -> None:
        shapes = tuple([x.shape for x in inputs])
        if shapes != self._checked_shapes:
            self._check_shapes(list(shapes))
            self._checked_shapes = shapes

    def _merge_function(self, inputs: List[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def call(self, inputs: Any) -> np.ndarray:
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{self._where()}: a merge layer should be called on a list of inputs. "
                f"Received: inputs of shape {np.shape(inputs)} (not a list of tensors)"
            )
        self._check_shapes_once(inputs)
        ndims = [x.ndim for x in inputs]
        if len(set(ndims)) > 1:
            top = max(ndims)
            inputs = [x.reshape(x.shape[:1] + (1,) * (top - x.ndim) + x.shape[1:]) for x in inputs]
        return self._merge_function(list(inputs))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        output_shape = self._check_shapes(input_shape)
        batch_sizes = {s[0] for s in input_shape if s is not None} - {None}
        batch = list(batch_sizes)[0] if len(batch_sizes) == 1 else None
        return (batch,) + tuple(output_shape)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Optional[np.ndarray]:
        if mask is None:
            return None
        if not isinstance(mask, (tuple, list)):
            raise ValueError(f"{self._where()}: `mask` should be a list. Received: mask={mask}")
        if not isinstance(inputs, (tuple, list)):
            raise ValueError(f"{self._where()}: `inputs` should be a list. Received: inputs={inputs}")
        if len(mask) != len(inputs):
            raise ValueError(
                f"{self._where()}: the lists `inputs` and `mask` should have the same length. "
                f"Received: {len(inputs)} inputs and {len(mask)} masks"
            )
        masks = [np.asarray(m, dtype=bool) for m in mask if m is not None]
        if not masks:
            return None
        if _keras3(self):
            if len(masks) < len(mask):
                return None
            return np.logical_or.reduce(masks) if len(masks) > 1 else masks[0]
        out = masks[0]
        for m in masks[1:]:
            out = np.logical_and(out, m)
        return out

    def _dialect_conflict(self, target: int) -> Optional[str]:
        """Why a file for Keras ``target`` (2 or 3) would give this layer another output mask, or None."""
        if (3 if _keras3(self) else 2) == target or not _masked_inputs(self):
            return None
        return ("a mask reaches this merge layer, and tf-keras and Keras 3 combine the masks of its inputs "
                "differently (AND of those present / None unless all present, then OR)")

    def get_config(self) -> Dict[str, Any]:
        return super().get_config()


class _Elementwise(_Merge):
    """A merge that is one operation of ``klayers.ops.merge`` folded over the inputs."""

    _op = ""

    def _merge_function(self, inputs: List[np.ndarray]) -> np.ndarray:
        return merge_op(inputs, self._op, where=self._where())

    def _merge_spec(self) -> Optional[Any]:
        """``(operation, run)``: the ``klayers.ops.merge`` operation and ``run(inputs,
        act_code)``, this merge of same-rank inputs with an activation code applied to the
        result, for the inference planner to fold an Activation after it into; None for
        subclasses that change the maths."""
        if type(self)._merge_function is not _Elementwise._merge_function or type(self).call is not _Merge.call:
            return None
        where, op = self._where(), self._op

        def run(inputs: List[np.ndarray], act: int) -> np.ndarray:
            return merge_op(inputs, op, where=where, act=act)
        return op, run


class Add(_Elementwise):
    """Sum of a list of inputs (same shape, or broadcastable as Keras allows)."""

    _op = "add"


class Subtract(_Elementwise):
    """``inputs[0] - inputs[1]``: exactly two inputs."""

    _exact_inputs = 2

    _op = "subtract"


class Multiply(_Elementwise):
    """Element-wise product of a list of inputs."""

    _op = "multiply"


class Average(_Merge):
    """Element-wise mean of a list of inputs (their sum divided by their count)."""

    def _merge_function(self, inputs: List[np.ndarray]) -> np.ndarray:
        out = merge_op(inputs, "add", where=self._where())
        return out / out.dtype.type(len(inputs)) if out.dtype.kind == "f" else out / len(inputs)


class Maximum(_Elementwise):
    """Element-wise maximum of a list of inputs."""

    _op = "maximum"


class Minimum(_Elementwise):
    """Element-wise minimum of a list of inputs."""

    _op = "minimum"


class Concatenate(_Merge):
    """Concatenates a list of inputs along ``axis`` (default -1); every other axis must match.

    The output mask (when any input has one) concatenates the masks (an unmasked input counts
    as all True) along ``axis`` and reduces the last axis with AND, as tf-keras does.
    """

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Concatenate layer {self.name!r}: `axis` must be an integer. Received: axis={axis!r}")
        self.axis = int(axis)

    def _check_shapes(self, input_shape: Any) -> Any:
        if not _is_shape_list(input_shape):
            raise ValueError(
                f"A `Concatenate` layer should be called on a list of at least 1 input. "
                f"Received: input_shape={input_shape} (layer {self.name!r})"
            )
        ranks = {len(s) for s in input_shape}
        rank = max(ranks)
        if not -rank <= self.axis < rank:
            raise ValueError(
                f"Concatenate layer {self.name!r}: axis={self.axis} is out of range for inputs of rank {rank}. "
                f"Received: input_shape={[tuple(s) for s in input_shape]}"
            )
        err = (
            "A `Concatenate` layer requires inputs with matching shapes except for the concatenation axis. "
            f"Received: input_shape={[tuple(s) for s in input_shape]} (layer {self.name!r}, axis={self.axis})"
        )
        if len(ranks) != 1:
            raise ValueError(err)
        reduced = [list(s) for s in input_shape]
        for s in reduced:
            del s[self.axis]
        for axis in range(rank - 1):
            if len({s[axis] for s in reduced if s[axis] is not None}) > 1:
                raise ValueError(err)
        return None

    def call(self, inputs: Any) -> np.ndarray:
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"A `Concatenate` layer should be called on a list of inputs. Received: inputs of shape "
                f"{np.shape(inputs)} (layer {self.name!r})"
            )
        self._check_shapes_once(inputs)
        return concatenate_op(inputs, self.axis, where=self._where())

    def _merge_spec(self) -> Optional[Any]:
        """``("concatenate", run)`` for the inference planner (see ``_Elementwise._merge_spec``):
        ``run(inputs, act_code)``, the layer's concatenation with an activation code applied
        to the result; None for subclasses that change the maths."""
        if type(self).call is not Concatenate.call:
            return None
        axis, where = self.axis, self._where()

        def run(inputs: List[np.ndarray], act: int) -> np.ndarray:
            return concatenate_op(inputs, axis, where=where, act=act)
        return "concatenate", run

    def compute_output_shape(self, input_shape: Any) -> tuple:
        self._check_shapes(input_shape)
        output_shape = list(input_shape[0])
        for shape in input_shape[1:]:
            if output_shape[self.axis] is None or shape[self.axis] is None:
                output_shape[self.axis] = None
                break
            output_shape[self.axis] += shape[self.axis]
        return tuple(output_shape)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Optional[np.ndarray]:
        if mask is None:
            return None
        if not isinstance(mask, (tuple, list)) or not isinstance(inputs, (tuple, list)) or len(mask) != len(inputs):
            raise ValueError(
                f"Concatenate layer {self.name!r}: `mask` and `inputs` should be lists of the same length. "
                f"Received: mask={mask}"
            )
        if all(m is None for m in mask):
            return None
        masks = []
        keras3 = _keras3(self)
        for x, m in zip(inputs, mask):
            if m is None:
                masks.append(np.ones(np.shape(x), dtype=bool))
            elif np.ndim(m) < np.ndim(x):
                m = np.expand_dims(np.asarray(m, dtype=bool), -1)
                # Keras 3 broadcasts the mask to the input's shape, so any axis can be concatenated
                masks.append(np.broadcast_to(m, np.shape(x)) if keras3 else m)
            else:
                masks.append(np.asarray(m, dtype=bool))
        return (np.any if keras3 else np.all)(np.concatenate(masks, axis=self.axis), axis=-1)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        return config


def _l2_normalize(x: np.ndarray, axis: int) -> np.ndarray:
    square_sum = np.sum(x * x, axis=axis, keepdims=True)
    return x * (1.0 / np.sqrt(np.maximum(square_sum, x.dtype.type(1e-12)))).astype(x.dtype)


def batch_dot(x: np.ndarray, y: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """tf-keras's ``backend.batch_dot`` for non-negative ``axes`` (``(a0, a1)``, neither 0):
    per sample, contract ``x``'s axis ``a0`` with ``y``'s axis ``a1``; the result has ``x``'s
    remaining axes then ``y``'s (a rank-2 operand contributes a unit axis that is squeezed)."""
    a0, a1 = axes
    x_ndim, y_ndim = x.ndim, y.ndim
    if x_ndim == 2:
        x = x[:, None, :]
        a0 += 1
    if y_ndim == 2:
        y = y[:, :, None]
    x = np.moveaxis(x, a0, -1)
    y = np.moveaxis(y, a1, 1)
    mid, trail = x.shape[1:-1], y.shape[2:]
    b, k = x.shape[0], x.shape[-1]
    # explicit sizes, not -1: an empty batch cannot infer them
    m, n = int(np.prod(mid, dtype=np.int64)), int(np.prod(trail, dtype=np.int64))
    out = np.matmul(x.reshape(b, m, k), y.reshape(b, k, n)).reshape((b,) + mid + trail)
    if x_ndim == 2:
        out = out.reshape(out.shape[:1] + out.shape[2:])
    elif y_ndim == 2:
        out = out.reshape(out.shape[:-1])
    return out


class Dot(_Merge):
    """Per-sample dot product of two inputs over ``axes`` (an int for both, or a pair).

    ``normalize=True`` L2-normalizes both inputs along their axes first (cosine proximity).
    Input ``(batch, n)`` and ``(batch, n)`` with ``axes=1`` -> ``(batch, 1)``; in general the
    output has the first input's other axes, then the second's. No output mask.
    """

    _exact_inputs = 2

    def __init__(self, axes: Any, normalize: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(axes, int):
            if not isinstance(axes, (list, tuple)):
                raise TypeError(f"Invalid type for argument `axes`: it should be a list or an int. Received: axes={axes}")
            if len(axes) != 2:
                raise ValueError(f"Invalid format for argument `axes`: it should contain two elements. Received: axes={axes}")
            if not isinstance(axes[0], int) or not isinstance(axes[1], int):
                raise ValueError(f"Invalid format for argument `axes`: list elements should be integers. Received: axes={axes}")
        self.axes = axes
        self.normalize = bool(normalize)

    def _axes_for(self, ndim1: int, ndim2: int) -> List[int]:
        if isinstance(self.axes, int):
            return [self.axes % ndim1, self.axes % ndim2] if self.axes < 0 else [self.axes] * 2
        return [a % n if a < 0 else a for a, n in zip(self.axes, (ndim1, ndim2))]

    def _check_shapes(self, input_shape: Any) -> Any:
        if not _is_shape_list(input_shape) or len(input_shape) != 2:
            raise ValueError(f"A `Dot` layer should be called on a list of 2 inputs. Received: input_shape={input_shape} (layer {self.name!r})")
        shape1, shape2 = tuple(input_shape[0]), tuple(input_shape[1])
        if len(shape1) < 2 or len(shape2) < 2:
            raise ValueError(f"Dot layer {self.name!r}: cannot do batch_dot on inputs with rank < 2. Received inputs with shapes {shape1} and {shape2}.")
        axes = self._axes_for(len(shape1), len(shape2))
        if 0 in axes or axes[0] >= len(shape1) or axes[1] >= len(shape2):
            raise ValueError(f"Dot layer {self.name!r}: invalid axes={self.axes} for inputs of shapes {shape1} and {shape2} (the batch axis 0 cannot be reduced).")
        d1, d2 = shape1[axes[0]], shape2[axes[1]]
        if d1 is not None and d2 is not None and d1 != d2:
            raise ValueError(
                f"Dot layer {self.name!r}: incompatible input shapes: axis values {d1} (at axis {axes[0]}) != "
                f"{d2} (at axis {axes[1]}). Full input shapes: {shape1}, {shape2}"
            )
        return axes

    def call(self, inputs: Any) -> np.ndarray:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"A `Dot` layer should be called on exactly 2 inputs (layer {self.name!r}).")
        x1, x2 = inputs
        axes = self._check_shapes([x1.shape, x2.shape])
        if x1.shape[0] != x2.shape[0]:
            raise ValueError(f"Dot layer {self.name!r}: cannot do batch_dot on inputs with different batch sizes: {x1.shape} and {x2.shape}.")
        if self.normalize:
            x1 = _l2_normalize(x1, axes[0])
            x2 = _l2_normalize(x2, axes[1])
        return batch_dot(x1, x2, axes)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        axes = self._check_shapes(input_shape)
        shape1, shape2 = list(input_shape[0]), list(input_shape[1])
        shape1.pop(axes[0])
        shape2.pop(axes[1])
        shape2.pop(0)
        output_shape = shape1 + shape2
        if len(output_shape) == 1:
            output_shape += [1]
        return tuple(output_shape)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None

    def _dialect_conflict(self, target: int) -> None:
        return None  # no output mask in either Keras

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"axes": self.axes, "normalize": self.normalize})
        return config


def add(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Sequence[Any], axis: int = -1, **kwargs: Any) -> Any:
    """``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs: Sequence[Any], axes: Any, normalize: bool = False, **kwargs: Any) -> Any:
    """``Dot(axes=axes, normalize=normalize, **kwargs)(inputs)``."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)

register_builtins("layer", globals(), __all__)
