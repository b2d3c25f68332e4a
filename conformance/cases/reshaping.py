"""Spatial reshaping layers recorded from tf-keras 2.21 (and Keras 3.15): Cropping1D/2D/3D,
ZeroPadding1D/2D/3D, UpSampling1D/2D/3D (nearest and bilinear), both data formats.

Each case: class_name, Keras config, ``layers.serialize`` output, inputs at batch 1 and N,
outputs and ``compute_output_shape`` (no weights). Odd sizes throughout.
"""

from __future__ import annotations

import zlib

import numpy as np

CF = "channels_first"
CASES = [
    ("cropping1d_default", "Cropping1D", {}, (6, 3)),
    ("cropping1d_asym", "Cropping1D", {"cropping": (2, 0)}, (5, 2)),
    ("cropping1d_int", "Cropping1D", {"cropping": 1}, (4, 3)),
    ("cropping2d_int", "Cropping2D", {"cropping": 1}, (5, 4, 2)),
    ("cropping2d_sym", "Cropping2D", {"cropping": (1, 2)}, (5, 7, 2)),
    ("cropping2d_pairs", "Cropping2D", {"cropping": ((0, 2), (1, 0))}, (5, 4, 3)),
    ("cropping2d_cf", "Cropping2D", {"cropping": ((1, 1), (0, 2)), "data_format": CF}, (2, 5, 5)),
    ("cropping3d_default", "Cropping3D", {}, (4, 5, 3, 2)),
    ("cropping3d_pairs", "Cropping3D", {"cropping": ((0, 1), (2, 0), (1, 1))}, (3, 4, 5, 2)),
    ("cropping3d_cf", "Cropping3D", {"cropping": (1, 0, 1), "data_format": CF}, (2, 3, 3, 4)),
    ("zeropadding1d_default", "ZeroPadding1D", {}, (4, 3)),
    ("zeropadding1d_asym", "ZeroPadding1D", {"padding": (0, 3)}, (3, 2)),
    ("zeropadding2d_int", "ZeroPadding2D", {"padding": 2}, (3, 3, 2)),
    ("zeropadding2d_sym", "ZeroPadding2D", {"padding": (1, 0)}, (3, 5, 2)),
    ("zeropadding2d_pairs", "ZeroPadding2D", {"padding": ((0, 2), (1, 3))}, (2, 3, 3)),
    ("zeropadding2d_cf", "ZeroPadding2D", {"padding": ((1, 0), (0, 2)), "data_format": CF}, (2, 3, 3)),
    ("zeropadding3d_default", "ZeroPadding3D", {}, (2, 3, 2, 2)),
    ("zeropadding3d_pairs", "ZeroPadding3D", {"padding": ((0, 1), (2, 0), (1, 1))}, (2, 2, 3, 2)),
    ("zeropadding3d_cf", "ZeroPadding3D", {"padding": (1, 0, 2), "data_format": CF}, (2, 2, 3, 2)),
    ("upsampling1d_default", "UpSampling1D", {}, (3, 2)),
    ("upsampling1d_size3", "UpSampling1D", {"size": 3}, (5, 3)),
    ("upsampling2d_default", "UpSampling2D", {}, (3, 5, 2)),
    ("upsampling2d_size", "UpSampling2D", {"size": (3, 2)}, (3, 3, 2)),
    ("upsampling2d_cf", "UpSampling2D", {"size": (2, 3), "data_format": CF}, (2, 3, 3)),
    ("upsampling2d_bilinear", "UpSampling2D", {"interpolation": "bilinear"}, (3, 5, 2)),
    ("upsampling2d_bilinear_size", "UpSampling2D", {"size": (3, 4), "interpolation": "bilinear"}, (4, 3, 2)),
    ("upsampling2d_bilinear_cf", "UpSampling2D", {"size": (2, 3), "interpolation": "bilinear", "data_format": CF}, (2, 3, 5)),
    ("upsampling2d_bilinear_1px", "UpSampling2D", {"size": 3, "interpolation": "bilinear"}, (1, 2, 3)),
    ("upsampling3d_default", "UpSampling3D", {}, (2, 3, 2, 2)),
    ("upsampling3d_size", "UpSampling3D", {"size": (1, 3, 2)}, (2, 2, 3, 2)),
    ("upsampling3d_cf", "UpSampling3D", {"size": (2, 1, 3), "data_format": CF}, (2, 2, 3, 2)),
]


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def record(rec):
    import tf_keras as keras

    for name, class_name, kwargs, shape in CASES:
        rng = _rng(name)
        layer = getattr(keras.layers, class_name)(**kwargs)
        arrays = {}
        for b in (1, 3):
            x = rng.standard_normal((b,) + shape).astype("float32")
            arrays[f"x_b{b}"] = x
            arrays[f"y_b{b}"] = np.asarray(layer(x))
        out = layer.compute_output_shape((None,) + shape)
        rec.case(name, arrays=arrays, class_name=class_name, config=layer.get_config(),
                 serialized=keras.layers.serialize(layer), n_weights=0, weight_names=[],
                 output_shape=list(out.as_list()), losses=[], batches=[1, 3], dtype="float32")


def record_keras3(rec):
    import keras

    for name, class_name, kwargs, shape in CASES[::3]:
        rng = _rng(name)
        layer = getattr(keras.layers, class_name)(**kwargs)
        x = rng.standard_normal((2,) + shape).astype("float32")
        rec.case(name, arrays={"x_b2": x, "y_b2": keras.ops.convert_to_numpy(layer(x))}, class_name=class_name,
                 config=layer.get_config(), serialized=keras.layers.serialize(layer), n_weights=0,
                 output_shape=list(layer.compute_output_shape((None,) + shape)), batches=[2], dtype="float32")
