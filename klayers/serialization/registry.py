"""The one registry of named objects: klayers's built-in classes and the user's, as in
``keras.saving`` (tf-keras 2.21 semantics).

A config names a class or function by ``class_name`` (and, for registered user objects, by
``registered_name`` = ``"package>name"``). Lookups consult, in order: the ``custom_objects``
passed to the call, the innermost :func:`custom_object_scope`, the global registry of user
objects, and finally a table of built-in objects.

Built-in classes register themselves by kind (``"layer"``: every layer module registers its
public classes with :func:`register_builtins`), so code that rebuilds objects from configs (the
engine rebuilding a model's layers) finds a class by name without importing the module that
defines it.
"""

from __future__ import annotations

import inspect
import threading
from types import MappingProxyType
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

_GLOBAL_CUSTOM_OBJECTS: Dict[str, Any] = {}
_BUILTINS: Dict[str, Dict[str, Any]] = {}
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


def register_builtins(kind: str, namespace: Mapping[str, Any], names: Iterable[str]) -> None:
    """Register the classes among ``names`` in ``namespace`` (a module's ``globals()`` and its
    ``__all__``) as klayers's built-in objects of ``kind``, each under the name it is exported
    as (so aliases such as ``Convolution2D`` resolve too). Functions and other values among
    ``names`` are skipped.

    Raises:
        ValueError: a name of ``kind`` is already taken by another object.
    """
    table = _BUILTINS.setdefault(kind, {})
    for name in names:
        obj = namespace[name]
        if not isinstance(obj, type):
            continue
        if table.get(name, obj) is not obj:
            raise ValueError(f"Built-in {kind} name {name!r} is already registered to {table[name]!r}.")
        table[name] = obj


def builtin_objects(kind: str) -> Mapping[str, Any]:
    """The built-in objects of ``kind`` by name (a read-only view)."""
    return MappingProxyType(_BUILTINS.setdefault(kind, {}))
