"""The elementwise activation kernel (``_ext/activation.pyx``) against the NumPy functions of
``klayers.activations``: every code, float32 and float64, every vector variant this CPU has,
1 and 2 threads, lengths with vector tails and several blocks, NaN and +-inf where the
functions put them; the op's in-place contract; activations folded after a convolution or
Dense + BatchNormalization in the inference plan."""

import numpy as np
import pytest

import klayers
from klayers import activations as A
from klayers import inference
from klayers import layers as L
from klayers._ext import activation as _act
from klayers.ops import common
from klayers.ops.activation import apply_activation, apply_activation_reference
from tests.helpers.kernel_twin import check_kernel_twin

K3 = A.keras3
# (code name, the function a layer names it by): every code of the space
FUNCTIONS = [
    ("relu", A.relu), ("relu6", A.relu6), ("tanh", A.tanh), ("sigmoid", A.sigmoid),
    ("hard_sigmoid", A.hard_sigmoid), ("hard_sigmoid_k3", K3.hard_sigmoid), ("swish", A.swish),
    ("swish", K3.silu), ("hard_swish", A.hard_silu), ("gelu", A.gelu),
    ("gelu_tanh", lambda x: A.gelu(x, approximate=True)), ("elu", A.elu), ("selu", A.selu),
    ("softplus", A.softplus), ("softsign", A.softsign), ("exponential", A.exponential), ("mish", A.mish),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(FUNCTIONS)]
#: float32: relative, plus an absolute floor for the cancelling tails (1 + tanh, x * sigmoid)
TOL = {"float32": (3e-6, 1e-6), "float64": (1e-13, 1e-15)}


def _inputs(dtype):
    """Wide and narrow ranges, the exp limits, signed zeros and the special values; 10,031
    values: several kernel blocks and a vector tail."""
    x = np.concatenate([
        np.linspace(-120, 120, 6001), np.linspace(-1, 1, 4001), [-1e-6, 1e-6, 0.0, -0.0, 88.5, 88.8, 89.0],
        [-88.5, -103.0, -110.0, 709.0, 710.0, -745.0, -750.0, 1e30, -1e30, np.nan, np.inf, -np.inf, 3.0, -3.0],
        [1e-30, -1e-30, 0.5, -0.5, 6.0, -6.0, 2.5],
    ])
    return x.astype(dtype)


def _assert_like(got, want, dtype, what):
    assert got.dtype == want.dtype == np.dtype(dtype) and got.shape == want.shape, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN where the function has none")
    inf = np.isinf(want)
    np.testing.assert_array_equal(np.isinf(got), inf, err_msg=f"{what}: inf where the function has none")
    np.testing.assert_array_equal(got[inf], want[inf], err_msg=f"{what}: inf of the other sign")
    ok = np.isfinite(want)
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(got[ok], want[ok], rtol=rtol, atol=atol, err_msg=what)


@pytest.fixture(params=[0, 1, 2], ids=["baseline", "avx2", "avx512"])
def isa(request):
    """Force a vector variant (falls back to the widest this CPU has), restore afterwards."""
    name = _act.select_isa(request.param)
    yield name
    _act.select_isa()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,fn", FUNCTIONS, ids=IDS)
def test_every_code_matches_its_function(name, fn, dtype, isa):
    x = _inputs(dtype)
    code = common.ACTIVATION_CODES[name]
    with np.errstate(all="ignore"):
        want = fn(x)
        want_code = common.activation_function(code)(x)
    _assert_like(np.asarray(want_code, dtype), np.asarray(want, dtype), dtype, f"{name}: the code's formula")
    for threads in (1, 2):
        got = np.empty_like(x)
        _act.activation_forward(x, got, code, threads)
        _assert_like(got, np.asarray(want, dtype), dtype, f"{name} {dtype} {isa} threads={threads}")
        via_op = apply_activation(x[:7000].reshape(-1, 7), code, n_threads=threads)
        _assert_like(via_op, np.asarray(want, dtype)[:7000].reshape(-1, 7), dtype, f"{name} through the op")


