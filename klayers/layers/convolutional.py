"""Convolution layers (tf-keras 2.21 semantics): Conv1D/2D/3D, SeparableConv1D/2D,
DepthwiseConv1D/2D/3D, Conv1D/2D/3DTranspose.

One N-D base class per family (as Keras 3's ``base_conv.py``): ``Conv(rank)``,
``DepthwiseConv(rank)``, ``SeparableConv(rank)``, ``ConvTranspose(rank)`` own validation, build,
config and the call into :mod:`klayers.ops.conv`; ``Conv2D`` only forwards ``rank=2``.
Weights have Keras's shapes and order, so ``set_weights(keras_layer.get_weights())`` works:

- Conv: ``kernel (*kernel_size, cin // groups, filters)``, ``bias (filters,)``
- DepthwiseConv: ``depthwise_kernel (*kernel_size, cin, depth_multiplier)``, ``bias (cin * depth_multiplier,)``
- SeparableConv: ``depthwise_kernel (*kernel_size, cin, depth_multiplier)``,
  ``pointwise_kernel (1, ..., cin * depth_multiplier, filters)``, ``bias (filters,)``
- ConvTranspose: ``kernel (*kernel_size, filters, cin)``, ``bias (filters,)``

``DepthwiseConv3D`` has no tf-keras counterpart: it is the 3-D analogue of DepthwiseConv2D, equal
to Keras's ``Conv3D(groups=channels, filters=channels * depth_multiplier)`` with that kernel
reshaped from ``(*k, 1, channels * depth_multiplier)`` to ``(*k, channels, depth_multiplier)``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from klayers import activations, constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec
from klayers.engine.plan import FoldableOp
from klayers.layers._args import weight_args_config
from klayers.ops import conv as conv_ops
from klayers.ops import shapes
from klayers.ops.normalization import fold_affine
from klayers.serialization import register_builtins

__all__ = [
    "Conv1D", "Conv2D", "Conv3D",
    "SeparableConv1D", "SeparableConv2D",
    "DepthwiseConv1D", "DepthwiseConv2D", "DepthwiseConv3D",
    "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "Convolution1D", "Convolution2D", "Convolution3D",
    "SeparableConvolution1D", "SeparableConvolution2D",
    "Convolution2DTranspose", "Convolution3DTranspose",
]


def _depth_multiplier(value: Any) -> int:
    """The ``depth_multiplier`` of depthwise and separable convolutions, validated."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            "Invalid value for argument `depth_multiplier`. Expected a strictly positive integer. "
            f"Received depth_multiplier={value}"
        )
    return int(value)

