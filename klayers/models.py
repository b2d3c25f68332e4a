"""Models: ``Model``, ``Sequential``, and rebuilding models from configs and JSON."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

from klayers.engine.functional import Functional, Model
from klayers.engine.layer_serialization import deserialize_model
from klayers.engine.sequential import Sequential
from klayers.saving import saving_api


def model_from_config(config: Mapping[str, Any], custom_objects: Optional[Mapping[str, Any]] = None) -> Functional:
    """A model from ``{"class_name", "config"}`` (Functional, Model or Sequential; either dialect).

    Raises:
        ValueError: not a model config, or a malformed one.
    """
    return deserialize_model(config, custom_objects=custom_objects)


def model_from_json(json_string: str, custom_objects: Optional[Mapping[str, Any]] = None) -> Functional:
    """A model from ``model.to_json()`` output (tf-keras or klayers).

    Raises:
        ValueError: invalid JSON or not a model config.
    """
    try:
        config: Dict[str, Any] = json.loads(json_string)
    except (TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"model_from_json: the string is not valid JSON ({e}).") from e
    return model_from_config(config, custom_objects=custom_objects)


def load_model(filepath: Any, custom_objects: Optional[Mapping[str, Any]] = None, compile: bool = False,
               safe_mode: bool = True) -> Functional:
    """Load a model saved by Keras (tf-keras 2.x ``.h5``, Keras 3 ``.keras`` or ``.h5``) or klayers.

    See :func:`klayers.saving.saving_api.load_model`. Nothing in the file is executed unless
    ``safe_mode=False`` (Lambda layers holding Python code).

    Raises:
        FileNotFoundError; ValueError (``klayers.saving.file_utils.ModelFileError``) naming the
        file for anything unreadable, unsupported or unsafe.
    """
    return saving_api.load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def save_model(model: Functional, filepath: Any, overwrite: bool = True, save_format: Optional[str] = None) -> None:
    """Save ``model`` as ``.keras`` (read by Keras 3) or ``.h5`` (read by tf-keras)."""
    saving_api.save_model(model, filepath, overwrite=overwrite, save_format=save_format)


__all__ = ["Model", "Sequential", "load_model", "model_from_config", "model_from_json", "save_model"]
