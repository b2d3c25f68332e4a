"""The recorder (``record.py``) without TensorFlow: what a Recorder writes and refuses, that the
recording modes import no klayers, and that the round-trip evidence covers every recorded file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conformance import refs
from conformance.record import Recorder, families

HERE = os.path.dirname(os.path.abspath(__file__))


def test_recorder_writes_arrays_files_json_and_manifest(tmp_path):
    family_dir = tmp_path / "keras2" / "fam"
    family_dir.mkdir(parents=True)
    (family_dir / "stale.npz").write_bytes(b"old")
    (family_dir / "stale.h5").write_bytes(b"old")
    rec = Recorder("fam", "keras2", refs=str(tmp_path))
    rec.case("b_case", arrays={"x": np.arange(3, dtype="float32")}, config={"units": np.int64(2)})
    rec.case("a_case", shape=(1, 2))
    rec.annotate("a_case", custom={"k": "v"})
    with open(rec.path("model.h5"), "wb") as f:
        f.write(b"model")
    assert not (family_dir / "model.h5").exists()  # staged until write
    rec.write({"tf_keras": "2.21.0"})
    assert sorted(os.listdir(family_dir)) == ["b_case.npz", "model.h5"]
    index = json.loads((tmp_path / "keras2" / "fam.json").read_text())
    assert index["cases"] == {
        "a_case": {"arrays": [], "custom": {"k": "v"}, "shape": [1, 2]},
        "b_case": {"arrays": ["x"], "config": {"units": 2}},
    }
    with np.load(family_dir / "b_case.npz") as z:
        np.testing.assert_array_equal(z["x"], np.arange(3, dtype="float32"))
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert manifest == {"keras2/fam": {"cases": 2, "tf_keras": "2.21.0"}}
    assert Recorder.report("evidence", {"ok": np.float32(1.5)}, refs=str(tmp_path)).endswith("evidence.json")
    assert json.loads((tmp_path / "evidence.json").read_text()) == {"ok": 1.5}


@pytest.mark.parametrize(
    "call,error",
    [
        (lambda rec: (rec.case("x"), rec.case("x")), ValueError),
        (lambda rec: rec.case("a b"), ValueError),
        (lambda rec: rec.annotate("missing", k=1), KeyError),
        (lambda rec: rec.path("../escape.h5"), ValueError),
        (lambda rec: rec.path("notes.txt"), ValueError),
    ],
    ids=["duplicate", "space-in-name", "annotate-unknown", "path-outside", "path-not-a-model-file"],
)
def test_recorder_refuses(tmp_path, call, error):
    with pytest.raises(error):
        call(Recorder("fam", "keras2", refs=str(tmp_path)))


def test_recorder_imports_no_klayers():
    """References come from Keras alone: importing the recorder, its round-trip module and every
    family's case code pulls in no klayers module (the round trip imports klayers only inside
    ``roundtrip.write``)."""
    code = (
        "import sys; sys.path[:0] = [{root!r}, {cases!r}]\n"
        "import conformance.record, conformance.roundtrip\n"
        "for f in {families!r}: __import__(f)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'klayers'))\n"
    ).format(root=os.path.dirname(HERE), cases=os.path.join(HERE, "cases"), families=families())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_roundtrip_evidence_covers_every_recorded_file():
    with open(os.path.join(refs.REFS, "files_roundtrip.json")) as f:
        report = json.load(f)
    stems = {f"{d}_{name}" for d in ("keras2", "keras3") for name, _ in refs.cases("files", d)}
    assert stems
    for which in ("keras2", "keras3"):
        assert set(report[which]["cases"]) == stems, which
