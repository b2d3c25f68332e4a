"""The keras.applications zoo, reduced: one small model per architecture family that both
tf-keras 2.21 and Keras 3.15 ship, built by the applications' own code, in both dialects (RegNet,
which Keras 3 does not ship, in tf-keras's only).

Where the base builder takes widths and depths (``EfficientNet``, ``EfficientNetV2``,
``MobileNetV3``, ``ResNet``, ``NASNet``, ``RegNet``) the model is that builder with small
coefficients, a trimmed ``blocks_args`` or a short ``stack_fn`` made of the module's own stack
functions. Where the constructor keeps a wide part fixed (MobileNet's and MobileNetV2's
1024/1280-channel tails, DenseNet's growth rate of 32, InceptionResNetV2's 1536 channels) the model
is the module's stem and block functions (``_depthwise_conv_block``, ``_inverted_res_block``,
``conv_block`` / ``transition_block``, ``inception_resnet_block``) chained briefly, with the
constructor's own layer names. Xception, InceptionV3 and VGG16/19 define their blocks inline with
fixed widths (14-22 million weights without the top): they are left to ``conformance/record_zoo_full.py``, as are the full-size models of every family
(ConvNeXt's reduced model is the ``applications`` family's).

Each case: the model, inputs of batch 2 at 32x32 (the smallest most of them take) in the range
the model expects (0..255 where the model rescales for itself, [-1, 1] for the "tf" preprocessing
mode, ImageNet-mean-subtracted BGR for ResNet's "caffe" mode), weights randomized (crc32 seeded):
kernels N(0, 1/fan_in), biases and BatchNorm offsets small, BatchNorm moving statistics measured
on a separate calibration batch (so activations keep their scale through the depth) then perturbed,
variances positive. Keras's predictions ``y0`` are computed before saving, checked to depend on the
input (spread across the batch) and checked again on the file Keras reads back. klayers is never
imported here.
"""

from __future__ import annotations

import importlib
import zlib

import numpy as np

SIZE = 32
N_CLASSES = 5


def _apps(dialect, module):
    prefix = "keras.src.applications." if dialect == "keras3" else "tf_keras.src.applications."
    m = importlib.import_module(prefix + module)
    if getattr(m, "layers", 0) is None:  # tf-keras: set by the constructor, as it does
        from tf_keras.src.layers import VersionAwareLayers

        m.layers = VersionAwareLayers()
    return m


def _name(dialect, name):
    """The model-name keyword of the base builders: Keras 3's ``name``, tf-keras's ``model_name``."""
    return {"name": name} if dialect == "keras3" else {"model_name": name}


def _top(**kw):
    common = {"weights": None, "input_shape": (SIZE, SIZE, 3), "include_top": True, "classes": N_CLASSES,
              "classifier_activation": None}
    common.update(kw)
    return common


# -- inputs ------------------------------------------------------------------------------------------
def _pixels(rng, n):
    return rng.uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")


def _tf_mode(rng, n):
    return rng.uniform(-1, 1, (n, SIZE, SIZE, 3)).astype("float32")


def _caffe_mode(rng, n):
    return (rng.uniform(0, 255, (n, SIZE, SIZE, 3)) - np.array([103.939, 116.779, 123.68])).astype("float32")


# -- the models --------------------------------------------------------------------------------------
def mobilenet(keras, dialect):
    m = _apps(dialect, "mobilenet")
    L = keras.layers
    x = keras.Input((SIZE, SIZE, 3))
    h = m._conv_block(x, 32, 0.25, strides=(2, 2))
    h = m._depthwise_conv_block(h, 64, 0.25, 1, block_id=1)
    h = m._depthwise_conv_block(h, 128, 0.25, 1, strides=(2, 2), block_id=2)
    h = m._depthwise_conv_block(h, 128, 0.25, 2, block_id=3)
    h = L.GlobalAveragePooling2D(keepdims=True)(h)
    h = L.Dropout(1e-3, name="dropout")(h)
    h = L.Conv2D(N_CLASSES, (1, 1), padding="same", name="conv_preds")(h)
    h = L.Reshape((N_CLASSES,), name="reshape_2")(h)
    return keras.Model(x, L.Activation("softmax", name="predictions")(h), name="mobilenet_mini"), _tf_mode


