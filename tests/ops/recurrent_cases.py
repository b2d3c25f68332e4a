"""Random recurrent problems shared by the recurrent op tests (tests/ops/test_recurrent*.py)."""

from typing import List, Tuple

import numpy as np

from klayers.ops import recurrent as R

#: the cell kinds of the recurrent kernels ("gru": reset_after=True, "gru_before": False)
CELLS = ["simple", "gru", "gru_before", "lstm"]


def problem(cell: str, dtype: str, batch: int, units: int, rng: np.random.Generator, T: int = 6,
            n_in: int = 4) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, List[np.ndarray], np.ndarray]:
    """``(x, kernel, recurrent_kernel, bias, initial states, mask)`` of one random sequence
    problem of ``cell``: ``x`` is ``(batch, T, n_in)``, the mask keeps about 60 % of the steps."""
    G = R.GATES[cell]
    x = rng.standard_normal((batch, T, n_in)).astype(dtype)
    k = (rng.standard_normal((n_in, G * units)) * 0.3).astype(dtype)
    rk = (rng.standard_normal((units, G * units)) * 0.3 / np.sqrt(max(units / 5, 1))).astype(dtype)
    b = (rng.standard_normal((2, G * units) if cell == "gru" else (G * units,)) * 0.3).astype(dtype)
    states = [rng.standard_normal((batch, units)).astype(dtype) for _ in range(2 if cell == "lstm" else 1)]
    mask = rng.random((batch, T)) > 0.4
    return x, k, rk, b, states, mask


def sigmoid(v: np.ndarray) -> np.ndarray:
    """The logistic function in plain NumPy (the formula the kernels' sigmoid code stands for)."""
    return 1 / (1 + np.exp(-v))