@pytest.mark.parametrize("name,fn", FUNCTIONS, ids=IDS)
def test_op_against_its_twin(name, fn):
    """apply_activation and apply_activation_reference through the kernel-twin checker, with the
    code and with the function (float32 and float64, 1 and N threads)."""
    code = common.ACTIVATION_CODES[name]

    def make_case(dtype):
        x = np.random.default_rng(code).standard_normal((5, 7, 301)).astype(dtype) * 4
        return (x, code), {}

    check_kernel_twin(apply_activation, make_case)


def test_in_place_only_when_asked_and_possible():
    x = np.linspace(-3, 3, 50000, dtype="float32").reshape(100, 500)
    before = x.copy()
    y = apply_activation(x, A.swish)
    assert y is not x and np.array_equal(x, before)
    z = apply_activation(x, A.swish, inplace=True)
    assert z is x
    np.testing.assert_allclose(x, A.swish(before), rtol=3e-6, atol=1e-6)
    view = before[:, ::2]  # not contiguous: a new array, the input untouched
    w = apply_activation(view, common.ACT_ELU, inplace=True)
    assert w.base is not before and np.array_equal(view, before[:, ::2])
    np.testing.assert_allclose(w, A.elu(view), rtol=3e-6, atol=1e-6)
    ro = before.copy()
    ro.flags.writeable = False
    assert apply_activation(ro, A.tanh, inplace=True) is not ro
    # integer arrays and callables without a code take the function itself
    ints = np.arange(-3, 4)
    np.testing.assert_array_equal(apply_activation(ints, A.relu), A.relu(ints))
    np.testing.assert_array_equal(apply_activation(before, np.abs), np.abs(before))
    assert apply_activation_reference(before, common.ACT_RELU).min() == 0


def test_kernel_refuses_bad_arguments():
    x = np.ones(10, "float32")
    with pytest.raises(ValueError, match="unknown activation code"):
        _act.activation_forward(x, x.copy(), len(_act.ACTIVATIONS), 1)
    with pytest.raises(ValueError, match="unknown activation code"):
        _act.activation_forward(x, x.copy(), -1, 1)
    with pytest.raises(ValueError, match="out has 9 values"):
        _act.activation_forward(x, x[:9].copy(), 1, 1)
    with pytest.raises(ValueError, match="n_threads"):
        _act.activation_forward(x, x.copy(), 1, 0)
    with pytest.raises(ValueError, match="(?i)unknown activation code 99"):
        apply_activation(x, 99)
    _act.activation_forward(x[:0], x[:0].copy(), 7, 2)  # empty: nothing to do


def test_kernel_maps_in_place_on_one_array():
    x = np.linspace(-5, 5, 9001).astype("float64")
    want = A.mish(x)
    _act.activation_forward(x, x, common.ACT_MISH, 2)
    np.testing.assert_allclose(x, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("activation,code", [("swish", "swish"), ("gelu", "gelu"), ("sigmoid", "sigmoid"),
                                             ("hard_silu", "hard_swish"), ("relu", "relu")])
def test_plan_folds_an_activation_after_batchnorm(activation, code):
    """Conv2D -> BatchNormalization -> Activation and Dense -> BatchNormalization -> Activation
    run as one step whose op applies the activation's code to its own output; the same
    result as the layers one by one."""
    x_in = klayers.Input((6, 6, 3))
    h = L.Conv2D(8, 3, padding="same")(x_in)
    h = L.BatchNormalization()(h)
    h = L.Activation(activation)(h)
    h = L.Flatten()(h)
    h = L.Dense(5)(h)
    h = L.BatchNormalization()(h)
    out = L.Activation(activation)(h)
    model = klayers.Model(x_in, out)
    rng = np.random.default_rng(4)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in w.name or "gamma" in w.name
                       else rng.normal(0, 0.5, w.shape) for w in model.weights])
    x = rng.standard_normal((2, 6, 6, 3)).astype("float32")
    got = model.predict(x, verbose=0)
    fused = [s for s in model._inference_plan.lowered if isinstance(s, inference.FusedStep)]
    assert [s.act for s in fused] == [common.ACTIVATION_CODES[code]] * 2
    assert all(len(s.steps) == 3 for s in fused)
    with inference.disabled():
        plain = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, plain, rtol=2e-5, atol=2e-5 * np.abs(plain).max())