def mobilenet_v2(keras, dialect):
    m = _apps(dialect, "mobilenet_v2")
    L = keras.layers
    alpha = 0.35
    x = keras.Input((SIZE, SIZE, 3))
    h = L.Conv2D(m._make_divisible(32 * alpha, 8), 3, strides=(2, 2), padding="same", use_bias=False,
                 name="Conv1")(x)
    h = L.BatchNormalization(epsilon=1e-3, momentum=0.999, name="bn_Conv1")(h)
    h = L.ReLU(6.0, name="Conv1_relu")(h)
    h = m._inverted_res_block(h, filters=16, alpha=alpha, stride=1, expansion=1, block_id=0)
    h = m._inverted_res_block(h, filters=24, alpha=alpha, stride=2, expansion=6, block_id=1)
    h = m._inverted_res_block(h, filters=24, alpha=alpha, stride=1, expansion=6, block_id=2)
    h = L.Conv2D(32, kernel_size=1, use_bias=False, name="Conv_1")(h)
    h = L.BatchNormalization(epsilon=1e-3, momentum=0.999, name="Conv_1_bn")(h)
    h = L.ReLU(6.0, name="out_relu")(h)
    h = L.GlobalAveragePooling2D()(h)
    return keras.Model(x, L.Dense(N_CLASSES, name="predictions")(h), name="mobilenetv2_mini"), _tf_mode


def mobilenet_v3(keras, dialect):
    m = _apps(dialect, "mobilenet_v3")
    alpha = 0.5

    def depth(d):
        return m._depth(d * alpha)

    def stack_fn(x, kernel, activation, se_ratio):
        x = m._inverted_res_block(x, 1, depth(16), 3, 1, None, m.relu, 0)
        x = m._inverted_res_block(x, 4, depth(24), 3, 2, None, m.relu, 1)
        x = m._inverted_res_block(x, 3, depth(24), 3, 1, None, m.relu, 2)
        x = m._inverted_res_block(x, 3, depth(40), kernel, 2, se_ratio, activation, 3)
        return m._inverted_res_block(x, 3, depth(40), kernel, 1, se_ratio, activation, 4)

    kw = {"name": "mobilenetv3_mini"} if dialect == "keras3" else {}
    model = m.MobileNetV3(stack_fn, 64, alpha=alpha, model_type="large", **_top(**kw))
    return model, _pixels


def efficientnet(keras, dialect):
    m = _apps(dialect, "efficientnet")
    blocks = [
        {"kernel_size": 3, "repeats": 1, "filters_in": 32, "filters_out": 16, "expand_ratio": 1, "id_skip": True,
         "strides": 1, "se_ratio": 0.25},
        {"kernel_size": 3, "repeats": 2, "filters_in": 16, "filters_out": 24, "expand_ratio": 6, "id_skip": True,
         "strides": 2, "se_ratio": 0.25},
        {"kernel_size": 5, "repeats": 1, "filters_in": 24, "filters_out": 40, "expand_ratio": 6, "id_skip": True,
         "strides": 2, "se_ratio": 0.25},
    ]
    model = m.EfficientNet(0.25, 1.0, SIZE, blocks_args=blocks, **_name(dialect, "efficientnet_mini"), **_top())
    return model, _pixels


def efficientnet_v2(keras, dialect):
    m = _apps(dialect, "efficientnet_v2")
    blocks = [
        {"kernel_size": 3, "num_repeat": 1, "input_filters": 32, "output_filters": 16, "expand_ratio": 1,
         "se_ratio": 0.0, "strides": 1, "conv_type": 1},
        {"kernel_size": 3, "num_repeat": 2, "input_filters": 16, "output_filters": 32, "expand_ratio": 4,
         "se_ratio": 0.0, "strides": 2, "conv_type": 1},
        {"kernel_size": 3, "num_repeat": 2, "input_filters": 32, "output_filters": 48, "expand_ratio": 4,
         "se_ratio": 0.25, "strides": 2, "conv_type": 0},
    ]
    model = m.EfficientNetV2(0.25, 1.0, SIZE, blocks_args=blocks, **_name(dialect, "efficientnetv2_mini"), **_top())
    return model, _pixels


def _resnet_stacks(dialect):
    m = _apps(dialect, "resnet")
    if dialect == "keras3":
        return m, m.stack_residual_blocks_v1, m.stack_residual_blocks_v2
    return m, m.stack1, m.stack2


