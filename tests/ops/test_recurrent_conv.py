"""The ConvLSTM ops against their NumPy twins: the compiled point-wise LSTM update
(float32/float64, 1 and 2 threads), the compiled time loop ``klayers.ops.recurrent_conv.
convlstm_sequence`` (ranks 1-3, masks, go_backwards, zero_output) and its argument checks, and
``klayers.ops.convlstm_loop.convlstm``'s compiled loop against its step loop in both data
formats."""

import numpy as np
import pytest

import klayers
from klayers._ext import recurrent as _rec
from klayers.ops import recurrent as R
from klayers.ops import recurrent_conv as RC


def _hard(v):
    return np.clip(0.2 * v + 0.5, 0, 1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ract", [R.ACT_HARD_SIGMOID, R.ACT_SIGMOID])
def test_lstm_pointwise_matches_numpy(ract, dtype, threads):
    rng = np.random.default_rng(ract * 10 + threads)
    N, F = 37, 5
    z = rng.standard_normal((N, 4 * F)).astype(dtype) * 2
    zh = rng.standard_normal((N, 4 * F)).astype(dtype)
    c = rng.standard_normal((N, F)).astype(dtype)
    g = z + zh
    ra = _hard if ract == R.ACT_HARD_SIGMOID else (lambda v: 1 / (1 + np.exp(-v)))
    want_c = ra(g[:, F:2 * F]) * c + ra(g[:, :F]) * np.tanh(g[:, 2 * F:3 * F])
    want_h = ra(g[:, 3 * F:]) * np.tanh(want_c)
    h = np.empty_like(c)
    _rec.lstm_pointwise(z, zh, c, h, np.empty_like(c), R.ACT_TANH, ract, threads)
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(c, want_c, atol=tol)
    np.testing.assert_allclose(h, want_h, atol=tol)
    with pytest.raises(ValueError, match="4F"):
        _rec.lstm_pointwise(np.ascontiguousarray(z[:, :7]), zh, c, h, c, 1, 2, 1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("out,k", [((9,), (4,)), ((7, 6), (3, 3)), ((16, 20), (3, 5)), ((4, 3, 5), (2, 3, 3))])
def test_convlstm_sequence_matches_numpy(out, k, dtype, threads):
    rng = np.random.default_rng(len(out) * 100 + k[-1] * 10 + threads)
    B, T, F = 3, 5, 4
    zx = rng.standard_normal((B, T) + out + (4 * F,)).astype(dtype)
    U = (rng.standard_normal(k + (F, 4 * F)) * 0.3).astype(dtype)
    h = rng.standard_normal((B,) + out + (F,)).astype(dtype)
    c = rng.standard_normal(h.shape).astype(dtype)
    mask = rng.random((B, T)) > 0.4
    mask[0, 0] = False  # a sample masked at its first step outputs zeros until its first unmasked one
    tol = 2e-6 if dtype == "float32" else 1e-12
    cases = [(None, False, False), (mask, False, False), (mask, True, False), (mask, True, True), (None, True, True)]
    for m, backwards, zero_output in cases:
        for ract in (R.ACT_HARD_SIGMOID, R.ACT_SIGMOID):
            got = RC.convlstm_sequence(zx, U, h, c, m, R.ACT_TANH, ract, backwards, zero_output, True,
                                       n_threads=threads)
            want = RC.convlstm_sequence_reference(zx, U, h, c, m, R.ACT_TANH, ract, backwards, zero_output, True)
            for g, w in zip([got[0], got[1]] + got[2], [want[0], want[1]] + want[2]):
                assert g.dtype == np.dtype(dtype) and g.shape == w.shape
                np.testing.assert_allclose(g, w, atol=tol, rtol=tol)
    last, seq, _ = RC.convlstm_sequence(zx, U, h, c, None, R.ACT_TANH, R.ACT_SIGMOID, n_threads=threads)
    assert seq is None and last.shape == h.shape


def test_convlstm_sequence_errors():
    z = np.zeros((2, 3, 5, 5, 8), "float32")
    U = np.zeros((3, 3, 2, 8), "float32")
    h = np.zeros((2, 5, 5, 2), "float32")
    tanh, sigmoid = R.ACT_TANH, R.ACT_SIGMOID
    with pytest.raises(ValueError, match="recurrent kernel"):
        RC.convlstm_sequence(z, np.zeros((3, 3, 2, 7), "float32"), h, h, None, tanh, sigmoid)
    with pytest.raises(ValueError, match="gates"):
        RC.convlstm_sequence(z[..., :4], U, h, h, None, tanh, sigmoid)
    with pytest.raises(ValueError, match="states"):
        RC.convlstm_sequence(z, U, h[:1], h, None, tanh, sigmoid)
    with pytest.raises(ValueError, match="mask"):
        RC.convlstm_sequence(z, U, h, h, np.ones((2, 4), bool), tanh, sigmoid)
    from klayers._ext import convlstm as _cl
    geometry = dict(size=(1, 5, 5), kernel_size=(1, 3, 3), pad_before=(0, 1, 1))
    args = [z.reshape(2, 3, 25, 8), U.reshape(18, 8), geometry, None, h.reshape(2, 25, 2), h.reshape(2, 25, 2).copy(),
            np.zeros((2, 25, 2), "float32"), None, False, False, tanh, sigmoid, 4, 1]
    _cl.convlstm_run(*args)
    with pytest.raises(ValueError, match="recurrent kernel"):
        _cl.convlstm_run(*(args[:1] + [U.reshape(18, 8)[:9]] + args[2:]))
    for bad, match in [(dict(geometry, size=(1, 5, 4)), "25 positions"),
                       (dict(geometry, pad_before=(0, 3, 1)), "pad_before"),
                       (dict(geometry, kernel_size=(1, 3)), "geometry"),
                       ({k: v for k, v in geometry.items() if k != "size"}, "size")]:
        with pytest.raises(ValueError, match=match):
            _cl.convlstm_run(*(args[:2] + [bad] + args[3:]))
    with pytest.raises(TypeError, match="dict"):
        _cl.convlstm_run(*(args[:2] + [np.array([1, 5, 5, 1, 3, 3, 0, 1, 1], np.intp)] + args[3:]))
    with pytest.raises(ValueError, match="activation code"):
        _cl.convlstm_run(*(args[:10] + [99] + args[11:]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_convlstm_op_compiled_loop_matches_the_step_loop(data_format, dtype):
    from klayers.ops import convlstm_loop

    rng = np.random.default_rng(7)
    B, T, C, F = 2, 4, 3, 2
    spatial = (6, 5)
    x = rng.standard_normal((B, T, C) + spatial if data_format == "channels_first" else (B, T) + spatial + (C,))
    x = x.astype(dtype)
    kernel = (rng.standard_normal((3, 3, C, 4 * F)) * 0.3).astype(dtype)
    rkernel = (rng.standard_normal((3, 3, F, 4 * F)) * 0.3).astype(dtype)
    bias = (rng.standard_normal(4 * F) * 0.3).astype(dtype)
    out = (B, F) + spatial if data_format == "channels_first" else (B,) + spatial + (F,)
    states = [rng.standard_normal(out).astype(dtype) for _ in range(2)]
    mask = rng.random((B, T)) > 0.3
    tol = 2e-6 if dtype == "float32" else 1e-12
    for m, backwards, zero_output in [(None, False, False), (mask, True, False), (mask, False, True)]:
        args = (x, kernel, rkernel, bias, states, m, klayers.activations.tanh, klayers.activations.hard_sigmoid,
                1, "same", 1, data_format, backwards, zero_output, True)
        got = convlstm_loop.convlstm(*args)
        want = convlstm_loop.convlstm(*args, compiled=False)
        for g, w in zip([got[0], got[1]] + got[2], [want[0], want[1]] + want[2]):
            assert g.dtype == w.dtype == np.dtype(dtype) and g.shape == w.shape
            np.testing.assert_allclose(g, w, atol=tol, rtol=tol)
        assert got[0].shape == out and got[1].shape == (B, T) + out[1:]
        np.testing.assert_array_equal(got[1][:, -1], got[0])
