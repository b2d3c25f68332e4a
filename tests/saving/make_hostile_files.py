"""Generate a corpus of hostile model files from the real Keras-saved fixtures.

Sources: ``conformance/references/*/files/*.h5|*.keras`` (written by tf-keras 2.21 and Keras
3.15). Each hostile file is derived from one of them, deterministically from ``--seed``:

* ``trunc``: the first 1 %, 10 %, 50 %, 90 % and all but one byte;
* ``flip``: random bit flips (1, 8 and 64 bits);
* ``random``: random bytes, with the HDF5 or zip signature in front, and an empty file;
* ``shape``: an HDF5 weight dataset replaced by one of another shape, or of a string dtype;
* ``huge``: an HDF5 dataset declaring 2**40 values (sparse, a few KB on disk);
* ``config``: the model config naming an unknown class, ``__lambda__``, a class in ``os`` or
  ``subprocess`` (``{"module": "os", "class_name": "system"}``), a Lambda whose marshalled code
  would create a marker file, a non-JSON config, a config nested 100 000 levels deep;
* ``zip``: ``.keras`` archives with entries named ``../escape.txt`` and ``/tmp/...``, an entry
  declaring more bytes than it holds, and a zip bomb (``config.json`` of 300 MB of spaces).

Usage: ``python tests/saving/make_hostile_files.py OUT_DIR [--seed N]``; prints one line per file.
``generate(out_dir, seed)`` returns ``[(path, kind, marker)]`` where ``marker`` is the file a
malicious payload would create (it must never exist).
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import marshal
import os
import random
import shutil
import sys
import zipfile
from typing import List, Optional, Tuple

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = [
    "keras2/files/sequential_mlp.h5", "keras2/files/sequential_mlp.keras", "keras2/files/small_cnn.h5",
    "keras3/files/nested_models.keras", "keras3/files/merge_model.h5", "keras2/files/python_lambda.h5",
]

Entry = Tuple[str, str, Optional[str]]


def sources() -> List[str]:
    base = os.path.join(REPO, "conformance", "references")
    found = [os.path.join(base, s) for s in SOURCES if os.path.exists(os.path.join(base, s))]
    if not found:  # fall back on whatever fixtures exist
        found = sorted(glob.glob(os.path.join(base, "*", "files", "*.h5")))[:3]
    return found


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _marker_lambda_code(marker: str) -> str:
    """Keras 2's serialized Lambda function: base64 of the marshalled code of a function that
    creates ``marker`` when called (or when its defaults are evaluated)."""
    import codecs

    src = f"def f(x):\n    open({marker!r}, 'w').write('pwned')\n    return x\n"
    ns: dict = {}
    exec(compile(src, "<hostile>", "exec"), ns)  # noqa: S102 - builds the payload; never loaded here
    raw = marshal.dumps(ns["f"].__code__)
    return codecs.encode(raw, "base64").decode("ascii")


def _h5_config_variants(src: str, out: str, marker: str) -> List[Entry]:
    import h5py

    entries: List[Entry] = []
    with h5py.File(src, "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        return entries
    raw = raw.decode() if isinstance(raw, bytes) else raw
    config = json.loads(raw)
    layers = config.get("config", {}).get("layers", [])
    if not layers:
        return entries
    victim = 1 if len(layers) > 1 else 0

    def variant(tag: str, mutate) -> None:
        cfg = json.loads(raw)
        text = mutate(cfg)
        path = os.path.join(out, f"{os.path.basename(src)}.config-{tag}.h5")
        shutil.copyfile(src, path)
        with h5py.File(path, "r+") as g:
            g.attrs["model_config"] = text if isinstance(text, str) else json.dumps(cfg)
        entries.append((path, "config", marker))

    def set_layer(**kv):
        def mutate(cfg):
            cfg["config"]["layers"][victim].update(kv)
        return mutate

    variant("unknown", set_layer(class_name="NoSuchLayer"))
    variant("lambda-name", set_layer(class_name="__lambda__"))
    variant("os-system", set_layer(class_name="system", module="os", registered_name="os>system"))
    variant("subprocess", set_layer(class_name="Popen", module="subprocess"))
    variant("dotted", set_layer(class_name="os.system"))

    def evil_lambda(cfg):
        layer = cfg["config"]["layers"][victim]
        layer["class_name"] = "Lambda"
        layer["config"] = {"name": layer.get("config", {}).get("name", "evil"), "trainable": True,
                           "dtype": "float32", "function": [_marker_lambda_code(marker), None, None],
                           "function_type": "lambda", "module": "__main__", "output_shape": None,
                           "output_shape_type": "raw", "output_shape_module": None, "arguments": {}}
    variant("evil-lambda", evil_lambda)

    def evil_initializer(cfg):
        layer = cfg["config"]["layers"][victim]
        layer.setdefault("config", {})["kernel_initializer"] = {"class_name": "system", "module": "os",
                                                                "config": {"command": f"touch {marker}"}}
    variant("os-initializer", evil_initializer)
    variant("not-json", lambda cfg: "{not json")
    variant("deep", lambda cfg: "[" * 100_000 + "]" * 100_000)
    variant("absurd-units", set_layer(config={**layers[victim].get("config", {}), "units": 10**12, "filters": 10**12}))
    return entries


def _h5_weight_variants(src: str, out: str) -> List[Entry]:
    import h5py

    entries: List[Entry] = []
    with h5py.File(src, "r") as f:
        datasets: List[str] = []
        f.visit(lambda name: datasets.append(name) if isinstance(f[name], h5py.Dataset) else None)
    if not datasets:
        return entries
    name = datasets[0]
    for tag, make in (
        ("shape", lambda g, d: g.create_dataset(name, data=np.zeros(tuple(s + 1 for s in d.shape) or (2,), "float32"))),
        ("rank", lambda g, d: g.create_dataset(name, data=np.zeros((3, 3, 3), "float32"))),
        ("strings", lambda g, d: g.create_dataset(name, data=np.array([b"x"] * max(1, d.size)))),
        ("huge", lambda g, d: g.create_dataset(name, shape=(2**40,), dtype="float32", chunks=(1024,))),
        ("huge2d", lambda g, d: g.create_dataset(name, shape=(2**20, 2**20), dtype="float64", chunks=(16, 16))),
    ):
        path = os.path.join(out, f"{os.path.basename(src)}.weights-{tag}.h5")
        shutil.copyfile(src, path)
        with h5py.File(path, "r+") as g:
            d = g[name]
            shape, size = d.shape, d.size
            del g[name]

            class D:  # the old dataset's shape, for the makers
                pass
            D.shape, D.size = shape, size
            make(g, D)
        entries.append((path, "huge" if tag.startswith("huge") else "shape", None))
    return entries


def _zip_variants(src: str, out: str, outside: str, marker: str) -> List[Entry]:
    entries: List[Entry] = []
    with zipfile.ZipFile(src) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    base = os.path.basename(src)

    def archive(tag: str, extra: dict, drop=(), replace: Optional[dict] = None) -> None:
        path = os.path.join(out, f"{base}.zip-{tag}.keras")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for k, v in members.items():
                if k in drop:
                    continue
                z.writestr(k, (replace or {}).get(k, v))
            for k, v in extra.items():
                z.writestr(k, v)
        entries.append((path, "zip", marker))

    archive("dotdot", {"../escape.txt": b"escaped", "../../" + os.path.basename(outside): b"escaped"})
    archive("absolute", {outside: b"escaped"})
    archive("dotdot-weights", {"../model.weights.h5": members.get("model.weights.h5", b"")}, drop=("model.weights.h5",))
    archive("no-config", {}, drop=("config.json",))
    archive("no-weights", {}, drop=("model.weights.h5",))
    if "config.json" in members:
        cfg = json.loads(members["config.json"])
        evil = json.loads(json.dumps(cfg))
        evil["class_name"] = "system"
        evil["module"] = "os"
        archive("os-model", {}, replace={"config.json": json.dumps(evil).encode()})
        evil = json.loads(json.dumps(cfg))
        layers = evil.get("config", {}).get("layers", [])
        if layers:
            layers[-1]["module"] = "subprocess"
            layers[-1]["class_name"] = "Popen"
            archive("subprocess-layer", {}, replace={"config.json": json.dumps(evil).encode()})
            evil = json.loads(json.dumps(cfg))
            layer = evil["config"]["layers"][-1]
            layer["class_name"] = "Lambda"
            layer["module"] = "keras.layers"
            layer["config"] = {"name": "evil", "trainable": True, "dtype": "float32",
                               "function": {"class_name": "__lambda__", "config": {
                                   "code": _marker_lambda_code(marker), "defaults": None, "closure": None}},
                               "arguments": {}}
            archive("evil-lambda", {}, replace={"config.json": json.dumps(evil).encode()})
    # a zip bomb: 300 MB of spaces compress to about 300 KB
    path = os.path.join(out, f"{base}.zip-bomb.keras")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in members.items():
            if k != "config.json":
                z.writestr(k, v)
        with z.open("config.json", "w", force_zip64=True) as fh:
            block = b" " * 2**20
            for _ in range(300):
                fh.write(block)
    entries.append((path, "zip", marker))
    return entries


def generate(out_dir: str, seed: int = 0, outside: Optional[str] = None, marker: Optional[str] = None) -> List[Entry]:
    """Write the corpus into ``out_dir``; returns ``[(path, kind, marker)]``.

    ``outside``: an absolute path an archive entry names (must never be written);
    ``marker``: the file a malicious Lambda / config would create (must never exist).
    """
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(seed)
    outside = outside or os.path.join(os.path.dirname(os.path.abspath(out_dir)), "klayers-escaped.txt")
    marker = marker or os.path.join(os.path.dirname(os.path.abspath(out_dir)), "klayers-pwned.txt")
    entries: List[Entry] = []
    for src in sources():
        data = open(src, "rb").read()
        base = os.path.basename(src)
        for frac in (0.01, 0.1, 0.5, 0.9):
            p = os.path.join(out_dir, f"{base}.trunc{int(frac * 100)}{os.path.splitext(src)[1]}")
            _write(p, data[: max(1, int(len(data) * frac))])
            entries.append((p, "trunc", None))
        p = os.path.join(out_dir, f"{base}.trunc-1{os.path.splitext(src)[1]}")
        _write(p, data[:-1])
        entries.append((p, "trunc", None))
        for n_bits in (1, 8, 64):
            buf = bytearray(data)
            for _ in range(n_bits):
                i = rng.randrange(len(buf))
                buf[i] ^= 1 << rng.randrange(8)
            p = os.path.join(out_dir, f"{base}.flip{n_bits}{os.path.splitext(src)[1]}")
            _write(p, bytes(buf))
            entries.append((p, "flip", None))
        if src.endswith(".h5"):
            entries += _h5_weight_variants(src, out_dir)
            entries += _h5_config_variants(src, out_dir, marker)
        elif src.endswith(".keras"):
            entries += _zip_variants(src, out_dir, outside, marker)
    for tag, head in (("hdf5", b"\x89HDF\r\n\x1a\n"), ("zip", b"PK\x03\x04"), ("plain", b"")):
        p = os.path.join(out_dir, f"random-{tag}.{'keras' if tag == 'zip' else 'h5'}")
        _write(p, head + bytes(rng.randrange(256) for _ in range(4096)))
        entries.append((p, "random", None))
    p = os.path.join(out_dir, "empty.h5")
    _write(p, b"")
    entries.append((p, "random", None))
    p = os.path.join(out_dir, "json-as-h5.h5")
    _write(p, json.dumps({"class_name": "Sequential", "config": {}}).encode())
    entries.append((p, "random", None))
    _ = io  # (kept for readers extending the generator with in-memory archives)
    return entries


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path, kind, _ in generate(args.out_dir, args.seed):
        print(f"{kind}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
