"""Replay of ConvLSTM1D/2D/3D and their cells recorded from real Keras
(conformance/cases/recurrent_conv.py)."""

import numpy as np
import pytest

import klayers
from conformance import refs
from conformance.harness import assert_close, assert_config_equal
from conformance.harness_recurrent import replay_rnn_case

K2 = refs.cases("recurrent_conv", "keras2")
K3 = refs.cases("recurrent_conv", "keras3")


def _replay_cell(meta, arrays):
    """One step of a ConvLSTM cell against Keras's ``ConvLSTMCell(rank=n)``."""
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


@pytest.mark.parametrize("name,meta", K2, ids=[c[0] for c in K2])
def test_recurrent_conv_keras2(name, meta):
    arrays = refs.arrays("recurrent_conv", name, "keras2")
    if meta.get("cell"):
        _replay_cell(meta, arrays)
    else:
        replay_rnn_case(meta, arrays, "keras2")


@pytest.mark.parametrize("name,meta", K3, ids=[c[0] for c in K3])
def test_recurrent_conv_keras3(name, meta):
    replay_rnn_case(meta, refs.arrays("recurrent_conv", name, "keras3"), "keras3")
