"""Helpers of the Layer engine: generated names, dtype names, shape structures, errors that
name the layer, and rebuilding a pickled layer."""

from __future__ import annotations

import inspect
import re
from typing import Any, List, Optional, Tuple

import numpy as np

from klayers import backend
from klayers.serialization import CustomObjectScope, SafeModeScope


# -- names: "dense", "dense_1", ... per snake-case class name, as Keras's unique_object_name.
def to_snake_case(name: str) -> str:
    """``"Conv2DTranspose"`` -> ``"conv2d_transpose"``, ``"ConvLSTM2D"`` -> ``"conv_lstm2d"``
    (tf-keras 2.21's ``generic_utils.to_snake_case``: a split before a capital followed by
    lower-case letters only; old Keras's ``[a-z0-9]+`` gave ``"conv_lst_m2d"``)."""
    intermediate = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    insecure = re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()
    if insecure[0] != "_":
        return insecure
    return "private" + insecure


def keras3_snake_case(name: str) -> str:
    """Keras 3's ``keras.src.utils.naming.to_snake_case``, which names the object paths of its
    ``.keras`` / ``.weights.h5`` files: ``"ConvLSTM2D"`` -> ``"conv_lstm2d"`` (tf-keras's rule above
    gives ``"conv_lst_m2d"``: it splits before a capital followed by digits, Keras 3 only before a
    capital followed by lower-case letters), non-word characters dropped, no ``private`` prefix."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_object_name(base: str, zero_based: bool = True) -> str:
    """``base`` the first time (``zero_based``), then ``base_1``, ``base_2`` ... (counters in
    :func:`klayers.backend.get_uid`, reset by ``clear_session``)."""
    n = backend.get_uid(base)
    if zero_based:
        return base if n == 0 else f"{base}_{n}"
    return f"{base}_{n + 1}"


# ---------------------------------------------------------------------------------------------
def normalize_dtype(dtype: Any) -> str:
    """A dtype name from a NumPy dtype, a string, or a Keras 2/3 dtype-policy config."""
    if dtype is None:
        return backend.floatx()
    if isinstance(dtype, dict):
        cfg = dtype.get("config", {}) or {}
        name = cfg.get("name", "float32")
        dtype = name
    if isinstance(dtype, str):
        if dtype.startswith("mixed_"):
            return dtype.split("_", 1)[1]  # compute dtype of a mixed policy
        try:
            return np.dtype(dtype).name
        except TypeError as e:
            raise ValueError(f"Unknown dtype: {dtype!r}") from e
    if hasattr(dtype, "name") and isinstance(dtype.name, str) and not isinstance(dtype, np.dtype):
        return normalize_dtype(dtype.name)
    try:
        return np.dtype(dtype).name
    except TypeError as e:
        raise ValueError(f"Unknown dtype: {dtype!r}") from e


def concrete_shape(shape: Any) -> Tuple[int, ...]:
    return tuple(2 if d is None else int(d) for d in shape)


def is_number_tree(x: Any) -> bool:
    """Whether a non-empty list / tuple holds Python or NumPy scalars (at its first leaf)."""
    while isinstance(x, (list, tuple)):
        if not x:
            return False
        x = x[0]
    return isinstance(x, (int, float, bool, complex, np.generic))


def error_naming_layer(error: BaseException, layer: Any) -> Optional[BaseException]:
    """A copy of a plain ValueError / TypeError from ``build`` or ``call`` whose message names
    ``layer`` (issue 10: every error on bad input names the layer); None when it already does,
    or when the exception is of another class (its constructor may take other arguments).
    An IndexError (an input of the wrong rank or size reaching NumPy indexing) becomes a
    ValueError: it is a bad input, not a missing key."""
    msg = str(error)
    if type(error) is IndexError:
        return ValueError(f'Layer "{layer.name}" ({type(layer).__name__}): {msg}')
    if type(error) not in (ValueError, TypeError):
        return None
    if re.search(rf"(?<![\w]){re.escape(layer.name)}(?![\w])", msg):
        return None
    return type(error)(f'Layer "{layer.name}" ({type(layer).__name__}): {msg}')


def all_sublayers(layer: Any) -> List[Any]:
    out: List[Any] = []
    for child in layer._flatten_layers_list:
        out.append(child)
        out.extend(all_sublayers(child))
    return out


def restore_layer(cls, config, build_shape, weights, classes):
    """Unpickle: rebuild from the config, build, set the weights. Pickle already executes code
    by design, so marshalled Lambda functions in the config are accepted here."""
    with CustomObjectScope(classes), SafeModeScope(False):
        params = inspect.signature(cls.from_config).parameters
        layer = cls.from_config(config, custom_objects=classes) if "custom_objects" in params else cls.from_config(config)
    if build_shape is not None and not layer.built:
        layer._maybe_build_from_shape(build_shape)
    if weights is not None:
        layer.set_weights(weights)
    return layer


def is_shape(x: Any) -> bool:
    """A shape is a tuple (or a non-empty list) of ints and Nones."""
    if isinstance(x, list) and not x:
        return False
    return isinstance(x, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer)) for d in x)


def map_shapes(fn, shapes: Any) -> Any:
    if is_shape(shapes):
        return fn(shapes)
    if isinstance(shapes, (list, tuple)):
        return [map_shapes(fn, s) for s in shapes]
    if isinstance(shapes, dict):
        return {k: map_shapes(fn, v) for k, v in shapes.items()}
    raise TypeError(f"compute_output_shape returned something that is not a shape: {shapes!r}")


def shape_to_list(shape: Any) -> Any:
    if is_shape(shape):
        return [None if d is None else int(d) for d in shape]
    if isinstance(shape, (list, tuple)):
        return [shape_to_list(s) for s in shape]
    return shape


def shape_to_tuple(shape: Any) -> Any:
    if isinstance(shape, (list, tuple)) and all(d is None or isinstance(d, int) for d in shape):
        return tuple(shape)
    if isinstance(shape, (list, tuple)):
        return [shape_to_tuple(s) for s in shape]
    return shape
