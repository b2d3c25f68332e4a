"""What the recurrent modules share: state-size nests, argument checks, and how an RNN drives
any cell (built-in, stacked, or user-written: any object with ``call(inputs, states)`` and
``state_size``)."""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple

import numpy as np

from klayers.engine.base_layer import Layer


def _flat_sizes(state_size: Any) -> List[Any]:
    """``state_size`` (an int, a shape, or a nest of them) as a flat list of per-state sizes."""
    if isinstance(state_size, (int, np.integer)):
        return [int(state_size)]
    if isinstance(state_size, (list, tuple)):
        if state_size and all(isinstance(d, (int, np.integer)) or d is None for d in state_size) and getattr(state_size, "_is_shape", False):
            return [tuple(state_size)]
        out: List[Any] = []
        for s in state_size:
            out.extend(_flat_sizes(s))
        return out
    return [state_size]


def _pack_states(state_size: Any, flat: Sequence[Any]) -> Any:
    """Flat states in ``state_size``'s nesting (``tf.nest.pack_sequence_as``), nests as lists:
    a StackedRNNCells of [LSTMCell, GRUCell] packs ``[h, c, h2]`` as ``[[h, c], h2]``."""
    it = iter(flat)

    def take(size: Any) -> Any:
        if isinstance(size, (list, tuple)) and not getattr(size, "_is_shape", False):
            return [take(s) for s in size]
        return next(it)

    return take(state_size)


def _size_tuple(size: Any) -> Tuple[int, ...]:
    return (int(size),) if isinstance(size, (int, np.integer)) else tuple(size)


def _rate(value: Any, arg: str = "dropout") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or np.isnan(value):
        raise ValueError(f"`{arg}` must be a float between 0 and 1. Received {arg}={value!r}")
    return min(1.0, max(0.0, float(value)))


def checked_from_config(cls: type, build: Any) -> Any:
    """Run ``build()`` (a constructor call from a config); a config that does not fit the
    constructor (missing or mistyped arguments) becomes a ValueError naming the class."""
    try:
        return build()
    except (TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"Invalid config for layer {cls.__name__}: {e}") from e



def _build_cell(cell: Any, step_shape: Tuple[Any, ...]) -> None:
    if isinstance(cell, Layer) and not type(cell).__module__.startswith("klayers."):
        # tf-keras's RNN.build calls a user cell's build() directly: the cell records a
        # build_config (its config then carries one) only if its build() calls Layer.build.
        if not cell.built:
            cell.build(tuple(step_shape))
            cell.built = True
    elif isinstance(cell, Layer):
        cell._maybe_build_from_shape(tuple(step_shape))
    elif hasattr(cell, "build") and not getattr(cell, "built", False):
        cell.build(tuple(step_shape))
        try:
            cell.built = True
        except AttributeError:
            pass


def _initial_states_of(cell: Any, batch: int, dtype: Any) -> Any:
    fn = getattr(cell, "get_initial_state", None)
    if fn is not None:
        return fn(inputs=None, batch_size=batch, dtype=dtype)
    states = [np.zeros((batch,) + _size_tuple(s), dtype) for s in _flat_sizes(cell.state_size)]
    return states if len(states) > 1 else states[0]


def _cell_step(cell: Any, x: np.ndarray, states: List[np.ndarray], training: Any) -> Tuple[np.ndarray, Any]:
    """One step of any cell (built-in, stacked, or user-written), states given flat."""
    if isinstance(cell, Layer):
        call = cell.call
        if cell._expects("training"):
            return call(x, states, training=training)
        return call(x, states)
    return cell.call(x, states)

