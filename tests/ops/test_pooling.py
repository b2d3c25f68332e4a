"""The compiled pooling kernels against their NumPy twins: both dtypes, 1 and 2 threads, every
rank, data format, padding and mode, with NaN and +-inf in the inputs."""

import numpy as np
import pytest

from klayers._ext import pooling as _pooling
from klayers.ops import pooling as P

# (pool_size, strides) per rank: stride equal to, smaller and larger than the window,
# non-square windows, a window of 1.
WINDOWS = {
    1: [((2,), (2,)), ((3,), (1,)), ((2,), (3,)), ((4,), (3,)), ((1,), (1,))],
    2: [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 3), (1, 2)), ((3, 1), (3, 4)), ((1, 1), (1, 1))],
    3: [((2, 2, 2), (2, 2, 2)), ((3, 2, 1), (1, 2, 3)), ((1, 3, 2), (2, 1, 1))],
}
SPATIAL = {1: (11,), 2: (7, 6), 3: (5, 6, 4)}
CASES = [(rank, k, s) for rank in (1, 2, 3) for k, s in WINDOWS[rank]]


def _input(shape, dtype, seed=0, special=True):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if special:
        flat = x.reshape(-1)
        flat[::7] = np.nan
        flat[3::13] = -np.inf
        flat[5::29] = np.inf
        x[0, :1] = np.nan   # whole windows of NaN
    return x


@pytest.mark.parametrize("mode", [P.MODE_MAX, P.MODE_AVG], ids=["max", "avg"])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"], ids=["cl", "cf"])
@pytest.mark.parametrize("rank,pool_size,strides", CASES, ids=[f"{r}d-k{k}-s{s}" for r, k, s in CASES])
def test_pool_matches_reference(rank, pool_size, strides, data_format, padding, mode, kernel_twin):
    channels = 5 if rank < 3 else 3
    spatial = SPATIAL[rank]
    shape = (2,) + spatial + (channels,) if data_format == "channels_last" else (2, channels) + spatial

    def case(dtype):
        return (_input(shape, dtype), pool_size, strides, padding, data_format, mode), {}

    # a max is a selection: bit for bit; an average's sum may round differently
    kernel_twin(P.pool, case, exact=mode == P.MODE_MAX)


@pytest.mark.parametrize("mode", [P.MODE_MAX, P.MODE_AVG], ids=["max", "avg"])
def test_pool_tensorflow_nan_semantics(mode):
    """Recorded from tf-keras: NaN never wins a max; a window of NaN or -inf gives the lowest
    finite value; an average propagates NaN."""
    nan, inf = np.nan, np.inf
    x = np.array([1, nan, 3, 2, nan, nan, -inf, -inf, inf, nan], "float32").reshape(1, 10, 1)
    got = P.pool(x, (2,), (2,), "valid", "channels_last", mode).ravel()
    lowest = np.finfo(np.float32).min
    if mode == P.MODE_MAX:
        np.testing.assert_array_equal(got, [1, 3, lowest, lowest, inf])
    else:
        np.testing.assert_array_equal(got, [nan, 2.5, nan, -inf, nan])


def test_same_average_divides_by_the_in_bounds_count():
    x = np.arange(1, 6, dtype="float32").reshape(1, 5, 1)
    np.testing.assert_array_equal(P.pool(x, (3,), (2,), "same", "channels_last", P.MODE_AVG).ravel(), [1.5, 3, 4.5])
    x = np.arange(1, 26, dtype="float32").reshape(1, 5, 5, 1)
    got = P.pool(x, (4, 4), (3, 3), "same", "channels_last", P.MODE_AVG).ravel()
    np.testing.assert_array_equal(got, [7, 9, 17, 19])  # tf-keras's numbers


