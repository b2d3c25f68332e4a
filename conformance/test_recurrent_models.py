"""Replay of whole recurrent models recorded from tf-keras (conformance/cases/recurrent_models.py):
each model is rebuilt from Keras's ``to_json()``, loaded with Keras's weights and predicts what
Keras predicted, call after call (stateful models keep their states across predict calls until
``reset_states()``); the masks every layer computes, and the symbolic masks of the model's
tensors, are Keras's; the config written back is Keras's."""

from __future__ import annotations

import json
from typing import Any, Dict

import numpy as np
import pytest

import klayers
from conformance import refs
from conformance.harness import assert_close, assert_config_equal
from klayers.engine.node import flatten
from klayers.layers import Layer

FAMILY = "recurrent_models"
K2 = refs.cases(FAMILY, "keras2")
K3 = refs.cases(FAMILY, "keras3")
IDS = [c[0] for c in K2]


def _known_gaps() -> Dict[str, str]:
    """Keras behaviour klayers lacks today, as strict expected failures that lift themselves
    (the marker goes away) once klayers gains it."""
    from klayers.layers.keras3_ops import KERAS3_OPS

    gaps = {}
    if "Any" not in KERAS3_OPS:
        gaps["keras3_any_op"] = (
            "Keras 3 writes Masking's mask as op nodes not_equal -> any(axis=-1) (class_name 'Any', "
            "module keras.src.ops.numpy); klayers.layers.keras3_ops has no 'Any'")
    probe = klayers.layers.Masking()(klayers.Input((2, 3)))
    if getattr(probe, "_keras_mask", None) is None:
        gaps["symbolic_masks"] = (
            "klayers's symbolic calls (Layer._symbolic_call) never set KerasTensor._keras_mask; tf-keras's "
            "_set_mask_metadata sets it from compute_mask on the symbolic inputs")
    probe_states = klayers.layers.RNN(
        klayers.layers.StackedRNNCells([klayers.layers.LSTMCell(2), klayers.layers.GRUCell(2)]), return_state=True
    )(klayers.Input((3, 2)))
    if len(probe_states) != 3:
        gaps["nested_cell_states"] = (
            "RNN(StackedRNNCells, return_state=True): tf-keras nests the states per cell ([y, [h, c], h2]); "
            "klayers returns them flat ([y, h, c, h2])")
    return gaps


GAPS = _known_gaps()
K3_GAPS: Dict[str, str] = {}


def _xfail(gap: str) -> Any:
    return pytest.mark.xfail(strict=True, raises=(AssertionError, ValueError), reason=GAPS[gap])


def _k3_param(name: str, meta: Dict[str, Any]) -> Any:
    ops = {layer["class_name"] for layer in meta["json"]["config"].get("layers", [])}
    marks = [_xfail("keras3_any_op")] if "Any" in ops and "keras3_any_op" in GAPS else []
    if name in K3_GAPS:
        marks.append(_xfail(K3_GAPS[name]))
    return pytest.param("keras3", name, meta, marks=marks, id=f"keras3-{name}")


BOTH = [pytest.param("keras2", n, m, id=f"keras2-{n}") for n, m in K2] + [_k3_param(n, m) for n, m in K3]
MASKED = [c for c in K2 if "mask_layers" in c[1]]
SYMBOLIC_GAPS = {"stacked_lstm_gru_cells_state": "nested_cell_states"}
MASKED_SYMBOLIC = [
    pytest.param(n, m, id=n, marks=[_xfail(g) for g in ("symbolic_masks", SYMBOLIC_GAPS.get(n)) if g in GAPS])
    for n, m in MASKED
]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class MinimalCell(Layer):
    """The user-written cell of the recording (same maths, in NumPy):
    ``z = x K + h R + b``, ``c' = 0.5 c + tanh(z)``, ``h' = tanh(c') * sigmoid(z)``; states [h, c]."""

    def __init__(self, units: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape: Any) -> None:
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(self.units, self.units),
                                                initializer="orthogonal")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.built = True

    def call(self, inputs: np.ndarray, states: Any) -> Any:
        h, c = states
        z = inputs @ self.kernel.value + h @ self.recurrent_kernel.value + self.bias.value
        c2 = 0.5 * c + np.tanh(z)
        out = np.tanh(c2) * _sigmoid(z)
        return out, [out, c2]

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"units": self.units})
        return config


CUSTOM = {"MinimalCell": MinimalCell}


def _load(name: str, meta: Dict[str, Any], dialect: str = "keras2"):
    arrays = refs.arrays(FAMILY, name, dialect)
    # by the name Keras registered (Keras 3: "package>Class") and by the class name klayers writes back
    custom = {k: CUSTOM[v] for k, v in (meta.get("custom") or {}).items()}
    custom.update({v: CUSTOM[v] for v in (meta.get("custom") or {}).values()})
    objects = dict(custom)
    model = klayers.models.model_from_json(json.dumps(meta["json"]), custom_objects=objects or None)
    model.set_weights([arrays[f"w{i}"] for i in range(meta["n_weights"])])
    return model, arrays, objects


def _feed(arrays: Dict[str, np.ndarray], i: int, call: Dict[str, Any]) -> Any:
    xs = [arrays[f"x{i}_{k}"] for k in range(call["n_inputs"])]
    return xs if len(xs) > 1 else xs[0]


