"""``serialize_keras_object`` / ``deserialize_keras_object`` for both Keras config dialects.

Accepted forms (what tf-keras 2.x and Keras 3 write):

* a plain name: ``"relu"``, ``"glorot_uniform"``;
* legacy Keras 2: ``{"class_name": "GlorotUniform", "config": {...}}``;
* tf-keras >= 2.13 and Keras 3: ``{"module": "keras.initializers", "class_name": ...,
  "config": {...}, "registered_name": None | "package>Name"}``;
* functions: ``{"class_name": "function", "config": "name", "module": ...,
  "registered_name": ...}``.

klayers's own public classes say which Keras module they stand for with a ``_keras_module``
class attribute, so they serialize under Keras's names (``keras.initializers``), not klayers's.
Nothing here imports a module named in a config: names are looked up only in the tables
klayers owns and in the objects the caller registered.
"""

from __future__ import annotations

import contextlib
import threading
import types
import warnings
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from klayers.serialization import registry
from klayers.serialization.code import func_dump, func_load

PLAIN_TYPES = (str, int, float, bool, type(None))
_SAFE = threading.local()


class SafeModeScope(contextlib.AbstractContextManager):
    """Inside this scope, deserialization of marshalled Python code (Lambda) follows
    ``safe_mode`` (True refuses it)."""

    def __init__(self, safe_mode: bool = True):
        self.safe_mode = safe_mode

    def __enter__(self):
        self._previous = getattr(_SAFE, "value", None)
        _SAFE.value = self.safe_mode
        return self

    def __exit__(self, *exc):
        _SAFE.value = self._previous


def in_safe_mode() -> Optional[bool]:
    """The ``safe_mode`` of the innermost :class:`SafeModeScope`, or None outside any."""
    return getattr(_SAFE, "value", None)


def _public_module(cls_or_fn: Any) -> Optional[str]:
    return cls_or_fn.__dict__.get("_keras_module") if isinstance(cls_or_fn, type) else None


def serialize_keras_object(obj: Any) -> Any:
    """Serialize ``obj`` the way tf-keras 2.21's ``serialize_keras_object`` does.

    Returns None for None, plain values unchanged, lists element-wise, and a
    ``{"module", "class_name", "config", "registered_name"}`` dict for objects with
    ``get_config`` and for functions.

    Raises:
        TypeError: ``obj`` has neither ``get_config`` nor a name.
    """
    if obj is None or isinstance(obj, PLAIN_TYPES):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(x) for x in obj]
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return {"class_name": "__numpy__", "config": {"value": obj.tolist(), "dtype": str(obj.dtype)}}
    if isinstance(obj, types.FunctionType) and obj.__name__ == "<lambda>":
        return {"class_name": "__lambda__", "config": {"value": func_dump(obj)}}
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
        module = getattr(obj, "_keras_module", None) or obj.__module__
        name = registry.get_registered_name(obj)
        return {"module": module, "class_name": "function", "config": name, "registered_name": name}
    cls = type(obj)
    if hasattr(obj, "get_config"):
        config = obj.get_config()
        if not isinstance(config, dict):
            raise TypeError(f"The get_config() method of {obj} should return a dict. It returned: {config}")
        inner = {k: serialize_keras_object(v) for k, v in config.items()}
    else:
        raise TypeError(
            f"Cannot serialize object {obj!r} of type {cls.__name__}: a class must implement get_config()."
        )
    public = _public_module(cls)
    if public is not None:
        registered = cls.__dict__.get("_keras_registered_name")
        out = {"module": public, "class_name": cls.__name__, "config": inner, "registered_name": registered}
    else:
        out = {
            "module": cls.__module__,
            "class_name": cls.__name__,
            "config": inner,
            "registered_name": registry.get_registered_name(cls),
        }
    build_config = getattr(obj, "get_build_config", lambda: None)()
    if build_config is not None:
        out["build_config"] = build_config
    return out


