"""One kernel contract on each side of the boundary: one activation-code space and one CPU-feature
ladder in every compiled module, the one mapping of activation functions to codes, the thread
rule and BLAS pinning of ``klayers.ops.common``, softmax through its kernel, twins with the
signatures of their ops."""

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import klayers
import klayers._ext
import klayers.ops
from klayers import activations
from klayers import layers as L
from klayers._ext import info
from klayers.ops import common

#: every compiled module, and those with per-ISA variants of their hot loops (``select_isa``)
MODULES = sorted(m.name for m in pkgutil.iter_modules(klayers._ext.__path__))
ACT_MODULES = [m for m in MODULES if hasattr(importlib.import_module(f"klayers._ext.{m}"), "ACTIVATIONS")]
ISA_MODULES = [m for m in MODULES if hasattr(importlib.import_module(f"klayers._ext.{m}"), "select_isa")]
LADDER = ["baseline", "avx2", "avx512"]


def test_the_tables_of_modules_are_not_empty():
    assert {"conv", "depthwise", "conv_transpose", "dense", "local", "recurrent", "convlstm"} <= set(ACT_MODULES)
    assert {"depthwise", "softmax", "norm", "recurrent", "convlstm"} <= set(ISA_MODULES)


# -- one activation-code space ----------------------------------------------------------------


@pytest.mark.parametrize("module", ACT_MODULES)
def test_every_kernel_module_has_the_one_activation_code_space(module):
    codes = importlib.import_module(f"klayers._ext.{module}").ACTIVATIONS
    assert codes == info.ACTIVATIONS == common.ACTIVATION_CODES
    assert sorted(codes.values()) == list(range(len(codes)))  # one numbering, no gaps or repeats


def test_relu_has_one_code_in_the_epilogue_and_the_recurrent_kernels():
    ops = [importlib.import_module(f"klayers.ops.{m}") for m in ("conv", "dense", "local", "recurrent")]
    assert {op.ACT_RELU for op in ops} == {info.ACTIVATIONS["relu"]}
    assert common.EPILOGUE_CODES == {common.ACT_LINEAR, common.ACT_RELU, common.ACT_RELU6}


CODES = [
    # (id, Keras 2 function, Keras 3 function, code name)
    ("linear", activations.linear, activations.keras3.linear, "linear"),
    ("relu", activations.relu, activations.keras3.relu, "relu"),
    ("relu6", activations.relu6, activations.keras3.relu6, "relu6"),
    ("tanh", activations.tanh, activations.keras3.tanh, "tanh"),
    ("sigmoid", activations.sigmoid, activations.keras3.sigmoid, "sigmoid"),
    ("hard_sigmoid", activations.hard_sigmoid, None, "hard_sigmoid"),
    ("hard_sigmoid_k3", None, activations.keras3.hard_sigmoid, "hard_sigmoid_k3"),
    ("swish", activations.swish, activations.keras3.swish, "swish"),
    ("silu", activations.silu, activations.keras3.silu, "swish"),
    ("hard_swish", activations.hard_silu, activations.keras3.hard_swish, "hard_swish"),
    ("gelu", activations.gelu, activations.keras3.gelu, "gelu"),
    ("elu", activations.elu, activations.keras3.elu, "elu"),
    ("selu", activations.selu, activations.keras3.selu, "selu"),
    ("softplus", activations.softplus, activations.keras3.softplus, "softplus"),
    ("softsign", activations.softsign, activations.keras3.softsign, "softsign"),
    ("exponential", activations.exponential, activations.keras3.exponential, "exponential"),
    ("mish", activations.mish, activations.keras3.mish, "mish"),
]


@pytest.mark.parametrize("k2,k3,name", [c[1:] for c in CODES], ids=[c[0] for c in CODES])
def test_activation_functions_map_to_their_code_and_formula(k2, k3, name):
    code = common.ACTIVATION_CODES[name]
    x = np.linspace(-8, 8, 41).astype("float32").reshape(1, -1)
    for fn in (f for f in (k2, k3) if f is not None):
        assert common.activation_code(fn) == code
        np.testing.assert_allclose(common.activation_function(code)(x), fn(x), rtol=1e-6, atol=1e-7)


def test_functions_without_a_code_and_bad_codes():
    assert common.activation_code(activations.softmax) == -1
    assert common.activation_code(lambda v: v) == -1
    with pytest.raises(ValueError, match="Unknown activation code"):
        common.activation_function(99)


@pytest.mark.parametrize("act,want_code,want_rest", [
    (activations.relu, "relu", None), (activations.keras3.relu, "relu", None), (activations.relu6, "relu6", None),
    (activations.linear, "linear", None), (0, "linear", None), (2, "relu6", None),
    (activations.tanh, "linear", activations.tanh), (activations.softmax, "linear", activations.softmax),
    (3, "linear", 3), (common.ACT_SWISH, "linear", common.ACT_SWISH),
], ids=["relu", "relu-k3", "relu6", "linear", "code-0", "code-2", "tanh", "softmax", "code-3", "code-swish"])
def test_split_activation_fuses_what_an_epilogue_computes(act, want_code, want_rest):
    """The epilogue fuses linear, relu and relu6; other codes and functions are the rest."""
    code, rest = common.split_activation(act)
    assert code == common.ACTIVATION_CODES[want_code] and rest == want_rest