def resnet(keras, dialect):
    m, stack_v1, _ = _resnet_stacks(dialect)

    def stack_fn(x):
        x = stack_v1(x, 8, 2, stride1=1, name="conv2")
        return stack_v1(x, 16, 2, name="conv3")

    return m.ResNet(stack_fn, False, True, **_name(dialect, "resnet_mini"), **_top()), _caffe_mode


def resnet_v2(keras, dialect):
    m, _, stack_v2 = _resnet_stacks(dialect)

    def stack_fn(x):
        x = stack_v2(x, 8, 2, name="conv2")
        return stack_v2(x, 16, 2, stride1=1, name="conv3")

    return m.ResNet(stack_fn, True, True, **_name(dialect, "resnetv2_mini"), **_top()), _tf_mode


def densenet(keras, dialect):
    m = _apps(dialect, "densenet")
    L = keras.layers
    s = "_" if dialect == "keras3" else "/"  # tf-keras names the stem's layers conv1/conv ...
    x = keras.Input((SIZE, SIZE, 3))
    h = L.ZeroPadding2D(padding=((3, 3), (3, 3)))(x)
    h = L.Conv2D(16, 7, strides=2, use_bias=False, name=f"conv1{s}conv")(h)
    h = L.BatchNormalization(epsilon=1.001e-5, name=f"conv1{s}bn")(h)
    h = L.Activation("relu", name=f"conv1{s}relu")(h)
    h = L.ZeroPadding2D(padding=((1, 1), (1, 1)))(h)
    h = L.MaxPooling2D(3, strides=2, name="pool1")(h)
    h = m.conv_block(h, 8, name="conv2_block1")
    h = m.conv_block(h, 8, name="conv2_block2")
    h = m.transition_block(h, 0.5, name="pool2")
    h = m.conv_block(h, 8, name="conv3_block1")
    h = L.BatchNormalization(epsilon=1.001e-5, name="bn")(h)
    h = L.Activation("relu", name="relu")(h)
    h = L.GlobalAveragePooling2D(name="avg_pool")(h)
    return keras.Model(x, L.Dense(N_CLASSES, name="predictions")(h), name="densenet_mini"), _tf_mode


def nasnet(keras, dialect):
    m = _apps(dialect, "nasnet")
    kw = {"name": "nasnet_mini"} if dialect == "keras3" else {}
    return m.NASNet(penultimate_filters=96, num_blocks=1, stem_block_filters=8, skip_reduction=False,
                    filter_multiplier=2, default_size=SIZE, **_top(**kw)), _tf_mode


def inception_resnet_v2(keras, dialect):
    m = _apps(dialect, "inception_resnet_v2")
    L = keras.layers
    x = keras.Input((SIZE, SIZE, 3))
    h = m.conv2d_bn(x, 32, 3, strides=2, padding="valid")
    h = m.inception_resnet_block(h, scale=0.17, block_type="block35", block_idx=1)
    h = m.conv2d_bn(h, 32, 1, name="conv_7b")
    h = L.GlobalAveragePooling2D(name="avg_pool")(h)
    return keras.Model(x, L.Dense(N_CLASSES, name="predictions")(h), name="inception_resnet_v2_mini"), _tf_mode


def regnet(keras, dialect):
    m = _apps(dialect, "regnet")
    return m.RegNet([1, 1, 1, 1], [8, 16, 16, 32], 8, "Y", SIZE, **_name(dialect, "regnety_mini"), **_top()), _pixels


CASES = [
    ("densenet", densenet, ("keras2", "keras3")),
    ("efficientnet", efficientnet, ("keras2", "keras3")),
    ("efficientnet_v2", efficientnet_v2, ("keras2", "keras3")),
    ("inception_resnet_v2", inception_resnet_v2, ("keras2", "keras3")),
    ("mobilenet", mobilenet, ("keras2", "keras3")),
    ("mobilenet_v2", mobilenet_v2, ("keras2", "keras3")),
    ("mobilenet_v3", mobilenet_v3, ("keras2", "keras3")),
    ("nasnet", nasnet, ("keras2", "keras3")),
    ("regnet", regnet, ("keras2",)),  # Keras 3 ships no RegNet
    ("resnet", resnet, ("keras2", "keras3")),
    ("resnet_v2", resnet_v2, ("keras2", "keras3")),
]


# -- weights -----------------------------------------------------------------------------------------
def _short(w):
    return (getattr(w, "path", None) or w.name).split("/")[-1].split(":")[0]


