"""Every public layer, activation, initializer, regularizer and constraint of klayers is exercised
by at least one case that the replay table (``conformance/table.py``) actually replays: the same
cases ``test_replay.py`` collects and runs, less those expected to fail. A name that appears
somewhere in the recorded JSON does not count; a new public object without a replayed case fails
here."""

from __future__ import annotations

import inspect
from collections import Counter
from typing import Any, List, Optional

import pytest

import klayers
from conformance import table

API_ONLY = {"get", "serialize", "deserialize"}


def _expected_to_fail(replay: table.Replay) -> bool:
    return any(getattr(mark, "name", None) == "xfail" for mark in replay.marks)


REPLAYED = [r for r in table.replays() if not _expected_to_fail(r)]
#: ``(kind, name) -> number of replayed cases that exercise it``
COUNTS = Counter(x for r in REPLAYED for x in r.exercises)


def _public(module: Any, base: Optional[type] = None) -> List[str]:
    names = []
    for name in module.__all__:
        obj = getattr(module, name)
        if name in API_ONLY:
            continue
        if base is not None and inspect.isclass(obj) and obj is base:
            continue  # the abstract base class
        names.append(name)
    return names


def _built_class(obj: Any) -> Optional[str]:
    """The class name an object of the vocabulary modules stands for: a class itself, or what an
    alias (a function or lower-case name) builds."""
    if inspect.isclass(obj):
        return obj.__name__
    try:
        built = obj() if callable(obj) else obj
    except TypeError:
        built = obj
    return None if inspect.isfunction(built) else type(built).__name__


LAYERS = [n for n in klayers.layers.__all__ if inspect.isclass(getattr(klayers.layers, n))
          and issubclass(getattr(klayers.layers, n), klayers.Layer) and n != "Layer"]
OBJECTS = [
    pytest.param(kind, name, id=f"{kind}-{name}")
    for kind, module, base in (
        ("initializer", klayers.initializers, klayers.initializers.Initializer),
        ("regularizer", klayers.regularizers, klayers.regularizers.Regularizer),
        ("constraint", klayers.constraints, klayers.constraints.Constraint),
    )
    for name in _public(module, base)
]
MODULES = {"initializer": klayers.initializers, "regularizer": klayers.regularizers, "constraint": klayers.constraints}


def test_the_replayed_cases_exercise_objects() -> None:
    assert len(REPLAYED) > 1000 and len(COUNTS) > 100, (len(REPLAYED), len(COUNTS))


@pytest.mark.parametrize("name", LAYERS)
def test_layer_is_replayed(name: str) -> None:
    assert COUNTS[("layer", name)] >= 1, f"layer {name}: no replayed case recorded from Keras exercises it"


@pytest.mark.parametrize("name", _public(klayers.activations))
def test_activation_is_replayed(name: str) -> None:
    assert COUNTS[("activation", name)] >= 1, f"activation {name}: no replayed case recorded from Keras exercises it"


@pytest.mark.parametrize("kind,name", OBJECTS)
def test_object_is_replayed(kind: str, name: str) -> None:
    cls = _built_class(getattr(MODULES[kind], name))
    assert cls is not None and COUNTS[(kind, cls)] >= 1, (
        f"{kind} {name} ({cls}): no replayed case recorded from Keras exercises it")