class Conv(Layer):
    """N-D convolution ``activation(conv(inputs, kernel) + bias)`` (Keras's ``Conv`` base).

    Args:
        rank: 1, 2 or 3.
        filters: number of output channels (> 0).
        kernel_size / strides / dilation_rate: an int or ``rank`` ints; ``strides > 1`` together
            with ``dilation_rate > 1`` is refused, as in tf-keras.
        padding: "valid", "same", or "causal" (Conv1D and SeparableConv1D only).
        data_format: "channels_last" ``(batch, *spatial, channels)`` or "channels_first"
            ``(batch, channels, *spatial)``; None means ``backend.image_data_format()``.
        groups: channels and filters are split into ``groups`` independent convolutions.
        activation, use_bias, *_initializer, *_regularizer, *_constraint: as in Keras.

    Output size per spatial axis: ``ceil((n - k_eff + 1) / s)`` ("valid") or ``ceil(n / s)``
    ("same", "causal") with ``k_eff = k + (k - 1)(d - 1)``; a non-positive size raises.
    """

    _causal_ok = False

    def __init__(
        self,
        rank: int,
        filters: Optional[int],
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: Optional[str] = None,
        dilation_rate: Any = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        kwargs.pop("conv_op", None)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        if isinstance(filters, float) and filters.is_integer():  # tf-keras takes 8.0; not inf/nan/8.5
            filters = int(filters)
        if filters is not None and (isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters <= 0):
            raise ValueError(
                "Invalid value for argument `filters`. Expected a strictly positive value. "
                f"Received filters={filters}."
            )
        self.filters = None if filters is None else int(filters)
        self.groups = int(groups or 1)
        if self.groups < 1:
            raise ValueError(f"Invalid value for argument `groups`. Expected a positive integer. Received groups={groups}")
        self.kernel_size = shapes.normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = shapes.normalize_tuple(strides, rank, "strides")
        self.padding = shapes.normalize_padding(padding)
        self.data_format = shapes.normalize_data_format(data_format)
        self.dilation_rate = shapes.normalize_tuple(dilation_rate, rank, "dilation_rate")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(min_ndim=rank + 2)
        self._validate_init()

    def _validate_init(self) -> None:
        if self.filters is not None and self.filters % self.groups != 0:
            raise ValueError(
                "The number of filters must be evenly divisible by the number of groups. "
                f"Received: groups={self.groups}, filters={self.filters}"
            )
        if self.padding == "causal" and not self._causal_ok:
            raise ValueError("Causal padding is only supported for `Conv1D`and `SeparableConv1D`.")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )

    # -- shapes -----------------------------------------------------------------------------
    def _channel_axis(self) -> int:
        return 1 if self.data_format == "channels_first" else -1

    def _input_channels(self, input_shape: Tuple) -> int:
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer \"{self.name}\" is incompatible with the layer: expected "
                f"ndim={self.rank + 2}, found ndim={len(input_shape)}. Full shape received: {tuple(input_shape)}"
            )
        channels = input_shape[self._channel_axis()]
        if channels is None:
            raise ValueError(
                "The channel dimension of the inputs should be defined. The input_shape received is "
                f"{tuple(input_shape)}, where axis {self._channel_axis()} (0-based) is the channel "
                "dimension, which found to be `None`."
            )
        return int(channels)

    def _out_channels(self, channels: int) -> int:
        return self.filters

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        if len(input_shape) < self.rank + 2:
            raise ValueError(f"{type(self).__name__} {self.name}: expected an input of rank {self.rank + 2}, got {input_shape}")
        channels = input_shape[self._channel_axis()]
        out_channels = self._out_channels(channels) if channels is not None or self.filters is not None else None
        return tuple(conv_ops.conv_output_shape(
            input_shape, self.kernel_size, out_channels, self.strides, self.padding, self.dilation_rate,
            self.data_format, where=self.name))

    # -- weights ----------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        channels = self._input_channels(input_shape)
        if channels % self.groups != 0:
            raise ValueError(
                "The number of input channels must be evenly divisible by the number of groups. "
                f"Received groups={self.groups}, but the input has {channels} channels "
                f"(full input shape is {input_shape})."
            )
        self.compute_output_shape(input_shape)
        self._build_weights(channels)
        self.input_spec = InputSpec(min_ndim=self.rank + 2, axes={self._channel_axis(): channels})
        self.built = True

    def _build_weights(self, channels: int) -> None:
        self.kernel = self.add_weight(
            "kernel", shape=self.kernel_size + (channels // self.groups, self.filters),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint, trainable=True,
        )
        self._build_bias(self.filters)

    def _build_bias(self, size: int) -> None:
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                "bias", shape=(size,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint, trainable=True,
            )

    # -- call -------------------------------------------------------------------------------
    def call(self, inputs: np.ndarray) -> np.ndarray:
        # the op fuses relu / relu6 into its kernel's epilogue and applies any other activation
        return self._convolve(inputs, self.activation)

    def _bias_value(self) -> Optional[np.ndarray]:
        return self.bias.value if self.use_bias else None

    def _convolve(self, x: np.ndarray, act: Any) -> np.ndarray:
        return self._run_op(x, self.kernel.value, self._bias_value(), act)

    def _run_op(self, x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], act: Any) -> np.ndarray:
        return conv_ops.conv(x, kernel, bias, self.strides, self.padding, self.dilation_rate, self.groups,
                             self.data_format, act, where=f"{type(self).__name__} {self.name}")

    def _fold_spec(self) -> Optional[FoldableOp]:
        """How a BatchNormalization after this convolution folds into it at inference (read by
        the inference planner): output channels scaled in the kernel, the shift added to the
        bias, the same convolution run on them. None when the layer applies an activation or a
        subclass changes the maths (overrides ``call`` or the convolution)."""
        cls = type(self)
        if (cls.call is not Conv.call or cls._convolve not in (Conv._convolve, DepthwiseConv._convolve)
                or cls._run_op not in (Conv._run_op, DepthwiseConv._run_op)
                or self.activation is not activations.linear):
            return None
        kernel_var = self._kernel_variable()
        dtype = np.dtype(self._dtype)
        channel_axes = 2 if isinstance(self, DepthwiseConv) else 1

        def fold(inv: np.ndarray, shift: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
            return fold_affine(kernel_var.value, self._bias_value(), inv, shift, dtype, channel_axes)

        weights = (kernel_var, self.bias) if self.use_bias else (kernel_var,)
        channel_axis = 1 if self.data_format == "channels_first" else -1
        return FoldableOp(channel_axis, weights, fold, self._run_op)

    def _kernel_variable(self) -> Any:
        return self.kernel

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "groups": self.groups,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                **weight_args_config(self),
            }
        )
        return config


