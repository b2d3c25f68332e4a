"""Whole-model inference side by side: klayers, tf-keras (tf.function, predict), ONNX Runtime.

Models (issue 8): ``keras.applications.MobileNetV2(alpha=0.35, weights=None)`` at 224x224x3
(1000 classes) and at the 64x64x3 / 10 classes of the repository fixture, and the text model
``Embedding(mask_zero) -> Bidirectional(LSTM) -> GRU -> Dense`` (padded token sequences, so
the masks matter), each at batch 1 and 16. Every model is built in tf-keras, its weights and
BatchNorm statistics are drawn from a crc32-seeded RNG, it is saved to a temporary ``.h5`` and
loaded back with ``klayers.models.load_model``: every engine runs the very same weights.
Transformer blocks (issue 15, by name, not in the default set): ``bert-block-128`` (one BERT-base
encoder block, 128 x 768, 12 heads, MLP 3072) and ``decoder-block-512`` (one causal decoder block,
512 x 768, 12 heads, MLP 3072), each at batch 1 and 8 unless ``--batches`` says otherwise.

Engines (one row per model and batch, all in one run, interleaved):

- ``klayers predict``: ``model.predict(x, batch_size=len(x), verbose=0)``
- ``klayers call``: ``model(x)``
- ``keras tf.function``: ``tf.function(lambda t: model(t, training=False))`` traced once with
  the input's exact ``TensorSpec``, ``fn(x).numpy()``
- ``keras predict``: ``model.predict(x, batch_size=len(x), verbose=0)``
- ``onnxruntime``: that ``tf.function`` exported by tf2onnx, CPU provider, all graph
  optimizations

Outputs are checked against tf-keras (``tf.function``) before timing; an engine that disagrees
is marked MISMATCH and not timed. Timing reuses ``klayers.bench.compare``'s interleaved sampler
(medians over round-robin repeats, cool-down between engines).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. /work/venvs/tf/bin/python \\
        benchmarks/compare_models.py --threads 2 --markdown
    python benchmarks/compare_models.py --engines klayers   # no TensorFlow: the fixture files

Without tf-keras (or with ``--engines`` naming only klayers engines), the models are the
recorded fixture files ``conformance/references/keras2/files/{mobilenet_v2,text_model}.h5``.

Exit status: 0, or 1 when an engine disagreed or failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import logging
import os
import sys
import tempfile
import time
import warnings
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
try:  # prefer an installed klayers or PYTHONPATH; fall back to this checkout
    import klayers  # noqa: F401
except ImportError:
    sys.path.append(ROOT)

from klayers.bench.compare import (  # noqa: E402
    TimingPlan,
    fmt_time,
    median_iqr,
    output_error,
    render,
    time_interleaved,
    versions,
)
from klayers.bench.engines import _import_tf  # noqa: E402

FIXTURES = os.path.join(ROOT, "conformance", "references", "keras2", "files")
KLAYERS_ENGINES = ("klayers predict", "klayers call")
PEER_ENGINES = ("keras tf.function", "keras predict", "onnxruntime")
ALL_ENGINES = KLAYERS_ENGINES + PEER_ENGINES
#: ``max |out - ref| / max(1, max |ref|)`` allowed against tf-keras (float32 models).
TOLERANCE = 1e-4

#: The text model's sizes (the recorded fixture has the same layers at toy sizes).
TEXT_VOCAB, TEXT_LEN, TEXT_EMBED, TEXT_UNITS, TEXT_CLASSES = 1000, 32, 32, 32, 3


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One benchmarked model.

    Attributes:
        name: row prefix (``<name>-b<batch>``).
        build: ``build(tf_keras) -> model`` (tf-keras), None when only a fixture exists.
        fixture: file name under ``FIXTURES`` used when tf-keras is absent, or None.
        describe: one line for the header.
        batches: the model's own batch sizes when ``--batches`` is not given (None: 1 and 16).
    """

    name: str
    build: Optional[Callable[[Any], Any]]
    fixture: Optional[str]
    describe: str
    batches: Optional[Tuple[int, ...]] = None


