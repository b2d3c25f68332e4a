"""Every keras.applications model at full size, random weights: recorded by real Keras, checked
by klayers. Not run by CI (the files are large: hundreds of MB per model for the big ones); the
reduced models CI replays are the ``applications_zoo`` family.

Record, in a TensorFlow virtualenv (tf-keras when importable, else Keras 3; ``--keras3`` /
``--tf-keras`` choose), every model or those matching the patterns given::

    /work/venvs/tf/bin/python conformance/record_zoo_full.py /tmp/zoo                   # tf-keras, all
    /work/venvs/tf/bin/python conformance/record_zoo_full.py /tmp/zoo ResNet50 'Incep*'
    KERAS_BACKEND=tensorflow /work/venvs/k3/bin/python conformance/record_zoo_full.py --keras3 /tmp/zoo Xception
    /work/venvs/tf/bin/python conformance/record_zoo_full.py --list                     # the names

Each model: built by its ``keras.applications`` constructor (``weights=None``, default input
size, the top with ``classifier_activation=None`` so that logits are compared), weights
randomized as the ``applications_zoo`` family does (kernels N(0, 1/fan_in), BatchNorm moving
statistics measured on a calibration batch), inputs of batch 2 passed through the model's own
``preprocess_input`` (0..255 pixels for the models that preprocess for themselves), Keras's
outputs computed, then saved to ``DIR/<keras2|keras3>/<Model>.h5|.keras`` with ``<Model>.npz``
(``x``, ``y``) and an entry in ``DIR/<dialect>/index.json``.

Check, with the klayers Python (no TensorFlow)::

    python conformance/record_zoo_full.py --check /tmp/zoo [--tol 1e-4]

loads each recorded file, predicts, and prints a table: model, dialect, the largest error
relative to the output's magnitude (``max|klayers - Keras| / max(1, max|Keras|)``, the measure
of the conformance replays), ok. The default tolerance is 1e-4, five times the replays' 2e-5:
a full-size network (ResNet152, 150+ layers at 224x224) adds more float32 rounding than the
small models CI replays. The exit status is 1 when a model fails or errs.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import os
import sys
import time
import zlib
from typing import Any, Dict, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


# -- recording (TensorFlow) ------------------------------------------------------------------------
def _keras(keras3: Optional[bool]) -> Any:
    if not keras3:
        try:
            import tf_keras

            return tf_keras
        except ImportError:
            if keras3 is False:
                raise
    import keras

    return keras


def _dialect(keras: Any) -> str:
    return "keras2" if keras.__name__ == "tf_keras" else "keras3"


def constructors(keras: Any) -> Dict[str, Any]:
    """``{name: constructor}`` of every model the Keras ships in ``keras.applications``."""
    out = {}
    for name in dir(keras.applications):
        fn = getattr(keras.applications, name)
        if name[:1].isupper() and callable(fn) and ".applications." in getattr(fn, "__module__", ""):
            out[name] = fn
    return dict(sorted(out.items()))


def record(directory: str, patterns: List[str], keras3: Optional[bool]) -> None:
    keras = _keras(keras3)
    sys.path.insert(0, os.path.join(HERE, "cases"))
    from applications_zoo import randomize

    dialect = _dialect(keras)
    out_dir = os.path.join(directory, dialect)
    os.makedirs(out_dir, exist_ok=True)
    index_path = os.path.join(out_dir, "index.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else {}
    for name, ctor in constructors(keras).items():
        if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        t0 = time.time()
        keras.backend.clear_session()
        seed = zlib.crc32(name.encode())
        keras.utils.set_random_seed(seed % 2**31)
        rng = np.random.default_rng(seed)
        model = ctor(weights=None, classifier_activation=None)
        shape = tuple(int(d) for d in model.input_shape[1:])
        preprocess = importlib.import_module(ctor.__module__).preprocess_input

        def inputs(n: int, shape=shape, preprocess=preprocess, rng=rng) -> np.ndarray:
            return np.asarray(preprocess(rng.uniform(0, 255, (n,) + shape).astype("float32"))).astype("float32")

        randomize(model, rng, inputs(4))
        x = inputs(2)
        y = np.asarray(model.predict(x, verbose=0))
        spread = float(np.max(np.std(y, axis=0))) / max(float(np.max(np.abs(y))), 1e-12)
        filename = name + (".h5" if dialect == "keras2" else ".keras")
        if dialect == "keras2":
            model.save(os.path.join(out_dir, filename), save_format="h5")
        else:
            model.save(os.path.join(out_dir, filename))
        np.savez(os.path.join(out_dir, name + ".npz"), x=x, y=y)
        index[name] = {"file": filename, "keras": keras.__version__, "params": int(model.count_params()),
                       "input_shape": list(shape), "spread": spread}
        with open(index_path, "w") as f:
            json.dump(index, f, indent=1, sort_keys=True)
        print(f"{dialect}/{name}: {model.count_params()} weights, input {shape}, output spread {spread:.3g}, "
              f"{time.time() - t0:.0f}s", flush=True)


# -- checking (klayers) ----------------------------------------------------------------------------
def check(directory: str, patterns: List[str], tol: float) -> int:
    from klayers.models import load_model

    rows = []
    for dialect in ("keras2", "keras3"):
        index_path = os.path.join(directory, dialect, "index.json")
        if not os.path.exists(index_path):
            continue
        for name, entry in sorted(json.load(open(index_path)).items()):
            if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                continue
            t0 = time.time()
            try:
                data = np.load(os.path.join(directory, dialect, name + ".npz"))
                got = load_model(os.path.join(directory, dialect, entry["file"])).predict(data["x"], verbose=0)
                want = data["y"]
                if got.shape != want.shape:
                    raise ValueError(f"shape {got.shape}, Keras {want.shape}")
                err = float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))
                rows.append((name, dialect, f"{err:.2e}", "ok" if err <= tol else "FAIL", f"{time.time() - t0:.0f}s"))
            except Exception as e:  # noqa: BLE001 - reported in the table
                rows.append((name, dialect, f"{type(e).__name__}: {str(e)[:60]}", "ERROR", f"{time.time() - t0:.0f}s"))
            print("  ".join(rows[-1]), file=sys.stderr, flush=True)
    header = ("model", "dialect", "max rel error", "ok", "time")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths)] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0 if rows and all(r[3] == "ok" for r in rows) else 1


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", help="where the models go (recording) or are (--check)")
    parser.add_argument("patterns", nargs="*", help="model names or shell patterns (default: every model)")
    parser.add_argument("--check", action="store_true", help="check DIR's models with klayers")
    parser.add_argument("--list", action="store_true", help="list the models this Keras ships")
    parser.add_argument("--tol", type=float, default=1e-4, help="--check's tolerance (default 1e-4)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--keras3", dest="keras3", action="store_const", const=True, help="record with Keras 3")
    which.add_argument("--tf-keras", dest="keras3", action="store_const", const=False, help="record with tf-keras")
    args = parser.parse_args(argv)
    if args.list:
        keras = _keras(args.keras3)
        print(f"{_dialect(keras)} ({keras.__name__} {keras.__version__}):", " ".join(constructors(keras)))
        return 0
    if not args.directory:
        parser.error("a directory is needed")
    if args.check:
        sys.path.insert(0, os.path.dirname(HERE))
        return check(args.directory, args.patterns, args.tol)
    record(args.directory, args.patterns, args.keras3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
