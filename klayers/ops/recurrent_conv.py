"""The ConvLSTM time loop: ``convlstm_sequence`` (one compiled call, ``klayers._ext.convlstm``)
and its NumPy twin ``convlstm_sequence_reference``.

Both take the input convolution of every step already computed (bias included) and run the
steps: per step the recurrent convolution of the previous output (strides 1, "same", no
dilation, as Keras's ConvLSTM cells), then the LSTM update with gates ``i, f, c, o`` (blocks of
``F`` along the last axis). Everything is channels_last with the spatial axes as Keras lays
them out; channels_first callers transpose (one copy in, one out).

Masks follow tf-keras's ``ConvRNN``: a masked sample keeps its states and repeats its previous
output (zeros before its first unmasked step), or outputs zeros with ``zero_output``.
"""

from __future__ import annotations

from math import prod
from typing import List, Optional, Tuple

import numpy as np

from klayers._ext import convlstm as _cl
from klayers.ops import recurrent_steps as steps
from klayers.ops import shapes
from klayers.ops.common import Activation, call_pinned, float_dtype, gate_code, op_threads
from klayers.ops.common import activation_function as _code_fn
from klayers.ops.conv import conv_reference

__all__ = ["convlstm_sequence", "convlstm_sequence_reference", "convlstm_rows"]

#: Below this many multiply-adds per step one thread wins (waking a second costs more).
SERIAL_MACS = 1 << 18
#: Bytes of im2col scratch per block (one GEMM). Large on purpose: ConvLSTM2D 32x32, 3x3,
#: 16 filters on one core (noisy shared machine) ran 10 steps in 2.2 ms with one block of
#: 1024 positions and 2.6 ms with blocks of 103 (kept under OpenBLAS's small-GEMM limit,
#: which pays off with the SkylakeX kernels but not the Haswell ones this BLAS runs here).
BLOCK_BYTES = 1 << 20


def _check(zx: np.ndarray, recurrent_kernel: np.ndarray, h: np.ndarray, c: np.ndarray,
           mask: Optional[np.ndarray], where: str) -> Tuple[int, int, Tuple[int, ...], int]:
    rank = recurrent_kernel.ndim - 2
    if rank not in (1, 2, 3):
        raise ValueError(f"{where}: recurrent kernel must have rank 3-5, got shape {recurrent_kernel.shape}")
    F = recurrent_kernel.shape[-2]
    if recurrent_kernel.shape[-1] != 4 * F:
        raise ValueError(f"{where}: recurrent kernel must be (*k, F, 4F), got shape {recurrent_kernel.shape}")
    if zx.ndim != rank + 3 or zx.shape[-1] != 4 * F:
        raise ValueError(f"{where}: gates must be (batch, time, *spatial, {4 * F}), got shape {zx.shape}")
    B, T = zx.shape[:2]
    out = tuple(zx.shape[2:-1])
    want = (B,) + out + (F,)
    if h.shape != want or c.shape != want:
        raise ValueError(f"{where}: states must have shape {want}, got {h.shape} and {c.shape}")
    if mask is not None and np.shape(mask) != (B, T):
        raise ValueError(f"{where}: mask must have shape {(B, T)}, got {np.shape(mask)}")
    return B, T, out, F


