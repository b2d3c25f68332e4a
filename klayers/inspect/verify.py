"""Where a model differs from Keras: every layer's output against the Keras that wrote the file.

:func:`verify_layers` runs the file in tf-keras or Keras 3 (in the Python given, through
``keras_side.py``) and in klayers on the same inputs, then compares each layer's outputs; the
comparison alone is :func:`compare_layers`, given Keras's outputs from :func:`keras_layer_outputs`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from klayers import models
from klayers.engine.node import flatten
from klayers.inspect.keras_side import node_numbers

#: The script ``keras_layer_outputs`` runs in the Keras's Python (it imports no klayers).
KERAS_SIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_side.py")

#: Default largest relative error (to the largest magnitude of Keras's output) per compute
#: dtype: float32's 1e-4 (about 840 epsilons) is what ``klayers verify`` has always accepted;
#: the others leave the same room for summation order over deep models (float64: 1e-10, far
#: below any real difference; float16 and bfloat16: about 10 and 6 epsilons).
TOLERANCES = {"float16": 1e-2, "bfloat16": 5e-2, "float32": 1e-4, "float64": 1e-10}


class KerasUnavailable(RuntimeError):
    """The Python given has no Keras of the file's dialect (the message says how to install it)."""


def default_tolerance(dtype: Any) -> float:
    """The default largest relative error for outputs computed in ``dtype``
    (:data:`TOLERANCES`; float32's for a dtype not listed)."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    return TOLERANCES.get(name, TOLERANCES["float32"])


def file_dialect(path: str) -> str:
    """``"keras3"`` or ``"keras2"``: which Keras wrote the ``.h5`` / ``.keras`` file."""
    import h5py

    from klayers.saving.file_utils import sniff

    if sniff(path) == "zip":
        import zipfile

        with zipfile.ZipFile(path) as zf:
            try:
                meta = json.loads(zf.read("metadata.json"))
            except (KeyError, ValueError):
                meta = {}
        return "keras2" if str(meta.get("keras_version", "3")).startswith("2") else "keras3"
    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version", b"2")
    version = version.decode() if isinstance(version, bytes) else str(version)
    return "keras3" if version.startswith("3") else "keras2"


def keras_module(dialect: str) -> str:
    """The module that runs files of ``dialect``: ``keras`` (Keras 3) or ``tf_keras``."""
    return "keras" if dialect == "keras3" else "tf_keras"


def _check_keras(python: str, dialect: str) -> None:
    module = keras_module(dialect)
    if subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode != 0:
        install = "pip install keras tensorflow" if dialect == "keras3" else "pip install tensorflow tf-keras"
        who = "Keras 3" if dialect == "keras3" else "tf-keras (Keras 2)"
        raise KerasUnavailable(
            f"the file was written by {who}, which is not installed for {python}. Install it with "
            f"`{install}` (or point --keras-python at a Python that has it) and run klayers verify again.")


def _run_keras(python: str, path: str, xs: Sequence[np.ndarray], dialect: str, unsafe: bool,
               mode: str) -> Tuple[str, Dict[str, np.ndarray]]:
    """Run ``keras_side.py`` (``mode`` ``layers`` or ``model``) on the file and inputs in
    ``python``: ``(Keras version, the arrays it wrote)``."""
    _check_keras(python, dialect)
    with tempfile.TemporaryDirectory(prefix="klayers-verify-") as tmp:
        inputs, outputs = os.path.join(tmp, "x.npz"), os.path.join(tmp, "y.npz")
        np.savez(inputs, **{f"x{i}": a for i, a in enumerate(xs)})
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        env.setdefault("KERAS_BACKEND", "tensorflow")
        proc = subprocess.run([python, KERAS_SIDE, os.path.abspath(path), inputs, outputs, dialect,
                               "1" if unsafe else "0", mode], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no message"
            raise RuntimeError(f"{keras_module(dialect)} could not run {path}: {last}")
        version = json.loads(proc.stdout.strip().splitlines()[-1])["keras"]
        with np.load(outputs, allow_pickle=False) as z:
            return version, {k: z[k] for k in z.files}


def keras_layer_outputs(path: str, inputs: Sequence[np.ndarray], *, keras_python: Optional[str] = None,
                        unsafe: bool = False, layers: bool = True) -> Dict[str, Any]:
    """Every layer node's outputs of the file, computed by the Keras that wrote it.

    Args:
        path: a ``.h5`` / ``.keras`` model file.
        inputs: the model's inputs, one array per input.
        keras_python: a Python with that Keras installed (default: this one).
        unsafe: load Lambda layers' code (Keras's ``safe_mode=False``).
        layers: False: the model's outputs only (``"layers"`` is then empty).

    Returns:
        ``{"keras": version, "dialect": "keras2" | "keras3", "layers": {(layer name, node index,
        output index): array}, "model_outputs": [arrays]}``.

    Raises:
        KerasUnavailable: that Python has no Keras of the file's dialect.
        RuntimeError: Keras could not run the file (the message ends with Keras's own).
    """
    dialect = file_dialect(path)
    version, arrays = _run_keras(keras_python or sys.executable, path, inputs, dialect, unsafe,
                                 "layers" if layers else "model")
    index = json.loads(str(arrays["index"]))
    layers = {(e["layer"], e["node"], e["output"]): arrays[f"t{i}"] for i, e in enumerate(index)}
    outputs = [arrays[f"y{i}"] for i in range(sum(k.startswith("y") for k in arrays))]
    return {"keras": version, "dialect": dialect, "layers": layers, "model_outputs": outputs}


def errors(ours: Any, theirs: Any) -> Tuple[float, float]:
    """``(max abs error, max abs error / max |theirs|)`` of two arrays; NaN where both are NaN
    and infinities of the same sign agree; a shape mismatch or a disagreement on them is inf."""
    a = np.asarray(ours)
    b = np.asarray(theirs)
    if a.shape != b.shape:
        return float("inf"), float("inf")
    if a.size == 0:
        return 0.0, 0.0
    if a.dtype.kind not in "fc" and b.dtype.kind not in "fc":
        err = float(np.max(a != b))
        return err, err
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    finite = np.isfinite(a) & np.isfinite(b)
    if np.any(~same & ~finite):
        return float("inf"), float("inf")
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
    max_abs = float(np.max(diff))
    scale = float(np.max(np.abs(np.where(np.isfinite(b), b, 0.0))))
    return max_abs, max_abs / max(scale, np.finfo(np.float64).tiny)


def _compute_dtype(model: Any) -> str:
    kinds = [np.dtype(t.dtype) for t in model.outputs if np.dtype(t.dtype).kind == "f"]
    return kinds[0].name if kinds else "float32"


def compare_layers(model: Any, inputs: Sequence[np.ndarray], keras_outputs: Dict[str, Any], *,
                   isolate: bool = False, rtol: Optional[float] = None,
                   progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, Any]:
    """Compare every layer node's outputs of a klayers ``model`` with Keras's.

    Args:
        model: a functional or Sequential klayers model (the file's, possibly modified).
        inputs: one array per model input (the inputs Keras ran on).
        keras_outputs: what :func:`keras_layer_outputs` returns (``"layers"`` is required;
            ``"dialect"``, ``"model_outputs"`` and ``"keras"`` are used when present).
        isolate: feed each layer Keras's own inputs to it (so an error is the layer's own),
            instead of running klayers end to end.
        rtol: largest relative error accepted (default: from the compute dtype,
            :func:`default_tolerance`).
        progress: called as ``progress(done, total)`` after each node.

    Returns:
        ``{"model", "dialect", "tolerance", "isolate", "first_diverging", "layers": [{"name",
        "class", "shape", "max_abs", "max_rel", "eps_units", "over", "node", "output"}],
        "outputs": [the model's outputs through ``predict``, each {"name", "max_abs",
        "max_rel", "over"}], "not_in_keras": [layer names Keras recorded no output for],
        "dtype", "keras"}``: rows in the order klayers runs the nodes, one per output of every
        node (``node`` and ``output`` number them); ``first_diverging`` is the name of the first
        row over the tolerance, or None.
    """
    theirs = keras_outputs["layers"]
    dtype = _compute_dtype(model)
    tolerance = float(rtol) if rtol is not None else default_tolerance(dtype)
    eps = float(np.finfo(np.dtype(dtype)).eps)
    xs = [np.asarray(x) for x in inputs]

    nodes = [n for depth in sorted(model._nodes_by_depth, reverse=True) for n in model._nodes_by_depth[depth]]
    numbers = node_numbers(nodes, lambda n: n.layer)

    def key(t: Any) -> Tuple[str, int, int]:
        h = t._keras_history
        return h.layer.name, numbers.get(id(h.layer._inbound_nodes[h.node_index]), -1), h.tensor_index

    def feed(t: Any) -> Any:
        return theirs.get(key(t))

    total = sum(1 for n in nodes if not n.is_input)
    rows: List[Dict[str, Any]] = []
    missing: List[str] = []
    done = 0
    for node, outs in model._trace_nodes(xs if len(xs) > 1 else xs[0], feed if isolate else None):
        layer = node.layer
        node_index = numbers[id(node)]
        for j, (t, ours) in enumerate(zip(flatten(node.outputs), outs)):
            ref = theirs.get(key(t))
            if ref is None:
                missing.append(layer.name)
                continue
            max_abs, max_rel = errors(ours, ref)
            rows.append({"name": layer.name, "class": type(layer).__name__,
                         "shape": list(np.shape(ours)), "max_abs": max_abs, "max_rel": max_rel,
                         "eps_units": max_rel / eps, "over": not max_rel <= tolerance,
                         "node": node_index, "output": j})
        done += 1
        if progress is not None:
            progress(done, total)
    first = next((r["name"] for r in rows if r["over"]), None)
    outputs = []
    if keras_outputs.get("model_outputs"):
        preds = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        for name, ours, ref in zip(model.output_names, preds, keras_outputs["model_outputs"]):
            max_abs, max_rel = errors(ours, ref)
            outputs.append({"name": name, "max_abs": max_abs, "max_rel": max_rel,
                            "over": not max_rel <= tolerance})
    return {"model": model.name, "dialect": keras_outputs.get("dialect"), "tolerance": tolerance,
            "isolate": bool(isolate), "first_diverging": first, "layers": rows, "outputs": outputs,
            "not_in_keras": sorted(set(missing)), "dtype": dtype, "keras": keras_outputs.get("keras")}


def verify_layers(path: str, *, model: Any = None, inputs: Optional[Sequence[np.ndarray]] = None,
                  isolate: bool = False, keras_python: Optional[str] = None, rtol: Optional[float] = None,
                  unsafe: bool = False, progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, Any]:
    """Run the model file in the Keras that wrote it and in klayers; compare every layer.

    Args:
        path: a ``.h5`` / ``.keras`` model file written by tf-keras or Keras 3.
        model: an already loaded (possibly modified) klayers model of that file, used instead
            of loading it again.
        inputs: one array per model input (default: random ones of the model's shapes, batch 4).
        isolate: feed each klayers layer Keras's own inputs to it (errors attributed to the
            layer that makes them), instead of running each side end to end.
        keras_python: a Python with tf-keras / Keras 3 installed (default: this one).
        rtol: largest relative error accepted (default: from the model's compute dtype).
        unsafe: allow Lambda layers' code on both sides (Keras's ``safe_mode=False``).
        progress: called as ``progress(done, total)`` after each layer node.

    Returns:
        The report of :func:`compare_layers`, with ``"model"`` the file's path.

    Raises:
        KerasUnavailable: ``keras_python`` has no Keras of the file's dialect.
        RuntimeError: Keras could not run the file.
    """
    if model is None:
        model = models.load_model(path, safe_mode=not unsafe)
    xs = [np.asarray(x) for x in (inputs if inputs is not None else random_inputs(model))]
    if len(xs) != len(model.inputs):
        raise ValueError(f"Model {model.name} has {len(model.inputs)} inputs; received {len(xs)} arrays.")
    keras_outputs = keras_layer_outputs(path, xs, keras_python=keras_python, unsafe=unsafe)
    report = compare_layers(model, xs, keras_outputs, isolate=isolate, rtol=rtol, progress=progress)
    report["model"] = path
    return report


def random_inputs(model: Any, batch: int = 4, seed: int = 0) -> List[np.ndarray]:
    """Inputs of the model's shapes: standard normal floats; integers below the smallest
    Embedding's ``input_dim`` (or 10)."""
    from klayers.saving.keras3_config import _all_layers

    rng = np.random.default_rng(seed)
    vocab = [int(layer.input_dim) for layer in _all_layers(model)
             if type(layer).__name__ == "Embedding" and getattr(layer, "input_dim", None)]
    out = []
    for t in model.inputs:
        shape = tuple(batch if d is None else d for d in t.shape)
        if np.dtype(t.dtype).kind in "iu":
            out.append(rng.integers(0, min(vocab) if vocab else 10, size=shape).astype(t.dtype))
        else:
            out.append(rng.standard_normal(shape).astype(t.dtype))
    return out


