"""Serialization: the registry of named objects, ``serialize_keras_object`` /
``deserialize_keras_object`` for both Keras config dialects, the dialect and the
custom-object and safe-mode scopes.

The low floor of the house: everything above may use it; it imports no layer, engine or
file format. The file formats (``.h5``, ``.keras``) live in :mod:`klayers.saving`.
"""

from klayers.serialization.dialect import detect_dialect, dialect_scope, get_dialect
from klayers.serialization.objects import (
    SafeModeScope,
    deserialize_keras_object,
    in_safe_mode,
    json_default,
    serialize_keras_object,
    serialize_typed_object,
)
from klayers.serialization.registry import (
    CustomObjectScope,
    builtin_objects,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_builtins,
    register_keras_serializable,
)

__all__ = [
    "CustomObjectScope",
    "SafeModeScope",
    "builtin_objects",
    "custom_object_scope",
    "deserialize_keras_object",
    "detect_dialect",
    "dialect_scope",
    "get_custom_objects",
    "get_dialect",
    "get_registered_name",
    "get_registered_object",
    "in_safe_mode",
    "json_default",
    "register_builtins",
    "register_keras_serializable",
    "serialize_keras_object",
    "serialize_typed_object",
]
