"""Merge layers: maths, Keras's broadcasting rule, masks, functional forms, bad input."""

import numpy as np
import pytest

import klayers
from klayers import layers

RNG = np.random.default_rng(0)
A, B, C = (RNG.standard_normal((3, 4, 2)).astype("float32") for _ in range(3))


@pytest.mark.parametrize("cls,fn,expected", [
    (layers.Add, layers.add, A + B + C),
    (layers.Multiply, layers.multiply, A * B * C),
    (layers.Average, layers.average, (A + B + C) / 3),
    (layers.Maximum, layers.maximum, np.maximum(np.maximum(A, B), C)),
    (layers.Minimum, layers.minimum, np.minimum(np.minimum(A, B), C)),
], ids=["add", "multiply", "average", "maximum", "minimum"])
def test_elementwise(cls, fn, expected):
    np.testing.assert_allclose(cls()([A, B, C]), expected, rtol=1e-6)
    np.testing.assert_allclose(fn([A, B, C]), expected, rtol=1e-6)
    t = [klayers.Input((4, 2)) for _ in range(3)]
    assert fn(t).shape == (None, 4, 2)


def test_subtract_exactly_two():
    np.testing.assert_array_equal(layers.subtract([A, B]), A - B)
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.Subtract()([A, B, C])


def test_lower_rank_input_gets_axes_after_batch():
    v = RNG.standard_normal((3, 2)).astype("float32")
    np.testing.assert_allclose(layers.Add()([A, v]), A + v[:, None, :])
    assert layers.Add().compute_output_shape([(None, 4, 2), (None, 2)]) == (None, 4, 2)


@pytest.mark.parametrize("shapes", [[(3, 4, 2), (3, 5, 2)], [(3, 4), (3, 3)]])
def test_incompatible_shapes_raise(shapes):
    with pytest.raises(ValueError, match="incompatible shapes"):
        layers.Add()([np.zeros(s, "float32") for s in shapes])
    with pytest.raises(ValueError, match="incompatible shapes"):
        layers.Add()([klayers.Input(s[1:]) for s in shapes])


def test_different_batch_sizes_and_non_list():
    with pytest.raises(ValueError, match="batch sizes"):
        layers.Add()([np.zeros((2, 3), "float32"), np.zeros((3, 3), "float32")])
    with pytest.raises(ValueError, match="list of inputs"):
        layers.Add()(A)


def test_merge_masks_and():
    m1, m2 = RNG.random((3, 4)) < 0.5, RNG.random((3, 4)) < 0.5
    np.testing.assert_array_equal(layers.Add().compute_mask([A, B], [m1, m2]), m1 & m2)
    np.testing.assert_array_equal(layers.Add().compute_mask([A, B], [m1, None]), m1)
    assert layers.Add().compute_mask([A, B], [None, None]) is None


def test_concatenate_and_masks():
    np.testing.assert_array_equal(layers.concatenate([A, B], axis=1), np.concatenate([A, B], 1))
    m1 = RNG.random((3, 4)) < 0.5
    mask = layers.Concatenate().compute_mask([A, B], [m1, None])
    np.testing.assert_array_equal(mask, m1)
    m2 = RNG.random((3, 4)) < 0.5
    time_mask = layers.Concatenate(axis=1).compute_mask([A, B], [m1, m2])
    np.testing.assert_array_equal(time_mask, np.concatenate([m1, m2], 1))
    assert layers.Concatenate().compute_output_shape([(None, 4, 2), (None, 4, 3)]) == (None, 4, 5)


@pytest.mark.parametrize("shapes,axis", [([(3, 4, 2), (3, 5, 3)], -1), ([(3, 4), (3, 4, 1)], -1), ([(3, 4)], 2)])
def test_concatenate_bad_shapes(shapes, axis):
    with pytest.raises(ValueError, match="Concatenate"):
        layers.Concatenate(axis=axis)([np.zeros(s, "float32") for s in shapes])


@pytest.mark.parametrize("s1,s2,axes,expected", [
    ((3, 4), (3, 4), 1, (3, 1)),
    ((3, 4, 2), (3, 5, 2), 2, (3, 4, 5)),
    ((3, 4, 2), (3, 4, 5), 1, (3, 2, 5)),
    ((3, 2), (3, 4, 2), (1, 2), (3, 4)),
    ((3, 2, 2, 4), (3, 4, 6), (3, 1), (3, 2, 2, 6)),
])
def test_dot_matches_einsum(s1, s2, axes, expected):
    x, y = RNG.standard_normal(s1).astype("float32"), RNG.standard_normal(s2).astype("float32")
    out = layers.dot([x, y], axes=axes)
    assert out.shape == expected
    a0, a1 = (axes, axes) if isinstance(axes, int) else axes
    ref = np.stack([np.tensordot(x[i], y[i], axes=(a0 - 1, a1 - 1)) for i in range(3)])
    np.testing.assert_allclose(out.reshape(ref.shape) if ref.ndim != out.ndim else out, ref, rtol=1e-5, atol=1e-5)
    assert layers.Dot(axes).compute_output_shape([(None,) + s1[1:], (None,) + s2[1:]]) == (None,) + expected[1:]


def test_dot_normalize_is_cosine():
    x, y = RNG.standard_normal((3, 5)).astype("float32"), RNG.standard_normal((3, 5)).astype("float32")
    cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
    np.testing.assert_allclose(layers.Dot(1, normalize=True)([x, y])[:, 0], cos, rtol=1e-5)


@pytest.mark.parametrize("make,inputs,exc", [
    (lambda: layers.Dot(1), [np.zeros((2, 3)), np.zeros((2, 4))], ValueError),
    (lambda: layers.Dot(0), [np.zeros((2, 3)), np.zeros((2, 3))], ValueError),
    (lambda: layers.Dot(1), [np.zeros((2, 3))] * 3, ValueError),
    (lambda: layers.Dot("x"), None, TypeError),
    (lambda: layers.Dot((1, 2, 3)), None, ValueError),
])
def test_dot_errors(make, inputs, exc):
    with pytest.raises(exc):
        make()(inputs)


def test_masked_inputs_merged_in_a_model():
    a, b = klayers.Input((4,), dtype="int32"), klayers.Input((4,), dtype="int32")
    emb = layers.Embedding(5, 2, mask_zero=True)
    out = layers.Add()([emb(a), emb(b)])
    model = klayers.Model([a, b], out)
    xa, xb = np.array([[1, 0, 2, 3]]), np.array([[1, 2, 0, 3]])
    np.testing.assert_array_equal(model.compute_mask([xa, xb], None), (xa != 0) & (xb != 0))
