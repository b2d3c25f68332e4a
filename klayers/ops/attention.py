"""Attention ops: the einsum of ``EinsumDense``, the masked softmax of the attention layers, and
scaled dot-product attention over any set of attention axes (``MultiHeadAttention``).

``einsum_dense`` runs an equation of the form ``[...]FC,CO->[...]FO`` (free axes F, contracted
axes C, output axes O, in that order: every projection of ``MultiHeadAttention``) as one GEMM
through :func:`klayers.ops.dense`; any other equation runs through ``np.einsum`` (optimized).

``dot_product_attention`` is ``softmax(mask(q k^T * scale)) @ v`` with NumPy's batched matmul
over the leading (batch x heads) axes. The masked softmax comes in the three ways Keras applies
a mask (``masking``):

* ``"add"`` (tf-keras ``Softmax(robust_masking=False)``): ``x + (1 - mask) * -1e9``; a fully
  masked row keeps its scores' order in float64 and is uniform in float32 (-1e9 swamps them);
* ``"replace"`` (tf-keras ``Softmax(robust_masking=True)``): ``where(mask, x, -1e9)``;
* ``"where"`` (Keras 3 ``Softmax``): ``where(mask, x, -1e9)``, then masked probabilities set to
  0 (a fully masked row is all zeros);
* ``"fill"`` (Keras 3 ``ops.dot_product_attention``): ``where(mask, x, -0.7 * 3.38953e38)``,
  no zeroing (a fully masked row is uniform).

A fused compiled kernel is a later step; these are the NumPy references.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np

from klayers.backend import tape
from klayers.ops.activation import apply_activation
from klayers.ops.common import ACT_LINEAR
from klayers.ops.dense import dense
from klayers.ops.softmax import softmax

__all__ = ["attention_over_axes", "dot_product_attention", "einsum_dense", "expand_attention_mask", "masked_softmax"]

MASKINGS = ("add", "replace", "where", "fill")


# -- EinsumDense ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=512)
def matmul_layout(equation: str) -> Optional[Tuple[int, int, int, bool]]:
    """``(n_contracted, n_output, n_input, ellipsis)`` when ``equation`` is ``[...]FC,CO->[...]FO`` (then it is
    one matrix product of the input reshaped to ``(-1, prod(C))`` by the kernel reshaped to
    ``(prod(C), prod(O))``), else None."""
    eq = equation.replace(" ", "")
    if eq.count("->") != 1:
        return None
    lhs, out = eq.split("->")
    if lhs.count(",") != 1:
        return None
    a, k = lhs.split(",")
    ellipsis = a.startswith("...") and out.startswith("...")
    if ellipsis:
        a, out = a[3:], out[3:]
    if not (a + k + out).isalpha():
        return None
    if any(len(set(s)) != len(s) for s in (a, k, out)):
        return None
    contracted = "".join(c for c in a if c in k)
    free = "".join(c for c in a if c not in k)
    produced = "".join(c for c in k if c not in a)
    if contracted and any(c in out for c in contracted):
        return None
    if a != free + contracted or k != contracted + produced or out != free + produced:
        return None
    return len(contracted), len(produced), len(a), ellipsis


def einsum_dense(x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], equation: str,
                 activation: Any = None, where: str = "EinsumDense") -> np.ndarray:
    """``activation(einsum(equation, x, kernel) + bias)``.

    Args:
        x: the input (any float dtype; computed in ``kernel.dtype``).
        kernel: the kernel, laid out as the equation's second operand.
        bias: None, or an array broadcasting against the output from its last axis.
        equation: an einsum equation with two operands (``"abc,cde->abde"``, ``"...b,bc->...c"``).
        activation: None (linear) or the layer's activation function.
        where: the layer name for error messages.

    Returns:
        The output, of ``kernel.dtype``.

    Example::

        einsum_dense(np.ones((2, 3), "f"), np.ones((3, 4), "f"), None, "ab,bc->ac")  # all 3.0
    """
    tape.spoil()  # the reshapes (and any einsum) around the GEMM are not kernel calls
    dtype = kernel.dtype
    x = x if x.dtype == dtype else x.astype(dtype)
    layout = matmul_layout(equation)
    if layout is not None and kernel.ndim == layout[0] + layout[1] and (
            x.ndim == layout[2] or (layout[3] and x.ndim > layout[2])) and x.shape[x.ndim - layout[0]:] == kernel.shape[:layout[0]]:
        n_c = layout[0]
        lead, feats = x.shape[: x.ndim - n_c], math.prod(kernel.shape[:n_c])
        out_dims = kernel.shape[n_c:]
        k2 = kernel.reshape(feats, math.prod(out_dims))
        fuse = bias is not None and tuple(bias.shape) == tuple(out_dims)
        in_kernel = fuse or bias is None  # the activation runs in the GEMM's epilogue when no bias follows
        act = activation if in_kernel and activation is not None else ACT_LINEAR
        y = dense(x.reshape(math.prod(lead), feats), k2, bias.reshape(-1) if fuse else None, act, where=where)
        y = y.reshape(lead + out_dims)
        if bias is not None and not fuse:
            y = y + bias
            if activation is not None:
                y = apply_activation(y, activation)
        return y
    try:
        y = np.einsum(equation, x, kernel, optimize=True)
    except ValueError as e:
        raise ValueError(f"{where}: cannot compute the einsum '{equation}' of an input of shape {x.shape} "
                         f"and a kernel of shape {kernel.shape}: {e}") from e
    if bias is not None:
        y = y + bias
    if activation is not None:
        y = apply_activation(y, activation)
    return y.astype(dtype, copy=False)


# -- masked softmax --------------------------------------------------------------------------
def _large_negative(dtype: np.dtype, masking: str) -> Any:
    if masking in ("add", "replace"):  # tf-keras: float16.min / 2, else -1e9
        return dtype.type(np.finfo(np.float16).min / 2 if dtype == np.float16 else -1e9)
    if masking == "where":  # Keras 3 Softmax
        return dtype.type(-3e4 if dtype == np.float16 else -1e9)
    return dtype.type((65500.0 if dtype == np.float16 else 3.38953e38) * -0.7)  # Keras 3 dot_product_attention


def masked_softmax(scores: np.ndarray, mask: Optional[np.ndarray], masking: str = "add",
                   where: str = "attention") -> np.ndarray:
    """Softmax over the last axis of ``scores`` with ``mask`` (broadcasting against ``scores``;
    True / nonzero keeps) applied as ``masking`` says (see the module docstring). In ``"add"``
    mode a non-boolean mask is used as the numbers it holds, as tf-keras does."""
    if masking not in MASKINGS:
        raise ValueError(f"{where}: masking must be one of {MASKINGS}. Received masking={masking!r}")
    if mask is None:
        return softmax(scores, -1, where=where)
    dtype = scores.dtype
    big = _large_negative(dtype, masking)
    if masking == "add":
        m = mask.astype(dtype) if mask.dtype != dtype else mask
        return softmax(scores + (dtype.type(1.0) - m) * big, -1, where=where)
    keep = mask if mask.dtype == bool else (mask > 0.5 if masking in ("replace", "where") else mask != 0)
    probs = softmax(np.where(keep, scores, big), -1, where=where)
    if masking == "where":
        probs = np.where(keep, probs, dtype.type(0))
    return probs


def dot_product_attention(query: np.ndarray, key: np.ndarray, value: np.ndarray, scale: float,
                          mask: Optional[np.ndarray] = None, masking: str = "add", where: str = "attention",
                          dropout: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Scaled dot-product attention over the last two axes.

    Args:
        query: ``(..., T, H)``; key: ``(..., S, H)``; value: ``(..., S, Hv)``; the leading axes
            broadcast (NumPy's matmul over batch x heads).
        scale: multiplies the query before the product (``1 / sqrt(key_dim)``).
        mask: None, or an array broadcasting to ``(..., T, S)`` (True / nonzero attends).
        masking: ``"add"``, ``"replace"``, ``"where"`` or ``"fill"`` (module docstring).
        dropout: None, or a function of the weights giving the weights that combine the values
            (training-time dropout; the returned weights are the ones before it, as Keras's).

    Returns:
        ``(output (..., T, Hv), weights (..., T, S))``.
    """
    tape.spoil()  # NumPy matmuls and masks: not kernel calls a tape can replay
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{where}: the query's last axis ({query.shape[-1]}) and the key's ({key.shape[-1]}) "
                         f"differ; query shape {query.shape}, key shape {key.shape}.")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{where}: the key and the value must have as many steps; key shape {key.shape}, "
                         f"value shape {value.shape}.")
    dtype = query.dtype
    scores = np.matmul(query * dtype.type(scale), np.swapaxes(key, -1, -2))
    if mask is not None:
        try:
            np.broadcast_shapes(np.shape(mask), scores.shape)
        except ValueError as e:
            raise ValueError(f"{where}: the attention mask of shape {np.shape(mask)} does not broadcast to the "
                             f"attention scores of shape {scores.shape}.") from e
    weights = masked_softmax(scores, mask, masking, where)
    used = weights if dropout is None else dropout(weights)
    return np.matmul(used, value), weights


