"""Which Keras wrote a config: Keras 2 (tf-keras) or Keras 3.

Some names mean different maths in the two (``hard_sigmoid``: ``clip(0.2x + 0.5, 0, 1)`` in
Keras 2, ``relu6(x + 3) / 6`` in Keras 3). A config keeps the meaning of the Keras that wrote
it: loaders detect the dialect once (from the file's ``keras_version`` or from the config
itself) and deserialize inside :func:`dialect_scope`. Code written against klayers directly
gets Keras 2 meanings, as klayers is the Keras 2 layer API.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

_DIALECT: contextvars.ContextVar[int] = contextvars.ContextVar("klayers_keras_dialect", default=2)


def get_dialect() -> int:
    """2 or 3: the Keras major version whose meanings apply to names being deserialized now."""
    return _DIALECT.get()


@contextlib.contextmanager
def dialect_scope(version: int) -> Iterator[None]:
    """Deserialize everything inside with the meanings of Keras ``version`` (2 or 3)."""
    if version not in (2, 3):
        raise ValueError(f"Keras dialect must be 2 or 3. Received version={version!r}")
    token = _DIALECT.set(version)
    try:
        yield
    finally:
        _DIALECT.reset(token)


_K3_DTYPE_POLICIES = ("DTypePolicy", "FloatDTypePolicy", "QuantizedDTypePolicy", "QuantizedFloat8DTypePolicy")


def detect_dialect(config: Any) -> int:
    """Guess the writer of a layer/model config: 3 when it carries a Keras 3 marker (a
    ``DTypePolicy`` dtype, ``keras_history`` wiring, ``batch_shape``, a top-level
    ``module == "keras"`` ...), else 2. Searches nested configs."""
    if isinstance(config, dict):
        dtype = config.get("dtype")
        if isinstance(dtype, dict) and dtype.get("class_name") in _K3_DTYPE_POLICIES:
            return 3
        if "keras_history" in config or "batch_shape" in config:
            return 3
        version = config.get("keras_version")
        if isinstance(version, str) and version.startswith("3."):
            return 3
        return max((detect_dialect(v) for v in config.values()), default=2)
    if isinstance(config, (list, tuple)):
        return max((detect_dialect(v) for v in config), default=2)
    return 2
