"""Keras 3 operation nodes and the layers keras.applications defines (their Keras references
are replayed by conformance's ``applications`` family; these are the rules and refusals)."""

from __future__ import annotations

import numpy as np
import pytest

import klayers
from klayers import layers
from klayers.layers.applications import CustomScaleLayer, LayerScale, StochasticDepth
from klayers.layers.keras3_ops import BINARY_OPS
from klayers.saving.file_utils import ModelFileError, check_supported


def _op(class_name, name=None):
    return layers.deserialize({"module": "keras.src.ops.numpy", "class_name": class_name,
                               "config": {"name": name or class_name.lower()}, "registered_name": class_name})


def test_the_module_tells_an_operation_from_the_merge_layer_of_that_name():
    assert type(_op("Add")) is BINARY_OPS["Add"]
    merge = layers.deserialize({"module": "keras.layers", "class_name": "Add", "config": {"name": "m"}})
    assert type(merge) is layers.Add


@pytest.mark.parametrize("name, fn", [("Add", np.add), ("Subtract", np.subtract), ("Multiply", np.multiply),
                                      ("Divide", np.divide), ("Maximum", np.maximum), ("Minimum", np.minimum)])
def test_binary_operations_with_numbers_on_either_side(name, fn):
    x = klayers.Input((3,))
    y = klayers.Input((1, 3))
    a = _op(name, "a")(x, 2.0)
    b = _op(name, "b")(2.0, x)
    c = _op(name, "c")(x, y)  # broadcasts
    assert a.shape == b.shape == (None, 3) and c.shape == (None, None, 3)  # x's batch against y's 1
    model = klayers.Model([x, y], [a, b, c])
    xv = np.array([[1.0, -2.0, 4.0]], "float32")
    yv = np.array([[[3.0, 0.5, -1.0]]], "float32")
    got = model.predict([xv, yv], verbose=0)
    two = np.float32(2.0)
    for out, want in zip(got, (fn(xv, two), fn(two, xv), fn(xv, yv))):
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, want)


def test_operand_errors_name_the_node():
    x = klayers.Input((3,))
    with pytest.raises(ValueError, match="subtract: an operand must be a tensor or a number"):
        _op("Subtract")(x, "two")
    with pytest.raises(ValueError, match="do not broadcast"):
        _op("Add")(x, klayers.Input((4,)))


def test_an_unknown_operation_is_listed_with_the_unknown_layers():
    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"module": "keras.src.ops.numpy", "class_name": "Stft", "config": {"name": "e"}, "name": "e"},
        {"module": "keras.layers", "class_name": "Transformer9000", "config": {"name": "t"}, "name": "t"},
        {"module": "keras.src.ops.numpy", "class_name": "Add", "config": {"name": "a"}, "name": "a"},
    ]}}
    with pytest.raises(ModelFileError, match=r"2 layer classes .*Stft \(a Keras 3 operation\) \(layer 'e'\); Transformer9000"):
        check_supported(config, "m.keras")
    with pytest.raises(ValueError, match=r"Keras 3 operation \(keras.src.ops.numpy\): 'Stft'"):
        layers.deserialize(config["config"]["layers"][0])


def test_layer_scale_and_custom_scale():
    x = np.arange(6, dtype="float32").reshape(2, 3)
    scale = LayerScale(1e-6, 3)
    np.testing.assert_allclose(scale(x), x * 1e-6)
    scale.set_weights([np.array([1.0, 2.0, 3.0], "float32")])
    np.testing.assert_array_equal(scale(x), x * [1, 2, 3])
    with pytest.raises(ValueError, match="last axis is 4"):
        LayerScale(1e-6, 3)(np.zeros((2, 4), "float32"))
    again = LayerScale.from_config(scale.get_config())
    assert (again.init_values, again.projection_dim) == (1e-6, 3)
    y = CustomScaleLayer(0.5)([x, x + 1])
    np.testing.assert_array_equal(y, x + (x + 1) * 0.5)
    with pytest.raises(ValueError, match="two tensors"):
        CustomScaleLayer(0.5)(x)


def test_stochastic_depth_is_the_identity_at_inference_only():
    x = np.ones((4, 3), "float32")
    layer = StochasticDepth(0.3)
    assert layer(x) is x or np.array_equal(layer(x), x)
    with pytest.raises(NotImplementedError, match="inference only"):
        layer(x, training=True)
    with pytest.raises(ValueError):
        StochasticDepth(1.5)


def test_keras3_hard_swish_of_operation_nodes_folds_into_the_convolution():
    # MobileNetV3 as Keras 3 writes it: x + 3.0 -> ReLU(6) -> x * (1/6) -> Multiply([x, that])
    from klayers.inference import disabled

    inp = klayers.Input((6, 6, 3))
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    hs = _op("Multiply", "scale")(layers.ReLU(6.0, name="relu6")(_op("Add", "plus3")(x, 3.0)), 0.16666666666666666)
    model = klayers.Model(inp, layers.Multiply(name="swish")([x, hs]))
    data = np.random.default_rng(0).standard_normal((2, 6, 6, 3)).astype("float32") * 4
    got = model(data)
    with disabled():
        want = model(data)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    lowered = model.__dict__["_inference_plan"].lowered
    assert len(lowered) == 1, [type(s).__name__ for s in lowered]
