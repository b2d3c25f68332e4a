"""Every layer's output of a Keras model file, computed by the Keras that wrote it.

    python keras_side.py MODEL INPUTS.npz OUT.npz DIALECT UNSAFE [MODE]

runs in a Python that has tf-keras (``DIALECT`` keras2) or Keras 3 (keras3); ``klayers verify
--per-layer`` starts it there, and ``conformance/record.py`` runs :func:`layer_outputs` to record
the references the replay compares with. It imports NumPy and that Keras only (never klayers).

``INPUTS.npz`` holds the model's inputs ``x0``, ``x1`` ...; ``OUT.npz`` gets one array ``t<i>``
per output of every layer node of the model's graph (shared layers: every node; multi-output
layers: every output, flattened as ``tf.nest`` does), the model's outputs ``y<i>``, and
``index``, a JSON list of ``{"layer", "node", "output", "class"}`` naming each ``t<i>``.
``MODE`` ``model`` writes the model's outputs only (``klayers verify`` without ``--per-layer``).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Tuple

import numpy as np


def _flat(x: Any) -> List[Any]:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _flat(item)]
    if isinstance(x, dict):
        return [leaf for key in sorted(x) for leaf in _flat(x[key])]
    return [x]


def load(path: str, dialect: str, unsafe: bool) -> Tuple[Any, Any]:
    """``(keras module, model)`` for the file, loaded without compiling."""
    if dialect == "keras3":
        import keras

        return keras, keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    import tf_keras as keras

    return keras, keras.models.load_model(path, compile=False, safe_mode=not unsafe)


def node_numbers(nodes: List[Any], layer_of: Any) -> Dict[int, int]:
    """``{id(node): its number}``: a node's position among its layer's nodes that are in
    ``nodes`` (the graph's), in the layer's order. Keras renumbers a layer's nodes this way when
    it writes a config, and a layer may hold nodes of other graphs (Keras 3 rebuilds a
    Sequential's graph with new nodes), so this is what both sides agree on."""
    mine = {id(node) for node in nodes}
    numbers: Dict[int, int] = {}
    for node in nodes:
        if id(node) not in numbers:
            kept = [n for n in layer_of(node)._inbound_nodes if id(n) in mine]
            numbers.update({id(n): i for i, n in enumerate(kept)})
    return numbers


def layer_outputs(keras: Any, model: Any, inputs: List[np.ndarray]) -> Dict[str, Any]:
    """Run ``model`` on ``inputs`` once, exposing every layer node's outputs.

    Returns ``{"index": [{"layer", "node", "output", "class"}, ...], "outputs": [arrays in the
    index's order], "model_outputs": [the model's outputs]}``. A node's number is its position
    among the layer's nodes in this graph (:func:`node_numbers`), as klayers numbers them.
    """
    graph = getattr(model, "_functional", None) or model  # Keras 3's Sequential holds a Functional
    nodes = [node for depth in sorted(graph._nodes_by_depth, reverse=True) for node in graph._nodes_by_depth[depth]]
    numbers = node_numbers(nodes, lambda node: getattr(node, "operation", None) or node.layer)
    index: List[Dict[str, Any]] = []
    tensors: List[Any] = []
    for node in nodes:
        if node.is_input:
            continue
        layer = getattr(node, "operation", None) or node.layer
        for j, t in enumerate(_flat(node.output_tensors)):
            index.append({"layer": layer.name, "node": numbers[id(node)], "output": j,
                          "class": type(layer).__name__})
            tensors.append(t)
    probe = keras.Model(graph.inputs, tensors)
    x = inputs if len(inputs) > 1 else inputs[0]
    values = probe.predict(x, verbose=0)
    values = values if isinstance(values, (list, tuple)) else [values]
    model_outputs = model.predict(x, verbose=0)
    return {"index": index, "outputs": [np.asarray(v) for v in values],
            "model_outputs": [np.asarray(v) for v in _flat(model_outputs)]}


def main(argv: List[str]) -> None:
    path, inputs_path, out_path, dialect, unsafe = argv[:5]
    mode = argv[5] if len(argv) > 5 else "layers"
    keras, model = load(path, dialect, unsafe == "1")
    with np.load(inputs_path) as z:
        xs = [z[f"x{i}"] for i in range(len(z.files))]
    if mode == "model":
        ys = _flat(model.predict(xs if len(xs) > 1 else xs[0], verbose=0))
        got = {"index": [], "outputs": [], "model_outputs": [np.asarray(y) for y in ys]}
    else:
        got = layer_outputs(keras, model, xs)
    arrays = {f"t{i}": a for i, a in enumerate(got["outputs"])}
    arrays.update({f"y{i}": a for i, a in enumerate(got["model_outputs"])})
    np.savez(out_path, index=np.array(json.dumps(got["index"])), **arrays)
    print(json.dumps({"keras": keras.__version__}))


if __name__ == "__main__":
    main(sys.argv[1:])
