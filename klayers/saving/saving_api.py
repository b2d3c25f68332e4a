"""``load_model`` / ``save_model`` / ``save_weights`` / ``load_weights``: the format is chosen from
the file's content when reading and from its name when writing.

========================  ===============================================================
read                      what it is
========================  ===============================================================
HDF5 with model_config    Keras 2 / Keras 3 legacy ``model.save("m.h5")``
HDF5 with layer_names     legacy ``save_weights("w.h5")`` (weights only)
HDF5 with layers/ vars/   object-path ``save_weights("w.weights.h5")`` (weights only)
zip with config.json      ``.keras`` archive (Keras 3, or tf-keras's own writer)
========================  ===============================================================

Written: ``.keras`` (Keras 3 reads it), ``.h5`` / ``.hdf5`` (tf-keras reads it); weights as
``.weights.h5`` (object paths) or any other ``.h5`` name (legacy layer_names layout).
"""

from __future__ import annotations

import os
import zipfile
from typing import Any, Mapping, Optional

from klayers.engine import hooks
from klayers.saving import h5_format, keras_archive
from klayers.saving.file_utils import ModelFileError, check_path, not_a_model_file, open_h5, sniff
from klayers.saving.h5_format import load_model_from_h5, save_model_to_h5, save_weights_to_h5
from klayers.saving.keras3_config import check_meanings
from klayers.saving.keras_archive import load_keras_archive, save_keras_archive, save_object_weights


def _guard(path: str, fn, *args, **kwargs):
    """Run a reader; damage HDF5 reports as OSError/RuntimeError/KeyError deep inside h5py
    becomes one error naming the file."""
    try:
        return fn(*args, **kwargs)
    except (ModelFileError, FileNotFoundError):
        raise
    except (OSError, RuntimeError, KeyError) as e:
        raise ModelFileError(f"'{path}' is damaged or not a Keras file ({type(e).__name__}: {e}).") from e


def load_model(filepath: Any, custom_objects: Optional[Mapping[str, Any]] = None, compile: bool = False,
               safe_mode: bool = True) -> Any:
    """The model saved in ``filepath`` (Keras 2 or Keras 3 ``.h5``, or a ``.keras`` archive).

    Each layer keeps the meaning of the Keras that wrote the file (``hard_sigmoid``). A training
    configuration and optimizer state are ignored (noted in the ``klayers`` log; a warning when
    ``compile=True``). ``safe_mode=True`` refuses Lambda layers holding marshalled Python code.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError (a ValueError): not a model file, truncated or corrupt, weights only,
            unsupported layer classes (all listed), Lambda code in safe mode; the message
            names the file.
    """
    path = check_path(filepath)
    kind = sniff(path)
    if kind == "zip":
        return _guard(path, load_keras_archive, path, custom_objects, compile, safe_mode)
    if kind == "hdf5":
        def read():
            with open_h5(path, path) as f:
                return load_model_from_h5(f, path, custom_objects, compile, safe_mode)

        return _guard(path, read)
    raise not_a_model_file(path)


def _weights_layout(f: Any) -> str:
    if "layer_names" in f.attrs or "layer_names0" in f.attrs:
        return "legacy"
    if "model_weights" in f:
        return "legacy_model"
    if "layers" in f or "vars" in f or "_layer_checkpoint_dependencies" in f:
        return "objects"
    return "unknown"


