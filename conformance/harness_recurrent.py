"""Replay of recurrent and wrapper cases (conformance/cases/recurrent.py, wrappers.py): the layer
is rebuilt from Keras's config, loaded with Keras's weights, and called as Keras was called
(masks, initial states, stateful calls with a reset); every output is compared."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

import klayers
from conformance.harness import assert_close, assert_config_equal, assert_keras3_config
from conformance.internals import dialect_scope, flatten


def _calls(layer: Any, meta: Dict[str, Any], arrays: Dict[str, np.ndarray], what: str) -> None:
    for i, call in enumerate(meta["calls"]):
        if call.get("reset_before"):
            layer.reset_states()
        kwargs = {}
        if f"m{i}" in arrays:
            kwargs["mask"] = arrays[f"m{i}"]
        if call.get("n_states"):
            kwargs["initial_state"] = [arrays[f"s{i}_{k}"] for k in range(call["n_states"])]
        outs = layer(arrays[f"x{i}"], **kwargs)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        outs = list(flatten(outs))
        assert len(outs) == call["n_outputs"], f"{what} call {i}: {len(outs)} outputs, Keras has {call['n_outputs']}"
        for k, o in enumerate(outs):
            assert_close(o, arrays[f"y{i}_{k}"], f"{what} call {i} output {k}", rtol=1e-4)


def replay_rnn_case(meta: Dict[str, Any], arrays: Dict[str, np.ndarray], dialect: str = "keras2") -> klayers.Layer:
    """Rebuild, load weights, replay the recorded calls; config equality and round trip."""
    version = 3 if dialect == "keras3" else 2
    config = {"class_name": meta["class_name"], "config": meta["config"]}
    with dialect_scope(version):
        layer = klayers.layers.deserialize(config)
    x0 = arrays["x0"]
    build_config = meta["serialized"].get("build_config")
    if build_config:  # as a model loader builds it
        layer.build_from_config(build_config)
    else:
        layer(np.zeros_like(x0))
    n = meta["n_weights"]
    assert len(layer.weights) == n, f"{len(layer.weights)} weights, Keras has {n}"
    if meta.get("weight_names"):
        assert [w.name for w in layer.weights] == meta["weight_names"]
    weights = [arrays[f"w{i}"] for i in range(n)]
    layer.set_weights(weights)
    if meta.get("stateful"):
        layer.reset_states()
    _calls(layer, meta, arrays, meta["class_name"])
    if meta.get("output_shape") is not None:
        shape = (None,) + x0.shape[1:]
        out = layer.compute_output_shape(shape)
        want = meta["output_shape"]
        got = [list(s) for s in out] if isinstance(out, list) else list(out)
        assert got == want, f"compute_output_shape {got} != Keras {want}"
    if version == 2:
        assert_config_equal(layer.get_config(), meta["config"])
        assert_config_equal(klayers.layers.serialize(layer), meta["serialized"], "serialized")
    else:
        assert_keras3_config(layer, meta)
    again = klayers.layers.deserialize(klayers.layers.serialize(layer))
    again(np.zeros_like(x0))
    again.set_weights(weights)
    if meta.get("stateful"):
        again.reset_states()
    _calls(again, meta, arrays, "round trip")
    return layer
