"""Record conformance references from real Keras: the one recorder of klayers's conformance suite.

    /path/to/tf-venv/bin/python conformance/record.py                # every family, tf-keras 2.21
    /path/to/tf-venv/bin/python conformance/record.py activations    # some families
    /path/to/k3-venv/bin/python conformance/record.py --keras3 activations
    python conformance/record.py --roundtrip                         # klayers's files read by real Keras

Each family is a module ``conformance/cases/<family>.py`` with a function
``record(rec: Recorder)`` (tf-keras 2.21) and optionally ``record_keras3(rec: Recorder)``
(Keras 3.15). Cases are specs in code, seeded. A case's arrays go to
``references/<dialect>/<family>/<case>.npz``, files it saves (``rec.path(name)``: model files
written by Keras) next to them, and its JSON (configs, shapes, scalars) into
``references/<dialect>/<family>.json``; ``references/MANIFEST.json`` keeps the versions that
recorded each family and its case count.

The recording modes run in a TensorFlow virtualenv and never import klayers: references come
from Keras alone. ``--roundtrip`` is the one mode that must import klayers, and only in its first
step (``conformance/roundtrip.py``): klayers writes every recorded model file back, then each
Keras (``--roundtrip-check``, run in its own virtualenv) loads those files and compares; the
evidence goes to ``references/files_roundtrip.json`` through :meth:`Recorder.report`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import sys
import tempfile
from typing import Any, Dict, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REFS = os.path.join(HERE, "references")
CASES = os.path.join(HERE, "cases")

#: Extensions of the files a family folder holds (arrays, and model files Keras saved); a family
#: is re-recorded whole, so these are removed before the new ones are moved in.
RECORDED_EXTENSIONS = (".npz", ".h5", ".keras")


def families() -> list:
    """The family modules under ``conformance/cases``, sorted."""
    return sorted(f[:-3] for f in os.listdir(CASES) if f.endswith(".py") and not f.startswith("_"))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


class Recorder:
    """Collects one family's cases in one dialect and writes them.

    ``rec.case(name, arrays={...}, **meta)``: arrays (NumPy) go to ``<case>.npz``; ``meta``
    (JSON-able: configs, shapes, scalars, answers of the node API) into the family JSON.
    ``rec.annotate(name, **meta)`` adds meta to a recorded case; ``rec.path(filename)`` is where a
    case saves a file of its own (a model file), kept with the family's references.

    Nothing reaches ``references/`` before :meth:`write`: files are staged in a temporary folder,
    so a recording that fails half-way leaves the old references whole.
    """

    def __init__(self, family: str, dialect: str, refs: str = REFS):
        self.family = family
        self.dialect = dialect
        self.refs = refs
        self.dir = os.path.join(refs, dialect, family)
        self.cases: Dict[str, Dict[str, Any]] = {}
        self._staging: Optional[str] = None

    def case(self, name: str, arrays: Optional[Dict[str, np.ndarray]] = None, **meta: Any) -> None:
        """Record case ``name``. Raises ValueError on a duplicate name or one that is no file name."""
        if name in self.cases:
            raise ValueError(f"duplicate case {self.family}/{name}")
        if any(c in name for c in "/\\ "):
            raise ValueError(f"case names are file names: {name!r}")
        self.cases[name] = {"meta": _jsonable(meta), "arrays": dict(arrays or {})}

    def annotate(self, name: str, **meta: Any) -> None:
        """Add (or replace) meta entries of the recorded case ``name``."""
        if name not in self.cases:
            raise KeyError(f"no case {self.family}/{name} to annotate")
        self.cases[name]["meta"].update(_jsonable(meta))

    def path(self, filename: str) -> str:
        """Where to save a file of the family (e.g. ``mlp.h5``); it lands in the family's folder
        on :meth:`write`."""
        if os.path.basename(filename) != filename or not filename.endswith(RECORDED_EXTENSIONS[1:]):
            raise ValueError(f"a recorded file is a plain {'/'.join(RECORDED_EXTENSIONS[1:])} file name: {filename!r}")
        if self._staging is None:
            self._staging = tempfile.mkdtemp(prefix=f"klayers-record-{self.family}-")
        return os.path.join(self._staging, filename)

    def write(self, versions: Dict[str, str]) -> None:
        """Replace the family's references (arrays, files, JSON) and its MANIFEST entry."""
        if os.path.isdir(self.dir):
            for f in os.listdir(self.dir):
                if f.endswith(RECORDED_EXTENSIONS):
                    os.remove(os.path.join(self.dir, f))
        os.makedirs(self.dir, exist_ok=True)
        if self._staging is not None:
            for f in sorted(os.listdir(self._staging)):
                shutil.move(os.path.join(self._staging, f), os.path.join(self.dir, f))
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        index = {}
        for name, c in sorted(self.cases.items()):
            if c["arrays"]:
                np.savez_compressed(os.path.join(self.dir, name + ".npz"), **c["arrays"])
            index[name] = dict(c["meta"], arrays=sorted(c["arrays"]))
        with open(os.path.join(self.refs, self.dialect, self.family + ".json"), "w") as f:
            json.dump({"family": self.family, "versions": versions, "cases": index}, f, indent=1, sort_keys=True)
        manifest_path = os.path.join(self.refs, "MANIFEST.json")
        manifest = {}
        if os.path.exists(manifest_path):
            with open(manifest_path) as f:
                manifest = json.load(f)
        manifest[f"{self.dialect}/{self.family}"] = dict(versions, cases=len(index))
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        print(f"{self.dialect}/{self.family}: {len(index)} cases")

    @staticmethod
    def report(name: str, data: Dict[str, Any], refs: str = REFS) -> str:
        """Write evidence that is not a family's cases (the round trip's results) to
        ``references/<name>.json``; returns the path."""
        path = os.path.join(refs, name + ".json")
        with open(path, "w") as f:
            json.dump(_jsonable(data), f, indent=1, sort_keys=True)
        return path


