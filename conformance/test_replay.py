"""Replay every case recorded from real Keras (``conformance/references/``) through the table of
``conformance/table.py``: one parametrized test, ids ``family-dialect-case[-check][-item]``.

The table must account for the data: every row replays at least one case, and every recorded
case of every family and dialect is replayed by at least one row, so a case cannot drop out
silently (a family or row that comes out empty fails here)."""

from __future__ import annotations

import inspect

import pytest

from conformance import refs, table

REPLAYS = table.params()


@pytest.mark.parametrize("replay", REPLAYS)
def test_replay(replay: table.Replay, request: pytest.FixtureRequest) -> None:
    # a check names the pytest fixtures it needs (tmp_path, caplog) after the case
    wanted = list(inspect.signature(replay.check.run).parameters)[1:]
    replay.check.run(replay.case, **{name: request.getfixturevalue(name) for name in wanted})


def test_the_table_replays_something() -> None:
    assert len(REPLAYS) > 1000, len(REPLAYS)


@pytest.mark.parametrize("check", table.TABLE, ids=[c.id for c in table.TABLE])
def test_every_row_replays_cases(check: table.Check) -> None:
    assert check.cases(), f"row {check.id} takes no recorded case"


def test_replay_ids_are_unique() -> None:
    ids = [r.id for r in table.replays()]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("dialect", refs.DIALECTS)
def test_every_recorded_case_is_replayed(dialect: str) -> None:
    families = table.recorded_families()[dialect]
    assert families, f"no families recorded for {dialect}"
    replayed = {(r.case.family, r.case.name) for r in table.replays() if r.case.dialect == dialect}
    missing = [(family, name) for family in families for name, _ in refs.cases(family, dialect)
               if (family, name) not in replayed]
    assert not missing, f"{dialect}: recorded cases no row of conformance/table.py replays: {missing}"
