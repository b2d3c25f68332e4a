"""The compiled layer-norm and channel-affine kernels (klayers.ops.normalization) against their
NumPy twins: both dtypes, 1 and N threads, every vector variant this CPU has, special values,
shape checks before the GIL is released."""

import numpy as np
import pytest

from klayers._ext import norm as _norm
from klayers.ops import normalization as norm_ops

LN_CASES = [((1, 7), 1), ((3, 64, 256), 1), ((2, 3, 4, 5), 2), ((5, 1), 1), ((6,), 1), ((0, 4), 1),
            ((2, 3, 33), 3)]



@pytest.fixture(params=[0, 1, 2], ids=["baseline", "avx2", "avx512"])
def ln_isa(request):
    """Force a vector variant (falls back to the widest this CPU has), restore afterwards."""
    yield _norm.select_isa(request.param)
    _norm.select_isa()



@pytest.mark.parametrize("affine", ["both", "gamma", "beta", "none"])
@pytest.mark.parametrize("shape,n_axes", LN_CASES, ids=[f"{s}-last{k}" for s, k in LN_CASES])
def test_layer_norm_kernel_matches_reference(shape, n_axes, affine, ln_isa, kernel_twin, monkeypatch):
    def case(dtype):
        rng = np.random.default_rng(3)
        x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
        norm_shape = shape[len(shape) - n_axes:]
        gamma = rng.standard_normal(norm_shape).astype(dtype) if affine in ("both", "gamma") else None
        beta = rng.standard_normal(norm_shape).astype(dtype) if affine in ("both", "beta") else None
        return (x, n_axes, gamma, beta, 1e-3), {}

    monkeypatch.setattr(norm_ops, "PARALLEL_MIN_SIZE", 1)
    got = kernel_twin(norm_ops.layer_norm, case, tol={"float32": 2e-5, "float64": 1e-12})
    assert got.shape == shape


def test_layer_norm_kernel_special_values_and_constant_rows():
    x = np.array([[1, 2, np.nan, 4], [1, np.inf, 3, 4], [5, 5, 5, 5], [1e18, -1e18, 0, 1]], np.float32)
    got = norm_ops.layer_norm(x, 1, None, None, 1e-3)
    assert np.isnan(got[0]).all() and np.isnan(got[1]).all()
    np.testing.assert_array_equal(got[2], 0.0)
    np.testing.assert_allclose(got[3], norm_ops.layer_norm_reference(x[3:].astype("float64"), 1, None, None, 1e-3)[0],
                               rtol=1e-5)



def test_layer_norm_kernel_checks_shapes():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="gamma has shape"):
        norm_ops.layer_norm(x, 1, np.ones(4, np.float32), None, 1e-3)
    with pytest.raises(ValueError, match="last 3 axes"):
        norm_ops.layer_norm(x, 3, None, None, 1e-3)
    with pytest.raises(ValueError, match="shape mismatch"):
        _norm.layer_norm_rows(x, x[0], x[0], np.zeros((3, 2), np.float32), True, True, 1e-3, 1)



AFFINE_CASES = [((4, 5), -1), ((2, 3, 4, 6), 3), ((2, 6, 4, 3), 1), ((1, 7, 9), 0), ((3, 0, 2), 2), ((5,), 0),
                ((64, 32, 32), -1)]



@pytest.mark.parametrize("shape,axis", AFFINE_CASES, ids=[f"{s}-ax{a}" for s, a in AFFINE_CASES])
def test_channel_affine_kernel_matches_reference(shape, axis, ln_isa, kernel_twin, monkeypatch):
    def case(dtype):
        rng = np.random.default_rng(4)
        x = rng.standard_normal(shape).astype(dtype)
        c = shape[axis]
        scale, shift = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
        return (x, axis, scale, shift), {}

    monkeypatch.setattr(norm_ops, "AFFINE_PARALLEL_MIN_SIZE", 1)
    got = kernel_twin(norm_ops.channel_affine, case, tol={"float32": 1e-6, "float64": 1e-14})
    assert got.shape == shape


def test_channel_affine_checks_shapes():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="scale has shape"):
        norm_ops.channel_affine(x, -1, np.ones(2, np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="out of range"):
        norm_ops.channel_affine(x, 2, np.ones(3, np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="shape mismatch"):
        _norm.channel_affine(x[None], x[:, 0].copy(), x[:, 0].copy(), np.zeros((1, 3, 2), np.float32), 1)



def test_layer_norm_kernel_long_float32_rows_stay_accurate():
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((2, 1 << 20)) * 0.01 + 100).astype("float32")  # large offset, small spread
    got = norm_ops.layer_norm(x, 1, None, None, 1e-6)
    want = norm_ops.layer_norm_reference(x.astype("float64"), 1, None, None, 1e-6)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-3)


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (4, 3), (1, 1, 1, 3), (3, 9, 200, 1), (2, 0, 3), (6, 130), (5,)])
def test_last_axis_rows_gives_the_broadcast_values_exactly(shape):
    """A per-channel expression on the regrouped rows equals, bit for bit, the same expression
    broadcast over ``x`` (contiguous or not: a strided view comes back as it is)."""
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    x = rng.standard_normal(shape).astype("float32")
    c = shape[-1]
    mean, denom = rng.standard_normal(c).astype("float32"), rng.uniform(0.5, 2, c).astype("float32")
    want = (x - mean) / denom
    rows, (m, d) = norm_ops.last_axis_rows(x, mean.reshape((1,) * (x.ndim - 1) + (c,)), denom)
    np.testing.assert_array_equal(((rows - m) / d).reshape(x.shape), want)
    if x.ndim >= 2 and x.size and c < 128:
        assert rows.ndim == 2 and rows.shape[-1] >= min(512, x.size) // 2 and rows.shape[-1] % c == 0
    strided = x[..., ::-1]
    rows, (m, d) = norm_ops.last_axis_rows(strided, mean, denom)
    assert rows is strided or strided.flags.c_contiguous
    np.testing.assert_array_equal(((rows - m) / d).reshape(x.shape), (strided - mean) / denom)