def _fan_in(name, shape):
    if name == "depthwise_kernel":
        return int(np.prod(shape[:-2]))
    return int(np.prod(shape[:-1]))


def _draw(layer, rng):
    """Random values for a layer's weights, by weight name; BatchNorm's moving statistics are
    left to the calibration."""
    out = []
    for w in layer.weights:
        name, shape = _short(w), tuple(int(d) for d in w.shape)
        value = np.asarray(w.numpy())
        if value.dtype.kind != "f":
            out.append(value)
        elif name in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            out.append(rng.standard_normal(shape) * (1.5 / np.sqrt(_fan_in(name, shape))))
        elif name in ("bias", "beta"):
            out.append(rng.standard_normal(shape) * 0.2)
        elif name == "gamma":
            out.append(rng.uniform(0.5, 1.5, shape))
        elif name == "mean":  # Normalization after Rescaling(1/255)
            out.append(rng.uniform(0.35, 0.55, shape))
        elif name == "variance":
            out.append(rng.uniform(0.04, 0.09, shape))
        elif name in ("moving_mean", "moving_variance"):
            out.append(value)
        else:  # the applications' own weights (ConvNeXt's LayerScale ...): Keras's value, perturbed
            out.append(value + rng.standard_normal(shape) * 0.2)
    layer.set_weights([np.asarray(v, dtype=np.asarray(w.numpy()).dtype) for v, w in zip(out, layer.weights)])
    if hasattr(layer, "finalize_state") and type(layer).__name__ == "Normalization":
        layer.finalize_state()  # Keras 3 reads mean and variance from its state variables only then


def randomize(model, rng, calibration):
    """Random weights for ``model`` (see the module's docstring), BatchNorm's moving statistics
    measured on ``calibration`` (one training-mode call at momentum 0) then perturbed. Also
    used by ``conformance/record_zoo_full.py``."""
    bns = []
    for layer in model.layers:
        if layer.weights:
            _draw(layer, rng)
        if type(layer).__name__ == "BatchNormalization":
            bns.append((layer, layer.momentum))
            layer.momentum = 0.0
    model(calibration, training=True)  # moving statistics := this batch's (momentum 0)
    for layer, momentum in bns:
        layer.momentum = momentum
        mean, var = layer.moving_mean.numpy(), layer.moving_variance.numpy()
        var = np.maximum(var, 0.05 * float(np.median(var)) + 1e-3) * rng.uniform(0.8, 1.25, var.shape)
        mean = mean + rng.standard_normal(mean.shape) * 0.05 * np.sqrt(var)
        layer.moving_mean.assign(mean.astype("float32"))
        layer.moving_variance.assign(var.astype("float32"))


def _record(rec, keras, dialect):
    for name, build, dialects in CASES:
        if dialect not in dialects:
            continue
        keras.backend.clear_session()
        seed = zlib.crc32(name.encode())
        keras.utils.set_random_seed(seed % 2**31)
        rng = np.random.default_rng(seed)
        model, inputs = build(keras, dialect)
        randomize(model, rng, inputs(rng, 8))
        x = inputs(rng, 2)
        y = np.asarray(model.predict(x, verbose=0))
        spread = float(np.max(np.std(y, axis=0))) / max(float(np.max(np.abs(y))), 1e-12)
        if not np.all(np.isfinite(y)) or spread < 1e-2:
            raise ValueError(f"{name}: outputs do not depend on the input (spread {spread:.3g})")
        filename = name + (".keras" if dialect == "keras3" else ".h5")
        path = rec.path(filename)
        if dialect == "keras2":
            model.save(path, save_format="h5")
        else:
            model.save(path)
        again = np.asarray(keras.models.load_model(path, compile=False).predict(x, verbose=0))
        np.testing.assert_allclose(again, y, rtol=0, atol=1e-5 * max(1.0, float(np.max(np.abs(y)))),
                                   err_msg=f"{name}: Keras reads its file back to other outputs")
        classes = sorted({type(layer).__name__ for layer in model.layers})
        rec.case(name, arrays={"x0": x, "y0": y}, file=filename, classes=classes, n_inputs=1, n_outputs=1,
                 n_weights=len(model.weights), count_params=int(model.count_params()), spread=spread)


def record(rec):
    import tf_keras as keras

    _record(rec, keras, "keras2")


def record_keras3(rec):
    import keras

    _record(rec, keras, "keras3")