@pytest.mark.parametrize("mode", [P.MODE_MAX, P.MODE_AVG], ids=["max", "avg"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"], ids=["cl", "cf"])
@pytest.mark.parametrize("shape", [(3, 7, 4), (1, 300, 70), (2, 5, 6, 3), (1, 40, 50, 33), (2, 3, 4, 2, 5), (1, 1, 1, 1, 1)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("keepdims", [False, True], ids=["flat", "keepdims"])
def test_global_pool_matches_reference(shape, data_format, mode, keepdims, kernel_twin):
    def case(dtype):
        return (_input(shape, dtype, special=shape[1] > 4), data_format, mode, keepdims), {}

    kernel_twin(P.global_pool, case, exact=mode == P.MODE_MAX)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"], ids=["cl", "cf"])
@pytest.mark.parametrize("batch,steps,channels", [(3, 6, 4), (1, 500, 40)])
def test_masked_global_average(batch, steps, channels, data_format, kernel_twin):
    def case(dtype):
        rng = np.random.default_rng(3)
        shape = (batch, steps, channels) if data_format == "channels_last" else (batch, channels, steps)
        x = rng.standard_normal(shape).astype(dtype)
        mask = rng.random((batch, steps)) > 0.4
        mask[0] = False  # a fully masked sample: 0 / 0 = NaN, as in Keras
        return (x, data_format, P.MODE_AVG), {"mask": mask}

    got = kernel_twin(P.global_pool, case)
    assert np.isnan(got[0]).all()


def test_global_max_propagates_nan_and_keeps_minus_inf():
    x = np.array([[-5, np.nan, -3, -2], [-np.inf, -np.inf, -np.inf, -np.inf]], "float32").reshape(2, 4, 1)
    for df, xx in (("channels_last", x), ("channels_first", x.transpose(0, 2, 1))):
        got = P.global_pool(xx, df, P.MODE_MAX).ravel()
        assert np.isnan(got[0]) and got[1] == -np.inf


def test_results_do_not_depend_on_thread_count():
    x = _input((2, 33, 35, 48), "float32", special=False)
    for fn in (lambda n: P.pool(x, (3, 3), (2, 2), "same", "channels_last", P.MODE_MAX, n_threads=n),
               lambda n: P.global_pool(x[:1], "channels_last", P.MODE_MAX, n_threads=n)):
        np.testing.assert_array_equal(fn(1), fn(2))
    one = P.pool(x, (3, 3), (2, 2), "same", "channels_last", P.MODE_AVG, n_threads=1)
    np.testing.assert_allclose(one, P.pool(x, (3, 3), (2, 2), "same", "channels_last", P.MODE_AVG, n_threads=2), rtol=1e-6)


def test_non_contiguous_read_only_and_integer_inputs():
    x = _input((2, 8, 9, 6), "float32", special=False)
    strided = x[:, ::2, :, ::2]
    ro = np.asfortranarray(strided)
    ro.setflags(write=False)
    want = P.pool_reference(np.ascontiguousarray(strided), (2, 2), (2, 2), "valid", "channels_last", P.MODE_MAX)
    np.testing.assert_array_equal(P.pool(strided, (2, 2), (2, 2), "valid", "channels_last", P.MODE_MAX), want)
    np.testing.assert_array_equal(P.pool(ro, (2, 2), (2, 2), "valid", "channels_last", P.MODE_MAX), want)
    ints = np.arange(24).reshape(1, 4, 6)
    np.testing.assert_array_equal(P.pool(ints, (2,), (2,), "valid", "channels_last", P.MODE_MAX), [[[6, 7, 8, 9, 10, 11], [18, 19, 20, 21, 22, 23]]])
    np.testing.assert_array_equal(P.global_pool(ints, "channels_last", P.MODE_MAX), [[18, 19, 20, 21, 22, 23]])


def test_empty_batch_and_channels():
    for shape in [(0, 6, 6, 3), (2, 6, 6, 0)]:
        x = np.zeros(shape, "float32")
        assert P.pool(x, (2, 2), (2, 2), "valid", "channels_last", P.MODE_MAX).shape == (shape[0], 3, 3, shape[3])
        assert P.global_pool(x, "channels_last", P.MODE_AVG).shape == (shape[0], shape[3])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: P.pool(np.zeros((1, 3, 5, 2), "float32"), (4, 4), (4, 4), "valid", "channels_last", P.MODE_MAX, where="MaxPooling2D m"),
         "MaxPooling2D m: the pooling window"),
        (lambda: P.pool(np.zeros((1, 5, 2), "float32"), (2, 2), (2, 2), "valid", "channels_last", P.MODE_MAX), "expected a 4-D input"),
        (lambda: P.pool(np.zeros((1, 5, 2), "float32"), (2,), (0,), "valid", "channels_last", P.MODE_MAX), "strides"),
        (lambda: P.pool(np.zeros((1, 5, 2), "float32"), (2,), (1,), "causal", "channels_last", P.MODE_MAX), "padding"),
        (lambda: P.pool(np.zeros((1, 5, 2), "float32"), (2,), (1,), "valid", "channels_last", 7), "mode"),
        (lambda: P.global_pool(np.zeros((1, 0, 2), "float32"), "channels_last", P.MODE_AVG), "dimension 0"),
        (lambda: P.global_pool(np.zeros((1, 4, 2), "float32"), "channels_last", P.MODE_MAX, mask=np.ones((1, 4))), "mask"),
        (lambda: P.global_pool(np.zeros((1, 4, 2), "float32"), "channels_last", P.MODE_AVG, mask=np.ones((1, 3))), "mask"),
    ],
    ids=["window-larger", "rank", "stride-0", "causal", "mode", "zero-steps", "mask-max", "mask-shape"],
)
def test_ops_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_kernels_check_shapes_before_releasing_the_gil():
    x = np.zeros((1, 1, 4, 4, 2), "float32")
    with pytest.raises(ValueError, match="shape mismatch"):
        _pooling.pool_forward(x, np.zeros((1, 1, 2, 2, 3), "float32"), (1, 2, 2), (1, 2, 2), (0, 0, 0), 0, 1)
    with pytest.raises(ValueError, match="outside the input"):
        _pooling.pool_forward(x, np.zeros((1, 1, 4, 4, 2), "float32"), (1, 2, 2), (1, 2, 2), (0, 0, 0), 0, 1)
    with pytest.raises(ValueError, match="bad window"):
        _pooling.pool_forward(x, np.zeros((1, 1, 2, 2, 2), "float32"), (1, 0, 2), (1, 2, 2), (0, 0, 0), 0, 1)
    with pytest.raises(ValueError):  # mixed dtypes match no fused specialization
        _pooling.pool_forward(x, np.zeros((1, 1, 2, 2, 2), "float64"), (1, 2, 2), (1, 2, 2), (0, 0, 0), 0, 1)
    x3 = np.zeros((2, 5, 3), "float32")
    with pytest.raises(ValueError, match="shape mismatch"):
        _pooling.global_pool_cl(x3, np.zeros((0, 0), "float32"), np.zeros((2, 4), "float32"), np.zeros((2, 1, 3), "float32"), 0, 0, 1)
    with pytest.raises(ValueError, match="mask"):
        _pooling.global_pool_cl(x3, np.zeros((2, 4), "float32"), np.zeros((2, 3), "float32"), np.zeros((2, 1, 3), "float32"), 1, 1, 1)
    with pytest.raises(ValueError, match="shape mismatch"):
        _pooling.global_pool_cf(np.zeros((6, 5), "float32"), np.zeros((0, 0), "float32"), np.zeros(5, "float32"), 3, 0, 0, 1)


@pytest.mark.parametrize("isa", [0, 1, 2], ids=["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_global_average_column_sums_every_isa(isa, dtype):
    """The register-blocked column sums of the global average (every ISA variant this CPU has;
    channel counts that fill blocks of 8 vectors, single vectors and scalar tails; batches
    split over the spatial axis) add each channel in row order: exactly a plain running sum."""
    rng = np.random.default_rng(isa)
    try:
        assert _pooling.select_isa(isa) in ("baseline", "avx2", "avx512")
        for shape in [(1, 7, 5, 300), (3, 4, 4, 17), (2, 1, 9, 8), (1, 3, 3, 1000)]:
            x = rng.standard_normal(shape).astype(dtype)
            flat = x.reshape(shape[0], -1, shape[-1])
            running = np.zeros((shape[0], shape[-1]), dtype)
            for s in range(flat.shape[1]):
                running = running + flat[:, s]
            for threads in (1, 2):
                got = P.global_pool(x, "channels_last", P.MODE_AVG, n_threads=threads)
                if threads == 1:
                    np.testing.assert_array_equal(got, running / np.dtype(dtype).type(flat.shape[1]))
                else:
                    np.testing.assert_allclose(got, running / flat.shape[1], rtol=1e-5 if dtype == "float32" else 1e-12)
    finally:
        _pooling.select_isa()


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_pooling_over_explicit_zero_padding(fmt, dtype):
    """Max pooling with explicit (before, after) zero padding gives exactly what padding the
    input with zeros and pooling "valid" gives (1-3 spatial axes, NaN in the input, pads as
    wide as the window: the padded path), on 1 and 2 threads; average pooling refuses it."""
    rng = np.random.default_rng(5)
    for spatial, k, s, pad in [((7, 9), (3, 3), (2, 2), ((1, 1), (1, 1))), ((5, 7), (3, 2), (1, 2), ((0, 2), (1, 0))),
                               ((10,), (3,), (2,), ((2, 1),)), ((4, 4), (2, 2), (1, 1), ((2, 0), (0, 3))),
                               ((3, 4, 5), (2, 2, 3), (1, 2, 2), ((1, 0), (0, 1), (2, 2)))]:
        shape = (2,) + spatial + (5,) if fmt == "channels_last" else (2, 5) + spatial
        x = (rng.standard_normal(shape) - 1.0).astype(dtype)
        x.reshape(-1)[[3, 17]] = [np.nan, -np.inf]
        widths = [(0, 0)] + list(pad) + [(0, 0)] if fmt == "channels_last" else [(0, 0), (0, 0)] + list(pad)
        for threads in (1, 2):
            got = P.pool(x, k, s, pad, fmt, P.MODE_MAX, n_threads=threads)
            np.testing.assert_array_equal(got, P.pool(np.pad(x, widths), k, s, "valid", fmt, P.MODE_MAX, n_threads=threads))
            np.testing.assert_array_equal(got, P.pool_reference(x, k, s, pad, fmt, P.MODE_MAX))
    with pytest.raises(ValueError, match="max pooling only"):
        P.pool(np.ones((1, 4, 4, 2), dtype), (2, 2), (2, 2), ((1, 1), (1, 1)), "channels_last", P.MODE_AVG)
    with pytest.raises(ValueError, match="pair"):
        P.pool(np.ones((1, 4, 4, 2), dtype), (2, 2), (2, 2), ((1, 1),), "channels_last", P.MODE_MAX)


def _window_loop(x, k, s, before, out_hw, mode, full_taps):
    """Channels_last 2-D pooling as the kernels define it: each output pixel takes its in-input
    taps in row then column order, the first starting the reduction (max: ``v > m``, from the
    lowest finite value; average: a running sum, then one division by the count; mode 2: max,
    then 0 when the window reaches into the zero padding)."""
    n, h, w, c = x.shape
    lowest = np.finfo(x.dtype).min
    out = np.empty((n,) + out_hw + (c,), x.dtype)
    for oh in range(out_hw[0]):
        for ow in range(out_hw[1]):
            acc, count = None, 0
            for a in range(k[0]):
                for b in range(k[1]):
                    i, j = oh * s[0] - before[0] + a, ow * s[1] - before[1] + b
                    if not (0 <= i < h and 0 <= j < w):
                        continue
                    v = x[:, i, j]
                    if mode == P.MODE_AVG:
                        with np.errstate(invalid="ignore"):  # inf - inf: NaN, as the kernel
                            acc = v.copy() if acc is None else acc + v
                    else:
                        m = np.full_like(v, lowest) if acc is None else acc
                        acc = np.where(v > m, v, m)
                    count += 1
            if mode == P.MODE_AVG:
                acc = acc / x.dtype.type(count)
            elif mode == _pooling.MODE_MAX_ZERO_PADDED and count < full_taps:
                acc = np.zeros_like(x[:, 0, 0]) if acc is None else np.where(0 > acc, 0, acc).astype(x.dtype)
            out[:, oh, ow] = acc
    return out


@pytest.mark.parametrize("isa", [0, 1, 2], ids=["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_windowed_pooling_every_isa(isa, dtype):
    """The register-blocked channels_last windows (every ISA variant this CPU has; channel
    counts that fill blocks of four vectors, single vectors and scalar tails; a window of more
    rows than the kernel keeps on its stack) reduce each pixel's taps in row then column order:
    exactly the plain loop, for max (NaN and +-inf in the input), average and max over zero
    padding, on 1 and 2 threads."""
    rng = np.random.default_rng(isa)
    try:
        assert _pooling.select_isa(isa) in ("baseline", "avx2", "avx512")
        for c in (1, 3, 16, 37, 130):
            for (h, w), k, s, before, mode in [((7, 9), (3, 3), (1, 1), (1, 1), P.MODE_AVG),
                                               ((7, 9), (3, 3), (2, 2), (0, 0), P.MODE_MAX),
                                               ((6, 7), (3, 2), (2, 1), (1, 0), _pooling.MODE_MAX_ZERO_PADDED),
                                               ((10, 10), (9, 9), (1, 1), (4, 4), P.MODE_AVG),
                                               ((10, 10), (9, 9), (1, 1), (4, 4), P.MODE_MAX)]:
                x = (rng.standard_normal((2, h, w, c)) * 3).astype(dtype)
                x.reshape(-1)[::11] = np.nan
                x.reshape(-1)[4::17] = -np.inf
                x.reshape(-1)[6::23] = np.inf
                out_hw = tuple((n + 2 * p - kk) // ss + 1 for n, p, kk, ss in zip((h, w), before, k, s))
                want = _window_loop(x, k, s, before, out_hw, mode, k[0] * k[1])
                for threads in (1, 2):
                    got = np.empty((2, 1) + out_hw + (c,), dtype)
                    _pooling.pool_forward(x.reshape((2, 1, h, w, c)), got, (1,) + k, (1,) + s, (0,) + before,
                                          mode, threads)
                    np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg=f"c={c} k={k} mode={mode}")
    finally:
        _pooling.select_isa()
