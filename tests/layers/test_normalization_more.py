"""GroupNormalization, UnitNormalization, RMSNormalization, SyncBatchNormalization,
SpectralNormalization, Identity and the adaptive pooling layers: the maths against plain NumPy
formulas, what differs between a layer read from a tf-keras and from a Keras 3 config, files,
and bad input (a ValueError or TypeError naming the layer)."""

import os

import numpy as np
import pytest

import klayers
from klayers import layers
from klayers.serialization import dialect_scope

RNG = np.random.default_rng(7)
F32 = "float32"


def _x(*shape, scale=2.0, dtype=F32):
    return (RNG.standard_normal(shape) * scale + 0.5).astype(dtype)


def _as_keras3(layer):
    """The same layer as read from a Keras 3 config."""
    with dialect_scope(3):
        return layers.deserialize(layers.serialize(layer))


# -- GroupNormalization --------------------------------------------------------------------------
def _group_norm(x, groups, axis, gamma, beta, eps, weights=None):
    """The definition, one sample and group at a time (biased variance)."""
    xc = np.moveaxis(x, axis, -1).astype(np.float64)
    w = np.ones_like(xc) if weights is None else np.moveaxis(np.broadcast_to(weights, x.shape), axis, -1).astype(np.float64)
    out = np.empty_like(xc)
    size = xc.shape[-1] // groups
    for b in range(x.shape[0]):
        for g in range(groups):
            sl = (b, ..., slice(g * size, (g + 1) * size))
            total = w[sl].sum()
            mean = (w[sl] * xc[sl]).sum() / total
            var = (w[sl] * (xc[sl] - mean) ** 2).sum() / total
            out[sl] = (xc[sl] - mean) / np.sqrt(var + eps)
    out = out * gamma + beta
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("shape,groups,axis", [((3, 8), 4, -1), ((2, 3, 3, 6), 3, -1), ((2, 4, 3, 3), 2, 1),
                                               ((2, 5, 4), -1, -1), ((2, 4, 3, 2), 1, -3)],
                         ids=["rank2", "rank4", "channels-first", "instance", "one-group-axis-neg3"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_group_normalization_is_the_definition(shape, groups, axis, dtype):
    layer = layers.GroupNormalization(groups=groups, axis=axis, epsilon=1e-3, dtype=dtype)
    x = _x(*shape, dtype=dtype)
    layer(x)
    c = shape[axis]
    gamma, beta = RNG.standard_normal(c).astype(dtype), RNG.standard_normal(c).astype(dtype)
    layer.set_weights([gamma, beta])
    y = layer(x)
    assert y.dtype == np.dtype(dtype)
    want = _group_norm(x, layer.groups, axis % len(shape), gamma, beta, 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-5 if dtype == F32 else 1e-12, atol=1e-5 if dtype == F32 else 1e-12)
    if groups == -1:
        assert layer.get_config()["groups"] == c  # resolved at build, as both Kerases write it


def test_group_normalization_mask_weights_the_moments_in_tf_keras_only():
    layer = layers.GroupNormalization(groups=2, center=False, scale=False)
    x = _x(3, 5, 4)
    mask = RNG.random((3, 5, 1)) < 0.6
    mask[:, 0] = True
    y = layer(x, mask=mask)
    np.testing.assert_allclose(y, _group_norm(x, 2, 2, 1.0, 0.0, 1e-3, weights=mask), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.compute_mask(x, mask), mask)  # passed on
    k3 = _as_keras3(layer)
    np.testing.assert_allclose(k3(x, mask=mask), _group_norm(x, 2, 2, 1.0, 0.0, 1e-3), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="group_normalization.*does not broadcast"):
        layer(x, mask=np.ones((3, 5), bool))  # tf.broadcast_to((3, 5), (3, 5, 4)) fails in tf-keras too


@pytest.mark.parametrize("kwargs,shape,match", [
    ({"groups": 3}, (2, 4), r"GroupNormalization 'gn'.*number of groups \(3\) must divide the number of channels \(4\)"),
    ({"groups": 8}, (2, 4), r"GroupNormalization 'gn'.*cannot be more than the number of channels"),
    ({"groups": 2, "axis": 3}, (2, 4), r"GroupNormalization 'gn'.*axis"),
    ({"groups": 2, "axis": 1}, (None, None, 4), r"GroupNormalization 'gn'.*defined dimension"),
])
def test_group_normalization_bad_input(kwargs, shape, match):
    layer = layers.GroupNormalization(name="gn", **kwargs)
    with pytest.raises(ValueError, match=match):
        layer.build(shape)


@pytest.mark.parametrize("kwargs", [{"groups": 0}, {"groups": -2}, {"groups": 2.0}, {"axis": [1, 2]}])
def test_group_normalization_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="GroupNormalization 'gn'"):
        layers.GroupNormalization(name="gn", **kwargs)


# -- UnitNormalization ---------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_unit_normalization_gives_unit_norms(axis):
    x = _x(3, 4, 5)
    y = layers.UnitNormalization(axis=axis)(x)
    axes = tuple(axis) if isinstance(axis, list) else (axis,)
    np.testing.assert_allclose(np.sqrt(np.sum(y.astype(np.float64) ** 2, axis=axes)), 1.0, rtol=1e-6)


def test_unit_normalization_floors_differ_between_the_kerases():
    x = np.array([[3e-9, 4e-9], [0.0, 0.0], [3e-14, 4e-14]], "float64")
    tf_keras = layers.UnitNormalization(dtype="float64")
    keras3 = _as_keras3(tf_keras)
    # tf-keras: x / max(norm, 1e-6); Keras 3: x / max(norm, 1e-12)
    np.testing.assert_allclose(tf_keras(x), x / 1e-6, rtol=1e-12)
    np.testing.assert_allclose(keras3(x)[0], [0.6, 0.8], rtol=1e-12)
    np.testing.assert_array_equal(keras3(x)[1], [0.0, 0.0])
    np.testing.assert_allclose(keras3(x)[2], x[2] * 1e12, rtol=1e-12)


def test_unit_normalization_bad_axis():
    with pytest.raises(TypeError, match="UnitNormalization 'un'.*axis"):
        layers.UnitNormalization(axis="last", name="un")
    with pytest.raises(ValueError, match="UnitNormalization 'un'.*axis"):
        layers.UnitNormalization(axis=[1, 4], name="un")(_x(2, 3, 4))


# -- RMSNormalization ----------------------------------------------------------------------------
@pytest.mark.parametrize("axis,shape", [(-1, (3, 5)), ([2, 1], (2, 3, 4)), ([-1], (2, 3, 4))])
def test_rms_normalization_is_the_definition(axis, shape):
    layer = layers.RMSNormalization(axis=axis, epsilon=1e-3)
    x = _x(*shape)
    layer(x)
    axes = sorted(axis) if isinstance(axis, list) else [axis]
    assert layer.get_config()["axis"] == axes  # Keras 3 writes the built axis as a sorted list
    scale = RNG.standard_normal(layer.scale.shape).astype(F32)
    layer.set_weights([scale])
    xd = x.astype(np.float64)
    want = xd / np.sqrt(np.mean(xd ** 2, axis=tuple(axes), keepdims=True) + 1e-3) * scale
    np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-6)


