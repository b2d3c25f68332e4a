"""Keras's legacy HDF5 files (``model.save("m.h5")``, ``model.save_weights("w.h5")``).

Layout (tf-keras 2.x ``hdf5_format.py``; Keras 3's legacy writer is the same but drops the
``:0`` suffix of weight names and writes the Keras 3 config dialect)::

    /                       attrs: keras_version, backend, model_config (JSON), [training_config]
    /model_weights          attrs: layer_names, keras_version, backend
    /model_weights/<layer>  attrs: weight_names ("dense/kernel:0", ...), the datasets they name
    /optimizer_weights      (ignored: klayers does inference only)

``save_weights`` writes the ``model_weights`` tree at the file's root. Weights go in layer by
layer: each layer's (or nested model's) trainable weights then its non-trainable ones, which is
the order the writer used. CuDNNLSTM / CuDNNGRU weights are converted into the plain layer's
layout on the way in, as tf-keras does (``_convert_rnn_weights``).
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from klayers.engine.sequential import Sequential
from klayers.saving.file_utils import (
    ModelFileError,
    decode_attr,
    dialect_of_version,
    logger,
    model_from_file_config,
    parse_json,
    read_dataset,
    string_list_attr,
    write_h5,
)
from klayers.saving.keras3_config import to_keras2_config
from klayers.serialization import json_default

#: The Keras version klayers writes into .h5 files: the dialect of the configs it writes.
WRITTEN_KERAS_VERSION = "2.21.0"


def legacy_weights(layer: Any) -> List[Any]:
    """The layer's variables in the order .h5 files store them: trainable, then non-trainable."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


# -- reading ---------------------------------------------------------------------------------
def load_model_from_h5(f: Any, where: str, custom_objects: Optional[Mapping[str, Any]] = None,
                       compile: bool = False, safe_mode: bool = True) -> Any:
    """The model stored in an open legacy HDF5 file ``f`` (``where`` names it in errors)."""
    raw = f.attrs.get("model_config")
    if raw is None:
        if "layer_names" in f.attrs or "model_weights" not in f:
            raise ModelFileError(
                f"'{where}' holds only weights (no model_config): build the model, then call "
                "model.load_weights() on it."
            )
        raise ModelFileError(f"'{where}' has no model config (attribute 'model_config').")
    config = parse_json(raw, "the model config", where)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError(f"'{where}': the model config is not a Keras model config.")
    dialect = dialect_of_version(decode_attr(f.attrs.get("keras_version")), config)
    if "training_config" in f.attrs or "optimizer_weights" in f:
        note = f"'{where}': the training configuration and optimizer state are ignored (klayers runs inference only)."
        logger.info(note)
        if compile:
            warnings.warn(note, stacklevel=3)
    model = model_from_file_config(config, dialect, where, custom_objects, compile, safe_mode)
    if "model_weights" not in f:
        raise ModelFileError(f"'{where}' has a model config but no 'model_weights' group.")
    load_weights_from_h5_group(f["model_weights"], model, where)
    return model


def _file_version(f: Any) -> Tuple[Optional[str], Optional[str]]:
    version = decode_attr(f.attrs.get("keras_version")) if "keras_version" in f.attrs else "1"
    backend = decode_attr(f.attrs.get("backend")) if "backend" in f.attrs else None
    return version, backend


def _layer_values(g: Any, symbolic: Sequence[Any], where: str) -> List[np.ndarray]:
    names = string_list_attr(g, "weight_names", where)
    out = []
    for i, name in enumerate(names):
        expected = tuple(symbolic[i].shape) if i < len(symbolic) else None
        out.append(read_dataset(g, name, expected, where))
    return out


def _assign_all(pairs: List[Tuple[Any, np.ndarray]]) -> None:
    for var, value in pairs:
        var.assign(value)


