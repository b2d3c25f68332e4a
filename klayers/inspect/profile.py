"""Where a model's inference time goes: every step of its plan timed (``klayers profile MODEL``).

A model call in inference runs its plan (:mod:`klayers.engine.plan`): a flat list of steps,
each one kernel call (a Conv2D + BatchNormalization + ReLU chain folded into one convolution, a
residual Add merged into it ...) or one layer the planner does not lower (a nested model, a
Lambda). :func:`profile` (:func:`profile_model` with the command line's options) runs that
plan step by step, as ``Functional._run_lowered`` does (one arena, each value released after
its last use), with a clock around every step, over repeated calls after warm-up, and reports
each step's median time, its share of the steps' total and its rate: GFLOP/s for the compute
layers (a multiply-add counts 2) or GB/s of inputs plus output for the rest, each as a fraction
of this machine's ceiling (NumPy's float32 matmul and a large array copy, measured once per
CPU model, thread count and NumPy version and cached in ``$XDG_CACHE_HOME/klayers/ceilings.json``,
as ``klayers.bench.compare`` measures them).

With ``ort_python`` the same file runs in ONNX Runtime too (converted by tf2onnx in a
subprocess of that Python), and ORT's own profiler gives per-node times; nodes map to layers by
their names (:func:`map_nodes_to_layers`), so each step shows how it compares.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from klayers import models
from klayers.backend import arena as arena_lib
from klayers.engine import plan as plan_lib
from klayers.engine.node import flatten
from klayers.inspect.verify import file_dialect, random_inputs
from klayers.ops.threads import get_num_threads, num_threads

__all__ = ["CEILINGS_FILE", "DEFAULT_REPEATS", "format_report", "machine_ceilings", "map_nodes_to_layers",
           "measure_ceilings", "plot_report", "profile", "profile_model", "rescale_loops", "step_flops"]

#: where the measured ceilings are kept, under ``$XDG_CACHE_HOME`` (or ``~/.cache``)
CEILINGS_FILE = os.path.join("klayers", "ceilings.json")
#: timed calls when none are asked for (``klayers profile --repeats``)
DEFAULT_REPEATS = 20
_WARMUP = 3


# -- the machine's ceilings ------------------------------------------------------------------------
def _best_time(fn: Any, runs: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_ceilings(n: int = 4096, nbytes: int = 256 * 2**20) -> Dict[str, float]:
    """This machine's throughput at the current thread count, as ``benchmarks/compare_keras.py``
    measures it: ``matmul_gflops``, NumPy's float32 ``a @ b`` on ``n x n`` matrices (BLAS
    threads as limited now), and ``copy_gbs``, one large ``np.copyto`` of ``nbytes`` (bytes read
    plus bytes written). Takes a few seconds at the defaults."""
    return {"matmul_gflops": _matmul_gflops(n), "copy_gbs": _copy_gbs(nbytes)}


def _matmul_gflops(n: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype("float32")
    b = rng.standard_normal((n, n)).astype("float32")
    c = np.empty((n, n), "float32")
    return 2.0 * n**3 / _best_time(lambda: np.matmul(a, b, out=c), 2) / 1e9


def _copy_gbs(nbytes: int) -> float:
    src = np.ones(nbytes // 8, np.float64)
    dst = np.empty_like(src)
    return 2.0 * src.nbytes / _best_time(lambda: np.copyto(dst, src), 5) / 1e9


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, CEILINGS_FILE)


def machine_ceilings(threads: Optional[int] = None) -> Dict[str, Any]:
    """The matmul and copy ceilings at ``threads`` (default: the current count), measured by
    :func:`measure_ceilings` the first time and read from the cache file after that (keyed by
    CPU model, thread count and NumPy version).

    Returns:
        ``{"matmul_gflops", "copy_gbs", "cpu", "threads", "numpy", "measured"}`` (``measured``:
        when, ISO 8601), plus ``"cached": True`` when read from the file.
    """
    threads = threads or get_num_threads()
    cpu = _cpu_model()
    key = f"{cpu} | {threads} threads | numpy {np.__version__}"
    path = _cache_path()
    try:
        with open(path) as f:
            cache = json.load(f)
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    got = cache.get(key)
    if isinstance(got, dict) and {"matmul_gflops", "copy_gbs"} <= set(got):
        return dict(got, cached=True)
    with num_threads(threads):
        measured = measure_ceilings()
    entry = {"matmul_gflops": float(measured["matmul_gflops"]), "copy_gbs": float(measured["copy_gbs"]),
             "cpu": cpu, "threads": threads, "numpy": np.__version__,
             "measured": datetime.datetime.now().isoformat(timespec="seconds")}
    cache[key] = entry
    try:  # a cache we cannot write only means measuring again next time
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(cache, f, indent=1)
        os.replace(tmp, path)
    except OSError:
        pass
    return dict(entry, cached=False)


# -- FLOPs of the compute layers -------------------------------------------------------------------
def _size(weight: Any) -> int:
    return int(np.prod(weight.shape))


def _class_names(layer: Any) -> List[str]:
    return [c.__name__ for c in type(layer).__mro__]


def step_flops(layer: Any, inputs: Sequence[Any], outputs: Sequence[Any]) -> int:
    """Floating-point operations of one layer call (a multiply-add counts 2) from its weights
    and the shapes of its ``inputs`` / ``outputs`` (arrays or shapes, first one used); 0 for
    layers that are not counted (the memory-bound ones, and those folded into a convolution).

    Dense (kernel ``(in, units)``): ``2 * out.size / units * kernel.size``; Conv1D/2D/3D
    (kernel ``(*k, cin / groups, cout)``): ``2 * out.size / cout * kernel.size``; depthwise:
    ``2 * out.size * prod(k)``; separable: depthwise plus pointwise at the output pixels;
    transposed convolution: ``2 * input pixels * kernel.size``; locally connected:
    ``2 * batch * kernel.size``; SimpleRNN / GRU / LSTM: ``2 * batch * T * (kernel.size +
    recurrent_kernel.size)`` (both directions for Bidirectional); TimeDistributed counts its layer.

    Example: ``Conv2D(8, 3)`` on ``(1, 10, 10, 4)`` gives ``(1, 8, 8, 8)``:
    ``2 * 64 * (3 * 3 * 4 * 8) = 36864``.
    """
    if not outputs or not inputs:
        return 0
    out = tuple(np.shape(outputs[0])) if not isinstance(outputs[0], tuple) else outputs[0]
    x = tuple(np.shape(inputs[0])) if not isinstance(inputs[0], tuple) else inputs[0]
    out_size = int(np.prod(out)) if out else 0
    names = _class_names(layer)
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
    if "TimeDistributed" in names:
        return step_flops(layer.layer, inputs, outputs)
    if "Bidirectional" in names:
        return sum(step_flops(sub, inputs, outputs) for sub in (layer.forward_layer, layer.backward_layer))
    if "RNN" in names:
        cells = getattr(layer.cell, "cells", [layer.cell])
        weights = sum(_size(c.kernel) + _size(c.recurrent_kernel) for c in cells
                      if getattr(c, "kernel", None) is not None and getattr(c, "recurrent_kernel", None) is not None
                      and "_ConvLSTMCell" not in _class_names(c))
        return 2 * int(np.prod(x[:2])) * weights if len(x) >= 2 else 0
    if "SeparableConv" in names:
        cout = out[1] if channels_first else out[-1]
        return 2 * (out_size // cout) * (_size(layer.depthwise_kernel) + _size(layer.pointwise_kernel))
    if "DepthwiseConv" in names:
        return 2 * out_size * int(np.prod(layer.depthwise_kernel.shape[:-2]))
    if "ConvTranspose" in names:
        cin = x[1] if channels_first else x[-1]
        return 2 * (int(np.prod(x)) // cin) * _size(layer.kernel)
    if "Conv" in names and getattr(layer, "kernel", None) is not None:
        cout = out[1] if channels_first else out[-1]
        return 2 * (out_size // cout) * _size(layer.kernel)
    if "_LocallyConnected" in names:
        return 2 * x[0] * _size(layer.kernel)
    if "Dense" in names:
        return 2 * (out_size // layer.kernel.shape[-1]) * _size(layer.kernel)
    return 0


# -- the plan, step by step ------------------------------------------------------------------------
def _leaves(step: Any) -> List[Any]:
    """The graph nodes' steps a plan step covers, in order."""
    if step.kind in (plan_lib.SIMPLE, plan_lib.GENERAL):
        return [step]
    return [leaf for sub in step.steps for leaf in _leaves(sub)]


