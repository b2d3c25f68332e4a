"""Recurrent kernels (compiled vs NumPy reference) and layer behaviour not covered by the
recorded Keras cases: functional models with symbolic initial states, user-written cells,
stateful resets, CuDNN weight conversion, errors."""

import zlib

import numpy as np
import pytest

import klayers
from klayers import layers as L
from klayers.ops import recurrent as R

CELLS = ["simple", "gru", "gru_before", "lstm"]


def _problem(cell, dtype, batch, units, rng, T=6, n_in=4):
    G = R.GATES[cell]
    x = rng.standard_normal((batch, T, n_in)).astype(dtype)
    k = (rng.standard_normal((n_in, G * units)) * 0.3).astype(dtype)
    rk = (rng.standard_normal((units, G * units)) * 0.3 / np.sqrt(max(units / 5, 1))).astype(dtype)
    b = (rng.standard_normal((2, G * units) if cell == "gru" else (G * units,)) * 0.3).astype(dtype)
    states = [rng.standard_normal((batch, units)).astype(dtype) for _ in range(2 if cell == "lstm" else 1)]
    mask = rng.random((batch, T)) > 0.4
    return x, k, rk, b, states, mask


OPTIONS = {
    "plain": {},
    "mask_back_seq": {"go_backwards": True, "return_sequences": True, "with_mask": True},
    "mask_zero_hard": {"zero_output": True, "return_sequences": True, "with_mask": True, "ract": R.ACT_HARD_SIGMOID},
    "relu_k3hard": {"act": R.ACT_RELU, "ract": R.ACT_HARD_SIGMOID_K3, "return_sequences": True},
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch,units", [(1, 5), (3, 7), (1, 300)], ids=["b1", "b3", "b1_wide_split"])
def test_kernel_matches_reference(cell, option, dtype, threads, batch, units):
    rng = np.random.default_rng(zlib.crc32(f"{cell}-{option}-{dtype}-{batch}-{units}".encode()))
    x, k, rk, b, states, mask = _problem(cell, dtype, batch, units, rng)
    kw = dict(OPTIONS[option])
    m = mask if kw.pop("with_mask", False) else None
    with klayers.num_threads(threads):
        got = R.rnn_sequence(cell, x, k, rk, b, states, m, **kw)
    want = R.rnn_sequence_reference(cell, x, k, rk, b, states, m, **kw)
    tol = 2e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got[0], want[0], atol=tol)
    if want[1] is not None:
        np.testing.assert_allclose(got[1], want[1], atol=tol)
    for g, w in zip(got[2], want[2]):
        np.testing.assert_allclose(g, w, atol=tol)
    assert got[0].dtype == np.dtype(dtype)


def test_reference_and_compiled_have_the_same_signature():
    import inspect

    assert inspect.signature(R.rnn_sequence) == inspect.signature(R.rnn_sequence_reference)


def test_unfused_activation_falls_back_to_the_step_loop():
    rng = np.random.default_rng(0)
    x, k, rk, b, states, mask = _problem("lstm", "float32", 2, 3, rng)
    got = R.rnn_sequence("lstm", x, k, rk, b, states, mask, act=klayers.activations.softsign)
    want = R.rnn_sequence_reference("lstm", x, k, rk, b, states, mask, act=klayers.activations.softsign)
    np.testing.assert_allclose(got[0], want[0], atol=1e-6)


def test_kernel_rejects_bad_shapes():
    rng = np.random.default_rng(1)
    x, k, rk, b, states, _ = _problem("gru", "float32", 2, 3, rng)
    with pytest.raises(ValueError, match="bias"):
        R.rnn_sequence("gru", x, k, rk, b[0], states)
    with pytest.raises(ValueError, match="initial state"):
        R.rnn_sequence("gru", x, k, rk, b, [states[0][:1]])
    with pytest.raises(ValueError, match="3-D"):
        R.rnn_sequence("gru", x[0], k, rk, b, states)


# -- layers ---------------------------------------------------------------------------------
def _xs(b=2, t=5, f=3, seed=0):
    return np.random.default_rng(seed).standard_normal((b, t, f)).astype("float32")


