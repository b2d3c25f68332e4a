"""Differential test of the inference plan: hypothesis builds random functional graphs from the
layers the planner lowers (convolutions alone and folded with BatchNormalization and an
activation, depthwise convolutions, ZeroPadding before "valid" convolutions and max poolings, element-wise merges
with the activation after them, residual blocks (a convolution chain, Dropout, Add, ReLU),
squeeze-and-excitation branches, tf-keras's hard sigmoid / hard swish node patterns, Dense
heads), with branches, shared layers, a nested model applied twice, one or two inputs and
several outputs; the planned model (with its arena) must give the layer-by-layer results within
float rounding, NaN and inf where they are, in float32 and float64, on 1 and 2 threads, and
again on a second call (the arena's buffers reused), a third (recorded) and a fourth on other
values (the recording replayed, where the graph has one: klayers.engine.replay)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import klayers
from klayers import inference
from klayers import layers as L
from klayers.layers.tf_op_layer import TFOpLambda

ACTIVATIONS = ["linear", "relu", "relu6", "swish", "sigmoid", "gelu", "tanh", "elu", "hard_silu"]
TOL = {"float32": 3e-5, "float64": 1e-11}


def _act_layer(draw, dtype):
    kind = draw(st.sampled_from(["relu", "relu6", "activation"]))
    if kind == "relu":
        return L.ReLU(dtype=dtype)
    if kind == "relu6":
        return L.ReLU(6.0, dtype=dtype)
    return L.Activation(draw(st.sampled_from(ACTIVATIONS)), dtype=dtype)


@st.composite
def graphs(draw):
    """``(model, dtype)``: a random graph on a ``(6, 6, C)`` input."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    channels = draw(st.sampled_from([3, 8, 16]))
    x_in = klayers.Input((6, 6, channels), dtype=dtype)
    inputs = [x_in]
    if draw(st.booleans()):
        inputs.append(klayers.Input((6, 6, channels), dtype=dtype))
    pool = list(inputs)                 # tensors of shape (6, 6, C) that later blocks may use
    outputs = []
    shared = nested = None
    for _ in range(draw(st.integers(2, 6))):
        src = pool[draw(st.integers(0, len(pool) - 1))]
        block = draw(st.sampled_from(["conv_bn", "conv", "depthwise", "pad_conv", "merge", "se",
                                      "hard_swish", "shared", "output", "residual", "nested", "pad_pool"]))
        if block == "conv_bn":
            h = L.Conv2D(channels, draw(st.sampled_from([1, 3])), padding="same", use_bias=draw(st.booleans()),
                         dtype=dtype)(src)
            h = L.BatchNormalization(dtype=dtype)(h)
            if draw(st.booleans()):
                h = _act_layer(draw, dtype)(h)
        elif block == "conv":
            h = L.Conv2D(channels, draw(st.sampled_from([1, 3])), padding="same",
                         activation=draw(st.sampled_from(ACTIVATIONS)), dtype=dtype)(src)
        elif block == "depthwise":
            h = L.DepthwiseConv2D(3, padding="same", dtype=dtype)(src)
            h = L.BatchNormalization(dtype=dtype)(h)
            h = L.ReLU(6.0, dtype=dtype)(h)
        elif block == "pad_conv":
            h = L.ZeroPadding2D(1, dtype=dtype)(src)
            if draw(st.booleans()):
                h = L.DepthwiseConv2D(3, dtype=dtype)(h)
            else:
                h = L.Conv2D(channels, 3, dtype=dtype)(h)
        elif block == "pad_pool":
            h = L.MaxPooling2D(3, strides=1, dtype=dtype)(L.ZeroPadding2D(1, dtype=dtype)(src))
        elif block == "merge":
            other = pool[draw(st.integers(0, len(pool) - 1))]
            op = draw(st.sampled_from([L.Add, L.Multiply, L.Maximum, L.Subtract, L.Minimum]))
            h = op(dtype=dtype)([src, other])
            if draw(st.booleans()):
                h = _act_layer(draw, dtype)(h)
        elif block == "residual":
            h = L.Conv2D(channels, draw(st.sampled_from([1, 3])), padding="same", dtype=dtype)(src)
            if draw(st.booleans()):
                h = L.BatchNormalization(dtype=dtype)(h)
            if draw(st.booleans()):
                h = L.Dropout(0.3, dtype=dtype)(h)
            other = pool[draw(st.integers(0, len(pool) - 1))]
            h = L.Add(dtype=dtype)([h, other] if draw(st.booleans()) else [other, h])
            if draw(st.booleans()):
                h = _act_layer(draw, dtype)(h)
        elif block == "nested":
            if nested is None:
                n_in = klayers.Input((6, 6, channels), dtype=dtype)
                t = L.Conv2D(channels, 1, dtype=dtype)(n_in)
                t = L.BatchNormalization(dtype=dtype)(t)
                nested = klayers.Model(n_in, L.ReLU(dtype=dtype)(L.Add(dtype=dtype)([t, n_in])))
            h = nested(src)
        elif block == "se":
            keep = draw(st.booleans())
            s = L.GlobalAveragePooling2D(keepdims=keep, dtype=dtype)(src)
            if not keep:
                s = L.Reshape((1, 1, channels), dtype=dtype)(s)
            s = L.Conv2D(max(1, channels // 4), 1, activation="swish", dtype=dtype)(s)
            s = L.Conv2D(channels, 1, activation="sigmoid", dtype=dtype)(s)
            h = L.Multiply(dtype=dtype)([src, s])
        elif block == "hard_swish":
            a = TFOpLambda("__operators__.add")(src, y=3.0, name=None)
            hs = TFOpLambda("math.multiply")(L.ReLU(6.0, dtype=dtype)(a), y=1.0 / 6.0, name=None)
            h = L.Multiply(dtype=dtype)([src, hs]) if draw(st.booleans()) else hs
        elif block == "shared":
            if shared is None:
                shared = L.Conv2D(channels, 1, activation="relu", dtype=dtype)
            h = shared(src)
        else:
            outputs.append(src)
            continue
        pool.append(h)
    last = pool[-1]
    head = L.Dense(5, activation=draw(st.sampled_from(ACTIVATIONS)), dtype=dtype)(L.Flatten(dtype=dtype)(last))
    model = klayers.Model(inputs if len(inputs) > 1 else x_in, outputs + [head, last])
    return model, dtype


def _randomize(model, rng):
    values = []
    for w in model.weights:
        if "variance" in w.name or "gamma" in w.name:
            values.append(rng.uniform(0.5, 1.5, w.shape))
        else:
            values.append(rng.normal(0.0, 0.4, w.shape))
    model.set_weights(values)


def _all_layers(layer):
    """``layer`` and every layer inside it (nested models)."""
    yield layer
    for inner in layer._flatten_layers_list:
        yield from _all_layers(inner)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graph=graphs(), seed=st.integers(0, 2**16), specials=st.booleans(), batch=st.sampled_from([1, 2, 5]))
def test_planned_graph_equals_layer_by_layer(graph, seed, specials, batch):
    model, dtype = graph
    rng = np.random.default_rng(seed)
    _randomize(model, rng)
    xs = [rng.standard_normal((batch,) + tuple(t.shape[1:])).astype(dtype) for t in model.inputs]
    if specials:
        flat = xs[0].reshape(-1)
        flat[rng.integers(0, flat.size, 3)] = [np.nan, np.inf, -np.inf]
    x = xs if len(xs) > 1 else xs[0]
    # other values for the last call, which replays the recording of the call before it
    x2 = [np.flip(a, axis=-1).copy() for a in xs]
    x2 = x2 if len(x2) > 1 else x2[0]
    with inference.disabled():
        want = model.predict(x, verbose=0)
        want2 = model.predict(x2, verbose=0)
    overflows = any(type(layer).__name__.startswith("MaxPooling") for layer in _all_layers(model))
    for threads, feed, expected in ((1, x, want), (2, x, want), (2, x, want), (2, x2, want2)):
        with klayers.num_threads(threads):
            got = model.predict(feed, verbose=0)
        for g, w in zip(got if isinstance(got, list) else [got], expected if isinstance(expected, list) else [expected]):
            assert g.shape == w.shape and g.dtype == w.dtype
            finite = np.isfinite(w)
            if specials and overflows and not finite.all():
                # max pooling turns a window of NaN or -inf into the lowest finite value
                # (-3.4e38), and a product after it overflows: which partial sums reach inf
                # first, so whether the result is inf, NaN or finite, is the summation
                # order's. Only the outputs that stayed small are compared (the kernels' NaN
                # rules are checked exactly by their own tests)
                finite = finite & np.isfinite(g) & (np.abs(w) < 1e30)
            else:
                np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
                np.testing.assert_array_equal(g[~finite & ~np.isnan(w)], w[~finite & ~np.isnan(w)])
            scale = max(1.0, float(np.abs(w[finite]).max(initial=0)))
            np.testing.assert_allclose(g[finite], w[finite], rtol=TOL[dtype], atol=TOL[dtype] * scale)


def test_the_strategy_reaches_every_lowered_step_kind():
    """The graphs exercise every kind of lowered step (so the differential test compares them)."""
    from hypothesis import find

    def kinds(graph):
        model, _ = graph
        model.predict([np.zeros((1,) + tuple(t.shape[1:]), t.dtype) for t in model.inputs], verbose=0)
        return {type(s).__name__ + ("+pad" if getattr(s, "pad", None) else "")
                for s in model._inference_plan.lowered}

    for want in ("FusedStep", "FusedStep+pad", "MergeStep", "MapStep", "ResidualStep", "SqueezeExciteStep",
                 "DirectStep", "PaddedPoolStep+pad"):
        find(graphs(), lambda g, want=want: want in kinds(g), settings=settings(max_examples=300, deadline=None))
