"""Real Keras model files: models saved by tf-keras 2.21 and Keras 3.15, replayed by klayers.

Each fixture is one row of ``FIXTURES``: a name and a builder ``build(keras, rng) -> (model,
inputs)`` written against the API both Kerases share (``keras.Input``, ``keras.layers.X``,
``keras.Model``, ``keras.Sequential``). For every row the recorder randomizes the weights (crc32
seeded; BatchNorm variances kept positive), predicts on the inputs and saves the model in every
format the Keras that runs it writes:

=========  =========================================================================
keras2     ``<name>.h5`` (``model.save``, legacy HDF5: ``model_config`` + ``model_weights``),
           ``<name>.w.h5`` (``save_weights`` legacy HDF5: ``layer_names`` at the root),
           and with ``new_formats``: ``<name>.keras`` / ``<name>.weights.h5`` (tf-keras's
           own saving_lib writer: object paths without name attributes)
keras3     ``<name>.keras`` (zip: config.json, metadata.json, model.weights.h5),
           ``<name>.weights.h5`` (object paths ``layers/dense_1/vars/0``), ``<name>.h5``
           (Keras 3's legacy HDF5 writer: Keras 3 config dialect, weight names without ``:0``)
=========  =========================================================================

Files go to ``references/<dialect>/files/``; inputs ``x<i>`` and Keras's outputs ``y<i>`` to the
case's ``.npz``. Adding a model that uses new layers is one ``Fixture(...)`` row; keep models
tiny (a few KB of weights each). klayers is never imported here.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Callable, List, Optional, Tuple

import numpy as np


@dataclasses.dataclass
class Fixture:
    """One saved model: ``build(keras, rng) -> (model, inputs)``."""

    name: str
    build: Callable[[Any, np.random.Generator], Any]
    keras2: bool = True
    keras3: bool = True
    #: compile with Adam and take one training step first, so that the file carries a
    #: training config and optimizer state (klayers ignores both, with a note).
    compile: bool = False
    #: tf-keras's own ``.keras`` / ``.weights.h5`` writer too (Keras 2 side only).
    new_formats: bool = False
    #: the model holds a Python lambda (loading needs safe_mode=False).
    unsafe: bool = False
    #: the files to write (keys of ``_FORMATS``) under tf-keras / Keras 3; None: every format.
    formats: Optional[Tuple[str, ...]] = None
    formats3: Optional[Tuple[str, ...]] = None
    #: Keras 2 only: a builder whose layers cannot run on CPU (CuDNN); ``reference(keras,
    #: path, rng) -> model`` builds the CPU twin that loads the saved weights and predicts.
    reference: Optional[Callable[..., Any]] = None


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype("float32")


def sequential_mlp(keras, rng):
    L = keras.layers
    model = keras.Sequential(
        [keras.Input((6,)), L.Dense(8, activation="relu"), L.Dense(5, activation="tanh"), L.Dense(3, activation="softmax")],
        name="mlp",
    )
    return model, _f32(rng, 9, 6)


def functional_multi_io_shared(keras, rng):
    L = keras.layers
    a = keras.Input((6,), name="left")
    b = keras.Input((6,), name="right")
    shared = L.Dense(5, activation="relu", name="shared")
    sa, sb = shared(a), shared(b)
    head = L.Dense(2, name="head")
    out1, out2 = head(sa), head(sb)
    out3 = L.Dense(3, activation="sigmoid", name="tail")(sb)
    model = keras.Model([a, b], [out1, out2, out3], name="siamese")
    return model, [_f32(rng, 7, 6), _f32(rng, 7, 6)]


def nested_models(keras, rng):
    L = keras.layers
    inner_in = keras.Input((4,))
    h = L.Dense(5, activation="relu")(inner_in)
    encoder = keras.Model(inner_in, L.Dense(3, activation="tanh")(h), name="encoder")
    seq = keras.Sequential([keras.Input((3,)), L.Dense(4, activation="elu"), L.Dense(2, use_bias=False)], name="inner_seq")
    p = keras.Input((4,), name="p")
    q = keras.Input((4,), name="q")
    ep, eq = encoder(p), encoder(q)
    score = L.Dense(1, name="score")(seq(ep))
    model = keras.Model([p, q], [score, eq], name="outer")
    return model, [_f32(rng, 6, 4), _f32(rng, 6, 4)]


def deep_nesting(keras, rng):
    L = keras.layers
    leaf = keras.Sequential([keras.Input((3,)), L.Dense(3, activation="softsign")], name="leaf")
    mid_in = keras.Input((3,))
    mid = keras.Model(mid_in, L.Dense(3)(leaf(mid_in)), name="middle")
    x = keras.Input((3,))
    y = L.Activation("relu")(mid(L.Dense(3, name="pre")(x)))
    model = keras.Model(x, y, name="deep")
    return model, _f32(rng, 5, 3)


def hard_sigmoid(keras, rng):
    # The same name is two different functions: clip(0.2x+0.5) in Keras 2, relu6(x+3)/6 in Keras 3.
    L = keras.layers
    x = keras.Input((4,))
    h = L.Dense(6, activation="hard_sigmoid", name="gate")(x)
    y = L.Activation("hard_sigmoid", name="squash")(L.Dense(3, name="proj")(h))
    model = keras.Model(x, y, name="hard")
    return model, _f32(rng, 8, 4, scale=4.0)


def python_lambda(keras, rng):
    L = keras.layers
    x = keras.Input((4,))
    y = L.Lambda(lambda t: t * 2.0 + 1.0, name="affine")(L.Dense(4, name="pre")(x))
    model = keras.Model(x, L.Dense(2, name="post")(y), name="with_lambda")
    return model, _f32(rng, 5, 4)


def small_cnn(keras, rng):
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            L.Conv2D(6, 3, activation="relu", name="conv_a"),
            L.BatchNormalization(name="bn_a"),
            L.MaxPooling2D(2),
            L.Conv2D(8, 3, padding="same", strides=2, name="conv_b"),
            L.BatchNormalization(name="bn_b"),
            L.Activation("relu"),
            L.GlobalAveragePooling2D(),
            L.Dropout(0.3),
            L.Dense(4, activation="softmax", name="classes"),
        ],
        name="small_cnn",
    )
    return model, _f32(rng, 3, 12, 12, 3)


def text_model(keras, rng):
    L = keras.layers
    tokens = keras.Input((7,), dtype="int32", name="tokens")
    h = L.Embedding(20, 6, mask_zero=True, name="embed")(tokens)
    h = L.Bidirectional(L.LSTM(5, return_sequences=True), name="bidi")(h)
    h = L.GRU(4, name="gru")(h)
    out = L.Dense(3, activation="softmax", name="out")(h)
    model = keras.Model(tokens, out, name="text")
    x = rng.integers(1, 20, size=(4, 7)).astype("int32")
    x[0, 4:] = 0  # padded sequences: the mask matters
    x[2, 2:] = 0
    return model, x


def merge_model(keras, rng):
    L = keras.layers
    a = keras.Input((5,), name="a")
    b = keras.Input((5,), name="b")
    s = L.Add(name="sum")([L.Dense(4, name="da")(a), L.Dense(4, name="db")(b)])
    c = L.Concatenate(name="cat")([s, L.Multiply(name="prod")([a, b])])
    model = keras.Model([a, b], L.Dense(2, name="head")(c), name="merge")
    return model, [_f32(rng, 6, 5), _f32(rng, 6, 5)]


def cudnn_rnn(keras, rng):
    from tf_keras.api._v1.keras import layers as v1

    model = keras.Sequential(
        [keras.Input((6, 3)), v1.CuDNNLSTM(4, return_sequences=True, name="cu_lstm"), v1.CuDNNGRU(3, name="cu_gru")],
        name="cudnn",
    )
    return model, _f32(rng, 2, 6, 3)


def cudnn_twin(keras, path, rng):
    """tf-keras converts CuDNN weights when an .h5 is loaded into the CPU layers (the only way
    to run it without a GPU): the reference outputs come from that twin."""
    L = keras.layers
    twin = keras.Sequential(
        [keras.Input((6, 3)), L.LSTM(4, return_sequences=True, recurrent_activation="sigmoid", name="cu_lstm"),
         L.GRU(3, reset_after=True, recurrent_activation="sigmoid", name="cu_gru")],
    )
    twin.load_weights(path)
    return twin


def mobilenet_v2(keras, rng):
    model = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(64, 64, 3), classes=10)
    return model, _f32(rng, 2, 64, 64, 3)


def keras2_only_layers(keras, rng):
    # Keras 3 cannot read these from a tf-keras file (groups on depthwise/separable/transposed
    # convolutions, LocallyConnected, ThresholdedReLU, time_major): klayers must.
    L = keras.layers
    x = keras.Input((8, 8, 3))
    h = L.SeparableConv2D(4, 3, padding="same", depth_multiplier=2, name="sep")(x)
    h = L.DepthwiseConv2D(3, name="dw")(h)
    h = L.Conv2DTranspose(3, 3, strides=2, name="deconv")(h)
    h = L.LocallyConnected2D(2, 3, strides=2, name="local")(h)
    h = L.Reshape((-1, 2))(h)
    h = L.LSTM(3, time_major=False, name="rnn")(h)
    y = L.ThresholdedReLU(0.1, name="thresh")(L.Dense(4, name="dense")(h))
    return keras.Model(x, y, name="k2_only"), _f32(rng, 2, 8, 8, 3)


def wrappers_model(keras, rng):
    L = keras.layers
    x = keras.Input((5, 4))
    h = L.TimeDistributed(L.Dense(3, activation="tanh"), name="td")(x)
    h = L.SimpleRNN(4, return_sequences=True, go_backwards=True, name="srnn")(h)
    y = L.Bidirectional(L.GRU(2), merge_mode="sum", name="bigru")(h)
    return keras.Model(x, y, name="wrappers"), _f32(rng, 3, 5, 4)


def tf_ops(keras, rng):
    # TensorFlow functions on symbolic tensors become TFOpLambda layers in tf-keras files.
    import tensorflow as tf

    L = keras.layers
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    h = L.Dense(4, name="d")(a)
    y = tf.nn.relu(h * 2.0 + b)
    y = tf.reduce_mean(y, axis=1, keepdims=True) / 3.0
    z = tf.concat([h, tf.math.sigmoid(b)], axis=-1)
    return keras.Model([a, b], [y, z], name="tf_ops"), [_f32(rng, 5, 4), _f32(rng, 5, 4)]


FIXTURES: List[Fixture] = [
    Fixture("sequential_mlp", sequential_mlp, compile=True, new_formats=True),
    Fixture("functional_multi_io_shared", functional_multi_io_shared, new_formats=True),
    Fixture("nested_models", nested_models, new_formats=True),
    Fixture("deep_nesting", deep_nesting),
    Fixture("hard_sigmoid", hard_sigmoid),
    Fixture("python_lambda", python_lambda, unsafe=True),
    Fixture("small_cnn", small_cnn, new_formats=True),
    Fixture("text_model", text_model, new_formats=True),
    Fixture("merge_model", merge_model),
    Fixture("cudnn_rnn", cudnn_rnn, keras3=False, reference=cudnn_twin),
    Fixture("keras2_only_layers", keras2_only_layers, keras3=False),
    Fixture("wrappers_model", wrappers_model, new_formats=True),
    Fixture("tf_ops", tf_ops, keras3=False),
    # about 1.6 MB of weights per file: one model file per dialect
    Fixture("mobilenet_v2", mobilenet_v2, formats=("model_h5",), formats3=("model_keras",)),
]


_FORMATS = {"model_h5": ".h5", "weights_h5": ".w.h5", "model_keras": ".keras", "weights_keras": ".weights.h5"}


def _randomize(model, name, rng_weights):
    values = []
    for w in model.weights:
        shape = tuple(int(d) for d in w.shape)
        if "variance" in w.name:
            values.append(rng_weights.uniform(0.5, 1.5, shape).astype("float32"))
        else:
            values.append((rng_weights.standard_normal(shape) * 0.5).astype("float32"))
    model.set_weights(values)


def _flat(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _compile_and_step(keras, model, inputs):
    outs = _flat(model.predict(inputs, verbose=0))
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(inputs, outs if len(outs) > 1 else outs[0])


def _record(rec, keras, dialect, fixtures=None):
    """Record ``fixtures`` (default ``FIXTURES``; another family may record model files of its own)."""
    for fx in FIXTURES if fixtures is None else fixtures:
        if not getattr(fx, dialect):
            continue
        keras.backend.clear_session()
        rng = np.random.default_rng(zlib.crc32(fx.name.encode()))
        model, inputs = fx.build(keras, rng)
        if fx.compile:
            _compile_and_step(keras, model, inputs)
        _randomize(model, fx.name, rng)
        if dialect == "keras2":
            wanted = ["model_h5", "weights_h5"] + (["model_keras", "weights_keras"] if fx.new_formats else [])
        else:
            wanted = ["model_keras", "weights_keras", "model_h5"]
        keep = fx.formats if dialect == "keras2" else fx.formats3
        if keep is not None:
            wanted = [k for k in wanted if k in keep]
        files = {}
        for key in wanted:
            files[key] = fx.name + _FORMATS[key]
            path = rec.path(files[key])
            if key.startswith("weights"):
                model.save_weights(path)
            elif key == "model_h5" and dialect == "keras2":
                model.save(path, save_format="h5")
            else:
                model.save(path)
        reference = model
        if fx.reference is not None:
            reference = fx.reference(keras, rec.path(files["model_h5"]), rng)
        outputs = _flat(reference.predict(inputs, verbose=0))
        arrays = {f"x{i}": x for i, x in enumerate(_flat(inputs))}
        arrays.update({f"y{i}": np.asarray(y) for i, y in enumerate(outputs)})
        classes = sorted({type(layer).__name__ for layer in _all_layers(model)})
        rec.case(
            fx.name,
            arrays=arrays,
            files=files,
            classes=classes,
            model_class=type(model).__name__,
            layer_names=[layer.name for layer in model.layers],
            n_weights=len(model.weights),
            weight_shapes=[[int(d) for d in w.shape] for w in model.weights],
            n_inputs=len(_flat(inputs)),
            n_outputs=len(outputs),
            compiled=fx.compile,
            unsafe=fx.unsafe,
        )


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def record(rec):
    import tf_keras as keras

    _record(rec, keras, "keras2")


def record_keras3(rec):
    import keras

    _record(rec, keras, "keras3")