def load_weights(model: Any, filepath: Any, by_name: bool = False, skip_mismatch: bool = False) -> None:
    """Load weights into ``model`` from a ``.h5`` / ``.weights.h5`` / ``.keras`` file.

    Legacy layouts load by topological order, or by layer name with ``by_name=True``;
    object-path files by object path. ``skip_mismatch`` skips (with a warning) layers whose
    weights do not fit instead of raising.
    """
    path = check_path(filepath)
    kind = sniff(path)
    if kind == "zip":
        _guard(path, _load_weights_from_archive, model, path, skip_mismatch)
        return
    if kind != "hdf5":
        raise not_a_model_file(path)

    def read():
        with open_h5(path, path) as f:
            layout = _weights_layout(f)
            if layout == "legacy_model":
                f = f["model_weights"]
                layout = "legacy"
            if layout == "legacy":
                if by_name:
                    h5_format.load_weights_from_h5_group_by_name(f, model, path, skip_mismatch=skip_mismatch)
                elif skip_mismatch:
                    raise ValueError("load_weights: skip_mismatch=True needs by_name=True for legacy .h5 weights (as in tf-keras).")
                else:
                    h5_format.load_weights_from_h5_group(f, model, path)
            elif layout == "objects":
                if by_name:
                    raise ValueError(f"load_weights: by_name=True is not supported for object-path weight files ('{path}').")
                keras_archive.load_object_weights(f, model, path, skip_mismatch=skip_mismatch)
            else:
                raise ModelFileError(f"'{path}' is an HDF5 file without Keras weights (no layer_names, model_weights or layers).")

    _guard(path, read)


def _load_weights_from_archive(model: Any, path: str, skip_mismatch: bool) -> None:


    with zipfile.ZipFile(path) as zf:
        infos = keras_archive._check_names(zf, path)
        if keras_archive.WEIGHTS not in infos:
            raise ModelFileError(f"'{path}': the archive has no {keras_archive.WEIGHTS}.")
        tmp = keras_archive._extract_weights(zf, infos[keras_archive.WEIGHTS], path)
    try:
        with open_h5(tmp, path) as f:
            keras_archive.load_object_weights(f, model, path, skip_mismatch=skip_mismatch)
    finally:
        os.remove(tmp)


def _check_target(path: Any, overwrite: bool) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"Expected a file path (str or os.PathLike). Received: {path!r}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"'{path}' is a directory; give a file name ending in .keras or .h5.")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"'{path}' exists and overwrite=False.")
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    return path


def save_model(model: Any, filepath: Any, overwrite: bool = True, save_format: Optional[str] = None) -> None:
    """Save ``model``: ``.keras`` for Keras 3 (``keras.saving.load_model`` reads it), ``.h5`` /
    ``.hdf5`` for tf-keras (``tf_keras.models.load_model``). ``save_format`` ("keras" or "h5")
    overrides the extension.

    Raises:
        ValueError: unknown extension; a model whose meaning the target Keras would change
            (``hard_sigmoid`` of the other Keras, Keras 2-only layer classes in ``.keras``).
    """
    path = _check_target(filepath, overwrite)
    fmt = (save_format or "").lower() or _format_of(path)
    if fmt == "keras":
        save_keras_archive(model, path)
    elif fmt in ("h5", "hdf5"):
        check_meanings(model, 2, path)
        save_model_to_h5(model, path)
    else:
        raise ValueError(f"Cannot tell the format to save '{path}' in: use a name ending in .keras (Keras 3) or .h5 (tf-keras).")


def _format_of(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".keras"):
        return "keras"
    if lower.endswith((".h5", ".hdf5", ".keras.h5")):
        return "h5"
    return ""


def save_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Save the weights: ``*.weights.h5`` in the object-path layout (Keras 3 and tf-keras read
    it), any other ``*.h5`` in the legacy ``layer_names`` layout (tf-keras, Keras 3's
    ``load_weights`` of legacy files)."""

    path = _check_target(filepath, overwrite)
    lower = path.lower()
    if lower.endswith(".weights.h5"):
        save_object_weights(model, path)
    elif lower.endswith((".h5", ".hdf5")):
        save_weights_to_h5(model, path)
    else:
        raise ValueError(f"Cannot tell the format to save weights '{path}' in: use a name ending in .weights.h5 or .h5.")


# Model.save / save_weights / load_weights (the engine) call these.
hooks.install("save_model", save_model)
hooks.install("save_weights", save_weights)
hooks.install("load_weights", load_weights)
