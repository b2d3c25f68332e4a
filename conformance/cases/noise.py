"""Noise layers recorded from tf-keras 2.21 and Keras 3.15: configs, and the identity at
inference (``training`` None or False). Their training-mode distributions are random draws,
tested statistically in tests/layers/test_noise.py."""

from __future__ import annotations

from core import SEED, record_layer

CASES = [
    ("gaussian_noise_default", "GaussianNoise", {"stddev": 0.1}, (4,), None),
    ("gaussian_noise_seed", "GaussianNoise", {"stddev": 1.0, "seed": 3}, (3, 2), False),
    ("gaussian_noise_rank4", "GaussianNoise", {"stddev": 0.5}, (2, 2, 3), None),
    ("gaussian_noise_zero", "GaussianNoise", {"stddev": 0.0, "name": "gn"}, (5,), False),
    ("gaussian_noise_int_stddev", "GaussianNoise", {"stddev": 2}, (2, 3), None),
    ("gaussian_noise_float64", "GaussianNoise", {"stddev": 0.3, "dtype": "float64"}, (3,), False),
    ("gaussian_dropout_default", "GaussianDropout", {"rate": 0.3}, (4,), None),
    ("gaussian_dropout_seed", "GaussianDropout", {"rate": 0.5, "seed": 5}, (2, 3), False),
    ("gaussian_dropout_rate0", "GaussianDropout", {"rate": 0.0}, (3,), True),
    ("gaussian_dropout_rate1", "GaussianDropout", {"rate": 1.0}, (3,), True),
    ("gaussian_dropout_rank4", "GaussianDropout", {"rate": 0.1}, (2, 2, 2), None),
    ("gaussian_dropout_named", "GaussianDropout", {"rate": 0.9, "name": "gd"}, (4, 1), False),
    ("alpha_dropout_default", "AlphaDropout", {"rate": 0.2}, (4,), None),
    ("alpha_dropout_seed", "AlphaDropout", {"rate": 0.5, "seed": 1}, (3, 2), False),
    ("alpha_dropout_noise_shape", "AlphaDropout", {"rate": 0.3, "noise_shape": (None, 1, 2)}, (3, 2), False),
    ("alpha_dropout_rate0", "AlphaDropout", {"rate": 0.0}, (3,), True),
    ("alpha_dropout_rank4", "AlphaDropout", {"rate": 0.1}, (2, 2, 2), None),
    ("alpha_dropout_named", "AlphaDropout", {"rate": 0.6, "name": "ad"}, (5,), False),
]


def record(rec):
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    for name, cls, kwargs, shape, training in CASES:
        dtype = "float64" if kwargs.get("dtype") == "float64" else "float32"
        record_layer(rec, keras, name, cls, kwargs, shape, dtype=dtype, training=training)


def record_keras3(rec):
    import keras

    keras.utils.set_random_seed(SEED)
    for name, cls, kwargs, shape, training in [
        ("gaussian_noise", "GaussianNoise", {"stddev": 0.2, "seed": 4}, (3,), False),
        ("gaussian_dropout", "GaussianDropout", {"rate": 0.4}, (2, 3), None),
        ("alpha_dropout", "AlphaDropout", {"rate": 0.3, "noise_shape": (None, 1, 3)}, (2, 3), False),
    ]:
        record_layer(rec, keras, name, cls, kwargs, shape, training=training, keras3=True)
