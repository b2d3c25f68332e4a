"""Replay of the spatial reshaping layers recorded from real Keras (conformance/cases/reshaping.py)."""

import pytest

from conformance import refs
from conformance.harness import replay_layer_case

K2 = refs.cases("reshaping", "keras2")
K3 = refs.cases("reshaping", "keras3")


@pytest.mark.parametrize("name,meta", K2, ids=[c[0] for c in K2])
def test_reshaping_keras2(name, meta):
    replay_layer_case(meta, refs.arrays("reshaping", name, "keras2"), "keras2")


@pytest.mark.parametrize("name,meta", K3, ids=[c[0] for c in K3])
def test_reshaping_keras3(name, meta):
    replay_layer_case(meta, refs.arrays("reshaping", name, "keras3"), "keras3")
