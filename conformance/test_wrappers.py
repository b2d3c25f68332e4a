"""Replay of Bidirectional / TimeDistributed recorded from real Keras (conformance/cases/wrappers.py)."""

import pytest

from conformance import refs
from conformance.harness_recurrent import replay_rnn_case

K2 = refs.cases("wrappers", "keras2")
K3 = refs.cases("wrappers", "keras3")


@pytest.mark.parametrize("name,meta", K2, ids=[c[0] for c in K2])
def test_wrappers_keras2(name, meta):
    replay_rnn_case(meta, refs.arrays("wrappers", name, "keras2"), "keras2")


@pytest.mark.parametrize("name,meta", K3, ids=[c[0] for c in K3])
def test_wrappers_keras3(name, meta):
    replay_rnn_case(meta, refs.arrays("wrappers", name, "keras3"), "keras3")
