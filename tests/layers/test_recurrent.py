"""Recurrent layers: behaviour not covered by the recorded Keras cases: functional models with
symbolic initial states, user-written cells, stateful resets, CuDNN weight conversion, training-mode
dropout per implementation, errors (the kernels' own tests: tests/ops/test_recurrent*.py)."""

import numpy as np
import pytest

import klayers
from klayers import layers as L
from klayers.ops import recurrent as R


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


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "SimpleRNN"])
def test_packed_recurrent_kernel_follows_weight_changes(cls):
    """The recurrent kernel is packed once per weight version and reused across calls; weights
    assigned between calls (set_weights, Variable assignment) are used by the next call."""
    layer = getattr(klayers.layers, cls)(32, return_sequences=True)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 9, 5)).astype("float32")
    first = layer(x)
    packed = layer.cell._rpacked[1]
    np.testing.assert_array_equal(layer(x), first)
    assert layer.cell._rpacked[1] is packed  # reused
    for change in range(2):
        weights = [w * -0.5 for w in layer.get_weights()]
        if change == 0:
            layer.set_weights(weights)
        else:
            layer.cell.recurrent_kernel.assign(weights[1])
        got = layer(x)
        assert layer.cell._rpacked[1] is not packed
        packed = layer.cell._rpacked[1]
        want = R.rnn_sequence_reference(
            layer.cell._kind, x, layer.cell.kernel.value, layer.cell.recurrent_kernel.value,
            layer.cell.bias.value, [np.zeros((1, 32), "float32")] * (2 if cls == "LSTM" else 1),
            act=layer.cell.activation, ract=getattr(layer.cell, "recurrent_activation", None) or layer.cell.activation,
            return_sequences=True)[1]
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
