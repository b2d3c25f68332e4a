"""Unit tests for klayers.regularizers: penalties, float32 configs, validation, get."""

from __future__ import annotations

import numpy as np
import pytest

from klayers import regularizers as R

W = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)


@pytest.mark.parametrize(
    "reg,expected",
    [
        (R.L1(0.1), 0.1 * 6.5),
        (R.L2(0.1), 0.1 * 14.25),
        (R.L1L2(0.1, 0.2), 0.1 * 6.5 + 0.2 * 14.25),
        (R.l1_l2(), 0.01 * 6.5 + 0.01 * 14.25),
        (R.L1L2(), 0.0),
        (R.L1(l=0.5), 0.5 * 6.5),
    ],
)
def test_penalty(reg, expected):
    p = reg(W)
    assert np.asarray(p).dtype == np.float32 and np.ndim(p) == 0
    assert float(p) == pytest.approx(expected, rel=1e-6)
    assert np.asarray(reg(W.astype(np.float64))).dtype == np.float64


def test_orthogonal_regularizer():
    eye = np.eye(3, dtype=np.float32)
    assert float(R.OrthogonalRegularizer(1.0)(eye)) == 0.0
    ones = np.ones((3, 4), dtype=np.float32)
    # all vectors parallel: every normalized dot product is 1 -> factor
    assert float(R.OrthogonalRegularizer(0.4, "rows")(ones)) == pytest.approx(0.4)
    assert float(R.OrthogonalRegularizer(0.4, "columns")(ones)) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        R.OrthogonalRegularizer(mode="diag")
    with pytest.raises(ValueError):
        R.OrthogonalRegularizer()(np.ones((2, 2, 2)))


def test_configs_are_float32_rounded():
    assert R.L2(0.01).get_config() == {"l2": 0.009999999776482582}
    assert R.L1L2(l1=None, l2=0.3).get_config() == {"l1": 0.0, "l2": float(np.float32(0.3))}
    assert R.OrthogonalRegularizer().get_config() == {"factor": 0.009999999776482582, "mode": "rows"}


def test_validation():
    for bad in [float("nan"), float("inf"), "0.1"]:
        with pytest.raises(ValueError):
            R.L1(bad)
    with pytest.raises(TypeError):
        R.L2(0.1, foo=1)
    with pytest.raises(NotImplementedError):
        R.Regularizer().get_config()
    assert R.Regularizer()(W) == 0.0


def test_get_serialize():
    assert R.get(None) is None
    assert isinstance(R.get("l1"), R.L1) and isinstance(R.get("L2"), R.L2)
    assert R.get("l1_l2").get_config() == {"l1": 0.009999999776482582, "l2": 0.009999999776482582}
    fn = lambda w: 0.0  # noqa: E731
    assert R.get(fn) is fn
    with pytest.raises(ValueError, match="bogus"):
        R.get("bogus")
    with pytest.raises(ValueError):
        R.get(3)
    cfg = R.serialize(R.L1L2(0.1, 0.2))
    assert cfg["module"] == "keras.regularizers" and cfg["class_name"] == "L1L2"
    assert R.get(cfg).get_config() == R.L1L2(0.1, 0.2).get_config()
    assert R.get({"class_name": "L2", "config": {"l2": 0.5}}).get_config() == {"l2": 0.5}
    assert R.serialize(None) is None
