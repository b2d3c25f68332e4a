"""Model files without TensorFlow: what klayers writes, and the clear errors for bad files."""

from __future__ import annotations

import json
import os
import shutil
import zipfile

import h5py
import numpy as np
import pytest

import klayers
from klayers import layers
from klayers.models import load_model
from klayers.saving.file_utils import ModelFileError
from klayers.saving.keras_archive import object_paths

FILES = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "conformance", "references", "keras2", "files")
FILES3 = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "conformance", "references", "keras3", "files")


def _mlp():
    x = klayers.Input((4,), name="x")
    h = layers.Dense(5, activation="relu", name="hidden")(x)
    y = layers.Dense(2, name="out")(h)
    model = klayers.Model(x, y, name="mlp")
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape).astype("float32") for w in model.weights])
    return model


def _nested():
    inner_in = klayers.Input((3,))
    inner = klayers.Model(inner_in, layers.Dense(3, name="d_inner")(inner_in), name="inner")
    seq = klayers.Sequential([klayers.Input((3,)), layers.Dense(2, name="d_seq")], name="seq")
    x = klayers.Input((3,), name="x")
    y = layers.Dense(1, name="head")(seq(inner(x)))
    return klayers.Model(x, y, name="outer")


X = np.random.default_rng(1).standard_normal((3, 4)).astype("float32")


# -- what klayers writes ------------------------------------------------------------------------
def test_h5_layout_is_tf_keras_legacy(tmp_path):
    model = _mlp()
    path = str(tmp_path / "m.h5")
    model.save(path)
    with h5py.File(path) as f:
        assert f.attrs["keras_version"] == "2.21.0" and f.attrs["backend"] == "tensorflow"
        config = json.loads(f.attrs["model_config"])
        assert config["class_name"] == "Functional"
        assert all("module" not in entry for entry in config["config"]["layers"])
        g = f["model_weights"]
        assert [n.decode() for n in g.attrs["layer_names"]] == ["x", "hidden", "out"]
        assert [n.decode() for n in g["hidden"].attrs["weight_names"]] == ["hidden/kernel:0", "hidden/bias:0"]
        np.testing.assert_array_equal(g["hidden"]["hidden/kernel:0"][()], model.get_layer("hidden").kernel.value)
    np.testing.assert_allclose(load_model(path).predict(X, verbose=0), model.predict(X, verbose=0))


def test_keras_archive_layout_is_keras3(tmp_path):
    model = _nested()
    path = str(tmp_path / "m.keras")
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert json.loads(zf.read("metadata.json"))["keras_version"].startswith("3.")
        config = json.loads(zf.read("config.json"))
        zf.extract("model.weights.h5", str(tmp_path))
    assert config["class_name"] == "Functional" and config["module"] == "keras.src.models.functional"
    dense = config["config"]["layers"][-1]
    assert dense["config"]["dtype"]["class_name"] == "DTypePolicy"
    assert dense["inbound_nodes"][0]["args"][0]["config"]["keras_history"] == ["seq", 0, 0]
    with h5py.File(str(tmp_path / "model.weights.h5")) as f:
        assert f["layers/functional/layers/dense/vars"].attrs["name"] == "d_inner"
        assert f["layers/sequential/layers/dense/vars"].attrs["name"] == "d_seq"
        assert f["layers/dense/vars/0"].shape == (2, 1)


def test_object_paths_follow_keras3_naming():
    paths = [(p, layer.name) for p, layer, own in object_paths(_nested()) if own]
    assert paths == [("layers/functional/layers/dense", "d_inner"), ("layers/sequential/layers/dense", "d_seq"),
                     ("layers/dense", "head")]


@pytest.mark.parametrize("name", ["w.h5", "w.weights.h5", "m.keras", "m.h5"])
def test_weights_round_trip_every_format(tmp_path, name):
    model = _mlp()
    path = str(tmp_path / name)
    (model.save if name.startswith("m") else model.save_weights)(path)
    other = _mlp()
    other.set_weights([np.zeros_like(w) for w in other.get_weights()])
    other.load_weights(path)
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_save_refuses_unknown_extension_and_existing_file(tmp_path):
    model = _mlp()
    with pytest.raises(ValueError, match=".keras.*.h5"):
        model.save(str(tmp_path / "model.bin"))
    with pytest.raises(ValueError, match="weights.h5"):
        model.save_weights(str(tmp_path / "w.npz"))
    path = str(tmp_path / "m.h5")
    model.save(path)
    with pytest.raises(FileExistsError):
        model.save(path, overwrite=False)