def test_rms_normalization_bad_input():
    with pytest.raises(ValueError, match="RMSNormalization 'rms'.*axis"):
        layers.RMSNormalization(axis=3, name="rms")(_x(2, 3))
    # Keras 3 multiplies by a (3,)-shaped scale from the last axis: (2, 3, 4) * (3,) does not broadcast
    with pytest.raises(ValueError, match="RMSNormalization 'rms'.*does not broadcast"):
        layers.RMSNormalization(axis=1, name="rms")(_x(2, 3, 4))


# -- SyncBatchNormalization ----------------------------------------------------------------------
def test_sync_batch_normalization_is_batch_normalization_never_fused():
    x = _x(4, 3, 3, 2)
    sync, plain = layers.SyncBatchNormalization(momentum=0.0), layers.BatchNormalization(momentum=0.0)
    for layer in (sync, plain):
        layer(x)
    weights = [RNG.standard_normal(2).astype(F32) for _ in range(3)] + [RNG.random(2).astype(F32) + 0.5]
    sync.set_weights(weights)
    plain.set_weights(weights)
    np.testing.assert_array_equal(sync(x), plain(x))  # inference
    sync(x, training=True)
    np.testing.assert_allclose(sync.moving_variance.value, x.var(axis=(0, 1, 2)), rtol=1e-5)  # biased: not fused
    assert "synchronized" not in sync.get_config()
    assert layers.serialize(sync)["module"] == "keras.layers.experimental"
    assert sync._affine_spec() is not None  # folds into a preceding convolution like BatchNormalization
    with pytest.raises(ValueError, match="SyncBatchNormalization.*fused=True"):
        layers.SyncBatchNormalization(fused=True)


# -- SpectralNormalization -----------------------------------------------------------------------
def _spectral(inner, x, dialect3=False):
    layer = layers.SpectralNormalization(inner, power_iterations=1)
    if dialect3:
        layer = _as_keras3(layer)
    layer(x)
    layer.set_weights([RNG.standard_normal(w.shape).astype(w.dtype) for w in layer.get_weights()])
    return layer


