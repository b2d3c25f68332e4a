"""Recurrent sequences: SimpleRNN, GRU (reset_after True/False) and LSTM over a whole sequence.

:func:`rnn_sequence` runs the input projections (chunked GEMMs) and the whole time loop in
``klayers._ext.recurrent``; :func:`rnn_job` / :func:`run_rnn_jobs` are the same in two halves,
so that several layers (a Bidirectional layer's directions) run at once, one per core; :func:`rnn_sequence_reference` is its NumPy twin
(a plain step loop, also the fallback for activations the kernel does not fuse). Both follow
tf-keras's ``backend.rnn``: steps run in reverse order with ``go_backwards`` and the outputs
come out in processing order; a masked step carries every state and outputs the previous
step's output (zeros before the first unmasked step), or zeros with ``zero_output``.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import numpy as np

from klayers._ext import recurrent as _rec
from klayers.backend import tape
from klayers.ops import recurrent_steps as steps
from klayers.ops.common import (  # noqa: F401  (ACT_* and activation_code: this module's API)
    ACT_HARD_SIGMOID,
    ACT_HARD_SIGMOID_K3,
    ACT_LINEAR,
    ACT_RELU,
    ACT_RELU6,
    ACT_SIGMOID,
    ACT_TANH,
    FLOATS,
    Activation,
    activation_code,
    call_pinned,
    contiguous,
    copy_into,
    gate_code,
    op_threads,
)
from klayers.ops.common import activation_function as _code_fn
from klayers.ops.dense import dense, pack_dense_kernel

#: cell name -> the kernel's cell code (``klayers._ext.recurrent.CELLS``)
CELLS = dict(_rec.CELLS)
#: gate blocks per cell, in Keras's order: GRU z, r, h; LSTM i, f, c, o
GATES = {"simple": 1, "gru": 3, "gru_before": 3, "lstm": 4}
#: batch-1 layers whose recurrent kernel has at least this many entries split their units
#: across threads, each thread multiplying its own strips of the packed kernel (below it, one
#: core is faster than a fork/join per step: LSTM(256), 262,144 weights, 100 steps in paired
#: runs took 1.74 and 1.88 ms on one core's BLAS GEMV, 1.55 and 1.51 split over packed strips).
SPLIT_UNITS_MIN_WEIGHTS = 256 * 1024
#: below this many multiply-adds per call, everything runs on one thread (a fork/join and a
#: second core's cold caches cost more than they save).
PARALLEL_MIN_MACS = 2 * 1024 * 1024
#: a lone task whose input projections exceed this (multiply-adds) gets them from one
#: multithreaded GEMM first; smaller ones are computed in cache-sized chunks inside the task
#: on one BLAS thread (on 2 cores, threading a small GEMM costs far more than it saves).
PROJECTION_THREADED_MIN_MACS = 32 * 1024 * 1024
#: Sequences of at least this many steps run their batch steps on a packed recurrent kernel
#: (packing costs about one step's product; BLAS packs the kernel at every step).
PACKED_MIN_STEPS = 4

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
                           n_threads: Optional[int] = None, where: str = "rnn",
                           packed: Optional[Callable[[], Optional[np.ndarray]]] = None,
                           packed_input: Optional[Callable[[], Optional[np.ndarray]]] = None
                           ) -> Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]:
    """NumPy twin of :func:`rnn_sequence` (the readable oracle): one
    :func:`klayers.ops.recurrent_steps.rnn_step` at a time (``packed`` and ``packed_input`` are
    ignored: they only give the kernels in another layout)."""
    u = _check(cell, x, kernel, recurrent_kernel, bias, states, mask, where)
    dtype = kernel.dtype
    f, g = _code_fn(act), _code_fn(ract)

    def step(x_t, st):
        _, new = steps.rnn_step(cell, x_t, st, kernel, recurrent_kernel, bias, f, g)
        new = [np.asarray(s, dtype) for s in new]
        return new[0], new

    x = x.astype(dtype, copy=False)
    init = [s.astype(dtype, copy=True) for s in states]
    last, seq, final = steps.step_loop(step, x, init, mask, go_backwards, zero_output, return_sequences)
    if last is None:  # no time steps
        last = np.zeros((x.shape[0], u), dtype)
        seq = np.zeros((x.shape[0], 0, u), dtype) if return_sequences else None
    return last, seq, final


class RnnJob:
    """One layer's recurrence, validated and with its outputs allocated (see :func:`rnn_job`).

    Run jobs with :func:`run_rnn_jobs` (several at once: a Bidirectional layer's two
    directions), then read :meth:`result`.
    """

    __slots__ = ("cell", "act", "ract", "go_backwards", "zero_output", "x", "kernel", "bias", "rbias",
                 "rkernel", "rpacked", "packer", "wpacked", "wpacker", "mask", "h", "c", "last", "seq", "B", "T",
                 "F", "u", "G")

    def result(self) -> Tuple[np.ndarray, Optional[np.ndarray], List[np.ndarray]]:
        """``(last_output, outputs or None, final states)`` as :func:`rnn_sequence` returns them."""
        return self.last, self.seq, ([self.h, self.c] if self.cell == "lstm" else [self.h])

    def macs(self) -> int:
        return self.B * self.T * self.G * self.u * (self.F + self.u)

    def spec(self, b0: int, b1: int, split: bool = False, xw: Optional[np.ndarray] = None) -> dict:
        """The kernel's named task spec (``klayers._ext.recurrent.TASK_KEYS``) for batch rows
        ``b0:b1`` (``xw``: precomputed projections)."""
        full = b0 == 0 and b1 == self.B

        def rows(a):
            return a if a is None or full else a[b0:b1]

        x, kernel = (rows(self.x), self.kernel) if xw is None else (rows(xw), None)
        # the steps multiply a packed recurrent kernel (the layer's, kept per weight version, or
        # packed for this call: BLAS would pack it at every step; at batch 1 the packed one-row
        # product keeps more accumulators in flight than BLAS's GEMV and splits across threads by
        # whole strips); the reset-before GRU multiplies two blocks with BLAS
        packed = None
        if self.cell != "gru_before" and self.T >= PACKED_MIN_STEPS:
            if self.rpacked is None:
                self.rpacked = _packed(self.packer, self.rkernel)
            packed = self.rpacked
        return dict(cell=CELLS[self.cell], act=self.act, ract=self.ract, go_backwards=self.go_backwards,
                    zero_output=self.zero_output, split_units=split, x=x, kernel=kernel,
                    packed_kernel=self.packed_input() if kernel is not None else None, bias=self.bias,
                    rbias=self.rbias, recurrent_kernel=self.rkernel, mask=rows(self.mask), h=rows(self.h),
                    c=rows(self.c) if self.cell == "lstm" else None, last=rows(self.last), seq=rows(self.seq),
                    packed_recurrent_kernel=packed)

    def packed_input(self) -> Optional[np.ndarray]:
        """The input kernel packed for the projections (the layer's, kept per weight version,
        or packed for this call), None for a dtype the packed GEMM does not take."""
        if self.wpacked is None:
            self.wpacked = _packed(self.wpacker, self.kernel)
        return self.wpacked


def _packed(packer: Optional[Callable[[], Optional[np.ndarray]]], matrix: np.ndarray) -> Optional[np.ndarray]:
    """``matrix`` packed: the ``packer``'s (a layer's cache) when it gives one of ``matrix``'s
    dtype, else packed here (None for a dtype the packed GEMM does not take)."""
    got = packer() if packer is not None else None
    return got if got is not None and got.dtype == matrix.dtype else pack_dense_kernel(matrix)


def pack_recurrent_kernel(recurrent_kernel: np.ndarray) -> Optional[np.ndarray]:
    """``recurrent_kernel`` (``(units, G * units)``) packed for :func:`rnn_sequence`'s
    ``packed`` argument (None for a dtype the kernel does not take)."""
    return pack_dense_kernel(recurrent_kernel)


def rnn_job(cell: str, x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
            bias: Optional[np.ndarray], states: List[np.ndarray], mask: Optional[np.ndarray] = None,
            act: Activation = ACT_TANH, ract: Activation = ACT_SIGMOID, go_backwards: bool = False,
            zero_output: bool = False, return_sequences: bool = False, where: str = "rnn",
            packed: Optional[Callable[[], Optional[np.ndarray]]] = None,
            packed_input: Optional[Callable[[], Optional[np.ndarray]]] = None) -> Optional[RnnJob]:
    """Validate and prepare one recurrence for the compiled kernel (arguments as
    :func:`rnn_sequence`); None when the kernel declines it (a dtype other than float32/64, an
    activation it does not fuse): the caller then runs :func:`rnn_sequence_reference`."""
    u = _check(cell, x, kernel, recurrent_kernel, bias, states, mask, where)
    dtype = kernel.dtype
    a, ra = gate_code(act), gate_code(ract)
    if dtype not in FLOATS or a < 0 or ra < 0:
        return None
    B, T, F = x.shape
    G = GATES[cell]
    job = RnnJob()
    job.cell, job.act, job.ract = cell, int(a), int(ra)
    job.go_backwards, job.zero_output = bool(go_backwards), bool(zero_output)
    job.B, job.T, job.F, job.u, job.G = B, T, F, u, G
    job.x = contiguous(x, dtype)
    job.kernel = np.ascontiguousarray(kernel)
    job.rkernel = np.ascontiguousarray(recurrent_kernel)
    job.rpacked = None
    job.packer = packed
    job.wpacked = None
    job.wpacker = packed_input
    job.rbias = None
    if bias is None:
        job.bias = np.zeros(G * u, dtype)
        if cell == "gru":
            job.rbias = job.bias
    elif cell == "gru":
        job.bias = np.ascontiguousarray(bias[0], dtype)
        job.rbias = np.ascontiguousarray(bias[1], dtype)
    else:
        job.bias = np.ascontiguousarray(bias, dtype)
    if mask is not None:
        tape.spoil()  # the mask's conversion is not recorded
    job.mask = np.ascontiguousarray(mask, dtype=np.uint8) if mask is not None else None
    # the kernel runs the states in place: a recorded call starts from copies of the initial ones
    job.h = np.empty((B, u), dtype)
    tape.run(copy_into, job.h, states[0])
    job.c = None
    if cell == "lstm":
        job.c = np.empty((B, u), dtype)
        tape.run(copy_into, job.c, states[1])
    job.last = np.empty((B, u), dtype)
    tape.run(copy_into, job.last, 0)
    job.seq = np.empty((B, T, u), dtype) if return_sequences else None
    return job



def _plan(jobs: List[RnnJob], n: int) -> Tuple[list, int]:
    """Tasks and thread count for ``jobs`` on ``n`` threads (see the module constants)."""
    total = sum(j.macs() for j in jobs)
    if n == 1 or total < PARALLEL_MIN_MACS:
        return [j.spec(0, j.B) for j in jobs], 1
    if len(jobs) >= n:
        return [j.spec(0, j.B) for j in jobs], n
    specs = []
    for j in jobs:
        parts = min(max(1, n // len(jobs)), j.B)
        if parts == 1 and len(jobs) == 1 and j.cell != "gru_before" and j.G * j.u * j.u >= SPLIT_UNITS_MIN_WEIGHTS:
            return [j.spec(0, 1, split=True, xw=_projections(j, n))], n
        xw = _projections(j, n) if parts == 1 else None
        step = -(-j.B // parts)
        specs += [j.spec(b0, min(b0 + step, j.B), xw=xw) for b0 in range(0, j.B, step)]
    return specs, min(n, len(specs))


def _projections(job: RnnJob, n: int) -> Optional[np.ndarray]:
    """All steps' input projections by one multithreaded GEMM, when a task would otherwise
    compute a large one on one core; else None (the task computes them in cache-sized chunks)."""
    if job.B * job.T * job.F * job.G * job.u < PROJECTION_THREADED_MIN_MACS:
        return None
    # the dense op: OpenMP threads over one-thread BLAS (BLAS's own pool would then spin
    # beside the recurrent kernel's team)
    xw = dense(job.x.reshape(-1, job.F), job.kernel, None, n_threads=n, packed=job.packed_input)
    return xw.reshape(job.B, job.T, job.G * job.u)


def run_rnn_jobs(jobs: List[RnnJob], n_threads: Optional[int] = None) -> None:
    """Run prepared jobs (of one dtype) in one kernel call.

    Threads (``n_threads``, default ``klayers.get_num_threads()``): several jobs run one per
    thread; a lone job splits its batch rows between threads (no per-step synchronisation),
    or at batch 1 with wide weights its units; tiny work stays on one thread. BLAS runs
    single-threaded inside (one level of parallelism at a time).
    """
    if not jobs:
        return
    n = op_threads(n_threads)
    specs, threads = _plan(jobs, n)
    double = jobs[0].kernel.dtype == np.float64
    # one task on one thread calls BLAS alone: nothing to hold (BLAS sizes its own small calls)
    call_pinned(threads, _rec.rnn_run, specs, double, threads)


def rnn_sequence(cell: str, x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
                 bias: Optional[np.ndarray], states: List[np.ndarray], mask: Optional[np.ndarray] = None,
                 act: Activation = ACT_TANH, ract: Activation = ACT_SIGMOID, go_backwards: bool = False,
                 zero_output: bool = False, return_sequences: bool = False,
                 n_threads: Optional[int] = None, where: str = "rnn",
                 packed: Optional[Callable[[], Optional[np.ndarray]]] = None,
                 packed_input: Optional[Callable[[], Optional[np.ndarray]]] = None
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
        packed: None, or a function returning ``pack_recurrent_kernel(recurrent_kernel)`` of this
            very kernel (the layer keeps one per weight version), called only when the steps use
            it; without it the kernel is packed on every call that uses it.
        packed_input: likewise for ``pack_recurrent_kernel(kernel)``, the input kernel packed
            for the projections of all steps.

    Returns:
        ``(last_output (batch, units), outputs (batch, timesteps, units) or None, final states)``.
    """
    job = rnn_job(cell, x, kernel, recurrent_kernel, bias, states, mask, act, ract, go_backwards, zero_output,
                  return_sequences, where, packed, packed_input)
    if job is None:
        return rnn_sequence_reference(cell, x, kernel, recurrent_kernel, bias, states, mask, act, ract,
                                      go_backwards, zero_output, return_sequences, n_threads, where)
    run_rnn_jobs([job], n_threads)
    return job.result()


