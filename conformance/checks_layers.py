"""Replay checks of single layers recorded from real Keras: the shared ones (``harness*.py``) as
one-argument checks of a :class:`~conformance.refs.Case`, and the checks that really differ by
family (pooling's exact comparison and error cases, DepthwiseConv3D against a grouped Conv3D,
locally-connected weight layouts and model files, one ConvLSTM cell step)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import klayers
from conformance.harness import (
    assert_close,
    assert_config_equal,
    assert_keras3_config,
    replay_layer_case,
)
from conformance.harness_core import replay_case, replay_model
from conformance.harness_recurrent import replay_rnn_case
from conformance.internals import dialect_scope
from conformance.refs import Case


# -- the shared replays ----------------------------------------------------------------------------
def layer(case: Case) -> None:
    """A layer recorded by ``_layer_case``: outputs, shape, weights, config, round trip."""
    replay_layer_case(case.meta, case.arrays(), case.dialect)


def layer_call(case: Case) -> None:
    """A layer recorded by ``record_layer``: several inputs, masks, training, output masks."""
    replay_case(case.meta, case.arrays(), case.dialect)


def functional_model(case: Case) -> None:
    """A small functional model recorded by ``record_model``: outputs and output masks."""
    replay_model(case.meta, case.arrays())


def rnn_layer(case: Case) -> None:
    """A recurrent layer or wrapper called as Keras called it (masks, states, stateful calls)."""
    replay_rnn_case(case.meta, case.arrays(), case.dialect)


# -- convolutional ---------------------------------------------------------------------------------
def depthwise_conv3d(case: Case) -> None:
    """DepthwiseConv3D (no Keras counterpart) replays Keras's Conv3D(groups=channels) outputs with
    the grouped kernel reshaped to the depthwise layout ``(*k, channels, multiplier)``."""
    meta, arrays = case.meta, case.arrays()
    dw = klayers.layers.DepthwiseConv3D(**meta["depthwise_kwargs"])
    first = arrays[f"x_b{meta['batches'][0]}"]
    dw(first)
    assert len(dw.weights) == meta["n_weights"]
    dw.set_weights([arrays[f"w{i}"] for i in range(meta["n_weights"])])
    for b in meta["batches"]:
        assert_close(dw(arrays[f"x_b{b}"]), arrays[f"y_b{b}"], f"output at batch {b}")
    assert list(dw.compute_output_shape((None,) + first.shape[1:])) == meta["output_shape"]
    again = klayers.layers.deserialize(klayers.layers.serialize(dw))
    again(first)
    again.set_weights(dw.get_weights())
    np.testing.assert_array_equal(again(first), dw(first))


# -- pooling ---------------------------------------------------------------------------------------
def _exact(ours: np.ndarray, theirs: np.ndarray, class_name: str, what: str) -> None:
    """Max pooling exactly (NaN where Keras has NaN, TensorFlow's lowest-value result for windows
    of NaN or -inf), averages to float rounding."""
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, f"{what}: {ours.shape} {ours.dtype} vs {theirs.shape} {theirs.dtype}"
    if "Max" in class_name:
        np.testing.assert_array_equal(ours, theirs, err_msg=what)
    else:
        finite = theirs[np.isfinite(theirs)]
        scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
        tol = 1e-5 if theirs.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * scale, err_msg=what)


def pooling_layer(case: Case) -> None:
    """The shared layer replay, then every output element by element (:func:`_exact`)."""
    meta, arrays = case.meta, case.arrays()
    replayed = replay_layer_case(meta, arrays, case.dialect)
    for b in meta["batches"]:
        _exact(replayed(arrays[f"x_b{b}"]), arrays[f"y_b{b}"], meta["class_name"], f"{case.name} batch {b}")


def pooling_masked(case: Case) -> None:
    """GlobalAveragePooling1D with a mask, called directly and through a functional model."""
    meta, arrays = case.meta, case.arrays()
    with dialect_scope(case.version):
        pool = klayers.layers.deserialize({"class_name": meta["class_name"], "config": meta["config"]})
    assert_config_equal(pool.get_config(), meta["config"])
    y = pool(arrays["x"], mask=arrays["mask"])
    _exact(y, arrays["y"], meta["class_name"], case.name)
    assert pool.compute_mask(arrays["x"], arrays["mask"]) is None and meta["output_mask"] is None
    # the same through a functional model: a Masking-free graph passes the mask explicitly
    inp = klayers.Input(arrays["x"].shape[1:])
    mask_in = klayers.Input(arrays["mask"].shape[1:], dtype="bool")
    model = klayers.Model([inp, mask_in], pool(inp, mask=mask_in))
    _exact(model.predict([arrays["x"], arrays["mask"]], verbose=0), arrays["y"], meta["class_name"], case.name + " (model)")


def pooling_error(case: Case) -> None:
    """Keras raises ValueError on the symbolic call; klayers raises it eagerly and symbolically."""
    meta = case.meta
    assert meta["keras_error"] == "ValueError"
    shape = tuple(meta["input_shape"])
    with dialect_scope(case.version):
        pool = klayers.layers.deserialize({"class_name": meta["class_name"], "config": meta["config"]})
    with pytest.raises(ValueError) as eager:
        pool(np.zeros(shape, "float32"))
    with dialect_scope(case.version):
        pool = klayers.layers.deserialize({"class_name": meta["class_name"], "config": meta["config"]})
    with pytest.raises(ValueError):
        pool(klayers.Input(batch_shape=shape))
    message = str(eager.value)
    if "incompatible" in meta["keras_message"]:
        assert "expected ndim" in message
    elif "reduction axis" in meta["keras_message"]:
        assert "reduction axis" in message
    else:
        assert "larger than the input" in message and pool.name.split("_")[0] in message.lower()


# -- locally connected -----------------------------------------------------------------------------
def local_layer(case: Case) -> None:
    """The shared layer replay, and the weights in Keras's layout for the implementation."""
    replayed = replay_layer_case(case.meta, case.arrays(), case.dialect)
    assert [list(w.shape) for w in replayed.weights] == case.meta["weight_shapes"]


