"""The replay table: which check replays which recorded cases.

One row (:class:`Check`) names a family of ``conformance/references/<dialect>/<family>.json``,
the dialects it covers, which of the family's cases it takes (``where``), and the check it runs on
each (``run(case, **fixtures)``). ``test_replay.py`` runs every row on every case it takes, with
ids ``family-dialect-case`` (``-label`` when a family has several checks per case, ``-item`` for a
case replayed entry by entry). Families whose checks really differ have their own check function,
but as a row here, not as a copy of a test file.

The table is also what the coverage test counts: a public object of klayers is covered when a
case some row replays exercises it (``exercises``), not when its name appears in the data.

Adding a family: record it (``record.py``), then add its rows here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Tuple

import pytest

from conformance import checks_layers as L
from conformance import checks_models as M
from conformance import checks_objects as O
from conformance import refs
from conformance.refs import DIALECTS, Case

#: What a case exercises: ``(kind, name)`` with kind "layer", "activation", "initializer",
#: "regularizer" or "constraint".
Exercised = FrozenSet[Tuple[str, str]]


def _not_api(name: str, meta: Dict[str, Any]) -> bool:
    return name != "api"


def _api(name: str, meta: Dict[str, Any]) -> bool:
    return name == "api"


def _named(*names: str) -> Callable[[str, Dict[str, Any]], bool]:
    return lambda name, meta: name in names


def _not_named(*names: str) -> Callable[[str, Dict[str, Any]], bool]:
    return lambda name, meta: name not in names


def _kind(kind: Optional[str]) -> Callable[[str, Dict[str, Any]], bool]:
    return lambda name, meta: meta.get("kind") == kind


def _layer_classes(config: Any, out: set) -> set:
    """Class names of a layer or model config and of every layer nested in it."""
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str) and isinstance(config.get("config"), dict):
            out.add(config["class_name"])
        for v in config.values():
            _layer_classes(v, out)
    elif isinstance(config, list):
        for v in config:
            _layer_classes(v, out)
    return out


def layers_of_layer_case(case: Case) -> Exercised:
    """The recorded layer and the layers nested in its config (a wrapper's layer, an RNN's cell)."""
    names = _layer_classes(case.meta.get("config"), {case.meta["class_name"]})
    return frozenset(("layer", n) for n in names)


def layers_of_model_case(case: Case) -> Exercised:
    config = case.meta.get("model_config") or case.meta.get("json")
    names = _layer_classes(config, set())
    if "model_config" in case.meta:
        names.add(case.meta["class_name"])
    return frozenset(("layer", n) for n in names)


def layers_of_file_case(case: Case) -> Exercised:
    return frozenset(("layer", n) for n in case.meta["classes"])


def _object(kind: str, key: str) -> Callable[[Case], Exercised]:
    return lambda case: frozenset({(kind, case.meta[key])})


def _nothing(case: Case) -> Exercised:
    return frozenset()


@dataclass(frozen=True)
class Check:
    """One row of the replay table."""

    family: str
    run: Callable[..., None]
    where: Callable[[str, Dict[str, Any]], bool] = _not_api
    dialects: Tuple[str, ...] = DIALECTS
    #: appended to the test id when a family has several checks per case
    label: str = ""
    #: one test per entry of a case (the aliases of an ``api`` case)
    items: Optional[Callable[[Dict[str, Any]], Iterable[str]]] = None
    #: pytest marks for a case (strict xfails of known gaps)
    marks: Optional[Callable[[Case], List[Any]]] = None
    exercises: Callable[[Case], Exercised] = layers_of_layer_case

    @property
    def id(self) -> str:
        return "-".join(p for p in (self.family, "+".join(self.dialects), self.label or self.run.__name__) if p)

    def cases(self) -> List[Case]:
        """Every case of the row's family and dialects that the row takes, sorted by name."""
        out = []
        for dialect in self.dialects:
            for name, meta in refs.cases(self.family, dialect):
                if not self.where(name, meta):
                    continue
                if self.items is None:
                    out.append(Case(self.family, dialect, name, meta))
                else:
                    out.extend(Case(self.family, dialect, name, meta, item) for item in sorted(self.items(meta)))
        return out

    def case_id(self, case: Case) -> str:
        return "-".join(p for p in (case.family, case.dialect, case.name, self.label, case.item) if p)


