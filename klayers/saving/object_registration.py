"""The one registry of user objects, as in ``keras.saving`` (tf-keras 2.21 semantics).

A config names a class or function by ``class_name`` (and, for registered user objects, by
``registered_name`` = ``"package>name"``). Lookups consult, in order: the ``custom_objects``
passed to the call, the innermost :func:`custom_object_scope`, the global registry, and
finally the module's own table of built-in objects.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Callable, Dict, Mapping, Optional

_GLOBAL_CUSTOM_OBJECTS: Dict[str, Any] = {}
_GLOBAL_CUSTOM_NAMES: Dict[Any, str] = {}
_THREAD_LOCAL = threading.local()


def _scoped_objects() -> Dict[str, Any]:
    merged: Dict[str, Any] = {}
    for scope in getattr(_THREAD_LOCAL, "stack", []):
        merged.update(scope)
    return merged


class CustomObjectScope:
    """Context manager that makes ``custom_objects`` visible to every deserialization inside it.

    Example::

        with custom_object_scope({"MyLayer": MyLayer}):
            layer = klayers.layers.deserialize(config)
    """

    def __init__(self, *args: Mapping[str, Any]):
        self.custom_objects: Dict[str, Any] = {}
        for objects in args:
            self.custom_objects.update(objects or {})

    def __enter__(self) -> CustomObjectScope:
        stack = getattr(_THREAD_LOCAL, "stack", None)
        if stack is None:
            stack = _THREAD_LOCAL.stack = []
        stack.append(self.custom_objects)
        return self

    def __exit__(self, *exc) -> None:
        _THREAD_LOCAL.stack.pop()


custom_object_scope = CustomObjectScope


def get_custom_objects() -> Dict[str, Any]:
    """The global registry (a live dict: adding to it registers an object)."""
    return _GLOBAL_CUSTOM_OBJECTS


def register_keras_serializable(package: str = "Custom", name: Optional[str] = None) -> Callable:
    """Class/function decorator registering ``obj`` as ``"package>name"`` (name defaults to
    ``obj.__name__``). A registered class must define ``get_config``.

    Raises:
        ValueError: ``package`` contains ``>``, the name is taken, or a class lacks ``get_config``.
    """
    if ">" in package:
        raise ValueError(f"`package` must not contain '>'. Received package={package!r}")

    def decorator(obj):
        serialized = f"{package}>{name or obj.__name__}"
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ValueError(f"Cannot register a class that does not have a get_config() method: {obj}")
        if serialized in _GLOBAL_CUSTOM_OBJECTS:
            raise ValueError(f"{serialized} has already been registered to {_GLOBAL_CUSTOM_OBJECTS[serialized]}")
        if obj in _GLOBAL_CUSTOM_NAMES:
            raise ValueError(f"{obj} has already been registered to {_GLOBAL_CUSTOM_NAMES[obj]}")
        _GLOBAL_CUSTOM_OBJECTS[serialized] = obj
        _GLOBAL_CUSTOM_NAMES[obj] = serialized
        return obj

    return decorator


def get_registered_name(obj: Any) -> str:
    """``"package>name"`` for a registered object, else its ``__name__``."""
    if obj in _GLOBAL_CUSTOM_NAMES:
        return _GLOBAL_CUSTOM_NAMES[obj]
    return getattr(obj, "__name__", type(obj).__name__)


def get_registered_object(
    name: str,
    custom_objects: Optional[Mapping[str, Any]] = None,
    module_objects: Optional[Mapping[str, Any]] = None,
) -> Any:
    """Find ``name`` in custom objects, the scope stack, the global registry, then
    ``module_objects``; None when it is nowhere."""
    for table in (custom_objects, _scoped_objects(), _GLOBAL_CUSTOM_OBJECTS, module_objects):
        if table and name in table:
            return table[name]
    return None
