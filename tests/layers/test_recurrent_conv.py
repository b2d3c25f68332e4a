"""ConvLSTM layers beyond the recorded Keras cases: the layer against a plain NumPy step loop,
errors and shapes, symbolic initial states, the compiled time loop against the Python step
loop (``compiled_loop = False``) through the layers in both data formats, and where the
recurrent layers live (the ops themselves: tests/ops/test_recurrent_conv.py)."""

import numpy as np
import pytest

import klayers
from klayers import layers as L
from klayers.layers.recurrent.conv_lstm import _ConvLSTMCell
from klayers.ops.conv import conv_reference


def _hard(v):
    return np.clip(0.2 * v + 0.5, 0, 1)


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


# -- the compiled time loop against the Python step loop, through the layers ---------------------


def _run_layer(cls, x, mask, compiled, initial_state, **kw):
    layer = cls(**kw)
    layer(x)
    rng = np.random.default_rng(11)
    layer.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(x.dtype) for w in layer.get_weights()])
    layer.cell.compiled_loop = compiled
    return layer(x, mask=mask, initial_state=initial_state)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_compiled_loop_matches_the_python_loop(data_format, dtype, threads):
    rng = np.random.default_rng(3)
    B, T = 3, 4
    mask = rng.random((B, T)) > 0.3
    mask[1, 0] = False
    cases = [(L.ConvLSTM1D, (9,), 3), (L.ConvLSTM2D, (7, 6), (3, 2)), (L.ConvLSTM3D, (4, 5, 3), 2)]
    tol = 2e-6 if dtype == "float32" else 1e-12
    for cls, spatial, k in cases:
        shape = (B, T, 2) + spatial if data_format == "channels_first" else (B, T) + spatial + (2,)
        x = rng.standard_normal(shape).astype(dtype)
        for m, backwards, padding, init in [(None, False, "same", False), (mask, True, "valid", True),
                                            (mask, False, "same", True)]:
            kw = dict(filters=3, kernel_size=k, padding=padding, data_format=data_format, go_backwards=backwards,
                      return_sequences=True, return_state=True, dtype=dtype,
                      recurrent_activation="sigmoid" if backwards else "hard_sigmoid")
            state = None
            if init:
                probe = cls(**kw)
                st = probe(x)[1].shape
                state = [rng.standard_normal(st).astype(dtype) for _ in range(2)]
            with klayers.num_threads(threads):
                got = _run_layer(cls, x, m, True, state, **kw)
            want = _run_layer(cls, x, m, False, state, **kw)
            for g, w in zip(got, want):
                assert g.shape == w.shape and g.dtype == w.dtype
                np.testing.assert_allclose(g, w, atol=tol, rtol=tol)


def test_custom_activation_runs_the_python_loop():
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5, 2)).astype("float32")
    a = L.ConvLSTM2D(2, 3, padding="same", activation=lambda v: np.tanh(v) * 0.5)
    out = a(x)
    assert out.shape == (2, 5, 5, 2) and np.isfinite(out).all()
    assert _ConvLSTMCell.compiled_loop


# -- where the recurrent layers live -----------------------------------------------------------------
def test_recurrent_layers_reach_kernels_only_through_ops():
    import ast
    import pathlib

    root = pathlib.Path(klayers.__file__).parent / "layers"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(n.startswith(("klayers._ext", "klayers._threads")) for n in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, f"layers import kernels or thread helpers directly: {offenders}"


def test_the_recurrent_package_hands_on_the_public_names():
    from klayers.layers import recurrent

    want = {"RNN", "SimpleRNN", "SimpleRNNCell", "GRU", "GRUCell", "LSTM", "LSTMCell", "StackedRNNCells",
            "CuDNNGRU", "CuDNNLSTM"}
    conv = {"ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "ConvLSTM1DCell", "ConvLSTM2DCell", "ConvLSTM3DCell"}
    assert set(recurrent.__all__) == want | conv and len(recurrent.__all__) == len(want | conv)
    for name in recurrent.__all__:
        assert getattr(L, name) is getattr(recurrent, name)
