"""What the engine calls but does not own.

The floors above install their functions here when they are imported, so the engine imports
none of them: the model file formats (:mod:`klayers.saving` installs ``save_model``,
``save_weights`` and ``load_weights``, which ``Model.save`` and friends call) and handlers for
foreign array types given to ``Model.predict`` (the ``klayers`` package installs one for Dask
arrays that imports :mod:`klayers.dask` on first use).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

_FUNCTIONS: Dict[str, Callable[..., Any]] = {}
_ARRAY_HANDLERS: List[Tuple[Callable[[Any], bool], Callable[..., Any]]] = []


def install(name: str, fn: Callable[..., Any]) -> None:
    """Provide ``fn`` as the engine's ``name`` (``"save_model"``, ``"save_weights"``,
    ``"load_weights"``)."""
    _FUNCTIONS[name] = fn


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the installed ``name``.

    Raises:
        RuntimeError: nothing installed it (its package was never imported).
    """
    fn = _FUNCTIONS.get(name)
    if fn is None:
        raise RuntimeError(f"klayers: no {name!r} is installed; import klayers (the package) first.")
    return fn(*args, **kwargs)


def install_array_handler(accepts: Callable[[Any], bool], predict: Callable[..., Any]) -> None:
    """``Model.predict(x)`` hands ``x`` to ``predict(model, x, batch_size=...)`` when
    ``accepts(x)``."""
    _ARRAY_HANDLERS.append((accepts, predict))


def array_handler(x: Any) -> Any:
    """The ``predict`` installed for inputs like ``x``, or None."""
    for accepts, predict in _ARRAY_HANDLERS:
        if accepts(x):
            return predict
    return None
