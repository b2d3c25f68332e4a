"""Cropping / ZeroPadding / UpSampling: argument errors, shapes with unknown sizes, dtypes, and
bilinear upsampling against a direct formula (references in conformance/)."""

import numpy as np
import pytest

import klayers
from klayers import layers as L


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: L.Cropping2D(((1, 2, 3), (0, 0))), "cropping"),
        (lambda: L.Cropping2D((1, 2, 3)), "two elements"),
        (lambda: L.Cropping1D(-1), "cropping"),
        (lambda: L.ZeroPadding3D((1, 2)), "3 elements"),
        (lambda: L.ZeroPadding2D("x"), "padding"),
        (lambda: L.UpSampling2D(0), "size"),
        (lambda: L.UpSampling2D(interpolation="bicubic"), "bicubic"),
        (lambda: L.UpSampling3D(data_format="nchw"), "data_format"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, NotImplementedError), match=match):
        make()


def test_unknown_interpolation_is_a_config_error():
    with pytest.raises(ValueError, match="cubic-ish"):
        L.UpSampling2D(interpolation="cubic-ish")


def test_cropping_too_much_raises():
    with pytest.raises(ValueError, match="cropping"):
        L.Cropping1D((2, 2))(np.zeros((1, 4, 2), "float32"))
    with pytest.raises(ValueError, match="cropping"):
        L.Cropping2D(((0, 0), (3, 0)), data_format="channels_first")(np.zeros((1, 2, 4, 3), "float32"))


@pytest.mark.parametrize(
    "layer,in_shape,out_shape",
    [
        (lambda: L.Cropping1D((1, 2)), (None, 7, 3), (None, 4, 3)),
        (lambda: L.Cropping2D(((1, 0), (0, 2)), data_format="channels_first"), (None, 2, 5, None), (None, 2, 4, None)),
        (lambda: L.Cropping3D(1), (None, 4, 4, 4, 1), (None, 2, 2, 2, 1)),
        (lambda: L.ZeroPadding1D((0, 2)), (None, None, 3), (None, None, 3)),
        (lambda: L.ZeroPadding2D(((1, 0), (2, 3))), (None, 3, 3, 2), (None, 4, 8, 2)),
        (lambda: L.ZeroPadding3D(1, data_format="channels_first"), (None, 2, 1, 2, 3), (None, 2, 3, 4, 5)),
        (lambda: L.UpSampling1D(3), (None, 4, 2), (None, 12, 2)),
        (lambda: L.UpSampling2D((2, 3), interpolation="bilinear"), (None, 3, 2, 1), (None, 6, 6, 1)),
        (lambda: L.UpSampling3D((1, 2, 3), data_format="channels_first"), (None, 2, 2, 2, 2), (None, 2, 2, 4, 6)),
    ],
)
def test_shapes(layer, in_shape, out_shape):
    lay = layer()
    assert lay.compute_output_shape(in_shape) == out_shape
    sym = lay(klayers.Input(in_shape[1:]))
    assert tuple(sym.shape) == out_shape
    concrete = tuple(5 if d is None else d for d in in_shape)
    for dtype in ("float32", "float64"):
        lay2 = layer() if dtype == "float32" else type(lay).from_config(dict(lay.get_config(), dtype="float64"))
        y = lay2(np.ones(concrete, dtype))
        assert y.dtype == np.dtype(dtype)
        assert y.shape == tuple(5 if d is None else d for d in lay2.compute_output_shape(concrete))


def test_zero_padding_and_cropping_invert():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5, 2)).astype("float32")
    pad = ((1, 2), (0, 3), (2, 1))
    y = L.Cropping3D(pad)(L.ZeroPadding3D(pad)(x))
    np.testing.assert_array_equal(y, x)
    assert np.count_nonzero(L.ZeroPadding3D(pad)(np.ones_like(x))) == x.size


def test_upsampling_nearest_repeats_and_bilinear_interpolates():
    x = np.arange(6, dtype="float32").reshape(1, 2, 3, 1)
    y = L.UpSampling2D((2, 2))(x)
    np.testing.assert_array_equal(y[0, :, :, 0], np.repeat(np.repeat(x[0, :, :, 0], 2, 0), 2, 1))
    b = L.UpSampling2D((1, 2), interpolation="bilinear")(x)[0, 0, :, 0]
    # half-pixel centres: source positions -0.25, 0.25, 0.75, 1.25, 1.75, 2.25 (clamped at the edges)
    np.testing.assert_allclose(b, [0.0, 0.25, 0.75, 1.25, 1.75, 2.0])


def test_zero_padding_zeroes_its_borders_on_a_reused_buffer():
    """Inside a model call ZeroPadding writes into a reused arena buffer: every border value is
    set, whatever the buffer held before."""
    from klayers.backend import arena

    ar = arena.Arena()
    stale = ar.take((2, 5, 8, 3), "float32")
    stale[...] = np.nan
    ar.hold(stale)
    ar.drop(stale)
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 3)).astype("float32")
    before = arena.activate(ar)
    try:
        got = L.ZeroPadding2D(((1, 2), (2, 3)))(x)
    finally:
        arena.activate(before)
    assert np.shares_memory(got, stale)
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (1, 2), (2, 3), (0, 0))))
