"""Inference plan and BatchNormalization / ReLU folding (klayers.inference): fused runs give
the unfused layers' results up to float rounding, pick up weight changes, and leave training,
masks, weights and configs alone."""

from __future__ import annotations

import numpy as np
import pytest

import klayers
from klayers import inference
from klayers import layers as L


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        shape = w.shape
        if "variance" in w.name or "gamma" in w.name:
            values.append(rng.uniform(0.5, 1.5, shape))
        else:
            values.append(rng.normal(0.0, 0.5, shape))
    model.set_weights(values)


def _n_fused(model):
    """Folded chains (lone convolutions run on packed kernels are steps of their own)."""
    return sum(1 for s in model._inference_plan.lowered if isinstance(s, inference.FusedStep) and s.affine is not None)


def _planned_and_layered(model, x):
    """``(planned outputs, step class names of the plan, layer-by-layer outputs)`` for ``x``."""
    got = model.predict(x, verbose=0)
    kinds = [type(s).__name__ for s in model._inference_plan.lowered]
    with inference.disabled():
        want = model.predict(x, verbose=0)
    return got, kinds, want


def _every_pattern(dtype):
    x_in = klayers.Input((10, 10, 3), dtype=dtype)
    h = L.Conv2D(6, 3, padding="same", use_bias=False, dtype=dtype)(x_in)
    h = L.BatchNormalization(dtype=dtype)(h)
    h = L.ReLU(6.0, dtype=dtype)(h)                                    # conv + BN + relu6
    h = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, dtype=dtype)(h)
    h = L.BatchNormalization(epsilon=1e-3, dtype=dtype)(h)
    h = L.ReLU(dtype=dtype)(h)                                         # depthwise + BN + relu
    h = L.Conv2D(5, 1, dtype=dtype)(h)
    h = L.BatchNormalization(center=False, scale=False, dtype=dtype)(h)  # conv + BN, no activation
    h = L.Activation("relu", dtype=dtype)(h)                           # ... + Activation(relu)
    h = L.Reshape((25, 5), dtype=dtype)(h)
    h = L.Conv1D(4, 3, dtype=dtype)(h)
    h = L.BatchNormalization(dtype=dtype)(h)                           # conv1d + BN
    h = L.Flatten(dtype=dtype)(h)
    h = L.Dense(7, dtype=dtype)(h)
    h = L.BatchNormalization(dtype=dtype)(h)
    h = L.Activation("relu", dtype=dtype)(h)                           # dense + BN + relu
    out = L.Dense(3, dtype=dtype)(h)
    model = klayers.Model(x_in, out)
    _randomize(model)
    return model


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
def test_fused_matches_unfused(dtype, tol):
    model = _every_pattern(dtype)
    x = np.random.default_rng(1).standard_normal((4, 10, 10, 3)).astype(dtype)
    fused = model.predict(x, verbose=0)
    assert _n_fused(model) == 5
    with inference.disabled():
        plain = model.predict(x, verbose=0)
    assert fused.dtype == plain.dtype == np.dtype(dtype)
    np.testing.assert_allclose(fused, plain, rtol=tol, atol=tol * np.abs(plain).max())
    np.testing.assert_allclose(model(x), plain, rtol=tol, atol=tol * np.abs(plain).max())


def test_weights_changed_after_predict_are_used():
    model = _every_pattern("float64")
    x = np.random.default_rng(2).standard_normal((2, 10, 10, 3))
    before = model.predict(x, verbose=0)
    bn = next(layer for layer in model.layers if isinstance(layer, L.BatchNormalization))
    rng = np.random.default_rng(3)
    bn.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in bn.get_weights()])
    conv = next(layer for layer in model.layers if isinstance(layer, L.DepthwiseConv2D))
    conv.depthwise_kernel.assign(conv.depthwise_kernel.value * -2.0)
    after = model.predict(x, verbose=0)
    with inference.disabled():
        plain = model.predict(x, verbose=0)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, plain, rtol=1e-12, atol=1e-12 * np.abs(plain).max())


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
def test_convolutions_run_on_packed_kernels_that_follow_weight_changes(dtype, tol):
    """The Conv1D and Conv2D layers (im2col and 1x1 paths: few output pixels, where the
    packed GEMM beats the direct kernel; the depthwise one has no packed form) multiply
    packed kernels: the plan packs each folded kernel once, gives the unfused result, and
    packs again after a weight it was folded from is assigned."""
    model = _every_pattern(dtype)
    rng = np.random.default_rng(5)
    for batch in (1, 2):
        x = rng.standard_normal((batch, 10, 10, 3)).astype(dtype)
        got = model.predict(x, verbose=0)
        with inference.disabled():
            plain = model.predict(x, verbose=0)
        np.testing.assert_allclose(got, plain, rtol=tol, atol=tol * np.abs(plain).max())
    fused_steps = [s for s in model._inference_plan.lowered if isinstance(s, inference.FusedStep)]
    packed = {s.layer.name: s._packed for s in fused_steps if s._packed is not None and hasattr(s.layer, "kernel_size")}
    assert sorted(model.get_layer(n).kernel_size for n in packed) == [(1, 1), (3,), (3, 3)]
    conv = next(model.get_layer(n) for n in packed if model.get_layer(n).kernel_size == (1, 1))
    conv.kernel.assign(conv.kernel.value * -1.5)
    x = rng.standard_normal((1, 10, 10, 3)).astype(dtype)
    got = model.predict(x, verbose=0)
    with inference.disabled():
        plain = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, plain, rtol=tol, atol=tol * np.abs(plain).max())
    step = next(s for s in fused_steps if s.layer is conv)
    assert step._packed is not packed[conv.name] and step._packed[0] is step.arrays()[0]


