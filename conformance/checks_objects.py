"""Replay checks of the vocabulary objects recorded from real Keras: activations, initializers,
regularizers and constraints (``conformance/cases/<family>.py``), and of each family's ``api``
case (string aliases, ``get(None)``, errors, custom objects).

Random initializers cannot match bit for bit (another generator), so they are compared through
statistics recorded from Keras on large shapes, with tolerances from the sampling error (5 sigma);
deterministic ones are compared exactly."""

from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np
import pytest

from conformance.harness import configs_equal
from conformance.internals import (
    dialect_scope,
    forget_custom_name,
    get_custom_objects,
    register_keras_serializable,
)
from conformance.refs import Case
from klayers import activations, constraints, initializers, regularizers


# -- activations -----------------------------------------------------------------------------------
def _activation_tolerance(dtype: str):
    # TF's own float64 kernels (Eigen's vectorized erf/exp) are good to about 1e-7 relative
    return (2e-6, 1e-6) if dtype == "float32" else (1e-6, 1e-12)


def activation_output(case: Case) -> None:
    """The activation Keras named, called on Keras's input with its kwargs, gives Keras's output."""
    meta, arrays = case.meta, case.arrays()
    with dialect_scope(case.version):
        fn = activations.get(meta["fn"])
    y = fn(arrays["x"], **meta["kwargs"])
    assert str(np.asarray(y).dtype) == meta["out_dtype"]
    rtol, atol = _activation_tolerance(meta["dtype"])
    np.testing.assert_allclose(y, arrays["y"], rtol=rtol, atol=atol)


def activation_serialize(case: Case) -> None:
    """``serialize`` writes Keras's name, which resolves back to the same maths."""
    meta = case.meta
    with dialect_scope(case.version):
        fn = activations.get(meta["fn"])
        assert activations.serialize(fn) == meta["serialized"]
        assert activations.get(meta["serialized"]) is fn or meta["fn"] != meta["serialized"]


def activation_dialects_differ(case: Case) -> None:
    """``hard_sigmoid`` means other maths in each Keras; klayers keeps each writer's meaning."""
    x = case.other("hard_sigmoid", "keras2").arrays()["x"]
    k2 = case.other("hard_sigmoid", "keras2").arrays()["y"]
    k3 = case.other("hard_sigmoid", "keras3").arrays()["y"]
    assert np.max(np.abs(k2 - k3)) > 0.05  # the recorded maths really differ
    np.testing.assert_allclose(activations.get("hard_sigmoid")(x), k2, atol=1e-7)
    with dialect_scope(3):
        np.testing.assert_allclose(activations.get("hard_sigmoid")(x), k3, atol=1e-7)
    np.testing.assert_allclose(activations.keras3.hard_sigmoid(x), k3, atol=1e-7)
    assert activations.serialize(activations.keras3.hard_sigmoid) == "hard_sigmoid"


def activation_public_names(case: Case) -> None:
    """Every public name of Keras's ``activations`` module exists and resolves."""
    public = case.meta["public"]
    assert public, "the recorded public names are empty"
    missing = [n for n in public if not hasattr(activations, n)]
    assert missing == []
    with dialect_scope(case.version):
        for n in public:
            if n not in ("get", "serialize", "deserialize"):
                assert callable(activations.get(n)), n


def activation_get_none_and_unknown(case: Case) -> None:
    api = case.meta
    with dialect_scope(case.version):
        assert activations.get(None).__name__ == api["get_none"]
        with pytest.raises(ValueError, match="abcd"):
            activations.get("abcd")
    assert api["unknown_error"] == "ValueError"


def activation_custom_function(case: Case) -> None:
    """A registered custom function serializes as ``package>name``, an unregistered one by name."""
    api = case.meta

    def my_custom_activation(x):
        return x * 2.0

    register_keras_serializable(package="KlayersTest")(my_custom_activation)
    try:
        assert activations.serialize(my_custom_activation) == api["custom_registered"]
        assert activations.deserialize(api["custom_registered"]) is my_custom_activation
        assert activations.get(api["custom_registered"]) is my_custom_activation
    finally:
        get_custom_objects().pop("KlayersTest>my_custom_activation")
        forget_custom_name(my_custom_activation)

    def unregistered_activation(x):
        return x

    assert activations.serialize(unregistered_activation) == api["custom_unregistered"]
    assert activations.deserialize(api["custom_unregistered"],
                                   custom_objects={"unregistered_activation": unregistered_activation}) is unregistered_activation


def activation_function_dict(case: Case) -> None:
    api = case.meta
    assert activations.deserialize(api["serialize_dict"]).__name__ == api["deserialize_dict"]


# -- initializers ----------------------------------------------------------------------------------
BOUNDED = {"RandomUniform", "TruncatedNormal", "GlorotUniform", "GlorotNormal", "LecunUniform", "LecunNormal",
           "HeUniform", "HeNormal"}