@pytest.mark.parametrize("bad", [len(info.ACTIVATIONS), -1, True])
def test_split_activation_refuses_what_is_not_a_code(bad):
    with pytest.raises(ValueError, match="Unknown activation code"):
        common.split_activation(bad)


def test_gate_codes_are_what_the_recurrent_kernels_take():
    """gate_code maps gate activations to codes and the rest to -1 (the NumPy path), and the
    recurrent kernels refuse the codes outside the gate range with an error naming it."""
    from klayers._ext import recurrent as _rec

    assert common.gate_code(activations.tanh) == common.ACT_TANH
    assert common.gate_code(common.ACT_HARD_SIGMOID_K3) == common.ACT_HARD_SIGMOID_K3
    assert common.gate_code(activations.swish) == -1 and common.gate_code(common.ACT_SWISH) == -1
    z = np.zeros((1, 4), "float32")
    c = np.zeros((1, 1), "float32")
    with pytest.raises(ValueError, match="not a gate activation"):
        _rec.lstm_pointwise(z, z.copy(), c, c.copy(), c.copy(), common.ACT_SWISH, common.ACT_SIGMOID, 1)


# -- one CPU-feature ladder -------------------------------------------------------------------


@pytest.mark.parametrize("module", ISA_MODULES)
def test_every_module_climbs_the_one_ladder_to_the_same_rung(module):
    mod = importlib.import_module(f"klayers._ext.{module}")
    assert mod.ISA == info.cpu_isa() and mod.ISA in LADDER


@pytest.mark.parametrize("level", [0, 1, 2], ids=LADDER)
def test_a_forced_level_picks_the_same_isa_in_every_module(level):
    try:
        picked = {m: importlib.import_module(f"klayers._ext.{m}").select_isa(level) for m in ISA_MODULES}
        assert set(picked.values()) == {info.cpu_isa(level)}, picked
        assert LADDER.index(info.cpu_isa(level)) <= level
    finally:
        for m in ISA_MODULES:
            importlib.import_module(f"klayers._ext.{m}").select_isa()


@pytest.mark.parametrize("level", [0, 1, 2], ids=LADDER)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_recurrent_gates_agree_on_every_rung(level, dtype):
    """The float32 gate maps are compiled once per rung (rnn_act.h): each gives the NumPy answer."""
    from klayers._ext import convlstm, recurrent
    from klayers.ops import recurrent as R

    rng = np.random.default_rng(level)
    x = rng.standard_normal((2, 6, 5)).astype(dtype) * 3
    k = rng.standard_normal((5, 16)).astype(dtype) * 0.5
    rk = rng.standard_normal((4, 16)).astype(dtype) * 0.5
    h0 = [np.zeros((2, 4), dtype), np.zeros((2, 4), dtype)]
    want = R.rnn_sequence_reference("lstm", x, k, rk, None, h0, return_sequences=True)
    try:
        recurrent.select_isa(level)
        convlstm.select_isa(level)
        got = R.rnn_sequence("lstm", x, k, rk, None, h0, return_sequences=True)
    finally:
        recurrent.select_isa()
        convlstm.select_isa()
    tol = 2e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got[1], want[1], rtol=tol, atol=tol)


def test_recurrent_relu_keeps_nan_as_the_epilogue_does():
    """relu has one formula in every kernel: NaN stays NaN (tf.nn.relu, np.maximum)."""
    from klayers.ops import recurrent as R

    x = np.array([[[np.nan], [1.0]]], "float32")
    k = np.ones((1, 1), "float32")
    rk = np.zeros((1, 1), "float32")
    got = R.rnn_sequence("simple", x, k, rk, None, [np.zeros((1, 1), "float32")], act=R.ACT_RELU,
                         return_sequences=True)[1]
    want = R.rnn_sequence_reference("simple", x, k, rk, None, [np.zeros((1, 1), "float32")], act=R.ACT_RELU,
                                    return_sequences=True)[1]
    assert np.isnan(got[0, 0, 0]) and np.array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.parametrize("spec_change,match", [
    (dict(cell=9), "unknown cell code"), (dict(act=99), "not a gate activation"),
    (dict(ract=-1), "not a gate activation"), ("drop:recurrent_kernel", "lacks"),
], ids=["cell", "act", "ract", "missing-key"])
def test_recurrent_task_specs_are_named_and_checked(spec_change, match):
    from klayers._ext import recurrent
    from klayers.ops import recurrent as R

    x = np.ones((1, 3, 2), "float32")
    job = R.rnn_job("lstm", x, np.ones((2, 8), "float32"), np.ones((2, 8), "float32"), None,
                    [np.zeros((1, 2), "float32")] * 2)
    spec = job.spec(0, 1)
    assert set(spec) == set(recurrent.TASK_KEYS)
    recurrent.rnn_run([dict(spec)], False, 1)
    if isinstance(spec_change, str):
        spec.pop(spec_change.split(":")[1])
    else:
        spec.update(spec_change)
    with pytest.raises(ValueError, match=match):
        recurrent.rnn_run([spec], False, 1)
    with pytest.raises(TypeError, match="dict"):
        recurrent.rnn_run([tuple(job.spec(0, 1).values())], False, 1)


