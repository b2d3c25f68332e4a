"""The ``klayers`` command.

    klayers info              build and runtime facts (version, OpenMP, threads, BLAS)
    klayers demo [--threads N] [--batch B]
                              load the real Keras models shipped with klayers, compare with
                              Keras's recorded predictions, then time a small model end to end
    klayers summary MODEL     the model's layers, shapes and parameter counts (model.summary())
    klayers predict MODEL --input x.npy|x.npz [--output y.npz|y.npy] [--batch-size N] [--threads N]
    klayers verify MODEL [--input x.npz] [--keras-python PYTHON] [--rtol R]
                   [--per-layer [--isolate] [--json out.json] [--plot out.png]]
                              run the same file in tf-keras or Keras 3 and report the errors,
                              of the model's outputs or of every layer's
    klayers profile MODEL [--batch-size N] [--threads N] [--vs-ort PYTHON] [--plot out.png] [--json out.json]
                              time every step of the inference plan, against the machine's ceilings
    klayers bench [NAME ...] [--vs-keras] [--plot out.png]
                              time each layer family beside tf-keras and ONNX Runtime (python -m klayers.bench)

A user's mistake (missing file, wrong input shape, unknown layer) prints one sentence and exits
with status 2; it never shows a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import numpy as np

from klayers import layers, models
from klayers._version import __version__
from klayers.backend import set_random_seed
from klayers.engine import Input, Model
from klayers.inspect import verify as verify_lib
from klayers.ops.threads import blas_controller, get_num_threads, openmp_enabled, set_num_threads

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


class UsageError(Exception):
    """A mistake of the user: reported as one sentence, exit status 2."""


def _info() -> int:
    print(f"klayers {__version__}")
    print(f"numpy {np.__version__}")
    print(f"OpenMP kernels: {'yes' if openmp_enabled() else 'no (serial build)'}")
    print(f"threads: {get_num_threads()}")
    for lib in blas_controller().info():
        print(f"{lib.get('user_api')}: {lib.get('internal_api')} {lib.get('version') or ''} ({lib.get('prefix')}), {lib.get('num_threads')} threads")
    return 0


def _flat(x: Any) -> List[Any]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _demo_real_models() -> bool:
    """Load the shipped Keras files, predict, print the largest difference from Keras."""
    ok = True
    shipped = [("demo_cnn.h5", "tf-keras 2.21 .h5"), ("demo_text.keras", "Keras 3.15 .keras")]
    for name, what in shipped:
        path = os.path.join(DATA, name)
        ref = os.path.join(DATA, name.split(".")[0] + ".npz")
        if not (os.path.exists(path) and os.path.exists(ref)):
            print(f"{name}: not shipped with this install (skipped)")
            continue
        model = models.load_model(path)
        with np.load(ref, allow_pickle=False) as z:
            xs = [z[k] for k in sorted(z.files) if k.startswith("x")]
            ys = [z[k] for k in sorted(z.files) if k.startswith("y")]
        x = xs if len(xs) > 1 else xs[0]
        model.predict(x, verbose=0)
        start = time.perf_counter()
        out = _flat(model.predict(x, verbose=0))
        elapsed = time.perf_counter() - start
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(out, ys))
        good = diff <= 1e-4
        ok &= good
        print(f"{name} ({what}, {model.count_params()} parameters): batch of {len(_flat(x)[0])} in "
              f"{elapsed * 1e3:.2f} ms; largest difference from Keras's predictions {diff:.2e} "
              f"{'(ok)' if good else '(TOO LARGE)'}")
    return ok


def _demo(threads: Optional[int], batch: int) -> int:
    if threads:
        set_num_threads(threads)
    real_ok = _demo_real_models()
    set_random_seed(0)
    inputs = Input((64,), name="features")
    hidden = layers.Dense(256, activation="relu", name="hidden")(inputs)
    hidden = layers.Dense(256, activation="gelu", name="hidden_2")(hidden)
    outputs = layers.Dense(10, activation="softmax", name="probabilities")(hidden)
    model = Model(inputs, outputs, name="demo_mlp")
    model.summary()
    x = np.random.default_rng(0).standard_normal((batch, 64)).astype("float32")
    model.predict(x[:8], verbose=0)
    start = time.perf_counter()
    y = model.predict(x, batch_size=256, verbose=0)
    elapsed = time.perf_counter() - start
    print(f"predict: {batch} samples in {elapsed * 1e3:.1f} ms ({batch / elapsed:,.0f} samples/s, {get_num_threads()} threads)")
    print(f"first row: {np.array2string(y[0], precision=3)} (sums to {y[0].sum():.4f})")
    again = models.model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    same = np.allclose(again.predict(x[:64], verbose=0), y[:64])
    print(f"config round trip reproduces predictions: {same}")
    return 0 if real_ok and same and np.allclose(y.sum(axis=1), 1, atol=1e-5) else 1


# -- model commands ------------------------------------------------------------------------------
def _load(path: str, unsafe: bool) -> Any:
    return models.load_model(path, safe_mode=not unsafe)


def _read_inputs(path: str, model: Any) -> Any:
    """Arrays from .npy (one input) or .npz (by input name, or in order)."""
    if not os.path.exists(path):
        raise UsageError(f"No such input file: '{path}'.")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise UsageError(f"'{path}' is not a NumPy .npy/.npz file ({e}).") from e
    if isinstance(data, np.ndarray):
        arrays = [data]
    else:
        with data:
            names = list(data.files)
            if all(n in names for n in model.input_names):
                arrays = [data[n] for n in model.input_names]
            elif len(names) == len(model.inputs):
                arrays = [data[n] for n in sorted(names, key=_natural)]
            else:
                raise UsageError(
                    f"'{path}' holds arrays {names}; the model has {len(model.inputs)} input(s) named "
                    f"{model.input_names}. Name the arrays after the inputs."
                )
    if len(arrays) != len(model.inputs):
        raise UsageError(f"The model has {len(model.inputs)} inputs ({model.input_names}); '{path}' holds one array. Use an .npz file.")
    for arr, t, name in zip(arrays, model.inputs, model.input_names):
        want = tuple(t.shape)
        if arr.ndim != len(want) or any(w is not None and w != d for w, d in zip(want, arr.shape)):
            raise UsageError(f"Input '{name}' must have shape {_shape_str(want)}; '{path}' holds shape {arr.shape}.")
    return arrays if len(arrays) > 1 else arrays[0]


def _natural(name: str) -> Any:
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else -1, name)


def _shape_str(shape: Any) -> str:
    return "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"


def _summary(args: argparse.Namespace) -> int:
    _load(args.model, args.unsafe).summary()
    return 0


def _predict(args: argparse.Namespace) -> int:
    if not args.threads:
        return _predict_run(args)
    set_num_threads(args.threads)
    try:
        return _predict_run(args)
    finally:
        set_num_threads(None)


def _predict_run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be a positive integer. Received {args.batch_size}.")
    if args.dask:
        return _predict_dask(args)
    model = _load(args.model, args.unsafe)
    x = _read_inputs(args.input, model)
    start = time.perf_counter()
    y = _flat(model.predict(x, batch_size=args.batch_size, verbose="auto"))
    elapsed = time.perf_counter() - start
    n = len(_flat(x)[0])
    names = list(model.output_names)
    if args.output:
        if args.output.endswith(".npy"):
            if len(y) != 1:
                raise UsageError(f"The model has {len(y)} outputs; write them to an .npz file.")
            np.save(args.output, y[0])
        else:
            np.savez(args.output, **{name: arr for name, arr in zip(names, y)})
        print(f"{n} samples in {elapsed:.3f} s; wrote {', '.join(names)} to {args.output}")
    else:
        for name, arr in zip(names, y):
            print(f"{name}: shape {arr.shape}, first row {np.array2string(np.asarray(arr[0]).ravel()[:8], precision=4)}")
        print(f"{n} samples in {elapsed:.3f} s")
    return 0


def _dask_client(address: str, threads: Optional[int]) -> Any:
    """``local:N`` starts a local cluster of N single-threaded worker processes; anything else is a
    scheduler address (``tcp://host:8786``)."""
    try:
        import distributed
    except ImportError as e:
        raise UsageError('--dask needs Dask: pip install "klayers[dask]"') from e
    if address.startswith("local:"):
        try:
            n = int(address.split(":", 1)[1])
        except ValueError as e:
            raise UsageError(f"--dask local:N needs a number of workers. Received {address!r}.") from e
        if n < 1:
            raise UsageError(f"--dask local:N needs at least one worker. Received {address!r}.")
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=threads or 1, processes=True,
                                           dashboard_address=":0", silence_logs=40)
        return distributed.Client(cluster), cluster
    return distributed.Client(address), None


