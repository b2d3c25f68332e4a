"""All output-shape and padding arithmetic, in one place: convolutions (forward, depthwise,
separable, transposed), pooling, locally-connected layers, ConvLSTM, and the embedding of rank
1-3 geometries in the kernels' three axes. Ops and layers call these; no other module computes
an output size or a padding.

Semantics are tf-keras 2.21's (``tf_keras/utils/conv_utils.py``) and TensorFlow's padding rule:
for ``"same"`` the total padding is ``max((ceil(n / s) - 1) * s + k_eff - n, 0)`` with the
smaller half before and the larger half after.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

from klayers import backend

#: The largest size, stride, dilation or padding klayers accepts on one axis: larger values
#: cannot describe an array in memory, and would overflow the kernels' 64-bit index arithmetic.
MAX_DIM = 2**31 - 1


def normalize_tuple(value: Any, n: int, name: str, allow_zero: bool = False) -> Tuple[int, ...]:
    """An int or an iterable of ``n`` ints as a tuple of ``n`` positive ints.

    Raises:
        ValueError: naming ``name`` and echoing ``value`` (wrong length, non-integer, < 1 or < 0).
    """
    if isinstance(value, bool):
        raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r}")
    if isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, (str, bytes))):
        values: Tuple[int, ...] = (int(value),) * n
    else:
        try:
            values = tuple(value)
        except TypeError as e:
            raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r}") from e
        if len(values) != n:
            raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) and not (hasattr(v, "__index__") and not isinstance(v, (str, bytes))):
                raise ValueError(
                    f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r} "
                    f"including element {v!r} of type {type(v)}"
                )
        values = tuple(int(v) for v in values)
    bad = [v for v in values if v < 0] if allow_zero else [v for v in values if v <= 0]
    huge = [v for v in values if v > MAX_DIM]
    if huge:
        raise ValueError(
            f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r} including "
            f"{{{', '.join(str(b) for b in huge)}}} that does not satisfy the requirement `<= {MAX_DIM}`."
        )
    if bad:
        req = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r} including "
            f"{{{', '.join(str(b) for b in bad)}}} that does not satisfy the requirement `{req}`."
        )
    return values


def normalize_padding(value: Any, allowed: Sequence[str] = ("valid", "same", "causal")) -> str:
    """``"valid"`` / ``"same"`` / ``"causal"`` (case-insensitive), checked against ``allowed``."""
    if isinstance(value, (list, tuple)):
        return value  # explicit paddings are the caller's business
    padding = str(value).lower()
    if padding not in allowed:
        raise ValueError(f"The `padding` argument must be one of {list(allowed)}. Received: padding={value!r}")
    return padding


def normalize_data_format(value: Optional[str]) -> str:
    """``"channels_last"`` / ``"channels_first"``; None means ``backend.image_data_format()``."""
    if value is None:
        value = backend.image_data_format()
    data_format = str(value).lower()
    if data_format not in {"channels_first", "channels_last"}:
        raise ValueError(
            'The `data_format` argument must be one of "channels_first", "channels_last". '
            f"Received: data_format={value!r}"
        )
    return data_format


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """The span of a dilated kernel: ``k + (k - 1)(d - 1)``."""
    return kernel + (kernel - 1) * (dilation - 1)


def conv_output_length(length: Optional[int], kernel: int, padding: str, stride: int, dilation: int = 1) -> Optional[int]:
    """Output length of a convolution/pooling window over ``length`` (None stays None)."""
    if length is None:
        return None
    k = effective_kernel(kernel, dilation)
    if padding in ("same", "causal"):
        out = length
    elif padding == "valid":
        out = length - k + 1
    elif padding == "full":
        out = length + k - 1
    else:
        raise ValueError(f"Unknown padding {padding!r}")
    return max((out + stride - 1) // stride, 0)


def same_padding(length: int, kernel: int, stride: int, dilation: int = 1) -> Tuple[int, int]:
    """TensorFlow's ``"same"`` padding ``(before, after)``: the larger half after."""
    k = effective_kernel(kernel, dilation)
    out = (length + stride - 1) // stride
    total = max((out - 1) * stride + k - length, 0)
    return total // 2, total - total // 2


