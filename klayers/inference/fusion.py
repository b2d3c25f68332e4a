"""Folding BatchNormalization (and a following rectifier) into the op before it, at inference.

Where the graph allows it, a chain

    a layer declaring a :class:`~klayers.engine.plan.FoldableOp` (Conv1D/2D/3D,
    DepthwiseConv1D/2D/3D, Dense with a linear activation)
      -> a layer declaring a :class:`~klayers.engine.plan.ChannelAffine` on the channel axis
         (BatchNormalization with its moving statistics)
      -> optionally a layer declaring an epilogue code (ReLU without slope or threshold and
         max_value None or 6, Activation with any activation that has a kernel code: relu,
         relu6, swish, sigmoid, gelu ...)

runs as one call of the op's kernel with ``kernel * inv`` and ``bias * inv + shift``
(``inv = gamma / sqrt(moving_variance + epsilon)``, ``shift = beta - moving_mean * inv``,
computed in float64 and rounded once to the layer dtype) and the activation applied by the op
(relu and relu6 in the kernel's epilogue, the others by the elementwise kernel on the op's own
output). Where the op declares a packed form (``FoldableOp.pack``: channels_last, ungrouped
convolutions), its kernel is packed once per folded kernel, on first use. A convolution with
no chain to fold (``_pack_spec()``) runs alone on its packed kernel the same way, with its
own activation. A chain is folded only when every intermediate tensor has that one consumer in the
graph and is not a model output, the dtypes agree and no layer has an activity regularizer;
each layer's declaration says whether it can take part at all (a subclass overriding its maths
declares nothing). Results differ from the unfused layers by float rounding only;
``get_weights()``, configs and the layers are untouched. The folded arrays are recomputed when
any of the weights they come from is assigned (``Variable.value``, which ``set_weights``,
``assign`` and ``load_weights`` go through); writing into a weight's array in place is not
seen. An input mask reaching a folded chain makes it run unfused.

The other lowered steps, each from the layers' declarations and with the same rule on
intermediate tensors: an element-wise merge with the Activation after it (:class:`MergeStep`),
tf-keras's hard sigmoid / hard swish node patterns (:class:`MapStep`), a ZeroPadding folded into
the "valid" convolution or max pooling after it (:class:`FusedStep` with ``pad``,
:class:`PaddedPoolStep`), a squeeze-and-excitation block (:class:`SqueezeExciteStep`), a residual
Add inside the convolution chain before it (:class:`ResidualStep`), and any other layer of
klayers's own run by its ``call`` alone (:class:`DirectStep`).

Nothing here names a layer class: the planner reads the layers' declarations
(``_fold_spec()``, ``_pack_spec()``, ``_affine_spec()``, ``_epilogue_code()``, ``_merge_spec()``,
``_pad_spec()``, ``_pad_fold()``, ``_global_pool_spec()``, ``_reshape_spec()``,
``_channel_dense_spec()``, ``_inference_identity()``, ``_arena_safe``).
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from klayers.engine.base_layer import Layer
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.layer_utils import error_naming_layer
from klayers.engine.node import flatten
from klayers.engine.plan import (
    GENERAL,
    LOWERED,
    MERGED,
    SIMPLE,
    ChannelAffine,
    FoldableOp,
    Step,
    arena_safe,
    step_reads,
)
from klayers.engine.variable import _WEIGHTS_VERSION, Variable
from klayers.ops.activation import apply_activation
from klayers.ops.common import (
    ACT_HARD_SIGMOID_K3,
    ACT_HARD_SWISH,
    ACT_LINEAR,
    ACT_RELU6,
    ALL_CODES,
    get_num_threads,
    split_activation,
)
from klayers.ops.conv import inverted_residual_call
from klayers.ops.dense import dense_call, pack_dense_kernel
from klayers.ops.pooling import MODE_AVG, global_pool

#: input signatures per step whose prepared calls are kept (more: the cache starts over)
_MAX_PREPARED = 8


class FusedStep:
    """A foldable op -> channel affine [-> rectifier] chain run as one kernel call.

    ``steps`` are the chain's own SIMPLE steps, run instead when an input mask arrives.
    """

    __slots__ = ("kind", "steps", "layer", "op", "affine", "act", "in_id", "out_id", "pad", "_seen",
                 "_global", "_kernel", "_bias", "_packed", "_calls", "_lock", "_fast")

    def __init__(self, steps: List[Step], op: FoldableOp, affine: Optional[ChannelAffine], act: Any):
        self.kind = LOWERED
        self.steps = steps
        self.layer = steps[0].layer
        self.op = op
        self.affine = affine
        self.act = act
        self.in_id = steps[0].in_id
        self.out_id = steps[-1].out_id
        # explicit zero padding of a ZeroPadding layer folded in front (its step is steps[0])
        self.pad: Optional[Tuple[Tuple[int, int], ...]] = None
        self._seen: Optional[Tuple[Tuple[int, int], ...]] = None
        self._global = -1
        self._kernel: Optional[np.ndarray] = None
        self._bias: Optional[np.ndarray] = None
        # the op's packed form of the folded kernel, made on first use: (kernel, packed)
        self._packed: Optional[Tuple[np.ndarray, Optional[np.ndarray]]] = None
        # prepared op calls (FoldableOp.prepare) per (input shape, dtype, threads), each with
        # the folded kernel it was made from: {key: (kernel, call)}
        self._calls: Dict[Any, Tuple[np.ndarray, Any]] = {}
        self._lock = threading.Lock()
        # the last prepared call with its input signature and the weights version it was
        # checked at: (shape, dtype, version, threads, call)
        self._fast: Optional[Tuple[Any, ...]] = None

    def _variables(self) -> List[Variable]:
        return list(self.op.variables) + (list(self.affine.variables) if self.affine is not None else [])

    def arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        """The folded ``(kernel, bias)``, recomputed when a weight they come from was assigned."""
        g = _WEIGHTS_VERSION[0]
        if g != self._global:
            with self._lock:
                seen = tuple((id(v), v._version) for v in self._variables())
                if seen != self._seen:
                    inv, shift = self.affine.affine() if self.affine is not None else (None, None)
                    self._kernel, self._bias = self.op.fold(inv, shift)
                    self._seen = seen
                    self._calls = {}  # every prepared call is of the current folded kernel
                self._global = g
        return self._kernel, self._bias  # type: ignore[return-value]

    def packed(self, kernel: np.ndarray) -> Optional[np.ndarray]:
        """``op.pack(kernel)`` of the folded ``kernel``, made once per folded kernel."""
        entry = self._packed
        if entry is None or entry[0] is not kernel:
            with self._lock:
                entry = self._packed
                if entry is None or entry[0] is not kernel:
                    entry = self._packed = (kernel, self.op.pack(kernel))  # type: ignore[misc]
        return entry[1]

    def prepared(self, x: np.ndarray) -> Any:
        """The op's prepared call for input ``x`` (converted; made once per input signature and
        folded kernel), or None when the op has none."""
        if self.op.prepare is None or type(x) is not np.ndarray:
            return None
        key = (x.shape, x.dtype, get_num_threads())
        if _WEIGHTS_VERSION[0] == self._global:
            # no weight anywhere assigned since the kernel was last checked: it is current
            entry = self._calls.get(key)
            if entry is not None:
                return entry[1]
        kernel, bias = self.arrays()
        entry = self._calls.get(key)
        if entry is None or entry[0] is not kernel:
            if len(self._calls) >= _MAX_PREPARED:
                self._calls = {}
            packed = (lambda: self.packed(kernel)) if self.op.pack is not None else None
            extra: Dict[str, Any] = {} if self.pad is None else {"padding": self.pad}
            entry = (kernel, self.op.prepare(x.shape, kernel, bias, self.act, packed=packed, **extra))
            self._calls[key] = entry
        return entry[1]

    def run(self, x: Any) -> np.ndarray:
        """The chain's output for input ``x`` (an array)."""
        fast = self._fast
        if (fast is not None and type(x) is np.ndarray and x.shape == fast[0] and x.dtype is fast[1]
                and _WEIGHTS_VERSION[0] == fast[2] and get_num_threads() == fast[3]):
            # the last call's input signature, no weight assigned since: its prepared call
            return fast[4](x)
        x = self.layer._convert_inputs(x)
        g = _WEIGHTS_VERSION[0]
        call = self.prepared(x)
        if call is not None:
            self._fast = (x.shape, x.dtype, g, get_num_threads(), call)
            return call(x)
        kernel, bias = self.arrays()
        extra: Dict[str, Any] = {} if self.pad is None else {"padding": self.pad}
        if self.op.pack is None:
            return self.op.run(x, kernel, bias, self.act, **extra)
        return self.op.run(x, kernel, bias, self.act, packed=lambda: self.packed(kernel), **extra)

    def fold_padding(self, pad_step: Step, pad: Tuple[Tuple[int, int], ...]) -> None:
        """Take the ZeroPadding ``pad_step`` in front of this step's first layer into it."""
        self.steps = [pad_step] + list(self.steps)
        self.in_id = pad_step.in_id
        self.pad = pad


