"""Node: one call of a layer on symbolic inputs (Keras 2's connectivity record)."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

from klayers.engine.keras_tensor import KerasHistory, KerasTensor


def flatten(structure: Any) -> List[Any]:
    """Flatten nested lists/tuples/dicts (dicts by sorted key, as tf.nest does)."""
    if isinstance(structure, (list, tuple)):
        out: List[Any] = []
        for s in structure:
            out.extend(flatten(s))
        return out
    if isinstance(structure, dict):
        out = []
        for k in sorted(structure):
            out.extend(flatten(structure[k]))
        return out
    return [structure]


def map_structure(fn, structure: Any) -> Any:
    """Apply ``fn`` to every leaf, keeping the nesting."""
    if isinstance(structure, list):
        return [map_structure(fn, s) for s in structure]
    if isinstance(structure, tuple):
        return tuple(map_structure(fn, s) for s in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def pack_as(structure: Any, flat: Sequence[Any]) -> Any:
    """Inverse of :func:`flatten` for the same structure."""
    if not isinstance(structure, (list, tuple, dict)):
        return flat[0]
    return _take(structure, iter(flat))


def _take(s: Any, it: Any) -> Any:
    # a module function, not a closure calling itself: that closure, its cell and the iterator
    # over ``flat`` formed a reference cycle, which kept a model call's outputs alive until the
    # cyclic garbage collector ran (and their memory from being reused)
    if isinstance(s, list):
        return [_take(x, it) for x in s]
    if isinstance(s, tuple):
        return tuple(_take(x, it) for x in s)
    if isinstance(s, dict):
        return {k: _take(s[k], it) for k in sorted(s)}
    return next(it)


class Node:
    """A layer applied to symbolic ``call_args`` / ``call_kwargs`` producing ``outputs``.

    The node registers itself on ``layer._inbound_nodes`` and on the ``_outbound_nodes``
    of the layers that produced its inputs.
    """

    def __init__(self, layer, call_args=(), call_kwargs=None, outputs=None):
        self.layer = layer
        self.call_args = tuple(call_args)
        self.call_kwargs = dict(call_kwargs or {})
        self.outputs = outputs
        self.is_input = not self.call_args and not self.call_kwargs
        # The first argument carries the graph's tensors; KerasTensors in kwargs
        # (initial_state, constants ...) are dependencies too.
        self._flat_args = flatten((self.call_args, self.call_kwargs))
        self.keras_inputs = [t for t in self._flat_args if isinstance(t, KerasTensor)]
        self.parent_nodes = [t.node for t in self.keras_inputs]
        node_index = len(layer._inbound_nodes)
        for i, t in enumerate(flatten(outputs)):
            t._keras_history = KerasHistory(layer, node_index, i)
        layer._inbound_nodes.append(self)
        for t in self.keras_inputs:
            t._keras_history.layer._outbound_nodes.append(self)

    @property
    def input_tensors(self) -> Any:
        """The first call argument (a tensor or a list of them)."""
        if self.is_input:
            return self.outputs
        return self.call_args[0] if self.call_args else next(iter(self.call_kwargs.values()))

    @property
    def output_tensors(self) -> Any:
        return self.outputs

    @property
    def inbound_layers(self) -> Any:
        if self.is_input:
            return []
        layers = [t._keras_history.layer for t in flatten(self.input_tensors)]
        return layers[0] if len(layers) == 1 else layers

    @property
    def input_shapes(self) -> Any:
        shapes = map_structure(lambda t: t.shape, self.input_tensors)
        return [shapes] if self.is_input else shapes  # tf-keras lists an input node's shape

    @property
    def output_shapes(self) -> Any:
        shapes = map_structure(lambda t: t.shape, self.outputs)
        return [shapes] if self.is_input else shapes

    def iterate_inbound(self):
        """Yield ``(layer, node_index, tensor_index, tensor)`` for each input tensor."""
        for t in self.keras_inputs:
            h = t._keras_history
            yield h.layer, h.node_index, h.tensor_index, t

    def serialize(self, make_node_key, node_conversion_map) -> List[Any]:
        """Keras 2's ``inbound_nodes`` entry: ``[[name, node_index, tensor_index, kwargs], ...]``."""

        def ser_tensor(t):
            if isinstance(t, KerasTensor):
                h = t._keras_history
                key = make_node_key(h.layer.name, h.node_index)
                return [h.layer.name, node_conversion_map.get(key, 0), h.tensor_index]
            if hasattr(t, "tolist"):
                return t.tolist()
            return t

        arg_names = self.layer._call_arg_names()[1:]
        kwargs: Dict[str, Any] = dict(zip(arg_names, self.call_args[1:]))
        kwargs.update(self.call_kwargs)
        kwargs = map_structure(ser_tensor, kwargs)
        data = []
        for t in flatten(self.input_tensors):
            if isinstance(t, KerasTensor):
                data.append(ser_tensor(t) + [kwargs])
            else:
                data.append(["_CONSTANT_VALUE", -1, ser_tensor(t), kwargs])
        return data