def test_weights_and_config_untouched():
    model = _every_pattern("float32")
    weights, config = model.get_weights(), model.get_config()
    model.predict(np.ones((1, 10, 10, 3), "float32"), verbose=0)
    assert model.get_config() == config
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def test_training_path_is_unfused():
    model = _every_pattern("float64")
    x = np.random.default_rng(4).standard_normal((3, 10, 10, 3))
    a = model(x, training=True)
    model2 = _every_pattern("float64")  # same seed, same weights
    with inference.disabled():
        b = model2(x, training=True)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    for w1, w2 in zip(model.get_weights(), model2.get_weights()):  # moving statistics updated alike
        np.testing.assert_allclose(w1, w2, rtol=1e-12)


def test_shared_intermediate_is_not_folded():
    x_in = klayers.Input((6, 6, 2))
    c = L.Conv2D(3, 3)(x_in)
    b = L.BatchNormalization()(c)
    out = L.Add()([L.ReLU()(b), L.Conv2D(3, 1)(c)])  # c has two consumers: no fold
    model = klayers.Model(x_in, [out, b])             # b is an output too
    _randomize(model, 5)
    x = np.random.default_rng(6).standard_normal((2, 6, 6, 2)).astype("float32")
    fused = model.predict(x, verbose=0)
    assert _n_fused(model) == 0
    lone = [s for s in model._inference_plan.lowered if isinstance(s, inference.FusedStep)]
    residual = [s for s in model._inference_plan.lowered if isinstance(s, inference.ResidualStep)]
    # each Conv2D alone, on its packed kernel; the 1x1 one with the Add after it
    assert [len(s.steps) for s in lone] == [1] and [len(s.fused.steps) for s in residual] == [1]
    with inference.disabled():
        plain = model.predict(x, verbose=0)
    for p, q in zip(fused, plain):
        np.testing.assert_allclose(p, q, rtol=2e-5, atol=2e-5 * np.abs(q).max())


def test_sequential_and_graph_change():
    model = klayers.Sequential([L.Input((8,)), L.Dense(6), L.BatchNormalization(), L.ReLU()])
    _randomize(model, 7)
    x = np.random.default_rng(8).standard_normal((5, 8)).astype("float32")
    y = model.predict(x, verbose=0)
    assert _n_fused(model) == 1
    model.add(L.Dense(2))  # a new graph: a new plan
    _randomize(model, 7)
    y2 = model.predict(x, verbose=0)
    assert y2.shape == (5, 2) and y.shape == (5, 6)
    with inference.disabled():
        np.testing.assert_allclose(model.predict(x, verbose=0), y2, rtol=2e-5, atol=1e-5)


def test_masks_pass_through_plan():
    tokens = klayers.Input((5,), dtype="int32")
    h = L.Embedding(10, 4, mask_zero=True)(tokens)
    h = L.Dense(4)(h)
    h = L.BatchNormalization()(h)
    out = L.LSTM(3)(h)
    model = klayers.Model(tokens, out)
    _randomize(model, 9)
    x = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], "int32")
    fused = model.predict(x, verbose=0)
    with inference.disabled():
        plain = model.predict(x, verbose=0)
    np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
