"""The execution plan of a functional model: its graph as a flat list of steps, built once.

``Functional._run_internal_graph`` runs a :class:`Plan` instead of walking ``_nodes_by_depth``
on every call: each node becomes a :class:`Step` that knows which tensor ids it reads and
writes, so a call costs a loop of dictionary look-ups and layer calls. The plan is rebuilt when
the graph changes (``_init_graph_network`` installs a new ``_nodes_by_depth``;
``Sequential.add``/``pop`` go through it).

For inference (``training`` falsy) a plan also holds ``lowered``: the same steps after the
inference planner (:mod:`klayers.inference`, installed with :func:`install_lowering`) replaced
chains of them by single kernel calls. The engine runs whatever it is handed and knows only
the step protocol: a SIMPLE or GENERAL step is a node, a LOWERED step has ``in_id``,
``out_id``, ``run(x)`` and ``steps`` (its own SIMPLE steps, run one by one instead when an
input mask reaches it). Without a planner, ``lowered`` is ``steps``.

``with klayers.inference.disabled(): ...`` (this module's :func:`disabled`) runs every model
through its layers, unplanned: the reference the tests compare plans with;
``with klayers.inference.unrecorded(): ...`` (:func:`unrecorded`) runs the plan on every call,
never a recording of it.

Layers declare how they lower with the small types below (:class:`FoldableOp`,
:class:`ChannelAffine`), which they return from their ``_fold_spec`` / ``_affine_spec``
methods; the planner reads those declarations and never names a layer class.
"""

from __future__ import annotations

