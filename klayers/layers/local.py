"""Locally-connected layers (tf-keras 2.21; Keras 3 dropped them): LocallyConnected1D/2D.

A locally-connected layer is a convolution whose weights are not shared: every output position
has its own ``(kernel_size..., cin, filters)`` filter bank. tf-keras stores the weights in one
of three layouts (``implementation`` 1, 2 or 3); klayers keeps the weight in Keras's layout (so
``set_weights(keras_layer.get_weights())`` and saved models load unchanged) and computes with
implementation 1's layout, converted once per weight value and cached
(:func:`klayers.ops.local.positions_kernel`). All three implementations run the same kernel:
one matrix product per output position (``klayers._ext.local``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from klayers import activations, constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec
from klayers.layers._args import positive_int, weight_args_config
from klayers.ops import local as local_ops
from klayers.ops import shapes
from klayers.serialization import register_builtins

__all__ = ["LocallyConnected1D", "LocallyConnected2D"]


class _LocallyConnected(Layer):
    """The N-D locally-connected layer (N = ``rank``, 1 or 2); subclasses fix the rank."""

    rank = 0

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: Optional[str] = None,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        implementation: int = 1,
        **kwargs: Any,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        cls = type(self).__name__
        self.filters = positive_int(filters, "filters", f"{cls} {self.name}")
        self.kernel_size = shapes.normalize_tuple(kernel_size, self.rank, "kernel_size")
        # tf-keras accepts strides=0 here and then divides by it when it builds; refuse it now
        self.strides = shapes.normalize_tuple(strides, self.rank, "strides")
        if isinstance(implementation, bool) or implementation not in (1, 2, 3):
            raise ValueError(f"{cls} {self.name}: unrecognized implementation mode. Expected 1, 2 or 3. "
                             f"Received: implementation={implementation!r}")
        self.implementation = int(implementation)
        if not isinstance(padding, str):
            raise ValueError(f'{cls} {self.name}: `padding` must be "valid" or "same". Received: padding={padding!r}')
        # tf-keras's normalize_padding also lets "causal" through, which its mask code then rejects
        self.padding = shapes.normalize_padding(padding, allowed=("valid", "same"))
        if self.padding != "valid" and self.implementation == 1:
            raise ValueError(
                f'Invalid border mode for {cls} (only "valid" is supported if implementation is 1): {padding}'
            )
        self.data_format = shapes.normalize_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(ndim=self.rank + 2)
        self._positions_cache: Tuple[Any, Any, Any, Any] = (None, None, None, None)

    # -- geometry ---------------------------------------------------------------------------
    def _split(self, input_shape: Any) -> Tuple[Tuple[Any, ...], Any]:
        """(spatial shape, channels) of a full input shape."""
        input_shape = tuple(input_shape)
        if self.data_format == "channels_first":
            return input_shape[2:], input_shape[1]
        return input_shape[1:-1], input_shape[-1]

    def build(self, input_shape: Any) -> None:
        cls = type(self).__name__
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{cls} {self.name}: expected an input of rank {self.rank + 2}, "
                             f"received input_shape={input_shape}")
        spatial, cin = self._split(input_shape)
        if cin is None or any(d is None for d in spatial):
            raise ValueError(
                f"The spatial dimensions and channels of the inputs to a {cls} layer should be fully-defined, "
                f"but layer {self.name} received the inputs shape {input_shape}"
            )
        out = local_ops.output_spatial(spatial, self.kernel_size, self.strides, self.padding)
        if min(out) <= 0:
            raise ValueError(
                f"One of the dimensions in the output is <= 0 due to downsampling in {self.name}. Consider "
                f"increasing the input size. Received input shape {input_shape} which would produce output "
                "shape with a zero or negative value in a dimension."
            )
        self._in_spatial, self._cin, self._out_spatial = tuple(int(d) for d in spatial), int(cin), out
        n_pos, taps = int(np.prod(out)), int(np.prod(self.kernel_size))
        if self.implementation == 1:
            kernel_shape: Tuple[int, ...] = (n_pos, taps * self._cin, self.filters)
        elif self.implementation == 2:
            if self.data_format == "channels_first":
                kernel_shape = (self._cin,) + self._in_spatial + (self.filters,) + out
            else:
                kernel_shape = self._in_spatial + (self._cin,) + out + (self.filters,)
        else:
            kernel_shape = (local_ops.n_sparse_weights(self._in_spatial, self._cin, self.filters, self.kernel_size,
                                                       self.strides, self.padding),)
        self.kernel = self.add_weight(
            "kernel", shape=kernel_shape, initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                "bias", shape=out + (self.filters,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        axis = 1 if self.data_format == "channels_first" else -1
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={axis: self._cin})
        self.built = True

    # -- compute ----------------------------------------------------------------------------
    def _compute_weights(self) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Kernel (implementation-1 layout) and bias ``(P, O)``, converted once per weight value.

        ``set_weights`` / ``assign`` replace a Variable's array, which invalidates the cache;
        writing into ``kernel.value`` in place does not (call ``set_weights`` instead).
        """
        kernel = self.kernel.value
        bias = self.bias.value if self.use_bias else None
        k_src, k_conv, b_src, b_conv = self._positions_cache
        if k_src is not kernel:
            k_conv = local_ops.positions_kernel(
                kernel, self.implementation, self._in_spatial, self._cin, self.filters,
                self.kernel_size, self.strides, self.padding, self.data_format,
            )
        if b_src is not bias:
            b_conv = None if bias is None else local_ops.positions_bias(bias, self.data_format)
        self._positions_cache = (kernel, k_conv, bias, b_conv)
        return k_conv, b_conv

    def call(self, inputs: np.ndarray) -> np.ndarray:
        spatial, _ = self._split(inputs.shape)
        if tuple(spatial) != self._in_spatial:
            raise ValueError(
                f"{type(self).__name__} {self.name} was built for inputs of spatial shape {self._in_spatial} "
                f"(its weights are per position) and cannot take spatial shape {tuple(spatial)}; "
                f"received input shape {tuple(inputs.shape)}"
            )
        kernel, bias = self._compute_weights()
        x = inputs if inputs.dtype == kernel.dtype else inputs.astype(kernel.dtype)
        # the op fuses relu / relu6 into its kernel's epilogue and applies any other activation
        return local_ops.local_conv(x, kernel, bias, self.kernel_size, self.strides, self.padding, self.data_format,
                                    self.activation, where=f"{type(self).__name__} {self.name}")

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{type(self).__name__} {self.name}: expected an input shape of rank {self.rank + 2}, "
                             f"received input_shape={input_shape}")
        spatial, _ = self._split(input_shape)
        out = tuple(shapes.conv_output_length(n, k, self.padding, s)
                    for n, k, s in zip(spatial, self.kernel_size, self.strides))
        if self.data_format == "channels_first":
            return (input_shape[0], self.filters) + out
        return (input_shape[0],) + out + (self.filters,)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                **weight_args_config(self),
                "implementation": self.implementation,
            }
        )
        return config


