"""Embedding recorded from tf-keras 2.21 and Keras 3.15: integer and float indices, masks
(mask_zero), input_length, ranks 1-3, initializer/regularizer/constraint arguments."""

from __future__ import annotations

from core import SEED, int_input, record_layer


def float_indices(high):
    def make(rng, shape, dtype):
        return (rng.random(shape) * (high - 0.01)).astype(dtype)
    return make


CASES = [
    # name, kwargs, input shape (no batch), input maker, dtype
    ("embedding_basic", {"input_dim": 10, "output_dim": 3}, (5,), int_input(10), "int32"),
    ("embedding_mask_zero", {"input_dim": 7, "output_dim": 4, "mask_zero": True}, (6,), int_input(7), "int32"),
    ("embedding_input_length", {"input_dim": 12, "output_dim": 2, "input_length": 4}, (4,), int_input(12), "int32"),
    ("embedding_float_indices", {"input_dim": 9, "output_dim": 3}, (5,), float_indices(9), "float32"),
    ("embedding_rank3_indices", {"input_dim": 6, "output_dim": 5, "mask_zero": True}, (2, 3), int_input(6), "int32"),
    ("embedding_int64", {"input_dim": 20, "output_dim": 3, "embeddings_initializer": "glorot_normal",
                         "embeddings_regularizer": {"class_name": "L2", "config": {"l2": 0.01}},
                         "activity_regularizer": "l1",
                         "embeddings_constraint": {"class_name": "MaxNorm", "config": {"max_value": 1.5, "axis": 1}}},
     (4,), int_input(20), "int64"),
    ("embedding_scalar_index", {"input_dim": 5, "output_dim": 2}, (), int_input(5), "int32"),
    ("embedding_input_length_tuple", {"input_dim": 8, "output_dim": 2, "input_length": (2, None)}, (2, 3), int_input(8), "int32"),
    ("embedding_input_shape", {"input_dim": 4, "output_dim": 6, "input_shape": (3,), "name": "emb"}, (3,), int_input(4), "int32"),
    ("embedding_float_mask", {"input_dim": 5, "output_dim": 2, "mask_zero": True}, (4,), int_input(5), "float32"),
    ("embedding_float64", {"input_dim": 5, "output_dim": 3, "dtype": "float64"}, (3,), int_input(5), "int32"),
]


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for name, kwargs, shape, make, dtype in CASES:
        record_layer(rec, keras, name, "Embedding", kwargs, shape, dtype=dtype, make_input=make)


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    for name, kwargs, shape, make, dtype in [
        ("embedding_basic", {"input_dim": 10, "output_dim": 3}, (5,), int_input(10), "int32"),
        ("embedding_mask_zero", {"input_dim": 7, "output_dim": 4, "mask_zero": True}, (6,), int_input(7), "int32"),
        ("embedding_rank3", {"input_dim": 6, "output_dim": 5, "embeddings_initializer": "he_normal"}, (2, 3), int_input(6), "int32"),
    ]:
        record_layer(rec, keras, name, "Embedding", kwargs, shape, dtype=dtype, make_input=make, keras3=True)
