"""Rebuild a functional graph from its config, in either dialect.

Keras 2 wires layers with ``inbound_nodes: [[[name, node_index, tensor_index, kwargs], ...], ...]``
and numbers a nested functional model's nodes from 1; Keras 3 writes
``[{"args": [...__keras_tensor__ with keras_history...], "kwargs": {...}}]`` and numbers from 0.
Both become calls of the deserialized layers on symbolic tensors, processed in config order
until every node's inputs exist (as tf-keras's ``reconstruct_from_config``).
"""

from __future__ import annotations

import collections
from typing import Any, Dict, List, Optional, Tuple

from klayers.engine.graph import should_skip_first_node
from klayers.engine.input_layer import InputLayer
from klayers.engine.layer_serialization import deserialize as deserialize_layer
from klayers.engine.node import flatten

_CONSTANT = "_CONSTANT_VALUE"


def _is_ref(x: Any) -> bool:
    return (
        isinstance(x, (list, tuple)) and len(x) == 3 and isinstance(x[0], str)
        and isinstance(x[1], int) and isinstance(x[2], int)
    )


def _is_k3_tensor(x: Any) -> bool:
    return isinstance(x, dict) and x.get("class_name") == "__keras_tensor__"


class _Pending(Exception):
    """A node's inputs are not built yet."""


