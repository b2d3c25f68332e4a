"""Batch inference over Dask arrays: lazy ``predict`` when one machine is not enough.

``klayers.dask.predict(model, x)`` (and ``model.predict(x)`` for a ``dask.array.Array``) maps the
model over the chunks of ``x`` along the batch axis and returns lazy Dask arrays whose shape,
chunks and dtype are known before anything runs. The model is one node of the task graph, so on a
``dask.distributed`` cluster its weights travel to each worker once, not once per chunk; given a
model *file path* instead, each worker process loads the model itself (once) and nothing heavy
travels at all.

Needs the ``dask`` extra: ``pip install "klayers[dask]"``.
"""

from __future__ import annotations

import operator
import os
import threading
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError('klayers.dask needs Dask: pip install "klayers[dask]" (dask[array] and distributed).') from e

from klayers import models
from klayers.ops.threads import get_num_threads, set_num_threads

__all__ = ["is_dask_collection", "npy_array", "predict", "predict_npy_to_npy"]

_CACHE_LOCK = threading.Lock()
_MODEL_CACHE: Dict[Tuple[str, float, int], Any] = {}


def is_dask_collection(x: Any) -> bool:
    """True for a Dask array, or a list/tuple/dict holding one."""
    if isinstance(x, (list, tuple)):
        return any(is_dask_collection(v) for v in x)
    if isinstance(x, dict):
        return any(is_dask_collection(v) for v in x.values())
    return isinstance(x, da.Array)


def _load_model_cached(path: str, custom_objects: Optional[Dict[str, Any]], safe_mode: bool) -> Any:
    """One model per (file, mtime) per worker process."""
    key = (os.path.abspath(path), os.path.getmtime(path), id(custom_objects) if custom_objects else 0)
    with _CACHE_LOCK:
        model = _MODEL_CACHE.get(key)
        if model is None:
            model = models.load_model(path, custom_objects=custom_objects, safe_mode=safe_mode)
            _MODEL_CACHE[key] = model
        return model


def _predict_block(model: Any, blocks: List[np.ndarray], batch_size: Optional[int], threads: Optional[int],
                   index: int, start: int, custom_objects: Optional[Dict[str, Any]], safe_mode: bool) -> Tuple[np.ndarray, ...]:
    """Run on a worker: predictions of one chunk, as a tuple (one array per model output)."""
    if threads is not None and get_num_threads() != threads:
        set_num_threads(threads)
    if isinstance(model, str):
        model = _load_model_cached(model, custom_objects, safe_mode)
    stop = start + (blocks[0].shape[0] if blocks else 0)
    try:
        out = model.predict(blocks if len(blocks) > 1 else blocks[0],
                            batch_size=batch_size or max(1, blocks[0].shape[0]), verbose=0)
    except (ValueError, TypeError) as e:
        raise type(e)(f"klayers.dask.predict: chunk {index} (samples {start}:{stop}): {e}") from e
    outs = out if isinstance(out, list) else [out]
    return tuple(outs)


def _normalize_inputs(model: Any, x: Any) -> List[da.Array]:
    if isinstance(x, dict):
        names = getattr(model, "input_names", None) or sorted(x)
        missing = [n for n in names if n not in x]
        if missing:
            raise ValueError(f"klayers.dask.predict: missing input(s) {missing}; inputs are named {names}.")
        xs = [x[n] for n in names]
    elif isinstance(x, (list, tuple)):
        xs = list(x)
    else:
        xs = [x]
    arrays = []
    for i, a in enumerate(xs):
        if not isinstance(a, da.Array):
            a = da.from_array(np.asarray(a), chunks=(len(a),) + np.shape(a)[1:])
        if a.ndim == 0:
            raise ValueError(f"klayers.dask.predict: input {i} is a scalar; expected a batch of samples.")
        # chunks only along the batch axis: each block holds whole samples
        a = a.rechunk({ax: -1 for ax in range(1, a.ndim)})
        arrays.append(a)
    first = arrays[0]
    for i, a in enumerate(arrays[1:], start=1):
        if a.shape[0] != first.shape[0]:
            raise ValueError(
                f"klayers.dask.predict: all inputs must have the same number of samples; input 0 has "
                f"{first.shape[0]}, input {i} has {a.shape[0]}."
            )
        if a.chunks[0] != first.chunks[0]:
            arrays[i] = a.rechunk({0: first.chunks[0]})
    return arrays


