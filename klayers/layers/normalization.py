"""Normalization layers: BatchNormalization (and tf-keras's SyncBatchNormalization),
LayerNormalization, GroupNormalization, UnitNormalization, RMSNormalization (Keras 3),
SpectralNormalization (a wrapper), and the preprocessing layers Rescaling and Normalization
(tf-keras 2.21 semantics; Keras 3 configs are read too, with Keras 3's maths where they differ)."""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from klayers import backend, constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.input_spec import InputSpec
from klayers.engine.node import flatten
from klayers.engine.plan import ChannelAffine
from klayers.layers._args import is_training
from klayers.layers.wrappers import Wrapper
from klayers.ops.common import contiguous
from klayers.ops.normalization import (
    batch_norm,
    batch_norm_affine,
    channel_affine,
    group_norm,
    l2_normalize,
    layer_norm,
    rescale,
    rms_norm,
    spectral_normalize,
    standardize,
)
from klayers.serialization import register_builtins

__all__ = ["BatchNormalization", "GroupNormalization", "LayerNormalization", "Normalization", "RMSNormalization",
           "Rescaling", "SpectralNormalization", "SyncBatchNormalization", "UnitNormalization"]


def validate_axis(axis: Any, input_shape: Sequence[Optional[int]], layer: str) -> List[int]:
    """tf-keras's ``validate_axis``: ``axis`` (int or list) as a list of non-negative axes.

    Raises:
        ValueError: an axis outside ``[-rank, rank)`` or a repeated axis (the layer is named).
    """
    rank = len(input_shape)
    if not rank:
        raise ValueError(f"{layer}: input has undefined rank. Received: input_shape={tuple(input_shape)}")
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    axes = [int(a) + rank if a < 0 else int(a) for a in axes]
    for a in axes:
        if a < 0 or a >= rank:
            raise ValueError(
                f"{layer}: invalid value for `axis` argument. Expected 0 <= axis < inputs.rank (with "
                f"inputs.rank={rank}). Received: axis={tuple(axes)}"
            )
    if len(axes) != len(set(axes)):
        raise ValueError(f"{layer}: duplicate axis: {tuple(axes)}")
    return axes


def _check_axis_arg(axis: Any, layer: str) -> Any:
    if isinstance(axis, (list, tuple)):
        if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            raise TypeError(f"{layer}: expected an int or a list/tuple of ints for the argument 'axis', but received: {axis!r}")
        return list(axis)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{layer}: expected an int or a list/tuple of ints for the argument 'axis', but received: {axis!r}")
    return int(axis)


