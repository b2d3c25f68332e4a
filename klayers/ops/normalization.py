"""Layer normalization over the trailing axes: ``(x - mean) / sqrt(var + eps) * gamma + beta``; batch
normalization's affine map; group, unit (L2), RMS and spectral normalization."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from klayers._ext import norm as _norm
from klayers.backend import arena, tape
from klayers.ops.common import FLOATS, contiguous, op_threads

_EMPTY = {d: np.empty(0, dtype=d) for d in FLOATS}

#: Below this many values the layer-norm kernel runs on one thread: waking a second OpenMP
#: thread (passive wait) costs about 10 us, more on a loaded machine.
PARALLEL_MIN_SIZE = 1 << 17

#: The same for :func:`channel_affine`, a pure stream (one multiply-add per value) where one
#: core nearly saturates memory: measured on 2 shared cores, 64K values took 6 us on one
#: thread and 17 us on two, 256K values 25 and 35 us.
AFFINE_PARALLEL_MIN_SIZE = 1 << 19


#: Rows of at least this many values when :func:`last_axis_rows` regroups pixels
_ROW_VALUES = 512


def last_axis_rows(x: np.ndarray, *vectors: np.ndarray) -> Tuple[np.ndarray, Tuple[np.ndarray, ...]]:
    """``x`` (C-contiguous, ``C`` channels last) viewed as rows of whole pixels, and each
    ``vector`` (``C`` values broadcast along the last axis) tiled to one row: a per-channel
    NumPy expression on these gives, value for value, what it gives on ``x`` and the vectors,
    but its inner loops run over rows of hundreds of values instead of ``C`` (3 for an RGB
    image: 10x slower). Without a regrouping that pays (many channels, another layout), ``x``
    and the vectors come back as they are. Reshape the result to ``x.shape``."""
    c = x.shape[-1] if x.ndim else 0
    pixels = x.size // c if c else 0
    if x.ndim < 2 or c == 0 or c >= _ROW_VALUES // 4 or not x.flags.c_contiguous or pixels == 0:
        return x, vectors
    reps = 1
    for d in reversed(x.shape[:-1]):
        if reps * c >= _ROW_VALUES or d == 0:
            break
        reps *= d
    return x.reshape(-1, reps * c), tuple(np.tile(np.reshape(v, -1), reps) for v in vectors)


def _check(x: np.ndarray, n_axes: int, gamma: Optional[np.ndarray], beta: Optional[np.ndarray],
           where: str) -> tuple:
    if not 1 <= n_axes <= x.ndim:
        raise ValueError(f"{where}: cannot normalize the last {n_axes} axes of an input of shape {x.shape}.")
    norm_shape = x.shape[x.ndim - n_axes:]
    for name, v in (("gamma", gamma), ("beta", beta)):
        if v is not None and v.shape != norm_shape:
            raise ValueError(f"{where}: {name} has shape {v.shape}, expected {norm_shape} (the normalized axes).")
    return norm_shape


def layer_norm_reference(x: np.ndarray, n_axes: int, gamma: Optional[np.ndarray], beta: Optional[np.ndarray],
                         epsilon: float, n_threads: Optional[int] = None, where: str = "layer_norm") -> np.ndarray:
    """NumPy twin of :func:`layer_norm` (the readable oracle); same signature and result."""
    _check(x, n_axes, gamma, beta, where)
    axes = tuple(range(x.ndim - n_axes, x.ndim))
    t = x.dtype.type
    mean = np.mean(x, axis=axes, keepdims=True)
    variance = np.mean(np.square(x - mean), axis=axes, keepdims=True)
    out = (x - mean) * (t(1) / np.sqrt(variance + t(epsilon)))
    if gamma is not None:
        out = out * gamma.astype(x.dtype, copy=False)
    if beta is not None:
        out = out + beta.astype(x.dtype, copy=False)
    return out.astype(x.dtype, copy=False)


def layer_norm(x: np.ndarray, n_axes: int, gamma: Optional[np.ndarray], beta: Optional[np.ndarray],
               epsilon: float, n_threads: Optional[int] = None, where: str = "layer_norm") -> np.ndarray:
    """Normalize ``x`` over its last ``n_axes`` axes (each such slice separately).

    Args:
        x: ``(..., *norm_shape)``; float32 / float64 use the compiled kernel, other dtypes
            the reference.
        n_axes: how many trailing axes form one normalized slice (``norm_shape``).
        gamma, beta: ``norm_shape`` arrays, or None (``scale`` / ``center`` off).
        epsilon: added to the (biased) variance.
        n_threads: threads for large inputs (default ``klayers.get_num_threads()``); inputs
            under :data:`PARALLEL_MIN_SIZE` values run on one thread.
        where: the layer name for error messages.

    Returns:
        A new array of ``x``'s shape and dtype.

    Raises:
        ValueError: ``n_axes`` outside ``[1, x.ndim]`` or gamma/beta of the wrong shape.
    """
    norm_shape = _check(x, n_axes, gamma, beta, where)
    dtype = x.dtype
    if dtype not in FLOATS or x.size == 0:
        return layer_norm_reference(x, n_axes, gamma, beta, epsilon, n_threads, where)
    n = math.prod(norm_shape)
    rows = x.size // n
    x2 = contiguous(x).reshape(rows, n)

    def vec(v: Optional[np.ndarray]) -> np.ndarray:
        if v is None:
            return _EMPTY[dtype]
        return np.ascontiguousarray(v, dtype=dtype).reshape(n)

    out = np.empty(x.shape, dtype=dtype)
    nt = op_threads(n_threads, x.size, PARALLEL_MIN_SIZE)
    tape.run(_norm.layer_norm_rows, x2, vec(gamma), vec(beta), out.reshape(rows, n), gamma is not None,
             beta is not None, float(epsilon), nt)
    return out


def _scale_shift_into(x: np.ndarray, scale: np.ndarray, shift: Optional[np.ndarray], out: np.ndarray) -> None:
    np.multiply(x, scale, out=out)
    if shift is not None:
        np.add(out, shift, out=out)


def _center_scale_into(x: np.ndarray, center: np.ndarray, denom: np.ndarray, out: np.ndarray) -> None:
    np.subtract(x, center, out=out)
    np.divide(out, denom, out=out)


def rescale(x: np.ndarray, scale: np.ndarray, offset: Optional[np.ndarray]) -> np.ndarray:
    """``x * scale + offset`` (NumPy broadcasting; ``offset`` None: none) into a new array of
    ``x``'s dtype (``scale`` and ``offset`` cast to it), with the same roundings as the
    expression; recorded on the tape.

    Raises:
        ValueError: the shapes do not broadcast.
    """
    scale = np.asarray(scale, dtype=x.dtype)
    offset = None if offset is None else np.asarray(offset, dtype=x.dtype)
    shape = np.broadcast_shapes(x.shape, scale.shape, () if offset is None else offset.shape)
    out = arena.empty(shape, x.dtype)
    tape.run(_scale_shift_into, x, scale, offset, out)
    return out


def standardize(x: np.ndarray, mean: np.ndarray, denom: np.ndarray, invert: bool = False,
                last_axis: bool = False) -> np.ndarray:
    """``(x - mean) / denom`` (``invert``: ``mean + x * denom``) with NumPy broadcasting and
    the expression's roundings; ``last_axis``: the statistics are per channel of the last
    axis (``mean`` and ``denom`` broadcast from it), computed on rows of whole pixels
    (:func:`last_axis_rows`). Recorded on the tape."""
    shape = np.broadcast_shapes(x.shape, np.shape(mean), np.shape(denom))
    if last_axis:
        x = contiguous(x)
        rows, (mean, denom) = last_axis_rows(x, mean, denom)
    else:
        rows = x
    out = arena.empty(np.broadcast_shapes(rows.shape, np.shape(mean), np.shape(denom)),
                      np.result_type(rows, mean, denom))
    if invert:
        tape.run(_scale_shift_into, rows, denom, mean, out)  # x * denom + mean: the same roundings
    else:
        tape.run(_center_scale_into, rows, mean, denom, out)
    return out.reshape(shape)


def _check_affine(x: np.ndarray, axis: int, scale: np.ndarray, shift: np.ndarray, where: str) -> int:
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{where}: axis {axis} is out of range for an input of shape {x.shape}.")
    axis %= x.ndim
    for name, v in (("scale", scale), ("shift", shift)):
        if v.shape != (x.shape[axis],):
            raise ValueError(f"{where}: {name} has shape {v.shape}, expected ({x.shape[axis]},) (axis {axis}).")
    return axis


def channel_affine_reference(x: np.ndarray, axis: int, scale: np.ndarray, shift: np.ndarray,
                             n_threads: Optional[int] = None, where: str = "channel_affine") -> np.ndarray:
    """NumPy twin of :func:`channel_affine` (the readable oracle); same signature and result."""
    axis = _check_affine(x, axis, scale, shift, where)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    out = np.multiply(x, scale.astype(x.dtype, copy=False).reshape(shape))
    out += shift.astype(x.dtype, copy=False).reshape(shape)
    return out


def channel_affine(x: np.ndarray, axis: int, scale: np.ndarray, shift: np.ndarray,
                   n_threads: Optional[int] = None, where: str = "channel_affine") -> np.ndarray:
    """``x * scale + shift`` with ``scale`` and ``shift`` indexed by ``x``'s ``axis``: the
    inference pass of BatchNormalization (``scale = gamma / sqrt(var + eps)``,
    ``shift = beta - mean * scale``), one read and one write of ``x``.

    Args:
        x: any shape; float32 / float64 use the compiled kernel, other dtypes the reference.
        axis: the channel axis (negative counts from the end).
        scale, shift: ``(x.shape[axis],)``.
        n_threads: threads for large inputs (default ``klayers.get_num_threads()``); inputs
            under :data:`AFFINE_PARALLEL_MIN_SIZE` values run on one thread.
        where: the layer name for error messages.

    Returns:
        A new array of ``x``'s shape and dtype.
    """
    axis = _check_affine(x, axis, scale, shift, where)
    dtype = x.dtype
    if dtype not in FLOATS or x.size == 0:
        return channel_affine_reference(x, axis, scale, shift, n_threads, where)
    c = x.shape[axis]
    p = math.prod(x.shape[:axis])
    q = math.prod(x.shape[axis + 1:])
    x3 = contiguous(x).reshape(p, c, q)
    out = np.empty(x.shape, dtype=dtype)
    nt = op_threads(n_threads, x.size, AFFINE_PARALLEL_MIN_SIZE)
    tape.run(_norm.channel_affine, x3, np.ascontiguousarray(scale, dtype=dtype), np.ascontiguousarray(shift, dtype=dtype),
             out.reshape(p, c, q), nt)
    return out


def batch_norm_affine(dtype: np.dtype, mean: np.ndarray, variance: np.ndarray, offset: Optional[np.ndarray],
                         scale: Optional[np.ndarray], epsilon: float) -> tuple:
    """``(inv, shift)`` of ``tf.nn.batch_normalization``: ``inv = scale / sqrt(variance + epsilon)``,
    ``shift = offset - mean * inv``, computed in ``dtype``. The one place these coefficients are
    made: BatchNormalization's inference pass computes them in its dtype, the inference
    planner's fold into a preceding convolution in float64 (rounded once afterwards)."""
    t = dtype.type
    inv = (t(1.0) / np.sqrt(variance.astype(dtype, copy=False) + t(epsilon))).astype(dtype, copy=False)
    if scale is not None:
        inv = inv * scale.astype(dtype, copy=False)
    shift = -mean.astype(dtype, copy=False) * inv
    if offset is not None:
        shift = shift + offset.astype(dtype, copy=False)
    return inv, shift