#: Below this many gate entries, :func:`lstm_pointwise` runs on one thread.
POINTWISE_PARALLEL_MIN = 65536


def lstm_pointwise(z: np.ndarray, zh: np.ndarray, c: np.ndarray, act: Activation, ract: Activation,
                   n_threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The LSTM update after a ConvLSTM step's convolutions: ``(h, c)`` of
    :func:`klayers.ops.recurrent_steps.lstm_gates` applied to ``z + zh``.

    Args:
        z: ``(N, 4F)`` input-convolution gates with bias; zh ``(N, 4F)`` recurrent-convolution
            gates; blocks ``i, f, c, o``.
        c: ``(N, F)`` previous carry (not modified).
        act / ract: ``ACT_*`` codes or callables; fused ones on float32/float64 run the compiled
            kernel, others NumPy.
        n_threads: the kernel's threads (default ``klayers.get_num_threads()``, one below
            ``POINTWISE_PARALLEL_MIN`` gate entries; see :func:`klayers.ops.common.op_threads`).

    Returns:
        The new ``h`` and ``c``, each ``(N, F)`` in ``z``'s dtype.
    """
    a, ra = gate_code(act), gate_code(ract)
    if a >= 0 and ra >= 0 and z.dtype in FLOATS:
        z = np.array(z, order="C", copy=True)  # the kernel overwrites its gates
        c = np.array(c, dtype=z.dtype, order="C", copy=True)
        h = np.empty_like(c)
        threads = op_threads(n_threads, z.size, POINTWISE_PARALLEL_MIN)
        _rec.lstm_pointwise(z, np.ascontiguousarray(zh, z.dtype), c, h, np.empty_like(c), int(a), int(ra), threads)
        return h, c
    h, c = steps.lstm_gates(z + zh, c, _code_fn(act), _code_fn(ract))
    return np.asarray(h, z.dtype), np.asarray(c, z.dtype)
