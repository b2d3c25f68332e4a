"""Tensor operations inside functional models, as the two Kerases save them: tf-keras's
``TFOpLambda`` (``tf.reduce_mean(x, 1)``, ``tf.concat``, ...) and ``SlicingOpLambda``
(``x[:, 0]``) nodes in ``.h5`` files, and Keras 3's operation nodes (``keras.ops.mean``,
``x[:, ::2]``, ``ops.relu`` ...) in ``.keras`` files: several small models, numbers on either
side of binary operations, float and int inputs.

Each case: the model built by the Keras that runs the recorder (a Dense in front where weights
make the inputs less regular), saved (``.h5`` by tf-keras, ``.keras`` by Keras 3), and Keras's
predictions ``y<i>`` on the inputs ``x<i>`` with their dtypes. klayers is never imported here.
"""

from __future__ import annotations

import zlib

import numpy as np


# -- tf-keras: TFOpLambda and SlicingOpLambda --------------------------------------------------------
def tf_slicing(keras, tf, rng):
    x = keras.Input((4, 6), name="x")
    h = keras.layers.Dense(6, name="d")(x)
    outs = [h[:, 0], h[..., 1:3], h[:, ::2], h[:, None], h[:, -1, 2:5], h[1:], h[:, 1]]
    return keras.Model(x, outs, name="slicing"), [rng.standard_normal((3, 4, 6)).astype("float32")]


def tf_reductions(keras, tf, rng):
    x = keras.Input((4, 6), name="x")
    h = keras.layers.Dense(6, name="d")(x)
    outs = [tf.reduce_mean(h, axis=1), tf.math.reduce_sum(h, -1, keepdims=True), tf.reduce_max(h, [1, 2]),
            tf.math.argmax(h, -1), tf.math.reduce_any(h > 0.5, axis=-1), tf.nn.softmax(h, axis=1),
            tf.nn.log_softmax(h), tf.nn.relu(h), tf.nn.gelu(h), tf.nn.silu(h), tf.nn.leaky_relu(h),
            tf.math.softplus(h), tf.math.erf(h), tf.math.square(h), tf.math.sqrt(tf.abs(h)),
            tf.math.greater(h, 0.5), tf.where(h > 0, h, 0.0), tf.clip_by_value(h, -0.5, 0.5), tf.cast(h * 3.0, "int32")]
    return keras.Model(x, outs, name="reductions"), [rng.standard_normal((3, 4, 6)).astype("float32")]


def tf_shapes(keras, tf, rng):
    x = keras.Input((4, 6), name="x")
    h = keras.layers.Dense(6, name="d")(x)
    t = tf.transpose(h, (0, 2, 1))
    outs = [tf.reshape(h, (-1, 24)), t, tf.concat([h, x], -1), tf.stack([h, x], 1), tf.expand_dims(h, 1),
            tf.squeeze(tf.expand_dims(h, -1), -1), tf.matmul(h, x, transpose_b=True), tf.matmul(h, t)]
    return keras.Model(x, outs, name="shapes"), [rng.standard_normal((3, 4, 6)).astype("float32")]


TF_CASES = [("tf_slicing", tf_slicing), ("tf_reductions", tf_reductions), ("tf_shapes", tf_shapes)]


# -- Keras 3: operation nodes --------------------------------------------------------------------------
def k3_unary(keras, rng):
    ops = keras.ops
    x = keras.Input((4, 6), name="x")
    h = keras.layers.Dense(6, name="d")(x)
    p = ops.abs(h) + 0.1
    outs = [ops.negative(h), ops.abs(h), ops.absolute(h), ops.sign(h), ops.square(h), ops.sqrt(p), ops.exp(h), ops.expm1(h),
            ops.log(p), ops.log1p(p), ops.sin(h), ops.cos(h), ops.tan(h), ops.tanh(h), ops.floor(h * 3.0), ops.ceil(h * 3.0),
            ops.reciprocal(p), ops.round(h * 10.0), ops.round(h, 1), ops.logical_not(h > 0), ops.rsqrt(p)]
    return keras.Model(x, outs, name="unary"), [rng.standard_normal((3, 4, 6)).astype("float32")]


def k3_ints(keras, rng):
    ops = keras.ops
    i = keras.Input((4, 6), dtype="int32", name="i")
    b = i > 0
    outs = [ops.negative(i), ops.abs(i), ops.sign(i), ops.square(i), ops.square(b), ops.sqrt(ops.abs(i)), ops.exp(i), ops.floor(i),
            ops.tanh(i), ops.round(i), ops.mean(i, axis=1), ops.mean(i, axis=[1, 2], keepdims=True), ops.sum(i, axis=-1),
            ops.sum(b, axis=1), ops.mean(b, axis=1), ops.max(i, axis=1), ops.min(i, axis=2, keepdims=True), ops.prod(i, axis=1),
            ops.argmax(i, axis=-1), ops.argmin(i, axis=1), ops.all(b, axis=1), ops.any(b, axis=2), ops.clip(i, 0, 3),
            ops.clip(b, 0, 1), ops.where(b, i, 0.5), ops.where(b, i, 7), i + 2, i + 2.0, i * i, i / 2, 2 ** ops.abs(i),
            ops.power(i, 2), ops.power(i, 2.0), ops.floor_divide(i, 2), ops.cast(i, "float16"), ops.relu(i), ops.relu6(i),
            ops.matmul(i, ops.transpose(i, (0, 2, 1))), i[:, 0], ops.logical_and(b, i < 3), ops.logical_or(b, i < -2)]
    return keras.Model(i, outs, name="ints"), [rng.integers(-5, 6, (3, 4, 6)).astype("int32")]