def _output_specs(model: Any, arrays: Sequence[da.Array]) -> List[Tuple[Tuple[Optional[int], ...], np.dtype]]:
    shapes = [(None,) + tuple(a.shape[1:]) for a in arrays]
    out = model.compute_output_shape(shapes[0] if len(shapes) == 1 else shapes)
    out_shapes = [out] if isinstance(out, tuple) else list(out)
    dtypes = [np.dtype(t.dtype) for t in model.outputs] if getattr(model, "outputs", None) else [np.dtype(model.dtype)] * len(out_shapes)
    for s in out_shapes:
        if any(d is None for d in s[1:]):
            raise ValueError(f"klayers.dask.predict: the model's output shape {s} is not fully known; give inputs with static shapes.")
    return list(zip(out_shapes, dtypes))


def predict(model_or_path: Union[Any, str, os.PathLike], x: Any, batch_size: Optional[int] = None,
            threads_per_worker: Optional[int] = None, custom_objects: Optional[Dict[str, Any]] = None,
            safe_mode: bool = True) -> Union[da.Array, List[da.Array]]:
    """Lazy predictions of ``model_or_path`` over ``x``.

    Args:
        model_or_path: a klayers model (it becomes one node of the graph: sent once per worker), or
            the path of a model file that every worker loads itself (once per process).
        x: a ``dask.array.Array`` chunked along the batch axis, or a list / dict of them for a
            multi-input model (their batch chunks are aligned to the first input's).
        batch_size: the batch size inside each chunk (default: the whole chunk).
        threads_per_worker: compute threads on each worker (``klayers.set_num_threads`` there), so
            several workers on one machine do not oversubscribe it.
        custom_objects, safe_mode: as in ``klayers.models.load_model`` (path form only).

    Returns:
        One Dask array per model output (a list for several), chunked like ``x`` along the batch
        axis, with the shape and dtype known without computing.

    Raises:
        ValueError: inputs of different lengths or shapes the model does not accept (raised when
            the failing chunk runs, naming the chunk).
    """
    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        local = models.load_model(path, custom_objects=custom_objects, safe_mode=safe_mode)  # shapes, and fail early
        model_ref: Any = path
        model_key: Any = path
        deps: List[Any] = []
    else:
        local = model_or_path
        holder = dask.delayed(model_or_path, pure=True, name=f"klayers-model-{tokenize(id(model_or_path), uuid.uuid4().hex)}")
        model_ref = holder.key
        model_key = holder.key
        deps = [holder]
    if getattr(local, "stateful", False) or any(getattr(layer, "stateful", False) for layer in getattr(local, "layers", [])):
        raise ValueError("klayers.dask.predict: stateful models carry states from one batch to the next and cannot be split across workers.")
    arrays = _normalize_inputs(local, x)
    specs = _output_specs(local, arrays)
    token = tokenize(model_key, [a.name for a in arrays], batch_size, threads_per_worker)
    run_name = f"klayers-predict-{token}"
    dsk: Dict[Any, Any] = {}
    starts = np.concatenate([[0], np.cumsum(arrays[0].chunks[0])[:-1]]).astype(int)
    for i in range(len(arrays[0].chunks[0])):
        blocks = [(a.name, i) + (0,) * (a.ndim - 1) for a in arrays]
        dsk[(run_name, i)] = (_predict_block, model_ref, blocks, batch_size, threads_per_worker, i,
                              int(starts[i]), custom_objects, safe_mode)
    results = []
    for j, (shape, dtype) in enumerate(specs):
        out_name = f"klayers-predict-out{j}-{token}"
        layer = dict(dsk)
        for i in range(len(arrays[0].chunks[0])):
            layer[(out_name, i) + (0,) * (len(shape) - 1)] = (operator.getitem, (run_name, i), j)
        graph = HighLevelGraph.from_collections(out_name, layer, dependencies=list(arrays) + deps)
        chunks = (arrays[0].chunks[0],) + tuple((d,) for d in shape[1:])
        results.append(da.Array(graph, out_name, chunks, dtype=dtype))
    n_outputs = len(getattr(local, "outputs", None) or [0])
    return results[0] if n_outputs == 1 and len(results) == 1 else results