# -- attention over several axes (MultiHeadAttention) ----------------------------------------------
def expand_attention_mask(mask: np.ndarray, scores_rank: int, n_attention_axes: int) -> np.ndarray:
    """Keras's mask expansion: axes of size 1 inserted at ``-2 * n_attention_axes - 1`` (before
    the query and key attention axes) until the mask has the scores' rank."""
    axis = -2 * n_attention_axes - 1
    for _ in range(scores_rank - mask.ndim):
        mask = np.expand_dims(mask, axis)
    return mask


def attention_over_axes(query: np.ndarray, key: np.ndarray, value: np.ndarray, attention_axes: Sequence[int],
                        scale: float, mask: Optional[np.ndarray] = None, masking: str = "add",
                        where: str = "MultiHeadAttention",
                        dropout: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Multi-head dot-product attention of projected tensors, as Keras's einsum equations compute it.

    Args:
        query: ``(B, <query dims>, num_heads, key_dim)`` (rank r); key: the same with the key's
            dims; value: the same with ``value_dim`` last.
        attention_axes: the axes (of these rank-r tensors, each in ``[1, r - 2)``) attended over;
            the others (batch, heads and the rest) are batch axes.
        scale: multiplies the query (``1 / sqrt(key_dim)``).
        mask: None, or a mask already expanded to the scores' rank (:func:`expand_attention_mask`),
            broadcasting to the scores' shape.
        masking: how the mask is applied (module docstring).
        dropout: as in :func:`dot_product_attention`.

    Returns:
        ``(output, scores)``: the output in the query's layout with ``value_dim`` last, and the
        attention probabilities ``(<batch axes incl. heads>, <query attention dims>, <key
        attention dims>)`` (Keras's layout).
    """
    r = query.ndim
    attn = [int(a) for a in attention_axes]
    batch = [i for i in range(r - 1) if i not in attn]
    perm = batch + attn + [r - 1]
    q, k, v = query.transpose(perm), key.transpose(perm), value.transpose(perm)
    nb = len(batch)
    if q.shape[:nb] != k.shape[:nb] or k.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"{where}: the query, key and value do not agree on their batch axes: query {query.shape}, "
                         f"key {key.shape}, value {value.shape} (attention axes {tuple(attn)}).")
    bshape, tq, ts = q.shape[:nb], q.shape[nb:-1], k.shape[nb:-1]
    tn, sn = math.prod(tq), math.prod(ts)
    q = q.reshape(bshape + (tn, q.shape[-1]))
    k = k.reshape(bshape + (sn, k.shape[-1]))
    v = v.reshape(bshape + (sn, v.shape[-1]))
    flat_mask = None
    full = bshape + tq + ts
    if mask is not None:
        if mask.ndim > len(full):
            raise ValueError(f"{where}: the attention mask (shape {mask.shape}) has more axes than the attention "
                             f"scores (shape {full}).")
        try:
            flat_mask = np.broadcast_to(mask, full).reshape(bshape + (tn, sn))
        except ValueError as e:
            raise ValueError(f"{where}: the attention mask of shape {mask.shape} does not broadcast to the "
                             f"attention scores of shape {full}.") from e
    out, weights = dot_product_attention(q, k, v, scale, flat_mask, masking, where, dropout)
    out = out.reshape(bshape + tq + (v.shape[-1],))
    return out.transpose(np.argsort(perm)), weights.reshape(full)