class MergeStep:
    """An element-wise merge (Add, Multiply ...) of same-rank tensors, optionally with the
    Activation after it (any activation with a kernel code), run as one kernel call.

    ``steps`` are the merge's GENERAL step and the activation's SIMPLE step, run instead
    when an input mask arrives.
    """

    __slots__ = ("kind", "steps", "layer", "op", "run_merge", "act", "in_ids", "out_id")

    def __init__(self, steps: List[Step], run_merge: Any, act: int, in_ids: List[int], out_id: int,
                 op: str = ""):
        self.kind = MERGED
        self.steps = steps
        self.layer = steps[0].layer
        self.op = op
        self.run_merge = run_merge
        self.act = act
        self.in_ids = in_ids
        self.out_id = out_id

    def run(self, xs: List[Any]) -> np.ndarray:
        """The merge of arrays ``xs`` (in the node's order), activated."""
        return self.run_merge([self.layer._convert_inputs(x) for x in xs], self.act)


class ResidualStep:
    """A convolution chain (a :class:`FusedStep` with no activation of its own) whose output's
    only consumer is an Add of it and one other tensor, optionally with the Activation after
    the Add: ``act(conv(x) + shortcut)`` in one pass, the shortcut added in the packed GEMM's
    register tiles (ResNet's blocks). Where the convolution's prepared call has no such
    epilogue, the chain runs and the merge follows, as the layers do.

    ``steps`` are the chain's and the merge's steps, run instead when an input mask arrives.
    """

    __slots__ = ("kind", "steps", "layer", "fused", "merge", "in_ids", "out_id", "_conv_first")

    def __init__(self, fused: FusedStep, merge: MergeStep, conv_first: bool, between: Sequence[Any] = ()):
        self.kind = MERGED
        # ``between``: identity-at-inference layers (Dropout) between the chain and the Add
        self.steps = list(fused.steps) + [t for d in between for t in d.steps] + list(merge.steps)
        self.layer = fused.layer
        self.fused = fused
        self.merge = merge
        self._conv_first = conv_first
        shortcut = merge.in_ids[1] if conv_first else merge.in_ids[0]
        self.in_ids = [fused.in_id, shortcut]
        self.out_id = merge.out_id

    def run(self, xs: List[Any]) -> np.ndarray:
        """``act(conv(xs[0]) + xs[1])``."""
        x = self.layer._convert_inputs(xs[0])
        shortcut = self.merge.layer._convert_inputs(xs[1])
        call = self.fused.prepared(x)
        with_residual = getattr(call, "with_residual", None)
        if with_residual is not None:
            y = with_residual(x, shortcut, self.merge.act)
            if y is not None:
                return y
        y = self.fused.run(x)
        return self.merge.run([y, shortcut] if self._conv_first else [shortcut, y])


