"""Writing configs in the dialect of the Keras that will read a file, and the config fixes both
readers need.

* ``.h5`` files are written for tf-keras: Keras 3 dtype policies become dtype names.
* ``.keras`` archives are written for Keras 3 (:func:`keras3_model_config`): ``DTypePolicy``
  dtypes, ``{"args", "kwargs"}`` node wiring with ``__keras_tensor__`` references numbered from 0,
  nested layers written from the objects they stand for, and the keys of Keras 3's ``get_config``
  (``keras3_keys``). Only rules that hold for every class live here: what concerns one class
  (``batch_shape`` on InputLayers, lambdas as ``__lambda__`` objects, LeakyReLU's
  ``negative_slope`` ...) is that class's ``_to_keras3_config(self, config) -> config`` method, the
  inverse of its ``_from_keras3_config`` classmethod (which the readers apply).
* A model whose maths a name would change in the target Keras (Keras 2's ``hard_sigmoid``
  written for Keras 3 and the reverse) is refused with an error naming the layer.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List

import numpy as np

from klayers import activations, constraints, initializers, regularizers
from klayers.engine.base_layer import Layer
from klayers.engine.graph import node_key
from klayers.engine.layer_serialization import deserialize
from klayers.engine.sequential import Sequential
from klayers.saving.keras3_keys import KERAS3_BUILT_AT_INIT, KERAS3_CONFIG_KEYS, KERAS3_UNSET_VALUES
from klayers.serialization import serialize_keras_object

_K3_POLICIES = ("DTypePolicy", "FloatDTypePolicy")
#: Layer classes Keras 3 does not have: a model holding them can be written only as .h5.
KERAS2_ONLY_CLASSES = ("LocallyConnected1D", "LocallyConnected2D", "ThresholdedReLU", "CuDNNGRU", "CuDNNLSTM", "TFOpLambda", "SlicingOpLambda",
                       "SyncBatchNormalization")


def _policy_name(dtype: Any) -> Any:
    if isinstance(dtype, dict) and dtype.get("class_name") in _K3_POLICIES + ("Policy",):
        inner = dtype.get("config") or {}
        return inner.get("name", "float32")
    return dtype


def to_keras2_config(config: Any) -> Any:
    """A copy of ``config`` with Keras 3 dtype policies written as dtype names (tf-keras reads
    only names or its own mixed-precision ``Policy``)."""
    if isinstance(config, list):
        return [to_keras2_config(v) for v in config]
    if not isinstance(config, dict):
        return config
    out = {}
    for k, v in config.items():
        if k == "dtype" and isinstance(v, dict) and v.get("class_name") in _K3_POLICIES:
            out[k] = _policy_name(v)
        elif k == "batch_shape" and "batch_input_shape" not in config:
            out["batch_input_shape"] = v
        else:
            out[k] = to_keras2_config(v)
    return out


# -- meanings that differ between the two Kerases ---------------------------------------------
def _all_layers(model: Any) -> List[Any]:
    out, stack, seen = [], [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        out.append(layer)
        stack.extend(getattr(layer, "layers", []) if hasattr(layer, "_is_graph_network") else [])
        stack.extend(getattr(layer, "_self_tracked_layers", []))
    return out


def check_meanings(model: Any, target: int, path: str) -> None:
    """Refuse to write ``model`` for Keras ``target`` (2 or 3) when an activation it holds would
    be read back with other maths (``hard_sigmoid``), or a layer class does not exist there."""
    wrong = activations.hard_sigmoid if target == 3 else activations.KERAS3_OBJECTS["hard_sigmoid"]
    bad = []
    for layer in _all_layers(model):
        if target == 2 and str(type(layer).__dict__.get("_keras_module", "")).startswith("keras.src.ops"):
            raise ValueError(
                f"Cannot save '{path}' for tf-keras: node {layer.name} is the Keras 3 operation "
                f"{type(layer).__name__}, which tf-keras files cannot hold. Save as .keras instead."
            )
        if target == 3 and type(layer).__name__ in KERAS2_ONLY_CLASSES:
            raise ValueError(
                f"Cannot save '{path}' for Keras 3: layer {layer.name} is a {type(layer).__name__}, "
                "which Keras 3 does not have. Save as .h5 (tf-keras) instead."
            )
        conflict = getattr(layer, "_dialect_conflict", None)
        reason = conflict(target) if conflict is not None else None
        if reason:  # a layer whose maths differ between the Kerases where its inputs reach them
            raise ValueError(f"Cannot save '{path}' for {'Keras 3' if target == 3 else 'tf-keras'}: layer "
                             f"{layer.name}: {reason}. Save in the other format instead.")
        for attr, value in vars(layer).items():
            if value is wrong:
                bad.append(f"{layer.name}.{attr}")
    if bad:
        other = "Keras 2's clip(0.2x + 0.5, 0, 1)" if target == 3 else "Keras 3's relu6(x + 3) / 6"
        fmt = ".keras (Keras 3)" if target == 3 else ".h5 (tf-keras)"
        raise ValueError(
            f"Cannot save '{path}' as {fmt}: {', '.join(bad)} use{'s' if len(bad) == 1 else ''} "
            f"hard_sigmoid with {other}, and that Keras reads the name 'hard_sigmoid' with the other "
            f"formula. Save in the other format ({'.h5' if target == 3 else '.keras'}) instead."
        )


# -- Keras 3 configs ---------------------------------------------------------------------------
def _k3_policy(dtype: Any) -> Any:
    if isinstance(dtype, dict) and dtype.get("class_name") in _K3_POLICIES:
        return {k: v for k, v in dtype.items() if k != "shared_object_id"}
    name = _policy_name(dtype) or "float32"
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


_ANY = object()
_NOT_LISTED = object()
#: Keras 2 keys Keras 3 does not take, and the values at which dropping them changes nothing.
_HARMLESS = {"implementation": _ANY, "fused": _ANY, "input_length": _ANY, "batch_input_shape": _ANY,
             "time_major": False, "groups": 1, "virtual_batch_size": None, "adjustment": None,
             "enable_caching_device": _ANY, "sparse": False, "ragged": False, "noise_shape": None}
#: Keys Keras 3's base Layer takes as keyword arguments though get_config may not list them.
_K3_LAYER_KWARGS = {"name", "trainable", "dtype", "activity_regularizer", "input_dim", "input_shape"}
#: Config keys holding a nested layer entry (or a list of them).
_NESTED = ("layer", "backward_layer", "cell", "cells")
#: The Keras modules a serialized vocabulary object in a layer config names.
_VOCABULARY = ("keras.initializers", "keras.regularizers", "keras.constraints")


def _k3_objects(config: Dict[str, Any]) -> Dict[str, Any]:
    """Serialized initializers, regularizers and constraints of a layer config, each refined by
    its class's ``_to_keras3_config`` where it has one (Keras 3's VarianceScaling writes the fan
    axes, for one)."""
    deserialize = dict(zip(_VOCABULARY, (initializers.deserialize, regularizers.deserialize, constraints.deserialize)))
    out = dict(config)
    for key, entry in config.items():
        if not (isinstance(entry, dict) and entry.get("module") in _VOCABULARY and isinstance(entry.get("config"), dict)):
            continue
        obj = deserialize[entry["module"]](entry)
        hook = getattr(obj, "_to_keras3_config", None)
        if hook is not None:
            out[key] = dict(entry, config=hook(dict(entry["config"])))
    return out


def _sublayers(layer: Any) -> Dict[str, Any]:
    """The layers ``layer`` holds (a wrapper's layer, an RNN's cell, stacked cells), by name."""
    found: Dict[str, Any] = {}
    values = list(vars(layer).values()) + list(getattr(layer, "_self_tracked_layers", []))
    for value in values:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, Layer):
                found.setdefault(item.name, item)
    return found


def _k3_nested(layer: Any, entry: Any) -> Any:
    """A nested layer entry of ``layer``'s config as Keras 3 writes it: from the layer object it
    stands for (so that class's own fixes apply and its build config is kept): the object itself
    where a ``_to_keras3_config`` put one, else the one ``layer`` holds under the entry's name."""
    if isinstance(entry, Layer):
        return keras3_layer_entry(entry)
    if not (isinstance(entry, dict) and isinstance(entry.get("class_name"), str) and isinstance(entry.get("config"), dict)):
        return entry
    sub = _sublayers(layer).get(entry["config"].get("name"))
    if sub is None or type(sub).__name__ != entry["class_name"]:
        sub = deserialize(entry)
    return keras3_layer_entry(sub)


def _k3_key_table(class_name: str, config: Dict[str, Any], where: str) -> Dict[str, Any]:
    """Keys as Keras 3's ``get_config`` of ``class_name`` writes them: Keras 2 keys it does not
    take are dropped where that changes nothing (refused otherwise), and keys it always writes
    that klayers's config lacks get the value Keras 3 writes when the option is unused."""
    known = KERAS3_CONFIG_KEYS.get(class_name)
    if known is None:
        if config.get("activity_regularizer", "missing") is None:
            config.pop("activity_regularizer")
        return config
    for key in [k for k in config if k not in known and k not in _K3_LAYER_KWARGS]:
        harmless = _HARMLESS.get(key, _NOT_LISTED)
        if harmless is _ANY or (harmless is not _NOT_LISTED and config[key] == harmless):
            config.pop(key)
        else:
            raise ValueError(
                f"Cannot write layer {where!r} ({class_name}) for Keras 3: its Keras 2 option "
                f"{key}={config[key]!r} has no Keras 3 equivalent. Save as .h5 (tf-keras) instead."
            )
    if config.get("activity_regularizer", "missing") is None and "activity_regularizer" not in known:
        config.pop("activity_regularizer")
    for key in sorted(known - set(config)):
        if key in KERAS3_UNSET_VALUES:
            config[key] = copy.deepcopy(KERAS3_UNSET_VALUES[key])
    return config


def keras3_layer_config(layer: Any) -> Dict[str, Any]:
    """The layer's config as Keras 3 writes it.

    Generic rules here (dtype policies, serialized vocabulary objects, nested layer entries, the
    Keras 3 key table of ``keras3_keys``); what concerns one class is that class's
    ``_to_keras3_config(self, config) -> config`` method (the inverse of its
    ``_from_keras3_config``), applied to the config with Keras 3 dtype policies.

    Raises:
        ValueError: a Keras 2 option Keras 3 has no equivalent for (named, with the layer).
    """
    config = {k: serialize_keras_object(v) for k, v in layer.get_config().items()}
    if "dtype" in config:
        config["dtype"] = _k3_policy(config["dtype"])
    config = _k3_objects(config)
    hook = getattr(layer, "_to_keras3_config", None)
    if hook is not None:
        config = hook(config)
    for key in _NESTED:
        if isinstance(config.get(key), list):
            config[key] = [_k3_nested(layer, c) for c in config[key]]
        elif key in config:
            config[key] = _k3_nested(layer, config[key])
    if str(type(layer).__dict__.get("_keras_module", "")).startswith("keras.src.ops"):
        return config  # an operation node: its class name may be a layer's (Reshape), not its keys
    return _k3_key_table(type(layer).__name__, config, config.get("name") or layer.name)


def _k3_tensor(t: Any, history_index: int) -> Dict[str, Any]:
    layer, _, tensor_index = t._keras_history
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None if d is None else int(d) for d in t.shape], "dtype": str(t.dtype),
                       "keras_history": [layer.name, history_index, int(tensor_index)]}}


