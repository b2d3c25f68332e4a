"""Replay of LocallyConnected1D/2D recorded from tf-keras 2.21 (conformance/cases/local.py):
config, weight names and shapes in Keras's layout for each implementation, outputs at two
batch sizes (Keras's weights loaded unchanged), output shape, losses, config round trip; and
models of stacked layers saved by tf-keras as .h5 and .keras files, loaded and run."""

import numpy as np
import pytest

import klayers
from conformance import refs
from conformance.harness import assert_close, replay_layer_case

ALL = refs.cases("local", "keras2")
K2 = [(n, m) for n, m in ALL if m.get("kind") != "model_file"]
FILES = [(n, m) for n, m in ALL if m.get("kind") == "model_file"]


@pytest.mark.parametrize("name,meta", K2, ids=[c[0] for c in K2])
def test_local_keras2(name, meta):
    layer = replay_layer_case(meta, refs.arrays("local", name, "keras2"), "keras2")
    assert [list(w.shape) for w in layer.weights] == meta["weight_shapes"]


def test_every_implementation_data_format_and_padding_is_recorded():
    seen = {(m["class_name"], m["config"]["implementation"], m["config"]["data_format"]) for _, m in K2}
    for cls in ("LocallyConnected1D", "LocallyConnected2D"):
        for impl in (1, 2, 3):
            assert (cls, impl, "channels_last") in seen or (cls, impl, "channels_first") in seen
        assert {(c, f) for c, _, f in seen if c == cls} == {(cls, "channels_last"), (cls, "channels_first")}
        per_class = [m for _, m in K2 if m["class_name"] == cls]
        assert len(per_class) >= 8
        assert {m["config"]["padding"] for m in per_class} == {"valid", "same"}
        assert {m["config"]["use_bias"] for m in per_class} == {True, False}
        assert any(max(m["config"]["strides"]) > 1 for m in per_class)
        assert all(1 in m["batches"] and max(m["batches"]) > 1 for m in per_class)


@pytest.mark.parametrize("name,meta", FILES, ids=[c[0] for c in FILES])
def test_local_model_files(name, meta, tmp_path):
    arrays = refs.arrays("local", name, "keras2")
    path = tmp_path / f"model.{meta['fmt']}"
    path.write_bytes(arrays["model_file"].tobytes())
    model = klayers.models.load_model(str(path))
    assert len(model.weights) == meta["n_weights"]
    assert {type(layer).__name__ for layer in model.layers} >= set(meta["class_names"]) - {"InputLayer"}
    assert_close(model.predict(arrays["x"]), arrays["y"], f"{name} prediction")
    assert_close(model(arrays["x"][:1]), arrays["y"][:1], f"{name} at batch 1")
    assert np.all(np.isfinite(arrays["y"]))