def load_weights_from_h5_group(f: Any, model: Any, where: str) -> None:
    """Topological loading: the file's layers with weights, in order, into the model's layers
    with weights, in order (tf-keras ``load_weights_from_hdf5_group``).

    Raises:
        ModelFileError: layer count, weight count or shape mismatch (named).
    """
    version, _ = _file_version(f)
    if version == "1":
        raise ModelFileError(f"'{where}' was written by Keras 1 (no keras_version attribute); klayers reads Keras 2 and 3 files.")
    layers = [layer for layer in model.layers if legacy_weights(layer)]
    if "layer_names" not in f.attrs and "layer_names0" not in f.attrs:
        raise ModelFileError(f"'{where}': no 'layer_names' attribute where weights were expected (not a Keras weights file?).")
    names = []
    for name in string_list_attr(f, "layer_names", where):
        if name not in f:
            raise ModelFileError(f"'{where}': layer '{name}' is listed but its group is missing (truncated file?).")
        if string_list_attr(f[name], "weight_names", where):
            names.append(name)
    if len(names) != len(layers):
        raise ModelFileError(
            f"'{where}': layer count mismatch when loading weights from file. Model expected "
            f"{len(layers)} layers with weights, found {len(names)} saved layers ({names})."
        )
    pairs: List[Tuple[Any, np.ndarray]] = []
    for k, (name, layer) in enumerate(zip(names, layers)):
        symbolic = legacy_weights(layer)
        values = preprocess_weights_for_loading(layer, _layer_values(f[name], symbolic, where), where)
        if len(values) != len(symbolic):
            raise ModelFileError(
                f"'{where}': weight count mismatch for layer #{k} (named {layer.name} in the current "
                f"model, {name} in the save file). Layer expects {len(symbolic)} weight(s). Received "
                f"{len(values)} saved weight(s)."
            )
        pairs.extend(_checked_pairs(symbolic, values, layer, name, where))
    pairs.extend(_top_level(f, model, where, skip_mismatch=False))
    _assign_all(pairs)


def _checked_pairs(symbolic, values, layer, name, where, skip_mismatch=False):
    out = []
    for var, value in zip(symbolic, values):
        if tuple(var.shape) != tuple(value.shape):
            msg = (f"'{where}': shape mismatch in layer {layer.name} (saved as {name}) for weight "
                   f"{var.name}: the weight expects shape {tuple(var.shape)}, the file holds {tuple(value.shape)}.")
            if skip_mismatch:
                warnings.warn(msg + " Skipped.", stacklevel=4)
                continue
            raise ModelFileError(msg)
        out.append((var, value))
    return out


def _top_level(f, model, where, skip_mismatch):
    if "top_level_model_weights" not in f:
        return []
    symbolic = list(model._trainable_weights) + list(model._non_trainable_weights)
    values = _layer_values(f["top_level_model_weights"], symbolic, where)
    if len(values) != len(symbolic):
        msg = (f"'{where}': weight count mismatch for top-level weights: the model expects "
               f"{len(symbolic)}, the file holds {len(values)}.")
        if skip_mismatch:
            warnings.warn(msg + " Skipped.", stacklevel=4)
            return []
        raise ModelFileError(msg)
    return _checked_pairs(symbolic, values, model, "top_level_model_weights", where, skip_mismatch)


def load_weights_from_h5_group_by_name(f: Any, model: Any, where: str, skip_mismatch: bool = False) -> None:
    """Name-based loading: each saved layer goes into the model's layer of the same name; layers
    without a match are left alone. ``skip_mismatch`` skips (with a warning) layers whose weight
    count or shapes differ instead of raising."""
    version, _ = _file_version(f)
    if version == "1":
        raise ModelFileError(f"'{where}' was written by Keras 1; klayers reads Keras 2 and 3 files.")
    index: Dict[str, List[Any]] = {}
    for layer in model.layers:
        index.setdefault(layer.name, []).append(layer)
    pairs: List[Tuple[Any, np.ndarray]] = []
    for k, name in enumerate(string_list_attr(f, "layer_names", where)):
        if name not in f:
            raise ModelFileError(f"'{where}': layer '{name}' is listed but its group is missing (truncated file?).")
        for layer in index.get(name, []):
            symbolic = legacy_weights(layer)
            values = preprocess_weights_for_loading(layer, _layer_values(f[name], symbolic, where), where)
            if len(values) != len(symbolic):
                msg = (f"'{where}': weight count mismatch for layer #{k} (named {layer.name}): the layer "
                       f"expects {len(symbolic)} weight(s), the file holds {len(values)}.")
                if skip_mismatch:
                    warnings.warn(msg + " Skipped.", stacklevel=3)
                    continue
                raise ModelFileError(msg)
            pairs.extend(_checked_pairs(symbolic, values, layer, name, where, skip_mismatch))
    pairs.extend(_top_level(f, model, where, skip_mismatch))
    _assign_all(pairs)