def _residual(steps: List[Any], protected: Any) -> List[Any]:
    """``steps`` (lowered) with each Add of two tensors, one of them made by a convolution chain
    with no activation that nothing else reads (possibly through layers that are identities at
    inference, EfficientNet's Dropout), taken into a :class:`ResidualStep`."""
    made_by = {}
    aliases: Dict[int, Any] = {}  # identity DirectSteps by output id
    readers: Dict[int, int] = {}
    for s in steps:
        for i in step_reads(s):
            readers[i] = readers.get(i, 0) + 1
        if isinstance(s, FusedStep):
            made_by[s.out_id] = s
        elif isinstance(s, DirectStep) and _declared(s.layer, "_inference_identity"):
            aliases[s.out_id] = s
    out: List[Any] = []
    taken = set()
    for s in steps:
        if isinstance(s, MergeStep) and s.op == "add" and len(s.in_ids) == 2 and s.in_ids[0] != s.in_ids[1]:
            for pos in (0, 1):
                tid, between = s.in_ids[pos], []
                while tid in aliases and readers.get(tid) == 1 and tid not in protected:
                    between.append(aliases[tid])
                    tid = aliases[tid].in_id
                fused = made_by.get(tid)
                if (fused is not None and id(fused) not in taken and readers.get(fused.out_id) == 1
                        and fused.out_id not in protected and split_activation(fused.act, ALL_CODES) == (ACT_LINEAR, None)
                        and fused.op.prepare is not None
                        and all(d.layer._dtype == fused.layer._dtype for d in between)):
                    taken.add(id(fused))
                    taken.update(id(d) for d in between)
                    out.append(ResidualStep(fused, s, pos == 0, between[::-1]))
                    break
            else:
                out.append(s)
            continue
        out.append(s)
    return [s for s in out if id(s) not in taken]


