"""Regularizer conformance cases: penalties on seeded weights, configs, serialization, names."""

from __future__ import annotations

import numpy as np

# (case name, class name, kwargs, weight shape)
CASES = [
    ("L1-default", "L1", {}, (8, 6)),
    ("L1", "L1", {"l1": 0.3}, (8, 6)),
    ("L2-default", "L2", {}, (8, 6)),
    ("L2", "L2", {"l2": 0.5}, (3, 3, 4, 5)),
    ("L1L2-default", "L1L2", {}, (8, 6)),
    ("L1L2", "L1L2", {"l1": 0.01, "l2": 0.02}, (8, 6)),
    ("L1L2-l1-only", "L1L2", {"l1": 0.1}, (8, 6)),
    ("OrthogonalRegularizer-rows", "OrthogonalRegularizer", {}, (8, 6)),
    ("OrthogonalRegularizer-rows-wide", "OrthogonalRegularizer", {"factor": 0.2, "mode": "rows"}, (6, 8)),
    ("OrthogonalRegularizer-columns", "OrthogonalRegularizer", {"factor": 0.2, "mode": "columns"}, (8, 6)),
    ("OrthogonalRegularizer-columns-wide", "OrthogonalRegularizer", {"factor": 1.0, "mode": "columns"}, (6, 8)),
]
NAMES = ["l1", "l2", "L1", "L2", "l1_l2", "L1L2", "OrthogonalRegularizer", "orthogonal_regularizer"]


def weights(shape) -> np.ndarray:
    return np.random.default_rng(sum(shape) * 31).standard_normal(shape).astype("float32")


def _record(rec, module, convert, to_tensor) -> None:
    for case, cls_name, kwargs, shape in CASES:
        reg = getattr(module, cls_name)(**kwargs)
        w = weights(shape)
        penalty = np.asarray(convert(reg(to_tensor(w))), dtype=np.float32)
        rec.case(case, arrays={"w": w, "penalty": penalty}, cls=cls_name, kwargs=kwargs,
                 config=reg.get_config(), serialized=module.serialize(reg))
    aliases = {}
    for name in NAMES:
        try:
            obj = module.get(name)
            aliases[name] = {"class_name": type(obj).__name__, "config": obj.get_config()}
        except Exception as e:  # noqa: BLE001 - record what Keras does
            aliases[name] = {"error": type(e).__name__}
    try:
        unknown = repr(module.get("nonexistent_regularizer"))
    except Exception as e:  # noqa: BLE001
        unknown = type(e).__name__
    rec.case("api", aliases=aliases, unknown=unknown, l1_l2=module.l1_l2().get_config())


def record(rec) -> None:
    import tensorflow as tf
    from tf_keras import regularizers

    _record(rec, regularizers, lambda t: t.numpy() if isinstance(t, tf.Tensor) else t, tf.constant)


def record_keras3(rec) -> None:
    from keras import ops, regularizers

    _record(rec, regularizers, ops.convert_to_numpy, ops.convert_to_tensor)
