"""Replay recorded tf-keras 2.21 / Keras 3.15 constraint outputs and configs."""

from __future__ import annotations

import numpy as np
import pytest

from conformance import refs
from conformance.test_initializers import configs_equal
from klayers import constraints
from klayers.saving import dialect_scope

DIALECTS = {"keras2": 2, "keras3": 3}


def _cases():
    return [
        pytest.param(d, name, meta, id=f"{d}-{name}")
        for d in DIALECTS
        for name, meta in refs.cases("constraints", d)
        if name != "api"
    ]


@pytest.mark.parametrize("dialect,name,meta", _cases())
def test_output_matches_keras(dialect, name, meta):
    arrays = refs.arrays("constraints", name, dialect)
    with dialect_scope(DIALECTS[dialect]):
        c = constraints.get(meta["serialized"])
    assert type(c).__name__ == meta["cls"]
    out = c(arrays["w"])
    assert out.dtype == arrays["out"].dtype and out.shape == arrays["out"].shape
    np.testing.assert_allclose(out, arrays["out"], rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(getattr(constraints, meta["cls"])(**meta["kwargs"])(arrays["w"]), arrays["out"], rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("dialect,name,meta", _cases())
def test_config_matches_keras(dialect, name, meta):
    c = getattr(constraints, meta["cls"])(**meta["kwargs"])
    assert configs_equal(c.get_config(), meta["config"])
    assert configs_equal(constraints.serialize(c), meta["serialized"])
    again = constraints.deserialize(constraints.serialize(c))
    assert type(again) is type(c) and again.get_config() == c.get_config()


@pytest.mark.parametrize("dialect", ["keras2", "keras3"])
def test_string_aliases(dialect):
    api = refs.family("constraints", dialect)["cases"]["api"]
    for name, ref in api["aliases"].items():
        if "error" in ref:  # names Keras 3 dropped; klayers keeps tf-keras's
            assert dialect == "keras3"
            continue
        obj = constraints.get(name)
        assert type(obj).__name__ == ref["class_name"], name
        assert configs_equal(obj.get_config(), ref["config"]), name
