"""Model: a graph of layer calls (Keras 2's Functional), run in topological order."""

from __future__ import annotations

import collections
import json
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from klayers.backend import arena as arena_lib
from klayers.backend import tape as tape_lib
from klayers.engine import hooks
from klayers.engine import plan as plan_lib
from klayers.engine import replay as replay_lib
from klayers.engine.base_layer import Layer
from klayers.engine.functional_config import reconstruct_from_config
from klayers.engine.graph import map_graph_network, node_key, should_skip_first_node
from klayers.engine.input_layer import InputLayer
from klayers.engine.keras_tensor import KerasTensor
from klayers.engine.layer_utils import shape_to_list, unique_object_name
from klayers.engine.node import Node, flatten, map_structure, pack_as
from klayers.engine.summary import print_summary
from klayers.serialization import json_default, register_builtins, serialize_keras_object

#: arenas a model keeps for concurrent calls (more callers at once get a fresh one each)
_MAX_ARENAS = 4
_ARENAS_LOCK = threading.Lock()


class _Progbar:
    """A one-line progress bar; with ``verbose="auto"`` it appears only on runs longer than 1 s."""

    def __init__(self, total: int, verbose: Any):
        self.total = total
        self.mode = 1 if verbose == "auto" else int(verbose)
        self.auto = verbose == "auto"
        self.start = time.perf_counter()
        self.shown = False

    def update(self, step: int) -> None:
        if self.mode == 0:
            return
        elapsed = time.perf_counter() - self.start
        if self.auto and not self.shown and elapsed < 1.0 and step < self.total:
            return
        if self.auto and not self.shown and step >= self.total and elapsed < 1.0:
            return
        self.shown = True
        width = 30
        done = int(width * step / max(self.total, 1))
        bar = "=" * max(done - 1, 0) + (">" if step < self.total else "=") + "." * (width - done)
        end = "\n" if step >= self.total else ""
        sys.stdout.write(f"\r{step}/{self.total} [{bar}] - {elapsed:.0f}s{end}")
        sys.stdout.flush()


