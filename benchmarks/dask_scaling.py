"""Scale-out benchmark: MobileNetV2(alpha=0.35) inference over a Dask array, 1 vs 2 workers.

    python benchmarks/dask_scaling.py [--samples 4096] [--chunk 512] [--repeats 3] [--markdown]

Measures samples per second of
  * local ``model.predict`` with 1 and 2 threads, and
  * ``klayers.dask.predict`` on a ``LocalCluster`` of 1 and 2 single-threaded worker processes
    (the model file is loaded by each worker itself),
on the same input, and prints the table and the 2-worker / 1-worker ratio (target >= 1.7).
The model is the MobileNetV2(alpha=0.35, 64x64x3 input, 10 classes) that tf-keras saved in
``conformance/references/keras2/files/mobilenet_v2.h5``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable, Dict, List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(os.path.dirname(HERE), "conformance", "references", "keras2", "files", "mobilenet_v2.h5")


def _median_rate(fn: Callable[[], object], samples: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return samples / statistics.median(times)


def main(argv: List[str] | None = None) -> int:
    """Run the benchmark; print the table; return 0."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    import dask.array as da
    import distributed

    import klayers
    import klayers.dask

    model = klayers.models.load_model(MODEL)
    shape = (args.samples,) + tuple(model.input_shape[1:])
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    rows: Dict[str, float] = {}
    for threads in (1, 2):
        with klayers.num_threads(threads):
            model.predict(x[: args.batch_size], verbose=0)
            rows[f"local predict, {threads} thread(s)"] = _median_rate(
                lambda: model.predict(x, batch_size=args.batch_size, verbose=0), args.samples, args.repeats)
    for workers in (1, 2):
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=40)
        with distributed.Client(cluster) as client:
            xd = client.scatter(x, broadcast=True)  # the data is on the workers before timing
            arr = da.from_delayed(xd, shape=shape, dtype=x.dtype).rechunk((args.chunk,) + shape[1:]).persist()
            distributed.wait(arr)

            def run(arr=arr):
                return klayers.dask.predict(MODEL, arr, batch_size=args.batch_size, threads_per_worker=1).compute()

            run()  # every worker loads the model once
            rows[f"Dask, {workers} worker process(es) x 1 thread"] = _median_rate(run, args.samples, args.repeats)
        cluster.close()
    one, two = rows["Dask, 1 worker process(es) x 1 thread"], rows["Dask, 2 worker process(es) x 1 thread"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if args.markdown:
        print("| engine | samples/s |\n|---|---|")
        for k, v in rows.items():
            print(f"| {k} | {v:,.0f} |")
    else:
        for k, v in rows.items():
            print(f"{k:45s} {v:10,.0f} samples/s")
    print(f"2 workers / 1 worker: {two / one:.2f}x (target >= 1.7; {cores} cores; {args.samples} samples, "
          f"chunks of {args.chunk}, MobileNetV2 alpha=0.35 {shape[1:]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
