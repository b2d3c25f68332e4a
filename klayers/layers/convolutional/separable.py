"""Depthwise-separable convolutions: SeparableConv1D/2D."""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from klayers import constraints, initializers, regularizers
from klayers.layers.convolutional.base import Conv, _depth_multiplier
from klayers.ops import conv as conv_ops


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