def test_lone_convolutions_run_packed_with_their_activation(dtype, tol):
    """Convolutions with no BatchNormalization after them run alone with their own activation
    (epilogue, elementwise kernel or a callable): on packed kernels (channels_last, ungrouped),
    grouped and depthwise ones on their prepared calls; a weight assigned after a call is used
    by the next one."""
    x_in = klayers.Input((7, 7, 4), dtype=dtype)
    h = L.Conv2D(8, 3, padding="same", activation="sigmoid", dtype=dtype)(x_in)
    h = L.Conv2D(8, 1, activation="relu", dtype=dtype)(h)
    h = L.Conv2D(8, 3, groups=2, dtype=dtype)(h)
    h = L.DepthwiseConv2D(3, padding="same", dtype=dtype)(h)
    out = L.Conv2D(3, 1, activation=lambda v: v * 2.0, dtype=dtype)(h)
    model = klayers.Model(x_in, out)
    _randomize(model, 11)
    x = np.random.default_rng(12).standard_normal((2, 7, 7, 4)).astype(dtype)
    for _ in range(2):
        got = model.predict(x, verbose=0)
        with inference.disabled():
            plain = model.predict(x, verbose=0)
        np.testing.assert_allclose(got, plain, rtol=tol, atol=tol * np.abs(plain).max())
        lone = [s.layer.name for s in model._inference_plan.lowered if isinstance(s, inference.FusedStep)]
        assert lone == [model.layers[i].name for i in (1, 2, 3, 4, 5)]
        model.layers[2].kernel.assign(model.layers[2].kernel.value * -1.0)


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
def test_zero_padding_folds_into_the_valid_convolution_after_it(dtype, tol):
    """ZeroPadding before a "valid" convolution (a depthwise + BN + ReLU chain, a lone Conv2D,
    a channels_first one, a Conv1D) becomes the convolution's explicit padding; before a
    "same" convolution, or with a second consumer, it stays a layer of its own."""
    x_in = klayers.Input((9, 8, 6), dtype=dtype)
    h = L.ZeroPadding2D(((0, 1), (1, 2)), dtype=dtype)(x_in)
    h = L.DepthwiseConv2D(3, strides=2, dtype=dtype)(h)
    h = L.BatchNormalization(dtype=dtype)(h)
    h = L.ReLU(dtype=dtype)(h)
    h = L.ZeroPadding2D(1, dtype=dtype)(h)
    h = L.Conv2D(5, 3, strides=2, activation="swish", dtype=dtype)(h)
    p = L.ZeroPadding2D(1, dtype=dtype)(h)
    same = L.Conv2D(4, 3, padding="same", dtype=dtype)(p)              # "same": no fold
    shared = L.ZeroPadding2D(1, dtype=dtype)(h)
    a = L.Conv2D(4, 3, dtype=dtype)(shared)                              # two consumers: no fold
    b = L.Conv2D(4, 3, dtype=dtype)(shared)
    cf = L.Permute((3, 1, 2), dtype=dtype)(h)
    cf = L.ZeroPadding2D((1, 0), data_format="channels_first", dtype=dtype)(cf)
    cf = L.Conv2D(3, 2, data_format="channels_first", dtype=dtype)(cf)
    seq = L.Reshape((-1, 5), dtype=dtype)(h)
    seq = L.ZeroPadding1D((2, 1), dtype=dtype)(seq)
    seq = L.Conv1D(3, 3, strides=2, dtype=dtype)(seq)
    model = klayers.Model(x_in, [same, a, b, cf, seq])
    _randomize(model, 13)
    x = np.random.default_rng(14).standard_normal((2, 9, 8, 6)).astype(dtype)
    got = model.predict(x, verbose=0)
    with inference.disabled():
        plain = model.predict(x, verbose=0)
    for g, w in zip(got, plain):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * np.abs(w).max())
    padded = [[type(c.layer).__name__ for c in s.steps] for s in model._inference_plan.lowered
              if isinstance(s, inference.FusedStep) and s.pad is not None]
    assert sorted(padded) == [["ZeroPadding1D", "Conv1D"], ["ZeroPadding2D", "Conv2D"], ["ZeroPadding2D", "Conv2D"],
                              ["ZeroPadding2D", "DepthwiseConv2D", "BatchNormalization", "ReLU"]]
    kept = [type(s.layer).__name__ for s in model._inference_plan.lowered if not isinstance(s, inference.FusedStep)]
    assert kept.count("ZeroPadding2D") == 2


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
def test_merges_run_as_one_step_with_the_activation_after_them(dtype, tol):
    """Add + ReLU (residual), Multiply of a squeeze-and-excitation scale + Activation(swish),
    a three-input Maximum that is a model output (no activation folded), a Subtract whose
    result has two consumers; masks arriving make the steps run layer by layer."""
    x_in = klayers.Input((6, 5, 4), dtype=dtype)
    c = L.Conv2D(4, 3, padding="same", dtype=dtype)(x_in)
    r = L.Add(dtype=dtype)([c, x_in])
    r = L.ReLU(dtype=dtype)(r)
    se = L.GlobalAveragePooling2D(keepdims=True, dtype=dtype)(r)
    se = L.Conv2D(4, 1, activation="sigmoid", dtype=dtype)(se)
    m = L.Multiply(dtype=dtype)([r, se])
    m = L.Activation("swish", dtype=dtype)(m)
    mx = L.Maximum(dtype=dtype)([m, r, c])
    d = L.Subtract(dtype=dtype)([m, c])
    out2 = L.Add(dtype=dtype)([d, L.ReLU(dtype=dtype)(d)])
    model = klayers.Model(x_in, [mx, out2])
    _randomize(model, 15)
    x = np.random.default_rng(16).standard_normal((3, 6, 5, 4)).astype(dtype)
    got = model.predict(x, verbose=0)
    with inference.disabled():
        plain = model.predict(x, verbose=0)
    for g, w in zip(got, plain):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * np.abs(w).max())
    merged = sorted([type(c.layer).__name__ for c in s.steps] for s in model._inference_plan.lowered
                    if isinstance(s, inference.MergeStep))
    assert merged == [["Add"], ["Add", "ReLU"], ["Maximum"], ["Multiply", "Activation"], ["Subtract"]]