def _is_model(layer: Any) -> bool:
    return hasattr(layer, "_is_graph_network")


def keras3_model_config(model: Any) -> Dict[str, Any]:
    """``model`` serialized as Keras 3.x ``serialize_keras_object(model)`` (config.json)."""
    if isinstance(model, Sequential):
        layers = []
        if model._is_graph_network and model._input_layer is not None:
            layers.append(keras3_layer_entry(model._input_layer))
        layers.extend(keras3_layer_entry(layer) for layer in model.layers)
        inner: Dict[str, Any] = {"name": model.name, "trainable": model.trainable,
                                 "dtype": _k3_policy("float32"), "layers": layers}
        build = None
        if model._is_graph_network:
            build = [None if d is None else int(d) for d in model.inputs[0].shape]
            inner["build_input_shape"] = build
        return {"module": "keras", "class_name": "Sequential", "config": inner, "registered_name": None,
                "build_config": {"input_shape": build}}
    if not (_is_model(model) and model._is_graph_network):
        raise ValueError(f"Cannot save model {model.name}: only Sequential and functional models can be written to a file.")
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": _k3_functional_config(model), "registered_name": "Functional",
            "build_config": {"input_shape": None}}


def keras3_layer_entry(layer: Any) -> Dict[str, Any]:
    """``{"module", "class_name", "config", "registered_name"[, "build_config"]}`` of ``layer`` as
    Keras 3's ``serialize_keras_object`` writes it (a model's: :func:`keras3_model_config`)."""
    if _is_model(layer):
        return keras3_model_config(layer)
    cls = type(layer)
    module = cls.__dict__.get("_keras_module")
    if not (isinstance(module, str) and module.startswith("keras.src.ops")):
        module = "keras.layers"
    entry = {"module": module, "class_name": cls.__name__,
             "config": keras3_layer_config(layer), "registered_name": cls.__dict__.get("_keras_registered_name")}
    # a layer built from several arguments (MultiHeadAttention) writes Keras 3's ``shapes_dict``
    hook = getattr(layer, "_keras3_build_config", None)
    build = hook() if hook is not None else layer.get_build_config() if hasattr(layer, "get_build_config") else None
    if build and cls.__name__ not in KERAS3_BUILT_AT_INIT:
        entry["build_config"] = build
    return entry


