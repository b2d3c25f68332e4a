"""Model files of both Keras dialects: tf-keras ``.h5`` and Keras 3 ``.keras`` (readers and
writers, :mod:`klayers.saving.saving_api`).

As in ``keras.saving``, the registry and scope functions are re-exported here; they live in
:mod:`klayers.serialization`, the low floor every module may use.
"""

from klayers.serialization import (
    CustomObjectScope,
    SafeModeScope,
    custom_object_scope,
    deserialize_keras_object,
    detect_dialect,
    dialect_scope,
    get_custom_objects,
    get_dialect,
    get_registered_name,
    get_registered_object,
    in_safe_mode,
    register_keras_serializable,
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
