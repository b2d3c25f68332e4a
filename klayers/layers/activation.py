"""Advanced activation layers: ReLU, LeakyReLU, PReLU, ELU, ThresholdedReLU, Softmax
(tf-keras 2.21 semantics; Keras 3 configs are read too).

As in tf-keras, ``klayers.activations.get("ReLU")`` (any of these class names, or their
``{"class_name", "config"}``) returns a layer instance, so ``Dense(4, activation="LeakyReLU")``
works.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from klayers import activations, backend, constraints, initializers, ops, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec
from klayers.ops.activation import apply_activation
from klayers.ops.common import FLOATS
from klayers.ops.softmax import softmax as _softmax_op
from klayers.serialization import register_builtins

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax", "ThresholdedReLU"]


def _f32(value: Any) -> float:
    """tf-keras stores these arguments through ``cast_to_floatx``: a float32-rounded Python float."""
    return float(np.float32(value))


def _number(value: Any, what: str, layer: str) -> float:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{layer}: {what} must be a float. Received: {value!r}")
    return value


class _Elementwise(Layer):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


class LeakyReLU(_Elementwise):
    """``x`` for ``x >= 0``, ``alpha * x`` otherwise (Keras 3 calls ``alpha`` ``negative_slope``)."""

    def __init__(self, alpha: float = 0.3, **kwargs: Any):
        super().__init__(**kwargs)
        if alpha is None:
            raise ValueError(
                "The alpha value of a Leaky ReLU layer cannot be None, Expecting a float. "
                f"Received: {alpha} (layer {self.name!r})"
            )
        self.alpha = _f32(_number(alpha, "alpha", f"LeakyReLU {self.name!r}"))

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return backend.relu(inputs, alpha=self.alpha)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["alpha"] = self.alpha
        return config

    @classmethod
    def _from_keras3_config(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        config = dict(config)
        if "negative_slope" in config:
            config["alpha"] = config.pop("negative_slope")
        return config

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3 calls tf-keras's ``alpha`` ``negative_slope``."""
        config = dict(config)
        if "alpha" in config:
            config["negative_slope"] = config.pop("alpha")
        return config


class ReLU(_Elementwise):
    """tf-keras's rectifier: ``max_value`` for ``x >= max_value``, ``x`` for
    ``threshold <= x < max_value``, ``negative_slope * (x - threshold)`` otherwise.

    Raises:
        ValueError: a negative (or None) ``max_value`` / ``negative_slope`` / ``threshold``.
    """

    def __init__(self, max_value: Optional[float] = None, negative_slope: float = 0.0, threshold: float = 0.0,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0.0:
            raise ValueError(f"max_value of a ReLU layer cannot be a negative value. Received: {max_value} (layer {self.name!r})")
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError(f"negative_slope of a ReLU layer cannot be a negative value. Received: {negative_slope} (layer {self.name!r})")
        if threshold is None or threshold < 0.0:
            raise ValueError(f"threshold of a ReLU layer cannot be a negative value. Received: {threshold} (layer {self.name!r})")
        self.max_value = None if max_value is None else _f32(max_value)
        self.negative_slope = _f32(negative_slope)
        self.threshold = _f32(threshold)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        code = self._epilogue_code()
        if code is not None and isinstance(inputs, np.ndarray) and inputs.dtype in FLOATS:
            return apply_activation(inputs, code)  # the elementwise kernel: the same values
        return backend.relu(inputs, alpha=self.negative_slope, max_value=self.max_value, threshold=self.threshold)

    def _epilogue_code(self) -> Optional[int]:
        """The plain rectifier (no slope or threshold, ``max_value`` None or 6) as a kernel
        epilogue a preceding op can apply (read by the inference planner); None otherwise."""
        if type(self) is not ReLU or self.negative_slope != 0 or self.threshold != 0:
            return None
        if self.max_value is None:
            return ops.ACT_RELU
        return ops.ACT_RELU6 if float(self.max_value) == 6.0 else None

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"max_value": self.max_value, "negative_slope": self.negative_slope, "threshold": self.threshold})
        return config


class ELU(_Elementwise):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        if alpha is None:
            raise ValueError(f"Alpha of an ELU layer cannot be None, expecting a float. Received: {alpha} (layer {self.name!r})")
        self.alpha = _f32(_number(alpha, "alpha", f"ELU {self.name!r}"))

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return backend.elu(inputs, self.alpha)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


