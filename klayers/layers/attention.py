"""Attention layers: EinsumDense and MultiHeadAttention (tf-keras 2.21 and Keras 3.15 semantics).

``EinsumDense`` is Keras's einsum layer (``keras.layers.EinsumDense``); ``MultiHeadAttention``
projects query, key and value with four EinsumDense sublayers named ``query``, ``key``,
``value`` and ``attention_output`` (their weights are the layer's, in that order:
``multi_head_attention/query/kernel:0`` ...), and attends through
:func:`klayers.ops.attention.attention_over_axes`.

The two Kerases apply an attention mask differently (``klayers.ops.attention``): tf-keras adds
``-1e9`` to masked scores; Keras 3 replaces them (a fully masked query row gives zero weights
when Keras 3 computes the scores itself: with dropout, ``return_attention_scores`` or attention
over several axes, and uniform weights otherwise). A layer read from a Keras 3 config follows
Keras 3; one built in Python follows tf-keras.
"""

from __future__ import annotations

import math
import re
import string
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from klayers import activations, constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.layers._args import check_rate, is_training, positive_int, weight_args_config
from klayers.ops.attention import attention_over_axes, einsum_dense, expand_attention_mask
from klayers.serialization import get_dialect, register_builtins

__all__ = ["EinsumDense", "MultiHeadAttention"]

_CHR_IDX = string.ascii_lowercase


def _dialect(layer: Any) -> int:
    return getattr(layer, "_keras_dialect", None) or layer._init_dialect


# -- EinsumDense ------------------------------------------------------------------------------
def _parse_equation(equation: Any, where: str) -> Tuple[str, str, str, str]:
    """``(kind, input_spec, weight_spec, output_spec)`` of an equation Keras accepts: kind
    ``"plain"`` (``ab,bc->ac``), ``"left"`` (``...ab,bc->...ac``) or ``"right"``
    (``ab...,bc->ac...``); anything else is refused as Keras refuses it."""
    if not isinstance(equation, str):
        raise ValueError(f"{where}: `equation` must be a string. Received equation={equation!r}")
    dot = re.sub(r"\.\.\.", "0", equation)
    for kind, pattern in (("plain", "([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)"),
                          ("left", "0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)"),
                          ("right", "([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0")):
        m = re.match(pattern, dot)
        if m:
            return kind, m.group(1), m.group(2), m.group(3)
    raise ValueError(
        f"{where}: Invalid einsum equation '{equation}'. Equations must be in the form "
        "[X],[Y]->[Z], ...[X],[Y]->...[Z], or [X]...,[Y]->[Z]...."
    )


def analyze_einsum(equation: str, bias_axes: Optional[str], input_shape: Sequence[Optional[int]],
                   output_shape: Sequence[Optional[int]], keras3: bool = False, where: str = "EinsumDense"):
    """Keras's ``_analyze_einsum_string``: ``(kernel_shape, bias_shape or None, full_output_shape,
    input_axes, output_axes)``. tf-keras sizes a kernel axis found in both the input and the
    output from the input, Keras 3 from the output (``keras3``)."""
    kind, input_spec, weight_spec, output_spec = _parse_equation(equation, where)
    left = kind == "left"
    input_shape = list(input_shape)
    elided = len(input_shape) - len(input_spec)
    out = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    out.insert(0, input_shape[0])
    if elided > 0 and left:
        for i in range(1, elided):
            out.insert(1, input_shape[i])
    elif elided > 0:
        for i in range(len(input_shape) - elided, len(input_shape)):
            out.append(input_shape[i])
    if left:
        in_map = {d: (i + elided) - len(input_shape) for i, d in enumerate(input_spec)}
        out_map = {d: i + elided for i, d in enumerate(output_spec)}
    else:
        in_map = {d: i for i, d in enumerate(input_spec)}
        out_map = {d: i for i, d in enumerate(output_spec)}
    try:
        for d in input_spec:
            if d in out_map and out[out_map[d]] is not None and out[out_map[d]] != input_shape[in_map[d]]:
                raise ValueError(
                    f"{where}: Input shape and output shape do not match at shared dimension '{d}'. Input shape "
                    f"is {input_shape[in_map[d]]}, and output shape is {out[out_map[d]]}."
                )
        for d in output_spec:
            if d not in input_spec and d not in weight_spec:
                raise ValueError(
                    f"{where}: Dimension '{d}' was specified in the output '{output_spec}' but has no "
                    f"corresponding dim in the input spec '{input_spec}' or weight spec '{weight_spec}'"
                )
        kernel, in_axes, out_axes = [], [], []
        for i, d in enumerate(weight_spec):
            first, second = (out_map, in_map) if keras3 else (in_map, out_map)
            if d in first or d in second:
                use_out = (d in out_map) if keras3 else (d not in in_map)
                kernel.append(out[out_map[d]] if use_out else input_shape[in_map[d]])
                (out_axes if d in out_map and (keras3 or d not in in_map) else in_axes).append(i)
            else:
                raise ValueError(
                    f"{where}: Weight dimension '{d}' did not have a match in either the input spec "
                    f"'{input_spec}' or the output spec '{output_spec}'. For this layer, the weight must be "
                    "fully specified."
                )
    except IndexError as e:
        raise ValueError(f"{where}: the equation '{equation}' does not fit an input of shape "
                         f"{tuple(input_shape)}.") from e
    bias = None
    if bias_axes is not None:
        n_left = elided if left else 0
        idx = {c: out[i + n_left] for i, c in enumerate(output_spec)}
        for c in bias_axes:
            if c not in output_spec:
                raise ValueError(f"{where}: Bias dimension '{c}' was requested, but is not part of the output "
                                 f"spec '{output_spec}'")
        first = min(output_spec.find(c) for c in bias_axes)
        bias = [idx[c] if c in bias_axes else 1 for c in output_spec[first:]]
        if not left:
            bias.extend([1] * max(elided, 0))
    return kernel, bias, out, in_axes, out_axes


