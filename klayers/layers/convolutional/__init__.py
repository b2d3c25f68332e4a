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

from klayers.layers.convolutional.base import (
    Conv,  # noqa: F401  (the N-D bases, for subclassing)
    Conv1D,
    Conv2D,
    Conv3D,
    DepthwiseConv,  # noqa: F401
    DepthwiseConv1D,
    DepthwiseConv2D,
    DepthwiseConv3D,
)
from klayers.layers.convolutional.separable import SeparableConv, SeparableConv1D, SeparableConv2D  # noqa: F401
from klayers.layers.convolutional.transpose import (
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
    ConvTranspose,  # noqa: F401
)
from klayers.serialization import register_builtins

__all__ = [
    "Conv1D", "Conv2D", "Conv3D",
    "SeparableConv1D", "SeparableConv2D",
    "DepthwiseConv1D", "DepthwiseConv2D", "DepthwiseConv3D",
    "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "Convolution1D", "Convolution2D", "Convolution3D",
    "SeparableConvolution1D", "SeparableConvolution2D",
    "Convolution1DTranspose", "Convolution2DTranspose", "Convolution3DTranspose",
]

# tf-keras's aliases
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose

register_builtins("layer", globals(), __all__)