def test_hard_sigmoid_of_one_keras_is_not_written_for_the_other(tmp_path):
    x = klayers.Input((2,))
    model = klayers.Model(x, layers.Dense(2, activation="hard_sigmoid", name="gate")(x))
    model.save(str(tmp_path / "ok.h5"))
    with pytest.raises(ValueError, match=r"gate\.activation.*hard_sigmoid"):
        model.save(str(tmp_path / "bad.keras"))


def test_lambda_written_by_klayers_needs_safe_mode_false(tmp_path):
    x = klayers.Input((2,))
    model = klayers.Model(x, layers.Lambda(lambda t: t * 3.0, name="triple")(x))
    for ext in (".h5", ".keras"):
        path = str(tmp_path / f"m{ext}")
        model.save(path)
        with pytest.raises(ModelFileError, match="'triple'.*safe_mode=False"):
            load_model(path)
        again = load_model(path, safe_mode=False)
        np.testing.assert_allclose(again.predict(np.ones((1, 2), "float32"), verbose=0), [[3.0, 3.0]])


# -- loading weights --------------------------------------------------------------------------
def test_by_name_and_skip_mismatch(tmp_path):
    model = _mlp()
    path = str(tmp_path / "w.h5")
    model.save_weights(path)
    x = klayers.Input((4,), name="x")
    h = layers.Dense(5, activation="relu", name="hidden")(x)
    other = klayers.Model(x, layers.Dense(3, name="out")(h))  # "out" has another shape
    with pytest.raises(ModelFileError, match="shape mismatch.*out"):
        other.load_weights(path, by_name=True)
    with pytest.warns(UserWarning, match="Skipped"):
        other.load_weights(path, by_name=True, skip_mismatch=True)
    np.testing.assert_array_equal(other.get_layer("hidden").kernel.value, model.get_layer("hidden").kernel.value)


def test_topological_load_counts_layers(tmp_path):
    path = str(tmp_path / "w.h5")
    _mlp().save_weights(path)
    x = klayers.Input((4,))
    small = klayers.Model(x, layers.Dense(2)(x))
    with pytest.raises(ModelFileError, match="Model expected 1 layers with weights, found 2"):
        small.load_weights(path)


def test_object_weights_shape_mismatch_is_named(tmp_path):
    path = str(tmp_path / "w.weights.h5")
    _mlp().save_weights(path)
    x = klayers.Input((4,))
    h = layers.Dense(6, name="hidden")(x)
    other = klayers.Model(x, layers.Dense(2, name="out")(h))
    with pytest.raises(ModelFileError, match="hidden"):
        other.load_weights(path)


def test_cudnn_weights_convert_into_plain_layers():
    """A tf-keras CuDNN file loads into LSTM / GRU(reset_after=True) layers as tf-keras converts it."""
    ref = np.load(os.path.join(FILES, "cudnn_rnn.npz"))
    model = klayers.Sequential([klayers.Input((6, 3)),
                                layers.LSTM(4, return_sequences=True, recurrent_activation="sigmoid", name="cu_lstm"),
                                layers.GRU(3, reset_after=True, recurrent_activation="sigmoid", name="cu_gru")])
    model.load_weights(os.path.join(FILES, "cudnn_rnn.h5"))
    np.testing.assert_allclose(model.predict(ref["x0"], verbose=0), ref["y0"], atol=2e-5)
    bad = klayers.Sequential([klayers.Input((6, 3)), layers.LSTM(4, return_sequences=True, name="a"),
                              layers.GRU(3, reset_after=False, name="b")])
    with pytest.raises(ModelFileError, match="reset_after"):
        bad.load_weights(os.path.join(FILES, "cudnn_rnn.h5"))


# -- bad files ----------------------------------------------------------------------------------
def test_missing_file_and_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_model(str(tmp_path / "nope.h5"))
    with pytest.raises(ModelFileError, match="directory"):
        load_model(str(tmp_path))
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="SavedModel"):
        load_model(str(tmp_path / "sm"))


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"hello, I am a text file\n", "neither an HDF5"),
                                           (os.urandom(3000), "not a Keras model file")])
def test_non_model_files(tmp_path, content, match):
    path = tmp_path / "x.h5"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=match) as e:
        load_model(str(path))
    assert str(path) in str(e.value)


@pytest.mark.parametrize("name", ["sequential_mlp.h5", "nested_models.keras"])
@pytest.mark.parametrize("fraction", [0.3, 0.8])
def test_truncated_files_fail_clearly(tmp_path, name, fraction):
    src = os.path.join(FILES, name)
    data = open(src, "rb").read()
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelFileError) as e:
        load_model(str(path))
    assert str(path) in str(e.value)


