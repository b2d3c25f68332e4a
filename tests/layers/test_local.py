"""LocallyConnected1D / 2D: the three weight layouts agree, weight shapes, caching, arguments,
errors, config round trip, models. (Outputs against real Keras: conformance/test_local.py.)"""

import itertools

import numpy as np
import pytest

import klayers
from klayers import layers
from klayers.ops import local as L

# --- tf-keras's layouts built independently, by literal ports of its index code ----------------


def _connected(input_shape, kernel_shape, output_position, strides, padding):
    """tf_keras.utils.conv_utils.conv_connected_inputs."""
    ranges = []
    for d in range(len(input_shape)):
        left = int(kernel_shape[d] / 2)
        right = kernel_shape[d] - left
        center = output_position[d] * strides[d]
        if padding == "valid":
            center += left
        ranges.append(range(max(0, center - left), min(input_shape[d], center + right)))
    return ranges


def _kernel_idxs(input_shape, kernel_shape, strides, padding, cin, cout, data_format):
    """sorted(tf_keras.utils.conv_utils.conv_kernel_idxs(...))."""
    out_shape = L.output_spatial(input_shape, kernel_shape, strides, padding)
    cf = data_format == "channels_first"

    def cat(spatial, f):
        return (f,) + tuple(spatial) if cf else tuple(spatial) + (f,)

    idxs = []
    for op in itertools.product(*[range(d) for d in out_shape]):
        for ip in itertools.product(*_connected(input_shape, kernel_shape, op, strides, padding)):
            for fi in range(cin):
                for fo in range(cout):
                    idxs.append((int(np.ravel_multi_index(cat(op, fo), cat(out_shape, cout))),
                                 int(np.ravel_multi_index(cat(ip, fi), cat(input_shape, cin)))))
    return sorted(idxs)


def _dense_full(spatial, cin, cout, ks, st, padding, data_format, k1, rng):
    """A (*in, cin, *out, cout) 'full' weight: k1's values on connections, noise elsewhere."""
    out = L.output_spatial(spatial, ks, st, padding)
    full = rng.standard_normal(tuple(spatial) + (cin,) + out + (cout,))  # noise where unconnected
    taps = list(itertools.product(*[range(k) for k in ks]))
    for p, op in enumerate(itertools.product(*[range(d) for d in out])):
        start = [o * s for o, s in zip(op, st)]
        for t, tap in enumerate(taps):
            ip = tuple(a + b for a, b in zip(start, tap))
            for c in range(cin):
                feat = c * len(taps) + t if data_format == "channels_first" else t * cin + c
                full[ip + (c,) + op] = k1[p, feat]
    return full


def _to_impl2(full, rank, data_format):
    if data_format == "channels_last":
        return full
    # (*in, cin, *out, cout) -> (cin, *in, cout, *out)
    axes = [rank] + list(range(rank)) + [2 * rank + 1] + list(range(rank + 1, 2 * rank + 1))
    return full.transpose(axes)


def _to_impl3(full, spatial, cin, cout, ks, st, padding, data_format):
    out = L.output_spatial(spatial, ks, st, padding)
    cf = data_format == "channels_first"
    values = []
    for out_idx, in_idx in _kernel_idxs(spatial, ks, st, padding, cin, cout, data_format):
        o = np.unravel_index(out_idx, (cout,) + out if cf else out + (cout,))
        i = np.unravel_index(in_idx, (cin,) + tuple(spatial) if cf else tuple(spatial) + (cin,))
        op, fo = (o[1:], o[0]) if cf else (o[:-1], o[-1])
        ip, fi = (i[1:], i[0]) if cf else (i[:-1], i[-1])
        values.append(full[tuple(ip) + (fi,) + tuple(op) + (fo,)])
    return np.array(values)


CASES = [
    # class, spatial, cin, filters, kernel_size, strides
    ("LocallyConnected1D", (9,), 2, 3, (3,), (2,)),
    ("LocallyConnected1D", (7,), 3, 2, (2,), (3,)),
    ("LocallyConnected2D", (5, 6), 2, 3, (2, 3), (1, 2)),
    ("LocallyConnected2D", (6, 5), 3, 2, (3, 3), (2, 1)),
]


def _input(spatial, cin, batch, data_format, rng, dtype="float32"):
    shape = (batch, cin) + spatial if data_format == "channels_first" else (batch,) + spatial + (cin,)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0][-2:]}-{c[1]}-k{c[4]}-s{c[5]}" for c in CASES])
