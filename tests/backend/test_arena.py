"""klayers.backend.arena: buffers lent by size, 64-byte aligned, back after the last stored
view is dropped or when the call ends, never again once escaped; sizes a call did not ask
for are released at its end."""

from __future__ import annotations

import numpy as np

from klayers.backend import arena as A


def _addr(a):
    return a.__array_interface__["data"][0]


def test_take_is_aligned_and_reuses_a_dropped_buffer_of_the_same_size():
    ar = A.Arena()
    x = ar.take((3, 5), "float32")
    assert x.shape == (3, 5) and x.dtype == np.float32 and x.flags.c_contiguous and _addr(x) % 64 == 0
    ar.hold(x)
    y = ar.take((15,), "float32")  # same size, x still held: another buffer
    assert not np.shares_memory(x, y)
    ar.drop(x)
    z = ar.take((5, 3), "float32")  # x's buffer is free again
    assert np.shares_memory(z, x) and _addr(z) == _addr(x)
    w = ar.take((2, 5), "float64")  # other size: new
    assert not np.shares_memory(w, z)


def test_a_view_keeps_its_buffer_lent():
    ar = A.Arena()
    x = ar.take((4, 4), "float64")
    ar.hold(x)
    v = x.reshape(16)[2:]
    ar.hold(v)
    ar.drop(x)
    assert not np.shares_memory(ar.take((4, 4), "float64"), x)  # v still views it
    ar.drop(v)
    assert np.shares_memory(ar.take((4, 4), "float64"), x)


def test_escaped_buffers_are_never_lent_again_and_end_returns_the_rest():
    ar = A.Arena()
    out = ar.take((8,), "float32")
    ar.hold(out)
    tmp = ar.take((8,), "float32")  # taken, never held (a nested model's intermediate)
    ar.escape(out)
    ar.end()
    a, b = ar.take((8,), "float32"), ar.take((8,), "float32")
    assert np.shares_memory(a, tmp) and not np.shares_memory(a, out) and not np.shares_memory(b, out)
    assert ar.peak == 2 * 32


def test_end_releases_free_buffers_of_sizes_the_call_did_not_ask_for():
    ar = A.Arena()
    ar.take((100,), "float32")
    ar.take((7,), "float64")
    ar.end()
    assert sorted(ar.free) == [56, 400]
    ar.take((100,), "float32")
    ar.end()
    assert sorted(ar.free) == [400] and ar.nbytes == 400 + 64


def test_values_that_are_not_lent_are_ignored():
    ar = A.Arena()
    x = np.ones(10)
    for f in (ar.hold, ar.drop, ar.escape):
        f(x)
        f(None)
        f([x])
    assert ar.lent == {} and ar.free == {}


def test_small_arrays_and_no_active_arena_use_np_empty(monkeypatch):
    monkeypatch.setattr(A, "MIN_BYTES", 1 << 16)
    ar = A.Arena()
    small = ar.take((10,), "float32")
    assert ar.lent == {} and small.shape == (10,)
    assert A.current() is None
    assert A.empty((3,), "int64").dtype == np.int64
    before = A.activate(ar)
    try:
        big = A.empty((1 << 15,), "float32")
        assert len(ar.lent) == 1 and big.shape == (1 << 15,)
    finally:
        A.activate(before)
    assert A.current() is None


def test_a_request_takes_the_smallest_free_buffer_up_to_twice_its_size():
    ar = A.Arena()
    big = ar.take((250,), "float32")  # 1000 bytes
    mid = ar.take((200,), "float32")  # 800 bytes
    ar.hold(big)
    ar.hold(mid)
    ar.drop(big)
    ar.drop(mid)
    a = ar.take((150,), "float32")  # 600 bytes: the 800-byte buffer, not the 1000
    assert np.shares_memory(a, mid) and a.shape == (150,) and _addr(a) % 64 == 0
    b = ar.take((100,), "float32")  # 400 bytes: 1000 > 2 x 400, a new buffer
    assert not np.shares_memory(b, big)
    c = ar.take((125,), "float64")  # 1000 bytes: the first buffer
    assert np.shares_memory(c, big)
    ar.end()
    assert ar.nbytes == 1000 + 800 + 400 + 3 * 64
