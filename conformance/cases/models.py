"""Model-level cases recorded from tf-keras 2.21: Sequential and functional models (shared layers,
several inputs and outputs, a nested model used twice), with ``to_json``, weights, predictions and
the node API answers of every layer.
"""

from __future__ import annotations

import json
import zlib

import numpy as np


def _shape(s):
    if s is None:
        return None
    if hasattr(s, "as_list"):
        return s.as_list()
    if isinstance(s, (list, tuple)) and s and all(x is None or isinstance(x, int) for x in s):
        return list(s)
    if isinstance(s, (list, tuple)):
        return [_shape(x) for x in s]
    return s


def _answer(fn):
    """The value Keras returns, or the exception class it raises."""
    try:
        return {"value": _shape(fn())}
    except Exception as e:  # noqa: BLE001 - recording Keras's behaviour
        return {"error": type(e).__name__}


def _node_api(layer):
    n = len(layer._inbound_nodes)
    return {
        "n_nodes": n,
        "input_shape": _answer(lambda: layer.input_shape),
        "output_shape": _answer(lambda: layer.output_shape),
        "input_shape_at": [_answer(lambda i=i: layer.get_input_shape_at(i)) for i in range(n)],
        "output_shape_at": [_answer(lambda i=i: layer.get_output_shape_at(i)) for i in range(n)],
        "out_of_range": _answer(lambda: layer.get_output_at(n)),
    }


def _record_model(rec, keras, name, model, inputs):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    weights = [(rng.standard_normal(w.shape) * 0.5).astype("float32") for w in model.weights]
    model.set_weights(weights)
    outputs = model.predict(inputs, verbose=0)
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    flat_in = inputs if isinstance(inputs, list) else [inputs]
    flat_out = outputs if isinstance(outputs, list) else [outputs]
    for i, x in enumerate(flat_in):
        arrays[f"x{i}"] = x
    for i, y in enumerate(flat_out):
        arrays[f"y{i}"] = y
    rec.case(
        name,
        arrays=arrays,
        json=json.loads(model.to_json()),
        n_inputs=len(flat_in),
        n_outputs=len(flat_out),
        outputs_are_list=isinstance(outputs, list),
        layer_names=[layer.name for layer in model.layers],
        weight_shapes=[list(w.shape) for w in model.weights],
        weight_names=[w.name for w in model.weights],
        count_params=model.count_params(),
        model_input_shape=_shape(model.input_shape),
        model_output_shape=_shape(model.output_shape),
        node_api={layer.name: _node_api(layer) for layer in model.layers},
    )


def record(rec):
    import tf_keras as keras

    L = keras.layers
    rng = np.random.default_rng(7)

    # 1. Sequential MLP declared with input_shape.
    keras.backend.clear_session()
    m = keras.Sequential([L.Dense(8, input_shape=(4,), activation="relu"), L.Dense(6, activation="tanh"), L.Dense(3, activation="softmax")])
    _record_model(rec, keras, "sequential_mlp", m, rng.standard_normal((37, 4)).astype("float32"))

    # 2. Sequential built by add(), rank-3 input, no activation on the last layer.
    keras.backend.clear_session()
    m = keras.Sequential(name="stack")
    m.add(keras.Input((5, 3)))
    m.add(L.Dense(4, activation="elu"))
    m.add(L.Activation("hard_sigmoid"))
    m.add(L.Dense(2, use_bias=False))
    _record_model(rec, keras, "sequential_add_rank3", m, rng.standard_normal((9, 5, 3)).astype("float32"))

    # 3. Functional: two inputs, a shared Dense on both, three outputs.
    keras.backend.clear_session()
    a = keras.Input((6,), name="left")
    b = keras.Input((6,), name="right")
    shared = L.Dense(5, activation="relu", name="shared")
    sa, sb = shared(a), shared(b)
    head = L.Dense(2, name="head")
    out1 = head(sa)
    out2 = head(sb)
    out3 = L.Dense(3, activation="sigmoid", name="tail")(sb)
    m = keras.Model([a, b], [out1, out2, out3], name="siamese")
    xs = [rng.standard_normal((11, 6)).astype("float32"), rng.standard_normal((11, 6)).astype("float32")]
    _record_model(rec, keras, "functional_shared_multi_io", m, xs)

    # 4. A layer shared on inputs of different shapes: input_shape is ill-defined.
    keras.backend.clear_session()
    x1 = keras.Input((4,))
    x2 = keras.Input((3,))
    act = L.Activation("relu", name="shared_act")
    y1 = L.Dense(2)(act(x1))
    y2 = L.Dense(2)(act(x2))
    m = keras.Model([x1, x2], [y1, y2])
    xs = [rng.standard_normal((3, 4)).astype("float32"), rng.standard_normal((3, 3)).astype("float32")]
    _record_model(rec, keras, "functional_shared_different_shapes", m, xs)

    # 5. A nested functional model used twice inside another model.
    keras.backend.clear_session()
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, L.Dense(3, activation="tanh")(L.Dense(5, activation="relu")(inner_in)), name="encoder")
    p = keras.Input((4,))
    q = keras.Input((4,))
    ep, eq = inner(p), inner(q)
    m = keras.Model([p, q], [L.Dense(1, name="score")(ep), eq], name="outer")
    xs = [rng.standard_normal((8, 4)).astype("float32"), rng.standard_normal((8, 4)).astype("float32")]
    _record_model(rec, keras, "functional_nested_shared_model", m, xs)

    # 6. A chain where the same layer is applied twice in a row.
    keras.backend.clear_session()
    x = keras.Input((4,))
    d = L.Dense(4, activation="softsign", name="loop")
    y = d(d(d(x)))
    m = keras.Model(x, [y], name="recurrent_chain")
    _record_model(rec, keras, "functional_layer_applied_thrice", m, rng.standard_normal((5, 4)).astype("float32"))

    # 7. A nested Sequential inside a functional model, batch larger than predict's 32.
    keras.backend.clear_session()
    seq = keras.Sequential([L.Dense(6, activation="relu", input_shape=(3,)), L.Dense(2)], name="inner_seq")
    i = keras.Input((3,))
    m = keras.Model(i, L.Activation("softmax")(seq(i)))
    _record_model(rec, keras, "functional_with_nested_sequential", m, rng.standard_normal((70, 3)).astype("float32"))
