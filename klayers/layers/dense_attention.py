"""Dot-product (Luong) and additive (Bahdanau) attention: ``Attention`` and ``AdditiveAttention``,
as tf-keras 2.21 (``base_dense_attention.py``) and Keras 3.15 compute them.

Both are called on a list ``[query, value]`` or ``[query, value, key]`` (``key`` defaults to
``value``) with an optional ``mask=[query_mask, value_mask]``; the maths
(:mod:`klayers.ops.dense_attention`) is the same in both Kerases. What differs by dialect:

* ``AdditiveAttention``'s ``scale`` vector is sized from the value's last axis in tf-keras and
  from the query's in Keras 3 (the same whenever tf-keras can run the layer);
* tf-keras accepts a mask list no longer than the inputs, Keras 3 one of 2 or 3 masks;
* tf-keras zeroes the rows of a masked query by multiplying, Keras 3 with ``where`` (these
  differ only for infinite or NaN values);
* tf-keras's deprecated ``causal=True`` constructor argument works (with a warning) but is not
  written in the config, as in tf-keras; Keras 3 has only the ``use_causal_mask`` call argument.

The output mask is the query's mask (the attention scores, when returned, carry none).
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from klayers.engine.base_layer import Layer
from klayers.layers._args import check_rate, is_training
from klayers.ops.dense_attention import (
    dense_attention,
    dense_attention_scores,
    lower_triangular_mask,
)
from klayers.serialization import get_dialect, register_builtins

__all__ = ["AdditiveAttention", "Attention"]


def _shape(x: Any) -> tuple:
    shape = x.shape if hasattr(x, "shape") else x
    return tuple(None if d is None else int(d) for d in shape)


class BaseDenseAttention(Layer):
    """What ``Attention`` and ``AdditiveAttention`` share: the call on ``[query, value(, key)]``,
    masks, dropout of the attention weights in training, the output mask and shapes.
    Subclasses give ``_scores(query, key)``."""

    _SCORE_MODE = "dot"

    def __init__(self, dropout: float = 0.0, seed: Optional[int] = None, **kwargs: Any):
        causal = kwargs.pop("causal", None)
        super().__init__(**kwargs)
        self._init_dialect = get_dialect()
        if causal is not None:
            warnings.warn("`causal` argument is deprecated. Please use `use_causal_mask` in call() method to specify "
                          "causal masking.", DeprecationWarning, stacklevel=2)
        self.causal = bool(causal)
        self.dropout = check_rate(dropout, self._where())
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.supports_masking = True
        self._scores_returned = False

    def _where(self) -> str:
        return f'{type(self).__name__} "{self.name}"'

    def _keras3(self) -> bool:
        return (getattr(self, "_keras_dialect", None) or self._init_dialect) == 3

    # -- checks
    def _check_inputs(self, inputs: Any, mask: Any = None) -> None:
        """Keras's ``_validate_call_args``, with the layer named."""
        name = type(self).__name__
        if not isinstance(inputs, list):
            raise ValueError(f"{self._where()}: {name} layer must be called on a list of inputs, namely [query, value] "
                             f"or [query, value, key]. Received: {type(inputs).__name__}.")
        if not 2 <= len(inputs) <= 3:
            raise ValueError(f"{self._where()}: {name} layer accepts inputs list of length 2 or 3, namely "
                             f"[query, value] or [query, value, key]. Received length: {len(inputs)}.")
        if mask is None or (not self._keras3() and isinstance(mask, (list, tuple)) and not mask):
            return
        if not isinstance(mask, list):
            raise ValueError(f"{self._where()}: {name} layer mask must be a list, namely [query_mask, value_mask]. "
                             f"Received: {type(mask).__name__}.")
        most = 3 if self._keras3() else len(inputs)
        if not 2 <= len(mask) <= most:
            raise ValueError(f"{self._where()}: {name} layer mask must be a list of length 2, namely "
                             f"[query_mask, value_mask]. Received length: {len(mask)}.")

    def _check_shapes(self, shapes: Sequence[Any]) -> None:
        q, v = _shape(shapes[0]), _shape(shapes[1])
        k = _shape(shapes[2]) if len(shapes) > 2 else v
        where = self._where()
        if len(q) < 3 or len(v) != len(q) or len(k) != len(q):
            raise ValueError(f"{where}: query, value and key must have the same rank, at least 3 (batch, steps, "
                             f"features). Received query_shape={q}, value_shape={v}, key_shape={k}")
        if q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:
            raise ValueError(f"{where}: the last axis of the query and of the key must be equal (the key is the value "
                             f"when not given). Received query_shape={q}, key_shape={k}")
        if k[-2] is not None and v[-2] is not None and k[-2] != v[-2]:
            raise ValueError(f"{where}: the key and the value must have as many steps. Received value_shape={v}, "
                             f"key_shape={k}")

    # -- building
    def build(self, input_shape: Any) -> None:
        if not (isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (list, tuple))):
            self._check_inputs(input_shape)  # not a list of shapes: Keras's message
        self._check_inputs(list(input_shape))
        self._check_shapes(input_shape)
        self._build_weights(input_shape)
        self.built = True

    def _build_weights(self, input_shape: List[Any]) -> None:
        pass

    # -- calling
    def _scores(self, query: np.ndarray, key: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def call(self, inputs: Any, mask: Any = None, training: Any = None, return_attention_scores: bool = False,
             use_causal_mask: bool = False) -> Any:
        self._check_inputs(inputs, mask)
        where = self._where()
        dtype = self._np_dtype if self._np_dtype.kind == "f" else np.dtype("float32")
        q, v = (np.asarray(x) for x in inputs[:2])
        k = np.asarray(inputs[2]) if len(inputs) > 2 else v
        q, v, k = (x if x.dtype == dtype else x.astype(dtype) for x in (q, v, k))
        self._check_shapes([q.shape, v.shape, k.shape])
        if q.shape[:-2] != k.shape[:-2] or v.shape[:-2] != k.shape[:-2]:
            raise ValueError(f"{where}: the query, value and key must agree on their batch axes. Received "
                             f"query_shape={q.shape}, value_shape={v.shape}, key_shape={k.shape}")
        q_mask = v_mask = None
        if mask:
            q_mask, v_mask = mask[0], mask[1]
        for m, x, what in ((q_mask, q, "query"), (v_mask, v, "value")):
            if m is not None and np.shape(m) != x.shape[:-1]:
                raise ValueError(f"{where}: the {what} mask of shape {np.shape(m)} does not match the {what} of shape "
                                 f"{x.shape} (expected {x.shape[:-1]}).")
        scores = self._scores(q, k)
        scores_mask = None
        if v_mask is not None:
            scores_mask = np.expand_dims(np.asarray(v_mask).astype(bool), -2)
        if self.causal or use_causal_mask:
            causal = lower_triangular_mask(scores.shape[-2], scores.shape[-1])
            causal = causal.reshape((1,) * (scores.ndim - 2) + causal.shape[-2:])
            scores_mask = causal if scores_mask is None else scores_mask & causal
        drop = self._drop if self.dropout > 0 and is_training(training) else None
        out, weights = dense_attention(scores, v, scores_mask, None if q_mask is None else np.asarray(q_mask).astype(bool),
                                       "where" if self._keras3() else "multiply", drop, where)
        self._scores_returned = bool(return_attention_scores)
        return (out, weights) if return_attention_scores else out

    def _drop(self, weights: np.ndarray) -> np.ndarray:
        """Training-time dropout of the attention weights (klayers's generator, not Keras's)."""
        if self.dropout >= 1:
            return np.zeros_like(weights)
        keep = self._rng.random(weights.shape) >= self.dropout
        return weights * (keep.astype(weights.dtype) * weights.dtype.type(1.0 / (1.0 - self.dropout)))

    def _symbolic_output_shapes(self, input_shapes: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        self._check_inputs(input_shapes if isinstance(input_shapes, list) else [input_shapes], kwargs.get("mask"))
        out = self.compute_output_shape(input_shapes)
        self._scores_returned = bool(kwargs.get("return_attention_scores", False))
        if not self._scores_returned:
            return out
        key = input_shapes[2] if len(input_shapes) > 2 else input_shapes[1]
        return [out, tuple(input_shapes[0][:-1]) + (key[-2],)]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The query's mask (Keras gives it to the attention output only)."""
        self._check_inputs(inputs, mask)
        q_mask = mask[0] if mask else None
        if q_mask is None:
            return None
        q_mask = np.asarray(q_mask)
        return [q_mask, None] if self._scores_returned else q_mask

    def compute_output_shape(self, input_shape: Any) -> tuple:
        """``(*query_shape[:-1], value_shape[-1])``: the output's real shape (Keras 3's answer;
        tf-keras answers the query's shape, which differs only where the value is wider)."""
        if not (isinstance(input_shape, (list, tuple)) and len(input_shape) in (2, 3)
                and all(isinstance(s, (list, tuple)) for s in input_shape)):
            raise ValueError(f"{self._where()}: compute_output_shape expects the shapes of [query, value] or "
                             f"[query, value, key]. Received: {input_shape}")
        self._check_shapes(list(input_shape))
        return tuple(input_shape[0][:-1]) + (input_shape[1][-1],)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["dropout"] = self.dropout
        if self.seed is not None:
            config["seed"] = self.seed
        return config


class Attention(BaseDenseAttention):
    """Dot-product attention (Luong-style), as ``keras.layers.Attention``.

    Args:
        use_scale: learn a scalar ``scale`` multiplying the scores (initialized to 1).
        score_mode: ``"dot"`` (``q @ k^T``) or ``"concat"`` (``concat_score_weight *
            sum(tanh(scale * (q_i + k_j)))``, with a learned scalar ``concat_score_weight``).
        dropout: rate of dropout of the attention weights (training only).
        seed: the dropout seed (Keras 3).

    Call arguments: ``inputs=[query (B, Tq, dim), value (B, Tv, dim_v)(, key (B, Tv, dim))]``,
    ``mask=[query_mask (B, Tq), value_mask (B, Tv)]``, ``training``, ``return_attention_scores``,
    ``use_causal_mask``. Output ``(B, Tq, dim_v)`` (and the weights ``(B, Tq, Tv)``).

    Weights: ``scale`` (``use_scale``), then ``concat_score_weight`` (``score_mode="concat"``),
    both of shape ``()``.

    Example::

        att = Attention()
        att([np.ones((1, 2, 4), "f"), np.ones((1, 3, 4), "f")]).shape   # (1, 2, 4)
    """

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", **kwargs: Any):
        super().__init__(**kwargs)
        self.use_scale = bool(use_scale)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"{self._where()}: Received: score_mode={score_mode}. Acceptable values are: "
                             '["dot", "concat"]')
        self.score_mode = score_mode
        self.scale = None
        self.concat_score_weight = None

    def _build_weights(self, input_shape: List[Any]) -> None:
        self.scale = self.add_weight("scale", shape=(), initializer="ones") if self.use_scale else None
        self.concat_score_weight = None
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight("concat_score_weight", shape=(), initializer="ones")

    def _scores(self, query: np.ndarray, key: np.ndarray) -> np.ndarray:
        scale = None if self.scale is None else self.scale.value
        weight = None if self.concat_score_weight is None else self.concat_score_weight.value
        return dense_attention_scores(query, key, self.score_mode, scale, weight, self._where())

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"use_scale": self.use_scale, "score_mode": self.score_mode})
        return config


