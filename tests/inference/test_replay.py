"""Recorded inference calls (klayers.engine.replay, klayers.backend.tape): the second call of an
input signature is recorded and checked, later ones replay the recording; every answer equals
the layer-by-layer one, and a recording that misses work, or a graph that cannot be recorded,
runs the plan as before."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import klayers
from klayers import inference
from klayers import layers as L
from klayers.engine import replay


def _model(dtype="float32", act="softmax"):
    x = klayers.Input((12, 12, 3), dtype=dtype)
    y = L.Rescaling(1 / 4.0, offset=-0.5, dtype=dtype)(x)
    y = L.ZeroPadding2D(1, dtype=dtype)(y)
    y = L.Conv2D(8, 3, use_bias=False, dtype=dtype)(y)
    y = L.BatchNormalization(dtype=dtype)(y)
    y = L.ReLU(dtype=dtype)(y)
    a = L.MaxPooling2D(2, dtype=dtype)(y)
    b = L.AveragePooling2D(2, dtype=dtype)(y)
    b = L.DepthwiseConv2D(3, padding="same", dtype=dtype)(b)
    y = L.Concatenate(dtype=dtype)([a, b])
    z = L.Conv2D(16, 1, dtype=dtype)(y)
    y = L.Add(dtype=dtype)([L.Conv2D(16, 1, dtype=dtype)(y), z])
    y = L.Activation("swish", dtype=dtype)(y)
    y = L.GlobalAveragePooling2D(dtype=dtype)(y)
    out = L.Dense(5, activation=act, dtype=dtype)(y)
    model = klayers.Model(x, [out, z])
    rng = np.random.default_rng(1)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in w.name else rng.normal(0, 0.4, w.shape)
                       for w in model.weights])
    return model


def _inputs(n, dtype="float32", batch=2):
    rng = np.random.default_rng(7)
    return [rng.uniform(0, 4, (batch, 12, 12, 3)).astype(dtype) for _ in range(n)]


def _expected(model, xs):
    with inference.disabled():
        return [model.predict(x, verbose=0) for x in xs]


def _states(model):
    return list(model.__dict__.get("_replays", {}).values())


def _assert_same(got, want, dtype="float32"):
    tol = 2e-6 if dtype == "float32" else 1e-13
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)

def _calls_match_the_layers(model, xs):
    """Every call of ``model`` on ``xs`` (in order: the plan, its recording, replays) gives
    what the layers give, one output or several."""
    for x, w in zip(xs, _expected(model, xs)):
        got = model.predict(x, verbose=0)
        _assert_same(got if isinstance(got, list) else [got], w if isinstance(w, list) else [w])



@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_third_call_replays_the_recording_of_the_second(dtype):
    model = _model(dtype)
    xs = _inputs(5, dtype)
    want = _expected(model, xs)
    runs = []
    original = replay.Replay.run
    try:
        replay.Replay.run = lambda self, flat: runs.append(1) or original(self, flat)
        got = [model.predict(x, verbose=0) for x in xs]
    finally:
        replay.Replay.run = original
    assert [type(s).__name__ for s in _states(model)] == ["Replay"]
    # the check at recording (one replay) and calls 3 to 5
    assert len(runs) == 4
    for g, w in zip(got, want):
        _assert_same(g, w, dtype)


def test_replayed_outputs_are_the_callers_own_arrays():
    model = _model()
    x = _inputs(1)[0]
    for _ in range(2):
        model.predict(x, verbose=0)
    first = model.predict(x, verbose=0)
    keep = [a.copy() for a in first]
    first[0][...] = 0
    second = model.predict(x, verbose=0)
    assert all(a is not b for a, b in zip(first, second))
    _assert_same(second, keep)


def test_the_input_is_read_not_kept():
    model = _model()
    x, other = _inputs(2)
    want = _expected(model, [x, other])
    for _ in range(3):
        model.predict(x, verbose=0)
    before = x.copy()
    _assert_same(model.predict(other, verbose=0), want[1])
    np.testing.assert_array_equal(x, before)
    _assert_same(model.predict(x, verbose=0), want[0])


def test_a_float64_input_of_a_float32_model_is_converted_first():
    model = _model()
    xs = [x.astype("float64") for x in _inputs(4)]
    _calls_match_the_layers(model, xs)
    assert [type(s).__name__ for s in _states(model)] == ["Replay"]


def test_assigned_weights_are_recorded_again():
    model = _model()
    xs = _inputs(3)
    for x in xs:
        model.predict(x, verbose=0)
    rng = np.random.default_rng(3)
    model.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()])
    _calls_match_the_layers(model, xs)
    model.layers[3].kernel.assign(model.layers[3].kernel.value * 2)  # one variable, in place
    _calls_match_the_layers(model, xs)


def test_each_thread_count_and_batch_size_is_its_own_signature():
    model = _model()
    xs = _inputs(3) + _inputs(3, batch=3)
    want = _expected(model, xs)
    for threads in (2, 1, 2):
        with klayers.num_threads(threads):
            for x, w in zip(xs, want):
                _assert_same(model.predict(x, verbose=0), w)
    assert len(_states(model)) == 2


def test_a_graph_with_a_layer_run_by_itself_is_not_recorded():
    x = klayers.Input((4,))
    y = L.Dense(3)(x)
    y = L.Lambda(lambda t: t * 2.0)(y)
    model = klayers.Model(x, L.Dense(2)(y))
    xs = [np.full((1, 4), v, "float32") for v in (1.0, 2.0, 3.0, 4.0)]
    _calls_match_the_layers(model, xs)
    assert not any(isinstance(s, replay.Replay) for s in _states(model))


@pytest.mark.parametrize("outer", ["functional", "sequential"])
def test_a_nested_model_is_recorded_on_its_callers_tape(outer):
    """Transfer learning's shape: a base model called as a layer, a head after it. The base
    runs its own plan on the caller's arena while the caller records, so its kernel calls land
    on the caller's tape and the whole model replays as one; the base called by itself keeps
    recording its own calls."""
    base = _model()
    head = [L.Dense(4), L.ReLU()]
    if outer == "functional":
        x = klayers.Input((12, 12, 3))
        out, z = base(x)
        model = klayers.Model(x, [head[1](head[0](out)), z])
    else:
        inner = klayers.Model(base.inputs, base.outputs[0])
        model = klayers.Sequential([klayers.Input((12, 12, 3)), inner] + head)
    xs = _inputs(5)
    runs = []
    original = replay.Replay.run
    try:
        replay.Replay.run = lambda self, flat: runs.append(len(self.tape.calls)) or original(self, flat)
        _calls_match_the_layers(model, xs)
    finally:
        replay.Replay.run = original
    (state,) = _states(model)
    assert isinstance(state, replay.Replay)
    # the base's kernel calls are on the caller's tape: more of them than the head's three
    assert len(runs) == 4 and runs[0] > 10
    _calls_match_the_layers(base, xs)
    assert [type(s).__name__ for s in _states(base)] == ["Replay"]


def test_a_layer_whose_python_work_the_tape_misses_is_caught_by_the_check():
    """A layer the planner does not lower runs as usual while the tape records; NumPy work it
    does outside the tape leaves the recorded call's values behind, the check catches it, and
    every call stays right. (The layer passes for klayers's own, which may be recorded.)"""

    class Doubled(klayers.layers.Layer):
        def call(self, inputs):
            return np.asarray(inputs) * 2.0

    Doubled.__module__ = "klayers.layers.testing"
    x = klayers.Input((4,))
    model = klayers.Model(x, L.Dense(2)(Doubled()(L.Dense(3)(x))))
    xs = [np.random.default_rng(i).normal(size=(2, 4)).astype("float32") for i in range(4)]
    _calls_match_the_layers(model, xs)
    assert _states(model) == ["refused"]


def test_a_call_that_makes_masks_keeps_them_and_is_not_recorded():
    x = klayers.Input((5, 3))
    model = klayers.Model(x, L.Dense(2)(L.Masking(0.0)(x)))
    feed = np.random.default_rng(3).normal(size=(2, 5, 3)).astype("float32")
    feed[0, 1] = 0.0
    for _ in range(4):
        out, mask = model._run_internal_graph(feed)
        np.testing.assert_array_equal(mask, [[True, False, True, True, True], [True] * 5])
    assert _states(model) == ["refused"]


def test_an_activation_the_kernels_do_not_compute_spoils_the_recording():
    def halve(t):
        return t * 0.5

    x = klayers.Input((4,))
    model = klayers.Model(x, L.Dense(3, activation=halve)(x))
    xs = [np.arange(4, dtype="float32")[None] + v for v in range(4)]
    _calls_match_the_layers(model, xs)
    assert _states(model) == ["refused"]


def test_work_the_tape_missed_is_caught_by_the_check(monkeypatch):
    """Pooling run without being recorded: the recording, replayed on other values, leaves the
    recorded call's pooled values behind; the check refuses it and every call stays right."""
    from klayers.ops import pooling

    class Unrecorded:
        @staticmethod
        def run(fn, *args):
            return fn(*args)

        def __getattr__(self, name):
            return getattr(replay.tape_lib, name)

    monkeypatch.setattr(pooling, "tape", Unrecorded())
    model = _model()
    xs = _inputs(4)
    _calls_match_the_layers(model, xs)
    assert _states(model) == ["refused"]


def test_an_input_with_no_other_values_to_check_is_not_recorded():
    x = klayers.Input((3,), dtype="int32")
    model = klayers.Model(x, L.Dense(2)(L.Flatten()(L.Reshape((3, 1))(x))))
    feed = np.zeros((1, 3), "int32")
    want = _expected(model, [feed])[0]
    for _ in range(3):
        _assert_same([model.predict(feed, verbose=0)], [want])
    assert _states(model) == ["refused"]


def test_replay_can_be_switched_off():
    model = _model()
    xs = _inputs(3)
    with inference.unrecorded():
        for x in xs:
            model.predict(x, verbose=0)
    assert _states(model) == []


def test_concurrent_calls_get_their_own_answers():
    model = _model()
    xs = _inputs(6)
    want = _expected(model, xs)
    for x in xs[:3]:
        model.predict(x, verbose=0)
    errors = []

    def work(k):
        try:
            for i in range(25):
                j = (k + i) % len(xs)
                _assert_same(model.predict(xs[j], verbose=0), want[j])
        except AssertionError as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def _text_model(stateful=False, permute=False, go_backwards=False):
    batch = 2 if stateful else None
    x = klayers.Input((7,), batch_size=batch, dtype="int32")
    y = L.Embedding(50, 6)(x)
    if permute:  # a transposed view, then a copy of it
        y = L.Permute((2, 1))(y)
        y = L.Permute((2, 1))(L.Cropping1D((1, 0))(L.UpSampling1D(2)(L.Permute((2, 1))(y))))
    y = L.LSTM(5, return_sequences=True, stateful=stateful, go_backwards=go_backwards)(y)
    y = L.GRU(4, stateful=stateful)(y)
    y = L.SimpleRNN(3, return_sequences=True)(L.RepeatVector(2)(y))
    model = klayers.Model(x, L.Dense(2)(L.Flatten()(y)))
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0, 0.5, w.shape) for w in model.weights])
    return model