def _structure(out: Any, counter: Any) -> Any:
    if isinstance(out, (list, tuple)):
        return [_structure(o, counter) for o in out]
    return next(counter)


def _replay_calls(model: Any, arrays: Dict[str, np.ndarray], meta: Dict[str, Any], what: str) -> None:
    for i, call in enumerate(meta["calls"]):
        if call["reset_before"]:
            model.reset_states()
        out = model.predict(_feed(arrays, i, call), batch_size=call["batch_size"], verbose=0)
        assert isinstance(out, list) == call["outputs_are_list"], f"{what} call {i}: list output"
        outs = list(flatten(out))
        assert _structure(out, iter(range(len(outs)))) == call["structure"], f"{what} call {i}: output nesting"
        assert len(outs) == call["n_outputs"], f"{what} call {i}: {len(outs)} outputs, Keras has {call['n_outputs']}"
        for k, y in enumerate(outs):
            assert_close(y, arrays[f"y{i}_{k}"], f"{what} call {i} output {k}", rtol=1e-4)


@pytest.mark.parametrize("dialect,name,meta", BOTH)
def test_predictions_match_keras(dialect, name, meta):
    model, arrays, custom = _load(name, meta, dialect)
    if dialect == "keras2":
        assert [w.name for w in model.weights] == meta["weight_names"]
    assert [list(w.shape) for w in model.weights] == meta["weight_shapes"]
    _replay_calls(model, arrays, meta, name)
    if dialect == "keras3":  # the model klayers writes back (Keras 2 dialect) predicts the same
        again = klayers.models.model_from_json(model.to_json(), custom_objects=custom or None)
        again.set_weights([arrays[f"w{i}"] for i in range(meta["n_weights"])])
        _replay_calls(again, arrays, meta, "round trip")


@pytest.mark.parametrize("name,meta", K2, ids=IDS)
def test_config_matches_keras(name, meta):
    model, arrays, custom = _load(name, meta)
    ours = json.loads(model.to_json())
    assert ours["class_name"] == meta["json"]["class_name"]
    theirs = meta["json"]["config"]
    if custom:  # Keras writes the recording module's name for the user's class
        ours, theirs = _drop_module(ours["config"]), _drop_module(theirs)
    else:
        ours = ours["config"]
    assert_config_equal(ours, theirs)
    shape = model.output_shape
    assert _lists(shape) == meta["model_output_shape"]
    # klayers's own JSON rebuilds a model that predicts the same
    again = klayers.models.model_from_json(model.to_json(), custom_objects=custom or None)
    again.set_weights([arrays[f"w{i}"] for i in range(meta["n_weights"])])
    _replay_calls(again, arrays, meta, "round trip")


def _lists(x: Any) -> Any:
    return [_lists(v) for v in x] if isinstance(x, (list, tuple)) else x


def _drop_module(config: Any) -> Any:
    if isinstance(config, dict):
        if config.get("class_name") in CUSTOM:
            return {k: _drop_module(v) for k, v in config.items() if k != "module"}
        return {k: _drop_module(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_drop_module(v) for v in config]
    return config


def _sub_model_mask(model: Any, layer: Any, x: Any) -> list:
    sub = klayers.Model(model.inputs, layer.output)
    masks = sub.compute_mask(x)
    if not isinstance(masks, (list, tuple)):
        masks = [masks]
    return list(klayers.engine.node.flatten(list(masks))) if masks else [None]


@pytest.mark.parametrize("name,meta", MASKED, ids=[c[0] for c in MASKED])
def test_masks_match_keras(name, meta):
    model, arrays, _ = _load(name, meta)
    x = _feed(arrays, 0, meta["calls"][0])
    for j, info in enumerate(meta["mask_layers"]):
        layer = model.get_layer(info["name"])
        masks = _sub_model_mask(model, layer, x)
        if all(m is None for m in masks):  # no output carries a mask
            masks = [None] * len(info["has_mask"])
        assert [m is not None for m in masks] == info["has_mask"], f"{info['name']}: which outputs carry a mask"
        for k, m in enumerate(masks):
            if m is not None:
                want = arrays[f"mask_{j}_{k}"]
                got = np.asarray(m)
                assert got.shape == want.shape and got.dtype == want.dtype, f"{info['name']} mask {k}: {got.shape} {got.dtype}"
                np.testing.assert_array_equal(got, want, err_msg=f"{info['name']} mask {k}")


@pytest.mark.parametrize("name,meta", MASKED_SYMBOLIC)
def test_symbolic_masks_match_keras(name, meta):
    model, _, _ = _load(name, meta)
    for layer_name, want in meta["layer_output_masks"].items():
        layer = model.get_layer(layer_name)
        outs = layer.output if isinstance(layer.output, list) else [layer.output]
        got = [None if getattr(o, "_keras_mask", None) is None else list(o._keras_mask.shape) for o in outs]
        assert got == want, f"{layer_name}: symbolic output masks {got} != Keras {want}"
        masks = layer.output_mask
        masks = masks if isinstance(masks, list) else [masks]
        assert [m is None for m in masks] == [w is None for w in want], f"{layer_name}.output_mask"
