"""Recurrent workloads (issue 7): LSTM 128 and GRU 128 over 100 steps of 64 features at batch 1
and 32, SimpleRNN 128, and a Bidirectional LSTM 64.

FLOPs count the two matrix products per step (input projection and recurrent product:
``2 * batch * steps * gates * units * (features + units)``); the gate non-linearities are not
counted. ConvLSTM2D: 16 filters, 3x3 "same", on a 10-frame 32x32x8 video (input and
recurrent convolutions: ``2 * batch * steps * H * W * 9 * (channels + filters) * 4 * filters``).
"""

from __future__ import annotations

from typing import Iterator

from klayers.bench.workloads import Workload, register

STEPS, FEATURES, UNITS = 100, 64, 128


def _rnn(class_name: str, gates: int, batch: int, units: int = UNITS, extra=None) -> Workload:
    config = {"units": units, **(extra or {})}
    return Workload(
        name=f"recurrent-{class_name.lower()}{units}-b{batch}-t{STEPS}x{FEATURES}-f32",
        family="recurrent",
        config={"class_name": class_name, "config": config},
        input_shape=(batch, STEPS, FEATURES),
        dtype="float32",
        flops=2 * batch * STEPS * gates * units * (FEATURES + units),
    )


def _workloads() -> Iterator[Workload]:
    for batch in (1, 32):
        yield _rnn("LSTM", 4, batch)
        yield _rnn("GRU", 3, batch)
    yield _rnn("SimpleRNN", 1, 32)
    for batch in (1, 32):
        yield Workload(
            name=f"recurrent-bidi-lstm64-b{batch}-t{STEPS}x{FEATURES}-f32",
            family="recurrent",
            config={"class_name": "Bidirectional",
                    "config": {"layer": {"class_name": "LSTM", "config": {"units": 64, "return_sequences": True}}}},
            input_shape=(batch, STEPS, FEATURES),
            dtype="float32",
            flops=2 * 2 * batch * STEPS * 4 * 64 * (FEATURES + 64),
        )

    for batch in (1, 4):
        yield Workload(
            name=f"recurrent-convlstm2d16-b{batch}-t10x32x32x8-f32",
            family="recurrent",
            config={"class_name": "ConvLSTM2D",
                    "config": {"filters": 16, "kernel_size": 3, "padding": "same"}},
            input_shape=(batch, 10, 32, 32, 8),
            dtype="float32",
            flops=2 * batch * 10 * 32 * 32 * 9 * (8 + 16) * 4 * 16,
        )


register(*_workloads())
