"""``klayers bench``: the layer benchmark as an installed package runs it (no source checkout)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import klayers
from klayers import cli
from klayers.cli import main


def test_bench_runs_where_only_the_package_is(tmp_path):
    """``python -m klayers bench`` with klayers found in a folder holding only the package (as in
    site-packages) and the working directory elsewhere: it prints the table and draws the plot.
    Without TensorFlow the plot is klayers's rate against this machine's limits."""
    site = tmp_path / "site"
    site.mkdir()
    os.symlink(os.path.dirname(klayers.__file__), site / "klayers", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    out = subprocess.run([sys.executable, "-m", "klayers", "bench", "gap2d-b1-7x7", "--repeats", "1", "--plot", "b.png"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("workload") and "klayers rate" in line for line in lines)
    row = next(line for line in lines if line.startswith("gap2d-"))
    assert row.split()[0] == "gap2d-b1-7x7x1280-f32" and "GB/s (" in row
    assert not any(line.startswith("gap2d-b1-56x56") for line in lines)
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    return err


def test_bench_unknown_name_lists_the_families(capsys):
    err = _error(capsys, ["bench", "pool", "transformer"])
    assert err.startswith("klayers bench: error: no family or workload matches 'transformer'")
    assert "the families are dense, conv, core, local, pooling, recurrent" in err


def test_bench_refuses_bad_numbers_and_a_missing_python(tmp_path, capsys):
    assert "--repeats must be positive" in _error(capsys, ["bench", "pool", "--repeats", "0"])
    assert "cannot run --python" in _error(capsys, ["bench", "pool", "--python", str(tmp_path / "no-python")])


ROW = {"workload": "w", "dtype": "float32",
       "engines": {"klayers": {"median_s": 2e-3, "rate": 50.0, "unit": "GFLOP/s"},
                   "klayers model": {"median_s": 1e-3, "rate": 100.0, "unit": "GFLOP/s"}}}
PEER = {"onnxruntime": {"median_s": 1e-3, "rate": 100.0, "unit": "GFLOP/s"}}


@pytest.mark.parametrize("engines, ceilings", [
    (PEER, None),  # klayers / fastest peer
    ({}, {"matmul_gflops_float32": 200.0}),  # no peer: klayers's rate against the machine's limit
], ids=["vs-peer", "vs-limits"])
def test_bench_plot_writes_a_png(tmp_path, engines, ceilings, capsys):
    row = dict(ROW, engines=dict(ROW["engines"], **engines))
    cli._plot([row], str(tmp_path / "p.png"), ceilings)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {tmp_path / 'p.png'}" in capsys.readouterr().out


def test_bench_plot_without_peers_or_limits_says_what_it_needs(tmp_path):
    with pytest.raises(cli.UsageError, match="--vs-keras"):  # klayers model is no peer
        cli._plot([ROW], str(tmp_path / "p.png"), {})
    assert not (tmp_path / "p.png").exists()
