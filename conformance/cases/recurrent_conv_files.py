"""Model files holding ConvLSTM1D/2D/3D, saved by tf-keras 2.21 and Keras 3.15, and the naming rule
behind their weight paths.

Keras 3 addresses a layer's weights in ``.keras`` / ``.weights.h5`` files by the snake-cased class
name (``layers/conv_lstm2d/cell/vars/0``, ``layers/conv_lstm2d_1/...``); klayers must compute the
same path. The models (``MODELS``, recorded as the files family records its fixtures) put ConvLSTM
layers at the top level (twice, for the ``_1`` suffix), inside ``Bidirectional`` and inside
``TimeDistributed``. The ``snake_case`` case records the running Keras's own ``to_snake_case`` on
every public layer class name it has (and a few edge cases): tf-keras's
``generic_utils.to_snake_case`` (layer auto-names, tf-keras's ``.keras`` writer) and Keras 3's
``keras.src.utils.naming.to_snake_case`` (object paths). klayers is never imported here.
"""

from __future__ import annotations

import inspect

import files

#: Edge cases beyond the layer classes: a leading underscore, digits after capitals.
EXTRA_NAMES = ["_Private", "HTTPServer2Go", "X2Y", "ABC", "Conv3DLSTM", "MyLayer_v2", "A1B2C3"]


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype("float32")


def convlstm2d_stack(keras, rng):
    L = keras.layers
    x = keras.Input((3, 5, 5, 2))
    h = L.ConvLSTM2D(3, 3, padding="same", return_sequences=True)(x)
    h = L.ConvLSTM2D(2, 2, padding="same", return_sequences=True, recurrent_activation="sigmoid")(h)
    h = L.Bidirectional(L.ConvLSTM2D(2, 3), merge_mode="concat")(h)
    y = L.Dense(3)(L.Flatten()(h))
    return keras.Model(x, y, name="convlstm2d_stack"), _f32(rng, 2, 3, 5, 5, 2)


def convlstm1d_3d(keras, rng):
    L = keras.layers
    a = keras.Input((4, 7, 2), name="seq1d")
    b = keras.Input((2, 3, 4, 4, 1), name="seq3d")
    h = L.ConvLSTM1D(3, 2, return_sequences=True, recurrent_activation="sigmoid")(a)
    h = L.Bidirectional(L.ConvLSTM1D(2, 3, padding="same", recurrent_activation="sigmoid"), merge_mode="sum")(h)
    g = L.ConvLSTM3D(2, 2, padding="same", recurrent_activation="sigmoid")(b)
    c = L.Concatenate()([L.Flatten()(h), L.Flatten()(g)])
    return keras.Model([a, b], L.Dense(4)(c), name="convlstm1d_3d"), [_f32(rng, 2, 4, 7, 2), _f32(rng, 2, 2, 3, 4, 4, 1)]


def convlstm_time_distributed(keras, rng):
    L = keras.layers
    x = keras.Input((2, 3, 6, 2))  # (batch, outer steps, inner steps, width, channels)
    h = L.TimeDistributed(L.ConvLSTM1D(2, 3, recurrent_activation="sigmoid"))(x)
    h = L.ConvLSTM1D(2, 2, recurrent_activation="sigmoid")(h)
    return keras.Model(x, L.Dense(2)(L.Flatten()(h)), name="convlstm_td"), _f32(rng, 2, 2, 3, 6, 2)


MODELS = [
    files.Fixture("convlstm2d_stack", convlstm2d_stack, new_formats=True),
    files.Fixture("convlstm1d_3d", convlstm1d_3d, new_formats=True),
    files.Fixture("convlstm_time_distributed", convlstm_time_distributed, new_formats=True),
]


def _layer_class_names(module):
    return sorted({c.__name__ for _, c in inspect.getmembers(module, inspect.isclass) if isinstance(c.__name__, str)})


def _snake_case(rec, to_snake_case, layers_module, rule):
    names = _layer_class_names(layers_module) + EXTRA_NAMES
    rec.case("snake_case", rule=rule, names=names, snake=[to_snake_case(n) for n in names])


def record(rec):
    import tf_keras as keras
    from tf_keras.src.utils.generic_utils import to_snake_case

    keras.utils.set_random_seed(1515)
    _snake_case(rec, to_snake_case, keras.layers, "tf_keras.src.utils.generic_utils.to_snake_case")
    files._record(rec, keras, "keras2", MODELS)


def record_keras3(rec):
    import keras
    from keras.src.utils.naming import to_snake_case

    keras.utils.set_random_seed(1515)
    _snake_case(rec, to_snake_case, keras.layers, "keras.src.utils.naming.to_snake_case")
    files._record(rec, keras, "keras3", MODELS)

