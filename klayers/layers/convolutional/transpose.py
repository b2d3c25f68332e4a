"""Transposed convolutions: Conv1D/2D/3DTranspose."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from klayers.engine.input_spec import InputSpec
from klayers.layers.convolutional.base import Conv
from klayers.ops import conv_transpose as conv_transpose_ops
from klayers.ops import shapes


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
        return tuple(conv_transpose_ops.conv_transpose_output_shape(
            input_shape, self.kernel_size, self.filters, self.strides, self.padding, self._dilation(),
            self.output_padding, self.data_format))

    def _convolve(self, x: np.ndarray, act: Any) -> np.ndarray:
        return conv_transpose_ops.conv_transpose(x, self.kernel.value, self._bias_value(), self.strides, self.padding,
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
