"""What every model-file reader shares: clear errors naming the file, guarded reads from HDF5
and zip archives, the scan for layer classes klayers lacks, and the dialect of a file.

Nothing here executes or imports anything a file names: configs are parsed as JSON and looked
up only in klayers's own tables and the caller's custom objects.

Known limit: HDF5 parsing is done by the HDF5 C library (through h5py). A file whose global heap
was damaged in a particular way can make that library loop while reading a string attribute
(seen once in 80 random corruptions of small .h5 files; the other 79 gave a ModelFileError or
loaded); Python code cannot interrupt it. Load untrusted files in a process with a time limit.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from klayers.engine.layer_serialization import (
    deserialize_model,
    is_operation_config,
    keras3_operations,
    layer_classes,
)
from klayers.serialization import (
    SafeModeScope,
    detect_dialect,
    dialect_scope,
    get_registered_object,
)

logger = logging.getLogger("klayers")

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
#: Largest JSON document (config.json, model_config) read from a file.
MAX_JSON_BYTES = 256 * 2**20
#: A dataset may be at most this many times the size of the weight it fills (CuDNN biases
#: are stored at twice the size of the plain layer's).
_SIZE_SLACK = 2


class ModelFileError(ValueError):
    """A model or weights file that cannot be read: the message names the file and the problem."""


def describe(path: Any) -> str:
    return os.fspath(path) if isinstance(path, (str, os.PathLike)) else repr(path)


def check_path(path: Any) -> str:
    """``path`` as a string, or a clear error when it is missing or a directory."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"Expected a file path (str or os.PathLike). Received: {path!r}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: '{path}'.")
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            raise ModelFileError(
                f"'{path}' is a TensorFlow SavedModel directory; klayers reads Keras .h5 and .keras "
                "files. Save the model with model.save('model.keras') or model.save('model.h5')."
            )
        raise ModelFileError(f"'{path}' is a directory, not a Keras model file.")
    return path


