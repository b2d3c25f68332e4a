"""Shared replay checks: configs compared as Keras wrote them, layers rebuilt and run on
recorded weights and inputs (no TensorFlow here)."""

from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np

import klayers
from conformance.internals import dialect_scope


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
    # the config round trip: klayers's own config rebuilds the same layer
    again = klayers.layers.deserialize(klayers.layers.serialize(layer), safe_mode=safe_mode)
    again(first)
    again.set_weights(layer.get_weights())
    assert_close(again(first), np.asarray(layer(first)), "round-trip output")
    return layer
