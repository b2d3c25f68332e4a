"""More Keras 3 operation nodes in functional models, saved by Keras 3.15 (``.keras``): the
``keras.ops`` calls of :mod:`op_nodes` did not cover: ``mod``, ``cumsum`` / ``cumprod``,
``var`` / ``std`` / ``median`` / ``quantile`` / ``average``, ``norm`` / ``normalize``, ``take`` /
``take_along_axis``, ``tile`` / ``repeat`` / ``pad`` / ``slice`` / ``broadcast_to``, ``flip`` /
``roll`` / ``sort`` / ``argsort`` / ``diff``, ``tril`` / ``triu``, ``*_like``, ``isnan`` & co.,
``erf`` / ``erfinv``, ``glu`` / ``celu`` / ``sparsemax`` / ``log_sigmoid`` / ``hard_tanh``,
``one_hot``, and the operations of several outputs ``split``, ``unstack`` and ``top_k``; float,
int and bool inputs (ties in ``argsort`` / ``top_k`` of ints).

Each case: the model, saved, and Keras's predictions ``y<i>`` on the inputs ``x<i>`` (one batch
of 3: a few operations flatten or slice the batch axis) with their dtypes, as :mod:`op_nodes`
records them. klayers is never imported here.
"""

from __future__ import annotations

import zlib

from op_nodes import _save_case


def k3_stats(keras, rng):
    ops = keras.ops
    x = keras.Input((4, 6), name="x")
    h = keras.layers.Dense(6, name="d")(x)
    w = ops.abs(h[0, 0]) + 0.1
    outs = [ops.mod(h, 0.7), ops.mod(h, -0.7), ops.mod(2.0, h), ops.cumsum(h, axis=1), ops.cumsum(h), ops.cumprod(h, axis=-1),
            ops.var(h, axis=1), ops.var(h, axis=[1, 2], keepdims=True), ops.std(h, axis=-1), ops.std(h, axis=1, keepdims=True),
            ops.median(h, axis=1), ops.median(h, axis=-1, keepdims=True), ops.quantile(h, 0.3, axis=1),
            ops.quantile(h, [0.2, 0.9], axis=-1), ops.average(h, axis=1), ops.average(h, axis=1, weights=ops.abs(h) + 0.1),
            ops.average(h, axis=-1, weights=w), ops.norm(h, axis=-1), ops.norm(h, ord=1, axis=-1),
            ops.norm(h, ord=float("inf"), axis=1, keepdims=True), ops.norm(h, ord=3, axis=-1), ops.norm(h, ord=0, axis=-1),
            ops.norm(h, axis=(1, 2)), ops.norm(h, ord="nuc", axis=(1, 2)), ops.norm(h, ord=2, axis=(1, 2)),
            ops.norm(h, ord=1, axis=(1, 2), keepdims=True), ops.normalize(h), ops.normalize(h, axis=1, order=1),
            ops.erf(h), ops.erfinv(ops.tanh(h) * 0.9), ops.isnan(ops.log(h)), ops.isinf(ops.log(ops.abs(h) * 0.0)),
            ops.isfinite(ops.log(h)), ops.nan_to_num(ops.log(h)), ops.nan_to_num(ops.log(ops.abs(h) * 0.0), neginf=-5.0)]
    return keras.Model(x, outs, name="stats"), [rng.standard_normal((3, 4, 6)).astype("float32")]


def k3_nn(keras, rng):
    ops = keras.ops
    x = keras.Input((4, 6), name="x")
    h = keras.layers.Dense(6, name="d")(x) * 2.0
    outs = [ops.glu(h), ops.glu(h, axis=1), ops.celu(h), ops.celu(h, alpha=0.5), ops.sparsemax(h), ops.sparsemax(h, axis=1),
            ops.log_sigmoid(h), ops.hard_tanh(h), *ops.top_k(h, 3), ops.top_k(h, 1)[1]]
    return keras.Model(x, outs, name="nn"), [rng.standard_normal((3, 4, 6)).astype("float32")]


def k3_arrays(keras, rng):
    ops = keras.ops
    x = keras.Input((4, 6), name="x")
    h = keras.layers.Dense(6, name="d")(x)
    outs = [ops.take(h, [0, 2], axis=1), ops.take(h, [[0, -1], [1, 2]], axis=-1), ops.take(h, [[1, 5]]),
            ops.take_along_axis(h, ops.argsort(h, axis=1), axis=1),
            ops.take_along_axis(h, ops.argmax(h, axis=-1, keepdims=True), axis=-1),
            ops.tile(h, [1, 2, 1]), ops.tile(h, 2), ops.repeat(h, 2, axis=1), ops.repeat(h, [1, 2, 0, 1], axis=1),
            *ops.split(h, 2, axis=-1), *ops.split(h, [1, 3], axis=1), ops.pad(h, [[0, 0], [1, 2], [0, 1]]),
            ops.pad(h, [[0, 0], [1, 1], [2, 2]], mode="reflect"), ops.pad(h, [[0, 0], [2, 1], [1, 1]], mode="symmetric"),
            ops.pad(h, [[0, 0], [1, 0], [0, 1]], constant_values=1.5), *ops.unstack(h, axis=1),
            ops.slice(h, [0, 1, 2], [-1, 2, 3]), ops.slice(h, [1, 0, 0], [2, 4, 6]), ops.flip(h, axis=1),
            ops.flip(h, axis=[1, 2]), ops.roll(h, 2, axis=-1), ops.roll(h, [1, -1], axis=[1, 2]), ops.roll(h, 3),
            ops.sort(h, axis=1), ops.sort(h), ops.argsort(h), ops.argsort(h, axis=1), ops.diff(h, axis=1), ops.diff(h, n=2),
            ops.broadcast_to(h[:, :1], (3, 4, 6)), ops.tril(h), ops.triu(h, 1), ops.tril(h, -1), ops.triu(h, -2),
            ops.zeros_like(h), ops.ones_like(h, dtype="int32"), ops.full_like(h, 2.5), ops.full_like(h, 3, dtype="int32")]
    return keras.Model(x, outs, name="arrays"), [rng.standard_normal((3, 4, 6)).astype("float32")]