def _read_rows(path: str, start: int, stop: int) -> np.ndarray:
    """Run on a worker: rows ``start:stop`` of a ``.npy`` file, read through a memory map."""
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def npy_array(path: str, chunk_size: int) -> da.Array:
    """A Dask array over a ``.npy`` file whose chunks (``chunk_size`` samples each) are read by the
    workers themselves through a memory map: nothing of the file passes through the client.
    The path must be readable by every worker (a local cluster, or a shared filesystem)."""
    header = np.load(path, mmap_mode="r")
    n = header.shape[0]
    token = tokenize(os.path.abspath(path), os.path.getmtime(path), chunk_size)
    name = f"klayers-npy-{token}"
    bounds = [(s, min(n, s + chunk_size)) for s in range(0, n, chunk_size)] or [(0, 0)]
    dsk = {(name, i) + (0,) * (header.ndim - 1): (_read_rows, os.path.abspath(path), s, e) for i, (s, e) in enumerate(bounds)}
    chunks = (tuple(e - s for s, e in bounds),) + tuple((d,) for d in header.shape[1:])
    return da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=[]), name, chunks, dtype=header.dtype)


def predict_npy_to_npy(client: Any, model_path: str, input_path: str, output_paths: Sequence[str],
                       chunk_size: int = 1024, batch_size: Optional[int] = None,
                       threads_per_worker: Optional[int] = None, safe_mode: bool = True) -> int:
    """Stream a ``.npy`` input through the cluster of ``client`` into ``.npy`` outputs (one per
    model output), chunk by chunk: neither the input nor the outputs are ever whole in the
    client's memory (outputs are written into memory-mapped files as chunks arrive).

    Returns the number of samples written. Raises ValueError naming a failing chunk.
    """
    from distributed import as_completed

    model = models.load_model(model_path, safe_mode=safe_mode)
    if len(model.inputs) != 1:
        raise ValueError(f"Streaming from one .npy file needs a single-input model; {model_path} has {len(model.inputs)} inputs.")
    x = npy_array(input_path, chunk_size)
    outs = predict(model_path, x, batch_size=batch_size, threads_per_worker=threads_per_worker, safe_mode=safe_mode)
    outs = outs if isinstance(outs, list) else [outs]
    if len(outs) != len(output_paths):
        raise ValueError(f"The model has {len(outs)} outputs; give as many output paths (got {len(output_paths)}).")
    targets = [np.lib.format.open_memmap(p, mode="w+", dtype=o.dtype, shape=o.shape) for p, o in zip(output_paths, outs)]
    starts = np.concatenate([[0], np.cumsum(x.chunks[0])[:-1]]).astype(int)
    futures = {}
    for j, out in enumerate(outs):
        for i, block in enumerate(out.to_delayed().ravel()):
            futures[client.compute(block)] = (j, i)
    for future in as_completed(list(futures)):
        j, i = futures.pop(future)
        block = future.result()
        targets[j][starts[i]:starts[i] + block.shape[0]] = block
        future.release()
    for t in targets:
        t.flush()
    return int(x.shape[0])