import contextlib
import threading
from typing import (
    Any,
    Callable,
    ContextManager,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

import numpy as np

from klayers.engine.base_layer import Layer
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.node import Node, flatten
from klayers.engine.variable import Variable

_STATE = threading.local()

#: Step kinds. A LOWERED step has ``in_id``, ``out_id``, ``steps`` and ``run(x)``; a MERGED step
#: has ``in_ids`` (several inputs), ``out_id``, ``steps`` and ``run([x, ...])``. Both run their
#: ``steps`` one by one instead when an input mask arrives.
SIMPLE, GENERAL, LOWERED, MERGED = 0, 1, 2, 3


@contextlib.contextmanager
def _switched_off(flag: str) -> Iterator[None]:
    before = getattr(_STATE, flag, True)
    setattr(_STATE, flag, False)
    try:
        yield
    finally:
        setattr(_STATE, flag, before)


def enabled() -> bool:
    """Whether inference runs use the lowered steps (folded BatchNormalization / ReLU ...)."""
    return getattr(_STATE, "enabled", True)


def disabled() -> ContextManager[None]:
    """Within this block (this thread), models run every layer, unplanned."""
    return _switched_off("enabled")


def recording_enabled() -> bool:
    """Whether inference calls may be recorded and replayed (``klayers.engine.replay``)."""
    return getattr(_STATE, "recording", True)


def unrecorded() -> ContextManager[None]:
    """Within this block (this thread), every model call runs its plan step by step: no call
    is recorded or replayed."""
    return _switched_off("recording")


class Step:
    """One node of the graph.

    ``kind`` SIMPLE: one tensor argument, no keyword arguments, one output; ``in_id`` /
    ``out_id`` are the tensors' ids and ``want_mask`` says whether the layer may produce a mask
    without an input mask (it overrides ``compute_mask``). GENERAL: anything else; the node
    is run by the generic code path.
    """

    __slots__ = ("kind", "node", "layer", "in_id", "out_id", "want_mask")

    def __init__(self, node: Node, simple: bool):
        self.kind = SIMPLE if simple else GENERAL
        self.node = node
        self.layer = node.layer
        self.in_id = id(node.call_args[0]) if simple else None
        self.out_id = id(flatten(node.outputs)[0]) if simple else None
        self.want_mask = (type(node.layer).compute_mask is not Layer.compute_mask
                          and not node.layer._no_mask_from_nothing)


class Plan:
    """The steps of one graph: ``steps`` (every node) and ``lowered`` (for inference).

    ``key`` is the ``_nodes_by_depth`` object the plan was built from.
    """

    def __init__(self, key: Any, steps: List[Step], lowered: Sequence[Any], outputs: Sequence[int] = ()):
        self.key = key
        self.steps = steps
        self.lowered = lowered
        self.outputs = frozenset(outputs)
        self._liveness: Optional[Liveness] = None

    def liveness(self) -> Liveness:
        """The :class:`Liveness` of ``lowered`` (the steps inference runs), made once."""
        got = self._liveness
        if got is None:
            steps = self.lowered
            reads = [step_reads(step) for step in steps]
            writes = [step_writes(step) for step in steps]
            last: dict = {}
            for i in range(len(steps)):
                for t in reads[i]:
                    last[t] = i
                for t in writes[i]:
                    last.setdefault(t, i)
            release: List[List[int]] = [[] for _ in steps]
            for t, i in last.items():
                if t not in self.outputs:
                    release[i].append(t)
            keeps = [step.kind in (SIMPLE, GENERAL) and not arena_safe(step.layer) for step in steps]
            got = self._liveness = Liveness(
                tuple(tuple(r) for r in release), tuple(keeps), tuple(reads), tuple(writes))
        return got


class Liveness(NamedTuple):
    """Per step of a plan: ``release``, the tensor ids whose last use it is (model outputs
    excepted; a value nothing reads is released by the step that makes it); ``keeps``, whether
    the step may keep what it is given (a layer running code the arena cannot see: its inputs
    escape, and it runs with no arena); ``reads`` and ``writes``, its tensor ids."""

    release: Tuple[Tuple[int, ...], ...]
    keeps: Tuple[bool, ...]
    reads: Tuple[Tuple[int, ...], ...]
    writes: Tuple[Tuple[int, ...], ...]


def step_reads(step: Any) -> Tuple[int, ...]:
    """The tensor ids a step reads."""
    if step.kind == MERGED:
        return tuple(step.in_ids)
    if step.kind == GENERAL:
        return tuple(id(t) for t in step.node.keras_inputs)
    return (step.in_id,)


def step_writes(step: Any) -> Tuple[int, ...]:
    """The tensor ids a step writes."""
    if step.kind == GENERAL:
        return tuple(id(t) for t in flatten(step.node.outputs))
    return (step.out_id,)


def arena_safe(layer: Any) -> bool:
    """Whether a layer is klayers's own and says it keeps none of its inputs (``_arena_safe``),
    and so does every layer it tracks: a subclass defined elsewhere, a Lambda, a wrapper or
    RNN of either may keep them."""
    if not (type(layer).__module__.startswith("klayers.") and layer._arena_safe):
        return False
    return all(arena_safe(sub) for sub in layer._flatten_layers_list)


Lowering = Callable[[List[Step], Any], List[Any]]
_LOWERING: List[Lowering] = []


def install_lowering(lowering: Lowering) -> None:
    """Make ``lowering(steps, model) -> steps`` build every new plan's ``lowered`` steps (the
    inference planner installs itself here when it is imported)."""
    _LOWERING[:] = [lowering]


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
    lowered = _LOWERING[0](steps, model) if _LOWERING else steps
    return Plan(model._nodes_by_depth, steps, lowered, [id(t) for t in model.outputs])


# -- what layers declare --------------------------------------------------------------------------
class FoldableOp(NamedTuple):
    """A linear op (convolution, dense) that an inference-time per-channel affine map after it
    can be folded into: ``y = op(x) * inv + shift`` becomes ``op'(x)`` with a new kernel and bias.

    ``channel_axis``: the output axis the affine map must act on (negative counts from the end).
    ``variables``: the weights the folded arrays are made from (their versions are watched).
    ``fold(inv, shift)``: the folded ``(kernel, bias)`` in the layer's dtype (float64 maths).
    ``run(x, kernel, bias, act)``: the op on ``x`` with those arrays and epilogue ``act``.
    ``pack(kernel)``: optionally, the folded kernel in the layout the op streams fastest on
    small inputs (or None); ``run`` then takes ``packed=``, a function that returns it, called
    only when the op uses it (so it is made on first use and kept with the folded arrays).
    """

    channel_axis: int
    variables: Tuple[Variable, ...]
    fold: Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]
    run: Callable[..., np.ndarray]
    pack: Optional[Callable[[np.ndarray], Optional[np.ndarray]]] = None
    #: optionally ``prepare(x_shape, kernel, bias, act, packed=..., padding=...)``: ``run`` with
    #: everything but the input settled, as a callable of ``x`` (kept per input shape).
    prepare: Optional[Callable[..., Callable[[np.ndarray], np.ndarray]]] = None


class ChannelAffine(NamedTuple):
    """A layer that is, at inference, ``x * inv + shift`` along one axis (BatchNormalization).

    ``axes``: the axes it acts on (as configured; negative counts from the end).
    ``variables``: the weights ``inv`` and ``shift`` come from.
    ``affine()``: ``(inv, shift)`` in float64.
    """

    axes: Tuple[int, ...]
    variables: Tuple[Variable, ...]
    affine: Callable[[], Tuple[np.ndarray, np.ndarray]]
