"""The conformance replay runs with the inference arena lending buffers of any size, as the
unit tests do (tests/conftest.py): every recorded model's plan reuses buffers from step to step
and call to call."""

from __future__ import annotations

import pytest

from klayers.backend import arena


@pytest.fixture(autouse=True)
def _arena_lends_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arena, "MIN_BYTES", 0)
