"""``klayers verify --per-layer`` and ``klayers.inspect.verify_layers``.

The Keras side needs TensorFlow, which the tests never have: these tests take Keras's per-layer
outputs from the conformance references (recorded by ``conformance/record.py`` running the
same ``keras_side.py`` in real tf-keras and Keras 3) and hand them to the comparison, or to the
command in place of the subprocess. ``conformance`` replays every recorded file through
``compare_layers`` in both modes.
"""

from __future__ import annotations

import ast
import json
import os
import sys

import numpy as np
import pytest

import klayers
from klayers.cli import main
from klayers.inspect import verify as verify_lib
from klayers.inspect import verify_layers

REFS = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "conformance", "references")


def _recorded(dialect: str, name: str):
    """(path, inputs, Keras's outputs as keras_layer_outputs returns them) of a recorded file
    (``name``: a fixture of the files family; its .h5 in keras2, its .keras in keras3)."""
    name += "-model_h5" if dialect == "keras2" else "-model_keras"
    with open(os.path.join(REFS, dialect, "layer_outputs.json")) as f:
        meta = json.load(f)["cases"][name]
    with np.load(os.path.join(REFS, dialect, "layer_outputs", name + ".npz")) as z:
        arrays = {k: z[k] for k in z.files}
    xs = [arrays[f"x{i}"] for i in range(meta["n_inputs"])]
    keras_outputs = {
        "keras": "recorded", "dialect": dialect,
        "layers": {(e["layer"], e["node"], e["output"]): arrays[f"t{i}"] for i, e in enumerate(meta["index"])},
        "model_outputs": [arrays[f"y{i}"] for i in range(meta["n_outputs"])],
    }
    return os.path.join(REFS, dialect, "files", meta["file"]), xs, keras_outputs, meta


def test_report_schema_and_agreement():
    path, xs, keras_outputs, meta = _recorded("keras2", "functional_multi_io_shared")
    model = klayers.models.load_model(path)
    report = verify_lib.compare_layers(model, xs, keras_outputs)
    assert set(report) >= {"model", "dialect", "tolerance", "isolate", "first_diverging", "layers"}
    assert report["dialect"] == "keras2" and report["isolate"] is False and report["first_diverging"] is None
    rows = report["layers"]
    assert len(rows) == len(meta["index"])
    for row in rows:
        assert set(row) >= {"name", "class", "shape", "max_abs", "max_rel", "eps_units", "over"}
        assert isinstance(row["shape"], list) and row["over"] is False
        assert row["eps_units"] == pytest.approx(row["max_rel"] / np.finfo(np.float32).eps)
    # the shared layer is compared at both of its nodes
    assert sorted(r["node"] for r in rows if r["name"] == "shared") == [0, 1]
    json.dumps(report)  # the dict is the JSON


def test_a_wrong_bias_is_named_first_propagated_and_alone_isolated():
    path, xs, keras_outputs, _ = _recorded("keras2", "small_cnn")
    model = klayers.models.load_model(path)
    layer = model.get_layer("conv_b")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + 0.01])
    propagated = verify_lib.compare_layers(model, xs, keras_outputs)
    names = [r["name"] for r in propagated["layers"]]
    over = [r["name"] for r in propagated["layers"] if r["over"]]
    assert propagated["first_diverging"] == "conv_b"
    assert over[0] == "conv_b" and names.index("conv_b") < names.index("classes")
    isolated = verify_lib.compare_layers(model, xs, keras_outputs, isolate=True)
    assert isolated["first_diverging"] == "conv_b"
    assert [r["name"] for r in isolated["layers"] if r["over"]] == ["conv_b"]
    assert any(o["over"] for o in propagated["outputs"])


def test_isolated_layers_get_kerass_inputs_and_masks_stay_klayerss():
    # the text model's Embedding makes a mask that the Bidirectional LSTM and GRU after it use:
    # fed Keras's embeddings, the masked layers still agree (their masks are klayers's own)
    path, xs, keras_outputs, _ = _recorded("keras3", "text_model")
    model = klayers.models.load_model(path)
    report = verify_lib.compare_layers(model, xs, keras_outputs, isolate=True)
    assert report["first_diverging"] is None and report["isolate"] is True
    fed, inputs = [], []
    for node, _ in model._trace_nodes(xs[0], feed=lambda t: fed.append(t) or None):
        inputs += node.keras_inputs
    assert [id(t) for t in fed] == [id(t) for t in inputs] and len(fed) >= 4


