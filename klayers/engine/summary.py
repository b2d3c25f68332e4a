"""``Model.summary()``: Keras 2's table of layers, output shapes, parameter counts."""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

import numpy as np


def _count(weights) -> int:
    return int(sum(int(np.prod(w.shape)) for w in weights))


def _fmt_shape(layer) -> str:
    try:
        shape = layer.output_shape
    except (AttributeError, RuntimeError):
        return "multiple"
    return str(shape).replace("'", "")


def print_summary(model, line_length: Optional[int] = None, positions: Optional[Sequence[float]] = None,
                  print_fn: Optional[Callable[[str], Any]] = None, expand_nested: bool = False,
                  show_trainable: bool = False) -> None:
    """Print the summary of ``model`` with ``print_fn`` (default ``print``)."""
    print_fn = print_fn or print
    # a Sequential (it keeps its layers in _seq_layers) or a subclassed model: the short table
    sequential_like = hasattr(model, "_seq_layers") or not getattr(model, "_is_graph_network", False)
    line_length = line_length or (65 if sequential_like else 98)
    positions = list(positions or ([0.45, 0.85, 1.0] if sequential_like else [0.33, 0.55, 0.67, 1.0]))
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    headers = ["Layer (type)", "Output Shape", "Param #"] if sequential_like else ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    if show_trainable:
        positions.append(line_length + 10)
        headers.append("Trainable")
        line_length += 10

    def row(fields: List[str]) -> None:
        line = ""
        for i, f in enumerate(fields):
            if i > 0:
                line = line[:-1] + " "
            line += str(f)
            line = line[: positions[i]]
            line += " " * (positions[i] - len(line))
        print_fn(line)

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    row(headers)
    print_fn("=" * line_length)
    layers = model.layers
    for i, layer in enumerate(layers):
        name = f"{layer.name} ({type(layer).__name__})"
        params = layer.count_params() if layer.built else 0
        fields = [name, _fmt_shape(layer), params]
        if not sequential_like:
            connections: List[str] = []
            for node_index, node in enumerate(layer._inbound_nodes):
                key = f"{layer.name}_ib-{node_index}"
                if key not in model._network_nodes:
                    continue
                for inbound_layer, ni, ti, _ in node.iterate_inbound():
                    connections.append(f"{inbound_layer.name}[{ni}][{ti}]")
            fields.append(", ".join(connections))
        if show_trainable:
            fields.append("Y" if layer.trainable else "N")
        row(fields)
        print_fn(("=" if i == len(layers) - 1 else "_") * line_length)
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    print_fn(f"Total params: {trainable + non_trainable:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {non_trainable:,}")
    print_fn("_" * line_length)
