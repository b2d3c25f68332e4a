"""The inference arena in model calls: repeated predicts allocate nothing new, buffers are
reused after their last reader within a call, what a call returns is never lent again, and
layers that may keep what they are given (user layers, Lambda, layers wrapping them) keep it
intact. Every test of the suite runs with the arena lending buffers of any size
(tests/conftest.py); these run the plan on every call, never a recording of it (which has
buffers of its own: tests/inference/test_replay.py)."""

from __future__ import annotations

import numpy as np
import pytest

import klayers
from klayers import inference
from klayers import layers as L


@pytest.fixture(autouse=True)
def _plan_on_every_call():
    with inference.unrecorded():
        yield


def _chain(width=16, depth=6):
    x_in = klayers.Input((12, 12, 4))
    h = x_in
    for i in range(depth):
        h = L.Conv2D(width, 3, padding="same", activation="relu" if i % 2 else "swish")(h)
        h = L.BatchNormalization()(h)
    h = L.Conv2D(5, 1)(h)  # a size of its own: its buffer would be the next call's
    out = L.Reshape((12 * 12 * 5,))(h)  # the output is a view of the last conv's buffer
    model = klayers.Model(x_in, out)
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in w.name else rng.normal(0, 0.3, w.shape)
                       for w in model.weights])
    return model


def _buffers(model):
    (arena,) = model._arenas
    return sorted(id(raw) for pool in arena.free.values() for raw, _ in pool), arena


def test_repeated_predicts_allocate_nothing_new_and_reuse_within_a_call():
    model = _chain()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 12, 12, 4)).astype("float32")
    with inference.disabled():
        want = model(x)
    first = model(x)
    ids, arena = _buffers(model)
    for _ in range(3):
        np.testing.assert_allclose(model(x), want, rtol=2e-5, atol=2e-5)
        assert _buffers(model)[0] == ids
    # six conv outputs of 3 x 12 x 12 x 16 floats: at most two live at once
    one = 3 * 12 * 12 * 16 * 4
    assert arena.peak <= 2 * one and len(ids) <= 3
    np.testing.assert_allclose(first, want, rtol=2e-5, atol=2e-5)


def test_what_a_call_returns_is_never_reused():
    model = _chain()
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((2, 12, 12, 4)).astype("float32") for _ in range(4)]
    outs = [model(x) for x in xs]
    with inference.disabled():
        for x, got in zip(xs, outs):
            np.testing.assert_allclose(got, model(x), rtol=2e-5, atol=2e-5)


class _Keeper(klayers.layers.Layer):
    """A user layer that keeps every input it is given, and the output of a klayers layer it
    calls inside (a buffer it would keep if the arena lent it one)."""

    def build(self, input_shape):
        self.inner = L.Activation("swish")
        self.kept = []

    def call(self, inputs):
        y = self.inner(inputs)
        self.kept.append((inputs, y))
        return y

    def compute_output_shape(self, input_shape):
        return input_shape


def test_layers_that_keep_their_inputs_keep_them_intact():
    seen = []
    x_in = klayers.Input((6, 6, 3))
    a = L.Conv2D(8, 3, padding="same")(x_in)
    k = _Keeper()(a)
    lam = L.Lambda(lambda t: seen.append(t) or t * 2.0)(L.Conv2D(8, 1)(k))
    wrapped = L.TimeDistributed(_Keeper())(L.Reshape((36, 8))(L.Conv2D(8, 1)(lam)))
    model = klayers.Model(x_in, L.Flatten()(L.Conv2D(4, 1)(L.Reshape((6, 6, 8))(wrapped))))
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((2, 6, 6, 3)).astype("float32") for _ in range(3)]
    seen.clear()  # the Lambda ran once to infer its output shape
    for x in xs:
        model(x)
    keeper = model.layers[2]
    assert len(keeper.kept) == 3 and len(seen) == 3
    with inference.disabled():
        for i, x in enumerate(xs):
            conv_out = model.layers[1](x)
            np.testing.assert_allclose(keeper.kept[i][0], conv_out, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(keeper.kept[i][1], L.Activation("swish")(conv_out), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(seen[i], model.layers[3](keeper.kept[i][1]), rtol=1e-5, atol=1e-5)


def test_nested_models_share_the_callers_arena():
    inner_in = klayers.Input((5, 5, 4))
    t = L.Conv2D(4, 3, padding="same", activation="relu")(inner_in)
    inner = klayers.Model(inner_in, [L.Add()([t, inner_in]), L.Conv2D(2, 1)(t)])
    x_in = klayers.Input((5, 5, 4))
    a, b = inner(L.Conv2D(4, 1)(x_in))
    c, d = inner(a)
    out = L.Concatenate()([L.Flatten()(b), L.Flatten()(c), L.Flatten()(d)])
    model = klayers.Model(x_in, out)
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((3, 5, 5, 4)).astype("float32") for _ in range(3)]
    got = [model(x) for x in xs]
    assert not inner.__dict__.get("_arenas")  # the inner model ran in its caller's arena
    with inference.disabled():
        for x, g in zip(xs, got):
            np.testing.assert_allclose(g, model(x), rtol=2e-5, atol=2e-5)