class EinsumDense(Layer):
    """``activation(einsum(equation, inputs, kernel) + bias)``.

    Args:
        equation: ``"ab,bc->ac"``, ``"...ab,bc->...ac"`` or ``"ab...,bc->ac..."`` forms (Keras's
            three); any other is refused with a ValueError naming the layer.
        output_shape: the output shape without the batch and the ellipsis axes (an int for
            one axis); None where the input gives it.
        activation: name, callable or None (linear).
        bias_axes: output letters that get a bias (None: no bias); the bias spans from the first
            of them to the last output axis, with size 1 on the axes not named.
        kernel_* / bias_* initializers, regularizers, constraints: as in Keras.

    Weights: ``kernel`` (its shape read from the equation, the input and ``output_shape``), then
    ``bias``. An equation ``[...]FC,CO->[...]FO`` (free, contracted, output axes in order, as in
    every MultiHeadAttention projection) runs as one GEMM; others through ``np.einsum``.

    Example::

        layer = EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d")
        layer(np.ones((2, 32, 128), "float32")).shape   # (2, 32, 64)
    """

    def __init__(self, equation: str, output_shape: Any, activation: Any = None, bias_axes: Optional[str] = None,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._init_dialect = get_dialect()
        where = f'EinsumDense "{self.name}"'
        _parse_equation(equation, where)
        self.equation = equation
        if isinstance(output_shape, (int, np.integer)) and not isinstance(output_shape, bool):
            self.partial_output_shape: List[Optional[int]] = [int(output_shape)]
        elif isinstance(output_shape, (list, tuple)) and all(d is None or isinstance(d, (int, np.integer)) for d in output_shape):
            self.partial_output_shape = [None if d is None else int(d) for d in output_shape]
        else:
            raise ValueError(f"{where}: `output_shape` must be an int or a list of ints and Nones. "
                             f"Received output_shape={output_shape!r}")
        if bias_axes is not None and not isinstance(bias_axes, str):
            raise ValueError(f"{where}: `bias_axes` must be a string or None. Received bias_axes={bias_axes!r}")
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.full_output_shape: Optional[List[Optional[int]]] = None
        self.bias = None

    def _analyze(self, input_shape: Any):
        return analyze_einsum(self.equation, self.bias_axes, tuple(input_shape), self.partial_output_shape,
                              keras3=_dialect(self) == 3, where=f'EinsumDense "{self.name}"')

    def build(self, input_shape: Any) -> None:
        kernel_shape, bias_shape, self.full_output_shape, in_axes, out_axes = self._analyze(input_shape)
        if any(d is None for d in kernel_shape) or (bias_shape is not None and any(d is None for d in bias_shape)):
            raise ValueError(f'EinsumDense "{self.name}": the kernel shape {kernel_shape} (bias {bias_shape}) is not '
                             f"fully known from the input shape {tuple(input_shape)} and output_shape "
                             f"{self.partial_output_shape}.")
        init = self.kernel_initializer
        if _dialect(self) == 3 and isinstance(init, initializers.VarianceScaling) and (
                getattr(init, "input_axes", None) is None or getattr(init, "output_axes", None) is None):
            # Keras 3 computes the fans of an einsum kernel from its input and output axes
            config = dict(init.get_config(), input_axes=in_axes, output_axes=out_axes)
            init = type(init).from_config(config)
        self.kernel = self.add_weight("kernel", shape=kernel_shape, initializer=init,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None
        if bias_shape is not None:
            self.bias = self.add_weight("bias", shape=bias_shape, initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def call(self, inputs: np.ndarray) -> np.ndarray:
        act = None if self.activation is activations.linear else self.activation
        return einsum_dense(inputs, self.kernel.value, None if self.bias is None else self.bias.value,
                            self.equation, act, where=f'EinsumDense "{self.name}"')

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(self._analyze(input_shape)[2])

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({
            "output_shape": list(self.partial_output_shape),
            "equation": self.equation,
            "activation": activations.serialize(self.activation),
            "bias_axes": self.bias_axes,
            **weight_args_config(self),
        })
        return config


# -- MultiHeadAttention ---------------------------------------------------------------------------
def _build_attention_equation(rank: int, attn_axes: Tuple[int, ...]) -> Tuple[str, str, int]:
    """Keras's einsum equations of the scores and the combination (kept for the record and
    for ``_dot_product_equation`` / ``_combine_equation``; the computation is
    :func:`~klayers.ops.attention.attention_over_axes`)."""
    target = _CHR_IDX[:rank]
    batch_dims = tuple(np.delete(range(rank), attn_axes + (rank - 1,)))
    offset = rank
    source = ""
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += _CHR_IDX[offset]
            offset += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attn_axes] + [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


def _build_proj_equation(free_dims: int, bound_dims: int, output_dims: int) -> Tuple[str, str, int]:
    input_str = kernel_str = output_str = bias_axes = ""
    for i in range(free_dims):
        input_str += _CHR_IDX[i]
        output_str += _CHR_IDX[i]
    for i in range(bound_dims):
        input_str += _CHR_IDX[free_dims + i]
        kernel_str += _CHR_IDX[free_dims + i]
    for i in range(output_dims):
        c = _CHR_IDX[free_dims + bound_dims + i]
        kernel_str += c
        output_str += c
        bias_axes += c
    return f"{input_str},{kernel_str}->{output_str}", bias_axes, len(output_str)


def _shape(x: Any) -> Optional[Tuple[Optional[int], ...]]:
    if x is None:
        return None
    shape = x.shape if hasattr(x, "shape") else x
    return tuple(None if d is None else int(d) for d in shape)


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al., 2017), as ``keras.layers.MultiHeadAttention``.

    Args:
        num_heads: number of heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value (default ``key_dim``).
        dropout: dropout rate on the attention weights (training only).
        use_bias: whether the projections have biases.
        output_shape: the output's last axes (default: the query's last axis).
        attention_axes: the query axes attended over (default: all but batch, heads, features).
        kernel_* / bias_* initializers, regularizers, constraints: given to the four projections.
        softmax_robust_masking: tf-keras: replace masked scores instead of adding ``-1e9``.
        use_gate, sliding_window, seed, flash_attention: Keras 3's options (a gate projection of
            the query through a sigmoid; a symmetric band of ``sliding_window - 1`` steps; the
            dropout seed; flash attention is only a kernel choice).

    Call arguments: ``query`` ``(B, T, dim)``, ``value`` ``(B, S, dim)``, ``key`` (default
    ``value``), ``attention_mask`` (boolean, broadcasting to ``(B, T, S)``),
    ``return_attention_scores``, ``training``, ``use_causal_mask``; ``query_mask`` /
    ``value_mask`` / ``key_mask``: the Keras masks of the inputs (a model passes them from the
    masks its tensors carry, as Keras does). Output: ``(B, T, dim)`` (or ``output_shape``), and
    the attention weights ``(B, num_heads, T, S)`` when asked for.

    Example::

        mha = MultiHeadAttention(num_heads=2, key_dim=4)
        y = mha(np.ones((1, 5, 8), "f"), np.ones((1, 3, 8), "f"))   # (1, 5, 8)
    """

    def __init__(self, num_heads: int, key_dim: int, value_dim: Optional[int] = None, dropout: float = 0.0,
                 use_bias: bool = True, output_shape: Any = None, attention_axes: Any = None,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, softmax_robust_masking: bool = False,
                 use_gate: bool = False, sliding_window: Optional[int] = None, seed: Optional[int] = None,
                 flash_attention: Optional[bool] = None, **kwargs: Any):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._init_dialect = get_dialect()
        where = f'MultiHeadAttention "{self.name}"'
        self._num_heads = positive_int(num_heads, "num_heads", where)
        self._key_dim = positive_int(key_dim, "key_dim", where)
        self._value_dim = positive_int(value_dim, "value_dim", where) if value_dim else self._key_dim
        self._dropout = check_rate(dropout, where)
        self._use_bias = bool(use_bias)
        if isinstance(output_shape, (list, tuple)):
            if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in output_shape):
                raise ValueError(f"{where}: `output_shape` must be a positive int or a list of them. "
                                 f"Received output_shape={output_shape!r}")
        elif output_shape is not None and (isinstance(output_shape, bool) or not isinstance(output_shape, (int, np.integer))):
            raise ValueError(f"{where}: `output_shape` must be a positive int or a list of them. "
                             f"Received output_shape={output_shape!r}")
        self._output_shape = output_shape
        self._kernel_initializer = initializers.get(kernel_initializer)
        self._bias_initializer = initializers.get(bias_initializer)
        self._kernel_regularizer = regularizers.get(kernel_regularizer)
        self._bias_regularizer = regularizers.get(bias_regularizer)
        self._kernel_constraint = constraints.get(kernel_constraint)
        self._bias_constraint = constraints.get(bias_constraint)
        self._softmax_robust_masking = bool(softmax_robust_masking)
        if attention_axes is not None and not isinstance(attention_axes, (list, tuple)):
            if isinstance(attention_axes, bool) or not isinstance(attention_axes, (int, np.integer)):
                raise ValueError(f"{where}: `attention_axes` must be an int, list, or tuple. "
                                 f"Received: attention_axes={attention_axes!r}")
            attention_axes = (int(attention_axes),)
        self._attention_axes = attention_axes
        self._use_gate = bool(use_gate)
        if sliding_window is not None:
            sliding_window = positive_int(sliding_window, "sliding_window", where)
        self._sliding_window = sliding_window
        self.seed = seed
        self._flash_attention = flash_attention
        self._rng = np.random.default_rng(seed)
        self.supports_masking = True
        self._built_from_signature = False
        self._query_shape = self._key_shape = self._value_shape = None
        self._scores_returned = False

    # -- properties as Keras has them
    num_heads = property(lambda self: self._num_heads)
    key_dim = property(lambda self: self._key_dim)
    value_dim = property(lambda self: self._value_dim)
    dropout = property(lambda self: self._dropout)
    use_bias = property(lambda self: self._use_bias)
    attention_axes = property(lambda self: self._attention_axes)
    query_dense = property(lambda self: self._query_dense)
    key_dense = property(lambda self: self._key_dense)
    value_dense = property(lambda self: self._value_dense)
    output_dense = property(lambda self: self._output_dense)

    def _where(self) -> str:
        return f'MultiHeadAttention "{self.name}"'

    # -- building
    def build(self, input_shape: Any) -> None:
        """The engine builds from the query's shape only: the projections are made when the
        value's shape is known too (:meth:`_build_from_signature`, from the first call)."""
        self.built = True

    def _common_kwargs(self) -> Dict[str, Any]:
        def clone(obj: Any, module: Any) -> Any:
            return module.deserialize(module.serialize(obj)) if obj is not None else None

        return dict(kernel_initializer=clone(self._kernel_initializer, initializers),
                    bias_initializer=clone(self._bias_initializer, initializers),
                    kernel_regularizer=self._kernel_regularizer, bias_regularizer=self._bias_regularizer,
                    activity_regularizer=self.activity_regularizer, kernel_constraint=self._kernel_constraint,
                    bias_constraint=self._bias_constraint, dtype=self._dtype)

    def _dense(self, free_dims: int, bound_dims: int, last_dims: Sequence[int], name: str,
               input_shape: Tuple[Optional[int], ...], activation: Any = None) -> EinsumDense:
        equation, bias_axes, rank = _build_proj_equation(free_dims, bound_dims, len(last_dims))
        layer = EinsumDense(equation, output_shape=[None] * (rank - 1 - len(last_dims)) + list(last_dims),
                            bias_axes=bias_axes if self._use_bias else None, activation=activation, name=name,
                            **self._common_kwargs())
        layer._keras_dialect = _dialect(self)
        layer._maybe_build_from_shape(input_shape)
        self._self_tracked_layers.append(layer)
        for w in layer.weights:
            w.name = f"{self.name}/{w.name}"
        return layer

    def _build_from_signature(self, query: Any, value: Any, key: Any = None) -> None:
        """Make the four projections for inputs of these shapes (arrays, tensors or shapes)."""
        query_shape, value_shape = _shape(query), _shape(value)
        key_shape = value_shape if key is None else _shape(key)
        where = self._where()
        if len(query_shape) < 3 or len(value_shape) < 3 or len(key_shape) < 3:
            raise ValueError(f"{where}: query, value and key must have at least 3 axes (batch, steps, features). "
                             f"Received query_shape={query_shape}, value_shape={value_shape}, key_shape={key_shape}")
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(f"{where}: All dimensions of `value` and `key`, except the last one, must be equal. "
                             f"Received: value_shape={value_shape} and key_shape={key_shape}")
        if len(query_shape) != len(value_shape):
            raise ValueError(f"{where}: the query and the value must have the same rank. "
                             f"Received query_shape={query_shape}, value_shape={value_shape}")
        if any(s[-1] is None for s in (query_shape, value_shape, key_shape)):
            raise ValueError(f"{where}: the last axis of query, value and key must be known. Received "
                             f"query_shape={query_shape}, value_shape={value_shape}, key_shape={key_shape}")
        self._query_shape, self._value_shape, self._key_shape = query_shape, value_shape, key_shape
        self._self_tracked_layers[:] = []
        rank = len(query_shape)
        self._query_dense = self._dense(rank - 1, 1, [self._num_heads, self._key_dim], "query", query_shape)
        self._key_dense = self._dense(rank - 1, 1, [self._num_heads, self._key_dim], "key", key_shape)
        self._gate_dense = None
        if self._use_gate:
            self._gate_dense = self._dense(rank - 1, 1, [self._num_heads, self._value_dim], "gate", query_shape,
                                           activation="sigmoid")
        self._value_dense = self._dense(rank - 1, 1, [self._num_heads, self._value_dim], "value", value_shape)
        self._build_attention(rank + 1)
        if self._output_shape:
            out = list(self._output_shape) if isinstance(self._output_shape, (list, tuple)) else [self._output_shape]
        else:
            out = [query_shape[-1]]
        projected = tuple(query_shape[:-1]) + (self._num_heads, self._value_dim)
        self._output_dense = self._dense(rank - 1, 2, out, "attention_output", projected)
        self._built_from_signature = True

    def _build_attention(self, rank: int) -> None:
        where = self._where()
        if self._attention_axes is None:
            axes = tuple(range(1, rank - 2))
        else:
            # Keras 3 counts a negative axis from the projected rank less one; tf-keras takes the
            # axes as given (a negative one there names other axes, left unsupported)
            axes = tuple(int(a) if a >= 0 else (rank - 1) + int(a) for a in self._attention_axes)
        for a in axes:
            if not 1 <= a < rank - 2:
                raise ValueError(f"{where}: attention axis {a} is out of range for inputs of rank {rank - 1}: the "
                                 f"attention axes must lie in [1, {rank - 3}]. Received attention_axes="
                                 f"{self._attention_axes}")
        if len(set(axes)) != len(axes):
            raise ValueError(f"{where}: `attention_axes` holds a repeated axis: {self._attention_axes}")
        self._attention_axes = axes
        self._dot_product_equation, self._combine_equation, self._scores_rank = _build_attention_equation(rank, axes)

    def build_from_config(self, config: Dict[str, Any]) -> None:
        shapes = config.get("shapes_dict")
        if isinstance(shapes, dict) and not self._built_from_signature and shapes.get("query_shape") is not None:
            self._build_from_signature(shapes["query_shape"], shapes["value_shape"], shapes.get("key_shape"))
            self.built = True
        elif config.get("input_shape") is not None and not self.built:
            self.built = True

    def get_build_config(self) -> Optional[Dict[str, Any]]:
        if self._query_shape is None:
            return None
        return {"input_shape": list(self._query_shape)}

    def _keras3_build_config(self) -> Optional[Dict[str, Any]]:
        if self._query_shape is None:
            return None
        shapes = {"query_shape": list(self._query_shape), "value_shape": list(self._value_shape)}
        if getattr(self, "_key_given", False):
            shapes["key_shape"] = list(self._key_shape)
        return {"shapes_dict": shapes}

    def _keras3_children(self) -> List[Tuple[str, Any]]:
        """Where Keras 3's ``.keras`` writer keeps the projections (``query_dense/vars/0`` ...)."""
        if not self._built_from_signature:
            return []
        out = [("key_dense", self._key_dense), ("output_dense", self._output_dense), ("query_dense", self._query_dense),
               ("value_dense", self._value_dense)]
        if self._gate_dense is not None:
            out.insert(1, ("gate_dense", self._gate_dense))
        return out

    def _dialect_conflict(self, target: int) -> Optional[str]:
        """Why a file for Keras ``target`` (2 or 3) would give this layer other outputs, or None.
        The Kerases weight a fully masked query row differently (tf-keras: uniform, or in
        float64 the scores' softmax; Keras 3: zeros when it computes the scores itself, uniform
        in its fused kernel): that matters only where a mask reaches the layer."""
        if _dialect(self) == target or not self._built_from_signature:
            return None
        names = [p for p in self._call_signature().parameters if p != "self"]
        masked, k3_scores = False, self._dropout > 0 or len(self._query_shape) != 3
        for node in self._inbound_nodes:
            bound = dict(zip(names, node.call_args))
            bound.update(node.call_kwargs)
            tensors = [bound.get(n) for n in ("query", "value", "key")]
            masked |= bound.get("attention_mask") is not None or any(
                getattr(t, "_keras_mask", None) is not None for t in tensors if t is not None)
            k3_scores |= bool(bound.get("return_attention_scores"))
        if masked and (k3_scores or self._np_dtype != np.float32):
            return ("a mask reaches this MultiHeadAttention, and tf-keras and Keras 3 weight a fully masked query "
                    "row differently there")
        return None

    # -- masks
    def _causal_mask(self, query: np.ndarray, value: np.ndarray) -> np.ndarray:
        t, s = query.shape[1], value.shape[1]
        return (np.arange(t)[:, None] >= np.arange(s)[None, :])[None]

    def _attention_mask(self, query: np.ndarray, value: np.ndarray, query_mask: Any, value_mask: Any,
                        key_mask: Any, attention_mask: Any, use_causal_mask: bool, keras3: bool) -> Any:
        """Keras's ``_compute_attention_mask``: the query mask as ``[B, T, 1]``, the value and key
        masks as ``[B, 1, S]``, the causal (and sliding-window) masks as ``[1, T, S]``, all and-ed
        with ``attention_mask``."""
        where = self._where()
        auto = None
        for m, axis, what in ((query_mask, -1, "query"), (value_mask, -2, "value"), (key_mask, -2, "key")):
            if m is None:
                continue
            m = np.asarray(m)
            ref = query if what == "query" else value
            if m.shape != ref.shape[: m.ndim] or m.ndim < 2:
                raise ValueError(f"{where}: the {what} mask of shape {m.shape} does not match the {what} of shape "
                                 f"{ref.shape} (expected {ref.shape[:2]}).")
            m = np.expand_dims(m.astype(bool), axis)
            auto = m if auto is None else auto & m
        if use_causal_mask:
            m = self._causal_mask(query, value)
            auto = m if auto is None else auto & m
        if self._sliding_window is not None:
            t, s = query.shape[1], value.shape[1]
            m = (np.abs(np.arange(t)[:, None] - np.arange(s)[None, :]) < self._sliding_window)[None]
            auto = m if auto is None else auto & m
        if attention_mask is not None:
            attention_mask = np.asarray(attention_mask)
            if keras3 or auto is not None:
                attention_mask = attention_mask.astype(bool)
        if auto is not None:
            attention_mask = auto if attention_mask is None else attention_mask & auto
        return attention_mask

    # -- calling
    def _symbolic_output_shapes(self, input_shapes: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        value, key = self._value_and_key(args, kwargs)
        self._key_given = key is not None
        if not self._built_from_signature:
            self._build_from_signature(input_shapes, value, key)
        self._scores_returned = bool(kwargs.get("return_attention_scores", False))
        out = self.compute_output_shape(input_shapes, _shape(value), _shape(key))
        if not self._scores_returned:
            return out
        rank = len(input_shapes) + 1
        n_attn = len(self._attention_axes)
        q, v = list(input_shapes), list(_shape(value))
        batch = [q[i] if i < rank - 2 else self._num_heads for i in range(rank - 1) if i not in self._attention_axes]
        scores = batch + [q[a] for a in self._attention_axes] + [v[a] for a in self._attention_axes]
        assert len(scores) == self._scores_rank and n_attn
        return [out, tuple(scores)]

    @staticmethod
    def _value_and_key(args: tuple, kwargs: Dict[str, Any]) -> Tuple[Any, Any]:
        value = args[0] if args else kwargs.get("value")
        key = args[1] if len(args) > 1 else kwargs.get("key")
        if value is None:
            raise ValueError("MultiHeadAttention must be called with a query and a value: layer(query, value).")
        return value, key

    def call(self, query: np.ndarray, value: np.ndarray, key: Optional[np.ndarray] = None, attention_mask: Any = None,
             return_attention_scores: bool = False, training: Any = None, use_causal_mask: bool = False,
             query_mask: Any = None, value_mask: Any = None, key_mask: Any = None) -> Any:
        where = self._where()
        dtype = self._np_dtype if self._np_dtype.kind == "f" else np.dtype("float32")
        query = np.asarray(query)
        value = np.asarray(value)
        key_given = key is not None
        key = value if key is None else np.asarray(key)
        query, value, key = (x if x.dtype == dtype else x.astype(dtype) for x in (query, value, key))
        if not self._built_from_signature:
            self._key_given = key_given
            self._build_from_signature(query, value, key if key_given else None)
        for x, what, expected in ((query, "query", self._query_shape), (value, "value", self._value_shape),
                                  (key, "key", self._key_shape)):
            if x.ndim != len(expected) or any(e is not None and e != d for e, d in zip(expected[1:], x.shape[1:])):
                raise ValueError(f"{where}: the {what} of shape {x.shape} does not match the shape the layer was "
                                 f"built for ({tuple(expected)}).")
        if key.shape[1:-1] != value.shape[1:-1] or key.shape[0] != value.shape[0]:
            raise ValueError(f"{where}: All dimensions of `value` and `key`, except the last one, must be equal. "
                             f"Received: value_shape={value.shape} and key_shape={key.shape}")
        if not key_given and _dialect(self) == 2:
            key_mask = value_mask  # tf-keras reads the key's mask after setting key = value
        keras3 = _dialect(self) == 3
        mask = self._attention_mask(query, value, query_mask, value_mask, key_mask, attention_mask,
                                    use_causal_mask, keras3)
        self._scores_returned = bool(return_attention_scores)
        gate = self._gate_dense(query) if self._gate_dense is not None else None
        q = self._query_dense(query)
        k = self._key_dense(key)
        v = self._value_dense(value)
        if keras3:
            fused = self._dropout == 0 and not return_attention_scores and q.ndim == 4
            masking = "fill" if fused else "where"
        else:
            masking = "replace" if self._softmax_robust_masking else "add"
        if mask is not None:
            if mask.ndim > self._scores_rank:
                raise ValueError(f"{where}: the attention mask of shape {mask.shape} has more axes than the attention "
                                 f"scores (rank {self._scores_rank}).")
            mask = expand_attention_mask(mask, self._scores_rank, len(self._attention_axes))
        drop = self._drop if self._dropout > 0 and is_training(training) else None
        out, scores = attention_over_axes(q, k, v, self._attention_axes, 1.0 / math.sqrt(float(self._key_dim)), mask,
                                          masking, where, drop)
        if gate is not None:
            out = out * gate
        out = self._output_dense(out)
        return (out, scores) if return_attention_scores else out

    def _drop(self, weights: np.ndarray) -> np.ndarray:
        """Training-time dropout of the attention weights (klayers's generator, not Keras's)."""
        if self._dropout >= 1:
            return np.zeros_like(weights)
        keep = self._rng.random(weights.shape) >= self._dropout
        return weights * (keep.astype(weights.dtype) * weights.dtype.type(1.0 / (1.0 - self._dropout)))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The query's mask (Keras gives it to the attention output only)."""
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        return [mask, None] if self._scores_returned and mask is not None else mask

    def compute_output_shape(self, query_shape: Any, value_shape: Any = None, key_shape: Any = None) -> tuple:
        if isinstance(query_shape, list) and query_shape and isinstance(query_shape[0], (list, tuple)):
            shapes = list(query_shape) + [None, None]
            query_shape, value_shape, key_shape = shapes[0], shapes[1], shapes[2]
        query_shape = tuple(query_shape)
        if value_shape is not None:
            key_shape = value_shape if key_shape is None else key_shape
            if tuple(value_shape)[1:-1] != tuple(key_shape)[1:-1]:
                raise ValueError(f"{self._where()}: All dimensions of `value` and `key`, except the last one, must be "
                                 f"equal. Received {tuple(value_shape)} and {tuple(key_shape)}")
        if self._output_shape:
            extra = tuple(self._output_shape) if isinstance(self._output_shape, (list, tuple)) else (self._output_shape,)
            return query_shape[:-1] + extra
        return query_shape

    # -- config
    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({
            "num_heads": self._num_heads,
            "key_dim": self._key_dim,
            "value_dim": self._value_dim,
            "dropout": self._dropout,
            "use_bias": self._use_bias,
            "output_shape": self._output_shape,
            "attention_axes": self._attention_axes,
            "kernel_initializer": initializers.serialize(self._kernel_initializer),
            "bias_initializer": initializers.serialize(self._bias_initializer),
            "kernel_regularizer": regularizers.serialize(self._kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self._bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self._kernel_constraint),
            "bias_constraint": constraints.serialize(self._bias_constraint),
            "query_shape": None if self._query_shape is None else list(self._query_shape),
            "key_shape": None if self._key_shape is None else list(self._key_shape),
            "value_shape": None if self._value_shape is None else list(self._value_shape),
            "softmax_robust_masking": self._softmax_robust_masking,
        })
        # Keras 3's options, written only when used (tf-keras has none of them)
        if self._use_gate:
            config["use_gate"] = True
        if self._sliding_window is not None:
            config["sliding_window"] = self._sliding_window
        if self.seed is not None:
            config["seed"] = self.seed
        return config

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        config = dict(config)
        for key in ("query_shape", "key_shape", "value_shape"):
            config.pop(key, None)
        if config.pop("softmax_robust_masking", False):
            raise ValueError(f"Cannot write layer {self.name!r} (MultiHeadAttention) for Keras 3: "
                             "softmax_robust_masking=True has no Keras 3 equivalent. Save as .h5 (tf-keras) instead.")
        out = {k: config[k] for k in ("name", "trainable", "dtype", "num_heads", "key_dim", "value_dim", "dropout",
                                      "use_bias") if k in config}
        out["use_gate"] = self._use_gate
        shape = config.get("output_shape")
        out["output_shape"] = (list(shape) if isinstance(shape, (list, tuple)) else [shape]) if shape else None
        out["attention_axes"] = None if config.get("attention_axes") is None else list(config["attention_axes"])
        out["sliding_window"] = self._sliding_window
        for k in ("kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
                  "activity_regularizer", "kernel_constraint", "bias_constraint"):
            out[k] = config.get(k)
        out["seed"] = self.seed
        return out

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> MultiHeadAttention:
        """tf-keras's: the shapes in the config build the layer (its weights exist at once)."""
        config = dict(config)
        shapes = [config.pop(k, None) for k in ("query_shape", "key_shape", "value_shape")]
        layer = super().from_config(config)
        if None not in shapes:
            layer._key_given = True
            layer._build_from_signature(shapes[0], shapes[2], shapes[1])
        return layer


register_builtins("layer", globals(), __all__)
