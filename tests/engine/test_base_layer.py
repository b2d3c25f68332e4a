"""The Layer engine: weights, calls, errors, custom layers, the node API."""

import numpy as np
import pytest

import klayers
from klayers import layers
from klayers.engine.keras_tensor import KerasTensor


class Scale(klayers.Layer):
    """A user layer: y = x * w + b over the last axis."""

    def __init__(self, init_value=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init_value = init_value

    def build(self, input_shape):
        self.w = self.add_weight("w", shape=(input_shape[-1],), initializer=klayers.initializers.Constant(self.init_value))
        self.b = self.add_weight("b", shape=(input_shape[-1],), initializer="zeros", trainable=False)

    def call(self, inputs):
        return inputs * self.w + self.b

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["init_value"] = self.init_value
        return config


class NoShape(klayers.Layer):
    """A user layer without compute_output_shape: the engine infers it by running call."""

    def call(self, inputs):
        return np.concatenate([inputs, inputs], axis=-1)


def test_custom_layer_eager_and_weights():
    layer = Scale(2.0)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(layer(x), x * 2)
    assert [w.name for w in layer.weights] == ["scale/w:0", "scale/b:0"] or layer.weights[0].name.endswith("/w:0")
    assert len(layer.trainable_weights) == 1 and len(layer.non_trainable_weights) == 1
    assert layer.count_params() == 6


def test_custom_layer_in_sequential_and_functional_and_from_config():
    x = np.ones((4, 3), "float32")
    seq = klayers.Sequential([Scale(3.0, input_shape=(3,)), layers.Dense(2, kernel_initializer="ones")])
    np.testing.assert_allclose(seq.predict(x, verbose=0), np.full((4, 2), 9.0))
    inp = klayers.Input((3,))
    model = klayers.Model(inp, Scale(0.5)(inp))
    np.testing.assert_allclose(model(x), x * 0.5)
    rebuilt = klayers.models.model_from_json(model.to_json(), custom_objects={"Scale": Scale})
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), x * 0.5)
    with pytest.raises(ValueError, match="Unknown layer: 'Scale'"):
        klayers.models.model_from_json(model.to_json())


def test_output_shape_inferred_by_running_call():
    inp = klayers.Input((5,))
    out = NoShape()(inp)
    assert out.shape == (None, 10)


def test_get_weights_returns_copies_and_set_weights_validates():
    layer = layers.Dense(2)
    layer(np.ones((1, 3), "float32"))
    w = layer.get_weights()
    w[0][...] = 42
    assert not np.any(layer.get_weights()[0] == 42)
    before = layer.get_weights()
    with pytest.raises(ValueError, match=r'layer "dense.*expecting 2 weights'):
        layer.set_weights([np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"weight shape \(3, 2\) is not compatible.*\(4, 2\)"):
        layer.set_weights([np.zeros((4, 2)), np.zeros(2)])
    with pytest.raises(ValueError, match="numeric"):
        layer.set_weights([np.zeros((3, 2)), np.array(["a", "b"])])
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    layer.set_weights([np.ones((3, 2), "float64"), np.ones(2)])
    assert layer.get_weights()[0].dtype == np.float32


def test_absurd_weight_is_refused_before_allocation():
    layer = layers.Dense(10**12)
    with pytest.raises(ValueError, match=r"weight 'kernel' of shape \(3, 1000000000000\).*GiB"):
        layer(np.ones((1, 3), "float32"))


def test_count_params_unbuilt_raises():
    with pytest.raises(ValueError, match="isn't built"):
        layers.Dense(3).count_params()


def test_losses_from_weight_and_activity_regularizers():
    layer = layers.Dense(2, kernel_initializer="ones", kernel_regularizer=klayers.regularizers.L2(0.5),
                         activity_regularizer=klayers.regularizers.L1(0.1))
    x = np.ones((4, 3), "float32")
    y = layer(x)
    kernel_penalty = 0.5 * 6.0
    activity_penalty = 0.1 * np.abs(y).sum() / 4
    np.testing.assert_allclose(sorted(layer.losses), sorted([kernel_penalty, activity_penalty]), rtol=1e-6)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: layers.Dense(3, foo=1), "Keyword argument not understood: 'foo'"),
        (lambda: layers.Dense(-1), "units=-1"),
        (lambda: layers.Dense(0), "units=0"),
        (lambda: layers.Dense("x"), "units"),
        (lambda: layers.Dense(2, activation="nope"), "nope"),
        (lambda: layers.Dense(2, kernel_initializer="nope"), "nope"),
    ],
    ids=["unknown_kwarg", "negative_units", "zero_units", "string_units", "unknown_activation", "unknown_initializer"],
)
def test_constructor_errors(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_wrong_rank_and_channels_name_the_layer():
    layer = layers.Dense(2, name="probe")
    with pytest.raises(ValueError, match='layer "probe".*min_ndim=2'):
        layer(np.ones(3, "float32"))
    layer(np.ones((1, 3), "float32"))
    with pytest.raises(ValueError, match='layer "probe".*axis -1.*value 3'):
        layer(np.ones((1, 4), "float32"))


def test_float64_layer_and_integer_inputs():
    layer = layers.Dense(2, dtype="float64", kernel_initializer="ones")
    y = layer(np.ones((1, 3), "float32"))
    assert y.dtype == np.float64 and layer.kernel.dtype == np.float64
    y32 = layers.Dense(2, kernel_initializer="ones")(np.ones((1, 3), "int32"))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, 3.0)


