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
        {"module": "keras.src.ops.numpy", "class_name": "Searchsorted", "config": {"name": "c"}, "name": "c"},
        {"module": "keras.src.ops.math", "class_name": "Stft", "config": {"name": "g"}, "name": "g"},
        {"module": "keras.src.ops.numpy", "class_name": "Mean", "config": {"name": "m"}, "name": "m"},
    ]}}
    with pytest.raises(ModelFileError, match=r"2 layer classes .*Searchsorted \(a Keras 3 operation\) \(layer 'c'\); "
                                             r"Stft \(a Keras 3 operation\) \(layer 'g'\)"):
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


# -- the operations of keras3_op_nodes_more -------------------------------------------------------
@pytest.mark.parametrize("class_name, module, config, match", [
    ("Pad", "keras.src.ops.numpy", {"pad_width": [[0, 0], [1, 1]], "mode": "edge"}, "not one of TensorFlow's"),
    ("Pad", "keras.src.ops.numpy", {"pad_width": [[0, -1]]}, "pad_width must be pairs"),
    ("Split", "keras.src.ops.numpy", {"indices_or_sections": 0}, "indices_or_sections must be"),
    ("TopK", "keras.src.ops.math", {"k": -1}, "k must be an int"),
    ("OneHot", "keras.src.ops.nn", {"num_classes": 3, "sparse": True}, "sparse outputs are not supported"),
    ("Norm", "keras.src.ops.linalg", {"ord": "max"}, "ord must be"),
    ("Normalize", "keras.src.ops.nn", {"order": 0}, "order must be an int >= 1"),
    ("Cumsum", "keras.src.ops.numpy", {"dtype": "int33"}, "unknown dtype"),
    ("Diff", "keras.src.ops.numpy", {"n": -1}, "n must be an int >= 0"),
    ("Tile", "keras.src.ops.numpy", {}, "missing argument 'repeats'"),
    ("Resize", "keras.src.ops.image", {"size": [4, 4], "interpolation": "bicubic"}, "'bilinear' or 'nearest'"),
    ("Resize", "keras.src.ops.image", {"size": [4, 4], "antialias": True}, "no antialias"),
    ("Resize", "keras.src.ops.image", {"size": [4, 4], "crop_to_aspect_ratio": True}, "not supported"),
    ("Resize", "keras.src.ops.image", {"size": [4]}, r"size must be \(height, width\)"),
])
def test_more_malformed_arguments_name_the_node(class_name, module, config, match):
    with pytest.raises(ValueError, match=rf"{class_name} {class_name.lower()}: .*{match}"):
        _op(class_name, module, **config)


def test_more_bad_calls_name_the_node():
    x = klayers.Input((4, 6))
    with pytest.raises(ValueError, match="Cumsum cumsum: axis 3 is out of range"):
        _op("Cumsum", axis=3)(x)
    with pytest.raises(ValueError, match="Take take: expected 2 arguments, received 1"):
        _op("Take", axis=1)(x)
    with pytest.raises(ValueError, match="Take take: axis -4 is out of range"):
        _op("Take", axis=-4)(x, [0])
    with pytest.raises(ValueError, match="FullLike full_like: expected 2 arguments, received 3"):
        _op("FullLike", name="full_like")(x, 1.0, 2.0)
    with pytest.raises(ValueError, match="Split split: the size 6 of axis -1 does not split into 4"):
        _op("Split", indices_or_sections=4, axis=-1)(x)
    with pytest.raises(ValueError, match="Unstack unstack: cannot infer num"):
        _op("Unstack", "keras.src.ops.core", axis=0)(x)
    with pytest.raises(ValueError, match="Unstack unstack: num=3 differs"):
        _op("Unstack", "keras.src.ops.core", num=3, axis=1)(x)
    with pytest.raises(ValueError, match="TopK top_k: k=7 is more than"):
        _op("TopK", "keras.src.ops.math", name="top_k", k=7)(x)
    with pytest.raises(ValueError, match="Glu glu: the size 5 of axis -1 is not even"):
        _op("Glu", "keras.src.ops.nn")(klayers.Input((5,)))
    with pytest.raises(ValueError, match="Tril tril: expects an input of rank 2 or more"):
        _op("Tril")(klayers.Input(()))
    with pytest.raises(ValueError, match="Norm norm: norms are over one or two axes"):
        _op("Norm", "keras.src.ops.linalg")(x)
    with pytest.raises(ValueError, match="Norm norm: ord 'fro' is not a vector norm"):
        _op("Norm", "keras.src.ops.linalg", ord="fro", axis=-1)(x)
    with pytest.raises(ValueError, match="Slice slice: shape \\[2, 3\\] has 2 sizes"):
        _op("Slice", "keras.src.ops.core", shape=[2, 3])(x, [0, 0, 0])
    with pytest.raises(ValueError, match="Slice slice: start_indices must be 3 ints"):
        _op("Slice", "keras.src.ops.core", shape=[1, 2, 3])(x, [0, 0])
    with pytest.raises(ValueError, match="Pad pad: unexpected keyword arguments \\['value'\\]"):
        _op("Pad", pad_width=[[0, 0], [1, 1], [1, 1]])(x, value=1.0)
    with pytest.raises(ValueError, match="Pad pad: pad_width .* has 2 pairs for an input of rank 3"):
        _op("Pad", pad_width=[[0, 0], [1, 1]])(x)
    with pytest.raises(ValueError, match="Average average: weights of shape"):
        _op("Average", axis=1)(x, weights=klayers.Input((5,)))
    with pytest.raises(ValueError, match="OneHot one_hot: axis must be -1 or in"):
        _op("OneHot", "keras.src.ops.nn", name="one_hot", num_classes=3, axis=3)(klayers.Input((4,), dtype="int32"))
    with pytest.raises(ValueError, match="BroadcastTo broadcast_to: cannot broadcast"):
        _op("BroadcastTo", name="broadcast_to", shape=[2, 5, 6])(x)
    i = klayers.Input((3,), dtype="int32")
    with pytest.raises(ValueError, match="Erf erf: expects a floating input"):
        klayers.Model(i, _op("Erf", "keras.src.ops.math")(i)).predict(np.ones((1, 3), "int32"), verbose=0)


def test_several_outputs_have_their_own_shapes_and_dtypes():
    x = klayers.Input((4, 6))
    values, indices = _op("TopK", "keras.src.ops.math", name="top_k", k=2)(x)
    pieces = _op("Split", indices_or_sections=[1, 3], axis=1)(x)
    assert (values.dtype, indices.dtype, values.shape) == ("float32", "int32", (None, 4, 2))
    assert [p.shape for p in pieces] == [(None, 1, 6), (None, 2, 6), (None, 1, 6)]
    v = np.float32([[[3, 1, 3, 2, 0, 3]] * 4])
    got = klayers.Model(x, [values, indices] + pieces).predict(v, verbose=0)
    np.testing.assert_array_equal(got[1][0, 0], [0, 2])  # ties: the lower index first
    np.testing.assert_array_equal(np.concatenate(got[2:], axis=1), v)


def test_mod_takes_numbers_as_tensorflow_converts_them():
    h = klayers.Input((3,), dtype="float16")
    b = klayers.Input((3,), dtype="bool")
    assert _op("Mod")(h, 0.7).dtype == "float32"
    assert _op("Mod", name="m2")(h, h).dtype == "float16"
    assert _op("Mod", name="m3")(b, b).dtype == "int32"