def local_model_file(case: Case, tmp_path) -> None:
    """A model of stacked locally-connected layers saved by tf-keras (.h5 or .keras) loads and
    predicts what tf-keras predicted."""
    meta, arrays = case.meta, case.arrays()
    path = tmp_path / f"model.{meta['fmt']}"
    path.write_bytes(arrays["model_file"].tobytes())
    model = klayers.models.load_model(str(path))
    assert len(model.weights) == meta["n_weights"]
    assert {type(lay).__name__ for lay in model.layers} >= set(meta["class_names"]) - {"InputLayer"}
    assert_close(model.predict(arrays["x"]), arrays["y"], f"{case.name} prediction")
    assert_close(model(arrays["x"][:1]), arrays["y"][:1], f"{case.name} at batch 1")
    assert np.all(np.isfinite(arrays["y"]))


# -- recurrent convolutions ------------------------------------------------------------------------
def convlstm_cell(case: Case) -> None:
    """One step of a ConvLSTM cell against Keras's ``ConvLSTMCell(rank=n)``."""
    meta, arrays = case.meta, case.arrays()
    cell = klayers.layers.deserialize({"class_name": meta["class_name"], "config": meta["config"]})
    x = arrays["x"]
    cell._maybe_build_from_shape(x.shape)
    assert len(cell.weights) == meta["n_weights"]
    cell.set_weights([arrays[f"w{i}"] for i in range(meta["n_weights"])])
    h, (h2, c) = cell.call(x, [arrays["h0"], arrays["c0"]])
    assert_close(h, arrays["h"], "h", rtol=1e-4)
    assert_close(h2, arrays["h"], "state h", rtol=1e-4)
    assert_close(c, arrays["c"], "c", rtol=1e-4)
    assert_config_equal(cell.get_config(), meta["config"])
    again = type(cell).from_config(cell.get_config())
    again._maybe_build_from_shape(x.shape)
    again.set_weights(cell.get_weights())
    np.testing.assert_array_equal(again.call(x, [arrays["h0"], arrays["c0"]])[0], h)