def test_corrupt_dataset_bytes_fail_clearly(tmp_path):
    path = tmp_path / "m.h5"
    shutil.copy(os.path.join(FILES, "sequential_mlp.h5"), path)
    data = bytearray(path.read_bytes())
    for i in range(2048, len(data), 97):  # scribble over object headers and data alike
        data[i] = 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises((ModelFileError, FileNotFoundError)) as e:
        load_model(str(path))
    assert str(path) in str(e.value)


def _write_h5_model(path, config, weights=None):
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.21.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        g.attrs["keras_version"] = "2.21.0"
        g.attrs["layer_names"] = [b"d"]
        sub = g.create_group("d")
        if weights is None:
            sub.attrs["weight_names"] = np.array([], dtype=np.float64)
        else:
            weights(sub)


def _seq_config(*entries):
    return {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "in"}}, *entries]}}


def test_every_unsupported_layer_class_is_listed_at_once(tmp_path):
    path = str(tmp_path / "m.h5")
    config = _seq_config(
        {"class_name": "FancyAttention", "config": {"name": "att_1"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2}},
        {"class_name": "FancyAttention", "config": {"name": "att_2"}},
        {"class_name": "TimeWarp", "config": {"name": "warp", "layer": {"class_name": "Gizmo", "config": {"name": "g"}}}},
    )
    _write_h5_model(path, config)
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    msg = str(e.value)
    assert "3 layer classes" in msg and path in msg
    for part in ("FancyAttention (layers 'att_1', 'att_2')", "Gizmo (layer 'g')", "TimeWarp (layer 'warp')"):
        assert part in msg


def test_declared_sizes_are_checked_before_reading(tmp_path):
    path = str(tmp_path / "m.h5")
    config = _seq_config({"class_name": "Dense", "config": {"name": "d", "units": 2}})

    def huge(g):
        g.attrs["weight_names"] = [b"d/kernel:0", b"d/bias:0"]
        # 4 TB declared, a few KB on disk: must be refused, never allocated
        g.create_dataset("d/kernel:0", shape=(2**20, 2**20), dtype="float32", chunks=(16, 16))
        g.create_dataset("d/bias:0", data=np.zeros(2, "float32"))

    _write_h5_model(path, config, huge)
    with pytest.raises(ModelFileError, match="far larger"):
        load_model(path)


def test_garbage_model_config(tmp_path):
    path = str(tmp_path / "m.h5")
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = "{not json"
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(path)


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


@pytest.mark.parametrize("evil", ["../evil.h5", "/etc/evil", "a/../../b"])
def test_unsafe_zip_entries_are_refused(tmp_path, evil):
    src = os.path.join(FILES3, "sequential_mlp.keras")
    with zipfile.ZipFile(src) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries[evil] = b"x"
    path = str(tmp_path / "m.keras")
    _zip(path, entries)
    with pytest.raises(ModelFileError, match="unsafe entry"):
        load_model(path)


def test_zip_without_config_is_not_a_model(tmp_path):
    path = str(tmp_path / "m.keras")
    _zip(path, {"readme.txt": "hi"})
    with pytest.raises(ModelFileError, match="without config.json"):
        load_model(path)


def test_zip_bomb_is_refused(tmp_path):
    path = str(tmp_path / "m.keras")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("model.weights.h5", b"\0" * (64 * 2**20))
    with pytest.raises(ModelFileError, match="zip bomb"):
        load_model(path)


def test_keras3_files_keep_working_when_loaded_twice():
    a = load_model(os.path.join(FILES3, "nested_models.keras"))
    b = load_model(os.path.join(FILES3, "nested_models.keras"))
    assert [w.shape for w in a.weights] == [w.shape for w in b.weights]


def test_unknown_tensorflow_function_is_named(tmp_path):
    path = str(tmp_path / "m.h5")
    config = {"class_name": "Functional", "config": {"name": "f", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "a"},
         "name": "a", "inbound_nodes": []},
        {"class_name": "TFOpLambda", "config": {"name": "tf.math.bessel_i0", "trainable": True, "dtype": "float32",
                                                "function": "math.bessel_i0"},
         "name": "tf.math.bessel_i0", "inbound_nodes": [["a", 0, 0, {"name": None}]]}],
        "input_layers": [["a", 0, 0]], "output_layers": [["tf.math.bessel_i0", 0, 0]]}}
    _write_h5_model(path, config)
    with pytest.raises(ModelFileError, match=r"tf\.math\.bessel_i0 is not supported"):
        load_model(path)