def test_spectral_normalization_inference_uses_the_stored_kernel():
    x = _x(3, 4)
    layer = _spectral(layers.Dense(3), x)
    before = layer.get_weights()
    kernel, bias = layer.layer.kernel.value, layer.layer.bias.value
    np.testing.assert_allclose(layer(x), x @ kernel + bias, rtol=1e-5)
    np.testing.assert_allclose(layer(x, training=False), x @ kernel + bias, rtol=1e-5)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_spectral_normalization_training_divides_by_the_power_estimate():
    x = _x(3, 4)
    layer = _spectral(layers.Dense(5, use_bias=False), x)
    w, u = layer.get_weights()
    v = u @ w.T
    v = v / np.linalg.norm(v)
    u_new = v @ w
    u_new = u_new / np.linalg.norm(u_new)
    sigma = (v @ w @ u_new.T).item()
    y = layer(x, training=True)
    np.testing.assert_allclose(layer.kernel.value, w / sigma, rtol=1e-5)
    np.testing.assert_allclose(layer.vector_u.value, u_new, rtol=1e-5)
    np.testing.assert_allclose(y, x @ (w / sigma), rtol=1e-5, atol=1e-6)
    for _ in range(30):  # repeated steps converge to a spectral norm of 1
        layer(x, training=True)
    assert abs(np.linalg.svd(layer.kernel.value, compute_uv=False)[0] - 1.0) < 1e-4
    zero = _spectral(layers.Dense(2), x)
    zero.layer.kernel.value = np.zeros_like(zero.layer.kernel.value)
    u = zero.vector_u.value.copy()
    zero(x, training=True)  # an all-zero kernel is left alone
    np.testing.assert_array_equal(zero.vector_u.value, u)


def test_spectral_normalization_weight_order_of_each_keras():
    x = _x(2, 4)
    tf_keras = _spectral(layers.Dense(3), x)
    assert [w.name.split("/")[-1] for w in tf_keras.weights] == ["kernel:0", "bias:0", "vector_u:0"]
    assert tf_keras.weights[0].name == f"{tf_keras.name}/kernel:0"  # named under the wrapper, as tf-keras does
    keras3 = _spectral(layers.Dense(3), x, dialect3=True)
    assert [w.name.split("/")[-1] for w in keras3.weights] == ["kernel:0", "vector_u:0", "bias:0"]


def test_spectral_normalization_keras3_casts_to_the_input_dtype():
    ids = np.array([[0, 3, 5]], "int32")
    tf_keras = _spectral(layers.Embedding(6, 3), ids)
    keras3 = _spectral(layers.Embedding(6, 3), ids, dialect3=True)
    keras3.set_weights([w * 4 for w in keras3.get_weights()])
    assert tf_keras(ids).dtype == np.float32
    out = keras3(ids)
    assert out.dtype == np.int32  # Keras 3: ops.cast(output, inputs.dtype)
    np.testing.assert_array_equal(out, np.trunc(keras3.layer.embeddings.value[ids]).astype(np.int32))


def test_spectral_normalization_bad_input():
    with pytest.raises(ValueError, match="SpectralNormalization 'sn'.*power_iterations"):
        layers.SpectralNormalization(layers.Dense(2), power_iterations=0, name="sn")
    with pytest.raises(ValueError, match="SpectralNormalization 'sn'.*Activation object has no attribute 'kernel'"):
        layers.SpectralNormalization(layers.Activation("relu"), name="sn")(_x(2, 3))
    with pytest.raises(ValueError, match="SpectralNormalization"):
        layers.SpectralNormalization("dense")


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_a_model_with_the_new_layers_round_trips_through_files(tmp_path, ext):
    inp = klayers.Input((6, 6, 4))
    h = layers.SpectralNormalization(layers.Conv2D(4, 3, padding="same"))(inp)
    h = layers.GroupNormalization(groups=2)(h)
    h = layers.Identity()(h)
    h = layers.UnitNormalization()(h)
    h = layers.RMSNormalization()(h)
    if ext == ".keras":
        h = layers.AdaptiveAveragePooling2D((2, 3))(h)
    else:
        h = layers.SyncBatchNormalization()(h)
    model = klayers.Model(inp, h)
    # positive values: SyncBatchNormalization's moving variance among them
    model.set_weights([(np.abs(RNG.standard_normal(w.shape)) + 0.1).astype(w.dtype) for w in model.get_weights()])
    x = _x(2, 6, 6, 4)
    path = os.path.join(tmp_path, "m" + ext)
    klayers.models.save_model(model, path)
    again = klayers.models.load_model(path)
    np.testing.assert_allclose(again(x), model(x), rtol=1e-6)
    # a model read from a .keras file orders SpectralNormalization's weights as Keras 3 does
    ours = {w.name: w.value for w in model.weights}
    assert sorted(ours) == sorted(w.name for w in again.weights)
    for w in again.weights:
        np.testing.assert_array_equal(w.value, ours[w.name])


