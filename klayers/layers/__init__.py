"""The layers, and ``serialize`` / ``deserialize`` / ``get`` for their configs (both Keras
dialects). A face: each family module defines its classes and registers them by name
(:func:`klayers.serialization.register_builtins`); this module only hands names on."""

from klayers.engine.base_layer import Layer  # noqa: F401
from klayers.engine.input_layer import Input, InputLayer  # noqa: F401
from klayers.engine.input_spec import InputSpec  # noqa: F401
from klayers.engine.layer_serialization import deserialize, get, serialize  # noqa: F401
from klayers.layers import (
    activation,
    applications,
    attention,
    convolutional,
    core,
    dense_attention,
    embeddings,
    grouped_query_attention,
    keras3_op_nodes,
    keras3_op_nodes_more,
    keras3_ops,
    local,
    merge,
    noise,
    normalization,
    pooling,
    recurrent,
    regularization,
    reshaping,
    tf_op_layer,
    wrappers,
)
from klayers.layers.activation import *  # noqa: F401,F403
from klayers.layers.attention import *  # noqa: F401,F403
from klayers.layers.convolutional import *  # noqa: F401,F403
from klayers.layers.core import *  # noqa: F401,F403
from klayers.layers.dense_attention import *  # noqa: F401,F403
from klayers.layers.embeddings import *  # noqa: F401,F403
from klayers.layers.grouped_query_attention import *  # noqa: F401,F403
from klayers.layers.local import *  # noqa: F401,F403
from klayers.layers.merge import *  # noqa: F401,F403
from klayers.layers.noise import *  # noqa: F401,F403
from klayers.layers.normalization import *  # noqa: F401,F403
from klayers.layers.pooling import *  # noqa: F401,F403
from klayers.layers.recurrent import *  # noqa: F401,F403
from klayers.layers.regularization import *  # noqa: F401,F403
from klayers.layers.reshaping import *  # noqa: F401,F403
from klayers.layers.wrappers import *  # noqa: F401,F403

_FAMILIES = (activation, applications, attention, convolutional, core, dense_attention, embeddings,
             grouped_query_attention, keras3_op_nodes, keras3_op_nodes_more, keras3_ops, local, merge, noise, normalization,
             pooling, recurrent, regularization, reshaping, tf_op_layer, wrappers)

__all__ = sorted(
    {name for family in _FAMILIES for name in family.__all__}
    | {"Input", "InputLayer", "InputSpec", "Layer", "deserialize", "get", "serialize"}
)
