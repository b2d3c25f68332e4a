"""Engines that run a benchmark workload: klayers, tf-keras (eager and ``tf.function``), ONNX Runtime.

Each engine turns a :class:`Case` (a workload with its input and weights) into a runner: a
zero-argument callable that takes the NumPy input and returns the layer's output as NumPy,
the path a user's code takes. Only klayers is required; the others are used when their
packages import, and :func:`available_engines` says which.

A workload may declare several inputs (a merge layer): ``case.x`` is then a list of arrays,
klayers and tf-keras eager call the layer on that list, ``tf.function`` is traced with one
``TensorSpec`` per input, and the ONNX graph tf2onnx exports has one input per array.

Thread counts are set once per process, before any computation, by each engine's
constructor (TensorFlow refuses changes after its first op). TensorFlow, tf-keras, tf2onnx and
ONNX Runtime are imported only by the constructors of the engines that use them, so this module
imports in a Python without them (``klayers bench`` without ``--vs-keras``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from klayers import layers as klayers_layers
from klayers._version import __version__
from klayers.bench.workloads import LayerInput, Workload, random_weights
from klayers.engine import Input, Model
from klayers.ops.threads import set_num_threads

Runner = Callable[[], np.ndarray]


@dataclasses.dataclass
class Case:
    """A workload made concrete: the input, the weights, and the tf-keras layer when TF is here.

    Attributes:
        workload: what is run.
        x: the input array (``workload.input_shape``, ``workload.dtype``), or the list of
            input arrays of a layer with several inputs.
        weights: the layer's weights in Keras order, drawn by :func:`~klayers.bench.workloads.random_weights`.
        keras_layer: the tf-keras layer, built and holding ``weights``; None without TF.
    """

    workload: Workload
    x: LayerInput
    weights: List[np.ndarray]
    keras_layer: Any = None


# --------------------------------------------------------------------------------------------
# klayers
# --------------------------------------------------------------------------------------------


def klayers_missing_reason(class_name: str) -> Optional[str]:
    """Why klayers cannot run a ``class_name`` layer yet, or None when it can."""
    if not hasattr(klayers_layers, class_name):
        return f"klayers.layers.{class_name} does not exist yet"
    return None


def input_shapes(x: LayerInput) -> Any:
    """``x.shape``, or the list of shapes of a list of inputs (what ``Layer.build`` takes)."""
    return [a.shape for a in x] if isinstance(x, (list, tuple)) else x.shape


def first_input(x: LayerInput) -> np.ndarray:
    """The array itself, or the first of a list of inputs."""
    return x[0] if isinstance(x, (list, tuple)) else x


def build_klayers_layer(workload: Workload, x: LayerInput,
                        weights: Optional[Sequence[np.ndarray]] = None) -> Tuple[Any, List[np.ndarray]]:
    """Deserialize the workload's layer in klayers, build it by calling it once on ``x``, set weights.

    Args:
        workload: the layer's config comes from ``workload.keras_config()``.
        x: an input (a list of arrays for several inputs); the first call builds the layer.
        weights: Keras-ordered weights to set; None draws them with :func:`random_weights`.

    Returns:
        ``(layer, weights)``: the ready layer and the weights it holds.
    """
    layer = klayers_layers.deserialize(workload.keras_config())
    layer(x)
    if weights is None:
        weights = random_weights([np.shape(w) for w in layer.get_weights()], workload.dtype)
    layer.set_weights(list(weights))
    return layer, list(weights)


class KlayersEngine:
    """klayers: ``layer(x)`` on NumPy arrays, threads set with ``klayers.set_num_threads``."""

    name = "klayers"

    def __init__(self, threads: Optional[int]) -> None:
        set_num_threads(threads)

    def version(self) -> str:
        """klayers's version."""
        return str(__version__)

    def missing_reason(self, workload: Workload) -> Optional[str]:
        """Why this workload cannot run here, or None."""
        return klayers_missing_reason(workload.class_name)

    def prepare(self, case: Case) -> Runner:
        """A runner of the klayers layer holding ``case.weights``."""
        layer, _ = build_klayers_layer(case.workload, case.x, case.weights)
        x = case.x
        return lambda: np.asarray(layer(x))