def _timed_call(model: Any, plan: Any, flat: List[np.ndarray]) -> List[float]:
    """One inference call of ``plan.lowered`` as ``Functional._run_lowered`` runs it, with the
    seconds each step took."""
    values = {id(t): x for t, x in zip(model.inputs, flat)}
    masks: Dict[int, Any] = dict.fromkeys(values)
    release, keeps, reads, writes = plan.liveness()
    times = []
    arena = model._take_arena()
    before = arena_lib.activate(arena)
    clock, run = time.perf_counter, model._run_steps
    try:
        for x in flat:
            arena.hold(x)
        for i, step in enumerate(plan.lowered):
            live = (release[i:i + 1], keeps[i:i + 1], reads[i:i + 1], writes[i:i + 1])
            t0 = clock()
            run((step,), values, masks, None, arena, live)
            times.append(clock() - t0)
        for t in model.outputs:
            arena.escape(values[id(t)])
    finally:
        arena_lib.activate(before)
        arena.end()
        model._give_arena(arena)
    return times


def _reference_values(model: Any, plan: Any, flat: List[np.ndarray]) -> Dict[int, Any]:
    """Every graph tensor's value (by id) from one unplanned call: the shapes and bytes steps
    read and write, and the inputs and outputs of the layers inside fused steps."""
    values: Dict[int, Any] = {id(t): x for t, x in zip(model.inputs, flat)}
    masks: Dict[int, Any] = dict.fromkeys(values)
    model._run_steps(plan.steps, values, masks, None, None, None)
    return values


