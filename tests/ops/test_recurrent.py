"""The compiled recurrent kernels (klayers.ops.recurrent) against their NumPy twins: every cell
kind and option, both dtypes, 1 and N threads, every parallel plan, the point-wise LSTM update,
float32 activation accuracy, shape checks."""

import zlib

import numpy as np
import pytest

import klayers
from klayers._ext import recurrent as _rec
from klayers.ops import common
from klayers.ops import recurrent as R
from klayers.ops import recurrent_steps as S
from tests.helpers import N_THREADS, check_kernel_twin
from tests.ops.recurrent_cases import CELLS, problem, sigmoid

OPTIONS = {
    "plain": {},
    "mask_back_seq": {"go_backwards": True, "return_sequences": True, "with_mask": True},
    "mask_zero_hard": {"zero_output": True, "return_sequences": True, "with_mask": True, "ract": R.ACT_HARD_SIGMOID},
    "relu_k3hard": {"act": R.ACT_RELU, "ract": R.ACT_HARD_SIGMOID_K3, "return_sequences": True},
}
TOL = {"float32": 2e-5, "float64": 1e-12}


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch,units", [(1, 5), (3, 7), (1, 300)], ids=["b1", "b3", "b1_wide_split"])
def test_kernel_matches_reference(cell, option, batch, units, kernel_twin):
    def case(dtype):
        rng = np.random.default_rng(zlib.crc32(f"{cell}-{option}-{dtype.name}-{batch}-{units}".encode()))
        x, k, rk, b, states, mask = problem(cell, dtype, batch, units, rng)
        kw = dict(OPTIONS[option])
        m = mask if kw.pop("with_mask", False) else None
        return (cell, x, k, rk, b, states, m), kw

    kernel_twin(R.rnn_sequence, case, tol=TOL)


def test_reference_and_compiled_have_the_same_signature():
    import inspect

    assert inspect.signature(R.rnn_sequence) == inspect.signature(R.rnn_sequence_reference)


def test_unfused_activation_falls_back_to_the_step_loop():
    def case(dtype):
        x, k, rk, b, states, mask = problem("lstm", dtype, 2, 3, np.random.default_rng(0))
        return ("lstm", x, k, rk, b, states, mask), {"act": klayers.activations.softsign}

    check_kernel_twin(R.rnn_sequence, case, tol={"float32": 1e-6, "float64": 1e-12})


def test_kernel_rejects_bad_shapes():
    rng = np.random.default_rng(1)
    x, k, rk, b, states, _ = problem("gru", "float32", 2, 3, rng)
    with pytest.raises(ValueError, match="bias"):
        R.rnn_sequence("gru", x, k, rk, b[0], states)
    with pytest.raises(ValueError, match="initial state"):
        R.rnn_sequence("gru", x, k, rk, b, [states[0][:1]])
    with pytest.raises(ValueError, match="3-D"):
        R.rnn_sequence("gru", x[0], k, rk, b, states)


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
    batch = 1 if plan != "batch_split" else 5
    for masked, back in ((False, False), (True, True)):
        def case(dt, masked=masked, back=back):
            rng = np.random.default_rng(zlib.crc32(f"{cell}-{plan}-{dt.name}".encode()))
            x, k, rk, b, states, mask = problem(cell, dt, batch, 9, rng)
            return (cell, x, k, rk, b, states, mask if masked else None), {"go_backwards": back, "return_sequences": True}

        check_kernel_twin(R.rnn_sequence, case, runs=[(dtype, N_THREADS)], tol=TOL)


def test_time_chunked_projections_match_reference():
    # 40 rows x 160 gate columns: the kernel projects 10 steps at a time (several chunks)
    for back in (False, True):
        def case(dtype, back=back):
            x, k, rk, b, states, mask = problem("lstm", dtype, 40, 40, np.random.default_rng(7), T=25)
            return ("lstm", x, k, rk, b, states, mask), {"go_backwards": back, "return_sequences": True}

        check_kernel_twin(R.rnn_sequence, case, runs=[("float32", 1), ("float32", N_THREADS)], tol={"float32": 3e-5})


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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act,ract", [(R.ACT_TANH, R.ACT_SIGMOID), (R.ACT_TANH, R.ACT_HARD_SIGMOID),
                                      (R.ACT_RELU, R.ACT_HARD_SIGMOID_K3)],
                         ids=["tanh-sigmoid", "tanh-hard_sigmoid", "relu-hard_sigmoid_k3"])
