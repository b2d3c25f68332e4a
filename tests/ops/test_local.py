"""The compiled locally-connected kernel against its NumPy twin: both dtypes, 1 and 2 threads,
both data formats, "valid" and "same" windows, several row blocks, fused activations."""

import itertools

import numpy as np
import pytest

import klayers
from klayers._ext import local as _local
from klayers.ops import local as L

# spatial input, cin, kernel_size, strides, padding, filters
GEOMS = [
    ((10,), 3, (3,), (1,), "valid", 4),
    ((11,), 2, (4,), (3,), "same", 3),
    ((1,), 3, (1,), (1,), "valid", 2),
    ((9,), 2, (2,), (3,), "valid", 5),  # stride larger than the window: skipped inputs
    ((7, 8), 3, (3, 2), (2, 1), "valid", 4),
    ((5, 6), 2, (2, 4), (1, 3), "same", 3),
    ((6, 5), 4, (3, 3), (2, 2), "same", 5),
    ((3, 3), 1, (3, 3), (1, 1), "valid", 6),  # a single output position
    ((2, 9), 2, (3, 1), (1, 2), "same", 2),  # windows taller than the input
]
GEOM_IDS = [f"{sp}-c{c}-k{k}-s{s}-{p}-o{o}" for sp, c, k, s, p, o in GEOMS]
ACTS = [(L.ACT_LINEAR, True), (L.ACT_RELU, False), (L.ACT_RELU6, True), (L.ACT_LINEAR, False)]


def _problem(geom, batch, data_format, dtype, seed=0):
    spatial, cin, ks, st, padding, filters = geom
    rng = np.random.default_rng(seed)
    shape = (batch, cin) + spatial if data_format == "channels_first" else (batch,) + spatial + (cin,)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    idx = L.window_index(spatial, ks, st, padding)
    w = rng.standard_normal((idx.shape[0], idx.shape[1] * cin, filters)).astype(dtype)
    b = rng.standard_normal((idx.shape[0], filters)).astype(dtype)
    return x, w, b


def _tol(dtype):
    return 2e-5 if dtype == "float32" else 1e-12


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("blocks", ["one", "many"])
@pytest.mark.parametrize("geom", GEOMS, ids=GEOM_IDS)
def test_local_conv_matches_reference(geom, blocks, data_format, kernel_twin, monkeypatch):
    if blocks == "many":  # one sample per GEMM: many (position, row block) work items
        monkeypatch.setattr(L, "_PATCH_BYTES", 1)
    _, _, ks, st, padding, _ = geom
    for i, batch in enumerate([1, 2, 7]):
        act, use_bias = ACTS[i % len(ACTS)]

        def case(dtype, batch=batch, i=i, use_bias=use_bias, act=act):
            x, w, b = _problem(geom, batch, data_format, dtype, seed=i)
            return (x, w, b if use_bias else None, ks, st, padding, data_format, act), {}

        kernel_twin(L.local_conv, case, tol={"float32": _tol("float32"), "float64": _tol("float64")})


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_threads_do_not_race_and_do_not_change_results(data_format):
    """Each position's product is the same BLAS call whatever thread runs it: bitwise equal."""
    geom = ((12, 13), 8, (3, 3), (1, 2), "same", 16)
    for batch in (1, 3):
        x, w, b = _problem(geom, batch, data_format, "float32")
        args = (x, w, b, (3, 3), (1, 2), "same", data_format, L.ACT_RELU)
        with klayers.num_threads(1):
            one = L.local_conv(*args)
        np.testing.assert_allclose(one, L.local_conv_reference(*args), rtol=2e-5, atol=2e-4)
        with klayers.num_threads(2):
            for _ in range(8):
                np.testing.assert_array_equal(L.local_conv(*args), one)


def test_zero_batch_and_readonly_noncontiguous_inputs():
    geom = ((7, 6), 3, (2, 2), (1, 1), "valid", 4)
    x, w, b = _problem(geom, 4, "channels_last", "float32")
    empty = L.local_conv(x[:0], w, b, (2, 2), (1, 1), "valid", "channels_last")
    assert empty.shape == (0, 6, 5, 4)
    xs = np.asfortranarray(x)[::2]
    xs.setflags(write=False)
    w.setflags(write=False)
    np.testing.assert_allclose(
        L.local_conv(xs, w, b, (2, 2), (1, 1), "valid", "channels_last"),
        L.local_conv_reference(np.ascontiguousarray(xs), w, b, (2, 2), (1, 1), "valid", "channels_last"),
        rtol=2e-5, atol=1e-4,
    )


@pytest.mark.parametrize(
    "x_shape,w_shape,b_shape,match",
    [
        ((2, 10, 3), (8, 6, 4), None, "kernel must have shape"),
        ((2, 10, 3), (7, 9, 4), None, "kernel must have shape"),
        ((2, 10, 3), (8, 9, 4), (8, 5), "bias must have shape"),
        ((2, 10), (8, 9, 4), None, "rank 3"),
        ((2, 2, 3), (8, 9, 4), None, "smaller than the window"),
    ],
)
def test_op_rejects_bad_shapes(x_shape, w_shape, b_shape, match):
    x = np.zeros(x_shape, "float32")
    w = np.zeros(w_shape, "float32")
    b = np.zeros(b_shape, "float32") if b_shape else None
    with pytest.raises(ValueError, match=match):
        L.local_conv(x, w, b, (3,), (1,), "valid", "channels_last", where="LocallyConnected1D lc")


