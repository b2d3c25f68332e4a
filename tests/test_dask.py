"""Batch inference over Dask arrays, on a real local Dask cluster (2 worker processes)."""

import os
import pickle
import signal
import time

import dask.array as da  # the dask extra is part of the test install (README)
import distributed
import numpy as np
import pytest

import klayers
from klayers import layers


def _multi_io_model():
    klayers.utils.set_random_seed(3)
    a = klayers.Input((6,), name="a")
    b = klayers.Input((4,), name="b")
    shared = layers.Dense(8, activation="relu")
    merged_a = shared(layers.Dense(6)(a))
    head = layers.Dense(3, activation="softmax", name="probs")(merged_a)
    other = layers.Dense(2, name="other")(layers.Dense(6, activation="tanh")(b))
    return klayers.Model([a, b], [head, other])


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=50)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_lazy_result_knows_shape_chunks_dtype_without_computing():
    model = _multi_io_model()
    xa = da.zeros((103, 6), chunks=25, dtype="float32")
    xb = da.zeros((103, 4), chunks=40, dtype="float32")
    probs, other = model.predict([xa, xb])
    assert isinstance(probs, da.Array) and probs.shape == (103, 3) and probs.dtype == np.float32
    assert probs.chunks == ((25, 25, 25, 25, 3), (3,)) and other.shape == (103, 2)


def test_cluster_predictions_equal_local_predict_with_ragged_last_chunk(client):
    model = _multi_io_model()
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((230, 6)).astype("float32")
    xb = rng.standard_normal((230, 4)).astype("float32")
    lazy = klayers.dask.predict(model, {"a": da.from_array(xa, chunks=64), "b": da.from_array(xb, chunks=64)},
                                threads_per_worker=1)
    got = client.compute(lazy, sync=True)
    want = model.predict([xa, xb], verbose=0)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def test_model_travels_once_per_worker_not_per_chunk(client):
    model = _multi_io_model()
    x = da.from_array(np.ones((400, 6), "float32"), chunks=10)
    lazy = klayers.dask.predict(model, [x, da.from_array(np.ones((400, 4), "float32"), chunks=10)])
    graph = dict(lazy[0].__dask_graph__())
    model_keys = [k for k, v in graph.items() if isinstance(getattr(v, "value", v), klayers.Model)]
    assert len(model_keys) == 1  # one node holds the model; 40 chunk tasks refer to it by key
    tasks = [v for k, v in graph.items() if isinstance(k, tuple) and str(k[0]).startswith("klayers-predict-") and "out" not in str(k[0])]
    assert len(tasks) == 40 and all(model_keys[0] in t for t in tasks)


def test_failing_chunk_names_the_chunk(client):
    model = _multi_io_model()
    bad = da.from_array(np.ones((50, 5), "float32"), chunks=20)  # 5 features where 6 are expected
    lazy = klayers.dask.predict(model, [bad, da.from_array(np.ones((50, 4), "float32"), chunks=20)])
    with pytest.raises(ValueError, match=r"chunk \d \(samples \d+:\d+\).*expected shape=\(None, 6\)"):
        client.compute(lazy, sync=True)


def test_pickle_round_trip_gives_an_equal_model():
    model = _multi_io_model()
    again = pickle.loads(pickle.dumps(model))
    assert again.get_config() == model.get_config()
    x = [np.ones((3, 6), "float32"), np.ones((3, 4), "float32")]
    for a, b in zip(model.predict(x, verbose=0), again.predict(x, verbose=0)):
        np.testing.assert_array_equal(a, b)


def test_lost_worker_is_retried_and_the_result_is_complete():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=50)
    try:
        with distributed.Client(cluster) as c:
            inp = klayers.Input((32,))
            slow = layers.Lambda(_slow_identity)(inp)
            model = klayers.Model(inp, layers.Dense(4)(slow))
            x = np.random.default_rng(1).standard_normal((64, 32)).astype("float32")
            future = c.compute(klayers.dask.predict(model, da.from_array(x, chunks=4)))
            time.sleep(1.0)
            pids = list(c.run(os.getpid).values())
            os.kill(pids[0], signal.SIGKILL)
            got = future.result(timeout=120)
            np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-6)
    finally:
        cluster.close()


def _slow_identity(x):
    # Lambda code travels as marshalled bytecode (as in Keras): it may only use builtins.
    __import__("time").sleep(0.15)
    return x


def test_stateful_model_is_refused():
    model = _multi_io_model()
    model.layers[-1].stateful = True
    with pytest.raises(ValueError, match="stateful"):
        klayers.dask.predict(model, [da.zeros((4, 6), chunks=2), da.zeros((4, 4), chunks=2)])

