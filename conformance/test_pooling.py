"""Replay of the pooling layers recorded from real Keras (conformance/cases/pooling.py).

Besides the shared harness (config, serialize, output shape, round trip), outputs are compared
element by element: max pooling exactly (NaN where Keras has NaN, TensorFlow's lowest-value
result for windows of NaN or -inf), averages to float rounding.
"""

import numpy as np
import pytest

import klayers
from conformance import refs
from conformance.harness import assert_config_equal, replay_layer_case
from klayers.serialization import dialect_scope

# The shared harness scales its tolerance by max|output|, NaN or inf in the NaN cases: the
# element-wise checks below are the real ones there.
pytestmark = pytest.mark.filterwarnings("ignore:One of rtol or atol is not valid:RuntimeWarning")

K2 = refs.cases("pooling", "keras2")
K3 = refs.cases("pooling", "keras3")
LAYER = [c for c in K2 if c[1].get("kind") is None]
MASKED = [c for c in K2 if c[1].get("kind") == "masked"]
ERRORS = [c for c in K2 if c[1].get("kind") == "error"]


def _exact(ours: np.ndarray, theirs: np.ndarray, class_name: str, what: str) -> None:
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, f"{what}: {ours.shape} {ours.dtype} vs {theirs.shape} {theirs.dtype}"
    if "Max" in class_name:
        np.testing.assert_array_equal(ours, theirs, err_msg=what)
    else:
        finite = theirs[np.isfinite(theirs)]
        scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
        tol = 1e-5 if theirs.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * scale, err_msg=what)


def test_case_counts():
    """The issue's floor: at least 8 recorded configurations per layer class."""
    per_class = {}
    for _, meta in LAYER:
        per_class[meta["class_name"]] = per_class.get(meta["class_name"], 0) + 1
    bases = [n for n in per_class if not n.endswith(("Pool1D", "Pool2D", "Pool3D"))]
    assert len(bases) == 12
    assert all(per_class[n] >= 8 for n in bases), per_class
    assert len(MASKED) >= 5 and len(ERRORS) >= 6


@pytest.mark.parametrize("name,meta", LAYER, ids=[c[0] for c in LAYER])
def test_pooling_keras2(name, meta):
    arrays = refs.arrays("pooling", name, "keras2")
    layer = replay_layer_case(meta, arrays, "keras2")
    for b in meta["batches"]:
        _exact(layer(arrays[f"x_b{b}"]), arrays[f"y_b{b}"], meta["class_name"], f"{name} batch {b}")


@pytest.mark.parametrize("name,meta", MASKED, ids=[c[0] for c in MASKED])
def test_global_average_pooling1d_mask(name, meta):
    arrays = refs.arrays("pooling", name, "keras2")
    with dialect_scope(2):
        layer = klayers.layers.deserialize({"class_name": meta["class_name"], "config": meta["config"]})
    assert_config_equal(layer.get_config(), meta["config"])
    y = layer(arrays["x"], mask=arrays["mask"])
    _exact(y, arrays["y"], meta["class_name"], name)
    assert layer.compute_mask(arrays["x"], arrays["mask"]) is None and meta["output_mask"] is None
    # the same through a functional model: a Masking-free graph passes the mask explicitly
    inp = klayers.Input(arrays["x"].shape[1:])
    mask_in = klayers.Input(arrays["mask"].shape[1:], dtype="bool")
    model = klayers.Model([inp, mask_in], layer(inp, mask=mask_in))
    _exact(model.predict([arrays["x"], arrays["mask"]], verbose=0), arrays["y"], meta["class_name"], name + " (model)")


@pytest.mark.parametrize("name,meta", ERRORS, ids=[c[0] for c in ERRORS])
def test_pooling_errors(name, meta):
    """Keras raises ValueError on the symbolic call; klayers raises it eagerly and symbolically."""
    assert meta["keras_error"] == "ValueError"
    shape = tuple(meta["input_shape"])
    with dialect_scope(2):
        layer = klayers.layers.deserialize({"class_name": meta["class_name"], "config": meta["config"]})
    with pytest.raises(ValueError) as eager:
        layer(np.zeros(shape, "float32"))
    with dialect_scope(2):
        layer = klayers.layers.deserialize({"class_name": meta["class_name"], "config": meta["config"]})
    with pytest.raises(ValueError):
        layer(klayers.Input(batch_shape=shape))
    message = str(eager.value)
    if "incompatible" in meta["keras_message"]:
        assert "expected ndim" in message
    elif "reduction axis" in meta["keras_message"]:
        assert "reduction axis" in message
    else:
        assert "larger than the input" in message and layer.name.split("_")[0] in message.lower()


@pytest.mark.parametrize("name,meta", K3, ids=[c[0] for c in K3])
def test_pooling_keras3(name, meta):
    arrays = refs.arrays("pooling", name, "keras3")
    layer = replay_layer_case(meta, arrays, "keras3")
    for b in meta["batches"]:
        _exact(layer(arrays[f"x_b{b}"]), arrays[f"y_b{b}"], meta["class_name"], f"{name} batch {b}")