class KlayersModelEngine(KlayersEngine):
    """klayers for inference: the layer in a one-layer model (``Model(Input, layer(Input))``)
    called on NumPy arrays, which runs the inference plan (folded, prepared kernels) and, from
    the third call, replays its recording (``klayers.engine.replay``)."""

    name = "klayers model"

    def prepare(self, case: Case) -> Runner:
        """A runner of a one-layer model around the klayers layer holding ``case.weights``."""
        layer, _ = build_klayers_layer(case.workload, case.x, case.weights)
        arrays = list(case.x) if isinstance(case.x, (list, tuple)) else [case.x]
        inputs = [Input(a.shape[1:], dtype=str(a.dtype)) for a in arrays]
        model = Model(inputs if len(inputs) > 1 else inputs[0],
                              layer(inputs if isinstance(case.x, (list, tuple)) else inputs[0]))
        x = case.x
        return lambda: np.asarray(model(x))


# --------------------------------------------------------------------------------------------
# TensorFlow / tf-keras
# --------------------------------------------------------------------------------------------


def _import_tf(threads: Optional[int]) -> Tuple[Any, Any]:
    """Import TensorFlow and tf_keras quietly and set TF's thread pools (before any op)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf_keras

    tf.get_logger().setLevel(logging.ERROR)
    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError as e:  # TF was initialized by someone else first
            raise RuntimeError(f"TensorFlow's thread pools were already fixed: {e}") from e
    return tf, tf_keras


def make_case(workload: Workload, tf_keras: Any = None, klayers_ok: bool = True) -> Case:
    """Draw the input and weights of a workload; with ``tf_keras`` also build the Keras layer.

    With tf-keras: the layer is deserialized from the workload's config, built on the input
    shape, and given seeded random weights for the shapes it reports. Without it, the weight
    shapes come from the klayers layer (so ``klayers_ok`` must be True).
    """
    x = workload.make_input()
    if tf_keras is not None:
        layer = tf_keras.layers.deserialize(workload.keras_config())
        layer.build(input_shapes(x))
        weights = random_weights([w.shape for w in layer.get_weights()], workload.dtype)
        layer.set_weights(weights)
        return Case(workload, x, weights, layer)
    if not klayers_ok:
        raise RuntimeError(f"{workload.name}: neither tf-keras nor klayers can build this layer")
    _, weights = build_klayers_layer(workload, x)
    return Case(workload, x, weights, None)


class KerasEagerEngine:
    """tf-keras 2 eager: ``layer(x).numpy()`` with a NumPy ``x``."""

    name = "keras eager"

    def __init__(self, threads: Optional[int]) -> None:
        self.tf, self.tf_keras = _import_tf(threads)

    def version(self) -> str:
        """TensorFlow and tf-keras versions."""
        return f"tensorflow {self.tf.__version__}, tf_keras {self.tf_keras.__version__}"

    def missing_reason(self, workload: Workload) -> Optional[str]:
        """Always None: every registered workload is a Keras layer."""
        return None

    def prepare(self, case: Case) -> Runner:
        """A runner of the case's tf-keras layer, eagerly."""
        layer, x = case.keras_layer, case.x
        return lambda: layer(x).numpy()


def keras_function(case: Case, tf: Any) -> Any:
    """The case's tf-keras layer as a ``tf.function`` with the input's exact signature.

    One ``TensorSpec`` per input: ``x`` for a single input, ``x0``, ``x1`` ... for a list
    (then the function takes them as positional arguments and calls the layer on the list).
    """
    layer = case.keras_layer
    if isinstance(case.x, (list, tuple)):
        specs = [tf.TensorSpec(a.shape, a.dtype, name=f"x{i}") for i, a in enumerate(case.x)]
        return tf.function(lambda *ts: layer(list(ts)), input_signature=specs)
    spec = tf.TensorSpec(case.x.shape, case.x.dtype, name="x")
    return tf.function(lambda t: layer(t), input_signature=[spec])


def call_args(x: LayerInput) -> Tuple[np.ndarray, ...]:
    """The positional arguments of :func:`keras_function`'s function for input ``x``."""
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


