"""Replay checks for the layer families of issue 3 (core, embeddings, merge, advanced
activations, normalization, noise): several inputs, integer inputs, input and output masks,
training mode (outputs and the weights Keras held after the call), and functional models
whose output masks Keras recorded. No TensorFlow here."""

from __future__ import annotations

import json
from typing import Any, Dict

import numpy as np

import klayers
from conformance.harness import assert_close, assert_config_equal, assert_keras3_config
from conformance.internals import dialect_scope


def _inputs(meta: Dict[str, Any], arrays: Dict[str, np.ndarray], b: int) -> Any:
    n = meta["n_inputs"]
    if n == 0:
        return arrays[f"x0_b{b}"]
    return [arrays[f"x{i}_b{b}"] for i in range(n)]


def _mask(meta: Dict[str, Any], arrays: Dict[str, np.ndarray], b: int) -> Any:
    if b not in meta.get("masks", []):
        return None
    n = max(meta["n_inputs"], 1)
    masks = [arrays.get(f"m{i}_b{b}") for i in range(n)]
    return masks if meta["n_inputs"] else masks[0]


def _shape(s: Any) -> Any:
    if isinstance(s, (list, tuple)) and s and isinstance(s[0], (list, tuple)):
        return [_shape(t) for t in s]
    return list(s)


def replay_case(meta: Dict[str, Any], arrays: Dict[str, np.ndarray], dialect: str = "keras2") -> klayers.Layer:
    """Rebuild the recorded layer from Keras's config, load Keras's weights, then for every
    batch compare the output (with the recorded mask and ``training`` flag), the output mask,
    and in training the weights after the call; then the output shape, the config and
    ``serialize`` output (Keras 2), the activity losses, and the config round trip."""
    version = 3 if dialect == "keras3" else 2
    with dialect_scope(version):
        layer = klayers.layers.deserialize({"class_name": meta["class_name"], "config": meta["config"]})
    batches = meta["batches"]
    first = _inputs(meta, arrays, batches[0])
    layer(first)
    n = meta["n_weights"]
    assert len(layer.weights) == n, f"{len(layer.weights)} weights, Keras has {n}"
    if "weight_names" in meta and version == 2:
        assert [w.name for w in layer.weights] == meta["weight_names"]
    weights = [arrays[f"w{i}"] for i in range(n)]
    layer.set_weights(weights)
    training = meta.get("training")
    for b in batches:
        if training and weights:
            layer.set_weights(weights)
        kwargs: Dict[str, Any] = {}
        mask = _mask(meta, arrays, b)
        if mask is not None:
            kwargs["mask"] = mask
        if training is not None:
            kwargs["training"] = training
        x = _inputs(meta, arrays, b)
        out, out_mask = layer._eager_call(x, training=training, mask=mask)
        assert_close(out, arrays[f"y_b{b}"], f"output at batch {b}")
        if training and weights:  # a training call may change weights its output depends on (SpectralNormalization)
            layer.set_weights(weights)
        assert_close(layer(x, **kwargs), arrays[f"y_b{b}"], f"__call__ output at batch {b}")
        if f"mask_b{b}" in arrays:
            assert out_mask is not None, f"Keras gave an output mask at batch {b}, klayers none"
            np.testing.assert_array_equal(np.asarray(out_mask), arrays[f"mask_b{b}"], err_msg=f"output mask at batch {b}")
        else:
            assert out_mask is None, f"klayers gave an output mask at batch {b}, Keras none"
        if training:
            layer.set_weights(weights)
            layer(x, **kwargs)
            for i, w in enumerate(layer.get_weights()):
                assert_close(w, arrays[f"wt{b}_{i}"], f"weight {i} after the training call at batch {b}", rtol=1e-5)
    in_shapes = [tuple([None] + list(np.shape(x)[1:])) for x in (first if meta["n_inputs"] else [first])]
    shape = layer.compute_output_shape(in_shapes if meta["n_inputs"] else in_shapes[0])
    assert _shape(shape) == meta["output_shape"], f"output shape {shape} != Keras {meta['output_shape']}"
    if version == 2:
        assert_config_equal(layer.get_config(), meta["config"])
        assert_config_equal(klayers.layers.serialize(layer), meta["serialized"], "serialized")
        if meta.get("losses"):
            layer.set_weights(weights)
            layer(_inputs(meta, arrays, batches[-1]))
            np.testing.assert_allclose(sorted(layer.losses), sorted(meta["losses"]), rtol=1e-5)
    else:
        assert_keras3_config(layer, meta)
    # the config round trip: klayers's own config rebuilds the same layer, with the same weights
    again = klayers.layers.deserialize(klayers.layers.serialize(layer))
    again(first)
    layer.set_weights(weights)
    again.set_weights(layer.get_weights())
    assert_close(again(first), np.asarray(layer(first)), "round-trip output")
    return layer


def replay_model(meta: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> klayers.Model:
    """Rebuild a recorded functional model from its config, load Keras's weights, and compare
    its outputs and output masks (``Model.compute_mask``) with Keras's."""
    config = {"class_name": meta["class_name"], "config": meta["model_config"]}
    model = klayers.models.model_from_json(json.dumps(config))
    model.set_weights([arrays[f"w{i}"] for i in range(meta["n_weights"])])
    xs = [arrays[f"x{i}"] for i in range(meta["n_inputs"])]
    x = xs if len(xs) > 1 else xs[0]
    out = model(x)
    outs = out if isinstance(out, list) else [out]
    for i, y in enumerate(outs):
        assert_close(y, arrays[f"y{i}"], f"output {i}")
    mask = model.compute_mask(x, None)
    masks = mask if isinstance(mask, list) else [mask]
    for i in range(meta["n_outputs"]):
        if f"mask{i}" in arrays:
            assert masks[i] is not None, f"Keras gave output {i} a mask, klayers none"
            np.testing.assert_array_equal(np.asarray(masks[i]), arrays[f"mask{i}"], err_msg=f"mask of output {i}")
        else:
            assert i >= len(masks) or masks[i] is None, f"klayers gave output {i} a mask, Keras none"
    assert_config_equal(model.get_config(), meta["model_config"], "model config")
    return model
