"""Keras 3's grouped-query attention (``keras.layers.GroupQueryAttention``, Keras 3.15).

``num_query_heads`` query heads share ``num_key_value_heads`` key and value heads: each
key/value head serves ``num_query_heads // num_key_value_heads`` consecutive query heads
(Keras's ``ops.repeat(key, num_repeats, axis=2)``). Four EinsumDense sublayers, built as Keras
3 builds them (weights in this order): ``query`` (``bqm,muh->bquh``), ``key`` and ``value``
(``bkm,mvh->bkvh``), ``attention_output`` (``bquh,uhm->bqm``), and ``gate`` (sigmoid, after
``key``) with ``use_gate``.

Masks as Keras 3 applies them: the Keras masks of query, value and key, the causal and
sliding-window masks and ``attention_mask`` are and-ed into one ``(B, T, S)`` mask. Without
dropout and attention scores Keras runs its fused ``dot_product_attention`` (a fully masked
query row is uniform); otherwise its ``Softmax`` (a fully masked row is 0). ``flash_attention``
only picks a kernel: ignored, except that Keras refuses it with dropout or scores.

Keras 3's own Python class is ``GroupedQueryAttention``: that names a default layer
(``grouped_query_attention``) and its ``.keras`` object paths; its public and config name is
``GroupQueryAttention``, the name of this class.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from klayers import constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.layer_utils import restore_layer, unique_object_name
from klayers.layers._args import check_rate, is_training, positive_int
from klayers.layers.attention import EinsumDense
from klayers.ops.attention import attention_over_axes
from klayers.serialization import register_builtins

__all__ = ["GroupQueryAttention"]


def _shape(x: Any) -> Optional[Tuple[Optional[int], ...]]:
    if x is None:
        return None
    shape = x.shape if hasattr(x, "shape") else x
    return tuple(None if d is None else int(d) for d in shape)


class GroupQueryAttention(Layer):
    """Grouped-query attention (Ainslie et al., 2023), as Keras 3's ``GroupQueryAttention``.

    Args:
        head_dim: size of each attention head.
        num_query_heads: number of query heads.
        num_key_value_heads: number of key and value heads; must divide ``num_query_heads``.
        dropout: dropout rate of the attention weights (training only).
        use_bias: whether the projections have biases.
        sliding_window: None, or each query attends to keys less than this many steps away.
        flash_attention: a kernel choice in Keras; ignored (refused with dropout, as Keras does).
        kernel_* / bias_* initializers, regularizers, constraints: given to the projections.
        use_gate: a sigmoid gate projection of the query multiplies the attention output.
        seed: the dropout seed.

    Call arguments: ``query (B, T, dim)``, ``value (B, S, dim)``, ``key (B, S, dim_k)`` (default
    ``value``), ``attention_mask`` (boolean, broadcasting to ``(B, T, S)``),
    ``return_attention_scores``, ``training``, ``use_causal_mask``; ``query_mask`` /
    ``value_mask`` / ``key_mask``: the Keras masks of the inputs (a model passes them). Output
    ``(B, T, dim)``, and the weights ``(B, num_query_heads, T, S)`` when asked for.

    Example::

        gqa = GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2)
        gqa(np.ones((1, 5, 8), "f"), np.ones((1, 3, 8), "f")).shape   # (1, 5, 8)
    """

    _keras3_python_name = "GroupedQueryAttention"

    def __init__(self, head_dim: int, num_query_heads: int, num_key_value_heads: int, dropout: float = 0.0,
                 use_bias: bool = True, sliding_window: Optional[int] = None, flash_attention: Optional[bool] = None,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, use_gate: bool = False,
                 seed: Optional[int] = None, **kwargs: Any):
        if kwargs.get("name") is None:
            kwargs["name"] = unique_object_name("grouped_query_attention")
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        where = self._where()
        self.head_dim = positive_int(head_dim, "head_dim", where)
        self.num_query_heads = positive_int(num_query_heads, "num_query_heads", where)
        self.num_key_value_heads = positive_int(num_key_value_heads, "num_key_value_heads", where)
        if self.num_query_heads % self.num_key_value_heads != 0:
            raise ValueError(f"{where}: `num_query_heads` must be divisible by `num_key_value_heads`. Received "
                             f"num_query_heads={num_query_heads}, num_key_value_heads={num_key_value_heads}")
        self.num_repeats = self.num_query_heads // self.num_key_value_heads
        self.dropout = check_rate(dropout, where)
        self.use_bias = bool(use_bias)
        self.use_gate = bool(use_gate)
        if sliding_window is not None and (isinstance(sliding_window, bool) or not isinstance(sliding_window, int)
                                           or sliding_window <= 0):
            raise ValueError(f"{where}: `sliding_window` must be `None` or a positive integer. "
                             f"Received: sliding_window={sliding_window}")
        self.sliding_window = sliding_window
        self._flash_attention = bool(flash_attention)
        if self._flash_attention and self.dropout > 0.0:
            raise ValueError(f"{where}: Dropout is not supported when flash attention is enabled. Please set dropout "
                             "to 0.0 to use flash attention.")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.supports_masking = True
        self._built_from_signature = False
        self._query_shape = self._value_shape = self._key_shape = None
        self._key_given = False
        self._scores_returned = False
        self._query_dense = self._key_dense = self._value_dense = self._output_dense = self._gate_dense = None

    def _where(self) -> str:
        return f'GroupQueryAttention "{self.name}"'

    # -- building
    def build(self, input_shape: Any) -> None:
        """The engine builds from the query's shape only: the projections are made when the
        value's shape is known too (:meth:`_build_from_signature`, from the first call)."""
        self.built = True

    def _dense(self, equation: str, last: List[Optional[int]], bias_axes: str, name: str, input_shape: Any,
               activation: Any = None) -> EinsumDense:
        def clone(obj: Any, module: Any) -> Any:
            return module.deserialize(module.serialize(obj)) if obj is not None else None

        layer = EinsumDense(equation, output_shape=[None] + last, bias_axes=bias_axes if self.use_bias else None,
                            activation=activation, name=name,
                            kernel_initializer=clone(self.kernel_initializer, initializers),
                            bias_initializer=clone(self.bias_initializer, initializers),
                            kernel_regularizer=self.kernel_regularizer, bias_regularizer=self.bias_regularizer,
                            activity_regularizer=self.activity_regularizer, kernel_constraint=self.kernel_constraint,
                            bias_constraint=self.bias_constraint, dtype=self._dtype)
        layer._keras_dialect = 3  # Keras 3's kernel shapes and initializer fans
        layer._maybe_build_from_shape(input_shape)
        self._self_tracked_layers.append(layer)
        for w in layer.weights:
            w.name = f"{self.name}/{w.name}"
        return layer

    def _build_from_signature(self, query: Any, value: Any, key: Any = None) -> None:
        """Keras 3's ``build(query_shape, value_shape, key_shape)``: the projections for inputs
        of these shapes (arrays, tensors or shapes)."""
        q, v = _shape(query), _shape(value)
        k = v if key is None else _shape(key)
        where = self._where()
        if len(q) != 3 or len(v) != 3 or len(k) != 3:
            raise ValueError(f"{where}: query, value and key must have 3 axes (batch, steps, features). Received "
                             f"query_shape={q}, value_shape={v}, key_shape={k}")
        if v[1] is not None and k[1] is not None and v[1] != k[1]:
            raise ValueError(f"{where}: All dimensions of `value` and `key`, except the last one, must be equal. "
                             f"Received: value_shape={v} and key_shape={k}")
        if any(s[-1] is None for s in (q, v, k)):
            raise ValueError(f"{where}: the last axis of query, value and key must be known. Received query_shape={q}, "
                             f"value_shape={v}, key_shape={k}")
        self._query_shape, self._value_shape, self._key_shape = q, v, k
        self._self_tracked_layers[:] = []
        u, kv, h = self.num_query_heads, self.num_key_value_heads, self.head_dim
        self._query_dense = self._dense("bqm,muh->bquh", [u, h], "uh", "query", q)
        self._key_dense = self._dense("bkm,mvh->bkvh", [kv, h], "vh", "key", k)
        self._gate_dense = None
        if self.use_gate:
            self._gate_dense = self._dense("bqm,muh->bquh", [u, h], "uh", "gate", q, activation="sigmoid")
        self._value_dense = self._dense("bkm,mvh->bkvh", [kv, h], "vh", "value", v)
        self._output_dense = self._dense("bquh,uhm->bqm", [q[-1]], "m", "attention_output", (None, None, u, h))
        self._built_from_signature = True

    def build_from_config(self, config: Dict[str, Any]) -> None:
        shapes = config.get("shapes_dict")
        if isinstance(shapes, dict) and not self._built_from_signature and shapes.get("query_shape") is not None:
            self._key_given = shapes.get("key_shape") is not None
            self._build_from_signature(shapes["query_shape"], shapes["value_shape"], shapes.get("key_shape"))
        self.built = True

    def get_build_config(self) -> Optional[Dict[str, Any]]:
        return self._keras3_build_config()

    def _keras3_build_config(self) -> Optional[Dict[str, Any]]:
        if self._query_shape is None:
            return None
        shapes = {"query_shape": list(self._query_shape), "value_shape": list(self._value_shape)}
        if self._key_given:
            shapes["key_shape"] = list(self._key_shape)
        return {"shapes_dict": shapes}

    def __reduce__(self):
        """Pickled with the shapes it was built for: its projections exist only from them."""
        _, (cls, config, _shape_, weights, classes) = super().__reduce__()
        return (_restore, (cls, config, self._keras3_build_config(), weights, classes))

    def _keras3_children(self) -> List[Tuple[str, Any]]:
        """Where Keras 3's ``.keras`` writer keeps the projections (``_query_dense/vars/0`` ...)."""
        if not self._built_from_signature:
            return []
        out = [("_key_dense", self._key_dense), ("_output_dense", self._output_dense),
               ("_query_dense", self._query_dense), ("_value_dense", self._value_dense)]
        if self._gate_dense is not None:
            out.insert(0, ("_gate_dense", self._gate_dense))
        return out

    # -- masks
    def _attention_mask(self, t: int, s: int, query_mask: Any, value_mask: Any, key_mask: Any, attention_mask: Any,
                        use_causal_mask: bool, shapes: Dict[str, tuple]) -> Any:
        """Keras 3's ``_compute_attention_mask``: ``[B, T, 1]`` query mask, ``[B, 1, S]`` value
        and key masks, ``[1, T, S]`` causal and sliding-window masks, and-ed with the
        ``attention_mask``."""
        auto = None
        for m, axis, what in ((query_mask, -1, "query"), (value_mask, -2, "value"), (key_mask, -2, "key")):
            if m is None:
                continue
            m = np.asarray(m)
            if m.shape != shapes[what][:2]:
                raise ValueError(f"{self._where()}: the {what} mask of shape {m.shape} does not match the {what} of "
                                 f"shape {shapes[what]} (expected {shapes[what][:2]}).")
            m = np.expand_dims(m.astype(bool), axis)
            auto = m if auto is None else auto & m
        if use_causal_mask:
            m = (np.arange(t)[:, None] >= np.arange(s)[None, :])[None]
            auto = m if auto is None else auto & m
        if self.sliding_window is not None:
            m = (np.abs(np.arange(t)[:, None] - np.arange(s)[None, :]) < self.sliding_window)[None]
            auto = m if auto is None else auto & m
        if attention_mask is not None:
            attention_mask = np.asarray(attention_mask).astype(bool)
        if auto is not None:
            attention_mask = auto if attention_mask is None else attention_mask & auto
        return attention_mask

    # -- calling
    def _symbolic_output_shapes(self, input_shapes: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        value = args[0] if args else kwargs.get("value")
        key = args[1] if len(args) > 1 else kwargs.get("key")
        if value is None:
            raise ValueError(f"{self._where()} must be called with a query and a value: layer(query, value).")
        if not self._built_from_signature:
            self._key_given = key is not None
            self._build_from_signature(input_shapes, value, key)
        out = self.compute_output_shape(input_shapes, _shape(value), _shape(key))
        self._scores_returned = bool(kwargs.get("return_attention_scores", False))
        if not self._scores_returned:
            return out
        s = _shape(key if key is not None else value)[1]
        return [out, (input_shapes[0], self.num_query_heads, input_shapes[1], s)]

    def call(self, query: np.ndarray, value: np.ndarray, key: Optional[np.ndarray] = None, query_mask: Any = None,
             value_mask: Any = None, key_mask: Any = None, attention_mask: Any = None,
             return_attention_scores: bool = False, training: Any = None, use_causal_mask: bool = False) -> Any:
        where = self._where()
        if self._flash_attention and return_attention_scores:
            raise ValueError(f"{where}: Returning attention scores is not supported when flash attention is enabled. "
                             "Please disable flash attention to access attention scores.")
        dtype = self._np_dtype if self._np_dtype.kind == "f" else np.dtype("float32")
        key_given = key is not None
        query, value = np.asarray(query), np.asarray(value)
        key = value if key is None else np.asarray(key)
        query, value, key = (x if x.dtype == dtype else x.astype(dtype) for x in (query, value, key))
        if not self._built_from_signature:
            self._key_given = key_given
            self._build_from_signature(query, value, key if key_given else None)
        for x, what, expected in ((query, "query", self._query_shape), (value, "value", self._value_shape),
                                  (key, "key", self._key_shape)):
            if x.ndim != 3 or any(e is not None and e != d for e, d in zip(expected[2:], x.shape[2:])):
                raise ValueError(f"{where}: the {what} of shape {x.shape} does not match the shape the layer was "
                                 f"built for ({tuple(expected)}).")
        if key.shape[:2] != value.shape[:2] or query.shape[0] != value.shape[0]:
            raise ValueError(f"{where}: All dimensions of `value` and `key`, except the last one, must be equal, and "
                             f"the batch of the query too. Received: query_shape={query.shape}, "
                             f"value_shape={value.shape}, key_shape={key.shape}")
        t, s = query.shape[1], value.shape[1]
        mask = self._attention_mask(t, s, query_mask, value_mask, key_mask if key_given else None, attention_mask,
                                    use_causal_mask, {"query": query.shape, "value": value.shape, "key": key.shape})
        if mask is not None:
            if mask.ndim > 4:
                raise ValueError(f"{where}: the attention mask of shape {mask.shape} has more axes than the attention "
                                 "scores (rank 4).")
            while mask.ndim < 4:
                mask = np.expand_dims(mask, -3)  # before the query and key axes: the heads
        gate = self._gate_dense(query) if self._gate_dense is not None else None
        q = self._query_dense(query)
        k = np.repeat(self._key_dense(key), self.num_repeats, axis=2)
        v = np.repeat(self._value_dense(value), self.num_repeats, axis=2)
        # Keras's fused dot_product_attention leaves a fully masked row uniform; its Softmax zeroes it
        masking = "fill" if self.dropout == 0 and not return_attention_scores else "where"
        drop = self._drop if self.dropout > 0 and is_training(training) else None
        out, scores = attention_over_axes(q, k, v, (1,), 1.0 / math.sqrt(float(self.head_dim)), mask, masking, where,
                                          drop)
        if gate is not None:
            out = out * gate
        out = self._output_dense(out)
        self._scores_returned = bool(return_attention_scores)
        return (out, scores) if return_attention_scores else out

    def _drop(self, weights: np.ndarray) -> np.ndarray:
        """Training-time dropout of the attention weights (klayers's generator, not Keras's)."""
        if self.dropout >= 1:
            return np.zeros_like(weights)
        keep = self._rng.random(weights.shape) >= self.dropout
        return weights * (keep.astype(weights.dtype) * weights.dtype.type(1.0 / (1.0 - self.dropout)))

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
        if value_shape is None:
            return query_shape
        value_shape = tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        if query_shape[-1] != value_shape[-1]:
            raise ValueError(f"{self._where()}: The last dimension of `query_shape` and `value_shape` must be equal, "
                             f"but are {query_shape[-1]}, {value_shape[-1]}. Received: query_shape={query_shape}, "
                             f"value_shape={value_shape}")
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(f"{self._where()}: All dimensions of `value` and `key`, except the last one, must be "
                             f"equal. Received: value_shape={value_shape} and key_shape={key_shape}")
        return query_shape

    # -- config
    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({
            "head_dim": self.head_dim,
            "num_query_heads": self.num_query_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "use_bias": self.use_bias,
            "use_gate": self.use_gate,
            "sliding_window": self.sliding_window,
            "dropout": self.dropout,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "seed": self.seed,
        })
        return config


def _restore(cls: type, config: Dict[str, Any], build_config: Any, weights: Any, classes: Dict[str, type]) -> Any:
    layer = restore_layer(cls, config, None, None, classes)
    if build_config:
        layer.build_from_config(build_config)
    if weights is not None:
        layer.set_weights(weights)
    return layer


register_builtins("layer", globals(), __all__)
# Keras 3's legacy .h5 writer names the class by its Python name (not a public klayers name)
register_builtins("layer", {"GroupedQueryAttention": GroupQueryAttention}, ["GroupedQueryAttention"])
