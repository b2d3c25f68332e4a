"""Hostile inputs for every public layer: the float32 answer or a clear error naming the layer.

Every layer class in ``klayers.layers.__all__`` has a row in :data:`TABLE` (a small valid layer
and the shape of one sample); ``test_every_layer_class_has_a_row`` fails when a new class lands
without one. Each row is called with wrong ranks, wrong channel counts, windows larger than the
input, empty batches, every NumPy dtype kind and memory layout (non-contiguous, Fortran-ordered,
read-only, memory-mapped, broadcast), NaN and Inf. The rule (issue 10): the same answer as the
contiguous float32 path, or a ``TypeError`` / ``ValueError`` whose message names the layer;
never another exception, a crash or a silently different answer.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import klayers
from klayers import layers as L
from tests._fuzz import FUZZ

Shape = Tuple[int, ...]


class Row:
    """One layer to fuzz: ``make()`` builds it; ``shape`` is one sample's shape (a list of
    shapes for a layer taking a list); ``call(layer, x)`` calls it (default ``layer(x)``);
    ``window``: the spatial axes (of ``shape``) that a window slides over, with the window size;
    ``ints``: the input is indices in ``[0, ints)``; ``channel_axis`` of the sample shape
    (None: the layer takes any size there); ``out_shape``: one sample's output shape, for a cell
    called with its states (a cell has no ``compute_output_shape`` of its own)."""

    def __init__(self, make: Callable[[], Any], shape: Any, call: Optional[Callable] = None,
                 window: Optional[Dict[int, int]] = None, ints: Optional[int] = None,
                 channel_axis: Optional[int] = -1, any_rank: bool = False, training_noise: bool = False,
                 out_shape: Optional[Shape] = None):
        self.make = make
        self.out_shape = out_shape
        self.shape = shape
        self.call = call or (lambda layer, x: layer(x))
        self.window = window or {}
        self.ints = ints
        self.channel_axis = channel_axis
        self.any_rank = any_rank


def _cell_call(n_states: int, units: int, spatial: Shape = ()):
    def call(layer, x):
        b = len(x)
        states = [np.zeros((b,) + spatial + (units,), "float32") for _ in range(n_states)]
        out = layer(x, states)
        return out[0] if isinstance(out, (list, tuple)) else out
    return call


def _stacked_call(layer, x):
    b = len(x)
    out = layer(x, [np.zeros((b, 3), "float32"), np.zeros((b, 2), "float32")])
    return out[0]


def _double(x):
    return x * 2.0


R = Row
TABLE: Dict[str, List[Row]] = {
    # core
    "Activation": [R(lambda: L.Activation("tanh"), (5,), any_rank=True, channel_axis=None)],
    "ActivityRegularization": [R(lambda: L.ActivityRegularization(l1=0.1), (5,), any_rank=True, channel_axis=None)],
    "Dense": [R(lambda: L.Dense(3), (4,)), R(lambda: L.Dense(3, activation="relu"), (2, 4))],
    "EinsumDense": [R(lambda: L.EinsumDense("abc,cd->abd", (None, 3), bias_axes="d"), (4, 5)),
                    R(lambda: L.EinsumDense("...b,bc->...c", 3, activation="relu"), (2, 4))],
    "MultiHeadAttention": [R(lambda: L.MultiHeadAttention(2, 3), (4, 6), call=lambda layer, x: layer(x, x))],
    "Attention": [R(lambda: L.Attention(), [(3, 4), (5, 4)]),
                  R(lambda: L.Attention(use_scale=True, score_mode="concat"), [(3, 4), (5, 2), (5, 4)])],
    "AdditiveAttention": [R(lambda: L.AdditiveAttention(), [(3, 4), (5, 4)])],
    "GroupQueryAttention": [R(lambda: L.GroupQueryAttention(2, 4, 2), (4, 6), call=lambda layer, x: layer(x, x))],
    "Dropout": [R(lambda: L.Dropout(0.5), (5,), any_rank=True, channel_axis=None)],
    "Flatten": [R(lambda: L.Flatten(), (3, 2), any_rank=True, channel_axis=None)],
    "Lambda": [R(lambda: L.Lambda(_double), (4,), any_rank=True, channel_axis=None)],
    "Masking": [R(lambda: L.Masking(0.0), (3, 4), channel_axis=None)],
    "Permute": [R(lambda: L.Permute((2, 1)), (3, 4), channel_axis=None)],
    "RepeatVector": [R(lambda: L.RepeatVector(3), (4,), channel_axis=None)],
    "Reshape": [R(lambda: L.Reshape((4, 2)), (8,), channel_axis=None)],
    "SpatialDropout1D": [R(lambda: L.SpatialDropout1D(0.5), (3, 4), channel_axis=None)],
    "SpatialDropout2D": [R(lambda: L.SpatialDropout2D(0.5), (3, 3, 2), channel_axis=None)],
    "SpatialDropout3D": [R(lambda: L.SpatialDropout3D(0.5), (2, 3, 3, 2), channel_axis=None)],
    "InputLayer": [R(lambda: L.InputLayer(input_shape=(4,)), (4,), channel_axis=None)],
    "Layer": [R(lambda: L.Layer(), (4,), any_rank=True, channel_axis=None)],
    "Identity": [R(lambda: L.Identity(), (4,), any_rank=True, channel_axis=None)],
    # embeddings
    "Embedding": [R(lambda: L.Embedding(10, 3), (5,), ints=10, channel_axis=None, any_rank=True),
                  R(lambda: L.Embedding(10, 3, mask_zero=True, input_length=5), (5,), ints=10, channel_axis=None)],
    # merge
    **{name: [R(lambda name=name: getattr(L, name)(), [(4,), (4,)])]
       for name in ("Add", "Average", "Maximum", "Minimum", "Multiply", "Subtract")},
    "Concatenate": [R(lambda: L.Concatenate(), [(2, 4), (2, 3)], channel_axis=None)],
    "Dot": [R(lambda: L.Dot(axes=1), [(4,), (4,)]), R(lambda: L.Dot(axes=(2, 2), normalize=True), [(2, 4), (3, 4)])],
    # activation
    "ELU": [R(lambda: L.ELU(), (5,), any_rank=True, channel_axis=None)],
    "LeakyReLU": [R(lambda: L.LeakyReLU(0.1), (5,), any_rank=True, channel_axis=None)],
    "PReLU": [R(lambda: L.PReLU(), (3, 4)), R(lambda: L.PReLU(shared_axes=[1]), (3, 4))],
    "ReLU": [R(lambda: L.ReLU(max_value=6.0, threshold=0.1), (5,), any_rank=True, channel_axis=None)],
    "Softmax": [R(lambda: L.Softmax(), (5,), any_rank=True, channel_axis=None),
                R(lambda: L.Softmax(axis=1), (3, 4), channel_axis=None)],
    "ThresholdedReLU": [R(lambda: L.ThresholdedReLU(0.5), (5,), any_rank=True, channel_axis=None)],
    # normalization
    "BatchNormalization": [R(lambda: L.BatchNormalization(), (3, 4)),
                           R(lambda: L.BatchNormalization(axis=1), (4, 3), channel_axis=0)],
    "LayerNormalization": [R(lambda: L.LayerNormalization(), (3, 4)),
                           R(lambda: L.LayerNormalization(axis=[1, 2]), (3, 4))],
    "Normalization": [R(lambda: L.Normalization(mean=[0.5, 1, 2, 3], variance=[1, 2, 3, 4]), (4,))],
    "Rescaling": [R(lambda: L.Rescaling(0.5, offset=1.0), (5,), any_rank=True, channel_axis=None)],
    "GroupNormalization": [R(lambda: L.GroupNormalization(2), (3, 4)),
                           R(lambda: L.GroupNormalization(-1, axis=1), (4, 3), channel_axis=0)],
    "UnitNormalization": [R(lambda: L.UnitNormalization(), (3, 4), any_rank=True, channel_axis=None)],
    "RMSNormalization": [R(lambda: L.RMSNormalization(), (3, 4))],
    "SyncBatchNormalization": [R(lambda: L.SyncBatchNormalization(), (3, 4))],
    "SpectralNormalization": [R(lambda: L.SpectralNormalization(L.Dense(3)), (4,)),
                              R(lambda: L.SpectralNormalization(L.Conv2D(2, 2)), (3, 3, 2), window={0: 2, 1: 2})],
    # noise
    "AlphaDropout": [R(lambda: L.AlphaDropout(0.5), (5,), any_rank=True, channel_axis=None)],
    "GaussianDropout": [R(lambda: L.GaussianDropout(0.5), (5,), any_rank=True, channel_axis=None)],
    "GaussianNoise": [R(lambda: L.GaussianNoise(0.5), (5,), any_rank=True, channel_axis=None)],
    # convolutional
    "Conv1D": [R(lambda: L.Conv1D(2, 3), (6, 3), window={0: 3}),
               R(lambda: L.Conv1D(4, 2, padding="causal", dilation_rate=2, groups=2), (6, 2), window={})],
    "Conv2D": [R(lambda: L.Conv2D(2, 3), (5, 5, 3), window={0: 3, 1: 3}),
               R(lambda: L.Conv2D(2, (1, 2), strides=2, padding="same", data_format="channels_first"), (3, 4, 5),
                 channel_axis=0)],
    "Conv3D": [R(lambda: L.Conv3D(2, 2), (3, 3, 3, 2), window={0: 2, 1: 2, 2: 2})],
    "SeparableConv1D": [R(lambda: L.SeparableConv1D(2, 3), (6, 3), window={0: 3})],
    "SeparableConv2D": [R(lambda: L.SeparableConv2D(2, 3, depth_multiplier=2), (5, 5, 3), window={0: 3, 1: 3})],
    "DepthwiseConv1D": [R(lambda: L.DepthwiseConv1D(3), (6, 3), window={0: 3})],
    "DepthwiseConv2D": [R(lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (5, 5, 3), window={0: 3, 1: 3}),
                        R(lambda: L.DepthwiseConv2D(3, data_format="channels_first", padding="same"), (3, 5, 5),
                          channel_axis=0)],
    "DepthwiseConv3D": [R(lambda: L.DepthwiseConv3D(2), (3, 3, 3, 2), window={0: 2, 1: 2, 2: 2})],
    "Conv1DTranspose": [R(lambda: L.Conv1DTranspose(2, 3, strides=2), (4, 3))],
    "Conv2DTranspose": [R(lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same"), (3, 3, 2))],
    "Conv3DTranspose": [R(lambda: L.Conv3DTranspose(2, 2), (2, 2, 2, 2))],
    # pooling
    **{f"{kind}Pooling{r}D": [R(lambda kind=kind, r=r: getattr(L, f"{kind}Pooling{r}D")(2),
                                (5,) * r + (2,), window={i: 2 for i in range(r)}, channel_axis=None)]
       for kind in ("Max", "Average") for r in (1, 2, 3)},
    **{f"Global{kind}Pooling{r}D": [R(lambda kind=kind, r=r: getattr(L, f"Global{kind}Pooling{r}D")(),
                                      (3,) * r + (2,), channel_axis=None)]
       for kind in ("Max", "Average") for r in (1, 2, 3)},
    **{f"Adaptive{kind}Pooling{r}D": [R(lambda kind=kind, r=r: getattr(L, f"Adaptive{kind}Pooling{r}D")(2),
                                        (5,) * r + (2,), channel_axis=None)]
       for kind in ("Max", "Average") for r in (1, 2, 3)},
    # local
    "LocallyConnected1D": [R(lambda: L.LocallyConnected1D(2, 3), (6, 3), window={0: 3}),
                           R(lambda: L.LocallyConnected1D(2, 2, implementation=2), (5, 3), window={0: 2})],
    "LocallyConnected2D": [R(lambda: L.LocallyConnected2D(2, 3), (5, 5, 2), window={0: 3, 1: 3}),
                           R(lambda: L.LocallyConnected2D(2, 2, implementation=3), (4, 4, 2), window={0: 2, 1: 2})],
    # reshaping
    "Cropping1D": [R(lambda: L.Cropping1D(1), (5, 2), channel_axis=None, window={0: 3})],
    "Cropping2D": [R(lambda: L.Cropping2D(1), (5, 5, 2), channel_axis=None, window={0: 3, 1: 3})],
    "Cropping3D": [R(lambda: L.Cropping3D(1), (4, 4, 4, 2), channel_axis=None, window={0: 3, 1: 3, 2: 3})],
    "ZeroPadding1D": [R(lambda: L.ZeroPadding1D(1), (3, 2), channel_axis=None)],
    "ZeroPadding2D": [R(lambda: L.ZeroPadding2D(1), (3, 3, 2), channel_axis=None)],
    "ZeroPadding3D": [R(lambda: L.ZeroPadding3D(1), (2, 2, 2, 2), channel_axis=None)],
    "UpSampling1D": [R(lambda: L.UpSampling1D(2), (3, 2), channel_axis=None)],
    "UpSampling2D": [R(lambda: L.UpSampling2D(2), (3, 3, 2), channel_axis=None),
                     R(lambda: L.UpSampling2D(2, interpolation="bilinear"), (3, 3, 2), channel_axis=None)],
    "UpSampling3D": [R(lambda: L.UpSampling3D(2), (2, 2, 2, 2), channel_axis=None)],
    # recurrent
    "SimpleRNN": [R(lambda: L.SimpleRNN(3), (4, 2)), R(lambda: L.SimpleRNN(3, return_sequences=True, go_backwards=True), (4, 2))],
    "GRU": [R(lambda: L.GRU(3), (4, 2)), R(lambda: L.GRU(3, reset_after=False, return_sequences=True), (4, 2))],
    "LSTM": [R(lambda: L.LSTM(3), (4, 2)), R(lambda: L.LSTM(3, return_sequences=True, unroll=True), (4, 2))],
    "CuDNNGRU": [R(lambda: L.CuDNNGRU(3), (4, 2))],
    "CuDNNLSTM": [R(lambda: L.CuDNNLSTM(3), (4, 2))],
    "RNN": [R(lambda: L.RNN(L.SimpleRNNCell(3)), (4, 2)),
            R(lambda: L.RNN([L.LSTMCell(3), L.GRUCell(2)], return_sequences=True), (4, 2))],
    "SimpleRNNCell": [R(lambda: L.SimpleRNNCell(3), (2,), call=_cell_call(1, 3), out_shape=(3,))],
    "GRUCell": [R(lambda: L.GRUCell(3), (2,), call=_cell_call(1, 3), out_shape=(3,))],
    "LSTMCell": [R(lambda: L.LSTMCell(3), (2,), call=_cell_call(2, 3), out_shape=(3,))],
    "StackedRNNCells": [R(lambda: L.StackedRNNCells([L.SimpleRNNCell(3), L.SimpleRNNCell(2)]), (2,),
                          call=_stacked_call, out_shape=(2,))],
    # recurrent_conv
    "ConvLSTM1D": [R(lambda: L.ConvLSTM1D(2, 3), (3, 6, 2), window={1: 3})],
    "ConvLSTM2D": [R(lambda: L.ConvLSTM2D(2, 3, padding="same", return_sequences=True), (3, 4, 4, 2))],
    "ConvLSTM3D": [R(lambda: L.ConvLSTM3D(2, 2), (2, 3, 3, 3, 1), window={1: 2, 2: 2, 3: 2})],
    "ConvLSTM1DCell": [R(lambda: L.ConvLSTM1DCell(2, 3, padding="same"), (5, 2), call=_cell_call(2, 2, (5,)),
                         out_shape=(5, 2))],
    "ConvLSTM2DCell": [R(lambda: L.ConvLSTM2DCell(2, 3, padding="same"), (4, 4, 2), call=_cell_call(2, 2, (4, 4)),
                         out_shape=(4, 4, 2))],
    "ConvLSTM3DCell": [R(lambda: L.ConvLSTM3DCell(2, 1), (2, 2, 2, 2), call=_cell_call(2, 2, (2, 2, 2)),
                         out_shape=(2, 2, 2, 2))],
    # wrappers
    "Bidirectional": [R(lambda: L.Bidirectional(L.LSTM(3)), (4, 2)),
                      R(lambda: L.Bidirectional(L.GRU(2, return_sequences=True), merge_mode="sum"), (4, 2))],
    "TimeDistributed": [R(lambda: L.TimeDistributed(L.Dense(3)), (4, 2)),
                        R(lambda: L.TimeDistributed(L.Conv2D(2, 2)), (3, 4, 4, 2), window={1: 2, 2: 2})],
}

LAYER_CLASSES = sorted(
    name for name in L.__all__
    if inspect.isclass(getattr(L, name)) and issubclass(getattr(L, name), klayers.Layer)
)


def _row_for(name: str) -> Optional[List[Row]]:
    if name in TABLE:
        return TABLE[name]
    cls = getattr(L, name)
    for other, rows in TABLE.items():  # an alias (Convolution2D, MaxPool2D ...) shares its class's row
        if getattr(L, other) is cls:
            return rows
    return None


ROWS = [pytest.param(name, i, id=f"{name}-{i}") for name in sorted(TABLE) for i in range(len(TABLE[name]))]


def _rows_where(keep: Callable[[str, Row], bool]) -> list:
    return [p for p in ROWS if keep(p.values[0], TABLE[p.values[0]][p.values[1]])]


#: the rows each narrower test takes (a filter gone wrong must fail, not shrink a test to nothing)
CHANNEL_ROWS = _rows_where(lambda name, row: row.channel_axis is not None)
WINDOW_ROWS = _rows_where(lambda name, row: bool(row.window))
FLOAT_ROWS = _rows_where(lambda name, row: row.ints is None)
MODEL_ROWS = _rows_where(lambda name, row: not name.endswith(("Cell", "Cells")))


#: Bugs found by this suite in files other engineers own, reported to the lead: strict xfails,
#: so the fix turns them into failures that ask for the entry to be removed.
KNOWN_BUGS: dict = {}


def _known_bug(request, test: str, name: str) -> None:
    reason = KNOWN_BUGS.get((test, name))
    if reason:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def test_the_tables_are_not_empty():
    assert len(LAYER_CLASSES) >= 100 and len(ROWS) >= len(TABLE) >= 85
    assert len(CHANNEL_ROWS) >= 40 and len(WINDOW_ROWS) >= 20 and len(MODEL_ROWS) >= len(ROWS) - 10
    assert len(FLOAT_ROWS) == len(ROWS) - 2  # the two Embedding rows take indices
    assert {p.values[0] for p in ELEMENTWISE_ROWS} == ELEMENTWISE, "ELEMENTWISE names a layer without a row"


def test_every_layer_class_has_a_row():
    missing = [name for name in LAYER_CLASSES if _row_for(name) is None]
    assert not missing, f"layer classes without a row in tests/layers/test_fuzz_inputs.py TABLE: {missing}"
    unknown = [name for name in TABLE if name not in LAYER_CLASSES]
    assert not unknown, f"rows for names that are not public layer classes: {unknown}"


# -- inputs --------------------------------------------------------------------------------------
def _sample(row: Row, batch: int = 2, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    shapes = row.shape if isinstance(row.shape, list) else [row.shape]
    if row.ints is not None:
        xs = [rng.integers(0, row.ints, size=(batch,) + s).astype("int64") for s in shapes]
    else:
        xs = [rng.standard_normal((batch,) + s).astype("float32") for s in shapes]
    return xs if isinstance(row.shape, list) else xs[0]


def _map(fn: Callable[[np.ndarray], Any], x: Any, multi: Optional[bool] = None) -> Any:
    """``fn`` on each input of a multi-input layer (a list of arrays), else on ``x``."""
    multi = isinstance(x, list) if multi is None else multi
    return [fn(a) for a in x] if multi else fn(x)


def _layer(name: str, i: int) -> Tuple[Row, Any, Any, Any]:
    """The row, a fresh layer, a float32 sample and its output (the reference answer)."""
    row = TABLE[name][i]
    klayers.backend.clear_session()
    layer = row.make()
    x = _sample(row)
    y = row.call(layer, x)
    return row, layer, x, y


def _assert_names_layer(err: BaseException, layer: Any) -> None:
    msg = str(err)
    assert layer.name in msg or type(layer).__name__ in msg, (
        f"the error does not name the layer ({layer.name}): {type(err).__name__}: {msg}")


def _call_or_clear_error(row: Row, layer: Any, x: Any) -> Tuple[Any, Optional[BaseException]]:
    """(output, None) or (None, error); any error other than a TypeError / ValueError naming
    the layer fails the test."""
    try:
        return row.call(layer, x), None
    except (TypeError, ValueError) as e:
        _assert_names_layer(e, layer)
        return None, e


def _assert_same(got: Any, want: Any, what: str) -> None:
    got_l = got if isinstance(got, (list, tuple)) else [got]
    want_l = want if isinstance(want, (list, tuple)) else [want]
    assert len(got_l) == len(want_l), what
    for g, w in zip(got_l, want_l):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{what}: NaN positions differ")
        np.testing.assert_allclose(g.astype("float64"), w.astype("float64"), rtol=1e-5, atol=1e-5,
                                   equal_nan=True, err_msg=what)


# -- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, i", ROWS)
def test_valid_call_matches_its_output_shape(name, i):
    """A valid float32 call gives finite arrays of the shapes ``compute_output_shape`` promises
    for the symbolic input shape (batch unknown); a cell, called with its states, gives the
    row's ``out_shape``."""
    row, layer, x, y = _layer(name, i)
    outs = y if isinstance(y, list) else [y]
    if row.out_shape is not None:
        expected = [(None,) + tuple(row.out_shape)]
    else:
        shapes = row.shape if isinstance(row.shape, list) else [row.shape]
        symbolic = [(None,) + tuple(s) for s in shapes]
        promised = layer.compute_output_shape(symbolic if isinstance(row.shape, list) else symbolic[0])
        several = isinstance(promised, list) and all(isinstance(p, (list, tuple)) for p in promised)
        expected = [tuple(p) for p in promised] if several else [tuple(promised)]
    assert len(outs) == len(expected), f"{len(outs)} outputs, compute_output_shape promises {expected}"
    for out, shape in zip(outs, expected):
        assert isinstance(out, np.ndarray)
        assert len(out.shape) == len(shape) and out.shape[0] == 2, f"output {out.shape}, promised {shape}"
        for got, want in zip(out.shape[1:], shape[1:]):
            assert want is None or got == want, f"output {out.shape}, compute_output_shape {shape}"
        assert np.all(np.isfinite(out)) if out.dtype.kind == "f" else True


