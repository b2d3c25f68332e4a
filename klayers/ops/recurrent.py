"""Recurrent sequences: SimpleRNN, GRU (reset_after True/False) and LSTM over a whole sequence.

:func:`rnn_sequence` computes all time steps' input projections with one GEMM, then runs the
whole time loop in ``klayers._ext.recurrent``; :func:`rnn_sequence_reference` is its NumPy twin
(a plain step loop, also the fallback for activations the kernel does not fuse). Both follow
tf-keras's ``backend.rnn``: steps run in reverse order with ``go_backwards`` and the outputs
come out in processing order; a masked step carries every state and outputs the previous
step's output (zeros before the first unmasked step), or zeros with ``zero_output``.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple, Union

import numpy as np

from klayers import activations
from klayers._ext import recurrent as _rec
from klayers._threads import blas_single_threaded, get_num_threads
from klayers.ops.dense import dense

CELLS = {"simple": _rec.CELL_SIMPLE, "gru": _rec.CELL_GRU_AFTER, "gru_before": _rec.CELL_GRU_BEFORE,
         "lstm": _rec.CELL_LSTM}
GATES = {"simple": 1, "gru": 3, "gru_before": 3, "lstm": 4}

ACT_LINEAR = _rec.ACT_LINEAR
ACT_TANH = _rec.ACT_TANH
ACT_SIGMOID = _rec.ACT_SIGMOID
ACT_HARD_SIGMOID = _rec.ACT_HARD_SIGMOID
ACT_HARD_SIGMOID_K3 = _rec.ACT_HARD_SIGMOID_K3
ACT_RELU = _rec.ACT_RELU

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: batch-1 layers whose recurrent kernel has at least this many entries split their units
#: across threads (below it, one core's GEMV is faster than a fork/join per step).
SPLIT_UNITS_MIN_WEIGHTS = 256 * 1024
#: per-step recurrent GEMMs smaller than this (multiply-adds) run on one BLAS thread: threading
#: a GEMM of a few microseconds costs more in wake-ups than it saves, 100 times per sequence.
THREADED_STEP_MIN_MACS = 4 * 1024 * 1024

Activation = Union[int, Callable[[np.ndarray], np.ndarray]]


def activation_code(fn: Callable) -> int:
    """The kernel's code for a klayers activation function, or -1 when it is not fused."""
    k3 = activations.keras3
    table = [(activations.linear, ACT_LINEAR), (activations.tanh, ACT_TANH),
             (activations.sigmoid, ACT_SIGMOID), (activations.hard_sigmoid, ACT_HARD_SIGMOID),
             (k3.hard_sigmoid, ACT_HARD_SIGMOID_K3), (activations.relu, ACT_RELU),
             (k3.tanh, ACT_TANH), (k3.sigmoid, ACT_SIGMOID), (k3.linear, ACT_LINEAR), (k3.relu, ACT_RELU)]
    for f, code in table:
        if fn is f:
            return code
    return -1


def _code_fn(act: Activation) -> Callable[[np.ndarray], np.ndarray]:
    if callable(act):
        return act
    return {
        ACT_LINEAR: lambda x: x,
        ACT_TANH: np.tanh,
        ACT_SIGMOID: lambda x: 1.0 / (1.0 + np.exp(-x)),
        ACT_HARD_SIGMOID: lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
        ACT_HARD_SIGMOID_K3: lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
        ACT_RELU: lambda x: np.maximum(x, 0),
    }[int(act)]


