"""The inference plan of a functional model: its graph as a flat list of steps, built once.

``Functional._run_internal_graph`` used to walk ``_nodes_by_depth`` on every call, mapping
each node's arguments, keyword arguments, input masks and outputs through nested structures.
A :class:`Plan` does that walk once per graph: each node becomes a step that knows which
tensor ids it reads and writes, so a call costs a loop of dictionary look-ups and layer calls.
The plan is rebuilt when the graph changes (``_init_graph_network`` installs a new
``_nodes_by_depth``; ``Sequential.add``/``pop`` go through it).

For inference (``training`` falsy) a second list of steps folds, where the graph allows it,

    Conv1D/2D/3D | DepthwiseConv1D/2D/3D | Dense  (linear activation)
      -> BatchNormalization (one axis: the channel axis; moving statistics)
      -> optionally ReLU (no slope, no threshold, max_value None or 6) or Activation(relu|relu6)

into one call of the convolution / dense kernel with ``kernel * inv`` and
``bias * inv + shift`` (``inv = gamma / sqrt(moving_variance + epsilon)``,
``shift = beta - moving_mean * inv``, computed in float64 and rounded once to the layer dtype)
and the rectifier as the kernel's epilogue. A chain is folded only when every intermediate
tensor has that one consumer in the graph and is not a model output, every layer of it is a
plain instance of its class (call and convolution not overridden), the dtypes agree and no
layer has an activity regularizer. Results differ from the unfused layers by float rounding
only; ``get_weights()``, configs and the layers are untouched. The folded arrays are
recomputed when any of the weights they come from is assigned (``Variable.value``, which
``set_weights``, ``assign`` and ``load_weights`` go through); writing into a weight's array
in place is not seen. An input mask reaching a folded chain makes it run unfused.

``with klayers.engine.fusion.disabled(): ...`` runs every model unfused (tests compare both).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.node import Node, flatten
from klayers.engine.variable import _WEIGHTS_VERSION, Variable

_STATE = threading.local()

#: Step kinds.
SIMPLE, GENERAL, FUSED = 0, 1, 2


def enabled() -> bool:
    """Whether inference runs fold BatchNormalization / ReLU into the preceding layer."""
    return getattr(_STATE, "enabled", True)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within this block (this thread), models run every layer unfused."""
    before = enabled()
    _STATE.enabled = False
    try:
        yield
    finally:
        _STATE.enabled = before


class Step:
    """One node of the graph.

    ``kind`` SIMPLE: one tensor argument, no keyword arguments, one output; ``in_id`` /
    ``out_id`` are the tensors' ids and ``want_mask`` says whether the layer may produce a mask
    without an input mask (it overrides ``compute_mask``). GENERAL: anything else; the node
    is run by the generic code path.
    """

    __slots__ = ("kind", "node", "layer", "in_id", "out_id", "want_mask")

    def __init__(self, node: Node, simple: bool):
        from klayers.engine.base_layer import Layer

        self.kind = SIMPLE if simple else GENERAL
        self.node = node
        self.layer = node.layer
        self.in_id = id(node.call_args[0]) if simple else None
        self.out_id = id(flatten(node.outputs)[0]) if simple else None
        self.want_mask = type(node.layer).compute_mask is not Layer.compute_mask