class InvertedResidualStep:
    """MobileNet's inverted residual block as one kernel: a pointwise convolution chain
    (expand; absent in blocks without one), a depthwise one (with any ZeroPadding folded in),
    optionally a :class:`SqueezeExciteStep` (EfficientNet, MobileNetV3) and a pointwise one
    (project, a :class:`FusedStep`, or a :class:`ResidualStep` whose shortcut is the block's
    input), each read by the next alone (``ops.conv.inverted_residual_call``: the expanded and
    depthwise tensors are never made whole). Where the block does not fit the kernel its
    steps run as they are.

    ``steps`` are the chains' own steps, run instead when an input mask arrives.
    """

    __slots__ = ("kind", "steps", "layer", "expand", "depthwise", "squeeze", "project", "in_id", "out_id",
                 "_calls", "_lock", "_global")

    def __init__(self, expand: Optional[FusedStep], depthwise: FusedStep, squeeze: Optional[SqueezeExciteStep],
                 project: Any):
        self.kind = LOWERED
        parts = [p for p in (expand, depthwise, squeeze, project) if p is not None]
        self.steps = [t for p in parts for t in p.steps]
        first = expand if expand is not None else depthwise
        self.layer = first.layer
        self.expand, self.depthwise, self.squeeze, self.project = expand, depthwise, squeeze, project
        self.in_id = first.in_id
        self.out_id = project.out_id
        # prepared calls per (input shape, dtype, threads): {key: (the folded arrays, call)},
        # checked against the arrays when a weight was assigned since (_WEIGHTS_VERSION)
        self._calls: Dict[Any, Tuple[Tuple[Any, ...], Any]] = {}
        self._lock = threading.Lock()
        self._global = -1

    def _project_fused(self) -> FusedStep:
        return self.project.fused if isinstance(self.project, ResidualStep) else self.project

    def prepared(self, x: np.ndarray) -> Any:
        """The block's prepared call for input ``x`` (made once per input signature and folded
        arrays), or None when the block does not fit the kernel."""
        key = (x.shape, x.dtype, get_num_threads())
        g = _WEIGHTS_VERSION[0]
        if g == self._global:
            # no weight anywhere assigned since the calls were made: they are current
            entry = self._calls.get(key)
            if entry is not None:
                return entry[1]
        e, d, se, p = self.expand, self.depthwise, self.squeeze, self._project_fused()
        ke, be = e.arrays() if e is not None else (None, None)
        (kd, bd), (kp, bp) = d.arrays(), p.arrays()
        gate = se.arrays() if se is not None else None
        arrays = (ke, kd, kp, gate)
        entry = self._calls.get(key)
        if entry is not None and all(a is b for a, b in zip(entry[0], arrays)):
            self._global = g
            return entry[1]
        with self._lock:
            if len(self._calls) >= _MAX_PREPARED:
                self._calls = {}
            residual = isinstance(self.project, ResidualStep)
            aq = self.project.merge.act if residual else split_activation(p.act, ALL_CODES)[0]
            layer = d.layer
            squeeze = None
            if se is not None:
                (k1, b1), (k2, b2) = gate
                squeeze = ((k1, b1, se._dense[0][1]), (k2, b2, se._dense[1][1]))
            call = inverted_residual_call(
                x.shape, None if e is None else (ke, be, split_activation(e.act, ALL_CODES)[0], e.packed(ke)),
                (kd, bd, split_activation(d.act, ALL_CODES)[0], layer.strides, d.pad if d.pad is not None else layer.padding),
                (kp, bp, aq, p.packed(kp)), residual, squeeze=squeeze,
                where=f"{type(self.layer).__name__} {self.layer.name} (block)")
            self._calls[key] = (arrays, call)
            self._global = g
        return call

    def run(self, x: Any) -> np.ndarray:
        """The block's output for input ``x`` (an array)."""
        x = self.layer._convert_inputs(x)
        call = self.prepared(x) if type(x) is np.ndarray else None
        if call is not None:
            return call(x)
        y = self.expand.run(x) if self.expand is not None else x
        y = self.depthwise.run(y)
        if self.squeeze is not None:
            y = self.squeeze.run(y)
        return self.project.run([y, x]) if isinstance(self.project, ResidualStep) else self.project.run(y)


def _block_stage(step: Any, stage: str, dtype: str) -> bool:
    """A :class:`FusedStep` whose layer declares this inverted-residual ``stage``, of ``dtype``,
    with an activation the kernels apply whole (a code, nothing after) and, for a pointwise
    stage, a packed kernel."""
    return (isinstance(step, FusedStep) and _declared(step.layer, "_block_stage_spec") == (stage,)
            and step.layer._dtype == dtype and (stage != "pointwise" or step.op.pack is not None)
            and split_activation(step.act, ALL_CODES)[1] is None)


def _inverted_residual(steps: List[Any], protected: Any) -> List[Any]:
    """``steps`` (lowered) with each [pointwise ->] depthwise [-> squeeze-and-excitation] ->
    pointwise chain of :class:`FusedStep` (the last possibly inside a :class:`ResidualStep`
    whose shortcut is the chain's input), every intermediate tensor read once and internal,
    taken into an :class:`InvertedResidualStep`."""
    made_by: Dict[int, Any] = {}
    readers: Dict[int, int] = {}
    for s in steps:
        for i in step_reads(s):
            readers[i] = readers.get(i, 0) + 1
        if isinstance(s, (FusedStep, SqueezeExciteStep)):
            made_by[s.out_id] = s

    def internal(step: Any) -> bool:
        return readers.get(step.out_id) == 1 and step.out_id not in protected

    taken = set()
    out: List[Any] = []
    for s in steps:
        residual = isinstance(s, ResidualStep)
        proj = s.fused if residual else s
        dtype = getattr(getattr(proj, "layer", None), "_dtype", None)
        if (isinstance(proj, FusedStep) and proj.pad is None and _block_stage(proj, "pointwise", dtype)
                and np.dtype(dtype).kind == "f"):
            se = made_by.get(proj.in_id)
            if not (isinstance(se, SqueezeExciteStep) and internal(se) and se.layer._dtype == dtype):
                se = None
            d = made_by.get(se.in_id if se is not None else proj.in_id)
            if d is not None and _block_stage(d, "depthwise", dtype) and internal(d):
                e = made_by.get(d.in_id)
                # MobileNet's pointwise -> depthwise -> pointwise -> depthwise ...: a pointwise
                # step already taken as a block's projection is not the next block's expansion
                if not (_block_stage(e, "pointwise", dtype) and e.pad is None and internal(e)
                        and id(e) not in taken):
                    e = None
                first = e if e is not None else d
                if (not residual or s.in_ids[1] == first.in_id) and (
                        residual or split_activation(proj.act, ALL_CODES)[1] is None):
                    taken.update(id(t) for t in (e, d, se, proj) if t is not None)
                    out.append(InvertedResidualStep(e, d, se, s))
                    continue
        out.append(s)
    return [s for s in out if id(s) not in taken]


