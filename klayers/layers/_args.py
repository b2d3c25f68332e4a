"""Argument checks and config blocks that several layer families share."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from klayers import constraints, initializers, regularizers


def positive_int(value: Any, arg: str, layer: str, allow_zero: bool = False) -> int:
    """``value`` as an int, or a ValueError naming the argument and echoing the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{layer}: `{arg}` must be a positive integer. Received {arg}={value!r}")
    value = int(value)
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"Received an invalid value for `{arg}`, expected a positive integer. Received: {arg}={value}")
    return value


def weight_args_config(layer: Any, prefixes: Any = ("kernel", "bias")) -> Dict[str, Any]:
    """The serialized ``<prefix>_initializer`` / ``_regularizer`` / ``_constraint`` arguments of a
    layer plus its ``activity_regularizer``, in tf-keras's key order (the block every Dense-like
    layer's config repeats)."""
    config = {f"{p}_initializer": initializers.serialize(getattr(layer, f"{p}_initializer")) for p in prefixes}
    config.update({f"{p}_regularizer": regularizers.serialize(getattr(layer, f"{p}_regularizer")) for p in prefixes})
    config["activity_regularizer"] = regularizers.serialize(layer.activity_regularizer)
    config.update({f"{p}_constraint": constraints.serialize(getattr(layer, f"{p}_constraint")) for p in prefixes})
    return config


def is_training(training: Any) -> bool:
    """Keras's learning phase outside ``fit`` is 0: only an explicit truthy ``training`` trains."""
    return bool(training) if training is not None else False


def check_rate(rate: Any, layer: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise ValueError(f"{layer}: `rate` must be a float between 0 and 1. Received: rate={rate!r}")
    if not 0 <= rate <= 1 or rate != rate:
        raise ValueError(f"Invalid value {rate} received for `rate`, expected a value between 0 and 1.")
    return rate
