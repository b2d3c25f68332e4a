"""The attention of Keras's ``Attention`` (Luong) and ``AdditiveAttention`` (Bahdanau) layers.

Both Kerases compute them the same way (tf-keras ``base_dense_attention.py``, Keras 3
``attention.py``):

* scores ``(..., Tq, Tv)``: ``"dot"``: ``q @ k^T`` (times the scalar ``scale``); ``"concat"``:
  ``concat_weight * sum(tanh(scale * (q_i + k_j)))``; ``"additive"``: ``sum(scale * tanh(q_i +
  k_j))`` (``scale`` a vector over the features, or 1);
* a score mask (the value mask ``(..., 1, Tv)`` and-ed with the causal mask): masked scores
  get ``1e9`` subtracted (``65504`` in float16). tf-keras subtracts ``1e9 * padding`` and Keras 3
  takes ``where(padding, scores - 1e9, scores)``: the same numbers. A fully masked row is
  therefore the softmax of ``scores - 1e9``: uniform in float32 (the scores drown), the
  scores' own softmax in float64;
* ``softmax`` over the value steps, the weights times the value, and rows of a masked query
  set to 0.

These are NumPy references (the products are NumPy's batched matmul); no compiled kernel.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from klayers.backend import tape
from klayers.ops.softmax import softmax

__all__ = ["dense_attention", "dense_attention_scores", "lower_triangular_mask"]

SCORE_MODES = ("dot", "concat", "additive")


def dense_attention_scores(query: np.ndarray, key: np.ndarray, mode: str = "dot", scale: Optional[np.ndarray] = None,
                           concat_weight: Optional[np.ndarray] = None, where: str = "Attention") -> np.ndarray:
    """Attention scores ``(..., Tq, Tv)`` of ``query (..., Tq, dim)`` and ``key (..., Tv, dim)``.

    Args:
        mode: ``"dot"`` or ``"concat"`` (Luong, ``Attention``'s ``score_mode``) or ``"additive"``
            (Bahdanau, ``AdditiveAttention``).
        scale: None, a scalar (dot, concat) or a ``(dim,)`` vector (additive).
        concat_weight: the scalar ``concat_score_weight`` (concat only).

    Example::

        dense_attention_scores(np.ones((1, 2, 3)), np.ones((1, 4, 3)))   # all 3.0, shape (1, 2, 4)
    """
    if mode not in SCORE_MODES:
        raise ValueError(f"{where}: mode must be one of {SCORE_MODES}. Received mode={mode!r}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{where}: the last axis of the query ({query.shape[-1]}) and of the key "
                         f"({key.shape[-1]}) must be equal. Received query shape {query.shape}, key shape {key.shape}.")
    dtype = query.dtype
    if mode == "dot":
        scores = np.matmul(query, np.swapaxes(key, -1, -2))
        if scale is not None:
            scores = scores * np.asarray(scale, dtype)
        return scores
    pair = np.expand_dims(query, -2) + np.expand_dims(key, -3)  # (..., Tq, Tv, dim)
    if mode == "concat":
        if scale is not None:
            pair = np.asarray(scale, dtype) * pair
        scores = np.tanh(pair).sum(axis=-1)
        return scores * np.asarray(concat_weight if concat_weight is not None else 1.0, dtype)
    t = np.tanh(pair)
    if scale is None:
        return t.sum(axis=-1)
    scale = np.asarray(scale, dtype)
    return t @ scale if scale.ndim == 1 else (scale * t).sum(axis=-1)


def lower_triangular_mask(tq: int, tv: int) -> np.ndarray:
    """Keras's causal mask ``(1, Tq, Tv)``: step ``i`` attends to steps ``j <= i``."""
    return (np.arange(tq)[:, None] >= np.arange(tv)[None, :])[None]


def dense_attention(scores: np.ndarray, value: np.ndarray, scores_mask: Optional[np.ndarray] = None,
                    query_mask: Optional[np.ndarray] = None, zero_by: str = "multiply",
                    dropout: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                    where: str = "Attention") -> Tuple[np.ndarray, np.ndarray]:
    """``softmax(mask(scores)) @ value``, rows of masked queries zeroed.

    Args:
        scores: ``(..., Tq, Tv)``; value: ``(..., Tv, dim_v)``.
        scores_mask: None, or a boolean mask broadcasting to the scores (True attends).
        query_mask: None, or a ``(..., Tq)`` mask: the output rows where it is False are 0,
            by ``"multiply"`` (tf-keras: ``result * mask``) or ``"where"`` (Keras 3).
        dropout: None, or a function of the weights giving the weights that combine the values
            (training); the returned weights are those before it, as Keras's.

    Returns:
        ``(output (..., Tq, dim_v), weights (..., Tq, Tv))``.
    """
    tape.spoil()  # NumPy matmuls and masks: not kernel calls a tape can replay
    dtype = scores.dtype
    if scores.shape[-1] != value.shape[-2]:
        raise ValueError(f"{where}: the key and the value must have as many steps; the scores have {scores.shape[-1]}, "
                         f"the value {value.shape[-2]} (value shape {value.shape}).")
    if scores_mask is not None:
        big = dtype.type(65504.0 if dtype == np.float16 else 1.0e9)
        scores = np.where(scores_mask, scores, scores - big)
    weights = softmax(scores, -1, where=where)
    used = weights if dropout is None else dropout(weights)
    out = np.matmul(used, value.astype(dtype, copy=False))
    if query_mask is not None:
        q = np.expand_dims(query_mask, -1)
        out = out * q.astype(dtype) if zero_by == "multiply" else np.where(q, out, dtype.type(0))
    return out, weights