def padding_amounts(length: int, kernel: int, padding: str, stride: int, dilation: int = 1) -> Tuple[int, int]:
    """``(before, after)`` zero padding for ``"valid"``, ``"same"``, ``"causal"`` (all before) or ``"full"``."""
    k = effective_kernel(kernel, dilation)
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return same_padding(length, kernel, stride, dilation)
    if padding == "causal":
        return k - 1, 0
    if padding == "full":
        return k - 1, k - 1
    raise ValueError(f"Unknown padding {padding!r}")


def deconv_output_length(length: Optional[int], kernel: int, padding: str, output_padding: Optional[int] = None,
                         stride: int = 0, dilation: int = 1) -> Optional[int]:
    """Output length of a transposed convolution (tf-keras's ``deconv_output_length``)."""
    if length is None:
        return None
    k = effective_kernel(kernel, dilation)
    if output_padding is None:
        if padding == "valid":
            return length * stride + max(k - stride, 0)
        if padding == "full":
            return length * stride - (stride + k - 2)
        if padding == "same":
            return length * stride
        raise ValueError(f"Unknown padding {padding!r}")
    pad = {"same": k // 2, "valid": 0, "full": k - 1}[padding]
    return (length - 1) * stride + k - 2 * pad + output_padding


def connected_pad_before(kernel: int, padding: str) -> int:
    """Padding before the input for tf-keras's locally-connected windows.

    tf-keras's ``conv_connected_inputs`` (used by ``LocallyConnected*`` implementations 2 and
    3) centres window ``o`` of a ``"same"`` layer at input index ``o * stride`` with
    ``kernel // 2`` taps before it, so window ``o`` covers
    ``[o * stride - kernel // 2, o * stride - kernel // 2 + kernel)`` clipped to the input.
    For even kernels this is one more than TensorFlow's ``"same"`` split
    (:func:`same_padding`). ``"valid"`` windows start at ``o * stride`` (no padding).

    Raises:
        ValueError: ``padding`` is neither ``"valid"`` nor ``"same"``.
    """
    if padding == "valid":
        return 0
    if padding == "same":
        return kernel // 2
    raise ValueError(f'Only "valid" and "same" padding connect local windows. Received: padding={padding!r}')


# ---------------------------------------------------------------------------------------------
# whole shapes: (batch, *spatial, channels) in either data format


def split_shape(shape: Sequence[Any], data_format: str) -> Tuple[Any, Tuple[Any, ...], Any]:
    """``(batch, spatial sizes, channels)`` of an input shape in ``data_format``."""
    if data_format == "channels_first":
        return shape[0], tuple(shape[2:]), shape[1]
    return shape[0], tuple(shape[1:-1]), shape[-1]


def join_shape(batch: Any, spatial: Sequence[Any], channels: Any, data_format: str) -> Tuple[Any, ...]:
    """The inverse of :func:`split_shape`."""
    if data_format == "channels_first":
        return (batch, channels) + tuple(spatial)
    return (batch,) + tuple(spatial) + (channels,)


def _check_positive(out: Sequence[Optional[int]], where: str, x_shape: Sequence[Any]) -> None:
    if any(o is not None and o <= 0 for o in out):
        raise ValueError(
            f"One of the dimensions in the output is <= 0 due to downsampling in {where}. Consider "
            f"increasing the input size. Received input shape {list(x_shape)} which would produce "
            "output shape with a zero or negative value in a dimension."
        )


def conv_output_sizes(spatial: Sequence[Optional[int]], kernel_size: Sequence[int], padding: Any,
                      strides: Sequence[int], dilation_rate: Sequence[int], where: str = "conv",
                      x_shape: Optional[Sequence[Any]] = None) -> Tuple[Optional[int], ...]:
    """:func:`conv_output_length` per spatial axis (None stays None). ``padding`` is a Keras
    padding name or explicit zero padding, one ``(before, after)`` pair per spatial axis (a
    ZeroPadding layer folded into the convolution after it: "valid" on the padded input).

    Raises:
        ValueError: an output size would be <= 0 (tf-keras's message, naming ``where``).
    """
    if not isinstance(padding, str):
        if (not isinstance(padding, (tuple, list)) or len(padding) != len(spatial)
                or any(len(p) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_DIM for v in p) for p in padding)):
            raise ValueError(f"{where}: explicit padding must be one (before, after) pair of non-negative "
                             f"ints per spatial axis ({len(spatial)}), got {padding!r}")
        out = tuple(None if n is None else conv_output_length(n + b + a, k, "valid", s, d)
                    for n, k, s, d, (b, a) in zip(spatial, kernel_size, strides, dilation_rate, padding))
        _check_positive(out, where, x_shape if x_shape is not None else spatial)
        return out
    out = tuple(conv_output_length(n, k, padding, s, d)
                for n, k, s, d in zip(spatial, kernel_size, strides, dilation_rate))
    _check_positive(out, where, x_shape if x_shape is not None else spatial)
    return out


