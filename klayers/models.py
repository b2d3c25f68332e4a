"""Models: ``Model``, ``Sequential``, and rebuilding models from configs and JSON."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

from klayers.engine.functional import Functional, Model
from klayers.engine.sequential import Sequential


def model_from_config(config: Mapping[str, Any], custom_objects: Optional[Mapping[str, Any]] = None) -> Functional:
    """A model from ``{"class_name", "config"}`` (Functional, Model or Sequential; either dialect).

    Raises:
        ValueError: not a model config, or a malformed one.
    """
    from klayers.layers import deserialize

    if not isinstance(config, Mapping) or "class_name" not in config:
        raise ValueError(f"model_from_config expects a dict with 'class_name' and 'config'. Received: {type(config).__name__}")
    model = deserialize(config, custom_objects=custom_objects)
    if not isinstance(model, Functional):
        raise ValueError(f"model_from_config: the config describes a {type(model).__name__}, not a model.")
    return model


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


__all__ = ["Model", "Sequential", "model_from_config", "model_from_json"]