class BatchNormalization(Layer):
    """Normalizes each feature (the ``axis`` entries) with batch or moving statistics.

    Inference (``training`` falsy or None, or ``trainable=False``):
    ``gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta``.
    ``training=True``: the batch's mean and (biased) variance over every other axis normalize
    the batch (weighted by ``mask`` when one is given), and the moving statistics move toward
    them: ``moving -= (moving - batch) * (1 - momentum)``. As in tf-keras, a rank-4/5 input
    normalized over its channels axis takes TensorFlow's fused path, where the moving variance
    moves toward the *unbiased* batch variance (``n / (n - 1)`` times the biased one) and a mask
    is ignored.

    Args:
        axis: the feature axis (int) or axes (list); -1 by default.
        momentum, epsilon, center, scale, the four initializers, the regularizers and
        constraints of ``beta`` and ``gamma``: as in Keras.

    Weights, in Keras's order: ``gamma`` (if ``scale``), ``beta`` (if ``center``), then the
    non-trainable ``moving_mean``, ``moving_variance``. Shape ``(features,)`` for one axis,
    else the input rank with 1 on the reduced axes.
    """

    def __init__(
        self,
        axis: Any = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        synchronized: bool = False,
        renorm: bool = False,
        renorm_clipping: Any = None,
        renorm_momentum: float = 0.99,
        fused: Optional[bool] = None,
        virtual_batch_size: Optional[int] = None,
        adjustment: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        where = f"BatchNormalization {self.name!r}"
        self.axis = _check_axis_arg(axis, where)
        if renorm:
            raise ValueError(f"{where}: `renorm=True` (batch renormalization) is not supported by klayers.")
        if virtual_batch_size is not None:
            raise ValueError(f"{where}: `virtual_batch_size` is not supported by klayers. Received: virtual_batch_size={virtual_batch_size}")
        if adjustment is not None:
            raise ValueError(f"{where}: `adjustment` is not supported by klayers.")
        if not 0 <= float(momentum) <= 1:
            raise ValueError(f"{where}: `momentum` must be in [0, 1]. Received: momentum={momentum}")
        if float(epsilon) <= 0:
            raise ValueError(f"{where}: `epsilon` must be positive. Received: epsilon={epsilon}")
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.synchronized = bool(synchronized)
        axes = [self.axis] if isinstance(self.axis, int) else self.axis
        fusable = len(axes) == 1 and axes[0] in (-4, -3, -1, 1, 3, 4) and self._dtype in ("float16", "float32")
        self.fused = fused if fused is not None else (None if fusable and not self.synchronized else False)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        where = f"BatchNormalization {self.name!r}"
        self.axis = validate_axis(self.axis, input_shape, where)
        rank = len(input_shape)
        if self.fused is None or self.fused:
            self.fused = rank in (4, 5) and (self.axis == [1] or self.axis == [rank - 1])
        axis_to_dim = {a: input_shape[a] for a in self.axis}
        for _a, d in axis_to_dim.items():
            if d is None:
                raise ValueError(f"{where}: input has undefined `axis` dimension. Received input with shape {input_shape} and axis={tuple(self.axis)}")
        self.input_spec = InputSpec(ndim=rank, axes=axis_to_dim)
        if len(axis_to_dim) == 1:
            param_shape: Any = (list(axis_to_dim.values())[0],)
        else:
            param_shape = [axis_to_dim.get(i, 1) for i in range(rank)]
        self._param_shape = tuple(param_shape)
        self.gamma = self.add_weight("gamma", shape=param_shape, initializer=self.gamma_initializer,
                                     regularizer=self.gamma_regularizer, constraint=self.gamma_constraint) if self.scale else None
        self.beta = self.add_weight("beta", shape=param_shape, initializer=self.beta_initializer,
                                    regularizer=self.beta_regularizer, constraint=self.beta_constraint) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", shape=param_shape, initializer=self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape=param_shape, initializer=self.moving_variance_initializer, trainable=False)
        self.built = True

    def _broadcast(self, v: Optional[np.ndarray], ndim: int) -> Optional[np.ndarray]:
        if v is None or v.ndim == ndim or (len(self.axis) == 1 and self.axis[0] == ndim - 1):
            return v
        shape = [1] * ndim
        shape[self.axis[0]] = v.shape[0]
        return v.reshape(shape)

    def _affine_spec(self) -> Optional[ChannelAffine]:
        """At inference this layer is ``x * inv + shift`` along its axis: the declaration the
        inference planner reads to fold it into a preceding convolution or Dense. None for
        subclasses (they may change the maths)."""
        if type(self) not in (BatchNormalization, SyncBatchNormalization):  # the same maths at inference
            return None

        def affine() -> Tuple[np.ndarray, np.ndarray]:
            return batch_norm_affine(np.dtype(np.float64), self.moving_mean.value, self.moving_variance.value,
                                     None if self.beta is None else self.beta.value,
                                     None if self.gamma is None else self.gamma.value, self.epsilon)

        weights = tuple(v for v in (self.gamma, self.beta, self.moving_mean, self.moving_variance) if v is not None)
        return ChannelAffine(tuple(self.axis), weights, affine)

    def call(self, inputs: np.ndarray, training: Any = None, mask: Any = None) -> np.ndarray:
        x = inputs if inputs.dtype == np.dtype(self._dtype) else inputs.astype(self._dtype)
        ndim = x.ndim
        if len(self.axis) == 1 and not (training and self.trainable):
            # inference over one channel axis: per-channel coefficients (as tf.nn.batch_normalization
            # computes them), then one fused pass over x in the compiled kernel
            inv, shift = batch_norm_affine(
                x.dtype, self.moving_mean.value, self.moving_variance.value,
                None if self.beta is None else self.beta.value,
                None if self.gamma is None else self.gamma.value, self.epsilon)
            return channel_affine(x, self.axis[0], inv, shift, where=f"BatchNormalization {self.name!r}")
        gamma = self._broadcast(self.gamma.value if self.gamma is not None else None, ndim)
        beta = self._broadcast(self.beta.value if self.beta is not None else None, ndim)
        if not (training and self.trainable):
            mean = self._broadcast(self.moving_mean.value, ndim)
            variance = self._broadcast(self.moving_variance.value, ndim)
            return batch_norm(x, mean, variance, beta, gamma, self.epsilon)
        reduction = tuple(i for i in range(ndim) if i not in self.axis)
        if self.fused and mask is not None:
            warnings.warn("Masking is not supported with `fused=True`: the mask is ignored for the normalization (as in tf-keras).")
            mask = None
        if mask is None:
            mean = np.mean(x, axis=reduction, keepdims=True, dtype=np.float64 if x.dtype == np.float32 else None)
            variance = np.mean(np.square(x - mean), axis=reduction, keepdims=True)
            count = float(np.prod([x.shape[i] for i in reduction]))
        else:
            w = np.expand_dims(np.asarray(mask).astype(x.dtype), -1)
            w = np.broadcast_to(w, x.shape)
            total = np.sum(w, axis=reduction, keepdims=True)
            safe = np.where(total > 0, total, 1)
            mean = np.sum(x * w, axis=reduction, keepdims=True) / safe
            variance = np.sum(np.square(x - mean) * w, axis=reduction, keepdims=True) / safe
            count = None
        mean = mean.astype(x.dtype)
        variance = variance.astype(x.dtype)
        out = batch_norm(x, mean, variance, beta, gamma, self.epsilon)
        keep = len(self.axis) > 1
        new_mean = mean if keep else mean.reshape(self._param_shape)
        new_variance = variance if keep else variance.reshape(self._param_shape)
        if self.fused and count is not None and count > 1:
            new_variance = new_variance * (count / (count - 1.0))
        decay = 1.0 - self.momentum
        for var, value in ((self.moving_mean, new_mean), (self.moving_variance, new_variance)):
            old = var.value
            var.value = (old - (old - value.astype(old.dtype)) * old.dtype.type(decay)).astype(old.dtype)
        return out

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "axis": self.axis,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint),
            }
        )
        return config

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3 writes a single normalized axis as an int, not a one-element list."""
        config = dict(config)
        if isinstance(config.get("axis"), list) and len(config["axis"]) == 1:
            config["axis"] = config["axis"][0]
        return config

    @classmethod
    def _from_keras3_config(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3 writes ``synchronized`` and the renorm keys; it never takes TensorFlow's fused
        path, so its training step uses the biased variance everywhere (``fused=False``)."""
        config = dict(config)
        if config.pop("renorm", False):
            raise ValueError(f"BatchNormalization {config.get('name')!r}: `renorm=True` is not supported by klayers.")
        config.pop("renorm_clipping", None)
        config.pop("renorm_momentum", None)
        config["fused"] = False
        return config


