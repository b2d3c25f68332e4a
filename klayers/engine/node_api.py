"""The Keras 2 node API of a layer: its calls as nodes of graphs, and what each node saw
(``get_input_at(node_index)``, ``input_shape`` when every node agrees, ...)."""

from __future__ import annotations

from typing import Any, List

from klayers.engine.node import Node, map_structure


class NodeAPI:
    """Mixin of :class:`~klayers.engine.base_layer.Layer`: reads ``self._inbound_nodes`` /
    ``self._outbound_nodes``, which the layer fills when it is called on symbolic tensors."""

    @property
    def inbound_nodes(self) -> List[Node]:
        return self._inbound_nodes

    @property
    def outbound_nodes(self) -> List[Node]:
        return self._outbound_nodes

    def _node_attribute(self, node_index: int, attr: str, attr_name: str) -> Any:
        if not self._inbound_nodes:
            raise RuntimeError(f"The layer {self.name} has never been called and thus has no defined {attr_name}.")
        if not -len(self._inbound_nodes) <= node_index < len(self._inbound_nodes) or node_index < 0:
            raise ValueError(
                f"Asked to get {attr_name} at node {node_index}, but the layer has only "
                f"{len(self._inbound_nodes)} inbound nodes."
            )
        values = getattr(self._inbound_nodes[node_index], attr)
        if isinstance(values, list) and len(values) == 1:
            return values[0]
        return values

    def get_input_at(self, node_index: int) -> Any:
        """The input tensor(s) of the layer's ``node_index``-th call."""
        return self._node_attribute(node_index, "input_tensors", "input")

    def get_output_at(self, node_index: int) -> Any:
        """The output tensor(s) of the layer's ``node_index``-th call."""
        return self._node_attribute(node_index, "output_tensors", "output")

    def get_input_shape_at(self, node_index: int) -> Any:
        """The input shape(s) at node ``node_index``."""
        return self._node_attribute(node_index, "input_shapes", "input shape")

    def get_output_shape_at(self, node_index: int) -> Any:
        """The output shape(s) at node ``node_index``."""
        return self._node_attribute(node_index, "output_shapes", "output shape")

    def get_input_mask_at(self, node_index: int) -> Any:
        inputs = self.get_input_at(node_index)
        return map_structure(lambda t: getattr(t, "_keras_mask", None), inputs)

    def get_output_mask_at(self, node_index: int) -> Any:
        outputs = self.get_output_at(node_index)
        return map_structure(lambda t: getattr(t, "_keras_mask", None), outputs)

    @property
    def input(self) -> Any:
        """The input tensor(s) of node 0. AttributeError when the layer was never connected."""
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name} is not connected, no input to return.")
        return self._node_attribute(0, "input_tensors", "input")

    @property
    def output(self) -> Any:
        """The output tensor(s) of node 0. AttributeError when the layer has no inbound node."""
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name} has no inbound nodes.")
        return self._node_attribute(0, "output_tensors", "output")

    @property
    def input_shape(self) -> Any:
        """The input shape when every node agrees on it (else AttributeError)."""
        if not self._inbound_nodes:
            raise AttributeError(
                f'The layer "{self.name}" has never been called and thus has no defined input shape. '
                "Note that the `input_shape` property is only available for Functional and Sequential models."
            )
        shapes = {str(n.input_shapes) for n in self._inbound_nodes}
        if len(shapes) == 1:
            return self._inbound_nodes[0].input_shapes
        raise AttributeError(
            f'The layer "{self.name}" has multiple inbound nodes, with different input shapes. Hence '
            'the notion of "input shape" is ill-defined for the layer. Use `get_input_shape_at(node_index)` instead.'
        )

    @property
    def output_shape(self) -> Any:
        """The output shape when every node agrees on it (else AttributeError)."""
        if not self._inbound_nodes:
            raise AttributeError(f'The layer "{self.name}" has never been called and thus has no defined output shape.')
        shapes = {str(n.output_shapes) for n in self._inbound_nodes}
        if len(shapes) == 1:
            return self._inbound_nodes[0].output_shapes
        raise AttributeError(
            f'The layer "{self.name}" has multiple inbound nodes, with different output shapes. Hence '
            'the notion of "output shape" is ill-defined for the layer. Use `get_output_shape_at(node_index)` instead.'
        )

    @property
    def input_mask(self) -> Any:
        return self.get_input_mask_at(0)

    @property
    def output_mask(self) -> Any:
        return self.get_output_mask_at(0)