def sniff(path: str) -> str:
    """``"hdf5"``, ``"zip"`` or ``"unknown"`` from the file's first bytes (and h5py's userblock
    check for HDF5 files with a user block)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(HDF5_SIGNATURE):
        return "hdf5"
    if head[:4] in ZIP_SIGNATURES:
        return "zip"
    import h5py

    try:
        if h5py.is_hdf5(path):
            return "hdf5"
    except OSError:
        pass
    return "unknown"


def not_a_model_file(path: str) -> ModelFileError:
    size = os.path.getsize(path)
    what = "it is empty" if size == 0 else "it is neither an HDF5 file nor a zip archive"
    return ModelFileError(f"'{path}' is not a Keras model file ({what}). klayers reads Keras .h5 and .keras files.")


def open_h5(path_or_file: Any, name: str, mode: str = "r"):
    """``h5py.File`` on a path or file object, with a ModelFileError naming ``name`` when HDF5
    cannot read it (truncated, corrupt)."""
    import h5py

    try:
        return h5py.File(path_or_file, mode)
    except OSError as e:
        if mode != "r":
            raise
        raise ModelFileError(f"'{name}' cannot be read as HDF5 (truncated or corrupt file?): {e}") from e


def decode_attr(value: Any) -> Any:
    """An HDF5 attribute as Python: bytes to str, arrays of strings to lists of str."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SOU":
            return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def string_list_attr(group: Any, name: str, where: str) -> List[str]:
    """A list-of-strings attribute, including tf-keras's chunked form (``name0``, ``name1`` ...)."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks, i = [], 0
        while f"{name}{i}" in group.attrs:
            chunks.append(group.attrs[f"{name}{i}"])
            i += 1
    out: List[str] = []
    for chunk in chunks:
        value = decode_attr(chunk)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            if isinstance(value, list) and not value:
                continue
            raise ModelFileError(f"{where}: attribute '{name}' of group '{group.name}' is not a list of strings.")
        out.extend(value)
    return out


def parse_json(text: Any, what: str, where: str) -> Any:
    if isinstance(text, (bytes, np.bytes_)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise ModelFileError(f"'{where}': {what} is not a JSON string.")
    if len(text) > MAX_JSON_BYTES:
        raise ModelFileError(f"'{where}': {what} is larger than {MAX_JSON_BYTES >> 20} MiB.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFileError(f"'{where}': {what} is not valid JSON ({e}).") from e


def read_dataset(group: Any, key: str, expected_shape: Optional[Sequence[int]], where: str) -> np.ndarray:
    """The array stored at ``group[key]``, checked before it is read: a numeric dataset no larger
    than the weight it fills (so a file cannot make klayers allocate what it declares)."""
    import h5py

    try:
        ds = group[key]
    except KeyError:
        raise ModelFileError(f"'{where}': weight '{key}' listed in group '{group.name}' is missing.") from None
    except (OSError, RuntimeError) as e:
        raise ModelFileError(f"'{where}': cannot read weight '{key}' in group '{group.name}' ({e}).") from e
    if not isinstance(ds, h5py.Dataset):
        raise ModelFileError(f"'{where}': '{ds.name}' is a group where a weight array was expected.")
    if ds.dtype.kind not in "fiub" or ds.dtype.fields is not None:
        raise ModelFileError(f"'{where}': weight '{ds.name}' has dtype {ds.dtype}, not a numeric array.")
    if expected_shape is not None:
        want = int(np.prod(expected_shape, dtype=np.int64)) if len(expected_shape) else 1
        have = int(np.prod(ds.shape, dtype=np.int64)) if ds.shape else 1
        if have > _SIZE_SLACK * max(want, 1) + 16:
            raise ModelFileError(
                f"'{where}': weight '{ds.name}' has shape {tuple(ds.shape)}, far larger than the "
                f"{tuple(expected_shape)} the model expects."
            )
    try:
        return np.asarray(ds[()])
    except (OSError, RuntimeError) as e:
        raise ModelFileError(f"'{where}': cannot read weight '{ds.name}' (truncated or corrupt file?): {e}") from e


# -- which Keras wrote a file ------------------------------------------------------------------
def dialect_of_version(version: Any, config: Any = None) -> int:
    """3 for a ``keras_version`` of 3.x, 2 for 2.x (tf-keras); else guessed from ``config``."""
    if isinstance(version, bytes):
        version = version.decode("utf-8", errors="replace")
    if isinstance(version, str) and version[:2] in ("2.", "1."):
        return 2
    if isinstance(version, str) and version.startswith("3."):
        return 3
    return detect_dialect(config) if config is not None else 2


# -- layer classes klayers lacks ---------------------------------------------------------------
_NESTED_LAYER_KEYS = ("layer", "forward_layer", "backward_layer", "cell")


def iter_layer_configs(config: Any) -> Iterator[Tuple[str, Optional[str], Mapping[str, Any]]]:
    """Every layer config in a model config, nested models, wrappers and RNN cells included:
    ``(class_name, layer_name, config)``."""
    if not isinstance(config, Mapping) or not isinstance(config.get("class_name"), str):
        return
    inner = config.get("config")
    name = None
    if isinstance(inner, Mapping):
        name = inner.get("name")
    yield config["class_name"], name if isinstance(name, str) else config.get("name"), config
    if isinstance(inner, list):  # an old Sequential config: a list of layers
        for sub in inner:
            yield from iter_layer_configs(sub)
        return
    if not isinstance(inner, Mapping):
        return
    layers = inner.get("layers")
    if isinstance(layers, list):
        for sub in layers:
            yield from iter_layer_configs(sub)
    for key in _NESTED_LAYER_KEYS:
        if isinstance(inner.get(key), Mapping):
            yield from iter_layer_configs(inner[key])
    cells = inner.get("cells")
    if isinstance(cells, list):
        for sub in cells:
            yield from iter_layer_configs(sub)


def check_supported(config: Any, where: str, custom_objects: Optional[Mapping[str, Any]] = None) -> None:
    """Raise one error listing every layer class of ``config`` that klayers does not implement
    (and the caller did not pass in ``custom_objects`` or register)."""
    known = layer_classes()
    operations = keras3_operations()
    missing: Dict[str, List[str]] = {}
    seen = set()
    for class_name, layer_name, cfg in iter_layer_configs(config):
        if id(cfg) in seen:
            continue
        seen.add(id(cfg))
        registered = cfg.get("registered_name")
        if is_operation_config(cfg):
            if class_name not in operations:
                missing.setdefault(f"{class_name} (a Keras 3 operation)", []).append(layer_name or "?")
            continue
        if class_name in known:
            continue
        if get_registered_object(class_name, custom_objects) is not None:
            continue
        if isinstance(registered, str) and get_registered_object(registered, custom_objects) is not None:
            continue
        missing.setdefault(class_name, []).append(layer_name or "?")
    if missing:
        listing = "; ".join(f"{cls} (layer{'s' if len(v) > 1 else ''} {', '.join(repr(n) for n in v)})" for cls, v in sorted(missing.items()))
        raise ModelFileError(
            f"'{where}' uses {len(missing)} layer class{'es' if len(missing) > 1 else ''} that klayers "
            f"does not implement: {listing}. Pass custom layers in `custom_objects`."
        )


def find_lambdas(config: Any) -> List[str]:
    """Names of the Lambda layers in a model config that hold marshalled Python code."""
    names = []
    for class_name, name, cfg in iter_layer_configs(config):
        inner = cfg.get("config")
        if class_name != "Lambda" or not isinstance(inner, dict):
            continue
        fn = inner.get("function")
        if inner.get("function_type") == "lambda" or (isinstance(fn, dict) and fn.get("class_name") == "__lambda__"):
            names.append(name or "?")
    return names


def model_from_file_config(config: Dict[str, Any], dialect: int, where: str,
                            custom_objects: Optional[Mapping[str, Any]], compile: bool, safe_mode: bool) -> Any:
    custom_objects = dict(custom_objects or {})
    check_supported(config, where, custom_objects)
    if safe_mode:
        lambdas = find_lambdas(config)
        if lambdas:
            raise ModelFileError(
                f"'{where}': Lambda layer{'s' if len(lambdas) > 1 else ''} {', '.join(repr(n) for n in lambdas)} "
                f"hold{'' if len(lambdas) > 1 else 's'} marshalled Python code (a `lambda`). Loading it would run code from the file, "
                "which is refused by default. If you trust the file, pass safe_mode=False."
            )
    for key in ("compile_config", "training_config"):
        if config.get(key):
            note = f"'{where}': the {key.replace('_', ' ')} is ignored (klayers runs inference only)."
            logger.info(note)
            if compile:
                warnings.warn(note, stacklevel=4)
    config = {k: v for k, v in config.items() if k not in ("compile_config", "build_config")}
    with dialect_scope(dialect), SafeModeScope(safe_mode):
        try:
            return deserialize_model(config, custom_objects=custom_objects)
        except ModelFileError:
            raise
        except (ValueError, TypeError, KeyError) as e:
            raise ModelFileError(f"'{where}': cannot rebuild the model from its config: {e}") from e


def write_h5(path: str, fill: Callable[[Any], None]) -> None:
    """Create the HDF5 file ``path`` and let ``fill(f)`` write into it."""
    # Written to a temporary name first, so a failure never leaves half a file behind.
    tmp = f"{path}.klayers-tmp"
    try:
        f = open_h5(tmp, tmp, mode="w")
        try:
            fill(f)
        finally:
            f.close()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
