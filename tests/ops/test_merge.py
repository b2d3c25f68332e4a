"""The compiled merge (``binary_forward`` of ``_ext/activation.pyx`` through ``klayers.ops.merge``)
against its NumPy twin: every operation, float32 and float64, 1 and N threads, equal shapes and
the channel broadcast of squeeze-and-excitation (either side), NaN and inf, and the pairs it
leaves to NumPy (other broadcasts, mixed dtypes, integers)."""

import numpy as np
import pytest

from klayers._ext import activation as _act
from klayers.ops import merge as M
from tests.helpers.kernel_twin import check_kernel_twin

OPS = sorted(M.MERGE_OPS)
# shapes of the inputs, in order
CASES = [
    [(4, 5, 6, 7), (4, 5, 6, 7)],            # residual add
    [(3, 9, 9, 130), (3, 1, 1, 130)],        # squeeze-and-excitation scale
    [(3, 1, 1, 130), (3, 9, 9, 130)],        # ... the other way round
    [(2, 50, 33), (2, 1, 33), (2, 50, 33)],  # three inputs, rank 3
    [(6, 4), (6, 4)],                        # rank 2
    [(5, 7, 3), (1, 7, 3)],                  # a broadcast the kernel leaves to NumPy
    [(2, 3000, 64), (2, 3000, 64)],          # several blocks
]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shapes", CASES, ids=["x".join(map(str, c[0])) + f"-{len(c)}in-{i}" for i, c in enumerate(CASES)])
def test_merge_matches_its_twin(shapes, op, monkeypatch):
    monkeypatch.setattr(M, "SERIAL_VALUES", 0)  # the kernel for every size (small ones take NumPy)
    if op == "subtract" and len(shapes) != 2:
        shapes = shapes[:2]

    def make_case(dtype):
        rng = np.random.default_rng(len(shapes) * 100 + sum(map(sum, shapes)))
        xs = [rng.standard_normal(s).astype(dtype) for s in shapes]
        xs[0].reshape(-1)[::97] = np.nan
        xs[-1].reshape(-1)[5::89] = np.inf
        xs[-1].reshape(-1)[7::83] = -np.inf
        return (xs, op), {}

    check_kernel_twin(M.merge, make_case)


def test_small_arrays_take_numpy_and_large_ones_the_kernel(monkeypatch):
    calls = []
    real = M._act.binary_forward
    monkeypatch.setattr(M._act, "binary_forward", lambda *a: calls.append(1) or real(*a))
    small, large = np.ones((2, 8, 8, 4), "float32"), np.ones((2, 64, 64, 8), "float32")
    np.testing.assert_array_equal(M.merge([small, small], "add"), small * 2)
    assert not calls
    np.testing.assert_array_equal(M.merge([large, large], "add", act=1), large * 2)
    assert calls == [1]


def test_mixed_and_integer_inputs_take_numpy():
    a, b = np.ones((2, 3), "float32"), np.ones((2, 3), "float64")
    assert M.merge([a, b], "add").dtype == np.float64
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(M.merge([ints, ints, ints], "multiply"), ints ** 3)
    assert M.merge([a], "add") is not a
    with pytest.raises(ValueError, match="unknown merge operation"):
        M.merge([a, a], "divide")
    with pytest.raises(ValueError, match="nothing to merge"):
        M.merge([], "add")


def test_kernel_refuses_bad_arguments():
    a = np.ones(12, "float32")
    with pytest.raises(ValueError, match="a and out must hold"):
        _act.binary_forward(a, a, np.empty(11, "float32"), 2, 2, 3, False, 0, 0, 1)
    with pytest.raises(ValueError, match="b holds"):
        _act.binary_forward(a, a, np.empty(12, "float32"), 2, 2, 3, True, 0, 0, 1)
    with pytest.raises(ValueError, match="unknown operation"):
        _act.binary_forward(a, a, np.empty(12, "float32"), 2, 2, 3, False, 9, 0, 1)
    with pytest.raises(ValueError, match="unknown activation code"):
        _act.binary_forward(a, a, np.empty(12, "float32"), 2, 2, 3, False, 0, 99, 1)
    with pytest.raises(ValueError, match="negative"):
        _act.binary_forward(a, a, np.empty(12, "float32"), -2, -2, 3, False, 0, 0, 1)
    with pytest.raises(ValueError, match="n_threads"):
        _act.binary_forward(a, a, np.empty(12, "float32"), 2, 2, 3, False, 0, 0, 0)
    out = np.empty(12, "float32")
    _act.binary_forward(a, a * 2, out, 2, 2, 3, False, 0, 1, 2)  # with a fused relu
    np.testing.assert_array_equal(out, np.full(12, 3.0, "float32"))