class MapStep:
    """An element-wise pattern of several layers computed by one activation code (tf-keras's
    hard sigmoid ``ReLU(6)(x + 3) * (1 / 6)`` and hard swish ``x * hard_sigmoid(x)``).

    ``steps`` are the pattern's own steps, run instead when an input mask arrives.
    """

    __slots__ = ("kind", "steps", "layer", "code", "in_id", "out_id")

    def __init__(self, steps: List[Any], code: int, in_id: int, out_id: int):
        self.kind = LOWERED
        self.steps = steps
        self.layer = steps[-1].layer
        self.code = code
        self.in_id = in_id
        self.out_id = out_id

    def run(self, x: Any) -> np.ndarray:
        """The pattern's output for input ``x``."""
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(self.layer._dtype)
        return apply_activation(x, self.code)


class SqueezeExciteStep:
    """A squeeze-and-excitation block as one step: global average pooling of ``x`` [-> Reshape
    to ``(1, ..., 1, channels)``] -> a 1x1 convolution [-> activation] -> a 1x1 convolution
    [-> activation] -> Multiply with ``x``. The pooled vector goes through the two
    convolutions as Dense products over the channels (the same maths on 1x1 maps) and scales
    ``x`` in one broadcast multiply: one step where the layers take five to seven.

    ``steps`` are the block's own steps, run instead when an input mask arrives.
    """

    __slots__ = ("kind", "steps", "layer", "in_id", "out_id", "_dense", "_merge", "_x_first", "_rank",
                 "_variables", "_seen", "_global", "_arrays", "_lock", "_calls")

    def __init__(self, steps: List[Any], in_id: int, out_id: int, dense: List[Tuple[Any, int]],
                 merge: Any, x_first: bool, rank: int):
        self.kind = LOWERED
        self.steps = steps
        self.layer = steps[0].layer
        self.in_id = in_id
        self.out_id = out_id
        self._dense = dense  # [(channel dense spec, activation code)] x 2
        self._merge = merge
        self._x_first = x_first
        self._rank = rank
        self._variables = [v for spec, _ in dense for v in spec[0]]
        self._seen: Any = None
        self._global = -1
        self._arrays: Any = None
        self._lock = threading.Lock()
        # the two products' prepared calls per (batch, dtype, threads), of the current arrays
        self._calls: Dict[Any, Any] = {}

    def arrays(self) -> Any:
        """``[(kernel, bias)] x 2`` as ``(cin, cout)`` matrices, remade when a weight was assigned."""
        g = _WEIGHTS_VERSION[0]
        if g != self._global:
            with self._lock:
                seen = tuple((id(v), v._version) for v in self._variables)
                if seen != self._seen:
                    self._arrays = [spec[1]() for spec, _ in self._dense]
                    self._seen = seen
                    self._calls = {}
                self._global = g
        return self._arrays

    def run(self, x: Any) -> np.ndarray:
        """The block's output for input ``x``."""
        x = self.layer._convert_inputs(x)
        arrays = self.arrays()
        pooled = global_pool(x, "channels_last", MODE_AVG, False, where=f"{type(self.layer).__name__} {self.layer.name}")
        key = (pooled.shape, pooled.dtype, get_num_threads())
        calls = self._calls.get(key)
        if calls is None:
            if len(self._calls) >= _MAX_PREPARED:
                self._calls = {}
            (k1, b1), (k2, b2) = arrays
            pk1, pk2 = pack_dense_kernel(k1), pack_dense_kernel(k2)
            first = dense_call(pooled.shape, k1, b1, self._dense[0][1], packed=lambda: pk1)
            calls = (first, dense_call(pooled.shape[:-1] + (k1.shape[1],), k2, b2, self._dense[1][1],
                                       packed=lambda: pk2))
            self._calls[key] = calls
        gate = calls[1](calls[0](pooled))
        gate = gate.reshape((gate.shape[0],) + (1,) * self._rank + (gate.shape[-1],))
        return self._merge([x, gate] if self._x_first else [gate, x], ACT_LINEAR)


