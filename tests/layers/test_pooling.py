"""Pooling layers: arguments, defaults, configs, output shapes, masks, errors, models."""

import numpy as np
import pytest

import klayers
from klayers import backend, layers

WINDOWED = ["MaxPooling1D", "AveragePooling1D", "MaxPooling2D", "AveragePooling2D", "MaxPooling3D", "AveragePooling3D"]
GLOBAL = ["GlobalMaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling2D",
          "GlobalMaxPooling3D", "GlobalAveragePooling3D"]
ALIASES = {
    "MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D", "MaxPool3D": "MaxPooling3D",
    "AvgPool1D": "AveragePooling1D", "AvgPool2D": "AveragePooling2D", "AvgPool3D": "AveragePooling3D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D", "GlobalMaxPool2D": "GlobalMaxPooling2D",
    "GlobalMaxPool3D": "GlobalMaxPooling3D", "GlobalAvgPool1D": "GlobalAveragePooling1D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D", "GlobalAvgPool3D": "GlobalAveragePooling3D",
}


def _rank(name):
    return int(name[-2])


@pytest.mark.parametrize("alias,name", sorted(ALIASES.items()))
def test_aliases_are_exported_and_serialize_under_the_full_name(alias, name):
    assert alias in layers.__all__ and getattr(layers, alias) is getattr(layers, name)
    layer = layers.deserialize({"class_name": alias, "config": {}})
    assert type(layer).__name__ == name and layers.serialize(layer)["class_name"] == name


@pytest.mark.parametrize("name", WINDOWED)
def test_windowed_defaults_and_config(name):
    rank = _rank(name)
    layer = getattr(layers, name)()
    cfg = layer.get_config()
    assert set(cfg) == {"name", "trainable", "dtype", "pool_size", "padding", "strides", "data_format"}
    assert cfg["pool_size"] == (2,) * rank and cfg["strides"] == (2,) * rank
    assert cfg["padding"] == "valid" and cfg["data_format"] == "channels_last"
    assert cfg["name"].startswith(name.lower().replace("pooling", "_pooling"))
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    layer = getattr(layers, name)(pool_size=3, strides=1, padding="SAME")
    assert layer.pool_size == (3,) * rank and layer.strides == (1,) * rank and layer.padding == "same"


@pytest.mark.parametrize("name", GLOBAL)
def test_global_defaults_and_config(name):
    layer = getattr(layers, name)(keepdims=True)
    cfg = layer.get_config()
    assert set(cfg) == {"name", "trainable", "dtype", "data_format", "keepdims"}
    assert cfg["keepdims"] is True and cfg["data_format"] == "channels_last"
    assert type(layer).from_config(cfg).get_config() == cfg


@pytest.mark.parametrize("name", WINDOWED + GLOBAL)
def test_image_data_format_is_the_default_for_2d_and_3d_only(name):
    """tf-keras: 1-D layers default to channels_last, 2-D and 3-D ones follow the backend."""
    previous = backend.image_data_format()
    backend.set_image_data_format("channels_first")
    try:
        layer = getattr(layers, name)()
    finally:
        backend.set_image_data_format(previous)
    expected = "channels_last" if _rank(name) == 1 else "channels_first"
    assert layer.data_format == expected