def serialize_typed_object(obj: Any, base: type, module: str, use_legacy_format: bool = False) -> Any:
    """``serialize`` of klayers.initializers / regularizers / constraints: None for None, a warning
    when ``obj`` is not a ``base`` (Keras warns too), ``{"class_name", "config"}`` when
    ``use_legacy_format``, else :func:`serialize_keras_object`'s four-key dict."""
    if obj is None:
        return None
    if not isinstance(obj, base):
        warnings.warn(
            f"The `klayers.{module}.serialize()` API should only be used for objects of type "
            f"`klayers.{module}.{base.__name__}`. Found an instance of type {type(obj)}, "
            "which may lead to improper serialization."
        )
    config = serialize_keras_object(obj)
    if use_legacy_format and isinstance(config, dict):
        return {"class_name": config["class_name"], "config": config["config"]}
    return config


def _lookup(name: Optional[str], custom_objects, module_objects) -> Any:
    if name is None:
        return None
    return registry.get_registered_object(name, custom_objects, module_objects)


def deserialize_keras_object(
    config: Any,
    module_objects: Optional[Mapping[str, Any]] = None,
    custom_objects: Optional[Mapping[str, Any]] = None,
    printable_module_name: str = "object",
    safe_mode: Optional[bool] = None,
    instantiate: Optional[Callable[[Any, Dict[str, Any]], Any]] = None,
) -> Any:
    """Turn a config (name or dict, either dialect) into the object it describes.

    Classes are rebuilt with ``cls.from_config(config)`` (or ``instantiate(cls, config)``
    when given); functions are returned as they are.

    Raises:
        ValueError: the name is unknown to klayers and to the registered custom objects, or
            the config is malformed. The message names ``printable_module_name``.
    """
    if config is None:
        return None
    if isinstance(config, str):
        obj = _lookup(config, custom_objects, module_objects)
        if obj is None:
            raise ValueError(
                f"Unknown {printable_module_name}: '{config}'. Please ensure you are using a "
                "`klayers.utils.custom_object_scope` (or `custom_objects=`) for custom objects."
            )
        if isinstance(obj, type):
            return obj()
        return obj
    if not isinstance(config, dict):
        raise ValueError(f"Could not interpret serialized {printable_module_name}: {config!r}")
    if "class_name" not in config:
        raise ValueError(f"Malformed {printable_module_name} config (no 'class_name'): {config!r}")
    class_name = config["class_name"]
    inner = config.get("config", {})
    if class_name == "__lambda__":
        mode = in_safe_mode() if in_safe_mode() is not None else (True if safe_mode is None else safe_mode)
        if mode:
            raise ValueError(
                "Requested the deserialization of a `lambda` object. This carries a potential "
                "risk of arbitrary code execution and thus it is disallowed by default. If you "
                "trust the source of the saved model, pass `safe_mode=False` to allow it."
            )
        return func_load(inner["value"])
    if class_name == "__numpy__":
        return np.array(inner["value"], dtype=inner["dtype"])
    if class_name == "function":
        name = inner if isinstance(inner, str) else None
        obj = _lookup(config.get("registered_name"), custom_objects, module_objects)
        if obj is None:
            obj = _lookup(name, custom_objects, module_objects)
        if obj is None:
            raise ValueError(
                f"Unknown {printable_module_name}: '{name or config.get('registered_name')}'. "
                "Register custom functions with `klayers.saving.register_keras_serializable()` "
                "or pass them in `custom_objects`."
            )
        return obj
    cls = _lookup(config.get("registered_name"), custom_objects, module_objects)
    if cls is None:
        cls = _lookup(class_name, custom_objects, module_objects)
    if cls is None:
        raise ValueError(
            f"Unknown {printable_module_name}: '{class_name}'. Please ensure you are using a "
            "`klayers.utils.custom_object_scope` (or `custom_objects=`) for custom objects."
        )
    if not isinstance(inner, dict):
        raise ValueError(f"Malformed {printable_module_name} config for '{class_name}': config must be a dict, got {inner!r}")
    if instantiate is not None:
        return instantiate(cls, inner)
    if isinstance(cls, type) and hasattr(cls, "from_config"):
        return cls.from_config(inner)
    if callable(cls) and not isinstance(cls, type):
        return cls
    raise ValueError(f"Cannot deserialize {printable_module_name} '{class_name}': it has no from_config().")


def json_default(obj: Any) -> Any:
    """``json.dumps(..., default=json_default)``: NumPy scalars and arrays and tuples as JSON values.

    Raises:
        TypeError: anything else (as ``json.dumps`` would).
    """
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"Not JSON serializable: {obj!r}")
