"""The round trip klayers -> file -> real Keras, a mode of the recorder (``record.py --roundtrip``):
files klayers writes load in tf-keras and Keras 3 and predict what klayers predicts.

    python conformance/record.py --roundtrip            # write with klayers, check in both venvs
    /work/venvs/tf/bin/python conformance/record.py --roundtrip-check DIR keras2
    KERAS_BACKEND=tensorflow /work/venvs/k3/bin/python conformance/record.py --roundtrip-check DIR keras3

:func:`write` loads each model recorded under ``references/<dialect>/files`` with klayers and
saves it as ``.h5`` + ``.w.h5`` (legacy, for tf-keras) and ``.keras`` + ``.weights.h5`` (Keras 3),
with klayers's predictions: the only place of the recorder that imports klayers, and it must, since
klayers's writers are what is checked. :func:`check` loads those files with the real Keras (the
weights files into a model loaded from the matching model file whose weights were zeroed first)
and compares. :func:`run` does both and writes ``references/files_roundtrip.json`` (the evidence;
CI has no TensorFlow and does not run this). The venvs come from ``$KLAYERS_TF_PYTHON`` /
``$KLAYERS_K3_PYTHON`` (default ``/work/venvs/{tf,k3}/bin/python``).

A model klayers refuses to write in a format (Keras 2's ``hard_sigmoid`` as ``.keras``, Keras 3's
as ``.h5``: the name means other maths there) is listed as refused, which is the expected result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REFS = os.path.join(HERE, "references")
TOL = 1e-5


def _flat(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def write(out_dir: str) -> None:
    """klayers loads every recorded model file and saves it in each format it can write, into
    ``out_dir``, with its predictions and an ``index.json`` (what was written, what refused)."""
    sys.path.insert(0, os.path.dirname(HERE))
    import warnings

    from klayers.models import load_model

    warnings.simplefilter("ignore")
    index = {}
    for dialect in ("keras2", "keras3"):
        base = os.path.join(REFS, dialect, "files")
        cases = json.load(open(os.path.join(REFS, dialect, "files.json")))["cases"]
        for name, meta in sorted(cases.items()):
            source = meta["files"].get("model_keras") or meta["files"]["model_h5"]
            model = load_model(os.path.join(base, source), safe_mode=not meta["unsafe"])
            with np.load(os.path.join(base, name + ".npz")) as z:
                xs = [z[f"x{i}"] for i in range(meta["n_inputs"])]
            ys = _flat(model.predict(xs if len(xs) > 1 else xs[0], verbose=0))
            stem = f"{dialect}_{name}"
            np.savez(os.path.join(out_dir, stem + ".npz"), **{f"x{i}": x for i, x in enumerate(xs)},
                     **{f"y{i}": y for i, y in enumerate(ys)})
            entry = {"n_inputs": len(xs), "n_outputs": len(ys), "unsafe": meta["unsafe"], "files": {}, "refused": {}}
            for key, ext, fn in (("model_h5", ".h5", model.save), ("weights_h5", ".w.h5", model.save_weights),
                                 ("model_keras", ".keras", model.save), ("weights_keras", ".weights.h5", model.save_weights)):
                try:
                    fn(os.path.join(out_dir, stem + ext))
                    entry["files"][key] = stem + ext
                except ValueError as e:
                    entry["refused"][key] = str(e)
            index[stem] = entry
    json.dump(index, open(os.path.join(out_dir, "index.json"), "w"), indent=1)
    print(f"klayers wrote {sum(len(e['files']) for e in index.values())} files for {len(index)} models")


def check(out_dir: str, which: str) -> dict:
    """Load klayers's files in ``out_dir`` with real Keras (``which``: "keras2" for tf-keras,
    "keras3"), compare with klayers's predictions; ``{"keras_version", "cases": {stem: {file: result}}}``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if which == "keras2":
        import tf_keras as keras

        load = keras.models.load_model
        model_key, weight_keys = "model_h5", ("weights_h5", "weights_keras")
        version = keras.__version__
    else:
        import keras

        load = keras.saving.load_model
        model_key, weight_keys = "model_keras", ("weights_keras",)
        version = keras.__version__
    index = json.load(open(os.path.join(out_dir, "index.json")))
    results = {"keras_version": version, "cases": {}}
    for stem, entry in sorted(index.items()):
        with np.load(os.path.join(out_dir, stem + ".npz")) as z:
            xs = [z[f"x{i}"] for i in range(entry["n_inputs"])]
            ys = [z[f"y{i}"] for i in range(entry["n_outputs"])]
        res = {}
        if model_key not in entry["files"]:
            res[model_key] = {"status": "refused by klayers", "reason": entry["refused"].get(model_key)}
            results["cases"][stem] = res
            continue

        def err(model, xs=xs, ys=ys):
            out = _flat(model.predict(xs if len(xs) > 1 else xs[0], verbose=0))
            return max(float(np.max(np.abs(np.asarray(a) - b))) for a, b in zip(out, ys))

        try:
            kwargs = {"compile": False}
            if entry["unsafe"]:
                kwargs["safe_mode"] = False
            model = load(os.path.join(out_dir, entry["files"][model_key]), **kwargs)
            if any(type(layer).__name__.startswith("CuDNN") for layer in model.layers):
                # CuDNN layers cannot run on a CPU: tf-keras's own conversion into the plain
                # layers (loading the .h5 into a twin) gives the predictions; the weight files
                # are checked by loading them into the CuDNN model and comparing the values.
                reference = model.get_weights()
                spec = model.to_json().replace('"CuDNNLSTM"', '"LSTM"').replace('"CuDNNGRU"', '"GRU"')
                twin = keras.models.model_from_json(spec)
                twin.load_weights(os.path.join(out_dir, entry["files"][model_key]))
                e = err(twin)
                res[model_key] = {"status": "ok" if e <= TOL else "MISMATCH", "max_abs_err": e, "via": "CPU twin"}
                for wk in weight_keys:
                    model.set_weights([np.zeros_like(w) for w in reference])
                    model.load_weights(os.path.join(out_dir, entry["files"][wk]))
                    e = max(float(np.max(np.abs(a - b))) for a, b in zip(model.get_weights(), reference))
                    res[wk] = {"status": "ok" if e == 0 else "MISMATCH", "max_abs_err": e, "via": "weights compared"}
                results["cases"][stem] = res
                continue
            e = err(model)
            res[model_key] = {"status": "ok" if e <= TOL else "MISMATCH", "max_abs_err": e}
            for wk in weight_keys:
                if wk not in entry["files"]:
                    continue
                model.set_weights([np.zeros_like(w) for w in model.get_weights()])
                model.load_weights(os.path.join(out_dir, entry["files"][wk]))
                e = err(model)
                res[wk] = {"status": "ok" if e <= TOL else "MISMATCH", "max_abs_err": e}
        except Exception as ex:  # noqa: BLE001 - the report lists what Keras said
            res[model_key] = {"status": "FAILED", "error": f"{type(ex).__name__}: {str(ex)[:500]}"}
        results["cases"][stem] = res
    return results


