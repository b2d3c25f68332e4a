"""Unit tests for klayers.constraints: projections, axes, RadialConstraint, get/serialize."""

from __future__ import annotations

import numpy as np
import pytest

from klayers import constraints as C

W = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32) * 2


def test_max_norm():
    out = C.MaxNorm(1.0, axis=0)(W)
    assert out.dtype == np.float32
    assert np.all(np.linalg.norm(out, axis=0) <= 1.0 + 1e-5)
    small = W * 0.01
    np.testing.assert_allclose(C.MaxNorm(2.0)(small), small, rtol=1e-5)
    conv = np.random.default_rng(1).standard_normal((3, 3, 2, 4)).astype(np.float32)
    norms = np.sqrt((C.MaxNorm(0.5, axis=[0, 1, 2])(conv) ** 2).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(norms, 0.5, rtol=1e-5)


def test_unit_norm_and_non_neg():
    np.testing.assert_allclose(np.linalg.norm(C.UnitNorm(axis=1)(W), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(C.NonNeg()(W), np.where(W >= 0, W, 0))


@pytest.mark.parametrize("rate", [1.0, 0.5, 0.0])
def test_min_max_norm(rate):
    out = C.MinMaxNorm(1.0, 1.5, rate=rate, axis=0)(W)
    n, n0 = np.linalg.norm(out, axis=0), np.linalg.norm(W, axis=0)
    np.testing.assert_allclose(n, rate * np.clip(n0, 1.0, 1.5) + (1 - rate) * n0, rtol=1e-5)


def test_radial_constraint():
    w = np.arange(16, dtype=np.float32).reshape(4, 4, 1, 1)
    out = C.RadialConstraint()(w)[..., 0, 0]
    # even: inner 2x2 takes w[1, 1] = 5, the outer ring w[3, 3] = 15 (tf-keras's rule)
    expected = np.full((4, 4), 15.0)
    expected[1:3, 1:3] = 5.0
    np.testing.assert_array_equal(out, expected)
    w3 = np.arange(9, dtype=np.float32).reshape(3, 3, 1, 1)
    out3 = C.RadialConstraint()(w3)[..., 0, 0]
    assert out3[1, 1] == 0.0 and out3[0, 0] == 4.0  # odd: centre w[0, 0], ring w[1, 1]
    with pytest.raises(ValueError):
        C.RadialConstraint()(np.ones((3, 3)))


def test_get_serialize_aliases():
    assert C.get(None) is None
    assert isinstance(C.get("max_norm"), C.MaxNorm) and isinstance(C.get("nonneg"), C.NonNeg)
    assert C.max_norm is C.MaxNorm and C.unitnorm is C.UnitNorm and C.radial_constraint is C.RadialConstraint
    cfg = C.serialize(C.MinMaxNorm(0.1, 2.0, 0.5, [0, 1]))
    assert cfg == {"module": "keras.constraints", "class_name": "MinMaxNorm", "config": {"min_value": 0.1, "max_value": 2.0, "rate": 0.5, "axis": [0, 1]}, "registered_name": None}
    assert C.get(cfg).get_config() == cfg["config"]
    fn = lambda w: w  # noqa: E731
    assert C.get(fn) is fn
    with pytest.raises(ValueError, match="bogus"):
        C.get("bogus")
    with pytest.raises(ValueError):
        C.get(3)
    assert C.Constraint()(W) is W