def test_gate_maps_saturate_at_infinity_and_keep_nan(act, ract, dtype):
    """The compiled gate maps on +-inf, huge values and NaN give what the NumPy gates give: the
    vector exp / tanh saturate (a constant made as ``x * 0`` would be NaN at infinity) and the
    clips keep NaN, as tf.clip_by_value does."""
    F = 16
    special = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 3e38, -3e38, 88.0, -88.0, 0.3, -7.0, 7.0])
    rng = np.random.default_rng(F)
    z = rng.choice(special, size=(3, 4 * F)).astype(dtype)
    zh = np.zeros_like(z)
    c = rng.standard_normal((3, F)).astype(dtype)
    h, c1 = R.lstm_pointwise(z, zh, c, act, ract)
    with np.errstate(all="ignore"):
        want_h, want_c = S.lstm_gates(z.astype("float64"), c.astype("float64"), common.activation_function(act),
                                      common.activation_function(ract))
    for got, want in ((h, want_h), (c1, want_c)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-30)


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
                 "custom_callable": (lambda v: np.tanh(v) * 0.5, sigmoid)}[acts]
    h, c1 = R.lstm_pointwise(z, zh, c, act, ract, n_threads=threads)
    fn = {"codes": np.tanh, "klayers_functions": np.tanh, "custom_callable": act}[acts]
    want_h, want_c = S.lstm_gates(z0 + zh, c0, fn, sigmoid)
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(h, want_h, atol=tol)
    np.testing.assert_allclose(c1, want_c, atol=tol)
    assert h.dtype == c1.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(z, z0)  # the inputs are not overwritten
    np.testing.assert_array_equal(c, c0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("units", [7, 40, 200])
def test_batch_steps_on_the_packed_recurrent_kernel_match_reference(cell, units, dtype):
    """Batches of 1-6 rows over 6 steps multiply the packed recurrent kernel (batch 1: the
    one-row product; gate widths with strip tails; 200 units: K past one strip block); the
    reset-before GRU keeps BLAS."""
    rng = np.random.default_rng(units)
    for batch in (1, 2, 6):
        x, k, rk, b, states, mask = problem(cell, dtype, batch, units, rng)
        job = R.rnn_job(cell, x, k, rk, b, states, mask)
        spec = job.spec(0, batch)
        assert (spec["packed_recurrent_kernel"] is not None) == (cell != "gru_before" and x.shape[1] >= R.PACKED_MIN_STEPS)
        for threads in (1, 2):
            got = R.rnn_sequence(cell, x, k, rk, b, states, mask, return_sequences=True, n_threads=threads)
            want = R.rnn_sequence_reference(cell, x, k, rk, b, states, mask, return_sequences=True)
            for g, w in zip([got[0], got[1]] + got[2], [want[0], want[1]] + want[2]):
                np.testing.assert_allclose(g, w, rtol=TOL[dtype], atol=TOL[dtype] * max(1, np.abs(w).max()))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", CELLS)
def test_projections_on_the_packed_input_kernel_match_blas(cell, dtype):
    """The input projections multiply the packed input kernel (the layer's, or packed for the
    call): the same results as BLAS on the plain kernel (the spec without it), batches of 1
    and 5 in chunks of steps, gate widths with strip tails; a packer's result is used."""
    rng = np.random.default_rng(5)
    for batch in (1, 5):
        x, k, rk, b, states, mask = problem(cell, dtype, batch, 37, rng, T=25)
        calls = []
        packed_k = R.pack_recurrent_kernel(k)

        def packer(calls=calls, packed_k=packed_k):
            calls.append(1)
            return packed_k
        job = R.rnn_job(cell, x, k, rk, b, states, mask, return_sequences=True, packed_input=packer)
        spec = job.spec(0, batch)
        assert spec["packed_kernel"] is packed_k and calls == [1]
        plain = R.rnn_job(cell, x, k, rk, b, states, mask, return_sequences=True)
        plain_spec = plain.spec(0, batch)
        plain_spec["packed_kernel"] = None
        _rec.rnn_run([spec], dtype == "float64", 1)
        _rec.rnn_run([plain_spec], dtype == "float64", 1)
        for g, w in zip(job.result()[:2], plain.result()[:2]):
            np.testing.assert_allclose(g, w, rtol=TOL[dtype], atol=TOL[dtype] * max(1, np.abs(w).max()))
    spec["packed_kernel"] = packed_k[:-1].copy()
    with pytest.raises(ValueError, match="packed kernel has"):
        _rec.rnn_run([spec], dtype == "float64", 1)


def test_packed_recurrent_kernel_of_the_wrong_size_is_refused():
    x, k, rk, b, states, _ = problem("lstm", "float32", 3, 5, np.random.default_rng(2))
    job = R.rnn_job("lstm", x, k, rk, b, states)
    spec = job.spec(0, 3)
    spec["packed_recurrent_kernel"] = spec["packed_recurrent_kernel"][:-1].copy()
    with pytest.raises(ValueError, match="packed recurrent kernel has"):
        _rec.rnn_run([spec], False, 1)


@pytest.mark.parametrize("isa", [0, 1, 2], ids=["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
def test_batch1_units_split_over_packed_strips_match_reference(cell, dtype, isa, monkeypatch):
    """A batch-1 layer whose units split across threads multiplies each thread's whole strips of
    the packed recurrent kernel (units a multiple of the strip width, so no two threads write
    one strip; 96 units over 2 threads: a slice of 2 strips and one of 1), every ISA variant."""
    monkeypatch.setattr(R, "PARALLEL_MIN_MACS", 0)
    monkeypatch.setattr(R, "SPLIT_UNITS_MIN_WEIGHTS", 0)
    try:
        _rec.select_isa(isa)
        for units in (64, 96):
            rng = np.random.default_rng(units + isa)
            x, k, rk, b, states, mask = problem(cell, dtype, 1, units, rng, T=7)
            for m in (None, mask):
                got = R.rnn_sequence(cell, x, k, rk, b, states, m, return_sequences=True, n_threads=2)
                want = R.rnn_sequence_reference(cell, x, k, rk, b, states, m, return_sequences=True)
                for g, w in zip([got[0], got[1]] + got[2], [want[0], want[1]] + want[2]):
                    np.testing.assert_allclose(g, w, rtol=TOL[dtype], atol=TOL[dtype] * max(1, np.abs(w).max()))
    finally:
        _rec.select_isa()
