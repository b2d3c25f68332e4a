"""StackedRNNCells: several cells run as one, each step feeding one cell's output to the next."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from klayers.engine.base_layer import Layer
from klayers.engine.layer_serialization import deserialize
from klayers.engine.node import flatten
from klayers.layers.recurrent._common import (
    _build_cell,
    _cell_step,
    _flat_sizes,
    _initial_states_of,
    _pack_states,
    _size_tuple,
    checked_from_config,
)
from klayers.serialization import serialize_keras_object


class StackedRNNCells(Layer):
    """Several cells run as one: each step feeds one cell's output to the next.

    ``state_size`` is the cells' state sizes in order. ``call`` takes the states flat or nested
    per cell and returns them nested per cell (``[[h, c], h2]`` for ``[LSTMCell, GRUCell]``), as
    tf-keras does; an ``RNN`` over it returns its states (``return_state``, ``states``) so nested.
    """

    def __init__(self, cells: Sequence[Any], **kwargs: Any):
        for cell in cells:
            if "call" not in dir(cell):
                raise ValueError(f"All cells must have a `call` method. Received cell without a `call` method: {cell}")
            if "state_size" not in dir(cell):
                raise ValueError(f"All cells must have a `state_size` attribute. Received cell without a `state_size`: {cell}")
        super().__init__(**kwargs)
        self.cells = list(cells)

    @property
    def state_size(self) -> tuple:
        return tuple(c.state_size for c in self.cells)

    @property
    def output_size(self) -> Any:
        last = self.cells[-1]
        if getattr(last, "output_size", None) is not None:
            return last.output_size
        sizes = _flat_sizes(last.state_size)
        return sizes[0]

    def get_initial_state(self, inputs: Any = None, batch_size: Optional[int] = None, dtype: Any = None) -> List[Any]:
        return [_initial_states_of(c, batch_size, dtype or self.dtype) for c in self.cells]

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        for cell in self.cells:
            _build_cell(cell, shape)
            out = getattr(cell, "output_size", None)
            if out is None:
                out = _flat_sizes(cell.state_size)[0]
            shape = (shape[0],) + _size_tuple(out)
        for w in self.weights:
            if not w.name.startswith(self.name + "/"):
                w.name = f"{self.name}/{w.name}"
        self.built = True

    def call(self, inputs: Any, states: Any, training: Any = None) -> Tuple[Any, List[Any]]:
        flat = list(flatten(states))
        new_states: List[Any] = []
        x = inputs
        pos = 0
        for cell in self.cells:
            n = len(_flat_sizes(cell.state_size))
            cell_states = flat[pos:pos + n]
            pos += n
            x, ns = _cell_step(cell, x, cell_states, training)
            new_states.extend(flatten(ns) if isinstance(ns, (list, tuple)) else [ns])
        return x, _pack_states(self.state_size, new_states)

    def _sequence(self, x, states, mask, go_backwards, zero_output, return_sequences):
        if not all(hasattr(c, "_sequence") for c in self.cells):
            return None
        pos = 0
        finals: List[np.ndarray] = []
        last = None
        for i, cell in enumerate(self.cells):
            n = len(_flat_sizes(cell.state_size))
            is_last = i == len(self.cells) - 1
            # Layer by layer is exact: at a masked step every state is carried, so what a lower
            # cell outputs there never reaches the result.
            res = cell._sequence(x, states[pos:pos + n], mask, go_backwards if i == 0 else False,
                                 zero_output if is_last else False, True if not is_last else return_sequences)
            if res is None:
                return None
            last, seq, st = res
            finals.extend(st)
            pos += n
            if not is_last:
                x = seq
                if go_backwards and i == 0 and mask is not None:
                    mask = mask[:, ::-1]
        return last, seq if return_sequences else None, finals

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["cells"] = [serialize_keras_object(c) for c in self.cells]
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> StackedRNNCells:
        config = dict(config)
        cells = config.pop("cells", None)
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(f"StackedRNNCells: `cells` must be a non-empty list of cell configs. Received cells={cells!r}")
        cells = [deserialize(c, custom_objects=custom_objects) for c in cells]
        return checked_from_config(cls, lambda: cls(cells, **config))

