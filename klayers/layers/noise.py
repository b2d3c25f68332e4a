"""Noise layers: GaussianNoise, GaussianDropout, AlphaDropout. The identity at inference; with
``training=True`` they draw from the layer's seeded NumPy generator (tf-keras 2.21 semantics)."""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from klayers.layers._args import check_rate, is_training
from klayers.layers.regularization import _SeededLayer
from klayers.serialization import register_builtins

__all__ = ["AlphaDropout", "GaussianDropout", "GaussianNoise"]

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _float(inputs: np.ndarray, dtype: str) -> np.ndarray:
    return inputs if inputs.dtype.kind == "f" else inputs.astype(dtype)


class GaussianNoise(_SeededLayer):
    """Adds zero-centred Gaussian noise of standard deviation ``stddev`` in training."""

    def __init__(self, stddev: float, seed: Optional[int] = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float, np.integer, np.floating)) or not stddev >= 0:
            raise ValueError(f"GaussianNoise {self.name!r}: `stddev` must be a non-negative float. Received: stddev={stddev!r}")
        self.supports_masking = True
        self.stddev = stddev

    def call(self, inputs: np.ndarray, training: Any = None) -> np.ndarray:
        if not is_training(training):
            return inputs
        x = _float(inputs, self._dtype)
        noise = self._rng.standard_normal(x.shape, dtype=x.dtype if x.dtype in (np.float32, np.float64) else np.float64)
        return x + (noise * self.stddev).astype(x.dtype, copy=False)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config


class GaussianDropout(_SeededLayer):
    """Multiplies by Gaussian noise of mean 1 and standard deviation ``sqrt(rate / (1 - rate))``
    in training (only for ``0 < rate < 1``; otherwise the identity)."""

    def __init__(self, rate: float, seed: Optional[int] = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.rate = check_rate(rate, f"GaussianDropout {self.name!r}")
        self.supports_masking = True

    def call(self, inputs: np.ndarray, training: Any = None) -> np.ndarray:
        if not (0 < self.rate < 1 and is_training(training)):
            return inputs
        x = _float(inputs, self._dtype)
        stddev = np.sqrt(self.rate / (1.0 - self.rate))
        noise = self._rng.standard_normal(x.shape) * stddev + 1.0
        return x * noise.astype(x.dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


class AlphaDropout(_SeededLayer):
    """Dropout that keeps a SELU network's mean and variance: in training, dropped units are set
    to ``-alpha * scale`` of SELU, then the result is ``a * x + b`` with
    ``a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5`` and ``b = -a * alpha_p * rate``.
    ``noise_shape`` (the keep mask's shape) broadcasts against the input. Identity unless
    ``0 < rate < 1``. Keras does not write ``noise_shape`` into the config."""

    def __init__(self, rate: float, noise_shape: Any = None, seed: Optional[int] = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.rate = check_rate(rate, f"AlphaDropout {self.name!r}")
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.supports_masking = True

    def call(self, inputs: np.ndarray, training: Any = None) -> np.ndarray:
        if not (0 < self.rate < 1 and is_training(training)):
            return inputs
        x = _float(inputs, self._dtype)
        shape = x.shape if not self.noise_shape else tuple(s if d is None else d for d, s in zip(self.noise_shape, x.shape))
        if len(shape) != x.ndim or np.broadcast_shapes(shape, x.shape) != x.shape:
            raise ValueError(f"AlphaDropout {self.name!r}: noise_shape {self.noise_shape} does not broadcast to the input shape {x.shape}.")
        rate = self.rate
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        kept = (self._rng.random(shape) >= rate).astype(x.dtype)
        a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * rate
        t = x.dtype.type
        y = x * kept + t(alpha_p) * (t(1) - kept)
        return t(a) * y + t(b)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3 writes ``noise_shape`` (tf-keras does not)."""
        config = dict(config)
        config["noise_shape"] = None if self.noise_shape is None else list(self.noise_shape)
        return config


register_builtins("layer", globals(), __all__)
