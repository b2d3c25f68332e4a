"""Every public layer class through ``run_layer_test`` (tests/helpers/layer_harness.py): config
round trip, weight names and order, output shapes eager and symbolic, float64, the rebuilt and
the unpickled layer.

:data:`TABLE` has a row per public layer class of ``klayers.layers.__all__`` (an alias such as
``Convolution2D`` shares its class's rows); ``test_every_public_layer_class_has_a_row`` fails when
a class lands without one. A new layer is a new row. A check a layer cannot take is switched off
in its row, with the reason beside it.
"""

from __future__ import annotations

import inspect
from typing import Any, List

import numpy as np
import pytest

import klayers
from klayers import layers as L
from tests.helpers import run_layer_test


class Doubler:
    """A callable object: a Lambda stores it by name, resolved through custom_objects."""

    __name__ = "doubler"

    def __call__(self, x):
        return x * 2.0


def row(cls: type, kwargs: Any, input_shape: Any, weights: List[str], id: str = "", **options: Any) -> Any:
    """One call of run_layer_test: ``cls(**kwargs)`` on ``input_shape`` with weight names
    ``weights``; ``options`` are run_layer_test's keywords. The id is the class name, plus ``id``
    when the class has several rows."""
    return pytest.param(cls, kwargs, input_shape, weights, options, id=f"{cls.__name__}-{id}" if id else cls.__name__)


def _kernel_bias(name: str) -> List[str]:
    return [f"{name}/kernel:0", f"{name}/bias:0"]


def _cell(name: str, prefix: str = "") -> List[str]:
    return [f"{prefix}{name}/kernel:0", f"{prefix}{name}/recurrent_kernel:0", f"{prefix}{name}/bias:0"]


#: float64=False for a layer holding a layer (or cell) made before it: that one keeps its own
#: dtype, as in tf-keras (the wrapped classes have float64 rows of their own)
NO_FLOAT64 = False