LAYOUTS = ["float64", "float16", "int32", "bool", "non_contiguous", "fortran", "read_only",
           "memmap", "broadcast", "list"]


def _relayout(a: np.ndarray, layout: str, tmp_path) -> Any:
    if layout in ("float64", "float16", "int32", "bool"):
        return a.astype(layout)
    if layout == "non_contiguous":
        big = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype) if a.ndim else a
        big[..., ::2] = a
        out = big[..., ::2]
        assert not out.flags.c_contiguous or a.shape[-1] == 1 or a.size == 0
        return out
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "read_only":
        out = a.copy()
        out.setflags(write=False)
        return out
    if layout == "memmap":
        path = tmp_path / f"x{np.random.default_rng().integers(1 << 30)}.dat"
        m = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
        m[...] = a
        m.flush()
        return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)
    if layout == "broadcast":
        return np.broadcast_to(a[:1], a.shape)  # zero stride on the batch axis
    if layout == "list":
        return a.tolist()
    raise AssertionError(layout)


def _as_reference(v: Any, row: Row) -> Any:
    """What the contiguous path gets for a re-laid-out input: the same values, contiguous, in
    float32 (indices stay integers)."""
    a = np.asarray(v)
    if row.ints is not None:
        return np.ascontiguousarray(a.astype("int64"))
    return np.ascontiguousarray(a, dtype="float32")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name, i", ROWS)
