"""InputSpec: what a layer accepts (rank, dtype, axes), checked before every call."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence


class InputSpec:
    """Keras's ``InputSpec(dtype, shape, ndim, max_ndim, min_ndim, axes, allow_last_axis_squeeze, name)``."""

    def __init__(
        self,
        dtype: Optional[str] = None,
        shape: Optional[Sequence[Optional[int]]] = None,
        ndim: Optional[int] = None,
        max_ndim: Optional[int] = None,
        min_ndim: Optional[int] = None,
        axes: Optional[Dict[int, int]] = None,
        allow_last_axis_squeeze: bool = False,
        name: Optional[str] = None,
    ):
        self.dtype = dtype
        self.shape = tuple(shape) if shape is not None else None
        self.ndim = len(self.shape) if self.shape is not None else ndim
        self.max_ndim = max_ndim
        self.min_ndim = min_ndim
        self.name = name
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        self.axes = {int(k): v for k, v in (axes or {}).items()}
        if self.axes and (self.ndim is not None or self.max_ndim is not None):
            max_dim = (self.ndim if self.ndim is not None else self.max_ndim) - 1
            if max(self.axes) > max_dim:
                raise ValueError(f"Axis {max(self.axes)} is greater than the maximum allowed value: {max_dim}")

    def __repr__(self) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (
                ("dtype", self.dtype), ("shape", self.shape), ("ndim", self.ndim),
                ("max_ndim", self.max_ndim), ("min_ndim", self.min_ndim), ("axes", self.axes or None),
            )
            if v is not None
        ]
        return f"InputSpec({', '.join(parts)})"

    def get_config(self) -> Dict[str, Any]:
        return {
            "dtype": self.dtype, "shape": self.shape, "ndim": self.ndim, "max_ndim": self.max_ndim,
            "min_ndim": self.min_ndim, "axes": self.axes,
        }


def assert_input_compatibility(input_spec, inputs, layer_name: str) -> None:
    """Raise ValueError (worded as Keras words it) when ``inputs`` break ``input_spec``.

    ``inputs`` are arrays or KerasTensors (anything with ``.shape``)."""
    if not input_spec:
        return
    specs = input_spec if isinstance(input_spec, (list, tuple)) else [input_spec]
    from klayers.engine.node import flatten

    flat = flatten(inputs)
    if len(specs) != len(flat):
        raise ValueError(
            f'Layer "{layer_name}" expects {len(specs)} input(s), but it received {len(flat)} input tensors. '
            f"Inputs received: {[getattr(x, 'shape', x) for x in flat]}"
        )
    for i, (x, spec) in enumerate(zip(flat, specs)):
        if spec is None:
            continue
        shape = tuple(getattr(x, "shape", ()))
        ndim = len(shape)
        if spec.ndim is not None and not spec.allow_last_axis_squeeze and ndim != spec.ndim:
            raise ValueError(
                f'Input {i} of layer "{layer_name}" is incompatible with the layer: '
                f"expected ndim={spec.ndim}, found ndim={ndim}. Full shape received: {shape}"
            )
        if spec.max_ndim is not None and ndim > spec.max_ndim:
            raise ValueError(
                f'Input {i} of layer "{layer_name}" is incompatible with the layer: '
                f"expected max_ndim={spec.max_ndim}, found ndim={ndim}. Full shape received: {shape}"
            )
        if spec.min_ndim is not None and ndim < spec.min_ndim:
            raise ValueError(
                f'Input {i} of layer "{layer_name}" is incompatible with the layer: '
                f"expected min_ndim={spec.min_ndim}, found ndim={ndim}. Full shape received: {shape}"
            )
        for axis, value in spec.axes.items():
            if value is None:
                continue
            if -ndim <= axis < ndim and shape[axis] is not None and shape[axis] not in {value}:
                raise ValueError(
                    f'Input {i} of layer "{layer_name}" is incompatible with the layer: '
                    f"expected axis {axis} of input shape to have value {value}, but received "
                    f"input with shape {shape}"
                )
        if spec.shape is not None:
            for spec_dim, dim in zip(spec.shape, shape):
                if spec_dim is not None and dim is not None and spec_dim != dim:
                    raise ValueError(
                        f'Input {i} of layer "{layer_name}" is incompatible with the layer: '
                        f"expected shape={spec.shape}, found shape={shape}"
                    )