def test_rtol_and_dtype_tolerances():
    assert verify_lib.default_tolerance("float32") == 1e-4
    assert verify_lib.default_tolerance(np.float64) == 1e-10
    assert verify_lib.default_tolerance("float16") == 1e-2
    path, xs, keras_outputs, _ = _recorded("keras2", "small_cnn")
    model = klayers.models.load_model(path)
    strict = verify_lib.compare_layers(model, xs, keras_outputs, rtol=0.0)
    assert strict["tolerance"] == 0.0
    # the convolutions round apart from TensorFlow's: a zero tolerance is exceeded there
    over = [r["name"] for r in strict["layers"] if r["over"]]
    assert over == [r["name"] for r in strict["layers"] if r["max_rel"] > 0] and over
    assert strict["first_diverging"] == over[0]


@pytest.mark.parametrize("ours, theirs, want", [
    ([1.0, 2.0], [1.0, 2.5], (0.5, 0.2)),
    ([np.nan, 1.0], [np.nan, 1.0], (0.0, 0.0)),
    ([np.inf, 1.0], [np.inf, 1.0], (0.0, 0.0)),
    ([np.inf, 1.0], [-np.inf, 1.0], (np.inf, np.inf)),
    ([np.nan, 1.0], [0.0, 1.0], (np.inf, np.inf)),
    ([1.0, 2.0], [[1.0, 2.0]], (np.inf, np.inf)),
    (np.array([1, 2]), np.array([1, 3]), (1.0, 1.0)),
])
def test_errors(ours, theirs, want):
    assert verify_lib.errors(np.asarray(ours), np.asarray(theirs)) == pytest.approx(want)


def test_keras_side_imports_no_klayers():
    # it runs in the Keras's Python, where klayers need not be installed, and in record.py,
    # which never imports klayers
    with open(verify_lib.KERAS_SIDE) as f:
        tree = ast.parse(f.read())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "json", "sys", "typing", "numpy", "keras", "tf_keras"}


def test_without_keras_the_command_says_how_to_install(capsys):
    path, *_ = _recorded("keras3", "merge_model")
    assert main(["verify", path, "--per-layer", "--keras-python", "/bin/false"]) == 2
    assert "pip install keras tensorflow" in capsys.readouterr().out
    with pytest.raises(verify_lib.KerasUnavailable, match="tf-keras"):
        verify_layers(_recorded("keras2", "merge_model")[0], keras_python=sys.executable)


@pytest.fixture
def fake_keras(monkeypatch):
    """Hand the command Keras's recorded outputs in place of running Keras."""

    def use(dialect, name):
        path, xs, keras_outputs, meta = _recorded(dialect, name)
        calls = []

        def fake(p, inputs, *, keras_python=None, unsafe=False, layers=True):
            calls.append({"path": p, "inputs": [np.asarray(x) for x in inputs], "layers": layers})
            return dict(keras_outputs, layers=keras_outputs["layers"] if layers else {})

        monkeypatch.setattr(verify_lib, "keras_layer_outputs", fake)
        return path, xs, meta, calls

    return use


def test_command_per_layer_json_plot_and_exit_status(tmp_path, fake_keras, capsys):
    path, xs, meta, calls = fake_keras("keras2", "small_cnn")
    inputs = tmp_path / "x.npy"
    np.save(inputs, xs[0])
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    assert main(["verify", path, "--input", str(inputs), "--per-layer", "--json", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "layer by layer (propagated" in text and "agree:" in text and "conv_b" in text
    report = json.loads(out.read_text())
    assert report["model"] == path and len(report["layers"]) == len(meta["index"])
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert calls[0]["layers"] is True and np.array_equal(calls[0]["inputs"][0], xs[0])
    # a zero tolerance: some layer rounds apart, the first is marked and the status is 1
    assert main(["verify", path, "--input", str(inputs), "--per-layer", "--isolate", "--rtol", "0"]) == 1
    text = capsys.readouterr().out
    assert "isolated" in text and "<-- first over tolerance" in text and "DISAGREE" in text
    # the whole-model check asks Keras for the model's outputs only
    assert main(["verify", path, "--input", str(inputs)]) == 0
    assert calls[-1]["layers"] is False
    assert "tolerance 0.0001, from float32" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--isolate"], ["--json", "r.json"], ["--plot", "r.png"]])
def test_layer_options_need_per_layer(argv, fake_keras, capsys):
    path, *_ = fake_keras("keras2", "merge_model")
    assert main(["verify", path, *argv]) == 2
    assert "--per-layer" in capsys.readouterr().err