def _bounded(meta: Dict[str, Any]) -> bool:
    if meta["cls"] == "VarianceScaling":
        return meta["config"]["distribution"] != "untruncated_normal"
    return meta["cls"] in BOUNDED


def _initializer(case: Case) -> Any:
    """klayers's initializer from Keras's serialized config (the path a loaded model takes)."""
    with dialect_scope(case.version):
        return initializers.get(case.meta["serialized"])


def is_random_initializer(meta: Dict[str, Any]) -> bool:
    return "stats" in meta and meta["cls"] != "Orthogonal"


def initializer_statistics(case: Case) -> None:
    """Mean, std and extremes of large draws agree with Keras's within the sampling error."""
    meta = case.meta
    assert meta["stats"], "no recorded statistics"
    for shape_key, ref in meta["stats"].items():
        shape = tuple(int(d) for d in shape_key.split("x"))
        init = _initializer(case)
        v = init(shape).astype(np.float64)
        n, sd = ref["n"], ref["std"]
        assert v.size == n
        assert str(init(shape).dtype) == ref["dtype"]
        assert abs(v.mean() - ref["mean"]) <= 5 * sd * math.sqrt(2.0 / n), (shape, v.mean(), ref)
        assert abs(v.std() - sd) <= 5 * sd / math.sqrt(n), (shape, v.std(), ref)
        span = ref["max"] - ref["min"]
        if _bounded(meta):
            # Keras's extremes over thousands of draws sit at the distribution's bounds
            assert ref["min"] - 0.02 * span <= v.min() <= ref["min"] + 0.02 * span, (shape, v.min(), ref)
            assert ref["max"] - 0.02 * span <= v.max() <= ref["max"] + 0.02 * span, (shape, v.max(), ref)
        else:
            assert abs(v.max() - ref["max"]) <= 1.5 * sd and abs(v.min() - ref["min"]) <= 1.5 * sd, (shape, ref)


def initializer_orthogonal(case: Case) -> None:
    """Orthogonal: the Gram matrix is ``gain**2 * I`` (as Keras's was), same scale."""
    meta = case.meta
    init = _initializer(case)
    shape = tuple(meta["shape"])
    w = init(shape)
    assert w.shape == shape and str(w.dtype) == meta["stats"]["dtype"]
    m = w.astype(np.float64).reshape(-1, shape[-1])
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    gain = meta["kwargs"].get("gain", 1.0)
    err = np.max(np.abs(gram - gain**2 * np.eye(gram.shape[0])))
    assert meta["gram_error"] < 1e-5 * max(1.0, gain**2)  # Keras's is orthogonal too
    assert err < 1e-5 * max(1.0, gain**2)
    ref = meta["stats"]
    assert abs(w.std() - ref["std"]) <= 0.1 * ref["std"]
    assert abs(w.mean() - ref["mean"]) <= 5 * ref["std"] * math.sqrt(2.0 / ref["n"])


def initializer_exact(case: Case) -> None:
    """Deterministic initializers give Keras's values exactly."""
    meta = case.meta
    ref = case.arrays()["value"]
    init = getattr(initializers, meta["cls"])(**meta["kwargs"])
    shape = tuple(meta["shape"])
    value = init(shape) if meta["call_dtype"] is None else init(shape, dtype=meta["call_dtype"])
    assert str(value.dtype) == meta["out_dtype"]
    np.testing.assert_array_equal(value, ref)


def initializer_config(case: Case) -> None:
    """``get_config`` writes Keras's config; ``from_config`` of Keras's config rebuilds it."""
    meta = case.meta
    init = getattr(initializers, meta["cls"])(**meta["kwargs"])
    config = init.get_config()
    expected = dict(meta["config"])
    if case.dialect == "keras3" and meta["cls"] == "Identity":
        # Keras 3.15's Identity.get_config() drops `gain` (recorded: {}); klayers keeps it.
        assert expected == {} and config == {"gain": meta["kwargs"].get("gain", 1.0)}
        return
    if case.dialect == "keras3":  # Keras 3 always writes the fan axes; klayers only when set
        for key in ("input_axes", "output_axes"):
            if expected.get(key, 0) is None:
                expected.pop(key)
    assert configs_equal(config, expected), (config, expected)
    rebuilt = type(init).from_config(meta["config"])
    assert configs_equal(rebuilt.get_config(), expected)


def initializer_serialize(case: Case) -> None:
    """``serialize`` (new and legacy format) writes what tf-keras writes."""
    meta = case.meta
    init = getattr(initializers, meta["cls"])(**meta["kwargs"])
    assert configs_equal(initializers.serialize(init), meta["serialized"])
    assert configs_equal(initializers.serialize(init, use_legacy_format=True), meta["serialized_legacy"])
    again = initializers.deserialize(meta["serialized_legacy"])
    assert type(again) is type(init) and configs_equal(again.get_config(), meta["config"])


