"""Compiled convolution kernels against their NumPy twins: float32 and float64, 1 and 2 threads,
both data formats, ranks 1-3, and the edge cases (1-pixel inputs, kernel equal to the input,
strides larger than the kernel, empty outputs, bad arguments before the GIL is released)."""

import numpy as np
import pytest

import klayers
from klayers._ext import conv as _conv
from klayers.ops import conv as C

ACTS = [C.ACT_LINEAR, C.ACT_RELU, C.ACT_RELU6]
FORMATS = ["channels_last", "channels_first"]

# (id, rank, spatial, kernel, strides, padding, dilation, groups)
CONV = [
    ("1d-valid", 1, (9,), 3, 1, "valid", 1, 1),
    ("1d-causal-dil", 1, (8,), 3, 1, "causal", 2, 1),
    ("1d-same-s2", 1, (11,), 4, 2, "same", 1, 1),
    ("2d-same", 2, (7, 6), 3, 1, "same", 1, 1),
    ("2d-s3-gt-k", 2, (8, 7), 2, 3, "valid", 1, 1),
    ("2d-dil-same", 2, (6, 7), 3, 1, "same", 2, 1),
    ("2d-groups", 2, (5, 5), 3, 1, "same", 1, 2),
    ("2d-1x1", 2, (4, 5), 1, 1, "valid", 1, 1),
    ("2d-1x1-s2", 2, (5, 5), 1, 2, "valid", 1, 1),
    ("2d-1px", 2, (1, 1), 3, 1, "same", 1, 1),
    ("2d-k-eq-in", 2, (3, 4), (3, 4), 1, "valid", 1, 1),
    ("3d-same-s2", 3, (5, 4, 3), 3, 2, "same", 1, 1),
    ("3d-groups", 3, (3, 4, 3), 2, 1, "valid", 1, 4),
]


def _x(rng, n, spatial, c, fmt, dtype):
    shape = (n,) + spatial + (c,) if fmt == "channels_last" else (n, c) + spatial
    return (rng.standard_normal(shape) * 2).astype(dtype)


def _close(got, want, dtype):
    assert got.shape == want.shape and got.dtype == np.dtype(dtype)
    tol = 2e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, float(np.abs(want).max(initial=0))))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CONV, ids=[c[0] for c in CONV])
