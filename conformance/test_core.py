"""Replay of the core layers recorded from real Keras (conformance/cases/core.py)."""

import pytest

from conformance import refs
from conformance.harness import replay_layer_case
from conformance.harness_core import replay_case, replay_model

K2 = refs.cases("core", "keras2")
K3 = refs.cases("core", "keras3")
FIRST = ("dense", "activation", "lambda")  # recorded by _layer_case, replayed by replay_layer_case


def _split(cases):
    old = [c for c in cases if c[0].startswith(FIRST)]
    models = [c for c in cases if "model_config" in c[1]]
    new = [c for c in cases if c not in old and c not in models]
    return old, new, models


K2_OLD, K2_NEW, K2_MODELS = _split(K2)
K3_OLD, K3_NEW, K3_MODELS = _split(K3)


@pytest.mark.parametrize("name,meta", K2_OLD, ids=[c[0] for c in K2_OLD])
def test_core_keras2(name, meta):
    replay_layer_case(meta, refs.arrays("core", name, "keras2"), "keras2")


@pytest.mark.parametrize("name,meta", K3_OLD, ids=[c[0] for c in K3_OLD])
def test_core_keras3(name, meta):
    replay_layer_case(meta, refs.arrays("core", name, "keras3"), "keras3")


@pytest.mark.parametrize("name,meta", K2_NEW, ids=[c[0] for c in K2_NEW])
def test_core_layers_keras2(name, meta):
    replay_case(meta, refs.arrays("core", name, "keras2"), "keras2")


@pytest.mark.parametrize("name,meta", K3_NEW, ids=[c[0] for c in K3_NEW])
def test_core_layers_keras3(name, meta):
    replay_case(meta, refs.arrays("core", name, "keras3"), "keras3")


@pytest.mark.parametrize("name,meta", K2_MODELS, ids=[c[0] for c in K2_MODELS])
def test_core_models_keras2(name, meta):
    replay_model(meta, refs.arrays("core", name, "keras2"))
