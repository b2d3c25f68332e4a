"""Utilities re-exported as in ``keras.utils``."""

from klayers.saving.object_registration import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)
from klayers.saving.serialization import deserialize_keras_object, serialize_keras_object


def set_random_seed(seed: int) -> None:
    """Seed klayers's random draws (initializers without a seed, ``backend.random_*``)."""
    from klayers import backend

    backend.set_random_seed(seed)


__all__ = [
    "CustomObjectScope",
    "custom_object_scope",
    "deserialize_keras_object",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "register_keras_serializable",
    "serialize_keras_object",
    "set_random_seed",
]
