"""``serialize`` / ``deserialize`` of layer configs (both Keras dialects), by name through the
registry: layer modules register their classes (:func:`klayers.serialization.register_builtins`),
so rebuilding a model's layers here imports no layer module. ``klayers.layers`` hands these
functions on as ``klayers.layers.serialize`` / ``deserialize`` / ``get``.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Dict, Mapping, Optional

from klayers.engine.base_layer import Layer
from klayers.serialization import (
    CustomObjectScope,
    SafeModeScope,
    builtin_objects,
    deserialize_keras_object,
    detect_dialect,
    dialect_scope,
    get_dialect,
    serialize_keras_object,
)

# Keras 3 writes these keys on every layer it can quantize or LoRA-tune; at their defaults
# they mean nothing for inference and are dropped, otherwise the layer is refused.
_KERAS3_INERT_KEYS = {"quantization_config": None, "lora_rank": None}
_KERAS3_FOLLOWERS = {"lora_alpha": "lora_rank"}


def layer_classes() -> Mapping[str, type]:
    """Every built-in layer class by the names configs use (aliases included), the Keras 3
    operation nodes and ``Functional`` / ``Model`` / ``Sequential`` among them."""
    return builtin_objects("layer")


def keras3_operations() -> Mapping[str, type]:
    """The Keras 3 operation node classes by class name (``{"module": "keras.src.ops.numpy",
    "class_name": "Add"}``: an operation, not the merge layer of that name)."""
    return builtin_objects("keras3_op")


def is_operation_config(config: Mapping[str, Any]) -> bool:
    """Whether a layer entry of a Keras 3 config is an operation node (its module says so)."""
    module = config.get("module")
    return isinstance(module, str) and module.startswith("keras.src.ops")


def _translate_keras3(cls: type, config: Dict[str, Any]) -> Dict[str, Any]:
    config = dict(config)
    for key, inert in _KERAS3_INERT_KEYS.items():
        if key in config:
            value = config.pop(key)
            if value != inert:
                raise ValueError(f"Layer {cls.__name__}: the Keras 3 option {key}={value!r} is not supported by klayers.")
    for key in _KERAS3_FOLLOWERS:
        config.pop(key, None)
    hook = getattr(cls, "_from_keras3_config", None)
    if hook is not None:
        config = hook(config)
    return config


def serialize(layer: Layer) -> Dict[str, Any]:
    """``{"module", "class_name", "config", "registered_name", "build_config"}`` as tf-keras 2.21's
    ``layers.serialize`` writes it."""
    return serialize_keras_object(layer)


def deserialize(config: Mapping[str, Any], custom_objects: Optional[Mapping[str, Any]] = None,
                safe_mode: Optional[bool] = None) -> Layer:
    """Instantiate a layer (or model) from its config, written by tf-keras 2.x or Keras 3.

    The dialect is detected from the config (a Keras 3 ``DTypePolicy``, ``keras_history`` wiring
    ...) or taken from an enclosing ``dialect_scope(3)``; names keep the meaning of the Keras
    that wrote them. ``custom_objects`` maps names to user classes and functions.

    Raises:
        ValueError: unknown class name (named), unknown or invalid config keys, malformed config.
    """
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise ValueError(f"A layer config must be a dict with 'class_name' and 'config'. Received: {config!r}")
    if not isinstance(config.get("config", {}), Mapping):
        raise ValueError(f"Layer config of {config.get('class_name')!r}: 'config' must be a dict.")
    dialect = 3 if get_dialect() == 3 or detect_dialect(dict(config)) == 3 else 2
    custom_objects = dict(custom_objects or {})

    def instantiate(cls: type, inner: Dict[str, Any]) -> Any:
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise ValueError(f"'{config['class_name']}' is not a layer class (got {cls!r}).")
        if dialect == 3:
            inner = _translate_keras3(cls, inner)
        params = inspect.signature(cls.from_config).parameters
        if "custom_objects" in params:
            obj = cls.from_config(inner, custom_objects=custom_objects)
        else:
            obj = cls.from_config(inner)
        if dialect == 3:
            # the few layers whose behaviour (not only config) differs in Keras 3 read this
            obj._keras_dialect = 3
        return obj

    # safe_mode=None keeps the enclosing scope's choice (a model file's loader sets it)
    safe_scope = SafeModeScope(safe_mode) if safe_mode is not None else contextlib.nullcontext()
    objects, printable = layer_classes(), "layer"
    if is_operation_config(config):
        # a Keras 3 operation node: looked up among the operations only (Add is not the merge layer)
        objects, printable = keras3_operations(), f"Keras 3 operation ({config['module']})"
        if config["class_name"] not in objects:
            raise ValueError(f"Unknown {printable}: '{config['class_name']}' is not supported by klayers.")
        config = dict(config, registered_name=None)
    with dialect_scope(dialect), CustomObjectScope(custom_objects), safe_scope:
        layer = deserialize_keras_object(dict(config), module_objects=objects,
                                         custom_objects=custom_objects, printable_module_name=printable,
                                         instantiate=instantiate)
    build_config = config.get("build_config")
    if isinstance(build_config, Mapping) and not layer.built and (
            build_config.get("input_shape") is not None or build_config.get("shapes_dict")):
        layer.build_from_config(dict(build_config))
    return layer


def get(identifier: Any) -> Layer:
    """A layer from a layer instance (returned as is) or a config."""
    if isinstance(identifier, Layer):
        return identifier
    return deserialize(identifier)


def deserialize_model(config: Mapping[str, Any], custom_objects: Optional[Mapping[str, Any]] = None) -> Layer:
    """A model from ``{"class_name", "config"}`` (Functional, Model or Sequential; either dialect).

    Raises:
        ValueError: not a model config, or a malformed one.
    """
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise ValueError(f"model_from_config expects a dict with 'class_name' and 'config'. Received: {type(config).__name__}")
    model = deserialize(config, custom_objects=custom_objects)
    if not hasattr(model, "_is_graph_network"):  # models, and only models, carry this flag
        raise ValueError(f"model_from_config: the config describes a {type(model).__name__}, not a model.")
    return model
