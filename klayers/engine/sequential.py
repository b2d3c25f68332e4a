"""Sequential: a functional model built one layer at a time."""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from klayers.engine.base_layer import Layer
from klayers.engine.functional import Functional
from klayers.engine.input_layer import Input, InputLayer
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.layer_serialization import deserialize as deserialize_layer
from klayers.engine.node import flatten
from klayers.serialization import register_builtins, serialize_keras_object


class Sequential(Functional):
    """A linear stack of layers.

    Built as a graph as soon as the input shape is known (the first layer's ``input_shape``, an
    ``Input``/``InputLayer`` added first, or ``build(input_shape)``); otherwise built on the
    first call from the data's shape, as tf-keras does.

    Example::

        model = klayers.Sequential([klayers.layers.Dense(8, input_shape=(4,)), klayers.layers.Dense(1)])
        y = model.predict(x)
    """

    def __init__(self, layers: Optional[Sequence[Layer]] = None, name: Optional[str] = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self._seq_layers: List[Layer] = []
        self._input_layer: Optional[InputLayer] = None
        for layer in layers or []:
            self.add(layer)

    def _tracked_layers(self) -> List[Layer]:
        if self._is_graph_network:
            return super()._tracked_layers()
        return list(self._seq_layers)

    @property
    def layers(self) -> List[Layer]:
        """The added layers (without the auto-generated InputLayer)."""
        return list(self._seq_layers)

    def add(self, layer: Any) -> None:
        """Append a layer (or an ``Input`` tensor, which sets the model's input).

        Raises:
            TypeError: not a layer. ValueError: a duplicate name or a multi-output layer.
        """
        if isinstance(layer, KerasTensor):
            origin = layer._keras_history.layer
            if not isinstance(origin, InputLayer):
                raise TypeError("Sequential.add() takes layers or an Input tensor.")
            layer = origin
        if not isinstance(layer, Layer):
            raise TypeError(
                "The added layer must be an instance of class Layer. "
                f"Received: layer={layer} of type {type(layer)}."
            )
        if any(layer.name == existing.name for existing in self._seq_layers):
            raise ValueError(
                f'All layers added to a Sequential model should have unique names. Name "{layer.name}" '
                "is already the name of a layer in this model. Update the `name` argument to pass a unique name."
            )
        if isinstance(layer, InputLayer):
            if self._seq_layers or self._input_layer is not None:
                raise ValueError("An InputLayer can only be added first to a Sequential model.")
            self._input_layer = layer
            self._rebuild()
            return
        self._seq_layers.append(layer)
        if self._is_graph_network:
            try:
                self._append_to_graph(layer, self.outputs[0])
            except Exception:
                self._seq_layers.pop()
                raise
        else:
            self._rebuild()

    def _append_to_graph(self, layer: Layer, x: KerasTensor) -> None:
        y = layer(x)
        if len(flatten(y)) != 1:
            raise ValueError(
                "All layers in a Sequential model should have a single output tensor. For "
                f"multi-output layers, use the functional API. (layer {layer.name})"
            )
        self._init_graph_network(self.inputs[0], y)

    def pop(self) -> None:
        """Remove the last layer. Raises TypeError when there is none."""
        if not self._seq_layers:
            raise TypeError("There are no layers in the model.")
        layer = self._seq_layers.pop()
        if not self._is_graph_network:
            return
        node = self.outputs[0].node
        if node.layer is layer and layer._inbound_nodes and layer._inbound_nodes[-1] is node:
            layer._inbound_nodes.pop()
            for parent in node.keras_inputs:
                outbound = parent._keras_history.layer._outbound_nodes
                if node in outbound:
                    outbound.remove(node)
            prev = node.input_tensors
        else:
            prev = None
        if not self._seq_layers:
            self._init_graph_network(self.inputs[0], self.inputs[0])
        elif prev is not None:
            self._init_graph_network(self.inputs[0], prev)

    def _first_input_shape(self) -> Optional[tuple]:
        if self._input_layer is not None:
            return self._input_layer._batch_input_shape
        if self._seq_layers and hasattr(self._seq_layers[0], "_batch_input_shape"):
            return self._seq_layers[0]._batch_input_shape
        return getattr(self, "_deferred_input_shape", None)

    def _rebuild(self) -> None:
        """(Re)wire the graph from the input layer through every layer."""
        shape = self._first_input_shape()
        if shape is None:
            self._is_graph_network = False
            self.built = False
            return
        if self._input_layer is None:
            first = self._seq_layers[0]
            self._input_layer = InputLayer(batch_input_shape=shape, dtype=first.dtype, name=first.name + "_input")
        x = inputs = self._input_layer._inbound_nodes[0].outputs
        self._init_graph_network(inputs, x)
        for layer in self._seq_layers:
            self._append_to_graph(layer, self.outputs[0])

    def build(self, input_shape: Any = None) -> None:
        """Build from ``input_shape`` (with the batch axis)."""
        if self._is_graph_network:
            return
        if input_shape is None:
            raise ValueError("You must provide an `input_shape` argument.")
        self._deferred_input_shape = (None,) + tuple(input_shape)[1:]
        self._rebuild()

    def _ensure_built_for(self, x: Any) -> None:
        if not self._is_graph_network:
            if not self._seq_layers:
                raise ValueError(f"Sequential model {self.name} has no layers: add layers before calling it.")
            arr = np.asarray(flatten(x)[0] if isinstance(x, (list, tuple)) else x)
            self.build((None,) + arr.shape[1:])

    def _eager_call(self, inputs: Any, args=(), kwargs=None, training: Any = None, mask: Any = None,
                    want_mask: bool = True):
        self._ensure_built_for(inputs)
        return super()._eager_call(inputs, args, kwargs, training, mask, want_mask)

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        if not self._is_graph_network:
            self.build(inputs.shape)
        return super()._symbolic_call(inputs, args, kwargs)

    def predict(self, x: Any, batch_size: Optional[int] = 32, verbose: Any = "auto", steps: Optional[int] = None, **kwargs: Any) -> Any:
        self._ensure_built_for(x)
        return super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, **kwargs)

    @property
    def input_spec(self) -> Any:
        return None

    @input_spec.setter
    def input_spec(self, value: Any) -> None:
        pass

    def get_config(self) -> Dict[str, Any]:
        """``{"name", "layers": [InputLayer config when built, then each layer's]}`` (tf-keras 2.21)."""
        layers: List[Layer] = []
        if self._is_graph_network and self._input_layer is not None:
            layers.append(self._input_layer)
        layers.extend(self._seq_layers)
        config: Dict[str, Any] = {"name": self.name, "layers": [copy.deepcopy(serialize_keras_object(layer)) for layer in layers]}
        if not self._is_graph_network and getattr(self, "_deferred_input_shape", None):
            config["build_input_shape"] = list(self._deferred_input_shape)
        return config

    @classmethod
    def from_config(cls, config: Any, custom_objects: Optional[Dict[str, Any]] = None) -> Sequential:
        """Rebuild from :meth:`get_config` output (either Keras dialect)."""
        if isinstance(config, dict) and "layers" in config:
            name, layer_configs = config.get("name"), config["layers"]
            build_input_shape = config.get("build_input_shape")
        elif isinstance(config, list):
            name, layer_configs, build_input_shape = None, config, None
        else:
            raise ValueError("Malformed Sequential config: expected a dict with 'layers' or a list of layer configs.")
        if not isinstance(layer_configs, list):
            raise ValueError("Malformed Sequential config: 'layers' must be a list.")
        model = cls(name=name)
        for layer_config in layer_configs:
            model.add(deserialize_layer(layer_config, custom_objects=custom_objects))
        if not model._is_graph_network and build_input_shape:
            model.build(tuple(build_input_shape))
        return model


Sequential._keras_module = "keras"
_unused = Input

register_builtins("layer", globals(), ["Sequential"])