def test_masked_inputs_run_merges_layer_by_layer():
    tokens = klayers.Input((5,), dtype="int32")
    e = L.Embedding(10, 4, mask_zero=True)(tokens)
    a = L.Dense(4)(e)
    out = L.LSTM(3)(L.Activation("tanh")(L.Add()([a, e])))
    model = klayers.Model(tokens, out)
    _randomize(model, 17)
    x = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], "int32")
    got = model.predict(x, verbose=0)
    with inference.disabled():
        plain = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-6)
    # the Add (with the Dense before it) is planned, and runs layer by layer under the mask
    assert any(isinstance(s, (inference.MergeStep, inference.ResidualStep)) for s in model._inference_plan.lowered)


def _tf_op(function, x, y):
    from klayers.layers.tf_op_layer import TFOpLambda

    return TFOpLambda(function)(x, y=y, name=None)


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-6), ("float64", 1e-12)])
def test_tf_keras_hard_sigmoid_and_hard_swish_run_as_one_map(dtype, tol):
    """tf-keras's MobileNetV3 writes hard sigmoid as ``ReLU(6)(x + 3) * (1 / 6)`` (TFOpLambda
    nodes) and hard swish as ``Multiply([x, hard_sigmoid(x)])``: each runs as one map of the
    activation code, taken into the convolution before it as its activation when nothing else
    reads the convolution's output; a pattern whose pieces have other consumers, another
    constant or another order of operands in the Multiply's place stays layer by layer."""
    x_in = klayers.Input((5, 4, 8), dtype=dtype)
    x = L.Conv2D(8, 1, dtype=dtype)(x_in)
    hs = _tf_op("math.multiply", L.ReLU(6.0, dtype=dtype)(_tf_op("__operators__.add", x, 3.0)), 1.0 / 6.0)
    swish = L.Multiply(dtype=dtype)([x, hs])                                   # hard swish
    se = L.GlobalAveragePooling2D(keepdims=True, dtype=dtype)(swish)
    gate = _tf_op("math.multiply", L.ReLU(6.0, dtype=dtype)(_tf_op("math.add", se, 3.0)), 1.0 / 6.0)
    scaled = L.Multiply(dtype=dtype)([swish, gate])                            # hard sigmoid only
    other = _tf_op("math.multiply", L.ReLU(6.0, dtype=dtype)(_tf_op("__operators__.add", scaled, 2.0)), 1 / 6)
    a = _tf_op("__operators__.add", other, 3.0)
    r = L.ReLU(6.0, dtype=dtype)(a)
    kept = L.Add(dtype=dtype)([_tf_op("math.multiply", r, 1.0 / 6.0), a])      # a has two consumers
    model = klayers.Model(x_in, [kept, scaled])
    _randomize(model, 18)
    x = (np.random.default_rng(19).standard_normal((2, 5, 4, 8)) * 4).astype(dtype)
    got = model.predict(x, verbose=0)
    with inference.disabled():
        plain = model.predict(x, verbose=0)
    for g, w in zip(got, plain):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * np.abs(w).max())
    lowered = model._inference_plan.lowered
    maps = [(s.code, len(s.steps)) for s in lowered if isinstance(s, inference.fusion.MapStep)]
    from klayers.ops import common

    conv = [s for s in lowered if isinstance(s, inference.FusedStep)]
    assert len(conv) == 1
    if dtype == "float32":
        # the hard swish after the convolution is that step's activation (its epilogue maps it)
        assert maps == [(common.ACT_HARD_SIGMOID_K3, 3)]
        assert conv[0].act == common.ACT_HARD_SWISH and len(conv[0].steps) == 5
    else:
        # the pattern's TFOpLambda layers are float32: the map keeps its own step
        assert sorted(maps) == sorted([(common.ACT_HARD_SWISH, 4), (common.ACT_HARD_SIGMOID_K3, 3)])
    # the convolution's output also a model output: the map keeps its own step
    exposed = klayers.Model(x_in, [kept, scaled, conv[0].layer.output])
    got = exposed.predict(x, verbose=0)
    with inference.disabled():
        plain = exposed.predict(x, verbose=0)
    for g, w in zip(got, plain):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * np.abs(w).max())
    maps = [(s.code, len(s.steps)) for s in exposed._inference_plan.lowered if isinstance(s, inference.fusion.MapStep)]
    assert sorted(maps) == sorted([(common.ACT_HARD_SWISH, 4), (common.ACT_HARD_SIGMOID_K3, 3)])


