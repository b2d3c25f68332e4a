"""ConvLSTM behaviour beyond the recorded Keras cases: the compiled point-wise update against
NumPy (float32/float64, 1 and 2 threads), the layer against a plain NumPy step loop, errors."""

import numpy as np
import pytest

import klayers
from klayers import layers as L
from klayers._ext import recurrent as _rec
from klayers.ops import recurrent as R
from klayers.ops.conv import conv_reference


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


def _numpy_convlstm2d(x, kernel, rkernel, bias, padding):
    """A plain NumPy ConvLSTM2D (channels_last, Keras 2 hard_sigmoid), step by step."""
    F = rkernel.shape[-1] // 4
    zx = [conv_reference(x[:, t], kernel, bias, 1, padding) for t in range(x.shape[1])]
    h = np.zeros(zx[0].shape[:-1] + (F,), x.dtype)
    c = np.zeros_like(h)
    for z in zx:
        g = z + conv_reference(h, rkernel, None, 1, "same")
        c = _hard(g[..., F:2 * F]) * c + _hard(g[..., :F]) * np.tanh(g[..., 2 * F:3 * F])
        h = _hard(g[..., 3 * F:]) * np.tanh(c)
    return h, c


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_convlstm2d_matches_a_numpy_step_loop(padding, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 6, 5, 3)).astype(dtype)
    layer = L.ConvLSTM2D(4, 3, padding=padding, return_state=True, dtype=dtype)
    layer(x)
    weights = [rng.standard_normal(w.shape).astype(dtype) * 0.4 for w in layer.get_weights()]
    layer.set_weights(weights)
    for threads in (1, 2):
        with klayers.num_threads(threads):
            out, h, c = layer(x)
        want_h, want_c = _numpy_convlstm2d(x, *weights, padding)
        tol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(out, want_h, atol=tol)
        np.testing.assert_allclose(c, want_c, atol=tol)


def test_convlstm_errors_and_shapes():
    with pytest.raises(TypeError, match="Unrolling"):
        L.ConvLSTM2D(2, 3, unroll=True)
    with pytest.raises(ValueError, match="filters"):
        L.ConvLSTM1D(0, 3)
    with pytest.raises(ValueError, match="dilation_rate"):
        L.ConvLSTM2D(2, 3, strides=2, dilation_rate=2)
    layer = L.ConvLSTM3D(2, 2, return_sequences=True, return_state=True)
    assert layer.compute_output_shape((None, 4, 5, 5, 5, 1)) == [(None, 4, 4, 4, 4, 2), (None, 4, 4, 4, 2),
                                                                 (None, 4, 4, 4, 2)]
    with pytest.raises(ValueError, match="ndim"):
        L.ConvLSTM2D(2, 3)(np.zeros((1, 2, 5, 5), "float32"))
    with pytest.raises(AttributeError, match="stateful"):
        L.ConvLSTM2D(2, 3).reset_states()


def test_convlstm_in_a_functional_model_with_symbolic_initial_state():
    inp = klayers.Input((3, 5, 5, 2))
    states = [klayers.Input((5, 5, 2)) for _ in range(2)]
    out = L.ConvLSTM2D(2, 3, padding="same")(inp, initial_state=states)
    model = klayers.Model([inp] + states, out)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 5, 2)).astype("float32")
    s = [rng.standard_normal((2, 5, 5, 2)).astype("float32") for _ in range(2)]
    layer = model.layers[-1]
    np.testing.assert_allclose(model.predict([x] + s, verbose=0), layer(x, initial_state=s), atol=1e-6)
    assert not np.allclose(layer(x, initial_state=s), layer(x))