def _predict_dask(args: argparse.Namespace) -> int:
    """Stream a memory-mapped .npy through a Dask cluster into memory-mapped .npy outputs."""
    from klayers.dask import predict_npy_to_npy

    if not args.input.endswith(".npy") or not os.path.exists(args.input):
        raise UsageError(f"--dask streams one .npy input file; '{args.input}' is not one.")
    model = _load(args.model, args.unsafe)
    names = list(model.output_names)
    if not args.output:
        raise UsageError("--dask writes its results to files: give --output (a .npy, or a folder for several outputs).")
    if len(names) == 1 and args.output.endswith(".npy"):
        paths = [args.output]
    else:
        os.makedirs(args.output, exist_ok=True)
        paths = [os.path.join(args.output, f"{name}.npy") for name in names]
    client, cluster = _dask_client(args.dask, args.threads)
    start = time.perf_counter()
    try:
        n = predict_npy_to_npy(client, args.model, args.input, paths, chunk_size=args.chunk_size,
                               batch_size=args.batch_size, threads_per_worker=args.threads or 1,
                               safe_mode=not args.unsafe)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(f"{n} samples in {time.perf_counter() - start:.3f} s over Dask ({args.dask}); wrote {', '.join(paths)}")
    return 0


def _random_inputs(model: Any, batch: int = 4) -> List[np.ndarray]:
    return verify_lib.random_inputs(model, batch)


