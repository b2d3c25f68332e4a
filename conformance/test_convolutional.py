"""Replay of the convolution layers recorded from real Keras (conformance/cases/convolutional.py).

DepthwiseConv3D (no Keras counterpart) replays Keras's Conv3D(groups=channels) outputs with the
grouped kernel reshaped to the depthwise layout ``(*k, channels, multiplier)``.
"""

import numpy as np
import pytest

import klayers
from conformance import refs
from conformance.harness import assert_close, replay_layer_case

K2 = refs.cases("convolutional", "keras2")
K2_LAYERS = [c for c in K2 if c[1]["class_name"] != "DepthwiseConv3D"]
K2_DW3D = [c for c in K2 if c[1]["class_name"] == "DepthwiseConv3D"]
K3 = refs.cases("convolutional", "keras3")


@pytest.mark.parametrize("name,meta", K2_LAYERS, ids=[c[0] for c in K2_LAYERS])
def test_convolutional_keras2(name, meta):
    replay_layer_case(meta, refs.arrays("convolutional", name, "keras2"), "keras2")


@pytest.mark.parametrize("name,meta", K3, ids=[c[0] for c in K3])
def test_convolutional_keras3(name, meta):
    replay_layer_case(meta, refs.arrays("convolutional", name, "keras3"), "keras3")


@pytest.mark.parametrize("name,meta", K2_DW3D, ids=[c[0] for c in K2_DW3D])
def test_depthwise_conv3d_against_grouped_conv3d(name, meta):
    arrays = refs.arrays("convolutional", name, "keras2")
    layer = klayers.layers.DepthwiseConv3D(**meta["depthwise_kwargs"])
    first = arrays[f"x_b{meta['batches'][0]}"]
    layer(first)
    assert len(layer.weights) == meta["n_weights"]
    layer.set_weights([arrays[f"w{i}"] for i in range(meta["n_weights"])])
    for b in meta["batches"]:
        assert_close(layer(arrays[f"x_b{b}"]), arrays[f"y_b{b}"], f"output at batch {b}")
    assert list(layer.compute_output_shape((None,) + first.shape[1:])) == meta["output_shape"]
    again = klayers.layers.deserialize(klayers.layers.serialize(layer))
    again(first)
    again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(again(first), layer(first))