def reconstruct_from_config(config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = None,
                            created_layers: Optional[Dict[str, Any]] = None) -> Tuple[Any, Any, Dict[str, Any]]:
    """Return ``(input_tensors, output_tensors, layers_by_name)`` for a functional config.

    Raises:
        ValueError: malformed config, unknown layer names, or nodes that can never be built.
    """
    created: Dict[str, Any] = collections.OrderedDict(created_layers or {})
    node_index_map: Dict[Tuple[str, int], int] = {}
    node_count: Dict[Any, int] = {}
    unprocessed: Dict[Any, List[Any]] = collections.OrderedDict()
    layer_configs = config.get("layers")
    if not isinstance(layer_configs, list):
        raise ValueError("Malformed model config: 'layers' must be a list of layer configs.")

    def node_index(layer, config_index: int, k3: bool) -> Optional[int]:
        if isinstance(layer, InputLayer):
            return 0
        if k3:
            return config_index if config_index < len(layer._inbound_nodes) else None
        return node_index_map.get((layer.name, config_index))

    def tensor(ref, k3: bool):
        name, ni, ti = ref
        if name not in created:
            raise ValueError(f"Malformed model config: a node refers to an unknown layer {name!r}.")
        layer = created[name]
        idx = node_index(layer, ni, k3)
        if idx is None:
            raise _Pending()
        outs = flatten(layer._inbound_nodes[idx].outputs)
        if not 0 <= ti < len(outs):
            raise ValueError(f"Malformed model config: layer {name!r} node {ni} has no output {ti}.")
        return outs[ti]

    def process_node(layer, node_data) -> bool:
        try:
            if isinstance(node_data, dict):  # Keras 3
                def revive(x):
                    if _is_k3_tensor(x):
                        return tensor(tuple(x["config"]["keras_history"]), True)
                    if isinstance(x, dict) and "class_name" not in x:
                        return {k: revive(v) for k, v in x.items()}
                    if isinstance(x, list):
                        return [revive(v) for v in x]
                    return x

                args = revive(node_data.get("args", []))
                kwargs = revive(node_data.get("kwargs", {})) or {}
                if not args:
                    raise ValueError(f"Malformed model config: a node of layer {layer.name!r} has no arguments.")
                kwargs = {k: v for k, v in kwargs.items() if not (k == "mask" and v is None)}
                first, rest = args[0], list(args[1:])
                k3 = True
            else:  # Keras 2
                if not isinstance(node_data, list):
                    raise ValueError(f"Malformed model config: inbound node of {layer.name!r} is {node_data!r}.")
                inputs, kwargs = [], {}
                if node_data and isinstance(node_data[0], str):  # tf-keras TFOpLambda: one bare entry
                    node_data = [node_data]
                for entry in node_data:
                    if not isinstance(entry, (list, tuple)) or len(entry) not in (3, 4):
                        raise ValueError(f"Malformed model config: improperly formatted node entry {entry!r} of layer {layer.name!r}.")
                    if len(entry) == 4:
                        kwargs = map_structure_refs(entry[3], lambda r: tensor(r, False))
                    if entry[0] == _CONSTANT:
                        inputs.append(entry[2])
                    else:
                        inputs.append(tensor(tuple(entry[:3]), False))
                first = inputs[0] if len(inputs) == 1 else inputs
                rest = []
                k3 = False
        except _Pending:
            return False
        outputs = layer(first, *rest, **kwargs)
        out_index = flatten(outputs)[0]._keras_history.node_index
        if not k3:
            node_index_map[(layer.name, node_count[layer])] = out_index
            node_count[layer] += 1
        return True

    for layer_data in layer_configs:
        if not isinstance(layer_data, dict) or "class_name" not in layer_data:
            raise ValueError(f"Malformed model config: layer entry {layer_data!r} has no class_name.")
        name = layer_data.get("name") or (layer_data.get("config") or {}).get("name")
        if name in created:
            layer = created[name]
        else:
            layer = deserialize_layer(layer_data, custom_objects=custom_objects)
            created[name] = layer
        node_count[layer] = int(should_skip_first_node(layer))
        nodes = layer_data.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise ValueError(f"Malformed model config: inbound_nodes of {name!r} must be a list.")
        if nodes:
            unprocessed[layer] = list(nodes)

    while unprocessed:
        progressed = False
        for layer_data in layer_configs:
            name = layer_data.get("name") or (layer_data.get("config") or {}).get("name")
            layer = created[name]
            if layer not in unprocessed:
                continue
            pending = unprocessed.pop(layer)
            while pending:
                if process_node(layer, pending[0]):
                    pending.pop(0)
                    progressed = True
                else:
                    unprocessed[layer] = pending
                    break
        if not progressed and unprocessed:
            names = [layer.name for layer in unprocessed]
            raise ValueError(f"Malformed model config: the nodes of layers {names} refer to tensors that are never created.")

    config_is_k3 = any(isinstance(n, dict) for ld in layer_configs for n in (ld.get("inbound_nodes") or []))

    def endpoints(key: str) -> Any:
        spec = config.get(key)
        if spec is None:
            raise ValueError(f"Malformed model config: missing {key!r}.")
        if _is_ref(spec):  # Keras 3 writes a single triple for one endpoint
            spec = [spec]
        def refs_ok(v):  # tf-keras nests the endpoints of a nested output (a stacked cell's states)
            return _is_ref(v) or (isinstance(v, list) and bool(v) and all(refs_ok(u) for u in v))

        items = spec.items() if isinstance(spec, dict) else enumerate(spec) if isinstance(spec, list) else None
        if items is None or not all(refs_ok(v) for _, v in items):
            raise ValueError(f"Malformed model config: {key!r} must hold [layer_name, node_index, tensor_index] triples, got {spec!r}.")
        def ref(v):
            # Keras 3 numbers a nested functional model's endpoint nodes from 1 (its creation
            # node, as Keras 2), though its node arguments from 0.
            layer = created.get(v[0])
            if config_is_k3 and v[1] > 0 and type(layer).__name__ in ("Functional", "Model") and layer._is_graph_network:
                return (v[0], v[1] - 1, v[2])
            return tuple(v)

        try:
            if isinstance(spec, dict):
                return {k: tensor(ref(v), config_is_k3) for k, v in spec.items()}
            def nested(v):
                return tensor(ref(v), config_is_k3) if _is_ref(v) else [nested(u) for u in v]

            return [nested(v) for v in spec]
        except _Pending as e:
            raise ValueError(f"Malformed model config: {key} refers to a node that does not exist.") from e

    return endpoints("input_layers"), endpoints("output_layers"), created


def map_structure_refs(kwargs: Any, fn) -> Any:
    """Replace ``[name, node_index, tensor_index]`` references inside node kwargs by tensors."""
    if _is_ref(kwargs):
        return fn(tuple(kwargs))
    if isinstance(kwargs, dict):
        return {k: map_structure_refs(v, fn) for k, v in kwargs.items()}
    if isinstance(kwargs, list):
        return [map_structure_refs(v, fn) for v in kwargs]
    return kwargs