def k3_reductions(keras, rng):
    ops = keras.ops
    x = keras.Input((4, 6), name="x")
    h = keras.layers.Dense(6, name="d")(x)
    outs = [ops.mean(h, axis=1), ops.mean(h, axis=[1, 2], keepdims=True), ops.sum(h, axis=-1), ops.max(h, axis=1, keepdims=True),
            ops.min(h, axis=(1, 2)), ops.prod(h, axis=1), ops.all(h > -1.0, axis=1), ops.any(h > 1.0, axis=-1),
            ops.argmax(h, axis=1), ops.argmin(h, axis=-1, keepdims=True), ops.logsumexp(h, axis=-1),
            ops.max(h, axis=1, initial=0.25), ops.min(h, axis=2, initial=-0.25)]
    return keras.Model(x, outs, name="reductions"), [rng.standard_normal((3, 4, 6)).astype("float32")]


def k3_shapes(keras, rng):
    ops = keras.ops
    x = keras.Input((4, 6), name="x")
    y = keras.Input((4, 6), name="y")
    h = keras.layers.Dense(6, name="d")(x)
    t = ops.transpose(h, (0, 2, 1))
    outs = [ops.reshape(h, (-1, 3, 8)), t, ops.transpose(h), ops.expand_dims(h, 1), ops.expand_dims(h, [1, -1]),
            ops.squeeze(ops.expand_dims(h, -1), axis=-1), ops.squeeze(h[:, :1]), ops.concatenate([h, y * 2.0], axis=-1),
            ops.concatenate([h, y], axis=1), ops.stack([h, y], axis=1), ops.stack([h, y], axis=-1), ops.matmul(h, t),
            ops.matmul(h, ops.transpose(y, (0, 2, 1))), ops.einsum("bij,bkj->bik", h, y), ops.einsum("bij->bj", h),
            ops.cast(h * 4.0, "int32"), ops.cast(h, "bool"), ops.clip(h, -0.5, 0.5), ops.where(h > 0, h, 0.0),
            ops.where(h > y, h, y), ops.where(h > 0, 1.0, y), ops.power(ops.abs(h), 1.5), 2.0 ** h, ops.power(h, 2)]
    xs = [rng.standard_normal((3, 4, 6)).astype("float32") for _ in range(2)]
    return keras.Model([x, y], outs, name="shapes"), xs


def k3_slicing(keras, rng):
    x = keras.Input((4, 6), name="x")
    h = keras.layers.Dense(6, name="d")(x)
    outs = [h[:, 0], h[..., 1:3], h[:, ::2], h[:, None], h[:, -1, 2:5], h[:, 1:3, None, ::-1], h[..., -1], h[:, :, 1]]
    return keras.Model(x, outs, name="slicing"), [rng.standard_normal((3, 4, 6)).astype("float32")]


def k3_nn(keras, rng):
    ops = keras.ops
    x = keras.Input((4, 6), name="x")
    h = keras.layers.Dense(6, name="d")(x)
    h = h * 3.0
    outs = [ops.relu(h), ops.relu6(h), ops.sigmoid(h), ops.softmax(h), ops.softmax(h, axis=1), ops.log_softmax(h),
            ops.gelu(h), ops.gelu(h, approximate=False), ops.silu(h), ops.swish(h), ops.hard_sigmoid(h), ops.hard_silu(h),
            ops.softplus(h), ops.softsign(h), ops.elu(h), ops.elu(h, alpha=0.5), ops.selu(h), ops.leaky_relu(h),
            ops.leaky_relu(h, negative_slope=0.1), h > 0.5, h >= 0.5, h < 0.5, h <= 0.5, 1.0 - h, h / 2.0,
            ops.floor_divide(h, 0.7)]
    return keras.Model(x, outs, name="nn"), [rng.standard_normal((3, 4, 6)).astype("float32")]


K3_CASES = [("k3_unary", k3_unary), ("k3_ints", k3_ints), ("k3_reductions", k3_reductions),
            ("k3_shapes", k3_shapes), ("k3_slicing", k3_slicing), ("k3_nn", k3_nn)]


def _save_case(rec, name, model, xs, keras3):
    ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    filename = name + (".keras" if keras3 else ".h5")
    path = rec.path(filename)
    if keras3:
        model.save(path)
    else:
        model.save(path, save_format="h5")
    arrays = {f"x{i}": x for i, x in enumerate(xs)}
    arrays.update({f"y{i}": np.asarray(y) for i, y in enumerate(ys)})
    classes = sorted({type(layer).__name__ for layer in model.layers})
    rec.case(name, arrays=arrays, file=filename, classes=classes, n_inputs=len(xs), n_outputs=len(ys),
             n_weights=len(model.weights), output_dtypes=[str(np.asarray(y).dtype) for y in ys],
             output_shapes=[[None if d is None else int(d) for d in t.shape] for t in model.outputs])


def record(rec):
    import tensorflow as tf
    import tf_keras as keras

    for name, build in TF_CASES:
        keras.backend.clear_session()
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        model, xs = build(keras, tf, rng)
        _save_case(rec, name, model, xs, keras3=False)


def record_keras3(rec):
    import keras

    for name, build in K3_CASES:
        keras.backend.clear_session()
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        model, xs = build(keras, rng)
        _save_case(rec, name, model, xs, keras3=True)