def test_concurrent_predicts_on_one_model_give_the_serial_answers():
    """Several threads calling predict on one model at once (the first calls racing to fold and
    pack the kernels) get exactly the answers of serial calls."""
    import threading

    x_in = klayers.Input((8, 8, 6))
    h = L.ZeroPadding2D(1)(x_in)
    h = L.Conv2D(16, 3)(h)
    h = L.BatchNormalization()(h)
    h = L.Activation("swish")(h)
    r = L.Add()([L.Conv2D(16, 1)(h), h])
    r = L.ReLU()(r)
    out = L.Dense(4, activation="sigmoid")(L.Flatten()(r))
    model = klayers.Model(x_in, out)
    _randomize(model, 20)
    rng = np.random.default_rng(21)
    xs = [rng.standard_normal((b, 8, 8, 6)).astype("float32") for b in (1, 3, 2, 5, 1, 4, 2, 3)]
    results = [None] * len(xs)
    errors = []
    barrier = threading.Barrier(4)

    def work(i0):
        try:
            barrier.wait()
            for i in range(i0, len(xs), 4):
                results[i] = model.predict(xs[i], verbose=0)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for x, got in zip(xs, results):
        np.testing.assert_array_equal(got, model.predict(x, verbose=0))


def test_plain_layers_run_by_their_call_and_errors_still_name_them():
    """Layers of klayers's own with nothing to fold (Reshape, Dropout, pooling, Normalization)
    run as direct calls in the plan, with the layer path's results; user layers and layers
    making masks keep the layer path, as does a planned layer a mask reaches; an error inside
    names the layer."""

    class Twice(klayers.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    x_in = klayers.Input((None, 4))
    h = L.Normalization(mean=[0.1, 0.2, 0.3, 0.4], variance=[1.0, 2.0, 3.0, 4.0])(x_in)
    h = L.Dropout(0.5)(h)
    h = Twice()(h)
    m = L.Masking(0.0)(h)
    h = L.GlobalAveragePooling1D()(h)
    r = L.Reshape((2, 2), name="to_pairs")(h)
    model = klayers.Model(x_in, [r, L.GlobalMaxPooling1D()(m)])
    x = np.random.default_rng(5).standard_normal((3, 6, 4)).astype("float32")
    got = model.predict(x, verbose=0)
    direct = [type(s.layer).__name__ for s in model._inference_plan.lowered if isinstance(s, inference.DirectStep)]
    # GlobalMaxPooling1D is planned too, and runs its layer path when the mask reaches it
    assert sorted(direct) == ["Dropout", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Normalization", "Reshape"]
    with inference.disabled():
        want = model.predict(x, verbose=0)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    bad = klayers.Model(x_in, L.Reshape((3, 5), name="bad_reshape")(L.Flatten()(L.Dropout(0.1)(x_in))))
    with pytest.raises(ValueError, match="bad_reshape"):
        bad.predict(np.zeros((1, 6, 4), "float32"), verbose=0)


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
def test_squeeze_and_excitation_blocks_run_as_one_step(dtype, tol):
    """EfficientNet's block (GAP -> Reshape -> Conv 1x1 swish -> Conv 1x1 sigmoid -> Multiply)
    and MobileNetV3's (GAP keepdims -> Conv -> ReLU -> Conv -> hard sigmoid -> Multiply, the
    product's inputs the other way round) run as one step each with the layers' results, and
    follow weight changes; a block whose inner tensor is a model output stays unfused."""
    x_in = klayers.Input((5, 6, 8), dtype=dtype)
    h = L.Conv2D(8, 3, padding="same", dtype=dtype)(x_in)
    se = L.GlobalAveragePooling2D(dtype=dtype)(h)
    se = L.Reshape((1, 1, 8), dtype=dtype)(se)
    se = L.Conv2D(2, 1, activation="swish", dtype=dtype)(se)
    se = L.Conv2D(8, 1, activation="sigmoid", dtype=dtype)(se)
    h = L.Multiply(dtype=dtype)([h, se])
    se2 = L.GlobalAveragePooling2D(keepdims=True, dtype=dtype)(h)
    se2 = L.Conv2D(3, 1, dtype=dtype)(se2)
    se2 = L.ReLU(dtype=dtype)(se2)
    se2 = L.Conv2D(8, 1, use_bias=False, dtype=dtype)(se2)
    se2 = L.Activation("hard_sigmoid", dtype=dtype)(se2)
    out = L.Multiply(dtype=dtype)([se2, h])
    model = klayers.Model(x_in, out)
    _randomize(model, 7)
    x = np.random.default_rng(8).standard_normal((3, 5, 6, 8)).astype(dtype)
    got = model.predict(x, verbose=0)
    steps = [type(s).__name__ for s in model._inference_plan.lowered]
    assert steps.count("SqueezeExciteStep") == 2 and len(steps) == 3
    with inference.disabled():
        want = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    _randomize(model, 9)
    with inference.disabled():
        want = model.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=tol, atol=tol)
    # the excitation exposed as a second output: nothing to fuse
    got, kinds, want = _planned_and_layered(klayers.Model(x_in, [out, se]), x)
    assert kinds.count("SqueezeExciteStep") == 1
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_residual_adds_run_in_the_convolution_before_them(dtype, tol, fmt):
    """ResNet's ``ReLU(Add([BN(conv(x)), shortcut]))`` (either order; channel counts with strip
    tails; K past one block of the packed GEMM; Dropout layers between) runs as one step, the shortcut added in the
    packed GEMM's tiles (channels_first: the layers' path after the convolution); a convolution
    whose output is read elsewhere keeps its own step; results equal the layers'."""
    shape = (6, 6, 200) if fmt == "channels_last" else (200, 6, 6)
    x_in = klayers.Input(shape, dtype=dtype)
    a = L.Conv2D(45, 1, data_format=fmt, dtype=dtype)(x_in)
    a = L.BatchNormalization(axis=-1 if fmt == "channels_last" else 1, dtype=dtype)(a)
    short = L.Conv2D(45, 3, padding="same", data_format=fmt, dtype=dtype)(x_in)
    h = L.ReLU(dtype=dtype)(L.Add(dtype=dtype)([a, short]))          # conv chain first
    b = L.Conv2D(45, 1, activation=None, data_format=fmt, dtype=dtype)(h)
    b = L.Dropout(0.3, dtype=dtype)(L.Dropout(0.2, dtype=dtype)(b))   # identities at inference
    h2 = L.Add(dtype=dtype)([h, b])                                   # conv second, no activation
    c = L.Conv2D(45, 1, data_format=fmt, dtype=dtype)(h2)
    out = L.Add(dtype=dtype)([c, h2])
    model = klayers.Model(x_in, [out, c])                             # c is an output: unfused
    _randomize(model, 13)
    x = np.random.default_rng(14).standard_normal((3,) + shape).astype(dtype)
    got, kinds, want = _planned_and_layered(model, x)
    assert kinds.count("ResidualStep") == 2
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * np.abs(w).max())
    np.testing.assert_allclose(model.predict(x, verbose=0)[0], want[0], rtol=tol, atol=tol * np.abs(want[0]).max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_padding_folds_into_the_valid_max_pooling_after_it(dtype):
    """ResNet's stem (ZeroPadding2D -> MaxPooling2D(3, 2)) runs as one pooling over explicit zero
    padding, with the layers' results (negative inputs: the zeros win at the borders); an
    average pooling after a ZeroPadding keeps both layers."""
    x_in = klayers.Input((9, 8, 4), dtype=dtype)
    h = L.MaxPooling2D(3, strides=2, dtype=dtype)(L.ZeroPadding2D(((1, 1), (2, 0)), dtype=dtype)(x_in))
    a = L.AveragePooling2D(2, dtype=dtype)(L.ZeroPadding2D(1, dtype=dtype)(x_in))
    model = klayers.Model(x_in, [h, a])
    x = np.random.default_rng(3).standard_normal((2, 9, 8, 4)).astype(dtype) - 1.0
    got, kinds, want = _planned_and_layered(model, x)
    assert kinds.count("PaddedPoolStep") == 1
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def _inverted_residual_block(x, expand, out_channels, strides, dtype, act="relu6", pad=False, skip=True, se=False):
    """MobileNetV2's block as tf-keras writes it: 1x1 expand + BN + act (none with ``expand``
    1), [ZeroPadding + "valid"] depthwise + BN + act, [EfficientNet's squeeze-and-excitation],
    1x1 project + BN [+ Add of the block's input]."""
    cin = x.shape[-1]
    h = x
    if expand > 1:
        h = L.Conv2D(cin * expand, 1, use_bias=False, dtype=dtype)(x)
        h = L.BatchNormalization(dtype=dtype)(h)
        h = L.ReLU(6.0, dtype=dtype)(h) if act == "relu6" else L.Activation(act, dtype=dtype)(h)
    if pad:
        h = L.ZeroPadding2D(((0, 1), (0, 1)), dtype=dtype)(h)
    h = L.DepthwiseConv2D(3, strides=strides, padding="valid" if pad else "same", use_bias=False, dtype=dtype)(h)
    h = L.BatchNormalization(dtype=dtype)(h)
    h = L.ReLU(6.0, dtype=dtype)(h) if act == "relu6" else L.Activation(act, dtype=dtype)(h)
    if se:
        c = h.shape[-1]
        g = L.Reshape((1, 1, c), dtype=dtype)(L.GlobalAveragePooling2D(dtype=dtype)(h))
        g = L.Conv2D(max(1, c // 4), 1, activation="swish", dtype=dtype)(g)
        g = L.Conv2D(c, 1, activation="sigmoid", dtype=dtype)(g)
        h = L.Multiply(dtype=dtype)([h, g])
    h = L.Conv2D(out_channels, 1, use_bias=False, dtype=dtype)(h)
    h = L.BatchNormalization(dtype=dtype)(h)
    return L.Add(dtype=dtype)([x, h]) if skip and strides == 1 and cin == out_channels else h


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
def test_inverted_residual_blocks_run_as_one_step(dtype, tol):
    """MobileNetV2's blocks (with and without the residual Add, stride 2 through a folded
    ZeroPadding, relu6 and swish) run as one InvertedResidualStep each, by rows on rows of at
    least ops.conv.IRB_MIN_WIDTH, by whole samples on narrower ones (fewer samples than
    threads: one at a time, shared by the threads); so do EfficientNet's (squeeze-and-excitation,
    with and without an expansion); a block whose expanded tensor is also an output keeps its
    steps; results equal the layers' on 1 and 2 threads, batches 1 and 3."""
    from klayers.ops.conv import IRB_MIN_WIDTH
    w = IRB_MIN_WIDTH + 2
    x_in = klayers.Input((w, w, 8), dtype=dtype)
    h = _inverted_residual_block(x_in, 6, 8, 1, dtype)                      # with the Add
    h = _inverted_residual_block(h, 4, 12, 1, dtype, act="swish")           # no Add: channels change
    h = _inverted_residual_block(h, 3, 16, 2, dtype, pad=True)              # stride 2 via ZeroPadding
    narrow = _inverted_residual_block(h, 6, 16, 1, dtype)                   # narrow rows: by samples
    model = klayers.Model(x_in, narrow)
    # EfficientNet's blocks: squeeze-and-excitation, with and without an expansion
    e_in = klayers.Input((w, w, 8), dtype=dtype)
    h = _inverted_residual_block(e_in, 1, 8, 1, dtype, act="swish", se=True)
    effnet = klayers.Model(e_in, _inverted_residual_block(h, 4, 12, 2, dtype, act="swish", pad=True, se=True))
    _randomize(effnet, 23)
    got, kinds, want = _planned_and_layered(effnet, np.random.default_rng(24).standard_normal((3, w, w, 8)).astype(dtype))
    assert kinds.count("InvertedResidualStep") == 2 and "SqueezeExciteStep" not in kinds, kinds
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    _randomize(model, 21)
    x = np.random.default_rng(22).standard_normal((3, w, w, 8)).astype(dtype)
    for threads in (1, 2):
        klayers.set_num_threads(threads)
        try:
            for xb in (x, x[:1]):
                got, kinds, want = _planned_and_layered(model, xb)
                assert kinds.count("InvertedResidualStep") == 4, kinds
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
            # the last block's rows are narrower than IRB_MIN_WIDTH: by whole samples (at
            # batch 1 on two threads, one sample shared by both)
            step = model._inference_plan.lowered[-1]
            assert type(step).__name__ == "InvertedResidualStep"
            for batch in (1, 3):
                assert step.prepared(np.zeros((batch, w // 2, w // 2, 16), dtype)) is not None
        finally:
            klayers.set_num_threads(None)
    # the expanded tensor also an output: no block step for it
    got, kinds, want = _planned_and_layered(klayers.Model(x_in, [narrow, model.get_layer(index=1).output]), x)
    assert kinds.count("InvertedResidualStep") == 3
    for g, wv in zip(got, want):
        np.testing.assert_allclose(g, wv, rtol=tol, atol=tol * np.abs(wv).max())


def test_mobilenet_v1_chains_take_each_pointwise_step_once():
    """MobileNet's depthwise-separable chain (conv, then depthwise -> pointwise repeated): each
    pointwise convolution is one block's projection, never also the next block's expansion
    (that block would read a tensor the first never makes)."""
    x_in = klayers.Input((12, 12, 3))
    h = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x_in)))
    for filters, strides, multiplier in ((16, 1, 1), (16, 2, 1), (24, 1, 2)):
        if strides == 2:
            h = L.ZeroPadding2D(((0, 1), (0, 1)))(h)
        h = L.DepthwiseConv2D(3, strides=strides, padding="same" if strides == 1 else "valid",
                              depth_multiplier=multiplier, use_bias=False)(h)
        h = L.ReLU(6.0)(L.BatchNormalization()(h))
        h = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(filters, 1, use_bias=False)(h)))
    model = klayers.Model(x_in, h)
    _randomize(model, 31)
    got, kinds, want = _planned_and_layered(model, np.random.default_rng(32).standard_normal((2, 12, 12, 3)).astype("float32"))
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())


