"""Initializer conformance cases: exact values of the deterministic initializers, statistics
(mean, std, min, max over many samples) of the random ones, orthogonality, configs,
serialization and every string alias ``initializers.get`` accepts."""

from __future__ import annotations

import numpy as np

CONV = (3, 3, 16, 32)
DENSE = (256, 512)

# (case name, class name, kwargs, shapes)
RANDOM = [
    ("RandomUniform", "RandomUniform", {"seed": 1}, [DENSE]),
    ("RandomUniform-range", "RandomUniform", {"minval": -2.0, "maxval": 3.0, "seed": 2}, [DENSE]),
    ("RandomNormal", "RandomNormal", {"seed": 3}, [DENSE]),
    ("RandomNormal-mean", "RandomNormal", {"mean": 1.5, "stddev": 0.3, "seed": 4}, [DENSE]),
    ("TruncatedNormal", "TruncatedNormal", {"seed": 5}, [DENSE]),
    ("TruncatedNormal-mean", "TruncatedNormal", {"mean": -1.0, "stddev": 2.0, "seed": 6}, [DENSE]),
    ("GlorotUniform", "GlorotUniform", {"seed": 7}, [CONV, DENSE]),
    ("GlorotNormal", "GlorotNormal", {"seed": 8}, [CONV, DENSE]),
    ("LecunUniform", "LecunUniform", {"seed": 9}, [CONV, DENSE]),
    ("LecunNormal", "LecunNormal", {"seed": 10}, [CONV, DENSE]),
    ("HeUniform", "HeUniform", {"seed": 11}, [CONV, DENSE]),
    ("HeNormal", "HeNormal", {"seed": 12}, [CONV, DENSE]),
]
for _mode in ["fan_in", "fan_out", "fan_avg"]:
    for _dist in ["truncated_normal", "untruncated_normal", "uniform"]:
        RANDOM.append(
            (
                f"VarianceScaling-{_mode}-{_dist}",
                "VarianceScaling",
                {"scale": 1.7, "mode": _mode, "distribution": _dist, "seed": 13},
                [CONV, DENSE],
            )
        )
RANDOM.append(("VarianceScaling-normal", "VarianceScaling", {"scale": 0.5, "distribution": "normal", "seed": 14}, [CONV]))

ORTHOGONAL = [
    ("Orthogonal-tall", {"seed": 20}, (64, 32)),
    ("Orthogonal-wide", {"seed": 21}, (32, 64)),
    ("Orthogonal-square-gain", {"gain": 2.5, "seed": 22}, (48, 48)),
    ("Orthogonal-conv", {"gain": 0.5, "seed": 23}, (3, 3, 4, 8)),
]

DETERMINISTIC = [
    ("Zeros", "Zeros", {}, (3, 4), None),
    ("Zeros-int32", "Zeros", {}, (2, 5), "int32"),
    ("Ones", "Ones", {}, (2, 3, 4), None),
    ("Ones-float64", "Ones", {}, (4,), "float64"),
    ("Constant", "Constant", {"value": 3.5}, (3, 5), None),
    ("Constant-default", "Constant", {}, (2, 2), None),
    ("Constant-int", "Constant", {"value": 2}, (2, 3), "float64"),
    ("Identity", "Identity", {}, (4, 4), None),
    ("Identity-gain-wide", "Identity", {"gain": 2.5}, (3, 5), None),
    ("Identity-gain-tall", "Identity", {"gain": 0.5}, (5, 3), None),
]


def _stats(v: np.ndarray) -> dict:
    v64 = v.astype(np.float64)
    return {"mean": v64.mean(), "std": v64.std(), "min": v64.min(), "max": v64.max(), "n": int(v.size), "dtype": str(v.dtype)}


def _common(module, init, legacy_serialize):
    out = {"config": init.get_config(), "serialized": module.serialize(init)}
    if legacy_serialize is not None:
        out["serialized_legacy"] = legacy_serialize(init)
    return out


def _record(rec, module, keras3: bool, legacy_serialize=None, convert=np.asarray) -> None:
    for case, cls_name, kwargs, shapes in RANDOM:
        init = getattr(module, cls_name)(**kwargs)
        meta = _common(module, init, legacy_serialize)
        meta.update(cls=cls_name, kwargs=kwargs, stats={})
        for shape in shapes:
            fresh = getattr(module, cls_name)(**kwargs)
            meta["stats"]["x".join(map(str, shape))] = _stats(convert(fresh(shape)))
        rec.case(case, **meta)
    for case, kwargs, shape in ORTHOGONAL:
        init = module.Orthogonal(**kwargs)
        w = convert(init(shape)).astype(np.float64)
        m = w.reshape(-1, shape[-1])
        gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
        gain = kwargs.get("gain", 1.0)
        meta = _common(module, init, legacy_serialize)
        meta.update(
            cls="Orthogonal",
            kwargs=kwargs,
            shape=list(shape),
            stats=_stats(convert(module.Orthogonal(**kwargs)(shape))),
            gram_error=float(np.max(np.abs(gram - gain**2 * np.eye(gram.shape[0])))),
        )
        rec.case(case, **meta)
    for case, cls_name, kwargs, shape, dtype in DETERMINISTIC:
        init = getattr(module, cls_name)(**kwargs)
        value = convert(init(shape) if dtype is None else init(shape, dtype=dtype))
        meta = _common(module, init, legacy_serialize)
        meta.update(cls=cls_name, kwargs=kwargs, shape=list(shape), call_dtype=dtype, out_dtype=str(value.dtype))
        rec.case(case, arrays={"value": value}, **meta)


def record(rec) -> None:
    import tf_keras
    from tf_keras import initializers
    from tf_keras.src.initializers import LOCAL, populate_deserializable_objects
    from tf_keras.src.saving.legacy import serialization as legacy

    _record(rec, initializers, keras3=False, legacy_serialize=legacy.serialize_keras_object)
    populate_deserializable_objects()
    aliases = {}
    for name in sorted(LOCAL.ALL_OBJECTS):
        obj = initializers.get(name)
        aliases[name] = {"class_name": type(obj).__name__, "config": obj.get_config()}
    functional = {}
    for name in sorted(dir(tf_keras.initializers)):
        obj = getattr(tf_keras.initializers, name)
        if not name.startswith("_") and isinstance(obj, type):
            functional[name] = obj.__name__
    errors = {}
    for bad in ["nope", "GlorotUniformX"]:
        try:
            initializers.get(bad)
            errors[bad] = None
        except Exception as e:  # noqa: BLE001 - record what Keras raises
            errors[bad] = type(e).__name__
    rec.case(
        "api",
        aliases=aliases,
        functional=functional,
        errors=errors,
        get_none=initializers.get(None),
        legacy_dict=initializers.get({"class_name": "RandomNormal", "config": {"mean": 1.0, "stddev": 2.0, "seed": 3}}).get_config(),
    )


def record_keras3(rec) -> None:
    import keras
    from keras import initializers, ops

    _record(rec, initializers, keras3=True, convert=lambda t: np.asarray(ops.convert_to_numpy(t)))
    aliases = {}
    for name in sorted(keras.src.initializers.ALL_OBJECTS_DICT):
        if "stft" in name.lower():
            continue
        try:
            obj = initializers.get(name)
        except Exception:  # noqa: BLE001 - the base class cannot be built by name in Keras 3
            continue
        aliases[name] = {"class_name": type(obj).__name__, "config": obj.get_config(), "serialized": initializers.serialize(obj)}
    rec.case("api", aliases=aliases)