def test_three_implementations_give_the_same_outputs(case, data_format):
    cls, spatial, cin, cout, ks, st = case
    rng = np.random.default_rng(7)
    x = _input(spatial, cin, 3, data_format, rng)
    kw = dict(filters=cout, kernel_size=ks, strides=st, data_format=data_format, activation="tanh")
    l1 = getattr(layers, cls)(implementation=1, **kw)
    l1(x)
    k1 = rng.standard_normal(l1.kernel.shape).astype("float32")
    bias = rng.standard_normal(l1.bias.shape).astype("float32")
    l1.set_weights([k1, bias])
    full = _dense_full(spatial, cin, cout, ks, st, "valid", data_format, k1, rng).astype("float32")
    outs = [l1(x)]
    for impl, kernel in [(2, _to_impl2(full, len(spatial), data_format)),
                         (3, _to_impl3(full, spatial, cin, cout, ks, st, "valid", data_format))]:
        layer = getattr(layers, cls)(implementation=impl, **kw)
        layer(x)
        assert layer.kernel.shape == kernel.shape
        layer.set_weights([kernel, bias])
        outs.append(layer(x))
        # and the conversion is exactly implementation 1's kernel
        np.testing.assert_array_equal(layer._compute_weights()[0], k1)
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs[2], outs[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls,spatial,ks,st", [
    ("LocallyConnected1D", (8,), (4,), (3,)),
    ("LocallyConnected2D", (5, 4), (2, 3), (2, 1)),
])
def test_same_padding_implementations_2_and_3_agree(cls, spatial, ks, st, data_format):
    rng = np.random.default_rng(3)
    cin, cout = 2, 3
    x = _input(spatial, cin, 2, data_format, rng, "float64")
    kw = dict(filters=cout, kernel_size=ks, strides=st, padding="same", data_format=data_format, dtype="float64")
    full = rng.standard_normal(tuple(spatial) + (cin,) + L.output_spatial(spatial, ks, st, "same") + (cout,))
    l2 = getattr(layers, cls)(implementation=2, **kw)
    l3 = getattr(layers, cls)(implementation=3, **kw)
    l2(x)
    l3(x)
    bias = rng.standard_normal(l2.bias.shape)
    l2.set_weights([_to_impl2(full, len(spatial), data_format), bias])
    l3.set_weights([_to_impl3(full, spatial, cin, cout, ks, st, "same", data_format), bias])
    np.testing.assert_allclose(l2(x), l3(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls,shape,impl,df,padding,want", [
    ("LocallyConnected1D", (10, 3), 1, "channels_last", "valid", [(8, 9, 4), (8, 4)]),
    ("LocallyConnected1D", (10, 3), 2, "channels_last", "valid", [(10, 3, 8, 4), (8, 4)]),
    ("LocallyConnected1D", (3, 10), 2, "channels_first", "valid", [(3, 10, 4, 8), (8, 4)]),
    ("LocallyConnected1D", (10, 3), 3, "channels_last", "same", [(10 * 3 * 3 * 4 - 2 * 3 * 4,), (10, 4)]),
    ("LocallyConnected2D", (5, 6, 2), 1, "channels_last", "valid", [(12, 18, 4), (3, 4, 4)]),
    ("LocallyConnected2D", (5, 6, 2), 2, "channels_last", "valid", [(5, 6, 2, 3, 4, 4), (3, 4, 4)]),
    ("LocallyConnected2D", (2, 5, 6), 2, "channels_first", "valid", [(2, 5, 6, 4, 3, 4), (3, 4, 4)]),
    ("LocallyConnected2D", (5, 6, 2), 3, "channels_last", "valid", [(12 * 9 * 2 * 4,), (3, 4, 4)]),
])
def test_weight_shapes_names_and_order(cls, shape, impl, df, padding, want):
    layer = getattr(layers, cls)(4, 3, implementation=impl, data_format=df, padding=padding, name="lc")
    layer(np.zeros((1,) + shape, "float32"))
    assert [tuple(w.shape) for w in layer.weights] == want
    assert [w.name for w in layer.weights] == ["lc/kernel:0", "lc/bias:0"]
    nobias = getattr(layers, cls)(4, 3, implementation=impl, data_format=df, padding=padding, use_bias=False)
    nobias(np.zeros((1,) + shape, "float32"))
    assert [tuple(w.shape) for w in nobias.weights] == want[:1]