@pytest.mark.parametrize("dtype,tol", [("float32", 2e-5), ("float64", 1e-12)])
def test_concatenations_run_as_merge_steps_into_the_arena(dtype, tol):
    """Concatenate (any axis, with an Activation after it folded in) runs as a MergeStep whose
    output comes from the call's arena; the results equal the layers' within rounding (the
    plan's convolutions run the packed GEMM, the layers' BLAS: their sums may round apart in
    the last bit), and the second call equals the first exactly (the arena's buffers reused)."""
    x_in = klayers.Input((5, 5, 3), dtype=dtype)
    a = L.Conv2D(4, 1, dtype=dtype)(x_in)
    b = L.Conv2D(6, 3, padding="same", dtype=dtype)(x_in)
    h = L.Activation("relu", dtype=dtype)(L.Concatenate(dtype=dtype)([a, b, x_in]))
    v = L.Concatenate(axis=1, dtype=dtype)([h, L.Conv2D(13, 1, dtype=dtype)(h)])
    model = klayers.Model(x_in, L.Flatten(dtype=dtype)(v))
    _randomize(model, 31)
    x = np.random.default_rng(32).standard_normal((3, 5, 5, 3)).astype(dtype)
    first = None
    for _ in range(2):
        got, kinds, want = _planned_and_layered(model, x)
        assert kinds.count("MergeStep") == 2, kinds
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
        if first is None:
            first = got.copy()
    np.testing.assert_array_equal(got, first)
    from klayers.ops.merge import concatenate
    with pytest.raises(ValueError, match="axis=4 is out of range"):
        concatenate([x, x], 4)
    with pytest.raises(ValueError, match="nothing to concatenate"):
        concatenate([], 0)
    with pytest.raises(ValueError, match="t: .*dimensions"):
        concatenate([x, x[:, :2]], -1, where="t")


def test_prepared_calls_take_any_layout_and_follow_signature_and_weight_changes():
    """A step's prepared call is reused for the same input signature only: a Fortran-ordered
    or float64 input (copied to what the kernel takes), another batch, and a weight assigned
    in between all give the layers' results."""
    x_in = klayers.Input((6, 5, 3))
    h = L.Conv2D(4, 1, activation="relu")(x_in)
    out = L.Dense(3)(L.Conv2D(5, 3, padding="same")(h))
    model = klayers.Model(x_in, out)
    _randomize(model, 41)
    rng = np.random.default_rng(42)
    x = rng.standard_normal((2, 6, 5, 3)).astype("float32")
    with inference.disabled():
        want = model.predict(x, verbose=0)
    for variant in (x, np.asfortranarray(x), x.astype("float64"), x, x[:1]):
        got = model(variant)
        np.testing.assert_allclose(got, want[: len(variant)], rtol=2e-5, atol=2e-5)
    first = model.layers[1]
    first.set_weights([w * 0.5 for w in first.get_weights()])
    with inference.disabled():
        want = model.predict(x, verbose=0)
    np.testing.assert_allclose(model(x), want, rtol=2e-5, atol=2e-5)