def initializer_alias(case: Case) -> None:
    """``initializers.get(alias)`` builds Keras's class (and, in Keras 2, its config)."""
    ref = case.meta["aliases"][case.item]
    if case.dialect == "keras2":
        obj = initializers.get(case.item)
        assert type(obj).__name__ == ref["class_name"]
        assert configs_equal(obj.get_config(), ref["config"])
        return
    with dialect_scope(3):
        obj = initializers.get(case.item)
        from_config = initializers.get(ref["serialized"])
    assert type(obj).__name__ == ref["class_name"]
    assert type(from_config).__name__ == ref["class_name"]


def initializer_functional_aliases(case: Case) -> None:
    functional = case.meta["functional"]
    assert functional
    for name, cls_name in functional.items():
        assert getattr(initializers, name).__name__ == cls_name, name


def initializer_errors_and_none(case: Case) -> None:
    api = case.meta
    assert initializers.get(None) is api["get_none"]
    assert api["errors"]
    for bad, err in api["errors"].items():
        assert err == "ValueError"
        with pytest.raises(ValueError, match=bad):
            initializers.get(bad)


def initializer_legacy_dict(case: Case) -> None:
    obj = initializers.get({"class_name": "RandomNormal", "config": {"mean": 1.0, "stddev": 2.0, "seed": 3}})
    assert configs_equal(obj.get_config(), case.meta["legacy_dict"])


# -- regularizers ----------------------------------------------------------------------------------
def regularizer_penalty(case: Case) -> None:
    """The penalty of Keras's weights, from Keras's serialized config and from the class."""
    meta, arrays = case.meta, case.arrays()
    with dialect_scope(case.version):
        reg = regularizers.get(meta["serialized"])
    assert type(reg).__name__ == meta["cls"]
    penalty = reg(arrays["w"])
    assert np.asarray(penalty).dtype == np.float32
    np.testing.assert_allclose(penalty, arrays["penalty"], rtol=2e-6)
    direct = getattr(regularizers, meta["cls"])(**meta["kwargs"])
    np.testing.assert_allclose(direct(arrays["w"]), arrays["penalty"], rtol=2e-6)


def regularizer_config(case: Case) -> None:
    meta = case.meta
    reg = getattr(regularizers, meta["cls"])(**meta["kwargs"])
    assert configs_equal(reg.get_config(), meta["config"])
    if case.dialect == "keras2":  # exact float32-rounded floats, as tf-keras writes them
        assert reg.get_config() == meta["config"]
        assert regularizers.serialize(reg) == meta["serialized"]
    again = regularizers.deserialize(regularizers.serialize(reg))
    assert again.get_config() == reg.get_config()


def regularizer_aliases(case: Case) -> None:
    aliases = case.meta["aliases"]
    assert aliases
    for name, ref in aliases.items():
        if "error" in ref:  # Keras 3 dropped "l1_l2" as a string; klayers keeps tf-keras's
            assert case.dialect == "keras3" and name == "l1_l2"
            continue
        obj = regularizers.get(name)
        assert type(obj).__name__ == ref["class_name"], name
        if case.dialect == "keras2":
            assert obj.get_config() == ref["config"], name


def regularizer_l1_l2_and_unknown(case: Case) -> None:
    api = case.meta
    assert regularizers.l1_l2().get_config() == api["l1_l2"]
    # tf-keras returns the unknown string itself; klayers raises instead (documented deviation)
    assert api["unknown"] == "'nonexistent_regularizer'"
    with pytest.raises(ValueError, match="nonexistent_regularizer"):
        regularizers.get("nonexistent_regularizer")


# -- constraints -----------------------------------------------------------------------------------
def constraint_output(case: Case) -> None:
    """The constraint applied to Keras's weights, from Keras's serialized config and from the class."""
    meta, arrays = case.meta, case.arrays()
    with dialect_scope(case.version):
        c = constraints.get(meta["serialized"])
    assert type(c).__name__ == meta["cls"]
    out = c(arrays["w"])
    assert out.dtype == arrays["out"].dtype and out.shape == arrays["out"].shape
    np.testing.assert_allclose(out, arrays["out"], rtol=2e-6, atol=1e-7)
    direct = getattr(constraints, meta["cls"])(**meta["kwargs"])
    np.testing.assert_allclose(direct(arrays["w"]), arrays["out"], rtol=2e-6, atol=1e-7)


def constraint_config(case: Case) -> None:
    meta = case.meta
    c = getattr(constraints, meta["cls"])(**meta["kwargs"])
    assert configs_equal(c.get_config(), meta["config"])
    assert configs_equal(constraints.serialize(c), meta["serialized"])
    again = constraints.deserialize(constraints.serialize(c))
    assert type(again) is type(c) and again.get_config() == c.get_config()


def constraint_aliases(case: Case) -> None:
    aliases = case.meta["aliases"]
    assert aliases
    for name, ref in aliases.items():
        if "error" in ref:  # names Keras 3 dropped; klayers keeps tf-keras's
            assert case.dialect == "keras3"
            continue
        obj = constraints.get(name)
        assert type(obj).__name__ == ref["class_name"], name
        assert configs_equal(obj.get_config(), ref["config"]), name
