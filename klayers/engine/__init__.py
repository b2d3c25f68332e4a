"""The Layer engine: Layer, InputSpec, Node / KerasTensor, InputLayer, functional Model, Sequential."""

from klayers.engine.base_layer import Layer
from klayers.engine.functional import Functional, Model
from klayers.engine.input_layer import Input, InputLayer
from klayers.engine.input_spec import InputSpec
from klayers.engine.keras_tensor import KerasTensor, is_keras_tensor
from klayers.engine.node import Node
from klayers.engine.sequential import Sequential
from klayers.engine.variable import Variable

__all__ = [
    "Functional", "Input", "InputLayer", "InputSpec", "KerasTensor", "Layer", "Model", "Node",
    "Sequential", "Variable", "is_keras_tensor",
]
