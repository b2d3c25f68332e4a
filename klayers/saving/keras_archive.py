"""Keras 3 ``.keras`` archives and object-path ``.weights.h5`` files.

A ``.keras`` file is a zip of ``metadata.json`` (``keras_version``), ``config.json`` (the model,
``serialize_keras_object`` form) and ``model.weights.h5``. In the weights file, variables live
under object paths, not layer names (Keras 3 ``saving_lib``)::

    vars                                  the model's own variables (none for klayers models)
    layers/<snake_case_class>[_N]/vars/0  a layer's own variables, 0..k in Keras's order
    layers/functional/layers/dense/vars/0 a nested model's layers
    layers/bidirectional/forward_layer/cell/vars/0   sub-layers by attribute name

``_N`` counts layers of the same class within one list (``dense``, ``dense_1`` ...). Keras 3
also writes ``attrs["name"]`` (the layer's name) on each ``vars`` group; tf-keras's own writer
does not. klayers computes the paths from the model (the paths are checked against the ``name``
attribute when it is there, and a layer is looked up by that name among its siblings when its
path does not fit).

Reading is guarded: zip entries with ``..`` or absolute names are refused, JSON is size-capped,
the weights file is streamed to a temporary file (never read whole into memory), and each
dataset is checked against the weight it fills before it is read.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from klayers._version import __version__
from klayers.engine.base_layer import Layer
from klayers.engine.layer_utils import keras3_snake_case
from klayers.saving.file_utils import (
    MAX_JSON_BYTES,
    ModelFileError,
    decode_attr,
    dialect_of_version,
    model_from_file_config,
    open_h5,
    parse_json,
    read_dataset,
    write_h5,
)
from klayers.saving.keras3_config import (
    check_meanings,
    keras3_model_config,
)
from klayers.serialization import json_default

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
#: The Keras version klayers writes into metadata.json: the dialect of the config it writes.
WRITTEN_KERAS_VERSION = "3.15.1"
#: Largest weights entry klayers extracts from an archive (streamed to a temporary file).
MAX_WEIGHTS_BYTES = 64 * 2**30
#: A zip entry expanding more than this many times its compressed size is refused.
MAX_RATIO = 1000

#: Layers whose Keras counterpart holds all their variables itself (no sub-objects).
_FLAT_CLASSES = ("CuDNNLSTM", "CuDNNGRU")
_RNN_CLASSES = ("SimpleRNN", "GRU", "LSTM", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")


# -- object paths ------------------------------------------------------------------------------
def _snake(name: str) -> str:
    # Keras 3's rule (``conv_lstm2d``); tf-keras's own writer differs only for class names with a
    # leading underscore or non-word characters, which no saved layer class has
    return keras3_snake_case(name)


def _keras3_class(layer: Any) -> str:
    """The name of Keras 3's own Python class for ``layer`` (it names the object path):
    ``GroupQueryAttention`` is ``GroupedQueryAttention`` there."""
    return type(layer).__dict__.get("_keras3_python_name") or type(layer).__name__


def _unique(name: str, used: Dict[str, int]) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _name_key(name: str) -> str:
    return f"~{name}" if name.startswith("_") else name


def _is_layer(x: Any) -> bool:
    return isinstance(x, Layer)


def _children(layer: Any) -> List[Tuple[str, Any]]:
    """(attribute, sub-layer or list of sub-layers) in Keras 3's visiting order."""
    hook = getattr(layer, "_keras3_children", None)
    if hook is not None:
        return list(hook())
    if type(layer).__name__ in _FLAT_CLASSES:
        return []
    if hasattr(layer, "_is_graph_network"):
        return [("layers", list(layer.layers))]
    out = []
    for attr in sorted(vars(layer), key=_name_key):
        if attr.startswith("_"):
            continue
        value = getattr(layer, attr, None)
        if _is_layer(value) or (isinstance(value, (list, tuple)) and value and all(_is_layer(v) for v in value)):
            out.append((attr, value))
    return out


def _own_vars(layer: Any) -> List[Any]:
    if type(layer).__name__ in _FLAT_CLASSES:
        return list(layer.trainable_weights) + list(layer.non_trainable_weights)
    return list(layer._trainable_weights) + list(layer._non_trainable_weights)