# -- attention -------------------------------------------------------------------------------------
def _mha_inputs(meta, arrays, b):
    """The call of a recorded MultiHeadAttention case at batch ``b``: ``(query, value, kwargs)``
    with the Keras masks the recorder attached to the tensors passed as ``<arg>_mask``."""
    q = arrays[f"q_b{b}"]
    v = q if meta["self_attention"] else arrays[f"v_b{b}"]
    kw = {}
    if meta["key"]:
        kw["key"] = arrays[f"k_b{b}"]
    if meta["attention_mask"]:
        kw["attention_mask"] = arrays[f"am_b{b}"]
    if meta["scores"]:
        kw["return_attention_scores"] = True
    if meta["causal"]:
        kw["use_causal_mask"] = True
    if meta["training"] is not None:
        kw["training"] = meta["training"]
    for which in ("query", "value", "key"):
        if f"{which[0]}m_b{b}" in arrays:
            kw[f"{which}_mask"] = arrays[f"{which[0]}m_b{b}"]
    if meta["self_attention"] and "query_mask" in kw:
        kw["value_mask"] = kw["query_mask"]  # the same tensor, with its mask, was the value
    return q, v, kw


def mha_call(case: Case) -> None:
    """A MultiHeadAttention (or Keras 3's GroupQueryAttention, recorded alike) called as Keras
    called it (key, attention mask, Keras masks of the inputs, causal mask, attention scores): outputs and scores at every batch, weights (count,
    names in tf-keras), output shape, the config as Keras wrote it, and the config round trip."""
    meta, arrays = case.meta, case.arrays()
    with dialect_scope(case.version):
        layer = klayers.layers.deserialize({"class_name": meta["class_name"], "config": meta["config"]})
    batches = meta["batches"]
    q, v, kw = _mha_inputs(meta, arrays, batches[0])
    layer(q, v, **kw)
    n = meta["n_weights"]
    assert len(layer.weights) == n, f"{len(layer.weights)} weights, Keras has {n}"
    if case.version == 2:
        assert [w.name for w in layer.weights] == meta["weight_names"]
    weights = [arrays[f"w{i}"] for i in range(n)]
    layer.set_weights(weights)
    for b in batches:
        q, v, kw = _mha_inputs(meta, arrays, b)
        out = layer(q, v, **kw)
        if meta["scores"]:
            out, scores = out
            assert_close(scores, arrays[f"s_b{b}"], f"attention scores at batch {b}")
        assert_close(out, arrays[f"y_b{b}"], f"output at batch {b}")
    if meta["output_shape"] is not None:
        shape = layer.compute_output_shape((None,) + q.shape[1:], (None,) + v.shape[1:])
        assert list(shape) == meta["output_shape"], f"output shape {shape} != Keras {meta['output_shape']}"
    if case.version == 2:
        assert_config_equal(layer.get_config(), meta["config"])
        assert_config_equal(klayers.layers.serialize(layer), meta["serialized"], "serialized")
    else:
        assert_keras3_config(layer, meta)
    again = klayers.layers.deserialize(klayers.layers.serialize(layer))
    q, v, kw = _mha_inputs(meta, arrays, batches[-1])
    again(q, v, **kw)
    again.set_weights(layer.get_weights())
    ours, theirs = again(q, v, **kw), layer(q, v, **kw)
    for a, b in zip(ours if meta["scores"] else [ours], theirs if meta["scores"] else [theirs]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg="round-trip output")


def einsum_dense_call(case: Case) -> None:
    """EinsumDense through the shared layer replay. One documented exception: tf-keras's
    ``EinsumDense.compute_output_shape`` ignores its argument and returns the shape the layer was
    built for (batch 1 at recording); klayers answers for the shape it is asked about, as Keras
    3 does (a symbolic call after an eager one must not inherit that batch)."""
    meta = dict(case.meta)
    if case.version == 2 and meta["output_shape"]:
        meta["output_shape"] = [None] + list(meta["output_shape"][1:])
    replay_case(meta, case.arrays(), case.dialect)