class Conv1D(Conv):
    """1-D convolution over ``(batch, steps, channels)`` (see :class:`Conv`); "causal" padding
    pads ``k_eff - 1`` steps before, so output ``t`` sees inputs ``<= t`` only."""

    _causal_ok = True

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str = "channels_last", **kwargs: Any):
        super().__init__(1, filters, kernel_size, strides, padding, data_format, **kwargs)


class Conv2D(Conv):
    """2-D convolution over ``(batch, rows, cols, channels)`` (see :class:`Conv`).

    Example::

        y = Conv2D(8, 3, padding="same", activation="relu")(np.ones((1, 5, 5, 3), "float32"))  # (1, 5, 5, 8)
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(2, filters, kernel_size, strides, padding, data_format, **kwargs)


class Conv3D(Conv):
    """3-D convolution over ``(batch, depth, rows, cols, channels)`` (see :class:`Conv`)."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1, 1), padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(3, filters, kernel_size, strides, padding, data_format, **kwargs)


# ---------------------------------------------------------------------------------------------
class DepthwiseConv(Conv):
    """N-D depthwise convolution: each input channel convolved with its own ``depth_multiplier``
    filters; output channel ``c * depth_multiplier + m``. Weights ``depthwise_kernel
    (*kernel_size, cin, depth_multiplier)`` then ``bias (cin * depth_multiplier,)``."""

    def __init__(
        self,
        rank: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: Optional[str] = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(
            rank, None, kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
            bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, bias_constraint=bias_constraint, **kwargs,
        )
        self.depth_multiplier = _depth_multiplier(depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)

    def _out_channels(self, channels: Optional[int]) -> Optional[int]:
        return None if channels is None else channels * self.depth_multiplier

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"Inputs to `DepthwiseConv` should have rank {self.rank + 2}. Received input_shape={input_shape}.")
        channels = self._input_channels(input_shape)
        self.compute_output_shape(input_shape)
        self._build_weights(channels)
        self.input_spec = InputSpec(min_ndim=self.rank + 2, axes={self._channel_axis(): channels})
        self.built = True

    def _build_weights(self, channels: int) -> None:
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", shape=self.kernel_size + (channels, self.depth_multiplier),
            initializer=self.depthwise_initializer, regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
        )
        self._build_bias(channels * self.depth_multiplier)

    def _convolve(self, x: np.ndarray, act: Any) -> np.ndarray:
        return self._run_op(x, self.depthwise_kernel.value, self._bias_value(), act)

    def _run_op(self, x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], act: Any) -> np.ndarray:
        return conv_ops.depthwise_conv(x, kernel, bias, self.strides, self.padding, self.dilation_rate,
                                       self.data_format, act, where=f"{type(self).__name__} {self.name}")

    def _kernel_variable(self) -> Any:
        return self.depthwise_kernel

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        for key in ("filters", "kernel_initializer", "kernel_regularizer", "kernel_constraint"):
            config.pop(key)
        config["depth_multiplier"] = self.depth_multiplier
        config["depthwise_initializer"] = initializers.serialize(self.depthwise_initializer)
        config["depthwise_regularizer"] = regularizers.serialize(self.depthwise_regularizer)
        config["depthwise_constraint"] = constraints.serialize(self.depthwise_constraint)
        return config