class LayerNormalization(Layer):
    """Normalizes each sample over ``axis`` (int or list; -1 by default):
    ``gamma * (x - mean) / sqrt(variance + epsilon) + beta``, with the biased variance.

    Weights: ``gamma`` (if ``scale``) then ``beta`` (if ``center``), of shape
    ``[input_shape[a] for a in axis]``.
    """

    def __init__(
        self,
        axis: Any = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.axis = _check_axis_arg(axis, f"LayerNormalization {self.name!r}")
        self.epsilon = epsilon
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        where = f"LayerNormalization {self.name!r}"
        self.axis = validate_axis(self.axis, input_shape, where)
        param_shape = [input_shape[a] for a in self.axis]
        if any(d is None for d in param_shape):
            raise ValueError(f"{where}: the normalized axes must be known. Received input_shape={input_shape}, axis={self.axis}")
        self.input_spec = InputSpec(ndim=len(input_shape), axes={a: input_shape[a] for a in self.axis})
        self.gamma = self.add_weight("gamma", shape=param_shape, initializer=self.gamma_initializer,
                                     regularizer=self.gamma_regularizer, constraint=self.gamma_constraint) if self.scale else None
        self.beta = self.add_weight("beta", shape=param_shape, initializer=self.beta_initializer,
                                    regularizer=self.beta_regularizer, constraint=self.beta_constraint) if self.center else None
        self.built = True

    def call(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs if inputs.dtype == np.dtype(self._dtype) else inputs.astype(self._dtype)
        ndim = x.ndim
        k = len(self.axis)
        if self.axis == list(range(ndim - k, ndim)):
            # trailing axes in order (the usual axis=-1): the compiled row kernel, where
            # gamma/beta flatten in the input's own layout
            return layer_norm(x, k, None if self.gamma is None else self.gamma.value,
                              None if self.beta is None else self.beta.value, self.epsilon,
                              where=f"LayerNormalization {self.name!r}")
        axes = tuple(self.axis)
        shape = [1] * ndim
        for a in self.axis:
            shape[a] = x.shape[a]

        def bcast(v: Optional[Any]) -> Optional[np.ndarray]:
            return None if v is None else v.value.reshape(shape)

        mean = np.mean(x, axis=axes, keepdims=True)
        variance = np.mean(np.square(x - mean), axis=axes, keepdims=True)
        return batch_norm(x, mean, variance, bcast(self.beta), bcast(self.gamma), self.epsilon)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "axis": self.axis,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint),
            }
        )
        return config

    @classmethod
    def _from_keras3_config(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        config = dict(config)
        if config.pop("rms_scaling", False):
            raise ValueError(
                f"LayerNormalization {config.get('name')!r}: the Keras 3 option rms_scaling=True is not supported by klayers."
            )
        return config


class Rescaling(Layer):
    """``inputs * scale + offset`` in the layer dtype (``scale`` / ``offset``: scalars or
    per-channel lists, broadcast from the last axis). Integer inputs are cast first."""

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        for arg, value in (("scale", scale), ("offset", offset)):
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise ValueError(f"Rescaling {self.name!r}: `{arg}` must be a number or a list of numbers. Received: {arg}={value!r}") from e
            if arr.dtype.kind != "f":
                raise ValueError(f"Rescaling {self.name!r}: `{arg}` must be numeric. Received: {arg}={value!r}")
        self.scale = scale
        self.offset = offset

    def call(self, inputs: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self._dtype)
        x = contiguous(inputs, dtype)
        scale = np.asarray(self.scale, dtype=dtype)
        offset = np.asarray(self.offset, dtype=dtype)
        try:
            return rescale(x, scale, offset if offset.ndim or offset != 0 else None)
        except ValueError as e:
            raise ValueError(f"Rescaling {self.name!r}: scale of shape {scale.shape} does not broadcast to inputs of shape {x.shape}.") from e

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"scale": self.scale, "offset": self.offset})
        return config


