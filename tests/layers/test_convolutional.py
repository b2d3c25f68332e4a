"""Convolution layers: argument errors echo the value, shapes (also symbolic), weight layouts,
fused and unfused activations, DepthwiseConv3D == grouped Conv3D (the config round trip and
float64 of every class: tests/layers/test_layer_api.py)."""

import numpy as np
import pytest

import klayers
from klayers import layers

L = layers


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: L.Conv2D(0, 3), "Received filters=0"),
        (lambda: L.Conv2D(-2, 3), "Received filters=-2"),
        (lambda: L.Conv2D(5, 3, groups=2), "groups=2, filters=5"),
        (lambda: L.Conv2D(4, 3, padding="causal"), "Causal padding"),
        (lambda: L.Conv2D(4, 3, padding="full"), "padding"),
        (lambda: L.Conv1D(4, 3, strides=2, dilation_rate=2), "dilation_rate > 1"),
        (lambda: L.Conv2D(4, (3, 3, 3)), "kernel_size"),
        (lambda: L.Conv2D(4, 0), "kernel_size"),
        (lambda: L.Conv2D(4, 3, data_format="nhwc"), "data_format"),
        (lambda: L.DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier=0"),
        (lambda: L.DepthwiseConv1D(3, padding="causal"), "Causal padding"),
        (lambda: L.SeparableConv2D(4, 3, depth_multiplier=0), "depth_multiplier=0"),
        (lambda: L.Conv2DTranspose(4, 3, strides=2, output_padding=2), "greater than output padding"),
        (lambda: L.Conv1DTranspose(4, 3, padding="causal"), "padding"),
        (lambda: L.Conv3D(4, 3, strides=(1, 0, 1)), "strides"),
    ],
)
def test_bad_arguments_raise_and_echo(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_build_errors():
    with pytest.raises(ValueError, match="evenly divisible"):
        L.Conv2D(4, 3, groups=2)(np.zeros((1, 5, 5, 3), "float32"))
    with pytest.raises(ValueError, match="<= 0"):
        L.Conv2D(4, 3)(np.zeros((1, 2, 5, 3), "float32"))
    with pytest.raises(ValueError, match="<= 0"):
        L.DepthwiseConv2D(3)(np.zeros((1, 2, 2, 3), "float32"))
    layer = L.Conv1D(2, 3)
    layer(np.zeros((1, 5, 3), "float32"))
    with pytest.raises(ValueError):
        layer(np.zeros((1, 5, 4), "float32"))  # wrong channel count after build
    with pytest.raises(ValueError):
        L.Conv2D(2, 3)(np.zeros((1, 5, 3), "float32"))  # wrong rank


@pytest.mark.parametrize(
    "layer,in_shape,out_shape,weights",
    [
        (lambda: L.Conv1D(4, 3, padding="causal"), (None, 9, 2), (None, 9, 4), [(3, 2, 4), (4,)]),
        (lambda: L.Conv2D(6, 3, strides=2, groups=3), (None, 9, 8, 3), (None, 4, 3, 6), [(3, 3, 1, 6), (6,)]),
        (lambda: L.Conv2D(5, (1, 2), data_format="channels_first", use_bias=False), (None, 3, 4, 4), (None, 5, 4, 3), [(1, 2, 3, 5)]),
        (lambda: L.Conv3D(2, 2, padding="same"), (None, 3, None, 5, 2), (None, 3, None, 5, 2), [(2, 2, 2, 2, 2), (2,)]),
        (lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (None, 5, 5, 3), (None, 3, 3, 6), [(3, 3, 3, 2), (6,)]),
        (lambda: L.DepthwiseConv3D(2, data_format="channels_first"), (None, 3, 4, 4, 4), (None, 3, 3, 3, 3), [(2, 2, 2, 3, 1), (3,)]),
        (lambda: L.SeparableConv1D(4, 3, depth_multiplier=2), (None, 7, 3), (None, 5, 4), [(3, 3, 2), (1, 6, 4), (4,)]),
        (lambda: L.SeparableConv2D(4, 3, padding="same"), (None, 5, 5, 2), (None, 5, 5, 4), [(3, 3, 2, 1), (1, 1, 2, 4), (4,)]),
        (lambda: L.Conv2DTranspose(3, 4, strides=2, padding="same"), (None, 5, 6, 2), (None, 10, 12, 3), [(4, 4, 3, 2), (3,)]),
        (lambda: L.Conv1DTranspose(3, 3, strides=2, output_padding=1), (None, 5, 2), (None, 12, 3), [(3, 3, 2), (3,)]),
        (lambda: L.Conv3DTranspose(2, 2, strides=2), (None, 2, 3, 1, 2), (None, 4, 6, 2, 2), [(2, 2, 2, 2, 2), (2,)]),
    ],
)
def test_shapes_and_weight_layout(layer, in_shape, out_shape, weights):
    lay = layer()
    assert lay.compute_output_shape(in_shape) == out_shape
    concrete = tuple(3 if d is None else d for d in in_shape)
    y = lay(np.random.default_rng(0).standard_normal(concrete).astype("float32"))
    assert y.shape == tuple(3 if d is None else d for d in lay.compute_output_shape(concrete))
    assert [tuple(w.shape) for w in lay.weights] == weights
    sym = lay(klayers.Input(in_shape[1:]))
    assert tuple(sym.shape) == out_shape


@pytest.mark.parametrize("activation", ["relu", "relu6", "linear", "tanh", "elu"])
def test_fused_and_unfused_activations(activation):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 5, 3)).astype("float32") * 3
    plain = L.Conv2D(4, 3, padding="same")
    act = L.Conv2D(4, 3, padding="same", activation=activation)
    plain(x)
    act(x)
    act.set_weights(plain.get_weights())
    want = klayers.activations.get(activation)(plain(x))
    np.testing.assert_allclose(act(x), want, rtol=1e-5, atol=1e-5)


def test_depthwise_conv3d_equals_grouped_conv3d():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 5, 3, 3)).astype("float32")
    dw = L.DepthwiseConv3D(2, depth_multiplier=2, padding="same")
    grouped = L.Conv3D(6, 2, padding="same", groups=3)
    dw(x)
    grouped(x)
    k = rng.standard_normal((2, 2, 2, 1, 6)).astype("float32")
    b = rng.standard_normal(6).astype("float32")
    grouped.set_weights([k, b])
    dw.set_weights([k.reshape(2, 2, 2, 3, 2), b])
    np.testing.assert_allclose(dw(x), grouped(x), rtol=1e-5, atol=1e-5)


def test_conv3d_transpose_ignores_dilation_like_tf_keras():
    layer = L.Conv3DTranspose(2, 2, dilation_rate=2)
    assert "dilation_rate" not in layer.get_config()
    assert layer.compute_output_shape((None, 3, 3, 3, 2)) == (None, 4, 4, 4, 2)


def test_conv_in_a_model():
    inp = klayers.Input((8, 8, 3))
    h = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    h = L.DepthwiseConv2D(3, strides=2, padding="same")(h)
    h = L.Conv2DTranspose(2, 4, strides=2, padding="same")(h)
    model = klayers.Model(inp, h)
    y = model.predict(np.ones((2, 8, 8, 3), "float32"), verbose=0) if hasattr(model, "predict") else model(np.ones((2, 8, 8, 3), "float32"))
    assert np.asarray(y).shape == (2, 8, 8, 2)