class DepthwiseConv1D(DepthwiseConv):
    """1-D depthwise convolution over ``(batch, steps, channels)`` (see :class:`DepthwiseConv`)."""

    def __init__(self, kernel_size: Any, strides: Any = 1, padding: str = "valid", depth_multiplier: int = 1,
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(1, kernel_size, strides, padding, depth_multiplier, data_format, **kwargs)


class DepthwiseConv2D(DepthwiseConv):
    """2-D depthwise convolution (see :class:`DepthwiseConv`)."""

    def __init__(self, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid", depth_multiplier: int = 1,
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(2, kernel_size, strides, padding, depth_multiplier, data_format, **kwargs)


class DepthwiseConv3D(DepthwiseConv):
    """3-D depthwise convolution (no tf-keras counterpart; see the module docstring)."""

    def __init__(self, kernel_size: Any, strides: Any = (1, 1, 1), padding: str = "valid", depth_multiplier: int = 1,
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(3, kernel_size, strides, padding, depth_multiplier, data_format, **kwargs)


# ---------------------------------------------------------------------------------------------
class SeparableConv(Conv):
    """N-D depthwise-separable convolution: a depthwise convolution (strides, padding, dilation)
    then a 1x1 pointwise convolution to ``filters``, then bias and activation. Weights
    ``depthwise_kernel``, ``pointwise_kernel``, ``bias`` in that order."""

    def __init__(
        self,
        rank: int,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: Optional[str] = None,
        dilation_rate: Any = 1,
        depth_multiplier: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        pointwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(
            rank, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
            bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, bias_constraint=bias_constraint, **kwargs,
        )
        self.depth_multiplier = _depth_multiplier(depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def _build_weights(self, channels: int) -> None:
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", shape=self.kernel_size + (channels, self.depth_multiplier),
            initializer=self.depthwise_initializer, regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint, trainable=True,
        )
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", shape=(1,) * self.rank + (channels * self.depth_multiplier, self.filters),
            initializer=self.pointwise_initializer, regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint, trainable=True,
        )
        self._build_bias(self.filters)

    def _convolve(self, x: np.ndarray, act: Any) -> np.ndarray:
        return conv_ops.separable_conv(x, self.depthwise_kernel.value, self.pointwise_kernel.value,
                                       self._bias_value(), self.strides, self.padding, self.dilation_rate,
                                       self.data_format, act, where=f"{type(self).__name__} {self.name}")

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "depth_multiplier": self.depth_multiplier,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
                "pointwise_constraint": constraints.serialize(self.pointwise_constraint),
            }
        )
        return config

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3 has no ``kernel_*`` options on separable convolutions (tf-keras writes its
        unused ones): the depthwise and pointwise ones are the real ones."""
        config = dict(config)
        for key in ("kernel_initializer", "kernel_regularizer", "kernel_constraint"):
            config.pop(key, None)
        return config


class SeparableConv1D(SeparableConv):
    """1-D separable convolution (see :class:`SeparableConv`); supports "causal" padding."""

    _causal_ok = True

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(1, filters, kernel_size, strides, padding, data_format, **kwargs)


class SeparableConv2D(SeparableConv):
    """2-D separable convolution (see :class:`SeparableConv`)."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid",
                 data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(2, filters, kernel_size, strides, padding, data_format, **kwargs)


# ---------------------------------------------------------------------------------------------
class ConvTranspose(Conv):
    """N-D transposed convolution (the gradient of a convolution with respect to its input).

    ``output_padding`` (None or ``rank`` ints, each smaller than its stride) fixes the output
    size; otherwise it is ``n * s + max(k_eff - s, 0)`` ("valid") or ``n * s`` ("same").
    Weights ``kernel (*kernel_size, filters, cin)`` then ``bias (filters,)``.
    """

    def __init__(self, rank: int, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 output_padding: Any = None, data_format: Optional[str] = None, dilation_rate: Any = 1,
                 **kwargs: Any):
        super().__init__(rank, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, **kwargs)
        if self.padding not in ("valid", "same"):
            raise ValueError(f"`padding` must be 'valid' or 'same' for {type(self).__name__}. Received: padding={padding!r}")
        self.output_padding = output_padding
        if output_padding is not None:
            self.output_padding = shapes.normalize_tuple(output_padding, rank, "output_padding", allow_zero=True)
            for stride, out_pad in zip(self.strides, self.output_padding):
                if out_pad >= stride:
                    raise ValueError(
                        "Strides must be greater than output padding. "
                        f"Received strides={self.strides}, output_padding={self.output_padding}."
                    )

    def _dilation(self) -> Tuple[int, ...]:
        return self.dilation_rate

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"Inputs should have rank {self.rank + 2}. Received input_shape={input_shape}.")
        channels = self._input_channels(input_shape)
        self.kernel = self.add_weight(
            "kernel", shape=self.kernel_size + (self.filters, channels),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint, trainable=True,
        )
        self._build_bias(self.filters)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis(): channels})
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"Inputs should have rank {self.rank + 2}. Received input_shape={input_shape}.")
        return tuple(conv_ops.conv_transpose_output_shape(
            input_shape, self.kernel_size, self.filters, self.strides, self.padding, self._dilation(),
            self.output_padding, self.data_format))

    def _convolve(self, x: np.ndarray, act: Any) -> np.ndarray:
        return conv_ops.conv_transpose(x, self.kernel.value, self._bias_value(), self.strides, self.padding,
                                       self.output_padding, self._dilation(), self.data_format, act,
                                       where=f"{type(self).__name__} {self.name}")

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["output_padding"] = self.output_padding
        return config