def _listify(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Normalization(Layer):
    """Feature-wise standardization ``(x - mean) / max(sqrt(variance), epsilon)`` (``invert=True``:
    ``mean + x * max(sqrt(variance), epsilon)``), with ``epsilon = backend.epsilon()``.

    Args:
        axis: the axes that keep their own statistics (int, tuple, or None for one scalar);
            -1 by default.
        mean, variance: the statistics as numbers or arrays (both or neither). Without them the
            layer holds non-trainable weights ``mean``, ``variance`` (floats) and ``count``
            (int64), set with ``set_weights`` (a saved model) or :meth:`adapt`.
        invert: apply the inverse transform.
    """

    def __init__(self, axis: Any = -1, mean: Any = None, variance: Any = None, invert: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axis = (int(axis),)
        else:
            axis = tuple(axis)
        self.axis = axis
        if (mean is not None) != (variance is not None):
            raise ValueError(
                f"Normalization {self.name!r}: when setting values directly, both `mean` and `variance` "
                f"must be set. Got mean: {mean} and variance: {variance}"
            )
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        ndim = len(input_shape)
        where = f"Normalization {self.name!r}"
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"{where}: all `axis` values must be in the range [-ndim, ndim). Found ndim: `{ndim}`, axis: {self.axis}")
        self._keep_axis = sorted(d if d >= 0 else d + ndim for d in self.axis)
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError(f"{where}: all `axis` values to be kept must have known shape. Got axis: {self.axis}, input shape: {input_shape}")
        self._reduce_axis = [d for d in range(ndim) if d not in self._keep_axis]
        self._broadcast_shape = [input_shape[d] if d in self._keep_axis else 1 for d in range(ndim)]
        shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight("mean", shape=shape, initializer="zeros", trainable=False)
            self.adapt_variance = self.add_weight("variance", shape=shape, initializer="ones", trainable=False)
            self.count = self.add_weight("count", shape=(), dtype="int64", initializer="zeros", trainable=False)
        else:
            try:
                mean = np.asarray(self.input_mean, dtype=self._dtype) * np.ones(shape, dtype=self._dtype)
                variance = np.asarray(self.input_variance, dtype=self._dtype) * np.ones(shape, dtype=self._dtype)
            except ValueError as e:
                raise ValueError(f"{where}: `mean`/`variance` do not broadcast to the kept axes' shape {shape}.") from e
            self._fixed = (mean.reshape(self._broadcast_shape), variance.reshape(self._broadcast_shape))
        self.built = True

    def _stats(self) -> Any:
        if self.input_mean is not None:
            return self._fixed
        return (self.adapt_mean.value.reshape(self._broadcast_shape).astype(self._dtype, copy=False),
                self.adapt_variance.value.reshape(self._broadcast_shape).astype(self._dtype, copy=False))

    def adapt(self, data: Any, batch_size: Any = None, steps: Any = None) -> None:
        """Compute ``mean`` and ``variance`` from ``data`` (an array whose shape matches the
        layer's input), as Keras's ``adapt`` does (one pass, biased variance)."""
        if self.input_mean is not None:
            raise ValueError(f"Normalization {self.name!r}: cannot `adapt` a layer initialized with static `mean` and `variance`.")
        data = np.asarray(data, dtype=self._dtype)
        if not self.built:
            self._maybe_build_from_shape(tuple(data.shape))
        reduce = tuple(self._reduce_axis)
        mean = np.mean(data, axis=reduce, dtype=np.float64)
        variance = np.var(data, axis=reduce, dtype=np.float64)
        self.adapt_mean.value = mean.astype(self._dtype)
        self.adapt_variance.value = variance.astype(self._dtype)
        self.count.value = np.asarray(int(np.prod([data.shape[d] for d in reduce])), dtype=np.int64)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        x = contiguous(inputs, self._dtype)
        mean, variance = self._stats()
        denom = np.maximum(np.sqrt(variance), variance.dtype.type(backend.epsilon()))
        # channels last: the same maths on rows of whole pixels (long inner loops)
        last = self._keep_axis == [x.ndim - 1] and x.ndim == len(self._broadcast_shape)
        return standardize(x, mean, denom, self.invert, last_axis=last)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            {"axis": self.axis, "invert": self.invert, "mean": _listify(self.input_mean), "variance": _listify(self.input_variance)}
        )
        return config