def test_dtypes_and_layouts_give_the_float32_answer(name, i, layout, tmp_path):
    row, layer, x, _ = _layer(name, i)
    v = _map(lambda a: _relayout(a, layout, tmp_path), x)
    if layout == "broadcast":
        x = _map(lambda a: np.ascontiguousarray(np.broadcast_to(a[:1], a.shape)), x)
    got, err = _call_or_clear_error(row, layer, v)
    if err is not None:
        # a nested Python list is a structure of inputs to Keras too: refused, naming the layer
        assert layout == "list", f"{layout} input refused: {err}"
        return
    want = row.call(layer, _map(lambda a: _as_reference(a, row), v, multi=isinstance(row.shape, list)))
    _assert_same(got, want, f"{name} with {layout} input")


@pytest.mark.parametrize("dtype", ["complex64", "object", "str", "datetime64[s]"])
@pytest.mark.parametrize("name, i", ROWS)
def test_non_numeric_inputs_are_refused_naming_the_layer(name, i, dtype):
    row, layer, x, _ = _layer(name, i)
    if dtype == "object":
        v = _map(lambda a: a.astype(object), x)
    elif dtype == "str":
        v = _map(lambda a: a.astype(str), x)
    else:
        v = _map(lambda a: a.astype(dtype), x)
    with pytest.raises((TypeError, ValueError)) as info:
        row.call(layer, v)
    _assert_names_layer(info.value, layer)


