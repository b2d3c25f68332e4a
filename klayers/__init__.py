"""klayers: the Keras layer API in NumPy and Cython, for CPUs, without TensorFlow."""

from typing import Any, Optional

try:
    from klayers._ext import dense as _dense_probe  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised by an unbuilt checkout only
    raise ImportError(
        "klayers's compiled kernels are not built. From the source checkout run "
        "`pip install .` (or, for development, `pip install -e .` or "
        "`python setup.py build_ext --inplace`), then import klayers again. "
        f"(Import of klayers._ext.dense failed: {e})"
    ) from e

from klayers import (
    activations,
    backend,
    constraints,
    inference,
    initializers,
    layers,
    models,
    ops,
    regularizers,
    saving,
    serialization,
    utils,
)
from klayers._version import __version__
from klayers.engine import Input, InputSpec, KerasTensor, Layer, Model, Sequential, Variable, hooks
from klayers.models import model_from_json
from klayers.ops.threads import get_num_threads, num_threads, set_num_threads


def _is_dask_collection(x: Any) -> bool:
    """A Dask array (or a list/dict holding one), recognised without importing Dask."""
    if isinstance(x, (list, tuple)):
        return any(_is_dask_collection(v) for v in x)
    if isinstance(x, dict):
        return any(_is_dask_collection(v) for v in x.values())
    return type(x).__module__.startswith("dask.array")


def _predict_dask(model: Any, x: Any, batch_size: Optional[int] = None) -> Any:
    # klayers.dask needs the optional Dask extra: imported on first use only.
    from klayers.dask import predict

    return predict(model, x, batch_size=batch_size)


hooks.install_array_handler(_is_dask_collection, _predict_dask)


def __getattr__(name: str) -> Any:
    # klayers.dask needs the optional Dask extra: imported on first use only.
    if name == "dask":
        from klayers import dask

        return dask
    raise AttributeError(f"module 'klayers' has no attribute {name!r}")


__all__ = [
    "Input",
    "InputSpec",
    "KerasTensor",
    "Layer",
    "Model",
    "Sequential",
    "Variable",
    "__version__",
    "activations",
    "backend",
    "constraints",
    "get_num_threads",
    "inference",
    "initializers",
    "layers",
    "model_from_json",
    "models",
    "num_threads",
    "ops",
    "regularizers",
    "saving",
    "serialization",
    "set_num_threads",
    "utils",
]
