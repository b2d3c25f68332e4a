"""The tape of a model call: its kernel calls with their arrays, recorded once, replayed after.

An inference call with a given input signature does the same work on the same buffers every
time: the plan's steps call the same prepared kernels, and the arena hands out the same
buffers in the same order. What changes is the input's values. So a model records one call:
every kernel call, with the arrays it was given, goes on the tape (the ops call kernels
through :func:`run`, or :func:`note` a call they have made), and later calls with that
signature copy their inputs into the recorded input buffers and replay the tape, a loop of
kernel calls with no planning, no arena bookkeeping and no shape arithmetic between them
(``klayers.engine.functional`` owns the recording, its checks and the replay).

A tape is only as good as its completeness: work done outside :func:`run` and :func:`note`
(NumPy code in a layer's ``call``) is not replayed. Code that knows it does such work calls
:func:`spoil`, and the engine checks every recording before it trusts it (it replays it on
other input values and compares with a normal call). A replayed call skips every check the ops
made in Python, so a recorded call must be safe for any input values (a kernel that indexes by
input values checks its indices itself).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, List, Optional, Tuple

__all__ = ["Tape", "SETTINGS", "note", "recording", "run", "spoil", "start"]

_LOCAL = threading.local()

#: the settings recorded calls depend on: ``[thread count]`` (kept by ``klayers.ops.threads``);
#: a tape recorded under other settings is not replayed
SETTINGS: list = [None]


class Tape:
    """The recorded calls ``[(fn, args)]`` of one model call, in order; ``spoiled`` when some
    of its work could not be recorded."""

    __slots__ = ("calls", "spoiled")

    def __init__(self) -> None:
        self.calls: List[Tuple[Callable[..., Any], Tuple[Any, ...]]] = []
        self.spoiled = False

    def replay(self) -> None:
        """Run every recorded call again, in order (on the arrays they were recorded with)."""
        for fn, args in self.calls:
            fn(*args)


def recording() -> Optional[Tape]:
    """The tape this thread records into, or None."""
    return getattr(_LOCAL, "tape", None)


def start(tape: Optional[Tape]) -> Optional[Tape]:
    """Record this thread's kernel calls into ``tape`` (None: stop); returns the tape before."""
    before = getattr(_LOCAL, "tape", None)
    _LOCAL.tape = tape
    return before


def run(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, recorded when this thread records. ``fn`` must depend on nothing but
    its arguments (and write only into them), so that replaying it on the same arrays redoes
    its work."""
    out = fn(*args)
    tape = getattr(_LOCAL, "tape", None)
    if tape is not None:
        tape.calls.append((fn, args))
    return out


def note(fn: Callable[..., Any], *args: Any) -> None:
    """Record ``fn(*args)``, a call the caller has just made, when this thread records."""
    tape = getattr(_LOCAL, "tape", None)
    if tape is not None:
        tape.calls.append((fn, args))


def spoil() -> None:
    """The current call did work the tape cannot replay: its recording is not used."""
    tape = getattr(_LOCAL, "tape", None)
    if tape is not None:
        tape.spoiled = True
