"""Replay of model-level cases recorded from tf-keras (conformance/cases/models.py): models
rebuilt from Keras's ``to_json()`` and ``get_weights()`` predict what Keras predicted, write the
same config back, and answer the node API as Keras does."""

import json

import numpy as np
import pytest

import klayers
from conformance import refs
from conformance.harness import assert_close, assert_config_equal

CASES = refs.cases("models", "keras2")
IDS = [c[0] for c in CASES]


def _load(name, meta):
    arrays = refs.arrays("models", name)
    model = klayers.models.model_from_json(json.dumps(meta["json"]))
    model.set_weights([arrays[f"w{i}"] for i in range(len(meta["weight_shapes"]))])
    xs = [arrays[f"x{i}"] for i in range(meta["n_inputs"])]
    return model, arrays, xs


def _lists(x):
    if isinstance(x, (list, tuple)):
        return [_lists(v) for v in x]
    return x


def _answer(fn):
    try:
        return {"value": _lists(fn())}
    except Exception as e:  # noqa: BLE001 - compared with the class Keras raised
        return {"error": type(e).__name__}


@pytest.mark.parametrize("name,meta", CASES, ids=IDS)
def test_predictions_match_keras(name, meta):
    model, arrays, xs = _load(name, meta)
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    assert isinstance(out, list) == meta["outputs_are_list"]
    outs = out if isinstance(out, list) else [out]
    assert len(outs) == meta["n_outputs"]
    for i, y in enumerate(outs):
        assert_close(y, arrays[f"y{i}"], f"output {i}")
    # __call__ on arrays gives the same as predict
    called = model(xs if len(xs) > 1 else xs[0])
    called = called if isinstance(called, list) else [called]
    for i, y in enumerate(called):
        assert_close(y, arrays[f"y{i}"], f"__call__ output {i}")


@pytest.mark.parametrize("name,meta", CASES, ids=IDS)
def test_structure_and_config_match_keras(name, meta):
    model, _, _ = _load(name, meta)
    assert [layer.name for layer in model.layers] == meta["layer_names"]
    assert [list(w.shape) for w in model.weights] == meta["weight_shapes"]
    assert [w.name for w in model.weights] == meta["weight_names"]
    assert model.count_params() == meta["count_params"]
    assert _lists(model.input_shape) == meta["model_input_shape"]
    assert _lists(model.output_shape) == meta["model_output_shape"]
    ours = json.loads(model.to_json())
    assert ours["class_name"] == meta["json"]["class_name"]
    assert_config_equal(ours["config"], meta["json"]["config"])


@pytest.mark.parametrize("name,meta", CASES, ids=IDS)
def test_node_api_matches_keras(name, meta):
    model, _, _ = _load(name, meta)
    for layer_name, expected in meta["node_api"].items():
        layer = model.get_layer(layer_name)
        n = len(layer.inbound_nodes)
        assert n == expected["n_nodes"], layer_name
        got = {
            "n_nodes": n,
            "input_shape": _answer(lambda layer=layer: layer.input_shape),
            "output_shape": _answer(lambda layer=layer: layer.output_shape),
            "input_shape_at": [_answer(lambda i=i, layer=layer: layer.get_input_shape_at(i)) for i in range(n)],
            "output_shape_at": [_answer(lambda i=i, layer=layer: layer.get_output_shape_at(i)) for i in range(n)],
            "out_of_range": _answer(lambda layer=layer, n=n: layer.get_output_at(n)),
        }
        assert got == expected, layer_name


@pytest.mark.parametrize("name,meta", CASES, ids=IDS)
def test_klayers_config_round_trip(name, meta):
    model, arrays, xs = _load(name, meta)
    again = klayers.models.model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    a = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    b = again.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    for u, v in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
        np.testing.assert_array_equal(u, v)
