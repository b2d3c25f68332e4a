"""Hostile arguments for every compiled kernel in ``klayers._ext``, directly and through
``klayers.ops``; each target runs in a child interpreter, so a crash (a signal) fails one test
and names the last case instead of killing the run.

How the cases are made: the child runs a few real layers whose calls reach the kernel and
records every kernel call they make (the valid "seed" calls, exactly as the op wrappers build
them). Hypothesis then mutates a seed: one array shorter / longer / empty / of another dtype /
non-contiguous / read-only, an integer argument (thread count, activation code, an entry of a
named geometry or task spec, which are dicts) replaced by 0, -1 or an absurd value. The kernel must return or raise ValueError,
TypeError, OverflowError or MemoryError; every output array sits between canary values that
must not change (no out-of-bounds write). A child's address space is capped (``RLIMIT_AS``), so
an absurd allocation fails there as a MemoryError instead of swapping the machine.

Through ``klayers.ops``: every op with a NumPy ``*_reference`` twin, called with the seed
arguments poisoned with NaN / Inf at random positions, gives NaN exactly where the reference
puts it and the same finite values.

``KLAYERS_FUZZ_PROFILE=long`` runs many more examples (tests/_fuzz.py). Under a
``KLAYERS_DEBUG_BOUNDS=1`` build the same suite runs with Cython bounds checks on.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import klayers._ext
from tests._fuzz import LONG, REPO, assert_ok, run_isolated

#: Kernel-module functions that take no array (ISA selection, build information).
NOT_KERNELS = {"select_isa", "openmp_enabled", "openmp_max_threads", "cpu_isa"}

#: Per ``_ext`` module: layers (built in the child) whose calls reach every kernel of the module.
SEEDS = {
    "dense": """[
        (L.Dense(3), (4,)), (L.Dense(5, activation="relu"), (2, 3)), (L.Dense(2, activation="relu6", use_bias=False), (7,)),
        (L.Dense(4, activation="softmax"), (3,)),
        # a model's plan runs its Dense layers on packed kernels
        (klayers.Sequential([L.Input((6,)), L.Dense(40, activation="relu"), L.Dense(3)]), (6,)),
    ]""",
    "conv": """[
        (L.Conv1D(3, 3), (7, 2)), (L.Conv2D(4, 3, padding="same", activation="relu"), (6, 5, 2)),
        (L.Conv2D(4, 1), (4, 4, 3)), (L.Conv2D(4, 3, groups=2, strides=2), (7, 7, 4)),
        (L.Conv2D(2, 3, data_format="channels_first", dilation_rate=2), (2, 7, 7)),
        (L.Conv2D(2, 1, data_format="channels_first"), (3, 4, 4)),
        (L.Conv3D(2, 2), (3, 3, 3, 2)), (L.Conv1D(2, 3, padding="causal"), (6, 2)),
        (L.Conv1D(3, 3, padding="same"), (20, 2)), (L.Conv2D(2, 3, dilation_rate=2), (5, 22, 2)),
        (L.Conv2D(4, 3, groups=2, padding="same", data_format="channels_first"), (4, 3, 18)),
        (L.Conv2D(3, 3, activation="softmax"), (5, 5, 2)),
        # a model's plan folds the BatchNormalization and packs the kernel for small maps
        (klayers.Sequential([L.Input((3, 3, 4)), L.Conv2D(40, 3, padding="same"), L.BatchNormalization(),
                             L.ReLU()]), (3, 3, 4)),
    ]""",
    "activation": """[
        (L.Activation("swish"), (5, 3)), (L.Activation("gelu"), (4,)), (L.Dense(3, activation="elu"), (4,)),
        (L.Conv2D(2, 3, activation="sigmoid"), (4, 4, 2)), (L.Activation("mish"), (200, 300)),
        (L.Activation(klayers.activations.keras3.hard_sigmoid), (7,)), (L.Activation("exponential"), (9,)),
        # merges reach the kernel from ops.activation.SERIAL_VALUES (32768) values on
        (_merge(L.Add(), (64, 64, 8), (64, 64, 8)), (64, 64, 8)),
        (_merge(L.Multiply(), (64, 64, 8), (1, 1, 8)), (64, 64, 8)),
        (_merge(L.Maximum(), (32768,), (32768,)), (32768,)), (_merge(L.Subtract(), (256, 128), (256, 128)), (256, 128)),
    ]""",
    "depthwise": """[
        (L.DepthwiseConv2D(3, depth_multiplier=2), (5, 5, 3)),
        (L.DepthwiseConv2D(3, data_format="channels_first", padding="same", activation="relu6"), (3, 5, 5)),
        (L.DepthwiseConv1D(3), (6, 4)), (L.SeparableConv2D(3, 3, depth_multiplier=2), (5, 5, 2)),
        (L.SeparableConv1D(3, 3, padding="same", activation="relu"), (6, 2)),
        # a model's plan runs MobileNet's inverted residual block as one kernel (rows >= 16)
        (_inverted_residual(), (16, 16, 4)),
    ]""",
    "conv_transpose": """[
        (L.Conv2DTranspose(3, 3, strides=2), (3, 3, 2)), (L.Conv1DTranspose(2, 3, padding="same"), (4, 3)),
        (L.Conv3DTranspose(2, 2, strides=2, activation="relu"), (2, 2, 2, 1)),
        (L.Conv2DTranspose(2, 3, data_format="channels_first"), (2, 3, 3)),
    ]""",
    "local": """[
        (L.LocallyConnected1D(2, 3), (6, 3)), (L.LocallyConnected1D(2, 2, implementation=2), (5, 2)),
        (L.LocallyConnected2D(2, 3, activation="relu"), (5, 5, 2)),
        (L.LocallyConnected2D(3, 2, implementation=3, data_format="channels_first"), (2, 4, 4)),
    ]""",
    "pooling": """[
        (L.MaxPooling2D(2), (5, 5, 3)), (L.AveragePooling2D(3, strides=2, padding="same"), (6, 6, 2)),
        (L.MaxPooling1D(2, data_format="channels_first"), (3, 6)), (L.AveragePooling3D(2), (4, 4, 4, 2)),
        (L.GlobalMaxPooling2D(), (4, 4, 3)), (L.GlobalAveragePooling1D(), (6, 3)),
        (L.GlobalAveragePooling2D(data_format="channels_first"), (3, 4, 4)),
        (L.GlobalMaxPooling1D(data_format="channels_first"), (3, 5)),
    ]""",
    "norm": """[
        (L.LayerNormalization(), (3, 8)), (L.LayerNormalization(axis=[1, 2], center=False), (3, 4)),
        (L.BatchNormalization(), (4, 4, 3)), (L.BatchNormalization(axis=1), (3, 4)),
    ]""",
    "softmax": """[
        (L.Softmax(), (3, 8)), (L.Softmax(axis=1), (5, 3)), (L.Activation("softmax"), (6,)),
        (L.Dense(4, activation="softmax"), (3,)),
    ]""",
    "recurrent": """[
        (L.SimpleRNN(3), (4, 2)), (L.GRU(3, return_sequences=True), (4, 2)), (L.GRU(2, reset_after=False), (3, 2)),
        (L.LSTM(3, go_backwards=True), (5, 2)), (L.Bidirectional(L.LSTM(2)), (3, 2)),
        (_python_loop(L.ConvLSTM2D(2, 3, padding="same")), (3, 4, 4, 2)),
    ]""",
    "convlstm": """[
        (L.ConvLSTM2D(2, 3, padding="same", return_sequences=True), (3, 4, 4, 2)), (L.ConvLSTM1D(2, 2), (2, 5, 1)),
        (L.ConvLSTM2D(2, 3, data_format="channels_first", go_backwards=True), (2, 2, 5, 5)),
    ]""",
}

KERNEL_MODULES = sorted(m.name for m in pkgutil.iter_modules(klayers._ext.__path__) if m.name != "info")


def _kernel_functions(module: str) -> list:
    mod = importlib.import_module(f"klayers._ext.{module}")
    return sorted(n for n in dir(mod) if not n.startswith("_") and callable(getattr(mod, n)) and n not in NOT_KERNELS)


def test_every_kernel_module_has_seeds():
    missing = [m for m in KERNEL_MODULES if m not in SEEDS]
    assert not missing, f"kernel modules without seed layers in tests/ops/test_fuzz_kernels.py: {missing}"


def test_every_kernel_module_has_its_ops_to_compare():
    """The NaN/Inf comparison needs, per kernel module, the ops that reach it: a module without
    any would compare nothing."""
    missing = [m for m in KERNEL_MODULES if not OPS_OF_MODULE.get(m)]
    assert not missing, f"kernel modules without ops in OPS_OF_MODULE: {missing}"


# The child's common part: record the kernel calls of the seed layers.
PRELUDE = r"""
import sys, copy, traceback
sys.path.insert(0, {tests!r})
import numpy as np
import klayers
from klayers import layers as L
import importlib
from _fuzz import FUZZ

