"""The compiled Dense kernel against its NumPy twin, both dtypes, 1 and N threads."""

import numpy as np
import pytest

import klayers
from klayers import ops
from klayers._ext import dense as _dense

SHAPES = [
    ((1, 3), 4),
    ((7, 16), 5),
    ((0, 4), 3),
    ((2, 5, 6), 7),
    ((2, 3, 4, 8), 2),
    ((300, 129), 300),
    ((4, 0), 3),
]
ACTS = [ops.ACT_LINEAR, ops.ACT_RELU, ops.ACT_RELU6]


@pytest.mark.parametrize("act", ACTS, ids=["linear", "relu", "relu6"])
@pytest.mark.parametrize("x_shape,units", SHAPES, ids=[f"{s}->{u}" for s, u in SHAPES])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
def test_dense_matches_reference(x_shape, units, act, use_bias, kernel_twin):
    def case(dtype):
        rng = np.random.default_rng(0)
        x = (rng.standard_normal(x_shape) * 4).astype(dtype)
        w = rng.standard_normal((x_shape[-1], units)).astype(dtype)
        b = rng.standard_normal(units).astype(dtype) if use_bias else None
        return (x, w, b, act), {}

    got = kernel_twin(ops.dense, case)
    assert got.shape == x_shape[:-1] + (units,)


def test_dense_non_contiguous_and_readonly_inputs():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 10)).astype("float32")[:, ::2]
    w = rng.standard_normal((5, 3)).astype("float32")
    w.setflags(write=False)
    x_ro = np.asfortranarray(x)
    x_ro.setflags(write=False)
    want = ops.dense_reference(np.ascontiguousarray(x), w, None)
    np.testing.assert_allclose(ops.dense(x, w, None), want, rtol=1e-6)
    np.testing.assert_allclose(ops.dense(x_ro, w, None), want, rtol=1e-6)


@pytest.mark.parametrize(
    "x_shape,w_shape,b_shape,match",
    [
        ((2, 3), (4, 5), None, "last axis"),
        ((2, 3), (3,), None, "2-D"),
        ((2, 3), (3, 5), (4,), "bias"),
    ],
)
def test_dense_op_rejects_bad_shapes(x_shape, w_shape, b_shape, match):
    x = np.zeros(x_shape, "float32")
    w = np.zeros(w_shape, "float32")
    b = np.zeros(b_shape, "float32") if b_shape else None
    with pytest.raises(ValueError, match=match):
        ops.dense(x, w, b, where="Dense d")


def test_kernel_checks_shapes_before_releasing_the_gil():
    x = np.zeros((2, 3), "float32")
    w = np.zeros((4, 5), "float32")
    out = np.zeros((2, 5), "float32")
    with pytest.raises(ValueError, match="shape mismatch"):
        _dense.dense_forward(x, w, np.zeros(5, "float32"), out, 1, 0, 1)
    with pytest.raises(ValueError, match="bias"):
        _dense.dense_forward(np.zeros((2, 4), "float32"), w, np.zeros(3, "float32"), out, 1, 0, 1)
    with pytest.raises(ValueError):  # mixed dtypes do not match one fused specialization
        _dense.dense_forward(x.astype("float64"), w, np.zeros(5, "float32"), out, 1, 0, 1)


