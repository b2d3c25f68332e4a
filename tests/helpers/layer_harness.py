"""``run_layer_test``: the checks every public layer class passes, after Keras's
``keras/src/testing/test_case.py::run_layer_test``.

One call instantiates the class from its keyword arguments and checks, in order:

1. **config round trip**: ``get_config`` -> ``from_config`` -> the same config; the same through
   JSON text, and through ``klayers.layers.serialize`` / ``deserialize`` (same class back);
2. **weights**: after a call on random input, the weight names in order (Keras's
   ``layer/weight:0``; trainable ones first), the trainable / non-trainable counts, and
   ``get_weights`` matching them in count and shapes; then the weights are set to random values
   (so that the checks below cannot pass on default initial values);
3. **output shape**: the eager output's shape is ``compute_output_shape`` of the input's shape,
   the output has the layer's dtype (float32 by default) for float input, and a fresh layer
   called on ``klayers.Input`` tensors
   gives symbolic outputs of ``compute_output_shape`` with an unknown batch (a cell, which has no
   ``compute_output_shape``, is called with its states and checked through ``klayers.layers.RNN``);
4. **float64**: the layer built with ``dtype="float64"`` holds float64 weights and, given the
   float32 layer's weights, gives float64 outputs equal to the float32 ones within float32
   rounding;
5. **rebuilt layer**: the layer deserialized from its config, given ``set_weights`` of the
   original's weights, gives bit-identical outputs;
6. **pickling**: the unpickled layer gives bit-identical outputs and the same config.

A row of the layer table (``tests/layers/test_layer_api.py``) is one call; a check a layer cannot
take is switched off there with the reason beside it.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

import klayers
from klayers import layers as L
from klayers.serialization import custom_object_scope

Shape = Sequence[Optional[int]]
Kwargs = Union[Mapping[str, Any], Callable[[], Mapping[str, Any]]]


def _is_shape(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(v is None or isinstance(v, (int, np.integer)) for v in value)


def flat_shapes(value: Any) -> List[tuple]:
    """The shapes in a (nested) structure of shapes, in order: ``[(2, 3), [(2, 4)]]`` ->
    ``[(2, 3), (2, 4)]``."""
    if _is_shape(value):
        return [tuple(None if v is None else int(v) for v in value)]
    return [s for v in value for s in flat_shapes(v)]


def flat_outputs(value: Any) -> list:
    """The arrays / symbolic tensors of a (nested) list or tuple of outputs, in order."""
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in flat_outputs(v)]
    return [value]


def _json(config: Any) -> str:
    """Configs compare as JSON text: a tuple and a list of the same values are equal there, as
    in a saved file."""
    return json.dumps(config, sort_keys=True)


def _random_inputs(shapes: List[tuple], dtype: str, int_high: int, seed: int) -> List[np.ndarray]:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        return [rng.integers(0, int_high, size=s).astype(dtype) for s in shapes]
    return [(rng.uniform(-1.0, 1.0, size=s) * 3).astype(dtype) for s in shapes]


def _random_like(value: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """Random values for a weight: signed, except a variance (which must stay positive);
    integer weights (a count) are kept."""
    if value.dtype.kind != "f":
        return value
    low, high = (0.5, 1.5) if "variance" in name else (-1.0, 1.0)
    return rng.uniform(low, high, value.shape).astype(value.dtype)


def _assert_same_outputs(got: Any, want: Any, what: str) -> None:
    got_l, want_l = flat_outputs(got), flat_outputs(want)
    assert len(got_l) == len(want_l), f"{what}: {len(got_l)} outputs, expected {len(want_l)}"
    for i, (g, w) in enumerate(zip(got_l, want_l)):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=f"{what}, output {i}")


def _assert_shapes_match(got: List[tuple], promised: List[tuple], what: str) -> None:
    """Each shape of ``got`` has the rank of the promised one and its size wherever the promise
    is known (not None)."""
    assert len(got) == len(promised), f"{what}: {len(got)} outputs, compute_output_shape promises {promised}"
    for g, p in zip(got, promised):
        assert len(g) == len(p) and all(q is None or q == v for v, q in zip(g, p)), (
            f"{what}: shape {g}, compute_output_shape promises {p} (all: {got} vs {promised})")


def run_layer_test(
    cls: type,
    kwargs: Kwargs,
    input_shape: Union[Shape, List[Shape]],
    *,
    expected_weights: Sequence[str],
    expected_non_trainable: int = 0,
    expected_output_shape: Optional[Any] = None,
    input_dtype: str = "float32",
    int_high: int = 10,
    call_kwargs: Optional[Dict[str, Any]] = None,
    states: Optional[List[Shape]] = None,
    custom_objects: Optional[Dict[str, Any]] = None,
    symbolic: bool = True,
    float64: bool = True,
    pickles: bool = True,
    seed: int = 0,
    positional: bool = False,
) -> Any:
    """Run the checks of this module's docstring on ``cls(**kwargs)``; return the layer built
    by the eager call.

    Args:
        cls: the layer class (a public class of ``klayers.layers``).
        kwargs: its constructor's keyword arguments, or a function returning them (when they
            hold a layer instance, which each instantiation needs fresh).
        input_shape: the input's shape including the batch (a list of shapes for a layer that
            takes a list of inputs).
        expected_weights: the weight names in order, as Keras names them after
            ``klayers.backend.clear_session()`` (``["dense/kernel:0", "dense/bias:0"]``).
        expected_non_trainable: how many of them are non-trainable (they come last).
        expected_output_shape: the symbolic output shape(s) with an unknown batch, checked
            against ``compute_output_shape`` when given.
        input_dtype: ``"float32"`` or an integer dtype (indices in ``[0, int_high)``).
        call_kwargs: keyword arguments of every call (``training=False`` ...).
        states: for an RNN cell: the shapes of its states without the batch; the cell is called
            as ``cell(x, states)`` and its symbolic check runs through ``klayers.layers.RNN``.
        custom_objects: objects the config names (a Lambda's function), in scope for every
            ``from_config`` / ``deserialize`` / unpickling.
        symbolic, float64, pickles: False switches that check off (say why in the row).
        seed: the random input's seed.
        positional: several inputs are the call's positional arguments (``layer(query, value)``,
            ``compute_output_shape(query_shape, value_shape)``), not one list.

    Raises:
        AssertionError: naming the check that failed.
    """
    make_kwargs = kwargs if callable(kwargs) else (lambda: dict(kwargs))
    call_kwargs = dict(call_kwargs or {})
    multi = not _is_shape(input_shape)
    shapes = flat_shapes(input_shape)
    klayers.backend.clear_session()  # Keras's default names: "dense", not "dense_7"

    def call(layer: Any, xs: List[np.ndarray]) -> Any:
        x = xs if multi else xs[0]
        if positional:
            return layer(*xs, **call_kwargs)
        if states is None:
            return layer(x, **call_kwargs)
        batch = len(xs[0])
        zeros = [np.zeros((batch,) + tuple(s), xs[0].dtype) for s in states]
        return layer(x, zeros, **call_kwargs)

    scope = custom_objects or {}

    # 1. config round trip
    layer = cls(**make_kwargs())
    assert type(layer) is cls, f"{cls.__name__}(...) made a {type(layer).__name__}"
    config = layer.get_config()
    with custom_object_scope(scope):
        assert cls.from_config(config).get_config() == config, "get_config -> from_config changed the config"
        assert _json(cls.from_config(json.loads(_json(config))).get_config()) == _json(config), (
            "the config does not survive JSON text")
        again = L.deserialize(json.loads(_json(L.serialize(layer))))
    assert type(again) is cls, f"deserialize(serialize(...)) made a {type(again).__name__}"
    assert _json(again.get_config()) == _json(config), "serialize -> deserialize changed the config"

    # 2. weights, after one eager call
    xs = _random_inputs(shapes, input_dtype, int_high, seed)
    y = call(layer, xs)
    names = [w.name for w in layer.weights]
    assert names == list(expected_weights), f"weights {names}, expected {list(expected_weights)}"
    n_non = len(layer.non_trainable_weights)
    assert n_non == expected_non_trainable, f"{n_non} non-trainable weights, expected {expected_non_trainable}"
    assert len(layer.trainable_weights) == len(names) - expected_non_trainable
    assert [w.name for w in layer.trainable_weights + layer.non_trainable_weights] == names, (
        "weights are not the trainable ones followed by the non-trainable ones")
    values = layer.get_weights()
    assert [v.shape for v in values] == [tuple(w.shape) for w in layer.weights], "get_weights shapes differ"
    values = [_random_like(v, w.name, np.random.default_rng(seed + 1 + i))
              for i, (v, w) in enumerate(zip(values, layer.weights))]
    layer.set_weights(values)
    y = call(layer, xs)

    # 3. output shapes and dtype, eager and symbolic
    outs = flat_outputs(y if states is None else y[0])
    for out in outs:
        assert isinstance(out, np.ndarray), f"the call returned a {type(out).__name__}, not an array"
        if np.dtype(input_dtype).kind == "f":
            assert out.dtype == np.dtype(layer.dtype), f"a {layer.dtype} layer gave {out.dtype}"
    got_shapes = [o.shape for o in outs]
    if states is None:
        concrete = shapes if multi else shapes[0]

        def output_shape(shapes_: Any) -> Any:
            return layer.compute_output_shape(*shapes_) if positional else layer.compute_output_shape(shapes_)
        _assert_shapes_match(got_shapes, flat_shapes(output_shape(concrete)), "eager call")
        unknown = [(None,) + s[1:] for s in shapes]
        promised = flat_shapes(output_shape(unknown if multi else unknown[0]))
    else:
        new_states = flat_outputs(y[1])
        assert [s.shape[1:] for s in new_states] == [tuple(s) for s in flat_shapes(states)], (
            f"new state shapes {[s.shape for s in new_states]}, states {states}")
        promised = [(None,) + o.shape[1:] for o in outs]
    if expected_output_shape is not None:
        assert promised == flat_shapes(expected_output_shape), (
            f"compute_output_shape gives {promised}, expected {flat_shapes(expected_output_shape)}")
    _assert_shapes_match([(None,) + s[1:] for s in got_shapes], promised, "eager call, batch unknown")
    if symbolic:
        inputs = [klayers.Input(s[1:], dtype=input_dtype) for s in shapes]
        if positional:
            tensors = cls(**make_kwargs())(*inputs, **call_kwargs)
        elif states is None:
            tensors = cls(**make_kwargs())(inputs if multi else inputs[0], **call_kwargs)
        else:  # a cell has no compute_output_shape: it answers through the RNN layer
            seq = klayers.Input((3,) + shapes[0][1:], dtype=input_dtype)
            tensors = L.RNN(cls(**make_kwargs()))(seq)
        sym = [tuple(t.shape) for t in flat_outputs(tensors)]
        assert sym == promised, f"symbolic call gives {sym}, compute_output_shape {promised}"

    # 4. float64
    if float64:
        layer64 = cls(**{**make_kwargs(), "dtype": "float64"})
        xs64 = [x.astype("float64") if x.dtype.kind == "f" else x for x in xs]
        call(layer64, xs64)
        assert all(np.dtype(w.dtype) == np.float64 for w in layer64.weights), "a float64 layer made a non-float64 weight"
        layer64.set_weights([v.astype("float64") if v.dtype.kind == "f" else v for v in values])
        y64 = call(layer64, xs64)
        outs64 = flat_outputs(y64 if states is None else y64[0])
        assert len(outs64) == len(outs), f"the float64 layer gave {len(outs64)} outputs, the float32 one {len(outs)}"
        for o64, o32 in zip(outs64, outs):
            assert o64.dtype == np.float64, f"a float64 layer gave {o64.dtype}"
            scale = max(1.0, float(np.abs(o32).max(initial=0.0)))
            np.testing.assert_allclose(o64, o32, rtol=1e-4, atol=1e-4 * scale, err_msg="float64 vs float32 outputs")

    # 5. the layer rebuilt from its config, given the weights, gives identical outputs
    with custom_object_scope(scope):
        rebuilt = L.deserialize(L.serialize(layer))
    call(rebuilt, xs)
    rebuilt.set_weights(values)
    _assert_same_outputs(call(rebuilt, xs), y, "the rebuilt layer")

    # 6. pickling
    if pickles:
        with custom_object_scope(scope):
            restored = pickle.loads(pickle.dumps(layer))
        assert restored.get_config() == layer.get_config(), "the unpickled layer's config differs"
        _assert_same_outputs(call(restored, xs), y, "the unpickled layer")
    return layer