class ThresholdedReLU(_Elementwise):
    """``x`` for ``x > theta``, 0 otherwise (Keras 2 only)."""

    def __init__(self, theta: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        if theta is None:
            raise ValueError(f"Theta of a Thresholded ReLU layer cannot be None, expecting a float. Received: {theta} (layer {self.name!r})")
        if _number(theta, "theta", f"ThresholdedReLU {self.name!r}") < 0:
            raise ValueError(f"The theta value of a Thresholded ReLU layer should be >=0. Received: {theta} (layer {self.name!r})")
        self.theta = _f32(theta)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs if inputs.dtype.kind == "f" else inputs.astype(self._dtype)
        return x * (x > x.dtype.type(self.theta)).astype(x.dtype)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["theta"] = self.theta
        return config


class PReLU(_Elementwise):
    """Leaky ReLU with a learned slope per element: ``max(x, 0) - alpha * max(-x, 0)``.

    Args:
        alpha_initializer / _regularizer / _constraint: for the weight ``alpha``.
        shared_axes: axes (1-based, batch excluded) along which one slope is shared, e.g.
            ``[1, 2]`` for one slope per channel of a ``(batch, h, w, c)`` input.

    Weight: ``alpha`` of the input shape without batch, with the shared axes set to 1.
    """

    def __init__(self, alpha_initializer: Any = "zeros", alpha_regularizer: Any = None,
                 alpha_constraint: Any = None, shared_axes: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif not isinstance(shared_axes, (list, tuple)):
            self.shared_axes = [shared_axes]
        else:
            self.shared_axes = list(shared_axes)
        for a in self.shared_axes or []:
            if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 1:
                raise ValueError(f"PReLU {self.name!r}: `shared_axes` must hold axes >= 1 (the batch axis 0 cannot be shared). Received: shared_axes={shared_axes}")

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        param_shape = list(input_shape[1:])
        for i in self.shared_axes or []:
            if i >= len(input_shape):
                raise ValueError(f"PReLU {self.name!r}: shared axis {i} is out of range for inputs of shape {input_shape}.")
            param_shape[i - 1] = 1
        if any(d is None for d in param_shape):
            raise ValueError(f"PReLU {self.name!r}: the non-shared axes must be known. Received input_shape={input_shape}")
        self.alpha = self.add_weight(
            "alpha", shape=param_shape, initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer, constraint=self.alpha_constraint,
        )
        axes = {i: input_shape[i] for i in range(1, len(input_shape)) if self.shared_axes and i not in self.shared_axes}
        self.input_spec = InputSpec(ndim=len(input_shape), axes=axes)
        self.built = True

    def call(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs if inputs.dtype.kind == "f" else inputs.astype(self._dtype)
        alpha = self.alpha.value
        if x.shape[1:] != alpha.shape and np.broadcast_shapes(x.shape[1:], alpha.shape) != x.shape[1:]:
            raise ValueError(f"PReLU {self.name!r}: input shape {x.shape} does not match alpha of shape {alpha.shape}.")
        zero = x.dtype.type(0)
        return np.maximum(x, zero) - alpha.astype(x.dtype, copy=False) * np.maximum(-x, zero)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes,
            }
        )
        return config


class Softmax(_Elementwise):
    """Softmax over ``axis`` (an int or a list of axes), with an optional ``mask``.

    Masked positions (mask False / 0) get ``-1e9`` added before the softmax, so their
    probability is 0; ``robust_masking=True`` replaces them by ``-1e9`` instead (the mask is
    ``mask > 0.5`` when not boolean). The mask broadcasts against the input from the last axis.

    One axis runs in the compiled kernel (``klayers.ops.softmax``); several axes in NumPy. As
    tf-keras on CPU, a slice holding NaN or +inf comes out all NaN, and a -inf entry gets 0.
    """

    def __init__(self, axis: Any = -1, robust_masking: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
                raise ValueError(f"Softmax {self.name!r}: `axis` must be an int or a list of ints. Received: axis={axis!r}")
        elif isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Softmax {self.name!r}: `axis` must be an int or a list of ints. Received: axis={axis!r}")
        self.axis = axis
        # a one-element list is the same softmax as its int (tf-keras: backend.softmax(axis[0]))
        if isinstance(axis, (list, tuple)):
            self._axes: Any = int(axis[0]) if len(axis) == 1 else tuple(int(a) for a in axis)
        else:
            self._axes = int(axis)
        self.robust_masking = bool(robust_masking)
        self._where = f"Softmax {self.name!r}"

    def call(self, inputs: np.ndarray, mask: Any = None) -> np.ndarray:
        x = inputs if inputs.dtype.kind == "f" else inputs.astype(self._dtype)
        if mask is not None:
            mask = np.asarray(mask)
            if mask.ndim > x.ndim:
                raise ValueError(f"Softmax {self.name!r}: the mask (shape {mask.shape}) has more axes than the input (shape {x.shape}).")
            try:
                np.broadcast_shapes(mask.shape, x.shape)
            except ValueError as e:
                raise ValueError(f"Softmax {self.name!r}: the mask of shape {mask.shape} does not broadcast to the input of shape {x.shape}.") from e
            big_negative = x.dtype.type(-1e9)
            if self.robust_masking or mask.dtype == bool:
                keep = mask if mask.dtype == bool else mask > 0.5
                x = np.where(keep, x, big_negative)
            else:
                x = x + (x.dtype.type(1.0) - mask.astype(x.dtype)) * big_negative
        # the compiled kernel (one axis) or the NumPy reference (several axes, float16);
        # both check the axes against the input's rank
        return _softmax_op(x, self._axes, where=self._where)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        if self.robust_masking:
            config["robust_masking"] = True
        return config


# tf-keras's ``activations.get`` resolves these class names to layer instances.
for _cls in (ELU, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU):
    activations.KERAS2_OBJECTS.setdefault(_cls.__name__, _cls)
del _cls

register_builtins("layer", globals(), __all__)