def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((513, 64)).astype("float32")
    w = rng.standard_normal((64, 200)).astype("float32")
    b = rng.standard_normal(200).astype("float32")
    with klayers.num_threads(1):
        one = ops.dense(x, w, b, ops.ACT_RELU)
    with klayers.num_threads(2):
        two = ops.dense(x, w, b, ops.ACT_RELU)
    np.testing.assert_allclose(one, two, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("units", [4096, 4100, 1027 * 4])
def test_batch1_gemv_split_by_units_matches_reference(dtype, units):
    """A large batch-1 product is split by output units over the threads (ragged last block too)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 300)).astype(dtype)
    w = rng.standard_normal((300, units)).astype(dtype)
    b = rng.standard_normal(units).astype(dtype)
    assert w.size >= 1 << 20
    with klayers.num_threads(2):
        got = ops.dense(x, w, b, ops.ACT_RELU)
    want = ops.dense_reference(x, w, b, ops.ACT_RELU)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * float(np.abs(want).max()))
    assert not np.shares_memory(got, x)


_dense_ops = __import__("sys").modules["klayers.ops.dense"]  # the module (ops.dense is the function)


@pytest.mark.parametrize("isa", [0, 1, 2], ids=["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch,inputs,units", [(1, 7, 3), (2, 300, 33), (17, 64, 96), (300, 200, 70),
                                                (5, 0, 40), (600, 20, 1)])
def test_packed_kernel_matches_reference(batch, inputs, units, dtype, isa):
    """dense with a packed kernel (every ISA variant of the packed GEMM, 1 and 2 threads, row
    blocks of PACKED_ROW_BLOCK and past it, unit tails, K in one strip block and several, no
    inputs at all) against the NumPy twin; relu fused, sigmoid after."""
    rng = np.random.default_rng(batch + inputs + units)
    x = rng.standard_normal((batch, inputs)).astype(dtype)
    kernel = rng.standard_normal((inputs, units)).astype(dtype)
    bias = rng.standard_normal(units).astype(dtype)
    packed = _dense_ops.pack_dense_kernel(kernel)
    tol = 2e-5 if dtype == "float32" else 1e-12
    try:
        _dense.select_isa(isa)
        for act in (ops.ACT_LINEAR, ops.ACT_RELU, klayers.activations.sigmoid):
            want = _dense_ops.dense_reference(x, kernel, bias, act)
            for threads in (1, 2):
                calls = []

                def packer(calls=calls):
                    calls.append(1)
                    return packed
                got = ops.dense(x, kernel, bias, act, n_threads=threads, packed=packer)
                assert calls == [1] and got.dtype == np.dtype(dtype)
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max(initial=0)))
            got = ops.dense(x, kernel, None, act, packed=lambda: packed)
            want = _dense_ops.dense_reference(x, kernel, None, act)
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max(initial=0)))
    finally:
        _dense.select_isa()


def test_packed_kernel_refuses_what_does_not_fit():
    x, kernel = np.ones((3, 4), "float32"), np.ones((4, 5), "float32")
    packed = _dense_ops.pack_dense_kernel(kernel)
    assert packed.size == 4 * 32 and _dense_ops.pack_dense_kernel(kernel.astype("int64")) is None
    out = np.empty((3, 5), "float32")
    with pytest.raises(ValueError, match="packed kernel has"):
        _dense.DensePackedKernel(packed[:-1], np.zeros(5, "float32"), 3, 4, 5, 1, 0, 1)
    with pytest.raises(ValueError, match="bias has"):
        _dense.DensePackedKernel(packed, np.zeros(4, "float32"), 3, 4, 5, 1, 0, 1)
    with pytest.raises(ValueError, match="out has"):
        _dense.DensePackedKernel(packed, np.zeros(5, "float32"), 3, 4, 5, 1, 0, 1)(x, out[:2])
    with pytest.raises(ValueError, match="n_threads"):
        _dense.DensePackedKernel(packed, np.zeros(5, "float32"), 3, 4, 5, 1, 0, 0)
    with pytest.raises(ValueError, match="x has 8 values"):
        _dense.DensePackedKernel(packed, np.zeros(5, "float32"), 3, 4, 5, 1, 0, 1)(x[:2], out)
    with pytest.raises(ValueError, match="dtype float64"):
        _dense.DensePackedKernel(packed, np.zeros(5, "float32"), 3, 4, 5, 1, 0, 1)(x.astype("float64"), out)
    with pytest.raises(ValueError, match="read-only"):
        ro = out.copy()
        ro.setflags(write=False)
        _dense.DensePackedKernel(packed, np.zeros(5, "float32"), 3, 4, 5, 1, 0, 1)(x, ro)
    with pytest.raises(ValueError, match="unknown activation code"):
        _dense.DensePackedKernel(packed, np.zeros(5, "float32"), 3, 4, 5, 1, len(_dense.ACTIVATIONS), 1)
    # a packer handing back another dtype is not used
    got = ops.dense(x, kernel, None, packed=lambda: packed.astype("float64"))
    np.testing.assert_array_equal(got, np.full((3, 5), 4.0, "float32"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_activation_code_runs_in_the_dense_epilogue(dtype):
    """Without a packed kernel (GEMV at batch 1, GEMM at larger batches, 1 and 2 threads)
    every activation code runs in the kernel's epilogue; the twin applies the function."""
    from klayers.ops import common

    rng = np.random.default_rng(3)
    tol = 2e-5 if dtype == "float32" else 1e-12
    kernel = (rng.standard_normal((40, 1100)) * 0.2).astype(dtype)
    bias = rng.standard_normal(1100).astype(dtype)
    for name, code in common.ACTIVATION_CODES.items():
        for batch in (1, 5):
            x = rng.standard_normal((batch, 40)).astype(dtype)
            want = _dense_ops.dense_reference(x, kernel, bias, code)
            for threads in (1, 2):
                got = ops.dense(x, kernel, bias, code, n_threads=threads)
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, np.abs(want).max()), err_msg=name)


def test_prepared_calls_equal_dense_and_refuse_other_shapes():
    """dense_call settles everything but the input once (packed kernel, activation, threads);
    its calls give dense's result, refuse another shape, and fall back to dense without a
    packed kernel."""
    rng = np.random.default_rng(41)
    kernel = rng.standard_normal((12, 70)).astype("float32")
    bias = rng.standard_normal(70).astype("float32")
    packed = _dense_ops.pack_dense_kernel(kernel)
    for shape in [(1, 12), (5, 12), (2, 3, 12)]:
        x = rng.standard_normal(shape).astype("float32")
        for act in (ops.ACT_RELU, klayers.activations.sigmoid, klayers.activations.softmax):
            want = _dense_ops.dense_reference(x, kernel, bias, act)
            for pk in (packed, None):
                call = _dense_ops.dense_call(x.shape, kernel, bias, act, packed=(lambda pk=pk: pk))
                got = call(x)
                np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * max(1, np.abs(want).max()))
        with pytest.raises(ValueError, match="prepared for inputs of shape"):
            _dense_ops.dense_call(x.shape, kernel, bias, packed=lambda: packed)(x[..., :11].copy())
    with pytest.raises(ValueError):
        _dense_ops.dense_call((3, 11), kernel, bias, packed=lambda: packed)