# -- the thread rule and BLAS pinning ---------------------------------------------------------


def test_op_threads_rule():
    with klayers.num_threads(2):
        assert common.op_threads() == 2
        assert common.op_threads(None, work=10, serial_below=100) == 1  # small work: one thread
        assert common.op_threads(None, work=100, serial_below=100) == 2
        assert common.op_threads(3, work=1, serial_below=100) == 3  # an explicit count is obeyed
    with pytest.raises(ValueError, match="n_threads"):
        common.op_threads(-2)


def test_blas_pinned_holds_blas_to_one_thread_only_around_threaded_kernels():
    from klayers.ops.threads import blas_controller

    def blas_threads():
        return {lib["num_threads"] for lib in blas_controller().info() if lib["user_api"] == "blas"}

    with klayers.num_threads(2):
        with common.blas_pinned(2):
            assert blas_threads() == {1}
        with common.blas_pinned(1):
            assert blas_threads() == {2}
        assert blas_threads() == {2}
    klayers.set_num_threads(None)


def test_the_public_thread_functions_are_the_ops_ones():
    from klayers.ops import threads

    assert threads.get_num_threads is klayers.get_num_threads
    assert klayers.set_num_threads is threads.set_num_threads and klayers.num_threads is threads.num_threads


# -- softmax: one NumPy formula, one kernel ---------------------------------------------------


@pytest.fixture
def softmax_kernel_calls(monkeypatch):
    """Counts the calls that reach the compiled softmax kernel."""
    from klayers.ops import softmax as S

    calls = []
    real = S._softmax

    class Spy:
        def __getattr__(self, name):
            fn = getattr(real, name)

            def spy(*args):
                calls.append(name)
                return fn(*args)
            return spy

    monkeypatch.setattr(S, "_softmax", Spy())
    return calls


@pytest.mark.parametrize("make,shape", [
    (lambda: L.Dense(5, activation="softmax"), (3, 4)),
    (lambda: L.Conv2D(3, 2, activation="softmax"), (2, 4, 4, 2)),
    (lambda: L.LocallyConnected1D(3, 2, activation="softmax"), (2, 5, 2)),
    (lambda: L.DepthwiseConv2D(2, activation="softmax"), (1, 4, 4, 3)),
    (lambda: L.Activation("softmax"), (2, 7)),
], ids=["Dense", "Conv2D", "LocallyConnected1D", "DepthwiseConv2D", "Activation"])
def test_a_softmax_activation_reaches_the_softmax_kernel(make, shape, softmax_kernel_calls):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    layer = make()
    y = layer(x)
    assert softmax_kernel_calls == ["softmax_rows"]
    np.testing.assert_allclose(y.sum(-1), 1, rtol=1e-5)
    layer.activation = activations.linear
    np.testing.assert_allclose(y, activations.softmax(layer(x)), rtol=2e-6, atol=1e-7)


def test_softmax_of_rank_1_keeps_tf_keras_error():
    from klayers.ops.activation import apply_activation

    with pytest.raises(ValueError, match="1D"):
        apply_activation(np.ones(3, "float32"), activations.softmax)


def test_the_softmax_reference_is_the_backend_formula():
    from klayers import backend
    from klayers.ops import softmax as S

    x = np.random.default_rng(1).standard_normal((3, 4, 5))
    for axis in (-1, 1, (0, 2)):
        np.testing.assert_array_equal(S.softmax_reference(x, axis), backend.softmax(x, axis))


# -- every compiled op has a NumPy twin of the same signature ---------------------------------

OPS = sorted(
    (mod.__name__.rsplit(".", 1)[1], name)
    for m in pkgutil.iter_modules(klayers.ops.__path__)
    for mod in [importlib.import_module(f"klayers.ops.{m.name}")]
    for name in dir(mod)
    if name.endswith("_reference") and not name.startswith("_") and callable(getattr(mod, name[: -len("_reference")], None))
)


def test_the_twin_table_holds_every_family():
    assert {m for m, _ in OPS} >= {"activation", "conv", "dense", "local", "normalization", "pooling", "recurrent",
                                   "recurrent_conv", "softmax"}


@pytest.mark.parametrize("module,reference", OPS, ids=[f"{m}.{r}" for m, r in OPS])
def test_reference_twin_has_the_signature_of_its_op(module, reference):
    mod = importlib.import_module(f"klayers.ops.{module}")
    op = getattr(mod, reference[: -len("_reference")])
    assert inspect.signature(op) == inspect.signature(getattr(mod, reference))