class Functional(Layer):
    """A model: ``Model(inputs, outputs)`` over symbolic tensors from ``Input``.

    Multiple inputs and outputs (lists or dicts), shared layers and nested models work as in
    Keras 2. Called on arrays it runs its graph; called on symbolic tensors it becomes a node of
    a bigger graph. Subclassing ``Model`` without ``inputs``/``outputs`` gives a model whose
    ``call`` the user writes.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        inputs = kwargs.pop("inputs", args[0] if len(args) > 0 else None)
        outputs = kwargs.pop("outputs", args[1] if len(args) > 1 else None)
        name = kwargs.pop("name", None)
        trainable = kwargs.pop("trainable", True)
        if name is None and type(self) is Functional:
            name = unique_object_name("model")
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._is_graph_network = False
        self._layers_list: List[Layer] = []
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("A functional Model needs both `inputs` and `outputs`.")
            self._init_graph_network(inputs, outputs)

    # -- graph ----------------------------------------------------------------------------
    def _init_graph_network(self, inputs: Any, outputs: Any) -> None:
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(outputs, tuple):
            outputs = list(outputs)
        # A single tensor given in a list is the model's one input / output (as tf-keras).
        if isinstance(inputs, list) and len(inputs) == 1:
            inputs = inputs[0]
        if isinstance(outputs, list) and len(outputs) == 1:
            outputs = outputs[0]
        self._nested_inputs = inputs
        self._nested_outputs = outputs
        self.inputs = flatten(inputs)
        self.outputs = flatten(outputs)
        for t in self.inputs + self.outputs:
            if not isinstance(t, KerasTensor):
                raise ValueError(f"Model {self.name}: inputs and outputs must be symbolic tensors from Input/layers. Received: {t!r}")
        for t in self.inputs:
            if not isinstance(t._keras_history.layer, InputLayer) or not t.node.is_input:
                raise ValueError(
                    f"Model {self.name}: model inputs must come from `klayers.Input` (thus holding past "
                    f"layer metadata). Received: {t!r}"
                )
        self._input_layers = [t._keras_history.layer for t in self.inputs]
        self._input_coordinates = [(t._keras_history.layer, t._keras_history.node_index, t._keras_history.tensor_index) for t in self.inputs]
        self._output_layers = [t._keras_history.layer for t in self.outputs]
        self._output_coordinates = [(t._keras_history.layer, t._keras_history.node_index, t._keras_history.tensor_index) for t in self.outputs]
        nodes, by_depth, layers, layers_by_depth = map_graph_network(self.inputs, self.outputs)
        self._network_nodes = nodes
        self._nodes_by_depth = by_depth
        self._layers_list = layers
        self._layers_by_depth = layers_by_depth
        self._is_graph_network = True
        self.input_names = [layer.name for layer in self._input_layers]
        names, seen = [], collections.Counter()
        for layer in self._output_layers:
            n = layer.name
            seen[n] += 1
            names.append(n if seen[n] == 1 else f"{n}_{seen[n] - 1}")
        self.output_names = names
        self.built = True
        self._build_input_shape = map_structure(lambda t: t.shape, inputs)

    def _tracked_layers(self) -> List[Layer]:
        if self._is_graph_network:
            return list(self._layers_list)
        return list(self._self_tracked_layers)

    @property
    def _flatten_layers_list(self) -> List[Layer]:
        return self._tracked_layers()

    @property
    def layers(self) -> List[Layer]:
        """The model's layers in Keras's order (a functional model lists its InputLayers)."""
        return self._tracked_layers()

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        """A layer by name or by index (Keras 2 semantics: index counts ``self.layers``).

        Raises:
            ValueError: neither or both given, index out of range, unknown name.
        """
        if index is not None and name is not None:
            raise ValueError(f"Provide only a layer name or a layer index. Received: index={index}, name={name}.")
        layers = self.layers
        if index is not None:
            if len(layers) <= index:
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only has {len(layers)} layers.")
            return layers[index]
        if name is not None:
            for layer in layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in layers]}.")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    # -- weights: per layer, each layer trainable-first (tf-keras Model.weights) ----------
    @property
    def weights(self) -> List[Any]:
        out: List[Any] = []
        for layer in self._tracked_layers():
            out.extend(layer.weights)
        out.extend(self._trainable_weights + self._non_trainable_weights)
        return self._dedup(out)

    @property
    def trainable_weights(self) -> List[Any]:
        if not self.trainable:
            return []
        out: List[Any] = []
        for layer in self._tracked_layers():
            out.extend(layer.trainable_weights)
        return self._dedup(out + self._trainable_weights)

    @property
    def non_trainable_weights(self) -> List[Any]:
        out: List[Any] = []
        for layer in self._tracked_layers():
            out.extend(layer.weights if not self.trainable else layer.non_trainable_weights)
        return self._dedup(out + self._non_trainable_weights)

    @property
    def losses(self) -> List[float]:
        out: List[float] = []
        for layer in self._tracked_layers():
            out.extend(layer.losses)
        out.extend(self._activity_losses)
        return out

    @property
    def state_updates(self) -> List[Any]:
        return []

    # -- the node API of a model: its own inputs/outputs -----------------------------------
    @property
    def input(self) -> Any:
        if self._is_graph_network:
            return self._nested_inputs
        return super().input

    @property
    def output(self) -> Any:
        if self._is_graph_network:
            return self._nested_outputs
        return super().output

    @property
    def input_shape(self) -> Any:
        if self._is_graph_network:
            shapes = [t.shape for t in self.inputs]
            return shapes[0] if len(shapes) == 1 else shapes
        return super().input_shape

    @property
    def output_shape(self) -> Any:
        if self._is_graph_network:
            shapes = [t.shape for t in self.outputs]
            nested = self._nested_outputs
            if isinstance(nested, list) and any(isinstance(o, (list, tuple)) for o in nested):
                return pack_as(nested, shapes)  # tf-keras nests as the outputs are nested
            return shapes[0] if len(shapes) == 1 else shapes
        return super().output_shape

    @property
    def input_spec(self) -> Any:
        return None

    @input_spec.setter
    def input_spec(self, value: Any) -> None:
        pass

    # -- running --------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        if self._is_graph_network:
            self.built = True
            return
        super().build(input_shape)

    def _conform_inputs(self, inputs: Any) -> List[Optional[np.ndarray]]:
        """Flatten user inputs (array, list, dict by input name) into the model's input order,
        cast to each Input's dtype, checked against each Input's shape."""
        n = len(self.inputs)
        if isinstance(inputs, dict):
            missing = [name for name in self.input_names if name not in inputs]
            if missing:
                raise ValueError(f'Model "{self.name}": missing input(s) {missing}; inputs are named {self.input_names}.')
            flat = [inputs[name] for name in self.input_names]
        elif isinstance(self._nested_inputs, dict) and isinstance(inputs, dict):
            flat = flatten(inputs)
        else:
            flat = flatten(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(flat) != n:
            raise ValueError(
                f'Layer "{self.name}" expects {n} input(s), but it received {len(flat)} input tensors. '
                f"Inputs received: {[getattr(x, 'shape', type(x).__name__) for x in flat]}"
            )
        out = []
        for i, (x, ref) in enumerate(zip(flat, self.inputs)):
            if x is None:
                raise ValueError(f'Model "{self.name}": input {i} ({self.input_names[i]}) is None.')
            x = np.asarray(x)
            if x.dtype.kind not in "biuf":
                raise TypeError(
                    f'Model "{self.name}": input {i} ({self.input_names[i]}) has dtype {x.dtype}; '
                    "expected a numeric (integer, boolean or floating) array."
                )
            want = np.dtype(ref.dtype)
            if x.dtype != want:
                x = x.astype(want)
            if x.ndim == len(ref.shape) - 1 and ref.shape[-1] == 1:
                x = x[..., None]
            # tf-keras's model input_spec drops the batch size (shape_with_no_batch_size): a model
            # whose Input fixes it (stateful RNNs) still predicts several batches in one call.
            if x.ndim != len(ref.shape) or any(r is not None and r != d for r, d in zip(ref.shape[1:], x.shape[1:])):
                raise ValueError(
                    f'Input {i} of layer "{self.name}" is incompatible with the layer: expected '
                    f"shape={ref.shape}, found shape={x.shape}"
                )
            out.append(x)
        return out

    def _convert_inputs(self, inputs: Any) -> Any:
        return inputs

    def _eager_call(self, inputs: Any, args=(), kwargs=None, training: Any = None, mask: Any = None,
                    want_mask: bool = True):
        if not self._is_graph_network:
            return super()._eager_call(inputs, args, kwargs, training, mask, want_mask)
        if args or kwargs:
            raise TypeError(f"Model {self.name} takes only its inputs (and training/mask), got extra arguments {args or ''} {kwargs or ''}")
        outputs, masks = self._run_internal_graph(inputs, training=training, mask=mask)
        return outputs, masks

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if not self._is_graph_network:
            raise NotImplementedError(f"Model {type(self).__name__} has no graph: subclasses must implement call().")
        return self._run_internal_graph(inputs, training=training, mask=mask)[0]

    def _run_internal_graph(self, inputs: Any, training: Any = None, mask: Any = None):
        flat = self._conform_inputs(inputs)
        masks_in = flatten(mask) if mask is not None else [None] * len(flat)
        if len(masks_in) != len(flat):
            masks_in = [None] * len(flat)
        values: Dict[int, Any] = {}
        masks: Dict[int, Any] = {}
        for t, x, m in zip(self.inputs, flat, masks_in):
            values[id(t)] = x
            masks[id(t)] = m
        plan = self.__dict__.get("_inference_plan")
        if plan is None or plan.key is not self._nodes_by_depth:
            plan = self._inference_plan = plan_lib.build_plan(self)
        if training or not plan_lib.enabled():
            self._run_steps(plan.steps, values, masks, training, None, None)
        else:
            if (mask is None and arena_lib.current() is None and plan_lib.recording_enabled()
                    and tape_lib.recording() is None):
                # a call of a recorded signature replays its tape (klayers.engine.replay)
                replayed = replay_lib.replayed(self, plan, flat, lambda xs: self._run_plan(plan, xs))
                if replayed is not None:
                    outs, out_masks = replayed
                    if out_masks is None:
                        return pack_as(self._nested_outputs, outs), None
                    return self._with_masks(outs, out_masks)
            self._run_lowered(plan, flat, values, masks, training)
        return self._with_masks([values[id(t)] for t in self.outputs], [masks.get(id(t)) for t in self.outputs])

    def _with_masks(self, outs: List[Any], out_masks: List[Any]) -> Tuple[Any, Any]:
        """``(outputs, mask)`` as ``_run_internal_graph`` returns them, from flat lists."""
        nested = pack_as(self._nested_outputs, outs)
        if all(m is None for m in out_masks):
            return nested, None
        return nested, (out_masks[0] if len(out_masks) == 1 else out_masks)

    def _run_lowered(self, plan: Any, flat: List[Any], values: Dict[int, Any], masks: Dict[int, Any],
                     training: Any) -> None:
        """Run ``plan.lowered`` (inference) over ``values`` / ``masks`` holding the inputs
        ``flat``: intermediate buffers from an arena (one per concurrent call, kept by the
        model), each released after its last use; a nested model shares its caller's."""
        own = arena_lib.current() is None
        arena = self._take_arena() if own else arena_lib.current()
        before = arena_lib.activate(arena)
        try:
            for x in flat:
                arena.hold(x)
            self._run_steps(plan.lowered, values, masks, training, arena, plan.liveness())
            if own:
                for t in self.outputs:
                    arena.escape(values[id(t)])
        finally:
            arena_lib.activate(before)
            if own:
                arena.end()
                self._give_arena(arena)

    def _run_plan(self, plan: Any, flat: List[Any]) -> List[Any]:
        """The outputs (flat) of ``plan.lowered`` on conformed, unmasked inputs ``flat``."""
        values: Dict[int, Any] = {id(t): x for t, x in zip(self.inputs, flat)}
        masks: Dict[int, Any] = dict.fromkeys(values)
        self._run_lowered(plan, flat, values, masks, None)
        return [values[id(t)] for t in self.outputs]

    def _run_steps(self, steps: Any, values: Dict[int, Any], masks: Dict[int, Any], training: Any,
                   arena: Any, liveness: Any) -> None:
        """Run ``steps`` over ``values`` / ``masks`` (by tensor id). With an ``arena``: each
        stored value is held, each tensor released after its last use (``liveness``), and a
        step that may keep its inputs gets them as escaped, with no arena active."""
        if arena is None:
            for step in steps:
                self._run_step(step, values, masks, training)
            return
        release, keeps, reads, writes = liveness
        hold, drop, lent = arena.hold, arena.drop, arena.lent  # nothing lent: nothing to count
        lowered_kind = plan_lib.LOWERED
        get_mask = masks.get
        for step, freed, keep, read, written in zip(steps, release, keeps, reads, writes):
            if step.kind == lowered_kind and get_mask(step.in_id) is None:
                values[step.out_id] = out = step.run(values[step.in_id])
                masks[step.out_id] = None
                if lent:
                    hold(out)
            elif keep:
                for t in read:
                    arena.escape(values.get(t))
                before = arena_lib.activate(None)
                try:
                    self._run_step(step, values, masks, training)
                finally:
                    arena_lib.activate(before)
            else:
                self._run_step(step, values, masks, training)
                if lent:
                    for t in written:
                        hold(values.get(t))
            for t in freed:
                masks.pop(t, None)
                out = values.pop(t, None)
                if lent:
                    drop(out)

    def _run_step(self, step: Any, values: Dict[int, Any], masks: Dict[int, Any], training: Any) -> None:
        """One step of a plan (a lowered chain reached by a mask runs its own steps)."""
        kind = step.kind
        if kind == plan_lib.LOWERED:
            if masks.get(step.in_id) is None:
                values[step.out_id] = step.run(values[step.in_id])
                masks[step.out_id] = None
                return
            todo = step.steps  # a mask reached the chain: run its layers one by one
        elif kind == plan_lib.MERGED:
            if all(masks.get(i) is None for i in step.in_ids):
                values[step.out_id] = step.run([values[i] for i in step.in_ids])
                masks[step.out_id] = None
                return
            todo = step.steps
        else:
            todo = (step,)
        for step in todo:
            if step.kind == plan_lib.SIMPLE:
                in_mask = masks.get(step.in_id)
                out, out_mask = step.layer._eager_call(values[step.in_id], (), None, training, in_mask,
                                                       in_mask is not None or step.want_mask)
                values[step.out_id] = out
                masks[step.out_id] = out_mask
                continue
            node = step.node

            def value(t):
                return values[id(t)] if isinstance(t, KerasTensor) else t

            args = map_structure(value, node.call_args)
            kwargs = map_structure(value, node.call_kwargs)
            first = args[0] if args else None
            in_mask = map_structure(lambda t: masks.get(id(t)) if isinstance(t, KerasTensor) else None, node.input_tensors)
            if all(m is None for m in flatten(in_mask)):
                in_mask = None
            call_mask = kwargs.pop("mask", in_mask)
            call_training = kwargs.pop("training", training)
            # the masks of the arguments the layer takes as <arg>_mask (any argument, not only the first)
            kwargs.update(node.layer._arg_masks(node.call_args, node.call_kwargs,
                                                lambda t: masks.get(id(t)) if isinstance(t, KerasTensor) else None))
            out, out_mask = node.layer._eager_call(first, tuple(args[1:]), kwargs, call_training, call_mask)
            flat_out = flatten(node.outputs)
            flat_values = flatten(out) if len(flat_out) > 1 else [out]
            if len(flat_values) != len(flat_out):
                raise ValueError(
                    f"Layer {node.layer.name} returned {len(flat_values)} outputs where its node expects {len(flat_out)}."
                )
            if out_mask is None:
                flat_masks = [None] * len(flat_out)
            elif len(flat_out) == 1:
                flat_masks = [out_mask]
            else:
                flat_masks = flatten(out_mask) if isinstance(out_mask, (list, tuple)) else [out_mask] * len(flat_out)
                # tf-keras zips flat outputs with flat masks: outputs past the masks (an RNN's
                # [y, [h, c], h2] with masks [m, None, None]) have none
                flat_masks += [None] * (len(flat_out) - len(flat_masks))
            for t, v, m in zip(flat_out, flat_values, flat_masks):
                values[id(t)] = v
                masks[id(t)] = m

    def _trace_nodes(self, inputs: Any, feed: Optional[Callable[[KerasTensor], Any]] = None
                     ) -> Iterator[Tuple[Node, List[Any]]]:
        """Run the graph layer by layer at inference (unplanned: each layer's own ``call``) and
        yield ``(node, outputs)`` for every node, in the order the plan runs them; ``outputs``
        is the node's flat list of arrays (``klayers.inspect.verify_layers`` compares them).

        ``feed(tensor)``: an array to give a node for that input tensor instead of the value
        the graph computed (``None``: the graph's own). Masks are always the graph's own.
        """
        flat = self._conform_inputs(inputs)
        values: Dict[int, Any] = {id(t): x for t, x in zip(self.inputs, flat)}
        masks: Dict[int, Any] = dict.fromkeys(values)
        for step in plan_lib.build_plan(self).steps:
            node = step.node
            given = {}
            for t in node.keras_inputs:
                fed = feed(t) if feed is not None else None
                given[id(t)] = values[id(t)] if fed is None else fed
            self._run_step(step, given, masks, False)
            outputs = [given[id(t)] for t in flatten(node.outputs)]
            for t, value in zip(flatten(node.outputs), outputs):
                values[id(t)] = value
            yield node, outputs

    def _take_arena(self) -> Any:
        """An arena no other call of this model is using (a new one when all are busy)."""
        with _ARENAS_LOCK:
            pool = self.__dict__.setdefault("_arenas", [])
            return pool.pop() if pool else arena_lib.Arena()

    def _release_arenas(self) -> None:
        """Drop the arenas no call is using (a recorded call replays on buffers of its own)."""
        with _ARENAS_LOCK:
            self.__dict__["_arenas"] = []

    def _give_arena(self, arena: Any) -> None:
        with _ARENAS_LOCK:
            pool = self.__dict__.setdefault("_arenas", [])
            if len(pool) < _MAX_ARENAS:
                pool.append(arena)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if not self._is_graph_network:
            return super().compute_output_shape(input_shape)
        shapes = [tuple(input_shape)] if _looks_like_shape(input_shape) else [tuple(s) for s in input_shape]
        known: Dict[int, Any] = {id(t): tuple(s) for t, s in zip(self.inputs, shapes)}
        for depth in sorted(self._nodes_by_depth, reverse=True):
            for node in self._nodes_by_depth[depth]:
                if node.is_input or any(id(t) not in known for t in node.keras_inputs):
                    continue
                in_shapes = map_structure(lambda t: known[id(t)], node.input_tensors)
                if isinstance(in_shapes, tuple) and in_shapes and isinstance(in_shapes[0], tuple):
                    in_shapes = list(in_shapes)
                out_shapes = node.layer.compute_output_shape(in_shapes)
                flat_out = flatten(node.outputs)
                if len(flat_out) == 1:
                    known[id(flat_out[0])] = tuple(out_shapes)
                else:
                    for t, s in zip(flat_out, out_shapes):
                        known[id(t)] = tuple(s)
        outs = [known[id(t)] for t in self.outputs]
        return outs[0] if len(outs) == 1 else outs

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if not self._is_graph_network:
            return super().compute_mask(inputs, mask)
        return self._run_internal_graph(inputs, mask=mask)[1]

    @property
    def supports_masking(self) -> bool:
        return self._is_graph_network or super().supports_masking

    @supports_masking.setter
    def supports_masking(self, value: bool) -> None:
        self._supports_masking_override = bool(value)

    def _output_dtype(self, inputs: Any) -> str:
        return self.outputs[0].dtype if self._is_graph_network else self._dtype

    def _symbolic_call(self, inputs: Any, args: tuple, kwargs: Dict[str, Any]) -> Any:
        if not self._is_graph_network:
            return super()._symbolic_call(inputs, args, kwargs)
        flat_in = flatten(inputs)
        if len(flat_in) != len(self.inputs):
            raise ValueError(f'Layer "{self.name}" expects {len(self.inputs)} input(s), but it received {len(flat_in)} input tensors.')
        shapes = [t.shape for t in flat_in]
        out_shapes = self.compute_output_shape(shapes[0] if len(shapes) == 1 else shapes)
        flat_shapes = [out_shapes] if len(self.outputs) == 1 else list(out_shapes)
        outs = [KerasTensor(s, dtype=t.dtype) for s, t in zip(flat_shapes, self.outputs)]
        outputs = pack_as(self._nested_outputs, outs)
        Node(self, call_args=(inputs,) + tuple(args), call_kwargs=kwargs, outputs=outputs)
        self._set_symbolic_masks(inputs, outputs, kwargs.get("mask"))
        return outputs

    def _symbolic_mask_probe(self, dummy_inputs: Any, dummy_mask: Any) -> Any:
        if not self._is_graph_network:
            return super()._symbolic_mask_probe(dummy_inputs, dummy_mask)
        if dummy_mask is None:  # the masks the model makes by itself were found when it was built
            masks = [None if getattr(t, "_keras_mask", None) is None else np.ones(_probe_shape(t._keras_mask.shape), bool)
                     for t in self.outputs]
            return masks[0] if len(masks) == 1 else masks
        return self._run_internal_graph(dummy_inputs, mask=dummy_mask)[1]

    def predict(self, x: Any, batch_size: Optional[int] = 32, verbose: Any = "auto", steps: Optional[int] = None, **kwargs: Any) -> Any:
        """Run the model on ``x`` (an array, a list of arrays, or a dict by input name) in
        batches of ``batch_size``; returns the concatenated outputs (a list for several).
        Given Dask arrays, returns lazy Dask arrays instead (see :mod:`klayers.dask`).

        ``verbose``: 0 silent, 1 progress bar, "auto" a progress bar only on runs over 1 s.
        """
        handler = hooks.array_handler(x)
        if handler is not None:  # Dask arrays (klayers.dask): lazy outputs
            return handler(self, x, batch_size=batch_size)
        unused = set(kwargs) - {"callbacks", "max_queue_size", "workers", "use_multiprocessing"}
        if unused:
            raise TypeError(f"predict() got unexpected keyword arguments {sorted(unused)}")
        if batch_size is None:
            batch_size = 32
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"predict: batch_size must be a positive integer. Received batch_size={batch_size!r}")
        if not self._is_graph_network:
            return self._predict_subclassed(x, batch_size)
        flat = self._conform_inputs(x)
        n = flat[0].shape[0] if flat[0].ndim else 1
        for i, a in enumerate(flat):
            if a.shape[0] != n:
                raise ValueError(f"predict: all inputs must have the same number of samples; input 0 has {n}, input {i} has {a.shape[0]}.")
        n_steps = max(1, -(-n // batch_size))
        if steps is not None:
            n_steps = min(n_steps, int(steps))
        bar = _Progbar(n_steps, verbose)
        chunks: List[List[np.ndarray]] = []
        for step in range(n_steps):
            sl = slice(step * batch_size, min(n, (step + 1) * batch_size))
            out, _ = self._run_internal_graph([a[sl] for a in flat] if len(flat) > 1 else flat[0][sl])
            chunks.append(flatten(out))
            bar.update(step + 1)
        if not chunks:
            return None
        if len(chunks) == 1:  # one batch: its outputs are the caller's own arrays already
            return pack_as(self._nested_outputs, chunks[0])
        results = [np.concatenate([c[i] for c in chunks], axis=0) for i in range(len(chunks[0]))]
        return pack_as(self._nested_outputs, results)

    def _predict_subclassed(self, x: Any, batch_size: int) -> Any:
        arrays = flatten(x) if isinstance(x, (list, tuple)) else [x]
        n = np.asarray(arrays[0]).shape[0]
        outs = []
        for start in range(0, n, batch_size):
            part = [np.asarray(a)[start:start + batch_size] for a in arrays]
            outs.append(self(part if len(part) > 1 else part[0]))
        if isinstance(outs[0], (list, tuple)):
            return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
        return np.concatenate(outs)

    def predict_on_batch(self, x: Any) -> Any:
        """``predict`` on one batch."""
        n = np.asarray(flatten(x)[0] if isinstance(x, (list, tuple, dict)) else x).shape[0]
        return self.predict(x, batch_size=max(n, 1), verbose=0)

    def reset_states(self) -> None:
        """Clear the states of every stateful layer."""
        for layer in self.layers:
            if hasattr(layer, "reset_states") and getattr(layer, "stateful", False):
                layer.reset_states()

    # -- config ---------------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        """Keras 2's functional config: layers with their ``inbound_nodes``, input and output layers."""
        if not self._is_graph_network:
            return super().get_config()
        config: Dict[str, Any] = {"name": self.name, "trainable": self.trainable}
        conversion: Dict[str, int] = {}
        for layer in self.layers:
            kept = 1 if should_skip_first_node(layer) else 0
            for i, _node in enumerate(layer._inbound_nodes):
                key = node_key(layer.name, i)
                if key in self._network_nodes:
                    conversion[key] = kept
                    kept += 1
        layer_configs = []
        for layer in self.layers:
            inbound = []
            for i, node in enumerate(layer._inbound_nodes):
                if node_key(layer.name, i) in self._network_nodes and not node.is_input:
                    inbound.append(node.serialize(node_key, conversion))
            layer_config = serialize_keras_object(layer)
            layer_config["name"] = layer.name
            layer_config["inbound_nodes"] = inbound
            layer_configs.append(layer_config)
        config["layers"] = layer_configs

        def coords(coordinates, nested):
            out = []
            for layer, node_index, tensor_index in coordinates:
                key = node_key(layer.name, node_index)
                out.append([layer.name, conversion.get(key, 0), tensor_index])
            if isinstance(nested, dict):
                return {k: v for k, v in zip(sorted(nested), out)}
            if isinstance(nested, (list, tuple)) and any(isinstance(v, (list, tuple)) for v in nested):
                return pack_as(list(nested), out)  # tf-keras keeps a nested output's nesting
            return out

        config["input_layers"] = coords(self._input_coordinates, self._nested_inputs)
        config["output_layers"] = coords(self._output_coordinates, self._nested_outputs)
        return config

    def get_build_config(self):
        if self._is_graph_network:
            shapes = [t.shape for t in self.inputs]
            return {"input_shape": shape_to_list(shapes[0] if len(shapes) == 1 else shapes)}
        return super().get_build_config()

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = None) -> Functional:
        """Rebuild a functional model from :meth:`get_config` output (Keras 2 or Keras 3)."""
        if "layers" not in config:
            raise ValueError(f"Model config has no 'layers': keys are {sorted(config)}")
        inputs, outputs, _ = reconstruct_from_config(config, custom_objects=custom_objects)
        return cls(inputs=inputs, outputs=outputs, name=config.get("name"), trainable=config.get("trainable", True))

    # -- files (klayers.saving installs these) ----------------------------------------------------
    def save(self, filepath: Any, overwrite: bool = True, save_format: Optional[str] = None) -> None:
        """Save the model: ``.keras`` (Keras 3 reads it) or ``.h5`` (tf-keras reads it)."""
        hooks.call("save_model", self, filepath, overwrite=overwrite, save_format=save_format)

    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Save the weights: ``*.weights.h5`` (object paths) or ``*.h5`` (legacy layer_names)."""
        hooks.call("save_weights", self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any, by_name: bool = False, skip_mismatch: bool = False) -> None:
        """Load weights from a ``.h5``, ``.weights.h5`` or ``.keras`` file (by order, or by layer
        name with ``by_name=True`` for legacy .h5 files)."""
        hooks.call("load_weights", self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)

    def to_json(self, **kwargs: Any) -> str:
        """The model's config as tf-keras's ``to_json`` writes it."""
        model_config = {
            "class_name": type(self).__name__ if type(self).__name__ != "Model" else "Functional",
            "config": self.get_config(),
            "keras_version": "2.21.0",
            "backend": "tensorflow",
        }
        return json.dumps(model_config, default=json_default, **kwargs)

    # -- summary ----------------------------------------------------------------------------
    def summary(self, line_length: Optional[int] = None, positions: Optional[Sequence[float]] = None,
                print_fn: Any = None, expand_nested: bool = False, show_trainable: bool = False,
                layer_range: Any = None) -> None:
        """Print a table of layers, output shapes and parameter counts (Keras 2's layout)."""
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      expand_nested=expand_nested, show_trainable=show_trainable)


def _probe_shape(shape: Any) -> tuple:
    return tuple(2 if d is None else int(d) for d in shape)


def _looks_like_shape(x: Any) -> bool:
    return isinstance(x, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer)) for d in x)


# tf-keras 2.21 writes a nested functional model under its implementation module.
Functional._keras_module = "tf_keras.src.engine.functional"
Functional._keras_registered_name = "Functional"

#: ``klayers.Model`` is the functional model class; subclass it for a model with its own ``call``.
Model = Functional

register_builtins("layer", globals(), ["Functional", "Model"])
