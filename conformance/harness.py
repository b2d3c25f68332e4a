"""Shared replay checks: configs compared as Keras wrote them, layers rebuilt and run on
recorded weights and inputs (no TensorFlow here)."""

from __future__ import annotations

import copy
import math
from typing import Any, Dict

import numpy as np

import klayers
from conformance.internals import dialect_scope, keras3_entry


def assert_config_equal(ours: Any, theirs: Any, path: str = "config", rel: float = 1e-6) -> None:
    """Recursive equality; lists and tuples alike; floats to ``rel`` (Keras 2 stores float32-rounded values)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: expected a dict, got {ours!r}"
        assert set(ours) == set(theirs), (
            f"{path}: keys differ; missing {sorted(set(theirs) - set(ours))}, extra {sorted(set(ours) - set(theirs))}"
        )
        for k in theirs:
            assert_config_equal(ours[k], theirs[k], f"{path}.{k}", rel)
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)), f"{path}: expected a sequence, got {ours!r}"
        assert len(ours) == len(theirs), f"{path}: length {len(ours)} != {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_config_equal(a, b, f"{path}[{i}]", rel)
    elif isinstance(theirs, float) and not isinstance(theirs, bool):
        assert isinstance(ours, (int, float)) and not isinstance(ours, bool), f"{path}: {ours!r} != {theirs!r}"
        assert math.isclose(ours, theirs, rel_tol=rel, abs_tol=1e-12), f"{path}: {ours!r} != {theirs!r}"
    else:
        assert ours == theirs and type(ours) is type(theirs) or (ours == theirs and isinstance(theirs, int) and isinstance(ours, int)), (
            f"{path}: {ours!r} != {theirs!r}"
        )


def configs_equal(a: Any, b: Any) -> bool:
    """Dict/list equality with floats compared to 1e-7 relative (the vocabulary objects' configs)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(configs_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(configs_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-12)
    return a == b and type(a) is type(b)


def assert_close(ours: np.ndarray, theirs: np.ndarray, what: str, rtol: float = 2e-5) -> None:
    """Outputs agree to float32 rounding (scaled by the output's magnitude)."""
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != Keras {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != Keras {theirs.dtype}"
    finite = np.abs(theirs[np.isfinite(theirs)]) if theirs.size else np.zeros(0)
    scale = float(finite.max()) if finite.size else 1.0  # NaN/inf must not loosen the tolerance
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * max(scale, 1.0), err_msg=what)


#: Recurrent layers and cells whose Keras 3 ``seed`` klayers does not keep (see :func:`keras3_expected`).
SEEDLESS_IN_KLAYERS = frozenset({
    "SimpleRNN", "GRU", "LSTM", "SimpleRNNCell", "GRUCell", "LSTMCell", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
})

#: Layers whose ``axis`` klayers (as tf-keras) resolves against the input at build.
AXIS_RESOLVED_AT_BUILD = frozenset({"BatchNormalization", "LayerNormalization"})


def keras3_expected(entry: Any) -> Any:
    """The recorded Keras 3 entry (``{"class_name", "config", ...}``), less what klayers cannot
    write by design; every exception is here:

    - ``seed`` of a recurrent layer or cell is None: tf-keras's recurrent layers and cells take no
      seed and klayers follows their API, so a Keras 3 seed is dropped on reading (it only seeds
      training-time dropout masks, which klayers's generator draws differently anyway).
    - a backward layer given to Bidirectional keeps its own name in Keras 3; tf-keras, and klayers
      with it, prefix it with ``backward_``: klayers writes the name its layer has.
    - the ``axis`` of a built BatchNormalization or LayerNormalization: Keras 3 writes it as
      given (-1), tf-keras, and klayers with it, as resolved against the input at build (3 for a
      rank-4 input): the same axes for the rank the layer was built for (its build config).
    """
    entry = copy.deepcopy(entry)

    def fix(node: Any) -> None:
        if isinstance(node, list):
            for v in node:
                fix(v)
            return
        if not isinstance(node, dict):
            return
        config = node.get("config")
        if isinstance(config, dict):
            if node.get("class_name") in SEEDLESS_IN_KLAYERS and config.get("seed") is not None:
                config["seed"] = None
            build = node.get("build_config") or {}
            if node.get("class_name") in AXIS_RESOLVED_AT_BUILD and "input_shape" in build and "axis" in config:
                rank = len(build["input_shape"])
                axis = config["axis"]
                config["axis"] = axis % rank if isinstance(axis, int) else [a % rank for a in axis]
            backward = config.get("backward_layer") if node.get("class_name") == "Bidirectional" else None
            if isinstance(backward, dict) and not backward["config"]["name"].startswith("backward_"):
                backward["config"]["name"] = "backward_" + backward["config"]["name"]
        for v in node.values():
            fix(v)

    fix(entry)
    return entry


def assert_keras3_config(layer: klayers.Layer, meta: Dict[str, Any]) -> None:
    """What klayers's ``.keras`` writer writes for ``layer`` is what Keras 3 wrote: the config
    (``meta["config"]``) and the entry around it (``meta["serialized"]``: module, class name,
    registered name, build config), less the exceptions of :func:`keras3_expected`."""
    ours = keras3_entry(layer)
    theirs = keras3_expected(dict(meta["serialized"], config=meta["config"]))
    assert_config_equal(ours["config"], theirs["config"], "keras3 config")
    assert_config_equal({k: v for k, v in ours.items() if k != "config"},
                        {k: v for k, v in theirs.items() if k != "config"}, "keras3 entry")


def replay_layer_case(meta: Dict[str, Any], arrays: Dict[str, np.ndarray], dialect: str = "keras2") -> klayers.Layer:
    """Rebuild the recorded layer from Keras's config, load Keras's weights, and check outputs,
    output shape, config round trip and weight count/names against the recording."""
    version = 3 if dialect == "keras3" else 2
    config = {"class_name": meta["class_name"], "config": meta["config"]}
    # Keras stores a Lambda's Python function as marshalled code: loading it is an opt-in.
    safe_mode = False if meta["class_name"] == "Lambda" else None
    with dialect_scope(version):
        layer = klayers.layers.deserialize(config, safe_mode=safe_mode)
    batches = meta["batches"]
    first = arrays[f"x_b{batches[0]}"]
    build_config = meta.get("serialized", {}).get("build_config")
    if build_config:  # as a model loader builds it, with the shapes Keras was built with
        layer.build_from_config(build_config)
    layer(first)
    n = meta["n_weights"]
    assert len(layer.weights) == n, f"{len(layer.weights)} weights, Keras has {n}"
    if "weight_names" in meta:
        assert [w.name for w in layer.weights] == meta["weight_names"]
    layer.set_weights([arrays[f"w{i}"] for i in range(n)])
    for b in batches:
        assert_close(layer(arrays[f"x_b{b}"]), arrays[f"y_b{b}"], f"output at batch {b}")
    assert list(layer.compute_output_shape((None,) + first.shape[1:])) == meta["output_shape"]
    if version == 2:
        ours, theirs = layer.get_config(), dict(meta["config"])
        if meta["class_name"] == "Lambda":  # same code, but a different module name and marshal bytes
            for key in ("module", "function"):
                ours.pop(key)
                theirs.pop(key)
        assert_config_equal(ours, theirs)
        if meta["class_name"] != "Lambda":
            assert_config_equal(klayers.layers.serialize(layer), meta["serialized"], "serialized")
        if "losses" in meta:
            layer(arrays[f"x_b{batches[-1]}"])
            np.testing.assert_allclose(sorted(layer.losses), sorted(meta["losses"]), rtol=1e-5)
    else:
        assert_keras3_config(layer, meta)
    # the config round trip: klayers's own config rebuilds the same layer
    again = klayers.layers.deserialize(klayers.layers.serialize(layer), safe_mode=safe_mode)
    again(first)
    again.set_weights(layer.get_weights())
    assert_close(again(first), np.asarray(layer(first)), "round-trip output")
    return layer
