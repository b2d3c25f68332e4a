"""Tests of the benchmark harness itself (registry, statistics, report), not of speed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from klayers.bench import workloads
from klayers.bench.compare import (
    TimingPlan,
    fmt_time,
    main,
    median_iqr,
    output_error,
    render,
    table,
    time_interleaved,
)
from klayers.bench.engines import klayers_missing_reason
from klayers.bench.workloads import Workload, dense_workload, random_weights, select


def test_registry_names_are_unique_and_selectable():
    names = [w.name for w in select()]
    assert len(names) == len(set(names)) == len(workloads.REGISTRY)
    assert select("b256-1024x4096-relu-f32")[0].name == "dense-b256-1024x4096-relu-f32"
    assert {w.dtype for w in select(r"f64$")} == {"float64"}
    assert select(family="dense") and not select(family="no-such-family")


def test_register_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        workloads.register(select()[0])


def test_dense_work_counts():
    w = dense_workload(256, 1024, 4096, "relu", "float32")
    assert w.flops == 2 * 256 * 1024 * 4096 + 2 * 256 * 4096
    assert w.bytes_moved == 4 * (256 * 1024 + 1024 * 4096 + 4096 + 256 * 4096)
    assert w.bound == "compute" and dense_workload(1, 8, 8).bound == "memory"
    assert w.rate(1.0)[1] == "GFLOP/s" and dense_workload(1, 8, 8).rate(1.0)[1] == "GB/s"
    assert w.keras_config() == {"class_name": "Dense", "config": {
        "units": 4096, "activation": "relu", "use_bias": True, "dtype": "float32"}}
    assert "dtype" not in w.config["config"]  # keras_config copies


def test_workload_needs_some_work_count():
    with pytest.raises(ValueError, match="flops or bytes_moved"):
        Workload("x", "dense", {"class_name": "Dense", "config": {}}, (1, 1))


def test_inputs_and_weights_are_seeded():
    w = select()[0]
    np.testing.assert_array_equal(w.make_input(), w.make_input())
    a, b = random_weights([(4, 3), (3,)], "float64"), random_weights([(4, 3), (3,)], "float64")
    assert [x.shape for x in a] == [(4, 3), (3,)] and a[1].dtype == np.float64
    np.testing.assert_array_equal(a[0], b[0])
    assert np.abs(a[1]).max() > 0


def test_statistics_and_formatting():
    assert median_iqr([1.0, 2.0, 3.0, 4.0, 5.0]) == (3.0, 2.0)
    assert output_error(np.ones(3), np.ones(3)) == 0.0
    assert output_error(np.ones(3), np.ones(4)) == float("inf")
    assert output_error(np.array([10.5]), np.array([10.0])) == pytest.approx(0.05)
    assert fmt_time(1.2e-3, 1e-4) == "1.2 ±0.1 ms" and fmt_time(3e-6) == "3 us"


def test_table_ratio_and_rates():
    row = {"workload": "w", "bound": "compute", "dtype": "float32", "problems": {"b": "MISMATCH"},
           "engines": {"klayers": {"median_s": 2e-3, "iqr_s": 1e-4, "rate": 50.0, "unit": "GFLOP/s"},
                       "a": {"median_s": 1e-3, "iqr_s": 1e-4, "rate": 100.0, "unit": "GFLOP/s"}}}
    header, cells = table([row], ["klayers", "a", "b"], {"matmul_gflops_float32": 200.0})
    assert cells[0][3] == "MISMATCH"
    assert cells[0][4] == "2.00 (a)"
    assert cells[0][5:] == ["50 GFLOP/s (25 %)", "100 GFLOP/s (50 %)"]
    assert render(header, cells, markdown=True).splitlines()[1] == "|---|---|---|---|---|---|---|"


@pytest.mark.skipif(klayers_missing_reason("Dense") is not None,
                    reason=str(klayers_missing_reason("Dense")))
def test_compare_keras_runs_klayers(tmp_path, capsys):
    import klayers

    out = tmp_path / "r.json"
    try:
        status = main(["--workload", "dense-b1-512x512-relu-f32", "--engines", "klayers",
                       "--repeats", "2", "--min-sample-ms", "0.1", "--cooldown-ms", "0",
                       "--no-ceilings",
                       "--json", str(out)])
    finally:
        klayers.set_num_threads(None)
    assert status == 0
    result = json.loads(out.read_text())
    assert result["rows"][0]["engines"]["klayers"]["median_s"] > 0
    assert "dense-b1-512x512-relu-f32" in capsys.readouterr().out


def test_time_interleaved_takes_every_sample():
    calls = {"a": 0, "b": 0}

    def runner(name):
        def run():
            calls[name] += 1
        return run

    samples = time_interleaved({n: runner(n) for n in calls}, TimingPlan(7, 3, 0.0, 0.0))
    assert {n: len(v) for n, v in samples.items()} == {"a": 7, "b": 7}
    assert all(t >= 0 for v in samples.values() for t in v) and calls["a"] >= 7


def test_multi_input_workload_shapes_and_inputs():
    w = Workload("m", "core", {"class_name": "Add", "config": {}}, [[2, 3], (2, 3)], bytes_moved=1)
    assert w.multi_input and w.input_shape == ((2, 3), (2, 3)) and w.batch == 2
    assert w.input_shapes == [(2, 3), (2, 3)]
    xs, again = w.make_input(), w.make_input()
    assert isinstance(xs, list) and [x.shape for x in xs] == [(2, 3), (2, 3)]
    assert not np.array_equal(xs[0], xs[1])  # one generator, drawn in order
    np.testing.assert_array_equal(xs[1], again[1])
    single = select(family="dense")[0]
    assert not single.multi_input and single.input_shapes == [single.input_shape]
    assert isinstance(single.make_input(), np.ndarray)


def test_engine_helpers_take_lists():
    from klayers.bench.engines import call_args, first_input, input_shapes

    a, b = np.zeros((2, 3)), np.ones((2, 4))
    assert input_shapes([a, b]) == [(2, 3), (2, 4)] and input_shapes(a) == (2, 3)
    assert first_input([a, b]) is a and first_input(a) is a
    assert call_args([a, b]) == (a, b) and call_args(a) == (a,)


def test_core_family_has_every_issue_3_target_at_batch_1_and_64():
    names = [w.name for w in select(family="core")]
    for layer in ("dense", "batchnorm", "layernorm", "embedding", "softmax", "concatenate", "add"):
        for batch in (1, 64):
            assert any(n.startswith(f"{layer}-b{batch}-") for n in names), (layer, batch)
    assert all(w.multi_input for w in select(r"^(concatenate|add)-", family="core"))


@pytest.mark.skipif(klayers_missing_reason("Concatenate") is not None,
                    reason=str(klayers_missing_reason("Concatenate")))
def test_compare_keras_runs_a_multi_input_workload(tmp_path):
    import klayers

    out = tmp_path / "r.json"
    try:
        status = main(["--workload", "concatenate-b1-", "--engines", "klayers", "--repeats", "2",
                       "--min-sample-ms", "0.1", "--cooldown-ms", "0", "--no-ceilings", "--json", str(out)])
    finally:
        klayers.set_num_threads(None)
    assert status == 0
    assert json.loads(out.read_text())["rows"][0]["engines"]["klayers"]["median_s"] > 0
