"""``klayers profile``: every step of the inference plan timed (structure and arithmetic, not speed)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import stat
import sys

import numpy as np
import pytest

from klayers import Input, Model, Sequential, layers
from klayers.cli import main
from klayers.inspect import profile, profile_model
from klayers.ops.threads import get_num_threads, set_num_threads

profile_lib = importlib.import_module("klayers.inspect.profile")  # the name klayers.inspect.profile is the function
DEMO = os.path.join(os.path.dirname(profile_lib.__file__), os.pardir, "data", "demo_cnn.h5")
FAKE_CEILINGS = {"matmul_gflops": 100.0, "copy_gbs": 10.0}
MEASURE = profile_lib.measure_ceilings


@pytest.fixture(autouse=True)
def _quick_ceilings(monkeypatch, tmp_path):
    """The ceilings cache in this test's folder, measured instantly."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(profile_lib, "measure_ceilings", lambda: dict(FAKE_CEILINGS))


def _model():
    """conv1+bn1+relu1 fuse into one step; conv2 and the Add after it merge; gap; dense."""
    x = Input((16, 16, 3), name="x")
    a = layers.Conv2D(8, 3, name="conv1")(x)
    a = layers.BatchNormalization(name="bn1")(a)
    a = layers.ReLU(name="relu1")(a)
    b = layers.Conv2D(8, 1, name="conv2")(a)
    c = layers.Add(name="add")([a, b])
    c = layers.GlobalAveragePooling2D(name="gap")(c)
    return Model(x, layers.Dense(4, name="dense")(c), name="small")


def _step(report, layer):
    return next(row for row in report["steps"] if layer in row["layers"])


def test_report_covers_every_layer_once_in_plan_steps():
    model = _model()
    report = profile_model(model, batch_size=2, repeats=3)
    names = [name for row in report["steps"] for name in row["layers"]]
    assert sorted(names) == sorted(layer.name for layer in model.layers if type(layer).__name__ != "InputLayer")
    fused = _step(report, "conv1")
    assert fused["layers"] == ["conv1", "bn1", "relu1"]
    assert fused["class"] == "Conv2D+BatchNormalization+ReLU" and fused["kind"] == "FusedStep"
    assert [row["index"] for row in report["steps"]] == list(range(len(report["steps"])))
    assert sum(row["share"] for row in report["steps"]) == pytest.approx(1.0, abs=1e-9)
    assert report["steps_ms"] == pytest.approx(sum(row["median_ms"] for row in report["steps"]))
    assert report["total_ms"] == report["plan_ms"]
    assert report["overhead_ms"] == pytest.approx(report["total_ms"] - report["steps_ms"])
    assert report["call_ms"] > 0 and report["plan_ms"] > 0 and report["batch_size"] == 2
    for row in report["steps"]:  # a step's output is its last layer's
        want = model.get_layer(row["layers"][-1]).output.shape
        assert row["shape"] == [2 if d is None else d for d in want]
        assert (row["gflops"] is None) != (row["gbps"] is None)
    assert report["ceilings"]["matmul_gflops"] == 100.0 and report["ort"] is None


def test_conv_step_counts_its_flops_and_rates_against_the_matmul_ceiling():
    report = profile_model(_model(), batch_size=2, repeats=3)
    conv = _step(report, "conv1")
    assert conv["flops"] == 2 * (2 * 14 * 14) * (3 * 3 * 3 * 8)  # BN and ReLU folded: nothing more
    assert conv["gflops"] == pytest.approx(conv["flops"] / (conv["median_ms"] / 1e3) / 1e9)
    assert conv["fraction"] == pytest.approx(conv["gflops"] / 100.0)
    gap = _step(report, "gap")
    assert gap["flops"] is None and gap["bytes"] == (2 * 14 * 14 * 8 + 2 * 8) * 4
    assert gap["fraction"] == pytest.approx(gap["gbps"] / 10.0)