def _verify(args: argparse.Namespace) -> int:
    model = _load(args.model, args.unsafe)
    xs = _flat(_read_inputs(args.input, model)) if args.input else _random_inputs(model)
    if args.isolate and not args.per_layer:
        raise UsageError("--isolate compares layer by layer: add --per-layer.")
    if (args.json or args.plot) and not args.per_layer:
        raise UsageError("--json and --plot report layer by layer: add --per-layer.")
    progress = _progress_bar() if args.per_layer else None
    try:
        keras_outputs = verify_lib.keras_layer_outputs(args.model, xs, keras_python=args.keras_python,
                                                       unsafe=args.unsafe, layers=args.per_layer)
    except verify_lib.KerasUnavailable as e:
        print(f"klayers verify: {args.model}: {e}")
        return 2
    except RuntimeError as e:
        print(f"klayers verify: {e}")
        return 1
    module = verify_lib.keras_module(keras_outputs["dialect"])
    if args.per_layer:
        report = verify_lib.compare_layers(model, xs, keras_outputs, isolate=args.isolate, rtol=args.rtol,
                                           progress=progress)
        report["model"] = args.model
        _print_layers(report, f"{module} {keras_outputs['keras']}", len(xs[0]))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
            print(f"wrote {args.json}")
        if args.plot:
            try:
                verify_lib.plot(report, args.plot)
            except ImportError as e:
                raise UsageError(str(e)) from e
            print(f"wrote {args.plot}")
        return 1 if report["first_diverging"] is not None or any(o["over"] for o in report["outputs"]) else 0
    dtype = verify_lib._compute_dtype(model)
    tolerance = args.rtol if args.rtol is not None else verify_lib.default_tolerance(dtype)
    ours = _flat(model.predict(xs if len(xs) > 1 else xs[0], verbose=0))
    worst = 0.0
    print(f"klayers vs {module} {keras_outputs['keras']} on {len(xs[0])} samples "
          f"(tolerance {tolerance:g}{'' if args.rtol is not None else f', from {dtype}'}):")
    for name, a, b in zip(model.output_names, ours, keras_outputs["model_outputs"]):
        abs_err, rel_err = verify_lib.errors(a, b)
        worst = max(worst, rel_err)
        print(f"  {name}: shape {a.shape}, max abs error {abs_err:.3e}, max rel error {rel_err:.3e}")
    good = worst <= tolerance
    print("agree" if good else f"DISAGREE (relative error above {tolerance:g})")
    return 0 if good else 1