@pytest.mark.parametrize(
    "name,kwargs,input_shape,output_shape",
    [
        ("MaxPooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}, (None, 9, 4), (None, 5, 4)),
        ("AveragePooling1D", {"data_format": "channels_first"}, (None, 4, 9), (None, 4, 4)),
        ("MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}, (None, 112, 112, 64), (None, 56, 56, 64)),
        ("AveragePooling2D", {"pool_size": (2, 3), "data_format": "channels_first"}, (None, 3, 8, 9), (None, 3, 4, 3)),
        ("MaxPooling2D", {}, (None, None, 8, 3), (None, None, 4, 3)),
        ("MaxPooling3D", {"pool_size": (1, 2, 3), "strides": 1}, (None, 4, 5, 6, 2), (None, 4, 4, 4, 2)),
        ("AveragePooling3D", {"padding": "same", "data_format": "channels_first"}, (None, 2, 5, 5, 5), (None, 2, 3, 3, 3)),
        ("GlobalMaxPooling1D", {"keepdims": True}, (None, 7, 3), (None, 1, 3)),
        ("GlobalAveragePooling1D", {"data_format": "channels_first", "keepdims": True}, (None, 3, 7), (None, 3, 1)),
        ("GlobalAveragePooling2D", {}, (None, 7, 7, 1280), (None, 1280)),
        ("GlobalMaxPooling2D", {"data_format": "channels_first"}, (None, 4, None, None), (None, 4)),
        ("GlobalAveragePooling3D", {"keepdims": True}, (None, 2, 3, 4, 5), (None, 1, 1, 1, 5)),
        ("GlobalMaxPooling3D", {"keepdims": True, "data_format": "channels_first"}, (None, 5, 2, 3, 4), (None, 5, 1, 1, 1)),
    ],
)
def test_output_shapes_symbolic_and_eager(name, kwargs, input_shape, output_shape):
    layer = getattr(layers, name)(**kwargs)
    assert layer.compute_output_shape(input_shape) == output_shape
    assert tuple(layer(klayers.Input(batch_shape=input_shape)).shape) == output_shape
    concrete = tuple(2 if d is None else d for d in input_shape)
    y = getattr(layers, name)(**kwargs)(np.random.default_rng(0).standard_normal(concrete).astype("float32"))
    assert all(a == b or b is None for a, b in zip(y.shape[1:], output_shape[1:])) and y.shape[0] == 2


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: layers.MaxPooling2D(pool_size=0), "pool_size"),
        (lambda: layers.MaxPooling2D(pool_size=(2, 2, 2)), "pool_size"),
        (lambda: layers.AveragePooling1D(strides=-1), "strides"),
        (lambda: layers.MaxPooling3D(padding="full"), "padding"),
        (lambda: layers.MaxPooling1D(padding="causal"), "padding"),
        (lambda: layers.AveragePooling2D(data_format="NHWC"), "data_format"),
        (lambda: layers.GlobalMaxPooling2D(data_format="channels_middle"), "data_format"),
    ],
    ids=["pool0", "pool-len", "stride-neg", "full", "causal", "nhwc", "global-df"],
)
def test_bad_arguments_are_refused_with_the_value_echoed(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_zero_strides_are_accepted_in_the_config_but_refused_when_run():
    layer = layers.MaxPooling2D(pool_size=2, strides=0)  # tf-keras accepts this config
    assert layer.get_config()["strides"] == (0, 0)
    with pytest.raises(ValueError, match="strides"):
        layer(np.zeros((1, 4, 4, 1), "float32"))


@pytest.mark.parametrize("name,shape", [("MaxPooling2D", (1, 1, 5, 2)), ("AveragePooling1D", (2, 1, 3)),
                                        ("AveragePooling3D", (1, 1, 4, 4, 1))])
def test_window_larger_than_the_input_is_refused(name, shape):
    """Keras refuses it symbolically (and TF's eager max); its eager average returns an empty array."""
    with pytest.raises(ValueError, match=f"{name} .*larger than the input"):
        getattr(layers, name)()(np.zeros(shape, "float32"))
    with pytest.raises(ValueError, match="larger than the input"):
        getattr(layers, name)()(klayers.Input(batch_shape=shape))


@pytest.mark.parametrize("name", WINDOWED + GLOBAL)
def test_wrong_rank_is_refused(name):
    rank = _rank(name)
    with pytest.raises(ValueError, match=f"expected ndim={rank + 2}"):
        getattr(layers, name)()(np.zeros((2,) * (rank + 3), "float32"))


def test_global_pooling_refuses_an_empty_reduction_axis():
    with pytest.raises(ValueError, match="dimension 0 at reduction axis 2"):
        layers.GlobalAveragePooling2D(data_format="channels_first")(np.zeros((1, 3, 0, 4), "float32"))


def test_global_average_pooling1d_mask_and_propagation():
    x = np.arange(24, dtype="float32").reshape(2, 4, 3)
    mask = np.array([[1, 1, 0, 0], [0, 0, 0, 1]], bool)
    layer = layers.GlobalAveragePooling1D()
    assert layer.supports_masking and layer.compute_mask(x, mask) is None
    np.testing.assert_allclose(layer(x, mask=mask), [x[0, :2].mean(0), x[1, 3]])
    # through Masking in a Sequential model: steps that are all zeros are masked out
    xz = x.copy()
    xz[0, 2:] = 0
    model = klayers.Sequential([klayers.Input((4, 3)), layers.Masking(0.0), layers.GlobalAveragePooling1D()])
    np.testing.assert_allclose(model.predict(xz, verbose=0)[0], x[0, :2].mean(0))


def test_only_global_average_pooling1d_supports_masking():
    """As in tf-keras: every other pooling layer leaves supports_masking False."""
    for name in WINDOWED + GLOBAL:
        assert getattr(layers, name)().supports_masking is (name == "GlobalAveragePooling1D")


def test_dtypes():
    x = np.random.default_rng(1).standard_normal((2, 6, 6, 3))
    y = layers.AveragePooling2D(dtype="float64")(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, x.reshape(2, 3, 2, 3, 2, 3).mean(axis=(2, 4)), rtol=1e-12)
    assert layers.MaxPooling2D()(x).dtype == np.float32  # cast to the layer's float32
    ints = np.arange(16, dtype="int32").reshape(1, 4, 4, 1)
    y = layers.GlobalAveragePooling2D()(ints)
    assert y.dtype == np.float32 and y[0, 0] == 7.5


def test_layers_in_a_model_and_the_config_round_trip():
    model = klayers.Sequential([
        klayers.Input((16, 16, 3)),
        layers.MaxPooling2D(3, strides=2, padding="same"),
        layers.AveragePooling2D((2, 1)),
        layers.GlobalMaxPool2D(keepdims=True),
        layers.GlobalAvgPool2D(),
    ])
    x = np.random.default_rng(2).standard_normal((3, 16, 16, 3)).astype("float32")
    y = model.predict(x, verbose=0)
    assert y.shape == (3, 3)
    h = x
    for layer in model.layers:
        h = layer(h)
    np.testing.assert_array_equal(y, h)
    again = klayers.Sequential.from_config(model.get_config())
    np.testing.assert_array_equal(again.predict(x, verbose=0), y)