def _nbytes(values: Dict[int, Any], ids: Iterable[int]) -> int:
    return sum(int(getattr(values.get(i), "nbytes", 0)) for i in dict.fromkeys(ids))


def _median_ms(samples: Sequence[float]) -> float:
    return float(np.median(samples)) * 1e3


def profile(model: Any, x: Any, *, threads: Optional[int] = None, repeats: Optional[int] = None) -> Dict[str, Any]:
    """Time every step of ``model``'s inference plan on the inputs ``x``; returns the report
    (the JSON that ``klayers profile --json`` writes). Prints nothing.

    The step times add up to the call: ``sum(step["median_ms"]) + overhead_ms == total_ms``,
    where ``total_ms`` is the median of the whole call as the plan runs it and ``overhead_ms``
    the call's own work outside the steps (input checks, dispatch, arena bookkeeping).

    Args:
        model: a functional or Sequential model, or the path of a model file (loaded with
            ``klayers.models.load_model(path)``; load one that needs ``safe_mode=False`` first).
        x: its inputs, as ``model(x)`` takes them (an array, a list in input order, or a dict
            by input name); their first dimension is the batch size. None: seeded random arrays
            of the model's input shapes, batch 1.
        threads: threads to compute with (default: the current setting); restored afterwards.
        repeats: timed calls after 3 warm-up calls; medians are over these. None: ``20``
            (:data:`DEFAULT_REPEATS`).

    Returns:
        At least ``{"model": str, "batch_size": int, "threads": int, "total_ms": float,
        "overhead_ms": float, "steps": [{"layers": [str], "class": str, "shape": [int],
        "median_ms": float, "share": float, "gflops": float | None, "gbps": float | None},
        ...]}``, steps in plan order; :func:`profile_model` lists every key.

    Raises:
        ValueError: ``repeats`` or ``threads`` is not a positive integer, the model has no graph
            (a subclassed model), or ``x`` does not fit its inputs or holds no samples (the
            message says how).
        FileNotFoundError: no such model file.

    Example::

        report = klayers.inspect.profile(model, np.zeros((8, 224, 224, 3), "float32"))
        for step in sorted(report["steps"], key=lambda s: -s["median_ms"])[:5]:
            print(step["layers"], f"{step['median_ms']:.2f} ms", f"{100 * step['share']:.0f}%")
    """
    return profile_model(model, inputs=x, threads=threads, repeats=DEFAULT_REPEATS if repeats is None else repeats)