def _local_geometry(**over):
    """LocallyConnected1D(4, 3) on 10 steps of 3 channels, batch 2: the kernel's named geometry."""
    g = dict(batch=2, in_channels=3, out_channels=4, groups=1, channels_first=False, in_size=(1, 1, 10),
             out_size=(1, 1, 8), kernel_size=(1, 1, 3), strides=(1, 1, 1), dilation_rate=(1, 1, 1),
             pad_before=(0, 0, 0))
    g.update(over)
    return g


def test_kernel_checks_shapes_before_releasing_the_gil():
    x = np.zeros((2, 30), "float32")
    w = np.zeros((8, 9, 4), "float32")
    b = np.zeros((8, 4), "float32")
    out = np.zeros((2, 32), "float32")
    geometry = _local_geometry()
    _local.local_forward(x, w, b, out, geometry, True, 0, 2, 1)  # the consistent call works
    with pytest.raises(ValueError, match="input has 58 values"):
        _local.local_forward(np.zeros((2, 29), "float32"), w, b, out, geometry, True, 0, 2, 1)
    with pytest.raises(ValueError, match="shape mismatch"):
        _local.local_forward(x, np.zeros((7, 9, 4), "float32"), b, out, geometry, True, 0, 2, 1)
    with pytest.raises(ValueError, match="output has 62 values"):
        _local.local_forward(x, w, b, np.zeros((2, 31), "float32"), geometry, True, 0, 2, 1)
    with pytest.raises(ValueError, match="bias"):
        _local.local_forward(x, w, np.zeros((8, 3), "float32"), out, geometry, True, 0, 2, 1)
    with pytest.raises(ValueError, match="past the input"):
        _local.local_forward(x, w, b, out, _local_geometry(strides=(1, 1, 2)), True, 0, 2, 1)
    with pytest.raises(ValueError, match="strides"):
        _local.local_forward(x, w, b, out, _local_geometry(strides=(1, 0, 1)), True, 0, 2, 1)
    with pytest.raises(ValueError, match="axis 0"):
        _local.local_forward(x, w, b, out, _local_geometry(in_size=(2, 1, 5)), True, 0, 2, 1)
    with pytest.raises(ValueError, match="dilation_rate 1"):
        _local.local_forward(x, w, b, out, _local_geometry(dilation_rate=(1, 1, 2)), True, 0, 2, 1)
    with pytest.raises(ValueError, match="geometry lacks the field 'strides'"):
        _local.local_forward(x, w, b, out, {k: v for k, v in geometry.items() if k != "strides"}, True, 0, 2, 1)
    with pytest.raises(ValueError, match="does not fuse into the epilogue"):
        _local.local_forward(x, w, b, out, geometry, True, 3, 2, 1)
    with pytest.raises(ValueError):  # mixed dtypes match no fused specialization
        _local.local_forward(x.astype("float64"), w, b, out, geometry, True, 0, 2, 1)


# --- the window arithmetic against a literal port of tf-keras's conv_connected_inputs ----------


def _keras_connected_inputs(input_shape, kernel_shape, output_position, strides, padding):
    ranges = []
    for d in range(len(input_shape)):
        left_shift = int(kernel_shape[d] / 2)
        right_shift = kernel_shape[d] - left_shift
        center = output_position[d] * strides[d]
        if padding == "valid":
            center += left_shift
        ranges.append(range(max(0, center - left_shift), min(input_shape[d], center + right_shift)))
    return ranges


@pytest.mark.parametrize("geom", GEOMS, ids=GEOM_IDS)
def test_window_index_is_tf_keras_connectivity(geom):
    spatial, _, ks, st, padding, _ = geom
    idx = L.window_index(spatial, ks, st, padding)
    out = L.output_spatial(spatial, ks, st, padding)
    assert idx.shape == (int(np.prod(out)), int(np.prod(ks)))
    for p, pos in enumerate(itertools.product(*[range(o) for o in out])):
        want = {int(np.ravel_multi_index(ip, spatial))
                for ip in itertools.product(*_keras_connected_inputs(spatial, ks, pos, st, padding))}
        got = idx[p][idx[p] >= 0]
        assert sorted(got) == sorted(want)



@pytest.mark.parametrize("k,padding,want", [(3, "valid", 0), (3, "same", 1), (4, "same", 2), (1, "same", 0)])
def test_connected_pad_before(k, padding, want):
    from klayers.ops import shapes

    assert shapes.connected_pad_before(k, padding) == want


def test_connected_pad_before_refuses_other_paddings():
    from klayers.ops import shapes

    with pytest.raises(ValueError, match="causal"):
        shapes.connected_pad_before(3, "causal")