class Conv1DTranspose(ConvTranspose):
    """1-D transposed convolution (see :class:`ConvTranspose`)."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 output_padding: Any = None, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(1, filters, kernel_size, strides, padding, output_padding, data_format, **kwargs)


class Conv2DTranspose(ConvTranspose):
    """2-D transposed convolution (see :class:`ConvTranspose`)."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid",
                 output_padding: Any = None, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(2, filters, kernel_size, strides, padding, output_padding, data_format, **kwargs)


class Conv3DTranspose(ConvTranspose):
    """3-D transposed convolution (see :class:`ConvTranspose`). As in tf-keras 2.21,
    ``dilation_rate`` is accepted but not used, nor written in the config."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1, 1), padding: str = "valid",
                 output_padding: Any = None, data_format: Optional[str] = None, **kwargs: Any):
        super().__init__(3, filters, kernel_size, strides, padding, output_padding, data_format, **kwargs)

    def _dilation(self) -> Tuple[int, ...]:
        return (1, 1, 1)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.pop("dilation_rate")
        return config

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3 writes ``dilation_rate``: the one this layer computes with."""
        config = dict(config)
        config["dilation_rate"] = list(self._dilation())
        return config


# tf-keras's aliases
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose

register_builtins("layer", globals(), __all__)