def _check(cell: str, x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
           bias: Optional[np.ndarray], states: List[np.ndarray], mask: Optional[np.ndarray], where: str) -> int:
    if cell not in CELLS:
        raise ValueError(f"{where}: unknown cell {cell!r}; expected one of {sorted(CELLS)}")
    if x.ndim != 3:
        raise ValueError(f"{where}: inputs must be 3-D (batch, timesteps, features), got shape {x.shape}")
    u = recurrent_kernel.shape[0]
    gu = GATES[cell] * u
    if kernel.shape != (x.shape[2], gu) or recurrent_kernel.shape != (u, gu):
        raise ValueError(
            f"{where}: kernel {kernel.shape} / recurrent kernel {recurrent_kernel.shape} do not fit "
            f"inputs with {x.shape[2]} features and {u} units ({GATES[cell]} gates)"
        )
    if bias is not None:
        want = (2, gu) if cell == "gru" else (gu,)
        if bias.shape != want:
            raise ValueError(f"{where}: bias must have shape {want}, got {bias.shape}")
    n_states = 2 if cell == "lstm" else 1
    if len(states) != n_states:
        raise ValueError(f"{where}: expected {n_states} initial state(s), got {len(states)}")
    for s in states:
        if s.shape != (x.shape[0], u):
            raise ValueError(f"{where}: initial state must have shape {(x.shape[0], u)}, got {s.shape}")
    if mask is not None and mask.shape != x.shape[:2]:
        raise ValueError(f"{where}: mask must have shape {x.shape[:2]}, got {mask.shape}")
    return u


def rnn_sequence_reference(cell: str, x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
                           bias: Optional[np.ndarray], states: List[np.ndarray], mask: Optional[np.ndarray] = None,
                           act: Activation = ACT_TANH, ract: Activation = ACT_SIGMOID, go_backwards: bool = False,
                           zero_output: bool = False, return_sequences: bool = False,
                           n_threads: Optional[int] = None, where: str = "rnn"
                           ) -> Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]:
    """NumPy twin of :func:`rnn_sequence` (the readable oracle): one step at a time."""
    u = _check(cell, x, kernel, recurrent_kernel, bias, states, mask, where)
    dtype = kernel.dtype
    f, g = _code_fn(act), _code_fn(ract)
    x = x.astype(dtype, copy=False)
    b_in = b_rec = None
    if bias is not None:
        b_in, b_rec = (bias[0], bias[1]) if cell == "gru" else (bias, None)
    h = states[0].astype(dtype, copy=True)
    c = states[1].astype(dtype, copy=True) if cell == "lstm" else None
    B, T = x.shape[:2]
    last = np.zeros((B, u), dtype)
    seq = np.zeros((B, T, u), dtype) if return_sequences else None
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        xw = x[:, t] @ kernel
        if b_in is not None:
            xw = xw + b_in
        if cell == "simple":
            new_h = f(xw + h @ recurrent_kernel)
        elif cell == "gru":
            rec = h @ recurrent_kernel
            if b_rec is not None:
                rec = rec + b_rec
            z = g(xw[:, :u] + rec[:, :u])
            r = g(xw[:, u:2 * u] + rec[:, u:2 * u])
            hh = f(xw[:, 2 * u:] + r * rec[:, 2 * u:])
            new_h = z * h + (1 - z) * hh
        elif cell == "gru_before":
            rec = h @ recurrent_kernel[:, :2 * u]
            z = g(xw[:, :u] + rec[:, :u])
            r = g(xw[:, u:2 * u] + rec[:, u:])
            hh = f(xw[:, 2 * u:] + (r * h) @ recurrent_kernel[:, 2 * u:])
            new_h = z * h + (1 - z) * hh
        else:
            zz = xw + h @ recurrent_kernel
            i = g(zz[:, :u])
            fg = g(zz[:, u:2 * u])
            new_c = fg * c + i * f(zz[:, 2 * u:3 * u])
            o = g(zz[:, 3 * u:])
            new_h = o * f(new_c)
        new_h = np.asarray(new_h, dtype)
        if mask is not None:
            m = mask[:, t].astype(bool)[:, None]
            h = np.where(m, new_h, h)
            if cell == "lstm":
                c = np.where(m, new_c, c)
            last = np.where(m, new_h, 0 if zero_output else last).astype(dtype)
        else:
            h = new_h
            if cell == "lstm":
                c = np.asarray(new_c, dtype)
            last = new_h
        if seq is not None:
            seq[:, s] = last
    return last, seq, [h] if c is None else [h, c]