def profile_model(model_or_path: Any, *, batch_size: int = 1, threads: Optional[int] = None,
                  repeats: int = DEFAULT_REPEATS, inputs: Any = None, ort_python: Optional[str] = None,
                  safe_mode: bool = True) -> Dict[str, Any]:
    """Time every step of a model's inference plan; returns the report (the JSON that
    ``klayers profile --json`` writes). Prints nothing. :func:`profile` is the same with the
    inputs given; this adds the command line's options.

    Args:
        model_or_path: a functional or Sequential model, or a model file (loaded with
            ``klayers.models.load_model(path, safe_mode=safe_mode)``).
        batch_size: samples per call (ignored when ``inputs`` are given).
        threads: threads to compute with (default: the current setting); restored afterwards.
        repeats: timed calls after ``3`` warm-up calls; medians are over these.
        inputs: the arrays to call the model on (default: seeded random arrays of its input shapes).
        ort_python: a Python with onnxruntime, tf2onnx and the Keras that wrote the file: also
            time the model in ONNX Runtime there.
        safe_mode: passed to ``load_model``.

    Returns:
        ``{"model": name, "path": file or None, "batch_size", "threads", "repeats",
        "ceilings": {"matmul_gflops", "copy_gbs", "cpu", ...} (see :func:`machine_ceilings`),
        "total_ms": the median of the whole call as the plan runs it (``model(x)`` with the
        plan run step by step, ``klayers.inference.unrecorded()``): what the step times add up
        to, with "overhead_ms"; "plan_ms": the same number under its older name,
        "call_ms": median of ``model(x)`` as users run it (a recorded call replays its tape),
        "steps_ms": sum of the step medians, "overhead_ms": ``total_ms - steps_ms`` (the call's
        work outside the steps: input checks, dispatch, arena bookkeeping; medians do not add
        up exactly, so it may come out slightly negative, and on a machine with more runnable
        processes than cores, where a whole call is interrupted more often than any one of its
        steps, too large: profile on a quiet machine),
        "steps": [{"index", "layers": [layer names], "class": classes joined with "+",
        "kind": the step's type ("FusedStep" ..., or "Layer" for a layer run as it is),
        "shape": its output's shape (the first output's), "median_ms", "share" (of
        ``steps_ms``), "flops": int or None, "bytes": inputs plus outputs, "gflops" or None,
        "gbps" or None (GB/s, when not counted in FLOPs), "fraction": of the matching ceiling,
        "ort_ms": ORT nodes mapped to its layers or None, "ort_ratio": ``median_ms / ort_ms``
        or None}, ...] in plan order,
        "ort": None, or {"python", "versions", "call_ms", "ratio" (``call_ms / ort call_ms``),
        "nodes_ms", "unmapped_ms", "unmapped": [node names], "loop_scale": see
        :func:`rescale_loops`} or {"python", "error": why not}}.

    Raises:
        ValueError: ``batch_size``, ``repeats`` or ``threads`` is not a positive integer, the
            model has no graph (a subclassed model), ``inputs`` do not fit it or hold no samples,
            or ``ort_python`` lacks the packages (the message says what to install).
        FileNotFoundError: no such model file.
    """
    counts = [("batch_size", batch_size), ("repeats", repeats)] + ([("threads", threads)] if threads is not None else [])
    for name, value in counts:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"profile: {name} must be a positive integer. Received {name}={value!r}.")
    path = None
    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        model = models.load_model(path, safe_mode=safe_mode)
    else:
        model = model_or_path
    if not getattr(model, "_is_graph_network", False):
        raise ValueError(f"profile needs a functional or Sequential model; {type(model).__name__} has no graph of layers.")
    if ort_python is not None:
        which = file_dialect(path) if path else "keras2"
        _check_ort_python(ort_python, which)
    flat = model._conform_inputs(inputs if inputs is not None else random_inputs(model, batch_size))
    if any(x.ndim and not len(x) for x in flat):
        raise ValueError(f"profile: the inputs hold no samples (shapes {[x.shape for x in flat]}); "
                         "give it a batch of at least one.")
    call_in = flat if len(flat) > 1 else flat[0]
    with num_threads(threads if threads is not None else get_num_threads()):
        n_threads = get_num_threads()
        ceilings = machine_ceilings(n_threads)
        for _ in range(_WARMUP):
            model(call_in)
        plan = model.__dict__.get("_inference_plan")
        if plan is None or plan.key is not model._nodes_by_depth:
            plan = model._inference_plan = plan_lib.build_plan(model)
        ref = _reference_values(model, plan, flat)
        for _ in range(_WARMUP):
            _timed_call(model, plan, flat)
        step_times, plan_times, call_times = [], [], []
        clock = time.perf_counter
        for _ in range(repeats):  # interleaved, so that a slow spell of the machine hits all three
            step_times.append(_timed_call(model, plan, flat))
            with plan_lib.unrecorded():
                t0 = clock()
                model(call_in)
                plan_times.append(clock() - t0)
            t0 = clock()
            model(call_in)
            call_times.append(clock() - t0)
    medians = np.median(np.asarray(step_times), axis=0) * 1e3 if step_times[0] else np.zeros(0)
    steps_ms = float(medians.sum())
    liveness = plan.liveness()
    rows = []
    for i, step in enumerate(plan.lowered):
        rows.append(_row(i, step, float(medians[i]), steps_ms, ref, liveness.reads[i], liveness.writes[i], ceilings))
    plan_ms = _median_ms(plan_times)
    report: Dict[str, Any] = {
        "model": model.name, "path": path, "batch_size": int(len(flat[0]) if flat[0].ndim else 1),
        "threads": n_threads, "repeats": repeats, "ceilings": ceilings,
        "total_ms": plan_ms, "plan_ms": plan_ms, "call_ms": _median_ms(call_times), "steps_ms": steps_ms,
        "overhead_ms": plan_ms - steps_ms, "steps": rows, "ort": None,
    }
    if ort_python is not None:
        report["ort"] = _compare_ort(report, model, path, flat, ort_python, n_threads, repeats, safe_mode)
    return report