@pytest.mark.parametrize("name, i", ROWS)
def test_empty_batch_gives_an_empty_batch_of_the_right_shape(name, i, request):
    _known_bug(request, "empty_batch", name)
    row, layer, x, y = _layer(name, i)
    empty = _map(lambda a: a[:0], x)
    got = row.call(layer, empty)
    want_l = y if isinstance(y, (list, tuple)) else [y]
    got_l = got if isinstance(got, (list, tuple)) else [got]
    for g, w in zip(got_l, want_l):
        assert g.shape == (0,) + w.shape[1:], f"{name}: empty batch gave shape {g.shape}, want {(0,) + w.shape[1:]}"


@pytest.mark.parametrize("delta", [-1, 1, 2])
@pytest.mark.parametrize("name, i", ROWS)
def test_wrong_rank_is_an_answer_or_a_clear_error(name, i, delta):
    row, layer, x, _ = _layer(name, i)
    if delta < 0:
        bad = _map(lambda a: a.reshape(a.shape[:-2] + (a.shape[-2] * a.shape[-1],)) if a.ndim > 1 else a.reshape(-1), x)
    else:
        bad = _map(lambda a: a.reshape(a.shape + (1,) * delta), x)
    got, err = _call_or_clear_error(row, layer, bad)
    if err is None and not row.any_rank and row.ints is None:
        # accepted: then it must be what compute_output_shape promises
        shapes = _map(lambda a: a.shape, bad)
        want = layer.compute_output_shape(shapes)
        got_l = got if isinstance(got, (list, tuple)) else [got]
        want_l = want if isinstance(want, list) else [want]
        for g, w in zip(got_l, want_l):
            assert len(g.shape) == len(w), f"{name}: rank-{delta:+d} input gave {g.shape}, compute_output_shape {w}"


