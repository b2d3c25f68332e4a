"""Replay of the merge layers recorded from real Keras (conformance/cases/merge.py)."""

import pytest

from conformance import refs
from conformance.harness_core import replay_case, replay_model

K2 = [c for c in refs.cases("merge", "keras2") if "model_config" not in c[1]]
K2_MODELS = [c for c in refs.cases("merge", "keras2") if "model_config" in c[1]]
K3 = refs.cases("merge", "keras3")


@pytest.mark.parametrize("name,meta", K2, ids=[c[0] for c in K2])
def test_merge_keras2(name, meta):
    replay_case(meta, refs.arrays("merge", name, "keras2"), "keras2")


@pytest.mark.parametrize("name,meta", K2_MODELS, ids=[c[0] for c in K2_MODELS])
def test_merge_models_keras2(name, meta):
    replay_model(meta, refs.arrays("merge", name, "keras2"))


@pytest.mark.parametrize("name,meta", K3, ids=[c[0] for c in K3])
def test_merge_keras3(name, meta):
    replay_case(meta, refs.arrays("merge", name, "keras3"), "keras3")
