"""Replay recorded tf-keras 2.21 / Keras 3.15 activation outputs against klayers."""

from __future__ import annotations

import numpy as np
import pytest

from conformance import refs
from klayers import activations
from klayers.saving import dialect_scope, register_keras_serializable
from klayers.serialization import get_custom_objects

DIALECTS = {"keras2": 2, "keras3": 3}


def _array_cases():
    out = []
    for dialect in DIALECTS:
        for name, meta in refs.cases("activations", dialect):
            if meta["arrays"]:
                out.append(pytest.param(dialect, name, meta, id=f"{dialect}-{name}"))
    return out


def _tolerance(dtype: str):
    # TF's own float64 kernels (Eigen's vectorized erf/exp) are good to about 1e-7 relative
    return (2e-6, 1e-6) if dtype == "float32" else (1e-6, 1e-12)


@pytest.mark.parametrize("dialect,name,meta", _array_cases())
def test_output_matches_keras(dialect, name, meta):
    arrays = refs.arrays("activations", name, dialect)
    with dialect_scope(DIALECTS[dialect]):
        fn = activations.get(meta["fn"])
    y = fn(arrays["x"], **meta["kwargs"])
    assert str(np.asarray(y).dtype) == meta["out_dtype"]
    rtol, atol = _tolerance(meta["dtype"])
    np.testing.assert_allclose(y, arrays["y"], rtol=rtol, atol=atol)


@pytest.mark.parametrize("dialect,name,meta", _array_cases())
def test_serialize_matches_keras(dialect, name, meta):
    with dialect_scope(DIALECTS[dialect]):
        fn = activations.get(meta["fn"])
        assert activations.serialize(fn) == meta["serialized"]
        # and the name resolves back to the same maths
        assert activations.get(meta["serialized"]) is fn or meta["fn"] != meta["serialized"]


def test_hard_sigmoid_dialects_differ():
    x = refs.arrays("activations", "hard_sigmoid", "keras2")["x"]
    k2 = refs.arrays("activations", "hard_sigmoid", "keras2")["y"]
    k3 = refs.arrays("activations", "hard_sigmoid", "keras3")["y"]
    assert np.max(np.abs(k2 - k3)) > 0.05  # the recorded maths really differ
    np.testing.assert_allclose(activations.get("hard_sigmoid")(x), k2, atol=1e-7)
    with dialect_scope(3):
        np.testing.assert_allclose(activations.get("hard_sigmoid")(x), k3, atol=1e-7)
    np.testing.assert_allclose(activations.keras3.hard_sigmoid(x), k3, atol=1e-7)
    assert activations.serialize(activations.keras3.hard_sigmoid) == "hard_sigmoid"


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_public_names_covered(dialect):
    public = refs.family("activations", dialect)["cases"]["api"]["public"]
    missing = [n for n in public if not hasattr(activations, n)]
    assert missing == []
    with dialect_scope(DIALECTS[dialect]):
        for n in public:
            if n not in ("get", "serialize", "deserialize"):
                assert callable(activations.get(n)), n


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_get_none_and_unknown(dialect):
    api = refs.family("activations", dialect)["cases"]["api"]
    with dialect_scope(DIALECTS[dialect]):
        assert activations.get(None).__name__ == api["get_none"]
        with pytest.raises(ValueError, match="abcd"):
            activations.get("abcd")
    assert api["unknown_error"] == "ValueError"


def test_custom_function_serialization_matches_tf_keras():
    api = refs.family("activations", "keras2")["cases"]["api"]

    def my_custom_activation(x):
        return x * 2.0

    register_keras_serializable(package="KlayersTest")(my_custom_activation)
    try:
        assert activations.serialize(my_custom_activation) == api["custom_registered"]
        assert activations.deserialize(api["custom_registered"]) is my_custom_activation
        assert activations.get(api["custom_registered"]) is my_custom_activation
    finally:
        get_custom_objects().pop("KlayersTest>my_custom_activation")
        from klayers.serialization import registry

        registry._GLOBAL_CUSTOM_NAMES.pop(my_custom_activation, None)

    def unregistered_activation(x):
        return x

    assert activations.serialize(unregistered_activation) == api["custom_unregistered"]
    assert activations.deserialize(api["custom_unregistered"], custom_objects={"unregistered_activation": unregistered_activation}) is unregistered_activation


def test_function_dict_config():
    api = refs.family("activations", "keras2")["cases"]["api"]
    assert activations.deserialize(api["serialize_dict"]).__name__ == api["deserialize_dict"]