@pytest.mark.parametrize("name, i", CHANNEL_ROWS)
def test_wrong_channel_count_is_refused_naming_the_layer(name, i):
    row, layer, x, _ = _layer(name, i)
    ax = row.channel_axis

    def grow(a):
        axis = ax + 1 if ax >= 0 else a.ndim + ax
        return np.concatenate([a, a.take([0], axis=axis)], axis=axis)

    bad = _map(grow, x) if not isinstance(x, list) else [grow(x[0])] + x[1:]
    with pytest.raises((TypeError, ValueError)) as info:
        row.call(layer, bad)
    _assert_names_layer(info.value, layer)


@pytest.mark.parametrize("name, i", WINDOW_ROWS)
def test_input_smaller_than_the_window_is_refused_naming_the_layer(name, i):
    row, _, x, _ = _layer(name, i)
    layer = row.make()  # fresh: the small input is its first call (build from it)
    index = tuple(slice(0, 1) if (d - 1) in row.window else slice(None) for d in range(x.ndim))
    small = np.ascontiguousarray(x[index])
    got, err = _call_or_clear_error(row, layer, small)
    assert err is not None, f"{name}: a {small.shape} input, smaller than the window, gave {getattr(got, 'shape', got)}"


@pytest.mark.parametrize("name, i", FLOAT_ROWS)
def test_nan_and_inf_inputs_give_an_answer_of_the_right_shape(name, i):
    row, layer, x, y = _layer(name, i)

    def poison(a):
        a = a.copy()
        flat = a.reshape(-1)
        flat[0], flat[len(flat) // 2], flat[-1] = np.nan, np.inf, -np.inf
        return a

    got = row.call(layer, _map(poison, x))
    for g, w in zip(got if isinstance(got, list) else [got], y if isinstance(y, list) else [y]):
        assert g.shape == w.shape and g.dtype == w.dtype


ELEMENTWISE = {"Activation", "ActivityRegularization", "Dropout", "ELU", "LeakyReLU", "ReLU", "Rescaling",
               "ThresholdedReLU", "AlphaDropout", "GaussianDropout", "GaussianNoise", "Layer", "Lambda",
               "PReLU", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "Normalization",
               "BatchNormalization"}
ELEMENTWISE_ROWS = [p for p in ROWS if p.values[0] in ELEMENTWISE]


@pytest.mark.parametrize("name, i", ELEMENTWISE_ROWS)
def test_nan_input_stays_nan_through_elementwise_layers(name, i):
    """Where a layer's output element depends on exactly one input element (activations,
    scaling, reshaping), NumPy math puts NaN exactly where the input had it."""
    row, layer, x, y = _layer(name, i)
    a = x.copy()
    a.reshape(-1)[::3] = np.nan
    got = row.call(layer, a)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(a), err_msg=f"{name}: NaN positions")