def k3_ints(keras, rng):
    ops = keras.ops
    i = keras.Input((4, 6), dtype="int32", name="i")
    b = i > 0
    outs = [ops.mod(i, 3), ops.mod(i, -3), ops.mod(b, 2), ops.cumsum(i, axis=1), ops.cumsum(b, axis=-1), ops.cumprod(i, axis=1),
            ops.cumsum(i, axis=1, dtype="float32"), ops.var(i, axis=1), ops.std(i, axis=-1), ops.median(i, axis=1),
            ops.quantile(i, 0.25, axis=-1), ops.average(i, axis=1), ops.norm(i, axis=-1), ops.take(i, [0, 2], axis=1),
            ops.take(i, ops.mod(i[:, 0, :2], 4), axis=1), ops.take_along_axis(i, ops.argsort(i, axis=-1), axis=-1),
            ops.sort(i, axis=1), ops.argsort(i), ops.sort(b, axis=-1), ops.argsort(b), ops.diff(i), ops.diff(b, axis=1),
            ops.flip(i), ops.roll(b, 1, axis=1), ops.tile(b, [1, 1, 2]), ops.repeat(i, 3), *ops.split(i, 3, axis=-1),
            *ops.unstack(i, num=4, axis=1), *ops.top_k(i, 4), ops.one_hot(i, 5), ops.one_hot(i, 4, axis=1),
            ops.one_hot(i, 6, dtype="int32"), ops.one_hot(i, 3, dtype="bool"), ops.broadcast_to(i[:, :, :1], (3, 4, 6)),
            ops.tril(i), ops.triu(b), ops.zeros_like(b), ops.ones_like(i), ops.full_like(i, 2.5), ops.full_like(b, 1),
            ops.isnan(i), ops.isinf(i), ops.isfinite(b), ops.nan_to_num(i),
            ops.pad(i, [[0, 0], [1, 1], [1, 1]], constant_values=7), ops.slice(i, [0, 0, 1], [-1, 3, 4])]
    return keras.Model(i, outs, name="ints"), [rng.integers(-5, 6, (3, 4, 6)).astype("int32")]


def k3_half(keras, rng):
    ops = keras.ops
    x = keras.Input((4, 6), dtype="float16", name="x")
    outs = [ops.mod(x, 0.7), ops.cumsum(x, axis=1), ops.var(x, axis=1), ops.std(x, axis=-1), ops.median(x, axis=1),
            ops.norm(x, axis=-1), ops.erf(x), ops.erfinv(x * 0.4), ops.celu(x), ops.log_sigmoid(x), *ops.top_k(x, 2),
            ops.average(x, axis=1), ops.take(x, [3, 0], axis=-1), ops.sort(x, axis=1), ops.isnan(x)]
    return keras.Model(x, outs, name="half"), [rng.standard_normal((3, 4, 6)).astype("float16")]


def k3_resize(keras, rng):
    ops = keras.ops
    x = keras.Input((5, 7, 3), name="x")
    i = keras.Input((5, 7, 3), dtype="int32", name="i")
    h = keras.layers.Dense(3, name="d")(x)
    outs = [ops.image.resize(h, (10, 14)), ops.image.resize(h, (3, 4)), ops.image.resize(h, (8, 5)), ops.image.resize(h, (5, 7)),
            ops.image.resize(h, (9, 3), interpolation="nearest"), ops.image.resize(h, (11, 16), interpolation="nearest"),
            ops.image.resize(ops.transpose(h, (0, 3, 1, 2)), (6, 9), data_format="channels_first"),
            ops.image.resize(h[0], (4, 9)), ops.image.resize(i, (7, 10), interpolation="nearest"),
            ops.image.resize(i, (7, 10))]
    xs = [rng.standard_normal((3, 5, 7, 3)).astype("float32"), rng.integers(-50, 50, (3, 5, 7, 3)).astype("int32")]
    return keras.Model([x, i], outs, name="resize"), xs


K3_CASES = [("k3_stats", k3_stats), ("k3_nn", k3_nn), ("k3_arrays", k3_arrays), ("k3_ints", k3_ints),
            ("k3_half", k3_half), ("k3_resize", k3_resize)]


def record_keras3(rec):
    import keras
    import numpy as np

    for name, build in K3_CASES:
        keras.backend.clear_session()
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        model, xs = build(keras, rng)
        _save_case(rec, name, model, xs, keras3=True)
