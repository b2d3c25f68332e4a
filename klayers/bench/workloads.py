"""The benchmark workloads: one registry shared by ``klayers bench`` (:mod:`klayers.bench.compare`)
and the pytest-benchmark suites of a source checkout (``benchmarks/``).

A workload is one layer on one input: the Keras config that builds the layer
(``{"class_name": ..., "config": {...}}``, exactly what ``klayers.layers.deserialize`` and
``tf_keras.layers.deserialize`` accept), the full input shape (batch first), the dtype, and
the work it does (FLOPs and/or bytes moved) so timings can be reported as GFLOP/s or GB/s.

Adding a layer family is adding a table in ``workloads_<family>.py`` beside this file, one import
line in ``klayers/bench/__init__.py`` (which registers every table), then a five-line
``benchmarks/test_bench_<family>.py``::

    def _conv2d_workloads():
        for batch, hw, cin, cout in [(1, 56, 64, 64), (8, 56, 64, 64)]:
            yield Workload(
                name=f"conv2d-b{batch}-{hw}x{hw}x{cin}-k3-{cout}-f32",
                family="conv2d",
                config={"class_name": "Conv2D",
                        "config": {"filters": cout, "kernel_size": 3, "padding": "same"}},
                input_shape=(batch, hw, hw, cin),
                dtype="float32",
                flops=2 * batch * hw * hw * 9 * cin * cout,
            )

    register(*_conv2d_workloads())

A layer with several inputs (a merge layer) declares them as a list of shapes:
``input_shape=[(64, 16, 16, 32), (64, 16, 16, 32)]``; :meth:`Workload.make_input` then gives a
list of arrays, and every engine calls the layer on that list (tf.function and ONNX Runtime
get one graph input per array).

Weights are not part of a workload: every runner draws them with :func:`random_weights`
(seeded) for the shapes the built layer reports, in the layer's own weight order.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

LayerConfig = Dict[str, Any]
Shape = Tuple[int, ...]
#: What a layer is called on: one array, or a list of arrays for a layer with several inputs.
LayerInput = Union[np.ndarray, List[np.ndarray]]

#: Seed for inputs and weights, so every engine and every run sees the same numbers.
SEED = 1234

_DTYPE_SHORT = {"float16": "f16", "float32": "f32", "float64": "f64"}


@dataclasses.dataclass(frozen=True)
class Workload:
    """One layer on one input.

    Attributes:
        name: unique, readable id, ``<family>-<shape facts>-<dtype>``; used as pytest id and
            matched by ``klayers bench PATTERN`` (``python -m klayers.bench --workload``).
        family: the layer family (``"dense"``, ``"conv2d"`` ...); ``select(family=...)``.
        config: ``{"class_name": ..., "config": {...}}`` without ``dtype``; :meth:`keras_config`
            adds it.
        input_shape: full input shape, batch first; for a layer with several inputs, a list
            (or tuple) of such shapes, stored as a tuple of tuples.
        dtype: ``"float32"`` or ``"float64"``: the layer's dtype and the input's.
        flops: floating-point operations of one call (a multiply-add counts 2), or None.
        bytes_moved: bytes one call must read and write at least (inputs, weights, outputs),
            or None.
        bound: ``"compute"`` (GFLOP/s is the headline rate) or ``"memory"`` (GB/s is).
    """

    name: str
    family: str
    config: LayerConfig
    input_shape: Union[Shape, Tuple[Shape, ...]]
    dtype: str = "float32"
    flops: Optional[int] = None
    bytes_moved: Optional[int] = None
    bound: str = "compute"

    def __post_init__(self) -> None:
        shape = self.input_shape
        if len(shape) and isinstance(shape[0], (list, tuple)):
            object.__setattr__(self, "input_shape", tuple(tuple(int(d) for d in s) for s in shape))
        else:
            object.__setattr__(self, "input_shape", tuple(int(d) for d in shape))
        if self.bound not in ("compute", "memory"):
            raise ValueError(f"bound must be 'compute' or 'memory'. Received bound={self.bound!r}")
        if self.flops is None and self.bytes_moved is None:
            raise ValueError(f"workload {self.name!r} needs flops or bytes_moved")

    def keras_config(self) -> LayerConfig:
        """A fresh ``{"class_name", "config"}`` dict with ``dtype`` set, safe to mutate."""
        cfg = copy.deepcopy(self.config)
        cfg["config"]["dtype"] = self.dtype
        return cfg

    @property
    def class_name(self) -> str:
        """The Keras class name (``"Dense"``)."""
        return str(self.config["class_name"])

    @property
    def multi_input(self) -> bool:
        """True when the layer takes a list of inputs (``input_shape`` is a list of shapes)."""
        return bool(self.input_shape) and isinstance(self.input_shape[0], tuple)

    @property
    def input_shapes(self) -> List[Shape]:
        """Every input's shape, as a list (one element for a single-input layer)."""
        if self.multi_input:
            return list(self.input_shape)  # type: ignore[arg-type]
        return [self.input_shape]  # type: ignore[list-item]

    @property
    def batch(self) -> int:
        """The batch size (the first input's first axis)."""
        return int(self.input_shapes[0][0])

    def make_input(self, seed: int = SEED) -> LayerInput:
        """The input: standard normal values of ``input_shape`` and ``dtype``, seeded; a list
        of arrays (drawn in order from one generator) for a layer with several inputs."""
        rng = np.random.default_rng(seed)
        arrays = [rng.standard_normal(s).astype(self.dtype) for s in self.input_shapes]
        return arrays if self.multi_input else arrays[0]

    def rate(self, seconds: float) -> Tuple[float, str]:
        """The headline rate of one call that took ``seconds``: (value, unit).

        ``"GFLOP/s"`` for compute-bound workloads (``"GB/s"`` when only bytes are known),
        ``"GB/s"`` for memory-bound ones.
        """
        use_bytes = self.bytes_moved is not None and (self.bound == "memory" or self.flops is None)
        if use_bytes:
            return self.bytes_moved / seconds / 1e9, "GB/s"  # type: ignore[operator]
        return self.flops / seconds / 1e9, "GFLOP/s"  # type: ignore[operator]


