"""Hostile configs for every public layer: a clear ValueError (or a layer), never another error.

Runs over ``klayers.layers.__all__``, so each new layer family is fuzzed as soon as it lands.
"""

import inspect

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import klayers
from klayers import layers

HOSTILE = st.sampled_from([
    0, -1, -7, 10**12, 10**18, 1.5, float("nan"), float("inf"), True, None, "", "nope", "same",
    [], [0], [-1, 2], (0, 0), (3, -3), (10**9, 1), {}, {"class_name": "Nope", "config": {}},
    {"class_name": "GlorotUniform"}, "glorot_uniform", "relu", "channels_first", [[1, 2], [3]],
])

LAYER_CLASSES = sorted(
    name for name in layers.__all__
    if inspect.isclass(getattr(layers, name)) and issubclass(getattr(layers, name), klayers.Layer)
    and name not in ("Layer",)
)


def test_the_table_is_not_empty():
    assert len(LAYER_CLASSES) >= 100  # a filter gone wrong must fail, not fuzz nothing


def _params(cls):
    sig = inspect.signature(cls.__init__)
    return [p for p in list(sig.parameters)[1:]
            if sig.parameters[p].kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]


@pytest.mark.parametrize("name", LAYER_CLASSES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_config_gives_value_error_or_a_layer(name, data):
    cls = getattr(layers, name)
    params = _params(cls) + ["name", "dtype", "trainable", "bogus_key"]
    keys = data.draw(st.lists(st.sampled_from(params), min_size=1, max_size=4, unique=True))
    config = {k: data.draw(HOSTILE) for k in keys}
    try:
        layer = layers.deserialize({"class_name": name, "config": config}, safe_mode=True)
    except ValueError as e:
        assert str(e), "an error must say what is wrong"
        return
    assert "bogus_key" not in config, f"{name} accepted an unknown config key"
    assert isinstance(layer, klayers.Layer)
    layers.serialize(layer)  # whatever was accepted can be written back