@pytest.mark.parametrize("make, shape, flops", [
    (lambda: layers.Dense(5), (3, 7), 2 * 3 * 7 * 5),
    (lambda: layers.Dense(5), (3, 4, 7), 2 * 3 * 4 * 7 * 5),
    (lambda: layers.Conv1D(6, 3, padding="same"), (2, 9, 4), 2 * 18 * (3 * 4 * 6)),
    (lambda: layers.Conv2D(8, 3), (2, 10, 10, 4), 2 * 128 * (3 * 3 * 4 * 8)),
    (lambda: layers.Conv2D(8, 3, groups=2), (1, 10, 10, 4), 2 * 64 * (3 * 3 * 2 * 8)),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2), (1, 10, 10, 4), 2 * (64 * 8) * 9),
    (lambda: layers.SeparableConv2D(6, 3), (1, 10, 10, 4), 2 * 64 * (3 * 3 * 4 + 4 * 6)),
    (lambda: layers.Conv2DTranspose(6, 3), (1, 5, 5, 4), 2 * 25 * (3 * 3 * 6 * 4)),
    (lambda: layers.LocallyConnected1D(5, 3), (2, 8, 4), 2 * 2 * (6 * 12 * 5)),
    (lambda: layers.LSTM(6), (2, 5, 3), 2 * 2 * 5 * (3 * 24 + 6 * 24)),
    (lambda: layers.Bidirectional(layers.GRU(4)), (2, 5, 3), 2 * (2 * 2 * 5 * (3 * 12 + 4 * 12))),
    (lambda: layers.TimeDistributed(layers.Dense(5)), (2, 4, 7), 2 * 2 * 4 * 7 * 5),
    (lambda: layers.MaxPooling2D(), (1, 4, 4, 2), 0),
], ids=["dense", "dense-3d", "conv1d", "conv2d", "conv2d-groups", "depthwise", "separable", "transpose",
        "local1d", "lstm", "bidirectional-gru", "time-distributed", "pooling-uncounted"])
def test_step_flops_table(make, shape, flops):
    layer = make()
    x = np.ones(shape, "float32")
    y = np.asarray(layer(x))
    assert profile_lib.step_flops(layer, [x], [y]) == flops


def test_a_nested_model_is_one_step_with_its_layers_flops():
    base = Sequential([Input((8, 8, 3)), layers.Conv2D(4, 3, name="c"), layers.BatchNormalization(name="b")],
                      name="base")
    outer = Sequential([Input((8, 8, 3)), base, layers.Flatten(name="flat"), layers.Dense(3, name="head")])
    report = profile_model(outer, batch_size=2, repeats=2)
    assert [row["layers"] for row in report["steps"]] == [["base"], ["flat"], ["head"]]
    first = report["steps"][0]
    assert first["class"] == "Sequential" and first["shape"] == [2, 6, 6, 4]
    assert first["flops"] == 2 * (2 * 6 * 6) * (3 * 3 * 3 * 4) and first["gflops"] > 0


def test_threads_are_honoured_and_restored(monkeypatch):
    seen = []
    timed = profile_lib._timed_call

    def spy(*args):
        seen.append(get_num_threads())
        return timed(*args)

    monkeypatch.setattr(profile_lib, "_timed_call", spy)
    set_num_threads(3)
    try:
        report = profile_model(_model(), batch_size=1, threads=1, repeats=2)
        assert get_num_threads() == 3
    finally:
        set_num_threads(None)
    assert report["threads"] == 1 and report["ceilings"]["threads"] == 1 and set(seen) == {1}


def test_model_file_path_loads(tmp_path):
    path = str(tmp_path / "small.h5")
    _model().save(path)
    report = profile_model(path, batch_size=3, repeats=2)
    assert report["path"] == path and report["model"] == "small"
    assert _step(report, "dense")["shape"] == [3, 4]


