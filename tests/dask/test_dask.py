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



# -- every layer family pickles; model files; the CLI --------------------------------------------
FILES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "conformance", "references", "keras2", "files")
FIXTURES = sorted(f[:-3] for f in os.listdir(FILES) if f.endswith(".h5") and not f.endswith((".w.h5", ".weights.h5")))



def test_the_fixture_table_is_not_empty():
    assert len(FIXTURES) >= 3, f"the real Keras model files are missing from {FILES}"


@pytest.mark.parametrize("name", FIXTURES)
def test_real_keras_models_pickle_to_equal_models(name):
    """The tf-keras fixtures span every layer family (CNN, text model with Bidirectional LSTM,
    merges, wrappers, CuDNN, locally-connected, MobileNetV2 ...)."""
    model = klayers.models.load_model(os.path.join(FILES, name + ".h5"), safe_mode=False)
    if any(getattr(layer, "stateful", False) for layer in model.layers):
        with pytest.raises(TypeError, match="stateful"):
            pickle.dumps(model)
        return
    again = pickle.loads(pickle.dumps(model))
    assert again.get_config() == model.get_config() or name == "python_lambda"
    with np.load(os.path.join(FILES, name + ".npz")) as refs:
        xs = [refs[k] for k in sorted(k for k in refs.files if k.startswith("x"))]
    x = xs if len(xs) > 1 else xs[0]
    for a, b in zip(_flat(model.predict(x, verbose=0)), _flat(again.predict(x, verbose=0))):
        np.testing.assert_array_equal(a, b)


def _flat(x):
    return x if isinstance(x, list) else [x]


def test_workers_load_the_model_from_a_path(client, tmp_path):
    model = _multi_io_model()
    path = str(tmp_path / "m.keras")
    model.save(path)
    rng = np.random.default_rng(5)
    xa, xb = rng.standard_normal((90, 6)).astype("float32"), rng.standard_normal((90, 4)).astype("float32")
    lazy = klayers.dask.predict(path, [da.from_array(xa, chunks=32), da.from_array(xb, chunks=32)])
    graph = dict(lazy[0].__dask_graph__())
    assert not any(isinstance(getattr(v, "value", v), klayers.Model) for v in graph.values())  # only the path travels
    for g, w in zip(client.compute(lazy, sync=True), model.predict([xa, xb], verbose=0)):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def test_cli_streams_a_memory_mapped_npy_through_a_local_cluster(tmp_path):
    from klayers.cli import main

    inp = klayers.Input((8,))
    model = klayers.Model(inp, layers.Dense(3, activation="softmax")(layers.Dense(16, activation="relu")(inp)))
    model.save(str(tmp_path / "m.h5"))
    x = np.random.default_rng(0).standard_normal((3000, 8)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    code = main(["predict", str(tmp_path / "m.h5"), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy"), "--dask", "local:2", "--chunk-size", "700"])
    assert code == 0
    y = np.load(tmp_path / "y.npy", mmap_mode="r")
    assert y.shape == (3000, 3)
    np.testing.assert_allclose(y, model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    bad = main(["predict", str(tmp_path / "m.h5"), "--input", str(tmp_path / "x.npy"), "--dask", "local:0",
                "--output", str(tmp_path / "z.npy")])
    assert bad == 2


@pytest.mark.parametrize("name", ["small_cnn", "text_model", "functional_multi_io_shared"])
def test_cluster_predictions_of_real_keras_models(client, name):
    """A CNN, the Embedding -> Bidirectional(LSTM) text model and a multi-input / multi-output
    model saved by tf-keras: cluster results equal local predict, with a ragged last chunk."""
    path = os.path.join(FILES, name + ".h5")
    model = klayers.models.load_model(path)
    with np.load(os.path.join(FILES, name + ".npz")) as refs:
        xs = [refs[k] for k in sorted(k for k in refs.files if k.startswith("x"))]
    reps = -(-23 // xs[0].shape[0])  # at least 23 samples, chunks of 5: a ragged last chunk
    xs = [np.concatenate([x] * reps)[:23] for x in xs]
    lazy = klayers.dask.predict(path, [da.from_array(x, chunks=5) for x in xs] if len(xs) > 1 else da.from_array(xs[0], chunks=5),
                                threads_per_worker=1)
    got = client.compute(lazy, sync=True)
    want = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    for g, w in zip(_flat(got), _flat(want)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