def test_functional_model_with_symbolic_initial_state():
    inp = klayers.Input((5, 3))
    h = klayers.Input((4,))
    c = klayers.Input((4,))
    lstm = L.LSTM(4, return_sequences=True)
    out = lstm(inp, initial_state=[h, c])
    model = klayers.Model([inp, h, c], out)
    x = _xs()
    hv = np.full((2, 4), 0.3, "float32")
    cv = np.full((2, 4), -0.2, "float32")
    got = model.predict([x, hv, cv], verbose=0)
    want = lstm(x, initial_state=[hv, cv])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.allclose(got, lstm(x))
    again = klayers.Model.from_config(model.get_config())
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again.predict([x, hv, cv], verbose=0), got, atol=1e-6)


class MinimalCell(klayers.Layer):
    """The user-written cell of the Keras RNN docstring."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units))
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, self.units))

    def call(self, inputs, states):
        prev = states[0]
        output = inputs @ self.kernel.value + prev @ self.recurrent_kernel.value
        return output, [output]

    def get_config(self):
        return dict(super().get_config(), units=self.units)


def test_user_written_cell_matches_simple_rnn_cell_with_linear_activation():
    x = _xs(seed=3)
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], bool)
    custom = L.RNN(MinimalCell(4), return_sequences=True, go_backwards=True)
    builtin = L.RNN(L.SimpleRNNCell(4, activation=None, use_bias=False), return_sequences=True, go_backwards=True)
    custom(x)
    builtin(x)
    builtin.set_weights(custom.get_weights())
    np.testing.assert_allclose(custom(x, mask=mask), builtin(x, mask=mask), atol=1e-6)
    stacked = L.RNN([MinimalCell(4), L.GRUCell(2)], return_state=True)
    out = stacked(x, mask=mask)
    assert [o.shape for o in out] == [(2, 2), (2, 4), (2, 2)]


def test_plain_object_cell():
    class Accumulate:
        state_size = 3

        def call(self, inputs, states):
            s = states[0] + inputs
            return s, [s]

    x = _xs()
    out = L.RNN(Accumulate(), return_sequences=True)(x)
    np.testing.assert_allclose(out, np.cumsum(x, axis=1), atol=1e-6)


def test_stateful_keeps_states_until_reset():
    x = _xs(b=3, seed=5)
    layer = L.GRU(4, stateful=True)
    first = layer(x)
    second = layer(x)
    assert not np.allclose(first, second)
    layer.reset_states()
    np.testing.assert_allclose(layer(x), first, atol=1e-6)
    layer.reset_states([np.ones((3, 4), "float32")])
    np.testing.assert_allclose(layer.states[0], 1.0)
    with pytest.raises(ValueError, match="incompatible"):
        layer.reset_states([np.ones((2, 4), "float32")])
    with pytest.raises(AttributeError, match="stateful"):
        L.GRU(4).reset_states()


def test_training_dropout_changes_outputs_only_in_training():
    x = _xs(seed=7)
    layer = L.LSTM(4, dropout=0.5, recurrent_dropout=0.5, return_sequences=True)
    inference = layer(x)
    np.testing.assert_allclose(layer(x, training=False), inference)
    assert layer(x, training=True).shape == inference.shape
    assert not np.allclose(layer(x, training=True), inference)


@pytest.mark.parametrize("cls,gates", [(L.CuDNNLSTM, 4), (L.CuDNNGRU, 3)])
def test_cudnn_layout_converts_to_the_plain_layer(cls, gates):
    x = _xs(seed=11)
    rng = np.random.default_rng(2)
    cudnn = cls(4, return_sequences=True)
    cudnn(x)
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.4 for w in cudnn.weights]
    cudnn.set_weights(weights)
    k, r, b = weights
    kernel = np.hstack([blk.T.reshape(blk.shape, order="F") for blk in np.hsplit(k, gates)])
    rkernel = np.hstack([blk.T for blk in np.hsplit(r, gates)])
    if gates == 4:
        plain = L.LSTM(4, return_sequences=True)
        bias = b[:16] + b[16:]
    else:
        plain = L.GRU(4, return_sequences=True, reset_after=True)
        bias = b.reshape(2, 12)
    plain(x)
    plain.set_weights([kernel, rkernel, bias])
    np.testing.assert_allclose(cudnn(x), plain(x), atol=1e-5)
    with pytest.raises(ValueError, match="Masking is not supported"):
        cudnn(x, mask=np.ones((2, 5), bool))


@pytest.mark.parametrize("make,match", [
    (lambda: L.LSTM(0), "units"),
    (lambda: L.GRU(4, dropout="x"), "dropout"),
    (lambda: L.RNN(object()), "call"),
], ids=["units", "dropout", "cell"])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs():
    layer = L.SimpleRNN(3)
    with pytest.raises(ValueError, match="expected ndim=3"):
        layer(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="initial state"):
        L.LSTM(3)(_xs(), initial_state=[np.zeros((2, 3), "float32")])


def test_time_major_and_output_shapes():
    x = _xs(b=2, t=5)
    layer = L.LSTM(4, time_major=True, return_sequences=True, return_state=True)
    out = layer(np.swapaxes(x, 0, 1))
    assert [o.shape for o in out] == [(5, 2, 4), (2, 4), (2, 4)]
    assert layer.compute_output_shape((5, None, 3)) == [(5, None, 4), (None, 4), (None, 4)]


PLANS = {
    # monkeypatched thresholds that force each of the kernel's parallel plans on tiny problems
    "batch_split": {"PARALLEL_MIN_MACS": 0},
    "split_units": {"PARALLEL_MIN_MACS": 0, "SPLIT_UNITS_MIN_WEIGHTS": 0},
    "threaded_projections": {"PARALLEL_MIN_MACS": 0, "SPLIT_UNITS_MIN_WEIGHTS": 0, "PROJECTION_THREADED_MIN_MACS": 0},
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("plan", sorted(PLANS))
@pytest.mark.parametrize("cell", CELLS)
def test_parallel_plans_match_reference(cell, plan, dtype, monkeypatch):
    for name, value in PLANS[plan].items():
        monkeypatch.setattr(R, name, value)
    rng = np.random.default_rng(zlib.crc32(f"{cell}-{plan}-{dtype}".encode()))
    batch = 1 if plan != "batch_split" else 5
    x, k, rk, b, states, mask = _problem(cell, dtype, batch, 9, rng)
    for m, back in ((None, False), (mask, True)):
        with klayers.num_threads(2):
            got = R.rnn_sequence(cell, x, k, rk, b, states, m, go_backwards=back, return_sequences=True)
        want = R.rnn_sequence_reference(cell, x, k, rk, b, states, m, go_backwards=back, return_sequences=True)
        tol = 2e-5 if dtype == "float32" else 1e-12
        for g, w in zip([got[0], got[1]] + got[2], [want[0], want[1]] + want[2]):
            np.testing.assert_allclose(g, w, atol=tol)


def test_time_chunked_projections_match_reference():
    # 40 rows x 160 gate columns: the kernel projects 10 steps at a time (several chunks)
    rng = np.random.default_rng(7)
    x, k, rk, b, states, mask = _problem("lstm", "float32", 40, 40, rng, T=25)
    for back in (False, True):
        for threads in (1, 2):
            with klayers.num_threads(threads):
                got = R.rnn_sequence("lstm", x, k, rk, b, states, mask, go_backwards=back, return_sequences=True)
            want = R.rnn_sequence_reference("lstm", x, k, rk, b, states, mask, go_backwards=back,
                                            return_sequences=True)
            np.testing.assert_allclose(got[1], want[1], atol=3e-5)
            np.testing.assert_allclose(got[2][1], want[2][1], atol=3e-5)


@pytest.mark.parametrize("act,fn", [(R.ACT_TANH, np.tanh), (R.ACT_SIGMOID, lambda v: 1 / (1 + np.exp(-v)))])
def test_float32_activations_are_accurate(act, fn):
    # identity projection, no recurrence: the output is act(x) of the last step, elementwise
    n = 4099
    x = np.concatenate([np.linspace(-40, 40, n - 3), [0.0, 1e-30, -3e-8]]).astype("float32").reshape(1, 1, n)
    eye = np.eye(n, dtype="float32")
    got = R.rnn_sequence("simple", x, eye, np.zeros((n, n), "float32"), None, [np.zeros((1, n), "float32")],
                         act=act)[0]
    want = fn(x.reshape(1, n).astype("float64"))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-30)
    nan = R.rnn_sequence("simple", np.full((1, 1, 3), np.nan, "float32"), np.eye(3, dtype="float32"),
                         np.zeros((3, 3), "float32"), None, [np.zeros((1, 3), "float32")], act=act)[0]
    assert np.isnan(nan).all()


@pytest.mark.parametrize("threads", [1, 2])
def test_bidirectional_runs_both_directions_in_one_call(threads, monkeypatch):
    monkeypatch.setattr(R, "PARALLEL_MIN_MACS", 0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 6, 4)).astype("float32")
    m = rng.random((3, 6)) > 0.3
    bidi = L.Bidirectional(L.LSTM(5, return_sequences=True, return_state=True),
                           backward_layer=L.GRU(3, go_backwards=True, return_sequences=True, return_state=True))
    bidi(x)
    with klayers.num_threads(threads):
        out = bidi(x, mask=m)
    fwd = bidi.forward_layer(x, mask=m)
    bwd = bidi.backward_layer(x, mask=m)
    np.testing.assert_allclose(out[0], np.concatenate([fwd[0], bwd[0][:, ::-1]], -1), atol=1e-6)
    for got, want in zip(out[1:], fwd[1:] + bwd[1:]):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_stacked_cells_return_state_nests_states_per_cell():
    # tf-keras: [y, [h, c], h2] eagerly and symbolically; compute_output_shape stays flat
    x = np.random.RandomState(0).rand(4, 5, 2).astype("float32")
    rnn = L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)]), return_state=True)
    y, hc, h2 = rnn(x)
    assert y.shape == (4, 2) and [s.shape for s in hc] == [(4, 3), (4, 3)] and h2.shape == (4, 2)
    again = rnn(x, initial_state=[hc, h2])  # nested initial_state, as tf-keras takes it
    flat = rnn(x, initial_state=[hc[0], hc[1], h2])  # flat still accepted
    np.testing.assert_allclose(again[0], flat[0])
    assert rnn.compute_output_shape((None, 5, 2)) == [(None, 2), (None, 3), (None, 3), (None, 2)]
    inp = klayers.Input((5, 2))
    out = rnn(inp)
    assert isinstance(out[1], list) and len(out) == 3
    assert rnn.output_shape == [(None, 2), [(None, 3), (None, 3)], (None, 2)]
    assert rnn.output_mask == [None, None, None]
    model = klayers.Model(inp, out)
    got = model.predict(x, verbose=0)
    assert isinstance(got[1], list)
    np.testing.assert_allclose(got[1][1], rnn(x)[1][1], rtol=1e-6)
    stateful = L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)]), stateful=True)
    assert stateful.states == [[None, None], None]
    stateful(x)
    assert [s.shape for s in stateful.states[0]] == [(4, 3), (4, 3)]
    bidi = L.Bidirectional(L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)]), return_state=True))
    t = bidi(inp)
    assert len(t) == 5 and isinstance(t[1], list) and isinstance(t[3], list)
    assert len(bidi(x)) == 5 and bidi.output_mask == [None] * 5


# -- training-mode dropout follows tf-keras per implementation -------------------------------------
def _cell_layer(kind, implementation, **kw):
    from klayers import layers as L

    if kind == "lstm":
        return L.LSTM(4, implementation=implementation, return_sequences=True, **kw)
    return L.GRU(4, implementation=implementation, return_sequences=True, reset_after=(kind == "gru"), **kw)


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_before"])
def test_implementation_2_drops_nothing_on_the_state(kind):
    x = np.random.default_rng(0).standard_normal((3, 5, 2)).astype("float32")
    layer = _cell_layer(kind, 2, recurrent_dropout=0.5, seed=1)
    layer(x)
    np.testing.assert_allclose(layer(x, training=True), layer(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_before"])
def test_implementation_1_uses_one_mask_per_gate(kind, monkeypatch):
    x = np.random.default_rng(1).standard_normal((3, 5, 2)).astype("float32")
    one = _cell_layer(kind, 1, dropout=0.4, recurrent_dropout=0.3, seed=2)
    one(x)
    cell = one.cell
    dp, rdp = cell._make_dropout_masks(x[:, 0], np.zeros((3, 4), "float32"), True)
    assert len(dp) == len(rdp) == cell._gates
    assert not all(np.array_equal(dp[0], m) for m in dp[1:])
    # With every gate given the same masks, the per-gate step must equal the fused step fed the
    # masked inputs and state: this checks its gate maths against the reference kernel.
    same_dp, same_h = [dp[0]] * cell._gates, [rdp[0]] * cell._gates
    if kind != "lstm":  # a GRU blends the unmasked state back in: the fused path cannot mask h for it
        same_h = [np.ones_like(rdp[0])] * cell._gates
    monkeypatch.setattr(type(cell), "_make_dropout_masks", lambda self, *a: (same_dp, same_h))
    got = one(x, training=True)
    monkeypatch.undo()
    h = np.zeros((3, 4), "float32")
    states = [h, h.copy()] if kind == "lstm" else [h]
    outs = []
    for t in range(x.shape[1]):
        kind_, k, r, b = cell._plain_weights()
        hin = [states[0] * same_h[0]] + states[1:]
        from klayers.ops import recurrent as rec_ops

        last, _, states = rec_ops.rnn_sequence_reference(kind_, (x[:, t] * same_dp[0])[:, None, :], k, r, b, hin,
                                                         None, cell.activation, cell.recurrent_activation)
        if kind == "lstm":
            states = [states[0], states[1]]
        outs.append(last)
    want = np.stack(outs, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# -- one step in NumPy (klayers.ops.recurrent_steps): the maths every Python path reads ------------
from klayers.ops import recurrent_steps as S  # noqa: E402


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _keras_step(cell, xs, hs, h, c, k, rk, b):
    """Keras's cell maths written out gate by gate; ``xs`` / ``hs``: the input and the state
    each gate reads (tf-keras implementation=1)."""
    u = rk.shape[0]
    blk = [slice(j * u, (j + 1) * u) for j in range(R.GATES[cell])]
    b_in, b_rec = (b[0], b[1]) if cell == "gru" else (b, np.zeros_like(b))

    def pre(j, with_rec=True):
        return xs[j] @ k[:, blk[j]] + b_in[blk[j]] + (hs[j] @ rk[:, blk[j]] + b_rec[blk[j]] if with_rec else 0)

    if cell == "simple":
        return np.tanh(pre(0)), None
    if cell == "lstm":
        c = _sigmoid(pre(1)) * c + _sigmoid(pre(0)) * np.tanh(pre(2))
        return _sigmoid(pre(3)) * np.tanh(c), c
    z, r = _sigmoid(pre(0)), _sigmoid(pre(1))
    if cell == "gru":
        hh = np.tanh(pre(2, False) + r * (hs[2] @ rk[:, blk[2]] + b_rec[blk[2]]))
    else:
        hh = np.tanh(pre(2, False) + (r * hs[2]) @ rk[:, blk[2]])
    return z * h + (1 - z) * hh, None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("per_gate", [False, True], ids=["shared_inputs", "one_input_per_gate"])
@pytest.mark.parametrize("cell", CELLS)
def test_rnn_step_matches_the_keras_gate_maths(cell, per_gate, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{cell}-{per_gate}-{dtype}".encode()))
    x, k, rk, b, states, _ = _problem(cell, dtype, 3, 5, rng)
    G = R.GATES[cell]
    x0, h = x[:, 0], states[0]
    xs, hs = [x0] * G, [h] * G
    if per_gate:  # distinct copies per gate, as dropout masks make them
        xs = [x0 * rng.uniform(0.5, 1.5, x0.shape).astype(dtype) for _ in range(G)]
        hs = [h * rng.uniform(0.5, 1.5, h.shape).astype(dtype) for _ in range(G)]
    out, new = S.rnn_step(cell, xs if per_gate else x0, states, k, rk, b, np.tanh, _sigmoid,
                          h_gates=hs if per_gate else None)
    want_h, want_c = _keras_step(cell, xs, hs, h, states[-1], k, rk, b)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, want_h, atol=tol)
    assert out is new[0] and len(new) == len(states) and out.dtype == np.dtype(dtype)
    if cell == "lstm":
        np.testing.assert_allclose(new[1], want_c, atol=tol)


def test_rnn_step_refuses_an_unknown_cell():
    with pytest.raises(ValueError, match="unknown cell 'nope'"):
        S.rnn_step("nope", np.ones((1, 2)), [np.ones((1, 2))], np.ones((2, 2)), np.ones((2, 2)), None, np.tanh, np.tanh)


def _count_step(x_t, states):
    """A cell whose state counts its inputs and whose output is ten times the count."""
    h = states[0] + x_t
    return 10 * h, [h]


STEP_LOOP = {
    # name: (mask, go_backwards, zero_output, want outputs per step, want final state) for a
    # batch of one over inputs 1, 2, 3, 4 from a zero state
    "plain": (None, False, False, [10, 30, 60, 100], 10),
    "backwards": (None, True, False, [40, 70, 90, 100], 10),
    "masked_carries_state_and_output": ([1, 0, 1, 0], False, False, [10, 10, 40, 40], 4),
    "masked_first_outputs_zeros": ([0, 1, 1, 0], False, False, [0, 20, 50, 50], 5),
    "masked_zero_output": ([1, 0, 1, 0], False, True, [10, 0, 40, 0], 4),
    "masked_backwards_reads_input_time": ([1, 1, 0, 0], True, False, [0, 0, 20, 30], 3),
}


@pytest.mark.parametrize("case", sorted(STEP_LOOP))
def test_step_loop_follows_backend_rnn(case):
    mask, back, zero, want_seq, want_state = STEP_LOOP[case]
    x = np.arange(1, 5, dtype="float32").reshape(1, 4, 1)
    m = None if mask is None else np.array([mask], bool)
    last, seq, (h,) = S.step_loop(_count_step, x, [np.zeros((1, 1), "float32")], m, back, zero, True)
    np.testing.assert_array_equal(seq[0, :, 0], want_seq)
    np.testing.assert_array_equal(last[0, 0], want_seq[-1])
    np.testing.assert_array_equal(h[0, 0], want_state)
    assert seq.dtype == np.float32
    last, seq, _ = S.step_loop(_count_step, x, [np.zeros((1, 1), "float32")], m, back, zero, False)
    assert seq is None and last[0, 0] == want_seq[-1]


def test_step_loop_without_steps_returns_no_output():
    last, seq, (h,) = S.step_loop(_count_step, np.zeros((2, 0, 1)), [np.ones((2, 1))], None, False, False, True)
    assert last is None and seq is None and np.array_equal(h, np.ones((2, 1)))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("acts", ["codes", "klayers_functions", "custom_callable"])
def test_lstm_pointwise_matches_the_numpy_gates(acts, dtype, threads):
    rng = np.random.default_rng(zlib.crc32(f"{acts}-{dtype}-{threads}".encode()))
    N, F = 300, 64  # above POINTWISE_PARALLEL_MIN entries: the threaded kernel
    z = rng.standard_normal((N, 4 * F)).astype(dtype)
    zh = rng.standard_normal((N, 4 * F)).astype(dtype)
    c = rng.standard_normal((N, F)).astype(dtype)
    z0, c0 = z.copy(), c.copy()
    act, ract = {"codes": (R.ACT_TANH, R.ACT_SIGMOID),
                 "klayers_functions": (klayers.activations.tanh, klayers.activations.sigmoid),
                 "custom_callable": (lambda v: np.tanh(v) * 0.5, _sigmoid)}[acts]
    h, c1 = R.lstm_pointwise(z, zh, c, act, ract, n_threads=threads)
    fn = {"codes": np.tanh, "klayers_functions": np.tanh, "custom_callable": act}[acts]
    want_h, want_c = S.lstm_gates(z0 + zh, c0, fn, _sigmoid)
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(h, want_h, atol=tol)
    np.testing.assert_allclose(c1, want_c, atol=tol)
    assert h.dtype == c1.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(z, z0)  # the inputs are not overwritten
    np.testing.assert_array_equal(c, c0)