class FusedStep:
    """A Conv/Depthwise/Dense -> BatchNormalization [-> ReLU] chain run as one kernel call.

    ``steps`` are the chain's own SIMPLE steps, run instead when an input mask arrives.
    """

    __slots__ = ("kind", "steps", "layer", "bn", "act", "op", "in_id", "out_id", "_seen",
                 "_global", "_kernel", "_bias", "_lock")

    def __init__(self, steps: List[Step], op: str, act: int):
        self.kind = FUSED
        self.steps = steps
        self.layer = steps[0].layer
        self.bn = steps[1].layer
        self.op = op
        self.act = act
        self.in_id = steps[0].in_id
        self.out_id = steps[-1].out_id
        self._seen: Optional[Tuple[Tuple[int, int], ...]] = None
        self._global = -1
        self._kernel: Optional[np.ndarray] = None
        self._bias: Optional[np.ndarray] = None
        self._lock = threading.Lock()

    def _variables(self) -> List[Variable]:
        layer, bn = self.layer, self.bn
        kernel = layer.depthwise_kernel if self.op == "depthwise" else layer.kernel
        out = [kernel, layer.bias if layer.use_bias else None, bn.gamma, bn.beta, bn.moving_mean,
               bn.moving_variance]
        return [v for v in out if v is not None]

    def arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        """The folded ``(kernel, bias)``, recomputed when a weight they come from was assigned."""
        g = _WEIGHTS_VERSION[0]
        if g != self._global:
            with self._lock:
                seen = tuple((id(v), v._version) for v in self._variables())
                if seen != self._seen:
                    self._kernel, self._bias = self._fold()
                    self._seen = seen
                self._global = g
        return self._kernel, self._bias  # type: ignore[return-value]

    def _fold(self) -> Tuple[np.ndarray, np.ndarray]:
        layer, bn = self.layer, self.bn
        dtype = np.dtype(layer._dtype)
        f64 = np.float64
        inv = 1.0 / np.sqrt(bn.moving_variance.value.astype(f64) + f64(bn.epsilon))
        if bn.gamma is not None:
            inv = inv * bn.gamma.value.astype(f64)
        shift = -bn.moving_mean.value.astype(f64) * inv
        if bn.beta is not None:
            shift = shift + bn.beta.value.astype(f64)
        if self.op == "depthwise":
            w = layer.depthwise_kernel.value
            kernel = w.astype(f64) * inv.reshape(w.shape[-2:])
        else:
            kernel = layer.kernel.value.astype(f64) * inv
        bias = shift if not layer.use_bias else layer.bias.value.astype(f64) * inv + shift
        return np.ascontiguousarray(kernel, dtype=dtype), np.ascontiguousarray(bias, dtype=dtype)

    def run(self, x: Any) -> np.ndarray:
        """The chain's output for input ``x`` (an array)."""
        layer = self.layer
        x = layer._convert_inputs(x)
        kernel, bias = self.arrays()
        where = f"{type(layer).__name__} {layer.name}"
        conv_ops = _ops()
        if self.op == "dense":
            return conv_ops.dense(x, kernel, bias, self.act, where=where)
        if self.op == "depthwise":
            return conv_ops.depthwise_conv(x, kernel, bias, layer.strides, layer.padding,
                                           layer.dilation_rate, layer.data_format, self.act, where=where)
        return conv_ops.conv(x, kernel, bias, layer.strides, layer.padding, layer.dilation_rate,
                             layer.groups, layer.data_format, self.act, where=where)


class Plan:
    """The steps of one graph: ``steps`` (every node) and ``fused`` (with chains folded).

    ``key`` is the ``_nodes_by_depth`` object the plan was built from.
    """

    def __init__(self, key: Any, steps: List[Any], fused: List[Any]):
        self.key = key
        self.steps = steps
        self.fused = fused


_OPS: List[Any] = []


def _ops() -> Any:
    """``klayers.ops.conv`` with ``dense`` attached (imported on first use: ops import layers)."""
    if not _OPS:
        conv_ops = importlib.import_module("klayers.ops.conv")
        dense_ops = importlib.import_module("klayers.ops.dense")  # klayers.ops.dense is also a function
        ns = type("_Ops", (), {})()
        ns.conv, ns.depthwise_conv, ns.dense = conv_ops.conv, conv_ops.depthwise_conv, dense_ops.dense
        _OPS.append(ns)
    return _OPS[0]


def _is_simple(node: Node) -> bool:
    return (len(node.call_args) == 1 and isinstance(node.call_args[0], KerasTensor)
            and not node.call_kwargs and len(flatten(node.outputs)) == 1)


