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
