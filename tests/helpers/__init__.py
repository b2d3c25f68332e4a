"""Shared test helpers (the fixtures that wrap them are in ``tests/conftest.py``).

* :func:`check_kernel_twin` (``tests/helpers/kernel_twin.py``): a compiled op of ``klayers.ops``
  against its NumPy twin, same signature, float32 and float64, 1 and N threads.
* :func:`run_layer_test` (``tests/helpers/layer_harness.py``): a layer class through Keras's
  ``run_layer_test`` checks: config round trip, weight names and order, output shapes eager and
  symbolic, float64, rebuilt-layer and pickled-layer outputs.
"""

from tests.helpers.kernel_twin import (
    N_THREADS,
    TWIN_RUNS,
    assert_same_signature,
    assert_twin_outputs_close,
    check_kernel_twin,
    twin_of,
)
from tests.helpers.layer_harness import run_layer_test

__all__ = [
    "N_THREADS", "TWIN_RUNS", "assert_same_signature", "assert_twin_outputs_close", "check_kernel_twin",
    "run_layer_test", "twin_of",
]