def test_variable_behaves_as_an_array():
    layer = layers.Dense(2, kernel_initializer="ones")
    layer(np.ones((1, 3), "float32"))
    x = np.ones((1, 3), "float32")
    np.testing.assert_allclose(x @ layer.kernel, 3.0)
    np.testing.assert_allclose(np.asarray(layer.kernel + 1), 2.0)
    assert layer.kernel.shape == (3, 2)
    with pytest.raises(ValueError, match="Cannot assign"):
        layer.kernel.assign(np.zeros((2, 2)))


# -- the node API ---------------------------------------------------------------------------
def test_node_api_of_unconnected_layer():
    layer = layers.Dense(2)
    with pytest.raises(AttributeError, match="not connected"):
        _ = layer.input
    with pytest.raises(AttributeError, match="no inbound nodes"):
        _ = layer.output
    with pytest.raises(AttributeError, match="never been called"):
        _ = layer.input_shape
    with pytest.raises(RuntimeError, match="never been called"):
        layer.get_input_at(0)


def test_node_api_of_shared_layer():
    a, b = klayers.Input((4,)), klayers.Input((4,))
    shared = layers.Dense(3)
    ya, yb = shared(a), shared(b)
    assert shared.input is a and shared.output is ya
    assert shared.get_input_at(1) is b and shared.get_output_at(1) is yb
    assert shared.get_input_shape_at(1) == (None, 4) and shared.get_output_shape_at(0) == (None, 3)
    assert shared.input_shape == (None, 4)  # both nodes agree
    with pytest.raises(ValueError, match="only 2 inbound nodes"):
        shared.get_output_at(2)
    act = layers.Activation("relu")
    act(a)
    act(klayers.Input((5,)))
    with pytest.raises(AttributeError, match="different input shapes"):
        _ = act.input_shape
    with pytest.raises(AttributeError, match="different output shapes"):
        _ = act.output_shape
    assert len(shared.inbound_nodes) == 2
    assert a._keras_history.layer.outbound_nodes[0].layer is shared


def test_symbolic_call_mixing_arrays_is_an_error():
    with pytest.raises(ValueError, match="mix of symbolic tensors and arrays"):
        layers.Lambda(lambda t: t[0] + t[1])([klayers.Input((2,)), np.ones((1, 2))])


def test_symbolic_tensor_has_no_values():
    t = klayers.Input((2,))
    assert isinstance(t, KerasTensor) and t.shape == (None, 2)
    with pytest.raises(TypeError, match="symbolic"):
        np.asarray(t)


# -- input dtypes, pickling, threads --------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.ones((2, 3), complex), np.array([["a", "b", "c"]]), np.array([[object()] * 3])],
                         ids=["complex", "str", "object"])
def test_non_numeric_inputs_are_refused_naming_the_layer(bad):
    with pytest.raises(TypeError, match="Layer probe: inputs must be real numbers"):
        layers.Dense(2, name="probe")(bad)


@pytest.mark.parametrize("dtype", ["float16", "float64", "int64", "bool"])
def test_numeric_inputs_of_any_dtype_give_float32(dtype):
    layer = layers.Dense(2, kernel_initializer="ones")
    y = layer(np.ones((2, 3), dtype))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, 3.0)


def test_zero_size_batch():
    layer = layers.Dense(4)
    y = layer(np.ones((0, 3), "float32"))
    assert y.shape == (0, 4)


def test_pickle_round_trip_of_layers_and_models():
    import pickle

    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    dense = layers.Dense(3, activation="tanh")
    dense(x)
    again = pickle.loads(pickle.dumps(dense))
    np.testing.assert_array_equal(again(x), dense(x))
    assert again.get_config() == dense.get_config()
    inp = klayers.Input((4,))
    model = klayers.Model(inp, [Scale(2.0)(inp), layers.Lambda(lambda t: t * 3)(layers.Dense(2)(inp))])
    restored = pickle.loads(pickle.dumps(model))
    for a, b in zip(model.predict(x, verbose=0), restored.predict(x, verbose=0)):
        np.testing.assert_array_equal(a, b)
    assert restored.name == model.name
    assert [layer.name for layer in restored.layers] == [layer.name for layer in model.layers]
    assert restored.layers[1].get_config() == model.layers[1].get_config()


def test_stateful_layers_refuse_to_pickle():
    import pickle

    layer = layers.Dense(2)
    layer.stateful = True
    with pytest.raises(TypeError, match="stateful"):
        pickle.dumps(layer)


def test_one_model_called_from_many_threads_gives_the_serial_answers():
    from concurrent.futures import ThreadPoolExecutor

    inp = klayers.Input((16,))
    model = klayers.Model(inp, layers.Dense(8, activation="relu")(layers.Dense(32)(inp)))
    rng = np.random.default_rng(1)
    batches = [rng.standard_normal((64, 16)).astype("float32") for _ in range(16)]
    serial = [model.predict(b, verbose=0) for b in batches]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda b: model.predict(b, verbose=0), batches))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def test_fresh_layer_built_once_under_concurrent_first_calls():
    from concurrent.futures import ThreadPoolExecutor

    layer = layers.Dense(4)
    x = np.ones((2, 3), "float32")
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: layer(x), range(16)))
    assert len(layer.weights) == 2
    for out in outs:
        np.testing.assert_array_equal(out, outs[0])
