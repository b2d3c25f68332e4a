"""Replay real Keras model files (recorded by ``cases/files.py``): every file tf-keras 2.21 and
Keras 3.15 wrote loads in klayers and predicts Keras's recorded outputs; weights files load into
the model; klayers writes each model back and reads it again.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from conformance import refs
from klayers.layers.keras3_ops import _Op
from klayers.models import load_model
from klayers.saving.file_utils import ModelFileError

TOL = 2e-5


def _params():
    out = []
    for dialect in ("keras2", "keras3"):
        for name, meta in refs.cases("files", dialect):
            out.append(pytest.param(dialect, name, meta, id=f"{dialect}-{name}"))
    return out


CASES = _params()


def _path(dialect, filename):
    return os.path.join(refs.REFS, dialect, "files", filename)


def _io(dialect, name, meta):
    arrays = refs.arrays("files", name, dialect)
    xs = [arrays[f"x{i}"] for i in range(meta["n_inputs"])]
    ys = [arrays[f"y{i}"] for i in range(meta["n_outputs"])]
    return (xs if len(xs) > 1 else xs[0]), ys


def _check(model, x, ys):
    out = model.predict(x, verbose=0)
    out = out if isinstance(out, list) else [out]
    assert len(out) == len(ys)
    for got, want in zip(out, ys):
        assert got.shape == want.shape
        scale = max(1.0, float(np.max(np.abs(want))))
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL * scale)


def _load(dialect, meta, key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Lambda fixture's module is not importable here
        return load_model(_path(dialect, meta["files"][key]), safe_mode=not meta["unsafe"])


@pytest.mark.parametrize("dialect,name,meta", CASES)
def test_model_files_predict_like_keras(dialect, name, meta):
    x, ys = _io(dialect, name, meta)
    loaded = 0
    for key in ("model_h5", "model_keras"):
        if key in meta["files"]:
            model = _load(dialect, meta, key)
            # Keras 3 lists graph operations (not_equal) apart from its layers
            names = [layer.name for layer in model.layers if not isinstance(layer, _Op)]
            assert names == meta["layer_names"]
            assert [list(w.shape) for w in model.weights] == meta["weight_shapes"]
            _check(model, x, ys)
            loaded += 1
    assert loaded >= 1


@pytest.mark.parametrize("dialect,name,meta", CASES)
def test_weight_files_load_into_the_model(dialect, name, meta):
    x, ys = _io(dialect, name, meta)
    model = _load(dialect, meta, "model_h5" if "model_h5" in meta["files"] else "model_keras")
    for key in ("weights_h5", "weights_keras", "model_keras", "model_h5"):
        if key not in meta["files"]:
            continue
        model.set_weights([np.zeros_like(w) for w in model.get_weights()])
        model.load_weights(_path(dialect, meta["files"][key]))
        _check(model, x, ys)
    if "weights_h5" in meta["files"]:
        model.set_weights([np.zeros_like(w) for w in model.get_weights()])
        model.load_weights(_path(dialect, meta["files"]["weights_h5"]), by_name=True)
        _check(model, x, ys)


@pytest.mark.parametrize("dialect,name,meta", CASES)
def test_klayers_writes_what_it_reads(dialect, name, meta, tmp_path):
    """Saved by klayers in every format the model can be written in, read back, same outputs."""
    x, ys = _io(dialect, name, meta)
    model = _load(dialect, meta, "model_keras" if "model_keras" in meta["files"] else "model_h5")
    written = 0
    for ext in (".h5", ".keras"):
        path = str(tmp_path / f"m{ext}")
        try:
            model.save(path)
        except ValueError as e:  # a model the other Keras would read with other maths
            assert "hard_sigmoid" in str(e) or "Keras 3" in str(e) or "tf-keras" in str(e)
            continue
        written += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _check(load_model(path, safe_mode=not meta["unsafe"]), x, ys)
    assert written >= 1
    for ext in (".weights.h5", ".w.h5"):
        path = str(tmp_path / f"w{ext}")
        model.save_weights(path)
        before = model.get_weights()
        model.set_weights([np.zeros_like(w) for w in before])
        model.load_weights(path)
        for a, b in zip(model.get_weights(), before):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dialect", ["keras2", "keras3"])
def test_lambda_code_is_refused_in_safe_mode(dialect):
    meta = refs.family("files", dialect)["cases"]["python_lambda"]
    for key in ("model_h5", "model_keras"):
        if key not in meta["files"]:
            continue
        with pytest.raises(ModelFileError, match="affine.*safe_mode=False"):
            load_model(_path(dialect, meta["files"][key]))


def test_hard_sigmoid_keeps_the_meaning_of_the_writer():
    """The same model saved by both Kerases: each file replays its own Keras's maths (checked in
    the tests above); here the Keras 3 file given the Keras 2 file's weights must still differ
    from the Keras 2 outputs, so the replay can tell the two meanings apart."""
    k2 = refs.arrays("files", "hard_sigmoid", "keras2")
    m2 = _load("keras2", refs.family("files", "keras2")["cases"]["hard_sigmoid"], "model_h5")
    m3 = _load("keras3", refs.family("files", "keras3")["cases"]["hard_sigmoid"], "model_keras")
    m3.set_weights(m2.get_weights())
    y2, y3 = m2.predict(k2["x0"], verbose=0), m3.predict(k2["x0"], verbose=0)
    np.testing.assert_allclose(y2, k2["y0"], atol=TOL)
    assert float(np.max(np.abs(y2 - y3))) > 1e-3


def test_training_config_is_ignored_with_a_note(caplog):
    meta = refs.family("files", "keras2")["cases"]["sequential_mlp"]
    assert meta["compiled"]
    with caplog.at_level("INFO", logger="klayers"):
        load_model(_path("keras2", meta["files"]["model_h5"]))
    assert "ignored" in caplog.text
    with pytest.warns(UserWarning, match="optimizer state are ignored"):
        load_model(_path("keras2", meta["files"]["model_h5"]), compile=True)


def test_weights_only_file_is_not_a_model():
    meta = refs.family("files", "keras2")["cases"]["sequential_mlp"]
    with pytest.raises(ModelFileError, match="holds only weights"):
        load_model(_path("keras2", meta["files"]["weights_h5"]))
