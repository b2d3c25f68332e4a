"""Replay of the noise layers recorded from real Keras (conformance/cases/noise.py)."""

import pytest

from conformance import refs
from conformance.harness_core import replay_case

K2 = refs.cases("noise", "keras2")
K3 = refs.cases("noise", "keras3")


@pytest.mark.parametrize("name,meta", K2, ids=[c[0] for c in K2])
def test_noise_keras2(name, meta):
    replay_case(meta, refs.arrays("noise", name, "keras2"), "keras2")


@pytest.mark.parametrize("name,meta", K3, ids=[c[0] for c in K3])
def test_noise_keras3(name, meta):
    replay_case(meta, refs.arrays("noise", name, "keras3"), "keras3")
