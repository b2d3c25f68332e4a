"""Functional and Sequential models: building, predict, configs, summary."""

import json

import numpy as np
import pytest

import klayers
from klayers import layers

RNG = np.random.default_rng(0)


def _mlp(name=None):
    return klayers.Sequential([layers.Dense(5, input_shape=(3,), activation="relu"), layers.Dense(2)], name=name)


def test_sequential_add_pop_layers_and_get_layer():
    model = klayers.Sequential()
    model.add(layers.Dense(4, input_shape=(3,), name="first"))
    model.add(layers.Dense(2, name="second"))
    assert [layer.name for layer in model.layers] == ["first", "second"]
    assert model.output_shape == (None, 2)
    assert model.get_layer("second") is model.get_layer(index=1)
    model.pop()
    assert [layer.name for layer in model.layers] == ["first"]
    assert model.output_shape == (None, 4)
    assert len(model.get_layer("first").inbound_nodes) == 1
    assert model.predict(np.ones((3, 3)), verbose=0).shape == (3, 4)
    with pytest.raises(ValueError, match="No such layer: nope"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="index 5"):
        model.get_layer(index=5)
    model.pop()
    with pytest.raises(TypeError, match="no layers"):
        model.pop()


def test_sequential_rejects_duplicates_and_non_layers():
    model = klayers.Sequential([layers.Dense(2, name="d", input_shape=(2,))])
    with pytest.raises(ValueError, match="unique names"):
        model.add(layers.Dense(2, name="d"))
    with pytest.raises(TypeError, match="instance of class Layer"):
        model.add("dense")
    assert len(model.layers) == 1


def test_sequential_deferred_build_on_first_predict():
    model = klayers.Sequential([layers.Dense(4), layers.Dense(1)])
    assert not model.built
    y = model.predict(np.ones((7, 6), "float32"), verbose=0)
    assert y.shape == (7, 1) and model.built
    assert model.layers[0].kernel.shape == (6, 4)
    assert model.input_shape == (None, 6)


def test_sequential_input_tensor_first():
    model = klayers.Sequential([klayers.Input((2, 3)), layers.Dense(4)])
    assert model.output_shape == (None, 2, 4)
    assert model.get_config()["layers"][0]["class_name"] == "InputLayer"