def object_paths(model: Any) -> List[Tuple[str, Any, List[Any]]]:
    """``[(path, layer, own variables)]`` for every saveable of ``model``, root first, each
    visited once (a shared layer keeps its first path), as Keras 3's ``_save_state`` walks."""
    out: List[Tuple[str, Any, List[Any]]] = []
    visited = set()
    # Only the model's own variables count: a wrapper may keep an unused template layer (a
    # Bidirectional's ``layer`` beside its forward/backward copies) that Keras does not save.
    in_model = {id(w) for w in model.weights}

    def visit(obj: Any, path: str) -> None:
        if id(obj) in visited:
            return
        visited.add(id(obj))
        own = [w for w in _own_vars(obj) if id(w) in in_model]
        children = _children(obj)
        if type(obj).__name__ in _RNN_CLASSES and own and not any(a == "cell" for a, _ in children):
            # klayers's RNN holds the cell's weights itself; Keras 3 stores them under "cell".
            out.append((path, obj, []))
            out.append((_join(path, "cell"), obj, own))
        else:
            out.append((path, obj, own))
        for attr, child in children:
            if isinstance(child, (list, tuple)):
                used: Dict[str, int] = {}
                for item in child:
                    visit(item, _join(_join(path, attr), _unique(_snake(_keras3_class(item)), used)))
            else:
                visit(child, _join(path, attr))

    visit(model, "")
    return out


def _join(a: str, b: str) -> str:
    return f"{a}/{b}" if a else b


def _vars_path(path: str) -> str:
    return _join(path, "vars")


# -- reading weights ---------------------------------------------------------------------------
def load_object_weights(f: Any, model: Any, where: str, skip_mismatch: bool = False) -> None:
    """Fill ``model`` from an object-path weights file (Keras 3 ``.weights.h5`` layout).

    Raises:
        ModelFileError: a layer's group is missing or its variables do not match (unless
            ``skip_mismatch``, which warns and leaves that layer as it is).
    """
    import h5py

    pairs: List[Tuple[Any, np.ndarray]] = []
    for path, layer, own in object_paths(model):
        if not own:
            continue
        group = _find_group(f, path, layer, own)
        problem = None
        if group is None:
            problem = f"no group '{_vars_path(path)}' for layer {layer.name}"
        else:
            keys = sorted((k for k in group.keys() if k.isdigit()), key=int)
            if len(keys) != len(own):
                problem = (f"layer {layer.name} expects {len(own)} variables, the file holds {len(keys)} "
                           f"at '{group.name}'")
        found: List[Tuple[Any, np.ndarray]] = []
        if problem is None:
            for i, var in enumerate(own):
                if not isinstance(group.get(str(i)), h5py.Dataset):
                    problem = f"'{group.name}/{i}' is not a weight array"
                    break
                value = read_dataset(group, str(i), tuple(var.shape), where)
                if tuple(value.shape) != tuple(var.shape):
                    problem = (f"shape mismatch for weight {var.name} of layer {layer.name}: the layer "
                               f"expects {tuple(var.shape)}, '{group.name}/{i}' holds {tuple(value.shape)}")
                    break
                found.append((var, value))
        if problem is not None:
            if skip_mismatch:
                warnings.warn(f"'{where}': {problem}. Skipped.", stacklevel=3)
                continue
            raise ModelFileError(f"'{where}': {problem}.")
        pairs.extend(found)
    for var, value in pairs:
        var.assign(value)


def _find_group(f: Any, path: str, layer: Any, own: List[Any]) -> Any:
    import h5py

    def group_at(p: str) -> Any:
        g = f.get(_vars_path(p)) if p in f or not p else None
        if g is None and p and "_layer_checkpoint_dependencies" in f:  # Keras 2.13 files
            alt = p.replace("layers", "_layer_checkpoint_dependencies")
            g = f.get(_vars_path(alt)) if alt in f else None
        return g if isinstance(g, h5py.Group) else None

    group = group_at(path)
    name_attr = decode_attr(group.attrs.get("name")) if group is not None else None
    if group is not None and (name_attr is None or name_attr == layer.name or path.endswith("/cell")):
        return group
    # The path does not fit (different layer order, or another layer's name on it): look for
    # the sibling that carries this layer's name.
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    container = f.get(parent) if parent else f
    if isinstance(container, h5py.Group):
        for key in container:
            g = container[key].get("vars") if isinstance(container[key], h5py.Group) else None
            if isinstance(g, h5py.Group) and decode_attr(g.attrs.get("name")) == layer.name:
                return g
    return group


# -- writing weights ---------------------------------------------------------------------------
def save_object_weights_to(f: Any, model: Any) -> None:
    """Write ``model``'s variables into an open HDF5 file in Keras 3's object-path layout."""
    for path, layer, own in object_paths(model):
        group = f.require_group(_vars_path(path))
        if not path.endswith("/cell") or path == "cell":
            group.attrs["name"] = layer.name
        for i, var in enumerate(own):
            value = np.asarray(var.value)
            group.create_dataset(str(i), data=value)