class KerasFunctionEngine(KerasEagerEngine):
    """tf-keras 2 under ``tf.function`` (graph mode, traced once for the input's signature)."""

    name = "keras tf.function"

    def prepare(self, case: Case) -> Runner:
        """A runner of the traced layer."""
        fn, args = keras_function(case, self.tf), call_args(case.x)
        fn(*args)  # trace now, not in the timed loop
        return lambda: fn(*args).numpy()


class OnnxRuntimeEngine:
    """ONNX Runtime (CPU provider) on the tf-keras layer exported by tf2onnx."""

    name = "onnxruntime"

    def __init__(self, threads: Optional[int]) -> None:
        self.tf, self.tf_keras = _import_tf(threads)
        import onnxruntime as ort
        import tf2onnx

        logging.getLogger("tf2onnx").setLevel(logging.ERROR)
        self.ort, self.tf2onnx, self.threads = ort, tf2onnx, threads

    def version(self) -> str:
        """onnxruntime and tf2onnx versions."""
        return f"onnxruntime {self.ort.__version__}, tf2onnx {self.tf2onnx.__version__}"

    def missing_reason(self, workload: Workload) -> Optional[str]:
        """Always None: export failures are reported when preparing."""
        return None

    def prepare(self, case: Case) -> Runner:
        """Export the case's layer with tf2onnx and open an ORT session on it."""
        fn = keras_function(case, self.tf)
        spec = fn.input_signature
        proto, _ = self.tf2onnx.convert.from_function(fn, input_signature=spec)
        opts = self.ort.SessionOptions()
        if self.threads is not None:
            opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = self.ort.InferenceSession(proto.SerializeToString(), opts,
                                         providers=["CPUExecutionProvider"])
        # graph inputs are named after the specs ("x0:0" ...); match them by name, not order
        by_name = {sp.name: a for sp, a in zip(spec, call_args(case.x))}
        feed = {}
        for inp in sess.get_inputs():
            key = inp.name.split(":")[0]
            if key not in by_name:
                raise RuntimeError(f"ONNX input {inp.name!r} matches none of {sorted(by_name)}")
            feed[inp.name] = by_name[key]
        return lambda: sess.run(None, feed)[0]


# --------------------------------------------------------------------------------------------
# Which engines are here
# --------------------------------------------------------------------------------------------

ENGINE_CLASSES: Sequence[type] = (KlayersEngine, KlayersModelEngine, KerasEagerEngine, KerasFunctionEngine,
                                  OnnxRuntimeEngine)
_REQUIRES: Dict[str, Sequence[str]] = {
    "klayers": ("klayers",),
    "klayers model": ("klayers",),
    "keras eager": ("tensorflow", "tf_keras"),
    "keras tf.function": ("tensorflow", "tf_keras"),
    "onnxruntime": ("tensorflow", "tf_keras", "tf2onnx", "onnxruntime"),
}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def available_engines(threads: Optional[int], only: Optional[Sequence[str]] = None
                      ) -> Tuple[List[Any], Dict[str, str]]:
    """Construct every engine whose packages are installed (TF-based ones first, for TF's threads).

    Args:
        threads: thread count for all engines (None: each engine's default).
        only: engine names to keep (None: all).

    Returns:
        ``(engines, skipped)``: engines in display order (klayers first), and
        ``{engine name: why it is not there}``.
    """
    wanted = [c for c in ENGINE_CLASSES if only is None or c.name in only]
    skipped: Dict[str, str] = {}
    built: Dict[str, Any] = {}
    # TensorFlow must fix its thread pools before anything (klayers included) runs an op.
    for cls in sorted(wanted, key=lambda c: c.name.startswith("klayers")):
        missing = [m for m in _REQUIRES[cls.name] if not _installed(m)]
        if missing:
            skipped[cls.name] = "not installed: " + ", ".join(missing)
            continue
        try:
            built[cls.name] = cls(threads)
        except Exception as e:  # an engine that cannot start is reported, not fatal
            skipped[cls.name] = f"{type(e).__name__}: {e}"
    return [built[c.name] for c in wanted if c.name in built], skipped
