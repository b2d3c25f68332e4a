"""A ConvLSTM over a whole sequence, as the ConvLSTM1D/2D/3D layers run it.

The input convolution of every step is one :func:`klayers.ops.conv.conv` call (time folded into
the batch). Then every step (the recurrent convolution of the previous output with strides 1,
"same" padding and no dilation, as Keras's cells; the LSTM update; masks) runs either in one
compiled call, :func:`klayers.ops.recurrent_conv.convlstm_sequence`, or, for activations the
kernel does not fuse (and on request), in the Python step loop :func:`convlstm_step_loop`: one
convolution and one :func:`klayers.ops.recurrent.lstm_pointwise` update per step, the reference
the tests compare the compiled loop against. Both work channels_last: channels_first inputs,
states and outputs are transposed copies.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

from klayers.ops import recurrent_steps as steps
from klayers.ops.common import gate_code
from klayers.ops.conv import conv
from klayers.ops.recurrent import Activation, lstm_pointwise
from klayers.ops.recurrent_conv import convlstm_sequence

__all__ = ["convlstm", "convlstm_step_loop"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

Result = Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]


def convlstm(x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: Optional[np.ndarray],
             states: List[np.ndarray], mask: Optional[np.ndarray], activation: Activation,
             recurrent_activation: Activation, strides: Any, padding: str, dilation_rate: Any,
             data_format: str = "channels_last", go_backwards: bool = False, zero_output: bool = False,
             return_sequences: bool = False, compiled: bool = True, where: str = "convlstm") -> Result:
    """Run a ConvLSTM over ``x``.

    Args:
        x: ``(batch, time, *spatial, channels)`` (channels_last) or ``(batch, time, channels,
            *spatial)`` (channels_first).
        kernel: ``(*k, channels, 4F)``; recurrent_kernel ``(*k, F, 4F)``; bias ``(4F,)`` or None.
            Gate blocks ``i, f, c, o``; the input convolution uses ``strides``, ``padding``,
            ``dilation_rate``; the recurrent one strides 1, "same", no dilation.
        states: ``[h, c]``, each shaped like one output step in ``data_format``.
        mask: ``(batch, time)`` booleans (input time order) or None.
        activation / recurrent_activation: callables (klayers activations or user code) or
            ``ACT_*`` codes of :mod:`klayers.ops.recurrent`.
        go_backwards: steps run last to first (outputs in processing order).
        zero_output: masked steps output zeros instead of the previous output.
        compiled: use the compiled time loop when it fuses both activations (False: the
            Python step loop, the reference).

    Returns:
        ``(last (batch, *out, F), outputs (batch, time, *out, F) or None, [h, c])`` in
        ``data_format`` (channels after the batch / time axes with channels_first), in
        ``kernel``'s dtype.
    """
    first = data_format == "channels_first"

    def last_axis(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(a, 1, -1) if first else a

    B, T = x.shape[:2]
    dtype = kernel.dtype
    zx = conv(np.asarray(x, dtype).reshape((B * T,) + x.shape[2:]), kernel, bias, strides, padding, dilation_rate,
              data_format=data_format, where=where)
    zx = last_axis(zx)
    zx = np.ascontiguousarray(zx).reshape((B, T) + zx.shape[1:])
    h = np.ascontiguousarray(last_axis(np.asarray(states[0], dtype)))
    c = np.ascontiguousarray(last_axis(np.asarray(states[1], dtype)))
    act, ract = gate_code(activation), gate_code(recurrent_activation)
    if compiled and act >= 0 and ract >= 0 and dtype in _FLOATS:
        last, seq, (h, c) = convlstm_sequence(zx, recurrent_kernel, h, c, mask, act, ract, go_backwards, zero_output,
                                              return_sequences, where=where)
    else:
        last, seq, (h, c) = convlstm_step_loop(zx, recurrent_kernel, h, c, mask, activation, recurrent_activation,
                                               go_backwards, zero_output, return_sequences, where=where)
    if first:
        last = np.ascontiguousarray(np.moveaxis(last, -1, 1))
        seq = np.ascontiguousarray(np.moveaxis(seq, -1, 2)) if seq is not None else None
        h, c = np.ascontiguousarray(np.moveaxis(h, -1, 1)), np.ascontiguousarray(np.moveaxis(c, -1, 1))
    return last, seq, [h, c]


def convlstm_step_loop(zx: np.ndarray, recurrent_kernel: np.ndarray, h: np.ndarray, c: np.ndarray,
                       mask: Optional[np.ndarray], activation: Activation, recurrent_activation: Activation,
                       go_backwards: bool = False, zero_output: bool = False, return_sequences: bool = False,
                       where: str = "convlstm") -> Result:
    """The ConvLSTM steps in Python (arguments and results as
    :func:`klayers.ops.recurrent_conv.convlstm_sequence`, channels_last; activations may be
    callables): per step one recurrent :func:`klayers.ops.conv.conv` and one
    :func:`klayers.ops.recurrent.lstm_pointwise` update, in the loop of
    :func:`klayers.ops.recurrent_steps.step_loop`."""
    B, T = zx.shape[:2]
    dtype = zx.dtype
    out_spatial = tuple(zx.shape[2:-1])
    F = recurrent_kernel.shape[-2]
    rows = B * int(np.prod(out_spatial))

    def step(z_t: np.ndarray, st: List[np.ndarray]) -> Tuple[np.ndarray, List[np.ndarray]]:
        zh = conv(st[0], recurrent_kernel, None, 1, "same", 1, data_format="channels_last", where=where)
        new_h, new_c = lstm_pointwise(z_t.reshape(rows, 4 * F), zh.reshape(rows, 4 * F), st[1].reshape(rows, F),
                                      activation, recurrent_activation)
        new_h = new_h.reshape(st[0].shape)
        return new_h, [new_h, new_c.reshape(st[0].shape)]

    last, seq, (h, c) = steps.step_loop(step, zx, [h, c], mask, go_backwards, zero_output, return_sequences)
    if last is None:  # no time steps
        last = np.zeros((B,) + out_spatial + (F,), dtype)
        seq = np.empty((B, 0) + out_spatial + (F,), dtype) if return_sequences else None
    return last, seq, [h, c]