def pads_before(spatial: Sequence[int], kernel_size: Sequence[int], padding: Any, strides: Sequence[int],
                dilation_rate: Optional[Sequence[int]] = None) -> Tuple[int, ...]:
    """The padding before each spatial axis (:func:`axis_paddings`)."""
    return tuple(b for b, _ in axis_paddings(spatial, kernel_size, padding, strides, dilation_rate))


def axis_paddings(spatial: Sequence[int], kernel_size: Sequence[int], padding: Any, strides: Sequence[int],
                  dilation_rate: Optional[Sequence[int]] = None) -> List[Tuple[int, int]]:
    """``(before, after)`` per spatial axis: :func:`padding_amounts` of a Keras padding name,
    or the explicit pairs themselves (see :func:`conv_output_sizes`)."""
    if not isinstance(padding, str):
        return [(int(b), int(a)) for b, a in padding]
    d = dilation_rate if dilation_rate is not None else (1,) * len(spatial)
    return [padding_amounts(n, k, padding, s, di) for n, k, s, di in zip(spatial, kernel_size, strides, d)]


def window_pads(length: int, out: int, kernel: int, stride: int, before: int, dilation: int = 1) -> Tuple[int, int]:
    """``(before, after)``: the zero padding that makes ``out`` windows of a (dilated) ``kernel``
    at ``stride``, the first starting ``before`` ahead of the input, fit a padded input."""
    return before, max((out - 1) * stride + effective_kernel(kernel, dilation) - length - before, 0)


def conv_output_shape(x_shape: Sequence[Optional[int]], kernel_size: Sequence[int], filters: int,
                      strides: Sequence[int], padding: str, dilation_rate: Sequence[int],
                      data_format: str, where: str = "conv") -> Tuple[Optional[int], ...]:
    """Keras's ``compute_output_shape`` for a convolution (None sizes stay None).

    Raises:
        ValueError: an output size would be <= 0.
    """
    batch, spatial, _ = split_shape(tuple(x_shape), data_format)
    out = conv_output_sizes(spatial, kernel_size, padding, strides, dilation_rate, where, x_shape)
    return join_shape(batch, out, filters, data_format)


def conv_transpose_output_sizes(spatial: Sequence[Optional[int]], kernel_size: Sequence[int], padding: str,
                                output_padding: Optional[Sequence[int]], strides: Sequence[int],
                                dilation_rate: Sequence[int]) -> Tuple[Optional[int], ...]:
    """:func:`deconv_output_length` per spatial axis (None stays None)."""
    op = output_padding if output_padding is not None else (None,) * len(spatial)
    return tuple(deconv_output_length(n, k, padding, o, s, d)
                 for n, k, o, s, d in zip(spatial, kernel_size, op, strides, dilation_rate))


