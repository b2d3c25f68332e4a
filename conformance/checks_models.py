"""Replay checks of whole models recorded from real Keras:

- ``models``: models rebuilt from Keras's ``to_json()`` and ``get_weights()`` predict what Keras
  predicted, write the same config back, and answer the node API as Keras does.
- ``recurrent_models``: recurrent models predict what Keras predicted call after call (stateful
  models keep their states across predict calls until ``reset_states()``); the masks every layer
  computes, and the symbolic masks of the model's tensors, are Keras's; the config written back is
  Keras's.
- ``files``: every file tf-keras 2.21 and Keras 3.15 wrote loads and predicts Keras's outputs;
  weights files load into the model; klayers writes each model back and reads it again.
- ``layer_outputs``: every layer node's outputs of such files, propagated and isolated, are
  Keras's (what ``klayers verify --per-layer`` compares), and a layer given other weights is the
  one it names.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Any, Dict, List

import numpy as np
import pytest

import klayers
from conformance import refs
from conformance.harness import assert_close, assert_config_equal
from conformance.internals import (
    KERAS3_OPS,
    ModelFileError,
    flatten,
    is_keras3_op,
    keras3_snake_case,
    to_snake_case,
)
from conformance.refs import Case
from klayers.inspect.verify import compare_layers
from klayers.layers import Layer
from klayers.models import load_model


def _lists(x: Any) -> Any:
    return [_lists(v) for v in x] if isinstance(x, (list, tuple)) else x


# -- models ----------------------------------------------------------------------------------------
def _load_model(case: Case):
    meta, arrays = case.meta, case.arrays()
    model = klayers.models.model_from_json(json.dumps(meta["json"]))
    model.set_weights([arrays[f"w{i}"] for i in range(len(meta["weight_shapes"]))])
    xs = [arrays[f"x{i}"] for i in range(meta["n_inputs"])]
    return model, arrays, xs


def _answer(fn):
    try:
        return {"value": _lists(fn())}
    except Exception as e:  # noqa: BLE001 - compared with the class Keras raised
        return {"error": type(e).__name__}


def model_predictions(case: Case) -> None:
    meta = case.meta
    model, arrays, xs = _load_model(case)
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    assert isinstance(out, list) == meta["outputs_are_list"]
    outs = out if isinstance(out, list) else [out]
    assert len(outs) == meta["n_outputs"]
    for i, y in enumerate(outs):
        assert_close(y, arrays[f"y{i}"], f"output {i}")
    # __call__ on arrays gives the same as predict: the second call of an input signature is
    # recorded, the third replays the recording (klayers.engine.replay)
    for call in ("second", "third"):
        called = model(xs if len(xs) > 1 else xs[0])
        called = called if isinstance(called, list) else [called]
        for i, y in enumerate(called):
            assert_close(y, arrays[f"y{i}"], f"__call__ output {i} ({call} call)")


def model_structure_and_config(case: Case) -> None:
    meta = case.meta
    model, _, _ = _load_model(case)
    assert [lay.name for lay in model.layers] == meta["layer_names"]
    assert [list(w.shape) for w in model.weights] == meta["weight_shapes"]
    assert [w.name for w in model.weights] == meta["weight_names"]
    assert model.count_params() == meta["count_params"]
    assert _lists(model.input_shape) == meta["model_input_shape"]
    assert _lists(model.output_shape) == meta["model_output_shape"]
    ours = json.loads(model.to_json())
    assert ours["class_name"] == meta["json"]["class_name"]
    assert_config_equal(ours["config"], meta["json"]["config"])


def model_node_api(case: Case) -> None:
    model, _, _ = _load_model(case)
    assert case.meta["node_api"]
    for layer_name, expected in case.meta["node_api"].items():
        lay = model.get_layer(layer_name)
        n = len(lay.inbound_nodes)
        assert n == expected["n_nodes"], layer_name
        got = {
            "n_nodes": n,
            "input_shape": _answer(lambda lay=lay: lay.input_shape),
            "output_shape": _answer(lambda lay=lay: lay.output_shape),
            "input_shape_at": [_answer(lambda i=i, lay=lay: lay.get_input_shape_at(i)) for i in range(n)],
            "output_shape_at": [_answer(lambda i=i, lay=lay: lay.get_output_shape_at(i)) for i in range(n)],
            "out_of_range": _answer(lambda lay=lay, n=n: lay.get_output_at(n)),
        }
        assert got == expected, layer_name


def model_config_round_trip(case: Case) -> None:
    model, _, xs = _load_model(case)
    again = klayers.models.model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    a = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    b = again.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    for u, v in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
        np.testing.assert_array_equal(u, v)


# -- recurrent models ------------------------------------------------------------------------------
def known_gaps() -> Dict[str, str]:
    """Keras behaviour klayers lacks today, as strict expected failures that lift themselves
    (the marker goes away) once klayers gains it."""
    gaps = {}
    if "Any" not in KERAS3_OPS:
        gaps["keras3_any_op"] = (
            "Keras 3 writes Masking's mask as op nodes not_equal -> any(axis=-1) (class_name 'Any', "
            "module keras.src.ops.numpy); klayers's Keras 3 op nodes have no 'Any'")
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


GAPS = known_gaps()
#: Symbolic-mask cases that need a further gap closed (case name -> gap).
SYMBOLIC_GAPS = {"stacked_lstm_gru_cells_state": "nested_cell_states"}


def _xfail(gap: str) -> Any:
    return pytest.mark.xfail(strict=True, raises=(AssertionError, ValueError), reason=GAPS[gap])


def prediction_marks(case: Case) -> List[Any]:
    """Keras 3 models whose masks run through the 'Any' op fail strictly while klayers lacks it."""
    if case.dialect != "keras3":
        return []
    ops = {lay["class_name"] for lay in case.meta["json"]["config"].get("layers", [])}
    return [_xfail("keras3_any_op")] if "Any" in ops and "keras3_any_op" in GAPS else []


def symbolic_mask_marks(case: Case) -> List[Any]:
    return [_xfail(g) for g in ("symbolic_masks", SYMBOLIC_GAPS.get(case.name)) if g in GAPS]


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


def _load_recurrent(case: Case):
    meta, arrays = case.meta, case.arrays()
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
    assert meta["calls"]
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


def recurrent_predictions(case: Case) -> None:
    meta = case.meta
    model, arrays, custom = _load_recurrent(case)
    if case.dialect == "keras2":
        assert [w.name for w in model.weights] == meta["weight_names"]
    assert [list(w.shape) for w in model.weights] == meta["weight_shapes"]
    _replay_calls(model, arrays, meta, case.name)
    if case.dialect == "keras3":  # the model klayers writes back (Keras 2 dialect) predicts the same
        again = klayers.models.model_from_json(model.to_json(), custom_objects=custom or None)
        again.set_weights([arrays[f"w{i}"] for i in range(meta["n_weights"])])
        _replay_calls(again, arrays, meta, "round trip")


def _drop_module(config: Any) -> Any:
    if isinstance(config, dict):
        if config.get("class_name") in CUSTOM:
            return {k: _drop_module(v) for k, v in config.items() if k != "module"}
        return {k: _drop_module(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_drop_module(v) for v in config]
    return config


def recurrent_config(case: Case) -> None:
    meta = case.meta
    model, arrays, custom = _load_recurrent(case)
    ours = json.loads(model.to_json())
    assert ours["class_name"] == meta["json"]["class_name"]
    theirs = meta["json"]["config"]
    if custom:  # Keras writes the recording module's name for the user's class
        ours, theirs = _drop_module(ours["config"]), _drop_module(theirs)
    else:
        ours = ours["config"]
    assert_config_equal(ours, theirs)
    assert _lists(model.output_shape) == meta["model_output_shape"]
    # klayers's own JSON rebuilds a model that predicts the same
    again = klayers.models.model_from_json(model.to_json(), custom_objects=custom or None)
    again.set_weights([arrays[f"w{i}"] for i in range(meta["n_weights"])])
    _replay_calls(again, arrays, meta, "round trip")


def _sub_model_mask(model: Any, lay: Any, x: Any) -> list:
    sub = klayers.Model(model.inputs, lay.output)
    masks = sub.compute_mask(x)
    if not isinstance(masks, (list, tuple)):
        masks = [masks]
    return list(flatten(list(masks))) if masks else [None]


def recurrent_masks(case: Case) -> None:
    meta = case.meta
    model, arrays, _ = _load_recurrent(case)
    x = _feed(arrays, 0, meta["calls"][0])
    assert meta["mask_layers"]
    for j, info in enumerate(meta["mask_layers"]):
        lay = model.get_layer(info["name"])
        masks = _sub_model_mask(model, lay, x)
        if all(m is None for m in masks):  # no output carries a mask
            masks = [None] * len(info["has_mask"])
        assert [m is not None for m in masks] == info["has_mask"], f"{info['name']}: which outputs carry a mask"
        for k, m in enumerate(masks):
            if m is not None:
                want = arrays[f"mask_{j}_{k}"]
                got = np.asarray(m)
                assert got.shape == want.shape and got.dtype == want.dtype, f"{info['name']} mask {k}: {got.shape} {got.dtype}"
                np.testing.assert_array_equal(got, want, err_msg=f"{info['name']} mask {k}")


def recurrent_symbolic_masks(case: Case) -> None:
    model, _, _ = _load_recurrent(case)
    assert case.meta["layer_output_masks"]
    for layer_name, want in case.meta["layer_output_masks"].items():
        lay = model.get_layer(layer_name)
        outs = lay.output if isinstance(lay.output, list) else [lay.output]
        got = [None if getattr(o, "_keras_mask", None) is None else list(o._keras_mask.shape) for o in outs]
        assert got == want, f"{layer_name}: symbolic output masks {got} != Keras {want}"
        masks = lay.output_mask
        masks = masks if isinstance(masks, list) else [masks]
        assert [m is None for m in masks] == [w is None for w in want], f"{layer_name}.output_mask"


# -- model files -----------------------------------------------------------------------------------
FILE_TOL = 2e-5


def _path(dialect: str, filename: str, family: str = "files") -> str:
    return os.path.join(refs.REFS, dialect, family, filename)


def _io(case: Case):
    arrays, meta = case.arrays(), case.meta
    xs = [arrays[f"x{i}"] for i in range(meta["n_inputs"])]
    ys = [arrays[f"y{i}"] for i in range(meta["n_outputs"])]
    return (xs if len(xs) > 1 else xs[0]), ys


def _check(model: Any, x: Any, ys: List[np.ndarray]) -> None:
    # three calls: the plan, its recording, the recording replayed (klayers.engine.replay)
    for _ in range(3):
        out = model.predict(x, verbose=0)
        out = out if isinstance(out, list) else [out]
        assert len(out) == len(ys)
        for got, want in zip(out, ys):
            assert got.shape == want.shape
            scale = max(1.0, float(np.max(np.abs(want))))
            np.testing.assert_allclose(got, want, rtol=0, atol=FILE_TOL * scale)


def _load_file(case: Case, key: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Lambda fixture's module is not importable here
        return load_model(_path(case.dialect, case.meta["files"][key], case.family), safe_mode=not case.meta["unsafe"])


def file_predicts(case: Case) -> None:
    """Every model file of the case loads with Keras's layers and weights and predicts Keras's outputs."""
    meta = case.meta
    x, ys = _io(case)
    loaded = 0
    for key in ("model_h5", "model_keras"):
        if key in meta["files"]:
            model = _load_file(case, key)
            # Keras 3 lists graph operations (not_equal) apart from its layers
            names = [lay.name for lay in model.layers if not is_keras3_op(lay)]
            assert names == meta["layer_names"]
            assert [list(w.shape) for w in model.weights] == meta["weight_shapes"]
            _check(model, x, ys)
            loaded += 1
    assert loaded >= 1


def file_weights(case: Case) -> None:
    """Every weights file (and model file) of the case loads into the model (also ``by_name``)."""
    meta = case.meta
    x, ys = _io(case)
    model = _load_file(case, "model_h5" if "model_h5" in meta["files"] else "model_keras")
    for key in ("weights_h5", "weights_keras", "model_keras", "model_h5"):
        if key not in meta["files"]:
            continue
        model.set_weights([np.zeros_like(w) for w in model.get_weights()])
        model.load_weights(_path(case.dialect, meta["files"][key], case.family))
        _check(model, x, ys)
    if "weights_h5" in meta["files"]:
        model.set_weights([np.zeros_like(w) for w in model.get_weights()])
        model.load_weights(_path(case.dialect, meta["files"]["weights_h5"], case.family), by_name=True)
        _check(model, x, ys)


def file_written_back(case: Case, tmp_path) -> None:
    """Saved by klayers in every format the model can be written in, read back, same outputs."""
    meta = case.meta
    x, ys = _io(case)
    model = _load_file(case, "model_keras" if "model_keras" in meta["files"] else "model_h5")
    written = 0
    for ext in (".h5", ".keras"):
        path = str(tmp_path / f"m{ext}")
        try:
            model.save(path)
        except ValueError as e:  # a model the other Keras would read with other maths
            assert "hard_sigmoid" in str(e) or "Keras 3" in str(e) or "tf-keras" in str(e)
            continue
        written += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _check(load_model(path, safe_mode=not meta["unsafe"]), x, ys)
    assert written >= 1
    for ext in (".weights.h5", ".w.h5"):
        path = str(tmp_path / f"w{ext}")
        model.save_weights(path)
        before = model.get_weights()
        model.set_weights([np.zeros_like(w) for w in before])
        model.load_weights(path)
        for a, b in zip(model.get_weights(), before):
            np.testing.assert_array_equal(a, b)


def snake_case_rule(case: Case) -> None:
    """klayers's naming rule gives what the recording Keras's ``to_snake_case`` gave on every layer
    class name it has: tf-keras's (layer auto-names) or Keras 3's (``.keras`` object paths, which
    name ``ConvLSTM2D``'s weights ``layers/conv_lstm2d/cell/vars/0``)."""
    rule = to_snake_case if case.dialect == "keras2" else keras3_snake_case
    got = {n: rule(n) for n in case.meta["names"]}
    want = dict(zip(case.meta["names"], case.meta["snake"]))
    assert {n: s for n, s in got.items() if s != want[n]} == {}
    assert len(want) > 100


def file_lambda_refused_in_safe_mode(case: Case) -> None:
    loaded = 0
    for key in ("model_h5", "model_keras"):
        if key in case.meta["files"]:
            with pytest.raises(ModelFileError, match="affine.*safe_mode=False"):
                load_model(_path(case.dialect, case.meta["files"][key]))
            loaded += 1
    assert loaded >= 1


def file_hard_sigmoid_meaning(case: Case) -> None:
    """The same model saved by both Kerases: each file replays its own Keras's maths (checked by
    ``file_predicts``); here the Keras 3 file given the Keras 2 file's weights must still differ
    from the Keras 2 outputs, so the replay can tell the two meanings apart."""
    k2_case = case.other("hard_sigmoid", "keras2")
    k2 = k2_case.arrays()
    m2 = _load_file(k2_case, "model_h5")
    m3 = _load_file(case.other("hard_sigmoid", "keras3"), "model_keras")
    m3.set_weights(m2.get_weights())
    y2, y3 = m2.predict(k2["x0"], verbose=0), m3.predict(k2["x0"], verbose=0)
    np.testing.assert_allclose(y2, k2["y0"], atol=FILE_TOL)
    assert float(np.max(np.abs(y2 - y3))) > 1e-3


def file_training_config_ignored(case: Case, caplog) -> None:
    assert case.meta["compiled"]
    with caplog.at_level(logging.INFO, logger="klayers"):
        load_model(_path(case.dialect, case.meta["files"]["model_h5"]))
    assert "ignored" in caplog.text
    with pytest.warns(UserWarning, match="optimizer state are ignored"):
        load_model(_path(case.dialect, case.meta["files"]["model_h5"]), compile=True)


def file_weights_only_is_not_a_model(case: Case) -> None:
    with pytest.raises(ModelFileError, match="holds only weights"):
        load_model(_path(case.dialect, case.meta["files"]["weights_h5"]))


# -- per-layer outputs (klayers verify --per-layer) -------------------------------------------------
def _layer_case(case: Case):
    arrays, meta = case.arrays(), case.meta
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(os.path.join(refs.REFS, case.dialect, "files", meta["file"]),
                           safe_mode=not meta["unsafe"])
    xs = [arrays[f"x{i}"] for i in range(meta["n_inputs"])]
    keras_outputs = {
        "dialect": case.dialect,
        "layers": {(e["layer"], e["node"], e["output"]): arrays[f"t{i}"] for i, e in enumerate(meta["index"])},
        "model_outputs": [arrays[f"y{i}"] for i in range(meta["n_outputs"])],
    }
    return model, xs, keras_outputs


def _weighted_step_layer(model: Any) -> Any:
    """The first layer with weights, in the order of the graph's depth (the comparison's order)."""
    for node in [n for d in sorted(model._nodes_by_depth, reverse=True) for n in model._nodes_by_depth[d]]:
        if not node.is_input and node.layer.weights:
            return node.layer
    raise AssertionError("the fixture has no layer with weights")


def layer_outputs_agree(case: Case) -> None:
    """Every layer node's outputs, propagated and isolated, agree with Keras's (what
    ``klayers verify --per-layer`` reports), and every output Keras recorded is compared."""
    model, xs, keras_outputs = _layer_case(case)
    for isolate in (False, True):
        report = compare_layers(model, xs, keras_outputs, isolate=isolate)
        assert report["tolerance"] == 1e-4 and report["dtype"] == "float32"
        assert len(report["layers"]) == len(case.meta["index"]), report["not_in_keras"]
        assert report["not_in_keras"] == []
        over = [(r["name"], r["max_rel"]) for r in report["layers"] if r["over"]]
        assert report["first_diverging"] is None, over
        assert all(not o["over"] for o in report["outputs"]) and len(report["outputs"]) == case.meta["n_outputs"]


def layer_outputs_find_the_fault(case: Case) -> None:
    """A layer given other weights is the first one named over tolerance, in both modes; in
    isolated mode it is the only one."""
    model, xs, keras_outputs = _layer_case(case)
    layer = _weighted_step_layer(model)
    weights = layer.get_weights()
    layer.set_weights([w + 0.05 * (np.abs(w).max() + 1) for w in weights])
    propagated = compare_layers(model, xs, keras_outputs)
    assert propagated["first_diverging"] == layer.name
    isolated = compare_layers(model, xs, keras_outputs, isolate=True)
    assert isolated["first_diverging"] == layer.name
    assert {r["name"] for r in isolated["layers"] if r["over"]} == {layer.name}


# -- keras.applications' own classes and Keras 3 operation nodes ---------------------------------
def application_predicts(case: Case) -> None:
    """The file loads (the applications' classes, Keras 3's operation nodes) with every weight,
    predicts Keras's outputs, and writes back a file klayers reads to the same outputs."""
    arrays, meta = case.arrays(), case.meta
    path = os.path.join(refs.REFS, case.dialect, case.family, meta["file"])
    model = load_model(path)
    assert len(model.weights) == meta["n_weights"]
    xs = [arrays[f"x{i}"] for i in range(meta["n_inputs"])]
    ys = [arrays[f"y{i}"] for i in range(meta["n_outputs"])]
    _check(model, xs if len(xs) > 1 else xs[0], ys)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        again = os.path.join(tmp, meta["file"])
        model.save(again)
        _check(load_model(again), xs if len(xs) > 1 else xs[0], ys)


# -- tensor operations as graph nodes (TFOpLambda, SlicingOpLambda, Keras 3 operations) ----------
def op_nodes_predict(case: Case) -> None:
    """The file loads, each output has Keras's symbolic shape, and predicts Keras's outputs with
    Keras's dtypes (integer and boolean outputs exactly); written back, it predicts them again."""
    import tempfile

    arrays, meta = case.arrays(), case.meta
    xs = [arrays[f"x{i}"] for i in range(meta["n_inputs"])]
    ys = [arrays[f"y{i}"] for i in range(meta["n_outputs"])]

    def check(model):
        assert len(model.weights) == meta["n_weights"]
        assert [list(t.shape) for t in model.outputs] == meta["output_shapes"]
        for _ in range(2):
            out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
            out = out if isinstance(out, list) else [out]
            assert [str(o.dtype) for o in out] == meta["output_dtypes"]
            for k, (got, want) in enumerate(zip(out, ys)):
                assert got.shape == want.shape, k
                if want.dtype.kind in "biu":
                    np.testing.assert_array_equal(got, want, err_msg=f"output {k}")
                else:
                    scale = max(1.0, float(np.max(np.abs(want[np.isfinite(want)]), initial=0)))
                    tol = FILE_TOL * scale * (50 if want.dtype == np.float16 else 1)
                    np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"output {k}")

    path = os.path.join(refs.REFS, case.dialect, case.family, meta["file"])
    check(load_model(path))
    with tempfile.TemporaryDirectory() as tmp:
        again = os.path.join(tmp, meta["file"])
        load_model(path).save(again)
        check(load_model(again))