def _progress_bar() -> Any:
    """A one-line progress bar on stderr for long comparisons (shown once they take 1 s)."""
    start: List[float] = []

    def show(done: int, total: int) -> None:
        if not start:
            start.append(time.perf_counter())
        if time.perf_counter() - start[0] < 1.0 and (done < total or not shown):
            return
        shown.append(True)
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\rlayers {done}/{total} [{'=' * filled}{'.' * (width - filled)}]")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    shown: List[bool] = []
    return show


def _print_layers(report: Dict[str, Any], keras: str, samples: int) -> None:
    rows = report["layers"]
    mode = "isolated: each layer fed Keras's inputs" if report["isolate"] else "propagated: each side end to end"
    print(f"klayers vs {keras} on {samples} samples, layer by layer ({mode}); tolerance "
          f"{report['tolerance']:g} relative ({report['dtype']}, eps {np.finfo(report['dtype']).eps:.2g})")
    names = [r["name"] + (f" (node {r['node']})" if r["node"] else "") + (f" [{r['output']}]" if r["output"] else "")
             for r in rows]
    wide = max([len(n) for n in names] + [5])
    cls = max([len(r["class"]) for r in rows] + [5])
    shp = max([len(str(tuple(r["shape"]))) for r in rows] + [5])
    print(f"  {'#':>4}  {'layer':<{wide}}  {'class':<{cls}}  {'shape':<{shp}}  {'max abs':>9}  {'max rel':>9}  {'eps':>9}")
    first = report["first_diverging"]
    marked = False
    for i, (name, r) in enumerate(zip(names, rows)):
        mark = ""
        if r["over"]:
            mark = "  <-- first over tolerance" if not marked and r["name"] == first else "  over"
            marked = marked or r["name"] == first
        print(f"  {i:>4}  {name:<{wide}}  {r['class']:<{cls}}  {str(tuple(r['shape'])):<{shp}}  "
              f"{r['max_abs']:9.2e}  {r['max_rel']:9.2e}  {r['eps_units']:9.3g}{mark}")
    for o in report["outputs"]:
        print(f"  model output {o['name']} (predict): max abs {o['max_abs']:.2e}, max rel {o['max_rel']:.2e}"
              f"{'  over' if o['over'] else ''}")
    if report["not_in_keras"]:
        print(f"  not compared (Keras recorded no output): {', '.join(report['not_in_keras'])}")
    over = sum(r["over"] for r in rows)
    if first is None and not any(o["over"] for o in report["outputs"]):
        print(f"agree: {len(rows)} layer outputs within {report['tolerance']:g}")
    else:
        print(f"DISAGREE: {over} of {len(rows)} layer outputs above {report['tolerance']:g}; "
              f"first: {first}")


