"""Compiled convolution kernels against their NumPy twins: float32 and float64, 1 and 2 threads,
both data formats, ranks 1-3, and the edge cases (1-pixel inputs, kernel equal to the input,
strides larger than the kernel, empty outputs, bad arguments before the GIL is released)."""

import numpy as np
import pytest

import klayers
from klayers._ext import conv as _conv
from klayers._ext import conv_transpose as _conv_transpose
from klayers._ext import depthwise as _depthwise
from klayers.ops import conv as C
from klayers.ops import conv_transpose as CT
from klayers.ops.activation import apply_activation_reference
from klayers.ops.common import ACT_SWISH, ACTIVATION_CODES
from klayers.ops.dense import pack_dense_kernel

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



def _depthwise_forward(x, w, b, out, geo, use_bias, act, blk, threads):
    """One call of the prepared depthwise kernel, made for it."""
    _depthwise.DepthwiseKernel(w, b, geo, use_bias, act, blk, threads)(x, out)


def _conv_forward(x, w, b, out, geo, use_bias, act, rows, cols, threads, packed=None, residual=None):
    """One call of the prepared forward kernel, made for it (the tests' direct kernel calls)."""
    kernel = _conv.ConvKernel(w, b, geo, use_bias, act, rows, cols, threads, packed)
    if residual is None:
        kernel(x, out)
    else:
        kernel(x, out, residual)


def _x(rng, n, spatial, c, fmt, dtype):
    shape = (n,) + spatial + (c,) if fmt == "channels_last" else (n, c) + spatial
    return (rng.standard_normal(shape) * 2).astype(dtype)


#: The twin comparison's relative tolerance per dtype (absolute: times the output's magnitude).
TOL = {"float32": 2e-5, "float64": 1e-12}


def _close(got, want, dtype):
    assert got.shape == want.shape and got.dtype == np.dtype(dtype)
    tol = 2e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, float(np.abs(want).max(initial=0))))