def _node_flops(step: Any, ref: Dict[int, Any]) -> int:
    """FLOPs of one graph node's step (``ref``: the graph's values); a nested model's add up."""
    node, layer = step.node, step.layer
    inputs = [ref.get(id(t)) for t in node.keras_inputs]
    if not getattr(layer, "_is_graph_network", False):
        return step_flops(layer, inputs, [ref.get(id(t)) for t in flatten(node.outputs)])
    if len(inputs) != len(layer.inputs) or any(x is None for x in inputs):
        return 0
    plan = plan_lib.build_plan(layer)
    inner = _reference_values(layer, plan, layer._conform_inputs(inputs))
    return sum(_node_flops(sub, inner) for sub in plan.steps)


def _row(index: int, step: Any, median_ms: float, total_ms: float, ref: Dict[int, Any], reads: Sequence[int],
         writes: Sequence[int], ceilings: Dict[str, Any]) -> Dict[str, Any]:
    leaves, seen = [], set()
    for leaf in _leaves(step):
        if id(leaf.layer) not in seen:
            seen.add(id(leaf.layer))
            leaves.append(leaf)
    flops = sum(_node_flops(leaf, ref) for leaf in leaves)
    nbytes = _nbytes(ref, reads) + _nbytes(ref, writes)
    first = ref.get(writes[0]) if writes else None
    seconds = median_ms / 1e3
    gflops = flops / seconds / 1e9 if flops and seconds > 0 else None
    gbps = nbytes / seconds / 1e9 if not flops and seconds > 0 else None
    if gflops is not None:
        fraction = gflops / ceilings["matmul_gflops"]
    else:
        fraction = gbps / ceilings["copy_gbs"] if gbps is not None else None
    return {
        "index": index, "layers": [leaf.layer.name for leaf in leaves],
        "class": "+".join(type(leaf.layer).__name__ for leaf in leaves),
        "kind": "Layer" if step.kind in (plan_lib.SIMPLE, plan_lib.GENERAL) else type(step).__name__,
        "shape": [int(d) for d in np.shape(first)] if first is not None else None,
        "median_ms": median_ms, "share": median_ms / total_ms if total_ms > 0 else 0.0,
        "flops": int(flops) or None, "bytes": nbytes, "gflops": gflops, "gbps": gbps, "fraction": fraction,
        "ort_ms": None, "ort_ratio": None,
    }


# -- ONNX Runtime ----------------------------------------------------------------------------------
def map_nodes_to_layers(nodes: Iterable[Tuple[str, float]], layer_names: Iterable[str]
                        ) -> Tuple[Dict[str, float], List[str]]:
    """Sum ONNX Runtime node times per Keras layer, by the node names tf2onnx gives (the layers'
    name scopes: ``"StatefulPartitionedCall/model/conv1/Conv2D"`` belongs to layer ``conv1``).

    A node belongs to the first path segment (outermost: a nested model's nodes go to the model)
    that is a layer name, or that is a layer name followed by ``:`` or ``_<digits>`` (TensorFlow's
    tensor and uniquified scope names); of several names, the longest (``conv1_bn`` before
    ``conv1``). ORT's profiler suffixes (``_kernel_time``) are ignored.

    Returns:
        ``({layer: summed time}, [names of the nodes that matched no layer])``.
    """
    names = set(layer_names)
    by_layer: Dict[str, float] = {}
    unmapped: List[str] = []
    for node, t in nodes:
        layer = _node_layer(node, names)
        if layer is None:
            unmapped.append(node)
        else:
            by_layer[layer] = by_layer.get(layer, 0.0) + float(t)
    return by_layer, unmapped


