"""klayers.models.model_from_json / model_from_config: clear errors for configs that are not
models, and Keras 3 functional configs with their Keras 3 meaning."""

import json

import numpy as np
import pytest

import klayers


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