def rnn_sequence(cell: str, x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
                 bias: Optional[np.ndarray], states: List[np.ndarray], mask: Optional[np.ndarray] = None,
                 act: Activation = ACT_TANH, ract: Activation = ACT_SIGMOID, go_backwards: bool = False,
                 zero_output: bool = False, return_sequences: bool = False,
                 n_threads: Optional[int] = None, where: str = "rnn"
                 ) -> Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]:
    """Run a recurrent cell over a whole batch-major sequence with the compiled kernel.

    Args:
        cell: ``"simple"``, ``"gru"`` (reset_after), ``"gru_before"`` (reset_after=False) or
            ``"lstm"``; gate blocks in Keras's order (GRU z, r, h; LSTM i, f, c, o).
        x: ``(batch, timesteps, features)``.
        kernel: ``(features, G*units)``; recurrent_kernel ``(units, G*units)``.
        bias: ``(G*units,)``, ``(2, 3*units)`` for ``"gru"`` (input then recurrent bias), or None.
        states: initial ``[h]`` or ``[h, c]`` (LSTM), each ``(batch, units)``.
        mask: ``(batch, timesteps)`` booleans (time in input order) or None.
        act / ract: activation and recurrent activation, as ``ACT_*`` codes or callables (a
            callable the kernel does not fuse runs the NumPy step loop).
        go_backwards: process the steps last to first (outputs stay in processing order).
        zero_output: masked steps output zeros instead of the previous output.
        return_sequences: also return every step's output.

    Returns:
        ``(last_output (batch, units), outputs (batch, timesteps, units) or None, final states)``.
    """
    u = _check(cell, x, kernel, recurrent_kernel, bias, states, mask, where)
    dtype = kernel.dtype
    a = act if not callable(act) else activation_code(act)
    ra = ract if not callable(ract) else activation_code(ract)
    if dtype not in _FLOATS or a < 0 or ra < 0:
        return rnn_sequence_reference(cell, x, kernel, recurrent_kernel, bias, states, mask, act, ract,
                                      go_backwards, zero_output, return_sequences, n_threads, where)
    B, T = x.shape[:2]
    G = GATES[cell]
    b_in = rbias = None
    if bias is not None:
        b_in, rbias = (bias[0], bias[1]) if cell == "gru" else (bias, None)
    xw = dense(x.astype(dtype, copy=False), kernel, b_in, where=where)
    xw = np.ascontiguousarray(xw.reshape(B, T, G * u))
    rbias = np.ascontiguousarray(rbias, dtype) if rbias is not None else np.empty(0, dtype)
    h = np.array(states[0], dtype=dtype, order="C", copy=True)
    c = np.array(states[1], dtype=dtype, order="C", copy=True) if cell == "lstm" else np.empty((0, 0), dtype)
    m = np.ascontiguousarray(mask, dtype=np.uint8) if mask is not None else np.empty((0, 0), np.uint8)
    last = np.zeros((B, u), dtype)
    seq = np.empty((B, T, u), dtype) if return_sequences else np.empty((0, 0, 0), dtype)
    hbuf = np.empty((B, u), dtype)
    rec = np.empty((B, G * u), dtype)
    rh = np.empty((B, u), dtype) if cell == "gru_before" else np.empty((0, 0), dtype)
    n = n_threads or get_num_threads()
    split = B == 1 and n > 1 and cell != "gru_before" and u * G * u >= SPLIT_UNITS_MIN_WEIGHTS
    args = (CELLS[cell], xw, np.ascontiguousarray(recurrent_kernel), rbias, m, h, c, last, seq, hbuf, rec, rh,
            a, ra, bool(go_backwards), bool(zero_output), mask is not None, bool(return_sequences), split,
            min(n, max(1, u // 32)))
    if split or B * G * u * u < THREADED_STEP_MIN_MACS:
        with blas_single_threaded():
            _rec.rnn_forward(*args)
    else:
        _rec.rnn_forward(*args)
    return last, (seq if return_sequences else None), ([h, c] if cell == "lstm" else [h])
