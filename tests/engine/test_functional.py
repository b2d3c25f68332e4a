"""Functional models (and what every model does): multiple inputs and outputs, predict in
batches with a progress bar, nested models and their weight order, trainable flags, graph
errors, summary."""

import json

import numpy as np
import pytest

import klayers
from klayers import layers

RNG = np.random.default_rng(0)


def _mlp(name=None):
    return klayers.Sequential([layers.Dense(5, input_shape=(3,), activation="relu"), layers.Dense(2)], name=name)


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