def _merge(layer, *shapes):
    # a merge layer of inputs of these shapes (after the batch axis) as a one-input model
    x = klayers.Input(shapes[0])
    ins = [L.Lambda(lambda t, s=s: np.broadcast_to(t[(slice(None),) + tuple(slice(0, d) for d in s)] * 0.5 + 1,
                                                    (t.shape[0],) + s).copy())(x) for s in shapes[1:]]
    return klayers.Model(x, layer([x] + ins))

def _inverted_residual():
    # expand -> depthwise -> project with the residual Add, as MobileNetV2 writes it
    x = klayers.Input((16, 16, 4))
    h = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(12, 1)(x)))
    h = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(h)))
    return klayers.Model(x, L.Add()([x, L.BatchNormalization()(L.Conv2D(4, 1)(h))]))

def _python_loop(layer):
    # a ConvLSTM on its Python reference loop, the caller of recurrent.lstm_pointwise
    layer.cell.compiled_loop = False
    return layer
from hypothesis import given, strategies as st

MOD = importlib.import_module("klayers._ext." + {module!r})
NOT_KERNELS = {not_kernels!r}
KERNELS = sorted(n for n in dir(MOD) if not n.startswith("_") and callable(getattr(MOD, n)) and n not in NOT_KERNELS)
SEEDS = {{k: [] for k in KERNELS}}
ORIG = {{k: getattr(MOD, k) for k in KERNELS}}

