"""Serialization: the object registry, Keras 2 / Keras 3 config dialects, and model files."""

from klayers.saving.dialect import detect_dialect, dialect_scope, get_dialect
from klayers.saving.object_registration import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)
from klayers.saving.serialization import (
    SafeModeScope,
    deserialize_keras_object,
    in_safe_mode,
    serialize_keras_object,
)

__all__ = [
    "CustomObjectScope",
    "SafeModeScope",
    "custom_object_scope",
    "deserialize_keras_object",
    "detect_dialect",
    "dialect_scope",
    "get_custom_objects",
    "get_dialect",
    "get_registered_name",
    "get_registered_object",
    "in_safe_mode",
    "register_keras_serializable",
    "serialize_keras_object",
]
