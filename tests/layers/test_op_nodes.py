"""Keras 3 operation nodes and tf-keras's SlicingOpLambda / TFOpLambda: the refusals and the
dtype rules (Keras's outputs are replayed by conformance's ``op_nodes`` family)."""

from __future__ import annotations

import numpy as np
import pytest

import klayers
from klayers import layers
from klayers.layers._keras3_dtypes import result_type
from klayers.saving.file_utils import ModelFileError, check_supported


def _op(class_name, module="keras.src.ops.numpy", **config):
    return layers.deserialize({"module": module, "class_name": class_name,
                               "config": {"name": config.pop("name", class_name.lower()), **config},
                               "registered_name": class_name})


@pytest.mark.parametrize("a, b, want", [
    ("int32", 2, "int32"), ("int32", 2.0, "float32"), ("float16", 2.0, "float16"), ("int32", "float32", "float32"),
    ("int8", "uint8", "int16"), ("bool", 1, "int32"), ("bool", "bool", "bool"), ("int64", "float16", "float16"),
    ("uint8", "int8", "int16"), (2, 3.0, "float32"),
])
def test_keras3_type_promotion(a, b, want):
    assert result_type(a, b) == want


@pytest.mark.parametrize("class_name, module, config, match", [
    ("Mean", "keras.src.ops.numpy", {"axis": "1"}, "axis must be an int"),
    ("Reshape", "keras.src.ops.numpy", {"newshape": [-1, -1]}, "at most one -1"),
    ("Reshape", "keras.src.ops.numpy", {}, "missing argument 'newshape'"),
    ("Cast", "keras.src.ops.core", {"dtype": "int33"}, "unknown dtype"),
    ("Clip", "keras.src.ops.numpy", {"x_min": "a", "x_max": 1}, "must be numbers"),
    ("Einsum", "keras.src.ops.numpy", {"subscripts": 3}, "must be a string"),
])
def test_malformed_arguments_name_the_node(class_name, module, config, match):
    with pytest.raises(ValueError, match=rf"{class_name} {class_name.lower()}: .*{match}"):
        _op(class_name, module, **config)


def test_bad_calls_name_the_node():
    x = klayers.Input((4, 6))
    with pytest.raises(ValueError, match="Mean mean: axis 3 is out of range"):
        _op("Mean", axis=3)(x)
    with pytest.raises(ValueError, match="Transpose transpose: repeated axis"):
        _op("Transpose", axes=[0, 1, 1])(x)
    with pytest.raises(ValueError, match="Squeeze squeeze: cannot squeeze axis 1"):
        _op("Squeeze", axis=1)(x)
    with pytest.raises(ValueError, match="Reshape reshape: cannot reshape"):
        _op("Reshape", newshape=[2, 5])(klayers.Input((4, 6), batch_size=2))
    with pytest.raises(ValueError, match="Concatenate concatenate: expects a list of tensors"):
        _op("Concatenate", axis=-1)(x)
    with pytest.raises(ValueError, match="Concatenate concatenate: shapes .* differ"):
        _op("Concatenate", axis=-1)([x, klayers.Input((5, 6))])
    with pytest.raises(ValueError, match="Where where: expected 3 arguments"):
        _op("Where")(x, x)
    with pytest.raises(ValueError, match="Einsum einsum: subscripts 'ij,jk->ik' do not match 1 operands"):
        _op("Einsum", subscripts="ij,jk->ik")(x)
    with pytest.raises(ValueError, match="Matmul matmul: inner sizes differ"):
        _op("Matmul")(x, x)
    with pytest.raises(ValueError, match="GetItem get_item: index 4 is out of bounds"):
        _op("GetItem", name="get_item")(x, [{"class_name": "__slice__", "config": {"start": None, "stop": None, "step": None}}, 4])
    with pytest.raises(ValueError, match="GetItem get_item: an index has at most one ellipsis"):
        _op("GetItem", name="get_item")(x, [{"class_name": "__ellipsis__", "config": {}}] * 2)
    with pytest.raises(ValueError, match="GetItem get_item: unsupported index"):
        _op("GetItem", name="get_item")(x, [{"class_name": "__tensor__", "config": {}}])
    with pytest.raises(ValueError, match="Sigmoid sigmoid: expects a floating input"):
        klayers.Model(i := klayers.Input((3,), dtype="int32"), _op("Sigmoid", "keras.src.ops.nn")(i)).predict(
            np.ones((1, 3), "int32"), verbose=0)


def test_get_item_shapes_follow_keras():
    x = klayers.Input((4, 6))
    s = {"class_name": "__slice__", "config": {"start": None, "stop": None, "step": 2}}
    e = {"class_name": "__ellipsis__", "config": {}}
    assert _op("GetItem")(x, [s, 0]).shape == (None, 6)
    assert _op("GetItem")(x, [e, None, 1]).shape == (None, 4, 1)
    assert _op("GetItem")(x, 0).shape == (4, 6)


def test_ints_keep_their_dtype_and_mean_is_float():
    i = klayers.Input((3,), dtype="int32")
    outs = [_op("Add")(i, 2), _op("Add", name="b")(i, 2.0), _op("Mean", axis=-1)(i), _op("Sum", axis=-1)(i)]
    assert [o.dtype for o in outs] == ["int32", "float32", "float32", "int32"]
    got = klayers.Model(i, outs).predict(np.array([[1, 2, 4]], "int32"), verbose=0)
    assert [g.dtype.name for g in got] == ["int32", "float32", "float32", "int32"]
    np.testing.assert_array_equal(got[2], np.float32([7 / 3]))


def test_unknown_operations_are_listed_in_one_error():
    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"module": "keras.src.ops.numpy", "class_name": "Cumsum", "config": {"name": "c"}, "name": "c"},
        {"module": "keras.src.ops.nn", "class_name": "Glu", "config": {"name": "g"}, "name": "g"},
        {"module": "keras.src.ops.numpy", "class_name": "Mean", "config": {"name": "m"}, "name": "m"},
    ]}}
    with pytest.raises(ModelFileError, match=r"2 layer classes .*Cumsum \(a Keras 3 operation\) \(layer 'c'\); "
                                             r"Glu \(a Keras 3 operation\) \(layer 'g'\)"):
        check_supported(config, "m.keras")


def test_slicing_op_lambda_and_refusals():
    x = klayers.Input((4, 6))
    y = layers.deserialize({"class_name": "SlicingOpLambda", "config": {
        "name": "tf.__operators__.getitem", "function": "__operators__.getitem"}})(
        x, slice_spec=[{"start": None, "stop": None, "step": None}, {"class_name": "__ellipsis__"}, -1])
    assert y.shape == (None, 4)
    v = np.arange(48, dtype="float32").reshape(2, 4, 6)
    np.testing.assert_array_equal(klayers.Model(x, y).predict(v, verbose=0), v[:, ..., -1])
    with pytest.raises(ValueError, match="unsupported slice"):
        layers.deserialize({"class_name": "SlicingOpLambda", "config": {"name": "s", "function": "__operators__.getitem"}})(
            x, slice_spec=[{"start": "a"}])
    with pytest.raises(ValueError, match=r"tf.linalg.svd is not supported"):
        layers.deserialize({"class_name": "TFOpLambda", "config": {"name": "s", "function": "linalg.svd"}})