def _versions(keras3: bool) -> Dict[str, str]:
    if keras3:
        import keras

        if not keras.__version__.startswith("3."):
            sys.exit(f"--keras3 needs Keras 3, found {keras.__version__}")
        versions = {"keras": keras.__version__, "backend": keras.backend.backend()}
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            versions["tensorflow"] = tf.__version__
    else:
        import tensorflow as tf
        import tf_keras

        versions = {"tf_keras": tf_keras.__version__, "tensorflow": tf.__version__}
    versions["python"] = platform.python_version()
    versions["numpy"] = np.__version__
    return versions


def record(names: list, keras3: bool) -> None:
    """Record ``names`` (families) with tf-keras (or Keras 3): each family whole, or not at all."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    dialect = "keras3" if keras3 else "keras2"
    versions = _versions(keras3)
    if CASES not in sys.path:
        # families are imported by their bare names: the user-written classes they register
        # (recurrent_models.MinimalCell) keep the module names the references hold
        sys.path.insert(0, CASES)
    for family in names:
        module = importlib.import_module(family)
        fn = getattr(module, "record_keras3" if keras3 else "record", None)
        if fn is None:
            print(f"{dialect}/{family}: nothing to record")
            continue
        rec = Recorder(family, dialect)
        fn(rec)
        rec.write(versions)


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("families", nargs="*", help="families to record (default: all)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--keras3", action="store_true", help="record with Keras 3 (record_keras3)")
    mode.add_argument("--roundtrip", action="store_true",
                      help="klayers writes every recorded model file; tf-keras and Keras 3 read them back")
    mode.add_argument("--roundtrip-check", nargs=2, metavar=("DIR", "DIALECT"),
                      help="(run by --roundtrip in each Keras venv) load klayers's files from DIR with real Keras")
    args = parser.parse_args(argv)
    if args.roundtrip or args.roundtrip_check:
        sys.path.insert(0, os.path.dirname(HERE))
        from conformance import roundtrip

        if args.roundtrip_check:
            json.dump(roundtrip.check(*args.roundtrip_check), sys.stdout)
            return
        sys.exit(roundtrip.run(__file__))
    unknown = sorted(set(args.families) - set(families()))
    if unknown:
        parser.error(f"no such families: {unknown}; known: {families()}")
    record(args.families or families(), args.keras3)


if __name__ == "__main__":
    main()