TABLE = [
    # -- core ----------------------------------------------------------------------------------
    row(L.Activation, {"activation": "tanh"}, (2, 3, 4), []),
    row(L.ActivityRegularization, {"l1": 0.5}, (2, 4), []),
    row(L.Dense, {"units": 3}, (2, 4), _kernel_bias("dense")),
    row(L.Dense, {"units": 3, "activation": "relu", "use_bias": False}, (2, 5, 4), ["dense/kernel:0"], id="relu-nobias"),
    row(L.Dropout, {"rate": 0.3, "noise_shape": (None, 1), "seed": 4}, (2, 5), []),
    row(L.Flatten, {"data_format": "channels_first"}, (2, 3, 4), []),
    row(L.Identity, {}, (2, 3, 4), []),
    row(L.Lambda, {"function": Doubler()}, (2, 3), [], custom_objects={"doubler": Doubler()}),
    row(L.Masking, {"mask_value": -1.0}, (2, 3, 4), []),
    row(L.Permute, {"dims": (2, 1)}, (2, 3, 4), []),
    row(L.RepeatVector, {"n": 3}, (2, 4), []),
    row(L.Reshape, {"target_shape": (2, -1)}, (2, 6), []),
    row(L.SpatialDropout1D, {"rate": 0.5}, (2, 3, 4), []),
    row(L.SpatialDropout2D, {"rate": 0.2, "data_format": "channels_first"}, (2, 3, 4, 5), []),
    row(L.SpatialDropout3D, {"rate": 0.5}, (2, 3, 3, 2, 2), []),
    row(L.InputLayer, {"input_shape": (4,)}, (2, 4), []),
    row(L.Layer, {}, (2, 4), []),
    # -- attention -----------------------------------------------------------------------------
    row(L.EinsumDense, {"equation": "abc,cde->abde", "output_shape": (None, 2, 3), "bias_axes": "de"}, (2, 4, 5),
        _kernel_bias("einsum_dense")),
    row(L.EinsumDense, {"equation": "ab...,bc->ac...", "output_shape": 4, "activation": "relu"}, (2, 3, 5),
        ["einsum_dense/kernel:0"], id="ellipsis-right-nobias"),
    row(L.MultiHeadAttention, {"num_heads": 2, "key_dim": 3}, [(2, 4, 6), (2, 5, 6)],
        [f"multi_head_attention/{p}/{w}:0" for p in ("query", "key", "value", "attention_output")
         for w in ("kernel", "bias")], positional=True),
    row(L.MultiHeadAttention, {"num_heads": 2, "key_dim": 2, "value_dim": 3, "use_bias": False,
                               "attention_axes": (1, 2), "output_shape": 4}, [(2, 3, 4, 5), (2, 2, 3, 5)],
        [f"multi_head_attention/{p}/kernel:0" for p in ("query", "key", "value", "attention_output")],
        id="2d-nobias", positional=True),
    row(L.Attention, {"use_scale": True, "score_mode": "concat"}, [(2, 3, 4), (2, 5, 4)],
        ["attention/scale:0", "attention/concat_score_weight:0"]),
    row(L.Attention, {"dropout": 0.2}, [(2, 3, 4), (2, 5, 6), (2, 5, 4)], [], id="key-wide-value"),
    row(L.AdditiveAttention, {}, [(2, 3, 4), (2, 5, 4)], ["additive_attention/scale:0"]),
    row(L.AdditiveAttention, {"use_scale": False}, [(2, 3, 4), (2, 5, 4), (2, 5, 4)], [], id="noscale-key"),
    row(L.GroupQueryAttention, {"head_dim": 3, "num_query_heads": 4, "num_key_value_heads": 2},
        [(2, 4, 6), (2, 5, 6)],
        [f"grouped_query_attention/{p}/{w}:0" for p in ("query", "key", "value", "attention_output")
         for w in ("kernel", "bias")], positional=True),
    row(L.GroupQueryAttention, {"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1, "use_bias": False,
                                "use_gate": True}, [(2, 4, 6), (2, 5, 6), (2, 5, 3)],
        [f"grouped_query_attention/{p}/kernel:0" for p in ("query", "key", "gate", "value", "attention_output")],
        id="gate-nobias-key", positional=True),
    # -- embeddings ----------------------------------------------------------------------------
    row(L.Embedding, {"input_dim": 5, "output_dim": 3, "mask_zero": True, "embeddings_regularizer": "l2",
                      "input_length": 3}, (2, 3), ["embedding/embeddings:0"], input_dtype="int32", int_high=5),
    # -- merge ---------------------------------------------------------------------------------
    row(L.Add, {}, [(2, 4), (2, 4)], []),
    row(L.Average, {}, [(2, 4), (2, 4)], []),
    row(L.Maximum, {}, [(2, 4), (2, 4)], []),
    row(L.Minimum, {}, [(2, 4), (2, 4)], []),
    row(L.Multiply, {}, [(2, 4), (2, 4), (2, 4)], []),
    row(L.Subtract, {}, [(2, 3, 4), (2, 3, 4)], []),
    row(L.Concatenate, {"axis": 1}, [(2, 3, 4), (2, 2, 4)], []),
    row(L.Dot, {"axes": (1, 2), "normalize": True}, [(2, 3, 4), (2, 5, 3)], []),
    # -- activation ----------------------------------------------------------------------------
    row(L.ELU, {"alpha": 0.3}, (2, 5), []),
    row(L.LeakyReLU, {"alpha": 0.1}, (2, 5), []),
    row(L.PReLU, {"shared_axes": 2}, (2, 3, 4), ["p_re_lu/alpha:0"]),
    row(L.ReLU, {"max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5}, (2, 5), []),
    row(L.Softmax, {"axis": [1, 2]}, (2, 3, 4), []),
    row(L.ThresholdedReLU, {"theta": 0.2}, (2, 5), []),
    # -- normalization -------------------------------------------------------------------------
    row(L.BatchNormalization, {}, (4, 3), ["batch_normalization/gamma:0", "batch_normalization/beta:0",
                                           "batch_normalization/moving_mean:0", "batch_normalization/moving_variance:0"],
        expected_non_trainable=2),
    row(L.BatchNormalization, {"axis": [1, 2], "center": False, "beta_regularizer": "l2"}, (2, 3, 4, 5),
        ["batch_normalization/gamma:0", "batch_normalization/moving_mean:0", "batch_normalization/moving_variance:0"],
        id="two-axes-no-center", expected_non_trainable=2),
    row(L.LayerNormalization, {"axis": [1, 2], "epsilon": 1e-5}, (2, 3, 4, 5),
        ["layer_normalization/gamma:0", "layer_normalization/beta:0"]),
    row(L.Normalization, {"axis": None, "mean": 1.0, "variance": 2.0}, (2, 3), []),
    row(L.Rescaling, {"scale": [1.0, 2.0], "offset": 0.5}, (2, 3, 2), []),
    row(L.GroupNormalization, {"groups": 2, "gamma_regularizer": "l2"}, (2, 3, 4),
        ["group_normalization/gamma:0", "group_normalization/beta:0"]),
    row(L.GroupNormalization, {"groups": -1, "axis": 1, "center": False}, (2, 3, 4, 2), ["group_normalization/gamma:0"],
        id="instance-channels-first"),
    row(L.UnitNormalization, {"axis": [1, 2]}, (2, 3, 4), []),
    row(L.RMSNormalization, {"axis": [-1, -2], "epsilon": 1e-4}, (2, 3, 4), ["rms_normalization/scale:0"]),
    row(L.SyncBatchNormalization, {"momentum": 0.9}, (2, 3, 4), ["sync_batch_normalization/gamma:0",
        "sync_batch_normalization/beta:0", "sync_batch_normalization/moving_mean:0",
        "sync_batch_normalization/moving_variance:0"], expected_non_trainable=2),
    row(L.SpectralNormalization, lambda: {"layer": L.Dense(3), "power_iterations": 2}, (2, 4),
        ["spectral_normalization/kernel:0", "spectral_normalization/bias:0", "spectral_normalization/vector_u:0"],
        expected_non_trainable=1, float64=NO_FLOAT64),
    row(L.SpectralNormalization, lambda: {"layer": L.Conv2D(2, 2, use_bias=False)}, (2, 4, 4, 3),
        ["spectral_normalization/kernel:0", "spectral_normalization/vector_u:0"], id="conv2d",
        expected_non_trainable=1, float64=NO_FLOAT64),
    # -- noise ---------------------------------------------------------------------------------
    row(L.AlphaDropout, {"rate": 0.2, "seed": 3}, (2, 5), []),
    row(L.GaussianDropout, {"rate": 0.1}, (2, 5), []),
    row(L.GaussianNoise, {"stddev": 0.2, "seed": 1}, (2, 5), []),
    # -- convolutional -------------------------------------------------------------------------
    row(L.Conv1D, {"filters": 2, "kernel_size": 3}, (2, 6, 3), _kernel_bias("conv1d")),
    row(L.Conv1D, {"filters": 4, "kernel_size": 2, "padding": "causal", "dilation_rate": 2, "groups": 2}, (2, 6, 2),
        _kernel_bias("conv1d"), id="causal-dilated-groups"),
    row(L.Conv2D, {"filters": 2, "kernel_size": 3}, (2, 5, 5, 3), _kernel_bias("conv2d")),
    row(L.Conv2D, {"filters": 2, "kernel_size": (1, 2), "strides": 2, "padding": "same",
                   "data_format": "channels_first"}, (2, 3, 4, 5), _kernel_bias("conv2d"), id="channels-first-same"),
    row(L.Conv3D, {"filters": 2, "kernel_size": 2}, (2, 3, 3, 3, 2), _kernel_bias("conv3d")),
    row(L.SeparableConv1D, {"filters": 2, "kernel_size": 3}, (2, 6, 3),
        ["separable_conv1d/depthwise_kernel:0", "separable_conv1d/pointwise_kernel:0", "separable_conv1d/bias:0"]),
    row(L.SeparableConv2D, {"filters": 3, "kernel_size": 3, "depth_multiplier": 2, "activation": "relu"},
        (2, 6, 6, 2), ["separable_conv2d/depthwise_kernel:0", "separable_conv2d/pointwise_kernel:0",
                       "separable_conv2d/bias:0"]),
    row(L.SeparableConv2D, {"filters": 3, "kernel_size": 3, "dtype": "float64", "depth_multiplier": 2,
                            "activation": "relu"}, (1, 6, 6, 2),
        ["separable_conv2d/depthwise_kernel:0", "separable_conv2d/pointwise_kernel:0", "separable_conv2d/bias:0"],
        id="float64", input_dtype="float64"),
    row(L.DepthwiseConv1D, {"kernel_size": 3}, (2, 6, 3), ["depthwise_conv1d/depthwise_kernel:0", "depthwise_conv1d/bias:0"]),
    row(L.DepthwiseConv2D, {"kernel_size": 3, "depth_multiplier": 2}, (2, 5, 5, 3),
        ["depthwise_conv2d/depthwise_kernel:0", "depthwise_conv2d/bias:0"]),
    row(L.DepthwiseConv3D, {"kernel_size": 2}, (2, 3, 3, 3, 2), ["depthwise_conv3d/depthwise_kernel:0", "depthwise_conv3d/bias:0"]),
    row(L.Conv1DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2}, (2, 4, 3), _kernel_bias("conv1d_transpose")),
    row(L.Conv2DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (2, 3, 3, 2),
        _kernel_bias("conv2d_transpose")),
    row(L.Conv3DTranspose, {"filters": 2, "kernel_size": 2}, (2, 2, 2, 2, 2), _kernel_bias("conv3d_transpose")),
    # -- pooling -------------------------------------------------------------------------------
    row(L.MaxPooling1D, {"pool_size": 2}, (2, 5, 2), []),
    row(L.MaxPooling2D, {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 5, 5, 2), []),
    row(L.MaxPooling3D, {"pool_size": 2}, (2, 4, 4, 4, 2), []),
    row(L.AveragePooling1D, {"pool_size": 2, "data_format": "channels_first"}, (2, 3, 6), []),
    row(L.AveragePooling2D, {"pool_size": (2, 1)}, (2, 5, 5, 2), []),
    row(L.AveragePooling3D, {"pool_size": 2, "padding": "same"}, (2, 3, 3, 3, 2), []),
    row(L.GlobalMaxPooling1D, {}, (2, 5, 3), []),
    row(L.GlobalMaxPooling2D, {"keepdims": True}, (2, 4, 4, 3), []),
    row(L.GlobalMaxPooling3D, {}, (2, 3, 3, 3, 2), []),
    row(L.GlobalAveragePooling1D, {"data_format": "channels_first"}, (2, 3, 5), []),
    row(L.GlobalAveragePooling2D, {}, (2, 4, 4, 3), []),
    row(L.GlobalAveragePooling3D, {"keepdims": True}, (2, 3, 3, 3, 2), []),
    row(L.AdaptiveAveragePooling1D, {"output_size": 3}, (2, 7, 2), []),
    row(L.AdaptiveMaxPooling1D, {"output_size": 4, "data_format": "channels_first"}, (2, 2, 6), []),
    row(L.AdaptiveAveragePooling2D, {"output_size": (2, 3)}, (2, 5, 7, 2), []),
    row(L.AdaptiveMaxPooling2D, {"output_size": 3}, (2, 4, 5, 2), []),
    row(L.AdaptiveAveragePooling3D, {"output_size": (2, 1, 3), "data_format": "channels_first"}, (2, 2, 3, 3, 4), []),
    row(L.AdaptiveMaxPooling3D, {"output_size": 2}, (2, 3, 3, 5, 2), []),
    # -- locally connected ---------------------------------------------------------------------
    row(L.LocallyConnected1D, {"filters": 2, "kernel_size": 3}, (2, 6, 3), _kernel_bias("locally_connected1d")),
    row(L.LocallyConnected1D, {"filters": 2, "kernel_size": 2, "implementation": 2}, (2, 5, 3),
        _kernel_bias("locally_connected1d"), id="implementation2"),
    row(L.LocallyConnected2D, {"filters": 2, "kernel_size": 3}, (2, 5, 5, 2), _kernel_bias("locally_connected2d")),
    row(L.LocallyConnected2D, {"filters": 3, "kernel_size": 2, "implementation": 3, "padding": "same"}, (2, 4, 5, 2),
        _kernel_bias("locally_connected2d"), id="implementation3-same"),
    # -- reshaping -----------------------------------------------------------------------------
    row(L.Cropping1D, {"cropping": 1}, (2, 5, 2), []),
    row(L.Cropping2D, {"cropping": ((1, 0), (0, 2))}, (2, 5, 5, 2), []),
    row(L.Cropping3D, {"cropping": 1}, (2, 4, 4, 4, 2), []),
    row(L.ZeroPadding1D, {"padding": 1}, (2, 3, 2), []),
    row(L.ZeroPadding2D, {"padding": ((1, 0), (2, 1)), "data_format": "channels_first"}, (2, 2, 3, 3), []),
    row(L.ZeroPadding3D, {"padding": 1}, (2, 2, 2, 2, 2), []),
    row(L.UpSampling1D, {"size": 2}, (2, 3, 2), []),
    row(L.UpSampling2D, {"size": 2}, (2, 3, 3, 2), []),
    row(L.UpSampling2D, {"size": 2, "interpolation": "bilinear"}, (2, 3, 3, 2), [], id="bilinear"),
    row(L.UpSampling3D, {"size": 2}, (2, 2, 2, 2, 2), []),
    # -- recurrent -----------------------------------------------------------------------------
    row(L.SimpleRNN, {"units": 3}, (2, 4, 2), _cell("simple_rnn_cell", "simple_rnn/")),
    row(L.SimpleRNN, {"units": 3, "return_sequences": True, "go_backwards": True}, (2, 4, 2),
        _cell("simple_rnn_cell", "simple_rnn/"), id="sequences-backwards"),
    row(L.GRU, {"units": 3}, (2, 4, 2), _cell("gru_cell", "gru/")),
    row(L.GRU, {"units": 3, "reset_after": False, "return_sequences": True}, (2, 4, 2), _cell("gru_cell", "gru/"),
        id="reset-before"),
    row(L.LSTM, {"units": 3}, (2, 4, 2), _cell("lstm_cell", "lstm/")),
    row(L.LSTM, {"units": 3, "return_sequences": True, "return_state": True}, (2, 4, 2), _cell("lstm_cell", "lstm/"),
        id="sequences-state"),
    row(L.CuDNNGRU, {"units": 3}, (2, 4, 2), ["kernel:0", "recurrent_kernel:0", "bias:0"]),
    row(L.CuDNNLSTM, {"units": 3, "return_sequences": True}, (2, 4, 2), ["kernel:0", "recurrent_kernel:0", "bias:0"]),
    row(L.RNN, lambda: {"cell": L.SimpleRNNCell(3)}, (2, 4, 2), _cell("simple_rnn_cell", "rnn/"), float64=NO_FLOAT64),
    row(L.RNN, lambda: {"cell": [L.LSTMCell(3), L.GRUCell(2)], "return_sequences": True}, (2, 4, 2),
        _cell("lstm_cell", "rnn/stacked_rnn_cells/") + _cell("gru_cell", "rnn/stacked_rnn_cells/"), id="stacked",
        float64=NO_FLOAT64),
    row(L.SimpleRNNCell, {"units": 3}, (2, 2), _cell("simple_rnn_cell"), states=[(3,)]),
    row(L.GRUCell, {"units": 3}, (2, 2), _cell("gru_cell"), states=[(3,)]),
    row(L.LSTMCell, {"units": 3}, (2, 2), _cell("lstm_cell"), states=[(3,), (3,)]),
    row(L.StackedRNNCells, lambda: {"cells": [L.SimpleRNNCell(3), L.GRUCell(2)]}, (2, 2),
        _cell("simple_rnn_cell", "stacked_rnn_cells/") + _cell("gru_cell", "stacked_rnn_cells/"), states=[(3,), (2,)],
        float64=NO_FLOAT64),
    row(L.ConvLSTM1D, {"filters": 2, "kernel_size": 3}, (2, 3, 6, 2), _cell("conv_lstm1d")),
    row(L.ConvLSTM2D, {"filters": 2, "kernel_size": 3, "padding": "same", "return_sequences": True}, (2, 3, 4, 4, 2),
        _cell("conv_lstm2d")),
    row(L.ConvLSTM3D, {"filters": 2, "kernel_size": 2}, (2, 2, 3, 3, 3, 1), _cell("conv_lstm3d")),
    # a ConvLSTM cell has no symbolic path of its own: tf-keras runs it only inside ConvLSTM*D
    row(L.ConvLSTM1DCell, {"filters": 2, "kernel_size": 3, "padding": "same"}, (2, 5, 2), _cell("conv_lstm1d_cell"),
        states=[(5, 2), (5, 2)], symbolic=False),
    row(L.ConvLSTM2DCell, {"filters": 2, "kernel_size": 3, "padding": "same"}, (2, 4, 4, 2), _cell("conv_lstm2d_cell"),
        states=[(4, 4, 2), (4, 4, 2)], symbolic=False),
    row(L.ConvLSTM3DCell, {"filters": 2, "kernel_size": 1}, (2, 2, 2, 2, 2), _cell("conv_lstm3d_cell"),
        states=[(2, 2, 2, 2), (2, 2, 2, 2)], symbolic=False),
    # -- wrappers ------------------------------------------------------------------------------
    row(L.Bidirectional, lambda: {"layer": L.LSTM(3)}, (2, 4, 2),
        _cell("lstm_cell", "bidirectional/forward_lstm/") + _cell("lstm_cell", "bidirectional/backward_lstm/"),
        float64=NO_FLOAT64),
    row(L.Bidirectional, lambda: {"layer": L.GRU(2, return_sequences=True), "merge_mode": "sum"}, (2, 4, 2),
        _cell("gru_cell", "bidirectional/forward_gru/") + _cell("gru_cell", "bidirectional/backward_gru/"),
        id="sum", float64=NO_FLOAT64),
    row(L.TimeDistributed, lambda: {"layer": L.Dense(3)}, (2, 4, 2), _kernel_bias("time_distributed"), float64=NO_FLOAT64),
    row(L.TimeDistributed, lambda: {"layer": L.Conv2D(2, 2)}, (2, 3, 4, 4, 2), _kernel_bias("time_distributed"),
        id="conv2d", float64=NO_FLOAT64),
]

#: The distinct public layer classes (an alias such as Convolution2D is the same class).
PUBLIC_LAYER_CLASSES = sorted(
    {getattr(L, name) for name in L.__all__
     if inspect.isclass(getattr(L, name)) and issubclass(getattr(L, name), klayers.Layer)},
    key=lambda c: c.__name__,
)


def test_the_tables_are_not_empty():
    # a filter gone wrong must not pass as "every class has a row" over nothing
    assert len(PUBLIC_LAYER_CLASSES) >= 85 and len(TABLE) >= len(PUBLIC_LAYER_CLASSES)


def test_every_public_layer_class_has_a_row():
    covered = {p.values[0] for p in TABLE}
    missing = [c.__name__ for c in PUBLIC_LAYER_CLASSES if c not in covered]
    assert not missing, f"public layer classes without a row in tests/layers/test_layer_api.py TABLE: {missing}"
    unknown = [c.__name__ for c in covered if c not in PUBLIC_LAYER_CLASSES]
    assert not unknown, f"rows for classes that are not public layer classes: {unknown}"


@pytest.mark.parametrize("cls,kwargs,input_shape,weights,options", TABLE)
def test_layer_api(cls, kwargs, input_shape, weights, options):
    run_layer_test(cls, kwargs, input_shape, expected_weights=weights, **options)


# -- run_layer_test can fail: one broken layer per check -----------------------------------------
class Scale(klayers.Layer):
    """A correct user layer: y = x * w over the last axis."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight("w", shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.w.value * self.factor

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return dict(super().get_config(), factor=self.factor)


class ConfigDrifts(Scale):
    def get_config(self):
        return dict(super().get_config(), factor=self.factor * 2)


class ShapeLies(Scale):
    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (1,)


class HiddenState(Scale):
    """Draws a constant at build that is no weight: a rebuilt layer given the weights differs."""

    def build(self, input_shape):
        super().build(input_shape)
        self.noise = np.random.default_rng().standard_normal(input_shape[-1]).astype(self.dtype)

    def call(self, inputs):
        return super().call(inputs) + self.noise


class AlwaysFloat32(Scale):
    def call(self, inputs):
        return super().call(inputs).astype("float32")


CUSTOM = {c.__name__: c for c in (Scale, ConfigDrifts, ShapeLies, HiddenState, AlwaysFloat32)}


def test_a_correct_user_layer_passes():
    run_layer_test(Scale, {"factor": 3.0}, (2, 4), expected_weights=["scale/w:0"], custom_objects=CUSTOM)


@pytest.mark.parametrize("cls,weights,options,match", [
    (ConfigDrifts, ["config_drifts/w:0"], {}, "changed the config"),
    (Scale, ["scale/kernel:0"], {}, "weights"),
    (ShapeLies, ["shape_lies/w:0"], {}, "compute_output_shape"),
    (HiddenState, ["hidden_state/w:0"], {}, "float64 vs float32"),
    (HiddenState, ["hidden_state/w:0"], {"float64": False}, "rebuilt layer"),
    (AlwaysFloat32, ["always_float32/w:0"], {}, "float64 layer gave float32"),
], ids=["config", "weight-names", "output-shape", "float64-values", "rebuilt-layer", "float64-dtype"])
def test_run_layer_test_fails_on_a_broken_layer(cls, weights, options, match):
    with pytest.raises(AssertionError, match=match):
        run_layer_test(cls, {}, (2, 4), expected_weights=weights, custom_objects=CUSTOM, **options)
