"""The backend's global state: ``floatx``, ``epsilon``, ``image_data_format``, the counters
behind generated layer names, and the seeded random generator (``clear_session`` resets the
last two, as Keras's does)."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

__all__ = [
    "cast_to_floatx",
    "clear_session",
    "epsilon",
    "floatx",
    "get_uid",
    "image_data_format",
    "random_generator",
    "random_normal",
    "random_uniform",
    "reset_uids",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "set_random_seed",
    "truncated_normal",
]

_FLOATX = "float32"
_EPSILON = 1e-7
_IMAGE_DATA_FORMAT = "channels_last"
_RNG = np.random.default_rng()

ArrayLike = Any


# ---------------------------------------------------------------- configuration


def floatx() -> str:
    """The default float type name, ``"float32"`` unless :func:`set_floatx` changed it."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default float type: one of ``"float16"``, ``"bfloat16"``, ``"float32"``,
    ``"float64"`` (NumPy has no bfloat16; it is accepted as Keras does but arrays use float32).

    Raises:
        ValueError: any other value.
    """
    global _FLOATX
    accepted = {"float16", "bfloat16", "float32", "float64"}
    if value not in accepted:
        raise ValueError(f"Unknown `floatx` value: {value}. Expected one of {accepted}")
    _FLOATX = str(value)


def epsilon() -> float:
    """The fuzz factor used in numeric expressions (``1e-07`` by default)."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Set the fuzz factor returned by :func:`epsilon`."""
    global _EPSILON
    _EPSILON = float(value)


def image_data_format() -> str:
    """``"channels_last"`` (default) or ``"channels_first"``: the default layout of image layers."""
    return _IMAGE_DATA_FORMAT


def set_image_data_format(data_format: str) -> None:
    """Set the default image layout.

    Raises:
        ValueError: ``data_format`` is not ``"channels_first"`` or ``"channels_last"``.
    """
    global _IMAGE_DATA_FORMAT
    accepted = {"channels_last", "channels_first"}
    if data_format not in accepted:
        raise ValueError(f"Unknown `data_format`: {data_format}. Expected one of {accepted}")
    _IMAGE_DATA_FORMAT = str(data_format)


def clear_session() -> None:
    """Reset generated layer names (``dense``, ``dense_1`` ... start again) and the unseeded
    random generator, as ``keras.backend.clear_session`` does."""
    global _RNG
    reset_uids()
    _RNG = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seed the generator that unseeded initializers and random ops draw from."""
    global _RNG
    _RNG = np.random.default_rng(seed)


def _dtype(dtype: Any) -> np.dtype:
    name = floatx() if dtype is None else dtype
    if name == "bfloat16":
        name = "float32"
    return np.dtype(name)


def cast_to_floatx(x: ArrayLike) -> Union[np.ndarray, np.generic]:
    """``x`` as a NumPy value of dtype :func:`floatx` (a scalar stays a NumPy scalar)."""
    arr = np.asarray(x, dtype=_dtype(None))
    return arr[()] if arr.ndim == 0 else arr


# ---------------------------------------------------------------- random


def random_generator(seed: Optional[int] = None) -> np.random.Generator:
    """A fresh Generator for a seed (same seed, same draws), else the shared one that
    :func:`set_random_seed` seeds and :func:`clear_session` renews."""
    return _RNG if seed is None else np.random.default_rng(seed)


def random_normal(
    shape: Sequence[int],
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: Optional[str] = None,
    seed: Optional[int] = None,
) -> np.ndarray:
    """Normal draws of ``shape`` with ``mean`` and ``stddev``; dtype defaults to floatx.
    A given ``seed`` always gives the same array."""
    rng = random_generator(seed)
    out = rng.standard_normal(tuple(shape)) * stddev + mean
    return out.astype(_dtype(dtype), copy=False)


def random_uniform(
    shape: Sequence[int],
    minval: float = 0.0,
    maxval: float = 1.0,
    dtype: Optional[str] = None,
    seed: Optional[int] = None,
) -> np.ndarray:
    """Uniform draws in ``[minval, maxval)`` of ``shape``; dtype defaults to floatx.
    An integer dtype draws integers in ``[minval, maxval)``."""
    rng = random_generator(seed)
    dt = _dtype(dtype)
    if np.issubdtype(dt, np.integer):
        return rng.integers(int(minval), int(maxval), size=tuple(shape)).astype(dt)
    out = rng.uniform(minval, maxval, size=tuple(shape)).astype(dt, copy=False)
    # float32 rounding can land exactly on maxval; Keras's range is half-open
    return np.minimum(out, np.nextafter(dt.type(maxval), dt.type(minval)), out=out) if maxval > minval else out


def truncated_normal(
    shape: Sequence[int],
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: Optional[str] = None,
    seed: Optional[int] = None,
) -> np.ndarray:
    """Normal draws with values beyond two ``stddev`` from ``mean`` re-drawn (as
    ``tf.random.truncated_normal``), so every value lies in ``mean ± 2 stddev``."""
    rng = random_generator(seed)
    z = rng.standard_normal(tuple(shape))
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return (z * stddev + mean).astype(_dtype(dtype), copy=False)


# ---------------------------------------------------------------- construction & shapes


# ---------------------------------------------------------------- generated names
# "dense", "dense_1", ... per prefix, as Keras's backend.get_uid; clear_session starts again.
_UID_LOCK = threading.Lock()
_UIDS: Dict[str, int] = defaultdict(int)


def get_uid(prefix: str = "") -> int:
    """How many times ``prefix`` was asked for before this call (0 the first time)."""
    with _UID_LOCK:
        n = _UIDS[prefix]
        _UIDS[prefix] += 1
    return n


def reset_uids() -> None:
    """Forget every generated name (part of :func:`clear_session`)."""
    with _UID_LOCK:
        _UIDS.clear()