class SyncBatchNormalization(BatchNormalization):
    """tf-keras's ``layers.experimental.SyncBatchNormalization``: BatchNormalization with
    ``synchronized=True`` (batch statistics across replicas in training; one replica here, so
    the batch's own). It never takes TensorFlow's fused path, so a training step moves the moving
    variance toward the *biased* batch variance, and honours a mask, for every rank. Inference is
    BatchNormalization's. tf-keras serializes it under ``keras.layers.experimental`` with
    BatchNormalization's keys; Keras 3 has no such class (``BatchNormalization(synchronized=True)``).
    """

    _keras_module = "keras.layers.experimental"

    def __init__(
        self,
        axis: Any = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ):
        if kwargs.get("fused"):
            raise ValueError("SyncBatchNormalization: `fused=True` is not supported when `synchronized=True`.")
        kwargs.pop("synchronized", None)
        super().__init__(
            axis=axis, momentum=momentum, epsilon=epsilon, center=center, scale=scale,
            beta_initializer=beta_initializer, gamma_initializer=gamma_initializer,
            moving_mean_initializer=moving_mean_initializer, moving_variance_initializer=moving_variance_initializer,
            beta_regularizer=beta_regularizer, gamma_regularizer=gamma_regularizer,
            beta_constraint=beta_constraint, gamma_constraint=gamma_constraint, synchronized=True, **kwargs)