def conv_transpose_output_shape(x_shape: Sequence[Optional[int]], kernel_size: Sequence[int], filters: int,
                                strides: Sequence[int], padding: str, dilation_rate: Sequence[int],
                                output_padding: Optional[Sequence[int]], data_format: str) -> Tuple[Optional[int], ...]:
    """Keras's ``compute_output_shape`` for a transposed convolution."""
    batch, spatial, _ = split_shape(tuple(x_shape), data_format)
    out = conv_transpose_output_sizes(spatial, kernel_size, padding, output_padding, strides, dilation_rate)
    return join_shape(batch, out, filters, data_format)


def conv_transpose_pads(out: Sequence[int], kernel_size: Sequence[int], padding: str, strides: Sequence[int],
                        dilation_rate: Sequence[int]) -> Tuple[int, ...]:
    """The padding before each axis of a transposed convolution: TensorFlow pads the equivalent
    forward convolution (output -> input) as its own padding rule says."""
    return pads_before(out, kernel_size, padding, strides, dilation_rate)


def conv_transpose_extent(length: int, out: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    """The length of a transposed convolution's full (uncropped) scatter buffer along one axis."""
    return max((length - 1) * stride + (kernel - 1) * dilation + 1, out + pad)


def pool_geometry(spatial: Sequence[int], pool_size: Sequence[int], strides: Sequence[int], padding: str,
                  where: str = "pooling") -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """``(output sizes, padding before)`` per spatial axis of a pooling window, as TensorFlow
    computes them.

    Raises:
        ValueError: naming ``where``: a stride below 1, an unknown padding, or (``"valid"``) a
            window larger than the input.
    """
    if padding not in ("valid", "same"):
        raise ValueError(f"{where}: `padding` must be 'valid' or 'same'. Received: padding={padding!r}")
    if any(s < 1 for s in strides):
        raise ValueError(f"{where}: `strides` must be positive integers to run. Received: strides={tuple(strides)}")
    if any(v < 1 or v > MAX_DIM for v in tuple(pool_size) + tuple(strides)):
        raise ValueError(f"{where}: `pool_size` and `strides` must be integers in [1, {MAX_DIM}]. "
                         f"Received: pool_size={tuple(pool_size)}, strides={tuple(strides)}")
    if padding == "valid":
        for n, k in zip(spatial, pool_size):
            if n < k:
                raise ValueError(
                    f"{where}: the pooling window {tuple(pool_size)} is larger than the input's spatial shape "
                    f"{tuple(spatial)} with padding='valid' (negative output size)."
                )
    out = tuple(int(conv_output_length(n, k, padding, s)) for n, k, s in zip(spatial, pool_size, strides))
    return out, pads_before(spatial, pool_size, padding, strides)


def connected_output_sizes(spatial: Sequence[int], kernel_size: Sequence[int], strides: Sequence[int],
                           padding: str) -> Tuple[int, ...]:
    """The output sizes of a locally-connected layer (tf-keras's ``conv_output_length`` per axis)."""
    return tuple(int(conv_output_length(n, k, padding, s)) for n, k, s in zip(spatial, kernel_size, strides))


def embed3(values: Sequence[int], fill: int, last: bool = False) -> Tuple[int, ...]:
    """Per-axis ``values`` of rank 1-3 on three axes, the missing ones ``fill``: after them, or
    before them with ``last`` (then a rank-1 length L is ``(1, 1, L)``: kernels that sweep whole
    rows of the last axis get long rows)."""
    pad = (fill,) * (3 - len(values))
    return pad + tuple(values) if last else tuple(values) + pad