def _squeeze_excite(s: Step, sole_user: Any, simple_user: Any) -> Optional[SqueezeExciteStep]:
    """The squeeze-and-excitation pattern of EfficientNet and MobileNetV3 (both dialects) from
    its global average pooling; every intermediate has the next step as its only consumer."""
    if s.kind != SIMPLE:
        return None
    pool = _declared(s.layer, "_global_pool_spec")
    x_t = s.node.call_args[0]
    if (pool is None or pool[0] != MODE_AVG or pool[1] != "channels_last" or s.layer.activity_regularizer is not None
            or np.dtype(s.layer._dtype).kind != "f" or x_t.shape[-1] is None):
        return None
    dtype, rank, channels = s.layer._dtype, len(x_t.shape) - 2, x_t.shape[-1]
    chain: List[Any] = [s]
    cur = s.out_id
    if not pool[2]:
        nxt = simple_user(cur)
        target = _declared(nxt.layer, "_reshape_spec") if nxt is not None else None
        if target is None or tuple(target) != (1,) * rank + (channels,) or not _plain(nxt.layer, dtype):
            return None
        chain.append(nxt)
        cur = nxt.out_id
    dense: List[Tuple[Any, int]] = []
    for i in range(2):
        conv = simple_user(cur)
        spec = _declared(conv.layer, "_channel_dense_spec") if conv is not None else None
        if spec is None or not _plain(conv.layer, dtype):
            return None
        code, rest = split_activation(spec[2], ALL_CODES)
        if rest is not None:
            return None
        chain.append(conv)
        cur = conv.out_id
        after = sole_user(cur)
        if code == ACT_LINEAR and after is not None:
            act = _declared(after.layer, "_epilogue_code") if after.kind == SIMPLE else None
            if act is not None and _plain(after.layer, dtype):
                chain.append(after)
                cur, code = after.out_id, act
            elif i == 1:
                hard = _hard_sigmoid(after, sole_user)
                if hard is not None and hard.code == ACT_HARD_SIGMOID_K3:
                    chain.extend(hard.steps)
                    cur, code = hard.out_id, hard.code
        dense.append((spec, code))
    mul = sole_user(cur)
    merge = _merge_inputs(mul) if mul is not None else None
    x_id = s.in_id
    if (merge is None or merge[0] != "multiply" or len(merge[2]) != 2 or sorted(merge[2]) != sorted([x_id, cur])
            or x_id == cur or mul.layer.activity_regularizer is not None):
        return None
    chain.append(mul)
    return SqueezeExciteStep(chain, x_id, id(flatten(mul.node.outputs)[0]), dense, merge[1], merge[2][0] == x_id, rank)


class DirectStep:
    """A layer of klayers's own run by its ``call`` alone, with no mask and in inference: the
    per-call work of ``Layer._eager_call`` (input-spec checks, build, context, activity penalty,
    mask) is settled when the plan is made. Errors still name the layer.

    ``steps`` is the layer's own SIMPLE step, run instead when an input mask arrives.
    """

    __slots__ = ("kind", "steps", "layer", "call", "in_id", "out_id")

    def __init__(self, step: Step):
        self.kind = LOWERED
        self.steps = [step]
        self.layer = step.layer
        # _call_with_context passes training=None to a call that takes it
        self.call = (functools.partial(self.layer.call, training=None) if self.layer._expects("training")
                     else self.layer.call)
        self.in_id = step.in_id
        self.out_id = step.out_id

    def run(self, x: Any) -> Any:
        """The layer's output for input ``x``."""
        layer = self.layer
        try:
            return self.call(layer._convert_inputs(x))
        except (ValueError, TypeError, IndexError) as e:
            named = error_naming_layer(e, layer)
            if named is None:
                raise
            raise named from e


def _direct(s: Step) -> Optional[DirectStep]:
    """A SIMPLE step of a built klayers layer that makes no mask of its own, has no activity
    penalty and keeps nothing it is given (``arena_safe``), run by its ``call``."""
    if s.kind != SIMPLE or s.want_mask:
        return None
    layer = s.layer
    cls = type(layer)
    if (not layer.built or layer.activity_regularizer is not None or not arena_safe(layer)
            or cls._eager_call is not Layer._eager_call or cls._call_with_context is not Layer._call_with_context):
        return None
    return DirectStep(s)