class AdditiveAttention(BaseDenseAttention):
    """Additive attention (Bahdanau-style), as ``keras.layers.AdditiveAttention``: scores
    ``sum(scale * tanh(q_i + k_j))`` over the features.

    Args:
        use_scale: learn a ``scale`` vector over the features (glorot-uniform initialized); else
            the scale is 1.
        dropout, seed: as :class:`Attention`.

    Call arguments, output and masks: as :class:`Attention`. Weight: ``scale`` of shape
    ``(dim,)`` (sized from the value's last axis in tf-keras, the query's in Keras 3).

    Example::

        att = AdditiveAttention()
        att([np.ones((1, 2, 4), "f"), np.ones((1, 3, 4), "f")]).shape   # (1, 2, 4)
    """

    def __init__(self, use_scale: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.use_scale = bool(use_scale)
        self.scale = None

    def _build_weights(self, input_shape: List[Any]) -> None:
        self.scale = None
        if not self.use_scale:
            return
        q_dim, v_dim = input_shape[0][-1], input_shape[1][-1]
        if not self._keras3() and v_dim != q_dim:
            raise ValueError(f"{self._where()}: tf-keras sizes the scale of an AdditiveAttention from the value's last "
                             f"axis ({v_dim}), which must then equal the query's ({q_dim}). Received query_shape="
                             f"{tuple(input_shape[0])}, value_shape={tuple(input_shape[1])}")
        dim = q_dim if self._keras3() else v_dim
        if dim is None:
            raise ValueError(f"{self._where()}: the last axis of the inputs must be known to build the scale. "
                             f"Received: {input_shape}")
        self.scale = self.add_weight("scale", shape=(int(dim),), initializer="glorot_uniform")
        self._wide_value = v_dim != q_dim

    def _dialect_conflict(self, target: int) -> Optional[str]:
        """Why a file for Keras ``target`` would not hold this layer, or None: tf-keras sizes the
        scale from the value, which a Keras 3 layer may have wider than the query."""
        if target == 2 and getattr(self, "_wide_value", False):
            return ("tf-keras sizes an AdditiveAttention's scale from the value's last axis, and this layer's value "
                    "is wider than its query")
        return None

    def _scores(self, query: np.ndarray, key: np.ndarray) -> np.ndarray:
        scale = None if self.scale is None else self.scale.value
        return dense_attention_scores(query, key, "additive", scale, None, self._where())

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["use_scale"] = self.use_scale
        return config


register_builtins("layer", globals(), __all__)
