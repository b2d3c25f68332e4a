"""The shipped benchmark registry and runner (``klayers.bench``): names on a command line, and a
runner that needs neither a source checkout's ``benchmarks/`` nor TensorFlow to import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import klayers
from klayers.bench import choose, families, select
from klayers.bench.compare import main, selected

FAMILIES = ["dense", "conv", "core", "local", "pooling", "recurrent"]


def test_every_family_is_registered_in_the_package():
    assert families() == FAMILIES
    assert all(select(family=f) for f in FAMILIES)


@pytest.mark.parametrize("names, expected", [
    (["pooling"], lambda w: w.family == "pooling"),
    (["pool"], lambda w: w.family == "pooling"),  # the start of one family's name
    (["rec"], lambda w: w.family == "recurrent"),
    (["conv", "lstm"], lambda w: w.family == "conv" or "lstm" in w.name),
    (["co"], lambda w: "co" in w.name),  # starts conv and core: a pattern on names
    ([""], lambda w: True),  # every name's substring, no family's start
    (["b256.*f64$"], lambda w: "b256" in w.name and w.name.endswith("f64")),
    ([], lambda w: True),
], ids=["family", "family-prefix", "short-prefix", "family-and-pattern", "ambiguous-prefix", "empty", "regex", "none"])
def test_choose_names(names, expected):
    chosen = choose(names)
    assert chosen and chosen == [w for w in select() if expected(w)]


@pytest.mark.parametrize("name", ["xyz", "pools", "conv2d["], ids=["word", "longer-than-family", "bad-regex"])
def test_a_name_that_matches_nothing_lists_the_families(name):
    with pytest.raises(LookupError, match="the families are dense, conv, core, local, pooling, recurrent"):
        choose([name])


def test_a_mistyped_workload_name_offers_close_ones():
    with pytest.raises(LookupError, match="close workload names: maxpool2d-b1-112x112x64-k3s2-same-f32"):
        choose(["maxpol2d-b1-112x112x64-k3s2-same-f32"])


def test_runner_options_narrow_the_names():
    assert [w.name for w in selected(["pool"], pattern="gap2d")] == ["gap2d-b1-7x7x1280-f32", "gap2d-b1-56x56x256-f32"]
    assert selected([], family="pool") == select(family="pooling")
    with pytest.raises(LookupError, match="no family 'nope'; the families are dense"):
        selected([], family="nope")
    with pytest.raises(LookupError, match="no workload matches names 'pool' and --workload 'lstm'"):
        selected(["pool"], pattern="lstm")


def test_runner_lists_and_refuses(capsys):
    assert main(["pool", "--list"]) == 0  # `klayers bench pool` used to answer "No workload matches None"
    assert capsys.readouterr().out.split() == [w.name for w in select(family="pooling")]
    assert main(["--family", "pool", "--workload", "gap2d", "--list"]) == 0
    assert capsys.readouterr().out.split() == ["gap2d-b1-7x7x1280-f32", "gap2d-b1-56x56x256-f32"]
    for argv in (["xyz"], ["--family", "nope"], ["pool", "--workload", "lstm"]):
        assert main(argv + ["--list"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "the families are dense, conv, core, local, pooling, recurrent" in err


def test_the_runner_imports_without_benchmarks_or_tensorflow(tmp_path):
    """From a folder that holds only the klayers package (as site-packages does), with no
    ``benchmarks/`` on the path: the runner and its engines import, and TensorFlow does not."""
    site = tmp_path / "site"
    site.mkdir()
    os.symlink(os.path.dirname(klayers.__file__), site / "klayers", target_is_directory=True)
    code = ("import sys, klayers, klayers.bench.compare, klayers.bench.engines; "
            "print(klayers.__file__); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('workloads', 'engines', 'compare_keras', 'tensorflow', 'tf_keras', 'onnxruntime')))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=dict(env, PYTHONPATH=str(site)),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    path, modules = out.stdout.splitlines()
    assert path == str(site / "klayers" / "__init__.py")
    assert modules == "[]"