def _keras3(layer: Layer) -> bool:
    """Whether the layer was read from a Keras 3 config (its maths follow Keras 3 where they differ)."""
    return getattr(layer, "_keras_dialect", 2) == 3


def _masked_inputs(layer: Layer) -> bool:
    """Whether a mask reaches ``layer`` in a model (a mask argument, or an input tensor carrying one)."""
    for node in layer._inbound_nodes:
        if node.call_kwargs.get("mask") is not None:
            return True
        values = list(node.call_args) + list(node.call_kwargs.values())
        if any(getattr(t, "_keras_mask", None) is not None for t in flatten(values)):
            return True
    return False


class GroupNormalization(Layer):
    """Group normalization (Wu & He, 2018): the channels of ``axis`` split into ``groups`` groups;
    each sample's group is normalized by its own mean and (biased) variance over the group's
    channels and every non-batch axis, then scaled by ``gamma`` and shifted by ``beta`` per channel.
    ``groups=1`` is close to LayerNormalization, ``groups=-1`` (as many groups as channels) is
    instance normalization.

    Args:
        groups: the number of groups (it must divide the channels), or -1 for one per channel;
            32 by default.
        axis: the channels axis (an int); -1 by default.
        epsilon, center, scale, the initializers, regularizers and constraints of ``beta`` and
        ``gamma``: as in Keras.

    Weights: ``gamma`` (if ``scale``) then ``beta`` (if ``center``), both ``(channels,)``.

    A mask (tf-keras) weights the moments (it is broadcast to the input's shape); a layer read
    from a Keras 3 config ignores it there, as Keras 3 does, and passes it on in both.

    Example: ``GroupNormalization(groups=2)`` on ``(batch, 8, 8, 4)`` normalizes channels 0-1 and
    2-3 of each sample over their 8 * 8 * 2 values.
    """

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        where = f"GroupNormalization {self.name!r}"
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or (groups <= 0 and groups != -1):
            raise ValueError(f"{where}: received an invalid value for argument `groups`, expected a positive integer "
                             f"(or `-1` for instance normalization). Received: groups={groups!r}")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"{where}: `axis` must be one int (the channels axis). Received: axis={axis!r}")
        self.groups = int(groups)
        self.axis = int(axis)
        self.epsilon = epsilon
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        where = f"GroupNormalization {self.name!r}"
        validate_axis(self.axis, input_shape, where)
        dim = input_shape[self.axis]
        if dim is None:
            raise ValueError(f"{where}: axis {self.axis} of input tensor should have a defined dimension but the layer "
                             f"received an input with shape {input_shape}.")
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups:
            raise ValueError(f"{where}: number of groups ({self.groups}) cannot be more than the number of channels ({dim}).")
        if dim % self.groups != 0:
            raise ValueError(f"{where}: number of groups ({self.groups}) must divide the number of channels ({dim}).")
        self.input_spec = InputSpec(ndim=len(input_shape), axes={self.axis: dim})
        self.gamma = self.add_weight("gamma", shape=(dim,), initializer=self.gamma_initializer,
                                     regularizer=self.gamma_regularizer, constraint=self.gamma_constraint) if self.scale else None
        self.beta = self.add_weight("beta", shape=(dim,), initializer=self.beta_initializer,
                                    regularizer=self.beta_regularizer, constraint=self.beta_constraint) if self.center else None
        super().build(input_shape)

    def call(self, inputs: np.ndarray, mask: Any = None) -> np.ndarray:
        x = inputs if inputs.dtype == self._np_dtype else inputs.astype(self._dtype)
        if _keras3(self):
            mask = None  # Keras 3's GroupNormalization takes no mask: its moments are the plain ones
        return group_norm(x, self.axis, self.groups, None if self.gamma is None else self.gamma.value,
                          None if self.beta is None else self.beta.value, self.epsilon, mask=mask,
                          where=f"GroupNormalization {self.name!r}")

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def _dialect_conflict(self, target: int) -> Optional[str]:
        """Why a file for Keras ``target`` (2 or 3) would give this layer other outputs, or None:
        tf-keras weights the moments by a mask, Keras 3 ignores it."""
        if (3 if _keras3(self) else 2) == target or not _masked_inputs(self):
            return None
        return "a mask reaches this GroupNormalization; tf-keras weights its moments by the mask, Keras 3 ignores it"

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "groups": self.groups,
                "axis": self.axis,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint),
            }
        )
        return config