def _dense_attention_inputs(meta, arrays, b):
    """The call of a recorded Attention / AdditiveAttention case at batch ``b``: ``(inputs, kwargs)``."""
    xs = [arrays[f"x{i}_b{b}"] for i in range(meta["n_inputs"])]
    kw = {}
    if meta["n_masks"]:
        kw["mask"] = [arrays.get(f"m{i}_b{b}") for i in range(meta["n_masks"])]
    if meta["scores"]:
        kw["return_attention_scores"] = True
    if meta["causal"]:
        kw["use_causal_mask"] = True
    if meta["training"] is not None:
        kw["training"] = meta["training"]
    return xs, kw


def dense_attention_call(case: Case) -> None:
    """Attention / AdditiveAttention called as Keras called them (``[query, value(, key)]``, a
    mask list, causal mask, attention scores, inference dropout): outputs, scores and Keras's
    output mask at every batch, weights, output shape, the config as Keras wrote it, and the
    config round trip. tf-keras's deprecated ``causal=True`` is not in its config: the recording
    keeps it apart (``init_extra``). One documented exception: tf-keras's
    ``compute_output_shape`` answers the query's shape even where the value is wider; klayers
    answers the output's real shape (as Keras 3 does)."""
    meta, arrays = case.meta, case.arrays()
    with dialect_scope(case.version), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # causal=True, as tf-keras warns
        layer = klayers.layers.deserialize({"class_name": meta["class_name"],
                                            "config": dict(meta["config"], **meta["init_extra"])})
    batches = meta["batches"]
    xs, kw = _dense_attention_inputs(meta, arrays, batches[0])
    layer(xs, **kw)
    n = meta["n_weights"]
    assert len(layer.weights) == n, f"{len(layer.weights)} weights, Keras has {n}"
    if case.version == 2:
        assert [w.name for w in layer.weights] == meta["weight_names"]
    layer.set_weights([arrays[f"w{i}"] for i in range(n)])
    for b in batches:
        xs, kw = _dense_attention_inputs(meta, arrays, b)
        out = layer(xs, **kw)
        if meta["scores"]:
            out, scores = out
            assert_close(scores, arrays[f"s_b{b}"], f"attention scores at batch {b}")
        assert_close(out, arrays[f"y_b{b}"], f"output at batch {b}")
        assert out.shape == arrays[f"y_b{b}"].shape and out.dtype == arrays[f"y_b{b}"].dtype
        if "mask" in kw:
            ours = layer.compute_mask(xs, kw["mask"])
            if meta["scores"] and isinstance(ours, list):
                assert ours[1] is None
                ours = ours[0]
            if f"mask_b{b}" in arrays:
                np.testing.assert_array_equal(np.asarray(ours), arrays[f"mask_b{b}"], err_msg=f"output mask at batch {b}")
            else:
                assert ours is None, "Keras gives no output mask"
    shape = list(layer.compute_output_shape([(None,) + x.shape[1:] for x in xs]))
    if case.version == 2 and xs[1].shape[-1] != xs[0].shape[-1]:
        assert shape == [None] + list(xs[1].shape[1:-2]) + list(out.shape[-2:])
    else:
        assert shape == meta["output_shape"], f"output shape {shape} != Keras {meta['output_shape']}"
    if case.version == 2:
        assert_config_equal(layer.get_config(), meta["config"])
        assert_config_equal(klayers.layers.serialize(layer), meta["serialized"], "serialized")
    else:
        assert_keras3_config(layer, meta)
    again = klayers.layers.deserialize(klayers.layers.serialize(layer))
    if meta["init_extra"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            again = type(layer).from_config(dict(again.get_config(), **meta["init_extra"]))
    xs, kw = _dense_attention_inputs(meta, arrays, batches[-1])
    again(xs, **kw)
    again.set_weights(layer.get_weights())
    ours, theirs = again(xs, **kw), layer(xs, **kw)
    for a, b in zip(ours if meta["scores"] else [ours], theirs if meta["scores"] else [theirs]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg="round-trip output")