def _tokens(n, batch=2):
    rng = np.random.default_rng(9)
    return [rng.integers(0, 50, (batch, 7)).astype("int32") for _ in range(n)]


@pytest.mark.parametrize("go_backwards, permute", [(False, False), (True, False), (False, True)])
def test_recurrent_layers_and_embeddings_are_recorded(go_backwards, permute):
    model = _text_model(go_backwards=go_backwards, permute=permute)
    xs = _tokens(5)
    _calls_match_the_layers(model, xs)
    assert [type(s).__name__ for s in _states(model)] == ["Replay"]


def test_a_bad_index_is_refused_by_a_replayed_call():
    model = _text_model()
    xs = _tokens(3)
    for x in xs:
        model.predict(x, verbose=0)
    bad = xs[0].copy()
    bad[1, 3] = 50
    with pytest.raises(ValueError, match="Embedding .*index 50 is not in"):
        model.predict(bad, verbose=0)
    _assert_same([model.predict(xs[1], verbose=0)], _expected(model, xs[1:2]))


def test_stateful_layers_are_not_replayed():
    model = _text_model(stateful=True)
    xs = _tokens(5)
    with inference.unrecorded():
        want = [model.predict(x, verbose=0) for x in xs]
    model.reset_states()
    for x, w in zip(xs, want):
        _assert_same([model.predict(x, verbose=0)], [w])
    assert not any(isinstance(s, replay.Replay) for s in _states(model))