def lower(steps: List[Step], model: Any) -> List[Any]:
    """``steps`` with every pattern the layers' declarations allow replaced by its lowered step
    (see the module's docstring); the rest stay as they are."""
    consumers: Dict[int, int] = {}
    users: Dict[int, List[Step]] = {}
    for s in steps:
        for i in step_reads(s):
            consumers[i] = consumers.get(i, 0) + 1
            if not users.setdefault(i, []) or users[i][-1] is not s:
                users[i].append(s)
    protected = {id(t) for t in model.outputs}

    def sole_user(tensor_id: int) -> Optional[Step]:
        """The step that alone consumes the tensor (once), when the tensor is internal."""
        if consumers.get(tensor_id) != 1 or tensor_id in protected:
            return None
        return users[tensor_id][0]

    def simple_user(tensor_id: int) -> Optional[Step]:
        """:func:`sole_user` when that is a SIMPLE step (one tensor in, one out)."""
        nxt = sole_user(tensor_id)
        return nxt if nxt is not None and nxt.kind == SIMPLE else None

    out: List[Any] = []
    absorbed = set()
    for s in steps:
        if id(s) in absorbed:
            continue
        fused = (_squeeze_excite(s, sole_user, simple_user) or _hard_sigmoid(s, sole_user)
                 or _merged(s, simple_user) or _padded(s, simple_user) or _chain(s, simple_user) or _lone(s)
                 or _direct(s))
        if fused is None:
            out.append(s)
            continue
        absorbed.update(id(c) for c in fused.steps)
        out.append(fused)
    return _inverted_residual(_residual(_fold_maps(out, protected), protected), protected)


def _fold_maps(steps: List[Any], protected: Any) -> List[Any]:
    """``steps`` (lowered) with each :class:`MapStep` whose input is made by a
    :class:`FusedStep` with no activation, read by the map alone, taken into that step as its
    activation (MobileNetV3's hard swish after a convolution's BatchNormalization: the kernel's
    epilogue maps it, no pass of its own)."""
    made_by = {s.out_id: s for s in steps if isinstance(s, FusedStep)}
    readers: Dict[int, int] = {}
    for s in steps:
        for i in step_reads(s):
            readers[i] = readers.get(i, 0) + 1
    out: List[Any] = []
    for s in steps:
        f = made_by.get(s.in_id) if isinstance(s, MapStep) else None
        if (f is not None and readers.get(f.out_id) == 1 and f.out_id not in protected
                and split_activation(f.act, ALL_CODES) == (ACT_LINEAR, None)
                and all(t.layer._dtype == f.layer._dtype for t in s.steps if np.dtype(t.layer._dtype).kind == "f")):
            f.act = s.code
            f.steps = list(f.steps) + list(s.steps)
            f.out_id = s.out_id
            continue
        out.append(s)
    return out


def _scalar(step: Step) -> Optional[Tuple[str, float]]:
    spec = getattr(step.layer, "_scalar_spec", None)
    return spec(step.node) if spec is not None and step.kind == GENERAL else None


def _hard_sigmoid(s: Step, sole_user: Any) -> Optional[MapStep]:
    """``x + 3`` -> ReLU(6) -> ``* (1 / 6)`` (each the only consumer of the one before, none a
    model output): one HARD_SIGMOID_K3 map of ``x``; and when a plain Multiply of exactly
    ``[x, that]`` (either order) follows as that result's only consumer, one HARD_SWISH map."""
    if _scalar(s) != ("add", 3.0):
        return None
    x_id = id(s.node.call_args[0])
    relu = sole_user(id(flatten(s.node.outputs)[0]))
    if relu is None or relu.kind != SIMPLE or _declared(relu.layer, "_epilogue_code") != ACT_RELU6:
        return None
    mul = sole_user(relu.out_id)
    scale = _scalar(mul) if mul is not None else None
    if scale is None or scale[0] != "multiply" or abs(scale[1] - 1 / 6) > 1e-12:
        return None
    hs_out = id(flatten(mul.node.outputs)[0])
    chain, code, out_id = [s, relu, mul], ACT_HARD_SIGMOID_K3, hs_out
    swish = sole_user(hs_out)
    merge = _merge_inputs(swish) if swish is not None else None
    if merge is not None and merge[0] == "multiply" and sorted(merge[2]) == sorted([x_id, hs_out]):
        chain.append(swish)
        code, out_id = ACT_HARD_SWISH, id(flatten(swish.node.outputs)[0])
    return MapStep(chain, code, x_id, out_id)


def _merge_inputs(s: Step) -> Optional[Tuple[str, Any, List[int]]]:
    """``(operation, run, input ids)`` of a merge layer declaring ``_merge_spec()`` called on a
    list of two or more same-rank tensors (nothing else) with one output; None otherwise."""
    if s.kind != GENERAL:
        return None
    node = s.node
    spec = _declared(s.layer, "_merge_spec")
    args = node.call_args
    if (spec is None or node.call_kwargs or len(args) != 1 or not isinstance(args[0], (list, tuple))
            or len(args[0]) < 2 or not all(isinstance(t, KerasTensor) for t in args[0])
            or len(flatten(node.outputs)) != 1 or len({len(t.shape) for t in args[0]}) != 1):
        return None
    return spec[0], spec[1], [id(t) for t in args[0]]


