"""The package around the layers: threads, the build, the command line."""

import os
import shutil
import subprocess
import sys

import pytest

import klayers
from klayers.ops.threads import blas_controller, blas_single_threaded

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _scipy_blas_threads():
    return [lib["num_threads"] for lib in blas_controller().info() if lib["user_api"] == "blas"]


def test_set_num_threads_sets_openmp_and_blas_together():
    before = klayers.get_num_threads()
    try:
        klayers.set_num_threads(1)
        assert klayers.get_num_threads() == 1
        assert set(_scipy_blas_threads()) == {1}
        with klayers.num_threads(2):
            assert klayers.get_num_threads() == 2
            assert set(_scipy_blas_threads()) == {2}
        assert klayers.get_num_threads() == 1
    finally:
        klayers.set_num_threads(None)
    assert klayers.get_num_threads() == before == len(os.sched_getaffinity(0))


def test_blas_single_threaded_restores_limits():
    klayers.set_num_threads(2)
    try:
        with blas_single_threaded():
            assert set(_scipy_blas_threads()) == {1}
        assert set(_scipy_blas_threads()) == {2}
    finally:
        klayers.set_num_threads(None)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_set_num_threads_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="positive integer"):
        klayers.set_num_threads(bad)


def test_unbuilt_checkout_says_how_to_build(tmp_path):
    """A source tree without compiled kernels fails with an ImportError that says how to build."""
    shutil.copytree(os.path.join(ROOT, "klayers"), tmp_path / "klayers",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    proc = subprocess.run([sys.executable, "-c", "import klayers"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "pip install ." in proc.stderr


def test_openmp_build_fact_is_reported():
    from klayers._ext import info

    assert isinstance(info.openmp_enabled(), bool)
    assert info.openmp_max_threads() >= 1


def test_cli_info_and_demo():
    from klayers.cli import main

    assert main(["info"]) == 0
    assert main(["demo", "--batch", "300", "--threads", "1"]) == 0
    klayers.set_num_threads(None)