def build_plan(model: Any) -> Plan:
    """The plan of a graph network ``model`` (its ``_nodes_by_depth``, inputs and outputs)."""
    known = {id(t) for t in model.inputs}
    steps: List[Step] = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            if any(id(t) not in known for t in node.keras_inputs):
                continue  # a node of a shared layer that belongs to another graph
            steps.append(Step(node, _is_simple(node)))
            for t in flatten(node.outputs):
                known.add(id(t))
    return Plan(model._nodes_by_depth, steps, _fuse(steps, model))


def _fuse(steps: List[Step], model: Any) -> List[Any]:
    consumers: Dict[int, int] = {}
    for s in steps:
        for t in flatten((s.node.call_args, s.node.call_kwargs)):
            if isinstance(t, KerasTensor):
                consumers[id(t)] = consumers.get(id(t), 0) + 1
    protected = {id(t) for t in model.outputs}
    by_input: Dict[int, int] = {}
    for i, s in enumerate(steps):
        if s.kind == SIMPLE:
            by_input.setdefault(s.in_id, i)

    def only_successor(s: Step) -> Optional[Step]:
        """The SIMPLE step that alone consumes ``s``'s output, when that output is internal."""
        if consumers.get(s.out_id) != 1 or s.out_id in protected:
            return None
        j = by_input.get(s.out_id)
        return steps[j] if j is not None else None

    out: List[Any] = []
    absorbed = set()
    for s in steps:
        if id(s) in absorbed:
            continue
        chain = _chain(s, only_successor)
        if chain is None:
            out.append(s)
            continue
        fused_steps, op, act = chain
        absorbed.update(id(c) for c in fused_steps)
        out.append(FusedStep(fused_steps, op, act))
    return out


def _chain(s: Step, only_successor: Any) -> Optional[Tuple[List[Step], str, int]]:
    from klayers import activations
    from klayers.layers.activation import ReLU
    from klayers.layers.convolutional import Conv, DepthwiseConv
    from klayers.layers.core import Activation, Dense
    from klayers.layers.normalization import BatchNormalization
    conv_ops = importlib.import_module("klayers.ops.conv")
    dense_ops = importlib.import_module("klayers.ops.dense")

    if s.kind != SIMPLE:
        return None
    layer = s.layer
    cls = type(layer)
    if isinstance(layer, Dense) and cls.call is Dense.call:
        op, acts = "dense", dense_ops
        if layer.activation is not activations.linear:
            return None
    elif isinstance(layer, DepthwiseConv) and cls.call is Conv.call and cls._convolve is DepthwiseConv._convolve:
        op, acts = "depthwise", conv_ops
    elif isinstance(layer, Conv) and cls.call is Conv.call and cls._convolve is Conv._convolve:
        op, acts = "conv", conv_ops
    else:
        return None
    if op != "dense" and layer.activation is not activations.linear:
        return None
    if layer.activity_regularizer is not None or np.dtype(layer._dtype).kind != "f":
        return None
    bn_step = only_successor(s)
    if bn_step is None:
        return None
    bn = bn_step.layer
    if type(bn) is not BatchNormalization or bn.activity_regularizer is not None or bn._dtype != layer._dtype:
        return None
    rank = len(flatten(s.node.outputs)[0].shape)
    axes = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    axes = [int(a) + rank if int(a) < 0 else int(a) for a in axes]
    channel = 1 if op != "dense" and layer.data_format == "channels_first" else rank - 1
    if axes != [channel]:
        return None
    chain, act = [s, bn_step], acts.ACT_LINEAR
    act_step = only_successor(bn_step)
    if act_step is not None:
        a = act_step.layer
        code = None
        if type(a) is ReLU and a.negative_slope == 0 and a.threshold == 0:
            if a.max_value is None:
                code = acts.ACT_RELU
            elif float(a.max_value) == 6.0:
                code = acts.ACT_RELU6
        elif type(a) is Activation:
            code = {id(activations.relu): acts.ACT_RELU,
                    id(activations.relu6): acts.ACT_RELU6}.get(id(a.activation))
        if code is not None and a.activity_regularizer is None and a._dtype == layer._dtype:
            chain.append(act_step)
            act = code
    return chain, op, act