def _profile(args: argparse.Namespace) -> int:
    from klayers.inspect.profile import format_report, plot_report, profile_model

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be a positive integer. Received {args.batch_size}.")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be a positive integer. Received {args.threads}.")
    if args.repeats < 1:
        raise UsageError(f"--repeats must be a positive integer. Received {args.repeats}.")
    if not os.path.exists(args.model):
        raise UsageError(f"No such file: '{args.model}'.")
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (checked before the minutes of timing)
        except ImportError as e:
            raise UsageError("--plot needs matplotlib (pip install matplotlib).") from e
    x = _read_inputs(args.input, _load(args.model, args.unsafe)) if args.input else None
    report = profile_model(args.model, batch_size=args.batch_size, threads=args.threads, repeats=args.repeats,
                           inputs=x, ort_python=args.vs_ort, safe_mode=not args.unsafe)
    print(format_report(report, top=args.top))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        try:
            plot_report(report, args.plot)
        except ImportError as e:
            raise UsageError("--plot needs matplotlib (pip install matplotlib).") from e
        print(f"wrote {args.plot}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from klayers.bench import choose

    try:
        choose(args.names)  # a name that matches nothing is the user's mistake: say so before starting
    except LookupError as e:
        raise UsageError(str(e)) from e
    if min(args.threads, args.repeats) < 1:
        raise UsageError(f"--threads and --repeats must be positive integers. Received {args.threads} and {args.repeats}.")
    if args.plot:
        _matplotlib()
    python = args.python or sys.executable
    with tempfile.TemporaryDirectory(prefix="klayers-bench-") as tmp:
        result = os.path.join(tmp, "bench.json")
        cmd = [python, "-m", "klayers.bench", "--threads", str(args.threads), "--repeats", str(args.repeats), "--json", result]
        if not args.vs_keras:
            cmd += ["--engines", "klayers"]
        cmd += ["--", *args.names]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_klayers_path(tmp), os.environ.get("PYTHONPATH")])))
        try:
            status = subprocess.run(cmd, env=env).returncode
        except OSError as e:
            raise UsageError(f"cannot run --python {python}: {e.strerror or e}.") from e
        report: Dict[str, Any] = {}
        if os.path.exists(result):
            with open(result) as f:
                report = json.load(f)
    if args.plot and report:
        _plot(report.get("rows", []), args.plot, report.get("ceilings"))
    return status


def _klayers_path(tmp: str) -> str:
    """A PYTHONPATH entry under which any Python imports this very klayers (installed or a checkout):
    a folder in ``tmp`` holding only a link to the package, so that another Python (``--python``)
    does not also pick up this one's site-packages (its NumPy would shadow that Python's own);
    where links cannot be made, the folder that holds the package."""
    package = os.path.dirname(os.path.abspath(__file__))
    folder = os.path.join(tmp, "path")
    try:
        os.makedirs(folder)
        os.symlink(package, os.path.join(folder, "klayers"), target_is_directory=True)
    except OSError:
        return os.path.dirname(package)
    return folder


def _matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise UsageError("--plot needs matplotlib (pip install matplotlib).") from e
    return plt