def random_weights(shapes: Sequence[Tuple[int, ...]], dtype: str, seed: int = SEED) -> List[np.ndarray]:
    """Seeded weights for a layer whose ``get_weights()`` has these shapes, in that order.

    Matrices and kernels get normal values scaled by ``1/sqrt(fan_in)`` (fan_in = product of
    all but the last axis) so outputs stay near unit scale; vectors (biases, scales) get
    ``0.1 * normal``, so a bias is never all zeros and a wrong bias order shows up.
    """
    rng = np.random.default_rng(seed + 1)
    out = []
    for shape in shapes:
        shape = tuple(int(d) for d in shape)
        values = rng.standard_normal(shape)
        if len(shape) >= 2:
            values = values / np.sqrt(max(1, int(np.prod(shape[:-1]))))
        else:
            values = 0.1 * values
        out.append(values.astype(dtype))
    return out


REGISTRY: Dict[str, Workload] = {}


def register(*workloads: Workload) -> None:
    """Add workloads to :data:`REGISTRY`.

    Raises:
        ValueError: a name is already registered.
    """
    for w in workloads:
        if w.name in REGISTRY:
            raise ValueError(f"workload {w.name!r} is registered twice")
        REGISTRY[w.name] = w


def select(pattern: Optional[str] = None, family: Optional[str] = None) -> List[Workload]:
    """Registered workloads, in registration order, filtered.

    Args:
        pattern: keep names containing this substring, or matching it as a regular
            expression (``re.search``; a pattern that is no valid expression is only a
            substring); None keeps all.
        family: keep only this family; None keeps all.
    """
    out = []
    try:
        regex = re.compile(pattern) if pattern else None
    except re.error:
        regex = None
    for w in REGISTRY.values():
        if family is not None and w.family != family:
            continue
        if pattern and pattern not in w.name and not (regex and regex.search(w.name)):
            continue
        out.append(w)
    return out


