"""Smoke test of ``compare_models.py``: klayers alone on the recorded fixture models, tiny batches.

No TensorFlow is needed and nothing is timed for real (a couple of samples each); it checks that
the whole-model benchmark runs end to end, that both klayers engines agree, and the table's form.
"""

from __future__ import annotations

import compare_models
import numpy as np
import pytest


def test_compare_models_klayers_alone(capsys: pytest.CaptureFixture) -> None:
    """Both klayers engines on MobileNetV2 (64x64 fixture) and the text model at batch 1 and 2."""
    status = compare_models.main(["--engines", "klayers", "--models", "mobilenetv2-64,text",
                                  "--batches", "1,2", "--threads", "1", "--repeats", "2",
                                  "--rounds", "1", "--min-sample-ms", "0", "--cooldown-ms", "0",
                                  "--markdown"])
    out = capsys.readouterr().out
    assert status == 0, out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| model-batch | klayers predict | klayers call |")
    assert [r.split(" | ")[0] for r in rows[1:]] == ["| mobilenetv2-64-b1", "| mobilenetv2-64-b2",
                                                     "| text-b1", "| text-b2"]
    assert all(" ms" in r or " us" in r for r in rows[1:])


def test_text_input_is_padded() -> None:
    """Token batches hold ids in [1, vocab) followed by zero padding (the mask matters)."""
    x = compare_models.make_input((None, 12), "int32", 16, seed=3, vocab=20)
    assert x.shape == (16, 12) and x.dtype == np.int32
    assert (x == 0).any() and x.max() < 20
    nonzero = x != 0
    assert (np.diff(nonzero.astype(int), axis=1) <= 0).all()  # zeros only at the end


def test_thread_counts() -> None:
    """``--threads``: one count, several, and ``all`` (every core)."""
    import os

    assert compare_models.thread_counts("1") == [1]
    assert compare_models.thread_counts("3") == [3]
    assert compare_models.thread_counts("1, 2,all") == [1, 2, os.cpu_count() or 1]