def _k3_functional_config(model: Any) -> Dict[str, Any]:
    own = model._network_nodes

    def arg_index(layer: Any, node_index: int) -> int:
        # Keras 3 numbers a layer's nodes from 0, counting only the nodes of this model.
        return sum(1 for i in range(node_index) if node_key(layer.name, i) in own)

    def io_index(layer: Any, node_index: int) -> int:
        # input_layers / output_layers keep Keras's node_reindexing_map: a nested functional
        # model starts at 1 (its own creation node), everything else at 0.
        base = 1 if _is_model(layer) and type(layer).__name__ != "Sequential" and layer._is_graph_network else 0
        return base + arg_index(layer, node_index)

    def ser(x: Any) -> Any:
        if hasattr(x, "_keras_history"):
            layer, node_index, _ = x._keras_history
            return _k3_tensor(x, arg_index(layer, node_index))
        if isinstance(x, (list, tuple)):
            return [ser(v) for v in x]
        if isinstance(x, dict):
            return {k: ser(v) for k, v in x.items()}
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
        return x

    entries = []
    for layer in model.layers:
        nodes = []
        for i, node in enumerate(layer._inbound_nodes):
            if node_key(layer.name, i) in own and not node.is_input:
                nodes.append({"args": ser(list(node.call_args)), "kwargs": ser(dict(node.call_kwargs or {}))})
        entry = keras3_layer_entry(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = nodes
        entries.append(entry)

    def coords(tensors: List[Any]) -> Any:
        out = []
        for t in tensors:
            layer, node_index, tensor_index = t._keras_history
            out.append([layer.name, io_index(layer, node_index), int(tensor_index)])
        return out

    return {"name": model.name, "trainable": model.trainable, "layers": entries,
            "input_layers": coords(model.inputs), "output_layers": coords(model.outputs)}