def test_a_recording_replaces_the_idle_arenas():
    model = _model()
    x = _inputs(1)[0]
    model.predict(x, verbose=0)
    assert model.__dict__.get("_arenas")  # the first call's arena is kept for the next
    model.predict(x, verbose=0)  # recorded: the recording has buffers of its own
    assert model.__dict__.get("_arenas") == []
    with inference.unrecorded():
        model.predict(x, verbose=0)
    assert len(model.__dict__["_arenas"]) == 1


def test_outputs_the_caller_dropped_are_filled_again_and_held_ones_never():
    model = _model()
    xs = _inputs(6)
    want = _expected(model, xs)
    for x in xs[:2]:
        model.predict(x, verbose=0)
    kept = model.predict(xs[2], verbose=0)  # held by the test throughout
    keep = [a.copy() for a in kept]
    seen = set()
    y = None
    for x, w in zip(xs[3:], want[3:]):
        y = model(x)  # the one before last is dropped here
        seen.add(id(y[0]))
        _assert_same(y, w)
    _assert_same(kept, keep)  # never written again
    assert len(seen) <= 3  # buffers come back: at most two alternate after the first
    view = y[0][:1]  # a view keeps its base alive: not reused either
    before = view.copy()
    for x in xs[:3]:
        model(x)
    np.testing.assert_array_equal(view, before)