def save_object_weights(model: Any, path: str) -> None:
    """``model.save_weights("w.weights.h5")`` as Keras 3 writes it."""
    write_h5(path, lambda f: save_object_weights_to(f, model))


# -- archives ----------------------------------------------------------------------------------
def _check_names(zf: zipfile.ZipFile, where: str) -> Dict[str, zipfile.ZipInfo]:
    infos = {}
    for info in zf.infolist():
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
            raise ModelFileError(f"'{where}': the archive holds an unsafe entry name {name!r} (absolute or with '..'); refused.")
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 2**24:
            raise ModelFileError(f"'{where}': entry {name!r} would expand {info.file_size / max(info.compress_size, 1):.0f} times (zip bomb?); refused.")
        infos[name] = info
    return infos


def _read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    if info.file_size > MAX_JSON_BYTES:
        raise ModelFileError(f"'{where}': {info.filename} declares {info.file_size} bytes, more than the {MAX_JSON_BYTES >> 20} MiB allowed.")
    with zf.open(info) as fh:
        data = fh.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ModelFileError(f"'{where}': {info.filename} is larger than {MAX_JSON_BYTES >> 20} MiB.")
    return data


def _extract_weights(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> str:
    if info.file_size > MAX_WEIGHTS_BYTES:
        raise ModelFileError(f"'{where}': {info.filename} declares {info.file_size / 2**30:.0f} GiB; refused.")
    fd, tmp = tempfile.mkstemp(suffix=".weights.h5", prefix="klayers-")
    try:
        with os.fdopen(fd, "wb") as out, zf.open(info) as src:
            remaining = info.file_size + 1
            while True:
                chunk = src.read(min(2**22, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                if remaining <= 0:
                    raise ModelFileError(f"'{where}': {info.filename} is larger than its declared size; refused.")
                out.write(chunk)
    except Exception:
        os.remove(tmp)
        raise
    return tmp


def load_keras_archive(path: str, custom_objects: Optional[Mapping[str, Any]] = None,
                       compile: bool = False, safe_mode: bool = True) -> Any:
    """The model in a ``.keras`` archive written by Keras 3 (or tf-keras's own writer)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelFileError(f"'{path}' is not a readable .keras archive (truncated or corrupt zip?): {e}") from e
    tmp = None
    try:
        with zf:
            infos = _check_names(zf, path)
            if CONFIG not in infos:
                raise ModelFileError(f"'{path}' is a zip archive without {CONFIG}: not a Keras .keras model file.")
            try:
                config = parse_json(_read_small(zf, infos[CONFIG], path), CONFIG, path)
                metadata = parse_json(_read_small(zf, infos[METADATA], path), METADATA, path) if METADATA in infos else {}
            except zipfile.BadZipFile as e:
                raise ModelFileError(f"'{path}': corrupt archive entry ({e}).") from e
            if not isinstance(config, dict) or "class_name" not in config:
                raise ModelFileError(f"'{path}': {CONFIG} is not a Keras model config.")
            if WEIGHTS not in infos:
                if any(n.endswith(".npz") or n.endswith(".json") and n.startswith("model.weights") for n in infos):
                    raise ModelFileError(f"'{path}': npz or sharded weights are not supported; re-save the model with h5 weights.")
                raise ModelFileError(f"'{path}': the archive has no {WEIGHTS}.")
            try:
                tmp = _extract_weights(zf, infos[WEIGHTS], path)
            except zipfile.BadZipFile as e:
                raise ModelFileError(f"'{path}': corrupt archive entry {WEIGHTS} ({e}).") from e
        version = metadata.get("keras_version") if isinstance(metadata, dict) else None
        dialect = dialect_of_version(version, config)
        model = model_from_file_config(config, dialect, path, custom_objects, compile, safe_mode)
        f = open_h5(tmp, f"{path}:{WEIGHTS}")
        try:
            load_object_weights(f, model, f"{path}:{WEIGHTS}")
        finally:
            f.close()
        return model
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def save_keras_archive(model: Any, path: str) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` archive that ``keras.saving.load_model`` reads."""
    check_meanings(model, 3, path)
    config = keras3_model_config(model)
    metadata = {"keras_version": WRITTEN_KERAS_VERSION, "klayers_version": __version__,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    buffer = io.BytesIO()
    f = open_h5(buffer, path, mode="w")
    try:
        save_object_weights_to(f, model)
    finally:
        f.close()
    tmp = f"{path}.klayers-tmp"
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            zf.writestr(METADATA, json.dumps(metadata))
            zf.writestr(CONFIG, json.dumps(config, default=json_default))
            zf.writestr(WEIGHTS, buffer.getvalue())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


_ = shutil
