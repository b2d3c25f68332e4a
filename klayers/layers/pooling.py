"""Pooling layers: Max/Average pooling 1D-3D and their global forms, with Keras's aliases, and
Keras 3's adaptive pooling (Adaptive{Average,Max}Pooling1D-3D).

One N-D base class per kind (``Pooling`` for windows, ``GlobalPooling`` for reductions) owns
validation, output shapes and config; a concrete layer only fixes its rank, its reduction and
its defaults (which differ per rank in tf-keras: 1-D layers default to ``"channels_last"``,
2-D and 3-D ones to ``backend.image_data_format()``). The maths is in
:mod:`klayers.ops.pooling` (compiled kernels, TensorFlow's NaN and padding semantics).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec
from klayers.ops import pooling as pooling_ops
from klayers.ops import shapes
from klayers.serialization import register_builtins

__all__ = [
    "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
    "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "AvgPool1D", "AvgPool2D", "AvgPool3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
    "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "MaxPool1D", "MaxPool2D", "MaxPool3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
]


def _float_input(layer: Layer, inputs: np.ndarray) -> np.ndarray:
    """The engine casts floating inputs to the layer dtype; integers become it here."""
    return inputs if inputs.dtype.kind == "f" else inputs.astype(layer.dtype)


class Pooling(Layer):
    """Windowed pooling over ``rank`` spatial axes (the N-D base of Max/AveragePooling1D-3D).

    Args:
        pool_size: an int or ``rank`` ints, the window.
        strides: an int or ``rank`` ints; None means ``pool_size``. Zero is accepted in the config
            (as tf-keras does) but refused when the layer runs.
        padding: ``"valid"`` (no padding: ``floor((n - k) / s) + 1`` outputs) or ``"same"``
            (``ceil(n / s)`` outputs, TensorFlow's split with the larger half after), any case.
        data_format: ``"channels_last"`` ``(batch, *spatial, channels)`` or ``"channels_first"``
            ``(batch, channels, *spatial)``; None means ``backend.image_data_format()``.

    Subclasses set ``_rank`` and ``_mode`` (``MODE_MAX`` / ``MODE_AVG``).
    """

    _rank = 2
    _mode = pooling_ops.MODE_MAX

    def __init__(self, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(**kwargs)
        if strides is None:
            strides = pool_size
        self.pool_size = shapes.normalize_tuple(pool_size, self._rank, "pool_size")
        self.strides = shapes.normalize_tuple(strides, self._rank, "strides", allow_zero=True)
        self.padding = shapes.normalize_padding(padding, ("valid", "same"))
        self.data_format = shapes.normalize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def _where(self) -> str:
        return f"{type(self).__name__} {self.name}"

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return pooling_ops.pool(_float_input(self, inputs), self.pool_size, self.strides, self.padding,
                                self.data_format, self._mode, where=self._where())

    def _pad_fold(self) -> Optional[Tuple[str, Callable[[np.ndarray, Any], np.ndarray]]]:
        """``(data_format, run(x, padding))``: this "valid" max pooling of ``x`` zero-padded by
        explicit ``(before, after)`` pairs, for the inference planner to fold a ZeroPadding layer
        before it into (the padded input is never made); None otherwise or for subclasses."""
        if type(self).call is not Pooling.call or self.padding != "valid" or self._mode != pooling_ops.MODE_MAX:
            return None

        def run(x: np.ndarray, padding: Any) -> np.ndarray:
            return pooling_ops.pool(_float_input(self, x), self.pool_size, self.strides, padding,
                                    self.data_format, self._mode, where=self._where())
        return self.data_format, run

    def compute_output_shape(self, input_shape: Any) -> Tuple[Optional[int], ...]:
        input_shape = tuple(input_shape)
        if len(input_shape) != self._rank + 2:
            raise ValueError(f"{self._where()}: expected an input shape of rank {self._rank + 2}, got {input_shape}")
        if self.data_format == "channels_last":
            spatial = input_shape[1:-1]
        else:
            spatial = input_shape[2:]
        out = []
        for n, k, s in zip(spatial, self.pool_size, self.strides):
            if n is not None:
                pooling_ops.pool_geometry((n,), (k,), (s,), self.padding, self._where())
            out.append(shapes.conv_output_length(n, k, self.padding, s))
        if self.data_format == "channels_last":
            return (input_shape[0],) + tuple(out) + (input_shape[-1],)
        return (input_shape[0], input_shape[1]) + tuple(out)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({
            "pool_size": self.pool_size,
            "padding": self.padding,
            "strides": self.strides,
            "data_format": self.data_format,
        })
        return config


class GlobalPooling(Layer):
    """A max or average over every spatial axis (the N-D base of the Global*Pooling layers).

    Args:
        data_format: ``"channels_last"`` or ``"channels_first"``; None means
            ``backend.image_data_format()``.
        keepdims: keep the spatial axes with size 1 (as ``np.mean(..., keepdims=True)``).

    Input ``(batch, *spatial, channels)`` (or channels first) -> ``(batch, channels)``.
    """

    _rank = 2
    _mode = pooling_ops.MODE_MAX

    def __init__(self, data_format: Optional[str] = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = shapes.normalize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self._rank + 2)
        self.keepdims = keepdims

    def _reduction_axes(self) -> Sequence[int]:
        first = 1 if self.data_format == "channels_last" else 2
        return list(range(first, first + self._rank))

    def build(self, input_shape: Any) -> None:
        input_shape = list(input_shape)
        for axis in self._reduction_axes():
            if axis < len(input_shape) and input_shape[axis] == 0:
                raise ValueError(f"Incorrect input shape {input_shape} with dimension 0 at reduction axis {axis}.")
        self.built = True

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return pooling_ops.global_pool(_float_input(self, inputs), self.data_format, self._mode,
                                       bool(self.keepdims), where=f"{type(self).__name__} {self.name}")

    def _global_pool_spec(self) -> Optional[Tuple[int, str, bool]]:
        """``(mode, data_format, keepdims)`` of this global pooling (``klayers.ops.pooling``
        modes), read by the inference planner; None for subclasses that change the maths."""
        if type(self).call not in (GlobalPooling.call, GlobalAveragePooling1D.call):
            return None
        return self._mode, self.data_format, bool(self.keepdims)

    def compute_output_shape(self, input_shape: Any) -> Tuple[Optional[int], ...]:
        input_shape = tuple(input_shape)
        ones = (1,) * self._rank
        if self.data_format == "channels_last":
            return (input_shape[0],) + (ones if self.keepdims else ()) + (input_shape[-1],)
        return (input_shape[0], input_shape[1]) + (ones if self.keepdims else ())

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return config


# -- windowed ----------------------------------------------------------------------------------

class MaxPooling1D(Pooling):
    """Max over windows of ``pool_size`` steps (NaN never wins, as in TensorFlow).

    Input ``(batch, steps, features)`` (or ``(batch, features, steps)``) ->
    ``(batch, out_steps, features)``. Example::

        MaxPooling1D(2)(np.arange(8, dtype="float32").reshape(1, 4, 2))   # (1, 2, 2)
    """

    _rank = 1
    _mode = pooling_ops.MODE_MAX

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: Optional[str] = "channels_last", **kwargs: Any):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(Pooling):
    """Mean over windows of ``pool_size`` steps; ``"same"`` divides by the in-bounds count."""

    _rank = 1
    _mode = pooling_ops.MODE_AVG

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: Optional[str] = "channels_last", **kwargs: Any):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling2D(Pooling):
    """Max over ``pool_size`` windows of rows and columns (NaN never wins, as in TensorFlow).

    Input ``(batch, rows, cols, channels)`` (or channels first) ->
    ``(batch, out_rows, out_cols, channels)``. Example::

        MaxPooling2D(3, strides=2, padding="same")(np.ones((1, 112, 112, 64), "float32"))  # (1, 56, 56, 64)
    """

    _rank = 2
    _mode = pooling_ops.MODE_MAX

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling2D(Pooling):
    """Mean over ``pool_size`` windows of rows and columns; ``"same"`` divides by the in-bounds count."""

    _rank = 2
    _mode = pooling_ops.MODE_AVG

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling3D(Pooling):
    """Max over ``pool_size`` windows of three spatial axes (NaN never wins, as in TensorFlow)."""

    _rank = 3
    _mode = pooling_ops.MODE_MAX

    def __init__(self, pool_size: Any = (2, 2, 2), strides: Any = None, padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling3D(Pooling):
    """Mean over ``pool_size`` windows of three spatial axes; ``"same"`` divides by the in-bounds count."""

    _rank = 3
    _mode = pooling_ops.MODE_AVG

    def __init__(self, pool_size: Any = (2, 2, 2), strides: Any = None, padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


# -- global ------------------------------------------------------------------------------------

class GlobalMaxPooling1D(GlobalPooling):
    """Max over the steps (NaN propagates): ``(batch, steps, features)`` -> ``(batch, features)``."""

    _rank = 1
    _mode = pooling_ops.MODE_MAX

    def __init__(self, data_format: Optional[str] = "channels_last", keepdims: bool = False, **kwargs: Any):
        super().__init__(data_format=data_format, keepdims=keepdims, **kwargs)


class GlobalAveragePooling1D(GlobalPooling):
    """Mean over the steps; with a ``(batch, steps)`` mask, ``sum(x * mask) / sum(mask)`` (Keras's
    formula: a fully masked sample gives NaN). The output carries no mask."""

    _rank = 1
    _mode = pooling_ops.MODE_AVG
    _no_mask_from_nothing = True

    def __init__(self, data_format: Optional[str] = "channels_last", keepdims: bool = False, **kwargs: Any):
        super().__init__(data_format=data_format, keepdims=keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
        return pooling_ops.global_pool(_float_input(self, inputs), self.data_format, self._mode,
                                       bool(self.keepdims), mask=mask, where=f"{type(self).__name__} {self.name}")

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None


class GlobalMaxPooling2D(GlobalPooling):
    """Max over rows and columns (NaN propagates): ``(batch, rows, cols, channels)`` -> ``(batch, channels)``."""

    _rank = 2
    _mode = pooling_ops.MODE_MAX


class GlobalAveragePooling2D(GlobalPooling):
    """Mean over rows and columns: ``(batch, rows, cols, channels)`` -> ``(batch, channels)``."""

    _rank = 2
    _mode = pooling_ops.MODE_AVG


class GlobalMaxPooling3D(GlobalPooling):
    """Max over three spatial axes (NaN propagates)."""

    _rank = 3
    _mode = pooling_ops.MODE_MAX


class GlobalAveragePooling3D(GlobalPooling):
    """Mean over three spatial axes."""

    _rank = 3
    _mode = pooling_ops.MODE_AVG


# tf-keras exports these aliases too (same classes: configs say the full name).
MaxPool1D = MaxPooling1D
MaxPool2D = MaxPooling2D
MaxPool3D = MaxPooling3D
AvgPool1D = AveragePooling1D
AvgPool2D = AveragePooling2D
AvgPool3D = AveragePooling3D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalMaxPool3D = GlobalMaxPooling3D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalAvgPool3D = GlobalAveragePooling3D


# -- adaptive (Keras 3) --------------------------------------------------------------------------

class AdaptivePooling(Layer):
    """Keras 3's adaptive pooling: a max or average over ``output_size`` bins per spatial axis,
    whatever the input size (the N-D base of Adaptive{Average,Max}Pooling1D-3D).

    Output ``i`` of an axis of ``n`` values pools ``[floor(i * n / out), ceil((i + 1) * n / out))``
    (PyTorch's bins; an output size above ``n`` repeats values). See
    :func:`klayers.ops.pooling.adaptive_pool`.

    Args:
        output_size: an int (the same for every spatial axis) or ``rank`` ints.
        data_format: ``"channels_last"`` ``(batch, *spatial, channels)`` or ``"channels_first"``;
            None means ``backend.image_data_format()``.

    Input ``(batch, *spatial, channels)`` -> ``(batch, *output_size, channels)``.
    Example: ``AdaptiveAveragePooling2D(7)`` on ``(1, 100, 80, 3)`` gives ``(1, 7, 7, 3)``.
    """

    _rank = 2
    _mode = pooling_ops.MODE_AVG

    def __init__(self, output_size: Any, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(**kwargs)
        where = f"{type(self).__name__} {self.name!r}"
        if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
            sizes: Tuple[int, ...] = (int(output_size),) * self._rank
        elif (isinstance(output_size, (tuple, list)) and len(output_size) == self._rank
              and all(isinstance(o, (int, np.integer)) and not isinstance(o, bool) for o in output_size)):
            sizes = tuple(int(o) for o in output_size)
        else:
            raise TypeError(f"{where}: `output_size` must be an integer or a tuple of {self._rank} integers. "
                            f"Received: output_size={output_size!r}")
        if any(o < 1 for o in sizes):
            raise ValueError(f"{where}: `output_size` must be positive. Received: output_size={output_size!r}")
        self.output_size = sizes
        self.data_format = shapes.normalize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        return pooling_ops.adaptive_pool(_float_input(self, inputs), self.output_size, self.data_format, self._mode,
                                         where=f"{type(self).__name__} {self.name}")

    def compute_output_shape(self, input_shape: Any) -> Tuple[Optional[int], ...]:
        input_shape = tuple(input_shape)
        if len(input_shape) != self._rank + 2:
            raise ValueError(f"{type(self).__name__} {self.name}: expected an input shape of rank {self._rank + 2}, "
                             f"got {input_shape}")
        if self.data_format == "channels_last":
            return (input_shape[0],) + self.output_size + (input_shape[-1],)
        return (input_shape[0], input_shape[1]) + self.output_size

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"output_size": self.output_size, "data_format": self.data_format})
        return config


class AdaptiveAveragePooling1D(AdaptivePooling):
    """Average over ``output_size`` adaptive bins of the steps: ``(batch, steps, features)`` ->
    ``(batch, output_size, features)`` (see :class:`AdaptivePooling`)."""

    _rank = 1


class AdaptiveMaxPooling1D(AdaptivePooling):
    """Max over ``output_size`` adaptive bins of the steps (see :class:`AdaptivePooling`)."""

    _rank = 1
    _mode = pooling_ops.MODE_MAX


class AdaptiveAveragePooling2D(AdaptivePooling):
    """Average over ``output_size`` adaptive bins of rows and columns (see :class:`AdaptivePooling`)."""

    _rank = 2


class AdaptiveMaxPooling2D(AdaptivePooling):
    """Max over ``output_size`` adaptive bins of rows and columns (see :class:`AdaptivePooling`)."""

    _rank = 2
    _mode = pooling_ops.MODE_MAX


class AdaptiveAveragePooling3D(AdaptivePooling):
    """Average over ``output_size`` adaptive bins of the three spatial axes (see :class:`AdaptivePooling`)."""

    _rank = 3


class AdaptiveMaxPooling3D(AdaptivePooling):
    """Max over ``output_size`` adaptive bins of the three spatial axes (see :class:`AdaptivePooling`)."""

    _rank = 3
    _mode = pooling_ops.MODE_MAX

register_builtins("layer", globals(), __all__)
