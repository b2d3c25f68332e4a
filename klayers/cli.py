"""The ``klayers`` command.

    klayers info              build and runtime facts (version, OpenMP, threads, BLAS)
    klayers demo [--threads N] [--batch B]
                              build a small Keras-style model, run predict, print the summary,
                              the output and the throughput: the smoke test of an install
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

import numpy as np


def _info() -> int:
    import klayers
    from klayers._ext import info
    from klayers._threads import _blas

    print(f"klayers {klayers.__version__}")
    print(f"numpy {np.__version__}")
    print(f"OpenMP kernels: {'yes' if info.openmp_enabled() else 'no (serial build)'}")
    print(f"threads: {klayers.get_num_threads()}")
    for lib in _blas().info():
        print(f"{lib.get('user_api')}: {lib.get('internal_api')} {lib.get('version') or ''} ({lib.get('prefix')}), {lib.get('num_threads')} threads")
    return 0


def _demo(threads: Optional[int], batch: int) -> int:
    import klayers
    from klayers import layers

    if threads:
        klayers.set_num_threads(threads)
    klayers.utils.set_random_seed(0)
    inputs = klayers.Input((64,), name="features")
    hidden = layers.Dense(256, activation="relu", name="hidden")(inputs)
    hidden = layers.Dense(256, activation="gelu", name="hidden_2")(hidden)
    outputs = layers.Dense(10, activation="softmax", name="probabilities")(hidden)
    model = klayers.Model(inputs, outputs, name="demo_mlp")
    model.summary()
    x = np.random.default_rng(0).standard_normal((batch, 64)).astype("float32")
    model.predict(x[:8], verbose=0)
    start = time.perf_counter()
    y = model.predict(x, batch_size=256, verbose=0)
    elapsed = time.perf_counter() - start
    print(f"predict: {batch} samples in {elapsed * 1e3:.1f} ms ({batch / elapsed:,.0f} samples/s, {klayers.get_num_threads()} threads)")
    print(f"first row: {np.array2string(y[0], precision=3)} (sums to {y[0].sum():.4f})")
    again = klayers.models.model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    same = np.allclose(again.predict(x[:64], verbose=0), y[:64])
    print(f"config round trip reproduces predictions: {same}")
    return 0 if same and np.allclose(y.sum(axis=1), 1, atol=1e-5) else 1


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``klayers`` console script."""
    parser = argparse.ArgumentParser(prog="klayers", description="Keras layers on CPUs, without TensorFlow.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="build and runtime facts")
    demo = sub.add_parser("demo", help="run a small model end to end")
    demo.add_argument("--threads", type=int, default=None)
    demo.add_argument("--batch", type=int, default=4096)
    args = parser.parse_args(argv)
    if args.command == "info":
        return _info()
    return _demo(args.threads, args.batch)


if __name__ == "__main__":
    sys.exit(main())
