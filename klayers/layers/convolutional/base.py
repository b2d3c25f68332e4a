"""The convolution base ``Conv(rank)`` (validation, build, config, the call into
:mod:`klayers.ops.conv`, the fold declaration), Conv1D/2D/3D, and the depthwise family."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from klayers import activations, constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec
from klayers.engine.plan import FoldableOp
from klayers.layers._args import weight_args_config
from klayers.ops import conv as conv_ops
from klayers.ops import shapes
from klayers.ops.normalization import fold_affine


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

    #: the class whose convolution this one computes (a subclass overriding it folds nothing)
    _fold_base: Any = None
    #: how many trailing kernel axes index the output channels
    _kernel_channel_axes = 1

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

    def _run_op(self, x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], act: Any,
                packed: Optional[Callable[[], Optional[np.ndarray]]] = None, padding: Any = None) -> np.ndarray:
        return conv_ops.conv(x, kernel, bias, self.strides, self.padding if padding is None else padding,
                             self.dilation_rate, self.groups, self.data_format, act,
                             where=f"{type(self).__name__} {self.name}", packed=packed)

    def _pack(self, kernel: np.ndarray) -> Optional[np.ndarray]:
        return conv_ops.pack_conv_kernel(kernel, self.groups)

    def _prepare(self, x_shape: Tuple[int, ...], kernel: np.ndarray, bias: Optional[np.ndarray], act: Any,
                    packed: Optional[Callable[[], Optional[np.ndarray]]] = None, padding: Any = None) -> Any:
        return conv_ops.conv_call(x_shape, kernel, bias, self.strides, self.padding if padding is None else padding,
                                  self.dilation_rate, self.groups, self.data_format, act,
                                  where=f"{type(self).__name__} {self.name}", packed=packed)

    def _fold_spec(self) -> Optional[FoldableOp]:
        """How a BatchNormalization after this convolution folds into it at inference (read by
        the inference planner): output channels scaled in the kernel, the shift added to the
        bias, the same convolution run on them. None when the layer applies an activation or a
        subclass changes the maths (overrides ``call`` or the convolution)."""
        cls, base = type(self), self._fold_base
        if (cls.call is not Conv.call or cls._convolve is not base._convolve or cls._run_op is not base._run_op
                or self.activation is not activations.linear):
            return None
        kernel_var = self._kernel_variable()
        dtype = np.dtype(self._dtype)
        channel_axes = self._kernel_channel_axes

        def fold(inv: np.ndarray, shift: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
            return fold_affine(kernel_var.value, self._bias_value(), inv, shift, dtype, channel_axes)

        weights = (kernel_var, self.bias) if self.use_bias else (kernel_var,)
        channel_axis = 1 if self.data_format == "channels_first" else -1
        return FoldableOp(channel_axis, weights, fold, self._run_op, self._pack, self._prepare)

    def _pack_spec(self) -> Optional[FoldableOp]:
        """How the inference planner runs this convolution alone: the kernel and bias as they
        are (``fold`` ignores its arguments), the layer's own activation after, on the packed
        kernel where there is one (``pack`` None for channels_first, groups and the depthwise
        kernel). None when a subclass changes the maths."""
        cls, base = type(self), self._fold_base
        if cls.call is not Conv.call or cls._convolve is not base._convolve or cls._run_op is not base._run_op:
            return None
        pack = self._pack if self.groups == 1 and self.data_format == "channels_last" else None
        kernel_var = self._kernel_variable()

        def fold(inv: Any, shift: Any) -> Tuple[np.ndarray, Optional[np.ndarray]]:
            return kernel_var.value, self._bias_value()

        weights = (kernel_var, self.bias) if self.use_bias else (kernel_var,)
        return FoldableOp(-1, weights, fold, self._run_op, pack, self._prepare)

    def _channel_dense_spec(self) -> Optional[Tuple[Tuple[Any, ...], Callable[[], Tuple[np.ndarray, Optional[np.ndarray]]], Any]]:
        """On inputs whose spatial sizes are all 1, this convolution is a Dense over the channels
        (a 1x1 kernel, stride and dilation 1, one group, channels_last): ``(variables, arrays,
        activation)`` with ``arrays()`` the ``(cin, cout)`` kernel and the bias (or None) and the
        layer's activation, read by the inference planner (squeeze-and-excitation blocks); None
        otherwise or when a subclass changes the maths."""
        cls, base = type(self), self._fold_base
        if (cls.call is not Conv.call or cls._convolve is not base._convolve or cls._run_op is not base._run_op
                or self.data_format != "channels_last" or self.groups != 1
                or any(k != 1 for k in self.kernel_size) or any(s != 1 for s in self.strides)
                or any(d != 1 for d in self.dilation_rate) or base is not Conv):
            return None
        kernel_var = self._kernel_variable()
        if kernel_var.value.ndim != len(self.kernel_size) + 2:
            return None

        def arrays() -> Tuple[np.ndarray, Optional[np.ndarray]]:
            k = kernel_var.value
            return k.reshape(k.shape[-2], k.shape[-1]), self._bias_value()

        weights = (kernel_var, self.bias) if self.use_bias else (kernel_var,)
        return weights, arrays, self.activation

    def _block_stage_spec(self) -> Optional[Tuple[str, ...]]:
        """The stage of a MobileNet inverted residual block this layer can be, read by the
        inference planner (which runs expand -> depthwise -> project as one kernel):
        ``("pointwise",)`` for a 2-D channels_last convolution with a 1x1 kernel, stride and
        dilation 1 and one group; None otherwise or when a subclass changes the maths."""
        cls, base = type(self), self._fold_base
        if (cls.call is not Conv.call or cls._convolve is not base._convolve or cls._run_op is not base._run_op
                or base is not Conv or self.rank != 2 or self.data_format != "channels_last" or self.groups != 1
                or any(k != 1 for k in self.kernel_size) or any(s != 1 for s in self.strides)
                or any(d != 1 for d in self.dilation_rate)):
            return None
        return ("pointwise",)

    def _takes_padding(self) -> Optional[str]:
        """The data format in which the inference planner may fold a ZeroPadding before this
        layer into it ("valid" convolutions only: explicit zero padding on the padded input's
        terms); None otherwise."""
        return self.data_format if self.padding == "valid" else None

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


class DepthwiseConv(Conv):
    """N-D depthwise convolution: each input channel convolved with its own ``depth_multiplier``
    filters; output channel ``c * depth_multiplier + m``. Weights ``depthwise_kernel
    (*kernel_size, cin, depth_multiplier)`` then ``bias (cin * depth_multiplier,)``."""

    _kernel_channel_axes = 2
    #: the depthwise kernel has no packed form (its op streams the kernel per channel)
    _pack = None

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

    def _run_op(self, x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], act: Any,
                padding: Any = None) -> np.ndarray:
        return conv_ops.depthwise_conv(x, kernel, bias, self.strides, self.padding if padding is None else padding,
                                       self.dilation_rate, self.data_format, act,
                                       where=f"{type(self).__name__} {self.name}")

    def _prepare(self, x_shape: Tuple[int, ...], kernel: np.ndarray, bias: Optional[np.ndarray], act: Any,
                 packed: Any = None, padding: Any = None) -> Any:
        return conv_ops.depthwise_call(x_shape, kernel, bias, self.strides, self.padding if padding is None else padding,
                                       self.dilation_rate, self.data_format, act,
                                       where=f"{type(self).__name__} {self.name}")

    def _block_stage_spec(self) -> Optional[Tuple[str, ...]]:
        """``("depthwise",)`` for a 2-D channels_last depthwise convolution with multiplier and
        dilation 1 (the middle of a MobileNet inverted residual block, see
        :meth:`Conv._block_stage_spec`; its strides and padding are the layer's); None otherwise."""
        cls = type(self)
        if (cls.call is not Conv.call or cls._convolve is not DepthwiseConv._convolve
                or cls._run_op is not DepthwiseConv._run_op or self.rank != 2 or self.data_format != "channels_last"
                or self.depth_multiplier != 1 or any(d != 1 for d in self.dilation_rate)):
            return None
        return ("depthwise",)

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


Conv._fold_base = Conv
DepthwiseConv._fold_base = DepthwiseConv
