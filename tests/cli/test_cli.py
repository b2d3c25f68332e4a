"""The ``klayers`` command line on real Keras files (no TensorFlow needed)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from klayers.cli import main

REFS = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "conformance", "references")
MULTI = os.path.join(REFS, "keras3", "files", "functional_multi_io_shared.keras")
MLP = os.path.join(REFS, "keras2", "files", "sequential_mlp.h5")


def _arrays(dialect, name):
    with np.load(os.path.join(REFS, dialect, "files", name + ".npz")) as z:
        return {k: z[k] for k in z.files}


def test_summary_prints_the_layers(capsys):
    assert main(["summary", MULTI]) == 0
    out = capsys.readouterr().out
    assert 'Model: "siamese"' in out and "shared (Dense)" in out and "Total params" in out


def test_predict_npz_in_npz_out_matches_keras(tmp_path, capsys):
    ref = _arrays("keras3", "functional_multi_io_shared")
    inputs = tmp_path / "x.npz"
    np.savez(inputs, left=ref["x0"], right=ref["x1"])
    out = tmp_path / "y.npz"
    assert main(["predict", MULTI, "--input", str(inputs), "--output", str(out), "--batch-size", "3", "--threads", "1"]) == 0
    with np.load(out) as z:
        assert z.files == ["head", "head_1", "tail"]
        for i, key in enumerate(z.files):
            np.testing.assert_allclose(z[key], ref[f"y{i}"], atol=2e-5)
    assert "wrote head, head_1, tail" in capsys.readouterr().out


def test_predict_npy_in_npy_out(tmp_path):
    ref = _arrays("keras2", "sequential_mlp")
    np.save(tmp_path / "x.npy", ref["x0"])
    assert main(["predict", MLP, "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), ref["y0"], atol=2e-5)


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    return err


def test_user_mistakes_are_one_sentence(tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), "float32"))
    assert "No such file" in _error(capsys, ["predict", str(tmp_path / "none.h5"), "--input", "x.npy"])
    assert "No such input file" in _error(capsys, ["predict", MLP, "--input", str(tmp_path / "none.npy")])
    assert "must have shape (batch, 6)" in _error(capsys, ["predict", MLP, "--input", str(tmp_path / "bad.npy")])
    assert "2 inputs" in _error(capsys, ["predict", MULTI, "--input", str(tmp_path / "bad.npy")])
    assert "positive" in _error(capsys, ["predict", MLP, "--input", str(tmp_path / "bad.npy"), "--batch-size", "0"])
    (tmp_path / "junk.h5").write_bytes(b"junk")
    assert "not a Keras model file" in _error(capsys, ["summary", str(tmp_path / "junk.h5")])
    lam = os.path.join(REFS, "keras2", "files", "python_lambda.h5")
    assert "safe_mode=False" in _error(capsys, ["summary", lam])
    assert main(["summary", lam, "--unsafe"]) == 0


def test_unknown_layer_is_named(tmp_path, capsys):
    import h5py

    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.21.0"
        f.attrs["model_config"] = (
            '{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", '
            '"config": {"batch_input_shape": [null, 3], "name": "i"}}, {"class_name": "Transformer9000", '
            '"config": {"name": "t"}}]}}'
        )
    assert "Transformer9000 (layer 't')" in _error(capsys, ["summary", str(path)])


def test_verify_without_keras_says_how_to_install(capsys):
    assert main(["verify", MLP, "--keras-python", "/bin/false"]) == 2
    out = capsys.readouterr().out
    assert "pip install tensorflow tf-keras" in out


def test_bench_plot_needs_peers(monkeypatch, capsys):
    from klayers import cli

    with pytest.raises(cli.UsageError):
        cli._plot([{"workload": "w", "engines": {"klayers": {"median_s": 1.0}}}], "x.png")