class LocallyConnected1D(_LocallyConnected):
    """Unshared-weight 1-D convolution: each output step has its own filters.

    Args:
        filters: output channels (positive integer).
        kernel_size: window length (an int or a 1-tuple).
        strides: step between windows (an int or a 1-tuple, positive).
        padding: ``"valid"``, or ``"same"`` with implementation 2 or 3 (tf-keras centres window
            ``o`` at ``o * stride`` with ``kernel_size // 2`` taps before it).
        data_format: ``"channels_last"`` (``(batch, steps, channels)``, the default) or
            ``"channels_first"`` (``(batch, channels, steps)``).
        activation, use_bias, *_initializer, *_regularizer, *_constraint: as in Keras.
        implementation: tf-keras's weight layout, 1, 2 or 3 (same outputs, see below).

    Output ``(batch, new_steps, filters)`` (or ``(batch, filters, new_steps)``) with
    ``new_steps = conv_output_length(steps, kernel_size, padding, strides)``.
    Weights: ``kernel`` then ``bias`` ``(new_steps, filters)``. The kernel is, by
    implementation: 1 ``(new_steps, kernel_size * channels, filters)``; 2 the dense masked
    ``(steps, channels, new_steps, filters)`` (channels_first ``(channels, steps, filters,
    new_steps)``); 3 the ``(n,)`` values of tf-keras's sparse matrix.

    Example::

        layer = LocallyConnected1D(64, 3)
        y = layer(np.ones((2, 10, 32), "float32"))   # (2, 8, 64)
    """

    rank = 1


class LocallyConnected2D(_LocallyConnected):
    """Unshared-weight 2-D convolution: each output pixel has its own filters.

    Args:
        filters: output channels (positive integer).
        kernel_size: window ``(rows, cols)`` (an int or a 2-tuple).
        strides: steps between windows (an int or a 2-tuple, positive).
        padding: ``"valid"``, or ``"same"`` with implementation 2 or 3.
        data_format: ``"channels_last"`` (``(batch, rows, cols, channels)``, the default) or
            ``"channels_first"`` (``(batch, channels, rows, cols)``).
        activation, use_bias, *_initializer, *_regularizer, *_constraint: as in Keras.
        implementation: tf-keras's weight layout, 1, 2 or 3 (same outputs).

    Output ``(batch, new_rows, new_cols, filters)`` (or channels first). Weights: ``kernel``
    then ``bias`` ``(new_rows, new_cols, filters)``. The kernel is, by implementation:
    1 ``(new_rows * new_cols, k_rows * k_cols * channels, filters)``; 2 the dense masked
    ``(rows, cols, channels, new_rows, new_cols, filters)`` (channels_first
    ``(channels, rows, cols, filters, new_rows, new_cols)``); 3 the ``(n,)`` values of
    tf-keras's sparse matrix.

    Example::

        layer = LocallyConnected2D(32, 3)
        y = layer(np.ones((1, 16, 16, 32), "float32"))   # (1, 14, 14, 32)
    """

    rank = 2

register_builtins("layer", globals(), __all__)