def _mobilenet(size: int, classes: int) -> Callable[[Any], Any]:
    def build(keras: Any) -> Any:
        return keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(size, size, 3),
                                              classes=classes)
    return build


def _app(name: str, size: int, **kwargs: Any) -> Callable[[Any], Any]:
    """``keras.applications.<name>(weights=None)`` at ``size x size x 3``, 1000 classes, with
    logits out (``classifier_activation=None``: a random net's softmax saturates, and then
    the output would hardly depend on the input)."""
    def build(keras: Any) -> Any:
        return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3),
                                                 classifier_activation=None, **kwargs)
    return build


def _text(keras: Any) -> Any:
    L = keras.layers
    tokens = keras.Input((TEXT_LEN,), dtype="int32", name="tokens")
    h = L.Embedding(TEXT_VOCAB, TEXT_EMBED, mask_zero=True, name="embed")(tokens)
    h = L.Bidirectional(L.LSTM(TEXT_UNITS, return_sequences=True), name="bidi")(h)
    h = L.GRU(TEXT_UNITS, name="gru")(h)
    out = L.Dense(TEXT_CLASSES, activation="softmax", name="out")(h)
    return keras.Model(tokens, out, name="text")


def _lstm256(keras: Any) -> Any:
    L = keras.layers
    tokens = keras.Input((100,), dtype="int32", name="tokens")
    h = L.Embedding(20000, 128, name="embed")(tokens)
    h = L.LSTM(256, name="lstm")(h)
    return keras.Model(tokens, L.Dense(10, name="out")(h), name="lstm256")


def _gru(keras: Any) -> Any:
    L = keras.layers
    x = keras.Input((50, 32), name="series")
    h = L.GRU(128, return_sequences=True, name="gru1")(x)
    h = L.GRU(128, name="gru2")(h)
    return keras.Model(x, L.Dense(1, name="out")(h), name="gru")


def _conv1d(keras: Any) -> Any:
    L = keras.layers
    x = keras.Input((256, 8), name="series")
    h = L.Conv1D(32, 7, padding="same", activation="relu", name="c1")(x)
    h = L.MaxPooling1D(2, name="p1")(h)
    h = L.Conv1D(64, 5, padding="same", activation="relu", name="c2")(h)
    h = L.MaxPooling1D(2, name="p2")(h)
    h = L.Conv1D(128, 3, padding="same", activation="relu", name="c3")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    return keras.Model(x, L.Dense(5, name="out")(h), name="conv1d")


#: The transformer blocks' sizes (BERT-base: width 768, 12 heads, MLP 3072).
TR_WIDTH, TR_HEADS, TR_MLP = 768, 12, 3072