def _merged(s: Step, simple_user: Any) -> Optional[MergeStep]:
    """A merge (:func:`_merge_inputs`), with its one output's only consumer folded in when that
    is an Activation with a kernel code in the same dtype."""
    merge = _merge_inputs(s)
    if merge is None or s.layer.activity_regularizer is not None:
        return None
    out_id = id(flatten(s.node.outputs)[0])
    chain, act = [s], ACT_LINEAR
    nxt = simple_user(out_id)
    if nxt is not None:
        code = _declared(nxt.layer, "_epilogue_code")
        if code is not None and _plain(nxt.layer, s.layer._dtype):
            chain.append(nxt)
            act = code
            out_id = nxt.out_id
    return MergeStep(chain, merge[1], act, merge[2], out_id, merge[0])


class PaddedPoolStep:
    """A ZeroPadding layer whose only consumer is a "valid" max pooling (ResNet's stem): the
    pooling takes the zeros as explicit padding and the padded tensor is never made.

    ``steps`` are the two layers' steps, run instead when an input mask arrives.
    """

    __slots__ = ("kind", "steps", "layer", "run_pool", "pad", "in_id", "out_id")

    def __init__(self, pad_step: Step, pool_step: Step, run_pool: Any, pad: Tuple[Tuple[int, int], ...]):
        self.kind = LOWERED
        self.steps = [pad_step, pool_step]
        self.layer = pad_step.layer
        self.run_pool = run_pool
        self.pad = pad
        self.in_id = pad_step.in_id
        self.out_id = pool_step.out_id

    def run(self, x: Any) -> np.ndarray:
        """The pooling of the zero-padded ``x``."""
        return self.run_pool(self.layer._convert_inputs(x), self.pad)


def _padded(s: Step, simple_user: Any) -> Optional[Any]:
    """A ZeroPadding layer whose only consumer is a "valid" convolution (alone or heading a
    foldable chain) in the same data format: the convolution takes the padding as explicit
    zero padding, and the padded tensor is never made."""
    if s.kind != SIMPLE:
        return None
    spec = _declared(s.layer, "_pad_spec")
    nxt = simple_user(s.out_id) if spec is not None else None
    if nxt is None or s.layer._dtype != nxt.layer._dtype:
        return None
    pool = _declared(nxt.layer, "_pad_fold")
    if pool is not None and pool[0] == spec[0] and _plain(nxt.layer, s.layer._dtype):
        return PaddedPoolStep(s, nxt, pool[1], spec[1])
    fmt = getattr(nxt.layer, "_takes_padding", lambda: None)()
    if fmt != spec[0]:
        return None
    fused = _chain(nxt, simple_user)
    if fused is None:
        op = _declared(nxt.layer, "_pack_spec")
        if op is None or nxt.layer.activity_regularizer is not None or np.dtype(nxt.layer._dtype).kind != "f":
            return None
        fused = FusedStep([nxt], op, None, nxt.layer.activation)
    fused.fold_padding(s, spec[1])
    return fused


def _declared(layer: Any, method: str) -> Any:
    fn = getattr(layer, method, None)
    return fn() if fn is not None else None


def _plain(layer: Any, dtype: str) -> bool:
    """No activity penalty to collect and the same dtype as the chain's first layer."""
    return layer.activity_regularizer is None and layer._dtype == dtype


def _lone(s: Step) -> Optional[FusedStep]:
    """A convolution or Dense layer with no chain to fold, run on its packed kernel or its
    prepared call (the layer's ``_pack_spec()``) with its own activation."""
    if s.kind != SIMPLE:
        return None
    layer = s.layer
    op = _declared(layer, "_pack_spec")
    if (op is None or (op.pack is None and op.prepare is None) or layer.activity_regularizer is not None
            or np.dtype(layer._dtype).kind != "f"):
        return None
    return FusedStep([s], op, None, layer.activation)


def _chain(s: Step, simple_user: Any) -> Optional[FusedStep]:
    if s.kind != SIMPLE:
        return None
    layer = s.layer
    op = _declared(layer, "_fold_spec")
    if op is None or layer.activity_regularizer is not None or np.dtype(layer._dtype).kind != "f":
        return None
    bn_step = simple_user(s.out_id)
    if bn_step is None:
        return None
    affine = _declared(bn_step.layer, "_affine_spec")
    if affine is None or not _plain(bn_step.layer, layer._dtype):
        return None
    rank = len(flatten(s.node.outputs)[0].shape)
    axes = [int(a) + rank if int(a) < 0 else int(a) for a in affine.axes]
    if axes != [op.channel_axis % rank]:
        return None
    chain, act = [s, bn_step], ACT_LINEAR
    act_step = simple_user(bn_step.out_id)
    if act_step is not None:
        code = _declared(act_step.layer, "_epilogue_code")
        if code is not None and _plain(act_step.layer, layer._dtype):
            chain.append(act_step)
            act = code
    return FusedStep(chain, op, affine, act)
