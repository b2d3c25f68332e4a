"""The compiled softmax kernel against its NumPy twin: both dtypes, 1 and 2 threads, every
vector variant this CPU has, large magnitudes, and tf-keras's NaN / inf behaviour."""

import numpy as np
import pytest

import klayers
from klayers._ext import softmax as _softmax
from klayers.ops import softmax as sm

# (shape, axis): last axis as rows, other axes strided (Q = 1, < block, > block, ragged)
CASES = [
    ((1, 7), -1),
    ((3, 64, 256), -1),
    ((5, 1), -1),
    ((2, 3, 4, 33), 2),
    ((9, 300), 0),
    ((2, 5, 513), 1),
    ((4, 3, 2), 0),
    ((6,), 0),
    ((2, 0, 3), -1),
    ((3, 17), (0, 1)),
    ((2, 3, 4), [1]),
]
ISA_LEVELS = [0, 1, 2]


@pytest.fixture(params=ISA_LEVELS, ids=["baseline", "avx2", "avx512"])
def isa(request):
    """Force a vector variant (falls back to the widest this CPU has), restore afterwards."""
    name = _softmax.select_isa(request.param)
    yield name
    _softmax.select_isa()


TOL = {"float32": 2e-6, "float64": 1e-13}


def _tol(dtype):
    return TOL[dtype]


@pytest.mark.parametrize("shape,axis", CASES, ids=[f"{s}-ax{a}" for s, a in CASES])
def test_softmax_matches_reference(shape, axis, isa, kernel_twin, monkeypatch):
    def case(dtype):
        x = (np.random.default_rng(0).standard_normal(shape) * 5).astype(dtype)
        return (x, axis), {}

    monkeypatch.setattr(sm, "PARALLEL_MIN_SIZE", 1)  # small inputs take the threaded path too
    got = kernel_twin(sm.softmax, case, tol=TOL)
    assert got.shape == shape
    if got.size:
        axes = tuple(axis) if isinstance(axis, (list, tuple)) else axis
        np.testing.assert_allclose(got.sum(axis=axes), 1.0, rtol=10 * TOL[kernel_twin.dtype.name])


def test_thread_count_does_not_change_the_result(monkeypatch):
    x = np.random.default_rng(1).standard_normal((64, 40, 256)).astype("float32")
    monkeypatch.setattr(sm, "PARALLEL_MIN_SIZE", 1)
    with klayers.num_threads(1):
        one = sm.softmax(x, -1), sm.softmax(x, 1)
    with klayers.num_threads(2):
        two = sm.softmax(x, -1), sm.softmax(x, 1)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_large_magnitudes(dtype, axis, isa):
    big = np.finfo(dtype).max / 4
    rows = np.array([[1e30, -1e30, 3.0, 4.0], [big, big, -big, 0.0], [-1e4, -1e4 - 1, -2e4, -1e4 + 2],
                     [1e-30, -1e-30, 0.0, 5e-39]], dtype=dtype)
    x = rows if axis == -1 else np.ascontiguousarray(rows.T)
    got = sm.softmax(x, axis)
    want = sm.softmax_reference(x, axis)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=_tol(dtype), atol=_tol(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_nan_and_inf_as_tf_keras(dtype, axis, isa):
    """tf-keras 2.21 on CPU (Eigen): a NaN or +inf makes the whole slice NaN, an all -inf
    slice is NaN, a -inf entry among finite values gets exactly 0."""
    inf, nan = np.inf, np.nan
    rows = np.array([
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, nan, 3, 4, 5, 6, 7, 8, 9],
        [1, inf, 3, 4, 5, 6, 7, 8, 9],
        [-inf] * 9,
        [1, -inf, 3, 4, 5, 6, 7, 8, 9],
        [inf] * 9,
        [nan, inf, -inf, 4, 5, 6, 7, 8, 9],
    ], dtype=dtype)
    x = rows if axis == -1 else np.ascontiguousarray(rows.T)
    got = sm.softmax(x, axis)
    got = got if axis == -1 else got.T
    for r in (1, 2, 3, 5, 6):
        assert np.isnan(got[r]).all(), r
    assert got[4, 1] == 0.0 and np.isfinite(got[4]).all()
    np.testing.assert_allclose(got[4, [0, 2]], sm.softmax_reference(rows[0])[[0, 2]] / (1 - sm.softmax_reference(rows[0])[1]), rtol=1e-5)
    with np.errstate(invalid="ignore"):
        want = sm.softmax_reference(x, axis)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want if axis == -1 else want.T))


def test_expf_accuracy_and_special_values():
    t = np.linspace(-87, 0, 200001, dtype=np.float32)
    out = np.empty_like(t)
    _softmax.expf(t, out)
    want = np.exp(t.astype(np.float64))
    assert np.max(np.abs(out - want) / want) < 3e-7  # about 2 ulp
    special = np.array([-np.inf, np.nan, 0.0, -88.0, -1e30], np.float32)
    _softmax.expf(special, out[:5])
    assert out[0] == 0.0 and np.isnan(out[1]) and out[2] == 1.0 and out[3] == 0.0 and out[4] == 0.0


def test_non_contiguous_readonly_and_integer_inputs():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 10)).astype("float32")[:, ::2]
    want = sm.softmax_reference(np.ascontiguousarray(x))
    np.testing.assert_allclose(sm.softmax(x), want, rtol=1e-6)
    ro = np.asfortranarray(x)
    ro.setflags(write=False)
    np.testing.assert_allclose(sm.softmax(ro, -1), want, rtol=1e-6)
    ints = np.array([[1, 2, 3]])
    np.testing.assert_allclose(sm.softmax(ints), sm.softmax_reference(ints.astype("float32")), rtol=1e-6)
    half = np.array([[1, 2, 3]], np.float16)
    assert sm.softmax(half).dtype == np.float16


@pytest.mark.parametrize("axis,match", [(2, "out of range"), (-3, "out of range"), ((0, 0), "repeated"),
                                        ((), "at least one"), (1.5, "int"), (True, "int")])
def test_bad_axes_are_refused(axis, match):
    with pytest.raises(ValueError, match=match):
        sm.softmax(np.zeros((2, 3), np.float32), axis, where="Softmax 'sm'")


def test_kernel_checks_shapes():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="shape mismatch"):
        _softmax.softmax_rows(x, np.zeros((3, 2), np.float32), 1)
    with pytest.raises(ValueError, match="shape mismatch"):
        _softmax.softmax_strided(x[None], np.zeros((1, 3, 2), np.float32), 1)


def test_every_row_length_around_the_vector_widths(isa):
    """Row lengths 1..40 cover full 16-lane blocks, 8-lane blocks and every tail size."""
    rng = np.random.default_rng(6)
    for n in range(1, 41):
        x = (rng.standard_normal((3, n)) * 10).astype("float32")
        x[1, n // 2] = -np.inf
        got = sm.softmax(x)
        np.testing.assert_allclose(got, sm.softmax_reference(x), rtol=2e-6, atol=2e-7, err_msg=f"n={n}")
        assert got[1, n // 2] == 0.0 or n == 1