# -- weight conversions (tf-keras preprocess_weights_for_loading) ----------------------------
def preprocess_weights_for_loading(layer: Any, weights: List[np.ndarray], where: str = "") -> List[np.ndarray]:
    """Recurse into Bidirectional, TimeDistributed and nested models, and convert CuDNN RNN
    weights into the plain LSTM / GRU layout."""
    cls = type(layer).__name__
    if cls == "Bidirectional" and hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):
        half = len(weights) // 2
        weights = (preprocess_weights_for_loading(layer.forward_layer, weights[:half], where)
                   + preprocess_weights_for_loading(layer.backward_layer, weights[half:], where))
    elif cls == "TimeDistributed" and hasattr(layer, "layer"):
        weights = preprocess_weights_for_loading(layer.layer, weights, where)
    elif hasattr(layer, "layers") and hasattr(layer, "_is_graph_network"):
        weights = _convert_nested_model(layer, weights, where)
    return convert_rnn_weights(layer, weights, where)


def _convert_nested_model(model: Any, weights: List[np.ndarray], where: str) -> List[np.ndarray]:
    n_trainable = len(model.trainable_weights)
    trainable, non_trainable = weights[:n_trainable], weights[n_trainable:]
    new_t: List[np.ndarray] = []
    new_nt: List[np.ndarray] = []
    for sub in model.layers:
        nt, nnt = len(sub.trainable_weights), len(sub.non_trainable_weights)
        if not sub.weights:
            continue
        done = preprocess_weights_for_loading(sub, trainable[:nt] + non_trainable[:nnt], where)
        new_t.extend(done[:nt])
        new_nt.extend(done[nt:])
        trainable, non_trainable = trainable[nt:], non_trainable[nnt:]
    # whatever is left (the model's own weights, or a count mismatch) passes through unchanged
    return new_t + trainable + new_nt + non_trainable


def convert_rnn_weights(layer: Any, weights: List[np.ndarray], where: str = "") -> List[np.ndarray]:
    """CuDNNLSTM -> LSTM (bias halves summed) and CuDNNGRU -> GRU(reset_after=True) (bias
    reshaped to (2, 3u)); per-gate input kernels from cuDNN's Fortran layout, recurrent kernels
    transposed. Plain weights pass through unchanged."""
    target = type(layer).__name__
    if len(weights) != 3 or target not in ("LSTM", "GRU"):
        return weights

    def per_gate(kernels, fn, n_gates):
        return np.hstack([fn(k) for k in np.hsplit(kernels, n_gates)])

    def from_cudnn_input(k):
        return k.T.reshape(k.shape, order="F")

    units = weights[1].shape[0]
    bias = weights[2]
    if target == "LSTM":
        if bias.shape == (8 * units,):
            return [per_gate(weights[0], from_cudnn_input, 4), per_gate(weights[1], lambda k: k.T, 4),
                    np.sum(np.split(bias, 2, axis=0), axis=0)]
        return weights
    if bias.shape == (6 * units,):
        if not getattr(layer, "reset_after", True):
            raise ModelFileError(
                f"'{where}': CuDNNGRU weights can be loaded only into GRU(reset_after=True, "
                f"recurrent_activation='sigmoid'); layer {layer.name} has reset_after=False."
            )
        return [per_gate(weights[0], from_cudnn_input, 3), per_gate(weights[1], lambda k: k.T, 3),
                bias.reshape((2, -1))]
    return weights


# -- writing ---------------------------------------------------------------------------------
def legacy_model_config(model: Any) -> Dict[str, Any]:
    """``{"class_name", "config"}`` as tf-keras writes it into .h5 files: layer entries without
    ``module`` / ``registered_name`` / ``build_config`` (``use_legacy_config``)."""
    config = {"class_name": _model_class_name(model), "config": model.get_config()}
    return to_keras2_config(_strip_entries(config))


def _model_class_name(model: Any) -> str:
    if isinstance(model, Sequential):
        return "Sequential"
    return "Functional" if type(model).__name__ in ("Functional", "Model") else type(model).__name__