def _node_layer(node: str, names: Any) -> Optional[str]:
    if node.endswith("_kernel_time"):
        node = node[: -len("_kernel_time")]
    for segment in node.split("/"):
        if segment in names:
            return segment
        best = None
        for name in names:
            if segment.startswith(name) and (best is None or len(name) > len(best)):
                rest = segment[len(name):]
                if rest.startswith(":") or (rest[:1] == "_" and rest[1:].split(":")[0].isdigit()):
                    best = name
        if best is not None:
            return best
    return None


_PACKAGES = {"keras2": [("tensorflow", "tensorflow"), ("tf_keras", "tf-keras"), ("tf2onnx", "tf2onnx"),
                        ("onnxruntime", "onnxruntime")],
             "keras3": [("tensorflow", "tensorflow"), ("keras", "keras"), ("tf2onnx", "tf2onnx"),
                        ("onnxruntime", "onnxruntime")]}


def _check_ort_python(python: str, which: str) -> None:
    """Raise ValueError (one sentence naming what to install) unless ``python`` has the packages."""
    exe = shutil.which(python) or (python if os.path.isfile(python) else None)
    if exe is None:
        raise ValueError(f"--vs-ort: no Python at '{python}'.")
    mods = _PACKAGES[which]
    probe = ("import importlib.util, json; print(json.dumps([m for m in %r if importlib.util.find_spec(m) is None]))"
             % [m for m, _ in mods])
    proc = subprocess.run([exe, "-c", probe], capture_output=True, text=True)
    try:
        missing = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (ValueError, IndexError):
        missing = None
    if missing is None:
        raise ValueError(f"--vs-ort: '{python}' could not be run as a Python interpreter.")
    if missing:
        pip = [p for m, p in mods if m in missing]
        raise ValueError(f"--vs-ort needs {', '.join(pip)} in '{python}': install them there with "
                         f"`{python} -m pip install {' '.join(pip)}`.")


_ORT_SCRIPT = r"""
import json, logging, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
path, inputs, out, threads, repeats, which, unsafe, workdir = sys.argv[1:9]
threads, repeats = int(threads), int(repeats)
import numpy as np
import tensorflow as tf
tf.get_logger().setLevel(logging.ERROR)
if which == "keras3":
    import keras
    model = keras.saving.load_model(path, compile=False, safe_mode=unsafe != "1")
else:
    import tf_keras as keras
    model = keras.models.load_model(path, compile=False, safe_mode=unsafe != "1")
import onnxruntime as ort
import tf2onnx
logging.getLogger("tf2onnx").setLevel(logging.ERROR)
with np.load(inputs) as z:
    xs = [z[f"x{i}"] for i in range(len(z.files))]
spec = [tf.TensorSpec(x.shape, x.dtype, name=f"x{i}") for i, x in enumerate(xs)]
fn = tf.function(lambda *ts: model(list(ts) if len(ts) > 1 else ts[0], training=False), input_signature=spec)
proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec)

def session(proto, profile):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(workdir, "ort_profile")
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])

sess = session(proto, False)
if len(sess.get_inputs()) != len(xs):
    # captured values the function export left as graph inputs: the Keras export freezes them
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec)
    sess = session(proto, False)
by_name = {f"x{i}": x for i, x in enumerate(xs)}
feed = {i.name: by_name.get(i.name.split(":")[0], xs[k] if k < len(xs) else None)
        for k, i in enumerate(sess.get_inputs())}
for _ in range(3):
    sess.run(None, feed)
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    sess.run(None, feed)
    times.append(time.perf_counter() - t0)
prof = session(proto, True)
for _ in range(3 + repeats):
    prof.run(None, feed)
with open(prof.end_profiling()) as f:
    events = json.load(f)
runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[-repeats:]
per_node, until = {}, -1
# a Loop / Scan / If node's time holds its subgraph's nodes, which are reported too: keep the outer ones
kernels = sorted((e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")),
                 key=lambda e: (e["ts"], -e["dur"]))
for e in kernels:
    if e["ts"] < until:
        continue
    until = e["ts"] + e["dur"]
    for k, (start, end) in enumerate(runs):
        if start <= e["ts"] <= end:
            per_node.setdefault(e["name"], [0.0] * len(runs))[k] += e["dur"] / 1e3
            break
nodes = [[name, float(np.median(ts))] for name, ts in per_node.items()]
loops = sorted({e["name"] for e in kernels if e.get("args", {}).get("op_name") in ("Loop", "Scan", "If")})
json.dump({"call_ms": float(np.median(times)) * 1e3, "nodes": nodes, "loops": loops,
           "versions": {"keras": keras.__version__, "tensorflow": tf.__version__,
                        "tf2onnx": tf2onnx.__version__, "onnxruntime": ort.__version__}}, open(out, "w"))
"""


