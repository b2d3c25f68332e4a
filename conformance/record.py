"""Record conformance references from real Keras. Runs ONLY in a TensorFlow virtualenv.

    /path/to/tf-venv/bin/python conformance/record.py                # every family
    /path/to/tf-venv/bin/python conformance/record.py activations    # some families
    /path/to/k3-venv/bin/python conformance/record.py --keras3 activations

Each family is a module ``conformance/cases/<family>.py`` with a function
``record(rec: Recorder)`` (tf-keras 2.21) and optionally ``record_keras3(rec: Recorder)``
(Keras 3.15). Cases are specs in code, seeded. A case's arrays go to
``references/<dialect>/<family>/<case>.npz`` and its JSON (configs, shapes, scalars) into
``references/<dialect>/<family>.json``; ``references/MANIFEST.json`` keeps the versions that
recorded each family. klayers is never imported here: references come from Keras alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from typing import Any, Dict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REFS = os.path.join(HERE, "references")
sys.path.insert(0, os.path.join(HERE, "cases"))

FAMILIES = sorted(
    f[:-3] for f in os.listdir(os.path.join(HERE, "cases")) if f.endswith(".py") and not f.startswith("_")
)


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
    """Collects a family's cases and writes them.

    ``rec.case(name, arrays={...}, **meta)``: arrays (NumPy) go to ``<case>.npz``; ``meta``
    (JSON-able: configs, shapes, scalars, answers of the node API) into the family JSON.
    """

    def __init__(self, family: str, dialect: str):
        self.family = family
        self.dialect = dialect
        self.dir = os.path.join(REFS, dialect, family)
        self.cases: Dict[str, Dict[str, Any]] = {}

    def case(self, name: str, arrays: Dict[str, np.ndarray] | None = None, **meta: Any) -> None:
        if name in self.cases:
            raise ValueError(f"duplicate case {self.family}/{name}")
        if any(c in name for c in "/\\ "):
            raise ValueError(f"case names are file names: {name!r}")
        self.cases[name] = {"meta": _jsonable(meta), "arrays": dict(arrays or {})}

    def write(self, versions: Dict[str, str]) -> None:
        if os.path.isdir(self.dir):
            for f in os.listdir(self.dir):
                if f.endswith(".npz"):
                    os.remove(os.path.join(self.dir, f))
        os.makedirs(self.dir, exist_ok=True)
        index = {}
        for name, c in sorted(self.cases.items()):
            if c["arrays"]:
                np.savez_compressed(os.path.join(self.dir, name + ".npz"), **c["arrays"])
            index[name] = dict(c["meta"], arrays=sorted(c["arrays"]))
        with open(os.path.join(REFS, self.dialect, self.family + ".json"), "w") as f:
            json.dump({"family": self.family, "versions": versions, "cases": index}, f, indent=1, sort_keys=True)
        manifest_path = os.path.join(REFS, "MANIFEST.json")
        manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {}
        manifest[f"{self.dialect}/{self.family}"] = dict(versions, cases=len(index))
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        print(f"{self.dialect}/{self.family}: {len(index)} cases")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("families", nargs="*", default=FAMILIES)
    parser.add_argument("--keras3", action="store_true", help="record with Keras 3 (record_keras3)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.keras3:
        import keras

        dialect = "keras3"
        versions = {"keras": keras.__version__, "backend": keras.backend.backend()}
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            versions["tensorflow"] = tf.__version__
        if not keras.__version__.startswith("3."):
            sys.exit(f"--keras3 needs Keras 3, found {keras.__version__}")
    else:
        import tensorflow as tf
        import tf_keras

        dialect = "keras2"
        versions = {"tf_keras": tf_keras.__version__, "tensorflow": tf.__version__}
    versions["python"] = platform.python_version()
    versions["numpy"] = np.__version__
    for family in args.families:
        module = importlib.import_module(family)
        fn = getattr(module, "record_keras3" if args.keras3 else "record", None)
        if fn is None:
            print(f"{dialect}/{family}: nothing to record")
            continue
        rec = Recorder(family, dialect)
        fn(rec)
        rec.write(versions)


if __name__ == "__main__":
    main()
