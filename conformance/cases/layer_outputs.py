"""Every layer's output of real Keras model files: what ``klayers verify --per-layer`` compares.

For each row of ``FIXTURES`` (builders of the ``files`` family, weights randomized the same way),
the recorder saves the model (``<name>.h5`` from tf-keras, ``<name>.keras`` from Keras 3), loads
that file back with the same Keras and runs ``klayers/inspect/keras_side.py``'s
``layer_outputs`` on it: the very code ``klayers verify --per-layer`` runs in the Keras's Python
(a standalone script: it imports NumPy and Keras, never klayers). The case's arrays: inputs
``x<i>``, every layer node's outputs ``t<i>`` (named by the meta's ``index``: layer, node,
output) and the model's outputs ``y<i>``.
"""

from __future__ import annotations

import importlib.util
import os
import zlib
from typing import List, Tuple

import files as F
import numpy as np

#: (fixture of the files family, dialects): shared layers (several nodes), nested models, a
#: Sequential CNN with BatchNormalization, masks through a Bidirectional LSTM, merges, wrappers,
#: tf-keras's TFOpLambda nodes and the layers Keras 3 dropped.
FIXTURES: List[Tuple[str, Tuple[str, ...]]] = [
    ("functional_multi_io_shared", ("keras2", "keras3")),
    ("nested_models", ("keras2", "keras3")),
    ("small_cnn", ("keras2", "keras3")),
    ("text_model", ("keras2", "keras3")),
    ("merge_model", ("keras2", "keras3")),
    ("wrappers_model", ("keras2", "keras3")),
    ("tf_ops", ("keras2",)),
    ("keras2_only_layers", ("keras2",)),
]

_KERAS_SIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                           "klayers", "inspect", "keras_side.py")


def _keras_side():
    spec = importlib.util.spec_from_file_location("keras_side", _KERAS_SIDE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(rec, keras, dialect):
    side = _keras_side()
    builders = {fx.name: fx for fx in F.FIXTURES}
    for name, dialects in FIXTURES:
        if dialect not in dialects:
            continue
        keras.backend.clear_session()
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        model, inputs = builders[name].build(keras, rng)
        F._randomize(model, name, rng)
        filename = name + (".keras" if dialect == "keras3" else ".h5")
        path = rec.path(filename)
        if dialect == "keras2":
            model.save(path, save_format="h5")
        else:
            model.save(path)
        _, loaded = side.load(path, dialect, False)
        xs = [np.asarray(x) for x in F._flat(inputs)]
        got = side.layer_outputs(keras, loaded, xs)
        arrays = {f"x{i}": x for i, x in enumerate(xs)}
        arrays.update({f"t{i}": a for i, a in enumerate(got["outputs"])})
        arrays.update({f"y{i}": a for i, a in enumerate(got["model_outputs"])})
        classes = sorted({type(layer).__name__ for layer in F._all_layers(loaded)})
        rec.case(name, arrays=arrays, file=filename, index=got["index"], classes=classes,
                 n_inputs=len(xs), n_outputs=len(got["model_outputs"]))


def record(rec):
    import tf_keras as keras

    _record(rec, keras, "keras2")


def record_keras3(rec):
    import keras

    _record(rec, keras, "keras3")
