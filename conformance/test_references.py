"""Checks on the recorded data itself (no replay): the MANIFEST agrees with the family files, and
the floors the issues set for some families' recordings hold (a re-recording that loses cases
fails here, not silently in the replay)."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from conformance import refs, table


def test_manifest_counts_match_the_family_files() -> None:
    with open(os.path.join(refs.REFS, "MANIFEST.json")) as f:
        manifest = json.load(f)
    recorded = {f"{d}/{fam}": len(refs.family(fam, d)["cases"]) for d, fams in table.recorded_families().items()
                for fam in fams}
    assert {k: v["cases"] for k, v in manifest.items()} == recorded


@pytest.mark.parametrize("cls", ["LocallyConnected1D", "LocallyConnected2D"])
def test_every_local_implementation_data_format_and_padding_is_recorded(cls: str) -> None:
    layers = [m for _, m in refs.cases("local", "keras2") if m.get("kind") is None]
    seen = {(m["class_name"], m["config"]["implementation"], m["config"]["data_format"]) for m in layers}
    for impl in (1, 2, 3):
        assert (cls, impl, "channels_last") in seen or (cls, impl, "channels_first") in seen
    assert {(c, f) for c, _, f in seen if c == cls} == {(cls, "channels_last"), (cls, "channels_first")}
    per_class = [m for m in layers if m["class_name"] == cls]
    assert len(per_class) >= 8
    assert {m["config"]["padding"] for m in per_class} == {"valid", "same"}
    assert {m["config"]["use_bias"] for m in per_class} == {True, False}
    assert any(max(m["config"]["strides"]) > 1 for m in per_class)
    assert all(1 in m["batches"] and max(m["batches"]) > 1 for m in per_class)


def test_pooling_case_counts() -> None:
    """The pooling issue's floor: at least 8 recorded configurations per layer class."""
    cases = refs.cases("pooling", "keras2")
    per_class = Counter(m["class_name"] for _, m in cases if m.get("kind") is None)
    bases = [n for n in per_class if not n.endswith(("Pool1D", "Pool2D", "Pool3D"))]
    assert len(bases) == 12
    assert all(per_class[n] >= 8 for n in bases), per_class
    assert sum(m.get("kind") == "masked" for _, m in cases) >= 5
    assert sum(m.get("kind") == "error" for _, m in cases) >= 6