def _nan_outputs(case: Case) -> List[Any]:
    # the shared layer replay scales its tolerance by max|output|, NaN or inf in pooling's NaN
    # cases: the element-wise comparison of the pooling checks is the real one there
    return [pytest.mark.filterwarnings("ignore:One of rtol or atol is not valid:RuntimeWarning")]


def _aliases(meta: Dict[str, Any]) -> Iterable[str]:
    return meta["aliases"]


_ACT = _object("activation", "fn")
_INIT = _object("initializer", "cls")
_REG = _object("regularizer", "cls")
_CON = _object("constraint", "cls")

TABLE: Tuple[Check, ...] = (
    # -- vocabulary objects
    Check("activations", O.activation_output, lambda n, m: bool(m["arrays"]), label="output", exercises=_ACT),
    Check("activations", O.activation_serialize, lambda n, m: bool(m["arrays"]), label="serialize", exercises=_ACT),
    Check("activations", O.activation_dialects_differ, _named("hard_sigmoid"), ("keras3",), label="dialects_differ",
          exercises=_ACT),
    Check("activations", O.activation_public_names, _api, label="public_names", exercises=_nothing),
    Check("activations", O.activation_get_none_and_unknown, _api, label="get_none_and_unknown", exercises=_nothing),
    Check("activations", O.activation_custom_function, _api, ("keras2",), label="custom_function", exercises=_nothing),
    Check("activations", O.activation_function_dict, _api, ("keras2",), label="function_dict", exercises=_nothing),
    Check("initializers", O.initializer_statistics, lambda n, m: n != "api" and O.is_random_initializer(m),
          label="statistics", exercises=_INIT),
    Check("initializers", O.initializer_orthogonal, lambda n, m: n != "api" and m["cls"] == "Orthogonal",
          label="orthogonal", exercises=_INIT),
    Check("initializers", O.initializer_exact, lambda n, m: n != "api" and bool(m["arrays"]), label="exact",
          exercises=_INIT),
    Check("initializers", O.initializer_config, label="config", exercises=_INIT),
    Check("initializers", O.initializer_serialize, dialects=("keras2",), label="serialize", exercises=_INIT),
    Check("initializers", O.initializer_alias, _api, label="alias", items=_aliases, exercises=_nothing),
    Check("initializers", O.initializer_functional_aliases, _api, ("keras2",), label="functional_aliases",
          exercises=_nothing),
    Check("initializers", O.initializer_errors_and_none, _api, ("keras2",), label="errors_and_none", exercises=_nothing),
    Check("initializers", O.initializer_legacy_dict, _api, ("keras2",), label="legacy_dict", exercises=_nothing),
    Check("regularizers", O.regularizer_penalty, label="penalty", exercises=_REG),
    Check("regularizers", O.regularizer_config, label="config", exercises=_REG),
    Check("regularizers", O.regularizer_aliases, _api, label="aliases", exercises=_nothing),
    Check("regularizers", O.regularizer_l1_l2_and_unknown, _api, ("keras2",), label="l1_l2_and_unknown",
          exercises=_nothing),
    Check("constraints", O.constraint_output, label="output", exercises=_CON),
    Check("constraints", O.constraint_config, label="config", exercises=_CON),
    Check("constraints", O.constraint_aliases, _api, label="aliases", exercises=_nothing),
    # -- layers
    Check("advanced_activations", L.layer_call),
    Check("convolutional", L.layer, lambda n, m: m["class_name"] != "DepthwiseConv3D"),
    Check("convolutional", L.depthwise_conv3d, lambda n, m: m["class_name"] == "DepthwiseConv3D", ("keras2",),
          label="grouped_conv3d"),
    Check("core", L.layer, lambda n, m: "model_config" not in m and "n_inputs" not in m),
    Check("core", L.layer_call, lambda n, m: "model_config" not in m and "n_inputs" in m),
    Check("core", L.functional_model, lambda n, m: "model_config" in m, ("keras2",), exercises=layers_of_model_case),
    Check("embeddings", L.layer_call),
    Check("local", L.local_layer, _kind(None), ("keras2",)),
    Check("local", L.local_model_file, _kind("model_file"), ("keras2",),
          exercises=lambda case: frozenset(("layer", n) for n in case.meta["class_names"])),
    Check("merge", L.layer_call, lambda n, m: "model_config" not in m),
    Check("merge", L.functional_model, lambda n, m: "model_config" in m, ("keras2",), exercises=layers_of_model_case),
    Check("noise", L.layer_call),
    Check("normalization", L.layer_call),
    Check("normalization_more", L.layer_call, lambda n, m: "files" not in m),
    Check("normalization_more", M.file_predicts, lambda n, m: "files" in m, label="file_predicts",
          exercises=layers_of_file_case),
    Check("normalization_more", M.file_weights, lambda n, m: "files" in m, label="file_weights",
          exercises=layers_of_file_case),
    Check("normalization_more", M.file_written_back, lambda n, m: "files" in m, label="file_written_back",
          exercises=layers_of_file_case),
    Check("layers_more", L.layer_call, lambda n, m: not m["class_name"].startswith("Adaptive")),
    Check("layers_more", L.pooling_layer, lambda n, m: m["class_name"].startswith("Adaptive"), ("keras3",),
          label="adaptive_pooling"),
    Check("pooling", L.pooling_layer, _kind(None), marks=_nan_outputs),
    Check("pooling", L.pooling_masked, _kind("masked"), ("keras2",), label="masked"),
    Check("pooling", L.pooling_error, _kind("error"), ("keras2",), label="error"),
    Check("recurrent", L.rnn_layer),
    Check("recurrent_conv", L.rnn_layer, lambda n, m: not m.get("cell")),
    Check("recurrent_conv", L.convlstm_cell, lambda n, m: bool(m.get("cell")), ("keras2",), label="cell"),
    Check("reshaping", L.layer),
    Check("wrappers", L.rnn_layer),
    Check("attention", L.einsum_dense_call, lambda n, m: m.get("kind") is None),
    Check("attention", L.mha_call, _kind("mha_call")),
    Check("attention_more", L.dense_attention_call, _kind("dense_attention")),
    Check("attention_more", L.mha_call, _kind("mha_call"), ("keras3",), label="gqa_call"),
    # -- models and files
    Check("models", M.model_predictions, dialects=("keras2",), label="predictions", exercises=layers_of_model_case),
    Check("models", M.model_structure_and_config, dialects=("keras2",), label="structure_and_config",
          exercises=layers_of_model_case),
    Check("models", M.model_node_api, dialects=("keras2",), label="node_api", exercises=layers_of_model_case),
    Check("models", M.model_config_round_trip, dialects=("keras2",), label="config_round_trip",
          exercises=layers_of_model_case),
    Check("recurrent_models", M.recurrent_predictions, label="predictions", marks=M.prediction_marks,
          exercises=layers_of_model_case),
    Check("recurrent_models", M.recurrent_config, dialects=("keras2",), label="config", exercises=layers_of_model_case),
    Check("recurrent_models", M.recurrent_masks, lambda n, m: "mask_layers" in m, ("keras2",), label="masks",
          exercises=layers_of_model_case),
    Check("recurrent_models", M.recurrent_symbolic_masks, lambda n, m: "mask_layers" in m, ("keras2",),
          label="symbolic_masks", marks=M.symbolic_mask_marks, exercises=layers_of_model_case),
    Check("files", M.file_predicts, label="predicts", exercises=layers_of_file_case),
    Check("files", M.file_weights, label="weights", exercises=layers_of_file_case),
    Check("files", M.file_written_back, label="written_back", exercises=layers_of_file_case),
    Check("files", M.file_lambda_refused_in_safe_mode, _named("python_lambda"), label="refused_in_safe_mode",
          exercises=_nothing),
    Check("files", M.file_hard_sigmoid_meaning, _named("hard_sigmoid"), ("keras3",), label="meaning_of_the_writer",
          exercises=_nothing),
    Check("files", M.file_training_config_ignored, _named("sequential_mlp"), ("keras2",),
          label="training_config_ignored", exercises=_nothing),
    Check("files", M.file_weights_only_is_not_a_model, _named("sequential_mlp"), ("keras2",),
          label="weights_only_is_not_a_model", exercises=_nothing),
    Check("recurrent_conv_files", M.file_predicts, _not_named("snake_case"), label="predicts",
          exercises=layers_of_file_case),
    Check("recurrent_conv_files", M.file_weights, _not_named("snake_case"), label="weights",
          exercises=layers_of_file_case),
    Check("recurrent_conv_files", M.file_written_back, _not_named("snake_case"), label="written_back",
          exercises=layers_of_file_case),
    Check("recurrent_conv_files", M.snake_case_rule, _named("snake_case"), label="rule", exercises=_nothing),
    Check("attention", M.file_predicts, _kind("model_file"), label="predicts", exercises=layers_of_file_case),
    Check("attention", M.file_weights, _kind("model_file"), label="weights", exercises=layers_of_file_case),
    Check("attention", M.file_written_back, _kind("model_file"), label="written_back", exercises=layers_of_file_case),
    Check("attention_more", M.file_predicts, _kind("model_file"), label="predicts", exercises=layers_of_file_case),
    Check("attention_more", M.file_weights, _kind("model_file"), label="weights", exercises=layers_of_file_case),
    Check("attention_more", M.file_written_back, _kind("model_file"), label="written_back",
          exercises=layers_of_file_case),
    Check("applications", M.application_predicts, label="predicts", exercises=layers_of_file_case),
    Check("applications_zoo", M.application_predicts, label="predicts", exercises=layers_of_file_case),
    Check("op_nodes", M.op_nodes_predict, label="predicts", exercises=layers_of_file_case),
    Check("op_nodes_more", M.op_nodes_predict, dialects=("keras3",), label="predicts", exercises=layers_of_file_case),
    Check("transformers", M.op_nodes_predict, label="predicts", exercises=layers_of_file_case),
    Check("layer_outputs", M.layer_outputs_agree, label="agree", exercises=layers_of_file_case),
    Check("layer_outputs", M.layer_outputs_find_the_fault, label="find_the_fault", exercises=_nothing),
)


@dataclass(frozen=True)
class Replay:
    """One replayed case: the row and the case it runs on."""

    check: Check
    case: Case

    @property
    def id(self) -> str:
        return self.check.case_id(self.case)

    @property
    def marks(self) -> List[Any]:
        return list(self.check.marks(self.case)) if self.check.marks else []

    @property
    def exercises(self) -> Exercised:
        return self.check.exercises(self.case)


def replays() -> List[Replay]:
    """Every (row, case) the table replays, in table order."""
    return [Replay(check, case) for check in TABLE for case in check.cases()]


def params() -> List[Any]:
    """:func:`replays` as ``pytest.param``s with readable ids and their marks."""
    return [pytest.param(r, id=r.id, marks=r.marks) for r in replays()]


def recorded_families() -> Dict[str, List[str]]:
    """``{dialect: [family, ...]}`` of every family JSON under ``references/``."""
    import os

    return {d: sorted(f[:-5] for f in os.listdir(os.path.join(refs.REFS, d)) if f.endswith(".json")) for d in DIALECTS}
