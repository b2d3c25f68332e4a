"""More normalization layers recorded from tf-keras 2.21 and Keras 3.15: GroupNormalization (with
and without a mask: tf-keras weights its moments by the mask, Keras 3 ignores it),
UnitNormalization (including vectors whose norm is below the two Kerases' different floors),
RMSNormalization (Keras 3 only), SyncBatchNormalization (tf-keras's
``layers.experimental`` class: BatchNormalization with ``synchronized=True``, never fused) and
SpectralNormalization around Dense, Conv and Embedding layers, at inference (the stored kernel
is used as it is) and in training (one power iteration step from the stored ``vector_u``
rewrites the kernel and ``vector_u``), with the wrapped weights and ``vector_u`` randomized.
Model files (``MODELS``, recorded as the files family records its fixtures) hold the new layers in
small models saved by each Keras."""

from __future__ import annotations

import files
import numpy as np
from core import SEED, default_weights, int_input, record_layer
from normalization import stat_weights


def _seq_mask(t, tail=()):
    """A (batch, t, *tail) boolean mask with the first step kept."""
    def make(rng, b):
        m = rng.random((b, t) + tuple(tail)) < 0.7
        m[:, 0] = True
        return m
    return make


def _full_mask(shape):
    def make(rng, b):
        m = rng.random((b,) + tuple(shape)) < 0.6
        m.reshape(b, -1)[:, 0] = True
        return m
    return make


def tiny_rows(rng, shape, dtype):
    """Rows of every magnitude: ordinary, norm ~1e-3, ~1e-7 (below tf-keras's 1e-6 floor of the
    norm), ~1e-13 (below Keras 3's 1e-12) and exact zeros."""
    x = rng.standard_normal(shape).astype(np.float64)
    rows = x.reshape(-1, shape[-1])
    scales = [1.0, 1e-3, 1e-7, 1e-13, 0.0]
    for i in range(rows.shape[0]):
        rows[i] *= scales[i % len(scales)]
    return x.astype(dtype)


def _float64(kwargs):
    return "float64" if kwargs.get("dtype") == "float64" else "float32"


REGS = {
    "beta_initializer": "ones", "gamma_initializer": {"class_name": "Constant", "config": {"value": 0.5}},
    "beta_regularizer": "l2", "gamma_regularizer": {"class_name": "L1", "config": {"l1": 0.02}},
    "beta_constraint": "non_neg", "gamma_constraint": {"class_name": "MaxNorm", "config": {"max_value": 2.0}},
}

GN = [
    # name, kwargs, input shape (no batch), mask
    ("gn_groups2", {"groups": 2}, (4,), None),
    ("gn_default_groups", {}, (64,), None),
    ("gn_rank4_cl", {"groups": 3}, (3, 3, 6), None),
    ("gn_rank4_cf", {"groups": 2, "axis": 1}, (4, 3, 3), None),
    ("gn_axis_neg3", {"groups": 2, "axis": -3}, (4, 3, 2), None),
    ("gn_instance", {"groups": -1}, (4, 4, 3), None),
    ("gn_one_group", {"groups": 1, "epsilon": 1e-5}, (5, 4), None),
    ("gn_no_center_scale", {"groups": 2, "center": False, "scale": False}, (3, 4), None),
    ("gn_init_reg_constraint", dict(REGS, groups=2), (4,), None),
    ("gn_float64", {"groups": 2, "dtype": "float64"}, (3, 4), None),
    ("gn_rank3_axis1", {"groups": 2, "axis": 1}, (4, 3), None),
    ("gn_rank5", {"groups": 2}, (2, 2, 2, 4), None),
    ("gn_mask_steps", {"groups": 2}, (5, 4), _seq_mask(5, (1,))),
    ("gn_mask_full", {"groups": 2}, (3, 4), _full_mask((3, 4))),
]