def _int_or_ints(axis: Any, where: str) -> Any:
    if isinstance(axis, (list, tuple)) and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
        return [int(a) for a in axis]
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        return int(axis)
    raise TypeError(f"{where}: invalid value for `axis` argument: expected an int or a list/tuple of ints. Received: axis={axis!r}")


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over ``axis`` (an int or a list; -1 by default).

    Near zero the two Kerases differ: tf-keras (``tf.linalg.l2_normalize``) divides by
    ``max(norm, 1e-6)``, Keras 3 (``ops.normalize``) by ``max(norm, 1e-12)``; a layer read from a
    Keras 3 config does the latter. No weights; a mask passes through.
    """

    def __init__(self, axis: Any = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = _int_or_ints(axis, f"UnitNormalization {self.name!r}")
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        validate_axis(self.axis, tuple(input_shape), f"UnitNormalization {self.name!r}")
        super().build(input_shape)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs if inputs.dtype == self._np_dtype else inputs.astype(self._dtype)
        return l2_normalize(x, self.axis, keras3=_keras3(self))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        return config


class RMSNormalization(Layer):
    """Keras 3's root-mean-square normalization (Zhang & Sennrich, 2019):
    ``x * rsqrt(mean(x**2, axis) + epsilon) * scale``.

    Args:
        axis: an int or a list of ints; -1 by default. At build it becomes a sorted list (as
            Keras 3 writes it back).
        epsilon: added to the mean square; 1e-6 by default.

    Weights: ``scale`` (ones at first), of shape ``[input_shape[a] for a in axis]``; it multiplies
    the output as NumPy broadcasts it (from the last axis), as Keras 3 does.
    """

    def __init__(self, axis: Any = -1, epsilon: float = 1e-6, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = _int_or_ints(axis, f"RMSNormalization {self.name!r}")
        self.epsilon = epsilon

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        where = f"RMSNormalization {self.name!r}"
        validate_axis(self.axis, input_shape, where)
        axes = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(f"{where}: the normalized axes must be known. Received input_shape={input_shape}, axis={axes}")
        self.axis = axes
        self.scale = self.add_weight("scale", shape=shape, initializer="ones")
        super().build(input_shape)

    def call(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs if inputs.dtype == self._np_dtype else inputs.astype(self._dtype)
        try:
            return rms_norm(x, self.axis, self.scale.value, self.epsilon)
        except ValueError as e:
            raise ValueError(f"RMSNormalization {self.name!r}: its scale of shape {self.scale.shape} does not broadcast "
                             f"against inputs of shape {x.shape} (axis={self.axis}).") from e

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config


class SpectralNormalization(Wrapper):
    """Wraps a layer with a ``kernel`` (Dense, Conv*, ConvTranspose*) or ``embeddings``
    (Embedding) and keeps that weight's spectral norm near 1 while training.

    At inference (``training`` falsy, the default) the wrapped layer runs on its stored kernel, as
    both Kerases do: the normalized kernel is whatever the last training step stored. With
    ``training=True``, ``power_iterations`` rounds of the power method from the stored
    ``vector_u`` estimate the top singular value ``sigma`` of the kernel seen as
    ``(-1, kernel.shape[-1])``; the kernel becomes ``kernel / sigma`` and ``vector_u`` the new
    estimate (unless the kernel is all zeros), then the layer runs.

    Weights, as tf-keras orders them: the wrapped layer's (named under the wrapper:
    ``spectral_normalization/kernel:0``), then the non-trainable ``vector_u`` ``(1, n)``. Keras 3
    orders them ``kernel, vector_u``, then the wrapped layer's others; a layer read from a Keras 3
    config does the same, and casts its output to the input's dtype as Keras 3 does.
    """

    _cast_integer_inputs = False  # the wrapped layer casts (or, an Embedding, indexes with) its inputs

    def __init__(self, layer: Layer, power_iterations: int = 1, **kwargs: Any):
        super().__init__(layer, **kwargs)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, (int, np.integer)) or power_iterations <= 0:
            raise ValueError(f"SpectralNormalization {self.name!r}: `power_iterations` should be greater than zero. "
                             f"Received: `power_iterations={power_iterations!r}`")
        self.power_iterations = int(power_iterations)

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        self.layer._maybe_build_from_shape(input_shape)
        # tf-keras names the wrapped weights under the wrapper: "spectral_normalization/kernel:0"
        for w in self.layer.weights:
            parts = w.name.split("/")
            if parts[0] == self.layer.name:
                w.name = "/".join([self.name] + parts[1:])
        kernel = getattr(self.layer, "kernel", None)
        if kernel is None:
            kernel = getattr(self.layer, "embeddings", None)
        if kernel is None:
            raise ValueError(f"SpectralNormalization {self.name!r}: {type(self.layer).__name__} object has no attribute "
                             "'kernel' nor 'embeddings'")
        self.kernel = kernel
        # Keras tracks the kernel as the wrapper's own weight too (a .keras file stores it twice)
        self._trainable_weights.append(kernel)
        self.vector_u = self.add_weight("vector_u", shape=(1, kernel.shape[-1]),
                                        initializer=initializers.TruncatedNormal(stddev=0.02), trainable=False,
                                        dtype=str(kernel.value.dtype))
        super().build(input_shape)

    @property
    def weights(self) -> List[Any]:
        if not _keras3(self):
            return super().weights
        return self._dedup(self._trainable_weights + self._non_trainable_weights + list(self.layer.weights))

    def call(self, inputs: Any, training: Any = None) -> Any:
        if is_training(training):
            kernel = self.kernel.value
            if np.any(kernel != 0):
                new_kernel, new_u = spectral_normalize(kernel, self.vector_u.value, self.power_iterations,
                                                       keras3=_keras3(self))
                self.vector_u.value = new_u
                self.kernel.value = new_kernel
        out = self.layer(inputs, training=training)
        if _keras3(self) and isinstance(inputs, np.ndarray) and np.asarray(out).dtype != inputs.dtype:
            out = np.asarray(out).astype(inputs.dtype)  # Keras 3: ops.cast(output, inputs.dtype)
        return out

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)

    def _dialect_conflict(self, target: int) -> Optional[str]:
        """Why a file for Keras ``target`` (2 or 3) would give this layer other outputs, or None:
        Keras 3 casts the output to the input's dtype, which changes an Embedding's (integer ids)."""
        if (3 if _keras3(self) else 2) == target or not hasattr(self.layer, "embeddings"):
            return None
        return ("Keras 3's SpectralNormalization casts its output to the dtype of its input, the integer ids of "
                f"the wrapped {type(self.layer).__name__}; tf-keras does not")

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["power_iterations"] = self.power_iterations
        return config

register_builtins("layer", globals(), __all__)