def _encoder_block(keras: Any) -> Any:
    """One BERT-base encoder block (post-norm): self-attention, Add, LayerNorm, gelu MLP, Add,
    LayerNorm, on 128 token vectors of width 768. The gelu is BERT's own exact form,
    ``h * 0.5 * (1 + erf(h / sqrt(2)))`` in TensorFlow ops (TFOpLambda nodes): tf-keras's
    ``Dense(activation="gelu")`` computes it with ``Erfc``, which tf2onnx cannot convert."""
    import tensorflow as tf

    L = keras.layers
    x = keras.Input((128, TR_WIDTH), name="tokens")
    a = L.MultiHeadAttention(TR_HEADS, TR_WIDTH // TR_HEADS, dropout=0.1, name="mha")(x, x)
    h = L.LayerNormalization(epsilon=1e-12, name="ln1")(L.Add(name="res1")([x, L.Dropout(0.1, name="drop1")(a)]))
    f = L.Dense(TR_MLP, name="mlp_in")(h)
    f = f * 0.5 * (1.0 + tf.math.erf(f / float(np.sqrt(2.0))))
    f = L.Dropout(0.1, name="drop2")(L.Dense(TR_WIDTH, name="mlp_out")(f))
    y = L.LayerNormalization(epsilon=1e-12, name="ln2")(L.Add(name="res2")([h, f]))
    return keras.Model(x, y, name="bert_block")


def _decoder_block(keras: Any) -> Any:
    """One GPT-style causal decoder block (pre-norm): LayerNorm, causal self-attention, Add,
    LayerNorm, gelu MLP, Add, on 512 token vectors of width 768. The gelu is GPT-2's tanh form,
    ``tf.nn.gelu(approximate=True)`` (a TFOpLambda node; tf2onnx cannot convert the exact one)."""
    import tensorflow as tf

    L = keras.layers
    x = keras.Input((512, TR_WIDTH), name="tokens")
    h = L.LayerNormalization(epsilon=1e-5, name="ln1")(x)
    a = L.MultiHeadAttention(TR_HEADS, TR_WIDTH // TR_HEADS, name="mha")(h, h, use_causal_mask=True)
    x2 = L.Add(name="res1")([x, a])
    f = L.Dense(TR_MLP, name="mlp_in")(L.LayerNormalization(epsilon=1e-5, name="ln2")(x2))
    f = tf.nn.gelu(f, approximate=True)
    y = L.Add(name="res2")([x2, L.Dense(TR_WIDTH, name="mlp_out")(f)])
    return keras.Model(x, y, name="decoder_block")


APPS = [("ResNet50", "resnet50"), ("MobileNetV2", "mobilenetv2"), ("EfficientNetB0", "efficientnetb0"),
        ("MobileNetV3Small", "mobilenetv3small"), ("InceptionV3", "inceptionv3"), ("Xception", "xception"),
        ("DenseNet121", "densenet121")]

MODELS: Dict[str, ModelSpec] = {
    s.name: s for s in (
        *(ModelSpec(f"{key}-{size}", _app(app, size), None,
                    f"keras.applications.{app}(weights=None), {size}x{size}x3, 1000 logits")
          for size in (96, 224) for app, key in APPS),
        ModelSpec("mobilenetv2a035-224", _mobilenet(224, 1000), None,
                  "MobileNetV2(alpha=0.35, weights=None), 224x224x3, 1000 classes"),
        ModelSpec("mobilenetv2-64", _mobilenet(64, 10), "mobilenet_v2.h5",
                  "MobileNetV2(alpha=0.35, weights=None), 64x64x3, 10 classes (the fixture's shape)"),
        ModelSpec("conv1d", _conv1d, None,
                  "Conv1D(32,7) -> pool -> Conv1D(64,5) -> pool -> Conv1D(128,3) -> GAP -> Dense(5), 256x8"),
        ModelSpec("lstm256", _lstm256, None, "Embedding(20000, 128) -> LSTM(256) -> Dense(10), 100 tokens"),
        ModelSpec("gru", _gru, None, "GRU(128, return_sequences) -> GRU(128) -> Dense(1), 50x32"),
        ModelSpec("text", _text, "text_model.h5",
                  f"Embedding({TEXT_VOCAB}, {TEXT_EMBED}, mask_zero) -> Bidirectional(LSTM({TEXT_UNITS}))"
                  f" -> GRU({TEXT_UNITS}) -> Dense({TEXT_CLASSES}, softmax), {TEXT_LEN} tokens, "
                  "padded"),
        ModelSpec("bert-block-128", _encoder_block, None,
                  f"BERT-base encoder block: MultiHeadAttention({TR_HEADS} heads, width {TR_WIDTH}) -> Add -> "
                  f"LayerNorm -> Dense({TR_MLP}) -> exact gelu (erf, TF ops) -> Dense({TR_WIDTH}) -> Add -> "
                  f"LayerNorm, 128 x {TR_WIDTH}",
                  batches=(1, 8)),
        ModelSpec("decoder-block-512", _decoder_block, None,
                  f"causal decoder block: LayerNorm -> MultiHeadAttention({TR_HEADS} heads, width {TR_WIDTH}, "
                  f"use_causal_mask) -> Add -> LayerNorm -> Dense({TR_MLP}) -> tanh gelu (tf.nn.gelu) -> "
                  f"Dense({TR_WIDTH}) -> Add, 512 x {TR_WIDTH}", batches=(1, 8)),
    )
}
#: what runs without ``--models`` (the issue's side-by-side set)
DEFAULT_MODELS = ["resnet50-96", "mobilenetv2-96", "efficientnetb0-96", "mobilenetv3small-96", "inceptionv3-96",
                  "conv1d", "lstm256", "gru", "text"]


def randomize(model: Any, seed: int) -> None:
    """Seeded weights that keep activations in range through a deep net.

    Kernels ~ N(0, 2 / fan_in) (fan-in of a depthwise kernel: its window), biases and BatchNorm
    beta / moving means ~ N(0, 0.1^2), gamma ~ U(0.5, 1.5), (moving) variances ~ U(0.5, 1.5),
    embeddings ~ N(0, 0.5^2); integer weights (a Normalization's count) are kept. Random
    statistics make BatchNorm's inference path matter. Then the last Dense layer is scaled so
    that its outputs on a probe batch have a standard deviation of about 2: outputs that
    depend on the input, neither vanishing nor exploding through the depth.
    """
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        shape = tuple(int(d) for d in w.shape)
        name = w.name
        if not w.dtype.is_floating:  # a Normalization's count
            values.append(w.numpy())
            continue
        if "variance" in name or "gamma" in name:
            v = rng.uniform(0.5, 1.5, shape)
        elif "mean" in name or "beta" in name or "bias" in name:
            v = rng.normal(0.0, 0.1, shape)
        elif "embeddings" in name:
            v = rng.normal(0.0, 0.5, shape)
        else:
            fan_in = int(np.prod(shape[:-2] if "depthwise" in name else shape[:-1])) or 1
            v = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        values.append(v.astype("float32"))
    model.set_weights(values)
    last = model.layers[-1]
    if type(last).__name__ == "Dense" and getattr(last.activation, "__name__", "") == "linear":
        x = make_input(model.inputs[0].shape, model.inputs[0].dtype.name, 4, seed, _vocab(model) or 2)
        std = float(np.std(np.asarray(model(x, training=False))))
        if np.isfinite(std) and std > 0:
            last.set_weights([w * (2.0 / std) for w in last.get_weights()])


def _vocab(model: Any) -> int:
    return max((int(layer.input_dim) for layer in model.layers if type(layer).__name__ == "Embedding"), default=0)


def make_input(input_shape: Sequence[Optional[int]], dtype: str, batch: int, seed: int,
               vocab: int) -> np.ndarray:
    """A seeded batch: N(0, 1) images, or token ids in [1, vocab) with padded tails (zeros)."""
    rng = np.random.default_rng(seed)
    shape = (batch,) + tuple(int(d) for d in input_shape[1:])
    if np.dtype(dtype).kind in "iu":
        x = rng.integers(1, vocab, size=shape).astype(dtype)
        lengths = rng.integers(max(1, shape[1] // 3), shape[1] + 1, size=batch)
        x[np.arange(shape[1])[None, :] >= lengths[:, None]] = 0  # the mask matters
        return x
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------------------------
# Engines: each gives a zero-argument runner returning NumPy
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Prepared:
    """One model in every engine that can run it (per batch runners come from :func:`runners`)."""

    spec: ModelSpec
    kmodel: Any
    keras_model: Any = None
    vocab: int = 0


def load_models(spec: ModelSpec, tf_keras: Any, tmpdir: str) -> Prepared:
    """The tf-keras model (randomized, saved to ``tmpdir``) and klayers's load of that file;
    without tf-keras, klayers's load of the spec's fixture."""
    import klayers

    if tf_keras is not None and spec.build is not None:
        tf_keras.backend.clear_session()
        model = spec.build(tf_keras)
        randomize(model, zlib.crc32(spec.name.encode()))
        path = os.path.join(tmpdir, spec.name + ".h5")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "HDF5 is legacy": the format is the point here
            model.save(path, save_format="h5")
        kmodel = klayers.models.load_model(path)
    else:
        if spec.fixture is None:
            raise RuntimeError(f"{spec.name}: needs tf-keras (no fixture file)")
        model, kmodel = None, klayers.models.load_model(os.path.join(FIXTURES, spec.fixture))
    vocab = 0
    for layer in kmodel.layers:
        if type(layer).__name__ == "Embedding":
            vocab = int(layer.input_dim)
    return Prepared(spec, kmodel, model, vocab)


def _ort_session(ort: Any, proto: Any, threads: Optional[int]) -> Any:
    # the same session options as klayers.bench.engines.OnnxRuntimeEngine
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def runners(prep: Prepared, x: np.ndarray, wanted: Sequence[str], threads: Optional[int],
            tf: Any = None) -> Tuple[Dict[str, Callable[[], Any]], Dict[str, str]]:
    """``({engine: runner}, {engine: why it failed})`` for one model at one batch."""
    out: Dict[str, Callable[[], Any]] = {}
    problems: Dict[str, str] = {}
    n = x.shape[0]
    km, model = prep.kmodel, prep.keras_model
    makers: Dict[str, Callable[[], Callable[[], Any]]] = {
        "klayers predict": lambda: (lambda: km.predict(x, batch_size=n, verbose=0)),
        "klayers call": lambda: (lambda: np.asarray(km(x))),
    }
    if model is not None and tf is not None:
        spec = tf.TensorSpec(x.shape, x.dtype, name="x")
        fn = tf.function(lambda t: model(t, training=False), input_signature=[spec])

        def ort_runner() -> Callable[[], Any]:
            import onnxruntime as ort
            import tf2onnx

            logging.getLogger("tf2onnx").setLevel(logging.ERROR)
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=[spec])
            sess = _ort_session(ort, proto, threads)
            if len(sess.get_inputs()) != 1:
                # captured values that the function export left as graph inputs (EfficientNet's
                # Normalization statistics): the Keras export freezes them
                proto, _ = tf2onnx.convert.from_keras(model, input_signature=[spec])
                sess = _ort_session(ort, proto, threads)
            feed = {sess.get_inputs()[0].name: x}
            return lambda: sess.run(None, feed)[0]

        makers["keras tf.function"] = lambda: (lambda: fn(x).numpy())
        makers["keras predict"] = lambda: (lambda: model.predict(x, batch_size=n, verbose=0))
        makers["onnxruntime"] = ort_runner
    for name in wanted:
        if name not in makers:
            continue
        try:
            out[name] = makers[name]()
        except Exception as e:  # an engine that cannot export / load is reported, not fatal
            problems[name] = f"ERROR {type(e).__name__}: {e}"
    return out, problems


def run_row(prep: Prepared, batch: int, wanted: Sequence[str], threads: Optional[int],
            plan: TimingPlan, tf: Any = None) -> Dict[str, Any]:
    """Check every engine's output on one batch against tf-keras, then time them interleaved.

    Returns ``{"row", "engines": {name: {median_s, iqr_s, error}}, "problems", "reference"}``.
    """
    km = prep.kmodel
    dtype = np.dtype(km.inputs[0].dtype).name
    seed = zlib.crc32(f"{prep.spec.name}-b{batch}".encode())
    x = make_input(km.inputs[0].shape, dtype, batch, seed, prep.vocab)
    fns, problems = runners(prep, x, wanted, threads, tf)
    outputs: Dict[str, np.ndarray] = {}
    for name, fn in list(fns.items()):
        try:
            outputs[name] = np.asarray(fn())
        except Exception as e:
            problems[name] = f"ERROR {type(e).__name__}: {e}"
            fns.pop(name)
    ref_name = "keras tf.function" if "keras tf.function" in outputs else next(iter(outputs), None)
    errors: Dict[str, float] = {}
    for name, out in outputs.items():
        errors[name] = output_error(out, outputs[ref_name])
        if not errors[name] <= TOLERANCE:
            problems[name] = f"MISMATCH vs {ref_name}: relative error {errors[name]:.2e} > {TOLERANCE:.0e}"
            fns.pop(name)
    results: Dict[str, Dict[str, Any]] = {}
    if fns:
        for name, values in time_interleaved(fns, plan).items():
            med, iqr = median_iqr(values)
            results[name] = {"median_s": med, "iqr_s": iqr, "error": errors.get(name)}
    return {"row": f"{prep.spec.name}-b{batch}", "engines": results, "problems": problems,
            "reference": ref_name}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def fastest_peer(row: Dict[str, Any]) -> Optional[str]:
    """The fastest non-klayers engine of a row, or None."""
    peers = {n: r["median_s"] for n, r in row["engines"].items() if n in PEER_ENGINES}
    return min(peers, key=peers.__getitem__) if peers else None


def table(rows: Sequence[Dict[str, Any]], names: Sequence[str]) -> Tuple[List[str], List[List[str]]]:
    """``(header, cells)``: per engine ``median ±IQR/2``; klayers predict and call over the
    fastest peer; klayers predict over tf-keras ``tf.function`` (the batch-1 target is <= 0.33)."""
    header = ["model-batch"] + list(names) + ["predict / best peer", "call / best peer",
                                              "predict / tf.function"]
    cells = []
    for row in rows:
        res = row["engines"]
        line = [row["row"]]
        for name in names:
            r = res.get(name)
            if r is not None:
                line.append(fmt_time(r["median_s"], r["iqr_s"] / 2))
            else:
                p = row["problems"].get(name, "")
                line.append("MISMATCH" if p.startswith("MISMATCH") else "error" if p else "-")
        best = fastest_peer(row)
        for k in KLAYERS_ENGINES:
            line.append(f"{res[k]['median_s'] / res[best]['median_s']:.2f} ({best})"
                        if k in res and best else "-")
        tfn = res.get("keras tf.function")
        line.append(f"{res['klayers predict']['median_s'] / tfn['median_s']:.2f}"
                    if tfn and "klayers predict" in res else "-")
        cells.append(line)
    return header, cells


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


class _Named:
    """An engine-like object for ``klayers.bench.compare.versions`` (name and version())."""

    def __init__(self, name: str, version: str) -> None:
        self.name, self._version = name, version

    def version(self) -> str:
        return self._version


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help=f"comma-separated subset of {', '.join(MODELS)} (default: {','.join(DEFAULT_MODELS)})")
    p.add_argument("--batches", default=None,
                   help="comma-separated batch sizes (default: 1,16, or a model's own: 1,8 for "
                        "bert-block-128 and decoder-block-512)")
    p.add_argument("--threads", default="2",
                   help="threads for every engine (default 2); several, comma-separated ('all': every "
                        "core), run one after another, each in its own process (TensorFlow fixes its "
                        "thread pools once per process)")
    p.add_argument("--engines", default=None,
                   help="comma-separated subset of: " + ", ".join(ALL_ENGINES)
                        + "; 'klayers' means both klayers engines (default: every installed one)")
    p.add_argument("--repeats", type=int, default=15, help="timing samples per engine (default 15)")
    p.add_argument("--rounds", type=int, default=5, help="round-robin visits per engine (default 5)")
    p.add_argument("--cooldown-ms", type=float, default=None,
                   help="sleep before each switch of engine (default 150 with --threads > 1, else 0)")
    p.add_argument("--min-sample-ms", type=float, default=20.0,
                   help="each sample repeats the call until it lasts this long (default 20)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", metavar="PATH", default=None, help="also write all results as JSON")
    return p.parse_args(argv)


def thread_counts(text: str) -> List[int]:
    """``--threads``: comma-separated counts, ``all`` for every core (``"1,2,all"``)."""
    return [(os.cpu_count() or 1) if t.strip() == "all" else int(t) for t in str(text).split(",") if t.strip()]


def _wanted_engines(text: Optional[str]) -> List[str]:
    if not text:
        return list(ALL_ENGINES)
    out: List[str] = []
    for part in (s.strip() for s in text.split(",")):
        out.extend(KLAYERS_ENGINES if part == "klayers" else [part])
    unknown = [e for e in out if e not in ALL_ENGINES]
    if unknown:
        raise SystemExit(f"unknown engine(s) {unknown}; known: {', '.join(ALL_ENGINES)}")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the comparison; print the table; return the exit status."""
    import json

    args = parse_args(argv)
    counts = thread_counts(args.threads)
    if len(counts) > 1:
        import subprocess

        rest = list(argv if argv is not None else sys.argv[1:])
        i = next(i for i, a in enumerate(rest) if a.startswith("--threads"))
        del rest[i:i + (1 if "=" in rest[i] else 2)]
        status = 0
        for t in counts:
            sys.stdout.flush()
            status = max(status, subprocess.call([sys.executable, os.path.abspath(__file__), "--threads", str(t), *rest]))
        return status
    args.threads = counts[0]
    wanted = _wanted_engines(args.engines)
    specs = [MODELS[m.strip()] for m in args.models.split(",") if m.strip()]
    given = [int(b) for b in args.batches.split(",") if b.strip()] if args.batches else None
    need_tf = any(e in PEER_ENGINES for e in wanted)
    tf = tf_keras = None
    skipped: Dict[str, str] = {}
    have_tf = all(importlib.util.find_spec(m) for m in ("tensorflow", "tf_keras"))
    if have_tf and need_tf:
        # TensorFlow fixes its thread pools before anything (klayers included) runs an op
        tf, tf_keras = _import_tf(args.threads)
    else:
        for e in wanted:
            if e in PEER_ENGINES:
                skipped[e] = "not installed: tensorflow / tf_keras"
    if not all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnxruntime")) and "onnxruntime" in wanted:
        skipped["onnxruntime"] = "not installed: tf2onnx / onnxruntime"
    wanted = [e for e in wanted if e not in skipped]

    import klayers

    klayers.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=args.threads, user_api="blas")
    named = [_Named("klayers", str(klayers.__version__))]
    if tf is not None:
        named.append(_Named("tf-keras", f"tensorflow {tf.__version__}, tf_keras {tf_keras.__version__}"))
    if "onnxruntime" in wanted:
        import onnxruntime
        import tf2onnx

        named.append(_Named("onnxruntime", f"onnxruntime {onnxruntime.__version__}, tf2onnx {tf2onnx.__version__}"))
    info = versions(named)
    cooldown_ms = args.cooldown_ms if args.cooldown_ms is not None else (150.0 if args.threads > 1 else 0.0)
    plan = TimingPlan(args.repeats, args.rounds, args.min_sample_ms / 1e3, cooldown_ms / 1e3)
    print(f"# threads={args.threads}, repeats={plan.repeats} in {plan.rounds} rounds, min sample "
          f"{args.min_sample_ms:g} ms, cooldown {cooldown_ms:g} ms; reference: tf-keras tf.function")
    for k, v in info.items():
        print(f"#   {k}: {v}")
    for name, why in skipped.items():
        print(f"#   {name}: not run ({why})")
    for s in specs:
        print(f"#   {s.name}: {s.describe if tf_keras is not None else 'fixture ' + str(s.fixture or '(none: skipped)')}")
    sys.stdout.flush()

    rows: List[Dict[str, Any]] = []
    status = 0
    with tempfile.TemporaryDirectory(prefix="klayers-bench-") as tmp:
        for spec in specs:
            if tf_keras is None and spec.fixture is None:
                print(f"# {spec.name}: skipped (needs tf-keras)", file=sys.stderr)
                continue
            t0 = time.perf_counter()
            prep = load_models(spec, tf_keras, tmp)
            for batch in given or spec.batches or (1, 16):
                time.sleep(plan.cooldown_s)
                row = run_row(prep, batch, wanted, args.threads, plan, tf)
                rows.append(row)
                for name, why in row["problems"].items():
                    status = 1
                    print(f"# {row['row']}: {name}: {why}", file=sys.stderr)
            print(f"# {spec.name}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    limiter.restore_original_limits()

    header, cells = table(rows, wanted)
    print()
    print(render(header, cells, args.markdown))
    print()
    print("Cells: median per call ±half the interquartile range, NumPy in and NumPy out. Ratios: "
          "klayers's median over the fastest peer's (> 1: klayers slower); targets (issue 8): "
          "<= 1 at batch 16, predict / tf.function <= 0.33 at batch 1.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "plan": dataclasses.asdict(plan), "versions": info,
                       "rows": rows}, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
