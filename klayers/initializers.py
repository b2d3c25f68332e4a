"""Weight initializers, as ``tf_keras.initializers`` (tf-keras 2.21), over NumPy.

``initializer(shape, dtype=None)`` returns a NumPy array of ``shape``; ``dtype`` defaults to
:func:`klayers.backend.floatx` (float32). Random initializers draw with NumPy's
``Generator``: the same ``seed`` gives the same values, and, as tf-keras 2.21's stateless
initializers, one instance returns the same values on every call (an unseeded instance picks
its seed once, when it is created, and warns when called again).

The values are not bit-identical to TensorFlow's (a different random generator); the
distributions are the same: ``VarianceScaling`` computes fans as tf-keras (``(..., in, out)``
kernels: ``fan_in = in * prod(receptive field)``) and corrects the truncated normal's stddev by
``0.87962566103423978``. Configs (``get_config``) equal tf-keras's, and Keras 3 configs
(``input_axes`` / ``output_axes``, seeds) are accepted.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from klayers import backend
from klayers.serialization import (
    deserialize_keras_object,
    serialize_typed_object,
)

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "constant",
    "deserialize",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "lecun_normal",
    "lecun_uniform",
    "ones",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "serialize",
    "truncated_normal",
    "variance_scaling",
    "zeros",
]

Shape = Sequence[int]
_TRUNCATION_STDDEV_CORRECTION = 0.87962566103423978  # stddev of N(0, 1) truncated to [-2, 2]


def _dtype(dtype: Any) -> np.dtype:
    if dtype is None:
        dtype = backend.floatx()
    if dtype == "bfloat16":
        dtype = "float32"
    return np.dtype(getattr(dtype, "name", dtype) if not isinstance(dtype, np.dtype) else dtype)


def _float_dtype(dtype: Any) -> np.dtype:
    dt = _dtype(dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"Expected floating point type, got {dt}.")
    return dt


def _shape(shape: Shape) -> Tuple[int, ...]:
    return tuple(int(d) for d in shape)


def _seed_value(seed: Any) -> Optional[int]:
    """A Keras 3 config may store the seed as a serialized ``SeedGenerator``."""
    if isinstance(seed, dict):
        inner = seed.get("config", seed)
        seed = inner.get("seed") if isinstance(inner, dict) else None
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` argument should be an integer. Received: seed={seed}")
    return None if seed is None else int(seed)


def _compute_fans(shape: Shape) -> Tuple[int, int]:
    """``(fan_in, fan_out)`` as tf-keras: scalars 1, vectors ``n``, matrices ``(in, out)``,
    conv kernels ``(*spatial, in, out)`` -> ``(in * prod(spatial), out * prod(spatial))``."""
    shape = _shape(shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: subclasses implement ``__call__(shape, dtype=None, **kwargs)`` returning a
    NumPy array, and ``get_config()`` when they take arguments."""

    def __call__(self, shape: Shape, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError("Initializer subclasses must implement the `__call__()` method.")

    def get_config(self) -> Dict[str, Any]:
        """The constructor arguments as a JSON-able dict."""
        return {}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> Initializer:
        """Instantiate from :meth:`get_config`'s output (a ``dtype`` key is ignored)."""
        config = dict(config)
        config.pop("dtype", None)
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _check_kwargs(kwargs: Mapping[str, Any]) -> None:
    allowed = ["partition_shape", "partition_offset", "layout"]
    invalid = [k for k in kwargs if k not in allowed]
    if invalid:
        raise TypeError(f"Unknown keyword arguments: {invalid}. Allowed keyword arguments: {allowed}.")


class Zeros(Initializer):
    """All zeros (any numeric or boolean dtype)."""

    def __call__(self, shape: Shape, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        _check_kwargs(kwargs)
        return np.zeros(_shape(kwargs.get("partition_shape", shape)), dtype=_dtype(dtype))


class Ones(Initializer):
    """All ones (any numeric or boolean dtype)."""

    def __call__(self, shape: Shape, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        _check_kwargs(kwargs)
        return np.ones(_shape(kwargs.get("partition_shape", shape)), dtype=_dtype(dtype))


class Constant(Initializer):
    """Every element equal to ``value`` (a scalar; an array of the right size is reshaped)."""

    def __init__(self, value: Any = 0):
        self.value = value

    def __call__(self, shape: Shape, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        _check_kwargs(kwargs)
        shape = _shape(kwargs.get("partition_shape", shape))
        value = np.asarray(self.value, dtype=_dtype(dtype))
        if value.size == int(np.prod(shape)) and value.ndim > 0:
            return value.reshape(shape).copy()
        return np.full(shape, value, dtype=_dtype(dtype))

    def get_config(self) -> Dict[str, Any]:
        return {"value": self.value}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> Constant:
        config = dict(config)
        config.pop("dtype", None)
        if isinstance(config.get("value"), dict):
            config["value"] = deserialize_keras_object(config["value"])
        return cls(**config)


class _RandomInitializer(Initializer):
    """Holds the seed; one instance draws the same values on every call (stateless)."""

    def __init__(self, seed: Any = None):
        self.seed = _seed_value(seed)
        self._draw_seed = self.seed if self.seed is not None else int(backend.random_generator().integers(2**31 - 1))
        self._used = False

    def _rng(self) -> np.random.Generator:
        if self._used and self.seed is None:
            warnings.warn(
                f"The initializer {type(self).__name__} is unseeded and being called multiple "
                "times, which will return identical values each time (even if the initializer "
                "is unseeded). Please update your code to provide a seed to the initializer, or "
                "avoid using the same initializer instance more than once."
            )
        self._used = True
        return np.random.default_rng(self._draw_seed)


def _truncated(rng: np.random.Generator, shape: Tuple[int, ...]) -> np.ndarray:
    z = rng.standard_normal(shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return z


def _uniform(rng: np.random.Generator, shape: Tuple[int, ...], lo: float, hi: float, dt: np.dtype) -> np.ndarray:
    out = rng.uniform(lo, hi, size=shape).astype(dt, copy=False)
    if hi > lo:  # float rounding may land on hi; the range is half-open as in TF
        np.minimum(out, np.nextafter(dt.type(hi), dt.type(lo)), out=out)
    return out


class RandomUniform(_RandomInitializer):
    """Uniform values in ``[minval, maxval)``; integer dtypes draw integers."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: Optional[int] = None):
        self.minval = minval
        self.maxval = maxval
        super().__init__(seed)

    def __call__(self, shape: Shape, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        _check_kwargs(kwargs)
        dt = _dtype(dtype)
        shape = _shape(kwargs.get("partition_shape", shape))
        rng = self._rng()
        if np.issubdtype(dt, np.integer):
            return rng.integers(int(self.minval), int(self.maxval), size=shape).astype(dt)
        if not np.issubdtype(dt, np.floating):
            raise ValueError(f"Expected float or integer dtype, got {dt}.")
        return _uniform(rng, shape, self.minval, self.maxval, dt)

    def get_config(self) -> Dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(_RandomInitializer):
    """Normal values with ``mean`` and ``stddev``."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Optional[int] = None):
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed)

    def __call__(self, shape: Shape, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        _check_kwargs(kwargs)
        dt = _float_dtype(dtype)
        z = self._rng().standard_normal(_shape(kwargs.get("partition_shape", shape)))
        return (z * self.stddev + self.mean).astype(dt, copy=False)

    def get_config(self) -> Dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(_RandomInitializer):
    """Normal values with ``mean`` and ``stddev`` (before truncation); values more than two
    ``stddev`` from the mean are re-drawn."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Optional[int] = None):
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed)

    def __call__(self, shape: Shape, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        _check_kwargs(kwargs)
        dt = _float_dtype(dtype)
        z = _truncated(self._rng(), _shape(kwargs.get("partition_shape", shape)))
        return (z * self.stddev + self.mean).astype(dt, copy=False)

    def get_config(self) -> Dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(_RandomInitializer):
    """Values with variance ``scale / n``, ``n`` = fan_in, fan_out or their mean (``mode``).

    ``distribution``: ``"truncated_normal"`` (stddev ``sqrt(scale / n) / 0.8796...``, cut at
    2 stddev), ``"untruncated_normal"`` (stddev ``sqrt(scale / n)``) or ``"uniform"``
    (``[-limit, limit)``, ``limit = sqrt(3 scale / n)``); ``"normal"`` means truncated.
    ``input_axes`` / ``output_axes`` (Keras 3) name the axes whose product is the fan.

    Raises:
        ValueError: ``scale <= 0``, or an unknown ``mode`` / ``distribution``.
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: Optional[int] = None,
        input_axes: Optional[Sequence[int]] = None,
        output_axes: Optional[Sequence[int]] = None,
    ):
        if scale <= 0.0:
            raise ValueError(f"`scale` must be positive float. Received: scale={scale}.")
        allowed_modes = {"fan_in", "fan_out", "fan_avg"}
        if mode not in allowed_modes:
            raise ValueError(f"Invalid `mode` argument: {mode}. Please use one of the {allowed_modes}.")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        allowed = {"uniform", "truncated_normal", "untruncated_normal"}
        if distribution not in allowed:
            raise ValueError(f"Invalid `distribution` argument: {distribution}.Allowed distributions: {allowed}.")
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.input_axes = input_axes
        self.output_axes = output_axes
        super().__init__(seed)

    def _fans(self, shape: Tuple[int, ...]) -> Tuple[int, int]:
        if self.input_axes is not None and self.output_axes is not None:
            return (int(np.prod([shape[a] for a in self.input_axes])), int(np.prod([shape[a] for a in self.output_axes])))
        return _compute_fans(shape)

    def __call__(self, shape: Shape, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        _check_kwargs(kwargs)
        dt = _float_dtype(dtype)
        shape = _shape(kwargs.get("partition_shape", shape))
        fan_in, fan_out = self._fans(shape)
        scale = self.scale
        if self.mode == "fan_in":
            scale /= max(1.0, fan_in)
        elif self.mode == "fan_out":
            scale /= max(1.0, fan_out)
        else:
            scale /= max(1.0, (fan_in + fan_out) / 2.0)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(scale) / _TRUNCATION_STDDEV_CORRECTION
            return (_truncated(rng, shape) * stddev).astype(dt, copy=False)
        if self.distribution == "untruncated_normal":
            return (rng.standard_normal(shape) * math.sqrt(scale)).astype(dt, copy=False)
        limit = math.sqrt(3.0 * scale)
        return _uniform(rng, shape, -limit, limit, dt)

    def _axes_config(self) -> Dict[str, Any]:
        if self.input_axes is None and self.output_axes is None:
            return {}
        return {"input_axes": self.input_axes, "output_axes": self.output_axes}

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3 always writes the fan axes (None when unset)."""
        return {**config, "input_axes": self.input_axes, "output_axes": self.output_axes}

    def get_config(self) -> Dict[str, Any]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed, **self._axes_config()}


class Orthogonal(_RandomInitializer):
    """An orthogonal matrix times ``gain`` (QR of a normal matrix, signs fixed by ``diag(R)``).
    Shapes of rank > 2 are flattened to ``(prod(shape[:-1]), shape[-1])``; a wide matrix gets
    orthonormal rows, a tall one orthonormal columns.

    Raises:
        ValueError: ``shape`` has rank < 2.
    """

    def __init__(self, gain: float = 1.0, seed: Optional[int] = None):
        self.gain = gain
        super().__init__(seed)

    def __call__(self, shape: Shape, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        _check_kwargs(kwargs)
        if "partition_shape" in kwargs or "partition_offset" in kwargs:
            raise ValueError("Orthogonal initializer doesn't support partition-related arguments.")
        dt = _float_dtype(dtype)
        shape = _shape(shape)
        if len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        num_rows = int(np.prod(shape[:-1]))
        num_cols = shape[-1]
        a = self._rng().standard_normal((max(num_rows, num_cols), min(num_rows, num_cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if num_rows < num_cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dt, copy=False)

    def get_config(self) -> Dict[str, Any]:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """``gain`` times the identity matrix (``np.eye(rows, cols)`` for rectangular shapes).

    Raises:
        ValueError: ``shape`` is not 2-D.
    """

    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def __call__(self, shape: Shape, dtype: Any = None, **kwargs: Any) -> np.ndarray:
        _check_kwargs(kwargs)
        dt = _float_dtype(dtype)
        shape = _shape(shape)
        if len(shape) != 2:
            raise ValueError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        return (self.gain * np.eye(*shape)).astype(dt, copy=False)

    def get_config(self) -> Dict[str, Any]:
        return {"gain": self.gain}


class _FixedVarianceScaling(VarianceScaling):
    _scale = 1.0
    _mode = "fan_in"
    _distribution = "truncated_normal"

    def __init__(self, seed: Optional[int] = None, input_axes: Optional[Sequence[int]] = None, output_axes: Optional[Sequence[int]] = None):
        super().__init__(self._scale, self._mode, self._distribution, seed, input_axes, output_axes)

    def get_config(self) -> Dict[str, Any]:
        return {"seed": self.seed, **self._axes_config()}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform in ``[-limit, limit)``, ``limit = sqrt(6 / (fan_in + fan_out))``."""

    _mode, _distribution = "fan_avg", "uniform"


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal, stddev ``sqrt(2 / (fan_in + fan_out))`` after truncation."""

    _mode, _distribution = "fan_avg", "truncated_normal"


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal, stddev ``sqrt(1 / fan_in)`` after truncation."""

    _mode, _distribution = "fan_in", "truncated_normal"


class LecunUniform(_FixedVarianceScaling):
    """Uniform in ``[-limit, limit)``, ``limit = sqrt(3 / fan_in)``."""

    _mode, _distribution = "fan_in", "uniform"


class HeNormal(_FixedVarianceScaling):
    """Truncated normal, stddev ``sqrt(2 / fan_in)`` after truncation."""

    _scale, _mode, _distribution = 2.0, "fan_in", "truncated_normal"


class HeUniform(_FixedVarianceScaling):
    """Uniform in ``[-limit, limit)``, ``limit = sqrt(6 / fan_in)``."""

    _scale, _mode, _distribution = 2.0, "fan_in", "uniform"


_CLASSES = [
    Initializer, Zeros, Ones, Constant, RandomUniform, RandomNormal, TruncatedNormal,
    VarianceScaling, Orthogonal, Identity, GlorotUniform, GlorotNormal, LecunNormal,
    LecunUniform, HeNormal, HeUniform,
]  # fmt: skip
for _cls in _CLASSES:
    _cls._keras_module = "keras.initializers"

# Functional aliases, as tf-keras exposes them (classes under snake_case names).
zeros = Zeros
ones = Ones
constant = Constant
random_uniform = RandomUniform
random_normal = RandomNormal
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
orthogonal = Orthogonal
identity = Identity
glorot_uniform = GlorotUniform
glorot_normal = GlorotNormal
lecun_normal = LecunNormal
lecun_uniform = LecunUniform
he_normal = HeNormal
he_uniform = HeUniform


def _snake(name: str) -> str:
    import re

    return re.sub("([a-z0-9])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)).lower()


#: Every name ``tf_keras.initializers.get`` accepts, plus Keras 3's compatibility names.
ALL_OBJECTS: Dict[str, type] = {}
for _cls in _CLASSES:
    ALL_OBJECTS[_cls.__name__] = _cls
    ALL_OBJECTS[_snake(_cls.__name__)] = _cls
for _cls in _CLASSES[1:]:
    ALL_OBJECTS[_cls.__name__ + "V2"] = _cls
for _name in ("glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform"):
    ALL_OBJECTS[_name + "V2"] = ALL_OBJECTS[_name]
ALL_OBJECTS.update(
    normal=RandomNormal,
    uniform=RandomUniform,
    one=Ones,
    zero=Zeros,
    IdentityInitializer=Identity,
    OrthogonalInitializer=Orthogonal,
)


def serialize(initializer: Optional[Initializer], use_legacy_format: bool = False) -> Optional[Dict[str, Any]]:
    """``{"module": "keras.initializers", "class_name", "config", "registered_name": None}``
    for a built-in initializer (custom ones carry their module and registered name); None
    for None. ``use_legacy_format=True`` gives ``{"class_name", "config"}``."""
    return serialize_typed_object(initializer, Initializer, "initializers", use_legacy_format)


def deserialize(
    config: Union[str, Dict[str, Any]],
    custom_objects: Optional[Mapping[str, Any]] = None,
    use_legacy_format: bool = False,
) -> Any:
    """The initializer a config describes (either form, Keras 2 or 3).

    Raises:
        ValueError: unknown class name (the message names it).
    """
    return deserialize_keras_object(
        config, module_objects=ALL_OBJECTS, custom_objects=custom_objects, printable_module_name="initializer"
    )


def get(identifier: Union[None, str, Dict[str, Any], Callable, type]) -> Any:
    """Resolve an initializer identifier: None gives None, a name (``"glorot_uniform"``,
    ``"GlorotUniform"``, ``"zeros"``, ``"normal"`` ...) a default instance, a config dict its
    instance, a class an instance of it; other callables ``f(shape, dtype=None)`` pass through.

    Raises:
        ValueError: unknown name or an identifier that is none of these.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return deserialize({"class_name": identifier, "config": {}})
    if callable(identifier):
        if isinstance(identifier, type):
            return identifier()
        return identifier
    raise ValueError(f"Could not interpret initializer identifier: {identifier}")