def _snapshot(v):
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, (list, tuple)):
        return type(v)(_snapshot(e) for e in v)
    if isinstance(v, dict):
        return {{k: _snapshot(e) for k, e in v.items()}}
    return v

def _recorder(name):
    if isinstance(ORIG[name], type):
        # a prepared kernel (a class: checked once, then called on its arrays): a seed is its
        # constructor's arguments and one call's, ``(ctor_args, call_args)``
        def make(*args):
            kernel = ORIG[name](*args)
            ctor = _snapshot(args)

            class Recorded:
                def __getattr__(self, attr):
                    return getattr(kernel, attr)

                def __call__(self, *call_args):
                    SEEDS[name].append((ctor, _snapshot(call_args)))
                    return kernel(*call_args)
            return Recorded()
        return make

    def rec(*args):
        SEEDS[name].append(_snapshot(args))
        return ORIG[name](*args)
    return rec

for k in KERNELS:
    setattr(MOD, k, _recorder(k))
rng = np.random.default_rng(0)
for threads in (1, 2):
    klayers.set_num_threads(threads)
    for layer, shape in {seeds}:
        for batch in (1, 3):
            x = rng.standard_normal((batch,) + shape).astype("float32")
            layer(x)
for k in KERNELS:
    setattr(MOD, k, ORIG[k])
if {module!r} == "softmax":
    SEEDS["expf"].append((np.linspace(-100, 0, 37).astype("float32"), np.empty(37, "float32")))
missing = [k for k in KERNELS if not SEEDS[k]]
assert not missing, f"no seed call reached the kernels {{missing}}"
print("seeds:", {{k: len(v) for k, v in SEEDS.items()}}, flush=True)
"""

# Direct calls with mutated seeds.
DIRECT = r"""
ALLOWED = (ValueError, TypeError, OverflowError, MemoryError, BufferError)
GUARD = 64
ABSURD = [0, -1, 1, 2, 3, 7, 2**31 - 1, -2**31, 2**32, 2**40, 2**62, 2**63 - 1, -2**63]

def slots(args, path=()):
    # every leaf of the arguments, through lists, tuples and dicts (named geometries, task specs)
    items = args.items() if isinstance(args, dict) else enumerate(args)
    for i, v in items:
        if isinstance(v, (list, tuple, dict)):
            yield from slots(v, path + (i,))
        else:
            yield path + (i,), v

def put(args, path, value):
    # a copy of the container ``args`` (list, tuple or dict) with the leaf at ``path`` replaced
    out = dict(args) if isinstance(args, dict) else list(args)
    out[path[0]] = value if len(path) == 1 else put(out[path[0]], path[1:], value)
    return type(args)(out) if isinstance(args, tuple) else out

