"""Layer benchmarks that ship with klayers: the workload registry and the side-by-side runner.

``klayers bench [NAME ...] [--vs-keras] [--python PY] [--plot out.png]`` runs
``python -m klayers.bench`` (:mod:`klayers.bench.compare`): each registered workload, one Keras
layer on one input, timed in klayers and, where TensorFlow is installed, in tf-keras (eager and
``tf.function``) and ONNX Runtime, next to this machine's own limits. TensorFlow is imported
only by the engines that need it, only when they start (:mod:`klayers.bench.engines`).

    python -m klayers.bench pooling --engines klayers --repeats 3
    python -m klayers.bench --list

The registry is :mod:`klayers.bench.workloads` (the Dense table) and one ``workloads_<family>``
module per further family, each registering its table when imported here. The pytest-benchmark
suites of a source checkout (``benchmarks/``) time the same workloads.
"""

from klayers.bench import (  # noqa: F401  (each module registers its family's table)
    workloads_conv,
    workloads_core,
    workloads_local,
    workloads_pooling,
    workloads_recurrent,
)
from klayers.bench.workloads import REGISTRY, Workload, choose, families, select

__all__ = ["REGISTRY", "Workload", "choose", "families", "select"]
