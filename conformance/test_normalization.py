"""Replay of the normalization layers recorded from real Keras (conformance/cases/normalization.py)."""

import pytest

from conformance import refs
from conformance.harness_core import replay_case

K2 = refs.cases("normalization", "keras2")
K3 = refs.cases("normalization", "keras3")


@pytest.mark.parametrize("name,meta", K2, ids=[c[0] for c in K2])
def test_normalization_keras2(name, meta):
    replay_case(meta, refs.arrays("normalization", name, "keras2"), "keras2")


@pytest.mark.parametrize("name,meta", K3, ids=[c[0] for c in K3])
def test_normalization_keras3(name, meta):
    replay_case(meta, refs.arrays("normalization", name, "keras3"), "keras3")
