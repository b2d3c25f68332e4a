"""klayers: the Keras layer API in NumPy and Cython, for CPUs, without TensorFlow."""

__version__ = "0.1.0"

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
    initializers,
    layers,
    models,
    ops,
    regularizers,
    saving,
    utils,
)
from klayers.engine import Input, InputSpec, KerasTensor, Layer, Model, Sequential, Variable
from klayers.models import model_from_json
from klayers.ops.threads import get_num_threads, num_threads, set_num_threads


def __getattr__(name: str):
    # klayers.dask needs the optional Dask extra: imported on first use only.
    if name == "dask":
        import importlib

        return importlib.import_module("klayers.dask")
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
    "initializers",
    "layers",
    "model_from_json",
    "models",
    "num_threads",
    "ops",
    "regularizers",
    "saving",
    "set_num_threads",
    "utils",
]
