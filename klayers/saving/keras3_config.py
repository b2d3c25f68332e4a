"""Writing configs in the dialect of the Keras that will read a file, and the config fixes both
readers need.

* ``.h5`` files are written for tf-keras: Keras 3 dtype policies become dtype names.
* ``.keras`` archives are written for Keras 3 (:func:`keras3_model_config`): ``DTypePolicy``
  dtypes, ``batch_shape`` on InputLayers, ``{"args", "kwargs"}`` node wiring with
  ``__keras_tensor__`` references numbered from 0, lambdas as ``__lambda__`` objects. A layer
  class may refine its own config with a ``_to_keras3_config(self, config) -> config`` method
  (the inverse of ``_from_keras3_config``).
* A model whose maths a name would change in the target Keras (Keras 2's ``hard_sigmoid``
  written for Keras 3 and the reverse) is refused with an error naming the layer.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

import numpy as np

from klayers import activations
from klayers.engine.graph import node_key
from klayers.engine.sequential import Sequential
from klayers.saving.keras3_keys import KERAS3_CONFIG_KEYS
from klayers.serialization import serialize_keras_object

_K3_POLICIES = ("DTypePolicy", "FloatDTypePolicy")
#: Layer classes Keras 3 does not have: a model holding them can be written only as .h5.
KERAS2_ONLY_CLASSES = ("LocallyConnected1D", "LocallyConnected2D", "ThresholdedReLU", "CuDNNGRU", "CuDNNLSTM", "TFOpLambda")


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


def _k3_function(value: Any, kind: Optional[str]) -> Any:
    if kind == "lambda" and isinstance(value, (list, tuple)) and len(value) == 3:
        code, defaults, closure = value
        return {"class_name": "__lambda__", "config": {"code": code, "defaults": defaults, "closure": closure}}
    if kind == "function" and isinstance(value, str):
        return {"module": "builtins", "class_name": "function", "config": value, "registered_name": "function"}
    return value


_ANY = object()
#: Keras 2 keys Keras 3 does not take, and the values at which dropping them changes nothing.
_HARMLESS = {"implementation": _ANY, "fused": _ANY, "input_length": _ANY, "batch_input_shape": _ANY,
             "time_major": False, "groups": 1, "virtual_batch_size": None, "adjustment": None,
             "enable_caching_device": _ANY, "sparse": False, "ragged": False}
#: Keys Keras 3's base Layer takes as keyword arguments though get_config may not list them.
_K3_LAYER_KWARGS = {"name", "trainable", "dtype", "activity_regularizer", "input_dim", "input_shape"}
_NESTED = ("layer", "backward_layer", "cell")


def _k3_nested(entry: Any, owner: str) -> Any:
    if not (isinstance(entry, dict) and isinstance(entry.get("class_name"), str) and isinstance(entry.get("config"), dict)):
        return entry
    return {"module": "keras.layers", "class_name": entry["class_name"],
            "config": fix_config_for_keras3(entry["class_name"], entry["config"], owner), "registered_name": None}


def fix_config_for_keras3(class_name: str, config: Dict[str, Any], owner: str = "") -> Dict[str, Any]:
    """A Keras 2 layer config (klayers's ``get_config``) as Keras 3 takes it.

    Raises:
        ValueError: a Keras 2 option Keras 3 has no equivalent for (named, with the layer).
    """
    config = dict(config)
    where = config.get("name") or owner
    if "dtype" in config:
        config["dtype"] = _k3_policy(config["dtype"])
    if class_name == "BatchNormalization" and isinstance(config.get("axis"), list) and len(config["axis"]) == 1:
        config["axis"] = config["axis"][0]
    if class_name == "LeakyReLU" and "alpha" in config:
        config["negative_slope"] = config.pop("alpha")
    if config.get("activity_regularizer", "missing") is None:
        config.pop("activity_regularizer")
    if class_name == "Lambda":
        for key, kind_key, module_key in (("function", "function_type", "module"),
                                          ("output_shape", "output_shape_type", "output_shape_module"),
                                          ("mask", "mask_type", "mask_module")):
            kind = config.pop(kind_key, None)
            config.pop(module_key, None)
            if key in config:
                config[key] = _k3_function(config[key], kind)
            if key != "function" and config.get(key, "x") is None:
                config.pop(key)
    for key in _NESTED:
        if key in config:
            config[key] = _k3_nested(config[key], where)
    if isinstance(config.get("cells"), list):
        config["cells"] = [_k3_nested(c, where) for c in config["cells"]]
    known = KERAS3_CONFIG_KEYS.get(class_name)
    if known is not None:
        for key in [k for k in config if k not in known and k not in _K3_LAYER_KWARGS]:
            harmless = _HARMLESS.get(key, _NOT_LISTED)
            if harmless is _ANY or (harmless is not _NOT_LISTED and config[key] == harmless):
                config.pop(key)
            else:
                raise ValueError(
                    f"Cannot write layer {where!r} ({class_name}) for Keras 3: its Keras 2 option "
                    f"{key}={config[key]!r} has no Keras 3 equivalent. Save as .h5 (tf-keras) instead."
                )
    return config


_NOT_LISTED = object()


def keras3_layer_config(layer: Any) -> Dict[str, Any]:
    """The layer's config as Keras 3 writes it."""
    config = {k: serialize_keras_object(v) for k, v in layer.get_config().items()}
    cls = type(layer).__name__
    if cls == "InputLayer":
        shape = config.pop("batch_input_shape", None)
        return {"batch_shape": shape, "dtype": _policy_name(config.get("dtype")) or "float32",
                "sparse": False, "ragged": False, "name": layer.name, "optional": bool(config.get("optional", False))}
    config = fix_config_for_keras3(cls, config)
    hook = getattr(layer, "_to_keras3_config", None)
    if hook is not None:
        config = hook(config)
    return config


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
            layers.append(_k3_entry(model._input_layer))
        layers.extend(_k3_entry(layer) for layer in model.layers)
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


def _k3_entry(layer: Any) -> Dict[str, Any]:
    if _is_model(layer):
        return keras3_model_config(layer)
    cls = type(layer)
    module = cls.__dict__.get("_keras_module")
    if not (isinstance(module, str) and module.startswith("keras.src.ops")):
        module = "keras.layers"
    entry = {"module": module, "class_name": cls.__name__,
             "config": keras3_layer_config(layer), "registered_name": cls.__dict__.get("_keras_registered_name")}
    if type(layer).__name__ != "InputLayer":
        build = layer.get_build_config() if hasattr(layer, "get_build_config") else None
        if build:
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
        entry = _k3_entry(layer)
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


# -- reading: Keras 3 configs klayers's layers do not take directly ----------------------------
def keras3_lambdas_to_keras2(config: Any) -> Any:
    """A copy of a Keras 3 model config whose Lambda layers carry their functions in Keras 2's
    form (``function`` = [code, defaults, closure], ``function_type`` = "lambda"), which is what
    ``klayers.layers.Lambda.from_config`` takes. The code is not run here."""
    config = copy.deepcopy(config)

    def fix(entry: Any) -> None:
        if not isinstance(entry, dict):
            return
        inner = entry.get("config")
        if entry.get("class_name") == "Lambda" and isinstance(inner, dict):
            for key, kind_key, module_key in (("function", "function_type", "module"),
                                              ("output_shape", "output_shape_type", "output_shape_module"),
                                              ("mask", "mask_type", "mask_module")):
                value = inner.get(key)
                if isinstance(value, dict) and value.get("class_name") == "__lambda__":
                    c = value.get("config") or {}
                    inner[key] = [c.get("code"), c.get("defaults"), c.get("closure")]
                    inner[kind_key] = "lambda"
                    inner.setdefault(module_key, None)
                elif key in inner and kind_key not in inner and key != "function" and not isinstance(value, dict):
                    inner[kind_key] = "raw"
        if isinstance(inner, dict):
            for key in ("layers", "cells"):
                if isinstance(inner.get(key), list):
                    for sub in inner[key]:
                        fix(sub)
            for key in ("layer", "forward_layer", "backward_layer", "cell"):
                fix(inner.get(key))

    fix(config)
    return config


