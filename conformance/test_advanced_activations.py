"""Replay of the advanced_activations layers recorded from real Keras (conformance/cases/advanced_activations.py)."""

import pytest

from conformance import refs
from conformance.harness_core import replay_case

K2 = refs.cases("advanced_activations", "keras2")
K3 = refs.cases("advanced_activations", "keras3")


@pytest.mark.parametrize("name,meta", K2, ids=[c[0] for c in K2])
def test_advanced_activations_keras2(name, meta):
    replay_case(meta, refs.arrays("advanced_activations", name, "keras2"), "keras2")


@pytest.mark.parametrize("name,meta", K3, ids=[c[0] for c in K3])
def test_advanced_activations_keras3(name, meta):
    replay_case(meta, refs.arrays("advanced_activations", name, "keras3"), "keras3")
