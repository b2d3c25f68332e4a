"""keras.applications models whose files need more than Keras's public layers: the classes the
applications define for themselves (ConvNeXt's LayerScale and StochasticDepth,
InceptionResNetV2's CustomScaleLayer) and, in Keras 3 files, operation nodes (``x + 3.0`` in
MobileNetV3's hard sigmoid, ConvNeXt's residual adds), plus a model of Keras 3 arithmetic
operations with numbers on either side.

Each case: the model built by the Keras that runs the recorder, small (reduced widths and
depths where the constructor allows; MobileNetV3Small without its top), weights randomized
(crc32 seeded, BatchNorm variances positive), saved (``.h5`` by tf-keras, ``.keras`` by Keras
3), and Keras's predictions ``y<i>`` on the inputs ``x<i>``, computed before saving (tf-keras
cannot read its own ConvNeXt file back without the classes as custom objects). klayers is
never imported here.
"""

from __future__ import annotations

import zlib

import numpy as np


def _randomize(model, rng):
    values = []
    for w in model.weights:
        shape = tuple(int(d) for d in w.shape)
        name = getattr(w, "path", None) or w.name
        if "variance" in name:
            values.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
        else:
            values.append((rng.standard_normal(shape) * 0.3).astype("float32"))
    model.set_weights(values)


def convnext_mini(keras, dialect, rng):
    if dialect == "keras3":
        from keras.src.applications import convnext
        kw = {}
    else:
        from tf_keras.src.applications import convnext
        kw = {"model_name": "convnext_mini"}
    model = convnext.ConvNeXt(depths=[1, 1, 2, 1], projection_dims=[8, 16, 24, 32], drop_path_rate=0.1,
                              weights=None, input_shape=(32, 32, 3), classes=5, **kw)
    return model, [(rng.standard_normal((2, 32, 32, 3)) * 50).astype("float32")]


def mobilenet_v3_small(keras, dialect, rng):
    model = keras.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), alpha=0.35,
                                                include_top=False, pooling="avg")
    return model, [(rng.uniform(0, 255, (2, 32, 32, 3))).astype("float32")]


def custom_scale(keras, dialect, rng):
    if dialect == "keras3":
        from keras.src.applications.inception_resnet_v2 import CustomScaleLayer
    else:
        from tf_keras.src.applications.inception_resnet_v2 import CustomScaleLayer
    L = keras.layers
    x = keras.Input((4,))
    y = CustomScaleLayer(0.17, name="scale")([L.Dense(4, name="a")(x), L.Dense(4, name="b")(x)])
    return keras.Model(x, y, name="custom_scale"), [rng.standard_normal((3, 4)).astype("float32")]


def keras3_arithmetic(keras, dialect, rng):
    L = keras.layers
    x = keras.Input((5,), name="x")
    y = keras.Input((5,), name="y")
    h = L.Dense(5, name="d")(x)
    outs = [keras.ops.maximum(h * 2.0 - y, 0.5) + 3.0, 2.0 * h, 1.0 - h, h / (y * y + 1.0),
            keras.ops.minimum(h, y), keras.ops.true_divide(3.0, y * y + 1.0)]
    return keras.Model([x, y], outs, name="arithmetic"), [rng.standard_normal((4, 5)).astype("float32") for _ in range(2)]


CASES = [
    ("convnext_mini", convnext_mini, ("keras2", "keras3")),
    ("mobilenet_v3_small", mobilenet_v3_small, ("keras3",)),  # tf-keras's: TFOpLambda, in the files family's kin
    ("custom_scale", custom_scale, ("keras2", "keras3")),
    ("keras3_arithmetic", keras3_arithmetic, ("keras3",)),
]


def _record(rec, keras, dialect):
    for name, build, dialects in CASES:
        if dialect not in dialects:
            continue
        keras.backend.clear_session()
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        model, xs = build(keras, dialect, rng)
        _randomize(model, rng)
        ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        filename = name + (".keras" if dialect == "keras3" else ".h5")
        path = rec.path(filename)
        if dialect == "keras2":
            model.save(path, save_format="h5")
        else:
            model.save(path)
        arrays = {f"x{i}": x for i, x in enumerate(xs)}
        arrays.update({f"y{i}": np.asarray(y) for i, y in enumerate(ys)})
        classes = sorted({type(layer).__name__ for layer in model.layers})
        rec.case(name, arrays=arrays, file=filename, classes=classes, n_inputs=len(xs), n_outputs=len(ys),
                 n_weights=len(model.weights))


def record(rec):
    import tf_keras as keras

    _record(rec, keras, "keras2")


def record_keras3(rec):
    import keras

    _record(rec, keras, "keras3")