def convlstm_rows(P: int, B: int, taps: int, F: int, itemsize: int, threads: int) -> int:
    """Output positions per block: enough blocks for the threads (one per thread and sample
    at least), each one GEMM that fits ``BLOCK_BYTES`` of im2col scratch."""
    K = taps * F
    per_sample = -(-threads // B) if threads > 1 else 1
    rows = -(-P // per_sample)
    cap = max(1, BLOCK_BYTES // (K * itemsize))
    if rows > cap:
        rows = -(-P // -(-P // cap))  # even blocks of at most cap rows
    return max(1, rows)


def convlstm_sequence(zx: np.ndarray, recurrent_kernel: np.ndarray, h: np.ndarray, c: np.ndarray,
                      mask: Optional[np.ndarray], activation: Activation, recurrent_activation: Activation,
                      go_backwards: bool = False, zero_output: bool = False, return_sequences: bool = False,
                      n_threads: Optional[int] = None, where: str = "convlstm"
                      ) -> Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]:
    """Every ConvLSTM step in one compiled call (the NumPy twin runs activations no kernel
    computes).

    Args:
        zx: ``(batch, time, *out, 4F)`` input-convolution gates with bias, input time order.
        recurrent_kernel: ``(*k, F, 4F)``; applied with strides 1, "same" padding.
        h, c: ``(batch, *out, F)`` initial states (not modified).
        mask: ``(batch, time)`` booleans or None.
        activation, recurrent_activation: codes of :mod:`klayers.ops.common` (``ACT_*``) or
            activation functions (mapped by ``klayers.ops.common.gate_code``).
        go_backwards: process time in reverse (``seq`` is in processing order, as Keras's).

    Returns:
        ``(last, seq, [h, c])``: last output ``(batch, *out, F)``, the outputs
        ``(batch, time, *out, F)`` when ``return_sequences`` else None, the final states; all
        of ``recurrent_kernel``'s dtype (float32 or float64).
    """
    act, ract = gate_code(activation), gate_code(recurrent_activation)
    if act < 0 or ract < 0:
        return convlstm_sequence_reference(zx, recurrent_kernel, h, c, mask, activation, recurrent_activation,
                                           go_backwards, zero_output, return_sequences, n_threads, where)
    dtype = float_dtype(recurrent_kernel.dtype)
    B, T, out, F = _check(zx, recurrent_kernel, h, c, mask, where)
    rank = len(out)
    k = tuple(recurrent_kernel.shape[:rank])
    # the recurrent convolution: strides 1, "same", no dilation (Keras's ConvLSTM cells)
    geometry = dict(size=shapes.embed3(out, 1, last=True), kernel_size=shapes.embed3(k, 1, last=True),
                    pad_before=shapes.embed3(shapes.pads_before(out, k, "same", (1,) * rank), 0, last=True))
    P = prod(out)
    taps = prod(k)
    hh = np.array(h, dtype=dtype, order="C", copy=True).reshape(B, P, F)
    cc = np.array(c, dtype=dtype, order="C", copy=True).reshape(B, P, F)
    last = np.zeros((B, P, F), dtype)
    seq = np.empty((B, T, P, F), dtype) if return_sequences else None
    m = None if mask is None else np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    threads = op_threads(n_threads, B * P * taps * F * 4 * F, SERIAL_MACS)
    rows = convlstm_rows(P, B, taps, F, dtype.itemsize, threads)
    call_pinned(threads, _cl.convlstm_run, np.ascontiguousarray(zx, dtype).reshape(B, T, P, 4 * F),
                np.ascontiguousarray(recurrent_kernel, dtype).reshape(taps * F, 4 * F), geometry, m, hh, cc, last, seq,
                bool(go_backwards), bool(zero_output), act, ract, int(rows), threads)
    shape = (B,) + out + (F,)
    return (last.reshape(shape), None if seq is None else seq.reshape((B, T) + out + (F,)),
            [hh.reshape(shape), cc.reshape(shape)])


def convlstm_sequence_reference(zx: np.ndarray, recurrent_kernel: np.ndarray, h: np.ndarray, c: np.ndarray,
                                mask: Optional[np.ndarray], activation: Activation, recurrent_activation: Activation,
                                go_backwards: bool = False, zero_output: bool = False,
                                return_sequences: bool = False, n_threads: Optional[int] = None,
                                where: str = "convlstm") -> Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]:
    """NumPy twin of :func:`convlstm_sequence` (activations may also be callables)."""
    dtype = float_dtype(recurrent_kernel.dtype)
    B, T, out, F = _check(zx, recurrent_kernel, h, c, mask, where)
    act, ract = _code_fn(activation), _code_fn(recurrent_activation)

    def step(z_t, st):
        h, c = steps.lstm_gates(z_t + conv_reference(st[0], recurrent_kernel, None, 1, "same", 1), st[1], act, ract)
        return h, [h, c]

    last, seq, (h, c) = steps.step_loop(step, np.asarray(zx, dtype), [np.asarray(h, dtype), np.asarray(c, dtype)],
                                        mask, go_backwards, zero_output, return_sequences)
    if last is None:  # no time steps
        last = np.zeros_like(h)
        seq = np.empty((B, 0) + out + (F,), dtype) if return_sequences else None
    return last.astype(dtype), None if seq is None else seq.astype(dtype), [h.astype(dtype), c.astype(dtype)]
