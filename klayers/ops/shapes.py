"""All output-shape and padding arithmetic, in one place (conv, pooling, locally-connected).

Semantics are tf-keras 2.21's (``tf_keras/utils/conv_utils.py``) and TensorFlow's padding rule:
for ``"same"`` the total padding is ``max((ceil(n / s) - 1) * s + k_eff - n, 0)`` with the
smaller half before and the larger half after.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

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