def test_a_few_calls_on_large_tensors_are_not_replayed():
    """Copying the inputs in and the outputs out would cost more than the replay saves."""
    a, b = klayers.Input((16, 16, 64)), klayers.Input((16, 16, 64))
    model = klayers.Model([a, b], L.Concatenate()([a, b]))
    rng = np.random.default_rng(4)
    xs = [[rng.standard_normal((16, 16, 16, 64)).astype("float32") for _ in range(2)] for _ in range(3)]
    for x in xs:
        np.testing.assert_array_equal(model.predict(x, verbose=0), np.concatenate(x, axis=-1))
    assert _states(model) == ["refused"]


def test_model_outputs_are_not_kept_alive_by_a_reference_cycle():
    """Without the cyclic collector, a call's outputs are freed as soon as the caller drops
    them (a cycle through the output packing kept them until it ran)."""
    import gc
    import weakref

    x = klayers.Input((4,))
    model = klayers.Model(x, [L.Dense(3)(x), L.Dense(2)(x)])
    feed = np.ones((2, 4), "float32")
    gc.disable()
    try:
        with inference.unrecorded():  # a recording keeps its last outputs to fill them again
            for _ in range(3):
                refs = [weakref.ref(a) for a in model(feed)]
                assert all(r() is None for r in refs)
    finally:
        gc.enable()