def plot(report: Dict[str, Any], path: str) -> None:
    """Draw the per-layer relative error along the model's depth (log scale) with the
    tolerance line into ``path`` (a .png). Needs matplotlib.

    Raises:
        ImportError: matplotlib is not installed (the message says how to install it).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("--plot needs matplotlib (pip install matplotlib).") from e
    rows = report["layers"]
    floor = np.finfo(np.float64).eps
    errs = [min(max(r["max_rel"], floor), 1e300) for r in rows]
    fig, ax = plt.subplots(figsize=(min(max(6.0, 0.12 * len(rows)), 14.0), 4))
    ax.semilogy(range(len(rows)), errs, marker="o", markersize=3, linewidth=1, label="max relative error")
    over = [i for i, r in enumerate(rows) if r["over"]]
    if over:
        ax.semilogy(over, [errs[i] for i in over], "o", color="tab:red", markersize=5, label="over tolerance")
    ax.axhline(report["tolerance"], color="tab:red", linestyle="--", linewidth=1,
               label=f"tolerance {report['tolerance']:g}")
    ax.set_xlabel("layer (in the order klayers runs them)")
    ax.set_ylabel("max |klayers - Keras| / max |Keras|")
    mode = "isolated" if report["isolate"] else "propagated"
    ax.set_title(f"{os.path.basename(str(report['model']))}: per-layer error ({mode})")
    if len(rows) <= 40:
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r["name"] for r in rows], rotation=70, ha="right", fontsize=7)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