def test_conversion_is_cached_and_set_weights_invalidates_it():
    rng = np.random.default_rng(0)
    layer = layers.LocallyConnected2D(3, 2, implementation=3, padding="same")
    x = rng.standard_normal((2, 4, 5, 2)).astype("float32")
    layer(x)
    first = layer._compute_weights()[0]
    assert layer._compute_weights()[0] is first  # not converted again
    weights = [rng.standard_normal(w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(weights)
    assert layer._compute_weights()[0] is not first
    fresh = layers.LocallyConnected2D(3, 2, implementation=3, padding="same")
    fresh(x)
    fresh.set_weights(weights)
    np.testing.assert_array_equal(layer(x), fresh(x))


def test_float64_int_inputs_and_activity_regularizer():
    rng = np.random.default_rng(1)
    layer = layers.LocallyConnected1D(2, 3, dtype="float64", activity_regularizer="l2", activation="relu")
    x = rng.integers(-3, 4, size=(2, 6, 3))
    y = layer(x)
    assert y.dtype == np.float64 and y.shape == (2, 4, 2) and (y >= 0).all()
    k = layer._compute_weights()[0]
    want = L.local_conv_reference(x.astype("float64"), k, layer.bias.value.reshape(4, 2), (3,), (1,), "valid",
                                  "channels_last", L.ACT_RELU)
    np.testing.assert_allclose(y, want, rtol=1e-12)
    assert len(layer.losses) == 1 and layer.losses[0] == pytest.approx(0.01 * float((y ** 2).sum()) / 2)


@pytest.mark.parametrize("kwargs,match", [
    ({"filters": 0, "kernel_size": 3}, "filters=0"),
    ({"filters": 2.5, "kernel_size": 3}, "filters=2.5"),
    ({"filters": 2, "kernel_size": 0}, "kernel_size"),
    ({"filters": 2, "kernel_size": (2, 2)}, "kernel_size"),
    ({"filters": 2, "kernel_size": 3, "strides": 0}, "strides"),
    ({"filters": 2, "kernel_size": 3, "padding": "same"}, "only \"valid\" is supported if implementation is 1"),
    ({"filters": 2, "kernel_size": 3, "padding": "causal", "implementation": 2}, "padding='causal'"),
    ({"filters": 2, "kernel_size": 3, "implementation": 4}, "implementation=4"),
    ({"filters": 2, "kernel_size": 3, "implementation": True}, "implementation=True"),
    ({"filters": 2, "kernel_size": 3, "data_format": "NCW"}, "data_format='NCW'"),
])
def test_bad_arguments_are_refused_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.LocallyConnected1D(**kwargs)


def test_bad_inputs():
    layer = layers.LocallyConnected2D(2, 3, name="lc2")
    with pytest.raises(ValueError, match="ndim=4|rank 4"):
        layer(np.zeros((1, 5, 5), "float32"))
    with pytest.raises(ValueError, match="output is <= 0"):
        layers.LocallyConnected2D(2, 3)(np.zeros((1, 2, 5, 1), "float32"))
    layer(np.zeros((1, 5, 6, 2), "float32"))
    with pytest.raises(ValueError, match="spatial shape"):
        layer(np.zeros((1, 6, 6, 2), "float32"))
    with pytest.raises(ValueError, match="lc2"):
        layer(np.zeros((1, 5, 6, 3), "float32"))  # channels: input_spec
    with pytest.raises(ValueError, match="fully-defined"):
        layers.LocallyConnected1D(2, 3).build((None, None, 3))
    with pytest.raises(ValueError, match="implementation-2 kernel must have shape"):
        lc = layers.LocallyConnected1D(2, 3, implementation=2)
        lc(np.zeros((1, 5, 1), "float32"))
        lc.kernel.value = np.zeros((5, 1, 3, 3), "float32")  # bypasses set_weights' shape check
        lc(np.zeros((1, 5, 1), "float32"))


@pytest.mark.parametrize("cls,kwargs,shape,out", [
    ("LocallyConnected1D", {"filters": 4, "kernel_size": 3, "strides": 2}, (None, 11, 3), (None, 5, 4)),
    ("LocallyConnected1D", {"filters": 4, "kernel_size": 4, "strides": 3, "padding": "same", "implementation": 3,
                            "data_format": "channels_first"}, (None, 3, 10), (None, 4, 4)),
    ("LocallyConnected2D", {"filters": 2, "kernel_size": (3, 2), "strides": (2, 1)}, (None, 7, 6, 3), (None, 3, 5, 2)),
    ("LocallyConnected2D", {"filters": 2, "kernel_size": 3, "padding": "same", "implementation": 2,
                            "data_format": "channels_first"}, (None, 3, 5, 4), (None, 2, 5, 4)),
])
def test_output_shape_config_round_trip_and_models(cls, kwargs, shape, out):
    layer = getattr(layers, cls)(**kwargs)
    assert layer.compute_output_shape(shape) == out
    config = layer.get_config()
    assert config["implementation"] == kwargs.get("implementation", 1)
    again = layers.deserialize(layers.serialize(layer))
    assert type(again) is type(layer) and again.get_config() == config
    inp = klayers.Input(shape[1:])
    model = klayers.Model(inp, layer(inp))
    x = np.random.default_rng(0).standard_normal((2,) + shape[1:]).astype("float32")
    y = model.predict(x)
    assert y.shape == (2,) + out[1:]
    np.testing.assert_allclose(y, layer(x), rtol=1e-6)
    rebuilt = klayers.Model.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict(x), y, rtol=1e-6)


def test_padding_is_normalized_like_keras():
    layer = layers.LocallyConnected1D(2, 3, padding="SAME", implementation=2)
    assert layer.padding == "same" and layer.get_config()["padding"] == "same"
    assert layers.LocallyConnected2D(2, 3).get_config()["data_format"] == "channels_last"
