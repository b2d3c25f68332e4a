"""One recurrent step in NumPy (klayers.ops.recurrent_steps): the maths every Python path
reads, against Keras's gate-by-gate formulas, and the step loop against ``backend.rnn``."""

import zlib

import numpy as np
import pytest

from klayers.ops import recurrent as R
from klayers.ops import recurrent_steps as S
from tests.ops.recurrent_cases import CELLS, problem, sigmoid


def _keras_step(cell, xs, hs, h, c, k, rk, b):
    """Keras's cell maths written out gate by gate; ``xs`` / ``hs``: the input and the state
    each gate reads (tf-keras implementation=1)."""
    u = rk.shape[0]
    blk = [slice(j * u, (j + 1) * u) for j in range(R.GATES[cell])]
    b_in, b_rec = (b[0], b[1]) if cell == "gru" else (b, np.zeros_like(b))

    def pre(j, with_rec=True):
        return xs[j] @ k[:, blk[j]] + b_in[blk[j]] + (hs[j] @ rk[:, blk[j]] + b_rec[blk[j]] if with_rec else 0)

    if cell == "simple":
        return np.tanh(pre(0)), None
    if cell == "lstm":
        c = sigmoid(pre(1)) * c + sigmoid(pre(0)) * np.tanh(pre(2))
        return sigmoid(pre(3)) * np.tanh(c), c
    z, r = sigmoid(pre(0)), sigmoid(pre(1))
    if cell == "gru":
        hh = np.tanh(pre(2, False) + r * (hs[2] @ rk[:, blk[2]] + b_rec[blk[2]]))
    else:
        hh = np.tanh(pre(2, False) + (r * hs[2]) @ rk[:, blk[2]])
    return z * h + (1 - z) * hh, None



@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("per_gate", [False, True], ids=["shared_inputs", "one_input_per_gate"])
@pytest.mark.parametrize("cell", CELLS)
def test_rnn_step_matches_the_keras_gate_maths(cell, per_gate, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{cell}-{per_gate}-{dtype}".encode()))
    x, k, rk, b, states, _ = problem(cell, dtype, 3, 5, rng)
    G = R.GATES[cell]
    x0, h = x[:, 0], states[0]
    xs, hs = [x0] * G, [h] * G
    if per_gate:  # distinct copies per gate, as dropout masks make them
        xs = [x0 * rng.uniform(0.5, 1.5, x0.shape).astype(dtype) for _ in range(G)]
        hs = [h * rng.uniform(0.5, 1.5, h.shape).astype(dtype) for _ in range(G)]
    out, new = S.rnn_step(cell, xs if per_gate else x0, states, k, rk, b, np.tanh, sigmoid,
                          h_gates=hs if per_gate else None)
    want_h, want_c = _keras_step(cell, xs, hs, h, states[-1], k, rk, b)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, want_h, atol=tol)
    assert out is new[0] and len(new) == len(states) and out.dtype == np.dtype(dtype)
    if cell == "lstm":
        np.testing.assert_allclose(new[1], want_c, atol=tol)



def test_rnn_step_refuses_an_unknown_cell():
    with pytest.raises(ValueError, match="unknown cell 'nope'"):
        S.rnn_step("nope", np.ones((1, 2)), [np.ones((1, 2))], np.ones((2, 2)), np.ones((2, 2)), None, np.tanh, np.tanh)



def _count_step(x_t, states):
    """A cell whose state counts its inputs and whose output is ten times the count."""
    h = states[0] + x_t
    return 10 * h, [h]



STEP_LOOP = {
    # name: (mask, go_backwards, zero_output, want outputs per step, want final state) for a
    # batch of one over inputs 1, 2, 3, 4 from a zero state
    "plain": (None, False, False, [10, 30, 60, 100], 10),
    "backwards": (None, True, False, [40, 70, 90, 100], 10),
    "masked_carries_state_and_output": ([1, 0, 1, 0], False, False, [10, 10, 40, 40], 4),
    "masked_first_outputs_zeros": ([0, 1, 1, 0], False, False, [0, 20, 50, 50], 5),
    "masked_zero_output": ([1, 0, 1, 0], False, True, [10, 0, 40, 0], 4),
    "masked_backwards_reads_input_time": ([1, 1, 0, 0], True, False, [0, 0, 20, 30], 3),
}



@pytest.mark.parametrize("case", sorted(STEP_LOOP))
def test_step_loop_follows_backend_rnn(case):
    mask, back, zero, want_seq, want_state = STEP_LOOP[case]
    x = np.arange(1, 5, dtype="float32").reshape(1, 4, 1)
    m = None if mask is None else np.array([mask], bool)
    last, seq, (h,) = S.step_loop(_count_step, x, [np.zeros((1, 1), "float32")], m, back, zero, True)
    np.testing.assert_array_equal(seq[0, :, 0], want_seq)
    np.testing.assert_array_equal(last[0, 0], want_seq[-1])
    np.testing.assert_array_equal(h[0, 0], want_state)
    assert seq.dtype == np.float32
    last, seq, _ = S.step_loop(_count_step, x, [np.zeros((1, 1), "float32")], m, back, zero, False)
    assert seq is None and last[0, 0] == want_seq[-1]



def test_step_loop_without_steps_returns_no_output():
    last, seq, (h,) = S.step_loop(_count_step, np.zeros((2, 0, 1)), [np.ones((2, 1))], None, False, False, True)
    assert last is None and seq is None and np.array_equal(h, np.ones((2, 1)))