def test_functional_multi_io_dict_inputs_and_batches():
    a = klayers.Input((3,), name="a")
    b = klayers.Input((2,), name="b")
    da, db = layers.Dense(2, name="da"), layers.Dense(2, name="db")
    model = klayers.Model([a, b], [da(a), db(b)])
    xa, xb = RNG.random((70, 3)), RNG.random((70, 2))
    ya, yb = model.predict([xa, xb], batch_size=16, verbose=0)
    assert ya.shape == (70, 2) and yb.shape == (70, 2) and ya.dtype == np.float32
    ya2, yb2 = model.predict({"a": xa, "b": xb}, verbose=0)
    np.testing.assert_allclose(ya, ya2, rtol=1e-6)
    np.testing.assert_allclose(yb, yb2, rtol=1e-6)
    with pytest.raises(ValueError, match="missing input"):
        model.predict({"a": xa}, verbose=0)
    with pytest.raises(ValueError, match="expects 2 input"):
        model.predict(xa, verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        model.predict([xa, xb[:5]], verbose=0)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 3\), found shape=\(70, 4\)"):
        model.predict([np.ones((70, 4)), xb], verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict([xa, xb], batch_size=0)


def test_predict_progress_bar(capsys):
    model = _mlp()
    model.predict(np.ones((100, 3)), batch_size=10, verbose=1)
    out = capsys.readouterr().out
    assert "10/10 [" in out
    model.predict(np.ones((100, 3)), batch_size=10, verbose=0)
    assert capsys.readouterr().out == ""
    model.predict(np.ones((100, 3)), batch_size=10)  # "auto": quick runs stay silent
    assert capsys.readouterr().out == ""


def test_nested_model_as_layer_and_weights_order():
    inner_in = klayers.Input((4,))
    inner = klayers.Model(inner_in, layers.Dense(3, name="inner_dense")(inner_in), name="inner")
    x = klayers.Input((4,))
    outer = klayers.Model(x, layers.Dense(1, name="head")(inner(x)))
    assert [w.name for w in outer.weights] == [
        "inner_dense/kernel:0", "inner_dense/bias:0", "head/kernel:0", "head/bias:0",
    ]
    data = RNG.random((5, 4)).astype("float32")
    expected = outer.layers[-1](inner(data))
    np.testing.assert_allclose(outer.predict(data, verbose=0), expected, rtol=1e-6)
    config = json.loads(outer.to_json())
    assert config["config"]["layers"][1]["class_name"] == "Functional"
    again = klayers.models.model_from_json(outer.to_json())
    again.set_weights(outer.get_weights())
    np.testing.assert_allclose(again.predict(data, verbose=0), expected, rtol=1e-6)


def test_trainable_flags_and_counts():
    model = _mlp()
    assert model.count_params() == 3 * 5 + 5 + 5 * 2 + 2
    model.layers[0].trainable = False
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2
    model.trainable = False
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 4
    assert model.layers[1].trainable is False


def test_graph_errors():
    a = klayers.Input((2,))
    b = klayers.Input((2,))
    y = layers.Dense(1)(b)
    with pytest.raises(ValueError, match="Graph disconnected"):
        klayers.Model(a, y)
    with pytest.raises(ValueError, match="must come from `klayers.Input`"):
        klayers.Model(y, y)
    d1 = layers.Dense(1, name="same")
    d2 = layers.Dense(1, name="same")
    with pytest.raises(ValueError, match='"same" is used 2 times'):
        klayers.Model(a, d2(d1(a)))


def test_summary_lists_layers_and_params():
    lines = []
    _mlp(name="mlp").summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert 'Model: "mlp"' in text and "(Dense)" in text and "(None, 5)" in text
    assert "Total params: 32" in text and "Trainable params: 32" in text


def test_model_from_json_errors():
    with pytest.raises(ValueError, match="not valid JSON"):
        klayers.models.model_from_json("{nope")
    with pytest.raises(ValueError, match="describes a Dense"):
        klayers.models.model_from_json(json.dumps({"class_name": "Dense", "config": {"units": 1}}))
    with pytest.raises(ValueError, match="unknown layer 'ghost'"):
        klayers.models.model_from_json(json.dumps({
            "class_name": "Functional",
            "config": {"name": "m", "layers": [
                {"class_name": "InputLayer", "name": "in", "config": {"batch_input_shape": [None, 2], "name": "in"}, "inbound_nodes": []},
                {"class_name": "Dense", "name": "d", "config": {"units": 1, "name": "d"}, "inbound_nodes": [[["ghost", 0, 0, {}]]]},
            ], "input_layers": [["in", 0, 0]], "output_layers": [["d", 0, 0]]},
        }))


def test_keras3_functional_config():
    k3 = {
        "class_name": "Functional",
        "config": {
            "name": "f", "trainable": True,
            "layers": [
                {"module": "keras.layers", "class_name": "InputLayer", "name": "input_layer",
                 "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": "input_layer"},
                 "registered_name": None, "inbound_nodes": []},
                {"module": "keras.layers", "class_name": "Dense", "name": "dense",
                 "config": {"name": "dense", "trainable": True,
                            "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None},
                            "units": 2, "activation": "hard_sigmoid", "use_bias": True,
                            "kernel_initializer": {"module": "keras.initializers", "class_name": "Ones", "config": {}, "registered_name": None},
                            "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None},
                            "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None,
                            "bias_constraint": None, "quantization_config": None},
                 "registered_name": None, "build_config": {"input_shape": [None, 4]},
                 "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "dtype": "float32", "keras_history": ["input_layer", 0, 0]}}], "kwargs": {}}]},
            ],
            "input_layers": ["input_layer", 0, 0],
            "output_layers": ["dense", 0, 0],
        },
    }
    model = klayers.models.model_from_config(k3)
    x = np.full((1, 4), -0.25, "float32")  # kernel of ones: pre-activation -1.0
    np.testing.assert_allclose(model.predict(x, verbose=0), np.full((1, 2), 2.0 / 6.0), rtol=1e-6)
