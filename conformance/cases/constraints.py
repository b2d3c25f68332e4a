"""Constraint conformance cases: outputs on seeded weights, several axes and rates, configs,
serialization, names."""

from __future__ import annotations

import numpy as np

DENSE, CONV = (6, 5), (3, 3, 4, 5)
CASES = [
    ("MaxNorm-default", "MaxNorm", {}, DENSE),
    ("MaxNorm-axis1", "MaxNorm", {"max_value": 0.5, "axis": 1}, DENSE),
    ("MaxNorm-conv", "MaxNorm", {"max_value": 1.5, "axis": [0, 1, 2]}, CONV),
    ("MaxNorm-large", "MaxNorm", {"max_value": 100.0, "axis": 0}, DENSE),
    ("NonNeg", "NonNeg", {}, CONV),
    ("UnitNorm-default", "UnitNorm", {}, DENSE),
    ("UnitNorm-axis1", "UnitNorm", {"axis": 1}, DENSE),
    ("UnitNorm-conv", "UnitNorm", {"axis": [0, 1, 2]}, CONV),
    ("MinMaxNorm-default", "MinMaxNorm", {}, DENSE),
    ("MinMaxNorm-rate", "MinMaxNorm", {"min_value": 0.2, "max_value": 0.8, "rate": 0.5, "axis": 1}, DENSE),
    ("MinMaxNorm-conv", "MinMaxNorm", {"min_value": 1.0, "max_value": 2.0, "rate": 0.3, "axis": [0, 1, 2]}, CONV),
    ("MinMaxNorm-lift", "MinMaxNorm", {"min_value": 5.0, "max_value": 6.0, "rate": 1.0, "axis": 0}, DENSE),
]
RADIAL = [("RadialConstraint-3", (3, 3, 2, 2)), ("RadialConstraint-4", (4, 4, 2, 3)), ("RadialConstraint-5", (5, 5, 1, 2)),
          ("RadialConstraint-6", (6, 6, 1, 1))]
NAMES = ["max_norm", "MaxNorm", "maxnorm", "non_neg", "NonNeg", "nonneg", "unit_norm", "UnitNorm", "unitnorm",
         "min_max_norm", "MinMaxNorm", "radial_constraint", "RadialConstraint", "Constraint"]


def weights(shape) -> np.ndarray:
    return (np.random.default_rng(sum(shape) * 17).standard_normal(shape) * 1.3).astype("float32")


def _record(rec, module, convert, radial: bool) -> None:
    cases = CASES + ([(n, "RadialConstraint", {}, s) for n, s in RADIAL] if radial else [])
    for case, cls_name, kwargs, shape in cases:
        c = getattr(module, cls_name)(**kwargs)
        w = weights(shape)
        out = np.asarray(convert(c(convert_in(w))))  # Keras takes tensors
        rec.case(case, arrays={"w": w, "out": out}, cls=cls_name, kwargs=kwargs,
                 config=c.get_config(), serialized=module.serialize(c))
    aliases = {}
    for name in NAMES:
        try:
            obj = module.get(name)
            aliases[name] = {"class_name": type(obj).__name__, "config": obj.get_config()}
        except Exception as e:  # noqa: BLE001 - record what Keras does
            aliases[name] = {"error": type(e).__name__}
    rec.case("api", aliases=aliases)


def convert_in(w):
    try:
        import tensorflow as tf

        return tf.constant(w)
    except ImportError:  # Keras 3 on another backend
        return w


def record(rec) -> None:
    _record(rec, __import__("tf_keras").constraints, lambda t: np.asarray(t), radial=True)


def record_keras3(rec) -> None:
    from keras import constraints, ops

    _record(rec, constraints, ops.convert_to_numpy, radial=False)
