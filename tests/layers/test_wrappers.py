"""Bidirectional and TimeDistributed behaviour beyond the recorded Keras cases."""

import numpy as np
import pytest

import klayers
from klayers import layers as L


def _x(b=2, t=5, f=3, seed=0):
    return np.random.default_rng(seed).standard_normal((b, t, f)).astype("float32")


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merges_forward_and_reversed_backward(mode):
    x = _x()
    bidi = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=mode)
    out = bidi(x)
    fwd = bidi.forward_layer(x)
    bwd = bidi.backward_layer(x)[:, ::-1]
    want = {"concat": np.concatenate([fwd, bwd], -1), "sum": fwd + bwd, "mul": fwd * bwd,
            "ave": (fwd + bwd) / 2, None: [fwd, bwd]}[mode]
    np.testing.assert_allclose(out, want, atol=1e-6)


def test_bidirectional_symbolic_initial_state_in_a_model():
    inp = klayers.Input((5, 3))
    states = [klayers.Input((2,)) for _ in range(4)]
    out = L.Bidirectional(L.LSTM(2, return_sequences=True))(inp, initial_state=states)
    model = klayers.Model([inp] + states, out)
    x = _x()
    s = [np.full((2, 2), v, "float32") for v in (0.1, -0.2, 0.3, 0.4)]
    layer = model.layers[-1]
    np.testing.assert_allclose(model.predict([x] + s, verbose=0), layer(x, initial_state=s), atol=1e-6)


def test_bidirectional_errors_and_masks():
    with pytest.raises(ValueError, match="merge mode"):
        L.Bidirectional(L.LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match="go_backwards"):
        L.Bidirectional(L.LSTM(2), backward_layer=L.LSTM(2))
    with pytest.raises(ValueError, match="return_sequences"):
        L.Bidirectional(L.LSTM(2), backward_layer=L.LSTM(2, go_backwards=True, return_sequences=True))
    bidi = L.Bidirectional(L.LSTM(2, return_sequences=True, return_state=True), merge_mode=None)
    m = np.ones((2, 5), bool)
    assert bidi.compute_mask(_x(), m) == [m, m, None, None, None, None]


def test_bidirectional_keras3_config_names():
    config = {"class_name": "Bidirectional", "config": {
        "name": "bidi", "trainable": True,
        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None},
        "merge_mode": "sum",
        "layer": {"module": "keras.layers", "class_name": "GRU", "config": {"name": "forward_gru", "units": 2}},
        "backward_layer": {"module": "keras.layers", "class_name": "GRU",
                           "config": {"name": "backward_gru", "units": 2, "go_backwards": True}},
    }}
    layer = L.deserialize(config)
    assert layer.forward_layer.name == "forward_gru" and layer.backward_layer.name == "backward_gru"
    assert layer(_x()).shape == (2, 2)


def test_time_distributed_over_a_nested_model_and_masks():
    inner = klayers.Sequential([L.Dense(4, activation="relu"), L.Dense(2)])
    td = L.TimeDistributed(inner)
    x = _x()
    out = td(x)
    np.testing.assert_allclose(out, inner(x.reshape(10, 3)).reshape(2, 5, 2), atol=1e-6)
    m = np.array([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(td.compute_mask(x, m), m)
    assert td.compute_output_shape((None, 5, 3)) == (None, 5, 2)
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        td(np.ones((2, 3), "float32"))


def test_time_distributed_feeds_masks_to_a_recurrent_layer():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 2)).astype("float32")
    m = np.ones((2, 3, 4), bool)
    m[0, 1, 2:] = False
    td = L.TimeDistributed(L.LSTM(3, return_sequences=True))
    out = td(x, mask=m)
    np.testing.assert_allclose(out.reshape(6, 4, 3), td.layer(x.reshape(6, 4, 2), mask=m.reshape(6, 4)), atol=1e-6)
    np.testing.assert_array_equal(td.compute_mask(x, m), m)
