"""Replay recorded tf-keras 2.21 / Keras 3.15 initializer behaviour against klayers.

Random values cannot match bit for bit (another generator), so random initializers are
compared through statistics recorded from Keras on large shapes, with tolerances from the
sampling error (5 sigma); deterministic ones are compared exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance import refs
from klayers import initializers
from klayers.saving import dialect_scope

DIALECTS = {"keras2": 2, "keras3": 3}
BOUNDED = {"RandomUniform", "TruncatedNormal", "GlorotUniform", "GlorotNormal", "LecunUniform", "LecunNormal", "HeUniform", "HeNormal"}


def configs_equal(a, b) -> bool:
    """Dict/list equality with floats compared to 1e-7 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(configs_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(configs_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-12)
    return a == b and type(a) is type(b)


def _cases(dialects, pred):
    out = []
    for dialect in dialects:
        for name, meta in refs.cases("initializers", dialect):
            if name != "api" and pred(meta):
                out.append(pytest.param(dialect, name, meta, id=f"{dialect}-{name}"))
    return out


def _bounded(meta) -> bool:
    if meta["cls"] == "VarianceScaling":
        return meta["config"]["distribution"] != "untruncated_normal"
    return meta["cls"] in BOUNDED


def _build(dialect, meta):
    """klayers's initializer from Keras's serialized config (the path a loaded model takes)."""
    with dialect_scope(DIALECTS[dialect]):
        return initializers.get(meta["serialized"])


@pytest.mark.parametrize("dialect,name,meta", _cases(DIALECTS, lambda m: "stats" in m and m["cls"] != "Orthogonal"))
def test_random_statistics_match_keras(dialect, name, meta):
    for shape_key, ref in meta["stats"].items():
        shape = tuple(int(d) for d in shape_key.split("x"))
        init = _build(dialect, meta)
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


@pytest.mark.parametrize("dialect,name,meta", _cases(DIALECTS, lambda m: m["cls"] == "Orthogonal"))
def test_orthogonal_matches_keras(dialect, name, meta):
    init = _build(dialect, meta)
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


@pytest.mark.parametrize("dialect,name,meta", _cases(DIALECTS, lambda m: bool(m["arrays"])))
def test_deterministic_values_exact(dialect, name, meta):
    ref = refs.arrays("initializers", name, dialect)["value"]
    init = getattr(initializers, meta["cls"])(**meta["kwargs"])
    shape = tuple(meta["shape"])
    value = init(shape) if meta["call_dtype"] is None else init(shape, dtype=meta["call_dtype"])
    assert str(value.dtype) == meta["out_dtype"]
    np.testing.assert_array_equal(value, ref)


@pytest.mark.parametrize("dialect,name,meta", _cases(DIALECTS, lambda m: True))
def test_config_matches_keras(dialect, name, meta):
    init = getattr(initializers, meta["cls"])(**meta["kwargs"])
    config = init.get_config()
    expected = dict(meta["config"])
    if dialect == "keras3" and meta["cls"] == "Identity":
        # Keras 3.15's Identity.get_config() drops `gain` (recorded: {}); klayers keeps it.
        assert expected == {} and config == {"gain": meta["kwargs"].get("gain", 1.0)}
        return
    if dialect == "keras3":  # Keras 3 always writes the fan axes; klayers only when set
        for key in ("input_axes", "output_axes"):
            if expected.get(key, 0) is None:
                expected.pop(key)
    assert configs_equal(config, expected), (config, expected)
    rebuilt = type(init).from_config(meta["config"])
    assert configs_equal(rebuilt.get_config(), expected)


@pytest.mark.parametrize("dialect,name,meta", _cases(["keras2"], lambda m: True))
def test_serialize_matches_tf_keras(dialect, name, meta):
    init = getattr(initializers, meta["cls"])(**meta["kwargs"])
    assert configs_equal(initializers.serialize(init), meta["serialized"])
    assert configs_equal(initializers.serialize(init, use_legacy_format=True), meta["serialized_legacy"])
    again = initializers.deserialize(meta["serialized_legacy"])
    assert type(again) is type(init) and configs_equal(again.get_config(), meta["config"])


ALIASES2 = refs.family("initializers", "keras2")["cases"]["api"]["aliases"]
ALIASES3 = refs.family("initializers", "keras3")["cases"]["api"]["aliases"]


@pytest.mark.parametrize("alias", sorted(ALIASES2))
def test_get_string_alias_keras2(alias):
    obj = initializers.get(alias)
    ref = ALIASES2[alias]
    assert type(obj).__name__ == ref["class_name"]
    assert configs_equal(obj.get_config(), ref["config"])


@pytest.mark.parametrize("alias", sorted(ALIASES3))
def test_get_string_alias_keras3(alias):
    ref = ALIASES3[alias]
    with dialect_scope(3):
        obj = initializers.get(alias)
        from_config = initializers.get(ref["serialized"])
    assert type(obj).__name__ == ref["class_name"]
    assert type(from_config).__name__ == ref["class_name"]


def test_functional_aliases_keras2():
    functional = refs.family("initializers", "keras2")["cases"]["api"]["functional"]
    for name, cls_name in functional.items():
        assert getattr(initializers, name).__name__ == cls_name, name


def test_get_errors_and_none():
    api = refs.family("initializers", "keras2")["cases"]["api"]
    assert initializers.get(None) is api["get_none"]
    for bad, err in api["errors"].items():
        assert err == "ValueError"
        with pytest.raises(ValueError, match=bad):
            initializers.get(bad)


def test_legacy_dict_config():
    api = refs.family("initializers", "keras2")["cases"]["api"]
    obj = initializers.get({"class_name": "RandomNormal", "config": {"mean": 1.0, "stddev": 2.0, "seed": 3}})
    assert configs_equal(obj.get_config(), api["legacy_dict"])
