"""The kernel-twin checker (tests/helpers/kernel_twin.py) itself: it runs what it promises and
fails when an op and its twin differ in signature, values, dtype, structure or side effects."""


import numpy as np
import pytest

from klayers.ops import softmax as sm
from tests.helpers import N_THREADS, TWIN_RUNS, check_kernel_twin, twin_of


def _case(dtype):
    return (np.random.default_rng(0).standard_normal((3, 5)).astype(dtype),), {}


def test_the_runs_are_both_dtypes_at_one_and_several_threads():
    assert sorted(TWIN_RUNS) == sorted((d, t) for d in ("float32", "float64") for t in (1, N_THREADS))
    assert N_THREADS >= 2


def test_the_twin_is_found_beside_its_op():
    assert twin_of(sm.softmax) is sm.softmax_reference
    with pytest.raises(AssertionError, match="no NumPy twin"):
        twin_of(sm._axes)


def test_a_real_twin_passes_and_every_run_is_made():
    seen = []

    def case(dtype):
        seen.append(dtype.name)
        return _case(dtype)

    got = check_kernel_twin(sm.softmax, case)
    assert sorted(seen) == sorted(d for d, _ in TWIN_RUNS)
    assert got.dtype == np.dtype(TWIN_RUNS[-1][0])


def _op(x, axis=-1, n_threads=None, where="softmax"):
    return sm.softmax_reference(x, axis, n_threads, where)


def _twin_off_by_a_bit(x, axis=-1, n_threads=None, where="softmax"):
    return sm.softmax_reference(x, axis, n_threads, where) * (1 + 1e-3)


def _twin_other_signature(x, axis=-1, where="softmax"):
    return sm.softmax_reference(x, axis, None, where)


def _twin_float32_always(x, axis=-1, n_threads=None, where="softmax"):
    return sm.softmax_reference(x, axis, n_threads, where).astype("float32")


def _twin_as_list(x, axis=-1, n_threads=None, where="softmax"):
    return [sm.softmax_reference(x, axis, n_threads, where)]


def _op_overwriting(x, axis=-1, n_threads=None, where="softmax"):
    y = sm.softmax_reference(x, axis, n_threads, where)
    x[...] = 0
    return y


@pytest.mark.parametrize("op,twin,match", [
    (_op, _twin_off_by_a_bit, "Not equal to tolerance"),
    (_op, _twin_other_signature, "differs from its op"),
    (_op, _twin_float32_always, "dtype"),
    (_op, _twin_as_list, "returned a ndarray"),
    (_op_overwriting, _op, "overwritten"),
], ids=["values", "signature", "dtype", "structure", "input-overwritten"])
def test_the_checker_fails_when_op_and_twin_differ(op, twin, match):
    with pytest.raises(AssertionError, match=match):
        check_kernel_twin(op, _case, twin=twin)


def test_exact_comparison_refuses_rounding():
    def twin(x, axis=-1, n_threads=None, where="softmax"):
        return np.nextafter(sm.softmax_reference(x, axis, n_threads, where), 2.0)

    check_kernel_twin(_op, _case, twin=twin)
    with pytest.raises(AssertionError):
        check_kernel_twin(_op, _case, twin=twin, exact=True)