def guarded(a):
    # a writable C-contiguous copy of ``a`` inside a buffer with canaries on both sides
    flat = np.full(a.size + 2 * GUARD, 12345, dtype=a.dtype) if a.dtype.kind in "fiu" else None
    if flat is None:
        return a.copy(), None
    flat[GUARD:GUARD + a.size] = a.reshape(-1)
    return flat[GUARD:GUARD + a.size].reshape(a.shape), flat

def mutate_array(a, how):
    if how == "shorter" and a.ndim and a.shape[0] > 0:
        return np.ascontiguousarray(a[:-1])
    if how == "longer":
        return np.concatenate([a, a[:1] if a.shape and a.shape[0] else np.zeros((1,) + a.shape[1:], a.dtype)])
    if how == "empty":
        return np.zeros((0,) + a.shape[1:], a.dtype)
    if how == "last_axis" and a.ndim > 1:
        return np.ascontiguousarray(np.concatenate([a, a[..., :1]], axis=-1))
    if how == "transposed" and a.ndim > 1:
        return np.ascontiguousarray(np.swapaxes(a, 0, -1))
    if how.startswith("dtype:"):
        return a.astype(how[6:])
    if how == "non_contiguous":
        big = np.repeat(a, 2, axis=-1) if a.ndim else a
        return big[..., ::2] if a.ndim else a
    if how == "read_only":
        b = a.copy(); b.setflags(write=False); return b
    if how == "none":
        return None
    return a

HOWS = ["shorter", "longer", "empty", "last_axis", "transposed", "non_contiguous", "read_only", "none",
        "dtype:float16", "dtype:int32", "dtype:int64", "dtype:float64", "dtype:float32", "dtype:complex64", "dtype:bool"]

@FUZZ
@given(data=st.data())
def fuzz(data):
    name = data.draw(st.sampled_from(KERNELS), label="kernel")
    seed = data.draw(st.sampled_from(SEEDS[name]), label="seed")
    args = list(copy.deepcopy(seed))
    all_slots = list(slots(args))
    n_mut = data.draw(st.integers(0, 3), label="mutations")
    notes = []
    for _ in range(n_mut):
        path, value = data.draw(st.sampled_from(all_slots), label="slot")
        if isinstance(value, np.ndarray) and value.dtype == np.intp and value.ndim == 1 and value.size > 4:
            # a geometry vector: replace one entry
            i = data.draw(st.integers(0, value.size - 1))
            v = data.draw(st.sampled_from(ABSURD))
            value = value.copy(); value[i] = v
            notes.append(f"{path}: geo[{i}]={v}")
        elif isinstance(value, np.ndarray):
            how = data.draw(st.sampled_from(HOWS))
            value = mutate_array(value, how)
            notes.append(f"{path}: {how}")
        elif isinstance(value, (bool, np.bool_)) or value is None:
            value = data.draw(st.sampled_from([True, False, None, 0, 1]))
            notes.append(f"{path}: {value!r}")
        elif isinstance(value, (int, np.integer)):
            value = data.draw(st.sampled_from(ABSURD))
            notes.append(f"{path}: {value!r}")
        elif isinstance(value, float):
            value = data.draw(st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 1e300]))
            notes.append(f"{path}: {value!r}")
        args = put(args, path, value)
        all_slots = list(slots(args))
    # every writable array gets canaries around it (catches out-of-bounds writes)
    guards = []
    for path, value in list(slots(args)):
        if isinstance(value, np.ndarray) and value.flags.writeable and value.flags.c_contiguous and value.dtype.kind == "f":
            g, flat = guarded(value)
            if flat is not None:
                args = put(args, path, g)
                guards.append((path, flat))
    print(f"CASE {name} mutations={notes}", flush=True)
    # None for an array: the kernels' memoryview arguments are not declared ``not None``; a
    # debug build (nonecheck) reports it as AttributeError, a release build as a shape mismatch
    allowed = ALLOWED + ((AttributeError,) if any(n.endswith(": none") for n in notes) else ())
    try:
        if isinstance(MOD.__dict__[name], type):
            ctor, call = args
            getattr(MOD, name)(*ctor)(*call)
        else:
            getattr(MOD, name)(*args)
    except allowed:
        pass
    for path, flat in guards:
        assert np.all(flat[:GUARD] == 12345) and np.all(flat[-GUARD:] == 12345), (
            f"{name} wrote outside its output array {path} (mutations {notes})")