def test_cli_writes_the_json_report(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["profile", DEMO, "--batch-size", "2", "--repeats", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "conv_b (Conv2D) + bn_b (BatchNormalization)" in printed and "overhead outside the steps" in printed
    report = json.loads(out.read_text())
    assert {"model", "batch_size", "threads", "ceilings", "total_ms", "call_ms", "plan_ms", "steps_ms", "overhead_ms",
            "steps", "ort"} <= set(report)
    assert report["batch_size"] == 2 and report["model"] == "small_cnn"
    row = report["steps"][0]
    assert {"layers", "class", "shape", "median_ms", "share", "gflops", "gbps", "fraction"} <= set(row)
    assert row["shape"][0] == 2


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    return err


def test_cli_mistakes_are_one_sentence(tmp_path, capsys):
    assert "No such file" in _error(capsys, ["profile", str(tmp_path / "none.h5")])
    assert "--batch-size must be a positive integer" in _error(capsys, ["profile", DEMO, "--batch-size", "0"])


def test_api_rejects_a_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        profile_model(_model(), batch_size=0)


def test_plot_writes_a_png_or_says_what_to_install(tmp_path, capsys):
    png = tmp_path / "steps.png"
    argv = ["profile", DEMO, "--repeats", "2", "--plot", str(png)]
    if importlib.util.find_spec("matplotlib") is not None:
        assert main(argv) == 0
        assert png.stat().st_size > 0
    else:
        assert "pip install matplotlib" in _error(capsys, argv)
        assert not png.exists()


def test_ceilings_are_measured_once_per_thread_count(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(profile_lib, "measure_ceilings", lambda: calls.append(get_num_threads()) or dict(FAKE_CEILINGS))
    first = profile_lib.machine_ceilings(1)
    again = profile_lib.machine_ceilings(1)
    assert calls == [1] and not first["cached"] and again["cached"]
    assert again["matmul_gflops"] == 100.0 and again["threads"] == 1
    profile_lib.machine_ceilings(2)
    assert calls == [1, 2]
    with open(tmp_path / "cache" / "klayers" / "ceilings.json") as f:
        assert len(json.load(f)) == 2


def test_measure_ceilings_gives_positive_rates():
    got = MEASURE(n=64, nbytes=1 << 20)
    assert got["matmul_gflops"] > 0 and got["copy_gbs"] > 0


@pytest.mark.parametrize("nodes, names, want, unmapped", [
    ([("StatefulPartitionedCall/model/conv1/Conv2D", 1.0)], ["conv1"], {"conv1": 1.0}, []),
    ([("model/conv1/Conv2D", 1.0), ("model/conv1_bn/FusedBatchNormV3", 2.0)], ["conv1", "conv1_bn"],
     {"conv1": 1.0, "conv1_bn": 2.0}, []),
    ([("model/conv1_bn:0_nchwc_kernel_time", 2.0)], ["conv1", "conv1_bn"], {"conv1_bn": 2.0}, []),
    ([("model/dense_1:0_kernel_time", 1.0)], ["dense", "dense_1"], {"dense_1": 1.0}, []),
    ([("functional/dense_1/MatMul", 1.0)], ["dense"], {"dense": 1.0}, []),
    ([("model/dense_relu/Relu", 1.0)], ["dense"], {}, ["model/dense_relu/Relu"]),
    ([("Transpose__12_kernel_time", 0.5), ("model/head/Softmax_kernel_time", 1.5), ("model/head/MatMul", 1.0)],
     ["head"], {"head": 2.5}, ["Transpose__12_kernel_time"]),
    ([("model/backbone/conv1/Conv2D", 1.0)], ["backbone", "conv1"], {"backbone": 1.0}, []),
], ids=["path-segment", "nested-names", "tensor-name", "longest-prefix", "uniquified-scope", "no-match", "unmapped-node",
        "outermost-wins"])
def test_map_nodes_to_layers(nodes, names, want, unmapped):
    got, left = profile_lib.map_nodes_to_layers(nodes, names)
    assert got == pytest.approx(want) and left == unmapped


@pytest.mark.parametrize("nodes, loops, call_ms, want, scale", [
    ([("a", 1.0), ("b", 2.0)], [], 10.0, [("a", 1.0), ("b", 2.0)], None),
    ([("a", 1.0), ("rnn/while_loop", 9.0)], ["rnn/while_loop"], 4.0, [("a", 1.0), ("rnn/while_loop", 3.0)], 1 / 3),
    ([("a", 1.0), ("rnn/while_loop", 2.0)], ["rnn/while_loop"], 9.0, [("a", 1.0), ("rnn/while_loop", 2.0)], 1.0),
    ([("a", 5.0), ("rnn/while_loop", 2.0)], ["rnn/while_loop"], 4.0, [("a", 5.0), ("rnn/while_loop", 0.0)], 0.0),
], ids=["no-loops", "inflated-loop", "never-scaled-up", "nothing-left"])
def test_rescale_loops(nodes, loops, call_ms, want, scale):
    got, factor = profile_lib.rescale_loops(nodes, loops, call_ms)
    assert [n for n, _ in got] == [n for n, _ in want]
    assert [t for _, t in got] == pytest.approx([t for _, t in want])
    assert factor == (None if scale is None else pytest.approx(scale))


def _fake_python(tmp_path, body):
    """An executable standing in for a Python with onnxruntime: answers the package probe, and
    runs ``body`` for the comparison script (its argv: path inputs out threads repeats ...)."""
    path = tmp_path / "fake-python"
    path.write_text(f"#!{sys.executable}\nimport json, sys\ncode = sys.argv[2]\n"
                    "if 'find_spec' in code:\n    print('[]')\n    sys.exit(0)\n"
                    "path, inputs, out = sys.argv[3:6]\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_vs_ort_maps_nodes_to_steps(tmp_path):
    nodes = [["model/conv1/Conv2D_kernel_time", 0.2], ["model/relu1/Relu:0_nchwc_kernel_time", 0.1],
             ["model/dense/MatMul_kernel_time", 0.05], ["Transpose__1_kernel_time", 0.01]]
    result = {"call_ms": 0.5, "nodes": nodes,
              "versions": {"keras": "2.x", "tensorflow": "2.x", "tf2onnx": "1.x", "onnxruntime": "1.x"}}
    python = _fake_python(tmp_path, f"json.dump({result!r}, open(out, 'w'))\n")
    report = profile_model(_model(), batch_size=2, repeats=2, ort_python=python)
    conv, dense, gap = _step(report, "conv1"), _step(report, "dense"), _step(report, "gap")
    assert conv["ort_ms"] == pytest.approx(0.3) and conv["ort_ratio"] == pytest.approx(conv["median_ms"] / 0.3)
    assert dense["ort_ms"] == pytest.approx(0.05)
    assert gap["ort_ms"] is None and gap["ort_ratio"] is None
    ort = report["ort"]
    assert ort["ratio"] == pytest.approx(report["call_ms"] / 0.5)
    assert ort["unmapped"] == ["Transpose__1_kernel_time"] and ort["unmapped_ms"] == pytest.approx(0.01)
    text = profile_lib.format_report(report)
    assert "vs ORT" in text and "klayers/ORT" in text


def test_vs_ort_failure_is_reported_not_raised(tmp_path):
    python = _fake_python(tmp_path, "sys.stderr.write('Traceback\\nRuntimeError: tf2onnx gave up\\n')\nsys.exit(1)\n")
    report = profile_model(_model(), batch_size=1, repeats=2, ort_python=python)
    assert report["ort"] == {"python": python, "error": "RuntimeError: tf2onnx gave up"}
    assert all(row["ort_ms"] is None for row in report["steps"])
    assert "ONNX Runtime: not compared (RuntimeError: tf2onnx gave up)" in profile_lib.format_report(report)


def test_vs_ort_without_the_packages_says_what_to_install(tmp_path, capsys):
    bare = tmp_path / "bare-python"  # this Python without site-packages: no onnxruntime, whatever is installed
    bare.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    bare.chmod(bare.stat().st_mode | stat.S_IEXEC)
    err = _error(capsys, ["profile", DEMO, "--vs-ort", str(bare)])
    assert "tf2onnx" in err and "onnxruntime" in err and "pip install" in err


def test_profile_is_the_documented_entry_with_the_issue_schema():
    import klayers.inspect

    assert klayers.inspect.profile is profile and "profile" in klayers.inspect.__all__
    model = _model()
    x = np.random.default_rng(0).standard_normal((3, 16, 16, 3)).astype("float32")
    report = profile(model, x, repeats=2)
    assert isinstance(report["model"], str) and report["model"] == "small"
    assert report["batch_size"] == 3 and report["repeats"] == 2
    assert isinstance(report["threads"], int) and report["threads"] >= 1
    assert isinstance(report["total_ms"], float) and report["total_ms"] > 0
    assert report["overhead_ms"] == pytest.approx(report["total_ms"] - sum(r["median_ms"] for r in report["steps"]))
    for row in report["steps"]:
        assert isinstance(row["layers"], list) and all(isinstance(n, str) for n in row["layers"])
        assert isinstance(row["class"], str) and isinstance(row["shape"], list) and row["shape"][0] == 3
        assert isinstance(row["median_ms"], float) and isinstance(row["share"], float)
        assert (row["gflops"] is None) != (row["gbps"] is None)
        assert all(isinstance(row[k], float) for k in ("gflops", "gbps") if row[k] is not None)
    json.dumps(report)  # plain data


def test_profile_defaults_takes_model_inputs_as_model_x_does_and_honours_threads(tmp_path):
    x0 = np.ones((2, 5), "float32")
    a, b = Input((5,), name="a"), Input((5,), name="b")
    model = Model([a, b], layers.Dense(2, name="d")(layers.Add(name="sum")([a, b])))
    as_list = profile(model, [x0, x0], threads=1, repeats=1)
    as_dict = profile(model, {"b": x0, "a": x0}, repeats=1)
    assert as_list["threads"] == 1 and as_list["batch_size"] == as_dict["batch_size"] == 2
    assert [r["layers"] for r in as_list["steps"]] == [r["layers"] for r in as_dict["steps"]]
    assert profile(model, None, repeats=1)["batch_size"] == 1
    path = str(tmp_path / "two.h5")
    model.save(path)
    assert profile(path, [x0[:1], x0[:1]], repeats=1)["path"] == path


def test_profile_repeats_none_means_the_default(monkeypatch):
    seen = []
    monkeypatch.setattr(profile_lib, "profile_model", lambda model, **kw: seen.append(kw) or {})
    profile(_model(), None)
    profile(_model(), None, repeats=4, threads=2)
    assert seen[0]["repeats"] == profile_lib.DEFAULT_REPEATS == 20 and seen[0]["threads"] is None
    assert seen[1]["repeats"] == 4 and seen[1]["threads"] == 2


@pytest.mark.parametrize("kwargs, x, match", [
    ({"repeats": 0}, None, "repeats must be a positive integer"),
    ({"threads": 0}, None, "threads must be a positive integer"),
    ({}, np.ones((2, 8, 8, 3), "float32"), "incompatible"),
    ({}, [np.ones((2, 16, 16, 3), "float32")] * 2, "expects 1 input"),
    ({}, np.ones((0, 16, 16, 3), "float32"), "no samples"),
], ids=["repeats", "threads", "wrong-shape", "too-many-inputs", "empty-batch"])
def test_profile_rejects_what_it_cannot_time(monkeypatch, kwargs, x, match):
    monkeypatch.setattr(profile_lib, "machine_ceilings", lambda *a: pytest.fail("measured before checking"))
    with pytest.raises(ValueError, match=match):
        profile(_model(), x, **kwargs)


def test_profile_rejects_a_subclassed_model():
    class Sub(Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(3)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.ones((1, 4), "float32"))
    with pytest.raises(ValueError, match="functional or Sequential model; Sub has no graph"):
        profile(sub, np.ones((1, 4), "float32"))


def test_cli_weights_only_files_are_one_line(capsys):
    refs = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "conformance", "references")
    for path in (os.path.join(refs, "keras2", "files", "small_cnn.w.h5"),
                 os.path.join(refs, "keras3", "files", "small_cnn.weights.h5")):
        assert os.path.exists(path)
        assert "holds only weights" in _error(capsys, ["profile", path, "--repeats", "1"])


def test_cli_a_saved_subclassed_model_is_one_line(tmp_path, capsys):
    class Custom(Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.d = layers.Dense(3)

        def call(self, x):
            return self.d(x)

    sub = Custom(name="custom")
    sub(np.ones((1, 4), "float32"))
    path = str(tmp_path / "sub.h5")
    try:
        sub.save(path)
    except ValueError as e:  # refused at saving: nothing for the command to read
        assert "only Sequential and functional models" in str(e)
        return
    err = _error(capsys, ["profile", path, "--repeats", "1"])
    assert "Custom" in err and "does not implement" in err


@pytest.mark.parametrize("array, match", [
    (np.ones((2, 8, 8, 3), "float32"), "must have shape (batch, 12, 12, 3)"),
    (np.ones((2, 12, 12), "float32"), "must have shape (batch, 12, 12, 3)"),
    (np.float32(1.0), "holds shape ()"),
    (np.ones((0, 12, 12, 3), "float32"), "no samples"),
    (np.full((1, 12, 12, 3), "a"), "numeric"),
], ids=["wrong-size", "wrong-rank", "scalar", "empty-batch", "strings"])
def test_cli_inputs_of_the_wrong_shape_are_one_line(tmp_path, capsys, array, match):
    path = str(tmp_path / "x.npy")
    np.save(path, array)
    assert match in _error(capsys, ["profile", DEMO, "--input", path, "--repeats", "1"])


def test_cli_an_npz_that_does_not_name_the_inputs_is_one_line(tmp_path, capsys):
    a, b = Input((5,), name="a"), Input((5,), name="b")
    model_path = str(tmp_path / "two.h5")
    Model([a, b], layers.Add()([a, b])).save(model_path)
    x = str(tmp_path / "x.npz")
    np.savez(x, a=np.ones((1, 5)), zz=np.ones((1, 5)), c=np.ones((1, 5)))
    assert "Name the arrays after the inputs" in _error(capsys, ["profile", model_path, "--input", x])
    one = str(tmp_path / "one.npy")
    np.save(one, np.ones((1, 5)))
    assert "Use an .npz file" in _error(capsys, ["profile", model_path, "--input", one])
