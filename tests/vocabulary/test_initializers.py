"""Unit tests for klayers.initializers: distributions, seeds, dtypes, fans, get/serialize."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from klayers import initializers as I

CONV = (3, 3, 16, 32)  # fan_in 144, fan_out 288


@pytest.mark.parametrize(
    "init,limit",
    [
        (I.GlorotUniform(seed=1), math.sqrt(6 / (144 + 288))),
        (I.HeUniform(seed=1), math.sqrt(6 / 144)),
        (I.LecunUniform(seed=1), math.sqrt(3 / 144)),
        (I.VarianceScaling(2.0, "fan_out", "uniform", seed=1), math.sqrt(6 / 288)),
        (I.RandomUniform(-0.3, 0.7, seed=1), None),
    ],
)
def test_uniform_bounds_and_std(init, limit):
    w = init(CONV)
    lo, hi = (-limit, limit) if limit else (-0.3, 0.7)
    assert w.dtype == np.float32 and w.shape == CONV
    assert w.min() >= lo and w.max() < hi
    assert abs(w.std() - (hi - lo) / math.sqrt(12)) < 0.05 * (hi - lo) / math.sqrt(12)


@pytest.mark.parametrize(
    "init,stddev",
    [
        (I.GlorotNormal(seed=2), math.sqrt(2 / (144 + 288))),
        (I.HeNormal(seed=2), math.sqrt(2 / 144)),
        (I.LecunNormal(seed=2), math.sqrt(1 / 144)),
        (I.VarianceScaling(3.0, "fan_avg", "untruncated_normal", seed=2), math.sqrt(3 / 216)),
        (I.TruncatedNormal(0.0, 0.2, seed=2), 0.2 * 0.87962566103423978),
        (I.RandomNormal(0.0, 0.2, seed=2), 0.2),
    ],
)
def test_normal_std(init, stddev):
    w = init(CONV).astype(np.float64)
    assert abs(w.std() - stddev) < 6 * stddev / math.sqrt(w.size)
    if isinstance(init, I.TruncatedNormal):
        assert np.abs(w).max() <= 0.4 + 1e-6
    if isinstance(init, I.GlorotNormal):  # truncated at 2 pre-correction stddevs
        assert np.abs(w).max() <= 2 * stddev / 0.87962566103423978 + 1e-6


def test_seed_determinism_and_dtype():
    a, b = I.GlorotUniform(seed=3), I.GlorotUniform(seed=3)
    np.testing.assert_array_equal(a((5, 7)), b((5, 7)))
    assert not np.array_equal(a((5, 7)), I.GlorotUniform(seed=4)((5, 7)))
    assert I.RandomNormal(seed=1)((3,), dtype="float64").dtype == np.float64
    assert I.RandomUniform(0, 10, seed=1)((50,), dtype="int32").dtype == np.int32
    with pytest.raises(ValueError):
        I.RandomNormal()((3,), dtype="int32")
    unseeded = I.RandomNormal()
    first = unseeded((4,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.testing.assert_array_equal(unseeded((4,)), first)  # stateless, like tf-keras 2.21
    assert any("unseeded" in str(w.message) for w in caught)


def test_deterministic():
    np.testing.assert_array_equal(I.Zeros()((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(I.Ones()((2,), dtype="int32"), [1, 1])
    np.testing.assert_array_equal(I.Constant(2.5)((2, 2)), np.full((2, 2), 2.5))
    np.testing.assert_array_equal(I.Identity(3.0)((2, 3)), 3.0 * np.eye(2, 3))
    with pytest.raises(ValueError, match="2D"):
        I.Identity()((2, 2, 2))


@pytest.mark.parametrize("shape,gain", [((20, 10), 1.0), ((10, 20), 1.0), ((3, 3, 4, 8), 2.0)])
def test_orthogonal(shape, gain):
    w = I.Orthogonal(gain=gain, seed=1)(shape).astype(np.float64).reshape(-1, shape[-1])
    g = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(g, gain**2 * np.eye(len(g)), atol=1e-5)
    with pytest.raises(ValueError):
        I.Orthogonal()((5,))


def test_variance_scaling_validation_and_axes():
    with pytest.raises(ValueError):
        I.VarianceScaling(scale=0)
    with pytest.raises(ValueError):
        I.VarianceScaling(mode="fan_x")
    with pytest.raises(ValueError):
        I.VarianceScaling(distribution="cauchy")
    assert I.VarianceScaling(distribution="normal").distribution == "truncated_normal"
    vs = I.VarianceScaling(1.0, "fan_in", "uniform", seed=0, input_axes=[0], output_axes=[1, 2])
    w = vs((300, 4, 5))
    assert np.abs(w).max() <= math.sqrt(3 / 300)
    assert vs.get_config()["input_axes"] == [0]
    assert "input_axes" not in I.VarianceScaling().get_config()


def test_get_and_serialize():
    assert I.get(None) is None
    assert isinstance(I.get("glorot_uniform"), I.GlorotUniform)
    assert isinstance(I.get("zero"), I.Zeros) and isinstance(I.get("normal"), I.RandomNormal)
    assert isinstance(I.get(I.HeNormal), I.HeNormal)
    fn = lambda shape, dtype=None: np.ones(shape)  # noqa: E731
    assert I.get(fn) is fn
    with pytest.raises(ValueError, match="bogus"):
        I.get("bogus")
    with pytest.raises(ValueError):
        I.get(3)
    cfg = I.serialize(I.VarianceScaling(2.0, "fan_avg", seed=5))
    assert cfg == {"module": "keras.initializers", "class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_avg", "distribution": "truncated_normal", "seed": 5}, "registered_name": None}
    again = I.deserialize(cfg)
    assert isinstance(again, I.VarianceScaling) and again.get_config() == cfg["config"]
    keras3 = {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": {"module": "keras.random", "class_name": "SeedGenerator", "config": {"seed": 9}}, "input_axes": None, "output_axes": None}, "registered_name": None}
    assert I.get(keras3).seed == 9
    assert I.get({"class_name": "Constant", "config": {"value": {"class_name": "__numpy__", "config": {"value": [1.0, 2.0], "dtype": "float32"}}}})((2,)).tolist() == [1.0, 2.0]
    with pytest.raises(TypeError):
        I.Zeros()((2,), bad_kwarg=1)