def _strip_entries(config: Any) -> Any:
    if not isinstance(config, dict):
        return config
    inner = config.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
        inner = dict(inner)
        inner["layers"] = [_strip_entries(_entry(e)) for e in inner["layers"]]
        config = dict(config, config=inner)
    return config


def _entry(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry
    entry = {k: v for k, v in entry.items() if k not in ("module", "registered_name", "build_config")}
    if entry.get("class_name") == "TFOpLambda" and isinstance(entry.get("inbound_nodes"), list):
        # tf-keras writes a one-input TFOpLambda node as the bare entry, and reads a one-entry
        # list as a list argument.
        entry["inbound_nodes"] = [
            n[0] if isinstance(n, list) and len(n) == 1 and isinstance(n[0], list) and n[0] and isinstance(n[0][0], str) else n
            for n in entry["inbound_nodes"]
        ]
    return entry


#: tf-keras's HDF5_OBJECT_HEADER_LIMIT: longer attribute lists are split into name0, name1 ...
_HEADER_LIMIT = 64512


def _write_string_list(group: Any, name: str, values: Sequence[str]) -> None:
    if not values:
        group.attrs[name] = np.array([], dtype=np.float64)  # what tf-keras writes for []
        return
    data = np.array([v.encode("utf-8") for v in values])
    n_chunks = 1
    chunks = [data]
    while any(c.nbytes > _HEADER_LIMIT for c in chunks) and n_chunks < len(data):
        n_chunks += 1
        chunks = np.array_split(data, n_chunks)
    if n_chunks == 1:
        group.attrs[name] = data
    else:
        for i, chunk in enumerate(chunks):
            group.attrs[f"{name}{i}"] = chunk


def _write_layer_weights(g: Any, layer: Any, prefix: Optional[str] = None) -> None:
    variables = legacy_weights(layer)
    names = _weight_names(layer, variables, prefix)
    _write_string_list(g, "weight_names", names)
    for name, var in zip(names, variables):
        value = np.asarray(var.value)
        ds = g.create_dataset(name, value.shape, dtype=value.dtype)
        if value.shape:
            ds[:] = value
        else:
            ds[()] = value


def _weight_names(layer: Any, variables: Sequence[Any], prefix: Optional[str]) -> List[str]:
    """tf-keras writes each variable's own name (``dense/kernel:0``); made unique if two collide."""
    names: List[str] = []
    used = set()
    for var in variables:
        base = var.name if ":" in var.name else f"{var.name}:0"
        if "/" not in base:  # tf-keras names every weight under its layer
            base = f"{layer.name}/{base}"
        name, k = base, 1
        while name in used:
            name = base.replace(":0", f"_{k}:0")
            k += 1
        used.add(name)
        names.append(name)
    return names


def save_weights_to_h5_group(f: Any, model: Any) -> None:
    """Write the model's weights into ``f`` as tf-keras ``save_weights_to_hdf5_group`` does."""
    _write_string_list(f, "layer_names", [layer.name for layer in model.layers])
    f.attrs["backend"] = "tensorflow"
    f.attrs["keras_version"] = WRITTEN_KERAS_VERSION
    for layer in sorted(model.layers, key=lambda x: x.name):
        _write_layer_weights(f.create_group(layer.name), layer)
    g = f.create_group("top_level_model_weights")
    _write_string_list(g, "weight_names", [])


def save_model_to_h5(model: Any, path: str) -> None:
    """Write ``model`` as tf-keras 2.x ``model.save("m.h5")`` does (config and weights; no
    optimizer). Refuses a model whose meaning tf-keras would change (see ``to_keras2_config``)."""
    config = legacy_model_config(model)
    write_h5(path, lambda f: _fill_model_file(f, model, config))


def _fill_model_file(f: Any, model: Any, config: Dict[str, Any]) -> None:
    f.attrs["keras_version"] = WRITTEN_KERAS_VERSION
    f.attrs["backend"] = "tensorflow"
    f.attrs["model_config"] = json.dumps(config, default=json_default)
    save_weights_to_h5_group(f.create_group("model_weights"), model)


def save_weights_to_h5(model: Any, path: str) -> None:
    """``model.save_weights("w.h5")`` in tf-keras's legacy layout."""
    write_h5(path, lambda f: save_weights_to_h5_group(f, model))