@pytest.fixture(params=["direct", "im2col"])
def conv_path(request, monkeypatch):
    """Run a conv test through the implicit-GEMM kernel (wherever it applies) or through im2col."""
    monkeypatch.setattr(C, "DIRECT_MIN_WIDTH", 1 if request.param == "direct" else 10**9)
    return request.param


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CONV, ids=[c[0] for c in CONV])
def test_conv_matches_reference(case, fmt, kernel_twin, conv_path):
    _, rank, spatial, k, s, pad, d, g = case
    cin, filters = 4, 6 if g != 4 else 8
    ks = (k,) * rank if isinstance(k, int) else k
    for act, with_bias in [(C.ACT_LINEAR, True), (C.ACT_RELU, False), (C.ACT_RELU6, True)]:
        def case_of(dtype, act=act, with_bias=with_bias):
            rng = np.random.default_rng(len(case[0]))
            x = _x(rng, 2, spatial, cin, fmt, dtype)
            w = rng.standard_normal(ks + (cin // g, filters)).astype(dtype)
            b = rng.standard_normal(filters).astype(dtype) if with_bias else None
            return (x, w, b, s, pad, d, g, fmt, act), {}

        kernel_twin(C.conv, case_of, tol=TOL)


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


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", DW, ids=[c[0] for c in DW])
def test_depthwise_matches_reference(case, fmt, kernel_twin):
    _, rank, spatial, k, s, pad, d, mult = case
    cin = 5
    ks = (k,) * rank if isinstance(k, int) else k
    for act, with_bias in [(C.ACT_LINEAR, True), (C.ACT_RELU6, False)]:
        def case_of(dtype, act=act, with_bias=with_bias):
            rng = np.random.default_rng(7)
            x = _x(rng, 2, spatial, cin, fmt, dtype)
            w = rng.standard_normal(ks + (cin, mult)).astype(dtype)
            b = rng.standard_normal(cin * mult).astype(dtype) if with_bias else None
            return (x, w, b, s, pad, d, fmt, act), {}

        kernel_twin(C.depthwise_conv, case_of, tol=TOL)


# wider rows and channel counts that are not a multiple of any vector tile: interior outputs
# (register-tiled loop), border outputs (per-tap sweep), channel tails, several blocks per row
DW_WIDE = [
    ("2d-same-k3", 2, (5, 40), 3, 1, "same", 1, 1),
    ("2d-valid-k5-s2", 2, (6, 41), 5, 2, "valid", 1, 1),
    ("2d-same-dil3", 2, (4, 33), 3, 1, "same", 3, 1),
    ("1d-causal-like-same-k4", 1, (50,), 4, 1, "same", 1, 1),
    ("3d-same", 3, (3, 4, 20), 3, 1, "same", 1, 1),
    ("2d-mult2", 2, (4, 30), 3, 1, "same", 1, 2),
    # small maps: runs of one and two outputs (the short-run tiles), no interior at all
    ("2d-3x3-map", 2, (3, 3), 3, 1, "same", 1, 1),
    ("2d-2x5-map-k5", 2, (2, 5), 5, 1, "same", 1, 1),
    # more rows of taps than the whole-window kernel lists (9 x 9 > 64): the per-tap sweep
    ("2d-k9", 2, (10, 12), 9, 1, "same", 1, 1),
]


@pytest.mark.parametrize("isa", [0, 1, 2], ids=["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cin", [37, 53, 64, 150])
@pytest.mark.parametrize("case", DW_WIDE, ids=[c[0] for c in DW_WIDE])
def test_depthwise_tiles_and_isa_variants(case, cin, dtype, isa, monkeypatch):
    """Every instruction-set variant of the tiled loop this CPU has (a level the CPU lacks falls
    back to the widest it has), small blocks (several per row), 1 and 2 threads."""
    _, rank, spatial, k, s, pad, d, mult = case
    rng = np.random.default_rng(cin)
    x = _x(rng, 2, spatial, cin, "channels_last", dtype)
    w = rng.standard_normal((k,) * rank + (cin, mult)).astype(dtype)
    b = rng.standard_normal(cin * mult).astype(dtype)
    try:
        _depthwise.select_isa(isa)
        for block_bytes in (C.DW_BLOCK_BYTES, 1):
            monkeypatch.setattr(C, "DW_BLOCK_BYTES", block_bytes)
            for threads, act, bias in [(1, C.ACT_RELU6, b), (2, C.ACT_RELU, None), (1, C.ACT_LINEAR, None),
                                       (2, ACT_SWISH, b)]:
                with klayers.num_threads(threads):
                    got = C.depthwise_conv(x, w, bias, s, pad, d, "channels_last", act)
                _close(got, C.depthwise_conv_reference(x, w, bias, s, pad, d, "channels_last", act), dtype)
    finally:
        _depthwise.select_isa()


def test_depthwise_isa_names():
    try:
        assert _depthwise.select_isa(0) == "baseline"
        assert _depthwise.select_isa(1) in ("baseline", "avx2")
    finally:
        assert _depthwise.select_isa() in ("baseline", "avx2", "avx512")


def _geometry(rng, cf, depthwise=False):
    """A random, consistent conv geometry (any padding, even one larger than the window)."""
    ins, outs, k, s, d, p = [], [], [], [], [], []
    for _ in range(3):
        ki, si, di = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
        n = int(rng.integers(1, 9))
        pi = int(rng.integers(0, 6))
        span = (ki - 1) * di + 1
        o = max(1, (n + pi + int(rng.integers(0, 4)) - span) // si + 1)
        for lst, v in ((ins, n), (outs, o), (k, ki), (s, si), (d, di), (p, pi)):
            lst.append(v)
    if cf:
        s[2] = 1
    groups = int(rng.choice([1, 2]))
    cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    if depthwise:  # channels that fill vector tiles and leave tails; multiplier 1 or 2
        cin = int(rng.choice([1, 5, 16, 24, 37, 53]))
        groups, cout = cin, cin * int(rng.choice([1, 1, 2]))
    n = int(rng.integers(1, 3))
    geo = dict(batch=n, in_channels=cin, out_channels=cout, groups=groups, channels_first=bool(cf), in_size=ins,
               out_size=outs, kernel_size=k, strides=s, dilation_rate=d, pad_before=p)
    return geo, n * cin * int(np.prod(ins)), n * cout * int(np.prod(outs)), int(np.prod(k)) * cin // groups * cout


@pytest.mark.parametrize("cf", [0, 1], ids=FORMATS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_direct_kernel_matches_im2col_kernel_on_random_geometries(cf, dtype):
    """The implicit-GEMM kernel against the im2col one on geometries no layer produces
    (padding wider than the window, rows where no tap is in range, odd segment sizes)."""
    rng = np.random.default_rng(100 + cf)
    for trial in range(60):
        geo, nx, ny, nw = _geometry(rng, cf)
        x = rng.standard_normal(nx).astype(dtype)
        w = rng.standard_normal(nw).astype(dtype)
        b = rng.standard_normal(geo["out_channels"]).astype(dtype)
        act = trial % 3
        want = np.empty(ny, dtype)
        _conv_forward(x, w, b, want, geo, trial % 2, act, 5, 1 << 20, 1)
        for seg, threads in [(1, 2), (3, 1), (1000, 2)]:
            got = np.full(ny, np.nan, dtype)
            _conv.conv_direct_forward(x, w, b, got, geo, trial % 2, act, seg, threads)
            np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12,
                                       atol=1e-5 if dtype == "float32" else 1e-12, err_msg=str(geo))


@pytest.mark.parametrize("cf", [0, 1], ids=FORMATS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_im2col_kernel_tiles_agree_on_random_geometries(cf, dtype):
    """ConvKernel's tilings (row chunks that span samples, channel slices within each group,
    1 and 2 threads) against one untiled GEMM per sample and group."""
    rng = np.random.default_rng(300 + cf)
    for trial in range(60):
        geo, nx, ny, nw = _geometry(rng, cf)
        x = rng.standard_normal(nx).astype(dtype)
        w = rng.standard_normal(nw).astype(dtype)
        b = rng.standard_normal(geo["out_channels"]).astype(dtype)
        act, use_bias = trial % 3, trial % 2
        want = np.empty(ny, dtype)
        _conv_forward(x, w, b, want, geo, use_bias, act, 1 << 20, 1 << 20, 1)
        for rows, cols, threads in [(1, 1, 2), (3, 2, 1), (5, 1, 2), (1 << 20, 1, 2), (2, 1 << 20, 2)]:
            got = np.full(ny, np.nan, dtype)
            _conv_forward(x, w, b, got, geo, use_bias, act, rows, cols, threads)
            np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12,
                                       atol=1e-5 if dtype == "float32" else 1e-12,
                                       err_msg=f"{geo} rows={rows} cols={cols}")


@pytest.mark.parametrize("isa", [0, 2], ids=["baseline", "avx512"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_windows_read_in_place_equal_im2col_exactly(dtype, isa, monkeypatch):
    """ConvKernel with a packed kernel reads the windows that lie inside the input in place
    (no im2col) and gathers the others: on random geometries (padding, strides, dilations, rows
    with no window inside, tilings that split rows and channels), with and without a residual,
    its outputs are those of the im2col path bit for bit (the sums run in the same order)."""
    _conv.select_isa(isa)
    monkeypatch.setattr(_conv, "IMPLICIT_MIN_WIDTH", 1)
    rng = np.random.default_rng(400 + isa)
    itemsize = np.dtype(dtype).itemsize
    read_in_place = 0
    try:
        for trial in range(80):
            geo, nx, ny, nw = _geometry(rng, 0)
            geo["groups"], geo["in_channels"] = 1, int(rng.integers(1, 9))
            geo["out_channels"] = int(rng.choice([1, 7, 16, 40, 70]))
            geo["in_size"][2] += 9  # long rows: runs read in place between the borders
            k, s, d, p = geo["kernel_size"], geo["strides"], geo["dilation_rate"], geo["pad_before"]
            geo["out_size"][2] = max(1, (geo["in_size"][2] + p[2] - (k[2] - 1) * d[2] - 1) // s[2] + 1)
            n, cin, cout = geo["batch"], geo["in_channels"], geo["out_channels"]
            nx, ny = n * cin * int(np.prod(geo["in_size"])), n * cout * int(np.prod(geo["out_size"]))
            kc = int(np.prod(k)) * cin
            x = rng.standard_normal(nx).astype(dtype)
            w = rng.standard_normal(kc * cout).astype(dtype)
            b = rng.standard_normal(cout).astype(dtype)
            res = rng.standard_normal(ny).astype(dtype)
            pk = np.empty(_conv.packed_size(kc, cout, itemsize), dtype)
            _conv.pack_kernel(w, kc, cout, pk)
            sw = _conv.STRIP_BYTES // itemsize
            act, use_bias = trial % 3, trial % 2
            for rows, cols, threads in [(1 << 20, 1 << 20, 1), (3, sw, 2), (7, 1 << 20, 2)]:
                outs = []
                for width in (1, 1 << 30):  # read in place, then never
                    monkeypatch.setattr(_conv, "IMPLICIT_MIN_WIDTH", width)
                    kern = _conv.ConvKernel(w, b, geo, use_bias, act, rows, cols, threads, pk)
                    read_in_place += kern.reads_in_place
                    y = np.full(ny, np.nan, dtype)
                    y2 = np.full(ny, np.nan, dtype)
                    kern(x, y)
                    kern(x, y2, res, act)
                    outs.append((y, y2))
                for got, want in zip(outs[0], outs[1]):
                    np.testing.assert_array_equal(got, want, err_msg=f"{geo} rows={rows} cols={cols}")
    finally:
        _conv.select_isa()
    assert read_in_place > 100


# (spatial, kernel, padding, cin, filters): small maps whose GEMMs have few rows; widths that
# fill whole strips, leave a tail, or are narrower than one strip or one register tile
SKINNY = [
    ((3, 3), 3, "same", 16, 32), ((3, 3), 3, "same", 7, 33), ((2, 2), 1, "valid", 24, 70),
    ((6, 6), 3, "valid", 5, 129), ((1, 1), 1, "valid", 40, 1), ((4, 4), 2, "valid", 9, 17),
    ((3, 5), 3, "same", 3, 48),
    # many rows, K past one block of the packed kernel (KSKP_KC = 192), a tail strip
    ((9, 8), 3, "same", 40, 45), ((7, 7), 1, "valid", 400, 64),
]


@pytest.mark.parametrize("isa", [0, 1, 2], ids=["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch", [1, 2, 3])
@pytest.mark.parametrize("case", SKINNY, ids=[f"{c[0]}k{c[1]}-{c[3]}x{c[4]}" for c in SKINNY])
def test_few_rows_gemm_packed_and_unpacked_match_reference(case, batch, dtype, isa):
    """The few-rows GEMM of ``ConvKernel`` over the kernel in place and the packed GEMM over
    its strips (every ISA variant, every whole-strip channel split, one row chunk and several,
    1 and 2 threads), against the NumPy twin: 1-216 output rows, widths with tails, K in one
    block and in several, float32 and float64."""
    spatial, k, padding, cin, filters = case
    rng = np.random.default_rng(sum(spatial) * 1000 + cin * 100 + filters + batch)
    x = _x(rng, batch, spatial, cin, "channels_last", dtype)
    kernel = rng.standard_normal((k, k, cin, filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    packed = C.pack_conv_kernel(kernel)
    assert packed is not None and packed.dtype == np.dtype(dtype)
    sw = _conv.STRIP_BYTES // np.dtype(dtype).itemsize
    try:
        assert _conv.select_isa(isa) in ("baseline", "avx2", "avx512")
        # relu and relu6 are applied in the packed GEMM's register tiles, swish mapped after
        for act in ACTS + [ACT_SWISH]:
            want = C.conv_reference(x, kernel, bias, 1, padding, 1, 1, "channels_last", act)
            rows = want.size // filters
            _close(C.conv(x, kernel, bias, 1, padding, act=act, n_threads=1), want, dtype)
            calls = []

            def packer(calls=calls):
                calls.append(1)
                return packed
            got = C.conv(x, kernel, bias, 1, padding, act=act, n_threads=2, packed=packer)
            _close(got, want, dtype)
            assert calls == [1]
            # direct kernel calls: every whole-strip slice width, 1 and 2 threads
            geo = C._conv_setup(x, kernel, bias, (1, 1), padding, (1, 1), 1, "channels_last", "t")[-1]
            for cols in range(sw, -(-filters // sw) * sw + 1, sw):
                for chunk, threads in ((rows, 1), (rows, 2), (max(1, rows // 3), 2)):
                    y = np.full(want.size, np.nan, dtype)
                    _conv_forward(x.reshape(-1), kernel.reshape(-1), bias, y, geo, True, act,
                                       chunk, cols, threads, packed)
                    _close(y.reshape(want.shape), want, dtype)
            # no bias: only the activation in the tiles
            want = C.conv_reference(x, kernel, None, 1, padding, 1, 1, "channels_last", act)
            y = np.full(want.size, np.nan, dtype)
            _conv_forward(x.reshape(-1), kernel.reshape(-1), np.empty(0, dtype), y, geo, False, act,
                               max(1, rows // 3), sw, 2, packed)
            _close(y.reshape(want.shape), want, dtype)
            # a residual added after the bias, before the activation
            res = rng.standard_normal(want.shape).astype(dtype)
            lin = C.conv_reference(x, kernel, bias, 1, padding, 1, 1, "channels_last", C.ACT_LINEAR)
            want = apply_activation_reference(lin + res, act)
            y = np.full(lin.size, np.nan, dtype)
            _conv_forward(x.reshape(-1), kernel.reshape(-1), bias, y, geo, True, act, max(1, rows // 3), sw, 2,
                               packed, res.reshape(-1))
            _close(y.reshape(lin.shape), want, dtype)
    finally:
        _conv.select_isa()


def test_a_residual_needs_the_packed_kernel_and_the_output_size():
    x, w, b = np.zeros(2 * 3 * 3 * 4, "f4"), np.zeros(4 * 8, "f4"), np.zeros(8, "f4")
    geo = C._conv_setup(np.zeros((2, 3, 3, 4), "f4"), np.zeros((1, 1, 4, 8), "f4"), None, (1, 1), "valid", (1, 1), 1,
                        "channels_last", "t")[-1]
    y = np.zeros(2 * 3 * 3 * 8, "f4")
    with pytest.raises(ValueError, match="needs a packed kernel"):
        _conv_forward(x, w, b, y, geo, True, 0, 18, 8, 1, None, y.copy())
    packed = C.pack_conv_kernel(np.zeros((1, 1, 4, 8), "f4"))
    with pytest.raises(ValueError, match="residual has"):
        _conv_forward(x, w, b, y, geo, True, 0, 18, 32, 1, packed, y[:-1].copy())


def test_packed_kernels_refuse_what_does_not_fit():
    """pack_conv_kernel declines grouped and integer kernels; the kernels refuse packed arrays
    of the wrong size, a channels_first or grouped geometry, and slices not on strip bounds."""
    kernel = np.ones((3, 3, 4, 8), "float32")
    assert C.pack_conv_kernel(kernel, groups=2) is None
    assert C.pack_conv_kernel(kernel.astype("int32")) is None
    packed = C.pack_conv_kernel(kernel)
    assert packed.size == _conv.packed_size(36, 8, 4) == 36 * 32
    x, b = np.ones(2 * 3 * 3 * 4, "float32"), np.zeros(8, "float32")
    geo = C._conv_setup(x.reshape(2, 3, 3, 4), kernel, b, (1, 1), "same", (1, 1), 1, "channels_last", "t")[-1]
    y = np.zeros(2 * 3 * 3 * 8, "float32")
    with pytest.raises(ValueError, match="packed kernel has"):
        _conv_forward(x, kernel.reshape(-1), b, y, geo, True, 0, 18, 32, 1, packed[:-1])
    with pytest.raises(ValueError, match="channels_last and one group"):
        _conv_forward(x, kernel.reshape(-1), b, y, dict(geo, channels_first=True), True, 0, 18, 32, 1, packed)
    with pytest.raises(ValueError, match="strip"):
        _conv_forward(x, kernel.reshape(-1), b, y, geo, True, 0, 18, 5, 1, packed)
    with pytest.raises(ValueError, match="elements"):
        _conv.pack_kernel(kernel.reshape(-1), 36, 9, np.zeros(36 * 32, "float32"))
    with pytest.raises(ValueError, match="out has"):
        _conv.pack_kernel(kernel.reshape(-1), 36, 8, np.zeros(36 * 8, "float32"))
    # a packer that hands back another dtype is not used
    got = C.conv(x.reshape(2, 3, 3, 4), kernel, b, 1, "same", packed=lambda: packed.astype("float64"))
    _close(got, C.conv_reference(x.reshape(2, 3, 3, 4), kernel, b, 1, "same"), "float32")


@pytest.mark.parametrize("cf", [0, 1], ids=FORMATS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_depthwise_kernel_matches_grouped_im2col_on_random_geometries(cf, dtype):
    """DepthwiseKernel (every ISA variant, several block sizes) against the grouped im2col
    kernel with groups == channels on geometries no layer produces: padding wider than the
    window, border outputs with no tap in range, rows with no valid window at all."""
    rng = np.random.default_rng(200 + cf)
    try:
        for trial in range(40):
            geo, nx, ny, nw = _geometry(rng, cf, depthwise=True)
            x = rng.standard_normal(nx).astype(dtype)
            w = rng.standard_normal(nw).astype(dtype)
            b = rng.standard_normal(geo["out_channels"]).astype(dtype)
            act, use_bias = trial % 3, trial % 2
            want = np.empty(ny, dtype)
            _conv_forward(x, w, b, want, geo, use_bias, act, 7, 1 << 20, 1)
            for isa in (0, 1, 2):
                _depthwise.select_isa(isa)
                for blk, threads in [(1, 2), (3, 1), (1000, 2)]:
                    got = np.full(ny, np.nan, dtype)
                    _depthwise_forward(x, w, b, got, geo, use_bias, act, blk, threads)
                    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12,
                                               atol=1e-5 if dtype == "float32" else 1e-12, err_msg=f"{geo} isa={isa}")
    finally:
        _depthwise.select_isa()


def test_direct_path_with_many_segments(monkeypatch):
    """Rows split into many segments (small-GEMM row caps, or DIRECT_SEG_BYTES where those do not
    apply) and rank 1, where a row is the whole sequence and only segments give the threads work."""
    rng = np.random.default_rng(12)
    for xs, ws, pad in [((2, 9, 37, 8), (3, 3, 8, 16), "same"), ((1, 300, 5), (5, 5, 7), "causal")]:
        x = rng.standard_normal(xs).astype("float32")
        w = rng.standard_normal(ws).astype("float32")
        want = C.conv_reference(x, w, None, 1, pad)
        for small_macs, seg_bytes in [(1, 1), (8 * 16 * 20, C.DIRECT_SEG_BYTES), (C.SMALL_GEMM_MACS, C.DIRECT_SEG_BYTES)]:
            monkeypatch.setattr(C, "SMALL_GEMM_MACS", small_macs)
            monkeypatch.setattr(C, "DIRECT_SEG_BYTES", seg_bytes)
            for threads in (1, 2):
                with klayers.num_threads(threads):
                    _close(C.conv(x, w, None, 1, pad), want, "float32")


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
            got = CT.conv_transpose(x, w, bias, s, pad, op, d, fmt, act)
        _close(got, CT.conv_transpose_reference(x, w, bias, s, pad, op, d, fmt, act), dtype)


SEP = [
    ("1d", (9,), 3, 2, 6, 4),
    ("1d-long", (70,), 5, 1, 37, 9),
    ("2d", (6, 19), 3, 1, 5, 7),
    ("2d-mult2", (5, 17), (3, 2), 2, 3, 8),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", SEP, ids=[c[0] for c in SEP])
def test_separable_matches_reference(case, fmt, threads, dtype, monkeypatch):
    """channels_last runs the fused kernel (also with one pixel per block), channels_first the
    depthwise + pointwise pair."""
    _, spatial, k, mult, cin, filters = case
    rank = len(spatial)
    rng = np.random.default_rng(5)
    x = _x(rng, 2, spatial, cin, fmt, dtype)
    ks = (k,) * rank if isinstance(k, int) else k
    dw = rng.standard_normal(ks + (cin, mult)).astype(dtype)
    pw = rng.standard_normal((1,) * rank + (cin * mult, filters)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    pads = [("causal", 1, 2), ("same", 2, 1), ("valid", 1, 1), ("same", 1, 2)] if rank == 1 else \
        [("same", 2, 1), ("valid", 1, 1), ("same", 1, 2)]
    for block_bytes in (C.SEPARABLE_BLOCK_BYTES, 1):
        monkeypatch.setattr(C, "SEPARABLE_BLOCK_BYTES", block_bytes)
        for (pad, s, d), (act, bias) in zip(pads, [(C.ACT_RELU, b), (ACT_SWISH, None), (C.ACT_RELU6, b),
                                                   (C.ACT_LINEAR, b)]):
            with klayers.num_threads(threads):
                got = C.separable_conv(x, dw, pw, bias, s, pad, d, fmt, act)
            _close(got, C.separable_conv_reference(x, dw, pw, bias, s, pad, d, fmt, act), dtype)


def test_separable_rejects_bad_weights():
    x = np.zeros((1, 6, 6, 3), "f4")
    dw = np.zeros((3, 3, 3, 2), "f4")
    with pytest.raises(ValueError, match="pointwise kernel"):
        C.separable_conv(x, dw, np.zeros((1, 1, 5, 4), "f4"), None)
    with pytest.raises(ValueError, match="bias"):
        C.separable_conv(x, dw, np.zeros((1, 1, 6, 4), "f4"), np.zeros(3, "f4"))
    g = _geo(in_channels=3, out_channels=6, groups=3, in_size=(1, 1, 4), out_size=(1, 1, 2), kernel_size=(1, 1, 3))
    xs, dws, mid = np.zeros(12, "f4"), np.zeros(18, "f4"), np.zeros(12, "f4")
    _depthwise.separable_forward(xs, dws, np.zeros(24, "f4"), np.zeros(4, "f4"), mid, np.zeros(8, "f4"), g, 1, 0, 1, 1)
    for pw, out, bias, match in [(np.zeros(25, "f4"), np.zeros(8, "f4"), np.zeros(4, "f4"), "pointwise"),
                                 (np.zeros(24, "f4"), np.zeros(7, "f4"), np.zeros(4, "f4"), "output has"),
                                 (np.zeros(24, "f4"), np.zeros(8, "f4"), np.zeros(3, "f4"), "bias")]:
        with pytest.raises(ValueError, match=match):
            _depthwise.separable_forward(xs, dws, pw, bias, mid, out, g, 1, 0, 1, 1)
    with pytest.raises(ValueError, match="channels_last only"):
        _depthwise.separable_forward(xs, dws, np.zeros(24, "f4"), np.zeros(4, "f4"), mid, np.zeros(8, "f4"),
                                _geo(in_channels=3, out_channels=6, groups=3, channels_first=True, in_size=(1, 1, 4),
                                     out_size=(1, 1, 2), kernel_size=(1, 1, 3)),
                                1, 0, 1, 1)


def test_chunked_path_with_many_chunks_and_threads(monkeypatch):
    """Many im2col chunks (small CHUNK_BYTES) give the same result as one; so do 1x1 chunks
    sized for small GEMMs."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 23, 19, 8)).astype("float32")
    w = rng.standard_normal((3, 3, 8, 16)).astype("float32")
    want = C.conv_reference(x, w, None, 1, "same")
    monkeypatch.setattr(C, "DIRECT_MIN_WIDTH", 10**9)
    for chunk_bytes, small_macs in [(1000, C.SMALL_GEMM_MACS), (C.CHUNK_BYTES, 1), (C.CHUNK_BYTES, 3000)]:
        monkeypatch.setattr(C, "CHUNK_BYTES", chunk_bytes)
        monkeypatch.setattr(C, "SMALL_GEMM_MACS", small_macs)
        for threads in (1, 2):
            with klayers.num_threads(threads):
                _close(C.conv(x, w, None, 1, "same"), want, "float32")
                w1 = w[1:2, 1:2]
                _close(C.conv(x, w1, None), C.conv_reference(x, w1, None), "float32")
    monkeypatch.setattr(CT, "TRANSPOSE_CHUNK_BYTES", 1)
    wt = rng.standard_normal((4, 4, 5, 8)).astype("float32")
    with klayers.num_threads(2):
        _close(CT.conv_transpose(x, wt, None, 2, "same"), CT.conv_transpose_reference(x, wt, None, 2, "same"), "float32")


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
        (lambda: CT.conv_transpose(np.zeros((1, 5, 2), "f4"), np.zeros((3, 3, 3), "f4"), None), "channels"),
        (lambda: CT.conv_transpose(np.zeros((1, 5, 2), "f4"), np.zeros((3, 3, 2), "f4"), None, padding="causal"), "padding"),
    ],
    ids=["empty-output", "channels", "rank", "groups", "bias", "causal-2d", "dw-channels", "dw-empty",
         "tr-channels", "tr-padding"],
)
def test_ops_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _geo(**over):
    """A consistent forward geometry (named, as the ops build it); ``over`` replaces fields."""
    g = dict(batch=1, in_channels=2, out_channels=3, groups=1, channels_first=False, in_size=(4, 1, 1),
             out_size=(2, 1, 1), kernel_size=(3, 1, 1), strides=(1, 1, 1), dilation_rate=(1, 1, 1),
             pad_before=(0, 0, 0))
    g.update(over)
    return g


BAD_GEOMETRY = [
    # (id, fields replaced, what the error names)
    ("input-size", dict(in_size=(5, 1, 1)), "input has 8 values"),
    ("output-size", dict(out_size=(3, 1, 1)), "output has 6 values"),
    ("kernel-size", dict(kernel_size=(2, 1, 1)), "kernel has 18 values"),
    ("zero-stride", dict(strides=(0, 1, 1)), "strides"),
    ("negative-pad", dict(pad_before=(-1, 0, 0)), "pad_before"),
    ("zero-dilation", dict(dilation_rate=(1, 0, 1)), "dilation_rate"),
    ("zero-kernel", dict(kernel_size=(0, 1, 1)), "kernel_size"),
    ("negative-in-size", dict(in_size=(-4, -1, 1)), "in_size"),
    ("huge-in-size", dict(in_size=(2**40, 1, 1)), "in_size"),
    ("overflowing-sizes", dict(in_size=(2**31 - 1, 2**31 - 1, 2**31 - 1)), "too large"),
    ("negative-batch", dict(batch=-1), "batch"),
    ("zero-channels", dict(in_channels=0), "in_channels"),
    ("groups-do-not-divide", dict(groups=2), "groups=2 must divide"),
    ("two-axes", dict(strides=(1, 1)), "strides"),
    ("four-axes", dict(pad_before=(0, 0, 0, 0)), "pad_before"),
    ("not-an-int", dict(kernel_size=(3, 1, "x")), "kernel_size|integer|int"),
]


@pytest.mark.parametrize("over,match", [c[1:] for c in BAD_GEOMETRY], ids=[c[0] for c in BAD_GEOMETRY])
def test_kernels_refuse_bad_geometry_with_an_error_naming_it(over, match):
    """Every conv kernel converts and checks its named geometry before the GIL is released: a
    bad field is an error naming that field (or the array size it contradicts), never a crash."""
    x, w, out, b = np.zeros(8, "f4"), np.zeros(18, "f4"), np.zeros(6, "f4"), np.zeros(3, "f4")
    _conv_forward(x, w, b, out, _geo(), 1, 0, 4, 3, 1)  # consistent: runs
    geo = _geo(**over)
    calls = [lambda: _conv_forward(x, w, b, out, geo, 1, 0, 4, 3, 1),
             lambda: _conv.conv_direct_forward(x, w, b, out, geo, 1, 0, 4, 1)]
    if "groups" not in over and "kernel_size" not in over:
        calls.append(lambda: _conv_transpose.conv_transpose_forward(
            x, np.zeros(18, "f4"), b, out, geo, 1, 0, 1, 1))
    for call in calls:
        with pytest.raises((ValueError, TypeError, OverflowError), match=match):
            call()


def test_kernels_check_geometry_before_releasing_the_gil():
    x = np.zeros(8, "f4")
    w = np.zeros(18, "f4")
    out = np.zeros(6, "f4")
    b = np.zeros(3, "f4")
    _conv_forward(x, w, b, out, _geo(), 1, 0, 4, 3, 1)  # consistent: runs
    bad = [
        (dict(), np.zeros(7, "f4"), w, out, "input has"),
        (dict(), x, np.zeros(17, "f4"), out, "kernel has"),
        (dict(), x, w, np.zeros(5, "f4"), "output has"),
        (dict(strides=(0, 1, 1)), x, w, out, "strides"),
        (dict(pad_before=(-1, 0, 0)), x, w, out, "pad_before"),
        (dict(groups=2), x, w, out, "groups"),
    ]
    for over, xx, ww, oo, match in bad:
        with pytest.raises(ValueError, match=match):
            _conv_forward(xx, ww, b, oo, _geo(**over), 1, 0, 4, 3, 1)
    with pytest.raises(ValueError, match="bias"):
        _conv_forward(x, w, np.zeros(2, "f4"), out, _geo(), 1, 0, 4, 3, 1)
    with pytest.raises(ValueError, match="geometry lacks the field 'pad_before'"):
        _conv_forward(x, w, b, out, {k: v for k, v in _geo().items() if k != "pad_before"}, 1, 0, 4, 3, 1)
    with pytest.raises(TypeError, match="dict"):
        _conv_forward(x, w, b, out, np.array([1, 2, 3, 1, 0, 4, 1, 1, 2, 1, 1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
                                                  np.intp), 1, 0, 4, 3, 1)
    with pytest.raises(ValueError, match="groups"):
        _depthwise_forward(x, np.zeros(9, "f4"), b, out, _geo(), 1, 0, 4, 1)
    with pytest.raises(ValueError, match="kernel has"):
        _conv_transpose.conv_transpose_forward(x, np.zeros(17, "f4"), b, out, _geo(), 1, 0, 1, 1)
    with pytest.raises(ValueError):  # mixed dtypes match no fused specialization
        _conv_forward(x.astype("f8"), w, b, out, _geo(), 1, 0, 4, 3, 1)


@pytest.mark.parametrize("act", [-1, 3, 7, 2**20])
def test_kernels_refuse_activation_codes_their_epilogue_does_not_fuse(act):
    """The transposed kernel fuses linear, relu and relu6; the conv and depthwise kernels every
    code of the space (and refuse the rest)."""
    x, w, out, b = np.zeros(8, "f4"), np.zeros(18, "f4"), np.zeros(6, "f4"), np.zeros(3, "f4")
    with pytest.raises(ValueError, match="does not fuse into the epilogue"):
        _conv_transpose.conv_transpose_forward(x, np.zeros(18, "f4"), b, out, _geo(), 1, act, 1, 1)
    in_space = 0 <= act < len(_conv.ACTIVATIONS)
    for call in (lambda: _conv_forward(x, w, b, out, _geo(), 1, act, 4, 3, 1),
                 lambda: _conv.conv_direct_forward(x, w, b, out, _geo(), 1, act, 4, 1),
                 lambda: _depthwise_forward(np.zeros(8, "f4"), np.zeros(6, "f4"), np.zeros(2, "f4"),
                                                      np.zeros(4, "f4"), _geo(groups=2, out_channels=2), 1, act, 4, 1)):
        if in_space:
            call()
        else:
            with pytest.raises(ValueError, match="unknown activation code"):
                call()


@pytest.mark.parametrize("isa", [0, 1, 2], ids=["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_activation_code_runs_in_the_conv_epilogue(dtype, isa):
    """conv (direct, im2col, 1x1 and channels_first paths) with each activation code fused
    in its epilogue against the NumPy twin, which applies the function after."""
    from klayers.ops import common

    rng = np.random.default_rng(7)
    tol = 2e-5 if dtype == "float32" else 1e-12
    try:
        _conv.select_isa(isa)
        for name, code in common.ACTIVATION_CODES.items():
            for fmt, spatial, k in (("channels_last", (5, 20), 3), ("channels_last", (4, 4), 1),
                                    ("channels_first", (6, 5), 3), ("channels_last", (3, 3), 3)):
                x = _x(rng, 2, spatial, 6, fmt, dtype) * 0.5
                kernel = (rng.standard_normal((k, k, 6, 9)) * 0.3).astype(dtype)
                bias = rng.standard_normal(9).astype(dtype)
                want = C.conv_reference(x, kernel, bias, 1, "same", data_format=fmt, act=code)
                for use_bias in (bias, None):
                    want = C.conv_reference(x, kernel, use_bias, 1, "same", data_format=fmt, act=code)
                    got = C.conv(x, kernel, use_bias, 1, "same", data_format=fmt, act=code, n_threads=2)
                    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, np.abs(want).max()),
                                               err_msg=f"{name} {fmt} {spatial} k{k}")
    finally:
        _conv.select_isa()


def test_conv_rejects_bad_chunk_and_block():
    x, w, out, b = np.zeros(8, "f4"), np.zeros(18, "f4"), np.zeros(6, "f4"), np.zeros(3, "f4")
    with pytest.raises(ValueError, match="chunk_rows"):
        _conv_forward(x, w, b, out, _geo(), 1, 0, 0, 3, 1)
    with pytest.raises(ValueError, match="seg"):
        _conv.conv_direct_forward(x, w, b, out, _geo(), 1, 0, 0, 1)
    with pytest.raises(ValueError, match="channels_first needs stride 1"):
        _conv.conv_direct_forward(x, w, b, out, _geo(channels_first=True, strides=(1, 1, 2)), 1, 0, 4, 1)
    with pytest.raises(ValueError, match="input has"):
        _conv.conv_direct_forward(np.zeros(7, "f4"), w, b, out, _geo(), 1, 0, 4, 1)
    with pytest.raises(ValueError, match="bias"):
        _conv.conv_direct_forward(x, w, np.zeros(2, "f4"), out, _geo(), 1, 0, 4, 1)
    with pytest.raises(ValueError, match="blk"):
        _depthwise_forward(x, np.zeros(6, "f4"), np.zeros(2, "f4"), np.zeros(4, "f4"),
                                     _geo(groups=2, out_channels=2), 1, 0, 0, 1)
    geo = _geo(in_size=(2, 1, 1), out_size=(4, 1, 1))
    with pytest.raises(ValueError, match="block"):
        _conv_transpose.conv_transpose_forward(np.zeros(4, "f4"), np.zeros(18, "f4"), b, np.zeros(12, "f4"), geo,
                                               1, 0, 0, 1)


def test_zero_batch():
    y = C.conv(np.zeros((0, 5, 5, 2), "f4"), np.ones((3, 3, 2, 4), "f4"), None)
    assert y.shape == (0, 3, 3, 4)
    y = C.depthwise_conv(np.zeros((0, 5, 2), "f4"), np.ones((3, 2, 2), "f4"), None)
    assert y.shape == (0, 3, 4)
    y = CT.conv_transpose(np.zeros((0, 5, 2), "f4"), np.ones((3, 4, 2), "f4"), None, 2)
    assert y.shape == (0, 11, 4)
    y = C.separable_conv(np.zeros((0, 5, 2), "f4"), np.ones((3, 2, 1), "f4"), np.ones((1, 2, 3), "f4"), None)
    assert y.shape == (0, 3, 3)


def test_prepared_calls_equal_conv_and_refuse_other_shapes():
    """conv_call and depthwise_call settle everything but the input once: their calls give the
    op's result on every path (direct, im2col, 1x1, packed, channels_first) and refuse inputs of
    another shape."""
    rng = np.random.default_rng(31)
    for xs, ks, fmt, packed in [((2, 5, 20, 6), (3, 3, 6, 8), "channels_last", False),
                                ((2, 5, 5, 6), (3, 3, 6, 8), "channels_last", True),
                                ((1, 4, 4, 6), (1, 1, 6, 40), "channels_last", True),
                                ((2, 6, 5, 7), (3, 3, 6, 4), "channels_first", False)]:
        x = rng.standard_normal(xs).astype("float32")
        kernel = rng.standard_normal(ks).astype("float32")
        bias = rng.standard_normal(ks[-1]).astype("float32")
        pk = C.pack_conv_kernel(kernel) if packed else None
        call = C.conv_call(x.shape, kernel, bias, 1, "same", data_format=fmt, act=C.ACT_RELU,
                           packed=(lambda pk=pk: pk) if packed else None)
        want = C.conv_reference(x, kernel, bias, 1, "same", data_format=fmt, act=C.ACT_RELU)
        for _ in range(2):
            _close(call(x), want, "float32")
        with pytest.raises(ValueError, match="prepared for inputs of shape"):
            call(np.ascontiguousarray(x[:, :-1]))
    # depthwise: explicit padding (a ZeroPadding folded in), an activation mapped after the tiles
    for xs, fmt in [((2, 5, 7, 6), "channels_last"), ((2, 6, 5, 7), "channels_first")]:
        x = rng.standard_normal(xs).astype("float32")
        kernel = rng.standard_normal((3, 3, xs[-1] if fmt == "channels_last" else xs[1], 2)).astype("float32")
        bias = rng.standard_normal(kernel.shape[-2] * 2).astype("float32")
        call = C.depthwise_call(x.shape, kernel, bias, 2, ((1, 2), (0, 1)), 1, fmt, ACT_SWISH)
        want = C.depthwise_conv_reference(x, kernel, bias, 2, ((1, 2), (0, 1)), 1, fmt, ACT_SWISH)
        for _ in range(2):
            _close(call(x), want, "float32")
        with pytest.raises(ValueError, match="prepared for inputs of shape"):
            call(np.ascontiguousarray(x[:, :-1]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_taps_that_only_read_padding_are_dropped(dtype):
    """A "same" convolution on a map smaller than its window (InceptionV3's 3x3, 1x3 and 3x1
    convolutions on 1x1 maps) runs on the live taps alone (the kernel sliced, the padding made
    explicit), with the full convolution's results; windows with every tap live keep the kernel."""
    rng = np.random.default_rng(11)
    for xs, ks, pad, s, d, live in [
        ((2, 1, 1, 8), (3, 3, 8, 5), "same", 1, 1, 8 * 5), ((2, 1, 4, 8), (3, 1, 8, 5), "same", 1, 1, 8 * 5),
        ((1, 2, 2, 4), (5, 5, 4, 3), "same", 1, 1, 9 * 4 * 3), ((1, 1, 1, 4), (3, 3, 4, 3), "same", 1, 2, 4 * 3),
        ((3, 2, 4), (7, 4, 3), "causal", 1, 1, 2 * 4 * 3), ((1, 1, 2, 1, 4), (3, 3, 3, 4, 2), "same", 1, 1, 3 * 4 * 2),
        ((1, 3, 3, 4), (3, 3, 4, 3), "same", 2, 1, 3 * 3 * 4 * 3), ((1, 5, 5, 4), (3, 3, 4, 3), "same", 1, 1, 108),
    ]:
        x = rng.standard_normal(xs).astype(dtype)
        k = rng.standard_normal(ks).astype(dtype)
        b = rng.standard_normal(ks[-1]).astype(dtype)
        want = C.conv_reference(x, k, b, s, pad, d, 1, "channels_last", C.ACT_RELU)
        for packed in (None, lambda k=k: C.pack_conv_kernel(k)):
            call = C.conv_call(x.shape, k, b, s, pad, d, act=C.ACT_RELU, packed=packed)
            assert call.weights.size == live, (xs, ks)
            _close(call(x), want, dtype)
        _close(C.conv(x, k, b, s, pad, d, act=C.ACT_RELU), want, dtype)


IRB_CASES = [
    # (n, h, w, cin, ce, cout, k, strides, padding, expand act (None: no expansion), depthwise act,
    #  project act, residual, squeeze-and-excitation acts (or None))
    (2, 7, 9, 8, 48, 8, 3, 1, "same", "relu6", "relu6", "linear", True, None),
    (2, 7, 9, 8, 48, 12, 3, 2, ((0, 1), (0, 1)), "relu6", "relu6", "linear", False, None),
    (1, 5, 6, 16, 40, 24, 5, 2, ((1, 2), (1, 2)), "relu", "swish", "linear", False, None),
    (3, 6, 6, 16, 40, 16, 5, 1, "same", "hard_swish", "hard_swish", "relu", True, ("relu", "hard_sigmoid")),
    (2, 4, 20, 3, 33, 5, 3, 1, "valid", "linear", "relu", "swish", False, None),
    (3, 8, 8, 8, 40, 8, 3, 1, "same", "swish", "swish", "linear", True, ("swish", "sigmoid")),
    (2, 9, 9, 24, 24, 16, 3, 2, "same", None, "swish", "linear", False, ("swish", "sigmoid")),
    (2, 6, 5, 12, 12, 12, 3, 1, "same", None, "relu", "linear", True, None),
]


def _block_reference(x, ke, be, ae, kd, bd, ad, s, pad, se, kp, bp, aq, residual):
    """The block by the NumPy twins: expand, depthwise, squeeze-and-excitation, project."""
    codes = ACTIVATION_CODES
    e = x if ke is None else C.conv_reference(x, ke, be, 1, "valid", 1, 1, "channels_last", codes[ae])
    d = C.depthwise_conv_reference(e, kd, bd, s, pad, 1, "channels_last", codes[ad])
    if se is not None:
        (k1, b1, a1), (k2, b2, a2) = se
        hidden = apply_activation_reference(d.mean(axis=(1, 2)) @ k1 + b1, codes[a1])
        d = d * apply_activation_reference(hidden @ k2 + b2, codes[a2])[:, None, None, :]
    lin = C.conv_reference(d, kp, bp, 1, "valid", 1, 1, "channels_last", C.ACT_LINEAR)
    return apply_activation_reference(lin + x if residual else lin, codes[aq])


@pytest.mark.parametrize("isa", [0, 1, 2], ids=["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", IRB_CASES, ids=[f"case{i}" for i in range(len(IRB_CASES))])
def test_inverted_residual_kernel_matches_its_layers(case, dtype, isa):
    """The fused block (every ISA variant; by rows, by whole samples and sample by sample
    shared by the threads; with and without an expansion and a squeeze-and-excitation; strides 1 and 2, "same", "valid" and explicit
    padding, 3x3 and 5x5 windows, activations in the tiles and mapped after, channel counts
    with strip tails, the residual added in the projection's tiles, 1 and 2 threads) equals
    the block computed by the NumPy twins."""
    n, h, w, cin, ce, cout, k, s, pad, ae, ad, aq, residual, se_acts = case
    codes = ACTIVATION_CODES
    rng = np.random.default_rng(sum(map(ord, repr(case))))
    x = rng.standard_normal((n, h, w, cin)).astype(dtype)
    ke = None if ae is None else (rng.standard_normal((1, 1, cin, ce)) * 0.3).astype(dtype)
    be = rng.standard_normal(ce).astype(dtype)
    kd = (rng.standard_normal((k, k, ce, 1)) * 0.3).astype(dtype)
    bd = rng.standard_normal(ce).astype(dtype)
    kp = (rng.standard_normal((1, 1, ce, cout)) * 0.3).astype(dtype)
    bp = rng.standard_normal(cout).astype(dtype)
    se = None
    if se_acts is not None:
        cr = max(1, ce // 4) + 1
        se = (((rng.standard_normal((ce, cr)) * 0.3).astype(dtype), rng.standard_normal(cr).astype(dtype), se_acts[0]),
              ((rng.standard_normal((cr, ce)) * 0.3).astype(dtype), rng.standard_normal(ce).astype(dtype), se_acts[1]))
    want = _block_reference(x, ke, be, ae, kd, bd, ad, s, pad, se, kp, bp, aq, residual)
    mid = (n, h, w, ce)
    geo = C._depthwise_setup(mid, kd, bd, s, pad, 1, "channels_last", "t")[-1]
    expand = None if ke is None else (C.pack_conv_kernel(ke), be, codes[ae])
    gate = None if se is None else tuple((pack_dense_kernel(kk), bb, codes[aa]) for kk, bb, aa in se)
    by_rows = ke is not None and se is None
    try:
        assert _depthwise.select_isa(isa) in ("baseline", "avx2", "avx512")
        for threads in (1, 2):
            # by rows; by 1, 2 or all samples a task; sample by sample, shared by the threads
            for samples in ((0,) if by_rows else ()) + (1, 2, 100, -1):
                kernel = _depthwise.InvertedResidualKernel(
                    expand, (kd.reshape(-1), bd, codes[ad]), geo, gate, (C.pack_conv_kernel(kp), bp, codes[aq]), cout,
                    residual, threads, samples)
                got = np.full(want.shape, np.nan, dtype)
                kernel(x, got)
                _close(got, want, dtype)
            call = C.inverted_residual_call(
                x.shape, None if ke is None else (ke, be, codes[ae], C.pack_conv_kernel(ke)),
                (kd, bd, codes[ad], s, pad), (kp, bp, codes[aq], C.pack_conv_kernel(kp)), residual, n_threads=threads,
                squeeze=None if se is None else tuple((kk, bb, codes[aa]) for kk, bb, aa in se))
            _close(call(x), want, dtype)
    finally:
        _depthwise.select_isa()


def test_inverted_residual_kernel_refuses_what_does_not_fit():
    f4 = "float32"
    ke, kp = np.ones((1, 1, 4, 8), f4), np.ones((1, 1, 8, 4), f4)
    pe, pp = C.pack_conv_kernel(ke), C.pack_conv_kernel(kp)
    kd, b8, b4 = np.ones(9 * 8, f4), np.zeros(8, f4), np.zeros(4, f4)
    geo = C._depthwise_setup((2, 5, 5, 8), np.ones((3, 3, 8, 1), f4), None, 1, "same", 1, "channels_last", "t")[-1]
    gate = ((pack_dense_kernel(np.ones((8, 3), f4)), np.zeros(3, f4), 1),
            (pack_dense_kernel(np.ones((3, 8), f4)), b8, 4))

    def K(expand=(pe, b8, 2), dw=(kd, b8, 2), squeeze=None, project=(pp, b4, 0), cout=4, residual=True, samples=0):
        return _depthwise.InvertedResidualKernel(expand, dw, geo, squeeze, project, cout, residual, 2, samples)
    K()(np.ones((2, 5, 5, 4), f4), np.empty((2, 5, 5, 4), f4))
    K(squeeze=gate, samples=1)(np.ones((2, 5, 5, 4), f4), np.empty((2, 5, 5, 4), f4))
    with pytest.raises(ValueError, match="packed projection"):
        K(project=(pp[:-1], b4, 0))
    with pytest.raises(ValueError, match="depthwise bias"):
        K(dw=(kd, b4, 2))
    with pytest.raises(ValueError, match="residual needs"):
        K(project=(C.pack_conv_kernel(np.ones((1, 1, 8, 5), f4)), np.zeros(5, f4), 0), cout=5)
    with pytest.raises(ValueError, match="unknown activation code"):
        K(expand=(pe, b8, 99))
    with pytest.raises(ValueError, match="kernel has"):
        K(dw=(kd[:-1], b8, 2))
    with pytest.raises(ValueError, match="whole samples"):
        K(squeeze=gate)
    with pytest.raises(ValueError, match="whole samples"):
        K(expand=None, residual=False)
    with pytest.raises(ValueError, match="packed gate"):
        K(squeeze=(gate[0], (gate[1][0][:-1], b8, 4)), samples=1)
    k = K(residual=False)
    with pytest.raises(ValueError, match="input has"):
        k(np.ones((2, 5, 4, 4), f4), np.empty((2, 5, 5, 4), f4))
    with pytest.raises(ValueError, match="dtype float64"):
        k(np.ones((2, 5, 5, 4)), np.empty((2, 5, 5, 4), f4))
    with pytest.raises(ValueError, match="output has"):
        k(np.ones((2, 5, 5, 4), f4), np.empty((2, 5, 5, 3), f4))
    # what the op cannot fuse it leaves to the layers
    assert C.inverted_residual_call((2, 5, 5, 4), (ke, None, 2, None), (np.ones((3, 3, 8, 1), f4), None, 2, 1, "same"),
                                    (kp, None, 0, pp), False) is None