# -- Embedding indices ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [10, 11, 2**31, 2**62, -1, -(2**40), "nan", "inf", "-inf", 1e30, "uint64max"])
def test_embedding_refuses_bad_indices_naming_the_layer(bad):
    layer = L.Embedding(10, 3, name="emb_fuzz")
    x = np.array([[1, 2, 3]], dtype="int64")
    layer(x)
    if bad == "uint64max":
        x = np.array([[1, np.iinfo(np.uint64).max, 3]], dtype="uint64")
    elif isinstance(bad, str):
        x = np.array([[1.0, float(bad), 3.0]], dtype="float32")
    elif isinstance(bad, float):
        x = np.array([[1.0, bad, 3.0]], dtype="float32")
    else:
        x = np.array([[1, bad, 3]], dtype="int64")
    with pytest.raises(ValueError, match="emb_fuzz"):
        layer(x)


def test_embedding_truncates_fractional_float_indices_as_tf_keras():
    layer = L.Embedding(10, 3)
    out = layer(np.array([[3.5, 0.9, 9.99]], dtype="float32"))
    np.testing.assert_array_equal(out[0], layer.embeddings.value[[3, 0, 9]])


@FUZZ
@given(data=st.data())
def test_embedding_any_index_array_gives_rows_or_a_clear_error(data):
    dtype = data.draw(st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint32", "uint64",
                                       "float16", "float32", "float64", "bool"]))
    shape = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple))
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    lo, hi = (int(info.min), int(info.max)) if info else (-20, 20)
    values = data.draw(st.lists(st.integers(lo, hi), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    x = np.array(values, dtype="float64" if info is None else dtype).reshape(shape).astype(dtype)
    layer = L.Embedding(10, 3, name="emb_h")
    try:
        out = layer(x)
    except ValueError as e:
        assert "emb_h" in str(e)
        assert not np.all((x >= 0) & (x < 10)) or x.dtype.kind == "f" and not np.all(x == np.round(x)), e
        return
    assert out.shape == shape + (3,)
    idx = x.astype("int64")
    assert np.all((idx >= 0) & (idx < 10))
    np.testing.assert_array_equal(out, layer.embeddings.value[idx])


# -- property-based: random rows, batch sizes and layouts -----------------------------------------
@FUZZ
@given(data=st.data())
def test_random_rows_batches_and_layouts(data, tmp_path_factory):
    name, i = data.draw(st.sampled_from([tuple(p.values) for p in ROWS]))
    row = TABLE[name][i]
    klayers.backend.clear_session()
    layer = row.make()
    batch = data.draw(st.integers(0, 5))
    x = _sample(row, batch=batch, seed=data.draw(st.integers(0, 2**16)))
    base = row.call(layer, x) if batch else None
    layout = data.draw(st.sampled_from(["float64", "non_contiguous", "fortran", "read_only", "broadcast"]))
    if batch == 0 and layout == "broadcast":
        return
    v = _map(lambda a: _relayout(a, layout, tmp_path_factory.mktemp("mm")), x)
    got = row.call(layer, v)
    want = row.call(layer, _map(lambda a: _as_reference(a, row), v))
    _assert_same(got, want, f"{name}-{i} batch {batch} {layout}")
    if base is not None and layout != "broadcast":
        _assert_same(got, base, f"{name}-{i} batch {batch} {layout} vs contiguous float32")


@pytest.mark.parametrize("name, i", MODEL_ROWS)
def test_model_wrapping_accepts_the_same_inputs(name, i, request):
    """The layer inside a functional model: the empty batch and a Fortran-ordered input."""
    _known_bug(request, "empty_batch", name)
    row = TABLE[name][i]
    klayers.backend.clear_session()
    layer = row.make()
    shapes = row.shape if isinstance(row.shape, list) else [row.shape]
    dtype = "int64" if row.ints is not None else "float32"
    inputs = [klayers.Input(s, dtype=dtype) for s in shapes]
    out = row.call(layer, inputs if isinstance(row.shape, list) else inputs[0])  # cells have no model rows
    model = klayers.Model(inputs, out)
    x = _sample(row)
    y = model(x)
    xf = _map(np.asfortranarray, x)
    _assert_same(model(xf), y, f"{name} in a model, Fortran input")
    got = model.predict(_map(lambda a: a[:0], x), verbose=0)
    for g, w in zip(got if isinstance(got, list) else [got], y if isinstance(y, list) else [y]):
        assert g.shape == (0,) + w.shape[1:]
