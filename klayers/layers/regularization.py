"""Regularization layers: Dropout and its spatial variants, ActivityRegularization."""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from klayers import regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec
from klayers.layers._args import check_rate, is_training
from klayers.ops.shapes import normalize_data_format
from klayers.serialization import register_builtins

__all__ = ["ActivityRegularization", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"]


class _SeededLayer(Layer):
    """A layer that draws random numbers: one NumPy Generator per layer, seeded by ``seed``
    (successive calls draw fresh numbers, as Keras's per-layer generator does)."""

    def __init__(self, seed: Optional[int] = None, **kwargs: Any):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"Layer {self.name}: `seed` must be an integer or None. Received: seed={seed!r}")
        self.seed = seed
        self._rng = np.random.default_rng(seed)


class Dropout(_SeededLayer):
    """Sets a fraction ``rate`` of the inputs to 0 in training, scaling the rest by ``1/(1-rate)``.

    Args:
        rate: fraction dropped, in [0, 1].
        noise_shape: the shape of the keep mask, broadcast against the input (``None`` entries
            take the input's size): ``(batch, 1, features)`` drops the same features at every step.
        seed: seeds the layer's generator.

    ``training`` falsy or None: the identity (a copy-free pass-through). Any rank.
    """

    def __init__(self, rate: float, noise_shape: Any = None, seed: Optional[int] = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.rate = check_rate(rate, f"{type(self).__name__} {self.name}")
        if noise_shape is not None:
            if not isinstance(noise_shape, (list, tuple)):
                raise ValueError(f"Layer {self.name}: `noise_shape` must be a tuple or None. Received: noise_shape={noise_shape!r}")
            noise_shape = type(noise_shape)(None if d is None else int(d) for d in noise_shape)
        self.noise_shape = noise_shape
        self.supports_masking = True

    def _get_noise_shape(self, inputs: np.ndarray) -> tuple:
        if self.noise_shape is None:
            return inputs.shape
        if len(self.noise_shape) != inputs.ndim:
            raise ValueError(
                f"Layer {self.name}: noise_shape={tuple(self.noise_shape)} has rank {len(self.noise_shape)}, "
                f"but the input has shape {inputs.shape}."
            )
        shape = tuple(s if d is None else d for d, s in zip(self.noise_shape, inputs.shape))
        for d, s in zip(shape, inputs.shape):
            if d != s and d != 1:
                raise ValueError(f"Layer {self.name}: noise_shape {shape} does not broadcast to the input shape {inputs.shape}.")
        return shape

    def call(self, inputs: np.ndarray, training: Any = None) -> np.ndarray:
        if self.rate == 0 or not is_training(training):
            return inputs
        x = inputs if inputs.dtype.kind == "f" else inputs.astype(self._dtype)
        if self.rate >= 1:
            return np.zeros_like(x)
        keep = self._rng.random(self._get_noise_shape(x)) >= self.rate
        scale = x.dtype.type(1.0 / (1.0 - self.rate))
        return x * (keep.astype(x.dtype) * scale)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def _inference_identity(self) -> bool:
        """Whether the layer returns its (dtype-converted) input unchanged at inference, read by
        the inference planner (which may then look through it); False for subclasses that
        change the maths."""
        return type(self).call is Dropout.call

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        noise_shape = list(self.noise_shape) if isinstance(self.noise_shape, tuple) else self.noise_shape
        config.update({"rate": self.rate, "noise_shape": noise_shape, "seed": self.seed})
        return config


class SpatialDropout1D(Dropout):
    """Dropout of whole feature maps of a ``(batch, steps, channels)`` input: the mask is
    ``(batch, 1, channels)``."""

    _rank = 1

    def __init__(self, rate: float, **kwargs: Any):
        data_format = kwargs.pop("data_format", None) if self._rank > 1 else None
        super().__init__(rate, **kwargs)
        if self._rank > 1:
            self.data_format = normalize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def _get_noise_shape(self, inputs: np.ndarray) -> tuple:
        ones = (1,) * self._rank
        if self._rank > 1 and self.data_format == "channels_first":
            return (inputs.shape[0], inputs.shape[1]) + ones
        return (inputs.shape[0],) + ones + (inputs.shape[-1],)

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3's spatial dropouts write a short config of their own: the dtype as a name, no
        ``trainable`` or ``noise_shape``, and ``data_format`` (2D and 3D)."""
        config = {k: v for k, v in config.items() if k not in ("trainable", "noise_shape")}
        config["dtype"] = self.dtype
        if self._rank > 1:
            config["data_format"] = self.data_format
        return config


class SpatialDropout2D(SpatialDropout1D):
    """Dropout of whole 2D feature maps (``data_format`` channels_last or channels_first).
    Keras 2 does not write ``data_format`` into the config; Keras 3 does (both are read)."""

    _rank = 2

    def __init__(self, rate: float, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(rate, data_format=data_format, **kwargs)


class SpatialDropout3D(SpatialDropout1D):
    """Dropout of whole 3D feature maps (``data_format`` channels_last or channels_first)."""

    _rank = 3

    def __init__(self, rate: float, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(rate, data_format=data_format, **kwargs)


# ---------------------------------------------------------------------------------------------
# Shape layers
# ---------------------------------------------------------------------------------------------


class ActivityRegularization(Layer):
    """The identity, adding ``l1 * sum|x| + l2 * sum(x^2)`` (per sample) to ``losses``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.supports_masking = True
        self.l1 = l1
        self.l2 = l2

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"l1": self.l1, "l2": self.l2})
        return config


register_builtins("layer", globals(), __all__)
