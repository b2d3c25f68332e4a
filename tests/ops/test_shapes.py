"""Output-size and padding arithmetic (klayers/ops/shapes.py) against brute force."""

import itertools

import pytest

from klayers.ops import shapes


@pytest.mark.parametrize("n,k,s,d", list(itertools.product([1, 2, 5, 8, 13], [1, 2, 3, 4], [1, 2, 3], [1, 2])))
def test_same_padding_covers_exactly_the_output(n, k, s, d):
    before, after = shapes.same_padding(n, k, s, d)
    out = shapes.conv_output_length(n, k, "same", s, d)
    assert out == -(-n // s)
    # every output window starts inside the padded input and ends inside it
    last_end = (out - 1) * s + shapes.effective_kernel(k, d)
    assert last_end <= before + n + after and after - before in (0, 1)


@pytest.mark.parametrize("n,k,s,d", list(itertools.product([1, 3, 7, 10], [1, 2, 3], [1, 2, 4], [1, 3])))
def test_valid_output_length_is_the_number_of_windows(n, k, s, d):
    span = shapes.effective_kernel(k, d)
    brute = len([i for i in range(0, n, s) if i + span <= n])
    assert shapes.conv_output_length(n, k, "valid", s, d) == brute


def test_normalize_tuple_errors_echo_the_value():
    assert shapes.normalize_tuple(3, 2, "kernel_size") == (3, 3)
    assert shapes.normalize_tuple([1, 2], 2, "strides") == (1, 2)
    with pytest.raises(ValueError, match="kernel_size=0"):
        shapes.normalize_tuple(0, 2, "kernel_size")
    with pytest.raises(ValueError, match=r"strides=\(1, 2, 3\)"):
        shapes.normalize_tuple((1, 2, 3), 2, "strides")
    assert shapes.normalize_tuple(0, 1, "padding", allow_zero=True) == (0,)
    with pytest.raises(ValueError, match="padding"):
        shapes.normalize_padding("half")
    with pytest.raises(ValueError, match="data_format"):
        shapes.normalize_data_format("channels_middle")


def test_deconv_output_length():
    assert shapes.deconv_output_length(4, 3, "valid", None, 2) == 9
    assert shapes.deconv_output_length(4, 3, "same", None, 2) == 8
    assert shapes.deconv_output_length(4, 3, "same", 1, 2) == 8
    assert shapes.deconv_output_length(None, 3, "same", None, 2) is None


@pytest.mark.parametrize("fmt,shape,split", [
    ("channels_last", (2, 5, 6, 3), (2, (5, 6), 3)),
    ("channels_first", (2, 3, 5, 6), (2, (5, 6), 3)),
    ("channels_last", (None, None, 4), (None, (None,), 4)),
])
def test_split_and_join_shape_are_inverses(fmt, shape, split):
    assert shapes.split_shape(shape, fmt) == split
    assert shapes.join_shape(*split, fmt) == shape


@pytest.mark.parametrize("n,k,s,d,padding", list(itertools.product([1, 4, 9], [1, 2, 3], [1, 2, 3], [1, 2], ["valid", "same"])))
def test_window_pads_fit_exactly_the_output_windows(n, k, s, d, padding):
    if padding == "valid" and shapes.effective_kernel(k, d) > n:
        return
    out = shapes.conv_output_length(n, k, padding, s, d)
    before, after = shapes.window_pads(n, out, k, s, shapes.pads_before((n,), (k,), padding, (s,), (d,))[0], d)
    assert (before, after) == (shapes.padding_amounts(n, k, padding, s, d) if padding == "same" else (0, after))
    # the last window ends inside the padded input, and no padding is wasted beyond it
    last_end = (out - 1) * s + shapes.effective_kernel(k, d)
    assert last_end <= before + n + after and (after == 0 or last_end == before + n + after)


@pytest.mark.parametrize("n,k,s,d,padding", list(itertools.product([1, 3, 5], [1, 2, 4], [1, 2, 3], [1, 2], ["valid", "same"])))
def test_transposed_extent_holds_every_scatter_and_the_crop(n, k, s, d, padding):
    out = shapes.conv_transpose_output_sizes((n,), (k,), padding, None, (s,), (d,))[0]
    pad = shapes.conv_transpose_pads((out,), (k,), padding, (s,), (d,))[0]
    full = shapes.conv_transpose_extent(n, out, k, s, d, pad)
    assert full >= (n - 1) * s + (k - 1) * d + 1 and full >= pad + out


def test_output_shapes_of_every_family():
    assert shapes.conv_output_shape((1, 7, 9, 3), (3, 3), 8, (2, 2), "same", (1, 1), "channels_last") == (1, 4, 5, 8)
    assert shapes.conv_output_shape((None, 3, 10), (3,), 4, (1,), "valid", (2,), "channels_first") == (None, 4, 6)
    with pytest.raises(ValueError, match="<= 0 due to downsampling in Conv1D c"):
        shapes.conv_output_shape((1, 3, 2), (5,), 4, (1,), "valid", (1,), "channels_last", where="Conv1D c")
    assert shapes.conv_transpose_output_shape((1, 4, 4, 2), (3, 3), 5, (2, 2), "same", (1, 1), None,
                                              "channels_last") == (1, 8, 8, 5)
    assert shapes.pool_geometry((7, 8), (2, 3), (2, 2), "same") == ((4, 4), (0, 0))
    assert shapes.pool_geometry((7, 8), (3, 3), (2, 2), "same") == ((4, 4), (1, 0))
    with pytest.raises(ValueError, match="larger than the input"):
        shapes.pool_geometry((2, 8), (3, 3), (1, 1), "valid")
    assert shapes.connected_output_sizes((10, 7), (3, 2), (2, 1), "valid") == (4, 6)


@pytest.mark.parametrize("values,fill,last,want", [
    ((5,), 1, False, (5, 1, 1)), ((5,), 1, True, (1, 1, 5)), ((4, 5), 0, True, (0, 4, 5)),
    ((3, 4, 5), 7, False, (3, 4, 5)),
])
def test_embed3(values, fill, last, want):
    assert shapes.embed3(values, fill, last) == want


def test_explicit_padding_pairs():
    """Explicit (before, after) pairs per axis: "valid" on the padded input; bad pairs refused."""
    assert shapes.conv_output_sizes((9, 8), (3, 3), ((0, 1), (1, 2)), (2, 2), (1, 1)) == (4, 5)
    assert shapes.pads_before((9, 8), (3, 3), ((0, 1), (1, 2)), (2, 2)) == (0, 1)
    assert shapes.axis_paddings((9,), (3,), "same", (1,)) == [(1, 1)]
    for bad in (((0, 1),), ((0, -1), (1, 1)), ((0, 1, 2), (1, 1)), ((0.5, 1), (1, 1)), "nope"):
        with pytest.raises(ValueError):
            shapes.conv_output_sizes((9, 8), (3, 3), bad, (1, 1), (1, 1))