def batch_norm(x: np.ndarray, mean: np.ndarray, variance: np.ndarray, offset: Optional[np.ndarray],
                scale: Optional[np.ndarray], epsilon: float) -> np.ndarray:
    """``tf.nn.batch_normalization``: ``x * inv + (offset - mean * inv)`` with
    ``inv = scale / sqrt(variance + epsilon)``; every statistic broadcasts against ``x``."""
    inv, shift = batch_norm_affine(x.dtype, mean, variance, offset, scale, epsilon)
    out = np.multiply(x, inv)
    out += shift
    return out


def fold_affine(kernel: np.ndarray, bias: Optional[np.ndarray], inv: np.ndarray, shift: np.ndarray,
                dtype: np.dtype, channel_axes: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """The kernel and bias of ``affine(op(x))`` for a linear ``op`` (convolution, dense) and an
    affine map ``y * inv + shift`` over its output channels: ``kernel * inv`` and
    ``bias * inv + shift`` (``shift`` alone without a bias), computed in float64 and rounded
    once to ``dtype``.

    Args:
        kernel: the op's kernel; its last ``channel_axes`` axes index the output channels
            (1 for convolutions and Dense; 2 for a depthwise kernel ``(..., cin, multiplier)``).
        bias: ``(channels,)`` or None.
        inv, shift: ``(channels,)``, from :func:`batch_norm_affine`.
        dtype: the dtype of the returned arrays.

    Returns:
        ``(kernel, bias)``, C-contiguous, in ``dtype``.
    """
    f64 = np.float64
    folded = kernel.astype(f64) * inv.reshape(kernel.shape[kernel.ndim - channel_axes:])
    new_bias = shift if bias is None else bias.astype(f64) * inv + shift
    return np.ascontiguousarray(folded, dtype=dtype), np.ascontiguousarray(new_bias, dtype=dtype)


# -- group, unit, RMS and spectral normalization (NumPy: small reductions, not recorded on a tape) --
def group_norm(x: np.ndarray, axis: int, groups: int, gamma: Optional[np.ndarray], beta: Optional[np.ndarray],
               epsilon: float, mask: Optional[np.ndarray] = None, where: str = "GroupNormalization") -> np.ndarray:
    """Group normalization: the ``C`` channels of ``axis`` split into ``groups`` groups of
    ``C // groups``; each sample's group is normalized over its channels and every axis but the
    batch: ``(x - mean) / sqrt(variance + epsilon) * gamma + beta`` (biased variance, as
    ``tf.nn.batch_normalization`` computes it: ``x * inv + (beta - mean * inv)``).

    ``mask`` (tf-keras): weights of the moments (``tf.nn.weighted_moments``), broadcast to ``x``'s
    shape; a group with no weight has mean and variance 0 (``divide_no_nan``).

    Raises:
        ValueError: the channels do not split into ``groups``, or the mask does not broadcast.
    """
    tape.spoil()
    axis = axis % x.ndim
    c = x.shape[axis]
    if groups < 1 or c % groups:
        raise ValueError(f"{where}: {c} channels do not split into {groups} groups.")
    gshape = x.shape[:axis] + (groups, c // groups) + x.shape[axis + 1:]
    xg = x.reshape(gshape)
    reduce = tuple(i for i in range(1, len(gshape)) if i != axis)
    acc = np.float64 if x.dtype == np.float32 else x.dtype
    with np.errstate(invalid="ignore", over="ignore"):  # inf inputs give NaN, as in Keras
        mean, variance = _group_moments(x, xg, reduce, acc, mask, where)
    bshape = [1] * len(gshape)
    bshape[axis], bshape[axis + 1] = groups, c // groups
    with np.errstate(invalid="ignore", over="ignore"):
        out = batch_norm(xg, mean.astype(x.dtype), variance.astype(x.dtype),
                         None if beta is None else beta.reshape(bshape),
                         None if gamma is None else gamma.reshape(bshape), epsilon)
    return out.reshape(x.shape)


def _group_moments(x: np.ndarray, xg: np.ndarray, reduce: Tuple[int, ...], acc: Any, mask: Optional[np.ndarray],
                   where: str) -> Tuple[np.ndarray, np.ndarray]:
    if mask is None:
        mean = np.mean(xg, axis=reduce, keepdims=True, dtype=acc)
        variance = np.mean(np.square(xg - mean), axis=reduce, keepdims=True)
    else:
        try:
            w = np.broadcast_to(np.asarray(mask), x.shape)
        except ValueError as e:
            raise ValueError(f"{where}: a mask of shape {np.shape(mask)} does not broadcast to the input's "
                             f"shape {x.shape} (tf-keras broadcasts it with tf.broadcast_to).") from e
        w = w.astype(acc).reshape(xg.shape)
        total = np.sum(w, axis=reduce, keepdims=True)
        safe = np.where(total > 0, total, 1)
        mean = np.where(total > 0, np.sum(w * xg, axis=reduce, keepdims=True) / safe, 0)
        variance = np.where(total > 0, np.sum(w * np.square(xg - mean), axis=reduce, keepdims=True) / safe, 0)
    return mean, variance


def l2_normalize(x: np.ndarray, axis: Any, keras3: bool = False, epsilon: float = 1e-12) -> np.ndarray:
    """``x`` divided by its L2 norm over ``axis`` (int, list, or None for all values).

    tf-keras (``tf.linalg.l2_normalize``): ``x * rsqrt(max(sum(x**2), epsilon))``: the norm has a
    floor of ``sqrt(epsilon)``. Keras 3 (``ops.normalize``): ``x * min(rsqrt(sum(x**2)), 1 / epsilon)``:
    the inverse norm has a ceiling of ``1 / epsilon``. The two differ for norms below ``sqrt(epsilon)``.
    """
    tape.spoil()
    axes = None if axis is None else (tuple(axis) if isinstance(axis, (list, tuple)) else (axis,))
    square_sum = np.sum(np.square(x), axis=axes, keepdims=True)
    t = x.dtype.type
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if keras3:
            inv = np.minimum(t(1.0) / np.sqrt(square_sum), t(1.0 / epsilon))
        else:
            inv = t(1.0) / np.sqrt(np.maximum(square_sum, t(epsilon)))
        return (x * inv).astype(x.dtype, copy=False)


def rms_norm(x: np.ndarray, axis: Sequence[int], scale: Optional[np.ndarray], epsilon: float) -> np.ndarray:
    """Keras 3's ``ops.rms_normalization``: ``x * rsqrt(mean(x**2, axis) + epsilon) * scale``, with
    ``scale`` broadcast against the output as NumPy broadcasts (from the last axis)."""
    tape.spoil()
    t = x.dtype.type
    with np.errstate(invalid="ignore", over="ignore"):  # inf inputs give NaN, as in Keras
        rrms = t(1.0) / np.sqrt(np.mean(np.square(x), axis=tuple(axis), keepdims=True) + t(epsilon))
        out = x * rrms
    if scale is not None:
        out = out * scale.astype(x.dtype, copy=False)
    return out.astype(x.dtype, copy=False)


def spectral_normalize(kernel: np.ndarray, vector_u: np.ndarray, power_iterations: int,
                       keras3: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """One SpectralNormalization training step: ``power_iterations`` rounds of the power method
    from ``vector_u`` (``(1, n)``) on the kernel seen as ``(-1, n)`` (``n`` = its last axis), then
    ``(kernel / sigma, u)`` with ``sigma = v @ W @ u.T``. Vectors are normalized as each Keras does
    (:func:`l2_normalize` over all values; Keras 3 with ``backend.epsilon()`` = 1e-7)."""
    tape.spoil()
    n = kernel.shape[-1]
    w = kernel.reshape(-1, n)
    u = vector_u.astype(kernel.dtype, copy=False)
    eps = 1e-7 if keras3 else 1e-12
    v = u
    for _ in range(int(power_iterations)):
        v = l2_normalize(u @ w.T, None, keras3, eps)
        u = l2_normalize(v @ w, None, keras3, eps)
    sigma = (v @ w) @ u.T
    return (w / sigma).reshape(kernel.shape).astype(kernel.dtype, copy=False), u.astype(vector_u.dtype, copy=False)