def _compare_ort(report: Dict[str, Any], model: Any, path: Optional[str], flat: List[np.ndarray], python: str,
                 threads: int, repeats: int, safe_mode: bool) -> Dict[str, Any]:
    """Run the model in ONNX Runtime in ``python``; fill the steps' ``ort_ms`` / ``ort_ratio``."""
    exe = shutil.which(python) or python
    with tempfile.TemporaryDirectory(prefix="klayers-profile-") as tmp:
        if path is None:
            path = os.path.join(tmp, "model.h5")
            model.save(path)
        which = file_dialect(path)
        inputs, out = os.path.join(tmp, "x.npz"), os.path.join(tmp, "ort.json")
        np.savez(inputs, **{f"x{i}": a for i, a in enumerate(flat)})
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        env.setdefault("KERAS_BACKEND", "tensorflow")
        env.pop("OPENBLAS_CORETYPE", None)
        proc = subprocess.run([exe, "-c", _ORT_SCRIPT, os.path.abspath(path), inputs, out, str(threads), str(repeats),
                               which, "0" if safe_mode else "1", tmp], capture_output=True, text=True, env=env)
        if proc.returncode != 0 or not os.path.exists(out):
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            return {"python": python, "error": lines[-1] if lines else f"exit status {proc.returncode}"}
        with open(out) as f:
            got = json.load(f)
    steps = report["steps"]
    names = [name for row in steps for name in row["layers"]]
    nodes, scale = rescale_loops([(n, t) for n, t in got["nodes"]], got.get("loops", []), got["call_ms"])
    by_layer, unmapped = map_nodes_to_layers(nodes, names)
    for row in steps:
        mapped = [by_layer[name] for name in row["layers"] if name in by_layer]
        if mapped and sum(mapped) > 0:
            row["ort_ms"] = float(sum(mapped))
            row["ort_ratio"] = row["median_ms"] / row["ort_ms"]
    times = dict(nodes)
    return {"python": python, "versions": got["versions"], "call_ms": got["call_ms"],
            "ratio": report["call_ms"] / got["call_ms"] if got["call_ms"] > 0 else None,
            "nodes_ms": float(sum(times.values())), "unmapped_ms": float(sum(times[n] for n in unmapped)),
            "unmapped": unmapped, "loop_scale": scale}


def rescale_loops(nodes: Sequence[Tuple[str, float]], loops: Iterable[str], call_ms: float
                  ) -> Tuple[List[Tuple[str, float]], Optional[float]]:
    """Node times with the control-flow nodes' (``loops``: ORT's Loop / Scan / If, whose
    subgraphs tf2onnx makes of recurrent layers) scaled down to what the unprofiled call leaves
    them: the profiler records every node of every iteration, which inflates a loop many times
    over, while a plain node's time is what it costs. The scale is
    ``(call_ms - the other nodes) / the loops``, at most 1; None when there are no loops.
    """
    loops = set(loops)
    loop_ms = sum(t for n, t in nodes if n in loops)
    if not loops or loop_ms <= 0:
        return list(nodes), None
    other_ms = sum(t for n, t in nodes if n not in loops)
    scale = min(1.0, max(call_ms - other_ms, 0.0) / loop_ms)
    return [(n, t * scale if n in loops else t) for n, t in nodes], scale


