"""Every layer's output of the files family's model files: what ``klayers verify --per-layer``
compares.

Record this family after ``files``: for every whole-model file that family saved (``.h5`` and
``.keras``, both dialects; not the CuDNN model, which Keras runs only on a GPU), the recorder
loads the file with the Keras that wrote it and runs ``klayers/inspect/keras_side.py``'s
``layer_outputs`` on the files case's recorded inputs: the very code ``klayers verify
--per-layer`` runs in the Keras's Python (a standalone script: it imports NumPy and Keras, never
klayers). The case's arrays: inputs ``x<i>``, every layer node's outputs ``t<i>`` (named by the
meta's ``index``: layer, node, output) and the model's outputs ``y<i>``; ``file`` names the
files family's file. The MobileNetV2 file is run on its first sample only (its activations
would otherwise be most of the family's size). A file its own Keras cannot load is skipped
(said when recording).
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
_KERAS_SIDE = os.path.join(HERE, os.pardir, os.pardir, "klayers", "inspect", "keras_side.py")
_REFS = os.path.join(HERE, os.pardir, "references")
_MODEL_FILES = ("model_h5", "model_keras")
_ONE_SAMPLE = {"mobilenet_v2"}


def _keras_side():
    spec = importlib.util.spec_from_file_location("keras_side", _KERAS_SIDE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(rec, keras, dialect):
    side = _keras_side()
    with open(os.path.join(_REFS, dialect, "files.json")) as f:
        cases = json.load(f)["cases"]
    for name, meta in sorted(cases.items()):
        if "cudnn" in name:
            continue
        with np.load(os.path.join(_REFS, dialect, "files", name + ".npz")) as z:
            xs = [z[f"x{i}"] for i in range(meta["n_inputs"])]
        if name in _ONE_SAMPLE:
            xs = [x[:1] for x in xs]
        for key in _MODEL_FILES:
            if key not in meta["files"]:
                continue
            keras.backend.clear_session()
            filename = meta["files"][key]
            try:
                _, loaded = side.load(os.path.join(_REFS, dialect, "files", filename), dialect, meta["unsafe"])
            except ValueError as e:
                # Keras 3 cannot read back its own legacy .h5 of a model with a mask op node
                # (text_model: "Unknown layer: 'NotEqual'"): there is no Keras side to compare
                print(f"{dialect}/layer_outputs: {filename}: Keras cannot load it ({str(e).splitlines()[0][:80]})")
                continue
            got = side.layer_outputs(keras, loaded, xs)
            arrays = {f"x{i}": x for i, x in enumerate(xs)}
            arrays.update({f"t{i}": a for i, a in enumerate(got["outputs"])})
            arrays.update({f"y{i}": a for i, a in enumerate(got["model_outputs"])})
            rec.case(f"{name}-{key}", arrays=arrays, file=filename, index=got["index"],
                     classes=meta["classes"], n_inputs=len(xs), n_outputs=len(got["model_outputs"]),
                     unsafe=meta["unsafe"])


def record(rec):
    import tf_keras as keras

    _record(rec, keras, "keras2")


def record_keras3(rec):
    import keras

    _record(rec, keras, "keras3")