def test_conv_matches_reference(case, fmt, threads, dtype):
    _, rank, spatial, k, s, pad, d, g = case
    rng = np.random.default_rng(len(case[0]))
    cin, filters = 4, 6 if g != 4 else 8
    x = _x(rng, 2, spatial, cin, fmt, dtype)
    ks = (k,) * rank if isinstance(k, int) else k
    w = rng.standard_normal(ks + (cin // g, filters)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    for act, bias in [(C.ACT_LINEAR, b), (C.ACT_RELU, None), (C.ACT_RELU6, b)]:
        with klayers.num_threads(threads):
            got = C.conv(x, w, bias, s, pad, d, g, fmt, act)
        _close(got, C.conv_reference(x, w, bias, s, pad, d, g, fmt, act), dtype)


DW = [
    ("1d-valid", 1, (9,), 3, 1, "valid", 1, 1),
    ("1d-mult3-s3", 1, (10,), 2, 3, "same", 1, 3),
    ("2d-same", 2, (7, 6), 3, 1, "same", 1, 1),
    ("2d-mult2-dil", 2, (6, 7), 3, 1, "same", 2, 2),
    ("2d-s2-odd", 2, (7, 5), (3, 2), 2, "same", 1, 1),
    ("2d-1px", 2, (1, 1), 3, 1, "same", 1, 2),
    ("3d-s2", 3, (5, 4, 5), 3, 2, "same", 1, 1),
    ("3d-mult2", 3, (3, 4, 3), 2, 1, "valid", 1, 2),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", DW, ids=[c[0] for c in DW])
def test_depthwise_matches_reference(case, fmt, threads, dtype):
    _, rank, spatial, k, s, pad, d, mult = case
    rng = np.random.default_rng(7)
    cin = 5
    x = _x(rng, 2, spatial, cin, fmt, dtype)
    ks = (k,) * rank if isinstance(k, int) else k
    w = rng.standard_normal(ks + (cin, mult)).astype(dtype)
    b = rng.standard_normal(cin * mult).astype(dtype)
    for act, bias in [(C.ACT_LINEAR, b), (C.ACT_RELU6, None)]:
        with klayers.num_threads(threads):
            got = C.depthwise_conv(x, w, bias, s, pad, d, fmt, act)
        _close(got, C.depthwise_conv_reference(x, w, bias, s, pad, d, fmt, act), dtype)


TR = [
    ("1d-valid", 1, (5,), 3, 1, "valid", None, 1),
    ("1d-same-s2-op", 1, (6,), 4, 3, "same", 2, 1),
    ("1d-dil-same", 1, (6,), 3, 1, "same", None, 2),
    ("2d-k4-s2-same", 2, (5, 4), 4, 2, "same", None, 1),
    ("2d-s3-k2", 2, (3, 4), 2, 3, "valid", None, 1),
    ("2d-op", 2, (4, 3), 3, 2, "valid", (1, 0), 1),
    ("2d-1px", 2, (1, 1), 3, 2, "same", None, 1),
    ("3d-s2", 3, (2, 3, 2), 3, 2, "same", None, 1),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", TR, ids=[c[0] for c in TR])
def test_conv_transpose_matches_reference(case, fmt, threads, dtype):
    _, rank, spatial, k, s, pad, op, d = case
    rng = np.random.default_rng(3)
    cin, filters = 3, 4
    x = _x(rng, 3, spatial, cin, fmt, dtype)
    w = rng.standard_normal((k,) * rank + (filters, cin)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    for act, bias in [(C.ACT_LINEAR, b), (C.ACT_RELU, None)]:
        with klayers.num_threads(threads):
            got = C.conv_transpose(x, w, bias, s, pad, op, d, fmt, act)
        _close(got, C.conv_transpose_reference(x, w, bias, s, pad, op, d, fmt, act), dtype)


@pytest.mark.parametrize("fmt", FORMATS)
def test_separable_matches_reference(fmt):
    rng = np.random.default_rng(5)
    x = _x(rng, 2, (9,), 3, fmt, "float32")
    dw = rng.standard_normal((3, 3, 2)).astype("float32")
    pw = rng.standard_normal((1, 6, 4)).astype("float32")
    b = rng.standard_normal(4).astype("float32")
    for pad, s, d in [("causal", 1, 2), ("same", 2, 1), ("valid", 1, 1)]:
        with klayers.num_threads(2):
            got = C.separable_conv(x, dw, pw, b, s, pad, d, fmt, C.ACT_RELU)
        _close(got, C.separable_conv_reference(x, dw, pw, b, s, pad, d, fmt, C.ACT_RELU), "float32")


def test_chunked_path_with_many_chunks_and_threads():
    """Many im2col chunks (small CHUNK_BYTES) give the same result as one."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 23, 19, 8)).astype("float32")
    w = rng.standard_normal((3, 3, 8, 16)).astype("float32")
    want = C.conv_reference(x, w, None, 1, "same")
    old = C.CHUNK_BYTES
    try:
        C.CHUNK_BYTES = 1000
        with klayers.num_threads(2):
            _close(C.conv(x, w, None, 1, "same"), want, "float32")
    finally:
        C.CHUNK_BYTES = old
    old = C.TRANSPOSE_CHUNK_BYTES
    try:
        C.TRANSPOSE_CHUNK_BYTES = 1
        wt = rng.standard_normal((4, 4, 5, 8)).astype("float32")
        with klayers.num_threads(2):
            _close(C.conv_transpose(x, wt, None, 2, "same"), C.conv_transpose_reference(x, wt, None, 2, "same"), "float32")
    finally:
        C.TRANSPOSE_CHUNK_BYTES = old


def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 17, 13, 6)).astype("float64")
    w = rng.standard_normal((3, 3, 6, 5)).astype("float64")
    outs = []
    for t in (1, 2):
        with klayers.num_threads(t):
            outs.append(C.conv(x, w, None, 1, "same"))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-13)


def test_readonly_and_non_contiguous_inputs():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 10, 3)).astype("float32")[:, :, ::2]
    w = rng.standard_normal((3, 3, 3, 2)).astype("float32")
    w.setflags(write=False)
    x_ro = np.asfortranarray(x)
    x_ro.setflags(write=False)
    want = C.conv_reference(np.ascontiguousarray(x), w, None)
    _close(C.conv(x_ro, w, None), want, "float32")


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: C.conv(np.zeros((1, 2, 2, 3), "f4"), np.zeros((3, 3, 3, 2), "f4"), None), "<= 0"),
        (lambda: C.conv(np.zeros((1, 5, 3), "f4"), np.zeros((3, 2, 2), "f4"), None), "channels"),
        (lambda: C.conv(np.zeros((1, 5, 5, 3), "f4"), np.zeros((3, 3, 2), "f4"), None), "rank"),
        (lambda: C.conv(np.zeros((1, 5, 4), "f4"), np.zeros((3, 2, 3), "f4"), None, groups=2), "groups"),
        (lambda: C.conv(np.zeros((1, 5, 2), "f4"), np.zeros((3, 2, 3), "f4"), np.zeros(2, "f4")), "bias"),
        (lambda: C.conv(np.zeros((1, 5, 5, 2), "f4"), np.zeros((3, 3, 2, 3), "f4"), None, padding="causal"), "causal"),
        (lambda: C.depthwise_conv(np.zeros((1, 5, 2), "f4"), np.zeros((3, 3, 1), "f4"), None), "channels"),
        (lambda: C.depthwise_conv(np.zeros((1, 2, 2), "f4"), np.zeros((3, 2, 1), "f4"), None), "<= 0"),
        (lambda: C.conv_transpose(np.zeros((1, 5, 2), "f4"), np.zeros((3, 3, 3), "f4"), None), "channels"),
        (lambda: C.conv_transpose(np.zeros((1, 5, 2), "f4"), np.zeros((3, 3, 2), "f4"), None, padding="causal"), "padding"),
    ],
    ids=["empty-output", "channels", "rank", "groups", "bias", "causal-2d", "dw-channels", "dw-empty",
         "tr-channels", "tr-padding"],
)
def test_ops_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _geo(**over):
    g = dict(n=1, cin=2, cout=3, groups=1, cf=0, ins=(4, 1, 1), outs=(2, 1, 1), k=(3, 1, 1), s=(1, 1, 1),
             d=(1, 1, 1), p=(0, 0, 0))
    g.update(over)
    return np.array([g["n"], g["cin"], g["cout"], g["groups"], g["cf"], *g["ins"], *g["outs"], *g["k"], *g["s"],
                     *g["d"], *g["p"]], dtype=np.intp)


def test_kernels_check_geometry_before_releasing_the_gil():
    x = np.zeros(8, "f4")
    w = np.zeros(18, "f4")
    out = np.zeros(6, "f4")
    b = np.zeros(3, "f4")
    _conv.conv_forward(x, w, b, out, _geo(), 1, 0, 4, 1)  # consistent: runs
    bad = [
        (dict(), np.zeros(7, "f4"), w, out, "input has"),
        (dict(), x, np.zeros(17, "f4"), out, "kernel has"),
        (dict(), x, w, np.zeros(5, "f4"), "output has"),
        (dict(s=(0, 1, 1)), x, w, out, "geometry"),
        (dict(p=(-1, 0, 0)), x, w, out, "geometry"),
        (dict(groups=2), x, w, out, "channels"),
    ]
    for over, xx, ww, oo, match in bad:
        with pytest.raises(ValueError, match=match):
            _conv.conv_forward(xx, ww, b, oo, _geo(**over), 1, 0, 4, 1)
    with pytest.raises(ValueError, match="bias"):
        _conv.conv_forward(x, w, np.zeros(2, "f4"), out, _geo(), 1, 0, 4, 1)
    with pytest.raises(ValueError, match="entries"):
        _conv.conv_forward(x, w, b, out, _geo()[:5], 1, 0, 4, 1)
    with pytest.raises(ValueError, match="groups"):
        _conv.depthwise_forward(x, np.zeros(9, "f4"), b, out, _geo(), 1, 0, 1)
    with pytest.raises(ValueError, match="kernel has"):
        _conv.conv_transpose_forward(x, np.zeros(17, "f4"), b, out, _geo(), 1, 0, 1, 1)
    with pytest.raises(ValueError):  # mixed dtypes match no fused specialization
        _conv.conv_forward(x.astype("f8"), w, b, out, _geo(), 1, 0, 4, 1)


def test_conv_rejects_bad_chunk_and_block():
    x, w, out, b = np.zeros(8, "f4"), np.zeros(18, "f4"), np.zeros(6, "f4"), np.zeros(3, "f4")
    with pytest.raises(ValueError, match="chunk_rows"):
        _conv.conv_forward(x, w, b, out, _geo(), 1, 0, 0, 1)
    geo = _geo(ins=(2, 1, 1), outs=(4, 1, 1))
    with pytest.raises(ValueError, match="block"):
        _conv.conv_transpose_forward(np.zeros(4, "f4"), np.zeros(18, "f4"), b, np.zeros(12, "f4"), geo, 1, 0, 0, 1)


def test_zero_batch():
    y = C.conv(np.zeros((0, 5, 5, 2), "f4"), np.ones((3, 3, 2, 4), "f4"), None)
    assert y.shape == (0, 3, 3, 4)
    y = C.depthwise_conv(np.zeros((0, 5, 2), "f4"), np.ones((3, 2, 2), "f4"), None)
    assert y.shape == (0, 3, 4)
    y = C.conv_transpose(np.zeros((0, 5, 2), "f4"), np.ones((3, 4, 2), "f4"), None, 2)
    assert y.shape == (0, 11, 4)
