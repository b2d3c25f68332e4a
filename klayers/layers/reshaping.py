"""Spatial reshaping layers (tf-keras 2.21 semantics): Cropping1D/2D/3D, ZeroPadding1D/2D/3D,
UpSampling1D/2D/3D.

These move memory only: each is one vectorized NumPy slice, fill or gather (no per-pixel
Python loop). One N-D base class per family owns argument normalization, shapes and config;
the 1-D/2-D/3-D classes forward their rank.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from klayers.backend import arena, tape
from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec
from klayers.ops import shapes
from klayers.ops.common import contiguous
from klayers.serialization import register_builtins

__all__ = [
    "Cropping1D", "Cropping2D", "Cropping3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D",
]

_ORDINAL = ["1st", "2nd", "3rd"]
_AXIS_WORDS = {2: "(symmetric_height_{w}, symmetric_width_{w})", 3: "(symmetric_dim1_{w}, symmetric_dim2_{w}, symmetric_dim3_{w})"}


def _pairs(value: Any, rank: int, arg: str) -> Tuple[Tuple[int, int], ...]:
    """tf-keras's rule for ``cropping`` / ``padding``: an int (all sides), ``rank`` ints
    (symmetric per axis) or ``rank`` pairs ``(before, after)``."""
    if rank == 1:
        return (shapes.normalize_tuple(value, 2, arg, allow_zero=True),)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"`{arg}` must be >= 0. Received: {arg}={value}")
        return tuple((value, value) for _ in range(rank))
    if hasattr(value, "__len__"):
        if len(value) != rank:
            if rank == 2:
                raise ValueError(f"`{arg}` should have two elements. Received: {value}.")
            raise ValueError(f"`{arg}` should have 3 elements. Received: {value}.")
        return tuple(shapes.normalize_tuple(v, 2, f"{_ORDINAL[i]} entry of {arg}", allow_zero=True)
                     for i, v in enumerate(value))
    raise ValueError(
        f"`{arg}` should be either an int, a tuple of {rank} ints {_AXIS_WORDS[rank].format(w=arg[:4])}, "
        f"or a tuple of {rank} tuples of 2 ints. Received: {value}."
    )


class _Spatial(Layer):
    """Shared: the spatial axes of a rank-``rank`` layer in its data format."""

    rank = 1

    def _spatial_axes(self) -> Tuple[int, ...]:
        first = 2 if getattr(self, "data_format", "channels_last") == "channels_first" else 1
        return tuple(range(first, first + self.rank))

    def _check_rank(self, shape: Sequence[Any]) -> None:
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer \"{self.name}\" is incompatible with the layer: expected ndim={self.rank + 2}, "
                f"found ndim={len(shape)}. Full shape received: {tuple(shape)}"
            )


# ---------------------------------------------------------------------------------------------
class _Cropping(_Spatial):
    """Crops ``(before, after)`` positions off each spatial axis."""

    def __init__(self, rank: int, cropping: Any, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.rank = rank
        if rank > 1:
            self.data_format = shapes.normalize_data_format(data_format)
        self.cropping = _pairs(cropping, rank, "cropping")
        self.input_spec = InputSpec(ndim=rank + 2)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = list(input_shape)
        self._check_rank(shape)
        for axis, (a, b) in zip(self._spatial_axes(), self.cropping):
            if shape[axis] is not None:
                shape[axis] = shape[axis] - a - b
        return tuple(shape)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        index = [slice(None)] * inputs.ndim
        for axis, (a, b) in zip(self._spatial_axes(), self.cropping):
            if a + b >= inputs.shape[axis]:
                raise ValueError(
                    "Argument `cropping` must be greater than the input shape. Received: inputs.shape="
                    f"{inputs.shape}, and cropping={self._config_cropping()}"
                )
            index[axis] = slice(a, inputs.shape[axis] - b)
        return contiguous(inputs[tuple(index)])

    def _config_cropping(self) -> Any:
        return self.cropping[0] if self.rank == 1 else self.cropping

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["cropping"] = self._config_cropping()
        if self.rank > 1:
            config["data_format"] = self.data_format
        return config


class Cropping1D(_Cropping):
    """Crops ``(start, end)`` steps of ``(batch, steps, features)``."""

    def __init__(self, cropping: Any = (1, 1), **kwargs: Any):
        super().__init__(1, cropping, **kwargs)


class Cropping2D(_Cropping):
    """Crops ``((top, bottom), (left, right))`` rows and columns."""

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(2, cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Crops ``((d0, d1), (h0, h1), (w0, w1))`` along the three spatial axes."""

    def __init__(self, cropping: Any = ((1, 1), (1, 1), (1, 1)), data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(3, cropping, data_format, **kwargs)


# ---------------------------------------------------------------------------------------------
class _ZeroPadding(_Spatial):
    """Adds ``(before, after)`` zeros to each spatial axis."""

    def __init__(self, rank: int, padding: Any, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.rank = rank
        if rank > 1:
            self.data_format = shapes.normalize_data_format(data_format)
        self.padding = _pairs(padding, rank, "padding")
        self.input_spec = InputSpec(ndim=rank + 2)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = list(input_shape)
        self._check_rank(shape)
        for axis, (a, b) in zip(self._spatial_axes(), self.padding):
            if shape[axis] is not None:
                shape[axis] = shape[axis] + a + b
        return tuple(shape)

    def _pad_spec(self) -> Optional[Tuple[str, Tuple[Tuple[int, int], ...]]]:
        """``(data_format, ((before, after) per spatial axis))``: the zeros this layer adds, for
        the inference planner to fold into a "valid" convolution after it; None for subclasses."""
        if type(self).call is not _ZeroPadding.call:
            return None
        fmt = getattr(self, "data_format", "channels_last")
        return fmt, tuple((int(a), int(b)) for a, b in self.padding)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        # the borders zeroed and the interior copied (no zeroing of the whole output first)
        out = arena.empty(self.compute_output_shape(inputs.shape), inputs.dtype)
        index = [slice(None)] * inputs.ndim
        borders = []
        for axis, (a, _) in zip(self._spatial_axes(), self.padding):
            border = [slice(None)] * inputs.ndim
            for part in (slice(0, a), slice(a + inputs.shape[axis], None)):
                border[axis] = part
                borders.append(tuple(border))
            index[axis] = slice(a, a + inputs.shape[axis])
        tape.run(_pad_into, out, inputs, tuple(borders), tuple(index))
        return out

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["padding"] = self.padding[0] if self.rank == 1 else self.padding
        if self.rank > 1:
            config["data_format"] = self.data_format
        return config


class ZeroPadding1D(_ZeroPadding):
    """Pads ``(start, end)`` zero steps on ``(batch, steps, features)``."""

    def __init__(self, padding: Any = 1, **kwargs: Any):
        super().__init__(1, padding, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Pads ``((top, bottom), (left, right))`` zero rows and columns."""

    def __init__(self, padding: Any = (1, 1), data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(2, padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Pads ``((d0, d1), (h0, h1), (w0, w1))`` zeros along the three spatial axes."""

    def __init__(self, padding: Any = (1, 1, 1), data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(3, padding, data_format, **kwargs)


# ---------------------------------------------------------------------------------------------
_INTERPOLATIONS = ("area", "bicubic", "bilinear", "gaussian", "lanczos3", "lanczos5", "mitchellcubic", "nearest")
_SUPPORTED_INTERPOLATIONS = ("nearest", "bilinear")


def _bilinear_axis(x: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """TensorFlow's half-pixel-centre linear resize of one axis by an integer factor."""
    n = x.shape[axis]
    src = (np.arange(n * factor) + 0.5) / factor - 0.5
    base = np.floor(src)
    frac = (src - base).astype(x.dtype)
    lo = np.clip(base, 0, n - 1).astype(np.intp)
    hi = np.clip(np.ceil(src), 0, n - 1).astype(np.intp)
    shape = [1] * x.ndim
    shape[axis] = n * factor
    frac = frac.reshape(shape)
    a = np.take(x, lo, axis=axis)
    return a + (np.take(x, hi, axis=axis) - a) * frac


class _UpSampling(_Spatial):
    """Repeats each spatial position ``size`` times per axis (or bilinear, for UpSampling2D)."""

    def __init__(self, rank: int, size: Any, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.rank = rank
        if rank > 1:
            self.data_format = shapes.normalize_data_format(data_format)
            self.size = shapes.normalize_tuple(size, rank, "size")
        else:
            self.size = shapes.normalize_tuple(size, 1, "size")[0]
        self.input_spec = InputSpec(ndim=rank + 2)

    def _sizes(self) -> Tuple[int, ...]:
        return (self.size,) if self.rank == 1 else self.size

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = list(input_shape)
        self._check_rank(shape)
        for axis, f in zip(self._spatial_axes(), self._sizes()):
            if shape[axis] is not None:
                shape[axis] = shape[axis] * f
        return tuple(shape)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        if getattr(self, "interpolation", "nearest") == "bilinear":
            y = inputs
            for axis, f in zip(self._spatial_axes(), self._sizes()):
                y = _bilinear_axis(y, axis, f)
            return y.astype(inputs.dtype, copy=False)
        # nearest (integer factors): a broadcast view per axis, materialized once
        shape = inputs.shape
        axes = dict(zip(self._spatial_axes(), self._sizes()))
        new_shape, bcast = [], []
        for axis in range(inputs.ndim):
            new_shape.append(shape[axis])
            bcast.append(shape[axis])
            if axis in axes:
                new_shape.append(1)
                bcast.append(axes[axis])
        view = np.broadcast_to(contiguous(inputs).reshape(new_shape), bcast)
        return contiguous(view).reshape(self.compute_output_shape(shape))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["size"] = self.size
        if self.rank > 1:
            config["data_format"] = self.data_format
        return config


class UpSampling1D(_UpSampling):
    """Repeats each step ``size`` times: ``(batch, steps, f)`` -> ``(batch, steps * size, f)``."""

    def __init__(self, size: int = 2, **kwargs: Any):
        super().__init__(1, size, **kwargs)


class UpSampling2D(_UpSampling):
    """Upsamples rows and columns by ``size``; ``interpolation`` "nearest" (repeat) or
    "bilinear" (TensorFlow's half-pixel-centre resize)."""

    def __init__(self, size: Any = (2, 2), data_format: Optional[str] = None, interpolation: str = "nearest",
                 **kwargs: Any):
        super().__init__(2, size, data_format, **kwargs)
        interpolation = str(interpolation).lower()
        if interpolation not in _INTERPOLATIONS:  # tf-keras raises NotImplementedError; a config error is a ValueError here
            raise ValueError(
                f"Value not recognized for `interpolation`: {interpolation}. Supported values are: {list(_INTERPOLATIONS)}"
            )
        if interpolation not in _SUPPORTED_INTERPOLATIONS:
            raise ValueError(
                f"UpSampling2D {self.name}: klayers supports interpolation 'nearest' and 'bilinear'. "
                f"Received: interpolation={interpolation!r}"
            )
        self.interpolation = interpolation

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["interpolation"] = self.interpolation
        return config


class UpSampling3D(_UpSampling):
    """Repeats each position ``size`` times along the three spatial axes."""

    def __init__(self, size: Any = (2, 2, 2), data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(3, size, data_format, **kwargs)

register_builtins("layer", globals(), __all__)


def _pad_into(out: np.ndarray, x: np.ndarray, borders: Tuple[Tuple[slice, ...], ...], index: Tuple[slice, ...]) -> None:
    """ZeroPadding's work: ``out``'s ``borders`` zeroed, ``x`` copied into ``out[index]``."""
    for border in borders:
        out[border] = 0
    out[index] = x
