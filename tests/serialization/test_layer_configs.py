"""Layer configs through the registry and the dialects: unknown classes and keys are named,
a Keras 3 config keeps its Keras 3 meaning."""

import numpy as np
import pytest

from klayers import layers


def test_deserialize_errors_name_the_problem():
    with pytest.raises(ValueError, match="Unknown layer: 'Dense3000'"):
        layers.deserialize({"class_name": "Dense3000", "config": {}})
    with pytest.raises(ValueError, match="Unknown config key for layer Dense.*bogus"):
        layers.deserialize({"class_name": "Dense", "config": {"units": 2, "bogus": 1}})
    with pytest.raises(ValueError, match="must be a dict"):
        layers.deserialize(["Dense"])



def test_keras3_config_dialect():
    config = {
        "module": "keras.layers", "class_name": "Dense",
        "config": {
            "name": "d3", "trainable": True,
            "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None},
            "units": 2, "activation": "hard_sigmoid", "use_bias": False,
            "kernel_initializer": {"module": "keras.initializers", "class_name": "Ones", "config": {}, "registered_name": None},
            "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None},
            "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
            "quantization_config": None,
        },
        "registered_name": None, "build_config": {"input_shape": [None, 1]},
    }
    layer = layers.deserialize(config)
    assert layer.built  # build_config honoured
    x = np.array([[-3.5], [0.0], [1.0]], "float32")
    np.testing.assert_allclose(layer(x)[:, 0], np.clip(x[:, 0] + 3, 0, 6) / 6)  # Keras 3 meaning
    again = layers.deserialize(layers.serialize(layer))
    again.set_weights(layer.get_weights())
    np.testing.assert_allclose(again(x), layer(x))  # the meaning survives klayers's own config
    config["config"]["lora_rank"] = 4
    with pytest.raises(ValueError, match="lora_rank=4"):
        layers.deserialize(config)