UN = [
    ("un_default", {}, (5,), None),
    ("un_rank3", {}, (3, 4), None),
    ("un_axes", {"axis": [1, 2]}, (3, 2), None),
    ("un_axis1", {"axis": 1}, (4, 3), None),
    ("un_float64", {"dtype": "float64"}, (2, 3), None),
    ("un_tiny", {}, (5, 3), None),
    ("un_tiny_float64", {"dtype": "float64"}, (5, 3), None),
    ("un_mask", {}, (5, 3), _seq_mask(5)),
]

SYNC_BN = [
    # name, kwargs, shape, training, mask
    ("sync_bn_rank4", {}, (3, 3, 2), None, None),
    ("sync_bn_axis1", {"axis": 1, "center": False, "epsilon": 0.01}, (3, 4), None, None),
    ("sync_bn_train_rank4", {"momentum": 0.7}, (3, 3, 2), True, None),
    ("sync_bn_train_rank3_mask", {"momentum": 0.5}, (5, 3), True, _seq_mask(5)),
    ("sync_bn_float64", {"dtype": "float64"}, (2, 2, 3), None, None),
    ("sync_bn_init_reg", dict(REGS, moving_mean_initializer="ones"), (4,), None, None),
]


def _spectral(keras, inner, kwargs):
    layers = keras.layers
    make = {"Dense": layers.Dense, "Conv1D": layers.Conv1D, "Conv2D": layers.Conv2D,
            "Conv2DTranspose": layers.Conv2DTranspose, "Embedding": layers.Embedding}[inner[0]]
    return layers.SpectralNormalization(make(**inner[1]), **kwargs)


SN = [
    # name, (inner class, inner kwargs), wrapper kwargs, input shape, training, input, dtype
    ("sn_dense", ("Dense", {"units": 3}), {}, (4,), None, None, "float32"),
    ("sn_dense_train", ("Dense", {"units": 3}), {}, (4,), True, None, "float32"),
    ("sn_dense_train_pi3", ("Dense", {"units": 3, "use_bias": False}), {"power_iterations": 3}, (5,), True, None,
     "float32"),
    ("sn_dense_rank3_relu", ("Dense", {"units": 2, "activation": "relu"}), {}, (3, 4), None, None, "float32"),
    ("sn_conv1d", ("Conv1D", {"filters": 3, "kernel_size": 2, "use_bias": False}), {}, (5, 2), None, None,
     "float32"),
    ("sn_conv2d_train", ("Conv2D", {"filters": 2, "kernel_size": 2}), {"power_iterations": 2}, (4, 4, 3), True,
     None, "float32"),
    ("sn_conv2dt", ("Conv2DTranspose", {"filters": 2, "kernel_size": 2}), {}, (3, 3, 2), True, None, "float32"),
    ("sn_embedding_train", ("Embedding", {"input_dim": 6, "output_dim": 3}), {}, (4,), True, int_input(6),
     "int32"),
    ("sn_float64_train", ("Dense", {"units": 2, "dtype": "float64"}), {"dtype": "float64"}, (3,), True, None,
     "float64"),
]


def _vector_u_first_weights(layer, rng):
    """Random weights; the stored ``vector_u`` far from the kernel's top singular vector."""
    return [(rng.standard_normal(tuple(w.shape)) * 0.5).astype("float64" if "64" in str(w.dtype) else "float32")
            for w in layer.weights]


def group_unit_spectral_model(keras, rng):
    inp = keras.Input((6, 6, 4))
    h = keras.layers.SpectralNormalization(keras.layers.Conv2D(4, 3, padding="same"), power_iterations=2)(inp)
    h = keras.layers.GroupNormalization(groups=2)(h)
    h = keras.layers.UnitNormalization()(h)
    h = keras.layers.Identity()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.SpectralNormalization(keras.layers.Dense(3))(h)
    return keras.Model(inp, out), (rng.standard_normal((2, 6, 6, 4)) * 2).astype("float32")


def sync_bn_model(keras, rng):
    inp = keras.Input((5, 3))
    h = keras.layers.Conv1D(4, 2)(inp)
    h = keras.layers.experimental.SyncBatchNormalization()(h)
    h = keras.layers.Conv1DTranspose(2, 2, strides=2)(h)
    out = keras.layers.GroupNormalization(groups=1, axis=1)(h)
    return keras.Model(inp, out), (rng.standard_normal((2, 5, 3)) * 2).astype("float32")


