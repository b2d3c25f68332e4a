"""The klayers names the replay reaches beyond the public API (``klayers.layers``, ``klayers.models``,
``klayers.activations`` ...), in one place: when klayers moves one, only this module changes.

- ``dialect_scope``: read configs as Keras 2 or Keras 3 wrote them.
- ``register_keras_serializable`` / ``get_custom_objects`` / :func:`forget_custom_name`: the
  registry, for the custom-activation case.
- ``KERAS3_OPS``: Keras 3's graph-operation node classes (the masks Keras 3 writes as ops);
  ``is_keras3_op(layer)``: whether a model's layer is one of them.
- ``ModelFileError``: what loading a malformed or refused file raises.
- ``keras3_layer_config`` / ``keras3_entry``: the layer config (and the ``{"module",
  "class_name", "config", "registered_name", "build_config"}`` entry) klayers's ``.keras``
  writer writes for Keras 3.
- ``flatten``: the flat list of a nested structure of outputs.
- ``to_snake_case`` / ``keras3_snake_case``: tf-keras's naming rule (layer auto-names) and
  Keras 3's (the object paths of ``.keras`` weights).
"""

from __future__ import annotations

from typing import Any, Callable

from klayers.engine.layer_utils import keras3_snake_case, to_snake_case
from klayers.engine.node import flatten
from klayers.layers.keras3_ops import KERAS3_OPS, _Op
from klayers.saving.file_utils import ModelFileError
from klayers.saving.keras3_config import keras3_layer_config
from klayers.saving.keras3_config import keras3_layer_entry as keras3_entry
from klayers.serialization import dialect_scope, get_custom_objects, register_keras_serializable
from klayers.serialization import registry as _registry


def is_keras3_op(layer: Any) -> bool:
    """Whether ``layer`` is a Keras 3 graph-operation node (listed apart from layers by Keras 3)."""
    return isinstance(layer, _Op)


def forget_custom_name(obj: Callable[..., Any]) -> None:
    """Undo ``register_keras_serializable`` for ``obj`` (its name, not the custom-object entry)."""
    _registry._GLOBAL_CUSTOM_NAMES.pop(obj, None)


__all__ = [
    "KERAS3_OPS", "ModelFileError", "dialect_scope", "flatten", "forget_custom_name", "get_custom_objects",
    "is_keras3_op", "keras3_entry", "keras3_layer_config", "keras3_snake_case", "register_keras_serializable",
    "to_snake_case",
]
