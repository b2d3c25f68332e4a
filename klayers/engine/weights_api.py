"""The weights API of a layer (Keras 2 order: trainable then non-trainable, own weights before
tracked sub-layers'), ``get_weights`` / ``set_weights`` and the penalties in ``losses``."""

from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np

from klayers.engine.variable import Variable


class WeightsAPI:
    """Mixin of :class:`~klayers.engine.base_layer.Layer`: reads ``self._trainable_weights``,
    ``self._non_trainable_weights`` (filled by ``add_weight``), ``self._flatten_layers_list``
    (tracked sub-layers) and ``self._activity_losses``."""

    def _gather(self, attr: str) -> List[Variable]:
        out: List[Variable] = []
        for layer in self._flatten_layers_list:
            out.extend(getattr(layer, attr))
        return out

    @property
    def trainable_weights(self) -> List[Variable]:
        if not self.trainable:
            return []
        return self._dedup(self._trainable_weights + self._gather("trainable_weights"))

    @property
    def non_trainable_weights(self) -> List[Variable]:
        if self.trainable:
            own = self._non_trainable_weights + self._gather("non_trainable_weights")
        else:
            own = self._trainable_weights + self._non_trainable_weights + self._gather("weights")
        return self._dedup(own)

    @staticmethod
    def _dedup(weights: List[Variable]) -> List[Variable]:
        seen, out = set(), []
        for w in weights:
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
        return out

    @property
    def weights(self) -> List[Variable]:
        """Trainable weights then non-trainable ones, as Keras orders them."""
        return self._dedup(self.trainable_weights + self.non_trainable_weights)

    @property
    def variables(self) -> List[Variable]:
        return self.weights

    @property
    def trainable_variables(self) -> List[Variable]:
        return self.trainable_weights

    @property
    def non_trainable_variables(self) -> List[Variable]:
        return self.non_trainable_weights

    def get_weights(self) -> List[np.ndarray]:
        """Copies of the weights, in Keras's order."""
        return [w.value.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set all weights at once (Keras's order and shapes).

        Raises:
            ValueError: wrong count, shape or dtype kind; the layer is left unchanged.
        """
        params = self.weights
        weights = list(weights)
        if len(params) != len(weights):
            raise ValueError(
                f'You called `set_weights(weights)` on layer "{self.name}" with a weight list of '
                f"length {len(weights)}, but the layer was expecting {len(params)} weights. "
                f"Expected weights: {[p.name for p in params]}"
            )
        converted = []
        for p, w in zip(params, weights):
            try:
                arr = np.asarray(w)
            except Exception as e:  # noqa: BLE001 - a clear error for any unconvertible value
                raise ValueError(f"Layer {self.name}: weight {p.name} could not be converted to an array: {e}") from e
            if arr.dtype.kind not in "fiub":
                raise ValueError(f"Layer {self.name}: weight {p.name} must be numeric, got dtype {arr.dtype}")
            if arr.shape != p.shape:
                raise ValueError(
                    f"Layer {self.name} weight shape {p.shape} is not compatible with provided "
                    f"weight shape {arr.shape} (weight {p.name})."
                )
            converted.append(np.array(arr, dtype=p.dtype, order="C", copy=True))
        for p, arr in zip(params, converted):
            p.value = arr

    def count_params(self) -> int:
        """The number of scalars in all weights.

        Raises:
            ValueError: the layer is not built yet.
        """
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer {self.name}, but the layer isn't built. "
                "You can build it manually via: `layer.build(batch_input_shape)`."
            )
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    @property
    def losses(self) -> List[float]:
        """Weight regularization penalties (on current values) plus the activity penalties of
        the last call."""
        out: List[float] = []
        for w in self._trainable_weights + self._non_trainable_weights:
            if w.regularizer is not None:
                out.append(float(w.regularizer(w.value)))
        out.extend(self._activity_losses)
        for layer in self._flatten_layers_list:
            out.extend(layer.losses)
        return out