fuzz()
print("FUZZ-OK", flush=True)
"""

# Through klayers.ops: compiled vs NumPy reference on NaN / Inf / layouts, seeded by the ops
# calls the same layers make.
#: Per ``_ext`` module: the ``klayers.ops`` functions (each with a ``*_reference`` twin) that
#: call it; every one must receive seed calls from the module's seed layers. ``"a<b"``: the
#: layers call ``b`` (which takes ``a``'s arguments), whose calls are replayed as ``a``.
OPS_OF_MODULE = {
    # merge.merge (binary_forward) takes a list of arrays, which the poisoning here does not
    # reach: tests/ops/test_merge.py compares it with NaN and inf through the kernel-twin checker
    "activation": ["activation.apply_activation"],
    "dense": ["dense.dense"],
    "conv": ["conv.conv"],
    "depthwise": ["conv.depthwise_conv", "conv.separable_conv"],
    "conv_transpose": ["conv_transpose.conv_transpose"],
    "local": ["local.local_conv"],
    "pooling": ["pooling.pool", "pooling.global_pool"],
    "norm": ["normalization.layer_norm", "normalization.channel_affine"],
    "softmax": ["softmax.softmax"],
    "recurrent": ["recurrent.rnn_sequence<recurrent.rnn_job"],
    "convlstm": ["recurrent_conv.convlstm_sequence"],
}

OPS = r"""
EXPECTED_SPEC = {expected!r}
OP_SEEDS = []

