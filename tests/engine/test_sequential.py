"""Sequential models: adding, popping and finding layers, deferred builds, an Input first."""

import numpy as np
import pytest

import klayers
from klayers import layers


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
