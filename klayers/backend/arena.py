"""The arena of a model call: intermediate tensors' buffers, reused from one call to the next.

A model call in inference installs an :class:`Arena` for its thread (:func:`activate`); the
kernels' ops allocate their outputs with :func:`empty`, which takes a buffer of that many bytes
from the arena's free lists when one is active (a plain ``np.empty`` otherwise). The graph
runner tells the arena what it holds: :meth:`Arena.hold` for every value it stores,
:meth:`Arena.drop` after a tensor's last use (the buffer goes back to the free lists when no
stored value views it any more: liveness reuse within the call), :meth:`Arena.escape` for
whatever leaves the call (model outputs, inputs of layers that may keep them), and
:meth:`Arena.end` when the call returns: every buffer still lent goes back. After the first
call with a given input shape the same sizes are requested in the same order, so repeated
predicts allocate nothing new (no page faults, no allocator trimming), and the arena holds at
most the call's peak of live intermediate bytes.

An arena belongs to one call at a time: concurrent calls of one model take different arenas
(the model keeps a few), so no two calls ever share a buffer.

Buffers are 64-byte aligned; arrays smaller than :data:`MIN_BYTES` come from ``np.empty``
(the allocator serves them from its own free lists without touching new pages).
"""

from __future__ import annotations

import threading
from math import prod
from typing import Any, Dict, List, Optional, Sequence, Set

import numpy as np

__all__ = ["Arena", "MIN_BYTES", "activate", "allocator", "current", "empty"]

#: arrays below this size are not worth the bookkeeping (malloc's small bins are warm)
MIN_BYTES = 1 << 16
_ALIGN = 64

_LOCAL = threading.local()


def current() -> Optional[Arena]:
    """The arena active in this thread, or None."""
    return getattr(_LOCAL, "arena", None)


def activate(arena: Optional[Arena]) -> Optional[Arena]:
    """Make ``arena`` (or None: no arena) this thread's active arena; returns the one before."""
    before = getattr(_LOCAL, "arena", None)
    _LOCAL.arena = arena
    return before


def empty(shape: Sequence[int], dtype: Any) -> np.ndarray:
    """An uninitialized C-contiguous array: from the active arena, else ``np.empty``."""
    arena = getattr(_LOCAL, "arena", None)
    if arena is None or prod(shape) * np.dtype(dtype).itemsize < MIN_BYTES:
        return np.empty(shape, dtype)
    return arena.take(shape, dtype)


def allocator(shape: Sequence[int], dtype: Any) -> Any:
    """The allocation function for arrays of this shape and dtype, decided once (a prepared
    call keeps it): :func:`empty`, or ``np.empty`` for arrays too small to lend."""
    return np.empty if prod(shape) * np.dtype(dtype).itemsize < MIN_BYTES else empty


#: a request may take a free buffer up to this many times its size (when none fits exactly)
_SLACK = 2


class Arena:
    """Free lists of 64-byte-aligned byte buffers by size, and the buffers lent out.

    ``lent`` maps ``id(raw)`` to ``[raw, stored values viewing it, its aligned bytes]``; a
    buffer is found from any view of it through NumPy's ``base`` (the array that owns the
    memory, ``raw``).
    """

    __slots__ = ("free", "lent", "taken", "peak", "_live")

    def __init__(self) -> None:
        self.free: Dict[int, List[np.ndarray]] = {}
        self.lent: Dict[int, list] = {}
        #: ids of the buffers lent during the current call
        self.taken: Set[int] = set()
        #: the most bytes lent at once (during any call so far)
        self.peak = 0
        self._live = 0

    @property
    def nbytes(self) -> int:
        """Bytes the arena owns now (free and lent)."""
        return sum(e[0].nbytes for e in self.lent.values()) + sum(
            r.nbytes for pool in self.free.values() for r, _ in pool
        )

    def take(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        """An array of ``shape`` and ``dtype`` on a free buffer of its size, else on the
        smallest free one up to :data:`_SLACK` times larger, else on a new one."""
        dtype = np.dtype(dtype)
        n = prod(shape) * dtype.itemsize
        if n < MIN_BYTES:
            return np.empty(shape, dtype)
        pool = self.free.get(n)
        if not pool:
            fits = [size for size, p in self.free.items() if p and n < size <= _SLACK * n]
            pool = self.free[min(fits)] if fits else None
        if pool:
            raw, buf = pool.pop()
        else:
            raw = np.empty(n + _ALIGN, np.uint8)
            off = -raw.__array_interface__["data"][0] % _ALIGN
            buf = raw[off : off + n]
        self.lent[id(raw)] = [raw, 0, buf]
        self.taken.add(id(raw))
        self._live += buf.nbytes
        if self._live > self.peak:
            self.peak = self._live
        return buf[:n].view(dtype).reshape(shape)

    def _entry(self, value: Any) -> Optional[list]:
        if type(value) is not np.ndarray:
            return None
        root = value.base
        entry = self.lent.get(id(value if root is None else root))
        return entry if entry is not None and entry[0] is (value if root is None else root) else None

    def hold(self, value: Any) -> None:
        """A stored value (any view of a lent buffer counts)."""
        entry = self._entry(value)
        if entry is not None:
            entry[1] += 1

    def drop(self, value: Any) -> None:
        """A stored value past its last use: its buffer is free again once no stored value views it."""
        entry = self._entry(value)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                self._give_back(entry)

    def escape(self, value: Any) -> None:
        """``value`` leaves the call (or may be kept by code the arena cannot see): its buffer
        is the caller's from now on, never lent again."""
        entry = self._entry(value)
        if entry is not None:
            del self.lent[id(entry[0])]
            self._live -= entry[2].nbytes

    def _give_back(self, entry: list) -> None:
        del self.lent[id(entry[0])]
        n = entry[2].nbytes
        self._live -= n
        self.free.setdefault(n, []).append((entry[0], entry[2]))

    def end(self) -> None:
        """The call returned: every buffer still lent is free again; free buffers this call
        did not use are released (the input shape changed)."""
        for entry in list(self.lent.values()):
            self._give_back(entry)
        taken = self.taken
        for n in list(self.free):
            kept = [rb for rb in self.free[n] if id(rb[0]) in taken]
            if kept:
                self.free[n] = kept
            else:
                del self.free[n]
        self.taken = set()
        self._live = 0