def _x_index(args):
    # the op's input: its first floating array argument (an RNN op takes the cell kind first)
    return next((i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"), None)
def _op_recorder(mod, name, fn):
    import inspect
    target = inspect.signature(getattr(mod, name))
    def rec(*args, **kwargs):
        # the call as ``mod.name`` takes it: positional while the names line up, then keywords
        bound = inspect.signature(fn).bind(*args, **kwargs).arguments
        pos, kw, gap = [], {{}}, False
        for p in target.parameters:
            if p not in bound:
                gap = True  # left at its default: what follows goes by keyword
            elif gap:
                kw[p] = bound[p]
            else:
                pos.append(bound[p])
        OP_SEEDS.append((mod, name, _snapshot(tuple(pos)), dict(kw)))
        return fn(*args, **kwargs)
    return rec
# Layers reach an op through whatever name they imported it under (``from klayers.ops.softmax
# import softmax as _op``, ``ops.dense`` the function shadowing the module ...): every attribute
# of every klayers module that *is* the op function is swapped for the recorder.
patched = []
EXPECTED = [q.split("<")[0] for q in EXPECTED_SPEC]
for spec in EXPECTED_SPEC:
    qual, _, called = spec.partition("<")
    mod = importlib.import_module("klayers.ops." + qual.split(".")[0])
    name = qual.split(".")[1]
    assert hasattr(mod, name + "_reference"), f"{{qual}} has no _reference twin"
    cmod = importlib.import_module("klayers.ops." + (called or qual).split(".")[0])
    fn = getattr(cmod, (called or qual).split(".")[1])
    rec = _op_recorder(mod, name, fn)
    for m in list(sys.modules.values()):
        if getattr(m, "__name__", "").startswith("klayers"):
            for attr, value in list(vars(m).items()):
                if value is fn:
                    setattr(m, attr, rec)
                    patched.append((m, attr, fn))
for layer, shape in {seeds}:
    x = rng.standard_normal((2,) + shape).astype("float32")
    layer(x)  # a seed layer that fails is a broken seed, not a pass
for m, attr, fn in patched:
    setattr(m, attr, fn)
OP_SEEDS = [s for s in OP_SEEDS if _x_index(s[2]) is not None]
seeded = {{f"{{s[0].__name__.rsplit('.', 1)[1]}}.{{s[1]}}" for s in OP_SEEDS}}
print("op seeds:", len(OP_SEEDS), sorted(seeded), flush=True)
assert set(EXPECTED) <= seeded, f"ops without a seed call (nothing would be compared): {{sorted(set(EXPECTED) - seeded)}}"
KNOWN = {known!r}
COMPARED = []

def known_bug(name, args, kwargs):
    # a fused relu / relu6 in an op listed in KNOWN_OPS_BUGS (its NaN handling is reported)
    act = kwargs.get("act", args[-1] if args and isinstance(args[-1], int) and not isinstance(args[-1], bool) else 0)
    return name in KNOWN and act in (1, 2)

@FUZZ
@given(data=st.data())
def fuzz_ops(data):
    mod, name, args, kwargs = data.draw(st.sampled_from(OP_SEEDS), label="op")
    args = list(copy.deepcopy(args))
    xi = _x_index(args)
    x = args[xi]
    if isinstance(x, np.ndarray) and x.size:
        x = x.astype(data.draw(st.sampled_from(["float32", "float64"])))
        flat = x.reshape(-1)
        k = data.draw(st.integers(0, min(3, flat.size)))
        for _ in range(k):
            i = data.draw(st.integers(0, flat.size - 1))
            flat[i] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30]))
    layout = data.draw(st.sampled_from(["c", "fortran", "non_contiguous", "read_only"]))
    if isinstance(x, np.ndarray) and x.size:
        if layout == "fortran":
            x = np.asfortranarray(x)
        elif layout == "non_contiguous" and x.ndim:
            x = np.repeat(x, 2, axis=-1)[..., ::2]
        elif layout == "read_only":
            x.setflags(write=False)
        args[xi] = x
    # weights (and states) in the input's dtype, as the layers pass them
    def _cast(a, i):
        if isinstance(a, list):
            return [_cast(v, i) for v in a]
        return a.astype(x.dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" and i > xi else a
    args = [_cast(a, i) for i, a in enumerate(args)]
    kwargs = {{k: (v.astype(x.dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v) for k, v in kwargs.items()}}
    print(f"OP {{name}} x={{getattr(x, 'shape', None)}} {{getattr(x, 'dtype', None)}}", flush=True)
    ref_fn = getattr(mod, name + "_reference")
    with np.errstate(all="ignore"):
        want = ref_fn(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        got = getattr(mod, name)(*args, **kwargs)
    if known_bug(name, args, kwargs):
        return
    try:
        compare(name, got, want)
    except AssertionError as e:
        print(f"MISMATCH {{name}} x={{getattr(x, 'shape', None)}} {{getattr(x, 'dtype', None)}} "
              f"layout={{layout if isinstance(x, np.ndarray) and x.size else None}} "
              f"args={{[getattr(a, 'shape', a) for a in args[1:]]}} kwargs={{ {{k: getattr(v, 'shape', v) for k, v in kwargs.items()}} }}\n"
              f"{{str(e)[:1500]}}", flush=True)
        raise

def compare(name, got, want):
    got_l = got if isinstance(got, (list, tuple)) else [got]
    want_l = want if isinstance(want, (list, tuple)) else [want]
    assert len(got_l) == len(want_l), (name, len(got_l), len(want_l))
    for g, w in zip(got_l, want_l):
        if g is None and w is None:
            continue
        if isinstance(g, (list, tuple)):  # an RNN's final states
            compare(name, list(g), list(w))
            continue
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, (name, g.shape, w.shape)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{{name}}: NaN positions differ from the NumPy reference")
        fin = np.isfinite(w) & np.isfinite(g)
        np.testing.assert_array_equal(np.isposinf(g), np.isposinf(w), err_msg=f"{{name}}: +Inf positions")
        np.testing.assert_array_equal(np.isneginf(g), np.isneginf(w), err_msg=f"{{name}}: -Inf positions")
        tol = 2e-3 if g.dtype == np.float32 else 1e-9
        scale = max(1.0, float(np.max(np.abs(w[fin]))) if fin.any() else 1.0)
        np.testing.assert_allclose(g[fin], w[fin], rtol=tol, atol=tol * scale, err_msg=name)

# every op seed once with NaN first and +Inf last (deterministic), then the random draws
for mod, name, args, kwargs in OP_SEEDS:
    if known_bug(name, args, kwargs):
        continue
    args = list(copy.deepcopy(args))
    xi = _x_index(args)
    x = args[xi].copy()
    x.reshape(-1)[0] = np.nan
    x.reshape(-1)[-1] = np.inf
    args[xi] = x
    with np.errstate(all="ignore"):
        want = getattr(mod, name + "_reference")(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        got = getattr(mod, name)(*args, **kwargs)
    try:
        compare(name, got, want)
    except AssertionError as e:
        print(f"MISMATCH {{name}} NaN first, Inf last: x={{x.shape}} args={{[getattr(a, 'shape', a) for a in args[1:]]}} "
              f"kwargs={{ {{k: getattr(v, 'shape', v) for k, v in kwargs.items()}} }}\n{{str(e)[:1500]}}", flush=True)
        raise
    COMPARED.append(name)
fuzz_ops()
print("compared:", sorted(set(COMPARED)), flush=True)
assert {{q.split(".")[1] for q in EXPECTED}} <= set(COMPARED), "an expected op was never compared"
print("OPS-OK", flush=True)
"""

#: Ops whose compiled result differs from the NumPy reference on NaN / Inf inputs, found by
#: this suite in files other engineers own; reported to the lead (kept out of the comparison).
KNOWN_OPS_BUGS: dict = {}

_LIMIT = 6 * 2**30  # address space of a fuzz child: an absurd allocation fails there


def _child(module: str, body: str) -> str:
    return PRELUDE.format(tests=f"{REPO}/tests", module=module, not_kernels=NOT_KERNELS,
                          seeds=SEEDS[module]) + body.replace("{seeds}", SEEDS[module]).replace(
        "{known!r}", repr(set(KNOWN_OPS_BUGS))).replace("{expected!r}", repr(OPS_OF_MODULE.get(module, []))).replace(
        "{{", "{").replace("}}", "}")


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_kernel_survives_hostile_direct_calls(module):
    proc = run_isolated(_child(module, DIRECT), timeout=600 if LONG else 120, limit_as_bytes=_LIMIT)
    assert_ok(proc)
    assert "FUZZ-OK" in proc.stdout


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_ops_match_the_numpy_reference_on_nan_inf_and_layouts(module):
    proc = run_isolated(_child(module, OPS), timeout=600 if LONG else 120, limit_as_bytes=_LIMIT)
    assert_ok(proc)
    assert "OPS-OK" in proc.stdout


@pytest.mark.parametrize("case", [
    "dense.dense(np.ones((2, 3), 'float32'), np.ones((4, 2), 'float32'), None)",
    "dense.dense(np.ones((2, 3), 'float32'), np.ones((3, 2), 'float32'), np.ones(3, 'float32'))",
    "conv.conv(np.ones((1, 2, 2, 3), 'float32'), np.ones((3, 3, 3, 2), 'float32'), None)",
    "conv.conv(np.ones((1, 5, 5, 3), 'float32'), np.ones((3, 3, 2, 2), 'float32'), None)",
    "conv.conv(np.ones((1, 5, 5, 4), 'float32'), np.ones((3, 3, 2, 3), 'float32'), None, groups=2)",
    "conv.conv(np.ones((1, 5, 5, 3), 'float32'), np.ones((3, 3, 3, 2), 'float32'), None, strides=0)",
    "conv.conv(np.ones((1, 5, 5, 3), 'float32'), np.ones((3, 3, 3, 2), 'float32'), None, dilation_rate=10**9)",
    "conv.conv(np.ones((1, 5, 5, 3), 'float32'), np.ones((3, 3, 3, 2), 'float32'), None, dilation_rate=2**70, padding='same')",
    "conv.conv(np.ones((1, 5, 5, 3), 'float32'), np.ones((3, 3, 3, 2), 'float32'), None, strides=2**70)",
    "conv.conv(np.ones((1, 5, 3), 'float32'), np.ones((3, 3, 3, 2), 'float32'), None)",
    "conv.depthwise_conv(np.ones((1, 5, 5, 3), 'float32'), np.ones((3, 3, 2, 1), 'float32'), None)",
    "conv_transpose.conv_transpose(np.ones((1, 3, 3, 2), 'float32'), np.ones((3, 3, 4, 3), 'float32'), None)",
    "conv_transpose.conv_transpose(np.ones((1, 3, 3, 2), 'float32'), np.ones((3, 3, 4, 2), 'float32'), None, strides=2**62)",
    "pooling.pool(np.ones((1, 2, 2, 3), 'float32'), (3, 3), (1, 1), 'valid', 'channels_last', pooling.MODE_MAX)",
    "pooling.pool(np.ones((1, 4, 4, 3), 'float32'), (2, 2), (0, 1), 'valid', 'channels_last', pooling.MODE_MAX)",
    "pooling.pool(np.ones((1, 4, 4, 3), 'float32'), (2, 2), (2**63, 1), 'same', 'channels_last', pooling.MODE_AVG)",
    "pooling.pool(np.ones((1, 4, 4, 3), 'float32'), (2**70, 2), (1, 1), 'same', 'channels_last', pooling.MODE_AVG)",
    "pooling.global_pool(np.ones((2, 4, 3), 'float32'), 'channels_last', pooling.MODE_AVG, mask=np.ones((3, 4), bool))",
    "normalization.layer_norm(np.ones((2, 3), 'float32'), 3, None, None, 1e-3)",
    "normalization.layer_norm(np.ones((2, 3), 'float32'), 1, np.ones(4, 'float32'), None, 1e-3)",
    "normalization.channel_affine(np.ones((2, 3), 'float32'), 5, np.ones(3, 'float32'), np.ones(3, 'float32'))",
    "normalization.channel_affine(np.ones((2, 3), 'float32'), 1, np.ones(2, 'float32'), np.ones(3, 'float32'))",
    "softmax.softmax(np.ones((2, 3), 'float32'), axis=5)",
    "softmax.softmax(np.ones((2, 3), 'float32'), axis=[1, 1])",
    "recurrent.rnn_sequence('lstm', np.ones((2, 3, 4), 'float32'), np.ones((4, 8), 'float32'), np.ones((2, 8), 'float32'), None, [np.zeros((2, 2), 'float32')])",
    "recurrent.rnn_sequence('gru', np.ones((2, 3), 'float32'), np.ones((4, 6), 'float32'), np.ones((2, 6), 'float32'), None, [np.zeros((2, 2), 'float32')])",
    "recurrent.rnn_sequence('simple', np.ones((2, 3, 4), 'float32'), np.ones((4, 2), 'float32'), np.ones((2, 2), 'float32'), None, [np.zeros((3, 2), 'float32')])",
    "recurrent.rnn_sequence('nope', np.ones((2, 3, 4), 'float32'), np.ones((4, 2), 'float32'), np.ones((2, 2), 'float32'), None, [np.zeros((2, 2), 'float32')])",
    "recurrent.rnn_sequence('simple', np.ones((2, 3, 4), 'float32'), np.ones((4, 2), 'float32'), np.ones((2, 2), 'float32'), None, [np.zeros((2, 2), 'float32')], mask=np.ones((2, 4), bool))",
    "local.local_conv(np.ones((1, 5, 2), 'float32'), np.ones((4, 6, 2), 'float32'), None, (3,), (1,), 'valid', 'channels_last')",
    "local.local_conv(np.ones((1, 5, 2), 'float32'), np.ones((3, 6, 2), 'float32'), None, (3,), (0,), 'valid', 'channels_last')",
])
def test_op_wrappers_refuse_bad_arguments_with_a_clear_error(case, request):
    """Hostile shapes / values at the ``klayers.ops`` level: a ValueError or TypeError, before
    any kernel runs (the wrappers validate everything a kernel assumes)."""
    code = f"""
import importlib
import numpy as np
conv, conv_transpose, dense, local, normalization, pooling, recurrent, softmax = (
    importlib.import_module("klayers.ops." + m)
    for m in ("conv", "conv_transpose", "dense", "local", "normalization", "pooling", "recurrent", "softmax"))
try:
    {case}
except (ValueError, TypeError) as e:
    print("REFUSED", type(e).__name__, e)
else:
    print("ACCEPTED")
"""
    proc = run_isolated(code, limit_as_bytes=_LIMIT)
    assert_ok(proc)
    assert "REFUSED" in proc.stdout, proc.stdout



@pytest.mark.parametrize("op", ["conv", "depthwise_conv"])
def test_conv_fused_relu_keeps_nan(op):
    code = """
import importlib
import numpy as np
c = importlib.import_module("klayers.ops.conv")
x = -np.ones((1, 9, 9, 32), "float32"); x[0, 4, 4, :] = np.nan; x[0, 1, 1, 3] = np.nan
k = np.ones((3, 3, 32, {cout}), "float32")
for act in (c.ACT_RELU, c.ACT_RELU6):
    got = c.{op}(x, k, None, act=act)
    want = c.{op}_reference(x, k, None, act=act)
    assert np.array_equal(np.isnan(got), np.isnan(want)), (act, np.isnan(got).sum(), np.isnan(want).sum())
    assert np.isnan(got).any()
""".replace("{op}", op).replace("{cout}", "1" if op == "depthwise_conv" else "4")
    assert_ok(run_isolated(code, limit_as_bytes=_LIMIT))
