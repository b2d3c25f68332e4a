"""Embedding: integer indices to dense vectors (tf-keras 2.21 semantics)."""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from klayers import constraints, initializers, regularizers
from klayers.backend import arena, tape
from klayers.engine.base_layer import Layer
from klayers.layers._args import positive_int
from klayers.serialization import register_builtins

__all__ = ["Embedding"]

_UNSIGNED = {4: np.dtype(np.uint32), 8: np.dtype(np.uint64)}


def _float_bits_limit(input_dim: int, ftype: type) -> np.unsignedinteger:
    """The bit pattern (as an unsigned integer of the float's width) of the largest float of
    ``ftype`` that is at most ``input_dim``: a float ``x >= +0`` whose bits are below it is
    below ``input_dim``."""
    f = ftype(input_dim)
    if int(f) > input_dim:  # rounded up (input_dim beyond 2**24 in float32)
        f = np.nextafter(f, ftype(0))
    return np.array(f, dtype=ftype).view(_UNSIGNED[np.dtype(ftype).itemsize])[()]


class Embedding(Layer):
    """Looks up rows of ``embeddings`` (``(input_dim, output_dim)``): ``out[..., :] = embeddings[index]``.

    Args:
        input_dim: vocabulary size; indices must lie in ``[0, input_dim)``.
        output_dim: size of each vector.
        embeddings_initializer / _regularizer / _constraint, activity_regularizer: as in Keras.
        mask_zero: index 0 is padding: the layer outputs the mask ``inputs != 0``.
        input_length: the fixed length(s) of the index axes, or None.

    Input ``(batch, ...)`` integer (or float, truncated toward zero as ``tf.cast`` does) indices
    -> output ``(batch, ..., output_dim)`` in the layer dtype. An index outside
    ``[0, input_dim)`` or a NaN raises ValueError (Keras on CPU raises too).
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        activity_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        input_length: Any = None,
        sparse: bool = False,
        **kwargs: Any,
    ):
        if "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,) if input_length else (None,)
        kwargs["autocast"] = False
        # tf-keras nests a tuple input_length into the shape ((None, (2, None))) and writes it so
        # into the config; it is kept as written (it declares no usable input shape).
        nested = None
        for key in ("input_shape", "batch_input_shape"):
            shape = kwargs.get(key)
            if isinstance(shape, (list, tuple)) and any(isinstance(d, (list, tuple)) for d in shape):
                nested = tuple(kwargs.pop(key))
                if key == "input_shape":
                    nested = (kwargs.get("batch_size"),) + nested
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if nested is not None:
            self._batch_input_shape = nested
        where = f"Embedding {self.name}"
        for _arg, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(
                    f"{where}: both `input_dim` and `output_dim` should be positive integers. "
                    f"Received input_dim = {input_dim} and output_dim = {output_dim}"
                )
        if sparse:
            raise ValueError(f"{where}: `sparse=True` (SparseTensor outputs) is not supported by klayers.")
        self.input_dim = positive_int(input_dim, "input_dim", where)
        self.output_dim = positive_int(output_dim, "output_dim", where)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.input_length = input_length
        self.sparse = False
        self._float_limits = {np.dtype(f): _float_bits_limit(self.input_dim, f) for f in (np.float32, np.float64)}

    def build(self, input_shape: Any = None) -> None:
        self.embeddings = self.add_weight(
            "embeddings", shape=(self.input_dim, self.output_dim), initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer, constraint=self.embeddings_constraint,
        )
        self.built = True

    def _indices(self, inputs: Any) -> np.ndarray:
        """The indices as an integer array, checked to lie in ``[0, input_dim)``.

        One pass on the hot path: the maximum of the values seen as unsigned integers of their
        width. For integers a negative index becomes a huge one; for float32/float64 the bits
        of floats >= +0 keep their order while a sign bit, inf or NaN land above the limit.
        Floats that fail it (a negative zero or fraction in (-1, 0), which tf.cast truncates to
        row 0, included) get the exact check ``-1 < x < input_dim`` (NaN fails it), so the
        cast never wraps around; only a failing input pays for naming the culprit.
        """
        x = inputs if type(inputs) is np.ndarray else np.asarray(inputs)
        kind = x.dtype.kind
        if kind == "f":
            if x.size:
                limit = self._float_limits.get(x.dtype)
                # one pass: as unsigned integers the bit patterns of floats >= +0 keep their
                # order, and anything negative (sign bit), inf or NaN compares above the limit
                if limit is None or x.view(limit.dtype).max() >= limit:
                    # exact check: -1 < x < input_dim (NaN fails both), so the cast cannot wrap
                    # and (-1, 0) truncates to row 0 as tf.cast does
                    if not (x.min() > -1 and x.max() < self.input_dim):
                        self._raise_bad_index(x)
            return x.astype(np.int32)
        if kind not in "iub":
            raise TypeError(f"Embedding {self.name}: indices must be integers or floats, got dtype {x.dtype}.")
        if x.dtype.itemsize < 4 or kind == "b":
            x = x.astype(np.intp)  # every value fits: checked below like any int64
        unsigned = x if x.dtype.kind == "u" else x.view(_UNSIGNED[x.dtype.itemsize])
        if x.size and unsigned.max() >= self.input_dim:
            self._raise_bad_index(x)
        # checked values fit (below input_dim); a wide unsigned array is cast after the check
        return x if x.dtype.kind == "i" else x.astype(np.intp)

    def _raise_bad_index(self, x: np.ndarray) -> None:
        if x.dtype.kind == "f":
            if np.isnan(x).any():
                raise ValueError(f"Embedding {self.name}: NaN in the indices.")
            bad = x.min() if x.min() <= -1 else x.max()
        else:
            bad = x.min() if x.min() < 0 else x.max()
        raise ValueError(f"Embedding {self.name}: index {bad} is not in [0, {self.input_dim}) (input_dim={self.input_dim}).")

    @property
    def _no_mask_from_nothing(self) -> bool:  # type: ignore[override]
        return not self.mask_zero

    def call(self, inputs: Any) -> np.ndarray:
        table = self.embeddings.value
        x = inputs if type(inputs) is np.ndarray else np.asarray(inputs)
        out = arena.empty(x.shape + table.shape[1:], table.dtype)
        tape.run(self._lookup_into, x, out)
        return out

    def _lookup_into(self, x: np.ndarray, out: np.ndarray) -> None:
        """``out`` = the rows of the table at indices ``x`` (checked: a recorded call replays
        this on whatever values arrive)."""
        np.take(self.embeddings.value, self._indices(x), axis=0, out=out, mode="clip")  # checked: in range

    def compute_mask(self, inputs: Any, mask: Any = None) -> Optional[np.ndarray]:
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        if self.input_length is None:
            return input_shape + (self.output_dim,)
        in_lens = list(self.input_length) if isinstance(self.input_length, (list, tuple)) else [self.input_length]
        if len(in_lens) != len(input_shape) - 1:
            raise ValueError(f'"input_length" is {self.input_length}, but received input has shape {input_shape}')
        for i, (s1, s2) in enumerate(zip(in_lens, input_shape[1:])):
            if s1 is not None and s2 is not None and s1 != s2:
                raise ValueError(f'"input_length" is {self.input_length}, but received input has shape {input_shape}')
            if s1 is None:
                in_lens[i] = s2
        return (input_shape[0],) + tuple(in_lens) + (self.output_dim,)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
                "mask_zero": self.mask_zero,
                "input_length": self.input_length,
            }
        )
        return config

register_builtins("layer", globals(), __all__)