def run(record_py: str) -> int:
    """Write every fixture with klayers, check the files in both Kerases (``record_py
    --roundtrip-check`` in each venv), print one line per file and write the report; returns the
    exit status (1 when a file failed or mismatched)."""
    from conformance.record import Recorder

    out_dir = tempfile.mkdtemp(prefix="klayers-roundtrip-")
    write(out_dir)
    report = {}
    pythons = {"keras2": os.environ.get("KLAYERS_TF_PYTHON", "/work/venvs/tf/bin/python"),
               "keras3": os.environ.get("KLAYERS_K3_PYTHON", "/work/venvs/k3/bin/python")}
    for which, python in pythons.items():
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run([python, os.path.abspath(record_py), "--roundtrip-check", out_dir, which],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"{which} check failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        report[which] = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = 0
    for which, res in report.items():
        for stem, files in res["cases"].items():
            for key, r in files.items():
                line = f"{which:7s} {stem:40s} {key:14s} {r['status']}"
                if "max_abs_err" in r:
                    line += f"  max|err|={r['max_abs_err']:.2e}"
                print(line)
                bad += r["status"] in ("MISMATCH", "FAILED")
    Recorder.report("files_roundtrip", report)
    print(f"{'all files load in real Keras and match' if not bad else f'{bad} FAILURES'}; report in references/files_roundtrip.json")
    return 1 if bad else 0
