"""One recurrent step in NumPy: the reference maths of every built-in cell, and the time loop.

This is the one written form of each cell's update (tf-keras 2.21 ``tf_keras/layers/rnn``),
read by everything that is not a compiled kernel: the NumPy twins of the kernels
(:func:`klayers.ops.recurrent.rnn_sequence_reference`,
:func:`klayers.ops.recurrent_conv.convlstm_sequence_reference`), the cells' one-step ``call``
and the layers' Python step loops. Gate blocks lie side by side along the last axis in Keras's
order: GRU ``z, r, h``; LSTM and ConvLSTM ``i, f, c, o``.

Activations are callables here (``np.tanh``, a klayers activation, user code); the ops that
take kernel activation codes turn them into functions first. Nothing is cast: callers keep
their dtype rules.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["gate_matmul", "simple_rnn_step", "gru_step", "lstm_gates", "lstm_step", "rnn_step", "step_loop"]

Activation = Callable[[np.ndarray], np.ndarray]
#: One array for every gate block, or one per block (tf-keras's ``implementation=1`` in
#: training, which draws a dropout mask per gate).
GateInputs = Union[np.ndarray, Sequence[np.ndarray]]


def gate_matmul(inputs: GateInputs, weights: np.ndarray) -> np.ndarray:
    """``inputs @ weights`` for gate blocks side by side.

    Args:
        inputs: ``(batch, n)``, or a sequence of ``k`` such arrays: then block ``j`` of the
            result (``weights.shape[1] // k`` columns) is ``inputs[j] @ weights[:, block j]``.
        weights: ``(n, G*units)``.

    Returns:
        ``(batch, G*units)``.
    """
    if isinstance(inputs, np.ndarray):
        return inputs @ weights
    if len(inputs) == 1:
        return inputs[0] @ weights
    u = weights.shape[1] // len(inputs)
    return np.concatenate([x @ weights[:, j * u:(j + 1) * u] for j, x in enumerate(inputs)], axis=1)


def simple_rnn_step(xw: np.ndarray, h: GateInputs, recurrent_kernel: np.ndarray,
                    activation: Activation) -> np.ndarray:
    """SimpleRNN: ``h = activation(xw + h_prev @ recurrent_kernel)``.

    ``xw (batch, units)`` is the input projection with the bias; ``h (batch, units)``."""
    return activation(xw + gate_matmul(h, recurrent_kernel))


def gru_step(xw: np.ndarray, h: np.ndarray, recurrent_kernel: np.ndarray, recurrent_bias: Optional[np.ndarray],
             activation: Activation, recurrent_activation: Activation, reset_after: bool = True,
             h_gates: Optional[Sequence[np.ndarray]] = None) -> np.ndarray:
    """GRU, gates ``z, r, h``: ``h = z * h_prev + (1 - z) * hh``.

    ``reset_after=True`` (tf-keras 2's default): ``hh = act(xw_h + r * (h R_h + rb_h))``;
    ``reset_after=False``: ``hh = act(xw_h + (r * h) R_h)`` (no recurrent bias).

    Args:
        xw: ``(batch, 3*units)`` input projection with the input bias.
        h: ``(batch, units)`` previous state (the one blended into the new state).
        recurrent_kernel: ``(units, 3*units)``; recurrent_bias ``(3*units,)`` or None.
        h_gates: the state each gate's recurrent product reads, one per gate (``h`` times a
            dropout mask); None: ``h`` for all three.
    """
    u = recurrent_kernel.shape[0]
    act, ract = activation, recurrent_activation
    if reset_after:
        rec = gate_matmul(h if h_gates is None else h_gates, recurrent_kernel)
        if recurrent_bias is not None:
            rec = rec + recurrent_bias
    else:
        rec = gate_matmul(h if h_gates is None else h_gates[:2], recurrent_kernel[:, :2 * u])
    z = ract(xw[:, :u] + rec[:, :u])
    r = ract(xw[:, u:2 * u] + rec[:, u:2 * u])
    if reset_after:
        hh = act(xw[:, 2 * u:] + r * rec[:, 2 * u:])
    else:
        hh = act(xw[:, 2 * u:] + (r * (h if h_gates is None else h_gates[2])) @ recurrent_kernel[:, 2 * u:])
    return z * h + (1 - z) * hh


def lstm_gates(z: np.ndarray, c: np.ndarray, activation: Activation,
               recurrent_activation: Activation) -> Tuple[np.ndarray, np.ndarray]:
    """The LSTM point-wise update (LSTM and ConvLSTM): ``c = f * c_prev + i * act(g)``,
    ``h = o * act(c)`` with ``i, f, o = ract(...)``.

    Args:
        z: ``(..., 4*units)`` every gate's pre-activation (input part + recurrent part + bias),
            blocks ``i, f, c, o``.
        c: ``(..., units)`` previous carry.

    Returns:
        ``(h, c)``, each ``(..., units)``.
    """
    u = z.shape[-1] // 4
    act, ract = activation, recurrent_activation
    i = ract(z[..., :u])
    f = ract(z[..., u:2 * u])
    c = f * c + i * act(z[..., 2 * u:3 * u])
    o = ract(z[..., 3 * u:])
    return o * act(c), c


def lstm_step(xw: np.ndarray, h: np.ndarray, c: np.ndarray, recurrent_kernel: np.ndarray,
              activation: Activation, recurrent_activation: Activation,
              h_gates: Optional[Sequence[np.ndarray]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """LSTM, gates ``i, f, c, o``: :func:`lstm_gates` of ``xw + h @ recurrent_kernel``.

    ``xw (batch, 4*units)`` is the input projection with the bias; ``h_gates`` as in
    :func:`gru_step` (four states)."""
    z = xw + gate_matmul(h if h_gates is None else h_gates, recurrent_kernel)
    return lstm_gates(z, c, activation, recurrent_activation)


def rnn_step(cell: str, x: GateInputs, states: List[np.ndarray], kernel: np.ndarray, recurrent_kernel: np.ndarray,
             bias: Optional[np.ndarray], activation: Activation, recurrent_activation: Activation,
             h_gates: Optional[Sequence[np.ndarray]] = None) -> Tuple[np.ndarray, List[np.ndarray]]:
    """One step of a built-in cell: ``(output, new_states)``.

    Args:
        cell: ``"simple"``, ``"gru"`` (reset_after), ``"gru_before"`` (reset_after=False) or
            ``"lstm"``.
        x: ``(batch, features)``, or one such array per gate (inputs times dropout masks).
        states: ``[h]`` or ``[h, c]`` (LSTM), each ``(batch, units)``.
        kernel: ``(features, G*units)``; recurrent_kernel ``(units, G*units)``.
        bias: ``(G*units,)``, ``(2, 3*units)`` for ``"gru"`` (input then recurrent bias), or None.
        h_gates: the state each gate's recurrent product reads (``h`` times dropout masks), or
            None: ``h``.

    Returns:
        The output ``(batch, units)`` (the new ``h``) and the new states.
    """
    b_in, b_rec = (bias[0], bias[1]) if cell == "gru" and bias is not None else (bias, None)
    xw = gate_matmul(x, kernel)
    if b_in is not None:
        xw = xw + b_in
    act, ract = activation, recurrent_activation
    if cell == "simple":
        h = simple_rnn_step(xw, states[0] if h_gates is None else h_gates, recurrent_kernel, act)
        return h, [h]
    if cell in ("gru", "gru_before"):
        h = gru_step(xw, states[0], recurrent_kernel, b_rec, act, ract, cell == "gru", h_gates)
        return h, [h]
    if cell == "lstm":
        h, c = lstm_step(xw, states[0], states[1], recurrent_kernel, act, ract, h_gates)
        return h, [h, c]
    raise ValueError(f"unknown cell {cell!r}; expected one of ['gru', 'gru_before', 'lstm', 'simple']")


Step = Callable[[np.ndarray, List[np.ndarray]], Tuple[np.ndarray, List[np.ndarray]]]


def _per_sample(m: np.ndarray, like: np.ndarray) -> np.ndarray:
    return m.reshape((-1,) + (1,) * (like.ndim - 1))


def step_loop(step: Step, inputs: np.ndarray, states: List[np.ndarray], mask: Optional[np.ndarray] = None,
              go_backwards: bool = False, zero_output: bool = False, return_sequences: bool = False
              ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], List[np.ndarray]]:
    """tf-keras's ``backend.rnn`` time loop around any step function.

    Args:
        step: ``step(x_t, states) -> (output, new_states)`` (states a flat list).
        inputs: ``(batch, time, ...)``; ``x_t`` is ``inputs[:, t]``.
        states: the initial states, a flat list of ``(batch, ...)`` arrays.
        mask: ``(batch, time)`` booleans in input time order, or None. A masked sample keeps
            every state and outputs its previous output (zeros before its first unmasked
            step), or zeros with ``zero_output``.
        go_backwards: steps run last to first; the outputs stay in processing order.
        return_sequences: also return every step's output, stacked on axis 1.

    Returns:
        ``(last_output, outputs or None, final_states)``; ``last_output`` is None (and the
        outputs too) when ``inputs`` has no time steps.
    """
    T = inputs.shape[1]
    outputs: List[np.ndarray] = []
    last: Optional[np.ndarray] = None
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        out, new = step(inputs[:, t], states)
        if mask is not None:
            m = np.asarray(mask[:, t], bool)
            prev = np.zeros_like(out) if last is None else last
            out = np.where(_per_sample(m, out), out, 0 if zero_output else prev).astype(out.dtype)
            new = [np.where(_per_sample(m, n), n, o).astype(n.dtype) for n, o in zip(new, states)]
        states, last = new, out
        if return_sequences:
            outputs.append(out)
    seq = np.stack(outputs, axis=1) if outputs else None
    return last, seq, states
