"""Every public layer, activation, initializer, regularizer and constraint of klayers has at
least one reference case recorded from real Keras. A new public object without one fails here."""

import inspect
import json
import os

import pytest

import klayers
from conformance import refs

API_ONLY = {"get", "serialize", "deserialize"}


def _all_metas():
    for dialect in ("keras2", "keras3"):
        folder = os.path.join(refs.REFS, dialect)
        for fname in sorted(os.listdir(folder)):
            if fname.endswith(".json"):
                with open(os.path.join(folder, fname)) as f:
                    yield from json.load(f)["cases"].values()


def _class_names(obj, out):
    if isinstance(obj, dict):
        if isinstance(obj.get("class_name"), str):
            out.add(obj["class_name"])
        for v in obj.values():
            _class_names(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _class_names(v, out)
    return out


RECORDED_CLASSES = set()
RECORDED_FNS = set()
RECORDED_CLS = set()
for _meta in _all_metas():
    _class_names(_meta, RECORDED_CLASSES)
    if "fn" in _meta:
        RECORDED_FNS.add(_meta["fn"])
    if "cls" in _meta:
        RECORDED_CLS.add(_meta["cls"])


def _public(module, base=None):
    names = []
    for name in module.__all__:
        obj = getattr(module, name)
        if name in API_ONLY:
            continue
        if base is not None and inspect.isclass(obj) and obj is base:
            continue  # the abstract base class
        names.append(name)
    return names


@pytest.mark.parametrize("name", [n for n in klayers.layers.__all__ if inspect.isclass(getattr(klayers.layers, n))
                                  and issubclass(getattr(klayers.layers, n), klayers.Layer)
                                  and n != "Layer"])
def test_layer_has_reference_case(name):
    assert name in RECORDED_CLASSES, f"layer {name} has no case recorded from Keras"


@pytest.mark.parametrize("name", _public(klayers.activations))
def test_activation_has_reference_case(name):
    assert name in RECORDED_FNS, f"activation {name} has no case recorded from Keras"


@pytest.mark.parametrize(
    "module,base",
    [
        (klayers.initializers, klayers.initializers.Initializer),
        (klayers.regularizers, klayers.regularizers.Regularizer),
        (klayers.constraints, klayers.constraints.Constraint),
    ],
    ids=["initializers", "regularizers", "constraints"],
)
def test_objects_have_reference_cases(module, base):
    missing = []
    for name in _public(module, base):
        obj = getattr(module, name)
        if inspect.isclass(obj):
            covered = obj.__name__ in RECORDED_CLS
        else:  # an alias (function or lower-case name): covered when what it builds is covered
            try:
                built = obj() if callable(obj) and not inspect.isclass(obj) else obj
            except TypeError:
                built = obj
            cls = type(built) if not inspect.isfunction(built) else None
            covered = cls is not None and cls.__name__ in RECORDED_CLS
        if not covered:
            missing.append(name)
    assert not missing, f"{module.__name__}: no Keras reference for {missing}"
