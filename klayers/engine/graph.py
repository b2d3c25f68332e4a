"""The topology of a functional graph: node keys, depths and the layer order of tf-keras's
``_map_graph_network``."""

from __future__ import annotations

import collections
from typing import Dict, List

from klayers.engine.base_layer import Layer
from klayers.engine.input_layer import InputLayer
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.node import Node, flatten


def node_key(layer_name: str, node_index: int) -> str:
    return f"{layer_name}_ib-{node_index}"


def should_skip_first_node(layer: Layer) -> bool:
    """A nested functional model's config numbers its nodes from 1 (Keras 2's convention).
    Models are told apart from plain layers by their ``_is_graph_network`` flag."""
    is_graph = getattr(layer, "_is_graph_network", None)
    if is_graph is None:
        return False
    if is_graph:
        tracked = layer._tracked_layers()
        return bool(tracked) and isinstance(tracked[0], InputLayer)
    return True


def _build_map(outputs: List[KerasTensor]):
    finished, in_progress = set(), set()
    ordered: List[Node] = []
    layer_indices: Dict[Layer, int] = {}

    def visit(tensor: KerasTensor) -> None:
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if node in finished:
            return
        if node in in_progress:
            raise ValueError(f'Tensor {tensor} from layer "{layer.name}" is part of a cycle.')
        if layer not in layer_indices:
            layer_indices[layer] = len(layer_indices)
        in_progress.add(node)
        if not node.is_input:
            for t in node.keras_inputs:
                visit(t)
        finished.add(node)
        in_progress.remove(node)
        ordered.append(node)

    for out in outputs:
        visit(out)
    return ordered, layer_indices


def map_graph_network(inputs: List[KerasTensor], outputs: List[KerasTensor]):
    """Topology of a graph exactly as tf-keras's ``_map_graph_network`` orders it.

    Returns ``(network_nodes, nodes_by_depth, layers, layers_by_depth)``; raises ValueError for a
    disconnected graph or duplicate layer names.
    """
    ordered, layer_indices = _build_map(outputs)
    network_nodes = {node_key(n.layer.name, n.layer._inbound_nodes.index(n)) for n in ordered}
    nodes_depths: Dict[Node, int] = {}
    layers_depths: Dict[Layer, int] = {}
    for node in reversed(ordered):
        depth = nodes_depths.setdefault(node, 0)
        depth = max(depth, layers_depths.get(node.layer, 0))
        layers_depths[node.layer] = depth
        nodes_depths[node] = depth
        for parent in node.parent_nodes:
            nodes_depths[parent] = max(depth + 1, nodes_depths.get(parent, 0))
    for t in inputs:
        input_layer = t._keras_history.layer
        if input_layer not in layers_depths:
            layers_depths[input_layer] = 0
            layer_indices[input_layer] = -1
            nodes_depths[input_layer._inbound_nodes[0]] = 0
            network_nodes.add(node_key(input_layer.name, 0))
    nodes_by_depth: Dict[int, List[Node]] = collections.defaultdict(list)
    for node, depth in nodes_depths.items():
        nodes_by_depth[depth].append(node)
    layers_by_depth: Dict[int, List[Layer]] = collections.defaultdict(list)
    for layer, depth in layers_depths.items():
        layers_by_depth[depth].append(layer)
    layers: List[Layer] = []
    for depth in sorted(layers_by_depth, reverse=True):
        layers.extend(sorted(layers_by_depth[depth], key=lambda x: layer_indices[x]))
    computable = {id(x) for x in inputs}
    done: List[str] = []
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            if node.is_input:
                continue
            for x in node.keras_inputs:
                if id(x) not in computable:
                    raise ValueError(
                        f'Graph disconnected: cannot obtain value for tensor {x} at layer "{node.layer.name}". '
                        f"The following previous layers were accessed without issue: {done}"
                    )
            for x in flatten(node.outputs):
                computable.add(id(x))
            done.append(node.layer.name)
    names = [layer.name for layer in layers]
    for name in names:
        if names.count(name) != 1:
            raise ValueError(f'The name "{name}" is used {names.count(name)} times in the model. All layer names should be unique.')
    return network_nodes, nodes_by_depth, layers, layers_by_depth
