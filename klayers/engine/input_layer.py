"""InputLayer and ``Input``: where a functional graph starts."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from klayers.engine.base_layer import Layer
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.layer_utils import normalize_dtype, unique_object_name
from klayers.engine.node import Node
from klayers.serialization import register_builtins


class InputLayer(Layer):
    """The layer behind ``Input``: holds the graph's entry tensor.

    Args:
        input_shape: shape without the batch axis (or ``batch_input_shape`` with it; Keras 3's
            ``batch_shape`` is accepted too).
        batch_size, dtype, name, sparse, ragged: as in Keras (sparse/ragged must be False).
    """

    def __init__(
        self,
        input_shape: Optional[Sequence[Optional[int]]] = None,
        batch_size: Optional[int] = None,
        dtype: Any = None,
        input_tensor: Any = None,
        sparse: Optional[bool] = None,
        name: Optional[str] = None,
        ragged: Optional[bool] = None,
        type_spec: Any = None,
        batch_input_shape: Optional[Sequence[Optional[int]]] = None,
        batch_shape: Optional[Sequence[Optional[int]]] = None,
        optional: bool = False,
        **kwargs: Any,
    ):
        if sparse or ragged:
            raise ValueError(f"InputLayer {name or ''}: sparse and ragged inputs are not supported by klayers.")
        if type_spec is not None:
            raise ValueError("InputLayer: `type_spec` is not supported by klayers.")
        if kwargs:
            raise TypeError(f"Keyword argument not understood: {sorted(kwargs)[0]!r} (layer InputLayer)")
        if batch_shape is not None and batch_input_shape is None:
            batch_input_shape = batch_shape
        if name is None:
            name = unique_object_name("input", zero_based=False)
        if input_tensor is not None:
            if not isinstance(input_tensor, KerasTensor):
                raise TypeError("InputLayer: `input_tensor` must be a KerasTensor")
            batch_input_shape = input_tensor.shape
        if batch_input_shape is None:
            if input_shape is None:
                raise ValueError(f"InputLayer {name}: give `input_shape` or `batch_input_shape`.")
            batch_input_shape = (batch_size,) + tuple(input_shape)
        elif input_shape is not None:
            raise ValueError(f"InputLayer {name}: only provide the input_shape OR batch_input_shape argument, not both.")
        batch_input_shape = tuple(None if d is None else int(d) for d in batch_input_shape)
        for d in batch_input_shape:
            if d is not None and d < 0:
                raise ValueError(f"InputLayer {name}: negative dimension in shape {batch_input_shape}")
        super().__init__(dtype=normalize_dtype(dtype), name=name)
        self._batch_input_shape = batch_input_shape
        self.sparse = False
        self.ragged = False
        self.optional = bool(optional)
        self.built = True
        self.is_placeholder = True
        tensor = input_tensor if input_tensor is not None else KerasTensor(batch_input_shape, dtype=self.dtype, name=name)
        Node(self, outputs=tensor)

    def get_config(self) -> Dict[str, Any]:
        return {
            "batch_input_shape": list(self._batch_input_shape),
            "dtype": self.dtype,
            "sparse": False,
            "ragged": False,
            "name": self.name,
            "optional": self.optional,
        }

    def _to_keras3_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """Keras 3's InputLayer writes ``batch_shape`` and its dtype as a name, not a policy."""
        config = dict(config)
        config["batch_shape"] = config.pop("batch_input_shape", None)
        config["dtype"] = self.dtype or "float32"
        return config

    def get_build_config(self):
        return None

    def call(self, inputs: Any) -> Any:
        return inputs


def Input(  # noqa: N802 - Keras's name
    shape: Optional[Sequence[Optional[int]]] = None,
    batch_size: Optional[int] = None,
    name: Optional[str] = None,
    dtype: Any = None,
    sparse: Optional[bool] = None,
    tensor: Any = None,
    ragged: Optional[bool] = None,
    type_spec: Any = None,
    batch_shape: Optional[Sequence[Optional[int]]] = None,
    **kwargs: Any,
) -> KerasTensor:
    """A symbolic input of ``shape`` (without the batch axis), the start of a functional model.

    Example::

        x = klayers.Input((32,))
        y = klayers.layers.Dense(4)(x)
        model = klayers.Model(x, y)
    """
    if "batch_input_shape" in kwargs:
        batch_shape = kwargs.pop("batch_input_shape")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments to Input: {sorted(kwargs)}")
    if shape is None and batch_shape is None and tensor is None:
        raise ValueError("Please provide to Input a `shape` or a `tensor` or a `type_spec` argument.")
    layer = InputLayer(
        input_shape=tuple(shape) if shape is not None and batch_shape is None else None,
        batch_size=batch_size,
        name=name,
        dtype=dtype,
        sparse=sparse,
        ragged=ragged,
        input_tensor=tensor,
        batch_input_shape=batch_shape,
    )
    return layer._inbound_nodes[0].outputs



register_builtins("layer", globals(), ["InputLayer"])