def format_report(report: Dict[str, Any], top: int = 5) -> str:
    """The report as the aligned table ``klayers profile`` prints."""
    c = report["ceilings"]
    ort = report.get("ort")
    vs = bool(ort and "error" not in ort)
    lines = [f"{report['model']}: batch {report['batch_size']}, {report['threads']} thread(s), "
             f"{report['repeats']} timed calls; ceilings {c['matmul_gflops']:.0f} GFLOP/s matmul, "
             f"{c['copy_gbs']:.1f} GB/s copy ({'cached' if c.get('cached') else 'measured now'})"]
    head = ["#", "time", "share", "rate", "of ceil", "output shape"] + (["vs ORT"] if vs else []) + ["layers (classes)"]
    body = []
    for row in report["steps"]:
        if row["gflops"] is not None:
            rate = f"{row['gflops']:.2f} GFLOP/s"
        elif row["gbps"] is not None:
            rate = f"{row['gbps']:.2f} GB/s"
        else:
            rate = "-"
        frac = f"{100 * row['fraction']:.1f}%" if row["fraction"] is not None else "-"
        shape = "(" + ", ".join(str(d) for d in row["shape"]) + ")" if row["shape"] is not None else "-"
        who = " + ".join(f"{n} ({k})" for n, k in zip(row["layers"], row["class"].split("+")))
        cells = [str(row["index"] + 1), _ms(row["median_ms"]), f"{100 * row['share']:.1f}%", rate, frac, shape]
        if vs:
            cells.append(f"{row['ort_ratio']:.2f}x" if row["ort_ratio"] is not None else "-")
        body.append(cells + [who])
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head) - 1)]
    right = {0, 1, 2, 3, 4} | ({6} if vs else set())

    def fmt(cells: List[str]) -> str:
        parts = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts + [cells[-1]]).rstrip()

    lines += [fmt(head)] + [fmt(r) for r in body]
    lines.append(f"steps {_ms(report['steps_ms'])} of {_ms(report['total_ms'])} per call as the plan runs "
                 f"(overhead outside the steps {_ms(report['overhead_ms'])}); "
                 f"model(x) as run {_ms(report['call_ms'])} (recorded calls replay)")
    costly = sorted(report["steps"], key=lambda r: -r["median_ms"])[:top]
    if costly:
        lines.append("costliest: " + ", ".join(f"#{r['index'] + 1} {_names(r['layers'])} {100 * r['share']:.0f}%"
                                               for r in costly))
    if ort:
        if "error" in ort:
            lines.append(f"ONNX Runtime: not compared ({ort['error']})")
        else:
            v = ort["versions"]
            lines.append(f"ONNX Runtime {v['onnxruntime']} (tf2onnx {v['tf2onnx']}, Keras {v['keras']}): "
                         f"{_ms(ort['call_ms'])} per call; klayers/ORT {ort['ratio']:.2f}x; "
                         f"ORT nodes matching no layer {_ms(ort['unmapped_ms'])} of {_ms(ort['nodes_ms'])}"
                         + (f"; its Loop nodes' profiled times scaled by {ort['loop_scale']:.2f} to fit the "
                            "unprofiled call" if ort.get("loop_scale") is not None else ""))
    return "\n".join(lines)


def _names(layers: List[str]) -> str:
    if len(layers) <= 3:
        return "+".join(layers)
    return f"{layers[0]}..{layers[-1]} ({len(layers)} layers)"


def _ms(ms: float) -> str:
    if abs(ms) >= 1000:
        return f"{ms / 1e3:.2f} s"
    if abs(ms) >= 1:
        return f"{ms:.2f} ms"
    return f"{ms * 1e3:.1f} us"


def plot_report(report: Dict[str, Any], path: str, top: int = 20) -> None:
    """A horizontal bar chart of the ``top`` costliest steps, written to ``path``.

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(report["steps"], key=lambda r: -r["median_ms"])[:top][::-1]
    labels = []
    for r in rows:
        label = f"#{r['index'] + 1} " + "+".join(r["layers"])
        labels.append(label if len(label) <= 48 else label[:45] + "...")
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.3 * len(rows) + 1)))
    bars = ax.barh(range(len(rows)), [r["median_ms"] for r in rows], color="tab:blue")
    for bar, r in zip(bars, rows):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {100 * r['share']:.1f}%",
                va="center", fontsize=7)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("median time per call (ms)")
    ax.set_title(f"{report['model']}: batch {report['batch_size']}, {report['threads']} thread(s)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