def _plot(rows: List[Dict[str, Any]], path: str, ceilings: Optional[Dict[str, float]] = None) -> None:
    """A bar per workload: klayers's time over the fastest peer's (tf-keras, ONNX Runtime) where a
    peer ran; else, with the machine's limits measured, klayers's rate as a fraction of them."""
    from klayers.bench.compare import fraction_of_limit

    names, values = [], []
    for row in rows:
        engines = row.get("engines", {})
        mine = engines.get("klayers", {}).get("median_s")
        peers = [v["median_s"] for k, v in engines.items() if not k.startswith("klayers") and v.get("median_s")]
        if mine and peers:
            names.append(row["workload"])
            values.append(mine / min(peers))
    vs_peers = bool(values)
    if not vs_peers and ceilings:
        for row in rows:
            mine = row.get("engines", {}).get("klayers")
            fraction = fraction_of_limit(mine, ceilings, row.get("dtype", "float32")) if mine else None
            if fraction is not None:
                names.append(row["workload"])
                values.append(100 * fraction)
    if not values:
        raise UsageError("--plot needs peers to compare with (run with --vs-keras where TensorFlow is installed) "
                         "or the machine's limits measured in the same run.")
    plt = _matplotlib()
    fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(names)), 5))
    if vs_peers:
        ax.bar(range(len(names)), values, color=["tab:green" if r <= 1 else "tab:red" for r in values])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_ylabel("klayers time / fastest peer")
    else:
        ax.bar(range(len(names)), values, color="tab:blue")
        ax.set_ylabel("% of this machine's limit")
        ax.set_title("klayers's rate against NumPy's matmul (GFLOP/s) or an array copy (GB/s)", fontsize=9)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=70, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="klayers", description="Keras layers on CPUs, without TensorFlow.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="build and runtime facts")
    demo = sub.add_parser("demo", help="load the shipped Keras models and run a small model end to end")
    demo.add_argument("--threads", type=int, default=None)
    demo.add_argument("--batch", type=int, default=4096)
    unsafe = {"action": "store_true", "help": "allow Lambda layers holding Python code (runs code from the file)"}
    summary = sub.add_parser("summary", help="print the model's summary")
    summary.add_argument("model")
    summary.add_argument("--unsafe", **unsafe)
    predict = sub.add_parser("predict", help="run a model on arrays from .npy/.npz")
    predict.add_argument("model")
    predict.add_argument("--input", required=True, help=".npy (one input) or .npz (arrays named after the inputs)")
    predict.add_argument("--output", help=".npz (arrays named after the outputs) or .npy (one output)")
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--threads", type=int, default=None)
    predict.add_argument("--unsafe", **unsafe)
    predict.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster: a scheduler address, or local:N for N local worker processes")
    predict.add_argument("--chunk-size", type=int, default=1024, help="samples per Dask chunk (with --dask)")
    verify = sub.add_parser("verify", help="compare klayers with the Keras that wrote the file")
    verify.add_argument("model")
    verify.add_argument("--input", help=".npy/.npz inputs (default: random inputs of the model's shapes)")
    verify.add_argument("--keras-python", help="a Python with tf-keras / Keras 3 installed (default: this one)")
    verify.add_argument("--rtol", type=float, default=None,
                        help="largest relative error accepted (default: from the model's compute dtype, 1e-4 for float32)")
    verify.add_argument("--per-layer", action="store_true", help="compare every layer's output, not only the model's")
    verify.add_argument("--isolate", action="store_true",
                        help="with --per-layer: feed each layer Keras's own inputs, so an error points at the layer that makes it")
    verify.add_argument("--json", help="with --per-layer: write the report to this .json")
    verify.add_argument("--plot", help="with --per-layer: draw the per-layer error along the model's depth into this .png")
    verify.add_argument("--unsafe", **unsafe)
    profile = sub.add_parser("profile", help="time every step of the model's inference plan")
    profile.add_argument("model")
    profile.add_argument("--batch-size", type=int, default=1)
    profile.add_argument("--threads", type=int, default=None)
    profile.add_argument("--repeats", type=int, default=20, help="timed calls (after 3 warm-up calls); medians over them")
    profile.add_argument("--input", help=".npy/.npz inputs (default: random inputs of the model's shapes)")
    profile.add_argument("--vs-ort", metavar="PYTHON", help="also time the model in ONNX Runtime in this Python "
                         "(with onnxruntime, tf2onnx and the Keras that wrote the file)")
    profile.add_argument("--plot", help="write a bar chart of the costliest steps to this .png")
    profile.add_argument("--json", help="write the report to this .json")
    profile.add_argument("--top", type=int, default=5, help="costliest steps to list after the table")
    profile.add_argument("--unsafe", **unsafe)
    bench = sub.add_parser("bench", help="time layers side by side with tf-keras and ONNX Runtime (python -m klayers.bench)")
    bench.add_argument("names", nargs="*", help="families (dense, conv, pool ...) or workload name patterns (default: all)")
    bench.add_argument("--vs-keras", action="store_true", help="also time tf-keras and ONNX Runtime when installed")
    bench.add_argument("--plot", help="write a bar chart to this .png: klayers / fastest peer, or klayers's rate "
                       "against this machine's limits when no peer ran")
    bench.add_argument("--threads", type=int, default=2)
    bench.add_argument("--repeats", type=int, default=7)
    bench.add_argument("--python", help="the Python to run the benchmark in (one with TensorFlow for --vs-keras); "
                       "it imports this klayers")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``klayers`` console script."""
    args = _parser().parse_args(argv)
    commands = {"summary": _summary, "predict": _predict, "verify": _verify, "profile": _profile, "bench": _bench}
    try:
        if args.command == "info":
            return _info()
        if args.command == "demo":
            return _demo(args.threads, args.batch)
        return commands[args.command](args)
    except (UsageError, FileNotFoundError, FileExistsError, PermissionError, ValueError, TypeError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"klayers {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