def rms_adaptive_model(keras, rng):
    inp = keras.Input((7, 9, 3))
    h = keras.layers.Conv2D(4, 2)(inp)
    h = keras.layers.RMSNormalization()(h)
    h = keras.layers.AdaptiveMaxPooling2D((3, 2))(h)
    h = keras.layers.AdaptiveAveragePooling2D(2, data_format="channels_first")(h)
    return keras.Model(inp, keras.layers.Flatten()(h)), (rng.standard_normal((2, 7, 9, 3)) * 2).astype("float32")


MODELS = [
    # tf-keras cannot read its own .h5 of a SpectralNormalization (not in its legacy layer table);
    # klayers reads it
    files.Fixture("group_unit_spectral_model", group_unit_spectral_model),
    files.Fixture("sync_bn_model", sync_bn_model, keras3=False),
    files.Fixture("rms_adaptive_model", rms_adaptive_model, keras2=False),
]


def record(rec):
    import os

    # tf-keras's SpectralNormalization builds its InputSpec through ``tf.keras``, which is tf-keras
    # only where TF_USE_LEGACY_KERAS=1 (as tf-keras users run it); read lazily, at first use
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for name, kwargs, shape, mask in GN:
        record_layer(rec, keras, name, "GroupNormalization", kwargs, shape, dtype=_float64(kwargs), mask=mask)
    for name, kwargs, shape, mask in UN:
        record_layer(rec, keras, name, "UnitNormalization", kwargs, shape, dtype=_float64(kwargs), mask=mask,
                     make_input=tiny_rows if "tiny" in name else None)
    for name, kwargs, shape, training, mask in SYNC_BN:
        layer = keras.layers.experimental.SyncBatchNormalization(**kwargs)
        record_layer(rec, keras, name, "SyncBatchNormalization", kwargs, shape, dtype=_float64(kwargs),
                     training=training, mask=mask, weights=stat_weights, layer=layer)
    for name, inner, kwargs, shape, training, make, dtype in SN:
        record_layer(rec, keras, name, "SpectralNormalization", kwargs, shape, dtype=dtype, training=training,
                     make_input=make, weights=_vector_u_first_weights, layer=_spectral(keras, inner, kwargs))
    files._record(rec, keras, "keras2", MODELS)


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    for name, kwargs, shape, mask in GN:
        if name in ("gn_rank5", "gn_no_center_scale"):
            continue
        record_layer(rec, keras, name, "GroupNormalization", kwargs, shape, dtype=_float64(kwargs), mask=mask,
                     keras3=True)
    for name, kwargs, shape, mask in UN:
        record_layer(rec, keras, name, "UnitNormalization", kwargs, shape, dtype=_float64(kwargs), mask=mask,
                     make_input=tiny_rows if "tiny" in name else None, keras3=True)
    for name, kwargs, shape in [
        ("rms_default", {}, (5,)),
        ("rms_rank3_eps", {"epsilon": 1e-3}, (3, 4)),
        ("rms_axes", {"axis": [1, 2]}, (3, 2)),
        ("rms_axes_unsorted", {"axis": [-1, -2]}, (3, 4)),
        ("rms_rank2_axis1", {"axis": 1}, (4,)),
        ("rms_tiny", {}, (5, 3)),
        ("rms_float64", {"dtype": "float64"}, (2, 3)),
    ]:
        record_layer(rec, keras, name, "RMSNormalization", kwargs, shape, dtype=_float64(kwargs),
                     make_input=tiny_rows if "tiny" in name else None, weights=default_weights, keras3=True)
    for name, inner, kwargs, shape, training, make, dtype in SN:
        record_layer(rec, keras, name, "SpectralNormalization", kwargs, shape, dtype=dtype, training=training,
                     make_input=make, weights=_vector_u_first_weights, layer=_spectral(keras, inner, kwargs),
                     keras3=True)
    files._record(rec, keras, "keras3", MODELS)