def families() -> List[str]:
    """The registered families, in registration order."""
    return list(dict.fromkeys(w.family for w in REGISTRY.values()))


def choose(names: Sequence[str]) -> List[Workload]:
    """The workloads a command line names (``klayers bench conv lstm``), each once, in
    registration order; no names chooses every workload.

    Each name is a family (``conv``), the start of exactly one family's name (``pool`` for
    ``pooling``), or else a pattern on workload names as :func:`select` takes it
    (``b256``, ``'^maxpool2d-.*f32$'``).

    Raises:
        LookupError: a name matches nothing; the message lists the families (and, for a
            pattern, the closest workload names).
    """
    if not names:
        return select()
    chosen: Dict[str, Workload] = {}
    for name in names:
        family = family_named(name)
        found = select(family=family) if family else select(name)
        if not found:
            raise LookupError(_nothing_matches(name))
        chosen.update((w.name, w) for w in found)
    return [w for w in REGISTRY.values() if w.name in chosen]


def family_named(name: str) -> Optional[str]:
    """The family ``name`` is, or starts the name of (when only one family starts so); else None."""
    known = families()
    if name in known:
        return name
    starting = [f for f in known if f.startswith(name)] if name else []
    return starting[0] if len(starting) == 1 else None


def _nothing_matches(name: str) -> str:
    message = f"no family or workload matches {name!r}; the families are {', '.join(families())}"
    close = difflib.get_close_matches(name, list(REGISTRY), n=3, cutoff=0.5)
    if close:
        message += f"; close workload names: {', '.join(close)}"
    return message + " (python -m klayers.bench --list lists every workload)"


# --------------------------------------------------------------------------------------------
# Dense
# --------------------------------------------------------------------------------------------

#: (batch, input units, output units): a square layer that fits in cache and a wide one
#: whose weights (16 MiB in float32) do not; batch 1 is matrix-vector (memory-bound),
#: batch 256 is a GEMM (compute-bound).
DENSE_SHAPES: Sequence[Tuple[int, int, int]] = [
    (1, 512, 512),
    (256, 512, 512),
    (1, 1024, 4096),
    (256, 1024, 4096),
]
DENSE_ACTIVATIONS: Sequence[str] = ["relu", "linear"]
DENSE_DTYPES: Sequence[str] = ["float32", "float64"]


def dense_workload(batch: int, units_in: int, units: int, activation: str = "linear",
                   dtype: str = "float32", use_bias: bool = True) -> Workload:
    """A ``Dense(units, activation, use_bias)`` on a ``(batch, units_in)`` input.

    FLOPs: ``2·batch·units_in·units`` for the product, plus ``batch·units`` per bias add and
    per activation. Bytes: input + kernel + bias + output once each. Batch below 16 is
    treated as memory-bound (a matrix-vector product streams the kernel).
    """
    itemsize = np.dtype(dtype).itemsize
    flops = 2 * batch * units_in * units
    flops += batch * units * (int(use_bias) + int(activation != "linear"))
    nbytes = itemsize * (batch * units_in + units_in * units + units * int(use_bias) + batch * units)
    name = f"dense-b{batch}-{units_in}x{units}-{activation}-{_DTYPE_SHORT.get(dtype, dtype)}"
    if not use_bias:
        name += "-nobias"
    return Workload(
        name=name,
        family="dense",
        config={"class_name": "Dense",
                "config": {"units": units, "activation": activation, "use_bias": use_bias}},
        input_shape=(batch, units_in),
        dtype=dtype,
        flops=flops,
        bytes_moved=nbytes,
        bound="memory" if batch < 16 else "compute",
    )


def _dense_workloads() -> Iterator[Workload]:
    for dtype in DENSE_DTYPES:
        for batch, units_in, units in DENSE_SHAPES:
            for activation in DENSE_ACTIVATIONS:
                yield dense_workload(batch, units_in, units, activation, dtype)


register(*_dense_workloads())


