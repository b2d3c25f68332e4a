"""Hostile model files: a clear error naming the file, nothing written, nothing executed, no
multi-GB allocation (issue 10).

The corpus comes from ``tests/saving/make_hostile_files.py`` (derived from the real Keras-saved
fixtures under ``conformance/references/*/files``), generated into ``tmp_path``. Every file is
loaded with ``klayers.models.load_model`` (default ``safe_mode=True``) in a child interpreter
whose address space is capped (``RLIMIT_AS``), whose working directory and ``TMPDIR`` are
fresh directories, and with an alarm per file (the HDF5 C library cannot be interrupted from
Python; a hang kills the child with SIGALRM and names the file). Each file must load or raise
a ``ValueError`` (``ModelFileError``) / ``FileNotFoundError`` whose message names the file;
afterwards the marker a malicious payload would create must not exist, no archive entry may
have been written anywhere, and the working and temporary directories must be empty.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._fuzz import FUZZ, LONG, REPO, assert_ok, run_isolated
from tests.saving import make_hostile_files

_LIMIT = 3 * 2**30

CHILD = r"""
import json, os, signal, sys, traceback
sys.path.insert(0, {repo!r})
from klayers.models import load_model
from klayers.saving.file_utils import ModelFileError
results = []
for path in json.load(open({listing!r})):
    print("LOAD", path, flush=True)
    signal.alarm({alarm})  # default action: the child dies with SIGALRM, naming the file above
    try:
        model = load_model(path)
        outcome = "loaded"
        msg = ""
    except (ValueError, FileNotFoundError) as e:
        outcome, msg = type(e).__name__, str(e)
    except BaseException as e:
        outcome, msg = "UNEXPECTED " + type(e).__name__, traceback.format_exc()[-1500:]
    signal.alarm(0)
    results.append((path, outcome, msg))
json.dump(results, open({out!r}, "w"))
print("FILES-OK", flush=True)
"""


def _load_all(paths, tmp_path, alarm: int = 20):
    listing = tmp_path / "listing.json"
    listing.write_text(json.dumps([str(p) for p in paths]))
    out = tmp_path / "results.json"
    work = tmp_path / "cwd"
    tmpdir = tmp_path / "tmpdir"
    work.mkdir(exist_ok=True)
    tmpdir.mkdir(exist_ok=True)
    code = CHILD.format(repo=REPO, listing=str(listing), out=str(out), alarm=alarm)
    proc = run_isolated(code, timeout=900 if LONG else 300, limit_as_bytes=_LIMIT, cwd=str(work),
                        env={"TMPDIR": str(tmpdir), "TMP": str(tmpdir), "TEMP": str(tmpdir)})
    assert_ok(proc)
    assert not os.listdir(work), f"loading wrote into the working directory: {os.listdir(work)}"
    assert not os.listdir(tmpdir), f"loading left temporary files: {os.listdir(tmpdir)}"
    return json.loads(out.read_text())


def _check(results):
    bad = []
    for path, outcome, msg in results:
        if outcome.startswith("UNEXPECTED"):
            bad.append(f"{os.path.basename(path)}: {outcome}\n{msg}")
        elif outcome != "loaded" and os.path.basename(path) not in msg:
            bad.append(f"{os.path.basename(path)}: the error does not name the file: {outcome}: {msg[:300]}")
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    out = base / "corpus"
    outside = str(base / "klayers-escaped.txt")
    marker = str(base / "klayers-pwned.txt")
    entries = make_hostile_files.generate(str(out), seed=0, outside=outside, marker=marker)
    return base, entries, outside, marker


def test_the_corpus_covers_every_kind(corpus):
    _, entries, _, _ = corpus
    kinds = {k for _, k, _ in entries}
    assert kinds >= {"trunc", "flip", "random", "shape", "huge", "config", "zip"}, kinds
    assert len(entries) >= 60


def test_hostile_files_give_a_clear_error_and_leave_no_trace(corpus, tmp_path):
    base, entries, outside, marker = corpus
    before = sorted(os.listdir(base))
    results = _load_all([p for p, _, _ in entries], tmp_path)
    _check(results)
    assert not os.path.exists(marker), "a payload from a model file ran (the marker file exists)"
    assert not os.path.exists(outside), "an archive entry was written outside"
    assert sorted(os.listdir(base)) == before, "loading wrote next to the corpus"
    for name in ("escape.txt", "model.weights.h5"):
        assert not os.path.exists(os.path.join(base, name)) and not os.path.exists(os.path.join(os.path.dirname(base), name))
    loaded = {os.path.basename(p): o for p, o, _ in results}
    # what must be refused whatever the loader's tolerance: payloads and unsafe archives
    for p, kind, _ in entries:
        name = os.path.basename(p)
        if any(tag in name for tag in ("os-system", "subprocess", "evil-lambda", "dotted", "unknown",
                                       "lambda-name", "dotdot", "absolute", "zip-bomb", "not-json",
                                       "huge", "os-model", "os-initializer", "absurd-units", "deep")):
            assert loaded[name] != "loaded", f"{name} ({kind}) was loaded; it must be refused"
        if kind in ("trunc", "random", "shape"):
            assert loaded[name] != "loaded" or name.endswith(".trunc-1.keras"), f"{name} ({kind}) was loaded"


def test_safe_mode_refuses_the_real_lambda_fixture(tmp_path):
    """The real tf-keras / Keras 3 files with a Python Lambda: refused in safe mode, naming the
    layer, and loadable only with ``safe_mode=False``."""
    paths = [os.path.join(REPO, "conformance", "references", d, "files", "python_lambda." + ext)
             for d in ("keras2", "keras3") for ext in ("h5", "keras")]
    paths = [p for p in paths if os.path.exists(p)]
    assert paths
    results = _load_all(paths, tmp_path)
    _check(results)
    for path, outcome, msg in results:
        assert outcome in ("ValueError", "ModelFileError") and ("safe_mode" in msg or "safe mode" in msg), (path, outcome, msg[:300])


@settings(FUZZ, max_examples=60 if LONG else 3)  # one child per example: a few in CI
@given(data=st.data())
def test_random_damage_to_a_real_file(data, tmp_path_factory):
    """Property: any few-byte overwrite of a real file loads or gives a clear error."""
    srcs = make_hostile_files.sources()
    src = data.draw(st.sampled_from(srcs))
    blob = bytearray(open(src, "rb").read())
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.sampled_from([None, len(blob) // 3, len(blob) - 7]))
    tmp = tmp_path_factory.mktemp("dmg")
    p = tmp / ("damaged" + os.path.splitext(src)[1])
    p.write_bytes(bytes(blob[:cut]))
    _check(_load_all([p], tmp))