# -- Identity --------------------------------------------------------------------------------------
def test_identity_returns_its_inputs():
    ints = np.arange(6, dtype="int32").reshape(2, 3)
    out = layers.Identity()(ints)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ints)
    mask = np.array([[True, False, True]] * 2)
    assert layers.Identity().supports_masking is False  # tf-keras's Identity does not support masking
    np.testing.assert_array_equal(_as_keras3(layers.Identity()).compute_mask(ints, mask), mask)


# -- adaptive pooling ------------------------------------------------------------------------------
def _adaptive_reference(x, output_size, reduce):
    """PyTorch's bins, channels last, one output value at a time."""
    rank = len(output_size)
    out = np.empty((x.shape[0],) + tuple(output_size) + (x.shape[-1],), x.dtype)
    for idx in np.ndindex(*output_size):
        sl = [slice(None)]
        for a, i in enumerate(idx):
            n, o = x.shape[1 + a], output_size[a]
            sl.append(slice((i * n) // o, -((-(i + 1) * n) // o)))
        out[(slice(None),) + idx] = reduce(x[tuple(sl)], axis=tuple(range(1, rank + 1)))
    return out


@pytest.mark.parametrize("cls,output_size,shape", [
    ("AdaptiveAveragePooling1D", (3,), (2, 7, 3)), ("AdaptiveMaxPooling1D", (5,), (2, 3, 2)),
    ("AdaptiveAveragePooling2D", (3, 4), (2, 7, 9, 2)), ("AdaptiveMaxPooling2D", (2, 5), (2, 6, 3, 2)),
    ("AdaptiveAveragePooling3D", (2, 3, 1), (1, 5, 4, 3, 2)), ("AdaptiveMaxPooling3D", (3, 2, 2), (1, 4, 5, 2, 2)),
])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_adaptive_pooling_bins(cls, output_size, shape, data_format):
    x = _x(*shape)
    reduce = np.max if "Max" in cls else np.mean
    want = _adaptive_reference(x, output_size, reduce)
    layer = getattr(layers, cls)(output_size, data_format=data_format)
    if data_format == "channels_first":
        got = np.moveaxis(layer(np.ascontiguousarray(np.moveaxis(x, -1, 1))), 1, -1)
    else:
        got = layer(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got.shape[1:-1] == output_size


def test_adaptive_pooling_bad_input():
    with pytest.raises(TypeError, match="AdaptiveAveragePooling2D 'ap'.*output_size"):
        layers.AdaptiveAveragePooling2D((2, 2, 2), name="ap")
    with pytest.raises(ValueError, match="AdaptiveMaxPooling1D 'ap'.*positive"):
        layers.AdaptiveMaxPooling1D(0, name="ap")
    with pytest.raises(ValueError, match="adaptive_max_pooling2d"):
        layers.AdaptiveMaxPooling2D(2)(_x(2, 4, 4))


def test_sync_batch_normalization_is_not_written_for_keras3(tmp_path):
    model = klayers.Sequential([klayers.Input((3,)), layers.SyncBatchNormalization(name="sync_batch_normalization")])
    with pytest.raises(ValueError, match="sync_batch_normalization is a SyncBatchNormalization, which Keras 3 does not have"):
        klayers.models.save_model(model, os.path.join(tmp_path, "m.keras"))


def test_files_refuse_what_the_other_keras_would_compute_differently(tmp_path):
    inp = klayers.Input((5, 4))
    out = layers.GroupNormalization(groups=2)(layers.Masking()(inp))
    masked = klayers.Model(inp, out)
    klayers.models.save_model(masked, os.path.join(tmp_path, "m.h5"))  # tf-keras: the same maths
    with pytest.raises(ValueError, match="mask reaches this GroupNormalization"):
        klayers.models.save_model(masked, os.path.join(tmp_path, "m.keras"))
    inp = klayers.Input((3,), dtype="int32")
    ids = klayers.Model(inp, layers.SpectralNormalization(layers.Embedding(5, 2))(inp))
    with pytest.raises(ValueError, match="casts its output to the dtype of its input"):
        klayers.models.save_model(ids, os.path.join(tmp_path, "e.keras"))
    unmasked = klayers.Model(inp, layers.GroupNormalization(groups=1)(layers.Embedding(5, 2)(inp)))
    klayers.models.save_model(unmasked, os.path.join(tmp_path, "u.keras"))
