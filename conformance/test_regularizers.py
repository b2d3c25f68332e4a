"""Replay recorded tf-keras 2.21 / Keras 3.15 regularizer penalties and configs."""

from __future__ import annotations

import numpy as np
import pytest

from conformance import refs
from conformance.test_initializers import configs_equal
from klayers import regularizers
from klayers.saving import dialect_scope

DIALECTS = {"keras2": 2, "keras3": 3}


def _cases():
    return [
        pytest.param(d, name, meta, id=f"{d}-{name}")
        for d in DIALECTS
        for name, meta in refs.cases("regularizers", d)
        if name != "api"
    ]


@pytest.mark.parametrize("dialect,name,meta", _cases())
def test_penalty_matches_keras(dialect, name, meta):
    arrays = refs.arrays("regularizers", name, dialect)
    with dialect_scope(DIALECTS[dialect]):
        reg = regularizers.get(meta["serialized"])
    assert type(reg).__name__ == meta["cls"]
    penalty = reg(arrays["w"])
    assert np.asarray(penalty).dtype == np.float32
    np.testing.assert_allclose(penalty, arrays["penalty"], rtol=2e-6)
    direct = getattr(regularizers, meta["cls"])(**meta["kwargs"])
    np.testing.assert_allclose(direct(arrays["w"]), arrays["penalty"], rtol=2e-6)


@pytest.mark.parametrize("dialect,name,meta", _cases())
def test_config_matches_keras(dialect, name, meta):
    reg = getattr(regularizers, meta["cls"])(**meta["kwargs"])
    assert configs_equal(reg.get_config(), meta["config"])
    if dialect == "keras2":  # exact float32-rounded floats, as tf-keras writes them
        assert reg.get_config() == meta["config"]
        assert regularizers.serialize(reg) == meta["serialized"]
    again = regularizers.deserialize(regularizers.serialize(reg))
    assert again.get_config() == reg.get_config()


@pytest.mark.parametrize("dialect", ["keras2", "keras3"])
def test_string_aliases(dialect):
    api = refs.family("regularizers", dialect)["cases"]["api"]
    for name, ref in api["aliases"].items():
        if "error" in ref:  # Keras 3 dropped "l1_l2" as a string; klayers keeps tf-keras's
            assert dialect == "keras3" and name == "l1_l2"
            continue
        obj = regularizers.get(name)
        assert type(obj).__name__ == ref["class_name"], name
        if dialect == "keras2":
            assert obj.get_config() == ref["config"], name


def test_l1_l2_function_and_unknown_name():
    api = refs.family("regularizers", "keras2")["cases"]["api"]
    assert regularizers.l1_l2().get_config() == api["l1_l2"]
    # tf-keras returns the unknown string itself; klayers raises instead (documented deviation)
    assert api["unknown"] == "'nonexistent_regularizer'"
    with pytest.raises(ValueError, match="nonexistent_regularizer"):
        regularizers.get("nonexistent_regularizer")
